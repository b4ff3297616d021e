/* pg.c: the PostgreSQL backend (store_backend.h): one database shared by every rtd node.
 *
 * Two libpq connections, the writer's and the reader's, each used by its one thread. The
 * writer's transaction is the store's batch: BEGIN, the items in order, then the deferred
 * messages, the counters and the heartbeat, COMMIT; messages complete (and are acked) only
 * after COMMIT returned. Messages are not written one statement each: apply only collects
 * them, and flush takes their ids from the sequence in one query (ids unique across nodes
 * and increasing in this node's order) and writes them all with one COPY (or, with
 * RTD_PG_INSERT=values, multi-row INSERTs of up to PG_ROWS_PER_INSERT rows; docs/BENCHMARKS.md
 * has the comparison).
 *
 * Many nodes: connection rows carry node_id, daemon_status has a row per node, and a node's
 * start closes only the active rows it left. Counters are upserts that add (count = count +
 * excluded.count), written in the same transaction, each batch's keys in one sorted order so
 * two nodes' transactions lock counter rows in the same order and never deadlock. Retention
 * deletes with SKIP LOCKED, so two nodes' passes never wait on each other.
 *
 * PostgreSQL down or restarting: the transaction in flight fails (its messages complete with
 * ok false: nothing not committed is acked), ready() refuses every batch until a reconnect
 * succeeds, retried with a backoff from 100 ms to 5 s, so sends are answered at once with an
 * error and the queue stays bounded; statements are prepared again on the new connection.
 *
 * Any error inside a PostgreSQL transaction aborts all of it, so the writes that fail alone
 * on SQLite are caught before they are sent: a duplicate socket_id (ON CONFLICT DO NOTHING),
 * a missing socket_id or sender.
 *
 * Over 800 lines, and one file on purpose: it is the whole of one backend behind
 * store_backend.h (connections, transactions, writes, counters, retention, history pages),
 * as sqlite.c is the other; its sections are marked "---- ... ----". */
#include "config.h"

#include <libpq-fe.h>
#include <unistd.h>

#include "common/migrate_pg.h"
#include "rtd/lib/util.h"
#include "rtd/store/store_internal.h"

enum {
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 5000,
    PG_ROWS_PER_INSERT = 1000, /* 7 parameters a row: far below libpq's 65535 */
};

enum pstmt {
    P_CONN_OPEN,
    P_CONN_REOPEN,
    P_CONN_GET,
    P_CONN_IDENTIFY,
    P_CONN_TRANSPORT,
    P_CONN_CLOSE,
    P_STATUS,
    P_MC_ADD,
    P_MC_PRUNE,
    P_CC_ADD,
    P_CC_PRUNE,
    P_TOT_ADD,
    P_TOT_MAX,
    P_RETENTION,
    P_CLOSE_ACTIVE,
    P_STOPPED,
    P_HEARTBEAT,
    P_STARTED,
    P_IDS,
    P_SESS_SAVE,
    P_SESS_DEL,
    P_SESS_EXPIRE,
    P_COUNT
};

