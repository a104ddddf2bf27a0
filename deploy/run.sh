#!/usr/bin/env bash
# `make run`: until the pemnd daemon exists, runs the offline demo (deploy/demo.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build/release}
make -C "$ROOT" --no-print-directory "$BUILD/tests/test_pack" >/dev/null
BUILD=$BUILD exec bash "$ROOT/deploy/demo.sh"
