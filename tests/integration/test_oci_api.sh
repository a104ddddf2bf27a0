#!/usr/bin/env bash
# pemnd /v2/ endpoint by endpoint with curl (OCI distribution-spec 1.1 pull and push flows):
# status codes, headers and OCI error codes, including the error cases.
source "$(dirname "$0")/lib.sh"

D=$T_TMP/ociapi
K=$D/k
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" || { fail keygen; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 65536 "$K/net-1.pemn" 1
"$PEMN_MKPKG" pack "$K/alice.key" net 2.0.0 2 20000 "$K/net-2.pemn" 2
"$PEMN_MKPKG" pack "$K/alice.key" net 3.0.0 3 20000 "$K/net-3.pemn" 3
"$PEMN_MKPKG" pack "$K/alice.key" other 1 1 2000 "$K/other-1.pemn" 4
pemnd_start "$D/run" --max-package-size 200K || { fail "pemnd starts"; exit 1; }
U=$PEMND_URL
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
READ=$(pemnd_token read reader)
AB=(-u "ci:$PUB")
hdr() { tr -d '\r' <"$T_TMP/hdr" | awk -v h="$(echo "$1" | tr A-Z a-z)" -F': ' 'tolower($1)==h{print $2}'; }
req() { # req METHOD URL [CURL ARGS]: status; body in $T_TMP/body, headers in $T_TMP/hdr
    local m=$1 u=$2
    shift 2
    curl -s -D "$T_TMP/hdr" -o "$T_TMP/body" -w '%{http_code}' --max-time 30 -X "$m" "$@" "$u"
}
code() { jq -r '.errors[0].code' "$T_TMP/body" 2>/dev/null; }
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" --data-binary "@$K/net-1.pemn" \
    "$U/v1/models/net/versions/1.0.0"

# ---- ping and auth -------------------------------------------------------------------------
check_eq "ping without credentials: 401" 401 "$(req GET "$U/v2/")"
check_eq "ping: UNAUTHORIZED" UNAUTHORIZED "$(code)"
check "ping: Basic challenge" bash -c "grep -qi '^WWW-Authenticate: Basic realm=\"pemnd\"' '$T_TMP/hdr'"
check_eq "ping: API version header" registry/2.0 "$(hdr Docker-Distribution-API-Version)"
check_eq "ping with Basic token: 200" 200 "$(req GET "$U/v2/" "${AB[@]}")"
check_eq "ping with Bearer token: 200" 200 "$(req GET "$U/v2/" -H "Authorization: Bearer $PUB")"
check_eq "ping with a wrong token: 401" 401 "$(req GET "$U/v2/" -u "x:pemn_nope")"
check_eq "push route without credentials: 401 UNAUTHORIZED" "401 UNAUTHORIZED" \
    "$(req POST "$U/v2/net/blobs/uploads/") $(code)"
check_eq "read token cannot push: 403 DENIED" "403 DENIED" \
    "$(req POST "$U/v2/net/blobs/uploads/" -u "r:$READ") $(code)"

# ---- pull ----------------------------------------------------------------------------------
check_eq "manifest by version: 200" 200 "$(req GET "$U/v2/net/manifests/1.0.0")"
check_eq "manifest: OCI media type" application/vnd.oci.image.manifest.v1+json "$(hdr Content-Type)"
MD=$(hdr Docker-Content-Digest)
check_eq "manifest: Docker-Content-Digest is the sha256 of the body" "$(sha "$T_TMP/body")" "$MD"
cp "$T_TMP/body" "$D/m1.json"
check_eq "manifest: one layer, the package" "$(sha "$K/net-1.pemn")" "$(jq -r '.layers[0].digest' "$D/m1.json")"
check_eq "manifest: layer media type" application/vnd.pemn.package.v1 "$(jq -r '.layers[0].mediaType' "$D/m1.json")"
check_eq "manifest: config media type" application/vnd.pemn.config.v1+json "$(jq -r '.config.mediaType' "$D/m1.json")"
check_eq "manifest: version annotation" 1.0.0 "$(jq -r '.annotations["org.opencontainers.image.version"]' "$D/m1.json")"
check_eq "manifest by digest: 200, same bytes" "200 $MD" "$(req GET "$U/v2/net/manifests/$MD") $(sha "$T_TMP/body")"
check_eq "manifest by 'latest': same digest" "$MD" "$(req GET "$U/v2/net/manifests/latest" >/dev/null; hdr Docker-Content-Digest)"
check_eq "HEAD manifest: 200 with length and digest" "200 $(stat -c %s "$D/m1.json") $MD" \
    "$(req HEAD "$U/v2/net/manifests/1.0.0" -I) $(hdr Content-Length) $(hdr Docker-Content-Digest)"
