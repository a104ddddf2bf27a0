#!/usr/bin/env bash
# pemnd REST API v1 end to end with curl: push, list, fetch (whole, ranges, conditional,
# HEAD), tags, keys, metrics, every error status, auth scopes, hostile names, limits.
source "$(dirname "$0")/lib.sh"

D=$T_TMP/srv
mkdir -p "$D/pkgs"
K=$D/pkgs
"$PEMN_MKPKG" keygen "$K/alice" || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" keygen "$K/mallory" || { fail "keygen"; exit 1; }
mk() { "$PEMN_MKPKG" pack "$K/alice.key" "$@"; }
mk net 1.0.0 1 65536 "$K/net-1.0.0.pemn" 1
mk net 1.1.0 2 4096 "$K/net-1.1.0.pemn" 2
mk net 1.1.0 9 4096 "$K/net-1.1.0-other.pemn" 3  # same version, different bytes
mk net 0.9.0 1 4096 "$K/net-0.9.0.pemn" 4          # release not newer
mk net 2.0.0 5 300000 "$K/net-2.0.0.pemn" 5
mk other 1 1 100 "$K/other-1.pemn" 6
"$PEMN_MKPKG" pack "$K/mallory.key" net 3.0.0 7 100 "$K/net-3.0.0-mallory.pemn" 7

pemnd_start "$D/run" --max-package-size 400K --log-format json --allow-unbound-device-tokens --device-registration-rate 0 || { fail "pemnd starts"; exit 1; }
pass "pemnd starts on a free port"
U=$PEMND_URL
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
check "admin: key add" test $? -eq 0
PUB=$(pemnd_token publish ci)
READ=$(pemnd_token read reader)
ADMIN=$(pemnd_token admin root)
DEV=$(pemnd_token device dev1)
check "admin: token create prints the token last" bash -c "[[ '$PUB' == pemn_* ]] && [ ${#PUB} -eq 48 ]"
AP=(-H "Authorization: Bearer $PUB")

# ---- health, keys ------------------------------------------------------------------------
check_eq "health 200" 200 "$(http_status GET "$U/v1/health")"
check_eq "health body" ok "$(json_get "$T_TMP/body" status)"
check_eq "keys 200" 200 "$(http_status GET "$U/v1/keys")"
check_eq "keys lists alice" alice "$(json_get "$T_TMP/body" 'keys[0].name')"
check "keys: public key text" grep -q '"public_key":"pemn-ed25519-pub [0-9a-f]\{64\}"' "$T_TMP/body"

# ---- push --------------------------------------------------------------------------------
push() { http_status PUT "$U/v1/models/$1/versions/$2" "${AP[@]}" --data-binary "@$3"; }
check_eq "push: 201 created" 201 "$(push net 1.0.0 "$K/net-1.0.0.pemn")"
cp "$T_TMP/body" "$D/push1.json"
WANT=$(sha256sum "$K/net-1.0.0.pemn" | cut -d' ' -f1)
check_eq "push: digest is sha256 of the bytes" "sha256:$WANT" "$(json_get "$D/push1.json" digest)"
check_eq "push: size" "$(stat -c %s "$K/net-1.0.0.pemn")" "$(json_get "$D/push1.json" size)"
check_eq "push: release" 1 "$(json_get "$D/push1.json" release)"
check_eq "push: strategy" rp "$(json_get "$D/push1.json" strategy)"
check_eq "push: signer is alice's key id" "$(pemnd_admin key list | awk '{print $1}')" \
    "$(json_get "$D/push1.json" signer)"
