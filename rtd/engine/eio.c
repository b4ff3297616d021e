/* eio.c: the Engine.IO session core: sessions from handshake to close, the heartbeat, the
 * upgrade state machine, sending and closing (see eio.h). It drives its transports only
 * through eio_transport.h; routing requests and the end of each loop turn live in the
 * server front, eio_server.c.
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

#include "rtd/engine/eio_session.h"
#include "rtd/lib/log.h"

/* The reference server's error codes and messages. */
static const char *const error_messages[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method", "Bad request",
    "Forbidden",         "Unsupported protocol version",
};


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
    unsigned status = code == EIO_ERR_FORBIDDEN ? 403 : 400;
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

unsigned eio_ip_sessions(eio_server *srv, const char *addr)
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
    free(s->cookie);
    free(s->referer);
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

eio_session *eio_session_next_flush(eio_server *srv)
{
    eio_session *s = srv->flush_head;
    if (s)
        flush_unlink(s);
    return s;
}

void eio_sessions_reap(eio_server *srv)
{
    while (srv->zombies) {
        eio_session *s = srv->zombies;
        srv->zombies = s->zombie_next;
        free_session(s);
    }
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

/* ---- handshake ---- */

void eio_handshake_free(struct eio_handshake *hs)
{
    free(hs->remote_addr);
    free(hs->user_agent);
    free(hs->cookie);
    free(hs->referer);
    free(hs->query);
    memset(hs, 0, sizeof *hs);
}

int eio_handshake_capture(struct eio_handshake *hs, http_request *req, int protocol,
                          size_t keep_headers)
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
    const char *cookie = keep_headers ? http_request_header(req, "Cookie") : NULL;
    const char *referer = keep_headers ? http_request_header(req, "Referer") : NULL;
    if ((cookie && *cookie && strlen(cookie) <= keep_headers && !(hs->cookie = strdup(cookie))) ||
        (referer && *referer && strlen(referer) <= keep_headers && !(hs->referer = strdup(referer)))) {
        eio_handshake_free(hs);
        return -1;
    }
    const char *b64 = http_request_query(req, "b64");
    hs->b64 = b64 && *b64 && strcmp(b64, "0") != 0 && strcmp(b64, "false") != 0;
    return 0;
}

static void heartbeat_cb(loop *l, void *ud);

eio_session *eio_session_create(eio_server *srv, struct eio_handshake *hs, enum eio_transport t,
                                const struct eio_transport_ops *ops, void *tp)
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
    s->tp = (struct eio_transport_ref){ops, tp};
    s->state = EIO_S_OPEN;
    s->remote_addr = hs->remote_addr;
    s->user_agent = hs->user_agent;
    s->cookie = hs->cookie;
    s->referer = hs->referer;
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
    srv->counts.opened++;
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
    if (pkt->len) {
        srv->counts.packets_in++;
        srv->counts.bytes_in += pkt->len;
    }
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

/* Forgets the probe and ends it (how: as the client's end when the upgrade timed out, as the
 * server's when the probe went wrong). */
static void drop_probe(eio_session *s, enum eio_transport_end how)
{
    struct eio_transport_ref p = s->probe;
    s->probe = (struct eio_transport_ref){NULL, NULL};
    s->upgrading = false;
    loop_timer_stop(s->srv->l, &s->upgrade);
    p.ops->close(s, p.t, how);
}

static void upgrade_check_cb(loop *l, void *ud)
{
    eio_session *s = ud;
    if (!s->probe.ops)
        return;
    if (s->upgrading)
        s->tp.ops->pause(s, s->tp.t);
    if (loop_now(l) - s->probe_started >= s->srv->cfg.upgrade_timeout_ms) {
        drop_probe(s, EIO_END_CLIENT);
        return;
    }
    upgrade_tick(s);
}

void eio_session_probe_start(eio_session *s, const struct eio_transport_ops *ops, void *t)
{
    s->probe = (struct eio_transport_ref){ops, t};
    s->probe_started = loop_now(s->srv->l);
    upgrade_tick(s);
}

