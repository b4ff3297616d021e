/* laravel.c: laravel-echo-server's channels, auth callout and Redis subscriber (see
 * laravel.h); presence is in laravel_presence.c, the HTTP API in laravel_api.c. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rtd/laravel/laravel_internal.h"
#include "rtd/lib/log.h"

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

void lv_emit_error(sio_socket *s, const char *channel, int status)
{
    buf b = BUF_INIT;
    if (buf_putc(&b, '"') == 0 && buf_json_escape(&b, channel, strlen(channel)) == 0 &&
        buf_printf(&b, "\",%d", status) == 0 && buf_terminate(&b) == 0)
        sio_emit(s, "subscription_error", b.data);
    buf_free(&b);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
    laravel *lv = ud;
    lv_presence_leave_all(lv, sio_socket_id(s));
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
    if (status == 200)
        lv->stats.auth_ok++;
    else if (status)
        lv->stats.auth_denied++;
    else
        lv->stats.auth_failed++;
    sio_socket *s = sio_socket_find(lv->nsp, p->socket_id);
    /* a socket that left meanwhile, or is already in, is not joined (the original crashes) */
    if (s && sio_in_room(s, p->channel))
        s = NULL;
    if (s && status == 200 && !strncmp(p->channel, "presence-", 9) &&
        sio_socket_room_count(s) < MAX_CHANNELS) {
        lv_presence_join(lv, s, p->channel, body);
    } else if (s) {
        if (status == 200 && sio_socket_room_count(s) < MAX_CHANNELS) {
            if (sio_join(s, p->channel) == 0)
                lv->stats.subscribes++;
        } else {
            lv_emit_error(s, p->channel, (int)status);
        }
    }
    pending_free(p);
}

bool lv_header_name_ok(const char *k)
{
    if (!*k || strlen(k) > 100)
        return false;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '-' || *k == '_'))
            return false;
    return true;
}

/* The authHost for a socket (private-channel.ts authHost, hasMatchingHost): the first entry;
 * with a handshake Referer, the referer's protocol//host when an entry equals it, its host, or
 * its hostname from the first dot on (JavaScript's substr(-1): the last character when there
 * is no dot), else the last entry, as the original's loop leaves it. Into out. */
static int auth_host(const laravel *lv, sio_socket *s, buf *out)
{
    const struct laravel_config *c = lv->cfg;
    const char *ref = eio_session_referer(sio_socket_session(s));
    const char *sep = ref ? strstr(ref, "://") : NULL;
    if (!sep || sep == ref || c->n_auth_hosts == 0)
        return buf_puts(out, c->n_auth_hosts ? c->auth_hosts[0] : "http://localhost");
    const char *host = sep + 3;
    size_t hl = strcspn(host, "/?#");
    char origin[600], hostport[300], hostname[300];
    int ol = snprintf(origin, sizeof origin, "%.*s//%.*s", (int)(sep + 1 - ref), ref, (int)hl, host);
    if (ol < 0 || (size_t)ol >= sizeof origin || hl >= sizeof hostport)
        return buf_puts(out, c->auth_hosts[0]);
    memcpy(hostport, host, hl);
    hostport[hl] = '\0';
    const char *at = strrchr(hostport, '@'); /* userinfo is not part of the host */
    const char *h = at ? at + 1 : hostport;
    size_t nl = *h == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":");
    snprintf(hostname, sizeof hostname, "%.*s", (int)nl, h);
    const char *dot = strchr(hostname, '.');
    const char *suffix = dot ? dot : (*hostname ? hostname + strlen(hostname) - 1 : NULL);
    for (size_t i = 0; i < c->n_auth_hosts; i++) {
        const char *e = c->auth_hosts[i];
        if ((suffix && !strcmp(suffix, e)) || !strcmp(origin, e) || !strcmp(h, e))
            return buf_puts(out, origin);
    }
    return buf_puts(out, c->auth_hosts[c->n_auth_hosts - 1]);
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
    if (auth_host(lv, s, &url) < 0 || buf_puts(&url, lv->cfg->auth_endpoint) < 0 ||
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
            if (nh >= MAX_HEADERS || !lv_header_name_ok(k) || !strcasecmp(k, "X-Requested-With") ||
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
    if (!has_cookie && cookie) { /* LARAVEL_MAX_HEADER at most, no CR/LF (an HTTP header) */
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
            lv_emit_error(s, ch, 0);
        }
        return;
    }
    if (sio_socket_room_count(s) >= MAX_CHANNELS || !strcmp(ch, sio_socket_id(s)) ||
        sio_socket_find(lv->nsp, ch)) {
        lv->stats.refused++;
        lv_emit_error(s, ch, 0);
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
        struct presence *p = lv_presence_find(lv, ch, false);
        if (p)
            lv_presence_leave(lv, p, sio_socket_id(s));
    }
}

