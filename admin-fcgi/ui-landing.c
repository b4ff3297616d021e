/* ui-landing.c: "/", the public "coming soon" page of the guide: what the platform is, a
 * countdown to the launch date (--launch-date; rendered on the server, ticking with
 * static/site.js when scripts run) and the e-mail subscription form, which posts to
 * "/subscribe" and stores each address once in subscribers. The answer is the same whether
 * the address was new or already there (the form must not tell who is subscribed), and
 * each client address may post only --subscribe-limit times per --subscribe-window. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/auth.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

#define EMAIL_MAX 254

/* A practical check of an address (RFC 5321 sizes, dot-atom local part, a domain of at
 * least two labels with an alphabetic top level); quoted local parts are refused. */
static bool valid_email(const char *s)
{
    size_t len = strlen(s);
    const char *at = strchr(s, '@');
    if (len < 6 || len > EMAIL_MAX || !at || strchr(at + 1, '@'))
        return false;
    size_t local = (size_t)(at - s);
    if (local < 1 || local > 64 || s[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = s; p < at; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '.' && p[1] == '.')
            return false;
        if (!isalnum(ch) && !strchr("!#$%&'*+/=?^_`{|}~.-", ch))
            return false;
    }
    const char *d = at + 1;
    int labels = 0;
    while (*d) {
        const char *end = strchr(d, '.');
        size_t n = end ? (size_t)(end - d) : strlen(d);
        if (n < 1 || n > 63 || d[0] == '-' || d[n - 1] == '-')
            return false;
        bool alpha = true;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)d[i];
            if (!isalnum(ch) && ch != '-')
                return false;
            if (!isalpha(ch))
                alpha = false;
        }
        labels++;
        if (!end) {
            if (labels < 2 || n < 2 || !alpha)
                return false;
            break;
        }
        d = end + 1;
        if (!*d)
            return false;
    }
    return labels >= 2;
}

static void set_countdown(struct ctx *c, tmpl_dict *b)
{
    char iso[32], ts[UTIL_TS_LEN];
    util_format_ts(c->cfg->launch_ms, ts);
    snprintf(iso, sizeof iso, "%.10sT%.8sZ", ts, ts + 11);
    tmpl_set(b, "LAUNCH_ISO", iso);
    tmpl_setf(b, "LAUNCH_DAY", "%.10s", ts);
    long long left = (c->cfg->launch_ms - c->now_ms) / 1000;
    if (left <= 0) {
        tmpl_show(b, "LAUNCHED");
        return;
    }
    tmpl_dict *cd = tmpl_add_section(b, "COUNTDOWN");
    tmpl_set_int(cd, "DAYS", left / 86400);
    tmpl_setf(cd, "HOURS", "%02lld", (left % 86400) / 3600);
    tmpl_setf(cd, "MINUTES", "%02lld", (left % 3600) / 60);
    tmpl_setf(cd, "SECONDS", "%02lld", left % 60);
}

/* The landing page, with the form's outcome when there is one. */
static void landing(struct ctx *c, int status, const char *notice, bool ok, const char *email)
{
    struct ui_page p;
    if (ui_page_begin(c, &p, "Coming soon", "landing.tpl", NULL) < 0)
        return;
    tmpl_dict *b = p.body;
    set_countdown(c, b);
    tmpl_set(b, "CSRF", auth_anon_csrf(c));
    tmpl_set(b, "EMAIL", email ? email : "");
    if (notice) {
        tmpl_dict *n = tmpl_add_section(b, "NOTICE");
        tmpl_set(n, "TEXT", notice);
        tmpl_set(n, "KIND", ok ? "ok" : "error");
    }
    ui_page_end(c, &p, status);
}

void ui_landing(struct ctx *c)
{
    landing(c, 200, NULL, true, NULL);
}

void ui_subscribe(struct ctx *c)
{
    long retry = 0;
    char *err = NULL;
    int limited = auth_rate_limit(c, "subscribe", c->cfg->subscribe_limit, c->cfg->subscribe_window,
                                  &retry, &err);
    if (limited == -1) {
        ui_fail(c, "subscribe", err);
        return;
    }
    if (limited == -2) {
        admin_log("subscribe: the database stayed locked; asked the visitor to retry");
        landing(c, 503, "We could not save your address just now. Please try again in a minute.",
                false, NULL);
        return;
    }
    if (limited == 1) {
        char secs[32], msg[160];
        snprintf(secs, sizeof secs, "%ld", retry);
        snprintf(msg, sizeof msg,
                 "Too many sign-ups from your address. Please try again in %ld minute%s.",
                 (retry + 59) / 60, (retry + 59) / 60 == 1 ? "" : "s");
        http_header(c->req, "Retry-After", secs);
        landing(c, 429, msg, false, NULL);
        return;
    }
    char email[EMAIL_MAX + 2];
    const char *raw = http_form(c->req, "email");
    while (isspace((unsigned char)*raw))
        raw++;
    size_t n = strlen(raw);
    while (n && isspace((unsigned char)raw[n - 1]))
        n--;
    if (n > EMAIL_MAX) {
        landing(c, 400, "That address is too long to be an e-mail address.", false, NULL);
        return;
    }
    memcpy(email, raw, n);
    email[n] = '\0';
    if (!valid_email(email)) {
        landing(c, 400,
                "That does not look like an e-mail address. Please check it and try "
                "again.",
                false, email);
        return;
    }
    struct dbi *db = app_rw(c->app, &err);
    if (!db) {
        ui_fail(c, "subscribe", err);
        return;
    }
    char now[UTIL_TS_LEN];
    util_format_ts(c->now_ms, now);
    /* No conflict target: SQLite's unique column is email COLLATE NOCASE, PostgreSQL's a
     * unique index on lower(email); either way an address is stored once. */
    struct dbi_stmt *st;
    if (dbi_prepare(db,
                    "INSERT INTO subscribers(email, created_at) VALUES (?1, ?2) "
                    "ON CONFLICT DO NOTHING",
                    &st) != 0) {
        ui_fail(c, "subscribe", admin_db_err(db, "subscribers"));
        return;
    }
    dbi_bind_text(st, 1, email);
    dbi_bind_text(st, 2, now);
    int rc = dbi_step(st);
    char *serr = rc == DBI_DONE || rc == DBI_BUSY ? NULL : admin_db_err(db, "subscribers");
    dbi_finalize(st);
    if (rc == DBI_BUSY) {
        admin_log("subscribe: the database stayed locked; asked the visitor to retry");
        landing(c, 503,
                "We could not save your address just now. Please try again in a "
                "minute.",
                false, email);
        return;
    }
    if (rc != DBI_DONE) {
        ui_fail(c, "subscribe", serr);
        return;
    }
    /* The same words whether the address was new or already listed. */
    char msg[EMAIL_MAX + 128];
    snprintf(msg, sizeof msg, "Thank you! We will write to %s when we launch.", email);
    landing(c, 200, msg, true, NULL);
}
