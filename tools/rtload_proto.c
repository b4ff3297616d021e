/* rtload_proto.c: the client side of the protocols, just enough of them for load.
 *
 *   HTTP/1.1    the WebSocket upgrade (random Sec-WebSocket-Key, the accept is checked) and
 *               long-polling (a GET socket and a POST socket per client, keep-alive,
 *               Content-Length bodies, packets separated by \x1e)
 *   RFC 6455    masked client frames; text, close, ping/pong from the server, no fragments
 *   Engine.IO 4 open packet, ping "2" answered "3" in the same loop turn, close, noop
 *   Socket.IO 5 CONNECT "40" / "40{...}", EVENT "42[...]" and "42<id>[...]", ACK "43<id>[...]"
 *   --eio 3     Engine.IO 3 / Socket.IO 4 over WebSocket (socket.io-client 2.x): the server
 *               connects "/" by itself, the client pings ("2") every pingInterval
 *   --subscribe Laravel Echo: an event (name, "<channel>", data) of that channel is a delivery
 *
 * receive-message is not parsed as JSON: the text of every message this tool sends starts
 * with "T" and the sender's CLOCK_MONOTONIC time in 16 hex digits, found with one memmem. */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tools/rtload.h"

#define RBUF_SIZE (2u << 20)      /* the shared read buffer */
#define READ_CHUNK (256u << 10)   /* most bytes read from one socket per event */
#define MAX_FRAME (1u << 20)      /* longest frame or HTTP response accepted */
#define MAX_HEADER (16u << 10)
#define OUT_KEEP (64u << 10)      /* output buffers larger than this are freed once empty */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static char *rbuf;
static char *scratch;
static size_t scratch_cap;
static struct sockaddr_in dst;
static bool bind_source;
static char host_hdr[128];
static unsigned logged;

/* ---- time, randomness ---- */

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;

void rnd_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s || s == 0)
        s = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    rnd_state = s ? s : 1;
}

uint64_t rnd64(void) /* xorshift64* */
{
    uint64_t x = rnd_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void proto_log_limit(const char *what, const char *data, size_t n)
{
    if (cfg.quiet || logged >= 10)
        return;
    logged++;
    if (n > 120)
        n = 120;
    fprintf(stderr, "rtload: %s%s%.*s%s\n", what, data ? " [" : "", data ? (int)n : 0,
            data ? data : "", data ? "]" : "");
    if (logged == 10)
        fprintf(stderr, "rtload: (further messages of this kind are not shown)\n");
}

/* ---- set-up ---- */

static void hex_tab_init(void);

int proto_init(void)
{
    hex_tab_init();
    rbuf = malloc(RBUF_SIZE);
    scratch_cap = (size_t)cfg.payload_bytes + 512;
    scratch = malloc(scratch_cap);
    if (!rbuf || !scratch)
        return -1;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)cfg.port);
    const char *h = strcmp(cfg.host, "localhost") == 0 ? "127.0.0.1" : cfg.host;
    if (inet_pton(AF_INET, h, &dst.sin_addr) != 1) {
        fprintf(stderr, "rtload: --host must be an IPv4 address (got %s)\n", cfg.host);
        return -1;
    }
    /* Every 127.0.0.0/8 address is local: spreading the clients over several source addresses
     * multiplies the ephemeral ports available. */
    bind_source = (ntohl(dst.sin_addr.s_addr) >> 24) == 127 && cfg.source_addrs > 0;
    snprintf(host_hdr, sizeof host_hdr, "%s:%u", cfg.host, cfg.port);
    return 0;
}

/* ---- sockets ---- */

static void mark_dirty(struct conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = g.dirty;
    g.dirty = c;
}

static void sock_events(struct conn *c, int idx, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.u64 = ((uint64_t)c->id << 1) | (uint64_t)idx};
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->s[idx].fd, &e);
}

static void sock_release(struct sock *s)
{
    if (s->fd >= 0)
        close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
    s->st = SK_NONE;
    s->want_out = false;
    s->close_after = false;
    bbuf_free(&s->in);
    bbuf_free(&s->out);
}

