/* admin.h: admin-fcgi's shared context (the shape of cgit's cgit.h).
 *
 * struct app_config holds the flags (filled once by main.c, read-only afterwards).
 * struct app is one worker's state: its read-only database connection (SQLite or
 * PostgreSQL, through dbi.h), used for every page, and a read-write connection opened on
 * first need for the few writes (subscribers, admin sessions, login failures). A worker serves one request at a time; with several FastCGI
 * worker threads each has its own struct app.
 * struct ctx is one request: the parsed request, the session if any, the time it started.
 *
 * Ownership: app_open/app_close own the connections; strings in app_config belong to the
 * caller (main.c keeps them for the life of the process). */
#ifndef ADMIN_ADMIN_H
#define ADMIN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin-fcgi/dbi.h"
#include "admin-fcgi/http.h"
#include "admin-fcgi/util.h"

#define ADMIN_SESSION_COOKIE "afc_session"
#define ADMIN_CSRF_COOKIE "afc_csrf"
#define ADMIN_TOKEN_HEX 65 /* 32 random bytes as hex + NUL */

struct app_config {
    const char *db_path;          /* a SQLite file or a postgresql:// URL */
    const char *templates_dir;
    const char *site_name;        /* shown in titles and on the landing page */
    int64_t launch_ms;            /* countdown target on the landing page */
    long session_ttl;             /* seconds an admin session lives */
    unsigned page_size;           /* rows per history page */
    unsigned scan_rows;           /* rows a residual filter may examine per page */
    unsigned login_max_failures;  /* failures of an address for one name within login_window
                                     that lock it for login_lockout, and of a name (from
                                     anywhere) after which its failed addresses slow down */
    unsigned login_addr_failures; /* failures of an address for any names that lock it */
    long login_window;            /* seconds */
    long login_lockout;           /* seconds */
    unsigned subscribe_limit;     /* subscription POSTs per client address ... */
    long subscribe_window;        /* ... within this many seconds */
    size_t body_max;              /* largest POST body accepted */
    int busy_timeout_ms;          /* how long a write waits for rtd's write lock */
    unsigned refresh_seconds;     /* how often the dashboard polls its figures */
};

/* Defaults for every field but db_path. */
void app_config_defaults(struct app_config *cfg);

struct app {
    const struct app_config *cfg;
    struct dbi *ro;
    struct dbi *rw;
};

struct session {
    bool valid;
    long long user_id;
    char username[128];
    char csrf[ADMIN_TOKEN_HEX];
    char token_hash[UTIL_SHA256_HEX];
};

struct ctx {
    struct app *app;
    const struct app_config *cfg;
    struct http_req *req;
    struct session session;
    int64_t now_ms;
    char anon_csrf[ADMIN_TOKEN_HEX]; /* double-submit token of anonymous forms, or "" */
};

/* Creates the database when missing and migrates it when older than this program, and
 * turns WAL on (SQLite); applies sql/pg's migrations (PostgreSQL). Run once at start-up. Returns 0, or -1 and a malloc'ed *err. */
int app_prepare_db(const struct app_config *cfg, char **err);
/* Opens a worker's read-only connection. Returns 0, or -1 and a malloc'ed *err. */
int app_open(struct app *a, const struct app_config *cfg, char **err);
void app_close(struct app *a);
/* The read-write connection (opened on first use, busy timeout set), or NULL and a
 * malloc'ed *err. */
struct dbi *app_rw(struct app *a, char **err);

/* Serves one request (cmd.c): parses it, routes it, writes the whole response. */
void app_handle(struct app *a, struct http_io *io);

/* Logs one line to stderr with a UTC time stamp (the top-level error report). */
void admin_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A malloc'ed copy of "what: the database's message", for *err results. */
char *admin_db_err(struct dbi *db, const char *what);

#endif
