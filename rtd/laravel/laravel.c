/* laravel.c: laravel-echo-server's channels and Redis subscriber (see laravel.h). */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include "rtd/cluster/redis_link.h"
#include "rtd/laravel/laravel.h"
#include "rtd/laravel/laravel_http.h"
#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"

#define MAX_CHANNEL 200      /* bytes of a channel name */
#define MAX_CHANNELS 100     /* channels one socket may be in */
#define MAX_PENDING 1000     /* auth callouts under way */
#define AUTH_TIMEOUT_MS 10000
#define AUTH_MAX_BODY 65536
#define MAX_HEADERS 32

/* An auth callout under way; the socket is found again by its id when it ends. */
struct pending {
    struct pending *next, **prev;
    struct laravel *lv;
    char socket_id[32];
    char channel[MAX_CHANNEL + 1];
};

struct laravel {
    loop *l;
    sio_server *srv;
    uint64_t started_ms;
    sio_namespace *nsp;
    const struct laravel_config *cfg;
    redis_link *redis;
    size_t prefix_len;
    struct laravel_stats stats;
    lhttp *http;
    struct pending *pending;
    size_t npending;
    struct presence *presences; /* presence channels with members on this node */
    char seen_sigs[256][65]; /* Pusher signatures accepted lately: a replay is refused */
    unsigned seen_next;
    sio_disconnect_fn *next_disconnect; /* the platform's, called after ours */
    void *next_disconnect_ud;
};

/* A presence channel's members, one entry per socket, as laravel-echo-server keeps them
 * (presence-channel.ts): the member is channel_data plus socketId. */
struct member {
    char socket_id[32];
    char *user_id;       /* user_id as text: 1 and "1" are one user (the original's ==) */
    json_object *member; /* channel_data with socketId */
};

struct presence {
    struct presence *next;
    char name[MAX_CHANNEL + 1];
    struct member *m;
    size_t n, cap;
};


/* laravel-echo-server's regexes (src/channels/channel.ts), unanchored as there. */
static bool is_private(const char *ch)
{
    return strstr(ch, "private-") || strstr(ch, "presence-");
}

/* The channel of a subscribe/unsubscribe payload, or NULL. */
static const char *channel_of(const sio_args *a)
{
    json_object *o = sio_arg(a, 0), *ch;
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "channel", &ch) ||
        !json_object_is_type(ch, json_type_string))
        return NULL;
    const char *s = json_object_get_string(ch);
    size_t n = strlen(s);
    if (n == 0 || n > MAX_CHANNEL || (size_t)json_object_get_string_len(ch) != n)
        return NULL;
    return s;
}

static void emit_error(sio_socket *s, const char *channel, int status)
{
    buf b = BUF_INIT;
    if (buf_putc(&b, '"') == 0 && buf_json_escape(&b, channel, strlen(channel)) == 0 &&
        buf_printf(&b, "\",%d", status) == 0 && buf_terminate(&b) == 0)
        sio_emit(s, "subscription_error", b.data);
    buf_free(&b);
}

static struct presence *presence_find(laravel *lv, const char *name, bool create)
{
    for (struct presence *p = lv->presences; p; p = p->next)
        if (!strcmp(p->name, name))
            return p;
    if (!create)
        return NULL;
    struct presence *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->next = lv->presences;
    lv->presences = p;
    return p;
}

static void presence_drop_if_empty(laravel *lv, struct presence *p)
{
    if (p->n)
        return;
    for (struct presence **pp = &lv->presences; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p->m);
    free(p);
}

static int grow(struct presence *p)
{
    size_t cap = p->cap ? 2 * p->cap : 4;
    struct member *m = reallocarray(p->m, cap, sizeof *m);
    if (!m)
        return -1;
    p->m = m;
    p->cap = cap;
    return 0;
}

static bool has_user(const struct presence *p, const char *uid)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->m[i].user_id, uid))
            return true;
    return false;
}

/* "channel",<json> as event arguments. */
static int args_channel_json(buf *b, const char *channel, json_object *o)
{
    return buf_putc(b, '"') == 0 && buf_json_escape(b, channel, strlen(channel)) == 0 &&
                   buf_puts(b, "\",") == 0 &&
                   buf_puts(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) == 0 &&
                   buf_terminate(b) == 0
               ? 0
               : -1;
}

static void room_emit(laravel *lv, const char *room, const char *except_id, const char *event,
                      const buf *args)
{
    const char *rooms[1] = {room};
    const char *except[1] = {except_id};
    struct sio_target t = {rooms, 1, except, except_id ? 1 : 0};
    sio_packet *p = sio_event_packet(lv->nsp, event, (const char *)args->data, args->len, NULL, 0);
    if (p) {
        lv->stats.delivered += sio_broadcast_local(lv->nsp, &t, p);
        sio_packet_unref(p);
    }
}

