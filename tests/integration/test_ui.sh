#!/usr/bin/env bash
# Integration: the web console (docs/CONSOLE.md). A real pemnd with fixture data (models
# pushed, a fleet mid-rollout with failures, HTML/JS in metadata and messages):
#   1. the console's read routes with curl: numbers, filters, scopes, bad input;
#   2. /ui/: content types, ETag/304, the Content-Security-Policy and nosniff, no path
#      traversal (escapes, dot segments, hidden files, symbolic links, unknown types);
#   3. the pages in headless Chromium (tests/integration/ui_browser.py): right numbers, no
#      console errors, live updates, actions with a token, injected HTML staying text;
#      screenshots under $BUILD/ui-screenshots/.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ui_fixture.sh"
D=$T_TMP
U=""
B=$T_TMP/body

# the console's files, plus traps: a symbolic link out of the directory, a hidden file, an
# unknown type
mkdir -p "$D/ui"
cp "$PEMN_ROOT"/ui/* "$D/ui/"
echo "secret" >"$D/secret.txt"
ln -s "$D/secret.txt" "$D/ui/leak.txt"
echo "hidden" >"$D/ui/.hidden.js"
echo "binary" >"$D/ui/notes.bak"

pemnd_start "$D/srv" --ui-dir "$D/ui" || { fail "pemnd starts" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
U=$PEMND_URL
ui_fixture || { fail "fixture" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
check "fixture: some devices in the rollout, some out" test "$UI_IN" -gt 3 -a "$UI_EXP_OLD" -gt 3

# ---- the console's API reads ------------------------------------------------------------------
get() { http_status GET "$U$1" "${@:2}"; }
check_eq "devices: 200" 200 "$(get '/v1/fleets/edge/devices?limit=1000')"
check_eq "devices: total" "$UI_EXP_DEVICES" "$(jq .total "$B")"
check_eq "devices: all listed" "$UI_EXP_DEVICES" "$(jq '.devices | length' "$B")"
check_eq "devices: newest report first" true \
    "$(jq '[.devices[].reported] as $r | $r == ($r | sort | reverse)' "$B")"
check_eq "devices: state=failed" "$UI_EXP_FAILED" \
    "$(get '/v1/fleets/edge/devices?state=failed' >/dev/null; jq .total "$B")"
check_eq "devices: reason=disk" "$UI_EXP_DISK" \
    "$(get '/v1/fleets/edge/devices?reason=disk' >/dev/null; jq '[.devices[] | select(.reason == "disk")] | length' "$B")"
check_eq "devices: version=1.1.0" "$UI_EXP_INSTALLED" \
    "$(get '/v1/fleets/edge/devices?version=1.1.0' >/dev/null; jq .total "$B")"
check_eq "devices: limit and offset" "2 2" \
    "$(get '/v1/fleets/edge/devices?limit=2&offset=3' >/dev/null; jq -r '"\(.devices | length) \(.limit)"' "$B")"
check_eq "devices: message kept as sent" "$UI_XSS" \
    "$(get "/v1/fleets/edge/devices?state=failed&reason=bad-signature&limit=1" >/dev/null; jq -r '.devices[0].message' "$B")"
check_eq "devices: bad state name: 400" 400 "$(get '/v1/fleets/edge/devices?state=%3Cb%3E')"
check_eq "devices: limit 0: 400" 400 "$(get '/v1/fleets/edge/devices?limit=0')"
check_eq "devices: limit 1001: 400" 400 "$(get '/v1/fleets/edge/devices?limit=1001')"
check_eq "devices: limit text: 400" 400 "$(get '/v1/fleets/edge/devices?limit=ten')"
check_eq "devices: unknown fleet: 404" 404 "$(get '/v1/fleets/nope/devices')"
check_eq "failures: 200" 200 "$(get /v1/fleets/edge/failures)"
check_eq "failures: by reason, most first" \
    "$( (echo "bad-signature $UI_EXP_BADSIG"; echo "disk $UI_EXP_DISK") | sort -k2,2nr -k1,1 | tr '\n' ' ')" \
    "$(jq -r '.failures[] | "\(.reason) \(.devices)"' "$B" | tr '\n' ' ')"
check_eq "failures: counted for the rollout" "$UI_EXP_FAILED" "$(jq '[.failures[].counted] | add' "$B")"
check_eq "failures: unknown fleet: 404" 404 "$(get /v1/fleets/nope/failures)"
check_eq "progress: 200" 200 "$(get /v1/fleets/edge/progress)"
RID=$(curl -s "$U/v1/fleets/edge" | jq -r .rollout.id)
check_eq "progress: of the current rollout" "$RID" "$(jq -r .rollout_id "$B")"
check "progress: at least one sample" test "$(jq '.samples | length' "$B")" -ge 1
check_eq "progress: first sample at the rollout's start" 0 "$(jq '.samples[0].reporting' "$B")"
check_eq "progress: samples in time order" true \
    "$(jq '[.samples[].at] as $a | $a == ($a | sort)' "$B")"
check_eq "progress: bad rollout id: 400" 400 "$(get '/v1/fleets/edge/progress?rollout=xyz')"
check_eq "progress: unknown rollout: no samples" 0 \
    "$(get "/v1/fleets/edge/progress?rollout=$(printf '0%.0s' $(seq 32))" >/dev/null; jq '.samples | length' "$B")"
sleep 1.1 # a new second: the next counted report is due for a sample
ui_report "$UI_DL_DEV" '"state":"verifying"' "$D2"
get /v1/fleets/edge/progress >/dev/null
check_eq "progress: a counted report adds a sample with the counts" \
    "$UI_EXP_REPORTING $UI_EXP_FAILED" "$(jq -r '.samples[-1] | "\(.reporting) \(.failed)"' "$B")"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $PUB" "$U/v1/fleets/edge/rollout/pause"
get /v1/fleets/edge/progress >/dev/null
check_eq "progress: a pause is sampled at once" paused "$(jq -r '.samples[-1].state' "$B")"
curl -s -o /dev/null -X POST -H "Authorization: Bearer $PUB" "$U/v1/fleets/edge/rollout/resume"
ui_report "$UI_DL_DEV" '"state":"downloading"' "$D2"
check_eq "reports: 200" 200 "$(get "/v1/fleets/edge/devices/$UI_XSS_DEV/reports")"
check_eq "reports: newest first" "failed downloading" "$(jq -r '[.reports[].state] | join(" ")' "$B")"
check_eq "reports: the message as sent" "$UI_XSS" "$(jq -r '.reports[0].message' "$B")"
check_eq "reports: counted for the rollout" "$RID" "$(jq -r '.reports[0].rollout_id' "$B")"
check_eq "reports: limit" 1 "$(get "/v1/fleets/edge/devices/$UI_XSS_DEV/reports?limit=1" >/dev/null; jq '.reports | length' "$B")"
check_eq "reports: limit 65: 400" 400 "$(get "/v1/fleets/edge/devices/$UI_XSS_DEV/reports?limit=65")"
check_eq "reports: unknown device: 404" 404 "$(get /v1/fleets/edge/devices/nobody/reports)"
for i in $(seq 1 70); do ui_report "$UI_DL_DEV" '"state":"downloading"' "$D2"; done
check_eq "reports: bounded to the last 64" 64 \
    "$(get "/v1/fleets/edge/devices/$UI_DL_DEV/reports" >/dev/null; jq '.reports | length' "$B")"
check_eq "contents: 200" 200 "$(get /v1/models/net/versions/1.0.0/contents)"
check_eq "contents: accuracy from metadata" 0.912 "$(jq .accuracy "$B")"
check_eq "contents: prototypes" "seeded explicit" "$(jq -r '[.prototypes[].kind] | join(" ")' "$B")"
check_eq "contents: tensors" "fc1.weight:masked fc2.weight:masked fc2.bias:dense" \
    "$(jq -r '[.tensors[] | "\(.name):\(.kind)"] | join(" ")' "$B")"
check_eq "contents: bytes by kind add up to the size" "$(jq .size "$B")" \
    "$(jq '.bytes.masks + .bytes.dense + .bytes.prototypes + .bytes.other' "$B")"
check_eq "contents: masks are 1 bit per weight" "$(jq '[.tensors[] | select(.kind == "masked") | .numel] | add / 8' "$B")" \
    "$(jq .bytes.masks "$B")"
check_eq "contents: signature is the trailer's" \
    "$(tail -c 64 "$T_TMP/fx/net-1.pemn" | od -An -v -tx1 | tr -d ' \n')" "$(jq -r .signature.signature "$B")"
check_eq "contents: fleets running it" "edge:previous" "$(jq -r '.fleets[] | "\(.fleet):\(.role)"' "$B")"
check_eq "contents: no accuracy recorded: null" null \
    "$(get /v1/models/net/versions/1.1.0/contents >/dev/null; jq .accuracy "$B")"
check_eq "contents: metadata kept as text" "$UI_XSS" "$(jq -r .metadata.note "$B")"
check_eq "contents: unknown version: 404" 404 "$(get /v1/models/net/versions/9.9.9/contents)"
# the audit log: publish or admin only
check_eq "audit: no token: 401" 401 "$(get /v1/audit)"
check_eq "audit: read token: 403" 403 "$(get /v1/audit -H "Authorization: Bearer $RD")"
check_eq "audit: device token: 403" 403 "$(get /v1/audit -H "Authorization: Bearer $DEV")"
check_eq "audit: admin token: 200" 200 "$(get /v1/audit -H "Authorization: Bearer $ADM")"
check_eq "audit: publish token: 200" 200 "$(get '/v1/audit?limit=1000' -H "Authorization: Bearer $PUB")"
ALL=$(jq '.entries | length' "$B")
check_eq "audit: newest first" true "$(jq '[.entries[].id] as $i | $i == ($i | sort | reverse)' "$B")"
check_eq "audit: action prefix" true \
    "$(get '/v1/audit?action=fleet' -H "Authorization: Bearer $PUB" >/dev/null; jq '(.entries | length) > 0 and all(.entries[]; .action | startswith("fleet."))' "$B")"
check_eq "audit: exact action" "tag.set net:stable" \
    "$(get '/v1/audit?action=tag.set' -H "Authorization: Bearer $PUB" >/dev/null; jq -r '.entries[] | "\(.action) \(.target)"' "$B")"
check_eq "audit: actor" true \
    "$(get '/v1/audit?actor=ops' -H "Authorization: Bearer $PUB" >/dev/null; jq '(.entries | length) > 0 and all(.entries[]; .actor == "ops")' "$B")"
check_eq "audit: target prefix" 2 \
    "$(get '/v1/audit?target=net/*&action=push' -H "Authorization: Bearer $PUB" >/dev/null; jq '.entries | length' "$B")"
check_eq "audit: free text, percent-encoded" 1 \
    "$(get '/v1/audit?q=net%2F1.1.0%2050.00%25' -H "Authorization: Bearer $PUB" >/dev/null; jq '.entries | length' "$B")"
check_eq "audit: paging with before" "$((ALL - 2))" \
    "$(get '/v1/audit?limit=2' -H "Authorization: Bearer $PUB" >/dev/null; nb=$(jq .next_before "$B");
       get "/v1/audit?limit=1000&before=$nb" -H "Authorization: Bearer $PUB" >/dev/null; jq '.entries | length' "$B")"
check_eq "audit: bad escape: 400" 400 "$(get '/v1/audit?q=%zz' -H "Authorization: Bearer $PUB")"
check_eq "audit: NUL: 400" 400 "$(get '/v1/audit?q=a%00b' -H "Authorization: Bearer $PUB")"
check_eq "audit: limit 0: 400" 400 "$(get '/v1/audit?limit=0' -H "Authorization: Bearer $PUB")"
# revalidation like every JSON GET
ET=$(curl -s -D - -o /dev/null "$U/v1/fleets/edge/progress" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
check_eq "progress: 304 with its ETag" 304 "$(get /v1/fleets/edge/progress -H "If-None-Match: $ET")"

# ---- /ui/: files and headers -------------------------------------------------------------------
hdr() { curl -s -D - -o "$B" "$U$1" "${@:2}" | tr -d '\r'; }
H=$(hdr /ui/)
check_eq "ui: index is 200" 200 "$(head -1 <<<"$H" | cut -d' ' -f2)"
check_eq "ui: index is the console's index.html" "$(sha256sum <"$D/ui/index.html")" "$(sha256sum <"$B")"
check "ui: index is text/html" grep -qx 'Content-Type: text/html; charset=utf-8' <<<"$H"
check "ui: CSP default-src 'self'" grep -q "^Content-Security-Policy: default-src 'self';" <<<"$H"
check "ui: CSP frame-ancestors 'none'" grep -q "^Content-Security-Policy: .*frame-ancestors 'none'" <<<"$H"
check "ui: CSP allows no inline script" bash -c "! grep -q unsafe-inline <<<\"\$1\"" _ "$H"
check "ui: CSP object-src 'none'" grep -q "object-src 'none'" <<<"$H"
check "ui: nosniff" grep -qx 'X-Content-Type-Options: nosniff' <<<"$H"
check "ui: no framing" grep -qx 'X-Frame-Options: DENY' <<<"$H"
check_eq "ui: js type" 'Content-Type: text/javascript; charset=utf-8' "$(hdr /ui/app.js | grep -i '^content-type')"
check_eq "ui: css type" 'Content-Type: text/css; charset=utf-8' "$(hdr /ui/console.css | grep -i '^content-type')"
check_eq "ui: svg type" 'Content-Type: image/svg+xml' "$(hdr /ui/favicon.svg | grep -i '^content-type')"
check_eq "ui: js is the file" "$(sha256sum <"$D/ui/api.js")" "$(hdr /ui/api.js >/dev/null; sha256sum <"$B")"
ET=$(hdr /ui/app.js | sed -n 's/^ETag: //p')
check "ui: ETag" grep -Eq '^"[0-9a-f]{32}"$' <<<"$ET"
check_eq "ui: If-None-Match: 304" 304 "$(get /ui/app.js -H "If-None-Match: $ET")"
check "ui: 304 keeps the CSP" grep -q '^Content-Security-Policy' <<<"$(hdr /ui/app.js -H "If-None-Match: $ET")"
check_eq "ui: HEAD" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$U/ui/app.js")"
check_eq "ui: /ui redirects to /ui/" "301 /ui/" \
    "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$U/ui" | sed "s|$U||")"
check_eq "ui: POST: 405" 405 "$(http_status POST "$U/ui/app.js")"
check_eq "ui: missing file: 404" 404 "$(get /ui/nope.js)"
check_eq "ui: unknown type: 404" 404 "$(get /ui/notes.bak)"
check_eq "ui: symbolic link: 404" 404 "$(get /ui/leak.txt)"
check "ui: symbolic link: nothing leaked" bash -c "! grep -q secret '$B'"
check_eq "ui: hidden file: 400" 400 "$(get /ui/.hidden.js)"
for p in '/ui/../v1/health' '/ui/..%2F..%2Fsecret.txt' '/ui/%2e%2e%2fsecret.txt' '/ui/%2e%2e/secret.txt' \
    '/ui/..' '/ui/sub/../app.js' '/ui/app.js%00.css' '/ui//etc/passwd' '/ui/%2Fetc%2Fpasswd'; do
    code=$(curl -s --path-as-is -o "$B" -w '%{http_code}' "$U$p")
    check "ui: traversal $p refused ($code)" bash -c "[ '$code' = 400 ] || [ '$code' = 404 ]"
    check "ui: traversal $p leaks nothing" bash -c "! grep -Eq 'secret|root:' '$B'"
done
check_eq "ui: no token needed for the files when reads need one" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$U/ui/app.js")"

# ---- the same data behind --read-token-required, on the default console directory ---------
SAVED_URL=$U
LOCK_PORT=""
for _ in 1 2 3 4 5; do
    LOCK_PORT=$(free_port) || break
    "$PEMND_BIN" --db "$PEMND_DB" --listen "127.0.0.1:$LOCK_PORT" --read-token-required \
        >>"$D/srv/locked.log" 2>&1 &
    LOCK_PID=$!
    T_PIDS+=("$LOCK_PID")
    wait_http "http://127.0.0.1:$LOCK_PORT/v1/health" 10 && break
done
LOCKED=http://127.0.0.1:$LOCK_PORT
check_eq "locked: reads need a token" 401 "$(http_status GET "$LOCKED/v1/fleets/edge/failures")"
check_eq "locked: console files found by default" 200 "$(http_status GET "$LOCKED/ui/")"
check_eq "locked: default directory is the source tree's ui/" \
    "$(sha256sum <"$PEMN_ROOT/ui/index.html")" "$(sha256sum <"$B")"
check_eq "locked: progress with a read token" 200 \
    "$(http_status GET "$LOCKED/v1/fleets/edge/progress" -H "Authorization: Bearer $RD")"

# ---- the browser --------------------------------------------------------------------------------
SHOTS=$PEMN_ROOT/$BUILD/ui-screenshots
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
EXP=$(jq -n --arg xss "$UI_XSS" --arg d2 "$D2" --arg dev "$DEV" --arg pub "$PUB" --arg rd "$RD" \
    --argjson devices "$UI_EXP_DEVICES" --argjson reporting "$UI_EXP_REPORTING" \
    --argjson failed "$UI_EXP_FAILED" --argjson installed "$UI_EXP_INSTALLED" \
    --argjson downloading "$UI_EXP_DOWNLOADING" --argjson old "$UI_EXP_OLD" \
    --argjson disk "$UI_EXP_DISK" --argjson badsig "$UI_EXP_BADSIG" \
    --arg dl "$UI_DL_DEV" --arg xdev "$UI_XSS_DEV" '{
      xss: $xss, d2: $d2, dev: $dev, pub: $pub, rd: $rd, devices: $devices,
      reporting: $reporting, failed: $failed, installed: $installed,
      downloading: $downloading, downloading_device: $dl, xss_device: $xdev,
      xss_device_reports: 2,
      by_state: {installed: ($installed + $old), failed: $failed, downloading: $downloading},
      by_version: {"1.0.0": ($old + $failed + $downloading), "1.1.0": $installed},
      failures: ({disk: $disk, "bad-signature": $badsig} | with_entries(select(.value > 0)))}')
if [ -n "$(jq -r '.devices' <<<"$EXP")" ] && /usr/bin/python3 -c 'import selenium' 2>/dev/null; then
    /usr/bin/python3 "$(dirname "$0")/ui_browser.py" "$SAVED_URL" "$LOCKED" "$SHOTS" "$EXP"
    rc=$?
    [ "$rc" -eq 0 ] || T_FAILS=$((T_FAILS + 1))
    for p in models-page model-page version-page fleets-page fleet-page device-page audit-page; do
        check "screenshot $p" test -s "$SHOTS/$p.png"
    done
else
    fail "browser" "python3-selenium is missing (deploy/install-deps.sh installs it)"
fi
t_done
