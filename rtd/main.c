/* main.c: rtd's entry point: flags, start-up, signals and the clean shutdown.
 *
 * Start-up order matters: signals are routed to the loop (signalfd) before any thread starts
 * (the store's, the send pool's), so the threads inherit the blocked mask and SIGTERM always
 * reaches the loop.
 * Shutdown (SIGTERM, SIGINT): stop accepting, close every client cleanly (close packets and
 * frames), give WebSockets up to two seconds to finish their close handshake, then let the
 * store commit what is queued and close every connection row, and exit 0. */
#include "config.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sqlite3.h>

#include "rtd/adminui/adminui.h"
#include "rtd/auth.h"
#include "rtd/cluster/cluster.h"
#include "rtd/laravel/laravel.h"
#include "rtd/laravel/laravel_config.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"
#include "rtd/net/http.h"
#include "rtd/options.h"
#include "rtd/platform.h"
#include "rtd/socketio/sio.h"
#include "rtd/status.h"
#include "rtd/store/store.h"

#define STATUS_EVERY_MS 5000
#define CLOSE_GRACE_MS 2000
/* How long shutdown waits for the commits of messages already accepted, so that their acks
 * go out before the sockets close: the store's busy timeout (5 s) and a margin. */
#define COMMIT_GRACE_MS 6000

struct daemon {
    loop *l;
    http_server *http;
    sio_server *sio;
    store *st;
    platform *plat;
    cluster *cluster;
    adminui *admin;
    struct status_sources status;
    loop_timer status_timer;
    loop_timer shutdown_timer;
    uint64_t shutdown_started;
    bool stopping;
    bool closing; /* the sockets were told to close */
};

static void route_engine(http_request *r, void *ud)
{
    eio_handle_request(ud, r);
}

/* The browser client, as the Node.js server serves it (its serveClient option). */
struct file_blob {
    char *data;
    size_t len;
};

static void route_client_js(http_request *r, void *ud)
{
    struct file_blob *f = ud;
    http_add_header(r, "Cache-Control", "public, max-age=3600");
    http_respond(r, 200, "application/javascript; charset=utf-8", f->data, f->len);
}

static int load_file(const char *path, struct file_blob *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    buf b = BUF_INIT;
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (8u << 20))
        if (buf_append(&b, chunk, n) < 0)
            break;
    fclose(f);
    out->data = b.data;
    out->len = b.len;
    return b.len ? 0 : -1;
}

static void status_tick(loop *l, void *ud)
{
    struct daemon *d = ud;
    struct platform_stats ps;
    platform_get_stats(d->plat, &ps);
    buf lj = BUF_INIT; /* --laravel-config's figures for admin-fcgi */
    bool lok = d->status.laravel &&
               laravel_status_json(d->status.laravel, &lj, STORE_STATUS_LARAVEL_MAX) == 0;
    store_status_laravel(d->st, platform_connections(d->plat), ps.messages_in, ps.messages_out,
                         lok ? (const char *)lj.data : NULL);
    buf_free(&lj);
    loop_timer_start(l, &d->status_timer, STATUS_EVERY_MS, status_tick, d);
}

/* Shutdown in two steps, every 20 ms: first the store's completions still owed (a commit
 * waiting for the disk or for another process's lock: its ack must still go out), then the
 * close of every socket and long-poll. Each step has its own bound. */
static void shutdown_tick(loop *l, void *ud)
{
    struct daemon *d = ud;
    eio_server *eio = sio_server_engine(d->sio);
    uint64_t waited = loop_now(l) - d->shutdown_started;
    if (!d->closing) {
        if (platform_outstanding(d->plat) > 0 && waited < COMMIT_GRACE_MS) {
            loop_timer_start(l, &d->shutdown_timer, 20, shutdown_tick, d);
            return;
        }
        d->closing = true;
        d->shutdown_started = loop_now(l);
        waited = 0;
        eio_server_close_all(eio, "server shutting down");
    }
    /* Done when every WebSocket finished its close handshake and every long-poll got its
     * close packet out. */
    bool drained = eio_server_sockets_open(eio) == 0 && http_server_active_requests(d->http) == 0;
    if (drained || waited >= CLOSE_GRACE_MS) {
        loop_stop(l);
        return;
    }
    loop_timer_start(l, &d->shutdown_timer, 20, shutdown_tick, d);
}