/* After a 200 with channel_data: join, presence:subscribed to the socket (uniqBy(reverse),
 * each entry with socketId), presence:joining to the others if the user is new. */
static void presence_join(laravel *lv, sio_socket *s, const char *channel, const char *body,
                          size_t len)
{
    json_object *res = json_tokener_parse(body), *cd = NULL, *uid, *parsed = NULL;
    (void)len;
    if (json_object_is_type(res, json_type_object))
        json_object_object_get_ex(res, "channel_data", &cd);
    if (json_object_is_type(cd, json_type_string))
        cd = parsed = json_tokener_parse(json_object_get_string(cd));
    if (!json_object_is_type(cd, json_type_object) || !json_object_object_get_ex(cd, "user_id", &uid) ||
        !(json_object_is_type(uid, json_type_string) || json_object_is_type(uid, json_type_int))) {
        rlog(RLOG_WARN, "Member data for presence channel missing", NULL);
        lv->stats.refused++;
        emit_error(s, channel, 0);
        json_object_put(parsed);
        json_object_put(res);
        return;
    }
    struct presence *p = presence_find(lv, channel, true);
    struct member m = {0};
    snprintf(m.socket_id, sizeof m.socket_id, "%s", sio_socket_id(s));
    m.user_id = strdup(json_object_get_string(uid));
    json_object_deep_copy(cd, &m.member, NULL);
    if (!p || !m.user_id || !m.member ||
        json_object_object_add(m.member, "socketId", json_object_new_string(m.socket_id)) < 0 ||
        (p->n == p->cap && grow(p) < 0) ||
        sio_join(s, channel) < 0) {
        free(m.user_id);
        json_object_put(m.member);
        if (p)
            presence_drop_if_empty(lv, p);
        emit_error(s, channel, 0);
        json_object_put(parsed);
        json_object_put(res);
        return;
    }
    lv->stats.subscribes++;
    bool was = has_user(p, m.user_id);
    p->m[p->n++] = m;
    json_object *list = json_object_new_array();
    for (size_t i = p->n; i-- > 0;) {
        bool dup = false;
        for (size_t j = p->n; j-- > i + 1;)
            if (!strcmp(p->m[j].user_id, p->m[i].user_id))
                dup = true;
        if (!dup)
            json_object_array_add(list, json_object_get(p->m[i].member));
    }
    buf a = BUF_INIT;
    if (args_channel_json(&a, channel, list) == 0)
        sio_emit(s, "presence:subscribed", (const char *)a.data);
    buf_free(&a);
    json_object_put(list);
    if (!was) {
        buf j = BUF_INIT;
        if (args_channel_json(&j, channel, m.member) == 0)
            room_emit(lv, channel, m.socket_id, "presence:joining", &j);
        buf_free(&j);
    }
    json_object_put(parsed);
    json_object_put(res);
}

/* The socket's entry goes; presence:leaving (without socketId) to the room when it was the
 * user's last socket. */
static void presence_leave(laravel *lv, struct presence *p, const char *socket_id)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->m[i].socket_id, socket_id))
            continue;
        struct member m = p->m[i];
        memmove(&p->m[i], &p->m[i + 1], (p->n - i - 1) * sizeof *p->m);
        p->n--;
        if (!has_user(p, m.user_id)) {
            json_object_object_del(m.member, "socketId");
            buf a = BUF_INIT;
            if (args_channel_json(&a, p->name, m.member) == 0)
                room_emit(lv, p->name, NULL, "presence:leaving", &a);
            buf_free(&a);
        }
        free(m.user_id);
        json_object_put(m.member);
        break;
    }
    presence_drop_if_empty(lv, p);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
    laravel *lv = ud;
    const char *id = sio_socket_id(s);
    for (struct presence *p = lv->presences, *next; p; p = next) {
        next = p->next;
        presence_leave(lv, p, id);
    }
    if (lv->next_disconnect)
        lv->next_disconnect(s, reason, lv->next_disconnect_ud);
}

static void pending_free(struct pending *p)
{
    if (p->next)
        p->next->prev = p->prev;
    *p->prev = p->next;
    p->lv->npending--;
    free(p);
}

/* laravel-echo-server: only a 200 counts; the body is ignored for private channels. */
static void auth_done(long status, const char *body, size_t len, void *ud)
{
    struct pending *p = ud;
    laravel *lv = p->lv;
    sio_socket *s = sio_socket_find(lv->nsp, p->socket_id);
    /* a socket that left meanwhile, or is already in, is not joined (the original crashes) */
    if (s && sio_in_room(s, p->channel))
        s = NULL;
    if (s && status == 200 && !strncmp(p->channel, "presence-", 9) &&
        sio_socket_room_count(s) < MAX_CHANNELS) {
        presence_join(lv, s, p->channel, body, len);
    } else if (s) {
        if (status == 200 && sio_socket_room_count(s) < MAX_CHANNELS) {
            if (sio_join(s, p->channel) == 0)
                lv->stats.subscribes++;
        } else {
            lv->stats.refused++;
            emit_error(s, p->channel, (int)status);
        }
    }
    pending_free(p);
}

