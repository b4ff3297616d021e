/* dbi-sqlite.c: dbi.h on SQLite: a thin skin over sqlite3_stmt. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "admin-fcgi/dbi-impl.h"

struct lite {
    struct dbi base;
    sqlite3 *db;
};

struct lite_stmt {
    struct dbi_stmt base;
    struct lite *owner;
    sqlite3_stmt *st;
};

static int lite_open(const char *target, int flags, int busy_ms, struct dbi **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct lite *l = calloc(1, sizeof *l);
    if (!l) {
        *err = strdup("out of memory");
        return -1;
    }
    l->base.ops = &dbi_sqlite_ops;
    int oflags = (flags & DBI_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (flags & DBI_CREATE)
        oflags |= SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(target, &l->db, oflags, NULL) != SQLITE_OK) {
        const char *m = l->db ? sqlite3_errmsg(l->db) : "out of memory";
        size_t n = strlen(target) + strlen(m) + 3;
        *err = malloc(n);
        if (*err)
            snprintf(*err, n, "%s: %s", target, m);
        sqlite3_close(l->db);
        free(l);
        return -1;
    }
    sqlite3_busy_timeout(l->db, busy_ms);
    if (!(flags & DBI_READONLY))
        sqlite3_exec(l->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    *out = &l->base;
    return 0;
}

static void lite_close(struct dbi *db)
{
    struct lite *l = (struct lite *)db;
    sqlite3_close(l->db);
    free(l);
}

static void *lite_handle(struct dbi *db) { return ((struct lite *)db)->db; }
static const char *lite_errmsg(struct dbi *db) { return sqlite3_errmsg(((struct lite *)db)->db); }

static int lite_prepare(struct dbi *db, const char *sql, struct dbi_stmt **out)
{
    struct lite *l = (struct lite *)db;
    struct lite_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return DBI_ERROR;
    s->base.ops = &dbi_sqlite_ops;
    s->owner = l;
    if (sqlite3_prepare_v2(l->db, sql, -1, &s->st, NULL) != SQLITE_OK) {
        free(s);
        return DBI_ERROR;
    }
    *out = &s->base;
    return 0;
}

#define ST(x) (((struct lite_stmt *)(x))->st)

static void lite_bind_text(struct dbi_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(ST(st), i, v, -1, SQLITE_TRANSIENT);
}
static void lite_bind_int64(struct dbi_stmt *st, int i, long long v)
{
    sqlite3_bind_int64(ST(st), i, v);
}
static void lite_bind_null(struct dbi_stmt *st, int i) { sqlite3_bind_null(ST(st), i); }

static int lite_step(struct dbi_stmt *st)
{
    int rc = sqlite3_step(ST(st));
    return rc == SQLITE_ROW    ? DBI_ROW
           : rc == SQLITE_DONE ? DBI_DONE
           : rc == SQLITE_BUSY ? DBI_BUSY
                               : DBI_ERROR;
}

static void lite_reset(struct dbi_stmt *st) { sqlite3_reset(ST(st)); }
static void lite_finalize(struct dbi_stmt *st)
{
    sqlite3_finalize(ST(st));
    free(st);
}
static int lite_column_count(struct dbi_stmt *st) { return sqlite3_column_count(ST(st)); }
static bool lite_column_null(struct dbi_stmt *st, int col)
{
    return sqlite3_column_type(ST(st), col) == SQLITE_NULL;
}
static const char *lite_column_text(struct dbi_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(ST(st), col);
}
static long long lite_column_int64(struct dbi_stmt *st, int col)
{
    return sqlite3_column_int64(ST(st), col);
}

static int lite_exec(struct dbi *db, const char *sql)
{
    int rc = sqlite3_exec(((struct lite *)db)->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : rc == SQLITE_BUSY ? DBI_BUSY : DBI_ERROR;
}

const struct dbi_ops dbi_sqlite_ops = {
    .kind = DBI_SQLITE,
    .open = lite_open,
    .close = lite_close,
    .handle = lite_handle,
    .errmsg = lite_errmsg,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int64 = lite_bind_int64,
    .bind_null = lite_bind_null,
    .step = lite_step,
    .reset = lite_reset,
    .finalize = lite_finalize,
    .column_count = lite_column_count,
    .column_null = lite_column_null,
    .column_text = lite_column_text,
    .column_int64 = lite_column_int64,
    .exec = lite_exec,
    .begin_write_sql = "BEGIN IMMEDIATE",
    .begin_read_sql = "BEGIN",
};
