#!/usr/bin/env bash
# Hardening item 5: with read_token_required, no response says a shared cache may keep it:
# blob bytes are `private, max-age=31536000, immutable`, JSON and by-version routes
# `private, no-cache`. Without it blobs stay `public` (the nginx cache example relies on it).
. "$(dirname "$0")/lib.sh"
K="$T_TMP/keys"
mkdir -p "$K"
"$PEMN_MKPKG" keygen "$K/alice" >/dev/null || { fail "keygen"; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 4096 "$K/a.pemn" 1 >/dev/null
cc() { curl -s -D - -o /dev/null "$@" | tr -d '\r' | sed -n 's/^[Cc]ache-[Cc]ontrol: //p'; }

pemnd_start "$T_TMP/private" --read-token-required || { fail "pemnd starts"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
RD=$(pemnd_token read reader)
A=(-H "Authorization: Bearer $PUB")
check_eq "push" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/1.0.0" "${A[@]}" --data-binary "@$K/a.pemn")"
D=$(json_get "$T_TMP/body" digest)
R=(-H "Authorization: Bearer $RD")
check_eq "private: blob is private" "private, max-age=31536000, immutable" "$(cc "${R[@]}" "$PEMND_URL/v1/blobs/$D")"
check_eq "private: blob again (response cache) is private" "private, max-age=31536000, immutable" "$(cc "${R[@]}" "$PEMND_URL/v1/blobs/$D")"
check_eq "private: blob range is private" "private, max-age=31536000, immutable" "$(cc "${R[@]}" -H 'Range: bytes=0-9' "$PEMND_URL/v1/blobs/$D")"
check_eq "private: package by version is private" "private, no-cache" "$(cc "${R[@]}" "$PEMND_URL/v1/models/net/versions/1.0.0/package")"
check_eq "private: model JSON is private" "private, no-cache" "$(cc "${R[@]}" "$PEMND_URL/v1/models/net")"
check_eq "private: no token, 401" 401 "$(http_status GET "$PEMND_URL/v1/blobs/$D")"
pemnd_stop

pemnd_start "$T_TMP/public" || { fail "pemnd starts (public)"; exit 1; }
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
check_eq "push (public)" 201 "$(http_status PUT "$PEMND_URL/v1/models/net/versions/1.0.0" -H "Authorization: Bearer $PUB" --data-binary "@$K/a.pemn")"
check_eq "public: blob is public" "public, max-age=31536000, immutable" "$(cc "$PEMND_URL/v1/blobs/$D")"
check_eq "public: model JSON is no-cache" "no-cache" "$(cc "$PEMND_URL/v1/models/net")"
t_done
