#!/usr/bin/env bash
# Installs the Debian 12 packages pemn needs to build, test, run and benchmark.
# Idempotent: asks dpkg what is present and calls apt-get only when something is missing.
#   deploy/install-deps.sh          install what is missing
#   deploy/install-deps.sh --check  exit 1 (and list them) when something is missing
set -euo pipefail

PKGS=(
    build-essential pkg-config
    libmicrohttpd-dev libsqlite3-dev sqlite3 libsodium-dev libjansson-dev
    libcurl4-openssl-dev curl jq zlib1g-dev libopenblas-dev libcmocka-dev
    dataset-fashion-mnist
    clang clang-format libclang-rt-14-dev valgrind
    wrk nginx-light jq
    libpq-dev postgresql-15
    skopeo docker-registry
    chromium chromium-driver python3-selenium
    python3-numpy python3-torch python3-pytest
    xz-utils
    time
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root or sudo" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx, PostgreSQL and the registry are test and benchmark peers only: tests start their own
# throwaway instances, so do not leave the distribution's services running.
for svc in nginx postgresql docker-registry; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
