#!/usr/bin/env bash
# Pull benchmark: bytes on the wire and wall time for a device to obtain a runnable model.
#   pemn:  pemn pull --expand (resolve + download the .pemn + verify digest and signature +
#          reconstruct the dense float32 safetensors), from pemnd on loopback
#   peer:  curl of the same network as a float32 safetensors file, served by nginx on the
#          same loopback (pemnd serves only packages)
# Both end with the identical dense file (checked with cmp). Each case runs REPS times; the
# median time is reported. Links: unlimited loopback, and capped at RATE bytes/s for both
# (pemn --limit-rate, curl --limit-rate) to stand for a device's network.
# Bytes: HTTP body bytes (pemn: the resolve JSON + the package; curl: size_download);
# headers (a few hundred bytes per request) are left out for both.
# Models: the Fashion-MNIST MLP (784-300-100-10, 266,200 masked weights) trained here by
# `pemn train --mode mask` for one epoch (RP, seeded prototype, density 0.5; falls back to a
# synthetic package of the same shape when the dataset is missing, and says so), and a
# synthetic 4096-4096-1024 network (20,971,520 masked weights) packed as RP (one explicit
# 4096-value prototype, density 0.5) by the test_client_pull tool mode.
#   usage: BUILD=build/release bash bench/bench_pull.sh
#          (env: REPS=3 RATE=10000000 measured cap, PROJ=1000000 projected link, bytes/s)
set -u
unset PEMN_SERVER PEMN_TOKEN PEMN_TRUST PEMN_CACHE
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2
REPS=${REPS:-3}
RATE=${RATE:-10000000}
PROJ=${PROJ:-1000000}
P=$ROOT/$BUILD/bin/pemn
S=$ROOT/$BUILD/bin/pemnd
TOOL=$ROOT/$BUILD/tests/test_client_pull
VARIANT=$(basename "$BUILD")
make --no-print-directory -s VARIANT="$VARIANT" "$BUILD/tests/test_client_pull" all >/dev/null ||
    exit 1
for b in "$P" "$S" "$TOOL"; do
    [ -x "$b" ] || { echo "bench_pull: missing $b" >&2; exit 1; }
done
command -v nginx >/dev/null || { echo "bench_pull: nginx not installed" >&2; exit 1; }

D=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-pull.XXXXXX")
chmod 755 "$D"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
    done
    rm -rf "$D"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    return 1
}
wait_http() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ---- models ------------------------------------------------------------------------------
mkdir -p "$D/www" "$D/tmp"
chmod 755 "$D/www"
"$TOOL" keygen "$D/pub" || exit 1
NAMES=(fmnist-mlp synth-21m)
LAYERS=(784x300,300x100,100x10 4096x4096,4096x1024)
if "$P" train --mode mask --epochs 1 --key "$D/pub.key" --name fmnist-mlp --version 1.0.0 \
    --release 1 --out "$D/fmnist-mlp.pemn" >"$D/train.log" 2>&1; then
    MLP_NOTE="fmnist-mlp: trained 1 epoch, $(grep -Eo 'test accuracy [0-9.]+%' "$D/train.log")"
else
    MLP_NOTE="fmnist-mlp: SYNTHETIC (pemn train failed: $(tail -1 "$D/train.log"))"
    rm -f "$D/fmnist-mlp.pemn"
fi
for i in 0 1; do
    [ -f "$D/${NAMES[$i]}.pemn" ] ||
        "$TOOL" make-pkg "$D/pub.key" "${NAMES[$i]}" 1.0.0 1 "${LAYERS[$i]}" \
            "$D/${NAMES[$i]}.pemn" || exit 1
    "$TOOL" expand "$D/${NAMES[$i]}.pemn" "$D/www/${NAMES[$i]}.safetensors" || exit 1
    chmod 644 "$D/www/${NAMES[$i]}.safetensors"
done

