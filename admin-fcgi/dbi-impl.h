/* dbi-impl.h: what the two backends of dbi.h provide (dbi-sqlite.c, dbi-pg.c). dbi.c
 * dispatches each call through a struct dbi_ops; nothing else includes this. */
#ifndef ADMIN_DBI_IMPL_H
#define ADMIN_DBI_IMPL_H

#include "admin-fcgi/dbi.h"

struct dbi_ops {
    enum dbi_kind kind;
    int (*open)(const char *target, int flags, int busy_ms, struct dbi **out, char **err);
    void (*close)(struct dbi *db);
    void *(*handle)(struct dbi *db);
    const char *(*errmsg)(struct dbi *db);
    int (*prepare)(struct dbi *db, const char *sql, struct dbi_stmt **st);
    void (*bind_text)(struct dbi_stmt *st, int i, const char *v);
    void (*bind_int64)(struct dbi_stmt *st, int i, long long v);
    void (*bind_null)(struct dbi_stmt *st, int i);
    int (*step)(struct dbi_stmt *st);
    void (*reset)(struct dbi_stmt *st);
    void (*finalize)(struct dbi_stmt *st);
    int (*column_count)(struct dbi_stmt *st);
    bool (*column_null)(struct dbi_stmt *st, int col);
    const char *(*column_text)(struct dbi_stmt *st, int col);
    long long (*column_int64)(struct dbi_stmt *st, int col);
    int (*exec)(struct dbi *db, const char *sql);
    const char *begin_write_sql, *begin_read_sql;
};

/* Every connection and statement starts with its ops. */
struct dbi {
    const struct dbi_ops *ops;
};
struct dbi_stmt {
    const struct dbi_ops *ops;
};

extern const struct dbi_ops dbi_sqlite_ops, dbi_pg_ops;

#endif
