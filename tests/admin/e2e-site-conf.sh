#!/bin/sh
# e2e-site-conf.sh: the deployment's own nginx site, deploy/nginx/site.conf, run by a real
# nginx in front of admin-fcgi: only its ports (loopback), certificate (self-signed, made
# here), socket and static paths are rewritten. Checks what a deployment relies on and
# nginx's rules can silently undo: every response over https carries
# Strict-Transport-Security (a location with its own add_header drops the server's), the
# JSON endpoint answers 401 without a session, and a full cookie jar (180 other cookies,
# over 8 KB of Cookie header) breaks no page.
set -eu
. "$(dirname "$0")/lib.sh"
need curl openssl "$NGINX" "$ADMIN_BIN"

stack_tmp
trap stop_stack EXIT INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
printf 'site conf password\n' | "$ADMIN_BIN" --db "$DB" --create-admin ops 2>/dev/null
start_admin

user_line=
[ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
tries=0 BASE=
while [ $tries -lt 20 ] && [ -z "$BASE" ]; do
    tries=$((tries + 1))
    PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
    HTTP_PORT=$((PORT + 1))
    sed -e "s|^\( *\)listen 443 ssl http2;|\1listen 127.0.0.1:$PORT ssl http2;|" \
        -e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$HTTP_PORT;|" \
        -e '/listen \[::\]/d' \
        -e "s|ssl_certificate /etc/letsencrypt/[^;]*;|ssl_certificate $T/cert.pem;|" \
        -e "s|ssl_certificate_key /etc/letsencrypt/[^;]*;|ssl_certificate_key $T/key.pem;|" \
        -e "s|/usr/local/share/rtd/static/|$srcdir/static/|" \
        -e "s|unix:/run/admin-fcgi/admin-fcgi.sock|unix:$T/admin.sock|" \
        -e "s|server 127.0.0.1:3001;|server 127.0.0.1:9;|" \
        -e "s|include fastcgi_params;|include /etc/nginx/fastcgi_params;|" \
        "$srcdir/deploy/nginx/site.conf" > "$T/site.conf"
    cat > "$T/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log warn;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $T/nginx-access.log;
    client_body_temp_path $T/nginx-tmp/body;
    proxy_temp_path $T/nginx-tmp/proxy;
    fastcgi_temp_path $T/nginx-tmp/fastcgi;
    uwsgi_temp_path $T/nginx-tmp/uwsgi;
    scgi_temp_path $T/nginx-tmp/scgi;
    include $T/site.conf;
}
CONF
    : > "$T/nginx-error.log"
    if "$NGINX" -p "$T" -c "$T/nginx.conf" -e "$T/nginx-error.log" 2>>"$T/nginx-error.log" &&
        wait_for test -s "$T/nginx.pid"; then
        BASE=https://127.0.0.1:$PORT
    elif ! grep -q "Address already in use" "$T/nginx-error.log"; then
        log "nginx did not take deploy/nginx/site.conf:"; cat "$T/nginx-error.log" >&2
        exit 1
    fi
done
[ -n "$BASE" ] || { log "no free port found for nginx"; exit 1; }
log "deploy/nginx/site.conf on $BASE"

C="curl -sk -b $T/jar -c $T/jar"
get() { # get URL [curl args]: prints the status; headers in $T/head, body in $T/body
    url=$1; shift
    $C -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" "$url"
}

expect "http redirects to https" 301 \
    "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/")"
for path in / /admin/login /static/site.css /static/icon.svg; do
    expect "GET $path" 200 "$(get "$BASE$path")"
    icontains "$path has Strict-Transport-Security" "$T/head" "Strict-Transport-Security: max-age="
    icontains "$path has nosniff" "$T/head" "X-Content-Type-Options: nosniff"
done
expect "stats.json without a session is 401" 401 "$(get "$BASE/admin/stats.json")"
icontains "... as JSON" "$T/head" "Content-Type: application/json"
icontains "... with Strict-Transport-Security" "$T/head" "Strict-Transport-Security: max-age="
expect "the dashboard without a session redirects" 302 "$(get "$BASE/admin")"

# Log in, then every page with 180 unrelated cookies beside ours.
get "$BASE/admin/login" >/dev/null
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$T/body" | head -1)
expect "login" 303 "$(get "$BASE/admin/login" --data-urlencode "csrf=$csrf" -d username=ops \
    --data-urlencode 'password=site conf password')"
session=$(awk '$6 == "afc_session" { print $7 }' "$T/jar")
jar=$(i=0; while [ $i -lt 180 ]; do printf 'analytics_cookie_%03d=%032d; ' $i $i; i=$((i + 1)); done)
# HTTP/1.1 sends them as one header line; HTTP/2 as one field per cookie.
for proto in --http1.1 --http2; do
    for path in / /admin /admin/stats.json /admin/messages /static/site.css; do
        expect "GET $path with 180 more cookies ($proto)" 200 \
            "$(curl -sk $proto -o /dev/null -w '%{http_code}' \
                -H "Cookie: ${jar}afc_session=$session" "$BASE$path")"
    done
done

if [ $fails -ne 0 ]; then
    log "$fails check(s) failed; nginx log:"; cat "$T/nginx-error.log" >&2
    exit 1
fi
echo "# all checks of deploy/nginx/site.conf passed"
