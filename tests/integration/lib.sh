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

# ---- pemnd (the registry daemon) ----------------------------------------------------------
# pemnd_db DIR: the --db for DIR: DIR/pemn.db; on the PostgreSQL leg of make test
# (PEMN_TEST_PG_HOST: a cluster from tests/pg/cluster.sh) a fresh database of that cluster,
# the same one every time for the same DIR.
pemnd_db() {
    local dir=$1 name
    if [ -z "${PEMN_TEST_PG_HOST:-}" ]; then
        echo "$dir/pemn.db"
        return 0
    fi
    if [ ! -s "$dir/pg-uri" ]; then
        name=it_$$_${RANDOM}_$(basename "$dir" | tr -c 'a-zA-Z0-9\n' _ | tr -d '\n')
        bash "$PEMN_ROOT/tests/pg/cluster.sh" newdb "$PEMN_TEST_PG_HOST" "${name:0:60}" \
            >"$dir/pg-uri" || return 1
    fi
    cat "$dir/pg-uri"
}

# db_sql DB SQL: runs SQL on pemnd's database DB (a SQLite file, or a postgresql:// URI on the
# PostgreSQL leg) and prints the result rows, one a line, columns '|'-separated — for tests
# that inspect or damage stored state behind pemnd's back. Exit status non-zero on an error.
db_sql() {
    case "$1" in
    postgres://* | postgresql://*) psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2" ;;
    *) sqlite3 "$1" "$2" ;;
    esac
}

# db_integrity DB: prints "ok" when the store DB is sound. SQLite: PRAGMA integrity_check.
# PostgreSQL (whose own pages are its business, WAL-protected): every blob's chunk rows are
# contiguous and add up to its size, and `pemnd scrub` finds every blob hashing to its digest.
db_integrity() {
    case "$1" in
    postgres://* | postgresql://*)
        local bad
        bad=$(db_sql "$1" "SELECT count(*) FROM blobs b LEFT JOIN (SELECT blob_id,
            sum(length(data)) AS n, count(*) AS k, max(idx) AS m FROM blob_chunks GROUP BY blob_id) c
            ON c.blob_id = b.id WHERE coalesce(c.n, 0) <> b.size OR (c.k IS NOT NULL AND c.k <> c.m + 1)") ||
            { echo "query failed"; return 0; }
        if [ "$bad" != 0 ]; then
            echo "$bad blobs whose chunk rows do not add up"
        elif ! "$PEMND_BIN" --db "$1" scrub >/dev/null 2>&1; then
            echo "scrub failed"
        else
            echo ok
        fi
        ;;
    *) sqlite3 "$1" 'PRAGMA integrity_check' 2>&1 ;;
    esac
}

# t_on_pg: true on the PostgreSQL leg of make test.
t_on_pg() { [ -n "${PEMN_TEST_PG_HOST:-}" ]; }

# pemnd_start DIR [PEMND ARGS...]: starts pemnd on a free 127.0.0.1 port with the database
# DIR/pemn.db (created fresh unless it exists), logging to DIR/pemnd.log. Sets PEMND_URL,
# PEMND_PID, PEMND_PORT, PEMND_DB, PEMND_LOG. Retries when another process grabs the port.
# Stopped by the EXIT trap, or explicitly with pemnd_stop.
pemnd_start() {
    local dir=$1 attempt
    shift
    mkdir -p "$dir"
    PEMND_DB=$(pemnd_db "$dir") || return 1
    PEMND_LOG=$dir/pemnd.log
    for attempt in 1 2 3 4 5; do
        PEMND_PORT=$(free_port) || return 1
        pemnd_start_on "$dir" "$PEMND_PORT" "$@" && return 0
    done
    return 1
}

# pemnd_start_on DIR PORT [ARGS...]: the same on a given port (e.g. to restart after a crash).
pemnd_start_on() {
    local dir=$1 port=$2 i
    shift 2
    PEMND_DB=$(pemnd_db "$dir") || return 1
    PEMND_LOG=$dir/pemnd.log
    PEMND_PORT=$port
    PEMND_URL=http://127.0.0.1:$port
    "$PEMND_BIN" --db "$PEMND_DB" --listen "127.0.0.1:$port" "$@" >>"$PEMND_LOG" 2>&1 &
    PEMND_PID=$!
    T_PIDS+=("$PEMND_PID")
    for i in $(seq 1 100); do
        kill -0 "$PEMND_PID" 2>/dev/null || return 1
        if curl -s -o /dev/null --max-time 1 "$PEMND_URL/v1/health"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# pemnd_stop [SIGNAL]: stops the current pemnd (default SIGTERM) and waits (bounded);
# returns its exit status (137 after SIGKILL).
pemnd_stop() {
    local sig=${1:-TERM} i
    kill "-$sig" "$PEMND_PID" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$PEMND_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$PEMND_PID" 2>/dev/null
    wait "$PEMND_PID" 2>/dev/null
}

# pemnd_admin ARGS...: runs an admin command on the current database.
pemnd_admin() {
    "$PEMND_BIN" --db "$PEMND_DB" "$@"
}

# pemnd_token SCOPE [NAME]: creates a token and prints it.
pemnd_token() {
    pemnd_admin token create --scope "$1" ${2:+--name "$2"} | tail -n 1
}

# PEMN_MKPKG: test package maker (tests/tools/pemn_mkpkg.c):
#   $PEMN_MKPKG keygen BASE; $PEMN_MKPKG pack KEY NAME VERSION RELEASE BYTES OUT [SEED]
: "${PEMN_MKPKG:=$PEMN_ROOT/$BUILD/tests/tools/pemn_mkpkg}"

# http_status METHOD URL [CURL ARGS...]: prints the status code; the body goes to $T_TMP/body.
http_status() {
    local m=$1 u=$2
    shift 2
    : >"$T_TMP/body"
    curl -s -o "$T_TMP/body" -w '%{http_code}' --max-time 30 -X "$m" "$@" "$u"
}

# json_get FILE PATH: a field of a JSON file by jq path without the dot (e.g. "digest",
# "latest.version", "versions[0].release"); prints nothing when absent.
json_get() {
    jq -r ".$2 // empty" "$1" 2>/dev/null
}