static int sock_open(struct conn *c, int idx)
{
    struct sock *s = &c->s[idx];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g.n.connect_errors++;
        proto_log_limit(strerror(errno), "socket", 6);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind_source) {
        struct sockaddr_in src;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl((127u << 24) | (1u + c->src % cfg.source_addrs));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
            g.n.connect_errors++;
            proto_log_limit(strerror(errno), "bind", 4);
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        g.n.connect_errors++;
        proto_log_limit(strerror(errno), "connect", 7);
        close(fd);
        return -1;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT,
                            .data.u64 = ((uint64_t)c->id << 1) | (uint64_t)idx};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        g.n.connect_errors++;
        close(fd);
        return -1;
    }
    s->fd = fd;
    s->st = SK_CONNECTING;
    s->want_out = true;
    s->close_after = false;
    return 0;
}

static void release_conn(struct conn *c)
{
    sock_release(&c->s[0]);
    sock_release(&c->s[1]);
    free(c->accept);
    c->accept = NULL;
    free(c->sid);
    c->sid = NULL;
    bbuf_free(&c->pbody);
    bbuf_free(&c->pflight);
}

/* A connection lost or refused: counted, reported to the scenario, resources freed. */
static void conn_drop(struct conn *c, const char *why, const char *data, size_t n)
{
    if (c->state == CS_CLOSED || c->state == CS_FAILED || c->state == CS_NEW)
        return;
    bool was_ready = c->state == CS_READY;
    if (g.phase != PH_DONE) {
        if (was_ready)
            g.n.closes++;
        else
            g.n.conn_failed++;
        proto_log_limit(why, data, n);
    }
    c->state = was_ready ? CS_CLOSED : CS_FAILED;
    release_conn(c);
    on_gone(c, was_ready);
}

void conn_fail(struct conn *c, const char *why)
{
    conn_drop(c, why, NULL, 0);
}

void conn_close(struct conn *c)
{
    if (c->state == CS_CLOSED || c->state == CS_FAILED || c->state == CS_NEW)
        return;
    bool was_ready = c->state == CS_READY;
    c->state = was_ready ? CS_CLOSED : CS_FAILED;
    release_conn(c);
    on_gone(c, was_ready);
}

static int sock_flush(struct conn *c, int idx)
{
    struct sock *s = &c->s[idx];
    if (s->st != SK_OPEN)
        return 0;
    while (s->out.off < s->out.len) {
        ssize_t w = send(s->fd, s->out.p + s->out.off, s->out.len - s->out.off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!s->want_out) {
                    s->want_out = true;
                    sock_events(c, idx, EPOLLIN | EPOLLOUT);
                }
                return 0;
            }
            return -1;
        }
        s->out.off += (uint32_t)w;
        g.n.bytes_out += (uint64_t)w;
    }
    s->out.off = s->out.len = 0;
    if (s->out.cap > OUT_KEEP)
        bbuf_free(&s->out);
    if (s->want_out) {
        s->want_out = false;
        sock_events(c, idx, EPOLLIN);
    }
    return 0;
}

static void sock_lost(struct conn *c, int idx, const char *why);

void conn_flush_dirty(void)
{
    while (g.dirty) {
        struct conn *c = g.dirty;
        g.dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        for (int i = 0; i < 2; i++) {
            if (c->s[i].fd >= 0 && c->s[i].out.len > c->s[i].out.off && sock_flush(c, i) < 0)
                sock_lost(c, i, "write failed");
        }
    }
}

/* ---- encoding helpers ---- */

static char *put_u64(char *w, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *w++ = tmp[--n];
    return w;
}

static char *put_hex16(char *w, uint64_t v)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        w[i] = hx[v & 15];
        v >>= 4;
    }
    return w + 16;
}

static int b64(const unsigned char *in, int n, char *out)
{
    return EVP_EncodeBlock((unsigned char *)out, in, n);
}

