/* fuzz_eio.c: libFuzzer target for the Engine.IO decoders of rtd/engine/eio_packet.c.
 *
 * Input: byte 0 picks the WebSocket frame kind (bit 0) and max_packets (the other bits),
 * byte 1 makes the callback stop at a given packet with a given result, the rest is the
 * message or the long-polling body.
 *
 * eio_decode_ws and eio_decode_payload are compared with a reference model written from the
 * protocol (packets separated by \x1e, types '1'..'6', "b" + strict base64 for binary), down
 * to every packet handed to the callback and the result. Each decoded packet is then encoded
 * again as an outgoing packet, whose WebSocket frame and long-polling form must give the same
 * packet back. Inputs are exact-size heap copies, so AddressSanitizer sees any overread. */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "rtd/engine/eio_packet.h"
#include "rtd/lib/buf.h"
#include "rtd/net/ws.h"
#include "tests/fuzz/fuzz.h"

/* ---- reference model ------------------------------------------------------------------ */

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

/* Standard base64, padded, '=' only as the last one or two characters. The unused low bits
 * of the last character are not checked (rtd/lib/util.c does not either). Returns the decoded
 * length or -1. */
static long ref_b64(const unsigned char *in, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    size_t pad = 0;
    while (pad < 2 && pad < n && in[n - 1 - pad] == '=')
        pad++;
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = i >= n - pad ? 0 : b64val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    return (long)(o - pad);
}

/* ---- what the callback saw ------------------------------------------------------------ */

struct seen {
    int n;
    int stop_at, stop_ret;
    const unsigned char *body;
    size_t body_len;
    buf *scratch;
    /* every packet, flattened: type, binary, length, bytes */
    buf log;
};

static void log_packet(buf *log, int type, bool binary, const unsigned char *p, size_t len)
{
    unsigned char hdr[2] = {(unsigned char)type, binary};
    FUZZ_CHECK(buf_append(log, hdr, 2) == 0);
    FUZZ_CHECK(buf_append(log, &len, sizeof len) == 0);
    FUZZ_CHECK(buf_append(log, p, len) == 0);
}

/* An outgoing packet made from a decoded one must carry it unchanged in both transports. */
static void check_reencode(const eio_in *pkt)
{
    eio_packet *p = eio_packet_new(pkt->type, pkt->binary, pkt->data, pkt->len);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(p->refs == 1 && p->len == pkt->len && p->type == pkt->type);
    size_t flen;
    const unsigned char *f = eio_packet_ws_frame(p, &flen);
    uint8_t hdr[WS_MAX_HEADER];
    size_t body = pkt->len + (pkt->binary ? 0 : 1);
    size_t hlen = ws_frame_header(hdr, pkt->binary ? WS_OP_BINARY : WS_OP_TEXT, true, body);
    FUZZ_CHECK(flen == hlen + body);
    FUZZ_CHECK(memcmp(f, hdr, hlen) == 0);
    eio_in back;
    FUZZ_CHECK(eio_decode_ws(f + hlen, body, pkt->binary, &back) == 0);
    FUZZ_CHECK(back.type == pkt->type && back.binary == pkt->binary && back.len == pkt->len);
    FUZZ_CHECK(pkt->len == 0 || memcmp(back.data, pkt->data, pkt->len) == 0);

    buf poll = BUF_INIT;
    FUZZ_CHECK(eio_packet_append_polling(&poll, p) == 0);
    if (pkt->binary) {
        FUZZ_CHECK(poll.len >= 1 && poll.data[0] == 'b');
        unsigned char *dec = malloc(poll.len);
        FUZZ_CHECK(dec != NULL);
        long dn = ref_b64((const unsigned char *)poll.data + 1, poll.len - 1, dec);
        FUZZ_CHECK(dn >= 0 && (size_t)dn == pkt->len);
        FUZZ_CHECK(dn == 0 || memcmp(dec, pkt->data, pkt->len) == 0);
        free(dec);
    } else {
        FUZZ_CHECK(poll.len == pkt->len + 1 && poll.data[0] == '0' + (int)pkt->type);
        FUZZ_CHECK(pkt->len == 0 || memcmp(poll.data + 1, pkt->data, pkt->len) == 0);
    }
    buf_free(&poll);
    eio_packet_ref(p);
    eio_packet_unref(p);
    FUZZ_CHECK(p->refs == 1);
    eio_packet_unref(p);
}

