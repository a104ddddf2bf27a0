#!/usr/bin/env bash
# Issue 12, part 5, end to end with a real pemnd: GET/HEAD /v1/blobs/{new}/delta?from={old}
# between a trained v1 and a fine-tuned v2 (pemn train --init-from, tiny settings):
# computed once and stored, ETag, Range, 304, bad `from` values, 404 when not smaller, the
# size and concurrency limits, read auth; `pemn pull` updating by delta from its cache, its
# --out file or --base (byte-identical, verified), --no-delta, a tampered stored delta
# falling back to the full package; the agent updating by delta and the fleet metrics.
source "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    fail "fashion-mnist installed" "run deploy/install-deps.sh"
    exit 1
fi
P=$PEMN_BIN
T=$T_TMP
"$P" keygen --out "$T/k" >/dev/null
TINY=(--data "$DATA" --train-limit 600 --test-limit 200 --batch 32 --quiet --key "$T/k.key"
    --name fm)
"$P" train --mode mask --density 0.3 --epochs 2 "${TINY[@]}" --version v1 --release 1 \
    --out "$T/v1.pemn" --checkpoint "$T/v1.st" >/dev/null 2>&1
check_eq "train v1" 0 "$?"
"$P" train --init-from "$T/v1.st" --epochs 1 --lr 0.01 "${TINY[@]}" --version v2 --release 2 \
    --out "$T/v2.pemn" >/dev/null 2>&1
check_eq "fine-tune v2 (--init-from)" 0 "$?"
# another model, and a model whose versions share nothing (delta not smaller)
"$PEMN_MKPKG" pack "$T/k.key" other 1.0.0 1 3000 "$T/o1.pemn" 1 >/dev/null
"$PEMN_MKPKG" pack "$T/k.key" rnd 1.0.0 1 3000 "$T/r1.pemn" 11 >/dev/null
"$PEMN_MKPKG" pack "$T/k.key" rnd 2.0.0 2 3000 "$T/r2.pemn" 12 >/dev/null
"$PEMN_MKPKG" pack "$T/k.key" rnd 3.0.0 3 3000 "$T/r3.pemn" 13 >/dev/null
dg() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
D1=$(dg "$T/v1.pemn")
D2=$(dg "$T/v2.pemn")
DO=$(dg "$T/o1.pemn")
DR1=$(dg "$T/r1.pemn")
DR2=$(dg "$T/r2.pemn")
DR3=$(dg "$T/r3.pemn")
S2=$(stat -c %s "$T/v2.pemn")

pemnd_start "$T/srv" --allow-unbound-device-tokens || { fail "pemnd starts" "$(tail -5 "$T/srv/pemnd.log")"; exit 1; }
pemnd_admin key add "$T/k.pub" --name k >/dev/null
PUB=$(pemnd_token publish)
U=$PEMND_URL
for f in v1 v2 o1 r1 r2 r3; do
    "$P" push --server "$U" --token "$PUB" --quiet "$T/$f.pemn"
    check_eq "push $f" 0 "$?"
done
B=$T/body

