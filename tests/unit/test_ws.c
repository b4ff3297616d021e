/* test_ws.c: unit tests for the RFC 6455 framing in rtd/net/ws.c: server frame headers, close
 * frames, the accept key, UTF-8 validation (against a plain decoding reference, exhaustively
 * for short inputs) and every rule of the client frame reader. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rtd/net/ws.h"

#define FIN 0x80

static const uint8_t key0[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- helpers -------------------------------------------------------------------------- */

/* Writes a client frame: first byte b0 as given (FIN, RSV and opcode), the mask bit unless
 * !masked, the length in its shortest form or in the form forced by lenform (126 or 127),
 * then the key and the masked payload. Returns the frame length. */
static size_t frame_ex(uint8_t *out, uint8_t b0, bool masked, int lenform, const uint8_t key[4],
                       const void *payload, size_t n)
{
    const uint8_t *p = payload;
    size_t h = 0;
    uint8_t mbit = masked ? 0x80 : 0x00;
    if (lenform == 0)
        lenform = n <= 125 ? 7 : n <= 0xFFFF ? 126 : 127;
    out[h++] = b0;
    if (lenform == 7) {
        out[h++] = (uint8_t)(mbit | n);
    } else if (lenform == 126) {
        out[h++] = mbit | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++)
        out[h + i] = (uint8_t)(p[i] ^ (masked ? key[i & 3] : 0));
    return h + n;
}

static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
    return frame_ex(out, b0, true, 0, key0, payload, n);
}

static size_t frame_str(uint8_t *out, uint8_t b0, const char *s)
{
    return frame(out, b0, s, strlen(s));
}

/* A close frame with code and reason (code < 0: no payload at all). */
static size_t close_frame_client(uint8_t *out, int code, const void *reason, size_t n)
{
    uint8_t pl[130] = {0};
    size_t len = 0;
    if (code >= 0) {
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        memcpy(pl + 2, reason, n);
        len = 2 + n;
    }
    return frame(out, FIN | WS_OP_CLOSE, pl, len);
}

/* The heap copy the last parse_alone ran on: ev.data may point into it, so it lives until the
 * next call. */
static uint8_t *last_copy;

/* Parses a single frame that is alone in its buffer, copied to the heap at its exact size so
 * that AddressSanitizer sees any read past the end. Returns the parser's result; *consumed
 * must be the whole frame whenever anything was consumed. *copy, if asked for, is the copy
 * parsed. */
static int parse_alone(ws_reader *r, const uint8_t *f, size_t n, ws_event *ev, uint8_t **copy)
{
    free(last_copy);
    uint8_t *c = last_copy = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, f, n);
    size_t consumed = 12345;
    int rc = ws_reader_parse(r, c, n, &consumed, ev);
    if (rc > 0)
        assert_int_equal(consumed, n);
    else
        assert_true(consumed == 0 || consumed == n);
    if (copy)
        *copy = c;
    return rc;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* ---- frame headers -------------------------------------------------------------------- */

static void check_header(enum ws_opcode op, bool fin, uint64_t len, const uint8_t *want,
                         size_t wantlen)
{
    uint8_t out[WS_MAX_HEADER + 4];
    memset(out, 0xEE, sizeof out);
    size_t n = ws_frame_header(out, op, fin, len);
    assert_int_equal(n, wantlen);
    assert_memory_equal(out, want, wantlen);
    for (size_t i = wantlen; i < sizeof out; i++)
        assert_int_equal(out[i], 0xEE);
}

static void test_header_7bit(void **state)
{
    check_header(WS_OP_TEXT, true, 0, (const uint8_t[]){0x81, 0x00}, 2);
    check_header(WS_OP_TEXT, true, 1, (const uint8_t[]){0x81, 0x01}, 2);
    check_header(WS_OP_BINARY, true, 125, (const uint8_t[]){0x82, 0x7D}, 2);
}

static void test_header_16bit(void **state)
{
    check_header(WS_OP_TEXT, true, 126, (const uint8_t[]){0x81, 0x7E, 0x00, 0x7E}, 4);
    check_header(WS_OP_TEXT, true, 0x1234, (const uint8_t[]){0x81, 0x7E, 0x12, 0x34}, 4);
    check_header(WS_OP_TEXT, true, 65535, (const uint8_t[]){0x81, 0x7E, 0xFF, 0xFF}, 4);
}

static void test_header_64bit(void **state)
{
    check_header(WS_OP_BINARY, true, 65536,
                 (const uint8_t[]){0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, 10);
    check_header(WS_OP_BINARY, true, 0x0102030405060708ull,
                 (const uint8_t[]){0x82, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8}, 10);
}

static void test_header_fin_and_opcode(void **state)
{
    check_header(WS_OP_TEXT, false, 3, (const uint8_t[]){0x01, 0x03}, 2);
    check_header(WS_OP_CONT, false, 3, (const uint8_t[]){0x00, 0x03}, 2);
    check_header(WS_OP_CONT, true, 3, (const uint8_t[]){0x80, 0x03}, 2);
    check_header(WS_OP_CLOSE, true, 2, (const uint8_t[]){0x88, 0x02}, 2);
    check_header(WS_OP_PING, true, 0, (const uint8_t[]){0x89, 0x00}, 2);
    check_header(WS_OP_PONG, true, 4, (const uint8_t[]){0x8A, 0x04}, 2);
}

/* ---- close frames --------------------------------------------------------------------- */

#define CLOSE_BUF (WS_MAX_HEADER + 125)

static size_t close_into(uint8_t out[CLOSE_BUF + 8], uint16_t code, const char *reason)
{
    memset(out, 0xEE, CLOSE_BUF + 8);
    size_t n = ws_close_frame(out, code, reason);
    assert_true(n <= 2 + 125);
    for (size_t i = n; i < CLOSE_BUF + 8; i++)
        assert_int_equal(out[i], 0xEE);
    return n;
}

static void test_close_frame_basic(void **state)
{
    uint8_t out[CLOSE_BUF + 8];
    size_t n = close_into(out, 1000, "bye");
    assert_int_equal(n, 7);
    assert_memory_equal(out, ((const uint8_t[]){0x88, 0x05, 0x03, 0xE8, 'b', 'y', 'e'}), 7);

    n = close_into(out, 4321, "");
    assert_int_equal(n, 4);
    assert_memory_equal(out, ((const uint8_t[]){0x88, 0x02, 0x10, 0xE1}), 4);

    n = close_into(out, WS_CLOSE_GOING_AWAY, NULL);
    assert_int_equal(n, 4);
    assert_memory_equal(out, ((const uint8_t[]){0x88, 0x02, 0x03, 0xE9}), 4);
}

static void test_close_frame_no_status(void **state)
{
    uint8_t out[CLOSE_BUF + 8];
    size_t n = close_into(out, WS_CLOSE_NO_STATUS, "ignored");
    assert_int_equal(n, 2);
    assert_memory_equal(out, ((const uint8_t[]){0x88, 0x00}), 2);
}

static void test_close_frame_truncates(void **state)
{
    uint8_t out[CLOSE_BUF + 8];
    char reason[300];

    /* Exactly 123 bytes fit. */
    memset(reason, 'x', 123);
    reason[123] = '\0';
    size_t n = close_into(out, 1011, reason);
    assert_int_equal(n, 127);
    assert_int_equal(out[1], 125);
    assert_memory_equal(out + 4, reason, 123);

    /* Longer is cut at 123. */
    memset(reason, 'y', 299);
    reason[299] = '\0';
    n = close_into(out, 1011, reason);
    assert_int_equal(n, 127);
    assert_int_equal(out[1], 125);
    assert_int_equal(out[2], 0x03);
    assert_int_equal(out[3], 0xF3);
    assert_memory_equal(out + 4, reason, 123);
}

static void test_close_frame_truncates_on_char_boundary(void **state)
{
    uint8_t out[CLOSE_BUF + 8];
    char reason[200];

    /* 122 ASCII bytes, then a 2-byte character across the 123-byte limit: it is dropped
     * whole. */
    memset(reason, 'a', 122);
    strcpy(reason + 122, "\xC3\xA9zz");
    size_t n = close_into(out, 1000, reason);
    assert_int_equal(n, 2 + 2 + 122);
    assert_int_equal(out[1], 124);
    assert_true(ws_utf8_valid(out + 4, n - 4));

    /* A 4-byte character whose first byte is at offset 121 is dropped too. */
    memset(reason, 'a', 121);
    strcpy(reason + 121, "\xF0\x9F\x98\x80");
    n = close_into(out, 1000, reason);
    assert_int_equal(n, 2 + 2 + 121);
    assert_true(ws_utf8_valid(out + 4, n - 4));

    /* A character that ends exactly at the limit is kept. */
    memset(reason, 'a', 121);
    strcpy(reason + 121, "\xC3\xA9zz");
    n = close_into(out, 1000, reason);
    assert_int_equal(n, 127);
    assert_memory_equal(out + 4 + 121, "\xC3\xA9", 2);
}

static void test_close_frame_parses_back(void **state)
{
    /* What we write is what a peer reads: run it through the reader after masking. */
    uint8_t out[CLOSE_BUF + 8], client[200];
    size_t n = close_into(out, 3001, "done");
    size_t cn = frame(client, out[0], out + 2, n - 2);
    ws_reader r;
    ws_reader_init(&r, 1000);
    ws_event ev;
    assert_int_equal(parse_alone(&r, client, cn, &ev, NULL), 1);
    assert_int_equal(ev.op, WS_OP_CLOSE);
    assert_int_equal(ev.close_code, 3001);
    assert_int_equal(ev.len, 4);
    assert_memory_equal(ev.data, "done", 4);
    ws_reader_free(&r);
}

/* ---- accept key ----------------------------------------------------------------------- */

static void test_accept_key_rfc(void **state)
{
    char out[29];
    memset(out, 'Z', sizeof out);
    /* RFC 6455 section 1.3. */
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out), 0);
    assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    /* Every base64 character is accepted, '+' and '/' included (and the result has them). */
    assert_int_equal(ws_accept_key("+/+/ABEiM0RVZneImar7/w==", out), 0);
    assert_string_equal(out, "Dv/uTkS8ltt1FpK2yoO1PEM2U5M=");
}

