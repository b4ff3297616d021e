/* dbfill.h: writes connections, messages and rtd's heartbeat the way rtd's writer does,
 * keeping the counter tables (message_counts, connection_counts, totals) consistent with
 * the rows in the same transaction. Used by admin-fcgi's tests, by tools/admin-seed (for the
 * shell and browser tests) and by the benchmark's million-message fill. It is test tooling:
 * rtd has its own writer (rtd/store/store.c).
 *
 * Ownership: dbfill_open prepares statements on the caller's connection, which must stay
 * open until dbfill_close. Strings are bound for the duration of each call only.
 * Times are ms since the epoch. Errors: -1 and a malloc'ed *err. */
#ifndef TOOLS_DBFILL_H
#define TOOLS_DBFILL_H

#include <stdint.h>

#include <sqlite3.h>

struct dbfill;

/* Creates or migrates the schema on db and prepares the writer. */
int dbfill_open(sqlite3 *db, struct dbfill **out, char **err);
void dbfill_close(struct dbfill *f);

/* Transactions around many calls (each call alone is its own transaction otherwise). */
int dbfill_begin(struct dbfill *f, char **err);
int dbfill_commit(struct dbfill *f, char **err);

/* A new active connection (platform NULL: 'unknown'; other strings may be NULL). */
int dbfill_connect(struct dbfill *f, const char *socket_id, const char *platform,
                   const char *user_id, const char *transport, const char *remote_addr,
                   const char *user_agent, int64_t at_ms, char **err);
/* identify: sets platform, user and app version; moves the connection's hourly count. */
int dbfill_identify(struct dbfill *f, const char *socket_id, const char *platform,
                    const char *user_id, const char *app_version, char **err);
/* Closes an active connection: disconnected_at, duration, the session totals. */
int dbfill_disconnect(struct dbfill *f, const char *socket_id, int64_t at_ms, char **err);
/* A stored message (room NULL: everyone); *id receives its id when id is not NULL. */
int dbfill_message(struct dbfill *f, const char *socket_id, const char *sender, const char *text,
                   const char *platform, const char *room, int64_t at_ms, int64_t *id, char **err);
/* rtd's heartbeat row; stopped_ms 0 leaves stopped_at NULL. */
int dbfill_status(struct dbfill *f, long pid, const char *version, int64_t started_ms,
                  int64_t updated_ms, int64_t stopped_ms, long connections, long messages_in,
                  long messages_out, char **err);

/* A realistic history: n_conn connections and n_msg messages spread over `days` days
 * ending at now_ms, in time order (ids grow with time), the newest `active` connections
 * left open, on flutter/web/laravel with rooms and senders. progress (may be NULL) is
 * called every 100 000 messages. One transaction. */
int dbfill_generate(struct dbfill *f, long n_conn, long n_msg, int days, long active,
                    int64_t now_ms, unsigned seed, void (*progress)(long done, long total),
                    char **err);

#endif
