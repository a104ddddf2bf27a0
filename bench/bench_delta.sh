#!/usr/bin/env bash
# Model updates as deltas (docs/BENCHMARKS.md, "Entropy-coded masks and deltas (issue 12)").
# Models: the Fashion-MNIST MLP (784-300-100-10, RP 1e-3, k = 0.5, 266,200 mask bits),
# trained here by `pemn train` for BASE_EPOCHS epochs with --checkpoint, then updated three
# ways (as in the issue's table):
#   more     2 more epochs on the same data, lr 0.01, from the checkpoint (--init-from)
#   shifted  2 epochs, lr 0.01, from the checkpoint, on the data shifted by 2 pixels right
#            and 1 down (an IDX copy made here with numpy)
#   scratch  retrained from scratch with another seed
# Per update: flipped bits, the ideal delta (entropy of the flips: sum over tensors of
# numel * H(flips/numel) / 8), the .pemnd size (pemn diff; target <= 1.05 x ideal + 512 B),
# and the peer: xz -9 of the XOR of the two packages' bit-packed masks. Test accuracy as
# printed by the trainer.
# Then one update ("more") delivered over a 1 MB/s link (curl --limit-rate 1000000 from a
# loopback HTTP server): the delta (then pemn patch + verify + expand), the full package
# (then verify + expand), the float32 safetensors; wall time end to end, median of REPS.
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
P=${PEMN:-$ROOT/$BUILD/bin/pemn}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
BASE_EPOCHS=${BASE_EPOCHS:-5}
REPS=${REPS:-3}
RATE=${RATE:-1000000}
PY=/usr/bin/python3
T=$(mktemp -d "${TMPDIR:-/tmp}/pemn-bench-delta.XXXXXX")
SRV=
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
[ -x "$P" ] || { echo "bench_delta: build first (make)" >&2; exit 2; }
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "bench_delta: no data in $DATA" >&2; exit 2; }
for c in xz curl "$PY"; do command -v "$c" >/dev/null || { echo "bench_delta: $c missing" >&2; exit 2; }; done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$P" keygen --out "$T/k" >/dev/null || exit 1

