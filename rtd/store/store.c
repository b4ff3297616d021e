/* store.c: rtd's persistence (see store.h): a group-commit writer thread, a reader thread for
 * history pages, and completions handed back to the loop thread through its wake hook.
 *
 * Shape, and why:
 *  - The loop thread never blocks on the disk. Every write becomes one heap item (the strings
 *    copied inline behind the header, so one malloc per write) appended to a mutex-protected
 *    singly linked list. The lock is held only to link or unlink items, never around SQLite.
 *  - The writer takes the whole list at once and runs it in as few transactions as batch_max
 *    allows. Under load the list grows while a transaction commits, so batches grow by
 *    themselves and the per-commit cost (WAL append, fsync with --sync full) is shared by
 *    thousands of rows: that is what makes ~100k acknowledged messages per second possible.
 *  - The dashboard's counters (message_counts, connection_counts, totals) are summed in C
 *    over a transaction (a small hash keyed by hour and platform) and written as one upsert
 *    per distinct key just before COMMIT, so they always match the rows they count.
 *  - A message's item doubles as its completion: after the commit the writer moves it, with
 *    its id or error, onto the completion list and wakes the loop, whose wake hook runs the
 *    callbacks and frees the items. Nothing but message and query items crosses back.
 *  - Queue depth counts writes queued or in the transaction being written, so max_queue
 *    bounds the memory held by writes, whichever thread holds them.
 *  - Errors: a constraint failure (a duplicate socket_id, a NULL sender) fails only its own
 *    write; anything else (disk full, I/O error, lock timeout) rolls back the transaction and
 *    every message in it completes with ok false.
 *  - History reads use their own read-only connection on their own thread: in WAL mode they
 *    see the last commit and neither wait for nor delay the writer.
 *  - Retention deletes old messages 1000 at a time, oldest first, between write batches, so a
 *    large backlog never holds the write lock for long. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/migrate.h"
#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store.h"

const double store_commit_buckets_ms[8] = {0.5, 1, 2, 5, 10, 25, 50, 100};

enum {
    DEFAULT_MAX_QUEUE = 100000,
    DEFAULT_BATCH_MAX = 10000,
    BUSY_TIMEOUT_MS = 5000,
    RETENTION_CHUNK = 1000,
    RETENTION_PERIOD_MS = 60000,
    ITEM_FAIL_LOG_MS = 10000,
};

enum item_kind { K_OPEN, K_IDENTIFY, K_TRANSPORT, K_CLOSE, K_MESSAGE, K_STATUS, K_QUERY };

/* String slots per kind:
 *   K_OPEN      socket_id, transport, remote_addr, user_agent
 *   K_IDENTIFY  socket_id, user_id, platform, app_version
 *   K_TRANSPORT socket_id, transport
 *   K_CLOSE     socket_id
 *   K_MESSAGE   socket_id, sender, text, platform, room
 *   K_QUERY     room */
#define NSTR 5

struct item {
    struct item *next;
    enum item_kind kind;
    bool ok; /* result: message stored / query answered */
    int64_t at_ms;
    int64_t num[3]; /* close: duration; status: counters; query: limit, before */
    int64_t id;     /* result: the message's row id */
    char *err;      /* result: malloc'ed error text, or NULL */
    store_message_done_fn *msg_done;
    store_query_done_fn *query_done;
    void *ud;
    buf out;             /* result: the query's JSON page */
    const char *s[NSTR]; /* NULL, or NUL-terminated inside data */
    size_t len[NSTR];
    char data[];
};

/* Per-transaction sums of counter changes keyed by (hour, platform). Entries are kept in
 * insertion order; slot[] is an open-addressing index into them (0: empty). Platform text is
 * copied into strs (by offset) only when a new key appears, not per row. */
struct agg_entry {
    char hour[20]; /* 'YYYY-MM-DD HH:00:00' */
    uint32_t hash;
    uint32_t plen;
    size_t poff;
    int64_t delta;
};

struct agg {
    struct agg_entry *e;
    size_t n, cap;
    uint32_t *slot;
    size_t nslot; /* power of two, or 0 */
    size_t last;  /* the entry hit last: consecutive rows usually share their key */
    buf strs;
};

struct totals_acc {
    int64_t connections, messages, sessions, session_ms, session_max;
};

/* The writer's prepared statements, by name and as an array (to clear or finalize all). */
#define WSTMT_COUNT 19
union wstmts {
    struct {
        sqlite3_stmt *begin, *commit, *rollback;
        sqlite3_stmt *conn_open, *conn_get, *conn_identify, *conn_transport, *conn_close;
        sqlite3_stmt *msg_insert, *status;
        sqlite3_stmt *mc_add, *mc_prune, *cc_add, *cc_prune, *tot_add, *tot_max;
        sqlite3_stmt *retention, *close_active, *stopped;
    };
    sqlite3_stmt *all[WSTMT_COUNT];
};
_Static_assert(offsetof(union wstmts, stopped) == (WSTMT_COUNT - 1) * sizeof(sqlite3_stmt *),
               "WSTMT_COUNT must match the named statements");

struct store {
    loop *l;
    size_t max_queue;
    unsigned batch_max;
    unsigned retention_days;

    /* Write queue (loop thread pushes, writer takes). */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    struct item *qhead, *qtail;
    size_t depth; /* queued + in the transaction being written */
    bool writer_waiting;
    bool wstop;

    /* Read queue (loop thread pushes, reader takes). */
    pthread_mutex_t rmu;
    pthread_cond_t rcond;
    struct item *rhead, *rtail;
    size_t rdepth;
    bool rstop;

    /* Completions (writer and reader push, the loop's wake hook takes). */
    pthread_mutex_t dmu;
    struct item *dhead, *dtail;

    /* Figures for store_get_stats, written by the writer once per transaction. */
    pthread_mutex_t smu;
    struct store_stats stats;

    /* Writer-thread state. */
    sqlite3 *wdb;
    union wstmts ws;
    struct agg msg_agg, conn_agg;
    struct totals_acc tot;
    bool status_set;
    int64_t status_num[3];
    buf scratch;
    bool failing; /* the last transaction failed (logged once per episode) */
    uint64_t failed_txns;
    uint64_t item_fail_log_ns;
    uint64_t item_fails_unlogged;
    bool ret_active;      /* a retention pass is under way */
    uint64_t ret_next_ns; /* monotonic time of the next pass */
    bool trim_pending;    /* writes since memory was last given back */
    uint64_t last_commit_ns; /* when the writer last finished a batch */
    size_t last_batch;       /* its writes (counted up to COALESCE_ENOUGH) */

    /* Reader-thread state. */
    sqlite3 *rdb;
    sqlite3_stmt *q_room, *q_null;

    /* Checkpointer thread: its own connection copies the WAL back into the database, so the
     * writer never stalls on a checkpoint (nor on its fsync). */
    sqlite3 *cdb;
    pthread_mutex_t cmu;
    pthread_cond_t ccond;
    bool cwanted, cstop;
    /* The writer pause (under cmu): the checkpointer sets cpause to finish a pass while no
     * transaction runs; the writer sets cwriting around each batch and waits on cpcond
     * while cpause is set. */
    pthread_cond_t cpcond;
    bool cpause, cwriting;
    pthread_t checkpointer;
    bool checkpointer_started;

    pthread_t writer, reader;
    bool writer_started, reader_started;
    bool sync_inited;
};

/* ---- small helpers ------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err)
        return;
    size_t n = strlen(what) + (detail ? strlen(detail) + 2 : 0) + 1;
    *err = malloc(n);
    if (*err)
        snprintf(*err, n, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Logs msg with {"error":"...", <extra>} where extra is a JSON member list or NULL. */
