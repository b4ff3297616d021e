/* sio.h: the Socket.IO v5 server on top of eio: namespaces, sockets, rooms, events, acks.
 *
 * This is the internal API the rest of the daemon is written against (platform.c, the
 * conformance server). Everything runs on the loop thread.
 *
 * Emitting: a packet is encoded once into a sio_packet (one Engine.IO packet for the JSON
 * part, one per binary attachment) and the same bytes are queued to every recipient, each
 * taking a reference. Broadcasting to a namespace or room walks a dense array of sockets;
 * nothing is allocated per recipient.
 *
 * Ownership: the server owns namespaces and sockets. A sio_socket is valid until its
 * namespace's disconnect callback has returned. JSON values handed to callbacks belong to
 * the caller of the callback and live only during the call. */
#ifndef RTD_SIO_H
#define RTD_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rtd/engine/eio.h"
#include "rtd/lib/util.h"

typedef struct sio_server sio_server;
typedef struct sio_namespace sio_namespace;
typedef struct sio_socket sio_socket;

struct sio_config {
    unsigned connect_timeout_ms; /* close an Engine.IO session with no CONNECT by then: 45000 */
    unsigned max_attachments;    /* binary attachments per packet: 10, as the reference */
    unsigned max_namespaces;     /* namespaces one session may join: 32 */
    unsigned max_json_depth;     /* nesting of event payloads: 32 */
    size_t max_binary_bytes;     /* attachment bytes of one packet: 4 * maxPayload */
    bool recovery;               /* connection-state recovery: v5 sockets get a pid, sent in
                                  * the CONNECT answer as Node.js does */
};

/* A binary attachment. */
typedef struct sio_bin {
    const unsigned char *data;
    size_t len;
} sio_bin;

/* Arguments of an incoming event or ack: elements [first, n) of array. Attachments are
 * referred to from the JSON by {"_placeholder":true,"num":i} objects (sio_arg_bin resolves
 * them). */
typedef struct sio_args {
    struct json_object *array;
    size_t first;
    const sio_bin *bins;
    size_t nbins;
} sio_args;

size_t sio_argc(const sio_args *a);
struct json_object *sio_arg(const sio_args *a, size_t i); /* NULL when out of range */
/* If arg i is a placeholder for an attachment, returns it. */
const sio_bin *sio_arg_bin(const sio_args *a, size_t i);
/* The arguments as JSON text joined by commas (no brackets), e.g. `"x",{"a":1}`. */
int sio_args_json(const sio_args *a, buf *out);

/* An encoded packet shared between recipients. */
typedef struct sio_packet {
    uint32_t refs;
    uint32_t n;          /* 1 + number of attachments */
    int64_t offset;      /* recovery: the store log id it carries as last argument, or 0 */
    eio_packet *parts[]; /* parts[0] holds the JSON; parts[1..] the attachments */
} sio_packet;

void sio_packet_unref(sio_packet *p);

/* Callbacks. ack_id is -1 when the client asked for no acknowledgement.
 * An authorize callback (middleware) runs before the CONNECT answer: it returns 0 to accept,
 * or non-zero to refuse with CONNECT_ERROR {"message": *error} (a static string). It runs
 * before a recovery is looked at, so the socket's id is still "" then.
 * It may also return SIO_AUTH_PENDING and answer later with sio_authorize_done() (on the
 * loop thread), e.g. once a worker thread checked a password: until then the socket is in
 * no namespace and a second CONNECT to it is refused. If the client goes away first, the
 * cancel callback of sio_use_cancel() runs and s is freed.
 * A connection callback runs once the CONNECT answer is queued. */
#define SIO_AUTH_PENDING 1000
typedef int sio_authorize_fn(sio_socket *s, struct json_object *auth, const char **error,
                             void *ud);
typedef void sio_authorize_cancel_fn(sio_socket *s, void *ud);
typedef void sio_connection_fn(sio_socket *s, struct json_object *auth, void *ud);
typedef void sio_event_fn(sio_socket *s, const char *event, const sio_args *a, int64_t ack_id,
                          void *ud);
typedef void sio_disconnect_fn(sio_socket *s, const char *reason, void *ud);
/* s is NULL if the socket went away first; a is NULL on timeout. */
typedef void sio_ack_fn(sio_socket *s, const sio_args *a, void *ud);

sio_server *sio_server_new(loop *l, const struct sio_config *cfg, const struct eio_config *ecfg);
void sio_server_free(sio_server *srv);
eio_server *sio_server_engine(sio_server *srv);