# shifted data set
mkdir -p "$T/shifted"
"$PY" - "$DATA" "$T/shifted" <<'EOF' || exit 1
import gzip, shutil, sys, numpy as np
src, dst = sys.argv[1], sys.argv[2]
for split in ("train", "t10k"):
    with gzip.open(f"{src}/{split}-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    n, r, c = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    img = np.frombuffer(raw, np.uint8, n * r * c, 16).reshape(n, r, c)
    img = np.roll(np.roll(img, 2, axis=2), 1, axis=1)
    with gzip.open(f"{dst}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:16] + img.tobytes())
    shutil.copy(f"{src}/{split}-labels-idx1-ubyte.gz", f"{dst}/{split}-labels-idx1-ubyte.gz")
EOF

COMMON=(--quiet --key "$T/k.key" --name fmnist)
acc() { sed -n 's/^final: test accuracy \([0-9.]*\)%.*/\1/p'; }
a_base=$("$P" train --mode mask --density 0.5 --epochs "$BASE_EPOCHS" "${COMMON[@]}" --version v1 \
    --release 1 --out "$T/base.pemn" --checkpoint "$T/base.st" | acc) || exit 1
a_more=$("$P" train --init-from "$T/base.st" --epochs 2 --lr 0.01 "${COMMON[@]}" --version v2 \
    --release 2 --out "$T/more.pemn" | acc) || exit 1
a_shift=$("$P" train --init-from "$T/base.st" --data "$T/shifted" --epochs 2 --lr 0.01 \
    "${COMMON[@]}" --version v3 --release 3 --out "$T/shifted.pemn" | acc) || exit 1
a_scr=$("$P" train --mode mask --density 0.5 --epochs "$BASE_EPOCHS" --seed 2 "${COMMON[@]}" \
    --version v4 --release 4 --out "$T/scratch.pemn" | acc) || exit 1
a_base_sh=$("$P" eval "$T/base.pemn" --data "$T/shifted" --trust "$T/k.pub" 2>&1 |
    sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' | head -1)
echo "base: test accuracy $a_base% ($BASE_EPOCHS epochs, k 0.5); on the shifted test set $a_base_sh%"

# XOR of the bit-packed masks of two packages, via pemn inspect --json? no: expand and
# recover the bits (w != 0: the signed prototype has no zero value)
masks() { # PKG OUT: concatenated LSB-first bit-packed masks of the masked tensors
    "$P" expand "$1" --out "$T/x.st" --trust "$T/k.pub" >/dev/null 2>&1 || return 1
    "$PY" - "$T/x.st" "$2" <<'EOF'
import json, struct, sys, numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
out = bytearray()
sizes = []
for k, v in h.items():
    if k == "__metadata__" or not k.endswith(".weight"):
        continue
    s, e = v["data_offsets"]
    w = np.frombuffer(b[8 + n + s:8 + n + e], np.float32)
    out += np.packbits(w != 0, bitorder="little").tobytes()
    sizes.append(len(w))
open(sys.argv[2], "wb").write(out)
open(sys.argv[2] + ".sizes", "w").write(" ".join(map(str, sizes)))
EOF
}
masks "$T/base.pemn" "$T/base.bits" || exit 1
printf '%-9s %9s %9s %8s %9s %11s %9s %11s %9s\n' update accuracy flips "flips%" "ideal B" \
    "delta B" "/ideal" "xz(XOR) B" "package B"
for u in more shifted scratch; do
    js=$("$P" diff "$T/base.pemn" "$T/$u.pemn" --out "$T/$u.pemnd" --json) || exit 1
    masks "$T/$u.pemn" "$T/$u.bits" || exit 1
    "$PY" - "$T/base.bits" "$T/$u.bits" "$T/$u.xor" <<'EOF'
import sys, numpy as np
a = np.fromfile(sys.argv[1], np.uint8); b = np.fromfile(sys.argv[2], np.uint8)
(a ^ b).tofile(sys.argv[3])
EOF
    xzb=$(xz -9 -c "$T/$u.xor" | wc -c)
    case $u in more) a=$a_more ;; shifted) a=$a_shift ;; scratch) a=$a_scr ;; esac
    "$PY" - "$js" "$u" "$a" "$xzb" "$(stat -c %s "$T/$u.pemn")" "$T/base.bits" "$T/$u.bits" <<'EOF'
import json, math, sys, numpy as np
j = json.loads(sys.argv[1]); u, a, xzb, pk = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
sizes = [int(x) for x in open(sys.argv[6] + ".sizes").read().split()]
bits = np.unpackbits(np.fromfile(sys.argv[6], np.uint8) ^ np.fromfile(sys.argv[7], np.uint8),
                     bitorder="little")
H = lambda p: 0.0 if p <= 0 or p >= 1 else -p * math.log2(p) - (1 - p) * math.log2(1 - p)
pos, flips, ideal, total = 0, 0, 0.0, 0
for n in sizes:
    f = int(bits[pos:pos + n].sum()); pos += (n + 7) // 8 * 8
    flips += f; total += n; ideal += n * H(f / n) / 8
d = j["delta_bytes"]
ok = "ok" if d <= 1.05 * ideal + 512 else "OVER"
print(f"{u:<9} {a:>8}% {flips:>9} {100*flips/total:>7.2f}% {ideal:>9.0f} "
      f"{d:>11} {d/ideal:>9.3f} {xzb:>11} {pk:>9}  (1.05 x ideal + 512 = "
      f"{1.05*ideal+512:.0f}: {ok}; delta/xz {d/xzb:.2f}; masks sent as flips: "
      f"{j['mask_tensors']} of {len(sizes)})")
EOF
done

