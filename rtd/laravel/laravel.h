/* laravel.h: laravel-echo-server's protocol on rtd's "/" namespace (--laravel-config).
 *
 * Clients (Laravel Echo with broadcaster 'socket.io') send `subscribe {channel, auth}` and
 * `unsubscribe {channel}`; a public channel is the room of that name. Laravel publishes
 * through its RedisBroadcaster: PUBLISH <keyPrefix><channel> {"event", "data", "socket"},
 * which this module receives with PSUBSCRIBE <keyPrefix>* on its own Redis link and sends
 * to the room's sockets on this node as (event, channel, data), except the socket named
 * by "socket" (Laravel's toOthers()). Everything runs on the loop thread. */
#ifndef RTD_LARAVEL_H
#define RTD_LARAVEL_H

#include <stdint.h>

#include "rtd/laravel/laravel_config.h"
#include "rtd/lib/buf.h"
#include "rtd/net/http.h"
#include "rtd/net/loop.h"
#include "rtd/socketio/sio.h"

typedef struct laravel laravel;

/* Bytes of a handshake's Cookie and Referer kept for the auth callout
 * (eio_config.keep_headers); a longer one is not used. */
#define LARAVEL_MAX_HEADER 4096

struct laravel_stats {
    uint64_t subscribes;  /* channels joined */
    uint64_t refused;     /* subscribe/unsubscribe/client event: bad payload, over the limits */
    uint64_t received;    /* Redis messages received */
    uint64_t http_events;   /* events taken by POST events/batch_events with a client's key */
    uint64_t pusher_events; /* the same, Pusher-signed */
    uint64_t broadcasts;  /* events sent to a channel (every source, presence events too) */
    uint64_t delivered;   /* packets sent to sockets */
    uint64_t dropped;     /* Redis messages not JSON or without an event name */
    uint64_t auth_ok, auth_denied, auth_failed; /* auth callouts: 200, another status, none */
    uint64_t member_refused; /* presence answers without a usable channel_data.user_id */
    uint64_t api_requests; /* HTTP API and subscriber requests */
    uint64_t api_unauthorized, api_bad_request, api_too_large; /* refused: 403, 400, 413 */
};

/* c must outlive the result. NULL with *err (static text) on failure. */
laravel *laravel_new(loop *l, sio_server *srv, const struct laravel_config *c, const char **err);
void laravel_free(laravel *lv);
/* The HTTP API (GET /apps/:appId/status, /channels, /channels/:name, /channels/:name/users)
 * and the HTTP subscriber (POST /apps/:appId/events), with the clients' keys. */
int laravel_serve(laravel *lv, http_server *h, size_t max_body);
/* GET / answers "OK" as laravel-echo-server does (a load balancer's health check); other
 * paths 404. Register it after every other route: "/" is a prefix of them all. */
int laravel_serve_root(laravel *lv, http_server *h);
void laravel_get_stats(const laravel *lv, struct laravel_stats *out);
/* For the heartbeat (daemon_status.laravel, admin-fcgi's pages): {"broadcasts": N,
 * "deliveries": N, "channels": {"<name>": <sockets on this node>, ...}} into out, the
 * channels cut off below max bytes in all. */
int laravel_status_json(laravel *lv, buf *out, size_t max);

#endif