static void test_accept_key_invalid(void **state)
{
    static const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
        "dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
        "dGhlIHNhbXBsZSBub25jZQ==x", /* trailing garbage */
        "dGhlIHNhbXBsZSBub25jZQ== ", /* trailing space */
        " dGhlIHNhbXBsZSBub25jZQ==", /* leading space */
        "dGhlIHNhbXBsZSBub25jZ*==",  /* not base64 */
        "dGhlIHNhbXBsZSBub25jZ-==",  /* base64url is not base64 */
        "dGhlIHNhbXBsZSBub25jZQAA",  /* 24 characters but 18 bytes */
        "dGhlIHNhbXBsZSBub25jZ===",  /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQA=",  /* 17 bytes */
        "dGhlIHNhbXBsZSBub25j=Q==",  /* padding inside */
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "dGhlIHNhbXBsZSBub25jZQ", /* 22, no padding */
        NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        char out[29];
        assert_int_equal(ws_accept_key(bad[i], out), -1);
    }
}

static void test_accept_key_loose_padding_bits(void **state)
{
    /* Like the reference server (ws), the key's shape is checked, not whether the unused
     * low bits of its last character are zero: "R" after "Z" decodes to the same 16 bytes as
     * "Q" would. The accept value is the hash of the text as sent. */
    char out[29];
    assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZR==", out), 0);
    assert_int_equal(strlen(out), 28);
    assert_string_not_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* The reference: decode each sequence and check it against RFC 3629 directly. Slow and
 * obvious, which is the point. */
static bool ref_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

#define U(s) (const uint8_t *)(s), sizeof(s) - 1

static void test_utf8_valid_vectors(void **state)
{
    static const char *good[] = {
        "",
        "Hello, world",
        "\x7F",
        "\xC2\x80",         /* U+0080 */
        "\xDF\xBF",         /* U+07FF */
        "\xE0\xA0\x80",     /* U+0800 */
        "\xED\x9F\xBF",     /* U+D7FF, just below the surrogates */
        "\xEE\x80\x80",     /* U+E000, just above */
        "\xEF\xBF\xBD",     /* U+FFFD */
        "\xEF\xBF\xBF",     /* U+FFFF */
        "\xF0\x90\x80\x80", /* U+10000 */
        "\xF0\x9F\x98\x80", /* U+1F600 */
        "\xF3\xBF\xBF\xBF", /* U+FFFFF */
        "\xF4\x8F\xBF\xBF", /* U+10FFFF, the last one */
        /* "kosme" in Greek */
        "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t n = strlen(good[i]);
        assert_true(ws_utf8_valid((const uint8_t *)good[i], n));
        assert_int_equal(ws_utf8_step(0, (const uint8_t *)good[i], n), 0);
    }
    assert_true(ws_utf8_valid(U("\0\0"))); /* NUL is a character like any other */
}

static void test_utf8_invalid_vectors(void **state)
{
    static const char *bad[] = {
        "\x80", /* lone continuation */
        "\xBF",
        "a\x80z",
        "\xC0\xAF",                 /* overlong '/' */
        "\xC1\xBF",                 /* overlong U+007F */
        "\xC0\x80",                 /* overlong NUL */
        "\xE0\x80\xAF",             /* overlong '/', 3 bytes */
        "\xE0\x9F\xBF",             /* overlong U+07FF */
        "\xF0\x80\x80\xAF",         /* overlong '/', 4 bytes */
        "\xF0\x8F\xBF\xBF",         /* overlong U+FFFF */
        "\xED\xA0\x80",             /* U+D800 */
        "\xED\xAD\xBF",             /* U+DB7F */
        "\xED\xBF\xBF",             /* U+DFFF */
        "\xED\xA0\x80\xED\xB0\x80", /* a surrogate pair, CESU-8 style */
        "\xF4\x90\x80\x80",         /* U+110000 */
        "\xF5\x80\x80\x80",
        "\xF7\xBF\xBF\xBF",
        "\xF8\x88\x80\x80\x80", /* 5-byte form */
        "\xFC\x84\x80\x80\x80\x80",
        "\xFE",
        "\xFF",
        "\xC2", /* truncated */
        "\xE0\xA0",
        "\xF0\x90\x80",
        "\xC2z", /* continuation missing */
        "\xE1\x80z",
        "\xF1\x80\x80z",
        "\xC2\x80\x80", /* one continuation too many */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint8_t *p = (const uint8_t *)bad[i];
        size_t n = strlen(bad[i]);
        assert_false(ws_utf8_valid(p, n));
        assert_int_not_equal(ws_utf8_step(0, p, n), 0);
        assert_false(ref_utf8_valid(p, n)); /* the reference agrees */
    }
}

static void test_utf8_rejects_early(void **state)
{
    /* REJECT as soon as no continuation could make the input valid, not at the end. */
    assert_int_equal(ws_utf8_step(0, U("\xC0")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\xF5")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\x80")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\xE0\x80")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\xED\xA0")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\xF0\x8F")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(0, U("\xF4\x90")), WS_UTF8_REJECT);
    /* But a valid prefix is pending: neither accepted nor rejected. */
    static const char *pending[] = {"\xC2",     "\xE0\xA0",     "\xED\x9F",
                                    "\xF0\x90", "\xF4\x8F\xBF", "\xF0\x9F\x98"};
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++) {
        uint32_t s = ws_utf8_step(0, (const uint8_t *)pending[i], strlen(pending[i]));
        assert_int_not_equal(s, 0);
        assert_int_not_equal(s, WS_UTF8_REJECT);
    }
}

