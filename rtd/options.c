/* options.c: parsing rtd's flags (see options.h and man/rtd.8). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtd/cluster/redis_url.h"
#include "rtd/lib/util.h"
#include "rtd/options.h"

enum {
    OPT_PORT = 256,
    OPT_BIND,
    OPT_DB,
    OPT_CORS,
    OPT_PING_INTERVAL,
    OPT_PING_TIMEOUT,
    OPT_MAX_PAYLOAD,
    OPT_CONNECT_TIMEOUT,
    OPT_MAX_MESSAGE,
    OPT_PRESENCE,
    OPT_SYNC,
    OPT_LOG_LEVEL,
    OPT_LOG_FILE,
    OPT_STATIC_DIR,
    OPT_CLIENT_JS,
    OPT_MAX_CONN,
    OPT_MAX_CONN_IP,
    OPT_TRUST_PROXY,
    OPT_RATE_LIMIT,
    OPT_RATE_BURST,
    OPT_MAX_ROOMS,
    OPT_REQUEST_TIMEOUT,
    OPT_RETENTION,
    OPT_MAX_BUFFERED,
    OPT_STORE_QUEUE_BYTES,
    OPT_SEND_THREADS,
    OPT_ALLOW_EIO3,
    OPT_AUTH_SECRET,
    OPT_BACKUP,
    OPT_NODE_ID,
    OPT_REDIS,
    OPT_REDIS_KEY,
    OPT_RECOVERY_WINDOW,
    OPT_RECOVERY_MAX,
    OPT_LARAVEL_CONFIG,
    OPT_ADMIN_UI,
    OPT_ADMIN_UI_RO,
    OPT_VERSION,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, OPT_PORT},
    {"bind", required_argument, NULL, OPT_BIND},
    {"db", required_argument, NULL, OPT_DB},
    {"cors-origin", required_argument, NULL, OPT_CORS},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
    {"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"max-message-bytes", required_argument, NULL, OPT_MAX_MESSAGE},
    {"presence", required_argument, NULL, OPT_PRESENCE},
    {"recovery-window", required_argument, NULL, OPT_RECOVERY_WINDOW},
    {"recovery-max-events", required_argument, NULL, OPT_RECOVERY_MAX},
    {"sync", required_argument, NULL, OPT_SYNC},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"static-dir", required_argument, NULL, OPT_STATIC_DIR},
    {"client-js", required_argument, NULL, OPT_CLIENT_JS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONN_IP},
    {"trust-proxy", required_argument, NULL, OPT_TRUST_PROXY},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"rate-burst", required_argument, NULL, OPT_RATE_BURST},
    {"max-rooms", required_argument, NULL, OPT_MAX_ROOMS},
    {"request-timeout", required_argument, NULL, OPT_REQUEST_TIMEOUT},
    {"retention-days", required_argument, NULL, OPT_RETENTION},
    {"max-buffered", required_argument, NULL, OPT_MAX_BUFFERED},
    {"store-queue-bytes", required_argument, NULL, OPT_STORE_QUEUE_BYTES},
    {"send-threads", required_argument, NULL, OPT_SEND_THREADS},
    {"allow-eio3", no_argument, NULL, OPT_ALLOW_EIO3},
    {"auth-secret", required_argument, NULL, OPT_AUTH_SECRET},
    {"backup", required_argument, NULL, OPT_BACKUP},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-key", required_argument, NULL, OPT_REDIS_KEY},
    {"laravel-config", required_argument, NULL, OPT_LARAVEL_CONFIG},
    {"admin-ui", required_argument, NULL, OPT_ADMIN_UI},
    {"admin-ui-readonly", no_argument, NULL, OPT_ADMIN_UI_RO},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static const char usage_text[] =
    "Usage: rtd [OPTION]...\n"
    "The realtime daemon: Engine.IO v4 and Socket.IO v5 over long-polling and WebSocket,\n"
    "persisting connections and messages into SQLite or PostgreSQL.\n"
    "\n"
    "  --port N                  listen on port N (3001; env SOCKET_PORT)\n"
    "  --bind ADDR               listen on this IPv4/IPv6 address only (all)\n"
    "  --db PATH|URL             SQLite database file, or a PostgreSQL URL\n"
    "                            (postgresql://... or postgres://...; PG* env honoured)\n"
    "                            (./socket_events.db; env DATABASE_PATH)\n"
    "  --node-id NAME            this node's name in a shared PostgreSQL database\n"
    "                            (HOSTNAME:PORT; env RTD_NODE_ID)\n"
    "  --cors-origin ORIGIN      allow this browser origin; repeatable; * for any\n"
    "                            (none; env CORS_ORIGINS, comma-separated)\n"
    "  --ping-interval MS        heartbeat interval (25000)\n"
    "  --ping-timeout MS         heartbeat answer deadline (20000)\n"
    "  --max-payload BYTES       largest HTTP body or WebSocket message (1000000)\n"
    "  --connect-timeout MS      close sessions that join no namespace by then (45000)\n"
    "  --max-message-bytes N     longest send-message text in bytes (10000)\n"
    "  --presence on|off         user-connected/user-disconnected broadcasts (on; off\n"
    "                            with --laravel-config unless given)\n"
    "  --recovery-window MS      connection-state recovery: pid in CONNECT, offset as the\n"
    "                            last argument of receive-message (0: off, the default)\n"
    "  --recovery-max-events N   longest replay; beyond it a fresh session (1000)\n"
    "  --sync normal|full        SQLite synchronous level (normal)\n"
    "  --log-level LEVEL         error, warn, info or debug (info)\n"
    "  --log-file PATH           log to PATH instead of stderr; SIGHUP reopens it\n"
    "  --static-dir DIR          directory holding test.html (" RTD_DATADIR "/static)\n"
    "  --client-js FILE          serve FILE (the Socket.IO browser client) at\n"
    "                            /socket.io/socket.io.js (none)\n"
    "  --max-connections N       open connections at most (10000)\n"
    "  --max-connections-per-ip N  open connections per client address (0: no limit)\n"
    "  --trust-proxy ADDR[,ADDR] believe X-Forwarded-For / X-Real-IP from these peers (none)\n"
    "  --rate-limit N            events per second per socket, 0 for none (20)\n"
    "  --rate-burst N            events a socket may send at once (40)\n"
    "  --max-rooms N             rooms one socket may join (50)\n"
    "  --request-timeout S       idle or slow HTTP request deadline in seconds (30)\n"
    "  --retention-days N        delete messages older than N days, 0 keeps all (90)\n"
    "  --max-buffered BYTES      unsent output per client before it is dropped (4194304)\n"
    "  --store-queue-bytes BYTES  writes waiting for the database before sends are\n"
    "                            refused, in bytes (67108864)\n"
    "  --send-threads N          threads helping the loop write to many WebSockets\n"
    "                            at once, 0 for none (0)\n"
    "  --allow-eio3              also accept Engine.IO v3 / Socket.IO 2.x clients\n"
    "  --auth-secret FILE        require an HS256 JWT signed with FILE's secret in auth.token\n"
    "  --redis URL               join a cluster of rtd and Node.js socket.io nodes over\n"
    "                            Redis: redis://[user:password@]host[:port][/db] or\n"
    "                            unix:///path (none; env REDIS_URL)\n"
    "  --redis-key PREFIX        the Redis adapter's channel prefix (socket.io;\n"
    "                            env REDIS_KEY)\n"
    "  --laravel-config FILE     serve Laravel Echo as laravel-echo-server does, with\n"
    "                            the settings of its laravel-echo-server.json (none)\n"
    "  --admin-ui MODE           the Socket.IO Admin UI's /admin namespace, logins being\n"
    "                            admin-fcgi's admins: production, development or off (off)\n"
    "  --admin-ui-readonly       the Admin UI may look but not act (no commands)\n"
    "  --backup DEST             copy the SQLite database to DEST (online, consistent)\n"
    "                            and exit (PostgreSQL: use pg_dump)\n"
    "  --version                 print the version and exit\n"
    "  --help                    print this help and exit\n";

static int bad(FILE *err, const char *flag, const char *value, const char *why)
{
    fprintf(err, "rtd: invalid value '%s' for --%s: %s\n", value, flag, why);
    return -1;
}

static int num(FILE *err, const char *flag, const char *v, long long min, long long max,
               long long *out)
{
    if (util_parse_int(v, min, max, out) < 0) {
        char why[96];
        snprintf(why, sizeof why, "expected an integer from %lld to %lld", min, max);
        return bad(err, flag, v, why);
    }
    return 0;
}

static int add_origin(struct rtd_options *o, const char *origin)
{
    const char **arr = realloc(o->cors_origins, (o->n_cors + 2) * sizeof *arr);
    if (!arr)
        return -1;
    o->cors_origins = arr;
    arr[o->n_cors++] = origin;
    arr[o->n_cors] = NULL;
    return 0;
}

static char *env_origins; /* CORS_ORIGINS, split in place */

