/* eio3.h: the Engine.IO v3 encodings, for Socket.IO 2.x clients (rtd --allow-eio3).
 *
 * v3 differs from v4 only on the wire: polling payloads are length-prefixed
 * ("<chars>:<packet>", lengths counted in UTF-16 code units as JavaScript does) or, for
 * clients that handle binary, a binary payload (<0|1><length digits><0xFF><packet>...);
 * binary WebSocket frames start with the packet type byte; JSONP polling wraps payloads in
 * ___eio[j]("..."). Pure functions, bounded like the v4 parsers and fuzzed with them. */
#ifndef RTD_EIO3_H
#define RTD_EIO3_H

#include <stdbool.h>
#include <stddef.h>

#include "rtd/engine/eio_packet.h"
#include "rtd/lib/buf.h"

/* A WebSocket message from a v3 client: binary frames carry the type in their first byte;
 * clients that force base64 send binary as text "b<type><base64>", decoded into scratch. */
int eio3_decode_ws(const unsigned char *msg, size_t len, bool binary_frame, buf *scratch,
                   eio_in *out);

/* A POST body: binary_body when it came as application/octet-stream (the binary payload
 * format), else the text format. Same contract as eio_decode_payload(). */
int eio3_decode_payload(const unsigned char *body, size_t len, bool binary_body,
                        size_t max_packets, buf *scratch, eio_packet_fn *fn, void *ud);

/* Appends packets to a v3 payload, in the binary payload format (answered as
 * application/octet-stream) or the text format, with binary packets as "b4"+base64. One
 * answer uses one format: the reference picks binary when the client takes binary and a
 * packet is binary. */
int eio3_encode_payload(buf *out, eio_packet *const *pkts, size_t n, bool binary_format);

/* A binary packet for a v3 WebSocket: a binary frame (type byte, then data), or for clients
 * that force base64 a text frame "b4<base64>". refs = 1. */
eio_packet *eio3_ws_binary(const eio_packet *p, bool base64);

/* JSONP: wraps a text payload as ___eio[<j>]("<payload as a JSON string>"); j keeps its
 * digits only, as the reference does. */
int eio3_jsonp_wrap(buf *out, const char *j, const char *payload, size_t len);
/* JSONP POST bodies are forms: d=<payload>. Extracts and URL-decodes d into out, undoing the
 * client's escaping of newlines. Returns 0 or -1. */
int eio3_jsonp_body(const unsigned char *body, size_t len, buf *out);

#endif
