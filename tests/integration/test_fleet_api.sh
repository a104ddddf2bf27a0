#!/usr/bin/env bash
# Integration: the fleet routes of pemnd (docs/API.md "Fleets") driven with curl: auth and
# scopes, validation, desired state with ETag/304, reports and counts, rollouts (same
# target, new target, percentage 0, tags), pause/resume/abort, the automatic abort rule.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
pemnd_start "$D/srv" --allow-unbound-device-tokens --device-registration-rate 0 || { fail "pemnd starts" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
"$PEMN_MKPKG" keygen "$D/alice" >/dev/null && pemnd_admin key add "$D/alice.pub" >/dev/null ||
    { fail "setup key"; exit 1; }
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
RD=$(pemnd_token read)
U=$PEMND_URL
for v in 1 2 3; do
    "$PEMN_MKPKG" pack "$D/alice.key" net "1.$v.0" "$v" 3000 "$D/net-$v.pemn" "$v" >/dev/null
    curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/net-$v.pemn" \
        "$U/v1/models/net/versions/1.$v.0"
done
D1="sha256:$(sha256sum "$D/net-1.pemn" | cut -c1-64)"
D2="sha256:$(sha256sum "$D/net-2.pemn" | cut -c1-64)"
D3="sha256:$(sha256sum "$D/net-3.pemn" | cut -c1-64)"
B=$T_TMP/body
pub() { http_status "$1" "$U$2" -H "Authorization: Bearer $PUB" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
dev() { http_status "$1" "$U$2" -H "Authorization: Bearer $DEV" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
report() { # DEVICE STATE DIGEST [REASON] [FLEET]
    dev PUT "/v1/fleets/${5:-edge}/devices/$1/status" \
        "{\"state\":\"$2\",\"digest\":\"$3\",\"version\":\"1.0.0\",\"release\":1${4:+,\"reason\":\"$4\"}}"
}

# ---- auth and validation ----------------------------------------------------------------
body='{"model":"net","version":"1.1.0"}'
check_eq "put fleet without token: 401" 401 "$(http_status PUT "$U/v1/fleets/edge" -d "$body")"
check_eq "put fleet with device token: 403" 403 "$(dev PUT /v1/fleets/edge "$body")"
check_eq "put fleet with read token: 403" 403 \
    "$(http_status PUT "$U/v1/fleets/edge" -H "Authorization: Bearer $RD" -d "$body")"
check_eq "not JSON: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":')"
check_eq "both version and tag: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","tag":"x"}')"
check_eq "neither version nor tag: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net"}')"
check_eq "percent 101: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","rollout":{"percent":101}}')"
check_eq "percent as text: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","rollout":{"percent":"20"}}')"
check_eq "unknown field: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","percent":5}')"
check_eq "abort at 0%: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","rollout":{"abort":{"failure_percent":0}}}')"
check_eq "negative min_devices: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","rollout":{"abort":{"failure_percent":5,"min_devices":-1}}}')"
check_eq "bad model name: 400" 400 "$(pub PUT /v1/fleets/edge '{"model":"../x","version":"1.1.0"}')"
check_eq "unknown version: 404" 404 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"9.9.9"}')"
check_eq "unknown model: 404" 404 "$(pub PUT /v1/fleets/edge '{"model":"nope","version":"1.1.0"}')"
check_eq "bad fleet name: 400" 400 "$(pub PUT '/v1/fleets/.hidden' "$body")"
check_eq "nothing stored by refusals" 404 "$(http_status GET "$U/v1/fleets/edge")"

