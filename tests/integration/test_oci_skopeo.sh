#!/usr/bin/env bash
# pemnd's /v2/ with real OCI tools: skopeo copies PEMN artifacts pemnd -> docker-registry ->
# pemnd and from an OCI layout directory into pemnd, bytes identical, `pemn verify` passing on
# arrival; unsigned, untrusted and non-PEMN artifacts are refused with OCI errors.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_oci.sh"

D=$T_TMP/oci
K=$D/k
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" && "$PEMN_MKPKG" keygen "$K/mallory" || { fail keygen; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 65536 "$K/net-1.pemn" 1
"$PEMN_MKPKG" pack "$K/alice.key" net 2.0.0 2 30000 "$K/net-2.pemn" 2
"$PEMN_MKPKG" pack "$K/alice.key" net 3.0.0 3 30000 "$K/net-3.pemn" 3
"$PEMN_MKPKG" pack "$K/mallory.key" net 9.0.0 9 3000 "$K/net-mallory.pemn" 4
cp "$K/net-3.pemn" "$K/net-badsig.pemn"
SZ=$(stat -c %s "$K/net-badsig.pemn")
printf '\x55' | dd of="$K/net-badsig.pemn" bs=1 seek=$((SZ - 10)) conv=notrunc status=none

registry_start "$D/reg" || { fail "docker-registry starts"; cat "$D/reg/registry.log"; exit 1; }
pass "docker-registry starts on a free port"
pemnd_start "$D/a" || { fail "pemnd A starts"; exit 1; }
A_HOST=127.0.0.1:$PEMND_PORT A_DB=$PEMND_DB
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
A_PUB=$(pemnd_token publish ci)
curl -s -o /dev/null -X PUT -H "Authorization: Bearer $A_PUB" --data-binary "@$K/net-1.pemn" \
    "http://$A_HOST/v1/models/net/versions/1.0.0"
pemnd_start "$D/b" || { fail "pemnd B starts"; exit 1; }
B_HOST=127.0.0.1:$PEMND_PORT
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
B_PUB=$(pemnd_token publish ci)
B_READ=$(pemnd_token read reader)

# ---- pemnd A -> docker-registry -> pemnd B -------------------------------------------------
check "skopeo: pemnd -> docker-registry" sk_copy "docker://$A_HOST/net:1.0.0" \
    "docker://$REG_HOST/models/net:1.0.0"
check "skopeo: docker-registry -> pemnd (Basic, token as password)" sk_copy \
    "docker://$REG_HOST/models/net:1.0.0" "docker://$B_HOST/net:1.0.0" \
    --dest-creds "ci:$B_PUB"
MA=$(sk inspect --raw --tls-verify=false "docker://$A_HOST/net:1.0.0" | sha256sum)
MR=$(sk inspect --raw --tls-verify=false "docker://$REG_HOST/models/net:1.0.0" | sha256sum)
MB=$(sk inspect --raw --tls-verify=false "docker://$B_HOST/net:1.0.0" | sha256sum)
check_eq "manifest bytes identical: pemnd A = docker-registry" "$MA" "$MR"
check_eq "manifest bytes identical: docker-registry = pemnd B" "$MR" "$MB"
curl -s -o "$D/b.pemn" "http://$B_HOST/v1/models/net/versions/1.0.0/package"
check "the package arrived in pemnd B as version 1.0.0, byte for byte" cmp -s "$K/net-1.pemn" "$D/b.pemn"
check "pemn verify passes on what arrived" "$PEMN_BIN" verify "$D/b.pemn" --trust "$K/alice.pub"
check "skopeo: pemnd B -> OCI layout" sk_copy "docker://$B_HOST/net:1.0.0" "oci:$D/out:net"
LD=$(sha256sum "$K/net-1.pemn" | cut -d' ' -f1)
check "OCI layout holds the raw package as a layer" cmp -s "$K/net-1.pemn" "$D/out/blobs/sha256/$LD"
check "the manifest carries the PEMN artifact type" \
    grep -q '"artifactType":"application/vnd.pemn.package.v1"' "$D/out/blobs/sha256/$(jq -r '.manifests[0].digest' "$D/out/index.json" | cut -d: -f2)"

