#!/usr/bin/env bash
# Streaming expansion (docs/BENCHMARKS.md, "Entropy-coded masks and deltas (issue 12)"):
# `pemn expand --trust` of packages whose float32 network is 1 GiB and 4 GiB (seeded
# prototype; "bits": density-0.5 masks, bit-packed, 32 MiB per GiB; "coded": density-1/8
# masks, entropy-coded (mask encoding 2), ~17 MiB per GiB; made by bench_stream), peak RSS
# and wall time (/usr/bin/time), against copying the expanded file on the same filesystem.
#
# Fair comparison: `pemn expand` makes its output durable (fsync of the file before the
# atomic rename, then of the directory), so the peer is `cp SRC DST && sync DST` (cp, then
# fsync of the copy). Plain `cp` (no fsync) is also shown, for reference only. Before
# EVERY timed command the whole page cache is written back (`sync`, untimed), so no command
# pays for the dirty pages an earlier one left behind (a plain `cp` leaves GiBs of them).
# The source of cp is the expanded file, read from the page cache.
# RSS: the largest of the runs. Targets: RSS <= 64 MiB whatever the size; time <= 1.2x
# cp + sync. Each measurement is the median of REPS (3) runs; CPU seconds (user + sys) are
# the steadier comparison on a busy machine.
#   env: SIZES="1 4" (GiB), KINDS="bits coded", REPS, DIR (default $TMPDIR or /tmp; ~3x the
#   largest size free)
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
P=$ROOT/$BUILD/bin/pemn
GEN=$ROOT/$BUILD/bench/bench_stream
SIZES=${SIZES:-1 4}
KINDS=${KINDS:-bits coded}
REPS=${REPS:-3}
[ -x "$P" ] && [ -x "$GEN" ] || { echo "bench_stream: build first (make bench)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_stream: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
T=$(mktemp -d "${DIR:-${TMPDIR:-/tmp}}/pemn-bench-stream.XXXXXX")
trap 'rm -rf "$T"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg); fs: $(df -T "$T" | awk 'NR==2 { print $2 }')"
"$P" keygen --out "$T/k" >/dev/null || exit 1
# prints "wall maxrss_kib user sys"; the page cache is written back first (untimed)
tm() { sync; /usr/bin/time -f "%e %M %U %S" -o "$T/tm" "$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; return 1; }; cat "$T/tm"; }
med() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }
printf '%-6s %-6s %12s %11s %9s %10s %9s %11s %8s %10s %10s\n' masks float32 package \
    "expand RSS" "expand s" "cp+sync s" "cp s" "/cp+sync" "/cp" "expand CPU" "cp+sync CPU"
for kind in $KINDS; do
    for g in $SIZES; do
        if [ "$kind" = coded ]; then "$GEN" "$T/k.key" "$g" "$T/m.pemn" coded || exit 1
        else "$GEN" "$T/k.key" "$g" "$T/m.pemn" || exit 1; fi
        E=() R=() C=() S=() EC=() SC=()
        for _ in $(seq 1 "$REPS"); do
            rm -f "$T/m.safetensors"
            read -r es er eu esy < <(tm "$P" expand "$T/m.pemn" --out "$T/m.safetensors" --trust "$T/k.pub") || exit 1
            read -r ss _ su ssy < <(tm sh -c "cp '$T/m.safetensors' '$T/copy2' && sync '$T/copy2'") || exit 1
            rm -f "$T/copy2"
            read -r cs _ _ _ < <(tm cp "$T/m.safetensors" "$T/copy1") || exit 1
            rm -f "$T/copy1"
            E+=("$es") R+=("$er") C+=("$cs") S+=("$ss") EC+=("$(add "$eu" "$esy")") SC+=("$(add "$su" "$ssy")")
        done
        es=$(printf '%s\n' "${E[@]}" | med) er=$(printf '%s\n' "${R[@]}" | sort -g | tail -1)
        cs=$(printf '%s\n' "${C[@]}" | med) ss=$(printf '%s\n' "${S[@]}" | med)
        ec=$(printf '%s\n' "${EC[@]}" | med) sc=$(printf '%s\n' "${SC[@]}" | med)
        printf '%-6s %-6s %12s %7.1f MiB %9s %10s %9s %10.2fx %7.2fx %10s %10s\n' "$kind" "${g}GiB" \
            "$(stat -c %s "$T/m.pemn")" "$(awk -v k="$er" 'BEGIN { print k / 1024 }')" "$es" "$ss" \
            "$cs" "$(awk -v a="$es" -v b="$ss" 'BEGIN { print a / b }')" \
            "$(awk -v a="$es" -v b="$cs" 'BEGIN { print a / b }')" "$ec" "$sc"
        rm -f "$T/m.pemn" "$T/m.safetensors"
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
