/* test_admin_routes.c: every admin-fcgi route against a real SQLite file: status codes,
 * redirects, escaping, CSRF refusal, throttling, filters, pagination, CSV, sessions, and the
 * CGI binary itself (environment in, response out; --create-admin; a fresh database).
 *
 * Requests run in-process through app_handle() with a CGI environment built here and the
 * response captured in memory, so each test sees exactly what a web server would. The
 * database is filled with tools/dbfill.c, which writes rows and counters the way rtd does. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin-fcgi/admin.h"
#include "admin-fcgi/auth.h"
#include "admin-fcgi/json.h"
#include "admin-fcgi/tmpl.h"
#include "tools/dbfill.h"

/* ---- fixture ------------------------------------------------------------------------- */

static char dir[64];
static char db_path[128];
static struct app_config cfg;
static struct app app;
static sqlite3 *writer; /* plays rtd: the only writer of rows and counters */
static struct dbfill *fill;

#define ADMIN_NAME "alice"
#define ADMIN_PASSWORD "correct horse battery"

struct resp {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
};

struct mem_io {
    const char *body;
    size_t len, pos;
    struct sbuf out;
};

static ssize_t mem_read(void *ctx, char *p, size_t n)
{
    struct mem_io *m = ctx;
    size_t left = m->len - m->pos;
    if (n > left)
        n = left;
    memcpy(p, m->body + m->pos, n);
    m->pos += n;
    return (ssize_t)n;
}

static int mem_write(void *ctx, const char *p, size_t n)
{
    struct mem_io *m = ctx;
    return sbuf_append(&m->out, p, n);
}

static void resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Splits "Status: ..." + headers + CRLF CRLF + body. */
static void parse_resp(const char *raw, size_t len, struct resp *r)
{
    const char *sep = strstr(raw, "\r\n\r\n");
    assert_non_null(sep);
    size_t hl = (size_t)(sep - raw) + 2;
    r->head = strndup(raw, hl);
    r->body_len = len - hl - 2;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, sep + 4, r->body_len);
    r->body[r->body_len] = '\0';
    assert_int_equal(strncmp(raw, "Status: ", 8), 0);
    r->status = atoi(raw + 8);
}

/* One request. uri may hold a query; extra is "NAME=value" strings ending with NULL, which
 * come first and so override what is made here (CONTENT_LENGTH, CONTENT_TYPE). The body is
 * body_len bytes (it may hold a NUL); without a body there is no CONTENT_LENGTH. */
static struct resp request_raw(const char *method, const char *uri, const char *cookie,
                               const char *body, size_t body_len, const char *const *extra)
{
    char *envp[32];
    int n = 0;
    char m[64], u[20000], q[20000], c[65536], cl[64];
    bool has_addr = false;
    for (int i = 0; extra && extra[i]; i++) {
        envp[n++] = (char *)extra[i];
        if (strncmp(extra[i], "REMOTE_ADDR=", 12) == 0)
            has_addr = true;
    }
    snprintf(m, sizeof m, "REQUEST_METHOD=%s", method);
    envp[n++] = m;
    snprintf(u, sizeof u, "REQUEST_URI=%s", uri);
    envp[n++] = u;
    const char *qs = strchr(uri, '?');
    snprintf(q, sizeof q, "QUERY_STRING=%s", qs ? qs + 1 : "");
    envp[n++] = q;
    if (cookie) {
        snprintf(c, sizeof c, "HTTP_COOKIE=%s", cookie);
        envp[n++] = c;
    }
    if (body) {
        snprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", body_len);
        envp[n++] = cl;
        envp[n++] = (char *)"CONTENT_TYPE=application/x-www-form-urlencoded";
    }
    if (!has_addr)
        envp[n++] = (char *)"REMOTE_ADDR=127.0.0.1";
    envp[n] = NULL;
    struct mem_io mio = {body ? body : "", body ? body_len : 0, 0, SBUF_INIT};
    struct http_io io = {envp, mem_read, mem_write, &mio};
    app_handle(&app, &io);
    struct resp r;
    memset(&r, 0, sizeof r);
    parse_resp(sbuf_str(&mio.out), mio.out.len, &r);
    sbuf_free(&mio.out);
    return r;
}

static struct resp request_env(const char *method, const char *uri, const char *cookie,
                               const char *body, const char *const *extra)
{
    return request_raw(method, uri, cookie, body, body ? strlen(body) : 0, extra);
}

static struct resp request(const char *method, const char *uri, const char *cookie,
                           const char *body)
{
    return request_env(method, uri, cookie, body, NULL);
}

/* The value of the first header `name` ("" when absent), copied into out. */
static const char *header(const struct resp *r, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *p = r->head; p && *p;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(eol - v), v);
            return out;
        }
        p = eol + 2;
    }
    return out;
}

/* The value of cookie `name` set by the response, or "". */
static const char *set_cookie(const struct resp *r, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "Set-Cookie: %s=", name);
    const char *p = strstr(r->head, pat);
    if (!p)
        return out;
    p += strlen(pat);
    size_t len = strcspn(p, ";\r");
    snprintf(out, n, "%.*s", (int)len, p);
    return out;
}

/* The text of the page's first notice (<p class="notice ...">TEXT</p>), or "". */
static const char *notice_of(const struct resp *r, char *out, size_t n)
{
    out[0] = '\0';
    const char *p = strstr(r->body, "<p class=\"notice");
    p = p ? strchr(p, '>') : NULL;
    const char *end = p ? strstr(p, "</p>") : NULL;
    if (end)
        snprintf(out, n, "%.*s", (int)(end - p - 1), p + 1);
    return out;
}

static void anon_csrf(char out[ADMIN_TOKEN_HEX])
{
    struct resp r = request("GET", "/admin/login", NULL, NULL);
    assert_int_equal(r.status, 200);
    set_cookie(&r, ADMIN_CSRF_COOKIE, out, ADMIN_TOKEN_HEX);
    assert_int_equal(strlen(out), 64);
    resp_free(&r);
}

