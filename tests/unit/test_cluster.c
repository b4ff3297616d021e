/* test_cluster.c: unit tests for rtd/cluster: the --redis URL, and the adapter codec on the
 * golden fixtures of tests/fixtures/redis/ (bytes recorded from @socket.io/redis-adapter
 * 8.3.0 and @socket.io/redis-emitter 5.1.0 by record.mjs there): every broadcast decodes to
 * the event, arguments, rooms, except and flags the Node.js side sent, and re-encodes to the
 * adapter's own bytes; every request is handled by a cluster node with nothing dropped.
 * Then what an untrusted Redis may send: PHP emitters' shapes, lengths beyond the bytes,
 * deep nesting, wrong types, invalid UTF-8, unknown namespaces and request types: refused
 * and counted, never a crash. No Redis runs: the node's link only tries to connect. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/cluster/adapter_codec.h"
#include "rtd/cluster/cluster.h"
#include "rtd/cluster/redis_url.h"
#include "rtd/socketio/sio_parser.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "tests/fixtures/redis"
#endif

/* ---- fixtures ---- */

struct fixture {
    char name[64];
    char channel[128];
    unsigned char *data;
    size_t len;
};

static struct fixture fx[128];
static size_t nfx;

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    *len = b.len;
    if (!b.data)
        return calloc(1, 1);
    return (unsigned char *)b.data;
}

