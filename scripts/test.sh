#!/usr/bin/env bash
# test.sh: runs every test of the project from a fresh clone: installs what is missing,
# builds, then runs
#   1. make check: the cmocka unit tests, admin-fcgi's routes, nginx end to end and the
#      headless-Chromium test of the admin site against a real rtd;
#   2. the Node.js integration tests: real socket.io-client 4.8 against the conformance
#      server (protocol) and against rtd (the platform's events, database, flags, signals);
#   3. the same again with a build under ASan and UBSan, and the platform tests with rtd
#      under valgrind;
#   4. a short run of every libFuzzer target (clang).
# Set QUICK=1 to skip 3 and 4, FUZZ_SECONDS to change the fuzzing length (default 15).
# What this machine has by chance hides a missing install step: `sudo scripts/fresh-root.sh`
# runs install-deps, the builds and QUICK=1 test.sh on a fresh Debian 12 root (debootstrap,
# chroot; about 2.5 minutes), as .ci/run does after this script.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh --test
scripts/build.sh
build=$top/build
status=0
step() { printf '\n==== %s\n' "$*"; }

step "make check"
RTD_BIN=$build/rtd/rtd make -C "$build" -j"$(nproc)" check || {
  status=1
  find "$build/tests" -name '*.log' -newer "$build/Makefile" -exec grep -l -E '^(FAIL|ERROR)' {} + |
    while read -r f; do echo "---- $f"; tail -n 60 "$f"; done
}

step "integration tests (socket.io-client 4.8 against the conformance server and rtd)"
suites=()
for d in js platform; do [ -d "tests/$d" ] && suites+=("$d/"); done
if [ "${#suites[@]}" -gt 0 ]; then
  (cd tests && CONFORMANCE_SERVER=$build/tests/conformance-server RTD_BIN=$build/rtd/rtd \
    node --test --test-reporter=spec --test-concurrency=2 "${suites[@]}") || status=1
fi

if [ "${QUICK:-0}" != 1 ]; then
  step "again under AddressSanitizer and UndefinedBehaviorSanitizer"
  asan=$top/build-asan
  BUILD_DIR=$asan scripts/build.sh --enable-sanitizers >/dev/null
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  make -C "$asan" -j"$(nproc)" check >/dev/null || {
    status=1
    grep -l -E '^(FAIL|ERROR)' "$asan"/tests/*/*.log 2>/dev/null | while read -r f; do tail -n 60 "$f"; done
  }
  if [ "${#suites[@]}" -gt 0 ]; then
    (cd tests && CONFORMANCE_SERVER=$asan/tests/conformance-server RTD_BIN=$asan/rtd/rtd \
      node --test --test-reporter=spec --test-concurrency=2 "${suites[@]}") || status=1
  fi
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [ "${QUICK:-0}" != 1 ] && [ -d tests/platform ] && command -v valgrind >/dev/null 2>&1; then
  step "the platform tests with rtd under valgrind (memcheck: errors and definite leaks fail)"
  (cd tests && RTD_VALGRIND=1 RTD_BIN=$build/rtd/rtd node --test --test-reporter=spec --test-concurrency=2 platform/) ||
    status=1
fi

if [ "${QUICK:-0}" != 1 ] && command -v clang >/dev/null 2>&1; then
  step "fuzz targets (${FUZZ_SECONDS:-15} s each)"
  BUILD_DIR=$top/build-fuzz scripts/build.sh CC=clang CXX=clang++ --enable-fuzzing \
    --disable-werror >/dev/null
  (cd "$top/build-fuzz" && "$top/tests/fuzz/run.sh" "${FUZZ_SECONDS:-15}") || status=1
fi

if [ "$status" -eq 0 ]; then step "all tests passed"; else step "SOME TESTS FAILED"; fi
exit "$status"
