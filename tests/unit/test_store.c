/* test_store.c: the store against real SQLite files in a fresh temporary directory.
 *
 * The loop really runs: completions only arrive through the store's wake hook, so every test
 * drives it with run_until() (a polling loop timer that stops the loop once a condition
 * holds or a deadline passes). Checks read the database through a second connection, which
 * sees only committed data: a row visible from inside an ack callback was committed first.
 * The counters are always compared with COUNT/SUM/MAX over the tables they summarise, plus a
 * few expected values so that counters and rows cannot be wrong in the same way. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/migrate.h"
#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store.h"
#include "tests/unit/store_harness.h"

#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* Everything a completion may write to is static or heap memory: if an assertion fails, the
 * test's frame is gone but the store still runs the callbacks (at the latest in teardown's
 * store_close), and the failure must stay a clean one. */
struct env {
    char dir[PATH_MAX];
    char path[PATH_MAX + 16];
    loop *l;
    store *st;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    snprintf(e->dir, sizeof e->dir, "%s/test_store.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->path, sizeof e->path, "%s/rtd.db", e->dir);
    e->l = loop_new(1024);
    if (!e->l)
        return -1;
    *state = e;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct env *e = *state;
    store_close(e->st);
    loop_free(e->l);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

static store *open_with(struct env *e, struct store_config cfg)
{
    char *err = NULL;
    cfg.path = e->path;
    store *st = store_open(&cfg, e->l, &err);
    if (!st)
        fail_msg("store_open: %s", err ? err : "(no message)");
    free(err);
    return st;
}

static store *open_default(struct env *e)
{
    struct store_config cfg = {0};
    return open_with(e, cfg);
}

static void reopen_store(struct env *e, struct store_config cfg)
{
    store_close(e->st);
    e->st = open_with(e, cfg);
}

static void wait_pending(struct env *e, int *pending)
{
    assert_true(run_until(e->l, int_is_zero, pending, 10000, 1));
}

static void queue_msg(struct env *e, struct ack *a, int *pending, const char *sid,
                      const char *sender, const char *text, const char *platform, const char *room,
                      int64_t at_ms)
{
    memset(a, 0, sizeof *a);
    a->pending = pending;
    assert_int_equal(
        store_message(e->st, sid, sender, text, strlen(text), platform, room, at_ms, on_ack, a), 0);
    (*pending)++;
}

/* Queues a message and waits until it (and so everything queued before it) is committed. */
static int64_t send_sync(struct env *e, const char *sid, const char *text, const char *platform,
                         const char *room, int64_t at_ms)
{
    static struct ack a;
    static int pending;
    pending = 0;
    queue_msg(e, &a, &pending, sid, "someone", text, platform, room, at_ms);
    wait_pending(e, &pending);
    assert_true(a.ok);
    return a.id;
}

/* ---- a second connection ---- */

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static sqlite3_stmt *q_prepare(sqlite3 *db, const char *sql, va_list ap)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    int n = sqlite3_bind_parameter_count(s);
    for (int i = 1; i <= n; i++) {
        const char *v = va_arg(ap, const char *);
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    }
    return s;
}

/* The first column of the first row as an integer (parameters are text, bound in order);
 * fails the test if there is no row. */
static int64_t q_int(sqlite3 *db, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    sqlite3_stmt *s = q_prepare(db, sql, ap);
    va_end(ap);
    if (sqlite3_step(s) != SQLITE_ROW)
        fail_msg("no row for %s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* The first column of the first row as text in out ("<null>" for NULL, "<none>" for no row). */
static const char *q_text(sqlite3 *db, char *out, size_t n, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    sqlite3_stmt *s = q_prepare(db, sql, ap);
    va_end(ap);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(s, 0));
    else if (rc == SQLITE_ROW)
        snprintf(out, n, "<null>");
    else if (rc == SQLITE_DONE)
        snprintf(out, n, "<none>");
    else
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return out;
}

static void q_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t total(sqlite3 *db, const char *name)
{
    return q_int(db, "SELECT value FROM totals WHERE name = ?", name);
}

/* Every counter equals what a scan of the tables gives. */
static void assert_counters_match(sqlite3 *db)
{
    /* Symmetric difference between a counter table and the GROUP BY it stands for. */
    static const char *const diff[] = {
        "WITH t AS (SELECT substr(created_at, 1, 13) || ':00:00' AS hour, platform,"
        " count(*) AS count FROM messages GROUP BY 1, 2)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM t EXCEPT"
        "  SELECT hour, platform, count FROM message_counts))"
        " + (SELECT count(*) FROM (SELECT hour, platform, count FROM message_counts"
        "  EXCEPT SELECT * FROM t))",
        "WITH t AS (SELECT substr(connected_at, 1, 13) || ':00:00' AS hour, platform,"
        " count(*) AS count FROM connections GROUP BY 1, 2)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM t EXCEPT"
        "  SELECT hour, platform, count FROM connection_counts))"
        " + (SELECT count(*) FROM (SELECT hour, platform, count FROM connection_counts"
        "  EXCEPT SELECT * FROM t))",
    };
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(q_int(db, diff[i]), 0);
    assert_int_equal(total(db, "connections_total"), q_int(db, "SELECT count(*) FROM connections"));
    assert_int_equal(total(db, "messages_total"), q_int(db, "SELECT count(*) FROM messages"));
    assert_int_equal(total(db, "sessions_closed"),
                     q_int(db, "SELECT count(duration_ms) FROM connections"));
    assert_int_equal(total(db, "session_ms_total"),
                     q_int(db, "SELECT coalesce(sum(duration_ms), 0) FROM connections"));
    assert_int_equal(total(db, "session_ms_max"),
                     q_int(db, "SELECT coalesce(max(duration_ms), 0) FROM connections"));
}

static void db_time(int64_t ms, char out[24])
{
    util_format_db_time(ms, out);
}

/* ---- tests ---- */

static void test_open_creates_schema(void **state)
{
    struct env *e = *state;
    char txt[256];
    e->st = open_default(e);
    assert_int_equal(access(e->path, F_OK), 0);

    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "PRAGMA user_version"), migrate_latest_version());
    assert_true(migrate_latest_version() >= 1);
    assert_string_equal(q_text(db, txt, sizeof txt, "PRAGMA journal_mode"), "wal");
    assert_int_equal(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name"
                               " IN ('connections', 'messages', 'message_counts',"
                               " 'connection_counts', 'totals', 'daemon_status')"),
                     6);
    assert_int_equal(q_int(db, "SELECT count(*) FROM totals WHERE value = 0"), 5);
    assert_int_equal(q_int(db, "SELECT pid FROM daemon_status WHERE id = 1"), getpid());
    assert_string_equal(q_text(db, txt, sizeof txt, "SELECT version FROM daemon_status"),
                        PACKAGE_VERSION);
    assert_string_equal(q_text(db, txt, sizeof txt, "SELECT stopped_at FROM daemon_status"),
                        "<null>");
    assert_int_equal(q_int(db, "SELECT started_at = updated_at AND length(started_at) = 23"
                               " FROM daemon_status"),
                     1);

    store_close(e->st);
    e->st = NULL;
    assert_int_equal(q_int(db, "SELECT stopped_at IS NOT NULL AND stopped_at >= started_at"
                               " FROM daemon_status"),
                     1);

    /* Reopening migrates nothing and clears stopped_at. */
    e->st = open_default(e);
    assert_int_equal(q_int(db, "PRAGMA user_version"), migrate_latest_version());
    assert_string_equal(q_text(db, txt, sizeof txt, "SELECT stopped_at FROM daemon_status"),
                        "<null>");
    sqlite3_close(db);
}

