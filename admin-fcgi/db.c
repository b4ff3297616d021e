/* db.c: admin-fcgi's database connections (see admin.h), through dbi.h.
 *
 * On SQLite, reads go through a read-only connection. The database is in WAL mode, so a reader never
 * blocks rtd's writer and rtd never blocks a reader; each statement (or the explicit read
 * transaction a page opens) sees one consistent snapshot. The read-write connection is used
 * only for short IMMEDIATE transactions and waits up to busy_timeout_ms for rtd's lock.
 * On PostgreSQL the read connection's transactions are read-only by default, a page that
 * needs one snapshot opens a REPEATABLE READ transaction, and the migrations are
 * common/migrate_pg.c's, the same rtd applies (under its advisory lock). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/admin.h"
#include "common/migrate.h"
#include "common/migrate_pg.h"

#include <libpq-fe.h>
#include <sqlite3.h>

void app_config_defaults(struct app_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->templates_dir = RTD_DATADIR "/templates";
    cfg->site_name = "APG Socket";
    int64_t launch;
    util_parse_ts("2027-01-01 00:00:00", &launch, NULL);
    cfg->launch_ms = launch;
    cfg->session_ttl = 12 * 3600;
    cfg->page_size = 50;
    cfg->scan_rows = 100000;
    cfg->login_max_failures = 5;
    cfg->login_addr_failures = 20;
    cfg->login_window = 15 * 60;
    cfg->login_lockout = 15 * 60;
    cfg->subscribe_limit = 10;
    cfg->subscribe_window = 15 * 60;
    cfg->body_max = 64 * 1024;
    cfg->busy_timeout_ms = 5000;
    cfg->refresh_seconds = 5;
}

void admin_log(const char *fmt, ...)
{
    char ts[UTIL_TS_LEN];
    util_format_ts(util_now_ms(), ts);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s admin-fcgi: %s\n", ts, line);
}

char *admin_db_err(struct dbi *db, const char *what)
{
    const char *msg = dbi_errmsg(db);
    size_t n = strlen(what) + strlen(msg) + 3;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "%s: %s", what, msg);
    return e;
}

static char *dup_err(const char *what, const char *detail)
{
    size_t n = strlen(what) + strlen(detail) + 3;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "%s: %s", what, detail);
    return e;
}

static int query_int(sqlite3 *db, const char *sql, long long *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static int prepare_sqlite(const struct app_config *cfg, char **err)
{
    sqlite3 *db = NULL;
    *err = NULL;
    int rc = sqlite3_open_v2(cfg->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        *err = dup_err(cfg->db_path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, cfg->busy_timeout_ms);
    long long have = 0;
    if (query_int(db, "PRAGMA user_version", &have) < 0) {
        *err = dup_err("cannot read the schema version", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    if (have != migrate_latest_version()) {
        /* WAL first, so the migration itself never blocks a concurrent reader. */
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        char *merr = NULL;
        if (migrate_apply(db, &merr) < 0) {
            *err = dup_err("migration failed", merr ? merr : "unknown error");
            free(merr);
            sqlite3_close(db);
            return -1;
        }
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
        bool wal = sqlite3_step(st) == SQLITE_ROW &&
                   strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!wal)
            sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return 0;
}

static int prepare_pg(const struct app_config *cfg, char **err)
{
    struct dbi *db;
    if (dbi_open(cfg->db_path, 0, cfg->busy_timeout_ms, &db, err) < 0)
        return -1;
    char *merr = NULL;
    int rc = migrate_pg_apply(dbi_handle(db), &merr);
    if (rc < 0)
        *err = dup_err("migration failed", merr ? merr : "unknown error");
    free(merr);
    dbi_close(db);
    return rc < 0 ? -1 : 0;
}

int app_prepare_db(const struct app_config *cfg, char **err)
{
    *err = NULL;
    return dbi_is_pg(cfg->db_path) ? prepare_pg(cfg, err) : prepare_sqlite(cfg, err);
}

int app_open(struct app *a, const struct app_config *cfg, char **err)
{
    memset(a, 0, sizeof *a);
    a->cfg = cfg;
    /* Readers wait briefly only in the rare moments WAL needs it (recovery after a crash). */
    return dbi_open(cfg->db_path, DBI_READONLY, cfg->busy_timeout_ms, &a->ro, err);
}

void app_close(struct app *a)
{
    dbi_close(a->ro);
    dbi_close(a->rw);
    a->ro = a->rw = NULL;
}

struct dbi *app_rw(struct app *a, char **err)
{
    *err = NULL;
    if (a->rw)
        return a->rw;
    if (dbi_open(a->cfg->db_path, 0, a->cfg->busy_timeout_ms, &a->rw, err) < 0)
        return NULL;
    return a->rw;
}
