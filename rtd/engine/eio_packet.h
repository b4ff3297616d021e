/* eio_packet.h: Engine.IO packets as shared, reference-counted byte strings, and the pure
 * parsers for what clients send.
 *
 * An outgoing packet is encoded once and its bytes are shared by every session it is sent
 * to: the broadcast path takes a reference per recipient, never a copy. The storage keeps
 * room in front of the payload for the WebSocket frame header, which is the same for every
 * recipient (servers do not mask), so a WebSocket delivery is one iovec pointing into it. */
#ifndef RTD_EIO_PACKET_H
#define RTD_EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/lib/buf.h"

enum eio_type {
    EIO_OPEN = 0,
    EIO_CLOSE = 1,
    EIO_PING = 2,
    EIO_PONG = 3,
    EIO_MESSAGE = 4,
    EIO_UPGRADE = 5,
    EIO_NOOP = 6,
};

/* Room before the type character: the longest WebSocket server header. */
#define EIO_PACKET_HEADROOM 10

typedef struct eio_packet {
    uint32_t refs;
    uint32_t len;       /* payload bytes (after the type character) */
    uint8_t type;       /* enum eio_type */
    uint8_t binary;     /* payload is binary: a WebSocket binary frame, "b"+base64 in polling */
    uint8_t ws_hdr_len; /* length of the WebSocket header stored just before the frame */
    uint8_t pad;
    /* raw[EIO_PACKET_HEADROOM] is the type character ('0'..'6', unused for binary), the
     * payload follows at raw[EIO_PACKET_HEADROOM + 1]. The WebSocket frame header is written
     * just before the first byte that goes in the frame. */
    unsigned char raw[];
} eio_packet;

/* Allocates a packet with room for len payload bytes (refs = 1); the caller fills
 * eio_packet_payload() and then calls eio_packet_seal(). Returns NULL when out of memory. */
eio_packet *eio_packet_alloc(enum eio_type type, bool binary, size_t len);
/* Computes the WebSocket frame header; call once the payload is written. */
void eio_packet_seal(eio_packet *p);
/* alloc + copy + seal. */
eio_packet *eio_packet_new(enum eio_type type, bool binary, const void *data, size_t len);

static inline unsigned char *eio_packet_payload(eio_packet *p)
{
    return p->raw + EIO_PACKET_HEADROOM + 1;
}
static inline eio_packet *eio_packet_ref(eio_packet *p)
{
    p->refs++;
    return p;
}
void eio_packet_unref(eio_packet *p);

/* The whole WebSocket frame (header, type character unless binary, payload). */
static inline const unsigned char *eio_packet_ws_frame(const eio_packet *p, size_t *len)
{
    size_t body = p->len + (p->binary ? 0 : 1);
    const unsigned char *start = p->raw + EIO_PACKET_HEADROOM + (p->binary ? 1 : 0);
    *len = body + p->ws_hdr_len;
    return start - p->ws_hdr_len;
}

/* Appends the packet in its HTTP long-polling form: type + payload, or "b" + base64. */
int eio_packet_append_polling(buf *out, const eio_packet *p);

/* ---- parsing what clients send (pure, bounded, fuzzed) ---- */

/* A decoded packet that points into the caller's bytes (or into scratch for base64). */
typedef struct eio_in {
    enum eio_type type;
    bool binary;
    const unsigned char *data;
    size_t len;
} eio_in;

/* Decodes one packet from a WebSocket message. Binary frames are binary message packets.
 * Returns 0, or -1 for an invalid packet (empty, unknown type, open from a client). */
int eio_decode_ws(const unsigned char *msg, size_t len, bool binary_frame, eio_in *out);

/* Splits an HTTP long-polling body (packets separated by \x1e) and calls fn for each
 * packet; "b"-prefixed packets are base64-decoded into scratch first. Stops at the first
 * invalid packet or when fn returns non-zero. Returns 0, -1 for invalid input, or what fn
 * returned. max_packets bounds the number of packets in one body. */
typedef int eio_packet_fn(void *ud, const eio_in *pkt);
int eio_decode_payload(const unsigned char *body, size_t len, size_t max_packets, buf *scratch,
                       eio_packet_fn *fn, void *ud);

#endif
