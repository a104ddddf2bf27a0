#!/usr/bin/env bash
# Trust costs (docs/BENCHMARKS.md, "Device trust (issue 10)"):
# 1. Fleet polling at steady state, signed desired state (pemnd --metadata-key) vs unsigned,
#    same database, same run, alternating ROUNDS times (the machine is shared: each round
#    pairs an unsigned and a signed run back to back). Reported: the median of the paired
#    ratios signed/unsigned of polls per second, the best round of each, and p99s.
# 2. Root chain walk on a device: `pemn agent --once --root v1` while the registry holds
#    versions 1..CHAIN (the agent fetches and checks CHAIN-1 links, then polls), against the
#    same agent cycle on a device already at the newest root (one 404 for the walk).
#   DEVICES=1000 THREADS=4 REQUESTS=40000 MAX_SECONDS=20 ROUNDS=5 CHAIN=100 bench/bench_trust_poll.sh
set -u
BUILD=${BUILD:-build/release}
PEMN_ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
export BUILD PEMN_ROOT
POLL="$PEMN_ROOT/$BUILD/bench/bench_fleet_poll"
[ -x "$POLL" ] || { echo "bench_trust_poll: missing $POLL (make bench)" >&2; exit 2; }
. "$PEMN_ROOT/tests/integration/lib.sh"
DEVICES=${DEVICES:-1000}
THREADS=${THREADS:-4}
REQUESTS=${REQUESTS:-40000}
MAX_SECONDS=${MAX_SECONDS:-20}
ROUNDS=${ROUNDS:-5}
CHAIN=${CHAIN:-100}
PEMND_THREADS=${PEMND_THREADS:-2}
D=$T_TMP
for k in root meta pub; do "$PEMN_MKPKG" keygen "$D/$k" >/dev/null || exit 1; done
"$PEMN_BIN" root init --out "$D/root1.json" --root-key "$D/root.key" --metadata-key "$D/meta.pub" \
    --publisher "$D/pub.pub=net" --expires 30 >/dev/null || exit 1
mkdir -p "$D/srv"
PEMND_DB=$D/srv/pemn.db
pemnd_admin root add "$D/root1.json" >/dev/null || exit 1
pemnd_admin key add "$D/pub.pub" >/dev/null || exit 1
PUB=$(pemnd_token publish)
DEV=$(pemnd_token device)
"$PEMN_MKPKG" pack "$D/pub.key" net 1.0.0 1 4096 "$D/p.pemn" >/dev/null || exit 1
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "pemnd threads=$PEMND_THREADS"

# ---- 1. polling ------------------------------------------------------------------------------
best_u=0 best_s=0 p99_u="" p99_s="" ratios=""
for round in $(seq 1 "$ROUNDS"); do
    for mode in unsigned signed; do
        extra=()
        [ "$mode" = signed ] && extra=(--metadata-key "$D/meta.key")
        pemnd_start "$D/srv" --threads "$PEMND_THREADS" --log-level warn "${extra[@]}" ||
            { echo "bench_trust_poll: pemnd ($mode) did not start" >&2; exit 1; }
        if [ "$round" = 1 ] && [ "$mode" = unsigned ]; then
            curl -s -o /dev/null -H "Authorization: Bearer $PUB" -T "$D/p.pemn" \
                "$PEMND_URL/v1/models/net/versions/1.0.0"
            curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" \
                -d '{"model":"net","version":"1.0.0"}' "$PEMND_URL/v1/fleets/bench"
        fi
        out=$("$POLL" "$PEMND_URL" bench "$DEV" --devices "$DEVICES" --threads "$THREADS" \
            --requests "$REQUESTS" --seconds "$MAX_SECONDS") ||
            { echo "bench_trust_poll: poll errors ($mode)" >&2; echo "$out"; exit 1; }
        line=$(echo "$out" | grep 'fleet-poll steady')
        echo "round $round $mode: ${line#fleet-poll }"
        rps=$(echo "$line" | sed -n 's/.* rps=\([0-9]*\).*/\1/p')
        p99=$(echo "$line" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p')
        if [ "$mode" = signed ] && [ "$rps" -gt "$best_s" ]; then best_s=$rps p99_s=$p99; fi
        if [ "$mode" = unsigned ] && [ "$rps" -gt "$best_u" ]; then best_u=$rps p99_u=$p99; fi
        [ "$mode" = unsigned ] && last_u=$rps
        [ "$mode" = signed ] && ratios="$ratios $(awk -v s="$rps" -v u="$last_u" 'BEGIN { printf "%.3f", u ? s / u : 0 }')"
        pemnd_stop
    done
done
echo "trust-poll best steady rps: unsigned=$best_u (p99 ${p99_u} ms) signed=$best_s (p99 ${p99_s} ms)"
echo "trust-poll paired ratios signed/unsigned:$ratios"
echo "$ratios" | tr ' ' '\n' | grep . | sort -n |
    awk '{ r[NR] = $1 } END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
           printf "trust-poll ratio signed/unsigned rps: median %.2fx (target >= 0.80x)\n", m }'