static bool header_name_ok(const char *k)
{
    if (!*k || strlen(k) > 100)
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '-' || *k == '_'))
            return false;
    return true;
}

/* POST authHost+authEndpoint, form channel_name=<channel>, with the client's auth.headers,
 * the Cookie of the connection's handshake unless auth.headers has one, and
 * X-Requested-With: XMLHttpRequest, as laravel-echo-server does (private-channel.ts). */
static int auth_callout(laravel *lv, sio_socket *s, const char *ch, json_object *headers)
{
    if (!lv->http || lv->npending >= MAX_PENDING)
        return -1;
    buf url = BUF_INIT, form = BUF_INIT, hb[MAX_HEADERS + 1];
    const char *hv[MAX_HEADERS + 4];
    bool has_cookie = false;
    size_t nh = 0;
    int r = -1;
    if (buf_puts(&url, lv->cfg->auth_hosts[0]) < 0 || buf_puts(&url, lv->cfg->auth_endpoint) < 0 ||
        buf_terminate(&url) < 0 || buf_puts(&form, "channel_name=") < 0)
        goto out;
    for (const unsigned char *c = (const unsigned char *)ch; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '-' || *c == '_' || *c == '.' || *c == '~';
        if ((ok ? buf_putc(&form, *c) : buf_printf(&form, "%%%02X", *c)) < 0)
            goto out;
    }
    if (buf_terminate(&form) < 0)
        goto out;
    if (json_object_is_type(headers, json_type_object)) {
        json_object_object_foreach(headers, k, v)
        {
            if (nh >= MAX_HEADERS || !header_name_ok(k) || !strcasecmp(k, "X-Requested-With") ||
                !strcasecmp(k, "Host") || !strcasecmp(k, "Content-Length") ||
                !strcasecmp(k, "Content-Type") || !json_object_is_type(v, json_type_string))
                continue;
            const char *val = json_object_get_string(v);
            if (strpbrk(val, "\r\n") || strlen(val) > 8192)
                continue;
            hb[nh] = (buf)BUF_INIT;
            if (buf_printf(&hb[nh], "%s: %s", k, val) < 0 || buf_terminate(&hb[nh]) < 0) {
                buf_free(&hb[nh]);
                goto out;
            }
            hv[nh] = (const char *)hb[nh].data;
            nh++;
            has_cookie |= !strcasecmp(k, "Cookie");
        }
    }
    const char *cookie = eio_session_cookie(sio_socket_session(s));
    if (!has_cookie && cookie) { /* LARAVEL_MAX_COOKIE at most, no CR/LF (an HTTP header) */
        hb[nh] = (buf)BUF_INIT;
        if (buf_printf(&hb[nh], "Cookie: %s", cookie) < 0 || buf_terminate(&hb[nh]) < 0) {
            buf_free(&hb[nh]);
            goto out;
        }
        hv[nh] = (const char *)hb[nh].data;
        nh++;
    }
    size_t n = nh;
    hv[n++] = "X-Requested-With: XMLHttpRequest";
    hv[n++] = "Accept:"; /* the reference sends none */
    hv[n] = NULL;
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    p->lv = lv;
    snprintf(p->socket_id, sizeof p->socket_id, "%s", sio_socket_id(s));
    snprintf(p->channel, sizeof p->channel, "%s", ch);
    if (lhttp_post(lv->http, (const char *)url.data, hv, (const char *)form.data, AUTH_TIMEOUT_MS,
                   AUTH_MAX_BODY, auth_done, p) < 0) {
        free(p);
        goto out;
    }
    p->next = lv->pending;
    if (p->next)
        p->next->prev = &p->next;
    p->prev = &lv->pending;
    lv->pending = p;
    lv->npending++;
    r = 0;
out:
    for (size_t i = 0; i < nh; i++)
        buf_free(&hb[i]);
    buf_free(&url);
    buf_free(&form);
    return r;
}

/* Whisper: `client event` {channel, event, data} on a private channel the socket is in, to
 * the others, when the event matches /client-.*\/ (channel.ts clientEvent). */
