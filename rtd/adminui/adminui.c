/* adminui.c: the Admin UI's /admin namespace (see adminui.h and
 * ../shared/reference/recovery-and-admin-ui.md part B for the protocol).
 *
 * Password checks run on a worker thread (a yescrypt check costs tens of ms, and the
 * admins lookup may wait on SQLite or PostgreSQL): the CONNECT stays pending
 * (SIO_AUTH_PENDING) until the worker's answer comes back through an eventfd the loop
 * watches. The throttle stays on the loop thread: at most CHECKS_PER_SEC checks start each
 * second (a token bucket over every address), at most MAX_PENDING wait at once, and an
 * address with MAX_FAILURES failed logins within FAIL_WINDOW_MS (a check under way counts
 * as one until it succeeds) is refused without a check until its window ends. Unknown
 * names are hashed against a dummy setting, so they cost the same time as known ones. */
#define _GNU_SOURCE
#include "rtd/adminui/adminui.h"

#include <crypt.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rtd/engine/eio_packet.h"
#include "rtd/lib/buf.h"
#include "rtd/lib/log.h"
#include "rtd/lib/util.h"
#include "rtd/store/store.h"

#define STATS_INTERVAL_MS 2000
#define CHECKS_PER_SEC 5
#define MAX_FAILURES 5
#define FAIL_WINDOW_MS (15 * 60 * 1000)
#define MAX_ADDRS 256
#define MAX_SESSIONS 64
#define SESSION_TTL_MS (24LL * 3600 * 1000)
#define SESSION_HEX 16
#define MAX_PENDING 16
#define MAX_NAME 256
#define MAX_PASSWORD 1024
/* Development mode: at most this many event_received and event_sent a second go to the
 * admins (the reference sends one event_sent per recipient of every broadcast: 1 000 clients
 * at 7 000 messages/s would be 7 M events a second for one admin); the rest are counted and
 * logged, not built. */
#define MAX_EVENTS_PER_SEC 1000

static const char dummy_setting[] = "$y$j9T$8K2ytoMLMYSpw7FsEBd5h1$";

#define MAX_AGG 96
enum { AG_RAWCONN, AG_PIN, AG_BIN, AG_POUT, AG_BOUT, AG_RAWDISC };
static const char *const agg_names[] = {"rawConnection", "packetsIn",  "bytesIn",
                                        "packetsOut",    "bytesOut",   "rawDisconnection"};
struct agg_ev {
    int64_t ts;
    int type;
    int reason; /* rawDisconnection: the index of its reason in eio_counts; else -1 */
    uint64_t count;
};

struct failures {
    char addr[64];
    int count;
    int64_t window_start;
};

struct session {
    char id[SESSION_HEX + 1];
    int64_t expires;
};

/* A login the worker checks. s is the loop thread's (NULL once the client went away); the
 * worker reads name, password and writes result only. */
struct login {
    struct login *next;
    sio_socket *s;
    char addr[64];
    int result; /* 1 the password is right, 0 wrong or unknown name, -1 database error */
    char name[MAX_NAME + 1];
    char password[MAX_PASSWORD + 1];
};

/* One admin's all_sockets in a cluster: the local sockets, then the other nodes' once every
 * namespace's fetch has come back. a is NULL once the Admin UI is gone (cluster_free then
 * ends the fetches still out). */
struct gather {
    struct gather *next;
    adminui *a;
    char admin[UTIL_ID_LEN + 1];
    unsigned waiting;
    buf out; /* the array so far, without its closing bracket */
};

struct adminui {
    loop *l;
    sio_server *srv;
    sio_namespace *nsp;
    struct adminui_config cfg;
    char hostname[256];
    char server_id[256];
    int64_t started_ms;
    loop_timer stats_timer;
    struct eio_counts last;       /* the engine's counts at the last sample */
    struct agg_ev agg[MAX_AGG];   /* aggregatedEvents of the next server_stats */
    size_t nagg;
    loop_timer sample_timer;
    sqlite3 *lite;      /* SQLite: a read-only connection */
    PGconn *pg;         /* PostgreSQL: opened at the first login */
    const char *pg_url;
    double tokens;      /* password checks allowed now */
    int64_t tokens_at;
    struct failures fails[MAX_ADDRS];
    struct session sessions[MAX_SESSIONS];
    /* the worker: jobs (loop pushes, worker takes), done (worker pushes, loop takes) */
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct login *jobs, *done;
    bool stop;
    int efd;                           /* the worker's completions wake the loop */
    struct login *pending[MAX_PENDING]; /* every login not answered yet (loop thread) */
    struct crypt_data cd;              /* worker thread */
    cluster *cluster;                  /* NULL: a single node */
    uint64_t remote_admins;            /* the other nodes' admins at the last count */
    bool counting;
    struct gather *gathers;
    int64_t events_sec;     /* the second events_sent counts in */
    unsigned events_sent;
    uint64_t events_dropped; /* since the last log */
};

/* ---- the admins ---- */

