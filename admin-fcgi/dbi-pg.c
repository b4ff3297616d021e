/* dbi-pg.c: dbi.h on PostgreSQL (libpq).
 *
 * A statement keeps its SQL (?N turned into $N) and its parameters as text; the first step
 * sends it with PQsendQueryParams in single-row mode and each further step takes one row
 * (PQgetResult), so a result of any size is read at constant memory. One statement runs on
 * a connection at a time: stepping or executing another first drains the one running.
 * A connection found broken is reset (PQreset) before the next statement. */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "admin-fcgi/dbi-impl.h"

#define PG_PARAMS_MAX 32
#define OID_INT8 20
#define OID_TEXT 25
/* The transaction advisory lock every admin-fcgi write transaction takes (dbi_begin_write):
 * any constant no other program uses (the migrations' lock is another). */
#define ADMIN_WRITE_LOCK "7246532361"

struct pg {
    struct dbi base;
    PGconn *c;
    int flags, busy_ms;
    struct pg_stmt *running; /* the statement whose rows are being read */
    char err[512];
};

enum pg_state { PS_IDLE, PS_RUNNING, PS_DONE };

struct pg_stmt {
    struct dbi_stmt base;
    struct pg *owner;
    char *sql;
    int nparams;                     /* the highest $N named */
    bool named[PG_PARAMS_MAX + 1];   /* which $N the SQL names */
    char *vals[PG_PARAMS_MAX + 1];   /* 1-based, NULL: SQL NULL */
    Oid types[PG_PARAMS_MAX + 1];
    enum pg_state state;
    PGresult *row; /* the current row (single-row mode) */
};

static void set_err(struct pg *p, const char *msg)
{
    snprintf(p->err, sizeof p->err, "%s", msg && *msg ? msg : "PostgreSQL error");
    size_t n = strlen(p->err);
    while (n && (p->err[n - 1] == '\n' || p->err[n - 1] == ' '))
        p->err[--n] = '\0';
}

static int session_setup(struct pg *p)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET lock_timeout = %d%s",
             p->busy_ms > 0 ? p->busy_ms : 0,
             (p->flags & DBI_READONLY) ? "; SET default_transaction_read_only = on" : "");
    PGresult *r = PQexec(p->c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        set_err(p, PQerrorMessage(p->c));
    PQclear(r);
    return ok ? 0 : -1;
}

static int pg_open(const char *target, int flags, int busy_ms, struct dbi **out, char **err)
{
    *out = NULL;
    *err = NULL;
    struct pg *p = calloc(1, sizeof *p);
    if (!p) {
        *err = strdup("out of memory");
        return -1;
    }
    p->base.ops = &dbi_pg_ops;
    p->flags = flags;
    p->busy_ms = busy_ms;
    p->c = PQconnectdb(target);
    if (!p->c || PQstatus(p->c) != CONNECTION_OK || session_setup(p) < 0) {
        const char *m = p->c ? PQerrorMessage(p->c) : "out of memory";
        size_t n = strlen(m) + 64;
        *err = malloc(n);
        if (*err) {
            snprintf(*err, n, "cannot connect to PostgreSQL: %s", m);
            size_t k = strlen(*err);
            while (k && ((*err)[k - 1] == '\n' || (*err)[k - 1] == ' '))
                (*err)[--k] = '\0';
        }
        PQfinish(p->c);
        free(p);
        return -1;
    }
    *out = &p->base;
    return 0;
}

/* Reads what is left of the running statement's result, so the connection is free. */
static void drain(struct pg *p)
{
    struct pg_stmt *s = p->running;
    if (!s)
        return;
    PQclear(s->row);
    s->row = NULL;
    PGresult *r;
    while ((r = PQgetResult(p->c)))
        PQclear(r);
    s->state = PS_DONE;
    p->running = NULL;
}

/* Before a new statement: the connection idle and, if it broke, reconnected. */
static int ready(struct pg *p)
{
    drain(p);
    if (PQstatus(p->c) == CONNECTION_OK)
        return 0;
    PQreset(p->c);
    if (PQstatus(p->c) != CONNECTION_OK) {
        set_err(p, PQerrorMessage(p->c));
        return -1;
    }
    return session_setup(p);
}

static void pg_close(struct dbi *db)
{
    struct pg *p = (struct pg *)db;
    drain(p);
    PQfinish(p->c);
    free(p);
}

static void *pg_handle(struct dbi *db) { return ((struct pg *)db)->c; }
static const char *pg_errmsg(struct dbi *db) { return ((struct pg *)db)->err; }

/* SQLite's parameters to PostgreSQL's: ?N -> $N, ? -> the next number; quoted text and
 * identifiers are copied as they are. */
static char *translate(const char *sql, struct pg_stmt *s)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 16);
    if (!out)
        return NULL;
    char *o = out;
    int maxn = 0;
    for (const char *q = sql; *q;) {
        if (*q == '\'' || *q == '"') {
            char quote = *q;
            *o++ = *q++;
            while (*q && *q != quote)
                *o++ = *q++;
            if (*q)
                *o++ = *q++;
            continue;
        }
        if (*q != '?') {
            *o++ = *q++;
            continue;
        }
        q++;
        int num = 0;
        if (isdigit((unsigned char)*q)) {
            while (isdigit((unsigned char)*q))
                num = num * 10 + (*q++ - '0');
        } else {
            num = maxn + 1;
        }
        if (num < 1 || num > PG_PARAMS_MAX) {
            free(out);
            return NULL;
        }
        if (num > maxn)
            maxn = num;
        s->named[num] = true;
        o += sprintf(o, "$%d", num);
    }
    *o = '\0';
    s->nparams = maxn;
    return out;
}

