/* map.c: string-keyed open-addressing hash map (see map.h). FNV-1a hashing is enough: keys
 * are random ids or names chosen by clients, and probing is bounded by a 3/4 load factor. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rtd/lib/map.h"

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h ? h : 1;
}

void map_free(map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

static map_entry *find(const map *m, const char *key, size_t klen, uint32_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        map_entry *e = &m->slots[i];
        if (!e->key)
            return NULL;
        /* key may hold NUL bytes (names from the network): compare lengths, then bytes */
        if (e->hash == h && strnlen(e->key, klen + 1) == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
}

void *map_getn(const map *m, const char *key, size_t klen)
{
    map_entry *e = find(m, key, klen, hash_bytes(key, klen));
    return e ? e->val : NULL;
}

void *map_get(const map *m, const char *key)
{
    return map_getn(m, key, strlen(key));
}

static void insert_slot(map_entry *slots, size_t cap, map_entry e)
{
    size_t mask = cap - 1;
    size_t i = e.hash & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i] = e;
}

static int grow(map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    map_entry *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            insert_slot(slots, cap, m->slots[i]);
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int map_put(map *m, const char *key, void *val)
{
    size_t klen = strlen(key);
    uint32_t h = hash_bytes(key, klen);
    map_entry *e = find(m, key, klen, h);
    if (e) {
        e->key = key;
        e->val = val;
        return 0;
    }
    if ((m->len + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return -1;
    insert_slot(m->slots, m->cap, (map_entry){key, val, h});
    m->len++;
    return 0;
}

void *map_del(map *m, const char *key)
{
    size_t klen = strlen(key);
    map_entry *e = find(m, key, klen, hash_bytes(key, klen));
    if (!e)
        return NULL;
    void *val = e->val;
    size_t mask = m->cap - 1;
    size_t i = (size_t)(e - m->slots);
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (!m->slots[j].key)
            break;
        size_t home = m->slots[j].hash & mask;
        /* Move j into the hole at i if its home is not in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (map_entry){0};
    m->len--;
    return val;
}

int map_next(const map *m, size_t *iter, map_entry **e)
{
    while (*iter < m->cap) {
        map_entry *s = &m->slots[(*iter)++];
        if (s->key) {
            *e = s;
            return 1;
        }
    }
    return 0;
}
