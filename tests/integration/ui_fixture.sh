# Fixture data for the web console's tests and benchmark (source me after lib.sh, with a
# pemnd running: PEMND_URL, PEMND_DB). Makes:
#   models  net 1.0.0 (release 1, accuracy 0.912 in its metadata), net 1.1.0 (release 2,
#           metadata with HTML/JS in it), tiny 1.0.0; tag net:stable -> 1.0.0
#   fleet   edge: net 1.0.0 everywhere, then a rollout of net 1.1.0 at 50 % with the abort
#           rule 60 % of at least 5, and UI_DEVICES devices (default 40): the ones in the
#           rollout report downloading / failed (reasons disk and bad-signature, messages with
#           HTML/JS) / installed on 1.1.0; the others installed 1.0.0.
# Sets PUB, DEV, RD, ADM (tokens), D1, D2 (digests), UI_IN (devices in the rollout), and
# the expected numbers UI_EXP_* for the checks.
ui_fixture() {
    local d=$T_TMP/fx n=${UI_DEVICES:-40} i dev code
    mkdir -p "$d"
    "$PEMN_MKPKG" keygen "$d/alice" >/dev/null && pemnd_admin key add "$d/alice.pub" --name alice >/dev/null ||
        return 1
    PUB=$(pemnd_token publish ops)
    DEV=$(pemnd_token device fleet-sim)
    RD=$(pemnd_token read viewer)
    ADM=$(pemnd_token admin root)
    UI_XSS='<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    "$PEMN_MKPKG" rich "$d/alice.key" net 1.0.0 1 "$d/net-1.pemn" accuracy=0.912 \
        "pemn.train={\"test_correct\":9120,\"test_samples\":10000}" >/dev/null || return 1
    "$PEMN_MKPKG" rich "$d/alice.key" net 1.1.0 2 "$d/net-2.pemn" "note=$UI_XSS" \
        "description=first line\"'</pre><b>not bold</b>" >/dev/null || return 1
    "$PEMN_MKPKG" pack "$d/alice.key" tiny 1.0.0 1 3000 "$d/tiny.pemn" 3 >/dev/null || return 1
    for f in net/1.0.0:net-1 net/1.1.0:net-2 tiny/1.0.0:tiny; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUB" \
            -T "$d/${f#*:}.pemn" "$PEMND_URL/v1/models/${f%/*}/versions/$(basename "${f%:*}")")
        [ "$code" = 201 ] || { echo "push $f: $code" >&2; return 1; }
    done
    D1="sha256:$(sha256sum "$d/net-1.pemn" | cut -c1-64)"
    D2="sha256:$(sha256sum "$d/net-2.pemn" | cut -c1-64)"
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" -d '{"version":"1.0.0"}' \
        "$PEMND_URL/v1/models/net/tags/stable"
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" \
        -d '{"model":"net","version":"1.0.0"}' "$PEMND_URL/v1/fleets/edge"
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" \
        -d '{"model":"net","version":"1.1.0","rollout":{"percent":50,"abort":{"failure_percent":60,"min_devices":5}}}' \
        "$PEMND_URL/v1/fleets/edge"
    UI_IN=0
    UI_EXP_INSTALLED=0 UI_EXP_FAILED=0 UI_EXP_DOWNLOADING=0 UI_EXP_OLD=0
    UI_EXP_DISK=0 UI_EXP_BADSIG=0
    local k=0
    for i in $(seq 0 $((n - 1))); do
        dev=$(printf 'cam-%03d' "$i")
        curl -s -o "$d/desired" -H "Authorization: Bearer $DEV" \
            "$PEMND_URL/v1/fleets/edge/devices/$dev/desired"
        if grep -q '"in_rollout":true' "$d/desired"; then
            UI_IN=$((UI_IN + 1))
            k=$((k + 1))
            case $((k % 5)) in
            0) ui_report "$dev" '"state":"failed","reason":"disk","message":"no space left <b>on /data</b>"' "$D2"
               UI_EXP_FAILED=$((UI_EXP_FAILED + 1)) UI_EXP_DISK=$((UI_EXP_DISK + 1)) ;;
            1) ui_report "$dev" '"state":"downloading"' "$D2"
               UI_DL_DEV=$dev
               UI_EXP_DOWNLOADING=$((UI_EXP_DOWNLOADING + 1)) ;;
            3) ui_report "$dev" '"state":"downloading"' "$D2"
               UI_XSS_DEV=$dev
               ui_report "$dev" "\"state\":\"failed\",\"reason\":\"bad-signature\",\"message\":$(jq -Rn --arg m "$UI_XSS" '$m')" "$D2"
               UI_EXP_FAILED=$((UI_EXP_FAILED + 1)) UI_EXP_BADSIG=$((UI_EXP_BADSIG + 1)) ;;
            *) ui_report "$dev" '"state":"installed","version":"1.1.0","release":2' "$D2"
               UI_EXP_INSTALLED=$((UI_EXP_INSTALLED + 1)) ;;
            esac
        else
            ui_report "$dev" '"state":"installed","version":"1.0.0","release":1' "$D1"
            UI_EXP_OLD=$((UI_EXP_OLD + 1))
        fi
    done
    UI_EXP_DEVICES=$n
    UI_EXP_REPORTING=$UI_IN
    return 0
}

# ui_report DEVICE 'JSON FIELDS' DIGEST
ui_report() {
    local extra=$2
    case $extra in *'"version"'*) ;; *) extra="$extra,\"version\":\"1.0.0\",\"release\":1" ;; esac
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $DEV" -H 'Content-Type: application/json' \
        -d "{$extra,\"digest\":\"$3\"}" "$PEMND_URL/v1/fleets/edge/devices/$1/status"
}