check_eq "push: package_url" "/v1/blobs/sha256:$WANT" "$(json_get "$D/push1.json" package_url)"
check "push: ratio vs float32 > 20" bash -c "[ \$(jq '.ratio > 20' '$D/push1.json') = true ]"
check_eq "push: identical re-push is 200" 200 "$(push net 1.0.0 "$K/net-1.0.0.pemn")"
check_eq "push: second version 201" 201 "$(push net 1.1.0 "$K/net-1.1.0.pemn")"
check_eq "push: different bytes, same version: 409" 409 "$(push net 1.1.0 "$K/net-1.1.0-other.pemn")"
check_eq "push: 409 code conflict" conflict "$(json_get "$T_TMP/body" error.code)"
check_eq "push: release not newer: 409" 409 "$(push net 0.9.0 "$K/net-0.9.0.pemn")"
check_eq "push: 409 code release_not_newer" release_not_newer "$(json_get "$T_TMP/body" error.code)"
check_eq "push: name mismatch 400" 400 "$(push net 9.9.9 "$K/net-2.0.0.pemn")"
check_eq "push: name_mismatch code" name_mismatch "$(json_get "$T_TMP/body" error.code)"
check_eq "push: other model mismatch 400" 400 "$(push other 2.0.0 "$K/net-2.0.0.pemn")"
check_eq "push: untrusted signer 403" 403 "$(push net 3.0.0 "$K/net-3.0.0-mallory.pemn")"
check_eq "push: untrusted code" untrusted "$(json_get "$T_TMP/body" error.code)"
# corrupt: truncated, garbage, empty
head -c 3000 "$K/net-2.0.0.pemn" >"$D/trunc.pemn"
check_eq "push: truncated 400" 400 "$(push net 2.0.0 "$D/trunc.pemn")"
check_eq "push: corrupt code" corrupt "$(json_get "$T_TMP/body" error.code)"
head -c 5000 /dev/urandom >"$D/garbage.pemn"
check_eq "push: garbage 400" 400 "$(push net 2.0.0 "$D/garbage.pemn")"
: >"$D/empty.pemn"
check_eq "push: empty body 400" 400 "$(push net 2.0.0 "$D/empty.pemn")"
# a flipped byte in the signature (last bytes of the file): bad signature or corrupt
cp "$K/net-2.0.0.pemn" "$D/badsig.pemn"
SZ=$(stat -c %s "$D/badsig.pemn")
printf '\x55' | dd of="$D/badsig.pemn" bs=1 seek=$((SZ - 10)) conv=notrunc status=none
ST=$(push net 2.0.0 "$D/badsig.pemn")
CODE=$(json_get "$T_TMP/body" error.code)
check "push: tampered signature refused (403 bad_signature or 400 corrupt)" \
    bash -c "[ '$ST/$CODE' = 403/bad_signature ] || [ '$ST/$CODE' = 400/corrupt ]"
# a flipped byte in the body: the content digest no longer matches
cp "$K/net-2.0.0.pemn" "$D/badbody.pemn"
printf '\x55' | dd of="$D/badbody.pemn" bs=1 seek=$((SZ / 2)) conv=notrunc status=none
ST=$(push net 2.0.0 "$D/badbody.pemn")
check "push: tampered body refused" bash -c "[ '$ST' = 400 ] || [ '$ST' = 403 ]"
check_eq "push: 2.0.0 still absent after refusals" 404 \
    "$(http_status GET "$U/v1/models/net/versions/2.0.0")"
check_eq "push: 300 KB package 201" 201 "$(push net 2.0.0 "$K/net-2.0.0.pemn")"
check_eq "push: other model 201" 201 "$(push other 1 "$K/other-1.pemn")"

# ---- oversize ----------------------------------------------------------------------------
head -c 500000 /dev/zero >"$D/big.bin"
check_eq "oversize body 413 (Content-Length)" 413 "$(push net 4.0.0 "$D/big.bin")"
check_eq "oversize code too_large" too_large "$(json_get "$T_TMP/body" error.code)"
ST=$(http_status PUT "$U/v1/models/net/versions/4.0.0" "${AP[@]}" -H "Transfer-Encoding: chunked" \
    --data-binary "@$D/big.bin")
check_eq "oversize body 413 (chunked, no length)" 413 "$ST"
check_eq "oversize: nothing stored" 404 "$(http_status GET "$U/v1/models/net/versions/4.0.0")"

# ---- auth --------------------------------------------------------------------------------
check_eq "auth: push without token 401" 401 \
    "$(http_status PUT "$U/v1/models/net/versions/5.0.0" --data-binary "@$K/other-1.pemn")"
