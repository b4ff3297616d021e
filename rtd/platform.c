/* platform.c: the platform's events on "/" (see platform.h and README.md).
 *
 * Every event is validated before anything else happens; invalid input is answered with
 * {ok:false, error} in the ack, or an "error" event {code, message} when the client asked
 * for no ack, and nothing is stored or broadcast. A message is broadcast and acknowledged
 * only from the store's completion, i.e. after its transaction committed: receive-message
 * carries the row's id, and an ack is a promise that the row is on disk.
 *
 * Work waiting for the store (a message, a history page) is tracked per socket, so a client
 * that disconnects meanwhile is simply not answered; a stored message is still delivered to
 * everyone else. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/auth.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/platform.h"
#include "rtd/recovery.h"
#include "rtd/validate.h"

#define MAX_PLATFORMS 64
#define MAX_PLATFORM_BYTES VALIDATE_MAX_PLATFORM_BYTES

typedef struct client client;

enum pending_kind { PENDING_MESSAGE, PENDING_QUERY };

/* Work waiting for the store. Strings live in the same allocation, after the struct. */
struct pending {
    struct pending *prev, *next; /* in the client's list while the client exists */
    enum pending_kind kind;
    platform *p;
    client *c;                   /* NULL once the client is gone */
    int64_t ack_id;
    int64_t at_ms;
    char socket_id[UTIL_ID_LEN + 1];
    const char *sender;
    const char *text;
    size_t text_len;
    const char *platform;
    const char *room;            /* NULL: everyone */
};

struct client {
    platform *p;
    sio_socket *s;
    char socket_id[UTIL_ID_LEN + 1];
    char platform[MAX_PLATFORM_BYTES + 1];
    int platform_slot;
    char *user_id;
    int64_t connected_ms;
    double tokens;
    uint64_t refill_ms;
    unsigned violations;
    struct pending *pending;
};

struct platform_count {
    char name[MAX_PLATFORM_BYTES + 1];
    unsigned n;
};

struct platform {
    sio_server *srv;
    sio_namespace *root;
    store *st;
    loop *l;
    struct platform_config cfg;
    struct platform_stats stats;
    struct platform_count counts[MAX_PLATFORMS];
    int ncounts;
    /* Store completions still to come. They outlive the platform's owner: platform_free
     * with some outstanding only marks it dead, and the last completion frees it. */
    unsigned outstanding;
    bool quiesced; /* shutting down: new writes and reads are refused */
    platform_count_fn *count;
    void *count_ud;
    bool dead;
    recovery *rec; /* --recovery-window, or NULL */
};

/* ---- small helpers ---- */

static void pending_link(client *c, struct pending *pd)
{
    pd->c = c;
    pd->prev = NULL;
    pd->next = c->pending;
    if (c->pending)
        c->pending->prev = pd;
    c->pending = pd;
}

static void pending_unlink(struct pending *pd)
{
    client *c = pd->c;
    if (!c)
        return;
    if (pd->prev)
        pd->prev->next = pd->next;
    else
        c->pending = pd->next;
    if (pd->next)
        pd->next->prev = pd->prev;
    pd->c = NULL;
}

/* Ends a store completion: true when the platform is gone (the completion only frees pd). */
static bool pending_finish(struct pending *pd)
{
    platform *p = pd->p;
    pending_unlink(pd);
    p->outstanding--;
    if (!p->dead)
        return false;
    free(pd);
    if (p->outstanding == 0)
        free(p);
    return true;
}

/* Connected sockets by platform name, for /metrics. The platforms of the guide keep their
 * slots; any other name (clients choose them) holds one only while a socket uses it, so names
 * that come and go cannot fill the table for good. When every slot is in use, the last one,
 * "other", counts the rest. */
static const char *const reserved_platforms[] = {"unknown", "web", "flutter", "laravel"};
#define NRESERVED (int)(sizeof reserved_platforms / sizeof reserved_platforms[0])

