/* test_store_pg.c: the store (rtd/store) on a real PostgreSQL: schema and migrations, acks
 * after commit, history pages, counters equal to the rows, writes that fail alone, per-node
 * closing of stale rows, two stores (two nodes) writing at once, retention, and the ingest
 * throughput of COPY against multi-row INSERT.
 *
 * RTD_TEST_PG_URL is a PostgreSQL URL without a database name's effect on the tests (they
 * create one database each beside it); tests/pg/unit.sh starts a throwaway server and sets
 * it. Without it the program exits 77 (skipped). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store.h"
#include "tests/unit/store_harness.h"

#define DAY_MS 86400000LL

static const char *base_url;
static int db_seq;

struct env {
    char url[512];
    loop *l;
    store *st, *st2;
    PGconn *c;
};

static PGconn *pg_conn(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", url, PQerrorMessage(c));
    return c;
}

static void q_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static int64_t q_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static const char *q_text(PGconn *c, char *out, size_t n, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    snprintf(out, n, "%s",
             PQntuples(r) < 1 ? "<none>" : PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    char name[64];
    snprintf(name, sizeof name, "unit_%ld_%d", (long)getpid(), ++db_seq);
    PGconn *admin = pg_conn(base_url);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    q_exec(admin, sql);
    PQfinish(admin);
    /* base_url ends with the server's default database: replace it */
    snprintf(e->url, sizeof e->url, "%s", base_url);
    char *slash = strrchr(e->url, '/');
    snprintf(slash + 1, sizeof e->url - (size_t)(slash + 1 - e->url), "%s", name);
    e->l = loop_new(1024);
    *state = e;
    return e->l ? 0 : -1;
}

static int teardown(void **state)
{
    struct env *e = *state;
    store_close(e->st);
    store_close(e->st2);
    if (e->c)
        PQfinish(e->c);
    loop_free(e->l);
    free(e);
    return 0;
}

static store *open_node(struct env *e, const char *node, unsigned retention_days)
{
    struct store_config cfg = {.path = e->url, .node_id = node, .retention_days = retention_days};
    char *err = NULL;
    store *st = store_open(&cfg, e->l, &err);
    if (!st)
        fail_msg("store_open: %s", err ? err : "(no message)");
    free(err);
    return st;
}

static void wait_pending(struct env *e, int *pending, int timeout_ms)
{
    assert_true(run_until(e->l, int_is_zero, pending, timeout_ms, 1));
}

static void queue_msg(store *st, struct ack *a, int *pending, const char *sid, const char *sender,
                      const char *text, const char *platform, const char *room, int64_t at_ms)
{
    memset(a, 0, sizeof *a);
    a->pending = pending;
    assert_int_equal(
        store_message(st, sid, sender, text, strlen(text), platform, room, at_ms, on_ack, a), 0);
    (*pending)++;
}

struct page {
    bool done, ok;
    char json[65536];
};

static void on_page(void *ud, bool ok, const char *json, size_t len, const char *error)
{
    struct page *p = ud;
    p->done = true;
    p->ok = ok;
    snprintf(p->json, sizeof p->json, "%.*s", ok ? (int)len : 0, ok ? json : "");
}

static bool page_done(void *ud)
{
    return ((struct page *)ud)->done;
}

static struct page *get_page(struct env *e, store *st, int limit, int64_t before, const char *room)
{
    static struct page p;
    memset(&p, 0, sizeof p);
    assert_int_equal(store_query_messages(st, limit, before, room, on_page, &p), 0);
    assert_true(run_until(e->l, page_done, &p, 10000, 1));
    assert_true(p.ok);
    return &p;
}

