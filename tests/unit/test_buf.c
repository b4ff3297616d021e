/* test_buf.c: unit tests for the small building blocks: growable buffers (rtd/lib/buf.c), the
 * string-keyed hash map (rtd/lib/map.c, including probe chains, wrap-around and real hash
 * collisions), the helpers of rtd/lib/util.c (random ids, base64, time stamps, integers) and
 * the log file's reopening (rtd/lib/log.c). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <json-c/json.h>

#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/map.h"
#include "rtd/lib/util.h"

/* ---- helpers -------------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* Asserts that b holds exactly the n bytes of want. */
static void assert_buf(const buf *b, const void *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_true(b->cap >= b->len);
    if (n)
        assert_memory_equal(b->data, want, n);
}

static void assert_buf_str(const buf *b, const char *want)
{
    assert_buf(b, want, strlen(want));
}

/* ---- buf ------------------------------------------------------------------------------ */

static void test_buf_append(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_append(&b, "x", 0), 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    assert_int_equal(buf_append(&b, "hello", 5), 0);
    assert_buf_str(&b, "hello");
    assert_int_equal(buf_append(&b, ", world", 7), 0);
    assert_buf_str(&b, "hello, world");
    assert_int_equal(buf_puts(&b, "!"), 0);
    assert_int_equal(buf_putc(&b, '?'), 0);
    assert_int_equal(buf_putc(&b, 0), 0);
    assert_buf(&b, "hello, world!?\0", 15);

    /* Grows over many reallocations and keeps every byte. */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    unsigned char ref[70000];
    for (size_t i = 0; i < sizeof ref; i++)
        ref[i] = (unsigned char)(i * 131 + (i >> 8));
    size_t off = 0;
    while (off < sizeof ref) {
        size_t n = 1 + rng() % 3000;
        if (n > sizeof ref - off)
            n = sizeof ref - off;
        assert_int_equal(buf_append(&b, ref + off, n), 0);
        off += n;
        assert_buf(&b, ref, off);
    }
    /* A reset buffer keeps its storage. */
    char *data = b.data;
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(buf_append(&b, ref, sizeof ref), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_free(&b); /* twice is fine */
}

static void test_buf_reserve(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_int_equal(buf_reserve(&b, 100), 0);
    assert_true(b.cap >= 100);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_puts(&b, "abc"), 0);
    for (size_t extra = 1; extra < 5000; extra += 97) {
        assert_int_equal(buf_reserve(&b, extra), 0);
        assert_true(b.cap - b.len >= extra);
    }
    /* An impossible request fails and leaves the buffer as it was. */
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), -1);
    assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), -1);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_buf_str(&b, "abc");
    buf_free(&b);
}

static void test_buf_printf(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_printf(&b, "%d-%s-%c", 42, "x", 'y'), 0);
    assert_buf_str(&b, "42-x-y");
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_buf_str(&b, "42-x-y");
    assert_int_equal(buf_printf(&b, "|%05.1f|%zu", 3.25, (size_t)7), 0);
    assert_buf_str(&b, "42-x-y|003.2|7");
    buf_free(&b);
}

/* Output around and far over the 256-byte stack buffer buf_vprintf tries first, appended
 * after existing content. */
static void test_buf_printf_long(void **state)
{
    static const size_t lens[] = {254, 255, 256, 257, 300, 1000, 5000, 100000};
    char *s = malloc(100001);
    char *want = malloc(2 * 100001 + 64);
    assert_non_null(s);
    assert_non_null(want);
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        size_t n = lens[k];
        for (size_t i = 0; i < n; i++)
            s[i] = (char)('a' + (i * 7 + k) % 26);
        s[n] = '\0';
        buf b = BUF_INIT;
        assert_int_equal(buf_puts(&b, "pre:"), 0);
        assert_int_equal(buf_printf(&b, "[%s]%d", s, 12345), 0);
        int w = snprintf(want, 100064, "pre:[%s]%d", s, 12345);
        assert_buf(&b, want, (size_t)w);
        /* And once more, so the long path appends after a long prefix too. */
        assert_int_equal(buf_printf(&b, "%s", s), 0);
        memcpy(want + w, s, n);
        assert_buf(&b, want, (size_t)w + n);
        buf_free(&b);
    }
    free(s);
    free(want);
}

static void check_escape(const char *in, size_t n, const char *want)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_json_escape(&b, in, n), 0);
    assert_buf_str(&b, want);
    /* Appends after what is there. */
    buf_reset(&b);
    assert_int_equal(buf_puts(&b, "<<"), 0);
    assert_int_equal(buf_json_escape(&b, in, n), 0);
    assert_int_equal(b.len, 2 + strlen(want));
    assert_memory_equal(b.data, "<<", 2);
    assert_memory_equal(b.data + 2, want, strlen(want));
    buf_free(&b);
}