/* The yescrypt hash of name into out; 1 found, 0 unknown, -1 database error. */
static int lookup_hash(adminui *a, const char *name, char *out, size_t outlen)
{
    if (a->lite) {
        sqlite3_stmt *st = NULL;
        int found = -1;
        if (sqlite3_prepare_v2(a->lite, "SELECT password_hash FROM admin_users WHERE username = ?1",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) == SQLITE_OK) {
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                const char *h = (const char *)sqlite3_column_text(st, 0);
                snprintf(out, outlen, "%s", h ? h : "");
                found = 1;
            } else if (rc == SQLITE_DONE)
                found = 0;
        }
        if (found < 0)
            rlogf(RLOG_WARN, "Admin UI: cannot read admin_users", "{\"error\":\"%s\"}",
                  sqlite3_errmsg(a->lite));
        sqlite3_finalize(st);
        return found;
    }
    if (!a->pg || PQstatus(a->pg) != CONNECTION_OK) {
        if (a->pg)
            PQfinish(a->pg);
        a->pg = PQconnectdb(a->pg_url);
        if (PQstatus(a->pg) != CONNECTION_OK) {
            rlog(RLOG_WARN, "Admin UI: cannot connect to PostgreSQL", NULL);
            return -1;
        }
    }
    const char *params[1] = {name};
    PGresult *r = PQexecParams(a->pg, "SELECT password_hash FROM admin_users WHERE username = $1",
                               1, NULL, params, NULL, NULL, 0);
    int found = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        found = PQntuples(r) > 0;
        if (found)
            snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    } else
        rlog(RLOG_WARN, "Admin UI: cannot read admin_users", NULL);
    PQclear(r);
    return found;
}

static struct failures *failures_of(adminui *a, const char *addr, int64_t now, bool create)
{
    struct failures *free_slot = NULL, *oldest = &a->fails[0];
    for (size_t i = 0; i < MAX_ADDRS; i++) {
        struct failures *f = &a->fails[i];
        if (f->addr[0] && now - f->window_start >= FAIL_WINDOW_MS)
            f->addr[0] = '\0';
        if (!f->addr[0]) {
            if (!free_slot)
                free_slot = f;
            continue;
        }
        if (!strcmp(f->addr, addr))
            return f;
        if (f->window_start < oldest->window_start)
            oldest = f;
    }
    if (!create)
        return NULL;
    struct failures *f = free_slot ? free_slot : oldest;
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    f->count = 0;
    f->window_start = now;
    return f;
}

/* The worker's check of one login (worker thread). */
static int check_login(adminui *a, const char *name, const char *password)
{
    char hash[512];
    int found = lookup_hash(a, name, hash, sizeof hash);
    if (found < 0)
        return -1;
    const char *setting = found ? hash : dummy_setting;
    const char *h = crypt_r(password, setting, &a->cd);
    return found && h && h[0] != '*' && strlen(h) == strlen(hash) &&
           CRYPTO_memcmp(h, hash, strlen(hash)) == 0;
}

static void *worker_main(void *arg)
{
    adminui *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->jobs && !a->stop)
            pthread_cond_wait(&a->cond, &a->mu);
        if (a->stop)
            break;
        struct login *j = a->jobs;
        a->jobs = j->next;
        pthread_mutex_unlock(&a->mu);
        j->result = check_login(a, j->name, j->password);
        explicit_bzero(j->password, sizeof j->password);
        pthread_mutex_lock(&a->mu);
        j->next = a->done;
        a->done = j;
        uint64_t one = 1;
        if (write(a->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            rlog(RLOG_WARN, "Admin UI: cannot wake the loop", NULL);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void login_free(adminui *a, struct login *j)
{
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i] == j)
            a->pending[i] = NULL;
    explicit_bzero(j, sizeof *j);
    free(j);
}

static struct session *session_new(adminui *a);

/* A login the worker answered (loop thread). */
static void login_done(adminui *a, struct login *j)
{
    int64_t now = util_wall_ms();
    struct failures *f = failures_of(a, j->addr, now, false);
    const char *error = NULL;
    if (j->result > 0) {
        if (f)
            f->addr[0] = '\0';
    } else if (j->result < 0) {
        if (f && f->count > 0)
            f->count--; /* not the client's failure */
        error = "the admin database is unavailable";
    } else {
        if (!f) { /* its slot went to another address meanwhile */
            f = failures_of(a, j->addr, now, true);
            f->count++;
        }
        rlogf(RLOG_WARN, "Admin UI: failed login", "{\"failures\":%d}", f->count);
        error = "invalid credentials";
    }
    if (j->s) {
        struct session *ss = NULL;
        if (!error && !(ss = session_new(a)))
            error = "the random generator failed";
        sio_socket_set_user(j->s, ss);
        sio_authorize_done(j->s, error);
    }
    login_free(a, j);
}

static void on_wake_fd(loop *l, int fd, void *ud, int mask)
{
    adminui *a = ud;
    (void)l;
    (void)mask;
    uint64_t n;
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        return;
    pthread_mutex_lock(&a->mu);
    struct login *list = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        struct login *next = list->next;
        login_done(a, list);
        list = next;
    }
}

/* The client of a pending login went away (loop thread). */
static void on_cancel(sio_socket *s, void *ud)
{
    adminui *a = ud;
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i] && a->pending[i]->s == s)
            a->pending[i]->s = NULL;
}