check_eq "manifest If-None-Match: 304" 304 "$(req GET "$U/v2/net/manifests/1.0.0" -H "If-None-Match: \"$MD\"")"
CD=$(jq -r .config.digest "$D/m1.json")
check_eq "config blob: 200" 200 "$(req GET "$U/v2/net/blobs/$CD")"
check_eq "config blob: name and version" "net 1.0.0" "$(jq -r '.name + " " + .version' "$T_TMP/body")"
check_eq "config blob: digest matches" "$CD" "$(sha "$T_TMP/body")"
LD=$(sha "$K/net-1.pemn")
check_eq "layer blob: 200" 200 "$(req GET "$U/v2/net/blobs/$LD")"
check "layer blob: the package bytes" cmp -s "$K/net-1.pemn" "$T_TMP/body"
check_eq "layer blob Range: 206" 206 "$(req GET "$U/v2/net/blobs/$LD" -H 'Range: bytes=100-199')"
check_eq "layer blob Range: 100 bytes" 100 "$(stat -c %s "$T_TMP/body")"
check_eq "HEAD blob: length" "200 $(stat -c %s "$K/net-1.pemn")" "$(req HEAD "$U/v2/net/blobs/$LD" -I) $(hdr Content-Length)"
Z=sha256:$(printf '%064d' 0)
check_eq "unknown blob: 404 BLOB_UNKNOWN" "404 BLOB_UNKNOWN" "$(req GET "$U/v2/net/blobs/$Z") $(code)"
check_eq "unknown manifest tag: 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" "$(req GET "$U/v2/net/manifests/nope") $(code)"
check_eq "unknown manifest digest: 404 MANIFEST_UNKNOWN" "404 MANIFEST_UNKNOWN" "$(req GET "$U/v2/net/manifests/$Z") $(code)"
check_eq "unknown repository tags: 404 NAME_UNKNOWN" "404 NAME_UNKNOWN" "$(req GET "$U/v2/nosuch/tags/list") $(code)"
check_eq "upper-case name: 400 NAME_INVALID" "400 NAME_INVALID" "$(req GET "$U/v2/Net/manifests/1.0.0") $(code)"
check_eq "bad digest in path: 400 DIGEST_INVALID" "400 DIGEST_INVALID" "$(req GET "$U/v2/net/blobs/sha256:xyz") $(code)"
check_eq "blob DELETE: 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req DELETE "$U/v2/net/blobs/$LD" "${AB[@]}") $(code)"

# ---- push: monolithic POST, chunked PATCH, PUT ---------------------------------------------
printf '{}' >"$D/empty.json"
ED=$(sha "$D/empty.json")
check_eq "monolithic POST ?digest=: 201" 201 \
    "$(req POST "$U/v2/net/blobs/uploads/?digest=$ED" "${AB[@]}" -H 'Content-Type: application/octet-stream' --data-binary "@$D/empty.json")"
check_eq "monolithic POST: Location of the blob" "/v2/net/blobs/$ED" "$(hdr Location)"
check_eq "monolithic POST: Docker-Content-Digest" "$ED" "$(hdr Docker-Content-Digest)"
check_eq "monolithic POST wrong digest: 400 DIGEST_INVALID" "400 DIGEST_INVALID" \
    "$(req POST "$U/v2/net/blobs/uploads/?digest=$Z" "${AB[@]}" --data-binary "@$D/empty.json") $(code)"
check_eq "POST opens a session: 202" 202 "$(req POST "$U/v2/net/blobs/uploads/" "${AB[@]}")"
LOC=$(hdr Location)
check "session: Location names the upload" bash -c "[[ '$LOC' == /v2/net/blobs/uploads/* ]]"
check_eq "session: Docker-Upload-UUID" "${LOC##*/}" "$(hdr Docker-Upload-UUID)"
P=$K/net-2.pemn
N=$(stat -c %s "$P")
H=$((N / 2))
head -c "$H" "$P" >"$D/c1"
tail -c +$((H + 1)) "$P" >"$D/c2"
check_eq "PATCH chunk 1 with Content-Range: 202" 202 \
    "$(req PATCH "$U$LOC" "${AB[@]}" -H "Content-Range: 0-$((H - 1))" -H 'Content-Type: application/octet-stream' --data-binary "@$D/c1")"
