#!/usr/bin/env bash
# Integration: the root of trust (docs/TRUST.md) end to end — `pemn root init/update/verify`
# (valid chains, an under-signed link, a wrong version, an expired root), co-signed packages
# (`pemn sign`) checked by `pemn verify --root`, old format 1.0 packages, and pemnd's copy of
# the chain (`pemnd root add`, GET /v1/root/...) with the server-side refusal of revoked or
# untrusted packages; `pemn pull --root`.
. "$(dirname "$0")/lib.sh"
D=$T_TMP
P=$PEMN_BIN
cd "$D" || exit 1
for k in r1 r2 r3 srv alice bob carol; do "$P" keygen --out "$k" >/dev/null; done
id() { # key id of BASE.pub: first 8 bytes of SHA-256(public key), hex
    /usr/bin/python3 -c 'import hashlib,sys; h=open(sys.argv[1]).read().split()[1]
print(hashlib.sha256(bytes.fromhex(h)).hexdigest()[:16])' "$1.pub"
}
BOB=$(id bob)
run() { # run NAME EXPECTED_EXIT CMD...: stdout in $D/out, stderr in $D/err
    local name=$1 want=$2 rc
    shift 2
    "$@" >"$D/out" 2>"$D/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else
        fail "$name" "exit $rc, expected $want; stderr: $(head -c 300 "$D/err")"
    fi
}
says() { if grep -Eq -- "$2" "$D/$3"; then pass "$1"; else fail "$1" "'$2' not in $3: $(head -c 300 "$D/$3")"; fi; }

# ---- pemn root init ------------------------------------------------------------------------
run "root --help" 0 "$P" root --help
says "help names init, update, verify" 'pemn root update' out
run "init needs --out" 2 "$P" root init --root-key r1.key
run "init: threshold above the keys" 2 "$P" root init --out x.json --root-key r1.key --threshold 2
run "init: bad pattern" 2 "$P" root init --out x.json --root-key r1.key --publisher 'alice.pub=a/b'
run "init: metadata key also a publisher is refused" 11 "$P" root init --out x.json \
    --root-key r1.key --metadata-key alice.pub --publisher alice.pub
check "nothing written after refusals" test ! -e x.json
run "init v1 (2 of 2 root keys)" 0 "$P" root init --out root1.json --root-key r1.key \
    --root-key r2.key --threshold 2 --metadata-key srv.pub --publisher 'alice.pub=mnist-*' \
    --publisher 'alice.pub=secure-*' --publisher bob.pub --model-threshold 'secure-*=2' \
    --expires 30
says "init prints the version" 'root version 1' out
run "init refuses to overwrite" 11 "$P" root init --out root1.json --root-key r1.key
run "verify v1" 0 "$P" root verify root1.json
says "verify lists the publisher pattern" 'mnist-\*' out
run "verify --json" 0 "$P" root verify --json root1.json
check_eq "verify --json version" 1 "$(jq -r .version out)"

# tampering: any byte of the signed content breaks the root signatures
sed 's/"mnist-\*"/"mnist-x"/' root1.json >tampered.json
run "tampered root: threshold not met" 5 "$P" root verify tampered.json
sed 's/"signatures"/"signaturez"/' root1.json >broken.json
run "malformed root: corrupt" 3 "$P" root verify broken.json
run "missing root file" 6 "$P" root verify nosuch.json

# ---- pemn root update ----------------------------------------------------------------------
run "update signed by 1 of 2: refused" 5 "$P" root update --in root1.json --out root2.json \
    --sign r1.key --revoke bob.pub
check "under-signed link not written" test ! -e root2.json
run "update v2 revokes bob (2 of 2)" 0 "$P" root update --in root1.json --out root2.json \
    --sign r1.key --sign r2.key --revoke "$BOB" --add-publisher carol.pub=other
says "v2 lists bob as revoked" "revoked $BOB" out
run "chain v1 -> v2 verifies" 0 "$P" root verify --previous root1.json root2.json
run "chain as a list verifies" 0 "$P" root verify root1.json root2.json
run "a root does not follow itself (wrong version)" 3 "$P" root verify root1.json root1.json
says "wrong version is explained" 'does not follow' err
# rotation: v3 replaces r2 by r3; it needs a threshold of v2's keys (r1, r2) and of its own
run "rotation signed by new keys only: refused" 5 "$P" root update --in root2.json \
    --out root3.json --sign r1.key --sign r3.key --add-root-key r3.pub --remove-root-key r2.pub
run "rotation v3 (old r1+r2, new r1+r3)" 0 "$P" root update --in root2.json --out root3.json \
    --sign r1.key --sign r2.key --sign r3.key --add-root-key r3.pub --remove-root-key r2.pub
