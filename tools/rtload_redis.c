/* rtload_redis.c: the Laravel publisher of --redis-publish, as Laravel's RedisBroadcaster.
 *
 * One hiredis connection to Redis. Each message is PUBLISH <--redis-key> {"event": ...,
 * "data": {...}, "socket": null}, the JSON RedisBroadcaster writes (data keeps its own
 * "socket" key); data.text carries this tool's "T<16 hex>" send-time marker, so the
 * receivers measure the delivery latency as for receive-message. Commands are pipelined,
 * at most --window without a reply; a reply (the receivers reached) is the message's ack.
 * Writes block (Redis on loopback reads at once); replies are read when epoll reports the
 * socket, one read per report, and parsed by hiredis's reader. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>

#include "tools/rtload.h"

static redisContext *rc;
static int64_t *ts; /* send times, a ring of --window slots in send order */
static uint64_t n_sent, n_replied;
static char *pad;

static void gone(const char *what)
{
    fprintf(stderr, "rtload: Redis %s: %s\n", what, rc && rc->errstr[0] ? rc->errstr : "connection closed");
    if (rc) {
        epoll_ctl(g.ep, EPOLL_CTL_DEL, rc->fd, NULL);
        redisFree(rc);
    }
    rc = NULL;
}

int redis_pub_open(void)
{
    char host[256];
    const char *colon = strrchr(cfg.redis_publish, ':');
    if (!colon || colon == cfg.redis_publish || (size_t)(colon - cfg.redis_publish) >= sizeof host) {
        fprintf(stderr, "rtload: --redis-publish wants HOST:PORT\n");
        return -1;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        fprintf(stderr, "rtload: --redis-publish: bad port '%s'\n", colon + 1);
        return -1;
    }
    memcpy(host, cfg.redis_publish, (size_t)(colon - cfg.redis_publish));
    host[colon - cfg.redis_publish] = '\0';
    rc = redisConnect(host, (int)port);
    if (!rc || rc->err) {
        fprintf(stderr, "rtload: cannot connect to Redis at %s: %s\n", cfg.redis_publish,
                rc ? rc->errstr : "out of memory");
        if (rc)
            redisFree(rc);
        rc = NULL;
        return -1;
    }
    int one = 1;
    setsockopt(rc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ts = calloc(cfg.window, sizeof *ts);
    unsigned pl = cfg.payload_bytes > 17 ? cfg.payload_bytes - 17 : 0;
    pad = malloc(pl + 1);
    if (!ts || !pad)
        return -1;
    memset(pad, 'x', pl);
    pad[pl] = '\0';
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = REDIS_PUB_TOKEN};
    return epoll_ctl(g.ep, EPOLL_CTL_ADD, rc->fd, &ev);
}

unsigned redis_pub_inflight(void)
{
    return (unsigned)(n_sent - n_replied);
}

bool redis_pub_send(int64_t now)
{
    if (!rc || n_sent - n_replied >= cfg.window)
        return false;
    char payload[600];
    char *big = NULL;
    size_t cap = strlen(pad) + 512;
    char *p = cap <= sizeof payload ? payload : (big = malloc(cap));
    if (!p)
        return false;
    int pn = snprintf(p, cap,
                      "{\"event\":\"App\\\\Events\\\\OrderShipped\",\"data\":{\"text\":\"T%016llx%s\","
                      "\"order\":{\"id\":%llu,\"status\":\"shipped\"},\"socket\":null},\"socket\":null}",
                      (unsigned long long)now, pad, (unsigned long long)n_sent + 1);
    int ok = redisAppendCommand(rc, "PUBLISH %s %b", cfg.redis_key, p, (size_t)pn);
    free(big);
    if (ok != REDIS_OK) {
        gone("command");
        return false;
    }
    int done = 0;
    while (!done) { /* blocking on a small command: Redis reads at once */
        if (redisBufferWrite(rc, &done) != REDIS_OK) {
            gone("write failed");
            return false;
        }
    }
    ts[n_sent % cfg.window] = now;
    n_sent++;
    g.n.sent++;
    return true;
}

/* Replies are integers (subscribers reached) or errors. */
void redis_pub_readable(int64_t now)
{
    if (!rc)
        return;
    if (redisBufferRead(rc) != REDIS_OK) {
        gone("read failed");
        return;
    }
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(rc, &r) != REDIS_OK) {
            gone("protocol error");
            return;
        }
        if (!r)
            return;
        redisReply *reply = r;
        if (n_replied == n_sent) {
            g.n.parse_errors++; /* a reply to nothing we sent */
        } else {
            int64_t t = ts[n_replied % cfg.window];
            n_replied++;
            if (reply->type != REDIS_REPLY_INTEGER) {
                g.n.ack_errors++;
            } else {
                g.n.acked++;
                if (g.recording && t <= now)
                    hist_add(&g.h_ack, (uint64_t)(now - t));
            }
        }
        freeReplyObject(reply);
    }
}

void redis_pub_close(void)
{
    if (rc)
        redisFree(rc);
    rc = NULL;
    free(ts);
    free(pad);
}