/* Logs in and returns the session token and its CSRF token. */
static void login(char token[ADMIN_TOKEN_HEX], char csrf[ADMIN_TOKEN_HEX])
{
    char anon[ADMIN_TOKEN_HEX], cookie[128], body[512];
    anon_csrf(anon);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", anon);
    snprintf(body, sizeof body, "csrf=%s&username=%s&password=correct+horse+battery", anon,
             ADMIN_NAME);
    struct resp r = request("POST", "/admin/login", cookie, body);
    assert_int_equal(r.status, 303);
    set_cookie(&r, ADMIN_SESSION_COOKIE, token, ADMIN_TOKEN_HEX);
    assert_int_equal(strlen(token), 64);
    resp_free(&r);
    if (csrf) {
        char hash[UTIL_SHA256_HEX], sql[256];
        util_sha256_hex(token, hash);
        snprintf(sql, sizeof sql, "SELECT csrf_token FROM admin_sessions WHERE token_hash='%s'",
                 hash);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(writer, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        snprintf(csrf, ADMIN_TOKEN_HEX, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
}

static struct resp admin_get(const char *uri)
{
    static char token[ADMIN_TOKEN_HEX];
    if (!token[0])
        login(token, NULL);
    char cookie[128];
    snprintf(cookie, sizeof cookie, "afc_session=%s", token);
    return request("GET", uri, cookie, NULL);
}

static long long scalar(const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(writer, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The clock moves `seconds` forward for admin-fcgi's own records: every time stored in
 * the login counters, the rate limits and the sessions moves that much into the past. */
static void time_passes(int seconds)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "UPDATE login_failures SET window_start = strftime('%%Y-%%m-%%d %%H:%%M:%%f', "
             "window_start, '-%d seconds'), locked_until = strftime('%%Y-%%m-%%d %%H:%%M:%%f', "
             "locked_until, '-%d seconds');"
             "UPDATE rate_limits SET window_start = strftime('%%Y-%%m-%%d %%H:%%M:%%f', "
             "window_start, '-%d seconds');"
             "UPDATE admin_sessions SET created_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f', "
             "created_at, '-%d seconds'), expires_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f', "
             "expires_at, '-%d seconds');",
             seconds, seconds, seconds, seconds, seconds);
    assert_int_equal(sqlite3_exec(writer, sql, NULL, NULL, NULL), SQLITE_OK);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void check(int rc, char *err)
{
    if (rc < 0)
        fail_msg("%s", err ? err : "failed");
}

static int64_t now;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/admin-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db_path, sizeof db_path, "%s/platform.db", dir);
    app_config_defaults(&cfg);
    cfg.db_path = db_path;
    cfg.templates_dir = ADMIN_TEMPLATES_DIR;
    cfg.page_size = 10;
    cfg.scan_rows = 1000;
    char *err = NULL;
    assert_int_equal(tmpl_init(cfg.templates_dir), 0);
    check(app_prepare_db(&cfg, &err), err);

    assert_int_equal(sqlite3_open(db_path, &writer), SQLITE_OK);
    check(dbfill_open(writer, &fill, &err), err);
    now = util_now_ms();
    check(dbfill_generate(fill, 300, 3000, 10, 5, now - 60000, 7, NULL, &err), err);
    /* Hostile and awkward content. */
    check(dbfill_connect(fill, "sock-evil", "web", "mallory", "websocket", "10.0.0.66",
                         "<b>agent</b>", now - 5000, &err),
          err);
    check(dbfill_message(fill, "sock-evil", "\"><img src=x onerror=alert(1)>",
                         "<script>alert('x')</script> & \"quotes\"", "web", "lobby", now - 4000,
                         NULL, &err),
          err);
    check(dbfill_message(fill, "sock-evil", "mallory", "=HYPERLINK(\"http://evil\"),\nline two",
                         "web", "lobby", now - 3000, NULL, &err),
          err);
    check(dbfill_message(fill, "sock-evil", "mallory", "100% sure_thing", "web", "lobby",
                         now - 2000, NULL, &err),
          err);
    /* 25 messages in one room for pagination. */
    check(dbfill_connect(fill, "sock-pager", NULL, NULL, "polling", "10.0.0.7", "pager", now - 1900,
                         &err),
          err);
    check(dbfill_identify(fill, "sock-pager", "flutter", "pat", "2.0", &err), err);
    for (int i = 0; i < 25; i++) {
        char text[64];
        snprintf(text, sizeof text, "page message %02d", i);
        check(dbfill_message(fill, "sock-pager", "pat", text, "flutter", "pages", now - 1800 + i,
                             NULL, &err),
              err);
    }
    check(dbfill_status(fill, 4242, "0.1.0", now - 3600000, now, 0, 7, 70, 700, &err), err);

    bool created;
    struct dbi *rw;
    check(dbi_open(db_path, 0, 5000, &rw, &err), err);
    check(auth_set_admin(rw, ADMIN_NAME, ADMIN_PASSWORD, &created, &err), err);
    assert_true(created);
    dbi_close(rw);
    check(app_open(&app, &cfg, &err), err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    app_close(&app);
    dbfill_close(fill);
    sqlite3_close(writer);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

/* ---- landing page and subscriptions ---------------------------------------------------- */

static void test_landing(void **state)
{
    (void)state;
    char v[512];
    struct resp r = request("GET", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
    assert_non_null(
        strstr(header(&r, "Content-Security-Policy", v, sizeof v), "script-src 'self'"));
    assert_string_equal(header(&r, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_non_null(strstr(r.body, "Coming soon"));
    assert_non_null(strstr(r.body, "data-launch=\"2027-01-01T00:00:00Z\""));
    assert_non_null(strstr(r.body, "data-unit=\"days\""));
    char token[ADMIN_TOKEN_HEX];
    set_cookie(&r, ADMIN_CSRF_COOKIE, token, sizeof token);
    assert_int_equal(strlen(token), 64);
    char field[128];
    snprintf(field, sizeof field, "name=\"csrf\" value=\"%s\"", token);
    assert_non_null(strstr(r.body, field));
    assert_non_null(strstr(r.head, "HttpOnly; SameSite=Strict"));
    resp_free(&r);

    /* HEAD: the same headers, no body. */
    r = request("HEAD", "/", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);

    /* A launch date in the past says so instead of counting. */
    int64_t saved = cfg.launch_ms;
    cfg.launch_ms = now - 86400000;
    r = request("GET", "/", NULL, NULL);
    assert_non_null(strstr(r.body, "We are live"));
    assert_null(strstr(r.body, "data-unit=\"days\""));
    resp_free(&r);
    cfg.launch_ms = saved;
}

static void test_subscribe(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], body[512];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);

    /* No token, a wrong token, a token without its cookie: 403. */
    struct resp r = request("POST", "/subscribe", cookie, "email=a%40example.com");
    assert_int_equal(r.status, 403);
    resp_free(&r);
    snprintf(body, sizeof body, "csrf=%064d&email=a%%40example.com", 0);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    snprintf(body, sizeof body, "csrf=%s&email=a%%40example.com", csrf);
    r = request("POST", "/subscribe", NULL, body);
    assert_int_equal(r.status, 403);
    resp_free(&r);
    assert_int_equal(scalar("SELECT COUNT(*) FROM subscribers"), 0);

    /* A good address is stored once, whatever its case, and the answer does not tell
     * whether it was already on the list. */
    snprintf(body, sizeof body, "csrf=%s&email=+Ann.Lee%%2Btag%%40Example.com+", csrf);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 200);
    char first[512];
    notice_of(&r, first, sizeof first);
    assert_string_equal(first, "Thank you! We will write to Ann.Lee+tag@Example.com when we "
                               "launch.");
    resp_free(&r);
    snprintf(body, sizeof body, "csrf=%s&email=+Ann.Lee%%2Btag%%40Example.com+", csrf);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 200);
    char again[512];
    assert_string_equal(notice_of(&r, again, sizeof again), first);
    resp_free(&r);
    snprintf(body, sizeof body, "csrf=%s&email=ann.lee%%2Btag%%40example.COM", csrf);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "already"));
    resp_free(&r);
    assert_int_equal(scalar("SELECT COUNT(*) FROM subscribers"), 1);

    /* Bad addresses: 400, the value shown back escaped. */
    const char *bad[] = {"nobody",
                         "a%40b",
                         "a%40b.c",
                         "%40example.com",
                         "a..b%40example.com",
                         "a%40-x.com",
                         "%3Cscript%3E%40example.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "csrf=%s&email=%s", csrf, bad[i]);
        r = request("POST", "/subscribe", cookie, body);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "does not look like an e-mail address"));
        assert_null(strstr(r.body, "<script>@"));
        resp_free(&r);
    }
    assert_int_equal(scalar("SELECT COUNT(*) FROM subscribers"), 1);

    /* Each client address may post --subscribe-limit times per window, valid or not; then
     * 429 with Retry-After and nothing stored. Other addresses are not affected. */
    const char *flood[] = {"REMOTE_ADDR=203.0.113.200", NULL};
    for (unsigned i = 0; i < cfg.subscribe_limit; i++) {
        snprintf(body, sizeof body, "csrf=%s&email=flood%u%%40example.com", csrf, i);
        r = request_env("POST", "/subscribe", cookie, body, flood);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    snprintf(body, sizeof body, "csrf=%s&email=one.more%%40example.com", csrf);
    r = request_env("POST", "/subscribe", cookie, body, flood);
    assert_int_equal(r.status, 429);
    char ra[32];
    assert_true(atoi(header(&r, "Retry-After", ra, sizeof ra)) > 0);
    assert_non_null(strstr(r.body, "Too many sign-ups"));
    resp_free(&r);
    long long stored = scalar("SELECT COUNT(*) FROM subscribers");
    assert_int_equal(stored, 1 + cfg.subscribe_limit);
    const char *calm[] = {"REMOTE_ADDR=203.0.113.201", NULL};
    r = request_env("POST", "/subscribe", cookie, body, calm);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sqlite3_exec(writer, "DELETE FROM rate_limits", NULL, NULL, NULL);

    /* GET is not allowed there. */
    r = request("GET", "/subscribe", NULL, NULL);
    assert_int_equal(r.status, 405);
    char v[64];
    assert_string_equal(header(&r, "Allow", v, sizeof v), "POST");
    resp_free(&r);
}

/* --subscribe-limit 3 --subscribe-window 60: the fourth post within the minute gets 429
 * with a Retry-After inside the window; once the window is over the address may post again. */
static void test_subscribe_flags(void **state)
{
    (void)state;
    unsigned saved_limit = cfg.subscribe_limit;
    long saved_window = cfg.subscribe_window;
    cfg.subscribe_limit = 3;
    cfg.subscribe_window = 60;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], body[512], ra[32];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    const char *addr[] = {"REMOTE_ADDR=203.0.113.210", NULL};
    struct resp r;
    for (unsigned i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "csrf=%s&email=three%u%%40example.com", csrf, i);
        r = request_env("POST", "/subscribe", cookie, body, addr);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
    snprintf(body, sizeof body, "csrf=%s&email=four%%40example.com", csrf);
    r = request_env("POST", "/subscribe", cookie, body, addr);
    assert_int_equal(r.status, 429);
    int wait = atoi(header(&r, "Retry-After", ra, sizeof ra));
    assert_true(wait > 0 && wait <= 60);
    resp_free(&r);
    time_passes(61);
    r = request_env("POST", "/subscribe", cookie, body, addr);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    sqlite3_exec(writer, "DELETE FROM rate_limits", NULL, NULL, NULL);
    cfg.subscribe_limit = saved_limit;
    cfg.subscribe_window = saved_window;
}

