/* fuzz_sio_query.c: libFuzzer target for rtd's own URL query parser, query_json in
 * rtd/socketio/sio.c, which turns the query of a v3 client's CONNECT namespace ("/nsp?a=1&b=x%20y")
 * into the auth object (MHD parses every other query rtd reads). query_json is static, so
 * this file includes rtd/socketio/sio.c itself, unchanged, and links the rest of rtd from
 * rtd/librtd.a (whose sio.o is then never pulled in: every symbol it defines is already
 * defined here).
 *
 * Input: the query, after the '?' (an exact-size heap copy, so AddressSanitizer sees any
 * overread; it may hold NUL bytes, as a packet's namespace may).
 *
 * The object is compared with a reference model written from the format: pairs split at
 * '&', the name up to the first '=', '+' a space, "%XX" with two hex digits a byte and any
 * other '%' kept as it is, pairs without a name dropped, a later pair replacing an earlier
 * one of the same name; json-c keys are C strings, so a name ends at its first NUL byte
 * while values keep theirs. */
#include "rtd/socketio/sio.c"

#include "tests/fuzz/fuzz.h"

struct ref_pair {
    char *key; /* C string: up to the first decoded NUL */
    char *value;
    size_t value_len;
};

static int ref_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* s[0..n) decoded into out (n + 1 bytes); returns the decoded length. */
static size_t ref_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && n - i >= 3 && ref_hexval(s[i + 1]) >= 0 && ref_hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(ref_hexval(s[i + 1]) * 16 + ref_hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *q = malloc(size ? size : 1);
    FUZZ_CHECK(q != NULL);
    if (size)
        memcpy(q, data, size);

    struct json_object *o = query_json(q, size);
    FUZZ_CHECK(o != NULL && json_object_is_type(o, json_type_object));

    /* the model: every named pair, in order */
    struct ref_pair *pairs = calloc(size / 2 + 1, sizeof *pairs);
    FUZZ_CHECK(pairs != NULL);
    size_t np = 0;
    for (size_t start = 0; start < size;) {
        size_t end = start;
        while (end < size && q[end] != '&')
            end++;
        size_t eq = start;
        while (eq < end && q[eq] != '=')
            eq++;
        if (eq > start) {
            struct ref_pair *p = &pairs[np++];
            FUZZ_CHECK(np <= size / 2 + 1);
            p->key = malloc(eq - start + 1);
            size_t vs = eq < end ? eq + 1 : end;
            p->value = malloc(end - vs + 1);
            FUZZ_CHECK(p->key != NULL && p->value != NULL);
            ref_unescape(q + start, eq - start, p->key);
            p->value_len = ref_unescape(q + vs, end - vs, p->value);
        }
        start = end + 1;
    }

    /* the object holds the last value of every name, and nothing else */
    size_t distinct = 0;
    for (size_t i = 0; i < np; i++) {
        bool last = true;
        for (size_t k = i + 1; k < np && last; k++)
            last = strcmp(pairs[k].key, pairs[i].key) != 0;
        if (!last)
            continue;
        distinct++;
        struct json_object *v;
        FUZZ_CHECK(json_object_object_get_ex(o, pairs[i].key, &v));
        FUZZ_CHECK(v && json_object_is_type(v, json_type_string));
        FUZZ_CHECK((size_t)json_object_get_string_len(v) == pairs[i].value_len);
        FUZZ_CHECK(pairs[i].value_len == 0 ||
                   memcmp(json_object_get_string(v), pairs[i].value, pairs[i].value_len) == 0);
    }
    FUZZ_CHECK((size_t)json_object_object_length(o) == distinct);
    json_object_object_foreach(o, key, val)
    {
        FUZZ_CHECK(strlen(key) <= size);
        FUZZ_CHECK((size_t)json_object_get_string_len(val) <= size);
    }

    for (size_t i = 0; i < np; i++) {
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
    json_object_put(o);
    free(q);
    return 0;
}
