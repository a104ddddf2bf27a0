#!/usr/bin/env bash
# Integration: two pemnd replicas on one PostgreSQL database behind nginx (deploy/nginx/).
#   - concurrent pushes, tag moves, fleet changes and device reports through nginx keep the
#     invariants: releases stored in order, the fleet that follows a tag ends on the tag's
#     last version (no lost rollout), the abort rule fires exactly when it should, every
#     fetched package verifies (also from nginx's cache), both replicas answer the same;
#   - killing one replica mid-load loses no acknowledged write and retrying clients see no
#     error;
#   - restarting PostgreSQL mid-load: pemnd recovers without a restart.
# Starts and stops its own throwaway cluster (tests/pg/cluster.sh) and nginx.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
CL=tests/pg/cluster.sh
bash "$CL" available || { fail "PostgreSQL server binaries installed"; exit 1; }
command -v nginx >/dev/null || { fail "nginx installed"; exit 1; }
PGDIR=$(mktemp -d /tmp/pemn-pgrep.XXXXXX)
NGINX_PID=
stop_all() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    t_cleanup
    bash "$PEMN_ROOT/$CL" stop "$PGDIR"
}
trap stop_all EXIT
cd "$PEMN_ROOT" || exit 1
bash "$CL" start "$PGDIR" >"$D/cluster.log" 2>&1 || { fail "cluster starts" "$(tail -3 "$D/cluster.log")"; exit 1; }
DB=$(bash "$CL" newdb "$PGDIR" replicas) || { fail "database created"; exit 1; }
admin() { "$PEMND_BIN" --db "$DB" "$@"; }
"$PEMN_MKPKG" keygen "$D/alice" >/dev/null && admin key add "$D/alice.pub" >/dev/null ||
    { fail "setup key"; exit 1; }
PUB=$(admin token create --scope publish | tail -n 1)
DEV=$(admin token create --scope device | tail -n 1)
check "a password in the URI is refused (passwords never on argv)" \
    bash -c "! '$PEMND_BIN' --db 'postgresql://u:secret@127.0.0.1/x' audit 2>&1 | grep -q secret"

# ---- two replicas and nginx ---------------------------------------------------------------
start_replica() { # N PORT
    "$PEMND_BIN" --db "$DB" --listen "127.0.0.1:$2" --log_level warn \
        --allow-unbound-device-tokens --device-registration-rate 0 >>"$D/r$1.log" 2>&1 &
    eval "R$1_PID=$!"
    T_PIDS+=("$!")
    wait_http "http://127.0.0.1:$2/v1/health" 10
}
P1=$(free_port) && P2=$(free_port) && PN=$(free_port) || { fail "free ports"; exit 1; }
start_replica 1 "$P1" && start_replica 2 "$P2" || { fail "replicas start" "$(tail -n 3 "$D/r1.log" "$D/r2.log")"; exit 1; }
mkdir -p "$D/nginx/cache" "$D/nginx/tmp"
sed -e "s|@PREFIX@|$D/nginx|g" -e "s|@LISTEN@|127.0.0.1:$PN|g" \
    -e "s|@UPSTREAMS@|server 127.0.0.1:$P1 max_fails=1 fail_timeout=3s; server 127.0.0.1:$P2 max_fails=1 fail_timeout=3s;|" \
    deploy/nginx/pemn-replicas.conf.in >"$D/nginx/nginx.conf"
nginx -p "$D/nginx" -c "$D/nginx/nginx.conf" -g 'daemon off; user root;' >"$D/nginx/out.log" 2>&1 &
NGINX_PID=$!
wait_http "http://127.0.0.1:$PN/v1/health" 10 || { fail "nginx starts" "$(cat "$D/nginx/out.log" "$D/nginx/error.log" 2>/dev/null | tail -5)"; exit 1; }
pass "two replicas and nginx up"
U=http://127.0.0.1:$PN
C=(curl -s --max-time 60 --retry 8 --retry-delay 1 --retry-all-errors)

# ---- packages: two publishers racing on one model ------------------------------------------
for r in $(seq 1 16); do
    "$PEMN_MKPKG" pack "$D/alice.key" net "1.$r.0" "$r" 3000 "$D/net-$r.pemn" "$r" >/dev/null
done
push() { # RELEASE [BASE URL] -> prints the status
    "${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" \
        -T "$D/net-$1.pemn" "${2:-$U}/v1/models/net/versions/1.$1.0"
}
push 1 >/dev/null
curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" "$U/v1/models/net/tags/stable" \
    -H 'Content-Type: application/json' -d '{"version":"1.1.0"}'
curl -s -o "$D/f.json" -X PUT -H "Authorization: Bearer $PUB" -H 'Content-Type: application/json' \
    -d '{"model":"net","tag":"stable","rollout":{"percent":100}}' "$U/v1/fleets/edge"
