/* http.c: rtd's HTTP front over libmicrohttpd, run from rtd's loop (see http.h).
 *
 * MHD is started in external-epoll mode without threads: its epoll fd is registered in our
 * loop and MHD_run() is called when it is readable or when MHD's own timeout is due. So
 * every request handler runs on the loop thread and may touch sessions directly.
 *
 * Long-polls are MHD-suspended connections. MHD stops watching a suspended socket, so we
 * watch it ourselves (EPOLLRDHUP) to learn when a client abandons a held poll, which the
 * Engine.IO protocol treats as the end of the session.
 *
 * Over 800 lines, and one file on purpose: every part (the client's address, answers, held
 * polls, the upgrade hand-over, the request deadline, dispatch) works on MHD's connection
 * and on struct http_request, which stay private to this file so that nothing above the
 * net layer sees libmicrohttpd. Its sections are marked "---- ... ----". */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "rtd/lib/log.h"
#include "rtd/net/http.h"
#include "rtd/net/ws.h"

#define MAX_ROUTES 16
#define MAX_EXTRA_HEADERS 8
#define MAX_TRUSTED 16

struct route {
    char *path;
    size_t path_len;
    bool prefix;
    http_handler_fn *fn;
    void *ud;
    size_t max_body;
};

/* A connection that owes us a complete request (see the deadline sweep below). */
struct pending_conn {
    struct pending_conn *prev, *next;
    uint64_t since;  /* loop ms when it connected or finished its last request */
    int fd;
    bool listed;
    bool linger;     /* answered before its body was read: close it gently (below) */
};

/* A connection answered before its body was read. Closing it at once would make the kernel
 * reset it while the client still sends, and the client could lose the answer; so, as
 * nginx's lingering close does, rtd sends its FIN and reads and drops what still comes, for
 * a bounded time, before it closes. */
struct lingering {
    struct lingering *next;
    http_server *h;
    int fd;
    uint64_t until;
};
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (8u << 20)

struct http_server {
    loop *l;
    struct MHD_Daemon *d;
    int mhd_epfd;
    struct route routes[MAX_ROUTES];
    int nroutes;
    char **cors;         /* exact origins */
    bool cors_any;
    char *static_dir;
    char trusted[MAX_TRUSTED][INET6_ADDRSTRLEN]; /* --trust-proxy, canonical text */
    int ntrusted;
    bool need_run;       /* connections were resumed: MHD_run must see them before we sleep */
    unsigned deadline_ms;
    unsigned active;     /* http_request objects alive (answers not yet fully sent) */
    struct pending_conn *pend_head, *pend_tail; /* oldest first */
    struct lingering *lingering;
    loop_timer sweep;
};

struct header {
    char *name;
    char *value;
};

struct http_request {
    http_server *h;
    struct MHD_Connection *conn;
    const struct route *route;
    const char *method;  /* MHD's, valid for the request */
    const char *url;
    char remote[INET6_ADDRSTRLEN];
    buf body;
    bool started;        /* headers seen, handler not yet called */
    bool dispatched;
    bool too_large;
    bool responded;
    bool suspended;
    bool resumed;
    bool gone;           /* client hung up while suspended */
    int watch_fd;        /* fd we watch while suspended, -1 otherwise */
    void (*on_gone)(http_request *r, void *ud);
    void *gone_ud;
    struct header extra[MAX_EXTRA_HEADERS];
    int nextra;
    /* answer prepared by http_resume_respond */
    bool pending;
    unsigned pending_status;
    char *pending_ctype;
    buf pending_body;
    /* websocket */
    http_upgraded_fn *up_fn;
    void *up_ud;             /* owned by the request until up_fn takes it */
    void (*up_free)(void *ud);
};

/* ---- the client's address ----
 * Behind a reverse proxy the peer is the proxy. A trusted proxy's X-Forwarded-For is read
 * from the right: the right-most address that is not itself a trusted proxy is the client
 * (as nginx's real_ip_recursive and Express' 'trust proxy' do), so addresses a client put
 * in the header itself, on the left, are never believed. X-Real-IP is the fallback. Only a
 * valid IP address is taken; anything else leaves the address as it was. */

