/* map.h: a string-keyed hash map (open addressing, linear probing, backward-shift delete).
 *
 * Keys are not copied: an entry's key must stay valid and unchanged while the entry is in
 * the map (callers use a string stored in the value itself, such as a session's id).
 * Values are opaque pointers the map never frees. */
#ifndef RTD_MAP_H
#define RTD_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct map_entry {
    const char *key;
    void *val;
    uint32_t hash;
} map_entry;

typedef struct map {
    map_entry *slots;
    size_t cap; /* power of two, or 0 */
    size_t len;
} map;

#define MAP_INIT {NULL, 0, 0}

void map_free(map *m);
void *map_get(const map *m, const char *key);
/* key[0..klen) may contain NUL bytes; such a key matches no entry (entries are C strings). */
void *map_getn(const map *m, const char *key, size_t klen);
/* Inserts or replaces. Returns 0, or -1 when out of memory. */
int map_put(map *m, const char *key, void *val);
/* Removes key and returns its value, or NULL. */
void *map_del(map *m, const char *key);

/* Iteration: for (size_t i = 0; map_next(m, &i, &e);) ... Do not modify while iterating. */
int map_next(const map *m, size_t *iter, map_entry **e);

#endif