/* Every counter equals what a scan of the tables gives (test_store.c's check, in PG SQL). */
static void assert_counters_match(PGconn *c)
{
    static const char *const diff[] = {
        "WITH t AS (SELECT substr(created_at, 1, 13) || ':00:00' AS hour, platform,"
        " count(*) AS count FROM messages GROUP BY 1, 2)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM t EXCEPT"
        "  SELECT hour, platform, count FROM message_counts) x)"
        " + (SELECT count(*) FROM (SELECT hour, platform, count FROM message_counts"
        "  EXCEPT SELECT * FROM t) y)",
        "WITH t AS (SELECT substr(connected_at, 1, 13) || ':00:00' AS hour, platform,"
        " count(*) AS count FROM connections GROUP BY 1, 2)"
        " SELECT (SELECT count(*) FROM (SELECT * FROM t EXCEPT"
        "  SELECT hour, platform, count FROM connection_counts) x)"
        " + (SELECT count(*) FROM (SELECT hour, platform, count FROM connection_counts"
        "  EXCEPT SELECT * FROM t) y)",
    };
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(q_int(c, diff[i]), 0);
    assert_int_equal(q_int(c, "SELECT value FROM totals WHERE name = 'messages_total'"),
                     q_int(c, "SELECT count(*) FROM messages"));
    assert_int_equal(q_int(c, "SELECT value FROM totals WHERE name = 'connections_total'"),
                     q_int(c, "SELECT count(*) FROM connections"));
    assert_int_equal(q_int(c, "SELECT value FROM totals WHERE name = 'sessions_closed'"),
                     q_int(c, "SELECT count(duration_ms) FROM connections"));
    assert_int_equal(q_int(c, "SELECT value FROM totals WHERE name = 'session_ms_total'"),
                     q_int(c, "SELECT coalesce(sum(duration_ms), 0) FROM connections"));
}

/* ---- tests ---- */

static void test_open_migrates_and_writes_status(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "n1", 0);
    e->c = pg_conn(e->url);
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM schema_migrations"), 4);
    char t[256];
    assert_string_equal(q_text(e->c, t, sizeof t, "SELECT node_id FROM daemon_status"), "n1");
    assert_string_equal(q_text(e->c, t, sizeof t, "SELECT stopped_at FROM daemon_status"), "<null>");
    store_close(e->st);
    e->st = NULL;
    assert_string_not_equal(q_text(e->c, t, sizeof t, "SELECT stopped_at FROM daemon_status"),
                            "<null>");
    /* a second open migrates nothing more */
    e->st = open_node(e, "n1", 0);
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM schema_migrations"), 4);
}

static void test_messages_pages_and_counters(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "n1", 0);
    e->c = pg_conn(e->url);
    int64_t now = util_wall_ms();
    assert_int_equal(store_connection_open(e->st, "s1", "websocket", "10.0.0.7", "curl/8", now), 0);
    assert_int_equal(store_connection_identify(e->st, "s1", "u1", "ios", "1.2"), 0);
    static struct ack acks[30];
    int pending = 0;
    for (int i = 0; i < 30; i++) {
        char text[64];
        snprintf(text, sizeof text, "tab\there\nline \\ %d \"q\" é", i);
        queue_msg(e->st, &acks[i], &pending, "s1", "alice", text, i % 3 ? "ios" : NULL,
                  i % 2 ? "lobby" : NULL, now + i);
    }
    assert_int_equal(store_connection_close(e->st, "s1", now + 1000, 1000), 0);
    wait_pending(e, &pending, 10000);
    for (int i = 0; i < 30; i++) {
        assert_true(acks[i].ok);
        if (i)
            assert_true(acks[i].id > acks[i - 1].id);
    }
    char t[256];
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT message_text FROM messages WHERE id = %lld",
             (long long)acks[3].id);
    assert_string_equal(q_text(e->c, t, sizeof t, sql), "tab\there\nline \\ 3 \"q\" é");
    /* The close was queued after the messages, but the writer may have taken the first
     * messages while the rest were being queued: the close can commit a batch after the last
     * ack. Wait for it (its row reads NULL until duration_ms is set). */
    const char *conn_sql = "SELECT platform || '|' || status || '|' || duration_ms || '|' ||"
                           " node_id FROM connections WHERE socket_id = 's1'";
    for (int tries = 0; tries < 250 && !strcmp(q_text(e->c, t, sizeof t, conn_sql), "<null>"); tries++)
        usleep(20000);
    assert_string_equal(q_text(e->c, t, sizeof t, conn_sql), "ios|disconnected|1000|n1");
    assert_counters_match(e->c);

    /* pages: newest first, keyset by id, per room */
    struct page *p = get_page(e, e->st, 5, 0, "lobby");
    assert_non_null(strstr(p->json, "\"room\":\"lobby\""));
    char want[64];
    snprintf(want, sizeof want, "[{\"id\":%lld,", (long long)acks[29].id);
    assert_memory_equal(p->json, want, strlen(want));
    assert_non_null(strstr(p->json, "\"text\":\"tab\\there\\nline \\\\ 29 \\\"q\\\" é\""));
    p = get_page(e, e->st, 200, acks[4].id, NULL);
    snprintf(want, sizeof want, "[{\"id\":%lld,", (long long)acks[2].id);
    assert_memory_equal(p->json, want, strlen(want));
    assert_null(strstr(p->json, "lobby"));
    assert_non_null(strstr(p->json, "\"room\":null"));
    assert_non_null(strstr(p->json, "\"platform\":\"web\""));
    /* createdAt as ISO-8601 with milliseconds */
    char iso[32];
    util_format_db_time(now + 2, iso);
    iso[10] = 'T';
    assert_non_null(strstr(p->json, iso));
}