/* A masked client frame appended to the WebSocket's output. */
static void ws_frame(struct conn *c, unsigned op, const char *data, size_t n)
{
    struct sock *s = &c->s[0];
    if (bbuf_reserve(&s->out, n + 14) < 0) {
        conn_fail(c, "out of memory");
        return;
    }
    unsigned char *w = (unsigned char *)s->out.p + s->out.len;
    *w++ = (unsigned char)(0x80 | op);
    if (n < 126) {
        *w++ = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        *w++ = 0x80 | 126;
        *w++ = (unsigned char)(n >> 8);
        *w++ = (unsigned char)n;
    } else {
        *w++ = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            *w++ = (unsigned char)((uint64_t)n >> (8 * i));
    }
    uint32_t key32 = (uint32_t)rnd64();
    unsigned char key[4];
    memcpy(key, &key32, 4);
    memcpy(w, key, 4);
    w += 4;
    uint64_t k8;
    unsigned char kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    memcpy(&k8, kb, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, data + i, 8);
        v ^= k8;
        memcpy(w + i, &v, 8);
    }
    for (; i < n; i++)
        w[i] = (unsigned char)(data[i] ^ key[i & 3]);
    w += n;
    s->out.len = (uint32_t)((char *)w - s->out.p);
    mark_dirty(c);
}

/* Appends a request to socket idx, opening it first when it is closed. */
static int sock_request(struct conn *c, int idx, const char *req, size_t n, const char *body,
                        size_t bn)
{
    struct sock *s = &c->s[idx];
    if (s->fd < 0 && sock_open(c, idx) < 0)
        return -1;
    if (bbuf_put(&s->out, req, n) < 0 || (bn && bbuf_put(&s->out, body, bn) < 0))
        return -1;
    mark_dirty(c);
    return 0;
}

static void poll_get(struct conn *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=4&transport=polling%s%s HTTP/1.1\r\nHost: %s\r\n"
                     "Accept: */*\r\n\r\n",
                     cfg.path, c->sid ? "&sid=" : "", c->sid ? c->sid : "", host_hdr);
    if (sock_request(c, 0, req, (size_t)n, NULL, 0) < 0) {
        conn_fail(c, "cannot send a polling GET");
        return;
    }
    c->get_busy = true;
}

static void post_send(struct conn *c)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST %s?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %u\r\n\r\n",
                     cfg.path, c->sid, host_hdr, c->pflight.len);
    if (sock_request(c, 1, req, (size_t)n, c->pflight.p, c->pflight.len) < 0) {
        conn_fail(c, "cannot send a polling POST");
        return;
    }
    c->post_busy = true;
}

static void poll_post(struct conn *c)
{
    if (c->post_busy || c->pbody.len == 0 || !c->sid)
        return;
    bbuf t = c->pflight;
    c->pflight = c->pbody;
    c->pbody = t;
    c->pbody.len = 0;
    c->post_retried = false;
    post_send(c);
}

void conn_send_packet(struct conn *c, const char *data, size_t n)
{
    if (c->kind == K_WS) {
        ws_frame(c, 1, data, n);
        return;
    }
    if (c->pbody.len && bbuf_put(&c->pbody, "\x1e", 1) < 0)
        goto oom;
    if (bbuf_put(&c->pbody, data, n) < 0)
        goto oom;
    poll_post(c);
    return;
oom:
    conn_fail(c, "out of memory");
}

/* ---- connecting ---- */

void conn_start(struct conn *c, int64_t now)
{
    c->t_start = now;
    c->state = CS_HTTP;
    g.n.started++;
    g.handshaking++;
    if (!g.t_first_start)
        g.t_first_start = now;
    if (c->kind == K_POLL) {
        poll_get(c);
        return;
    }
    unsigned char key[16];
    uint64_t r1 = rnd64(), r2 = rnd64();
    memcpy(key, &r1, 8);
    memcpy(key + 8, &r2, 8);
    char key64[32];
    b64(key, 16, key64);
    /* The accept the server must answer: base64(SHA-1(key + GUID)). */
    char cat[64];
    int cn = snprintf(cat, sizeof cat, "%s%s", key64, WS_GUID);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    c->accept = malloc(32);
    if (!c->accept || !EVP_Digest(cat, (size_t)cn, md, &mdlen, EVP_sha1(), NULL)) {
        conn_fail(c, "cannot compute the WebSocket key");
        return;
    }
    b64(md, (int)mdlen, c->accept);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s?EIO=%u&transport=websocket HTTP/1.1\r\nHost: %s\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     cfg.path, cfg.eio, host_hdr, key64);
    if (sock_request(c, 0, req, (size_t)n, NULL, 0) < 0)
        conn_fail(c, "cannot open a socket");
}

