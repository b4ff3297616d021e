/* sio_rooms.c: rooms and broadcasts (see sio.h): membership, the encode-once broadcast to a
 * namespace, a room or a socket id, and the selection and iteration that the cluster layer
 * uses to serve other nodes (rooms OR-ed, except excluded, each socket taken once).
 *
 * A room keeps its members in a dense array and each socket remembers its index in each of
 * its rooms, so join, leave and disconnect are O(1) and a broadcast is a linear walk with
 * one packet reference taken per recipient. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rtd/socketio/sio_internal.h"

static struct room *room_get(sio_namespace *nsp, const char *name, bool create)
{
    struct room *r = map_get(&nsp->rooms, name);
    if (r || !create)
        return r;
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name)) || map_put(&nsp->rooms, r->name, r) < 0) {
        if (r)
            free(r->name);
        free(r);
        return NULL;
    }
    return r;
}

static int membership_index(const sio_socket *s, const char *room)
{
    for (uint32_t i = 0; i < s->nrooms; i++)
        if (strcmp(s->rooms[i].room->name, room) == 0)
            return (int)i;
    return -1;
}

int sio_join(sio_socket *s, const char *room)
{
    if (membership_index(s, room) >= 0)
        return 0;
    struct room *r = room_get(s->nsp, room, true);
    if (!r)
        return -1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        sio_socket **m = realloc(r->members, cap * sizeof *m);
        if (!m)
            return -1;
        r->members = m;
        r->cap = cap;
    }
    if (s->nrooms == s->caprooms) {
        uint32_t cap = s->caprooms ? s->caprooms * 2 : 2;
        struct membership *m = realloc(s->rooms, cap * sizeof *m);
        if (!m)
            return -1;
        s->rooms = m;
        s->caprooms = cap;
    }
    r->members[r->n] = s;
    s->rooms[s->nrooms++] = (struct membership){r, r->n};
    r->n++;
    const sio_server *srv = s->nsp->srv;
    if (srv->obs && srv->obs->joined)
        srv->obs->joined(s, room, srv->obs_ud);
    return 0;
}

static void room_remove_at(sio_socket *s, uint32_t mi)
{
    struct membership m = s->rooms[mi];
    struct room *r = m.room;
    /* swap the last member into the hole and fix its recorded index */
    sio_socket *last = r->members[--r->n];
    if (m.idx != r->n) {
        r->members[m.idx] = last;
        for (uint32_t i = 0; i < last->nrooms; i++)
            if (last->rooms[i].room == r) {
                last->rooms[i].idx = m.idx;
                break;
            }
    }
    s->rooms[mi] = s->rooms[--s->nrooms];
    if (r->n == 0) {
        map_del(&s->nsp->rooms, r->name);
        free(r->members);
        free(r->name);
        free(r);
    }
}

int sio_leave(sio_socket *s, const char *room)
{
    int i = membership_index(s, room);
    if (i >= 0) {
        room_remove_at(s, (uint32_t)i);
        const sio_server *srv = s->nsp->srv;
        if (srv->obs && srv->obs->left)
            srv->obs->left(s, room, srv->obs_ud);
    }
    return 0;
}

bool sio_in_room(const sio_socket *s, const char *room)
{
    return membership_index(s, room) >= 0;
}

size_t sio_socket_room_count(const sio_socket *s)
{
    return s->nrooms;
}

size_t sio_room_size(const sio_namespace *nsp, const char *room)
{
    struct room *r = map_get(&nsp->rooms, room);
    if (r)
        return r->n;
    return map_get(&nsp->by_id, room) ? 1 : 0;
}

static size_t broadcast_one(sio_namespace *nsp, const char *room, const sio_socket *except,
                            sio_packet *p);

size_t sio_broadcast(sio_namespace *nsp, const char *room, const sio_socket *except,
                     sio_packet *p)
{
    size_t sent = broadcast_one(nsp, room, except, p);
    sio_server *srv = nsp->srv;
    if (srv->bcast_hook) {
        const char *rooms[1] = {room}, *ex[1] = {except ? except->id : NULL};
        struct sio_target t = {rooms, room ? 1 : 0, ex, except ? 1 : 0};
        srv->bcast_hook(nsp, &t, p, srv->bcast_ud);
    }
    return sent;
}

void sio_set_broadcast_hook(sio_server *srv, sio_broadcast_hook *fn, void *ud)
{
    srv->bcast_hook = fn;
    srv->bcast_ud = ud;
}

static bool in_room_or_is(const sio_socket *s, const char *room)
{
    return strcmp(s->id, room) == 0 || membership_index(s, room) >= 0;
}

static bool excluded(const sio_socket *s, const struct sio_target *t)
{
    for (size_t i = 0; i < t->nexcept; i++)
        if (in_room_or_is(s, t->except[i]))
            return true;
    return false;
}

