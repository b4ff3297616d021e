#!/bin/sh
# bench-admin.sh: admin-fcgi's benchmark (the figures in docs/BENCHMARKS.md, "admin-fcgi").
# Fills a database with 1 000 000 messages and 100 000 connections (rows and counters as
# rtd writes them; reused when it already exists) and times the dashboard and the history
# pages in-process (a warm FastCGI worker) and as CGI processes, then the full CSV export.
#
#   tools/bench-admin.sh [BUILD_DIR] [DB]     (defaults: ./build, /tmp/admin-bench-1m.db)
#   FILL=1 forces a fresh database; RUNS=200 sets the runs per page.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
db=${2:-${TMPDIR:-/tmp}/admin-bench-1m.db}
make -C "$build" -s admin-fcgi/admin-fcgi tools/admin-bench
echo "Machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores," \
     "$(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GB RAM"}'); $(uname -sr);" \
     "SQLite $(pkg-config --modversion sqlite3 2>/dev/null)"
"$build/tools/admin-bench" --db "$db" ${FILL:+--fill} --runs "${RUNS:-200}" \
    --templates "$src/templates" --cgi "$build/admin-fcgi/admin-fcgi"