check_eq "auth: 401 code" unauthorized "$(json_get "$T_TMP/body" error.code)"
check_eq "auth: read token cannot push (403)" 403 \
    "$(http_status PUT "$U/v1/models/net/versions/5.0.0" -H "Authorization: Bearer $READ" \
        --data-binary "@$K/other-1.pemn")"
check_eq "auth: 403 code forbidden" forbidden "$(json_get "$T_TMP/body" error.code)"
check_eq "auth: device token cannot push (403)" 403 \
    "$(http_status PUT "$U/v1/models/net/versions/5.0.0" -H "Authorization: Bearer $DEV" \
        --data-binary "@$K/other-1.pemn")"
check_eq "auth: unknown token 401" 401 \
    "$(http_status PUT "$U/v1/models/net/versions/5.0.0" -H "Authorization: Bearer pemn_nope" \
        --data-binary "@$K/other-1.pemn")"
check_eq "auth: wrong scheme 401" 401 \
    "$(http_status PUT "$U/v1/models/net/versions/5.0.0" -H "Authorization: Basic YTpi" \
        --data-binary "@$K/other-1.pemn")"
check_eq "auth: a bad token is refused even on open reads" 401 \
    "$(http_status GET "$U/v1/models" -H "Authorization: Bearer pemn_bogus")"
check_eq "auth: admin token can tag" 200 \
    "$(http_status PUT "$U/v1/models/other/tags/admin-tag" -H "Authorization: Bearer $ADMIN" \
        -d '{"version":"1"}')"
TMP_TOK=$(pemnd_token publish temp)
check_eq "auth: fresh token works" 200 \
    "$(http_status PUT "$U/v1/models/other/tags/t1" -H "Authorization: Bearer $TMP_TOK" \
        -d '{"version":"1"}')"
pemnd_admin token revoke temp >/dev/null
check "admin: token revoke" test $? -eq 0
check_eq "auth: revoked token refused (401)" 401 \
    "$(http_status PUT "$U/v1/models/other/tags/t2" -H "Authorization: Bearer $TMP_TOK" \
        -d '{"version":"1"}')"
pemnd_admin token revoke temp >/dev/null 2>&1
check_eq "admin: revoking twice is 'not found' (exit 6)" 6 "$?"
check "admin: token list shows revoked" bash -c "'$PEMND_BIN' --db '$PEMND_DB' token list | grep -q 'temp .*revoked'"
pemnd_admin token create --scope root >/dev/null 2>&1
check_eq "admin: unknown scope is a usage error (exit 2)" 2 "$?"

# ---- listings ----------------------------------------------------------------------------
check_eq "models list 200" 200 "$(http_status GET "$U/v1/models")"
check_eq "models list: two models" 2 "$(jq '.models | length' "$T_TMP/body")"
check_eq "models list: net latest" 2.0.0 "$(jq -r '.models[] | select(.name=="net") | .latest.version' "$T_TMP/body")"
check_eq "models list: net has 3 versions" 3 "$(jq -r '.models[] | select(.name=="net") | .versions' "$T_TMP/body")"
check_eq "model get 200" 200 "$(http_status GET "$U/v1/models/net")"
check_eq "model: versions newest first" "2.0.0 1.1.0 1.0.0" "$(jq -r '[.versions[].version] | join(" ")' "$T_TMP/body")"
check_eq "model: latest" 2.0.0 "$(json_get "$T_TMP/body" latest.version)"
check_eq "model: unknown 404" 404 "$(http_status GET "$U/v1/models/nope")"
check_eq "model: 404 code" not_found "$(json_get "$T_TMP/body" error.code)"
check_eq "version get 200" 200 "$(http_status GET "$U/v1/models/net/versions/1.1.0")"
check_eq "version get: release" 2 "$(json_get "$T_TMP/body" release)"
check_eq "version get: unknown 404" 404 "$(http_status GET "$U/v1/models/net/versions/7.7.7")"