# ---- the endpoint ----
st=$(curl -s -D "$T/h" -o "$T/d.pemnd" -w '%{http_code}' "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "GET delta v1 -> v2: 200" 200 "$st"
DS=$(stat -c %s "$T/d.pemnd")
check "the delta ($DS B) is smaller than v2 ($S2 B)" test "$DS" -lt "$S2"
DD=$(dg "$T/d.pemnd")
check "ETag is the delta's own digest" grep -qi "^etag: \"$DD\"" "$T/h"
check "Cache-Control immutable (public registry)" grep -qi "^cache-control:.*immutable" "$T/h"
"$P" patch "$T/v1.pemn" "$T/d.pemnd" --out "$T/v2p.pemn" --trust "$T/k.pub" >/dev/null
check_eq "pemn patch with the served delta" 0 "$?"
check "patched = v2 byte for byte" cmp -s "$T/v2.pemn" "$T/v2p.pemn"
st=$(curl -s -I -o "$T/hh" -w '%{http_code}' "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "HEAD delta: 200" 200 "$st"
check "HEAD: Content-Length of the delta" grep -qi "^content-length: $DS" "$T/hh"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D1" -H "Range: bytes=10-19")
check_eq "Range: 206" 206 "$st"
check "Range: the right 10 bytes" cmp -s "$B" <(tail -c +11 "$T/d.pemnd" | head -c 10)
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D1" -H "If-None-Match: \"$DD\"")
check_eq "If-None-Match: 304" 304 "$st"
curl -s "$U/metrics" >"$T/m"
check "computed once (pemnd_deltas_computed_total 1)" grep -q "^pemnd_deltas_computed_total 1$" "$T/m"
check "served counted" grep -qE "^pemnd_deltas_served_total [2-9]" "$T/m"
check "bytes saved counted" grep -qE "^pemnd_delta_bytes_saved_total $((S2 - DS))$" "$T/m"
check "stored: a deltas row" test "$(db_sql "$PEMND_DB" "SELECT count(*) FROM deltas WHERE delta_digest='$DD'")" = 1

# ---- bad from ----
err_code() { jq -r .error.code "$B" 2>/dev/null; }
st=$(http_status GET "$U/v1/blobs/$D2/delta")
check_eq "no from: 400" 400 "$st"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=sha256:nothex")
check_eq "malformed from: 400" 400 "$st"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=sha256:$(printf '0%.0s' $(seq 64))")
check_eq "unknown from: 404" 404 "$st"
check_eq "unknown from: delta_base_unknown" delta_base_unknown "$(err_code)"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$DO")
check_eq "from another model: 404" 404 "$st"
check_eq "from another model: delta_base_other_model" delta_base_other_model "$(err_code)"
st=$(http_status GET "$U/v1/blobs/$D1/delta?from=$D2")
check_eq "from a newer version: 404 delta_base_not_older" "404 delta_base_not_older" "$st $(err_code)"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D2")
check_eq "from itself: 404 delta_base_not_older" "404 delta_base_not_older" "$st $(err_code)"
st=$(http_status GET "$U/v1/blobs/$DO/delta?from=$D1")
check_eq "from fm for other: 404" 404 "$st"
st=$(http_status GET "$U/v1/blobs/sha256:$(printf 'a%.0s' $(seq 64))/delta?from=$D1")
check_eq "unknown package: 404 not_found" "404 not_found" "$st $(err_code)"
# random masks: the delta saves little (zlib still squeezes the package's padding)
st=$(http_status GET "$U/v1/blobs/$DR2/delta?from=$DR1")
check_eq "unrelated versions: a delta all the same" 200 "$st"
RS=$(stat -c %s "$B")
check "... saving under 50% ($RS of $(stat -c %s "$T/r2.pemn") B)" test $((RS * 2)) -gt "$(stat -c %s "$T/r2.pemn")"
# a pair recorded as "not smaller" (as pemnd records a computed delta >= the package)
db_sql "$PEMND_DB" "INSERT INTO deltas(new_digest, old_digest, delta_digest, size, new_size, created) VALUES('$DR3', '$DR1', '', 0, $(stat -c %s "$T/r3.pemn"), 0)"
st=$(http_status GET "$U/v1/blobs/$DR3/delta?from=$DR1")
check_eq "a pair recorded not smaller: 404 delta_not_smaller" "404 delta_not_smaller" "$st $(err_code)"
pemnd_stop
pemnd_start_on "$T/srv" "$PEMND_PORT" --allow-unbound-device-tokens --delta-min-saving 50 || fail "pemnd restarts (min saving)"
st=$(http_status GET "$U/v1/blobs/$DR2/delta?from=$DR1")
check_eq "saving below delta_min_saving: 404 delta_not_smaller" "404 delta_not_smaller" "$st $(err_code)"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "the fine-tune's delta still served" 200 "$st"
curl -s "$U/metrics" >"$T/m"
check "nothing recomputed after the restart" grep -q "^pemnd_deltas_computed_total 0$" "$T/m"

# ---- pull by delta ----
C=$T/cache
"$P" pull --server "$U" --trust "$T/k.pub" --cache "$C" --out "$T/p/v1.pemn" --quiet fm:v1
check_eq "pull v1 into the cache" 0 "$?"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --cache "$C" --out "$T/p/v2.pemn" --json fm:v2)
check_eq "pull v2 (base in the cache)" 0 "$?"
check_eq "pull --json: delta true" true "$(jq -r .delta <<<"$js")"
rx=$(jq -r .bytes_received <<<"$js")
check "bytes moved ($rx) = the delta ($DS)" test "$rx" -eq "$DS"
check "installed v2 byte for byte" cmp -s "$T/v2.pemn" "$T/p/v2.pemn"
check "installed v2 verifies" sh -c "'$P' verify '$T/p/v2.pemn' --trust '$T/k.pub' >/dev/null"
# the --out file as the base, no cache
cp "$T/v1.pemn" "$T/p/o.pemn"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --out "$T/p/o.pemn" --json fm:v2)
check_eq "pull over an older --out file: delta" "0 true" "$? $(jq -r .delta <<<"$js")"
check "updated in place byte for byte" cmp -s "$T/v2.pemn" "$T/p/o.pemn"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --base "$T/v1.pemn" --out "$T/p/b.pemn" --json fm:v2)
check_eq "pull --base FILE: delta" "0 true" "$? $(jq -r .delta <<<"$js")"
check "--base: byte for byte" cmp -s "$T/v2.pemn" "$T/p/b.pemn"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --base "$T/v1.pemn" --no-delta --out "$T/p/n.pemn" --json fm:v2 2>&1)
check_eq "--base with --no-delta: usage error" 2 "$?"
cp "$T/v1.pemn" "$T/p/n.pemn"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --no-delta --out "$T/p/n.pemn" --json fm:v2)
check_eq "--no-delta: the whole package" "0 false $S2" "$? $(jq -r .delta <<<"$js") $(jq -r .bytes_received <<<"$js")"
out=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --base "$T/v1.pemn" --out "$T/p/t.pemn" fm:v2 2>&1)
check "text summary says delta" grep -q "(delta)" <<<"$out"

