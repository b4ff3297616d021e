/* fuzz_platform.c: libFuzzer target for the platform's event validation, rtd/validate.c,
 * run on what a client can send: the event argument is parsed as rtd/socketio/sio.c's parse_json
 * reads a packet's data (json-c, strict, UTF-8 validating, 32 levels, the whole input
 * consumed; no input is no argument at all), then every validator (identify, send-message,
 * join/leave, get-messages) runs on the value and on each array element and object member
 * of it, and validate_platform_token on every string in it.
 *
 * Input: bytes 0-1 pick max_text_bytes (0xFFFF: no limit), the rest is the JSON text.
 *
 * Each verdict and error code is compared with a reference written from validate.h and the
 * platform guide (members looked up by walking the object, UTF-8 checked by decoding code
 * points). On success every string handed out must be the member's own bytes (or the
 * struct's), valid UTF-8 without NUL and within its bound; on failure the code must be set
 * and the message NUL-terminated. */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/validate.h"
#include "tests/fuzz/fuzz.h"

#define MAX_JSON_DEPTH 32

/* ---- reference ------------------------------------------------------------------------ */

/* Code points in s, or -1 when it is not UTF-8 (RFC 3629) or holds a NUL. */
static long ref_text_chars(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    long chars = 0;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t more;
        uint32_t cp, min;
        if (c == 0)
            return -1;
        if (c < 0x80) {
            i++;
            chars++;
            continue;
        } else if (c >= 0xC0 && c < 0xE0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c < 0xF0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c < 0xF8) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        if (n - i - 1 < more)
            return -1;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        i += more + 1;
        chars++;
    }
    return chars;
}

static bool ref_text(const char *s, size_t n)
{
    return ref_text_chars(s, n) >= 0;
}

static bool is_type(struct json_object *v, enum json_type t)
{
    return v && json_object_get_type(v) == t;
}

/* The member called key, found by walking the object: NULL when absent or null. */
static struct json_object *member(struct json_object *obj, const char *key)
{
    if (!is_type(obj, json_type_object))
        return NULL;
    json_object_object_foreach(obj, k, v)
    {
        if (strcmp(k, key) == 0)
            return v;
    }
    return NULL;
}

