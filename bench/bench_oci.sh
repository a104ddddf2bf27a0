#!/usr/bin/env bash
# OCI benchmarks (make bench), each against a peer in the same run:
#  1. Pull through pemnd's /v2 vs /v1, step by step with wrk on loopback: the metadata step
#     (GET /v2/net/manifests/1 vs GET /v1/models/net/versions/1) and the bytes step
#     (GET /v2/net/blobs/<d> vs GET /v1/blobs/<d>); req/s and pemnd CPU microseconds per
#     request, alternating rounds, median; ratio v2/v1.
#  2. `pemn pull oci://` (manifest, config, layer, SHA-256, signature check, atomic install)
#     vs `skopeo copy docker://... oci:DIR` (manifest, config, layer into a layout) of the
#     same PEMN artifact from Debian's docker-registry; median wall time of N runs each,
#     alternating; ratio pemn/skopeo.
# Env: BENCH_SECONDS (3), BENCH_CONNS (32), BENCH_ROUNDS (3), BENCH_PULLS (7),
#      BENCH_PKG_KIB (256 for wrk), BENCH_BIG_MIB (16 for the pull race).
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2
SECS=${BENCH_SECONDS:-3}
CONNS=${BENCH_CONNS:-32}
ROUNDS=${BENCH_ROUNDS:-3}
PULLS=${BENCH_PULLS:-7}
PKG_KIB=${BENCH_PKG_KIB:-256}
BIG_MIB=${BENCH_BIG_MIB:-16}
PEMND=$ROOT/$BUILD/bin/pemnd
PEMN=$ROOT/$BUILD/bin/pemn
MKPKG=$ROOT/$BUILD/tests/tools/pemn_mkpkg
for b in "$PEMND" "$PEMN" "$MKPKG"; do
    [ -x "$b" ] || { echo "bench_oci: $b not built" >&2; exit 1; }
done
for t in wrk skopeo /usr/bin/docker-registry; do
    command -v "$t" >/dev/null || { echo "bench_oci: $t missing (deploy/install-deps.sh)" >&2; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-oci.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
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
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "settings: wrk -t2 -c$CONNS -d${SECS}s x $ROUNDS rounds; package ${PKG_KIB} KiB (wrk), ${BIG_MIB} MiB (pull race, $PULLS runs)"

"$MKPKG" keygen "$W/alice" >/dev/null || exit 1
"$MKPKG" pack "$W/alice.key" net 1 1 $((PKG_KIB * 1024 - 1500)) "$W/net.pemn" 1 || exit 1
"$MKPKG" pack "$W/alice.key" big 1 1 $((BIG_MIB * 1024 * 1024)) "$W/big.pemn" 2 || exit 1

# ---- 1. /v2 vs /v1 on pemnd ---------------------------------------------------------------------
PP=$(free_port)
"$PEMND" --db "$W/pemn.db" --listen "127.0.0.1:$PP" --threads 2 --log-level warn \
    --connection-limit 4096 >"$W/pemnd.log" 2>&1 &
PEMND_PID=$!
PIDS+=($!)
wait_up "http://127.0.0.1:$PP/v1/health" || { echo "pemnd did not start" >&2; exit 1; }
"$PEMND" --db "$W/pemn.db" key add "$W/alice.pub" >/dev/null || exit 1
TOK=$("$PEMND" --db "$W/pemn.db" token create --scope publish | tail -n 1)
D=$(curl -s -X PUT -H "Authorization: Bearer $TOK" --data-binary "@$W/net.pemn" \
    "http://127.0.0.1:$PP/v1/models/net/versions/1" | jq -r .digest)
U=http://127.0.0.1:$PP
cat >"$W/accept.lua" <<'LUA'
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"
LUA
bench() { # URL [wrk args] -> "req/s cpu-us/req"
    local url=$1 out c0 c1 n
    shift
    c0=$(cpu_ticks "$PEMND_PID")
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "$@" "$url" 2>&1)
    c1=$(cpu_ticks "$PEMND_PID")
    echo "$out" | grep -E 'Non-2xx|Socket errors' >&2
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}') $(awk -v c=$((c1 - c0)) -v n="${n:-0}" -v hz="$HZ" 'BEGIN {printf "%.1f", n ? c * 1e6 / hz / n : 0}')"
}
declare -A RPS CPU
for r in $(seq 1 "$ROUNDS"); do
    for k in meta_v1 meta_v2 blob_v1 blob_v2; do
        case $k in
        meta_v1) res=$(bench "$U/v1/models/net/versions/1") ;;
        meta_v2) res=$(bench "$U/v2/net/manifests/1" -s "$W/accept.lua") ;;
        blob_v1) res=$(bench "$U/v1/blobs/$D") ;;
        blob_v2) res=$(bench "$U/v2/net/blobs/$D") ;;
        esac
        RPS[$k]+="${res% *} "
        CPU[$k]+="${res#* } "
    done