static void test_open_fails_cleanly(void **state)
{
    struct env *e = *state;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/missing/dir/rtd.db", e->dir);
    struct store_config cfg = {.path = path};
    char *err = NULL;
    assert_null(store_open(&cfg, e->l, &err));
    assert_non_null(err);
    free(err);
}

/* A VFS that makes WAL writes, so COMMITs, slow on demand: an ack sent before its commit
 * finished would then find no row. It is the default VFS with one method changed: the file
 * the real xOpen filled keeps its layout, only its method table is swapped for a copy. */
static sqlite3_vfs slow_vfs;
static sqlite3_vfs *real_vfs;
static sqlite3_io_methods slow_io;
static int (*real_write)(sqlite3_file *, const void *, int, sqlite3_int64);
static atomic_int slow_write_ms; /* set by the test, read by the writer thread */

static int slow_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    int ms = atomic_load(&slow_write_ms);
    if (ms) {
        struct timespec ts = {0, ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    return real_write(f, p, n, off);
}

static int slow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    int rc = real_vfs->xOpen(real_vfs, name, f, flags, out);
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && f->pMethods) {
        if (!real_write) {
            slow_io = *f->pMethods;
            real_write = slow_io.xWrite;
            slow_io.xWrite = slow_write;
        }
        f->pMethods = &slow_io;
    }
    return rc;
}

static void slow_vfs_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    slow_vfs = *real_vfs;
    slow_vfs.zName = "slow-wal";
    slow_vfs.pNext = NULL;
    slow_vfs.xOpen = slow_open;
    assert_int_equal(sqlite3_vfs_register(&slow_vfs, 1), SQLITE_OK);
}

static void slow_vfs_remove(void)
{
    slow_write_ms = 0;
    sqlite3_vfs_unregister(&slow_vfs);
    sqlite3_vfs_register(real_vfs, 1);
}

/* Checks made inside the ack: the row must already be visible to another connection. */
struct ack_probe {
    const char *path;
    bool called, ok, found;
    int64_t id;
    char row[512];
};

static void on_ack_probe(void *ud, bool ok, int64_t id, const char *error)
{
    struct ack_probe *p = ud;
    p->called = true;
    p->ok = ok;
    p->id = id;
    sqlite3 *db;
    if (sqlite3_open_v2(p->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "SELECT socket_id || '|' || sender || '|' || message_text || '|' ||"
                           " platform || '|' || coalesce(room, '<null>') || '|' || created_at"
                           " FROM messages WHERE id = ?",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, id);
        if (sqlite3_step(s) == SQLITE_ROW) {
            p->found = true;
            snprintf(p->row, sizeof p->row, "%s", (const char *)sqlite3_column_text(s, 0));
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
}

static bool probe_called(void *ud)
{
    return ((struct ack_probe *)ud)->called;
}

static void test_message_acked_after_commit(void **state)
{
    struct env *e = *state;
    slow_vfs_install();
    e->st = open_default(e);
    int64_t t = 1718000000123LL;
    char ts[24], want[512], txt[256];
    db_time(t, ts);

    assert_int_equal(store_connection_open(e->st, "sock1", "polling", "10.0.0.7", "curl/8", t), 0);
    assert_int_equal(store_connection_transport(e->st, "sock1", "websocket"), 0);
    static struct ack_probe p;
    p = (struct ack_probe){.path = e->path};
    slow_write_ms = 30; /* each WAL write: the commit takes 100 ms or more */
    assert_int_equal(store_message(e->st, "sock1", "alice", "hello world", 5, "ios", "lobby", t,
                                   on_ack_probe, &p),
                     0);
    assert_false(p.called); /* never synchronously */
    assert_true(run_until(e->l, probe_called, &p, 10000, 1));
    slow_write_ms = 0;
    assert_true(p.ok);
    assert_true(p.id > 0);
    assert_true(p.found);
    /* text_len is honoured: only "hello" is stored. */
    snprintf(want, sizeof want, "sock1|alice|hello|ios|lobby|%s", ts);
    assert_string_equal(p.row, want);

    sqlite3 *db = db_open(e->path);
    snprintf(want, sizeof want, "unknown|active|%s|%s|websocket|10.0.0.7|curl/8", ts, ts);
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT platform || '|' || status || '|' || connected_at || '|' ||"
                               " created_at || '|' || transport || '|' || remote_addr || '|' ||"
                               " user_agent FROM connections WHERE socket_id = 'sock1'"),
                        want);

    /* No platform: the column default 'web'; no room: NULL. Ids grow. */
    int64_t id2 = send_sync(e, "sock1", "second", NULL, NULL, t + 1);
    assert_true(id2 > p.id);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)id2);
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT platform || '|' || coalesce(room, 'NULL') FROM messages"
                               " WHERE id = ?",
                               idbuf),
                        "web|NULL");
    assert_counters_match(db);
    sqlite3_close(db);
    store_close(e->st);
    e->st = NULL;
    slow_vfs_remove();
}