static int count_slot(platform *p, const char *name)
{
    int free_slot = -1;
    for (int i = 0; i < p->ncounts; i++) {
        if (strcmp(p->counts[i].name, name) == 0)
            return i;
        if (free_slot < 0 && i >= NRESERVED && i < MAX_PLATFORMS - 1 && p->counts[i].n == 0)
            free_slot = i;
    }
    int i = free_slot;
    if (i < 0) {
        if (p->ncounts == MAX_PLATFORMS)
            return MAX_PLATFORMS - 1;
        i = p->ncounts++;
    }
    snprintf(p->counts[i].name, sizeof p->counts[i].name, "%s",
             i == MAX_PLATFORMS - 1 ? "other" : name);
    p->counts[i].n = 0;
    return i;
}

static void set_platform(client *c, const char *name)
{
    platform *p = c->p;
    if (c->platform_slot >= 0)
        p->counts[c->platform_slot].n--;
    snprintf(c->platform, sizeof c->platform, "%s", name);
    c->platform_slot = count_slot(p, name);
    p->counts[c->platform_slot].n++;
}

/* The socket's identity {socketId, userId, platform} into b (NUL-terminated), also kept as
 * the socket's data, which other nodes' fetchSockets() see. Returns 0, or -1 out of memory. */
static int identity_json(client *c, buf *b)
{
    buf_printf(b, "{\"socketId\":\"%s\",\"userId\":", c->socket_id);
    if (c->user_id) {
        buf_putc(b, '"');
        buf_json_escape(b, c->user_id, strlen(c->user_id));
        buf_putc(b, '"');
    } else {
        buf_puts(b, "null");
    }
    buf_printf(b, ",\"platform\":\"%s\"}", c->platform);
    if (buf_terminate(b) < 0)
        return -1;
    sio_socket_set_data_json(c->s, b->data);
    return 0;
}

/* Answers a refused event: in the ack when there is one, else with an "error" event. */
static void refuse(client *c, int64_t ack_id, const char *code, const char *message)
{
    buf b = BUF_INIT;
    c->p->stats.rejected++;
    if (ack_id >= 0) {
        buf_puts(&b, "{\"ok\":false,\"error\":\"");
        buf_json_escape(&b, message, strlen(message));
        buf_puts(&b, "\",\"code\":\"");
        buf_puts(&b, code);
        buf_puts(&b, "\"}");
        if (buf_terminate(&b) == 0)
            sio_ack(c->s, ack_id, b.data, NULL, 0);
    } else {
        buf_puts(&b, "{\"code\":\"");
        buf_puts(&b, code);
        buf_puts(&b, "\",\"message\":\"");
        buf_json_escape(&b, message, strlen(message));
        buf_puts(&b, "\"}");
        if (buf_terminate(&b) == 0)
            sio_emit(c->s, "error", b.data);
    }
    buf_free(&b);
}

static void ack_ok(client *c, int64_t ack_id)
{
    sio_ack(c->s, ack_id, "{\"ok\":true}", NULL, 0);
}

/* Token bucket per socket. Returns false (and answers the client) when over the rate; a
 * client that keeps going after a burst's worth of refusals is disconnected. */
static bool take_token(client *c, int64_t ack_id)
{
    platform *p = c->p;
    if (p->cfg.rate_limit <= 0)
        return true;
    uint64_t now = loop_now(p->l);
    c->tokens += (double)(now - c->refill_ms) * p->cfg.rate_limit / 1000.0;
    c->refill_ms = now;
    if (c->tokens > p->cfg.rate_burst)
        c->tokens = p->cfg.rate_burst;
    if (c->tokens >= 1) {
        c->tokens -= 1;
        c->violations = 0;
        return true;
    }
    p->stats.rate_limited++;
    if (++c->violations > p->cfg.rate_burst) {
        rlogf(RLOG_WARN, "Client disconnected for flooding", "{\"socketId\":\"%s\"}",
              c->socket_id);
        sio_disconnect(c->s, true);
        return false;
    }
    refuse(c, ack_id, "rate_limited", "too many events, slow down");
    return false;
}