# ---- servers -----------------------------------------------------------------------------
"$S" --db "$D/reg.db" key add "$D/pub.pub" --name bench >/dev/null || exit 1
TOK=$("$S" --db "$D/reg.db" token create --scope publish --name bench | tail -1)
PP=$(free_port)
"$S" --db "$D/reg.db" --listen "127.0.0.1:$PP" >"$D/pemnd.log" 2>&1 &
PIDS+=($!)
NP=$(free_port)
cat >"$D/nginx.conf" <<EOF
worker_processes 1;
pid $D/nginx.pid;
error_log $D/nginx.err;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $D/tmp/body;
    proxy_temp_path $D/tmp/proxy;
    fastcgi_temp_path $D/tmp/fcgi;
    uwsgi_temp_path $D/tmp/uwsgi;
    scgi_temp_path $D/tmp/scgi;
    types { application/octet-stream safetensors; }
    server { listen 127.0.0.1:$NP; root $D/www; }
}
EOF
nginx -p "$D" -c "$D/nginx.conf" -g 'daemon off;' 2>"$D/nginx.start" &
PIDS+=($!)
wait_http "http://127.0.0.1:$PP/v1/health" || { echo "pemnd did not start" >&2; exit 1; }
wait_http "http://127.0.0.1:$NP/" || { echo "nginx did not start" >&2; cat "$D/nginx.start" >&2; exit 1; }
for n in "${NAMES[@]}"; do
    "$P" push --quiet --server "http://127.0.0.1:$PP" --token "$TOK" "$D/$n.pemn" || exit 1
done

# ---- measure -----------------------------------------------------------------------------
printf '%s\n' "machine: $(nproc) cores, $(uname -sr); pemnd and nginx on 127.0.0.1; REPS=$REPS"
printf '%s\n' "$MLP_NOTE"
printf '%-11s %-10s %12s %12s %8s %10s %10s %7s\n' model link "pemn bytes" "f32 bytes" \
    "bytes x" "pemn s" "curl s" "time x"
for n in "${NAMES[@]}"; do
    META=$(curl -s -o /dev/null -w '%{size_download}' \
        "http://127.0.0.1:$PP/v1/models/$n/versions/1.0.0")
    for link in loopback capped; do
        lim_p=() lim_c=()
        if [ "$link" = capped ]; then
            lim_p=(--limit-rate "$RATE")
            lim_c=(--limit-rate "$RATE")
        fi
        tp=() tc=()
        for _ in $(seq 1 "$REPS"); do
            rm -f "$D/got.pemn" "$D/got.st" "$D/curl.st"
            t0=$(now_ns)
            "$P" pull --server "http://127.0.0.1:$PP" --trust "$D/pub.pub" --no-cache --json \
                "${lim_p[@]}" --out "$D/got.pemn" --expand "$D/got.st" "$n:1.0.0" \
                >"$D/pull.json" || exit 1
            t1=$(now_ns)
            cb=$(curl -s "${lim_c[@]}" -o "$D/curl.st" -w '%{size_download}' \
                "http://127.0.0.1:$NP/$n.safetensors") || exit 1
            t2=$(now_ns)
            cmp -s "$D/got.st" "$D/curl.st" || { echo "dense files differ for $n" >&2; exit 1; }
            tp+=($(((t1 - t0) / 1000)))
            tc+=($(((t2 - t1) / 1000)))
        done
        pb=$(grep -Eo '"bytes_received": ?[0-9]+' "$D/pull.json" | grep -Eo '[0-9]+$')
        pb=$((pb + META))
        mp=$(printf '%s\n' "${tp[@]}" | median)
        mc=$(printf '%s\n' "${tc[@]}" | median)
        awk -v n="$n" -v l="$link" -v pb="$pb" -v cb="$cb" -v mp="$mp" -v mc="$mc" 'BEGIN {
            printf "%-11s %-10s %12d %12d %7.1fx %10.3f %10.3f %6.2fx\n",
                n, l, pb, cb, cb / pb, mp / 1e6, mc / 1e6, mc / mp }'
        if [ "$link" = loopback ]; then
            # projection for a slow link: transfer at PROJ bytes/s + the local cost measured
            awk -v n="$n" -v pb="$pb" -v cb="$cb" -v mp="$mp" -v mc="$mc" -v r="$PROJ" 'BEGIN {
                p = pb / r + mp / 1e6; c = cb / r + mc / 1e6;
                printf "%-11s %-10s %12s %12s %8s %10.3f %10.3f %6.2fx\n",
                    n, "projected", "", "", "", p, c, c / p }'
        fi
    done
done
echo "capped = $RATE bytes/s for both (libcurl's cap is loose below a few MB);"
echo "projected = bytes / $PROJ bytes/s + the loopback time (a device on an 8 Mbit/s link);"
echo "bytes x = f32 / pemn; time x = curl time / pemn time"
