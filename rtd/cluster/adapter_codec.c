/* adapter_codec.c: the classic Redis adapter's msgpack payloads (see adapter_codec.h). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/cluster/adapter_codec.h"
#include "rtd/lib/util.h"
#include "rtd/net/ws.h"
#include "rtd/socketio/sio_parser.h"

/* ---- the length check before msgpack-c sees the bytes ----
 * msgpack-c allocates an array's or a map's elements when it reads the header, so a 5-byte
 * "array of 2^32 elements" would cost gigabytes before the bytes run out. Every element
 * takes at least one byte: a count above the bytes left is refused here. */

static bool need(size_t pos, size_t n, size_t len)
{
    return n <= len && pos <= len - n;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static bool sane(const unsigned char *d, size_t len, size_t *pos, int depth)
{
    if (depth >= ACODEC_MAX_DEPTH || !need(*pos, 1, len)) /* msgpack-c nests 32 deep */
        return false;
    unsigned b = d[(*pos)++];
    uint64_t count = 0, skip = 0;
    int hdr = 0;
    bool items = false, map = false;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return true;
    if ((b & 0xf0) == 0x80) {
        count = b & 0x0f;
        items = map = true;
    } else if ((b & 0xf0) == 0x90) {
        count = b & 0x0f;
        items = true;
    } else if ((b & 0xe0) == 0xa0) {
        skip = b & 0x1f;
    } else {
        switch (b) {
        case 0xc4: case 0xd9: hdr = 1; break;          /* bin8, str8 */
        case 0xc5: case 0xda: hdr = 2; break;          /* bin16, str16 */
        case 0xc6: case 0xdb: hdr = 4; break;          /* bin32, str32 */
        case 0xc7: hdr = 1; skip = 1; break;           /* ext8: len, type */
        case 0xc8: hdr = 2; skip = 1; break;
        case 0xc9: hdr = 4; skip = 1; break;
        case 0xca: skip = 4; break;
        case 0xcb: skip = 8; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;                    /* fixext: type + data */
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: hdr = 2; items = true; break;
        case 0xdd: hdr = 4; items = true; break;
        case 0xde: hdr = 2; items = map = true; break;
        case 0xdf: hdr = 4; items = map = true; break;
        default: return false;                         /* 0xc1 */
        }
        if (hdr) {
            if (!need(*pos, (size_t)hdr, len))
                return false;
            uint64_t n = be(d + *pos, hdr);
            *pos += (size_t)hdr;
            if (items)
                count = n;
            else
                skip += n;
        }
    }
    if (!items) {
        if (!need(*pos, skip, len))
            return false;
        *pos += skip;
        return true;
    }
    uint64_t elems = map ? count * 2 : count;
    if (elems > len - *pos)
        return false;
    for (uint64_t i = 0; i < elems; i++)
        if (!sane(d, len, pos, depth + 1))
            return false;
    return true;
}

bool acodec_msgpack_sane(const unsigned char *data, size_t len)
{
    size_t pos = 0;
    return sane(data, len, &pos, 0) && pos == len;
}

/* ---- msgpack -> JSON text ---- */

/* msgpack-c gives empty strings, bins and exts a NULL pointer. */
static const char *nz(const char *p)
{
    return p ? p : "";
}


static bool str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           !memcmp(nz(o->via.str.ptr), s, n);
}

const msgpack_object *acodec_map_get(const msgpack_object *obj, const char *key)
{
    if (!obj || obj->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < obj->via.map.size; i++)
        if (str_eq(&obj->via.map.ptr[i].key, key))
            return &obj->via.map.ptr[i].val;
    return NULL;
}

static bool is_undefined(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 0 && o->via.ext.size == 1 &&
           o->via.ext.ptr && o->via.ext.ptr[0] == 0;
}

static bool is_binary(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_BIN ||
           (o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 0 && !is_undefined(o));
}

static int put_json_string(buf *out, const char *s, size_t n)
{
    s = nz(s);
    if (!ws_utf8_valid((const uint8_t *)s, n))
        return -1;
    if (buf_putc(out, '"') < 0 || buf_json_escape(out, s, n) < 0 || buf_putc(out, '"') < 0)
        return -1;
    return 0;
}

/* The timestamp extension (type -1) as JSON.stringify writes a Date. */
static int put_timestamp(buf *out, const msgpack_object *o)
{
    const unsigned char *p = (const unsigned char *)o->via.ext.ptr;
    int64_t sec;
    uint64_t nsec = 0;
    if (o->via.ext.size == 4) {
        sec = (int64_t)be(p, 4);
    } else if (o->via.ext.size == 8) {
        uint64_t v = be(p, 8);
        nsec = v >> 34;
        sec = (int64_t)(v & 0x3ffffffffULL);
    } else if (o->via.ext.size == 12) {
        nsec = be(p, 4);
        sec = (int64_t)be(p + 4, 8);
    } else {
        return buf_puts(out, "null");
    }
    if (sec < -62135596800LL || sec > 253402300799LL || nsec >= 1000000000ULL)
        return buf_puts(out, "null"); /* outside years 1..9999: an Invalid Date is null */
    char iso[32];
    util_format_iso_time(sec * 1000 + (int64_t)(nsec / 1000000), iso);
    return buf_printf(out, "\"%s\"", iso);
}