/* ---- Socket.IO and Engine.IO packets ---- */

static const char *find(const char *h, size_t hn, const char *needle, size_t nn)
{
    return memmem(h, hn, needle, nn);
}

static long long scan_int(const char *p, size_t n, const char *key)
{
    const char *k = find(p, n, key, strlen(key));
    if (!k)
        return -1;
    k += strlen(key);
    long long v = 0;
    bool any = false;
    while (k < p + n && *k >= '0' && *k <= '9') {
        v = v * 10 + (*k++ - '0');
        any = true;
    }
    return any ? v : -1;
}

/* Lower-case hex digit values; 0x80 marks every other byte. */
static uint8_t hex_tab[256];

static void hex_tab_init(void)
{
    memset(hex_tab, 0x80, sizeof hex_tab);
    for (int i = 0; i < 10; i++)
        hex_tab['0' + i] = (uint8_t)i;
    for (int i = 0; i < 6; i++)
        hex_tab['a' + i] = (uint8_t)(10 + i);
}

static void on_delivery(struct conn *c, const char *p, size_t n, int64_t now)
{
    c->recv++;
    g.n.delivered++;
    /* "text":"T<16 hex>. The servers write the fields in a fixed order, so the marker sits at
     * (nearly) the same offset in every frame: try where it was last time, then search. */
    static const char mark[] = "\"text\":\"T";
    static size_t hint;
    const size_t ml = sizeof mark - 1;
    const char *m = NULL;
    if (n >= ml + 16) {
        size_t lim = n - ml - 16;
        for (size_t d = 0; d < 5 && !m; d++) {
            size_t at = d & 1 ? hint + (d + 1) / 2 : hint - d / 2;
            if (at <= lim && memcmp(p + at, mark, ml) == 0)
                m = p + at;
        }
        if (!m) {
            m = find(p, n, mark, ml);
            if (m && (size_t)(m - p) > lim)
                m = NULL;
        }
        if (m)
            hint = (size_t)(m - p);
    }
    if (!m) {
        g.n.unmarked++;
        return;
    }
    if (!g.recording)
        return;
    m += sizeof mark - 1;
    uint64_t ts = 0;
    unsigned bad = 0;
    for (int i = 0; i < 16; i++) {
        uint8_t v = hex_tab[(unsigned char)m[i]];
        bad |= v;
        ts = ts << 4 | (v & 15u);
    }
    if (bad & 0x80) {
        g.n.unmarked++;
        return;
    }
    if ((int64_t)ts <= now)
        hist_add(&g.h_deliver, (uint64_t)(now - (int64_t)ts));
}

static void on_ack(struct conn *c, const char *p, size_t n, int64_t now)
{
    uint64_t id = 0;
    size_t i = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        id = id * 10 + (uint64_t)(p[i++] - '0');
    if (i == 0 || i >= n || p[i] != '[') {
        g.n.parse_errors++;
        proto_log_limit("bad ACK", p, n);
        return;
    }
    const char *rest = p + i;
    size_t rn = n - i;
    bool ok = rn >= 11 && memcmp(rest, "[{\"ok\":true", 11) == 0;
    if (id < ACK_FIRST_MESSAGE) {
        if (id == ACK_IDENTIFY)
            ok = rn >= 12 && memcmp(rest, "[{\"socketId\"", 12) == 0;
        if (!ok)
            proto_log_limit("set-up event refused", rest, rn);
        on_setup_ack(c, id, ok);
        return;
    }
    struct sender *sd = c->snd;
    if (!sd || sd->inflight == 0 || id >= sd->next_ack) {
        g.n.parse_errors++;
        proto_log_limit("unexpected ACK", p, n);
        return;
    }
    sd->inflight--;
    if (!ok) {
        g.n.ack_errors++;
        proto_log_limit("message refused", rest, rn);
        return;
    }
    g.n.acked++;
    int64_t t = sd->ts[id & sd->mask];
    if (g.recording && t <= now)
        hist_add(&g.h_ack, (uint64_t)(now - t));
}

