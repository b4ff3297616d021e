/* sio.c: the Socket.IO v5 server (see sio.h).
 *
 * One sio_client per Engine.IO session multiplexes that session's namespace sockets.
 * Incoming text packets are decoded (header by sio_parser.c, payload by json-c with a depth
 * limit and strict UTF-8), checked as the reference decoder checks them, and dispatched;
 * binary packets wait for their attachments first. Anything invalid closes the session,
 * as the reference does.
 *
 * Namespaces keep their sockets in a dense array, each socket remembering its index, so
 * connect and disconnect are O(1). Rooms and broadcasts are in sio_rooms.c; the structures
 * both files share, in sio_internal.h.
 *
 * Over 800 lines, and one file on purpose: decoding, dispatch, acks and the namespace and
 * socket life cycle all act on the same client state and call each other in both
 * directions; its sections are marked "---- ... ----". */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/lib/log.h"
#include "rtd/socketio/sio_internal.h"

static void socket_close(sio_socket *s, const char *reason);
static int send_simple(sio_socket *s, enum sio_type type, const char *json, int64_t id);
static void client_fail(sio_client *c, const char *reason);
static void attach(sio_client *c, sio_socket *s, struct json_object *auth);
static void authorized(sio_client *c, sio_socket *s, struct json_object *auth);
static void connect_error(sio_client *c, const char *nsp, size_t nsp_len, const char *message,
                          bool bare);
static void free_socket(sio_socket *s);

/* ---- packets ---- */

void sio_packet_unref(sio_packet *p)
{
    if (!p || --p->refs)
        return;
    for (uint32_t i = 0; i < p->n; i++)
        eio_packet_unref(p->parts[i]);
    free(p);
}

/* Builds a packet: header + "[" + prefix + args + "]" as the text part, attachments after. */
static sio_packet *build(enum sio_type type, const char *nsp, int64_t id, const char *prefix,
                         const char *args, size_t args_len, const sio_bin *bins, size_t nbins,
                         bool array)
{
    buf b = BUF_INIT;
    if (nbins && type == SIO_EVENT)
        type = SIO_BINARY_EVENT;
    if (nbins && type == SIO_ACK)
        type = SIO_BINARY_ACK;
    int r = sio_encode_header(&b, type, nbins, nsp, id);
    if (array) {
        r |= buf_putc(&b, '[');
        if (prefix)
            r |= buf_puts(&b, prefix);
        if (prefix && args_len)
            r |= buf_putc(&b, ',');
        r |= buf_append(&b, args, args_len);
        r |= buf_putc(&b, ']');
    } else if (args_len) {
        r |= buf_append(&b, args, args_len);
    }
    sio_packet *p = r ? NULL : malloc(sizeof *p + (nbins + 1) * sizeof(eio_packet *));
    if (!p) {
        buf_free(&b);
        return NULL;
    }
    p->refs = 1;
    p->n = 0;
    p->offset = 0;
    p->parts[p->n] = eio_packet_new(EIO_MESSAGE, false, b.data, b.len);
    buf_free(&b);
    if (!p->parts[p->n]) {
        free(p);
        return NULL;
    }
    p->n++;
    for (size_t i = 0; i < nbins; i++) {
        p->parts[p->n] = eio_packet_new(EIO_MESSAGE, true, bins[i].data, bins[i].len);
        if (!p->parts[p->n]) {
            sio_packet_unref(p);
            return NULL;
        }
        p->n++;
    }
    return p;
}

sio_packet *sio_event_packet(const sio_namespace *nsp, const char *event, const char *args_json,
                             size_t args_len, const sio_bin *bins, size_t nbins)
{
    buf name = BUF_INIT;
    if (buf_putc(&name, '"') < 0 || buf_json_escape(&name, event, strlen(event)) < 0 ||
        buf_putc(&name, '"') < 0 || buf_terminate(&name) < 0) {
        buf_free(&name);
        return NULL;
    }
    sio_packet *p = build(SIO_EVENT, nsp->name, -1, name.data, args_json ? args_json : "",
                          args_json ? args_len : 0, bins, nbins, true);
    buf_free(&name);
    return p;
}