static void test_item_failure_is_isolated(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "n1", 0);
    e->c = pg_conn(e->url);
    int64_t now = util_wall_ms();
    static struct ack a[3];
    int pending = 0;
    assert_int_equal(store_connection_open(e->st, "dup", "websocket", NULL, NULL, now), 0);
    assert_int_equal(store_connection_open(e->st, "dup", "websocket", NULL, NULL, now), 0);
    queue_msg(e->st, &a[0], &pending, "dup", "ok", "first", NULL, NULL, now);
    queue_msg(e->st, &a[1], &pending, "dup", NULL, "no sender", NULL, NULL, now);
    queue_msg(e->st, &a[2], &pending, "dup", "ok", "third", NULL, NULL, now);
    wait_pending(e, &pending, 10000);
    assert_true(a[0].ok);
    assert_false(a[1].ok);
    assert_non_null(strstr(a[1].error, "sender"));
    assert_true(a[2].ok);
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM connections"), 1);
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM messages"), 2);
    assert_counters_match(e->c);
}

static void test_start_closes_only_own_stale_rows(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "n1", 0);
    e->c = pg_conn(e->url);
    int64_t now = util_wall_ms();
    assert_int_equal(store_connection_open(e->st, "mine", "websocket", NULL, NULL, now - 5000), 0);
    static struct ack a;
    int pending = 0;
    queue_msg(e->st, &a, &pending, "mine", "x", "sync", NULL, NULL, now);
    wait_pending(e, &pending, 10000);
    /* another node's active row, and n1's heartbeat a second before now */
    q_exec(e->c, "INSERT INTO connections(socket_id, status, connected_at, node_id, platform)"
                 " VALUES('theirs', 'active', '2020-01-01 00:00:00.000', 'n2', 'unknown')");
    char hb[24], sql[256];
    util_format_db_time(now - 1000, hb);
    /* simulate a crash: the store's rows stay active; close it without its shutdown rows */
    snprintf(sql, sizeof sql, "UPDATE daemon_status SET updated_at = '%s' WHERE node_id = 'n1'", hb);
    q_exec(e->c, sql);
    /* node n1 starting again (as after a crash of the first): its rows left active end at
     * its last heartbeat; node n2's row is not its business */
    store *st2 = open_node(e, "n1", 0);
    char t[256];
    assert_string_equal(q_text(e->c, t, sizeof t,
                               "SELECT duration_ms FROM connections WHERE socket_id = 'mine'"),
                        "4000");
    assert_string_equal(q_text(e->c, t, sizeof t,
                               "SELECT status FROM connections WHERE socket_id = 'mine'"),
                        "disconnected");
    assert_string_equal(q_text(e->c, t, sizeof t,
                               "SELECT status FROM connections WHERE socket_id = 'theirs'"),
                        "active");
    store_close(st2);
}

/* Two nodes (two stores on one database, each with its own loop on its own thread, as two
 * processes would be) flooding at once: every message acked, ids unique, counters exact. */
struct node_run {
    const char *url, *node;
    int n, acked;
    char err[256];
};

struct node_ack {
    int *pending, *acked;
};

static void on_node_ack(void *ud, bool ok, int64_t id, const char *error)
{
    struct node_ack *a = ud;
    (*a->pending)--;
    if (ok)
        (*a->acked)++;
}

