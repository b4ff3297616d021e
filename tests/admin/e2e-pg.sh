#!/bin/bash
# e2e-pg.sh: admin-fcgi on PostgreSQL through a real nginx. A throwaway PostgreSQL 15
# (tests/pg/lib.sh), two rtd nodes writing it (their heartbeats, and messages sent by a
# long-polling client made of curl, after older history seeded with SQL the way rtd writes
# it: rows and counters), then: --create-admin, the landing page and the subscription form,
# login and its throttle, the dashboard with both nodes, stats.json, the message history
# and its filters and pages, the connections log, the CSV export, logout.
# Exit 77 (skipped) only when PostgreSQL, nginx or curl are missing.
set -u
. "$(dirname "$0")/lib.sh"
. "$srcdir/tests/pg/lib.sh"
RTD_BIN=${RTD_BIN:-$PWD/rtd/rtd}
need curl "$NGINX" "$ADMIN_BIN" "$RTD_BIN"

pg_start
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
stack_tmp
RTD_PIDS=
cleanup() {
    for p in $RTD_PIDS; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    stop_stack
    pg_stop
}
trap cleanup EXIT INT TERM
lacks() { # lacks NAME FILE TEXT
    if grep -qF -- "$3" "$2"; then bad "$1 ('$3' in $2)"; else ok "$1"; fi
}

DB=$(pg_createdb admin_e2e) || exit 1
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$DB" -c "$1"; }

# ---- two rtd nodes on the database ------------------------------------------------------
start_rtd() { # start_rtd NODE_ID -> sets RTD_PORT
    local tries=0
    while [ $tries -lt 20 ]; do
        tries=$((tries + 1))
        RTD_PORT=$(pg_free_port)
        "$RTD_BIN" --port "$RTD_PORT" --bind 127.0.0.1 --node-id "$1" --db "$DB" \
            --log-level warn 2>"$T/rtd-$1.log" &
        local pid=$!
        if wait_for curl -sf -o /dev/null "http://127.0.0.1:$RTD_PORT/health"; then
            RTD_PIDS="$RTD_PIDS $pid"
            return 0
        fi
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    log "rtd $1 did not start:"; cat "$T/rtd-$1.log" >&2
    return 1
}
start_rtd node-a || exit 1
PORT_A=$RTD_PORT
start_rtd node-b || exit 1
PORT_B=$RTD_PORT

