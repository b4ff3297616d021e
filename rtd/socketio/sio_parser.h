/* sio_parser.h: the Socket.IO v5 packet format (socket.io-parser's default encoding),
 * without any state: header decoding, header encoding, payload shape checks.
 *
 *   <type>[<attachments>-][<namespace>,][<ack id>][JSON payload]
 *
 * Decoding never allocates and never reads outside the given bytes; the JSON payload is
 * returned as a slice for the caller to parse (with a depth limit). Fuzzed. */
#ifndef RTD_SIO_PARSER_H
#define RTD_SIO_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rtd/lib/buf.h"

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

/* Largest ack id accepted: 2^53 - 1, the largest integer a JavaScript number holds. */
#define SIO_MAX_ACK_ID 9007199254740991LL

typedef struct sio_header {
    enum sio_type type;
    size_t attachments;   /* BINARY_EVENT / BINARY_ACK only */
    const char *nsp;      /* "/" when absent; not NUL-terminated */
    size_t nsp_len;
    int64_t id;           /* -1 when absent */
    const char *data;     /* JSON payload, possibly empty */
    size_t data_len;
} sio_header;

/* Decodes the header of a text packet. Returns 0, or -1 for an invalid packet: unknown
 * type, missing or malformed attachment count, count over max_attachments, ack id with
 * more than 16 digits or above SIO_MAX_ACK_ID. */
int sio_parse_header(const char *s, size_t len, size_t max_attachments, sio_header *out);

/* Checks a parsed payload against the packet type, as the reference decoder does:
 * CONNECT: object (or absent); DISCONNECT: absent; EVENT/BINARY_EVENT: non-empty array whose
 * first element is a number or a string other than the reserved event names; ACK /
 * BINARY_ACK: array. payload is NULL when the packet had none. */
bool sio_payload_valid(enum sio_type type, struct json_object *payload);

/* Checks every {"_placeholder":true,"num":n} in v refers to an attachment below count. */
bool sio_placeholders_valid(struct json_object *v, size_t count);

/* Appends the header <type>[<n>-][<nsp>,][<id>]; nsp "/" is omitted; id < 0 omitted. */
int sio_encode_header(buf *out, enum sio_type type, size_t attachments, const char *nsp,
                      int64_t id);

#endif
