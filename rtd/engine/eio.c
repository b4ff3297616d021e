/* eio.c: the Engine.IO session core: request routing and verification, handshake,
 * heartbeat, the upgrade state machine, sending and closing (see eio.h).
 *
 * Behaviour follows the reference server (engine.io 6): the same checks in the same order,
 * the same error codes and bodies, the same heartbeat (the server pings every pingInterval
 * and gives the client pingTimeout to answer). Closed sessions are unlinked at once but
 * freed only at the end of the loop turn, so code that is still on the stack with a
 * session pointer can always look at its state. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/engine/eio3.h"
#include "rtd/engine/eio_session.h"
#include "rtd/lib/log.h"

/* The reference server's error codes and messages. */
static const char *const error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method", "Bad request",
    "Forbidden",         "Unsupported protocol version",
};
enum {
    ERR_UNKNOWN_TRANSPORT = 0,
    ERR_UNKNOWN_SID = 1,
    ERR_BAD_HANDSHAKE_METHOD = 2,
    ERR_BAD_REQUEST = 3,
    ERR_FORBIDDEN = 4,
    ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};

static void before_sleep(loop *l, void *ud);
static void linger_end(eio_session *s);

/* How long a closed polling session keeps its last packets for a GET that was not there. */
#define LINGER_MS 5000
/* How a session ends, which decides what a held GET hears:
 *   CLOSE_CLIENT    the client sent "close": a noop releases its GET;
 *   CLOSE_ERROR     timeout, invalid input, overflow: the GET gets "close", the rest is dropped;
 *   CLOSE_GRACEFUL  the application closed it: what is queued goes out first, the close packet
 *                   in a later answer (the session lingers for it), as the reference does. */
enum close_mode { CLOSE_CLIENT, CLOSE_ERROR, CLOSE_GRACEFUL };
static void session_close(eio_session *s, const char *reason, enum close_mode mode);
static void linger_cb(loop *l, void *ud);

void eio_http_error(http_request *req, int code)
{
    unsigned status = code == ERR_FORBIDDEN ? 403 : 400;
    if (http_request_wants_websocket(req)) {
        /* The reference answers a refused upgrade with the bare message. */
        const char *m = error_messages[code];
        http_respond(req, status, "text/html", m, strlen(m));
        return;
    }
    char body[96];
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code,
                     error_messages[code]);
    http_respond(req, status, "application/json", body, (size_t)n);
}

/* ---- the packet queue ---- */

int pktq_push(pktq *q, eio_packet *p, size_t limit)
{
    if (q->len == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        eio_packet **items = malloc(cap * sizeof *items);
        if (!items)
            return -1;
        for (uint32_t i = 0; i < q->len; i++)
            items[i] = q->items[(q->head + i) % q->cap];
        free(q->items);
        q->items = items;
        q->head = 0;
        q->cap = cap;
    }
    q->items[(q->head + q->len) % q->cap] = eio_packet_ref(p);
    q->len++;
    q->bytes += p->len + 1;
    return limit && q->bytes > limit ? -1 : 0;
}

eio_packet *pktq_pop(pktq *q)
{
    if (!q->len)
        return NULL;
    eio_packet *p = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    q->bytes -= p->len + 1;
    return p;
}

void pktq_clear(pktq *q)
{
    eio_packet *p;
    while ((p = pktq_pop(q)))
        eio_packet_unref(p);
    free(q->items);
    q->items = NULL;
    q->head = q->cap = 0;
}

/* ---- server ---- */

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
        eio_session *s = e->val;
        if (s->lingering) {
            linger_end(s);
            continue;
        }
        if (s->ws)
            wsconn_abort(s->ws);
        if (s->probe)
            wsconn_abort(s->probe);
        session_close(s, "server shutting down", CLOSE_ERROR);
        linger_end(s);
    }
    before_sleep(srv->l, srv);
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
                session_close(s, reason, CLOSE_ERROR);
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
    return (unsigned)srv->sessions.len;
}

void eio_server_transport_counts(const eio_server *srv, unsigned *polling, unsigned *websocket)
{
    *polling = srv->n_polling;
    *websocket = srv->n_websocket;
}

