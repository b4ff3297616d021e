/* auth.c: sessions, passwords, CSRF and login throttling (see auth.h). */
#include "config.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "admin-fcgi/auth.h"

/* A yescrypt setting with the default cost, used to spend the same time on unknown user
 * names as on known ones. */
static const char dummy_setting[] = "$y$j9T$8K2ytoMLMYSpw7FsEBd5h1$";

static bool is_hex_token(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
            return false;
    return n == ADMIN_TOKEN_HEX - 1;
}

int auth_load_session(struct ctx *c, char **err)
{
    *err = NULL;
    memset(&c->session, 0, sizeof c->session);
    const char *cookie = http_cookie(c->req, ADMIN_SESSION_COOKIE);
    if (!is_hex_token(cookie))
        return 0;
    char hash[UTIL_SHA256_HEX], now[UTIL_TS_LEN];
    util_sha256_hex(cookie, hash);
    util_format_ts(c->now_ms, now);
    struct dbi *db = c->app->ro;
    struct dbi_stmt *st;
    if (dbi_prepare(db,
                    "SELECT s.user_id, u.username, s.csrf_token FROM admin_sessions s "
                    "JOIN admin_users u ON u.id = s.user_id "
                    "WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                    &st) != 0) {
        *err = admin_db_err(db, "session lookup");
        return -1;
    }
    dbi_bind_text(st, 1, hash);
    dbi_bind_text(st, 2, now);
    int rc = dbi_step(st);
    if (rc == DBI_ROW) {
        const char *name = dbi_column_text(st, 1);
        const char *csrf = dbi_column_text(st, 2);
        if (name && csrf && strlen(csrf) < sizeof c->session.csrf) {
            c->session.valid = true;
            c->session.user_id = dbi_column_int64(st, 0);
            snprintf(c->session.username, sizeof c->session.username, "%s", name);
            snprintf(c->session.csrf, sizeof c->session.csrf, "%s", csrf);
            memcpy(c->session.token_hash, hash, sizeof hash);
        }
    } else if (rc != DBI_DONE) {
        *err = admin_db_err(db, "session lookup");
    }
    dbi_finalize(st);
    return *err ? -1 : 0;
}

const char *auth_anon_csrf(struct ctx *c)
{
    if (c->anon_csrf[0])
        return c->anon_csrf;
    const char *cookie = http_cookie(c->req, ADMIN_CSRF_COOKIE);
    if (is_hex_token(cookie)) {
        memcpy(c->anon_csrf, cookie, ADMIN_TOKEN_HEX);
        return c->anon_csrf;
    }
    if (util_random_hex(32, c->anon_csrf) < 0) {
        c->anon_csrf[0] = '\0';
        return c->anon_csrf;
    }
    http_set_cookie(c->req, ADMIN_CSRF_COOKIE, c->anon_csrf, "/", -1);
    return c->anon_csrf;
}

bool auth_check_csrf(struct ctx *c, bool session)
{
    const char *sent = http_form(c->req, "csrf");
    if (!is_hex_token(sent))
        return false;
    const char *want = session ? c->session.csrf : http_cookie(c->req, ADMIN_CSRF_COOKIE);
    if (!is_hex_token(want))
        return false;
    return util_str_eq_ct(sent, want);
}

char *auth_hash_password(const char *password)
{
    char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    if (!salt)
        return NULL;
    void *data = NULL;
    int size = 0;
    char *h = crypt_ra(password, salt, &data, &size);
    char *out = (h && h[0] == '$') ? strdup(h) : NULL;
    if (data) {
        OPENSSL_cleanse(data, (size_t)size);
        free(data);
    }
    free(salt);
    return out;
}

bool auth_verify_password(const char *password, const char *hash)
{
    void *data = NULL;
    int size = 0;
    char *h = crypt_ra(password, hash, &data, &size);
    bool ok = h && h[0] == '$' && util_str_eq_ct(h, hash);
    if (data) {
        OPENSSL_cleanse(data, (size_t)size);
        free(data);
    }
    return ok;
}

/* ---- login throttling -------------------------------------------------------------------
 *
 * Three counters per attempt, rows of login_failures, each a fixed window of login_window
 * seconds:
 *   "pair:ADDR|NAME"  login_max_failures failures lock that address for that name
 *                     (login_lockout seconds);
 *   "ip:ADDR"         login_addr_failures failures lock the address for every name;
 *   "user:NAME"       never locks: once the name has login_max_failures failures, each further
 *                     one makes the next attempt wait 1, 2, 4 ... up to AUTH_NAME_DELAY_MAX
 *                     seconds, and only addresses that have failed themselves are made to
 *                     wait. An address without failures always gets its password checked,
 *                     so no one can lock the admin out by failing from elsewhere.
 * The attempt is reserved, counted as a failure, in the same write transaction that checks
 * the counters, before the password is hashed: concurrent requests cannot all read "not
 * locked" and be checked. A correct password clears the address's counters and gives the
 * name's reservation back. ADDR is REMOTE_ADDR; an IPv6 address counts as its /64,
 * which one client usually holds whole. */

#define AUTH_NAME_DELAY_MAX 60

struct throttle_keys {
    char pair[240];
    char addr[80];
    char name[160];
    /* The name's slow-down before and after the reservation ("" for none), so that a
     * correct password gives back the wait it added. */
    char name_prev_until[UTIL_TS_LEN], name_our_until[UTIL_TS_LEN];
};

/* The client's address as a throttling key: REMOTE_ADDR, or its /64 for IPv6. */
static void client_net(const struct ctx *c, char out[INET6_ADDRSTRLEN + 4])
{
    const char *addr = c->req->remote_addr;
    struct in6_addr a6;
    if (strchr(addr, ':') && inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
        memset(a6.s6_addr + 8, 0, 8);
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(AF_INET6, &a6, text, sizeof text)) {
            snprintf(out, INET6_ADDRSTRLEN + 4, "%s/64", text);
            return;
        }
    }
    snprintf(out, INET6_ADDRSTRLEN + 4, "%.*s", INET6_ADDRSTRLEN, addr);
}

