/* cluster.c: rtd as a node of a @socket.io/redis-adapter 8.3 cluster (see cluster.h).
 *
 * Channels, per namespace nsp (key is --redis-key):
 *   key#nsp#*            PSUBSCRIBE: broadcasts, key#nsp# or key#nsp#room# for one room
 *   key-request#nsp#     SUBSCRIBE: requests (its NUMSUB is how nodes count servers)
 *   key-response#nsp#    SUBSCRIBE, and key-response#nsp#uid#: replies to our requests
 * A message for a room no local socket is in is skipped before it is decoded, as the
 * adapter does; our own broadcasts come back and are skipped by uid. Everything else that
 * cannot be used is dropped and counted (rtd_redis_dropped_total) with a debug log line.
 *
 * Over 800 lines, and one file for now: broadcasts, the requests we answer and the ones we
 * send share the per-namespace channel state and the pending-request tables. The requests
 * (the "requests" and "broadcast with acks" sections) are the seam to split along when the
 * sharded or streams adapters arrive. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/cluster/adapter_codec.h"
#include "rtd/cluster/cluster.h"
#include "rtd/cluster/redis_url.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"

#define MAX_REQUEST_BYTES (4u << 20)
/* A broadcast from Redis bigger than this is dropped: no client could take it anyway
 * (--max-payload is 1 MB by default, and libFuzzer-sized inputs are tiny). */
#define MAX_MESSAGE_BYTES (16u << 20)
#define MAX_UID 64
#define MAX_REQUEST_ID 128
#define DEFAULT_ACK_TIMEOUT_MS 5000
#define MAX_ACK_TIMEOUT_MS 600000

enum req_type {
    REQ_SOCKETS = 0,
    REQ_ALL_ROOMS = 1,
    REQ_REMOTE_JOIN = 2,
    REQ_REMOTE_LEAVE = 3,
    REQ_REMOTE_DISCONNECT = 4,
    REQ_REMOTE_FETCH = 5,
    REQ_SERVER_SIDE_EMIT = 6,
    REQ_BROADCAST = 7,
    REQ_BROADCAST_CLIENT_COUNT = 8,
    REQ_BROADCAST_ACK = 9,
};

struct count_waiter {
    struct count_waiter *next;
    cluster_count_fn *fn;
    void *arg;
};

/* The one SOCKETS request of a namespace in flight, for cluster_count_remote. */
struct count_req {
    bool active;
    bool asked;           /* published; before that, waiting for NUMSUB */
    char request_id[32];
    long expected, got;
    uint64_t sum;
    struct count_waiter *waiters;
    loop_timer timer;
    unsigned timeout_ms;
};

/* A REMOTE_FETCH request of ours (cluster_fetch_remote). */
struct fetch_req {
    struct fetch_req *next;
    cluster *c;
    struct cnsp *cn;
    bool asked;
    bool numsub_pending; /* its NUMSUB reply will still come: freed then */
    bool done;           /* fn has run */
    char request_id[32];
    long expected, got;
    struct json_object *sockets;
    cluster_fetch_fn *fn;
    void *arg;
    loop_timer timer;
};

#define MAX_FETCHES 16

struct cnsp {
    cluster *c;
    struct count_req count;
    sio_namespace *nsp;
    char *bprefix;  /* key#nsp# */
    size_t bprefix_len;
    char *pattern;  /* key#nsp#* */
    char *request;  /* key-request#nsp# */
    char *response; /* key-response#nsp# */
    char *own_response;
};

struct cluster {
    loop *l;
    sio_server *srv;
    redis_link *link;
    char *key;
    char uid[8];
    struct cnsp *nsps;
    size_t nnsps;
    struct cluster_stats stats;
    bool admin_data; /* fetchSockets replies carry data._admin (cluster_set_admin_data) */
    json_tokener *tok;
    buf scratch;
    cluster_server_event_fn *on_server_event;
    void *server_event_ud;
    uint64_t next_request;
    struct fetch_req *fetches;
    unsigned nfetches;
};

/* ---- helpers ---- */

static void drop(cluster *c, const char *channel, size_t channel_len, const char *why)
{
    c->stats.dropped++;
    rlogf(RLOG_DEBUG, "Redis message dropped", "{\"channel\":\"%.*s\",\"reason\":\"%s\"}",
          (int)(channel_len > 200 ? 200 : channel_len), channel, why);
}

static char *cat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static struct cnsp *find_nsp(cluster *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nnsps; i++) {
        const char *n = sio_namespace_name(c->nsps[i].nsp);
        if (strlen(n) == len && !memcmp(n, name, len))
            return &c->nsps[i];
    }
    return NULL;
}

static int publish_str(cluster *c, const char *channel, const buf *b)
{
    return redis_link_publish(c->link, channel, strlen(channel), b->data, b->len);
}

/* ---- broadcasts out ---- */

static void on_local_broadcast(sio_namespace *nsp, const struct sio_target *t, sio_packet *p,
                               void *ud)
{
    cluster *c = ud;
    struct cnsp *cn = find_nsp(c, sio_namespace_name(nsp), strlen(sio_namespace_name(nsp)));
    if (!cn || p->n > 1 + ACODEC_MAX_BINS)
        return;
    sio_bin bins[ACODEC_MAX_BINS];
    for (uint32_t i = 1; i < p->n; i++)
        bins[i - 1] = (sio_bin){eio_packet_payload(p->parts[i]), p->parts[i]->len};
    buf_reset(&c->scratch);
    if (acodec_encode_broadcast(&c->scratch, c->uid, sio_namespace_name(nsp),
                                (const char *)eio_packet_payload(p->parts[0]), p->parts[0]->len,
                                bins, p->n - 1, t->rooms, t->nrooms, t->except, t->nexcept,
                                false) < 0) {
        rlog(RLOG_WARN, "Cannot encode a broadcast for Redis", NULL);
        return;
    }
    buf ch = BUF_INIT;
    buf_puts(&ch, cn->bprefix);
    if (t->nrooms == 1) {
        buf_puts(&ch, t->rooms[0]);
        buf_putc(&ch, '#');
    }
    if (buf_terminate(&ch) == 0)
        redis_link_publish(c->link, ch.data, ch.len, c->scratch.data, c->scratch.len);
    buf_free(&ch);
}

