/* redis_link.c: hiredis's async contexts on rtd's loop (see redis_link.h).
 *
 * The adapter: hiredis asks for read/write interest through ev.addRead & co.; we keep the
 * fd's mask and register it with the loop. hiredis may free its context from inside
 * redisAsyncHandleRead (a disconnect), calling ev.cleanup: the adapter then only marks
 * itself dead and is freed once the handler returns (libevent.h's ENTERED/DELETED).
 * After a disconnect (or a failed connect) hiredis frees the context itself, so the
 * connection forgets it in those callbacks and arms its retry timer. */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>

#include "rtd/cluster/redis_link.h"
#include "rtd/lib/log.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 5000
/* Bytes hiredis may hold for a Redis that does not read fast enough; above, publishes are
 * refused (Redis itself would cut a slow subscriber at its client-output-buffer-limit). */
#define MAX_PENDING_OUTPUT (32u << 20)
#define MAX_PENDING_COMMANDS 100000

struct ev_glue {
    loop *l;
    redisAsyncContext *ac;
    int fd;
    int mask;
    bool entered;
    bool deleted;
};

struct rconn {
    redis_link *link;
    const char *name;
    bool sub;
    redisAsyncContext *ac;
    bool connected;      /* TCP up and AUTH sent */
    bool ever_connected;
    unsigned backoff_ms;
    unsigned pending;    /* commands waiting for a reply */
    loop_timer retry;
    loop_timer deadline; /* connect timeout */
    unsigned confirmed;  /* subscriptions confirmed on this connection */
};

struct redis_link {
    loop *l;
    struct redis_url url;
    struct rconn pub, sub;
    char **channels;
    size_t nchannels;
    char **patterns;
    size_t npatterns;
    redis_message_fn *on_message;
    redis_state_fn *on_state;
    void *ud;
    struct redis_link_stats stats;
    bool was_up;
    bool freeing;
};

/* ---- the loop adapter ---- */

static void glue_set(struct ev_glue *g, int mask);

static void glue_fd(loop *l, int fd, void *ud, int mask)
{
    struct ev_glue *g = ud;
    g->entered = true;
    if (mask & (LOOP_READ | LOOP_HUP))
        redisAsyncHandleRead(g->ac);
    if (!g->deleted && (mask & LOOP_WRITE))
        redisAsyncHandleWrite(g->ac);
    g->entered = false;
    if (g->deleted)
        free(g);
}

static void glue_set(struct ev_glue *g, int mask)
{
    if (mask == g->mask)
        return;
    if (!mask)
        loop_del_fd(g->l, g->fd);
    else if (!g->mask)
        loop_add_fd(g->l, g->fd, mask, glue_fd, g);
    else
        loop_mod_fd(g->l, g->fd, mask);
    g->mask = mask;
}

static void glue_add_read(void *p)
{
    struct ev_glue *g = p;
    glue_set(g, g->mask | LOOP_READ);
}

static void glue_del_read(void *p)
{
    struct ev_glue *g = p;
    glue_set(g, g->mask & ~LOOP_READ);
}

static void glue_add_write(void *p)
{
    struct ev_glue *g = p;
    glue_set(g, g->mask | LOOP_WRITE);
}

static void glue_del_write(void *p)
{
    struct ev_glue *g = p;
    glue_set(g, g->mask & ~LOOP_WRITE);
}

static void glue_cleanup(void *p)
{
    struct ev_glue *g = p;
    glue_set(g, 0);
    g->ac->ev.data = NULL;
    if (g->entered)
        g->deleted = true;
    else
        free(g);
}

static int glue_attach(loop *l, redisAsyncContext *ac)
{
    if (ac->ev.data)
        return -1;
    struct ev_glue *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->l = l;
    g->ac = ac;
    g->fd = ac->c.fd;
    ac->ev.data = g;
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    return 0;
}

/* ---- connections ---- */

static void conn_start(loop *l, void *ud);

static void update_state(redis_link *r)
{
    enum redis_link_state s;
    size_t want = r->nchannels + r->npatterns;
    if (r->pub.connected && r->sub.connected && r->sub.confirmed >= want)
        s = REDIS_LINK_UP;
    else
        s = r->was_up ? REDIS_LINK_DOWN : REDIS_LINK_CONNECTING;
    if (s == r->stats.state)
        return;
    r->stats.state = s;
    if (s == REDIS_LINK_UP)
        r->was_up = true;
    if (s == REDIS_LINK_CONNECTING)
        return;
    if (s == REDIS_LINK_UP)
        rlogf(RLOG_INFO, "Redis link up", "{\"subscriptions\":%zu}", want);
    else
        rlog(RLOG_WARN, "Redis link down", NULL);
    if (r->on_state && !r->freeing)
        r->on_state(s, r->ud);
}

