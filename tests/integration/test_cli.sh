#!/usr/bin/env bash
# Integration test of the offline `pemn` commands: keygen, pack, inspect, verify, expand.
# Checkpoints come from the checkpoint tool in tests/unit/test_pack.c (tests/common/ckpt.h).
source "$(dirname "$0")/lib.sh"

P=$PEMN_BIN
TOOL=$PEMN_ROOT/$BUILD/tests/test_pack
D=$T_TMP
SEED=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

# run NAME EXPECTED_EXIT CMD...: stdout/stderr kept in $D/out, $D/err
run() {
    local name=$1 want=$2 rc
    shift 2
    "$@" >"$D/out" 2>"$D/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else
        fail "$name" "exit $rc, expected $want; stderr: $(head -c 300 "$D/err")"
    fi
}
# has NAME FILE PATTERN: the file contains the (extended regex) pattern
has() {
    if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1" "'$3' not in $(head -c 300 "$2")"; fi
}

[ -x "$P" ] || { fail "pemn binary" "missing $P"; exit 1; }
[ -x "$TOOL" ] || { fail "checkpoint tool" "missing $TOOL"; exit 1; }

# ---- help and usage ----------------------------------------------------------------------
for c in keygen pack inspect verify expand; do
    run "$c --help exits 0" 0 "$P" $c --help
    has "$c --help shows usage" "$D/out" "usage: pemn $c"
done
run "unknown command -> 2" 2 "$P" no-such-command
run "keygen without --out -> 2" 2 "$P" keygen
run "keygen unknown option -> 2" 2 "$P" keygen --out "$D/x" --bogus
run "pack without arguments -> 2" 2 "$P" pack
run "inspect without a file -> 2" 2 "$P" inspect
run "verify without --trust -> 2" 2 "$P" verify "$D/none.pemn"
run "expand without --out -> 2" 2 "$P" expand "$D/none.pemn"
has "usage errors point to --help" "$D/err" "pemn expand --help"

# ---- keygen ------------------------------------------------------------------------------
run "keygen a" 0 "$P" keygen --out "$D/a"
has "keygen prints the key id" "$D/out" "key id +[0-9a-f]{16}"
A_ID=$(awk '/key id/ {print $3}' "$D/out")
check_eq "secret key mode 0600" 600 "$(stat -c %a "$D/a.key")"
check "public key written" test -s "$D/a.pub"
run "keygen b --json" 0 "$P" keygen --out "$D/b" --json
B_ID=$(jq -r .key_id "$D/out")
check "keygen --json key id" test "${#B_ID}" -eq 16
cp "$D/a.key" "$D/a.key.orig"
run "keygen refuses to overwrite -> 11" 11 "$P" keygen --out "$D/a"
check "existing key untouched" cmp -s "$D/a.key" "$D/a.key.orig"

# ---- checkpoints -------------------------------------------------------------------------
for k in rp seeded one-layer mask not-tiled mp; do
    run "make checkpoint $k" 0 "$TOOL" make $k "$D/$k.safetensors"
done

# ---- pack --------------------------------------------------------------------------------
run "pack rp" 0 "$P" pack --in "$D/rp.safetensors" --key "$D/a.key" --name demo --version 1.0 \
    --release 1 --out "$D/rp.pemn" --meta task=test --meta owner=ci
has "pack prints the strategy" "$D/out" "^strategy +rp \(detected\)"
has "pack prints d_v" "$D/out" "d_v 37"
has "pack prints the layers" "$D/out" "fc2.weight .*masked \(mask\)"
has "pack prints the ratio" "$D/out" "smaller"
run "pack mp --json" 0 "$P" pack --in "$D/mp.safetensors" --key "$D/a.key" --name demo \
    --version 1.1 --release 2 --out "$D/mp.pemn" --json
check_eq "pack --json strategy" mp "$(jq -r .strategy "$D/out")"
check_eq "pack --json d_v" 1152 "$(jq -r '.protos[0].d_v' "$D/out")"
check_eq "pack --json package bytes" "$(stat -c %s "$D/mp.pemn")" "$(jq -r .package.bytes "$D/out")"
run "pack one-layer" 0 "$P" pack --in "$D/one-layer.safetensors" --key "$D/a.key" --name demo \
    --version 2 --release 3 --out "$D/one.pemn" --json