/* echo-server.ts broadcast(): (event, channel, data) to the channel's sockets on this node,
 * except socket_id (toOthers) when given. */
void lv_publish(laravel *lv, const char *room, const char *event, json_object *d,
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

void lv_fanout(laravel *lv, const char *room, const char *event, json_object *d,
               const char *socket_id)
{
    if (!lv->shared) {
        lv_publish(lv, room, event, d, socket_id);
        return;
    }
    json_object *msg = json_object_new_object();
    json_object_object_add(msg, "event", json_object_new_string(event));
    json_object_object_add(msg, "data", json_object_get(d));
    json_object_object_add(msg, "socket", socket_id ? json_object_new_string(socket_id) : NULL);
    json_object_object_add(msg, "rtd", json_object_new_int(1)); /* counted where it came in */
    buf ch = BUF_INIT;
    const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
    if (buf_puts(&ch, lv->cfg->key_prefix) < 0 || buf_puts(&ch, room) < 0 ||
        redis_link_publish(lv->redis, (const char *)ch.data, ch.len, text, strlen(text)) < 0) {
        rlog(RLOG_WARN, "Laravel event sent on this node only: Redis refused it", NULL);
        lv_publish(lv, room, event, d, socket_id);
    }
    buf_free(&ch);
    json_object_put(msg);
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
    if (json_object_object_get_ex(msg, "rtd", NULL))
        lv->stats.received--; /* an rtd node's fan-out (HTTP subscriber, presence): not Laravel's */
    lv_publish(lv, room, json_object_get_string(ev), d,
            json_object_is_type(sock, json_type_string) ? json_object_get_string(sock) : NULL);
    json_object_put(msg);
}

static void on_state(enum redis_link_state state, void *ud)
{
    laravel *lv = ud;
    rlogf(state == REDIS_LINK_UP ? RLOG_INFO : RLOG_WARN, "Laravel Redis subscriber",
          "{\"state\":\"%s\",\"host\":\"%s\",\"port\":%d}", redis_link_state_name(state),
          lv->cfg->redis_host, lv->cfg->redis_port);
    if (state == REDIS_LINK_UP)
        lv_presence_relink(lv);
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
    if (c->sub_redis) { /* whatever the database, as the original (echo-server.ts) */
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
    lv_presence_start(lv);
    return lv;
}

void laravel_free(laravel *lv)
{
    if (!lv)
        return;
    lv->closing = true;
    redis_link_free(lv->redis); /* its replies under way run now, and only free their state */
    lhttp_free(lv->http); /* cancels the callouts: their pending states go here */
    while (lv->pending)
        pending_free(lv->pending);
    lv_presence_free(lv);
    free(lv);
}

void laravel_get_stats(const laravel *lv, struct laravel_stats *out)
{
    *out = lv->stats;
}

struct status_ctx {
    laravel *lv;
    buf *out;
    size_t max;
    bool first, full;
};

static void status_room(const char *room, void *ud)
{
    struct status_ctx *x = ud;
    if (x->full || sio_socket_find(x->lv->nsp, room))
        return; /* a socket's own room */
    size_t before = x->out->len;
    if (buf_puts(x->out, x->first ? "\"" : ",\"") < 0 || buf_json_escape(x->out, room, strlen(room)) < 0 ||
        buf_printf(x->out, "\":%zu", sio_room_size(x->lv->nsp, room)) < 0 || x->out->len + 3 > x->max) {
        x->out->len = before; /* this one does not fit: stop here */
        x->full = true;
        return;
    }
    x->first = false;
}

int laravel_status_json(laravel *lv, buf *out, size_t max)
{
    if (buf_printf(out, "{\"broadcasts\":%llu,\"deliveries\":%llu,\"channels\":{",
                   (unsigned long long)lv->stats.broadcasts, (unsigned long long)lv->stats.delivered) < 0)
        return -1;
    struct status_ctx x = {lv, out, max, true, false};
    sio_each_room(lv->nsp, status_room, &x);
    return buf_puts(out, "}}") < 0 || buf_terminate(out) < 0 ? -1 : 0;
}
