/* counters.c: the dashboard's counters (message_counts, connection_counts, totals) kept by
 * the writer in the same transaction as the rows they count. Changes are summed in C over a
 * transaction, in a small open-addressing hash keyed by (hour, platform), and written as one
 * upsert per distinct key just before COMMIT (by the backend's flush); a group a decrement
 * empties is deleted, so the tables hold exactly what a GROUP BY over the rows would give.
 * Writer thread only. */
#include "config.h"

#include "rtd/store/store_internal.h"

static uint32_t agg_hash(const char *hour, const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < 19; i++)
        h = (h ^ (unsigned char)hour[i]) * 16777619u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* An entry's platform text (strs.data is NULL while only empty platforms were added). */
const char *store_agg_plat(const struct agg *a, const struct agg_entry *e)
{
    return e->plen ? a->strs.data + e->poff : "";
}

static bool agg_eq(const struct agg *a, const struct agg_entry *e, const char *hour, const char *p,
                   size_t n)
{
    return e->plen == n && memcmp(e->hour, hour, 19) == 0 &&
           (n == 0 || memcmp(store_agg_plat(a, e), p, n) == 0);
}

static int agg_rehash(struct agg *a, size_t nslot)
{
    uint32_t *slot = calloc(nslot, sizeof *slot);
    if (!slot)
        return -1;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = a->e[i].hash & (nslot - 1);
        while (slot[j])
            j = (j + 1) & (nslot - 1);
        slot[j] = (uint32_t)i + 1;
    }
    free(a->slot);
    a->slot = slot;
    a->nslot = nslot;
    return 0;
}

int store_agg_add(struct agg *a, const char hour[20], const char *p, size_t n, int64_t delta)
{
    if (n > UINT32_MAX)
        return -1;
    if (a->n > 0 && agg_eq(a, &a->e[a->last], hour, p, n)) {
        a->e[a->last].delta += delta;
        return 0;
    }
    uint32_t h = agg_hash(hour, p, n);
    if ((a->n + 1) * 2 > a->nslot && agg_rehash(a, a->nslot ? a->nslot * 2 : 64) < 0)
        return -1;
    size_t j = h & (a->nslot - 1);
    while (a->slot[j]) {
        struct agg_entry *e = &a->e[a->slot[j] - 1];
        if (e->hash == h && agg_eq(a, e, hour, p, n)) {
            e->delta += delta;
            a->last = a->slot[j] - 1;
            return 0;
        }
        j = (j + 1) & (a->nslot - 1);
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        struct agg_entry *e = realloc(a->e, cap * sizeof *e);
        if (!e)
            return -1;
        a->e = e;
        a->cap = cap;
    }
    size_t poff = a->strs.len;
    if (buf_append(&a->strs, p, n) < 0)
        return -1;
    struct agg_entry *e = &a->e[a->n];
    memcpy(e->hour, hour, 20);
    e->hash = h;
    e->plen = (uint32_t)n;
    e->poff = poff;
    e->delta = delta;
    a->slot[j] = (uint32_t)a->n + 1;
    a->last = a->n++;
    return 0;
}

void store_agg_reset(struct agg *a)
{
    if (a->nslot > 4096) {
        /* A batch with unusually many distinct keys: give the memory back. */
        free(a->slot);
        free(a->e);
        buf_free(&a->strs);
        a->slot = NULL;
        a->e = NULL;
        a->nslot = a->cap = 0;
    } else if (a->n > 0) {
        memset(a->slot, 0, a->nslot * sizeof *a->slot);
    }
    a->n = 0;
    a->last = 0;
    buf_reset(&a->strs);
}

void store_agg_free(struct agg *a)
{
    free(a->slot);
    free(a->e);
    buf_free(&a->strs);
}

void store_tot_close(struct totals_acc *t, int64_t duration_ms)
{
    t->sessions++;
    t->session_ms += duration_ms;
    if (duration_ms > t->session_max)
        t->session_max = duration_ms;
}

int store_flush_counters(store *st)
{
    return st->be->flush(st);
}

/* Forgets the transaction's sums and drops every binding (they point into items about to be
 * freed). */
void store_txn_reset(store *st)
{
    store_agg_reset(&st->msg_agg);
    store_agg_reset(&st->conn_agg);
    memset(&st->tot, 0, sizeof st->tot);
    st->status_set = false;
    st->be->txn_reset(st);
}