# ---- fetch -------------------------------------------------------------------------------
P=$U/v1/models/net/versions/1.0.0/package
B=$U/v1/blobs/sha256:$WANT
check_eq "fetch by version 200" 200 "$(http_status GET "$P")"
check "fetch by version: bytes identical" cmp -s "$T_TMP/body" "$K/net-1.0.0.pemn"
check_eq "fetch by digest 200" 200 "$(http_status GET "$B")"
check "fetch by digest: bytes identical" cmp -s "$T_TMP/body" "$K/net-1.0.0.pemn"
UPPER=$(echo "$WANT" | tr a-f A-F)
check_eq "fetch by uppercase digest 200" 200 "$(http_status GET "$U/v1/blobs/sha256:$UPPER")"
curl -s -D "$D/h" -o /dev/null "$B"
check "blob: ETag is the quoted digest" grep -qi "^etag: \"sha256:$WANT\"" "$D/h"
check "blob: Cache-Control immutable" grep -qi '^cache-control: public, max-age=31536000, immutable' "$D/h"
check "blob: Accept-Ranges" grep -qi '^accept-ranges: bytes' "$D/h"
check "blob: Content-Type" grep -qi '^content-type: application/vnd.pemn' "$D/h"
curl -s -D "$D/h" -o /dev/null "$P"
check "package: ETag" grep -qi "^etag: \"sha256:$WANT\"" "$D/h"
check "package: not marked immutable" bash -c "! grep -qi immutable '$D/h'"
curl -s -I "$B" >"$D/head"
check "HEAD blob: 200 with Content-Length" grep -qi "^content-length: $(stat -c %s "$K/net-1.0.0.pemn")" "$D/head"
check_eq "HEAD blob: no body" 0 "$(curl -s -I "$B" -o /dev/null -w '%{size_download}')"
curl -s -I "$P" >"$D/head"
check "HEAD package: 200" grep -q "^HTTP/1.1 200" "$D/head"
check_eq "fetch: unknown digest 404" 404 "$(http_status GET "$U/v1/blobs/sha256:$(printf '0%.0s' $(seq 64))")"
check_eq "fetch: malformed digest 400" 400 "$(http_status GET "$U/v1/blobs/sha256:abc")"
check_eq "fetch: unknown version package 404" 404 "$(http_status GET "$U/v1/models/net/versions/8/package")"
# conditional
check_eq "If-None-Match match: 304" 304 "$(http_status GET "$B" -H "If-None-Match: \"sha256:$WANT\"")"
check_eq "304 has no body" 0 "$(stat -c %s "$T_TMP/body")"
check_eq "If-None-Match in a list: 304" 304 "$(http_status GET "$P" -H "If-None-Match: \"x\", W/\"sha256:$WANT\"")"
check_eq "If-None-Match *: 304" 304 "$(http_status GET "$B" -H "If-None-Match: *")"
check_eq "If-None-Match other: 200" 200 "$(http_status GET "$B" -H 'If-None-Match: "sha256:00"')"
# ranges
SIZE=$(stat -c %s "$K/net-1.0.0.pemn")
check_eq "Range a-b: 206" 206 "$(http_status GET "$B" -r 100-199)"
check "Range a-b: bytes" cmp -s "$T_TMP/body" <(tail -c +101 "$K/net-1.0.0.pemn" | head -c 100)
curl -s -D "$D/h" -o /dev/null -r 100-199 "$B"
check "Range: Content-Range" grep -qi "^content-range: bytes 100-199/$SIZE" "$D/h"
check_eq "Range a-: 206" 206 "$(http_status GET "$P" -r 65000-)"
check "Range a-: bytes" cmp -s "$T_TMP/body" <(tail -c +65001 "$K/net-1.0.0.pemn")
check_eq "Range -n: 206" 206 "$(http_status GET "$B" -r -500)"
check "Range -n: bytes" cmp -s "$T_TMP/body" <(tail -c 500 "$K/net-1.0.0.pemn")
check_eq "Range past the end clamps: 206" 206 "$(http_status GET "$B" -r "$((SIZE - 10))-$((SIZE + 1000))")"
check_eq "Range clamp: 10 bytes" 10 "$(stat -c %s "$T_TMP/body")"
check_eq "Range unsatisfiable: 416" 416 "$(http_status GET "$B" -r "$SIZE-")"
check_eq "416 code" range_not_satisfiable "$(json_get "$T_TMP/body" error.code)"
curl -s -D "$D/h" -o /dev/null -r "$((SIZE + 5))-$((SIZE + 9))" "$B"
check "416: Content-Range bytes */size" grep -qi "^content-range: bytes \*/$SIZE" "$D/h"
check_eq "multiple ranges: whole body 200" 200 "$(http_status GET "$B" -r 0-1,5-6)"
check_eq "malformed Range ignored: 200" 200 "$(http_status GET "$B" -H 'Range: bytes=z-q')"
check_eq "If-Range other validator: 200" 200 "$(http_status GET "$B" -r 0-9 -H 'If-Range: "other"')"
check_eq "If-Range matching: 206" 206 "$(http_status GET "$B" -r 0-9 -H "If-Range: \"sha256:$WANT\"")"
# a streamed (uncached) large package: restart-free check through the 300 KB package
D2=$(jq -r '.versions[0].digest' <(curl -s "$U/v1/models/net"))
check_eq "fetch 300 KB: 200" 200 "$(http_status GET "$U/v1/blobs/$D2")"
check "fetch 300 KB: identical" cmp -s "$T_TMP/body" "$K/net-2.0.0.pemn"

