/* test_sio_parser.c: unit tests for rtd/socketio/sio_parser.c: every encoding example of the Socket.IO
 * v5 specification (docs/socket.io-protocol/v5-current.md of socketio/socket.io) and its
 * sample session, the limits of the header decoder (types, attachment counts, namespaces,
 * ack ids up to 2^53 - 1), the payload checks per packet type (reserved event names, numeric
 * names), the placeholder checks and header encoding round trips. Payloads are parsed the way
 * rtd/socketio/sio.c does it: a strict, UTF-8 validating json-c tokener with a depth limit. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/socketio/sio_parser.h"

#define INVALID_JSON ((struct json_object *)-1)

/* ---- helpers -------------------------------------------------------------------------- */

/* As rtd/socketio/sio.c's parse_json: NULL for no payload, INVALID_JSON for anything that is not one
 * whole JSON value. */
static struct json_object *parse_json(const char *data, size_t len)
{
    if (len == 0)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(32);
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *v = json_tokener_parse_ex(tok, data, (int)len);
    if (!v || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len) {
        json_object_put(v);
        v = INVALID_JSON;
    }
    json_tokener_free(tok);
    return v;
}

/* A JSON value written in the test (must be valid). Read up to its NUL, so that a bare
 * number is complete too (parse_json on a length alone waits for more digits). */
static struct json_object *J(const char *s)
{
    enum json_tokener_error err;
    struct json_object *v = json_tokener_parse_verbose(s, &err);
    if (err != json_tokener_success)
        fail_msg("bad JSON in the test: %s", s);
    return v;
}

/* The heap copy the last parse ran on (hdr points into it): an exact-size allocation, so
 * that AddressSanitizer sees any read past the end. Lives until the next parse. */
static char *last_copy;

static int parse(const char *s, size_t max_att, sio_header *h)
{
    free(last_copy);
    size_t n = strlen(s);
    last_copy = malloc(n ? n : 1);
    assert_non_null(last_copy);
    memcpy(last_copy, s, n);
    memset(h, 0xAA, sizeof *h);
    return sio_parse_header(last_copy, n, max_att, h);
}

/* Parses s, which must be valid, and checks every field of the header; nsp NULL means the
 * main namespace "/"; data is the expected JSON slice. */
static void check_header(const char *s, size_t max_att, enum sio_type type, size_t att,
                         const char *nsp, int64_t id, const char *data)
{
    sio_header h;
    if (parse(s, max_att, &h) != 0)
        fail_msg("rejected \"%s\"", s);
    assert_int_equal(h.type, type);
    assert_int_equal(h.attachments, att);
    const char *want_nsp = nsp ? nsp : "/";
    if (h.nsp_len != strlen(want_nsp) || memcmp(h.nsp, want_nsp, h.nsp_len) != 0)
        fail_msg("\"%s\": namespace \"%.*s\", not \"%s\"", s, (int)h.nsp_len, h.nsp, want_nsp);
    assert_int_equal(h.id, id);
    assert_int_equal(h.data_len, strlen(data));
    /* The payload is the tail of the input. */
    assert_ptr_equal(h.data, last_copy + strlen(s) - h.data_len);
    if (h.data_len)
        assert_memory_equal(h.data, data, h.data_len);
    /* A namespace that was given points into the input. */
    if (nsp)
        assert_true(h.nsp > last_copy && h.nsp + h.nsp_len <= last_copy + strlen(s));
}

static void check_invalid(const char *s, size_t max_att)
{
    sio_header h;
    if (parse(s, max_att, &h) != -1)
        fail_msg("accepted \"%s\" (max attachments %zu)", s, max_att);
}

/* Whole-packet validity as rtd/socketio/sio.c decides it: header, JSON, payload shape, placeholders. */
static bool packet_valid(const char *s, size_t max_att)
{
    sio_header h;
    if (parse(s, max_att, &h) != 0)
        return false;
    struct json_object *v = parse_json(h.data, h.data_len);
    if (v == INVALID_JSON)
        return false;
    bool ok = sio_payload_valid(h.type, v);
    if (ok && (h.type == SIO_BINARY_EVENT || h.type == SIO_BINARY_ACK))
        ok = sio_placeholders_valid(v, h.attachments);
    json_object_put(v);
    return ok;
}

