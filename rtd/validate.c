/* validate.c: the platform's payload checks (see validate.h). Text must be valid UTF-8
 * without NUL bytes; lengths are checked in bytes, except the sender's, which the platform
 * guide counts in characters. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rtd/net/ws.h"
#include "rtd/validate.h"

static int fail(struct validate_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct validate_error *err, const char *code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            chars++;
    return chars;
}

static bool valid_text(const char *s, size_t n)
{
    return memchr(s, '\0', n) == NULL && ws_utf8_valid((const uint8_t *)s, n);
}

bool validate_platform_token(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VALIDATE_MAX_PLATFORM_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
              ch == '.'))
            return false;
    }
    return true;
}

/* A string member: 1 (and out, len set) when present and a string, 0 when absent or null,
 * -1 when present with another type. */
static int get_string(struct json_object *obj, const char *key, const char **out, size_t *len)
{
    struct json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    *out = json_object_get_string(v);
    *len = (size_t)json_object_get_string_len(v);
    return 1;
}

/* Lower-cases a platform member into out; -1 if present but not a token. */
static int get_platform(struct json_object *obj, char out[VALIDATE_MAX_PLATFORM_BYTES + 1])
{
    const char *p = NULL;
    size_t n = 0;
    int r = get_string(obj, "platform", &p, &n);
    if (r <= 0)
        return r;
    if (n > VALIDATE_MAX_PLATFORM_BYTES || memchr(p, '\0', n))
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    out[n] = '\0';
    return validate_platform_token(out) ? 1 : -1;
}

static bool valid_room(const char *room, size_t len)
{
    return len > 0 && len <= VALIDATE_MAX_ROOM_BYTES && valid_text(room, len);
}

/* The optional "room" of send-message and get-messages: absent is NULL (everyone, or the
 * room-less history). */
static int get_optional_room(struct json_object *arg, const char **room, size_t *len,
                             struct validate_error *err)
{
    int r = get_string(arg, "room", room, len);
    if (r < 0 || (r > 0 && !valid_room(*room, *len)))
        return fail(err, "invalid_room", "room must be a string of 1 to %d bytes",
                    VALIDATE_MAX_ROOM_BYTES);
    if (r == 0)
        *room = NULL;
    return 0;
}

int validate_identify(struct json_object *arg, struct identify_input *out,
                      struct validate_error *err)
{
    memset(out, 0, sizeof *out);
    if (!arg || !json_object_is_type(arg, json_type_object))
        return fail(err, "invalid_payload", "identify expects {userId, platform, appVersion}");
    struct json_object *uv;
    int ru = get_string(arg, "userId", &out->user, &out->user_len);
    if (ru < 0 && json_object_object_get_ex(arg, "userId", &uv) &&
        json_object_is_type(uv, json_type_int)) {
        snprintf(out->user_buf, sizeof out->user_buf, "%lld",
                 (long long)json_object_get_int64(uv));
        out->user = out->user_buf;
        out->user_len = strlen(out->user_buf);
        ru = 1;
    }
    if (ru < 0 || (ru > 0 && (out->user_len == 0 || out->user_len > VALIDATE_MAX_USER_ID_BYTES ||
                              !valid_text(out->user, out->user_len))))
        return fail(err, "invalid_user_id", "userId must be a string of 1 to %d bytes",
                    VALIDATE_MAX_USER_ID_BYTES);
    int rp = get_platform(arg, out->platform);
    if (rp < 0)
        return fail(err, "invalid_platform",
                    "platform must be a short token such as flutter, laravel or web");
    int rv = get_string(arg, "appVersion", &out->version, &out->version_len);
    if (rv < 0 || (rv > 0 && (out->version_len > VALIDATE_MAX_APP_VERSION_BYTES ||
                              !valid_text(out->version, out->version_len))))
        return fail(err, "invalid_app_version", "appVersion must be a string of at most %d bytes",
                    VALIDATE_MAX_APP_VERSION_BYTES);
    out->has_user = ru > 0;
    out->has_platform = rp > 0;
    out->has_version = rv > 0;
    return 0;
}

int validate_message(struct json_object *arg, size_t max_text_bytes, struct message_input *out,
                     struct validate_error *err)
{
    memset(out, 0, sizeof *out);
    if (!arg || !json_object_is_type(arg, json_type_object))
        return fail(err, "invalid_payload", "send-message expects {sender, text, platform, room}");
    if (get_string(arg, "sender", &out->sender, &out->sender_len) <= 0 || out->sender_len == 0 ||
        !valid_text(out->sender, out->sender_len) ||
        utf8_chars(out->sender, out->sender_len) > VALIDATE_MAX_SENDER_CHARS)
        return fail(err, "invalid_sender",
                    "sender must be a non-empty string of at most %d characters",
                    VALIDATE_MAX_SENDER_CHARS);
    if (get_string(arg, "text", &out->text, &out->text_len) <= 0 || out->text_len == 0 ||
        !valid_text(out->text, out->text_len))
        return fail(err, "invalid_text", "text must be a non-empty string");
    if (out->text_len > max_text_bytes)
        return fail(err, "text_too_long", "text is longer than %zu bytes", max_text_bytes);
    int rp = get_platform(arg, out->platform);
    if (rp < 0)
        return fail(err, "invalid_platform", "platform must be a short token");
    out->has_platform = rp > 0;
    return get_optional_room(arg, &out->room, &out->room_len, err);
}

int validate_room(struct json_object *arg, const char **room, size_t *len,
                  struct validate_error *err)
{
    *room = NULL;
    *len = 0;
    if (arg && json_object_is_type(arg, json_type_string)) {
        *room = json_object_get_string(arg);
        *len = (size_t)json_object_get_string_len(arg);
    } else if (get_string(arg, "room", room, len) <= 0) {
        *room = NULL;
    }
    if (!*room || !valid_room(*room, *len))
        return fail(err, "invalid_room", "expected {room} with a room of 1 to %d bytes",
                    VALIDATE_MAX_ROOM_BYTES);
    return 0;
}

int validate_history(struct json_object *arg, struct history_input *out,
                     struct validate_error *err)
{
    memset(out, 0, sizeof *out);
    out->limit = VALIDATE_HISTORY_DEFAULT;
    if (arg && json_object_is_type(arg, json_type_null))
        arg = NULL;
    if (arg && !json_object_is_type(arg, json_type_object))
        return fail(err, "invalid_payload", "get-messages expects {limit, before, room}");
    struct json_object *v;
    if (arg && json_object_object_get_ex(arg, "limit", &v) &&
        !json_object_is_type(v, json_type_null)) {
        int64_t limit = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        if (limit < 1 || limit > VALIDATE_HISTORY_MAX)
            return fail(err, "invalid_limit", "limit must be an integer from 1 to %d",
                        VALIDATE_HISTORY_MAX);
        out->limit = (int)limit;
    }
    if (arg && json_object_object_get_ex(arg, "before", &v) &&
        !json_object_is_type(v, json_type_null)) {
        int64_t before = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
        if (before < 1)
            return fail(err, "invalid_before", "before must be a message id");
        out->before = before;
    }
    return get_optional_room(arg, &out->room, &out->room_len, err);
}
