/* sqlite.c: the SQLite backend (store_backend.h): the embedded default, one file beside rtd.
 *
 * Three connections: the writer's (WAL mode, synchronous NORMAL or FULL, statements prepared
 * once at open), the reader's (read-only: in WAL mode it sees the last commit and neither
 * waits for nor delays the writer) and the checkpointer's (checkpoint.c). A constraint
 * failure (a duplicate socket_id, a NULL sender) fails only its own write; anything else
 * (disk full, I/O error, lock timeout) loses the transaction. There is one node: every
 * connection row is this process's, daemon_status has the single row id 1. */
#include "config.h"

#include <unistd.h>

#include "common/migrate.h"
#include "rtd/lib/util.h"
#include "rtd/store/sqlite.h"

static inline int bind_str(sqlite3_stmt *s, int idx, const char *p, size_t n)
{
    /* SQLITE_STATIC: the item outlives the statement's use of the text; the bindings are
     * cleared at the end of every transaction. */
    if (!p)
        return sqlite3_bind_null(s, idx);
    return sqlite3_bind_text64(s, idx, p, n, SQLITE_STATIC, SQLITE_UTF8);
}

static inline int bind_cstr(sqlite3_stmt *s, int idx, const char *p)
{
    return bind_str(s, idx, p, p ? strlen(p) : 0);
}

/* Steps a statement that returns no rows and resets it. Returns the step's result code. */
static inline int run_stmt(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc;
}

static inline int prepare(sqlite3 *db, sqlite3_stmt **out, const char *sql, char **err)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) == SQLITE_OK)
        return 0;
    set_err(err, "cannot prepare a statement", sqlite3_errmsg(db));
    return -1;
}

/* ---- statements ------------------------------------------------------------------------ */

static int prepare_writer(store *st, char **err)
{
    union wstmts *w = &sqlite_be(st)->ws;
    sqlite3 *db = sqlite_be(st)->wdb;
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
        /* A recovered socket (the same id): its row is active again, not a new connection. */
        {&w->conn_reopen,
         "UPDATE connections SET status = 'active', disconnected_at = NULL, duration_ms = NULL,"
         " transport = ?3, remote_addr = ?4, user_agent = ?5 WHERE socket_id = ?1"},
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
                     " messages_out = ?4, laravel = ?5 WHERE id = 1"},
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
        {&w->sess_save,
         "INSERT OR REPLACE INTO recovery_sessions(pid, node_id, socket_id, rooms, user_id,"
         " platform, left_at_ms, since_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
        {&w->sess_del, "DELETE FROM recovery_sessions WHERE pid = ?1"},
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
        sqlite3_finalize(sqlite_be(st)->ws.all[i]);
        sqlite_be(st)->ws.all[i] = NULL;
    }
}

/* Closes every active row (see close_active's SQL): when is a database time text; force is
 * true at shutdown (the session lasted until now), false after a crash (only a heartbeat
 * later than the connection bounds it). Adds the durations to the totals. */
static int close_active_rows(store *st, const char *when, bool force)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.close_active;
    bind_cstr(s, 1, when);
    sqlite3_bind_int(s, 2, force);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (sqlite3_column_type(s, 0) != SQLITE_NULL)
            store_tot_close(&st->tot, sqlite3_column_int64(s, 0));
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- writes ---------------------------------------------------------------------------- */

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
        if (sqlite3_get_autocommit(sqlite_be(st)->wdb))
            return -1;
        store_item_failed(st, it, sqlite3_errmsg(sqlite_be(st)->wdb));
        return 1;
    default:
        return -1;
    }
}