/* The parsers' bounds and the forms' field limits, each one just past its limit. */
static void test_parser_bounds(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], form[256], field[128];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    const char *addr[] = {"REMOTE_ADDR=203.0.113.220", NULL};
    struct resp r;
    struct sbuf b = SBUF_INIT;

    /* --body-max 2048: a form of 3000 bytes gets 413; one of 2000 is read. */
    size_t saved = cfg.body_max;
    cfg.body_max = 2048;
    for (size_t size = 3000; size >= 2000; size -= 1000) {
        sbuf_reset(&b);
        sbuf_printf(&b, "csrf=%s&email=big%%40example.com&pad=", csrf);
        while (b.len < size)
            sbuf_putc(&b, 'x');
        r = request_env("POST", "/subscribe", cookie, sbuf_str(&b), addr);
        assert_int_equal(r.status, size > 2048 ? 413 : 200);
        resp_free(&r);
    }
    cfg.body_max = saved;

    /* A form of more than 64 fields: 400, not a form cut short. */
    sbuf_reset(&b);
    sbuf_printf(&b, "csrf=%s&email=many%%40example.com", csrf);
    for (int i = 0; i < 70; i++)
        sbuf_printf(&b, "&f%d=1", i);
    r = request_env("POST", "/subscribe", cookie, sbuf_str(&b), addr);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* A body that is not a urlencoded form, one shorter than its CONTENT_LENGTH, one holding
     * a NUL byte: 400. */
    snprintf(form, sizeof form, "csrf=%s&email=odd%%40example.com", csrf);
    const char *multipart[] = {"CONTENT_TYPE=multipart/form-data; boundary=x", addr[0], NULL};
    r = request_env("POST", "/subscribe", cookie, form, multipart);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    const char *longer[] = {"CONTENT_LENGTH=500", addr[0], NULL};
    r = request_env("POST", "/subscribe", cookie, form, longer);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    sbuf_reset(&b);
    sbuf_printf(&b, "%s", form);
    sbuf_putc(&b, '\0');
    sbuf_puts(&b, "&x=1");
    r = request_raw("POST", "/subscribe", cookie, b.data, b.len, addr);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* A path over 2 KiB: 414. */
    sbuf_reset(&b);
    sbuf_puts(&b, "/admin/");
    while (b.len < 3000)
        sbuf_putc(&b, 'p');
    r = request("GET", sbuf_str(&b), NULL, NULL);
    assert_int_equal(r.status, 414);
    resp_free(&r);

    /* A Cookie header over 32 KiB in fewer than 512 cookies: 400. */
    sbuf_reset(&b);
    for (int i = 0; i < 200; i++)
        sbuf_printf(&b, "%sbig%03d=%0200d", i ? "; " : "", i, i);
    assert_true(b.len > HTTP_COOKIE_MAX);
    r = request("GET", "/", sbuf_str(&b), NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* More than 512 cookies, in far less than 32 KiB: 400. */
    sbuf_reset(&b);
    for (int i = 0; i < 600; i++)
        sbuf_printf(&b, "%sc%d=1", i ? "; " : "", i);
    r = request("GET", "/", sbuf_str(&b), NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* A login name over 128 bytes or a password over 1024: 400, nothing checked. */
    for (int password = 0; password < 2; password++) {
        sbuf_reset(&b);
        sbuf_printf(&b, "csrf=%s&%s=", csrf,
                    password ? "username=alice&password" : "password=guess&username");
        for (int i = 0; i < (password ? 1100 : 200); i++)
            sbuf_putc(&b, 'p');
        r = request_env("POST", "/admin/login", cookie, sbuf_str(&b), addr);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "too long"));
        resp_free(&r);
    }

    /* An e-mail address over 254 bytes: 400, said so. */
    sbuf_reset(&b);
    sbuf_printf(&b, "csrf=%s&email=", csrf);
    for (int i = 0; i < 290; i++)
        sbuf_putc(&b, 'a');
    sbuf_puts(&b, "%40example.com");
    r = request_env("POST", "/subscribe", cookie, sbuf_str(&b), addr);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "too long to be an e-mail address"));
    resp_free(&r);

    /* A malformed afc_csrf cookie is replaced: the page sets a new token and its form
     * carries that one. */
    r = request("GET", "/admin/login", "afc_csrf=not-a-token", NULL);
    assert_int_equal(r.status, 200);
    char fresh[ADMIN_TOKEN_HEX];
    set_cookie(&r, ADMIN_CSRF_COOKIE, fresh, sizeof fresh);
    assert_int_equal(strlen(fresh), 64);
    snprintf(field, sizeof field, "name=\"csrf\" value=\"%s\"", fresh);
    assert_non_null(strstr(r.body, field));
    resp_free(&r);

    sbuf_free(&b);
    sqlite3_exec(writer, "DELETE FROM rate_limits", NULL, NULL, NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);

    /* A body over the limit: 413 before anything is read into memory. */
    size_t big = cfg.body_max + 1;
    char *body = malloc(big + 1);
    memset(body, 'a', big);
    body[big] = '\0';
    struct resp r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(body);

    /* Broken percent-encoding, encoded NUL, too many parameters: 400 pages. */
    const char *bad_queries[] = {"/admin/login?next=%zz", "/admin/login?next=%", "/?a=%00"};
    for (size_t i = 0; i < 3; i++) {
        r = request("GET", bad_queries[i], NULL, NULL);
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "could not be understood"));
        resp_free(&r);
    }
    struct sbuf many = SBUF_INIT;
    sbuf_puts(&many, "/?");
    for (int i = 0; i < 70; i++)
        sbuf_printf(&many, "k%d=v&", i);
    r = request("GET", sbuf_str(&many), NULL, NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    sbuf_free(&many);

    /* An over-long query string. */
    struct sbuf lng = SBUF_INIT;
    sbuf_puts(&lng, "/?x=");
    for (int i = 0; i < HTTP_QUERY_MAX + 10; i++)
        sbuf_putc(&lng, 'a');
    r = request("GET", sbuf_str(&lng), NULL, NULL);
    assert_int_equal(r.status, 414);
    resp_free(&r);
    sbuf_free(&lng);

    /* A bad CONTENT_LENGTH. */
    const char *extra[] = {"CONTENT_LENGTH=-5", NULL};
    r = request_env("POST", "/subscribe", cookie, NULL, extra);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* Unknown pages and methods. */
    r = request("GET", "/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    r = request("DELETE", "/admin", NULL, NULL);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    /* A full cookie jar of other applications' cookies (about 180 for a domain, over 8 KB
     * of Cookie header) does not break the pages, and ours are still found among them. */
    {
        char token[ADMIN_TOKEN_HEX];
        struct sbuf jar = SBUF_INIT;
        for (int i = 0; i < 180; i++)
            sbuf_printf(&jar, "%sanalytics_cookie_%03d=%032d", i ? "; " : "", i, i);
        assert_true(jar.len > 8192);
        r = request("GET", "/", sbuf_str(&jar), NULL);
        assert_int_equal(r.status, 200);
        resp_free(&r);
        login(token, NULL);
        sbuf_printf(&jar, "; afc_session=%s; last_cookie=1", token);
        r = request("GET", "/admin", sbuf_str(&jar), NULL);
        assert_int_equal(r.status, 200);
        /* the dashboard links the Socket.IO Admin UI served at /admin/live/ (rtd --admin-ui) */
        assert_non_null(strstr(r.body, "<a href=\"/admin/live/\">Live console</a>"));
        resp_free(&r);
        /* Still bounded: a Cookie header over HTTP_COOKIE_MAX is refused. */
        while (jar.len <= HTTP_COOKIE_MAX)
            sbuf_puts(&jar, "; filler=0123456789012345678901234567890123456789");
        r = request("GET", "/", sbuf_str(&jar), NULL);
        assert_int_equal(r.status, 400);
        resp_free(&r);
        sbuf_free(&jar);
    }
    /* Garbage cookies are ignored, not fatal. */
    r = request("GET", "/admin", "afc_session=\"zz\"; ;;=; afc_csrf", NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);
}

/* ---- login, sessions, logout ----------------------------------------------------------- */

static void test_admin_requires_login(void **state)
{
    (void)state;
    const char *pages[] = {"/admin", "/admin/", "/admin/messages", "/admin/messages.csv",
                           "/admin/connections"};
    char v[512];
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        struct resp r = request("GET", pages[i], NULL, NULL);
        assert_int_equal(r.status, 302);
        assert_int_equal(strncmp(header(&r, "Location", v, sizeof v), "/admin/login", 12), 0);
        resp_free(&r);
    }
    /* What scripts fetch answers 401 with JSON: a redirect to an HTML page is no answer. */
    struct resp r = request("GET", "/admin/stats.json", NULL, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json; charset=utf-8");
    assert_string_equal(header(&r, "Location", v, sizeof v), "");
    assert_non_null(strstr(r.body, "\"error\":\"not logged in\""));
    resp_free(&r);
    r = request("GET", "/admin/messages?sender=bob&q=a+b", NULL, NULL);
    assert_string_equal(header(&r, "Location", v, sizeof v),
                        "/admin/login?next=%2Fadmin%2Fmessages%3Fsender%3Dbob%26q%3Da%2Bb");
    resp_free(&r);
    /* A made-up session is no session. */
    char fake[128];
    snprintf(fake, sizeof fake, "afc_session=%064d", 7);
    r = request("GET", "/admin", fake, NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);
    /* POST without a session: back to the login page. */
    r = request("POST", "/admin/logout", NULL, "csrf=x");
    assert_int_equal(r.status, 303);
    resp_free(&r);
}

