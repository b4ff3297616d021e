/* store.c: rtd's persistence (see store.h): the queues the loop thread fills, the completions
 * it drains through its wake hook, and opening and closing the database and its threads.
 * The threads live in writer.c, checkpoint.c and reader.c; the counters in counters.c
 * (store_internal.h has the map).
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
 *  - Queue depth counts writes queued or in the transaction being written, in items and in
 *    bytes, so max_queue and max_queue_bytes bound the memory held by writes, whichever
 *    thread holds them.
 *  - Errors: a constraint failure (a duplicate socket_id, a NULL sender) fails only its own
 *    write; anything else (disk full, I/O error, lock timeout, the server gone) rolls back
 *    the transaction and every message in it completes with ok false.
 *  - History reads use their own connection on their own thread (with SQLite in WAL mode
 *    they see the last commit and neither wait for nor delay the writer).
 *  - The database is a backend (store_backend.h): sqlite.c for a path, pg.c for a
 *    postgresql:// or postgres:// URL. Nothing above the backends knows which one runs.
 *  - Retention deletes old messages 1000 at a time, oldest first, between write batches, so a
 *    large backlog never holds the write lock for long. */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/store/store_internal.h"

const double store_commit_buckets_ms[8] = {0.5, 1, 2, 5, 10, 25, 50, 100};

/* ---- completions ------------------------------------------------------------------------
 * The writer and the reader hand finished items back here; the loop's wake hook runs their
 * callbacks on the loop thread. */

void store_post_done(store *st, struct item *head, struct item *tail)
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
    it->size = sizeof *it + total;
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
    if (st->wstop || st->depth >= st->max_queue ||
        it->size > st->max_queue_bytes - st->depth_bytes) {
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
    st->depth_bytes += it->size;
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

static int open_item(store *st, const char *socket_id, const char *transport,
                     const char *remote_addr, const char *user_agent, int64_t at_ms, bool reopen)
{
    const char *s[] = {socket_id, transport, remote_addr, user_agent};
    size_t len[] = {slen(socket_id), slen(transport), slen(remote_addr), slen(user_agent)};
    struct item *it = item_new(K_OPEN, 4, s, len);
    if (it) {
        it->at_ms = at_ms;
        it->num[0] = reopen;
    }
    return push_write(st, it);
}

int store_connection_open(store *st, const char *socket_id, const char *transport,
                          const char *remote_addr, const char *user_agent, int64_t at_ms)
{
    return open_item(st, socket_id, transport, remote_addr, user_agent, at_ms, false);
}

int store_connection_reopen(store *st, const char *socket_id, const char *transport,
                            const char *remote_addr, const char *user_agent, int64_t at_ms)
{
    return open_item(st, socket_id, transport, remote_addr, user_agent, at_ms, true);
}

int store_connection_identify(store *st, const char *socket_id, const char *user_id,
                              const char *platform, const char *app_version)
{
    const char *s[] = {socket_id, user_id, platform, app_version};
    size_t len[] = {slen(socket_id), slen(user_id), slen(platform), slen(app_version)};
    return push_write(st, item_new(K_IDENTIFY, 4, s, len));
}

int store_session_save(store *st, const char *pid, const char *socket_id, const char *rooms_json,
                       const char *user_id, const char *platform, int64_t left_ms, int64_t since)
{
    const char *s[] = {pid, socket_id, rooms_json, user_id, platform};
    size_t len[] = {slen(pid), slen(socket_id), slen(rooms_json), slen(user_id), slen(platform)};
    struct item *it = item_new(K_SESSION, 5, s, len);
    if (it) {
        it->num[0] = left_ms;
        it->num[1] = since;
    }
    return push_write(st, it);
}

int store_session_delete(store *st, const char *pid)
{
    const char *s[] = {pid};
    size_t len[] = {slen(pid)};
    struct item *it = item_new(K_SESSION, 1, s, len);
    if (it)
        it->num[2] = 1;
    return push_write(st, it);
}

int store_sessions_expire(store *st, int64_t before_ms)
{
    if (!store_shared(st))
        return 0; /* one node: recovery.c deletes its expired sessions one by one */
    struct item *it = item_new(K_SESSION, 0, NULL, NULL);
    if (it) {
        it->num[0] = before_ms;
        it->num[1] = util_wall_ms();
        it->num[2] = 2;
    }
    return push_write(st, it);
}

struct item *store_session_item(const char *const *s, int64_t left_ms, int64_t since)
{
    size_t len[5];
    for (int i = 0; i < 5; i++)
        len[i] = slen(s[i]);
    struct item *it = item_new(K_SESSION, 5, s, len);
    if (it) {
        it->num[0] = left_ms;
        it->num[1] = since;
    }
    return it;
}

void store_sessions_loaded(store *st, store_session_fn *fn, void *ud, int64_t *newest)
{
    *newest = st->sessions_newest;
    while (st->sessions) {
        struct item *it = st->sessions;
        st->sessions = it->next;
        fn(it->s[0], it->s[1], it->s[2], it->s[3], it->s[4], it->num[0], it->num[1], ud);
        free(it);
    }
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
    return store_status_laravel(st, connections, messages_in, messages_out, NULL);
}

int store_status_laravel(store *st, unsigned connections, uint64_t messages_in,
                         uint64_t messages_out, const char *laravel_json)
{
    const char *s[] = {laravel_json};
    size_t len[] = {laravel_json ? strlen(laravel_json) : 0};
    if (len[0] >= STORE_STATUS_LARAVEL_MAX)
        return -1;
    struct item *it = item_new(K_STATUS, 1, s, len);
    if (it) {
        it->num[0] = connections;
        it->num[1] = (int64_t)messages_in;
        it->num[2] = (int64_t)messages_out;
    }
    return push_write(st, it);
}

static int push_read(store *st, struct item *it);

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
    return push_read(st, it);
}