# ---- tags --------------------------------------------------------------------------------
T=$U/v1/models/net/tags/stable
check_eq "tag put 200" 200 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":"1.1.0"}')"
check_eq "tag put: returns the version + tag" "1.1.0/stable" \
    "$(jq -r '.version + "/" + .tag' "$T_TMP/body")"
check_eq "tag get 200" 200 "$(http_status GET "$T")"
check_eq "tag get: version" 1.1.0 "$(json_get "$T_TMP/body" version)"
check_eq "tag move 200" 200 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":"1.0.0"}')"
check_eq "tag moved" 1.0.0 "$(curl -s "$T" | jq -r .version)"
check_eq "model shows tags" 1.0.0 "$(curl -s "$U/v1/models/net" | jq -r .tags.stable)"
check_eq "tag to unknown version 404" 404 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":"9.9"}')"
check_eq "tag malformed JSON 400" 400 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":')"
check_eq "tag malformed code" bad_request "$(json_get "$T_TMP/body" error.code)"
check_eq "tag JSON not an object 400" 400 "$(http_status PUT "$T" "${AP[@]}" -d '["1.0.0"]')"
check_eq "tag JSON missing version 400" 400 "$(http_status PUT "$T" "${AP[@]}" -d '{"v":"1.0.0"}')"
check_eq "tag JSON version not a string 400" 400 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":7}')"
check_eq "tag JSON hostile version 400" 400 "$(http_status PUT "$T" "${AP[@]}" -d '{"version":"../x"}')"
check_eq "tag body too large 413" 413 "$(http_status PUT "$T" "${AP[@]}" --data-binary "@$D/big.bin")"
check_eq "tag put with read token 403" 403 "$(http_status PUT "$T" -H "Authorization: Bearer $READ" -d '{"version":"1.0.0"}')"
check_eq "tag delete without token 401" 401 "$(http_status DELETE "$T")"
check_eq "tag delete 204" 204 "$(http_status DELETE "$T" "${AP[@]}")"
check_eq "tag gone 404" 404 "$(http_status GET "$T")"
check_eq "tag delete again 404" 404 "$(http_status DELETE "$T" "${AP[@]}")"