static void defaults(struct rtd_options *o)
{
    memset(o, 0, sizeof *o);
    o->port = 3001;
    o->db = "./socket_events.db";
    o->ping_interval_ms = 25000;
    o->ping_timeout_ms = 20000;
    o->max_payload = 1000000;
    o->connect_timeout_ms = 45000;
    o->max_message_bytes = 10000;
    o->presence = true;
    o->log_level = RLOG_INFO;
    o->static_dir = RTD_DATADIR "/static";
    o->max_connections = 10000;
    o->rate_limit = 20;
    o->rate_burst = 40;
    o->max_rooms = 50;
    o->request_timeout_s = 30;
    o->retention_days = 90;
    o->max_buffered = 4u << 20;
    o->store_queue_bytes = 64u << 20;
    o->redis_key = "socket.io";
}

static int check_redis_url(FILE *err, const char *flag, const char *url)
{
    struct redis_url u;
    const char *why = NULL;
    if (redis_url_parse(url, &u, &why) < 0) {
        fprintf(err, "rtd: invalid value '%s' for %s: %s\n", url, flag, why);
        return -1;
    }
    redis_url_free(&u);
    return 0;
}

static int check_redis_key(FILE *err, const char *flag, const char *key)
{
    if (!*key || strlen(key) > 200 || strpbrk(key, "*?[]\\")) {
        fprintf(err, "rtd: invalid value '%s' for %s: expected 1 to 200 characters, no glob "
                     "characters\n", key, flag);
        return -1;
    }
    return 0;
}