/* ---- broadcasts in ---- */

static void on_broadcast(cluster *c, struct cnsp *cn, const char *channel, size_t channel_len,
                         const unsigned char *data, size_t len)
{
    /* key#nsp# (everyone, or several rooms) or key#nsp#room# (one room) */
    size_t room_len = 0;
    if (channel_len > cn->bprefix_len) {
        if (channel[channel_len - 1] != '#' || channel_len == cn->bprefix_len + 1) {
            drop(c, channel, channel_len, "not a broadcast channel");
            return;
        }
        room_len = channel_len - cn->bprefix_len - 1;
    }
    char room[ACODEC_MAX_STRING + 1];
    if (room_len > ACODEC_MAX_STRING || memchr(channel + cn->bprefix_len, 0, room_len)) {
        drop(c, channel, channel_len, "room name too long");
        return;
    }
    memcpy(room, channel + cn->bprefix_len, room_len);
    room[room_len] = '\0';
    if (room_len && sio_room_size(cn->nsp, room) == 0)
        return; /* nobody here is in that room: not decoded, as the adapter does */
    struct acodec_broadcast b;
    const char *why = NULL;
    if (acodec_decode_broadcast(data, len, &b, &why) < 0) {
        drop(c, channel, channel_len, why);
        acodec_broadcast_free(&b);
        return;
    }
    if (!strcmp(b.uid, c->uid)) {
        acodec_broadcast_free(&b);
        return; /* our own */
    }
    if (strcmp(b.ev.nsp, sio_namespace_name(cn->nsp))) {
        drop(c, channel, channel_len, "namespace differs from the channel's");
        acodec_broadcast_free(&b);
        return;
    }
    if (b.opts.local) {
        acodec_broadcast_free(&b);
        return;
    }
    struct sio_target t = {(const char *const *)b.opts.rooms, b.opts.nrooms,
                           (const char *const *)b.opts.except, b.opts.nexcept};
    /* PHP emitters publish a multi-room emit once per room, on each room's channel, every
     * copy carrying the whole list. A socket takes the copy of the first listed room it is
     * in: here, the channel's room minus the rooms listed before it. */
    const char **ex = NULL;
    const char *one[1] = {room};
    if (room_len && b.opts.nrooms > 1) {
        size_t at = b.opts.nrooms;
        for (size_t i = 0; i < b.opts.nrooms; i++)
            if (!strcmp(b.opts.rooms[i], room)) {
                at = i;
                break;
            }
        size_t nex = b.opts.nexcept + (at < b.opts.nrooms ? at : 0);
        ex = calloc(nex + 1, sizeof *ex);
        if (!ex) {
            acodec_broadcast_free(&b);
            return;
        }
        for (size_t i = 0; i < b.opts.nexcept; i++)
            ex[i] = b.opts.except[i];
        for (size_t i = 0; at < b.opts.nrooms && i < at; i++)
            ex[b.opts.nexcept + i] = b.opts.rooms[i];
        t = (struct sio_target){one, 1, ex, nex};
    }
    sio_packet *p = sio_event_packet(cn->nsp, b.ev.event, b.ev.args.data, b.ev.args.len,
                                     b.ev.bins, b.ev.nbins);
    if (p) {
        sio_broadcast_local(cn->nsp, &t, p);
        sio_packet_unref(p);
        c->stats.delivered++;
    }
    free(ex);
    acodec_broadcast_free(&b);
}

/* ---- requests ---- */

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Where to answer: the requester's own channel when it said who it is (it listens there
 * since 7.1.0, whatever its publishOnSpecificResponseChannel), else the common one. */
static char *response_channel(struct cnsp *cn, const char *uid)
{
    if (uid && *uid && strlen(uid) <= MAX_UID && !strpbrk(uid, "*?[]"))
        return cat3(cn->response, uid, "#");
    return strdup(cn->response);
}

/* A JSON string list into a NULL-terminated array of borrowed strings. */
static const char **json_list(struct json_object *arr, size_t *n, bool *ok)
{
    *n = 0;
    *ok = true;
    if (!arr || json_object_is_type(arr, json_type_null))
        return NULL;
    if (json_object_is_type(arr, json_type_object) && json_object_object_length(arr) == 0)
        return NULL;
    if (!json_object_is_type(arr, json_type_array) ||
        json_object_array_length(arr) > ACODEC_MAX_ROOMS) {
        *ok = false;
        return NULL;
    }
    size_t len = json_object_array_length(arr);
    const char **l = calloc(len + 1, sizeof *l);
    if (!l) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_string)) {
            free(l);
            *ok = false;
            return NULL;
        }
        l[(*n)++] = json_object_get_string(e);
    }
    return l;
}

struct target_lists {
    const char **rooms, **except;
    struct sio_target t;
};