/* ---- the specification's examples ----------------------------------------------------- */

static void test_spec_connect(void **state)
{
    check_header("0", 10, SIO_CONNECT, 0, NULL, -1, "");
    assert_true(packet_valid("0", 10));
    check_header("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 10, SIO_CONNECT, 0, "/admin", -1,
                 "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    assert_true(packet_valid("0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", 10));
    check_header("4{\"message\":\"Not authorized\"}", 10, SIO_CONNECT_ERROR, 0, NULL, -1,
                 "{\"message\":\"Not authorized\"}");
    assert_true(packet_valid("4{\"message\":\"Not authorized\"}", 10));
    /* From the sample session, and with an auth payload. */
    check_header("0/admin,", 10, SIO_CONNECT, 0, "/admin", -1, "");
    assert_true(packet_valid("0/admin,", 10));
    check_header("0/admin,{\"token\":\"123\"}", 10, SIO_CONNECT, 0, "/admin", -1,
                 "{\"token\":\"123\"}");
    assert_true(packet_valid("0{\"token\":\"123\"}", 10));
}

static void test_spec_events(void **state)
{
    check_header("2[\"foo\"]", 10, SIO_EVENT, 0, NULL, -1, "[\"foo\"]");
    assert_true(packet_valid("2[\"foo\"]", 10));
    check_header("2/admin,[\"bar\"]", 10, SIO_EVENT, 0, "/admin", -1, "[\"bar\"]");
    assert_true(packet_valid("2/admin,[\"bar\"]", 10));
    check_header("2[\"hey\",\"Jude\"]", 10, SIO_EVENT, 0, NULL, -1, "[\"hey\",\"Jude\"]");
    assert_true(packet_valid("2[\"hey\",\"Jude\"]", 10));
}

static void test_spec_binary(void **state)
{
    const char *one = "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]";
    check_header(one, 10, SIO_BINARY_EVENT, 1, NULL, -1,
                 "[\"baz\",{\"_placeholder\":true,\"num\":0}]");
    assert_true(packet_valid(one, 10));
    assert_true(packet_valid(one, 1));
    check_invalid(one, 0); /* one attachment announced, none allowed */

    const char *two = "52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},"
                      "{\"_placeholder\":true,\"num\":1}]";
    check_header(two, 10, SIO_BINARY_EVENT, 2, "/admin", -1,
                 "[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    assert_true(packet_valid(two, 2));
    check_invalid(two, 1);
}

static void test_spec_acks(void **state)
{
    check_header("212[\"foo\"]", 10, SIO_EVENT, 0, NULL, 12, "[\"foo\"]");
    assert_true(packet_valid("212[\"foo\"]", 10));
    check_header("3/admin,13[\"bar\"]", 10, SIO_ACK, 0, "/admin", 13, "[\"bar\"]");
    assert_true(packet_valid("3/admin,13[\"bar\"]", 10));
    check_header("312[]", 10, SIO_ACK, 0, NULL, 12, "[]");
    assert_true(packet_valid("312[]", 10));
    const char *bin = "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]";
    check_header(bin, 10, SIO_BINARY_ACK, 1, NULL, 15,
                 "[\"bar\",{\"_placeholder\":true,\"num\":0}]");
    assert_true(packet_valid(bin, 10));
    /* From the sample session. */
    check_header("2/admin,1[\"tellme\"]", 10, SIO_EVENT, 0, "/admin", 1, "[\"tellme\"]");
    assert_true(packet_valid("2/admin,1[\"tellme\"]", 10));
    const char *sess = "61-/admin,1[{\"_placeholder\":true,\"num\":0}]";
    check_header(sess, 10, SIO_BINARY_ACK, 1, "/admin", 1, "[{\"_placeholder\":true,\"num\":0}]");
    assert_true(packet_valid(sess, 10));
}

static void test_spec_disconnect(void **state)
{
    check_header("1", 10, SIO_DISCONNECT, 0, NULL, -1, "");
    assert_true(packet_valid("1", 10));
    check_header("1/admin,", 10, SIO_DISCONNECT, 0, "/admin", -1, "");
    assert_true(packet_valid("1/admin,", 10));
    assert_false(packet_valid("1{}", 10));
    assert_false(packet_valid("1/admin,[]", 10));
}

/* ---- header edge cases ---------------------------------------------------------------- */

static void test_header_types(void **state)
{
    check_invalid("", 10);
    check_invalid("7", 10);
    check_invalid("8[\"x\"]", 10);
    check_invalid("9", 10);
    check_invalid("a", 10);
    check_invalid("/", 10);
    check_invalid(":", 10);
    check_invalid("-1", 10);
    check_invalid(" 2[\"x\"]", 10);
    check_invalid("[\"x\"]", 10);
    for (int t = 0; t <= 4; t++) {
        char s[2] = {(char)('0' + t), 0};
        check_header(s, 0, (enum sio_type)t, 0, NULL, -1, "");
    }
    /* An explicit main namespace, and one cut off at the end of the packet. */
    check_header("2/,[\"x\"]", 10, SIO_EVENT, 0, "/", -1, "[\"x\"]");
    check_header("1/admin", 10, SIO_DISCONNECT, 0, "/admin", -1, "");
    check_header("0/", 10, SIO_CONNECT, 0, "/", -1, "");
    /* No comma: everything up to the end is the namespace (as socket.io-parser reads it). */
    check_header("2/admin[\"x\"]", 10, SIO_EVENT, 0, "/admin[\"x\"]", -1, "");
    check_header("2/a/b,5[]", 10, SIO_EVENT, 0, "/a/b", 5, "[]");
    /* An empty namespace before a comma still counts; a slash later on is payload. */
    check_header("2[\"/x\"]", 10, SIO_EVENT, 0, NULL, -1, "[\"/x\"]");
    /* Whatever follows the header is payload, for the JSON parser to judge. */
    check_header("2abc", 10, SIO_EVENT, 0, NULL, -1, "abc");
    check_header("2-5[]", 10, SIO_EVENT, 0, NULL, -1, "-5[]");
    check_header("3/admin,x", 10, SIO_ACK, 0, "/admin", -1, "x");
}

static void test_header_attachments(void **state)
{
    /* Missing count or dash. */
    check_invalid("5", 10);
    check_invalid("6", 10);
    check_invalid("5-[\"x\"]", 10);
    check_invalid("6-[]", 10);
    check_invalid("5[\"x\"]", 10);
    check_invalid("51[\"x\"]", 10);
    check_invalid("51", 10);
    check_invalid("61/admin,[]", 10);
    check_invalid("5/admin,1-[]", 10);
    check_invalid("5a-[]", 10);
    /* Over the limit, at the limit. */
    check_invalid("53-[]", 2);
    check_header("52-[]", 2, SIO_BINARY_EVENT, 2, NULL, -1, "[]");
    check_header("50-[\"x\"]", 0, SIO_BINARY_EVENT, 0, NULL, -1, "[\"x\"]");
    check_header("6007-[]", 7, SIO_BINARY_ACK, 7, NULL, -1, "[]");
    check_invalid("6008-[]", 7);
    check_invalid("5999999999-[]", 1000);
    /* Nine digits are read; a tenth is refused whatever the limit. */
    check_header("5123456789-[]", SIZE_MAX, SIO_BINARY_EVENT, 123456789, NULL, -1, "[]");
    check_header("5000000001-[]", SIZE_MAX, SIO_BINARY_EVENT, 1, NULL, -1, "[]");
    check_invalid("51234567890-[]", SIZE_MAX);
    check_invalid("50000000001-[]", SIZE_MAX);
    check_invalid("599999999999999999999999-[]", SIZE_MAX);
    /* The count is only for binary types: elsewhere digits are an ack id. */
    check_header("21-[]", 0, SIO_EVENT, 0, NULL, 1, "-[]");
}

static void test_header_ack_ids(void **state)
{
    check_header("20[]", 10, SIO_EVENT, 0, NULL, 0, "[]");
    check_header("2007[]", 10, SIO_EVENT, 0, NULL, 7, "[]");
    check_header("21234567890123456[]", 10, SIO_EVENT, 0, NULL, 1234567890123456LL, "[]");
    check_header("29007199254740991[\"x\"]", 10, SIO_EVENT, 0, NULL, SIO_MAX_ACK_ID, "[\"x\"]");
    check_header("3/admin,9007199254740991[]", 10, SIO_ACK, 0, "/admin", SIO_MAX_ACK_ID, "[]");
    check_header("61-9007199254740991[]", 10, SIO_BINARY_ACK, 1, NULL, SIO_MAX_ACK_ID, "[]");
    check_header("29007199254740991", 10, SIO_EVENT, 0, NULL, SIO_MAX_ACK_ID, "");
    check_invalid("29007199254740992[\"x\"]", 10);
    check_invalid("29999999999999999[]", 10);
    check_invalid("3/admin,9007199254740992[]", 10);
    /* 17 digits are refused, even when their value is small. */
    check_invalid("212345678901234567[]", 10);
    check_invalid("200000000000000001[]", 10);
    check_invalid("2999999999999999999999[]", 10);
    check_invalid("2/admin,12345678901234567", 10);
    /* 16 digits with leading zeros are fine. */
    check_header("20000000000000001[]", 10, SIO_EVENT, 0, NULL, 1, "[]");
}

/* ---- payload checks ------------------------------------------------------------------- */

static bool valid_json(enum sio_type type, const char *json)
{
    struct json_object *v = json ? J(json) : NULL;
    bool ok = sio_payload_valid(type, v);
    json_object_put(v);
    return ok;
}

static void test_payload_connect_disconnect(void **state)
{
    assert_true(valid_json(SIO_CONNECT, NULL));
    assert_true(valid_json(SIO_CONNECT, "{}"));
    assert_true(valid_json(SIO_CONNECT, "{\"token\":\"123\"}"));
    assert_false(valid_json(SIO_CONNECT, "[]"));
    assert_false(valid_json(SIO_CONNECT, "\"x\""));
    assert_false(valid_json(SIO_CONNECT, "1"));
    assert_false(valid_json(SIO_CONNECT, "true"));

    assert_true(valid_json(SIO_DISCONNECT, NULL));
    assert_false(valid_json(SIO_DISCONNECT, "{}"));
    assert_false(valid_json(SIO_DISCONNECT, "[]"));
    assert_false(valid_json(SIO_DISCONNECT, "\"bye\""));
    assert_false(valid_json(SIO_DISCONNECT, "0"));

    assert_true(valid_json(SIO_CONNECT_ERROR, "{\"message\":\"Not authorized\"}"));
    assert_true(valid_json(SIO_CONNECT_ERROR, "\"Not authorized\""));
    assert_false(valid_json(SIO_CONNECT_ERROR, NULL));
    assert_false(valid_json(SIO_CONNECT_ERROR, "[]"));
    assert_false(valid_json(SIO_CONNECT_ERROR, "5"));
    assert_false(valid_json(SIO_CONNECT_ERROR, "false"));
}

static void test_payload_events(void **state)
{
    static const enum sio_type ev[] = {SIO_EVENT, SIO_BINARY_EVENT};
    for (int k = 0; k < 2; k++) {
        enum sio_type t = ev[k];
        assert_true(valid_json(t, "[\"foo\"]"));
        assert_true(valid_json(t, "[\"foo\",1,{\"a\":[]},null]"));
        assert_true(valid_json(t, "[\"\"]"));
        assert_true(valid_json(t, "[\"h\\u00e9llo\"]"));
        /* Numeric event names are allowed, as in the reference. */
        assert_true(valid_json(t, "[1]"));
        assert_true(valid_json(t, "[0,\"x\"]"));
        assert_true(valid_json(t, "[-3]"));
        assert_true(valid_json(t, "[1.5]"));
        assert_true(valid_json(t, "[1e300]"));
        /* Anything else is not. */
        assert_false(valid_json(t, NULL));
        assert_false(valid_json(t, "[]"));
        assert_false(valid_json(t, "{}"));
        assert_false(valid_json(t, "{\"0\":\"foo\"}"));
        assert_false(valid_json(t, "\"foo\""));
        assert_false(valid_json(t, "3"));
        assert_false(valid_json(t, "[null]"));
        assert_false(valid_json(t, "[true]"));
        assert_false(valid_json(t, "[false,\"x\"]"));
        assert_false(valid_json(t, "[[\"foo\"]]"));
        assert_false(valid_json(t, "[{\"name\":\"foo\"}]"));
    }
}

static void test_payload_reserved_names(void **state)
{
    static const char *const reserved[] = {
        "connect", "disconnect", "disconnecting", "newListener", "removeListener", "connect_error",
    };
    static const char *const fine[] = {
        "Connect",      "connect ",    " connect",       "connection",  "connects",
        "disconnected", "newlistener", "removelistener", "connect_err", "connect_error_",
        "CONNECT",      "message",     "error",          "ping",
    };
    char json[64];
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        snprintf(json, sizeof json, "[\"%s\"]", reserved[i]);
        assert_false(valid_json(SIO_EVENT, json));
        assert_false(valid_json(SIO_BINARY_EVENT, json));
        snprintf(json, sizeof json, "[\"%s\",1,2]", reserved[i]);
        assert_false(valid_json(SIO_EVENT, json));
        /* Reserved names are fine as arguments, and in acks. */
        snprintf(json, sizeof json, "[\"x\",\"%s\"]", reserved[i]);
        assert_true(valid_json(SIO_EVENT, json));
        snprintf(json, sizeof json, "[\"%s\"]", reserved[i]);
        assert_true(valid_json(SIO_ACK, json));
    }
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        snprintf(json, sizeof json, "[\"%s\"]", fine[i]);
        if (!valid_json(SIO_EVENT, json))
            fail_msg("event name \"%s\" rejected", fine[i]);
    }
    /* Whole packets. */
    assert_false(packet_valid("2[\"connect\"]", 10));
    assert_false(packet_valid("2/admin,1[\"disconnecting\"]", 10));
    assert_false(packet_valid("50-[\"newListener\"]", 10));
    assert_true(packet_valid("2[\"connection\"]", 10));
    assert_true(packet_valid("2[42,\"x\"]", 10));
}