int sio_send_connect(sio_socket *s)
{
    char data[96];
    snprintf(data, sizeof data, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
    return send_simple(s, SIO_CONNECT, data, -1);
}

static int send_simple(sio_socket *s, enum sio_type type, const char *json, int64_t id)
{
    sio_packet *p = build(type, s->nsp->name, id, NULL, json, json ? strlen(json) : 0, NULL, 0,
                          false);
    if (!p)
        return -1;
    int r = sio_send(s, p);
    sio_packet_unref(p);
    return r;
}

int sio_send(sio_socket *s, sio_packet *p)
{
    if (s->restoring)
        return sio_recovery_hold(s, p);
    eio_session *es = s->client->es;
    const sio_server *srv = s->client->srv;
    if (srv->obs && srv->obs->packet_out)
        srv->obs->packet_out(s, p, srv->obs_ud);
    for (uint32_t i = 0; i < p->n; i++)
        if (eio_send(es, p->parts[i]) < 0)
            return -1;
    return 0;
}

int sio_emit(sio_socket *s, const char *event, const char *args_json)
{
    sio_packet *p = sio_event_packet(s->nsp, event, args_json, args_json ? strlen(args_json) : 0,
                                     NULL, 0);
    if (!p)
        return -1;
    int r = sio_send(s, p);
    sio_packet_unref(p);
    return r;
}

int sio_ack(sio_socket *s, int64_t ack_id, const char *args_json, const sio_bin *bins,
            size_t nbins)
{
    if (ack_id < 0)
        return 0;
    sio_packet *p = build(SIO_ACK, s->nsp->name, ack_id, NULL, args_json ? args_json : "",
                          args_json ? strlen(args_json) : 0, bins, nbins, true);
    if (!p)
        return -1;
    int r = sio_send(s, p);
    sio_packet_unref(p);
    return r;
}

static void ack_timeout(loop *l, void *ud)
{
    struct pending_ack *a = ud;
    sio_socket *s = a->s;
    for (struct pending_ack **pp = &s->acks; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    a->fn(s, NULL, a->ud);
    free(a);
}

int sio_emit_with_ack(sio_socket *s, const char *event, const char *args_json,
                      const sio_bin *bins, size_t nbins, unsigned timeout_ms, sio_ack_fn *fn,
                      void *ud)
{
    struct pending_ack *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    a->s = s;
    a->id = s->next_ack++;
    a->fn = fn;
    a->ud = ud;
    buf name = BUF_INIT;
    buf_putc(&name, '"');
    buf_json_escape(&name, event, strlen(event));
    buf_putc(&name, '"');
    if (buf_terminate(&name) < 0) {
        free(a);
        buf_free(&name);
        return -1;
    }
    sio_packet *p = build(SIO_EVENT, s->nsp->name, a->id, name.data, args_json ? args_json : "",
                          args_json ? strlen(args_json) : 0, bins, nbins, true);
    buf_free(&name);
    if (!p || sio_send(s, p) < 0) {
        sio_packet_unref(p);
        free(a);
        return -1;
    }
    sio_packet_unref(p);
    a->next = s->acks;
    s->acks = a;
    if (timeout_ms)
        loop_timer_start(s->client->srv->l, &a->timer, timeout_ms, ack_timeout, a);
    return 0;
}

/* ---- args ---- */

size_t sio_argc(const sio_args *a)
{
    size_t n = a->array ? json_object_array_length(a->array) : 0;
    return n > a->first ? n - a->first : 0;
}

struct json_object *sio_arg(const sio_args *a, size_t i)
{
    if (i >= sio_argc(a))
        return NULL;
    return json_object_array_get_idx(a->array, a->first + i);
}

const sio_bin *sio_arg_bin(const sio_args *a, size_t i)
{
    struct json_object *v = sio_arg(a, i), *ph, *num;
    if (!v || !json_object_object_get_ex(v, "_placeholder", &ph) ||
        !json_object_get_boolean(ph) || !json_object_object_get_ex(v, "num", &num))
        return NULL;
    int64_t n = json_object_get_int64(num);
    return n >= 0 && (size_t)n < a->nbins ? &a->bins[n] : NULL;
}

int sio_args_json(const sio_args *a, buf *out)
{
    size_t n = sio_argc(a);
    for (size_t i = 0; i < n; i++) {
        if (i && buf_putc(out, ',') < 0)
            return -1;
        const char *j = json_object_to_json_string_ext(
            sio_arg(a, i), JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (buf_puts(out, j ? j : "null") < 0)
            return -1;
    }
    return 0;
}

/* ---- namespaces ---- */

sio_namespace *sio_namespace_add(sio_server *srv, const char *name)
{
    sio_namespace *nsp = map_get(&srv->nsps, name);
    if (nsp)
        return nsp;
    nsp = calloc(1, sizeof *nsp);
    if (!nsp)
        return NULL;
    nsp->srv = srv;
    nsp->name = strdup(name);
    if (!nsp->name || map_put(&srv->nsps, nsp->name, nsp) < 0) {
        free(nsp->name);
        free(nsp);
        return NULL;
    }
    return nsp;
}

sio_namespace *sio_namespace_find(sio_server *srv, const char *name)
{
    return map_get(&srv->nsps, name);
}

const char *sio_namespace_name(const sio_namespace *nsp)
{
    return nsp->name;
}

size_t sio_namespace_size(const sio_namespace *nsp)
{
    return nsp->nsockets;
}

void sio_use_cancel(sio_namespace *nsp, sio_authorize_cancel_fn *fn)
{
    nsp->authorize_cancel = fn;
}

/* Takes s off its client's waiting list; false if it is not on it. */
static bool unwait(sio_socket *s)
{
    sio_client *c = s->client;
    for (sio_socket **pp = &c->waiting; *pp; pp = &(*pp)->wait_next)
        if (*pp == s) {
            *pp = s->wait_next;
            s->wait_next = NULL;
            c->nwaiting--;
            return true;
        }
    return false;
}

void sio_authorize_done(sio_socket *s, const char *error)
{
    if (!unwait(s))
        return;
    sio_client *c = s->client;
    if (error) {
        const char *name = s->nsp->name;
        connect_error(c, name, strlen(name), error, eio_session_protocol(c->es) == 3);
        free_socket(s);
        return;
    }
    struct json_object *auth = s->wait_auth;
    s->wait_auth = NULL;
    authorized(c, s, auth);
    json_object_put(auth);
}

void sio_use(sio_namespace *nsp, sio_authorize_fn *fn, void *ud)
{
    nsp->authorize = fn;
    nsp->authorize_ud = ud;
}

void sio_on_connection(sio_namespace *nsp, sio_connection_fn *fn, void *ud)
{
    nsp->on_connection = fn;
    nsp->connection_ud = ud;
}

void sio_on_disconnect(sio_namespace *nsp, sio_disconnect_fn *fn, void *ud)
{
    nsp->on_disconnect = fn;
    nsp->disconnect_ud = ud;
}

sio_disconnect_fn *sio_disconnect_handler(const sio_namespace *nsp, void **ud)
{
    *ud = nsp->disconnect_ud;
    return nsp->on_disconnect;
}

int sio_on(sio_namespace *nsp, const char *event, sio_event_fn *fn, void *ud)
{
    struct handler *h = calloc(1, sizeof *h);
    if (!h || !(h->event = strdup(event))) {
        free(h);
        return -1;
    }
    h->fn = fn;
    h->ud = ud;
    if (strcmp(event, "*") == 0) {
        if (nsp->any) {
            free(nsp->any->event);
            free(nsp->any);
        }
        nsp->any = h;
        return 0;
    }
    struct handler *old = map_get(&nsp->handlers, event);
    if (map_put(&nsp->handlers, h->event, h) < 0) {
        free(h->event);
        free(h);
        return -1;
    }
    if (old) {
        free(old->event);
        free(old);
    }
    return 0;
}

/* ---- sockets ---- */

const char *sio_socket_id(const sio_socket *s)
{
    return s->id;
}

const char *sio_socket_pid(const sio_socket *s)
{
    return s->pid;
}

sio_namespace *sio_socket_namespace(const sio_socket *s)
{
    return s->nsp;
}

eio_session *sio_socket_session(const sio_socket *s)
{
    return s->client->es;
}

sio_socket *sio_socket_find(sio_namespace *nsp, const char *id)
{
    return map_get(&nsp->by_id, id);
}

void sio_socket_set_user(sio_socket *s, void *user)
{
    s->user = user;
}

void *sio_socket_user(const sio_socket *s)
{
    return s->user;
}

size_t sio_server_socket_count(const sio_server *srv)
{
    return srv->nsockets;
}

static sio_socket *client_socket(sio_client *c, const char *nsp, size_t len)
{
    for (uint32_t i = 0; i < c->n; i++) {
        const char *name = c->sockets[i]->nsp->name;
        if (strlen(name) == len && memcmp(name, nsp, len) == 0)
            return c->sockets[i];
    }
    return NULL;
}

static sio_socket *client_waiting(sio_client *c, const char *nsp, size_t len)
{
    for (sio_socket *s = c->waiting; s; s = s->wait_next) {
        const char *name = s->nsp->name;
        if (strlen(name) == len && memcmp(name, nsp, len) == 0)
            return s;
    }
    return NULL;
}

/* True if a CONNECT to this namespace waits for the restore hook. */
static bool client_restoring(const sio_client *c, const char *nsp, size_t len)
{
    return c->prestore && strlen(c->prestore->name) == len && memcmp(c->prestore->name, nsp, len) == 0;
}

static void free_socket(sio_socket *s)
{
    json_object_put(s->wait_auth);
    sio_recovery_free(s);
    free(s->auth_json);
    free(s->data_json);
    if (s->id != s->idbuf)
        free(s->id);
    free(s);
}

static void socket_close(sio_socket *s, const char *reason)
{
    sio_namespace *nsp = s->nsp;
    sio_client *c = s->client;
    if (c->srv->close_hook)
        c->srv->close_hook(s, reason, c->srv->recovery_ud);
    sio_rooms_leave_all(s);
    /* out of the namespace */
    sio_socket *last = nsp->sockets[--nsp->nsockets];
    if (s->idx != nsp->nsockets) {
        nsp->sockets[s->idx] = last;
        last->idx = s->idx;
    }
    map_del(&nsp->by_id, s->id);
    for (uint32_t i = 0; i < c->n; i++)
        if (c->sockets[i] == s) {
            c->sockets[i] = c->sockets[--c->n];
            break;
        }
    c->srv->nsockets--;
    /* pending acks learn the socket is gone */
    while (s->acks) {
        struct pending_ack *a = s->acks;
        s->acks = a->next;
        loop_timer_stop(c->srv->l, &a->timer);
        a->fn(NULL, NULL, a->ud);
        free(a);
    }
    if (c->srv->obs && c->srv->obs->disconnected)
        c->srv->obs->disconnected(s, reason, c->srv->obs_ud);
    if (nsp->on_disconnect)
        nsp->on_disconnect(s, reason, nsp->disconnect_ud);
    free_socket(s);
}

void sio_disconnect(sio_socket *s, bool close_session)
{
    sio_client *c = s->client;
    send_simple(s, SIO_DISCONNECT, NULL, -1);
    socket_close(s, "server namespace disconnect");
    if (close_session)
        eio_close(c->es, "forced server close");
}

/* ---- decoding and dispatch ---- */

static struct json_object *parse_json(sio_server *srv, const char *data, size_t len)
{
    if (len == 0)
        return NULL;
    json_tokener_reset(srv->tok);
    struct json_object *v = json_tokener_parse_ex(srv->tok, data, (int)len);
    if (!v || json_tokener_get_error(srv->tok) != json_tokener_success ||
        json_tokener_get_parse_end(srv->tok) != len) {
        json_object_put(v);
        return (struct json_object *)-1;
    }
    return v;
}

static void dispatch_event(sio_socket *s, struct json_object *payload, const sio_bin *bins,
                           size_t nbins, int64_t id)
{
    sio_namespace *nsp = s->nsp;
    if (nsp->srv->obs && nsp->srv->obs->event_in)
        nsp->srv->obs->event_in(s, payload, nsp->srv->obs_ud);
    struct json_object *name = json_object_array_get_idx(payload, 0);
    const char *ev = json_object_get_string(name);
    /* names can hold NUL bytes: look up by length, so "foo\0bar" is not "foo" */
    struct handler *h = map_getn(&nsp->handlers, ev, (size_t)json_object_get_string_len(name));
    if (!h)
        h = nsp->any;
    if (!h)
        return;
    sio_args a = {payload, 1, bins, nbins};
    h->fn(s, ev, &a, id, h->ud);
}

static void dispatch_ack(sio_socket *s, struct json_object *payload, const sio_bin *bins,
                         size_t nbins, int64_t id)
{
    for (struct pending_ack **pp = &s->acks; *pp; pp = &(*pp)->next) {
        struct pending_ack *a = *pp;
        if (a->id != id)
            continue;
        *pp = a->next;
        loop_timer_stop(s->client->srv->l, &a->timer);
        sio_args args = {payload, 0, bins, nbins};
        a->fn(s, &args, a->ud);
        free(a);
        return;
    }
    /* an ack nobody waits for (late, or never asked): ignored, as the reference does */
}

static void connect_error(sio_client *c, const char *nsp, size_t nsp_len, const char *message,
                          bool bare)
{
    buf b = BUF_INIT;
    buf_putc(&b, '4');
    if (!(nsp_len == 1 && nsp[0] == '/')) {
        buf_append(&b, nsp, nsp_len);
        buf_putc(&b, ',');
    }
    buf_puts(&b, bare ? "\"" : "{\"message\":\"");
    buf_json_escape(&b, message, strlen(message));
    buf_puts(&b, bare ? "\"" : "\"}");
    if (b.data)
        eio_send_text(c->es, b.data, b.len);
    buf_free(&b);
}

/* Socket.IO v4 (Engine.IO v3 sessions) names sockets after the Engine.IO session, as the
 * 2.x clients expect: the sid on "/", "<nsp>#<sid>" elsewhere. v5 uses fresh ids. */
static int socket_id(sio_socket *s, sio_client *c, const char *nsp)
{
    s->id = s->idbuf;
    if (eio_session_protocol(c->es) != 3)
        return util_random_id(s->idbuf);
    const char *sid = eio_session_id(c->es);
    if (strcmp(nsp, "/") == 0) {
        memcpy(s->idbuf, sid, sizeof s->idbuf);
        return 0;
    }
    size_t n = strlen(nsp) + 1 + strlen(sid) + 1;
    if (!(s->id = malloc(n)))
        return -1;
    snprintf(s->id, n, "%s#%s", nsp, sid);
    return 0;
}

static void handle_connect(sio_client *c, const sio_header *h, struct json_object *auth)
{
    sio_server *srv = c->srv;
    bool v3 = eio_session_protocol(c->es) == 3;
    if (client_waiting(c, h->nsp, h->nsp_len) || client_restoring(c, h->nsp, h->nsp_len))
        return; /* a client's connect() called twice: the pending one answers both */
    if (client_socket(c, h->nsp, h->nsp_len)) {
        client_fail(c, "duplicate connect"); /* the reference closes too */
        return;
    }
    char name[256];
    if (h->nsp_len >= sizeof name) {
        connect_error(c, h->nsp, h->nsp_len, "Invalid namespace", false);
        return;
    }
    memcpy(name, h->nsp, h->nsp_len);
    name[h->nsp_len] = '\0';
    sio_namespace *nsp = map_get(&srv->nsps, name);
    if (!nsp) {
        connect_error(c, h->nsp, h->nsp_len, "Invalid namespace", false);
        return;
    }
    if (c->n + c->nwaiting + (c->prestore ? 1 : 0) >= srv->cfg.max_namespaces) {
        connect_error(c, h->nsp, h->nsp_len, "Too many namespaces", false);
        return;
    }
    sio_socket *s = calloc(1, sizeof *s);
    if (!s) {
        connect_error(c, h->nsp, h->nsp_len, "Server error", false);
        return;
    }
    s->id = s->idbuf; /* "" until it is known: authorization comes first */
    s->client = c;
    s->nsp = nsp;
    s->connected_ms = util_wall_ms();
    if (auth && json_object_is_type(auth, json_type_object)) {
        const char *j = json_object_to_json_string_ext(auth, JSON_C_TO_STRING_PLAIN);
        s->auth_json = j ? strdup(j) : NULL;
    }
    /* Authorization comes first, recovered or not (README: a token that is no longer valid
     * never gets back in through a pid), and a refused CONNECT leaves the session unused. */
    if (nsp->authorize) {
        const char *err = "Not authorized";
        int r = nsp->authorize(s, auth, &err, nsp->authorize_ud);
        if (r == SIO_AUTH_PENDING) {
            s->wait_auth = auth ? json_object_get(auth) : NULL;
            s->wait_next = c->waiting;
            c->waiting = s;
            c->nwaiting++;
            return;
        }
        if (r != 0) {
            /* v3 clients get the bare message, as the reference sends them */
            connect_error(c, h->nsp, h->nsp_len, err ? err : "Not authorized", v3);
            free_socket(s);
            return;
        }
    }
    authorized(c, s, auth);
}

/* An authorized socket: a recovery is looked at first (the restore hook may answer later,
 * through sio_restore_answer), then it joins its namespace. */
static void authorized(sio_client *c, sio_socket *s, struct json_object *auth)
{
    sio_server *srv = c->srv;
    sio_namespace *nsp = s->nsp;
    bool v3 = eio_session_protocol(c->es) == 3;
    if (!c->prestore && !v3 && srv->cfg.recovery && srv->restore && auth &&
        json_object_is_type(auth, json_type_object)) {
        struct json_object *jp = NULL, *jo = NULL;
        char sid[UTIL_ID_LEN + 1];
        /* an offset that is there but not a string fails closed, as Node.js's does */
        bool has_off = json_object_object_get_ex(auth, "offset", &jo);
        if (json_object_object_get_ex(auth, "pid", &jp) && json_object_is_type(jp, json_type_string) &&
            json_object_get_string_len(jp) <= UTIL_ID_LEN &&
            (!has_off || json_object_is_type(jo, json_type_string))) {
            const char *off = has_off ? json_object_get_string(jo) : NULL;
            struct sio_pending_restore *pr = calloc(1, sizeof *pr);
            if (pr) {
                pr->c = c;
                pr->s = s;
                pr->refs = 2; /* the client's and the hook's */
                snprintf(pr->name, sizeof pr->name, "%s", nsp->name);
                memcpy(s->pid, json_object_get_string(jp), json_object_get_string_len(jp) + 1);
                c->prestore = pr;
                int rc = srv->restore(nsp, s->pid, off, sid, pr, srv->recovery_ud);
                if (rc == 1)
                    return; /* the hook answers through sio_restore_answer */
                c->prestore = NULL;
                free(pr);
                if (rc == 0 && !map_get(&nsp->by_id, sid)) {
                    memcpy(s->idbuf, sid, sizeof s->idbuf);
                    s->restoring = true;
                } else {
                    s->pid[0] = '\0';
                }
            }
        }
    }
    attach(c, s, auth);
}

void sio_restore_answer(sio_pending_restore *pr, bool ok, const char *sid)
{
    sio_client *c = pr->c;
    if (c) {
        sio_socket *s = pr->s;
        c->prestore = NULL;
        pr->refs--; /* the client's */
        if (ok && sid && strlen(sid) <= UTIL_ID_LEN && !map_get(&s->nsp->by_id, sid)) {
            memcpy(s->idbuf, sid, strlen(sid) + 1);
            s->restoring = true;
        } else {
            s->pid[0] = '\0';
        }
        struct json_object *auth = s->auth_json ? json_tokener_parse(s->auth_json) : NULL;
        attach(c, s, auth);
        json_object_put(auth);
    }
    if (--pr->refs == 0)
        free(pr);
}

/* An authorized socket joins its namespace and gets the CONNECT answer (or, restoring,
 * waits for its replay). */
static void attach(sio_client *c, sio_socket *s, struct json_object *auth)
{
    sio_server *srv = c->srv;
    sio_namespace *nsp = s->nsp;
    bool v3 = eio_session_protocol(c->es) == 3;
    if (!s->restoring && socket_id(s, c, nsp->name) < 0) {
        const char *name = nsp->name;
        free_socket(s);
        connect_error(c, name, strlen(name), "Server error", false);
        return;
    }
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 2;
        sio_socket **arr = realloc(c->sockets, cap * sizeof *arr);
        if (!arr) {
            free_socket(s);
            return;
        }
        c->sockets = arr;
        c->cap = cap;
    }
    if (nsp->nsockets == nsp->capsockets) {
        size_t cap = nsp->capsockets ? nsp->capsockets * 2 : 64;
        sio_socket **arr = realloc(nsp->sockets, cap * sizeof *arr);
        if (!arr) {
            free_socket(s);
            return;
        }
        nsp->sockets = arr;
        nsp->capsockets = cap;
    }
    if (map_put(&nsp->by_id, s->id, s) < 0) {
        free_socket(s);
        return;
    }
    c->sockets[c->n++] = s;
    s->idx = nsp->nsockets;
    nsp->sockets[nsp->nsockets++] = s;
    srv->nsockets++;
    loop_timer_stop(srv->l, &c->connect_timer);
    if (s->restoring) {
        /* the CONNECT answer waits for the replay (sio_recovery_done) */
    } else if (v3) {
        send_simple(s, SIO_CONNECT, NULL, -1);
    } else {
        char data[96];
        if (srv->cfg.recovery && util_random_id(s->pid) == 0)
            snprintf(data, sizeof data, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
        else
            snprintf(data, sizeof data, "{\"sid\":\"%s\"}", s->id);
        send_simple(s, SIO_CONNECT, data, -1);
    }
    if (nsp->on_connection)
        nsp->on_connection(s, auth, nsp->connection_ud);
    if (srv->obs && srv->obs->connected)
        srv->obs->connected(s, srv->obs_ud);
}

/* A URL query ("a=1&b=x%20y") as a JSON object of strings. */
static struct json_object *query_json(const char *q, size_t len)
{
    struct json_object *o = json_object_new_object();
    buf k = BUF_INIT, v = BUF_INIT;
    size_t i = 0;
    while (o && i < len) {
        buf_reset(&k);
        buf_reset(&v);
        buf *cur = &k;
        for (; i < len && q[i] != '&'; i++) {
            char ch = q[i];
            if (ch == '=' && cur == &k) {
                cur = &v;
                continue;
            }
            if (ch == '+')
                ch = ' ';
            else if (ch == '%' && i + 2 < len && isxdigit((unsigned char)q[i + 1]) &&
                     isxdigit((unsigned char)q[i + 2])) {
                char hex[3] = {q[i + 1], q[i + 2], 0};
                ch = (char)strtol(hex, NULL, 16);
                i += 2;
            }
            buf_putc(cur, ch);
        }
        i++;
        if (k.len && buf_terminate(&k) == 0 && buf_terminate(&v) == 0)
            json_object_object_add(o, k.data,
                                   json_object_new_string_len(v.data ? v.data : "", (int)v.len));
    }
    buf_free(&k);
    buf_free(&v);
    return o;
}

/* The handshake query of a session as a JSON object (the v4 protocol's auth for "/"). */
static struct json_object *handshake_query_json(eio_session *es)
{
    struct json_object *o = json_object_new_object();
    for (const char *p = eio_session_query_all(es); o && p && *p;) {
        const char *val = p + strlen(p) + 1;
        json_object_object_add(o, p, json_object_new_string(val));
        p = val + strlen(val) + 1;
    }
    return o;
}

static void free_reassembly(struct reassembly *r)
{
    if (!r)
        return;
    json_object_put(r->payload);
    for (size_t i = 0; i < r->got; i++)
        free(r->copies[i]);
    free(r->copies);
    free(r->bins);
    free(r->nsp);
    free(r);
}

/* Runs a complete packet. payload may be NULL (no JSON). */
static void run_packet(sio_client *c, const sio_header *h, struct json_object *payload,
                       const sio_bin *bins, size_t nbins)
{
    if (h->type == SIO_CONNECT) {
        if (eio_session_protocol(c->es) == 3) {
            /* v4 protocol: "/nsp?query" — the query is the auth payload */
            const char *q = memchr(h->nsp, '?', h->nsp_len);
            if (q) {
                sio_header h2 = *h;
                h2.nsp_len = (size_t)(q - h->nsp);
                struct json_object *auth = query_json(q + 1, h->nsp_len - h2.nsp_len - 1);
                handle_connect(c, &h2, auth);
                json_object_put(auth);
                return;
            }
        }
        handle_connect(c, h, payload);
        return;
    }
    sio_socket *s = client_socket(c, h->nsp, h->nsp_len);
    if (!s) {
        /* a packet for a namespace the client is not in: the reference closes */
        client_fail(c, "invalid namespace state");
        return;
    }
    switch (h->type) {
    case SIO_DISCONNECT:
        socket_close(s, "client namespace disconnect");
        break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        dispatch_event(s, payload, bins, nbins, h->id);
        break;
    case SIO_ACK:
    case SIO_BINARY_ACK:
        if (h->id < 0) {
            client_fail(c, "ack without id");
            return;
        }
        dispatch_ack(s, payload, bins, nbins, h->id);
        break;
    default:
        client_fail(c, "unexpected packet");
    }
}

static void on_text(sio_client *c, const char *data, size_t len)
{
    sio_server *srv = c->srv;
    if (c->pending) {
        client_fail(c, "text while waiting for attachments");
        return;
    }
    sio_header h;
    if (sio_parse_header(data, len, srv->cfg.max_attachments, &h) < 0 ||
        h.type == SIO_CONNECT_ERROR) {
        client_fail(c, "invalid packet");
        return;
    }
    struct json_object *payload = parse_json(srv, h.data, h.data_len);
    if (!payload && (h.type == SIO_EVENT || h.type == SIO_BINARY_EVENT) &&
        client_socket(c, h.nsp, h.nsp_len))
        return; /* an event with no payload at all: the reference ignores it */
    if (payload == (struct json_object *)-1 || !sio_payload_valid(h.type, payload)) {
        if (payload != (struct json_object *)-1)
            json_object_put(payload);
        client_fail(c, "invalid payload");
        return;
    }
    bool binary = h.type == SIO_BINARY_EVENT || h.type == SIO_BINARY_ACK;
    if (binary && !sio_placeholders_valid(payload, h.attachments)) {
        json_object_put(payload);
        client_fail(c, "invalid attachments");
        return;
    }
    if (binary && h.attachments > 0) {
        struct reassembly *r = calloc(1, sizeof *r);
        if (!r || !(r->nsp = malloc(h.nsp_len + 1)) ||
            !(r->bins = calloc(h.attachments, sizeof *r->bins)) ||
            !(r->copies = calloc(h.attachments, sizeof *r->copies))) {
            if (r) {
                free(r->nsp);
                free(r->bins);
                free(r);
            }
            json_object_put(payload);
            client_fail(c, "out of memory");
            return;
        }
        memcpy(r->nsp, h.nsp, h.nsp_len);
        r->nsp[h.nsp_len] = '\0';
        r->hdr = h;
        r->hdr.nsp = r->nsp;
        r->hdr.data = NULL;
        r->hdr.data_len = 0;
        r->payload = payload;
        c->pending = r;
        return;
    }
    run_packet(c, &h, payload, NULL, 0);
    json_object_put(payload);
}

static void on_binary(sio_client *c, const unsigned char *data, size_t len)
{
    struct reassembly *r = c->pending;
    if (!r) {
        client_fail(c, "unexpected binary");
        return;
    }
    r->bytes += len;
    if (r->bytes > c->srv->cfg.max_binary_bytes) {
        client_fail(c, "attachments too large");
        return;
    }
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) {
        client_fail(c, "out of memory");
        return;
    }
    memcpy(copy, data, len);
    r->copies[r->got] = copy;
    r->bins[r->got] = (sio_bin){copy, len};
    r->got++;
    if (r->got < r->hdr.attachments)
        return;
    c->pending = NULL;
    run_packet(c, &r->hdr, r->payload, r->bins, r->got);
    free_reassembly(r);
}

/* ---- Engine.IO glue ---- */

static void connect_timeout(loop *l, void *ud)
{
    sio_client *c = ud;
    if (c->n == 0)
        eio_close(c->es, "connect timeout");
}

static int on_open(eio_session *es, void *ud)
{
    sio_server *srv = ud;
    sio_client *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->srv = srv;
    c->es = es;
    eio_session_set_user(es, c);
    /* Armed for every protocol: a v3 client whose implicit CONNECT is refused (--auth-secret)
     * joins no namespace either, and must not keep its session by pinging. */
    if (srv->cfg.connect_timeout_ms)
        loop_timer_start(srv->l, &c->connect_timer, srv->cfg.connect_timeout_ms,
                         connect_timeout, c);
    if (eio_session_protocol(es) == 3) {
        /* The v4 protocol connects every client to "/" at once, its query as the auth. */
        sio_header h = {.type = SIO_CONNECT, .nsp = "/", .nsp_len = 1, .id = -1};
        struct json_object *auth = handshake_query_json(es);
        handle_connect(c, &h, auth);
        json_object_put(auth);
    }
    return 0;
}

static void on_message(eio_session *es, const unsigned char *data, size_t len, bool binary,
                       void *ud)
{
    sio_client *c = eio_session_user(es);
    if (!c)
        return;
    if (binary)
        on_binary(c, data, len);
    else
        on_text(c, (const char *)data, len);
}

static void on_close(eio_session *es, const char *reason, void *ud)
{
    sio_client *c = eio_session_user(es);
    if (!c)
        return;
    eio_session_set_user(es, NULL);
    loop_timer_stop(c->srv->l, &c->connect_timer);
    while (c->waiting) {
        sio_socket *s = c->waiting;
        unwait(s);
        if (s->nsp->authorize_cancel)
            s->nsp->authorize_cancel(s, s->nsp->authorize_ud);
        free_socket(s);
    }
    if (c->prestore) { /* the hook's answer will find the client gone */
        free_socket(c->prestore->s);
        c->prestore->c = NULL;
        c->prestore->s = NULL;
        if (--c->prestore->refs == 0)
            free(c->prestore);
        c->prestore = NULL;
    }
    while (c->n)
        socket_close(c->sockets[c->n - 1], reason);
    free_reassembly(c->pending);
    free(c->sockets);
    free(c);
}

static void on_eio_upgrade(eio_session *es, void *ud)
{
    sio_server *srv = ud;
    sio_client *c = eio_session_user(es);
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n && srv->on_upgrade; i++)
        srv->on_upgrade(c->sockets[i], srv->upgrade_ud);
    for (uint32_t i = 0; i < c->n && srv->obs && srv->obs->upgraded; i++)
        srv->obs->upgraded(c->sockets[i], srv->obs_ud);
}

void sio_set_observer(sio_server *srv, const struct sio_observer *o, void *ud)
{
    srv->obs = o;
    srv->obs_ud = ud;
}

void sio_on_upgrade(sio_server *srv, sio_upgrade_fn *fn, void *ud)
{
    srv->on_upgrade = fn;
    srv->upgrade_ud = ud;
}

static void client_fail(sio_client *c, const char *reason)
{
    rlogf(RLOG_DEBUG, "Socket.IO protocol error", "{\"sid\":\"%s\",\"error\":\"%s\"}",
          eio_session_id(c->es), reason);
    eio_close(c->es, "parse error");
}

sio_server *sio_server_new(loop *l, const struct sio_config *cfg, const struct eio_config *ecfg)
{
    sio_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->l = l;
    srv->cfg = *cfg;
    if (!srv->cfg.max_attachments)
        srv->cfg.max_attachments = 10;
    if (!srv->cfg.max_namespaces)
        srv->cfg.max_namespaces = 32;
    if (!srv->cfg.max_json_depth)
        srv->cfg.max_json_depth = 32;
    if (!srv->cfg.max_binary_bytes)
        srv->cfg.max_binary_bytes = 4 * ecfg->max_payload;
    srv->tok = json_tokener_new_ex((int)srv->cfg.max_json_depth);
    if (!srv->tok) {
        free(srv);
        return NULL;
    }
    json_tokener_set_flags(srv->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct eio_callbacks cb = {
        .on_open = on_open,
        .on_message = on_message,
        .on_upgrade = on_eio_upgrade,
        .on_close = on_close,
    };
    srv->eio = eio_server_new(l, ecfg, &cb, srv);
    if (!srv->eio) {
        json_tokener_free(srv->tok);
        free(srv);
        return NULL;
    }
    return srv;
}

eio_server *sio_server_engine(sio_server *srv)
{
    return srv->eio;
}

void sio_server_free(sio_server *srv)
{
    if (!srv)
        return;
    if (srv->eio)
        eio_server_free(srv->eio);
    map_entry *e;
    for (size_t it = 0; map_next(&srv->nsps, &it, &e);) {
        sio_namespace *nsp = e->val;
        map_entry *he;
        for (size_t j = 0; map_next(&nsp->handlers, &j, &he);) {
            struct handler *h = he->val;
            free(h->event);
            free(h);
        }
        if (nsp->any) {
            free(nsp->any->event);
            free(nsp->any);
        }
        map_free(&nsp->handlers);
        map_free(&nsp->by_id);
        map_free(&nsp->rooms);
        free(nsp->sockets);
        free(nsp->name);
        free(nsp);
    }
    map_free(&srv->nsps);
    json_tokener_free(srv->tok);
    free(srv);
}