static void log_error(enum rlog_level level, const char *msg, const char *error, const char *extra)
{
    if (!rlog_enabled(level))
        return;
    buf b = BUF_INIT;
    if (buf_puts(&b, "{\"error\":\"") == 0 && buf_json_escape(&b, error, strlen(error)) == 0 &&
        buf_putc(&b, '"') == 0 && (!extra || buf_printf(&b, ",%s", extra) == 0) &&
        buf_putc(&b, '}') == 0 && buf_terminate(&b) == 0)
        rlog(level, msg, b.data);
    else
        rlog(level, msg, NULL);
    buf_free(&b);
}

/* 'YYYY-MM-DD HH:00:00' from a database time text, or false if it is too short to have one. */
static bool hour_of(const char *t, size_t n, char hour[20])
{
    if (!t || n < 13)
        return false;
    memcpy(hour, t, 13);
    memcpy(hour + 13, ":00:00", 7);
    return true;
}

static int bind_str(sqlite3_stmt *s, int idx, const char *p, size_t n)
{
    /* SQLITE_STATIC: the item outlives the statement's use of the text; the bindings are
     * cleared at the end of every transaction. */
    if (!p)
        return sqlite3_bind_null(s, idx);
    return sqlite3_bind_text64(s, idx, p, n, SQLITE_STATIC, SQLITE_UTF8);
}

static int bind_cstr(sqlite3_stmt *s, int idx, const char *p)
{
    return bind_str(s, idx, p, p ? strlen(p) : 0);
}

/* Steps a statement that returns no rows and resets it. Returns the step's result code. */
static int run_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc;
}

/* ---- counters ------------------------------------------------------------------------- */

static uint32_t agg_hash(const char *hour, const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < 19; i++)
        h = (h ^ (unsigned char)hour[i]) * 16777619u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* An entry's platform text (strs.data is NULL while only empty platforms were added). */
static const char *agg_plat(const struct agg *a, const struct agg_entry *e)
{
    return e->plen ? a->strs.data + e->poff : "";
}

static bool agg_eq(const struct agg *a, const struct agg_entry *e, const char *hour, const char *p,
                   size_t n)
{
    return e->plen == n && memcmp(e->hour, hour, 19) == 0 &&
           (n == 0 || memcmp(agg_plat(a, e), p, n) == 0);
}

static int agg_rehash(struct agg *a, size_t nslot)
{
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = a->e[i].hash & (nslot - 1);
        while (slot[j])
            j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(a->slot);
    a->slot = slot;
    a->nslot = nslot;
    return 0;
}

static int agg_add(struct agg *a, const char hour[20], const char *p, size_t n, int64_t delta)
{
    if (n > UINT32_MAX)
        return -1;
    if (a->n > 0 && agg_eq(a, &a->e[a->last], hour, p, n)) {
        a->e[a->last].delta += delta;
        return 0;
    }
    uint32_t h = agg_hash(hour, p, n);
    if ((a->n + 1) * 2 > a->nslot && agg_rehash(a, a->nslot ? a->nslot * 2 : 64) < 0)
        return -1;
    size_t j = h & (a->nslot - 1);
    while (a->slot[j]) {
        struct agg_entry *e = &a->e[a->slot[j] - 1];
        if (e->hash == h && agg_eq(a, e, hour, p, n)) {
            e->delta += delta;
            a->last = a->slot[j] - 1;
            return 0;
        }
        j = (j + 1) & (a->nslot - 1);
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        struct agg_entry *e = realloc(a->e, cap * sizeof *e);
        if (!e)
            return -1;
        a->e = e;
        a->cap = cap;
    }
    size_t poff = a->strs.len;
    if (buf_append(&a->strs, p, n) < 0)
        return -1;
    struct agg_entry *e = &a->e[a->n];
    memcpy(e->hour, hour, 20);
    e->hash = h;
    e->plen = (uint32_t)n;
    e->poff = poff;
    e->delta = delta;
    a->slot[j] = (uint32_t)a->n + 1;
    a->last = a->n++;
    return 0;
}

static void agg_reset(struct agg *a)
{
    if (a->nslot > 4096) {
        /* A batch with unusually many distinct keys: give the memory back. */
        free(a->slot);
        free(a->e);
        buf_free(&a->strs);
        a->slot = NULL;
        a->e = NULL;
        a->nslot = a->cap = 0;
    } else if (a->n > 0) {
        memset(a->slot, 0, a->nslot * sizeof *a->slot);
    }
    a->n = 0;
    a->last = 0;
    buf_reset(&a->strs);
}

static void agg_free(struct agg *a)
{
    free(a->slot);
    free(a->e);
    buf_free(&a->strs);
}

static void tot_close(struct totals_acc *t, int64_t duration_ms)
{
    t->sessions++;
    t->session_ms += duration_ms;
    if (duration_ms > t->session_max)
        t->session_max = duration_ms;
}

/* Writes one counter table's sums: one upsert per key, then deletes rows a decrement brought
 * to zero, so the table holds exactly the groups a GROUP BY over the rows would give. */
static int flush_agg(struct agg *a, sqlite3_stmt *add, sqlite3_stmt *prune)
{
    for (size_t i = 0; i < a->n; i++) {
        struct agg_entry *e = &a->e[i];
        if (e->delta == 0)
            continue;
        const char *p = agg_plat(a, e);
        sqlite3_bind_text(add, 1, e->hour, 19, SQLITE_STATIC);
        sqlite3_bind_text64(add, 2, p, e->plen, SQLITE_STATIC, SQLITE_UTF8);
        sqlite3_bind_int64(add, 3, e->delta);
        if (run_stmt(add) != SQLITE_DONE)
            return -1;
        if (e->delta < 0) {
            sqlite3_bind_text(prune, 1, e->hour, 19, SQLITE_STATIC);
            sqlite3_bind_text64(prune, 2, p, e->plen, SQLITE_STATIC, SQLITE_UTF8);
            if (run_stmt(prune) != SQLITE_DONE)
                return -1;
        }
    }
    return 0;
}

static int flush_total(sqlite3_stmt *s, const char *name, int64_t v)
{
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, v);
    return run_stmt(s) == SQLITE_DONE ? 0 : -1;
}

/* Everything the transaction accumulated besides its rows: counters and the heartbeat. */
static int flush_counters(store *st)
{
    union wstmts *w = &st->ws;
    struct totals_acc *t = &st->tot;
    if (flush_agg(&st->msg_agg, w->mc_add, w->mc_prune) < 0 ||
        flush_agg(&st->conn_agg, w->cc_add, w->cc_prune) < 0)
        return -1;
    if ((t->connections && flush_total(w->tot_add, "connections_total", t->connections) < 0) ||
        (t->messages && flush_total(w->tot_add, "messages_total", t->messages) < 0) ||
        (t->sessions && flush_total(w->tot_add, "sessions_closed", t->sessions) < 0) ||
        (t->session_ms && flush_total(w->tot_add, "session_ms_total", t->session_ms) < 0) ||
        (t->session_max > 0 && flush_total(w->tot_max, "session_ms_max", t->session_max) < 0))
        return -1;
    if (st->status_set) {
        char now[24];
        util_format_db_time(util_wall_ms(), now);
        sqlite3_bind_text(w->status, 1, now, -1, SQLITE_STATIC);
        for (int i = 0; i < 3; i++)
            sqlite3_bind_int64(w->status, 2 + i, st->status_num[i]);
        if (run_stmt(w->status) != SQLITE_DONE)
            return -1;
    }
    return 0;
}

/* Forgets the transaction's sums and drops every binding (they point into items about to be
 * freed). */
static void txn_reset(store *st)
{
    agg_reset(&st->msg_agg);
    agg_reset(&st->conn_agg);
    memset(&st->tot, 0, sizeof st->tot);
    st->status_set = false;
    for (size_t i = 0; i < WSTMT_COUNT; i++)
        if (st->ws.all[i])
            sqlite3_clear_bindings(st->ws.all[i]);
}

/* ---- statements ------------------------------------------------------------------------ */

