/* query.h: filtered, keyset-paginated reads of the messages and connections logs.
 *
 * A page is "WHERE <filters> AND id < ? ORDER BY id DESC LIMIT n": with an equality filter
 * the database walks the matching (column, id) index backwards, without one the primary key,
 * and either way it stops after n rows. Filters no index serves (text search, a second
 * equality filter, times on connections) are "residual": the page is then searched in
 * windows of ids, newest first, and gives up after scan_rows ids so even a filter that
 * matches nothing answers quickly; the page then offers to continue from where it stopped.
 * A range of ids can bound the search (the messages' date filter becomes one, through the
 * created_at index).
 *
 * Ownership: struct query copies every value it is given; query_free releases them. A
 * struct query_page owns its cells until query_page_free. Errors: -1 and a malloc'ed *err. */
#ifndef ADMIN_QUERY_H
#define ADMIN_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#include "admin-fcgi/dbi.h"
#include "admin-fcgi/sbuf.h"

#define QUERY_BINDS_MAX 16

struct query {
    const char *table;   /* static text: "messages", "connections" */
    const char *columns; /* static text; the first column must be id */
    struct sbuf where;   /* " AND cond" clauses, values only as ? */
    char *binds[QUERY_BINDS_MAX];
    int nbinds;
    int residual;           /* conditions no index serves */
    int indexed;            /* equality conditions an index serves */
    long long id_lo, id_hi; /* inclusive bounds on id */
    bool empty;             /* the bounds already exclude everything */
};

void query_init(struct query *q, const char *table, const char *columns);
void query_free(struct query *q);
/* How a condition is served. */
enum query_kind {
    QUERY_INDEXED,  /* an equality an index of (column, id) serves */
    QUERY_RESIDUAL, /* checked row by row: the page is searched in bounded windows */
    QUERY_BOUNDED,  /* true of every row inside the id bounds set with query_bound */
};
/* Adds " AND <cond>" where cond holds exactly one '?', bound to value. Returns 0 or -1 when
 * there are too many conditions or memory ran out. */
int query_where(struct query *q, const char *cond, const char *value, enum query_kind kind);
/* Adds " AND <cond>" with no parameter (fixed SQL only, never request data): for terms a
 * partial index must see literally, such as status = 'active'. */
int query_where_sql(struct query *q, const char *cond, enum query_kind kind);
/* Narrows the id range. */
void query_bound(struct query *q, long long lo, long long hi);

struct query_page {
    size_t n, ncols;
    char **cells; /* n * ncols, NULL for SQL NULL; newest row first */
    long long *ids;
    bool has_older; /* another page is older: before=older_cursor */
    long long older_cursor;
    bool has_newer; /* another page may be newer: after=newer_cursor */
    long long newer_cursor;
    bool scan_capped;     /* stopped after scan_rows ids without filling the page */
    long long scanned_lo; /* lowest id examined when scan_capped */
};

/* One page of at most limit rows with id < before (before <= 0: from the newest) or, when
 * after > 0, the rows just newer than after. */
int query_page(struct dbi *db, struct query *q, long long before, long long after, unsigned limit,
               unsigned scan_rows, struct query_page *out, char **err);
void query_page_free(struct query_page *p);
/* A cell of row i, or NULL. */
const char *query_cell(const struct query_page *p, size_t row, size_t col);

/* Every matching row, newest first, one at a time: fn returns 0 to go on or -1 to stop
 * (then query_each returns -1 without *err). Memory use does not grow with the rows. */
int query_each(struct dbi *db, struct query *q, int (*fn)(void *ud, struct dbi_stmt *st), void *ud,
               char **err);

#endif