static const char *const pstmt_sql[P_COUNT] = {
    [P_SESS_SAVE] = "INSERT INTO recovery_sessions(pid, node_id, socket_id, rooms, user_id,"
                    " platform, left_at_ms, since_id) VALUES($1, $2, $3, $4, $5, $6, $7, $8)"
                    " ON CONFLICT (pid) DO UPDATE SET node_id = excluded.node_id,"
                    " socket_id = excluded.socket_id, rooms = excluded.rooms,"
                    " user_id = excluded.user_id, platform = excluded.platform,"
                    " left_at_ms = excluded.left_at_ms, since_id = excluded.since_id"
                    /* a node writes only its own rows: once another node claimed the
                     * session (recovery.c), a late save or delete of the old node's
                     * socket leaves the new owner's row alone */
                    " WHERE recovery_sessions.node_id = excluded.node_id",
    [P_SESS_DEL] = "DELETE FROM recovery_sessions WHERE pid = $1 AND node_id = $2",
    /* Rows still "connected" ($2: now) whose node's last heartbeat is older than the cutoff
     * and than 15 s (three heartbeats: the node is gone) go too: nobody will mark them left. */
    [P_SESS_EXPIRE] = "DELETE FROM recovery_sessions r WHERE r.left_at_ms < $1::bigint"
                      " OR (r.left_at_ms IS NULL AND EXISTS (SELECT 1 FROM daemon_status d"
                      " WHERE d.node_id = r.node_id AND extract(epoch FROM"
                      " d.updated_at::timestamptz) * 1000 < least($1::bigint, $2::bigint - 15000)))",
    [P_CONN_REOPEN] = "UPDATE connections SET status = 'active', disconnected_at = NULL,"
                      " duration_ms = NULL, transport = $2, remote_addr = $3, user_agent = $4,"
                      " node_id = $5 WHERE socket_id = $1",
    [P_CONN_OPEN] = "INSERT INTO connections(socket_id, platform, status, connected_at, created_at,"
                    " transport, remote_addr, user_agent, node_id)"
                    " VALUES($1, 'unknown', 'active', $2, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (socket_id) DO NOTHING",
    [P_CONN_GET] = "SELECT platform, connected_at FROM connections WHERE socket_id = $1",
    [P_CONN_IDENTIFY] = "UPDATE connections SET user_id = coalesce($2, user_id),"
                        " platform = coalesce($3, platform),"
                        " app_version = coalesce($4, app_version) WHERE socket_id = $1",
    [P_CONN_TRANSPORT] = "UPDATE connections SET transport = $2 WHERE socket_id = $1",
    [P_CONN_CLOSE] = "UPDATE connections SET disconnected_at = $2, duration_ms = $3,"
                     " status = 'disconnected' WHERE socket_id = $1 AND status = 'active'",
    [P_STATUS] = "UPDATE daemon_status SET updated_at = $1, connections = $2, messages_in = $3,"
                 " messages_out = $4, laravel = $6 WHERE node_id = $5",
    [P_MC_ADD] = "INSERT INTO message_counts(hour, platform, count) VALUES($1, $2, $3)"
                 " ON CONFLICT (hour, platform) DO UPDATE"
                 " SET count = message_counts.count + excluded.count",
    [P_MC_PRUNE] = "DELETE FROM message_counts WHERE hour = $1 AND platform = $2 AND count <= 0",
    [P_CC_ADD] = "INSERT INTO connection_counts(hour, platform, count) VALUES($1, $2, $3)"
                 " ON CONFLICT (hour, platform) DO UPDATE"
                 " SET count = connection_counts.count + excluded.count",
    [P_CC_PRUNE] = "DELETE FROM connection_counts WHERE hour = $1 AND platform = $2 AND count <= 0",
    [P_TOT_ADD] = "INSERT INTO totals(name, value) VALUES($1, $2)"
                  " ON CONFLICT (name) DO UPDATE SET value = totals.value + excluded.value",
    [P_TOT_MAX] = "INSERT INTO totals(name, value) VALUES($1, $2)"
                  " ON CONFLICT (name) DO UPDATE SET value = greatest(totals.value, excluded.value)",
    [P_RETENTION] = "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE created_at < $1"
                    " ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
                    " RETURNING created_at, platform",
    /* As in SQLite (sqlite.c's close_active), for this node's rows only. */
    [P_CLOSE_ACTIVE] =
        "UPDATE connections SET status = 'disconnected',"
        " disconnected_at = CASE WHEN $1::text IS NOT NULL AND ($2::bool OR $1::text > connected_at)"
        "  THEN $1::text ELSE connected_at END,"
        " duration_ms = CASE WHEN $1::text IS NOT NULL AND ($2::bool OR $1::text > connected_at)"
        "  THEN greatest(0, round(extract(epoch FROM ($1::timestamp - connected_at::timestamp))"
        "  * 1000))::bigint END"
        " WHERE status = 'active' AND node_id = $3 RETURNING duration_ms",
    [P_STOPPED] = "UPDATE daemon_status SET updated_at = $1, stopped_at = $1 WHERE node_id = $2",
    [P_HEARTBEAT] = "SELECT updated_at FROM daemon_status WHERE node_id = $1 FOR UPDATE",
    [P_STARTED] = "INSERT INTO daemon_status(node_id, pid, version, started_at, updated_at,"
                  " stopped_at, connections, messages_in, messages_out)"
                  " VALUES($1, $2, $3, $4, $4, NULL, 0, 0, 0)"
                  " ON CONFLICT (node_id) DO UPDATE SET pid = excluded.pid,"
                  " version = excluded.version, started_at = excluded.started_at,"
                  " updated_at = excluded.updated_at, stopped_at = NULL,"
                  " connections = 0, messages_in = 0, messages_out = 0",
    [P_IDS] = "SELECT nextval('messages_id_seq') FROM generate_series(1, $1::int)",
};

/* The reader's two pages: createdAt as SQLite's strftime('%Y-%m-%dT%H:%M:%fZ') gives it. */
#define QCOLS                                                                                      \
    "SELECT id, socket_id, sender, message_text, platform, room,"                                  \
    " to_char(created_at::timestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM messages WHERE "
static const char *const q_room_sql = QCOLS "room = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
static const char *const q_null_sql =
    QCOLS "$1::text IS NULL AND room IS NULL AND id < $2 ORDER BY id DESC LIMIT $3";
#undef QCOLS

struct pg_be {
    char *conninfo;
    bool use_copy;
    /* Writer thread. */
    PGconn *w;
    bool prepared[P_COUNT]; /* on this connection of w */
    unsigned backoff_ms;
    uint64_t next_try_ns;
    bool down_logged;
    char err[512];
    struct item **pend; /* messages waiting for flush, in order */
    size_t npend, cappend;
    buf copy;           /* COPY data or INSERT text */
    const char **vals;  /* parameters of a multi-row INSERT */
    size_t capvals;
    int64_t *ids;
    size_t capids;
    /* Reader thread. */
    PGconn *r;
    bool r_prepared;
};

static inline struct pg_be *pg_be(store *st)
{
    return st->bs;
}

/* ---- connections ------------------------------------------------------------------------ */

static void set_be_err(struct pg_be *b, const char *what, const char *detail)
{
    snprintf(b->err, sizeof b->err, "%s%s%s", what, detail && *detail ? ": " : "",
             detail ? detail : "");
    size_t n = strlen(b->err);
    while (n > 0 && (b->err[n - 1] == '\n' || b->err[n - 1] == ' '))
        b->err[--n] = '\0';
}