static void test_counters_match_tables(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    /* Two hours, A and B, around an hour boundary. */
    int64_t a = 1710064799000LL; /* 2024-03-10 09:59:59.000 */
    int64_t b = a + 2000;        /* 2024-03-10 10:00:01.000 */
    store *st = e->st;

    /* Batch 1, with no loop turn in between: opens and identifies in the same transaction. */
    assert_int_equal(store_connection_open(st, "s1", "websocket", NULL, NULL, a), 0);
    assert_int_equal(store_connection_open(st, "s2", "polling", "1.2.3.4", "ua", a), 0);
    assert_int_equal(store_connection_open(st, "s3", "websocket", NULL, NULL, b), 0);
    assert_int_equal(store_connection_open(st, "s4", "websocket", NULL, NULL, b), 0);
    assert_int_equal(store_connection_open(st, "s5", "websocket", NULL, NULL, b), 0);
    assert_int_equal(store_connection_open(st, "s6", "websocket", NULL, NULL, a), 0);
    assert_int_equal(store_connection_identify(st, "s1", "u1", "ios", "1.0"), 0);
    assert_int_equal(store_connection_identify(st, "s2", "u2", "android", NULL), 0);
    assert_int_equal(store_connection_identify(st, "s3", "u3", NULL, "2.0"), 0); /* no platform */
    assert_int_equal(store_connection_identify(st, "s4", NULL, "ios", NULL), 0);
    assert_int_equal(store_connection_identify(st, "s4", NULL, "web", NULL), 0);
    assert_int_equal(store_connection_identify(st, "ghost", "u", "ios", NULL), 0); /* no row */

    static int pending;
    static struct ack acks[40];
    pending = 0;
    int n = 0;
    const char *plats[] = {"ios", "android", "web", NULL};
    const char *rooms[] = {"r1", NULL, "r2"};
    for (int i = 0; i < 30; i++)
        queue_msg(e, &acks[n++], &pending, i % 2 ? "s1" : "s2", "x", "msg", plats[i % 4],
                  rooms[i % 3], i < 13 ? a + i : b + i);
    wait_pending(e, &pending);
    for (int i = 0; i < n; i++)
        assert_true(acks[i].ok);

    sqlite3 *db = db_open(e->path);
    assert_counters_match(db);
    assert_int_equal(total(db, "connections_total"), 6);
    assert_int_equal(total(db, "messages_total"), 30);
    /* 2 hours × ios, android, web (a message without a platform counts as 'web'). */
    assert_int_equal(q_int(db, "SELECT count(*) FROM message_counts"), 6);
    assert_int_equal(q_int(db, "SELECT count FROM message_counts WHERE platform = 'web' AND"
                               " hour = '2024-03-10 10:00:00'"),
                     8); /* i = 14, 15, 18, 19, 22, 23, 26, 27 */

    /* Batch 2: a platform change across transactions, closes (one repeated, one without a
     * duration, one of an unknown socket), a transport change. */
    assert_int_equal(store_connection_identify(st, "s1", NULL, "android", NULL), 0);
    assert_int_equal(store_connection_close(st, "s1", a + 60000, 1234), 0);
    assert_int_equal(store_connection_close(st, "s2", a + 60000, 50), 0);
    assert_int_equal(store_connection_close(st, "s2", a + 70000, 99999), 0);
    assert_int_equal(store_connection_close(st, "s3", b + 1, -1), 0);
    assert_int_equal(store_connection_close(st, "nope", b + 1, 5), 0);
    assert_int_equal(store_connection_transport(st, "s5", "polling"), 0);
    send_sync(e, "s5", "after", "web", NULL, b + 100);

    assert_counters_match(db);
    char txt[128];
    assert_int_equal(q_int(db, "SELECT count(*) FROM connection_counts WHERE platform = 'ios'"), 0);
    assert_int_equal(q_int(db, "SELECT sum(count) FROM connection_counts"
                               " WHERE platform = 'android'"),
                     2);
    assert_int_equal(q_int(db, "SELECT count FROM connection_counts WHERE platform = 'unknown'"
                               " AND hour = '2024-03-10 10:00:00'"),
                     2); /* s3, s5 */
    assert_int_equal(q_int(db, "SELECT count FROM connection_counts WHERE platform = 'web'"), 1);
    assert_int_equal(total(db, "sessions_closed"), 2);
    assert_int_equal(total(db, "session_ms_total"), 1284);
    assert_int_equal(total(db, "session_ms_max"), 1234);
    assert_string_equal(
        q_text(db, txt, sizeof txt, "SELECT transport FROM connections WHERE socket_id = 's5'"),
        "polling");
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT user_id || app_version || platform || status FROM"
                               " connections WHERE socket_id = 's3'"),
                        "u32.0unknowndisconnected");
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT user_id || app_version || platform FROM connections"
                               " WHERE socket_id = 's1'"),
                        "u11.0android");

    /* Batch 3: a shorter session does not lower the maximum. */
    assert_int_equal(store_connection_open(st, "s7", "polling", NULL, NULL, b + 200), 0);
    assert_int_equal(store_connection_close(st, "s7", b + 210, 10), 0);
    send_sync(e, "s7", "bye", "web", NULL, b + 300);
    assert_int_equal(total(db, "session_ms_max"), 1234);
    assert_int_equal(total(db, "sessions_closed"), 3);
    assert_counters_match(db);

    /* Closing the store closes s4, s5, s6 and counts their sessions. */
    store_close(e->st);
    e->st = NULL;
    assert_counters_match(db);
    assert_int_equal(total(db, "sessions_closed"), 6);
    sqlite3_close(db);
}

/* The child of test_crash_leftovers: writes and dies without store_close. */
static int crash_child(const char *path, int64_t now)
{
    loop *l = loop_new(256);
    struct store_config cfg = {.path = path};
    char *err = NULL;
    store *st = l ? store_open(&cfg, l, &err) : NULL;
    if (!st)
        return 2;
    int pending = 0;
    struct ack a = {.pending = &pending};
    if (store_connection_open(st, "c1", "websocket", NULL, NULL, now - 600000) < 0 ||
        store_connection_identify(st, "c1", "u1", "ios", NULL) < 0 ||
        store_connection_open(st, "c2", "websocket", NULL, NULL, now - 60000) < 0 ||
        store_connection_open(st, "c3", "websocket", NULL, NULL, now - 300000) < 0 ||
        store_connection_close(st, "c3", now - 299000, 1000) < 0 || store_status(st, 2, 1, 1) < 0 ||
        store_message(st, "c1", "u1", "hi", 2, "ios", NULL, now - 1000, on_ack, &a) < 0)
        return 3;
    pending++;
    if (!run_until(l, int_is_zero, &pending, 10000, 1) || !a.ok)
        return 4;
    return 0; /* the caller _exits: no store_close, threads killed mid-flight */
}