void eio_server_bytes(const eio_server *srv, uint64_t *in, uint64_t *out)
{
    *in = srv->bytes_in;
    *out = srv->bytes_out;
}

void eio_set_transport_counts(eio_server *srv, eio_session *s, int delta)
{
    if (s->transport == EIO_T_WEBSOCKET)
        srv->n_websocket += (unsigned)delta;
    else
        srv->n_polling += (unsigned)delta;
}

/* Sessions per client address, for --max-connections-per-ip. */
struct ip_count {
    unsigned n;
    char addr[];
};

static unsigned ip_sessions(eio_server *srv, const char *addr)
{
    struct ip_count *c = map_get(&srv->per_ip, addr);
    return c ? c->n : 0;
}

static void ip_adjust(eio_server *srv, const char *addr, int delta)
{
    if (!srv->cfg.max_per_ip || !addr)
        return;
    struct ip_count *c = map_get(&srv->per_ip, addr);
    if (!c && delta > 0) {
        size_t n = strlen(addr) + 1;
        c = calloc(1, sizeof *c + n);
        if (!c)
            return;
        memcpy(c->addr, addr, n);
        if (map_put(&srv->per_ip, c->addr, c) < 0) {
            free(c);
            return;
        }
    }
    if (!c)
        return;
    c->n += (unsigned)delta;
    if (c->n == 0) {
        map_del(&srv->per_ip, c->addr);
        free(c);
    }
}

static void free_session(eio_session *s)
{
    pktq_clear(&s->queue);
    free(s->remote_addr);
    free(s->user_agent);
    free(s->query);
    free(s);
}

static void flush_unlink(eio_session *s)
{
    if (!s->flush_pending)
        return;
    if (s->flush_prev)
        s->flush_prev->flush_next = s->flush_next;
    else
        s->srv->flush_head = s->flush_next;
    if (s->flush_next)
        s->flush_next->flush_prev = s->flush_prev;
    s->flush_prev = s->flush_next = NULL;
    s->flush_pending = false;
}

void eio_session_want_flush(eio_session *s)
{
    if (s->flush_pending || !s->poll || s->state != EIO_S_OPEN)
        return;
    s->flush_pending = true;
    s->flush_prev = NULL;
    s->flush_next = s->srv->flush_head;
    if (s->flush_next)
        s->flush_next->flush_prev = s;
    s->srv->flush_head = s;
}

/* Answers the held polls that got packets and writes the WebSockets' output. Writing can
 * find a WebSocket dead, and its session's on_close may send to others (a presence
 * broadcast): to polls that must still be answered this turn, not at the next wake-up. So
 * both lists are worked until neither has anything left. */
static void before_sleep(loop *l, void *ud)
{
    eio_server *srv = ud;
    do {
        while (srv->flush_head) {
            eio_session *s = srv->flush_head;
            flush_unlink(s);
            eio_polling_flush(s);
        }
        wsconn_flush_all(srv);
    } while (srv->flush_head);
    wsconn_free_dead(srv);
    while (srv->zombies) {
        eio_session *s = srv->zombies;
        srv->zombies = s->zombie_next;
        free_session(s);
    }
}

/* ---- handshake ---- */

void eio_handshake_free(struct eio_handshake *hs)
{
    free(hs->remote_addr);
    free(hs->user_agent);
    free(hs->query);
    memset(hs, 0, sizeof *hs);
}

int eio_handshake_capture(struct eio_handshake *hs, http_request *req, int protocol)
{
    memset(hs, 0, sizeof *hs);
    hs->protocol = protocol;
    const char *ua = http_request_header(req, "User-Agent");
    hs->remote_addr = strdup(http_request_remote_addr(req));
    hs->user_agent = strdup(ua ? ua : "");
    buf q = BUF_INIT;
    if (http_request_copy_query(req, &q) < 0 || !hs->remote_addr || !hs->user_agent) {
        buf_free(&q);
        eio_handshake_free(hs);
        return -1;
    }
    hs->query = q.data;
    const char *b64 = http_request_query(req, "b64");
    hs->b64 = b64 && *b64 && strcmp(b64, "0") != 0 && strcmp(b64, "false") != 0;
    return 0;
}

static void heartbeat_cb(loop *l, void *ud);