/* Every event starts here: counted, then charged to the socket's rate limit. Returns the
 * client, or NULL when the event was refused (the client has been answered). */
static client *begin_event(platform *p, sio_socket *s, int64_t ack_id)
{
    client *c = sio_socket_user(s);
    p->stats.events_in++;
    return take_token(c, ack_id) ? c : NULL;
}

/* The events that reach the store are refused once shutdown began: the store finishes what
 * it has and the clients learn at once, to send again after they reconnect. */
static bool refuse_if_quiesced(client *c, int64_t ack_id)
{
    if (!c->p->quiesced)
        return false;
    refuse(c, ack_id, "shutting_down", "the server is shutting down, try again after reconnecting");
    return true;
}

/* ---- identify ---- */

static void on_identify(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id,
                        void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c)
        return;
    struct identify_input in;
    struct validate_error err;
    if (validate_identify(sio_arg(a, 0), &in, &err) < 0) {
        refuse(c, ack_id, err.code, err.message);
        return;
    }
    if (in.has_user) {
        char *copy = strndup(in.user, in.user_len);
        if (copy) {
            free(c->user_id);
            c->user_id = copy;
        }
    }
    if (in.has_platform)
        set_platform(c, in.platform);
    if (store_connection_identify(p->st, c->socket_id, in.has_user ? c->user_id : NULL,
                                  in.has_platform ? c->platform : NULL,
                                  in.has_version ? in.version : NULL) < 0)
        rlog(RLOG_WARN, "Store queue full: identify not recorded", NULL);
    buf b = BUF_INIT;
    if (identity_json(c, &b) == 0) {
        sio_emit(s, "identified", b.data);
        recovery_live(p->rec, s);
        if (ack_id >= 0)
            sio_ack(s, ack_id, b.data, NULL, 0);
    }
    buf_free(&b);
    rlogf(RLOG_INFO, "Client identified", "{\"socketId\":\"%s\",\"platform\":\"%s\"}",
          c->socket_id, c->platform);
}

/* ---- send-message ---- */

static void message_stored(void *ud, bool ok, int64_t id, const char *error)
{
    struct pending *pd = ud;
    platform *p = pd->p;
    client *c = pd->c;
    if (pending_finish(pd))
        return;
    if (!ok) {
        rlogf(RLOG_ERROR, "Message not stored", "{\"socketId\":\"%s\",\"error\":\"%s\"}",
              pd->socket_id, rlog_esc(error));
        if (c)
            refuse(c, pd->ack_id, "storage_failed", "the message could not be stored");
        free(pd);
        return;
    }
    p->stats.messages_in++;
    char iso[25];
    util_format_iso_time(pd->at_ms, iso);
    buf b = BUF_INIT;
    buf_printf(&b, "{\"id\":%lld,\"socketId\":\"%s\",\"sender\":\"", (long long)id, pd->socket_id);
    buf_json_escape(&b, pd->sender, strlen(pd->sender));
    buf_puts(&b, "\",\"text\":\"");
    buf_json_escape(&b, pd->text, pd->text_len);
    buf_printf(&b, "\",\"platform\":\"%s\",\"room\":", pd->platform);
    if (pd->room) {
        buf_putc(&b, '"');
        buf_json_escape(&b, pd->room, strlen(pd->room));
        buf_putc(&b, '"');
    } else {
        buf_puts(&b, "null");
    }
    buf_printf(&b, ",\"createdAt\":\"%s\"}", iso);
    /* Connection-state recovery: the offset (the row's id, a string as Node's are) is the
     * event's last argument, where socket.io-client looks for it. */
    if (p->cfg.recovery_window_ms)
        buf_printf(&b, ",\"%lld\"", (long long)id);
    sio_packet *pkt = b.data ? sio_event_packet(p->root, "receive-message", b.data, b.len, NULL, 0)
                             : NULL;
    if (pkt) {
        if (p->rec) {
            pkt->offset = id;
            recovery_note(p->rec, id);
        }
        p->stats.messages_out += sio_broadcast(p->root, pd->room, NULL, pkt);
        sio_packet_unref(pkt);
    }
    buf_free(&b);
    if (c && pd->ack_id >= 0) {
        char ack[96];
        snprintf(ack, sizeof ack, "{\"ok\":true,\"id\":%lld,\"createdAt\":\"%s\"}", (long long)id,
                 iso);
        sio_ack(c->s, pd->ack_id, ack, NULL, 0);
    }
    rlogf(RLOG_DEBUG, "Message sent", "{\"id\":%lld,\"socketId\":\"%s\"}", (long long)id,
          pd->socket_id);
    free(pd);
}