static void conn_lost(struct rconn *c, const char *why)
{
    redis_link *r = c->link;
    bool was = c->connected;
    c->ac = NULL;
    c->connected = false;
    c->confirmed = 0;
    c->pending = 0;
    loop_timer_stop(r->l, &c->deadline);
    if (r->freeing)
        return;
    if (was)
        rlogf(RLOG_WARN, "Redis connection lost", "{\"connection\":\"%s\",\"error\":\"%s\"}",
              c->name, rlog_esc(why));
    else
        rlogf(RLOG_DEBUG, "Redis connection failed", "{\"connection\":\"%s\",\"error\":\"%s\"}",
              c->name, rlog_esc(why));
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RETRY_MIN_MS;
    if (c->backoff_ms > RETRY_MAX_MS)
        c->backoff_ms = RETRY_MAX_MS;
    loop_timer_start(r->l, &c->retry, c->backoff_ms, conn_start, c);
    update_state(r);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    redisReply *rep = reply;
    if (!c || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
        return;
    redisReply **e = rep->element;
    if (e[0]->type != REDIS_REPLY_STRING)
        return;
    redis_link *r = c->link;
    const char *kind = e[0]->str;
    if (!strcmp(kind, "subscribe") || !strcmp(kind, "psubscribe")) {
        c->confirmed++;
        update_state(r);
    } else if (!strcmp(kind, "message") && e[1]->type == REDIS_REPLY_STRING &&
               e[2]->type == REDIS_REPLY_STRING) {
        r->stats.received++;
        r->on_message(NULL, e[1]->str, e[1]->len, (const unsigned char *)e[2]->str, e[2]->len,
                      r->ud);
    } else if (!strcmp(kind, "pmessage") && rep->elements >= 4 &&
               e[1]->type == REDIS_REPLY_STRING && e[2]->type == REDIS_REPLY_STRING &&
               e[3]->type == REDIS_REPLY_STRING) {
        r->stats.received++;
        r->on_message(e[1]->str, e[2]->str, e[2]->len, (const unsigned char *)e[3]->str,
                      e[3]->len, r->ud);
    }
}

static void send_subscription(struct rconn *c, const char *cmd, const char *name)
{
    const char *argv[2] = {cmd, name};
    size_t lens[2] = {strlen(cmd), strlen(name)};
    redisAsyncCommandArgv(c->ac, on_sub_reply, NULL, 2, argv, lens);
}

static void on_auth_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    redisReply *rep = reply;
    if (c)
        c->pending--;
    if (c && rep && rep->type == REDIS_REPLY_ERROR)
        rlogf(RLOG_ERROR, "Redis refused AUTH or SELECT",
              "{\"connection\":\"%s\",\"error\":\"%.200s\"}", c->name, rep->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (!c)
        return;
    if (status != REDIS_OK) {
        conn_lost(c, ac->errstr); /* hiredis frees ac after this returns */
        return;
    }
    redis_link *r = c->link;
    loop_timer_stop(r->l, &c->deadline);
    if (c->ever_connected)
        r->stats.reconnects++;
    c->ever_connected = true;
    c->connected = true;
    c->backoff_ms = 0;
    rlogf(RLOG_DEBUG, "Redis connected", "{\"connection\":\"%s\"}", c->name);
    update_state(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;
    if (c)
        conn_lost(c, status == REDIS_OK ? "closed" : ac->errstr);
}

static void connect_deadline(loop *l, void *ud)
{
    struct rconn *c = ud;
    redisAsyncContext *ac = c->ac;
    if (!ac || c->connected)
        return;
    ac->data = NULL; /* its callbacks must not see c any more */
    redisAsyncFree(ac);
    conn_lost(c, "connect timeout");
}

static void conn_start(loop *l, void *ud)
{
    struct rconn *c = ud;
    redis_link *r = c->link;
    redisAsyncContext *ac = r->url.path ? redisAsyncConnectUnix(r->url.path)
                                        : redisAsyncConnect(r->url.host, r->url.port);
    if (!ac) {
        conn_lost(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        conn_lost(c, why);
        return;
    }
    if (glue_attach(l, ac) < 0) {
        redisAsyncFree(ac);
        conn_lost(c, "out of memory");
        return;
    }
    ac->data = c;
    c->ac = ac;
    if (!r->url.path)
        redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    loop_timer_start(l, &c->deadline, CONNECT_TIMEOUT_MS, connect_deadline, c);
    /* Queued now, written once connected: AUTH, SELECT, then the subscriptions. */
    if (r->url.password) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        size_t lens[3] = {4, r->url.user ? strlen(r->url.user) : 0, strlen(r->url.password)};
        if (r->url.user)
            redisAsyncCommandArgv(ac, on_auth_reply, NULL, 3, argv, lens);
        else {
            argv[1] = argv[2];
            lens[1] = lens[2];
            redisAsyncCommandArgv(ac, on_auth_reply, NULL, 2, argv, lens);
        }
        c->pending++;
    }
    if (!c->sub && r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        redisAsyncCommandArgv(ac, on_auth_reply, NULL, 2, argv, lens);
        c->pending++;
    }
    if (c->sub) {
        for (size_t i = 0; i < r->npatterns; i++)
            send_subscription(c, "PSUBSCRIBE", r->patterns[i]);
        for (size_t i = 0; i < r->nchannels; i++)
            send_subscription(c, "SUBSCRIBE", r->channels[i]);
    }
}

/* ---- the link ---- */

redis_link *redis_link_new(loop *l, const struct redis_url *url, redis_message_fn *on_message,
                           redis_state_fn *on_state, void *ud)
{
    redis_link *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->l = l;
    r->on_message = on_message;
    r->on_state = on_state;
    r->ud = ud;
    r->url.port = url->port;
    r->url.db = url->db;
    if ((url->host && !(r->url.host = strdup(url->host))) ||
        (url->path && !(r->url.path = strdup(url->path))) ||
        (url->user && !(r->url.user = strdup(url->user))) ||
        (url->password && !(r->url.password = strdup(url->password)))) {
        redis_url_free(&r->url);
        free(r);
        return NULL;
    }
    r->pub = (struct rconn){.link = r, .name = "publish"};
    r->sub = (struct rconn){.link = r, .name = "subscribe", .sub = true};
    conn_start(l, &r->pub);
    conn_start(l, &r->sub);
    return r;
}

static void conn_free(redis_link *r, struct rconn *c)
{
    loop_timer_stop(r->l, &c->retry);
    loop_timer_stop(r->l, &c->deadline);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        ac->data = NULL;
        c->ac = NULL;
        redisAsyncFree(ac);
    }
}

void redis_link_free(redis_link *r)
{
    if (!r)
        return;
    r->freeing = true;
    conn_free(r, &r->pub);
    conn_free(r, &r->sub);
    for (size_t i = 0; i < r->nchannels; i++)
        free(r->channels[i]);
    for (size_t i = 0; i < r->npatterns; i++)
        free(r->patterns[i]);
    free(r->channels);
    free(r->patterns);
    redis_url_free(&r->url);
    free(r);
}

static int remember(char ***list, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i], name))
            return 1;
    char **grown = realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *list = grown;
    if (!(grown[*n] = strdup(name)))
        return -1;
    (*n)++;
    return 0;
}

