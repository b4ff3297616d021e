/* eio3.c: Engine.IO v3 payloads, binary frames and JSONP (see eio3.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "rtd/engine/eio3.h"
#include "rtd/lib/util.h"
#include "rtd/net/ws.h"

#define MAX_LENGTH_DIGITS 10

static int text_packet(const unsigned char *p, size_t n, buf *scratch, eio_in *in);

int eio3_decode_ws(const unsigned char *msg, size_t len, bool binary_frame, buf *scratch,
                   eio_in *out)
{
    if (!binary_frame)
        return text_packet(msg, len, scratch, out);
    if (len < 1 || msg[0] > 6)
        return -1;
    out->type = (enum eio_type)msg[0];
    out->binary = true;
    out->data = msg + 1;
    out->len = len - 1;
    return out->type == EIO_OPEN ? -1 : 0;
}

/* Bytes of s that make up `units` UTF-16 code units, or -1 when s is not valid UTF-8 or
 * ends first. */
static long utf16_span(const unsigned char *s, size_t len, size_t units)
{
    size_t i = 0, u = 0;
    while (u < units) {
        if (i >= len)
            return -1;
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                              : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || i + n > len || !ws_utf8_valid(s + i, n))
            return -1;
        u += n == 4 ? 2 : 1;
        i += n;
    }
    return u == units ? (long)i : -1;
}

static int text_packet(const unsigned char *p, size_t n, buf *scratch, eio_in *in)
{
    if (n > 0 && p[0] == 'b') {
        /* b<type><base64> */
        if (n < 2 || p[1] < '0' || p[1] > '6')
            return -1;
        buf_reset(scratch);
        if (util_base64_decode(scratch, (const char *)p + 2, n - 2) < 0)
            return -1;
        in->type = (enum eio_type)(p[1] - '0');
        in->binary = true;
        in->data = (const unsigned char *)scratch->data;
        in->len = scratch->len;
        return in->type == EIO_OPEN ? -1 : 0;
    }
    return eio_decode_ws(p, n, false, in);
}

static int decode_text(const unsigned char *body, size_t len, size_t max_packets, buf *scratch,
                       eio_packet_fn *fn, void *ud)
{
    size_t pos = 0, count = 0;
    while (pos < len) {
        size_t units = 0, digits = 0;
        while (pos < len && body[pos] >= '0' && body[pos] <= '9') {
            if (++digits > MAX_LENGTH_DIGITS)
                return -1;
            units = units * 10 + (size_t)(body[pos] - '0');
            pos++;
        }
        if (digits == 0 || pos >= len || body[pos] != ':')
            return -1;
        pos++;
        long span = utf16_span(body + pos, len - pos, units);
        if (span < 0)
            return -1;
        if (span > 0) {
            if (++count > max_packets)
                return -1;
            eio_in in;
            if (text_packet(body + pos, (size_t)span, scratch, &in) < 0)
                return -1;
            int r = fn(ud, &in);
            if (r)
                return r;
        }
        pos += (size_t)span;
    }
    return count > 0 ? 0 : -1;
}

static int decode_binary(const unsigned char *body, size_t len, size_t max_packets,
                         eio_packet_fn *fn, void *ud)
{
    size_t pos = 0, count = 0;
    while (pos < len) {
        bool is_string = body[pos] == 0;
        if (body[pos] > 1)
            return -1;
        pos++;
        size_t n = 0, digits = 0;
        while (pos < len && body[pos] != 0xFF) {
            if (body[pos] > 9 || ++digits > MAX_LENGTH_DIGITS)
                return -1;
            n = n * 10 + body[pos];
            pos++;
        }
        if (digits == 0 || pos >= len || n == 0 || n > len - pos - 1)
            return -1;
        pos++; /* 0xFF */
        const unsigned char *p = body + pos;
        if (++count > max_packets)
            return -1;
        eio_in in;
        if (is_string) {
            if (!ws_utf8_valid(p, n) || eio_decode_ws(p, n, false, &in) < 0)
                return -1;
        } else if (eio3_decode_ws(p, n, true, NULL, &in) < 0) {
            return -1;
        }
        int r = fn(ud, &in);
        if (r)
            return r;
        pos += n;
    }
    return count > 0 ? 0 : -1;
}

int eio3_decode_payload(const unsigned char *body, size_t len, bool binary_body,
                        size_t max_packets, buf *scratch, eio_packet_fn *fn, void *ud)
{
    if (len == 0)
        return -1;
    return binary_body ? decode_binary(body, len, max_packets, fn, ud)
                       : decode_text(body, len, max_packets, scratch, fn, ud);
}

/* UTF-16 length of valid UTF-8 text (what JavaScript's String#length says). */
static size_t utf16_len(const unsigned char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if ((c & 0xC0) != 0x80)
            units += c >= 0xF0 ? 2 : 1;
    }
    return units;
}

