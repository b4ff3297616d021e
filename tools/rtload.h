/* rtload.h: the Socket.IO load generator (tools/rtload.c, rtload_proto.c, rtload_hist.c).
 *
 * One process, one thread, one epoll set. Every client is a `struct conn` in one array; its
 * sockets are non-blocking and registered level-triggered with the connection's index and
 * socket number in the event data. Input is read into one shared buffer and parsed in place;
 * only an incomplete frame or response is kept in the socket's own buffer. Output is
 * appended to the socket's buffer and flushed with one write per socket per loop turn. */
#ifndef RTLOAD_H
#define RTLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- histogram: log-linear buckets, 2^HIST_SUB_BITS per power of two (< 0.8 % error) ---- */

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 42 /* values are clamped to 2^43 - 1 ns (about 2.4 hours) */
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 2) * HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_init(hist *h);
void hist_add(hist *h, uint64_t v);
/* The value at quantile q (0..1): the middle of the bucket holding it, clamped to [min, max];
 * 0 when empty. */
uint64_t hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);

/* ---- byte buffers ---- */

typedef struct {
    char *p;
    uint32_t len; /* bytes held */
    uint32_t off; /* bytes already consumed (written) from the front */
    uint32_t cap;
} bbuf;

int bbuf_reserve(bbuf *b, size_t extra); /* room for extra more bytes after len; -1: no memory */
int bbuf_put(bbuf *b, const void *data, size_t n);
void bbuf_free(bbuf *b);

/* ---- configuration ---- */

enum scenario { SC_FANOUT, SC_INGEST, SC_IDLE, SC_MIXED };

struct config {
    const char *host;
    unsigned port;
    const char *path; /* "/socket.io/" */
    enum scenario scenario;
    unsigned clients;
    unsigned senders;
    double rate;            /* messages/s over all senders; 0: as fast as the window allows */
    double duration_s;
    double warmup_s;
    double drain_s;
    double settle_s;        /* pause between the last connection and the RSS reading */
    double connect_rate;    /* connections started per second; 0: no pacing */
    unsigned connect_concurrency;
    double connect_timeout_s; /* deadline of the whole connect phase */
    double handshake_timeout_s;
    double polling_fraction;
    unsigned payload_bytes; /* length of the text of each message */
    unsigned window;        /* messages in flight (unacknowledged) per sender */
    unsigned max_lag;       /* rate 0: pause while receivers lag by this many messages */
    unsigned rooms;         /* mixed: rooms the clients are spread over */
    unsigned source_addrs;  /* bind to 127.0.0.1 .. 127.0.0.N */
    int server_pid;
    const char *json_path;
    const char *label;
    bool identify;
    bool quiet;
    unsigned eio;            /* Engine.IO protocol: 4, or 3 (socket.io-client 2.x, WebSocket only) */
    const char *subscribe;   /* Laravel Echo: subscribe to this channel, count its events */
    const char *redis_publish; /* HOST:PORT: publish through Redis as Laravel does */
    const char *redis_key;     /* the Redis channel published to (<prefix><channel>) */
};

/* ---- connections ---- */

enum conn_kind { K_WS, K_POLL };

enum conn_state {
    CS_NEW,       /* not started */
    CS_HTTP,      /* waiting for the 101 (WebSocket) or the handshake response (polling) */
    CS_EIO_OPEN,  /* WebSocket: waiting for the Engine.IO open packet */
    CS_SIO_WAIT,  /* "40" sent, waiting for "40{...}" */
    CS_READY,
    CS_CLOSED,    /* after having been ready */
    CS_FAILED,    /* never became ready */
};

enum sock_state { SK_NONE, SK_CONNECTING, SK_OPEN };

struct sock {
    int fd;
    uint8_t st;
    bool want_out; /* EPOLLOUT armed */
    bool close_after; /* the server said Connection: close */
    bbuf in, out;
};

struct sender;

struct conn {
    struct sock s[2]; /* s[0]: the WebSocket or the polling GET; s[1]: the polling POST */
    uint32_t id;
    uint8_t kind;
    uint8_t state;
    bool dirty;
    bool get_busy;     /* polling: a GET is outstanding */
    bool post_busy;    /* polling: a POST is outstanding */
    bool post_retried; /* polling: the POST in flight was already sent again once */
    uint8_t setup_pending; /* acks of identify/join still expected */
    int32_t room;      /* room joined (acknowledged), -1: none */
    uint32_t src;      /* source address index */
    int64_t t_start;   /* ns: when connect() was called */
    int64_t t_ping;    /* ns: last ping (or the open packet) */
    uint64_t recv;     /* receive-message events received */
    uint64_t base_all; /* broadcasts to everyone sent before this client was ready */
    uint64_t base_room;
    struct sender *snd;
    struct conn *dirty_next;
    char *accept; /* WebSocket handshake: the expected Sec-WebSocket-Accept */
    char *sid;    /* polling: the Engine.IO session id */
    bbuf pbody;   /* polling: packets waiting for the next POST */
    bbuf pflight; /* polling: the body of the POST in flight */
};

