/* util.c: time stamps, figures, tokens and digests (see util.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "admin-fcgi/util.h"

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_format_ts(int64_t ms, char out[UTIL_TS_LEN])
{
    time_t t = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        t -= 1;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    memcpy(out, buf, UTIL_TS_LEN - 1);
    out[UTIL_TS_LEN - 1] = '\0';
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int util_parse_ts(const char *s, int64_t *ms, bool *date_only)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    bool donly = true;
    if (*p == ' ' || *p == 'T') {
        p++;
        donly = false;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec))
                return -1;
            if (*p == '.') {
                p++;
                int nd = 0;
                while (isdigit((unsigned char)*p)) {
                    if (nd < 3)
                        frac = frac * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (!nd)
                    return -1;
                for (; nd < 3; nd++)
                    frac *= 10;
            }
        }
        if (*p == 'Z')
            p++;
    }
    if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    /* timegm normalises 31 February into March; refuse dates that do not exist. */
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != mo - 1)
        return -1;
    *ms = (int64_t)t * 1000 + frac;
    if (date_only)
        *date_only = donly;
    return 0;
}

void util_format_count(long long v, char *out, size_t n)
{
    char digits_buf[32];
    snprintf(digits_buf, sizeof digits_buf, "%llu",
             v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    size_t len = strlen(digits_buf), o = 0;
    if (v < 0 && o + 1 < n)
        out[o++] = '-';
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        if (i && (len - i) % 3 == 0 && o + 2 < n)
            out[o++] = ',';
        out[o++] = digits_buf[i];
    }
    out[o] = '\0';
}

void util_format_duration(long long ms, char *out, size_t n)
{
    if (ms < 0)
        ms = 0;
    long long s = ms / 1000;
    if (ms < 1000)
        snprintf(out, n, "%lld ms", ms);
    else if (s < 60)
        snprintf(out, n, "%lld.%llds", s, (ms % 1000) / 100);
    else if (s < 3600)
        snprintf(out, n, "%lldm %02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, n, "%lldh %02lldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, n, "%lldd %02lldh", s / 86400, (s % 86400) / 3600);
}

void util_format_bytes(long long v, char *out, size_t n)
{
    static const char *units[] = {"B", "KB", "MB", "GB", "TB"};
    double d = (double)v;
    int u = 0;
    while (d >= 1000.0 && u < 4) {
        d /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%lld B", v);
    else
        snprintf(out, n, "%.1f %s", d, units[u]);
}

int util_random_hex(size_t n, char *out)
{
    unsigned char raw[64];
    if (n > sizeof raw || RAND_bytes(raw, (int)n) != 1)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

void util_sha256_hex(const char *s, char out[UTIL_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
        out[0] = '\0';
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

bool util_str_eq_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

int util_parse_ll(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