static void throttle_keys(struct ctx *c, const char *user, struct throttle_keys *k)
{
    char addr[INET6_ADDRSTRLEN + 4];
    client_net(c, addr);
    snprintf(k->pair, sizeof k->pair, "pair:%s|%.150s", addr, user);
    snprintf(k->addr, sizeof k->addr, "ip:%s", addr);
    snprintf(k->name, sizeof k->name, "user:%.150s", user);
    k->name_prev_until[0] = k->name_our_until[0] = '\0';
}

static int begin_rw(struct dbi *db, char **err)
{
    if (dbi_begin_write(db) != 0) {
        *err = admin_db_err(db, "BEGIN");
        return -1;
    }
    return 0;
}

static int commit_rw(struct dbi *db, char **err)
{
    if (dbi_commit(db) != 0) {
        *err = admin_db_err(db, "COMMIT");
        dbi_rollback(db);
        return -1;
    }
    return 0;
}

/* One counter as read inside the reservation's transaction. */
struct counter {
    long long failures; /* within the current window; 0 when it is over */
    bool in_window;
    char window_start[UTIL_TS_LEN];
    int64_t locked_until; /* ms, 0 when none */
};

static int read_counter(struct dbi *db, const char *key, const char *window, struct counter *out)
{
    memset(out, 0, sizeof *out);
    struct dbi_stmt *st;
    if (dbi_prepare(db,
                    "SELECT failures, CASE WHEN window_start >= ?2 THEN 1 ELSE 0 END, "
                    "window_start, locked_until FROM login_failures WHERE key = ?1",
                    &st) != 0)
        return -1;
    dbi_bind_text(st, 1, key);
    dbi_bind_text(st, 2, window);
    int rc = dbi_step(st);
    if (rc == DBI_ROW) {
        out->in_window = dbi_column_int64(st, 1) != 0;
        if (out->in_window) {
            out->failures = dbi_column_int64(st, 0);
            const char *ws = dbi_column_text(st, 2);
            snprintf(out->window_start, sizeof out->window_start, "%s", ws ? ws : "");
        }
        const char *until = dbi_column_text(st, 3);
        int64_t ms;
        if (until && util_parse_ts(until, &ms, NULL) == 0)
            out->locked_until = ms;
    }
    dbi_finalize(st);
    return rc == DBI_ROW || rc == DBI_DONE ? 0 : -1;
}

