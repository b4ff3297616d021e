/* sio_parser.c: Socket.IO v5 packet headers and payload checks (see sio_parser.h). */
#include "config.h"

#include <string.h>

#include "rtd/socketio/sio_parser.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int sio_parse_header(const char *s, size_t len, size_t max_attachments, sio_header *out)
{
    size_t i = 0;
    if (len == 0 || !is_digit(s[0]) || s[0] > '6')
        return -1;
    out->type = (enum sio_type)(s[0] - '0');
    out->attachments = 0;
    out->nsp = "/";
    out->nsp_len = 1;
    out->id = -1;
    i = 1;
    if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
        size_t start = i;
        size_t n = 0;
        while (i < len && is_digit(s[i])) {
            if (i - start >= 9)
                return -1; /* absurd attachment counts stop here, long before the limit */
            n = n * 10 + (size_t)(s[i] - '0');
            i++;
        }
        if (i == start || i >= len || s[i] != '-' || n > max_attachments)
            return -1;
        out->attachments = n;
        i++;
    }
    if (i < len && s[i] == '/') {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        out->nsp = s + start;
        out->nsp_len = i - start;
        if (i < len)
            i++; /* the comma */
    }
    if (i < len && is_digit(s[i])) {
        size_t start = i;
        int64_t id = 0;
        while (i < len && is_digit(s[i])) {
            if (i - start >= 16)
                return -1;
            id = id * 10 + (s[i] - '0');
            i++;
        }
        if (id > SIO_MAX_ACK_ID)
            return -1;
        out->id = id;
    }
    out->data = s + i;
    out->data_len = len - i;
    return 0;
}

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

bool sio_payload_valid(enum sio_type type, struct json_object *payload)
{
    switch (type) {
    case SIO_CONNECT:
        return !payload || json_object_is_type(payload, json_type_object);
    case SIO_DISCONNECT:
        return !payload;
    case SIO_CONNECT_ERROR:
        return payload && (json_object_is_type(payload, json_type_string) ||
                           json_object_is_type(payload, json_type_object));
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        if (!payload || !json_object_is_type(payload, json_type_array) ||
            json_object_array_length(payload) == 0)
            return false;
        struct json_object *name = json_object_array_get_idx(payload, 0);
        if (json_object_is_type(name, json_type_int) || json_object_is_type(name, json_type_double))
            return true;
        if (!json_object_is_type(name, json_type_string))
            return false;
        const char *n = json_object_get_string(name);
        size_t len = (size_t)json_object_get_string_len(name);
        for (size_t i = 0; i < sizeof reserved_events / sizeof reserved_events[0]; i++)
            if (strlen(reserved_events[i]) == len && memcmp(n, reserved_events[i], len) == 0)
                return false;
        return true;
    }
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return payload && json_object_is_type(payload, json_type_array);
    }
    return false;
}

bool sio_placeholders_valid(struct json_object *v, size_t count)
{
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++)
            if (!sio_placeholders_valid(json_object_array_get_idx(v, i), count))
                return false;
        return true;
    }
    if (!json_object_is_type(v, json_type_object))
        return true;
    struct json_object *ph, *num;
    if (json_object_object_get_ex(v, "_placeholder", &ph) &&
        json_object_is_type(ph, json_type_boolean) && json_object_get_boolean(ph)) {
        if (!json_object_object_get_ex(v, "num", &num) || !json_object_is_type(num, json_type_int))
            return false;
        int64_t n = json_object_get_int64(num);
        return n >= 0 && (uint64_t)n < count;
    }
    json_object_object_foreach(v, key, val)
    {
        (void)key;
        if (!sio_placeholders_valid(val, count))
            return false;
    }
    return true;
}

int sio_encode_header(buf *out, enum sio_type type, size_t attachments, const char *nsp,
                      int64_t id)
{
    if (buf_putc(out, '0' + (int)type) < 0)
        return -1;
    if ((type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) &&
        buf_printf(out, "%zu-", attachments) < 0)
        return -1;
    if (nsp && strcmp(nsp, "/") != 0 && (buf_puts(out, nsp) < 0 || buf_putc(out, ',') < 0))
        return -1;
    if (id >= 0 && buf_printf(out, "%lld", (long long)id) < 0)
        return -1;
    return 0;
}