static void on_send_message(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id,
                            void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c || refuse_if_quiesced(c, ack_id))
        return;
    struct message_input in;
    struct validate_error err;
    if (validate_message(sio_arg(a, 0), p->cfg.max_message_bytes, &in, &err) < 0) {
        refuse(c, ack_id, err.code, err.message);
        return;
    }
    const char *platform_name = in.has_platform ? in.platform : c->platform;
    const char *sender = in.sender, *text = in.text, *room = in.room;
    size_t sender_len = in.sender_len, text_len = in.text_len, room_len = in.room_len;
    bool rr = room != NULL;
    size_t plat_n = strlen(platform_name);
    struct pending *pd =
        malloc(sizeof *pd + sender_len + 1 + text_len + 1 + plat_n + 1 + (rr ? room_len + 1 : 0));
    if (!pd) {
        refuse(c, ack_id, "server_busy", "out of memory");
        return;
    }
    char *w = (char *)(pd + 1);
    pd->kind = PENDING_MESSAGE;
    pd->p = p;
    pd->ack_id = ack_id;
    pd->at_ms = util_wall_ms();
    memcpy(pd->socket_id, c->socket_id, sizeof pd->socket_id);
    pd->sender = w;
    memcpy(w, sender, sender_len + 1);
    w += sender_len + 1;
    pd->text = w;
    pd->text_len = text_len;
    memcpy(w, text, text_len);
    w[text_len] = '\0';
    w += text_len + 1;
    pd->platform = w;
    memcpy(w, platform_name, plat_n + 1);
    w += plat_n + 1;
    pd->room = NULL;
    if (rr) {
        pd->room = w;
        memcpy(w, room, room_len + 1);
    }
    if (store_message(p->st, pd->socket_id, pd->sender, pd->text, pd->text_len, pd->platform,
                      pd->room, pd->at_ms, message_stored, pd) < 0) {
        free(pd);
        refuse(c, ack_id, "server_busy", "the server is busy, try again");
        return;
    }
    p->outstanding++;
    pending_link(c, pd);
}

/* ---- rooms ---- */

static void on_join(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id, void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c)
        return;
    size_t len;
    const char *room;
    struct validate_error err;
    /* {room}, or a bare string as many clients send */
    if (validate_room(sio_arg(a, 0), &room, &len, &err) < 0) {
        refuse(c, ack_id, err.code, "join expects {room} with a room of 1 to 128 bytes");
        return;
    }
    if (!sio_in_room(s, room) && sio_socket_room_count(s) >= p->cfg.max_rooms) {
        refuse(c, ack_id, "too_many_rooms", "this socket is in too many rooms");
        return;
    }
    if (sio_join(s, room) < 0) {
        refuse(c, ack_id, "server_busy", "out of memory");
        return;
    }
    recovery_live(p->rec, s);
    if (ack_id >= 0)
        ack_ok(c, ack_id);
}

static void on_leave(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id, void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c)
        return;
    size_t len;
    const char *room;
    struct validate_error err;
    if (validate_room(sio_arg(a, 0), &room, &len, &err) < 0) {
        refuse(c, ack_id, err.code, "leave expects {room} with a room of 1 to 128 bytes");
        return;
    }
    sio_leave(s, room);
    recovery_live(p->rec, s);
    if (ack_id >= 0)
        ack_ok(c, ack_id);
}