static void test_payload_acks(void **state)
{
    static const enum sio_type ack[] = {SIO_ACK, SIO_BINARY_ACK};
    for (int k = 0; k < 2; k++) {
        enum sio_type t = ack[k];
        assert_true(valid_json(t, "[]"));
        assert_true(valid_json(t, "[\"bar\"]"));
        assert_true(valid_json(t, "[null,1,true]"));
        assert_false(valid_json(t, NULL));
        assert_false(valid_json(t, "{}"));
        assert_false(valid_json(t, "\"bar\""));
        assert_false(valid_json(t, "1"));
    }
    assert_false(valid_json((enum sio_type)7, "[\"x\"]"));
    assert_false(valid_json((enum sio_type)7, NULL));
}

/* 2["x",[[...]]] with levels arrays inside the outer one. */
static bool packet_valid_nested(int levels)
{
    char s[256];
    size_t n = 0;
    n += (size_t)snprintf(s, sizeof s, "2[\"x\",");
    for (int i = 0; i < levels; i++)
        s[n++] = '[';
    for (int i = 0; i < levels; i++)
        s[n++] = ']';
    s[n++] = ']';
    s[n] = '\0';
    return packet_valid(s, 10);
}

/* The JSON side of whole packets, as rtd/socketio/sio.c sees them. */
static void test_packet_json(void **state)
{
    assert_false(packet_valid("2[\"foo\"", 10));
    assert_false(packet_valid("2[\"foo\"]x", 10));
    assert_false(packet_valid("2[\"foo\"][]", 10));
    assert_false(packet_valid("2['foo']", 10));
    assert_false(packet_valid("2[\"\xff\"]", 10)); /* not UTF-8 */
    assert_false(packet_valid("2null", 10));
    assert_false(packet_valid("0null", 10));
    /* Nesting is bounded (rtd/socketio/sio.c's default depth is 32): 2["x",[[...]]] with 30 arrays in
     * all is fine, 40 are not. */
    assert_true(packet_valid_nested(29));
    assert_false(packet_valid_nested(39));
}

