/* rtload_hist.c: log-linear latency histogram and byte buffers for rtload.
 *
 * A value below 2^HIST_SUB_BITS has its own bucket; above, each power of two is split into
 * 2^HIST_SUB_BITS equal buckets, so a bucket is at most 1/128 of its value wide. Recording
 * is a count-leading-zeros, a shift and an increment. */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>

#include "tools/rtload.h"

static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e > HIST_MAX_EXP) {
        e = HIST_MAX_EXP;
        v = (2ull << HIST_MAX_EXP) - 1;
    }
    unsigned shift = e - HIST_SUB_BITS;
    return ((shift + 1) << HIST_SUB_BITS) + (unsigned)((v >> shift) - HIST_SUB);
}

/* The lowest value of bucket i and its width. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < HIST_SUB) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t m = (i & (HIST_SUB - 1)) + HIST_SUB;
    *lo = m << shift;
    *width = 1ull << shift;
}

void hist_init(hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hist_add(hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t hist_quantile(const hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t lo, w;
            bucket_range(i, &lo, &w);
            uint64_t v = lo + w / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

/* ---- byte buffers ---- */

int bbuf_reserve(bbuf *b, size_t extra)
{
    size_t need = (size_t)b->len + extra;
    if (need <= b->cap)
        return 0;
    if (need > UINT32_MAX / 2)
        return -1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = (uint32_t)cap;
    return 0;
}

int bbuf_put(bbuf *b, const void *data, size_t n)
{
    if (bbuf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, data, n);
    b->len += (uint32_t)n;
    return 0;
}

void bbuf_free(bbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->off = b->cap = 0;
}
