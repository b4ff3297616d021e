/* ui-shared.c: the page frame, error pages and shared formatting (see ui-shared.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/ui-shared.h"

static void send_plain_500(struct ctx *c)
{
    if (c->req->begun)
        return;
    http_header(c->req, "Cache-Control", "no-store");
    http_begin(c->req, 500, "text/plain; charset=utf-8");
    http_puts(c->req, "500 Internal Server Error\n");
}

int ui_page_begin(struct ctx *c, struct ui_page *p, const char *title, const char *body_tpl,
                  const char *nav)
{
    p->root = tmpl_dict_new();
    p->body = p->root ? tmpl_add_include(p->root, "BODY", body_tpl) : NULL;
    if (!p->body) {
        tmpl_dict_free(p->root);
        p->root = NULL;
        send_plain_500(c);
        return -1;
    }
    tmpl_set(p->root, "TITLE", title);
    tmpl_set(p->root, "SITE_NAME", c->cfg->site_name);
    tmpl_set(p->body, "SITE_NAME", c->cfg->site_name);
    if (nav && c->session.valid) {
        tmpl_dict *a = tmpl_add_section(p->root, "ADMIN");
        tmpl_set(a, "USERNAME", c->session.username);
        tmpl_set(a, "CSRF", c->session.csrf);
        static const char *const names[] = {"dashboard", "messages", "connections"};
        static const char *const keys[] = {"NAV_DASHBOARD", "NAV_MESSAGES", "NAV_CONNECTIONS"};
        for (size_t i = 0; i < 3; i++)
            tmpl_set(a, keys[i], strcmp(nav, names[i]) == 0 ? "current" : "");
        tmpl_set(p->root, "BODY_CLASS", "admin");
    } else {
        tmpl_set(p->root, "BODY_CLASS", "public");
    }
    return 0;
}

void ui_page_end(struct ctx *c, struct ui_page *p, int status)
{
    size_t len = 0;
    char *html = tmpl_render("page.tpl", p->root, &len);
    tmpl_dict_free(p->root);
    p->root = p->body = NULL;
    if (!html) {
        admin_log("rendering %s failed (template missing or invalid)", c->req->path);
        send_plain_500(c);
        return;
    }
    http_header(c->req, "Cache-Control", "no-store");
    http_begin(c->req, status, "text/html; charset=utf-8");
    http_write(c->req, html, len);
    free(html);
}

void ui_error(struct ctx *c, int status, const char *message)
{
    struct ui_page p;
    char title[64];
    snprintf(title, sizeof title, "%d %s", status, http_reason(status));
    if (ui_page_begin(c, &p, title, "error.tpl", c->session.valid ? "" : NULL) < 0)
        return;
    tmpl_set_int(p.body, "STATUS", status);
    tmpl_set(p.body, "REASON", http_reason(status));
    tmpl_set(p.body, "MESSAGE", message);
    tmpl_show(p.body, c->session.valid ? "HOME_ADMIN" : "HOME_PUBLIC");
    ui_page_end(c, &p, status);
}

void ui_fail(struct ctx *c, const char *what, char *err)
{
    admin_log("%s %s: %s: %s", c->req->method, c->req->path, what, err ? err : "failed");
    free(err);
    if (c->req->begun)
        return;
    ui_error(c, 500,
             "Something went wrong on our side. The error was logged; please try "
             "again in a moment.");
}

void ui_set_count(tmpl_dict *d, const char *key, long long v)
{
    char s[40];
    util_format_count(v, s, sizeof s);
    tmpl_set(d, key, s);
}

void ui_set_duration(tmpl_dict *d, const char *key, long long ms)
{
    char s[40];
    util_format_duration(ms, s, sizeof s);
    tmpl_set(d, key, s);
}

void ui_set_clipped(tmpl_dict *d, const char *key, const char *s, size_t max_chars)
{
    if (!s) {
        tmpl_set(d, key, "");
        return;
    }
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max_chars)
                break;
            chars++;
        }
    }
    if (!s[i]) {
        tmpl_set(d, key, s);
        return;
    }
    char *cut = malloc(i + 4);
    if (!cut)
        return;
    memcpy(cut, s, i);
    memcpy(cut + i, "\xE2\x80\xA6", 4);
    tmpl_set(d, key, cut);
    free(cut);
}

const char *ui_safe_next(const char *next)
{
    if (!next || strncmp(next, "/admin", 6) != 0 || (next[6] && next[6] != '/' && next[6] != '?'))
        return "/admin";
    if (strlen(next) > 1024 || strstr(next, "//") || strchr(next, '\\'))
        return "/admin";
    for (const unsigned char *p = (const unsigned char *)next; *p; p++)
        if (*p < 0x21 || *p >= 0x7f)
            return "/admin";
    if (strncmp(next, "/admin/logout", 13) == 0 || strncmp(next, "/admin/login", 12) == 0)
        return "/admin";
    return next;
}

int ui_platform_options(struct ctx *c, const char *counter_table, tmpl_dict *body,
                        const char *current, char **err)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT DISTINCT platform FROM %s ORDER BY 1", counter_table);
    struct dbi_stmt *st;
    struct dbi *db = c->app->ro;
    if (dbi_prepare(db, sql, &st) != 0) {
        *err = admin_db_err(db, "platforms");
        return -1;
    }
    bool seen = !*current;
    int n = 0;
    while (dbi_step(st) == DBI_ROW && n++ < 100) {
        const char *name = dbi_column_text(st, 0);
        if (!name)
            continue;
        tmpl_dict *o = tmpl_add_section(body, "PLATFORM_OPTION");
        tmpl_set(o, "NAME", name);
        if (strcmp(name, current) == 0) {
            tmpl_show(o, "SELECTED");
            seen = true;
        }
    }
    dbi_finalize(st);
    if (!seen) {
        tmpl_dict *o = tmpl_add_section(body, "PLATFORM_OPTION");
        tmpl_set(o, "NAME", current);
        tmpl_show(o, "SELECTED");
    }
    return 0;
}

int ui_page_position(struct ctx *c, long long *before, long long *after, const char *not_an_id,
                     const char **why)
{
    const char *b = http_query(c->req, "before"), *a = http_query(c->req, "after");
    *before = *after = 0;
    if ((*b && util_parse_ll(b, 1, (long long)9e18, before) < 0) ||
        (*a && util_parse_ll(a, 1, (long long)9e18, after) < 0)) {
        *why = not_an_id;
        return -1;
    }
    return 0;
}

int ui_date_range(const char *from, const char *to, char from_ts[UTIL_TS_LEN],
                  char to_ts[UTIL_TS_LEN], const char **why)
{
    int64_t ms;
    bool date_only;
    from_ts[0] = to_ts[0] = '\0';
    if (*from) {
        if (util_parse_ts(from, &ms, &date_only) < 0) {
            *why = "The start date is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM).";
            return -1;
        }
        util_format_ts(ms, from_ts);
    }
    if (*to) {
        if (util_parse_ts(to, &ms, &date_only) < 0) {
            *why = "The end date is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM).";
            return -1;
        }
        if (date_only)
            ms += 86400000;
        else if (strlen(to) == 16)
            ms += 60000;
        util_format_ts(ms, to_ts);
    }
    return 0;
}