check_eq "PATCH: Range reports the bytes received" "0-$((H - 1))" "$(hdr Range)"
LOC2=$(hdr Location)
check_eq "PATCH out of order: 416" 416 \
    "$(req PATCH "$U$LOC2" "${AB[@]}" -H "Content-Range: $((H + 10))-$((N + 9))" --data-binary "@$D/c2")"
check_eq "416: BLOB_UPLOAD_INVALID, Range unchanged" "BLOB_UPLOAD_INVALID 0-$((H - 1))" "$(code) $(hdr Range)"
check_eq "PATCH repeating chunk 1: 416" 416 \
    "$(req PATCH "$U$LOC2" "${AB[@]}" -H "Content-Range: 0-$((H - 1))" --data-binary "@$D/c1")"
check_eq "upload status GET: 204 with Range" "204 0-$((H - 1))" "$(req GET "$U$LOC2" "${AB[@]}") $(hdr Range)"
check_eq "PUT with the wrong digest: 400 DIGEST_INVALID" "400 DIGEST_INVALID" \
    "$(req PUT "$U$LOC2?digest=$Z" "${AB[@]}" -H "Content-Range: $H-$((N - 1))" --data-binary "@$D/c2") $(code)"
check_eq "the failed PUT kept the session and its bytes" "204 0-$((N - 1))" "$(req GET "$U$LOC2" "${AB[@]}") $(hdr Range)"
check_eq "PUT closing with the right digest: 201" 201 "$(req PUT "$U$LOC2?digest=$(sha "$P" | sed 's/:/%3A/')" "${AB[@]}")"
check_eq "PUT: Location and digest" "/v2/net/blobs/$(sha "$P") $(sha "$P")" "$(hdr Location) $(hdr Docker-Content-Digest)"
check_eq "the session is gone: 404 BLOB_UPLOAD_UNKNOWN" "404 BLOB_UPLOAD_UNKNOWN" "$(req GET "$U$LOC2" "${AB[@]}") $(code)"
check_eq "the uploaded blob is served" 200 "$(req GET "$U/v2/net/blobs/$(sha "$P")")"
check "uploaded blob: bytes identical" cmp -s "$P" "$T_TMP/body"
check_eq "uploaded blob is not a version yet" 404 "$(http_status GET "$U/v1/models/net/versions/2.0.0")"
check_eq "unknown session: 404 BLOB_UPLOAD_UNKNOWN" "404 BLOB_UPLOAD_UNKNOWN" \
    "$(req PATCH "$U/v2/net/blobs/uploads/0123456789abcdef0123456789abcdef" "${AB[@]}" --data-binary x) $(code)"
req POST "$U/v2/net/blobs/uploads/" "${AB[@]}" >/dev/null
LOC3=$(hdr Location)
check_eq "DELETE a session: 204" 204 "$(req DELETE "$U$LOC3" "${AB[@]}")"
check_eq "deleted session: 404" 404 "$(req GET "$U$LOC3" "${AB[@]}")"
req POST "$U/v2/net/blobs/uploads/" "${AB[@]}" >/dev/null
LOC4=$(hdr Location)
head -c 300000 /dev/zero >"$D/big"
check_eq "a chunk past max_package_size: 413 SIZE_INVALID" "413 SIZE_INVALID" \
    "$(req PATCH "$U$LOC4" "${AB[@]}" --data-binary "@$D/big") $(code)"

req POST "$U/v2/net/blobs/uploads/" "${AB[@]}" >/dev/null
LOC5=$(hdr Location)
RACE=()
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{http_code}\n' -X PATCH "${AB[@]}" -H "Content-Range: 0-$((H - 1))" \
        --data-binary "@$D/c1" "$U$LOC5" >"$D/race.$i" &
    RACE+=($!)
done
wait "${RACE[@]}"
check_eq "6 racing chunks at one offset: exactly one accepted" "1 5" \
    "$(cat "$D"/race.* | grep -c 202) $(cat "$D"/race.* | grep -c 416)"
check_eq "... and the session holds that one chunk" "0-$((H - 1))" "$(req GET "$U$LOC5" "${AB[@]}" >/dev/null; hdr Range)"

# ---- cross-repository mount ----------------------------------------------------------------
check_eq "mount an existing blob: 201" "201 /v2/other/blobs/$ED" \
    "$(req POST "$U/v2/other/blobs/uploads/?mount=$ED&from=net" "${AB[@]}") $(hdr Location)"
check_eq "mount an unknown blob: 202, a session instead" 202 \
    "$(req POST "$U/v2/other/blobs/uploads/?mount=$Z&from=net" "${AB[@]}")"