static void test_json_escape_basic(void **state)
{
    check_escape("", 0, "");
    check_escape("plain text", 10, "plain text");
    check_escape("\"", 1, "\\\"");
    check_escape("\\", 1, "\\\\");
    check_escape("say \"hi\"", 8, "say \\\"hi\\\"");
    check_escape("C:\\dir\\", 7, "C:\\\\dir\\\\");
    check_escape("a\nb\rc\td", 7, "a\\nb\\rc\\td");
    check_escape("\b\f", 2, "\\b\\f");
    check_escape("/", 1, "/");
    check_escape("\x7f", 1, "\x7f");
    /* Only n bytes are read, NUL included. */
    check_escape("a\0b", 3, "a\\u0000b");
    check_escape("abcdef", 3, "abc");
    /* Non-ASCII (UTF-8) passes through unchanged. */
    check_escape("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
                 "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_json_escape_controls(void **state)
{
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    for (int c = 0; c < 32; c++) {
        char in[3] = {'x', (char)c, 'y'};
        char w[16];
        snprintf(w, sizeof w, "x%sy", want[c]);
        check_escape(in, 3, w);
        check_escape(in + 1, 1, want[c]);
    }
    /* Every byte 0x20..0xFF other than the quote and the backslash is left alone. */
    for (int c = 0x20; c < 0x100; c++) {
        if (c == '"' || c == '\\')
            continue;
        char in[1] = {(char)c};
        buf b = BUF_INIT;
        assert_int_equal(buf_json_escape(&b, in, 1), 0);
        assert_buf(&b, in, 1);
        buf_free(&b);
    }
}

/* Whatever ASCII goes in, json-c reads the same string back out of the quoted escape. */
static void test_json_escape_round_trip(void **state)
{
    for (int round = 0; round < 300; round++) {
        char in[64];
        size_t n = rng() % sizeof in;
        for (size_t i = 0; i < n; i++)
            in[i] = (char)(round < 128 ? (i == 0 ? round : (int)(rng() % 128))
                                       : (int)(1 + rng() % 127));
        buf b = BUF_INIT;
        assert_int_equal(buf_putc(&b, '"'), 0);
        assert_int_equal(buf_json_escape(&b, in, n), 0);
        assert_int_equal(buf_putc(&b, '"'), 0);
        assert_int_equal(buf_terminate(&b), 0);
        struct json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        struct json_object *v = json_tokener_parse_ex(tok, b.data, (int)b.len);
        assert_non_null(v);
        assert_true(json_object_is_type(v, json_type_string));
        assert_int_equal(json_object_get_string_len(v), n);
        if (n)
            assert_memory_equal(json_object_get_string(v), in, n);
        json_object_put(v);
        json_tokener_free(tok);
        buf_free(&b);
    }
}

static void test_buf_consume(void **state)
{
    buf b = BUF_INIT;
    buf_consume(&b, 0);
    buf_consume(&b, 10);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_puts(&b, "0123456789"), 0);
    buf_consume(&b, 0);
    assert_buf_str(&b, "0123456789");
    buf_consume(&b, 3);
    assert_buf_str(&b, "3456789");
    buf_consume(&b, 1);
    assert_buf_str(&b, "456789");
    assert_int_equal(buf_puts(&b, "ab"), 0);
    assert_buf_str(&b, "456789ab");
    buf_consume(&b, 7);
    assert_buf_str(&b, "b");
    buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_puts(&b, "xyz"), 0);
    buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    /* Overlapping move of a long tail. */
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_putc(&b, 'A' + i % 26), 0);
    buf_consume(&b, 10);
    assert_int_equal(b.len, 990);
    for (int i = 0; i < 990; i++)
        assert_int_equal(b.data[i], 'A' + (i + 10) % 26);
    buf_free(&b);
}

static void test_buf_terminate(void **state)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_terminate(&b), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.data[0], '\0');
    assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(buf_terminate(&b), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    /* At an exact capacity boundary the terminator still fits. */
    buf_reset(&b);
    while (b.len < b.cap)
        assert_int_equal(buf_putc(&b, 'z'), 0);
    size_t len = b.len;
    assert_int_equal(buf_terminate(&b), 0);
    assert_int_equal(b.len, len);
    assert_true(b.cap > len);
    assert_int_equal(b.data[len], '\0');
    assert_int_equal(strlen(b.data), len);
    buf_free(&b);
}

/* ---- map ------------------------------------------------------------------------------ */

/* The hash map.c stores for key, read back from a map holding key alone. */
static uint32_t key_hash(const char *key)
{
    map m = MAP_INIT;
    assert_int_equal(map_put(&m, key, (void *)key), 0);
    size_t it = 0;
    map_entry *e;
    assert_true(map_next(&m, &it, &e));
    uint32_t h = e->hash;
    map_free(&m);
    return h;
}

