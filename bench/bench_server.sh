#!/usr/bin/env bash
# pemnd benchmarks (make bench):
#  1. GET throughput: wrk on loopback fetching a 64 KiB and a 1 MiB package from pemnd
#     (/v1/blobs/<digest>) and the same bytes as static files from nginx, same run,
#     alternating; prints req/s and the ratio pemnd/nginx per size.
#  2. Push ingest: packages/s and MB/s for small packages (signature verification included),
#     vs opening + verifying the same packages in-process.
# Env: BENCH_SECONDS (default 5), BENCH_CONNS (64), BENCH_THREADS (server threads, 2),
#      BENCH_ROUNDS (3), BENCH_PUSH_N (400). Throughput is the median over the rounds.
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2
SECS=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
PUSH_N=${BENCH_PUSH_N:-400}
PEMND=$ROOT/$BUILD/bin/pemnd
MKPKG=$ROOT/$BUILD/tests/tools/pemn_mkpkg
BPUSH=$ROOT/$BUILD/bench/bench_push
for b in "$PEMND" "$MKPKG" "$BPUSH"; do
    [ -x "$b" ] || { echo "bench_server: $b not built" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench_server: wrk missing (deploy/install-deps.sh)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench_server: nginx missing (deploy/install-deps.sh)" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    chmod -R u+w "$W" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}
wait_up() {
    for _ in $(seq 1 100); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
    return 1
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "settings: wrk -t2 -c$CONNS -d${SECS}s, $ROUNDS rounds alternating, server threads/workers $THREADS"

# ---- packages ----------------------------------------------------------------------------
"$MKPKG" keygen "$W/alice" || exit 1
# the payload is one mask byte per 8 weights; ~1.5 KB of manifest/proto/signature overhead
"$MKPKG" pack "$W/alice.key" small 1 1 $((64 * 1024 - 1500)) "$W/small.pemn" 1 || exit 1
"$MKPKG" pack "$W/alice.key" large 1 1 $((1024 * 1024 - 1500)) "$W/large.pemn" 2 || exit 1

# ---- pemnd -------------------------------------------------------------------------------
PP=$(free_port)
"$PEMND" --db "$W/pemn.db" --listen "127.0.0.1:$PP" --threads "$THREADS" --log-level warn \
    --connection-limit 4096 --per-ip-connection-limit 0 >"$W/pemnd.log" 2>&1 &
PEMND_PID=$!
PIDS+=($!)
wait_up "http://127.0.0.1:$PP/v1/health" || { echo "pemnd did not start" >&2; cat "$W/pemnd.log"; exit 1; }
"$PEMND" --db "$W/pemn.db" key add "$W/alice.pub" >/dev/null || exit 1
TOK=$("$PEMND" --db "$W/pemn.db" token create --scope publish | tail -n 1)
declare -A DIGEST SIZE
for s in small large; do
    out=$(curl -s -X PUT -H "Authorization: Bearer $TOK" --data-binary "@$W/$s.pemn" \
        "http://127.0.0.1:$PP/v1/models/$s/versions/1")
    DIGEST[$s]=$(echo "$out" | jq -r .digest)
    SIZE[$s]=$(stat -c %s "$W/$s.pemn")
done

# ---- nginx serving the same bytes under the same paths ---------------------------------------
NP=$(free_port)
mkdir -p "$W/nginx/www/v1/blobs" "$W/nginx/logs"
for s in small large; do cp "$W/$s.pemn" "$W/nginx/www/v1/blobs/${DIGEST[$s]}"; done
chmod -R a+rX "$W/nginx/www"
chmod a+x "$W"
cat >"$W/nginx/nginx.conf" <<CONF
worker_processes $THREADS;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    open_file_cache max=100 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path $W/nginx/body;
    proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi;
    uwsgi_temp_path $W/nginx/uwsgi;
    scgi_temp_path $W/nginx/scgi;
    default_type application/vnd.pemn;
    server {
        listen 127.0.0.1:$NP;
        root $W/nginx/www;
        etag on;
        location /v1/blobs/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    }
}
CONF
"$NGINX" -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/logs/error.log" &
PIDS+=($!)
wait_up "http://127.0.0.1:$NP/v1/blobs/${DIGEST[small]}" || { echo "nginx did not start" >&2; cat "$W/nginx/logs/error.log"; exit 1; }
for s in small large; do
    a=$(curl -s "http://127.0.0.1:$PP/v1/blobs/${DIGEST[$s]}" | sha256sum | cut -c1-64)
    b=$(curl -s "http://127.0.0.1:$NP/v1/blobs/${DIGEST[$s]}" | sha256sum | cut -c1-64)
    [ "sha256:$a" = "${DIGEST[$s]}" ] && [ "$a" = "$b" ] || { echo "bench: servers disagree on $s" >&2; exit 1; }
done

cpu_ticks() { # PIDS... -> utime+stime clock ticks
    local t=0 p
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
    echo "$t"
}
HZ=$(getconf CLK_TCK)
NGINX_MASTER=${PIDS[-1]}
# bench WHO URL -> "req/s cpu-us-per-request"; CPU time is the server's own (pemnd, or the
# nginx workers), which a busy shared machine distorts far less than req/s
bench() {
    local who=$1 url=$2 pids out c0 c1 n
    if [ "$who" = pemnd ]; then pids=$PEMND_PID; else pids=$(pgrep -P "$NGINX_MASTER" | tr '\n' ' '); fi
    c0=$(cpu_ticks $pids)
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$url" 2>&1)
    c1=$(cpu_ticks $pids)
    if echo "$out" | grep -qE 'Non-2xx|Socket errors: connect [1-9]|read [1-9]'; then
        echo "$out" | grep -E 'Non-2xx|Socket errors' >&2
    fi
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(awk -v c=$((c1 - c0)) -v n="${n:-0}" -v hz="$HZ" 'BEGIN {printf "%.1f", n ? c * 1e6 / hz / n : 0}')"
}

declare -A RUNS CPUS
for s in small large; do
    for r in $(seq 1 "$ROUNDS"); do
        for who in pemnd nginx; do
            port=$PP
            [ $who = nginx ] && port=$NP
            set -- $(bench $who "http://127.0.0.1:$port/v1/blobs/${DIGEST[$s]}")
            echo "  $s round $r $who: ${1:-0} req/s, ${2:-0} us CPU/request"
            RUNS[${who}_$s]="${RUNS[${who}_$s]:-} ${1:-0}"
            CPUS[${who}_$s]="${CPUS[${who}_$s]:-} ${2:-0}"
        done
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo
printf '%-20s %11s %11s %9s %13s %13s %9s\n' "package" "pemnd req/s" "nginx req/s" "ratio" \
    "pemnd us/req" "nginx us/req" "cpu ratio"
for s in small large; do
    a=$(echo "${RUNS[pemnd_$s]}" | median)
    b=$(echo "${RUNS[nginx_$s]}" | median)
    ca=$(echo "${CPUS[pemnd_$s]}" | median)
    cb=$(echo "${CPUS[nginx_$s]}" | median)
    printf '%-20s %11.0f %11.0f %9.2f %13.1f %13.1f %9.2f\n' "$s (${SIZE[$s]} B)" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN {print (b > 0) ? a / b : 0}')" "$ca" "$cb" \
        "$(awk -v a="$ca" -v b="$cb" 'BEGIN {print (a > 0) ? b / a : 0}')"
done
echo "(ratio = pemnd/nginx req/s; cpu ratio = nginx/pemnd CPU per request: > 1 means pemnd is cheaper)"

# ---- push ingest -------------------------------------------------------------------------
echo
mkdir -p "$W/push"
# one client, one model: releases in order
"$MKPKG" many "$W/alice.key" ingest "$PUSH_N" 4096 "$W/push" || exit 1
"$BPUSH" "http://127.0.0.1:$PP" "$TOK" "$W/alice.pub" 1 \
    $(for i in $(seq 1 "$PUSH_N"); do echo "$W/push/ingest-$i.pemn"; done) || exit 1
# four clients, a model each (file k goes to client k mod 4, so each sees its releases in order)
for c in a b c d; do "$MKPKG" many "$W/alice.key" "par$c" $((PUSH_N / 4)) 4096 "$W/push" || exit 1; done
"$BPUSH" "http://127.0.0.1:$PP" "$TOK" "$W/alice.pub" 4 \
    $(for i in $(seq 1 $((PUSH_N / 4))); do for c in a b c d; do echo "$W/push/par$c-$i.pemn"; done; done) || exit 1
# large packages: 1 MiB each
"$MKPKG" many "$W/alice.key" big 40 $((1024 * 1024)) "$W/push" || exit 1
"$BPUSH" "http://127.0.0.1:$PP" "$TOK" "$W/alice.pub" 1 \
    $(for i in $(seq 1 40); do echo "$W/push/big-$i.pemn"; done) || exit 1
