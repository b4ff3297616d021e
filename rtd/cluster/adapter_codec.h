/* adapter_codec.h: the payloads of @socket.io/redis-adapter 8.3's classic protocol, as
 * msgpack (msgpack-c), with no state and no I/O (fuzzed: tests/fuzz/fuzz_redis.c).
 *
 * A broadcast is [uid, packet, opts] with packet {type, data, nsp} and opts {rooms, except,
 * flags}. Decoding is lenient the way the reference README asks: every integer width, both
 * key orders, bin and ext 0 as binary, fixext1 type 0 (JavaScript's undefined) as null or an
 * absent key, the timestamp ext as the ISO string JSON.stringify gives a Date, an empty array
 * where a map belongs (PHP), a missing nsp as "/", a missing except, type 5 as 2. Anything
 * else (bad msgpack, trailing bytes, wrong types, more than the limits below) is refused
 * with a reason. Lengths are checked against the bytes present before msgpack-c allocates.
 *
 * The decoded event is given as its name and its arguments as JSON text (comma-joined, no
 * brackets) with {"_placeholder":true,"num":i} for binary values, which is what
 * sio_event_packet takes. */
#ifndef RTD_ADAPTER_CODEC_H
#define RTD_ADAPTER_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>

#include "rtd/lib/buf.h"
#include "rtd/socketio/sio.h"

#define ACODEC_MAX_DEPTH 32
#define ACODEC_MAX_BINS 10
#define ACODEC_MAX_ROOMS 1024
#define ACODEC_MAX_STRING 4096 /* uid, nsp, event, room names */

struct acodec_event {
    char *nsp;             /* "/" when absent */
    char *event;
    buf args;              /* JSON, comma-joined */
    sio_bin bins[ACODEC_MAX_BINS]; /* point into the decoded message (acodec_broadcast.up) */
    size_t nbins;
};

struct acodec_opts {
    char **rooms;
    size_t nrooms;
    char **except;
    size_t nexcept;
    bool is_volatile;
    bool compress;
    bool local;
};

struct acodec_broadcast {
    msgpack_unpacked up;
    char *uid;
    struct acodec_event ev;
    struct acodec_opts opts;
};

/* Returns 0, or -1 with *why (static text). out is always to be freed with
 * acodec_broadcast_free, whatever the result. */
int acodec_decode_broadcast(const unsigned char *data, size_t len, struct acodec_broadcast *out,
                            const char **why);
void acodec_broadcast_free(struct acodec_broadcast *b);

/* Checks that data holds exactly one msgpack value whose lengths all fit in the bytes
 * present, nested at most ACODEC_MAX_DEPTH deep. */
bool acodec_msgpack_sane(const unsigned char *data, size_t len);

/* The pieces of a msgpack object decoders share (for the requests' msgpack forms). */
int acodec_event_from(const msgpack_object *packet, struct acodec_event *ev, const char **why);
int acodec_opts_from(const msgpack_object *opts, struct acodec_opts *o, const char **why);
void acodec_event_free(struct acodec_event *ev);
void acodec_opts_free(struct acodec_opts *o);
/* Looks up a str key in a map (NULL when absent or obj is not a map). */
const msgpack_object *acodec_map_get(const msgpack_object *obj, const char *key);

/* Packs a Socket.IO text packet ("2[...]", "51-/chat,[...]") and its attachments as the
 * adapter's packet object {type:2, data:[...], nsp} (binaries inline as bin). */
int acodec_pack_packet(msgpack_packer *pk, const char *nsp, const char *text, size_t len,
                       const sio_bin *bins, size_t nbins);
/* A whole broadcast [uid, packet, {rooms, except, flags}] into out. */
int acodec_encode_broadcast(buf *out, const char *uid, const char *nsp, const char *text,
                            size_t len, const sio_bin *bins, size_t nbins,
                            const char *const *rooms, size_t nrooms,
                            const char *const *except, size_t nexcept, bool is_volatile);
/* A JSON value as msgpack, placeholders replaced by the bins they name. */
int acodec_pack_json(msgpack_packer *pk, struct json_object *v, const sio_bin *bins,
                     size_t nbins);
int acodec_pack_str(msgpack_packer *pk, const char *s, size_t n);
/* A msgpack_packer writing into a buf. */
void acodec_packer_init(msgpack_packer *pk, buf *out);

#endif
