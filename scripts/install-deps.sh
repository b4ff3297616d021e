#!/usr/bin/env bash
# install-deps.sh: installs what the build and the tests need and is missing: Debian packages
# with apt-get, the Node.js test packages with `npm ci` from tests/package-lock.json.
# Safe to run again; it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential autoconf automake libtool autoconf-archive pkg-config
  libmicrohttpd-dev libjson-c-dev libsqlite3-dev libssl-dev libcmocka-dev
  libfcgi-dev libctemplate-dev libcrypt-dev libjwt-dev libhiredis-dev libmsgpack-dev
  sqlite3 nginx curl ca-certificates
)
# Test-only tools: a browser for the admin pages, clang for the fuzz targets, valgrind,
# redis-server for the cluster tests.
if [ "${1:-}" = "--test" ]; then
  PACKAGES+=(chromium clang valgrind redis-server redis-tools)
fi
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Node.js packages for the tests and the test page's browser client, pinned by the lockfile.
if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
