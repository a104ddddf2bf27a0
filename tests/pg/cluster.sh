#!/usr/bin/env bash
# tests/pg/cluster.sh — a throwaway PostgreSQL cluster for tests.
#   cluster.sh start DIR   initdb (as the postgres user, --no-sync) into DIR/data, start it
#                          listening only on a Unix socket in DIR (no TCP), fsync off; create
#                          the template database pemn_tmpl with pemn's schema (when PEMND_BIN
#                          is set). Prints nothing; the socket directory is DIR.
#   cluster.sh stop DIR    stop the server started in DIR (by its PID) and delete DIR.
#   cluster.sh restart DIR stop and start the same cluster again (data kept).
#   cluster.sh newdb DIR NAME   create database NAME from the template; prints its URI.
#   cluster.sh available   exit 0 when the PostgreSQL server binaries are installed.
# URIs: postgresql:///NAME?host=DIR&user=postgres (trust authentication on the socket only).
set -u
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
cmd=${1:-}
dir=${2:-}

as_pg() { runuser -u postgres -- "$@"; }

pg_start() {
    as_pg "$PGBIN/postgres" -D "$dir/data" -k "$dir" -c listen_addresses= \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 -c shared_buffers=32MB -c log_min_messages=fatal \
        >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    for _ in $(seq 1 100); do
        "$PGBIN/pg_isready" -q -h "$dir" -U postgres && return 0
        sleep 0.1
    done
    echo "cluster.sh: PostgreSQL did not start; log:" >&2
    tail -20 "$dir/server.log" >&2
    return 1
}

pg_stop() {
    [ -f "$dir/pid" ] || return 0
    local pid
    pid=$(cat "$dir/pid")
    kill -INT "$pid" 2>/dev/null # fast shutdown
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    rm -f "$dir/pid"
}

case "$cmd" in
available)
    [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/postgres" ] && id postgres >/dev/null 2>&1
    ;;
start)
    [ -n "$dir" ] || { echo "usage: cluster.sh start DIR" >&2; exit 2; }
    mkdir -p "$dir" && chown postgres "$dir" && chmod 700 "$dir" || exit 1
    as_pg "$PGBIN/initdb" -D "$dir/data" --no-sync -A trust -U postgres -E UTF8 \
        --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    pg_start || exit 1
    "$PGBIN/createdb" -h "$dir" -U postgres pemn_tmpl || exit 1
    if [ -n "${PEMND_BIN:-}" ]; then
        "$PEMND_BIN" --db "postgresql:///pemn_tmpl?host=$dir&user=postgres" audit >/dev/null ||
            exit 1
    fi
    ;;
newdb)
    name=${3:?usage: cluster.sh newdb DIR NAME}
    "$PGBIN/createdb" -h "$dir" -U postgres -T pemn_tmpl "$name" || exit 1
    echo "postgresql:///$name?host=$dir&user=postgres"
    ;;
restart)
    pg_stop
    pg_start
    ;;
stop)
    [ -n "$dir" ] || exit 0
    pg_stop
    rm -rf "$dir"
    ;;
*)
    echo "usage: cluster.sh start|stop|restart|newdb|available DIR" >&2
    exit 2
    ;;
esac
