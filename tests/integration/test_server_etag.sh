#!/usr/bin/env bash
# JSON routes carry a strong ETag over their bytes and Cache-Control: no-cache; a GET with a
# matching If-None-Match answers 304 with no body; any change to the resource changes the ETag.
. "$(dirname "$0")/lib.sh"
K="$T_TMP/keys"
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 4096 "$K/a.pemn" 1 >/dev/null
"$PEMN_MKPKG" pack "$K/alice.key" net 1.1.0 2 4096 "$K/b.pemn" 2 >/dev/null
pemnd_start "$T_TMP/run" || { fail "pemnd starts"; exit 1; }
U=$PEMND_URL
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
AP=(-H "Authorization: Bearer $PUB")
check_eq "push 1.0.0" 201 "$(http_status PUT "$U/v1/models/net/versions/1.0.0" "${AP[@]}" --data-binary "@$K/a.pemn")"

# headers of a GET: ETag (quoted, 32 hex) and Cache-Control
hdr() { curl -s -D - -o "$T_TMP/body" "$@" | tr -d '\r'; }
h=$(hdr "$U/v1/models/net")
etag=$(printf '%s\n' "$h" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check "model GET has a strong ETag" bash -c "[[ '$etag' =~ ^\\\"[0-9a-f]{32}\\\"$ ]]"
check "model GET says Cache-Control: no-cache" bash -c "printf '%s\n' \"\$1\" | grep -qi '^cache-control: no-cache'" _ "$h"
check_eq "same resource, same ETag" "$etag" "$(hdr "$U/v1/models/net" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')"

check_eq "If-None-Match with the ETag: 304" 304 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: $etag")"
check_eq "304 has no body" 0 "$(wc -c <"$T_TMP/body")"
check_eq "weak form W/ matches too" 304 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: W/$etag")"
check_eq "in a list" 304 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: \"00\", $etag")"
check_eq "star matches" 304 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: *")"
check_eq "another ETag: 200" 200 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: \"0123\"")"
check_eq "unterminated quote: 200" 200 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: \"abc")"

# a change to the model (new version, new tag) changes its ETag
check_eq "push 1.1.0" 201 "$(http_status PUT "$U/v1/models/net/versions/1.1.0" "${AP[@]}" --data-binary "@$K/b.pemn")"
check_eq "after a push the old ETag no longer matches" 200 "$(http_status GET "$U/v1/models/net" -H "If-None-Match: $etag")"
e2=$(hdr "$U/v1/models/net" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check_eq "tag stable" 200 "$(http_status PUT "$U/v1/models/net/tags/stable" "${AP[@]}" -d '{"version":"1.0.0"}')"
e3=$(hdr "$U/v1/models/net" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check "a new tag changes the ETag" test "$e2" != "$e3"
te=$(hdr "$U/v1/models/net/tags/stable" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check_eq "tag GET revalidates" 304 "$(http_status GET "$U/v1/models/net/tags/stable" -H "If-None-Match: $te")"
check_eq "retag" 200 "$(http_status PUT "$U/v1/models/net/tags/stable" "${AP[@]}" -d '{"version":"1.1.0"}')"
check_eq "moved tag: 200 again" 200 "$(http_status GET "$U/v1/models/net/tags/stable" -H "If-None-Match: $te")"
check_eq "moved tag names 1.1.0" 1.1.0 "$(json_get "$T_TMP/body" version)"

# list, version and keys routes too; writes and errors carry no ETag
for p in /v1/models /v1/models/net/versions/1.0.0 /v1/keys; do
    e=$(hdr "$U$p" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
    check_eq "GET $p revalidates" 304 "$(http_status GET "$U$p" -H "If-None-Match: $e")"
done
check "a PUT reply has no ETag" bash -c "! curl -s -D - -o /dev/null -X PUT '$U/v1/models/net/tags/x' -H 'Authorization: Bearer $PUB' -d '{\"version\":\"1.0.0\"}' | grep -qi '^etag:'"
check "a 404 has no ETag" bash -c "! curl -s -D - -o /dev/null '$U/v1/models/none' | grep -qi '^etag:'"
t_done
