#!/usr/bin/env bash
# Replicas on PostgreSQL vs one pemnd on SQLite (docs/BENCHMARKS.md, "pemnd replicas on
# PostgreSQL (issue 11)"). The same run, three set-ups, each behind the same nginx
# (deploy/nginx/pemn-replicas.conf.in): 1 pemnd on SQLite, 1 pemnd on PostgreSQL, 2 pemnd
# replicas on PostgreSQL. For each:
#   - desired-state polls/s: DEVICES simulated devices (bench_fleet_poll: first contact
#     registers each device, then steady polling with If-None-Match);
#   - blob fetch req/s through nginx (bench_fleet_poll's peer phase on /v1/blobs/DIGEST:
#     nginx's cache answers after the first miss);
#   - push ingest packages/s (bench_push, 4 clients, 4 models, 4 KiB packages);
#   - CPU per request: CPU seconds of the pemnd processes and of PostgreSQL (postmaster and
#     its backends) over each phase, divided by the requests of that phase.
# PostgreSQL runs as a throwaway cluster (tests/pg/cluster.sh: fsync off, like a test; a
# production cluster pays for its commits on disk, see docs/SCALE.md).
#   DEVICES=10000 THREADS=8 REQUESTS=40000 MAX_SECONDS=15 PUSH_N=200 bench/bench_pg.sh
set -u
BUILD=${BUILD:-build/release}
PEMN_ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
export BUILD PEMN_ROOT
. "$PEMN_ROOT/tests/integration/lib.sh"
POLL="$PEMN_ROOT/$BUILD/bench/bench_fleet_poll"
BPUSH="$PEMN_ROOT/$BUILD/bench/bench_push"
CL="$PEMN_ROOT/tests/pg/cluster.sh"
for b in "$POLL" "$BPUSH" "$PEMN_MKPKG" "$PEMND_BIN"; do
    [ -x "$b" ] || { echo "bench_pg: missing $b (make bench)" >&2; exit 2; }
done
bash "$CL" available || { echo "bench_pg: PostgreSQL server binaries missing" >&2; exit 2; }
command -v nginx >/dev/null || { echo "bench_pg: nginx missing" >&2; exit 2; }
DEVICES=${DEVICES:-10000}
THREADS=${THREADS:-8}
REQUESTS=${REQUESTS:-40000}
MAX_SECONDS=${MAX_SECONDS:-15}
PUSH_N=${PUSH_N:-200}
D=$T_TMP
PGDIR=$(mktemp -d /tmp/pemn-pgbench.XXXXXX)
NGINX_PID=
REPLICAS=()
stop_setup() {
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=
    local p
    for p in "${REPLICAS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${REPLICAS[@]}"; do wait "$p" 2>/dev/null; done
    REPLICAS=()
}
stop_all() {
    stop_setup
    t_cleanup
    bash "$CL" stop "$PGDIR"
}
trap stop_all EXIT
bash "$CL" start "$PGDIR" >"$D/cluster.log" 2>&1 || { cat "$D/cluster.log" >&2; exit 1; }
PM=$(cat "$PGDIR/pid")

# CPU seconds (user + system) of the given PIDs and, for the postmaster, its children.
cpu_of() {
    local hz total=0 p t
    hz=$(getconf CLK_TCK)
    for p in "$@"; do
        for t in $p $(ps --ppid "$p" -o pid= 2>/dev/null); do
            [ -r "/proc/$t/stat" ] || continue
            total=$((total + $(awk '{print $14 + $15}' "/proc/$t/stat")))
        done
    done
    echo "$total $hz" | awk '{printf "%.3f", $1 / $2}'
}

"$PEMN_MKPKG" keygen "$D/k" >/dev/null || exit 1
"$PEMN_MKPKG" pack "$D/k.key" net 1.0.0 1 4096 "$D/p.pemn" >/dev/null || exit 1
DIGEST="sha256:$(sha256sum "$D/p.pemn" | cut -c1-64)"
mkdir -p "$D/push"
for c in a b c d; do
    "$PEMN_MKPKG" many "$D/k.key" "par$c" $((PUSH_N / 4)) 4096 "$D/push" >/dev/null || exit 1
done
PUSH_FILES=$(for i in $(seq 1 $((PUSH_N / 4))); do for c in a b c d; do echo "$D/push/par$c-$i.pemn"; done; done)

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg);" \
    "devices=$DEVICES threads=$THREADS requests=$REQUESTS max_seconds=$MAX_SECONDS push_n=$PUSH_N"
printf '%-8s %9s %10s %9s %8s %18s %18s\n' setup polls/s blob-get/s pushes/s regs/s \
    cpu-ms/poll:pemnd+pg cpu-ms/push:pemnd+pg

