#!/usr/bin/env bash
# Hardening item 1: bytes in the database that no longer hash to their digest are never
# served under it. The first read after start (cache fill, or a full hash of a streamed blob)
# answers 500 stored_blob_corrupt, counts it in /metrics and logs it; `pemnd scrub` lists
# every bad blob (exit 3); the background scrub finds them too; a damaged file never crashes.
. "$(dirname "$0")/lib.sh"
K="$T_TMP/keys"
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 4096 "$K/a.pemn" 1 >/dev/null
"$PEMN_MKPKG" pack "$K/alice.key" net 1.1.0 2 4096 "$K/b.pemn" 2 >/dev/null
"$PEMN_MKPKG" pack "$K/alice.key" net 1.2.0 3 300000 "$K/c.pemn" 3 >/dev/null
D="$T_TMP/run"
pemnd_start "$D" || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
for v in a:1.0.0 b:1.1.0 c:1.2.0; do
    check_eq "push ${v#*:}" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/${v#*:}" \
        -H "Authorization: Bearer $PUB" --data-binary "@$K/${v%%:*}.pemn")"
    eval "D_${v%%:*}=$(json_get "$T_TMP/body" digest)"
done
check "scrub of a sound database: exit 0" pemnd_admin scrub
check "scrub at a bounded rate: exit 0" pemnd_admin scrub --rate 10M
check "scrub --help: exit 0" pemnd_admin scrub --help
pemnd_admin scrub --rate bogus >/dev/null 2>&1
check_eq "scrub with a bad --rate: usage (exit 2)" 2 "$?"
pemnd_stop
t_on_pg || cp "$PEMND_DB" "$T_TMP/good.db"

# bit rot in a (same length), a truncated c (a large blob that is streamed)
if t_on_pg; then # the PostgreSQL leg: the same damage in the blobs' chunk rows
    db_sql "$PEMND_DB" "UPDATE blob_chunks c SET data = set_byte(c.data, 0, 255 - get_byte(c.data, 0))
                        FROM blobs b WHERE b.id = c.blob_id AND b.digest = '$D_a' AND c.idx = 0;
                        UPDATE blob_chunks c SET data = substr(c.data, 1, 1000) || decode(repeat('55', length(c.data) - 1000), 'hex')
                        FROM blobs b WHERE b.id = c.blob_id AND b.digest = '$D_c' AND c.idx = 0" >/dev/null
else
    sqlite3 "$PEMND_DB" "UPDATE blobs SET data = randomblob(length(data)) WHERE digest = '$D_a';
                         UPDATE blobs SET data = substr(data, 1, 1000) || randomblob(length(data) - 1000) WHERE digest = '$D_c'"
fi
pemnd_admin scrub >"$T_TMP/scrub.out" 2>&1
check_eq "scrub finds bad blobs: exit 3" 3 "$?"
check "scrub names blob a" grep -q "^BAD $D_a" "$T_TMP/scrub.out"
check "scrub names blob c" grep -q "^BAD $D_c" "$T_TMP/scrub.out"
check "scrub does not name blob b" bash -c "! grep -q '$D_b' '$T_TMP/scrub.out'"
# 3 packages + the 3 config blobs of their OCI manifests (docs/OCI.md)
check "scrub summary" grep -q "scrubbed 6 blobs.*2 bad" "$T_TMP/scrub.out"

