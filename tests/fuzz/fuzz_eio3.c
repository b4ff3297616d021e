/* fuzz_eio3.c: libFuzzer target for the Engine.IO v3 encodings of rtd/engine/eio3.c (Socket.IO 2.x
 * clients): WebSocket messages (eio3_decode_ws), polling bodies in the text and the binary
 * payload format (eio3_decode_payload) and JSONP form bodies (eio3_jsonp_body, whose result
 * rtd/engine/eio_polling.c decodes as a text payload).
 *
 * Input: byte 0 picks the frame / body kind (bit 0: binary) and max_packets (the other
 * bits, 127: no limit); byte 1 makes the callback stop at a given packet with a given result
 * (bits 0-5), picks the format the decoded packets are encoded again in (bit 6) and the
 * JSONP callback index (bit 7); the rest is the message or body (an exact-size heap copy, so
 * AddressSanitizer sees any overread).
 *
 * Every decoder is compared with a reference model written from the format ("<length>:"
 * prefixes counted in UTF-16 code units by decoding the UTF-8, "<0|1><digits>\xff" binary
 * framing, strict base64, the form's d field with engine.io's two newline replacements),
 * down to every packet handed to the callback and the result. The packets that decode are
 * then encoded again with eio3_encode_payload, which must give exactly the bytes the model
 * writes (so the length prefixes agree with an independent UTF-16 count) and decode back to
 * the same packets; binary packets also go through eio3_ws_binary and back, and JSONP
 * wrapping must give a JavaScript string literal holding the payload. */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rtd/engine/eio3.h"
#include "rtd/engine/eio_packet.h"
#include "rtd/lib/buf.h"
#include "rtd/net/ws.h"
#include "tests/fuzz/fuzz.h"

/* ---- reference helpers ---------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF) and its code point, or -1. */
static int ref_utf8_at(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return -1;
    unsigned char c = s[0];
    int more;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC0 && c < 0xE0) {
        more = 1, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c < 0xF0) {
        more = 2, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c < 0xF8) {
        more = 3, v = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n - 1 < (size_t)more)
        return -1;
    for (int k = 1; k <= more; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return -1;
        v = v << 6 | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return -1;
    *cp = v;
    return more + 1;
}

/* JavaScript's String#length of UTF-8 text, or -1 when it is not UTF-8. */
static long ref_utf16_len(const unsigned char *s, size_t n)
{
    long units = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int l = ref_utf8_at(s + i, n - i, &cp);
        if (l < 0)
            return -1;
        units += cp >= 0x10000 ? 2 : 1;
        i += (size_t)l;
    }
    return units;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int ref_b64val(unsigned char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

/* Strict padded base64 ('=' only as the last one or two characters; the unused bits of the
 * last character are not checked, as in rtd/lib/util.c). Returns the decoded length or -1. */
static long ref_b64_decode(const unsigned char *in, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t pad = n >= 1 && in[n - 1] == '=' ? (n >= 2 && in[n - 2] == '=' ? 2 : 1) : 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t acc = 0;
        for (size_t k = 0; k < 4; k++) {
            int v = i + k >= n - pad ? 0 : ref_b64val(in[i + k]);
            if (v < 0)
                return -1;
            acc = acc << 6 | (uint32_t)v;
        }
        out[o++] = (unsigned char)(acc >> 16);
        out[o++] = (unsigned char)(acc >> 8);
        out[o++] = (unsigned char)acc;
    }
    return (long)(o - pad);
}

static void ref_b64_encode(buf *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t acc = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            acc |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            acc |= p[i + 2];
        char q[4] = {b64chars[acc >> 18], b64chars[(acc >> 12) & 63],
                     i + 1 < n ? b64chars[(acc >> 6) & 63] : '=',
                     i + 2 < n ? b64chars[acc & 63] : '='};
        FUZZ_CHECK(buf_append(out, q, 4) == 0);
    }
}

/* ---- packet logs ---------------------------------------------------------------------- */

/* Every packet a decoder produced, flattened: type, binary, length, bytes. */
static void log_packet(buf *log, int type, bool binary, const unsigned char *p, size_t len)
{
    unsigned char hdr[2] = {(unsigned char)type, binary};
    FUZZ_CHECK(buf_append(log, hdr, 2) == 0);
    FUZZ_CHECK(buf_append(log, &len, sizeof len) == 0);
    FUZZ_CHECK(buf_append(log, p, len) == 0);
}