static int on_packet(void *ud, const eio_in *pkt)
{
    struct seen *s = ud;
    s->n++;
    FUZZ_CHECK(pkt->type >= EIO_CLOSE && pkt->type <= EIO_NOOP);
    if (pkt->binary) {
        FUZZ_CHECK(pkt->type == EIO_MESSAGE);
        FUZZ_CHECK(pkt->len == s->scratch->len);
        FUZZ_CHECK(pkt->len == 0 || pkt->data == (const unsigned char *)s->scratch->data);
    } else {
        FUZZ_CHECK(pkt->data > s->body && pkt->data + pkt->len <= s->body + s->body_len);
        FUZZ_CHECK(pkt->data[-1] == '0' + (int)pkt->type);
        FUZZ_CHECK(memchr(pkt->data, 0x1e, pkt->len) == NULL);
    }
    log_packet(&s->log, pkt->type, pkt->binary, pkt->data, pkt->len);
    check_reencode(pkt);
    return s->n == s->stop_at ? s->stop_ret : 0;
}

/* The model of eio_decode_payload: the same log and result, from first principles. */
static int model_payload(const unsigned char *body, size_t len, size_t max_packets, int stop_at,
                         int stop_ret, buf *log)
{
    if (len == 0)
        return -1;
    unsigned char *dec = malloc(len);
    FUZZ_CHECK(dec != NULL);
    int result = 0;
    size_t count = 0;
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < len && body[end] != 0x1e)
            end++;
        const unsigned char *pkt = body + start;
        size_t plen = end - start;
        if (++count > max_packets) {
            result = -1;
            break;
        }
        if (plen == 0) {
            result = -1;
            break;
        }
        if (pkt[0] == 'b') {
            long dn = ref_b64(pkt + 1, plen - 1, dec);
            if (dn < 0) {
                result = -1;
                break;
            }
            log_packet(log, EIO_MESSAGE, true, dec, (size_t)dn);
        } else if (pkt[0] >= '1' && pkt[0] <= '6') {
            log_packet(log, pkt[0] - '0', false, pkt + 1, plen - 1);
        } else {
            result = -1;
            break;
        }
        if ((int)count == stop_at && stop_ret) {
            result = stop_ret;
            break;
        }
        if (end == len)
            break;
        start = end + 1;
    }
    free(dec);
    return result;
}

/* ---- entry point ---------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int rets[4] = {0, 1, -1, 77};
    if (size < 2)
        return 0;
    bool binary_frame = data[0] & 1;
    size_t max_packets = (size_t)(data[0] >> 1) % 20;
    int stop_at = data[1] & 15;
    int stop_ret = rets[(data[1] >> 4) & 3];
    size_t n = size - 2;
    unsigned char *body = malloc(n ? n : 1);
    FUZZ_CHECK(body != NULL);
    if (n)
        memcpy(body, data + 2, n);

    /* One WebSocket message. */
    eio_in in;
    int r = eio_decode_ws(body, n, binary_frame, &in);
    if (binary_frame) {
        FUZZ_CHECK(r == 0 && in.type == EIO_MESSAGE && in.binary && in.data == body && in.len == n);
    } else if (n >= 1 && body[0] >= '1' && body[0] <= '6') {
        FUZZ_CHECK(r == 0 && (int)in.type == body[0] - '0' && !in.binary && in.data == body + 1 &&
                   in.len == n - 1);
        check_reencode(&in);
    } else {
        FUZZ_CHECK(r == -1);
    }

    /* A long-polling body, against the model. */
    buf scratch = BUF_INIT;
    struct seen s = {.stop_at = stop_at,
                     .stop_ret = stop_ret,
                     .body = body,
                     .body_len = n,
                     .scratch = &scratch,
                     .log = BUF_INIT};
    r = eio_decode_payload(body, n, max_packets, &scratch, on_packet, &s);
    buf want = BUF_INIT;
    int want_r = model_payload(body, n, max_packets, stop_at, stop_ret, &want);
    FUZZ_CHECK(r == want_r);
    FUZZ_CHECK(s.log.len == want.len);
    FUZZ_CHECK(want.len == 0 || memcmp(s.log.data, want.data, want.len) == 0);
    FUZZ_CHECK((size_t)s.n <= max_packets);

    buf_free(&want);
    buf_free(&s.log);
    buf_free(&scratch);
    free(body);
    return 0;
}