/* Laravel Echo's ["<event>","<channel>",data]: the event name is skipped as a JSON string
 * (escapes included), then the channel must be --subscribe's. */
static bool echo_event(const char *p, size_t n)
{
    if (n < 4 || p[0] != '[' || p[1] != '"')
        return false;
    size_t i = 2;
    while (i < n && p[i] != '"')
        i += p[i] == '\\' ? 2 : 1;
    if (i >= n)
        return false;
    i++;
    size_t cl = strlen(cfg.subscribe);
    return n - i >= cl + 4 && p[i] == ',' && p[i + 1] == '"' && memcmp(p + i + 2, cfg.subscribe, cl) == 0 &&
           p[i + 2 + cl] == '"' && p[i + 3 + cl] == ',';
}

static void sio_packet(struct conn *c, const char *p, size_t n, int64_t now)
{
    if (n == 0) {
        g.n.parse_errors++;
        return;
    }
    switch (p[0]) {
    case '0': /* CONNECT answered */
        if (c->state != CS_SIO_WAIT) {
            g.n.parse_errors++;
            return;
        }
        c->state = CS_READY;
        g.handshaking--;
        g.n.established++;
        g.t_last_ready = now;
        hist_add(&g.h_connect, (uint64_t)(now - c->t_start));
        free(c->accept);
        c->accept = NULL;
        on_ready(c, now);
        return;
    case '1':
        g.n.sio_disconnects++;
        conn_drop(c, "namespace disconnected", p, n);
        return;
    case '2': {
        size_t i = 1;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++; /* an ack id the server asked for: none of the events used has one */
        static const char rm[] = "[\"receive-message\",";
        if (cfg.subscribe && echo_event(p + i, n - i)) {
            on_delivery(c, p + i, n - i, now);
        } else if (n - i >= sizeof rm - 1 && memcmp(p + i, rm, sizeof rm - 1) == 0) {
            on_delivery(c, p + i, n - i, now);
        } else if (n - i >= 9 && memcmp(p + i, "[\"error\",", 9) == 0) {
            g.n.error_events++;
            proto_log_limit("error event", p, n);
        } else {
            g.n.other_events++;
        }
        return;
    }
    case '3':
        on_ack(c, p + 1, n - 1, now);
        return;
    case '4':
        conn_drop(c, "CONNECT_ERROR", p, n);
        return;
    default:
        g.n.parse_errors++;
        proto_log_limit("unknown Socket.IO packet", p, n);
    }
}

static void eio_packet(struct conn *c, const char *p, size_t n, int64_t now)
{
    if (n == 0) {
        g.n.parse_errors++;
        return;
    }
    switch (p[0]) {
    case '0': { /* open */
        if (!(c->kind == K_WS ? c->state == CS_EIO_OPEN : c->state == CS_HTTP)) {
            g.n.parse_errors++;
            return;
        }
        long long pi = scan_int(p, n, "\"pingInterval\":");
        long long pt = scan_int(p, n, "\"pingTimeout\":");
        if (pi > 0 && !g.ping_interval_ns) {
            g.ping_interval_ns = pi * 1000000;
            g.ping_timeout_ns = pt > 0 ? pt * 1000000 : 0;
        }
        if (c->kind == K_POLL) {
            static const char key[] = "\"sid\":\"";
            const char *s = find(p, n, key, sizeof key - 1);
            const char *e = s ? memchr(s + sizeof key - 1, '"', (size_t)(p + n - s) - (sizeof key - 1)) : NULL;
            if (!e || e - s > 100) {
                conn_drop(c, "open packet without sid", p, n);
                return;
            }
            s += sizeof key - 1;
            c->sid = strndup(s, (size_t)(e - s));
            if (!c->sid) {
                conn_fail(c, "out of memory");
                return;
            }
        }
        c->t_ping = now;
        c->state = CS_SIO_WAIT;
        if (cfg.eio != 3) /* Engine.IO 3: the server connects "/" by itself */
            conn_send_packet(c, "40", 2);
        return;
    }
    case '1':
        conn_drop(c, "Engine.IO close", p, n);
        return;
    case '2': { /* ping: answered at once, the gap since the last one recorded */
        g.n.pings++;
        if (c->t_ping) {
            int64_t gap = now - c->t_ping;
            hist_add(&g.h_ping_gap, (uint64_t)gap);
            if (gap > g.max_ping_gap)
                g.max_ping_gap = gap;
            if (g.ping_interval_ns) {
                if (gap > g.ping_interval_ns + g.ping_interval_ns / 4)
                    g.n.pings_late++;
                if (gap > g.ping_interval_ns + g.ping_timeout_ns)
                    g.n.pings_missed++;
            }
        }
        c->t_ping = now;
        conn_send_packet(c, "3", 1);
        return;
    }
    case '3':
    case '6':
        return;
    case '4':
        sio_packet(c, p + 1, n - 1, now);
        return;
    default:
        g.n.parse_errors++;
        proto_log_limit("unknown Engine.IO packet", p, n);
    }
}

