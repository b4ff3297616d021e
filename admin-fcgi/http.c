/* http.c: CGI variables in, CGI response out (see http.h).
 *
 * Both CGI and FastCGI deliver a request as CGI variables plus a body stream and take the
 * response as "Status:" and headers followed by the body, so one implementation serves
 * both; only the io callbacks differ. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin-fcgi/http.h"

/* Security headers every response carries. Pages use no inline script or style, so the
 * policy can forbid both. */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: same-origin\r\n";

const char *http_env(const struct http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (char **e = r->io->envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_url_decode(char *s, bool plus_space)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p == '%') {
            int hi = hexval((unsigned char)p[1]);
            int lo = hi < 0 ? -1 : hexval((unsigned char)p[2]);
            if (hi < 0 || lo < 0)
                return -1;
            int c = hi * 16 + lo;
            if (c == 0)
                return -1;
            *w++ = (char)c;
            p += 2;
        } else if (*p == '+' && plus_space) {
            *w++ = ' ';
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return 0;
}

void http_url_encode(struct sbuf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sbuf_putc(out, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sbuf_append(out, esc, 3);
        }
    }
}

/* Splits buf (owned by the request) into pairs at sep, decoding each side. Cookies are
 * "name=value; name=value" and are not '+'-decoded; a cookie value that does not decode is
 * kept raw (browsers send what servers set, and ours only set plain tokens). */
static enum http_parse_err split_pairs(struct http_params *out, struct http_kv *kv, size_t max,
                                       char *buf, char sep, bool is_cookie)
{
    out->kv = kv;
    out->n = 0;
    char *p = buf;
    while (*p) {
        char *end = strchr(p, sep);
        if (end)
            *end = '\0';
        char *item = p;
        p = end ? end + 1 : p + strlen(p);
        if (is_cookie)
            while (*item == ' ' || *item == '\t')
                item++;
        if (!*item)
            continue;
        if (out->n == max)
            return HTTP_BAD_REQUEST;
        char *eq = strchr(item, '=');
        char *value = eq ? eq + 1 : item + strlen(item);
        if (eq)
            *eq = '\0';
        if (is_cookie) {
            size_t vl = strlen(value);
            while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
                value[--vl] = '\0';
            if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
                value[vl - 1] = '\0';
                value++;
            }
        } else if (http_url_decode(item, true) < 0 || http_url_decode(value, true) < 0) {
            return HTTP_BAD_REQUEST;
        }
        out->kv[out->n].name = item;
        out->kv[out->n].value = value;
        out->n++;
    }
    return HTTP_OK;
}

