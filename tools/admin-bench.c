/* admin-bench.c: admin-fcgi's benchmark. Fills a database with a realistic history (by
 * default 1 000 000 messages and 100 000 connections over 60 days, with consistent
 * counters, written the way rtd writes them) and measures how long admin-fcgi takes to
 * render its pages: in-process through the same request handler the FastCGI workers run
 * (the steady state of a FastCGI responder: warm connection, parsed templates), and as a
 * CGI process per request (start-up and template parsing included). It also streams the
 * whole CSV export and reports the peak memory, which must not grow with the rows.
 * Output: a Markdown table for docs/BENCHMARKS.md. Run through tools/bench-admin.sh. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin-fcgi/admin.h"
#include "admin-fcgi/auth.h"
#include "admin-fcgi/tmpl.h"
#include "tools/dbfill.h"

static struct app app;
static struct app_config cfg;

struct cap {
    const char *body;
    size_t len, pos;
    struct sbuf out;
    size_t bytes;
    bool keep;
};

static ssize_t cap_read(void *ctx, char *p, size_t n)
{
    struct cap *c = ctx;
    if (n > c->len - c->pos)
        n = c->len - c->pos;
    memcpy(p, c->body + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

static int cap_write(void *ctx, const char *p, size_t n)
{
    struct cap *c = ctx;
    c->bytes += n;
    return c->keep ? sbuf_append(&c->out, p, n) : 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One in-process request; returns the response (kept when keep) and its size. */