# ---- hostile paths -----------------------------------------------------------------------
LONG=$(printf 'a%.0s' $(seq 129))
OK128=$(printf 'a%.0s' $(seq 128))
check_eq "name '..' 400" 400 "$(http_status GET "$U/v1/models/../versions/1" --path-as-is)"
check_eq "name with %2F 400" 400 "$(http_status GET "$U/v1/models/a%2Fb")"
check_eq "name with %2e%2e 400" 400 "$(http_status GET "$U/v1/models/%2e%2e")"
check_eq "name with NUL (%00) 400" 400 "$(http_status GET "$U/v1/models/net%00x")"
check_eq "name 129 chars 400" 400 "$(http_status GET "$U/v1/models/$LONG")"
check_eq "name 128 chars is valid (404)" 404 "$(http_status GET "$U/v1/models/$OK128")"
check_eq "name starting with '.' 400" 400 "$(http_status GET "$U/v1/models/.hidden")"
check_eq "name starting with '-' 400" 400 "$(http_status GET "$U/v1/models/-x")"
check_eq "version with quote 400" 400 "$(http_status GET "$U/v1/models/net/versions/1'or'1")"
check_eq "tag with space 400" 400 "$(http_status GET "$U/v1/models/net/tags/a%20b")"
check_eq "push to hostile name 400" 400 "$(http_status PUT "$U/v1/models/..%2F..%2Fetc/versions/1" "${AP[@]}" --data-binary "@$K/other-1.pemn")"
check_eq "very long URL refused" 4 "$(http_status GET "$U/v1/models/$(printf 'b%.0s' $(seq 70000))" | cut -c1)"
check_eq "unknown route 404" 404 "$(http_status GET "$U/v2/models")"
check_eq "trailing slash 404" 404 "$(http_status GET "$U/v1/models/net/")"
check_eq "wrong method 405" 405 "$(http_status DELETE "$U/v1/models/net")"
curl -s -D "$D/h" -o /dev/null -X POST "$U/v1/models"
check "405 has Allow" grep -qi '^allow: GET, HEAD' "$D/h"
check "server still healthy after hostile input" curl -sf -o /dev/null "$U/v1/health"

# ---- metrics, logs -----------------------------------------------------------------------
curl -s "$U/metrics" >"$D/metrics"
check "metrics: requests by route and status" grep -q '^pemnd_requests_total{route="version_put",status="201"} 4' "$D/metrics"
check "metrics: bytes served" grep -Eq '^pemnd_bytes_served_total [1-9][0-9]*' "$D/metrics"
check "metrics: packages stored" grep -q '^pemnd_packages_stored 4' "$D/metrics"
check "metrics: push rejections by reason" grep -q '^pemnd_push_rejections_total{reason="release_not_newer"} 1' "$D/metrics"
check "metrics: untrusted rejections" grep -q '^pemnd_push_rejections_total{reason="untrusted"} 1' "$D/metrics"
check "metrics: too_large rejections" grep -Eq '^pemnd_push_rejections_total\{reason="too_large"\} [12]' "$D/metrics"
check "metrics: forbidden push rejections" grep -q '^pemnd_push_rejections_total{reason="forbidden"} 2' "$D/metrics"
check "metrics: unauthorized push rejections" grep -q '^pemnd_push_rejections_total{reason="unauthorized"} 3' "$D/metrics"
check "metrics: unmatched route" grep -q 'route="unmatched",status="404"' "$D/metrics"
check "log: one JSON line per request" bash -c "grep '\"path\":\"/v1/health\"' '$PEMND_LOG' | head -1 | jq -e '.method==\"GET\" and .status==200 and (.bytes>0) and (.duration_ms>=0)' >/dev/null"
check "log: hostile path escaped, still JSON" bash -c "grep '\"method\"' '$PEMND_LOG' | jq -e . >/dev/null"

# ---- audit -------------------------------------------------------------------------------
check "audit: push recorded with actor" bash -c "'$PEMND_BIN' --db '$PEMND_DB' audit | grep -q 'ci .*push .*net/1.0.0'"
check "audit: tag delete recorded" bash -c "'$PEMND_BIN' --db '$PEMND_DB' audit | grep -q 'tag.delete'"

