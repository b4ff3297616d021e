/* stats.c: the dashboard's queries (see stats.h). Every query here reads a counter table, a
 * handful of rows, or an index; EXPLAIN QUERY PLAN (SQLite) and EXPLAIN (PostgreSQL) show no
 * scan of messages. The SQL is the same on both backends but for daemon_status (one row on
 * SQLite, one per node on PostgreSQL) and the database's size. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/admin.h"
#include "admin-fcgi/stats.h"

const char *stats_health_name(enum stats_health h)
{
    switch (h) {
    case STATS_RUNNING:
        return "running";
    case STATS_STOPPED:
        return "stopped";
    case STATS_NOT_RESPONDING:
        return "not responding";
    default:
        return "never started";
    }
}

static int prep(struct dbi *db, const char *sql, struct dbi_stmt **st, char **err)
{
    if (dbi_prepare(db, sql, st) != 0) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    return 0;
}

static int finish(struct dbi *db, struct dbi_stmt *st, int rc, const char *what, char **err)
{
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, what);
        dbi_finalize(st);
        return -1;
    }
    dbi_finalize(st);
    return 0;
}

static void copy_text(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Platforms by count, largest first; past STATS_PLATFORMS the rest go to "other". */
static int load_platforms(struct dbi *db, const char *table, struct stats_platform *out, int *n,
                          char **err)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT platform, SUM(count) AS c FROM %s GROUP BY platform ORDER BY c DESC, "
             "platform",
             table);
    struct dbi_stmt *st;
    if (prep(db, sql, &st, err) < 0)
        return -1;
    int rc;
    *n = 0;
    while ((rc = dbi_step(st)) == DBI_ROW) {
        long long v = dbi_column_int64(st, 1);
        if (*n < STATS_PLATFORMS) {
            copy_text(out[*n].name, sizeof out[*n].name, dbi_column_text(st, 0));
            out[*n].count = v;
            (*n)++;
        } else {
            if (*n == STATS_PLATFORMS) {
                snprintf(out[*n].name, sizeof out[*n].name, "other");
                out[*n].count = 0;
                (*n)++;
            }
            out[STATS_PLATFORMS].count += v;
        }
    }
    return finish(db, st, rc, table, err);
}

static int load_totals(struct dbi *db, struct stats *s, char **err)
{
    struct dbi_stmt *st;
    if (prep(db, "SELECT name, value FROM totals", &st, err) < 0)
        return -1;
    int rc;
    while ((rc = dbi_step(st)) == DBI_ROW) {
        const char *name = dbi_column_text(st, 0);
        long long v = dbi_column_int64(st, 1);
        if (!name)
            continue;
        if (strcmp(name, "connections_total") == 0)
            s->connections_total = v;
        else if (strcmp(name, "messages_total") == 0)
            s->messages_total = v;
        else if (strcmp(name, "sessions_closed") == 0)
            s->sessions_closed = v;
        else if (strcmp(name, "session_ms_total") == 0)
            s->session_ms_total = v;
        else if (strcmp(name, "session_ms_max") == 0)
            s->session_ms_max = v;
    }
    if (finish(db, st, rc, "totals", err) < 0)
        return -1;
    s->session_ms_avg = s->sessions_closed ? s->session_ms_total / s->sessions_closed : 0;
    return 0;
}

static int load_int(struct dbi *db, const char *sql, long long *out, char **err)
{
    struct dbi_stmt *st;
    if (prep(db, sql, &st, err) < 0)
        return -1;
    int rc = dbi_step(st);
    if (rc == DBI_ROW) {
        *out = dbi_column_int64(st, 0);
        rc = DBI_DONE;
    }
    return finish(db, st, rc, sql, err);
}

static int load_series(struct dbi *db, int64_t now_ms, struct stats *s, char **err)
{
    /* Labels first: the last 24 hours and 30 days ending with the current ones. */
    int64_t hour_ms = now_ms - now_ms % 3600000;
    int64_t day_ms = now_ms - now_ms % 86400000;
    char ts[UTIL_TS_LEN];
    for (int i = 0; i < STATS_HOURS; i++) {
        util_format_ts(hour_ms - (int64_t)(STATS_HOURS - 1 - i) * 3600000, ts);
        snprintf(s->hour_label[i], sizeof s->hour_label[i], "%.13s:00:00", ts);
    }
    for (int i = 0; i < STATS_DAYS; i++) {
        util_format_ts(day_ms - (int64_t)(STATS_DAYS - 1 - i) * 86400000, ts);
        snprintf(s->day_label[i], sizeof s->day_label[i], "%.10s", ts);
    }

    struct dbi_stmt *st;
    if (prep(db, "SELECT hour, SUM(count) FROM message_counts WHERE hour >= ?1 GROUP BY hour", &st,
             err) < 0)
        return -1;
    dbi_bind_text(st, 1, s->hour_label[0]);
    int rc;
    while ((rc = dbi_step(st)) == DBI_ROW) {
        const char *h = dbi_column_text(st, 0);
        for (int i = 0; h && i < STATS_HOURS; i++)
            if (strncmp(h, s->hour_label[i], 13) == 0)
                s->per_hour[i] += dbi_column_int64(st, 1);
    }
    if (finish(db, st, rc, "messages per hour", err) < 0)
        return -1;

    char from[24];
    snprintf(from, sizeof from, "%s 00:00:00", s->day_label[0]);
    if (prep(db,
             "SELECT substr(hour, 1, 10) AS d, SUM(count) FROM message_counts "
             "WHERE hour >= ?1 GROUP BY d",
             &st, err) < 0)
        return -1;
    dbi_bind_text(st, 1, from);
    while ((rc = dbi_step(st)) == DBI_ROW) {
        const char *d = dbi_column_text(st, 0);
        for (int i = 0; d && i < STATS_DAYS; i++)
            if (strcmp(d, s->day_label[i]) == 0)
                s->per_day[i] = dbi_column_int64(st, 1);
    }
    if (finish(db, st, rc, "messages per day", err) < 0)
        return -1;
    s->messages_today = s->per_day[STATS_DAYS - 1];
    return 0;
}

