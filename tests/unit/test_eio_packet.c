/* test_eio_packet.c: unit tests for rtd/engine/eio_packet.c: shared outgoing packets (allocation,
 * the WebSocket frame stored in front of the payload, checked byte for byte against RFC
 * 6455 at every length boundary, reference counting, the long-polling form) and the decoders
 * for what clients send (one WebSocket message, a long-polling body of several packets). */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rtd/engine/eio_packet.h"

/* ---- outgoing packets ----------------------------------------------------------------- */

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed + (i >> 9));
}

/* Checks the whole WebSocket frame of p: exactly hdr, then the type character for text
 * packets, then the payload. */
static void check_frame(const eio_packet *p, const unsigned char *hdr, size_t hdrlen, char type,
                        const unsigned char *payload, size_t n)
{
    size_t len = 0;
    const unsigned char *f = eio_packet_ws_frame(p, &len);
    size_t body = n + (type ? 1 : 0);
    assert_int_equal(p->ws_hdr_len, hdrlen);
    assert_int_equal(len, hdrlen + body);
    assert_memory_equal(f, hdr, hdrlen);
    if (type)
        assert_int_equal(f[hdrlen], (unsigned char)type);
    if (n)
        assert_memory_equal(f + hdrlen + (type ? 1 : 0), payload, n);
    /* The frame lies inside the packet's storage, and ends with it. */
    assert_true(f >= p->raw);
    assert_ptr_equal(f + len, p->raw + EIO_PACKET_HEADROOM + 1 + n);
}

static const struct {
    size_t len;
    unsigned char text[10], text_len;
    unsigned char bin[10], bin_len;
} frame_cases[] = {
    /* clang-format off */
    /* text frames carry the type character too: a body of len + 1 bytes */
    {0, {0x81, 0x01}, 2, {0x82, 0x00}, 2},
    {1, {0x81, 0x02}, 2, {0x82, 0x01}, 2},
    {124, {0x81, 0x7D}, 2, {0x82, 0x7C}, 2},
    {125, {0x81, 0x7E, 0x00, 0x7E}, 4, {0x82, 0x7D}, 2},
    {126, {0x81, 0x7E, 0x00, 0x7F}, 4, {0x82, 0x7E, 0x00, 0x7E}, 4},
    {65534, {0x81, 0x7E, 0xFF, 0xFF}, 4, {0x82, 0x7E, 0xFF, 0xFE}, 4},
    {65535, {0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10, {0x82, 0x7E, 0xFF, 0xFF}, 4},
    {65536, {0x81, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01}, 10,
     {0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10},
    {1000000, {0x81, 0x7F, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x41}, 10,
     {0x82, 0x7F, 0, 0, 0, 0, 0, 0x0F, 0x42, 0x40}, 10},
    /* clang-format on */
};

static void test_alloc_seal_frames(void **state)
{
    for (size_t c = 0; c < sizeof frame_cases / sizeof frame_cases[0]; c++) {
        size_t n = frame_cases[c].len;
        unsigned char *data = malloc(n ? n : 1);
        assert_non_null(data);
        fill(data, n, (unsigned)c);

        eio_packet *t = eio_packet_alloc(EIO_MESSAGE, false, n);
        assert_non_null(t);
        assert_int_equal(t->refs, 1);
        assert_int_equal(t->len, n);
        assert_int_equal(t->type, EIO_MESSAGE);
        assert_false(t->binary);
        assert_int_equal(t->raw[EIO_PACKET_HEADROOM], '4');
        assert_ptr_equal(eio_packet_payload(t), t->raw + EIO_PACKET_HEADROOM + 1);
        if (n)
            memcpy(eio_packet_payload(t), data, n);
        eio_packet_seal(t);
        check_frame(t, frame_cases[c].text, frame_cases[c].text_len, '4', data, n);
        eio_packet_unref(t);

        eio_packet *b = eio_packet_alloc(EIO_MESSAGE, true, n);
        assert_non_null(b);
        assert_true(b->binary);
        if (n)
            memcpy(eio_packet_payload(b), data, n);
        eio_packet_seal(b);
        check_frame(b, frame_cases[c].bin, frame_cases[c].bin_len, 0, data, n);
        eio_packet_unref(b);

        /* eio_packet_new is the same thing in one call. */
        t = eio_packet_new(EIO_MESSAGE, false, data, n);
        assert_non_null(t);
        check_frame(t, frame_cases[c].text, frame_cases[c].text_len, '4', data, n);
        b = eio_packet_new(EIO_MESSAGE, true, data, n);
        assert_non_null(b);
        check_frame(b, frame_cases[c].bin, frame_cases[c].bin_len, 0, data, n);
        eio_packet_unref(t);
        eio_packet_unref(b);
        free(data);
    }
}

static void test_packet_types(void **state)
{
    static const struct {
        enum eio_type type;
        char ch;
    } types[] = {
        {EIO_OPEN, '0'},    {EIO_CLOSE, '1'},   {EIO_PING, '2'}, {EIO_PONG, '3'},
        {EIO_MESSAGE, '4'}, {EIO_UPGRADE, '5'}, {EIO_NOOP, '6'},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        eio_packet *p = eio_packet_new(types[i].type, false, "probe", 5);
        assert_non_null(p);
        assert_int_equal(p->type, types[i].type);
        check_frame(p, (const unsigned char[]){0x81, 0x06}, 2, types[i].ch,
                    (const unsigned char *)"probe", 5);
        eio_packet_unref(p);
        p = eio_packet_new(types[i].type, false, NULL, 0);
        assert_non_null(p);
        check_frame(p, (const unsigned char[]){0x81, 0x01}, 2, types[i].ch, NULL, 0);
        eio_packet_unref(p);
    }
    /* The open packet as a server sends it. */
    const char *open = "{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"]}";
    eio_packet *p = eio_packet_new(EIO_OPEN, false, open, strlen(open));
    assert_non_null(p);
    size_t len;
    const unsigned char *f = eio_packet_ws_frame(p, &len);
    assert_int_equal(len, 2 + 1 + strlen(open));
    assert_int_equal(f[0], 0x81);
    assert_int_equal(f[1], 1 + strlen(open));
    assert_int_equal(f[2], '0');
    assert_memory_equal(f + 3, open, strlen(open));
    eio_packet_unref(p);
}