static int pg_prepare(struct dbi *db, const char *sql, struct dbi_stmt **out)
{
    struct pg *p = (struct pg *)db;
    struct pg_stmt *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(p, "out of memory");
        return DBI_ERROR;
    }
    s->base.ops = &dbi_pg_ops;
    s->owner = p;
    s->sql = translate(sql, s);
    if (!s->sql) {
        set_err(p, "too many parameters, or out of memory");
        free(s);
        return DBI_ERROR;
    }
    *out = &s->base;
    return 0;
}

static void set_param(struct pg_stmt *s, int i, char *v, Oid type)
{
    if (i < 1 || i > PG_PARAMS_MAX) {
        free(v);
        return;
    }
    free(s->vals[i]);
    s->vals[i] = v;
    s->types[i] = type;
}

static void pg_bind_text(struct dbi_stmt *st, int i, const char *v)
{
    set_param((struct pg_stmt *)st, i, strdup(v), 0);
}

static void pg_bind_int64(struct dbi_stmt *st, int i, long long v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", v);
    set_param((struct pg_stmt *)st, i, strdup(buf), OID_INT8);
}

static void pg_bind_null(struct dbi_stmt *st, int i)
{
    set_param((struct pg_stmt *)st, i, NULL, 0);
}

static int start(struct pg_stmt *s)
{
    struct pg *p = s->owner;
    if (ready(p) < 0)
        return DBI_ERROR;
    const char *vals[PG_PARAMS_MAX];
    Oid types[PG_PARAMS_MAX];
    for (int i = 1; i <= s->nparams; i++) {
        vals[i - 1] = s->vals[i];
        /* A parameter the SQL never names must still have a type. */
        types[i - 1] = s->named[i] ? s->types[i] : OID_TEXT;
    }
    if (!PQsendQueryParams(p->c, s->sql, s->nparams, types, vals, NULL, NULL, 0)) {
        set_err(p, PQerrorMessage(p->c));
        return DBI_ERROR;
    }
    PQsetSingleRowMode(p->c);
    s->state = PS_RUNNING;
    p->running = s;
    return 0;
}

static int pg_step(struct dbi_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    struct pg *p = s->owner;
    if (s->state == PS_DONE)
        return DBI_DONE;
    if (s->state == PS_IDLE && start(s) < 0)
        return DBI_ERROR;
    if (p->running != s) /* another statement drained this one */
        return DBI_DONE;
    PQclear(s->row);
    s->row = PQgetResult(p->c);
    ExecStatusType status = s->row ? PQresultStatus(s->row) : PGRES_FATAL_ERROR;
    if (status == PGRES_SINGLE_TUPLE)
        return DBI_ROW;
    int rc = DBI_DONE;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        set_err(p, s->row ? PQresultErrorMessage(s->row) : PQerrorMessage(p->c));
        rc = DBI_ERROR;
    }
    drain(p);
    return rc;
}

static void pg_reset(struct dbi_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (s->owner->running == s)
        drain(s->owner);
    PQclear(s->row);
    s->row = NULL;
    s->state = PS_IDLE;
}

static void pg_finalize(struct dbi_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    pg_reset(st);
    for (int i = 0; i <= PG_PARAMS_MAX; i++)
        free(s->vals[i]);
    free(s->sql);
    free(s);
}

static PGresult *row_of(struct dbi_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    return s->row && PQresultStatus(s->row) == PGRES_SINGLE_TUPLE ? s->row : NULL;
}

static int pg_column_count(struct dbi_stmt *st)
{
    PGresult *r = row_of(st);
    return r ? PQnfields(r) : 0;
}

static bool pg_column_null(struct dbi_stmt *st, int col)
{
    PGresult *r = row_of(st);
    return !r || col >= PQnfields(r) || PQgetisnull(r, 0, col);
}

static const char *pg_column_text(struct dbi_stmt *st, int col)
{
    return pg_column_null(st, col) ? NULL : PQgetvalue(row_of(st), 0, col);
}

static long long pg_column_int64(struct dbi_stmt *st, int col)
{
    const char *v = pg_column_text(st, col);
    if (!v)
        return 0;
    if (v[0] == 't' && !v[1]) /* a boolean */
        return 1;
    return strtoll(v, NULL, 10); /* numeric sums ("12") and bigints alike */
}

static int pg_exec(struct dbi *db, const char *sql)
{
    struct pg *p = (struct pg *)db;
    if (ready(p) < 0)
        return DBI_ERROR;
    PGresult *r = PQexec(p->c, sql);
    ExecStatusType status = PQresultStatus(r);
    int rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : DBI_ERROR;
    if (rc)
        set_err(p, PQerrorMessage(p->c));
    PQclear(r);
    return rc;
}

const struct dbi_ops dbi_pg_ops = {
    .kind = DBI_PG,
    .open = pg_open,
    .close = pg_close,
    .handle = pg_handle,
    .errmsg = pg_errmsg,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .column_count = pg_column_count,
    .column_null = pg_column_null,
    .column_text = pg_column_text,
    .column_int64 = pg_column_int64,
    .exec = pg_exec,
    .begin_write_sql = "BEGIN; SELECT pg_advisory_xact_lock(" ADMIN_WRITE_LOCK ")",
    .begin_read_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
};
