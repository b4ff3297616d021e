/* query.c: keyset pages and streams over the logs (see query.h). */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/admin.h"
#include "admin-fcgi/query.h"

#define WINDOW_FIRST 4096
#define WINDOW_MAX 262144

void query_init(struct query *q, const char *table, const char *columns)
{
    memset(q, 0, sizeof *q);
    q->table = table;
    q->columns = columns;
    q->id_lo = 0;
    q->id_hi = LLONG_MAX;
}

void query_free(struct query *q)
{
    for (int i = 0; i < q->nbinds; i++)
        free(q->binds[i]);
    q->nbinds = 0;
    sbuf_free(&q->where);
}

int query_where(struct query *q, const char *cond, const char *value, enum query_kind kind)
{
    if (q->nbinds == QUERY_BINDS_MAX)
        return -1;
    char *v = strdup(value);
    if (!v)
        return -1;
    q->binds[q->nbinds++] = v;
    return query_where_sql(q, cond, kind);
}

int query_where_sql(struct query *q, const char *cond, enum query_kind kind)
{
    sbuf_puts(&q->where, " AND ");
    sbuf_puts(&q->where, cond);
    if (kind == QUERY_INDEXED)
        q->indexed++;
    else if (kind == QUERY_RESIDUAL)
        q->residual++;
    return q->where.failed ? -1 : 0;
}

void query_bound(struct query *q, long long lo, long long hi)
{
    if (lo > q->id_lo)
        q->id_lo = lo;
    if (hi < q->id_hi)
        q->id_hi = hi;
    if (q->id_lo > q->id_hi)
        q->empty = true;
}

/* SELECT ... WHERE <filters> AND id >= ? AND id <= ? ORDER BY id <dir> [LIMIT ?]; the
 * filters' values are bound here, the range and limit by the caller at nbinds+1.. */
static int prepare(struct dbi *db, struct query *q, bool desc, bool limited, struct dbi_stmt **st,
                   char **err)
{
    struct sbuf sql = SBUF_INIT;
    sbuf_printf(&sql, "SELECT %s FROM %s WHERE 1 = 1%s AND id >= ? AND id <= ? ORDER BY id %s%s",
                q->columns, q->table, sbuf_str(&q->where), desc ? "DESC" : "ASC",
                limited ? " LIMIT ?" : "");
    if (sql.failed) {
        sbuf_free(&sql);
        *err = strdup("out of memory");
        return -1;
    }
    int rc = dbi_prepare(db, sql.data, st);
    sbuf_free(&sql);
    if (rc != 0) {
        *err = admin_db_err(db, q->table);
        return -1;
    }
    for (int i = 0; i < q->nbinds; i++)
        dbi_bind_text(*st, i + 1, q->binds[i]);
    return 0;
}

static int bind_range(struct dbi_stmt *st, struct query *q, long long lo, long long hi,
                      long long limit)
{
    dbi_reset(st);
    dbi_bind_int64(st, q->nbinds + 1, lo);
    dbi_bind_int64(st, q->nbinds + 2, hi);
    if (limit >= 0)
        dbi_bind_int64(st, q->nbinds + 3, limit);
    return 0;
}

static int id_edge(struct dbi *db, const char *table, const char *fn, long long *out, char **err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT %s(id) FROM %s", fn, table);
    struct dbi_stmt *st;
    if (dbi_prepare(db, sql, &st) != 0) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    int rc = dbi_step(st);
    bool null = rc != DBI_ROW || dbi_column_null(st, 0);
    *out = null ? -1 : dbi_column_int64(st, 0);
    dbi_finalize(st);
    if (rc != DBI_ROW) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    return 0;
}

