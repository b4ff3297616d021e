/* wsconn.c: the WebSocket transport: a socket handed over by libmicrohttpd after the 101,
 * read and written by rtd itself.
 *
 * Reading goes through one 64 KiB buffer shared by every connection: an idle connection
 * holds no input buffer, and frames are unmasked and parsed in place. Only an incomplete
 * frame is copied into the connection's own buffer, bounded by maxPayload.
 * Writing: each connection has a ring of references to shared packets (a broadcast is one
 * packet referenced by every recipient). Connections with output are put on a dirty list
 * and flushed with one writev each just before the loop sleeps; a partial write arms
 * EPOLLOUT and the rest goes when the socket drains. With --send-threads, a long dirty list
 * (a broadcast) has its writev calls shared with the send pool's helpers (sendpool.c); what
 * they return is applied here, on the loop thread, exactly as a writev of our own.
 * Every frame is queued by push_frame(), which enforces --max-buffered for all of them but
 * the close frame; at most one pong waits at a time (a newer ping replaces its answer).
 * Closing is the RFC 6455 handshake: send a close frame, wait (bounded) for the peer's,
 * then close the socket. Input nobody will use is not read: after a protocol error (the
 * reader cannot go on) or the peer's close frame, the socket leaves read interest. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rtd/engine/eio3.h"
#include "rtd/engine/wsconn.h"
#include "rtd/lib/log.h"

#define CLOSE_WAIT_MS 1000
#define MAX_IOV 256
/* The send pool takes a dirty list of at least this many sockets, and writes at most
 * POOL_IOV frames per socket in its pass (the rest follows on the loop thread). */
#define POOL_MIN_SOCKETS 32
#define POOL_IOV 64

struct wsconn {
    eio_server *srv;
    eio_session *s;           /* the session this socket serves (or probes), NULL once detached */
    int fd;
    ws_reader rd;
    buf in;                   /* an incomplete frame carried over to the next read */
    eio_packet **out;         /* ring of frames to write */
    uint32_t out_head, out_len, out_cap;
    size_t out_off;           /* bytes of the first frame already written */
    size_t out_bytes;         /* bytes waiting in the ring */
    uint64_t pushed;          /* frames ever queued: the ring's tail position */
    uint64_t pong_at;         /* position of the queued pong, when pong_queued */
    wsconn *dirty_next;
    wsconn *dead_next;
    wsconn *all_prev, *all_next; /* every connection of the server, until freed */
    loop_timer close_timer;
    bool dirty;
    bool want_write;
    bool no_read;             /* input is over: read interest dropped for good */
    bool pong_queued;         /* a pong is in the ring (maybe already written) */
    bool closing;             /* our close frame is queued: nothing else goes out */
    bool peer_closed;         /* the peer sent its close frame or hung up */
    bool released;
    bool b64;                 /* v3: this transport's request asked for base64 binary */
};

struct pending_upgrade {
    eio_server *srv;
    struct eio_handshake hs;  /* new session */
    char sid[UTIL_ID_LEN + 1];/* or the session to upgrade */
    bool b64;                 /* the WebSocket request's own b64 query (v3) */
};

static void release(wsconn *c);
static void overflow(wsconn *c);
static void wsconn_close(wsconn *c, uint16_t code);

/* Tells s (c's session until now) that c is gone: as its probe, or as its active transport
 * (reason is then the session's). */
static void gone(wsconn *c, eio_session *s, const char *reason)
{
    if (!s)
        return;
    if (s->probe.t == c) {
        eio_session_probe_closed(s, c);
    } else if (s->tp.t == c) {
        s->tp.t = NULL;
        eio_session_transport_closed(s, reason);
    }
}

/* ---- output ---- */

