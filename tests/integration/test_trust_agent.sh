#!/usr/bin/env bash
# Integration (issue 10): real pemnd + real `pemn agent --root` + a root chain with rotation.
# pemnd refuses to sign without a stored root naming its metadata key; it signs desired state
# (304 stays a 304, the metadata version does not move while the answer is the same); the
# agent follows the chain v1 -> v2 (root and metadata keys rotated), keeps root.json and
# trust.json, refuses unsigned answers and other models with their exit codes and reports.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
B=$T_TMP/body
for k in root1 root2 meta meta2 alice; do "$PEMN_MKPKG" keygen "$D/$k" >/dev/null; done
"$PEMN_BIN" root init --out "$D/root1.json" --root-key "$D/root1.key" \
    --metadata-key "$D/meta.pub" --publisher "$D/alice.pub=net" --expires 30 >/dev/null
check_eq "root v1 made" 0 "$?"

# ---- pemnd and its metadata key ---------------------------------------------------------------
mkdir -p "$D/srv"
PORT=$(free_port)
"$PEMND_BIN" --db "$D/srv/pemn.db" --listen "127.0.0.1:$PORT" --metadata-key "$D/meta.key" \
    >"$D/nostart.log" 2>&1
check_eq "pemnd with a metadata key but no root: does not start" 1 "$([ $? -ne 0 ] && echo 1)"
check "names the missing root" grep -q "no root stored" "$D/nostart.log"
PEMND_DB=$D/srv/pemn.db
pemnd_admin root add "$D/root1.json" >/dev/null
check_eq "root add v1" 0 "$?"
pemnd_admin key add "$D/alice.pub" --name alice >/dev/null
"$PEMND_BIN" --db "$D/srv/pemn.db" --listen "127.0.0.1:$PORT" --metadata-key "$D/meta2.key" \
    >"$D/nostart2.log" 2>&1
check_eq "pemnd with a key the root does not name: does not start" 1 "$([ $? -ne 0 ] && echo 1)"
check "says the key is not named" grep -q "not a metadata key" "$D/nostart2.log"
pemnd_start "$D/srv" --metadata-key "$D/meta.key" --metadata-expiry 600 ||
    { fail "pemnd starts" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
U=$PEMND_URL
PUB=$(pemnd_token publish)
# bound to the fleet (pemnd refuses unbound device tokens, docs/API.md "Fleets")
DEV=$(pemnd_admin token create --scope device --name dev --fleet f | tail -n 1)
push() { # NAME VERSION RELEASE
    "$PEMN_MKPKG" pack "$D/alice.key" "$1" "$2" "$3" 3000 "$D/$1-$2.pemn" "$3" >/dev/null &&
        curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" \
            -T "$D/$1-$2.pemn" "$U/v1/models/$1/versions/$2"
}
dg() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
check_eq "push net 1.1.0" 201 "$(push net 1.1.0 1)"
check_eq "push net 1.2.0" 201 "$(push net 1.2.0 2)"
check_eq "push other 1.0.0" 201 "$(push other 1.0.0 5)"
check_eq "fleet target 1.1.0" 200 "$(http_status PUT "$U/v1/fleets/f" -H "Authorization: Bearer $PUB" \
    -d '{"model":"net","version":"1.1.0"}')"
agent() { # DEVICE [ARGS...]
    local dv=$1
    shift
    "$PEMN_BIN" agent --server "$U" --fleet f --device "$dv" --token "$DEV" --root "$D/root1.json" \
        --dir "$D/dev/$dv" --once --quiet --timeout 20 "$@"
}

# ---- signed desired state ----------------------------------------------------------------------
check_eq "desired: 200" 200 "$(http_status GET "$U/v1/fleets/f/devices/d1/desired" -H "Authorization: Bearer $DEV")"
check_eq "desired is a pemn-desired envelope" "pemn-desired" "$(jq -r .signed._type "$B")"
check_eq "metadata version 1" 1 "$(jq -r .signed.metadata_version "$B")"
check_eq "for this device" d1 "$(jq -r .signed.device "$B")"
check_eq "expires after --metadata-expiry" 600 "$(jq -r '.signed.expires - .signed.issued' "$B")"
check_eq "one signature" 1 "$(jq -r '.signatures | length' "$B")"
ETAG=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $DEV" "$U/v1/fleets/f/devices/d1/desired" |
    tr -d '\r' | awk 'tolower($1)=="etag:" {print $2}')
check_eq "same answer: 304" 304 "$(http_status GET "$U/v1/fleets/f/devices/d1/desired" \
    -H "Authorization: Bearer $DEV" -H "If-None-Match: $ETAG")"
http_status GET "$U/v1/fleets/f/devices/d1/desired" -H "Authorization: Bearer $DEV" >/dev/null
check_eq "not re-signed while unchanged" 1 "$(jq -r .signed.metadata_version "$B")"
# the fleet's OCI location (docs/OCI.md) is part of what is signed (another device: d1's
# metadata versions stay as checked below)
LOC="oci+http://127.0.0.1:9/mirror/net"
check_eq "set an OCI source" 200 "$(http_status PUT "$U/v1/fleets/f/oci" -H "Authorization: Bearer $PUB" \
    -d "{\"location\":\"$LOC\"}")"
