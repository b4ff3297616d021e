/* eio_server.c: the Engine.IO server front: the server's life, the entry point for every
 * HTTP request under the engine's path (verified and routed, as the reference server does,
 * to a new session, to a session's long-polling transport or to a WebSocket upgrade), and
 * the end of each loop turn (the transports' output flushed, closed sessions freed).
 *
 * This is the one file that knows both transports; the session core (eio.c) drives them
 * through eio_transport.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rtd/engine/eio_polling.h"
#include "rtd/engine/eio_session.h"
#include "rtd/engine/wsconn.h"

static void before_sleep(loop *l, void *ud);

/* ---- the server ---- */

eio_server *eio_server_new(loop *l, const struct eio_config *cfg, const struct eio_callbacks *cb,
                           void *ud)
{
    eio_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->l = l;
    srv->cfg = *cfg;
    srv->cb = *cb;
    srv->ud = ud;
    srv->rbuf_size = 64 * 1024;
    srv->rbuf = malloc(srv->rbuf_size);
    if (!srv->rbuf) {
        free(srv);
        return NULL;
    }
    if (cfg->send_threads && !(srv->pool = sendpool_new(cfg->send_threads))) {
        free(srv->rbuf);
        free(srv);
        return NULL;
    }
    loop_set_before_sleep(l, before_sleep, srv);
    return srv;
}

void eio_server_set_http(eio_server *srv, http_server *h)
{
    srv->http = h;
}

void eio_server_free(eio_server *srv)
{
    if (!srv)
        return;
    map_entry *e;
    /* Closing unlinks from the map, so restart the walk each time. */
    for (;;) {
        size_t it = 0;
        if (!map_next(&srv->sessions, &it, &e))
            break;
        eio_session_shutdown(e->val);
    }
    before_sleep(srv->l, srv);
    wsconn_release_all(srv);
    map_free(&srv->sessions);
    map_free(&srv->per_ip);
    buf_free(&srv->scratch);
    free(srv->rbuf);
    sendpool_free(srv->pool);
    free(srv->pool_jobs);
    free(srv->pool_conns);
    free(srv->pool_iov);
    loop_set_before_sleep(srv->l, NULL, NULL);
    free(srv);
}

void eio_server_close_all(eio_server *srv, const char *reason)
{
    map_entry *e;
    for (;;) {
        size_t it = 0;
        bool open = false;
        while (map_next(&srv->sessions, &it, &e)) {
            eio_session *s = e->val;
            if (s->state == EIO_S_OPEN) {
                eio_session_transport_closed(s, reason);
                open = true;
                break;
            }
        }
        if (!open)
            break;
    }
}

unsigned eio_server_sockets_open(const eio_server *srv)
{
    return srv->n_sockets;
}

const struct eio_config *eio_server_config(const eio_server *srv)
{
    return &srv->cfg;
}

unsigned eio_server_session_count(const eio_server *srv)
{
    return (unsigned)srv->sessions.len - srv->n_lingering; /* the closed ones do not count */
}

void eio_server_transport_counts(const eio_server *srv, unsigned *polling, unsigned *websocket)
{
    *polling = srv->n_polling;
    *websocket = srv->n_websocket;
}

const struct eio_counts *eio_server_counts(const eio_server *srv)
{
    return &srv->counts;
}

void eio_server_bytes(const eio_server *srv, uint64_t *in, uint64_t *out)
{
    *in = srv->bytes_in;
    *out = srv->bytes_out;
}

/* ---- the end of a loop turn ---- */

/* Answers the held polls that got packets and writes the WebSockets' output. Writing can
 * find a WebSocket dead, and its session's on_close may send to others (a presence
 * broadcast): to polls that must still be answered this turn, not at the next wake-up. So
 * both lists are worked until neither has anything left. */
static void before_sleep(loop *l, void *ud)
{
    eio_server *srv = ud;
    do {
        eio_session *s;
        while ((s = eio_session_next_flush(srv)))
            eio_polling_flush(s);
        wsconn_flush_all(srv);
    } while (srv->flush_head);
    wsconn_free_dead(srv);
    eio_sessions_reap(srv);
}

