/* laravel_http.h: HTTP requests out of rtd (the Laravel auth callout) with libcurl's multi
 * interface driven by rtd's loop: curl's sockets are watched by the loop and its timeout is
 * a loop timer, so nothing blocks. Everything runs on the loop thread. */
#ifndef RTD_LARAVEL_HTTP_H
#define RTD_LARAVEL_HTTP_H

#include <stddef.h>

#include "rtd/net/loop.h"

typedef struct lhttp lhttp;

/* status: the HTTP status, or 0 when no answer came (refused, timed out, too big). The body
 * is NUL-ended and lives only during the call. */
typedef void lhttp_done_fn(long status, const char *body, size_t len, void *ud);

lhttp *lhttp_new(loop *l);
/* Cancels what is under way: their callbacks never run. */
void lhttp_free(lhttp *h);
/* POST body (application/x-www-form-urlencoded) to url with headers ("Name: value", NULL
 * ended), no redirects followed, at most timeout_ms. 0 when started, -1 otherwise. */
int lhttp_post(lhttp *h, const char *url, const char *const *headers, const char *body,
               unsigned timeout_ms, size_t max_body, lhttp_done_fn *fn, void *ud);

#endif
