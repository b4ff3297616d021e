/* ui-login.c: "/admin/login" (form and check, throttled) and "/admin/logout" (POST). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/auth.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

static void form(struct ctx *c, int status, const char *error, const char *user, const char *next)
{
    struct ui_page p;
    if (ui_page_begin(c, &p, "Log in", "login.tpl", NULL) < 0)
        return;
    tmpl_set(p.body, "CSRF", auth_anon_csrf(c));
    tmpl_set(p.body, "USER", user);
    tmpl_set(p.body, "NEXT", next);
    if (error)
        tmpl_set(tmpl_add_section(p.body, "ERROR"), "TEXT", error);
    if (strcmp(http_query(c->req, "bye"), "1") == 0)
        tmpl_show(p.body, "BYE");
    ui_page_end(c, &p, status);
}

void ui_login_form(struct ctx *c)
{
    const char *next = ui_safe_next(http_query(c->req, "next"));
    if (c->session.valid) {
        http_redirect(c->req, 302, next);
        return;
    }
    form(c, 200, NULL, "", next);
}

void ui_login_submit(struct ctx *c)
{
    const char *user = http_form(c->req, "username");
    const char *password = http_form(c->req, "password");
    const char *next = ui_safe_next(http_form(c->req, "next"));
    if (strlen(user) > 128 || strlen(password) > 1024) {
        form(c, 400, "The name or password is too long.", "", next);
        return;
    }
    long retry = 0;
    char *err = NULL;
    switch (auth_login(c, user, password, &retry, &err)) {
    case AUTH_OK:
        http_redirect(c->req, 303, next);
        return;
    case AUTH_BAD:
        form(c, 401, "Wrong name or password.", user, next);
        return;
    case AUTH_LOCKED: {
        char secs[32], msg[160];
        snprintf(secs, sizeof secs, "%ld", retry);
        if (retry < 120)
            snprintf(msg, sizeof msg, "Too many failed logins. Try again in %ld second%s.", retry,
                     retry == 1 ? "" : "s");
        else
            snprintf(msg, sizeof msg, "Too many failed logins. Try again in %ld minutes.",
                     (retry + 59) / 60);
        http_header(c->req, "Retry-After", secs);
        form(c, 429, msg, user, next);
        return;
    }
    case AUTH_ERROR:
    default:
        ui_fail(c, "login", err);
        return;
    }
}

void ui_logout(struct ctx *c)
{
    char *err = NULL;
    if (auth_logout(c, &err) < 0) {
        ui_fail(c, "logout", err);
        return;
    }
    http_redirect(c->req, 303, "/admin/login?bye=1");
}