static void test_alloc_too_big(void **state)
{
    assert_null(eio_packet_alloc(EIO_MESSAGE, false, (size_t)UINT32_MAX));
    assert_null(eio_packet_alloc(EIO_MESSAGE, true, (size_t)UINT32_MAX - 63));
#if SIZE_MAX > UINT32_MAX
    assert_null(eio_packet_alloc(EIO_MESSAGE, true, (size_t)UINT32_MAX + 10));
#endif
}

static void test_refcount(void **state)
{
    eio_packet *p = eio_packet_new(EIO_MESSAGE, false, "x", 1);
    assert_non_null(p);
    assert_int_equal(p->refs, 1);
    assert_ptr_equal(eio_packet_ref(p), p);
    assert_int_equal(p->refs, 2);
    eio_packet *q = eio_packet_ref(eio_packet_ref(p));
    assert_ptr_equal(q, p);
    assert_int_equal(p->refs, 4);
    eio_packet_unref(p);
    assert_int_equal(p->refs, 3);
    eio_packet_unref(p);
    eio_packet_unref(p);
    assert_int_equal(p->refs, 1);
    /* Still intact while referenced. */
    size_t len;
    const unsigned char *f = eio_packet_ws_frame(p, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(f, ((const unsigned char[]){0x81, 0x02, '4', 'x'}), 4);
    eio_packet_unref(p); /* freed here (LeakSanitizer and double-free checks in ASan builds) */
    eio_packet_unref(NULL);

    /* A broadcast-like fan-out: many references, released in any order. */
    eio_packet *b = eio_packet_new(EIO_MESSAGE, true, "\x01\x02", 2);
    assert_non_null(b);
    eio_packet *refs[100];
    for (int i = 0; i < 100; i++)
        refs[i] = eio_packet_ref(b);
    assert_int_equal(b->refs, 101);
    eio_packet_unref(b);
    for (int i = 99; i >= 0; i--) {
        assert_int_equal(refs[i]->refs, (uint32_t)i + 1);
        eio_packet_unref(refs[i]);
    }
}

static void check_polling(eio_packet *p, const char *want, size_t wantlen)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "\x1e"), 0);
    assert_int_equal(eio_packet_append_polling(&b, p), 0);
    assert_int_equal(b.len, 1 + wantlen);
    assert_int_equal(b.data[0], 0x1e);
    assert_memory_equal(b.data + 1, want, wantlen);
    buf_free(&b);
    eio_packet_unref(p);
}

