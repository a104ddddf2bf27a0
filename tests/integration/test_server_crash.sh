#!/usr/bin/env bash
# Crash safety: kill -9 pemnd in the middle of pushes, restart it, and check that the
# database passes PRAGMA integrity_check, the half-pushed version is absent, and the earlier
# packages are intact and byte-identical.
source "$(dirname "$0")/lib.sh"

D=$T_TMP/crash
K=$D/pkgs
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" || { fail keygen; exit 1; }
for i in 1 2 3; do
    "$PEMN_MKPKG" pack "$K/alice.key" net "$i" "$i" $((20000 * i)) "$K/net-$i.pemn" "$i"
done
"$PEMN_MKPKG" pack "$K/alice.key" net 4 4 $((3 * 1024 * 1024)) "$K/net-4.pemn" 4

# uploads past 64K are spooled to a temporary file: the kill hits that path too
pemnd_start "$D/run" --upload-memory-max 64K || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" >/dev/null
TOK=$(pemnd_token publish ci)
PORT=$PEMND_PORT
for i in 1 2 3; do
    check_eq "push $i before the crash" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/$i" \
        -H "Authorization: Bearer $TOK" --data-binary "@$K/net-$i.pemn")"
done

# 1. A slow push (throttled upload): kill -9 while the body is still arriving.
curl -s -o /dev/null --limit-rate 512K -X PUT -H "Authorization: Bearer $TOK" \
    --data-binary "@$K/net-4.pemn" "$PEMND_URL/v1/models/net/versions/4" &
CURL=$!
sleep 1.5
pemnd_stop KILL
wait "$CURL" 2>/dev/null

integrity() {
    db_integrity "$PEMND_DB"
}
check_eq "after kill -9: integrity_check ok" ok "$(integrity)"
pemnd_start_on "$D/run" "$PORT" --upload-memory-max 64K || pemnd_start "$D/run" --upload-memory-max 64K || { fail "restart"; exit 1; }
check_eq "after restart: the half-pushed version is absent" 404 \
    "$(http_status GET "$PEMND_URL/v1/models/net/versions/4")"
for i in 1 2 3; do
    check_eq "after restart: package $i fetched" 200 "$(http_status GET "$PEMND_URL/v1/models/net/versions/$i/package")"
    check "after restart: package $i byte-identical" cmp -s "$T_TMP/body" "$K/net-$i.pemn"
done
check_eq "after restart: latest is still 3" 3 "$(curl -s "$PEMND_URL/v1/models/net" | jq -r .latest.version)"
check_eq "after restart: the push can be repeated" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/4" \
    -H "Authorization: Bearer $TOK" --data-binary "@$K/net-4.pemn")"
check "after restart: no spooled upload left behind" bash -c "! ls -A '$D/run' | grep -q pemnd-upload"

# 2. Kills at random moments of fast pushes (receiving, verifying or committing): whatever
#    moment it hits, a version is either entirely there or not at all.
for round in 1 2 3 4 5; do
    v=$((10 + round))
    "$PEMN_MKPKG" pack "$K/alice.key" net "$v" "$v" $((1024 * 1024)) "$K/net-$v.pemn" "$v"
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $TOK" --data-binary "@$K/net-$v.pemn" \
        "$PEMND_URL/v1/models/net/versions/$v" &
    CURL=$!
    sleep "0.0$((RANDOM % 9 + 1))"
    pemnd_stop KILL
    wait "$CURL" 2>/dev/null
    check_eq "round $round: integrity_check ok" ok "$(integrity)"
    pemnd_start_on "$D/run" "$PORT" --upload-memory-max 64K || pemnd_start "$D/run" --upload-memory-max 64K || { fail "restart"; exit 1; }
    ST=$(http_status GET "$PEMND_URL/v1/models/net/versions/$v/package")
    if [ "$ST" = 200 ]; then
        check "round $round: stored version is complete" cmp -s "$T_TMP/body" "$K/net-$v.pemn"
    else
        check_eq "round $round: version absent" 404 "$ST"
        # release numbers only grow: push again so the next round is newer
        check_eq "round $round: re-push" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/$v" \
            -H "Authorization: Bearer $TOK" --data-binary "@$K/net-$v.pemn")"
    fi
    check_eq "round $round: package 1 intact" 200 "$(http_status GET "$PEMND_URL/v1/models/net/versions/1/package")"
    check "round $round: package 1 byte-identical" cmp -s "$T_TMP/body" "$K/net-1.pemn"
done
pemnd_stop
check_eq "final: integrity_check ok" ok "$(integrity)"
# SQLite's own write-ahead log (PostgreSQL's is the server's, not pemnd's, to checkpoint)
t_on_pg || check_eq "final: WAL checkpointed on clean shutdown" 0 "$(stat -c %s "$PEMND_DB-wal" 2>/dev/null || echo 0)"
t_done
