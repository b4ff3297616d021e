/* fuzz_sio.c: libFuzzer target for the Socket.IO packet decoder of rtd/socketio/sio_parser.c, run
 * the way rtd/socketio/sio.c runs it on every text packet: sio_parse_header, then json-c on the data
 * slice with a strict, UTF-8 validating tokener limited to 32 levels (sio.c's parse_json and
 * its default max_json_depth), then sio_payload_valid and, for binary packets,
 * sio_placeholders_valid.
 *
 * Input: byte 0 picks max_attachments, the rest is the packet (an exact-size heap copy, so
 * AddressSanitizer sees any overread).
 *
 * The header is compared field by field with a reference decoder written from the format
 * (<type>[<attachments>-][<namespace>,][<ack id>][payload]), encoded again with
 * sio_encode_header and decoded back; the payload verdicts are compared with reference
 * checks written from socket.io-parser's rules. */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/lib/buf.h"
#include "rtd/socketio/sio_parser.h"
#include "tests/fuzz/fuzz.h"

#define MAX_JSON_DEPTH 32

/* ---- reference header decoder --------------------------------------------------------- */

static int ref_header(const char *s, size_t len, size_t max_att, sio_header *h)
{
    size_t i = 0;
    if (len == 0 || s[0] < '0' || s[0] > '6')
        return -1;
    h->type = (enum sio_type)(s[0] - '0');
    h->attachments = 0;
    h->nsp = "/";
    h->nsp_len = 1;
    h->id = -1;
    i = 1;
    if (h->type == SIO_BINARY_EVENT || h->type == SIO_BINARY_ACK) {
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        size_t digits = i - start;
        /* 1 to 9 digits, then '-', and no more than allowed */
        if (digits == 0 || digits > 9 || i >= len || s[i] != '-')
            return -1;
        size_t n = 0;
        for (size_t k = start; k < i; k++)
            n = n * 10 + (size_t)(s[k] - '0');
        if (n > max_att)
            return -1;
        h->attachments = n;
        i++;
    }
    if (i < len && s[i] == '/') {
        const char *comma = memchr(s + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - s) : len;
        h->nsp = s + i;
        h->nsp_len = end - i;
        i = comma ? end + 1 : len;
    }
    if (i < len && s[i] >= '0' && s[i] <= '9') {
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i - start > 16)
            return -1;
        int64_t id = 0;
        for (size_t k = start; k < i; k++)
            id = id * 10 + (s[k] - '0');
        if (id > SIO_MAX_ACK_ID)
            return -1;
        h->id = id;
    }
    h->data = s + i;
    h->data_len = len - i;
    return 0;
}

static void same_header(const sio_header *a, const sio_header *b)
{
    FUZZ_CHECK(a->type == b->type);
    FUZZ_CHECK(a->attachments == b->attachments);
    FUZZ_CHECK(a->nsp_len == b->nsp_len && memcmp(a->nsp, b->nsp, a->nsp_len) == 0);
    FUZZ_CHECK(a->id == b->id);
    FUZZ_CHECK(a->data_len == b->data_len);
    FUZZ_CHECK(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
}

/* ---- reference payload checks --------------------------------------------------------- */

static bool ref_payload(enum sio_type type, struct json_object *v)
{
    static const char *const reserved[] = {"connect",       "connect_error", "disconnect",
                                           "disconnecting", "newListener",   "removeListener"};
    enum json_type t = v ? json_object_get_type(v) : json_type_null;
    switch (type) {
    case SIO_CONNECT:
        return !v || t == json_type_object;
    case SIO_DISCONNECT:
        return !v;
    case SIO_CONNECT_ERROR:
        return v && (t == json_type_object || t == json_type_string);
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return v && t == json_type_array;
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        if (!v || t != json_type_array || json_object_array_length(v) == 0)
            return false;
        struct json_object *name = json_object_array_get_idx(v, 0);
        enum json_type nt = name ? json_object_get_type(name) : json_type_null;
        if (nt == json_type_int || nt == json_type_double)
            return true;
        if (nt != json_type_string)
            return false;
        /* The whole name, NUL bytes included, must equal a reserved one (as in JavaScript). */
        const char *s = json_object_get_string(name);
        size_t n = (size_t)json_object_get_string_len(name);
        for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
            if (n == strlen(reserved[i]) && memcmp(s, reserved[i], n) == 0)
                return false;
        return true;
    }
    }
    return false;
}