/* ---- WebSocket input ---- */

static const char *header_value(const char *h, size_t hn, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = h + hn;
    const char *line = memchr(h, '\n', hn);
    while (line && line + 1 < end) {
        line++;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = v;
            while (e < end && *e != '\r' && *e != '\n')
                e++;
            *vlen = (size_t)(e - v);
            return v;
        }
        line = memchr(line, '\n', (size_t)(end - line));
    }
    return NULL;
}

static size_t ws_input(struct conn *c, const char *d, size_t len, int64_t now)
{
    size_t pos = 0;
    if (c->state == CS_HTTP) {
        const char *he = find(d, len, "\r\n\r\n", 4);
        if (!he) {
            if (len > MAX_HEADER)
                conn_fail(c, "WebSocket handshake response too long");
            return 0;
        }
        size_t hl = (size_t)(he - d) + 4;
        size_t vl = 0;
        const char *acc = header_value(d, hl, "Sec-WebSocket-Accept", &vl);
        if (hl < 12 || memcmp(d, "HTTP/1.1 101", 12) != 0) {
            g.n.http_errors++;
            conn_drop(c, "WebSocket upgrade refused", d, hl);
            return hl;
        }
        if (!acc || vl != strlen(c->accept) || memcmp(acc, c->accept, vl) != 0) {
            g.n.http_errors++;
            conn_drop(c, "bad Sec-WebSocket-Accept", d, hl);
            return hl;
        }
        c->state = CS_EIO_OPEN;
        pos = hl;
    }
    while (len - pos >= 2) {
        const unsigned char *f = (const unsigned char *)d + pos;
        size_t avail = len - pos;
        uint64_t plen = f[1] & 0x7f;
        size_t hl = 2;
        if (f[1] & 0x80) {
            g.n.parse_errors++;
            conn_drop(c, "masked frame from the server", NULL, 0);
            return len;
        }
        if (plen == 126) {
            if (avail < 4)
                break;
            plen = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | f[2 + i];
            hl = 10;
        }
        if (plen > MAX_FRAME) {
            g.n.parse_errors++;
            conn_drop(c, "frame too long", NULL, 0);
            return len;
        }
        if (avail < hl + plen)
            break;
        const char *payload = (const char *)f + hl;
        unsigned op = f[0] & 0x0f;
        bool fin = (f[0] & 0x80) != 0;
        pos += hl + (size_t)plen;
        if (!fin || op == 0) {
            g.n.parse_errors++;
            conn_drop(c, "fragmented frame (not supported)", NULL, 0);
            return len;
        }
        switch (op) {
        case 1:
            eio_packet(c, payload, (size_t)plen, now);
            break;
        case 2:
            g.n.other_events++;
            break;
        case 8:
            g.n.ws_close_frames++;
            if (c->state == CS_READY) {
                ws_frame(c, 8, payload, plen >= 2 ? 2 : 0);
                if (c->s[0].st == SK_OPEN)
                    sock_flush(c, 0);
            }
            conn_drop(c, "close frame from the server", payload, (size_t)plen);
            return len;
        case 9:
            ws_frame(c, 10, payload, (size_t)plen);
            break;
        case 10:
            break;
        default:
            g.n.parse_errors++;
            conn_drop(c, "unknown opcode", NULL, 0);
            return len;
        }
        if (c->state == CS_CLOSED || c->state == CS_FAILED)
            return len;
    }
    return pos;
}