static enum stats_health node_health(const struct stats_node *n, int64_t now_ms,
                                     long long *age)
{
    int64_t upd;
    bool have_upd = util_parse_ts(n->updated_at, &upd, NULL) == 0;
    *age = have_upd ? now_ms - upd : -1;
    if (n->stopped_at[0])
        return STATS_STOPPED;
    if (have_upd && *age < STATS_HEALTHY_MS)
        return STATS_RUNNING;
    return STATS_NOT_RESPONDING;
}

/* Every node's row; the summary is the node heard from last, with the sums of all. */
static int load_daemon(struct dbi *db, int64_t now_ms, struct stats *s, char **err)
{
    static const char sqlite_sql[] =
        "SELECT 'local', pid, version, started_at, updated_at, stopped_at, connections, "
        "messages_in, messages_out, laravel IS NOT NULL, json_extract(laravel, '$.broadcasts'), "
        "json_extract(laravel, '$.deliveries') FROM daemon_status WHERE id = 1";
    static const char pg_sql[] =
        "SELECT node_id, pid, version, started_at, updated_at, stopped_at, connections, "
        "messages_in, messages_out, laravel IS NOT NULL, (laravel::json->>'broadcasts')::bigint, "
        "(laravel::json->>'deliveries')::bigint FROM daemon_status ORDER BY node_id";
    struct dbi_stmt *st;
    if (prep(db, dbi_kind(db) == DBI_PG ? pg_sql : sqlite_sql, &st, err) < 0)
        return -1;
    int rc;
    s->health = STATS_NEVER;
    int last = -1;
    while ((rc = dbi_step(st)) == DBI_ROW) {
        if (s->n_nodes == STATS_NODES)
            continue;
        struct stats_node *n = &s->nodes[s->n_nodes];
        copy_text(n->node_id, sizeof n->node_id, dbi_column_text(st, 0));
        n->pid = dbi_column_int64(st, 1);
        copy_text(n->version, sizeof n->version, dbi_column_text(st, 2));
        copy_text(n->started_at, sizeof n->started_at, dbi_column_text(st, 3));
        copy_text(n->updated_at, sizeof n->updated_at, dbi_column_text(st, 4));
        copy_text(n->stopped_at, sizeof n->stopped_at, dbi_column_text(st, 5));
        n->connections = dbi_column_int64(st, 6);
        n->messages_in = dbi_column_int64(st, 7);
        n->messages_out = dbi_column_int64(st, 8);
        n->health = node_health(n, now_ms, &n->heartbeat_age_ms);
        s->d_connections += n->connections;
        s->d_messages_in += n->messages_in;
        s->d_messages_out += n->messages_out;
        if (dbi_column_int64(st, 9)) {
            s->laravel_nodes++;
            s->laravel_broadcasts += dbi_column_int64(st, 10);
            s->laravel_deliveries += dbi_column_int64(st, 11);
        }
        /* 'YYYY-MM-DD HH:MM:SS.SSS' sorts as time */
        if (last < 0 || strcmp(n->updated_at, s->nodes[last].updated_at) > 0)
            last = s->n_nodes;
        s->n_nodes++;
    }
    if (last >= 0) {
        const struct stats_node *n = &s->nodes[last];
        s->pid = n->pid;
        memcpy(s->version, n->version, sizeof s->version);
        memcpy(s->started_at, n->started_at, sizeof s->started_at);
        memcpy(s->updated_at, n->updated_at, sizeof s->updated_at);
        memcpy(s->stopped_at, n->stopped_at, sizeof s->stopped_at);
        s->heartbeat_age_ms = n->heartbeat_age_ms;
        s->health = n->health;
    }
    return finish(db, st, rc, "daemon_status", err);
}

int stats_load(struct dbi *ro, int64_t now_ms, struct stats *s, char **err)
{
    memset(s, 0, sizeof *s);
    *err = NULL;
    util_format_ts(now_ms, s->generated_at);
    if (dbi_begin_read(ro) != 0) {
        *err = admin_db_err(ro, "BEGIN");
        return -1;
    }
    int rc = 0;
    if (load_totals(ro, s, err) < 0 ||
        load_int(ro, "SELECT COUNT(*) FROM connections WHERE status = 'active'",
                 &s->connections_active, err) < 0 ||
        load_platforms(ro, "connection_counts", s->conn_platforms, &s->n_conn_platforms, err) < 0 ||
        load_platforms(ro, "message_counts", s->msg_platforms, &s->n_msg_platforms, err) < 0 ||
        load_series(ro, now_ms, s, err) < 0 || load_daemon(ro, now_ms, s, err) < 0 ||
        load_int(ro,
                 dbi_kind(ro) == DBI_PG
                     ? "SELECT pg_database_size(current_database())"
                     : "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                 &s->db_bytes, err) < 0)
        rc = -1;
    if (rc < 0)
        dbi_rollback(ro);
    else
        dbi_commit(ro);
    return rc;
}