static void test_utf8_reject_is_sticky(void **state)
{
    assert_int_equal(ws_utf8_step(WS_UTF8_REJECT, U("abc")), WS_UTF8_REJECT);
    assert_int_equal(ws_utf8_step(WS_UTF8_REJECT, NULL, 0), WS_UTF8_REJECT);
    uint32_t s = ws_utf8_step(0, U("\xFF"));
    assert_int_equal(ws_utf8_step(s, U("abcdefghijklmnop")), WS_UTF8_REJECT);
    /* Empty input leaves any state alone. */
    uint32_t mid = ws_utf8_step(0, U("\xE2\x82"));
    assert_int_equal(ws_utf8_step(mid, NULL, 0), mid);
    assert_int_equal(ws_utf8_step(0, NULL, 0), 0);
}

static void test_utf8_split_everywhere(void **state)
{
    static const char *good[] = {
        "\xF0\x9F\x98\x80",
        "z\xC3\xA9y\xE2\x82\xACx\xF4\x8F\xBF\xBFw",
        "0123456789\xE2\x82\xACghijklmnopqrstuv\xF0\x90\x80\x80",
    };
    for (size_t g = 0; g < sizeof good / sizeof good[0]; g++) {
        const uint8_t *p = (const uint8_t *)good[g];
        size_t n = strlen(good[g]);
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b++) {
                uint32_t s = ws_utf8_step(0, p, a);
                assert_int_not_equal(s, WS_UTF8_REJECT);
                s = ws_utf8_step(s, p + a, b - a);
                assert_int_not_equal(s, WS_UTF8_REJECT);
                s = ws_utf8_step(s, p + b, n - b);
                assert_int_equal(s, 0);
            }
        }
    }
    /* An invalid sequence split at every point is still invalid. */
    const uint8_t *p = (const uint8_t *)"ab\xED\xA0\x80yz";
    for (size_t a = 0; a <= 7; a++) {
        uint32_t s = ws_utf8_step(ws_utf8_step(0, p, a), p + a, 7 - a);
        assert_int_equal(s, WS_UTF8_REJECT);
    }
}

static void test_utf8_ascii_fast_path(void **state)
{
    uint8_t t[80];
    /* A bad byte at every offset of a long ASCII run, so each position of the 8-byte skip is
     * covered, and the same for a valid 2-byte character and for a truncated one at the
     * end. */
    for (size_t pos = 0; pos < sizeof t; pos++) {
        memset(t, 'a', sizeof t);
        t[pos] = 0x80;
        assert_false(ws_utf8_valid(t, sizeof t));
        t[pos] = 0xFF;
        assert_false(ws_utf8_valid(t, sizeof t));
        if (pos + 1 < sizeof t) {
            t[pos] = 0xC3;
            t[pos + 1] = 0xA9;
            assert_true(ws_utf8_valid(t, sizeof t));
        }
        memset(t, 'a', sizeof t);
        t[pos] = 0xC3; /* the last byte of the input starts a sequence */
        assert_false(ws_utf8_valid(t, pos + 1));
    }
    /* A pending sequence followed by ASCII must not be skipped by the fast path. */
    uint32_t s = ws_utf8_step(0, U("\xC3"));
    memset(t, 'a', sizeof t);
    assert_int_equal(ws_utf8_step(s, t, sizeof t), WS_UTF8_REJECT);
    s = ws_utf8_step(0, U("\xF0\x9F"));
    assert_int_equal(ws_utf8_step(s, t, 16), WS_UTF8_REJECT);
    /* And a long pure-ASCII input is valid. */
    assert_true(ws_utf8_valid(t, sizeof t));
}

static void test_utf8_exhaustive_short(void **state)
{
    /* Every string of 1, 2 and 3 bytes, compared with the reference. */
    uint8_t b[4];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        assert_int_equal(ws_utf8_valid(b, 1), ref_utf8_valid(b, 1));
    }
    for (unsigned x = 0; x < 65536; x++) {
        b[0] = (uint8_t)(x >> 8);
        b[1] = (uint8_t)x;
        assert_int_equal(ws_utf8_valid(b, 2), ref_utf8_valid(b, 2));
    }
    for (unsigned x = 0; x < (1u << 24); x++) {
        b[0] = (uint8_t)(x >> 16);
        b[1] = (uint8_t)(x >> 8);
        b[2] = (uint8_t)x;
        if (ws_utf8_valid(b, 3) != ref_utf8_valid(b, 3))
            fail_msg("3 bytes %02X %02X %02X", b[0], b[1], b[2]);
    }
    /* 4-byte strings with a lead byte of E0 and up, every second and third byte, and a
     * fourth from each class boundary. */
    static const uint8_t last[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    for (unsigned x = 0xE00000; x < (1u << 24); x++) {
        b[0] = (uint8_t)(x >> 16);
        b[1] = (uint8_t)(x >> 8);
        b[2] = (uint8_t)x;
        for (size_t k = 0; k < sizeof last; k++) {
            b[3] = last[k];
            if (ws_utf8_valid(b, 4) != ref_utf8_valid(b, 4))
                fail_msg("4 bytes %02X %02X %02X %02X", b[0], b[1], b[2], b[3]);
        }
    }
}

/* Random text built from ASCII runs, characters of every length and a few random bytes. */
static size_t random_text(uint8_t *out, size_t max)
{
    static const char *pieces[] = {"a",
                                   "hello ",
                                   "0123456789abcdef",
                                   "\xC2\x80",
                                   "\xDF\xBF",
                                   "\xE0\xA0\x80",
                                   "\xED\x9F\xBF",
                                   "\xEF\xBF\xBF",
                                   "\xF0\x90\x80\x80",
                                   "\xF4\x8F\xBF\xBF",
                                   "\xC3\xA9"};
    size_t n = 0;
    size_t want = rng() % max;
    while (n < want) {
        if (rng() % 40 == 0) {
            out[n++] = (uint8_t)rng();
            continue;
        }
        const char *pc = pieces[rng() % (sizeof pieces / sizeof pieces[0])];
        size_t pl = strlen(pc);
        if (n + pl > max)
            break;
        memcpy(out + n, pc, pl);
        n += pl;
    }
    return n;
}

static void test_utf8_random_against_reference(void **state)
{
    uint8_t b[300];
    for (int it = 0; it < 200000; it++) {
        size_t n = random_text(b, sizeof b);
        bool want = ref_utf8_valid(b, n);
        assert_int_equal(ws_utf8_valid(b, n), want);
        size_t a = n ? rng() % (n + 1) : 0;
        size_t c = a + (n - a ? rng() % (n - a + 1) : 0);
        uint32_t s = ws_utf8_step(0, b, a);
        s = ws_utf8_step(s, b + a, c - a);
        s = ws_utf8_step(s, b + c, n - c);
        assert_int_equal(s == 0, want);
    }
}

