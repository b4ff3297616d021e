/* adminui.c: the Admin UI's /admin namespace (see adminui.h and
 * ../shared/reference/recovery-and-admin-ui.md part B for the protocol): config and
 * server_stats, the development-mode events, all_sockets (cluster-wide through rtd/cluster)
 * and the UI's commands. The logins are adminui_login.c's. */
#define _GNU_SOURCE
#include "rtd/adminui/adminui.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rtd/adminui/adminui_login.h"
#include "rtd/engine/eio_packet.h"
#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"

#define STATS_INTERVAL_MS 2000
/* Development mode: at most this many event_received and event_sent a second go to the
 * admins (the reference sends one event_sent per recipient of every broadcast: 1 000 clients
 * at 7 000 messages/s would be 7 M events a second for one admin); the rest are counted and
 * logged, not built. */
#define MAX_EVENTS_PER_SEC 1000

#define MAX_AGG 96
enum { AG_RAWCONN, AG_PIN, AG_BIN, AG_POUT, AG_BOUT, AG_RAWDISC };
static const char *const agg_names[] = {"rawConnection", "packetsIn",  "bytesIn",
                                        "packetsOut",    "bytesOut",   "rawDisconnection"};
struct agg_ev {
    int64_t ts;
    int type;
    int reason; /* rawDisconnection: the index of its reason in eio_counts; else -1 */
    uint64_t count;
};

/* One admin's all_sockets in a cluster: the local sockets, then the other nodes' once every
 * namespace's fetch has come back. a is NULL once the Admin UI is gone (cluster_free then
 * ends the fetches still out). */
struct gather {
    struct gather *next;
    adminui *a;
    char admin[UTIL_ID_LEN + 1];
    unsigned waiting;
    buf out; /* the array so far, without its closing bracket */
};

struct adminui {
    loop *l;
    sio_server *srv;
    sio_namespace *nsp;
    struct adminui_config cfg;
    char hostname[256];
    char server_id[256];
    int64_t started_ms;
    loop_timer stats_timer;
    struct eio_counts last;       /* the engine's counts at the last sample */
    struct agg_ev agg[MAX_AGG];   /* aggregatedEvents of the next server_stats */
    size_t nagg;
    loop_timer sample_timer;
    adminui_login *logins; /* admin-fcgi's admins, checked on a worker thread */
    cluster *cluster;                  /* NULL: a single node */
    uint64_t remote_admins;            /* the other nodes' admins at the last count */
    bool counting;
    struct gather *gathers;
    int64_t events_sec;     /* the second events_sent counts in */
    unsigned events_sent;
    uint64_t events_dropped; /* since the last log */
};

/* ---- what the admins are sent ---- */

static void config_json(adminui *a, buf *b)
{
    /* as instrument(): the commands unless read-only, then AGGREGATED_EVENTS, and ALL_EVENTS
     * in development mode */
    buf_puts(b, "{\"supportedFeatures\":[");
    if (!a->cfg.readonly)
        buf_puts(b, "\"EMIT\",\"JOIN\",\"LEAVE\",\"DISCONNECT\",\"MJOIN\",\"MLEAVE\","
                    "\"MDISCONNECT\",");
    buf_puts(b, "\"AGGREGATED_EVENTS\"");
    if (a->cfg.mode == ADMINUI_DEVELOPMENT)
        buf_puts(b, ",\"ALL_EVENTS\"");
    buf_puts(b, "]}");
}

struct nsp_walk {
    buf *b;
    bool first;
};

static void add_namespace(sio_namespace *nsp, void *ud)
{
    struct nsp_walk *w = ud;
    const char *name = sio_namespace_name(nsp);
    if (!w->first && !strcmp(name, "/"))
        return; /* listed first, as Node.js does (the UI selects the first one) */
    buf_puts(w->b, w->first ? "{\"name\":\"" : ",{\"name\":\"");
    buf_json_escape(w->b, name, strlen(name));
    buf_printf(w->b, "\",\"socketsCount\":%zu}", sio_namespace_size(nsp));
    w->first = false;
}

static void put_str(buf *b, const char *v);
static bool admins_anywhere(adminui *a);

/* The engine's counts since the last sample, into the second they were made in (the
 * sampling timer fires just after each second ends; a server_stats samples the second
 * under way). Entries of one (second, type, subType) add up, as instrument()'s buffer. */
