#!/usr/bin/env bash
# `pemn push` / `pemn pull` with oci:// references: against Debian's docker-registry (no auth),
# against pemnd's /v2/ (Basic with a token, from the environment or a credentials file), and
# through a registry with a Bearer token service; resume after cut connections; a tampered
# layer in the registry is refused and nothing is installed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_oci.sh"

D=$T_TMP/ocic
K=$D/k
mkdir -p "$K"
P=$PEMN_BIN
"$PEMN_MKPKG" keygen "$K/alice" && "$PEMN_MKPKG" keygen "$K/mallory" || { fail keygen; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 3000000 "$K/net-1.pemn" 1
"$PEMN_MKPKG" pack "$K/alice.key" net 2.0.0 2 200000 "$K/net-2.pemn" 2
"$PEMN_MKPKG" pack "$K/mallory.key" net 6.6.6 6 20000 "$K/evil.pemn" 3
"$PEMN_MKPKG" pack "$K/alice.key" net 2.5.0 3 50000 "$K/net-t.pemn" 4
registry_start "$D/reg" || { fail "docker-registry starts"; exit 1; }
R=oci://$REG_HOST
unset PEMN_TOKEN PEMN_OCI_USERNAME PEMN_OCI_PASSWORD PEMN_OCI_CREDENTIALS PEMN_TRUST

# ---- docker-registry, no auth ----------------------------------------------------------------
check "push to docker-registry (chunked)" "$P" push --plain-http --chunk-size 1000000 -q \
    "$K/net-1.pemn" "$R/models/net"
check "the default tag is the package's version" bash -c \
    "curl -sf http://$REG_HOST/v2/models/net/tags/list | grep -q '\"1.0.0\"'"
J=$("$P" push --plain-http --json "$K/net-1.pemn" "$R/models/net:stable")
check_eq "re-push under another tag skips the package blob" false "$(jq -r .uploaded <<<"$J")"
check "pull from docker-registry" "$P" pull --plain-http -q --trust "$K/alice.pub" \
    -o "$D/a.pemn" "$R/models/net:stable"
check "pulled bytes are the package" cmp -s "$K/net-1.pemn" "$D/a.pemn"
MD=$(jq -r .manifest_digest <<<"$J")
check "pull by digest" "$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/b.pemn" \
    "$R/models/net@$MD"
check "pemn verify on what arrived" "$P" verify "$D/b.pemn" --trust "$K/alice.pub"
BAD=sha256:$(printf '%064d' 1)
"$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/c.pemn" "$R/models/net@$BAD" 2>/dev/null
check_eq "pull of an unknown digest: exit 6 (not found)" 6 $?
"$P" pull --plain-http -q --trust "$K/mallory.pub" -o "$D/u.pemn" "$R/models/net:stable" 2>/dev/null
check_eq "pull with the wrong trusted key: exit 5 (untrusted)" 5 $?
check "... and nothing installed" test ! -e "$D/u.pemn"
check "a signer's package pushes anywhere: the registry does not check" "$P" push --plain-http -q \
    "$K/evil.pemn" "$R/models/net:evil"
"$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/e.pemn" "$R/models/net:evil" 2>/dev/null
check_eq "... but pull refuses an untrusted signer: exit 5" 5 $?
"$P" pull --plain-http -q -o "$D/x.pemn" "$R/models/net:stable" 2>/dev/null
check_eq "pull without --trust: usage error" 2 $?
check "pull trusting the keys of PEMN_TRUST (a colon list)" env \
    PEMN_TRUST="$K/mallory.pub:$K/alice.pub" "$P" pull --plain-http -q -o "$D/tk.pemn" \
    "$R/models/net:stable"
check "... installs the package" cmp -s "$K/net-1.pemn" "$D/tk.pemn"
env PEMN_TRUST="$D/no-such.pub" "$P" pull --plain-http -q -o "$D/t2.pemn" \
    "$R/models/net:stable" 2>"$D/t2.err"
check_eq "a missing PEMN_TRUST key: exit 6 (not found)" 6 $?
check "... named in the message, nothing installed" bash -c \
    "grep -q 'no-such.pub' '$D/t2.err' && test ! -e '$D/t2.pemn'"
"$P" pull --plain-http -q --trust "$K/alice.pub" "oci://$REG_HOST/Models/Net" 2>/dev/null
check_eq "upper-case repository: usage error" 2 $?
"$P" push --plain-http -q --token x "$K/net-1.pemn" "$R/models/net" 2>/dev/null
check_eq "credentials on the command line are refused" 2 $?
"$P" pull --trust "$K/alice.pub" -q -o "$D/t.pemn" "$R/models/net:stable" 2>/dev/null
check_eq "https against a plain-http registry fails as a network error" 7 $?

# ---- tampered layer -----------------------------------------------------------------------------
"$P" push --plain-http -q "$K/net-t.pemn" "$R/models/tamper:v2"
"$P" push --plain-http -q "$K/net-2.pemn" "$R/models/plain:v2"
LD=$(sha256sum "$K/net-t.pemn" | cut -d' ' -f1)
BLOB=$D/reg/storage/docker/registry/v2/blobs/sha256/${LD:0:2}/$LD/data
check "the layer is in the registry's storage" test -f "$BLOB"
printf '\x42' | dd of="$BLOB" bs=1 seek=5000 conv=notrunc status=none
"$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/t.pemn" "$R/models/tamper:v2" 2>"$D/t.err"
check_eq "a tampered layer is refused: exit 8 (digest)" 8 $?
check "... nothing installed, no .part kept" bash -c "[ ! -e '$D/t.pemn' ] && [ ! -e '$D/t.pemn.part' ]"

# ---- resume after cut connections -------------------------------------------------------------
proxy_start "$D/px" "$REG_HOST" --cut-get-after 100000 --cut-patch || { fail "proxy starts"; exit 1; }
J=$("$P" pull --plain-http --json --trust "$K/alice.pub" -o "$D/r.pemn" "oci://$PROXY_HOST/models/net:1.0.0")
check "pull through a cut connection succeeds" cmp -s "$K/net-1.pemn" "$D/r.pemn"
check "... resuming with Range (resumes >= 1)" test "$(jq -r .resumes <<<"$J")" -ge 1
check "... receiving the bytes about once" test "$(jq -r .bytes_received <<<"$J")" -lt 3200000
"$PEMN_MKPKG" pack "$K/alice.key" cut 1 1 2000000 "$K/cut.pemn" 5
J=$("$P" push --plain-http --json --chunk-size 500000 "$K/cut.pemn" "oci://$PROXY_HOST/models/cut:v1")
check_eq "push through a cut chunk succeeds, uploading" true "$(jq -r .uploaded <<<"$J")"
check "... after a new upload session (docker-registry cannot resume a lost state)" \
    test "$(jq -r '.upload_resumes + .upload_restarts' <<<"$J")" -ge 1
check "... and the registry has the right bytes" "$P" pull --plain-http -q --trust "$K/alice.pub" \
    -o "$D/cut.pemn" "$R/models/cut:v1"

# ---- blobs redirected to another host ---------------------------------------------------------
proxy_start "$D/pr" "$REG_HOST" --redirect-blobs || { fail "redirecting proxy starts"; exit 1; }
check "pull follows a blob redirect to another host" "$P" pull --plain-http -q --no-cache \
    --trust "$K/alice.pub" -o "$D/rd.pemn" "oci://$PROXY_HOST/models/net:stable"
check "... bytes identical" cmp -s "$K/net-1.pemn" "$D/rd.pemn"

# ---- Bearer token service ---------------------------------------------------------------------
proxy_start "$D/pb" "$REG_HOST" --bearer "bob:s3cret" || { fail "token proxy starts"; exit 1; }
B=oci://$PROXY_HOST
printf 'bob:s3cret\n' >"$D/creds"
chmod 600 "$D/creds"
check "Bearer: push with a credentials file" "$P" push --plain-http -q --credentials "$D/creds" \
    "$K/net-2.pemn" "$B/models/bearer:v2"
check "Bearer: pull with PEMN_OCI_USERNAME/PASSWORD" env PEMN_OCI_USERNAME=bob \
    PEMN_OCI_PASSWORD=s3cret "$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/br.pemn" \
    "$B/models/bearer:v2"
check "Bearer: bytes identical" cmp -s "$K/net-2.pemn" "$D/br.pemn"
env PEMN_OCI_USERNAME=bob PEMN_OCI_PASSWORD=wrong "$P" pull --plain-http -q \
    --trust "$K/alice.pub" -o "$D/bw.pemn" "$B/models/bearer:v2" 2>/dev/null
check_eq "Bearer: wrong password: exit 10 (auth)" 10 $?
"$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/bn.pemn" "$B/models/bearer:v2" 2>/dev/null
check_eq "Bearer: no credentials: exit 10" 10 $?

# ---- pemnd /v2 with auth ------------------------------------------------------------------------
pemnd_start "$D/srv" || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
READ=$(pemnd_token read reader)
S=oci://127.0.0.1:$PEMND_PORT
PEMN_TOKEN=$PUB "$P" push --plain-http -q "$K/net-2.pemn" "$S/net" 2>/dev/null
check_eq "pemnd: push with \$PEMN_TOKEN as the password" 0 $?
check_eq "pemnd: it is a version" 200 "$(http_status GET "$PEMND_URL/v1/models/net/versions/2.0.0")"
check_eq "pemnd: the manifest pemn pushed is the one pemnd would generate" \
    "$(curl -s -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$REG_HOST/v2/models/plain/manifests/v2" | sha256sum)" \
    "$(curl -s "$PEMND_URL/v2/net/manifests/2.0.0" | sha256sum)"