/* A connection with the session settings every statement here expects. */
static PGconn *pg_connect(const char *conninfo, char *err, size_t errn)
{
    PGconn *c = PQconnectdb(conninfo);
    if (!c) {
        snprintf(err, errn, "out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errn, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errn, "cannot set up the PostgreSQL session: %s", PQerrorMessage(c));
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* The writer's statements are prepared on first use on each connection. */
static PGresult *wexec(struct pg_be *b, enum pstmt p, int n, const char *const *vals)
{
    char name[8];
    snprintf(name, sizeof name, "w%d", (int)p);
    if (!b->prepared[p]) {
        PGresult *r = PQprepare(b->w, name, pstmt_sql[p], 0, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            set_be_err(b, "cannot prepare a statement", PQerrorMessage(b->w));
        PQclear(r);
        if (!ok)
            return NULL;
        b->prepared[p] = true;
    }
    PGresult *r = PQexecPrepared(b->w, name, n, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        set_be_err(b, "PostgreSQL", PQresultErrorMessage(r) && *PQresultErrorMessage(r)
                                        ? PQresultErrorMessage(r)
                                        : PQerrorMessage(b->w));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Runs a prepared statement whose rows do not matter. */
static int wrun(struct pg_be *b, enum pstmt p, int n, const char *const *vals)
{
    PGresult *r = wexec(b, p, n, vals);
    PQclear(r);
    return r ? 0 : -1;
}

static int wsimple(struct pg_be *b, const char *sql)
{
    PGresult *r = PQexec(b->w, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        set_be_err(b, sql, PQerrorMessage(b->w));
    PQclear(r);
    return ok ? 0 : -1;
}

static bool pg_ready(store *st)
{
    struct pg_be *b = pg_be(st);
    if (b->w && PQstatus(b->w) == CONNECTION_OK)
        return true;
    uint64_t now = mono_ns();
    if (b->w && !b->down_logged) {
        log_error(RLOG_ERROR, "PostgreSQL connection lost", PQerrorMessage(b->w), NULL);
        b->down_logged = true;
    }
    if (now < b->next_try_ns) {
        set_be_err(b, "the database is unavailable (PostgreSQL is down; reconnecting)", NULL);
        return false;
    }
    if (b->w)
        PQfinish(b->w);
    memset(b->prepared, 0, sizeof b->prepared);
    char err[512];
    b->w = pg_connect(b->conninfo, err, sizeof err);
    if (!b->w) {
        set_be_err(b, "the database is unavailable", err);
        if (!b->down_logged) {
            log_error(RLOG_ERROR, "PostgreSQL connection lost", err, NULL);
            b->down_logged = true;
        }
        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (b->backoff_ms > BACKOFF_MAX_MS)
            b->backoff_ms = BACKOFF_MAX_MS;
        b->next_try_ns = now + (uint64_t)b->backoff_ms * 1000000u;
        return false;
    }
    rlog(RLOG_INFO, "PostgreSQL connection restored", NULL);
    b->down_logged = false;
    b->backoff_ms = 0;
    return true;
}

/* ---- transactions ------------------------------------------------------------------------ */

static int pg_begin(store *st)
{
    return wsimple(pg_be(st), "BEGIN");
}

static int pg_commit(store *st)
{
    return wsimple(pg_be(st), "COMMIT");
}

static void pg_rollback(store *st)
{
    struct pg_be *b = pg_be(st);
    if (b->w && PQstatus(b->w) == CONNECTION_OK && PQtransactionStatus(b->w) != PQTRANS_IDLE)
        PQclear(PQexec(b->w, "ROLLBACK"));
}

static void pg_txn_reset(store *st)
{
    pg_be(st)->npend = 0;
}

static const char *pg_errmsg(store *st)
{
    return pg_be(st)->err[0] ? pg_be(st)->err : "PostgreSQL error";
}

/* ---- writes ---------------------------------------------------------------------------- */

static int apply_open(store *st, struct item *it)
{
    struct pg_be *b = pg_be(st);
    if (!it->s[0]) {
        store_item_failed(st, it, "NOT NULL constraint failed: connections.socket_id");
        return 1;
    }
    char ts[24], hour[20];
    util_format_db_time(it->at_ms, ts);
    if (it->num[0]) { /* reopen: the row of a recovered socket; a new one if there is none */
        const char *u[] = {it->s[0], it->s[1], it->s[2], it->s[3], st->node_id};
        PGresult *r = wexec(b, P_CONN_REOPEN, 5, u);
        if (!r)
            return -1;
        bool updated = strcmp(PQcmdTuples(r), "0") != 0;
        PQclear(r);
        if (updated)
            return 0;
    }
    const char *v[] = {it->s[0], ts, it->s[1], it->s[2], it->s[3], st->node_id};
    PGresult *r = wexec(b, P_CONN_OPEN, 6, v);
    if (!r)
        return -1;
    bool inserted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!inserted) {
        store_item_failed(st, it, "UNIQUE constraint failed: connections.socket_id");
        return 1;
    }
    st->tot.connections++;
    hour_of(ts, 23, hour);
    return store_agg_add(&st->conn_agg, hour, "unknown", 7, 1);
}

static int apply_identify(store *st, struct item *it)
{
    struct pg_be *b = pg_be(st);
    const char *plat = it->s[2];
    bool have_old = false, old_null = true;
    char hour[20];
    size_t oldn = 0;
    PGresult *og = NULL;
    if (plat) {
        const char *v[] = {it->s[0]};
        og = wexec(b, P_CONN_GET, 1, v);
        if (!og)
            return -1;
        if (PQntuples(og) == 1) {
            have_old = hour_of(PQgetvalue(og, 0, 1), (size_t)PQgetlength(og, 0, 1), hour);
            old_null = PQgetisnull(og, 0, 0);
        }
    }
    const char *v[] = {it->s[0], it->s[1], it->s[2], it->s[3]};
    int r = wrun(b, P_CONN_IDENTIFY, 4, v);
    if (r < 0 || !have_old) {
        PQclear(og);
        return r;
    }
    const char *oldp = PQgetvalue(og, 0, 0);
    oldn = (size_t)PQgetlength(og, 0, 0);
    int ret = 0;
    if (!old_null && oldn == it->len[2] && memcmp(oldp, plat, oldn) == 0)
        goto out;
    if (!old_null && store_agg_add(&st->conn_agg, hour, oldp, oldn, -1) < 0)
        ret = -1;
    else
        ret = store_agg_add(&st->conn_agg, hour, plat, it->len[2], 1);
out:
    PQclear(og);
    return ret;
}

static int apply_transport(store *st, struct item *it)
{
    const char *v[] = {it->s[0], it->s[1]};
    return wrun(pg_be(st), P_CONN_TRANSPORT, 2, v);
}

static int apply_close(store *st, struct item *it)
{
    char ts[24], dur[24];
    util_format_db_time(it->at_ms, ts);
    snprintf(dur, sizeof dur, "%lld", (long long)it->num[0]);
    /* A negative duration means the caller does not know it: stored NULL, not counted. */
    const char *v[] = {it->s[0], ts, it->num[0] >= 0 ? dur : NULL};
    PGresult *r = wexec(pg_be(st), P_CONN_CLOSE, 3, v);
    if (!r)
        return -1;
    bool changed = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (changed && it->num[0] >= 0)
        store_tot_close(&st->tot, it->num[0]);
    return 0;
}

/* Messages wait for flush (see the top of the file). */
static int apply_message(store *st, struct item *it)
{
    struct pg_be *b = pg_be(st);
    if (!it->s[0] || !it->s[1]) {
        store_item_failed(st, it,
                          it->s[0] ? "NOT NULL constraint failed: messages.sender"
                                   : "NOT NULL constraint failed: messages.socket_id");
        return 1;
    }
    if (b->npend == b->cappend) {
        size_t cap = b->cappend ? b->cappend * 2 : 1024;
        struct item **p = realloc(b->pend, cap * sizeof *p);
        if (!p) {
            set_be_err(b, "out of memory", NULL);
            return -1;
        }
        b->pend = p;
        b->cappend = cap;
    }
    b->pend[b->npend++] = it;
    return 0;
}

static int apply_session(store *st, struct item *it)
{
    if (it->num[2] == 2) {
        char before[24], now[24];
        snprintf(before, sizeof before, "%lld", (long long)it->num[0]);
        snprintf(now, sizeof now, "%lld", (long long)it->num[1]);
        const char *v[] = {before, now};
        return wrun(pg_be(st), P_SESS_EXPIRE, 2, v);
    }
    if (it->num[2]) {
        const char *v[] = {it->s[0], st->node_id};
        return wrun(pg_be(st), P_SESS_DEL, 2, v);
    }
    char left[24], since[24];
    snprintf(left, sizeof left, "%lld", (long long)it->num[0]);
    snprintf(since, sizeof since, "%lld", (long long)it->num[1]);
    const char *v[] = {it->s[0], st->node_id, it->s[1], it->s[2], it->s[3], it->s[4],
                       it->num[0] >= 0 ? left : NULL, since};
    return wrun(pg_be(st), P_SESS_SAVE, 8, v);
}

/* At open: as sqlite.c's load_sessions, for this node's rows. */
static int load_sessions(store *st, char **err)
{
    struct pg_be *b = pg_be(st);
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)util_wall_ms());
    const char *v[] = {now, st->node_id};
    PGresult *r = PQexecParams(b->w, "UPDATE recovery_sessions SET left_at_ms = $1"
                                     " WHERE left_at_ms IS NULL AND node_id = $2",
                               2, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(r);
    r = PQexecParams(b->w, "SELECT pid, socket_id, rooms, user_id, platform, left_at_ms, since_id"
                           " FROM recovery_sessions WHERE node_id = $1 ORDER BY left_at_ms",
                     1, NULL, v + 1, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    struct item **tail = &st->sessions;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *s[5];
        for (int k = 0; k < 5; k++)
            s[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
        struct item *it = store_session_item(s, strtoll(PQgetvalue(r, i, 5), NULL, 10),
                                             strtoll(PQgetvalue(r, i, 6), NULL, 10));
        if (!it)
            goto fail;
        *tail = it;
        tail = &it->next;
    }
    PQclear(r);
    r = PQexec(b->w, "SELECT coalesce(max(id), 0) FROM messages");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        goto fail;
    st->sessions_newest = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
fail:
    set_err(err, "cannot load the recovery sessions", PQerrorMessage(b->w));
    PQclear(r);
    return -1;
}

static int pg_apply(store *st, struct item *it)
{
    switch (it->kind) {
    case K_SESSION:
        return apply_session(st, it);
    case K_OPEN:
        return apply_open(st, it);
    case K_IDENTIFY:
        return apply_identify(st, it);
    case K_TRANSPORT:
        return apply_transport(st, it);
    case K_CLOSE:
        return apply_close(st, it);
    case K_MESSAGE:
        return apply_message(st, it);
    default:
        return 1;
    }
}

/* n ids from the sequence, in order, into b->ids. */
static int take_ids(struct pg_be *b, size_t n)
{
    if (n > b->capids) {
        int64_t *p = realloc(b->ids, n * sizeof *p);
        if (!p) {
            set_be_err(b, "out of memory", NULL);
            return -1;
        }
        b->ids = p;
        b->capids = n;
    }
    char nbuf[24];
    snprintf(nbuf, sizeof nbuf, "%zu", n);
    const char *v[] = {nbuf};
    PGresult *r = wexec(b, P_IDS, 1, v);
    if (!r)
        return -1;
    if ((size_t)PQntuples(r) != n) {
        PQclear(r);
        set_be_err(b, "the id sequence returned too few rows", NULL);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        b->ids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* COPY's text format: backslash, tab, newline and carriage return escaped; NULL is \N. */
static int copy_field(buf *o, const char *p, size_t n, bool last)
{
    if (!p) {
        if (buf_append(o, "\\N", 2) < 0)
            return -1;
    } else {
        size_t run = 0;
        for (size_t i = 0; i < n; i++) {
            char c = p[i], e = 0;
            switch (c) {
            case '\\': e = '\\'; break;
            case '\t': e = 't'; break;
            case '\n': e = 'n'; break;
            case '\r': e = 'r'; break;
            default: continue;
            }
            if (buf_append(o, p + run, i - run) < 0 || buf_putc(o, '\\') < 0 || buf_putc(o, e) < 0)
                return -1;
            run = i + 1;
        }
        if (buf_append(o, p + run, n - run) < 0)
            return -1;
    }
    return buf_putc(o, last ? '\n' : '\t');
}

static int copy_messages(struct pg_be *b, size_t n)
{
    buf *o = &b->copy;
    buf_reset(o);
    for (size_t i = 0; i < n; i++) {
        struct item *it = b->pend[i];
        char id[24], ts[24];
        int idn = snprintf(id, sizeof id, "%lld", (long long)b->ids[i]);
        util_format_db_time(it->at_ms, ts);
        const char *plat = it->s[3] ? it->s[3] : "web";
        size_t plen = it->s[3] ? it->len[3] : 3;
        if (copy_field(o, id, (size_t)idn, false) < 0 ||
            copy_field(o, it->s[0], it->len[0], false) < 0 ||
            copy_field(o, it->s[1], it->len[1], false) < 0 ||
            copy_field(o, it->s[2], it->len[2], false) < 0 ||
            copy_field(o, plat, plen, false) < 0 || copy_field(o, ts, 23, false) < 0 ||
            copy_field(o, it->s[4], it->len[4], true) < 0) {
            set_be_err(b, "out of memory", NULL);
            return -1;
        }
    }
    PGresult *r = PQexec(b->w, "COPY messages(id, socket_id, sender, message_text, platform,"
                               " created_at, room) FROM STDIN");
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (!ok) {
        set_be_err(b, "PostgreSQL COPY", PQerrorMessage(b->w));
        return -1;
    }
    ok = PQputCopyData(b->w, o->data, (int)o->len) == 1 && PQputCopyEnd(b->w, NULL) == 1;
    while ((r = PQgetResult(b->w)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            ok = false;
        PQclear(r);
    }
    if (!ok)
        set_be_err(b, "PostgreSQL COPY", PQerrorMessage(b->w));
    return ok ? 0 : -1;
}

/* INSERT ... VALUES (...), (...): up to PG_ROWS_PER_INSERT rows a statement. */
static int insert_messages(struct pg_be *b, size_t n)
{
    enum { COLS = 7 };
    if (b->capvals < (size_t)PG_ROWS_PER_INSERT * COLS) {
        const char **v = realloc(b->vals, (size_t)PG_ROWS_PER_INSERT * COLS * sizeof *v);
        if (!v)
            goto oom;
        b->vals = v;
        b->capvals = (size_t)PG_ROWS_PER_INSERT * COLS;
    }
    /* ids and times live in one text block behind the statement's text. */
    char (*tx)[2][24] = malloc((size_t)PG_ROWS_PER_INSERT * sizeof *tx);
    if (!tx)
        goto oom;
    for (size_t start = 0; start < n; start += PG_ROWS_PER_INSERT) {
        size_t m = n - start < PG_ROWS_PER_INSERT ? n - start : PG_ROWS_PER_INSERT;
        buf *o = &b->copy;
        buf_reset(o);
        if (buf_puts(o, "INSERT INTO messages(id, socket_id, sender, message_text, platform,"
                        " created_at, room) VALUES") < 0)
            goto oom_tx;
        for (size_t i = 0; i < m; i++) {
            size_t k = i * COLS;
            if (buf_printf(o, "%s($%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu)", i ? "," : "", k + 1,
                           k + 2, k + 3, k + 4, k + 5, k + 6, k + 7) < 0)
                goto oom_tx;
            struct item *it = b->pend[start + i];
            snprintf(tx[i][0], 24, "%lld", (long long)b->ids[start + i]);
            util_format_db_time(it->at_ms, tx[i][1]);
            const char **v = b->vals + k;
            v[0] = tx[i][0];
            v[1] = it->s[0];
            v[2] = it->s[1];
            v[3] = it->s[2];
            v[4] = it->s[3] ? it->s[3] : "web";
            v[5] = tx[i][1];
            v[6] = it->s[4];
        }
        if (buf_terminate(o) < 0)
            goto oom_tx;
        PGresult *r = PQexecParams(b->w, o->data, (int)(m * COLS), NULL, b->vals, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            set_be_err(b, "PostgreSQL", PQerrorMessage(b->w));
        PQclear(r);
        if (!ok) {
            free(tx);
            return -1;
        }
    }
    free(tx);
    return 0;
oom_tx:
    free(tx);
oom:
    set_be_err(b, "out of memory", NULL);
    return -1;
}

static int flush_messages(store *st)
{
    struct pg_be *b = pg_be(st);
    size_t n = b->npend;
    if (n == 0)
        return 0;
    if (take_ids(b, n) < 0 || (b->use_copy ? copy_messages(b, n) : insert_messages(b, n)) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct item *it = b->pend[i];
        const char *plat = it->s[3] ? it->s[3] : "web";
        size_t plen = it->s[3] ? it->len[3] : 3;
        char ts[24], hour[20];
        util_format_db_time(it->at_ms, ts);
        hour_of(ts, 23, hour);
        it->id = b->ids[i];
        it->ok = true; /* completed as such only if COMMIT succeeds (writer.c) */
        st->tot.messages++;
        if (store_agg_add(&st->msg_agg, hour, plat, plen, 1) < 0) {
            set_be_err(b, "out of memory", NULL);
            return -1;
        }
    }
    b->npend = 0;
    return 0;
}

/* ---- counters ------------------------------------------------------------------------ */

struct keyref {
    const struct agg_entry *e;
    const char *plat;
};

static int cmp_key(const void *x, const void *y)
{
    const struct keyref *a = x, *b = y;
    int c = memcmp(a->e->hour, b->e->hour, 19);
    if (c)
        return c;
    size_t n = a->e->plen < b->e->plen ? a->e->plen : b->e->plen;
    c = n ? memcmp(a->plat, b->plat, n) : 0;
    return c ? c : (a->e->plen > b->e->plen) - (a->e->plen < b->e->plen);
}

/* One upsert per key, in sorted key order (so concurrent nodes lock in the same order). */
static int flush_agg(struct pg_be *b, struct agg *a, enum pstmt add, enum pstmt prune)
{
    if (a->n == 0)
        return 0;
    struct keyref *order = malloc(a->n * sizeof *order);
    if (!order) {
        set_be_err(b, "out of memory", NULL);
        return -1;
    }
    for (size_t i = 0; i < a->n; i++)
        order[i] = (struct keyref){&a->e[i], store_agg_plat(a, &a->e[i])};
    qsort(order, a->n, sizeof *order, cmp_key);
    int ret = 0;
    for (size_t i = 0; i < a->n && ret == 0; i++) {
        const struct agg_entry *e = order[i].e;
        if (e->delta == 0)
            continue;
        char hour[20], delta[24], *plat = malloc(e->plen + 1);
        if (!plat) {
            set_be_err(b, "out of memory", NULL);
            ret = -1;
            break;
        }
        memcpy(plat, order[i].plat, e->plen);
        plat[e->plen] = '\0';
        memcpy(hour, e->hour, 19);
        hour[19] = '\0';
        snprintf(delta, sizeof delta, "%lld", (long long)e->delta);
        const char *v[] = {hour, plat, delta};
        ret = wrun(b, add, 3, v);
        if (ret == 0 && e->delta < 0)
            ret = wrun(b, prune, 2, v);
        free(plat);
    }
    free(order);
    return ret;
}

static int flush_total(struct pg_be *b, enum pstmt p, const char *name, int64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)v);
    const char *vals[] = {name, num};
    return wrun(b, p, 2, vals);
}

static int pg_flush(store *st)
{
    struct pg_be *b = pg_be(st);
    struct totals_acc *t = &st->tot;
    if (flush_messages(st) < 0 || flush_agg(b, &st->msg_agg, P_MC_ADD, P_MC_PRUNE) < 0 ||
        flush_agg(b, &st->conn_agg, P_CC_ADD, P_CC_PRUNE) < 0)
        return -1;
    /* totals in name order, the same on every node */
    if ((t->connections && flush_total(b, P_TOT_ADD, "connections_total", t->connections) < 0) ||
        (t->messages && flush_total(b, P_TOT_ADD, "messages_total", t->messages) < 0) ||
        (t->session_max > 0 && flush_total(b, P_TOT_MAX, "session_ms_max", t->session_max) < 0) ||
        (t->session_ms && flush_total(b, P_TOT_ADD, "session_ms_total", t->session_ms) < 0) ||
        (t->sessions && flush_total(b, P_TOT_ADD, "sessions_closed", t->sessions) < 0))
        return -1;
    if (st->status_set) {
        char now[24], n[3][24];
        util_format_db_time(util_wall_ms(), now);
        for (int i = 0; i < 3; i++)
            snprintf(n[i], sizeof n[i], "%lld", (long long)st->status_num[i]);
        const char *v[] = {now, n[0], n[1], n[2], st->node_id,
                           st->status_laravel[0] ? st->status_laravel : NULL};
        if (wrun(b, P_STATUS, 6, v) < 0)
            return -1;
    }
    return 0;
}

/* ---- retention, start and stop ----------------------------------------------------------- */

static int pg_retention(store *st, const char *cutoff, int limit, int64_t *deleted)
{
    struct pg_be *b = pg_be(st);
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *v[] = {cutoff, lim};
    PGresult *r = wexec(b, P_RETENTION, 2, v);
    *deleted = 0;
    if (!r)
        return -1;
    int n = PQntuples(r);
    *deleted = n;
    for (int i = 0; i < n; i++) {
        char hour[20];
        if (PQgetisnull(r, i, 1) ||
            !hour_of(PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), hour))
            continue;
        if (store_agg_add(&st->msg_agg, hour, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
                          -1) < 0) {
            PQclear(r);
            set_be_err(b, "out of memory", NULL);
            return -1;
        }
    }
    PQclear(r);
    return 0;
}

static int pg_close_active(store *st, bool at_stop)
{
    struct pg_be *b = pg_be(st);
    char when[64];
    bool have = true;
    if (at_stop) {
        util_format_db_time(st->stop_ms, when);
    } else {
        /* This node's last heartbeat (locked: two processes claiming one node id wait). */
        const char *v[] = {st->node_id};
        PGresult *r = wexec(b, P_HEARTBEAT, 1, v);
        if (!r)
            return -1;
        have = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
        if (have)
            snprintf(when, sizeof when, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    const char *v[] = {have ? when : NULL, at_stop ? "true" : "false", st->node_id};
    PGresult *r = wexec(b, P_CLOSE_ACTIVE, 3, v);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 0))
            store_tot_close(&st->tot, strtoll(PQgetvalue(r, i, 0), NULL, 10));
    PQclear(r);
    return 0;
}

static int pg_mark_started(store *st)
{
    char now[24], pid[16];
    util_format_db_time(util_wall_ms(), now);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    const char *v[] = {st->node_id, pid, PACKAGE_VERSION, now};
    return wrun(pg_be(st), P_STARTED, 4, v);
}

static int pg_mark_stopped(store *st)
{
    char now[24];
    util_format_db_time(st->stop_ms, now);
    const char *v[] = {now, st->node_id};
    return wrun(pg_be(st), P_STOPPED, 2, v);
}

/* ---- history pages (reader thread) ------------------------------------------------------ */

static int json_val(buf *o, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return buf_puts(o, "null");
    if (buf_putc(o, '"') < 0 ||
        buf_json_escape(o, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col)) < 0)
        return -1;
    return buf_putc(o, '"');
}

static PGresult *run_page(store *st, struct item *it, const char *err_out[1])
{
    struct pg_be *b = pg_be(st);
    char errbuf[512];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!b->r || PQstatus(b->r) != CONNECTION_OK) {
            if (b->r)
                PQfinish(b->r);
            b->r_prepared = false;
            b->r = pg_connect(b->conninfo, errbuf, sizeof errbuf);
            if (!b->r) {
                *err_out = "the database is unavailable";
                return NULL;
            }
        }
        if (!b->r_prepared) {
            PGresult *p1 = PQprepare(b->r, "qroom", q_room_sql, 0, NULL);
            PGresult *p2 = PQprepare(b->r, "qnull", q_null_sql, 0, NULL);
            bool ok = PQresultStatus(p1) == PGRES_COMMAND_OK && PQresultStatus(p2) == PGRES_COMMAND_OK;
            if (!ok)
                log_error(RLOG_WARN, "History statements failed", PQerrorMessage(b->r), NULL);
            PQclear(p1);
            PQclear(p2);
            if (!ok)
                continue;
            b->r_prepared = true;
        }
        char before[24], limit[24];
        snprintf(before, sizeof before, "%lld",
                 (long long)(it->num[1] > 0 ? it->num[1] : INT64_MAX));
        snprintf(limit, sizeof limit, "%lld", (long long)it->num[0]);
        const char *v[] = {it->s[0], before, limit};
        PGresult *r = PQexecPrepared(b->r, it->s[0] ? "qroom" : "qnull", 3, v, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        log_error(RLOG_WARN, "History page failed", PQerrorMessage(b->r), NULL);
        PQclear(r);
        /* A connection PostgreSQL dropped (a restart): one more try on a new one. */
        if (PQstatus(b->r) == CONNECTION_OK) {
            *err_out = "history could not be read";
            return NULL;
        }
    }
    *err_out = "the database is unavailable";
    return NULL;
}

/* K_CLAIM: the session's row, taken out in one statement on the reader's connection
 * (autocommit), so two nodes claiming one pid cannot both get it. */
static void pg_claim(store *st, struct item *it)
{
    struct pg_be *b = pg_be(st);
    buf *o = &it->out;
    char errbuf[512];
    PGresult *r = NULL;
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        if (!b->r || PQstatus(b->r) != CONNECTION_OK) {
            if (b->r)
                PQfinish(b->r);
            b->r_prepared = false;
            if (!(b->r = pg_connect(b->conninfo, errbuf, sizeof errbuf)))
                break;
        }
        char now[24];
        snprintf(now, sizeof now, "%lld", (long long)it->at_ms);
        const char *v[] = {it->s[0], now};
        /* A row still "connected" ($2: now) was left now if its node is alive (it will be
         * asked to close that socket), else at the node's last heartbeat: a node that
         * stopped, or has been silent for 15 s (three heartbeats), left it then. */
        r = PQexecParams(b->r,
                         "DELETE FROM recovery_sessions r WHERE r.pid = $1 RETURNING r.node_id,"
                         " r.socket_id, r.rooms, r.user_id, r.platform, coalesce(r.left_at_ms,"
                         " (SELECT CASE WHEN d.stopped_at IS NULL AND h.ms > $2::bigint - 15000"
                         " THEN $2::bigint ELSE h.ms END FROM daemon_status d, LATERAL (SELECT"
                         " (extract(epoch FROM d.updated_at::timestamptz) * 1000)::bigint AS ms) h"
                         " WHERE d.node_id = r.node_id)), r.since_id",
                         2, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            log_error(RLOG_WARN, "Recovery claim failed", PQerrorMessage(b->r), NULL);
            PQclear(r);
            r = NULL;
            if (PQstatus(b->r) == CONNECTION_OK)
                break;
        }
    }
    if (!r) {
        it->err = dup_str("the database is unavailable");
        return;
    }
    int rc = 0;
    if (PQntuples(r) != 1) {
        rc = buf_puts(o, "null");
    } else {
        static const char *const keys[] = {"{\"node\":", ",\"socketId\":", ",\"rooms\":",
                                           ",\"userId\":", ",\"platform\":"};
        for (int k = 0; k < 5 && rc == 0; k++)
            rc = buf_puts(o, keys[k]) < 0 || json_val(o, r, 0, k) < 0 ? -1 : 0;
        if (rc == 0)
            rc = buf_printf(o, ",\"leftMs\":%s,\"since\":%s}",
                            PQgetisnull(r, 0, 5) ? "null" : PQgetvalue(r, 0, 5),
                            PQgetisnull(r, 0, 6) ? "0" : PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    if (rc < 0 || buf_terminate(o) < 0) {
        buf_free(o);
        it->err = dup_str("out of memory");
        return;
    }
    it->ok = true;
}

static void pg_query(store *st, struct item *it)
{
    buf *o = &it->out;
    if (it->kind == K_CLAIM) {
        pg_claim(st, it);
        return;
    }
    if (buf_putc(o, '[') < 0)
        goto oom;
    if (it->num[0] > 0) {
        const char *error = NULL;
        PGresult *r = run_page(st, it, &error);
        if (!r) {
            buf_free(o);
            it->err = dup_str(error);
            return;
        }
        static const char *const keys[] = {",\"socketId\":", ",\"sender\":", ",\"text\":",
                                           ",\"platform\":", ",\"room\":", ",\"createdAt\":"};
        for (int i = 0; i < PQntuples(r); i++) {
            if ((i && buf_putc(o, ',') < 0) ||
                buf_printf(o, "{\"id\":%s", PQgetvalue(r, i, 0)) < 0) {
                PQclear(r);
                goto oom;
            }
            for (int k = 0; k < 6; k++)
                if (buf_puts(o, keys[k]) < 0 || json_val(o, r, i, k + 1) < 0) {
                    PQclear(r);
                    goto oom;
                }
            if (buf_putc(o, '}') < 0) {
                PQclear(r);
                goto oom;
            }
        }
        PQclear(r);
    }
    if (buf_putc(o, ']') < 0 || buf_terminate(o) < 0)
        goto oom;
    it->ok = true;
    return;
oom:
    buf_free(o);
    it->err = dup_str("out of memory");
}

/* ---- open and close --------------------------------------------------------------------- */

static int pg_open(store *st, const struct store_config *cfg, char **err)
{
    struct pg_be *b = calloc(1, sizeof *b);
    if (!b || !(b->conninfo = dup_str(cfg->path))) {
        free(b);
        set_err(err, "out of memory", NULL);
        return -1;
    }
    st->bs = b;
    const char *mode = getenv("RTD_PG_INSERT");
    b->use_copy = !(mode && strcmp(mode, "values") == 0);
    char e[512];
    if (!(b->w = pg_connect(b->conninfo, e, sizeof e))) {
        set_err(err, e, NULL);
        return -1;
    }
    if (migrate_pg_apply(b->w, err) < 0)
        return -1;
    if (cfg->sync_full && wsimple(b, "SET synchronous_commit = on") < 0) {
        set_err(err, "cannot set synchronous_commit", b->err);
        return -1;
    }
    if (store_startup_txn(st, err) < 0 || load_sessions(st, err) < 0)
        return -1;
    if (!(b->r = pg_connect(b->conninfo, e, sizeof e))) {
        set_err(err, e, NULL);
        return -1;
    }
    return 0;
}

static void pg_free(store *st)
{
    struct pg_be *b = pg_be(st);
    if (!b)
        return;
    if (b->w)
        PQfinish(b->w);
    if (b->r)
        PQfinish(b->r);
    free(b->conninfo);
    free(b->pend);
    free(b->vals);
    free(b->ids);
    buf_free(&b->copy);
    free(b);
    st->bs = NULL;
}

const struct store_backend store_pg_backend = {
    .name = "postgresql",
    .open = pg_open,
    .ready = pg_ready,
    .begin = pg_begin,
    .apply = pg_apply,
    .flush = pg_flush,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .txn_reset = pg_txn_reset,
    .errmsg = pg_errmsg,
    .retention = pg_retention,
    .close_active = pg_close_active,
    .mark_started = pg_mark_started,
    .mark_stopped = pg_mark_stopped,
    .idle = NULL,
    .query = pg_query,
    .helper_main = NULL,
    .free = pg_free,
};