check_eq "one-layer detected" one-layer "$(jq -r .strategy "$D/out")"
check_eq "one-layer prototypes" "72 50 160" "$(jq -r '[.protos[].d_v] | join(" ")' "$D/out")"
run "pack seeded" 0 "$P" pack --in "$D/seeded.safetensors" --key "$D/a.key" --name demo \
    --version 3 --release 4 --out "$D/seeded.pemn" --seed $SEED --generator chacha20-uniform \
    --density 0.3 --json
check_eq "seeded prototype" "seeded 64" "$(jq -r '.protos[0] | "\(.kind) \(.d_v)"' "$D/out")"
check_eq "seeded scale recovered" 1.7 "$(jq -r '.layers[] | select(.name == "fc2.weight") | .scale' "$D/out" | cut -c1-3)"
pk_sol() { "$P" pack --in "$D/sol.safetensors" --key "$D/a.key" --name demo --version 9 \
    --release 9 --out "$D/x.pemn" "$@"; }
S1=404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f
S2=808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f
run "make checkpoint seeded-one-layer" 0 "$TOOL" make seeded-one-layer "$D/sol.safetensors"
run "pack one seed per shape" 0 "$P" pack --in "$D/sol.safetensors" --key "$D/a.key" \
    --name demo --version 3.1 --release 4 --out "$D/sol.pemn" --generator uniform \
    --seed $SEED --seed $S1 --seed $S2 --json
check_eq "seeds per shape -> one-layer" one-layer "$(jq -r .strategy "$D/out")"
check_eq "one seed per prototype" "$SEED $S1 $S2" "$(jq -r '[.protos[].seed] | join(" ")' "$D/out")"
check_eq "density from the checkpoint's metadata" 0.3 "$(jq -r .density "$D/out")"
run "pack --seeds-from-meta (pemn.protos)" 0 "$P" pack --in "$D/sol.safetensors" \
    --key "$D/a.key" --name demo --version 3.2 --release 4 --out "$D/solm.pemn" \
    --seeds-from-meta --json
check_eq "seeds from metadata" "$SEED $S1 $S2" "$(jq -r '[.protos[].seed] | join(" ")' "$D/out")"
run "pack --seeds-from-meta (pemn.seed)" 0 "$P" pack --in "$D/seeded.safetensors" \
    --key "$D/a.key" --name demo --version 3.3 --release 4 --out "$D/seededm.pemn" \
    --seeds-from-meta --json
check_eq "seed from metadata" "seeded $SEED" "$(jq -r '.protos[0] | "\(.kind) \(.seed)"' "$D/out")"
run "--seeds-from-meta without metadata -> 2" 2 "$P" pack --in "$D/rp.safetensors" \
    --key "$D/a.key" --name demo --version 3.3 --release 4 --out "$D/x.pemn" --seeds-from-meta
has "names the missing metadata" "$D/err" "pemn.generator"
run "--seeds-from-meta with --seed -> 2" 2 pk_sol --seeds-from-meta --seed $SEED
run "two seeds fit nothing -> 2" 2 "$P" pack --in "$D/sol.safetensors" --key "$D/a.key" \
    --name demo --version 3.1 --release 4 --out "$D/x.pemn" --generator uniform \
    --seed $SEED --seed $S1
run "pack mask strategy" 0 "$P" pack --in "$D/mask.safetensors" --key "$D/a.key" --name demo \
    --version 4 --release 5 --out "$D/mask.pemn" --strategy mask
run "pack dry run" 0 "$P" pack --in "$D/rp.safetensors" --dry-run --strategy mp
has "dry run detects" "$D/out" "^strategy +mp"

run "pack refuses a non-tiled layer -> 1" 1 "$P" pack --in "$D/not-tiled.safetensors" \
    --key "$D/a.key" --name demo --version 5 --release 6 --out "$D/nt.pemn"