static void on_client_event(sio_socket *s, const char *event, const sio_args *a, int64_t ack_id,
                            void *ud)
{
    (void)event, (void)ack_id;
    laravel *lv = ud;
    json_object *o = sio_arg(a, 0), *parsed = NULL, *ch, *ev, *d = NULL;
    if (json_object_is_type(o, json_type_string))
        o = parsed = json_tokener_parse(json_object_get_string(o));
    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "channel", &ch) ||
        !json_object_object_get_ex(o, "event", &ev) || !json_object_is_type(ch, json_type_string) ||
        !json_object_is_type(ev, json_type_string) || !strstr(json_object_get_string(ev), "client-") ||
        !is_private(json_object_get_string(ch)) || !sio_in_room(s, json_object_get_string(ch))) {
        lv->stats.refused++;
        json_object_put(parsed);
        return;
    }
    json_object_object_get_ex(o, "data", &d);
    const char *room = json_object_get_string(ch);
    buf args = BUF_INIT;
    if (buf_putc(&args, '"') == 0 && buf_json_escape(&args, room, strlen(room)) == 0 &&
        buf_puts(&args, "\",") == 0 &&
        buf_puts(&args, d ? json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN) : "null") == 0) {
        const char *rooms[1] = {room};
        const char *except[1] = {sio_socket_id(s)};
        struct sio_target t = {rooms, 1, except, 1};
        sio_packet *p = sio_event_packet(lv->nsp, json_object_get_string(ev), (const char *)args.data,
                                         args.len, NULL, 0);
        if (p) {
            lv->stats.delivered += sio_broadcast_local(lv->nsp, &t, p);
            sio_packet_unref(p);
        }
    }
    buf_free(&args);
    json_object_put(parsed);
}

static void on_subscribe(sio_socket *s, const char *event, const sio_args *a, int64_t ack_id,
                         void *ud)
{
    (void)event, (void)ack_id;
    laravel *lv = ud;
    const char *ch = channel_of(a);
    if (!ch) {
        lv->stats.refused++;
        return;
    }
    if (sio_in_room(s, ch))
        return;
    if (is_private(ch)) {
        json_object *o = sio_arg(a, 0), *auth = NULL, *headers = NULL;
        if (json_object_object_get_ex(o, "auth", &auth) && json_object_is_type(auth, json_type_object))
            json_object_object_get_ex(auth, "headers", &headers);
        if (sio_socket_room_count(s) >= MAX_CHANNELS || auth_callout(lv, s, ch, headers) < 0) {
            lv->stats.refused++;
            emit_error(s, ch, 0);
        }
        return;
    }
    if (sio_socket_room_count(s) >= MAX_CHANNELS || !strcmp(ch, sio_socket_id(s)) ||
        sio_socket_find(lv->nsp, ch)) {
        lv->stats.refused++;
        emit_error(s, ch, 0);
        return;
    }
    if (sio_join(s, ch) == 0)
        lv->stats.subscribes++;
    if (lv->cfg->dev_mode)
        rlogf(RLOG_INFO, "Laravel channel joined", "{\"socketId\":\"%s\",\"channel\":\"%s\"}",
              sio_socket_id(s), is_private(ch) ? "(private)" : "(public)");
}

static void on_unsubscribe(sio_socket *s, const char *event, const sio_args *a, int64_t ack_id,
                           void *ud)
{
    (void)event, (void)ack_id;
    laravel *lv = ud;
    const char *ch = channel_of(a);
    if (!ch) {
        lv->stats.refused++;
        return;
    }
    if (strcmp(ch, sio_socket_id(s)) != 0 && sio_in_room(s, ch)) {
        sio_leave(s, ch);
        struct presence *p = presence_find(lv, ch, false);
        if (p)
            presence_leave(lv, p, sio_socket_id(s));
    }
}

/* echo-server.ts broadcast(): (event, channel, data) to the channel's sockets on this node,
 * except socket_id (toOthers) when given. */
static void publish(laravel *lv, const char *room, const char *event, json_object *d,
                    const char *socket_id)
{
    buf args = BUF_INIT;
    const char *dj = d ? json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN) : "null";
    if (buf_putc(&args, '"') == 0 && buf_json_escape(&args, room, strlen(room)) == 0 &&
        buf_puts(&args, "\",") == 0 && buf_puts(&args, dj) == 0) {
        const char *rooms[1] = {room};
        const char *except[1] = {socket_id};
        struct sio_target t = {rooms, 1, except, socket_id && *socket_id ? 1 : 0};
        sio_packet *p = sio_event_packet(lv->nsp, event, (const char *)args.data, args.len, NULL, 0);
        if (p) {
            /* local only: every rtd node runs its own subscriber */
            lv->stats.delivered += sio_broadcast_local(lv->nsp, &t, p);
            lv->stats.broadcasts++;
            sio_packet_unref(p);
        }
    }
    buf_free(&args);
}