/* ---- reader: the common path ---------------------------------------------------------- */

static void test_reader_rfc_hello(void **state)
{
    /* RFC 6455 section 5.7: a masked "Hello", followed by a masked ping in the same buffer. */
    uint8_t in[64] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    size_t n = 11 + frame_str(in + 11, FIN | WS_OP_PING, "Hello");
    ws_reader r;
    ws_reader_init(&r, 1 << 20);
    ws_event ev;
    size_t consumed;
    int rc = ws_reader_parse(&r, in, n, &consumed, &ev);
    assert_int_equal(rc, 1);
    assert_int_equal(consumed, 11);
    assert_int_equal(ev.op, WS_OP_TEXT);
    assert_ptr_equal(ev.data, in + 6); /* zero copy */
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "Hello", 5);

    rc = ws_reader_parse(&r, in + consumed, n - consumed, &consumed, &ev);
    assert_int_equal(rc, 1);
    assert_int_equal(consumed, n - 11);
    assert_int_equal(ev.op, WS_OP_PING);
    assert_ptr_equal(ev.data, in + 11 + 6);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "Hello", 5);
    ws_reader_free(&r);
}

static void check_binary_roundtrip(ws_reader *r, size_t n, const uint8_t key[4], size_t offset)
{
    size_t hlen = n <= 125 ? 6 : n <= 0xFFFF ? 8 : 14;
    uint8_t *payload = malloc(n + 1);
    uint8_t *space = malloc(offset + hlen + n);
    assert_non_null(payload);
    assert_non_null(space);
    for (size_t i = 0; i < n; i++)
        payload[i] = (uint8_t)(i * 7 + 3 + (i >> 8));
    uint8_t *in = space + offset; /* odd offsets: unaligned payloads */
    size_t flen = frame_ex(in, FIN | WS_OP_BINARY, true, 0, key, payload, n);
    assert_int_equal(flen, hlen + n);
    ws_event ev;
    size_t consumed;
    assert_int_equal(ws_reader_parse(r, in, flen, &consumed, &ev), 1);
    assert_int_equal(consumed, flen);
    assert_int_equal(ev.op, WS_OP_BINARY);
    assert_ptr_equal(ev.data, in + hlen);
    assert_int_equal(ev.len, n);
    assert_memory_equal(ev.data, payload, n);
    free(space);
    free(payload);
}

static void test_reader_unmask_sizes(void **state)
{
    static const uint8_t keys[][4] = {
        {0x37, 0xfa, 0x21, 0x3d}, {0, 0, 0, 0}, {0xFF, 0xFF, 0xFF, 0xFF}, {1, 2, 3, 4}};
    ws_reader r;
    ws_reader_init(&r, 1 << 20);
    for (size_t k = 0; k < 4; k++)
        for (size_t n = 0; n <= 130; n++)
            check_binary_roundtrip(&r, n, keys[k], (n + k) % 8);
    static const size_t sizes[] = {125, 126, 127, 1000, 4097, 65535, 65536, 70001};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t off = 0; off < 3; off++)
            check_binary_roundtrip(&r, sizes[i], keys[i % 4], off);
    ws_reader_free(&r);
}

static void test_reader_length_encodings(void **state)
{
    /* The reader decodes each form, including longer-than-needed ones. */
    uint8_t in[300];
    ws_reader r;
    ws_reader_init(&r, 1000);
    ws_event ev;
    int forms[] = {7, 126, 127};
    size_t hlens[] = {6, 8, 14};
    for (int i = 0; i < 3; i++) {
        size_t n = frame_ex(in, FIN | WS_OP_TEXT, true, forms[i], key0, "abc", 3);
        assert_int_equal(n, hlens[i] + 3);
        assert_int_equal(parse_alone(&r, in, n, &ev, NULL), 1);
        assert_int_equal(ev.len, 3);
        assert_memory_equal(ev.data, "abc", 3);
    }
    ws_reader_free(&r);
}

static void test_reader_empty_frames(void **state)
{
    uint8_t in[32];
    ws_reader r;
    ws_reader_init(&r, 100);
    ws_event ev;
    size_t consumed;
    size_t n = frame(in, FIN | WS_OP_TEXT, "", 0);
    assert_int_equal(n, 6);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
    assert_int_equal(consumed, 6);
    assert_int_equal(ev.op, WS_OP_TEXT);
    assert_int_equal(ev.len, 0);
    assert_non_null(ev.data);

    /* An empty message in two empty fragments still has a usable pointer. */
    n = frame(in, WS_OP_BINARY, "", 0);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
    assert_int_equal(consumed, 6);
    n = frame(in, FIN | WS_OP_CONT, "", 0);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
    assert_int_equal(ev.op, WS_OP_BINARY);
    assert_int_equal(ev.len, 0);
    assert_non_null(ev.data);
    ws_reader_free(&r);
}

static void check_partial(const uint8_t *f, size_t n, size_t step)
{
    ws_reader r;
    ws_reader_init(&r, 1 << 20);
    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    for (size_t k = 0; k < n; k += (k < 16 ? 1 : step)) {
        memcpy(copy, f, k);
        ws_event ev;
        size_t consumed = 99;
        assert_int_equal(ws_reader_parse(&r, copy, k, &consumed, &ev), 0);
        assert_int_equal(consumed, 0);
        /* Nothing is unmasked until the whole frame is there, so a retry sees the same
         * bytes. */
        assert_memory_equal(copy, f, k);
    }
    /* The last byte missing. */
    memcpy(copy, f, n);
    ws_event ev;
    size_t consumed = 99;
    assert_int_equal(ws_reader_parse(&r, copy, n - 1, &consumed, &ev), 0);
    assert_int_equal(consumed, 0);
    assert_memory_equal(copy, f, n);
    assert_int_equal(ws_reader_parse(&r, copy, n, &consumed, &ev), 1);
    assert_int_equal(consumed, n);
    free(copy);
    ws_reader_free(&r);
}

static void test_reader_partial_frames(void **state)
{
    static uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13);
    uint8_t *f = malloc(sizeof payload + 14);
    assert_non_null(f);
    check_partial(f, frame_str(f, FIN | WS_OP_TEXT, "Hello"), 1);
    check_partial(f, frame(f, FIN | WS_OP_BINARY, payload, 300), 1);
    check_partial(f, frame(f, FIN | WS_OP_BINARY, payload, sizeof payload), 997);
    check_partial(f, frame(f, FIN | WS_OP_PING, payload, 125), 1);
    check_partial(f, close_frame_client(f, 1000, "bye", 3), 1);
    free(f);
}

/* ---- reader: fragmentation ------------------------------------------------------------ */

/* Feeds a whole stream to a reader, frame by frame, and records what came out. */
typedef struct result {
    int rc;
    size_t consumed;
    ws_event ev;
    uint8_t data[256];
} result;

static size_t run_stream(ws_reader *r, uint8_t *in, size_t n, result *out, size_t max)
{
    size_t off = 0, k = 0;
    while (off < n && k < max) {
        size_t consumed = 0;
        out[k].rc = ws_reader_parse(r, in + off, n - off, &consumed, &out[k].ev);
        out[k].consumed = consumed;
        if (out[k].rc > 0) {
            assert_true(out[k].ev.len <= sizeof out[k].data);
            memcpy(out[k].data, out[k].ev.data, out[k].ev.len);
        }
        k++;
        if (out[k - 1].rc < 0 || consumed == 0)
            break;
        off += consumed;
    }
    return k;
}

