/* writer.c: the writer thread, sole user of the backend's write connection. It takes the whole
 * write queue at once and runs it in transactions of up to batch_max writes (group commit):
 * under load the queue grows while a transaction commits, so batches grow by themselves and
 * the cost of a commit is shared by thousands of rows. A message's item doubles as its
 * completion and goes back to the loop after COMMIT. Between batches: one retention step,
 * and after a second of quiet the memory is given back. At shutdown, the rows still active
 * end. Which database runs is the backend's business (store_backend.h): nothing here knows. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store_internal.h"

/* ---- the thread ------------------------------------------------------------------------ */

/* A write failed on its own (constraint): log it, rate-limited, since a bad caller could
 * otherwise fill the log. */
void store_item_failed(store *st, struct item *it, const char *error)
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

static int apply_item(store *st, struct item *it)
{
    switch (it->kind) {
    case K_STATUS:
        /* Only the newest heartbeat of a transaction is worth writing. */
        memcpy(st->status_num, it->num, sizeof st->status_num);
        snprintf(st->status_laravel, sizeof st->status_laravel, "%s", it->s[0] ? it->s[0] : "");
        st->status_set = true;
        return 0;
    case K_QUERY:
    case K_CLAIM:
        return 1;
    default:
        return st->be->apply(st, it);
    }
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
    const struct store_backend *be = st->be;
    uint64_t t0 = mono_ns();
    char *fatal = NULL;
    size_t done_ok = 0, item_fails = 0;
    if (be->ready(st) && be->begin(st) == 0) {
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
        if (store_flush_counters(st) < 0 || be->commit(st) < 0)
            goto fail;
        goto done;
    }
fail:
    fatal = dup_str(be->errmsg(st));
    be->rollback(st);
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
    const struct store_backend *be = st->be;
    char cutoff[24];
    util_format_db_time(util_wall_ms() - (int64_t)st->retention_days * 86400000, cutoff);
    int64_t deleted = 0;
    if (!be->ready(st) || be->begin(st) < 0 ||
        be->retention(st, cutoff, RETENTION_CHUNK, &deleted) < 0)
        goto fail;
    st->tot.messages = -deleted;
    if (store_flush_counters(st) < 0 || be->commit(st) < 0)
        goto fail;
    store_txn_reset(st);
    if (deleted < RETENTION_CHUNK) {
        st->ret_active = false;
        st->ret_next_ns = mono_ns() + RETENTION_PERIOD_MS * 1000000ull;
    }
    return;
fail:
    log_error(RLOG_ERROR, "Store retention failed", be->errmsg(st), NULL);
    be->rollback(st);
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
    const struct store_backend *be = st->be;
    st->stop_ms = util_wall_ms(); /* one time for every row closed and for stopped_at */
    if (!be->ready(st) || be->begin(st) < 0 || be->close_active(st, true) < 0 ||
        store_flush_counters(st) < 0 || be->mark_stopped(st) < 0 || be->commit(st) < 0)
        goto fail;
    store_txn_reset(st);
    return;
fail:
    log_error(RLOG_ERROR, "Store shutdown write failed", be->errmsg(st), NULL);
    be->rollback(st);
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

/* After a second without writes, the writer gives memory back: the backend's caches (SQLite's
 * page cache, clean after the commit) and every malloc arena's free pages (malloc_trim). An idle daemon then
 * holds little more than its clients' state, whatever bursts it went through. */
#define IDLE_TRIM_NS 1000000000ull

static void release_memory(store *st)
{
    if (st->be->idle)
        st->be->idle(st);
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

/* The start-up transaction: closes what a crash left active (this node's rows) and writes
 * this node's daemon_status row. */
int store_startup_txn(store *st, char **err)
{
    const struct store_backend *be = st->be;
    if (be->begin(st) < 0 || be->close_active(st, false) < 0 || store_flush_counters(st) < 0 ||
        be->mark_started(st) < 0 || be->commit(st) < 0)
        goto fail;
    store_txn_reset(st);
    return 0;
fail:
    set_err(err, "cannot start the database", be->errmsg(st));
    be->rollback(st);
    store_txn_reset(st);
    return -1;
}

/* ---- the pause a backend's helper thread may ask for ---------------------------------- */

/* The writer's side of the pause: called before and after each batch. */
void store_writer_enter(store *st)
{
    pthread_mutex_lock(&st->cmu);
    while (st->cpause)
        pthread_cond_wait(&st->cpcond, &st->cmu);
    st->cwriting = true;
    pthread_mutex_unlock(&st->cmu);
}

void store_writer_leave(store *st)
{
    pthread_mutex_lock(&st->cmu);
    st->cwriting = false;
    if (st->cpause)
        pthread_cond_broadcast(&st->cpcond);
    pthread_mutex_unlock(&st->cmu);
}

