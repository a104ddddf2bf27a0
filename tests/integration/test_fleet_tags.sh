#!/usr/bin/env bash
# Integration: fleets that follow a tag (a tag move starts a new rollout in every fleet on
# that model+tag), device tokens bound to a device / fleet, and the stored report message
# (docs/API.md "Fleets").
. "$(dirname "$0")/lib.sh"
D=$T_TMP
pemnd_start "$D/srv" --allow-unbound-device-tokens --device-registration-rate 0 || { fail "pemnd starts" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
"$PEMN_MKPKG" keygen "$D/alice" >/dev/null && pemnd_admin key add "$D/alice.pub" >/dev/null ||
    { fail "setup key"; exit 1; }
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
U=$PEMND_URL
B=$T_TMP/body
for v in 1 2 3; do
    "$PEMN_MKPKG" pack "$D/alice.key" net "$v.0.0" "$v" 3000 "$D/net-$v.pemn" "$v" >/dev/null
    curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/net-$v.pemn" \
        "$U/v1/models/net/versions/$v.0.0"
done
pub() { http_status "$1" "$U$2" -H "Authorization: Bearer $PUB" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
as() { # TOKEN METHOD PATH [BODY]
    http_status "$2" "$U$3" -H "Authorization: Bearer $1" ${4:+-H 'Content-Type: application/json' -d "$4"}
}
tag() { pub PUT "/v1/models/net/tags/$1" "{\"version\":\"$2\"}"; }
desired() { # FLEET DEVICE -> version (empty on error)
    as "$DEV" GET "/v1/fleets/$1/devices/$2/desired" >/dev/null
    json_get "$B" version
}

# ---- a fleet on @stable follows the tag ----------------------------------------------------
check_eq "tag stable -> 1.0.0" 200 "$(tag stable 1.0.0)"
check_eq "fleet on @stable at 100%" 200 \
    "$(pub PUT /v1/fleets/all '{"model":"net","tag":"stable","rollout":{"percent":100,"abort":{"failure_percent":30,"min_devices":4}}}')"
check_eq "GET fleet shows the tag" stable "$(http_status GET "$U/v1/fleets/all" >/dev/null; json_get "$B" target.tag)"
check_eq "GET fleet shows the resolved version" 1.0.0 "$(json_get "$B" target.version)"
R1=$(json_get "$B" rollout.id)
check_eq "fixed-version fleet" 200 "$(pub PUT /v1/fleets/pinned '{"model":"net","version":"1.0.0"}')"
RP=$(json_get "$B" rollout.id)
check_eq "fleet on @stable at 20%" 200 \
    "$(pub PUT /v1/fleets/part '{"model":"net","tag":"stable","rollout":{"percent":20}}')"
check_eq "desired = 1.0.0 before the move" 1.0.0 "$(desired all d1)"

# moving the tag to the version it already names changes nothing
check_eq "re-set stable -> 1.0.0" 200 "$(tag stable 1.0.0)"
check_eq "same rollout after a no-op move" "$R1" \
    "$(http_status GET "$U/v1/fleets/all" >/dev/null; json_get "$B" rollout.id)"

check_eq "move stable -> 2.0.0" 200 "$(tag stable 2.0.0)"
http_status GET "$U/v1/fleets/all" >/dev/null
check_eq "fleet target follows the tag" 2.0.0 "$(json_get "$B" target.version)"
check_eq "fleet still names the tag" stable "$(json_get "$B" target.tag)"
check_eq "previous target is 1.0.0" 1.0.0 "$(json_get "$B" previous.version)"
R2=$(json_get "$B" rollout.id)
check "a new rollout id" test -n "$R2" -a "$R2" != "$R1"
check_eq "rollout active" active "$(json_get "$B" rollout.state)"
check_eq "percent kept" 100 "$(jq -r .rollout.percent "$B")"
check_eq "abort rule kept" 30 "$(jq -r .rollout.abort.failure_percent "$B")"
check_eq "abort min_devices kept" 4 "$(jq -r .rollout.abort.min_devices "$B")"
bad=0
for i in $(seq 1 20); do [ "$(desired all "dev$i")" = 2.0.0 ] || bad=$((bad + 1)); done
check_eq "desired = 2.0.0 for all devices at 100%" 0 "$bad"
check_eq "fixed-version fleet untouched (version)" 1.0.0 \
    "$(http_status GET "$U/v1/fleets/pinned" >/dev/null; json_get "$B" target.version)"
check_eq "fixed-version fleet untouched (rollout)" "$RP" "$(json_get "$B" rollout.id)"
check_eq "audit names the fleets moved" 2 \
    "$(pemnd_admin audit --limit 20 | grep -c 'fleet.follow')"
check "audit row for fleet all" bash -c "'$PEMND_BIN' --db '$PEMND_DB' audit --limit 20 | grep 'fleet.follow' | grep -q ' all '"

# ---- 20%: about a fifth of 100 devices get the new version, the rest the fallback ------------
n2=0 n1=0 other=0 mismatch=0
for i in $(seq 1 100); do
    as "$DEV" GET "/v1/fleets/part/devices/cam$i/desired" >/dev/null
    v=$(json_get "$B" version)
    in=$(jq -r .in_rollout "$B")
    case "$v" in
    2.0.0) n2=$((n2 + 1)); [ "$in" = true ] || mismatch=$((mismatch + 1)) ;;
    1.0.0) n1=$((n1 + 1)); [ "$in" = false ] || mismatch=$((mismatch + 1)) ;;
    *) other=$((other + 1)) ;;
    esac