/* PUBLISH <keyPrefix><channel> {"event": name, "data": {...}, "socket": id|null}. */
static void on_message(const char *pattern, const char *channel, size_t channel_len,
                       const unsigned char *data, size_t len, void *ud)
{
    (void)pattern;
    laravel *lv = ud;
    lv->stats.received++;
    if (channel_len < lv->prefix_len || channel_len - lv->prefix_len > MAX_CHANNEL) {
        lv->stats.dropped++;
        return;
    }
    char room[MAX_CHANNEL + 1];
    memcpy(room, channel + lv->prefix_len, channel_len - lv->prefix_len);
    room[channel_len - lv->prefix_len] = '\0';
    if (strlen(room) != channel_len - lv->prefix_len || !room[0]) {
        lv->stats.dropped++;
        return;
    }
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *msg = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)len) : NULL;
    bool complete = tok && json_tokener_get_error(tok) == json_tokener_success &&
                    json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    json_object *ev, *d = NULL, *sock = NULL;
    if (!complete || !json_object_is_type(msg, json_type_object) ||
        !json_object_object_get_ex(msg, "event", &ev) || !json_object_is_type(ev, json_type_string) ||
        !json_object_get_string_len(ev)) {
        lv->stats.dropped++;
        json_object_put(msg);
        if (lv->cfg->dev_mode)
            rlog(RLOG_WARN, "Laravel message dropped: not JSON or no event name", NULL);
        return;
    }
    json_object_object_get_ex(msg, "data", &d);
    json_object_object_get_ex(msg, "socket", &sock);
    publish(lv, room, json_object_get_string(ev), d,
            json_object_is_type(sock, json_type_string) ? json_object_get_string(sock) : NULL);
    json_object_put(msg);
}

static void on_state(enum redis_link_state state, void *ud)
{
    laravel *lv = ud;
    rlogf(state == REDIS_LINK_UP ? RLOG_INFO : RLOG_WARN, "Laravel Redis subscriber",
          "{\"state\":\"%s\",\"host\":\"%s\",\"port\":%d}", redis_link_state_name(state),
          lv->cfg->redis_host, lv->cfg->redis_port);
}

/* ---- the HTTP API and the HTTP subscriber (http-api.ts, http-subscriber.ts) ---- */

static void api_answer(laravel *lv, http_request *r, unsigned status, const char *json)
{
    const struct laravel_config *c = lv->cfg;
    if (c->allow_cors) {
        http_add_header(r, "Access-Control-Allow-Origin", c->allow_origin);
        http_add_header(r, "Access-Control-Allow-Methods", c->allow_methods);
        http_add_header(r, "Access-Control-Allow-Headers", c->allow_headers);
    }
    if (c->headers_json) {
        json_object *h = json_tokener_parse(c->headers_json);
        if (json_object_is_type(h, json_type_object)) {
            json_object_object_foreach(h, k, v)
            {
                if (json_object_is_type(v, json_type_string) &&
                    !strpbrk(json_object_get_string(v), "\r\n") && header_name_ok(k))
                    http_add_header(r, k, json_object_get_string(v));
            }
        }
        json_object_put(h);
    }
    http_respond(r, status, "application/json; charset=utf-8", json, strlen(json));
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char x[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[2 * n] = '\0';
}

struct qparam {
    const char *k, *v;
};

static int cmp_param(const void *a, const void *b)
{
    return strcmp(((const struct qparam *)a)->k, ((const struct qparam *)b)->k);
}

/* Pusher's signed requests (pusher-http-php, Reverb's verifySignature): auth_key of a client
 * with a secret, auth_timestamp within 600 s, auth_version 1.0, body_md5 of the body, and
 * auth_signature = hex HMAC-SHA256(secret, METHOD\nPATH\nsorted k=v&...), compared in
 * constant time; a signature seen lately is a replay. */
static bool pusher_allowed(laravel *lv, http_request *r, const char *app_id, size_t id_len,
                           const char *sig)
{
    const char *key = http_request_query(r, "auth_key");
    const char *ts = http_request_query(r, "auth_timestamp");
    const char *ver = http_request_query(r, "auth_version");
    const struct laravel_client *cl = NULL;
    for (size_t i = 0; key && i < lv->cfg->n_clients; i++) {
        const struct laravel_client *c = &lv->cfg->clients[i];
        if (c->secret && strlen(c->app_id) == id_len && !memcmp(c->app_id, app_id, id_len) &&
            !strcmp(c->key, key))
            cl = c;
    }
    if (!cl || !ts || (ver && strcmp(ver, "1.0")) || strlen(sig) != 64)
        return false;
    char *end;
    long long t = strtoll(ts, &end, 10);
    long long now = (long long)time(NULL);
    if (*end || t < now - 600 || t > now + 600)
        return false;
    size_t blen;
    const unsigned char *body = http_request_body(r, &blen);
    const char *md5 = http_request_query(r, "body_md5");
    if (blen || md5) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned dl = 0;
        char hx[2 * EVP_MAX_MD_SIZE + 1];
        if (!md5 || !EVP_Digest(body, blen, d, &dl, EVP_md5(), NULL))
            return false;
        hex(d, dl, hx);
        if (strcmp(hx, md5))
            return false;
    }
    buf q = BUF_INIT, msg = BUF_INIT;
    struct qparam ps[64];
    size_t np = 0;
    bool ok = false;
    if (http_request_copy_query(r, &q) < 0)
        goto out;
    for (const char *p = (const char *)q.data; p && *p && np < 64;) {
        const char *k = p, *v = p + strlen(p) + 1;
        p = v + strlen(v) + 1;
        if (strcmp(k, "auth_signature"))
            ps[np++] = (struct qparam){k, v};
    }
    qsort(ps, np, sizeof *ps, cmp_param);
    if (buf_printf(&msg, "%s\n%s\n", http_request_method(r), http_request_path(r)) < 0)
        goto out;
    for (size_t i = 0; i < np; i++)
        if (buf_printf(&msg, "%s%s=%s", i ? "&" : "", ps[i].k, ps[i].v) < 0)
            goto out;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    char want[2 * EVP_MAX_MD_SIZE + 1];
    if (!HMAC(EVP_sha256(), cl->secret, (int)strlen(cl->secret), (const unsigned char *)msg.data, msg.len, mac,
              &ml))
        goto out;
    hex(mac, ml, want);
    ok = strlen(want) == 64 && CRYPTO_memcmp(want, sig, 64) == 0;
    for (unsigned i = 0; ok && i < 256; i++)
        if (!strcmp(lv->seen_sigs[i], sig))
            ok = false; /* replayed */
    if (ok) {
        memcpy(lv->seen_sigs[lv->seen_next], sig, 65);
        lv->seen_next = (lv->seen_next + 1) % 256;
    }
out:
    buf_free(&q);
    buf_free(&msg);
    return ok;
}

