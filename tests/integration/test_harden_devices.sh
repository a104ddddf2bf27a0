#!/usr/bin/env bash
# Hardening item 4: device tokens reach no further than their binding. A fleet-bound token
# cannot move (or report for) a device of another fleet; unbound device tokens act only when
# allow_unbound_device_tokens is set; a token registers devices within a count and a rate
# (429 past them); the audit log names the token whose report tripped an abort.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
"$PEMN_MKPKG" keygen "$D/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$D/alice.key" net 1.0.0 1 3000 "$D/net-1.pemn" 1 >/dev/null
pemnd_start "$D/srv" --device-registrations-max 5 || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$D/alice.pub" >/dev/null
PUB=$(pemnd_token publish)
U=$PEMND_URL
B=$T_TMP/body
as() { http_status "$2" "$U$3" -H "Authorization: Bearer $1" ${4:+-H 'Content-Type: application/json' -d "$4"}; }
check_eq "push" 201 "$(http_status PUT "$U/v1/models/net/versions/1.0.0" -H "Authorization: Bearer $PUB" -T "$D/net-1.pemn")"
check_eq "fleet a" 200 "$(as "$PUB" PUT /v1/fleets/a '{"model":"net","version":"1.0.0","rollout":{"percent":100,"abort":{"failure_percent":50,"min_devices":2}}}')"
check_eq "fleet b" 200 "$(as "$PUB" PUT /v1/fleets/b '{"model":"net","version":"1.0.0"}')"
TA=$(pemnd_admin token create --scope device --name fleet-a-tok --fleet a | tail -n 1)
CAM=$(pemnd_admin token create --scope device --name cam1-tok --device cam1 --fleet b | tail -n 1)
UNB=$(pemnd_token device loose)
st='{"state":"installed","version":"1.0.0","release":1}'
check_eq "cam1 polls fleet b with its own token" 200 "$(as "$CAM" GET /v1/fleets/b/devices/cam1/desired)"
check_eq "cam1 reports in fleet b" 200 "$(as "$CAM" PUT /v1/fleets/b/devices/cam1/status "$st")"

# a token bound to fleet a, acting for cam1 (a device of fleet b) inside fleet a
check_eq "fleet-a token cannot poll cam1 of fleet b into a" 403 "$(as "$TA" GET /v1/fleets/a/devices/cam1/desired)"
check "the refusal names the device's fleet" grep -q "belongs to fleet 'b'" "$B"
check_eq "fleet-a token cannot report for cam1" 403 "$(as "$TA" PUT /v1/fleets/a/devices/cam1/status '{"state":"failed","reason":"x"}')"
check_eq "cam1 is still in fleet b" 200 "$(http_status GET "$U/v1/fleets/b/devices/cam1")"
check_eq "cam1's last report is intact" installed "$(json_get "$B" state)"
check_eq "cam1 was not registered in fleet a" 404 "$(http_status GET "$U/v1/fleets/a/devices/cam1")"

# unbound device tokens are an opt-in
check_eq "unbound device token: 403 by default" 403 "$(as "$UNB" GET /v1/fleets/a/devices/x1/desired)"
check "the refusal names the setting" grep -q "allow_unbound_device_tokens" "$B"

# registration count: 5 devices per token
for i in 1 2 3 4 5; do
    s=$(as "$TA" GET "/v1/fleets/a/devices/a$i/desired")
    [ "$s" = 200 ] || fail "register a$i" "status $s"
done
check_eq "the 6th new device of one token: 429" 429 "$(as "$TA" GET /v1/fleets/a/devices/a6/desired)"
check_eq "429 code" too_many_devices "$(json_get "$B" error.code)"
check_eq "a6 was not registered" 404 "$(http_status GET "$U/v1/fleets/a/devices/a6")"
check_eq "a registered device still polls" 200 "$(as "$TA" GET /v1/fleets/a/devices/a3/desired)"

# the abort rule: two failed reports through the fleet token; the audit names the token
as "$TA" PUT /v1/fleets/a/devices/a1/status '{"state":"failed","reason":"boom","version":"1.0.0","release":1,"digest":"'"$(sha256sum "$D/net-1.pemn" | cut -c1-64 | sed 's/^/sha256:/')"'"}' >/dev/null
as "$TA" PUT /v1/fleets/a/devices/a2/status '{"state":"failed","reason":"boom","version":"1.0.0","release":1,"digest":"'"$(sha256sum "$D/net-1.pemn" | cut -c1-64 | sed 's/^/sha256:/')"'"}' >/dev/null
check_eq "the rollout aborted" aborted "$(http_status GET "$U/v1/fleets/a" >/dev/null; json_get "$B" rollout.state)"
check "the audit log names the token whose report tripped the abort" bash -c "'$PEMND_BIN' --db '$PEMND_DB' audit | grep 'fleet.abort' | grep -q 'fleet-a-tok'"
pemnd_stop

# registration rate: 3 per minute; and the opt-in for simulations
pemnd_start_on "$D/srv" "$PEMND_PORT" --device-registration-rate 3 --allow-unbound-device-tokens || fail "restart"
for i in 1 2 3; do
    s=$(as "$UNB" GET "/v1/fleets/b/devices/r$i/desired")
    [ "$s" = 200 ] || fail "register r$i" "status $s"
done
check_eq "opted-in unbound token: the 4th device within a minute is 429" 429 "$(as "$UNB" GET /v1/fleets/b/devices/r4/desired)"
check "the refusal says why" grep -q "last minute" "$B"
t_done