static bool ref_token(const char *s, size_t n)
{
    if (n < 1 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", s[i]) || s[i] == '\0')
            return false;
    return true;
}

/* platform: 0 absent, 1 a token (lower-cased into out), -1 anything else. */
static int ref_platform(struct json_object *obj, char out[33])
{
    struct json_object *p = member(obj, "platform");
    if (!p)
        return 0;
    if (!is_type(p, json_type_string))
        return -1;
    const char *s = json_object_get_string(p);
    size_t n = (size_t)json_object_get_string_len(p);
    if (n > 32)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return ref_token(out, n) ? 1 : -1;
}

/* room: 0 absent, 1 a room of 1..128 bytes of text, -1 anything else. */
static int ref_room_member(struct json_object *obj)
{
    struct json_object *r = member(obj, "room");
    if (!r)
        return 0;
    if (!is_type(r, json_type_string))
        return -1;
    size_t n = (size_t)json_object_get_string_len(r);
    return n >= 1 && n <= 128 && ref_text(json_object_get_string(r), n) ? 1 : -1;
}

static const char *ref_identify(struct json_object *arg)
{
    if (!is_type(arg, json_type_object))
        return "invalid_payload";
    struct json_object *u = member(arg, "userId");
    if (is_type(u, json_type_string)) {
        size_t n = (size_t)json_object_get_string_len(u);
        if (n < 1 || n > 128 || !ref_text(json_object_get_string(u), n))
            return "invalid_user_id";
    } else if (u && !is_type(u, json_type_int)) {
        return "invalid_user_id";
    }
    char plat[33];
    if (ref_platform(arg, plat) < 0)
        return "invalid_platform";
    struct json_object *v = member(arg, "appVersion");
    if (v && (!is_type(v, json_type_string) || json_object_get_string_len(v) > 64 ||
              !ref_text(json_object_get_string(v), (size_t)json_object_get_string_len(v))))
        return "invalid_app_version";
    return NULL;
}

static const char *ref_message(struct json_object *arg, size_t max_text)
{
    if (!is_type(arg, json_type_object))
        return "invalid_payload";
    struct json_object *s = member(arg, "sender");
    if (!is_type(s, json_type_string))
        return "invalid_sender";
    long chars = ref_text_chars(json_object_get_string(s), (size_t)json_object_get_string_len(s));
    if (chars < 1 || chars > 100)
        return "invalid_sender";
    struct json_object *t = member(arg, "text");
    if (!is_type(t, json_type_string))
        return "invalid_text";
    size_t tn = (size_t)json_object_get_string_len(t);
    if (tn == 0 || !ref_text(json_object_get_string(t), tn))
        return "invalid_text";
    if (tn > max_text)
        return "text_too_long";
    char plat[33];
    if (ref_platform(arg, plat) < 0)
        return "invalid_platform";
    if (ref_room_member(arg) < 0)
        return "invalid_room";
    return NULL;
}

static const char *ref_room(struct json_object *arg)
{
    struct json_object *r = is_type(arg, json_type_string) ? arg : member(arg, "room");
    if (!is_type(r, json_type_string))
        return "invalid_room";
    size_t n = (size_t)json_object_get_string_len(r);
    if (n < 1 || n > 128 || !ref_text(json_object_get_string(r), n))
        return "invalid_room";
    return NULL;
}

static const char *ref_history(struct json_object *arg)
{
    if (!arg || is_type(arg, json_type_null))
        return NULL;
    if (!is_type(arg, json_type_object))
        return "invalid_payload";
    struct json_object *l = member(arg, "limit");
    if (l && (!is_type(l, json_type_int) || json_object_get_int64(l) < 1 ||
              json_object_get_int64(l) > 200))
        return "invalid_limit";
    struct json_object *b = member(arg, "before");
    if (b && (!is_type(b, json_type_int) || json_object_get_int64(b) < 1))
        return "invalid_before";
    if (ref_room_member(arg) < 0)
        return "invalid_room";
    return NULL;
}

/* ---- checks on what the validators hand out ------------------------------------------- */

/* The string s, len must be exactly the string member key of obj. */
static void is_member(struct json_object *obj, const char *key, const char *s, size_t len)
{
    struct json_object *m = member(obj, key);
    FUZZ_CHECK(is_type(m, json_type_string));
    FUZZ_CHECK(s == json_object_get_string(m));
    FUZZ_CHECK(len == (size_t)json_object_get_string_len(m));
    FUZZ_CHECK(ref_text(s, len));
}

static void check_error(int r, const struct validate_error *err, const char *want)
{
    FUZZ_CHECK(r == (want ? -1 : 0));
    if (r == 0)
        return;
    FUZZ_CHECK(err->code != NULL);
    FUZZ_CHECK(strcmp(err->code, want) == 0);
    FUZZ_CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
    FUZZ_CHECK(err->message[0] != '\0');
}

static void check_platform_out(struct json_object *obj, const char *plat)
{
    char want[33];
    FUZZ_CHECK(ref_platform(obj, want) == 1);
    FUZZ_CHECK(strcmp(plat, want) == 0);
    FUZZ_CHECK(ref_token(plat, strlen(plat)));
    FUZZ_CHECK(validate_platform_token(plat));
}

static void run_validators(struct json_object *v, size_t max_text)
{
    struct validate_error err;

    struct identify_input id;
    memset(&err, 0xAA, sizeof err);
    err.code = NULL;
    int r = validate_identify(v, &id, &err);
    check_error(r, &err, ref_identify(v));
    if (r == 0) {
        struct json_object *u = member(v, "userId");
        FUZZ_CHECK(id.has_user == (u != NULL));
        if (is_type(u, json_type_string)) {
            is_member(v, "userId", id.user, id.user_len);
        } else if (u) {
            char want[24];
            snprintf(want, sizeof want, "%" PRId64, json_object_get_int64(u));
            FUZZ_CHECK(id.user == id.user_buf);
            FUZZ_CHECK(id.user_len == strlen(want) && strcmp(id.user, want) == 0);
        }
        if (id.has_user)
            FUZZ_CHECK(id.user_len >= 1 && id.user_len <= VALIDATE_MAX_USER_ID_BYTES);
        FUZZ_CHECK(id.has_platform == (member(v, "platform") != NULL));
        if (id.has_platform)
            check_platform_out(v, id.platform);
        FUZZ_CHECK(id.has_version == (member(v, "appVersion") != NULL));
        if (id.has_version) {
            is_member(v, "appVersion", id.version, id.version_len);
            FUZZ_CHECK(id.version_len <= VALIDATE_MAX_APP_VERSION_BYTES);
        }
    }

    struct message_input m;
    memset(&err, 0xAA, sizeof err);
    err.code = NULL;
    r = validate_message(v, max_text, &m, &err);
    check_error(r, &err, ref_message(v, max_text));
    if (r == 0) {
        is_member(v, "sender", m.sender, m.sender_len);
        long chars = ref_text_chars(m.sender, m.sender_len);
        FUZZ_CHECK(chars >= 1 && chars <= VALIDATE_MAX_SENDER_CHARS);
        is_member(v, "text", m.text, m.text_len);
        FUZZ_CHECK(m.text_len >= 1 && m.text_len <= max_text);
        FUZZ_CHECK(m.has_platform == (member(v, "platform") != NULL));
        if (m.has_platform)
            check_platform_out(v, m.platform);
        if (member(v, "room")) {
            is_member(v, "room", m.room, m.room_len);
            FUZZ_CHECK(m.room_len >= 1 && m.room_len <= VALIDATE_MAX_ROOM_BYTES);
        } else {
            FUZZ_CHECK(m.room == NULL);
        }
    }

    const char *room = (const char *)1;
    size_t room_len = 1234;
    memset(&err, 0xAA, sizeof err);
    err.code = NULL;
    r = validate_room(v, &room, &room_len, &err);
    check_error(r, &err, ref_room(v));
    if (r == 0) {
        if (is_type(v, json_type_string)) {
            FUZZ_CHECK(room == json_object_get_string(v));
            FUZZ_CHECK(room_len == (size_t)json_object_get_string_len(v));
        } else {
            is_member(v, "room", room, room_len);
        }
        FUZZ_CHECK(room_len >= 1 && room_len <= VALIDATE_MAX_ROOM_BYTES);
        FUZZ_CHECK(ref_text(room, room_len));
    }

    struct history_input h;
    memset(&err, 0xAA, sizeof err);
    err.code = NULL;
    r = validate_history(v, &h, &err);
    check_error(r, &err, ref_history(v));
    if (r == 0) {
        struct json_object *l = member(v, "limit"), *b = member(v, "before");
        FUZZ_CHECK(h.limit == (l ? (int)json_object_get_int64(l) : VALIDATE_HISTORY_DEFAULT));
        FUZZ_CHECK(h.limit >= 1 && h.limit <= VALIDATE_HISTORY_MAX);
        FUZZ_CHECK(h.before == (b ? json_object_get_int64(b) : 0));
        FUZZ_CHECK(h.before >= 0);
        if (member(v, "room")) {
            is_member(v, "room", h.room, h.room_len);
            FUZZ_CHECK(h.room_len >= 1 && h.room_len <= VALIDATE_MAX_ROOM_BYTES);
        } else {
            FUZZ_CHECK(h.room == NULL);
        }
    }
}

/* validate_platform_token on every string in v (up to its first NUL, as a C string). */
static void check_tokens(struct json_object *v, int depth)
{
    FUZZ_CHECK(depth <= MAX_JSON_DEPTH);
    switch (v ? json_object_get_type(v) : json_type_null) {
    case json_type_string: {
        const char *s = json_object_get_string(v);
        FUZZ_CHECK(validate_platform_token(s) == ref_token(s, strlen(s)));
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(v); i++)
            check_tokens(json_object_array_get_idx(v, i), depth + 1);
        break;
    case json_type_object: {
        json_object_object_foreach(v, key, val)
        {
            FUZZ_CHECK(validate_platform_token(key) == ref_token(key, strlen(key)));
            check_tokens(val, depth + 1);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- entry point ---------------------------------------------------------------------- */

static json_tokener *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (!tok) {
        tok = json_tokener_new_ex(MAX_JSON_DEPTH);
        FUZZ_CHECK(tok != NULL);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    }
    unsigned sel = (unsigned)data[0] << 8 | data[1];
    size_t max_text = sel == 0xFFFF ? SIZE_MAX : sel;
    size_t len = size - 2;
    char *s = malloc(len ? len : 1);
    FUZZ_CHECK(s != NULL);
    if (len)
        memcpy(s, data + 2, len);

    /* The input itself as a C string, JSON or not. */
    char *cs = malloc(len + 1);
    FUZZ_CHECK(cs != NULL);
    if (len)
        memcpy(cs, s, len);
    cs[len] = '\0';
    FUZZ_CHECK(validate_platform_token(cs) == ref_token(cs, strlen(cs)));
    free(cs);

    /* sio.c's parse_json: no data is no argument; a parse error drops the packet. */
    struct json_object *v = NULL;
    if (len > 0) {
        json_tokener_reset(tok);
        v = json_tokener_parse_ex(tok, s, (int)len);
        if (!v || json_tokener_get_error(tok) != json_tokener_success ||
            json_tokener_get_parse_end(tok) != len) {
            json_object_put(v);
            free(s);
            return 0;
        }
    }

    run_validators(v, max_text);
    if (is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            run_validators(json_object_array_get_idx(v, i), max_text);
    } else if (is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            (void)key;
            run_validators(val, max_text);
        }
    }
    check_tokens(v, 0);

    json_object_put(v);
    free(s);
    return 0;
}
