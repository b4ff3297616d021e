# tests/fuzz/local.mk: the libFuzzer targets, one per parser (included by Makefile.am).
#
# Built only when configured with --enable-fuzzing, which needs clang:
#   configure CC=clang CXX=clang++ --enable-fuzzing --disable-werror
#   make tests/fuzz/fuzz_ws tests/fuzz/fuzz_eio tests/fuzz/fuzz_sio tests/fuzz/fuzz_platform \
#        tests/fuzz/fuzz_eio3 tests/fuzz/fuzz_admin_http tests/fuzz/fuzz_sio_query tests/fuzz/fuzz_redis
# Each target compiles the few sources it drives itself, with libFuzzer's coverage
# instrumentation and AddressSanitizer + UndefinedBehaviorSanitizer, so the rest of the tree
# keeps the flags it was configured with. tests/fuzz/run.sh SECONDS runs the built targets
# on copies of their seed corpora (tests/fuzz/corpus/<target>/).

EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/corpus tests/fuzz/fuzz_eio.dict \
	tests/fuzz/fuzz_sio.dict tests/fuzz/fuzz_platform.dict tests/fuzz/fuzz_eio3.dict \
	tests/fuzz/fuzz_admin_http.dict

if ENABLE_FUZZING
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -g
FUZZ_CFLAGS = $(AM_CFLAGS) $(FUZZ_FLAGS)

noinst_PROGRAMS += tests/fuzz/fuzz_ws tests/fuzz/fuzz_eio tests/fuzz/fuzz_sio \
	tests/fuzz/fuzz_platform tests/fuzz/fuzz_eio3 tests/fuzz/fuzz_admin_http \
	tests/fuzz/fuzz_sio_query tests/fuzz/fuzz_redis

# rtd/net/ws.c: the frame reader and UTF-8 validation (OpenSSL for the accept key).
tests_fuzz_fuzz_ws_SOURCES = tests/fuzz/fuzz_ws.c tests/fuzz/fuzz.h rtd/net/ws.c rtd/lib/buf.c
tests_fuzz_fuzz_ws_CFLAGS = $(FUZZ_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_ws_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_ws_LDADD = $(CRYPTO_LIBS)

# rtd/engine/eio_packet.c: WebSocket messages and long-polling bodies (base64 from rtd/lib/util.c).
tests_fuzz_fuzz_eio_SOURCES = tests/fuzz/fuzz_eio.c tests/fuzz/fuzz.h rtd/engine/eio_packet.c \
	rtd/lib/util.c rtd/net/ws.c rtd/lib/buf.c
tests_fuzz_fuzz_eio_CFLAGS = $(FUZZ_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_eio_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_eio_LDADD = $(CRYPTO_LIBS)

# rtd/socketio/sio_parser.c: packet headers, then json-c as rtd/socketio/sio.c uses it.
tests_fuzz_fuzz_sio_SOURCES = tests/fuzz/fuzz_sio.c tests/fuzz/fuzz.h rtd/socketio/sio_parser.c \
	rtd/lib/buf.c
tests_fuzz_fuzz_sio_CFLAGS = $(FUZZ_CFLAGS) $(JSONC_CFLAGS)
tests_fuzz_fuzz_sio_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_sio_LDADD = $(JSONC_LIBS)

# rtd/validate.c: the platform's event checks on json-c values (UTF-8 from rtd/net/ws.c).
tests_fuzz_fuzz_platform_SOURCES = tests/fuzz/fuzz_platform.c tests/fuzz/fuzz.h \
	rtd/validate.c rtd/net/ws.c rtd/lib/buf.c
tests_fuzz_fuzz_platform_CFLAGS = $(FUZZ_CFLAGS) $(JSONC_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_platform_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_platform_LDADD = $(JSONC_LIBS) $(CRYPTO_LIBS)

# rtd/engine/eio3.c: Engine.IO v3 payloads, WebSocket messages and JSONP bodies.
tests_fuzz_fuzz_eio3_SOURCES = tests/fuzz/fuzz_eio3.c tests/fuzz/fuzz.h rtd/engine/eio3.c \
	rtd/engine/eio_packet.c rtd/lib/util.c rtd/net/ws.c rtd/lib/buf.c
tests_fuzz_fuzz_eio3_CFLAGS = $(FUZZ_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_eio3_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_eio3_LDADD = $(CRYPTO_LIBS)

# admin-fcgi/http.c: the query string, cookie, form body and path parsers.
tests_fuzz_fuzz_admin_http_SOURCES = tests/fuzz/fuzz_admin_http.c tests/fuzz/fuzz.h \
	admin-fcgi/http.c admin-fcgi/sbuf.c
tests_fuzz_fuzz_admin_http_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_admin_http_LDFLAGS = $(FUZZ_FLAGS)

# rtd/cluster/adapter_codec.c: the Redis adapter's msgpack broadcasts (msgpack-c), seeded
# with the recorded fixtures.
tests_fuzz_fuzz_redis_SOURCES = tests/fuzz/fuzz_redis.c tests/fuzz/fuzz.h \
	rtd/cluster/adapter_codec.c rtd/socketio/sio_parser.c rtd/lib/util.c rtd/net/ws.c \
	rtd/lib/buf.c
tests_fuzz_fuzz_redis_CFLAGS = $(FUZZ_CFLAGS) $(MSGPACK_CFLAGS) $(JSONC_CFLAGS) $(CRYPTO_CFLAGS)
tests_fuzz_fuzz_redis_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_redis_LDADD = $(MSGPACK_LIBS) $(JSONC_LIBS) $(CRYPTO_LIBS)

# rtd/socketio/sio.c's static query_json: the target includes sio.c and takes the rest of rtd,
# uninstrumented, from rtd/librtd.a.
tests_fuzz_fuzz_sio_query_SOURCES = tests/fuzz/fuzz_sio_query.c tests/fuzz/fuzz.h
tests_fuzz_fuzz_sio_query_CFLAGS = $(FUZZ_CFLAGS) $(RTD_DEP_CFLAGS)
tests_fuzz_fuzz_sio_query_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_sio_query_LDADD = rtd/librtd.a $(RTD_DEP_LIBS)
endif