# a tampered stored delta (the row now names v1's bytes): the client falls back
db_sql "$PEMND_DB" "UPDATE deltas SET delta_digest='$D1' WHERE delta_digest='$DD'"
pemnd_stop
pemnd_start_on "$T/srv" "$PEMND_PORT" --allow-unbound-device-tokens || fail "pemnd restarts"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --base "$T/v1.pemn" --out "$T/p/f.pemn" --json fm:v2)
check_eq "garbage delta: pull still succeeds, by the full package" "0 false" "$? $(jq -r .delta <<<"$js")"
check "garbage delta: the right bytes installed" cmp -s "$T/v2.pemn" "$T/p/f.pemn"
db_sql "$PEMND_DB" "UPDATE deltas SET delta_digest='$DD' WHERE new_digest='$D2'"

# ---- the agent, in a fleet ----
DEV=$(pemnd_token device)
fleet() { http_status PUT "$U/v1/fleets/edge" -H "Authorization: Bearer $PUB" -d "{\"model\":\"fm\",\"version\":\"$1\"}"; }
agent() { "$P" agent --server "$U" --fleet edge --device cam1 --token "$DEV" --trust "$T/k.pub" --dir "$T/agent" --once "$@"; }
check_eq "fleet -> v1" 200 "$(fleet v1)"
agent --quiet >/dev/null 2>&1
check_eq "agent installs v1" 0 "$?"
check_eq "fleet -> v2" 200 "$(fleet v2)"
out=$(agent 2>&1)
check_eq "agent updates to v2" 0 "$?"
check "agent: by delta from the installed version" grep -q "downloaded $DS bytes for a $S2-byte package (delta" <<<"$out"
check "agent runs v2 byte for byte" cmp -s "$T/v2.pemn" "$T/agent/current/model.pemn"
curl -s "$U/metrics" >"$T/m"
check "fleet metrics: one delta update" grep -q '^pemnd_fleet_updates_total{via="delta"} 1$' "$T/m"
check "fleet metrics: bytes saved $((S2 - DS))" grep -q "^pemnd_fleet_bytes_saved_total $((S2 - DS))$" "$T/m"
check "fleet metrics: the first install was full" grep -q '^pemnd_fleet_updates_total{via="full"} 1$' "$T/m"
st=$(http_status PUT "$U/v1/fleets/edge/devices/cam1/status" -H "Authorization: Bearer $DEV" \
    -d '{"state":"installed","transfer":{"bytes":-1,"delta":true,"package_size":5}}')
