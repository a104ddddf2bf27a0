#!/usr/bin/env bash
# pemn test runner. Usage: BUILD=build/release tests/run.sh [all|unit]
#   unit: every cmocka binary ($BUILD/tests/test_*) and every fuzz corpus replay
#   all:  unit + every tests/integration/test_*.sh
# Counts individual test cases: cmocka's own summary per binary, "PASS: "/"FAIL: " lines
# from integration scripts (tests/integration/lib.sh). A binary or script that exits
# non-zero without reporting a failure counts as one failure. Ends with the line
# "N passed, N failed" and exits 1 when anything failed.
set -u
BUILD=${BUILD:-build/release}
MODE=${1:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export BUILD PEMN_ROOT="$ROOT"
export PEMN_BIN="$ROOT/$BUILD/bin/pemn" PEMND_BIN="$ROOT/$BUILD/bin/pemnd"
LOGDIR="$BUILD/test-logs"
mkdir -p "$LOGDIR"

passed=0
failed=0
failures=()

VG=()
if [ "${PEMN_VALGRIND:-0}" = 1 ]; then
    VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite)
fi

run_cmocka() {
    local bin=$1 name log rc p f
    name=$(basename "$bin")${2:-}
    log="$LOGDIR/$name.log"
    (cd "$ROOT" && timeout 600 "${VG[@]}" "$bin") >"$log" 2>&1
    rc=$?
    # summed over the binary's test groups (a binary may run more than one)
    p=$(grep -Eo '^\[  PASSED  \] [0-9]+' "$log" | grep -Eo '[0-9]+$' | awk '{s += $1} END {print s + 0}')
    f=$(grep -Eo '^\[  FAILED  \] [0-9]+ test' "$log" | grep -Eo '[0-9]+' | awk '{s += $1} END {print s + 0}')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        failures+=("$name (log: $log)")
        printf '  FAIL %-40s %d passed, %d failed\n' "$name" "$p" "$f"
        grep -E '^\[  (FAILED|ERROR) +\]|ERROR|error:|Sanitizer|runtime error' "$log" | head -20 |
            sed 's/^/      /'
    else
        printf '  ok   %-40s %d passed\n' "$name" "$p"
    fi
}

run_replay() {
    local bin=$1 name target corpus log rc
    name=$(basename "$bin")
    target=${name#replay_fuzz_}
    corpus="tests/fuzz/corpus/$target"
    log="$LOGDIR/$name.log"
    if [ ! -d "$corpus" ]; then
        failed=$((failed + 1))
        failures+=("$name (no corpus folder $corpus)")
        printf '  FAIL %-40s no corpus %s\n' "$name" "$corpus"
        return
    fi
    timeout 600 "${VG[@]}" "$bin" "$corpus" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf '  ok   %-40s %s\n' "$name" "$(tail -1 "$log")"
    else
        failed=$((failed + 1))
        failures+=("$name (log: $log)")
        printf '  FAIL %-40s exit %d\n' "$name" "$rc"
        tail -20 "$log" | sed 's/^/      /'
    fi
}

run_script() {
    local sh=$1 name log rc p f
    name=$(basename "$sh" .sh)${2:-}
    log="$LOGDIR/$name.log"
    timeout 900 bash "$sh" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS: ' "$log")
    f=$(grep -c '^FAIL: ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        failures+=("$name (log: $log)")
        printf '  FAIL %-40s %d passed, %d failed (exit %d)\n' "$name" "$p" "$f" "$rc"
        grep -E '^FAIL: ' "$log" | head -20 | sed 's/^/      /'
        tail -5 "$log" | sed 's/^/      | /'
    else
        printf '  ok   %-40s %d passed\n' "$name" "$p"
    fi
}

echo "== unit tests ($BUILD)"
for b in "$BUILD"/tests/test_*; do
    [ -x "$b" ] || continue
    case "$b" in *.d | *.o) continue ;; esac
    run_cmocka "$b"
done
echo "== fuzz corpus replay"
for b in "$BUILD"/tests/replay_fuzz_*; do
    [ -x "$b" ] || continue
    run_replay "$b"
done
if [ "$MODE" = all ]; then
    echo "== integration tests"
    for s in tests/integration/test_*.sh; do
        [ -f "$s" ] || continue
        run_script "$s"
    done
fi

# ---- the PostgreSQL leg ----------------------------------------------------------------------
# The storage contract tests (every unit test built on tests/common/storefix.h) and the server
# and integration scripts below run again on pemnd's PostgreSQL backend, against one throwaway
# cluster started here (tests/pg/cluster.sh) and stopped at the end. Scripts that need two
# replicas or a PostgreSQL restart (test_pg_*.sh) start their own cluster in the main pass.
# Every script that starts pemnd runs here (test_python: only its tests that use pemnd;
# test_ui: its curl part, the browser only renders what those routes answer); not:
# test_cli, test_train, test_delta, test_harden_cli (no pemnd), test_hygiene (source checks).
PG_SCRIPTS="test_server_api test_server_etag test_fleet_api test_fleet_tags test_fleet_agents test_fleet_load
    test_client test_pemnd_admin test_server_concurrency test_server_crash test_server_deploy
    test_harden_devices test_harden_integrity test_harden_keys test_harden_private_cache
    test_harden_slowclients test_harden_upload test_oci_agent test_oci_api test_oci_client
    test_oci_skopeo test_ui test_python test_install test_trust test_delta_server"
PGDIR=
pg_leg_stop() { [ -n "$PGDIR" ] && bash tests/pg/cluster.sh stop "$PGDIR"; PGDIR=; }
trap pg_leg_stop EXIT
if [ "${PEMN_SKIP_PG:-0}" = 1 ]; then
    echo "== PostgreSQL leg skipped (PEMN_SKIP_PG=1)"
elif ! bash tests/pg/cluster.sh available; then
    failed=$((failed + 1))
    failures+=("PostgreSQL leg: no PostgreSQL server binaries (deploy/install-deps.sh installs them)")
else
    echo "== PostgreSQL leg"
    PGDIR=$(mktemp -d /tmp/pemn-pg.XXXXXX)
    if bash tests/pg/cluster.sh start "$PGDIR" >"$LOGDIR/pg-cluster.log" 2>&1; then
        export PEMN_TEST_PG_HOST=$PGDIR
        for b in "$BUILD"/tests/test_*; do
            [ -x "$b" ] || continue
            case "$b" in *.d | *.o) continue ;; esac
            src="tests/unit/$(basename "$b").c"
            grep -q 'tests/common/storefix.h' "$src" 2>/dev/null && run_cmocka "$b" "[pg]"
        done
        if [ "$MODE" = all ]; then
            export PEMN_UI_BROWSER=0
            for s in $PG_SCRIPTS; do
                [ -f "tests/integration/$s.sh" ] && run_script "tests/integration/$s.sh" "[pg]"
            done
            unset PEMN_UI_BROWSER
        fi
        unset PEMN_TEST_PG_HOST
    else
        failed=$((failed + 1))
        failures+=("PostgreSQL leg: the test cluster did not start (log: $LOGDIR/pg-cluster.log)")
    fi
    pg_leg_stop
fi

if [ "${#failures[@]}" -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
