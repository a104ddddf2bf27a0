#!/usr/bin/env bash
# Root-of-trust chain walk on a device vs the bare signature checks it needs
# (docs/BENCHMARKS.md, "Root of trust: chain walk").
set -u
BUILD=${BUILD:-build/release}
BIN="$BUILD/bench/bench_trust"
[ -x "$BIN" ] || { echo "missing $BIN (run make bench)"; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc)"
"$BIN" 100 21 || exit 1
