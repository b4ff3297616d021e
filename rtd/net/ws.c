/* ws.c: RFC 6455 WebSocket framing for the server side (see ws.h): frame headers, close
 * frames, the handshake's accept key, UTF-8 validation and the client frame reader. No I/O:
 * the connection code feeds bytes in and writes what comes out. */
#include "config.h"

#include <string.h>

#include <openssl/evp.h>

#include "rtd/net/ws.h"

/* ---- writing -------------------------------------------------------------------------- */

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], enum ws_opcode op, bool fin, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0x00) | ((unsigned)op & 0x0F));
    if (len <= 125) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_frame(uint8_t *out, uint16_t code, const char *reason)
{
    if (code == WS_CLOSE_NO_STATUS)
        return ws_frame_header(out, WS_OP_CLOSE, true, 0);
    /* 125 bytes of payload: the 2-byte code and at most 123 of reason. strnlen so that a
     * long reason is not scanned to its end. */
    size_t rlen = reason ? strnlen(reason, 124) : 0;
    if (rlen > 123) {
        /* Cut on a character boundary: a reason split inside a UTF-8 sequence would make a
         * conforming peer fail the connection with 1007 instead of seeing our close code. */
        rlen = 123;
        while (rlen > 0 && ((unsigned char)reason[rlen] & 0xC0) == 0x80)
            rlen--;
    }
    size_t h = ws_frame_header(out, WS_OP_CLOSE, true, 2 + rlen);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (rlen)
        memcpy(out + h + 2, reason, rlen);
    return h + 2 + rlen;
}