/* Writes the canonical form of the IP address in s[0..n) to out; false if it is not one. */
static bool canonical_ip(const char *s, size_t n, char out[INET6_ADDRSTRLEN])
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    unsigned char a[16];
    if (inet_pton(AF_INET, tmp, a) == 1)
        return inet_ntop(AF_INET, a, out, INET6_ADDRSTRLEN) != NULL;
    if (inet_pton(AF_INET6, tmp, a) == 1)
        return inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN) != NULL;
    return false;
}

static bool is_trusted(const http_server *h, const char *addr)
{
    for (int i = 0; i < h->ntrusted; i++)
        if (strcmp(h->trusted[i], addr) == 0)
            return true;
    return false;
}

static void believe_proxy(http_request *r)
{
    const http_server *h = r->h;
    if (!h->ntrusted || !is_trusted(h, r->remote))
        return;
    const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
    char addr[INET6_ADDRSTRLEN];
    if (xff) {
        const char *end = xff + strlen(xff);
        while (end > xff) {
            const char *start = end;
            while (start > xff && start[-1] != ',')
                start--;
            if (!canonical_ip(start, (size_t)(end - start), addr))
                break; /* not an address: believe nothing further left */
            memcpy(r->remote, addr, sizeof addr);
            if (!is_trusted(h, addr))
                return;
            end = start > xff ? start - 1 : xff;
        }
        return;
    }
    const char *real = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Real-IP");
    if (real && canonical_ip(real, strlen(real), addr))
        memcpy(r->remote, addr, sizeof addr);
}

/* ---- request accessors ---- */

const char *http_request_method(const http_request *r)
{
    return r->method;
}

const char *http_request_path(const http_request *r)
{
    return r->url;
}

const char *http_request_query(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_request_header(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_request_remote_addr(const http_request *r)
{
    return r->remote;
}

static enum MHD_Result copy_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    buf *out = cls;
    if (buf_append(out, key, strlen(key) + 1) < 0 ||
        buf_append(out, value ? value : "", (value ? strlen(value) : 0) + 1) < 0)
        return MHD_NO;
    return MHD_YES;
}

int http_request_copy_query(const http_request *r, buf *out)
{
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, copy_arg, out);
    return buf_putc(out, '\0');
}

const unsigned char *http_request_body(const http_request *r, size_t *len)
{
    *len = r->body.len;
    return (const unsigned char *)(r->body.data ? r->body.data : "");
}

bool http_request_too_large(const http_request *r)
{
    return r->too_large;
}

bool http_request_resumed(const http_request *r)
{
    return r->resumed;
}

bool http_request_suspended(const http_request *r)
{
    return r->suspended;
}

static bool header_has_token(const char *v, const char *token)
{
    if (!v)
        return false;
    size_t tl = strlen(token);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
            return true;
    }
    return false;
}

bool http_request_wants_websocket(const http_request *r)
{
    return strcmp(r->method, "GET") == 0 &&
           header_has_token(http_request_header(r, "Upgrade"), "websocket");
}

/* ---- answers ---- */

void http_add_header(http_request *r, const char *name, const char *value)
{
    if (r->nextra == MAX_EXTRA_HEADERS)
        return;
    r->extra[r->nextra].name = strdup(name);
    r->extra[r->nextra].value = strdup(value);
    r->nextra++;
}

static void free_extra(http_request *r)
{
    for (int i = 0; i < r->nextra; i++) {
        free(r->extra[i].name);
        free(r->extra[i].value);
    }
    r->nextra = 0;
}

/* The origin to allow, or NULL. "*" in the configuration allows any origin: the request's
 * own origin is reflected (with credentials), as the reference's cors options
 * {origin: true, credentials: true} do, since a literal "*" would break credentialed
 * requests. */
static const char *allowed_origin(const http_server *h, const char *origin)
{
    if (!origin)
        return NULL;
    if (h->cors_any)
        return origin;
    for (char **o = h->cors; o && *o; o++)
        if (strcmp(*o, origin) == 0)
            return origin;
    return NULL;
}

static void add_cors(const http_request *r, struct MHD_Response *resp)
{
    const char *origin = http_request_header(r, "Origin");
    const char *allow = allowed_origin(r->h, origin);
    if (!allow)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", allow);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    MHD_add_response_header(resp, "Vary", "Origin");
}