/* ---- placeholders --------------------------------------------------------------------- */

static bool ph_valid(const char *json, size_t count)
{
    struct json_object *v = J(json);
    bool ok = sio_placeholders_valid(v, count);
    json_object_put(v);
    return ok;
}

static void test_placeholders(void **state)
{
    const char *one = "[\"baz\",{\"_placeholder\":true,\"num\":0}]";
    assert_true(ph_valid(one, 1));
    assert_true(ph_valid(one, 5));
    assert_false(ph_valid(one, 0));

    const char *two = "[\"baz\",{\"_placeholder\":true,\"num\":0},"
                      "{\"_placeholder\":true,\"num\":1}]";
    assert_true(ph_valid(two, 2));
    assert_false(ph_valid(two, 1));

    /* Nothing to check. */
    assert_true(ph_valid("[]", 0));
    assert_true(ph_valid("[\"x\",1,\"y\",null,true,{\"a\":{\"b\":[]}}]", 0));
    assert_true(ph_valid("\"x\"", 0));
    assert_true(ph_valid("{}", 0));

    /* Nested in arrays and objects, at any depth. */
    const char *nested = "[\"e\",{\"a\":[1,{\"b\":{\"_placeholder\":true,\"num\":2}}]},"
                         "[[{\"_placeholder\":true,\"num\":0}]]]";
    assert_true(ph_valid(nested, 3));
    assert_false(ph_valid(nested, 2));
    const char *deep = "[\"e\",{\"x\":{\"y\":{\"z\":[{\"_placeholder\":true,\"num\":4}]}}}]";
    assert_false(ph_valid(deep, 4));
    assert_true(ph_valid(deep, 5));

    /* num out of range, missing, or not an integer. */
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":-1}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":10}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":9223372036854775807}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":-9223372036854775808}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":0.5}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":\"0\"}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":null}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":[0]}]", 10));
    assert_false(ph_valid("[{\"_placeholder\":true,\"num\":true}]", 10));
    assert_false(ph_valid("{\"_placeholder\":true,\"num\":3}", 3));
    assert_true(ph_valid("{\"_placeholder\":true,\"num\":2}", 3));

    /* Not placeholders: _placeholder false or not the boolean true. */
    assert_true(ph_valid("[{\"_placeholder\":false,\"num\":99}]", 0));
    assert_true(ph_valid("[{\"_placeholder\":\"true\",\"num\":99}]", 0));
    assert_true(ph_valid("[{\"_placeholder\":1,\"num\":99}]", 0));
    assert_true(ph_valid("[{\"num\":99}]", 0));
    /* ... but what is inside them is still checked. */
    assert_false(ph_valid("[{\"_placeholder\":false,\"x\":{\"_placeholder\":true,\"num\":1}}]", 1));
    assert_true(ph_valid("[{\"_placeholder\":false,\"x\":{\"_placeholder\":true,\"num\":0}}]", 1));

    /* Whole packets. */
    assert_false(packet_valid("51-[\"baz\",{\"_placeholder\":true,\"num\":1}]", 10));
    assert_false(packet_valid("52-[\"baz\",{\"_placeholder\":true,\"num\":0.0}]", 10));
    assert_true(packet_valid("52-[\"baz\",{\"_placeholder\":true,\"num\":1}]", 10));
}