static bool ref_placeholders(struct json_object *v, size_t count, int depth)
{
    FUZZ_CHECK(depth <= MAX_JSON_DEPTH);
    enum json_type t = v ? json_object_get_type(v) : json_type_null;
    if (t == json_type_array) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            if (!ref_placeholders(json_object_array_get_idx(v, i), count, depth + 1))
                return false;
        return true;
    }
    if (t != json_type_object)
        return true;
    struct json_object *ph = json_object_object_get(v, "_placeholder");
    if (ph && json_object_get_type(ph) == json_type_boolean && json_object_get_boolean(ph)) {
        struct json_object *num = json_object_object_get(v, "num");
        if (!num || json_object_get_type(num) != json_type_int)
            return false;
        int64_t n = json_object_get_int64(num);
        return n >= 0 && (uint64_t)n < count;
    }
    bool ok = true;
    json_object_object_foreach(v, key, val)
    {
        (void)key;
        ok = ok && ref_placeholders(val, count, depth + 1);
    }
    return ok;
}

/* ---- entry point ---------------------------------------------------------------------- */

static json_tokener *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!tok) {
        tok = json_tokener_new_ex(MAX_JSON_DEPTH);
        FUZZ_CHECK(tok != NULL);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    }
    size_t max_att = data[0] == 255 ? SIZE_MAX : (size_t)data[0] % 12;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);
    FUZZ_CHECK(s != NULL);
    if (len)
        memcpy(s, data + 1, len);

    sio_header h, ref;
    memset(&h, 0xAA, sizeof h);
    int r = sio_parse_header(s, len, max_att, &h);
    int rr = ref_header(s, len, max_att, &ref);
    FUZZ_CHECK(r == rr);
    if (r != 0) {
        FUZZ_CHECK(r == -1);
        free(s);
        return 0;
    }
    same_header(&h, &ref);
    FUZZ_CHECK(h.data + h.data_len == s + len);
    FUZZ_CHECK(h.attachments <= max_att);
    FUZZ_CHECK(h.id >= -1 && h.id <= SIO_MAX_ACK_ID);
    FUZZ_CHECK(h.nsp_len >= 1 && h.nsp[0] == '/');

    /* Encoded again (as the server would answer on that namespace) and decoded back. Not
     * when the namespace has a NUL (the encoder takes a C string), nor when it is the main
     * one given explicitly ("0/,/x"): the encoder leaves "/" out, and a payload starting
     * with '/' would then read as a namespace (JSON payloads never start with '/'). */
    char *nsp = malloc(h.nsp_len + 1);
    FUZZ_CHECK(nsp != NULL);
    memcpy(nsp, h.nsp, h.nsp_len);
    nsp[h.nsp_len] = '\0';
    bool main_nsp = h.nsp_len == 1;
    if (strlen(nsp) == h.nsp_len && !(main_nsp && h.data_len > 0 && h.data[0] == '/')) {
        buf enc = BUF_INIT;
        FUZZ_CHECK(sio_encode_header(&enc, h.type, h.attachments, nsp, h.id) == 0);
        FUZZ_CHECK(buf_append(&enc, h.data, h.data_len) == 0);
        sio_header back;
        FUZZ_CHECK(sio_parse_header(enc.data, enc.len, SIZE_MAX, &back) == 0);
        same_header(&back, &h);
        buf_free(&enc);
    }
    free(nsp);

    /* The payload, exactly as rtd/socketio/sio.c's parse_json reads it. */
    struct json_object *v = NULL;
    bool json_ok = true;
    if (h.data_len > 0) {
        json_tokener_reset(tok);
        v = json_tokener_parse_ex(tok, h.data, (int)h.data_len);
        if (!v || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != h.data_len) {
            json_object_put(v);
            v = NULL;
            json_ok = false;
        }
    }
    if (json_ok) {
        bool ok = sio_payload_valid(h.type, v);
        FUZZ_CHECK(ok == ref_payload(h.type, v));
        /* sio.c only asks this of valid binary packets; it must hold up on anything. */
        bool ph = v ? sio_placeholders_valid(v, h.attachments) : true;
        FUZZ_CHECK(!v || ph == ref_placeholders(v, h.attachments, 0));
        if (ok && (h.type == SIO_BINARY_EVENT || h.type == SIO_BINARY_ACK) && ph) {
            /* What sio.c would hand to an event handler: the name as a string. */
            if (h.type == SIO_BINARY_EVENT)
                FUZZ_CHECK(json_object_get_string(json_object_array_get_idx(v, 0)) != NULL);
        }
        json_object_put(v);
    }
    free(s);
    return 0;
}
