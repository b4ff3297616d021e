/* laravel_presence.c: presence channels' members (laravel-echo-server's presence-channel.ts),
 * kept on this node, or, with database "redis" and the Redis subscriber on, shared in Redis
 * so that every node agrees on them.
 *
 * Shared members: a hash <keyPrefix>rtd:presence:<channel> holds one field per socket,
 * "<instance>|<socket id>" = "<seq>\t<user_id>\t<member JSON>"; the set
 * <keyPrefix>rtd:presence names the hashes. Each process has a random instance id whose
 * key <keyPrefix>rtd:node:<instance> lives NODE_TTL_S seconds and is refreshed every BEAT_MS;
 * members of an instance whose key is gone (a node that died) are not counted, and the
 * sweep (every beat, on every node, atomic in Lua, so once) removes them and announces
 * presence:leaving for the users that had no other socket. Joins, leaves and the sweep are
 * Lua scripts, so concurrent joins lose nothing. presence:joining/leaving go out as Laravel
 * messages PUBLISHed to <keyPrefix><channel>, which every node's subscriber delivers to its
 * sockets (except the joining one). The members of this node's sockets are kept here too:
 * a disconnect finds its entries, and the mode without Redis uses nothing else. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/laravel/laravel_internal.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"

#define BEAT_MS 3000
#define NODE_TTL_S "10"

/* KEYS: hash, set, seq counter. ARGV: field, user_id, member, node key prefix, instance,
 * ttl. Returns {"1" if the user was already there, members newest first, one per user}. */
static const char JOIN_LUA[] =
    "local seq = redis.call('INCR', KEYS[3])\n"
    "redis.call('SET', ARGV[4] .. ARGV[5], '1', 'EX', tonumber(ARGV[6]))\n"
    "local h = redis.call('HGETALL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], ARGV[1], seq .. '\\t' .. ARGV[2] .. '\\t' .. ARGV[3])\n"
    "redis.call('SADD', KEYS[2], KEYS[1])\n"
    "local alive, rows, was = {}, {}, 0\n"
    "for i = 1, #h, 2 do\n"
    "  local node = string.match(h[i], '^([^|]*)|') or ''\n"
    "  if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[4] .. node) == 1 end\n"
    "  local s, u, m = string.match(h[i + 1], '^(%d+)\\t([^\\t]*)\\t(.*)$')\n"
    "  if alive[node] and s and h[i] ~= ARGV[1] then\n"
    "    if u == ARGV[2] then was = 1 end\n"
    "    rows[#rows + 1] = {tonumber(s), u, m}\n"
    "  end\n"
    "end\n"
    "rows[#rows + 1] = {seq, ARGV[2], ARGV[3]}\n"
    "table.sort(rows, function(a, b) return a[1] > b[1] end)\n"
    "local out, seen = {tostring(was)}, {}\n"
    "for _, r in ipairs(rows) do\n"
    "  if not seen[r[2]] then seen[r[2]] = true; out[#out + 1] = r[3] end\n"
    "end\n"
    "return out\n";

/* KEYS: hash, set. ARGV: field, user_id, node key prefix. Returns 0 when the user has no
 * other live socket in the channel (announce leaving), 1 otherwise or when already swept. */
static const char LEAVE_LUA[] =
    "if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 1 end\n"
    "local h = redis.call('HGETALL', KEYS[1])\n"
    "if #h == 0 then redis.call('SREM', KEYS[2], KEYS[1]) end\n"
    "local alive = {}\n"
    "for i = 1, #h, 2 do\n"
    "  local node = string.match(h[i], '^([^|]*)|') or ''\n"
    "  if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[3] .. node) == 1 end\n"
    "  if alive[node] and string.match(h[i + 1], '^%d+\\t([^\\t]*)\\t') == ARGV[2] then return 1 end\n"
    "end\n"
    "return 0\n";

/* KEYS: set. ARGV: node key prefix. Removes dead instances' members; returns
 * {hash, member, ...} for each user gone with them. */