struct logged {
    int type;
    bool binary;
    const unsigned char *data;
    size_t len;
};

/* Walks a log: the packet at *pos, or false at the end. */
static bool next_logged(const buf *log, size_t *pos, struct logged *out)
{
    if (*pos >= log->len)
        return false;
    const unsigned char *p = (const unsigned char *)log->data + *pos;
    out->type = p[0];
    out->binary = p[1];
    memcpy(&out->len, p + 2, sizeof out->len);
    out->data = p + 2 + sizeof out->len;
    *pos += 2 + sizeof out->len + out->len;
    return true;
}

static void same_log(const buf *a, const buf *b)
{
    FUZZ_CHECK(a->len == b->len);
    FUZZ_CHECK(a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* ---- reference models ----------------------------------------------------------------- */

struct model {
    size_t max_packets;
    int stop_at, stop_ret;
    int n; /* packets emitted */
    buf log;
};

/* Records a packet; returns the callback's result. */
static int emit(struct model *m, int type, bool binary, const unsigned char *p, size_t len)
{
    m->n++;
    log_packet(&m->log, type, binary, p, len);
    return m->n == m->stop_at ? m->stop_ret : 0;
}

/* One text packet: "<type><data>" with type '1'..'6', or "b<type><base64>" with type
 * '1'..'6' for a binary one. dec holds at least n bytes. */
static int model_text_packet(const unsigned char *p, size_t n, unsigned char *dec,
                             struct logged *out)
{
    if (n >= 1 && p[0] == 'b') {
        if (n < 2 || p[1] < '1' || p[1] > '6')
            return -1;
        long dn = ref_b64_decode(p + 2, n - 2, dec);
        if (dn < 0)
            return -1;
        *out = (struct logged){p[1] - '0', true, dec, (size_t)dn};
        return 0;
    }
    if (n < 1 || p[0] < '1' || p[0] > '6')
        return -1;
    *out = (struct logged){p[0] - '0', false, p + 1, n - 1};
    return 0;
}

/* "<UTF-16 length>:<packet>" repeated; empty packets ("0:") are skipped, none at all is an
 * error. */
static int model_text(struct model *m, const unsigned char *b, size_t len)
{
    if (len == 0)
        return -1;
    unsigned char *dec = malloc(len);
    FUZZ_CHECK(dec != NULL);
    size_t pos = 0, count = 0;
    int result = 0;
    while (pos < len) {
        size_t digits = 0;
        uint64_t units = 0;
        while (pos < len && b[pos] >= '0' && b[pos] <= '9') {
            digits++;
            units = units * 10 + (uint64_t)(b[pos] - '0');
            pos++;
        }
        if (digits == 0 || digits > 10 || pos == len || b[pos] != ':') {
            result = -1;
            break;
        }
        pos++;
        size_t start = pos;
        uint64_t got = 0;
        while (got < units) {
            uint32_t cp;
            int l = ref_utf8_at(b + pos, len - pos, &cp);
            if (l < 0)
                break;
            got += cp >= 0x10000 ? 2 : 1;
            pos += (size_t)l;
        }
        if (got != units) {
            result = -1;
            break;
        }
        if (pos == start)
            continue;
        struct logged pk;
        if (++count > m->max_packets || model_text_packet(b + start, pos - start, dec, &pk) < 0) {
            result = -1;
            break;
        }
        int r = emit(m, pk.type, pk.binary, pk.data, pk.len);
        if (r) {
            result = r;
            break;
        }
    }
    if (result == 0 && count == 0)
        result = -1;
    free(dec);
    return result;
}

/* <0|1><length as digit bytes><0xFF><packet> repeated: 0 a text packet "<type><data>" in
 * UTF-8, 1 a binary one <type byte><data>; the length counts the type. */
static int model_binary(struct model *m, const unsigned char *b, size_t len)
{
    if (len == 0)
        return -1;
    size_t pos = 0, count = 0;
    while (pos < len) {
        unsigned char kind = b[pos++];
        if (kind > 1)
            return -1;
        size_t digits = 0;
        uint64_t n = 0;
        while (pos < len && b[pos] != 0xFF) {
            if (b[pos] > 9)
                return -1;
            digits++;
            n = n * 10 + b[pos];
            pos++;
        }
        if (digits == 0 || digits > 10 || pos == len)
            return -1;
        pos++;
        if (n == 0 || n > len - pos)
            return -1;
        const unsigned char *p = b + pos;
        if (++count > m->max_packets)
            return -1;
        int r;
        if (kind == 0) {
            if (ref_utf16_len(p, (size_t)n) < 0 || p[0] < '1' || p[0] > '6')
                return -1;
            r = emit(m, p[0] - '0', false, p + 1, (size_t)n - 1);
        } else {
            if (p[0] < 1 || p[0] > 6)
                return -1;
            r = emit(m, p[0], true, p + 1, (size_t)n - 1);
        }
        if (r)
            return r;
        pos += (size_t)n;
    }
    return count > 0 ? 0 : -1;
}

static int hex_digit(unsigned char c)
{
    const char *h = "0123456789abcdef";
    if (c >= 'A' && c <= 'F')
        c = (unsigned char)(c - 'A' + 'a');
    const char *p = c ? strchr(h, c) : NULL;
    return p ? (int)(p - h) : -1;
}

/* The first form field named d (taken literally, as "d="), URL-decoded strictly ('+' is a
 * space, '%' needs two hex digits), then engine.io's two replacements on it: first
 * /(\\)?\\n/g keeps a backslash-backslash-n and turns a backslash-n into a newline, then
 * /\\\\n/g turns a backslash-backslash-n into backslash-n. */
static int model_jsonp(const unsigned char *b, size_t len, buf *out)
{
    const unsigned char *val = NULL;
    size_t vlen = 0;
    for (size_t start = 0; start < len;) {
        size_t end = start;
        while (end < len && b[end] != '&')
            end++;
        if (end - start >= 2 && b[start] == 'd' && b[start + 1] == '=') {
            val = b + start + 2;
            vlen = end - start - 2;
            break;
        }
        start = end + 1;
    }
    if (!val)
        return -1;
    unsigned char *d = malloc(vlen + 1), *e = malloc(vlen + 1);
    FUZZ_CHECK(d != NULL && e != NULL);
    size_t dn = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (val[i] == '%') {
            if (vlen - i < 3 || hex_digit(val[i + 1]) < 0 || hex_digit(val[i + 2]) < 0) {
                free(d);
                free(e);
                return -1;
            }
            d[dn++] = (unsigned char)(hex_digit(val[i + 1]) * 16 + hex_digit(val[i + 2]));
            i += 2;
        } else {
            d[dn++] = val[i] == '+' ? ' ' : val[i];
        }
    }
    size_t en = 0;
    for (size_t i = 0; i < dn;) {
        if (dn - i >= 3 && d[i] == '\\' && d[i + 1] == '\\' && d[i + 2] == 'n') {
            memcpy(e + en, d + i, 3);
            en += 3;
            i += 3;
        } else if (dn - i >= 2 && d[i] == '\\' && d[i + 1] == 'n') {
            e[en++] = '\n';
            i += 2;
        } else {
            e[en++] = d[i++];
        }
    }
    for (size_t i = 0; i < en;) {
        if (en - i >= 3 && e[i] == '\\' && e[i + 1] == '\\' && e[i + 2] == 'n') {
            FUZZ_CHECK(buf_append(out, "\\n", 2) == 0);
            i += 3;
        } else {
            FUZZ_CHECK(buf_putc(out, e[i++]) == 0);
        }
    }
    free(d);
    free(e);
    return 0;
}

/* The payload a list of packets encodes to, written from the format. */
static void model_encode(buf *out, const buf *log, bool binary_format)
{
    size_t pos = 0;
    struct logged pk;
    while (next_logged(log, &pos, &pk)) {
        if (binary_format) {
            char digits[24];
            int nd = snprintf(digits, sizeof digits, "%zu", pk.len + 1);
            FUZZ_CHECK(buf_putc(out, pk.binary ? 1 : 0) == 0);
            for (int i = 0; i < nd; i++)
                FUZZ_CHECK(buf_putc(out, digits[i] - '0') == 0);
            FUZZ_CHECK(buf_putc(out, 0xFF) == 0);
            FUZZ_CHECK(buf_putc(out, pk.binary ? pk.type : '0' + pk.type) == 0);
            FUZZ_CHECK(buf_append(out, pk.data, pk.len) == 0);
        } else if (pk.binary) {
            buf b64 = BUF_INIT;
            ref_b64_encode(&b64, pk.data, pk.len);
            FUZZ_CHECK(buf_printf(out, "%zu:b%c", b64.len + 2, '0' + pk.type) == 0);
            FUZZ_CHECK(buf_append(out, b64.data, b64.len) == 0);
            buf_free(&b64);
        } else {
            long units = ref_utf16_len(pk.data, pk.len);
            FUZZ_CHECK(units >= 0);
            FUZZ_CHECK(buf_printf(out, "%ld:%c", units + 1, '0' + pk.type) == 0);
            FUZZ_CHECK(buf_append(out, pk.data, pk.len) == 0);
        }
    }
}

/* ---- what rtd's decoders hand out ----------------------------------------------------- */

struct seen {
    struct model m; /* the same stop rule, and the log of what the callback got */
    const unsigned char *body;
    size_t body_len;
    buf *scratch;
    bool binary_body;
};

static int on_packet(void *ud, const eio_in *pkt)
{
    struct seen *s = ud;
    FUZZ_CHECK(pkt->type >= EIO_CLOSE && pkt->type <= EIO_NOOP);
    if (pkt->binary && !s->binary_body) {
        /* base64 in a text payload: decoded into scratch */
        FUZZ_CHECK(pkt->len == s->scratch->len);
        FUZZ_CHECK(pkt->len == 0 || pkt->data == (const unsigned char *)s->scratch->data);
    } else {
        FUZZ_CHECK(pkt->data > s->body && pkt->data + pkt->len <= s->body + s->body_len);
        if (pkt->binary)
            FUZZ_CHECK(pkt->data[-1] == pkt->type);
        else
            FUZZ_CHECK(pkt->data[-1] == '0' + (int)pkt->type);
    }
    return emit(&s->m, pkt->type, pkt->binary, pkt->data, pkt->len);
}

/* Runs eio3_decode_payload and the model on the same bytes; returns the result, with the
 * packets in *log. */
static int decode_both(const unsigned char *body, size_t len, bool binary_body, size_t max_packets,
                       int stop_at, int stop_ret, buf *log)
{
    buf scratch = BUF_INIT;
    struct seen s = {.m = {max_packets, stop_at, stop_ret, 0, BUF_INIT},
                     .body = body,
                     .body_len = len,
                     .scratch = &scratch,
                     .binary_body = binary_body};
    int r = eio3_decode_payload(body, len, binary_body, max_packets, &scratch, on_packet, &s);
    struct model m = {max_packets, stop_at, stop_ret, 0, BUF_INIT};
    int want = binary_body ? model_binary(&m, body, len) : model_text(&m, body, len);
    FUZZ_CHECK(r == want);
    same_log(&s.m.log, &m.log);
    FUZZ_CHECK((size_t)s.m.n <= max_packets);
    buf_free(&m.log);
    buf_free(&scratch);
    *log = s.m.log;
    return r;
}

/* The packets of log encoded again must be what the model writes and decode back. */
static void check_reencode(const buf *log, bool binary_format)
{
    size_t n = 0, pos = 0;
    struct logged pk;
    while (next_logged(log, &pos, &pk))
        n++;
    if (n == 0)
        return;
    eio_packet **pkts = calloc(n, sizeof *pkts);
    FUZZ_CHECK(pkts != NULL);
    pos = 0;
    for (size_t i = 0; next_logged(log, &pos, &pk); i++) {
        pkts[i] = eio_packet_new((enum eio_type)pk.type, pk.binary, pk.data, pk.len);
        FUZZ_CHECK(pkts[i] != NULL);
    }
    buf enc = BUF_INIT, want = BUF_INIT, back = BUF_INIT;
    FUZZ_CHECK(eio3_encode_payload(&enc, pkts, n, binary_format) == 0);
    model_encode(&want, log, binary_format);
    same_log(&enc, &want);
    /* decoded by rtd and by the model, with exactly room for n packets */
    FUZZ_CHECK(
        decode_both((const unsigned char *)enc.data, enc.len, binary_format, n, 0, 0, &back) == 0);
    same_log(&back, log);
    for (size_t i = 0; i < n; i++)
        eio_packet_unref(pkts[i]);
    free(pkts);
    buf_free(&enc);
    buf_free(&want);
    buf_free(&back);
}

/* A binary packet sent to a v3 WebSocket, as a binary frame or as base64 text, must decode
 * back to itself. */
static void check_ws_binary(const eio_in *in)
{
    eio_packet *p = eio_packet_new(in->type, true, in->data, in->len);
    FUZZ_CHECK(p != NULL);
    for (int base64 = 0; base64 <= 1; base64++) {
        eio_packet *q = eio3_ws_binary(p, base64);
        FUZZ_CHECK(q != NULL && q->refs == 1);
        FUZZ_CHECK(q->binary == !base64);
        size_t flen;
        const unsigned char *f = eio_packet_ws_frame(q, &flen);
        FUZZ_CHECK(flen > q->ws_hdr_len);
        size_t body = flen - q->ws_hdr_len;
        uint8_t hdr[WS_MAX_HEADER];
        size_t hlen = ws_frame_header(hdr, base64 ? WS_OP_TEXT : WS_OP_BINARY, true, body);
        FUZZ_CHECK(hlen == q->ws_hdr_len && memcmp(f, hdr, hlen) == 0);
        const unsigned char *m = f + hlen;
        if (base64) {
            buf b64 = BUF_INIT;
            ref_b64_encode(&b64, in->data, in->len);
            FUZZ_CHECK(body == 2 + b64.len && m[0] == 'b' && m[1] == '0' + (int)in->type);
            FUZZ_CHECK(b64.len == 0 || memcmp(m + 2, b64.data, b64.len) == 0);
            buf_free(&b64);
        } else {
            FUZZ_CHECK(body == in->len + 1 && m[0] == in->type);
            FUZZ_CHECK(in->len == 0 || memcmp(m + 1, in->data, in->len) == 0);
        }
        buf scratch = BUF_INIT;
        eio_in back;
        FUZZ_CHECK(eio3_decode_ws(m, body, !base64, &scratch, &back) == 0);
        FUZZ_CHECK(back.type == in->type && back.binary && back.len == in->len);
        FUZZ_CHECK(in->len == 0 || memcmp(back.data, in->data, in->len) == 0);
        buf_free(&scratch);
        eio_packet_unref(q);
    }
    eio_packet_unref(p);
}

/* JSON string body -> bytes (the escapes buf_json_escape and eio3_jsonp_wrap write, and the
 * rest of JSON's); -1 for what a JSON string cannot hold. */
static long ref_json_unescape(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c < 0x20)
            return -1;
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (++i == n)
            return -1;
        static const char names[] = "\"\\/bfnrt", values[] = "\"\\/\b\f\n\r\t";
        const char *simple = s[i] ? strchr(names, s[i]) : NULL;
        if (simple) {
            out[o++] = (unsigned char)values[simple - names];
            continue;
        }
        if (s[i] != 'u' || n - i < 5)
            return -1;
        uint32_t cp = 0;
        for (int k = 1; k <= 4; k++) {
            int h = hex_digit(s[i + k]);
            if (h < 0)
                return -1;
            cp = cp << 4 | (uint32_t)h;
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return -1; /* never written: bytes are escaped one by one */
        if (cp < 0x80) {
            out[o++] = (unsigned char)cp;
        } else if (cp < 0x800) {
            out[o++] = (unsigned char)(0xC0 | cp >> 6);
            out[o++] = (unsigned char)(0x80 | (cp & 63));
        } else {
            out[o++] = (unsigned char)(0xE0 | cp >> 12);
            out[o++] = (unsigned char)(0x80 | ((cp >> 6) & 63));
            out[o++] = (unsigned char)(0x80 | (cp & 63));
        }
    }
    return (long)o;
}