int eio3_encode_payload(buf *out, eio_packet *const *pkts, size_t n, bool binary_format)
{
    for (size_t i = 0; i < n; i++) {
        const eio_packet *p = pkts[i];
        const unsigned char *data = p->raw + EIO_PACKET_HEADROOM + 1;
        int r = 0;
        if (binary_format) {
            char digits[24];
            int nd = snprintf(digits, sizeof digits, "%lu", (unsigned long)p->len + 1);
            r |= buf_putc(out, p->binary ? 1 : 0);
            for (int d = 0; d < nd; d++)
                r |= buf_putc(out, digits[d] - '0');
            r |= buf_putc(out, 0xFF);
            r |= buf_putc(out, p->binary ? p->type : '0' + p->type);
            r |= buf_append(out, data, p->len);
        } else if (p->binary) {
            size_t b64 = 4 * ((p->len + 2) / 3);
            r |= buf_printf(out, "%zu:b%c", b64 + 2, '0' + p->type);
            r |= util_base64_encode(out, data, p->len);
        } else {
            r |= buf_printf(out, "%zu:%c", utf16_len(data, p->len) + 1, '0' + p->type);
            r |= buf_append(out, data, p->len);
        }
        if (r)
            return -1;
    }
    return 0;
}

eio_packet *eio3_ws_binary(const eio_packet *p, bool base64)
{
    const unsigned char *data = p->raw + EIO_PACKET_HEADROOM + 1;
    if (base64) {
        /* a text frame "b<type><base64>": the type slot holds 'b' */
        buf b = BUF_INIT;
        if (buf_putc(&b, '0' + p->type) < 0 || util_base64_encode(&b, data, p->len) < 0) {
            buf_free(&b);
            return NULL;
        }
        eio_packet *q = eio_packet_alloc((enum eio_type)p->type, false, b.len);
        if (q) {
            q->raw[EIO_PACKET_HEADROOM] = 'b';
            memcpy(eio_packet_payload(q), b.data, b.len);
            eio_packet_seal(q);
        }
        buf_free(&b);
        return q;
    }
    eio_packet *q = eio_packet_alloc((enum eio_type)p->type, true, (size_t)p->len + 1);
    if (!q)
        return NULL;
    unsigned char *d = eio_packet_payload(q);
    d[0] = p->type;
    memcpy(d + 1, data, p->len);
    eio_packet_seal(q);
    return q;
}

int eio3_jsonp_wrap(buf *out, const char *j, const char *payload, size_t len)
{
    int r = buf_puts(out, "___eio[");
    for (const char *c = j; c && *c; c++)
        if (*c >= '0' && *c <= '9')
            r |= buf_putc(out, *c);
    r |= buf_puts(out, "](\"");
    /* A JSON string, with U+2028/U+2029 escaped too so the result is valid JavaScript. */
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && (unsigned char)payload[i] == 0xE2 &&
            (unsigned char)payload[i + 1] == 0x80 &&
            ((unsigned char)payload[i + 2] == 0xA8 || (unsigned char)payload[i + 2] == 0xA9)) {
            r |= buf_json_escape(out, payload + run, i - run);
            r |= buf_puts(out, (unsigned char)payload[i + 2] == 0xA8 ? "\\u2028" : "\\u2029");
            i += 2;
            run = i + 1;
        }
    }
    r |= buf_json_escape(out, payload + run, len - run);
    r |= buf_puts(out, "\");");
    return r ? -1 : 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int eio3_jsonp_body(const unsigned char *body, size_t len, buf *out)
{
    /* find the d field of the form */
    size_t pos = 0;
    const unsigned char *val = NULL;
    size_t vlen = 0;
    while (pos < len) {
        const unsigned char *amp = memchr(body + pos, '&', len - pos);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end - pos >= 2 && body[pos] == 'd' && body[pos + 1] == '=') {
            val = body + pos + 2;
            vlen = end - pos - 2;
            break;
        }
        pos = end + 1;
    }
    if (!val)
        return -1;
    buf decoded = BUF_INIT;
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = val[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < vlen ? hexval(val[i + 1]) : -1;
            int lo = i + 2 < vlen ? hexval(val[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                buf_free(&decoded);
                return -1;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (buf_putc(&decoded, c) < 0) {
            buf_free(&decoded);
            return -1;
        }
    }
    /* The client escaped "\n" as "\\n": a backslash-n not preceded by another backslash is
     * a newline; "\\\\n" stands for a literal backslash-n. */
    const char *d = decoded.data ? decoded.data : "";
    int r = 0;
    for (size_t i = 0; i < decoded.len; i++) {
        if (d[i] == '\\' && i + 2 < decoded.len && d[i + 1] == '\\' && d[i + 2] == 'n') {
            r |= buf_puts(out, "\\n");
            i += 2;
        } else if (d[i] == '\\' && i + 1 < decoded.len && d[i + 1] == 'n') {
            r |= buf_putc(out, '\n');
            i += 1;
        } else {
            r |= buf_putc(out, d[i]);
        }
    }
    buf_free(&decoded);
    return r ? -1 : 0;
}