static void queue(http_request *r, unsigned status, struct MHD_Response *resp, const char *ctype)
{
    if (!resp) {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        ctype = NULL;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (int i = 0; i < r->nextra; i++)
        MHD_add_response_header(resp, r->extra[i].name, r->extra[i].value);
    free_extra(r);
    add_cors(r, resp);
    MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->responded = true;
}

void http_respond(http_request *r, unsigned status, const char *ctype, const void *body,
                  size_t len)
{
    if (r->responded || r->suspended)
        return;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    queue(r, status, resp, ctype);
}

void http_respond_buf(http_request *r, unsigned status, const char *ctype, buf *b)
{
    if (r->responded || r->suspended) {
        buf_free(b);
        return;
    }
    struct MHD_Response *resp;
    if (b->len == 0) {
        buf_free(b);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            buf_free(b);
        b->data = NULL;
        b->len = b->cap = 0;
    }
    queue(r, status, resp, ctype);
}

/* ---- long-polling ---- */

static void stop_watch(http_request *r)
{
    if (r->watch_fd >= 0) {
        loop_del_fd(r->h->l, r->watch_fd);
        r->watch_fd = -1;
    }
}

static void watch_cb(loop *l, int fd, void *ud, int mask)
{
    http_request *r = ud;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 && !(mask & LOOP_HUP)) {
        /* The client sent more (a pipelined request): it is still there. Stop watching,
         * or level-triggered readiness would spin. */
        stop_watch(r);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !(mask & LOOP_HUP))
        return;
    stop_watch(r);
    r->gone = true;
    void (*fn)(http_request *, void *) = r->on_gone;
    r->on_gone = NULL;
    if (fn)
        fn(r, r->gone_ud);
    /* Let MHD notice the dead socket and clean the request up. */
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        r->h->need_run = true;
    }
}

void http_suspend(http_request *r, void (*on_gone)(http_request *r, void *ud), void *ud)
{
    if (r->responded || r->suspended)
        return;
    r->on_gone = on_gone;
    r->gone_ud = ud;
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci && loop_add_fd(r->h->l, ci->connect_fd, LOOP_READ, watch_cb, r) == 0)
        r->watch_fd = ci->connect_fd;
}

void http_resume(http_request *r)
{
    if (!r->suspended)
        return;
    stop_watch(r);
    r->suspended = false;
    r->on_gone = NULL;
    r->resumed = true;
    r->dispatched = false; /* MHD calls the access handler again: dispatch once more */
    MHD_resume_connection(r->conn);
    r->h->need_run = true;
}

void http_resume_respond(http_request *r, unsigned status, const char *ctype, buf *b)
{
    if (!r->suspended) {
        http_respond_buf(r, status, ctype, b);
        return;
    }
    r->pending = true;
    r->pending_status = status;
    free(r->pending_ctype);
    r->pending_ctype = ctype ? strdup(ctype) : NULL;
    buf_free(&r->pending_body);
    r->pending_body = *b;
    b->data = NULL;
    b->len = b->cap = 0;
    http_resume(r);
}

/* ---- websocket upgrade ---- */

/* MHD hands over the socket. We keep a duplicate and give the original back at once:
 * libmicrohttpd then frees the connection and its memory pool (kilobytes that an idle
 * WebSocket would otherwise hold for its whole life). Started with MHD_USE_TURBO, MHD
 * closes its descriptor without shutdown(), so the duplicate keeps the connection alive;
 * the socket left MHD's epoll set when it was upgraded. */
static void upgrade_cb(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    http_request *r = con_cls;
    http_server *h = r->h;
    http_upgraded_fn *fn = r->up_fn;
    r->up_fn = NULL; /* ud goes to fn: the request no longer frees it */
    r->up_free = NULL;
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK))
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        /* MHD leaves Nagle on after the 101; our frames go out whole, one writev per turn,
         * so waiting for ACKs would only add latency. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (fn)
        fn(r->up_ud, fd, (const unsigned char *)extra_in, extra_in_size); /* fd -1: failed */
    else if (fd >= 0)
        close(fd);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    h->need_run = true;
}

/* The upgrade's user data, when the request ends without upgrade_cb having taken it. */
static void drop_upgrade_ud(http_request *r)
{
    void (*free_ud)(void *) = r->up_free;
    void *ud = r->up_ud;
    r->up_fn = NULL;
    r->up_free = NULL;
    r->up_ud = NULL;
    if (free_ud)
        free_ud(ud);
}