/* ---- history ---- */

static void history_done(void *ud, bool ok, const char *json, size_t len, const char *error)
{
    struct pending *pd = ud;
    client *c = pd->c;
    if (pending_finish(pd))
        return;
    if (c) {
        if (ok)
            sio_ack(c->s, pd->ack_id, json, NULL, 0);
        else
            refuse(c, pd->ack_id, "storage_failed", "history could not be read");
    }
    free(pd);
}

static void on_get_messages(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id,
                            void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c || refuse_if_quiesced(c, ack_id))
        return;
    if (ack_id < 0) {
        refuse(c, ack_id, "ack_required", "get-messages answers through its acknowledgement");
        return;
    }
    struct history_input in;
    struct validate_error err;
    if (validate_history(sio_arg(a, 0), &in, &err) < 0) {
        refuse(c, ack_id, err.code, err.message);
        return;
    }
    struct pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        refuse(c, ack_id, "server_busy", "out of memory");
        return;
    }
    pd->kind = PENDING_QUERY;
    pd->p = p;
    pd->ack_id = ack_id;
    if (store_query_messages(p->st, in.limit, in.before, in.room, history_done, pd) < 0) {
        free(pd);
        refuse(c, ack_id, "server_busy", "the server is busy, try again");
        return;
    }
    p->outstanding++;
    pending_link(c, pd);
}

static void on_unknown(sio_socket *s, const char *ev, const sio_args *a, int64_t ack_id, void *ud)
{
    platform *p = ud;
    client *c = begin_event(p, s, ack_id);
    if (!c)
        return;
    refuse(c, ack_id, "unknown_event", "unknown event");
}

/* ---- presence ---- */

static void presence_send(platform *p, const char *event, const char *socket_id,
                          const sio_socket *except, uint64_t total)
{
    char json[96];
    snprintf(json, sizeof json, "{\"socketId\":\"%s\",\"totalConnections\":%llu}", socket_id,
             (unsigned long long)total);
    sio_packet *pkt = sio_event_packet(p->root, event, json, strlen(json), NULL, 0);
    if (pkt) {
        sio_broadcast(p->root, NULL, except, pkt);
        sio_packet_unref(pkt);
    }
}

/* A presence event waiting for the cluster's count. */
struct presence_wait {
    platform *p;
    const char *event; /* static */
    char socket_id[UTIL_ID_LEN + 1];
};

static void presence_counted(uint64_t remote, bool ok, void *arg)
{
    struct presence_wait *w = arg;
    platform *p = w->p;
    if (ok && !p->dead) {
        /* the socket may have gone meanwhile: then nobody is to be skipped */
        sio_socket *except = sio_socket_find(p->root, w->socket_id);
        presence_send(p, w->event, w->socket_id, except, sio_namespace_size(p->root) + remote);
    }
    free(w);
}

static void presence(platform *p, const char *event, const char *socket_id, sio_socket *except)
{
    if (!p->cfg.presence)
        return;
    struct presence_wait *w = p->count && strlen(socket_id) <= UTIL_ID_LEN
                                  ? calloc(1, sizeof *w)
                                  : NULL;
    if (w) {
        w->p = p;
        w->event = event;
        memcpy(w->socket_id, socket_id, strlen(socket_id) + 1);
        if (p->count(p->count_ud, presence_counted, w) == 0)
            return;
        free(w);
    }
    presence_send(p, event, socket_id, except, sio_namespace_size(p->root));
}

void platform_set_recovery_kick(platform *p, platform_kick_fn *kick, void *ud)
{
    recovery_set_kick(p->rec, kick, ud);
}

void platform_set_counter(platform *p, platform_count_fn *count, void *ud)
{
    p->count = count;
    p->count_ud = ud;
}