has "refusal names the layer" "$D/err" "fc2.weight"
check "refusal writes nothing" test ! -e "$D/nt.pemn"
run "auto refuses the mask checkpoint" 1 "$P" pack --in "$D/mask.safetensors" --key "$D/a.key" \
    --name demo --version 5 --release 6 --out "$D/nt.pemn"
has "auto refusal suggests --strategy mask" "$D/err" "strategy mask"
run "pack wrong seed -> 1" 1 "$P" pack --in "$D/seeded.safetensors" --key "$D/a.key" \
    --name demo --version 5 --release 6 --out "$D/nt.pemn" --generator uniform \
    --seed 1f0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f

pk() { "$P" pack --in "$D/rp.safetensors" --key "$D/a.key" --name demo --version 9 --release 9 \
    --out "$D/x.pemn" "$@"; }
run "density 0 -> 2" 2 pk --density 0
run "density 1.5 -> 2" 2 pk --density 1.5
run "density text -> 2" 2 pk --density half
run "unknown strategy -> 2" 2 pk --strategy zz
run "seed without generator -> 2" 2 pk --seed $SEED
run "short seed -> 2" 2 pk --seed abcd --generator uniform
run "unknown generator -> 2" 2 pk --seed $SEED --generator nope
run "bad --meta -> 2" 2 pk --meta novalue
run "bad release -> 2" 2 pk --release -3
run "bad model name -> 2" 2 "$P" pack --in "$D/rp.safetensors" --key "$D/a.key" --name 'a b' \
    --version 1 --release 1 --out "$D/x.pemn"
run "missing checkpoint -> 6" 6 "$P" pack --in "$D/nope.safetensors" --key "$D/a.key" \
    --name demo --version 1 --release 1 --out "$D/x.pemn"
has "missing checkpoint named" "$D/err" "nope.safetensors"
run "missing key file -> 6" 6 pk --key "$D/nokey.key"
has "missing key named" "$D/err" "nokey.key"
printf 'garbage' >"$D/garbage.safetensors"
run "corrupt checkpoint -> 3" 3 "$P" pack --in "$D/garbage.safetensors" --key "$D/a.key" \
    --name demo --version 1 --release 1 --out "$D/x.pemn"

# ---- inspect -----------------------------------------------------------------------------
run "inspect --json" 0 "$P" inspect "$D/rp.pemn" --json
J=$D/out
check_eq "inspect name" demo "$(jq -r .name "$J")"
check_eq "inspect version" 1.0 "$(jq -r .version "$J")"
check_eq "inspect release" 1 "$(jq -r .release "$J")"
check_eq "inspect strategy" rp "$(jq -r .strategy "$J")"
check_eq "inspect density" 0.5 "$(jq -r .density "$J")"
check_eq "inspect signer" "$A_ID" "$(jq -r .signer "$J")"
check_eq "inspect meta" test "$(jq -r .meta.task "$J")"
check_eq "inspect checkpoint meta carried" tests/common/ckpt.c "$(jq -r .meta.source "$J")"
check_eq "inspect tensor count" 11 "$(jq -r '.tensors | length' "$J")"
check_eq "inspect file bytes" "$(stat -c %s "$D/rp.pemn")" "$(jq -r .sizes.file_bytes "$J")"
check_eq "inspect int64 tensor" I64 \
    "$(jq -r '.tensors[] | select(.name == "bn1.num_batches_tracked") | .dtype' "$J")"
check_eq "inspect kept" 576 "$(jq -r '.tensors[] | select(.name == "fc1.weight") | .kept' "$J")"
jqt() { jq -e "$@" >/dev/null; }
check "inspect ratio > 1" jqt '.sizes.ratio > 1' "$J"
check "inspect f32 size > file size" jqt '.sizes.f32_bytes > .sizes.file_bytes' "$J"
run "inspect text" 0 "$P" inspect "$D/rp.pemn"
has "inspect text shows float32 ratio" "$D/out" "^float32 .*smaller"
has "inspect text shows the signer" "$D/out" "signer +$A_ID"
run "inspect seeded" 0 "$P" inspect "$D/seeded.pemn" --json
check_eq "inspect seeded prototype" chacha20-uniform "$(jq -r '.protos[0].generator' "$D/out")"
check_eq "inspect seeded seed" $SEED "$(jq -r '.protos[0].seed' "$D/out")"
run "inspect missing file -> 6" 6 "$P" inspect "$D/nope.pemn"
has "inspect missing file named" "$D/err" "nope.pemn"
run "inspect garbage -> 3" 3 "$P" inspect "$D/garbage.safetensors"