static void *node_main(void *arg)
{
    struct node_run *r = arg;
    loop *l = loop_new(64);
    struct store_config cfg = {.path = r->url, .node_id = r->node};
    char *err = NULL;
    store *st = l ? store_open(&cfg, l, &err) : NULL;
    if (!st) {
        snprintf(r->err, sizeof r->err, "%s", err ? err : "no loop");
        free(err);
        loop_free(l);
        return NULL;
    }
    static const char *const plats[] = {"web", "ios", "android", "flutter"};
    int pending = 0;
    struct node_ack a = {&pending, &r->acked};
    int64_t now = util_wall_ms();
    for (int i = 0; i < r->n; i++) {
        while (store_message(st, r->node, "s", "text", 4, plats[i % 4], NULL, now + i,
                             on_node_ack, &a) < 0)
            run_until(l, int_is_zero, &pending, 100, 1);
        pending++;
        if (pending > 4000)
            run_until(l, int_is_zero, &pending, 60000, 1);
    }
    run_until(l, int_is_zero, &pending, 60000, 1);
    store_close(st);
    loop_free(l);
    return NULL;
}

static void test_two_nodes_counters_exact(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "first", 0); /* migrates */
    store_close(e->st);
    e->st = NULL;
    enum { N = 30000 };
    struct node_run runs[2] = {{e->url, "a", N, 0, ""}, {e->url, "b", N, 0, ""}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, node_main, &runs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(runs[i].err, "");
        assert_int_equal(runs[i].acked, N);
    }
    e->c = pg_conn(e->url);
    assert_int_equal(q_int(e->c, "SELECT count(DISTINCT id) FROM messages"), 2 * N);
    assert_counters_match(e->c);
}

static void test_retention(void **state)
{
    struct env *e = *state;
    e->st = open_node(e, "n1", 0);
    e->c = pg_conn(e->url);
    int64_t now = util_wall_ms();
    static struct ack a;
    int pending = 0;
    for (int i = 0; i < 2500; i++) {
        queue_msg(e->st, &a, &pending, "s", "old", "old", "web", NULL, now - 10 * DAY_MS + i);
        wait_pending(e, &pending, 10000);
    }
    for (int i = 0; i < 20; i++) {
        queue_msg(e->st, &a, &pending, "s", "new", "new", "ios", NULL, now + i);
        wait_pending(e, &pending, 10000);
    }
    store_close(e->st);
    e->st = open_node(e, "n1", 3);
    for (int i = 0; i < 200 && q_int(e->c, "SELECT count(*) FROM messages") != 20; i++) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM messages"), 20);
    assert_counters_match(e->c);
}

static double ingest(struct env *e, store *st, int n)
{
    struct ack *acks = calloc((size_t)n, sizeof *acks);
    int pending = 0;
    int64_t now = util_wall_ms();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        char room[8];
        snprintf(room, sizeof room, "r%d", i % 8);
        queue_msg(st, &acks[i], &pending, "bench", "sender", "a message of about forty bytes....",
                  "web", room, now);
        if (pending >= 50000)
            wait_pending(e, &pending, 60000);
    }
    wait_pending(e, &pending, 60000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < n; i++)
        assert_true(acks[i].ok);
    free(acks);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static void test_throughput_copy_vs_values(void **state)
{
    struct env *e = *state;
    enum { N = 200000 };
    const char *modes[] = {"copy", "values"};
    for (int m = 0; m < 2; m++) {
        setenv("RTD_PG_INSERT", modes[m], 1);
        store *st = open_node(e, modes[m], 0);
        double s = ingest(e, st, N);
        struct store_stats ss;
        store_get_stats(st, &ss);
        printf("# store on PostgreSQL (%s): %d messages committed and acked in %.3f s: %.0f msg/s,"
               " %llu commits\n",
               m == 0 ? "COPY" : "multi-row INSERT", N, s, N / s, (unsigned long long)ss.commits);
        store_close(st);
    }
    unsetenv("RTD_PG_INSERT");
    e->c = pg_conn(e->url);
    assert_int_equal(q_int(e->c, "SELECT count(*) FROM messages"), 2 * N);
    assert_counters_match(e->c);
}

int main(void)
{
    base_url = getenv("RTD_TEST_PG_URL");
    if (!base_url || !*base_url) {
        printf("SKIP: RTD_TEST_PG_URL is not set (tests/pg/unit.sh starts a PostgreSQL)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrates_and_writes_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_pages_and_counters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_item_failure_is_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_closes_only_own_stale_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_counters_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_throughput_copy_vs_values, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
