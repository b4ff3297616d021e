/* dbfill.c: rows and counters as rtd writes them (see dbfill.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/migrate.h"
#include "tools/dbfill.h"

enum {
    S_CONN_INSERT,
    S_CONN_COUNT,
    S_TOTAL_ADD,
    S_TOTAL_MAX,
    S_CONN_GET,
    S_CONN_IDENTIFY,
    S_CONN_CLOSE,
    S_MSG_INSERT,
    S_MSG_COUNT,
    S_STATUS,
    S_COUNT
};

static const char *const sqls[S_COUNT] = {
    [S_CONN_INSERT] = "INSERT INTO connections(socket_id, platform, user_id, connected_at, "
                      "created_at, status, transport, remote_addr, user_agent, last_seen_at, "
                      "disconnected_at, duration_ms) "
                      "VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?4, ?9, ?10)",
    [S_CONN_COUNT] = "INSERT INTO connection_counts(hour, platform, count) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT(hour, platform) DO UPDATE SET count = count + excluded.count",
    [S_TOTAL_ADD] = "UPDATE totals SET value = value + ?2 WHERE name = ?1",
    [S_TOTAL_MAX] = "UPDATE totals SET value = max(value, ?2) WHERE name = ?1",
    [S_CONN_GET] = "SELECT platform, connected_at, status FROM connections WHERE socket_id = ?1",
    [S_CONN_IDENTIFY] = "UPDATE connections SET platform = ?2, user_id = coalesce(?3, user_id), "
                        "app_version = coalesce(?4, app_version) WHERE socket_id = ?1",
    [S_CONN_CLOSE] = "UPDATE connections SET status = 'disconnected', disconnected_at = ?2, "
                     "duration_ms = ?3, last_seen_at = ?2 WHERE socket_id = ?1",
    [S_MSG_INSERT] = "INSERT INTO messages(socket_id, sender, message_text, platform, "
                     "created_at, room) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_MSG_COUNT] = "INSERT INTO message_counts(hour, platform, count) VALUES (?1, ?2, 1) "
                    "ON CONFLICT(hour, platform) DO UPDATE SET count = count + 1",
    [S_STATUS] = "INSERT OR REPLACE INTO daemon_status(id, pid, version, started_at, updated_at, "
                 "stopped_at, connections, messages_in, messages_out) "
                 "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
};

struct dbfill {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int depth; /* inside dbfill_begin */
};

static char *err_of(sqlite3 *db, const char *what)
{
    const char *m = sqlite3_errmsg(db);
    size_t n = strlen(what) + strlen(m) + 3;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "%s: %s", what, m);
    return e;
}

static void fmt_ts(int64_t ms, char out[24])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    memcpy(out, buf, 23);
    out[23] = '\0';
}

static void hour_of(const char *ts, char out[20])
{
    snprintf(out, 20, "%.13s:00:00", ts);
}

