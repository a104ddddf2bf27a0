#!/usr/bin/env bash
# The accuracy-vs-size table of docs/RESULTS.md (run by `make results`).
#
# Trains every configuration with `pemn train` on Fashion-MNIST (784-300-100-10, no biases,
# no batch-norm, SGD lr 0.1 momentum 0.9 wd 1e-4, cosine, batch 128, 10 epochs, final-epoch
# test accuracy: no model selection on the test set), writes the signed package, and then
# checks it with `pemn eval` (the library's expansion) before counting its accuracy.
# Reports go to $OUT (default build/results); a configuration whose report exists is not
# re-run, so an interrupted run resumes. The table is written between the markers in
# docs/RESULTS.md.
#   SEEDS="1 2 3"  seeds of the headline rows      EPOCHS=10   (~45 runs, ~15 min on 2
#   idle cores with OpenBLAS's AVX-512 kernels)
#   QUICK=1        one seed everywhere             THREADS=1 (OpenBLAS threads per run)
#   EXTRA_SEEDS="2 3"  seeds for the other rows, in a second pass (default; "" to skip)
#   Several workers may share one $OUT (each run is claimed with a lock directory):
#   REVERSE=1 walks the configurations backwards, NO_TABLE=1 only trains, TABLE_ONLY=1
#   only writes the table from the reports there are.
set -u
BUILD=${BUILD:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PEMN=${PEMN:-$ROOT/$BUILD/bin/pemn}
OUT=${OUT:-$ROOT/build/results}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-1 2 3}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EXTRA_SEEDS=${EXTRA_SEEDS-2 3} # the other rows get these in a second pass
[ "${QUICK:-0}" = 1 ] && SEEDS=1 && EXTRA_SEEDS=""
mkdir -p "$OUT"
[ -x "$PEMN" ] || { echo "results: build first ($PEMN missing)" >&2; exit 2; }

KEY="$OUT/results.key"
if [ ! -f "$KEY" ]; then
    if "$PEMN" keygen --help >/dev/null 2>&1; then
        "$PEMN" keygen --out "$OUT/results" >/dev/null || exit 1
    else # key file format of include/pemn/key.h
        (umask 077 && printf 'pemn-ed25519-sec %s\n' \
            "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$KEY")
    fi
fi

# run ID SEED ARGS...: one training run (skipped when its report exists).
run() {
    local id=$1 seed=$2
    shift 2
    local rep="$OUT/$id-s$seed.json" pkg="$OUT/$id-s$seed.pemn"
    [ -s "$rep" ] && return 0
    mkdir "$OUT/$id-s$seed.lock" 2>/dev/null || return 0 # another worker has it
    run_locked "$id" "$seed" "$@"
    local rc=$?
    rmdir "$OUT/$id-s$seed.lock"
    return $rc
}
run_locked() {
    local id=$1 seed=$2
    shift 2
    local rep="$OUT/$id-s$seed.json" pkg="$OUT/$id-s$seed.pemn"
    echo "results: $id seed $seed: pemn train $*" >&2
    if ! "$PEMN" train --data "$DATA" --epochs "$EPOCHS" --seed "$seed" --threads "$THREADS" \
        --no-epoch-eval --quiet --key "$KEY" --name "fmnist-$id" --version "s$seed" \
        --out "$pkg" --report "$rep.tmp" "$@" >"$OUT/$id-s$seed.log" 2>&1; then
        echo "results: $id seed $seed FAILED (log $OUT/$id-s$seed.log)" >&2
        return 1
    fi
    # the end-to-end check: the package, expanded by the library, gives the same accuracy
    if ! "$PEMN" eval "$pkg" --data "$DATA" --threads "$THREADS" >"$OUT/$id-s$seed.eval" 2>&1 ||
        ! grep -q 'identical' "$OUT/$id-s$seed.eval"; then
        echo "results: $id seed $seed: pemn eval does not reproduce the accuracy" >&2
        return 1
    fi
    mv "$rep.tmp" "$rep"
}

# The configurations: ID|ROW LABEL|SEEDS|ARGS
CONFIGS=(
    "dense|dense-trained weights (baseline)|$SEEDS|--mode dense"
    "mask|edge-popup, full random weights (mask)|$SEEDS|--mode mask --strategy mask"
    "onelayer|one-layer|1|--mode mask --strategy one-layer"
    "mp|MP|1|--mode mask --strategy mp"
    "rp1e-1|RP 1e-1|1|--mode mask --strategy rp --ratio 1e-1"
    "rp1e-2|RP 1e-2|1|--mode mask --strategy rp --ratio 1e-2"
    "rp1e-3|RP 1e-3|$SEEDS|--mode mask --strategy rp --ratio 1e-3"
    "rp1e-4|RP 1e-4|1|--mode mask --strategy rp --ratio 1e-4"
    "rp1e-3-k0.1|RP 1e-3, k = 0.1|1|--mode mask --strategy rp --ratio 1e-3 --density 0.1"
    "rp1e-3-k0.3|RP 1e-3, k = 0.3|1|--mode mask --strategy rp --ratio 1e-3 --density 0.3"
    "rp1e-3-k0.7|RP 1e-3, k = 0.7|1|--mode mask --strategy rp --ratio 1e-3 --density 0.7"
    "rp1e-1-ns|RP 1e-1, no per-layer scale|1|--mode mask --strategy rp --ratio 1e-1 --no-layer-scale"
    "rp1e-2-ns|RP 1e-2, no per-layer scale|1|--mode mask --strategy rp --ratio 1e-2 --no-layer-scale"
    "rp1e-3-ns|RP 1e-3, no per-layer scale|$SEEDS|--mode mask --strategy rp --ratio 1e-3 --no-layer-scale"
    "rp1e-4-ns|RP 1e-4, no per-layer scale|1|--mode mask --strategy rp --ratio 1e-4 --no-layer-scale"
    "rp1e-3-unif|RP 1e-3, uniform generator|1|--mode mask --strategy rp --ratio 1e-3 --generator uniform"
)
order=("${CONFIGS[@]}")
passes="1 2"
if [ "${REVERSE:-0}" = 1 ]; then
    order=()
    for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[$i]}"); done
    passes="2 1"