# ---- OCI layout -> pemnd ---------------------------------------------------------------------
MD=$(oci_layout "$D/lay2" stable "$K/net-2.pemn")
check "skopeo: OCI layout -> pemnd, tag 'stable'" sk_copy "oci:$D/lay2:stable" \
    "docker://$B_HOST/net:stable" --dest-creds "ci:$B_PUB"
V=$(curl -s "http://$B_HOST/v1/models/net/tags/stable" | jq -r .version)
check_eq "the OCI tag became a pemn tag on the package's version" 2.0.0 "$V"
check_eq "a manifest pushed through /v2 is stored exactly as sent" "$MD" \
    "$(curl -sI "http://$B_HOST/v2/net/manifests/stable" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')"
curl -s -o "$D/b2.pemn" "http://$B_HOST/v1/models/net/versions/2.0.0/package"
check "pemn verify passes on the layout's package" "$PEMN_BIN" verify "$D/b2.pemn" --trust "$K/alice.pub"

# ---- refusals ------------------------------------------------------------------------------
oci_layout "$D/lay-m" bad "$K/net-mallory.pemn" >/dev/null
OUT=$(sk_copy "oci:$D/lay-m:bad" "docker://$B_HOST/net:9.0.0" --dest-creds "ci:$B_PUB" 2>&1)
check "skopeo: an untrusted signer's package is refused" test $? -ne 0
echo "$OUT" | tail -1 >&2
check "the refusal is an OCI DENIED error naming the reason" \
    bash -c "grep -qi 'denied' <<<'$OUT' && grep -qi 'trusted' <<<'$OUT'"
check_eq "the untrusted package never became a version" 404 \
    "$(http_status GET "http://$B_HOST/v1/models/net/versions/9.0.0")"
oci_layout "$D/lay-s" bad "$K/net-badsig.pemn" >/dev/null
OUT=$(sk_copy "oci:$D/lay-s:bad" "docker://$B_HOST/net:3.0.0" --dest-creds "ci:$B_PUB" 2>&1)
check "skopeo: a package with a broken signature is refused" test $? -ne 0
check_eq "the broken package never became a version" 404 \
    "$(http_status GET "http://$B_HOST/v1/models/net/versions/3.0.0")"
mkdir -p "$D/lay-x"
head -c 4000 /dev/urandom >"$D/random.bin"
oci_layout "$D/lay-x" x "$D/random.bin" >/dev/null
OUT=$(sk_copy "oci:$D/lay-x:x" "docker://$B_HOST/net:junk" --dest-creds "ci:$B_PUB" 2>&1)
check "skopeo: bytes that are no package are refused (manifest invalid)" \
    bash -c "[ $? -ne 0 ] && grep -qi 'manifest invalid' <<<'$OUT'"
OUT=$(sk_copy "oci:$D/lay2:stable" "docker://$B_HOST/net:anon" 2>&1)
check "skopeo: a push without credentials is refused (401)" \
    bash -c "[ $? -ne 0 ] && grep -qi 'unauthorized\|authentication required' <<<'$OUT'"
OUT=$(sk_copy "oci:$D/lay2:stable" "docker://$B_HOST/net:ro" --dest-creds "r:$B_READ" 2>&1)
check "skopeo: a read token cannot push (denied)" \
    bash -c "[ $? -ne 0 ] && grep -qi 'denied' <<<'$OUT'"
OUT=$(sk_copy "oci:$D/lay2:stable" "docker://$B_HOST/net:bad" --dest-creds "ci:pemn_wrong" 2>&1)
check "skopeo: a wrong token is refused" test $? -ne 0
check "skopeo: anonymous pull works while reads are open" \
    sk_copy "docker://$B_HOST/net:stable" "oci:$D/anon:net"
t_done
