/* util.h: small helpers of admin-fcgi: time stamps in the database's form, human-readable
 * figures, random tokens and digests (OpenSSL), constant-time comparison.
 *
 * Time stamps are UTC text 'YYYY-MM-DD HH:MM:SS.SSS' as rtd writes them. Output buffers
 * are the caller's; nothing here allocates. */
#ifndef ADMIN_UTIL_H
#define ADMIN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UTIL_TS_LEN 24 /* 'YYYY-MM-DD HH:MM:SS.SSS' + NUL */

/* Wall-clock milliseconds since the epoch. */
int64_t util_now_ms(void);
/* ms since the epoch -> 'YYYY-MM-DD HH:MM:SS.SSS'. */
void util_format_ts(int64_t ms, char out[UTIL_TS_LEN]);
/* 'YYYY-MM-DD[ HH:MM[:SS[.SSS]]]' (a 'T' may replace the space; a trailing 'Z' is allowed)
 * -> ms since the epoch. Returns 0, or -1 when s is not such a time. *date_only is set when
 * s had no time of day (may be NULL). */
int util_parse_ts(const char *s, int64_t *ms, bool *date_only);

/* "1,234,567" */
void util_format_count(long long v, char *out, size_t n);
/* "3h 04m", "5m 12s", "850 ms" */
void util_format_duration(long long ms, char *out, size_t n);
/* "12.3 MB" */
void util_format_bytes(long long v, char *out, size_t n);

/* n random bytes from the CSPRNG as 2n lowercase hex digits plus NUL in out.
 * Returns 0, or -1 when the generator failed. */
int util_random_hex(size_t n, char *out);
/* SHA-256 of s as 64 lowercase hex digits plus NUL. */
#define UTIL_SHA256_HEX 65
void util_sha256_hex(const char *s, char out[UTIL_SHA256_HEX]);
/* Equal strings, in time independent of where they differ. */
bool util_str_eq_ct(const char *a, const char *b);

/* Parses a decimal integer in [min, max] that fills all of s. Returns 0 or -1. */
int util_parse_ll(const char *s, long long min, long long max, long long *out);

#endif