/* ---- encoding ------------------------------------------------------------------------- */

static void check_encode(enum sio_type type, size_t att, const char *nsp, int64_t id,
                         const char *want)
{
    buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "~"), 0);
    assert_int_equal(sio_encode_header(&b, type, att, nsp, id), 0);
    assert_int_equal(buf_terminate(&b), 0);
    assert_string_equal(b.data + 1, want);
    assert_int_equal(b.data[0], '~');
    buf_free(&b);
}

static void test_encode_header(void **state)
{
    check_encode(SIO_CONNECT, 0, "/", -1, "0");
    check_encode(SIO_CONNECT, 0, NULL, -1, "0");
    check_encode(SIO_CONNECT, 0, "/admin", -1, "0/admin,");
    check_encode(SIO_DISCONNECT, 0, "/admin", -1, "1/admin,");
    check_encode(SIO_EVENT, 0, "/", 12, "212");
    check_encode(SIO_EVENT, 0, "/", 0, "20");
    check_encode(SIO_EVENT, 3, "/", -1, "2"); /* no count outside binary types */
    check_encode(SIO_ACK, 0, "/admin", 13, "3/admin,13");
    check_encode(SIO_CONNECT_ERROR, 0, "/", -1, "4");
    check_encode(SIO_BINARY_EVENT, 1, "/", -1, "51-");
    check_encode(SIO_BINARY_EVENT, 0, "/", -1, "50-");
    check_encode(SIO_BINARY_EVENT, 2, "/admin", -1, "52-/admin,");
    check_encode(SIO_BINARY_ACK, 1, "/", 15, "61-15");
    check_encode(SIO_BINARY_ACK, 12, "/admin", 1, "612-/admin,1");
    check_encode(SIO_EVENT, 0, "/", SIO_MAX_ACK_ID, "29007199254740991");
}