/* ---- handshake ------------------------------------------------------------------------ */

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    out[0] = '\0';
    /* 16 bytes encode as 22 characters and "==". The unused low bits of the 22nd character
     * are not required to be zero, as in the reference server (ws), which only checks the
     * shape; the key is hashed as text anyway. The checks stop at the first NUL, so a short
     * key is never read past its end. */
    for (int i = 0; i < 22; i++)
        if (!is_base64_char(key[i]))
            return -1;
    if (key[22] != '=' || key[23] != '=' || key[24] != '\0')
        return -1;

    unsigned char text[24 + sizeof guid - 1];
    memcpy(text, key, 24);
    memcpy(text + 24, guid, sizeof guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* EVP_Digest rather than SHA1(), which OpenSSL 3 deprecates. */
    if (EVP_Digest(text, sizeof text, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -1;
    /* 20 bytes give 28 characters; EVP_EncodeBlock adds the NUL. */
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* A DFA over byte classes. The classes split the continuation range where the second byte
 * of E0, ED, F0 and F4 sequences is restricted (RFC 3629's table), which is what rejects
 * overlongs, surrogates and code points above U+10FFFF without decoding anything. */
enum {
    C_ASCII, /* 00..7F */
    C_C80,   /* 80..8F */
    C_C90,   /* 90..9F */
    C_CA0,   /* A0..BF */
    C_BAD,   /* C0, C1, F5..FF: never valid */
    C_L2,    /* C2..DF */
    C_E0,
    C_L3, /* E1..EC, EE, EF */
    C_ED,
    C_F0,
    C_L4, /* F1..F3 */
    C_F4,
    N_CLASSES
};

/* States are stored premultiplied by N_CLASSES, so a state is directly the row offset in the
 * transition table and the public state (0 = accept) costs no conversion. */
enum {
    S_ACC = 0 * N_CLASSES,
    S_REJ = 1 * N_CLASSES,
    S_1 = 2 * N_CLASSES,  /* one continuation byte to go */
    S_2 = 3 * N_CLASSES,  /* two to go */
    S_3 = 4 * N_CLASSES,  /* three to go */
    S_E0 = 5 * N_CLASSES, /* after E0: A0..BF, then one */
    S_ED = 6 * N_CLASSES, /* after ED: 80..9F, then one (no surrogates) */
    S_F0 = 7 * N_CLASSES, /* after F0: 90..BF, then two */
    S_F4 = 8 * N_CLASSES, /* after F4: 80..8F, then two (nothing above U+10FFFF) */
    N_STATES_X = 9 * N_CLASSES
};

/* clang-format off */
static const uint8_t utf8_class[256] = {
    /* 00..7F */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0,
    /* 80..8F */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 90..9F */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* A0..BF */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    /* C0..DF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    /* E0..EF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,
    /* F0..FF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
};

#define R_ S_REJ
static const uint8_t utf8_next[N_STATES_X] = {
    /*        ASCII  80-8F 90-9F A0-BF bad   L2    E0    L3    ED    F0    L4    F4 */
    /* ACC */ S_ACC, R_,   R_,   R_,   R_,   S_1,  S_E0, S_2,  S_ED, S_F0, S_3,  S_F4,
    /* REJ */ R_,    R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* 1   */ R_,    S_ACC, S_ACC, S_ACC, R_, R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* 2   */ R_,    S_1,  S_1,  S_1,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* 3   */ R_,    S_2,  S_2,  S_2,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* E0  */ R_,    R_,   R_,   S_1,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* ED  */ R_,    S_1,  S_1,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* F0  */ R_,    R_,   S_2,  S_2,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
    /* F4  */ R_,    S_2,  R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,   R_,
};
#undef R_
/* clang-format on */

#define HIGH_BITS 0x8080808080808080ull

uint32_t ws_utf8_step(uint32_t state, const uint8_t *p, size_t n)
{
    /* Anything that is not a state we hand out (a caller's stale or corrupt value) is
     * treated as rejected rather than used as a table index. */
    if (state >= N_STATES_X || state % N_CLASSES != 0 || state == S_REJ)
        return WS_UTF8_REJECT;
    unsigned s = state;
    size_t i = 0;
    while (i < n) {
        if (s == S_ACC) {
            /* Between characters: skip ASCII eight bytes at a time. memcpy is one unaligned
             * load on every target we care about. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & HIGH_BITS)
                    break;
                i += 8;
            }
            if (i == n)
                break;
        }
        s = utf8_next[s + utf8_class[p[i++]]];
        if (s == S_REJ)
            return WS_UTF8_REJECT;
    }
    return s;
}

bool ws_utf8_valid(const uint8_t *p, size_t n)
{
    return ws_utf8_step(0, p, n) == 0;
}

/* ---- reading -------------------------------------------------------------------------- */

/* A reassembly buffer larger than this is released once its message has been delivered, so
 * one big message does not pin max_message bytes to an otherwise idle connection. */
#define WS_KEEP_CAPACITY (64 * 1024)

void ws_reader_init(ws_reader *r, size_t max_message)
{
    r->max_message = max_message;
    r->fragmenting = false;
    r->frag_op = WS_OP_CONT;
    r->utf8_state = 0;
    r->msg = (buf)BUF_INIT;
}

void ws_reader_free(ws_reader *r)
{
    buf_free(&r->msg);
    r->fragmenting = false;
    r->utf8_state = 0;
}

/* XORs the payload with the 4-byte key. Eight bytes per step (four words per iteration for
 * long payloads); the 8-byte mask is the key twice in memory order, so the loads and the XOR
 * are the same whatever the host's byte order. Offsets stay multiples of 8, so the byte tail
 * starts at key[0]. */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4])
{
    uint8_t k8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; n - i >= 32; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        w[0] ^= k;
        w[1] ^= k;
        w[2] ^= k;
        w[3] ^= k;
        memcpy(p + i, w, 32);
    }
    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= key[i & 3];
}

static bool valid_close_code(unsigned code)
{
    /* 1004 is reserved, 1005/1006/1015 must never be on the wire, 1016..2999 are unassigned
     * (so a peer sending them is in error). 1012..1014 were registered after RFC 6455 (IANA)
     * and are accepted, as most servers do. 3000..4999 are for libraries and applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static int fail(int code)
{
    return -code;
}

int ws_reader_parse(ws_reader *r, uint8_t *in, size_t len, size_t *consumed, ws_event *ev)
{
    static const uint8_t empty[1] = {0};
    *consumed = 0;
    if (!r->fragmenting && r->msg.cap > WS_KEEP_CAPACITY)
        buf_free(&r->msg);

    /* Everything decidable from the first two bytes fails at once, without waiting for the
     * rest of the frame. */
    if (len < 1)
        return 0;
    uint8_t b0 = in[0];
    bool fin = (b0 & 0x80) != 0;
    unsigned op = b0 & 0x0F;
    if (b0 & 0x70) /* RSV1-3: no extension is negotiated */
        return fail(WS_CLOSE_PROTOCOL_ERROR);
    bool control = (op & 0x08) != 0;
    switch (op) {
    case WS_OP_CONT:
        if (!r->fragmenting)
            return fail(WS_CLOSE_PROTOCOL_ERROR);
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (r->fragmenting)
            return fail(WS_CLOSE_PROTOCOL_ERROR);
        break;
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!fin)
            return fail(WS_CLOSE_PROTOCOL_ERROR);
        break;
    default:
        return fail(WS_CLOSE_PROTOCOL_ERROR);
    }
    if (len < 2)
        return 0;
    uint8_t b1 = in[1];
    if (!(b1 & 0x80)) /* clients must mask */
        return fail(WS_CLOSE_PROTOCOL_ERROR);
    uint64_t plen = b1 & 0x7F;
    if (control && plen > 125)
        return fail(WS_CLOSE_PROTOCOL_ERROR);

    size_t hlen = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)in[2] << 8 | in[3];
        hlen = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = plen << 8 | in[i];
        /* RFC 6455 requires the top bit clear; the reference (Node's ws) answers such a length
         * with 1009 like any length over the limit, and so do we. */
        if (plen >> 63)
            return fail(WS_CLOSE_TOO_BIG);
        hlen = 10;
    }
    /* Non-minimal length encodings are accepted: RFC 6455 puts that duty on the sender, and
     * rejecting them buys nothing. */

    /* The size limit is applied to the announced length, before any payload is waited for,
     * so a peer can never make us hold more than max_message. Control frames are bounded by
     * 125 bytes already and are not messages. Written as subtractions: no overflow. */
    if (!control) {
        size_t have = op == WS_OP_CONT ? r->msg.len : 0;
        if (have > r->max_message || plen > r->max_message - have)
            return fail(WS_CLOSE_TOO_BIG);
    }

    hlen += 4; /* masking key */
    if (len < hlen || plen > len - hlen)
        return 0; /* incomplete: nothing touched, so the caller can retry with more */
    size_t n = (size_t)plen;
    uint8_t *payload = in + hlen;
    unmask(payload, n, in + hlen - 4);
    size_t frame_len = hlen + n;

    if (control) {
        ev->op = (enum ws_opcode)op;
        ev->data = payload;
        ev->len = n;
        ev->close_code = 0;
        if (op == WS_OP_CLOSE) {
            if (n == 0) {
                ev->close_code = WS_CLOSE_NO_STATUS;
            } else {
                if (n == 1)
                    return fail(WS_CLOSE_PROTOCOL_ERROR);
                unsigned code = (unsigned)payload[0] << 8 | payload[1];
                if (!valid_close_code(code))
                    return fail(WS_CLOSE_PROTOCOL_ERROR);
                if (!ws_utf8_valid(payload + 2, n - 2))
                    return fail(WS_CLOSE_INVALID_DATA);
                ev->close_code = (uint16_t)code;
                ev->data = payload + 2;
                ev->len = n - 2;
            }
        }
        *consumed = frame_len;
        return 1;
    }

    if (op != WS_OP_CONT && fin) {
        /* The common case: a whole message in one frame, handed out where it lies. */
        if (op == WS_OP_TEXT && !ws_utf8_valid(payload, n))
            return fail(WS_CLOSE_INVALID_DATA);
        ev->op = (enum ws_opcode)op;
        ev->data = payload;
        ev->len = n;
        ev->close_code = 0;
        *consumed = frame_len;
        return 1;
    }

    /* A fragment. Text is validated as each fragment arrives, so garbage fails without
     * waiting for the end of the message; the reader's state is only changed once the
     * fragment is known to be good. */
    enum ws_opcode mop = op == WS_OP_CONT ? r->frag_op : (enum ws_opcode)op;
    uint32_t ustate = op == WS_OP_CONT ? r->utf8_state : 0;
    if (mop == WS_OP_TEXT) {
        ustate = ws_utf8_step(ustate, payload, n);
        if (ustate == WS_UTF8_REJECT || (fin && ustate != 0))
            return fail(WS_CLOSE_INVALID_DATA);
    }
    if (op != WS_OP_CONT)
        buf_reset(&r->msg);
    if (buf_append(&r->msg, payload, n) < 0)
        return fail(WS_CLOSE_INTERNAL);
    r->fragmenting = !fin;
    r->frag_op = mop;
    r->utf8_state = ustate;
    *consumed = frame_len;
    if (!fin)
        return 0;
    ev->op = mop;
    ev->data = r->msg.data ? (const uint8_t *)r->msg.data : empty;
    ev->len = r->msg.len;
    ev->close_code = 0;
    return 1;
}