static void mark_dirty(wsconn *c)
{
    if (c->dirty || c->released)
        return;
    c->dirty = true;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

/* The one place a frame is queued. With bounded (every frame but the close frame, which
 * must get out), a ring holding more than --max-buffered bytes afterwards is an overflow:
 * the connection's owner is told, and -1 returned. */
static int push_frame(wsconn *c, eio_packet *p, bool bounded)
{
    if (c->out_len == c->out_cap) {
        uint32_t cap = c->out_cap ? c->out_cap * 2 : 4;
        eio_packet **items = malloc(cap * sizeof *items);
        if (!items)
            return -1;
        for (uint32_t i = 0; i < c->out_len; i++)
            items[i] = c->out[(c->out_head + i) % c->out_cap];
        free(c->out);
        c->out = items;
        c->out_head = 0;
        c->out_cap = cap;
    }
    c->out[(c->out_head + c->out_len) % c->out_cap] = eio_packet_ref(p);
    c->out_len++;
    size_t flen;
    eio_packet_ws_frame(p, &flen);
    c->out_bytes += flen;
    c->pushed++;
    mark_dirty(c);
    if (bounded && c->out_bytes > c->srv->cfg.max_buffered) {
        overflow(c);
        return -1;
    }
    return 0;
}

static int wsconn_send(wsconn *c, eio_packet *p)
{
    if (c->closing || c->released)
        return -1;
    return push_frame(c, p, true);
}

/* A control frame (pong, close) as a one-off packet, so it queues behind the data. */
static eio_packet *control_frame(enum ws_opcode op, const void *data, size_t len)
{
    eio_packet *p = eio_packet_alloc(EIO_MESSAGE, true, len);
    if (!p)
        return NULL;
    if (len)
        memcpy(eio_packet_payload(p), data, len);
    uint8_t hdr[WS_MAX_HEADER];
    size_t n = ws_frame_header(hdr, op, true, len);
    memcpy(eio_packet_payload(p) - n, hdr, n);
    p->ws_hdr_len = (uint8_t)n;
    return p;
}

static void update_interest(wsconn *c)
{
    loop_mod_fd(c->srv->l, c->fd, (c->no_read ? 0 : LOOP_READ) | (c->want_write ? LOOP_WRITE : 0));
}

static void set_write_interest(wsconn *c, bool on)
{
    if (c->want_write == on || c->released)
        return;
    c->want_write = on;
    update_interest(c);
}

/* No more input will be used (the reader failed, or the peer's close frame came): stop
 * reading, so that what the peer sends now costs nothing until the socket is closed. A
 * hang-up is still reported (epoll always reports it). */
static void stop_reading(wsconn *c)
{
    if (c->no_read || c->released)
        return;
    c->no_read = true;
    update_interest(c);
}

/* Points iov (at most max entries) at the queued frames; *total gets their length. */
static int gather(const wsconn *c, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    *total = 0;
    for (uint32_t i = 0; i < c->out_len && n < max; i++) {
        size_t flen;
        const unsigned char *f = eio_packet_ws_frame(c->out[(c->out_head + i) % c->out_cap],
                                                     &flen);
        size_t skip = i == 0 ? c->out_off : 0;
        iov[n].iov_base = (void *)(f + skip);
        iov[n].iov_len = flen - skip;
        *total += iov[n].iov_len;
        n++;
    }
    return n;
}

/* Accounts for a writev of `total` queued bytes that returned w (err: its errno).
 * Returns 1 if the socket may take more now, 0 if it is full (EPOLLOUT armed), -1 if the
 * connection died. */
static int wrote(wsconn *c, ssize_t w, int err, size_t total)
{
    if (w < 0) {
        if (err == EAGAIN || err == EWOULDBLOCK) {
            set_write_interest(c, true);
            return 0;
        }
        return err == EINTR ? 1 : -1;
    }
    size_t left = (size_t)w;
    c->out_bytes -= left;
    c->srv->bytes_out += left;
    while (left > 0) {
        eio_packet *p = c->out[c->out_head];
        size_t flen;
        eio_packet_ws_frame(p, &flen);
        size_t rest = flen - c->out_off;
        if (left < rest) {
            c->out_off += left;
            break;
        }
        left -= rest;
        c->out_off = 0;
        c->out_head = (c->out_head + 1) % c->out_cap;
        c->out_len--;
        eio_packet_unref(p);
    }
    if ((size_t)w < total) {
        set_write_interest(c, true);
        return 0;
    }
    return 1;
}

/* Writes as much as the socket takes. Returns -1 if the connection died. */
static int flush(wsconn *c)
{
    while (c->out_len > 0) {
        struct iovec iov[MAX_IOV];
        size_t total;
        int n = gather(c, iov, MAX_IOV, &total);
        ssize_t w = writev(c->fd, iov, n);
        int r = wrote(c, w, w < 0 ? errno : 0, total);
        if (r <= 0)
            return r;
    }
    set_write_interest(c, false);
    if (c->closing && c->peer_closed)
        release(c);
    return 0;
}

/* Answers a ping. A pong still waiting in the ring (not begun) is replaced by this one: an
 * endpoint may answer only the most recent ping (RFC 6455 5.5.3), so a client that pings
 * without reading holds one pong, not one per ping. */
static void queue_pong(wsconn *c, const ws_event *ev)
{
    eio_packet *p = control_frame(WS_OP_PONG, ev->data, ev->len);
    if (!p)
        return;
    uint64_t head_at = c->pushed - c->out_len;
    if (c->pong_queued && c->pong_at >= head_at && (c->pong_at > head_at || c->out_off == 0)) {
        uint32_t i = (c->out_head + (uint32_t)(c->pong_at - head_at)) % c->out_cap;
        size_t old_len, new_len;
        eio_packet_ws_frame(c->out[i], &old_len);
        eio_packet_ws_frame(p, &new_len);
        eio_packet_unref(c->out[i]);
        c->out[i] = p; /* takes our reference */
        c->out_bytes = c->out_bytes - old_len + new_len;
        return;
    }
    if (push_frame(c, p, true) == 0) {
        c->pong_queued = true;
        c->pong_at = c->pushed - 1;
    }
    eio_packet_unref(p);
}

static void lost(wsconn *c, const char *reason)
{
    eio_session *s = c->s;
    c->s = NULL;
    c->peer_closed = true;
    gone(c, s, reason);
    release(c);
}

/* Flushes the dirty list through the send pool: one writev per socket (up to POOL_IOV
 * frames), shared by the loop thread and the helpers; the results are applied here, on the
 * loop thread, and a socket with more to write finishes in flush(). Returns false, having
 * done nothing, when the list is too short to be worth the helpers' wake-up. */
static bool flush_batch(eio_server *srv)
{
    size_t n = 0, niov = 0;
    for (wsconn *c = srv->dirty; c; c = c->dirty_next)
        if (!c->released && !c->want_write && c->out_len > 0) {
            n++;
            niov += c->out_len < POOL_IOV ? c->out_len : POOL_IOV;
        }
    if (n < POOL_MIN_SOCKETS)
        return false;
    if (n > srv->pool_jobs_cap) {
        void *j = realloc(srv->pool_jobs, n * sizeof *srv->pool_jobs);
        void *w = realloc(srv->pool_conns, n * sizeof *srv->pool_conns);
        if (j)
            srv->pool_jobs = j;
        if (w)
            srv->pool_conns = w;
        if (!j || !w)
            return false;
        srv->pool_jobs_cap = n;
    }
    if (niov > srv->pool_iov_cap) {
        void *v = realloc(srv->pool_iov, niov * sizeof *srv->pool_iov);
        if (!v)
            return false;
        srv->pool_iov = v;
        srv->pool_iov_cap = niov;
    }
    /* Take the whole list: callbacks run while results are applied may mark sockets dirty
     * again, and those go on a fresh list. */
    wsconn *list = srv->dirty;
    srv->dirty = NULL;
    size_t k = 0, at = 0;
    for (wsconn *c = list, *next; c; c = next) {
        next = c->dirty_next;
        c->dirty = false;
        if (c->released || c->want_write || c->out_len == 0)
            continue;
        struct send_job *j = &srv->pool_jobs[k];
        struct iovec *iov = &srv->pool_iov[at];
        size_t total;
        j->fd = c->fd;
        j->iovcnt = gather(c, iov, POOL_IOV, &total);
        j->iov = iov;
        j->total = total;
        srv->pool_conns[k] = c;
        at += (size_t)j->iovcnt;
        k++;
    }
    sendpool_run(srv->pool, srv->pool_jobs, k);
    for (size_t i = 0; i < k; i++) {
        wsconn *c = srv->pool_conns[i];
        struct send_job *j = &srv->pool_jobs[i];
        if (c->released)
            continue;
        int r = wrote(c, j->result, j->err, j->total);
        if (r > 0)
            r = flush(c);
        if (r < 0)
            lost(c, "transport error");
    }
    return true;
}

void wsconn_flush_all(eio_server *srv)
{
    bool batch = srv->pool != NULL; /* one try per list: counting it is a walk */
    while (srv->dirty) {
        if (batch) {
            batch = flush_batch(srv);
            if (batch)
                continue;
        }
        wsconn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        c->dirty = false;
        if (!c->released && !c->want_write && flush(c) < 0)
            lost(c, "transport error");
    }
}

/* ---- closing ---- */

static void close_timeout(loop *l, void *ud)
{
    release(ud);
}

static void wsconn_close(wsconn *c, uint16_t code)
{
    if (c->closing || c->released)
        return;
    uint8_t frame[WS_MAX_HEADER + 125];
    size_t n = ws_close_frame(frame, code, NULL);
    /* ws_close_frame wrote header + payload; requeue the payload as a control packet. */
    size_t hdr = 2;
    eio_packet *p = control_frame(WS_OP_CLOSE, frame + hdr, n - hdr);
    if (p) {
        push_frame(c, p, false);
        eio_packet_unref(p);
    }
    c->closing = true;
    if (c->peer_closed && c->out_len == 0) {
        release(c);
        return;
    }
    loop_timer_start(c->srv->l, &c->close_timer, CLOSE_WAIT_MS, close_timeout, c);
}


/* The ring went over --max-buffered. The active transport's session is closed later this
 * turn (the send that found it may be part of a broadcast); a probe or a detached socket
 * is closed here. */
static void overflow(wsconn *c)
{
    eio_session *s = c->s;
    if (s && s->tp.t == c) {
        eio_session_overflow(s);
        return;
    }
    c->s = NULL;
    if (s && s->probe.t == c)
        eio_session_probe_closed(s, c);
    wsconn_close(c, WS_CLOSE_POLICY);
}

static void release(wsconn *c)
{
    if (c->released)
        return;
    c->released = true;
    eio_server *srv = c->srv;
    srv->n_sockets--;
    loop_timer_stop(srv->l, &c->close_timer);
    loop_del_fd(srv->l, c->fd);
    close(c->fd);
    c->fd = -1;
    c->dead_next = srv->dead;
    srv->dead = c;
}

static void wsconn_abort(wsconn *c)
{
    c->s = NULL;
    release(c);
}

void wsconn_free_dead(eio_server *srv)
{
    while (srv->dead) {
        wsconn *c = srv->dead;
        srv->dead = c->dead_next;
        if (c->all_prev)
            c->all_prev->all_next = c->all_next;
        else
            srv->ws_all = c->all_next;
        if (c->all_next)
            c->all_next->all_prev = c->all_prev;
        while (c->out_len > 0) {
            eio_packet_unref(c->out[c->out_head]);
            c->out_head = (c->out_head + 1) % c->out_cap;
            c->out_len--;
        }
        free(c->out);
        buf_free(&c->in);
        ws_reader_free(&c->rd);
        free(c);
    }
}

/* Server shutdown: the sessions are gone, so what is left is detached (a close handshake
 * waiting for the peer, or a probe's socket). Release and free them all. */
void wsconn_release_all(eio_server *srv)
{
    for (wsconn *c = srv->ws_all; c; c = c->all_next) {
        c->s = NULL;
        release(c);
    }
    wsconn_free_dead(srv);
}

/* ---- input ---- */

static void on_message(wsconn *c, const ws_event *ev)
{
    eio_session *s = c->s;
    if (!s || c->closing)
        return;
    eio_in pkt;
    bool binary = ev->op == WS_OP_BINARY;
    int r = s->protocol == 3 ? eio3_decode_ws(ev->data, ev->len, binary, &c->srv->scratch, &pkt)
                             : eio_decode_ws(ev->data, ev->len, binary, &pkt);
    if (r < 0) {
        if (s->probe.t == c) {
            eio_session_probe_packet(s, c, &(eio_in){.type = EIO_OPEN});
            return;
        }
        eio_session_transport_closed(s, "parse error");
        return;
    }
    if (s->probe.t == c)
        eio_session_probe_packet(s, c, &pkt);
    else
        eio_session_packet(s, &pkt);
}

/* Parses frames from data; returns bytes used, or -1 when the connection is finished. */
static ssize_t parse(wsconn *c, uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && !c->released) {
        size_t used = 0;
        ws_event ev;
        int r = ws_reader_parse(&c->rd, data + off, len - off, &used, &ev);
        if (r < 0) {
            eio_session *s = c->s;
            c->s = NULL;
            wsconn_close(c, (uint16_t)-r);
            stop_reading(c); /* the reader cannot resync: the rest of the stream is noise */
            gone(c, s, "transport error");
            return -1;
        }
        off += used;
        if (r == 0) {
            if (used == 0)
                break;
            continue;
        }
        switch (ev.op) {
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            on_message(c, &ev);
            break;
        case WS_OP_PING:
            if (!c->closing)
                queue_pong(c, &ev);
            break;
        case WS_OP_PONG:
            break;
        case WS_OP_CLOSE: {
            bool was_closing = c->closing;
            c->peer_closed = true;
            if (!was_closing)
                wsconn_close(c, ev.close_code);
            eio_session *s = c->s;
            c->s = NULL;
            gone(c, s, "transport close");
            if (c->out_len == 0)
                release(c);
            else
                stop_reading(c); /* nothing may follow a close frame */
            return -1;
        }
        default:
            break;
        }
    }
    return (ssize_t)off;
}

