#!/usr/bin/env bash
# A fleet whose package lives in an OCI registry: PUT /v1/fleets/{fleet}/oci names the
# repository, the desired state carries it as package_url, `pemn agent` fetches the bytes from
# docker-registry and verifies them exactly as from pemnd (a tampered layer is refused and
# nothing is installed; an unknown source is a 404; bad locations are refused).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_oci.sh"

D=$T_TMP/ociagent
K=$D/k
mkdir -p "$K"
P=$PEMN_BIN
"$PEMN_MKPKG" keygen "$K/alice" || { fail keygen; exit 1; }
"$PEMN_MKPKG" pack "$K/alice.key" net 1.0.0 1 100000 "$K/net-1.pemn" 1
"$PEMN_MKPKG" pack "$K/alice.key" net 2.0.0 2 100000 "$K/net-2.pemn" 2
registry_start "$D/reg" || { fail "docker-registry starts"; exit 1; }
pemnd_start "$D/srv" || { fail "pemnd starts"; exit 1; }
U=$PEMND_URL
pemnd_admin key add "$K/alice.pub" --name alice >/dev/null
PUB=$(pemnd_token publish ci)
DEV=$(pemnd_admin token create --scope device --name dev --fleet edge | tail -n 1)
for v in 1 2; do
    curl -s -o /dev/null -X PUT -H "Authorization: Bearer $PUB" --data-binary "@$K/net-$v.pemn" \
        "$U/v1/models/net/versions/$v.0.0"
done
unset PEMN_TOKEN PEMN_OCI_USERNAME PEMN_OCI_PASSWORD
# the same packages in docker-registry (as a mirror would hold them)
"$P" push --plain-http -q "$K/net-1.pemn" "oci://$REG_HOST/mirror/net"
"$P" push --plain-http -q "$K/net-2.pemn" "oci://$REG_HOST/mirror/net"
AP=(-H "Authorization: Bearer $PUB")
check_eq "fleet created" 200 "$(http_status PUT "$U/v1/fleets/edge" "${AP[@]}" -d '{"model":"net","version":"1.0.0"}')"
check_eq "no OCI source yet: 404" 404 "$(http_status GET "$U/v1/fleets/edge/oci")"
check_eq "OCI source of an unknown fleet: 404" 404 \
    "$(http_status PUT "$U/v1/fleets/nope/oci" "${AP[@]}" -d "{\"location\":\"oci+http://$REG_HOST/mirror/net\"}")"
for bad in '{"location":"http://x/y"}' '{"location":"oci://x/Net"}' '{"location":"oci://x/y:tag"}' \
    '{"location":"oci://x/y","extra":1}' '{}' 'nope'; do
    check_eq "bad OCI source refused: $bad" 400 "$(http_status PUT "$U/v1/fleets/edge/oci" "${AP[@]}" -d "$bad")"
done
check_eq "a device token cannot set the source" 403 \
    "$(http_status PUT "$U/v1/fleets/edge/oci" -H "Authorization: Bearer $DEV" -d "{\"location\":\"oci+http://$REG_HOST/mirror/net\"}")"
check_eq "set the OCI source" 200 \
    "$(http_status PUT "$U/v1/fleets/edge/oci" "${AP[@]}" -d "{\"location\":\"oci+http://$REG_HOST/mirror/net\"}")"
check_eq "GET the source" "oci+http://$REG_HOST/mirror/net" "$(curl -s "$U/v1/fleets/edge/oci" | jq -r .location)"
http_status GET "$U/v1/fleets/edge/devices/d1/desired" -H "Authorization: Bearer $DEV" >/dev/null
check_eq "the desired state names the registry" "oci+http://$REG_HOST/mirror/net" "$(json_get "$T_TMP/body" package_url)"
agent() { "$P" agent --server "$U" --fleet edge --device "$1" --token "$DEV" --trust "$K/alice.pub" \
    --dir "$D/dev/$1" --once --quiet --timeout 20; }
check "agent installs 1.0.0 from the OCI registry" agent d1
check "... the running package is 1.0.0's bytes" cmp -s "$K/net-1.pemn" "$D/dev/d1/current/model.pemn"
check "pemnd served no package bytes to the agent" bash -c "! grep -q 'GET /v1/blobs' '$D/srv/pemnd.log'"
# tamper 2.0.0's layer in the registry, then roll out 2.0.0
LD=$(sha256sum "$K/net-2.pemn" | cut -d' ' -f1)
printf '\x42' | dd of="$D/reg/storage/docker/registry/v2/blobs/sha256/${LD:0:2}/$LD/data" bs=1 \
    seek=7000 conv=notrunc status=none
http_status PUT "$U/v1/fleets/edge" "${AP[@]}" -d '{"model":"net","version":"2.0.0"}' >/dev/null
agent d1 2>/dev/null
check_eq "a tampered layer in the registry is refused (digest, exit 8)" 8 $?
check "... and 1.0.0 keeps running" cmp -s "$K/net-1.pemn" "$D/dev/d1/current/model.pemn"
check_eq "the device reported the failure" failed \
    "$(curl -s "$U/v1/fleets/edge/devices/d1" | jq -r .state)"
check_eq "remove the source" 204 "$(http_status DELETE "$U/v1/fleets/edge/oci" "${AP[@]}")"
check "without it the agent fetches 2.0.0 from pemnd" agent d1
check "... 2.0.0 runs" cmp -s "$K/net-2.pemn" "$D/dev/d1/current/model.pemn"
t_done