static void run(const char *method, const char *uri, const char *cookie, const char *body,
                bool keep, struct cap *c)
{
    char m[32], u[1024], q[1024], ck[256], cl[64];
    char *envp[10];
    int n = 0;
    snprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
    envp[n++] = m;
    snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
    envp[n++] = u;
    const char *qs = strchr(uri, '?');
    snprintf(q, sizeof q, "QUERY_STRING=%s", qs ? qs + 1 : "");
    envp[n++] = q;
    snprintf(ck, sizeof ck, "HTTP_COOKIE=%s", cookie ? cookie : "");
    envp[n++] = ck;
    envp[n++] = (char *)"REMOTE_ADDR=127.0.0.1";
    if (body) {
        snprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", strlen(body));
        envp[n++] = cl;
        envp[n++] = (char *)"CONTENT_TYPE=application/x-www-form-urlencoded";
    }
    envp[n] = NULL;
    memset(c, 0, sizeof *c);
    c->body = body ? body : "";
    c->len = strlen(c->body);
    c->keep = keep;
    struct http_io io = {envp, cap_read, cap_write, c};
    app_handle(&app, &io);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *cookie_value(const char *head, const char *name, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", name);
    const char *p = strstr(head, pat);
    out[0] = '\0';
    if (p) {
        p += strlen(pat);
        snprintf(out, n, "%.*s", (int)strcspn(p, ";\r"), p);
    }
    return out;
}

static void login(char *session_cookie, size_t n)
{
    struct cap c;
    run("GET", "/admin/login", NULL, NULL, true, &c);
    char csrf[80], ck[128], body[256];
    cookie_value(sbuf_str(&c.out), ADMIN_CSRF_COOKIE, csrf, sizeof csrf);
    sbuf_free(&c.out);
    snprintf(ck, sizeof ck, "afc_csrf=%s", csrf);
    snprintf(body, sizeof body, "csrf=%s&username=bench&password=benchmark+password", csrf);
    run("POST", "/admin/login", ck, body, true, &c);
    char tok[80];
    cookie_value(sbuf_str(&c.out), ADMIN_SESSION_COOKIE, tok, sizeof tok);
    sbuf_free(&c.out);
    if (!tok[0]) {
        fprintf(stderr, "admin-bench: login failed\n");
        exit(1);
    }
    snprintf(session_cookie, n, "afc_session=%s", tok);
}

static long long scalar(struct dbi *db, const char *sql)
{
    long long v = 0;
    dbi_query_int(db, sql, &v);
    return v;
}

static void progress(long done, long total)
{
    fprintf(stderr, "admin-bench: filled %ld / %ld messages\n", done, total);
}

static int fill_db(const char *path, long n_msg, long n_conn)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    struct dbfill *f;
    char *err = NULL;
    double t0 = now_ms();
    int rc = dbfill_open(db, &f, &err);
    if (rc == 0) {
        /* A throwaway benchmark file: trade durability for fill speed. */
        sqlite3_exec(db, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        rc = dbfill_generate(f, n_conn, n_msg, 60, 200, now - 1000, 1, progress, &err);
        if (rc == 0)
            rc = dbfill_status(f, 1, "bench", now - 3600000, now, 0, 200, n_msg, n_msg, &err);
        dbfill_close(f);
    }
    if (rc < 0)
        fprintf(stderr, "admin-bench: fill: %s\n", err ? err : "failed");
    free(err);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(db);
    fprintf(stderr, "admin-bench: filled in %.1f s\n", (now_ms() - t0) / 1000);
    return rc;
}

struct target {
    const char *name;
    char uri[256];
};

static void measure(const struct target *t, const char *cookie, int runs)
{
    double *ms = calloc((size_t)runs, sizeof *ms);
    struct cap c;
    for (int i = 0; i < 3; i++)
        run("GET", t->uri, cookie, NULL, false, &c); /* warm-up */
    size_t bytes = 0;
    for (int i = 0; i < runs; i++) {
        double t0 = now_ms();
        run("GET", t->uri, cookie, NULL, false, &c);
        ms[i] = now_ms() - t0;
        bytes = c.bytes;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("| %s | `%s` | %.2f | %.2f | %.2f | %zu |\n", t->name, t->uri, ms[runs / 2],
           ms[(int)(runs * 0.95)], ms[runs - 1], bytes);
    fflush(stdout);
    free(ms);
}

/* One CGI process per request, as a shell or a CGI server would run it. */
static void measure_cgi(const char *bin, const char *db, const char *tpl, const char *name,
                        const char *uri, const char *cookie, int runs)
{
    double *ms = calloc((size_t)runs, sizeof *ms);
    char u[300], q[300], ck[256];
    snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
    const char *qs = strchr(uri, '?');
    snprintf(q, sizeof q, "QUERY_STRING=%s", qs ? qs + 1 : "");
    snprintf(ck, sizeof ck, "HTTP_COOKIE=%s", cookie);
    char *envp[] = {(char *)"REQUEST_METHOD=GET", u, q, ck, (char *)"REMOTE_ADDR=127.0.0.1", NULL};
    char *argv[] = {(char *)bin,           (char *)"--db", (char *)db,
                    (char *)"--templates", (char *)tpl,    NULL};
    fflush(stdout);
    for (int i = 0; i < runs + 2; i++) {
        double t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout))
                _exit(126);
            execve(bin, argv, envp);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        if (i >= 2)
            ms[i - 2] = now_ms() - t0;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    printf("| %s (CGI process) | `%s` | %.2f | %.2f | %.2f | |\n", name, uri, ms[runs / 2],
           ms[(int)(runs * 0.95)], ms[runs - 1]);
    free(ms);
}

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *tpl = "templates", *bin = NULL;
    long n_msg = 1000000, n_conn = 100000;
    int runs = 200, cgi_runs = 50;
    bool fill = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fill") == 0) {
            fill = true;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--db") == 0)
            db = v;
        else if (strcmp(a, "--templates") == 0)
            tpl = v;
        else if (strcmp(a, "--cgi") == 0)
            bin = v;
        else if (strcmp(a, "--messages") == 0)
            n_msg = atol(v);
        else if (strcmp(a, "--connections") == 0)
            n_conn = atol(v);
        else if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--cgi-runs") == 0)
            cgi_runs = atoi(v);
        else
            goto usage;
    }
    if (!db || runs < 1)
        goto usage;
    struct stat sb;
    /* A PostgreSQL database is filled beforehand (docs/BENCHMARKS.md shows the SQL). */
    if (!dbi_is_pg(db) && (fill || stat(db, &sb) != 0)) {
        unlink(db);
        if (fill_db(db, n_msg, n_conn) < 0)
            return 1;
    }
    app_config_defaults(&cfg);
    cfg.db_path = db;
    cfg.templates_dir = tpl;
    char *err = NULL;
    if (tmpl_init(tpl) < 0 || app_prepare_db(&cfg, &err) < 0 || app_open(&app, &cfg, &err) < 0) {
        fprintf(stderr, "admin-bench: %s\n", err ? err : "cannot open");
        return 1;
    }
    bool created;
    struct dbi *rw = app_rw(&app, &err);
    if (!rw || auth_set_admin(rw, "bench", "benchmark password", &created, &err) < 0) {
        fprintf(stderr, "admin-bench: %s\n", err ? err : "cannot create the admin");
        return 1;
    }
    char cookie[128];
    login(cookie, sizeof cookie);

    long long msgs = scalar(app.ro, "SELECT value FROM totals WHERE name='messages_total'");
    long long conns = scalar(app.ro, "SELECT value FROM totals WHERE name='connections_total'");
    long long mid = scalar(app.ro, "SELECT max(id) / 2 FROM messages");
    char day[16];
    struct dbi_stmt *st;
    snprintf(day, sizeof day, "2000-01-01");
    if (dbi_prepare(app.ro, "SELECT substr(created_at, 1, 10) FROM messages WHERE id = ?1", &st) ==
        0) {
        dbi_bind_int64(st, 1, mid);
        if (dbi_step(st) == DBI_ROW)
            snprintf(day, sizeof day, "%s", dbi_column_text(st, 0));
        dbi_finalize(st);
    }
    printf("Database: %lld messages, %lld connections, %.0f MB; %d runs per page.\n\n", msgs, conns,
           scalar(app.ro, dbi_kind(app.ro) == DBI_PG
                              ? "SELECT pg_database_size(current_database())"
                              : "SELECT page_count * page_size FROM pragma_page_count(), "
                                "pragma_page_size()") /
               1e6,
           runs);
    printf("| Page | Request | median ms | p95 ms | max ms | bytes |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    struct target targets[] = {
        {"Dashboard", "/admin"},
        {"Dashboard JSON (live refresh)", "/admin/stats.json"},
        {"History, newest page", "/admin/messages"},
        {"History, a page in the middle", ""},
        {"History, platform filter", "/admin/messages?platform=laravel"},
        {"History, sender filter", "/admin/messages?sender=user-42"},
        {"History, room filter", "/admin/messages?room=room-7"},
        {"History, one day", ""},
        {"History, sender + room", "/admin/messages?sender=user-42&room=room-7"},
        {"History, text search (common word)", "/admin/messages?q=invoice"},
        {"History, text search (no match, scan cap)", "/admin/messages?q=no-such-words"},
        {"Connections", "/admin/connections"},
        {"Landing page", "/"},
    };
    snprintf(targets[3].uri, sizeof targets[3].uri, "/admin/messages?before=%lld", mid);
    snprintf(targets[7].uri, sizeof targets[7].uri, "/admin/messages?from=%s&to=%s", day, day);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        measure(&targets[i], cookie, strstr(targets[i].uri, "?q=") ? runs / 4 + 1 : runs);

    if (bin) {
        measure_cgi(bin, db, tpl, "Dashboard", "/admin", cookie, cgi_runs);
        measure_cgi(bin, db, tpl, "History, newest page", "/admin/messages", cookie, cgi_runs);
    }

    long rss0 = max_rss_kb();
    struct cap c;
    double t0 = now_ms();
    run("GET", "/admin/messages.csv", cookie, NULL, false, &c);
    double t = now_ms() - t0;
    printf("\nCSV export of every message: %.0f MB in %.2f s (%.0f rows/s); peak RSS %ld KB "
           "before, %ld KB after.\n",
           c.bytes / 1e6, t / 1000, msgs / (t / 1000), rss0, max_rss_kb());
    app_close(&app);
    return 0;
usage:
    fprintf(stderr, "usage: admin-bench --db FILE|URL [--fill] [--messages N] [--connections N] "
                    "[--runs N] [--templates DIR] [--cgi ADMIN_FCGI_BIN] [--cgi-runs N]\n");
    return 2;
}
