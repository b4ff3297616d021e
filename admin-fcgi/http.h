/* http.h: one request and its response, the same in CGI and FastCGI mode.
 *
 * The front end (main.c for stdin/stdout or libfcgi, a test for memory) fills a struct
 * http_io; http_req_init reads the CGI variables from io->envp and bounds everything it
 * parses: the query string, cookies and the form body (CONTENT_LENGTH at most body_max).
 * Values are URL-decoded into storage owned by the request and valid until http_req_free.
 *
 * Responses: queue headers with http_header, then http_begin writes the CGI status line and
 * the headers, and http_write streams the body (nothing is buffered here beyond what the
 * output does, so a large export runs in constant memory). A HEAD request gets the headers
 * only. Every response carries the security headers (CSP, nosniff, frame denial). */
#ifndef ADMIN_HTTP_H
#define ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "admin-fcgi/sbuf.h"

/* Limits of the parsers. The Cookie header carries every cookie of the site's domain,
 * most of them other applications' (a browser keeps about 180 per domain), so its limits
 * are those of a full cookie jar, not of our two cookies; deploy/nginx/site.conf lets
 * header lines of this size through. */
#define HTTP_QUERY_MAX 8192   /* bytes of QUERY_STRING */
#define HTTP_COOKIE_MAX 32768 /* bytes of HTTP_COOKIE */
#define HTTP_PARAMS_MAX 64    /* pairs in a query or form */
#define HTTP_COOKIES_MAX 512  /* cookies in the Cookie header */
#define HTTP_PATH_MAX 2048

struct http_io {
    char **envp; /* CGI variables, NULL-terminated "NAME=value" (not owned) */
    /* Reads up to n body bytes; returns the count, 0 at the end, -1 on error. */
    ssize_t (*read)(void *ctx, char *p, size_t n);
    /* Writes all n bytes; returns 0, or -1 when the client is gone. */
    int (*write)(void *ctx, const char *p, size_t n);
    void *ctx;
};

struct http_kv {
    char *name;
    char *value;
};

struct http_params {
    struct http_kv *kv; /* one of the request's arrays below */
    size_t n;
};

struct http_req {
    struct http_io *io;
    const char *method;       /* "GET", "POST", ... (HEAD is reported as "GET", see head) */
    bool head;                /* HEAD request: headers only */
    char path[HTTP_PATH_MAX]; /* path without the query, trailing '/' removed (except "/") */
    const char *query_raw;    /* QUERY_STRING or "" */
    const char *remote_addr;  /* REMOTE_ADDR or "" */
    bool https;               /* HTTPS=on or X-Forwarded-Proto: https */
    struct http_params query;
    struct http_params cookies;
    struct http_params form; /* filled by http_read_form */
    char *storage[3];        /* decoded copies of the query, cookies and body */
    struct http_kv query_kv[HTTP_PARAMS_MAX], form_kv[HTTP_PARAMS_MAX];
    struct http_kv cookie_kv[HTTP_COOKIES_MAX];
    /* response state */
    struct sbuf headers;
    bool begun;
    bool write_failed;
    int status;
};

/* Outcome of parsing, for a 400/413/414 page. */
enum http_parse_err {
    HTTP_OK = 0,
    HTTP_BAD_REQUEST,  /* malformed encoding, too many parameters, NUL bytes */
    HTTP_TOO_LARGE,    /* body over the limit */
    HTTP_URI_TOO_LONG, /* path or query over the limit */
};

/* Reads the request line variables, query string and cookies. Returns HTTP_OK or why the
 * request cannot be served; the request must be freed with http_req_free either way. */
enum http_parse_err http_req_init(struct http_req *r, struct http_io *io);
/* Reads and parses an application/x-www-form-urlencoded body of at most body_max bytes. */
enum http_parse_err http_read_form(struct http_req *r, size_t body_max);
void http_req_free(struct http_req *r);

/* CGI variable from the environment block, or NULL. */
const char *http_env(const struct http_req *r, const char *name);
/* First value of a parameter, or NULL. The returned string lives as long as the request. */
const char *http_param(const struct http_params *p, const char *name);
/* Query / form / cookie value, "" when absent. */
const char *http_query(const struct http_req *r, const char *name);
const char *http_form(const struct http_req *r, const char *name);
const char *http_cookie(const struct http_req *r, const char *name);

/* Decodes %XX and (when plus_space) '+' in place. Returns 0, or -1 for a bad escape or a
 * decoded NUL byte. */
int http_url_decode(char *s, bool plus_space);
/* Appends s URL-encoded for a query component (RFC 3986 unreserved kept, the rest %XX). */
void http_url_encode(struct sbuf *out, const char *s);

/* Queues a response header (name and value must not contain CR/LF; ones that do are
 * dropped). */
void http_header(struct http_req *r, const char *name, const char *value);
/* Queues a Set-Cookie with Path, HttpOnly, SameSite=Strict, Secure over https; max_age < 0
 * omits Max-Age (a session cookie), 0 deletes the cookie. */
void http_set_cookie(struct http_req *r, const char *name, const char *value, const char *path,
                     long max_age);
/* Writes the status and the queued headers. content_type NULL: no body follows. */
int http_begin(struct http_req *r, int status, const char *content_type);
/* Body bytes (ignored for HEAD). Returns 0 or -1 once the client is gone. */
int http_write(struct http_req *r, const void *p, size_t n);
int http_puts(struct http_req *r, const char *s);

/* A 303 (after a POST) or 302 redirect to a local path. */
int http_redirect(struct http_req *r, int status, const char *location);

const char *http_reason(int status);

#endif