static void test_reader_fragments_with_interleaved_control(void **state)
{
    uint8_t in[256];
    size_t n = 0;
    n += frame_str(in + n, WS_OP_TEXT, "Hel");
    n += frame_str(in + n, FIN | WS_OP_PING, "p1");
    n += frame_str(in + n, WS_OP_CONT, "lo ");
    n += frame_str(in + n, FIN | WS_OP_PONG, "");
    n += frame_str(in + n, WS_OP_CONT, "");
    n += close_frame_client(in + n, 1001, "away", 4);
    n += frame_str(in + n, FIN | WS_OP_CONT, "world");
    n += frame_str(in + n, FIN | WS_OP_TEXT, "after");

    ws_reader r;
    ws_reader_init(&r, 1000);
    result res[10];
    size_t k = run_stream(&r, in, n, res, 10);
    assert_int_equal(k, 8);
    assert_int_equal(res[0].rc, 0);
    assert_int_equal(res[0].consumed, 9);
    assert_int_equal(res[1].rc, 1);
    assert_int_equal(res[1].ev.op, WS_OP_PING);
    assert_int_equal(res[1].ev.len, 2);
    assert_memory_equal(res[1].data, "p1", 2);
    assert_int_equal(res[2].rc, 0);
    assert_int_equal(res[3].rc, 1);
    assert_int_equal(res[3].ev.op, WS_OP_PONG);
    assert_int_equal(res[3].ev.len, 0);
    assert_int_equal(res[4].rc, 0);
    assert_int_equal(res[5].rc, 1);
    assert_int_equal(res[5].ev.op, WS_OP_CLOSE);
    assert_int_equal(res[5].ev.close_code, 1001);
    assert_int_equal(res[5].ev.len, 4);
    assert_memory_equal(res[5].data, "away", 4);
    assert_int_equal(res[6].rc, 1);
    assert_int_equal(res[6].ev.op, WS_OP_TEXT);
    assert_int_equal(res[6].ev.len, 11);
    assert_memory_equal(res[6].data, "Hello world", 11);
    assert_int_equal(res[7].rc, 1);
    assert_int_equal(res[7].ev.op, WS_OP_TEXT);
    assert_memory_equal(res[7].data, "after", 5);
    assert_false(r.fragmenting);
    ws_reader_free(&r);
}

static void test_reader_fragment_buffer_and_state(void **state)
{
    uint8_t in[64];
    ws_reader r;
    ws_reader_init(&r, 1000);
    ws_event ev;
    size_t consumed;
    size_t n = frame(in, WS_OP_BINARY, "\x00\xFF", 2);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
    assert_int_equal(consumed, n);
    assert_true(r.fragmenting);
    assert_int_equal(r.frag_op, WS_OP_BINARY);
    n = frame(in, FIN | WS_OP_CONT, "\x80\x01", 2);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
    assert_int_equal(consumed, n);
    assert_false(r.fragmenting);
    assert_int_equal(ev.op, WS_OP_BINARY); /* binary: no UTF-8 check */
    assert_int_equal(ev.len, 4);
    /* Reassembled in the reader's buffer, not in the input. */
    assert_ptr_equal(ev.data, (const uint8_t *)r.msg.data);
    assert_memory_equal(ev.data, "\x00\xFF\x80\x01", 4);

    /* A second fragmented message does not see the first one's bytes. */
    n = frame_str(in, WS_OP_TEXT, "x");
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
    n = frame_str(in, FIN | WS_OP_CONT, "y");
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
    assert_int_equal(ev.op, WS_OP_TEXT);
    assert_int_equal(ev.len, 2);
    assert_memory_equal(ev.data, "xy", 2);

    /* And an unfragmented one afterwards is zero-copy again. */
    n = frame_str(in, FIN | WS_OP_TEXT, "z");
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
    assert_ptr_equal(ev.data, in + 6);
    ws_reader_free(&r);
    ws_reader_free(&r); /* harmless twice */
}

static void test_reader_large_fragmented(void **state)
{
    /* Big fragments, so the reassembly buffer grows past what it keeps between messages. */
    size_t fl = 50000;
    uint8_t *payload = malloc(fl);
    uint8_t *in = malloc(fl + 14);
    assert_non_null(payload);
    assert_non_null(in);
    ws_reader r;
    ws_reader_init(&r, 4 * fl);
    for (int round = 0; round < 2; round++) {
        ws_event ev;
        size_t consumed;
        for (int i = 0; i < 3; i++) {
            memset(payload, 'a' + i + round, fl);
            uint8_t b0 = (uint8_t)((i == 0 ? WS_OP_TEXT : WS_OP_CONT) | (i == 2 ? FIN : 0));
            size_t n = frame(in, b0, payload, fl);
            int rc = ws_reader_parse(&r, in, n, &consumed, &ev);
            assert_int_equal(rc, i == 2 ? 1 : 0);
            assert_int_equal(consumed, n);
        }
        assert_int_equal(ev.op, WS_OP_TEXT);
        assert_int_equal(ev.len, 3 * fl);
        for (size_t j = 0; j < 3 * fl; j++)
            if (ev.data[j] != 'a' + round + j / fl)
                fail_msg("byte %zu", j);
    }
    ws_reader_free(&r);
    free(in);
    free(payload);
}

/* ---- reader: protocol errors (1002) --------------------------------------------------- */

static void expect_error_frame(size_t max, const uint8_t *f, size_t n, int code)
{
    ws_reader r;
    ws_reader_init(&r, max);
    ws_event ev;
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), -code);
    ws_reader_free(&r);
}

static void test_reader_rsv_bits(void **state)
{
    uint8_t f[32];
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (size_t i = 0; i < sizeof rsv; i++) {
        size_t n = frame_str(f, (uint8_t)(FIN | rsv[i] | WS_OP_TEXT), "hi");
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
        /* Known from the header alone. */
        expect_error_frame(100, f, 2, WS_CLOSE_PROTOCOL_ERROR);
        n = frame_str(f, (uint8_t)(FIN | rsv[i] | WS_OP_PING), "hi");
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    }
    /* Control: the same frame without RSV is fine. */
    size_t n = frame_str(f, FIN | WS_OP_TEXT, "hi");
    ws_reader r;
    ws_reader_init(&r, 100);
    ws_event ev;
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
    ws_reader_free(&r);
}

static void test_reader_unknown_opcodes(void **state)
{
    uint8_t f[32];
    for (unsigned op = 0; op < 16; op++) {
        bool known = op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10;
        if (known)
            continue;
        size_t n = frame_str(f, (uint8_t)(FIN | op), "");
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
        n = frame_str(f, (uint8_t)op, "x"); /* non-final too */
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    }
    /* The known ones pass the same way. */
    static const uint8_t ok[] = {WS_OP_TEXT, WS_OP_BINARY, WS_OP_PING, WS_OP_PONG};
    for (size_t i = 0; i < sizeof ok; i++) {
        size_t n = frame_str(f, (uint8_t)(FIN | ok[i]), "");
        ws_reader r;
        ws_reader_init(&r, 100);
        ws_event ev;
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.op, ok[i]);
        ws_reader_free(&r);
    }
}