static const char *env_or(const struct http_req *r, const char *name, const char *dflt)
{
    const char *v = http_env(r, name);
    return v ? v : dflt;
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

enum http_parse_err http_req_init(struct http_req *r, struct http_io *io)
{
    memset(r, 0, sizeof *r);
    r->io = io;
    r->status = 200;
    r->method = env_or(r, "REQUEST_METHOD", "GET");
    if (strcmp(r->method, "HEAD") == 0) {
        r->head = true;
        r->method = "GET";
    }
    r->remote_addr = env_or(r, "REMOTE_ADDR", "");
    const char *https = env_or(r, "HTTPS", "");
    const char *xfp = env_or(r, "HTTP_X_FORWARDED_PROTO", "");
    r->https =
        strcasecmp(https, "on") == 0 || strcmp(https, "1") == 0 || strcasecmp(xfp, "https") == 0;

    /* The path: PATH_INFO when a server mounted us below a script name, otherwise the
     * request URI without its query. */
    const char *path = env_or(r, "PATH_INFO", "");
    size_t plen = strlen(path);
    if (!plen) {
        path = env_or(r, "REQUEST_URI", NULL);
        if (!path)
            path = env_or(r, "DOCUMENT_URI", "/");
        plen = strcspn(path, "?#");
    }
    if (plen >= sizeof r->path)
        return HTTP_URI_TOO_LONG;
    memcpy(r->path, path, plen);
    r->path[plen] = '\0';
    if (!plen || r->path[0] != '/' || has_ctl(r->path)) {
        strcpy(r->path, "/");
        if (plen)
            return HTTP_BAD_REQUEST;
    }
    while (plen > 1 && r->path[plen - 1] == '/')
        r->path[--plen] = '\0';

    r->query_raw = env_or(r, "QUERY_STRING", "");
    if (strlen(r->query_raw) > HTTP_QUERY_MAX)
        return HTTP_URI_TOO_LONG;
    r->storage[0] = strdup(r->query_raw);
    if (!r->storage[0])
        return HTTP_BAD_REQUEST;
    enum http_parse_err e =
        split_pairs(&r->query, r->query_kv, HTTP_PARAMS_MAX, r->storage[0], '&', false);
    if (e != HTTP_OK)
        return e;

    const char *cookie = env_or(r, "HTTP_COOKIE", "");
    if (strlen(cookie) > HTTP_COOKIE_MAX)
        return HTTP_BAD_REQUEST;
    r->storage[1] = strdup(cookie);
    if (!r->storage[1])
        return HTTP_BAD_REQUEST;
    return split_pairs(&r->cookies, r->cookie_kv, HTTP_COOKIES_MAX, r->storage[1], ';', true);
}

enum http_parse_err http_read_form(struct http_req *r, size_t body_max)
{
    const char *cl = http_env(r, "CONTENT_LENGTH");
    size_t len = 0;
    if (cl && *cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end || cl[0] == '-' || cl[0] == '+')
            return HTTP_BAD_REQUEST;
        if (v > body_max)
            return HTTP_TOO_LARGE;
        len = (size_t)v;
    }
    const char *ct = http_env(r, "CONTENT_TYPE");
    if (len && ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return HTTP_BAD_REQUEST;
    char *body = malloc(len + 1);
    if (!body)
        return HTTP_TOO_LARGE;
    size_t got = 0;
    while (got < len) {
        ssize_t n = r->io->read(r->io->ctx, body + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    body[got] = '\0';
    free(r->storage[2]);
    r->storage[2] = body;
    if (got != len || memchr(body, '\0', got))
        return HTTP_BAD_REQUEST;
    return split_pairs(&r->form, r->form_kv, HTTP_PARAMS_MAX, body, '&', false);
}

void http_req_free(struct http_req *r)
{
    for (size_t i = 0; i < 3; i++) {
        free(r->storage[i]);
        r->storage[i] = NULL;
    }
    sbuf_free(&r->headers);
}

const char *http_param(const struct http_params *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->kv[i].name, name) == 0)
            return p->kv[i].value;
    return NULL;
}

const char *http_query(const struct http_req *r, const char *name)
{
    const char *v = http_param(&r->query, name);
    return v ? v : "";
}

const char *http_form(const struct http_req *r, const char *name)
{
    const char *v = http_param(&r->form, name);
    return v ? v : "";
}

const char *http_cookie(const struct http_req *r, const char *name)
{
    const char *v = http_param(&r->cookies, name);
    return v ? v : "";
}

void http_header(struct http_req *r, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return;
    sbuf_printf(&r->headers, "%s: %s\r\n", name, value);
}

void http_set_cookie(struct http_req *r, const char *name, const char *value, const char *path,
                     long max_age)
{
    struct sbuf c = SBUF_INIT;
    sbuf_printf(&c, "%s=%s; Path=%s", name, value, path);
    if (max_age >= 0)
        sbuf_printf(&c, "; Max-Age=%ld", max_age);
    sbuf_puts(&c, "; HttpOnly; SameSite=Strict");
    if (r->https)
        sbuf_puts(&c, "; Secure");
    if (!c.failed)
        http_header(r, "Set-Cookie", sbuf_str(&c));
    sbuf_free(&c);
}

const char *http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static int out(struct http_req *r, const void *p, size_t n)
{
    if (r->write_failed)
        return -1;
    if (n && r->io->write(r->io->ctx, p, n) < 0) {
        r->write_failed = true;
        return -1;
    }
    return 0;
}

int http_begin(struct http_req *r, int status, const char *content_type)
{
    if (r->begun)
        return -1;
    r->begun = true;
    r->status = status;
    struct sbuf h = SBUF_INIT;
    sbuf_printf(&h, "Status: %d %s\r\n", status, http_reason(status));
    if (content_type)
        sbuf_printf(&h, "Content-Type: %s\r\n", content_type);
    sbuf_puts(&h, security_headers);
    sbuf_append(&h, sbuf_str(&r->headers), r->headers.len);
    sbuf_puts(&h, "\r\n");
    int rc = h.failed ? -1 : out(r, h.data, h.len);
    sbuf_free(&h);
    return rc;
}

int http_write(struct http_req *r, const void *p, size_t n)
{
    if (r->head)
        return 0;
    return out(r, p, n);
}

int http_puts(struct http_req *r, const char *s)
{
    return http_write(r, s, strlen(s));
}

int http_redirect(struct http_req *r, int status, const char *location)
{
    http_header(r, "Location", location);
    http_header(r, "Cache-Control", "no-store");
    return http_begin(r, status, NULL);
}
