/* fuzz_ws.c: libFuzzer target for the WebSocket frame reader and the UTF-8 validator of
 * rtd/net/ws.c.
 *
 * Input: byte 0 seeds the way the stream is split into reads, byte 1 picks max_message, the
 * rest is the byte stream a client sends.
 *
 * The stream is parsed twice: all at once, and delivered in reads of pseudo-random sizes
 * (each read as an exact-size heap buffer, so AddressSanitizer sees any read past the end).
 * Both must produce the same events and end the same way, and every event must honour the
 * reader's contract (ops, limits, UTF-8 in text and close reasons, valid close codes).
 *
 * The stream is also checked as UTF-8: ws_utf8_valid must agree with a plain decoding
 * reference, and ws_utf8_step, started at 0 and split at every point, must reject exactly
 * when the prefix can no longer be valid and must agree with the whole-buffer answer. */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "rtd/lib/buf.h"
#include "rtd/net/ws.h"
#include "tests/fuzz/fuzz.h"

/* ---- the reader ----------------------------------------------------------------------- */

struct event {
    enum ws_opcode op;
    uint16_t close_code;
    size_t off, len; /* payload bytes in the trace's data buffer */
};

struct trace {
    struct event *ev;
    size_t nev, capev;
    buf data;
    int status;      /* 0, or the parser's negative result */
    size_t leftover; /* bytes never consumed (an unfinished frame) */
};

static void trace_free(struct trace *t)
{
    free(t->ev);
    buf_free(&t->data);
}

static bool valid_close_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Checks one result of ws_reader_parse against the contract and records its event. */
static void check_result(ws_reader *r, const uint8_t *in, size_t len, int rc, size_t consumed,
                         const ws_event *ev, struct trace *t)
{
    FUZZ_CHECK(consumed <= len);
    if (rc < 0) {
        FUZZ_CHECK(rc == -WS_CLOSE_PROTOCOL_ERROR || rc == -WS_CLOSE_INVALID_DATA ||
                   rc == -WS_CLOSE_TOO_BIG || rc == -WS_CLOSE_INTERNAL);
        return;
    }
    if (rc == 0)
        return;
    /* A frame is at least 2 header bytes and a 4-byte key. */
    FUZZ_CHECK(consumed >= 6);
    FUZZ_CHECK(ev->len == 0 || ev->data != NULL);
    bool in_input = ev->data >= in && ev->data + ev->len <= in + len;
    bool in_msg = r->msg.data && ev->data >= (const uint8_t *)r->msg.data &&
                  ev->data + ev->len <= (const uint8_t *)r->msg.data + r->msg.len;
    FUZZ_CHECK(in_input || in_msg || ev->len == 0);
    switch (ev->op) {
    case WS_OP_TEXT:
        FUZZ_CHECK(ws_utf8_valid(ev->data, ev->len));
        /* fall through */
    case WS_OP_BINARY:
        FUZZ_CHECK(ev->len <= r->max_message);
        FUZZ_CHECK(!r->fragmenting);
        break;
    case WS_OP_PING:
    case WS_OP_PONG:
        FUZZ_CHECK(ev->len <= 125);
        break;
    case WS_OP_CLOSE:
        if (ev->close_code == WS_CLOSE_NO_STATUS) {
            FUZZ_CHECK(ev->len == 0);
        } else {
            FUZZ_CHECK(valid_close_code(ev->close_code));
            FUZZ_CHECK(ev->len <= 123);
            FUZZ_CHECK(ws_utf8_valid(ev->data, ev->len));
        }
        break;
    default:
        FUZZ_CHECK(!"unexpected opcode in an event");
    }
    if (t->nev == t->capev) {
        t->capev = t->capev ? 2 * t->capev : 16;
        t->ev = realloc(t->ev, t->capev * sizeof *t->ev);
        FUZZ_CHECK(t->ev != NULL);
    }
    t->ev[t->nev++] = (struct event){ev->op, ev->close_code, t->data.len, ev->len};
    FUZZ_CHECK(buf_append(&t->data, ev->data, ev->len) == 0);
}

/* Feeds s[0..n) to a fresh reader, in one read (seed 0) or in reads of sizes drawn from
 * seed, and records what comes out. */