static void test_login(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], body[512], v[512];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);

    /* Without the CSRF token: 403, no session. */
    struct resp r =
        request("POST", "/admin/login", cookie, "username=alice&password=correct+horse+battery");
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.head, "afc_session="));
    resp_free(&r);

    /* Wrong password: 401 and the name kept (escaped) in the form. */
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=wrong", csrf);
    r = request("POST", "/admin/login", cookie, body);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "Wrong name or password"));
    assert_null(strstr(r.head, "afc_session="));
    resp_free(&r);
    const char *elsewhere[] = {"REMOTE_ADDR=203.0.113.40", NULL};
    snprintf(body, sizeof body, "csrf=%s&username=%%22%%3E%%3Cb%%3Ebold&password=wrong", csrf);
    r = request_env("POST", "/admin/login", cookie, body, elsewhere);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body, "value=\"&quot;&gt;&lt;b&gt;bold\""));
    assert_null(strstr(r.body, "<b>bold"));
    resp_free(&r);

    /* An admin's name is shown as text in the page's header. */
    {
        bool created;
        char *err = NULL;
        struct dbi *rw;
        check(dbi_open(db_path, 0, 5000, &rw, &err), err);
        check(auth_set_admin(rw, "<u>eve</u>", "eve's password", &created, &err), err);
        dbi_close(rw);
        snprintf(body, sizeof body,
                 "csrf=%s&username=%%3Cu%%3Eeve%%3C%%2Fu%%3E&password=eve%%27s+password", csrf);
        r = request_env("POST", "/admin/login", cookie, body, elsewhere);
        assert_int_equal(r.status, 303);
        char eve[ADMIN_TOKEN_HEX], sc[128];
        set_cookie(&r, ADMIN_SESSION_COOKIE, eve, sizeof eve);
        resp_free(&r);
        snprintf(sc, sizeof sc, "afc_session=%s", eve);
        r = request("GET", "/admin", sc, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "<span class=\"who\">&lt;u&gt;eve&lt;/u&gt;</span>"));
        assert_null(strstr(r.body, "<u>eve"));
        resp_free(&r);
    }

    /* Right password: 303 to the page asked for, a hardened cookie, the token stored only
     * as its SHA-256. */
    snprintf(body, sizeof body,
             "csrf=%s&username=alice&password=correct+horse+battery&next=%%2Fadmin%%2Fmessages",
             csrf);
    r = request("POST", "/admin/login", cookie, body);
    assert_int_equal(r.status, 303);
    assert_string_equal(header(&r, "Location", v, sizeof v), "/admin/messages");
    header(&r, "Set-Cookie", v, sizeof v);
    assert_non_null(strstr(v, "; Path=/admin; Max-Age=43200; HttpOnly; SameSite=Strict"));
    assert_null(strstr(v, "Secure"));
    char token[ADMIN_TOKEN_HEX], hash[UTIL_SHA256_HEX], sql[256];
    set_cookie(&r, ADMIN_SESSION_COOKIE, token, sizeof token);
    resp_free(&r);
    util_sha256_hex(token, hash);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM admin_sessions WHERE token_hash = '%s'", hash);
    assert_int_equal(scalar(sql), 1);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM admin_sessions WHERE token_hash = '%s'", token);
    assert_int_equal(scalar(sql), 0);

    /* Over https the cookie is Secure. */
    const char *https[] = {"HTTPS=on", NULL};
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=correct+horse+battery", csrf);
    r = request_env("POST", "/admin/login", cookie, body, https);
    assert_int_equal(r.status, 303);
    assert_non_null(strstr(header(&r, "Set-Cookie", v, sizeof v), "; Secure"));
    resp_free(&r);
    const char *xfp[] = {"HTTP_X_FORWARDED_PROTO=https", NULL};
    r = request_env("POST", "/admin/login", cookie, body, xfp);
    assert_non_null(strstr(header(&r, "Set-Cookie", v, sizeof v), "; Secure"));
    resp_free(&r);

    /* Redirect targets outside /admin are refused. */
    const char *evil[] = {"%2F%2Fevil.example", "https%3A%2F%2Fevil.example", "%2Fadmin%2F%2Fevil",
                          "%2Fadminevil", "%2Fadmin%2Flogout"};
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        snprintf(body, sizeof body, "csrf=%s&username=alice&password=correct+horse+battery&next=%s",
                 csrf, evil[i]);
        r = request("POST", "/admin/login", cookie, body);
        assert_int_equal(r.status, 303);
        assert_string_equal(header(&r, "Location", v, sizeof v), "/admin");
        resp_free(&r);
    }

    /* A logged-in admin visiting the login page goes to the dashboard. */
    char sc[128];
    snprintf(sc, sizeof sc, "afc_session=%s", token);
    r = request("GET", "/admin/login", sc, NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);
}

static void test_login_throttle(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], body[512], v[64];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    const char *addr[] = {"REMOTE_ADDR=203.0.113.9", NULL};
    /* Earlier tests' wrong passwords count for the name too. */
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=guess", csrf);
    for (unsigned i = 0; i < cfg.login_max_failures; i++) {
        struct resp r = request_env("POST", "/admin/login", cookie, body, addr);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    /* Locked now for that name, even with the right password, from that address... */
    char good[512];
    snprintf(good, sizeof good, "csrf=%s&username=alice&password=correct+horse+battery", csrf);
    struct resp r = request_env("POST", "/admin/login", cookie, good, addr);
    assert_int_equal(r.status, 429);
    /* a lock of --login-lockout, not just the name's slow-down (at most 60 s) */
    int wait = atoi(header(&r, "Retry-After", v, sizeof v));
    assert_true(wait > 60 && wait <= cfg.login_lockout);
    assert_non_null(strstr(r.body, "Too many failed logins"));
    resp_free(&r);
    /* ... but not the name: an address that has not failed gets in. */
    const char *other[] = {"REMOTE_ADDR=198.51.100.1", NULL};
    r = request_env("POST", "/admin/login", cookie, good, other);
    assert_int_equal(r.status, 303);
    resp_free(&r);
    /* An IPv6 client counts as its /64. */
    const char *v6a[] = {"REMOTE_ADDR=2001:db8:1:2::a", NULL};
    const char *v6b[] = {"REMOTE_ADDR=2001:db8:1:2:ffff::b", NULL};
    char carol[512];
    snprintf(carol, sizeof carol, "csrf=%s&username=carol&password=guess", csrf);
    for (unsigned i = 0; i < cfg.login_max_failures; i++) {
        r = request_env("POST", "/admin/login", cookie, carol, i % 2 ? v6a : v6b);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request_env("POST", "/admin/login", cookie, carol, v6a);
    assert_int_equal(r.status, 429);
    assert_true(atoi(header(&r, "Retry-After", v, sizeof v)) > 60);
    resp_free(&r);
    /* Once the lock is over, the right password works and clears the address's counters. */
    sqlite3_exec(writer,
                 "UPDATE login_failures SET locked_until = '2000-01-01 00:00:00.000', "
                 "window_start = '2000-01-01 00:00:00.000'",
                 NULL, NULL, NULL);
    r = request_env("POST", "/admin/login", cookie, good, addr);
    assert_int_equal(r.status, 303);
    resp_free(&r);
    assert_int_equal(scalar("SELECT COUNT(*) FROM login_failures WHERE key IN "
                            "('pair:203.0.113.9|alice', 'ip:203.0.113.9')"),
                     0);

    /* An address that guesses many names is locked for all of them. */
    const char *spray[] = {"REMOTE_ADDR=192.0.2.77", NULL};
    for (unsigned i = 0; i < cfg.login_addr_failures; i++) {
        snprintf(body, sizeof body, "csrf=%s&username=user%u&password=guess", csrf, i);
        r = request_env("POST", "/admin/login", cookie, body, spray);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request_env("POST", "/admin/login", cookie, good, spray);
    assert_int_equal(r.status, 429);
    resp_free(&r);
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
}

/* The throttle's flags: --login-failures, --login-lockout, --login-window and
 * --login-address-failures set to other values than the defaults. */
static void test_login_limits(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], wrong[512], good[512], body[512], v[64];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    snprintf(wrong, sizeof wrong, "csrf=%s&username=alice&password=guess", csrf);
    snprintf(good, sizeof good, "csrf=%s&username=alice&password=correct+horse+battery", csrf);
    struct app_config saved = cfg;
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
    cfg.login_max_failures = 3;
    cfg.login_lockout = 120;
    cfg.login_window = 60;
    cfg.login_addr_failures = 4;
    struct resp r;

    /* The third failure locks the address out of the name for two minutes, and no longer. */
    const char *a1[] = {"REMOTE_ADDR=203.0.113.31", NULL};
    for (int i = 0; i < 3; i++) {
        r = request_env("POST", "/admin/login", cookie, wrong, a1);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request_env("POST", "/admin/login", cookie, good, a1);
    assert_int_equal(r.status, 429);
    int wait = atoi(header(&r, "Retry-After", v, sizeof v));
    assert_true(wait > 60 && wait <= 120);
    resp_free(&r);
    time_passes(100);
    r = request_env("POST", "/admin/login", cookie, good, a1);
    assert_int_equal(r.status, 429);
    resp_free(&r);
    time_passes(21);
    r = request_env("POST", "/admin/login", cookie, good, a1);
    assert_int_equal(r.status, 303);
    resp_free(&r);

    /* Failures older than the window no longer count: two, a minute later two more, and the
     * address is still not locked. */
    const char *a2[] = {"REMOTE_ADDR=203.0.113.32", NULL};
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            time_passes(61);
        r = request_env("POST", "/admin/login", cookie, wrong, a2);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request_env("POST", "/admin/login", cookie, good, a2);
    assert_int_equal(r.status, 303);
    resp_free(&r);

    /* An address that fails for four names is locked out of every name. */
    const char *a3[] = {"REMOTE_ADDR=203.0.113.33", NULL};
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "csrf=%s&username=nobody%d&password=guess", csrf, i);
        r = request_env("POST", "/admin/login", cookie, body, a3);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    r = request_env("POST", "/admin/login", cookie, good, a3);
    assert_int_equal(r.status, 429);
    wait = atoi(header(&r, "Retry-After", v, sizeof v));
    assert_true(wait > 60 && wait <= 120);
    resp_free(&r);

    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
    cfg = saved;
}

/* A name failed from many addresses is never locked: the addresses that failed wait at
 * most a minute before their next try, and an address that has not failed logs in. */
static void test_login_name_slowdown(void **state)
{
    (void)state;
    char csrf[ADMIN_TOKEN_HEX], cookie[128], wrong[512], good[512], v[64], addr[48];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    snprintf(wrong, sizeof wrong, "csrf=%s&username=alice&password=guess", csrf);
    snprintf(good, sizeof good, "csrf=%s&username=alice&password=correct+horse+battery", csrf);
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
    const char *from[] = {addr, NULL};
    struct resp r;
    /* Twelve addresses fail once each: each is checked (none has failed before). */
    for (int i = 1; i <= 12; i++) {
        snprintf(addr, sizeof addr, "REMOTE_ADDR=198.18.0.%d", i);
        r = request_env("POST", "/admin/login", cookie, wrong, from);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    /* One of them, now with the right password, is asked to wait, at most a minute. */
    snprintf(addr, sizeof addr, "REMOTE_ADDR=198.18.0.1");
    r = request_env("POST", "/admin/login", cookie, good, from);
    assert_int_equal(r.status, 429);
    int wait = atoi(header(&r, "Retry-After", v, sizeof v));
    assert_true(wait >= 1 && wait <= 60);
    resp_free(&r);
    /* An address that has not failed is not. */
    snprintf(addr, sizeof addr, "REMOTE_ADDR=198.18.1.1");
    r = request_env("POST", "/admin/login", cookie, good, from);
    assert_int_equal(r.status, 303);
    resp_free(&r);
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);
}

static void test_logout_and_expiry(void **state)
{
    (void)state;
    char token[ADMIN_TOKEN_HEX], csrf[ADMIN_TOKEN_HEX], cookie[128], body[128], v[512];
    login(token, csrf);
    snprintf(cookie, sizeof cookie, "afc_session=%s", token);
    struct resp r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 200);
    /* The logout form carries the session's CSRF token. */
    char field[128];
    snprintf(field, sizeof field, "name=\"csrf\" value=\"%s\"", csrf);
    assert_non_null(strstr(r.body, field));
    resp_free(&r);

    r = request("POST", "/admin/logout", cookie, "csrf=0123");
    assert_int_equal(r.status, 403);
    resp_free(&r);
    snprintf(body, sizeof body, "csrf=%s", csrf);
    r = request("POST", "/admin/logout", cookie, body);
    assert_int_equal(r.status, 303);
    assert_string_equal(header(&r, "Location", v, sizeof v), "/admin/login?bye=1");
    assert_non_null(strstr(header(&r, "Set-Cookie", v, sizeof v), "afc_session=; Path=/admin; "
                                                                  "Max-Age=0"));
    resp_free(&r);
    r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);
    r = request("GET", "/admin/login?bye=1", NULL, NULL);
    assert_non_null(strstr(r.body, "You are logged out"));
    resp_free(&r);

    /* An expired session is refused. */
    login(token, NULL);
    snprintf(cookie, sizeof cookie, "afc_session=%s", token);
    char hash[UTIL_SHA256_HEX], sql[256];
    util_sha256_hex(token, hash);
    snprintf(sql, sizeof sql,
             "UPDATE admin_sessions SET expires_at = '2001-01-01 00:00:00.000' "
             "WHERE token_hash = '%s'",
             hash);
    assert_int_equal(sqlite3_exec(writer, sql, NULL, NULL, NULL), SQLITE_OK);
    r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);

    /* --session-ttl 60: the session works for a minute after the login, then no more. */
    long saved_ttl = cfg.session_ttl;
    cfg.session_ttl = 60;
    login(token, NULL);
    snprintf(cookie, sizeof cookie, "afc_session=%s", token);
    r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    time_passes(50);
    r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    time_passes(11);
    r = request("GET", "/admin", cookie, NULL);
    assert_int_equal(r.status, 302);
    resp_free(&r);
    cfg.session_ttl = saved_ttl;
}