/* Authorization with "Bearer " removed (any Authorization header), else ?auth_key=. */
static bool api_allowed(laravel *lv, http_request *r, const char *app_id, size_t id_len)
{
    const char *sig = http_request_query(r, "auth_signature");
    if (sig)
        return pusher_allowed(lv, r, app_id, id_len, sig);
    const char *key = http_request_header(r, "Authorization");
    char kb[512];
    if (key) {
        const char *b = strstr(key, "Bearer ");
        if (b) {
            snprintf(kb, sizeof kb, "%.*s%s", (int)(b - key), key, b + 7);
            key = kb;
        }
    } else {
        key = http_request_query(r, "auth_key");
    }
    if (!key)
        return false;
    for (size_t i = 0; i < lv->cfg->n_clients; i++) {
        const struct laravel_client *cl = &lv->cfg->clients[i];
        if (strlen(cl->app_id) == id_len && !memcmp(cl->app_id, app_id, id_len) &&
            !strcmp(cl->key, key))
            return true;
    }
    return false;
}

struct list_ctx {
    laravel *lv;
    const char *prefix;
    json_object *out;
};

static void list_room(const char *room, void *ud)
{
    struct list_ctx *x = ud;
    if (sio_socket_find(x->lv->nsp, room))
        return; /* a socket's own room */
    if (x->prefix && strncmp(room, x->prefix, strlen(x->prefix)))
        return;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "subscription_count",
                           json_object_new_int64((int64_t)sio_room_size(x->lv->nsp, room)));
    json_object_object_add(o, "occupied", json_object_new_boolean(1));
    json_object_object_add(x->out, room, o);
}

static json_object *unique_users(const struct presence *p)
{
    json_object *users = json_object_new_array();
    for (size_t i = 0; p && i < p->n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->m[j].user_id, p->m[i].user_id))
                dup = true;
        if (dup)
            continue;
        json_object *u = json_object_new_object(), *id = NULL, *info = NULL;
        json_object_object_get_ex(p->m[i].member, "user_id", &id);
        json_object_object_get_ex(p->m[i].member, "user_info", &info);
        json_object_object_add(u, "id", json_object_get(id));
        json_object_object_add(u, "user_info", json_object_get(info));
        json_object_array_add(users, u);
    }
    return users;
}

/* (channels || channel) && name && data, data truthy as in http-subscriber.ts. */
static bool event_valid(json_object *o)
{
    json_object *chs = NULL, *ch = NULL, *name = NULL, *data = NULL;
    if (!json_object_is_type(o, json_type_object))
        return false;
    json_object_object_get_ex(o, "channels", &chs);
    json_object_object_get_ex(o, "channel", &ch);
    json_object_object_get_ex(o, "name", &name);
    json_object_object_get_ex(o, "data", &data);
    bool has_ch = json_object_is_type(chs, json_type_array) || json_object_is_type(ch, json_type_string);
    bool has_data = data && !(json_object_is_type(data, json_type_string) && !json_object_get_string_len(data)) &&
                    !(json_object_is_type(data, json_type_boolean) && !json_object_get_boolean(data)) &&
                    !(json_object_is_type(data, json_type_int) && !json_object_get_int64(data));
    return has_ch && json_object_is_type(name, json_type_string) && json_object_get_string_len(name) &&
           has_data;
}

