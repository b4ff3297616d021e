/* adminui.h: the /admin namespace of the Socket.IO Admin UI (@socket.io/admin-ui 0.5).
 *
 * Logins are admin-fcgi's admins: rows of admin_users (yescrypt hashes) in rtd's own
 * database, read through a separate read-only connection. A login answers a `session`
 * event whose id the UI sends back as auth {sessionId} when it reconnects. Every 2 s the
 * admin sockets get `server_stats`. Everything runs on the loop thread but the password
 * checks and the admins lookups, which run on a worker thread of their own. */
#ifndef RTD_ADMINUI_H
#define RTD_ADMINUI_H

#include <stdbool.h>

#include "rtd/cluster/cluster.h"
#include "rtd/net/loop.h"
#include "rtd/socketio/sio.h"

enum adminui_mode { ADMINUI_OFF = 0, ADMINUI_PRODUCTION, ADMINUI_DEVELOPMENT };

struct adminui_config {
    enum adminui_mode mode;
    bool readonly;         /* --admin-ui-readonly: no commands */
    const char *db;        /* the store's database: a SQLite path or a PostgreSQL URL */
    const char *server_id; /* serverId in server_stats; NULL: the host name */
};

typedef struct adminui adminui;

/* Adds the /admin namespace to srv. NULL with *err (malloc'ed) on failure. */
adminui *adminui_new(loop *l, sio_server *srv, const struct adminui_config *cfg, char **err);
/* In a cluster (--redis): server_stats and the development-mode events go to the admins of
 * every node (the /admin namespace's broadcasts go through the cluster, so create the
 * Admin UI before the cluster), all_sockets adds the other nodes' sockets (fetchSockets),
 * and join, leave and _disconnect act on every node. Call before any admin connects. */
void adminui_set_cluster(adminui *a, cluster *c);
/* After sio_server_free (the namespace's sockets are gone). NULL is fine. */
void adminui_free(adminui *a);

#endif
