#!/usr/bin/env bash
# Mask encoding 2 (docs/BENCHMARKS.md, "Entropy-coded masks and deltas (issue 12)").
# 1. Size: edge-popup MLPs (784-300-100-10, RP 1e-3) trained here with `pemn train` at
#    k = 0.1 and 0.3 (EPOCHS epochs, default 3); the stored masks against the entropy
#    sum over tensors of numel * H(k) (target <= 1.02 x H).
# 2. Speed: an i.i.d. mask of 2^26 weights (256 MiB of float32) at k = 0.1 and 0.3:
#    decode, decode + expand, against memcpy of the same output in the same run
#    (target >= 1 GB/s of float32 output for decode + expand, one core).
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
PEMN=${PEMN:-$ROOT/$BUILD/bin/pemn}
BIN=$ROOT/$BUILD/bench/bench_maskcode
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
EPOCHS=${EPOCHS:-3}
N=${N:-67108864}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-maskcode.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
[ -x "$BIN" ] && [ -x "$PEMN" ] || { echo "bench_maskcode: build first (make bench)" >&2; exit 2; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PEMN" keygen --out "$TMP/k" >/dev/null || exit 1
pkgs=()
if [ -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    for k in 0.1 0.3; do
        "$PEMN" train --data "$DATA" --mode mask --density $k --epochs "$EPOCHS" --quiet \
            --key "$TMP/k.key" --name fmnist --version "k$k" --out "$TMP/k$k.pemn" >/dev/null || exit 1
        pkgs+=("$TMP/k$k.pemn")
    done
    (cd "$TMP" && "$BIN" size k0.1.pemn k0.3.pemn) || exit 1
else
    echo "bench_maskcode: no data in $DATA, size part skipped" >&2
fi
for k in 0.1 0.3; do
    "$BIN" speed "$N" $k 3 || exit 1
done
