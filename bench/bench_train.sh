#!/usr/bin/env bash
# Training speed (train/): one epoch of the default 784-300-100-10 MLP on Fashion-MNIST
# (60,000 samples, batch 128), dense and edge-popup (mask, RP 1e-3, k 0.5), with 1 and 2
# OpenBLAS threads; samples/s counts training steps only (no evaluation pass), by the wall
# clock and per CPU-second of the process (the latter is robust to other load on the
# machine; for 2 threads it counts both threads' time).
# In-run peer: the same epoch with naive matrix products (--naive-gemm, on the first
# NAIVE_LIMIT samples). PyTorch running the same MLP is measured in the same run by
# bench/bench_python.sh (pemn.torch layers).
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
PEMN=${PEMN:-$ROOT/$BUILD/bin/pemn}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
NAIVE_LIMIT=${NAIVE_LIMIT:-6000}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-train.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[ -x "$PEMN" ] || { echo "bench_train: $PEMN missing (make)" >&2; exit 2; }
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "bench_train: no data in $DATA" >&2; exit 2; }

field() { sed -n "s/^ *\"$1\": *\([0-9.eE+]*\).*/\1/p" "$TMP/r.json"; }

# one MODE THREADS [ARGS...]: prints "wall_sps cpu_sps" of one epoch
one() {
    local mode=$1 threads=$2
    shift 2
    "$PEMN" train --data "$DATA" --mode "$mode" --epochs 1 --threads "$threads" --quiet \
        --no-epoch-eval --test-limit 1 --report "$TMP/r.json" "$@" >/dev/null 2>&1 || return 1
    awk -v s="$(field samples_per_sec)" -v w="$(field train_seconds)" -v c="$(field cpu_seconds)" \
        'BEGIN { printf "%.0f %.0f", s, s * w / c }'
}

echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OpenBLAS kernels: $(OPENBLAS_VERBOSE=2 "$PEMN" eval --help 2>&1 >/dev/null | sed -n 's/^Core: //p' | tail -1)"
printf '%-30s %10s %12s %10s\n' "one epoch, 784-300-100-10" "samples/s" "per CPU-s" "vs naive"
for mode in dense mask; do
    read -r naive naive_cpu <<<"$(one "$mode" 1 --naive-gemm --train-limit "$NAIVE_LIMIT")" ||
        { echo "run failed"; exit 1; }
    for t in 1 2; do
        read -r v vc <<<"$(one "$mode" "$t")" || { echo "run failed"; exit 1; }
        awk -v l="$mode, OpenBLAS $t thread(s)" -v v="$v" -v vc="$vc" -v n="$naive_cpu" \
            'BEGIN { printf "%-30s %10s %12s %9.1fx\n", l, v, vc, vc / n }'
    done
    printf '%-30s %10s %12s\n' "$mode, naive loops, 1 thread" "$naive" "$naive_cpu"
done
echo "'vs naive' compares samples per CPU-second (same process, same data); PyTorch on the"
echo "same MLP: bench/bench_python.sh."
