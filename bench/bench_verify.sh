#!/usr/bin/env bash
# Blob integrity checks: what verifying a blob's digest on the first read after start costs
# against reading the same bytes without a check (docs/BENCHMARKS.md, "Blob integrity
# checks (hardening)").   usage: BUILD=build/release bash bench/bench_verify.sh
set -u
BUILD=${BUILD:-build/release}
BIN="$BUILD/bench/bench_verify"
[ -x "$BIN" ] || { echo "missing $BIN (run make bench)"; exit 1; }
D=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-verify.XXXXXX")
trap 'rm -rf "$D"' EXIT
for size in 1048576 67108864; do
    "$BIN" "$D" "$size" "${REPS:-5}" || exit 1
    rm -f "$D"/verify.db*
done