static int apply_open(store *st, struct item *it)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.conn_open;
    char ts[24], hour[20];
    util_format_db_time(it->at_ms, ts);
    if (it->num[0]) { /* reopen: the row of a recovered socket; a new one if there is none */
        sqlite3_stmt *u = sqlite_be(st)->ws.conn_reopen;
        bind_str(u, 1, it->s[0], it->len[0]);
        for (int i = 1; i <= 3; i++)
            bind_str(u, 2 + i, it->s[i], it->len[i]);
        int r = item_result(st, it, sqlite3_step(u));
        sqlite3_reset(u);
        if (r != 0 || sqlite3_changes(sqlite_be(st)->wdb) > 0)
            return r;
    }
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
    union wstmts *w = &sqlite_be(st)->ws;
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
            buf_reset(&sqlite_be(st)->scratch);
            if (sqlite3_column_type(w->conn_get, 0) != SQLITE_NULL) {
                old_null = false;
                if (buf_append(&sqlite_be(st)->scratch, sqlite3_column_text(w->conn_get, 0),
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
    const char *old = sqlite_be(st)->scratch.len ? sqlite_be(st)->scratch.data : "";
    if (!old_null && sqlite_be(st)->scratch.len == it->len[2] && memcmp(old, plat, it->len[2]) == 0)
        return 0;
    if (!old_null && store_agg_add(&st->conn_agg, hour, old, sqlite_be(st)->scratch.len, -1) < 0)
        return -1;
    return store_agg_add(&st->conn_agg, hour, plat, it->len[2], 1);
}

static int apply_transport(store *st, struct item *it)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.conn_transport;
    bind_str(s, 1, it->s[0], it->len[0]);
    bind_str(s, 2, it->s[1], it->len[1]);
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    return r;
}

static int apply_close(store *st, struct item *it)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.conn_close;
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
    if (r == 0 && it->num[0] >= 0 && sqlite3_changes(sqlite_be(st)->wdb) == 1)
        store_tot_close(&st->tot, it->num[0]);
    return r;
}

static int apply_message(store *st, struct item *it)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.msg_insert;
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
    it->id = sqlite3_last_insert_rowid(sqlite_be(st)->wdb);
    it->ok = true;
    st->tot.messages++;
    hour_of(ts, 23, hour);
    return store_agg_add(&st->msg_agg, hour, plat, plen, 1);
}

static int apply_session(store *st, struct item *it)
{
    union wstmts *w = &sqlite_be(st)->ws;
    if (it->num[2] == 2)
        return 0; /* expiry: the shared store's (store_sessions_expire) */
    sqlite3_stmt *s = it->num[2] ? w->sess_del : w->sess_save;
    bind_str(s, 1, it->s[0], it->len[0]);
    if (!it->num[2]) {
        bind_str(s, 2, st->node_id, strlen(st->node_id));
        for (int i = 1; i < 5; i++)
            if (it->s[i])
                bind_str(s, i + 2, it->s[i], it->len[i]);
        if (it->num[0] >= 0)
            sqlite3_bind_int64(s, 7, it->num[0]);
        sqlite3_bind_int64(s, 8, it->num[1]);
    }
    int r = item_result(st, it, sqlite3_step(s));
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return r;
}

/* At open: this node's connected sessions were cut by the stop or crash before; they are
 * loaded, with the newest message id, for the recovery to take (store_sessions_loaded). */
static int load_sessions(store *st, char **err)
{
    sqlite3 *db = sqlite_be(st)->wdb;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "UPDATE recovery_sessions SET left_at_ms = ?1"
                               " WHERE left_at_ms IS NULL AND node_id = ?2", -1, &s, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_int64(s, 1, util_wall_ms());
    bind_str(s, 2, st->node_id, strlen(st->node_id));
    if (sqlite3_step(s) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db, "SELECT pid, socket_id, rooms, user_id, platform, left_at_ms,"
                               " since_id FROM recovery_sessions WHERE node_id = ?1 ORDER BY rowid",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    bind_str(s, 1, st->node_id, strlen(st->node_id));
    struct item **tail = &st->sessions;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *v[5];
        for (int i = 0; i < 5; i++)
            v[i] = (const char *)sqlite3_column_text(s, i);
        struct item *it = store_session_item(v, sqlite3_column_int64(s, 5), sqlite3_column_int64(s, 6));
        if (!it)
            goto fail;
        *tail = it;
        tail = &it->next;
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM messages", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto fail;
    st->sessions_newest = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return 0;
fail:
    set_err(err, "cannot load the recovery sessions", sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return -1;
}

static int sq_apply(store *st, struct item *it)
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
    case K_STATUS:
        /* Only the newest heartbeat of a transaction is worth writing. */
        memcpy(st->status_num, it->num, sizeof st->status_num);
        snprintf(st->status_laravel, sizeof st->status_laravel, "%s", it->s[0] ? it->s[0] : "");
        st->status_set = true;
        return 0;
    case K_QUERY:
    case K_CLAIM:
        break;
    }
    return 1;
}

/* ---- counters ---------------------------------------------------------------------- */

/* Writes one counter table's sums: one upsert per key, then deletes rows a decrement brought
 * to zero, so the table holds exactly the groups a GROUP BY over the rows would give. */