/* Queues the check of a login: SIO_AUTH_PENDING, or -1 with *error saying why not. */
static int start_login(adminui *a, sio_socket *s, const char *addr, const char *name,
                       const char *password, const char **error)
{
    int64_t now = util_wall_ms();
    struct failures *f = failures_of(a, addr, now, false);
    if (f && f->count >= MAX_FAILURES) {
        *error = "too many failed logins, try again later";
        return -1;
    }
    if (strlen(name) > MAX_NAME || strlen(password) > MAX_PASSWORD)
        return -1; /* invalid credentials: no admin has such a name or password */
    size_t slot = MAX_PENDING;
    for (size_t i = 0; i < MAX_PENDING && slot == MAX_PENDING; i++)
        if (!a->pending[i])
            slot = i;
    a->tokens += (double)(now - a->tokens_at) * CHECKS_PER_SEC / 1000.0;
    if (a->tokens > CHECKS_PER_SEC)
        a->tokens = CHECKS_PER_SEC;
    a->tokens_at = now;
    if (a->tokens < 1 || slot == MAX_PENDING) {
        *error = "too many logins at once, try again later";
        return -1;
    }
    struct login *j = calloc(1, sizeof *j);
    if (!j) {
        *error = "out of memory";
        return -1;
    }
    a->tokens -= 1;
    j->s = s;
    snprintf(j->addr, sizeof j->addr, "%s", addr);
    memcpy(j->name, name, strlen(name) + 1);
    memcpy(j->password, password, strlen(password) + 1);
    f = failures_of(a, addr, now, true);
    f->count++; /* until the check says it was right */
    a->pending[slot] = j;
    pthread_mutex_lock(&a->mu);
    struct login **pp = &a->jobs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = j;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    return SIO_AUTH_PENDING;
}

static struct session *session_find(adminui *a, const char *id)
{
    int64_t now = util_wall_ms();
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &a->sessions[i];
        if (s->id[0] && s->expires > now && strlen(id) == SESSION_HEX &&
            CRYPTO_memcmp(s->id, id, SESSION_HEX) == 0)
            return s;
    }
    return NULL;
}

static struct session *session_new(adminui *a)
{
    struct session *slot = &a->sessions[0];
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (a->sessions[i].expires < slot->expires)
            slot = &a->sessions[i];
    unsigned char rnd[SESSION_HEX / 2];
    if (util_random_bytes(rnd, sizeof rnd) < 0)
        return NULL;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(slot->id + 2 * i, 3, "%02x", rnd[i]);
    slot->expires = util_wall_ms() + SESSION_TTL_MS;
    return slot;
}

