#!/usr/bin/env bash
# pemn train (tiny: 600 Fashion-MNIST samples, 2 epochs) -> pemn verify -> pemn eval, the
# safetensors checkpoint -> pemn eval / pemn pack -> pemn eval, and the error paths.
source "$(dirname "$0")/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
if [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: Fashion-MNIST missing in $DATA (deploy/install-deps.sh installs it)"
    fail "fashion-mnist installed" "run deploy/install-deps.sh"
    exit 1
fi
P=$PEMN_BIN
T=$T_TMP
have() { "$P" "$1" --help >/dev/null 2>&1; }

if have keygen; then
    check "keygen" "$P" keygen --out "$T/pub" >/dev/null
    "$P" keygen --out "$T/other" >/dev/null
else # key file format of include/pemn/key.h
    echo "note: pemn keygen not in this build; writing the key file directly"
    (umask 077 && printf 'pemn-ed25519-sec %s\n' \
        "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/pub.key")
fi

TINY=(--data "$DATA" --train-limit 600 --test-limit 1000 --epochs 2 --batch 32 --quiet)
out=$("$P" train --mode mask --strategy rp --ratio 1e-3 "${TINY[@]}" --key "$T/pub.key" \
    --name fmnist --version 0.1 --release 1 --out "$T/m.pemn" --checkpoint "$T/m.safetensors" \
    --report "$T/r.json" 2>"$T/train.err")
rc=$?
check_eq "train mask exits 0" 0 "$rc"
echo "$out"
check "train wrote the package" test -s "$T/m.pemn"
check "train wrote the checkpoint" test -s "$T/m.safetensors"
acc=$(echo "$out" | sed -n 's/^final: test accuracy \([0-9.]*\)%.*/\1/p')
check "accuracy beats chance clearly ($acc%)" awk -v a="$acc" 'BEGIN { exit !(a > 50) }'
ratio=$(echo "$out" | sed -n 's/.*bytes, \([0-9.]*\)x smaller.*/\1/p')
check "package ~30x smaller than float32 ($ratio x)" awk -v r="$ratio" 'BEGIN { exit !(r > 25) }'

if have verify && [ -f "$T/pub.pub" ]; then
    check "verify with the publisher key" "$P" verify "$T/m.pemn" --trust "$T/pub.pub"
fi
if [ -f "$T/pub.pub" ]; then
    ev=$("$P" eval "$T/m.pemn" --data "$DATA" --limit 1000 --trust "$T/pub.pub" 2>&1)
    check_eq "eval with trusted key exits 0" 0 "$?"
    check "eval reproduces the trainer's accuracy" grep -q "test accuracy $acc%" <<<"$ev"
    check "eval: identical to the recorded count" grep -q "identical" <<<"$ev"
    "$P" eval "$T/m.pemn" --data "$DATA" --limit 100 --trust "$T/other.pub" >/dev/null 2>&1
    check_eq "eval with another key: untrusted (exit 5)" 5 "$?"
fi
ev=$("$P" eval "$T/m.pemn" --data "$DATA" --limit 1000 --verbose 2>&1)
check "eval without --trust still checks, reports signer" grep -q "signature valid; signer" <<<"$ev"
check "verbose prints the confusion matrix" grep -q "Ankle boot" <<<"$ev"
ev=$("$P" eval "$T/m.safetensors" --data "$DATA" --limit 1000 2>&1)
check "eval of the checkpoint (weight+scores) gives the same accuracy" \
    grep -q "test accuracy $acc%" <<<"$ev"

if have expand; then
    check "expand the package to dense safetensors" \
        "$P" expand "$T/m.pemn" --out "$T/dense.safetensors"
    ev=$("$P" eval "$T/dense.safetensors" --data "$DATA" --limit 1000 2>&1)
    check "eval of the expanded (dense) safetensors gives the same accuracy" \
        grep -q "test accuracy $acc%" <<<"$ev"
fi
if have pack; then
    seed=$(head -c 8192 "$T/m.safetensors" | grep -ao '"pemn.seed":"[0-9a-f]*"' | cut -d'"' -f4)
    check "checkpoint records the prototype seed" test ${#seed} -eq 64
    if "$P" pack --in "$T/m.safetensors" --key "$T/pub.key" --name fmnist --version 0.2 \
        --release 2 --out "$T/packed.pemn" --density 0.5 --strategy rp --seed "$seed" \
        --generator signed >"$T/pack.out" 2>&1; then
        pass "pemn pack of the checkpoint with its seed"
        ev=$("$P" eval "$T/packed.pemn" --data "$DATA" --limit 1000 2>&1)
        check "packed checkpoint gives the same accuracy" grep -q "test accuracy $acc%" <<<"$ev"
    else
        fail "pemn pack of the checkpoint with its seed" "$(tail -3 "$T/pack.out")"
    fi
fi

# determinism: same seed, same everything -> same final line
out2=$("$P" train --mode mask "${TINY[@]}" 2>/dev/null | grep '^final: test')
check_eq "same seed, same result" "$(echo "$out" | grep '^final: test' | cut -d, -f1-3)" \
    "$(echo "$out2" | cut -d, -f1-3)"

out=$("$P" train --mode dense "${TINY[@]}" --bias --batchnorm --lr 0.05 \
    --key "$T/pub.key" --name fmnist-dense --version 0.1 --out "$T/d.pemn" 2>&1)
check_eq "train dense+bias+batchnorm exits 0" 0 "$?"
dacc=$(echo "$out" | sed -n 's/^final: test accuracy \([0-9.]*\)%.*/\1/p')
ev=$("$P" eval "$T/d.pemn" --data "$DATA" --limit 1000 2>&1)
check "dense package reproduces ($dacc%)" grep -q "test accuracy $dacc%" <<<"$ev"

# damage: a flipped byte in the package is refused
cp "$T/m.pemn" "$T/bad.pemn"
size=$(stat -c %s "$T/bad.pemn")
printf '\xff' | dd of="$T/bad.pemn" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
"$P" eval "$T/bad.pemn" --data "$DATA" --limit 10 >/dev/null 2>"$T/bad.err"
rc=$?
check "damaged package refused (exit $rc)" test "$rc" -eq 3 -o "$rc" -eq 4
# missing and damaged data
mkdir -p "$T/empty" "$T/damaged"
"$P" train --mode mask --data "$T/empty" --quiet >/dev/null 2>"$T/e.err"
check_eq "missing dataset: exit 6" 6 "$?"
check "missing dataset: file named" grep -q "train-images-idx3-ubyte" "$T/e.err"
head -c 5000 "$DATA/train-images-idx3-ubyte.gz" >"$T/damaged/train-images-idx3-ubyte.gz"
cp "$DATA/train-labels-idx1-ubyte.gz" "$T/damaged/"
"$P" train --mode mask --data "$T/damaged" --quiet >/dev/null 2>"$T/d.err"
check_eq "truncated dataset: exit 3 (corrupt)" 3 "$?"
check "truncated dataset: clear message" grep -qi "truncat\|damaged" "$T/d.err"
# usage errors
"$P" train --mode mask --arch 784-x-10 >/dev/null 2>&1
check_eq "bad --arch: usage (2)" 2 "$?"
"$P" train --mode sparse >/dev/null 2>&1
check_eq "bad --mode: usage (2)" 2 "$?"
"$P" train --mode mask --out "$T/x.pemn" >/dev/null 2>&1
check_eq "--out without --key: usage (2)" 2 "$?"
"$P" train --mode mask --data "$DATA" --train-limit 100 --quiet --arch 100-10 >/dev/null 2>"$T/a.err"
check_eq "architecture not matching the data: usage (2)" 2 "$?"
check "architecture mismatch explained" grep -q "784 inputs" "$T/a.err"
t_done