# ---- a fleet -----------------------------------------------------------------------------
check_eq "put fleet: 200" 200 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0"}')"
check_eq "target version" 1.1.0 "$(json_get "$B" target.version)"
check_eq "target digest" "$D1" "$(json_get "$B" target.digest)"
check_eq "target package_url" "/v1/blobs/$D1" "$(json_get "$B" target.package_url)"
check_eq "no previous" null "$(jq -r .previous "$B")"
check_eq "rollout active" active "$(json_get "$B" rollout.state)"
check_eq "default percent 100" 100 "$(jq -r '.rollout.percent' "$B")"
R1=$(json_get "$B" rollout.id)
check "rollout id is 32 hex" grep -Eq '^[0-9a-f]{32}$' <<<"$R1"
check_eq "get fleet" 200 "$(http_status GET "$U/v1/fleets/edge")"
check_eq "list fleets" edge "$(http_status GET "$U/v1/fleets" >/dev/null; jq -r '.fleets[0].fleet' "$B")"

# ---- desired state ------------------------------------------------------------------------
check_eq "desired without token: 401" 401 "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired")"
check_eq "desired with publish token: 403" 403 \
    "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired" -H "Authorization: Bearer $PUB")"
code=$(curl -s -D "$D/h" -o "$B" -w '%{http_code}' -H "Authorization: Bearer $DEV" \
    "$U/v1/fleets/edge/devices/cam1/desired")
check_eq "desired: 200" 200 "$code"
check_eq "desired version" 1.1.0 "$(json_get "$B" version)"
check_eq "desired release" 1 "$(json_get "$B" release)"
check_eq "desired digest" "$D1" "$(json_get "$B" digest)"
check_eq "desired size" "$(stat -c %s "$D/net-1.pemn")" "$(json_get "$B" size)"
check_eq "desired rollout_id" "$R1" "$(json_get "$B" rollout_id)"
check_eq "desired device" cam1 "$(json_get "$B" device)"
ETAG=$(grep -i '^etag:' "$D/h" | sed 's/^[Ee][Tt][Aa][Gg]: *//' | tr -d '\r')
check "desired has an ETag" grep -Eq '^"[0-9a-f]{32}"$' <<<"$ETAG"
check_eq "If-None-Match: 304" 304 "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired" \
    -H "Authorization: Bearer $DEV" -H "If-None-Match: $ETAG")"
check_eq "304 has no body" 0 "$(stat -c %s "$B")"
check_eq "If-None-Match in a list, weak: 304" 304 "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired" \
    -H "Authorization: Bearer $DEV" -H "If-None-Match: \"x\", W/$ETAG")"
check_eq "other ETag: 200" 200 "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired" \
    -H "Authorization: Bearer $DEV" -H 'If-None-Match: "0000"')"
check_eq "unknown fleet: 404" 404 "$(dev GET /v1/fleets/nope/devices/cam1/desired)"
check_eq "device registered on first contact" 200 "$(http_status GET "$U/v1/fleets/edge/devices/cam1")"
check_eq "device state empty before a report" "" "$(json_get "$B" state)"
check_eq "unknown device: 404" 404 "$(http_status GET "$U/v1/fleets/edge/devices/ghost")"

# ---- reports ------------------------------------------------------------------------------
check_eq "report: bad state 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"happy"}')"
check_eq "report: failed without reason 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"failed"}')"
check_eq "report: bad digest 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"installed","digest":"md5:00"}')"
check_eq "report: bad reason 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"failed","reason":"a b"}')"
check_eq "report: negative release 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"installed","release":-1}')"
check_eq "report: unknown field 400" 400 "$(dev PUT /v1/fleets/edge/devices/cam1/status '{"state":"installed","x":1}')"
check_eq "report with publish token: 403" 403 "$(pub PUT /v1/fleets/edge/devices/cam1/status '{"state":"installed"}')"
check_eq "report: unknown fleet 404" 404 "$(report cam1 installed "$D1" "" nope)"
check_eq "report: 200" 200 "$(report cam1 installed "$D1")"
check_eq "report counted for the rollout" true "$(jq -r .counted "$B")"
check_eq "report stored" installed "$(http_status GET "$U/v1/fleets/edge/devices/cam1" >/dev/null; json_get "$B" state)"
check_eq "report on another package: not counted" false "$(report cam2 downloading "$D3" >/dev/null; jq -r .counted "$B")"
http_status GET "$U/v1/fleets/edge" >/dev/null
check_eq "counts: total" 2 "$(json_get "$B" devices.total)"
check_eq "counts: installed" 1 "$(json_get "$B" devices.by_state.installed)"
check_eq "counts: by version" 2 "$(jq -r '.devices.by_version["1.0.0"]' "$B")"
check_eq "counts: rollout reporting" 1 "$(json_get "$B" rollout.reporting)"