static int load_fixtures(void **state)
{
    const char *dir = getenv("FIXTURES_DIR") ? getenv("FIXTURES_DIR") : FIXTURES_DIR;
    char path[512];
    snprintf(path, sizeof path, "%s/index.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char line[512];
    while (nfx < 128 && fgets(line, sizeof line, f)) {
        char file[128];
        struct fixture *x = &fx[nfx];
        if (sscanf(line, "%63[^\t]\t%127[^\t]\t%127[^\n]", x->name, x->channel, file) != 3)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (!(x->data = slurp(path, &x->len))) {
            fprintf(stderr, "cannot read %s\n", path);
            fclose(f);
            return -1;
        }
        nfx++;
    }
    fclose(f);
    return nfx > 20 ? 0 : -1;
}

static int free_fixtures(void **state)
{
    for (size_t i = 0; i < nfx; i++)
        free(fx[i].data);
    return 0;
}

static const struct fixture *find(const char *name, const char *channel_prefix)
{
    for (size_t i = 0; i < nfx; i++)
        if (!strcmp(fx[i].name, name) &&
            !strncmp(fx[i].channel, channel_prefix, strlen(channel_prefix)))
            return &fx[i];
    return NULL;
}

static bool is_broadcast_channel(const char *ch)
{
    return !strncmp(ch, "socket.io#", 10);
}

/* ---- the URL ---- */

static void test_url(void **state)
{
    struct redis_url u;
    const char *why;
    assert_int_equal(redis_url_parse("redis://127.0.0.1", &u, &why), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_null(u.password);
    redis_url_free(&u);
    assert_int_equal(redis_url_parse("redis://us%3Aer:p%40ss@redis.example:6390/3", &u, &why), 0);
    assert_string_equal(u.host, "redis.example");
    assert_string_equal(u.user, "us:er");
    assert_string_equal(u.password, "p@ss");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 3);
    redis_url_free(&u);
    assert_int_equal(redis_url_parse("redis://:secret@[::1]:7000", &u, &why), 0);
    assert_string_equal(u.host, "::1");
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    assert_int_equal(u.port, 7000);
    redis_url_free(&u);
    assert_int_equal(redis_url_parse("unix:///run/redis/redis.sock", &u, &why), 0);
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_null(u.host);
    redis_url_free(&u);
    const char *bad[] = {"", "http://x", "redis://", "redis://h:0", "redis://h:65536",
                         "redis://h:12a", "redis://h/x", "redis://h?db=1", "redis://[::1",
                         "redis://u:%zz@h", "redis://u:%00@h", "unix://relative",
                         "redis://h o", NULL};
    for (int i = 0; bad[i]; i++) {
        why = NULL;
        assert_int_equal(redis_url_parse(bad[i], &u, &why), -1);
        assert_non_null(why);
    }
}

/* ---- broadcasts ---- */

struct expect {
    const char *name;
    const char *uid; /* NULL: any (the adapter's random one) */
    const char *nsp;
    const char *event;
    const char *args;
    size_t nrooms, nexcept, nbins;
    bool is_volatile;
};

static const struct expect expected[] = {
    {"adapter-emit", NULL, "/", "hello", "\"world\"", 0, 0, 0, false},
    {"adapter-room", NULL, "/", "hello", "\"world\"", 1, 0, 0, false},
    {"adapter-rooms-except", NULL, "/", "ev", "1,-2,3.5,true,null,{\"k\":[1,\"x\"]}", 2, 1, 0,
     false},
    {"adapter-volatile", NULL, "/", "tick", "42", 0, 0, 0, true},
    {"adapter-binary", NULL, "/", "bin",
     "{\"_placeholder\":true,\"num\":0},{\"nested\":{\"_placeholder\":true,\"num\":1}}", 0, 0,
     2, false},
    {"adapter-date-big", NULL, "/", "types",
     "\"2023-11-14T22:13:20.123Z\",1099511627776,-1099511627776,\"\xc3\xa9\xe2\x82\xac"
     "\xf0\x9f\x98\x80\"",
     0, 0, 0, false},
    {"adapter-nsp", NULL, "/chat", "hello", "\"chat\"", 0, 0, 0, false},
    {"emitter-emit", "emitter", "/", "hello", "\"world\"", 0, 0, 0, false},
    {"emitter-room", "emitter", "/", "hello", "\"world\"", 1, 0, 0, false},
    {"emitter-except-volatile", "emitter", "/", "ev", "{\"a\":1}", 2, 1, 0, true},
    {"emitter-binary", "emitter", "/", "bin", "{\"_placeholder\":true,\"num\":0}", 0, 0, 1,
     false},
    {"emitter-nsp", "emitter", "/chat", "hello", "\"chat\"", 0, 0, 0, false},
};

/* The Socket.IO text packet sio would hold for a decoded event. */
static void text_packet(buf *out, const struct acodec_event *ev)
{
    sio_encode_header(out, ev->nbins ? SIO_BINARY_EVENT : SIO_EVENT, ev->nbins, ev->nsp, -1);
    buf_putc(out, '[');
    buf_putc(out, '"');
    buf_json_escape(out, ev->event, strlen(ev->event));
    buf_putc(out, '"');
    if (ev->args.len) {
        buf_putc(out, ',');
        buf_append(out, ev->args.data, ev->args.len);
    }
    buf_putc(out, ']');
}

static void test_fixture_broadcasts(void **state)
{
    size_t seen = 0;
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++) {
        const struct expect *e = &expected[i];
        const struct fixture *x = find(e->name, "socket.io#");
        assert_non_null(x);
        struct acodec_broadcast b;
        const char *why = NULL;
        int r = acodec_decode_broadcast(x->data, x->len, &b, &why);
        if (r < 0)
            fail_msg("%s: %s", e->name, why);
        if (e->uid)
            assert_string_equal(b.uid, e->uid);
        assert_string_equal(b.ev.nsp, e->nsp);
        assert_string_equal(b.ev.event, e->event);
        assert_string_equal(b.ev.args.data, e->args);
        assert_int_equal(b.opts.nrooms, e->nrooms);
        assert_int_equal(b.opts.nexcept, e->nexcept);
        assert_int_equal(b.ev.nbins, e->nbins);
        assert_int_equal(b.opts.is_volatile, e->is_volatile);
        if (e->nrooms)
            assert_string_equal(b.opts.rooms[0], "room1");
        if (e->nexcept)
            assert_string_equal(b.opts.except[0], "room3");
        if (!strcmp(e->name, "adapter-binary")) {
            assert_int_equal(b.ev.bins[0].len, 3);
            assert_memory_equal(b.ev.bins[0].data, "\x01\x02\x03", 3);
            assert_int_equal(b.ev.bins[1].len, 2);
            assert_memory_equal(b.ev.bins[1].data, "ab", 2);
        }
        /* re-encoded as rtd publishes it */
        buf text = BUF_INIT, out = BUF_INIT;
        text_packet(&text, &b.ev);
        assert_int_equal(acodec_encode_broadcast(&out, b.uid, b.ev.nsp, text.data, text.len,
                                                 b.ev.bins, b.ev.nbins,
                                                 (const char *const *)b.opts.rooms,
                                                 b.opts.nrooms,
                                                 (const char *const *)b.opts.except,
                                                 b.opts.nexcept, b.opts.is_volatile),
                         0);
        /* the adapter's own key order is rtd's: its plain broadcasts are byte-identical */
        if (!strncmp(e->name, "adapter-", 8) && strcmp(e->name, "adapter-date-big") &&
            strcmp(e->name, "adapter-volatile")) {
            assert_int_equal(out.len, x->len);
            assert_memory_equal(out.data, x->data, x->len);
        }
        struct acodec_broadcast b2;
        assert_int_equal(acodec_decode_broadcast((unsigned char *)out.data, out.len, &b2, &why),
                         0);
        assert_string_equal(b2.ev.args.data, b.ev.args.data);
        assert_string_equal(b2.ev.event, b.ev.event);
        assert_int_equal(b2.opts.nrooms, b.opts.nrooms);
        assert_int_equal(b2.opts.nexcept, b.opts.nexcept);
        assert_int_equal(b2.opts.is_volatile, b.opts.is_volatile);
        acodec_broadcast_free(&b2);
        buf_free(&text);
        buf_free(&out);
        acodec_broadcast_free(&b);
        seen++;
    }
    /* and every broadcast recorded decodes */
    for (size_t i = 0; i < nfx; i++) {
        if (!is_broadcast_channel(fx[i].channel))
            continue;
        struct acodec_broadcast b;
        const char *why = NULL;
        if (acodec_decode_broadcast(fx[i].data, fx[i].len, &b, &why) < 0)
            fail_msg("%s on %s: %s", fx[i].name, fx[i].channel, why);
        acodec_broadcast_free(&b);
    }
    assert_int_equal(seen, sizeof expected / sizeof *expected);
}

