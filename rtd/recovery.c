/* recovery.c: connection-state recovery for "/" (see recovery.h).
 *
 * The replay reads the store's history pages (newest first, max_events + 1 rows) of
 * everyone and of each saved room, keeps the rows after the offset and sends them oldest
 * first; a page full of rows after the offset means more than max_events were missed. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/map.h"
#include "rtd/lib/util.h"
#include "rtd/recovery.h"

struct session {
    char pid[UTIL_ID_LEN + 1]; /* the map's key */
    char sid[UTIL_ID_LEN + 1];
    char **rooms;
    size_t nrooms;
    char *user_id;
    char *platform;
    int64_t left_ms;
    int64_t since; /* the newest offset when it left: where an offset-less client resumes */
};

struct recovery {
    sio_server *srv;
    sio_namespace *root;
    store *st;
    struct recovery_config cfg;
    recovery_who_fn *who;
    recovery_restore_fn *restore;
    void *ud;
    recovery_kick_fn *kick;
    void *kick_ud;
    map sessions;  /* pid -> struct session */
    map claimed;   /* sid -> struct session, taken by a restoring socket */
    map live;      /* pid -> struct live_pid, of the connected sockets */
    int64_t newest;
    int64_t expired_ms; /* the last store_sessions_expire (shared store) */
    struct recovery_stats stats;
    unsigned outstanding;
    bool dead;
};

struct live_pid {
    char pid[UTIL_ID_LEN + 1]; /* the key */
    char sid[UTIL_ID_LEN + 1];
};

struct replay {
    recovery *r;
    char sid[UTIL_ID_LEN + 1];
    char pid[UTIL_ID_LEN + 1];
    int64_t offset;
    unsigned waiting;
    bool failed;
    struct json_object **rows;
    size_t n, cap;
};

static void session_free(struct session *ss)
{
    if (!ss)
        return;
    for (size_t i = 0; i < ss->nrooms; i++)
        free(ss->rooms[i]);
    free(ss->rooms);
    free(ss->user_id);
    free(ss->platform);
    free(ss);
}

static void purge(recovery *r, int64_t now)
{
    size_t it = 0;
    map_entry *e;
    while (map_next(&r->sessions, &it, &e)) {
        struct session *ss = e->val;
        if (ss->left_ms + r->cfg.window_ms < now) {
            map_del(&r->sessions, ss->pid);
            store_session_delete(r->st, ss->pid);
            session_free(ss);
            it = 0; /* deletion shifts entries: start over */
        }
    }
}

static void save_row(recovery *r, sio_socket *s, int64_t left_ms);
static void really_free(recovery *r);

/* A session made from a socket that leaves (or is taken over): its ids, rooms and
 * identity, left at left_ms, resuming after the newest offset. NULL out of memory. */
static struct session *session_of_socket(recovery *r, sio_socket *s, int64_t left_ms)
{
    struct session *ss = calloc(1, sizeof *ss);
    if (!ss)
        return NULL;
    memcpy(ss->pid, sio_socket_pid(s), sizeof ss->pid);
    memcpy(ss->sid, sio_socket_id(s), sizeof ss->sid);
    ss->left_ms = left_ms;
    ss->since = r->newest;
    const char *rooms[256];
    size_t n = sio_socket_rooms(s, rooms, 256);
    if (n > 256)
        n = 256;
    ss->rooms = n ? calloc(n, sizeof *ss->rooms) : NULL;
    for (size_t i = 0; ss->rooms && i < n; i++)
        if ((ss->rooms[ss->nrooms] = strdup(rooms[i])))
            ss->nrooms++;
    const char *user = NULL, *plat = NULL;
    if (r->who)
        r->who(s, &user, &plat, r->ud);
    ss->user_id = user ? strdup(user) : NULL;
    ss->platform = plat ? strdup(plat) : NULL;
    return ss;
}

/* The pid is still attached to a connected socket (its transport died unnoticed, or another
 * tab has the same pid): the newest connection takes the session, the old socket is closed
 * without being saved (Node.js's race, socketio/socket.io#4880). */
static struct session *take_live(recovery *r, const char *pid)
{
    struct live_pid *lp = map_get(&r->live, pid);
    sio_socket *old = lp ? sio_socket_find(r->root, lp->sid) : NULL;
    if (!old || sio_socket_restoring(old) || strcmp(sio_socket_pid(old), pid) != 0)
        return NULL;
    struct session *ss = session_of_socket(r, old, util_wall_ms());
    if (!ss)
        return NULL;
    sio_disconnect(old, true); /* not recoverable: on_close saves nothing */
    return ss;
}