# ---- rollouts -----------------------------------------------------------------------------
pub PUT /v1/fleets/edge '{"model":"net","version":"1.1.0","rollout":{"percent":50}}' >/dev/null
check_eq "same target: same rollout" "$R1" "$(json_get "$B" rollout.id)"
check_eq "same target: new percent" 50 "$(jq -r .rollout.percent "$B")"
check_eq "new target at 0%: 200" 200 "$(pub PUT /v1/fleets/edge '{"model":"net","version":"1.2.0","rollout":{"percent":0}}')"
R2=$(json_get "$B" rollout.id)
check "new target: new rollout id" test "$R2" != "$R1"
check_eq "new target: previous is the old one" 1.1.0 "$(json_get "$B" previous.version)"
check_eq "at 0% a device gets the previous target" 1.1.0 \
    "$(dev GET /v1/fleets/edge/devices/cam1/desired >/dev/null; json_get "$B" version)"
check_eq "in_rollout false" false "$(jq -r .in_rollout "$B")"
check_eq "old ETag no longer matches" 200 "$(http_status GET "$U/v1/fleets/edge/devices/cam1/desired" \
    -H "Authorization: Bearer $DEV" -H "If-None-Match: $ETAG")"
check_eq "tag the new version" 200 "$(pub PUT /v1/models/net/tags/stable '{"version":"1.2.0"}')"
pub PUT /v1/fleets/edge '{"model":"net","tag":"stable","rollout":{"percent":100}}' >/dev/null
check_eq "by tag: resolved" 1.2.0 "$(json_get "$B" target.version)"
check_eq "by tag: tag kept" stable "$(json_get "$B" target.tag)"
check_eq "by tag, same package: same rollout" "$R2" "$(json_get "$B" rollout.id)"
check_eq "at 100% a device gets the new target" 1.2.0 \
    "$(dev GET /v1/fleets/edge/devices/cam1/desired >/dev/null; json_get "$B" version)"
check_eq "unknown tag: 404" 404 "$(pub PUT /v1/fleets/edge '{"model":"net","tag":"nope"}')"

# ---- pause, resume, abort ------------------------------------------------------------------
check_eq "pause with device token: 403" 403 "$(dev POST /v1/fleets/edge/rollout/pause)"
check_eq "pause: 200" 200 "$(pub POST /v1/fleets/edge/rollout/pause)"
check_eq "paused" paused "$(json_get "$B" rollout.state)"
check_eq "paused: a device that has not started gets the previous target" 1.1.0 \
    "$(dev GET /v1/fleets/edge/devices/fresh1/desired >/dev/null; json_get "$B" version)"
report cam3 downloading "$D2" >/dev/null
check_eq "paused: a device that started keeps the new target" 1.2.0 \
    "$(dev GET /v1/fleets/edge/devices/cam3/desired >/dev/null; json_get "$B" version)"
check_eq "pause again: 200" 200 "$(pub POST /v1/fleets/edge/rollout/pause)"
check_eq "resume with a reason: 200" 200 "$(pub POST /v1/fleets/edge/rollout/resume '{"reason":"fixed"}')"
check_eq "resumed" active "$(json_get "$B" rollout.state)"
check "resume reason recorded" grep -q 'fixed' <<<"$(json_get "$B" rollout.reason)"
check_eq "resumed: the fresh device moves" 1.2.0 \
    "$(dev GET /v1/fleets/edge/devices/fresh1/desired >/dev/null; json_get "$B" version)"
