/* laravel_config.h: laravel-echo-server.json (--laravel-config), with the keys, defaults and
 * LARAVEL_ECHO_SERVER_* overrides of laravel-echo-server 1.6.3 (src/echo-server.ts,
 * src/cli/cli.ts). Unknown keys are warned about; bad values refuse the start. */
#ifndef RTD_LARAVEL_CONFIG_H
#define RTD_LARAVEL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct laravel_client {
    char *app_id;
    char *key;
    char *secret; /* NULL: none (Pusher-signed requests refused) */
};

struct laravel_config {
    char **auth_hosts; /* at least one: "http://localhost" */
    size_t n_auth_hosts;
    char *auth_endpoint; /* "/broadcasting/auth" */
    struct laravel_client *clients;
    size_t n_clients;
    char *database;      /* "redis" */
    char *redis_host;    /* "127.0.0.1" */
    int redis_port;      /* 6379 */
    char *redis_password; /* NULL: none */
    int redis_db;
    char *key_prefix;    /* "" */
    bool dev_mode;
    char *host;          /* NULL: every interface */
    unsigned port;       /* 6001 */
    char *protocol;      /* "http" */
    bool sub_http, sub_redis;
    bool allow_cors;
    char *allow_origin, *allow_methods, *allow_headers;
    char *headers_json;  /* the "headers" object as JSON text, or NULL */
};

/* Returns 0, or -1 with a malloc'ed message in *err. Warnings go to the log. */
int laravel_config_load(const char *path, struct laravel_config *c, char **err);
void laravel_config_free(struct laravel_config *c);

#endif
