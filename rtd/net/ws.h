/* ws.h: RFC 6455 WebSocket framing for the server side, without any I/O.
 *
 * The reader parses frames that are wholly in the caller's input buffer, unmasks them in
 * place and hands out unfragmented messages as pointers into that buffer (no copy on the
 * common path). Fragmented messages are gathered in the reader's own buffer. Every limit
 * is checked on the frame header, before anything is buffered. Pure functions: the fuzz
 * target and the unit tests drive it directly. */
#ifndef RTD_WS_H
#define RTD_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtd/lib/buf.h"

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never sent on the wire */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

/* Longest server frame header: 2 + 8 bytes (servers never mask). */
#define WS_MAX_HEADER 10

/* Writes the header of an unmasked server frame and returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], enum ws_opcode op, bool fin, uint64_t len);

/* Writes a whole close frame (code, then reason truncated to fit 125 bytes) into out, which
 * must hold WS_MAX_HEADER + 125 bytes. code WS_CLOSE_NO_STATUS writes an empty close frame.
 * Returns the frame length. */
size_t ws_close_frame(uint8_t *out, uint16_t code, const char *reason);

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out receives 28 characters and a NUL. Returns 0, or -1 if key is not 24 base64 chars
 * decoding to 16 bytes. */
int ws_accept_key(const char *key, char out[29]);

/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 * ws_utf8_step continues a validation across buffers: state starts at 0; returns the new
 * state, WS_UTF8_REJECT as soon as the input cannot be valid. A message is valid when the
 * final state is 0. */
#define WS_UTF8_REJECT 0xFFFFFFFFu
uint32_t ws_utf8_step(uint32_t state, const uint8_t *p, size_t n);
bool ws_utf8_valid(const uint8_t *p, size_t n);

/* What the reader hands out. data/len point into the caller's buffer for unfragmented
 * messages and control frames, or into the reader's buffer for reassembled ones; valid
 * until the next call. For WS_OP_CLOSE, close_code is the peer's code (WS_CLOSE_NO_STATUS
 * if none) and data/len its reason. */
typedef struct ws_event {
    enum ws_opcode op; /* WS_OP_TEXT, WS_OP_BINARY, WS_OP_PING, WS_OP_PONG or WS_OP_CLOSE */
    const uint8_t *data;
    size_t len;
    uint16_t close_code;
} ws_event;

typedef struct ws_reader {
    size_t max_message;   /* largest message accepted, summed over fragments */
    bool fragmenting;     /* a fragmented message is being gathered */
    enum ws_opcode frag_op;
    uint32_t utf8_state;  /* for the text message being gathered */
    buf msg;              /* fragments so far */
} ws_reader;

void ws_reader_init(ws_reader *r, size_t max_message);
void ws_reader_free(ws_reader *r);

/* Parses at most one frame from in[0..len). The frame is unmasked in place.
 *   > 0  an event was produced in *ev; *consumed bytes of in were used.
 *   = 0  no event: if *consumed > 0 a fragment was gathered (call again with the rest);
 *        if *consumed == 0 the frame is not complete yet (read more, keep the bytes).
 *   < 0  the connection must be closed with the close code -return (1002, 1007, 1009).
 * Checks: RSV bits, unknown opcodes, unmasked frames, control frames longer than 125 bytes
 * or fragmented, continuation without a start, a new message inside a fragmented one
 * (1002); 64-bit lengths with the top bit set and messages over max_message (1009, checked
 * from the header, as the reference does),
 * invalid UTF-8 in text messages and close reasons, invalid close codes. */
int ws_reader_parse(ws_reader *r, uint8_t *in, size_t len, size_t *consumed, ws_event *ev);

#endif