static void on_readable(wsconn *c)
{
    eio_server *srv = c->srv;
    uint8_t *data;
    size_t len;
    ssize_t n;
    if (c->in.len == 0) {
        n = read(c->fd, srv->rbuf, srv->rbuf_size);
        data = srv->rbuf;
    } else {
        /* Carry-over: read straight behind the partial frame, up to one full frame. */
        size_t room = srv->cfg.max_payload + 64;
        if (buf_reserve(&c->in, 64 * 1024) < 0) {
            lost(c, "transport error");
            return;
        }
        size_t want = c->in.cap - c->in.len;
        if (want > room)
            want = room;
        n = read(c->fd, c->in.data + c->in.len, want);
        if (n > 0)
            c->in.len += (size_t)n;
        data = (uint8_t *)c->in.data;
    }
    if (n == 0) {
        lost(c, "transport close");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            lost(c, "transport error");
        return;
    }
    srv->bytes_in += (size_t)n;
    len = c->in.len ? c->in.len : (size_t)n;
    ssize_t used = parse(c, data, len);
    if (c->released)
        return;
    if (used < 0 || c->no_read) {
        buf_free(&c->in); /* nothing of it will be parsed */
        return;
    }
    size_t rest = len - (size_t)used;
    if (data == srv->rbuf) {
        if (rest && buf_append(&c->in, data + used, rest) < 0)
            lost(c, "transport error");
    } else if (rest == 0) {
        buf_free(&c->in); /* back to holding nothing while idle */
    } else {
        buf_consume(&c->in, (size_t)used);
    }
}