/* ---- a node with no Redis: requests and junk through cluster_handle_message ---- */

static void test_fixture_requests(void **state)
{
    loop *l = loop_new(64);
    struct eio_config ec = {.path = "/socket.io/", .ping_interval_ms = 25000,
                            .ping_timeout_ms = 20000, .max_payload = 1000000,
                            .max_buffered = 1 << 20};
    struct sio_config sc = {0};
    sio_server *srv = sio_server_new(l, &sc, &ec);
    assert_non_null(srv);
    sio_namespace_add(srv, "/");
    sio_namespace_add(srv, "/chat");
    char *err = NULL;
    struct cluster_config cc = {.url = "redis://127.0.0.1:1", .key = "socket.io"};
    cluster *c = cluster_new(l, srv, &cc, &err);
    assert_non_null(c);
    struct cluster_stats st;
    size_t requests = 0, responses = 0, broadcasts = 0;
    for (size_t i = 0; i < nfx; i++) {
        const char *ch = fx[i].channel;
        cluster_handle_message(c, NULL, ch,
                               strlen(ch), fx[i].data, fx[i].len);
        if (is_broadcast_channel(ch))
            broadcasts++;
        else if (strstr(ch, "-request#"))
            requests++;
        else
            responses++;
        cluster_get_stats(c, &st);
        if (st.dropped)
            fail_msg("%s on %s was dropped", fx[i].name, ch);
    }
    assert_true(requests >= 10);
    assert_true(responses >= 3);
    assert_true(broadcasts >= 10);
    cluster_get_stats(c, &st);
    /* every request but the disconnect/join/leave ones for sockets elsewhere counts */
    assert_true(st.requests >= requests - 2);
    /* broadcasts of rooms nobody here is in are skipped before decoding; the rest reach
     * nobody (no sockets) but are delivered */
    assert_true(st.delivered >= 8);

    /* junk: each one dropped and counted */
    static const struct {
        const char *channel;
        const char *data;
        size_t len;
    } junk[] = {
        {"socket.io#/#", "\xdd\xff\xff\xff\xff", 5},              /* 2^32 elements */
        {"socket.io#/#", "\xdf\x7f\xff\xff\xff\x00", 6},          /* a huge map */
        {"socket.io#/#", "\x93\xa7" "emitter\xdb\xff\xff\xff\xf0", 14}, /* str32 beyond */
        {"socket.io#/#", "\xc1", 1},                              /* never used */
        {"socket.io#/#", "\x93\x01\x80\x80", 4},                  /* uid not a string */
        {"socket.io#/#", "\x93\xa1x\x83\xa4type\x03\xa4" "data\x91\xa1" "a\xa3nsp\xa1/\x80",
         25},                                                     /* type 3 */
        {"socket.io#/#", "\x93\xa1x\x82\xa4type\x02\xa4" "data\x91\x01\x80", 17}, /* name 1 */
        {"socket.io#/#", "\x93\xa1x\x82\xa4type\x02\xa4" "data\x92\xa1" "e\xa2\xff\xfe\x80",
         21},                                                     /* bad UTF-8 */
        {"socket.io#/#", "\x93\xa1x\x82\xa4type\x02\xa4" "data\x91\xa1" "e\x80\x00", 18},
        {"socket.io#/#", "\x93\xa1x\x83\xa4type\x02\xa4" "data\x91\xa1" "e\xa3nsp\xa5/chat\x80",
         29},                                                     /* nsp differs */
        {"socket.io#/#", "\x93\xa1x\x82\xa4type\x02\xa4" "data\x91\xa1" "e\x81\xa5rooms\x01",
         25},                                                     /* rooms: 1 */
        {"socket.io#/#", "", 0},
        {"socket.io#/#x", "\x90", 1},                             /* no trailing # */
        {"socket.io#/nope#", "\x90", 1},                          /* unknown namespace */
        {"socket.io-request#/#", "{\"type\":42,\"uid\":\"x\"}", 21}, /* unknown type */
        {"socket.io-request#/#", "{\"type\":\"1\"}", 12},
        {"socket.io-request#/#", "{\"type\":1,", 10},
        {"socket.io-request#/#", "[1]", 3},
        {"socket.io-request#/#", "{\"type\":2,\"opts\":7,\"rooms\":[\"a\"]}", 33},
        {"socket.io-request#/#", "{\"type\":2,\"opts\":{},\"rooms\":[1]}", 31},
        {"socket.io-request#/#", "{\"type\":6,\"data\":[]}", 20},
        {"socket.io-request#/#", "\x85\xa4type\x07", 7},          /* msgpack, truncated */
        {"socket.io-request#/#", "\x81\xa4type\x07", 7},          /* no requestId */
    };
    uint64_t before = st.dropped;
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        cluster_handle_message(c, "socket.io#/#*", junk[i].channel, strlen(junk[i].channel),
                               (const unsigned char *)junk[i].data, junk[i].len);
        cluster_get_stats(c, &st);
        if (st.dropped != before + i + 1)
            fail_msg("junk %zu on %s was not dropped", i, junk[i].channel);
    }
    /* deep nesting */
    unsigned char deep[200];
    size_t n = 0;
    memcpy(deep, "\x93\xa1x\x82\xa4type\x02\xa4" "data\x92\xa1" "e", 16);
    n = 16;
    while (n < sizeof deep - 2)
        deep[n++] = 0x91;
    deep[n++] = 0xc0;
    deep[n++] = 0x80;
    cluster_handle_message(c, "socket.io#/#*", "socket.io#/#", 12, deep, n);
    cluster_get_stats(c, &st);
    assert_int_equal(st.dropped, before + sizeof junk / sizeof *junk + 1);
    sio_server_free(srv);
    cluster_free(c);
    loop_free(l);
}

