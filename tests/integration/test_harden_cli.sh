#!/usr/bin/env bash
# Hardening items 7, 11, 12 through the real `pemn` CLI against a hostile registry
# (tests/tools/hostile_registry.py): names from the registry never make a path outside the
# working directory, registry text reaches the terminal escaped, and pull refuses a release
# below the highest one it installed through its cache unless --allow-downgrade.
. "$(dirname "$0")/lib.sh"
K="$T_TMP/keys"
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 2.0.0 5 4096 "$K/new.pemn" 1 >/dev/null
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 3 4096 "$K/old.pemn" 2 >/dev/null
S="$T_TMP/script.json"
echo '{}' >"$S"
/usr/bin/python3 "$PEMN_ROOT/tests/tools/hostile_registry.py" "$T_TMP/port" "$S" &
T_PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$T_TMP/port" ] && break; sleep 0.1; done
U="http://127.0.0.1:$(cat "$T_TMP/port")"
dg() { echo "sha256:$(sha256sum "$1" | cut -c1-64)"; }
vo() { # MODEL VERSION RELEASE FILE
    jq -nc --arg m "$1" --arg v "$2" --argjson r "$3" --arg d "$(dg "$4")" --argjson s "$(stat -c %s "$4")" \
        '{model:$m, version:$v, release:$r, digest:$d, size:$s, package_url:("/v1/blobs/" + $d)}'
}
script() { # MODEL-JSON-latest FILE
    jq -nc --argjson l "$1" --arg f "$2" --arg d "$(dg "$2")" \
        '{("GET /v1/models/net"): {status: 200, body: ({name:"net", versions:1, latest:$l} | tojson)},
          ("GET /v1/blobs/" + $d): {file: $f},
          ("GET /v1/models"): {status: 200, body: ({models:[{name:"net", versions:1, latest:$l}]} | tojson)}}' >"$S"
}
P=("$PEMN_BIN")
W="$T_TMP/work"
mkdir -p "$W/inner"

# ---- 7: a version string that is a path --------------------------------------------------
script "$(vo net '../../../escaped' 5 "$K/new.pemn")" "$K/new.pemn"
(cd "$W/inner" && "${P[@]}" pull --server "$U" --trust "$K/alice.pub" --no-cache --quiet net) 2>"$T_TMP/err"
check_eq "pull with a path-shaped version: refused (exit 7)" 7 "$?"
check_eq "nothing created outside the working directory" "" "$(find "$T_TMP" -name '*escaped*' -print)"
check_eq "nothing created inside it either" "" "$(ls -A "$W/inner")"

# ---- 11: terminal escapes in registry text --------------------------------------------------
jq -nc '{("GET /v1/models/net"): {status: 404, body: ({error:{code:"not_found", message:"gone \u001b]0;pwned\u0007 \u001b[2J"}} | tojson)}}' >"$S"
"${P[@]}" pull --server "$U" --trust "$K/alice.pub" --no-cache net 2>"$T_TMP/err" >/dev/null
check "pull error: the registry's message is shown" grep -q "gone" "$T_TMP/err"
check "pull error: no raw ESC or BEL reaches the terminal" bash -c "! grep -q \$'[\\x1b\\x07]' '$T_TMP/err'"
check "pull error: the control characters are neutralised, the text kept" grep -Eq 'gone (\?|\x1b)\]0;pwned' "$T_TMP/err"
jq -nc '{("GET /v1/models"): {status: 200, body: ({models:[{name:"net\u001b[31m", versions:1, latest:null}]} | tojson)}}' >"$S"
"${P[@]}" ls --server "$U" >"$T_TMP/out" 2>&1
check "ls: no raw ESC reaches the terminal" bash -c "! grep -q \$'\\x1b' '$T_TMP/out'"

# ---- 12: the release record ------------------------------------------------------------------
C="$T_TMP/cache"
script "$(vo net 2.0.0 5 "$K/new.pemn")" "$K/new.pemn"
check "pull release 5" "${P[@]}" pull --server "$U" --trust "$K/alice.pub" --cache "$C" --quiet --out "$W/a.pemn" net
check_eq "the cache records release 5" 5 "$(cat "$C/releases/net")"
script "$(vo net 1.0.0 3 "$K/old.pemn")" "$K/old.pemn"
"${P[@]}" pull --server "$U" --trust "$K/alice.pub" --cache "$C" --quiet --out "$W/b.pemn" net 2>"$T_TMP/err"
check_eq "an older release is refused (exit 9)" 9 "$?"
check "the refusal names the recorded release" grep -q "below release 5" "$T_TMP/err"
check_eq "nothing installed" "" "$(ls "$W" | grep b.pemn)"
check "--allow-downgrade takes it" "${P[@]}" pull --server "$U" --trust "$K/alice.pub" --cache "$C" --quiet --allow-downgrade --out "$W/b.pemn" net
check_eq "the record stays at 5" 5 "$(cat "$C/releases/net")"

# ---- 9: a registry trickling the package ----------------------------------------------------
script "$(vo net 2.0.0 5 "$K/new.pemn")" "$K/new.pemn"
jq --arg d "GET /v1/blobs/$(dg "$K/new.pemn")" '.[$d].trickle = [50, 100]' "$S" >"$S.new" && mv "$S.new" "$S"
t0=$(date +%s)
"${P[@]}" pull --server "$U" --trust "$K/alice.pub" --no-cache --quiet --min-rate 2k --rate-window 1 \
    --retries 1 --out "$W/slow.pemn" net 2>"$T_TMP/err"
rc=$?
check_eq "pull from a trickling registry gives up (exit 7)" 7 "$rc"
check "it gave up before the trickle could finish (~10 s)" test $(($(date +%s) - t0)) -lt 9
check "the reason is the minimum rate" grep -q "minimum transfer rate" "$T_TMP/err"
check_eq "nothing installed" "" "$(ls "$W" | grep '^slow.pemn$')"
t_done
