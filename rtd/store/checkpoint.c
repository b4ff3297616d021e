/* checkpoint.c: the WAL checkpointer thread.
 *
 * SQLite's automatic checkpoint runs inside the committing connection: every few megabytes
 * of WAL, one commit of the writer would copy pages back and fsync, and every message
 * waiting behind it would be late. Here the writer's WAL hook only wakes this thread, which
 * runs PASSIVE checkpoints from its own connection: they never block the writer, which keeps
 * appending while older frames are copied.
 *
 * The WAL file only starts over from its beginning when a transaction begins while every
 * frame in it has been copied back, and under steady load the writer always appends a few
 * frames while a pass runs: the WAL would grow without end (measured: 1.3 GB after 10 s at
 * 10 000 messages/s). So once it holds RESTART_PAGES frames, a pass is followed by
 * shorter ones while it lags (each copies what the writer appended during the last), and a
 * last one runs with the writer paused between two transactions: it copies only the frames
 * of the last transaction and syncs (~1 ms after small transactions, 10-20 ms after the
 * large ones of a saturated ingest), and the writer's next transaction rewinds the WAL
 * (unless a reader still uses those frames; then a later pass tries again). RESTART_PAGES
 * (64 MB of WAL) keeps those pauses rare: 3 a second at 140 000 messages/s. Readers pay
 * nothing for a long WAL (its index is shared memory). journal_size_limit gives the disk
 * back after a burst. */
#include "config.h"

#include "rtd/store/sqlite.h"

#define CHECKPOINT_PAGES 1000
#define RESTART_PAGES 16000
#define RESTART_HARD (4 * RESTART_PAGES)
#define PAUSE_FRAMES 256

int store_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    store *st = ud;
    if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&st->cmu);
        if (!st->cwanted) {
            st->cwanted = true;
            pthread_cond_signal(&st->ccond);
        }
        pthread_mutex_unlock(&st->cmu);
    }
    return SQLITE_OK;
}

static int checkpoint_pass(store *st, int *log, int *done)
{
    *log = *done = 0;
    int rc = sqlite3_wal_checkpoint_v2(sqlite_be(st)->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, log, done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_error(RLOG_WARN, "WAL checkpoint failed", sqlite3_errmsg(sqlite_be(st)->cdb), NULL);
    pthread_mutex_lock(&st->smu);
    st->stats.checkpoints++;
    st->stats.wal_frames = *log > 0 ? (uint64_t)*log : 0;
    pthread_mutex_unlock(&st->smu);
    return rc;
}

void *store_checkpointer_main(void *arg)
{
    store *st = arg;
    int paused_at = -1;          /* WAL frames after the last paused pass */
    int prev_log = 0, prev_done = 0; /* after the last pass */
    for (;;) {
        pthread_mutex_lock(&st->cmu);
        while (!st->cwanted && !st->cstop)
            pthread_cond_wait(&st->ccond, &st->cmu);
        bool stop = st->cstop;
        st->cwanted = false;
        pthread_mutex_unlock(&st->cmu);
        if (stop)
            break;
        int log, done, passes = 1;
        int rc = checkpoint_pass(st, &log, &done);
        /* Whether the last pass copied anything (or the WAL started over meanwhile). */
        bool moved = done > prev_done || log < prev_log;
        /* Each further pass copies only what the writer appended during the last one:
         * shorter and shorter, so the pause (if one is needed) copies only a few frames. */
        while (rc == SQLITE_OK && log >= RESTART_PAGES && log - done > PAUSE_FRAMES &&
               moved && passes++ < 4) {
            int before = done;
            rc = checkpoint_pass(st, &log, &done);
            moved = done > before;
        }
        prev_log = log;
        prev_done = done;
        /* Caught up or not, a WAL this long did not start over: the writer's next
         * transaction had begun before the pass ended. A pause helps unless the passes are
         * stuck: a pass that copies nothing while frames remain means a reader still holds
         * older frames (an admin page reading a snapshot), and pausing every commit for it
         * would change nothing, so that waits for a later pass, up to RESTART_HARD frames.
         * No pause either if nothing was written since the last one. */
        if (rc != SQLITE_OK || log < RESTART_PAGES ||
            (log - done > PAUSE_FRAMES && !moved && log < RESTART_HARD) ||
            (log == paused_at && done >= log))
            continue;
        pthread_mutex_lock(&st->cmu);
        st->cpause = true;
        while (st->cwriting)
            pthread_cond_wait(&st->cpcond, &st->cmu);
        pthread_mutex_unlock(&st->cmu);
        uint64_t t0 = mono_ns();
        checkpoint_pass(st, &log, &done);
        paused_at = log;
        pthread_mutex_lock(&st->cmu);
        st->cpause = false;
        pthread_cond_broadcast(&st->cpcond);
        pthread_mutex_unlock(&st->cmu);
        pthread_mutex_lock(&st->smu);
        st->stats.wal_pauses++;
        st->stats.wal_pause_ms += (double)(mono_ns() - t0) / 1e6;
        pthread_mutex_unlock(&st->smu);
    }
    return NULL;
}