/* PHP emitters: an empty array where a map belongs, no except, type 5, one publish per room
 * carrying every room. */
static void test_php_shapes(void **state)
{
    buf b = BUF_INIT;
    msgpack_packer pk;
    acodec_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 3);
    acodec_pack_str(&pk, "emitter", 7);
    msgpack_pack_map(&pk, 3);
    acodec_pack_str(&pk, "type", 4);
    msgpack_pack_int(&pk, 5);
    acodec_pack_str(&pk, "data", 4);
    msgpack_pack_array(&pk, 2);
    acodec_pack_str(&pk, "news", 4);
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "\x00\x01", 2);
    acodec_pack_str(&pk, "nsp", 3);
    acodec_pack_str(&pk, "/", 1);
    msgpack_pack_map(&pk, 2);
    acodec_pack_str(&pk, "rooms", 5);
    msgpack_pack_array(&pk, 2);
    acodec_pack_str(&pk, "r1", 2);
    acodec_pack_str(&pk, "r2", 2);
    acodec_pack_str(&pk, "flags", 5);
    msgpack_pack_array(&pk, 0);
    struct acodec_broadcast d;
    const char *why = NULL;
    assert_int_equal(acodec_decode_broadcast((unsigned char *)b.data, b.len, &d, &why), 0);
    assert_string_equal(d.ev.event, "news");
    assert_string_equal(d.ev.args.data, "{\"_placeholder\":true,\"num\":0}");
    assert_int_equal(d.opts.nrooms, 2);
    assert_int_equal(d.opts.nexcept, 0);
    assert_false(d.opts.is_volatile);
    acodec_broadcast_free(&d);
    /* opts as an empty array too, and no opts at all */
    buf_reset(&b);
    msgpack_pack_array(&pk, 3);
    acodec_pack_str(&pk, "emitter", 7);
    msgpack_pack_map(&pk, 2);
    acodec_pack_str(&pk, "type", 4);
    msgpack_pack_int(&pk, 2);
    acodec_pack_str(&pk, "data", 4);
    msgpack_pack_array(&pk, 1);
    acodec_pack_str(&pk, "x", 1);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(acodec_decode_broadcast((unsigned char *)b.data, b.len, &d, &why), 0);
    assert_string_equal(d.ev.nsp, "/");
    assert_string_equal(d.ev.args.data, "");
    acodec_broadcast_free(&d);
    buf_free(&b);
}

static void test_sane(void **state)
{
    assert_true(acodec_msgpack_sane((const unsigned char *)"\x90", 1));
    assert_false(acodec_msgpack_sane((const unsigned char *)"\x90\x90", 2)); /* trailing */
    assert_false(acodec_msgpack_sane((const unsigned char *)"\x91", 1));
    assert_false(acodec_msgpack_sane((const unsigned char *)"\xc4\x05" "abc", 5));
    assert_true(acodec_msgpack_sane((const unsigned char *)"\xd4\x00\x00", 3));
    assert_false(acodec_msgpack_sane((const unsigned char *)"\xd4\x00", 2));
    assert_true(acodec_msgpack_sane((const unsigned char *)"\xc7\x01\x00\x05", 4));
    assert_false(acodec_msgpack_sane((const unsigned char *)"\xc9\xff\xff\xff\xff\x00", 6));
    assert_false(acodec_msgpack_sane((const unsigned char *)"", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_sane),
        cmocka_unit_test(test_fixture_broadcasts),
        cmocka_unit_test(test_fixture_requests),
        cmocka_unit_test(test_php_shapes),
    };
    return cmocka_run_group_tests(tests, load_fixtures, free_fixtures);
}