# ---- graceful shutdown: in-flight requests finish ------------------------------------------
"$PEMN_MKPKG" pack "$K/alice.key" net 6.0.0 60 400000 "$K/net-6.0.0.pemn" 60
curl -s -o "$D/slow-get" --limit-rate 150K "$U/v1/models/net/versions/2.0.0/package" &
GETPID=$!
curl -s -o "$D/slow-put" -w '%{http_code}' --limit-rate 150K -X PUT "${AP[@]}" \
    --data-binary "@$K/net-6.0.0.pemn" "$U/v1/models/net/versions/6.0.0" >"$D/slow-put-status" &
PUTPID=$!
sleep 0.7
pemnd_stop
check_eq "graceful stop: exit 0" 0 "$?"
wait "$GETPID" "$PUTPID"
check "graceful stop: the in-flight download completed" cmp -s "$D/slow-get" "$K/net-2.0.0.pemn"
check_eq "graceful stop: the in-flight push completed" 201 "$(cat "$D/slow-put-status")"

# ---- read_token_required -----------------------------------------------------------------
check "graceful stop logged" grep -q 'stopped; database closed' "$PEMND_LOG"
pemnd_start "$D/run" --read-token-required --allow-unbound-device-tokens --device-registration-rate 0 || fail "restart with --read-token-required"
U=$PEMND_URL
check_eq "reads need a token: 401" 401 "$(http_status GET "$U/v1/models")"
check_eq "reads need a token: blob 401" 401 "$(http_status GET "$U/v1/blobs/sha256:$WANT")"
check_eq "read token reads" 200 "$(http_status GET "$U/v1/models" -H "Authorization: Bearer $READ")"
check_eq "device token reads packages" 200 "$(http_status GET "$U/v1/blobs/sha256:$WANT" -H "Authorization: Bearer $DEV")"
check_eq "health stays open" 200 "$(http_status GET "$U/v1/health")"
check_eq "data survived the restart" "sha256:$WANT" "$(curl -s -H "Authorization: Bearer $READ" "$U/v1/models/net/versions/1.0.0" | jq -r .digest)"
pemnd_stop

# ---- configuration -----------------------------------------------------------------------
cat >"$D/good.conf" <<CONF
# comment
listen = 127.0.0.1:0
max_package_size = 1M
read_token_required = yes
log_level = warn
CONF
check "config: --print-config applies the file" bash -c "'$PEMND_BIN' --config '$D/good.conf' --print-config | grep -q '^max_package_size = 1048576'"
check "config: flags override the file" bash -c "'$PEMND_BIN' --config '$D/good.conf' --max-package-size 2M --print-config | grep -q '^max_package_size = 2097152'"
printf 'threads = lots\n' >"$D/bad.conf"
OUT=$("$PEMND_BIN" --db "$D/x.db" --config "$D/bad.conf" 2>&1)
check_eq "config: bad value exits 2" 2 "$?"
check "config: error names file, line and key" bash -c "echo '$OUT' | grep -q 'bad.conf:1: threads'"
printf 'no_such_key = 1\n' >"$D/bad2.conf"
check "config: unknown key refused" bash -c "! '$PEMND_BIN' --db '$D/x.db' --config '$D/bad2.conf' 2>&1 >/dev/null | grep -qv unknown"
"$PEMND_BIN" --db "$D/x.db" --threads 0 >/dev/null 2>&1
check_eq "flag out of range exits 2" 2 "$?"
"$PEMND_BIN" --db "$D/x.db" --listen nonsense >/dev/null 2>&1
check_eq "bad listen address exits 2" 2 "$?"
"$PEMND_BIN" --listen 127.0.0.1:1 >/dev/null 2>&1
check_eq "missing --db exits 2" 2 "$?"
"$PEMND_BIN" --db "$D/x.db" --bogus 1 >/dev/null 2>&1
check_eq "unknown flag exits 2" 2 "$?"
OUT=$("$PEMND_BIN" --db "$D/x.db" --listen 127.0.0.1:0 --tmp-dir "$D/no-such-dir" 2>&1)
check_eq "unwritable tmp_dir: start fails" 1 "$?"
check "unwritable tmp_dir: says so" grep -q "not writable" <<<"$OUT"
check "help lists settings" bash -c "'$PEMND_BIN' --help | grep -q connection_timeout"

t_done
