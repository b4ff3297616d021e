#!/usr/bin/env bash
# run.sh: set up and run the platform on this machine: installs what is missing, builds, and
# starts rtd on port 3001 (with the test page at http://localhost:3001/). Ctrl-C stops it.
#   RTD_PORT (3001), RUN_DIR (./run) may be set in the environment.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/install-deps.sh
scripts/build.sh
run=${RUN_DIR:-$top/run}
mkdir -p "$run"
port=${RTD_PORT:-3001}
client_js="$top/tests/node_modules/socket.io-client/dist/socket.io.min.js"
echo "rtd: http://localhost:$port/ (test page), database $run/socket_events.db"
exec "$top/build/rtd/rtd" --port "$port" --db "$run/socket_events.db" \
  --static-dir "$top/static" --client-js "$client_js"