static void test_map_basic(void **state)
{
    map m = MAP_INIT;
    int a = 1, b = 2, c = 3;
    assert_null(map_get(&m, "a"));
    assert_null(map_del(&m, "a"));
    assert_int_equal(map_put(&m, "alpha", &a), 0);
    assert_int_equal(map_put(&m, "beta", &b), 0);
    assert_int_equal(m.len, 2);
    assert_ptr_equal(map_get(&m, "alpha"), &a);
    assert_ptr_equal(map_get(&m, "beta"), &b);
    assert_null(map_get(&m, "gamma"));
    assert_null(map_get(&m, ""));
    /* Keys are whole strings: no prefix or extension matches. */
    assert_null(map_get(&m, "alph"));
    assert_null(map_get(&m, "alphas"));
    assert_ptr_equal(map_getn(&m, "alphabet", 5), &a);
    assert_ptr_equal(map_getn(&m, "beta,more", 4), &b);
    assert_null(map_getn(&m, "alphabet", 4));
    assert_null(map_getn(&m, "alphabet", 6));

    /* Replacing keeps one entry and takes the new key pointer. */
    char key2[] = "alpha";
    assert_int_equal(map_put(&m, key2, &c), 0);
    assert_int_equal(m.len, 2);
    assert_ptr_equal(map_get(&m, "alpha"), &c);
    size_t it = 0;
    map_entry *e;
    int seen = 0;
    while (map_next(&m, &it, &e)) {
        if (strcmp(e->key, "alpha") == 0)
            assert_ptr_equal(e->key, key2);
        seen++;
    }
    assert_int_equal(seen, 2);

    /* The empty string is a key like any other. */
    assert_int_equal(map_put(&m, "", &a), 0);
    assert_ptr_equal(map_get(&m, ""), &a);
    assert_int_equal(m.len, 3);

    assert_ptr_equal(map_del(&m, "alpha"), &c);
    assert_null(map_del(&m, "alpha"));
    assert_null(map_get(&m, "alpha"));
    assert_ptr_equal(map_get(&m, "beta"), &b);
    assert_ptr_equal(map_del(&m, ""), &a);
    assert_int_equal(m.len, 1);
    map_free(&m);
    assert_null(m.slots);
    assert_int_equal(m.len, 0);
    assert_null(map_get(&m, "beta"));
    assert_int_equal(map_put(&m, "beta", &b), 0); /* usable again after free */
    assert_ptr_equal(map_get(&m, "beta"), &b);
    map_free(&m);
}

#define NKEYS 3000

static char keys[NKEYS][16];
static int vals[NKEYS];

static void make_keys(void)
{
    for (int i = 0; i < NKEYS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        vals[i] = i;
    }
}

static void assert_present(const map *m, const bool *present)
{
    size_t n = 0;
    for (int i = 0; i < NKEYS; i++) {
        if (present[i]) {
            assert_ptr_equal(map_get(m, keys[i]), &vals[i]);
            n++;
        } else {
            assert_null(map_get(m, keys[i]));
        }
    }
    assert_int_equal(m->len, n);
}

