/* ui-shared.h: the page frame every HTML page goes through (templates/page.tpl), error
 * pages, and small formatting helpers the pages share.
 *
 * A page is built as a struct ui_page: ui_page_begin makes the frame's dictionary (title,
 * navigation, the logged-in admin and the logout form) and includes the page's own body
 * template, whose dictionary the handler fills; ui_page_end renders the frame with
 * ctemplate's auto-escaping, writes the response and frees the dictionaries. */
#ifndef ADMIN_UI_SHARED_H
#define ADMIN_UI_SHARED_H

#include "admin-fcgi/admin.h"
#include "admin-fcgi/tmpl.h"
#include "admin-fcgi/util.h"

struct ui_page {
    tmpl_dict *root; /* page.tpl's dictionary; owned until ui_page_end */
    tmpl_dict *body; /* the included body template's dictionary (owned by root) */
};

/* nav: "dashboard", "messages", "connections" or NULL (no admin navigation). Returns 0, or
 * -1 when memory ran out (then a plain 500 was already sent). */
int ui_page_begin(struct ctx *c, struct ui_page *p, const char *title, const char *body_tpl,
                  const char *nav);
/* Renders, sends with `status` and frees the page. */
void ui_page_end(struct ctx *c, struct ui_page *p, int status);

/* A complete error page with a short explanation. */
void ui_error(struct ctx *c, int status, const char *message);
/* Logs "what: err" once, frees err, and sends a 500 page that reveals nothing. */
void ui_fail(struct ctx *c, const char *what, char *err);

/* Figures as text in a dictionary. */
void ui_set_count(tmpl_dict *d, const char *key, long long v);
void ui_set_duration(tmpl_dict *d, const char *key, long long ms);
/* Sets key to at most max_chars characters of s (cut at a UTF-8 boundary, with "…"). */
void ui_set_clipped(tmpl_dict *d, const char *key, const char *s, size_t max_chars);

/* Validated local redirect target for after login: `next` when it is a path under /admin,
 * otherwise "/admin". */
const char *ui_safe_next(const char *next);

/* The date filters of a form: from and to as typed ("" when absent), turned into database
 * timestamps for >= from_ts and < to_ts ("" when absent). The end is inclusive as typed: the
 * whole day, or the whole minute. Returns -1 with *why set when a date does not parse. */
int ui_date_range(const char *from, const char *to, char from_ts[UTIL_TS_LEN],
                  char to_ts[UTIL_TS_LEN], const char **why);

/* The keyset page position of a list: the before and after query parameters, ids (0 when
 * absent). Returns -1 with *why set to not_an_id when one is not a positive id. */
int ui_page_position(struct ctx *c, long long *before, long long *after, const char *not_an_id,
                     const char **why);

/* Fills the PLATFORM_OPTION sections of a filter form with the platforms named in a counter
 * table (message_counts or connection_counts: small, never the big tables), marking current
 * (may be "") as SELECTED, and adding it when the table does not name it. On error returns
 * -1 with a malloc'ed *err. */
int ui_platform_options(struct ctx *c, const char *counter_table, tmpl_dict *body,
                        const char *current, char **err);

#endif