/* The checks and the claim every restore ends with, ss in hand (taken from the sessions):
 * 0 and sid, or -1 (ss freed). */
static int accept_session(recovery *r, struct session *ss, const char *offset,
                          char sid[UTIL_ID_LEN + 1])
{
    int64_t off = ss->since;
    if (offset) {
        char *end;
        long long v = strtoll(offset, &end, 10);
        if (!*offset || *end || v < 0) {
            session_free(ss);
            return -1;
        }
        off = v;
    }
    if (ss->left_ms + r->cfg.window_ms < util_wall_ms()) {
        session_free(ss);
        return -1;
    }
    /* one live socket per pid: a socket still holding the id is closed first, unsaved */
    sio_socket *old = sio_socket_find(r->root, ss->sid);
    if (old)
        sio_disconnect(old, true);
    struct session *prev = map_get(&r->claimed, ss->sid);
    if (prev) {
        map_del(&r->claimed, prev->sid);
        session_free(prev);
    }
    ss->since = off;
    if (map_put(&r->claimed, ss->sid, ss) < 0) {
        session_free(ss);
        return -1;
    }
    memcpy(sid, ss->sid, UTIL_ID_LEN + 1);
    return 0;
}

static struct session *session_from_row(const char *pid, const char *sid, const char *rooms_json,
                                        const char *user_id, const char *platform,
                                        int64_t left_ms, int64_t since);

/* A pid this node does not know, asked of the shared store. */
struct claim {
    recovery *r;
    sio_pending_restore *pr;
    bool has_offset;
    char pid[UTIL_ID_LEN + 1];
    char offset[]; /* "" when has_offset is false */
};

static const char *str_field(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static void claim_done(void *ud, bool ok, const char *json, size_t len, const char *error)
{
    struct claim *cl = ud;
    recovery *r = cl->r;
    (void)len;
    r->outstanding--;
    char sid[UTIL_ID_LEN + 1];
    bool restored = false;
    struct json_object *o = ok && !r->dead ? json_tokener_parse(json) : NULL;
    if (!ok)
        rlogf(RLOG_WARN, "Recovery lookup failed", "{\"error\":\"%s\"}", error ? error : "");
    if (o && json_object_is_type(o, json_type_object)) {
        struct json_object *v;
        int64_t left = json_object_object_get_ex(o, "leftMs", &v) && v ? json_object_get_int64(v)
                                                                      : util_wall_ms();
        int64_t since = json_object_object_get_ex(o, "since", &v) ? json_object_get_int64(v) : 0;
        struct session *ss = session_from_row(cl->pid, str_field(o, "socketId"),
                                              str_field(o, "rooms"), str_field(o, "userId"),
                                              str_field(o, "platform"), left, since);
        if (ss && accept_session(r, ss, cl->has_offset ? cl->offset : NULL, sid) == 0) {
            restored = true;
            r->stats.claimed++;
            if (r->kick)
                r->kick(r->kick_ud, sid);
            rlogf(RLOG_INFO, "Recovery session claimed", "{\"socketId\":\"%s\",\"from\":\"%s\"}",
                  sid, str_field(o, "node") ? str_field(o, "node") : "");
        }
    }
    json_object_put(o);
    sio_restore_answer(cl->pr, restored, restored ? sid : NULL);
    free(cl);
    if (r->dead && r->outstanding == 0)
        really_free(r);
}

static int on_restore(sio_namespace *nsp, const char *pid, const char *offset,
                      char sid[UTIL_ID_LEN + 1], sio_pending_restore *pr, void *ud)
{
    recovery *r = ud;
    if (nsp != r->root)
        return -1;
    r->stats.tried++;
    struct session *ss = map_get(&r->sessions, pid);
    if (ss) {
        map_del(&r->sessions, pid); /* one use */
    } else if (!(ss = take_live(r, pid))) {
        if (!store_shared(r->st))
            return -1;
        /* Another node's session, or one this node left in the shared store: claimed there
         * (the store deletes it as it returns it), off the loop thread. */
        size_t olen = offset ? strlen(offset) : 0;
        if (olen > 64)
            return -1;
        struct claim *cl = calloc(1, sizeof *cl + olen + 1);
        if (!cl)
            return -1;
        cl->r = r;
        cl->pr = pr;
        cl->has_offset = offset != NULL;
        memcpy(cl->pid, pid, strlen(pid) + 1);
        if (offset)
            memcpy(cl->offset, offset, olen + 1);
        if (store_session_claim(r->st, pid, claim_done, cl) < 0) {
            free(cl);
            return -1;
        }
        r->outstanding++;
        return 1;
    }
    store_session_delete(r->st, pid);
    return accept_session(r, ss, offset, sid);
}

/* The row of s in the store: connected (left_ms < 0) or left. */
static void save_row(recovery *r, sio_socket *s, int64_t left_ms)
{
    const char *rooms[256];
    size_t n = sio_socket_rooms(s, rooms, 256);
    if (n > 256)
        n = 256;
    buf b = BUF_INIT;
    buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&b, ',');
        buf_putc(&b, '"');
        buf_json_escape(&b, rooms[i], strlen(rooms[i]));
        buf_putc(&b, '"');
    }
    buf_putc(&b, ']');
    const char *user = NULL, *plat = NULL;
    if (r->who)
        r->who(s, &user, &plat, r->ud);
    if (buf_terminate(&b) == 0 &&
        store_session_save(r->st, sio_socket_pid(s), sio_socket_id(s), b.data, user, plat, left_ms,
                           r->newest) < 0)
        rlog(RLOG_WARN, "Store queue full: recovery session not recorded", NULL);
    buf_free(&b);
}