static void on_terminate(loop *l, int signo, void *ud)
{
    struct daemon *d = ud;
    if (d->stopping) {
        loop_stop(l); /* a second signal: do not wait for the close handshakes */
        return;
    }
    d->stopping = true;
    rlogf(RLOG_INFO, "Shutting down", "{\"signal\":\"%s\",\"connections\":%u}",
          signo == SIGTERM ? "SIGTERM" : "SIGINT", platform_connections(d->plat));
    http_server_quiesce(d->http);
    loop_timer_stop(l, &d->status_timer);
    platform_quiesce(d->plat);
    d->shutdown_started = loop_now(l);
    shutdown_tick(l, d);
}

static void on_hup(loop *l, int signo, void *ud)
{
    if (rlog_reopen() < 0)
        rlog(RLOG_ERROR, "Cannot reopen the log file", NULL);
    else
        rlog(RLOG_INFO, "Log file reopened", NULL);
}

/* serverSideEmit("rtd:connections", cb) from a Node.js node: each rtd node answers with
 * its uid and its number of sockets on "/". Other events have no listener here. */
static void on_server_event(cluster *c, const char *nsp, const char *event,
                            const char *args_json, void *ack, void *ud)
{
    struct daemon *d = ud;
    if (!ack || strcmp(event, "rtd:connections") != 0)
        return;
    char json[96];
    snprintf(json, sizeof json, "{\"uid\":\"%s\",\"connections\":%u}", cluster_uid(c),
             platform_connections(d->plat));
    cluster_server_ack(c, ack, json);
}

/* totalConnections in presence events: this node's sockets and the other nodes'. */
static int count_cluster(void *ud, platform_count_done *done, void *arg)
{
    return cluster_count_remote(ud, "/", 1000, done, arg);
}

static void kick_cluster(void *ud, const char *socket_id)
{
    cluster_disconnect_remote(ud, "/", socket_id);
}

static int backup(const struct rtd_options *o)
{
    char *err = NULL;
    if (store_backup(o->db, o->backup_dest, &err) < 0) {
        fprintf(stderr, "rtd: backup failed: %s\n", err ? err : "unknown error");
        free(err);
        return 1;
    }
    printf("rtd: %s copied to %s\n", o->db, o->backup_dest);
    return 0;
}

/* The database as the log shows it, JSON-escaped: a PostgreSQL URL's password becomes ***. */
static void db_for_log(const char *db, char *out, size_t n)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", db);
    const char *scheme = strstr(tmp, "://");
    char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (store_db_is_pg(db) && at && colon && colon < at)
        memmove(colon + 4, at, strlen(at) + 1), memcpy(colon, ":***", 4);
    buf b = BUF_INIT;
    if (buf_json_escape(&b, tmp, strlen(tmp)) == 0 && buf_terminate(&b) == 0)
        snprintf(out, n, "%s", b.data);
    else
        snprintf(out, n, "?");
    buf_free(&b);
}

static unsigned raise_file_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > 1000000 ? 1000000 : (unsigned)rl.rlim_cur;
}

