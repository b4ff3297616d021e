#!/bin/sh
# e2e-nginx.sh: admin-fcgi through a real nginx (Debian's package) over FastCGI: the
# landing page, static files, the subscription form and its rate limit, login, every admin page, the live
# JSON, the CSV export streamed through nginx, logout. nginx runs on a free loopback port
# with a config generated into a temporary folder and is stopped afterwards.
set -eu
. "$(dirname "$0")/lib.sh"
need curl "$NGINX" "$ADMIN_BIN" "$SEED_BIN"

stack_tmp
trap stop_stack EXIT INT TERM

"$SEED_BIN" --db "$DB" fill --connections 500 --messages 5000 --days 20 --active 7 2>/dev/null
"$SEED_BIN" --db "$DB" status running
printf 'e2e password 1\n' | "$ADMIN_BIN" --db "$DB" --create-admin ops 2>/dev/null
start_admin
start_nginx
log "nginx on $BASE, admin-fcgi on $T/admin.sock"

C="curl -s -b $T/jar -c $T/jar"
code() { $C -o "$T/body" -w '%{http_code}' "$@"; }

expect "GET / is 200" 200 "$(code "$BASE/")"
contains "landing page has the countdown" "$T/body" 'data-launch="'
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "static CSS is served" 200 "$(code "$BASE/static/site.css")"
expect "static JS is served" 200 "$(code "$BASE/static/site.js")"
expect "icon is served" 200 "$(code "$BASE/static/icon.svg")"
# /static/ has its own add_header: it must repeat the server's (nginx does not merge them).
curl -s -o /dev/null -D "$T/head" "$BASE/static/site.css"
contains "static files keep Strict-Transport-Security" "$T/head" "Strict-Transport-Security:"
contains "static files are nosniff" "$T/head" "X-Content-Type-Options: nosniff"
curl -s -o /dev/null -D "$T/head" "$BASE/"
contains "pages have Strict-Transport-Security" "$T/head" "Strict-Transport-Security:"
expect "unknown page is 404" 404 "$(code "$BASE/nope")"
expect "subscription without token is 403" 403 \
    "$(code --data-urlencode 'email=e2e@example.com' "$BASE/subscribe")"
expect "subscription is 200" 200 "$(code --data-urlencode "csrf=$csrf" \
    --data-urlencode 'email=e2e@example.com' "$BASE/subscribe")"
contains "subscription is confirmed" "$T/body" "Thank you"
expect "a second subscription of the address is answered the same" 200 \
    "$(code --data-urlencode "csrf=$csrf" --data-urlencode 'email=e2e@example.com' \
        "$BASE/subscribe")"
contains "... with the same words" "$T/body" "Thank you! We will write to e2e@example.com"
# One address gets 10 subscriptions per 15 minutes (two used above), however fast it posts.
got=
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
    got="$got $(code --data-urlencode "csrf=$csrf" --data-urlencode "email=flood$i@example.com" \
        "$BASE/subscribe")"
done
expect "a burst of subscriptions is cut off at the limit" \
    " 200 200 200 200 200 200 200 200 429 429 429 429" "$got"

expect "/admin redirects to login" 302 "$(code "$BASE/admin")"
expect "stats.json without a session is 401" 401 "$(code "$BASE/admin/stats.json")"
contains "... with a JSON body" "$T/body" '"error":"not logged in"'
expect "login page is 200" 200 "$(code "$BASE/admin/login")"
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "wrong password is 401" 401 "$(code --data-urlencode "csrf=$csrf" -d username=ops \
    --data-urlencode 'password=nope' "$BASE/admin/login")"
expect "login is 303" 303 "$(code --data-urlencode "csrf=$csrf" -d username=ops \
    --data-urlencode 'password=e2e password 1' "$BASE/admin/login")"
grep -q afc_session "$T/jar" && ok "session cookie set" || bad "session cookie set"

expect "dashboard is 200" 200 "$(code "$BASE/admin")"
contains "dashboard shows the total" "$T/body" 'data-stat="messages.total">5,000<'
contains "dashboard charts" "$T/body" 'data-chart="days"'
# A full cookie jar of other applications' cookies (180, over 8 KB) breaks nothing.
jar=$(i=0; while [ $i -lt 180 ]; do printf 'analytics_cookie_%03d=%032d; ' $i $i; i=$((i + 1)); done)
session=$(awk '$6 == "afc_session" { print $7 }' "$T/jar")
expect "dashboard with 180 more cookies is 200" 200 \
    "$(curl -s -o "$T/body" -w '%{http_code}' -H "Cookie: ${jar}afc_session=$session" "$BASE/admin")"
expect "landing page with 180 more cookies is 200" 200 \
    "$(curl -s -o "$T/body" -w '%{http_code}' -H "Cookie: $jar" "$BASE/")"
expect "stats.json is 200" 200 "$(code "$BASE/admin/stats.json")"
contains "stats.json totals" "$T/body" '"messages":{"total":5000,'
expect "messages page is 200" 200 "$(code "$BASE/admin/messages?platform=web")"
contains "messages are filtered" "$T/body" '<option value="web" selected>'
expect "connections page is 200" 200 "$(code "$BASE/admin/connections")"
contains "connected now" "$T/body" 'Connected now <span class="count">7</span>'

# The CSV export streams through nginx: every row arrives.
expect "CSV is 200" 200 "$(code "$BASE/admin/messages.csv")"
expect "CSV has every message" 5001 "$(grep -c "$(printf '\r')\$" "$T/body")"

# Logout needs the session's token.
code "$BASE/admin" >/dev/null
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "logout without token is 403" 403 "$(code -d csrf=bad "$BASE/admin/logout")"
expect "logout is 303" 303 "$(code -d "csrf=$csrf" "$BASE/admin/logout")"
expect "after logout /admin redirects" 302 "$(code "$BASE/admin")"

# The socket.io location is proxied (nothing listens behind it here: 502 from nginx).
expect "/socket.io/ goes to the proxy" 502 "$(code "$BASE/socket.io/?EIO=4&transport=polling")"

if [ $fails -ne 0 ]; then
    log "$fails check(s) failed; nginx log:"; cat "$T/nginx-error.log" >&2
    exit 1
fi
echo "# all end-to-end checks passed"
