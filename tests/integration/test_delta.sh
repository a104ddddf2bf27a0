#!/usr/bin/env bash
# Issue 12 end to end (tiny: 800 Fashion-MNIST samples): pemn train --checkpoint, a warm
# start with --init-from, pemn diff / pemn patch (byte-exact, verified, every refusal), the
# optimizer tensors skipped by pemn pack, and --mask-encoding bits|auto.
source "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    fail "fashion-mnist installed" "run deploy/install-deps.sh"
    exit 1
fi
P=$PEMN_BIN
T=$T_TMP
"$P" keygen --out "$T/k" >/dev/null
"$P" keygen --out "$T/other" >/dev/null
TINY=(--data "$DATA" --train-limit 800 --test-limit 500 --batch 32 --quiet --key "$T/k.key"
    --name fm)
first_loss() { sed -n 's/.*loss \([0-9.]*\) -> .*/\1/p'; }
last_loss() { sed -n 's/.*loss [0-9.]* -> \([0-9.]*\),.*/\1/p'; }

out=$("$P" train --mode mask --density 0.3 --epochs 3 "${TINY[@]}" --version v1 --release 1 \
    --out "$T/v1.pemn" --checkpoint "$T/v1.st" 2>&1)
check_eq "train with --checkpoint exits 0" 0 "$?"
base_last=$(echo "$out" | last_loss)
out=$("$P" train --init-from "$T/v1.st" --epochs 1 --lr 0.01 "${TINY[@]}" --version v2 \
    --release 2 --out "$T/v2.pemn" --checkpoint "$T/v2.st" 2>&1)
check_eq "train --init-from exits 0" 0 "$?"
warm_first=$(echo "$out" | first_loss)
check "warm start continues: first loss $warm_first near the base's last $base_last" \
    awk -v a="$warm_first" -v b="$base_last" 'BEGIN { exit !(a < 1.5 * b + 0.05) }'
check "warm start keeps the density (k 0.3 in the package)" \
    sh -c "'$P' inspect '$T/v2.pemn' | grep -q 'density.*0.3'"

"$P" train --init-from "$T/v1.st" --density 0.5 "${TINY[@]}" --version x >/dev/null 2>&1
check_eq "--init-from with --density: usage error (exit 2)" 2 "$?"
"$P" train --init-from "$T/nope.st" "${TINY[@]}" --version x >/dev/null 2>&1
check_eq "--init-from a missing file: exit 6" 6 "$?"
"$P" train --init-from "$T/v1.pemn" "${TINY[@]}" --version x >/dev/null 2>&1
rc=$?
check "--init-from a package (not a checkpoint) fails ($rc)" test "$rc" -ne 0
"$P" pack --in "$T/v2.st" --key "$T/k.key" --name fm --version p --release 1 --out "$T/p.pemn" >/dev/null
check_eq "pack of a checkpoint with optimizer state exits 0" 0 "$?"
check "pack skipped the _optim tensors" sh -c "'$P' inspect '$T/p.pemn' >'$T/p.txt' && ! grep -q _optim '$T/p.txt'"

# diff / patch
js=$("$P" diff "$T/v1.pemn" "$T/v2.pemn" --out "$T/u.pemnd" --json)
check_eq "diff exits 0" 0 "$?"
dsz=$(stat -c %s "$T/u.pemnd")
nsz=$(stat -c %s "$T/v2.pemn")
check "delta ($dsz B) is much smaller than the package ($nsz B)" test $((dsz * 3)) -lt "$nsz"
check "diff --json reports the flips" grep -q '"flips"' <<<"$js"
out=$("$P" patch "$T/v1.pemn" "$T/u.pemnd" --out "$T/v2b.pemn" --trust "$T/k.pub")
check_eq "patch exits 0" 0 "$?"
check "patch rebuilds NEW byte for byte" cmp -s "$T/v2.pemn" "$T/v2b.pemn"
check "the rebuilt package verifies" "$P" verify "$T/v2b.pemn" --trust "$T/k.pub" >/dev/null

