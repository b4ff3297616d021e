/* conformance-server.c: rtd's protocol core dressed as the reference test servers at the
 * end of the Engine.IO v4 and Socket.IO v5 specifications, so the official test suites and
 * our own integration tests (tests/js/) can judge it.
 *
 *   conformance-server --port 3000                 Socket.IO at /socket.io/
 *   conformance-server --engine-only --port 3000   Engine.IO echo at /engine.io/
 *
 * pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000, connectTimeout 1000 ms, CORS
 * for any origin. Besides the reference behaviour ("auth" on connection, "message" →
 * "message-back", "message-with-ack" acked), "/" answers server-ack, disconnect-me, join
 * and to-room, which our tests use for server-to-client acks, server disconnects and rooms. */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rtd/lib/log.h"
#include "rtd/net/http.h"
#include "rtd/socketio/sio.h"

static bool engine_only;

/* ---- engine-only: echo ---- */

static void echo_message(eio_session *s, const unsigned char *data, size_t len, bool binary,
                         void *ud)
{
    eio_packet *p = eio_packet_new(EIO_MESSAGE, binary, data, len);
    if (p) {
        eio_send(s, p);
        eio_packet_unref(p);
    }
}

/* ---- socket.io ---- */

static void emit_args(sio_socket *s, const char *event, const sio_args *a, size_t skip)
{
    buf args = BUF_INIT;
    sio_args rest = *a;
    rest.first += skip;
    sio_args_json(&rest, &args);
    sio_packet *p = sio_event_packet(sio_socket_namespace(s), event, args.data ? args.data : "",
                                     args.len, a->bins, a->nbins);
    if (p) {
        sio_send(s, p);
        sio_packet_unref(p);
    }
    buf_free(&args);
}

static void on_connection(sio_socket *s, struct json_object *auth, void *ud)
{
    const char *j = auth ? json_object_to_json_string_ext(auth, JSON_C_TO_STRING_PLAIN |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE)
                         : "{}";
    sio_emit(s, "auth", j);
}

static void on_message(sio_socket *s, const char *ev, const sio_args *a, int64_t id, void *ud)
{
    emit_args(s, "message-back", a, 0);
}

static void on_message_with_ack(sio_socket *s, const char *ev, const sio_args *a, int64_t id,
                                void *ud)
{
    buf args = BUF_INIT;
    sio_args_json(a, &args);
    buf_terminate(&args);
    sio_ack(s, id, args.data ? args.data : "", a->bins, a->nbins);
    buf_free(&args);
}

static void on_client_ack(sio_socket *s, const sio_args *a, void *ud)
{
    if (!s)
        return;
    if (!a) {
        sio_emit(s, "ack-timeout", NULL);
        return;
    }
    emit_args(s, "ack-response", a, 0);
}

static void on_server_ack(sio_socket *s, const char *ev, const sio_args *a, int64_t id, void *ud)
{
    buf args = BUF_INIT;
    sio_args_json(a, &args);
    buf_terminate(&args);
    sio_emit_with_ack(s, "ack-request", args.data ? args.data : "", a->bins, a->nbins, 1000,
                      on_client_ack, NULL);
    buf_free(&args);
}

static void on_disconnect_me(sio_socket *s, const char *ev, const sio_args *a, int64_t id,
                             void *ud)
{
    sio_disconnect(s, false);
}

static void on_join(sio_socket *s, const char *ev, const sio_args *a, int64_t id, void *ud)
{
    struct json_object *room = sio_arg(a, 0);
    if (!room || !json_object_is_type(room, json_type_string)) {
        sio_ack(s, id, "false", NULL, 0);
        return;
    }
    sio_join(s, json_object_get_string(room));
    sio_ack(s, id, "true", NULL, 0);
}

static void on_to_room(sio_socket *s, const char *ev, const sio_args *a, int64_t id, void *ud)
{
    struct json_object *room = sio_arg(a, 0);
    if (!room || !json_object_is_type(room, json_type_string))
        return;
    buf args = BUF_INIT;
    sio_args rest = *a;
    rest.first += 1;
    sio_args_json(&rest, &args);
    sio_packet *p = sio_event_packet(sio_socket_namespace(s), "room-message",
                                     args.data ? args.data : "", args.len, a->bins, a->nbins);
    if (p) {
        sio_broadcast(sio_socket_namespace(s), json_object_get_string(room), NULL, p);
        sio_packet_unref(p);
    }
    buf_free(&args);
}

static void route(http_request *r, void *ud)
{
    eio_handle_request(ud, r);
}

static void on_stop(loop *l, int signo, void *ud)
{
    loop_stop(l);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: conformance-server [--port N] [--engine-only] [--allow-eio3]\n");
}

int main(int argc, char **argv)
{
    unsigned port = 3000;
    bool allow_eio3 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--engine-only")) {
            engine_only = true;
        } else if (!strcmp(argv[i], "--allow-eio3")) {
            allow_eio3 = true;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    rlog_init(getenv("RTD_DEBUG") ? RLOG_DEBUG : RLOG_WARN, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    loop *l = loop_new((int)rl.rlim_cur + 16);
    if (!l)
        return 1;
    loop_on_signal(l, SIGTERM, on_stop, NULL);
    loop_on_signal(l, SIGINT, on_stop, NULL);

    static const char *const any[] = {"*", NULL};
    struct http_config hc = {.port = port, .cors_origins = any, .request_timeout_s = 60};
    char *err = NULL;
    http_server *h = http_server_new(l, &hc, &err);
    if (!h) {
        fprintf(stderr, "conformance-server: %s\n", err);
        return 1;
    }
    struct eio_config ec = {
        .path = engine_only ? "/engine.io/" : "/socket.io/",
        .ping_interval_ms = 300,
        .ping_timeout_ms = 200,
        .upgrade_timeout_ms = 10000,
        .max_payload = 1000000,
        .max_buffered = 64u << 20,
        .allow_eio3 = allow_eio3,
    };
    eio_server *eio;
    sio_server *sio = NULL;
    if (engine_only) {
        struct eio_callbacks cb = {.on_message = echo_message};
        eio = eio_server_new(l, &ec, &cb, NULL);
    } else {
        struct sio_config sc = {.connect_timeout_ms = 1000};
        sio = sio_server_new(l, &sc, &ec);
        eio = sio ? sio_server_engine(sio) : NULL;
        if (sio) {
            sio_namespace *root = sio_namespace_add(sio, "/");
            sio_namespace *custom = sio_namespace_add(sio, "/custom");
            sio_on_connection(root, on_connection, NULL);
            sio_on_connection(custom, on_connection, NULL);
            sio_on(root, "message", on_message, NULL);
            sio_on(root, "message-with-ack", on_message_with_ack, NULL);
            sio_on(root, "server-ack", on_server_ack, NULL);
            sio_on(root, "disconnect-me", on_disconnect_me, NULL);
            sio_on(root, "join", on_join, NULL);
            sio_on(root, "to-room", on_to_room, NULL);
        }
    }
    if (!eio) {
        fprintf(stderr, "conformance-server: out of memory\n");
        return 1;
    }
    eio_server_set_http(eio, h);
    http_route(h, ec.path, route, eio, ec.max_payload);
    fprintf(stderr, "conformance-server listening on %u (%s)\n", http_server_port(h),
            engine_only ? "engine.io" : "socket.io");
    loop_run(l);
    if (sio)
        sio_server_free(sio);
    else
        eio_server_free(eio);
    http_server_free(h);
    loop_free(l);
    return 0;
}