static int target_from(struct json_object *opts, struct target_lists *tl)
{
    struct json_object *r = NULL, *e = NULL;
    memset(tl, 0, sizeof *tl);
    if (opts && json_object_is_type(opts, json_type_object)) {
        json_object_object_get_ex(opts, "rooms", &r);
        json_object_object_get_ex(opts, "except", &e);
    } else if (opts && !json_object_is_type(opts, json_type_null) &&
               !(json_object_is_type(opts, json_type_array) &&
                 json_object_array_length(opts) == 0)) {
        return -1;
    }
    bool ok1, ok2;
    tl->rooms = json_list(r, &tl->t.nrooms, &ok1);
    tl->except = json_list(e, &tl->t.nexcept, &ok2);
    tl->t.rooms = tl->rooms;
    tl->t.except = tl->except;
    return ok1 && ok2 ? 0 : -1;
}

static void target_free(struct target_lists *tl)
{
    free(tl->rooms);
    free(tl->except);
}

static void put_json_str(buf *b, const char *s)
{
    buf_putc(b, '"');
    buf_json_escape(b, s, strlen(s));
    buf_putc(b, '"');
}

static void reply_json(cluster *c, struct cnsp *cn, const char *uid, buf *b)
{
    char *ch = response_channel(cn, uid);
    if (ch && buf_terminate(b) == 0)
        publish_str(c, ch, b);
    free(ch);
}

static void add_room(const char *room, void *ud)
{
    buf *b = ud;
    if (b->data[b->len - 1] != '[')
        buf_putc(b, ',');
    put_json_str(b, room);
}

static void socket_json(buf *b, sio_socket *s, bool admin)
{
    eio_session *es = sio_socket_session(s);
    const char *rooms[256];
    size_t n = sio_socket_rooms(s, rooms, 256);
    char iso[32];
    int64_t ms = sio_socket_connected_ms(s);
    util_format_iso_time(ms, iso);
    buf_puts(b, "{\"id\":");
    put_json_str(b, sio_socket_id(s));
    buf_puts(b, ",\"handshake\":{\"headers\":{");
    const char *ua = eio_session_user_agent(es);
    if (ua) {
        buf_puts(b, "\"user-agent\":");
        put_json_str(b, ua);
    }
    buf_printf(b, "},\"time\":\"%s\",\"address\":", iso);
    const char *addr = eio_session_remote_addr(es);
    put_json_str(b, addr ? addr : "");
    buf_printf(b, ",\"xdomain\":false,\"secure\":false,\"issued\":%lld,\"url\":\"/socket.io/\","
                  "\"query\":{",
               (long long)ms);
    bool first = true;
    for (const char *q = eio_session_query_all(es); q && *q;) {
        const char *val = q + strlen(q) + 1;
        if (!first)
            buf_putc(b, ',');
        first = false;
        put_json_str(b, q);
        buf_putc(b, ':');
        put_json_str(b, val);
        q = val + strlen(val) + 1;
    }
    buf_puts(b, "},\"auth\":");
    const char *auth = sio_socket_auth_json(s);
    buf_puts(b, auth ? auth : "{}");
    buf_puts(b, "},\"rooms\":[");
    put_json_str(b, sio_socket_id(s));
    for (size_t i = 0; i < n && i < 256; i++) {
        buf_putc(b, ',');
        put_json_str(b, rooms[i]);
    }
    const char *data = sio_socket_data_json(s);
    buf_puts(b, "],\"data\":");
    if (admin) { /* as instrument() sets it: the first 12 characters of the client's id */
        buf_printf(b, "{\"_admin\":{\"clientId\":\"%.12s\",\"transport\":\"%s\"}",
                   eio_session_id(es),
                   eio_session_transport(es) == EIO_T_WEBSOCKET ? "websocket" : "polling");
        const char *m = data && data[0] == '{' ? data + 1 : NULL;
        while (m && (*m == ' ' || *m == '\n' || *m == '\t' || *m == '\r'))
            m++;
        if (m && *m && *m != '}') {
            buf_putc(b, ',');
            buf_puts(b, m); /* the object's members and its closing brace */
        } else {
            buf_putc(b, '}');
        }
    } else {
        buf_puts(b, data ? data : "{}");
    }
    buf_putc(b, '}');
}

struct server_ack {
    cluster *c;
    struct cnsp *cn;
    const char *uid;
    const char *request_id;
    bool done;
};

int cluster_server_ack(cluster *c, void *token, const char *arg_json)
{
    struct server_ack *a = token;
    if (!a || a->done)
        return -1;
    a->done = true;
    buf b = BUF_INIT;
    buf_puts(&b, "{\"type\":6,\"requestId\":");
    put_json_str(&b, a->request_id);
    buf_puts(&b, ",\"data\":");
    buf_puts(&b, arg_json && *arg_json ? arg_json : "null");
    buf_putc(&b, '}');
    reply_json(c, a->cn, a->uid, &b);
    buf_free(&b);
    return 0;
}

/* ---- broadcast with acks (type 7): the acks of our clients go back one by one ---- */

struct bcast_ack {
    cluster *c;
    char *channel;
    char request_id[MAX_REQUEST_ID + 1];
};