static const char *json_str(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int on_authorize(sio_socket *s, struct json_object *auth, const char **error, void *ud)
{
    adminui *a = ud;
    sio_socket_set_user(s, NULL);
    *error = "invalid credentials";
    const char *sid = json_str(auth, "sessionId");
    if (sid && session_find(a, sid))
        return 0;
    const char *name = json_str(auth, "username"), *pw = json_str(auth, "password");
    if (!name || !pw)
        return -1;
    const char *addr = eio_session_remote_addr(sio_socket_session(s));
    return start_login(a, s, addr ? addr : "", name, pw, error);
}

/* ---- what the admins are sent ---- */

static void config_json(adminui *a, buf *b)
{
    /* as instrument(): the commands unless read-only, then AGGREGATED_EVENTS, and ALL_EVENTS
     * in development mode */
    buf_puts(b, "{\"supportedFeatures\":[");
    if (!a->cfg.readonly)
        buf_puts(b, "\"EMIT\",\"JOIN\",\"LEAVE\",\"DISCONNECT\",\"MJOIN\",\"MLEAVE\","
                    "\"MDISCONNECT\",");
    buf_puts(b, "\"AGGREGATED_EVENTS\"");
    if (a->cfg.mode == ADMINUI_DEVELOPMENT)
        buf_puts(b, ",\"ALL_EVENTS\"");
    buf_puts(b, "]}");
}

struct nsp_walk {
    buf *b;
    bool first;
};

static void add_namespace(sio_namespace *nsp, void *ud)
{
    struct nsp_walk *w = ud;
    const char *name = sio_namespace_name(nsp);
    if (!w->first && !strcmp(name, "/"))
        return; /* listed first, as Node.js does (the UI selects the first one) */
    buf_puts(w->b, w->first ? "{\"name\":\"" : ",{\"name\":\"");
    buf_json_escape(w->b, name, strlen(name));
    buf_printf(w->b, "\",\"socketsCount\":%zu}", sio_namespace_size(nsp));
    w->first = false;
}

static void put_str(buf *b, const char *v);
static bool admins_anywhere(adminui *a);

/* The engine's counts since the last sample, into the second they were made in (the
 * sampling timer fires just after each second ends; a server_stats samples the second
 * under way). Entries of one (second, type, subType) add up, as instrument()'s buffer. */
static void agg_add(adminui *a, int64_t ts, int type, int reason, uint64_t n)
{
    if (!n)
        return;
    for (size_t i = 0; i < a->nagg; i++)
        if (a->agg[i].ts == ts && a->agg[i].type == type && a->agg[i].reason == reason) {
            a->agg[i].count += n;
            return;
        }
    if (a->nagg < MAX_AGG)
        a->agg[a->nagg++] = (struct agg_ev){ts, type, reason, n};
}

static void sample(adminui *a, bool second_ended)
{
    const struct eio_counts *k = eio_server_counts(sio_server_engine(a->srv));
    struct eio_counts *l = &a->last;
    int64_t ts = (util_wall_ms() - (second_ended ? 500 : 0)) / 1000 * 1000;
    agg_add(a, ts, AG_RAWCONN, -1, k->opened - l->opened);
    agg_add(a, ts, AG_PIN, -1, k->packets_in - l->packets_in);
    agg_add(a, ts, AG_BIN, -1, k->bytes_in - l->bytes_in);
    agg_add(a, ts, AG_POUT, -1, k->packets_out - l->packets_out);
    agg_add(a, ts, AG_BOUT, -1, k->bytes_out - l->bytes_out);
    for (int i = 0; i < EIO_MAX_REASONS; i++)
        agg_add(a, ts, AG_RAWDISC, i, k->closed[i] - l->closed[i]);
    *l = *k;
}

static void on_sample_timer(loop *l, void *ud)
{
    adminui *a = ud;
    sample(a, true);
    if (!admins_anywhere(a) && a->nagg > MAX_AGG / 2)
        a->nagg = 0; /* nobody to send them to */
    loop_timer_start(l, &a->sample_timer, 1000 - (uint64_t)(util_wall_ms() % 1000) + 5,
                     on_sample_timer, a);
}

static void stats_json(adminui *a, buf *b)
{
    eio_server *e = sio_server_engine(a->srv);
    unsigned polling = 0, ws = 0;
    eio_server_transport_counts(e, &polling, &ws);
    buf_puts(b, "{\"serverId\":\"");
    buf_json_escape(b, a->server_id, strlen(a->server_id));
    buf_puts(b, "\",\"hostname\":\"");
    buf_json_escape(b, a->hostname, strlen(a->hostname));
    buf_printf(b,
               "\",\"pid\":%d,\"uptime\":%.3f,\"clientsCount\":%u,\"pollingClientsCount\":%u,"
               "\"aggregatedEvents\":[",
               (int)getpid(), (double)(util_wall_ms() - a->started_ms) / 1000.0,
               eio_server_session_count(e), polling);
    sample(a, false);
    for (size_t i = 0; i < a->nagg; i++) {
        const struct agg_ev *ev = &a->agg[i];
        buf_printf(b, "%s{\"timestamp\":%lld,\"type\":\"%s\",", i ? "," : "",
                   (long long)ev->ts, agg_names[ev->type]);
        if (ev->reason >= 0) {
            const char *r = eio_server_counts(e)->reason[ev->reason];
            buf_puts(b, "\"subType\":");
            put_str(b, r);
            buf_putc(b, ',');
        }
        buf_printf(b, "\"count\":%llu}", (unsigned long long)ev->count);
    }
    a->nagg = 0;
    buf_puts(b, "],\"namespaces\":[");
    struct nsp_walk w = {b, true};
    sio_namespace *root = sio_namespace_find(a->srv, "/");
    if (root)
        add_namespace(root, &w);
    sio_each_namespace(a->srv, add_namespace, &w);
    buf_puts(b, "]}");
}

/* Whether any admin, here or on another node, would get what we send. */
static bool admins_anywhere(adminui *a)
{
    return sio_namespace_size(a->nsp) > 0 || (a->cluster && a->remote_admins > 0);
}

static const struct sio_observer observer;

/* Development mode watches every socket only while some admin looks. */
static void watch_if_needed(adminui *a)
{
    if (a->cfg.mode == ADMINUI_DEVELOPMENT)
        sio_set_observer(a->srv, admins_anywhere(a) ? &observer : NULL, a);
}

static void on_admin_count(uint64_t remote, bool ok, void *arg)
{
    if (!ok)
        return; /* cluster_free: the Admin UI is gone already */
    adminui *a = arg;
    a->counting = false;
    a->remote_admins = remote;
    watch_if_needed(a);
}

static void emit_built(sio_socket *s, adminui *a, const char *event,
                       void (*build)(adminui *, buf *))
{
    buf b = BUF_INIT;
    build(a, &b);
    if (buf_terminate(&b) == 0)
        sio_emit(s, event, b.data);
    buf_free(&b);
}

static bool event_budget(adminui *a);

static void on_stats_timer(loop *l, void *ud)
{
    adminui *a = ud;
    if (a->events_dropped && (int64_t)(loop_now(l) / 1000) != a->events_sec &&
        event_budget(a))
        a->events_sent--; /* only to log the drops of a second that ended */
    if (a->cluster && a->cfg.mode == ADMINUI_DEVELOPMENT && !a->counting) {
        a->counting = true;
        if (cluster_count_remote(a->cluster, "/admin", 1000, on_admin_count, a) < 0)
            a->counting = false;
    }
    /* in a cluster every node sends its own, as instrument() does: the admins of the
     * other nodes get it through the adapter */
    if (a->cluster || sio_namespace_size(a->nsp) > 0) {
        buf b = BUF_INIT;
        stats_json(a, &b);
        sio_packet *p = b.data ? sio_event_packet(a->nsp, "server_stats", b.data, b.len, NULL, 0)
                               : NULL;
        if (p) {
            sio_broadcast(a->nsp, NULL, NULL, p);
            sio_packet_unref(p);
        }
        buf_free(&b);
    }
    loop_timer_start(l, &a->stats_timer, STATS_INTERVAL_MS, on_stats_timer, a);
}

/* ---- development mode: every socket, room and event ---- */

static void put_str(buf *b, const char *v)
{
    buf_putc(b, '"');
    if (v)
        buf_json_escape(b, v, strlen(v));
    buf_putc(b, '"');
}

static void put_now(buf *b)
{
    char t[25];
    util_format_iso_time(util_wall_ms(), t);
    buf_printf(b, "\"%s\"", t);
}

/* A SerializedSocket (@socket.io/admin-ui lib/index.ts serialize). rtd keeps only the
 * User-Agent of the handshake's headers. */
static void put_socket(buf *b, sio_socket *s)
{
    eio_session *es = sio_socket_session(s);
    const char *id = sio_socket_id(s), *eid = eio_session_id(es);
    buf_puts(b, "{\"id\":");
    put_str(b, id);
    buf_printf(b, ",\"clientId\":\"%.12s\",\"transport\":\"%s\",\"nsp\":", eid,
               eio_session_transport(es) == EIO_T_WEBSOCKET ? "websocket" : "polling");
    put_str(b, sio_namespace_name(sio_socket_namespace(s)));
    const char *data = sio_socket_data_json(s);
    buf_printf(b, ",\"data\":%s,\"handshake\":{\"address\":", data ? data : "{}");
    put_str(b, eio_session_remote_addr(es));
    buf_puts(b, ",\"headers\":{");
    const char *ua = eio_session_user_agent(es);
    if (ua) {
        buf_puts(b, "\"user-agent\":");
        put_str(b, ua);
    }
    buf_puts(b, "},\"query\":{");
    const char *q = eio_session_query_all(es);
    for (bool first = true; q && *q; first = false) {
        const char *v = q + strlen(q) + 1;
        if (!first)
            buf_putc(b, ',');
        put_str(b, q);
        buf_putc(b, ':');
        put_str(b, v);
        q = v + strlen(v) + 1;
    }
    int64_t at = sio_socket_connected_ms(s);
    char t[25];
    util_format_iso_time(at, t);
    buf_printf(b, "},\"issued\":%lld,\"secure\":false,\"time\":\"%s\",\"url\":\"/socket.io/\","
                  "\"xdomain\":false},\"rooms\":[",
               (long long)at, t);
    put_str(b, id);
    const char *rooms[64];
    size_t n = sio_socket_rooms(s, rooms, 64);
    for (size_t i = 0; i < n && i < 64; i++) {
        buf_putc(b, ',');
        put_str(b, rooms[i]);
    }
    buf_puts(b, "]}");
}

/* Sends event with args (JSON text joined by commas) to every admin. */
static void to_admins(adminui *a, const char *event, buf *args)
{
    if (!args->data || !admins_anywhere(a))
        return;
    sio_packet *p = sio_event_packet(a->nsp, event, args->data, args->len, NULL, 0);
    if (p) {
        sio_broadcast(a->nsp, NULL, NULL, p);
        sio_packet_unref(p);
    }
}

static bool watched(adminui *a, sio_socket *s)
{
    return sio_socket_namespace(s) != a->nsp;
}

static void obs_connected(sio_socket *s, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    put_socket(&b, s);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, "socket_connected", &b);
    buf_free(&b);
}

