/* laravel_api.c: laravel-echo-server's HTTP API and HTTP subscriber (http-api.ts,
 * http-subscriber.ts) on /apps/:appId/..., with the clients' keys, and the same routes signed
 * the Pusher way (a client with a secret): POST events and batch_events, signed GETs. */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rtd/laravel/laravel_internal.h"

static void api_headers(laravel *lv, http_request *r)
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
                    !strpbrk(json_object_get_string(v), "\r\n") && lv_header_name_ok(k))
                    http_add_header(r, k, json_object_get_string(v));
            }
        }
        json_object_put(h);
    }
}

static void api_answer(laravel *lv, http_request *r, unsigned status, const char *json)
{
    api_headers(lv, r);
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

static void event_publish(laravel *lv, json_object *o, bool pusher)
{
    if (pusher)
        lv->stats.pusher_events++;
    else
        lv->stats.http_events++;
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
                lv_fanout(lv, json_object_get_string(c), ev, parsed ? parsed : data, sid);
        }
    } else if (json_object_get_string_len(ch) <= MAX_CHANNEL) {
        lv_fanout(lv, json_object_get_string(ch), ev, parsed ? parsed : data, sid);
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
        lv->stats.api_too_large++;
        api_answer(lv, r, 413, "{\"error\":\"Payload too large\"}");
        return;
    }
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)body, (int)len) : NULL;
    bool ok = tok && json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok || !json_object_is_type(o, json_type_object)) {
        lv->stats.api_bad_request++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Body must be a JSON object\"}");
        return;
    }
    if (!event_valid(o)) {
        lv->stats.api_bad_request++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Event must include channel, event name and data\"}");
        return;
    }
    event_publish(lv, o, http_request_query(r, "auth_signature") != NULL);
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
    if (http_request_too_large(r)) {
        lv->stats.api_too_large++;
        json_object_put(o);
        api_answer(lv, r, 413, "{\"error\":\"Payload too large\"}");
        return;
    }
    if (!ok) {
        lv->stats.api_bad_request++;
        json_object_put(o);
        api_answer(lv, r, 400, "{\"error\":\"Batch must hold up to 10 events with channel, event name and data\"}");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(batch); i++)
        event_publish(lv, json_object_array_get_idx(batch, i),
                      http_request_query(r, "auth_signature") != NULL);
    json_object_put(o);
    api_answer(lv, r, 200, "{}");
}

/* A presence channel's users or info, answered when Redis has (shared members). */
struct users_wait {
    laravel *lv;
    http_request *r;
    bool gone;     /* the client hung up meanwhile */
    bool answered; /* the Redis reply came (before the hang-up) */
    bool users;    /* /users, else the channel's info */
    size_t count;  /* the channel's sockets on this node */
};

static void users_gone(http_request *r, void *ud)
{
    (void)r;
    struct users_wait *w = ud;
    w->gone = true;
    if (w->answered)
        free(w);
}

static void users_ready(json_object *users, void *ud)
{
    struct users_wait *w = ud;
    laravel *lv = w->lv;
    if (w->gone || lv->closing) {
        if (w->gone)
            free(w);
        else
            w->answered = true; /* freed by users_gone when the server drops the request */
        return;
    }
    json_object *out = json_object_new_object();
    unsigned status = 200;
    if (!users) {
        status = 503;
        json_object_object_add(out, "error", json_object_new_string("Presence members unavailable"));
    } else if (w->users) {
        json_object_object_add(out, "users", json_object_get(users));
    } else {
        json_object_object_add(out, "subscription_count", json_object_new_int64((int64_t)w->count));
        json_object_object_add(out, "occupied", json_object_new_boolean(w->count > 0));
        json_object_object_add(out, "user_count",
                               json_object_new_int64((int64_t)json_object_array_length(users)));
    }
    buf b = BUF_INIT;
    api_headers(lv, w->r);
    if (buf_puts(&b, json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN)) < 0)
        status = 500;
    http_resume_respond(w->r, status, "application/json; charset=utf-8", &b);
    json_object_put(out);
    free(w);
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
        lv->stats.api_unauthorized++;
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
        double up = (double)(loop_now(lv->l) - lv->started_ms) / 1000.0;
        char ups[32];
        snprintf(ups, sizeof ups, "%.3f", up);
        json_object_object_add(out, "uptime", json_object_new_double_s(up, ups));
        /* process.memoryUsage()'s keys: the heap is malloc's; no V8 here, so no external */
        struct mallinfo2 mi = mallinfo2();
        json_object *mem = json_object_new_object();
        json_object_object_add(mem, "rss", json_object_new_int64((int64_t)rss_pages * 4096));
        json_object_object_add(mem, "heapTotal", json_object_new_int64((int64_t)(mi.arena + mi.hblkhd)));
        json_object_object_add(mem, "heapUsed", json_object_new_int64((int64_t)(mi.uordblks + mi.hblkhd)));
        json_object_object_add(mem, "external", json_object_new_int64(0));
        json_object_object_add(mem, "arrayBuffers", json_object_new_int64(0));
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
        if (nl > MAX_CHANNEL || memchr(n, '/', nl)) { /* Express's :channelName has no '/' */
            api_answer(lv, r, 404, "{\"error\":\"Not found\"}");
            return;
        }
        memcpy(name, n, nl);
        name[nl] = '\0';
        bool presence = !strncmp(name, "presence-", 9);
        struct presence *p = lv_presence_find(lv, name, false);
        if (users && !users[6] && !presence) {
            api_answer(lv, r, 400, "{\"error\":\"User list is only possible for Presence Channels\"}");
            return;
        }
        if (presence && lv->shared) { /* the members of every node, from Redis */
            struct users_wait *w = calloc(1, sizeof *w);
            if (!w) {
                api_answer(lv, r, 500, "{\"error\":\"Out of memory\"}");
                return;
            }
            *w = (struct users_wait){lv, r, false, false, users && !users[6], sio_room_size(lv->nsp, name)};
            http_suspend(r, users_gone, w);
            if (lv_presence_users(lv, name, users_ready, w) < 0)
                users_ready(NULL, w);
            return;
        }
        if (users && !users[6]) {
            out = json_object_new_object();
            json_object_object_add(out, "users", lv_unique_users(p));
        } else {
            size_t count = sio_room_size(lv->nsp, name);
            out = json_object_new_object();
            json_object_object_add(out, "subscription_count", json_object_new_int64((int64_t)count));
            json_object_object_add(out, "occupied", json_object_new_boolean(count > 0));
            if (presence) {
                json_object *u = lv_unique_users(p);
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

static void route_root(http_request *r, void *ud)
{
    laravel *lv = ud;
    if (strcmp(http_request_path(r), "/") != 0) {
        http_respond(r, 404, "text/plain; charset=utf-8", "Not Found", 9);
        return;
    }
    api_headers(lv, r);
    http_respond(r, 200, "text/html; charset=utf-8", "OK", 2);
}

int laravel_serve_root(laravel *lv, http_server *h)
{
    return http_route(h, "/", route_root, lv, 0);
}

int laravel_serve(laravel *lv, http_server *h, size_t max_body)
{
    return http_route(h, "/apps/", route_apps, lv, max_body);
}