static void on_client_ack(sio_socket *s, const sio_args *a, void *ud)
{
    struct bcast_ack *ba = ud;
    cluster *c = ba->c;
    if (s && a && c) {
        buf b = BUF_INIT;
        msgpack_packer pk;
        acodec_packer_init(&pk, &b);
        struct json_object *arg = sio_arg(a, 0);
        int r = msgpack_pack_map(&pk, 3) || acodec_pack_str(&pk, "type", 4) ||
                msgpack_pack_int(&pk, REQ_BROADCAST_ACK) || acodec_pack_str(&pk, "requestId", 9) ||
                acodec_pack_str(&pk, ba->request_id, strlen(ba->request_id)) ||
                acodec_pack_str(&pk, "packet", 6) ||
                (arg ? acodec_pack_json(&pk, arg, a->bins, a->nbins) : msgpack_pack_nil(&pk));
        if (!r)
            redis_link_publish(c->link, ba->channel, strlen(ba->channel), b.data, b.len);
        buf_free(&b);
    }
    free(ba->channel);
    free(ba);
}

static void broadcast_with_ack(cluster *c, struct cnsp *cn, const char *channel,
                               size_t channel_len, const unsigned char *data, size_t len)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    const char *why = "not a broadcast request";
    struct acodec_event ev = {0};
    struct acodec_opts opts = {0};
    if (!acodec_msgpack_sane(data, len) ||
        msgpack_unpack_next(&up, (const char *)data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        drop(c, channel, channel_len, "bad msgpack request");
        msgpack_unpacked_destroy(&up);
        return;
    }
    const msgpack_object *o = &up.data;
    const msgpack_object *type = acodec_map_get(o, "type");
    const msgpack_object *rid = acodec_map_get(o, "requestId");
    const msgpack_object *uid = acodec_map_get(o, "uid");
    if (!type || type->type != MSGPACK_OBJECT_POSITIVE_INTEGER || type->via.u64 != REQ_BROADCAST ||
        !rid || rid->type != MSGPACK_OBJECT_STR || rid->via.str.size > MAX_REQUEST_ID ||
        acodec_event_from(acodec_map_get(o, "packet"), &ev, &why) < 0 ||
        acodec_opts_from(acodec_map_get(o, "opts"), &opts, &why) < 0) {
        drop(c, channel, channel_len, why);
        goto out;
    }
    char uidbuf[MAX_UID + 1] = "";
    if (uid && uid->type == MSGPACK_OBJECT_STR && uid->via.str.size <= MAX_UID) {
        if (uid->via.str.size)
            memcpy(uidbuf, uid->via.str.ptr, uid->via.str.size);
        uidbuf[uid->via.str.size] = '\0';
    }
    if (!strcmp(uidbuf, c->uid))
        goto out; /* ours */
    c->stats.requests++;
    char request_id[MAX_REQUEST_ID + 1];
    if (rid->via.str.size)
        memcpy(request_id, rid->via.str.ptr, rid->via.str.size);
    request_id[rid->via.str.size] = '\0';
    unsigned timeout = DEFAULT_ACK_TIMEOUT_MS;
    const msgpack_object *flags = acodec_map_get(acodec_map_get(o, "opts"), "flags");
    const msgpack_object *to = acodec_map_get(flags, "timeout");
    if (to && to->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        timeout = to->via.u64 > MAX_ACK_TIMEOUT_MS ? MAX_ACK_TIMEOUT_MS : (unsigned)to->via.u64;
    else if (to && (to->type == MSGPACK_OBJECT_FLOAT64 || to->type == MSGPACK_OBJECT_FLOAT32) &&
             to->via.f64 > 0)
        timeout = to->via.f64 > MAX_ACK_TIMEOUT_MS ? MAX_ACK_TIMEOUT_MS : (unsigned)to->via.f64;
    struct sio_target t = {(const char *const *)opts.rooms, opts.nrooms,
                           (const char *const *)opts.except, opts.nexcept};
    sio_socket **list = NULL;
    long n = sio_select(cn->nsp, &t, &list);
    if (n < 0)
        n = 0;
    char *ch = response_channel(cn, uidbuf);
    long sent = 0;
    for (long i = 0; ch && i < n; i++) {
        struct bcast_ack *ba = calloc(1, sizeof *ba);
        if (!ba || !(ba->channel = strdup(ch))) {
            free(ba);
            continue;
        }
        ba->c = c;
        snprintf(ba->request_id, sizeof ba->request_id, "%s", request_id);
        if (sio_emit_with_ack(list[i], ev.event, ev.args.data, ev.nbins ? ev.bins : NULL,
                              ev.nbins, timeout, on_client_ack, ba) < 0) {
            free(ba->channel);
            free(ba);
            continue;
        }
        sent++;
    }
    free(list);
    /* the count first: always, 0 included, or the requester waits for this node forever */
    buf b = BUF_INIT;
    buf_puts(&b, "{\"type\":8,\"requestId\":");
    put_json_str(&b, request_id);
    buf_printf(&b, ",\"clientCount\":%ld}", sent);
    if (ch && buf_terminate(&b) == 0)
        publish_str(c, ch, &b);
    buf_free(&b);
    free(ch);
out:
    acodec_event_free(&ev);
    acodec_opts_free(&opts);
    msgpack_unpacked_destroy(&up);
}

/* The acks of clients live in sio's pending acks, each holding a bcast_ack that points at
 * the cluster: when the cluster goes first they must not use it. */

static void on_request(cluster *c, struct cnsp *cn, const char *channel, size_t channel_len,
                       const unsigned char *data, size_t len)
{
    if (len == 0 || len > MAX_REQUEST_BYTES) {
        drop(c, channel, channel_len, "empty or oversized request");
        return;
    }
    if (data[0] != '{') {
        broadcast_with_ack(c, cn, channel, channel_len, data, len);
        return;
    }
    json_tokener_reset(c->tok);
    struct json_object *req = json_tokener_parse_ex(c->tok, (const char *)data, (int)len);
    struct json_object *type;
    if (!req || json_tokener_get_error(c->tok) != json_tokener_success ||
        json_tokener_get_parse_end(c->tok) != len ||
        !json_object_is_type(req, json_type_object) ||
        !json_object_object_get_ex(req, "type", &type) ||
        !json_object_is_type(type, json_type_int)) {
        drop(c, channel, channel_len, "not a JSON request");
        json_object_put(req);
        return;
    }
    const char *uid = jstr(req, "uid");
    const char *rid = jstr(req, "requestId");
    struct json_object *opts = NULL, *rooms = NULL, *v = NULL;
    json_object_object_get_ex(req, "opts", &opts);
    int64_t t = json_object_get_int64(type);
    buf b = BUF_INIT;
    struct target_lists tl;
    if (rid && strlen(rid) > MAX_REQUEST_ID)
        rid = NULL;
    switch (t) {
    case REQ_SOCKETS:
    case REQ_ALL_ROOMS:
        if (!rid) {
            drop(c, channel, channel_len, "request without requestId");
            break;
        }
        if (uid && !strcmp(uid, c->uid))
            break;
        c->stats.requests++;
        buf_puts(&b, "{\"requestId\":");
        put_json_str(&b, rid);
        if (t == REQ_ALL_ROOMS) {
            buf_puts(&b, ",\"rooms\":[");
            sio_each_room(cn->nsp, add_room, &b);
        } else {
            json_object_object_get_ex(req, "rooms", &rooms);
            if (target_from(NULL, &tl) == 0) {
                bool ok;
                tl.rooms = json_list(rooms, &tl.t.nrooms, &ok);
                tl.t.rooms = tl.rooms;
                sio_socket **list = NULL;
                long n = ok ? sio_select(cn->nsp, &tl.t, &list) : 0;
                buf_puts(&b, ",\"sockets\":[");
                for (long i = 0; i < n; i++) {
                    if (i)
                        buf_putc(&b, ',');
                    put_json_str(&b, sio_socket_id(list[i]));
                }
                free(list);
                target_free(&tl);
            }
        }
        buf_puts(&b, "]}");
        reply_json(c, cn, uid, &b);
        break;
    case REQ_REMOTE_JOIN:
    case REQ_REMOTE_LEAVE:
    case REQ_REMOTE_DISCONNECT: {
        if (!opts) { /* the legacy form: one socket by id, answered */
            const char *sid = jstr(req, "sid");
            const char *room = jstr(req, "room");
            sio_socket *s = sid ? sio_socket_find(cn->nsp, sid) : NULL;
            if (!s || (t != REQ_REMOTE_DISCONNECT && !room))
                break; /* another node's socket */
            c->stats.requests++;
            if (t == REQ_REMOTE_JOIN)
                sio_join(s, room);
            else if (t == REQ_REMOTE_LEAVE)
                sio_leave(s, room);
            else {
                bool close = json_object_object_get_ex(req, "close", &v) &&
                             json_object_get_boolean(v);
                sio_disconnect(s, close);
            }
            if (rid) {
                buf_puts(&b, "{\"requestId\":");
                put_json_str(&b, rid);
                buf_putc(&b, '}');
                reply_json(c, cn, uid, &b);
            }
            break;
        }
        if (t == REQ_REMOTE_DISCONNECT && uid && !strcmp(uid, c->uid))
            break; /* ours (cluster_disconnect_remote): it is for the other nodes */
        if (target_from(opts, &tl) < 0) {
            drop(c, channel, channel_len, "bad opts");
            target_free(&tl);
            break;
        }
        size_t nr = 0;
        bool ok = true;
        const char **names = NULL;
        if (t != REQ_REMOTE_DISCONNECT) {
            json_object_object_get_ex(req, "rooms", &rooms);
            names = json_list(rooms, &nr, &ok);
        }
        if (!ok) {
            drop(c, channel, channel_len, "bad rooms");
            target_free(&tl);
            break;
        }
        c->stats.requests++;
        bool close = json_object_object_get_ex(req, "close", &v) && json_object_get_boolean(v);
        sio_socket **list = NULL;
        long n = sio_select(cn->nsp, &tl.t, &list);
        for (long i = 0; i < n; i++) {
            if (t == REQ_REMOTE_DISCONNECT) {
                sio_disconnect(list[i], close);
                continue;
            }
            for (size_t k = 0; k < nr; k++) {
                if (t == REQ_REMOTE_JOIN)
                    sio_join(list[i], names[k]);
                else
                    sio_leave(list[i], names[k]);
            }
        }
        free(list);
        free(names);
        target_free(&tl);
        break;
    }
    case REQ_REMOTE_FETCH: {
        if (!rid) {
            drop(c, channel, channel_len, "request without requestId");
            break;
        }
        if (uid && !strcmp(uid, c->uid))
            break;
        if (target_from(opts, &tl) < 0) {
            drop(c, channel, channel_len, "bad opts");
            target_free(&tl);
            break;
        }
        c->stats.requests++;
        sio_socket **list = NULL;
        long n = sio_select(cn->nsp, &tl.t, &list);
        buf_puts(&b, "{\"requestId\":");
        put_json_str(&b, rid);
        buf_puts(&b, ",\"sockets\":[");
        for (long i = 0; i < n; i++) {
            if (i)
                buf_putc(&b, ',');
            socket_json(&b, list[i], c->admin_data);
        }
        buf_puts(&b, "]}");
        free(list);
        target_free(&tl);
        reply_json(c, cn, uid, &b);
        break;
    }
    case REQ_SERVER_SIDE_EMIT: {
        if (uid && !strcmp(uid, c->uid))
            break;
        struct json_object *d;
        if (!json_object_object_get_ex(req, "data", &d) ||
            !json_object_is_type(d, json_type_array) || json_object_array_length(d) == 0 ||
            !json_object_is_type(json_object_array_get_idx(d, 0), json_type_string)) {
            drop(c, channel, channel_len, "serverSideEmit without an event name");
            break;
        }
        c->stats.requests++;
        if (!c->on_server_event)
            break;
        sio_args a = {d, 1, NULL, 0};
        buf args = BUF_INIT;
        sio_args_json(&a, &args);
        buf_terminate(&args);
        struct server_ack ack = {c, cn, uid, rid, false};
        c->on_server_event(c, sio_namespace_name(cn->nsp),
                           json_object_get_string(json_object_array_get_idx(d, 0)),
                           args.data ? args.data : "", rid ? &ack : NULL, c->server_event_ud);
        buf_free(&args);
        break;
    }
    default:
        drop(c, channel, channel_len, "unknown request type");
    }
    buf_free(&b);
    json_object_put(req);
}

/* ---- our requests: counting the other nodes' sockets ---- */

static void count_finish(struct cnsp *cn, bool ok)
{
    struct count_req *q = &cn->count;
    loop_timer_stop(cn->c->l, &q->timer);
    struct count_waiter *w = q->waiters;
    uint64_t sum = q->sum;
    q->waiters = NULL;
    q->active = false;
    while (w) {
        struct count_waiter *next = w->next;
        w->fn(sum, ok, w->arg);
        free(w);
        w = next;
    }
}

static void count_timeout(loop *l, void *ud)
{
    count_finish(ud, true);
}

static void count_numsub(const long long *ints, int n, void *ud)
{
    struct cnsp *cn = ud;
    struct count_req *q = &cn->count;
    cluster *c = cn->c;
    if (!q->active)
        return;
    q->expected = n == 1 ? (long)ints[0] - 1 : 0; /* every subscriber but us */
    if (q->expected <= 0) {
        count_finish(cn, true);
        return;
    }
    snprintf(q->request_id, sizeof q->request_id, "%s-%llu", c->uid,
             (unsigned long long)++c->next_request);
    buf b = BUF_INIT;
    buf_printf(&b, "{\"uid\":\"%s\",\"requestId\":\"%s\",\"type\":%d,\"rooms\":[]}", c->uid,
               q->request_id, REQ_SOCKETS);
    if (buf_terminate(&b) < 0 || publish_str(c, cn->request, &b) < 0) {
        buf_free(&b);
        count_finish(cn, true);
        return;
    }
    buf_free(&b);
    q->asked = true;
}


int cluster_count_remote(cluster *c, const char *nsp, unsigned timeout_ms, cluster_count_fn *fn,
                         void *arg)
{
    struct cnsp *cn = find_nsp(c, nsp, strlen(nsp));
    struct redis_link_stats ls;
    redis_link_get_stats(c->link, &ls);
    if (!cn || ls.state != REDIS_LINK_UP) {
        fn(0, true, arg);
        return 0;
    }
    struct count_waiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->fn = fn;
    w->arg = arg;
    struct count_req *q = &cn->count;
    w->next = q->waiters;
    q->waiters = w;
    if (q->active)
        return 0;
    q->active = true;
    q->asked = false;
    q->got = 0;
    q->sum = 0;
    q->request_id[0] = '\0';
    loop_timer_start(c->l, &q->timer, timeout_ms ? timeout_ms : 1000, count_timeout, cn);
    if (redis_link_numsub(c->link, cn->request, count_numsub, cn) < 0)
        count_finish(cn, true);
    return 0;
}

/* ---- our requests: fetching the other nodes' sockets ---- */

static void fetch_unlink_free(struct fetch_req *f)
{
    cluster *c = f->c;
    for (struct fetch_req **pp = &c->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            c->nfetches--;
            break;
        }
    json_object_put(f->sockets);
    free(f);
}

/* Runs fn; f stays (done) until its NUMSUB reply has come. */
static void fetch_finish(struct fetch_req *f, bool ok)
{
    if (f->done)
        return;
    f->done = true;
    loop_timer_stop(f->c->l, &f->timer);
    struct json_object *socks = ok ? f->sockets : NULL;
    f->sockets = NULL;
    f->fn(socks, ok, f->arg);
    if (!f->numsub_pending)
        fetch_unlink_free(f);
}

static void fetch_timeout(loop *l, void *ud)
{
    (void)l;
    fetch_finish(ud, true);
}

static void fetch_numsub(const long long *ints, int n, void *ud)
{
    struct fetch_req *f = ud;
    cluster *c = f->c;
    f->numsub_pending = false;
    if (f->done) {
        fetch_unlink_free(f);
        return;
    }
    f->expected = n == 1 ? (long)ints[0] - 1 : 0; /* every subscriber but us */
    if (f->expected <= 0) {
        fetch_finish(f, true);
        return;
    }
    snprintf(f->request_id, sizeof f->request_id, "%s-%llu", c->uid,
             (unsigned long long)++c->next_request);
    buf b = BUF_INIT;
    buf_printf(&b, "{\"uid\":\"%s\",\"requestId\":\"%s\",\"type\":%d,"
                   "\"opts\":{\"rooms\":[],\"except\":[]}}",
               c->uid, f->request_id, REQ_REMOTE_FETCH);
    if (buf_terminate(&b) < 0 || publish_str(c, f->cn->request, &b) < 0) {
        buf_free(&b);
        fetch_finish(f, true);
        return;
    }
    buf_free(&b);
    f->asked = true;
}

int cluster_fetch_remote(cluster *c, const char *nsp, unsigned timeout_ms, cluster_fetch_fn *fn,
                         void *arg)
{
    struct cnsp *cn = find_nsp(c, nsp, strlen(nsp));
    struct redis_link_stats ls;
    redis_link_get_stats(c->link, &ls);
    if (!cn || ls.state != REDIS_LINK_UP) {
        fn(json_object_new_array(), true, arg);
        return 0;
    }
    if (c->nfetches >= MAX_FETCHES)
        return -1;
    struct fetch_req *f = calloc(1, sizeof *f);
    if (!f || !(f->sockets = json_object_new_array())) {
        free(f);
        return -1;
    }
    f->c = c;
    f->cn = cn;
    f->fn = fn;
    f->arg = arg;
    f->next = c->fetches;
    c->fetches = f;
    c->nfetches++;
    loop_timer_start(c->l, &f->timer, timeout_ms ? timeout_ms : 1000, fetch_timeout, f);
    if (redis_link_numsub(c->link, cn->request, fetch_numsub, f) < 0)
        fetch_finish(f, true);
    else
        f->numsub_pending = true;
    return 0;
}

int cluster_remote_op(cluster *c, const char *nsp, enum cluster_op op, const char *in_room,
                      const char *room, bool close)
{
    struct cnsp *cn = find_nsp(c, nsp, strlen(nsp));
    struct redis_link_stats ls;
    redis_link_get_stats(c->link, &ls);
    if (!cn || ls.state != REDIS_LINK_UP || (op != CLUSTER_DISCONNECT && !room))
        return -1;
    int type = op == CLUSTER_JOIN    ? REQ_REMOTE_JOIN
               : op == CLUSTER_LEAVE ? REQ_REMOTE_LEAVE
                                     : REQ_REMOTE_DISCONNECT;
    buf b = BUF_INIT;
    buf_printf(&b, "{\"uid\":\"%s\",\"type\":%d,\"opts\":{\"rooms\":[", c->uid, type);
    if (in_room)
        put_json_str(&b, in_room);
    buf_puts(&b, "],\"except\":[]}");
    if (op == CLUSTER_DISCONNECT)
        buf_printf(&b, ",\"close\":%s}", close ? "true" : "false");
    else {
        buf_puts(&b, ",\"rooms\":[");
        put_json_str(&b, room);
        buf_puts(&b, "]}");
    }
    int r = buf_terminate(&b) == 0 ? publish_str(c, cn->request, &b) : -1;
    buf_free(&b);
    return r < 0 ? -1 : 0;
}

void cluster_set_admin_data(cluster *c, bool on)
{
    c->admin_data = on;
}

int cluster_disconnect_remote(cluster *c, const char *nsp, const char *sid)
{
    return cluster_remote_op(c, nsp, CLUSTER_DISCONNECT, sid, NULL, true); /* its own room */
}

/* A response on a namespace's response channels: to a fetch or to the count of ours, or
 * another node's (every node sees the shared channel). */
static void on_response(cluster *c, struct cnsp *cn, const unsigned char *data, size_t len)
{
    struct count_req *q = &cn->count;
    bool fetching = false;
    for (struct fetch_req *f = c->fetches; f && !fetching; f = f->next)
        fetching = f->asked && f->cn == cn;
    if ((!fetching && (!q->active || !q->asked)) || len == 0 || data[0] != '{' ||
        len > MAX_REQUEST_BYTES)
        return; /* not for a request of ours (other nodes' replies pass here too) */
    json_tokener_reset(c->tok);
    struct json_object *r = json_tokener_parse_ex(c->tok, (const char *)data, (int)len), *socks;
    const char *rid = r && json_object_is_type(r, json_type_object) ? jstr(r, "requestId") : NULL;
    for (struct fetch_req *f = c->fetches; rid && f; f = f->next) {
        if (f->done || !f->asked || f->cn != cn || strcmp(rid, f->request_id))
            continue;
        if (json_object_object_get_ex(r, "sockets", &socks) &&
            json_object_is_type(socks, json_type_array)) {
            size_t n = json_object_array_length(socks);
            for (size_t i = 0; i < n && json_object_array_length(f->sockets) < ACODEC_MAX_ROOMS * 16; i++)
                json_object_array_add(f->sockets, json_object_get(json_object_array_get_idx(socks, i)));
        }
        if (++f->got >= f->expected)
            fetch_finish(f, true);
        json_object_put(r);
        return;
    }
    if (!q->active || !q->asked) {
        json_object_put(r);
        return;
    }
    if (rid && !strcmp(rid, q->request_id) && json_object_object_get_ex(r, "sockets", &socks) &&
        json_object_is_type(socks, json_type_array)) {
        q->sum += json_object_array_length(socks);
        if (++q->got >= q->expected)
            count_finish(cn, true);
    }
    json_object_put(r);
}

/* ---- dispatch ---- */

static bool starts(const char *s, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && !memcmp(s, prefix, plen);
}

void cluster_handle_message(cluster *c, const char *pattern, const char *channel,
                            size_t channel_len, const unsigned char *data, size_t len)
{
    if (len > MAX_MESSAGE_BYTES) {
        drop(c, channel, channel_len, "message too large");
        return;
    }
    for (size_t i = 0; i < c->nnsps; i++) {
        struct cnsp *cn = &c->nsps[i];
        size_t rl = strlen(cn->request);
        if (channel_len == rl && !memcmp(channel, cn->request, rl)) {
            on_request(c, cn, channel, channel_len, data, len);
            return;
        }
        if (starts(channel, channel_len, cn->response, strlen(cn->response))) {
            on_response(c, cn, data, len);
            return;
        }
    }
    for (size_t i = 0; i < c->nnsps; i++) {
        struct cnsp *cn = &c->nsps[i];
        if (starts(channel, channel_len, cn->bprefix, cn->bprefix_len) &&
            (!pattern || !strcmp(pattern, cn->pattern))) {
            on_broadcast(c, cn, channel, channel_len, data, len);
            return;
        }
    }
    drop(c, channel, channel_len, "unknown namespace or channel");
}

static void on_message(const char *pattern, const char *channel, size_t channel_len,
                       const unsigned char *data, size_t len, void *ud)
{
    cluster_handle_message(ud, pattern, channel, channel_len, data, len);
}

static void on_state(enum redis_link_state s, void *ud)
{
    (void)s;
    (void)ud;
}

/* ---- life ---- */

static void add_nsp(sio_namespace *nsp, void *ud)
{
    cluster *c = ud;
    struct cnsp *grown = realloc(c->nsps, (c->nnsps + 1) * sizeof *grown);
    if (!grown)
        return;
    c->nsps = grown;
    const char *name = sio_namespace_name(nsp);
    struct cnsp *cn = &c->nsps[c->nnsps];
    memset(cn, 0, sizeof *cn);
    cn->nsp = nsp;
    cn->c = c;
    char *k = cat3(c->key, "#", name);
    char *kr = cat3(c->key, "-request#", name);
    char *kp = cat3(c->key, "-response#", name);
    if (k && kr && kp) {
        cn->bprefix = cat3(k, "#", "");
        cn->pattern = cat3(k, "#", "*");
        cn->request = cat3(kr, "#", "");
        cn->response = cat3(kp, "#", "");
        cn->own_response = cn->response ? cat3(cn->response, c->uid, "#") : NULL;
    }
    free(k);
    free(kr);
    free(kp);
    if (!cn->bprefix || !cn->pattern || !cn->request || !cn->response || !cn->own_response) {
        free(cn->bprefix);
        free(cn->pattern);
        free(cn->request);
        free(cn->response);
        free(cn->own_response);
        return;
    }
    cn->bprefix_len = strlen(cn->bprefix);
    c->nnsps++;
}

cluster *cluster_new(loop *l, sio_server *srv, const struct cluster_config *cfg, char **err)
{
    struct redis_url url;
    const char *why = NULL;
    if (redis_url_parse(cfg->url, &url, &why) < 0) {
        *err = strdup(why);
        return NULL;
    }
    cluster *c = calloc(1, sizeof *c);
    if (!c || !(c->key = strdup(cfg->key && *cfg->key ? cfg->key : "socket.io")) ||
        !(c->tok = json_tokener_new_ex(ACODEC_MAX_DEPTH + 2))) {
        redis_url_free(&url);
        if (c)
            free(c->key);
        free(c);
        *err = strdup("out of memory");
        return NULL;
    }
    c->l = l;
    c->srv = srv;
    /* 6 alphanumerics, as the adapter's uid2(6) */
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char rnd[6];
    util_random_bytes(rnd, sizeof rnd);
    for (int i = 0; i < 6; i++)
        c->uid[i] = alnum[rnd[i] % 62];
    c->uid[6] = '\0';
    sio_each_namespace(srv, add_nsp, c);
    c->link = redis_link_new(l, &url, on_message, on_state, c);
    redis_url_free(&url);
    if (!c->link) {
        cluster_free(c);
        *err = strdup("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < c->nnsps; i++) {
        redis_link_psubscribe(c->link, c->nsps[i].pattern);
        redis_link_subscribe(c->link, c->nsps[i].request);
        redis_link_subscribe(c->link, c->nsps[i].response);
        redis_link_subscribe(c->link, c->nsps[i].own_response);
    }
    sio_set_broadcast_hook(srv, on_local_broadcast, c);
    rlogf(RLOG_INFO, "Cluster node starting", "{\"uid\":\"%s\",\"key\":\"%s\",\"namespaces\":%zu}",
          c->uid, rlog_esc(c->key), c->nnsps);
    return c;
}

void cluster_free(cluster *c)
{
    if (!c)
        return;
    /* sio is freed first (its last disconnects still broadcast through the hook), so the
     * server is not touched here. */
    redis_link_free(c->link);
    while (c->fetches) { /* the link is gone: no NUMSUB reply will come */
        c->fetches->numsub_pending = false;
        if (c->fetches->done)
            fetch_unlink_free(c->fetches);
        else
            fetch_finish(c->fetches, false);
    }
    for (size_t i = 0; i < c->nnsps; i++) {
        if (c->nsps[i].count.active)
            count_finish(&c->nsps[i], false);
        free(c->nsps[i].bprefix);
        free(c->nsps[i].pattern);
        free(c->nsps[i].request);
        free(c->nsps[i].response);
        free(c->nsps[i].own_response);
    }
    free(c->nsps);
    free(c->key);
    json_tokener_free(c->tok);
    buf_free(&c->scratch);
    free(c);
}

void cluster_on_server_event(cluster *c, cluster_server_event_fn *fn, void *ud)
{
    c->on_server_event = fn;
    c->server_event_ud = ud;
}

const char *cluster_uid(const cluster *c)
{
    return c->uid;
}

void cluster_get_stats(const cluster *c, struct cluster_stats *out)
{
    *out = c->stats;
    redis_link_get_stats(c->link, &out->link);
}
