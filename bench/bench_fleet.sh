#!/usr/bin/env bash
# Fleet polling load (docs/BENCHMARKS.md, "Fleet polling load (fleets)"): 1,000 distinct
# devices poll one pemnd on loopback for their desired state, as `pemn agent` does
# (If-None-Match; first contact registers the device). Bounded: REQUESTS steady-state polls
# or MAX_SECONDS, whichever comes first. In-run peer: GET /v1/health on the same daemon
# with the same threads and request count (the cheapest route: HTTP + routing only).
#   DEVICES=1000 THREADS=8 REQUESTS=50000 MAX_SECONDS=60 PEMND_THREADS=2 bench/bench_fleet.sh
set -u
BUILD=${BUILD:-build/release}
PEMN_ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
export BUILD PEMN_ROOT
BIN="$PEMN_ROOT/$BUILD/bench/bench_fleet_poll"
[ -x "$BIN" ] || { echo "bench_fleet: missing $BIN (make bench)" >&2; exit 2; }
. "$PEMN_ROOT/tests/integration/lib.sh"
DEVICES=${DEVICES:-1000}
THREADS=${THREADS:-8}
REQUESTS=${REQUESTS:-50000}
MAX_SECONDS=${MAX_SECONDS:-60}
PEMND_THREADS=${PEMND_THREADS:-2}
D=$T_TMP
pemnd_start "$D/srv" --threads "$PEMND_THREADS" --log-level warn --allow-unbound-device-tokens --device-registration-rate 0 --device-registrations-max 0 ||
    { echo "bench_fleet: pemnd did not start" >&2; exit 1; }
"$PEMN_MKPKG" keygen "$D/k" >/dev/null && pemnd_admin key add "$D/k.pub" >/dev/null || exit 1
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
"$PEMN_MKPKG" pack "$D/k.key" net 1.0.0 1 4096 "$D/p.pemn" >/dev/null || exit 1
curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/p.pemn" \
    "$PEMND_URL/v1/models/net/versions/1.0.0"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $PUB" \
    -d '{"model":"net","version":"1.0.0","rollout":{"percent":100}}' "$PEMND_URL/v1/fleets/bench")
[ "$code" = 200 ] || { echo "bench_fleet: PUT fleet: $code" >&2; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc);" \
    "pemnd threads=$PEMND_THREADS, log level warn"
"$BIN" "$PEMND_URL" bench "$DEV" --devices "$DEVICES" --threads "$THREADS" \
    --requests "$REQUESTS" --seconds "$MAX_SECONDS"
rc=$?
curl -s -H "Authorization: Bearer $PUB" "$PEMND_URL/v1/fleets/bench" |
    jq -c '{devices: .devices.total}'
exit $rc