/* ---- dashboard ----------------------------------------------------------------------- */

static void test_dashboard(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin");
    assert_int_equal(r.status, 200);
    char want[160], v[40];
    util_format_count(scalar("SELECT COUNT(*) FROM messages"), v, sizeof v);
    snprintf(want, sizeof want, "data-stat=\"messages.total\">%s<", v);
    assert_non_null(strstr(r.body, want));
    util_format_count(scalar("SELECT COUNT(*) FROM connections"), v, sizeof v);
    snprintf(want, sizeof want, "data-stat=\"connections.total\">%s<", v);
    assert_non_null(strstr(r.body, want));
    snprintf(want, sizeof want, "data-stat=\"connections.active\">%lld<",
             scalar("SELECT COUNT(*) FROM connections WHERE status='active'"));
    assert_non_null(strstr(r.body, want));
    /* 24 hourly and 30 daily bars, server-rendered. */
    assert_int_equal(count_of(r.body, "<rect class=\"bar\""), 24 + 30);
    assert_non_null(strstr(r.body, "data-chart=\"hours\""));
    assert_non_null(strstr(r.body, "<td>flutter</td>"));
    assert_non_null(strstr(r.body, ">running<"));
    assert_non_null(strstr(r.body, "data-live=\"/admin/stats.json\""));
    /* The node table: SQLite has one row, rtd's. */
    assert_int_equal(count_of(r.body, "<tr data-node="), 1);
    assert_non_null(strstr(r.body, "<tr data-node=\"local\"><td>local</td>"));
    resp_free(&r);

    /* Platform names are shown as text. */
    char *err = NULL;
    check(dbfill_connect(fill, "sock-html", "<i>plat</i>", NULL, "websocket", "::1", "ua",
                         util_now_ms(), &err),
          err);
    r = admin_get("/admin");
    assert_non_null(strstr(r.body, "<td>&lt;i&gt;plat&lt;/i&gt;</td>"));
    assert_null(strstr(r.body, "<i>plat"));
    resp_free(&r);
    check(dbfill_disconnect(fill, "sock-html", util_now_ms(), &err), err);

    /* Health follows the heartbeat. */
    check(
        dbfill_status(fill, 4242, "0.1.0", now - 3600000, util_now_ms() - 60000, 0, 0, 0, 0, &err),
        err);
    r = admin_get("/admin");
    assert_non_null(strstr(r.body, ">not responding<"));
    resp_free(&r);
    check(dbfill_status(fill, 4242, "0.1.0", now - 3600000, now, util_now_ms(), 0, 0, 0, &err),
          err);
    r = admin_get("/admin");
    assert_non_null(strstr(r.body, ">stopped<"));
    resp_free(&r);
    sqlite3_exec(writer, "DELETE FROM daemon_status", NULL, NULL, NULL);
    r = admin_get("/admin");
    assert_non_null(strstr(r.body, ">never started<"));
    assert_non_null(strstr(r.body, "No rtd has started on this database yet."));
    resp_free(&r);
    check(dbfill_status(fill, 4242, "0.1.0", now - 3600000, util_now_ms(), 0, 7, 70, 700, &err),
          err);
}

/* rtd --laravel-config's heartbeat figures: broadcasts on the dashboard, channels with
 * their subscribers on the connections page (escaped), nothing of it without them. */
static void test_laravel(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin");
    assert_null(strstr(r.body, "Laravel broadcasts"));
    resp_free(&r);
    r = admin_get("/admin/connections");
    assert_null(strstr(r.body, "Laravel channels"));
    resp_free(&r);
    assert_int_equal(sqlite3_exec(writer,
                                  "UPDATE daemon_status SET laravel = '{\"broadcasts\":1234,"
                                  "\"deliveries\":5678,\"channels\":{\"orders\":3,"
                                  "\"presence-<b>room\":7}}'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    r = admin_get("/admin");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "Laravel broadcasts"));
    assert_non_null(strstr(r.body, "<span data-laravel=\"broadcasts\" data-stat=\"laravel.broadcasts\">1,234</span>"));
    assert_non_null(strstr(r.body, "<span data-laravel=\"deliveries\" data-stat=\"laravel.deliveries\">5,678</span>"));
    resp_free(&r);
    r = admin_get("/admin/connections");
    assert_int_equal(r.status, 200);
    const char *t = strstr(r.body, "Laravel channels");
    assert_non_null(t);
    const char *room = strstr(t, ">presence-&lt;b&gt;room</td>\n      <td class=\"num\" data-label=\"Subscribers\">7</td>");
    const char *orders = strstr(t, ">orders</td>\n      <td class=\"num\" data-label=\"Subscribers\">3</td>");
    assert_non_null(room);
    assert_non_null(orders);
    assert_true(room < orders); /* most subscribed first */
    assert_null(strstr(r.body, "<b>room"));
    resp_free(&r);
    /* the live refresh's figures */
    r = admin_get("/admin/stats.json");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"laravel\":{\"nodes\":1,\"broadcasts\":1234,\"deliveries\":5678},"));
    resp_free(&r);
    assert_int_equal(sqlite3_exec(writer, "UPDATE daemon_status SET laravel = NULL", NULL, NULL, NULL),
                     SQLITE_OK);
}

static void test_stats_json(void **state)
{
    (void)state;
    /* A platform name that needs escaping in JSON. */
    char *err = NULL;
    check(dbfill_connect(fill, "sock-json", "</script>\"x\\", NULL, "websocket", "::1", "ua",
                         util_now_ms(), &err),
          err);
    struct resp r = admin_get("/admin/stats.json");
    assert_int_equal(r.status, 200);
    char v[128];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "application/json; charset=utf-8");
    assert_string_equal(header(&r, "Cache-Control", v, sizeof v), "no-store");
    char want[128];
    snprintf(want, sizeof want, "\"messages\":{\"total\":%lld,",
             scalar("SELECT COUNT(*) FROM messages"));
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "\"name\":\"\\u003c/script\\u003e\\\"x\\\\\""));
    assert_null(strstr(r.body, "</script>"));
    assert_non_null(strstr(r.body, "\"perHour\":{\"labels\":["));
    assert_non_null(strstr(r.body, "\"health\":\"running\""));
    assert_non_null(strstr(r.body, "\"nodes\":[{\"node\":\"local\",\"health\":\"running\","));
    resp_free(&r);
    check(dbfill_disconnect(fill, "sock-json", util_now_ms(), &err), err);
}