check_eq "a malformed transfer report: 400" 400 "$st"
# --no-delta: back to v1 is a downgrade; use a fresh agent dir with v1 then v2
check_eq "fleet -> v1 (fresh device)" 200 "$(fleet v1)"
"$P" agent --server "$U" --fleet edge --device cam2 --token "$DEV" --trust "$T/k.pub" --dir "$T/agent2" --once --quiet >/dev/null 2>&1
check_eq "fleet -> v2" 200 "$(fleet v2)"
out=$("$P" agent --server "$U" --fleet edge --device cam2 --token "$DEV" --trust "$T/k.pub" --dir "$T/agent2" --once --no-delta 2>&1)
check "agent --no-delta: the whole package" grep -q "downloaded $S2 bytes for a $S2-byte package$" <<<"$out"

# ---- limits and auth ----
pemnd_stop
pemnd_start_on "$T/srv" "$PEMND_PORT" --delta-concurrency 0 || fail "pemnd restarts (concurrency 0)"
st=$(curl -s -D "$T/h" -o "$B" -w '%{http_code}' "$U/v1/blobs/$D2/delta?from=$DR1")
check_eq "other model still 404 before any computation" 404 "$st"
db_sql "$PEMND_DB" "DELETE FROM deltas WHERE new_digest='$D2'"
st=$(curl -s -D "$T/h" -o "$B" -w '%{http_code}' "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "no computation slot: 503 busy" "503 busy" "$st $(err_code)"
check "503 carries Retry-After" grep -qi "^retry-after: " "$T/h"
js=$("$P" pull --server "$U" --trust "$T/k.pub" --no-cache --base "$T/v1.pemn" --out "$T/p/busy.pemn" --json fm:v2)
check_eq "busy server: pull falls back to the full package" "0 false" "$? $(jq -r .delta <<<"$js")"
pemnd_stop
pemnd_start_on "$T/srv" "$PEMND_PORT" --delta-max-package 1K || fail "pemnd restarts (max 1K)"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "above delta_max_package: 404 delta_too_large" "404 delta_too_large" "$st $(err_code)"
pemnd_stop
pemnd_start_on "$T/srv" "$PEMND_PORT" --read-token-required || fail "pemnd restarts (read tokens)"
st=$(http_status GET "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "read_token_required: 401 without a token" 401 "$st"
RD=$(pemnd_token read)
st=$(curl -s -D "$T/h" -o "$T/d2.pemnd" -w '%{http_code}' -H "Authorization: Bearer $RD" "$U/v1/blobs/$D2/delta?from=$D1")
check_eq "with a read token: 200" 200 "$st"
check "recomputed identically" cmp -s "$T/d.pemnd" "$T/d2.pemnd"
check "private when read tokens are required" grep -qi "^cache-control:.*private" "$T/h"
t_done
