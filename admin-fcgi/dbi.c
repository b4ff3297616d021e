/* dbi.c: the seam's dispatch to the backend of each connection (see dbi.h). */
#include "config.h"

#include <string.h>

#include "admin-fcgi/dbi-impl.h"

bool dbi_is_pg(const char *target)
{
    return target &&
           (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0);
}

int dbi_open(const char *target, int flags, int busy_ms, struct dbi **out, char **err)
{
    const struct dbi_ops *ops = dbi_is_pg(target) ? &dbi_pg_ops : &dbi_sqlite_ops;
    return ops->open(target, flags, busy_ms, out, err);
}

void dbi_close(struct dbi *db)
{
    if (db)
        db->ops->close(db);
}

enum dbi_kind dbi_kind(const struct dbi *db) { return db->ops->kind; }
void *dbi_handle(struct dbi *db) { return db->ops->handle(db); }
const char *dbi_errmsg(struct dbi *db) { return db ? db->ops->errmsg(db) : "out of memory"; }
int dbi_prepare(struct dbi *db, const char *sql, struct dbi_stmt **st)
{
    *st = NULL;
    return db->ops->prepare(db, sql, st);
}
void dbi_bind_text(struct dbi_stmt *st, int i, const char *v)
{
    if (v)
        st->ops->bind_text(st, i, v);
    else
        st->ops->bind_null(st, i);
}
void dbi_bind_int64(struct dbi_stmt *st, int i, long long v) { st->ops->bind_int64(st, i, v); }
void dbi_bind_null(struct dbi_stmt *st, int i) { st->ops->bind_null(st, i); }
int dbi_step(struct dbi_stmt *st) { return st->ops->step(st); }
void dbi_reset(struct dbi_stmt *st) { st->ops->reset(st); }
void dbi_finalize(struct dbi_stmt *st)
{
    if (st)
        st->ops->finalize(st);
}
int dbi_column_count(struct dbi_stmt *st) { return st->ops->column_count(st); }
bool dbi_column_null(struct dbi_stmt *st, int col) { return st->ops->column_null(st, col); }
const char *dbi_column_text(struct dbi_stmt *st, int col) { return st->ops->column_text(st, col); }
long long dbi_column_int64(struct dbi_stmt *st, int col) { return st->ops->column_int64(st, col); }
int dbi_exec(struct dbi *db, const char *sql) { return db->ops->exec(db, sql); }
int dbi_begin_write(struct dbi *db) { return db->ops->exec(db, db->ops->begin_write_sql); }
int dbi_begin_read(struct dbi *db) { return db->ops->exec(db, db->ops->begin_read_sql); }
int dbi_commit(struct dbi *db) { return db->ops->exec(db, "COMMIT"); }
void dbi_rollback(struct dbi *db) { db->ops->exec(db, "ROLLBACK"); }

int dbi_query_int(struct dbi *db, const char *sql, long long *out)
{
    struct dbi_stmt *st;
    if (dbi_prepare(db, sql, &st) != 0)
        return -1;
    int rc = dbi_step(st);
    if (rc == DBI_ROW)
        *out = dbi_column_int64(st, 0);
    dbi_finalize(st);
    return rc == DBI_ROW ? 0 : -1;
}