static void agg_add(adminui *a, int64_t ts, int type, int reason, uint64_t n)
{
    if (!n)
        return;
    for (size_t i = 0; i < a->nagg; i++)
        if (a->agg[i].ts == ts && a->agg[i].type == type && a->agg[i].reason == reason) {
            a->agg[i].count += n;
            return;
        }
    if (a->nagg < MAX_AGG)
        a->agg[a->nagg++] = (struct agg_ev){ts, type, reason, n};
}

static void sample(adminui *a, bool second_ended)
{
    const struct eio_counts *k = eio_server_counts(sio_server_engine(a->srv));
    struct eio_counts *l = &a->last;
    int64_t ts = (util_wall_ms() - (second_ended ? 500 : 0)) / 1000 * 1000;
    agg_add(a, ts, AG_RAWCONN, -1, k->opened - l->opened);
    agg_add(a, ts, AG_PIN, -1, k->packets_in - l->packets_in);
    agg_add(a, ts, AG_BIN, -1, k->bytes_in - l->bytes_in);
    agg_add(a, ts, AG_POUT, -1, k->packets_out - l->packets_out);
    agg_add(a, ts, AG_BOUT, -1, k->bytes_out - l->bytes_out);
    for (int i = 0; i < EIO_MAX_REASONS; i++)
        agg_add(a, ts, AG_RAWDISC, i, k->closed[i] - l->closed[i]);
    *l = *k;
}

static void on_sample_timer(loop *l, void *ud)
{
    adminui *a = ud;
    sample(a, true);
    if (!admins_anywhere(a) && a->nagg > MAX_AGG / 2)
        a->nagg = 0; /* nobody to send them to */
    loop_timer_start(l, &a->sample_timer, 1000 - (uint64_t)(util_wall_ms() % 1000) + 5,
                     on_sample_timer, a);
}

static void stats_json(adminui *a, buf *b)
{
    eio_server *e = sio_server_engine(a->srv);
    unsigned polling = 0, ws = 0;
    eio_server_transport_counts(e, &polling, &ws);
    buf_puts(b, "{\"serverId\":\"");
    buf_json_escape(b, a->server_id, strlen(a->server_id));
    buf_puts(b, "\",\"hostname\":\"");
    buf_json_escape(b, a->hostname, strlen(a->hostname));
    buf_printf(b,
               "\",\"pid\":%d,\"uptime\":%.3f,\"clientsCount\":%u,\"pollingClientsCount\":%u,"
               "\"aggregatedEvents\":[",
               (int)getpid(), (double)(util_wall_ms() - a->started_ms) / 1000.0,
               eio_server_session_count(e), polling);
    sample(a, false);
    for (size_t i = 0; i < a->nagg; i++) {
        const struct agg_ev *ev = &a->agg[i];
        buf_printf(b, "%s{\"timestamp\":%lld,\"type\":\"%s\",", i ? "," : "",
                   (long long)ev->ts, agg_names[ev->type]);
        if (ev->reason >= 0) {
            const char *r = eio_server_counts(e)->reason[ev->reason];
            buf_puts(b, "\"subType\":");
            put_str(b, r);
            buf_putc(b, ',');
        }
        buf_printf(b, "\"count\":%llu}", (unsigned long long)ev->count);
    }
    a->nagg = 0;
    buf_puts(b, "],\"namespaces\":[");
    struct nsp_walk w = {b, true};
    sio_namespace *root = sio_namespace_find(a->srv, "/");
    if (root)
        add_namespace(root, &w);
    sio_each_namespace(a->srv, add_namespace, &w);
    buf_puts(b, "]}");
}

/* Whether any admin, here or on another node, would get what we send. */
static bool admins_anywhere(adminui *a)
{
    return sio_namespace_size(a->nsp) > 0 || (a->cluster && a->remote_admins > 0);
}

static const struct sio_observer observer;

/* Development mode watches every socket only while some admin looks. */
static void watch_if_needed(adminui *a)
{
    if (a->cfg.mode == ADMINUI_DEVELOPMENT)
        sio_set_observer(a->srv, admins_anywhere(a) ? &observer : NULL, a);
}

static void on_admin_count(uint64_t remote, bool ok, void *arg)
{
    if (!ok)
        return; /* cluster_free: the Admin UI is gone already */
    adminui *a = arg;
    a->counting = false;
    a->remote_admins = remote;
    watch_if_needed(a);
}

