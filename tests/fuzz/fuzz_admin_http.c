/* fuzz_admin_http.c: libFuzzer target for admin-fcgi's request parsers (admin-fcgi/http.c):
 * the query string and the cookie header (http_req_init), the form body (http_read_form),
 * the request path, and URL decoding and encoding on their own.
 *
 * Input: byte 0 picks the parser (bits 0-2: 0 query, 1 cookie, 2 form, 3 path, others URL
 * decoding) and its options: for the form, bit 3 a wrong CONTENT_TYPE and bits 4-6 the
 * CONTENT_LENGTH (exact, too long, over the limit, malformed, absent); for the others, bit 3
 * the value three times over (past the length limits) and bit 4 PATH_INFO instead of
 * REQUEST_URI, or '+' as a space. The rest is the value: CGI variables cannot hold NUL
 * bytes, so they stop at the first one; the form body keeps them (and must be refused for
 * them) and is read in chunks of random sizes.
 *
 * Results are compared with a reference model written from http.h (pairs split at '&' or
 * ';', empty ones skipped, at most HTTP_PARAMS_MAX (HTTP_COOKIES_MAX cookies), strict %XX decoding
 * that refuses NUL, cookies trimmed and unquoted but not decoded), down to every name and value.
 * Every name and value must be a NUL-terminated string inside the request's copy of its input, no
 * longer than that input; http_param must find the first of equal names; parsing the same
 * request again must give the same result; and URL encoding must decode back. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin-fcgi/http.h"
#include "admin-fcgi/sbuf.h"
#include "tests/fuzz/fuzz.h"

/* ---- reference model ------------------------------------------------------------------ */

struct ref_kv {
    char *name, *value;
};

struct ref_params {
    struct ref_kv kv[HTTP_COOKIES_MAX];
    size_t n;
};

static void ref_params_free(struct ref_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->kv[i].name);
        free(p->kv[i].value);
    }
    p->n = 0;
}

static int ref_hex(char c)
{
    static const char digits[] = "0123456789abcdef0123456789ABCDEF";
    const char *p = c ? strchr(digits, c) : NULL;
    return p ? (int)((p - digits) % 16) : -1;
}

/* s[0..n) URL-decoded into a new string; NULL for a bad escape or a decoded NUL. */
static char *ref_decode(const char *s, size_t n, bool plus_space)
{
    char *out = malloc(n + 1);
    FUZZ_CHECK(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? ref_hex(s[i + 1]) : -1;
            int lo = i + 2 < n ? ref_hex(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || hi * 16 + lo == 0) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = plus_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    FUZZ_CHECK(d != NULL);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* The pairs of s (a C string) separated by sep. */
static enum http_parse_err ref_pairs(const char *s, char sep, bool cookie, struct ref_params *out)
{
    out->n = 0;
    size_t len = strlen(s);
    for (size_t start = 0; start < len;) {
        size_t end = start;
        while (end < len && s[end] != sep)
            end++;
        size_t a = start, b = end;
        start = end + 1;
        if (cookie)
            while (a < b && (s[a] == ' ' || s[a] == '\t'))
                a++;
        if (a == b)
            continue;
        if (out->n == (cookie ? HTTP_COOKIES_MAX : HTTP_PARAMS_MAX))
            return HTTP_BAD_REQUEST;
        size_t eq = a;
        while (eq < b && s[eq] != '=')
            eq++;
        size_t va = eq < b ? eq + 1 : b, vb = b;
        struct ref_kv kv;
        if (cookie) {
            while (vb > va && (s[vb - 1] == ' ' || s[vb - 1] == '\t'))
                vb--;
            if (vb - va >= 2 && s[va] == '"' && s[vb - 1] == '"') {
                va++;
                vb--;
            }
            kv.name = dup_range(s + a, eq - a);
            kv.value = dup_range(s + va, vb - va);
        } else {
            kv.name = ref_decode(s + a, eq - a, true);
            kv.value = ref_decode(s + va, vb - va, true);
            if (!kv.name || !kv.value) {
                free(kv.name);
                free(kv.value);
                return HTTP_BAD_REQUEST;
            }
        }
        out->kv[out->n++] = kv;
    }
    return HTTP_OK;
}

/* ---- checks --------------------------------------------------------------------------- */

/* What http_query / http_form / http_cookie must answer for name: the first value, or "". */
static const char *ref_lookup(const struct ref_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->kv[i].name, name) == 0)
            return p->kv[i].value;
    return "";
}

