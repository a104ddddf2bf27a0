#!/usr/bin/env bash
# The web console on a 10,000-device fleet (docs/BENCHMARKS.md, "Web console"): time for the
# fleet page to show it (first paint, data loaded; the browser's performance API) and
# pemnd's CPU per refresh, against the plain fleet GET of the same run.
#   DEVICES=10000 RUNS=5 REFRESHES=100 OPEN_SECONDS=20 bench/bench_ui.sh
set -u
BUILD=${BUILD:-build/release}
PEMN_ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
export BUILD PEMN_ROOT
. "$PEMN_ROOT/tests/integration/lib.sh"
DEVICES=${DEVICES:-10000}
D=$T_TMP
pemnd_start "$D/srv" --threads 2 --log-level warn || { echo "bench_ui: pemnd did not start" >&2; exit 1; }
"$PEMN_MKPKG" keygen "$D/k" >/dev/null && pemnd_admin key add "$D/k.pub" >/dev/null || exit 1
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
"$PEMN_MKPKG" rich "$D/k.key" net 1.0.0 1 "$D/1.pemn" >/dev/null || exit 1
"$PEMN_MKPKG" rich "$D/k.key" net 1.1.0 2 "$D/2.pemn" >/dev/null || exit 1
for v in 1 2; do
    curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/$v.pemn" \
        "$PEMND_URL/v1/models/net/versions/1.$((v - 1)).0"
done
D1="sha256:$(sha256sum "$D/1.pemn" | cut -c1-64)"
D2="sha256:$(sha256sum "$D/2.pemn" | cut -c1-64)"
for f in big small; do # small: the peer, the same page on 100 devices
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" -d '{"model":"net","version":"1.0.0"}' \
        "$PEMND_URL/v1/fleets/$f"
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" \
        -d '{"model":"net","version":"1.1.0","rollout":{"percent":30,"abort":{"failure_percent":50,"min_devices":100}}}' \
        "$PEMND_URL/v1/fleets/$f"
done
# DEVICES devices report over one keep-alive connection: 70 % installed on the old version,
# the rest on the new one (installed, downloading, or failed with one of three reasons)
t0=$(date +%s.%N)
for f in big:$DEVICES small:100; do
/usr/bin/python3 - "$PEMND_URL" "$DEV" "${f#*:}" "$D1" "$D2" "${f%:*}" <<'PY' || exit 1
import http.client, json, sys, urllib.parse
url, tok, n, d1, d2, fleet = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
reasons = ["disk", "download", "bad-signature"]
for i in range(n):
    if i % 10 < 7:
        body = {"state": "installed", "version": "1.0.0", "release": 1, "digest": d1}
    elif i % 10 < 9:
        body = {"state": "installed" if i % 3 else "downloading", "version": "1.1.0",
                "release": 2, "digest": d2}
    else:
        body = {"state": "failed", "reason": reasons[i % 3], "version": "1.0.0", "release": 1,
                "digest": d2, "message": "attempt %d failed" % (i % 7)}
    c.request("PUT", "/v1/fleets/%s/devices/%s-%05d/status" % (fleet, fleet, i), json.dumps(body),
              {"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("report %d: %d" % (i, r.status))
PY
done
t1=$(date +%s.%N)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fleet: $(curl -s "$PEMND_URL/v1/fleets/big" | jq -c '{devices: .devices.total, rollout: .rollout | {percent, state, reporting, failed}}')"
printf 'setup: %d + 100 device reports in %.1f s\n' "$DEVICES" "$(echo "$t1 - $t0" | bc)"
OUT=$PEMN_ROOT/$BUILD/ui-screenshots
mkdir -p "$OUT"
/usr/bin/python3 "$PEMN_ROOT/bench/bench_ui.py" "$PEMND_URL" big "$PEMND_PID" "$OUT"