for mode in "cached" "streamed:--cache-item-max 1K" "uncached:--cache-size 0"; do
    name=${mode%%:*}
    args=${mode#*:}
    [ "$args" = "$mode" ] && args=""
    # shellcheck disable=SC2086
    pemnd_start_on "$D" "$PEMND_PORT" --scrub-interval 0 $args || { fail "$name: restart"; continue; }
    check_eq "$name: corrupt blob a is 500" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_a")"
    check_eq "$name: with a clear code" stored_blob_corrupt "$(json_get "$T_TMP/body" error.code)"
    check_eq "$name: no ETag or immutable caching on it" "" "$(curl -s -D - -o /dev/null "$PEMND_URL/v1/blobs/$D_a" | tr -d '\r' | grep -i '^etag:\|immutable')"
    check_eq "$name: still 500 on the next read" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_a")"
    check_eq "$name: a Range of it is 500 too" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_a" -H 'Range: bytes=0-9')"
    check_eq "$name: the package by version is 500" 500 "$(http_status GET "$PEMND_URL/v1/models/net/versions/1.0.0/package")"
    check_eq "$name: corrupt large blob c is 500" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_c")"
    check_eq "$name: sound blob b is 200" 200 "$(http_status GET "$PEMND_URL/v1/blobs/$D_b")"
    check "$name: blob b bytes are right" cmp -s "$T_TMP/body" "$K/b.pemn"
    check_eq "$name: sound blob b again" 200 "$(http_status GET "$PEMND_URL/v1/blobs/$D_b")"
    curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
    check "$name: metric counts the failures" grep -Eq '^pemnd_blob_integrity_failures_total\{found="serving"\} ([5-9]|[1-9][0-9])$' "$T_TMP/metrics"
    check "$name: the log names the blob" grep -q "integrity: blob $D_a" "$PEMND_LOG"
    pemnd_stop
    : >"$PEMND_LOG"
done

# the background scrub, rate-limited, finds and reports both
pemnd_start_on "$D" "$PEMND_PORT" --scrub-interval 1 --scrub-rate 1M || fail "restart with scrub"
ok=0
for _ in $(seq 1 100); do
    if curl -s "$PEMND_URL/metrics" | grep -q '^pemnd_scrubs_total [1-9]'; then ok=1; break; fi
    sleep 0.1
done
check_eq "background scrub completes" 1 "$ok"
curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
check "background scrub counts the bad blobs" grep -Eq '^pemnd_blob_integrity_failures_total\{found="scrub"\} [2-9]' "$T_TMP/metrics"
check "background scrub logs blob a" grep -q "scrub: bad blob $D_a" "$PEMND_LOG"
check "background scrub logs blob c" grep -q "scrub: bad blob $D_c" "$PEMND_LOG"
pemnd_stop
check_eq "SIGTERM stops pemnd promptly while it scrubs" 0 "$(kill -0 "$PEMND_PID" 2>/dev/null && echo 1 || echo 0)"

# a damaged file (pages overwritten) must not crash pemnd. Pages of a file are SQLite's;
# on the PostgreSQL leg the equivalent damage is rows gone behind pemnd's back: blob b's
# chunk deleted (a blob row with no bytes) and a's chunk cut short (fewer bytes than its size).
if t_on_pg; then
    db_sql "$PEMND_DB" "DELETE FROM blob_chunks c USING blobs b WHERE b.id = c.blob_id AND b.digest = '$D_b';
                        UPDATE blob_chunks c SET data = substr(c.data, 1, 100)
                        FROM blobs b WHERE b.id = c.blob_id AND b.digest = '$D_a'" >/dev/null
else
    cp "$T_TMP/good.db" "$PEMND_DB"
    rm -f "$PEMND_DB-wal" "$PEMND_DB-shm"
    sz=$(stat -c %s "$PEMND_DB")
    dd if=/dev/urandom of="$PEMND_DB" bs=1 seek=$((sz / 2)) count=$((sz / 4)) conv=notrunc 2>/dev/null
fi
if pemnd_start_on "$D" "$PEMND_PORT" --scrub-interval 0; then
    for d in "$D_a" "$D_b" "$D_c"; do
        s=$(http_status GET "$PEMND_URL/v1/blobs/$d")
        case $s in 200 | 404 | 500) pass "damaged file: blob answers $s" ;; *) fail "damaged file: blob" "status $s" ;; esac
    done
    if t_on_pg; then # rows gone are never served as a (short or empty) blob
        check_eq "missing chunk rows: blob b is 500" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_b")"
        check_eq "short chunk row: blob a is 500" 500 "$(http_status GET "$PEMND_URL/v1/blobs/$D_a")"
    fi
    http_status GET "$PEMND_URL/v1/models/net" >/dev/null
    check "damaged file: pemnd still alive" kill -0 "$PEMND_PID"
    check_eq "damaged file: health still answers" 200 "$(http_status GET "$PEMND_URL/v1/health")"
else
    pass "damaged file: pemnd refuses to start (no crash)"
fi
pemnd_admin scrub >"$T_TMP/scrub2.out" 2>&1
rc=$?
check "damaged file: scrub reports failure, not success" test "$rc" -ne 0
if t_on_pg; then
    check_eq "missing rows: scrub exit 3" 3 "$rc"
    check "missing rows: scrub names blob b" grep -q "^BAD $D_b" "$T_TMP/scrub2.out"
    check "missing rows: scrub names blob a" grep -q "^BAD $D_a" "$T_TMP/scrub2.out"
fi
t_done
