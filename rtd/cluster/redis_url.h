/* redis_url.h: the --redis URL: redis://[user:password@]host[:port][/db] or unix:///path.
 * Percent-escapes in the user and password are decoded; an IPv6 host goes in brackets. */
#ifndef RTD_REDIS_URL_H
#define RTD_REDIS_URL_H

struct redis_url {
    char *host;     /* NULL for a unix socket */
    int port;       /* 6379 by default */
    char *path;     /* unix socket path, or NULL */
    char *user;     /* NULL: none (AUTH password only) */
    char *password; /* NULL: no AUTH */
    int db;         /* SELECT db, 0 by default */
};

/* Returns 0, or -1 with *why set to a static explanation. u is freed with redis_url_free. */
int redis_url_parse(const char *url, struct redis_url *u, const char **why);
void redis_url_free(struct redis_url *u);

#endif