int store_session_claim(store *st, const char *pid, store_query_done_fn *done, void *ud)
{
    const char *s[] = {pid};
    size_t len[] = {slen(pid)};
    struct item *it = item_new(K_CLAIM, 1, s, len);
    if (!it)
        return -1;
    it->at_ms = util_wall_ms();
    it->query_done = done;
    it->ud = ud;
    return push_read(st, it);
}

bool store_shared(const store *st)
{
    return st->be == &store_pg_backend;
}

static int push_read(store *st, struct item *it)
{
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
    out->queue_bytes = st->depth_bytes;
    pthread_mutex_unlock(&st->qmu);
}

/* ---- open and close --------------------------------------------------------------------- */

static void stop_threads(store *st)
{
    pthread_mutex_lock(&st->cmu);
    st->cstop = true;
    pthread_mutex_unlock(&st->cmu);
    pthread_cond_signal(&st->ccond);
    if (st->checkpointer_started)
        pthread_join(st->helper, NULL);
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
    if (st->be)
        st->be->free(st);
    free((char *)st->node_id);
    store_agg_free(&st->msg_agg);
    store_agg_free(&st->conn_agg);
    free_list(st->qhead);
    free_list(st->rhead);
    free_list(st->sessions);
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
    st->max_queue_bytes = cfg->max_queue_bytes ? cfg->max_queue_bytes : DEFAULT_MAX_QUEUE_BYTES;
    st->batch_max = cfg->batch_max ? cfg->batch_max : DEFAULT_BATCH_MAX;
    st->retention_days = cfg->retention_days;
    st->stats.db_ok = true;
    st->ret_next_ns = mono_ns(); /* the first retention pass starts as soon as the writer idles */
    st->be = store_db_is_pg(cfg->path) ? &store_pg_backend : &store_sqlite_backend;
    st->node_id = dup_str(cfg->node_id && *cfg->node_id ? cfg->node_id : "local");
    if (!st->node_id) {
        set_err(err, "out of memory", NULL);
        goto fail;
    }

    if (st->be->open(st, cfg, err) < 0)
        goto fail;

    loop_set_wake(l, on_wake, st);
    if (st->be->helper_main) {
        if (pthread_create(&st->helper, NULL, st->be->helper_main, st) != 0) {
            set_err(err, "cannot start the checkpointer thread", strerror(errno));
            goto fail_unhook;
        }
        st->checkpointer_started = true;
    }
    if (pthread_create(&st->writer, NULL, store_writer_main, st) != 0) {
        set_err(err, "cannot start the writer thread", strerror(errno));
        goto fail_unhook;
    }
    st->writer_started = true;
    if (pthread_create(&st->reader, NULL, store_reader_main, st) != 0) {
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

bool store_db_is_pg(const char *db)
{
    return db && (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0);
}

int store_backup(const char *src_path, const char *dest_path, char **err)
{
    if (err)
        *err = NULL;
    if (store_db_is_pg(src_path)) {
        set_err(err, "--backup copies SQLite files only; back a PostgreSQL database up with"
                     " pg_dump (e.g. pg_dump -Fc -f rtd.dump 'postgresql://...'), or with"
                     " PostgreSQL's continuous archiving",
                NULL);
        return -1;
    }
    return store_sqlite_backup(src_path, dest_path, err);
}
