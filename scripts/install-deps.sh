#!/usr/bin/env bash
# install-deps.sh: installs what the build and the tests need and is missing: Debian packages
# with apt-get, the Node.js test packages with `npm ci` from tests/package-lock.json.
# Safe to run again; it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential autoconf automake libtool autoconf-archive pkg-config
  libmicrohttpd-dev libjson-c-dev libsqlite3-dev libpq-dev libssl-dev libcmocka-dev
  libfcgi-dev libctemplate-dev libcrypt-dev libjwt-dev libhiredis-dev libmsgpack-dev
  libcurl4-openssl-dev
  sqlite3 nginx curl ca-certificates
)
# Test-only tools: a browser for the admin pages, clang for the fuzz targets, valgrind,
# PostgreSQL (server and psql) for the tests that run the store on it, redis-server for the
# cluster tests.
# clang only recommends its libFuzzer and sanitizer runtimes (libclang_rt.*.a, in
# libclang-rt-N-dev), which the fuzz build links: add those of the installed clang's version,
# or, with clang still to install, libclang-rt-dev, which comes with clang from llvm-defaults
# and depends on the runtimes of the same version.
clang_rt_package() {
  local v
  v=$(clang --version 2>/dev/null | sed -n '1s/.*clang version \([0-9][0-9]*\)\..*/\1/p')
  if [ -n "$v" ]; then echo "libclang-rt-$v-dev"; else echo libclang-rt-dev; fi
}
clang_links_fuzzers() {
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
    clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null >/dev/null 2>&1
}
if [ "${1:-}" = "--test" ]; then
  PACKAGES+=(chromium clang valgrind postgresql postgresql-client redis-server)
  # Laravel mode's tests: Laravel's own RedisBroadcaster publishing and authorising (tests/laravel/)
  PACKAGES+=(php8.2-cli php-illuminate-broadcasting php-illuminate-redis php-illuminate-http php-predis)
  command -v clang >/dev/null 2>&1 && clang_links_fuzzers || PACKAGES+=("$(clang_rt_package)")
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

# The test packages (playwright-core 1.61) run on Node.js 18, Debian 12's.
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; then
  echo "install-deps: the tests need Node.js 18 or newer, this is $(node --version)" >&2
  exit 1
fi

# Node.js packages for the tests and the test page's browser client, pinned by the lockfile.
if [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