static void test_map_many(void **state)
{
    make_keys();
    static bool present[NKEYS];
    memset(present, 0, sizeof present);
    map m = MAP_INIT;
    for (int i = 0; i < NKEYS; i++) {
        assert_int_equal(map_put(&m, keys[i], &vals[i]), 0);
        present[i] = true;
        /* Load factor stays at or under 3/4, capacity a power of two. */
        assert_true(m.len * 4 <= m.cap * 3);
        assert_int_equal(m.cap & (m.cap - 1), 0);
    }
    assert_present(&m, present);
    /* Replace every third value with itself: nothing changes in size. */
    for (int i = 0; i < NKEYS; i += 3)
        assert_int_equal(map_put(&m, keys[i], &vals[i]), 0);
    assert_int_equal(m.len, NKEYS);

    /* Delete in random order; after every deletion every remaining key is still found and
     * the deleted ones are gone. */
    int order[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        order[i] = i;
    for (int i = NKEYS - 1; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int k = 0; k < NKEYS; k++) {
        int i = order[k];
        assert_ptr_equal(map_del(&m, keys[i]), &vals[i]);
        present[i] = false;
        if (k % 7 == 0 || NKEYS - k < 200)
            assert_present(&m, present);
        /* Re-insert some deleted keys along the way. */
        if (k % 11 == 0) {
            int r = order[rng() % (uint64_t)(k + 1)];
            if (!present[r]) {
                assert_int_equal(map_put(&m, keys[r], &vals[r]), 0);
                present[r] = true;
                assert_present(&m, present);
            }
        }
    }
    for (int i = 0; i < NKEYS; i++)
        if (present[i])
            assert_ptr_equal(map_del(&m, keys[i]), &vals[i]);
    assert_int_equal(m.len, 0);
    for (size_t i = 0; i < m.cap; i++)
        assert_null(m.slots[i].key);
    map_free(&m);
}

/* Keys chosen by their home slot in a 16-slot table, so they form one long probe chain that
 * wraps from the last slot to the first: 4 keys at home 14, 3 at home 15, 2 at home 0, 1 at
 * home 1 and 2 at home 4, all twelve fitting in 16 slots without growing. Every deletion of
 * every key from every insertion order tried must leave all the others findable. */
#define NCLUSTER 12

static char ckeys[NCLUSTER][16];
static int cvals[NCLUSTER];

static void make_cluster(void)
{
    static const int homes[NCLUSTER] = {14, 14, 14, 14, 15, 15, 15, 0, 0, 1, 4, 4};
    int filled[NCLUSTER] = {0};
    char cand[16];
    for (int i = 0; i < 1000000; i++) {
        snprintf(cand, sizeof cand, "c%d", i);
        uint32_t home = key_hash(cand) & 15;
        for (int k = 0; k < NCLUSTER; k++) {
            if (!filled[k] && homes[k] == (int)home) {
                memcpy(ckeys[k], cand, sizeof cand);
                filled[k] = 1;
                break;
            }
        }
        int done = 1;
        for (int k = 0; k < NCLUSTER; k++)
            done &= filled[k];
        if (done)
            break;
    }
    for (int k = 0; k < NCLUSTER; k++) {
        assert_true(filled[k]);
        cvals[k] = k;
    }
}

static void check_cluster_order(const int *ins, bool check_layout)
{
    map m = MAP_INIT;
    for (int k = 0; k < NCLUSTER; k++)
        assert_int_equal(map_put(&m, ckeys[ins[k]], &cvals[ins[k]]), 0);
    assert_int_equal(m.cap, 16);
    if (check_layout) {
        /* The chain really is displaced and wraps around. */
        int displaced = 0, wrapped = 0;
        for (size_t i = 0; i < m.cap; i++) {
            if (!m.slots[i].key)
                continue;
            size_t home = m.slots[i].hash & 15;
            displaced += home != i;
            wrapped += home >= 14 && i <= 4;
        }
        assert_true(displaced >= 6);
        assert_true(wrapped >= 1);
    }
    /* Delete in a random order, checking every survivor after each step. */
    bool present[NCLUSTER];
    for (int k = 0; k < NCLUSTER; k++)
        present[k] = true;
    int del[NCLUSTER];
    memcpy(del, ins, sizeof del);
    for (int i = NCLUSTER - 1; i > 0; i--) {
        int j = (int)(rng() % (uint64_t)(i + 1));
        int t = del[i];
        del[i] = del[j];
        del[j] = t;
    }
    for (int s = 0; s < NCLUSTER; s++) {
        assert_ptr_equal(map_del(&m, ckeys[del[s]]), &cvals[del[s]]);
        present[del[s]] = false;
        assert_int_equal(m.len, (size_t)(NCLUSTER - 1 - s));
        for (int k = 0; k < NCLUSTER; k++) {
            if (present[k])
                assert_ptr_equal(map_get(&m, ckeys[k]), &cvals[k]);
            else
                assert_null(map_get(&m, ckeys[k]));
        }
    }
    map_free(&m);
}

static void test_map_probe_chain_deletion(void **state)
{
    make_cluster();
    int ins[NCLUSTER];
    for (int k = 0; k < NCLUSTER; k++)
        ins[k] = k;
    check_cluster_order(ins, true);
    /* Each single key deleted from the full chain. */
    for (int victim = 0; victim < NCLUSTER; victim++) {
        map m = MAP_INIT;
        for (int k = 0; k < NCLUSTER; k++)
            assert_int_equal(map_put(&m, ckeys[k], &cvals[k]), 0);
        assert_ptr_equal(map_del(&m, ckeys[victim]), &cvals[victim]);
        for (int k = 0; k < NCLUSTER; k++) {
            if (k == victim)
                assert_null(map_get(&m, ckeys[k]));
            else
                assert_ptr_equal(map_get(&m, ckeys[k]), &cvals[k]);
        }
        /* Re-inserting the victim works and does not duplicate anything. */
        assert_int_equal(map_put(&m, ckeys[victim], &cvals[victim]), 0);
        assert_int_equal(m.len, NCLUSTER);
        for (int k = 0; k < NCLUSTER; k++)
            assert_ptr_equal(map_get(&m, ckeys[k]), &cvals[k]);
        map_free(&m);
    }
    /* Many random insertion and deletion orders. */
    for (int round = 0; round < 500; round++) {
        for (int i = NCLUSTER - 1; i > 0; i--) {
            int j = (int)(rng() % (uint64_t)(i + 1));
            int t = ins[i];
            ins[i] = ins[j];
            ins[j] = t;
        }
        check_cluster_order(ins, false);
    }
}

/* Distinct keys with the very same 32-bit hash, found by a birthday search over 400 000
 * pseudo-random keys (about 18 such pairs are expected for any decent 32-bit hash; sequential
 * keys such as "h123" give none with FNV-1a, hence the random letters). */
struct hk {
    uint32_t hash;
    int idx;
};

static int cmp_hk(const void *a, const void *b)
{
    const struct hk *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : x->idx - y->idx;
}

static void test_map_full_hash_collisions(void **state)
{
    enum { N = 400000 };
    char(*k)[12] = malloc(sizeof(*k) * N);
    struct hk *h = malloc(sizeof *h * N);
    assert_non_null(k);
    assert_non_null(h);
    map m = MAP_INIT;
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 11; j++) {
            r ^= r >> 12;
            r ^= r << 25;
            r ^= r >> 27;
            k[i][j] = (char)('a' + (r * 0x2545F4914F6CDD1Dull >> 40) % 26);
        }
        k[i][11] = '\0';
        assert_int_equal(map_put(&m, k[i], k[i]), 0);
    }
    assert_int_equal(m.len, N);
    size_t it = 0, n = 0;
    map_entry *e;
    while (map_next(&m, &it, &e)) {
        h[n].hash = e->hash;
        h[n].idx = (int)(((const char(*)[12])e->key) - k);
        n++;
    }
    assert_int_equal(n, N);
    qsort(h, N, sizeof *h, cmp_hk);
    int pairs = 0;
    for (size_t i = 1; i < N; i++) {
        if (h[i].hash != h[i - 1].hash)
            continue;
        pairs++;
        const char *a = k[h[i - 1].idx], *b = k[h[i].idx];
        assert_string_not_equal(a, b);
        /* In the big map: both found, each with its own value, delete one keeps the other. */
        assert_ptr_equal(map_get(&m, a), a);
        assert_ptr_equal(map_get(&m, b), b);
        /* In a map of their own, in both orders. */
        for (int order = 0; order < 2; order++) {
            const char *x = order ? b : a, *y = order ? a : b;
            map s = MAP_INIT;
            assert_int_equal(map_put(&s, x, (void *)x), 0);
            assert_null(map_get(&s, y));
            assert_int_equal(map_put(&s, y, (void *)y), 0);
            assert_int_equal(s.len, 2);
            assert_ptr_equal(map_get(&s, x), x);
            assert_ptr_equal(map_get(&s, y), y);
            assert_ptr_equal(map_del(&s, x), x);
            assert_null(map_get(&s, x));
            assert_ptr_equal(map_get(&s, y), y);
            assert_null(map_del(&s, x));
            assert_ptr_equal(map_del(&s, y), y);
            assert_int_equal(s.len, 0);
            map_free(&s);
        }
    }
    assert_true(pairs >= 1);
    /* Delete the first of each colliding pair from the big map; the second stays. */
    for (size_t i = 1; i < N; i++) {
        if (h[i].hash != h[i - 1].hash || !map_get(&m, k[h[i - 1].idx]))
            continue;
        assert_ptr_equal(map_del(&m, k[h[i - 1].idx]), k[h[i - 1].idx]);
        assert_ptr_equal(map_get(&m, k[h[i].idx]), k[h[i].idx]);
    }
    map_free(&m);
    free(k);
    free(h);
}