static void emit_built(sio_socket *s, adminui *a, const char *event,
                       void (*build)(adminui *, buf *))
{
    buf b = BUF_INIT;
    build(a, &b);
    if (buf_terminate(&b) == 0)
        sio_emit(s, event, b.data);
    buf_free(&b);
}

static bool event_budget(adminui *a);

static void on_stats_timer(loop *l, void *ud)
{
    adminui *a = ud;
    if (a->events_dropped && (int64_t)(loop_now(l) / 1000) != a->events_sec &&
        event_budget(a))
        a->events_sent--; /* only to log the drops of a second that ended */
    if (a->cluster && a->cfg.mode == ADMINUI_DEVELOPMENT && !a->counting) {
        a->counting = true;
        if (cluster_count_remote(a->cluster, "/admin", 1000, on_admin_count, a) < 0)
            a->counting = false;
    }
    /* in a cluster every node sends its own, as instrument() does: the admins of the
     * other nodes get it through the adapter */
    if (a->cluster || sio_namespace_size(a->nsp) > 0) {
        buf b = BUF_INIT;
        stats_json(a, &b);
        sio_packet *p = b.data ? sio_event_packet(a->nsp, "server_stats", b.data, b.len, NULL, 0)
                               : NULL;
        if (p) {
            sio_broadcast(a->nsp, NULL, NULL, p);
            sio_packet_unref(p);
        }
        buf_free(&b);
    }
    loop_timer_start(l, &a->stats_timer, STATS_INTERVAL_MS, on_stats_timer, a);
}

/* ---- development mode: every socket, room and event ---- */

static void put_str(buf *b, const char *v)
{
    buf_putc(b, '"');
    if (v)
        buf_json_escape(b, v, strlen(v));
    buf_putc(b, '"');
}

static void put_now(buf *b)
{
    char t[25];
    util_format_iso_time(util_wall_ms(), t);
    buf_printf(b, "\"%s\"", t);
}

/* A SerializedSocket (@socket.io/admin-ui lib/index.ts serialize). rtd keeps only the
 * User-Agent of the handshake's headers. */
static void put_socket(buf *b, sio_socket *s)
{
    eio_session *es = sio_socket_session(s);
    const char *id = sio_socket_id(s), *eid = eio_session_id(es);
    buf_puts(b, "{\"id\":");
    put_str(b, id);
    buf_printf(b, ",\"clientId\":\"%.12s\",\"transport\":\"%s\",\"nsp\":", eid,
               eio_session_transport(es) == EIO_T_WEBSOCKET ? "websocket" : "polling");
    put_str(b, sio_namespace_name(sio_socket_namespace(s)));
    const char *data = sio_socket_data_json(s);
    buf_printf(b, ",\"data\":%s,\"handshake\":{\"address\":", data ? data : "{}");
    put_str(b, eio_session_remote_addr(es));
    buf_puts(b, ",\"headers\":{");
    const char *ua = eio_session_user_agent(es);
    if (ua) {
        buf_puts(b, "\"user-agent\":");
        put_str(b, ua);
    }
    buf_puts(b, "},\"query\":{");
    const char *q = eio_session_query_all(es);
    for (bool first = true; q && *q; first = false) {
        const char *v = q + strlen(q) + 1;
        if (!first)
            buf_putc(b, ',');
        put_str(b, q);
        buf_putc(b, ':');
        put_str(b, v);
        q = v + strlen(v) + 1;
    }
    int64_t at = sio_socket_connected_ms(s);
    char t[25];
    util_format_iso_time(at, t);
    buf_printf(b, "},\"issued\":%lld,\"secure\":false,\"time\":\"%s\",\"url\":\"/socket.io/\","
                  "\"xdomain\":false},\"rooms\":[",
               (long long)at, t);
    put_str(b, id);
    const char *rooms[64];
    size_t n = sio_socket_rooms(s, rooms, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        buf_putc(b, ',');
        put_str(b, rooms[i]);
    }
    buf_puts(b, "]}");
}

/* Sends event with args (JSON text joined by commas) to every admin. */
static void to_admins(adminui *a, const char *event, buf *args)
{
    if (!args->data || !admins_anywhere(a))
        return;
    sio_packet *p = sio_event_packet(a->nsp, event, args->data, args->len, NULL, 0);
    if (p) {
        sio_broadcast(a->nsp, NULL, NULL, p);
        sio_packet_unref(p);
    }
}