static void test_crash_leftovers_closed_at_open(void **state)
{
    struct env *e = *state;
    int64_t now = util_wall_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(crash_child(e->path, now));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM connections WHERE status = 'active'"), 2);
    assert_int_equal(q_int(db, "SELECT stopped_at IS NULL FROM daemon_status"), 1);
    assert_counters_match(db);
    /* The last heartbeat: after c1 opened, before c2 did. */
    char hb[24], txt[128], c2[24];
    db_time(now - 480000, hb);
    db_time(now - 60000, c2);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE daemon_status SET updated_at = '%s'", hb);
    q_exec(db, sql);

    e->st = open_default(e);
    assert_int_equal(q_int(db, "SELECT count(*) FROM connections WHERE status = 'active'"), 0);
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT disconnected_at FROM connections WHERE socket_id = 'c1'"),
                        hb);
    assert_int_equal(q_int(db, "SELECT duration_ms FROM connections WHERE socket_id = 'c1'"),
                     120000);
    assert_string_equal(q_text(db, txt, sizeof txt,
                               "SELECT disconnected_at FROM connections WHERE socket_id = 'c2'"),
                        c2);
    assert_string_equal(
        q_text(db, txt, sizeof txt, "SELECT duration_ms FROM connections WHERE socket_id = 'c2'"),
        "<null>");
    assert_int_equal(q_int(db, "SELECT duration_ms FROM connections WHERE socket_id = 'c3'"), 1000);
    assert_int_equal(total(db, "sessions_closed"), 2);
    assert_int_equal(total(db, "session_ms_total"), 121000);
    assert_int_equal(total(db, "session_ms_max"), 120000);
    assert_counters_match(db);
    assert_int_equal(q_int(db, "SELECT pid FROM daemon_status"), getpid());
    assert_int_equal(
        q_int(db, "SELECT stopped_at IS NULL AND updated_at > ? FROM daemon_status", hb), 1);
    sqlite3_close(db);
}

/* ---- history pages ---- */

struct page {
    bool done, ok;
    char *json;
    size_t len;
};

static void on_page(void *ud, bool ok, const char *json, size_t len, const char *error)
{
    struct page *p = ud;
    p->done = true;
    p->ok = ok;
    p->len = len;
    p->json = NULL;
    if (ok) {
        p->json = malloc(len + 1);
        assert_non_null(p->json);
        memcpy(p->json, json, len);
        p->json[len] = '\0';
    }
}

static bool page_done(void *ud)
{
    return ((struct page *)ud)->done;
}

/* Runs one query; returns the parsed array (the raw text in *raw, caller frees). */
static json_object *query(struct env *e, int limit, int64_t before, const char *room, char **raw)
{
    static struct page p;
    memset(&p, 0, sizeof p);
    assert_int_equal(store_query_messages(e->st, limit, before, room, on_page, &p), 0);
    assert_true(run_until(e->l, page_done, &p, 10000, 1));
    assert_true(p.ok);
    assert_int_equal(strlen(p.json), p.len);
    json_object *arr = json_tokener_parse(p.json);
    if (!arr || !json_object_is_type(arr, json_type_array))
        fail_msg("not a JSON array: %s", p.json);
    if (raw)
        *raw = p.json;
    else
        free(p.json);
    return arr;
}

static int64_t page_id(json_object *arr, size_t i)
{
    json_object *o = json_object_array_get_idx(arr, i), *v;
    assert_true(json_object_object_get_ex(o, "id", &v));
    return json_object_get_int64(v);
}

