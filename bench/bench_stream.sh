#!/usr/bin/env bash
# Streaming expansion (docs/BENCHMARKS.md, "Entropy-coded masks and deltas (issue 12)"):
# `pemn expand --trust` of packages whose float32 network is 1 GiB and 4 GiB (seeded
# prototype, density-0.5 masks: 32 MiB and 128 MiB packages, made by bench_stream), peak
# RSS and wall time (/usr/bin/time), against `cp` of the expanded file on the same
# filesystem, and `cp` + `sync FILE` (pemn expand fsyncs its output before renaming it;
# plain cp does not). RSS: the largest of the runs. Targets: RSS <= 64 MiB whatever the size; time <= 1.2x cp.
# Each measurement is the median of REPS (3) runs (the shared machine's disk is noisy); the
# CPU seconds (user + sys) of expand and cp are the steadier comparison on a busy machine.
#   env: SIZES="1 4" (GiB), REPS, DIR (default $TMPDIR or /tmp; ~3x the largest size free)
set -u
BUILD=${BUILD:-build/release}
ROOT=${PEMN_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
P=$ROOT/$BUILD/bin/pemn
GEN=$ROOT/$BUILD/bench/bench_stream
SIZES=${SIZES:-1 4}
REPS=${REPS:-3}
[ -x "$P" ] && [ -x "$GEN" ] || { echo "bench_stream: build first (make bench)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_stream: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }
T=$(mktemp -d "${DIR:-${TMPDIR:-/tmp}}/pemn-bench-stream.XXXXXX")
trap 'rm -rf "$T"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg); fs: $(df -T "$T" | awk 'NR==2 { print $2 }')"
"$P" keygen --out "$T/k" >/dev/null || exit 1
tm() { /usr/bin/time -f "%e %M %U %S" -o "$T/tm" "$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; return 1; }; cat "$T/tm"; }
printf '%-8s %12s %12s %10s %10s %12s %10s %10s %10s %12s %10s\n' float32 package "expand RSS" \
    "expand s" "cp s" "cp+sync s" "cp RSS" "/cp" "/cp+sync" "expand CPU s" "cp CPU s"
for g in $SIZES; do
    "$GEN" "$T/k.key" "$g" "$T/m.pemn" || exit 1
    sync
    med() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
    E=() R=() C=() CR=() S=() EC=() CC=()
    for _ in $(seq 1 "$REPS"); do
        read -r es er eu esy < <(tm "$P" expand "$T/m.pemn" --out "$T/m.safetensors" --trust "$T/k.pub") || exit 1
        read -r cs cr cu csy < <(tm cp "$T/m.safetensors" "$T/copy1") || exit 1
        EC+=("$(awk -v a="$eu" -v b="$esy" 'BEGIN { print a + b }')")
        CC+=("$(awk -v a="$cu" -v b="$csy" 'BEGIN { print a + b }')")
        rm -f "$T/copy1"
        read -r ss _ < <(tm sh -c "cp '$T/m.safetensors' '$T/copy2' && sync '$T/copy2'") || exit 1
        rm -f "$T/copy2"
        E+=("$es") R+=("$er") C+=("$cs") CR+=("$cr") S+=("$ss")
    done
    es=$(printf '%s\n' "${E[@]}" | med) er=$(printf '%s\n' "${R[@]}" | sort -g | tail -1)
    cs=$(printf '%s\n' "${C[@]}" | med) cr=$(printf '%s\n' "${CR[@]}" | sort -g | tail -1)
    ss=$(printf '%s\n' "${S[@]}" | med)
    ec=$(printf '%s\n' "${EC[@]}" | med) cc=$(printf '%s\n' "${CC[@]}" | med)
    printf '%-8s %12s %9.1f MiB %10s %10s %12s %6.1f MiB %9.2fx %9.2fx %12s %10s\n' "${g} GiB" \
        "$(stat -c %s "$T/m.pemn")" "$(awk -v k="$er" 'BEGIN { print k / 1024 }')" "$es" "$cs" \
        "$ss" "$(awk -v k="$cr" 'BEGIN { print k / 1024 }')" \
        "$(awk -v a="$es" -v b="$cs" 'BEGIN { print a / b }')" \
        "$(awk -v a="$es" -v b="$ss" 'BEGIN { print a / b }')" "$ec" "$cc"
    rm -f "$T/m.pemn" "$T/m.safetensors"
done
