#!/usr/bin/env bash
# Hardening item 2: slow clients cannot hold pemnd's connection slots. One address
# (127.0.0.2) opening many connections that trickle their request heads gets at most
# per_ip_connection_limit of them (on by default), each closed after header_timeout however
# it trickles, while another address (127.0.0.1) is served normally; a body sent below
# body_min_rate is cut off after body_rate_window.
. "$(dirname "$0")/lib.sh"
SLOW="/usr/bin/python3 $PEMN_ROOT/tests/tools/slowconn.py"
"$PEMND_BIN" --print-config >"$T_TMP/cfg"
check "per-IP connection limit is on by default" grep -Eq '^per_ip_connection_limit = [1-9]' "$T_TMP/cfg"
check "a header deadline exists by default" grep -Eq '^header_timeout = [1-9]' "$T_TMP/cfg"
check "a minimum body rate exists by default" grep -Eq '^body_min_rate = [1-9]' "$T_TMP/cfg"

pemnd_start "$T_TMP/run" --connection-limit 40 --header-timeout 3 --body-min-rate 4K --body-rate-window 2 || { fail "pemnd starts"; exit 1; }
# 60 trickling connections from 127.0.0.2: a byte every 0.5 s (inside connection_timeout)
$SLOW headers 127.0.0.1 "$PEMND_PORT" 127.0.0.2 60 8 >"$T_TMP/slow.out" 2>&1 &
slow=$!
sleep 1.5
ok=0
for _ in 1 2 3 4 5; do
    s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PEMND_URL/v1/health")
    [ "$s" = 200 ] && ok=$((ok + 1))
done
check_eq "127.0.0.1 is served while 127.0.0.2 trickles 60 connections" 5 "$ok"
wait "$slow"
closed=$(sed -n 's/^closed //p' "$T_TMP/slow.out")
opened=$(sed -n 's/^opened //p' "$T_TMP/slow.out")
check_eq "127.0.0.2 opened 60 connections" 60 "$opened"
check_eq "every trickling connection was closed within 8 s (header_timeout 3)" "$opened" "$closed"
curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
check "metric counts slow heads" grep -Eq '^pemnd_slow_clients_closed_total\{reason="head"\} [1-9]' "$T_TMP/metrics"

# a body trickled at 200 B/s is cut off (body_min_rate 4K, window 2 s)
PUB=$(pemnd_token publish ci)
$SLOW trickle 127.0.0.1 "$PEMND_PORT" 100000 200 10 "$PUB" >"$T_TMP/trickle.out" 2>&1
check "a trickled body is cut off before 10 s" grep -qv none "$T_TMP/trickle.out"
curl -s "$PEMND_URL/metrics" >"$T_TMP/metrics"
check "metric counts slow bodies" grep -Eq '^pemnd_slow_clients_closed_total\{reason="body"\} [1-9]' "$T_TMP/metrics"
# a normal keep-alive client making several requests is unaffected
check_eq "keep-alive requests still work" "200200200" "$(curl -s -w "%{http_code}" -o /dev/null "$PEMND_URL/v1/health" -o /dev/null "$PEMND_URL/v1/health" -o /dev/null "$PEMND_URL/v1/health")"
t_done