void recovery_live(recovery *r, sio_socket *s)
{
    if (!r || sio_socket_namespace(s) != r->root || !sio_socket_pid(s)[0] ||
        sio_socket_restoring(s))
        return;
    struct live_pid *lp = map_get(&r->live, sio_socket_pid(s));
    if (!lp && (lp = calloc(1, sizeof *lp))) {
        memcpy(lp->pid, sio_socket_pid(s), sizeof lp->pid);
        if (map_put(&r->live, lp->pid, lp) < 0) {
            free(lp);
            lp = NULL;
        }
    }
    if (lp)
        memcpy(lp->sid, sio_socket_id(s), sizeof lp->sid);
    save_row(r, s, -1);
}

static void on_close(sio_socket *s, const char *reason, void *ud)
{
    recovery *r = ud;
    if (sio_socket_namespace(s) != r->root || !sio_socket_pid(s)[0])
        return;
    struct live_pid *lp = map_get(&r->live, sio_socket_pid(s));
    if (lp && strcmp(lp->sid, sio_socket_id(s)) == 0) {
        map_del(&r->live, lp->pid);
        free(lp);
    }
    struct session *cl = map_get(&r->claimed, sio_socket_id(s));
    if (cl) { /* closed while restoring */
        map_del(&r->claimed, cl->sid);
        session_free(cl);
    }
    if (sio_socket_restoring(s))
        return;
    if (!sio_reason_recoverable(reason)) {
        store_session_delete(r->st, sio_socket_pid(s));
        return;
    }
    int64_t now = util_wall_ms();
    save_row(r, s, now);
    purge(r, now);
    if (store_shared(r->st)) {
        /* the store's row is the session: any node claims it; the rows nobody came back
         * for go, at most once a window (or a minute) */
        int64_t every = r->cfg.window_ms < 60000 ? r->cfg.window_ms : 60000;
        if (now - r->expired_ms >= every) {
            r->expired_ms = now;
            store_sessions_expire(r->st, now - (int64_t)r->cfg.window_ms);
        }
        return;
    }
    struct session *ss = session_of_socket(r, s, now);
    if (!ss)
        return;
    struct session *prev = map_get(&r->sessions, ss->pid);
    if (prev) {
        map_del(&r->sessions, prev->pid);
        session_free(prev);
    }
    if (map_put(&r->sessions, ss->pid, ss) < 0)
        session_free(ss);
}

