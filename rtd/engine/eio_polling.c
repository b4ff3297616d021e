/* eio_polling.c: the HTTP long-polling transport (Engine.IO v4, and v3 for --allow-eio3).
 *
 * A GET is answered at once when packets are waiting, otherwise held (suspended in
 * libmicrohttpd) until the session has something to say; the before-sleep hook answers all
 * held GETs that got packets during the turn, so several packets leave in one response.
 * A POST carries one or more packets and is answered "ok".
 * v4 separates packets with \x1e; v3 prefixes lengths, may use the binary payload format,
 * and may wrap everything in JSONP (see eio3.c). */
#include "config.h"

#include <string.h>

#include "rtd/engine/eio3.h"
#include "rtd/engine/eio_polling.h"

static const char text_plain[] = "text/plain; charset=UTF-8";

/* Remembers the JSONP index of a request (v3 only), digits only, "" when absent. */
static void capture_jsonp(eio_session *s, http_request *req)
{
    const char *j = s->protocol == 3 ? http_request_query(req, "j") : NULL;
    size_t n = 0;
    for (; j && *j && n + 1 < sizeof s->jsonp; j++)
        if (*j >= '0' && *j <= '9')
            s->jsonp[n++] = *j;
    s->jsonp[n] = '\0';
    s->jsonp_set = j != NULL;
}

/* Sends body (a complete payload) as the answer to req, held or not. */
static void answer(eio_session *s, http_request *req, buf *body, bool binary)
{
    const char *ctype = binary ? "application/octet-stream" : text_plain;
    if (s->jsonp_set) {
        buf wrapped = BUF_INIT;
        eio3_jsonp_wrap(&wrapped, s->jsonp, body->data ? body->data : "", body->len);
        buf_free(body);
        *body = wrapped;
        ctype = "text/javascript; charset=UTF-8";
    }
    s->srv->bytes_out += body->len;
    if (http_request_suspended(req))
        http_resume_respond(req, 200, ctype, body);
    else
        http_respond_buf(req, 200, ctype, body);
}