int http_upgrade_websocket(http_request *r, http_upgraded_fn *fn, void *ud,
                           void (*free_ud)(void *ud))
{
    /* From here ud is the request's: every way out below frees it or hands it on. */
    r->up_ud = ud;
    r->up_free = free_ud;
    if (r->responded || r->suspended) {
        drop_upgrade_ud(r);
        return -1;
    }
    const char *key = http_request_header(r, "Sec-WebSocket-Key");
    const char *version = http_request_header(r, "Sec-WebSocket-Version");
    char accept[29];
    if (!header_has_token(http_request_header(r, "Connection"), "upgrade") || !key ||
        !version || strcmp(version, "13") != 0 || ws_accept_key(key, accept) < 0) {
        if (version && strcmp(version, "13") != 0)
            http_add_header(r, "Sec-WebSocket-Version", "13");
        static const char msg[] = "Bad WebSocket handshake";
        http_respond(r, MHD_HTTP_BAD_REQUEST, "text/plain", msg, sizeof msg - 1);
        drop_upgrade_ud(r);
        return -1;
    }
    struct MHD_Response *resp = MHD_create_response_for_upgrade(upgrade_cb, r);
    if (!resp) {
        queue(r, 500, NULL, NULL);
        drop_upgrade_ud(r);
        return -1;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
    r->up_fn = fn;
    free_extra(r);
    MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    r->responded = true;
    return 0;
}

/* ---- the request deadline ----
 * libmicrohttpd's timeout is an idle timeout: a client dribbling a byte now and then keeps
 * a half-sent request, and its connection, alive for ever (slow-loris). So every connection
 * is also on a list, oldest first, from the moment it connects (or finishes a request) until
 * its next request is complete; a sweep each second shuts down those that took longer than
 * the deadline. Held long-polls and WebSockets are complete requests and are not on it. */

static void pend_unlink(http_server *h, struct pending_conn *pc)
{
    if (!pc->listed)
        return;
    if (pc->prev)
        pc->prev->next = pc->next;
    else
        h->pend_head = pc->next;
    if (pc->next)
        pc->next->prev = pc->prev;
    else
        h->pend_tail = pc->prev;
    pc->prev = pc->next = NULL;
    pc->listed = false;
}

static void pend_append(http_server *h, struct pending_conn *pc)
{
    pend_unlink(h, pc);
    pc->since = loop_now(h->l);
    pc->prev = h->pend_tail;
    pc->next = NULL;
    if (h->pend_tail)
        h->pend_tail->next = pc;
    else
        h->pend_head = pc;
    h->pend_tail = pc;
    pc->listed = true;
}

static struct pending_conn *pend_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void linger_end(struct lingering *lg)
{
    http_server *h = lg->h;
    for (struct lingering **p = &h->lingering; *p; p = &(*p)->next)
        if (*p == lg) {
            *p = lg->next;
            break;
        }
    loop_del_fd(h->l, lg->fd);
    close(lg->fd);
    free(lg);
}

static void linger_read(loop *l, int fd, void *ud, int mask)
{
    struct lingering *lg = ud;
    char junk[16384];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, junk, sizeof junk, MSG_DONTWAIT);
        if (n > 0) {
            total += (size_t)n;
            if (total < LINGER_MAX_BYTES)
                continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        linger_end(lg); /* end of stream, error, or enough of it */
        return;
    }
}