static void test_reader_unmasked(void **state)
{
    uint8_t f[32];
    size_t n = frame_ex(f, FIN | WS_OP_TEXT, false, 0, key0, "hi", 2);
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    expect_error_frame(100, f, 2, WS_CLOSE_PROTOCOL_ERROR);
    n = frame_ex(f, FIN | WS_OP_PING, false, 0, key0, "", 0);
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    n = frame_ex(f, FIN | WS_OP_BINARY, false, 126, key0, "hi", 2);
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
}

static void test_reader_control_too_long(void **state)
{
    static uint8_t payload[200];
    uint8_t f[256];
    static const uint8_t ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    memset(payload, 'p', sizeof payload);
    payload[0] = 0x03; /* a valid close code, for the close case */
    payload[1] = 0xE8;
    for (size_t i = 0; i < sizeof ops; i++) {
        size_t n = frame(f, (uint8_t)(FIN | ops[i]), payload, 126);
        expect_error_frame(1000, f, n, WS_CLOSE_PROTOCOL_ERROR);
        expect_error_frame(1000, f, 2, WS_CLOSE_PROTOCOL_ERROR); /* from the header */
        n = frame(f, (uint8_t)(FIN | ops[i]), payload, 200);
        expect_error_frame(1000, f, n, WS_CLOSE_PROTOCOL_ERROR);
        /* 125 is the limit and allowed. */
        n = frame(f, (uint8_t)(FIN | ops[i]), payload, 125);
        ws_reader r;
        ws_reader_init(&r, 1000);
        ws_event ev;
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.op, ops[i]);
        assert_int_equal(ev.len, ops[i] == WS_OP_CLOSE ? 123 : 125);
        ws_reader_free(&r);
    }
}

static void test_reader_control_fragmented(void **state)
{
    uint8_t f[32];
    size_t n = frame_str(f, WS_OP_PING, "x");
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    n = frame_str(f, WS_OP_PONG, "x");
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    n = close_frame_client(f, 1000, "", 0);
    f[0] &= 0x7F;
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    expect_error_frame(100, f, 1, WS_CLOSE_PROTOCOL_ERROR);
}

static void test_reader_continuation_without_start(void **state)
{
    uint8_t f[32];
    size_t n = frame_str(f, FIN | WS_OP_CONT, "x");
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    n = frame_str(f, WS_OP_CONT, "x");
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);

    /* Nor after a fragmented message has been completed. */
    uint8_t in[64];
    n = 0;
    n += frame_str(in + n, WS_OP_TEXT, "a");
    n += frame_str(in + n, FIN | WS_OP_CONT, "b");
    n += frame_str(in + n, FIN | WS_OP_CONT, "c");
    ws_reader r;
    ws_reader_init(&r, 100);
    result res[4];
    size_t k = run_stream(&r, in, n, res, 4);
    assert_int_equal(k, 3);
    assert_int_equal(res[1].rc, 1);
    assert_int_equal(res[2].rc, -WS_CLOSE_PROTOCOL_ERROR);
    ws_reader_free(&r);
}

static void test_reader_new_message_while_fragmenting(void **state)
{
    static const uint8_t second[] = {FIN | WS_OP_TEXT, WS_OP_TEXT, FIN | WS_OP_BINARY,
                                     WS_OP_BINARY};
    for (size_t i = 0; i < sizeof second; i++) {
        uint8_t in[64];
        size_t n = 0;
        n += frame_str(in + n, i % 2 ? WS_OP_BINARY : WS_OP_TEXT, "a");
        n += frame_str(in + n, FIN | WS_OP_PING, ""); /* control frames are fine */
        n += frame_str(in + n, second[i], "b");
        ws_reader r;
        ws_reader_init(&r, 100);
        result res[4];
        size_t k = run_stream(&r, in, n, res, 4);
        assert_int_equal(k, 3);
        assert_int_equal(res[0].rc, 0);
        assert_int_equal(res[1].rc, 1);
        assert_int_equal(res[2].rc, -WS_CLOSE_PROTOCOL_ERROR);
        ws_reader_free(&r);
    }
}

static void test_reader_64bit_top_bit(void **state)
{
    /* With no size limit in the way, only the top-bit rule can refuse these; like the
     * reference (Node's ws) it answers 1009, as for any length over the limit. */
    uint8_t f[16] = {FIN | WS_OP_BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    expect_error_frame(SIZE_MAX, f, 10, WS_CLOSE_TOO_BIG);
    expect_error_frame(SIZE_MAX, f, 14, WS_CLOSE_TOO_BIG);
    memset(f + 2, 0xFF, 8);
    expect_error_frame(SIZE_MAX, f, 14, WS_CLOSE_TOO_BIG);

    /* 2^63 - 1 is legal: the reader waits for it (and must not overflow computing the frame
     * end). */
    f[2] = 0x7F;
    ws_reader r;
    ws_reader_init(&r, SIZE_MAX);
    ws_event ev;
    size_t consumed = 7;
    assert_int_equal(ws_reader_parse(&r, f, 14, &consumed, &ev), 0);
    assert_int_equal(consumed, 0);
    /* A length that wraps size_t when added to the header. */
    uint8_t g[16] = {
        FIN | WS_OP_BINARY, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF5, 1, 2, 3, 4};
    assert_int_equal(ws_reader_parse(&r, g, 14, &consumed, &ev), 0);
    assert_int_equal(consumed, 0);
    ws_reader_free(&r);
}

static void test_reader_close_payload_len1(void **state)
{
    uint8_t f[32];
    size_t n = frame(f, FIN | WS_OP_CLOSE, "\x03", 1);
    expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
}

static void test_reader_close_codes(void **state)
{
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const int invalid[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                  1016, 1100, 2000, 2999, 5000, 6000, 65535};
    uint8_t f[64];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = close_frame_client(f, valid[i], "why", 3);
        ws_reader r;
        ws_reader_init(&r, 100);
        ws_event ev;
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.op, WS_OP_CLOSE);
        assert_int_equal(ev.close_code, valid[i]);
        assert_int_equal(ev.len, 3);
        ws_reader_free(&r);
        /* Without a reason too. */
        n = close_frame_client(f, valid[i], "", 0);
        ws_reader_init(&r, 100);
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.close_code, valid[i]);
        assert_int_equal(ev.len, 0);
        ws_reader_free(&r);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        size_t n = close_frame_client(f, invalid[i], "", 0);
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
        n = close_frame_client(f, invalid[i], "why", 3);
        expect_error_frame(100, f, n, WS_CLOSE_PROTOCOL_ERROR);
    }
}

static void test_reader_close_empty(void **state)
{
    uint8_t f[16];
    size_t n = close_frame_client(f, -1, NULL, 0);
    assert_int_equal(n, 6);
    ws_reader r;
    ws_reader_init(&r, 100);
    ws_event ev;
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
    assert_int_equal(ev.op, WS_OP_CLOSE);
    assert_int_equal(ev.close_code, WS_CLOSE_NO_STATUS);
    assert_int_equal(ev.len, 0);
    ws_reader_free(&r);
}

static void test_reader_close_reason(void **state)
{
    uint8_t f[64];
    size_t n = close_frame_client(f, 1000, "\xC3\xA9t\xC3\xA9", 5);
    ws_reader r;
    ws_reader_init(&r, 100);
    ws_event ev;
    uint8_t *copy;
    assert_int_equal(parse_alone(&r, f, n, &ev, &copy), 1);
    assert_int_equal(ev.close_code, 1000);
    assert_ptr_equal(ev.data, copy + 8); /* the reason, after the code */
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "\xC3\xA9t\xC3\xA9", 5);
    ws_reader_free(&r);
}

/* ---- reader: invalid UTF-8 (1007) ----------------------------------------------------- */