static void test_json_escape(void **state)
{
    (void)state;
    struct sbuf b = SBUF_INIT;
    json_str(&b, "a\"b\\c\n\x01<&>\xe2\x80\xa8\xff\xc3\xa9");
    assert_string_equal(sbuf_str(&b),
                        "\"a\\\"b\\\\c\\u000a\\u0001\\u003c\\u0026\\u003e\\u2028\\ufffd\xc3\xa9\"");
    sbuf_free(&b);
}

/* ---- messages ------------------------------------------------------------------------ */

static void test_messages_escaping(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin/messages?room=lobby");
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "<script>alert"));
    assert_null(strstr(r.body, "<img src=x"));
    assert_non_null(strstr(r.body, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                                   "&quot;quotes&quot;"));
    assert_non_null(strstr(r.body, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    /* Line breaks are kept (the cell is white-space: pre-wrap), the rest still escaped. */
    assert_non_null(strstr(r.body, ">=HYPERLINK(&quot;http://evil&quot;),\nline two</td>"));
    resp_free(&r);
    /* Reflected filter values are escaped too. */
    r = admin_get("/admin/messages?sender=%22%3E%3Cscript%3Ex%3C%2Fscript%3E");
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "<script>x"));
    assert_non_null(strstr(r.body, "value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
    resp_free(&r);
}

static void test_messages_filters(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin/messages?platform=laravel");
    assert_int_equal(r.status, 200);
    assert_int_equal(count_of(r.body, "<span class=\"tag\">laravel</span>"), 10);
    assert_int_equal(count_of(r.body, "<span class=\"tag\">web</span>"), 0);
    assert_non_null(strstr(r.body, "<option value=\"laravel\" selected>"));
    resp_free(&r);

    r = admin_get("/admin/messages?sender=mallory");
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 2);
    resp_free(&r);

    /* Text: case-insensitive contains, with % and _ taken literally. */
    r = admin_get("/admin/messages?q=HYPERLINK");
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 1);
    resp_free(&r);
    r = admin_get("/admin/messages?q=100%25+sure_");
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 1);
    resp_free(&r);
    r = admin_get("/admin/messages?q=%25");
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 1);
    resp_free(&r);

    /* Combined filters. */
    r = admin_get("/admin/messages?room=pages&sender=pat&platform=flutter&q=message+2");
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 5);
    resp_free(&r);

    /* Dates: today only has the newest rows; a day long ago has none; the to date is
     * inclusive. */
    char ts[UTIL_TS_LEN], uri[256];
    util_format_ts(now, ts);
    snprintf(uri, sizeof uri, "/admin/messages?room=pages&from=%.10s&to=%.10s", ts, ts);
    r = admin_get(uri);
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 10);
    resp_free(&r);
    r = admin_get("/admin/messages?from=2001-01-01&to=2001-01-02");
    assert_non_null(strstr(r.body, "No messages match"));
    resp_free(&r);
    util_format_ts(now - 5L * 86400000, ts);
    snprintf(uri, sizeof uri, "/admin/messages?from=%.10s&to=%.10s", ts, ts);
    r = admin_get(uri);
    assert_int_equal(count_of(r.body, "<tr>\n    <td class=\"num\""), 10);
    char day[16];
    snprintf(day, sizeof day, ">%.10s ", ts);
    assert_int_equal(count_of(r.body, day), 10); /* every row is from that day */
    resp_free(&r);

    /* Bad filters: 400. */
    const char *bad[] = {"/admin/messages?from=yesterday", "/admin/messages?to=2026-02-30",
                         "/admin/messages?before=abc", "/admin/messages?after=-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = admin_get(bad[i]);
        assert_int_equal(r.status, 400);
        resp_free(&r);
    }
    struct sbuf lng = SBUF_INIT;
    sbuf_puts(&lng, "/admin/messages?sender=");
    for (int i = 0; i < 300; i++)
        sbuf_putc(&lng, 'x');
    r = admin_get(sbuf_str(&lng));
    assert_int_equal(r.status, 400);
    resp_free(&r);
    sbuf_free(&lng);
}

/* The ids on a history page, in order. */
static int page_ids(const char *body, long long *ids, int max)
{
    int n = 0;
    const char *p = body;
    while (n < max && (p = strstr(p, "<td class=\"num\" data-label=\"#\">"))) {
        p += strlen("<td class=\"num\" data-label=\"#\">");
        ids[n++] = atoll(p);
    }
    return n;
}

static void link_qs(const char *body, const char *rel, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\" rel=\"%s\">", rel);
    const char *end = strstr(body, pat);
    out[0] = '\0';
    if (!end)
        return;
    const char *start = end;
    while (start > body && start[-1] != '?')
        start--;
    snprintf(out, n, "%.*s", (int)(end - start), start);
    /* &amp; in the attribute */
    for (char *a; (a = strstr(out, "&amp;"));)
        memmove(a + 1, a + 5, strlen(a + 5) + 1);
}

static void test_messages_pagination(void **state)
{
    (void)state;
    long long ids[64], all[64];
    int total = 0;
    char qs[256], uri[300];
    struct resp r = admin_get("/admin/messages?room=pages");
    for (int pageno = 0; pageno < 5; pageno++) {
        int n = page_ids(r.body, ids, 64);
        assert_true(n <= 10);
        for (int i = 0; i < n; i++) {
            if (total)
                assert_true(ids[i] < all[total - 1]); /* newest first, no repeats */
            all[total++] = ids[i];
        }
        link_qs(r.body, "next", qs, sizeof qs);
        resp_free(&r);
        if (!qs[0])
            break;
        assert_non_null(strstr(qs, "room=pages&before="));
        snprintf(uri, sizeof uri, "/admin/messages?%s", qs);
        r = admin_get(uri);
    }
    assert_int_equal(total, 25);
    /* From the last page back: the newer link returns the page before it. */
    snprintf(uri, sizeof uri, "/admin/messages?room=pages&before=%lld", all[19]);
    r = admin_get(uri);
    assert_int_equal(page_ids(r.body, ids, 64), 5);
    link_qs(r.body, "prev", qs, sizeof qs);
    resp_free(&r);
    snprintf(uri, sizeof uri, "/admin/messages?%s", qs);
    r = admin_get(uri);
    assert_int_equal(page_ids(r.body, ids, 64), 10);
    assert_true(ids[0] == all[10] && ids[9] == all[19]);
    resp_free(&r);
}

static void test_messages_scan_cap(void **state)
{
    (void)state;
    /* A text nobody wrote, with a 1000-row scan limit: the page stops early and offers to
     * go on. */
    struct resp r = admin_get("/admin/messages?q=no-such-text-anywhere");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "without filling the page"));
    char qs[256];
    link_qs(r.body, "next", qs, sizeof qs);
    assert_non_null(strstr(qs, "q=no-such-text-anywhere&before="));
    resp_free(&r);
}

static void test_messages_csv(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin/messages.csv?sender=mallory");
    assert_int_equal(r.status, 200);
    char v[256];
    assert_string_equal(header(&r, "Content-Type", v, sizeof v), "text/csv; charset=utf-8");
    assert_non_null(
        strstr(header(&r, "Content-Disposition", v, sizeof v), "attachment; filename=\"messages-"));
    assert_int_equal(strncmp(r.body, "id,created_at,platform,sender,room,socket_id,text\r\n", 51),
                     0);
    /* Quotes doubled, the newline kept inside quotes, a formula defused. */
    assert_non_null(strstr(r.body, ",mallory,lobby,sock-evil,\"'=HYPERLINK(\"\"http://evil\"\"),\n"
                                   "line two\"\r\n"));
    assert_non_null(strstr(r.body, ",mallory,lobby,sock-evil,100% sure_thing\r\n"));
    resp_free(&r);

    /* The whole filtered set, not one page. */
    r = admin_get("/admin/messages.csv?platform=web");
    long long want = scalar("SELECT COUNT(*) FROM messages WHERE platform = 'web'");
    assert_int_equal(count_of(r.body, ",web,"), want);
    resp_free(&r);
    r = admin_get("/admin/messages.csv");
    assert_int_equal(count_of(r.body, "\r\n"), scalar("SELECT COUNT(*) FROM messages") + 1 +
                                                   0 /* the embedded \n is not \r\n */);
    resp_free(&r);
    r = admin_get("/admin/messages.csv?from=nope");
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* ';' separates cells in many locales' spreadsheets, tabs in others: fields holding them
     * are quoted, and a formula in user text is defused. Values the server made (socket ids,
     * platform tokens) are written as stored even when they start with '-', so they still
     * match the database. */
    char *err = NULL;
    check(dbfill_connect(fill, "-dash-sock", "-lab", "dee", "websocket", "10.0.0.9", "ua",
                         now - 1000, &err),
          err);
    check(dbfill_message(fill, "-dash-sock", "semi;colon", "hi;=HYPERLINK(\"http://evil\")", "-lab",
                         "r;1", now - 900, NULL, &err),
          err);
    check(dbfill_message(fill, "-dash-sock", "semi;colon", "-1+2\tthere", "-lab", NULL, now - 800,
                         NULL, &err),
          err);
    check(
        dbfill_message(fill, "-dash-sock", "@dee", "plain", "-lab", "=room", now - 700, NULL, &err),
        err);
    check(dbfill_message(fill, "-dash-sock", "dee", "+1+1", "-lab", NULL, now - 690, NULL, &err),
          err);
    check(dbfill_message(fill, "-dash-sock", "dee", "\tTAB", "-lab", NULL, now - 680, NULL, &err),
          err);
    check(dbfill_message(fill, "-dash-sock", "dee", "\nNL", "-lab", NULL, now - 670, NULL, &err),
          err);
    check(dbfill_message(fill, "-dash-sock", "dee", "\rCR", "-lab", NULL, now - 660, NULL, &err),
          err);
    check(dbfill_disconnect(fill, "-dash-sock", now - 600, &err), err);
    r = admin_get("/admin/messages.csv?platform=-lab");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, ",-lab,\"semi;colon\",\"r;1\",-dash-sock,"
                                   "\"hi;=HYPERLINK(\"\"http://evil\"\")\"\r\n"));
    assert_non_null(strstr(r.body, ",-lab,\"semi;colon\",,-dash-sock,\"'-1+2\tthere\"\r\n"));
    assert_non_null(strstr(r.body, ",-lab,\"'@dee\",\"'=room\",-dash-sock,plain\r\n"));
    assert_non_null(strstr(r.body, ",-lab,dee,,-dash-sock,\"'+1+1\"\r\n"));
    assert_non_null(strstr(r.body, ",-lab,dee,,-dash-sock,\"'\tTAB\"\r\n"));
    assert_non_null(strstr(r.body, ",-lab,dee,,-dash-sock,\"'\nNL\"\r\n"));
    assert_non_null(strstr(r.body, ",-lab,dee,,-dash-sock,\"'\rCR\"\r\n"));
    assert_null(strstr(r.body, "'-lab"));
    assert_null(strstr(r.body, "'-dash"));
    resp_free(&r);
}