static void linger_start(http_server *h, int mhd_fd)
{
    struct lingering *lg = calloc(1, sizeof *lg);
    int fd = lg ? fcntl(mhd_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0 || loop_add_fd(h->l, fd, LOOP_READ, linger_read, lg) < 0) {
        if (fd >= 0)
            close(fd);
        free(lg);
        return;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    shutdown(fd, SHUT_WR); /* the answer is out: our FIN follows it */
    lg->h = h;
    lg->fd = fd;
    lg->until = loop_now(h->l) + LINGER_MS;
    lg->next = h->lingering;
    h->lingering = lg;
}

static void sweep_cb(loop *l, void *ud)
{
    http_server *h = ud;
    uint64_t now = loop_now(l);
    for (struct lingering *lg = h->lingering, *next; lg; lg = next) {
        next = lg->next;
        if (now >= lg->until)
            linger_end(lg);
    }
    while (h->pend_head && now - h->pend_head->since >= h->deadline_ms) {
        struct pending_conn *pc = h->pend_head;
        pend_unlink(h, pc);
        rlog(RLOG_DEBUG, "HTTP request deadline passed: connection shut down", NULL);
        /* MHD sees the end of the stream and cleans the connection up. */
        shutdown(pc->fd, SHUT_RDWR);
        h->need_run = true;
    }
    loop_timer_start(l, &h->sweep, 1000, sweep_cb, h);
}

static void notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    http_server *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct pending_conn *pc = calloc(1, sizeof *pc);
        if (!pc)
            return;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        pc->fd = ci ? ci->connect_fd : -1;
        *socket_context = pc;
        if (pc->fd >= 0)
            pend_append(h, pc);
    } else if (*socket_context) {
        struct pending_conn *pc = *socket_context;
        /* libmicrohttpd closes the socket right after this (without shutdown, MHD_USE_TURBO) */
        if (pc->linger && pc->fd >= 0)
            linger_start(h, pc->fd);
        pend_unlink(h, pc);
        free(pc);
        *socket_context = NULL;
    }
}

/* ---- dispatch ---- */

static const struct route *find_route(const http_server *h, const char *url)
{
    for (int i = 0; i < h->nroutes; i++) {
        const struct route *rt = &h->routes[i];
        if (rt->prefix ? strncmp(url, rt->path, rt->path_len) == 0 : strcmp(url, rt->path) == 0)
            return rt;
    }
    return NULL;
}

static void answer_preflight(http_request *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        queue(r, 500, NULL, NULL);
        return;
    }
    const char *origin = http_request_header(r, "Origin");
    if (allowed_origin(r->h, origin)) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                "GET,HEAD,PUT,PATCH,POST,DELETE");
        const char *req_headers = http_request_header(r, "Access-Control-Request-Headers");
        if (req_headers)
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", req_headers);
        MHD_add_response_header(resp, "Vary", "Access-Control-Request-Headers");
    }
    queue(r, MHD_HTTP_NO_CONTENT, resp, NULL);
}

