/* store.h: rtd's persistence: one writer thread that owns the SQLite write connection.
 *
 * The loop thread never touches the disk. It queues writes (connection opened, identified,
 * closed; message sent) and reads (history pages); the writer thread takes everything queued,
 * runs it in one transaction (group commit), and posts completions back to the loop through
 * loop_wake(). A message's completion runs only after its transaction committed, so an ack
 * built in it is the promise that the row is on disk (to the --sync level chosen).
 * History reads run on a second thread with its own read-only connection, so a long write
 * batch never delays them and they never block the writer (WAL).
 *
 * The counters the dashboard reads (message_counts, connection_counts, totals) are updated
 * by the writer in the same transaction as the rows they count.
 *
 * The store owns the loop's wake hook (loop_set_wake): completions are drained there.
 *
 * Ownership: every string passed in is copied before the call returns. Completion callbacks
 * run on the loop thread; the strings they receive live only during the call. */
#ifndef RTD_STORE_H
#define RTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/net/loop.h"

typedef struct store store;

struct store_config {
    const char *path;        /* database file, created if missing; or a PostgreSQL URL
                              * (postgresql://... or postgres://..., see store_db_is_pg) */
    const char *node_id;     /* this node's name in a shared database (PostgreSQL): its
                              * connection rows and daemon_status row carry it (NULL: "local") */
    bool sync_full;          /* PRAGMA synchronous=FULL instead of NORMAL */
    size_t max_queue;        /* writes waiting before store_* start refusing (0: 100000) */
    size_t max_queue_bytes;  /* and their bytes (0: 64 MiB): 100 000 writes of 10 KB would
                              * otherwise hold 1 GB */
    unsigned batch_max;      /* most writes in one transaction (0: 10000) */
    unsigned retention_days; /* delete messages older than this, in the background (0: keep) */
};

/* Opens (creating and migrating) the database, closes the connection rows a crash left
 * 'active', and starts the threads. Returns NULL and a malloc'ed *err on failure. */
store *store_open(const struct store_config *cfg, loop *l, char **err);
/* Commits everything queued, marks every still-active row closed (status 'disconnected',
 * now) and stops the threads. */
void store_close(store *st);

/* Writes. at_ms is wall-clock milliseconds since the epoch (the event's time). Each returns
 * 0, or -1 when the queue is full (the write is dropped; the caller reports it). */
int store_connection_open(store *st, const char *socket_id, const char *transport,
                          const char *remote_addr, const char *user_agent, int64_t at_ms);
/* A recovered socket (the same socket id): its row is active again (status, transport,
 * address, user agent; disconnected_at cleared), counted as no new connection; with no row
 * a new one opened at at_ms, as store_connection_open. */
int store_connection_reopen(store *st, const char *socket_id, const char *transport,
                            const char *remote_addr, const char *user_agent, int64_t at_ms);
int store_connection_identify(store *st, const char *socket_id, const char *user_id,
                              const char *platform, const char *app_version);
int store_connection_transport(store *st, const char *socket_id, const char *transport);
int store_connection_close(store *st, const char *socket_id, int64_t at_ms,
                           int64_t duration_ms);

/* Stores a message. done runs on the loop thread after the commit with ok true and the
 * row's id, or ok false (and error text) if it could not be stored. room may be NULL. */
typedef void store_message_done_fn(void *ud, bool ok, int64_t id, const char *error);
int store_message(store *st, const char *socket_id, const char *sender, const char *text,
                  size_t text_len, const char *platform, const char *room, int64_t at_ms,
                  store_message_done_fn *done, void *ud);

/* Reads a page of history, newest first: at most limit messages with id < before (before
 * <= 0: from the newest), of one room when room is not NULL (NULL: messages sent to
 * everyone, room IS NULL). done receives the page as a JSON array of
 * {id, socketId, sender, text, platform, room, createdAt} objects (createdAt ISO-8601 UTC
 * with milliseconds), or ok false and error text. */