# A Socket.IO client over Engine.IO long-polling, made of curl.
eio() { # eio PORT SID [BODY]: one poll (GET) or one POST
    local u="http://127.0.0.1:$1/socket.io/?EIO=4&transport=polling&sid=$2"
    if [ $# -ge 3 ]; then curl -s -H 'Content-Type: text/plain;charset=UTF-8' --data-binary "$3" "$u"
    else curl -s --max-time 5 "$u"; fi
}
client() { # client PORT PLATFORM USER TEXT... : connects, identifies, sends each text (acked)
    local port=$1 platform=$2 user=$3 sid n=1 got
    shift 3
    sid=$(curl -s "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling&platform=$platform" |
        sed -n 's/.*"sid":"\([^"]*\)".*/\1/p')
    [ -n "$sid" ] || { bad "rtd on $port opened no session"; return 1; }
    eio "$port" "$sid" 40 >/dev/null
    eio "$port" "$sid" >/dev/null # the namespace's CONNECT answer
    eio "$port" "$sid" "420[\"identify\",{\"platform\":\"$platform\",\"userId\":\"$user\"}]" >/dev/null
    got=$(eio "$port" "$sid")
    for text in "$@"; do
        n=$((n + 1))
        eio "$port" "$sid" "42$n[\"send-message\",{\"sender\":\"$user\",\"text\":\"$text\"}]" >/dev/null
        got=$(eio "$port" "$sid")
        while ! printf '%s' "$got" | grep -q "43$n\["; do
            got=$(eio "$port" "$sid") || break
            [ -n "$got" ] || break
        done
        printf '%s' "$got" | grep -q "43$n\[{\"ok\":true" || bad "send-message '$text' not acked: $got"
    done
}
# ---- more history, written the way rtd writes it (rows and counters together) ----------
sql "
BEGIN;
INSERT INTO connections(socket_id, platform, user_id, connected_at, disconnected_at,
    duration_ms, status, created_at, transport, remote_addr, user_agent, node_id)
SELECT 'seed-' || i, CASE WHEN i % 3 = 0 THEN 'laravel' ELSE 'web' END, 'user-' || (i % 7),
    to_char(now() AT TIME ZONE 'UTC' - (i || ' minutes')::interval, 'YYYY-MM-DD HH24:MI:SS.MS'),
    to_char(now() AT TIME ZONE 'UTC' - (i || ' minutes')::interval + interval '30 seconds',
            'YYYY-MM-DD HH24:MI:SS.MS'),
    30000, 'disconnected',
    to_char(now() AT TIME ZONE 'UTC' - (i || ' minutes')::interval, 'YYYY-MM-DD HH24:MI:SS.MS'),
    'websocket', '10.0.0.' || i, 'seed agent', 'node-a'
FROM generate_series(1, 40) i;
INSERT INTO messages(socket_id, sender, message_text, platform, created_at, room)
SELECT 'seed-' || (i % 40 + 1), 'user-' || (i % 7), 'seeded message ' || i,
    CASE WHEN i % 3 = 0 THEN 'laravel' ELSE 'web' END,
    to_char(now() AT TIME ZONE 'UTC' - ((3000 - i) || ' seconds')::interval,
            'YYYY-MM-DD HH24:MI:SS.MS'),
    CASE WHEN i % 5 = 0 THEN 'lobby' END
FROM generate_series(1, 2996) i;
UPDATE totals SET value = value + 2996 WHERE name = 'messages_total';
UPDATE totals SET value = value + 40 WHERE name = 'connections_total';
INSERT INTO message_counts(hour, platform, count)
SELECT substr(created_at, 1, 13) || ':00:00', platform, count(*) FROM messages
WHERE socket_id LIKE 'seed-%' GROUP BY 1, 2
ON CONFLICT (hour, platform) DO UPDATE SET count = message_counts.count + excluded.count;
INSERT INTO connection_counts(hour, platform, count)
SELECT substr(created_at, 1, 13) || ':00:00', platform, count(*) FROM connections
WHERE socket_id LIKE 'seed-%' GROUP BY 1, 2
ON CONFLICT (hour, platform) DO UPDATE SET count = connection_counts.count + excluded.count;
COMMIT;" || exit 1
# Then live traffic through both nodes (newer ids and times than the history, as in life).
client "$PORT_A" web alice "Invoice 1 is paid" "hello from node a" || exit 1
client "$PORT_B" flutter bob "hello from node b" "see the INVOICE" || exit 1

expect "the database holds 3000 messages" 3000 "$(sql 'SELECT count(*) FROM messages')"

# ---- admin-fcgi --------------------------------------------------------------------------
printf 'short\n' | "$ADMIN_BIN" --db "$DB" --create-admin ops 2>/dev/null &&
    bad "--create-admin takes a short password" || ok "--create-admin refuses a short password"
printf 'e2e password 1\n' | "$ADMIN_BIN" --db "$DB" --create-admin ops 2>"$T/create.log"
contains "--create-admin creates the admin in PostgreSQL" "$T/create.log" 'admin "ops" created'
expect "... stored as a yescrypt hash" 1 \
    "$(sql "SELECT count(*) FROM admin_users WHERE username = 'ops' AND password_hash LIKE '\$y\$%'")"
DB_ADMIN=$DB
start_admin || exit 1
start_nginx "$PORT_A" || exit 1
log "nginx on $BASE, admin-fcgi on $T/admin.sock, PostgreSQL on port $PGPORT"

C="curl -s -b $T/jar -c $T/jar"
code() { $C -o "$T/body" -w '%{http_code}' "$@"; }

expect "GET / is 200" 200 "$(code "$BASE/")"
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "subscription is 200" 200 "$(code --data-urlencode "csrf=$csrf" \
    --data-urlencode 'email=E2E@example.com' "$BASE/subscribe")"
contains "subscription is confirmed" "$T/body" "Thank you"
expect "the same address in other case is answered the same" 200 \
    "$(code --data-urlencode "csrf=$csrf" --data-urlencode 'email=e2e@example.com' "$BASE/subscribe")"
expect "... and stored once" 1 "$(sql "SELECT count(*) FROM subscribers WHERE lower(email) = 'e2e@example.com'")"
got=
for i in 1 2 3 4 5 6 7 8 9 10; do
    got="$got $(code --data-urlencode "csrf=$csrf" --data-urlencode "email=flood$i@example.com" \
        "$BASE/subscribe")"
done
expect "a burst of subscriptions is cut off at the limit" \
    " 200 200 200 200 200 200 200 200 429 429" "$got"

expect "/admin redirects to login" 302 "$(code "$BASE/admin")"
expect "login page is 200" 200 "$(code "$BASE/admin/login")"
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "wrong password is 401" 401 "$(code --data-urlencode "csrf=$csrf" -d username=ops \
    --data-urlencode 'password=nope' "$BASE/admin/login")"
expect "the failure is counted in login_failures" 1 \
    "$(sql "SELECT failures FROM login_failures WHERE key LIKE 'pair:%|ops'")"
expect "login is 303" 303 "$(code --data-urlencode "csrf=$csrf" -d username=ops \
    --data-urlencode 'password=e2e password 1' "$BASE/admin/login")"
expect "the session is stored" 1 "$(sql 'SELECT count(*) FROM admin_sessions')"
expect "a correct password clears the address's counters" 0 \
    "$(sql "SELECT count(*) FROM login_failures WHERE key LIKE 'pair:%' OR key LIKE 'ip:%'")"

expect "dashboard is 200" 200 "$(code "$BASE/admin")"
contains "dashboard shows the total" "$T/body" 'data-stat="messages.total">3,000<'
contains "dashboard charts" "$T/body" 'data-chart="days"'
contains "dashboard lists node-a" "$T/body" '<tr data-node="node-a"><td>node-a</td>'
contains "dashboard lists node-b" "$T/body" '<tr data-node="node-b"><td>node-b</td>'
nrun=$(tr -d '\n' <"$T/body" |
    grep -o 'data-node="node-[ab]"><td>node-[ab]</td>[[:space:]]*<td><span class="health ok">running' |
    wc -l)
expect "both nodes are running" 2 "$nrun"
contains "the database size is PostgreSQL's" "$T/body" 'MB'
expect "stats.json is 200" 200 "$(code "$BASE/admin/stats.json")"
contains "stats.json totals" "$T/body" '"messages":{"total":3000,'
contains "stats.json lists the nodes" "$T/body" '"nodes":[{"node":"node-a","health":"running",'
contains "stats.json has each node's figures" "$T/body" '"node":"node-b","health":"running",'

expect "messages page is 200" 200 "$(code "$BASE/admin/messages")"
expect "a page holds 50 rows" 50 "$(grep -c 'data-label="Message"' "$T/body")"
contains "the newest page shows node b's message" "$T/body" 'see the INVOICE'
older=$(sed -n 's/.*href="\/admin\/messages?\(before=[0-9]*\)".*/\1/p' "$T/body" | head -1)
expect "an older page is offered" 1 "$([ -n "$older" ] && echo 1 || echo 0)"
expect "the older page is 200" 200 "$(code "$BASE/admin/messages?$older")"
lacks "... without the newest message" "$T/body" 'see the INVOICE'
expect "platform filter is 200" 200 "$(code "$BASE/admin/messages?platform=flutter")"
contains "... selects the platform" "$T/body" '<option value="flutter" selected>'
contains "... shows bob's message" "$T/body" 'hello from node b'
lacks "... and not alice's" "$T/body" 'hello from node a'
expect "sender filter is 200" 200 "$(code "$BASE/admin/messages?sender=alice")"
contains "... shows alice's message" "$T/body" 'Invoice 1 is paid'
lacks "... and not bob's" "$T/body" 'hello from node b'
expect "text search is 200" 200 "$(code "$BASE/admin/messages?q=invoice")"
contains "... ignores case (1)" "$T/body" 'Invoice 1 is paid'
contains "... ignores case (2)" "$T/body" 'see the INVOICE'
lacks "... and finds nothing else" "$T/body" 'seeded message'
expect "text search treats % literally" 200 "$(code "$BASE/admin/messages?q=%25")"
contains "... and finds nothing" "$T/body" 'No messages'
expect "room filter is 200" 200 "$(code "$BASE/admin/messages?room=lobby")"
contains "... shows a lobby message" "$T/body" 'seeded message 2995'
lacks "... and not a message without a room" "$T/body" 'seeded message 2996'
today=$(date -u +%Y-%m-%d)
expect "date filter is 200" 200 "$(code "$BASE/admin/messages?from=$today&to=$today&sender=bob")"
contains "... keeps today's messages" "$T/body" 'hello from node b'
expect "a date filter in the past is 200" 200 "$(code "$BASE/admin/messages?to=2001-01-01")"
contains "... and shows nothing" "$T/body" 'No messages'
expect "a bad date is 400" 400 "$(code "$BASE/admin/messages?from=yesterday")"

expect "connections page is 200" 200 "$(code "$BASE/admin/connections")"
active=$(sql "SELECT count(*) FROM connections WHERE status = 'active'")
contains "connected now counts the active rows of both nodes" "$T/body" \
    "Connected now <span class=\"count\">$active</span>"
expect "... two of them" 2 "$active"
contains "the log shows a seeded connection" "$T/body" 'seed-1<'
expect "connections filtered by platform are 200" 200 \
    "$(code "$BASE/admin/connections?platform=laravel&status=disconnected")"
contains "... show a laravel connection" "$T/body" 'seed-3<'
lacks "... and not a web one" "$T/body" 'seed-1<'

expect "CSV is 200" 200 "$(code "$BASE/admin/messages.csv")"
expect "CSV has every message and the header" 3001 "$(grep -c "$(printf '\r')\$" "$T/body")"
expect "CSV is newest first" "$(sql 'SELECT max(id) FROM messages')" \
    "$(sed -n '2s/,.*//p' "$T/body")"
expect "filtered CSV is 200" 200 "$(code "$BASE/admin/messages.csv?sender=alice")"
expect "... with alice's messages" 3 "$(grep -c "$(printf '\r')\$" "$T/body")"

code "$BASE/admin" >/dev/null
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "logout is 303" 303 "$(code -d "csrf=$csrf" "$BASE/admin/logout")"
expect "... ends the session in PostgreSQL" 0 "$(sql 'SELECT count(*) FROM admin_sessions')"
expect "after logout /admin redirects" 302 "$(code "$BASE/admin")"

printf 'e2e password 2\n' | "$ADMIN_BIN" --db "$DB" --create-admin ops 2>"$T/create.log"
contains "--create-admin updates the admin" "$T/create.log" 'admin "ops" updated'

if [ $fails -ne 0 ]; then
    log "$fails check(s) failed; admin-fcgi log:"; cat "$T/admin-fcgi.log" >&2
    exit 1
fi
echo "# all PostgreSQL end-to-end checks passed"
