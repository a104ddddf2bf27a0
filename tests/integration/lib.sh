# Shared helpers for integration tests (source me). Each check prints one line,
# "PASS: name" or "FAIL: name: why", which tests/run.sh counts.
# Everything started through these helpers is stopped by the EXIT trap.
set -u
: "${PEMN_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${BUILD:=build/release}"
: "${PEMN_BIN:=$PEMN_ROOT/$BUILD/bin/pemn}"
: "${PEMND_BIN:=$PEMN_ROOT/$BUILD/bin/pemnd}"
T_FAILS=0
T_PIDS=()
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pemn-it.XXXXXX")

t_cleanup() {
    local p
    for p in "${T_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${T_PIDS[@]}"; do
        # bounded wait, then force
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$T_TMP"
}
trap t_cleanup EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1${2:+: $2}"; T_FAILS=$((T_FAILS + 1)); }
# check NAME CMD...: PASS when the command exits 0
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}

# free_port: a TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_http URL [SECONDS]: poll until the URL answers (any status), bounded.
wait_http() {
    local url=$1 secs=${2:-10} i
    for i in $(seq 1 $((secs * 10))); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# t_done: exit status for the script.
t_done() {
    [ "$T_FAILS" -eq 0 ]
}