sio_namespace *sio_namespace_add(sio_server *srv, const char *name);
sio_namespace *sio_namespace_find(sio_server *srv, const char *name);
const char *sio_namespace_name(const sio_namespace *nsp);
size_t sio_namespace_size(const sio_namespace *nsp);
void sio_use(sio_namespace *nsp, sio_authorize_fn *fn, void *ud);
void sio_use_cancel(sio_namespace *nsp, sio_authorize_cancel_fn *fn);
/* Answers a pending authorization: error NULL accepts (the socket joins its namespace
 * now, as if the callback had returned 0), otherwise CONNECT_ERROR {"message": error}
 * (a static string) and s is freed. */
void sio_authorize_done(sio_socket *s, const char *error);
void sio_on_connection(sio_namespace *nsp, sio_connection_fn *fn, void *ud);
void sio_on_disconnect(sio_namespace *nsp, sio_disconnect_fn *fn, void *ud);
/* The disconnect handler set now (NULL: none) and its ud, for a layer that chains to it. */
sio_disconnect_fn *sio_disconnect_handler(const sio_namespace *nsp, void **ud);
/* Handler for one event name; event "*" catches every event without its own handler. */
int sio_on(sio_namespace *nsp, const char *event, sio_event_fn *fn, void *ud);

/* Encoding. args_json is the arguments' JSON text joined by commas (may be empty); bins
 * are the attachments its placeholders refer to. NULL when out of memory. */
sio_packet *sio_event_packet(const sio_namespace *nsp, const char *event, const char *args_json,
                             size_t args_len, const sio_bin *bins, size_t nbins);

/* Sending. */
int sio_send(sio_socket *s, sio_packet *p);
int sio_emit(sio_socket *s, const char *event, const char *args_json);
/* Emits (with attachments, when bins is not NULL) and waits for the client's ack, at most
 * timeout_ms (0: forever). */
int sio_emit_with_ack(sio_socket *s, const char *event, const char *args_json,
                      const sio_bin *bins, size_t nbins, unsigned timeout_ms, sio_ack_fn *fn,
                      void *ud);
/* Answers the client's ack_id: ACK, or BINARY_ACK when there are attachments. */
int sio_ack(sio_socket *s, int64_t ack_id, const char *args_json, const sio_bin *bins,
            size_t nbins);
/* Sends p to every socket of nsp (room NULL) or of the room, except `except` (may be NULL).
 * Returns the number of recipients. */
size_t sio_broadcast(sio_namespace *nsp, const char *room, const sio_socket *except,
                     sio_packet *p);

/* Rooms. A socket is always reachable as the room named by its id. */
int sio_join(sio_socket *s, const char *room);
int sio_leave(sio_socket *s, const char *room);
bool sio_in_room(const sio_socket *s, const char *room);
size_t sio_socket_room_count(const sio_socket *s);
size_t sio_room_size(const sio_namespace *nsp, const char *room);

/* Called when a session's transport changes (upgrade to WebSocket), for each of its
 * sockets. */
typedef void sio_upgrade_fn(sio_socket *s, void *ud);
void sio_on_upgrade(sio_server *srv, sio_upgrade_fn *fn, void *ud);

/* Number of connected sockets over all namespaces. */
size_t sio_server_socket_count(const sio_server *srv);

/* Server-side disconnect from the namespace (sends DISCONNECT); close_session also closes
 * the Engine.IO session. The disconnect callback runs before this returns. */
void sio_disconnect(sio_socket *s, bool close_session);

/* ---- hooks for the cluster layer (rtd/cluster registers them; sio knows nothing of it) ----
 * A target is the adapter's {rooms, except}: the sockets in any of rooms (every socket of
 * the namespace when there is none) and in none of except; a socket's id is a room. */
struct sio_target {
    const char *const *rooms;
    size_t nrooms;
    const char *const *except;
    size_t nexcept;
};
/* Runs after sio_broadcast's local delivery, once per broadcast, with the same packet. */
typedef void sio_broadcast_hook(sio_namespace *nsp, const struct sio_target *t, sio_packet *p,
                                void *ud);
void sio_set_broadcast_hook(sio_server *srv, sio_broadcast_hook *fn, void *ud);
/* Delivers p to the local sockets of t, each once, and runs no hook. Returns the count. */
size_t sio_broadcast_local(sio_namespace *nsp, const struct sio_target *t, sio_packet *p);
/* The local sockets of t, each once, as a malloc'ed array (*out, free it) of the count
 * returned; -1 when out of memory. Safe to disconnect them one by one afterwards. */
