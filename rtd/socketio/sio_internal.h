/* sio_internal.h: the Socket.IO server's structures, shared by sio.c (clients, packets,
 * namespaces, sockets, dispatch) and sio_rooms.c (rooms, broadcasts, and the selection and
 * iteration the cluster layer uses). Nothing outside rtd/socketio/ includes this. */
#ifndef RTD_SIO_INTERNAL_H
#define RTD_SIO_INTERNAL_H

#include <json-c/json.h>

#include "rtd/lib/map.h"
#include "rtd/lib/util.h"
#include "rtd/socketio/sio.h"
#include "rtd/socketio/sio_parser.h"

typedef struct sio_client sio_client;

struct handler {
    char *event;
    sio_event_fn *fn;
    void *ud;
};

struct room {
    char *name;
    sio_socket **members;
    size_t n, cap;
};

struct membership {
    struct room *room;
    size_t idx; /* position in room->members */
};

struct pending_ack {
    struct pending_ack *next;
    sio_socket *s;
    int64_t id;
    sio_ack_fn *fn;
    void *ud;
    loop_timer timer;
};

struct sio_namespace {
    sio_server *srv;
    char *name;
    sio_authorize_fn *authorize;
    void *authorize_ud;
    sio_authorize_cancel_fn *authorize_cancel;
    sio_connection_fn *on_connection;
    void *connection_ud;
    sio_disconnect_fn *on_disconnect;
    void *disconnect_ud;
    map handlers;          /* event name -> struct handler */
    struct handler *any;
    sio_socket **sockets;  /* dense */
    size_t nsockets, capsockets;
    map by_id;             /* socket id -> sio_socket */
    map rooms;             /* name -> struct room */
};

struct sio_socket {
    sio_client *client;
    sio_namespace *nsp;
    char *id;              /* idbuf, or for v3 sockets of other namespaces "<nsp>#<sid>" */
    char idbuf[UTIL_ID_LEN + 1];
    char pid[UTIL_ID_LEN + 1];    /* the private id of recovery, "" when off */
    size_t idx;            /* position in nsp->sockets */
    struct membership *rooms;
    uint32_t nrooms, caprooms;
    int64_t next_ack;
    struct pending_ack *acks;
    void *user;
    uint32_t mark;         /* sio_select's generation, to take each socket once */
    char *auth_json;
    char *data_json;
    int64_t connected_ms;
    bool restoring;        /* recovery: CONNECT not answered yet, sends are held */
    sio_packet **held;
    size_t nheld, capheld;
    sio_socket *wait_next;        /* on its client's waiting list (SIO_AUTH_PENDING) */
    struct json_object *wait_auth; /* the CONNECT's auth, for the connection callback */
};

/* A binary packet waiting for its attachments. */
struct reassembly {
    sio_header hdr;
    char *nsp;
    struct json_object *payload;
    sio_bin *bins;
    unsigned char **copies;
    size_t got;
    size_t bytes;
};

struct sio_client {
    sio_server *srv;
    eio_session *es;
    sio_socket **sockets;  /* one per connected namespace */
    uint32_t n, cap;
    loop_timer connect_timer;
    struct reassembly *pending;
    sio_socket *waiting;   /* CONNECTs whose authorization is pending */
    uint32_t nwaiting;
    struct sio_pending_restore *prestore; /* a CONNECT waiting for the restore hook */
};

/* A CONNECT whose restore hook answers later (sio_restore_answer). */
struct sio_pending_restore {
    sio_client *c; /* NULL once the client is gone */
    sio_socket *s; /* authorized, not yet in its namespace */
    char name[256];
    unsigned refs;
};

struct sio_server {
    loop *l;
    eio_server *eio;
    struct sio_config cfg;
    map nsps;
    json_tokener *tok;
    size_t nsockets;
    sio_upgrade_fn *on_upgrade;
    void *upgrade_ud;
    sio_broadcast_hook *bcast_hook;
    void *bcast_ud;
    uint32_t mark_gen;
    sio_restore_fn *restore;
    sio_close_hook *close_hook;
    void *recovery_ud;
    const struct sio_observer *obs; /* NULL: nobody watches */
    void *obs_ud;
};

/* sio_recovery.c; sio_send_connect (sio.c) answers CONNECT with {sid, pid} */
int sio_send_connect(sio_socket *s);
int sio_recovery_hold(sio_socket *s, sio_packet *p);
void sio_recovery_free(sio_socket *s);

/* sio_rooms.c: a leaving socket's memberships all go (sio.c calls it when a socket closes). */
void sio_rooms_leave_all(sio_socket *s);

#endif
