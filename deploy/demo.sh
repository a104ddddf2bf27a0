#!/usr/bin/env bash
# pemn offline demo: make a sample edge-popup checkpoint (a 784-256-128-10 MLP whose frozen
# weights are scale_L * a seeded prototype of 1000 values, masks from scores at density
# 0.5), then keygen -> pack -> verify -> inspect -> expand, and compare the sizes.
#   BUILD=build/release bash deploy/demo.sh [WORKDIR]
# Needs `make all` and the checkpoint tool ($BUILD/tests/test_pack, `make tests`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build/release}
PEMN=$ROOT/$BUILD/bin/pemn
TOOL=$ROOT/$BUILD/tests/test_pack
SEED=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
for b in "$PEMN" "$TOOL"; do
    [ -x "$b" ] || { echo "demo: $b is missing (run: make all tests)" >&2; exit 1; }
done
if [ $# -ge 1 ]; then
    W=$1
    mkdir -p "$W"
else
    W=$(mktemp -d "${TMPDIR:-/tmp}/pemn-demo.XXXXXX")
    trap 'rm -rf "$W"' EXIT
fi
rm -f "$W"/demo.key "$W"/demo.pub

step() { printf '\n== %s\n' "$*"; }
step "sample checkpoint (MLP 784-256-128-10, seeded prototype, per-layer scales)"
"$TOOL" make demo "$W/mlp.safetensors"
echo "$W/mlp.safetensors: $(stat -c %s "$W/mlp.safetensors") bytes (float32 weights + scores)"

step "pemn keygen"
"$PEMN" keygen --out "$W/demo"

step "pemn pack --strategy mask (each layer its own explicit prototype: period 1000)"
"$PEMN" pack --in "$W/mlp.safetensors" --key "$W/demo.key" --name mlp --version 1.0 \
    --release 1 --out "$W/mlp-explicit.pemn" --strategy mask

step "pemn pack --seed (the prototype is 32 bytes of seed)"
"$PEMN" pack --in "$W/mlp.safetensors" --key "$W/demo.key" --name mlp --version 1.1 \
    --release 2 --out "$W/mlp.pemn" --seed "$SEED" --generator chacha20-uniform \
    --meta dataset=synthetic

step "pemn verify"
"$PEMN" verify "$W/mlp.pemn" --trust "$W/demo.pub"

step "pemn inspect"
"$PEMN" inspect "$W/mlp.pemn"

step "pemn expand"
"$PEMN" expand "$W/mlp.pemn" --out "$W/mlp-dense.safetensors" --trust "$W/demo.pub"
"$TOOL" expect "$W/mlp.safetensors" 0.5 "$W/expected.safetensors"
if "$TOOL" compare "$W/expected.safetensors" "$W/mlp-dense.safetensors"; then
    echo "expanded weights: weight * mask of the checkpoint (as PyTorch computes it), bit for bit"
else
    echo "demo: expansion differs from the checkpoint" >&2
    exit 1
fi

step "sizes"
F32=$("$PEMN" inspect "$W/mlp.pemn" --json | sed -n 's/.*"f32_bytes": \([0-9]*\).*/\1/p')
for f in mlp-explicit.pemn mlp.pemn; do
    S=$(stat -c %s "$W/$f")
    awk -v f="$f" -v s="$S" -v t="$F32" \
        'BEGIN { printf "%-20s %9d bytes   float32 safetensors %9d bytes   ratio %.1fx\n", f, s, t, t / s }'
done