/* --auth-secret: the handshake must carry auth.token, an HS256 JWT; its subject becomes the
 * connection's user_id. The subject rides on the socket's user pointer until
 * on_connection replaces it with the client state. */
static int authorize(sio_socket *s, struct json_object *auth, const char **error, void *ud)
{
    platform *p = ud;
    struct json_object *tok = NULL;
    const char *token = NULL;
    char *subject = NULL;
    const char *reason = "missing token";
    if (auth && json_object_is_type(auth, json_type_object) &&
        json_object_object_get_ex(auth, "token", &tok) && json_object_is_type(tok, json_type_string))
        token = json_object_get_string(tok);
    if (!token ||
        auth_verify(p->cfg.auth_secret, p->cfg.auth_secret_len, token, util_wall_ms() / 1000,
                    &subject, &reason) < 0) {
        rlogf(RLOG_WARN, "Connection refused", "{\"reason\":\"%s\",\"remoteAddr\":\"%s\"}",
              reason, eio_session_remote_addr(sio_socket_session(s)));
        *error = "unauthorized";
        return -1;
    }
    sio_socket_set_user(s, subject);
    return 0;
}

static const char *transport_name(sio_socket *s)
{
    return eio_session_transport(sio_socket_session(s)) == EIO_T_WEBSOCKET ? "websocket"
                                                                            : "polling";
}

static void on_connection(sio_socket *s, struct json_object *auth, void *ud)
{
    platform *p = ud;
    client *c = calloc(1, sizeof *c);
    if (!c) {
        sio_disconnect(s, true);
        return;
    }
    c->p = p;
    c->s = s;
    c->platform_slot = -1;
    memcpy(c->socket_id, sio_socket_id(s), sizeof c->socket_id);
    c->connected_ms = util_wall_ms();
    c->tokens = p->cfg.rate_burst;
    c->refill_ms = loop_now(p->l);
    /* A platform given at connect time (query ?platform=) counts until identify says more. */
    const char *qp = eio_session_query(sio_socket_session(s), "platform");
    set_platform(c, qp && validate_platform_token(qp) ? qp : "unknown");
    c->user_id = sio_socket_user(s); /* the token's subject, set by authorize() */
    sio_socket_set_user(s, c);
    eio_session *es = sio_socket_session(s);
    bool reopen = sio_socket_restoring(s); /* a recovered socket has its row already */
    if ((reopen ? store_connection_reopen(p->st, c->socket_id, transport_name(s),
                                          eio_session_remote_addr(es), eio_session_user_agent(es),
                                          c->connected_ms)
                : store_connection_open(p->st, c->socket_id, transport_name(s),
                                        eio_session_remote_addr(es), eio_session_user_agent(es),
                                        c->connected_ms)) < 0)
        rlog(RLOG_WARN, "Store queue full: connection not recorded", NULL);
    if (c->user_id || strcmp(c->platform, "unknown") != 0)
        store_connection_identify(p->st, c->socket_id, c->user_id,
                                  strcmp(c->platform, "unknown") ? c->platform : NULL, NULL);
    rlogf(RLOG_INFO, "Client connected", "{\"socketId\":\"%s\",\"connectedAt\":%lld}",
          c->socket_id, (long long)c->connected_ms);
    presence(p, "user-connected", c->socket_id, s);
    if (p->rec && sio_socket_restoring(s))
        recovery_begin(p->rec, s);
    else
        recovery_live(p->rec, s);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
    platform *p = ud;
    client *c = sio_socket_user(s);
    if (!c)
        return;
    int64_t now = util_wall_ms();
    store_connection_close(p->st, c->socket_id, now, now - c->connected_ms);
    while (c->pending)
        pending_unlink(c->pending);
    if (c->platform_slot >= 0)
        p->counts[c->platform_slot].n--;
    rlogf(RLOG_INFO, "Client disconnected", "{\"socketId\":\"%s\",\"reason\":\"%s\"}",
          c->socket_id, reason);
    sio_socket_set_user(s, NULL);
    char id[UTIL_ID_LEN + 1];
    memcpy(id, c->socket_id, sizeof id);
    free(c->user_id);
    free(c);
    presence(p, "user-disconnected", id, s);
}