done
check "20%: between 8 and 35 of 100 devices get 2.0.0 (got $n2)" test "$n2" -ge 8 -a "$n2" -le 35
check_eq "20%: every other device gets 1.0.0" 100 "$((n1 + n2))"
check_eq "20%: no device without a target" 0 "$other"
check_eq "20%: version agrees with in_rollout" 0 "$mismatch"
check_eq "20%: fleet percent kept" 20 \
    "$(http_status GET "$U/v1/fleets/part" >/dev/null; jq -r .rollout.percent "$B")"

# ---- deleting the tag leaves fleets where they are -------------------------------------------
R2=$(http_status GET "$U/v1/fleets/all" >/dev/null; json_get "$B" rollout.id)
check_eq "delete tag stable" 204 "$(pub DELETE /v1/models/net/tags/stable)"
http_status GET "$U/v1/fleets/all" >/dev/null
check_eq "after tag delete: target kept" 2.0.0 "$(json_get "$B" target.version)"
check_eq "after tag delete: rollout kept" "$R2" "$(json_get "$B" rollout.id)"
check_eq "after tag delete: desired kept" 2.0.0 "$(desired all d1)"
# the fleet still names the tag: creating it again moves the fleet
check_eq "tag stable -> 3.0.0 again" 200 "$(tag stable 3.0.0)"
check_eq "re-created tag is followed" 3.0.0 "$(desired all d1)"
# re-PUT by version: the fleet no longer follows
check_eq "re-PUT by version" 200 "$(pub PUT /v1/fleets/all '{"model":"net","version":"3.0.0"}')"
check_eq "no tag after re-PUT by version" "" "$(json_get "$B" target.tag)"
check_eq "move stable -> 1.0.0" 200 "$(tag stable 1.0.0)"
check_eq "fleet by version does not follow" 3.0.0 "$(desired all d1)"

# ---- device tokens bound to a device / a fleet -----------------------------------------------
BD=$(pemnd_admin token create --scope device --name cam1-tok --device cam1 --fleet pinned | tail -n 1)
BF=$(pemnd_admin token create --scope device --name pinned-tok --fleet pinned | tail -n 1)
check "bound token created" grep -q '^pemn_' <<<"$BD"
check "token list shows the binding" bash -c "'$PEMND_BIN' --db '$PEMND_DB' token list | grep 'cam1-tok' | grep -q 'device=cam1.*fleet=pinned'"
check_eq "binding a publish token: usage error" 2 \
    "$(pemnd_admin token create --scope publish --device cam1 >/dev/null 2>&1; echo $?)"