done
for step in meta blob; do
    r1=$(echo ${RPS[${step}_v1]} | tr ' ' '\n' | median)
    r2=$(echo ${RPS[${step}_v2]} | tr ' ' '\n' | median)
    c1=$(echo ${CPU[${step}_v1]} | tr ' ' '\n' | median)
    c2=$(echo ${CPU[${step}_v2]} | tr ' ' '\n' | median)
    name=$([ $step = meta ] && echo "metadata (version JSON vs manifest)" || echo "package bytes (${PKG_KIB} KiB)")
    printf '%-38s /v1 %9.0f req/s %7.1f us/req | /v2 %9.0f req/s %7.1f us/req | v2/v1 req/s %.2f, cpu %.2f\n' \
        "$name" "$r1" "$c1" "$r2" "$c2" "$(awk -v a="$r2" -v b="$r1" 'BEGIN{print b ? a/b : 0}')" \
        "$(awk -v a="$c2" -v b="$c1" 'BEGIN{print b ? a/b : 0}')"
done

# ---- 2. pemn pull oci:// vs skopeo copy from docker-registry --------------------------------------
RP=$(free_port)
mkdir -p "$W/reg/storage"
cat >"$W/reg/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/reg/storage
http:
  addr: 127.0.0.1:$RP
YML
/usr/bin/docker-registry serve "$W/reg/config.yml" >"$W/reg/log" 2>&1 &
PIDS+=($!)
wait_up "http://127.0.0.1:$RP/v2/" || { echo "docker-registry did not start" >&2; exit 1; }
"$PEMN" push --plain-http -q "$W/big.pemn" "oci://127.0.0.1:$RP/models/big:1" || exit 1
SK=$W/sk
mkdir -p "$SK/home" "$SK/tmp"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$SK/policy.json"
: >"$SK/registries.conf"
echo '{}' >"$SK/auth.json"
ms() { date +%s%3N; }
TP= TS=
for i in $(seq 1 "$PULLS"); do
    rm -rf "$W/out.pemn" "$W/layout"
    t0=$(ms)
    "$PEMN" pull --plain-http -q --no-cache --trust "$W/alice.pub" -o "$W/out.pemn" \
        "oci://127.0.0.1:$RP/models/big:1" || { echo "pemn pull failed" >&2; exit 1; }
    t1=$(ms)
    HOME=$SK/home TMPDIR=$SK/tmp skopeo --policy "$SK/policy.json" --registries-conf \
        "$SK/registries.conf" copy -q --authfile "$SK/auth.json" --src-tls-verify=false \
        "docker://127.0.0.1:$RP/models/big:1" "oci:$W/layout:big" || { echo "skopeo failed" >&2; exit 1; }
    t2=$(ms)
    TP+="$((t1 - t0)) "
    TS+="$((t2 - t1)) "
done
cmp -s "$W/big.pemn" "$W/out.pemn" || { echo "pemn pull: wrong bytes" >&2; exit 1; }
mp=$(echo $TP | tr ' ' '\n' | median)
ms_=$(echo $TS | tr ' ' '\n' | median)
printf 'pull of a %d MiB PEMN artifact from docker-registry: pemn pull oci:// %d ms (verified, installed), skopeo copy %d ms; pemn/skopeo %.2f\n' \
    "$BIG_MIB" "$mp" "$ms_" "$(awk -v a="$mp" -v b="$ms_" 'BEGIN{print b ? a/b : 0}')"