void eio_polling_open(eio_session *s, http_request *req)
{
    buf b = BUF_INIT;
    capture_jsonp(s, req);
    int r;
    if (s->protocol == 3) {
        buf open = BUF_INIT;
        r = buf_putc(&open, '0') | eio_open_payload(s, &open, true);
        r |= buf_printf(&b, "%zu:", open.len) | buf_append(&b, open.data, open.len);
        buf_free(&open);
    } else {
        r = buf_putc(&b, '0') | eio_open_payload(s, &b, true);
    }
    if (r) {
        buf_free(&b);
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    answer(s, req, &b, false);
}

/* Answers req with the queued packets; with keep_last, the last one (a closing session's
 * close packet) stays for the next GET. */
static void respond_queue(eio_session *s, http_request *req, bool keep_last)
{
    buf b = BUF_INIT;
    bool binary = false;
    size_t count = s->queue.len - (keep_last ? 1 : 0);
    if (s->protocol == 3) {
        /* One format for the whole answer: binary when the client takes it and something
         * binary is queued. Encoded in batches of 256 packets; the format concatenates. */
        bool has_binary = false;
        for (size_t i = 0; i < count; i++)
            has_binary |= s->queue.items[(s->queue.head + i) % s->queue.cap]->binary;
        binary = has_binary && !s->b64 && !s->jsonp_set;
        eio_packet *pkts[256];
        while (count > 0) {
            size_t n = 0;
            while (n < 256 && count > 0) {
                pkts[n++] = pktq_pop(&s->queue);
                count--;
            }
            eio3_encode_payload(&b, pkts, n, binary);
            for (size_t i = 0; i < n; i++)
                eio_packet_unref(pkts[i]);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            eio_packet *p = pktq_pop(&s->queue);
            if (i)
                buf_putc(&b, 0x1e);
            eio_packet_append_polling(&b, p);
            eio_packet_unref(p);
        }
    }
    answer(s, req, &b, binary);
}

void eio_polling_flush(eio_session *s)
{
    http_request *req = s->poll;
    if (!req || s->queue.len == 0)
        return;
    s->poll = NULL;
    respond_queue(s, req, false);
}

/* A closing session's queue ends with its close packet. Answers req with the packets before
 * it, or with the close packet alone when nothing else is left; returns true when the close
 * packet still waits for another GET. */
static bool answer_closing(eio_session *s, http_request *req)
{
    capture_jsonp(s, req);
    bool more = s->queue.len > 1;
    respond_queue(s, req, more);
    return more;
}

static void single(eio_session *s, http_request *req, enum eio_type type)
{
    buf b = BUF_INIT;
    if (s->protocol == 3)
        buf_puts(&b, "1:");
    buf_putc(&b, '0' + (int)type);
    answer(s, req, &b, false);
}

/* Answers the held GET with this single packet type (noop, close). */
static void release(eio_session *s, enum eio_type type)
{
    http_request *req = s->poll;
    if (!req)
        return;
    s->poll = NULL;
    single(s, req, type);
}

static void poll_gone(http_request *req, void *ud)
{
    eio_session *s = ud;
    if (s->poll != req)
        return;
    s->poll = NULL;
    /* The reference treats an abandoned poll as the end of the session. */
    eio_session_transport_closed(s, "transport error");
}

struct post_ctx {
    eio_session *s;
};

static int post_packet(void *ud, const eio_in *pkt)
{
    struct post_ctx *ctx = ud;
    if (eio_session_packet(ctx->s, pkt) < 0)
        return -1;
    return ctx->s->state == EIO_S_OPEN ? 0 : 1;
}

static void handle_get(eio_session *s, http_request *req)
{
    if (s->poll) {
        /* Two GETs at once: the protocol says close the session. */
        http_respond(req, 400, NULL, "", 0);
        eio_session_transport_closed(s, "transport error");
        return;
    }
    capture_jsonp(s, req);
    if (s->queue.len > 0) {
        respond_queue(s, req, false);
        return;
    }
    if (s->upgrading) {
        single(s, req, EIO_NOOP);
        return;
    }
    s->poll = req;
    http_suspend(req, poll_gone, s);
}

static void handle_post(eio_session *s, http_request *req)
{
    eio_server *srv = s->srv;
    if (http_request_too_large(req)) {
        http_respond(req, 413, NULL, "", 0);
        eio_session_transport_closed(s, "transport error");
        return;
    }
    const char *ctype = http_request_header(req, "Content-Type");
    bool octets = ctype && strncmp(ctype, "application/octet-stream", 24) == 0;
    if (s->protocol == 4 && octets) {
        eio_http_error(req, 3);
        eio_session_transport_closed(s, "transport error");
        return;
    }
    size_t len;
    const unsigned char *body = http_request_body(req, &len);
    srv->bytes_in += len;
    struct post_ctx ctx = {s};
    int r;
    /* A body holds at most max_payload bytes, so a packet count bound of the same size
     * only guards against degenerate input. */
    if (s->protocol == 3) {
        if (s->protocol == 3 && http_request_query(req, "j")) {
            buf form = BUF_INIT;
            r = eio3_jsonp_body(body, len, &form);
            if (r == 0)
                r = eio3_decode_payload((const unsigned char *)(form.data ? form.data : ""),
                                        form.len, false, srv->cfg.max_payload, &srv->scratch,
                                        post_packet, &ctx);
            buf_free(&form);
        } else {
            r = eio3_decode_payload(body, len, octets, srv->cfg.max_payload, &srv->scratch,
                                    post_packet, &ctx);
        }
    } else {
        r = eio_decode_payload(body, len, srv->cfg.max_payload, &srv->scratch, post_packet,
                               &ctx);
    }
    if (r < 0) {
        eio_http_error(req, 3);
        eio_session_transport_closed(s, "parse error");
        return;
    }
    http_respond(req, 200, "text/html", "ok", 2);
}

void eio_polling_request(eio_session *s, http_request *req)
{
    const char *method = http_request_method(req);
    if (strcmp(method, "GET") == 0)
        handle_get(s, req);
    else if (strcmp(method, "POST") == 0)
        handle_post(s, req);
    else
        eio_http_error(req, 3);
}

void eio_polling_linger_answer(eio_session *s, http_request *req)
{
    if (!answer_closing(s, req))
        eio_session_linger_end(s);
}

/* ---- what the session calls (eio_transport.h); the state is the session's, t is NULL ---- */

static int polling_send(eio_session *s, void *t, eio_packet *p)
{
    if (pktq_push(&s->queue, p, s->srv->cfg.max_buffered) < 0)
        return -1;
    if (s->poll && !s->upgrading)
        eio_session_want_flush(s);
    return 0;
}

/* An upgrade is under way: a held GET with nothing to carry goes with a noop. */
static void polling_pause(eio_session *s, void *t)
{
    if (s->poll && s->queue.len == 0)
        release(s, EIO_NOOP);
}

static void polling_close(eio_session *s, void *t, enum eio_transport_end how)
{
    if (how != EIO_END_GRACEFUL) {
        release(s, how == EIO_END_CLIENT ? EIO_NOOP : EIO_CLOSE);
        return;
    }
    /* Graceful: the close packet goes last, in whatever answer takes it. */
    eio_packet *close = eio_packet_new(EIO_CLOSE, false, NULL, 0);
    if (close) {
        pktq_push(&s->queue, close, 0); /* the last word goes in whatever the size */
        eio_packet_unref(close);
    }
    if (s->poll) {
        http_request *req = s->poll;
        s->poll = NULL;
        eio_polling_linger_answer(s, req);
    }
}

static void polling_abort(eio_session *s, void *t)
{
    /* nothing to drop: closing the session answers a held GET */
}

const struct eio_transport_ops eio_polling_ops = {
    .name = "polling",
    .send = polling_send,
    .pause = polling_pause,
    .close = polling_close,
    .abort = polling_abort,
    .can_linger = true,
};