# ---- verify ------------------------------------------------------------------------------
run "verify trusted" 0 "$P" verify "$D/rp.pemn" --trust "$D/a.pub"
has "verify names the signer" "$D/out" "$A_ID"
run "verify among several keys" 0 "$P" verify "$D/rp.pemn" --trust "$D/b.pub" --trust "$D/a.pub"
run "verify untrusted -> 5" 5 "$P" verify "$D/rp.pemn" --trust "$D/b.pub"
has "untrusted message" "$D/err" "untrusted"
run "verify --json untrusted" 5 "$P" verify "$D/rp.pemn" --trust "$D/b.pub" --json
check_eq "verify --json result" EUNTRUSTED "$(jq -r .result "$D/out")"
LEN=$(stat -c %s "$D/rp.pemn")
flip() { # flip FILE OFFSET: invert one byte in place
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
cp "$D/rp.pemn" "$D/badsig.pemn"
flip "$D/badsig.pemn" $((LEN - 10))
run "verify bad signature -> 4" 4 "$P" verify "$D/badsig.pemn" --trust "$D/a.pub"
has "bad signature message" "$D/err" "bad signature"
cp "$D/rp.pemn" "$D/corrupt.pemn"
flip "$D/corrupt.pemn" $((LEN - 300))
run "verify corrupt -> 3" 3 "$P" verify "$D/corrupt.pemn" --trust "$D/a.pub"
has "corrupt message" "$D/err" "corrupt"
head -c 100 "$D/rp.pemn" >"$D/trunc.pemn"
run "verify truncated -> 3" 3 "$P" verify "$D/trunc.pemn" --trust "$D/a.pub"
run "verify missing key file -> 6" 6 "$P" verify "$D/rp.pemn" --trust "$D/none.pub"
has "missing trust file named" "$D/err" "none.pub"
run "verify a secret key as trust -> 2" 2 "$P" verify "$D/rp.pemn" --trust "$D/a.key"

# ---- expand ------------------------------------------------------------------------------
for m in rp:rp:0.5 seeded:seeded:0.3 one-layer:one:0.5 mask:mask:0.5 mp:mp:0.5 sol:sol:0.3 sol:solm:0.3 seeded:seededm:0.5; do
    IFS=: read -r ck pkg k <<<"$m"
    run "expected expansion of $ck" 0 "$TOOL" expect "$D/$ck.safetensors" "$k" "$D/$ck.expect"
    run "expand $pkg (trusted)" 0 "$P" expand "$D/$pkg.pemn" --out "$D/$pkg.dense" --trust "$D/a.pub"
    run "expand $pkg is bit-exact" 0 "$TOOL" compare "$D/$ck.expect" "$D/$pkg.dense"
done
run "expand untrusted -> 5" 5 "$P" expand "$D/rp.pemn" --out "$D/u.dense" --trust "$D/b.pub"
check "untrusted expand writes nothing" test ! -e "$D/u.dense"
run "expand bad signature -> 4" 4 "$P" expand "$D/badsig.pemn" --out "$D/u.dense" --trust "$D/a.pub"
run "expand corrupt -> 3" 3 "$P" expand "$D/corrupt.pemn" --out "$D/u.dense" --trust "$D/a.pub"
check "refused expand writes nothing" test ! -e "$D/u.dense"
run "expand without --trust warns" 0 "$P" expand "$D/rp.pemn" --out "$D/w.dense"
has "unverified warning" "$D/err" "without verification"
run "unverified expand still exact" 0 "$TOOL" compare "$D/rp.expect" "$D/w.dense"
run "expand into a missing folder -> 1" 1 "$P" expand "$D/rp.pemn" --out "$D/no/such/x.st"

t_done
