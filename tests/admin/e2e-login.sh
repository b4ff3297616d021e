#!/bin/sh
# e2e-login.sh: admin-fcgi's login throttling through a real nginx, with several client
# addresses (curl --interface binds 127.0.0.N, which nginx passes as REMOTE_ADDR):
#  - failures for a name from other addresses never lock out the right password from an
#    address that has not failed; the address that failed is locked for that name;
#  - the name failed from many addresses only slows down addresses that failed (429 with a
#    short Retry-After), never a 15-minute lock;
#  - parallel wrong passwords from one address get exactly --login-failures passwords
#    checked (401); every other one is refused unchecked (429).
set -eu
. "$(dirname "$0")/lib.sh"
need curl "$NGINX" "$ADMIN_BIN"

stack_tmp
trap stop_stack EXIT INT TERM

printf 'e2e password 1\n' | "$ADMIN_BIN" --db "$DB" --create-admin admin 2>/dev/null
printf 'e2e password 2\n' | "$ADMIN_BIN" --db "$DB" --create-admin racer 2>/dev/null
start_admin --workers 4 --login-failures 5
start_nginx
log "nginx on $BASE, admin-fcgi on $T/admin.sock"

# One CSRF cookie and token for every request (the double-submit token is not tied to an
# address).
curl -s -c "$T/jar" -o "$T/body" "$BASE/admin/login"
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
[ -n "$csrf" ] || { log "no CSRF token on the login page"; exit 1; }
if ! curl -s -o /dev/null --interface 127.0.0.2 "$BASE/admin/login"; then
    log "SKIP: cannot bind 127.0.0.2 on this machine"
    exit 77
fi

# post FROM NAME PASSWORD [curl args]: prints the status; the headers go to $T/head.
post() {
    from=$1 name=$2 pw=$3
    shift 3
    curl -s -b "$T/jar" --interface "$from" -o /dev/null -D "$T/head" -w '%{http_code}' \
        --data-urlencode "csrf=$csrf" --data-urlencode "username=$name" \
        --data-urlencode "password=$pw" "$@" "$BASE/admin/login"
}
retry_after() { sed -n 's/^Retry-After: *\([0-9]*\).*/\1/Ip' "$T/head"; }

# Six wrong passwords for "admin" from 127.0.0.2, one each from 127.0.0.3 to .7.
got=
for i in 1 2 3 4 5; do got="$got $(post 127.0.0.2 admin wrong$i)"; done
expect "five wrong passwords from one address are checked" " 401 401 401 401 401" "$got"
expect "the sixth from that address is refused" 429 "$(post 127.0.0.2 admin wrong6)"
expect "... even with the right password" 429 "$(post 127.0.0.2 admin 'e2e password 1')"
got=
for n in 3 4 5 6 7; do got="$got $(post 127.0.0.$n admin "wrong from $n")"; done
expect "wrong passwords from other addresses are checked" " 401 401 401 401 401" "$got"

# The name has ten failures from six addresses: an address that has not failed still gets in.
expect "the right password from a clean address logs in" 303 \
    "$(post 127.0.0.9 admin 'e2e password 1')"
expect "... and once more from another clean address" 303 \
    "$(post 127.0.0.10 admin 'e2e password 1')"

# An address that failed for the name only waits a little before its next try.
code=$(post 127.0.0.3 admin 'e2e password 1')
wait_s=$(retry_after)
if [ "$code" = 303 ]; then
    ok "a failed address with the right password gets in (its wait was over)"
elif [ "$code" = 429 ] && [ -n "$wait_s" ] && [ "$wait_s" -le 60 ]; then
    ok "a failed address is slowed down, not locked (Retry-After $wait_s)"
else
    bad "a failed address is slowed down, not locked (got $code, Retry-After '$wait_s')"
fi

# Parallel wrong passwords from one fresh address for a fresh name: the limit holds exactly.
n=0 pids=
while [ $n -lt 48 ]; do
    n=$((n + 1))
    curl -s -b "$T/jar" --interface 127.0.0.20 -o /dev/null -w '%{http_code}\n' \
        --data-urlencode "csrf=$csrf" -d username=racer \
        --data-urlencode "password=parallel guess $n" "$BASE/admin/login" >"$T/race.$n" &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || true; done
cat "$T"/race.* > "$T/race"
expect "48 parallel wrong passwords: exactly 5 checked" 5 "$(grep -c '^401$' "$T/race")"
expect "48 parallel wrong passwords: the other 43 refused" 43 "$(grep -c '^429$' "$T/race")"
expect "the racing address is locked for that name" 429 "$(post 127.0.0.20 racer 'e2e password 2')"
expect "the name is not: a clean address logs in" 303 "$(post 127.0.0.21 racer 'e2e password 2')"

if [ $fails -ne 0 ]; then
    log "$fails check(s) failed; admin-fcgi log:"; cat "$T/admin-fcgi.log" >&2
    exit 1
fi
echo "# all login throttling checks passed"
