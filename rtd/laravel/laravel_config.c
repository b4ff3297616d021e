/* laravel_config.c: reading laravel-echo-server.json (see laravel_config.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rtd/laravel/laravel_config.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        m = NULL;
    va_end(ap);
    free(*err);
    *err = m;
    return -1;
}

static int set_str(char **dst, const char *v)
{
    char *d = v ? strdup(v) : NULL;
    if (v && !d)
        return -1;
    free(*dst);
    *dst = d;
    return 0;
}

static void warn_unknown(const char *where, const char *key)
{
    rlogf(RLOG_WARN, "Unknown key in the Laravel config: ignored", "{\"key\":\"%s%s\"}", rlog_esc(where),
          rlog_esc(key));
}

/* A string value, or NULL allowed when nullable. */
static int want_str(json_object *v, const char *key, bool nullable, char **dst, char **err)
{
    if (!v && nullable)
        return set_str(dst, NULL);
    if (!json_object_is_type(v, json_type_string))
        return fail(err, "%s: expected a string%s", key, nullable ? " or null" : "");
    return set_str(dst, json_object_get_string(v));
}

static int want_bool(json_object *v, const char *key, bool *dst, char **err)
{
    if (!json_object_is_type(v, json_type_boolean))
        return fail(err, "%s: expected true or false", key);
    *dst = json_object_get_boolean(v);
    return 0;
}

/* The reference sanitises the port with /([0-9]{2,5})[\/]?$/: "6001" and "http://x:6001/"
 * both give 6001. */
static int parse_port(const char *s, unsigned *out)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '/')
        n--;
    size_t e = n;
    while (n && s[n - 1] >= '0' && s[n - 1] <= '9' && e - n < 5)
        n--;
    if (e - n < 2)
        return -1;
    char d[8];
    memcpy(d, s + n, e - n);
    d[e - n] = '\0';
    long long v;
    if (util_parse_int(d, 0, 65535, &v) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int want_port(json_object *v, const char *key, unsigned *dst, char **err)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t p = json_object_get_int64(v);
        if (p < 0 || p > 65535)
            return fail(err, "%s: expected a port from 0 to 65535", key);
        *dst = (unsigned)p;
        return 0;
    }
    if (json_object_is_type(v, json_type_string) &&
        parse_port(json_object_get_string(v), dst) == 0)
        return 0;
    return fail(err, "%s: expected a port number", key);
}

static int load_redis(json_object *r, struct laravel_config *c, char **err)
{
    if (!json_object_is_type(r, json_type_object))
        return fail(err, "databaseConfig.redis: expected an object");
    json_object_object_foreach(r, k, v)
    {
        if (!strcmp(k, "host")) {
            if (want_str(v, "databaseConfig.redis.host", false, &c->redis_host, err) < 0)
                return -1;
        } else if (!strcmp(k, "port")) {
            unsigned p;
            if (want_port(v, "databaseConfig.redis.port", &p, err) < 0)
                return -1;
            c->redis_port = (int)p;
        } else if (!strcmp(k, "password")) {
            if (want_str(v, "databaseConfig.redis.password", true, &c->redis_password, err) < 0)
                return -1;
        } else if (!strcmp(k, "db")) {
            int64_t db = json_object_get_int64(v);
            if (!json_object_is_type(v, json_type_int) || db < 0 || db > 65535)
                return fail(err, "databaseConfig.redis.db: expected a database number");
            c->redis_db = (int)db;
        } else if (!strcmp(k, "keyPrefix")) {
            if (want_str(v, "databaseConfig.redis.keyPrefix", false, &c->key_prefix, err) < 0)
                return -1;
            if (strlen(c->key_prefix) > 200)
                return fail(err, "databaseConfig.redis.keyPrefix: longer than 200 characters");
        } else {
            warn_unknown("databaseConfig.redis.", k);
        }
    }
    return 0;
}