static int to_json(buf *out, const msgpack_object *o, struct acodec_event *ev, const char **why)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return buf_puts(out, "null");
    case MSGPACK_OBJECT_BOOLEAN:
        return buf_puts(out, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return buf_printf(out, "%llu", (unsigned long long)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return buf_printf(out, "%lld", (long long)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            return buf_puts(out, "null"); /* as JSON.stringify */
        /* integral values below 2^53 as JavaScript prints them (no libm needed) */
        if (o->via.f64 > -9007199254740992.0 && o->via.f64 < 9007199254740992.0 &&
            o->via.f64 == (double)(long long)o->via.f64)
            return buf_printf(out, "%.0f", o->via.f64);
        return buf_printf(out, "%.17g", o->via.f64);
    case MSGPACK_OBJECT_STR:
        if (put_json_string(out, o->via.str.ptr, o->via.str.size) < 0) {
            *why = "a string is not UTF-8";
            return -1;
        }
        return 0;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
        if (is_binary(o)) {
            if (ev->nbins >= ACODEC_MAX_BINS) {
                *why = "too many binary values";
                return -1;
            }
            bool bin = o->type == MSGPACK_OBJECT_BIN;
            ev->bins[ev->nbins] = (sio_bin){
                (const unsigned char *)nz(bin ? o->via.bin.ptr : o->via.ext.ptr),
                bin ? o->via.bin.size : o->via.ext.size};
            return buf_printf(out, "{\"_placeholder\":true,\"num\":%zu}", ev->nbins++);
        }
        if (o->via.ext.type == -1)
            return put_timestamp(out, o);
        return buf_puts(out, "null"); /* undefined, unknown extensions */
    case MSGPACK_OBJECT_ARRAY:
        if (buf_putc(out, '[') < 0)
            return -1;
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if ((i && buf_putc(out, ',') < 0) || to_json(out, &o->via.array.ptr[i], ev, why) < 0)
                return -1;
        return buf_putc(out, ']');
    case MSGPACK_OBJECT_MAP: {
        if (buf_putc(out, '{') < 0)
            return -1;
        bool first = true;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
            if (is_undefined(v))
                continue; /* JSON.stringify leaves undefined members out */
            if (k->type != MSGPACK_OBJECT_STR || memchr(nz(k->via.str.ptr), 0, k->via.str.size)) {
                *why = "a map key is not a string without NUL";
                return -1;
            }
            if ((!first && buf_putc(out, ',') < 0) ||
                put_json_string(out, k->via.str.ptr, k->via.str.size) < 0 ||
                buf_putc(out, ':') < 0 || to_json(out, v, ev, why) < 0) {
                if (!*why)
                    *why = "a map key is not UTF-8";
                return -1;
            }
            first = false;
        }
        return buf_putc(out, '}');
    }
    }
    *why = "unknown msgpack type";
    return -1;
}

static char *dup_str(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > ACODEC_MAX_STRING)
        return NULL;
    const char *p = nz(o->via.str.ptr);
    if (memchr(p, 0, o->via.str.size) || !ws_utf8_valid((const uint8_t *)p, o->via.str.size))
        return NULL;
    return strndup(p, o->via.str.size);
}

void acodec_event_free(struct acodec_event *ev)
{
    free(ev->nsp);
    free(ev->event);
    buf_free(&ev->args);
    memset(ev, 0, sizeof *ev);
}