static void test_encode_round_trip(void **state)
{
    static const char *const nsps[] = {"/", "/admin", "/a/b", "/x-1", "/é"};
    static const int64_t ids[] = {-1, 0, 1, 12, 999999, SIO_MAX_ACK_ID};
    static const size_t atts[] = {0, 1, 9, 10, 123, 999999999};
    static const char *const payloads[] = {"", "[\"foo\"]", "{\"sid\":\"x\"}", "[]"};
    for (int t = 0; t <= 6; t++) {
        bool bin = t == SIO_BINARY_EVENT || t == SIO_BINARY_ACK;
        for (size_t a = 0; a < sizeof atts / sizeof atts[0]; a++) {
            if (!bin && a > 0)
                continue;
            for (size_t n = 0; n < sizeof nsps / sizeof nsps[0]; n++) {
                for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
                    for (size_t p = 0; p < sizeof payloads / sizeof payloads[0]; p++) {
                        buf b = BUF_INIT;
                        assert_int_equal(
                            sio_encode_header(&b, (enum sio_type)t, atts[a], nsps[n], ids[i]), 0);
                        assert_int_equal(buf_puts(&b, payloads[p]), 0);
                        assert_int_equal(buf_terminate(&b), 0);
                        check_header(b.data, SIZE_MAX, (enum sio_type)t, bin ? atts[a] : 0,
                                     n ? nsps[n] : NULL, ids[i], payloads[p]);
                        buf_free(&b);
                    }
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_connect),
        cmocka_unit_test(test_spec_events),
        cmocka_unit_test(test_spec_binary),
        cmocka_unit_test(test_spec_acks),
        cmocka_unit_test(test_spec_disconnect),
        cmocka_unit_test(test_header_types),
        cmocka_unit_test(test_header_attachments),
        cmocka_unit_test(test_header_ack_ids),
        cmocka_unit_test(test_payload_connect_disconnect),
        cmocka_unit_test(test_payload_events),
        cmocka_unit_test(test_payload_reserved_names),
        cmocka_unit_test(test_payload_acks),
        cmocka_unit_test(test_packet_json),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_encode_header),
        cmocka_unit_test(test_encode_round_trip),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free(last_copy);
    return failed;
}