/* ---- connections --------------------------------------------------------------------- */

static void test_connections(void **state)
{
    (void)state;
    struct resp r = admin_get("/admin/connections");
    assert_int_equal(r.status, 200);
    char want[96];
    snprintf(want, sizeof want, "Connected now <span class=\"count\">%lld</span>",
             scalar("SELECT COUNT(*) FROM connections WHERE status = 'active'"));
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "sock-evil"));
    assert_non_null(strstr(r.body, "&lt;b&gt;agent&lt;/b&gt;"));
    assert_null(strstr(r.body, "<b>agent"));
    assert_non_null(strstr(r.body, "(open)"));
    resp_free(&r);

    r = admin_get("/admin/connections?user=pat");
    const char *log = strstr(r.body, "Connection log");
    assert_non_null(log);
    assert_non_null(strstr(log, "sock-pager"));
    assert_null(strstr(log, "mallory"));
    resp_free(&r);
    r = admin_get("/admin/connections?status=disconnected&platform=web");
    assert_int_equal(r.status, 200);
    const char *p = strstr(r.body, "Connection log");
    assert_non_null(p);
    assert_int_equal(count_of(p, "status-disconnected"), 10);
    assert_int_equal(count_of(p, "status-active"), 0);
    assert_int_equal(count_of(p, "<span class=\"tag\">web</span>"), 10);
    char qs[256];
    link_qs(r.body, "next", qs, sizeof qs);
    assert_non_null(strstr(qs, "platform=web&status=disconnected&before="));
    resp_free(&r);
    r = admin_get("/admin/connections?status=maybe");
    assert_int_equal(r.status, 400);
    resp_free(&r);
    struct sbuf lng = SBUF_INIT;
    sbuf_puts(&lng, "/admin/connections?user=");
    for (int i = 0; i < 300; i++)
        sbuf_putc(&lng, 'x');
    r = admin_get(sbuf_str(&lng));
    assert_int_equal(r.status, 400);
    resp_free(&r);
    sbuf_free(&lng);

    /* --scan-rows: dates no connection has stop the log after that many rows, and the page
     * offers to go on. */
    unsigned saved = cfg.scan_rows;
    cfg.scan_rows = 100;
    r = admin_get("/admin/connections?from=2001-01-01&to=2001-01-02");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "without filling the page"));
    link_qs(r.body, "next", qs, sizeof qs);
    assert_non_null(strstr(qs, "from=2001-01-01&to=2001-01-02&before="));
    resp_free(&r);
    cfg.scan_rows = saved;
}

/* ---- the database under rtd's write lock ---------------------------------------------- */

/* Plays rtd holding its write lock for hold_ms: writes 'L' to ready once it has the lock. */
struct lock_holder {
    int hold_ms;
    int ready[2];
    int rc;
};

static void *hold_write_lock(void *arg)
{
    struct lock_holder *h = arg;
    sqlite3 *db;
    h->rc = sqlite3_open(db_path, &db);
    if (h->rc == SQLITE_OK)
        h->rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (write(h->ready[1], h->rc == SQLITE_OK ? "L" : "E", 1) != 1)
        h->rc = SQLITE_ERROR;
    if (h->rc == SQLITE_OK) {
        usleep((useconds_t)h->hold_ms * 1000);
        h->rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return NULL;
}

static void test_reads_while_writer_busy(void **state)
{
    (void)state;
    /* rtd holds the write lock: every page still reads (WAL), and a write waits at most the
     * busy timeout and then says so. */
    char *err = NULL;
    check(dbfill_begin(fill, &err), err);
    int64_t t = util_now_ms();
    check(dbfill_message(fill, "sock-evil", "mallory", "uncommitted", "web", NULL, t, NULL, &err),
          err);
    int64_t start = util_now_ms();
    struct resp r = admin_get("/admin");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = admin_get("/admin/messages?q=uncommitted");
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, ">uncommitted<"));
    resp_free(&r);
    assert_true(util_now_ms() - start < 1000);

    int saved = cfg.busy_timeout_ms;
    cfg.busy_timeout_ms = 100;
    app_close(&app);
    check(app_open(&app, &cfg, &err), err);
    char csrf[ADMIN_TOKEN_HEX], cookie[128], body[256];
    anon_csrf(csrf);
    snprintf(cookie, sizeof cookie, "afc_csrf=%s", csrf);
    snprintf(body, sizeof body, "csrf=%s&email=late%%40example.com", csrf);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "try again"));
    resp_free(&r);
    check(dbfill_commit(fill, &err), err);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* With --busy-timeout 10000, a write lock rtd holds for a moment is waited for: the
     * subscription is stored. */
    cfg.busy_timeout_ms = 10000;
    app_close(&app);
    check(app_open(&app, &cfg, &err), err);
    struct lock_holder h = {.hold_ms = 300};
    assert_int_equal(pipe(h.ready), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_write_lock, &h), 0);
    char c;
    assert_int_equal(read(h.ready[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    snprintf(body, sizeof body, "csrf=%s&email=patient%%40example.com", csrf);
    r = request("POST", "/subscribe", cookie, body);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    pthread_join(th, NULL);
    close(h.ready[0]);
    close(h.ready[1]);
    assert_int_equal(h.rc, SQLITE_OK);
    assert_int_equal(scalar("SELECT COUNT(*) FROM subscribers WHERE email = "
                            "'patient@example.com'"),
                     1);

    cfg.busy_timeout_ms = saved;
    app_close(&app);
    check(app_open(&app, &cfg, &err), err);
    sqlite3_exec(writer, "DELETE FROM rate_limits", NULL, NULL, NULL);
}

static void test_dashboard_uses_no_scan(void **state)
{
    (void)state;
    /* The plans of the dashboard's queries never scan messages or connections. */
    const char *sqls[] = {
        "SELECT COUNT(*) FROM connections WHERE status = 'active'",
        "SELECT hour, SUM(count) FROM message_counts WHERE hour >= '2026' GROUP BY hour",
        "SELECT id FROM messages WHERE created_at >= '2026' ORDER BY created_at, id LIMIT 1",
        "SELECT id FROM messages WHERE 1 AND platform = 'web' AND id >= 0 AND id <= 99 "
        "ORDER BY id DESC LIMIT 11",
        "SELECT id FROM connections WHERE 1 AND status = 'active' AND id >= 0 AND id <= 99 "
        "ORDER BY id DESC LIMIT 11",
    };
    for (size_t i = 0; i < sizeof sqls / sizeof sqls[0]; i++) {
        char q[512];
        snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sqls[i]);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(writer, q, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            /* "SCAN t" alone is a full table scan; scanning a (partial) index is not. */
            if (strcmp(detail, "SCAN messages") == 0 || strcmp(detail, "SCAN connections") == 0 ||
                strstr(detail, "TEMP B-TREE"))
                fail_msg("%s: %s", sqls[i], detail);
        }
        sqlite3_finalize(st);
    }
}

/* ---- the binary: CGI mode, --create-admin, a fresh database --------------------------- */

/* Runs the binary with env and stdin; returns its exit status and its stdout. */
static int run_bin(char *const argv[], char *const envp[], const char *in, struct sbuf *out)
{
    int pin[2], pout[2];
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[1]);
        close(pout[0]);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    if (in && write(pin[1], in, strlen(in)) < 0)
        fail_msg("write to child failed");
    close(pin[1]);
    char buf[4096];
    ssize_t n;
    while ((n = read(pout[0], buf, sizeof buf)) > 0)
        sbuf_append(out, buf, (size_t)n);
    close(pout[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cgi_binary(void **state)
{
    (void)state;
    char fresh[160], dbarg[200];
    snprintf(fresh, sizeof fresh, "%s/fresh.db", dir);
    char *argv[] = {(char *)ADMIN_BIN,
                    (char *)"--db",
                    fresh,
                    (char *)"--templates",
                    (char *)ADMIN_TEMPLATES_DIR,
                    NULL};
    char *envp[] = {(char *)"REQUEST_METHOD=GET", (char *)"REQUEST_URI=/", NULL};
    struct sbuf out = SBUF_INIT;
    /* A database that does not exist yet is created and migrated. */
    assert_int_equal(run_bin(argv, envp, NULL, &out), 0);
    assert_int_equal(strncmp(sbuf_str(&out), "Status: 200 OK\r\n", 16), 0);
    assert_non_null(strstr(sbuf_str(&out), "Coming soon"));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fresh, &db), SQLITE_OK);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    sbuf_reset(&out);

    /* POST as CGI: the body from stdin. */
    char *penv[] = {(char *)"REQUEST_METHOD=POST",
                    (char *)"REQUEST_URI=/subscribe",
                    (char *)"CONTENT_LENGTH=45",
                    (char *)"CONTENT_TYPE=application/x-www-form-urlencoded",
                    (char *)"HTTP_COOKIE=afc_csrf=00000000000000000000000000000000000000000000000"
                            "00000000000000000",
                    NULL};
    assert_int_equal(run_bin(argv, penv, "csrf=x&email=cgi%40example.com&pad=0123456789", &out), 0);
    assert_int_equal(strncmp(sbuf_str(&out), "Status: 403 Forbidden\r\n", 23), 0);
    sbuf_reset(&out);

    /* --create-admin: the password from stdin, too short refused, then created. */
    snprintf(dbarg, sizeof dbarg, "%s", fresh);
    char *cargv[] = {(char *)ADMIN_BIN,        (char *)"--db", dbarg,
                     (char *)"--create-admin", (char *)"root", NULL};
    char *noenv[] = {NULL};
    assert_int_equal(run_bin(cargv, noenv, "short\n", &out), 1);
    char *sargv[] = {(char *)ADMIN_BIN,        (char *)"--db",       dbarg,
                     (char *)"--create-admin", (char *)"root admin", NULL};
    assert_int_equal(run_bin(sargv, noenv, "a long enough password\n", &out), 1);
    assert_int_equal(run_bin(cargv, noenv, "a long enough password\n", &out), 0);
    assert_int_equal(run_bin(cargv, noenv, "another long password\n", &out), 0);
    assert_int_equal(sqlite3_open(fresh, &db), SQLITE_OK);
    sqlite3_prepare_v2(db, "SELECT password_hash FROM admin_users WHERE username='root'", -1, &st,
                       NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const char *hash = (const char *)sqlite3_column_text(st, 0);
    assert_int_equal(strncmp(hash, "$y$", 3), 0);
    assert_true(auth_verify_password("another long password", hash));
    assert_false(auth_verify_password("a long enough password", hash));
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Bad flags: exit status 2. */
    char *bargv[] = {(char *)ADMIN_BIN,     (char *)"--db", dbarg,
                     (char *)"--page-size", (char *)"zero", NULL};
    assert_int_equal(run_bin(bargv, noenv, NULL, &out), 2);
    sbuf_free(&out);
}

/* Runs the binary as CGI on the test database with `flags` (NULL-terminated), the request
 * in env (NULL-terminated) and body on stdin; returns the response. */
static struct resp run_cgi(const char *const *flags, const char *const *env, const char *body)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)ADMIN_BIN;
    argv[n++] = (char *)"--db";
    argv[n++] = db_path;
    argv[n++] = (char *)"--templates";
    argv[n++] = (char *)ADMIN_TEMPLATES_DIR;
    for (int i = 0; flags[i]; i++)
        argv[n++] = (char *)flags[i];
    argv[n] = NULL;
    struct sbuf out = SBUF_INIT;
    assert_int_equal(run_bin(argv, (char *const *)env, body, &out), 0);
    struct resp r;
    memset(&r, 0, sizeof r);
    parse_resp(sbuf_str(&out), out.len, &r);
    sbuf_free(&out);
    return r;
}