check_eq "bad device id: usage error" 2 \
    "$(pemnd_admin token create --scope device --device ../x >/dev/null 2>&1; echo $?)"
check_eq "bound token polls its own id: 200" 200 "$(as "$BD" GET /v1/fleets/pinned/devices/cam1/desired)"
check_eq "bound token, other id: 403" 403 "$(as "$BD" GET /v1/fleets/pinned/devices/cam2/desired)"
check_eq "403 code forbidden" forbidden "$(json_get "$B" error.code)"
check "403 message names the binding" grep -q "bound to device 'cam1'" "$B"
check_eq "bound token, other fleet: 403" 403 "$(as "$BD" GET /v1/fleets/part/devices/cam1/desired)"
check "403 message names the fleet binding" grep -q "bound to fleet 'pinned'" "$B"
st='{"state":"installed","version":"1.0.0","release":1}'
check_eq "bound token reports for itself: 200" 200 "$(as "$BD" PUT /v1/fleets/pinned/devices/cam1/status "$st")"
check_eq "bound token reports for another id: 403" 403 "$(as "$BD" PUT /v1/fleets/pinned/devices/cam2/status "$st")"
check_eq "refused report stored nothing" 404 "$(http_status GET "$U/v1/fleets/pinned/devices/cam2")"
check_eq "fleet-bound token, any id in its fleet: 200" 200 "$(as "$BF" GET /v1/fleets/pinned/devices/new9/desired)"
check_eq "fleet-bound token, other fleet: 403" 403 "$(as "$BF" GET /v1/fleets/part/devices/new9/desired)"
check_eq "unbound device token still acts as anyone: 200" 200 "$(as "$DEV" GET /v1/fleets/part/devices/zz/desired)"
pemnd_admin token revoke cam1-tok >/dev/null
check_eq "revoked bound token: 401" 401 "$(as "$BD" GET /v1/fleets/pinned/devices/cam1/desired)"

# ---- the report's message ---------------------------------------------------------------------
msg='disk /var at 100%: "quotes" and ünïcode'
body=$(jq -nc --arg m "$msg" '{state:"failed",reason:"disk-full",message:$m}')
check_eq "report with a message: 200" 200 "$(as "$DEV" PUT /v1/fleets/pinned/devices/m1/status "$body")"
check_eq "message stored" "$msg" "$(http_status GET "$U/v1/fleets/pinned/devices/m1" >/dev/null; json_get "$B" message)"
long256=$(printf 'a%.0s' $(seq 1 256))
long257="${long256}b"
check_eq "256-byte message: 200" 200 \
    "$(as "$DEV" PUT /v1/fleets/pinned/devices/m1/status "{\"state\":\"installed\",\"message\":\"$long256\"}")"
check_eq "256-byte message stored whole" 256 \
    "$(http_status GET "$U/v1/fleets/pinned/devices/m1" >/dev/null; jq -r '.message | length' "$B")"
check_eq "257-byte message: 400" 400 \
    "$(as "$DEV" PUT /v1/fleets/pinned/devices/m1/status "{\"state\":\"installed\",\"message\":\"$long257\"}")"
check_eq "message not a string: 400" 400 \
    "$(as "$DEV" PUT /v1/fleets/pinned/devices/m1/status '{"state":"installed","message":5}')"
check_eq "refused report kept the old message" 256 \
    "$(http_status GET "$U/v1/fleets/pinned/devices/m1" >/dev/null; jq -r '.message | length' "$B")"
check_eq "report without a message clears it" "" \
    "$(as "$DEV" PUT /v1/fleets/pinned/devices/m1/status '{"state":"installed"}' >/dev/null
       http_status GET "$U/v1/fleets/pinned/devices/m1" >/dev/null; json_get "$B" message)"
t_done
