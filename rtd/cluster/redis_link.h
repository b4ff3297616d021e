/* redis_link.h: rtd's two connections to Redis, driven by rtd's loop.
 *
 * hiredis is the RESP codec and connection state machine (its async API); the loop owns the
 * sockets through a small adapter, as hiredis's adapters/ae.h does for redis's own loop.
 * One connection publishes and sends commands, the other subscribes. Both reconnect by
 * themselves with a growing delay (100 ms doubling up to 5 s); the subscriber then
 * subscribes again to every channel and pattern it was given. Nothing ever blocks: a
 * publish while the link is down, or while Redis is slow to read (more than the output
 * bound waiting), is refused and counted.
 * Everything runs on the loop thread. */
#ifndef RTD_REDIS_LINK_H
#define RTD_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/cluster/redis_url.h"
#include "rtd/net/loop.h"

typedef struct redis_link redis_link;

enum redis_link_state { REDIS_LINK_CONNECTING = 0, REDIS_LINK_UP = 1, REDIS_LINK_DOWN = 2 };

struct redis_link_stats {
    enum redis_link_state state;
    uint64_t reconnects;     /* connections made again after a loss */
    uint64_t published;      /* PUBLISH commands Redis accepted */
    uint64_t publish_failed; /* publishes refused: link down, output bound, error reply */
    uint64_t received;       /* messages and pmessages received */
};

/* pattern is NULL for a plain SUBSCRIBE message. The bytes live only during the call. */
typedef void redis_message_fn(const char *pattern, const char *channel, size_t channel_len,
                              const unsigned char *data, size_t len, void *ud);
/* Called when the link comes up (subscriptions confirmed) or goes down. */
typedef void redis_state_fn(enum redis_link_state state, void *ud);
/* A reply to redis_link_command: integers in *ints (up to n), or n = -1 on failure. */
typedef void redis_reply_fn(const long long *ints, int n, void *ud);

redis_link *redis_link_new(loop *l, const struct redis_url *url, redis_message_fn *on_message,
                           redis_state_fn *on_state, void *ud);
void redis_link_free(redis_link *r);

/* Remembered, sent now if connected, and again after every reconnect. */
int redis_link_subscribe(redis_link *r, const char *channel);
int redis_link_psubscribe(redis_link *r, const char *pattern);

/* 0 when queued to Redis, -1 when refused (counted in publish_failed). */
int redis_link_publish(redis_link *r, const char *channel, size_t channel_len,
                       const void *data, size_t len);
/* A reply to redis_link_command: the elements of an array reply (strings, integers as
 * text, nil as NULL), or one string or integer as n = 1; n = -1 on failure (link down,
 * error reply, nested arrays). The strings live only during the call. */
typedef void redis_strings_fn(int n, const char *const *s, const size_t *len, void *ud);
/* Any command on the publishing connection (EVAL, SET, ...); fn may be NULL. 0 when queued
 * (fn then runs exactly once, with n = -1 if the link goes down or is freed first), -1 when
 * refused (link down, output bound). */
int redis_link_command(redis_link *r, int argc, const char **argv, const size_t *lens,
                       redis_strings_fn *fn, void *ud);
/* PUBSUB NUMSUB channel: fn gets the count (n = 1, ints[0]) or n = -1. */
int redis_link_numsub(redis_link *r, const char *channel, redis_reply_fn *fn, void *ud);

void redis_link_get_stats(const redis_link *r, struct redis_link_stats *out);
const char *redis_link_state_name(enum redis_link_state s);

#endif
