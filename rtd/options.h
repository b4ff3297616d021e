/* options.h: rtd's command line (every flag is documented in man/rtd.8).
 *
 * Flags win over the guide's environment variables (SOCKET_PORT, DATABASE_PATH,
 * CORS_ORIGINS, REDIS_URL, REDIS_KEY), which win over the defaults. Parsing never exits: it returns what to do.
 * Ownership: strings point into argv or the environment, except cors_origins, a malloc'ed
 * NULL-terminated array freed by options_free(). */
#ifndef RTD_OPTIONS_H
#define RTD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "rtd/lib/log.h"

struct rtd_options {
    unsigned port;
    const char *bind;
    const char *db;
    const char *node_id;      /* --node-id; NULL: host:port (main.c) */
    const char **cors_origins;
    size_t n_cors;
    unsigned ping_interval_ms;
    unsigned ping_timeout_ms;
    size_t max_payload;
    unsigned connect_timeout_ms;
    size_t max_message_bytes;
    bool presence;
    unsigned recovery_window_ms; /* --recovery-window; 0: off */
    unsigned recovery_max_events; /* --recovery-max-events; 0: 1000 */
    bool sync_full;
    enum rlog_level log_level;
    const char *log_file;
    const char *static_dir;
    const char *client_js;    /* served at /socket.io/socket.io.js when set */
    unsigned max_connections;
    unsigned max_connections_per_ip;
    const char *trust_proxy;  /* peers whose X-Forwarded-For / X-Real-IP are believed, or NULL */
    double rate_limit;        /* events per second per socket; 0 = unlimited */
    unsigned rate_burst;
    unsigned max_rooms;
    unsigned request_timeout_s;
    unsigned retention_days;
    size_t max_buffered;
    size_t store_queue_bytes;
    unsigned send_threads;    /* --send-threads: sendpool helpers, 0: none */
    bool allow_eio3;
    const char *auth_secret_file;
    const char *backup_dest;  /* --backup: copy the database and exit */
    const char *redis_url;    /* --redis: join a cluster over this Redis; NULL: alone */
    const char *redis_key;    /* --redis-key: the adapter's channel prefix (socket.io) */
    const char *laravel_config; /* --laravel-config: laravel-echo-server.json, or NULL */
    bool port_given, bind_given; /* --port / --bind on the command line (they win over it) */
    bool presence_given;         /* --presence given: else off with --laravel-config */
    int admin_ui;             /* --admin-ui: 0 off, 1 production, 2 development (adminui.h) */
    bool admin_ui_readonly;   /* --admin-ui-readonly */
};

enum options_result { OPTIONS_RUN = 0, OPTIONS_EXIT_OK = 1, OPTIONS_EXIT_USAGE = 2 };

/* Fills o from argv and the environment. Messages (help, version, errors) go to out/err. */
enum options_result options_parse(int argc, char **argv, struct rtd_options *o, FILE *out,
                                  FILE *err);
void options_free(struct rtd_options *o);

#endif