run "chain v1 -> v2 -> v3" 0 "$P" root verify root1.json root2.json root3.json
run "skipping v2 is refused" 3 "$P" root verify --previous root1.json root3.json
# a v2 signed only by the keys it names itself (an attacker's own chain) is refused
run "attacker's v1" 0 "$P" root init --out evil1.json --root-key r3.key --publisher carol.pub
run "attacker's v2 (self-consistent)" 0 "$P" root update --in evil1.json --out evil2.json \
    --sign r3.key
run "v1 -> attacker's v2: refused" 5 "$P" root verify --previous root1.json evil2.json
says "under-signed link is explained" 'required signatures by version 1' err
run "expired root (--expires 0)" 0 "$P" root update --in root3.json --out root4.json \
    --sign r1.key --sign r3.key --expires 0
run "verify an expired root: 12" 12 "$P" root verify root1.json root2.json root3.json root4.json
run "expired in the past but checked --at before expiry" 0 "$P" root verify --at 1000 root4.json
run "--revoke a root key is refused" 2 "$P" root update --in root3.json --out r.json \
    --sign r1.key --sign r3.key --revoke r1.pub

# ---- packages: co-signatures and checks against the root -----------------------------------
"$PEMN_MKPKG" pack alice.key mnist-a v1 1 2000 a.pemn >/dev/null
"$PEMN_MKPKG" pack bob.key other v1 1 2000 b.pemn >/dev/null
"$PEMN_MKPKG" pack alice.key secure-x v1 1 2000 s.pemn >/dev/null
run "verify --root: alice may sign mnist-a" 0 "$P" verify a.pemn --root root1.json
run "verify --root --model other name: untrusted" 5 "$P" verify a.pemn --root root1.json \
    --model mnist-b
run "verify --root: bob may sign anything in v1" 0 "$P" verify b.pemn --root root1.json
run "verify --root: bob revoked in v2" 13 "$P" verify b.pemn --root root2.json
says "revocation is explained" 'revoked' err
run "verify --root --model: package of another model" 5 "$P" verify b.pemn --root root1.json --model x
run "verify --root: expired root refuses" 12 "$P" verify a.pemn --root root4.json
run "secure-x needs 2 signatures" 5 "$P" verify s.pemn --root root1.json
says "threshold is explained" 'needs 2 signatures' err
run "sign --help" 0 "$P" sign --help
cp s.pemn s-orig.pemn
run "bob co-signs secure-x" 0 "$P" sign s.pemn --key bob.key
says "two signatures now" '2 signatures' out
run "co-signed secure-x meets the threshold" 0 "$P" verify s.pemn --root root1.json
run "verify --json lists both signers" 0 "$P" verify s.pemn --root root1.json --json
check_eq "two signers listed" 2 "$(jq '.signers | length' out)"
run "sign again with the same key: conflict" 11 "$P" sign s.pemn --key bob.key
run "co-signed package still verifies with --trust" 0 "$P" verify s.pemn --trust alice.pub
run "... and with the co-signer's key alone" 0 "$P" verify s.pemn --trust bob.pub
run "co-signed package inspects" 0 "$P" inspect --json s.pemn
check_eq "inspect lists both signers" 2 "$(jq '.signers | length' out)"
cmp -s s.pemn s-orig.pemn && fail "signing changed the file" || pass "signing changed the file"
# a damaged co-signature is caught
SZ=$(stat -c %s s.pemn)
cp s.pemn s-bad.pemn
printf '\x01' | dd of=s-bad.pemn bs=1 seek=$((SZ - 1)) conv=notrunc status=none
run "damaged co-signature: bad signature" 4 "$P" verify s-bad.pemn --trust alice.pub
run "format 1.0 package still verifies" 0 "$P" verify "$PEMN_ROOT/tests/data/compat/format-1.0.pemn" \
    --trust "$PEMN_ROOT/tests/data/signer.pub"
cp "$PEMN_ROOT/tests/data/compat/format-1.0.pemn" old.pemn
run "format 1.0 cannot take a co-signature" 3 "$P" sign old.pemn --key bob.key