fi
fail=0
[ "${TABLE_ONLY:-0}" = 1 ] && passes=""
for pass in $passes; do
    for c in "${order[@]}"; do
        IFS='|' read -r id label seeds args <<<"$c"
        if [ "$pass" = 2 ]; then
            [ "$seeds" = 1 ] || continue
            seeds=${EXTRA_SEEDS:-}
        fi
        for s in $seeds; do
            # shellcheck disable=SC2086
            run "$id" "$s" $args || fail=1
        done
    done
done

[ "${NO_TABLE:-0}" = 1 ] && exit $fail

# ---- the table ---------------------------------------------------------------------------
num() { sed -n "s/^ *\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -1; }
table() {
    echo "| configuration | prototype values | k | test accuracy % (seeds) | package bytes | float32 / package | training CPU s / run | samples / CPU s |"
    echo "|---|---:|---:|---|---:|---:|---:|---:|"
    for c in "${CONFIGS[@]}"; do
        IFS='|' read -r id label seeds args <<<"$c"
        local files=("$OUT/$id"-s*.json)
        [ -s "${files[0]}" ] || continue
        local accs="" bytes="" f32="" secs="" sps="" protos="" dens=""
        for f in "${files[@]}"; do
            accs="$accs $(num "$f" test_accuracy)"
            secs="$secs $(num "$f" cpu_seconds)"
            sps="$sps $(num "$f" samples_per_sec)"
            bytes=$(num "$f" package_bytes)
            f32=$(num "$f" f32_bytes)
            dens=$(num "$f" density)
            protos=$(tr -d ' \n' <"$f" | sed -n 's/.*"proto_lengths":\[\([0-9,]*\)\].*/\1/p')
        done
        [ -z "$protos" ] && protos="266200 (trained)"
        [ -z "$dens" ] && dens="—"
        echo "$label|$protos|$dens|$accs|$bytes|$f32|$secs|$sps" | awk -F'|' -v ns=$((EPOCHS * 60000)) '{
            n = split($4, a, " "); s = 0; mn = 1e9; mx = -1e9
            for (i = 1; i <= n; i++) { v = 100 * a[i]; s += v; if (v < mn) mn = v; if (v > mx) mx = v }
            m = s / n
            if (n > 1) acc = sprintf("%.2f ± %.2f (%d: %.2f–%.2f)", m, (mx - mn) / 2, n, mn, mx)
            else acc = sprintf("%.2f (1)", m)
            split($7, t, " "); ts = 0; for (i in t) ts += t[i]
            gsub(",", " + ", $2)
            if ($3 != "—") $3 = sprintf("%g", $3)
            printf "| %s | %s | %s | %s | %d | %.1fx | %.1f | %.0f |\n", $1, $2, $3, acc, $5,
                   $6 / $5, ts / n, ns / (ts / n) }'
    done
}
TABLE=$(table)
DOC=docs/RESULTS.md
{
    echo "<!-- results:begin (generated by bench/results.sh; do not edit by hand) -->"
    echo "Fashion-MNIST test set (10,000 images), 784-300-100-10 MLP, no biases, no batch-norm,"
    echo "SGD lr 0.1 / momentum 0.9 / weight decay 1e-4, cosine schedule, batch 128, $EPOCHS epochs,"
    echo "final-epoch accuracy; signed-constant prototypes (chacha20-signed) with the per-layer"
    echo "fan-in scale unless stated; $THREADS OpenBLAS thread(s) per run."
    echo "Generated $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1))."
    echo "Every package was re-evaluated with \`pemn eval\` (library expansion): identical accuracy."
    echo
    echo "$TABLE"
    echo "<!-- results:end -->"
} >"$OUT/table.md"
if grep -q '<!-- results:begin' "$DOC"; then
    awk -v f="$OUT/table.md" '
        /<!-- results:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
        /<!-- results:end/ { skip = 0; next }
        !skip { print }' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
else
    cat "$OUT/table.md" >>"$DOC"
fi
cat "$OUT/table.md"
exit $fail
