#!/usr/bin/env bash
# The Python binding (python/pemn), measured against its peers in the same run:
#  1. pemn.load of a large package (4 masked 2048x2048 layers on a seeded RP prototype:
#     16.8 M weights, 64 MiB as float32) — open, SHA-256 + Ed25519 verification, expansion
#     to numpy float32 — vs numpy.load of the same float32 arrays (.npy per array, and one
#     .npz); best-of-3 wall time with a warm page cache, and the peak RSS one load adds
#     (a fresh process per measurement).
#  2. `pemn train` (C, OpenBLAS) vs the same edge-popup (and dense) 784-300-100-10 MLP in
#     PyTorch with pemn.torch layers (batch 128, SGD, the input lookup inside the step):
#     training samples/s at 1 and 2 threads. PyTorch trains on the first TORCH_LIMIT
#     samples (default 20000) to keep the run short; C on the full epoch.
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
PEMN=${PEMN:-$ROOT/$BUILD/bin/pemn}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
TORCH_LIMIT=${TORCH_LIMIT:-20000}
PY=/usr/bin/python3
export PYTHONPATH="$ROOT/python" PEMN_LIB="$ROOT/$BUILD/lib/libpemn.so.0" DATA
export PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-py.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[ -e "$PEMN_LIB" ] || { echo "bench_python: $PEMN_LIB missing (make)" >&2; exit 2; }

echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
$PY bench/bench_python.py make "$TMP" || exit 1
printf 'package %s bytes; float32 .npy files %s bytes\n' "$(stat -c %s "$TMP/big.pemn")" \
    "$(du -cb "$TMP"/npy/*.npy | tail -1 | cut -f1)"
printf '%-28s %12s %14s\n' "load 16.8 M float32 weights" "best of 3 s" "peak RSS added"
declare -A T M
for kind in pemn npy npz; do
    T[$kind]=$($PY bench/bench_python.py time "$kind" "$TMP") || exit 1
    read -r _ M[$kind] _ <<<"$($PY bench/bench_python.py peak "$kind" "$TMP")" || exit 1
    printf '%-28s %12.4f %11.1f MiB\n' "$kind" "${T[$kind]}" \
        "$(awk -v m="${M[$kind]}" 'BEGIN { print m / 1048576 }')"
done
awk -v p="${T[pemn]}" -v n="${T[npy]}" -v z="${T[npz]}" -v mp="${M[pemn]}" -v mn="${M[npy]}" \
    'BEGIN { printf "pemn.load / numpy.load time: %.2fx (.npy), %.2fx (.npz); peak memory %.2fx (.npy)\n", p / n, p / z, mp / mn }'

field() { sed -n "s/^ *\"$1\": *\([0-9.eE+]*\).*/\1/p" "$TMP/r.json"; }
printf '%-34s %12s %12s %8s\n' "one epoch 784-300-100-10, batch 128" "pemn train" "PyTorch" "C / PT"
for mode in mask dense; do
    for t in 1 2; do
        "$PEMN" train --data "$DATA" --mode "$mode" --epochs 1 --threads "$t" --quiet \
            --no-epoch-eval --test-limit 1 --report "$TMP/r.json" >/dev/null 2>&1 ||
            { echo "pemn train failed"; exit 1; }
        c=$(field samples_per_sec)
        p=$($PY bench/bench_python.py train "$mode" "$t" "$TORCH_LIMIT") || exit 1
        awk -v l="$mode, $t thread(s)" -v c="$c" -v p="$p" \
            'BEGIN { printf "%-34s %12.0f %12.0f %7.1fx\n", l, c, p, c / p }'
    done
done
echo "samples/s of training steps (wall clock); PyTorch $($PY -c 'import torch; print(torch.__version__)')" \
    "on $TORCH_LIMIT samples, pemn train on 60000."