static void check_jsonp_wrap(const char *j, const unsigned char *payload, size_t len)
{
    buf w = BUF_INIT;
    FUZZ_CHECK(eio3_jsonp_wrap(&w, j, (const char *)payload, len) == 0);
    buf head = BUF_INIT;
    FUZZ_CHECK(buf_puts(&head, "___eio[") == 0);
    for (const char *c = j; c && *c; c++)
        if (strchr("0123456789", *c))
            FUZZ_CHECK(buf_putc(&head, *c) == 0);
    FUZZ_CHECK(buf_puts(&head, "](\"") == 0);
    FUZZ_CHECK(w.len >= head.len + 3);
    FUZZ_CHECK(memcmp(w.data, head.data, head.len) == 0);
    FUZZ_CHECK(memcmp(w.data + w.len - 3, "\");", 3) == 0);
    const unsigned char *lit = (const unsigned char *)w.data + head.len;
    size_t lit_len = w.len - head.len - 3;
    /* U+2028 and U+2029 end a line in JavaScript: they must be escaped. */
    for (size_t i = 0; i + 2 < lit_len; i++)
        FUZZ_CHECK(!(lit[i] == 0xE2 && lit[i + 1] == 0x80 && (lit[i + 2] & 0xFE) == 0xA8));
    unsigned char *dec = malloc(lit_len + 1);
    FUZZ_CHECK(dec != NULL);
    long dn = ref_json_unescape(lit, lit_len, dec);
    FUZZ_CHECK(dn >= 0 && (size_t)dn == len);
    FUZZ_CHECK(len == 0 || memcmp(dec, payload, len) == 0);
    free(dec);
    buf_free(&head);
    buf_free(&w);
}