static void assert_ids(json_object *arr, const int64_t *ids, size_t n)
{
    assert_int_equal(json_object_array_length(arr), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(page_id(arr, i), ids[i]);
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static void test_query_pages(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    const char *tricky = "say \"hi\"\nline2\\ tab\t \x01 caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
                         "\xf0\x9f\x99\x82";
    int64_t t0 = 1700000000000LL;
    static int pending;
    static struct ack acks[10];
    pending = 0;
    /* Interleaved: a1 n1 a2 b1 a3 n2 a4 b2 a5 n3 */
    const char *rooms[10] = {"a", NULL, "a", "b", "a", NULL, "a", "b", "a", NULL};
    for (int i = 0; i < 10; i++)
        queue_msg(e, &acks[i], &pending, "sq", "bob", i == 4 ? tricky : "plain", "android",
                  rooms[i], t0 + i * 1001);
    wait_pending(e, &pending);
    int64_t id[10];
    for (int i = 0; i < 10; i++) {
        assert_true(acks[i].ok);
        id[i] = acks[i].id;
    }

    json_object *p = query(e, 2, 0, "a", NULL);
    assert_ids(p, (int64_t[]){id[8], id[6]}, 2);
    json_object_put(p);

    char *raw;
    p = query(e, 2, id[6], "a", &raw);
    assert_ids(p, (int64_t[]){id[4], id[2]}, 2);
    json_object *o = json_object_array_get_idx(p, 0);
    assert_int_equal(json_object_object_length(o), 7);
    assert_string_equal(field(o, "socketId"), "sq");
    assert_string_equal(field(o, "sender"), "bob");
    assert_string_equal(field(o, "text"), tricky);
    assert_string_equal(field(o, "platform"), "android");
    assert_string_equal(field(o, "room"), "a");
    char iso[25];
    util_format_iso_time(t0 + 4 * 1001, iso);
    assert_string_equal(field(o, "createdAt"), iso);
    /* Escaped as JSON requires; UTF-8 passed through as is. */
    assert_non_null(strstr(raw, "say \\\"hi\\\"\\nline2\\\\ tab\\t \\u0001 caf\xc3\xa9 "));
    assert_non_null(strstr(raw, "\xf0\x9f\x99\x82"));
    assert_null(strchr(raw, '\n'));
    assert_string_equal(raw + strlen(raw) - 2, "}]");
    free(raw);
    json_object_put(p);

    p = query(e, 10, id[2], "a", NULL);
    assert_ids(p, (int64_t[]){id[0]}, 1);
    json_object_put(p);
    p = query(e, 10, id[0], "a", &raw);
    assert_string_equal(raw, "[]");
    free(raw);
    json_object_put(p);

    /* NULL room: only the messages sent to everyone, with "room":null. */
    p = query(e, 50, -1, NULL, &raw);
    assert_ids(p, (int64_t[]){id[9], id[5], id[1]}, 3);
    assert_null(field(json_object_array_get_idx(p, 0), "room"));
    assert_non_null(strstr(raw, "\"room\":null"));
    free(raw);
    json_object_put(p);

    p = query(e, 50, 0, "b", NULL);
    assert_ids(p, (int64_t[]){id[7], id[3]}, 2);
    json_object_put(p);
    p = query(e, 50, 0, "nobody", NULL);
    assert_int_equal(json_object_array_length(p), 0);
    json_object_put(p);
    p = query(e, 0, 0, "a", &raw);
    assert_string_equal(raw, "[]");
    free(raw);
    json_object_put(p);
}

/* ---- backpressure and failures ---- */

/* Holds the write lock from another connection, so the writer stalls in BEGIN IMMEDIATE. */
static sqlite3 *hold_write_lock(const char *path)
{
    sqlite3 *db = db_open(path);
    q_exec(db, "BEGIN IMMEDIATE");
    return db;
}

/* Gives the writer time to take what is queued and block on the lock: whatever is queued
 * after this goes into one later transaction, all together. */
static void let_writer_block(void)
{
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
}

static void release_write_lock(sqlite3 *db)
{
    q_exec(db, "ROLLBACK");
    sqlite3_close(db);
}

static void test_queue_full_refuses(void **state)
{
    struct env *e = *state;
    struct store_config cfg = {.max_queue = 4};
    e->st = open_with(e, cfg);
    sqlite3 *lock = hold_write_lock(e->path);
    static int pending;
    static struct ack acks[4];
    pending = 0;
    for (int i = 0; i < 4; i++)
        queue_msg(e, &acks[i], &pending, "q", "x", "queued", "web", NULL, 1700000000000LL + i);
    struct store_stats s;
    store_get_stats(e->st, &s);
    assert_int_equal(s.queue_depth, 4);
    /* Full: every kind of write is refused, and nothing is called back for them. */
    static struct ack refused;
    memset(&refused, 0, sizeof refused);
    assert_int_equal(store_message(e->st, "q", "x", "no", 2, "web", NULL, 1, on_ack, &refused), -1);
    assert_int_equal(store_connection_open(e->st, "q", "websocket", NULL, NULL, 1), -1);
    assert_int_equal(store_connection_close(e->st, "q", 1, 1), -1);
    assert_int_equal(store_status(e->st, 1, 1, 1), -1);
    release_write_lock(lock);

    wait_pending(e, &pending);
    for (int i = 0; i < 4; i++)
        assert_true(acks[i].ok);
    assert_false(refused.done);
    store_get_stats(e->st, &s);
    assert_int_equal(s.queue_depth, 0);
    send_sync(e, "q", "room again", "web", NULL, 1700000000100LL);
    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 5);
    assert_int_equal(q_int(db, "SELECT count(*) FROM connections"), 0);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* The queue is bounded in bytes too: with the writer stalled, 10 KB messages are refused once
 * max_queue_bytes is reached, long before max_queue items (100 000 of them would be 1 GB). */
static void test_queue_bytes_bound(void **state)
{
    struct env *e = *state;
    struct store_config cfg = {.max_queue_bytes = 64 * 1024};
    e->st = open_with(e, cfg);
    sqlite3 *lock = hold_write_lock(e->path);
    static char text[10 * 1024];
    memset(text, 'b', sizeof text - 1);
    static int pending;
    static struct ack acks[16];
    pending = 0;
    int accepted = 0;
    for (int i = 0; i < 16; i++) {
        memset(&acks[i], 0, sizeof acks[i]);
        acks[i].pending = &pending;
        if (store_message(e->st, "b", "x", text, strlen(text), "web", NULL, 1700000000000LL + i,
                          on_ack, &acks[i]) < 0)
            break;
        pending++;
        accepted++;
    }
    assert_in_range(accepted, 5, 6); /* 64 KB of 10 KB messages and their headers */
    struct store_stats s;
    store_get_stats(e->st, &s);
    assert_int_equal(s.queue_depth, (size_t)accepted);
    assert_in_range(s.queue_bytes, (size_t)accepted * sizeof text, cfg.max_queue_bytes);
    release_write_lock(lock);
    wait_pending(e, &pending);
    for (int i = 0; i < accepted; i++)
        assert_true(acks[i].ok);
    store_get_stats(e->st, &s);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(s.queue_bytes, 0);
    /* room again once the writer caught up */
    send_sync(e, "b", "after", "web", NULL, 1700000000100LL);
}

static void test_failed_transaction_fails_its_messages(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    sqlite3 *db = db_open(e->path);
    /* RAISE(ROLLBACK) ends the whole transaction, as a full disk would. */
    q_exec(db, "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.sender = 'boom'"
               " BEGIN SELECT RAISE(ROLLBACK, 'simulated disk failure'); END");

    sqlite3 *lock = hold_write_lock(e->path);
    assert_int_equal(store_connection_open(e->st, "f0", "websocket", NULL, NULL, 1), 0);
    let_writer_block();
    static int pending;
    static struct ack a, b, c;
    pending = 0;
    queue_msg(e, &a, &pending, "f0", "fine", "first", "web", NULL, 1700000000000LL);
    queue_msg(e, &b, &pending, "f0", "boom", "second", "web", NULL, 1700000000001LL);
    queue_msg(e, &c, &pending, "f0", "fine", "third", "web", NULL, 1700000000002LL);
    release_write_lock(lock);
    wait_pending(e, &pending);
    /* All three were in one transaction (queued together while the writer was blocked). */
    assert_false(a.ok);
    assert_false(b.ok);
    assert_false(c.ok);
    assert_int_equal(a.id, 0);
    assert_non_null(strstr(a.error, "simulated disk failure"));
    assert_non_null(strstr(c.error, "simulated disk failure"));
    struct store_stats s;
    store_get_stats(e->st, &s);
    assert_false(s.db_ok);
    assert_true(s.errors >= 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 0);
    assert_int_equal(total(db, "messages_total"), 0);
    assert_counters_match(db);

    q_exec(db, "DROP TRIGGER boom");
    send_sync(e, "f0", "fourth", "web", NULL, 1700000000003LL);
    store_get_stats(e->st, &s);
    assert_true(s.db_ok);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 1);
    assert_counters_match(db);
    sqlite3_close(db);
}

static void test_item_failure_is_isolated(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    sqlite3 *db = db_open(e->path);
    q_exec(db, "CREATE TRIGGER bad BEFORE INSERT ON messages WHEN NEW.sender = 'bad'"
               " BEGIN SELECT RAISE(ABORT, 'bad sender'); END");
    sqlite3 *lock = hold_write_lock(e->path);
    assert_int_equal(store_connection_open(e->st, "i0", "websocket", NULL, NULL, 1), 0);
    let_writer_block();
    static int pending;
    static struct ack a, b, c, d;
    pending = 0;
    queue_msg(e, &a, &pending, "i0", "good", "first", "ios", NULL, 1700000000000LL);
    queue_msg(e, &b, &pending, "i0", "bad", "second", "ios", NULL, 1700000000001LL);
    memset(&c, 0, sizeof c);
    c.pending = &pending;
    assert_int_equal(
        store_message(e->st, "i0", NULL, "x", 1, "ios", NULL, 1700000000002LL, on_ack, &c), 0);
    pending++;
    queue_msg(e, &d, &pending, "i0", "good", "fourth", "ios", NULL, 1700000000003LL);
    assert_int_equal(store_status(e->st, 1, 4, 2), 0);
    release_write_lock(lock);
    wait_pending(e, &pending);
    assert_true(a.ok);
    assert_false(b.ok);
    assert_non_null(strstr(b.error, "bad sender"));
    assert_false(c.ok); /* sender is NOT NULL */
    assert_true(strlen(c.error) > 0);
    assert_true(d.ok);
    struct store_stats s;
    store_get_stats(e->st, &s);
    assert_true(s.db_ok);
    assert_int_equal(s.errors, 2);
    assert_int_equal(s.rows_written, 3); /* i0's row, a, d; the heartbeat is not a row */
    assert_int_equal(q_int(db, "SELECT messages_in FROM daemon_status"), 4);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 2);
    assert_int_equal(total(db, "messages_total"), 2);
    assert_int_equal(q_int(db, "SELECT count(*) FROM connections"), 1);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* ---- retention ---- */

struct retention_probe {
    sqlite3 *db;
    const char *cutoff;
};

static bool old_rows_gone(void *ud)
{
    struct retention_probe *p = ud;
    return q_int(p->db, "SELECT count(*) FROM messages WHERE created_at < ?", p->cutoff) == 0;
}

static void test_retention(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    int64_t now = util_wall_ms();
    int64_t old = now - 40 * DAY_MS;
    enum { N_OLD = 2500, N_KEEP = 5, N_NEW = 10 };
    static struct ack acks[N_OLD + N_KEEP + N_NEW];
    static int pending;
    int n = 0;
    pending = 0;
    for (int i = 0; i < N_OLD; i++)
        queue_msg(e, &acks[n++], &pending, "r", "x", "old", i % 2 ? "ios" : "web",
                  i % 3 ? "room" : NULL, old + (i % 3) * HOUR_MS + i);
    for (int i = 0; i < N_KEEP; i++) /* inside the window, though not by much */
        queue_msg(e, &acks[n++], &pending, "r", "x", "keep", "ios", NULL, now - 29 * DAY_MS + i);
    for (int i = 0; i < N_NEW; i++)
        queue_msg(e, &acks[n++], &pending, "r", "x", "new", i % 2 ? "ios" : "android", NULL,
                  now + i);
    wait_pending(e, &pending);
    for (int i = 0; i < n; i++)
        assert_true(acks[i].ok);
    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), n);

    struct store_config cfg = {.retention_days = 30};
    reopen_store(e, cfg);
    char cutoff[24];
    db_time(now - 30 * DAY_MS, cutoff);
    struct retention_probe probe = {db, cutoff};
    assert_true(run_until(e->l, old_rows_gone, &probe, 20000, 20));

    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), N_KEEP + N_NEW);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages WHERE message_text = 'old'"), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM message_counts WHERE hour < ?", cutoff), 0);
    assert_int_equal(total(db, "messages_total"), N_KEEP + N_NEW);
    assert_counters_match(db);

    /* Writes go on while retention is enabled. */
    send_sync(e, "r", "later", "web", NULL, now + 100);
    assert_int_equal(total(db, "messages_total"), N_KEEP + N_NEW + 1);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* ---- shutdown ---- */

