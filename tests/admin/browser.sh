#!/bin/sh
# browser.sh: runs browser.test.mjs (headless Chromium driven by playwright-core) against
# admin-fcgi behind a real nginx, and rtd behind the same nginx when RTD_BIN names an rtd
# binary. Screenshots go to tests/out/admin-browser/ in the build folder.
# Skips (77) when Node, Chromium, nginx or the tests' npm packages are missing.
set -eu
. "$(dirname "$0")/lib.sh"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
need node curl "$NGINX" "$ADMIN_BIN" "$SEED_BIN" "$CHROMIUM"
if [ ! -d "$srcdir/tests/node_modules/playwright-core" ] ||
   [ ! -d "$srcdir/tests/node_modules/socket.io-client" ]; then
    log "SKIP: run 'npm ci' in tests/ first (playwright-core, socket.io-client)"
    exit 77
fi

stack_tmp
RTD_PID=
stop_all() {
    if [ -n "$RTD_PID" ]; then
        kill -TERM "$RTD_PID" 2>/dev/null || true
        status=0
        wait "$RTD_PID" || status=$?
        log "rtd stopped (exit status $status)"
        [ $status -eq 0 ] || cat "$T/rtd.log" >&2
    fi
    stop_stack
}
trap stop_all EXIT INT TERM

"$SEED_BIN" --db "$DB" fill --connections 300 --messages 3000 --days 30 --active 4 2>/dev/null
"$SEED_BIN" --db "$DB" status running
ADMIN_USER=browser ADMIN_PASSWORD='browser test password'
printf '%s\n' "$ADMIN_PASSWORD" | "$ADMIN_BIN" --db "$DB" --create-admin "$ADMIN_USER" 2>/dev/null

RTD_URL= RTD_PORT=9
if [ -n "${RTD_BIN:-}" ] && [ -x "${RTD_BIN:-}" ]; then
    tries=0
    while [ $tries -lt 20 ] && [ -z "$RTD_URL" ]; do
        tries=$((tries + 1))
        RTD_PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        "$RTD_BIN" --port "$RTD_PORT" --db "$DB" >"$T/rtd.log" 2>&1 &
        RTD_PID=$!
        probe="http://127.0.0.1:$RTD_PORT/socket.io/?EIO=4&transport=polling"
        if wait_for curl -sf -o /dev/null "$probe"; then
            RTD_URL=http://127.0.0.1:$RTD_PORT
        else
            kill "$RTD_PID" 2>/dev/null || true; wait "$RTD_PID" 2>/dev/null || true; RTD_PID=
        fi
    done
    [ -n "$RTD_URL" ] || { log "rtd did not start:"; cat "$T/rtd.log" >&2; exit 1; }
    log "rtd on $RTD_URL"
else
    log "RTD_BIN not set or not executable: the socket.io part of the browser test is skipped"
fi

start_admin --refresh 1
start_nginx "$RTD_PORT"
log "site on $BASE"

OUT_DIR=$PWD/tests/out/admin-browser
mkdir -p "$OUT_DIR"
export BASE DB SEED_BIN ADMIN_USER ADMIN_PASSWORD RTD_URL OUT_DIR CHROMIUM
node "$srcdir/tests/admin/browser.test.mjs"
