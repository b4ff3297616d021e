/* buf.h: growable byte buffers.
 *
 * A buf owns its storage (data is malloc'ed, NULL while empty). Appends grow it
 * geometrically, so a buffer that is reused (reset, not freed) stops allocating once it has
 * reached its working size. Every append returns 0, or -1 when memory runs out (the buffer is
 * then left as it was). */
#ifndef RTD_BUF_H
#define RTD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;

#define BUF_INIT {NULL, 0, 0}

void buf_free(buf *b);
static inline void buf_reset(buf *b)
{
    b->len = 0;
}
int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *p, size_t n);
int buf_puts(buf *b, const char *s);
int buf_putc(buf *b, int c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends s as the body of a JSON string (no surrounding quotes), escaping as JSON needs. */
int buf_json_escape(buf *b, const char *s, size_t n);
/* Drops the first n bytes. */
void buf_consume(buf *b, size_t n);
/* Makes sure data is NUL-terminated after len (not counted in len). */
int buf_terminate(buf *b);

#endif