# ---- pemnd: the chain ------------------------------------------------------------------------
pemnd_start "$D/srv" || { fail "pemnd starts" "$(tail -5 "$D/srv/pemnd.log")"; exit 1; }
U=$PEMND_URL
B=$T_TMP/body
check_eq "no root yet: 404" 404 "$(http_status GET "$U/v1/root/latest")"
run "pemnd root add v1" 0 "$PEMND_BIN" --db "$PEMND_DB" root add root1.json
run "pemnd root add v1 again: no-op" 0 "$PEMND_BIN" --db "$PEMND_DB" root add root1.json
run "pemnd root add v3 (skips v2): conflict" 11 "$PEMND_BIN" --db "$PEMND_DB" root add root3.json
run "pemnd root add tampered: untrusted" 5 "$PEMND_BIN" --db "$PEMND_DB" root add tampered.json
run "pemnd root add attacker's v2: untrusted" 5 "$PEMND_BIN" --db "$PEMND_DB" root add evil2.json
run "pemnd root add attacker's v1: conflict" 11 "$PEMND_BIN" --db "$PEMND_DB" root add evil1.json
run "pemnd root add expired: 12" 12 "$PEMND_BIN" --db "$PEMND_DB" root add root4.json
run "pemnd root list" 0 "$PEMND_BIN" --db "$PEMND_DB" root list
says "root list shows v1" '^1 ' out
run "pemnd root add missing file" 6 "$PEMND_BIN" --db "$PEMND_DB" root add nosuch.json
check_eq "GET /v1/root/1" 200 "$(http_status GET "$U/v1/root/1")"
check "served bytes equal the file" cmp -s "$B" root1.json
check_eq "GET /v1/root/latest = v1" 200 "$(http_status GET "$U/v1/root/latest")"
check "latest is v1" cmp -s "$B" root1.json
curl -s -D "$D/h" -o /dev/null "$U/v1/root/1"
check "numbered root is immutable" grep -qi 'cache-control: .*immutable' "$D/h"
ET=$(sed -n 's/^[Ee][Tt]ag: *//p' "$D/h" | tr -d '\r')
check_eq "ETag is the digest" "\"sha256:$(sha256sum root1.json | cut -c1-64)\"" "$ET"
check_eq "If-None-Match: 304" 304 "$(http_status GET "$U/v1/root/1" -H "If-None-Match: $ET")"
curl -s -D "$D/h" -o /dev/null "$U/v1/root/latest"
check "latest is not cached" grep -qi 'cache-control: no-cache' "$D/h"
check_eq "GET /v1/root/2 before it exists: 404" 404 "$(http_status GET "$U/v1/root/2")"
check_eq "GET /v1/root/0: 400" 400 "$(http_status GET "$U/v1/root/0")"
check_eq "GET /v1/root/x1: 400" 400 "$(http_status GET "$U/v1/root/x1")"

# ---- pemnd: packages, tags, fleets and revocation ---------------------------------------------
pemnd_admin key add alice.pub >/dev/null
pemnd_admin key add bob.pub >/dev/null
PUB=$(pemnd_token publish)
for f in a b s; do "$P" push --server "$U" --token "$PUB" --quiet "$f.pemn" >/dev/null ||
    fail "push $f"; done
pub() { http_status "$1" "$U$2" -H "Authorization: Bearer $PUB" ${3:+-H 'Content-Type: application/json' -d "$3"}; }
check_eq "tag bob's package under v1" 200 "$(pub PUT /v1/models/other/tags/stable '{"version":"v1"}')"
check_eq "co-signed secure-x can be tagged" 200 "$(pub PUT /v1/models/secure-x/tags/stable '{"version":"v1"}')"
http_status GET "$U/v1/models/other" >/dev/null
check_eq "listing: bob's package not revoked under v1" false "$(jq -r '.versions[0].revoked' "$B")"
run "pemnd root add v2 (revokes bob)" 0 "$PEMND_BIN" --db "$PEMND_DB" root add root2.json
check_eq "latest is now v2" 2 "$(curl -s -D - -o /dev/null "$U/v1/root/latest" | tr -d '\r' |
    sed -n 's/^[Pp]emn-[Rr]oot-[Vv]ersion: //p')"
http_status GET "$U/v1/keys" >/dev/null
check_eq "GET /v1/keys marks bob revoked" true "$(jq -r --arg b "$BOB" '.keys[] | select(.id==$b) | .revoked' "$B")"
check_eq "GET /v1/keys: alice not revoked" false "$(jq -r --arg a "$(id alice)" '.keys[] | select(.id==$a) | .revoked' "$B")"
run "pemnd key remove bob" 0 "$PEMND_BIN" --db "$PEMND_DB" key remove "$BOB"
run "a revoked key cannot be trusted again" 11 "$PEMND_BIN" --db "$PEMND_DB" key add bob.pub
says "the refusal names the root" 'revoked by root version 2' err
check_eq "tag a revoked signer's package: 409" 409 "$(pub PUT /v1/models/other/tags/beta '{"version":"v1"}')"
check_eq "refusal code is revoked" revoked "$(json_get "$B" error.code)"
check_eq "fleet target on a revoked signer's package: 409" 409 \
    "$(pub PUT /v1/fleets/f1 '{"model":"other","version":"v1"}')"