int acodec_event_from(const msgpack_object *packet, struct acodec_event *ev, const char **why)
{
    memset(ev, 0, sizeof *ev);
    const msgpack_object *type = acodec_map_get(packet, "type");
    const msgpack_object *data = acodec_map_get(packet, "data");
    const msgpack_object *nsp = acodec_map_get(packet, "nsp");
    if (!type || type->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (type->via.u64 != SIO_EVENT && type->via.u64 != SIO_BINARY_EVENT)) {
        *why = "the packet is not an event";
        return -1;
    }
    if (!data || data->type != MSGPACK_OBJECT_ARRAY || data->via.array.size == 0 ||
        data->via.array.ptr[0].type != MSGPACK_OBJECT_STR) {
        *why = "the packet's data is not [name, ...args]";
        return -1;
    }
    if (nsp && nsp->type != MSGPACK_OBJECT_NIL && !is_undefined(nsp)) {
        if (!(ev->nsp = dup_str(nsp)) || ev->nsp[0] != '/' || strchr(ev->nsp, ',')) {
            *why = "bad namespace"; /* not one Socket.IO could name */
            return -1;
        }
    } else if (!(ev->nsp = strdup("/"))) {
        *why = "out of memory";
        return -1;
    }
    if (!(ev->event = dup_str(&data->via.array.ptr[0]))) {
        *why = "bad event name";
        return -1;
    }
    *why = NULL;
    for (uint32_t i = 1; i < data->via.array.size; i++) {
        if ((i > 1 && buf_putc(&ev->args, ',') < 0) ||
            to_json(&ev->args, &data->via.array.ptr[i], ev, why) < 0) {
            if (!*why)
                *why = "out of memory";
            return -1;
        }
    }
    if (buf_terminate(&ev->args) < 0) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

void acodec_opts_free(struct acodec_opts *o)
{
    free_list(o->rooms, o->nrooms);
    free_list(o->except, o->nexcept);
    memset(o, 0, sizeof *o);
}

/* An array of strings; absent, nil, or an empty array or map (PHP) is empty. Numbers are
 * rooms too (socket.io rooms are any value; JavaScript keys them as written). */
static int str_list(const msgpack_object *v, char ***out, size_t *n, const char **why)
{
    *out = NULL;
    *n = 0;
    if (!v || v->type == MSGPACK_OBJECT_NIL || is_undefined(v) ||
        (v->type == MSGPACK_OBJECT_MAP && v->via.map.size == 0))
        return 0;
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > ACODEC_MAX_ROOMS) {
        *why = "rooms or except is not a list of strings";
        return -1;
    }
    if (v->via.array.size == 0)
        return 0;
    if (!(*out = calloc(v->via.array.size, sizeof **out))) {
        *why = "out of memory";
        return -1;
    }
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        char num[32];
        if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            snprintf(num, sizeof num, "%llu", (unsigned long long)e->via.u64);
            (*out)[i] = strdup(num);
        } else if (e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            snprintf(num, sizeof num, "%lld", (long long)e->via.i64);
            (*out)[i] = strdup(num);
        } else {
            (*out)[i] = dup_str(e);
        }
        if (!(*out)[i]) {
            *why = "a room is not a string";
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static bool flag(const msgpack_object *flags, const char *name)
{
    const msgpack_object *v = acodec_map_get(flags, name);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

int acodec_opts_from(const msgpack_object *opts, struct acodec_opts *o, const char **why)
{
    memset(o, 0, sizeof *o);
    if (!opts || opts->type == MSGPACK_OBJECT_NIL ||
        (opts->type == MSGPACK_OBJECT_ARRAY && opts->via.array.size == 0))
        return 0;
    if (opts->type != MSGPACK_OBJECT_MAP) {
        *why = "the options are not a map";
        return -1;
    }
    if (str_list(acodec_map_get(opts, "rooms"), &o->rooms, &o->nrooms, why) < 0 ||
        str_list(acodec_map_get(opts, "except"), &o->except, &o->nexcept, why) < 0)
        return -1;
    const msgpack_object *flags = acodec_map_get(opts, "flags");
    o->is_volatile = flag(flags, "volatile");
    o->compress = flag(flags, "compress");
    o->local = flag(flags, "local");
    return 0;
}

void acodec_broadcast_free(struct acodec_broadcast *b)
{
    free(b->uid);
    acodec_event_free(&b->ev);
    acodec_opts_free(&b->opts);
    msgpack_unpacked_destroy(&b->up);
    memset(b, 0, sizeof *b);
    msgpack_unpacked_init(&b->up);
}

int acodec_decode_broadcast(const unsigned char *data, size_t len, struct acodec_broadcast *out,
                            const char **why)
{
    memset(out, 0, sizeof *out);
    msgpack_unpacked_init(&out->up);
    if (!acodec_msgpack_sane(data, len)) {
        *why = "not one well-formed msgpack value";
        return -1;
    }
    size_t off = 0;
    if (msgpack_unpack_next(&out->up, (const char *)data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        *why = "msgpack-c refused the value";
        return -1;
    }
    const msgpack_object *o = &out->up.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2) {
        *why = "not [uid, packet, opts]";
        return -1;
    }
    const msgpack_object *a = o->via.array.ptr;
    if (!(out->uid = dup_str(&a[0]))) {
        *why = "the uid is not a string";
        return -1;
    }
    if (acodec_event_from(&a[1], &out->ev, why) < 0)
        return -1;
    return acodec_opts_from(o->via.array.size > 2 ? &a[2] : NULL, &out->opts, why);
}

/* ---- JSON -> msgpack ---- */

static int buf_write(void *data, const char *p, size_t n)
{
    return buf_append(data, p, n);
}

void acodec_packer_init(msgpack_packer *pk, buf *out)
{
    msgpack_packer_init(pk, out, buf_write);
}

int acodec_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n) ? -1 : 0;
}

