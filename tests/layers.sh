#!/bin/sh
# layers.sh: rtd's folders are layers, and a file includes only its own folder's headers and
# those of the layers below it (DESIGN.md, "Layout as it grows"). From the bottom:
#   lib        buffers, maps, utilities, the log
#   net        the event loop, HTTP, WebSocket framing, the send pool
#   engine     Engine.IO sessions and their transports      store   the database threads
#   socketio   Socket.IO on top of the engine
#   cluster    nodes sharing broadcasts and requests over Redis (sio offers it hooks)
#   laravel    laravel-echo-server's protocol (Laravel Echo), using the cluster's Redis link
#   adminui    the Socket.IO Admin UI's /admin namespace (may use every layer above)
#   rtd/       the platform, options, status, auth and main
# and inside engine, the session core (eio.c) uses no transport's header (see below).
# engine and store share a rank: neither may include the other. Fails listing each upward
# or sideways include.
set -eu
: "${srcdir:=$(dirname "$0")/..}"
cd "$srcdir"
rank() {
    case "$1" in
    lib) echo 0 ;; net) echo 1 ;; engine | store) echo 2 ;; socketio) echo 3 ;; cluster) echo 4 ;; laravel | adminui) echo 5 ;; *) echo 6 ;;
    esac
}
bad=0
checked=0
for f in rtd/*.[ch] rtd/*/*.[ch]; do
    dir=$(dirname "$f")
    layer=${dir#rtd}
    layer=${layer#/}
    [ -n "$layer" ] || layer=top
    mine=$(rank "$layer")
    for inc in $(sed -n 's/^#include "rtd\/\(.*\)"$/\1/p' "$f"); do
        case "$inc" in */*) to=${inc%%/*} ;; *) to=top ;; esac
        checked=$((checked + 1))
        [ "$to" = "$layer" ] && continue
        theirs=$(rank "$to")
        if [ "$theirs" -ge "$mine" ]; then
            echo "not ok - $f ($layer) includes rtd/$inc ($to)"
            bad=$((bad + 1))
        fi
    done
done
# Inside the engine: the session core drives its transports through eio_transport.h only;
# the transports use the session's interface; only the server front knows both transports.
for f in rtd/engine/eio.c rtd/engine/eio_session.h rtd/engine/eio_transport.h \
    rtd/engine/eio_polling.c rtd/engine/eio_polling.h rtd/engine/wsconn.c rtd/engine/wsconn.h; do
    for t in eio_polling.h wsconn.h; do
        case "$f" in */"${t%.h}".[ch]) continue ;; esac
        if grep -q "^#include \"rtd/engine/$t\"" "$f"; then
            echo "not ok - $f includes rtd/engine/$t: only eio_server.c knows the transports"
            bad=$((bad + 1))
        fi
        checked=$((checked + 1))
    done
done
echo "# $checked includes checked"
[ "$checked" -gt 0 ] || { echo "not ok - no include found: wrong folder?"; exit 1; }
if [ "$bad" -eq 0 ]; then echo "ok - every include points down or across its own folder"; fi
[ "$bad" -eq 0 ]