static int add_row(struct query_page *p, struct dbi_stmt *st)
{
    if (!p->ncols)
        p->ncols = (size_t)dbi_column_count(st);
    if (p->n % 32 == 0) {
        size_t cap = p->n + 32;
        char **cells = realloc(p->cells, cap * p->ncols * sizeof *cells);
        if (!cells)
            return -1;
        p->cells = cells;
        long long *ids = realloc(p->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        p->ids = ids;
    }
    char **row = p->cells + p->n * p->ncols;
    for (size_t c = 0; c < p->ncols; c++) {
        row[c] = NULL;
        const char *t = dbi_column_text(st, (int)c);
        if (!t)
            continue;
        size_t len = strlen(t);
        row[c] = malloc(len + 1);
        if (!row[c]) {
            for (size_t k = 0; k < c; k++)
                free(row[k]);
            return -1;
        }
        memcpy(row[c], t, len);
        row[c][len] = '\0';
    }
    p->ids[p->n++] = dbi_column_int64(st, 0);
    return 0;
}

static void drop_last(struct query_page *p)
{
    p->n--;
    for (size_t c = 0; c < p->ncols; c++)
        free(p->cells[p->n * p->ncols + c]);
}

static void reverse(struct query_page *p)
{
    for (size_t i = 0, j = p->n ? p->n - 1 : 0; i < j; i++, j--) {
        long long t = p->ids[i];
        p->ids[i] = p->ids[j];
        p->ids[j] = t;
        for (size_t c = 0; c < p->ncols; c++) {
            char *x = p->cells[i * p->ncols + c];
            p->cells[i * p->ncols + c] = p->cells[j * p->ncols + c];
            p->cells[j * p->ncols + c] = x;
        }
    }
}

int query_page(struct dbi *db, struct query *q, long long before, long long after, unsigned limit,
               unsigned scan_rows, struct query_page *out, char **err)
{
    memset(out, 0, sizeof *out);
    *err = NULL;
    bool newer = after > 0;
    long long lo = q->id_lo, hi = q->id_hi;
    if (newer && after + 1 > lo)
        lo = after + 1;
    if (!newer && before > 0 && before - 1 < hi)
        hi = before - 1;
    bool windowed = q->residual > 0 || q->indexed > 1;
    if (windowed) {
        long long first, last;
        if (id_edge(db, q->table, "min", &first, err) < 0 ||
            id_edge(db, q->table, "max", &last, err) < 0)
            return -1;
        if (first > lo)
            lo = first;
        if (last < hi)
            hi = last;
    }
    struct dbi_stmt *st;
    if (prepare(db, q, !newer, true, &st, err) < 0)
        return -1;
    long long want = (long long)limit + 1;
    long long scanned = 0, window = WINDOW_FIRST;
    long long cur = newer ? lo : hi; /* the next id to examine */
    long long wlo = lo, whi = hi;    /* the window being searched */
    int rc = DBI_DONE;
    bool capped = false;
    long long budget = scan_rows ? (long long)scan_rows : LLONG_MAX;
    while (!q->empty && lo <= hi && (newer ? cur <= hi : cur >= lo) && (long long)out->n < want) {
        if (windowed) {
            if (scanned >= budget) {
                capped = true;
                break;
            }
            long long w = window < budget - scanned ? window : budget - scanned;
            if (newer) {
                wlo = cur;
                whi = hi - cur < w ? hi : cur + w - 1;
                cur = whi + 1;
            } else {
                whi = cur;
                wlo = cur - lo < w ? lo : cur - w + 1;
                cur = wlo - 1;
            }
        }
        bind_range(st, q, wlo, whi, want - (long long)out->n);
        while ((rc = dbi_step(st)) == DBI_ROW)
            if (add_row(out, st) < 0) {
                rc = DBI_ERROR;
                break;
            }
        if (rc != DBI_DONE || !windowed)
            break;
        scanned += whi - wlo + 1;
        if (window < WINDOW_MAX)
            window *= 2;
    }
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, q->table);
        dbi_finalize(st);
        query_page_free(out);
        return -1;
    }
    dbi_finalize(st);
    bool more = (long long)out->n == want;
    if (more)
        drop_last(out);
    if (newer)
        reverse(out);
    out->scan_capped = capped;
    if (capped)
        out->scanned_lo = newer ? whi : wlo;
    if (!newer) {
        out->has_older = more || capped;
        out->older_cursor = capped && !more ? wlo : (out->n ? out->ids[out->n - 1] : 0);
        out->has_newer = before > 0 && out->n > 0;
        out->newer_cursor = out->n ? out->ids[0] : 0;
    } else {
        out->has_newer = more || capped;
        out->newer_cursor = capped && !more ? whi : (out->n ? out->ids[0] : 0);
        out->has_older = out->n > 0;
        out->older_cursor = out->n ? out->ids[out->n - 1] : 0;
    }
    return 0;
}

void query_page_free(struct query_page *p)
{
    for (size_t i = 0; i < p->n * p->ncols; i++)
        free(p->cells[i]);
    free(p->cells);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

const char *query_cell(const struct query_page *p, size_t row, size_t col)
{
    if (row >= p->n || col >= p->ncols)
        return NULL;
    return p->cells[row * p->ncols + col];
}

int query_each(struct dbi *db, struct query *q, int (*fn)(void *ud, struct dbi_stmt *st), void *ud,
               char **err)
{
    *err = NULL;
    if (q->empty)
        return 0;
    struct dbi_stmt *st;
    if (prepare(db, q, true, false, &st, err) < 0)
        return -1;
    bind_range(st, q, q->id_lo, q->id_hi, -1);
    int rc;
    while ((rc = dbi_step(st)) == DBI_ROW)
        if (fn(ud, st) < 0) {
            dbi_finalize(st);
            return -1;
        }
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, q->table);
        dbi_finalize(st);
        return -1;
    }
    dbi_finalize(st);
    return 0;
}