static const char SWEEP_LUA[] =
    "local out, alive = {}, {}\n"
    "for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local h = redis.call('HGETALL', key)\n"
    "  local live, dead = {}, {}\n"
    "  for i = 1, #h, 2 do\n"
    "    local node = string.match(h[i], '^([^|]*)|') or ''\n"
    "    if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[1] .. node) == 1 end\n"
    "    local u, m = string.match(h[i + 1], '^%d+\\t([^\\t]*)\\t(.*)$')\n"
    "    if alive[node] then live[u or ''] = true\n"
    "    else redis.call('HDEL', key, h[i]); if u then dead[u] = m end end\n"
    "  end\n"
    "  for u, m in pairs(dead) do\n"
    "    if not live[u] then out[#out + 1] = key; out[#out + 1] = m end\n"
    "  end\n"
    "  if redis.call('HLEN', key) == 0 then redis.call('SREM', KEYS[1], key) end\n"
    "end\n"
    "return out\n";

/* KEYS: hash. ARGV: node key prefix. The live members, newest first, one per user. */
static const char USERS_LUA[] =
    "local h = redis.call('HGETALL', KEYS[1])\n"
    "local alive, rows = {}, {}\n"
    "for i = 1, #h, 2 do\n"
    "  local node = string.match(h[i], '^([^|]*)|') or ''\n"
    "  if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[1] .. node) == 1 end\n"
    "  local s, u, m = string.match(h[i + 1], '^(%d+)\\t([^\\t]*)\\t(.*)$')\n"
    "  if alive[node] and s then rows[#rows + 1] = {tonumber(s), u, m} end\n"
    "end\n"
    "table.sort(rows, function(a, b) return a[1] > b[1] end)\n"
    "local out, seen = {}, {}\n"
    "for _, r in ipairs(rows) do\n"
    "  if not seen[r[2]] then seen[r[2]] = true; out[#out + 1] = r[3] end\n"
    "end\n"
    "return out\n";

/* ---- this node's members ---- */

struct presence *lv_presence_find(laravel *lv, const char *name, bool create)
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

/* Removes the socket's entry; false if it had none. *out takes the entry. */
static bool take_member(struct presence *p, const char *socket_id, struct member *out)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->m[i].socket_id, socket_id))
            continue;
        *out = p->m[i];
        memmove(&p->m[i], &p->m[i + 1], (p->n - i - 1) * sizeof *p->m);
        p->n--;
        return true;
    }
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

static void emit_to(sio_socket *s, const char *event, const char *channel, json_object *o)
{
    buf a = BUF_INIT;
    if (args_channel_json(&a, channel, o) == 0)
        sio_emit(s, event, (const char *)a.data);
    buf_free(&a);
}

/* presence:joining/leaving: through Redis to every node when shared, else to this node. */
static void announce(laravel *lv, const char *channel, const char *event, json_object *member,
                     const char *except_id)
{
    lv_fanout(lv, channel, event, member, except_id);
}

/* ---- shared members in Redis ---- */

static int key_of(const laravel *lv, buf *b, const char *what, const char *rest)
{
    return buf_puts(b, lv->cfg->key_prefix) == 0 && buf_puts(b, what) == 0 &&
                   buf_puts(b, rest ? rest : "") == 0 && buf_terminate(b) == 0
               ? 0
               : -1;
}