static int from_env(struct rtd_options *o, FILE *err)
{
    long long v;
    const char *port = getenv("SOCKET_PORT");
    if (port && *port) {
        if (util_parse_int(port, 0, 65535, &v) < 0) {
            fprintf(err, "rtd: invalid SOCKET_PORT '%s'\n", port);
            return -1;
        }
        o->port = (unsigned)v;
    }
    const char *node = getenv("RTD_NODE_ID");
    if (node && *node)
        o->node_id = node;
    const char *db = getenv("DATABASE_PATH");
    if (db && *db)
        o->db = db;
    const char *redis = getenv("REDIS_URL");
    if (redis && *redis) {
        if (check_redis_url(err, "REDIS_URL", redis) < 0)
            return -1;
        o->redis_url = redis;
    }
    const char *key = getenv("REDIS_KEY");
    if (key && *key) {
        if (check_redis_key(err, "REDIS_KEY", key) < 0)
            return -1;
        o->redis_key = key;
    }
    const char *origins = getenv("CORS_ORIGINS");
    if (origins && *origins) {
        free(env_origins);
        env_origins = strdup(origins);
        if (!env_origins)
            return -1;
        for (char *save = NULL, *t = strtok_r(env_origins, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (*t && add_origin(o, t) < 0)
                return -1;
        }
    }
    return 0;
}

enum options_result options_parse(int argc, char **argv, struct rtd_options *o, FILE *out,
                                  FILE *err)
{
    defaults(o);
    if (from_env(o, err) < 0)
        return OPTIONS_EXIT_USAGE;
    bool cli_cors = false;
    long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
        const char *a = optarg;
        int r = 0;
        switch (c) {
        case OPT_PORT:
            r = num(err, "port", a, 0, 65535, &v);
            o->port = (unsigned)v;
            o->port_given = true;
            break;
        case OPT_BIND: {
            unsigned char addr[16];
            if (inet_pton(AF_INET, a, addr) != 1 && inet_pton(AF_INET6, a, addr) != 1)
                r = bad(err, "bind", a, "expected an IPv4 or IPv6 address");
            o->bind = a;
            o->bind_given = true;
            break;
        }
        case OPT_DB:
            if (!*a)
                r = bad(err, "db", a, "empty path");
            o->db = a;
            break;
        case OPT_NODE_ID:
            if (!*a || strlen(a) > 200 || strpbrk(a, "\"\\\n\r\t"))
                r = bad(err, "node-id", a, "expected 1 to 200 characters, no quotes or controls");
            o->node_id = a;
            break;
        case OPT_CORS:
            if (!cli_cors) { /* flags replace CORS_ORIGINS */
                o->n_cors = 0;
                cli_cors = true;
            }
            if (!*a)
                r = bad(err, "cors-origin", a, "empty origin");
            else if (add_origin(o, a) < 0)
                r = -1;
            break;
        case OPT_PING_INTERVAL:
            r = num(err, "ping-interval", a, 10, 3600000, &v);
            o->ping_interval_ms = (unsigned)v;
            break;
        case OPT_RECOVERY_WINDOW:
            r = num(err, "recovery-window", a, 0, 86400000, &v);
            o->recovery_window_ms = (unsigned)v;
            break;
        case OPT_RECOVERY_MAX:
            r = num(err, "recovery-max-events", a, 1, 100000, &v);
            o->recovery_max_events = (unsigned)v;
            break;
        case OPT_PING_TIMEOUT:
            r = num(err, "ping-timeout", a, 10, 3600000, &v);
            o->ping_timeout_ms = (unsigned)v;
            break;
        case OPT_MAX_PAYLOAD:
            r = num(err, "max-payload", a, 1024, 100000000, &v);
            o->max_payload = (size_t)v;
            break;
        case OPT_CONNECT_TIMEOUT:
            r = num(err, "connect-timeout", a, 0, 3600000, &v);
            o->connect_timeout_ms = (unsigned)v;
            break;
        case OPT_MAX_MESSAGE:
            r = num(err, "max-message-bytes", a, 1, 10000000, &v);
            o->max_message_bytes = (size_t)v;
            break;
        case OPT_PRESENCE:
            o->presence_given = true;
            if (!strcmp(a, "on"))
                o->presence = true;
            else if (!strcmp(a, "off"))
                o->presence = false;
            else
                r = bad(err, "presence", a, "expected on or off");
            break;
        case OPT_SYNC:
            if (!strcmp(a, "normal"))
                o->sync_full = false;
            else if (!strcmp(a, "full"))
                o->sync_full = true;
            else
                r = bad(err, "sync", a, "expected normal or full");
            break;
        case OPT_LOG_LEVEL:
            if (rlog_parse_level(a, &o->log_level) < 0)
                r = bad(err, "log-level", a, "expected error, warn, info or debug");
            break;
        case OPT_LOG_FILE:
            o->log_file = a;
            break;
        case OPT_STATIC_DIR:
            o->static_dir = a;
            break;
        case OPT_CLIENT_JS:
            o->client_js = a;
            break;
        case OPT_MAX_CONN:
            r = num(err, "max-connections", a, 1, 1000000, &v);
            o->max_connections = (unsigned)v;
            break;
        case OPT_MAX_CONN_IP:
            r = num(err, "max-connections-per-ip", a, 0, 1000000, &v);
            o->max_connections_per_ip = (unsigned)v;
            break;
        case OPT_TRUST_PROXY: {
            /* a comma-separated list of IPv4 / IPv6 addresses, nothing else */
            const char *p = a;
            int count = 0;
            while (r == 0) {
                if (++count > 16) {
                    r = bad(err, "trust-proxy", a, "at most 16 addresses");
                    break;
                }
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                char one[64];
                unsigned char addr[16];
                if (n == 0 || n >= sizeof one) {
                    r = bad(err, "trust-proxy", a, "expected IPv4 or IPv6 addresses, comma-separated");
                    break;
                }
                memcpy(one, p, n);
                one[n] = '\0';
                if (inet_pton(AF_INET, one, addr) != 1 && inet_pton(AF_INET6, one, addr) != 1)
                    r = bad(err, "trust-proxy", a, "expected IPv4 or IPv6 addresses, comma-separated");
                if (!end)
                    break;
                p = end + 1;
            }
            o->trust_proxy = a;
            break;
        }
        case OPT_RATE_LIMIT: {
            char *end;
            errno = 0;
            double d = strtod(a, &end);
            if (errno || end == a || *end || d < 0 || d > 1e9)
                r = bad(err, "rate-limit", a, "expected a number of events per second >= 0");
            o->rate_limit = d;
            break;
        }
        case OPT_RATE_BURST:
            r = num(err, "rate-burst", a, 1, 1000000000, &v);
            o->rate_burst = (unsigned)v;
            break;
        case OPT_MAX_ROOMS:
            r = num(err, "max-rooms", a, 0, 1000000, &v);
            o->max_rooms = (unsigned)v;
            break;
        case OPT_REQUEST_TIMEOUT:
            r = num(err, "request-timeout", a, 1, 86400, &v);
            o->request_timeout_s = (unsigned)v;
            break;
        case OPT_RETENTION:
            r = num(err, "retention-days", a, 0, 36500, &v);
            o->retention_days = (unsigned)v;
            break;
        case OPT_MAX_BUFFERED:
            r = num(err, "max-buffered", a, 65536, 1LL << 34, &v);
            o->max_buffered = (size_t)v;
            break;
        case OPT_STORE_QUEUE_BYTES:
            r = num(err, "store-queue-bytes", a, 65536, 1LL << 34, &v);
            o->store_queue_bytes = (size_t)v;
            break;
        case OPT_SEND_THREADS:
            r = num(err, "send-threads", a, 0, 64, &v);
            o->send_threads = (unsigned)v;
            break;
        case OPT_ALLOW_EIO3:
            o->allow_eio3 = true;
            break;
        case OPT_AUTH_SECRET:
            o->auth_secret_file = a;
            break;
        case OPT_BACKUP:
            o->backup_dest = a;
            break;
        case OPT_REDIS:
            r = check_redis_url(err, "--redis", a);
            o->redis_url = a;
            break;
        case OPT_REDIS_KEY:
            r = check_redis_key(err, "--redis-key", a);
            o->redis_key = a;
            break;
        case OPT_LARAVEL_CONFIG:
            if (!*a)
                r = bad(err, "laravel-config", a, "empty path");
            o->laravel_config = a;
            break;
        case OPT_ADMIN_UI:
            if (!strcmp(a, "off"))
                o->admin_ui = 0;
            else if (!strcmp(a, "production"))
                o->admin_ui = 1;
            else if (!strcmp(a, "development"))
                o->admin_ui = 2;
            else
                r = bad(err, "admin-ui", a, "expected production, development or off");
            break;
        case OPT_ADMIN_UI_RO:
            o->admin_ui_readonly = true;
            break;
        case OPT_VERSION:
            fprintf(out, "rtd %s\n", PACKAGE_VERSION);
            return OPTIONS_EXIT_OK;
        case OPT_HELP:
            fputs(usage_text, out);
            return OPTIONS_EXIT_OK;
        case ':':
            fprintf(err, "rtd: option '%s' needs a value\nTry 'rtd --help'.\n", argv[optind - 1]);
            return OPTIONS_EXIT_USAGE;
        default:
            fprintf(err, "rtd: unknown option '%s'\nTry 'rtd --help'.\n", argv[optind - 1]);
            return OPTIONS_EXIT_USAGE;
        }
        if (r < 0)
            return OPTIONS_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(err, "rtd: unexpected argument '%s'\nTry 'rtd --help'.\n", argv[optind]);
        return OPTIONS_EXIT_USAGE;
    }
    return OPTIONS_RUN;
}

void options_free(struct rtd_options *o)
{
    free(o->cors_origins);
    o->cors_origins = NULL;
    free(env_origins);
    env_origins = NULL;
}
