/* eio.h: the Engine.IO v4 server: sessions, heartbeat, transports and upgrade.
 *
 * The loop thread owns every session. A session has one active transport (long-polling or
 * WebSocket) and, while upgrading, a second one being probed. Packets sent to a session go
 * straight to its WebSocket's output queue, or wait in the session for the next poll.
 *
 * Ownership: the server owns its sessions; a session lives from handshake until its
 * on_close callback has returned, after which the pointer is dead. Callers hold a session
 * across loop turns only through eio_session_id()/eio_find() or by clearing their pointer in
 * on_close. */
#ifndef RTD_EIO_H
#define RTD_EIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/engine/eio_packet.h"
#include "rtd/net/loop.h"

typedef struct eio_server eio_server;
typedef struct eio_session eio_session;
struct MHD_Connection;
struct http_request;
struct http_server;

enum eio_transport { EIO_T_POLLING = 0, EIO_T_WEBSOCKET = 1 };

struct eio_config {
    const char *path;            /* "/socket.io/" or "/engine.io/" */
    unsigned ping_interval_ms;   /* 25000 */
    unsigned ping_timeout_ms;    /* 20000 */
    unsigned upgrade_timeout_ms; /* 10000 */
    size_t max_payload;          /* 1000000: largest POST body / WebSocket message */
    size_t max_buffered;         /* output bytes queued to one session before it is closed */
    unsigned max_sessions;       /* 0: no limit */
    unsigned max_per_ip;         /* sessions per client address, 0: no limit */
    bool allow_eio3;             /* accept EIO=3 (the v3 protocol; see eio3.c) */
    unsigned send_threads;       /* helper threads for WebSocket writes, 0: none */
    /* Bytes of a handshake's Cookie and Referer headers kept for the upper layers
     * (--laravel-config's auth callout); 0 keeps none, and a longer one is not kept at all. */
    size_t keep_headers;
};

struct eio_callbacks {
    /* A session completed its handshake. Return non-zero to refuse it. */
    int (*on_open)(eio_session *s, void *ud);
    /* A message packet arrived (text or binary). data is only valid during the call. */
    void (*on_message)(eio_session *s, const unsigned char *data, size_t len, bool binary,
                       void *ud);
    /* The session moved to another transport (upgrade to WebSocket). May be NULL. */
    void (*on_upgrade)(eio_session *s, void *ud);
    /* The session is closing; it must not be used after this returns. */
    void (*on_close)(eio_session *s, const char *reason, void *ud);
};

eio_server *eio_server_new(loop *l, const struct eio_config *cfg, const struct eio_callbacks *cb,
                           void *ud);
/* Closes every session cleanly (close packets and frames go out; on_close runs). */
void eio_server_close_all(eio_server *srv, const char *reason);
/* WebSocket connections still finishing their close handshake. */
unsigned eio_server_sockets_open(const eio_server *srv);
/* Closes every session (their on_close runs) and frees the server. */
void eio_server_free(eio_server *srv);
const struct eio_config *eio_server_config(const eio_server *srv);
unsigned eio_server_session_count(const eio_server *srv);
/* Sessions by current transport, for metrics. */
void eio_server_transport_counts(const eio_server *srv, unsigned *polling, unsigned *websocket);

/* Bytes received and sent by every transport since start. */
void eio_server_bytes(const eio_server *srv, uint64_t *in, uint64_t *out);
/* The Admin UI's aggregated events since start, as @socket.io/admin-ui counts them: sessions
 * opened, packets with data received and queued (its "packet" and "packetCreate" events:
 * pings, pongs and probes carry none) and their data bytes, and the sessions closed by
 * reason (the first EIO_MAX_REASONS distinct reasons; later ones count as "other"). */
#define EIO_MAX_REASONS 12
struct eio_counts {
    uint64_t opened, packets_in, bytes_in, packets_out, bytes_out;
    char reason[EIO_MAX_REASONS][32]; /* "" for a slot not used yet */
    uint64_t closed[EIO_MAX_REASONS];
};
const struct eio_counts *eio_server_counts(const eio_server *srv);
/* The HTTP front that upgraded sockets are given back to. */
void eio_server_set_http(eio_server *srv, struct http_server *h);
/* Entry from the HTTP front (http.c) for a request under cfg->path. */
void eio_handle_request(eio_server *srv, struct http_request *req);

/* Queues a packet to the session, taking a reference (the caller keeps its own).
 * Returns 0, or -1 if the session is closing or over its output limit (it is then closed). */
int eio_send(eio_session *s, eio_packet *p);
/* Convenience: builds and sends one text message packet. */
int eio_send_text(eio_session *s, const char *data, size_t len);
/* Closes the session: the transport gets a close packet, on_close runs. */
void eio_close(eio_session *s, const char *reason);

const char *eio_session_id(const eio_session *s);
eio_session *eio_find(eio_server *srv, const char *sid);
enum eio_transport eio_session_transport(const eio_session *s);
int eio_session_protocol(const eio_session *s); /* 3 or 4 */
/* Handshake facts kept for the upper layers: peer address, User-Agent, query string. */
const char *eio_session_remote_addr(const eio_session *s);
const char *eio_session_user_agent(const eio_session *s);
/* The handshake's Cookie and Referer headers, or NULL (none, too long, keep_headers 0). */
const char *eio_session_cookie(const eio_session *s);
const char *eio_session_referer(const eio_session *s);
/* Value of a query parameter of the handshake request, or NULL. */
const char *eio_session_query(const eio_session *s, const char *name);
/* Every query parameter of the handshake as "name\0value\0" pairs ending with "\0". */
const char *eio_session_query_all(const eio_session *s);
void eio_session_set_user(eio_session *s, void *user);
void *eio_session_user(const eio_session *s);

#endif