static struct session *session_from_row(const char *pid, const char *sid, const char *rooms_json,
                                        const char *user_id, const char *platform,
                                        int64_t left_ms, int64_t since)
{
    if (!pid || strlen(pid) > UTIL_ID_LEN || !sid || !*sid || strlen(sid) > UTIL_ID_LEN)
        return NULL;
    struct session *ss = calloc(1, sizeof *ss);
    if (!ss)
        return NULL;
    memcpy(ss->pid, pid, strlen(pid) + 1);
    memcpy(ss->sid, sid, strlen(sid) + 1);
    ss->left_ms = left_ms;
    ss->since = since;
    struct json_object *a = rooms_json ? json_tokener_parse(rooms_json) : NULL;
    size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
    if (n > 256)
        n = 256;
    ss->rooms = n ? calloc(n, sizeof *ss->rooms) : NULL;
    for (size_t i = 0; ss->rooms && i < n; i++) {
        struct json_object *e = json_object_array_get_idx(a, i);
        if (json_object_is_type(e, json_type_string) && json_object_get_string_len(e) <= 128 &&
            (ss->rooms[ss->nrooms] = strdup(json_object_get_string(e))))
            ss->nrooms++;
    }
    json_object_put(a);
    ss->user_id = user_id ? strndup(user_id, 128) : NULL;
    ss->platform = platform ? strndup(platform, 64) : NULL;
    return ss;
}

/* A session the store kept from before the start. With a shared store the rows stay there,
 * claimed when a client comes back (on_restore), so that every node sees the same ones. */
static void load_one(const char *pid, const char *sid, const char *rooms_json, const char *user_id,
                     const char *platform, int64_t left_ms, int64_t since, void *ud)
{
    recovery *r = ud;
    if (store_shared(r->st))
        return;
    struct session *ss = NULL;
    if (left_ms + r->cfg.window_ms < util_wall_ms() || map_get(&r->sessions, pid ? pid : "") ||
        !(ss = session_from_row(pid, sid, rooms_json, user_id, platform, left_ms, since))) {
        if (pid)
            store_session_delete(r->st, pid);
        return;
    }
    if (map_put(&r->sessions, ss->pid, ss) < 0)
        session_free(ss);
}

recovery *recovery_new(sio_server *srv, sio_namespace *root, store *st,
                       const struct recovery_config *cfg, recovery_who_fn *who,
                       recovery_restore_fn *restore, void *ud)
{
    recovery *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = srv;
    r->root = root;
    r->st = st;
    r->cfg = *cfg;
    r->who = who;
    r->restore = restore;
    r->ud = ud;
    r->sessions = (map)MAP_INIT;
    r->claimed = (map)MAP_INIT;
    r->live = (map)MAP_INIT;
    sio_set_recovery_hooks(srv, on_restore, on_close, r);
    store_sessions_loaded(st, load_one, r, &r->newest);
    return r;
}

static void drop_all(map *m)
{
    size_t it = 0;
    map_entry *e;
    while (map_next(m, &it, &e))
        session_free(e->val);
    map_free(m);
}

static void really_free(recovery *r)
{
    drop_all(&r->sessions);
    drop_all(&r->claimed);
    size_t it = 0;
    map_entry *e;
    while (map_next(&r->live, &it, &e))
        free(e->val);
    map_free(&r->live);
    free(r);
}

void recovery_free(recovery *r)
{
    if (!r)
        return;
    r->dead = true;
    if (r->outstanding == 0)
        really_free(r);
}

void recovery_set_kick(recovery *r, recovery_kick_fn *kick, void *ud)
{
    if (r) {
        r->kick = kick;
        r->kick_ud = ud;
    }
}

void recovery_note(recovery *r, int64_t id)
{
    if (r && id > r->newest)
        r->newest = id;
}

void recovery_get_stats(const recovery *r, struct recovery_stats *out)
{
    if (r)
        *out = r->stats;
    else
        memset(out, 0, sizeof *out);
}

static int64_t row_id(struct json_object *o)
{
    struct json_object *v;
    return json_object_object_get_ex(o, "id", &v) ? json_object_get_int64(v) : 0;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = row_id(*(struct json_object *const *)a), y = row_id(*(struct json_object *const *)b);
    return x < y ? -1 : x > y;
}

static void replay_free(struct replay *rp)
{
    for (size_t i = 0; i < rp->n; i++)
        json_object_put(rp->rows[i]);
    free(rp->rows);
    free(rp);
}