static int load_clients(json_object *a, struct laravel_config *c, char **err)
{
    if (!json_object_is_type(a, json_type_array))
        return fail(err, "clients: expected an array of {appId, key}");
    size_t n = json_object_array_length(a);
    c->clients = calloc(n ? n : 1, sizeof *c->clients);
    if (!c->clients)
        return fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        struct laravel_client *cl = &c->clients[i];
        c->n_clients = i + 1;
        json_object *id, *key, *secret;
        if (!json_object_is_type(e, json_type_object) ||
            !json_object_object_get_ex(e, "appId", &id) ||
            !json_object_object_get_ex(e, "key", &key) ||
            !json_object_is_type(id, json_type_string) ||
            !json_object_is_type(key, json_type_string) || !*json_object_get_string(id) ||
            !*json_object_get_string(key))
            return fail(err, "clients[%zu]: expected {\"appId\": \"...\", \"key\": \"...\"}", i);
        if (set_str(&cl->app_id, json_object_get_string(id)) < 0 ||
            set_str(&cl->key, json_object_get_string(key)) < 0)
            return fail(err, "out of memory");
        if (json_object_object_get_ex(e, "secret", &secret) &&
            want_str(secret, "clients[].secret", true, &cl->secret, err) < 0)
            return -1;
    }
    return 0;
}

static int load_auth_host(json_object *v, struct laravel_config *c, char **err)
{
    if (json_object_is_type(v, json_type_string)) {
        c->auth_hosts[0] = strdup(json_object_get_string(v));
        c->n_auth_hosts = 1;
        return c->auth_hosts[0] ? 0 : fail(err, "out of memory");
    }
    if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
        return fail(err, "authHost: expected a URL or an array of URLs");
    size_t n = json_object_array_length(v);
    char **h = calloc(n, sizeof *h);
    if (!h)
        return fail(err, "out of memory");
    for (size_t i = 0; i < c->n_auth_hosts; i++)
        free(c->auth_hosts[i]);
    free(c->auth_hosts);
    c->auth_hosts = h;
    c->n_auth_hosts = n;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string))
            return fail(err, "authHost[%zu]: expected a URL", i);
        if (!(h[i] = strdup(json_object_get_string(e))))
            return fail(err, "out of memory");
    }
    return 0;
}

static int check_url(const char *key, const char *u, char **err)
{
    if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
        return fail(err, "%s: '%s' is not an http:// or https:// URL", key, u);
    return 0;
}