static void test_close_finishes_everything(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    int64_t now = util_wall_ms();
    store *st = e->st;
    assert_int_equal(store_connection_open(st, "k1", "websocket", NULL, NULL, now - 5000), 0);
    assert_int_equal(store_connection_open(st, "k2", "websocket", NULL, NULL, now - 2000), 0);
    assert_int_equal(store_connection_identify(st, "k2", NULL, "ios", NULL), 0);
    assert_int_equal(store_connection_open(st, "k3", "websocket", NULL, NULL, now - 1000), 0);
    assert_int_equal(store_connection_close(st, "k3", now - 100, 900), 0);
    assert_int_equal(store_status(st, 2, 10, 20), 0);
    /* Queued and never waited for: store_close must commit them and run their acks. */
    static int pending;
    static struct ack acks[3];
    pending = 0;
    for (int i = 0; i < 3; i++)
        queue_msg(e, &acks[i], &pending, "k1", "x", "last words", "web", "r", now);
    store_close(st);
    e->st = NULL;
    assert_int_equal(pending, 0);
    for (int i = 0; i < 3; i++)
        assert_true(acks[i].ok);

    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 3);
    assert_int_equal(q_int(db, "SELECT count(*) FROM connections WHERE status = 'active'"
                               " OR disconnected_at IS NULL"),
                     0);
    int64_t d1 = q_int(db, "SELECT duration_ms FROM connections WHERE socket_id = 'k1'");
    assert_true(d1 >= 5000 && d1 < 65000);
    assert_int_equal(q_int(db, "SELECT duration_ms FROM connections WHERE socket_id = 'k3'"), 900);
    assert_int_equal(q_int(db, "SELECT stopped_at IS NOT NULL AND stopped_at = updated_at"
                               " FROM daemon_status"),
                     1);
    assert_int_equal(q_int(db, "SELECT connections * 100 + messages_in * 10 + messages_out"
                               " FROM daemon_status"),
                     2 * 100 + 10 * 10 + 20);
    assert_int_equal(q_int(db, "SELECT disconnected_at = (SELECT stopped_at FROM daemon_status)"
                               " FROM connections WHERE socket_id = 'k2'"),
                     1);
    assert_int_equal(total(db, "sessions_closed"), 3);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* ---- backup ---- */

static void assert_backup_consistent(const char *path)
{
    sqlite3 *db = db_open(path);
    char txt[64];
    assert_string_equal(q_text(db, txt, sizeof txt, "PRAGMA integrity_check"), "ok");
    assert_counters_match(db);
    sqlite3_close(db);
}