/* Writes a counter one failure further; locked_until = until_ms (0: none). */
static int bump_counter(struct dbi *db, const char *key, const struct counter *cur, const char *now,
                        int64_t until_ms)
{
    struct dbi_stmt *st;
    if (dbi_prepare(db,
                    "INSERT INTO login_failures(key, failures, window_start, locked_until) "
                    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET "
                    "failures = excluded.failures, window_start = excluded.window_start, "
                    "locked_until = excluded.locked_until",
                    &st) != 0)
        return -1;
    char until[UTIL_TS_LEN];
    dbi_bind_text(st, 1, key);
    dbi_bind_int64(st, 2, cur->failures + 1);
    dbi_bind_text(st, 3, cur->in_window ? cur->window_start : now);
    if (until_ms) {
        util_format_ts(until_ms, until);
        dbi_bind_text(st, 4, until);
    } else {
        dbi_bind_null(st, 4);
    }
    int rc = dbi_step(st);
    dbi_finalize(st);
    return rc == DBI_DONE ? 0 : -1;
}

/* Seconds from now to until_ms, at least 1. */
static long seconds_to(int64_t now_ms, int64_t until_ms)
{
    long s = (long)((until_ms - now_ms + 999) / 1000);
    return s < 1 ? 1 : s;
}

/* Checks the three counters and, when none holds the attempt back, counts it as a failure,
 * all in one write transaction (dbi_begin_write: writers wait for each other). Returns 0 with *wait 0 (go ahead and check the password)
 * or *wait > 0 (seconds the client must wait; nothing was counted), -1 and *err on error. */
static int reserve_attempt(struct ctx *c, struct throttle_keys *k, long *wait, char **err)
{
    *wait = 0;
    struct dbi *db = app_rw(c->app, err);
    if (!db)
        return -1;
    const struct app_config *cfg = c->cfg;
    int64_t now_ms = c->now_ms;
    char now[UTIL_TS_LEN], window[UTIL_TS_LEN];
    util_format_ts(now_ms, now);
    util_format_ts(now_ms - (int64_t)cfg->login_window * 1000, window);
    if (begin_rw(db, err) < 0)
        return -1;
    struct counter pair, addr, name;
    int rc = read_counter(db, k->pair, window, &pair) | read_counter(db, k->addr, window, &addr) |
             read_counter(db, k->name, window, &name);
    if (rc == 0) {
        int64_t until = 0;
        if (pair.locked_until > now_ms)
            until = pair.locked_until;
        if (addr.locked_until > now_ms && addr.locked_until > until)
            until = addr.locked_until;
        /* The name's slow-down holds back only addresses that have failed themselves. */
        if (!until && addr.failures > 0 && name.locked_until > now_ms)
            until = name.locked_until;
        if (until) {
            *wait = seconds_to(now_ms, until);
            dbi_rollback(db);
            return 0;
        }
        int64_t lock = (int64_t)cfg->login_lockout * 1000;
        long long over = name.failures + 1 - (long long)cfg->login_max_failures;
        int64_t delay = over < 0 ? 0 : over >= 6 ? AUTH_NAME_DELAY_MAX : (1LL << over);
        if (delay > AUTH_NAME_DELAY_MAX)
            delay = AUTH_NAME_DELAY_MAX;
        rc = bump_counter(db, k->pair, &pair, now,
                          pair.failures + 1 >= cfg->login_max_failures ? now_ms + lock : 0);
        if (rc == 0)
            rc = bump_counter(db, k->addr, &addr, now,
                              addr.failures + 1 >= cfg->login_addr_failures ? now_ms + lock : 0);
        int64_t name_until = over >= 0 ? now_ms + delay * 1000 : 0;
        if (rc == 0)
            rc = bump_counter(db, k->name, &name, now, name_until);
        if (name.locked_until)
            util_format_ts(name.locked_until, k->name_prev_until);
        if (name_until)
            util_format_ts(name_until, k->name_our_until);
    }
    if (rc == 0) {
        /* Forget keys whose window and lock are both over, so the table stays small. */
        struct dbi_stmt *st;
        rc = dbi_prepare(db,
                         "DELETE FROM login_failures WHERE window_start < ?1 "
                         "AND (locked_until IS NULL OR locked_until < ?2)",
                         &st) == 0
                 ? 0
                 : -1;
        if (rc == 0) {
            dbi_bind_text(st, 1, window);
            dbi_bind_text(st, 2, now);
            rc = dbi_step(st) == DBI_DONE ? 0 : -1;
            dbi_finalize(st);
        }
    }
    if (rc != 0) {
        *err = admin_db_err(db, "login throttle");
        dbi_rollback(db);
        return -1;
    }
    return commit_rw(db, err);
}

