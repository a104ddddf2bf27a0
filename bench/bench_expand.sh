#!/usr/bin/env bash
# Expansion vs memcpy (docs/BENCHMARKS.md, "Expansion vs memcpy (proto/)").
# 256 MiB float32 output, single thread; the dispatched kernel, then the same run with
# the SIMD kernel turned off (PEMN_SIMD=off) so the portable fallback shows as "pemn".
set -u
BUILD=${BUILD:-build/release}
BIN="$BUILD/bench/bench_expand"
[ -x "$BIN" ] || { echo "missing $BIN (run make bench)"; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc)"
"$BIN" 67108864 5 26620 67108864 || exit 1
echo "-- PEMN_SIMD=off"
PEMN_SIMD=off "$BIN" 67108864 3 26620 || exit 1