static int prepare(sqlite3 *db, sqlite3_stmt **out, const char *sql, char **err)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) == SQLITE_OK)
        return 0;
    set_err(err, "cannot prepare a statement", sqlite3_errmsg(db));
    return -1;
}

static int prepare_writer(store *st, char **err)
{
    union wstmts *w = &st->ws;
    sqlite3 *db = st->wdb;
    const struct {
        sqlite3_stmt **s;
        const char *sql;
    } list[] = {
        {&w->begin, "BEGIN IMMEDIATE"},
        {&w->commit, "COMMIT"},
        {&w->rollback, "ROLLBACK"},
        /* created_at too comes from the event's time, never from the DB clock. */
        {&w->conn_open,
         "INSERT INTO connections(socket_id, platform, status, connected_at, created_at,"
         " transport, remote_addr, user_agent)"
         " VALUES(?1, 'unknown', 'active', ?2, ?2, ?3, ?4, ?5)"},
        {&w->conn_get, "SELECT platform, connected_at FROM connections WHERE socket_id = ?1"},
        {&w->conn_identify,
         "UPDATE connections SET user_id = coalesce(?2, user_id),"
         " platform = coalesce(?3, platform), app_version = coalesce(?4, app_version)"
         " WHERE socket_id = ?1"},
        {&w->conn_transport, "UPDATE connections SET transport = ?2 WHERE socket_id = ?1"},
        /* Only an active row closes, so a repeated close never counts a session twice. */
        {&w->conn_close,
         "UPDATE connections SET disconnected_at = ?2, duration_ms = ?3, status = 'disconnected'"
         " WHERE socket_id = ?1 AND status = 'active'"},
        {&w->msg_insert,
         "INSERT INTO messages(socket_id, sender, message_text, platform, created_at, room)"
         " VALUES(?1, ?2, ?3, ?4, ?5, ?6)"},
        {&w->status, "UPDATE daemon_status SET updated_at = ?1, connections = ?2, messages_in = ?3,"
                     " messages_out = ?4 WHERE id = 1"},
        {&w->mc_add, "INSERT INTO message_counts(hour, platform, count) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(hour, platform) DO UPDATE SET count = count + excluded.count"},
        {&w->mc_prune,
         "DELETE FROM message_counts WHERE hour = ?1 AND platform = ?2 AND count <= 0"},
        {&w->cc_add, "INSERT INTO connection_counts(hour, platform, count) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(hour, platform) DO UPDATE SET count = count + excluded.count"},
        {&w->cc_prune,
         "DELETE FROM connection_counts WHERE hour = ?1 AND platform = ?2 AND count <= 0"},
        {&w->tot_add, "INSERT INTO totals(name, value) VALUES(?1, ?2)"
                      " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value"},
        {&w->tot_max, "INSERT INTO totals(name, value) VALUES(?1, ?2)"
                      " ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)"},
        /* Oldest first: the created_at index is ordered by (created_at, rowid), so this reads
         * only the rows it deletes, however many old or new rows there are. */
        {&w->retention,
         "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE created_at < ?1"
         " ORDER BY created_at, id LIMIT ?2) RETURNING created_at, platform"},
        /* Rows still active at shutdown (?1 now, ?2 1) or left active by a crash (?1 the last
         * heartbeat or NULL when there is none, ?2 0). A crashed session's end is only known
         * to be after its last heartbeat, so one that started after it gets no duration (and
         * disconnected_at = connected_at) rather than a made-up zero. */
        {&w->close_active,
         "UPDATE connections SET status = 'disconnected',"
         " disconnected_at = CASE WHEN ?1 IS NOT NULL AND (?2 OR ?1 > connected_at)"
         "  THEN ?1 ELSE connected_at END,"
         " duration_ms = CASE WHEN ?1 IS NOT NULL AND (?2 OR ?1 > connected_at) THEN"
         "  max(0, CAST(round((julianday(?1) - julianday(connected_at)) * 86400000.0)"
         "  AS INTEGER)) END"
         " WHERE status = 'active' RETURNING duration_ms"},
        {&w->stopped, "UPDATE daemon_status SET updated_at = ?1, stopped_at = ?1 WHERE id = 1"},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        if (prepare(db, list[i].s, list[i].sql, err) < 0)
            return -1;
    return 0;
}

static void finalize_writer(store *st)
{
    for (size_t i = 0; i < WSTMT_COUNT; i++) {
        sqlite3_finalize(st->ws.all[i]);
        st->ws.all[i] = NULL;
    }
}

/* Closes every active row (see close_active's SQL): when is a database time text; force is
 * true at shutdown (the session lasted until now), false after a crash (only a heartbeat
 * later than the connection bounds it). Adds the durations to the totals. */
static int close_active_rows(store *st, const char *when, bool force)
{
    sqlite3_stmt *s = st->ws.close_active;
    bind_cstr(s, 1, when);
    sqlite3_bind_int(s, 2, force);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
            tot_close(&st->tot, sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the writer ------------------------------------------------------------------------ */

/* A write failed on its own (constraint): log it, rate-limited, since a bad caller could
 * otherwise fill the log. */
static void item_failed(store *st, struct item *it, const char *error)
{
    if (it->kind == K_MESSAGE && !it->err)
        it->err = dup_str(error);
    uint64_t now = mono_ns();
    if (st->item_fail_log_ns && now - st->item_fail_log_ns < ITEM_FAIL_LOG_MS * 1000000ull) {
        st->item_fails_unlogged++;
        return;
    }
    char extra[64];
    snprintf(extra, sizeof extra, "\"suppressed\":%llu",
             (unsigned long long)st->item_fails_unlogged);
    log_error(RLOG_WARN, "Store write rejected", error, extra);
    st->item_fail_log_ns = now;
    st->item_fails_unlogged = 0;
}

/* Result of a statement run for an item: 0 done, 1 the item alone failed, -1 the
 * transaction is lost. */
static int item_result(store *st, struct item *it, int rc)
{
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return 0;
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        /* A trigger's RAISE(ROLLBACK) is a constraint error that ends the transaction. */
        if (sqlite3_get_autocommit(st->wdb))
            return -1;
        item_failed(st, it, sqlite3_errmsg(st->wdb));
        return 1;
    default:
        return -1;
    }
}

static int apply_open(store *st, struct item *it)
{
    sqlite3_stmt *s = st->ws.conn_open;
    char ts[24], hour[20];
    util_format_db_time(it->at_ms, ts);
    bind_str(s, 1, it->s[0], it->len[0]);
    sqlite3_bind_text(s, 2, ts, 23, SQLITE_STATIC);
    for (int i = 1; i <= 3; i++)
        bind_str(s, 2 + i, it->s[i], it->len[i]);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    if (r != 0)
        return r;
    st->tot.connections++;
    hour_of(ts, 23, hour);
    return agg_add(&st->conn_agg, hour, "unknown", 7, 1);
}

static int apply_identify(store *st, struct item *it)
{
    union wstmts *w = &st->ws;
    const char *plat = it->s[2];
    bool have_old = false, old_null = true;
    char hour[20];
    if (plat) {
        /* The old platform, to move the connection between connection_counts groups. */
        bind_str(w->conn_get, 1, it->s[0], it->len[0]);
        int rc = sqlite3_step(w->conn_get);
        if (rc == SQLITE_ROW) {
            const char *ct = (const char *)sqlite3_column_text(w->conn_get, 1);
            have_old = hour_of(ct, (size_t)sqlite3_column_bytes(w->conn_get, 1), hour);
            buf_reset(&st->scratch);
            if (sqlite3_column_type(w->conn_get, 0) != SQLITE_NULL) {
                old_null = false;
                if (buf_append(&st->scratch, sqlite3_column_text(w->conn_get, 0),
                               (size_t)sqlite3_column_bytes(w->conn_get, 0)) < 0) {
                    sqlite3_reset(w->conn_get);
                    return -1;
                }
            }
        }
        sqlite3_reset(w->conn_get);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return item_result(st, it, rc);
    }
    sqlite3_stmt *s = w->conn_identify;
    for (int i = 0; i < 4; i++)
        bind_str(s, 1 + i, it->s[i], it->len[i]);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    if (r != 0 || !have_old)
        return r;
    const char *old = st->scratch.len ? st->scratch.data : "";
    if (!old_null && st->scratch.len == it->len[2] && memcmp(old, plat, it->len[2]) == 0)
        return 0;
    if (!old_null && agg_add(&st->conn_agg, hour, old, st->scratch.len, -1) < 0)
        return -1;
    return agg_add(&st->conn_agg, hour, plat, it->len[2], 1);
}

static int apply_transport(store *st, struct item *it)
{
    sqlite3_stmt *s = st->ws.conn_transport;
    bind_str(s, 1, it->s[0], it->len[0]);
    bind_str(s, 2, it->s[1], it->len[1]);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    return r;
}

static int apply_close(store *st, struct item *it)
{
    sqlite3_stmt *s = st->ws.conn_close;
    char ts[24];
    util_format_db_time(it->at_ms, ts);
    bind_str(s, 1, it->s[0], it->len[0]);
    sqlite3_bind_text(s, 2, ts, 23, SQLITE_STATIC);
    /* A negative duration means the caller does not know it: stored NULL, not counted. */
    if (it->num[0] >= 0)
        sqlite3_bind_int64(s, 3, it->num[0]);
    else
        sqlite3_bind_null(s, 3);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    if (r == 0 && it->num[0] >= 0 && sqlite3_changes(st->wdb) == 1)
        tot_close(&st->tot, it->num[0]);
    return r;
}

static int apply_message(store *st, struct item *it)
{
    sqlite3_stmt *s = st->ws.msg_insert;
    char ts[24], hour[20];
    util_format_db_time(it->at_ms, ts);
    /* A message without a platform gets the column's default, 'web', written explicitly so
     * that message_counts (whose platform is NOT NULL) can count it. */
    const char *plat = it->s[3] ? it->s[3] : "web";
    size_t plen = it->s[3] ? it->len[3] : 3;
    for (int i = 0; i < 3; i++)
        bind_str(s, 1 + i, it->s[i], it->len[i]);
    bind_str(s, 4, plat, plen);
    sqlite3_bind_text(s, 5, ts, 23, SQLITE_STATIC);
    bind_str(s, 6, it->s[4], it->len[4]);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    if (r != 0)
        return r;
    it->id = sqlite3_last_insert_rowid(st->wdb);
    it->ok = true;
    st->tot.messages++;
    hour_of(ts, 23, hour);
    return agg_add(&st->msg_agg, hour, plat, plen, 1);
}

static int apply_item(store *st, struct item *it)
{
    switch (it->kind) {
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
    case K_STATUS:
        /* Only the newest heartbeat of a transaction is worth writing. */
        memcpy(st->status_num, it->num, sizeof st->status_num);
        st->status_set = true;
        return 0;
    case K_QUERY:
        break;
    }
    return 1;
}

static void post_done(store *st, struct item *head, struct item *tail)
{
    if (!head)
        return;
    pthread_mutex_lock(&st->dmu);
    bool was_empty = st->dhead == NULL;
    if (st->dtail)
        st->dtail->next = head;
    else
        st->dhead = head;
    st->dtail = tail;
    pthread_mutex_unlock(&st->dmu);
    /* A non-empty list means a wake is already pending that will take these too. */
    if (was_empty)
        loop_wake(st->l);
}

static void note_txn_failure(store *st, const char *error, size_t nitems)
{
    st->failed_txns++;
    if (st->failing)
        return;
    st->failing = true;
    char extra[64];
    snprintf(extra, sizeof extra, "\"writes\":%zu", nitems);
    log_error(RLOG_ERROR, "Store transaction failed", error, extra);
}

static void note_txn_success(store *st)
{
    if (!st->failing)
        return;
    st->failing = false;
    rlogf(RLOG_INFO, "Store writes recovered", "{\"failedTransactions\":%llu}",
          (unsigned long long)st->failed_txns);
    st->failed_txns = 0;
}

/* Runs n items (a prefix of the list at head) in one transaction, then completes them. */
static void run_chunk(store *st, struct item *head, size_t n)
{
    union wstmts *w = &st->ws;
    uint64_t t0 = mono_ns();
    char *fatal = NULL;
    size_t done_ok = 0, item_fails = 0;
    int rc = run_stmt(w->begin);
    if (rc == SQLITE_DONE) {
        struct item *it = head;
        for (size_t i = 0; i < n; i++, it = it->next) {
            int r = apply_item(st, it);
            if (r < 0)
                goto fail;
            if (r > 0)
                item_fails++;
            else if (it->kind != K_STATUS) /* a heartbeat is not a row */
                done_ok++;
        }
        if (flush_counters(st) < 0 || run_stmt(w->commit) != SQLITE_DONE)
            goto fail;
        goto done;
    }
fail:
    fatal = dup_str(sqlite3_errmsg(st->wdb));
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
done:;
    uint64_t t1 = mono_ns();
    txn_reset(st);

    /* Completions: message items go back to the loop, the rest are freed here. */
    struct item *dh = NULL, *dt = NULL, *it = head;
    for (size_t i = 0; i < n; i++) {
        struct item *next = it->next;
        if (fatal && it->kind == K_MESSAGE) {
            it->ok = false;
            if (!it->err)
                it->err = dup_str(fatal);
        }
        if (it->kind == K_MESSAGE && it->msg_done) {
            it->next = NULL;
            if (dt)
                dt->next = it;
            else
                dh = it;
            dt = it;
        } else {
            free(it->err);
            free(it);
        }
        it = next;
    }

    pthread_mutex_lock(&st->smu);
    struct store_stats *s = &st->stats;
    if (fatal) {
        s->errors += n;
        s->db_ok = false;
    } else {
        double ms = (double)(t1 - t0) / 1e6;
        s->commits++;
        s->rows_written += done_ok;
        s->errors += item_fails;
        s->db_ok = true;
        s->commit_count++;
        s->commit_sum_ms += ms;
        for (int i = 0; i < 8; i++)
            if (ms <= store_commit_buckets_ms[i])
                s->commit_le[i]++;
    }
    pthread_mutex_unlock(&st->smu);

    if (fatal)
        note_txn_failure(st, fatal, n);
    else
        note_txn_success(st);
    free(fatal);

    pthread_mutex_lock(&st->qmu);
    st->depth -= n;
    pthread_mutex_unlock(&st->qmu);
    post_done(st, dh, dt);
}

static void writer_enter(store *st);
static void writer_leave(store *st);

static void write_list(store *st, struct item *list)
{
    while (list) {
        struct item *head = list;
        size_t n = 1;
        while (n < st->batch_max && list->next) {
            list = list->next;
            n++;
        }
        struct item *rest = list->next;
        list->next = NULL;
        writer_enter(st);
        run_chunk(st, head, n);
        writer_leave(st);
        list = rest;
    }
}

/* One retention step: deletes up to RETENTION_CHUNK of the oldest expired messages. */
static void retention_chunk(store *st)
{
    union wstmts *w = &st->ws;
    char cutoff[24];
    util_format_db_time(util_wall_ms() - (int64_t)st->retention_days * 86400000, cutoff);
    int64_t deleted = 0;
    int rc = run_stmt(w->begin);
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_bind_text(w->retention, 1, cutoff, 23, SQLITE_STATIC);
    sqlite3_bind_int(w->retention, 2, RETENTION_CHUNK);
    while ((rc = sqlite3_step(w->retention)) == SQLITE_ROW) {
        char hour[20];
        deleted++;
        const char *ct = (const char *)sqlite3_column_text(w->retention, 0);
        if (!hour_of(ct, (size_t)sqlite3_column_bytes(w->retention, 0), hour) ||
            sqlite3_column_type(w->retention, 1) == SQLITE_NULL)
            continue; /* a row no counter group held */
        if (agg_add(&st->msg_agg, hour, (const char *)sqlite3_column_text(w->retention, 1),
                    (size_t)sqlite3_column_bytes(w->retention, 1), -1) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(w->retention);
    if (rc != SQLITE_DONE)
        goto fail;
    st->tot.messages = -deleted;
    if (flush_counters(st) < 0 || run_stmt(w->commit) != SQLITE_DONE)
        goto fail;
    txn_reset(st);
    if (deleted < RETENTION_CHUNK) {
        st->ret_active = false;
        st->ret_next_ns = mono_ns() + RETENTION_PERIOD_MS * 1000000ull;
    }
    return;
fail:
    log_error(RLOG_ERROR, "Store retention failed", sqlite3_errmsg(st->wdb), NULL);
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
    txn_reset(st);
    st->ret_active = false;
    st->ret_next_ns = mono_ns() + RETENTION_PERIOD_MS * 1000000ull;
}

/* Whether the writer has retention work now; starts a pass when one is due. */
static bool retention_ready(store *st)
{
    if (!st->retention_days)
        return false;
    if (!st->ret_active && mono_ns() >= st->ret_next_ns)
        st->ret_active = true;
    return st->ret_active;
}

/* At shutdown, after the last queued write: the rows still active end now. */
static void writer_finish(store *st)
{
    union wstmts *w = &st->ws;
    char now[24];
    util_format_db_time(util_wall_ms(), now);
    if (run_stmt(w->begin) != SQLITE_DONE)
        goto fail;
    bind_cstr(w->stopped, 1, now);
    if (close_active_rows(st, now, true) < 0 || flush_counters(st) < 0 ||
        run_stmt(w->stopped) != SQLITE_DONE || run_stmt(w->commit) != SQLITE_DONE)
        goto fail;
    txn_reset(st);
    return;
fail:
    log_error(RLOG_ERROR, "Store shutdown write failed", sqlite3_errmsg(st->wdb), NULL);
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
    txn_reset(st);
}

/* Group commit under heavy load: when the previous batch was large (writes pour in faster
 * than one commit takes) and the new one is still small, the writer waits COALESCE_NS for
 * more, so one transaction, one WAL write and one wake-up of the loop serve many messages
 * (and the loop then sends each socket all of them in one writev). At light or moderate load
 * every batch commits at once: the wait would only add latency. */
#define COALESCE_NS 500000ull
#define COALESCE_BUSY_NS 2000000ull
#define COALESCE_ENOUGH 64
#define COALESCE_PREV 16

static size_t list_len(const struct item *it, size_t stop)
{
    size_t n = 0;
    for (; it && n < stop; it = it->next)
        n++;
    return n;
}

static struct item *coalesce(store *st, struct item *list)
{
    if (!list || st->last_batch < COALESCE_PREV ||
        mono_ns() - st->last_commit_ns > COALESCE_BUSY_NS ||
        list_len(list, COALESCE_ENOUGH) >= COALESCE_ENOUGH)
        return list;
    struct timespec ts = {0, (long)COALESCE_NS};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&st->qmu);
    struct item *more = st->qhead;
    st->qhead = st->qtail = NULL;
    pthread_mutex_unlock(&st->qmu);
    if (more) {
        struct item *tail = list;
        while (tail->next)
            tail = tail->next;
        tail->next = more;
    }
    return list;
}

/* After a second without writes, the writer gives memory back: SQLite's page cache (clean
 * after the commit) and every malloc arena's free pages (malloc_trim). An idle daemon then
 * holds little more than its clients' state, whatever bursts it went through. */
#define IDLE_TRIM_NS 1000000000ull

static void release_memory(store *st)
{
    sqlite3_db_release_memory(st->wdb);
    malloc_trim(0);
    st->trim_pending = false;
}

static void *writer_main(void *arg)
{
    store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->qmu);
        bool idle = false;
        while (!st->qhead && !st->wstop && !retention_ready(st)) {
            st->writer_waiting = true;
            uint64_t deadline = UINT64_MAX;
            if (st->retention_days)
                deadline = st->ret_next_ns;
            if (st->trim_pending && mono_ns() + IDLE_TRIM_NS < deadline)
                deadline = mono_ns() + IDLE_TRIM_NS;
            int rc;
            if (deadline != UINT64_MAX) {
                struct timespec ts = {(time_t)(deadline / 1000000000u),
                                      (long)(deadline % 1000000000u)};
                rc = pthread_cond_timedwait(&st->qcond, &st->qmu, &ts);
            } else {
                rc = pthread_cond_wait(&st->qcond, &st->qmu);
            }
            st->writer_waiting = false;
            if (rc == ETIMEDOUT && st->trim_pending && !st->qhead) {
                idle = true;
                break;
            }
        }
        struct item *list = st->qhead;
        st->qhead = st->qtail = NULL;
        bool stop = st->wstop;
        pthread_mutex_unlock(&st->qmu);

        if (idle) {
            release_memory(st);
            continue;
        }
        if (list) {
            if (!stop)
                list = coalesce(st, list);
            st->last_batch = list_len(list, COALESCE_ENOUGH);
            write_list(st, list);
            st->last_commit_ns = mono_ns();
            st->trim_pending = true;
        } else if (stop) {
            break;
        }
        /* One retention step between write batches: a pass progresses even under constant
         * load, and a write never waits for more than one step. */
        if (!stop && retention_ready(st)) {
            writer_enter(st);
            retention_chunk(st);
            writer_leave(st);
        }
    }
    writer_finish(st);
    return NULL;
}

/* ---- the checkpointer ------------------------------------------------------------------
 * SQLite's automatic checkpoint runs inside the committing connection: every few megabytes
 * of WAL, one commit of the writer would copy pages back and fsync, and every message
 * waiting behind it would be late. Here the writer's WAL hook only wakes this thread, which
 * runs PASSIVE checkpoints from its own connection: they never block the writer, which keeps
 * appending while older frames are copied.
 *
 * The WAL file only starts over from its beginning when a transaction begins while every
 * frame in it has been copied back, and under steady load the writer always appends a few
 * frames while a pass runs: the WAL would grow without end (measured: 1.3 GB after 10 s at
 * 10 000 messages/s). So once it holds RESTART_PAGES frames, a pass is followed by
 * shorter ones while it lags (each copies what the writer appended during the last), and a
 * last one runs with the writer paused between two transactions: it copies only the frames
 * of the last transaction and syncs (~1 ms after small transactions, 10-20 ms after the
 * large ones of a saturated ingest), and the writer's next transaction rewinds the WAL
 * (unless a reader still uses those frames; then a later pass tries again). RESTART_PAGES
 * (64 MB of WAL) keeps those pauses rare: 3 a second at 140 000 messages/s. Readers pay
 * nothing for a long WAL (its index is shared memory). journal_size_limit gives the disk
 * back after a burst. */
#define CHECKPOINT_PAGES 1000
#define RESTART_PAGES 16000
#define RESTART_HARD (4 * RESTART_PAGES)
#define PAUSE_FRAMES 256
#define WAL_SIZE_LIMIT_STR "134217728" /* bytes kept of the WAL file when it starts over */

static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    store *st = ud;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&st->cmu);
        if (!st->cwanted) {
            st->cwanted = true;
            pthread_cond_signal(&st->ccond);
        }
        pthread_mutex_unlock(&st->cmu);
    }
    return SQLITE_OK;
}

