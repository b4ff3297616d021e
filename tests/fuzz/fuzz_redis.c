/* fuzz_redis.c: libFuzzer target for the Redis adapter's msgpack decoder of
 * rtd/cluster/adapter_codec.c, run as rtd/cluster/cluster.c runs it on every broadcast that
 * comes from Redis: acodec_decode_broadcast on an exact-size heap copy (so AddressSanitizer
 * sees any overread).
 *
 * Checks: the length pre-check (acodec_msgpack_sane) never lets through what msgpack-c then
 * refuses; a decoded event's arguments are valid JSON of the expected shape and every
 * placeholder names an attachment; what decodes re-encodes (acodec_encode_broadcast) and
 * decodes again to the same uid, namespace, event, rooms, except and flags, and from the
 * second round on to the same arguments and attachments (JSON has several spellings of
 * what json-c reads back the same: duplicate keys, floats).
 * Seeds: tests/fuzz/corpus/fuzz_redis/, the broadcasts recorded from the real adapter and
 * emitter (tests/fixtures/redis/). */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/cluster/adapter_codec.h"
#include "rtd/socketio/sio_parser.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    bool sane = acodec_msgpack_sane(copy, size);
    if (sane) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        FUZZ_CHECK(msgpack_unpack_next(&up, (const char *)copy, size, &off) ==
                   MSGPACK_UNPACK_SUCCESS);
        FUZZ_CHECK(off == size);
        msgpack_unpacked_destroy(&up);
    }
    struct acodec_broadcast b;
    const char *why = NULL;
    int r = acodec_decode_broadcast(copy, size, &b, &why);
    if (r < 0) {
        FUZZ_CHECK(why != NULL);
        acodec_broadcast_free(&b);
        free(copy);
        return 0;
    }
    FUZZ_CHECK(sane);
    /* the arguments as sio would send them: a JSON array once bracketed */
    buf text = BUF_INIT;
    sio_encode_header(&text, b.ev.nbins ? SIO_BINARY_EVENT : SIO_EVENT, b.ev.nbins, b.ev.nsp, -1);
    size_t json_at = text.len;
    buf_puts(&text, "[\"");
    buf_json_escape(&text, b.ev.event, strlen(b.ev.event));
    buf_putc(&text, '"');
    if (b.ev.args.len) {
        buf_putc(&text, ',');
        buf_append(&text, b.ev.args.data, b.ev.args.len);
    }
    buf_putc(&text, ']');
    json_tokener *tok = json_tokener_new_ex(ACODEC_MAX_DEPTH + 4);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *arr =
        json_tokener_parse_ex(tok, text.data + json_at, (int)(text.len - json_at));
    FUZZ_CHECK(arr && json_tokener_get_error(tok) == json_tokener_success);
    FUZZ_CHECK(json_object_is_type(arr, json_type_array));
    FUZZ_CHECK(sio_placeholders_valid(arr, b.ev.nbins));
    json_object_put(arr);
    json_tokener_free(tok);
    /* round trip */
    buf out = BUF_INIT;
    FUZZ_CHECK(acodec_encode_broadcast(&out, b.uid, b.ev.nsp, text.data, text.len, b.ev.bins,
                                       b.ev.nbins, (const char *const *)b.opts.rooms,
                                       b.opts.nrooms, (const char *const *)b.opts.except,
                                       b.opts.nexcept, b.opts.is_volatile) == 0);
    struct acodec_broadcast b2;
    FUZZ_CHECK(acodec_decode_broadcast((const unsigned char *)out.data, out.len, &b2, &why) == 0);
    FUZZ_CHECK(!strcmp(b2.uid, b.uid) && !strcmp(b2.ev.nsp, b.ev.nsp) &&
               !strcmp(b2.ev.event, b.ev.event));
    /* JSON can say more than one way what json-c reads back (duplicate keys, float
     * spellings): from the second round on, the text is stable */
    buf text2 = BUF_INIT, out2 = BUF_INIT;
    sio_encode_header(&text2, b2.ev.nbins ? SIO_BINARY_EVENT : SIO_EVENT, b2.ev.nbins, b2.ev.nsp,
                      -1);
    buf_puts(&text2, "[\"");
    buf_json_escape(&text2, b2.ev.event, strlen(b2.ev.event));
    buf_putc(&text2, '"');
    if (b2.ev.args.len) {
        buf_putc(&text2, ',');
        buf_append(&text2, b2.ev.args.data, b2.ev.args.len);
    }
    buf_putc(&text2, ']');
    FUZZ_CHECK(acodec_encode_broadcast(&out2, b2.uid, b2.ev.nsp, text2.data, text2.len,
                                       b2.ev.bins, b2.ev.nbins, NULL, 0, NULL, 0, false) == 0);
    struct acodec_broadcast b3;
    FUZZ_CHECK(acodec_decode_broadcast((const unsigned char *)out2.data, out2.len, &b3, &why) ==
               0);
    FUZZ_CHECK(b3.ev.args.len == b2.ev.args.len &&
               !memcmp(b3.ev.args.data, b2.ev.args.data, b2.ev.args.len));
    /* (a map that looks like a placeholder becomes one, as socket.io-parser would read it) */
    FUZZ_CHECK(b3.ev.nbins == b2.ev.nbins);
    for (size_t i = 0; i < b2.ev.nbins; i++)
        FUZZ_CHECK(b3.ev.bins[i].len == b2.ev.bins[i].len &&
                   !memcmp(b3.ev.bins[i].data, b2.ev.bins[i].data, b2.ev.bins[i].len));
    acodec_broadcast_free(&b3);
    buf_free(&text2);
    buf_free(&out2);
    FUZZ_CHECK(b2.opts.nrooms == b.opts.nrooms && b2.opts.nexcept == b.opts.nexcept);
    for (size_t i = 0; i < b.opts.nrooms; i++)
        FUZZ_CHECK(!strcmp(b2.opts.rooms[i], b.opts.rooms[i]));
    for (size_t i = 0; i < b.opts.nexcept; i++)
        FUZZ_CHECK(!strcmp(b2.opts.except[i], b.opts.except[i]));
    FUZZ_CHECK(b2.opts.is_volatile == b.opts.is_volatile);
    acodec_broadcast_free(&b2);
    buf_free(&out);
    buf_free(&text);
    acodec_broadcast_free(&b);
    free(copy);
    return 0;
}