static bool watched(adminui *a, sio_socket *s)
{
    return sio_socket_namespace(s) != a->nsp;
}

static void obs_connected(sio_socket *s, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    put_socket(&b, s);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, "socket_connected", &b);
    buf_free(&b);
}

static void obs_disconnected(sio_socket *s, const char *reason, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    put_str(&b, reason);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, "socket_disconnected", &b);
    buf_free(&b);
}

static void room_event(adminui *a, const char *event, sio_socket *s, const char *room)
{
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, room);
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, event, &b);
    buf_free(&b);
}

static void obs_joined(sio_socket *s, const char *room, void *ud)
{
    room_event(ud, "room_joined", s, room);
}

static void obs_left(sio_socket *s, const char *room, void *ud)
{
    room_event(ud, "room_left", s, room);
}

static void obs_upgraded(sio_socket *s, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    buf_puts(&b, "{\"id\":");
    put_str(&b, sio_socket_id(s));
    buf_puts(&b, ",\"nsp\":");
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_puts(&b, ",\"transport\":\"websocket\"}");
    to_admins(a, "socket_updated", &b);
    buf_free(&b);
}

static void event_msg(adminui *a, const char *event, sio_socket *s, const char *arr, size_t n)
{
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    buf_append(&b, arr, n);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, event, &b);
    buf_free(&b);
}

/* Whether one more event_received or event_sent may go to the admins this second. */
static bool event_budget(adminui *a)
{
    int64_t sec = (int64_t)(loop_now(a->l) / 1000);
    if (sec != a->events_sec) {
        if (a->events_dropped)
            rlogf(RLOG_WARN, "Admin UI: events not shown",
                  "{\"dropped\":%llu,\"limit_per_sec\":%d}",
                  (unsigned long long)a->events_dropped, MAX_EVENTS_PER_SEC);
        a->events_sec = sec;
        a->events_sent = 0;
        a->events_dropped = 0;
    }
    if (a->events_sent >= MAX_EVENTS_PER_SEC) {
        a->events_dropped++;
        return false;
    }
    a->events_sent++;
    return true;
}

static void obs_event_in(sio_socket *s, struct json_object *payload, void *ud)
{
    adminui *a = ud;
    if (!watched(a, s) || !admins_anywhere(a) || !event_budget(a))
        return;
    size_t n;
    const char *j = json_object_to_json_string_length(payload, JSON_C_TO_STRING_PLAIN, &n);
    if (j)
        event_msg(a, "event_received", s, j, n);
}

/* An EVENT or BINARY_EVENT packet's [name, ...args] (placeholders left as they are). */
static void obs_packet_out(sio_socket *s, const sio_packet *p, void *ud)
{
    adminui *a = ud;
    if (!watched(a, s) || p->n < 1 || !admins_anywhere(a))
        return;
    const eio_packet *e = p->parts[0];
    const char *d = (const char *)e->raw + EIO_PACKET_HEADROOM + 1, *end = d + e->len;
    if (d == end || (*d != '2' && *d != '5'))
        return;
    d++;
    if (d[-1] == '5') {
        while (d < end && *d >= '0' && *d <= '9')
            d++;
        if (d == end || *d++ != '-')
            return;
    }
    if (d < end && *d == '/') {
        while (d < end && *d != ',')
            d++;
        if (d++ == end)
            return;
    }
    while (d < end && *d >= '0' && *d <= '9')
        d++;
    if (d < end && *d == '[' && event_budget(a))
        event_msg(a, "event_sent", s, d, (size_t)(end - d));
}

static const struct sio_observer observer = {
    .connected = obs_connected,
    .disconnected = obs_disconnected,
    .joined = obs_joined,
    .left = obs_left,
    .upgraded = obs_upgraded,
    .event_in = obs_event_in,
    .packet_out = obs_packet_out,
};

struct all_walk {
    buf *b;
    bool first;
};

static void all_of_namespace(sio_namespace *nsp, void *ud)
{
    struct all_walk *w = ud;
    struct sio_target all = {NULL, 0, NULL, 0};
    sio_socket **list = NULL;
    long n = sio_select(nsp, &all, &list);
    for (long i = 0; i < n; i++) {
        if (!w->first)
            buf_putc(w->b, ',');
        put_socket(w->b, list[i]);
        w->first = false;
    }
    free(list);
}