int acodec_pack_json(msgpack_packer *pk, struct json_object *v, const sio_bin *bins,
                     size_t nbins)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return msgpack_pack_nil(pk);
    case json_type_boolean:
        return json_object_get_boolean(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case json_type_int:
        if (json_object_get_int64(v) == INT64_MAX)
            return msgpack_pack_uint64(pk, json_object_get_uint64(v));
        return msgpack_pack_int64(pk, json_object_get_int64(v));
    case json_type_double:
        return msgpack_pack_double(pk, json_object_get_double(v));
    case json_type_string:
        return acodec_pack_str(pk, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    case json_type_array: {
        size_t n = json_object_array_length(v);
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (acodec_pack_json(pk, json_object_array_get_idx(v, i), bins, nbins))
                return -1;
        return 0;
    }
    case json_type_object: {
        struct json_object *ph, *num;
        if (json_object_object_length(v) == 2 &&
            json_object_object_get_ex(v, "_placeholder", &ph) && json_object_get_boolean(ph) &&
            json_object_object_get_ex(v, "num", &num)) {
            int64_t i = json_object_get_int64(num);
            if (i >= 0 && (size_t)i < nbins)
                return msgpack_pack_bin(pk, bins[i].len) ||
                               msgpack_pack_bin_body(pk, bins[i].data, bins[i].len)
                           ? -1
                           : 0;
        }
        if (msgpack_pack_map(pk, (size_t)json_object_object_length(v)))
            return -1;
        json_object_object_foreach(v, key, val)
        {
            if (acodec_pack_str(pk, key, strlen(key)) || acodec_pack_json(pk, val, bins, nbins))
                return -1;
        }
        return 0;
    }
    }
    return -1;
}

int acodec_pack_packet(msgpack_packer *pk, const char *nsp, const char *text, size_t len,
                       const sio_bin *bins, size_t nbins)
{
    sio_header h;
    if (sio_parse_header(text, len, ACODEC_MAX_BINS, &h) < 0 ||
        (h.type != SIO_EVENT && h.type != SIO_BINARY_EVENT))
        return -1;
    json_tokener *tok = json_tokener_new_ex(ACODEC_MAX_DEPTH + 2);
    if (!tok)
        return -1;
    struct json_object *data = json_tokener_parse_ex(tok, h.data, (int)h.data_len);
    bool ok = data && json_tokener_get_error(tok) == json_tokener_success &&
              json_object_is_type(data, json_type_array);
    json_tokener_free(tok);
    int r = -1;
    /* {type: 2, data, nsp}: always EVENT with the binaries inline (never 5, see the
     * reference: Node would print "5undefined-"). */
    if (ok && !msgpack_pack_map(pk, 3) && !acodec_pack_str(pk, "type", 4) &&
        !msgpack_pack_int(pk, SIO_EVENT) && !acodec_pack_str(pk, "data", 4) &&
        !acodec_pack_json(pk, data, bins, nbins) && !acodec_pack_str(pk, "nsp", 3) &&
        !acodec_pack_str(pk, nsp, strlen(nsp)))
        r = 0;
    json_object_put(data);
    return r;
}

static int pack_list(msgpack_packer *pk, const char *const *l, size_t n)
{
    if (msgpack_pack_array(pk, n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (acodec_pack_str(pk, l[i], strlen(l[i])))
            return -1;
    return 0;
}

int acodec_encode_broadcast(buf *out, const char *uid, const char *nsp, const char *text,
                            size_t len, const sio_bin *bins, size_t nbins,
                            const char *const *rooms, size_t nrooms,
                            const char *const *except, size_t nexcept, bool is_volatile)
{
    msgpack_packer pk;
    acodec_packer_init(&pk, out);
    if (msgpack_pack_array(&pk, 3) || acodec_pack_str(&pk, uid, strlen(uid)) ||
        acodec_pack_packet(&pk, nsp, text, len, bins, nbins) || msgpack_pack_map(&pk, 3) ||
        acodec_pack_str(&pk, "rooms", 5) || pack_list(&pk, rooms, nrooms) ||
        acodec_pack_str(&pk, "except", 6) || pack_list(&pk, except, nexcept) ||
        acodec_pack_str(&pk, "flags", 5))
        return -1;
    if (is_volatile)
        return msgpack_pack_map(&pk, 1) || acodec_pack_str(&pk, "volatile", 8) || msgpack_pack_true(&pk)
                   ? -1
                   : 0;
    return msgpack_pack_map(&pk, 0) ? -1 : 0;
}