/* ---- requests ---- */

static bool is_get(http_request *req)
{
    return strcmp(http_request_method(req), "GET") == 0;
}

void eio_handle_request(eio_server *srv, http_request *req)
{
    const char *transport = http_request_query(req, "transport");
    bool polling = transport && strcmp(transport, "polling") == 0;
    bool websocket = transport && strcmp(transport, "websocket") == 0;
    if (!polling && !websocket) {
        eio_http_error(req, EIO_ERR_UNKNOWN_TRANSPORT);
        return;
    }
    bool upgrade = http_request_wants_websocket(req);
    const char *sid = http_request_query(req, "sid");
    if (sid) {
        eio_session *s = map_get(&srv->sessions, sid);
        if (s && s->lingering && polling && !upgrade && is_get(req)) {
            eio_polling_linger_answer(s, req);
            return;
        }
        if (!s || s->state != EIO_S_OPEN) {
            eio_http_error(req, EIO_ERR_UNKNOWN_SID);
            return;
        }
        if (!upgrade && (polling ? EIO_T_POLLING : EIO_T_WEBSOCKET) != s->transport) {
            eio_http_error(req, EIO_ERR_BAD_REQUEST);
            return;
        }
        /* A body over maxPayload (seen on the headers, unread): a POST's is the session's
         * error (handle_post); on anything else it is only this request's. */
        if (http_request_too_large(req) && strcmp(http_request_method(req), "POST") != 0) {
            http_respond(req, 413, NULL, "", 0);
            return;
        }
        if (upgrade) {
            if (!websocket) {
                eio_http_error(req, EIO_ERR_BAD_REQUEST);
                return;
            }
            eio_websocket_request(srv, s, NULL, req);
            return;
        }
        eio_polling_request(s, req);
        return;
    }
    if (!is_get(req)) {
        eio_http_error(req, EIO_ERR_BAD_HANDSHAKE_METHOD);
        return;
    }
    if (http_request_too_large(req)) {
        http_respond(req, 413, NULL, "", 0);
        return;
    }
    if (websocket && !upgrade) {
        eio_http_error(req, EIO_ERR_BAD_REQUEST);
        return;
    }
    if (polling && upgrade) {
        eio_http_error(req, EIO_ERR_BAD_REQUEST);
        return;
    }
    const char *eio = http_request_query(req, "EIO");
    int protocol = eio && strcmp(eio, "4") == 0 ? 4 : 3;
    if (protocol == 3 && !(srv->cfg.allow_eio3 && eio && strcmp(eio, "3") == 0)) {
        eio_http_error(req, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
        return;
    }
    if (srv->cfg.max_sessions && srv->sessions.len - srv->n_lingering >= srv->cfg.max_sessions) {
        static const char full[] = "{\"code\":3,\"message\":\"Server is full\"}";
        http_add_header(req, "Retry-After", "5");
        http_respond(req, 503, "application/json", full, sizeof full - 1);
        return;
    }
    if (srv->cfg.max_per_ip &&
        eio_ip_sessions(srv, http_request_remote_addr(req)) >= srv->cfg.max_per_ip) {
        static const char many[] =
            "{\"code\":3,\"message\":\"Too many connections from this address\"}";
        http_add_header(req, "Retry-After", "5");
        http_respond(req, 429, "application/json", many, sizeof many - 1);
        return;
    }
    struct eio_handshake hs;
    if (eio_handshake_capture(&hs, req, protocol, srv->cfg.keep_headers) < 0) {
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    if (websocket) {
        eio_websocket_request(srv, NULL, &hs, req);
        return;
    }
    eio_session *s = eio_session_create(srv, &hs, EIO_T_POLLING, &eio_polling_ops, NULL);
    if (!s) {
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    eio_polling_open(s, req);
    eio_session_opened(s);
}
