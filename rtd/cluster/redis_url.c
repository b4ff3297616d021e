/* redis_url.c: parsing the --redis URL (see redis_url.h). */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/cluster/redis_url.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A percent-decoded copy of s[0, n), or NULL (bad escape, NUL byte, no memory). */
static char *decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t j = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 1 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static int parse_num(const char *s, size_t n, long min, long max, int *out)
{
    if (n == 0 || n > 6)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

void redis_url_free(struct redis_url *u)
{
    free(u->host);
    free(u->path);
    free(u->user);
    free(u->password);
    memset(u, 0, sizeof *u);
}

int redis_url_parse(const char *url, struct redis_url *u, const char **why)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        if (*p != '/' || strlen(p) >= 108) {
            *why = "expected unix:///absolute/path (at most 107 bytes)";
            return -1;
        }
        if (!(u->path = strdup(p))) {
            *why = "out of memory";
            return -1;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        *why = "expected redis://[user:password@]host[:port][/db] or unix:///path";
        return -1;
    }
    const char *p = url + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p && !(u->user = decode(p, (size_t)(colon - p))))
                goto badcred;
            if (!(u->password = decode(colon + 1, (size_t)(at - colon - 1))))
                goto badcred;
        } else if (at > p && !(u->password = decode(p, (size_t)(at - p)))) {
            goto badcred; /* redis://secret@host, as node-redis reads it: a password */
        }
        p = at + 1;
    }
    const char *host_end, *port_at = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb) {
            *why = "unterminated [IPv6] host";
            goto fail;
        }
        u->host = strndup(p + 1, (size_t)(rb - p - 1));
        host_end = rb + 1;
        if (host_end < end && *host_end == ':')
            port_at = host_end + 1;
        else if (host_end != end) {
            *why = "junk after the host";
            goto fail;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host_end = colon ? colon : end;
        u->host = strndup(p, (size_t)(host_end - p));
        if (colon)
            port_at = colon + 1;
    }
    if (!u->host || !*u->host) {
        *why = "empty host";
        goto fail;
    }
    for (const char *h = u->host; *h; h++)
        if (!isalnum((unsigned char)*h) && !strchr(".-_:", *h)) {
            *why = "bad character in the host";
            goto fail;
        }
    if (port_at && parse_num(port_at, (size_t)(end - port_at), 1, 65535, &u->port) < 0) {
        *why = "the port must be a number from 1 to 65535";
        goto fail;
    }
    if (*end == '/') {
        const char *db = end + 1;
        size_t n = strcspn(db, "?#");
        if (n && parse_num(db, n, 0, 100000, &u->db) < 0) {
            *why = "the database must be a number";
            goto fail;
        }
        end = db + n;
    }
    if (*end) {
        *why = "query strings and fragments are not supported";
        goto fail;
    }
    return 0;
badcred:
    *why = "bad percent-escape in the user or password";
fail:
    redis_url_free(u);
    return -1;
}