static void test_backup(void **state)
{
    struct env *e = *state;
    e->st = open_default(e);
    enum { N1 = 3000, N2 = 20000 };
    static struct ack acks[N1 + N2];
    static int pending;
    pending = 0;
    assert_int_equal(store_connection_open(e->st, "b", "websocket", NULL, NULL, 1), 0);
    for (int i = 0; i < N1; i++)
        queue_msg(e, &acks[i], &pending, "b", "x", i % 2 ? "odd" : "even", "web", NULL,
                  1700000000000LL + i * 997);
    wait_pending(e, &pending);

    char dest[PATH_MAX + 16], err_path[PATH_MAX + 32];
    snprintf(dest, sizeof dest, "%s/copy.db", e->dir);
    char *err = NULL;
    assert_int_equal(store_backup(e->path, dest, &err), 0);
    assert_null(err);
    assert_backup_consistent(dest);
    sqlite3 *src = db_open(e->path), *cp = db_open(dest);
    static const char *const sums[] = {
        "SELECT count(*) FROM messages",
        "SELECT sum(id * length(message_text)) FROM messages",
        "SELECT count(*) FROM connections",
        "SELECT value FROM totals WHERE name = 'messages_total'",
        "PRAGMA user_version",
    };
    for (size_t i = 0; i < sizeof sums / sizeof *sums; i++)
        assert_int_equal(q_int(cp, sums[i]), q_int(src, sums[i]));
    assert_int_equal(q_int(cp, "SELECT count(*) FROM messages"), N1);
    sqlite3_close(cp);

    /* While the writer is busy: a snapshot, whole and consistent. */
    for (int i = 0; i < N2; i++)
        queue_msg(e, &acks[N1 + i], &pending, "b", "x", "busy", "ios", "r",
                  1700000000000LL + (N1 + i) * 997);
    assert_int_equal(store_backup(e->path, dest, &err), 0);
    assert_backup_consistent(dest);
    cp = db_open(dest);
    int64_t copied = q_int(cp, "SELECT count(*) FROM messages");
    assert_true(copied >= N1 && copied <= N1 + N2);
    sqlite3_close(cp);
    wait_pending(e, &pending);
    sqlite3_close(src);

    /* A database nobody has open (no -wal or -shm file): the --backup command without rtd. */
    store_close(e->st);
    e->st = NULL;
    char wal[PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", e->path);
    assert_int_equal(access(wal, F_OK), -1);
    assert_int_equal(store_backup(e->path, dest, &err), 0);
    assert_backup_consistent(dest);
    cp = db_open(dest);
    assert_int_equal(q_int(cp, "SELECT count(*) FROM messages"), N1 + N2);
    sqlite3_close(cp);

    snprintf(err_path, sizeof err_path, "%s/absent.db", e->dir);
    assert_int_equal(store_backup(err_path, dest, &err), -1);
    assert_non_null(err);
    free(err);
}

/* ---- figures ---- */

static void test_stats(void **state)
{
    struct env *e = *state;
    slow_vfs_install();
    struct store_config cfg = {.batch_max = 7};
    e->st = open_with(e, cfg);
    for (int i = 1; i < 8; i++)
        assert_true(store_commit_buckets_ms[i] > store_commit_buckets_ms[i - 1]);
    struct store_stats s;
    store_get_stats(e->st, &s);
    assert_true(s.db_ok);
    assert_int_equal(s.commits, 0);

    /* Slow commits: every WAL write takes 20 ms, so no commit fits the buckets up to 10 ms. */
    slow_write_ms = 20;
    static int pending;
    static struct ack acks[50];
    pending = 0;
    for (int i = 0; i < 50; i++)
        queue_msg(e, &acks[i], &pending, "st", "x", "m", "web", NULL, 1700000000000LL + i);
    wait_pending(e, &pending);
    slow_write_ms = 0;
    store_get_stats(e->st, &s);
    /* At most 7 per transaction: 50 writes take at least 8 commits. */
    assert_true(s.commits >= 8);
    assert_int_equal(s.rows_written, 50);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.queue_depth, 0);
    assert_int_equal(s.commit_count, s.commits);
    assert_true(s.commit_sum_ms >= 20.0 * (double)s.commit_count);
    assert_int_equal(s.commit_le[4], 0);

    /* A fast one (a single row takes well under 100 ms) lands in the low buckets. */
    send_sync(e, "st", "quick", "web", NULL, 1700000000100LL);
    store_get_stats(e->st, &s);
    assert_int_equal(s.rows_written, 51);
    assert_true(s.commit_le[7] >= 1);
    for (int i = 1; i < 8; i++)
        assert_true(s.commit_le[i] >= s.commit_le[i - 1]);
    assert_true(s.commit_le[7] <= s.commit_count);
    store_close(e->st);
    e->st = NULL;
    slow_vfs_remove();
}

/* ---- throughput ---- */

struct bench {
    struct env *e;
    int total, sent, acked, failed;
    int64_t last_id;
    bool ordered;
};

static void bench_ack(void *ud, bool ok, int64_t id, const char *error);

static void bench_send(struct bench *b)
{
    static const char text[] = "a typical chat message of about sixty bytes, give or take";
    char room[8];
    snprintf(room, sizeof room, "r%d", b->sent % 8);
    if (store_message(b->e->st, "bench-socket", "bench", text, sizeof text - 1,
                      b->sent % 3 ? "ios" : "web", b->sent % 5 ? room : NULL,
                      1700000000000LL + b->sent, bench_ack, b) == 0)
        b->sent++;
}

static void bench_ack(void *ud, bool ok, int64_t id, const char *error)
{
    struct bench *b = ud;
    b->acked++;
    if (!ok)
        b->failed++;
    if (id <= b->last_id)
        b->ordered = false;
    b->last_id = id;
    if (b->sent < b->total)
        bench_send(b);
}

static bool bench_done(void *ud)
{
    struct bench *b = ud;
    return b->acked == b->total;
}

