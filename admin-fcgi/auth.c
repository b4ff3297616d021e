/* auth.c: sessions, passwords, CSRF and login throttling (see auth.h). */
#include "config.h"

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
    sqlite3 *db = c->app->ro;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT s.user_id, u.username, s.csrf_token FROM admin_sessions s "
                           "JOIN admin_users u ON u.id = s.user_id "
                           "WHERE s.token_hash = ?1 AND s.expires_at > ?2",
                           -1, &st, NULL) != SQLITE_OK) {
        *err = admin_db_err(db, "session lookup");
        return -1;
    }
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *csrf = (const char *)sqlite3_column_text(st, 2);
        if (name && csrf && strlen(csrf) < sizeof c->session.csrf) {
            c->session.valid = true;
            c->session.user_id = sqlite3_column_int64(st, 0);
            snprintf(c->session.username, sizeof c->session.username, "%s", name);
            snprintf(c->session.csrf, sizeof c->session.csrf, "%s", csrf);
            memcpy(c->session.token_hash, hash, sizeof hash);
        }
    } else if (rc != SQLITE_DONE) {
        *err = admin_db_err(db, "session lookup");
    }
    sqlite3_finalize(st);
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

static void throttle_keys(struct ctx *c, const char *user, char ip_key[160], char user_key[160])
{
    snprintf(ip_key, 160, "ip:%.150s", c->req->remote_addr);
    snprintf(user_key, 160, "user:%.150s", user);
}

/* Seconds until both keys are free, 0 when neither is locked, -1 on error. */
static long locked_for(struct ctx *c, const char *ip_key, const char *user_key, char **err)
{
    char now[UTIL_TS_LEN];
    util_format_ts(c->now_ms, now);
    sqlite3_stmt *st;
    sqlite3 *db = c->app->ro;
    if (sqlite3_prepare_v2(db,
                           "SELECT max(locked_until) FROM login_failures "
                           "WHERE key IN (?1, ?2) AND locked_until > ?3",
                           -1, &st, NULL) != SQLITE_OK) {
        *err = admin_db_err(db, "login throttle");
        return -1;
    }
    sqlite3_bind_text(st, 1, ip_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user_key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    long wait = 0;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        int64_t until;
        if (util_parse_ts((const char *)sqlite3_column_text(st, 0), &until, NULL) == 0)
            wait = (long)((until - c->now_ms + 999) / 1000);
        if (wait < 1)
            wait = 1;
    }
    sqlite3_finalize(st);
    return wait;
}

static int exec_rw(sqlite3 *db, const char *sql, char **err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    return 0;
}

