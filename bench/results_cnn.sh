#!/usr/bin/env bash
# The CNN row group of docs/RESULTS.md (run by `make results` after bench/results.sh).
#
# Trains examples/fmnist_cnn.py (a Conv-4 style CNN, PyTorch, pemn.torch layers) on
# Fashion-MNIST: dense-trained weights, and PEMN with RP 1e-3, MP and mask (full random
# weights per layer), each over $SEEDS; packs each model (PEMN ones with their 32-byte
# seed), pushes it to a pemnd started on a free 127.0.0.1 port, pulls it back, evaluates
# the pulled package through pemn.load and requires the identical predictions. Reports go
# to $OUT (default build/results-cnn); a run whose report exists is not re-run. The table
# is written between the "cnn" markers of docs/RESULTS.md.
#   SEEDS="1 2 3"  EPOCHS=1  THREADS=1 (torch threads)  TRAIN_LIMIT= (all 60000)
set -u
BUILD=${BUILD:-build/release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
export BUILD PEMN_ROOT=$ROOT
. tests/integration/lib.sh
OUT=${OUT:-$ROOT/build/results-cnn}
SEEDS=${SEEDS:-1 2 3}
EPOCHS=${EPOCHS:-1}
THREADS=${THREADS:-1}
TRAIN_LIMIT=${TRAIN_LIMIT:-}
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -f "$OUT/cnn.key" ] || "$PEMN_BIN" keygen --out "$OUT/cnn" >/dev/null || exit 1

pemnd_start "$T_TMP/srv" || { echo "results_cnn: pemnd did not start" >&2; exit 1; }
pemnd_admin key add "$OUT/cnn.pub" --name cnn >/dev/null || exit 1
TOKEN=$(pemnd_token publish cnn)

configs=("dense|--mode dense" "rp|--mode mask --strategy rp --ratio 1e-3"
    "mp|--mode mask --strategy mp" "mask|--mode mask --strategy mask")
rc=0
for seed in $SEEDS; do
    for c in "${configs[@]}"; do
        id=${c%%|*}
        args=${c#*|}
        rep="$OUT/$id-s$seed.json"
        [ -s "$rep" ] && continue
        echo "results_cnn: $id seed $seed" >&2
        # shellcheck disable=SC2086
        if ! $PY examples/fmnist_cnn.py $args --seed "$seed" --epochs "$EPOCHS" \
            --threads "$THREADS" ${TRAIN_LIMIT:+--train-limit "$TRAIN_LIMIT"} \
            --key "$OUT/cnn.key" --trust "$OUT/cnn.pub" --out "$OUT/$id-s$seed.pemn" \
            --name "fmnist-cnn-$id-s$seed" --version 1.0 \
            --server "$PEMND_URL" --token "$TOKEN" --report "$rep.tmp" --quiet; then
            echo "results_cnn: $id seed $seed FAILED (package accuracy differs?)" >&2
            rc=1
        fi
        [ -s "$rep.tmp" ] && mv "$rep.tmp" "$rep"
    done
done

$PY - "$OUT" "$ROOT/docs/RESULTS.md" <<'PY' || rc=1
import glob, json, os, statistics, sys
out, doc = sys.argv[1], sys.argv[2]
rows = [("dense", "dense-trained weights (baseline)"), ("rp", "PEMN RP 1e-3 (seeded)"),
        ("mp", "PEMN MP (seeded)"), ("mask", "PEMN mask: full random weights (seeded)")]
lines = ["| configuration | prototype values | test accuracy % (seeds) | package bytes | "
         "float32 bytes | float32 / package | training s / run | package = PyTorch |",
         "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
for key, label in rows:
    reps = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, key + "-s*.json")))]
    if not reps:
        continue
    acc = [100 * r["accuracy"] for r in reps]
    m = statistics.mean(acc)
    sd = statistics.pstdev(acc) if len(acc) > 1 else 0.0
    pv = "%d (trained)" % 0 if key == "dense" else " + ".join(
        str(p["d_v"]) for p in reps[0]["protos"])
    if key == "dense":
        pv = "— (all weights trained)"
    size = statistics.mean(r["package_bytes"] for r in reps)
    f32 = reps[0]["f32_bytes"]
    same = all(r["identical_predictions"] and r["accuracy"] == r["package_accuracy"]
               for r in reps)
    lines.append("| %s | %s | %.2f ± %.2f (%d: %.2f–%.2f) | %d | %d | %.1fx | %.0f | %s |" % (
        label, pv, m, sd, len(acc), min(acc), max(acc), round(size), f32, f32 / size,
        statistics.mean(r["train_seconds"] for r in reps),
        "identical (%d/%d)" % (len(reps), len(reps)) if same else "DIFFERS"))
r0 = json.load(open(glob.glob(os.path.join(out, "*-s*.json"))[0]))
lines.append("")
lines.append("%d epoch(s) on %d training samples, %d test samples; pushed to pemnd, pulled, "
             "evaluated through pemn.load. Prototype values: the d_v of each seeded prototype "
             "as the packer recorded it (the shortest period of the layer's weights, so a "
             "layer whose last values repeat its first ones records a little less than its "
             "size); stored: 32 bytes of seed each." % (r0["epochs"], r0["train_samples"],
                                                        r0["test_samples"]))
table = "\n".join(lines)
print(table)
text = open(doc).read()
b, e = "<!-- cnn:begin -->", "<!-- cnn:end -->"
if b in text and e in text:
    text = text[:text.index(b) + len(b)] + "\n" + table + "\n" + text[text.index(e):]
    open(doc, "w").write(text)
PY
exit $rc