static int start_session(struct ctx *c, long long user_id, const struct throttle_keys *k,
                         char **err)
{
    char token[ADMIN_TOKEN_HEX], csrf[ADMIN_TOKEN_HEX], hash[UTIL_SHA256_HEX];
    if (util_random_hex(32, token) < 0 || util_random_hex(32, csrf) < 0) {
        *err = strdup("the random generator failed");
        return -1;
    }
    util_sha256_hex(token, hash);
    struct dbi *db = app_rw(c->app, err);
    if (!db)
        return -1;
    char now[UTIL_TS_LEN], expires[UTIL_TS_LEN];
    util_format_ts(c->now_ms, now);
    util_format_ts(c->now_ms + (int64_t)c->cfg->session_ttl * 1000, expires);
    if (begin_rw(db, err) < 0)
        return -1;
    /* The address's counters are cleared; the name's loses the failure the reservation
     * added (the others were someone else's) and gets back the wait it had before. */
    static const char *const sql[] = {
        "DELETE FROM login_failures WHERE key IN (?3, ?4)",
        ("UPDATE login_failures SET failures = failures - 1, locked_until = CASE WHEN "
         "failures - 1 < ?10 THEN NULL WHEN locked_until = ?11 THEN nullif(?12, '') "
         "ELSE locked_until END WHERE key = ?8 AND failures > 0"),
        "DELETE FROM admin_sessions WHERE expires_at <= ?5",
        ("INSERT INTO admin_sessions(token_hash, user_id, csrf_token, created_at, expires_at) "
         "VALUES (?1, ?2, ?6, ?5, ?7)"),
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof sql / sizeof sql[0]; i++) {
        struct dbi_stmt *st;
        rc = dbi_prepare(db, sql[i], &st);
        if (rc != 0)
            break;
        dbi_bind_text(st, 1, hash);
        dbi_bind_int64(st, 2, user_id);
        dbi_bind_text(st, 3, k->pair);
        dbi_bind_text(st, 4, k->addr);
        dbi_bind_text(st, 5, now);
        dbi_bind_text(st, 6, csrf);
        dbi_bind_text(st, 7, expires);
        dbi_bind_text(st, 8, k->name);
        dbi_bind_int64(st, 10, (long long)c->cfg->login_max_failures);
        dbi_bind_text(st, 11, k->name_our_until);
        dbi_bind_text(st, 12, k->name_prev_until);
        rc = dbi_step(st) == DBI_DONE ? 0 : -1;
        dbi_finalize(st);
    }
    if (rc != 0) {
        *err = admin_db_err(db, "starting a session");
        dbi_rollback(db);
        return -1;
    }
    if (commit_rw(db, err) < 0)
        return -1;
    http_set_cookie(c->req, ADMIN_SESSION_COOKIE, token, "/admin", c->cfg->session_ttl);
    OPENSSL_cleanse(token, sizeof token);
    return 0;
}