static void test_reader_text_invalid_utf8(void **state)
{
    static const char *bad[] = {"\xC0\xAF",    "\xED\xA0\x80", "\xF4\x90\x80\x80",
                                "abc\xE2\x82", "\xFF",         "0123456789abcdef\x80"};
    uint8_t f[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = frame_str(f, FIN | WS_OP_TEXT, bad[i]);
        expect_error_frame(100, f, n, WS_CLOSE_INVALID_DATA);
        /* The same bytes as binary are fine. */
        n = frame_str(f, FIN | WS_OP_BINARY, bad[i]);
        ws_reader r;
        ws_reader_init(&r, 100);
        ws_event ev;
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.len, strlen(bad[i]));
        assert_memory_equal(ev.data, bad[i], ev.len);
        ws_reader_free(&r);
    }
}

/* Runs a text message split into fragments (NULL-terminated), with a ping after each
 * fragment, and returns the index of the frame that failed (-1 if none) and its code. */
static int run_text_fragments(const char *const *frags, int *code, uint8_t *msg, size_t *msglen)
{
    uint8_t in[512];
    size_t n = 0;
    int nf = 0;
    while (frags[nf])
        nf++;
    for (int i = 0; i < nf; i++) {
        uint8_t b0 = (uint8_t)((i == 0 ? WS_OP_TEXT : WS_OP_CONT) | (i == nf - 1 ? FIN : 0));
        n += frame_str(in + n, b0, frags[i]);
        if (i < nf - 1)
            n += frame_str(in + n, FIN | WS_OP_PING, "");
    }
    ws_reader r;
    ws_reader_init(&r, 100);
    result res[32];
    size_t k = run_stream(&r, in, n, res, 32);
    ws_reader_free(&r);
    for (size_t i = 0; i < k; i++) {
        if (res[i].rc < 0) {
            *code = -res[i].rc;
            return (int)i / 2; /* a fragment index (pings interleaved) */
        }
    }
    assert_int_equal(res[k - 1].rc, 1);
    assert_int_equal(res[k - 1].ev.op, WS_OP_TEXT);
    memcpy(msg, res[k - 1].data, res[k - 1].ev.len);
    *msglen = res[k - 1].ev.len;
    return -1;
}

static void test_reader_utf8_across_fragments(void **state)
{
    uint8_t msg[256];
    size_t len = 0;
    int code = 0;

    /* U+1F600 split at every point. */
    const char *a[] = {"\xF0", "\x9F\x98\x80", NULL};
    assert_int_equal(run_text_fragments(a, &code, msg, &len), -1);
    assert_int_equal(len, 4);
    assert_memory_equal(msg, "\xF0\x9F\x98\x80", 4);
    const char *b[] = {"x\xF0\x9F", "\x98\x80y", NULL};
    assert_int_equal(run_text_fragments(b, &code, msg, &len), -1);
    assert_memory_equal(msg, "x\xF0\x9F\x98\x80y", 6);
    const char *c[] = {"\xF0", "\x9F", "", "\x98", "\x80", NULL};
    assert_int_equal(run_text_fragments(c, &code, msg, &len), -1);
    assert_int_equal(len, 4);
}

static void test_reader_utf8_fragment_fails_at_once(void **state)
{
    uint8_t msg[256];
    size_t len = 0;
    int code = 0;

    /* Invalid in the first fragment: fails there, before the message is finished. */
    const char *a[] = {"ok\xED\xA0\x80", "more", "end", NULL};
    assert_int_equal(run_text_fragments(a, &code, msg, &len), 0);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
    /* In a middle fragment. */
    const char *b[] = {"ok", "\xF4\x90\x80\x80", "end", NULL};
    assert_int_equal(run_text_fragments(b, &code, msg, &len), 1);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
    /* Made invalid by a later fragment: the overlong's second byte comes next. */
    const char *c[] = {"\xE0", "\x80\x80", "end", NULL};
    assert_int_equal(run_text_fragments(c, &code, msg, &len), 1);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
    /* Truncated at the end of the message. */
    const char *d[] = {"a\xF0\x9F", "\x98", NULL};
    assert_int_equal(run_text_fragments(d, &code, msg, &len), 1);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
    /* A pending sequence in the first fragment is not an error yet. */
    const char *e[] = {"a\xF0", "x", NULL};
    assert_int_equal(run_text_fragments(e, &code, msg, &len), 1);
    assert_int_equal(code, WS_CLOSE_INVALID_DATA);
}

static void test_reader_close_reason_invalid_utf8(void **state)
{
    static const char *bad[] = {"\xFF", "\xC3", "ok\xC0\xAF", "\xED\xBF\xBF"};
    uint8_t f[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = close_frame_client(f, 1000, bad[i], strlen(bad[i]));
        expect_error_frame(100, f, n, WS_CLOSE_INVALID_DATA);
    }
}

/* ---- reader: size limit (1009) -------------------------------------------------------- */

static void test_reader_too_big_from_header(void **state)
{
    static uint8_t payload[70000];
    uint8_t *f = malloc(sizeof payload + 14);
    assert_non_null(f);

    /* One byte over, in each length form; refused with only the length bytes present,
     * before the mask key or any payload has arrived. */
    size_t n = frame(f, FIN | WS_OP_TEXT, payload, 101);
    expect_error_frame(100, f, 2, WS_CLOSE_TOO_BIG);
    expect_error_frame(100, f, n, WS_CLOSE_TOO_BIG);
    n = frame(f, FIN | WS_OP_BINARY, payload, 1001);
    expect_error_frame(1000, f, 4, WS_CLOSE_TOO_BIG);
    expect_error_frame(1000, f, n, WS_CLOSE_TOO_BIG);
    n = frame(f, FIN | WS_OP_BINARY, payload, 65537);
    expect_error_frame(65536, f, 10, WS_CLOSE_TOO_BIG);
    expect_error_frame(65536, f, n, WS_CLOSE_TOO_BIG);
    /* A start fragment is limited the same way. */
    n = frame(f, WS_OP_BINARY, payload, 101);
    expect_error_frame(100, f, 2, WS_CLOSE_TOO_BIG);
    /* A huge announced length needs no buffering to be refused. */
    uint8_t g[10] = {FIN | WS_OP_BINARY, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0};
    expect_error_frame(1 << 20, g, 10, WS_CLOSE_TOO_BIG);

    /* Exactly the limit is accepted, in each form. */
    static const size_t ok[] = {100, 1000, 65536};
    for (size_t i = 0; i < 3; i++) {
        n = frame(f, FIN | WS_OP_BINARY, payload, ok[i]);
        ws_reader r;
        ws_reader_init(&r, ok[i]);
        ws_event ev;
        assert_int_equal(parse_alone(&r, f, 2, &ev, NULL), 0);
        assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
        assert_int_equal(ev.len, ok[i]);
        ws_reader_free(&r);
    }
    free(f);
}