/* EVAL script with keys then args (strings); fn may be NULL. */
static int eval(laravel *lv, const char *script, int nkeys, const char *const *keys, int nargs,
                const char *const *args, redis_strings_fn *fn, void *ud)
{
    const char *argv[16];
    size_t lens[16];
    char nk[8];
    if (3 + nkeys + nargs > 16 || !lv->redis)
        return -1;
    snprintf(nk, sizeof nk, "%d", nkeys);
    int n = 0;
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[n++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[n++] = args[i];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return redis_link_command(lv->redis, n, argv, lens, fn, ud);
}

struct shared_op {
    laravel *lv;
    char socket_id[32];
    char channel[MAX_CHANNEL + 1];
    json_object *member; /* join: with socketId; leave: without */
};

static json_object *parse_member(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new_ex(32);
    json_object *o = tok && s ? json_tokener_parse_ex(tok, s, (int)len) : NULL;
    if (tok && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void on_join_reply(int n, const char *const *s, const size_t *len, void *ud)
{
    struct shared_op *op = ud;
    laravel *lv = op->lv;
    sio_socket *sock = lv->closing ? NULL : sio_socket_find(lv->nsp, op->socket_id);
    if (lv->closing) {
        n = 0; /* nothing to answer: only free */
    } else if (n < 1) { /* Redis failed: the socket is not a member after all */
        struct presence *p = lv_presence_find(lv, op->channel, false);
        struct member m;
        if (p && take_member(p, op->socket_id, &m)) {
            free(m.user_id);
            json_object_put(m.member);
            presence_drop_if_empty(lv, p);
        }
        if (sock) {
            sio_leave(sock, op->channel);
            lv->stats.refused++;
            lv_emit_error(sock, op->channel, 0);
        }
    }
    if (n >= 1) {
        if (sock && sio_in_room(sock, op->channel)) {
            json_object *list = json_object_new_array();
            for (int i = 1; i < n; i++) {
                json_object *m = parse_member(s[i], len[i]);
                if (m)
                    json_object_array_add(list, m);
            }
            emit_to(sock, "presence:subscribed", op->channel, list);
            json_object_put(list);
        }
        /* even for a socket gone meanwhile: its leave, queued after this join, follows */
        if (len[0] == 1 && s[0] && s[0][0] == '0')
            announce(lv, op->channel, "presence:joining", op->member, op->socket_id);
    }
    json_object_put(op->member);
    free(op);
}

/* answer: presence:subscribed and joining follow the reply (false: stored again, silently). */
static int shared_join(laravel *lv, const struct member *m, const char *channel, bool answer)
{
    struct shared_op *op = calloc(1, sizeof *op);
    buf hash = BUF_INIT, set = BUF_INIT, seq = BUF_INIT, nodes = BUF_INIT, field = BUF_INIT;
    int r = -1;
    if (!op || key_of(lv, &hash, "rtd:presence:", channel) < 0 ||
        key_of(lv, &set, "rtd:presence", NULL) < 0 || key_of(lv, &seq, "rtd:presence-seq", NULL) < 0 ||
        key_of(lv, &nodes, "rtd:node:", NULL) < 0 ||
        buf_printf(&field, "%s|%s", lv->instance, m->socket_id) < 0 || buf_terminate(&field) < 0)
        goto out;
    op->lv = lv;
    snprintf(op->socket_id, sizeof op->socket_id, "%s", m->socket_id);
    snprintf(op->channel, sizeof op->channel, "%s", channel);
    op->member = json_object_get(m->member);
    const char *keys[3] = {(char *)hash.data, (char *)set.data, (char *)seq.data};
    const char *args[6] = {(char *)field.data, m->user_id,
                           json_object_to_json_string_ext(m->member, JSON_C_TO_STRING_PLAIN),
                           (char *)nodes.data, lv->instance, NODE_TTL_S};
    if (eval(lv, JOIN_LUA, 3, keys, 6, args, answer ? on_join_reply : NULL, answer ? op : NULL) == 0) {
        if (!answer)
            goto out;
        op = NULL;
        r = 0;
    }
out:
    if (op)
        json_object_put(op->member);
    free(op);
    buf_free(&hash);
    buf_free(&set);
    buf_free(&seq);
    buf_free(&nodes);
    buf_free(&field);
    return r;
}

static void on_leave_reply(int n, const char *const *s, const size_t *len, void *ud)
{
    struct shared_op *op = ud;
    if (!op->lv->closing && n == 1 && len[0] == 1 && s[0] && s[0][0] == '0')
        announce(op->lv, op->channel, "presence:leaving", op->member, NULL);
    json_object_put(op->member);
    free(op);
}

static void shared_leave(laravel *lv, const char *channel, const struct member *m)
{
    struct shared_op *op = calloc(1, sizeof *op);
    buf hash = BUF_INIT, set = BUF_INIT, nodes = BUF_INIT, field = BUF_INIT;
    if (!op || key_of(lv, &hash, "rtd:presence:", channel) < 0 ||
        key_of(lv, &set, "rtd:presence", NULL) < 0 || key_of(lv, &nodes, "rtd:node:", NULL) < 0 ||
        buf_printf(&field, "%s|%s", lv->instance, m->socket_id) < 0 || buf_terminate(&field) < 0)
        goto out;
    op->lv = lv;
    snprintf(op->channel, sizeof op->channel, "%s", channel);
    op->member = json_object_get(m->member);
    const char *keys[2] = {(char *)hash.data, (char *)set.data};
    const char *args[3] = {(char *)field.data, m->user_id, (char *)nodes.data};
    if (eval(lv, LEAVE_LUA, 2, keys, 3, args, on_leave_reply, op) == 0)
        op = NULL;
    else /* the entry stays until this instance is swept (see lv_presence_relink) */
        rlog(RLOG_WARN, "Laravel presence leave not stored: Redis refused it", NULL);
out:
    if (op)
        json_object_put(op->member);
    free(op);
    buf_free(&hash);
    buf_free(&set);
    buf_free(&nodes);
    buf_free(&field);
}

static void on_sweep_reply(int n, const char *const *s, const size_t *len, void *ud)
{
    laravel *lv = ud;
    if (lv->closing)
        return;
    size_t skip = strlen(lv->cfg->key_prefix) + strlen("rtd:presence:");
    for (int i = 0; i + 1 < n; i += 2) {
        if (!s[i] || len[i] <= skip || len[i] - skip > MAX_CHANNEL)
            continue;
        char channel[MAX_CHANNEL + 1];
        memcpy(channel, s[i] + skip, len[i] - skip);
        channel[len[i] - skip] = '\0';
        json_object *m = parse_member(s[i + 1], len[i + 1]);
        if (!m)
            continue;
        json_object_object_del(m, "socketId");
        announce(lv, channel, "presence:leaving", m, NULL);
        json_object_put(m);
    }
}

/* This instance is alive for NODE_TTL_S more seconds; dead instances' members go. */
static void beat(loop *l, void *ud)
{
    laravel *lv = ud;
    buf node = BUF_INIT, set = BUF_INIT, nodes = BUF_INIT;
    if (key_of(lv, &node, "rtd:node:", lv->instance) == 0 && key_of(lv, &set, "rtd:presence", NULL) == 0 &&
        key_of(lv, &nodes, "rtd:node:", NULL) == 0) {
        const char *argv[5] = {"SET", (char *)node.data, "1", "EX", NODE_TTL_S};
        size_t lens[5];
        for (int i = 0; i < 5; i++)
            lens[i] = strlen(argv[i]);
        redis_link_command(lv->redis, 5, argv, lens, NULL, NULL);
        const char *keys[1] = {(char *)set.data};
        const char *args[1] = {(char *)nodes.data};
        eval(lv, SWEEP_LUA, 1, keys, 1, args, on_sweep_reply, lv);
    }
    buf_free(&node);
    buf_free(&set);
    buf_free(&nodes);
    loop_timer_start(l, &lv->beat, BEAT_MS, beat, lv);
}

static void new_instance(laravel *lv)
{
    unsigned char r[8];
    if (util_random_bytes(r, sizeof r) < 0)
        memset(r, 0, sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(lv->instance + 2 * i, 3, "%02x", r[i]);
}

/* ---- joining and leaving ---- */

/* After a 200 with channel_data: join, presence:subscribed to the socket (uniqBy(reverse),
 * each entry with socketId), presence:joining to the others if the user is new. */
void lv_presence_join(laravel *lv, sio_socket *s, const char *channel, const char *body)
{
    json_object *res = json_tokener_parse(body), *cd = NULL, *uid, *parsed = NULL;
    if (json_object_is_type(res, json_type_object))
        json_object_object_get_ex(res, "channel_data", &cd);
    if (json_object_is_type(cd, json_type_string))
        cd = parsed = json_tokener_parse(json_object_get_string(cd));
    const char *u = NULL;
    if (json_object_is_type(cd, json_type_object) && json_object_object_get_ex(cd, "user_id", &uid) &&
        (json_object_is_type(uid, json_type_string) || json_object_is_type(uid, json_type_int)))
        u = json_object_get_string(uid);
    if (!u || !*u || strlen(u) > MAX_USER_ID || strchr(u, '\t')) {
        rlog(RLOG_WARN, "Member data for presence channel missing", NULL);
        lv->stats.member_refused++;
        lv_emit_error(s, channel, 0);
        json_object_put(parsed);
        json_object_put(res);
        return;
    }
    struct presence *p = lv_presence_find(lv, channel, true);
    struct member m = {0};
    snprintf(m.socket_id, sizeof m.socket_id, "%s", sio_socket_id(s));
    m.user_id = strdup(u);
    json_object_deep_copy(cd, &m.member, NULL);
    json_object_put(parsed);
    json_object_put(res);
    if (!p || !m.user_id || !m.member ||
        json_object_object_add(m.member, "socketId", json_object_new_string(m.socket_id)) < 0 ||
        (p->n == p->cap && grow(p) < 0) || sio_join(s, channel) < 0 ||
        (lv->shared && shared_join(lv, &m, channel, true) < 0)) {
        if (sio_in_room(s, channel))
            sio_leave(s, channel);
        free(m.user_id);
        json_object_put(m.member);
        if (p)
            presence_drop_if_empty(lv, p);
        lv->stats.refused++;
        lv_emit_error(s, channel, 0);
        return;
    }
    lv->stats.subscribes++;
    bool was = has_user(p, m.user_id);
    p->m[p->n++] = m;
    if (lv->shared)
        return; /* on_join_reply answers */
    json_object *list = json_object_new_array();
    for (size_t i = p->n; i-- > 0;) {
        bool dup = false;
        for (size_t j = p->n; j-- > i + 1;)
            if (!strcmp(p->m[j].user_id, p->m[i].user_id))
                dup = true;
        if (!dup)
            json_object_array_add(list, json_object_get(p->m[i].member));
    }
    emit_to(s, "presence:subscribed", channel, list);
    json_object_put(list);
    if (!was)
        announce(lv, channel, "presence:joining", m.member, m.socket_id);
}

/* The socket's entry goes; presence:leaving (without socketId) to the channel when it was
 * the user's last socket (on any node, when shared). */
void lv_presence_leave(laravel *lv, struct presence *p, const char *socket_id)
{
    struct member m;
    if (take_member(p, socket_id, &m)) {
        json_object_object_del(m.member, "socketId");
        if (lv->shared)
            shared_leave(lv, p->name, &m);
        else if (!has_user(p, m.user_id))
            announce(lv, p->name, "presence:leaving", m.member, NULL);
        free(m.user_id);
        json_object_put(m.member);
    }
    presence_drop_if_empty(lv, p);
}

void lv_presence_leave_all(laravel *lv, const char *socket_id)
{
    for (struct presence *p = lv->presences, *next; p; p = next) {
        next = p->next;
        lv_presence_leave(lv, p, socket_id);
    }
}

static void add_user(json_object *users, json_object *member)
{
    json_object *u = json_object_new_object(), *id = NULL, *info = NULL;
    json_object_object_get_ex(member, "user_id", &id);
    json_object_object_get_ex(member, "user_info", &info);
    json_object_object_add(u, "id", json_object_get(id));
    json_object_object_add(u, "user_info", json_object_get(info));
    json_object_array_add(users, u);
}

json_object *lv_unique_users(const struct presence *p)
{
    json_object *users = json_object_new_array();
    for (size_t i = 0; p && i < p->n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(p->m[j].user_id, p->m[i].user_id))
                dup = true;
        if (!dup)
            add_user(users, p->m[i].member);
    }
    return users;
}

struct users_req {
    lv_users_fn *fn;
    void *ud;
};

static void on_users_reply(int n, const char *const *s, const size_t *len, void *ud)
{
    struct users_req *q = ud;
    json_object *users = n < 0 ? NULL : json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *m = parse_member(s[i], len[i]);
        if (m)
            add_user(users, m);
        json_object_put(m);
    }
    q->fn(users, q->ud);
    json_object_put(users);
    free(q);
}

int lv_presence_users(laravel *lv, const char *channel, lv_users_fn *fn, void *ud)
{
    struct users_req *q = malloc(sizeof *q);
    buf hash = BUF_INIT, nodes = BUF_INIT;
    int r = -1;
    if (q && key_of(lv, &hash, "rtd:presence:", channel) == 0 && key_of(lv, &nodes, "rtd:node:", NULL) == 0) {
        q->fn = fn;
        q->ud = ud;
        const char *keys[1] = {(char *)hash.data};
        const char *args[1] = {(char *)nodes.data};
        r = eval(lv, USERS_LUA, 1, keys, 1, args, on_users_reply, q);
    }
    if (r < 0)
        free(q);
    buf_free(&hash);
    buf_free(&nodes);
    return r;
}

void lv_presence_relink(laravel *lv)
{
    if (!lv->shared)
        return;
    if (lv->was_up) {
        new_instance(lv);
        for (struct presence *p = lv->presences; p; p = p->next)
            for (size_t i = 0; i < p->n; i++)
                if (shared_join(lv, &p->m[i], p->name, false) < 0)
                    rlog(RLOG_WARN, "Laravel presence member not stored again", NULL);
    }
    lv->was_up = true;
    loop_timer_stop(lv->l, &lv->beat);
    loop_timer_start(lv->l, &lv->beat, 0, beat, lv);
}

int lv_presence_start(laravel *lv)
{
    lv->shared = lv->redis != NULL && !strcmp(lv->cfg->database, "redis");
    if (!lv->shared)
        return 0;
    new_instance(lv);
    loop_timer_start(lv->l, &lv->beat, 0, beat, lv);
    return 0;
}

void lv_presence_free(laravel *lv)
{
    loop_timer_stop(lv->l, &lv->beat);
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
}