# ---- manifests: push ------------------------------------------------------------------------
mkman() { # mkman LAYER_FILE [CONFIG_DIGEST CONFIG_SIZE] -> manifest JSON on stdout
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.pemn.package.v1","digest":"%s","size":%s}]}' \
        "${2:-$ED}" "${3:-2}" "$(sha "$1")" "$(stat -c %s "$1")"
}
MT='Content-Type: application/vnd.oci.image.manifest.v1+json'
mkman "$P" >"$D/m2.json"
check_eq "PUT manifest by version label: 201" 201 \
    "$(req PUT "$U/v2/net/manifests/2.0.0" "${AB[@]}" -H "$MT" --data-binary "@$D/m2.json")"
check_eq "PUT manifest: Docker-Content-Digest" "$(sha "$D/m2.json")" "$(hdr Docker-Content-Digest)"
check_eq "the package became version 2.0.0" 200 "$(http_status GET "$U/v1/models/net/versions/2.0.0")"
check_eq "GET it back: the bytes as sent" "$(sha "$D/m2.json")" "$(req GET "$U/v2/net/manifests/2.0.0" >/dev/null; sha "$T_TMP/body")"
check_eq "re-PUT the same manifest: 201 (idempotent)" 201 \
    "$(req PUT "$U/v2/net/manifests/2.0.0" "${AB[@]}" -H "$MT" --data-binary "@$D/m2.json")"
check_eq "PUT a manifest as tag 'prod': 201" 201 \
    "$(req PUT "$U/v2/net/manifests/prod" "${AB[@]}" -H "$MT" --data-binary "@$D/m2.json")"
check_eq "the OCI tag is a pemn tag" 2.0.0 "$(curl -s "$U/v1/models/net/tags/prod" | jq -r .version)"
"$PEMN_MKPKG" pack "$K/alice.key" net 3.0.0 3 20000 "$K/n3.pemn" 3
curl -s -o /dev/null -X POST "${AB[@]}" --data-binary "@$K/n3.pemn" "$U/v2/net/blobs/uploads/?digest=$(sha "$K/n3.pemn")"
mkman "$K/n3.pemn" >"$D/m3.json"
check_eq "PUT naming another version's label: 400 MANIFEST_INVALID (name_mismatch)" \
    "400 MANIFEST_INVALID name_mismatch" \
    "$(req PUT "$U/v2/net/manifests/1.0.0" "${AB[@]}" -H "$MT" --data-binary "@$D/m3.json") $(code) $(jq -r '.errors[0].detail.pemn_code' "$T_TMP/body")"
check_eq "... and 3.0.0 was not stored" 404 "$(http_status GET "$U/v1/models/net/versions/3.0.0")"
check_eq "PUT by the wrong digest: 400 DIGEST_INVALID" "400 DIGEST_INVALID" \
    "$(req PUT "$U/v2/net/manifests/$Z" "${AB[@]}" -H "$MT" --data-binary "@$D/m3.json") $(code)"
check_eq "PUT by its digest: 201" 201 \
    "$(req PUT "$U/v2/net/manifests/$(sha "$D/m3.json")" "${AB[@]}" -H "$MT" --data-binary "@$D/m3.json")"
mkman "$K/other-1.pemn" >"$D/mo.json"
check_eq "manifest whose layer was never pushed: 400 MANIFEST_BLOB_UNKNOWN" "400 MANIFEST_BLOB_UNKNOWN" \
    "$(req PUT "$U/v2/other/manifests/1" "${AB[@]}" -H "$MT" --data-binary "@$D/mo.json") $(code)"
curl -s -o /dev/null -X POST "${AB[@]}" --data-binary "@$K/other-1.pemn" "$U/v2/other/blobs/uploads/?digest=$(sha "$K/other-1.pemn")"
check_eq "a package of another model pushed to net: 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
    "$(req PUT "$U/v2/net/manifests/x" "${AB[@]}" -H "$MT" --data-binary "@$D/mo.json") $(code)"
check_eq "the same manifest in its own repository: 201" 201 \
    "$(req PUT "$U/v2/other/manifests/1" "${AB[@]}" -H "$MT" --data-binary "@$D/mo.json")"
echo '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}' >"$D/idx.json"
check_eq "an image index: 415 UNSUPPORTED" "415 UNSUPPORTED" \
    "$(req PUT "$U/v2/net/manifests/idx" "${AB[@]}" -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$D/idx.json") $(code)"
echo 'not json' >"$D/bad.json"
check_eq "malformed manifest: 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
    "$(req PUT "$U/v2/net/manifests/bad" "${AB[@]}" -H "$MT" --data-binary "@$D/bad.json") $(code)"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":2}]}' "$ED" "$ED" >"$D/img.json"