static void obs_disconnected(sio_socket *s, const char *reason, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    put_str(&b, reason);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, "socket_disconnected", &b);
    buf_free(&b);
}

static void room_event(adminui *a, const char *event, sio_socket *s, const char *room)
{
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, room);
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, event, &b);
    buf_free(&b);
}

static void obs_joined(sio_socket *s, const char *room, void *ud)
{
    room_event(ud, "room_joined", s, room);
}

static void obs_left(sio_socket *s, const char *room, void *ud)
{
    room_event(ud, "room_left", s, room);
}

static void obs_upgraded(sio_socket *s, void *ud)
{
    adminui *a = ud;
    buf b = BUF_INIT;
    buf_puts(&b, "{\"id\":");
    put_str(&b, sio_socket_id(s));
    buf_puts(&b, ",\"nsp\":");
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_puts(&b, ",\"transport\":\"websocket\"}");
    to_admins(a, "socket_updated", &b);
    buf_free(&b);
}

static void event_msg(adminui *a, const char *event, sio_socket *s, const char *arr, size_t n)
{
    buf b = BUF_INIT;
    put_str(&b, sio_namespace_name(sio_socket_namespace(s)));
    buf_putc(&b, ',');
    put_str(&b, sio_socket_id(s));
    buf_putc(&b, ',');
    buf_append(&b, arr, n);
    buf_putc(&b, ',');
    put_now(&b);
    to_admins(a, event, &b);
    buf_free(&b);
}

/* Whether one more event_received or event_sent may go to the admins this second. */
static bool event_budget(adminui *a)
{
    int64_t sec = (int64_t)(loop_now(a->l) / 1000);
    if (sec != a->events_sec) {
        if (a->events_dropped)
            rlogf(RLOG_WARN, "Admin UI: events not shown",
                  "{\"dropped\":%llu,\"limit_per_sec\":%d}",
                  (unsigned long long)a->events_dropped, MAX_EVENTS_PER_SEC);
        a->events_sec = sec;
        a->events_sent = 0;
        a->events_dropped = 0;
    }
    if (a->events_sent >= MAX_EVENTS_PER_SEC) {
        a->events_dropped++;
        return false;
    }
    a->events_sent++;
    return true;
}

static void obs_event_in(sio_socket *s, struct json_object *payload, void *ud)
{
    adminui *a = ud;
    if (!watched(a, s) || !admins_anywhere(a) || !event_budget(a))
        return;
    size_t n;
    const char *j = json_object_to_json_string_length(payload, JSON_C_TO_STRING_PLAIN, &n);
    if (j)
        event_msg(a, "event_received", s, j, n);
}