/* The writer's side of the pause: called before and after each batch. */
static void writer_enter(store *st)
{
    pthread_mutex_lock(&st->cmu);
    while (st->cpause)
        pthread_cond_wait(&st->cpcond, &st->cmu);
    st->cwriting = true;
    pthread_mutex_unlock(&st->cmu);
}

static void writer_leave(store *st)
{
    pthread_mutex_lock(&st->cmu);
    st->cwriting = false;
    if (st->cpause)
        pthread_cond_broadcast(&st->cpcond);
    pthread_mutex_unlock(&st->cmu);
}

static int checkpoint_pass(store *st, int *log, int *done)
{
    *log = *done = 0;
    int rc = sqlite3_wal_checkpoint_v2(st->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, log, done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error(RLOG_WARN, "WAL checkpoint failed", sqlite3_errmsg(st->cdb), NULL);
    pthread_mutex_lock(&st->smu);
    st->stats.checkpoints++;
    st->stats.wal_frames = *log > 0 ? (uint64_t)*log : 0;
    pthread_mutex_unlock(&st->smu);
    return rc;
}

static void *checkpointer_main(void *arg)
{
    store *st = arg;
    int paused_at = -1;          /* WAL frames after the last paused pass */
    int prev_log = 0, prev_done = 0; /* after the last pass */
    for (;;) {
        pthread_mutex_lock(&st->cmu);
        while (!st->cwanted && !st->cstop)
            pthread_cond_wait(&st->ccond, &st->cmu);
        bool stop = st->cstop;
        st->cwanted = false;
        pthread_mutex_unlock(&st->cmu);
        if (stop)
            break;
        int log, done, passes = 1;
        int rc = checkpoint_pass(st, &log, &done);
        /* Whether the last pass copied anything (or the WAL started over meanwhile). */
        bool moved = done > prev_done || log < prev_log;
        /* Each further pass copies only what the writer appended during the last one:
         * shorter and shorter, so the pause (if one is needed) copies only a few frames. */
        while (rc == SQLITE_OK && log >= RESTART_PAGES && log - done > PAUSE_FRAMES &&
               moved && passes++ < 4) {
            int before = done;
            rc = checkpoint_pass(st, &log, &done);
            moved = done > before;
        }
        prev_log = log;
        prev_done = done;
        /* Caught up or not, a WAL this long did not start over: the writer's next
         * transaction had begun before the pass ended. A pause helps unless the passes are
         * stuck: a pass that copies nothing while frames remain means a reader still holds
         * older frames (an admin page reading a snapshot), and pausing every commit for it
         * would change nothing, so that waits for a later pass, up to RESTART_HARD frames.
         * No pause either if nothing was written since the last one. */
        if (rc != SQLITE_OK || log < RESTART_PAGES ||
            (log - done > PAUSE_FRAMES && !moved && log < RESTART_HARD) ||
            (log == paused_at && done >= log))
            continue;
        pthread_mutex_lock(&st->cmu);
        st->cpause = true;
        while (st->cwriting)
            pthread_cond_wait(&st->cpcond, &st->cmu);
        pthread_mutex_unlock(&st->cmu);
        uint64_t t0 = mono_ns();
        checkpoint_pass(st, &log, &done);
        paused_at = log;
        pthread_mutex_lock(&st->cmu);
        st->cpause = false;
        pthread_cond_broadcast(&st->cpcond);
        pthread_mutex_unlock(&st->cmu);
        pthread_mutex_lock(&st->smu);
        st->stats.wal_pauses++;
        st->stats.wal_pause_ms += (double)(mono_ns() - t0) / 1e6;
        pthread_mutex_unlock(&st->smu);
    }
    return NULL;
}

/* ---- the reader ------------------------------------------------------------------------ */

static int json_col(buf *b, sqlite3_stmt *s, int col)
{
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return buf_puts(b, "null");
    const char *p = (const char *)sqlite3_column_text(s, col);
    size_t n = (size_t)sqlite3_column_bytes(s, col);
    if (!p)
        return -1; /* out of memory converting the value */
    if (buf_putc(b, '"') < 0 || buf_json_escape(b, p, n) < 0)
        return -1;
    return buf_putc(b, '"');
}

/* One {id, socketId, sender, text, platform, room, createdAt} object from a history row. */
static int json_row(buf *b, sqlite3_stmt *s)
{
    static const char *const keys[] = {",\"socketId\":", ",\"sender\":", ",\"text\":",
                                       ",\"platform\":", ",\"room\":",   ",\"createdAt\":"};
    if (buf_printf(b, "{\"id\":%lld", (long long)sqlite3_column_int64(s, 0)) < 0)
        return -1;
    for (int i = 0; i < 6; i++)
        if (buf_puts(b, keys[i]) < 0 || json_col(b, s, i + 1) < 0)
            return -1;
    return buf_putc(b, '}');
}

static void run_query(store *st, struct item *it)
{
    buf *b = &it->out;
    int64_t limit = it->num[0];
    int64_t before = it->num[1] > 0 ? it->num[1] : INT64_MAX;
    if (buf_putc(b, '[') < 0)
        goto oom;
    if (limit > 0) {
        sqlite3_stmt *s = it->s[0] ? st->q_room : st->q_null;
        if (it->s[0])
            bind_str(s, 1, it->s[0], it->len[0]);
        sqlite3_bind_int64(s, 2, before);
        sqlite3_bind_int64(s, 3, limit);
        int rc;
        bool first = true;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            if ((!first && buf_putc(b, ',') < 0) || json_row(b, s) < 0) {
                rc = SQLITE_NOMEM;
                break;
            }
            first = false;
        }
        if (rc != SQLITE_DONE) {
            it->err = dup_str(rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(st->rdb));
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            buf_free(b);
            return;
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    if (buf_putc(b, ']') < 0 || buf_terminate(b) < 0)
        goto oom;
    it->ok = true;
    return;
oom:
    buf_free(b);
    it->err = dup_str("out of memory");
}

static void *reader_main(void *arg)
{
    store *st = arg;
    for (;;) {
        pthread_mutex_lock(&st->rmu);
        while (!st->rhead && !st->rstop)
            pthread_cond_wait(&st->rcond, &st->rmu);
        struct item *list = st->rhead;
        st->rhead = st->rtail = NULL;
        pthread_mutex_unlock(&st->rmu);
        if (!list)
            break; /* stopping, and every queued query has been answered */
        while (list) {
            struct item *next = list->next;
            list->next = NULL;
            run_query(st, list);
            pthread_mutex_lock(&st->rmu);
            st->rdepth--;
            pthread_mutex_unlock(&st->rmu);
            post_done(st, list, list);
            list = next;
        }
    }
    return NULL;
}

/* ---- completions (loop thread) ---------------------------------------------------------- */

static void drain_done(store *st)
{
    pthread_mutex_lock(&st->dmu);
    struct item *it = st->dhead;
    st->dhead = st->dtail = NULL;
    pthread_mutex_unlock(&st->dmu);
    while (it) {
        struct item *next = it->next;
        const char *error = it->ok ? NULL : it->err ? it->err : "out of memory";
        if (it->kind == K_MESSAGE)
            it->msg_done(it->ud, it->ok, it->ok ? it->id : 0, error);
        else if (it->query_done)
            it->query_done(it->ud, it->ok, it->ok ? it->out.data : NULL, it->ok ? it->out.len : 0,
                           error);
        buf_free(&it->out);
        free(it->err);
        free(it);
        it = next;
    }
}

static void on_wake(loop *l, void *ud)
{
    drain_done(ud);
}

/* ---- queueing (loop thread) ------------------------------------------------------------- */

static struct item *item_new(enum item_kind kind, int nstr, const char *const *s, const size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < nstr; i++) {
        if (!s[i])
            continue;
        if (len[i] > SIZE_MAX / 2 - total - 1)
            return NULL;
        total += len[i] + 1;
    }
    struct item *it = malloc(sizeof *it + total);
    if (!it)
        return NULL;
    memset(it, 0, sizeof *it);
    it->kind = kind;
    char *p = it->data;
    for (int i = 0; i < nstr; i++) {
        if (!s[i])
            continue;
        memcpy(p, s[i], len[i]);
        p[len[i]] = '\0';
        it->s[i] = p;
        it->len[i] = len[i];
        p += len[i] + 1;
    }
    return it;
}

static int push_write(store *st, struct item *it)
{
    if (!it)
        return -1;
    pthread_mutex_lock(&st->qmu);
    if (st->wstop || st->depth >= st->max_queue) {
        pthread_mutex_unlock(&st->qmu);
        free(it);
        return -1;
    }
    if (st->qtail)
        st->qtail->next = it;
    else
        st->qhead = it;
    st->qtail = it;
    st->depth++;
    bool wake = st->writer_waiting;
    pthread_mutex_unlock(&st->qmu);
    if (wake)
        pthread_cond_signal(&st->qcond);
    return 0;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

int store_connection_open(store *st, const char *socket_id, const char *transport,
                          const char *remote_addr, const char *user_agent, int64_t at_ms)
{
    const char *s[] = {socket_id, transport, remote_addr, user_agent};
    size_t len[] = {slen(socket_id), slen(transport), slen(remote_addr), slen(user_agent)};
    struct item *it = item_new(K_OPEN, 4, s, len);
    if (it)
        it->at_ms = at_ms;
    return push_write(st, it);
}

int store_connection_identify(store *st, const char *socket_id, const char *user_id,
                              const char *platform, const char *app_version)
{
    const char *s[] = {socket_id, user_id, platform, app_version};
    size_t len[] = {slen(socket_id), slen(user_id), slen(platform), slen(app_version)};
    return push_write(st, item_new(K_IDENTIFY, 4, s, len));
}

int store_connection_transport(store *st, const char *socket_id, const char *transport)
{
    const char *s[] = {socket_id, transport};
    size_t len[] = {slen(socket_id), slen(transport)};
    return push_write(st, item_new(K_TRANSPORT, 2, s, len));
}

int store_connection_close(store *st, const char *socket_id, int64_t at_ms, int64_t duration_ms)
{
    const char *s[] = {socket_id};
    size_t len[] = {slen(socket_id)};
    struct item *it = item_new(K_CLOSE, 1, s, len);
    if (it) {
        it->at_ms = at_ms;
        it->num[0] = duration_ms;
    }
    return push_write(st, it);
}

int store_message(store *st, const char *socket_id, const char *sender, const char *text,
                  size_t text_len, const char *platform, const char *room, int64_t at_ms,
                  store_message_done_fn *done, void *ud)
{
    const char *s[] = {socket_id, sender, text ? text : "", platform, room};
    size_t len[] = {slen(socket_id), slen(sender), text ? text_len : 0, slen(platform), slen(room)};
    struct item *it = item_new(K_MESSAGE, 5, s, len);
    if (it) {
        it->at_ms = at_ms;
        it->msg_done = done;
        it->ud = ud;
    }
    return push_write(st, it);
}

int store_status(store *st, unsigned connections, uint64_t messages_in, uint64_t messages_out)
{
    struct item *it = item_new(K_STATUS, 0, NULL, NULL);
    if (it) {
        it->num[0] = connections;
        it->num[1] = (int64_t)messages_in;
        it->num[2] = (int64_t)messages_out;
    }
    return push_write(st, it);
}

int store_query_messages(store *st, int limit, int64_t before, const char *room,
                         store_query_done_fn *done, void *ud)
{
    const char *s[] = {room};
    size_t len[] = {slen(room)};
    struct item *it = item_new(K_QUERY, 1, s, len);
    if (!it)
        return -1;
    it->num[0] = limit;
    it->num[1] = before;
    it->query_done = done;
    it->ud = ud;
    pthread_mutex_lock(&st->rmu);
    if (st->rstop || st->rdepth >= st->max_queue) {
        pthread_mutex_unlock(&st->rmu);
        free(it);
        return -1;
    }
    if (st->rtail)
        st->rtail->next = it;
    else
        st->rhead = it;
    st->rtail = it;
    st->rdepth++;
    pthread_mutex_unlock(&st->rmu);
    pthread_cond_signal(&st->rcond);
    return 0;
}

void store_get_stats(store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->smu);
    *out = st->stats;
    pthread_mutex_unlock(&st->smu);
    pthread_mutex_lock(&st->qmu);
    out->queue_depth = st->depth;
    pthread_mutex_unlock(&st->qmu);
}

/* ---- open and close --------------------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *sql, char **err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    set_err(err, sql, msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return -1;
}

static int open_db(const char *path, int flags, sqlite3 **out, char **err)
{
    /* NOMUTEX: each connection is used by one thread at a time (handed over once, when the
     * thread starts), so SQLite's per-call locking would be pure cost. */
    int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, "cannot open the database", *out ? sqlite3_errmsg(*out) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(*out, BUSY_TIMEOUT_MS);
    return 0;
}