eio_session *eio_session_create(eio_server *srv, struct eio_handshake *hs, enum eio_transport t)
{
    eio_session *s = calloc(1, sizeof *s);
    if (!s || util_random_id(s->sid) < 0 || map_put(&srv->sessions, s->sid, s) < 0) {
        free(s);
        eio_handshake_free(hs);
        return NULL;
    }
    s->srv = srv;
    s->protocol = (uint8_t)hs->protocol;
    s->b64 = hs->b64;
    s->transport = (uint8_t)t;
    s->state = EIO_S_OPEN;
    s->remote_addr = hs->remote_addr;
    s->user_agent = hs->user_agent;
    s->query = hs->query;
    memset(hs, 0, sizeof *hs);
    eio_set_transport_counts(srv, s, +1);
    ip_adjust(srv, s->remote_addr, +1);
    /* v4: the server pings after pingInterval. v3: the client pings; the session ends if
     * nothing comes for pingInterval + pingTimeout. */
    uint64_t first = s->protocol == 3 ? srv->cfg.ping_interval_ms + srv->cfg.ping_timeout_ms
                                      : srv->cfg.ping_interval_ms;
    loop_timer_start(srv->l, &s->heartbeat, first, heartbeat_cb, s);
    return s;
}

/* Runs the on_open callback after the open packet went out. Returns -1 if refused (the
 * session is then closed). */
static int session_opened(eio_session *s)
{
    eio_server *srv = s->srv;
    if (srv->cb.on_open && srv->cb.on_open(s, srv->ud) != 0) {
        session_close(s, "refused", CLOSE_ERROR);
        return -1;
    }
    return s->state == EIO_S_OPEN ? 0 : -1;
}

