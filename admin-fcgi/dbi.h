/* dbi.h: admin-fcgi's database seam: one small query layer with a SQLite and a PostgreSQL
 * (libpq) implementation, so the pages' code does not know which one runs.
 *
 * SQL is written with SQLite's parameters: ?N, or ? for "the next one". On PostgreSQL they
 * become $N (outside quoted text); a parameter the statement never names is sent typed as
 * text so PostgreSQL does not ask for its type. Bound integers are sent as int8.
 *
 * A statement is stepped like sqlite3_step: DBI_ROW per row, then DBI_DONE. On PostgreSQL
 * the rows arrive one at a time (single-row mode), so memory does not grow with a result and
 * the CSV export streams; one connection runs one statement at a time (starting another
 * first drains the one still running). dbi_reset makes a statement runnable again with its
 * bindings kept.
 *
 * Backend-specific SQL stays with the caller, chosen with dbi_kind(): keep it to the few
 * statements that need it (see stats.c, ui-messages.c).
 *
 * Ownership: dbi_open's connection until dbi_close; a statement until dbi_finalize; column
 * text is valid until the next step, reset or finalize. Bound text is copied. */
#ifndef ADMIN_DBI_H
#define ADMIN_DBI_H

#include <stdbool.h>

enum dbi_kind { DBI_SQLITE, DBI_PG };

enum {
    DBI_ROW = 1,
    DBI_DONE = 0,
    DBI_ERROR = -1,
    DBI_BUSY = -2, /* SQLite: the write lock stayed taken for the busy timeout */
};

enum {
    DBI_READONLY = 1, /* refuse writes (SQLite: opened read-only; PostgreSQL: read-only
                         transactions by default) */
    DBI_CREATE = 2,   /* SQLite: create the file when missing */
};

struct dbi;
struct dbi_stmt;

/* A PostgreSQL URL (postgresql:// or postgres://) rather than a SQLite path. */
bool dbi_is_pg(const char *target);

/* Opens target (a SQLite path or a libpq connection URL; libpq's PG* environment variables
 * apply). busy_ms: how long a write waits for a lock. Returns 0, or -1 and a malloc'ed
 * *err. */
int dbi_open(const char *target, int flags, int busy_ms, struct dbi **out, char **err);
void dbi_close(struct dbi *db);
enum dbi_kind dbi_kind(const struct dbi *db);
/* The backend's handle (sqlite3 * or PGconn *), for migrations and tools. */
void *dbi_handle(struct dbi *db);
/* The last error's message (never NULL). */
const char *dbi_errmsg(struct dbi *db);

int dbi_prepare(struct dbi *db, const char *sql, struct dbi_stmt **st);
void dbi_bind_text(struct dbi_stmt *st, int i, const char *v); /* NULL binds NULL */
void dbi_bind_int64(struct dbi_stmt *st, int i, long long v);
void dbi_bind_null(struct dbi_stmt *st, int i);
int dbi_step(struct dbi_stmt *st);
void dbi_reset(struct dbi_stmt *st);
void dbi_finalize(struct dbi_stmt *st); /* NULL is fine */
int dbi_column_count(struct dbi_stmt *st); /* valid after a DBI_ROW */
bool dbi_column_null(struct dbi_stmt *st, int col);
const char *dbi_column_text(struct dbi_stmt *st, int col); /* NULL for SQL NULL */
long long dbi_column_int64(struct dbi_stmt *st, int col);  /* 0 for NULL */

/* Runs SQL without parameters or rows. Returns 0, DBI_BUSY or DBI_ERROR. */
int dbi_exec(struct dbi *db, const char *sql);
/* A write transaction that holds writers back until it ends (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: BEGIN and a transaction advisory lock, so read-then-write sequences such as
 * the login throttle stay serial). */
int dbi_begin_write(struct dbi *db);
/* A read transaction that sees one snapshot (PostgreSQL: REPEATABLE READ, READ ONLY). */
int dbi_begin_read(struct dbi *db);
int dbi_commit(struct dbi *db);
void dbi_rollback(struct dbi *db);

/* One integer from a statement without parameters: 0, or -1 (no row or an error). */
int dbi_query_int(struct dbi *db, const char *sql, long long *out);

#endif
