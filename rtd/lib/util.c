/* util.c: random ids, base64 and time stamps (see util.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "rtd/lib/util.h"

int util_random_bytes(void *p, size_t n)
{
    return RAND_bytes(p, (int)n) == 1 ? 0 : -1;
}

int util_random_id(char out[UTIL_ID_LEN + 1])
{
    unsigned char raw[15];
    unsigned char enc[21];
    if (util_random_bytes(raw, sizeof raw) < 0)
        return -1;
    EVP_EncodeBlock(enc, raw, sizeof raw); /* 15 bytes: 20 characters, no padding */
    for (int i = 0; i < UTIL_ID_LEN; i++)
        out[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : (char)enc[i];
    out[UTIL_ID_LEN] = '\0';
    return 0;
}

int util_base64_encode(buf *out, const void *in, size_t n)
{
    size_t need = 4 * ((n + 2) / 3) + 1;
    if (buf_reserve(out, need) < 0)
        return -1;
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, in, (int)n);
    out->len += (size_t)w;
    return 0;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int util_base64_decode(buf *out, const char *in, size_t n)
{
    if (n % 4 != 0)
        return -1;
    /* Validate first (EVP_DecodeBlock is lax about padding and whitespace). */
    size_t pad = 0;
    if (n >= 1 && in[n - 1] == '=')
        pad++;
    if (n >= 2 && in[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (b64val((unsigned char)in[i]) < 0)
            return -1;
    if (n == 0)
        return 0;
    if (buf_reserve(out, n / 4 * 3) < 0)
        return -1;
    int w = EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)in,
                            (int)n);
    if (w < 0)
        return -1;
    out->len += (size_t)w - pad;
    return 0;
}

static void split_time(int64_t ms, struct tm *tm, int *milli)
{
    time_t secs = (time_t)(ms / 1000);
    *milli = (int)(ms % 1000);
    if (*milli < 0) {
        *milli += 1000;
        secs--;
    }
    gmtime_r(&secs, tm);
}

static char *put_num(char *p, unsigned v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

static void format_time(int64_t ms, char *out, char date_sep, const char *tail)
{
    struct tm tm;
    int milli;
    split_time(ms, &tm, &milli);
    char *p = out;
    p = put_num(p, (unsigned)(tm.tm_year + 1900) % 10000, 4);
    *p++ = '-';
    p = put_num(p, (unsigned)tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_num(p, (unsigned)tm.tm_mday, 2);
    *p++ = date_sep;
    p = put_num(p, (unsigned)tm.tm_hour, 2);
    *p++ = ':';
    p = put_num(p, (unsigned)tm.tm_min, 2);
    *p++ = ':';
    p = put_num(p, (unsigned)tm.tm_sec, 2);
    *p++ = '.';
    p = put_num(p, (unsigned)milli, 3);
    strcpy(p, tail);
}

int64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_format_db_time(int64_t ms, char out[24])
{
    format_time(ms, out, ' ', "");
}

void util_format_iso_time(int64_t ms, char out[25])
{
    format_time(ms, out, 'T', "Z");
}

int util_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !(*s == '-' || (*s >= '0' && *s <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