/* ---- the WAL stays bounded ---- */

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The WAL header's checkpoint sequence number: it changes each time the WAL starts over. */
static uint32_t wal_seq(const char *db_path)
{
    char wal[PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", db_path);
    unsigned char h[16] = {0};
    FILE *f = fopen(wal, "rb");
    if (f) {
        if (fread(h, 1, sizeof h, f) != sizeof h)
            memset(h, 0, sizeof h);
        fclose(f);
    }
    return (uint32_t)h[12] << 24 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 8 | h[15];
}

/* Many small transactions back to back (the writer never idles): the checkpointer must copy
 * the WAL back and let it start over while the load goes on, or the WAL grows by every page
 * of every commit (~15 pages per transaction of 4 messages: 485 MB for 30 000 messages when
 * either the checkpoints did nothing or the writer was never paused for a restart). How soon
 * it starts over depends on how fast the checkpointer is scheduled, so the test does not
 * count messages or time for it: it keeps the load up until the WAL has started over (at
 * most 60 000 messages), then checks the file's size (a restart truncates it to
 * journal_size_limit) and that nothing was lost. */
struct wal_load {
    struct bench b;
    const char *path;
    uint32_t seq0;
    bool restarted;
};

static bool wal_load_restarted(void *ud)
{
    struct wal_load *w = ud;
    if (!w->restarted && wal_seq(w->path) != w->seq0) {
        w->restarted = true;
        w->b.total = w->b.sent; /* the load stops here: what is in flight completes */
    }
    return w->restarted ? bench_done(&w->b) : w->b.acked == w->b.total;
}

static void test_wal_stays_bounded(void **state)
{
    struct env *e = *state;
    struct store_config cfg = {.batch_max = 4};
    e->st = open_with(e, cfg);
    static struct wal_load w;
    w = (struct wal_load){.b = {.e = e, .total = 60000, .ordered = true}, .path = e->path};
    assert_int_equal(store_connection_open(e->st, "bench-socket", "websocket", NULL, NULL, 1), 0);
    send_sync(e, "bench-socket", "the WAL exists", "web", NULL, 1699999999999LL);
    w.seq0 = wal_seq(e->path);
    char wal[PATH_MAX + 32];
    snprintf(wal, sizeof wal, "%s-wal", e->path);
    while (w.b.sent < w.b.total && w.b.sent < 2000)
        bench_send(&w.b);
    assert_true(run_until(e->l, wal_load_restarted, &w, 300000, 5));
    struct store_stats s;
    store_get_stats(e->st, &s);
    long long size = file_size(wal);
    printf("# WAL: started over after %d messages under load (%llu commits); %lld bytes;"
           " %llu checkpoint passes, %llu writer pauses (%.3f ms in all)\n",
           w.b.sent, (unsigned long long)s.commits, size, (unsigned long long)s.checkpoints,
           (unsigned long long)s.wal_pauses, s.wal_pause_ms);
    assert_true(w.restarted);
    assert_int_equal(w.b.failed, 0);
    assert_true(w.b.ordered);
    assert_true(size > 0 && size <= 128LL * 1024 * 1024);
    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), w.b.sent + 1);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* A reader holding an old snapshot keeps the WAL from starting over; the writer must not be
 * paused on every commit for a restart that cannot happen. Once the reader is done, the
 * WAL starts over. */
static void test_wal_reader_holds_snapshot(void **state)
{
    struct env *e = *state;
    struct store_config cfg = {.batch_max = 4};
    e->st = open_with(e, cfg);
    assert_int_equal(store_connection_open(e->st, "bench-socket", "websocket", NULL, NULL, 1), 0);
    send_sync(e, "bench-socket", "before the reader", "web", NULL, 1700000000000LL);
    sqlite3 *rd = db_open(e->path);
    assert_int_equal(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(q_int(rd, "SELECT count(*) FROM messages"), 1); /* the snapshot starts */

    /* ~6 000 messages in transactions of 4: about 22 000 WAL frames, past RESTART_PAGES. */
    static struct bench b;
    b = (struct bench){.e = e, .total = 6000, .ordered = true};
    while (b.sent < b.total && b.sent < 2000)
        bench_send(&b);
    assert_true(run_until(e->l, bench_done, &b, 120000, 5));
    struct store_stats s;
    store_get_stats(e->st, &s);
    printf("# with a reader: %llu commits, %llu WAL frames, %llu writer pauses\n",
           (unsigned long long)s.commits, (unsigned long long)s.wal_frames,
           (unsigned long long)s.wal_pauses);
    assert_int_equal(b.failed, 0);
    assert_true(s.wal_frames >= 16000); /* the reader kept it from starting over */
    assert_true(s.wal_pauses <= 2);
    assert_int_equal(q_int(rd, "SELECT count(*) FROM messages"), 1); /* still its snapshot */
    assert_int_equal(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(rd);

    /* Reader gone: the WAL starts over with a later write (its header's checkpoint
     * sequence number counts the restarts). */
    uint32_t seq0 = wal_seq(e->path);
    int extra = 0;
    for (int round = 0; round < 50 && wal_seq(e->path) == seq0; round++) {
        b = (struct bench){.e = e, .total = 200, .ordered = true};
        while (b.sent < b.total)
            bench_send(&b);
        assert_true(run_until(e->l, bench_done, &b, 120000, 5));
        extra += 200;
    }
    store_get_stats(e->st, &s);
    printf("# reader gone: the WAL started over after %d more messages; %llu writer pauses\n",
           extra, (unsigned long long)s.wal_pauses);
    assert_true(wal_seq(e->path) != seq0);
    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), 6001 + extra);
    assert_counters_match(db);
    sqlite3_close(db);
}

/* RTD_STORE_BENCH_N sets the number of messages, RTD_STORE_BENCH_FULL=1 uses --sync full. */
static void test_throughput(void **state)
{
    struct env *e = *state;
    const char *full = getenv("RTD_STORE_BENCH_FULL");
    struct store_config cfg = {.sync_full = full && strcmp(full, "1") == 0};
    e->st = open_with(e, cfg);
    const char *env_n = getenv("RTD_STORE_BENCH_N");
    static struct bench b;
    b = (struct bench){.e = e, .total = env_n ? atoi(env_n) : 200000, .ordered = true};
    assert_int_equal(store_connection_open(e->st, "bench-socket", "websocket", NULL, NULL, 1), 0);
    int64_t t0 = util_wall_ms();
    /* Keep up to 50000 in flight; every ack queues the next. */
    while (b.sent < b.total && b.sent < 50000)
        bench_send(&b);
    assert_true(run_until(e->l, bench_done, &b, 120000, 5));
    double secs = (double)(util_wall_ms() - t0) / 1000.0;
    struct store_stats s;
    store_get_stats(e->st, &s);
    printf("# store: %d messages committed and acked in %.3f s: %.0f msg/s, %llu commits"
           " (%.0f per commit, mean %.2f ms)\n",
           b.total, secs, b.total / secs, (unsigned long long)s.commits,
           (double)s.rows_written / (double)s.commits, s.commit_sum_ms / (double)s.commit_count);
    assert_int_equal(b.failed, 0);
    assert_true(b.ordered); /* acks arrive in commit (id) order */
    sqlite3 *db = db_open(e->path);
    assert_int_equal(q_int(db, "SELECT count(*) FROM messages"), b.total);
    assert_counters_match(db);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_acked_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_match_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_leftovers_closed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_bytes_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_transaction_fails_its_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_item_failure_is_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_finishes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_stays_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_reader_holds_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
