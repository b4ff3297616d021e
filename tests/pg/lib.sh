#!/usr/bin/env bash
# tests/pg/lib.sh: a throwaway PostgreSQL 15 for the tests (TESTING.md, "PostgreSQL 15").
#
#   . tests/pg/lib.sh; pg_start || exit 77   # sets PGTMP, PGPORT, PGHOST, PG_URL
#   pg_createdb NAME                         # prints postgresql://... for a new database
#   pg_restart                                # stop and start again on the same port
#   pg_stop
#
# As a command: `tests/pg/lib.sh start` prints "PGTMP=... PGPORT=... PG_URL=..." lines for a
# caller in another language (tests/platform/lib.mjs) and leaves the server running;
# `tests/pg/lib.sh stop DIR` stops it and removes DIR; `restart DIR PORT`, `halt DIR` and
# `resume DIR PORT` stop and start the server without losing its data.
#
# initdb runs as the postgres user the Debian package creates when we are root (PostgreSQL
# refuses to run as root), into a temporary folder it owns; the server listens on 127.0.0.1
# at a free port and on a unix socket in that folder, with trust authentication on loopback
# and the socket only. pg_start returns 77 (skip) with a SKIP line when the PostgreSQL server
# binaries are absent, and fails on any other problem.
pg_bindir() {
    local d
    for d in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 &&
        { dirname "$(command -v initdb)"; return 0; }
    return 1
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    local bin
    if ! bin=$(pg_bindir) || ! command -v psql >/dev/null 2>&1; then
        echo "SKIP: PostgreSQL server binaries (initdb, pg_ctl) or psql not found; install postgresql (scripts/install-deps.sh --test)"
        return 77
    fi
    PG_BIN=$bin
    PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/rtd-pg.XXXXXX") || return 1
    chmod 755 "$PGTMP"
    [ "$(id -u)" -eq 0 ] && chown postgres "$PGTMP"
    _pg_as "$bin/initdb" -D "$PGTMP/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C >"$PGTMP/initdb.log" 2>&1 || { cat "$PGTMP/initdb.log" >&2; return 1; }
    # trust on the socket and on loopback only
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$PGTMP/data/pg_hba.conf"
    PGPORT=$(pg_free_port)
    _pg_start_server || return 1
    export PGHOST=$PGTMP PGPORT PGUSER=postgres
    PG_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"
    export PG_URL PGTMP PG_BIN
}

_pg_start_server() {
    _pg_as "$PG_BIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 \
        -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-on} -c max_connections=200" \
        start >/dev/null || { cat "$PGTMP/server.log" >&2; return 1; }
}

pg_restart() {
    _pg_as "$PG_BIN/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null && _pg_start_server
}

# pg_createdb NAME: a new empty database; prints its URL.
pg_createdb() {
    psql -q -h "$PGTMP" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$1\"" >/dev/null || return 1
    echo "postgresql://postgres@127.0.0.1:$PGPORT/$1"
}

pg_stop() {
    [ -n "${PGTMP:-}" ] && [ -d "$PGTMP/data" ] || return 0
    local bin=${PG_BIN:-$(pg_bindir)}
    _pg_as "$bin/pg_ctl" -D "$PGTMP/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$PGTMP"
    PGTMP=
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    case "${1:-}" in
    start)
        pg_start || exit $?
        echo "PGTMP=$PGTMP"
        echo "PGPORT=$PGPORT"
        echo "PG_URL=$PG_URL"
        ;;
    stop) PGTMP=$2; pg_stop ;;
    restart) PGTMP=$2; PGPORT=$3; PG_BIN=$(pg_bindir); pg_restart ;;
    halt) PG_BIN=$(pg_bindir); _pg_as "$PG_BIN/pg_ctl" -D "$2/data" -m fast -w stop >/dev/null ;;
    resume) PGTMP=$2; PGPORT=$3; PG_BIN=$(pg_bindir); _pg_start_server ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
    esac
fi
