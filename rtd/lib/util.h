/* util.h: small helpers with no better home: secure random ids, base64 and time stamps.
 * Random bytes come from OpenSSL's CSPRNG; base64 from OpenSSL too (no hand-written crypto). */
#ifndef RTD_UTIL_H
#define RTD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/lib/buf.h"

/* Fills p with n bytes from the CSPRNG. Returns 0, or -1 if the generator failed. */
int util_random_bytes(void *p, size_t n);
/* A 20-character id from 15 random bytes, base64url without padding (as the reference
 * server's base64id), NUL-terminated. */
#define UTIL_ID_LEN 20
int util_random_id(char out[UTIL_ID_LEN + 1]);

/* Standard base64 with padding. encode appends to out; decode appends the bytes of in to
 * out and returns -1 for a length that is not a multiple of 4, characters outside the
 * alphabet or misplaced padding. Like Node.js, it ignores the unused low bits of the last
 * character ("Zh==" decodes as "Zg=="). */
int util_base64_encode(buf *out, const void *in, size_t n);
int util_base64_decode(buf *out, const char *in, size_t n);

/* Wall clock in ms since the epoch (not cached; the loop keeps its own monotonic clock). */
int64_t util_wall_ms(void);
/* Wall-clock ms as 'YYYY-MM-DD HH:MM:SS.SSS' (the database's form) and as ISO-8601
 * 'YYYY-MM-DDTHH:MM:SS.SSSZ'; both UTC and NUL-terminated. */
void util_format_db_time(int64_t ms, char out[24]);
void util_format_iso_time(int64_t ms, char out[25]);

/* Parses a decimal integer in [min, max] that fills all of s. Returns 0 or -1. */
int util_parse_int(const char *s, long long min, long long max, long long *out);

#endif
