/* store_internal.h: what the store's files share (not for use outside rtd/store/).
 *
 * The store is one object with four threads' worth of state, split by seam:
 *   store.c       the queues the loop thread fills, the completions it drains, open/close
 *   writer.c      the writer thread: group commit, batching, retention and shutdown steps
 *   counters.c    the dashboard's counters, summed per transaction (written by the backend)
 *   reader.c      the history reader thread
 *   store_backend.h  the interface of a database: the SQL of every write and read
 *   sqlite.c      SQLite (sqlite.h), with checkpoint.c, its WAL checkpointer thread
 *   pg.c          PostgreSQL on libpq
 * Each field of struct store says which thread owns it. */
#ifndef RTD_STORE_INTERNAL_H
#define RTD_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/store/store.h"
#include "rtd/store/store_backend.h"

enum {
    DEFAULT_MAX_QUEUE = 100000,
    DEFAULT_MAX_QUEUE_BYTES = 64 << 20,
    DEFAULT_BATCH_MAX = 10000,
    BUSY_TIMEOUT_MS = 5000,
    RETENTION_CHUNK = 1000,
    RETENTION_PERIOD_MS = 60000,
    ITEM_FAIL_LOG_MS = 10000,
};

enum item_kind { K_OPEN, K_IDENTIFY, K_TRANSPORT, K_CLOSE, K_MESSAGE, K_STATUS, K_QUERY, K_SESSION, K_CLAIM };

/* String slots per kind:
 *   K_OPEN      socket_id, transport, remote_addr, user_agent
 *   K_IDENTIFY  socket_id, user_id, platform, app_version
 *   K_TRANSPORT socket_id, transport
 *   K_CLOSE     socket_id
 *   K_MESSAGE   socket_id, sender, text, platform, room
 *   K_QUERY     room
 *   K_CLAIM     pid (a read: the reader thread takes the session, see store_session_claim)
 *   K_SESSION   pid, socket_id, rooms, user_id, platform (num: left_ms, since, 1 = delete) */
#define NSTR 5

struct item {
    struct item *next;
    enum item_kind kind;
    bool ok; /* result: message stored / query answered */
    int64_t at_ms;
    int64_t num[3]; /* close: duration; status: counters; query: limit, before */
    int64_t id;     /* result: the message's row id */
    size_t size;    /* bytes allocated for the item, counted in depth_bytes */
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

struct store {
    loop *l;
    size_t max_queue;
    size_t max_queue_bytes;
    unsigned batch_max;
    unsigned retention_days;

    /* Write queue (loop thread pushes, writer takes). */
    pthread_mutex_t qmu;
    pthread_cond_t qcond;
    struct item *qhead, *qtail;
    size_t depth; /* queued + in the transaction being written */
    size_t depth_bytes; /* their items' sizes */
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

    /* The database: its entry points and its own state (both threads' connections). */
    const struct store_backend *be;
    void *bs;
    const char *node_id; /* copied at open */
    /* Recovery sessions the backend's open loaded (store_sessions_loaded hands them out). */
    struct item *sessions;
    int64_t sessions_newest;

    /* Writer-thread state. */
    struct agg msg_agg, conn_agg;
    struct totals_acc tot;
    bool status_set;
    int64_t status_num[3];
    char status_laravel[STORE_STATUS_LARAVEL_MAX]; /* "" when none (NULL in the row) */
    int64_t stop_ms; /* the shutdown transaction's time (wall clock) */
    bool failing; /* the last transaction failed (logged once per episode) */
    uint64_t failed_txns;
    uint64_t item_fail_log_ns;
    uint64_t item_fails_unlogged;
    bool ret_active;      /* a retention pass is under way */
    uint64_t ret_next_ns; /* monotonic time of the next pass */
    bool trim_pending;    /* writes since memory was last given back */
    uint64_t last_commit_ns; /* when the writer last finished a batch */
    size_t last_batch;       /* its writes (counted up to COALESCE_ENOUGH) */

    /* The backend's helper thread (SQLite's checkpointer) and the writer pause it may ask
     * for: the helper sets cpause to work while no transaction runs; the writer sets
     * cwriting around each batch and waits on cpcond while cpause is set. */
    pthread_mutex_t cmu;
    pthread_cond_t ccond;
    bool cwanted, cstop;
    pthread_cond_t cpcond;
    bool cpause, cwriting;
    pthread_t helper;
    bool checkpointer_started;

    pthread_t writer, reader;
    bool writer_started, reader_started;
    bool sync_inited;
};

/* ---- small helpers ------------------------------------------------------------------- */

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static inline void set_err(char **err, const char *what, const char *detail)
{
    if (!err)
        return;
    size_t n = strlen(what) + (detail ? strlen(detail) + 2 : 0) + 1;
    *err = malloc(n);
    if (*err)
        snprintf(*err, n, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* Logs msg with {"error":"...", <extra>} where extra is a JSON member list or NULL. */
static inline void log_error(enum rlog_level level, const char *msg, const char *error, const char *extra)
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
static inline bool hour_of(const char *t, size_t n, char hour[20])
{
    if (!t || n < 13)
        return false;
    memcpy(hour, t, 13);
    memcpy(hour + 13, ":00:00", 7);
    return true;
}

/* ---- across the files ---------------------------------------------------------------- */

/* counters.c (writer thread) */
int store_agg_add(struct agg *a, const char hour[20], const char *p, size_t n, int64_t delta);
void store_agg_reset(struct agg *a);
void store_agg_free(struct agg *a);
const char *store_agg_plat(const struct agg *a, const struct agg_entry *e);
void store_tot_close(struct totals_acc *t, int64_t duration_ms);
int store_flush_counters(store *st); /* the backend's flush */
void store_txn_reset(store *st);

/* writer.c: the start-up transaction (on the opening thread), the thread, the rate-limited
 * log of a write that failed alone, and the writer's side of the helper's pause. */
int store_startup_txn(store *st, char **err);
void *store_writer_main(void *arg);
void store_item_failed(store *st, struct item *it, const char *error);
void store_writer_enter(store *st);
void store_writer_leave(store *st);

/* reader.c */
void *store_reader_main(void *arg);

/* store.c: hands a list of finished items (head..tail, linked) to the loop thread. */
void store_post_done(store *st, struct item *head, struct item *tail);

/* sqlite.c: --backup of a SQLite file. */
int store_sqlite_backup(const char *src_path, const char *dest_path, char **err);

/* store.c: a K_SESSION item from a loaded row (s: pid, socket_id, rooms, user_id, platform),
 * for the backends' open to chain on st->sessions. */
struct item *store_session_item(const char *const *s, int64_t left_ms, int64_t since);

#endif