static void replay_finish(struct replay *rp)
{
    recovery *r = rp->r;
    sio_socket *s = sio_socket_find(r->root, rp->sid);
    if (!s || !sio_socket_restoring(s) || strcmp(sio_socket_pid(s), rp->pid) != 0)
        return;
    struct session *ss = map_get(&r->claimed, rp->sid);
    if (ss) {
        map_del(&r->claimed, rp->sid);
    }
    if (rp->failed || rp->n > r->cfg.max_events) {
        /* a fresh session: out of the rooms it had been given back */
        for (size_t i = 0; ss && i < ss->nrooms; i++)
            sio_leave(s, ss->rooms[i]);
        session_free(ss);
        sio_recovery_done(s, false, 0);
        recovery_live(r, s);
        return;
    }
    session_free(ss);
    if (rp->n > 1) /* rows is NULL when nothing was missed */
        qsort(rp->rows, rp->n, sizeof *rp->rows, by_id);
    int64_t last = rp->offset;
    for (size_t i = 0; i < rp->n; i++) {
        int64_t id = row_id(rp->rows[i]);
        buf b = BUF_INIT;
        const char *j = json_object_to_json_string_ext(rp->rows[i], JSON_C_TO_STRING_PLAIN);
        buf_puts(&b, j ? j : "null");
        buf_printf(&b, ",\"%lld\"", (long long)id);
        sio_packet *p = b.data ? sio_event_packet(r->root, "receive-message", b.data, b.len,
                                                  NULL, 0)
                               : NULL;
        buf_free(&b);
        if (p) {
            p->offset = id;
            sio_recovery_replay(s, p);
            sio_packet_unref(p);
            r->stats.replayed++;
        }
        last = id;
    }
    r->stats.succeeded++;
    sio_recovery_done(s, true, last);
    recovery_live(r, s);
    rlogf(RLOG_INFO, "Client recovered", "{\"socketId\":\"%s\",\"replayed\":%zu}", rp->sid, rp->n);
}

static void replay_release(struct replay *rp);

static void page_done(void *ud, bool ok, const char *json, size_t len, const char *error)
{
    struct replay *rp = ud;
    recovery *r = rp->r;
    r->outstanding--;
    (void)error;
    if (!r->dead && ok) {
        struct json_object *a = json_tokener_parse(json);
        size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
        if (!a)
            rp->failed = true;
        if (n > r->cfg.max_events)
            rp->failed = true; /* as many rows as asked for: more were missed */
        for (size_t i = 0; i < n && !rp->failed; i++) {
            struct json_object *o = json_object_array_get_idx(a, i);
            if (row_id(o) <= rp->offset)
                continue;
            if (rp->n == rp->cap) {
                size_t cap = rp->cap ? rp->cap * 2 : 16;
                struct json_object **nr = realloc(rp->rows, cap * sizeof *nr);
                if (!nr) {
                    rp->failed = true;
                    break;
                }
                rp->rows = nr;
                rp->cap = cap;
            }
            rp->rows[rp->n++] = json_object_get(o);
        }
        json_object_put(a);
    } else {
        rp->failed = true;
    }
    (void)len;
    replay_release(rp);
}

static void replay_release(struct replay *rp)
{
    recovery *r = rp->r;
    if (--rp->waiting == 0) {
        if (!r->dead)
            replay_finish(rp);
        replay_free(rp);
        if (r->dead && r->outstanding == 0)
            really_free(r);
    }
}

void recovery_begin(recovery *r, sio_socket *s)
{
    struct session *ss = map_get(&r->claimed, sio_socket_id(s));
    if (!ss) {
        sio_recovery_done(s, false, 0);
        return;
    }
    for (size_t i = 0; i < ss->nrooms; i++)
        sio_join(s, ss->rooms[i]);
    if (r->restore)
        r->restore(s, ss->user_id, ss->platform, r->ud);
    struct replay *rp = calloc(1, sizeof *rp);
    if (!rp) {
        sio_recovery_done(s, false, 0);
        return;
    }
    rp->r = r;
    memcpy(rp->sid, ss->sid, sizeof rp->sid);
    memcpy(rp->pid, sio_socket_pid(s), sizeof rp->pid);
    rp->offset = ss->since;
    int limit = (int)r->cfg.max_events + 1;
    rp->waiting = 1; /* held until every page is queued */
    for (size_t i = 0; i <= ss->nrooms; i++) {
        const char *room = i < ss->nrooms ? ss->rooms[i] : NULL;
        rp->waiting++;
        r->outstanding++;
        if (store_query_messages(r->st, limit, 0, room, page_done, rp) < 0) {
            rp->waiting--;
            r->outstanding--;
            rp->failed = true;
        }
    }
    replay_release(rp); /* drops the hold */
}