/* An EVENT or BINARY_EVENT packet's [name, ...args] (placeholders left as they are). */
static void obs_packet_out(sio_socket *s, const sio_packet *p, void *ud)
{
    adminui *a = ud;
    if (!watched(a, s) || p->n < 1 || !admins_anywhere(a))
        return;
    const eio_packet *e = p->parts[0];
    const char *d = (const char *)e->raw + EIO_PACKET_HEADROOM + 1, *end = d + e->len;
    if (d == end || (*d != '2' && *d != '5'))
        return;
    d++;
    if (d[-1] == '5') {
        while (d < end && *d >= '0' && *d <= '9')
            d++;
        if (d == end || *d++ != '-')
            return;
    }
    if (d < end && *d == '/') {
        while (d < end && *d != ',')
            d++;
        if (d++ == end)
            return;
    }
    while (d < end && *d >= '0' && *d <= '9')
        d++;
    if (d < end && *d == '[' && event_budget(a))
        event_msg(a, "event_sent", s, d, (size_t)(end - d));
}

static const struct sio_observer observer = {
    .connected = obs_connected,
    .disconnected = obs_disconnected,
    .joined = obs_joined,
    .left = obs_left,
    .upgraded = obs_upgraded,
    .event_in = obs_event_in,
    .packet_out = obs_packet_out,
};

struct all_walk {
    buf *b;
    bool first;
};

static void all_of_namespace(sio_namespace *nsp, void *ud)
{
    struct all_walk *w = ud;
    struct sio_target all = {NULL, 0, NULL, 0};
    sio_socket **list = NULL;
    long n = sio_select(nsp, &all, &list);
    for (long i = 0; i < n; i++) {
        if (!w->first)
            buf_putc(w->b, ',');
        put_socket(w->b, list[i]);
        w->first = false;
    }
    free(list);
}

static void all_sockets_json(adminui *a, buf *b)
{
    struct all_walk w = {b, true};
    buf_putc(b, '[');
    sio_each_namespace(a->srv, all_of_namespace, &w);
    buf_putc(b, ']');
}

/* A socket of another node ({id, handshake, rooms, data}, as fetchSockets gives it) as a
 * SerializedSocket: clientId and transport from data._admin when the node is an
 * instrument()ed Node.js one, the address as serialize() picks it. */
