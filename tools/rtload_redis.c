/* rtload_redis.c: the Laravel publisher of --redis-publish, as Laravel's RedisBroadcaster.
 *
 * One TCP connection to Redis. Each message is PUBLISH <--redis-key> {"event": ..., "data":
 * {...}, "socket": null}, the JSON RedisBroadcaster writes (data keeps its own "socket" key);
 * data.text carries this tool's "T<16 hex>" send-time marker, so the receivers measure the
 * delivery latency as for receive-message. Commands are pipelined, at most --window without
 * a reply; a reply (":<receivers>") is the message's ack. Writes block (Redis on loopback
 * reads at once), replies are read without blocking when epoll reports the socket. */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/rtload.h"

static int fd = -1;
static int64_t *ts; /* send times, a ring of --window slots in send order */
static uint64_t n_sent, n_replied;
static char *pad;

int redis_pub_open(void)
{
    char host[64];
    const char *colon = strrchr(cfg.redis_publish, ':');
    if (!colon || (size_t)(colon - cfg.redis_publish) >= sizeof host) {
        fprintf(stderr, "rtload: --redis-publish wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, cfg.redis_publish, (size_t)(colon - cfg.redis_publish));
    host[colon - cfg.redis_publish] = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "rtload: --redis-publish: %s is not an IPv4 address\n", host);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "rtload: cannot connect to Redis at %s: %s\n", cfg.redis_publish, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ts = calloc(cfg.window, sizeof *ts);
    unsigned pl = cfg.payload_bytes > 17 ? cfg.payload_bytes - 17 : 0;
    pad = malloc(pl + 1);
    if (!ts || !pad)
        return -1;
    memset(pad, 'x', pl);
    pad[pl] = '\0';
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = REDIS_PUB_TOKEN};
    return epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
}

unsigned redis_pub_inflight(void)
{
    return (unsigned)(n_sent - n_replied);
}

bool redis_pub_send(int64_t now)
{
    if (fd < 0 || n_sent - n_replied >= cfg.window)
        return false;
    char payload[600], cmd[800];
    char *big = NULL;
    size_t cap = strlen(pad) + 512;
    char *p = cap <= sizeof payload ? payload : (big = malloc(cap));
    if (!p)
        return false;
    int pn = snprintf(p, cap,
                      "{\"event\":\"App\\\\Events\\\\OrderShipped\",\"data\":{\"text\":\"T%016llx%s\","
                      "\"order\":{\"id\":%llu,\"status\":\"shipped\"},\"socket\":null},\"socket\":null}",
                      (unsigned long long)now, pad, (unsigned long long)n_sent + 1);
    int hn = snprintf(cmd, sizeof cmd, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%d\r\n", strlen(cfg.redis_key),
                      cfg.redis_key, pn);
    struct iovec iov[3] = {{cmd, (size_t)hn}, {p, (size_t)pn}, {"\r\n", 2}};
    size_t total = (size_t)hn + (size_t)pn + 2, done = 0;
    while (done < total) { /* blocking on a small command: Redis reads at once */
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "rtload: Redis write failed: %s\n", strerror(errno));
            close(fd);
            fd = -1;
            free(big);
            return false;
        }
        done += (size_t)w;
        for (int i = 0; i < 3 && w > 0; i++) { /* skip what was written */
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    free(big);
    ts[n_sent % cfg.window] = now;
    n_sent++;
    g.n.sent++;
    return true;
}

/* Replies are one line each: ":<n>" (subscribers reached) or "-ERR ...". */
void redis_pub_readable(int64_t now)
{
    static bool err_line; /* inside an error reply */
    static bool line_start = true;
    char b[4096];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            fprintf(stderr, "rtload: Redis closed the connection\n");
            epoll_ctl(g.ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            fd = -1;
            return;
        }
        if (n < 0)
            return;
        for (ssize_t i = 0; i < n; i++) {
            if (line_start) {
                err_line = b[i] == '-';
                line_start = false;
            }
            if (b[i] != '\n')
                continue;
            line_start = true;
            if (n_replied == n_sent) {
                g.n.parse_errors++;
                continue;
            }
            int64_t t = ts[n_replied % cfg.window];
            n_replied++;
            if (err_line) {
                g.n.ack_errors++;
                continue;
            }
            g.n.acked++;
            if (g.recording && t <= now)
                hist_add(&g.h_ack, (uint64_t)(now - t));
        }
    }
}

void redis_pub_close(void)
{
    if (fd >= 0)
        close(fd);
    fd = -1;
    free(ts);
    free(pad);
}