check_eq "fleet refusal code is revoked" revoked "$(json_get "$B" error.code)"
"$PEMN_MKPKG" pack bob.key other v2 2 2000 b2.pemn >/dev/null
check_eq "push by a revoked key: 403" 403 "$(http_status PUT "$U/v1/models/other/versions/v2" \
    -H "Authorization: Bearer $PUB" -T b2.pemn)"
check_eq "push refusal code is revoked" revoked "$(json_get "$B" error.code)"
check_eq "fleet on a good package is fine" 200 "$(pub PUT /v1/fleets/f2 '{"model":"mnist-a","version":"v1"}')"
http_status GET "$U/v1/models/other" >/dev/null
check_eq "listing marks the revoked version" true "$(jq -r '.versions[0].revoked' "$B")"
check "listing says why" test -n "$(jq -r '.versions[0].revoked_reason // empty' "$B")"
http_status GET "$U/v1/models" >/dev/null
check_eq "model list marks it too" true "$(jq -r '.models[] | select(.name=="other") | .latest.revoked' "$B")"
check_eq "version GET marks it" true \
    "$(http_status GET "$U/v1/models/other/versions/v1" >/dev/null; jq -r .revoked "$B")"
check_eq "good package is not marked" false \
    "$(http_status GET "$U/v1/models/mnist-a/versions/v1" >/dev/null; jq -r .revoked "$B")"
# secure-x is co-signed by alice and bob: bob's revocation taints it as well
check_eq "co-signed by a revoked key: refused" 409 "$(pub PUT /v1/models/secure-x/tags/beta '{"version":"v1"}')"
# a key removed from the trusted set (no root needed for this rule)
check_eq "tag mnist-a before its key is removed" 200 "$(pub PUT /v1/models/mnist-a/tags/stable '{"version":"v1"}')"
pemnd_admin key remove "$(id alice)" >/dev/null
check_eq "tag after its key was removed: 409" 409 "$(pub PUT /v1/models/mnist-a/tags/beta '{"version":"v1"}')"
check_eq "removed key's refusal code is untrusted" untrusted "$(json_get "$B" error.code)"
check_eq "fleet target after key removal: 409" 409 "$(pub PUT /v1/fleets/f3 '{"model":"mnist-a","version":"v1"}')"
pemnd_admin key add alice.pub >/dev/null
check_eq "key added back: taggable again" 200 "$(pub PUT /v1/models/mnist-a/tags/beta '{"version":"v1"}')"

# ---- pemn root pull: the chain walk from a pinned version ---------------------------------
run "root pull from v1 walks to v2" 0 "$P" root pull --server "$U" --root root1.json --out dev-root.json
says "one link walked" 'root version 2 \(1 link walked from version 1\)' out
check "the newest root was written" cmp -s dev-root.json root2.json
run "root pull from v2: nothing newer" 0 "$P" root pull --server "$U" --root dev-root.json \
    --out dev-root.json --json
check_eq "zero links" 0 "$(jq -r .links out)"
run "root pull from an attacker's pinned root: refused" 5 "$P" root pull --server "$U" \
    --root evil1.json --out evil-next.json
run "pemnd root add v3 (rotation)" 0 "$PEMND_BIN" --db "$PEMND_DB" root add root3.json
run "root pull from v1 walks two links" 0 "$P" root pull --server "$U" --root root1.json --json
check_eq "two links" 2 "$(jq -r .links out)"
check_eq "to version 3" 3 "$(jq -r .version out)"
run "root pull without --root: usage" 2 "$P" root pull --server "$U"

# ---- pemn pull --root -------------------------------------------------------------------------
run "pull --root (alice, mnist-a)" 0 "$P" pull --server "$U" --root root2.json --quiet \
    --no-cache --out pulled.pemn mnist-a
check "pulled file present" test -s pulled.pemn
run "pull --root of a revoked signer's package: 13" 13 "$P" pull --server "$U" --root root2.json \
    --quiet --no-cache --out p2.pemn other
check "refused package not installed" test ! -e p2.pemn
run "pull --root with an expired root: 12" 12 "$P" pull --server "$U" --root root4.json \
    --quiet --no-cache --out p3.pemn mnist-a
run "pull without --trust or --root: usage" 2 env -u PEMN_TRUST "$P" pull --server "$U" \
    --quiet --out p4.pemn mnist-a
t_done