/* "key" and two of its extensions with the same FNV-1a hash (found by a meet-in-the-middle
 * search): a lookup must compare whole keys, not just the bytes of the shorter one. If map.c
 * ever changes its hash function these keys no longer collide, and the test says so. */
static void test_map_prefix_collision(void **state)
{
    static const char *const k[3] = {"key", "keyeucgbfvj", "keypnmzcnqg"};
    if (key_hash(k[0]) != key_hash(k[1]) || key_hash(k[0]) != key_hash(k[2])) {
        print_message("map.c's hash is no longer FNV-1a: find new colliding prefixes\n");
        skip();
    }
    int v[3];
    for (int order = 0; order < 2; order++) {
        map m = MAP_INIT;
        if (order == 0) {
            /* The long keys first: the short one is a prefix of both, with their hash. */
            assert_int_equal(map_put(&m, k[1], &v[1]), 0);
            assert_int_equal(map_put(&m, k[2], &v[2]), 0);
            assert_null(map_get(&m, k[0]));
            assert_null(map_getn(&m, k[1], 3));
            assert_null(map_del(&m, k[0]));
            assert_int_equal(map_put(&m, k[0], &v[0]), 0);
        } else {
            assert_int_equal(map_put(&m, k[0], &v[0]), 0);
            assert_null(map_get(&m, k[1]));
            assert_int_equal(map_put(&m, k[1], &v[1]), 0);
            assert_int_equal(map_put(&m, k[2], &v[2]), 0);
        }
        assert_int_equal(m.len, 3);
        for (int i = 0; i < 3; i++)
            assert_ptr_equal(map_get(&m, k[i]), &v[i]);
        assert_ptr_equal(map_getn(&m, "keyeucgbfvj-and-more", 11), &v[1]);
        assert_ptr_equal(map_getn(&m, k[1], 3), &v[0]);
        assert_ptr_equal(map_del(&m, k[0]), &v[0]);
        assert_null(map_get(&m, k[0]));
        assert_ptr_equal(map_get(&m, k[1]), &v[1]);
        assert_ptr_equal(map_get(&m, k[2]), &v[2]);
        assert_ptr_equal(map_del(&m, k[2]), &v[2]);
        assert_ptr_equal(map_get(&m, k[1]), &v[1]);
        assert_null(map_getn(&m, k[1], 3));
        map_free(&m);
    }
}