static bool safe_static_name(const char *name)
{
    if (!*name || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return name[0] != '.';
}

static const char *mime_for(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (!strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (!strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (!strcmp(dot, ".js"))
        return "application/javascript; charset=utf-8";
    if (!strcmp(dot, ".svg"))
        return "image/svg+xml";
    if (!strcmp(dot, ".png"))
        return "image/png";
    if (!strcmp(dot, ".ico"))
        return "image/x-icon";
    return "application/octet-stream";
}

/* Serves a flat directory of small files (the test page and its assets). */
static bool serve_static(http_request *r)
{
    const http_server *h = r->h;
    if (!h->static_dir || (strcmp(r->method, "GET") && strcmp(r->method, "HEAD")))
        return false;
    const char *name, *sub = "";
    char inner[300];
    if (!strcmp(r->url, "/") || !strcmp(r->url, "/test.html"))
        name = "test.html";
    else if (!strncmp(r->url, "/static/", 8))
        name = r->url + 8;
    else if (!strncmp(r->url, "/admin/live/", 12)) {
        /* the Socket.IO Admin UI's built files (ui/dist) in DIR/admin-live: one level of
         * folders (js/, css/, img/), index.html for the folder itself */
        const char *rest = r->url + 12;
        const char *slash = strchr(rest, '/');
        sub = "admin-live/";
        name = *rest ? rest : "index.html";
        if (slash) {
            size_t dl = (size_t)(slash - rest);
            if (dl >= 64 || strchr(slash + 1, '/') || !safe_static_name(slash + 1))
                return false;
            memcpy(inner, rest, dl);
            inner[dl] = '\0';
            if (!safe_static_name(inner))
                return false;
            name = slash + 1;
            snprintf(inner + dl, sizeof inner - dl, "/%s", slash + 1);
        }
        if (!slash && !safe_static_name(name))
            return false;
        if (slash)
            name = inner;
    } else
        return false;
    if (!*sub && !safe_static_name(name))
        return false;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s%s", h->static_dir, sub, name) >= sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || size > (1 << 24)) {
        close(fd);
        return false;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)size, fd);
    if (!resp) {
        close(fd);
        return false;
    }
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    queue(r, MHD_HTTP_OK, resp, mime_for(name));
    return true;
}

static void not_found(http_request *r)
{
    static const char msg[] = "Not Found";
    http_respond(r, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", msg, sizeof msg - 1);
}

static void dispatch(http_request *r)
{
    r->dispatched = true;
    struct pending_conn *pc = pend_of(r->conn);
    if (pc)
        pend_unlink(r->h, pc);
    if (r->pending) {
        r->pending = false;
        http_respond_buf(r, r->pending_status, r->pending_ctype, &r->pending_body);
        return;
    }
    if (!r->resumed && strcmp(r->method, "OPTIONS") == 0 && r->route) {
        answer_preflight(r);
        return;
    }
    if (r->route) {
        r->route->fn(r, r->route->ud);
    } else if (!serve_static(r)) {
        not_found(r);
    }
    if (!r->responded && !r->suspended)
        queue(r, 500, NULL, NULL);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    http_server *h = cls;
    http_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        h->active++;
        r->h = h;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->watch_fd = -1;
        r->route = find_route(h, url);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote,
                          sizeof r->remote);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->remote,
                          sizeof r->remote);
        }
        believe_proxy(r);
        *con_cls = r;
        r->started = true;
        /* A body declared longer than the route takes is refused on the headers, without
         * waiting for it (a client could otherwise hold the connection until the request
         * deadline): the handler runs now, sees http_request_too_large(), answers (after its
         * own checks, e.g. an unknown session first). libmicrohttpd sends the answer and,
         * the body being unread, closes the connection after it; rtd lingers on it (above)
         * so that a client still sending its body gets the answer, not a reset. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t max = r->route ? r->route->max_body : 0;
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long declared = strtoull(cl, &end, 10);
            if (end != cl && (errno == ERANGE || declared > max)) {
                r->too_large = true;
                struct pending_conn *pc = pend_of(conn);
                if (pc)
                    pc->linger = true;
                dispatch(r);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t max = r->route ? r->route->max_body : 0;
        if (!r->too_large && r->body.len + *upload_data_size <= max) {
            if (buf_append(&r->body, upload_data, *upload_data_size) < 0)
                r->too_large = true;
        } else {
            r->too_large = true;
            buf_free(&r->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->gone)
        return MHD_NO; /* the client hung up while we held its poll */
    if (r->responded || r->suspended || r->dispatched)
        return MHD_YES;
    dispatch(r);
    return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_request *r = *con_cls;
    if (!r)
        return;
    http_server *h = r->h;
    struct pending_conn *pc = pend_of(conn);
    if (pc && pc->fd >= 0 && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        pend_append(h, pc); /* keep-alive: the clock runs for the next request */
    stop_watch(r);
    if (r->on_gone && !r->gone) {
        /* Terminated while held (e.g. shutdown): tell the owner its pointer is dead. */
        void (*fn)(http_request *, void *) = r->on_gone;
        r->on_gone = NULL;
        fn(r, r->gone_ud);
    }
    /* An upgrade that never happened (the client reset before the 101 went out): its user
     * data is still ours. */
    drop_upgrade_ud(r);
    buf_free(&r->body);
    buf_free(&r->pending_body);
    free(r->pending_ctype);
    free_extra(r);
    free(r);
    h->active--;
    *con_cls = NULL;
}

/* ---- loop integration ---- */

static void mhd_ready(loop *l, int fd, void *ud, int mask)
{
    http_server *h = ud;
    MHD_run(h->d);
}

/* Runs last before the loop sleeps. libmicrohttpd in external mode only notices resumed
 * connections in MHD_run(), and its epoll is edge-triggered: a connection it could not
 * finish (a body larger than its buffer) stays on its ready list without making its epoll
 * fd readable again; MHD_get_timeout() then says 0. In both cases run it now and do not
 * sleep this turn: what it produced is flushed by the next turn's before-sleep hook. */
static int64_t mhd_sleep_limit(loop *l, void *ud)
{
    http_server *h = ud;
    MHD_UNSIGNED_LONG_LONG t;
    bool have_timeout = MHD_get_timeout(h->d, &t) == MHD_YES;
    if (h->need_run || (have_timeout && t == 0)) {
        h->need_run = false;
        MHD_run(h->d);
        return 0;
    }
    if (have_timeout)
        return (int64_t)(t > 60000 ? 60000 : t);
    return -1;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                          va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    rlogf(RLOG_DEBUG, "HTTP", "{\"libmicrohttpd\":\"%.400s\"}", msg);
}