"$P" patch "$T/v2.pemn" "$T/u.pemnd" --out "$T/bad1.pemn" --trust "$T/k.pub" 2>/dev/null
check_eq "patch on another base: exit 8" 8 "$?"
check "nothing written on failure" test ! -e "$T/bad1.pemn"
"$P" patch "$T/v1.pemn" "$T/u.pemnd" --out "$T/bad2.pemn" --trust "$T/other.pub" 2>/dev/null
check_eq "patch with an untrusted signer: exit 5" 5 "$?"
check "nothing written when untrusted" test ! -e "$T/bad2.pemn"
cp "$T/u.pemnd" "$T/c.pemnd"
# flip every bit of one byte (writing a fixed value left it intact when it already held it)
b=$(od -An -tu1 -j $((dsz - 10)) -N1 "$T/c.pemnd" | tr -d ' ')
printf "\\$(printf %03o $((b ^ 255)))" | dd of="$T/c.pemnd" bs=1 seek=$((dsz - 10)) conv=notrunc 2>/dev/null
check "the damaged delta differs from the good one" bash -c "! cmp -s '$T/u.pemnd' '$T/c.pemnd'"
"$P" patch "$T/v1.pemn" "$T/c.pemnd" --out "$T/bad3.pemn" --trust "$T/k.pub" 2>/dev/null
check_eq "patch with a damaged delta: exit 3" 3 "$?"
head -c 100 "$T/u.pemnd" >"$T/t.pemnd"
"$P" patch "$T/v1.pemn" "$T/t.pemnd" --out "$T/bad4.pemn" --trust "$T/k.pub" 2>/dev/null
check_eq "patch with a truncated delta: exit 3" 3 "$?"
"$P" diff "$T/v2.pemn" "$T/v1.pemn" --out "$T/back.pemnd" >/dev/null
"$P" patch "$T/v2.pemn" "$T/back.pemnd" --out "$T/bad5.pemn" --trust "$T/k.pub" 2>/dev/null
check_eq "patch to a lower release: rollback refused (exit 9)" 9 "$?"
"$P" patch "$T/v1.pemn" "$T/u.pemnd" --out "$T/x.pemn" 2>/dev/null
check_eq "patch without --trust: usage (exit 2)" 2 "$?"
"$P" diff "$T/v1.pemn" "$T/nope.pemn" --out "$T/y.pemnd" 2>/dev/null
check_eq "diff of a missing package: exit 6" 6 "$?"

# mask encodings
"$P" pack --in "$T/v1.st" --key "$T/k.key" --name fm --version e --release 1 --created 1700000000 --mask-encoding bits \
    --out "$T/bits.pemn" >/dev/null
"$P" pack --in "$T/v1.st" --key "$T/k.key" --name fm --version e --release 1 --created 1700000000 --out "$T/auto.pemn" >/dev/null
bs=$(stat -c %s "$T/bits.pemn")
as=$(stat -c %s "$T/auto.pemn")
check "k=0.3: entropy-coded masks ($as B) beat bit-packed ($bs B)" test "$as" -lt "$bs"
check "--mask-encoding bits writes format 1.0" sh -c "'$P' inspect '$T/bits.pemn' | grep -q '1\.0'"
"$P" expand "$T/bits.pemn" --out "$T/bits.st" --trust "$T/k.pub" >/dev/null
"$P" expand "$T/auto.pemn" --out "$T/auto.st" --trust "$T/k.pub" >/dev/null
# the tensor data (the headers differ: pemn.format and pemn.digest)
hl=$(od -An -tu8 -N8 "$T/bits.st" | tr -d ' ')
check "both encodings expand to the same weights" cmp -s -i $((8 + hl)) "$T/bits.st" "$T/auto.st"
"$P" pack --in "$T/v1.st" --key "$T/k.key" --name fm --version c --release 1 --mask-encoding best \
    --out "$T/z.pemn" >/dev/null 2>&1
check_eq "--mask-encoding with an unknown value: exit 2" 2 "$?"
exit $((T_FAILS > 0))