static void test_map_iteration(void **state)
{
    make_keys();
    map m = MAP_INIT;
    size_t it = 0;
    map_entry *e = NULL;
    assert_false(map_next(&m, &it, &e));
    static int seen[NKEYS];
    for (int round = 0; round < 3; round++) {
        /* round 0: all keys; then with every other and then every third key removed. */
        if (round == 0) {
            for (int i = 0; i < NKEYS; i++)
                assert_int_equal(map_put(&m, keys[i], &vals[i]), 0);
        } else {
            for (int i = 0; i < NKEYS; i++)
                if (i % (round + 1) == 0)
                    map_del(&m, keys[i]);
        }
        memset(seen, 0, sizeof seen);
        it = 0;
        size_t n = 0;
        while (map_next(&m, &it, &e)) {
            int v = *(int *)e->val;
            assert_ptr_equal(e->key, keys[v]);
            seen[v]++;
            n++;
        }
        assert_int_equal(n, m.len);
        assert_false(map_next(&m, &it, &e)); /* stays finished */
        for (int i = 0; i < NKEYS; i++) {
            bool in = map_get(&m, keys[i]) != NULL;
            assert_int_equal(seen[i], in ? 1 : 0);
        }
    }
    map_free(&m);
}

/* ---- util: random ids ----------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, UTIL_ID_LEN + 1);
}

static void test_random_id(void **state)
{
    enum { N = 2000 };
    static char ids[N][UTIL_ID_LEN + 1];
    int counts[256] = {0};
    for (int i = 0; i < N; i++) {
        memset(ids[i], 0x7f, sizeof ids[i]);
        assert_int_equal(util_random_id(ids[i]), 0);
        assert_int_equal(ids[i][UTIL_ID_LEN], '\0');
        assert_int_equal(strlen(ids[i]), UTIL_ID_LEN);
        for (int j = 0; j < UTIL_ID_LEN; j++) {
            assert_non_null(memchr(b64url, ids[i][j], 64));
            counts[(unsigned char)ids[i][j]]++;
        }
    }
    /* 40 000 characters: every one of the 64 shows up (each ~625 times). */
    for (int c = 0; c < 64; c++)
        assert_true(counts[(unsigned char)b64url[c]] > 300);
    qsort(ids, N, sizeof ids[0], cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
}

static void test_random_bytes(void **state)
{
    unsigned char a[32], b[32], z[32] = {0};
    assert_int_equal(util_random_bytes(a, 0), 0);
    assert_int_equal(util_random_bytes(a, sizeof a), 0);
    assert_int_equal(util_random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, z, sizeof a);
}

/* ---- util: base64 --------------------------------------------------------------------- */

static const struct {
    const char *raw, *enc;
} b64_vectors[] = {
    /* RFC 4648, section 10 */
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"\xfb\xff\xbf", "+/+/"},
    {"\x00\x00\x00", "AAAA"},
};

static void test_base64_vectors(void **state)
{
    for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
        const char *raw = b64_vectors[i].raw, *enc = b64_vectors[i].enc;
        size_t rawlen = strcmp(enc, "AAAA") == 0 ? 3 : strlen(raw);
        buf b = BUF_INIT;
        assert_int_equal(buf_puts(&b, "x"), 0);
        assert_int_equal(util_base64_encode(&b, raw, rawlen), 0);
        assert_int_equal(b.len, 1 + strlen(enc));
        assert_memory_equal(b.data, "x", 1);
        assert_memory_equal(b.data + 1, enc, strlen(enc));
        buf_reset(&b);
        assert_int_equal(buf_puts(&b, "y"), 0);
        assert_int_equal(util_base64_decode(&b, enc, strlen(enc)), 0);
        assert_int_equal(b.len, 1 + rawlen);
        assert_memory_equal(b.data, "y", 1);
        if (rawlen)
            assert_memory_equal(b.data + 1, raw, rawlen);
        buf_free(&b);
    }
}

static void test_base64_round_trip(void **state)
{
    unsigned char raw[600];
    for (size_t n = 0; n <= sizeof raw; n += (n < 70 ? 1 : 37)) {
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)(n < 256 && i == 0 ? n : rng());
        buf enc = BUF_INIT, dec = BUF_INIT;
        assert_int_equal(util_base64_encode(&enc, raw, n), 0);
        assert_int_equal(enc.len, 4 * ((n + 2) / 3));
        for (size_t i = 0; i < enc.len; i++)
            assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
                               enc.data[i]) != NULL);
        assert_int_equal(util_base64_decode(&dec, enc.data, enc.len), 0);
        assert_buf(&dec, raw, n);
        buf_free(&enc);
        buf_free(&dec);
    }
    /* Every byte value in every position of a 3-byte group. */
    for (int v = 0; v < 256; v++) {
        for (int pos = 0; pos < 3; pos++) {
            unsigned char g[3] = {0x55, 0xAA, 0x0F};
            g[pos] = (unsigned char)v;
            for (size_t n = (size_t)pos + 1; n <= 3; n++) {
                buf enc = BUF_INIT, dec = BUF_INIT;
                assert_int_equal(util_base64_encode(&enc, g, n), 0);
                assert_int_equal(util_base64_decode(&dec, enc.data, enc.len), 0);
                assert_buf(&dec, g, n);
                buf_free(&enc);
                buf_free(&dec);
            }
        }
    }
}