/* p must hold what the model found, every string inside storage (an input of len bytes). */
static void same_params(const struct http_params *p, const struct ref_params *want,
                        const char *storage, size_t len)
{
    FUZZ_CHECK(p->n == want->n && p->n <= HTTP_COOKIES_MAX);
    size_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        const char *name = p->kv[i].name, *value = p->kv[i].value;
        FUZZ_CHECK(name >= storage && name <= storage + len);
        FUZZ_CHECK(value >= storage && value <= storage + len);
        size_t nl = strnlen(name, (size_t)(storage + len - name) + 1);
        size_t vl = strnlen(value, (size_t)(storage + len - value) + 1);
        FUZZ_CHECK(name + nl <= storage + len && value + vl <= storage + len);
        FUZZ_CHECK(strcmp(name, want->kv[i].name) == 0);
        FUZZ_CHECK(strcmp(value, want->kv[i].value) == 0);
        total += nl + vl;
    }
    FUZZ_CHECK(total <= len);
    /* http_param: the first pair of that name */
    for (size_t i = 0; i < p->n; i++) {
        size_t first = 0;
        while (strcmp(want->kv[first].name, want->kv[i].name) != 0)
            first++;
        const char *v = http_param(p, want->kv[i].name);
        FUZZ_CHECK(v == p->kv[first].value);
    }
}

static void same_parsed(const struct http_params *a, const struct http_params *b)
{
    FUZZ_CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        FUZZ_CHECK(strcmp(a->kv[i].name, b->kv[i].name) == 0);
        FUZZ_CHECK(strcmp(a->kv[i].value, b->kv[i].value) == 0);
    }
}

/* ---- the request's input -------------------------------------------------------------- */

struct body {
    const char *p;
    size_t len, pos;
    uint64_t rng;
    size_t fail_at; /* read fails once this many bytes were read (SIZE_MAX: never) */
};

static ssize_t body_read(void *ctx, char *p, size_t n)
{
    struct body *b = ctx;
    size_t end = b->fail_at < b->len ? b->fail_at : b->len;
    if (b->pos >= end)
        return b->pos < b->len ? -1 : 0;
    size_t left = end - b->pos;
    if (n == 0)
        return 0;
    size_t k = 1 + (size_t)(fuzz_rng(&b->rng) % (left < n ? left : n));
    memcpy(p, b->p + b->pos, k);
    b->pos += k;
    return (ssize_t)k;
}

static int no_write(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return -1;
}

static char *env_var(const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *e = malloc(nl + vl + 2);
    FUZZ_CHECK(e != NULL);
    memcpy(e, name, nl);
    e[nl] = '=';
    memcpy(e + nl + 1, value, vl + 1);
    return e;
}

/* ---- the parsers ---------------------------------------------------------------------- */

/* QUERY_STRING or HTTP_COOKIE set to s. */
static void fuzz_pairs(const char *s, bool cookie)
{
    char *envp[3] = {env_var(cookie ? "HTTP_COOKIE" : "QUERY_STRING", s),
                     env_var("REQUEST_URI", "/x"), NULL};
    struct http_io io = {envp, body_read, no_write, NULL};
    size_t len = strlen(s);
    struct ref_params want;
    enum http_parse_err want_e;
    if (len > (cookie ? HTTP_COOKIE_MAX : HTTP_QUERY_MAX)) {
        want_e = cookie ? HTTP_BAD_REQUEST : HTTP_URI_TOO_LONG;
        want.n = 0;
    } else {
        want_e = ref_pairs(s, cookie ? ';' : '&', cookie, &want);
    }
    struct http_req *r = malloc(2 * sizeof *r);
    FUZZ_CHECK(r != NULL);
    for (int k = 0; k < 2; k++) {
        enum http_parse_err e = http_req_init(&r[k], &io);
        FUZZ_CHECK(e == want_e);
        FUZZ_CHECK(strcmp(r[k].path, "/x") == 0);
        if (e == HTTP_OK) {
            const struct http_params *p = cookie ? &r[k].cookies : &r[k].query;
            same_params(p, &want, r[k].storage[cookie ? 1 : 0], len);
            FUZZ_CHECK((cookie ? r[k].query.n : r[k].cookies.n) == 0);
            FUZZ_CHECK(strcmp(r[k].query_raw, cookie ? "" : s) == 0);
            /* absent names read as "" */
            const char *(*get)(const struct http_req *, const char *) =
                cookie ? http_cookie : http_query;
            FUZZ_CHECK(strcmp(get(&r[k], "\x01"), ref_lookup(&want, "\x01")) == 0);
            FUZZ_CHECK(strcmp(get(&r[k], "sid"), ref_lookup(&want, "sid")) == 0);
            FUZZ_CHECK(strcmp((cookie ? http_query : http_cookie)(&r[k], "sid"), "") == 0);
        }
    }
    if (want_e == HTTP_OK)
        same_parsed(cookie ? &r[0].cookies : &r[0].query, cookie ? &r[1].cookies : &r[1].query);
    http_req_free(&r[0]);
    http_req_free(&r[1]);
    free(r);
    ref_params_free(&want);
    free(envp[0]);
    free(envp[1]);
}

