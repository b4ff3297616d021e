/* http.h: rtd's HTTP front, libmicrohttpd driven by rtd's own loop.
 *
 * libmicrohttpd runs in external-epoll mode: its epoll fd sits in our loop and MHD_run() is
 * called from it, so HTTP parsing happens on the loop thread and never needs a lock. Routes
 * map a path to a handler that is called once the request (body included) is complete.
 * A handler answers at once (http_respond*), holds the request for a long-poll
 * (http_suspend, later http_resume, which calls the handler again), or turns it into a
 * WebSocket (http_upgrade_websocket), after which the socket belongs to the caller.
 *
 * Ownership: struct http_request belongs to http.c; handlers may keep the pointer while the
 * request is suspended, until they answer it or its on_gone callback runs. */
#ifndef RTD_HTTP_H
#define RTD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/lib/buf.h"
#include "rtd/net/loop.h"

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef void http_handler_fn(http_request *req, void *ud);

struct http_config {
    const char *bind;             /* address to listen on, NULL for every address */
    unsigned port;
    unsigned max_connections;     /* HTTP connections libmicrohttpd accepts at once */
    unsigned max_per_ip;          /* 0: no per-address limit */
    unsigned request_timeout_s;   /* idle / slow request deadline */
    const char *const *cors_origins; /* NULL-terminated exact origins; "*" allows any */
    const char *trust_proxy;      /* "ADDR[,ADDR]": peers whose X-Forwarded-For / X-Real-IP
                                   * are believed; NULL: none */
    const char *static_dir;       /* served under /static/ and for "/" (test page); may be NULL */
};

http_server *http_server_new(loop *l, const struct http_config *cfg, char **err);
void http_server_free(http_server *h);
/* The port actually bound (useful with port 0). */
unsigned http_server_port(const http_server *h);
/* Requests being handled or answered (held long-polls included). */
unsigned http_server_active_requests(const http_server *h);
/* Stops accepting new connections (shutdown keeps serving the ones already open). */
void http_server_quiesce(http_server *h);
/* Routes: prefix match when path ends with '/', exact match otherwise. max_body bounds the
 * request body; a longer one is cut and http_request_too_large() says so. */
int http_route(http_server *h, const char *path, http_handler_fn *fn, void *ud, size_t max_body);

/* The request. Strings are valid while the request is. */
const char *http_request_method(const http_request *r);
const char *http_request_path(const http_request *r);
const char *http_request_query(const http_request *r, const char *name);
/* The raw query string without '?', "" if none. */
const char *http_request_query_string(const http_request *r);
const char *http_request_header(const http_request *r, const char *name);
/* The client's address: the peer's, or, when the peer is a trusted proxy (trust_proxy), the
 * one its X-Forwarded-For (right-most address that is not itself a trusted proxy) or
 * X-Real-IP names, if that is a valid IP address. Canonical text form. */
const char *http_request_remote_addr(const http_request *r);
/* Appends every query parameter as "name\0value\0" pairs, then a final "\0". */
int http_request_copy_query(const http_request *r, buf *out);
const unsigned char *http_request_body(const http_request *r, size_t *len);
bool http_request_too_large(const http_request *r);
/* The handler is being called again after http_resume(). */
bool http_request_resumed(const http_request *r);
/* A WebSocket handshake was asked for (GET with Upgrade: websocket). */
bool http_request_wants_websocket(const http_request *r);

/* Answers. Bodies are copied; http_respond_buf takes b's storage. ctype may be NULL.
 * CORS headers are added when the request's Origin is allowed. */
void http_respond(http_request *r, unsigned status, const char *ctype, const void *body,
                  size_t len);
void http_respond_buf(http_request *r, unsigned status, const char *ctype, buf *b);
/* Adds a header to the next answer of this request. */
void http_add_header(http_request *r, const char *name, const char *value);

/* Long-polling: hold the request. on_gone runs if the client hangs up while it is held
 * (the request is then dead). http_resume() calls the route handler again soon, with
 * http_request_resumed() true, and the handler must answer then. */
void http_suspend(http_request *r, void (*on_gone)(http_request *r, void *ud), void *ud);
void http_resume(http_request *r);
/* Resumes a held request and answers it with this response (status, type, body taken from
 * b) without calling the handler again. */
void http_resume_respond(http_request *r, unsigned status, const char *ctype, buf *b);
bool http_request_suspended(const http_request *r);

/* WebSocket: answers 101 with Sec-WebSocket-Accept (after checking the key and version; a
 * bad handshake is answered 400 and on_upgraded is not called). on_upgraded receives the
 * socket (non-blocking; the caller owns it and closes it; -1 if it could not be taken
 * over) and the bytes the client already
 * sent after its headers (valid during the call only). libmicrohttpd forgets the connection
 * right after the call, so an open WebSocket costs it nothing.
 * ud belongs to the request from this call on: on_upgraded takes it back, and when the
 * request ends without on_upgraded (refused, or the client went away before the 101 was
 * out), free_ud(ud) runs instead (if free_ud is not NULL). Exactly one of the two runs. */
typedef void http_upgraded_fn(void *ud, int fd, const unsigned char *extra, size_t extra_len);
/* Returns 0 when the 101 answer was queued, -1 when the request was refused with a 400
 * (free_ud has then already run). */
int http_upgrade_websocket(http_request *r, http_upgraded_fn *fn, void *ud,
                           void (*free_ud)(void *ud));

#endif