static void check_decode_fails(const char *in, size_t n)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "keep"), 0);
    if (util_base64_decode(&b, in, n) != -1)
        fail_msg("decoded invalid base64 \"%.*s\" (%zu bytes)", (int)n, in, n);
    assert_buf_str(&b, "keep"); /* nothing appended */
    buf_free(&b);
}

static void test_base64_rejects(void **state)
{
    /* Lengths that are not a multiple of 4. */
    check_decode_fails("Z", 1);
    check_decode_fails("Zg", 2);
    check_decode_fails("Zg=", 3);
    check_decode_fails("Zm9vY", 5);
    check_decode_fails("Zm9vYg=", 7);
    check_decode_fails("Zm9vYg===", 9);
    /* Characters outside the standard alphabet (base64url, whitespace, NUL, high bytes). */
    check_decode_fails("Zm9-", 4);
    check_decode_fails("Zm9_", 4);
    check_decode_fails("Zm 9", 4);
    check_decode_fails("Zm9v\nYmFy", 9);
    check_decode_fails("Zm9vYmF\n", 8);
    check_decode_fails(" Zm9vYmF", 8);
    check_decode_fails("Zm\09", 4);
    check_decode_fails("Zm9\x80", 4);
    check_decode_fails("Zm9.", 4);
    /* Padding anywhere but at the end, or more than two. */
    check_decode_fails("=Zm9", 4);
    check_decode_fails("Z=m9", 4);
    check_decode_fails("Zm=9", 4);
    check_decode_fails("Z=g=", 4);
    check_decode_fails("Z===", 4);
    check_decode_fails("====", 4);
    check_decode_fails("Zg==Zm9v", 8);
    check_decode_fails("Zm8=Zm9v", 8);
    check_decode_fails("Zm9vZg==Zg==", 12);
}

/* ---- util: time stamps ---------------------------------------------------------------- */

static void check_time(int64_t ms, const char *db, const char *iso)
{
    char out_db[24 + 8], out_iso[25 + 8];
    memset(out_db, 'X', sizeof out_db);
    memset(out_iso, 'X', sizeof out_iso);
    util_format_db_time(ms, out_db);
    util_format_iso_time(ms, out_iso);
    assert_string_equal(out_db, db);
    assert_string_equal(out_iso, iso);
    /* Nothing written past the terminator. */
    assert_int_equal(out_db[24], 'X');
    assert_int_equal(out_iso[25], 'X');
}

static void test_time_format(void **state)
{
    check_time(0, "1970-01-01 00:00:00.000", "1970-01-01T00:00:00.000Z");
    check_time(1, "1970-01-01 00:00:00.001", "1970-01-01T00:00:00.001Z");
    check_time(1700000000123, "2023-11-14 22:13:20.123", "2023-11-14T22:13:20.123Z");
    check_time(946684800999, "2000-01-01 00:00:00.999", "2000-01-01T00:00:00.999Z");
    check_time(951827696789, "2000-02-29 12:34:56.789", "2000-02-29T12:34:56.789Z");
    check_time(1709209496050, "2024-02-29 12:24:56.050", "2024-02-29T12:24:56.050Z");
    check_time(1735689599999, "2024-12-31 23:59:59.999", "2024-12-31T23:59:59.999Z");
    check_time(1735689600000, "2025-01-01 00:00:00.000", "2025-01-01T00:00:00.000Z");
    check_time(253402300799999, "9999-12-31 23:59:59.999", "9999-12-31T23:59:59.999Z");
}

/* ---- util: integers ------------------------------------------------------------------- */

static void check_int(const char *s, long long min, long long max, long long want)
{
    long long v = -12345;
    if (util_parse_int(s, min, max, &v) != 0)
        fail_msg("\"%s\" in [%lld, %lld] rejected", s, min, max);
    assert_int_equal(v, want);
}

static void check_int_fails(const char *s, long long min, long long max)
{
    long long v = 777;
    if (util_parse_int(s, min, max, &v) != -1)
        fail_msg("\"%s\" in [%lld, %lld] accepted", s ? s : "(null)", min, max);
    assert_int_equal(v, 777); /* untouched */
}