PEMN_OCI_USERNAME=r PEMN_OCI_PASSWORD=$READ "$P" push --plain-http -q "$K/net-1.pemn" "$S/net" 2>/dev/null
check_eq "pemnd: a read token cannot push: exit 10" 10 $?
"$P" push --plain-http -q "$K/net-1.pemn" "$S/net" 2>/dev/null
check_eq "pemnd: no credentials: exit 10" 10 $?
PEMN_TOKEN=$PUB "$P" push --plain-http -q "$K/evil.pemn" "$S/net" 2>"$D/evil.err"
check_eq "pemnd: an untrusted package is refused: exit 5" 5 $?
check "pemnd: the refusal says why" grep -q "not trusted" "$D/evil.err"
PEMN_TOKEN=$PUB "$P" push --plain-http -q "$K/net-1.pemn" "$S/net" 2>/dev/null
check_eq "pemnd: release not newer: exit 9" 9 $?
check "pemnd: anonymous pull (reads open)" "$P" pull --plain-http -q --trust "$K/alice.pub" \
    -o "$D/s.pemn" "$S/net:2.0.0"
check "pemnd: pulled bytes" cmp -s "$K/net-2.pemn" "$D/s.pemn"
check "pemnd: pull 'latest'" "$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/l.pemn" "$S/net"
proxy_start "$D/pp" "127.0.0.1:$PEMND_PORT" --cut-patch --cut-get-after 30000 || fail "proxy to pemnd"
"$PEMN_MKPKG" pack "$K/alice.key" net 3.0.0 3 2000000 "$K/net-3.pemn" 6
J=$(PEMN_TOKEN=$PUB "$P" push --plain-http --json --chunk-size 400000 "$K/net-3.pemn" \
    "oci://$PROXY_HOST/net")
check_eq "pemnd: push through a lost chunk answer resumes from pemnd's offset" "1 0" \
    "$(jq -r '"\(.upload_resumes) \(.upload_restarts)"' <<<"$J")"
J=$("$P" pull --plain-http --json --trust "$K/alice.pub" -o "$D/p3.pemn" "oci://$PROXY_HOST/net:3.0.0")
check "pemnd: pull through a cut download resumes" test "$(jq -r .resumes <<<"$J")" -ge 1
check "pemnd: ... bytes identical" cmp -s "$K/net-3.pemn" "$D/p3.pemn"
pemnd_stop
pemnd_start_on "$D/srv" "$PEMND_PORT" --read-token-required true || { fail "restart"; exit 1; }
"$P" pull --plain-http -q --trust "$K/alice.pub" -o "$D/s2.pemn" "$S/net:2.0.0" 2>/dev/null
check_eq "pemnd reads closed: anonymous pull exit 10" 10 $?
printf 'reader:%s\n' "$READ" >"$D/rcreds"
check "pemnd reads closed: pull with a read token from a file" "$P" pull --plain-http -q \
    --credentials "$D/rcreds" --trust "$K/alice.pub" -o "$D/s3.pemn" "$S/net:2.0.0"
t_done
