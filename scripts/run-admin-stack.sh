#!/bin/sh
# run-admin-stack.sh: runs the platform locally: admin-fcgi on a unix socket and nginx
# (Debian's package, as the current user) on port 8080 with a config generated into the
# run folder, proxying /socket.io/ to rtd. Stops everything on Ctrl-C.
#
#   scripts/run-admin-stack.sh [BUILD_DIR]        (default: ./build, then the source tree)
#
# Environment (all optional):
#   PORT=8080           nginx's port (127.0.0.1 only; BIND=0.0.0.0 to open it)
#   RUN_DIR=./run       pid files, logs, sockets, nginx temp files, the generated config
#   DB=$RUN_DIR/platform.db
#   RTD_PORT=3001       where /socket.io/ is proxied
#   RTD_BIN=...         an rtd binary to start on RTD_PORT (see start_rtd below)
#   RTD_FLAGS=...       extra rtd flags, e.g. "--log-level debug"
#   ADMIN_FLAGS=...     extra admin-fcgi flags, e.g. "--launch-date 2027-03-01"
#
# Then open http://localhost:8080/ and http://localhost:8080/admin. Create the first admin:
#   BUILD_DIR/admin-fcgi/admin-fcgi --db run/platform.db --create-admin NAME
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-}
if [ -z "$build" ]; then
    for d in "$src/build" "$src"; do
        [ -x "$d/admin-fcgi/admin-fcgi" ] && { build=$d; break; }
    done
fi
ADMIN_BIN=${ADMIN_BIN:-${build:+$build/admin-fcgi/admin-fcgi}}
[ -n "$ADMIN_BIN" ] && [ -x "$ADMIN_BIN" ] ||
    { echo "run-admin-stack: build admin-fcgi first (or pass the build folder)" >&2; exit 1; }
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] ||
    { echo "run-admin-stack: nginx is not installed (apt-get install nginx)" >&2; exit 1; }

PORT=${PORT:-8080}
BIND=${BIND:-127.0.0.1}
RUN_DIR=$(mkdir -p "${RUN_DIR:-$src/run}" && cd "${RUN_DIR:-$src/run}" && pwd)
DB=${DB:-$RUN_DIR/platform.db}
RTD_PORT=${RTD_PORT:-3001}
SOCK=$RUN_DIR/admin-fcgi.sock
mkdir -p "$RUN_DIR/nginx-tmp"

pids=
stop() {
    trap - EXIT INT TERM
    [ -s "$RUN_DIR/nginx.pid" ] && kill -QUIT "$(cat "$RUN_DIR/nginx.pid")" 2>/dev/null || true
    for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    echo "run-admin-stack: stopped"
}
trap stop EXIT INT TERM

# Hook: start rtd on RTD_PORT with the shared database. Replace or extend as rtd grows
# flags; everything else here only needs the port.
start_rtd() {
    if [ -n "${RTD_BIN:-}" ] && [ -x "$RTD_BIN" ]; then
        client_js=$src/tests/node_modules/socket.io-client/dist/socket.io.min.js
        # shellcheck disable=SC2086
        "$RTD_BIN" --port "$RTD_PORT" --db "$DB" --static-dir "$src/static" \
            $( [ -f "$client_js" ] && echo "--client-js $client_js" ) ${RTD_FLAGS:-} \
            >>"$RUN_DIR/rtd.log" 2>&1 &
        pids="$pids $!"
        echo "run-admin-stack: rtd on 127.0.0.1:$RTD_PORT (log $RUN_DIR/rtd.log)"
    else
        echo "run-admin-stack: rtd not started (set RTD_BIN);" \
             "/socket.io/ goes to 127.0.0.1:$RTD_PORT"
    fi
}

start_rtd
# shellcheck disable=SC2086
"$ADMIN_BIN" --db "$DB" --listen "$SOCK" --templates "$src/templates" ${ADMIN_FLAGS:-} \
    2>>"$RUN_DIR/admin-fcgi.log" &
pids="$pids $!"
i=0
until [ -S "$SOCK" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "run-admin-stack: admin-fcgi did not start; see $RUN_DIR/admin-fcgi.log" >&2
        exit 1
    fi
    sleep 0.1
done

sh "$src/scripts/admin-nginx-conf.sh" "$RUN_DIR" "$PORT" "$SOCK" "$src/static" "$RTD_PORT" \
    "$BIND" > "$RUN_DIR/nginx.conf"
"$NGINX" -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" -e "$RUN_DIR/nginx-error.log" ||
    { echo "run-admin-stack: nginx failed; see $RUN_DIR/nginx-error.log" >&2; exit 1; }

cat <<MSG
run-admin-stack: serving on http://localhost:$PORT/ and http://localhost:$PORT/admin
  database  $DB
  logs      $RUN_DIR/*.log
  first admin: $ADMIN_BIN --db $DB --create-admin NAME   (type the password)
Ctrl-C stops everything.
MSG
wait