int redis_link_subscribe(redis_link *r, const char *channel)
{
    int k = remember(&r->channels, &r->nchannels, channel);
    if (k == 0 && r->sub.ac)
        send_subscription(&r->sub, "SUBSCRIBE", channel);
    if (k == 0)
        update_state(r);
    return k < 0 ? -1 : 0;
}

int redis_link_psubscribe(redis_link *r, const char *pattern)
{
    int k = remember(&r->patterns, &r->npatterns, pattern);
    if (k == 0 && r->sub.ac)
        send_subscription(&r->sub, "PSUBSCRIBE", pattern);
    if (k == 0)
        update_state(r);
    return k < 0 ? -1 : 0;
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    redisReply *rep = reply;
    if (!c)
        return;
    c->pending--;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        c->link->stats.published++;
    else
        c->link->stats.publish_failed++;
}

static bool can_send(struct rconn *c)
{
    return c->ac && c->connected && sdslen(c->ac->c.obuf) < MAX_PENDING_OUTPUT &&
           c->pending < MAX_PENDING_COMMANDS;
}

int redis_link_publish(redis_link *r, const char *channel, size_t channel_len,
                       const void *data, size_t len)
{
    struct rconn *c = &r->pub;
    if (!can_send(c)) {
        r->stats.publish_failed++;
        return -1;
    }
    const char *argv[3] = {"PUBLISH", channel, data};
    size_t lens[3] = {7, channel_len, len};
    if (redisAsyncCommandArgv(c->ac, on_publish_reply, NULL, 3, argv, lens) != REDIS_OK) {
        r->stats.publish_failed++;
        return -1;
    }
    c->pending++;
    return 0;
}

