/* store_backend.h: what differs between the store's databases (not for use outside rtd/store/).
 *
 * The queue, the writer and reader threads, group commit, the per-transaction counter sums
 * and the completions (writer.c, reader.c, counters.c, store.c) know nothing of SQL; each
 * backend (sqlite.c, pg.c) fills one of these tables. The writer thread calls every write
 * entry, the reader thread only query; open and free run on the thread opening or closing
 * the store. Return conventions: 0 done, -1 the transaction is lost (errmsg says why); apply
 * may also return 1: that item alone failed (store_item_failed logged it) and the rest of
 * the transaction stands. */
#ifndef RTD_STORE_BACKEND_H
#define RTD_STORE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "rtd/store/store.h"

struct item;

struct store_backend {
    const char *name;
    /* Connects the writer (and the reader), migrates, prepares; st->bs is the backend's. */
    int (*open)(store *st, const struct store_config *cfg, char **err);
    /* Whether a transaction can run now. A backend that lost its server reconnects here,
     * at most as often as its backoff allows; false fails the batch at once with errmsg. */
    bool (*ready)(store *st);
    int (*begin)(store *st);
    int (*apply)(store *st, struct item *it);
    /* Before COMMIT: the transaction's counter sums (st->msg_agg, conn_agg, tot) and the
     * newest heartbeat (st->status_set, status_num), and whatever rows apply deferred. */
    int (*flush)(store *st);
    int (*commit)(store *st);
    void (*rollback)(store *st);
    /* After every transaction, committed or not: drops references into its items. */
    void (*txn_reset)(store *st);
    const char *(*errmsg)(store *st);
    /* Deletes up to limit of the oldest messages created before cutoff (a database time
     * text) inside the open transaction, subtracting them from st->msg_agg. */
    int (*retention)(store *st, const char *cutoff, int limit, int64_t *deleted);
    /* Inside the open transaction: ends this node's active rows (at_stop: now; else the
     * ones a crash left, bounded by the node's last heartbeat) adding their sessions to
     * st->tot, then writes this node's daemon_status row (started or stopped). */
    int (*close_active)(store *st, bool at_stop);
    int (*mark_started)(store *st);
    int (*mark_stopped)(store *st);
    /* The writer has been idle a second: give memory back (optional). */
    void (*idle)(store *st);
    /* Reader thread: fills it->out with the page (store.h) or sets it->err. */
    void (*query)(store *st, struct item *it);
    /* A helper thread the backend wants (SQLite's checkpointer), or NULL. */
    void *(*helper_main)(void *arg);
    void (*free)(store *st);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

#endif