static int flush_agg(struct agg *a, sqlite3_stmt *add, sqlite3_stmt *prune)
{
    for (size_t i = 0; i < a->n; i++) {
        struct agg_entry *e = &a->e[i];
        if (e->delta == 0)
            continue;
        const char *p = store_agg_plat(a, e);
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
static int sq_flush(store *st)
{
    union wstmts *w = &sqlite_be(st)->ws;
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
        if (st->status_laravel[0])
            sqlite3_bind_text(w->status, 5, st->status_laravel, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(w->status, 5);
        if (run_stmt(w->status) != SQLITE_DONE)
            return -1;
    }
    return 0;
}


/* ---- transactions ------------------------------------------------------------------------ */

static bool sq_ready(store *st)
{
    return true;
}

static int sq_begin(store *st)
{
    return run_stmt(sqlite_be(st)->ws.begin) == SQLITE_DONE ? 0 : -1;
}

static int sq_commit(store *st)
{
    return run_stmt(sqlite_be(st)->ws.commit) == SQLITE_DONE ? 0 : -1;
}

static void sq_rollback(store *st)
{
    struct sqlite_be *b = sqlite_be(st);
    if (!sqlite3_get_autocommit(b->wdb))
        run_stmt(b->ws.rollback);
}

static void sq_txn_reset(store *st)
{
    union wstmts *w = &sqlite_be(st)->ws;
    for (size_t i = 0; i < WSTMT_COUNT; i++)
        if (w->all[i])
            sqlite3_clear_bindings(w->all[i]);
}

static const char *sq_errmsg(store *st)
{
    return sqlite3_errmsg(sqlite_be(st)->wdb);
}

static int sq_retention(store *st, const char *cutoff, int limit, int64_t *deleted)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.retention;
    sqlite3_bind_text(s, 1, cutoff, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, limit);
    int rc;
    *deleted = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char hour[20];
        (*deleted)++;
        const char *ct = (const char *)sqlite3_column_text(s, 0);
        if (!hour_of(ct, (size_t)sqlite3_column_bytes(s, 0), hour) ||
            sqlite3_column_type(s, 1) == SQLITE_NULL)
            continue; /* a row no counter group held */
        if (store_agg_add(&st->msg_agg, hour, (const char *)sqlite3_column_text(s, 1),
                          (size_t)sqlite3_column_bytes(s, 1), -1) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : -1;
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

static int sq_close_active(store *st, bool at_stop)
{
    char when[64];
    if (at_stop) {
        util_format_db_time(st->stop_ms, when);
        return close_active_rows(st, when, true);
    }
    bool have_hb = last_heartbeat(sqlite_be(st)->wdb, when);
    return close_active_rows(st, have_hb ? when : NULL, false);
}

static int sq_mark_started(store *st)
{
    sqlite3 *db = sqlite_be(st)->wdb;
    sqlite3_stmt *ds = NULL;
    char now[24];
    util_format_db_time(util_wall_ms(), now);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO daemon_status(id, pid, version, started_at, updated_at,"
                           " stopped_at, connections, messages_in, messages_out)"
                           " VALUES(1, ?1, ?2, ?3, ?3, NULL, 0, 0, 0)"
                           " ON CONFLICT(id) DO UPDATE SET pid = excluded.pid,"
                           " version = excluded.version, started_at = excluded.started_at,"
                           " updated_at = excluded.updated_at, stopped_at = NULL,"
                           " connections = 0, messages_in = 0, messages_out = 0",
                           -1, &ds, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(ds, 1, (sqlite3_int64)getpid());
    sqlite3_bind_text(ds, 2, PACKAGE_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(ds, 3, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(ds);
    sqlite3_finalize(ds);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_mark_stopped(store *st)
{
    sqlite3_stmt *s = sqlite_be(st)->ws.stopped;
    char now[24];
    util_format_db_time(st->stop_ms, now);
    bind_cstr(s, 1, now);
    return run_stmt(s) == SQLITE_DONE ? 0 : -1;
}

/* SQLite's page cache is clean after the commit: give it back. */
static void sq_idle(store *st)
{
    sqlite3_db_release_memory(sqlite_be(st)->wdb);
}

/* ---- history pages (reader thread) ----------------------------------------------------- */

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

static void sq_query(store *st, struct item *it)
{
    buf *b = &it->out;
    if (it->kind == K_CLAIM) { /* one node: its sessions were loaded at open */
        it->ok = buf_puts(b, "null") == 0 && buf_terminate(b) == 0;
        return;
    }
    int64_t limit = it->num[0];
    int64_t before = it->num[1] > 0 ? it->num[1] : INT64_MAX;
    if (buf_putc(b, '[') < 0)
        goto oom;
    if (limit > 0) {
        sqlite3_stmt *s = it->s[0] ? sqlite_be(st)->q_room : sqlite_be(st)->q_null;
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
            it->err = dup_str(rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(sqlite_be(st)->rdb));
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


static int prepare_reader(store *st, char **err)
{
    /* createdAt is converted by SQLite, which reads every time form it understands. */
#define QCOLS                                                                                      \
    "SELECT id, socket_id, sender, message_text, platform, room,"                                  \
    " strftime('%Y-%m-%dT%H:%M:%fZ', created_at) FROM messages WHERE "
    if (prepare(sqlite_be(st)->rdb, &sqlite_be(st)->q_room, QCOLS "room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0 ||
        prepare(sqlite_be(st)->rdb, &sqlite_be(st)->q_null, QCOLS "room IS NULL AND id < ?2 ORDER BY id DESC LIMIT ?3",
                err) < 0)
        return -1;
#undef QCOLS
    return 0;
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

static int sq_open(store *st, const struct store_config *cfg, char **err)
{
    struct sqlite_be *b = calloc(1, sizeof *b);
    if (!b) {
        set_err(err, "out of memory", NULL);
        return -1;
    }
    st->bs = b;
    if (open_db(cfg->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &b->wdb, err) < 0 ||
        set_wal(b->wdb, err) < 0 ||
        exec_sql(b->wdb, cfg->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                 err) < 0 ||
        /* messages.socket_id references connections, but every connection row goes through
         * the same queue ahead of its messages; checking it per row would only cost. */
        exec_sql(b->wdb, "PRAGMA foreign_keys=OFF", err) < 0 ||
        /* A larger page cache keeps the five message indexes' hot pages in memory. */
        exec_sql(b->wdb, "PRAGMA cache_size=-32768", err) < 0 ||
        /* checkpoints are the checkpointer thread's job (see store_checkpointer_main) */
        exec_sql(b->wdb, "PRAGMA wal_autocheckpoint=0", err) < 0 ||
        exec_sql(b->wdb, "PRAGMA journal_size_limit=" WAL_SIZE_LIMIT_STR, err) < 0 ||
        migrate_apply(b->wdb, err) < 0 || prepare_writer(st, err) < 0 ||
        store_startup_txn(st, err) < 0 || load_sessions(st, err) < 0)
        return -1;
    if (open_db(cfg->path, SQLITE_OPEN_READONLY, &b->rdb, err) < 0 || prepare_reader(st, err) < 0)
        return -1;
    /* A connection opens the WAL on its first read; until then a checkpoint from it does
     * nothing at all (and reports an empty WAL), so the checkpointer reads once here. */
    if (open_db(cfg->path, SQLITE_OPEN_READWRITE, &b->cdb, err) < 0 ||
        exec_sql(b->cdb, "SELECT count(*) FROM sqlite_schema", err) < 0)
        return -1;
    sqlite3_wal_hook(b->wdb, store_wal_hook, st);
    return 0;
}

static void sq_free(store *st)
{
    struct sqlite_be *b = sqlite_be(st);
    if (!b)
        return;
    finalize_writer(st);
    sqlite3_finalize(b->q_room);
    sqlite3_finalize(b->q_null);
    sqlite3_close(b->rdb);
    sqlite3_close(b->cdb);
    sqlite3_close(b->wdb); /* the last connection: it checkpoints and removes the WAL */
    buf_free(&b->scratch);
    free(b);
    st->bs = NULL;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sq_open,
    .ready = sq_ready,
    .begin = sq_begin,
    .apply = sq_apply,
    .flush = sq_flush,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .txn_reset = sq_txn_reset,
    .errmsg = sq_errmsg,
    .retention = sq_retention,
    .close_active = sq_close_active,
    .mark_started = sq_mark_started,
    .mark_stopped = sq_mark_stopped,
    .idle = sq_idle,
    .query = sq_query,
    .helper_main = store_checkpointer_main,
    .free = sq_free,
};

/* ---- backup ----------------------------------------------------------------------------- */

int store_sqlite_backup(const char *src_path, const char *dest_path, char **err)
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