void eio_session_probe_packet(eio_session *s, void *t, const eio_in *pkt)
{
    if (!s->probe.ops || s->probe.t != t || s->state != EIO_S_OPEN)
        return;
    if (pkt->type == EIO_PING && pkt->len == 5 && memcmp(pkt->data, "probe", 5) == 0) {
        eio_packet *pong = eio_packet_new(EIO_PONG, false, "probe", 5);
        if (pong) {
            s->probe.ops->send(s, t, pong);
            eio_packet_unref(pong);
        }
        s->upgrading = true;
        s->tp.ops->pause(s, s->tp.t);
        return;
    }
    if (pkt->type == EIO_UPGRADE) {
        /* Complete: the probe becomes the transport (the old one lets a held request go
         * with a noop); what was queued for polling goes out on it, in order. */
        loop_timer_stop(s->srv->l, &s->upgrade);
        struct eio_transport_ref old = s->tp;
        s->tp = s->probe;
        s->probe = (struct eio_transport_ref){NULL, NULL};
        s->upgrading = false;
        old.ops->close(s, old.t, EIO_END_CLIENT);
        eio_set_transport_counts(s->srv, s, -1);
        s->transport = EIO_T_WEBSOCKET;
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
    drop_probe(s, EIO_END_SERVER);
}

void eio_session_probe_closed(eio_session *s, void *t)
{
    if (!s->probe.ops || s->probe.t != t)
        return;
    s->probe = (struct eio_transport_ref){NULL, NULL};
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
    if (p->len) {
        s->srv->counts.packets_out++;
        s->srv->counts.bytes_out += p->len;
    }
    /* the transport bounds its output itself */
    return s->tp.ops->send(s, s->tp.t, p) < 0 ? doom(s) : 0;
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
    bool linger = mode == CLOSE_GRACEFUL && s->tp.ops->can_linger;
    if (!linger)
        map_del(&srv->sessions, s->sid);
    eio_set_transport_counts(srv, s, -1);
    ip_adjust(srv, s->remote_addr, -1);
    /* The transport learns of the end (a held GET hears "noop" when the client asked for
     * it, "close" when the server decided, as the reference does); a lingering one after
     * on_close, whose last packets it still carries. */
    if (!linger) {
        struct eio_transport_ref tp = s->tp;
        s->tp.t = NULL;
        tp.ops->close(s, tp.t, by_client ? EIO_END_CLIENT : EIO_END_SERVER);
    }
    if (s->probe.ops) {
        struct eio_transport_ref p = s->probe;
        s->probe = (struct eio_transport_ref){NULL, NULL};
        p.ops->close(s, p.t, EIO_END_SERVER);
    }
    rlogf(RLOG_DEBUG, "Engine.IO session closed", "{\"sid\":\"%s\",\"reason\":\"%s\"}", s->sid,
          reason);
    struct eio_counts *k = &srv->counts;
    for (size_t i = 0; i < EIO_MAX_REASONS; i++)
        if (!k->reason[i][0] || !strncmp(k->reason[i], reason, sizeof k->reason[i] - 1) ||
            i == EIO_MAX_REASONS - 1) {
            if (!k->reason[i][0])
                snprintf(k->reason[i], sizeof k->reason[i], "%s",
                         i == EIO_MAX_REASONS - 1 ? "other" : reason);
            k->closed[i]++;
            break;
        }
    if (srv->cb.on_close)
        srv->cb.on_close(s, reason, srv->ud);
    if (linger) {
        s->lingering = true;
        srv->n_lingering++;
        loop_timer_start(srv->l, &s->heartbeat, LINGER_MS, linger_cb, s);
        s->tp.ops->close(s, s->tp.t, EIO_END_GRACEFUL);
        return;
    }
    pktq_clear(&s->queue);
    s->zombie_next = srv->zombies;
    srv->zombies = s;
}

void eio_session_linger_end(eio_session *s)
{
    if (!s->lingering)
        return;
    s->lingering = false;
    s->srv->n_lingering--;
    loop_timer_stop(s->srv->l, &s->heartbeat);
    map_del(&s->srv->sessions, s->sid);
    pktq_clear(&s->queue);
    s->zombie_next = s->srv->zombies;
    s->srv->zombies = s;
}

static void linger_cb(loop *l, void *ud)
{
    eio_session_linger_end(ud);
}

void eio_session_shutdown(eio_session *s)
{
    if (s->lingering) {
        eio_session_linger_end(s);
        return;
    }
    if (s->tp.t)
        s->tp.ops->abort(s, s->tp.t);
    if (s->probe.ops)
        s->probe.ops->abort(s, s->probe.t);
    session_close(s, "server shutting down", CLOSE_ERROR);
    eio_session_linger_end(s);
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

const char *eio_session_cookie(const eio_session *s)
{
    return s->cookie;
}

const char *eio_session_referer(const eio_session *s)
{
    return s->referer;
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