static void on_upgrade(sio_socket *s, void *ud)
{
    platform *p = ud;
    client *c = sio_socket_user(s);
    if (c && sio_socket_namespace(s) == p->root)
        store_connection_transport(p->st, c->socket_id, transport_name(s));
}

/* ---- recovery's view of the identity ---- */

static void rec_who(sio_socket *s, const char **user_id, const char **platform_name, void *ud)
{
    (void)ud;
    client *c = sio_socket_user(s);
    if (c) {
        *user_id = c->user_id;
        *platform_name = c->platform;
    }
}

static void rec_restore(sio_socket *s, const char *user_id, const char *platform_name, void *ud)
{
    platform *p = ud;
    client *c = sio_socket_user(s);
    if (!c)
        return;
    if (user_id && !c->user_id)
        c->user_id = strdup(user_id);
    if (platform_name && validate_platform_token(platform_name))
        set_platform(c, platform_name);
    store_connection_identify(p->st, c->socket_id, c->user_id,
                              strcmp(c->platform, "unknown") ? c->platform : NULL, NULL);
    buf b = BUF_INIT;
    identity_json(c, &b);
    buf_free(&b);
}

/* ---- setup ---- */

platform *platform_new(loop *l, sio_server *srv, store *st, const struct platform_config *cfg)
{
    platform *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->srv = srv;
    p->st = st;
    p->cfg = *cfg;
    p->l = l;
    for (int i = 0; i < NRESERVED; i++)
        count_slot(p, reserved_platforms[i]);
    p->root = sio_namespace_add(srv, "/");
    if (!p->root) {
        free(p);
        return NULL;
    }
    if (cfg->auth_secret)
        sio_use(p->root, authorize, p);
    sio_on_connection(p->root, on_connection, p);
    sio_on_disconnect(p->root, on_disconnect, p);
    sio_on(p->root, "identify", on_identify, p);
    sio_on(p->root, "send-message", on_send_message, p);
    sio_on(p->root, "join", on_join, p);
    sio_on(p->root, "leave", on_leave, p);
    sio_on(p->root, "get-messages", on_get_messages, p);
    sio_on(p->root, "*", on_unknown, p);
    sio_on_upgrade(srv, on_upgrade, p);
    if (cfg->recovery_window_ms) {
        struct recovery_config rc = {.window_ms = cfg->recovery_window_ms,
                                     .max_events = cfg->recovery_max_events
                                                       ? cfg->recovery_max_events
                                                       : 1000};
        p->rec = recovery_new(srv, p->root, st, &rc, rec_who, rec_restore, p);
    }
    return p;
}

void platform_quiesce(platform *p)
{
    p->quiesced = true;
}

unsigned platform_outstanding(const platform *p)
{
    return p->outstanding;
}

void platform_free(platform *p)
{
    if (!p)
        return;
    recovery_free(p->rec);
    p->rec = NULL;
    if (p->outstanding > 0) {
        p->dead = true; /* the store's last completion for it frees it */
        return;
    }
    free(p);
}

void platform_get_stats(const platform *p, struct platform_stats *out)
{
    *out = p->stats;
    struct recovery_stats rs;
    recovery_get_stats(p->rec, &rs);
    out->recoveries_tried = rs.tried;
    out->recoveries_succeeded = rs.succeeded;
    out->recovery_replayed = rs.replayed;
    out->recovery_claimed = rs.claimed;
}

void platform_each_count(const platform *p, void (*fn)(const char *platform, unsigned n, void *ud),
                         void *ud)
{
    for (int i = 0; i < p->ncounts; i++)
        if (i < NRESERVED || p->counts[i].n > 0)
            fn(p->counts[i].name, p->counts[i].n, ud);
}

unsigned platform_connections(const platform *p)
{
    return (unsigned)sio_namespace_size(p->root);
}