/* A POST body of len bytes (NUL bytes included); opt picks the CGI variables around it. */
static void fuzz_form(const char *data, size_t len, unsigned opt, uint64_t seed)
{
    char cl[48];
    const char *ct = "application/x-www-form-urlencoded";
    size_t body_max = 64 * 1024, claimed = len;
    enum http_parse_err want_e = HTTP_OK;
    bool have_cl = true;
    switch (opt & 7) {
    case 0: /* exact */
        snprintf(cl, sizeof cl, "%zu", len);
        break;
    case 1: /* the body ends before CONTENT_LENGTH */
        snprintf(cl, sizeof cl, "%zu", len + 1);
        claimed = len + 1;
        break;
    case 2: /* over the limit */
        snprintf(cl, sizeof cl, "%zu", len);
        body_max = len ? len - 1 : 0;
        if (len)
            want_e = HTTP_TOO_LARGE;
        break;
    case 3:
        snprintf(cl, sizeof cl, "-%zu", len);
        want_e = HTTP_BAD_REQUEST;
        break;
    case 4:
        snprintf(cl, sizeof cl, "+%zu", len);
        want_e = HTTP_BAD_REQUEST;
        break;
    case 5:
        snprintf(cl, sizeof cl, "%zux", len);
        want_e = HTTP_BAD_REQUEST;
        break;
    case 6:
        snprintf(cl, sizeof cl, "99999999999999999999999");
        want_e = HTTP_TOO_LARGE;
        break;
    default: /* no CONTENT_LENGTH: no body */
        have_cl = false;
        claimed = 0;
        break;
    }
    if (opt & 8)
        ct = "text/plain";
    if (want_e == HTTP_OK && (opt & 8) && claimed > 0)
        want_e = HTTP_BAD_REQUEST;
    size_t readable = claimed < len ? claimed : len;
    if (want_e == HTTP_OK && (claimed > len || memchr(data, '\0', readable)))
        want_e = HTTP_BAD_REQUEST;

    char *envp[4] = {env_var("CONTENT_TYPE", ct), env_var("REQUEST_METHOD", "POST"),
                     have_cl ? env_var("CONTENT_LENGTH", cl) : NULL, NULL};
    struct body b = {data, len, 0, seed, SIZE_MAX};
    struct http_io io = {envp, body_read, no_write, &b};
    struct ref_params want = {.n = 0};
    char *text = NULL;
    if (want_e == HTTP_OK) {
        text = dup_range(data, readable);
        want_e = ref_pairs(text, '&', false, &want);
    }
    struct http_req *r = malloc(2 * sizeof *r);
    FUZZ_CHECK(r != NULL);
    for (int k = 0; k < 2; k++) {
        b.pos = 0;
        FUZZ_CHECK(http_req_init(&r[k], &io) == HTTP_OK);
        FUZZ_CHECK(strcmp(r[k].method, "POST") == 0);
        enum http_parse_err e = http_read_form(&r[k], body_max);
        FUZZ_CHECK(e == want_e);
        if (e == HTTP_OK) {
            same_params(&r[k].form, &want, r[k].storage[2], readable);
            FUZZ_CHECK(strcmp(http_form(&r[k], "\x01"), ref_lookup(&want, "\x01")) == 0);
            FUZZ_CHECK(strcmp(http_form(&r[k], "csrf"), ref_lookup(&want, "csrf")) == 0);
        }
    }
    if (want_e == HTTP_OK)
        same_parsed(&r[0].form, &r[1].form);

    /* A client that goes away in the middle of its body. */
    if (want_e == HTTP_OK && claimed > 0) {
        b.pos = 0;
        b.fail_at = (size_t)(seed % claimed);
        struct http_req *f = malloc(sizeof *f);
        FUZZ_CHECK(f != NULL);
        FUZZ_CHECK(http_req_init(f, &io) == HTTP_OK);
        FUZZ_CHECK(http_read_form(f, body_max) == HTTP_BAD_REQUEST);
        http_req_free(f);
        free(f);
    }

    http_req_free(&r[0]);
    http_req_free(&r[1]);
    free(r);
    ref_params_free(&want);
    free(text);
    for (int i = 0; envp[i]; i++)
        free(envp[i]);
}