check_eq "not a PEMN artifact: 400 MANIFEST_INVALID" "400 MANIFEST_INVALID" \
    "$(req PUT "$U/v2/net/manifests/img" "${AB[@]}" -H "$MT" --data-binary "@$D/img.json") $(code)"
check_eq "Content-Type differing from mediaType: 400" 400 \
    "$(req PUT "$U/v2/net/manifests/ct" "${AB[@]}" -H 'Content-Type: application/json' --data-binary "@$D/m2.json")"

# ---- tags list, referrers, catalog, delete --------------------------------------------------
check_eq "tags/list: versions, tags and latest, sorted" '["1.0.0","2.0.0","3.0.0","latest","prod"]' \
    "$(req GET "$U/v2/net/tags/list" >/dev/null; jq -c .tags "$T_TMP/body")"
check_eq "tags/list n=2: first page" '["1.0.0","2.0.0"]' "$(req GET "$U/v2/net/tags/list?n=2" >/dev/null; jq -c .tags "$T_TMP/body")"
check_eq "tags/list n=2: Link to the next page" '</v2/net/tags/list?n=2&last=2.0.0>; rel="next"' "$(hdr Link)"
check_eq "tags/list n=2&last=2.0.0: second page" '["3.0.0","latest"]' \
    "$(req GET "$U/v2/net/tags/list?n=2&last=2.0.0" >/dev/null; jq -c .tags "$T_TMP/body")"
check_eq "tags/list last page: no Link" "" "$(req GET "$U/v2/net/tags/list?n=2&last=latest" >/dev/null; hdr Link)"
check_eq "tags/list bad n: 400" 400 "$(req GET "$U/v2/net/tags/list?n=abc")"
check_eq "referrers: 200 empty image index" '200 application/vnd.oci.image.index.v1+json []' \
    "$(req GET "$U/v2/net/referrers/$MD") $(hdr Content-Type) $(jq -c .manifests "$T_TMP/body")"
check_eq "referrers of an unknown subject: empty index" '200 []' \
    "$(req GET "$U/v2/net/referrers/$Z") $(jq -c .manifests "$T_TMP/body")"
check_eq "catalog lists the repositories" '["net","other"]' "$(req GET "$U/v2/_catalog" >/dev/null; jq -c .repositories "$T_TMP/body")"
check_eq "DELETE a tag: 202" 202 "$(req DELETE "$U/v2/net/manifests/prod" "${AB[@]}")"
check_eq "the pemn tag is gone" 404 "$(http_status GET "$U/v1/models/net/tags/prod")"
check_eq "DELETE a version: 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req DELETE "$U/v2/net/manifests/1.0.0" "${AB[@]}") $(code)"
check_eq "DELETE by digest: 405 UNSUPPORTED" "405 UNSUPPORTED" "$(req DELETE "$U/v2/net/manifests/$MD" "${AB[@]}") $(code)"

# ---- reads closed ----------------------------------------------------------------------------
pemnd_stop
pemnd_start_on "$D/run" "$PEMND_PORT" --read-token-required true --cache-size 0 \
    --cache-item-max 0 || { fail "restart"; exit 1; }
check_eq "reads closed: anonymous manifest GET 401" "401 UNAUTHORIZED" "$(req GET "$U/v2/net/manifests/1.0.0") $(code)"
check_eq "reads closed: Basic read token 200" 200 "$(req GET "$U/v2/net/manifests/1.0.0" -u "r:$READ")"
check_eq "versions survive a restart with their manifests" "$MD" "$(hdr Docker-Content-Digest)"
# without a blob cache the layer is streamed out of the store for the push checks
"$PEMN_MKPKG" pack "$K/alice.key" net 4.0.0 4 150000 "$K/n4.pemn" 9
check_eq "no cache: monolithic blob upload" 201 \
    "$(req POST "$U/v2/net/blobs/uploads/?digest=$(sha "$K/n4.pemn")" "${AB[@]}" --data-binary "@$K/n4.pemn")"
mkman "$K/n4.pemn" >"$D/m4.json"
check_eq "no cache: PUT manifest runs the push checks, 201" 201 \
    "$(req PUT "$U/v2/net/manifests/4.0.0" "${AB[@]}" -H "$MT" --data-binary "@$D/m4.json")"
check_eq "no cache: 4.0.0 is a version" 200 "$(http_status GET "$U/v1/models/net/versions/4.0.0" -u "r:$READ")"
t_done