enum auth_result auth_login(struct ctx *c, const char *user, const char *password,
                            long *retry_after, char **err)
{
    *err = NULL;
    struct throttle_keys k;
    throttle_keys(c, user, &k);
    long wait = 0;
    if (reserve_attempt(c, &k, &wait, err) < 0)
        return AUTH_ERROR;
    if (wait > 0) {
        *retry_after = wait;
        return AUTH_LOCKED;
    }

    long long user_id = 0;
    char *stored = NULL;
    struct dbi_stmt *st;
    if (dbi_prepare(c->app->ro, "SELECT id, password_hash FROM admin_users WHERE username = ?1",
                    &st) != 0) {
        *err = admin_db_err(c->app->ro, "admin lookup");
        return AUTH_ERROR;
    }
    dbi_bind_text(st, 1, user);
    if (dbi_step(st) == DBI_ROW) {
        user_id = dbi_column_int64(st, 0);
        const char *h = dbi_column_text(st, 1);
        stored = h ? strdup(h) : NULL;
    }
    dbi_finalize(st);

    bool ok = auth_verify_password(password, stored ? stored : dummy_setting) && stored && *user &&
              *password;
    free(stored);
    if (!ok)
        return AUTH_BAD; /* already counted by reserve_attempt */
    return start_session(c, user_id, &k, err) < 0 ? AUTH_ERROR : AUTH_OK;
}

int auth_logout(struct ctx *c, char **err)
{
    *err = NULL;
    http_set_cookie(c->req, ADMIN_SESSION_COOKIE, "", "/admin", 0);
    if (!c->session.valid)
        return 0;
    struct dbi *db = app_rw(c->app, err);
    if (!db)
        return -1;
    struct dbi_stmt *st;
    if (dbi_prepare(db, "DELETE FROM admin_sessions WHERE token_hash = ?1", &st) != 0) {
        *err = admin_db_err(db, "logout");
        return -1;
    }
    dbi_bind_text(st, 1, c->session.token_hash);
    int rc = dbi_step(st);
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, "logout");
        dbi_finalize(st);
        return -1;
    }
    dbi_finalize(st);
    c->session.valid = false;
    return 0;
}