# a 1 MB/s link: the "more" update
"$P" expand "$T/more.pemn" --out "$T/more.f32.safetensors" --trust "$T/k.pub" >/dev/null 2>&1
mkdir -p "$T/www"
cp "$T/more.pemnd" "$T/more.pemn" "$T/more.f32.safetensors" "$T/www/"
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$T/www" && exec "$PY" -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
SRV=$!
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
get() { # FILE: downloads it (a local copy when LOCAL=1), checks the size
    if [ "${LOCAL:-0}" = 1 ]; then cp "$T/www/$1" "$T/dl"; else
        curl -sf --limit-rate "$RATE" -o "$T/dl" "http://127.0.0.1:$port/$1" || return 1; fi
    [ "$(stat -c %s "$T/dl")" = "$(stat -c %s "$T/www/$1")" ]
}
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
run() { # label: prints seconds end to end
    local t0 t1
    t0=$(now)
    case $1 in
    delta) get more.pemnd && "$P" patch "$T/base.pemn" "$T/dl" --out "$T/new.pemn" \
        --trust "$T/k.pub" >/dev/null && "$P" expand "$T/new.pemn" --out "$T/out.st" \
        --trust "$T/k.pub" >/dev/null 2>&1 ;;
    full) get more.pemn && "$P" expand "$T/dl" --out "$T/out.st" --trust "$T/k.pub" \
        >/dev/null 2>&1 ;;
    f32) get more.f32.safetensors ;;
    esac || return 1
    t1=$(now)
    cmp -s "$T/out.st" "$T/more.f32.safetensors" 2>/dev/null || [ "$1" = f32 ] || return 1
    rm -f "$T/out.st" "$T/new.pemn"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
echo "update over a $RATE B/s link, end to end (median of $REPS):"
echo "  measured: curl --limit-rate $RATE from a loopback HTTP server (curl lets the first"
echo "  ~1 MB through faster, which flatters the float32 download); projected: bytes / $RATE"
echo "  + the local work (patch, verify, expand) measured without the network"
printf '%-34s %12s %11s %11s %12s\n' "" "bytes moved" "measured s" "local s" "projected s"
for m in f32 full delta; do
    ts=()
    for _ in $(seq 1 "$REPS"); do ts+=("$(run $m)") || exit 1; done
    t=$(printf '%s\n' "${ts[@]}" | median)
    case $m in
    f32) f=more.f32.safetensors; l="float32 safetensors (curl)" ;;
    full) f=more.pemn; l="full package + verify + expand" ;;
    delta) f=more.pemnd; l="delta + patch + verify + expand" ;;
    esac
    ls=()
    for _ in $(seq 1 "$REPS"); do ls+=("$(LOCAL=1 run $m)") || exit 1; done
    lt=$(printf '%s\n' "${ls[@]}" | median)
    b=$(stat -c %s "$T/www/$f")
    printf '%-34s %12s %11s %11s %12.3f\n' "$l" "$b" "$t" "$lt" \
        "$(awk -v b="$b" -v r="$RATE" -v l="$lt" 'BEGIN { print b / r + l }')"
done

