#!/usr/bin/env bash
# run.sh: sets up and runs the whole platform on this machine: installs what is missing,
# builds, then starts rtd (Socket.IO on port 3001, test page at http://localhost:3001/),
# admin-fcgi and nginx (http://localhost:8080/ and http://localhost:8080/admin), all on
# one database in ./run/. Ctrl-C stops everything.
#   PORT (8080), RTD_PORT (3001), RUN_DIR (./run), RTD_FLAGS, ADMIN_FLAGS may be set.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh
scripts/build.sh
export RUN_DIR=${RUN_DIR:-$top/run}
mkdir -p "$RUN_DIR"
export DB=${DB:-$RUN_DIR/socket_events.db}
export RTD_BIN=$top/build/rtd/rtd
if [ -t 0 ] && [ ! -f "$RUN_DIR/.admin-created" ]; then
  echo "run: no admin yet. Create one with:"
  echo "  build/admin-fcgi/admin-fcgi --db $DB --create-admin admin"
fi
echo "run: rtd test page on http://localhost:${RTD_PORT:-3001}/ (also /test.html on port ${PORT:-8080})"
exec scripts/run-admin-stack.sh "$top/build"
