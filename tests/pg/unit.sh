#!/usr/bin/env bash
# tests/pg/unit.sh: runs tests/unit/test_store_pg against a throwaway PostgreSQL (lib.sh).
# Exit 77 (skipped) only when the PostgreSQL binaries are absent.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${TEST_STORE_PG:-./tests/unit/test_store_pg}
. "$here/lib.sh"
pg_start
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
trap pg_stop EXIT
RTD_TEST_PG_URL=$PG_URL "$bin"
