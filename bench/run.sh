#!/usr/bin/env bash
# Runs every benchmark script bench/bench_*.sh (each prints its own ratios) with the
# built binaries of $BUILD. Results are copied by hand into docs/BENCHMARKS.md together
# with this command line.
set -u
BUILD=${BUILD:-build/release}
export BUILD PEMN_ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$PEMN_ROOT" || exit 2
rc=0
for s in bench/bench_*.sh; do
    [ -f "$s" ] || continue
    echo "== $s"
    bash "$s" || rc=1
done
exit $rc
