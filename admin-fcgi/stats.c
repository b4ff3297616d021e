/* stats.c: the dashboard's queries (see stats.h). Every query here reads a counter table, a
 * handful of rows, or an index; EXPLAIN QUERY PLAN shows no scan of messages. */
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

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, char **err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    return 0;
}

static int finish(sqlite3 *db, sqlite3_stmt *st, int rc, const char *what, char **err)
{
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        *err = admin_db_err(db, what);
        return -1;
    }
    return 0;
}

static void copy_text(char *dst, size_t n, const unsigned char *src)
{
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

/* Platforms by count, largest first; past STATS_PLATFORMS the rest go to "other". */
static int load_platforms(sqlite3 *db, const char *table, struct stats_platform *out, int *n,
                          char **err)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT platform, SUM(count) AS c FROM %s GROUP BY platform ORDER BY c DESC, "
             "platform",
             table);
    sqlite3_stmt *st;
    if (prep(db, sql, &st, err) < 0)
        return -1;
    int rc;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long v = sqlite3_column_int64(st, 1);
        if (*n < STATS_PLATFORMS) {
            copy_text(out[*n].name, sizeof out[*n].name, sqlite3_column_text(st, 0));
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

static int load_totals(sqlite3 *db, struct stats *s, char **err)
{
    sqlite3_stmt *st;
    if (prep(db, "SELECT name, value FROM totals", &st, err) < 0)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        long long v = sqlite3_column_int64(st, 1);
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

static int load_int(sqlite3 *db, const char *sql, long long *out, char **err)
{
    sqlite3_stmt *st;
    if (prep(db, sql, &st, err) < 0)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    return finish(db, st, rc, sql, err);
}

static int load_series(sqlite3 *db, int64_t now_ms, struct stats *s, char **err)
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

    sqlite3_stmt *st;
    if (prep(db, "SELECT hour, SUM(count) FROM message_counts WHERE hour >= ?1 GROUP BY hour", &st,
             err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, s->hour_label[0], -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; h && i < STATS_HOURS; i++)
            if (strncmp(h, s->hour_label[i], 13) == 0)
                s->per_hour[i] += sqlite3_column_int64(st, 1);
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
    sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 0);
        for (int i = 0; d && i < STATS_DAYS; i++)
            if (strcmp(d, s->day_label[i]) == 0)
                s->per_day[i] = sqlite3_column_int64(st, 1);
    }
    if (finish(db, st, rc, "messages per day", err) < 0)
        return -1;
    s->messages_today = s->per_day[STATS_DAYS - 1];
    return 0;
}

static int load_daemon(sqlite3 *db, int64_t now_ms, struct stats *s, char **err)
{
    sqlite3_stmt *st;
    if (prep(db,
             "SELECT pid, version, started_at, updated_at, stopped_at, connections, "
             "messages_in, messages_out FROM daemon_status WHERE id = 1",
             &st, err) < 0)
        return -1;
    int rc = sqlite3_step(st);
    s->health = STATS_NEVER;
    if (rc == SQLITE_ROW) {
        s->pid = sqlite3_column_int64(st, 0);
        copy_text(s->version, sizeof s->version, sqlite3_column_text(st, 1));
        copy_text(s->started_at, sizeof s->started_at, sqlite3_column_text(st, 2));
        copy_text(s->updated_at, sizeof s->updated_at, sqlite3_column_text(st, 3));
        copy_text(s->stopped_at, sizeof s->stopped_at, sqlite3_column_text(st, 4));
        s->d_connections = sqlite3_column_int64(st, 5);
        s->d_messages_in = sqlite3_column_int64(st, 6);
        s->d_messages_out = sqlite3_column_int64(st, 7);
        int64_t upd;
        bool have_upd = util_parse_ts(s->updated_at, &upd, NULL) == 0;
        s->heartbeat_age_ms = have_upd ? now_ms - upd : -1;
        if (s->stopped_at[0])
            s->health = STATS_STOPPED;
        else if (have_upd && s->heartbeat_age_ms < STATS_HEALTHY_MS)
            s->health = STATS_RUNNING;
        else
            s->health = STATS_NOT_RESPONDING;
        rc = SQLITE_DONE;
    }
    return finish(db, st, rc, "daemon_status", err);
}

int stats_load(sqlite3 *ro, int64_t now_ms, struct stats *s, char **err)
{
    memset(s, 0, sizeof *s);
    *err = NULL;
    util_format_ts(now_ms, s->generated_at);
    if (sqlite3_exec(ro, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
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
        load_int(ro, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                 &s->db_bytes, err) < 0)
        rc = -1;
    sqlite3_exec(ro, "COMMIT", NULL, NULL, NULL);
    return rc;
}
