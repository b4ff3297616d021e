/* sbuf.h: admin-fcgi's growable string buffer.
 *
 * An sbuf owns its storage: data is malloc'ed (NULL while nothing was ever appended) and
 * always NUL-terminated once non-NULL. When an append cannot allocate, the buffer keeps
 * what it had and remembers the failure in `failed`, so a caller can append a whole page
 * and check once at the end. sbuf_free releases the storage; sbuf_take hands it over. */
#ifndef ADMIN_SBUF_H
#define ADMIN_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

#define SBUF_INIT                                                                                  \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
/* Each returns 0, or -1 when memory ran out (and sets b->failed). */
int sbuf_append(struct sbuf *b, const void *p, size_t n);
int sbuf_puts(struct sbuf *b, const char *s);
int sbuf_putc(struct sbuf *b, char c);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The contents as a malloc'ed NUL-terminated string the caller frees (never NULL unless
 * memory ran out); the buffer is left empty. */
char *sbuf_take(struct sbuf *b);
/* The contents, or "" while empty; valid until the next change. */
const char *sbuf_str(const struct sbuf *b);

#endif
