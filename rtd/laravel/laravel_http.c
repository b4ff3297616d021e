/* laravel_http.c: libcurl multi on rtd's loop (see laravel_http.h). */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "rtd/laravel/laravel_http.h"
#include "rtd/lib/buf.h"

struct lhttp {
    loop *l;
    CURLM *multi;
    loop_timer timer;
    struct req *reqs; /* under way, to free them with the multi */
};

struct req {
    struct req *next, **prev;
    CURL *easy;
    struct curl_slist *headers;
    buf body;
    size_t max_body;
    bool too_big;
    lhttp_done_fn *fn;
    void *ud;
};

static void req_free(lhttp *h, struct req *r)
{
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_free(&r->body);
    if (r->next)
        r->next->prev = r->prev;
    *r->prev = r->next;
    free(r);
}

static void check_done(lhttp *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        long status = 0;
        if (m->data.result == CURLE_OK && !r->too_big)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        lhttp_done_fn *fn = r->fn;
        void *ud = r->ud;
        buf body = r->body;
        r->body = (buf)BUF_INIT;
        req_free(h, r);
        if (buf_terminate(&body) < 0) /* the body is NUL-ended for the callback */
            status = 0;
        fn(status, body.data ? (const char *)body.data : "", body.len, ud);
        buf_free(&body);
    }
}

static void on_fd(loop *l, int fd, void *ud, int mask)
{
    (void)l;
    lhttp *h = ud;
    int ev = (mask & LOOP_READ ? CURL_CSELECT_IN : 0) | (mask & LOOP_WRITE ? CURL_CSELECT_OUT : 0) |
             (mask & LOOP_HUP ? CURL_CSELECT_ERR : 0);
    int running;
    curl_multi_socket_action(h->multi, fd, ev, &running);
    check_done(h);
}

static void on_timer(loop *l, void *ud)
{
    (void)l;
    lhttp *h = ud;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    lhttp *h = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp)
            loop_del_fd(h->l, s);
        curl_multi_assign(h->multi, s, NULL);
        return 0;
    }
    int mask = (what & CURL_POLL_IN ? LOOP_READ : 0) | (what & CURL_POLL_OUT ? LOOP_WRITE : 0);
    if (!socketp) {
        if (loop_add_fd(h->l, s, mask, on_fd, h) == 0)
            curl_multi_assign(h->multi, s, h);
    } else {
        loop_mod_fd(h->l, s, mask);
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    lhttp *h = userp;
    loop_timer_stop(h->l, &h->timer);
    if (timeout_ms >= 0)
        loop_timer_start(h->l, &h->timer, (uint64_t)timeout_ms, on_timer, h);
    return 0;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct req *r = ud;
    size_t len = size * n;
    if (r->body.len + len > r->max_body) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    return buf_append(&r->body, p, len) == 0 ? len : 0;
}

lhttp *lhttp_new(loop *l)
{
    static bool global;
    if (!global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global = true;
    }
    lhttp *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->l = l;
    if (!(h->multi = curl_multi_init())) {
        free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void lhttp_free(lhttp *h)
{
    if (!h)
        return;
    while (h->reqs)
        req_free(h, h->reqs);
    loop_timer_stop(h->l, &h->timer);
    curl_multi_cleanup(h->multi);
    free(h);
}

int lhttp_post(lhttp *h, const char *url, const char *const *headers, const char *body,
               unsigned timeout_ms, size_t max_body, lhttp_done_fn *fn, void *ud)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        free(r);
        return -1;
    }
    r->fn = fn;
    r->ud = ud;
    r->max_body = max_body;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(r->headers, headers[i]);
        if (!n)
            goto fail;
        r->headers = n;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* as the reference (rejectUnauthorized: false): auth hosts are often self-signed */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
        goto fail;
    r->next = h->reqs;
    if (r->next)
        r->next->prev = &r->next;
    r->prev = &h->reqs;
    h->reqs = r;
    return 0;
fail:
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r);
    return -1;
}
