/* eio_polling.c: the HTTP long-polling transport of Engine.IO v4.
 *
 * A GET is answered at once when packets are waiting, otherwise held (suspended in
 * libmicrohttpd) until the session has something to say; the before-sleep hook answers all
 * held GETs that got packets during the turn, so several packets leave in one response.
 * A POST carries one or more packets separated by \x1e and is answered "ok". */
#include "config.h"

#include <string.h>

#include "rtd/eio_internal.h"

static const char text_plain[] = "text/plain; charset=UTF-8";

void eio_polling_open(eio_session *s, http_request *req)
{
    buf b = BUF_INIT;
    if (buf_putc(&b, '0') < 0 || eio_open_payload(s, &b, true) < 0) {
        buf_free(&b);
        http_respond(req, 500, "text/plain", "out of memory", 13);
        return;
    }
    http_respond_buf(req, 200, text_plain, &b);
}

static void respond_queue(eio_session *s, http_request *req)
{
    buf b = BUF_INIT;
    eio_packet *p;
    bool first = true;
    while ((p = pktq_pop(&s->queue))) {
        if (!first)
            buf_putc(&b, 0x1e);
        first = false;
        eio_packet_append_polling(&b, p);
        eio_packet_unref(p);
    }
    s->srv->bytes_out += b.len;
    if (http_request_suspended(req))
        http_resume_respond(req, 200, text_plain, &b);
    else
        http_respond_buf(req, 200, text_plain, &b);
}

void eio_polling_flush(eio_session *s)
{
    http_request *req = s->poll;
    if (!req || s->queue.len == 0)
        return;
    s->poll = NULL;
    respond_queue(s, req);
}

void eio_polling_release(eio_session *s, enum eio_type type)
{
    http_request *req = s->poll;
    if (!req)
        return;
    s->poll = NULL;
    buf b = BUF_INIT;
    buf_putc(&b, '0' + (int)type);
    http_resume_respond(req, 200, text_plain, &b);
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
    if (s->queue.len > 0) {
        respond_queue(s, req);
        return;
    }
    if (s->upgrading) {
        buf b = BUF_INIT;
        buf_putc(&b, '0' + EIO_NOOP);
        http_respond_buf(req, 200, text_plain, &b);
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
    if (s->protocol == 4 && ctype && strncmp(ctype, "application/octet-stream", 24) == 0) {
        eio_http_error(req, 3);
        eio_session_transport_closed(s, "transport error");
        return;
    }
    size_t len;
    const unsigned char *body = http_request_body(req, &len);
    srv->bytes_in += len;
    struct post_ctx ctx = {s};
    /* A body holds at most max_payload bytes, so a packet count bound of the same size
     * only guards against degenerate input. */
    int r = eio_decode_payload(body, len, srv->cfg.max_payload, &srv->scratch, post_packet, &ctx);
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
