/* eio_packet.c: Engine.IO packet encoding (shared outgoing packets) and the bounded
 * decoders for what clients send (see eio_packet.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "rtd/engine/eio_packet.h"
#include "rtd/lib/util.h"
#include "rtd/net/ws.h"

eio_packet *eio_packet_alloc(enum eio_type type, bool binary, size_t len)
{
    if (len > UINT32_MAX - 64)
        return NULL;
    eio_packet *p = malloc(sizeof *p + EIO_PACKET_HEADROOM + 1 + len);
    if (!p)
        return NULL;
    p->refs = 1;
    p->len = (uint32_t)len;
    p->type = (uint8_t)type;
    p->binary = binary;
    p->ws_hdr_len = 0;
    p->pad = 0;
    p->raw[EIO_PACKET_HEADROOM] = (unsigned char)('0' + type);
    return p;
}

void eio_packet_seal(eio_packet *p)
{
    uint8_t hdr[WS_MAX_HEADER];
    size_t body = p->len + (p->binary ? 0 : 1);
    size_t n = ws_frame_header(hdr, p->binary ? WS_OP_BINARY : WS_OP_TEXT, true, body);
    unsigned char *start = p->raw + EIO_PACKET_HEADROOM + (p->binary ? 1 : 0);
    memcpy(start - n, hdr, n);
    p->ws_hdr_len = (uint8_t)n;
}

eio_packet *eio_packet_new(enum eio_type type, bool binary, const void *data, size_t len)
{
    eio_packet *p = eio_packet_alloc(type, binary, len);
    if (!p)
        return NULL;
    if (len)
        memcpy(eio_packet_payload(p), data, len);
    eio_packet_seal(p);
    return p;
}

void eio_packet_unref(eio_packet *p)
{
    if (p && --p->refs == 0)
        free(p);
}

int eio_packet_append_polling(buf *out, const eio_packet *p)
{
    const unsigned char *payload = p->raw + EIO_PACKET_HEADROOM + 1;
    if (p->binary) {
        if (buf_putc(out, 'b') < 0)
            return -1;
        return util_base64_encode(out, payload, p->len);
    }
    return buf_append(out, p->raw + EIO_PACKET_HEADROOM, (size_t)p->len + 1);
}

/* ---- decoding ---- */

static int decode_text(const unsigned char *s, size_t len, eio_in *out)
{
    if (len == 0 || s[0] < '0' || s[0] > '6')
        return -1;
    out->type = (enum eio_type)(s[0] - '0');
    if (out->type == EIO_OPEN)
        return -1; /* only servers open */
    out->binary = false;
    out->data = s + 1;
    out->len = len - 1;
    return 0;
}

int eio_decode_ws(const unsigned char *msg, size_t len, bool binary_frame, eio_in *out)
{
    if (binary_frame) {
        out->type = EIO_MESSAGE;
        out->binary = true;
        out->data = msg;
        out->len = len;
        return 0;
    }
    return decode_text(msg, len, out);
}

int eio_decode_payload(const unsigned char *body, size_t len, size_t max_packets, buf *scratch,
                       eio_packet_fn *fn, void *ud)
{
    size_t count = 0;
    size_t pos = 0;
    if (len == 0)
        return -1;
    for (;;) {
        const unsigned char *sep = memchr(body + pos, 0x1e, len - pos);
        size_t end = sep ? (size_t)(sep - body) : len;
        const unsigned char *pkt = body + pos;
        size_t plen = end - pos;
        if (++count > max_packets)
            return -1;
        eio_in in;
        if (plen > 0 && pkt[0] == 'b') {
            buf_reset(scratch);
            if (util_base64_decode(scratch, (const char *)pkt + 1, plen - 1) < 0)
                return -1;
            in.type = EIO_MESSAGE;
            in.binary = true;
            in.data = (const unsigned char *)scratch->data;
            in.len = scratch->len;
        } else if (decode_text(pkt, plen, &in) < 0) {
            return -1;
        }
        int r = fn(ud, &in);
        if (r)
            return r;
        if (!sep)
            return 0;
        pos = end + 1;
    }
}