http_status GET "$U/v1/fleets/f/devices/d9/desired" -H "Authorization: Bearer $DEV" >/dev/null
check_eq "the signed answer names the OCI location" "$LOC" "$(jq -r .signed.package_url "$B")"
check_eq "... and only the signed part carries it" "signatures signed" "$(jq -r 'keys | join(" ")' "$B")"
V9=$(jq -r .signed.metadata_version "$B")
check_eq "remove the OCI source" 204 "$(http_status DELETE "$U/v1/fleets/f/oci" -H "Authorization: Bearer $PUB")"
http_status GET "$U/v1/fleets/f/devices/d9/desired" -H "Authorization: Bearer $DEV" >/dev/null
check_eq "without it: re-signed, a registry blob" "$((V9 + 1)) /v1/blobs/$(dg "$D/net-1.1.0.pemn")" \
    "$(jq -r '"\(.signed.metadata_version) \(.signed.package_url)"' "$B")"

agent d1 --model net
check_eq "agent --root installs 1.1.0" 0 "$?"
check_eq "runs 1.1.0" "$(dg "$D/net-1.1.0.pemn")" "$(dg "$D/dev/d1/current/model.pemn")"
check_eq "trust.json records metadata version 1" 1 "$(jq -r .metadata_version "$D/dev/d1/trust.json")"
check_eq "trust.json records release 1 of net" 1 "$(jq -r .releases.net "$D/dev/d1/trust.json")"
check "root.json kept in DIR" cmp -s "$D/root1.json" "$D/dev/d1/root.json"

# ---- wrong model and unsigned answers ------------------------------------------------------------
agent d2 --model other 2>/dev/null
check_eq "another model: exit 24 (wrong-model)" 24 "$?"
check_eq "nothing installed on d2" no "$([ -e "$D/dev/d2/current" ] && echo yes || echo no)"
http_status GET "$U/v1/fleets/f/devices/d2" >/dev/null
check_eq "wrong-model reported" wrong-model "$(jq -r .reason "$B")"
"$PEMN_BIN" agent --server "$U" --fleet f --device d1 --token "$DEV" --root "$D/root1.json" \
    --dir "$D/u" --once --quiet >/dev/null 2>&1
check_eq "--root without --model: usage" 2 "$?"

# ---- rotation: root v2 replaces the root key and the metadata key ------------------------------
R1ID=$(jq -r '.signed.root_keys | keys[0]' "$D/root1.json")
"$PEMN_BIN" root update --in "$D/root1.json" --out "$D/root2.json" --sign "$D/root1.key" \
    --sign "$D/root2.key" --add-root-key "$D/root2.pub" --remove-root-key "$R1ID" \
    --metadata-key "$D/meta2.pub" >/dev/null 2>"$D/upd.err"
check_eq "root v2 made (root and metadata keys rotated)" 0 "$?" "$(cat "$D/upd.err")"
pemnd_stop
pemnd_admin root add "$D/root2.json" >/dev/null
check_eq "root add v2" 0 "$?"
pemnd_start "$D/srv" --metadata-key "$D/meta.key" && ok=started || ok=refused
check_eq "old metadata key refused after the rotation" refused "$ok"
pemnd_start "$D/srv" --metadata-key "$D/meta2.key" ||
    { fail "pemnd starts with meta2" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
U=$PEMND_URL
check_eq "GET /v1/root/2" 200 "$(http_status GET "$U/v1/root/2")"
check "serves root v2's bytes" cmp -s "$D/root2.json" "$B"
check_eq "fleet target 1.2.0" 200 "$(http_status PUT "$U/v1/fleets/f" -H "Authorization: Bearer $PUB" \
    -d '{"model":"net","version":"1.2.0"}')"
agent d1 --model net
check_eq "agent follows the chain to v2 and installs 1.2.0" 0 "$?"
check_eq "runs 1.2.0" "$(dg "$D/net-1.2.0.pemn")" "$(dg "$D/dev/d1/current/model.pemn")"
check "DIR/root.json is v2" cmp -s "$D/root2.json" "$D/dev/d1/root.json"
check_eq "trust.json root_version 2" 2 "$(jq -r .root_version "$D/dev/d1/trust.json")"
agent d1 --model net
check_eq "steady state: next cycle ok" 0 "$?"

# ---- an unsigned registry (no metadata key) -------------------------------------------------------
pemnd_stop
pemnd_start "$D/srv" || { fail "pemnd starts unsigned"; exit 1; }
U=$PEMND_URL
agent d1 --model net 2>/dev/null
check_eq "unsigned desired state: exit 22 (metadata-untrusted)" 22 "$?"
check_eq "still runs 1.2.0" "$(dg "$D/net-1.2.0.pemn")" "$(dg "$D/dev/d1/current/model.pemn")"
http_status GET "$U/v1/fleets/f/devices/d1" >/dev/null
check_eq "metadata-untrusted reported" metadata-untrusted "$(jq -r .reason "$B")"
t_done
