/* cmd.c: the route table and the request dispatcher (the shape of cgit's cmd.c).
 *
 * Each route names its method, path, handler and preconditions. The dispatcher checks them
 * in one place so no page can forget: admin pages need a live session (otherwise a redirect
 * to the login page, or for what scripts fetch, 401 with a JSON body), every POST has its body
 * parsed within the size limit and its CSRF token checked (403 when missing or wrong) before the
 * handler runs. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/auth.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

enum {
    CMD_SESSION = 1 << 0,      /* requires a logged-in admin */
    CMD_CSRF_ANON = 1 << 1,    /* POST checked against the double-submit cookie */
    CMD_CSRF_SESSION = 1 << 2, /* POST checked against the session's token */
    CMD_JSON = 1 << 3,         /* fetched by scripts: 401 and JSON, not a redirect */
};

struct cmd {
    const char *method;
    const char *path;
    void (*fn)(struct ctx *c);
    unsigned flags;
};

static const struct cmd cmds[] = {
    {"GET", "/", ui_landing, 0},
    {"POST", "/subscribe", ui_subscribe, CMD_CSRF_ANON},
    {"GET", "/admin/login", ui_login_form, 0},
    {"POST", "/admin/login", ui_login_submit, CMD_CSRF_ANON},
    {"POST", "/admin/logout", ui_logout, CMD_SESSION | CMD_CSRF_SESSION},
    {"GET", "/admin", ui_dashboard, CMD_SESSION},
    {"GET", "/admin/stats.json", ui_stats_json, CMD_SESSION | CMD_JSON},
    {"GET", "/admin/messages", ui_messages, CMD_SESSION},
    {"GET", "/admin/messages.csv", ui_messages_csv, CMD_SESSION},
    {"GET", "/admin/connections", ui_connections, CMD_SESSION},
};

static void redirect_to_login(struct ctx *c, bool is_get)
{
    struct sbuf loc = SBUF_INIT;
    sbuf_puts(&loc, "/admin/login");
    if (is_get && strcmp(c->req->path, "/admin") != 0) {
        struct sbuf next = SBUF_INIT;
        sbuf_puts(&next, c->req->path);
        if (*c->req->query_raw) {
            sbuf_putc(&next, '?');
            sbuf_puts(&next, c->req->query_raw);
        }
        sbuf_puts(&loc, "?next=");
        http_url_encode(&loc, sbuf_str(&next));
        sbuf_free(&next);
    }
    http_redirect(c->req, is_get ? 302 : 303, loc.failed ? "/admin/login" : sbuf_str(&loc));
    sbuf_free(&loc);
}

static void parse_error_page(struct ctx *c, enum http_parse_err e)
{
    switch (e) {
    case HTTP_TOO_LARGE:
        ui_error(c, 413, "The form you sent is larger than this site accepts.");
        break;
    case HTTP_URI_TOO_LONG:
        ui_error(c, 414, "The address is longer than this site accepts.");
        break;
    default:
        ui_error(c, 400,
                 "The request could not be understood: its address, cookies or form "
                 "are malformed.");
        break;
    }
}

static void dispatch(struct ctx *c)
{
    struct http_req *r = c->req;
    const struct cmd *found = NULL;
    bool path_known = false;
    char allow[32] = "";
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmds[i].path, r->path) != 0)
            continue;
        path_known = true;
        if (allow[0])
            strcat(allow, ", ");
        strcat(allow, cmds[i].method);
        if (strcmp(cmds[i].method, "GET") == 0)
            strcat(allow, ", HEAD");
        if (strcmp(cmds[i].method, r->method) == 0)
            found = &cmds[i];
    }
    bool admin_area = strncmp(r->path, "/admin", 6) == 0;
    if (admin_area) {
        char *err = NULL;
        if (auth_load_session(c, &err) < 0) {
            ui_fail(c, "session", err);
            return;
        }
    }
    if (!found) {
        if (path_known) {
            http_header(r, "Allow", allow);
            ui_error(c, 405, "This address does not accept that method.");
        } else {
            ui_error(c, 404, "There is no page at this address.");
        }
        return;
    }
    bool is_post = strcmp(r->method, "POST") == 0;
    if ((found->flags & CMD_SESSION) && !c->session.valid) {
        if (found->flags & CMD_JSON) {
            http_header(r, "Cache-Control", "no-store");
            http_begin(r, 401, "application/json; charset=utf-8");
            http_puts(r, "{\"error\":\"not logged in\",\"login\":\"/admin/login\"}\n");
        } else {
            redirect_to_login(c, !is_post);
        }
        return;
    }
    if (is_post) {
        enum http_parse_err e = http_read_form(r, c->cfg->body_max);
        if (e != HTTP_OK) {
            parse_error_page(c, e);
            return;
        }
        bool ok = true;
        if (found->flags & CMD_CSRF_SESSION)
            ok = auth_check_csrf(c, true);
        else if (found->flags & CMD_CSRF_ANON)
            ok = auth_check_csrf(c, false);
        if (!ok) {
            ui_error(c, 403,
                     "The form's security token is missing or does not match. Reload "
                     "the page and send the form again.");
            return;
        }
    }
    found->fn(c);
}

void app_handle(struct app *a, struct http_io *io)
{
    struct http_req req;
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.app = a;
    c.cfg = a->cfg;
    c.req = &req;
    c.now_ms = util_now_ms();
    enum http_parse_err e = http_req_init(&req, io);
    if (e != HTTP_OK)
        parse_error_page(&c, e);
    else
        dispatch(&c);
    if (!req.begun) {
        admin_log("%s %s: handler sent no response", req.method, req.path);
        http_begin(&req, 500, "text/plain; charset=utf-8");
        http_puts(&req, "500 Internal Server Error\n");
    }
    http_req_free(&req);
}