check_eq "fleet follows tag stable" 1.1.0 "$(json_get "$D/f.json" target.version)"
# A second release on the tag before the race gives the fleet a previous target, so every
# device has a desired state whatever the rollout percent: one inside the percent gets the
# target, one outside the previous. (Without it, a fleet change to percent < 100 landing
# before the first tag move leaves devices outside the percent with no target at all — a
# correct 404 "no target yet", and the race this check used to lose under load.)
push 2 >/dev/null
curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" "$U/v1/models/net/tags/stable" \
    -H 'Content-Type: application/json' -d '{"version":"1.2.0"}'
curl -s -o "$D/f.json" "$U/v1/fleets/edge"
check_eq "tag move: fleet on 1.2.0, previous 1.1.0" "1.2.0 1.1.0" \
    "$(jq -r '"\(.target.version) \(.previous.version)"' "$D/f.json")"

(for r in 4 6 8 10 12 14 16; do push "$r" "http://127.0.0.1:$P1"; echo; done) >"$D/pa" &
PA=$!
(for r in 3 5 7 9 11 13 15; do push "$r" "http://127.0.0.1:$P2"; echo; done) >"$D/pb" &
PB=$!
(for i in $(seq 1 12); do # tag moves through nginx, racing the pushes
    v=$(curl -s "$U/v1/models/net" | jq -r '.versions[0].version // empty')
    [ -n "$v" ] && "${C[@]}" -o /dev/null -w '%{http_code}\n' -X PUT -H "Authorization: Bearer $PUB" \
        -H 'Content-Type: application/json' -d "{\"version\":\"$v\"}" "$U/v1/models/net/tags/stable"
done) >"$D/tags" &
PT=$!
(for i in $(seq 1 12); do # fleet changes through nginx: the policy of the fleet on the tag
    "${C[@]}" -o /dev/null -w '%{http_code}\n' -X PUT -H "Authorization: Bearer $PUB" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"net\",\"tag\":\"stable\",\"rollout\":{\"percent\":$((50 + i * 4))}}" \
        "$U/v1/fleets/edge"
done) >"$D/fleets" &
PF=$!
(for i in $(seq 1 40); do # devices polling and reporting through nginx
    d=dev$((i % 10))
    # polls retry transient failures (timeouts, 502/503) as the agent does; a 404 is final
    code=$("${C[@]}" -o "$D/want.$d" -w '%{http_code}' -H "Authorization: Bearer $DEV" \
        "$U/v1/fleets/edge/devices/$d/desired")
    echo "poll $i $d $code $(head -c 300 "$D/want.$d" 2>/dev/null)" >>"$D/polls"
    dg=$(jq -r '.digest // empty' "$D/want.$d" 2>/dev/null)
    [ -n "$dg" ] && "${C[@]}" -o /dev/null -w '%{http_code}\n' -X PUT -H "Authorization: Bearer $DEV" \
        -H 'Content-Type: application/json' \
        -d "{\"state\":\"installed\",\"digest\":\"$dg\",\"version\":\"1.0.0\",\"release\":1}" \
        "$U/v1/fleets/edge/devices/$d/status"
done) >"$D/reports" &
PR=$!
wait $PA $PB $PT $PR $PF
check "pushes answered 201 or 409 (rollback) only" \
    bash -c "! grep -Ev '^(201|409)$' '$D/pa' '$D/pb' | grep -q ."
check "devices reported (every poll found its desired state)" \
    bash -c "[ \$(grep -c '^200$' '$D/reports') -eq 40 ]"
grep -v '^poll [0-9]* dev[0-9] 200 {' "$D/polls" | head -5 # what a failed poll answered
check "tag moves, fleet changes and reports answered 200" \
    bash -c "! cat '$D/tags' '$D/fleets' '$D/reports' | grep -Ev '^200$' | grep -q ."
# releases stored in order: the push audit rows, newest first, have decreasing releases
admin audit --limit 200 | grep -o 'push *net/1\.[0-9]*\.0' | sed 's/.*net\/1\.\([0-9]*\)\.0/\1/' >"$D/order"
check "releases stored in increasing order" bash -c "sort -rn '$D/order' | diff -q - '$D/order' >/dev/null"
check "at least one push from each publisher stored" bash -c "[ \$(wc -l <'$D/order') -ge 3 ]"
# the fleet ended on the tag's last version: no tag move's rollout was lost
TAGV=$(curl -s "$U/v1/models/net/tags/stable" | jq -r .version)
curl -s -o "$D/f.json" "$U/v1/fleets/edge"
check_eq "fleet target = tag stable (no lost rollout)" "$TAGV" "$(json_get "$D/f.json" target.version)"
check_eq "fleet keeps the last policy set" 98 "$(jq -r .rollout.percent "$D/f.json")"
# both replicas give the same answers
a=$(curl -s "http://127.0.0.1:$P1/v1/models/net" | jq -S .)
b=$(curl -s "http://127.0.0.1:$P2/v1/models/net" | jq -S .)
check "replicas agree on the model" test -n "$a" -a "$a" = "$b"
a=$(curl -s "http://127.0.0.1:$P1/v1/fleets/edge" | jq -S .)
b=$(curl -s "http://127.0.0.1:$P2/v1/fleets/edge" | jq -S .)
check "replicas agree on the fleet" test -n "$a" -a "$a" = "$b"
# every package fetched through nginx verifies, twice (the second from the cache)
bad=0
for dg in $(curl -s "$U/v1/models/net" | jq -r '.versions[].digest'); do
    for k in 1 2; do
        got="sha256:$(curl -s "$U/v1/blobs/$dg" | sha256sum | cut -c1-64)"
        [ "$got" = "$dg" ] || bad=$((bad + 1))
    done
