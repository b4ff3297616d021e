/* ui-pages.h: the page handlers, one ui-<page>.c each, called from the route table in
 * cmd.c. A handler writes a complete response for c->req; by the time it runs the route's
 * preconditions (session, parsed form, CSRF token) have been checked. */
#ifndef ADMIN_UI_PAGES_H
#define ADMIN_UI_PAGES_H

#include "admin-fcgi/admin.h"

/* ui-landing.c: "/" and the subscription form. */
void ui_landing(struct ctx *c);
void ui_subscribe(struct ctx *c);

/* ui-login.c */
void ui_login_form(struct ctx *c);
void ui_login_submit(struct ctx *c);
void ui_logout(struct ctx *c);

/* ui-dashboard.c: "/admin" and its figures as JSON for the live refresh. */
void ui_dashboard(struct ctx *c);
void ui_stats_json(struct ctx *c);

/* ui-messages.c: the history and its CSV export. */
void ui_messages(struct ctx *c);
void ui_messages_csv(struct ctx *c);

/* ui-connections.c */
void ui_connections(struct ctx *c);

#endif