# ---- the same update end to end through pemnd (issue 12, part 5) ----
# pemn pull --expand from a real pemnd through a paced TCP relay (a 1 MB/s link: the relay
# forwards the server's bytes in 1 KB slices on a schedule of RATE bytes/s, so no burst
# gets through — unlike curl --limit-rate, which lets the first ~1 MB pass at full speed).
# The device holds v1 (its --out file) and pulls v2, which arrives as
# GET /v1/blobs/{v2}/delta?from={v1} (computed by pemnd on the first request, served from
# its store afterwards), then patch + verify + expand; --no-delta: the whole package +
# verify + expand; float32: curl of the safetensors through the same kind of relay.
PEMND=${PEMND:-$ROOT/$BUILD/bin/pemnd}
[ -x "$PEMND" ] || { echo "bench_delta: no pemnd" >&2; exit 2; }
freeport() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
relay() { # LISTEN_PORT UPSTREAM_PORT: a paced relay in the background (its PID in RELAY)
    "$PY" - "$1" "$2" "$RATE" <<'PYEOF' &
import socket, sys, threading, time
lp, up, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lp)); ls.listen(16)
def pipe(src, dst, paced):
    t0, sent = time.monotonic(), 0
    try:
        while True:
            b = src.recv(1024 if paced else 65536)
            if not b:
                break
            if paced:
                sent += len(b)
                d = t0 + sent / rate - time.monotonic()
                if d > 0:
                    time.sleep(d)
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def serve(c):
    u = socket.create_connection(("127.0.0.1", up))
    threading.Thread(target=pipe, args=(c, u, False), daemon=True).start()
    pipe(u, c, True)
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PYEOF
    RELAY=$!
}
pport=$(freeport)
"$PEMND" --db "$T/reg.db" key add "$T/k.pub" --name k >/dev/null || exit 1
PUBT=$("$PEMND" --db "$T/reg.db" token create --scope publish | tail -n 1)
"$PEMND" --db "$T/reg.db" --listen "127.0.0.1:$pport" >"$T/pemnd.log" 2>&1 &
PSRV=$!
rport=$(freeport)
relay "$rport" "$pport"
R1=$RELAY
fport=$(freeport)
relay "$fport" "$port"
R2=$RELAY
cleanup2() {
    for p in "$PSRV" "$R1" "$R2"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    cleanup
}
trap cleanup2 EXIT
PU=http://127.0.0.1:$pport
for _ in $(seq 1 50); do curl -s -o /dev/null "$PU/v1/health" && break; sleep 0.1; done
"$P" push --server "$PU" --token "$PUBT" --quiet "$T/base.pemn" "$T/more.pemn" || exit 1
LINK=http://127.0.0.1:$rport
pull() { # delta|full: prints "seconds bytes delta"
    cp "$T/base.pemn" "$T/dev.pemn"
    local extra=() t0 t1 js
    [ "$1" = full ] && extra=(--no-delta)
    t0=$(now)
    js=$("$P" pull --server "$LINK" --trust "$T/k.pub" --no-cache --out "$T/dev.pemn" \
        --expand "$T/out.st" --json "${extra[@]}" fmnist:v2) || return 1
    t1=$(now)
    cmp -s "$T/out.st" "$T/more.f32.safetensors" || return 1
    cmp -s "$T/dev.pemn" "$T/more.pemn" || return 1
    awk -v a="$t0" -v b="$t1" -v r="$(jq -r .bytes_received <<<"$js")" \
        -v d="$(jq -r .delta <<<"$js")" 'BEGIN { printf "%.3f %s %s\n", b - a, r, d }'
}
f32() {
    local t0 t1
    t0=$(now)
    curl -sf -o "$T/dl" "http://127.0.0.1:$fport/more.f32.safetensors" || return 1
    t1=$(now)
    cmp -s "$T/dl" "$T/more.f32.safetensors" || return 1
    awk -v a="$t0" -v b="$t1" -v r="$(stat -c %s "$T/dl")" 'BEGIN { printf "%.3f %s -\n", b - a, r }'
}
cold=$(pull delta) || exit 1
echo "through pemnd over a paced $RATE B/s relay: pemn pull --expand (median of $REPS; the"
echo "  first delta request, which also computed and stored the delta, took $(cut -d' ' -f1 <<<"$cold") s):"
printf '%-46s %12s %7s %10s %12s\n' "" "bytes moved" "delta" "seconds" "vs float32"
tf=
for m in f32 full delta; do
    rs=()
    for _ in $(seq 1 "$REPS"); do
        if [ "$m" = f32 ]; then rs+=("$(f32)") || exit 1; else rs+=("$(pull "$m")") || exit 1; fi
    done
    t=$(printf '%s\n' "${rs[@]}" | cut -d' ' -f1 | median)
    [ -z "$tf" ] && tf=$t
    case $m in
    f32) l="float32 safetensors (curl)" ;;
    full) l="pemn pull --no-delta (+verify+expand)" ;;
    delta) l="pemn pull, delta (+patch+verify+expand)" ;;
    esac
    printf '%-46s %12s %7s %10s %11.1fx\n' "$l" "$(cut -d' ' -f2 <<<"${rs[0]}")" \
        "$(cut -d' ' -f3 <<<"${rs[0]}")" "$t" "$(awk -v a="$tf" -v b="$t" 'BEGIN { print a / b }')"
done
curl -s "$PU/metrics" | grep -E '^pemnd_(deltas_computed|delta_bytes_saved)_total'