http_server *http_server_new(loop *l, const struct http_config *cfg, char **err)
{
    http_server *h = calloc(1, sizeof *h);
    if (!h) {
        *err = strdup("out of memory");
        return NULL;
    }
    h->l = l;
    h->mhd_epfd = -1;
    size_t n = 0;
    for (const char *const *o = cfg->cors_origins; o && *o; o++)
        n++;
    h->cors = calloc(n + 1, sizeof *h->cors);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cfg->cors_origins[i], "*") == 0)
            h->cors_any = true;
        h->cors[i] = strdup(cfg->cors_origins[i]);
    }
    if (cfg->static_dir)
        h->static_dir = strdup(cfg->static_dir);
    for (const char *p = cfg->trust_proxy; p && *p && h->ntrusted < MAX_TRUSTED;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (canonical_ip(p, len, h->trusted[h->ntrusted]))
            h->ntrusted++;
        p = end ? end + 1 : p + len;
    }

    struct sockaddr_in6 a6 = {0};
    struct sockaddr_in a4 = {0};
    const struct sockaddr *sa = NULL;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
                     MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (cfg->bind && *cfg->bind) {
        if (inet_pton(AF_INET, cfg->bind, &a4.sin_addr) == 1) {
            a4.sin_family = AF_INET;
            a4.sin_port = htons((uint16_t)cfg->port);
            sa = (const struct sockaddr *)&a4;
        } else if (inet_pton(AF_INET6, cfg->bind, &a6.sin6_addr) == 1) {
            a6.sin6_family = AF_INET6;
            a6.sin6_port = htons((uint16_t)cfg->port);
            sa = (const struct sockaddr *)&a6;
            flags |= MHD_USE_IPv6;
        } else {
            *err = strdup("--bind: not an IPv4 or IPv6 address");
            http_server_free(h);
            return NULL;
        }
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, h},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed_cb, h},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify_conn, h},
        {MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 20000, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->request_timeout_s ? cfg->request_timeout_s : 60,
         NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16 * 1024, NULL},
        {sa ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, 0, (void *)sa},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, access_cb, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->d) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot listen on port %u: %s", cfg->port,
                 errno ? strerror(errno) : "libmicrohttpd refused to start");
        *err = strdup(msg);
        http_server_free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di || loop_add_fd(l, di->epoll_fd, LOOP_READ, mhd_ready, h) < 0) {
        *err = strdup("cannot watch libmicrohttpd's epoll descriptor");
        http_server_free(h);
        return NULL;
    }
    h->mhd_epfd = di->epoll_fd;
    loop_add_sleep_limit(l, mhd_sleep_limit, h);
    h->deadline_ms = (cfg->request_timeout_s ? cfg->request_timeout_s : 60) * 1000u;
    loop_timer_start(l, &h->sweep, 1000, sweep_cb, h);
    return h;
}

unsigned http_server_port(const http_server *h)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

unsigned http_server_active_requests(const http_server *h)
{
    return h->active;
}

void http_server_quiesce(http_server *h)
{
    if (!h->d)
        return;
    MHD_socket s = MHD_quiesce_daemon(h->d);
    if (s != MHD_INVALID_SOCKET)
        close(s);
}

void http_server_free(http_server *h)
{
    if (!h)
        return;
    loop_timer_stop(h->l, &h->sweep);
    while (h->lingering)
        linger_end(h->lingering);
    if (h->mhd_epfd >= 0)
        loop_del_fd(h->l, h->mhd_epfd);
    if (h->d)
        MHD_stop_daemon(h->d);
    for (char **o = h->cors; o && *o; o++)
        free(*o);
    free(h->cors);
    for (int i = 0; i < h->nroutes; i++)
        free(h->routes[i].path);
    free(h->static_dir);
    free(h);
}

int http_route(http_server *h, const char *path, http_handler_fn *fn, void *ud, size_t max_body)
{
    if (h->nroutes == MAX_ROUTES)
        return -1;
    struct route *rt = &h->routes[h->nroutes++];
    rt->path = strdup(path);
    rt->path_len = strlen(path);
    rt->prefix = rt->path_len > 0 && path[rt->path_len - 1] == '/';
    rt->fn = fn;
    rt->ud = ud;
    rt->max_body = max_body;
    return rt->path ? 0 : -1;
}