/* Acknowledgement ids below this are set-up events (identify, join). */
#define ACK_IDENTIFY 1
#define ACK_JOIN 2
#define ACK_FIRST_MESSAGE 16

struct sender {
    struct conn *c;
    uint32_t idx;
    uint32_t inflight;
    uint64_t next_ack;
    int64_t *ts; /* send time by ack id & mask */
    uint32_t mask;
    char prefix[96]; /* ["send-message",{"sender":"s7","text":"T */
    uint32_t prefix_len;
    char *suffix;    /* the padding and the closing quote of the text */
    uint32_t suffix_len;
};

/* ---- counters ---- */

struct counters {
    uint64_t started;
    uint64_t established;
    uint64_t conn_failed;
    uint64_t handshake_timeouts;
    uint64_t closes;          /* a ready connection lost */
    uint64_t ws_close_frames; /* close frames received from the server */
    uint64_t sio_disconnects;
    uint64_t parse_errors;
    uint64_t http_errors;
    uint64_t connect_errors;  /* socket/bind/connect failures */
    uint64_t error_events;    /* "error" events */
    uint64_t other_events;    /* any other event (identified, user-connected, ...) */
    uint64_t setup_errors;    /* identify/join refused */
    uint64_t sent;
    uint64_t acked;
    uint64_t ack_errors;      /* acks with ok != true */
    uint64_t ack_lost;        /* messages in flight when their sender went away */
    uint64_t delivered;
    uint64_t unmarked;        /* receive-message without this tool's timestamp */
    uint64_t pings;
    uint64_t pings_late;      /* gap > pingInterval + 25 % */
    uint64_t pings_missed;    /* gap > pingInterval + pingTimeout: a client would give up */
    uint64_t post_retries;
    uint64_t lag_resets;      /* the receivers' backlog estimate reset after a stall */
    uint64_t rate_shortfall;  /* scheduled messages dropped: every sender's window was full */
    uint64_t bytes_in, bytes_out;
};

/* ---- the run's shared state ---- */

enum phase { PH_CONNECT, PH_SETUP, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

struct state {
    int ep;
    enum phase phase;
    struct conn *conns;
    struct sender *senders;
    unsigned nsenders;
    struct conn *dirty;
    bool recording;     /* latencies are recorded during PH_MEASURE only */
    unsigned ready;     /* connections ready now */
    unsigned handshaking;
    int64_t t_first_start, t_last_ready;
    int64_t ping_interval_ns, ping_timeout_ns; /* from the first open packet */
    int64_t max_ping_gap;
    uint64_t bcast_all;     /* messages sent to everyone */
    uint64_t *room_msgs;    /* messages sent to each room */
    uint32_t *room_members; /* members of each room (acknowledged joins, still connected) */
    unsigned nrooms;
    uint64_t expected;      /* deliveries the messages sent so far should produce */
    uint64_t lost;          /* expected deliveries of clients that went away */
    uint64_t setup_done;
    struct counters n;
    hist h_connect, h_ack, h_deliver, h_ping_gap;
    hist h_turn; /* time rtload spent per loop turn with events: its own responsiveness */
};

extern struct config cfg;
extern struct state g;

/* ---- rtload_proto.c ---- */

int64_t now_ns(void);
uint64_t rnd64(void);
void rnd_seed(void);
int proto_init(void);
void conn_start(struct conn *c, int64_t now);
void conn_fail(struct conn *c, const char *why);
void conn_close(struct conn *c);
void conn_event(struct conn *c, int idx, uint32_t events);
void conn_flush_dirty(void);
void conn_send_packet(struct conn *c, const char *data, size_t n); /* an Engine.IO packet */
bool sender_send(struct sender *sd, int64_t now, int32_t room);
void proto_log_limit(const char *what, const char *data, size_t n);

/* ---- rtload_redis.c: the Laravel publisher (--redis-publish) ---- */

#define REDIS_PUB_TOKEN UINT64_MAX /* its epoll data */
int redis_pub_open(void);
bool redis_pub_send(int64_t now); /* false: the window is full or Redis is gone */
void redis_pub_readable(int64_t now);
unsigned redis_pub_inflight(void);
void redis_pub_close(void);

/* ---- rtload.c: callbacks of the protocol engine ---- */

void on_ready(struct conn *c, int64_t now);
void on_setup_ack(struct conn *c, uint64_t id, bool ok);
void on_gone(struct conn *c, bool was_ready);

#endif