awk -v s="$best_s" -v u="$best_u" 'BEGIN { printf "trust-poll ratio of the best rounds: %.2fx\n", u ? s / u : 0 }'

# ---- 2. root chain walk ----------------------------------------------------------------------
# a device that installed net 1.0.0 under root v1 (the template copied before each walk)
pemnd_start "$D/srv" --threads "$PEMND_THREADS" --log-level warn --metadata-key "$D/meta.key" ||
    exit 1
"$PEMN_BIN" agent --server "$PEMND_URL" --fleet bench --device walker --token "$DEV" \
    --root "$D/root1.json" --model net --dir "$D/tmpl" --once --quiet >/dev/null ||
    { echo "bench_trust_poll: template install failed" >&2; exit 1; }
pemnd_stop
prev=$D/root1.json
for v in $(seq 2 "$CHAIN"); do
    "$PEMN_BIN" root update --in "$prev" --out "$D/root$v.json" --sign "$D/root.key" \
        --expires 30 >/dev/null || { echo "bench_trust_poll: root update $v" >&2; exit 1; }
    pemnd_admin root add "$D/root$v.json" >/dev/null || { echo "root add $v failed" >&2; exit 1; }
    prev=$D/root$v.json
done
pemnd_start "$D/srv" --threads "$PEMND_THREADS" --log-level warn --metadata-key "$D/meta.key" ||
    exit 1
cycle() { # DIR ROOT
    "$PEMN_BIN" agent --server "$PEMND_URL" --fleet bench --device walker --token "$DEV" \
        --root "$2" --model net --dir "$1" --once --quiet >/dev/null
}
t() { local s e; s=$(date +%s.%N); "$@" || echo "bench_trust_poll: cycle failed" >&2; e=$(date +%s.%N); echo "$s $e" | awk '{ printf "%.3f", $2 - $1 }'; }
best_walk=999 best_peer=999
for i in 1 2 3; do
    rm -rf "$D/walk"
    cp -a "$D/tmpl" "$D/walk"
    w=$(t cycle "$D/walk" "$D/root1.json")
    p=$(t cycle "$D/walk" "$D/root1.json") # DIR/root.json is now v$CHAIN
    best_walk=$(awk -v a="$w" -v b="$best_walk" 'BEGIN { print (a < b ? a : b) }')
    best_peer=$(awk -v a="$p" -v b="$best_peer" 'BEGIN { print (a < b ? a : b) }')
done
[ "$(jq -r .root_version "$D/walk/trust.json")" = "$CHAIN" ] ||
    { echo "bench_trust_poll: the walk did not reach v$CHAIN" >&2; exit 1; }
echo "trust-walk: cycle walking v1 -> v$CHAIN ${best_walk}s; the same cycle at v$CHAIN (peer) ${best_peer}s"
awk -v w="$best_walk" -v p="$best_peer" -v n="$CHAIN" 'BEGIN { printf "trust-walk: %d links, about %.2f ms per link over the steady cycle (%.1fx its time)\n", n - 1, (w - p) * 1000 / (n - 1), w / p }'
pemnd_stop