/* REQUEST_URI (or PATH_INFO) set to s. */
static void fuzz_path(const char *s, bool path_info)
{
    char *envp[2] = {env_var(path_info ? "PATH_INFO" : "REQUEST_URI", s), NULL};
    struct http_io io = {envp, body_read, no_write, NULL};
    size_t plen = path_info ? strlen(s) : strcspn(s, "?#");
    enum http_parse_err want_e = HTTP_OK;
    char want[HTTP_PATH_MAX];
    if (plen == 0) {
        strcpy(want, "/");
    } else if (plen >= HTTP_PATH_MAX) {
        want_e = HTTP_URI_TOO_LONG;
    } else {
        memcpy(want, s, plen);
        want[plen] = '\0';
        bool bad = want[0] != '/';
        for (size_t i = 0; i < plen; i++)
            bad = bad || (unsigned char)want[i] < 0x20 || want[i] == 0x7f;
        if (bad) {
            strcpy(want, "/");
            want_e = HTTP_BAD_REQUEST;
        }
        for (size_t n = strlen(want); n > 1 && want[n - 1] == '/'; n--)
            want[n - 1] = '\0';
    }
    struct http_req *r = malloc(sizeof *r);
    FUZZ_CHECK(r != NULL);
    enum http_parse_err e = http_req_init(r, &io);
    FUZZ_CHECK(e == want_e);
    if (e != HTTP_URI_TOO_LONG) {
        FUZZ_CHECK(strcmp(r->path, want) == 0);
        FUZZ_CHECK(r->path[0] == '/' && strlen(r->path) < HTTP_PATH_MAX);
    }
    http_req_free(r);
    free(r);
    free(envp[0]);
}

/* http_url_decode against the model; http_url_encode must decode back. */
static void fuzz_url(const char *s, bool plus_space)
{
    size_t len = strlen(s);
    char *want = ref_decode(s, len, plus_space);
    char *d = dup_range(s, len);
    int r = http_url_decode(d, plus_space);
    FUZZ_CHECK(r == (want ? 0 : -1));
    if (r == 0) {
        FUZZ_CHECK(strlen(d) <= len);
        FUZZ_CHECK(strcmp(d, want) == 0);
    }
    free(d);
    free(want);

    struct sbuf enc = SBUF_INIT;
    http_url_encode(&enc, s);
    FUZZ_CHECK(!enc.failed);
    const char *e = sbuf_str(&enc);
    FUZZ_CHECK(strlen(e) == enc.len && enc.len >= len && enc.len <= 3 * len);
    for (size_t i = 0; i < enc.len; i++) {
        if (e[i] == '%') {
            FUZZ_CHECK(i + 2 < enc.len);
            FUZZ_CHECK(strchr("0123456789ABCDEF", e[i + 1]) &&
                       strchr("0123456789ABCDEF", e[i + 2]));
            i += 2;
        } else {
            FUZZ_CHECK(e[i] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789-._~",
                                      e[i]));
        }
    }
    for (int ps = 0; ps <= 1; ps++) {
        char *back = dup_range(e, enc.len);
        FUZZ_CHECK(http_url_decode(back, ps) == 0);
        FUZZ_CHECK(strcmp(back, s) == 0);
        free(back);
    }
    sbuf_free(&enc);
}

/* ---- entry point ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    if ((sel & 7) == 2) {
        char *body = malloc(n ? n : 1);
        FUZZ_CHECK(body != NULL);
        if (n)
            memcpy(body, in, n);
        uint64_t seed = 0;
        for (size_t i = 0; i < n; i++)
            seed = seed * 131 + data[1 + i];
        fuzz_form(body, n, (sel >> 4 & 7) | (sel & 8), seed);
        free(body);
        return 0;
    }
    /* a CGI variable: up to the first NUL, repeated three times when bit 3 says so */
    size_t len = strnlen(in, n);
    int times = sel & 8 ? 3 : 1;
    char *s = malloc(len * (size_t)times + 1);
    FUZZ_CHECK(s != NULL);
    for (int t = 0; t < times; t++)
        memcpy(s + len * (size_t)t, in, len);
    s[len * (size_t)times] = '\0';
    switch (sel & 7) {
    case 0:
        fuzz_pairs(s, false);
        break;
    case 1:
        fuzz_pairs(s, true);
        break;
    case 3:
        fuzz_path(s, sel & 16);
        break;
    default:
        fuzz_url(s, sel & 16);
        break;
    }
    free(s);
    return 0;
}
