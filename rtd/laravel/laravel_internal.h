/* laravel_internal.h: what laravel.c (channels, auth callout, Redis subscriber),
 * laravel_presence.c (presence members, on this node or shared in Redis) and laravel_api.c
 * (the HTTP API, the HTTP subscriber and Pusher's signatures) share. Not for other modules. */
#ifndef RTD_LARAVEL_INTERNAL_H
#define RTD_LARAVEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rtd/cluster/redis_link.h"
#include "rtd/laravel/laravel.h"
#include "rtd/laravel/laravel_http.h"
#include "rtd/lib/buf.h"

#define MAX_CHANNEL 200      /* bytes of a channel name */
#define MAX_CHANNELS 100     /* channels one socket may be in */
#define MAX_PENDING 1000     /* auth callouts under way */
#define MAX_USER_ID 200      /* bytes of a presence member's user_id */

struct pending;

struct laravel {
    loop *l;
    sio_server *srv;
    uint64_t started_ms;
    sio_namespace *nsp;
    const struct laravel_config *cfg;
    redis_link *redis;
    size_t prefix_len;
    struct laravel_stats stats;
    lhttp *http;
    struct pending *pending;
    size_t npending;
    struct presence *presences; /* presence channels with members on this node */
    /* database "redis" with the Redis subscriber on: members live in Redis, shared by the
     * nodes (laravel_presence.c), and presence and HTTP events go out through Redis;
     * "sqlite" keeps members on each node (rtd's own store has no place for them). */
    bool shared;
    bool was_up;             /* the Redis link was up before */
    bool closing;            /* laravel_free under way: Redis replies only free their state */
    char instance[24];       /* this process's id among the nodes sharing members */
    loop_timer beat;         /* refreshes the instance's liveness key, sweeps dead nodes */
    char seen_sigs[256][65]; /* Pusher signatures accepted lately: a replay is refused */
    unsigned seen_next;
    sio_disconnect_fn *next_disconnect; /* the platform's, called after ours */
    void *next_disconnect_ud;
};

/* A presence channel's members on this node, one entry per socket, as laravel-echo-server
 * keeps them (presence-channel.ts): the member is channel_data plus socketId. */
struct member {
    char socket_id[32];
    char *user_id;       /* user_id as text: 1 and "1" are one user (the original's ==) */
    json_object *member; /* channel_data with socketId */
};

struct presence {
    struct presence *next;
    char name[MAX_CHANNEL + 1];
    struct member *m;
    size_t n, cap;
};

/* laravel.c */
void lv_emit_error(sio_socket *s, const char *channel, int status);
bool lv_header_name_ok(const char *k);
/* (event, channel, data) to the channel's sockets on this node, except socket_id. */
void lv_publish(laravel *lv, const char *room, const char *event, json_object *d,
                const char *socket_id);
/* The same for every node: with shared members (the nodes' common Redis) a Laravel message
 * PUBLISHed to <keyPrefix><room>, which every node's subscriber delivers; here only when
 * Redis refuses it or there is none. */
void lv_fanout(laravel *lv, const char *room, const char *event, json_object *d,
               const char *socket_id);

/* laravel_presence.c */
struct presence *lv_presence_find(laravel *lv, const char *name, bool create);
/* After the auth callout's 200 for a presence channel: body is its answer (NUL-ended). */
void lv_presence_join(laravel *lv, sio_socket *s, const char *channel, const char *body);
void lv_presence_leave(laravel *lv, struct presence *p, const char *socket_id);
void lv_presence_leave_all(laravel *lv, const char *socket_id);
/* The channel's users [{id, user_info}], unique by user_id, on this node. */
json_object *lv_unique_users(const struct presence *p);
/* Shared members: fn gets the channel's users as above (NULL: Redis failed). */
typedef void lv_users_fn(json_object *users, void *ud);
int lv_presence_users(laravel *lv, const char *channel, lv_users_fn *fn, void *ud);
int lv_presence_start(laravel *lv);
/* The Redis link is up (again): after a loss this node's members are stored again under a
 * new instance id, and the old one's entries (a leave lost meanwhile) are swept. */
void lv_presence_relink(laravel *lv);
void lv_presence_free(laravel *lv);

#endif