static void on_io(loop *l, int fd, void *ud, int mask)
{
    wsconn *c = ud;
    if ((mask & LOOP_WRITE) && !c->released) {
        c->want_write = false; /* flush re-arms it if the socket is still full */
        update_interest(c);
        if (flush(c) < 0) {
            lost(c, "transport error");
            return;
        }
    }
    if (c->no_read && !c->released) {
        /* Not reading: only a hang-up brings us here. Write what the socket takes (our
         * close frame), then let it go. */
        if (mask & LOOP_HUP) {
            flush(c);
            if (!c->released)
                lost(c, "transport close");
        }
        return;
    }
    if ((mask & (LOOP_READ | LOOP_HUP)) && !c->released)
        on_readable(c);
}

/* ---- upgrade ---- */

static wsconn *wsconn_new(eio_server *srv, int fd)
{
    wsconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->fd = fd;
    ws_reader_init(&c->rd, srv->cfg.max_payload);
    if (loop_add_fd(srv->l, fd, LOOP_READ, on_io, c) < 0) {
        ws_reader_free(&c->rd);
        free(c);
        return NULL;
    }
    srv->n_sockets++;
    c->all_next = srv->ws_all;
    if (srv->ws_all)
        srv->ws_all->all_prev = c;
    srv->ws_all = c;
    return c;
}