/* ---- long-polling input ---- */

static void get_response(struct conn *c, int code, const char *body, size_t bn, int64_t now)
{
    c->get_busy = false;
    if (code != 200) {
        g.n.http_errors++;
        conn_drop(c, "polling GET refused", body, bn);
        return;
    }
    const char *p = body, *end = body + bn;
    while (p < end) {
        const char *sep = memchr(p, '\x1e', (size_t)(end - p));
        const char *e = sep ? sep : end;
        eio_packet(c, p, (size_t)(e - p), now);
        if (c->state == CS_CLOSED || c->state == CS_FAILED)
            return;
        p = sep ? sep + 1 : end;
    }
    if (c->s[0].close_after)
        sock_release(&c->s[0]); /* the next GET goes on a new connection */
    poll_get(c);
    poll_post(c); /* the session id is known once the handshake answered */
}

static void post_response(struct conn *c, int code, const char *body, size_t bn)
{
    if (code != 200) {
        g.n.http_errors++;
        conn_drop(c, "polling POST refused", body, bn);
        return;
    }
    c->post_busy = false;
    c->pflight.len = 0;
    if (c->s[1].close_after)
        sock_release(&c->s[1]);
    poll_post(c);
}

static size_t http_input(struct conn *c, int idx, const char *d, size_t len, int64_t now)
{
    int fd = c->s[idx].fd;
    size_t pos = 0;
    while (pos < len) {
        const char *h = d + pos;
        size_t avail = len - pos;
        const char *he = find(h, avail, "\r\n\r\n", 4);
        if (!he) {
            if (avail > MAX_HEADER)
                conn_fail(c, "HTTP response header too long");
            break;
        }
        size_t hl = (size_t)(he - h) + 4;
        if (hl < 12 || memcmp(h, "HTTP/1.", 7) != 0) {
            g.n.http_errors++;
            conn_drop(c, "not an HTTP response", h, hl);
            return len;
        }
        int code = atoi(h + 9);
        size_t vl = 0;
        const char *cl = header_value(h, hl, "Content-Length", &vl);
        if (!cl) {
            g.n.http_errors++;
            conn_drop(c, "HTTP response without Content-Length", h, hl);
            return len;
        }
        size_t bl = (size_t)strtoull(cl, NULL, 10);
        if (bl > MAX_FRAME) {
            g.n.http_errors++;
            conn_drop(c, "HTTP response too long", NULL, 0);
            return len;
        }
        if (avail < hl + bl)
            break;
        const char *conn_hdr = header_value(h, hl, "Connection", &vl);
        if (conn_hdr && vl == 5 && strncasecmp(conn_hdr, "close", 5) == 0)
            c->s[idx].close_after = true;
        pos += hl + bl;
        if (idx == 0)
            get_response(c, code, h + hl, bl, now);
        else
            post_response(c, code, h + hl, bl);
        if (c->state == CS_CLOSED || c->state == CS_FAILED || c->s[idx].fd != fd)
            return len;
    }
    return pos;
}

/* ---- events ---- */

/* A socket closed or failed. The POST socket of a polling client is reopened (its request
 * sent again once when it was in flight); any other loss ends the client. */
static void sock_lost(struct conn *c, int idx, const char *why)
{
    if (c->state == CS_CLOSED || c->state == CS_FAILED)
        return;
    if (c->kind == K_POLL && idx == 1) {
        bool busy = c->post_busy;
        sock_release(&c->s[1]);
        if (!busy)
            return; /* an idle keep-alive connection closed by the server */
        if (c->post_retried) {
            conn_fail(c, "polling POST failed twice");
            return;
        }
        c->post_retried = true;
        g.n.post_retries++;
        post_send(c);
        return;
    }
    if (c->kind == K_POLL && idx == 0 && !c->get_busy && c->s[0].close_after) {
        sock_release(&c->s[0]);
        return;
    }
    conn_fail(c, why);
}