int eio_open_payload(eio_session *s, buf *out, bool with_upgrades)
{
    const struct eio_config *c = &s->srv->cfg;
    return buf_printf(out,
                      "{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,"
                      "\"pingTimeout\":%u,\"maxPayload\":%zu}",
                      s->sid, with_upgrades ? "\"websocket\"" : "", c->ping_interval_ms,
                      c->ping_timeout_ms, c->max_payload);
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
        eio_http_error(req, ERR_UNKNOWN_TRANSPORT);
        return;
    }
    bool upgrade = http_request_wants_websocket(req);
    const char *sid = http_request_query(req, "sid");
    if (sid) {
        eio_session *s = map_get(&srv->sessions, sid);
        if (s && s->lingering && polling && !upgrade && is_get(req)) {
            eio_session_linger_answer(s, req);
            return;
        }
        if (!s || s->state != EIO_S_OPEN) {
            eio_http_error(req, ERR_UNKNOWN_SID);
            return;
        }
        if (!upgrade && (polling ? EIO_T_POLLING : EIO_T_WEBSOCKET) != s->transport) {
            eio_http_error(req, ERR_BAD_REQUEST);
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
                eio_http_error(req, ERR_BAD_REQUEST);
                return;
            }
            eio_websocket_request(srv, s, NULL, req);
            return;
        }
        eio_polling_request(s, req);
        return;
    }
    if (!is_get(req)) {
        eio_http_error(req, ERR_BAD_HANDSHAKE_METHOD);
        return;
    }
    if (http_request_too_large(req)) {
        http_respond(req, 413, NULL, "", 0);
        return;
    }
    if (websocket && !upgrade) {
        eio_http_error(req, ERR_BAD_REQUEST);
        return;
    }
    if (polling && upgrade) {
        eio_http_error(req, ERR_BAD_REQUEST);
        return;
    }
    const char *eio = http_request_query(req, "EIO");
    int protocol = eio && strcmp(eio, "4") == 0 ? 4 : 3;
    if (protocol == 3 && !(srv->cfg.allow_eio3 && eio && strcmp(eio, "3") == 0)) {
        eio_http_error(req, ERR_UNSUPPORTED_PROTOCOL_VERSION);
        return;
    }
    if (srv->cfg.max_sessions && srv->sessions.len >= srv->cfg.max_sessions) {
        static const char full[] = "{\"code\":3,\"message\":\"Server is full\"}";
        http_add_header(req, "Retry-After", "5");
        http_respond(req, 503, "application/json", full, sizeof full - 1);
        return;
    }
    if (srv->cfg.max_per_ip &&
        ip_sessions(srv, http_request_remote_addr(req)) >= srv->cfg.max_per_ip) {
        static const char many[] =
            "{\"code\":3,\"message\":\"Too many connections from this address\"}";
        http_add_header(req, "Retry-After", "5");
        http_respond(req, 429, "application/json", many, sizeof many - 1);
        return;
    }
    struct eio_handshake hs;
    if (eio_handshake_capture(&hs, req, protocol) < 0) {
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    if (websocket) {
        eio_websocket_request(srv, NULL, &hs, req);
        return;
    }
    eio_session *s = eio_session_create(srv, &hs, EIO_T_POLLING);
    if (!s) {
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    eio_polling_open(s, req);
    session_opened(s);
}

/* ---- heartbeat ---- */

static void heartbeat_cb(loop *l, void *ud)
{
    eio_session *s = ud;
    eio_server *srv = s->srv;
    if (s->doomed) {
        session_close(s, "output buffer full", CLOSE_ERROR);
        return;
    }
    if (s->protocol == 3 || s->awaiting_pong) {
        session_close(s, "ping timeout", CLOSE_ERROR);
        return;
    }
    static eio_packet *ping;
    if (!ping)
        ping = eio_packet_new(EIO_PING, false, NULL, 0); /* shared for the process' life */
    s->awaiting_pong = true;
    loop_timer_start(l, &s->heartbeat, srv->cfg.ping_timeout_ms, heartbeat_cb, s);
    if (ping)
        eio_send(s, ping);
}

/* ---- packets ---- */

int eio_session_packet(eio_session *s, const eio_in *pkt)
{
    eio_server *srv = s->srv;
    if (s->state != EIO_S_OPEN || s->doomed)
        return 0;
    switch (pkt->type) {
    case EIO_MESSAGE:
        if (srv->cb.on_message)
            srv->cb.on_message(s, pkt->data, pkt->len, pkt->binary, srv->ud);
        return 0;
    case EIO_PONG:
        if (s->protocol == 3)
            break; /* v3: only servers pong */
        s->awaiting_pong = false;
        loop_timer_start(srv->l, &s->heartbeat, srv->cfg.ping_interval_ms, heartbeat_cb, s);
        return 0;
    case EIO_PING:
        if (s->protocol != 3)
            break; /* v4: pings go from server to client only */
        {
            /* the reference answers a v3 ping with a bare pong */
            eio_packet *pong = eio_packet_new(EIO_PONG, false, NULL, 0);
            if (pong) {
                eio_send(s, pong);
                eio_packet_unref(pong);
            }
            loop_timer_start(srv->l, &s->heartbeat,
                             srv->cfg.ping_interval_ms + srv->cfg.ping_timeout_ms, heartbeat_cb,
                             s);
        }
        return 0;
    case EIO_CLOSE:
        session_close(s, "transport close", CLOSE_CLIENT);
        return 0;
    case EIO_NOOP:
    case EIO_UPGRADE:
        return 0;
    case EIO_OPEN:
        break;
    }
    session_close(s, "parse error", CLOSE_ERROR);
    return -1;
}

/* ---- upgrade ---- */

static void upgrade_check_cb(loop *l, void *ud);

/* While probing, the upgrade timer ticks every 100 ms: it releases a held GET with a noop
 * (as the reference does) and gives up on the probe after upgrade_timeout_ms. */
static void upgrade_tick(eio_session *s)
{
    loop_timer_start(s->srv->l, &s->upgrade, 100, upgrade_check_cb, s);
}

static void upgrade_check_cb(loop *l, void *ud)
{
    eio_session *s = ud;
    if (!s->probe)
        return;
    if (s->upgrading && s->poll && s->queue.len == 0)
        eio_polling_release(s, EIO_NOOP);
    if (loop_now(l) - s->probe_started >= s->srv->cfg.upgrade_timeout_ms) {
        wsconn *c = s->probe;
        s->probe = NULL;
        s->upgrading = false;
        wsconn_detach(c);
        wsconn_close(c, WS_CLOSE_NORMAL);
        return;
    }
    upgrade_tick(s);
}

void eio_session_probe_start(eio_session *s, wsconn *c)
{
    s->probe = c;
    s->probe_started = loop_now(s->srv->l);
    upgrade_tick(s);
}

void eio_session_probe_packet(eio_session *s, wsconn *c, const eio_in *pkt)
{
    if (s->probe != c || s->state != EIO_S_OPEN)
        return;
    if (pkt->type == EIO_PING && pkt->len == 5 && memcmp(pkt->data, "probe", 5) == 0) {
        eio_packet *pong = eio_packet_new(EIO_PONG, false, "probe", 5);
        if (pong) {
            wsconn_send(c, pong);
            eio_packet_unref(pong);
        }
        s->upgrading = true;
        if (s->poll && s->queue.len == 0)
            eio_polling_release(s, EIO_NOOP);
        return;
    }
    if (pkt->type == EIO_UPGRADE) {
        /* Complete: the WebSocket becomes the transport; what was queued for polling goes
         * out on it, in order. */
        loop_timer_stop(s->srv->l, &s->upgrade);
        s->probe = NULL;
        s->upgrading = false;
        if (s->poll)
            eio_polling_release(s, EIO_NOOP);
        eio_set_transport_counts(s->srv, s, -1);
        s->transport = EIO_T_WEBSOCKET;
        s->ws = c;
        eio_set_transport_counts(s->srv, s, +1);
        pktq q = s->queue;
        memset(&s->queue, 0, sizeof s->queue);
        eio_packet *p;
        while ((p = pktq_pop(&q))) {
            eio_send(s, p);
            eio_packet_unref(p);
        }
        pktq_clear(&q);
        if (s->srv->cb.on_upgrade)
            s->srv->cb.on_upgrade(s, s->srv->ud);
        return;
    }
    /* Anything else on a probe: drop the probe, keep the session. */
    s->probe = NULL;
    s->upgrading = false;
    loop_timer_stop(s->srv->l, &s->upgrade);
    wsconn_detach(c);
    wsconn_close(c, WS_CLOSE_NO_STATUS);
}

void eio_session_probe_closed(eio_session *s, wsconn *c)
{
    if (s->probe != c)
        return;
    s->probe = NULL;
    s->upgrading = false;
    loop_timer_stop(s->srv->l, &s->upgrade);
}

/* ---- sending and closing ---- */

/* A session whose client does not read fast enough is closed, but not from inside the
 * send: the caller may be walking a list of sessions (a broadcast). The heartbeat timer,
 * armed to fire at once, closes it later this turn. */
static int doom(eio_session *s)
{
    if (!s->doomed && s->state == EIO_S_OPEN) {
        s->doomed = true;
        loop_timer_start(s->srv->l, &s->heartbeat, 0, heartbeat_cb, s);
    }
    return -1;
}

void eio_session_overflow(eio_session *s)
{
    doom(s);
}

int eio_send(eio_session *s, eio_packet *p)
{
    if (s->state != EIO_S_OPEN || s->doomed)
        return -1;
    eio_server *srv = s->srv;
    if (s->ws) {
        int r;
        if (s->protocol == 3 && p->binary) {
            /* v3 binary frames carry the packet type first: a copy for this old client */
            eio_packet *q = eio3_ws_binary(p, wsconn_b64(s->ws));
            r = q ? wsconn_send(s->ws, q) : -1;
            eio_packet_unref(q);
        } else {
            r = wsconn_send(s->ws, p);
        }
        return r < 0 ? doom(s) : 0; /* wsconn bounds its output itself */
    }
    if (pktq_push(&s->queue, p, srv->cfg.max_buffered) < 0)
        return doom(s);
    if (s->poll && !s->upgrading)
        eio_session_want_flush(s);
    return 0;
}

int eio_send_text(eio_session *s, const char *data, size_t len)
{
    eio_packet *p = eio_packet_new(EIO_MESSAGE, false, data, len);
    if (!p)
        return -1;
    int r = eio_send(s, p);
    eio_packet_unref(p);
    return r;
}

static void session_close(eio_session *s, const char *reason, enum close_mode mode)
{
    bool by_client = mode == CLOSE_CLIENT;
    if (s->state != EIO_S_OPEN)
        return;
    eio_server *srv = s->srv;
    s->state = EIO_S_CLOSED;
    loop_timer_stop(srv->l, &s->heartbeat);
    loop_timer_stop(srv->l, &s->upgrade);
    flush_unlink(s);
    /* A graceful close of a polling session: what is still queued (often the refusals and the
     * DISCONNECT that explain it) goes out first and the close packet in a later answer, so
     * the client handles those packets before it sees the end. Meanwhile the session
     * lingers, closed, for the GETs that take them. */
    bool linger = mode == CLOSE_GRACEFUL && s->transport == EIO_T_POLLING && !s->ws;
    if (!linger)
        map_del(&srv->sessions, s->sid);
    eio_set_transport_counts(srv, s, -1);
    ip_adjust(srv, s->remote_addr, -1);
    /* A held GET learns of the end: "noop" when the client asked for it, "close" when the
     * server decided (as the reference does). */
    if (s->poll && !linger)
        eio_polling_release(s, by_client ? EIO_NOOP : EIO_CLOSE);
    if (s->ws) {
        wsconn *c = s->ws;
        s->ws = NULL;
        wsconn_detach(c);
        wsconn_close(c, by_client ? WS_CLOSE_NORMAL : WS_CLOSE_NO_STATUS);
    }
    if (s->probe) {
        wsconn *c = s->probe;
        s->probe = NULL;
        wsconn_detach(c);
        wsconn_close(c, WS_CLOSE_NO_STATUS);
    }
    rlogf(RLOG_DEBUG, "Engine.IO session closed", "{\"sid\":\"%s\",\"reason\":\"%s\"}", s->sid,
          reason);
    if (srv->cb.on_close)
        srv->cb.on_close(s, reason, srv->ud);
    if (linger) {
        eio_packet *close = eio_packet_new(EIO_CLOSE, false, NULL, 0);
        if (close) {
            pktq_push(&s->queue, close, 0); /* the last word goes in whatever the size */
            eio_packet_unref(close);
        }
        s->lingering = true;
        loop_timer_start(srv->l, &s->heartbeat, LINGER_MS, linger_cb, s);
        if (s->poll) {
            http_request *req = s->poll;
            s->poll = NULL;
            eio_session_linger_answer(s, req);
        }
        return;
    }
    pktq_clear(&s->queue);
    s->zombie_next = srv->zombies;
    srv->zombies = s;
}

static void linger_end(eio_session *s)
{
    if (!s->lingering)
        return;
    s->lingering = false;
    loop_timer_stop(s->srv->l, &s->heartbeat);
    map_del(&s->srv->sessions, s->sid);
    pktq_clear(&s->queue);
    s->zombie_next = s->srv->zombies;
    s->srv->zombies = s;
}

static void linger_cb(loop *l, void *ud)
{
    linger_end(ud);
}

void eio_session_linger_answer(eio_session *s, http_request *req)
{
    if (!eio_polling_answer_closing(s, req))
        linger_end(s);
}

void eio_close(eio_session *s, const char *reason)
{
    session_close(s, reason, CLOSE_GRACEFUL);
}

void eio_session_transport_closed(eio_session *s, const char *reason)
{
    session_close(s, reason, CLOSE_ERROR);
}

/* ---- accessors ---- */

const char *eio_session_id(const eio_session *s)
{
    return s->sid;
}

eio_session *eio_find(eio_server *srv, const char *sid)
{
    eio_session *s = map_get(&srv->sessions, sid);
    return s && s->state == EIO_S_OPEN ? s : NULL;
}

enum eio_transport eio_session_transport(const eio_session *s)
{
    return (enum eio_transport)s->transport;
}

int eio_session_protocol(const eio_session *s)
{
    return s->protocol;
}

const char *eio_session_remote_addr(const eio_session *s)
{
    return s->remote_addr;
}

const char *eio_session_user_agent(const eio_session *s)
{
    return s->user_agent;
}

const char *eio_session_query(const eio_session *s, const char *name)
{
    for (const char *p = s->query; p && *p;) {
        const char *v = p + strlen(p) + 1;
        if (strcmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

const char *eio_session_query_all(const eio_session *s)
{
    return s->query;
}

void eio_session_set_user(eio_session *s, void *user)
{
    s->user = user;
}

void *eio_session_user(const eio_session *s)
{
    return s->user;
}

int eio_session_opened(eio_session *s)
{
    return session_opened(s);
}