static int record_failure(struct ctx *c, const char *ip_key, const char *user_key, char **err)
{
    sqlite3 *db = app_rw(c->app, err);
    if (!db)
        return -1;
    const struct app_config *cfg = c->cfg;
    char now[UTIL_TS_LEN], window[UTIL_TS_LEN], until[UTIL_TS_LEN];
    util_format_ts(c->now_ms, now);
    util_format_ts(c->now_ms - (int64_t)cfg->login_window * 1000, window);
    util_format_ts(c->now_ms + (int64_t)cfg->login_lockout * 1000, until);
    static const char sql[] =
        "INSERT INTO login_failures(key, failures, window_start, locked_until) "
        "VALUES (?1, 1, ?2, CASE WHEN ?4 <= 1 THEN ?5 END) "
        "ON CONFLICT(key) DO UPDATE SET "
        " failures = CASE WHEN window_start < ?3 THEN 1 ELSE failures + 1 END,"
        " locked_until = CASE WHEN (CASE WHEN window_start < ?3 THEN 1 ELSE failures + 1 END)"
        "   >= ?4 THEN ?5 ELSE locked_until END,"
        " window_start = CASE WHEN window_start < ?3 THEN ?2 ELSE window_start END";
    if (exec_rw(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    for (int i = 0; rc == SQLITE_OK && i < 2; i++) {
        sqlite3_bind_text(st, 1, i ? user_key : ip_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, window, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, (int)cfg->login_max_failures);
        sqlite3_bind_text(st, 5, until, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(st);
    }
    if (rc == SQLITE_OK) {
        sqlite3_finalize(st);
        st = NULL;
        /* Forget keys whose window and lock are both over, so the table stays small. */
        rc = sqlite3_prepare_v2(db,
                                "DELETE FROM login_failures WHERE window_start < ?1 "
                                "AND (locked_until IS NULL OR locked_until < ?2)",
                                -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, window, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
    }
    if (rc != SQLITE_OK)
        *err = admin_db_err(db, "recording a login failure");
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || exec_rw(db, "COMMIT", err) < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static int start_session(struct ctx *c, long long user_id, const char *ip_key, const char *user_key,
                         char **err)
{
    char token[ADMIN_TOKEN_HEX], csrf[ADMIN_TOKEN_HEX], hash[UTIL_SHA256_HEX];
    if (util_random_hex(32, token) < 0 || util_random_hex(32, csrf) < 0) {
        *err = strdup("the random generator failed");
        return -1;
    }
    util_sha256_hex(token, hash);
    sqlite3 *db = app_rw(c->app, err);
    if (!db)
        return -1;
    char now[UTIL_TS_LEN], expires[UTIL_TS_LEN];
    util_format_ts(c->now_ms, now);
    util_format_ts(c->now_ms + (int64_t)c->cfg->session_ttl * 1000, expires);
    if (exec_rw(db, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    static const char *const sql[] = {
        "DELETE FROM login_failures WHERE key IN (?3, ?4)",
        "DELETE FROM admin_sessions WHERE expires_at <= ?5",
        ("INSERT INTO admin_sessions(token_hash, user_id, csrf_token, created_at, expires_at) "
         "VALUES (?1, ?2, ?6, ?5, ?7)"),
    };
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof sql / sizeof sql[0]; i++) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(db, sql[i], -1, &st, NULL);
        if (rc != SQLITE_OK)
            break;
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, user_id);
        sqlite3_bind_text(st, 3, ip_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, user_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, csrf, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, expires, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_OK) {
        *err = admin_db_err(db, "starting a session");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (exec_rw(db, "COMMIT", err) < 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    http_set_cookie(c->req, ADMIN_SESSION_COOKIE, token, "/admin", c->cfg->session_ttl);
    OPENSSL_cleanse(token, sizeof token);
    return 0;
}

enum auth_result auth_login(struct ctx *c, const char *user, const char *password,
                            long *retry_after, char **err)
{
    *err = NULL;
    char ip_key[160], user_key[160];
    throttle_keys(c, user, ip_key, user_key);
    long wait = locked_for(c, ip_key, user_key, err);
    if (wait < 0)
        return AUTH_ERROR;
    if (wait > 0) {
        *retry_after = wait;
        return AUTH_LOCKED;
    }

    long long user_id = 0;
    char *stored = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->app->ro,
                           "SELECT id, password_hash FROM admin_users WHERE username = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        *err = admin_db_err(c->app->ro, "admin lookup");
        return AUTH_ERROR;
    }
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        user_id = sqlite3_column_int64(st, 0);
        const char *h = (const char *)sqlite3_column_text(st, 1);
        stored = h ? strdup(h) : NULL;
    }
    sqlite3_finalize(st);

    bool ok = auth_verify_password(password, stored ? stored : dummy_setting) && stored && *user &&
              *password;
    free(stored);
    if (!ok) {
        if (record_failure(c, ip_key, user_key, err) < 0)
            return AUTH_ERROR;
        return AUTH_BAD;
    }
    return start_session(c, user_id, ip_key, user_key, err) < 0 ? AUTH_ERROR : AUTH_OK;
}

int auth_logout(struct ctx *c, char **err)
{
    *err = NULL;
    http_set_cookie(c->req, ADMIN_SESSION_COOKIE, "", "/admin", 0);
    if (!c->session.valid)
        return 0;
    sqlite3 *db = app_rw(c->app, err);
    if (!db)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "DELETE FROM admin_sessions WHERE token_hash = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        *err = admin_db_err(db, "logout");
        return -1;
    }
    sqlite3_bind_text(st, 1, c->session.token_hash, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        *err = admin_db_err(db, "logout");
        return -1;
    }
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

int auth_set_admin(sqlite3 *rw, const char *name, const char *password, bool *created, char **err)
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
    int rc = sqlite3_exec(rw, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    long long existing = 0;
    if (rc == SQLITE_OK)
        rc =
            sqlite3_prepare_v2(rw, "SELECT id FROM admin_users WHERE username = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            existing = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        const char *sql = existing ? "UPDATE admin_users SET password_hash = ?2, updated_at = ?3 "
                                     "WHERE id = ?1"
                                   : "INSERT INTO admin_users(username, password_hash, created_at, "
                                     "updated_at) VALUES (?4, ?2, ?3, ?3)";
        rc = sqlite3_prepare_v2(rw, sql, -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, existing);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == SQLITE_OK && existing) {
        rc = sqlite3_prepare_v2(rw, "DELETE FROM admin_sessions WHERE user_id = ?1", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, existing);
            rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_finalize(st);
        }
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(rw, "COMMIT", NULL, NULL, NULL);
    free(hash);
    if (rc != SQLITE_OK) {
        *err = admin_db_err(rw, "saving the admin");
        sqlite3_exec(rw, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    *created = existing == 0;
    return 0;
}
