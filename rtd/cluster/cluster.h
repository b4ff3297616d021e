/* cluster.h: rtd as one node of a Socket.IO cluster over Redis, speaking the classic
 * protocol of @socket.io/redis-adapter 8.3 (wire formats: ../shared/reference/redis-adapter.md
 * and adapter_codec.h), so rtd nodes, Node.js socket.io nodes with the adapter and the
 * emitters (@socket.io/redis-emitter, PHP) share broadcasts and requests.
 *
 * sio hands every broadcast to the cluster once (sio_set_broadcast_hook) and the cluster
 * publishes it; what other nodes publish comes back through sio's local path
 * (sio_broadcast_local). Requests on key-request#nsp# (socketsJoin, socketsLeave,
 * disconnectSockets, fetchSockets, allRooms, serverSideEmit, broadcasts with acks) act on
 * the local sockets and are answered on key-response#nsp#[uid#]. Each namespace that
 * exists when the cluster starts takes part.
 * Everything runs on the loop thread; Redis never blocks it (redis_link.h). */
#ifndef RTD_CLUSTER_H
#define RTD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rtd/cluster/redis_link.h"
#include "rtd/net/loop.h"
#include "rtd/socketio/sio.h"

typedef struct cluster cluster;

struct cluster_config {
    const char *url; /* --redis */
    const char *key; /* --redis-key, "socket.io" */
};

struct cluster_stats {
    struct redis_link_stats link;
    uint64_t delivered; /* broadcasts from other nodes delivered here */
    uint64_t dropped;   /* messages refused: malformed, wrong types, unknown namespace or type */
    uint64_t requests;  /* requests from other nodes handled */
};

/* A serverSideEmit from another node: event and its arguments (JSON, comma-joined). With
 * want_ack the handler may answer with cluster_server_ack (once, JSON text of the one
 * argument) during the call. */
typedef void cluster_server_event_fn(cluster *c, const char *nsp, const char *event,
                                     const char *args_json, void *ack_token, void *ud);
int cluster_server_ack(cluster *c, void *ack_token, const char *arg_json);

/* Counts the sockets of nsp on the other nodes (rtd and Node.js alike) with the adapter's
 * SOCKETS request: the servers are counted with PUBSUB NUMSUB key-request#nsp#, and fn runs
 * once they all answered or after timeout_ms with what came (ok true), at once with 0 when
 * the link is down, or with ok false from cluster_free (then only free arg). Concurrent
 * callers share one request. */
typedef void cluster_count_fn(uint64_t remote, bool ok, void *arg);
int cluster_count_remote(cluster *c, const char *nsp, unsigned timeout_ms, cluster_count_fn *fn,
                         void *arg);

/* Fetches the sockets of nsp on the other nodes (fetchSockets: a REMOTE_FETCH request, the
 * servers counted with PUBSUB NUMSUB). fn runs once with a JSON array of what they sent
 * ({id, handshake, rooms, data} each; owned by the caller after the call, who puts it):
 * when every server answered or after timeout_ms with what came (ok true), at once with []
 * when the link is down, or with ok false and NULL from cluster_free (then only free arg).
 * At most MAX_FETCHES (16) at once: -1 beyond (fn is not called). */
typedef void cluster_fetch_fn(struct json_object *sockets, bool ok, void *arg);
int cluster_fetch_remote(cluster *c, const char *nsp, unsigned timeout_ms, cluster_fetch_fn *fn,
                         void *arg);

/* socketsJoin(room), socketsLeave(room) and disconnectSockets(close) on the other nodes, for
 * the sockets of nsp in in_room (NULL: all of them): REMOTE_JOIN, REMOTE_LEAVE and
 * REMOTE_DISCONNECT requests in the adapter's {opts} form, which nobody answers. The local
 * sockets are the caller's to act on. 0, or -1 (unknown namespace, link down, no memory). */
enum cluster_op { CLUSTER_JOIN, CLUSTER_LEAVE, CLUSTER_DISCONNECT };
int cluster_remote_op(cluster *c, const char *nsp, enum cluster_op op, const char *in_room,
                      const char *room, bool close);

/* Asks the other nodes to disconnect the socket sid of nsp, closing its connection (the
 * adapter's disconnectSockets with close true); this node ignores its own request. */
int cluster_disconnect_remote(cluster *c, const char *nsp, const char *sid);
/* With on, the sockets this node sends for another node's fetchSockets carry
 * data._admin {clientId, transport}, as @socket.io/admin-ui's instrument() sets it on every
 * socket, so a Node.js admin shows them like its own (rtd --admin-ui). */
void cluster_set_admin_data(cluster *c, bool on);
cluster *cluster_new(loop *l, sio_server *srv, const struct cluster_config *cfg, char **err);
/* Free the sio server first: its last disconnects still broadcast through the cluster. */
void cluster_free(cluster *c);
void cluster_on_server_event(cluster *c, cluster_server_event_fn *fn, void *ud);
const char *cluster_uid(const cluster *c);
void cluster_get_stats(const cluster *c, struct cluster_stats *out);

/* Handles one message as if Redis had delivered it (the tests, the fuzz target). */
void cluster_handle_message(cluster *c, const char *pattern, const char *channel,
                            size_t channel_len, const unsigned char *data, size_t len);

#endif
