#!/usr/bin/env bash
# Hardening item 3: upload memory is bounded. Many publish-token uploads that declare a large
# Content-Length and send part of it hold at most upload_buffer each and upload_memory_max in
# all (the rest is spilled to disk); a spill that fails (disk full, or over upload_spill_max)
# answers 507 with error JSON, and the failed upload loses nothing already stored.
. "$(dirname "$0")/lib.sh"
SLOW="/usr/bin/python3 $PEMN_ROOT/tests/tools/slowconn.py"
K="$T_TMP/keys"
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" big 1.0.0 1 3000000 "$K/big.pemn" 1 >/dev/null
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 4096 "$K/small.pemn" 2 >/dev/null
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$PEMND_PID/status"; }

pemnd_start "$T_TMP/mem" --upload-buffer 256K --upload-memory-max 2M --threads 4 || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
before=$(rss_kb)
# 24 uploads x 1.5 MB sent of 8 MB declared: 36 MB if held in memory
$SLOW upload 127.0.0.1 "$PEMND_PORT" 24 8000000 1500000 3 "$PUB" >"$T_TMP/up.out" &
up=$!
for _ in $(seq 1 100); do grep -q held "$T_TMP/up.out" && break; sleep 0.1; done
sleep 0.5
during=$(rss_kb)
curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
wait "$up"
grew=$(( (during - before) / 1024 ))
check "24 partial uploads add far less than 36 MB of memory (grew ${grew} MB)" test "$grew" -lt 16
mem=$(sed -n 's/^pemnd_upload_memory_bytes //p' "$T_TMP/metrics")
check "upload memory gauge within upload_memory_max (${mem:-none})" test -n "$mem" -a "${mem:-0}" -le 2097152
spilled=$(sed -n 's/^pemnd_upload_spilled_bytes //p' "$T_TMP/metrics")
check "the rest was spilled to disk (${spilled:-none} bytes)" test "${spilled:-0}" -gt 20000000
check_eq "a small push still works" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/small.pemn")"
check_eq "a spilled push works" 201 "$(http_status PUT "$PEMND_URL/v1/models/big/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/big.pemn")"
curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
check_eq "upload memory returns to 0" 0 "$(sed -n 's/^pemnd_upload_memory_bytes //p' "$T_TMP/metrics")"
pemnd_stop

# a spill that fails: over upload_spill_max (works anywhere)
pemnd_start "$T_TMP/spill" --upload-buffer 64K --upload-spill-max 1M || { fail "pemnd starts (spill max)"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
check_eq "a push whose spill fails: 507" 507 "$(http_status PUT "$PEMND_URL/v1/models/big/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/big.pemn")"
check_eq "with error JSON" insufficient_storage "$(json_get "$T_TMP/body" error.code)"
check_eq "nothing stored" 404 "$(http_status GET "$PEMND_URL/v1/models/big")"
check_eq "a small push after it still works" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/small.pemn")"
pemnd_stop

# a real full disk: a 1 MB tmpfs as tmp_dir (needs mount rights; skipped, and said, without)
M="$T_TMP/tiny"
mkdir -p "$M"
if mount -t tmpfs -o size=1m tmpfs "$M" 2>/dev/null; then
    pemnd_start "$T_TMP/full" --upload-buffer 64K --tmp-dir "$M" || fail "pemnd starts (tmpfs)"
    pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
    PUB=$(pemnd_token publish ci)
    check_eq "disk full while spilling: 507" 507 "$(http_status PUT "$PEMND_URL/v1/models/big/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/big.pemn")"
    check_eq "disk full: error JSON" insufficient_storage "$(json_get "$T_TMP/body" error.code)"
    check_eq "disk full: pemnd still serves" 200 "$(http_status GET "$PEMND_URL/v1/health")"
    pemnd_stop
    umount "$M"
else
    echo "note: tmpfs mount not permitted; the full-disk case is covered by upload_spill_max above"
fi
t_done