check_eq "bad action body: 400" 400 "$(pub POST /v1/fleets/edge/rollout/pause '{"why":1}')"
check_eq "unknown action: 404" 404 "$(pub POST /v1/fleets/edge/rollout/explode)"
check_eq "unknown fleet: 404" 404 "$(pub POST /v1/fleets/nope/rollout/pause)"
check_eq "abort: 200" 200 "$(pub POST /v1/fleets/edge/rollout/abort)"
check_eq "aborted" aborted "$(json_get "$B" rollout.state)"
check_eq "resume after abort: 409" 409 "$(pub POST /v1/fleets/edge/rollout/resume)"
check_eq "pause after abort: 409" 409 "$(pub POST /v1/fleets/edge/rollout/pause)"
check_eq "aborted: a fresh device gets the previous target" 1.1.0 \
    "$(dev GET /v1/fleets/edge/devices/fresh2/desired >/dev/null; json_get "$B" version)"
pub PUT /v1/fleets/edge '{"model":"net","version":"1.3.0"}' >/dev/null
check_eq "after an abort the aborted target is no fallback" 1.1.0 "$(json_get "$B" previous.version)"
check_eq "after an abort a new target is active" active "$(json_get "$B" rollout.state)"

# ---- a fleet with no previous target ----------------------------------------------------------
pub PUT /v1/fleets/first '{"model":"net","version":"1.1.0","rollout":{"percent":0}}' >/dev/null
check_eq "nothing for devices outside a first rollout: 404" 404 "$(dev GET /v1/fleets/first/devices/x/desired)"

# ---- the abort rule ----------------------------------------------------------------------------
pub PUT /v1/fleets/auto '{"model":"net","version":"1.1.0"}' >/dev/null
pub PUT /v1/fleets/auto '{"model":"net","version":"1.3.0","rollout":{"percent":100,"abort":{"failure_percent":50,"min_devices":4}}}' >/dev/null
check_eq "abort rule stored" 50 "$(jq -r .rollout.abort.failure_percent "$B")"
for i in 1 2 3; do report "a$i" failed "$D3" bad-signature auto >/dev/null; done
check_eq "3 failures of 3: below min_devices, still active" active "$(json_get "$B" rollout_state)"
report a4 installed "$D3" "" auto >/dev/null
check_eq "3 failures of 4 >= 50%: aborted" aborted "$(json_get "$B" rollout_state)"
http_status GET "$U/v1/fleets/auto" >/dev/null
check "abort reason names the rule" grep -q 'abort rule: 3 of 4' <<<"$(json_get "$B" rollout.reason)"
check_eq "failed count" 3 "$(json_get "$B" rollout.failed)"
check_eq "the fleet stops moving: a new device stays on the previous target" 1.1.0 \
    "$(dev GET /v1/fleets/auto/devices/a9/desired >/dev/null; json_get "$B" version)"
# the rule also fires while the rollout is paused (devices that started keep failing)
pub PUT /v1/fleets/auto2 '{"model":"net","version":"1.1.0"}' >/dev/null
pub PUT /v1/fleets/auto2 '{"model":"net","version":"1.3.0","rollout":{"abort":{"failure_percent":50,"min_devices":2}}}' >/dev/null
report b1 downloading "$D3" "" auto2 >/dev/null
report b2 downloading "$D3" "" auto2 >/dev/null
pub POST /v1/fleets/auto2/rollout/pause >/dev/null
report b1 failed "$D3" disk auto2 >/dev/null
check_eq "paused, 1 of 2 failed (50%): aborted" aborted "$(json_get "$B" rollout_state)"
check "audit names the abort rule" grep -q 'abort-rule' <<<"$(pemnd_admin audit --limit 50)"
t_done
