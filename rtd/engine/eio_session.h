/* eio_session.h: the session core's interface (eio.c) for the engine's own files: the
 * session and server structures, and what the transports (eio_polling.c, wsconn.c) and the
 * server front (eio_server.c) call. The dependencies go one way: the transports use this,
 * the session drives them only through eio_transport.h, and only the server front knows
 * both transports (eio_polling.h, wsconn.h). Nothing outside rtd/engine/ includes this. */
#ifndef RTD_EIO_SESSION_H
#define RTD_EIO_SESSION_H

#include "rtd/engine/eio.h"
#include "rtd/engine/eio_transport.h"
#include "rtd/lib/map.h"
#include "rtd/lib/util.h"
#include "rtd/net/http.h"
#include "rtd/net/sendpool.h"
#include "rtd/net/ws.h"

typedef struct wsconn wsconn; /* the WebSocket transport's connection (wsconn.c) */

enum eio_state { EIO_S_OPEN, EIO_S_CLOSED };

/* A FIFO of shared packets waiting for a poll (ring buffer, grows by doubling). */
typedef struct pktq {
    eio_packet **items;
    uint32_t head, len, cap;
    size_t bytes;
} pktq;

struct eio_session {
    eio_server *srv;
    char sid[UTIL_ID_LEN + 1];
    uint8_t protocol;         /* 4, or 3 for --allow-eio3 sessions */
    uint8_t transport;        /* enum eio_transport of the active transport */
    uint8_t state;            /* enum eio_state */
    bool awaiting_pong;       /* heartbeat: a ping is out */
    bool post_active;         /* a POST is being processed (polling) */
    bool upgrading;           /* a probed WebSocket is waiting for "5" */
    bool b64;                 /* v3 polling: binary as base64 */
    bool doomed;              /* close at the end of this turn (output overflow) */
    bool lingering;           /* closed, waiting for one last GET to take its final packets */
    bool jsonp_set;           /* v3: the current poll is JSONP */
    char jsonp[12];           /* v3: its index */
    http_request *poll;       /* the held GET (polling), or NULL */
    pktq queue;               /* packets waiting for the next GET (polling transport) */
    struct eio_transport_ref tp;  /* the active transport */
    struct eio_transport_ref probe; /* the transport being upgraded to (ops NULL: none) */
    loop_timer heartbeat;     /* ping interval, then ping timeout */
    loop_timer upgrade;       /* upgrade timeout and noop checks */
    uint64_t probe_started;   /* loop time the probe WebSocket arrived */
    char *remote_addr;
    char *user_agent;
    char *cookie, *referer;   /* the handshake's Cookie and Referer (keep_headers), or NULL */
    char *query;              /* "k\0v\0k\0v\0\0" of the handshake */
    void *user;
    /* Intrusive links: polling sessions with a held GET and packets to flush this turn;
     * closed sessions waiting to be freed at the end of the turn. */
    eio_session *flush_prev, *flush_next;
    bool flush_pending;
    eio_session *zombie_next;
};

/* What a handshake request told us, kept by the session it creates. */
struct eio_handshake {
    char *remote_addr;
    char *user_agent;
    char *cookie, *referer;
    char *query;
    int protocol;
    bool b64;
};

struct eio_server {
    loop *l;
    struct eio_config cfg;
    struct eio_callbacks cb;
    void *ud;
    map sessions;             /* sid -> eio_session */
    map per_ip;               /* remote address -> struct ip_count (when max_per_ip) */
    unsigned n_polling, n_websocket;
    unsigned n_lingering;     /* closed polling sessions kept for one last GET (in sessions) */
    uint64_t bytes_in, bytes_out;  /* transport payload bytes, for metrics */
    struct eio_counts counts;      /* the Admin UI's (eio.h) */
    unsigned n_sockets;            /* WebSocket connections not yet given back */
    wsconn *dirty;            /* WebSocket connections with output to flush this turn */
    wsconn *dead;             /* released WebSocket connections to free this turn */
    wsconn *ws_all;           /* every WebSocket connection not yet freed */
    eio_session *flush_head;  /* polling sessions to answer this turn */
    eio_session *zombies;     /* closed sessions to free this turn */
    unsigned char *rbuf;      /* shared read buffer for every WebSocket */
    size_t rbuf_size;
    buf scratch;              /* base64 decoding of polling bodies */
    http_server *http;        /* for giving upgraded sockets back */
    sendpool *pool;           /* helpers for flushing many WebSockets at once, or NULL */
    struct send_job *pool_jobs;  /* wsconn.c's batch: one job per socket, */
    wsconn **pool_conns;         /* its socket, */
    size_t pool_jobs_cap;
    struct iovec *pool_iov;      /* and their iovecs, grown as needed */
    size_t pool_iov_cap;
};