struct command_req {
    redis_strings_fn *fn;
    void *ud;
};

/* One reply element as text into num (integers), or its own bytes; false: not flat. */
static bool element_text(const redisReply *e, char *num, size_t numsz, const char **s, size_t *len)
{
    switch (e->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        *s = e->str;
        *len = e->len;
        return true;
    case REDIS_REPLY_INTEGER:
        *len = (size_t)snprintf(num, numsz, "%lld", e->integer);
        *s = num;
        return true;
    case REDIS_REPLY_NIL:
        *s = NULL;
        *len = 0;
        return true;
    default:
        return false;
    }
}

static void on_command_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct command_req *q = priv;
    struct rconn *c = ac->data;
    redisReply *rep = reply;
    if (c)
        c->pending--;
    if (!q->fn) {
        free(q);
        return;
    }
    if (!rep || !c || c->link->freeing || rep->type == REDIS_REPLY_ERROR) {
        q->fn(-1, NULL, NULL, q->ud);
        free(q);
        return;
    }
    bool arr = rep->type == REDIS_REPLY_ARRAY;
    size_t n = arr ? rep->elements : 1;
    const char **s = calloc(n ? n : 1, sizeof *s);
    size_t *len = calloc(n ? n : 1, sizeof *len);
    char (*num)[24] = calloc(n ? n : 1, sizeof *num);
    bool ok = s && len && num && n <= INT_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = element_text(arr ? rep->element[i] : rep, num[i], sizeof num[i], &s[i], &len[i]);
    q->fn(ok ? (int)n : -1, s, len, q->ud);
    free(s);
    free(len);
    free(num);
    free(q);
}

int redis_link_command(redis_link *r, int argc, const char **argv, const size_t *lens,
                       redis_strings_fn *fn, void *ud)
{
    struct rconn *c = &r->pub;
    struct command_req *q = can_send(c) ? malloc(sizeof *q) : NULL;
    if (!q)
        return -1;
    q->fn = fn;
    q->ud = ud;
    if (redisAsyncCommandArgv(c->ac, on_command_reply, q, argc, argv, lens) != REDIS_OK) {
        free(q);
        return -1;
    }
    c->pending++;
    return 0;
}

struct numsub_req {
    redis_reply_fn *fn;
    void *ud;
};

static void on_numsub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct numsub_req *q = priv;
    struct rconn *c = ac->data;
    redisReply *rep = reply;
    if (c)
        c->pending--;
    long long v = 0;
    int n = -1;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_INTEGER) {
        v = rep->element[1]->integer;
        n = 1;
    }
    if (c && !c->link->freeing)
        q->fn(&v, n, q->ud);
    free(q);
}

int redis_link_numsub(redis_link *r, const char *channel, redis_reply_fn *fn, void *ud)
{
    struct rconn *c = &r->pub;
    struct numsub_req *q = can_send(c) ? malloc(sizeof *q) : NULL;
    if (!q)
        return -1;
    q->fn = fn;
    q->ud = ud;
    const char *argv[3] = {"PUBSUB", "NUMSUB", channel};
    size_t lens[3] = {6, 6, strlen(channel)};
    if (redisAsyncCommandArgv(c->ac, on_numsub_reply, q, 3, argv, lens) != REDIS_OK) {
        free(q);
        return -1;
    }
    c->pending++;
    return 0;
}

void redis_link_get_stats(const redis_link *r, struct redis_link_stats *out)
{
    *out = r->stats;
}

const char *redis_link_state_name(enum redis_link_state s)
{
    switch (s) {
    case REDIS_LINK_UP:
        return "up";
    case REDIS_LINK_DOWN:
        return "down";
    default:
        return "connecting";
    }
}