static const unsigned char *big_data;
static size_t big_len;

static int check_big(void *ud, const eio_in *pkt)
{
    int *calls = ud;
    (*calls)++;
    assert_int_equal(pkt->type, EIO_MESSAGE);
    assert_true(pkt->binary);
    assert_int_equal(pkt->len, big_len);
    assert_memory_equal(pkt->data, big_data, big_len);
    return 0;
}

static void test_polling_form(void **state)
{
    check_polling(eio_packet_new(EIO_MESSAGE, false, "hello", 5), "4hello", 6);
    check_polling(eio_packet_new(EIO_PING, false, NULL, 0), "2", 1);
    check_polling(eio_packet_new(EIO_PONG, false, "probe", 5), "3probe", 6);
    check_polling(eio_packet_new(EIO_NOOP, false, NULL, 0), "6", 1);
    check_polling(eio_packet_new(EIO_MESSAGE, false, "a\0b", 3), "4a\0b", 4);
    check_polling(eio_packet_new(EIO_MESSAGE, true, "\x01\x02\x03\x04", 4), "bAQIDBA==", 9);
    check_polling(eio_packet_new(EIO_MESSAGE, true, "\xff\xfe\xfd", 3), "b//79", 5);
    check_polling(eio_packet_new(EIO_MESSAGE, true, "\x00", 1), "bAA==", 5);
    check_polling(eio_packet_new(EIO_MESSAGE, true, NULL, 0), "b", 1);

    /* A large binary packet survives the trip through base64 and the decoder. */
    size_t n = 70000;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    fill(data, n, 9);
    eio_packet *p = eio_packet_new(EIO_MESSAGE, true, data, n);
    assert_non_null(p);
    buf b = BUF_INIT, scratch = BUF_INIT;
    assert_int_equal(eio_packet_append_polling(&b, p), 0);
    assert_int_equal(b.len, 1 + 4 * ((n + 2) / 3));
    assert_int_equal(b.data[0], 'b');
    big_data = data;
    big_len = n;
    int calls = 0;
    assert_int_equal(
        eio_decode_payload((const unsigned char *)b.data, b.len, 1, &scratch, check_big, &calls),
        0);
    assert_int_equal(calls, 1);
    /* The packet's own WebSocket frame is untouched by the polling encoding. */
    size_t flen;
    const unsigned char *f = eio_packet_ws_frame(p, &flen);
    assert_int_equal(flen, 10 + n);
    assert_memory_equal(f + 10, data, n);
    eio_packet_unref(p);
    buf_free(&b);
    buf_free(&scratch);
    free(data);
}

/* ---- decoding one WebSocket message --------------------------------------------------- */