/* ---- entry point ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int rets[4] = {0, 1, -1, 77};
    if (size < 2)
        return 0;
    bool binary = data[0] & 1;
    size_t max_packets = (data[0] >> 1) == 127 ? SIZE_MAX : (size_t)(data[0] >> 1) % 20;
    int stop_at = data[1] & 15;
    int stop_ret = rets[(data[1] >> 4) & 3];
    bool binary_format = data[1] & 0x40;
    const char *j = data[1] & 0x80 ? "4x2</script>" : NULL;
    size_t n = size - 2;
    unsigned char *body = malloc(n ? n : 1);
    FUZZ_CHECK(body != NULL);
    if (n)
        memcpy(body, data + 2, n);

    /* One WebSocket message. */
    buf scratch = BUF_INIT;
    eio_in in;
    int r = eio3_decode_ws(body, n, binary, &scratch, &in);
    struct logged want;
    unsigned char *dec = malloc(n ? n : 1);
    FUZZ_CHECK(dec != NULL);
    int want_r;
    if (binary) {
        want_r = n >= 1 && body[0] >= 1 && body[0] <= 6 ? 0 : -1;
        want = (struct logged){n ? body[0] : 0, true, body + 1, n ? n - 1 : 0};
    } else {
        want_r = model_text_packet(body, n, dec, &want);
    }
    FUZZ_CHECK(r == want_r);
    if (r == 0) {
        FUZZ_CHECK((int)in.type == want.type && in.binary == want.binary && in.len == want.len);
        FUZZ_CHECK(in.len == 0 || memcmp(in.data, want.data, in.len) == 0);
        if (in.binary)
            check_ws_binary(&in);
    }
    free(dec);
    buf_free(&scratch);

    /* A polling body, in the format byte 0 says, then encoded again. */
    buf log;
    decode_both(body, n, binary, max_packets, stop_at, stop_ret, &log);
    check_reencode(&log, binary_format);
    buf_free(&log);

    /* A JSONP form body, then its payload as rtd/engine/eio_polling.c decodes it. */
    buf form = BUF_INIT, form_want = BUF_INIT;
    r = eio3_jsonp_body(body, n, &form);
    FUZZ_CHECK(r == model_jsonp(body, n, &form_want));
    if (r == 0) {
        same_log(&form, &form_want);
        const unsigned char *p = (const unsigned char *)(form.data ? form.data : "");
        decode_both(p, form.len, false, max_packets, stop_at, stop_ret, &log);
        check_reencode(&log, binary_format);
        buf_free(&log);
        check_jsonp_wrap(j, p, form.len);
    }
    buf_free(&form);
    buf_free(&form_want);

    /* What rtd would answer a JSONP poll with, for any payload bytes. */
    check_jsonp_wrap(j, body, n);
    free(body);
    return 0;
}
