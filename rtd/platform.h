/* platform.h: the platform's events on the namespace "/" — identify, send-message,
 * join, leave, get-messages, presence — validated, persisted through the store and
 * broadcast through sio. This is the product's public API (see README.md).
 *
 * Ownership: the platform borrows the sio server, the store and the metrics; it owns the
 * per-socket state it hangs on each sio_socket. */
#ifndef RTD_PLATFORM_H
#define RTD_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/net/loop.h"
#include "rtd/socketio/sio.h"
#include "rtd/store/store.h"

typedef struct platform platform;

struct platform_config {
    size_t max_message_bytes; /* send-message text, in bytes */
    bool presence;            /* user-connected / user-disconnected broadcasts */
    unsigned recovery_window_ms; /* connection-state recovery (offsets on receive-message); 0: off */
    unsigned recovery_max_events; /* longest replay, 0: 1000 */
    double rate_limit;        /* events per second per socket, 0: unlimited */
    unsigned rate_burst;
    unsigned max_rooms;       /* rooms per socket */
    const char *auth_secret;  /* HS256 secret for handshake tokens, NULL: no auth */
    size_t auth_secret_len;
};

/* Counters for /metrics and /health (loop thread only). */
struct platform_stats {
    uint64_t events_in;       /* events received from clients */
    uint64_t messages_in;     /* messages stored */
    uint64_t messages_out;    /* receive-message deliveries */
    uint64_t rejected;        /* events refused: invalid, rate limited, store full */
    uint64_t rate_limited;
    uint64_t recoveries_tried;     /* CONNECTs with a pid (--recovery-window) */
    uint64_t recoveries_succeeded;
    uint64_t recovery_replayed;    /* missed events replayed */
    uint64_t recovery_claimed;     /* sessions claimed from the shared store */
};

platform *platform_new(loop *l, sio_server *srv, store *st, const struct platform_config *cfg);
/* Frees the platform. Completions the store still owes it may run later (in store_close):
 * they only free their own state, and the last one frees the platform. */
void platform_free(platform *p);
/* Shutdown: from now on send-message and get-messages are refused (code "shutting_down");
 * what was accepted before is still stored and acknowledged. */
void platform_quiesce(platform *p);
/* Store completions (message commits, history reads) still to come. */
unsigned platform_outstanding(const platform *p);
void platform_get_stats(const platform *p, struct platform_stats *out);
/* Calls fn for each platform name with its number of connected sockets. */
void platform_each_count(const platform *p, void (*fn)(const char *platform, unsigned n, void *ud),
                         void *ud);
unsigned platform_connections(const platform *p);
/* In a cluster, totalConnections counts every node's sockets: count asks for the other
 * nodes' number and calls done(remote, ok, arg) once, perhaps later (ok false: only free
 * arg, the platform is going away). Presence events then wait for it. */
typedef void platform_count_done(uint64_t remote, bool ok, void *arg);
typedef int platform_count_fn(void *ud, platform_count_done *done, void *arg);
void platform_set_counter(platform *p, platform_count_fn *count, void *ud);
/* --recovery-window with a cluster: how a session claimed from the shared store closes the
 * socket another node may still have for it (recovery.h). */
typedef void platform_kick_fn(void *ud, const char *socket_id);
void platform_set_recovery_kick(platform *p, platform_kick_fn *kick, void *ud);

#endif