static void test_decode_ws_text(void **state)
{
    for (int t = 1; t <= 6; t++) {
        unsigned char msg[8] = {(unsigned char)('0' + t), 'p', 'r', 'o', 'b', 'e'};
        eio_in in;
        memset(&in, 0xAA, sizeof in);
        assert_int_equal(eio_decode_ws(msg, 6, false, &in), 0);
        assert_int_equal(in.type, t);
        assert_false(in.binary);
        assert_ptr_equal(in.data, msg + 1);
        assert_int_equal(in.len, 5);
        /* And with nothing after the type. */
        memset(&in, 0xAA, sizeof in);
        assert_int_equal(eio_decode_ws(msg, 1, false, &in), 0);
        assert_int_equal(in.type, t);
        assert_false(in.binary);
        assert_int_equal(in.len, 0);
    }
    const unsigned char *hello = (const unsigned char *)"4hello";
    eio_in in;
    assert_int_equal(eio_decode_ws(hello, 6, false, &in), 0);
    assert_int_equal(in.type, EIO_MESSAGE);
    assert_memory_equal(in.data, "hello", 5);
}

static void test_decode_ws_invalid(void **state)
{
    static const char *const bad[] = {
        "0", "0{\"sid\":\"x\"}", "7", "9hello", "/", ":", "a", "b", "bAQID", " 4", "\x1e", "\xff"};
    eio_in in;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (eio_decode_ws((const unsigned char *)bad[i], strlen(bad[i]), false, &in) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(eio_decode_ws((const unsigned char *)"", 0, false, &in), -1);
    assert_int_equal(eio_decode_ws((const unsigned char *)"\0", 1, false, &in), -1);
    assert_int_equal(eio_decode_ws((const unsigned char *)"4", 0, false, &in), -1);
}

static void test_decode_ws_binary(void **state)
{
    /* A binary frame is a binary message whatever its bytes, even empty or starting like a
     * text packet. */
    static const struct {
        const char *p;
        size_t n;
    } cases[] = {{"\x01\x02\x03\x04", 4}, {"0", 1}, {"4hello", 6}, {"b", 1}, {"", 0}, {"\0", 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eio_in in;
        memset(&in, 0xAA, sizeof in);
        const unsigned char *m = (const unsigned char *)cases[i].p;
        assert_int_equal(eio_decode_ws(m, cases[i].n, true, &in), 0);
        assert_int_equal(in.type, EIO_MESSAGE);
        assert_true(in.binary);
        assert_ptr_equal(in.data, m);
        assert_int_equal(in.len, cases[i].n);
    }
}

/* ---- decoding a long-polling body ----------------------------------------------------- */

struct got {
    int n;
    enum eio_type type[16];
    bool binary[16];
    char data[16][64];
    size_t len[16];
    int stop_at; /* return stop_ret at this packet (1-based), 0: never */
    int stop_ret;
};

static int collect(void *ud, const eio_in *pkt)
{
    struct got *g = ud;
    assert_true(g->n < 16);
    assert_true(pkt->len < 64);
    g->type[g->n] = pkt->type;
    g->binary[g->n] = pkt->binary;
    g->len[g->n] = pkt->len;
    if (pkt->len)
        memcpy(g->data[g->n], pkt->data, pkt->len);
    g->n++;
    return g->n == g->stop_at ? g->stop_ret : 0;
}

/* Decodes body (as an exact-size heap copy, so ASan sees overreads) and returns the result. */
static int decode(const char *body, size_t len, size_t max, struct got *g)
{
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    buf scratch = BUF_INIT;
    int r = eio_decode_payload(copy, len, max, &scratch, collect, g);
    buf_free(&scratch);
    free(copy);
    return r;
}

#define DECODE(body, max, g) decode(body, sizeof(body) - 1, max, g)

static void assert_pkt(const struct got *g, int i, enum eio_type type, bool binary,
                       const char *data, size_t len)
{
    assert_true(i < g->n);
    assert_int_equal(g->type[i], type);
    assert_int_equal(g->binary[i], binary);
    assert_int_equal(g->len[i], len);
    if (len)
        assert_memory_equal(g->data[i], data, len);
}

static void test_payload_text(void **state)
{
    struct got g = {0};
    assert_int_equal(DECODE("4hello\x1e"
                            "2\x1e"
                            "4world",
                            16, &g),
                     0);
    assert_int_equal(g.n, 3);
    assert_pkt(&g, 0, EIO_MESSAGE, false, "hello", 5);
    assert_pkt(&g, 1, EIO_PING, false, "", 0);
    assert_pkt(&g, 2, EIO_MESSAGE, false, "world", 5);

    g = (struct got){0};
    assert_int_equal(DECODE("4", 1, &g), 0);
    assert_int_equal(g.n, 1);
    assert_pkt(&g, 0, EIO_MESSAGE, false, "", 0);

    /* Every client packet type; the sample session's body. */
    g = (struct got){0};
    assert_int_equal(DECODE("1\x1e"
                            "2\x1e"
                            "3\x1e"
                            "4x\x1e"
                            "5\x1e"
                            "6",
                            16, &g),
                     0);
    assert_int_equal(g.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(g.type[i], i + 1);
    g = (struct got){0};
    assert_int_equal(DECODE("42[\"hello\"]\x1e"
                            "42[\"world\"]",
                            16, &g),
                     0);
    assert_int_equal(g.n, 2);
    assert_pkt(&g, 0, EIO_MESSAGE, false, "2[\"hello\"]", 10);
    assert_pkt(&g, 1, EIO_MESSAGE, false, "2[\"world\"]", 10);
}

static void test_payload_binary(void **state)
{
    struct got g = {0};
    assert_int_equal(DECODE("bAQIDBA==", 16, &g), 0);
    assert_int_equal(g.n, 1);
    assert_pkt(&g, 0, EIO_MESSAGE, true, "\x01\x02\x03\x04", 4);

    /* Mixed with text, one-, two- and no-padding forms, and the empty binary message. */
    g = (struct got){0};
    assert_int_equal(DECODE("4a\x1e"
                            "bAQID\x1e"
                            "b//79\x1e"
                            "bAA==\x1e"
                            "b\x1e"
                            "bAAE=\x1e"
                            "4b",
                            16, &g),
                     0);
    assert_int_equal(g.n, 7);
    assert_pkt(&g, 0, EIO_MESSAGE, false, "a", 1);
    assert_pkt(&g, 1, EIO_MESSAGE, true, "\x01\x02\x03", 3);
    assert_pkt(&g, 2, EIO_MESSAGE, true, "\xff\xfe\xfd", 3);
    assert_pkt(&g, 3, EIO_MESSAGE, true, "\x00", 1);
    assert_pkt(&g, 4, EIO_MESSAGE, true, "", 0);
    assert_pkt(&g, 5, EIO_MESSAGE, true, "\x00\x01", 2);
    assert_pkt(&g, 6, EIO_MESSAGE, false, "b", 1);
}

static void test_payload_invalid(void **state)
{
    static const struct {
        const char *body;
        size_t len;
        int calls; /* packets handed out before the failure */
    } bad[] = {
#define B(s, c) {s, sizeof(s) - 1, c}
        B("", 0),
        B("\x1e", 0),
        B("\x1e\x1e", 0),
        B("\x1e"
          "4a",
          0),
        B("4a\x1e", 1),
        B("4a\x1e\x1e"
          "4b",
          1),
        B("4a\x1e"
          "2\x1e\x1e",
          2),
        B("0", 0),
        B("0{}\x1e"
          "4a",
          0),
        B("4a\x1e"
          "0",
          1),
        B("7", 0),
        B("4a\x1e"
          "9",
          1),
        B("x", 0),
        B(" 4a", 0),
        /* invalid base64 */
        B("bAQID=", 0),
        B("bAQ", 0),
        B("b!!!!", 0),
        B("bAQ=D", 0),
        B("bA===", 0),
        B("b====", 0),
        B("bAQ-_", 0),
        B("bAQ==AQ==", 0),
        B("4a\x1e"
          "bAQI\n",
          1),
        B("4a\x1e"
          "bAQIDBA=",
          1),
#undef B
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct got g = {0};
        int r = decode(bad[i].body, bad[i].len, 16, &g);
        if (r != -1)
            fail_msg("case %zu: returned %d", i, r);
        if (g.n != bad[i].calls)
            fail_msg("case %zu: %d packets before the failure, not %d", i, g.n, bad[i].calls);
    }
}

static void test_payload_max_packets(void **state)
{
    static const char body[] = "4a\x1e"
                               "4b\x1e"
                               "4c";
    struct got g = {0};
    assert_int_equal(decode(body, sizeof body - 1, 3, &g), 0);
    assert_int_equal(g.n, 3);
    g = (struct got){0};
    assert_int_equal(decode(body, sizeof body - 1, 2, &g), -1);
    assert_int_equal(g.n, 2);
    g = (struct got){0};
    assert_int_equal(decode(body, sizeof body - 1, 1, &g), -1);
    assert_int_equal(g.n, 1);
    g = (struct got){0};
    assert_int_equal(decode(body, sizeof body - 1, 0, &g), -1);
    assert_int_equal(g.n, 0);
    g = (struct got){0};
    assert_int_equal(decode("4a", 2, 1, &g), 0);
    assert_int_equal(g.n, 1);
    /* Binary packets count too. */
    g = (struct got){0};
    assert_int_equal(DECODE("bAQ==\x1e"
                            "bAQ==",
                            1, &g),
                     -1);
    assert_int_equal(g.n, 1);
}

static void test_payload_callback_stops(void **state)
{
    static const char body[] = "4a\x1e"
                               "4b\x1e"
                               "bAQ==\x1e"
                               "4d";
    static const int rets[] = {7, -5, 1, -1};
    for (int at = 1; at <= 4; at++) {
        for (size_t k = 0; k < sizeof rets / sizeof rets[0]; k++) {
            struct got g = {.stop_at = at, .stop_ret = rets[k]};
            assert_int_equal(decode(body, sizeof body - 1, 16, &g), rets[k]);
            assert_int_equal(g.n, at);
        }
    }
    /* The callback's result wins over what comes after, even invalid input. */
    struct got g = {.stop_at = 1, .stop_ret = 42};
    assert_int_equal(DECODE("4a\x1e\x1e", 16, &g), 42);
    assert_int_equal(g.n, 1);
}

/* Scratch is where binary packets land: reused (reset) for each one, left allocated for the
 * caller to reuse or free. */
static int check_scratch(void *ud, const eio_in *pkt)
{
    buf *scratch = ud;
    if (pkt->binary) {
        assert_ptr_equal(pkt->data, (const unsigned char *)scratch->data);
        assert_int_equal(pkt->len, scratch->len);
    }
    return 0;
}

static void test_payload_scratch(void **state)
{
    static const char body[] = "bAQIDBA==\x1e"
                               "4x\x1e"
                               "bBQY=";
    buf scratch = BUF_INIT;
    assert_int_equal(buf_puts(&scratch, "old contents"), 0);
    assert_int_equal(eio_decode_payload((const unsigned char *)body, sizeof body - 1, 8, &scratch,
                                        check_scratch, &scratch),
                     0);
    assert_int_equal(scratch.len, 2);
    assert_memory_equal(scratch.data, "\x05\x06", 2);
    buf_free(&scratch);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_seal_frames),
        cmocka_unit_test(test_packet_types),
        cmocka_unit_test(test_alloc_too_big),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_polling_form),
        cmocka_unit_test(test_decode_ws_text),
        cmocka_unit_test(test_decode_ws_invalid),
        cmocka_unit_test(test_decode_ws_binary),
        cmocka_unit_test(test_payload_text),
        cmocka_unit_test(test_payload_binary),
        cmocka_unit_test(test_payload_invalid),
        cmocka_unit_test(test_payload_max_packets),
        cmocka_unit_test(test_payload_callback_stops),
        cmocka_unit_test(test_payload_scratch),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
