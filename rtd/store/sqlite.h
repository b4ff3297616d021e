/* sqlite.h: the SQLite backend's state, shared by sqlite.c and checkpoint.c only. */
#ifndef RTD_STORE_SQLITE_H
#define RTD_STORE_SQLITE_H

#include <sqlite3.h>

#include "rtd/store/store_internal.h"

/* The writer's prepared statements, by name and as an array (to clear or finalize all). */
#define WSTMT_COUNT 22
union wstmts {
    struct {
        sqlite3_stmt *begin, *commit, *rollback;
        sqlite3_stmt *conn_open, *conn_get, *conn_identify, *conn_transport, *conn_close;
        sqlite3_stmt *msg_insert, *status;
        sqlite3_stmt *mc_add, *mc_prune, *cc_add, *cc_prune, *tot_add, *tot_max;
        sqlite3_stmt *retention, *close_active, *sess_save, *sess_del, *stopped;
        sqlite3_stmt *conn_reopen;
    };
    sqlite3_stmt *all[WSTMT_COUNT];
};
_Static_assert(offsetof(union wstmts, conn_reopen) == (WSTMT_COUNT - 1) * sizeof(sqlite3_stmt *),
               "WSTMT_COUNT must match the named statements");

struct sqlite_be {
    /* Writer thread. */
    sqlite3 *wdb;
    union wstmts ws;
    buf scratch;
    /* Reader thread. */
    sqlite3 *rdb;
    sqlite3_stmt *q_room, *q_null;
    /* Checkpointer thread: its own connection copies the WAL back into the database, so the
     * writer never stalls on a checkpoint (nor on its fsync). */
    sqlite3 *cdb;
};

static inline struct sqlite_be *sqlite_be(store *st)
{
    return st->bs;
}

#define WAL_SIZE_LIMIT_STR "134217728" /* bytes kept of the WAL file when it starts over */

/* checkpoint.c: the WAL hook (on the writer's connection) and the thread. */
int store_wal_hook(void *ud, sqlite3 *db, const char *name, int pages);
void *store_checkpointer_main(void *arg);

#endif