static void run_reader(const uint8_t *s, size_t n, size_t max_message, uint64_t seed,
                       struct trace *t)
{
    ws_reader r;
    ws_reader_init(&r, max_message);
    buf pending = BUF_INIT;
    size_t pos = 0;
    t->status = 0;
    for (;;) {
        size_t chunk = n - pos;
        if (seed) {
            uint64_t x = fuzz_rng(&seed);
            size_t want = (x & 3) == 0 ? 1 + (size_t)((x >> 8) % 300) : 1 + (size_t)((x >> 8) % 8);
            if (want < chunk)
                chunk = want;
        }
        FUZZ_CHECK(buf_append(&pending, s + pos, chunk) == 0);
        pos += chunk;

        size_t len = pending.len;
        uint8_t *in = malloc(len ? len : 1);
        FUZZ_CHECK(in != NULL);
        if (len)
            memcpy(in, pending.data, len);
        size_t off = 0;
        for (;;) {
            ws_event ev;
            size_t consumed = 0;
            int rc = ws_reader_parse(&r, in + off, len - off, &consumed, &ev);
            check_result(&r, in + off, len - off, rc, consumed, &ev, t);
            if (rc < 0) {
                t->status = rc;
                free(in);
                goto done;
            }
            if (consumed == 0)
                break;
            off += consumed;
        }
        /* What was not consumed was not touched either: keep it for the next read. */
        FUZZ_CHECK(off == len || memcmp(in + off, pending.data + off, len - off) == 0);
        buf_consume(&pending, off);
        free(in);
        if (pos == n)
            break;
    }
done:
    t->leftover = pending.len;
    buf_free(&pending);
    ws_reader_free(&r);
}

static void compare_traces(const struct trace *a, const struct trace *b)
{
    FUZZ_CHECK(a->status == b->status);
    FUZZ_CHECK(a->nev == b->nev);
    for (size_t i = 0; i < a->nev; i++) {
        FUZZ_CHECK(a->ev[i].op == b->ev[i].op);
        FUZZ_CHECK(a->ev[i].close_code == b->ev[i].close_code);
        FUZZ_CHECK(a->ev[i].len == b->ev[i].len);
        FUZZ_CHECK(a->ev[i].len == 0 || memcmp(a->data.data + a->ev[i].off,
                                               b->data.data + b->ev[i].off, a->ev[i].len) == 0);
    }
    if (a->status == 0)
        FUZZ_CHECK(a->leftover == b->leftover);
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

static bool cp_ok(uint32_t cp, uint32_t min)
{
    return cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

/* The reference, decoding each sequence: -1 when no continuation can make p[0..n) valid,
 * 0 when it is valid, 1 when it is valid so far but ends inside a character. A sequence cut
 * short can still be completed when filling its missing bytes with the smallest or the
 * largest continuation (80 or BF) gives a valid code point. */
static int ref_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC0 && c < 0xE0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c < 0xF0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c < 0xF8) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        size_t have = n - i - 1 < need ? n - i - 1 : need;
        uint32_t lo = cp, hi = cp;
        for (size_t k = 1; k <= need; k++) {
            if (k <= have && (p[i + k] & 0xC0) != 0x80)
                return -1;
            uint32_t bits = k <= have ? (uint32_t)(p[i + k] & 0x3F) : 0;
            lo = lo << 6 | bits;
            hi = hi << 6 | (k <= have ? bits : 0x3F);
        }
        if (have < need)
            return cp_ok(lo, min) || cp_ok(hi, min) ? 1 : -1;
        if (!cp_ok(lo, min))
            return -1;
        i += need + 1;
    }
    return 0;
}

static void check_utf8(const uint8_t *p, size_t n)
{
    int whole = ref_utf8(p, n);
    bool valid = ws_utf8_valid(p, n);
    FUZZ_CHECK(valid == (whole == 0));
    uint32_t full = ws_utf8_step(0, p, n);
    FUZZ_CHECK((full == 0) == valid);
    FUZZ_CHECK((full == WS_UTF8_REJECT) == (whole < 0));
    /* Split at every point: the first part's state is exactly the reference's verdict on
     * the prefix, and carrying it on gives the whole buffer's answer. */
    for (size_t k = 0; k <= n; k++) {
        uint32_t st = ws_utf8_step(0, p, k);
        int pre = ref_utf8(p, k);
        FUZZ_CHECK((st == WS_UTF8_REJECT) == (pre < 0));
        FUZZ_CHECK((st == 0) == (pre == 0));
        uint32_t st2 = ws_utf8_step(st, p + k, n - k);
        FUZZ_CHECK(st2 == full);
    }
    /* One byte at a time, and rejection is final. */
    uint32_t st = 0;
    for (size_t i = 0; i < n; i++)
        st = ws_utf8_step(st, p + i, 1);
    FUZZ_CHECK(st == full);
    FUZZ_CHECK(ws_utf8_step(WS_UTF8_REJECT, p, n) == WS_UTF8_REJECT);
}

/* ---- entry point ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t limits[8] = {0, 1, 16, 125, 126, 1000, 4096, 4096};
    if (size < 2)
        return 0;
    uint64_t seed = data[0] + 1u;
    size_t max_message = limits[data[1] & 7];
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    struct trace whole = {0}, split = {0};
    run_reader(s, n, max_message, 0, &whole);
    run_reader(s, n, max_message, seed, &split);
    compare_traces(&whole, &split);
    trace_free(&whole);
    trace_free(&split);

    /* Every split point costs a pass over the rest: keep the UTF-8 part to 1 KiB. */
    check_utf8(s, n < 1024 ? n : 1024);
    return 0;
}