/* Sets WAL and checks it took: the reader thread's non-blocking reads depend on it. */
static int set_wal(sqlite3 *db, char **err)
{
    sqlite3_stmt *s;
    if (prepare(db, &s, "PRAGMA journal_mode=WAL", err) < 0)
        return -1;
    int rc = sqlite3_step(s);
    bool wal =
        rc == SQLITE_ROW && sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    if (!wal)
        set_err(err, "cannot switch the database to WAL mode",
                rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return wal ? 0 : -1;
}

/* Reads daemon_status.updated_at (the last heartbeat) into hb; false when there is none. */
static bool last_heartbeat(sqlite3 *db, char hb[64])
{
    sqlite3_stmt *s;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT updated_at FROM daemon_status WHERE id = 1", -1, &s, NULL) !=
        SQLITE_OK)
        return false;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        snprintf(hb, 64, "%s", (const char *)sqlite3_column_text(s, 0));
        found = true;
    }
    sqlite3_finalize(s);
    return found;
}

/* The start-up transaction: closes what a crash left active and writes daemon_status. */
static int startup_txn(store *st, char **err)
{
    sqlite3 *db = st->wdb;
    char hb[64], now[24];
    sqlite3_stmt *ds = NULL;
    util_format_db_time(util_wall_ms(), now);
    if (run_stmt(st->ws.begin) != SQLITE_DONE)
        goto fail;
    bool have_hb = last_heartbeat(db, hb);
    if (close_active_rows(st, have_hb ? hb : NULL, false) < 0 || flush_counters(st) < 0)
        goto fail;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO daemon_status(id, pid, version, started_at, updated_at,"
                           " stopped_at, connections, messages_in, messages_out)"
                           " VALUES(1, ?1, ?2, ?3, ?3, NULL, 0, 0, 0)"
                           " ON CONFLICT(id) DO UPDATE SET pid = excluded.pid,"
                           " version = excluded.version, started_at = excluded.started_at,"
                           " updated_at = excluded.updated_at, stopped_at = NULL,"
                           " connections = 0, messages_in = 0, messages_out = 0",
                           -1, &ds, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(ds, 1, (sqlite3_int64)getpid());
    sqlite3_bind_text(ds, 2, PACKAGE_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(ds, 3, now, -1, SQLITE_STATIC);
    if (sqlite3_step(ds) != SQLITE_DONE || run_stmt(st->ws.commit) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(ds);
    txn_reset(st);
    return 0;
fail:
    set_err(err, "cannot start the database", sqlite3_errmsg(db));
    sqlite3_finalize(ds);
    if (!sqlite3_get_autocommit(db))
        run_stmt(st->ws.rollback);
    txn_reset(st);
    return -1;
}

static int prepare_reader(store *st, char **err)
{
    /* createdAt is converted by SQLite, which reads every time form it understands. */
#define QCOLS                                                                                      \
    "SELECT id, socket_id, sender, message_text, platform, room,"                                  \
    " strftime('%Y-%m-%dT%H:%M:%fZ', created_at) FROM messages WHERE "
    if (prepare(st->rdb, &st->q_room, QCOLS "room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0 ||
        prepare(st->rdb, &st->q_null, QCOLS "room IS NULL AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0)
        return -1;
#undef QCOLS
    return 0;
}

static void stop_threads(store *st)
{
    pthread_mutex_lock(&st->cmu);
    st->cstop = true;
    pthread_mutex_unlock(&st->cmu);
    pthread_cond_signal(&st->ccond);
    if (st->checkpointer_started)
        pthread_join(st->checkpointer, NULL);
    st->checkpointer_started = false;

    pthread_mutex_lock(&st->qmu);
    st->wstop = true;
    pthread_mutex_unlock(&st->qmu);
    pthread_cond_signal(&st->qcond);
    if (st->writer_started)
        pthread_join(st->writer, NULL);
    st->writer_started = false;

    pthread_mutex_lock(&st->rmu);
    st->rstop = true;
    pthread_mutex_unlock(&st->rmu);
    pthread_cond_signal(&st->rcond);
    if (st->reader_started)
        pthread_join(st->reader, NULL);
    st->reader_started = false;
}

static void free_list(struct item *it)
{
    while (it) {
        struct item *next = it->next;
        buf_free(&it->out);
        free(it->err);
        free(it);
        it = next;
    }
}

static void store_free(store *st)
{
    finalize_writer(st);
    sqlite3_finalize(st->q_room);
    sqlite3_finalize(st->q_null);
    sqlite3_close(st->rdb);
    sqlite3_close(st->cdb);
    sqlite3_close(st->wdb); /* the last connection: it checkpoints and removes the WAL */
    agg_free(&st->msg_agg);
    agg_free(&st->conn_agg);
    buf_free(&st->scratch);
    free_list(st->qhead);
    free_list(st->rhead);
    free_list(st->dhead);
    if (st->sync_inited) {
        pthread_mutex_destroy(&st->qmu);
        pthread_cond_destroy(&st->qcond);
        pthread_mutex_destroy(&st->rmu);
        pthread_cond_destroy(&st->rcond);
        pthread_mutex_destroy(&st->dmu);
        pthread_mutex_destroy(&st->smu);
        pthread_mutex_destroy(&st->cmu);
        pthread_cond_destroy(&st->ccond);
        pthread_cond_destroy(&st->cpcond);
    }
    free(st);
}

static int init_sync(store *st)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    /* The writer's timed waits (retention) must not jump with the wall clock. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&st->qcond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    pthread_mutex_init(&st->qmu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcond, NULL);
    pthread_mutex_init(&st->dmu, NULL);
    pthread_mutex_init(&st->smu, NULL);
    pthread_mutex_init(&st->cmu, NULL);
    pthread_cond_init(&st->ccond, NULL);
    pthread_cond_init(&st->cpcond, NULL);
    st->sync_inited = true;
    return 0;
}

store *store_open(const struct store_config *cfg, loop *l, char **err)
{
    if (err)
        *err = NULL;
    if (!cfg || !cfg->path || !l) {
        set_err(err, "no database path", NULL);
        return NULL;
    }
    store *st = calloc(1, sizeof *st);
    if (!st || init_sync(st) < 0) {
        free(st);
        set_err(err, "out of memory", NULL);
        return NULL;
    }
    st->l = l;
    st->max_queue = cfg->max_queue ? cfg->max_queue : DEFAULT_MAX_QUEUE;
    st->batch_max = cfg->batch_max ? cfg->batch_max : DEFAULT_BATCH_MAX;
    st->retention_days = cfg->retention_days;
    st->stats.db_ok = true;
    st->ret_next_ns = mono_ns(); /* the first retention pass starts as soon as the writer idles */

    if (open_db(cfg->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &st->wdb, err) < 0 ||
        set_wal(st->wdb, err) < 0 ||
        exec_sql(st->wdb, cfg->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 err) < 0 ||
        /* messages.socket_id references connections, but every connection row goes through
         * the same queue ahead of its messages; checking it per row would only cost. */
        exec_sql(st->wdb, "PRAGMA foreign_keys=OFF", err) < 0 ||
        /* A larger page cache keeps the five message indexes' hot pages in memory. */
        exec_sql(st->wdb, "PRAGMA cache_size=-32768", err) < 0 ||
        /* checkpoints are the checkpointer thread's job (see checkpointer_main) */
        exec_sql(st->wdb, "PRAGMA wal_autocheckpoint=0", err) < 0 ||
        exec_sql(st->wdb, "PRAGMA journal_size_limit=" WAL_SIZE_LIMIT_STR, err) < 0 ||
        migrate_apply(st->wdb, err) < 0 ||
        prepare_writer(st, err) < 0 || startup_txn(st, err) < 0)
        goto fail;
    if (open_db(cfg->path, SQLITE_OPEN_READONLY, &st->rdb, err) < 0 || prepare_reader(st, err) < 0)
        goto fail;
    /* A connection opens the WAL on its first read; until then a checkpoint from it does
     * nothing at all (and reports an empty WAL), so the checkpointer reads once here. */
    if (open_db(cfg->path, SQLITE_OPEN_READWRITE, &st->cdb, err) < 0 ||
        exec_sql(st->cdb, "SELECT count(*) FROM sqlite_schema", err) < 0)
        goto fail;
    sqlite3_wal_hook(st->wdb, wal_hook, st);

    loop_set_wake(l, on_wake, st);
    if (pthread_create(&st->checkpointer, NULL, checkpointer_main, st) != 0) {
        set_err(err, "cannot start the checkpointer thread", strerror(errno));
        goto fail_unhook;
    }
    st->checkpointer_started = true;
    if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
        set_err(err, "cannot start the writer thread", strerror(errno));
        goto fail_unhook;
    }
    st->writer_started = true;
    if (pthread_create(&st->reader, NULL, reader_main, st) != 0) {
        set_err(err, "cannot start the reader thread", strerror(errno));
        goto fail_unhook;
    }
    st->reader_started = true;
    return st;

fail_unhook:
    stop_threads(st);
    loop_set_wake(l, NULL, NULL);
fail:
    store_free(st);
    return NULL;
}

void store_close(store *st)
{
    if (!st)
        return;
    /* The writer commits what is queued, closes the active rows, sets stopped_at and exits;
     * the reader answers the queries queued and exits. Then their completions run here. */
    stop_threads(st);
    drain_done(st);
    loop_set_wake(st->l, NULL, NULL);
    store_free(st);
}

/* ---- backup ----------------------------------------------------------------------------- */

int store_backup(const char *src_path, const char *dest_path, char **err)
{
    if (err)
        *err = NULL;
    sqlite3 *src = NULL, *dest = NULL;
    int ret = -1;
    if (open_db(src_path, SQLITE_OPEN_READONLY, &src, err) < 0 ||
        open_db(dest_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dest, err) < 0)
        goto out;
    sqlite3_backup *b = sqlite3_backup_init(dest, "main", src, "main");
    if (!b) {
        set_err(err, "cannot start the backup", sqlite3_errmsg(dest));
        goto out;
    }
    /* One step copies every page inside one read transaction on the source: in WAL mode
     * that is a snapshot, consistent whatever the writer does meanwhile, and it does not
     * block the writer. BUSY/LOCKED only come from the destination; retry those. */
    int rc = SQLITE_BUSY;
    for (int tries = 0; tries < 100 && (rc == SQLITE_BUSY || rc == SQLITE_LOCKED); tries++) {
        if (tries > 0)
            sqlite3_sleep(50);
        rc = sqlite3_backup_step(b, -1);
    }
    /* finish reports an error of the steps and leaves its message on dest; a step that
     * only ran out of retries leaves no error there, so say what it was. */
    if (sqlite3_backup_finish(b) != SQLITE_OK) {
        set_err(err, "backup failed", sqlite3_errmsg(dest));
        goto out;
    }
    if (rc != SQLITE_DONE) {
        set_err(err, "backup failed", sqlite3_errstr(rc));
        goto out;
    }
    ret = 0;
out:
    sqlite3_close(src);
    sqlite3_close(dest);
    return ret;
}