static void test_reader_too_big_over_fragments(void **state)
{
    uint8_t in[128];
    ws_reader r;
    ws_event ev;
    size_t consumed;

    ws_reader_init(&r, 10);
    size_t n = frame_str(in, WS_OP_TEXT, "123456");
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
    n = frame_str(in, WS_OP_CONT, "7");
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
    /* 7 + 4 = 11 > 10: refused from the two header bytes. */
    n = frame_str(in, FIN | WS_OP_CONT, "89ab");
    assert_int_equal(ws_reader_parse(&r, in, 2, &consumed, &ev), -WS_CLOSE_TOO_BIG);
    assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), -WS_CLOSE_TOO_BIG);
    assert_true(r.msg.len <= 10);
    ws_reader_free(&r);

    /* Exactly 10 in total is fine, and the next message starts counting afresh. */
    ws_reader_init(&r, 10);
    for (int round = 0; round < 2; round++) {
        n = frame_str(in, WS_OP_BINARY, "123456");
        assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 0);
        n = frame_str(in, FIN | WS_OP_CONT, "789a");
        assert_int_equal(ws_reader_parse(&r, in, n, &consumed, &ev), 1);
        assert_int_equal(ev.len, 10);
        assert_memory_equal(ev.data, "123456789a", 10);
    }
    ws_reader_free(&r);
}

static void test_reader_control_frames_not_limited(void **state)
{
    /* max_message bounds messages; control frames have their own 125-byte bound. */
    uint8_t f[64];
    ws_reader r;
    ws_reader_init(&r, 4);
    ws_event ev;
    size_t n = frame_str(f, FIN | WS_OP_PING, "0123456789");
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
    assert_int_equal(ev.len, 10);
    n = close_frame_client(f, 1000, "a longer reason", 15);
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
    assert_int_equal(ev.close_code, 1000);
    ws_reader_free(&r);
}

static void test_reader_zero_limit(void **state)
{
    uint8_t f[16];
    size_t n = frame_str(f, FIN | WS_OP_TEXT, "");
    ws_reader r;
    ws_reader_init(&r, 0);
    ws_event ev;
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), 1);
    n = frame_str(f, FIN | WS_OP_TEXT, "x");
    assert_int_equal(parse_alone(&r, f, n, &ev, NULL), -WS_CLOSE_TOO_BIG);
    ws_reader_free(&r);
}

/* ---- reader: robustness --------------------------------------------------------------- */

static void check_outcome(ws_reader *r, const uint8_t *in, size_t len, int rc, size_t consumed,
                          const ws_event *ev)
{
    assert_true(consumed <= len);
    if (rc < 0) {
        assert_true(rc == -WS_CLOSE_PROTOCOL_ERROR || rc == -WS_CLOSE_INVALID_DATA ||
                    rc == -WS_CLOSE_TOO_BIG);
    } else if (rc > 0) {
        assert_true(consumed >= 6);
        bool in_input = ev->data >= in && ev->data + ev->len <= in + len;
        bool in_msg = r->msg.data && ev->data >= (const uint8_t *)r->msg.data &&
                      ev->data + ev->len <= (const uint8_t *)r->msg.data + r->msg.len;
        assert_true(in_input || in_msg || ev->len == 0);
        assert_true(ev->len <= r->max_message || ev->op >= WS_OP_CLOSE);
    }
}

static void test_reader_random_input(void **state)
{
    /* Garbage and mutated streams: whatever comes back must be in range, and under the
     * sanitizer build no read may leave the heap copy. */
    uint8_t base[512];
    size_t bn = 0;
    bn += frame_str(base + bn, WS_OP_TEXT, "Hel\xC3");
    bn += frame_str(base + bn, FIN | WS_OP_PING, "ping");
    bn += frame_str(base + bn, FIN | WS_OP_CONT, "\xA9lo");
    bn += frame(base + bn, FIN | WS_OP_BINARY, base, 130);
    bn += close_frame_client(base + bn, 1000, "bye", 3);

    for (int it = 0; it < 100000; it++) {
        uint8_t tmp[512];
        size_t n;
        if (it % 2) {
            n = rng() % 64;
            for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)rng();
            if (n > 1 && rng() % 2)
                tmp[1] |= 0x80; /* mostly masked, to get past the first check */
        } else {
            n = bn;
            memcpy(tmp, base, bn);
            int flips = 1 + (int)(rng() % 4);
            for (int k = 0; k < flips; k++)
                tmp[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
            n -= rng() % 8;
        }
        uint8_t *in = malloc(n ? n : 1);
        assert_non_null(in);
        memcpy(in, tmp, n);
        ws_reader r;
        ws_reader_init(&r, rng() % 2 ? 64 : 1000);
        size_t off = 0;
        for (int guard = 0; guard < 64; guard++) {
            ws_event ev;
            size_t consumed = 0;
            int rc = ws_reader_parse(&r, in + off, n - off, &consumed, &ev);
            check_outcome(&r, in + off, n - off, rc, consumed, &ev);
            if (rc < 0 || consumed == 0)
                break;
            off += consumed;
        }
        ws_reader_free(&r);
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_7bit),
        cmocka_unit_test(test_header_16bit),
        cmocka_unit_test(test_header_64bit),
        cmocka_unit_test(test_header_fin_and_opcode),
        cmocka_unit_test(test_close_frame_basic),
        cmocka_unit_test(test_close_frame_no_status),
        cmocka_unit_test(test_close_frame_truncates),
        cmocka_unit_test(test_close_frame_truncates_on_char_boundary),
        cmocka_unit_test(test_close_frame_parses_back),
        cmocka_unit_test(test_accept_key_rfc),
        cmocka_unit_test(test_accept_key_invalid),
        cmocka_unit_test(test_accept_key_loose_padding_bits),
        cmocka_unit_test(test_utf8_valid_vectors),
        cmocka_unit_test(test_utf8_invalid_vectors),
        cmocka_unit_test(test_utf8_rejects_early),
        cmocka_unit_test(test_utf8_reject_is_sticky),
        cmocka_unit_test(test_utf8_split_everywhere),
        cmocka_unit_test(test_utf8_ascii_fast_path),
        cmocka_unit_test(test_utf8_exhaustive_short),
        cmocka_unit_test(test_utf8_random_against_reference),
        cmocka_unit_test(test_reader_rfc_hello),
        cmocka_unit_test(test_reader_unmask_sizes),
        cmocka_unit_test(test_reader_length_encodings),
        cmocka_unit_test(test_reader_empty_frames),
        cmocka_unit_test(test_reader_partial_frames),
        cmocka_unit_test(test_reader_fragments_with_interleaved_control),
        cmocka_unit_test(test_reader_fragment_buffer_and_state),
        cmocka_unit_test(test_reader_large_fragmented),
        cmocka_unit_test(test_reader_rsv_bits),
        cmocka_unit_test(test_reader_unknown_opcodes),
        cmocka_unit_test(test_reader_unmasked),
        cmocka_unit_test(test_reader_control_too_long),
        cmocka_unit_test(test_reader_control_fragmented),
        cmocka_unit_test(test_reader_continuation_without_start),
        cmocka_unit_test(test_reader_new_message_while_fragmenting),
        cmocka_unit_test(test_reader_64bit_top_bit),
        cmocka_unit_test(test_reader_close_payload_len1),
        cmocka_unit_test(test_reader_close_codes),
        cmocka_unit_test(test_reader_close_empty),
        cmocka_unit_test(test_reader_close_reason),
        cmocka_unit_test(test_reader_text_invalid_utf8),
        cmocka_unit_test(test_reader_utf8_across_fragments),
        cmocka_unit_test(test_reader_utf8_fragment_fails_at_once),
        cmocka_unit_test(test_reader_close_reason_invalid_utf8),
        cmocka_unit_test(test_reader_too_big_from_header),
        cmocka_unit_test(test_reader_too_big_over_fragments),
        cmocka_unit_test(test_reader_control_frames_not_limited),
        cmocka_unit_test(test_reader_zero_limit),
        cmocka_unit_test(test_reader_random_input),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(last_copy);
    return failed;
}