long sio_select(sio_namespace *nsp, const struct sio_target *t, sio_socket ***out);
void sio_each_namespace(sio_server *srv, void (*fn)(sio_namespace *nsp, void *ud), void *ud);
/* Every room of the namespace that has members, then every socket id. */
void sio_each_room(sio_namespace *nsp, void (*fn)(const char *room, void *ud), void *ud);
/* The rooms s joined (not its id), at most max of them; returns how many it has. */
size_t sio_socket_rooms(const sio_socket *s, const char **out, size_t max);
/* The handshake's auth payload of s as JSON text (NULL: none), kept for fetchSockets. */
const char *sio_socket_auth_json(const sio_socket *s);
int64_t sio_socket_connected_ms(const sio_socket *s);
/* What the application says about s, as JSON text (Node.js's socket.data, which
 * fetchSockets returns): copied; NULL clears it. */
int sio_socket_set_data_json(sio_socket *s, const char *json);
const char *sio_socket_data_json(const sio_socket *s);

/* ---- an observer of every socket (rtd/adminui sets it only while an admin watches, so
 * the hot paths pay one NULL test otherwise). Any member may be NULL. disconnected runs
 * once s is out of its namespace and rooms, before the namespace's disconnect callback;
 * event_in gets the whole [name, ...args] array before the handler; packet_out sees every
 * packet sio_send queues (CONNECT, ACK and the rest included). */
struct sio_observer {
    void (*connected)(sio_socket *s, void *ud);
    void (*disconnected)(sio_socket *s, const char *reason, void *ud);
    void (*joined)(sio_socket *s, const char *room, void *ud);
    void (*left)(sio_socket *s, const char *room, void *ud);
    void (*upgraded)(sio_socket *s, void *ud);
    void (*event_in)(sio_socket *s, struct json_object *payload, void *ud);
    void (*packet_out)(sio_socket *s, const sio_packet *p, void *ud);
};
/* o (kept by pointer) or NULL for none. */
void sio_set_observer(sio_server *srv, const struct sio_observer *o, void *ud);

const char *sio_socket_id(const sio_socket *s);
/* The private id of connection-state recovery ("" when recovery is off or for v3). */
const char *sio_socket_pid(const sio_socket *s);
sio_namespace *sio_socket_namespace(const sio_socket *s);
eio_session *sio_socket_session(const sio_socket *s);
sio_socket *sio_socket_find(sio_namespace *nsp, const char *id);
void sio_socket_set_user(sio_socket *s, void *user);
void *sio_socket_user(const sio_socket *s);

/* ---- connection-state recovery (sio_recovery.c; rtd/recovery.c drives it) ----
 * With cfg.recovery, a CONNECT whose auth carries a string pid asks the restore hook. The
 * hook returns 0 and fills sid (the socket id to give back) when it will restore the
 * session; the socket is then "restoring": it joins the namespace under that id, the
 * connection callback runs, but the CONNECT answer waits and everything sent to it is held
 * until sio_recovery_done. offset is the auth's offset, or NULL when it sent none. The hook
 * returns -1 for a fresh session, or 1 when it has to ask elsewhere (the shared store): it
 * then calls sio_restore_answer(pr, ...) exactly once, later, on the loop thread; the
 * CONNECT waits (bounded by the connect timeout) and pr stays valid until that call, even if
 * the client went away meanwhile. */
typedef struct sio_pending_restore sio_pending_restore;
typedef int sio_restore_fn(sio_namespace *nsp, const char *pid, const char *offset,
                           char sid[UTIL_ID_LEN + 1], sio_pending_restore *pr, void *ud);
/* The answer to a restore hook that returned 1: ok and the socket id to give back, or a
 * fresh session (ok false). */
void sio_restore_answer(sio_pending_restore *pr, bool ok, const char *sid);
/* Runs as a socket closes, before it leaves its rooms (reason as the disconnect callback's). */
typedef void sio_close_hook(sio_socket *s, const char *reason, void *ud);
void sio_set_recovery_hooks(sio_server *srv, sio_restore_fn *restore, sio_close_hook *close,
                            void *ud);
bool sio_socket_restoring(const sio_socket *s);
/* Sends p to a restoring socket now (a missed event), ahead of what is held. */
int sio_recovery_replay(sio_socket *s, sio_packet *p);
/* Ends the restore: recovered true sends CONNECT {sid, pid}; false gives the socket a new
 * pid first (a fresh session, the client sees recovered false). Then the held packets go,
 * except events whose offset is at most last_offset (the replay had them). */
void sio_recovery_done(sio_socket *s, bool recovered, int64_t last_offset);
/* Whether a disconnect reason lets the session be recovered (Node.js's list). */
bool sio_reason_recoverable(const char *reason);

#endif