typedef void store_query_done_fn(void *ud, bool ok, const char *json, size_t len,
                                 const char *error);
int store_query_messages(store *st, int limit, int64_t before, const char *room,
                         store_query_done_fn *done, void *ud);

/* Connection-state recovery sessions (recovery_sessions, rtd/recovery.c). rooms_json is a
 * JSON array; left_ms < 0: the socket is connected (a restart marks it left then). Save
 * inserts or replaces the pid's row; delete removes it. */
int store_session_save(store *st, const char *pid, const char *socket_id, const char *rooms_json,
                       const char *user_id, const char *platform, int64_t left_ms, int64_t since);
int store_session_delete(store *st, const char *pid);
/* Shared store: deletes every node's sessions left before before_ms (nobody claims them any
 * more). A no-op on SQLite. */
int store_sessions_expire(store *st, int64_t before_ms);
/* Takes the pid's session out of the database, whichever node wrote it, in one statement
 * (PostgreSQL: DELETE ... RETURNING), so that of two nodes asking for it one gets it. Runs
 * on the reader thread; done receives a JSON object {node, socketId, rooms (the rooms_json
 * text), userId, platform, leftMs (null: it was connected when its node stopped), since},
 * or null when there is no such session (always, on SQLite: one node, which loaded its
 * sessions at open). Returns 0, or -1 when the read queue is full. */
int store_session_claim(store *st, const char *pid, store_query_done_fn *done, void *ud);
/* Whether the database is shared by several nodes (PostgreSQL). */
bool store_shared(const store *st);
/* The sessions of this node found at open (after marking the connected ones left at the
 * open time), each once, and the newest message id then (*newest). Loop thread. */
typedef void store_session_fn(const char *pid, const char *socket_id, const char *rooms_json,
                              const char *user_id, const char *platform, int64_t left_ms,
                              int64_t since, void *ud);
void store_sessions_loaded(store *st, store_session_fn *fn, void *ud, int64_t *newest);

/* Heartbeat for the dashboard: rewritten into daemon_status by the writer. */
int store_status(store *st, unsigned connections, uint64_t messages_in, uint64_t messages_out);
/* The same with daemon_status.laravel: the Laravel mode's figures as JSON text (NULL: none),
 * at most STORE_STATUS_LARAVEL_MAX bytes (longer is refused). */
#define STORE_STATUS_LARAVEL_MAX 16384
int store_status_laravel(store *st, unsigned connections, uint64_t messages_in,
                         uint64_t messages_out, const char *laravel_json);

/* Figures for /health and /metrics (loop thread). */
struct store_stats {
    size_t queue_depth;          /* writes waiting */
    size_t queue_bytes;          /* their size */
    uint64_t commits;            /* transactions committed */
    uint64_t rows_written;
    uint64_t errors;
    bool db_ok;                  /* the last transaction succeeded */
    /* Commit latency histogram: counts of commits at most le_ms[i] long (cumulative). */
    uint64_t commit_le[8];
    uint64_t commit_count;
    double commit_sum_ms;
    /* The checkpointer: passes run, WAL frames after the last one, and the passes that
     * paused the writer to let the WAL start over (with their total duration). */
    uint64_t checkpoints;
    uint64_t wal_frames;
    uint64_t wal_pauses;
    double wal_pause_ms;
};
extern const double store_commit_buckets_ms[8];
void store_get_stats(store *st, struct store_stats *out);

/* Copies the database at src_path to dest_path with SQLite's online backup API: a
 * consistent copy even while rtd is writing. Runs in the caller's thread (the --backup
 * command, not the daemon). Returns 0, or -1 and a malloc'ed *err. */
int store_backup(const char *src_path, const char *dest_path, char **err);

/* Whether db names a PostgreSQL database (a postgresql:// or postgres:// URL: any libpq
 * connection URI; the PG* environment variables fill in what it leaves out) rather than a
 * SQLite file. */
bool store_db_is_pg(const char *db);

#endif
