# lib.sh: shell helpers of admin-fcgi's end-to-end tests (sourced, not run): start
# admin-fcgi on a unix socket and nginx on a free loopback port with a generated config in
# a temporary folder, wait for them, and stop them (reporting how they exited).
#
# Needs: srcdir (set by `make check`; defaults to the repository), the build folder as the
# current directory. Sets: T (temp folder), DB, PORT, BASE (http://127.0.0.1:PORT).

: "${srcdir:=$(dirname "$0")/../..}"
srcdir=$(cd "$srcdir" && pwd)
ADMIN_BIN=${ADMIN_BIN:-$PWD/admin-fcgi/admin-fcgi}
SEED_BIN=${SEED_BIN:-$PWD/tools/admin-seed}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

log() { echo "# $*" >&2; }

# Checks, one line each: "ok - ..." or "not ok - ..."; fails counts the second kind.
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
expect() { # expect NAME WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (wanted '$2', got '$3')"; fi
}
contains() { # contains NAME FILE TEXT
    if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1 ('$3' not in $2)"; fi
}
icontains() { # the same, ignoring case (header names)
    if grep -qiF -- "$3" "$2"; then ok "$1"; else bad "$1 ('$3' not in $2)"; fi
}

need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "$tool" ]; then
            log "SKIP: $tool is not installed"
            exit 77
        fi
    done
}

stack_tmp() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/admin-e2e.XXXXXX")
    DB=$T/platform.db
    mkdir -p "$T/nginx-tmp"
}

# wait_for CMD...: retries CMD for up to 10 s.
wait_for() {
    i=0
    until "$@" 2>/dev/null; do
        i=$((i + 1))
        [ $i -ge 100 ] && return 1
        sleep 0.1
    done
}

start_admin() { # extra admin-fcgi flags...
    "$ADMIN_BIN" --db "$DB" --listen "$T/admin.sock" --templates "$srcdir/templates" \
        --workers 2 "$@" 2>"$T/admin-fcgi.log" &
    ADMIN_PID=$!
    if ! wait_for test -S "$T/admin.sock"; then
        log "admin-fcgi did not create its socket:"; cat "$T/admin-fcgi.log" >&2
        return 1
    fi
}

# start_nginx [RTD_PORT]: nginx on a free port (tries random ports until one binds).
start_nginx() {
    tries=0
    while [ $tries -lt 20 ]; do
        tries=$((tries + 1))
        PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        sh "$srcdir/scripts/admin-nginx-conf.sh" "$T" "$PORT" "$T/admin.sock" \
            "$srcdir/static" "${1:-9}" > "$T/nginx.conf"
        : > "$T/nginx-error.log"
        if "$NGINX" -p "$T" -c "$T/nginx.conf" -e "$T/nginx-error.log" 2>>"$T/nginx-error.log"; then
            if wait_for test -s "$T/nginx.pid"; then
                BASE=http://127.0.0.1:$PORT
                return 0
            fi
        fi
        grep -q "Address already in use" "$T/nginx-error.log" && continue
        log "nginx did not start:"; cat "$T/nginx-error.log" >&2
        return 1
    done
    log "no free port found for nginx"
    return 1
}

stop_stack() {
    if [ -s "$T/nginx.pid" ]; then
        npid=$(cat "$T/nginx.pid")
        kill -QUIT "$npid" 2>/dev/null || true
        if wait_for sh -c "! kill -0 $npid"; then log "nginx stopped"; else
            log "nginx did not stop; killing it"; kill -KILL "$npid" 2>/dev/null || true
        fi
    fi
    if [ -n "${ADMIN_PID:-}" ]; then
        kill -TERM "$ADMIN_PID" 2>/dev/null || true
        status=0
        wait "$ADMIN_PID" || status=$?
        log "admin-fcgi stopped (exit status $status)"
        [ $status -eq 0 ] || cat "$T/admin-fcgi.log" >&2
        ADMIN_PID=
    fi
    if [ -n "${KEEP_TMP:-}" ]; then log "kept $T"; else rm -rf "$T"; fi
}