static void all_sockets_json(adminui *a, buf *b)
{
    struct all_walk w = {b, true};
    buf_putc(b, '[');
    sio_each_namespace(a->srv, all_of_namespace, &w);
    buf_putc(b, ']');
}

/* A socket of another node ({id, handshake, rooms, data}, as fetchSockets gives it) as a
 * SerializedSocket: clientId and transport from data._admin when the node is an
 * instrument()ed Node.js one, the address as serialize() picks it. */
static void put_remote_socket(buf *b, const char *nsp, struct json_object *r)
{
    struct json_object *id, *hs = NULL, *rooms = NULL, *data = NULL, *adm = NULL, *v;
    if (!json_object_is_type(r, json_type_object) || !json_object_object_get_ex(r, "id", &id) ||
        !json_object_is_type(id, json_type_string))
        return;
    json_object_object_get_ex(r, "handshake", &hs);
    json_object_object_get_ex(r, "rooms", &rooms);
    json_object_object_get_ex(r, "data", &data);
    if (b->len > 1)
        buf_putc(b, ',');
    buf_puts(b, "{\"id\":");
    put_str(b, json_object_get_string(id));
    if (data && json_object_is_type(data, json_type_object) &&
        json_object_object_get_ex(data, "_admin", &adm) &&
        json_object_is_type(adm, json_type_object)) {
        for (int i = 0; i < 2; i++) {
            const char *k = i ? "transport" : "clientId";
            if (json_object_object_get_ex(adm, k, &v) && json_object_is_type(v, json_type_string)) {
                buf_printf(b, ",\"%s\":", k);
                put_str(b, json_object_get_string(v));
            }
        }
    }
    buf_puts(b, ",\"nsp\":");
    put_str(b, nsp);
    buf_puts(b, ",\"data\":{");
    bool first = true;
    if (data && json_object_is_type(data, json_type_object)) {
        json_object_object_foreach(data, k, dv) {
            if (!strcmp(k, "_admin"))
                continue;
            if (!first)
                buf_putc(b, ',');
            first = false;
            put_str(b, k);
            buf_putc(b, ':');
            buf_puts(b, json_object_to_json_string_ext(dv, JSON_C_TO_STRING_PLAIN));
        }
    }
    buf_puts(b, "},\"handshake\":{");
    struct json_object *headers = NULL, *addr = NULL;
    if (hs && json_object_is_type(hs, json_type_object)) {
        json_object_object_get_ex(hs, "headers", &headers);
        if (!headers || !json_object_is_type(headers, json_type_object) ||
            (!json_object_object_get_ex(headers, "cf-connecting-ip", &addr) &&
             !json_object_object_get_ex(headers, "x-forwarded-for", &addr)))
            json_object_object_get_ex(hs, "address", &addr);
    }
    buf_puts(b, "\"address\":");
    buf_puts(b, addr ? json_object_to_json_string_ext(addr, JSON_C_TO_STRING_PLAIN) : "null");
    static const char *const keys[] = {"headers", "query", "issued", "secure", "time", "url",
                                       "xdomain"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (hs && json_object_is_type(hs, json_type_object) &&
            json_object_object_get_ex(hs, keys[i], &v)) {
            buf_printf(b, ",\"%s\":", keys[i]);
            buf_puts(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
    buf_puts(b, "},\"rooms\":");
    buf_puts(b, rooms && json_object_is_type(rooms, json_type_array)
                    ? json_object_to_json_string_ext(rooms, JSON_C_TO_STRING_PLAIN)
                    : "[]");
    buf_putc(b, '}');
}

struct fetched {
    struct gather *g;
    char nsp[256];
};

static void gather_done(struct gather *g)
{
    adminui *a = g->a;
    if (a) {
        for (struct gather **pp = &a->gathers; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        sio_socket *s = sio_socket_find(a->nsp, g->admin);
        buf_putc(&g->out, ']');
        if (s && buf_terminate(&g->out) == 0)
            sio_emit(s, "all_sockets", g->out.data);
    }
    buf_free(&g->out);
    free(g);
}

static void on_fetched(struct json_object *sockets, bool ok, void *arg)
{
    struct fetched *f = arg;
    struct gather *g = f->g;
    if (ok && g->a && sockets)
        for (size_t i = 0; i < json_object_array_length(sockets); i++)
            put_remote_socket(&g->out, f->nsp, json_object_array_get_idx(sockets, i));
    json_object_put(sockets);
    free(f);
    if (--g->waiting == 0)
        gather_done(g);
}

static void fetch_namespace(sio_namespace *nsp, void *ud)
{
    struct gather *g = ud;
    struct fetched *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->g = g;
    snprintf(f->nsp, sizeof f->nsp, "%s", sio_namespace_name(nsp));
    g->waiting++;
    if (cluster_fetch_remote(g->a->cluster, f->nsp, 1000, on_fetched, f) < 0) {
        g->waiting--;
        free(f);
    }
}

/* all_sockets for admin s: every node's sockets (fetchSockets), sent when all came back. */
static void all_sockets_cluster(adminui *a, sio_socket *s)
{
    struct gather *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->a = a;
    snprintf(g->admin, sizeof g->admin, "%s", sio_socket_id(s));
    all_sockets_json(a, &g->out);
    if (g->out.len)
        g->out.len--; /* reopen the array */
    g->waiting = 1; /* until every fetch is out */
    g->next = a->gathers;
    a->gathers = g;
    sio_each_namespace(a->srv, fetch_namespace, g);
    if (--g->waiting == 0)
        gather_done(g);
}

static void on_admin_disconnect(sio_socket *s, const char *reason, void *ud)
{
    adminui *a = ud;
    (void)s;
    (void)reason;
    watch_if_needed(a);
}

/* ---- the UI's commands: emit, join, leave, _disconnect (nsp, ..., filter?) ---- */

/* The sockets of nsp named by filter (a room or a socket id; every socket if NULL). */
static long targets(adminui *a, const sio_args *args, size_t filter_at, sio_socket ***out)
{
    struct json_object *n = sio_arg(args, 0), *f = sio_arg(args, filter_at);
    if (!n || !json_object_is_type(n, json_type_string))
        return -1;
    sio_namespace *nsp = sio_namespace_find(a->srv, json_object_get_string(n));
    if (!nsp)
        return -1;
    const char *room = f && json_object_is_type(f, json_type_string) ? json_object_get_string(f)
                                                                      : NULL;
    const char *rooms[1] = {room};
    struct sio_target t = {rooms, room ? 1 : 0, NULL, 0};
    return sio_select(nsp, &t, out);
}

/* The same command on the other nodes (socketsJoin, socketsLeave, disconnectSockets). */
static void remote_op(adminui *a, const sio_args *args, size_t filter_at, enum cluster_op op,
                      const char *room, bool close)
{
    struct json_object *n = sio_arg(args, 0), *f = sio_arg(args, filter_at);
    if (!n || !json_object_is_type(n, json_type_string))
        return;
    const char *filter = f && json_object_is_type(f, json_type_string) ? json_object_get_string(f)
                                                                        : NULL;
    cluster_remote_op(a->cluster, json_object_get_string(n), op, filter, room, close);
}

static void cmd_room(sio_socket *admin, const char *event, const sio_args *args, int64_t ack,
                     void *ud)
{
    (void)admin;
    (void)ack;
    struct json_object *r = sio_arg(args, 1);
    if (!r || !json_object_is_type(r, json_type_string))
        return;
    const char *room = json_object_get_string(r);
    adminui *a = ud;
    if (a->cluster)
        remote_op(a, args, 2, !strcmp(event, "join") ? CLUSTER_JOIN : CLUSTER_LEAVE, room, false);
    sio_socket **list = NULL;
    long n = targets(ud, args, 2, &list);
    for (long i = 0; i < n; i++) {
        if (!strcmp(event, "join"))
            sio_join(list[i], room);
        else
            sio_leave(list[i], room);
    }
    free(list);
}

static void cmd_disconnect(sio_socket *admin, const char *event, const sio_args *args,
                           int64_t ack, void *ud)
{
    (void)admin;
    (void)event;
    (void)ack;
    struct json_object *c = sio_arg(args, 1);
    bool close = c && json_object_is_type(c, json_type_boolean) && json_object_get_boolean(c);
    adminui *a = ud;
    if (a->cluster)
        remote_op(a, args, 2, CLUSTER_DISCONNECT, NULL, close);
    sio_socket **list = NULL;
    long n = targets(ud, args, 2, &list);
    for (long i = 0; i < n; i++)
        sio_disconnect(list[i], close);
    free(list);
}

static void cmd_emit(sio_socket *admin, const char *event, const sio_args *args, int64_t ack,
                     void *ud)
{
    (void)admin;
    (void)event;
    (void)ack;
    struct json_object *ev = sio_arg(args, 2);
    if (!ev || !json_object_is_type(ev, json_type_string))
        return;
    sio_socket **list = NULL;
    long n = targets(ud, args, 1, &list);
    if (n <= 0) {
        free(list);
        return;
    }
    buf b = BUF_INIT;
    for (size_t i = 3; i < sio_argc(args); i++) {
        if (i > 3)
            buf_putc(&b, ',');
        buf_puts(&b, json_object_to_json_string_ext(sio_arg(args, i), JSON_C_TO_STRING_PLAIN));
    }
    sio_packet *p = sio_event_packet(sio_socket_namespace(list[0]), json_object_get_string(ev),
                                     b.data ? b.data : "", b.len, NULL, 0);
    for (long i = 0; p && i < n; i++)
        sio_send(list[i], p);
    if (p)
        sio_packet_unref(p);
    buf_free(&b);
    free(list);
}

static void on_connection(sio_socket *s, struct json_object *auth, void *ud)
{
    adminui *a = ud;
    (void)auth;
    const char *session = adminui_login_session(s);
    if (session) {
        char arg[64];
        snprintf(arg, sizeof arg, "\"%s\"", session);
        sio_emit(s, "session", arg);
    }
    emit_built(s, a, "config", config_json);
    if (a->cfg.mode == ADMINUI_DEVELOPMENT) {
        if (a->cluster)
            all_sockets_cluster(a, s);
        else
            emit_built(s, a, "all_sockets", all_sockets_json);
        sio_set_observer(a->srv, &observer, a);
    }
    emit_built(s, a, "server_stats", stats_json);
}

adminui *adminui_new(loop *l, sio_server *srv, const struct adminui_config *cfg, char **err)
{
    *err = NULL;
    adminui *a = calloc(1, sizeof *a);
    if (!a) {
        *err = strdup("out of memory");
        return NULL;
    }
    a->l = l;
    a->srv = srv;
    a->cfg = *cfg;
    a->started_ms = util_wall_ms();
    if (gethostname(a->hostname, sizeof a->hostname - 1) != 0)
        strcpy(a->hostname, "localhost");
    snprintf(a->server_id, sizeof a->server_id, "%s", cfg->server_id ? cfg->server_id : a->hostname);
    if (!(a->logins = adminui_login_new(l, cfg->db, err))) {
        adminui_free(a);
        return NULL;
    }
    a->nsp = sio_namespace_add(srv, "/admin");
    if (!a->nsp) {
        *err = strdup("cannot add the /admin namespace");
        adminui_free(a);
        return NULL;
    }
    sio_use(a->nsp, adminui_login_authorize, a->logins);
    sio_use_cancel(a->nsp, adminui_login_cancel);
    sio_on_connection(a->nsp, on_connection, a);
    sio_on_disconnect(a->nsp, on_admin_disconnect, a);
    if (!cfg->readonly) {
        sio_on(a->nsp, "emit", cmd_emit, a);
        sio_on(a->nsp, "join", cmd_room, a);
        sio_on(a->nsp, "leave", cmd_room, a);
        sio_on(a->nsp, "_disconnect", cmd_disconnect, a);
    }
    loop_timer_start(l, &a->stats_timer, STATS_INTERVAL_MS, on_stats_timer, a);
    a->last = *eio_server_counts(sio_server_engine(srv));
    loop_timer_start(l, &a->sample_timer, 1000 - (uint64_t)(util_wall_ms() % 1000) + 5,
                     on_sample_timer, a);
    return a;
}

void adminui_set_cluster(adminui *a, cluster *c)
{
    a->cluster = c;
    cluster_set_admin_data(c, true);
    /* the UI keys servers by serverId: nodes on one host need their own, as instrument()
     * makes hostname#pid in cluster workers */
    if (!a->cfg.server_id)
        snprintf(a->server_id, sizeof a->server_id, "%.200s#%d", a->hostname, (int)getpid());
}

void adminui_free(adminui *a)
{
    if (!a)
        return;
    for (struct gather *g = a->gathers; g; g = g->next)
        g->a = NULL; /* cluster_free ends their fetches */
    if (loop_timer_armed(&a->stats_timer))
        loop_timer_stop(a->l, &a->stats_timer);
    if (loop_timer_armed(&a->sample_timer))
        loop_timer_stop(a->l, &a->sample_timer);
    adminui_login_free(a->logins);
    free(a);
}
