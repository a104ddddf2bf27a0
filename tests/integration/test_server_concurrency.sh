#!/usr/bin/env bash
# Several clients pushing and many fetching at once: no errors, every fetched package
# verifies (its sha256 equals the digest the registry reports, and its bytes equal the file
# that was pushed).
source "$(dirname "$0")/lib.sh"

D=$T_TMP/conc
K=$D/pkgs
mkdir -p "$K" "$D/out"
"$PEMN_MKPKG" keygen "$K/alice" || { fail keygen; exit 1; }
PUSHERS=4
VERSIONS=6
for p in $(seq 1 $PUSHERS); do
    "$PEMN_MKPKG" many "$K/alice.key" "m$p" $VERSIONS $((4096 * p)) "$K" || { fail "packages"; exit 1; }
done
"$PEMN_MKPKG" pack "$K/alice.key" seed 1 1 200000 "$K/seed-1.pemn" 99

# --sendfile: cached packages go out by sendfile from their memfd (test_server_api covers
# the default, copying path)
# --upload-memory-max 8K: most pushes are spooled to a temporary file
pemnd_start "$D/run" --threads 2 --cache-size 1M --cache-item-max 64K --upload-memory-max 8K --sendfile || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" >/dev/null
TOK=$(pemnd_token publish ci)
U=$PEMND_URL
check_eq "seed package pushed" 201 "$(http_status PUT "$U/v1/models/seed/versions/1" \
    -H "Authorization: Bearer $TOK" --data-binary "@$K/seed-1.pemn")"

pusher() {
    local p=$1 v st errs=0
    for v in $(seq 1 $VERSIONS); do
        st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
            -H "Authorization: Bearer $TOK" --data-binary "@$K/m$p-$v.pemn" \
            "$U/v1/models/m$p/versions/$v")
        [ "$st" = 201 ] || { echo "push m$p/$v: $st"; errs=$((errs + 1)); }
    done
    echo "$errs" >"$D/out/push-$p.err"
}

fetcher() {
    local f=$1 i errs=0 n=0 model v st file want got
    for i in $(seq 1 25); do
        if [ $((i % 5)) = 0 ]; then model=seed v=1; else
            model=m$(((RANDOM % PUSHERS) + 1)) v=$(((RANDOM % VERSIONS) + 1))
        fi
        file=$D/out/f$f-$i
        st=$(curl -s -o "$file" -w '%{http_code}' --max-time 30 "$U/v1/models/$model/versions/$v/package")
        if [ "$st" = 404 ]; then continue; fi # not pushed yet
        n=$((n + 1))
        if [ "$st" != 200 ]; then
            echo "fetch $model/$v: $st"
            errs=$((errs + 1))
            continue
        fi
        want=$(curl -s --max-time 30 "$U/v1/models/$model/versions/$v" | jq -r .digest)
        got=sha256:$(sha256sum "$file" | cut -d' ' -f1)
        if [ "$want" != "$got" ] || ! cmp -s "$file" "$K/$model-$v.pemn"; then
            echo "fetch $model/$v: bytes do not verify"
            errs=$((errs + 1))
        fi
        rm -f "$file"
    done
    echo "$errs $n" >"$D/out/fetch-$f.err"
}

PIDS=()
for p in $(seq 1 $PUSHERS); do pusher "$p" & PIDS+=($!); done
for f in $(seq 1 8); do fetcher "$f" & PIDS+=($!); done
for pid in "${PIDS[@]}"; do wait "$pid"; done

perr=$(cat "$D"/out/push-*.err | awk '{s+=$1} END {print s+0}')
ferr=$(cat "$D"/out/fetch-*.err | awk '{s+=$1} END {print s+0}')
fetched=$(cat "$D"/out/fetch-*.err | awk '{s+=$2} END {print s+0}')
check_eq "concurrent pushes: no errors" 0 "$perr"
check_eq "concurrent fetches: no errors" 0 "$ferr"
check "concurrent fetches: some fetched while pushing ($fetched)" test "$fetched" -gt 20
check_eq "every version stored" $((PUSHERS * VERSIONS + 1)) \
    "$(curl -s "$U/v1/models" | jq '[.models[].versions] | add')"
# afterwards every package fetches and verifies, by version and by digest
bad=0
for p in $(seq 1 $PUSHERS); do
    for v in $(seq 1 $VERSIONS); do
        dg=$(curl -s "$U/v1/models/m$p/versions/$v" | jq -r .digest)
        curl -s -o "$D/x" "$U/v1/blobs/$dg"
        cmp -s "$D/x" "$K/m$p-$v.pemn" || bad=$((bad + 1))
        curl -s -o "$D/x" -r 100-4195 "$U/v1/blobs/$dg"
        cmp -s "$D/x" <(tail -c +101 "$K/m$p-$v.pemn" | head -c 4096) || bad=$((bad + 1))
    done
done
# the seed package is above cache_item_max: streamed from the database in chunks
dg=$(curl -s "$U/v1/models/seed/versions/1" | jq -r .digest)
curl -s -o "$D/x" -r 70000-199999 "$U/v1/blobs/$dg"
cmp -s "$D/x" <(tail -c +70001 "$K/seed-1.pemn" | head -c 130000) || bad=$((bad + 1))
curl -s -o "$D/x" -r -1000 "$U/v1/blobs/$dg"
cmp -s "$D/x" <(tail -c 1000 "$K/seed-1.pemn") || bad=$((bad + 1))
check_eq "all packages (and ranges of them, cached and streamed) verify after the storm" 0 "$bad"
check_eq "integrity_check ok" ok "$(db_integrity "$PEMND_DB")"
pemnd_stop
check_eq "clean shutdown" 0 "$?"
t_done
