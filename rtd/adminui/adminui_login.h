/* adminui_login.h: the Admin UI's logins, for adminui.c, which owns them: admin-fcgi's
 * admins (admin_users rows with yescrypt hashes in rtd's own database, read through a
 * connection of their own), checked on a worker thread, throttled per address, and the
 * sessions a login opens (the UI reconnects with auth {sessionId}). */
#ifndef RTD_ADMINUI_LOGIN_H
#define RTD_ADMINUI_LOGIN_H

#include <json-c/json.h>

#include "rtd/net/loop.h"
#include "rtd/socketio/sio.h"

typedef struct adminui_login adminui_login;

/* db: the store's database, a SQLite path (opened read-only now) or a PostgreSQL URL
 * (connected at the first login). NULL with *err (malloc'ed) on failure. */
adminui_login *adminui_login_new(loop *l, const char *db, char **err);
/* Stops the worker; logins still pending are dropped. NULL is fine. */
void adminui_login_free(adminui_login *g);
/* The /admin namespace's middleware and its cancel (sio_use, sio_use_cancel; ud is g):
 * {sessionId} of a live session passes at once, {username, password} is checked on the
 * worker (SIO_AUTH_PENDING), anything else is refused with "invalid credentials". */
int adminui_login_authorize(sio_socket *s, struct json_object *auth, const char **error,
                            void *ud);
void adminui_login_cancel(sio_socket *s, void *ud);
/* In the CONNECT's on_connection: the id of the session the login opened, to send in a
 * `session` event, or NULL when the socket came with a session. Clears the socket's user
 * pointer. */
const char *adminui_login_session(sio_socket *s);

#endif