static int load_object(json_object *root, struct laravel_config *c, char **err)
{
    json_object_object_foreach(root, k, v)
    {
        int r = 0;
        if (!strcmp(k, "authHost")) {
            free(c->auth_hosts[0]);
            c->auth_hosts[0] = NULL;
            r = load_auth_host(v, c, err);
        } else if (!strcmp(k, "authEndpoint")) {
            r = want_str(v, "authEndpoint", false, &c->auth_endpoint, err);
        } else if (!strcmp(k, "clients")) {
            r = load_clients(v, c, err);
        } else if (!strcmp(k, "database")) {
            r = want_str(v, "database", false, &c->database, err);
        } else if (!strcmp(k, "databaseConfig")) {
            if (!json_object_is_type(v, json_type_object))
                return fail(err, "databaseConfig: expected an object");
            json_object_object_foreach(v, dk, dv)
            {
                if (!strcmp(dk, "redis"))
                    r = load_redis(dv, c, err);
                else if (strcmp(dk, "sqlite") && strcmp(dk, "publishPresence"))
                    warn_unknown("databaseConfig.", dk);
                if (r < 0)
                    return -1;
            }
        } else if (!strcmp(k, "devMode")) {
            r = want_bool(v, "devMode", &c->dev_mode, err);
        } else if (!strcmp(k, "host")) {
            r = want_str(v, "host", true, &c->host, err);
        } else if (!strcmp(k, "port")) {
            r = want_port(v, "port", &c->port, err);
        } else if (!strcmp(k, "protocol")) {
            r = want_str(v, "protocol", false, &c->protocol, err);
        } else if (!strcmp(k, "subscribers")) {
            if (!json_object_is_type(v, json_type_object))
                return fail(err, "subscribers: expected {\"http\": bool, \"redis\": bool}");
            json_object_object_foreach(v, sk, sv)
            {
                if (!strcmp(sk, "http"))
                    r = want_bool(sv, "subscribers.http", &c->sub_http, err);
                else if (!strcmp(sk, "redis"))
                    r = want_bool(sv, "subscribers.redis", &c->sub_redis, err);
                else
                    warn_unknown("subscribers.", sk);
                if (r < 0)
                    return -1;
            }
        } else if (!strcmp(k, "apiOriginAllow")) {
            if (!json_object_is_type(v, json_type_object))
                return fail(err, "apiOriginAllow: expected an object");
            json_object_object_foreach(v, ak, av)
            {
                if (!strcmp(ak, "allowCors"))
                    r = want_bool(av, "apiOriginAllow.allowCors", &c->allow_cors, err);
                else if (!strcmp(ak, "allowOrigin"))
                    r = want_str(av, "apiOriginAllow.allowOrigin", false, &c->allow_origin, err);
                else if (!strcmp(ak, "allowMethods"))
                    r = want_str(av, "apiOriginAllow.allowMethods", false, &c->allow_methods, err);
                else if (!strcmp(ak, "allowHeaders"))
                    r = want_str(av, "apiOriginAllow.allowHeaders", false, &c->allow_headers, err);
                else
                    warn_unknown("apiOriginAllow.", ak);
                if (r < 0)
                    return -1;
            }
        } else if (!strcmp(k, "headers")) {
            if (!json_object_is_type(v, json_type_object))
                return fail(err, "headers: expected an object of header names and values");
            r = set_str(&c->headers_json, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        } else if (!strcmp(k, "socketio") || !strcmp(k, "sslCertPath") ||
                   !strcmp(k, "sslKeyPath") || !strcmp(k, "sslCertChainPath") ||
                   !strcmp(k, "sslPassphrase")) {
            /* checked with protocol below; socketio options are rtd's own flags */
        } else {
            warn_unknown("", k);
        }
        if (r < 0)
            return -1;
    }
    return 0;
}

/* LARAVEL_ECHO_SERVER_*: a value "${OTHER}" is looked up in the environment. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v && v[0] == '$' && v[1] == '{') {
        size_t n = strlen(v);
        if (n > 3 && v[n - 1] == '}' && n < 260) {
            char other[260];
            memcpy(other, v + 2, n - 3);
            other[n - 3] = '\0';
            v = getenv(other);
        }
    }
    return v && *v ? v : NULL;
}

static int load_env(struct laravel_config *c, char **err)
{
    const char *v;
    if ((v = env("LARAVEL_ECHO_SERVER_AUTH_HOST"))) {
        for (size_t i = 1; i < c->n_auth_hosts; i++)
            free(c->auth_hosts[i]);
        c->n_auth_hosts = 1;
        if (set_str(&c->auth_hosts[0], v) < 0)
            return fail(err, "out of memory");
    }
    if ((v = env("LARAVEL_ECHO_SERVER_DEBUG")))
        c->dev_mode = !strcmp(v, "true");
    if ((v = env("LARAVEL_ECHO_SERVER_HOST")) && set_str(&c->host, v) < 0)
        return fail(err, "out of memory");
    if ((v = env("LARAVEL_ECHO_SERVER_PORT")) && parse_port(v, &c->port) < 0)
        return fail(err, "LARAVEL_ECHO_SERVER_PORT: '%s' is not a port", v);
    if ((v = env("LARAVEL_ECHO_SERVER_REDIS_HOST")) && set_str(&c->redis_host, v) < 0)
        return fail(err, "out of memory");
    if ((v = env("LARAVEL_ECHO_SERVER_REDIS_PORT"))) {
        unsigned p;
        if (parse_port(v, &p) < 0)
            return fail(err, "LARAVEL_ECHO_SERVER_REDIS_PORT: '%s' is not a port", v);
        c->redis_port = (int)p;
    }
    if ((v = env("LARAVEL_ECHO_SERVER_REDIS_PASSWORD")) && set_str(&c->redis_password, v) < 0)
        return fail(err, "out of memory");
    if ((v = env("LARAVEL_ECHO_SERVER_PROTO")) && set_str(&c->protocol, v) < 0)
        return fail(err, "out of memory");
    return 0;
}

int laravel_config_load(const char *path, struct laravel_config *c, char **err)
{
    memset(c, 0, sizeof *c);
    *err = NULL;
    c->auth_hosts = calloc(1, sizeof *c->auth_hosts);
    if (!c->auth_hosts || set_str(&c->auth_endpoint, "/broadcasting/auth") < 0 ||
        set_str(&c->database, "redis") < 0 || set_str(&c->redis_host, "127.0.0.1") < 0 ||
        set_str(&c->key_prefix, "") < 0 || set_str(&c->protocol, "http") < 0 ||
        set_str(&c->allow_origin, "") < 0 || set_str(&c->allow_methods, "") < 0 ||
        set_str(&c->allow_headers, "") < 0)
        return fail(err, "out of memory");
    c->n_auth_hosts = 1;
    c->redis_port = 6379;
    c->port = 6001;
    c->sub_http = c->sub_redis = true;
    json_object *root = json_object_from_file(path);
    if (!root) {
        const char *why = json_util_get_last_err();
        return fail(err, "cannot read %s: %s", path, why ? why : "not JSON");
    }
    int r = -1;
    if (!json_object_is_type(root, json_type_object))
        fail(err, "%s: expected a JSON object", path);
    else if (load_object(root, c, err) == 0 && load_env(c, err) == 0)
        r = 0;
    json_object_put(root);
    if (r < 0)
        return -1;
    if (!c->auth_hosts[0]) { /* authHost unset or null: the host is used */
        char u[300];
        snprintf(u, sizeof u, "http://%s", c->host ? c->host : "localhost");
        if (set_str(&c->auth_hosts[0], u) < 0)
            return fail(err, "out of memory");
    }
    for (size_t i = 0; i < c->n_auth_hosts; i++)
        if (check_url("authHost", c->auth_hosts[i], err) < 0)
            return -1;
    if (c->auth_endpoint[0] != '/')
        return fail(err, "authEndpoint: '%s' must start with /", c->auth_endpoint);
    if (strcmp(c->protocol, "http") && strcmp(c->protocol, "https"))
        return fail(err, "protocol: '%s' is neither http nor https", c->protocol);
    if (!strcmp(c->protocol, "https"))
        return fail(err, "protocol: https is not served by rtd itself: terminate TLS in a proxy "
                         "in front (deploy/) and set protocol to http");
    if (strcmp(c->database, "redis") && strcmp(c->database, "sqlite"))
        return fail(err, "database: '%s' is neither redis nor sqlite", c->database);
    if (!strcmp(c->host ? c->host : "", "localhost"))
        set_str(&c->host, "127.0.0.1");
    return 0;
}

void laravel_config_free(struct laravel_config *c)
{
    for (size_t i = 0; i < c->n_auth_hosts; i++)
        free(c->auth_hosts[i]);
    free(c->auth_hosts);
    for (size_t i = 0; i < c->n_clients; i++) {
        free(c->clients[i].app_id);
        free(c->clients[i].key);
        free(c->clients[i].secret);
    }
    free(c->clients);
    free(c->auth_endpoint);
    free(c->database);
    free(c->redis_host);
    free(c->redis_password);
    free(c->key_prefix);
    free(c->host);
    free(c->protocol);
    free(c->allow_origin);
    free(c->allow_methods);
    free(c->allow_headers);
    free(c->headers_json);
    memset(c, 0, sizeof *c);
}
