# OCI helpers for integration tests (source after lib.sh): Debian's docker-registry (the CNCF
# distribution registry) on a free loopback port, and skopeo with private policy, auth file
# and registries.conf in $T_TMP so nothing touches the machine's configuration.

# registry_start DIR: starts docker-registry (no auth, storage in DIR/storage) on a free
# 127.0.0.1 port. Sets REG_HOST (127.0.0.1:PORT), REG_PID. Stopped by the EXIT trap.
registry_start() {
    local dir=$1 attempt i
    mkdir -p "$dir/storage"
    for attempt in 1 2 3 4 5; do
        local port
        port=$(free_port) || return 1
        cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
        /usr/bin/docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
        REG_PID=$!
        T_PIDS+=("$REG_PID")
        REG_HOST=127.0.0.1:$port
        for i in $(seq 1 100); do
            kill -0 "$REG_PID" 2>/dev/null || break
            if curl -s -o /dev/null --max-time 1 "http://$REG_HOST/v2/"; then
                return 0
            fi
            sleep 0.1
        done
        kill "$REG_PID" 2>/dev/null
    done
    return 1
}

# sk ARGS...: skopeo with a private policy (insecureAcceptAnything), registries.conf, auth
# file, HOME and tmpdir.
SK_DIR=$T_TMP/skopeo
mkdir -p "$SK_DIR/home" "$SK_DIR/tmp"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$SK_DIR/policy.json"
: >"$SK_DIR/registries.conf"
echo '{}' >"$SK_DIR/auth.json"
sk() {
    local cmd=$1
    shift
    HOME=$SK_DIR/home XDG_RUNTIME_DIR=$SK_DIR/home REGISTRY_AUTH_FILE=$SK_DIR/auth.json \
        TMPDIR=$SK_DIR/tmp timeout 60 skopeo --policy "$SK_DIR/policy.json" \
        --registries-conf "$SK_DIR/registries.conf" "$cmd" --authfile "$SK_DIR/auth.json" "$@"
}
# sk_copy SRC DST [ARGS...]: skopeo copy without TLS on either side.
sk_copy() {
    local src=$1 dst=$2
    shift 2
    sk copy -q --src-tls-verify=false --dest-tls-verify=false "$@" "$src" "$dst"
}

# oci_layout DIR TAG PKG [CONFIG_TYPE]: writes an OCI image layout holding one manifest whose
# single layer is the raw package PKG (ORAS style: an empty JSON config by default). Prints
# the manifest digest.
oci_layout() {
    local dir=$1 tag=$2 pkg=$3 ctype=${4:-application/vnd.oci.empty.v1+json}
    mkdir -p "$dir/blobs/sha256"
    local ld ls cd md ms
    ld=$(sha256sum "$pkg" | cut -d' ' -f1)
    ls=$(stat -c %s "$pkg")
    cp "$pkg" "$dir/blobs/sha256/$ld"
    printf '{}' >"$dir/cfg"
    cd=$(sha256sum "$dir/cfg" | cut -d' ' -f1)
    mv "$dir/cfg" "$dir/blobs/sha256/$cd"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.pemn.package.v1","config":{"mediaType":"%s","digest":"sha256:%s","size":2},"layers":[{"mediaType":"application/vnd.pemn.package.v1","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"%s"}}]}' \
        "$ctype" "$cd" "$ld" "$ls" "$(basename "$pkg")" >"$dir/m"
    md=$(sha256sum "$dir/m" | cut -d' ' -f1)
    ms=$(stat -c %s "$dir/m")
    mv "$dir/m" "$dir/blobs/sha256/$md"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
        "$md" "$ms" "$tag" >"$dir/index.json"
    echo "sha256:$md"
}

# proxy_start DIR UPSTREAM [ARGS...]: tests/tools/oci_proxy.py in front of UPSTREAM
# (HOST:PORT). Sets PROXY_HOST. Stopped by the EXIT trap.
proxy_start() {
    local dir=$1 up=$2 i
    shift 2
    mkdir -p "$dir"
    rm -f "$dir/port"
    /usr/bin/python3 "$PEMN_ROOT/tests/tools/oci_proxy.py" --upstream "$up" \
        --port-file "$dir/port" "$@" >>"$dir/proxy.log" 2>&1 &
    T_PIDS+=("$!")
    for i in $(seq 1 100); do
        [ -s "$dir/port" ] && break
        sleep 0.1
    done
    [ -s "$dir/port" ] || return 1
    PROXY_HOST=127.0.0.1:$(cat "$dir/port")
}