static void free_pending_upgrade(void *ud)
{
    struct pending_upgrade *pu = ud;
    eio_handshake_free(&pu->hs);
    free(pu);
}

static void on_upgraded(void *ud, int fd, const unsigned char *extra, size_t extra_len)
{
    struct pending_upgrade *pu = ud;
    eio_server *srv = pu->srv;
    wsconn *c = fd >= 0 ? wsconn_new(srv, fd) : NULL;
    if (c)
        c->b64 = pu->b64;
    if (!c) {
        if (fd >= 0)
            close(fd);
        free_pending_upgrade(pu);
        return;
    }
    if (pu->sid[0]) {
        eio_session *s = eio_find(srv, pu->sid);
        if (!s || s->probe.ops || s->transport != EIO_T_POLLING)
            wsconn_close(c, WS_CLOSE_NO_STATUS); /* as the reference: accept, then close */
        else {
            c->s = s;
            eio_session_probe_start(s, &eio_wsconn_ops, c);
        }
    } else {
        eio_session *s = eio_session_create(srv, &pu->hs, EIO_T_WEBSOCKET, &eio_wsconn_ops, c);
        if (!s) {
            wsconn_close(c, WS_CLOSE_INTERNAL);
        } else {
            c->s = s;
            buf b = BUF_INIT;
            eio_packet *open = NULL;
            if (eio_open_payload(s, &b, false) == 0)
                open = eio_packet_new(EIO_OPEN, false, b.data, b.len);
            buf_free(&b);
            if (!open) {
                eio_session_transport_closed(s, "out of memory");
            } else {
                wsconn_send(c, open);
                eio_packet_unref(open);
                eio_session_opened(s);
            }
        }
    }
    free_pending_upgrade(pu);
    if (extra_len && !c->released) {
        if (buf_append(&c->in, extra, extra_len) < 0) {
            lost(c, "transport error");
            return;
        }
        ssize_t used = parse(c, (uint8_t *)c->in.data, c->in.len);
        if (c->released)
            return;
        if (used < 0 || c->no_read)
            buf_free(&c->in);
        else if (used > 0)
            buf_consume(&c->in, (size_t)used);
    }
}