/* The flags that bound something reach the server: each given a value other than its
 * default, through the binary. */
static void test_flags(void **state)
{
    (void)state;
    char zeros[ADMIN_TOKEN_HEX], cookie[128], body[4096], v[512], len[64];
    snprintf(zeros, sizeof zeros, "%064d", 0);
    snprintf(cookie, sizeof cookie, "HTTP_COOKIE=afc_csrf=%s", zeros);
    struct resp r;

    /* --body-max 1024: a 1500-byte form gets 413. */
    memset(body, 'x', 1500);
    body[1500] = '\0';
    const char *big[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/subscribe", "CONTENT_LENGTH=1500",
                         "CONTENT_TYPE=application/x-www-form-urlencoded", NULL};
    const char *body_max[] = {"--body-max", "1024", NULL};
    r = run_cgi(body_max, big, body);
    assert_int_equal(r.status, 413);
    resp_free(&r);

    /* --subscribe-limit 1: the second subscription gets 429. */
    snprintf(body, sizeof body, "csrf=%s&email=flag%%40example.com", zeros);
    snprintf(len, sizeof len, "CONTENT_LENGTH=%zu", strlen(body));
    const char *sub[] = {"REQUEST_METHOD=POST",
                         "REQUEST_URI=/subscribe",
                         len,
                         "CONTENT_TYPE=application/x-www-form-urlencoded",
                         cookie,
                         "REMOTE_ADDR=203.0.113.230",
                         NULL};
    const char *sub_limit[] = {"--subscribe-limit", "1", NULL};
    for (int i = 0; i < 2; i++) {
        r = run_cgi(sub_limit, sub, body);
        assert_int_equal(r.status, i ? 429 : 200);
        resp_free(&r);
    }
    sqlite3_exec(writer, "DELETE FROM rate_limits", NULL, NULL, NULL);

    /* --session-ttl 60: the session cookie lives a minute. */
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=correct+horse+battery", zeros);
    snprintf(len, sizeof len, "CONTENT_LENGTH=%zu", strlen(body));
    const char *login_env[] = {"REQUEST_METHOD=POST",
                               "REQUEST_URI=/admin/login",
                               len,
                               "CONTENT_TYPE=application/x-www-form-urlencoded",
                               cookie,
                               "REMOTE_ADDR=203.0.113.231",
                               NULL};
    const char *ttl[] = {"--session-ttl", "60", NULL};
    r = run_cgi(ttl, login_env, body);
    assert_int_equal(r.status, 303);
    assert_non_null(strstr(header(&r, "Set-Cookie", v, sizeof v), "; Max-Age=60;"));
    resp_free(&r);

    /* --login-failures 1 --login-lockout 120: one wrong password locks the address out of the
     * name for two minutes. */
    snprintf(body, sizeof body, "csrf=%s&username=alice&password=wrong", zeros);
    snprintf(len, sizeof len, "CONTENT_LENGTH=%zu", strlen(body));
    const char *lock[] = {"--login-failures", "1", "--login-lockout", "120", NULL};
    for (int i = 0; i < 2; i++) {
        r = run_cgi(lock, login_env, body);
        assert_int_equal(r.status, i ? 429 : 401);
        if (i) {
            int wait = atoi(header(&r, "Retry-After", v, sizeof v));
            assert_true(wait > 60 && wait <= 120);
        }
        resp_free(&r);
    }
    sqlite3_exec(writer, "DELETE FROM login_failures", NULL, NULL, NULL);

    /* --page-size 3 and --scan-rows 1000 on the history. */
    char token[ADMIN_TOKEN_HEX], session[128];
    login(token, NULL);
    snprintf(session, sizeof session, "HTTP_COOKIE=afc_session=%s", token);
    const char *pages[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/admin/messages?room=pages",
                           "QUERY_STRING=room=pages", session, NULL};
    const char *page_size[] = {"--page-size", "3", NULL};
    r = run_cgi(page_size, pages, NULL);
    assert_int_equal(r.status, 200);
    long long ids[16];
    assert_int_equal(page_ids(r.body, ids, 16), 3);
    resp_free(&r);
    const char *search[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/admin/messages?q=nowhere-at-all",
                            "QUERY_STRING=q=nowhere-at-all", session, NULL};
    const char *scan[] = {"--scan-rows", "1000", NULL};
    r = run_cgi(scan, search, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "without filling the page"));
    resp_free(&r);
}

/* ctemplate escapes only inside templates that declare it: an included template without the
 * pragma would print stored text raw. Every template must start with it. */
static void test_templates_autoescape(void **state)
{
    (void)state;
    DIR *d = opendir(ADMIN_TEMPLATES_DIR);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".tpl") != 0)
            continue;
        char path[512], first[128] = "";
        snprintf(path, sizeof path, "%s/%s", ADMIN_TEMPLATES_DIR, e->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        if (!fgets(first, sizeof first, f))
            first[0] = '\0';
        fclose(f);
        if (strcmp(first, "{{%AUTOESCAPE context=\"HTML\"}}\n") != 0)
            fail_msg("%s does not start with the AUTOESCAPE pragma", e->d_name);
        assert_int_equal(tmpl_check(e->d_name), 0);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates_autoescape),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_landing),
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_subscribe_flags),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_parser_bounds),
        cmocka_unit_test(test_admin_requires_login),
        cmocka_unit_test(test_login),
        cmocka_unit_test(test_login_throttle),
        cmocka_unit_test(test_login_limits),
        cmocka_unit_test(test_login_name_slowdown),
        cmocka_unit_test(test_logout_and_expiry),
        cmocka_unit_test(test_dashboard),
        cmocka_unit_test(test_stats_json),
        cmocka_unit_test(test_laravel),
        cmocka_unit_test(test_messages_escaping),
        cmocka_unit_test(test_messages_filters),
        cmocka_unit_test(test_messages_pagination),
        cmocka_unit_test(test_messages_scan_cap),
        cmocka_unit_test(test_messages_csv),
        cmocka_unit_test(test_connections),
        cmocka_unit_test(test_reads_while_writer_busy),
        cmocka_unit_test(test_dashboard_uses_no_scan),
        cmocka_unit_test(test_cgi_binary),
        cmocka_unit_test(test_flags),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