static void event_publish(laravel *lv, json_object *o)
{
    json_object *chs = NULL, *ch = NULL, *name = NULL, *data = NULL, *sock = NULL, *parsed = NULL;
    json_object_object_get_ex(o, "channels", &chs);
    json_object_object_get_ex(o, "channel", &ch);
    json_object_object_get_ex(o, "name", &name);
    json_object_object_get_ex(o, "data", &data);
    json_object_object_get_ex(o, "socket_id", &sock);
    if (json_object_is_type(data, json_type_string)) /* Pusher SDKs send data as JSON text */
        parsed = json_tokener_parse(json_object_get_string(data));
    const char *sid = json_object_is_type(sock, json_type_string) ? json_object_get_string(sock) : NULL;
    const char *ev = json_object_get_string(name);
    if (json_object_is_type(chs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(chs) && i < 100; i++) {
            json_object *c = json_object_array_get_idx(chs, i);
            if (json_object_is_type(c, json_type_string) && json_object_get_string_len(c) &&
                json_object_get_string_len(c) <= MAX_CHANNEL)
                publish(lv, json_object_get_string(c), ev, parsed ? parsed : data, sid);
        }
    } else if (json_object_get_string_len(ch) <= MAX_CHANNEL) {
        publish(lv, json_object_get_string(ch), ev, parsed ? parsed : data, sid);
    }
    json_object_put(parsed);
}

static json_object *parse_body(const unsigned char *p, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)p, (int)len) : NULL;
    if (tok && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static void api_batch(laravel *lv, http_request *r);

static void api_events(laravel *lv, http_request *r)
{
    size_t len;
    const unsigned char *body = http_request_body(r, &len);
    if (http_request_too_large(r)) {
        lv->stats.api_refused++;
        api_answer(lv, r, 413, "{\"error\":\"Payload too large\"}");
        return;
    }
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)body, (int)len) : NULL;
    bool ok = tok && json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok || !json_object_is_type(o, json_type_object)) {
        lv->stats.api_refused++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Body must be a JSON object\"}");
        return;
    }
    if (!event_valid(o)) {
        lv->stats.api_refused++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Event must include channel, event name and data\"}");
        return;
    }
    event_publish(lv, o);
    json_object_put(o);
    api_answer(lv, r, 200, http_request_query(r, "auth_signature") ? "{}" : "{\"message\":\"ok\"}");
}

/* Pusher's POST /apps/:id/batch_events {"batch": [event, ...]}: all valid, or none sent. */
static void api_batch(laravel *lv, http_request *r)
{
    size_t len;
    const unsigned char *body = http_request_body(r, &len);
    json_object *o = http_request_too_large(r) ? NULL : parse_body(body, len);
    json_object *batch = NULL;
    bool ok = json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "batch", &batch) &&
              json_object_is_type(batch, json_type_array) && json_object_array_length(batch) <= 10;
    for (size_t i = 0; ok && i < json_object_array_length(batch); i++)
        ok = event_valid(json_object_array_get_idx(batch, i));
    if (!ok) {
        lv->stats.api_refused++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Batch must hold up to 10 events with channel, event name and data\"}");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(batch); i++)
        event_publish(lv, json_object_array_get_idx(batch, i));
    json_object_put(o);
    api_answer(lv, r, 200, "{}");
}