static bool valid_admin_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return false;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if (*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

int auth_set_admin(struct dbi *rw, const char *name, const char *password, bool *created, char **err)
{
    *err = NULL;
    if (!valid_admin_name(name)) {
        *err = strdup("the admin name must be 1 to 64 characters without spaces");
        return -1;
    }
    size_t plen = strlen(password);
    if (plen < 8 || plen > 1024) {
        *err = strdup("the password must be 8 to 1024 characters long");
        return -1;
    }
    char *hash = auth_hash_password(password);
    if (!hash) {
        *err = strdup("yescrypt hashing failed");
        return -1;
    }
    char now[UTIL_TS_LEN];
    util_format_ts(util_now_ms(), now);
    int rc = dbi_begin_write(rw);
    struct dbi_stmt *st = NULL;
    long long existing = 0;
    if (rc == 0)
        rc = dbi_prepare(rw, "SELECT id FROM admin_users WHERE username = ?1", &st);
    if (rc == 0) {
        dbi_bind_text(st, 1, name);
        if (dbi_step(st) == DBI_ROW)
            existing = dbi_column_int64(st, 0);
        dbi_finalize(st);
        st = NULL;
        const char *sql = existing ? "UPDATE admin_users SET password_hash = ?2, updated_at = ?3 "
                                     "WHERE id = ?1"
                                   : "INSERT INTO admin_users(username, password_hash, created_at, "
                                     "updated_at) VALUES (?4, ?2, ?3, ?3)";
        rc = dbi_prepare(rw, sql, &st);
    }
    if (rc == 0) {
        dbi_bind_int64(st, 1, existing);
        dbi_bind_text(st, 2, hash);
        dbi_bind_text(st, 3, now);
        dbi_bind_text(st, 4, name);
        rc = dbi_step(st) == DBI_DONE ? 0 : -1;
        dbi_finalize(st);
        st = NULL;
    }
    if (rc == 0 && existing) {
        rc = dbi_prepare(rw, "DELETE FROM admin_sessions WHERE user_id = ?1", &st);
        if (rc == 0) {
            dbi_bind_int64(st, 1, existing);
            rc = dbi_step(st) == DBI_DONE ? 0 : -1;
            dbi_finalize(st);
        }
    }
    if (rc == 0)
        rc = dbi_commit(rw);
    free(hash);
    if (rc != 0) {
        *err = admin_db_err(rw, "saving the admin");
        dbi_rollback(rw);
        return -1;
    }
    *created = existing == 0;
    return 0;
}

/* ---- rate limits of anonymous forms ---------------------------------------------------- */

int auth_rate_limit(struct ctx *c, const char *what, unsigned limit, long window_s,
                    long *retry_after, char **err)
{
    *err = NULL;
    *retry_after = 0;
    struct dbi *db = app_rw(c->app, err);
    if (!db)
        return -1;
    char net[INET6_ADDRSTRLEN + 4], key[128], now[UTIL_TS_LEN], window[UTIL_TS_LEN];
    client_net(c, net);
    snprintf(key, sizeof key, "%.40s:%s", what, net);
    util_format_ts(c->now_ms, now);
    util_format_ts(c->now_ms - (int64_t)window_s * 1000, window);
    /* One statement counts the hit and reads the count, so parallel requests cannot both
     * see room for one more. The hit is counted even when refused: the window does not
     * move, so a client that keeps trying waits only for the window it started. */
    static const char sql[] =
        "INSERT INTO rate_limits(key, hits, window_start) VALUES (?1, 1, ?2) "
        "ON CONFLICT(key) DO UPDATE SET "
        " hits = CASE WHEN rate_limits.window_start < ?3 THEN 1 ELSE rate_limits.hits + 1 END,"
        " window_start = CASE WHEN rate_limits.window_start < ?3 THEN ?2"
        " ELSE rate_limits.window_start END "
        "RETURNING hits, window_start";
    struct dbi_stmt *st;
    if (dbi_prepare(db, sql, &st) != 0) {
        *err = admin_db_err(db, "rate limit");
        return -1;
    }
    dbi_bind_text(st, 1, key);
    dbi_bind_text(st, 2, now);
    dbi_bind_text(st, 3, window);
    int rc = dbi_step(st);
    long long hits = 0;
    int64_t start = c->now_ms;
    if (rc == DBI_ROW) {
        hits = dbi_column_int64(st, 0);
        const char *ws = dbi_column_text(st, 1);
        if (ws)
            util_parse_ts(ws, &start, NULL);
        rc = dbi_step(st);
    }
    if (rc == DBI_BUSY) {
        dbi_finalize(st);
        return -2;
    }
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, "rate limit");
        dbi_finalize(st);
        return -1;
    }
    dbi_finalize(st);
    /* Now and then forget windows that are over, so the table stays small. */
    if (hits == 1 && dbi_prepare(db, "DELETE FROM rate_limits WHERE window_start < ?1", &st) == 0) {
        dbi_bind_text(st, 1, window);
        dbi_step(st);
        dbi_finalize(st);
    }
    if (hits <= (long long)limit)
        return 0;
    *retry_after = seconds_to(c->now_ms, start + (int64_t)window_s * 1000);
    return 1;
}
