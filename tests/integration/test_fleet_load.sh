#!/usr/bin/env bash
# Integration (smoke of bench/bench_fleet.sh): 200 distinct devices poll one pemnd for their
# desired state with If-None-Match (2,000 steady polls, bounded to 30 s): zero errors, every
# first contact answered 200 with an ETag and every steady poll 304; all devices registered.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
BIN=$PEMN_ROOT/$BUILD/bench/bench_fleet_poll
pemnd_start "$D/srv" --log-level warn --allow-unbound-device-tokens --device-registration-rate 0 || { fail "pemnd starts"; exit 1; }
"$PEMN_MKPKG" keygen "$D/k" >/dev/null && pemnd_admin key add "$D/k.pub" >/dev/null
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
"$PEMN_MKPKG" pack "$D/k.key" net 1.0.0 1 2048 "$D/p.pemn" >/dev/null
curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/p.pemn" "$PEMND_URL/v1/models/net/versions/1.0.0"
check_eq "put fleet" 200 "$(http_status PUT "$PEMND_URL/v1/fleets/load" -H "Authorization: Bearer $PUB" \
    -d '{"model":"net","version":"1.0.0"}')"
"$BIN" "$PEMND_URL" load "$DEV" --devices 200 --threads 4 --requests 2000 --seconds 30 >"$D/out" 2>&1
check_eq "load tool exit status" 0 "$?"
cat "$D/out"
check "first contact: 200 x 200" grep -q 'first-contact.* 200=200 304=0 404=0 errors=0' "$D/out"
check "steady: 2000 x 304" grep -q 'steady .*requests=2000 .* 200=0 304=2000 404=0 errors=0' "$D/out"
check "zero errors" grep -q '^fleet-poll errors=0$' "$D/out"
check_eq "all devices registered" 200 \
    "$(http_status GET "$PEMND_URL/v1/fleets/load" >/dev/null; json_get "$T_TMP/body" devices.total)"
t_done