void eio_websocket_request(eio_server *srv, eio_session *s, struct eio_handshake *hs,
                           http_request *req)
{
    struct pending_upgrade *pu = calloc(1, sizeof *pu);
    if (!pu) {
        if (hs)
            eio_handshake_free(hs);
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    pu->srv = srv;
    const char *b64 = http_request_query(req, "b64");
    pu->b64 = b64 && *b64 && strcmp(b64, "0") != 0 && strcmp(b64, "false") != 0;
    if (s) {
        memcpy(pu->sid, s->sid, sizeof pu->sid);
    } else {
        pu->hs = *hs;
        memset(hs, 0, sizeof *hs);
    }
    /* pu is the request's now: on_upgraded or free_pending_upgrade gets it, whatever the
     * client does. */
    http_upgrade_websocket(req, on_upgraded, pu, free_pending_upgrade);
}

/* ---- what the session calls (eio_transport.h); t is the wsconn, NULL once it is gone ---- */

static int ws_send(eio_session *s, void *t, eio_packet *p)
{
    wsconn *c = t;
    if (!c)
        return -1;
    if (s->protocol == 3 && p->binary) {
        /* v3 binary frames carry the packet type first: a copy for this old client */
        eio_packet *q = eio3_ws_binary(p, c->b64);
        int r = q ? wsconn_send(c, q) : -1;
        eio_packet_unref(q);
        return r;
    }
    return wsconn_send(c, p);
}

static void ws_pause(eio_session *s, void *t)
{
    /* a WebSocket holds no request */
}

static void ws_close(eio_session *s, void *t, enum eio_transport_end how)
{
    wsconn *c = t;
    if (!c)
        return;
    c->s = NULL;
    wsconn_close(c, how == EIO_END_CLIENT ? WS_CLOSE_NORMAL : WS_CLOSE_NO_STATUS);
}

static void ws_abort(eio_session *s, void *t)
{
    if (t)
        wsconn_abort(t);
}

const struct eio_transport_ops eio_wsconn_ops = {
    .name = "websocket",
    .send = ws_send,
    .pause = ws_pause,
    .close = ws_close,
    .abort = ws_abort,
    .can_linger = false,
};