static void put_remote_socket(buf *b, const char *nsp, struct json_object *r)
{
    struct json_object *id, *hs = NULL, *rooms = NULL, *data = NULL, *adm = NULL, *v;
    if (!json_object_is_type(r, json_type_object) || !json_object_object_get_ex(r, "id", &id) ||
        !json_object_is_type(id, json_type_string))
        return;
    json_object_object_get_ex(r, "handshake", &hs);
    json_object_object_get_ex(r, "rooms", &rooms);
    json_object_object_get_ex(r, "data", &data);
    if (b->len > 1)
        buf_putc(b, ',');
    buf_puts(b, "{\"id\":");
    put_str(b, json_object_get_string(id));
    if (data && json_object_is_type(data, json_type_object) &&
        json_object_object_get_ex(data, "_admin", &adm) &&
        json_object_is_type(adm, json_type_object)) {
        for (int i = 0; i < 2; i++) {
            const char *k = i ? "transport" : "clientId";
            if (json_object_object_get_ex(adm, k, &v) && json_object_is_type(v, json_type_string)) {
                buf_printf(b, ",\"%s\":", k);
                put_str(b, json_object_get_string(v));
            }
        }
    }
    buf_puts(b, ",\"nsp\":");
    put_str(b, nsp);
    buf_puts(b, ",\"data\":{");
    bool first = true;
    if (data && json_object_is_type(data, json_type_object)) {
        json_object_object_foreach(data, k, dv) {
            if (!strcmp(k, "_admin"))
                continue;
            if (!first)
                buf_putc(b, ',');
            first = false;
            put_str(b, k);
            buf_putc(b, ':');
            buf_puts(b, json_object_to_json_string_ext(dv, JSON_C_TO_STRING_PLAIN));
        }
    }
    buf_puts(b, "},\"handshake\":{");
    struct json_object *headers = NULL, *addr = NULL;
    if (hs && json_object_is_type(hs, json_type_object)) {
        json_object_object_get_ex(hs, "headers", &headers);
        if (!headers || !json_object_is_type(headers, json_type_object) ||
            (!json_object_object_get_ex(headers, "cf-connecting-ip", &addr) &&
             !json_object_object_get_ex(headers, "x-forwarded-for", &addr)))
            json_object_object_get_ex(hs, "address", &addr);
    }
    buf_puts(b, "\"address\":");
    buf_puts(b, addr ? json_object_to_json_string_ext(addr, JSON_C_TO_STRING_PLAIN) : "null");
    static const char *const keys[] = {"headers", "query", "issued", "secure", "time", "url",
                                       "xdomain"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (hs && json_object_is_type(hs, json_type_object) &&
            json_object_object_get_ex(hs, keys[i], &v)) {
            buf_printf(b, ",\"%s\":", keys[i]);
            buf_puts(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        }
    buf_puts(b, "},\"rooms\":");
    buf_puts(b, rooms && json_object_is_type(rooms, json_type_array)
                    ? json_object_to_json_string_ext(rooms, JSON_C_TO_STRING_PLAIN)
                    : "[]");
    buf_putc(b, '}');
}

struct fetched {
    struct gather *g;
    char nsp[256];
};

static void gather_done(struct gather *g)
{
    adminui *a = g->a;
    if (a) {
        for (struct gather **pp = &a->gathers; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        sio_socket *s = sio_socket_find(a->nsp, g->admin);
        buf_putc(&g->out, ']');
        if (s && buf_terminate(&g->out) == 0)
            sio_emit(s, "all_sockets", g->out.data);
    }
    buf_free(&g->out);
    free(g);
}

static void on_fetched(struct json_object *sockets, bool ok, void *arg)
{
    struct fetched *f = arg;
    struct gather *g = f->g;
    if (ok && g->a && sockets)
        for (size_t i = 0; i < json_object_array_length(sockets); i++)
            put_remote_socket(&g->out, f->nsp, json_object_array_get_idx(sockets, i));
    json_object_put(sockets);
    free(f);
    if (--g->waiting == 0)
        gather_done(g);
}

static void fetch_namespace(sio_namespace *nsp, void *ud)
{
    struct gather *g = ud;
    struct fetched *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->g = g;
    snprintf(f->nsp, sizeof f->nsp, "%s", sio_namespace_name(nsp));
    g->waiting++;
    if (cluster_fetch_remote(g->a->cluster, f->nsp, 1000, on_fetched, f) < 0) {
        g->waiting--;
        free(f);
    }
}

/* all_sockets for admin s: every node's sockets (fetchSockets), sent when all came back. */
static void all_sockets_cluster(adminui *a, sio_socket *s)
{
    struct gather *g = calloc(1, sizeof *g);
    if (!g)
        return;
    g->a = a;
    snprintf(g->admin, sizeof g->admin, "%s", sio_socket_id(s));
    all_sockets_json(a, &g->out);
    if (g->out.len)
        g->out.len--; /* reopen the array */
    g->waiting = 1; /* until every fetch is out */
    g->next = a->gathers;
    a->gathers = g;
    sio_each_namespace(a->srv, fetch_namespace, g);
    if (--g->waiting == 0)
        gather_done(g);
}

static void on_admin_disconnect(sio_socket *s, const char *reason, void *ud)
{
    adminui *a = ud;
    (void)s;
    (void)reason;
    watch_if_needed(a);
}

/* ---- the UI's commands: emit, join, leave, _disconnect (nsp, ..., filter?) ---- */

/* The sockets of nsp named by filter (a room or a socket id; every socket if NULL). */
static long targets(adminui *a, const sio_args *args, size_t filter_at, sio_socket ***out)
{
    struct json_object *n = sio_arg(args, 0), *f = sio_arg(args, filter_at);
    if (!n || !json_object_is_type(n, json_type_string))
        return -1;
    sio_namespace *nsp = sio_namespace_find(a->srv, json_object_get_string(n));
    if (!nsp)
        return -1;
    const char *room = f && json_object_is_type(f, json_type_string) ? json_object_get_string(f)
                                                                      : NULL;
    const char *rooms[1] = {room};
    struct sio_target t = {rooms, room ? 1 : 0, NULL, 0};
    return sio_select(nsp, &t, out);
}

/* The same command on the other nodes (socketsJoin, socketsLeave, disconnectSockets). */
static void remote_op(adminui *a, const sio_args *args, size_t filter_at, enum cluster_op op,
                      const char *room, bool close)
{
    struct json_object *n = sio_arg(args, 0), *f = sio_arg(args, filter_at);
    if (!n || !json_object_is_type(n, json_type_string))
        return;
    const char *filter = f && json_object_is_type(f, json_type_string) ? json_object_get_string(f)
                                                                        : NULL;
    cluster_remote_op(a->cluster, json_object_get_string(n), op, filter, room, close);
}

static void cmd_room(sio_socket *admin, const char *event, const sio_args *args, int64_t ack,
                     void *ud)
{
    (void)admin;
    (void)ack;
    struct json_object *r = sio_arg(args, 1);
    if (!r || !json_object_is_type(r, json_type_string))
        return;
    const char *room = json_object_get_string(r);
    adminui *a = ud;
    if (a->cluster)
        remote_op(a, args, 2, !strcmp(event, "join") ? CLUSTER_JOIN : CLUSTER_LEAVE, room, false);
    sio_socket **list = NULL;
    long n = targets(ud, args, 2, &list);
    for (long i = 0; i < n; i++) {
        if (!strcmp(event, "join"))
            sio_join(list[i], room);
        else
            sio_leave(list[i], room);
    }
    free(list);
}

static void cmd_disconnect(sio_socket *admin, const char *event, const sio_args *args,
                           int64_t ack, void *ud)
{
    (void)admin;
    (void)event;
    (void)ack;
    struct json_object *c = sio_arg(args, 1);
    bool close = c && json_object_is_type(c, json_type_boolean) && json_object_get_boolean(c);
    adminui *a = ud;
    if (a->cluster)
        remote_op(a, args, 2, CLUSTER_DISCONNECT, NULL, close);
    sio_socket **list = NULL;
    long n = targets(ud, args, 2, &list);
    for (long i = 0; i < n; i++)
        sio_disconnect(list[i], close);
    free(list);
}

static void cmd_emit(sio_socket *admin, const char *event, const sio_args *args, int64_t ack,
                     void *ud)
{
    (void)admin;
    (void)event;
    (void)ack;
    struct json_object *ev = sio_arg(args, 2);
    if (!ev || !json_object_is_type(ev, json_type_string))
        return;
    sio_socket **list = NULL;
    long n = targets(ud, args, 1, &list);
    if (n <= 0) {
        free(list);
        return;
    }
    buf b = BUF_INIT;
    for (size_t i = 3; i < sio_argc(args); i++) {
        if (i > 3)
            buf_putc(&b, ',');
        buf_puts(&b, json_object_to_json_string_ext(sio_arg(args, i), JSON_C_TO_STRING_PLAIN));
    }
    sio_packet *p = sio_event_packet(sio_socket_namespace(list[0]), json_object_get_string(ev),
                                     b.data ? b.data : "", b.len, NULL, 0);
    for (long i = 0; p && i < n; i++)
        sio_send(list[i], p);
    if (p)
        sio_packet_unref(p);
    buf_free(&b);
    free(list);
}

static void on_connection(sio_socket *s, struct json_object *auth, void *ud)
{
    adminui *a = ud;
    (void)auth;
    struct session *ss = sio_socket_user(s);
    sio_socket_set_user(s, NULL);
    if (ss) {
        char arg[SESSION_HEX + 3];
        snprintf(arg, sizeof arg, "\"%s\"", ss->id);
        sio_emit(s, "session", arg);
    }
    emit_built(s, a, "config", config_json);
    if (a->cfg.mode == ADMINUI_DEVELOPMENT) {
        if (a->cluster)
            all_sockets_cluster(a, s);
        else
            emit_built(s, a, "all_sockets", all_sockets_json);
        sio_set_observer(a->srv, &observer, a);
    }
    emit_built(s, a, "server_stats", stats_json);
}

adminui *adminui_new(loop *l, sio_server *srv, const struct adminui_config *cfg, char **err)
{
    *err = NULL;
    adminui *a = calloc(1, sizeof *a);
    if (!a) {
        *err = strdup("out of memory");
        return NULL;
    }
    a->l = l;
    a->srv = srv;
    a->cfg = *cfg;
    a->started_ms = util_wall_ms();
    a->tokens = CHECKS_PER_SEC;
    a->tokens_at = a->started_ms;
    a->efd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (gethostname(a->hostname, sizeof a->hostname - 1) != 0)
        strcpy(a->hostname, "localhost");
    snprintf(a->server_id, sizeof a->server_id, "%s", cfg->server_id ? cfg->server_id : a->hostname);
    if (store_db_is_pg(cfg->db)) {
        a->pg_url = cfg->db;
    } else if (sqlite3_open_v2(cfg->db, &a->lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        if (asprintf(err, "cannot open %s read-only: %s", cfg->db,
                     a->lite ? sqlite3_errmsg(a->lite) : "out of memory") < 0)
            *err = NULL;
        adminui_free(a);
        return NULL;
    } else
        sqlite3_busy_timeout(a->lite, 200);
    a->nsp = sio_namespace_add(srv, "/admin");
    if (!a->nsp) {
        *err = strdup("cannot add the /admin namespace");
        adminui_free(a);
        return NULL;
    }
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0 || loop_add_fd(l, a->efd, LOOP_READ, on_wake_fd, a) < 0) {
        *err = strdup("cannot make the Admin UI's eventfd");
        adminui_free(a);
        return NULL;
    }
    if (pthread_create(&a->worker, NULL, worker_main, a) != 0) {
        *err = strdup("cannot start the Admin UI's login thread");
        adminui_free(a);
        return NULL;
    }
    a->worker_started = true;
    sio_use(a->nsp, on_authorize, a);
    sio_use_cancel(a->nsp, on_cancel);
    sio_on_connection(a->nsp, on_connection, a);
    sio_on_disconnect(a->nsp, on_admin_disconnect, a);
    if (!cfg->readonly) {
        sio_on(a->nsp, "emit", cmd_emit, a);
        sio_on(a->nsp, "join", cmd_room, a);
        sio_on(a->nsp, "leave", cmd_room, a);
        sio_on(a->nsp, "_disconnect", cmd_disconnect, a);
    }
    loop_timer_start(l, &a->stats_timer, STATS_INTERVAL_MS, on_stats_timer, a);
    a->last = *eio_server_counts(sio_server_engine(srv));
    loop_timer_start(l, &a->sample_timer, 1000 - (uint64_t)(util_wall_ms() % 1000) + 5,
                     on_sample_timer, a);
    return a;
}

void adminui_set_cluster(adminui *a, cluster *c)
{
    a->cluster = c;
    cluster_set_admin_data(c, true);
    /* the UI keys servers by serverId: nodes on one host need their own, as instrument()
     * makes hostname#pid in cluster workers */
    if (!a->cfg.server_id)
        snprintf(a->server_id, sizeof a->server_id, "%.200s#%d", a->hostname, (int)getpid());
}

void adminui_free(adminui *a)
{
    if (!a)
        return;
    for (struct gather *g = a->gathers; g; g = g->next)
        g->a = NULL; /* cluster_free ends their fetches */
    if (loop_timer_armed(&a->stats_timer))
        loop_timer_stop(a->l, &a->stats_timer);
    if (loop_timer_armed(&a->sample_timer))
        loop_timer_stop(a->l, &a->sample_timer);
    if (a->worker_started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->worker, NULL);
    }
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i])
            login_free(a, a->pending[i]);
    if (a->efd >= 0) {
        loop_del_fd(a->l, a->efd);
        close(a->efd);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    if (a->lite)
        sqlite3_close(a->lite);
    if (a->pg)
        PQfinish(a->pg);
    explicit_bzero(&a->cd, sizeof a->cd);
    free(a);
}