static void route_apps(http_request *r, void *ud)
{
    laravel *lv = ud;
    const char *path = http_request_path(r) + strlen("/apps/");
    const char *slash = strchr(path, '/');
    size_t id_len = slash ? (size_t)(slash - path) : strlen(path);
    const char *rest = slash ? slash : "";
    const char *method = http_request_method(r);
    lv->stats.api_requests++;
    if (!api_allowed(lv, r, path, id_len)) {
        lv->stats.api_refused++;
        api_answer(lv, r, 403, "{\"error\":\"Unauthorized\"}");
        return;
    }
    bool get = !strcmp(method, "GET");
    json_object *out = NULL;
    if (!strcmp(method, "POST") && !strcmp(rest, "/events") && lv->cfg->sub_http) {
        api_events(lv, r);
        return;
    } else if (!strcmp(method, "POST") && !strcmp(rest, "/batch_events") && lv->cfg->sub_http) {
        api_batch(lv, r);
        return;
    } else if (get && !strcmp(rest, "/status")) {
        out = json_object_new_object();
        long rss_pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%*d %ld", &rss_pages) != 1)
                rss_pages = 0;
            fclose(f);
        }
        json_object_object_add(out, "subscription_count",
                               json_object_new_int64((int64_t)sio_server_socket_count(lv->srv)));
        json_object_object_add(out, "uptime",
                               json_object_new_double((double)(loop_now(lv->l) - lv->started_ms) / 1000.0));
        json_object *mem = json_object_new_object();
        json_object_object_add(mem, "rss", json_object_new_int64((int64_t)rss_pages * 4096));
        json_object_object_add(out, "memory_usage", mem);
    } else if (get && !strcmp(rest, "/channels")) {
        json_object *chans = json_object_new_object();
        struct list_ctx x = {lv, http_request_query(r, "filter_by_prefix"), chans};
        sio_each_room(lv->nsp, list_room, &x);
        out = json_object_new_object();
        json_object_object_add(out, "channels", chans);
    } else if (get && !strncmp(rest, "/channels/", 10) && rest[10]) {
        char name[MAX_CHANNEL + 1];
        const char *n = rest + 10;
        const char *users = strstr(n, "/users");
        size_t nl = users && !users[6] ? (size_t)(users - n) : strlen(n);
        if (nl > MAX_CHANNEL) {
            api_answer(lv, r, 404, "{\"error\":\"Not found\"}");
            return;
        }
        memcpy(name, n, nl);
        name[nl] = '\0';
        bool presence = !strncmp(name, "presence-", 9);
        struct presence *p = presence_find(lv, name, false);
        if (users && !users[6]) {
            if (!presence) {
                api_answer(lv, r, 400, "{\"error\":\"User list is only possible for Presence Channels\"}");
                return;
            }
            out = json_object_new_object();
            json_object_object_add(out, "users", unique_users(p));
        } else {
            size_t count = sio_room_size(lv->nsp, name);
            out = json_object_new_object();
            json_object_object_add(out, "subscription_count", json_object_new_int64((int64_t)count));
            json_object_object_add(out, "occupied", json_object_new_boolean(count > 0));
            if (presence) {
                json_object *u = unique_users(p);
                json_object_object_add(out, "user_count",
                                       json_object_new_int64((int64_t)json_object_array_length(u)));
                json_object_put(u);
            }
        }
    }
    if (!out) {
        api_answer(lv, r, 404, "{\"error\":\"Not found\"}");
        return;
    }
    api_answer(lv, r, 200, json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
    json_object_put(out);
}

int laravel_serve(laravel *lv, http_server *h, size_t max_body)
{
    return http_route(h, "/apps/", route_apps, lv, max_body);
}

laravel *laravel_new(loop *l, sio_server *srv, const struct laravel_config *c, const char **err)
{
    laravel *lv = calloc(1, sizeof *lv);
    if (!lv) {
        *err = "out of memory";
        return NULL;
    }
    lv->l = l;
    lv->cfg = c;
    lv->srv = srv;
    lv->started_ms = loop_now(l);
    lv->nsp = sio_namespace_find(srv, "/");
    if (!lv->nsp)
        lv->nsp = sio_namespace_add(srv, "/");
    if (!lv->nsp || sio_on(lv->nsp, "subscribe", on_subscribe, lv) < 0 ||
        sio_on(lv->nsp, "unsubscribe", on_unsubscribe, lv) < 0 ||
        sio_on(lv->nsp, "client event", on_client_event, lv) < 0 || !(lv->http = lhttp_new(l))) {
        *err = "cannot add the subscribe handlers";
        lhttp_free(lv->http);
        free(lv);
        return NULL;
    }
    lv->next_disconnect = sio_disconnect_handler(lv->nsp, &lv->next_disconnect_ud);
    sio_on_disconnect(lv->nsp, on_disconnect, lv);
    lv->prefix_len = strlen(c->key_prefix);
    if (c->sub_redis && !strcmp(c->database, "redis")) {
        struct redis_url u = {.host = c->redis_host, .port = c->redis_port,
                              .password = c->redis_password, .db = c->redis_db};
        lv->redis = redis_link_new(l, &u, on_message, on_state, lv);
        buf pat = BUF_INIT;
        if (!lv->redis || buf_puts(&pat, c->key_prefix) < 0 || buf_putc(&pat, '*') < 0 ||
            buf_terminate(&pat) < 0 || redis_link_psubscribe(lv->redis, pat.data) < 0) {
            buf_free(&pat);
            laravel_free(lv);
            *err = "cannot start the Redis subscriber";
            return NULL;
        }
        buf_free(&pat);
    }
    return lv;
}

void laravel_free(laravel *lv)
{
    if (!lv)
        return;
    redis_link_free(lv->redis);
    lhttp_free(lv->http); /* cancels the callouts: their pending states go here */
    while (lv->pending)
        pending_free(lv->pending);
    while (lv->presences) {
        struct presence *p = lv->presences;
        lv->presences = p->next;
        for (size_t i = 0; i < p->n; i++) {
            free(p->m[i].user_id);
            json_object_put(p->m[i].member);
        }
        free(p->m);
        free(p);
    }
    free(lv);
}

void laravel_get_stats(const laravel *lv, struct laravel_stats *out)
{
    *out = lv->stats;
}
