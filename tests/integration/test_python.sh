#!/usr/bin/env bash
# The Python binding (python/pemn) and its PyTorch layers: runs tests/python with Debian's
# pytest against this build's libpemn.so and prints one PASS:/FAIL: line per test case.
# A skipped test counts as a failure: make deps installs numpy, torch and the data set.
. "$(dirname "$0")/lib.sh"
cd "$PEMN_ROOT" || exit 1
PY=/usr/bin/python3
export PYTHONPATH="$PEMN_ROOT/python" PEMN_LIB="$PEMN_ROOT/$BUILD/lib/libpemn.so.0"
export PYTHONDONTWRITEBYTECODE=1 BUILD PEMN_BIN PEMND_BIN
if [ ! -e "$PEMN_LIB" ]; then
    fail "python: libpemn.so built" "$PEMN_LIB missing"
    exit 1
fi
if ! $PY -c 'import pytest, numpy' 2>/dev/null; then
    fail "python: pytest and numpy importable" "install python3-pytest python3-numpy"
    exit 1
fi
timeout 600 $PY -m pytest -v -rA -p no:cacheprovider --basetemp="$T_TMP/pytest" \
    tests/python >"$T_TMP/pytest.log" 2>&1
rc=$?
n=0
while IFS= read -r line; do
    case "$line" in
    *"::"*" PASSED"*)
        pass "python: ${line%% PASSED*}"
        n=$((n + 1))
        ;;
    *"::"*" FAILED"* | *"::"*" ERROR"* | *"::"*" SKIPPED"* | *"::"*" XFAIL"*)
        fail "python: ${line%% [FESX]*}" "$(echo "$line" | grep -Eo '(FAILED|ERROR|SKIPPED|XFAIL).*')"
        n=$((n + 1))
        ;;
    esac
done < <(grep -E '^tests/python/[^ ]+::[^ ]+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL)' "$T_TMP/pytest.log")
if [ "$n" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$T_FAILS" -eq 0 ]; }; then
    fail "python: pytest ran" "exit $rc, $n results"
fi
if [ "$T_FAILS" -ne 0 ]; then
    grep -E '^(E |FAILED|ERROR)' "$T_TMP/pytest.log" | head -40
    tail -5 "$T_TMP/pytest.log"
fi
t_done