static void test_parse_int(void **state)
{
    check_int("0", 0, 10, 0);
    check_int("7", 0, 10, 7);
    check_int("10", 0, 10, 10);
    check_int("-5", -5, 5, -5);
    check_int("-0", 0, 0, 0);
    check_int("007", 0, 10, 7);
    check_int("65535", 1, 65535, 65535);
    check_int("9223372036854775807", LLONG_MIN, LLONG_MAX, LLONG_MAX);
    check_int("-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN);
    /* Bounds. */
    check_int_fails("11", 0, 10);
    check_int_fails("-1", 0, 10);
    check_int_fails("-6", -5, 5);
    check_int_fails("0", 1, 65535);
    check_int_fails("65536", 1, 65535);
    /* Out of range of long long altogether. */
    check_int_fails("9223372036854775808", LLONG_MIN, LLONG_MAX);
    check_int_fails("-9223372036854775809", LLONG_MIN, LLONG_MAX);
    check_int_fails("99999999999999999999999", LLONG_MIN, LLONG_MAX);
    /* Garbage. */
    check_int_fails(NULL, 0, 10);
    check_int_fails("", 0, 10);
    check_int_fails("-", -10, 10);
    check_int_fails("abc", 0, 10);
    check_int_fails("1a", 0, 10);
    check_int_fails("5 ", 0, 10);
    check_int_fails(" 5", 0, 10);
    check_int_fails("\t5", 0, 10);
    check_int_fails("+5", 0, 10);
    check_int_fails("--5", -10, 10);
    check_int_fails("0x5", 0, 10);
    check_int_fails("1e1", 0, 100);
    check_int_fails("1.0", 0, 10);
    check_int_fails("1,0", 0, 100);
}

/* ---- the log ----------------------------------------------------------------------------- */

/* The open descriptors of this process, as a bit set of numbers below 1024. */
static void open_fds(unsigned char set[128])
{
    memset(set, 0, 128);
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self && fd < 1024)
            set[fd / 8] |= (unsigned char)(1u << (fd % 8));
    }
    closedir(d);
}

static bool file_has(const char *path, const char *text)
{
    char content[4096] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(content, 1, sizeof content - 1, f);
    content[n] = '\0';
    fclose(f);
    return strstr(content, text) != NULL;
}

/* SIGHUP's reopen swaps the file under the same descriptor number (dup2): the store's threads
 * log without a lock, and a number closed and reused in between (a socket, the database)
 * would get their lines. So the process's set of descriptors is the same before and after. */
static void test_log_reopen_keeps_the_descriptor(void **state)
{
    (void)state;
    char dir[] = "/tmp/rtd-log-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], rotated[64];
    snprintf(path, sizeof path, "%s/rtd.log", dir);
    snprintf(rotated, sizeof rotated, "%s/rtd.log.1", dir);
    assert_int_equal(rlog_init(RLOG_INFO, path), 0);
    rlog(RLOG_INFO, "before the rotation", NULL);
    unsigned char before[128], after[128];
    open_fds(before);
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(rlog_reopen(), 0);
    open_fds(after);
    assert_memory_equal(before, after, sizeof before);
    rlog(RLOG_INFO, "after the rotation", NULL);
    assert_true(file_has(rotated, "before the rotation"));
    assert_false(file_has(rotated, "after the rotation"));
    assert_true(file_has(path, "after the rotation"));
    rlog_close();
    unlink(path);
    unlink(rotated);
    rmdir(dir);
}

/* rlog_esc: JSON-escaped, cut on a character boundary, four results usable in one call. */
static void test_log_esc(void **state)
{
    (void)state;
    assert_string_equal(rlog_esc(NULL), "");
    assert_string_equal(rlog_esc("a\"b\\c\n\x01"), "a\\\"b\\\\c\\u000a\\u0001");
    const char *a = rlog_esc("one"), *b = rlog_esc("two"), *c = rlog_esc("three"), *d = rlog_esc("four");
    assert_string_equal(a, "one");
    assert_string_equal(b, "two");
    assert_string_equal(c, "three");
    assert_string_equal(d, "four");
    char long_s[1000];
    for (size_t i = 0; i + 2 < sizeof long_s; i += 2) { /* "é" over and over */
        long_s[i] = (char)0xC3;
        long_s[i + 1] = (char)0xA9;
    }
    long_s[sizeof long_s - 2] = 0;
    const char *e = rlog_esc(long_s);
    size_t n = strlen(e);
    assert_true(n >= 290 && n <= 310);
    assert_int_equal(n % 2, 0); /* whole characters only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append),
        cmocka_unit_test(test_buf_reserve),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_printf_long),
        cmocka_unit_test(test_json_escape_basic),
        cmocka_unit_test(test_json_escape_controls),
        cmocka_unit_test(test_json_escape_round_trip),
        cmocka_unit_test(test_buf_consume),
        cmocka_unit_test(test_buf_terminate),
        cmocka_unit_test(test_map_basic),
        cmocka_unit_test(test_map_many),
        cmocka_unit_test(test_map_probe_chain_deletion),
        cmocka_unit_test(test_map_full_hash_collisions),
        cmocka_unit_test(test_map_prefix_collision),
        cmocka_unit_test(test_map_iteration),
        cmocka_unit_test(test_random_id),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_log_reopen_keeps_the_descriptor),
        cmocka_unit_test(test_log_esc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