done
check_eq "every fetched package verifies" 0 "$bad"
check "nginx served blobs from its cache" grep -q ' HIT ' "$D/nginx/access.log"

# ---- the abort rule across replicas: fires exactly at the threshold ----------------------------
curl -s -o "$D/c.json" -X PUT -H "Authorization: Bearer $PUB" -H 'Content-Type: application/json' \
    -d '{"model":"net","version":"1.1.0","rollout":{"percent":100,"abort":{"failure_percent":50,"min_devices":4}}}' \
    "$U/v1/fleets/canary"
DG1=$(json_get "$D/c.json" target.digest)
rep() { # BASE DEVICE STATE
    curl -s -o "$D/rep.$2" -X PUT -H "Authorization: Bearer $DEV" -H 'Content-Type: application/json' \
        -d "{\"state\":\"$3\",\"digest\":\"$DG1\",\"version\":\"1.1.0\",\"release\":1${4:+,\"reason\":\"$4\"}}" \
        "$1/v1/fleets/canary/devices/$2/status"
}
rep "http://127.0.0.1:$P1" c1 installed
rep "http://127.0.0.1:$P2" c2 installed
check_eq "2 reports, none failed: active" active "$(curl -s "$U/v1/fleets/canary" | jq -r .rollout.state)"
# two failures at once on two replicas: alone each is 1 of 3 (33%); together 2 of 4 (50%)
rep "http://127.0.0.1:$P1" c3 failed crash &
w1=$!
rep "http://127.0.0.1:$P2" c4 failed crash &
wait $w1 $!
check_eq "2 of 4 failed at once on two replicas: aborted" aborted \
    "$(curl -s "$U/v1/fleets/canary" | jq -r .rollout.state)"
check_eq "the rollout counted 4 reports, 2 failed" "4 2" \
    "$(curl -s "$U/v1/fleets/canary" | jq -r '"\(.rollout.reporting) \(.rollout.failed)"')"
check "the abort names the rule" grep -q 'abort rule: 2 of 4' <<<"$(curl -s "$U/v1/fleets/canary" | jq -r .rollout.reason)"

# ---- kill one replica mid-load ---------------------------------------------------------------
for r in $(seq 1 12); do
    "$PEMN_MKPKG" pack "$D/alice.key" kill "1.$r.0" "$r" 2000 "$D/kill-$r.pemn" "$((r + 100))" >/dev/null
done
(for r in $(seq 1 12); do
    code=$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" \
        -T "$D/kill-$r.pemn" "$U/v1/models/kill/versions/1.$r.0")
    echo "$r $code"
done) >"$D/killload" &
PK=$!
sleep 0.3
kill -9 "$R2_PID"
wait $PK
check "every push through nginx acknowledged despite the killed replica" \
    bash -c "[ \$(grep -c ' 201$' '$D/killload') -eq 12 ]"
lost=0
while read -r r code; do
    [ "$code" = 201 ] || continue
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/models/kill/versions/1.$r.0")" = 200 ] || lost=$((lost + 1))
done <"$D/killload"
check_eq "no acknowledged write lost" 0 "$lost"

# ---- restart PostgreSQL mid-load: pemnd recovers by itself ---------------------------------
for r in $(seq 1 8); do
    "$PEMN_MKPKG" pack "$D/alice.key" pgr "1.$r.0" "$r" 2000 "$D/pgr-$r.pemn" "$((r + 200))" >/dev/null
done
(for r in $(seq 1 8); do
    code=$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" \
        -T "$D/pgr-$r.pemn" "$U/v1/models/pgr/versions/1.$r.0")
    echo "$r $code"
    sleep 0.2
done) >"$D/pgload" &
PL=$!
sleep 0.3
bash "$CL" restart "$PGDIR" >>"$D/cluster.log" 2>&1
check "PostgreSQL restarted" kill -0 "$(cat "$PGDIR/pid" 2>/dev/null || echo 0)"
wait $PL
check "pushes during the restart all acknowledged (clients retrying)" \
    bash -c "[ \$(grep -c ' 201$' '$D/pgload') -eq 8 ]"
check "replica 1 is the same process (no restart)" kill -0 "$R1_PID"
check_eq "replica 1 serves after the restart" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P1/v1/models/pgr/versions/1.8.0")"
"$PEMN_MKPKG" pack "$D/alice.key" after 1.0.0 1 2000 "$D/after.pemn" 300 >/dev/null
check_eq "a new push after the restart" 201 \
    "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" -T "$D/after.pemn" \
        "http://127.0.0.1:$P1/v1/models/after/versions/1.0.0")"
check "no password or secret in the replica logs" bash -c "! grep -qi 'password=' '$D/r1.log' '$D/r2.log'"
t_done