static int take(sio_socket *s, uint32_t gen, const struct sio_target *t, sio_socket ***arr,
                size_t *n, size_t *cap)
{
    if (s->mark == gen || excluded(s, t))
        return 0;
    s->mark = gen;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        sio_socket **g = realloc(*arr, c * sizeof *g);
        if (!g)
            return -1;
        *arr = g;
        *cap = c;
    }
    (*arr)[(*n)++] = s;
    return 0;
}

long sio_select(sio_namespace *nsp, const struct sio_target *t, sio_socket ***out)
{
    uint32_t gen = ++nsp->srv->mark_gen;
    if (gen == 0) { /* wrapped: clear every mark once */
        map_entry *e;
        for (size_t it = 0; map_next(&nsp->srv->nsps, &it, &e);) {
            sio_namespace *n2 = e->val;
            for (size_t i = 0; i < n2->nsockets; i++)
                n2->sockets[i]->mark = 0;
        }
        gen = ++nsp->srv->mark_gen;
    }
    sio_socket **arr = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    if (t->nrooms == 0) {
        for (size_t i = 0; i < nsp->nsockets && r == 0; i++)
            r = take(nsp->sockets[i], gen, t, &arr, &n, &cap);
    }
    for (size_t k = 0; k < t->nrooms && r == 0; k++) {
        struct room *room = map_get(&nsp->rooms, t->rooms[k]);
        if (room) {
            for (size_t i = 0; i < room->n && r == 0; i++)
                r = take(room->members[i], gen, t, &arr, &n, &cap);
        } else {
            sio_socket *one = map_get(&nsp->by_id, t->rooms[k]);
            if (one)
                r = take(one, gen, t, &arr, &n, &cap);
        }
    }
    if (r < 0) {
        free(arr);
        return -1;
    }
    *out = arr;
    return (long)n;
}

size_t sio_broadcast_local(sio_namespace *nsp, const struct sio_target *t, sio_packet *p)
{
    if (t->nrooms <= 1 && t->nexcept == 0)
        return broadcast_one(nsp, t->nrooms ? t->rooms[0] : NULL, NULL, p);
    sio_socket **list = NULL;
    long n = sio_select(nsp, t, &list);
    size_t sent = 0;
    for (long i = 0; i < n; i++)
        if (sio_send(list[i], p) == 0)
            sent++;
    free(list);
    return sent;
}

void sio_each_namespace(sio_server *srv, void (*fn)(sio_namespace *nsp, void *ud), void *ud)
{
    map_entry *e;
    for (size_t it = 0; map_next(&srv->nsps, &it, &e);)
        fn(e->val, ud);
}

void sio_each_room(sio_namespace *nsp, void (*fn)(const char *room, void *ud), void *ud)
{
    map_entry *e;
    for (size_t it = 0; map_next(&nsp->rooms, &it, &e);)
        fn(((struct room *)e->val)->name, ud);
    for (size_t i = 0; i < nsp->nsockets; i++)
        fn(nsp->sockets[i]->id, ud);
}

size_t sio_socket_rooms(const sio_socket *s, const char **out, size_t max)
{
    for (uint32_t i = 0; i < s->nrooms && i < max; i++)
        out[i] = s->rooms[i].room->name;
    return s->nrooms;
}

const char *sio_socket_auth_json(const sio_socket *s)
{
    return s->auth_json;
}

int64_t sio_socket_connected_ms(const sio_socket *s)
{
    return s->connected_ms;
}

int sio_socket_set_data_json(sio_socket *s, const char *json)
{
    char *copy = json ? strdup(json) : NULL;
    if (json && !copy)
        return -1;
    free(s->data_json);
    s->data_json = copy;
    return 0;
}

const char *sio_socket_data_json(const sio_socket *s)
{
    return s->data_json;
}

static size_t broadcast_one(sio_namespace *nsp, const char *room, const sio_socket *except,
                            sio_packet *p)
{
    size_t sent = 0;
    sio_socket **list;
    size_t n;
    if (!room) {
        list = nsp->sockets;
        n = nsp->nsockets;
    } else {
        struct room *r = map_get(&nsp->rooms, room);
        if (r) {
            list = r->members;
            n = r->n;
        } else {
            sio_socket *one = map_get(&nsp->by_id, room);
            if (!one || one == except)
                return 0;
            return sio_send(one, p) == 0 ? 1 : 0;
        }
    }
    /* eio_send never closes a session synchronously, so the list cannot change under us. */
    for (size_t i = 0; i < n; i++) {
        if (list[i] == except)
            continue;
        if (sio_send(list[i], p) == 0)
            sent++;
    }
    return sent;
}

void sio_rooms_leave_all(sio_socket *s)
{
    while (s->nrooms)
        room_remove_at(s, s->nrooms - 1);
    free(s->rooms);
    s->rooms = NULL;
}