static int64_t parse_ms(const char *ts)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0;
    if (!ts || sscanf(ts, "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

int dbfill_open(sqlite3 *db, struct dbfill **out, char **err)
{
    *err = NULL;
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    if (migrate_apply(db, err) < 0)
        return -1;
    struct dbfill *f = calloc(1, sizeof *f);
    if (!f) {
        *err = strdup("out of memory");
        return -1;
    }
    f->db = db;
    for (int i = 0; i < S_COUNT; i++)
        if (sqlite3_prepare_v2(db, sqls[i], -1, &f->st[i], NULL) != SQLITE_OK) {
            *err = err_of(db, sqls[i]);
            dbfill_close(f);
            return -1;
        }
    *out = f;
    return 0;
}

void dbfill_close(struct dbfill *f)
{
    if (!f)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(f->st[i]);
    free(f);
}

int dbfill_begin(struct dbfill *f, char **err)
{
    if (f->depth++ == 0 && sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        f->depth = 0;
        *err = err_of(f->db, "BEGIN");
        return -1;
    }
    return 0;
}

int dbfill_commit(struct dbfill *f, char **err)
{
    if (f->depth > 0 && --f->depth == 0 &&
        sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        *err = err_of(f->db, "COMMIT");
        sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void rollback(struct dbfill *f)
{
    if (f->depth > 0) {
        f->depth = 0;
        sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* Runs a prepared statement once; returns 0 or -1 and *err. */
static int run(struct dbfill *f, int which, char **err)
{
    sqlite3_stmt *st = f->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        *err = err_of(f->db, sqls[which]);
        return -1;
    }
    return 0;
}

static void text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int total_add(struct dbfill *f, const char *name, int64_t v, char **err)
{
    text(f->st[S_TOTAL_ADD], 1, name);
    sqlite3_bind_int64(f->st[S_TOTAL_ADD], 2, v);
    return run(f, S_TOTAL_ADD, err);
}

static int conn_count(struct dbfill *f, const char *hour, const char *platform, int delta,
                      char **err)
{
    sqlite3_stmt *st = f->st[S_CONN_COUNT];
    text(st, 1, hour);
    text(st, 2, platform);
    sqlite3_bind_int(st, 3, delta);
    return run(f, S_CONN_COUNT, err);
}

/* Inserts a connection row in its final state (status active when closed_ms is 0). */
static int insert_connection(struct dbfill *f, const char *socket_id, const char *platform,
                             const char *user_id, const char *transport, const char *addr,
                             const char *ua, int64_t at_ms, int64_t closed_ms, char **err)
{
    char ts[24], hour[20], closed[24];
    fmt_ts(at_ms, ts);
    hour_of(ts, hour);
    if (!platform)
        platform = "unknown";
    sqlite3_stmt *st = f->st[S_CONN_INSERT];
    text(st, 1, socket_id);
    text(st, 2, platform);
    text(st, 3, user_id);
    text(st, 4, ts);
    text(st, 5, closed_ms ? "disconnected" : "active");
    text(st, 6, transport);
    text(st, 7, addr);
    text(st, 8, ua);
    if (closed_ms) {
        fmt_ts(closed_ms, closed);
        text(st, 9, closed);
        sqlite3_bind_int64(st, 10, closed_ms - at_ms);
    }
    if (run(f, S_CONN_INSERT, err) < 0 || conn_count(f, hour, platform, 1, err) < 0 ||
        total_add(f, "connections_total", 1, err) < 0)
        return -1;
    if (closed_ms) {
        if (total_add(f, "sessions_closed", 1, err) < 0 ||
            total_add(f, "session_ms_total", closed_ms - at_ms, err) < 0)
            return -1;
        text(f->st[S_TOTAL_MAX], 1, "session_ms_max");
        sqlite3_bind_int64(f->st[S_TOTAL_MAX], 2, closed_ms - at_ms);
        if (run(f, S_TOTAL_MAX, err) < 0)
            return -1;
    }
    return 0;
}

int dbfill_connect(struct dbfill *f, const char *socket_id, const char *platform,
                   const char *user_id, const char *transport, const char *remote_addr,
                   const char *user_agent, int64_t at_ms, char **err)
{
    *err = NULL;
    if (dbfill_begin(f, err) < 0)
        return -1;
    if (insert_connection(f, socket_id, platform, user_id, transport, remote_addr, user_agent,
                          at_ms, 0, err) < 0) {
        rollback(f);
        return -1;
    }
    return dbfill_commit(f, err);
}

/* Reads a connection's platform and connected_at into caller buffers. */
static int get_conn(struct dbfill *f, const char *socket_id, char platform[64], char connected[24],
                    char status[24], char **err)
{
    sqlite3_stmt *st = f->st[S_CONN_GET];
    text(st, 1, socket_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(platform, 64, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(connected, 24, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(status, 24, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW) {
        *err = strdup(rc == SQLITE_DONE ? "no such connection" : sqlite3_errmsg(f->db));
        return -1;
    }
    return 0;
}

int dbfill_identify(struct dbfill *f, const char *socket_id, const char *platform,
                    const char *user_id, const char *app_version, char **err)
{
    *err = NULL;
    char old[64], connected[24], status[24], hour[20];
    if (dbfill_begin(f, err) < 0)
        return -1;
    if (get_conn(f, socket_id, old, connected, status, err) < 0)
        goto fail;
    hour_of(connected, hour);
    sqlite3_stmt *st = f->st[S_CONN_IDENTIFY];
    text(st, 1, socket_id);
    text(st, 2, platform);
    text(st, 3, user_id);
    text(st, 4, app_version);
    if (run(f, S_CONN_IDENTIFY, err) < 0)
        goto fail;
    if (strcmp(old, platform) != 0 &&
        (conn_count(f, hour, old, -1, err) < 0 || conn_count(f, hour, platform, 1, err) < 0))
        goto fail;
    return dbfill_commit(f, err);
fail:
    rollback(f);
    return -1;
}

int dbfill_disconnect(struct dbfill *f, const char *socket_id, int64_t at_ms, char **err)
{
    *err = NULL;
    char platform[64], connected[24], status[24], ts[24];
    if (dbfill_begin(f, err) < 0)
        return -1;
    if (get_conn(f, socket_id, platform, connected, status, err) < 0)
        goto fail;
    if (strcmp(status, "active") != 0)
        return dbfill_commit(f, err);
    int64_t dur = at_ms - parse_ms(connected);
    if (dur < 0)
        dur = 0;
    fmt_ts(at_ms, ts);
    sqlite3_stmt *st = f->st[S_CONN_CLOSE];
    text(st, 1, socket_id);
    text(st, 2, ts);
    sqlite3_bind_int64(st, 3, dur);
    if (run(f, S_CONN_CLOSE, err) < 0 || total_add(f, "sessions_closed", 1, err) < 0 ||
        total_add(f, "session_ms_total", dur, err) < 0)
        goto fail;
    text(f->st[S_TOTAL_MAX], 1, "session_ms_max");
    sqlite3_bind_int64(f->st[S_TOTAL_MAX], 2, dur);
    if (run(f, S_TOTAL_MAX, err) < 0)
        goto fail;
    return dbfill_commit(f, err);
fail:
    rollback(f);
    return -1;
}

static int insert_message(struct dbfill *f, const char *socket_id, const char *sender,
                          const char *msg, const char *platform, const char *room, int64_t at_ms,
                          int64_t *id, char **err)
{
    char ts[24], hour[20];
    fmt_ts(at_ms, ts);
    hour_of(ts, hour);
    if (!platform)
        platform = "web";
    sqlite3_stmt *st = f->st[S_MSG_INSERT];
    text(st, 1, socket_id);
    text(st, 2, sender);
    text(st, 3, msg);
    text(st, 4, platform);
    text(st, 5, ts);
    text(st, 6, room);
    if (run(f, S_MSG_INSERT, err) < 0)
        return -1;
    if (id)
        *id = sqlite3_last_insert_rowid(f->db);
    text(f->st[S_MSG_COUNT], 1, hour);
    text(f->st[S_MSG_COUNT], 2, platform);
    if (run(f, S_MSG_COUNT, err) < 0 || total_add(f, "messages_total", 1, err) < 0)
        return -1;
    return 0;
}

int dbfill_message(struct dbfill *f, const char *socket_id, const char *sender, const char *msg,
                   const char *platform, const char *room, int64_t at_ms, int64_t *id, char **err)
{
    *err = NULL;
    if (dbfill_begin(f, err) < 0)
        return -1;
    if (insert_message(f, socket_id, sender, msg, platform, room, at_ms, id, err) < 0) {
        rollback(f);
        return -1;
    }
    return dbfill_commit(f, err);
}

int dbfill_status(struct dbfill *f, long pid, const char *version, int64_t started_ms,
                  int64_t updated_ms, int64_t stopped_ms, long connections, long messages_in,
                  long messages_out, char **err)
{
    *err = NULL;
    char started[24], updated[24], stopped[24];
    fmt_ts(started_ms, started);
    fmt_ts(updated_ms, updated);
    sqlite3_stmt *st = f->st[S_STATUS];
    sqlite3_bind_int64(st, 1, pid);
    text(st, 2, version);
    text(st, 3, started);
    text(st, 4, updated);
    if (stopped_ms) {
        fmt_ts(stopped_ms, stopped);
        text(st, 5, stopped);
    }
    sqlite3_bind_int64(st, 6, connections);
    sqlite3_bind_int64(st, 7, messages_in);
    sqlite3_bind_int64(st, 8, messages_out);
    return run(f, S_STATUS, err);
}

/* ---- generated history ----------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift64*: reproducible across machines for a given seed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}

static const char *const words[] = {
    "hello",   "world",    "order",  "shipped",   "payment", "received", "ping",     "pong",
    "meeting", "tomorrow", "update", "available", "driver",  "arrived",  "ticket",   "closed",
    "new",     "message",  "from",   "the",       "app",     "server",   "deploy",   "finished",
    "invoice", "sent",     "please", "check",     "status",  "thanks",   "location", "changed",
    "battery", "low",      "ok",     "café",      "naïve",   "emoji 🚀",  "über",     "データ",
};

static const char *pick_platform(void)
{
    uint32_t r = rnd() % 100;
    return r < 40 ? "flutter" : r < 75 ? "web" : "laravel";
}

static const char *const agents[] = {
    "Dart/3.5 (dart:io) socket_io_client/3.0",
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 "
     "Safari/537.36"),
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "ElephantIO/4.0 PHP/8.3 (Laravel 11)",
};

int dbfill_generate(struct dbfill *f, long n_conn, long n_msg, int days, long active,
                    int64_t now_ms, unsigned seed, void (*progress)(long done, long total),
                    char **err)
{
    *err = NULL;
    rng_state = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)seed << 1 | 1);
    if (n_conn < 1)
        n_conn = 1;
    int64_t span = (int64_t)days * 86400000;
    int64_t start = now_ms - span;
    if (dbfill_begin(f, err) < 0)
        return -1;
    long next_conn = 0;
    char socket[32], user[32], room[32], addr[32], msg[256];
    const char *conn_platform[64];
    for (int i = 0; i < 64; i++)
        conn_platform[i] = "web";
    long total_events = n_msg > n_conn ? n_msg : n_conn;
    for (long j = 0; j < total_events; j++) {
        int64_t t = start + span * j / total_events;
        /* Connections that started by now, in time order. */
        while (next_conn < n_conn && start + span * next_conn / n_conn <= t) {
            int64_t at = start + span * next_conn / n_conn;
            int64_t closed = 0;
            if (next_conn < n_conn - active) {
                closed = at + 60000 + (int64_t)(rnd() % (3 * 3600)) * 1000;
                if (closed > now_ms)
                    closed = now_ms;
            }
            const char *platform = pick_platform();
            conn_platform[next_conn % 64] = platform;
            snprintf(socket, sizeof socket, "sock-%08ld", next_conn);
            snprintf(user, sizeof user, "user-%ld", next_conn % 2000);
            snprintf(addr, sizeof addr, "10.%u.%u.%u", rnd() % 256, rnd() % 256, rnd() % 256);
            if (insert_connection(f, socket, platform, user, rnd() % 5 ? "websocket" : "polling",
                                  addr, agents[rnd() % 4], at, closed, err) < 0)
                goto fail;
            next_conn++;
        }
        if (j >= n_msg)
            continue;
        long c = next_conn ? next_conn - 1 - (long)(rnd() % (next_conn < 64 ? next_conn : 64)) : 0;
        snprintf(socket, sizeof socket, "sock-%08ld", c);
        snprintf(user, sizeof user, "user-%ld", c % 2000);
        size_t len = 0;
        int nwords = 3 + (int)(rnd() % 14);
        for (int w = 0; w < nwords && len + 20 < sizeof msg; w++)
            len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s", w ? " " : "",
                                    words[rnd() % (sizeof words / sizeof words[0])]);
        const char *r = NULL;
        if (rnd() % 10 < 3) {
            snprintf(room, sizeof room, "room-%u", 1 + rnd() % 20);
            r = room;
        }
        if (insert_message(f, socket, user, msg, conn_platform[c % 64], r, t, NULL, err) < 0)
            goto fail;
        if (progress && (j + 1) % 100000 == 0)
            progress(j + 1, n_msg);
    }
    return dbfill_commit(f, err);
fail:
    rollback(f);
    return -1;
}
