/* adminui_login.c: the Admin UI's logins (see adminui_login.h): admin-fcgi's admins read
 * from rtd's database, yescrypt checks on a worker thread, the throttle and the sessions.
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
#include "rtd/adminui/adminui_login.h"

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

#include "rtd/lib/log.h"
#include "rtd/lib/util.h"
#include "rtd/store/store.h"

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

static const char dummy_setting[] = "$y$j9T$8K2ytoMLMYSpw7FsEBd5h1$";

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

struct adminui_login {
    loop *l;
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
};

/* The yescrypt hash of name into out; 1 found, 0 unknown, -1 database error. */
static int lookup_hash(adminui_login *a, const char *name, char *out, size_t outlen)
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

static struct failures *failures_of(adminui_login *a, const char *addr, int64_t now, bool create)
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
static int check_login(adminui_login *a, const char *name, const char *password)
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
    adminui_login *a = arg;
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

static void login_free(adminui_login *a, struct login *j)
{
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i] == j)
            a->pending[i] = NULL;
    explicit_bzero(j, sizeof *j);
    free(j);
}

static struct session *session_new(adminui_login *a);

/* A login the worker answered (loop thread). */
static void login_done(adminui_login *a, struct login *j)
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
    adminui_login *a = ud;
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
void adminui_login_cancel(sio_socket *s, void *ud)
{
    adminui_login *a = ud;
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i] && a->pending[i]->s == s)
            a->pending[i]->s = NULL;
}

/* Queues the check of a login: SIO_AUTH_PENDING, or -1 with *error saying why not. */
static int start_login(adminui_login *a, sio_socket *s, const char *addr, const char *name,
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

static struct session *session_find(adminui_login *a, const char *id)
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

static struct session *session_new(adminui_login *a)
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

int adminui_login_authorize(sio_socket *s, struct json_object *auth, const char **error, void *ud)
{
    adminui_login *a = ud;
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

const char *adminui_login_session(sio_socket *s)
{
    struct session *ss = sio_socket_user(s);
    sio_socket_set_user(s, NULL);
    return ss ? ss->id : NULL;
}

adminui_login *adminui_login_new(loop *l, const char *db, char **err)
{
    *err = NULL;
    adminui_login *a = calloc(1, sizeof *a);
    if (!a) {
        *err = strdup("out of memory");
        return NULL;
    }
    a->l = l;
    a->tokens = CHECKS_PER_SEC;
    a->tokens_at = util_wall_ms();
    a->efd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (store_db_is_pg(db)) {
        a->pg_url = db;
    } else if (sqlite3_open_v2(db, &a->lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        if (asprintf(err, "cannot open %s read-only: %s", db,
                     a->lite ? sqlite3_errmsg(a->lite) : "out of memory") < 0)
            *err = NULL;
        adminui_login_free(a);
        return NULL;
    } else
        sqlite3_busy_timeout(a->lite, 200);
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0 || loop_add_fd(l, a->efd, LOOP_READ, on_wake_fd, a) < 0) {
        *err = strdup("cannot make the Admin UI's eventfd");
        adminui_login_free(a);
        return NULL;
    }
    if (pthread_create(&a->worker, NULL, worker_main, a) != 0) {
        *err = strdup("cannot start the Admin UI's login thread");
        adminui_login_free(a);
        return NULL;
    }
    a->worker_started = true;
    return a;
}

void adminui_login_free(adminui_login *a)
{
    if (!a)
        return;
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
