/* eio_session.h: the Engine.IO session and server structures, shared by the session core
 * (eio.c), the long-polling transport (eio_polling.c) and the WebSocket transport
 * (wsconn.c). Nothing outside those three files includes this. */
#ifndef RTD_EIO_SESSION_H
#define RTD_EIO_SESSION_H

#include "rtd/engine/eio.h"
#include "rtd/lib/map.h"
#include "rtd/lib/util.h"
#include "rtd/net/http.h"
#include "rtd/net/sendpool.h"
#include "rtd/net/ws.h"

typedef struct wsconn wsconn;

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
    wsconn *ws;               /* the WebSocket transport when active */
    wsconn *probe;            /* the WebSocket being upgraded to */
    loop_timer heartbeat;     /* ping interval, then ping timeout */
    loop_timer upgrade;       /* upgrade timeout and noop checks */
    uint64_t probe_started;   /* loop time the probe WebSocket arrived */
    char *remote_addr;
    char *user_agent;
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
    uint64_t bytes_in, bytes_out;  /* transport payload bytes, for metrics */
    unsigned n_sockets;            /* WebSocket connections not yet given back */
    wsconn *dirty;            /* WebSocket connections with output to flush this turn */
    wsconn *dead;             /* released WebSocket connections to free this turn */
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

/* eio.c: the session core, used by both transports. */
/* Takes the handshake's strings. Returns NULL if the session was refused or memory ran out
 * (the handshake is then freed). */
eio_session *eio_session_create(eio_server *srv, struct eio_handshake *hs, enum eio_transport t);
int eio_handshake_capture(struct eio_handshake *hs, http_request *req, int protocol);
void eio_handshake_free(struct eio_handshake *hs);
/* Marks a polling session with a held GET for flushing before the loop sleeps. */
void eio_session_want_flush(eio_session *s);
/* Runs on_open after the open packet went out; -1 if refused (the session is closed). */
int eio_session_opened(eio_session *s);
/* A WebSocket arrived for s's upgrade: it becomes the probe. */
void eio_session_probe_start(eio_session *s, wsconn *c);
/* Handles a packet that arrived on the WebSocket being probed for an upgrade. */
void eio_session_probe_packet(eio_session *s, wsconn *c, const eio_in *pkt);
/* The probe WebSocket went away. */
void eio_session_probe_closed(eio_session *s, wsconn *c);
/* Handles one decoded packet from the session's active transport. Returns 0, or -1 when the
 * packet was invalid (the session has then been closed). */
int eio_session_packet(eio_session *s, const eio_in *pkt);
/* The active transport's output went over --max-buffered: the session is closed later this
 * turn (never from inside the send that found it, which may be part of a broadcast). */
void eio_session_overflow(eio_session *s);
/* The active transport failed or was closed by the client. */
void eio_session_transport_closed(eio_session *s, const char *reason);
/* Writes the open packet's JSON into out. */
int eio_open_payload(eio_session *s, buf *out, bool with_upgrades);
void eio_set_transport_counts(eio_server *srv, eio_session *s, int delta);
/* JSON error body of the reference server, status 400 (403 for code 4). */
void eio_http_error(http_request *req, int code);

/* eio_polling.c */
void eio_polling_request(eio_session *s, http_request *req);
/* Answers the held GET with what is queued. */
void eio_polling_flush(eio_session *s);
/* Answers the held GET with this single packet type (noop, close). */
void eio_polling_release(eio_session *s, enum eio_type type);
/* A closing session's queue ends with its close packet. Answers req with the packets before
 * it, or with the close packet alone when nothing else is left; returns true when the close
 * packet still waits for another GET. */
bool eio_polling_answer_closing(eio_session *s, http_request *req);
/* A closed session that kept its last packets for the next GET: answer it and forget it. */
void eio_session_linger_answer(eio_session *s, http_request *req);
/* Writes the handshake answer of a new polling session. */
void eio_polling_open(eio_session *s, http_request *req);

/* wsconn.c */
/* A WebSocket request: a new session (hs set, s NULL) or a probe for s's upgrade. */
void eio_websocket_request(eio_server *srv, eio_session *s, struct eio_handshake *hs,
                           http_request *req);
int wsconn_send(wsconn *c, eio_packet *p);
/* Starts the close handshake; the connection goes once it completes or times out. */
void wsconn_close(wsconn *c, uint16_t code);
void wsconn_detach(wsconn *c);
void wsconn_flush_all(eio_server *srv);
void wsconn_free_dead(eio_server *srv);
/* Server shutdown: drop the socket at once. */
void wsconn_abort(wsconn *c);
size_t wsconn_buffered(const wsconn *c);
/* v3: whether this WebSocket's request asked for binary as base64 (b64 is per transport). */
bool wsconn_b64(const wsconn *c);

/* pktq */
/* Queues p (taking a reference). Returns -1 when memory ran out or when, with limit non-zero,
 * the queue now holds more than limit bytes: every bounded queueing goes through here. */
int pktq_push(pktq *q, eio_packet *p, size_t limit);
eio_packet *pktq_pop(pktq *q);
void pktq_clear(pktq *q);

#endif