static void sock_read(struct conn *c, int idx)
{
    struct sock *s = &c->s[idx];
    size_t off = s->in.len;
    if (off)
        memcpy(rbuf, s->in.p, off);
    size_t room = RBUF_SIZE - off;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    ssize_t r = recv(s->fd, rbuf + off, room, 0);
    if (r < 0) {
        if (errno != EAGAIN && errno != EINTR)
            sock_lost(c, idx, strerror(errno));
        return;
    }
    if (r == 0) {
        if (c->kind == K_POLL && idx == 0 && c->get_busy)
            sock_lost(c, idx, "polling GET closed");
        else
            sock_lost(c, idx, c->kind == K_WS ? "connection closed by the server" : "closed");
        return;
    }
    g.n.bytes_in += (uint64_t)r;
    int fd = s->fd;
    int64_t now = now_ns();
    size_t total = off + (size_t)r;
    size_t used = c->kind == K_WS ? ws_input(c, rbuf, total, now)
                                  : http_input(c, idx, rbuf, total, now);
    if (c->state == CS_CLOSED || c->state == CS_FAILED || s->fd != fd)
        return; /* the socket was closed (and maybe replaced) meanwhile */
    s->in.len = 0;
    if (used < total) {
        if (total - used > MAX_FRAME + MAX_HEADER) {
            conn_fail(c, "input too long");
            return;
        }
        if (bbuf_put(&s->in, rbuf + used, total - used) < 0) {
            conn_fail(c, "out of memory");
            return;
        }
    } else if (s->in.cap > OUT_KEEP) {
        bbuf_free(&s->in);
    }
}

void conn_event(struct conn *c, int idx, uint32_t events)
{
    struct sock *s = &c->s[idx];
    if (s->fd < 0 || c->state == CS_CLOSED || c->state == CS_FAILED)
        return;
    if (s->st == SK_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            g.n.connect_errors++;
            sock_lost(c, idx, strerror(err));
            return;
        }
        struct sockaddr_in peer;
        socklen_t pl = sizeof peer;
        if (getpeername(s->fd, (struct sockaddr *)&peer, &pl) < 0) {
            if (errno == ENOTCONN && !(events & EPOLLERR))
                return; /* a stale event of a previous socket: still connecting */
            g.n.connect_errors++;
            sock_lost(c, idx, "connect failed");
            return;
        }
        s->st = SK_OPEN;
        if (sock_flush(c, idx) < 0)
            sock_lost(c, idx, "write failed");
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        sock_read(c, idx);
        if (c->state == CS_CLOSED || c->state == CS_FAILED || s->fd < 0)
            return;
    }
    if ((events & EPOLLOUT) && sock_flush(c, idx) < 0)
        sock_lost(c, idx, "write failed");
}

/* ---- sending messages ---- */

bool sender_send(struct sender *sd, int64_t now, int32_t room)
{
    struct conn *c = sd->c;
    if (c->state != CS_READY || sd->inflight >= cfg.window)
        return false;
    uint64_t id = sd->next_ack++;
    char *w = scratch;
    *w++ = '4';
    *w++ = '2';
    w = put_u64(w, id);
    memcpy(w, sd->prefix, sd->prefix_len);
    w += sd->prefix_len;
    w = put_hex16(w, (uint64_t)now);
    memcpy(w, sd->suffix, sd->suffix_len);
    w += sd->suffix_len;
    if (room >= 0) {
        memcpy(w, ",\"room\":\"r", 10);
        w += 10;
        w = put_u64(w, (uint64_t)room);
        *w++ = '"';
    }
    *w++ = '}';
    *w++ = ']';
    sd->ts[id & sd->mask] = now;
    sd->inflight++;
    g.n.sent++;
    conn_send_packet(c, scratch, (size_t)(w - scratch));
    return true;
}