run_setup() { # NAME DB N_REPLICAS
    local name=$1 db=$2 n=$3 ups="" i port pids=() admin
    admin=("$PEMND_BIN" --db "$db")
    "${admin[@]}" key add "$D/k.pub" >/dev/null || return 1
    local pub dev
    pub=$("${admin[@]}" token create --scope publish | tail -n 1)
    dev=$("${admin[@]}" token create --scope device | tail -n 1)
    for i in $(seq 1 "$n"); do
        port=$(free_port) || return 1
        "$PEMND_BIN" --db "$db" --listen "127.0.0.1:$port" --log_level warn \
            --allow-unbound-device-tokens --device-registration-rate 0 \
            --device-registrations-max 0 >>"$D/$name-r$i.log" 2>&1 &
        REPLICAS+=("$!")
        pids+=("$!")
        wait_http "http://127.0.0.1:$port/v1/health" 10 || return 1
        ups="$ups server 127.0.0.1:$port max_fails=1 fail_timeout=3s;"
    done
    local nd=$D/nginx-$name np
    np=$(free_port) || return 1
    mkdir -p "$nd/cache" "$nd/tmp"
    sed -e "s|@PREFIX@|$nd|g" -e "s|@LISTEN@|127.0.0.1:$np|g" -e "s|@UPSTREAMS@|$ups|g" \
        "$PEMN_ROOT/deploy/nginx/pemn-replicas.conf.in" >"$nd/nginx.conf"
    nginx -p "$nd" -c "$nd/nginx.conf" -g 'daemon off; user root;' >"$nd/out.log" 2>&1 &
    NGINX_PID=$!
    local u=http://127.0.0.1:$np
    wait_http "$u/v1/health" 10 || return 1
    curl -s -o /dev/null -H "Authorization: Bearer $pub" -T "$D/p.pemn" "$u/v1/models/net/versions/1.0.0"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $pub" \
        -d '{"model":"net","version":"1.0.0","rollout":{"percent":100}}' "$u/v1/fleets/bench")" = 200 ] ||
        return 1
    local c0 c1 c2 g0 g1 g2
    c0=$(cpu_of "${pids[@]}")
    g0=$(cpu_of "$PM")
    "$POLL" "$u" bench "$dev" --devices "$DEVICES" --threads "$THREADS" --requests "$REQUESTS" \
        --seconds "$MAX_SECONDS" --peer-path "/v1/blobs/$DIGEST" >"$D/$name.poll" 2>&1 ||
        { cat "$D/$name.poll" >&2; return 1; }
    c1=$(cpu_of "${pids[@]}")
    g1=$(cpu_of "$PM")
    # shellcheck disable=SC2086
    "$BPUSH" "$u" "$pub" "$D/k.pub" 4 $PUSH_FILES >"$D/$name.push" 2>&1 ||
        { cat "$D/$name.push" >&2; return 1; }
    c2=$(cpu_of "${pids[@]}")
    g2=$(cpu_of "$PM")
    if [ "$name" = sqlite ]; then g2=$g0 g1=$g0; fi
    local first steady peer pushes nreq
    first=$(awk '$1 == "fleet-poll" && $2 ~ /^first/ {for (i = 3; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5)}' "$D/$name.poll")
    steady=$(awk '$1 == "fleet-poll" && $2 == "steady" {for (i = 3; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5)}' "$D/$name.poll")
    peer=$(awk '$1 == "fleet-poll" && $2 == "peer" {for (i = 3; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5)}' "$D/$name.poll")
    nreq=$(awk '$1 == "fleet-poll" && ($2 ~ /^first/ || $2 == "steady") {for (i = 3; i <= NF; i++) if ($i ~ /^requests=/) s += substr($i, 10)} END {print s + 0}' "$D/$name.poll")
    pushes=$(sed -n 's/^pemnd push ([0-9]* clients*): \([0-9.]*\) packages.*/\1/p' "$D/$name.push")
    printf '%-8s %9s %10s %9s %8s %18s %18s\n' "$name" "$steady" "$peer" "$pushes" "$first" \
        "$(echo "$c0 $c1 $g0 $g1 $nreq" | awk '{printf "%.3f+%.3f", ($2 - $1) * 1000 / $5, ($4 - $3) * 1000 / $5}')" \
        "$(echo "$c1 $c2 $g1 $g2 $PUSH_N" | awk '{printf "%.3f+%.3f", ($2 - $1) * 1000 / $5, ($4 - $3) * 1000 / $5}')"
    stop_setup
}

why() { # NAME: what went wrong in a set-up
    echo "bench_pg: $1 failed; logs:" >&2
    tail -n 5 "$D/$1"-r*.log "$D/nginx-$1/error.log" "$D/$1.poll" "$D/$1.push" 2>/dev/null >&2
}
mkdir -p "$D/sqlite"
run_setup sqlite "$D/sqlite/pemn.db" 1 || { why sqlite; exit 1; }
run_setup pg-1 "$(bash "$CL" newdb "$PGDIR" bench1)" 1 || { why pg-1; exit 1; }
run_setup pg-2 "$(bash "$CL" newdb "$PGDIR" bench2)" 2 || { why pg-2; exit 1; }
echo "columns: steady desired-state polls/s (mostly 304), blob GET/s through nginx (cached),"
echo "  push packages/s (4 clients), first-contact registrations/s, CPU ms of pemnd (all replicas)"
echo "  + PostgreSQL per poll (first contact + steady) and per push; nginx and the load generator"
echo "  excluded; the PostgreSQL CPU includes its background processes (all set-ups share one cluster)"