/* eio.c: the session core. */
/* Takes the handshake's strings; the session starts on transport t (kind), driven through
 * ops and tp. Returns NULL if the session was refused or memory ran out (the handshake is
 * then freed). */
eio_session *eio_session_create(eio_server *srv, struct eio_handshake *hs, enum eio_transport t,
                                const struct eio_transport_ops *ops, void *tp);
int eio_handshake_capture(struct eio_handshake *hs, http_request *req, int protocol,
                          size_t keep_headers);
void eio_handshake_free(struct eio_handshake *hs);
/* Marks a polling session with a held GET for flushing before the loop sleeps. */
void eio_session_want_flush(eio_session *s);
/* Runs on_open after the open packet went out; -1 if refused (the session is closed). */
int eio_session_opened(eio_session *s);
/* A transport arrived for s's upgrade (a WebSocket): it becomes the probe. */
void eio_session_probe_start(eio_session *s, const struct eio_transport_ops *ops, void *t);
/* Handles a packet that arrived on the transport t being probed for an upgrade. */
void eio_session_probe_packet(eio_session *s, void *t, const eio_in *pkt);
/* The probe t went away. */
void eio_session_probe_closed(eio_session *s, void *t);
/* Handles one decoded packet from the session's active transport. Returns 0, or -1 when the
 * packet was invalid (the session has then been closed). */
int eio_session_packet(eio_session *s, const eio_in *pkt);
/* The active transport's output went over --max-buffered: the session is closed later this
 * turn (never from inside the send that found it, which may be part of a broadcast). */
void eio_session_overflow(eio_session *s);
/* The active transport failed or was closed by the client. */
void eio_session_transport_closed(eio_session *s, const char *reason);
/* A lingering session's last packets went out: it is forgotten at the end of the turn. */
void eio_session_linger_end(eio_session *s);
/* Writes the open packet's JSON into out. */
int eio_open_payload(eio_session *s, buf *out, bool with_upgrades);
void eio_set_transport_counts(eio_server *srv, eio_session *s, int delta);
/* JSON error body of the reference server, status 400 (403 for code 4). */
void eio_http_error(http_request *req, int code);
enum {
    EIO_ERR_UNKNOWN_TRANSPORT = 0,
    EIO_ERR_UNKNOWN_SID = 1,
    EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
    EIO_ERR_BAD_REQUEST = 3,
    EIO_ERR_FORBIDDEN = 4,
    EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION = 5,
};
/* Sessions open from a client address (for --max-connections-per-ip). */
unsigned eio_ip_sessions(eio_server *srv, const char *addr);
/* For the server front's end of turn: the next polling session with packets for its held
 * GET (unlinked), or NULL; then the sessions closed this turn are freed. */
eio_session *eio_session_next_flush(eio_server *srv);
void eio_sessions_reap(eio_server *srv);
/* Server shutdown: drops s's transports at once and closes it. */
void eio_session_shutdown(eio_session *s);

/* pktq */
/* Queues p (taking a reference). Returns -1 when memory ran out or when, with limit non-zero,
 * the queue now holds more than limit bytes: every bounded queueing goes through here. */
int pktq_push(pktq *q, eio_packet *p, size_t limit);
eio_packet *pktq_pop(pktq *q);
void pktq_clear(pktq *q);

#endif
