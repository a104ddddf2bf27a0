#!/usr/bin/env bash
# Packing speed and memory (docs/BENCHMARKS.md, "Packing (proto/pack)"): pack an RP
# checkpoint (weights + scores, mmap'ed) at two sizes, against SHA-256 of the same file as
# the peer; time per parameter should stay flat (linear time).
set -u
BUILD=${BUILD:-build/release}
BIN="$BUILD/bench/bench_pack"
[ -x "$BIN" ] || { echo "missing $BIN (run make bench)"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-pack.XXXXXX")
trap 'rm -rf "$W"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc)"
for n in ${PEMN_BENCH_PACK_SIZES:-4194304 16777216}; do
    "$BIN" make "$W/ck.safetensors" "$n" || exit 1
    size=$(stat -c %s "$W/ck.safetensors")
    p=$("$BIN" pack "$W/ck.safetensors" 3) || exit 1
    h=$("$BIN" hash "$W/ck.safetensors" 3) || exit 1
    pt=$(echo "$p" | awk '{print $2}')
    ht=$(echo "$h" | awk '{print $2}')
    awk -v n="$n" -v s="$size" -v pt="$pt" -v ht="$ht" -v line="$p" 'BEGIN {
        printf "params %d checkpoint %.1f MiB: %s\n", n, s / 1048576, line
        printf "  sha256 of the file %.4f s; pack / sha256 = %.2fx; %.1f ns per parameter\n",
            ht, pt / ht, pt / n * 1e9 }'
    rm -f "$W/ck.safetensors"
done