int main(int argc, char **argv)
{
    struct rtd_options o;
    enum options_result pr = options_parse(argc, argv, &o, stdout, stderr);
    if (pr != OPTIONS_RUN) {
        options_free(&o);
        return pr == OPTIONS_EXIT_OK ? 0 : 2;
    }
    if (o.backup_dest) {
        int r = backup(&o);
        options_free(&o);
        return r;
    }
    if (rlog_init(o.log_level, o.log_file) < 0) {
        fprintf(stderr, "rtd: cannot open log file %s\n", o.log_file);
        options_free(&o);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* libmicrohttpd gives each HTTP connection a 16 KiB memory pool, freed when a WebSocket
     * is taken over. Served by mmap, those pools go back to the system when freed instead of
     * leaving resident holes in the heap: idle WebSockets then cost only rtd's own state. */
    mallopt(M_MMAP_THRESHOLD, 16 * 1024);
    /* SQLite's allocation statistics cost a global mutex on every allocation; rtd never
     * reads them. Must precede any other SQLite call. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    unsigned files = raise_file_limit();
    if (o.max_connections + 64 > files) {
        rlogf(RLOG_WARN, "File limit lower than --max-connections",
              "{\"files\":%u,\"maxConnections\":%u}", files, o.max_connections);
        o.max_connections = files > 128 ? files - 64 : 64;
    }

    int rc = 1;
    struct daemon d = {0};
    char *err = NULL;
    char *secret = NULL;
    size_t secret_len = 0;
    struct file_blob client_js = {0};
    struct laravel_config lc = {0};
    laravel *lv = NULL;
    d.l = loop_new((int)files + 16);
    if (!d.l) {
        fprintf(stderr, "rtd: cannot create the event loop\n");
        goto out;
    }
    loop_on_signal(d.l, SIGTERM, on_terminate, &d);
    loop_on_signal(d.l, SIGINT, on_terminate, &d);
    loop_on_signal(d.l, SIGHUP, on_hup, &d);

    if (o.auth_secret_file && !(secret = auth_load_secret(o.auth_secret_file, &secret_len, &err))) {
        rlog(RLOG_ERROR, err, NULL);
        goto out;
    }
    if (o.laravel_config) { /* its host and port, unless --bind / --port say otherwise */
        if (laravel_config_load(o.laravel_config, &lc, &err) < 0) {
            rlogf(RLOG_ERROR, "Bad --laravel-config", "{\"path\":\"%s\"}", rlog_esc(o.laravel_config));
            fprintf(stderr, "rtd: --laravel-config %s: %s\n", o.laravel_config, err ? err : "");
            goto out;
        }
        if (!o.port_given)
            o.port = lc.port;
        if (!o.bind_given && lc.host)
            o.bind = lc.host;
    }
    char node_id[300], dblog[600];
    if (o.node_id) {
        snprintf(node_id, sizeof node_id, "%s", o.node_id);
    } else {
        /* host:port names the node; with --port 0 (any port) the pid stands in for it. */
        char host[256] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(node_id, sizeof node_id, "%s:%u", host, o.port ? o.port : (unsigned)getpid());
    }
    db_for_log(o.db, dblog, sizeof dblog);
    struct store_config sc = {
        .path = o.db,
        .node_id = node_id,
        .sync_full = o.sync_full,
        .retention_days = o.retention_days,
        .max_queue_bytes = o.store_queue_bytes,
    };
    d.st = store_open(&sc, d.l, &err);
    if (!d.st) {
        buf eb = BUF_INIT;
        const char *e = err ? err : "";
        if (buf_json_escape(&eb, e, strlen(e)) < 0 || buf_terminate(&eb) < 0)
            buf_reset(&eb);
        rlogf(RLOG_ERROR, "Cannot open the database", "{\"path\":\"%s\",\"error\":\"%s\"}",
              rlog_esc(dblog), rlog_esc(eb.data));
        buf_free(&eb);
        goto out;
    }
    struct http_config hc = {
        .bind = o.bind,
        .port = o.port,
        /* --max-connections bounds sessions (eio answers 503); libmicrohttpd only needs to
         * stay within the file limit, its connections being also idle keep-alives and
         * long-polls of those sessions. */
        .max_connections = files > 128 ? files - 64 : 64,
        /* a polling session may hold a GET and a POST at once. Behind a trusted proxy every
         * connection comes from the proxy: only the sessions are counted per client. */
        .max_per_ip = o.max_connections_per_ip && !o.trust_proxy
                          ? 2 * o.max_connections_per_ip + 2
                          : 0,
        .trust_proxy = o.trust_proxy,
        .request_timeout_s = o.request_timeout_s,
        .cors_origins = o.cors_origins,
        .static_dir = o.static_dir,
    };
    d.http = http_server_new(d.l, &hc, &err);
    if (!d.http) {
        rlog(RLOG_ERROR, err ? err : "cannot start the HTTP server", NULL);
        goto out;
    }
    struct eio_config ec = {
        .path = "/socket.io/",
        .ping_interval_ms = o.ping_interval_ms,
        .ping_timeout_ms = o.ping_timeout_ms,
        .upgrade_timeout_ms = 10000,
        .max_payload = o.max_payload,
        .max_buffered = o.max_buffered,
        .max_sessions = o.max_connections,
        .max_per_ip = o.max_connections_per_ip,
        .allow_eio3 = o.allow_eio3,
        .send_threads = o.send_threads,
        .keep_headers = o.laravel_config ? LARAVEL_MAX_HEADER : 0, /* for the auth callout */
    };
    struct sio_config sioc = {.connect_timeout_ms = o.connect_timeout_ms,
                             .recovery = o.recovery_window_ms > 0};
    d.sio = sio_server_new(d.l, &sioc, &ec);
    struct platform_config pc = {
        .max_message_bytes = o.max_message_bytes,
        /* laravel-echo-server sends no such events: off for Laravel unless asked for */
        .presence = o.presence && (!o.laravel_config || o.presence_given),
        .recovery_window_ms = o.recovery_window_ms,
        .recovery_max_events = o.recovery_max_events,
        .rate_limit = o.rate_limit,
        .rate_burst = o.rate_burst,
        .max_rooms = o.max_rooms,
        .auth_secret = secret,
        .auth_secret_len = secret_len,
    };
    d.plat = d.sio ? platform_new(d.l, d.sio, d.st, &pc) : NULL;
    if (!d.plat) {
        rlog(RLOG_ERROR, "Out of memory at start-up", NULL);
        goto out;
    }
    eio_server *eio = sio_server_engine(d.sio);
    eio_server_set_http(eio, d.http);
    /* before the cluster, so that /admin takes part in it */
    if (o.admin_ui) {
        struct adminui_config ac = {.mode = (enum adminui_mode)o.admin_ui,
                                    .readonly = o.admin_ui_readonly,
                                    .db = o.db,
                                    .server_id = o.node_id};
        d.admin = adminui_new(d.l, d.sio, &ac, &err);
        if (!d.admin) {
            rlogf(RLOG_ERROR, "Cannot start the Admin UI", "{\"error\":\"%s\"}", rlog_esc(err));
            goto out;
        }
    }
    if (o.redis_url) {
        struct cluster_config cc = {.url = o.redis_url, .key = o.redis_key};
        d.cluster = cluster_new(d.l, d.sio, &cc, &err);
        if (!d.cluster) {
            rlogf(RLOG_ERROR, "Cannot start the cluster", "{\"error\":\"%s\"}", rlog_esc(err));
            goto out;
        }
        cluster_on_server_event(d.cluster, on_server_event, &d);
        platform_set_counter(d.plat, count_cluster, d.cluster);
        platform_set_recovery_kick(d.plat, kick_cluster, d.cluster);
        if (d.admin)
            adminui_set_cluster(d.admin, d.cluster);
    }
    if (o.laravel_config) {
        const char *lerr = NULL;
        if (!(lv = laravel_new(d.l, d.sio, &lc, &lerr))) {
            rlogf(RLOG_ERROR, "Cannot start the Laravel mode", "{\"error\":\"%s\"}", rlog_esc(lerr));
            goto out;
        }
        if (laravel_serve(lv, d.http, o.max_payload) < 0)
            goto out;
    }
    d.status = (struct status_sources){d.sio, d.plat, d.st, util_wall_ms(), d.cluster, lv};
    if (o.client_js) {
        if (load_file(o.client_js, &client_js) < 0) {
            rlogf(RLOG_ERROR, "Cannot read --client-js", "{\"path\":\"%s\"}", rlog_esc(o.client_js));
            goto out;
        }
        http_route(d.http, "/socket.io/socket.io.js", route_client_js, &client_js, 0);
        http_route(d.http, "/socket.io/socket.io.min.js", route_client_js, &client_js, 0);
    }
    http_route(d.http, ec.path, route_engine, eio, o.max_payload);
    http_route(d.http, "/health", status_health, &d.status, 0);
    http_route(d.http, "/metrics", status_metrics, &d.status, 0);
    if (lv) /* laravel-echo-server's GET / -> OK; last: "/" matches every path left */
        laravel_serve_root(lv, d.http);
    status_tick(d.l, &d);

    rlogf(RLOG_INFO, "Socket.IO server running",
          "{\"port\":%u,\"db\":\"%s\",\"node\":\"%s\",\"version\":\"%s\",\"pid\":%d}",
          http_server_port(d.http), rlog_esc(dblog), rlog_esc(node_id), PACKAGE_VERSION, (int)getpid());
    loop_run(d.l);
    rc = 0;

out:
    /* sio closes what is left and the platform records the disconnects; the store then
     * commits them. Completions it still owes the platform (a commit that outlasted the
     * grace) run in store_close and only free their state (platform_free). */
    if (d.sio)
        sio_server_free(d.sio);
    laravel_free(lv);
    adminui_free(d.admin); /* after sio: its sockets are gone */
    cluster_free(d.cluster); /* after sio: the acks it waited for are gone with the sockets */
    platform_free(d.plat);
    if (d.http)
        http_server_free(d.http);
    if (d.st)
        store_close(d.st);
    if (rc == 0)
        rlog(RLOG_INFO, "Stopped", NULL);
    loop_free(d.l);
    free(secret);
    free(client_js.data);
    laravel_config_free(&lc);
    free(err);
    options_free(&o);
    rlog_close();
    return rc;
}
