/* writer.c: the writer thread, sole owner of the SQLite write connection. It takes the whole
 * write queue at once and runs it in transactions of up to batch_max writes (group commit):
 * under load the queue grows while a transaction commits, so batches grow by themselves and
 * the cost of a commit is shared by thousands of rows. A message's item doubles as its
 * completion and goes back to the loop after COMMIT. Between batches: one retention step,
 * and after a second of quiet the memory is given back. At shutdown, the rows still active
 * end. The SQL of every write is here, prepared once at open. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <unistd.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store_internal.h"

/* ---- statements ------------------------------------------------------------------------ */


int store_prepare_writer(store *st, char **err)
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

void store_finalize_writer(store *st)
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
            store_tot_close(&st->tot, sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- the thread ------------------------------------------------------------------------ */

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
    return store_agg_add(&st->conn_agg, hour, "unknown", 7, 1);
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
    if (!old_null && store_agg_add(&st->conn_agg, hour, old, st->scratch.len, -1) < 0)
        return -1;
    return store_agg_add(&st->conn_agg, hour, plat, it->len[2], 1);
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
        store_tot_close(&st->tot, it->num[0]);
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
    return store_agg_add(&st->msg_agg, hour, plat, plen, 1);
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
        if (store_flush_counters(st) < 0 || run_stmt(w->commit) != SQLITE_DONE)
            goto fail;
        goto done;
    }
fail:
    fatal = dup_str(sqlite3_errmsg(st->wdb));
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
done:;
    uint64_t t1 = mono_ns();
    store_txn_reset(st);

    /* Completions: message items go back to the loop, the rest are freed here. */
    struct item *dh = NULL, *dt = NULL, *it = head;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *next = it->next;
        bytes += it->size;
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
    st->depth_bytes -= bytes;
    pthread_mutex_unlock(&st->qmu);
    store_post_done(st, dh, dt);
}

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
        store_writer_enter(st);
        run_chunk(st, head, n);
        store_writer_leave(st);
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
        if (store_agg_add(&st->msg_agg, hour, (const char *)sqlite3_column_text(w->retention, 1),
                    (size_t)sqlite3_column_bytes(w->retention, 1), -1) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(w->retention);
    if (rc != SQLITE_DONE)
        goto fail;
    st->tot.messages = -deleted;
    if (store_flush_counters(st) < 0 || run_stmt(w->commit) != SQLITE_DONE)
        goto fail;
    store_txn_reset(st);
    if (deleted < RETENTION_CHUNK) {
        st->ret_active = false;
        st->ret_next_ns = mono_ns() + RETENTION_PERIOD_MS * 1000000ull;
    }
    return;
fail:
    log_error(RLOG_ERROR, "Store retention failed", sqlite3_errmsg(st->wdb), NULL);
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
    store_txn_reset(st);
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
    if (close_active_rows(st, now, true) < 0 || store_flush_counters(st) < 0 ||
        run_stmt(w->stopped) != SQLITE_DONE || run_stmt(w->commit) != SQLITE_DONE)
        goto fail;
    store_txn_reset(st);
    return;
fail:
    log_error(RLOG_ERROR, "Store shutdown write failed", sqlite3_errmsg(st->wdb), NULL);
    if (!sqlite3_get_autocommit(st->wdb))
        run_stmt(w->rollback);
    store_txn_reset(st);
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

void *store_writer_main(void *arg)
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
            store_writer_enter(st);
            retention_chunk(st);
            store_writer_leave(st);
        }
    }
    writer_finish(st);
    return NULL;
}

/* ---- start-up ---------------------------------------------------------------------------- */

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
int store_startup_txn(store *st, char **err)
{
    sqlite3 *db = st->wdb;
    char hb[64], now[24];
    sqlite3_stmt *ds = NULL;
    util_format_db_time(util_wall_ms(), now);
    if (run_stmt(st->ws.begin) != SQLITE_DONE)
        goto fail;
    bool have_hb = last_heartbeat(db, hb);
    if (close_active_rows(st, have_hb ? hb : NULL, false) < 0 || store_flush_counters(st) < 0)
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
    store_txn_reset(st);
    return 0;
fail:
    set_err(err, "cannot start the database", sqlite3_errmsg(db));
    sqlite3_finalize(ds);
    if (!sqlite3_get_autocommit(db))
        run_stmt(st->ws.rollback);
    store_txn_reset(st);
    return -1;
}
