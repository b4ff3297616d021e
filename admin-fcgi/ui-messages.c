/* ui-messages.c: "/admin/messages", the message history newest first with filters and
 * keyset pagination, and "/admin/messages.csv", the filtered set as CSV streamed row by
 * row (constant memory whatever the size).
 *
 * Filters: platform, sender and room are equalities served by the (column, id) indexes;
 * the date range becomes a range of ids through the created_at index (rtd stamps messages
 * as it stores them, so ids grow with time); the text filter is a case-insensitive
 * "contains" and necessarily reads rows, in bounded windows (see query.h). Every value
 * reaches SQL as a bound parameter. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/query.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

#define FILTER_MAX 256 /* bytes of one filter value */
#define TEXT_SHOWN 600 /* characters of a message shown in the table */

struct msg_filter {
    const char *platform, *sender, *room, *text, *from, *to;
    char from_ts[UTIL_TS_LEN], to_ts[UTIL_TS_LEN]; /* "" when not given */
    long long before, after;
};

static const char msg_columns[] = "id, created_at, platform, sender, room, message_text, socket_id";

/* Reads and checks the filters. Returns 0, or -1 with a reason for the 400 page. */
static int parse_filter(struct ctx *c, struct msg_filter *f, const char **why)
{
    memset(f, 0, sizeof *f);
    f->platform = http_query(c->req, "platform");
    f->sender = http_query(c->req, "sender");
    f->room = http_query(c->req, "room");
    f->text = http_query(c->req, "q");
    f->from = http_query(c->req, "from");
    f->to = http_query(c->req, "to");
    const char *vals[] = {f->platform, f->sender, f->room, f->text, f->from, f->to};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (strlen(vals[i]) > FILTER_MAX) {
            *why = "A filter is longer than 256 bytes.";
            return -1;
        }
    if (ui_date_range(f->from, f->to, f->from_ts, f->to_ts, why) < 0)
        return -1;
    return ui_page_position(c, &f->before, &f->after, "The page position is not a message number.",
                            why);
}

/* The id of the first (or last) message in created_at order at/after (before) ts; -1 when
 * there is none. Both walk the created_at index, whose entries end with the rowid. */
static int id_at(struct dbi *db, const char *ts, bool first, long long *out, char **err)
{
    const char *sql = first ? "SELECT id FROM messages WHERE created_at >= ?1 "
                              "ORDER BY created_at, id LIMIT 1"
                            : "SELECT id FROM messages WHERE created_at < ?1 "
                              "ORDER BY created_at DESC, id DESC LIMIT 1";
    struct dbi_stmt *st;
    if (dbi_prepare(db, sql, &st) != 0) {
        *err = admin_db_err(db, "date bounds");
        return -1;
    }
    dbi_bind_text(st, 1, ts);
    int rc = dbi_step(st);
    *out = rc == DBI_ROW ? dbi_column_int64(st, 0) : -1;
    if (rc != DBI_ROW && rc != DBI_DONE) {
        *err = admin_db_err(db, "date bounds");
        dbi_finalize(st);
        return -1;
    }
    dbi_finalize(st);
    return 0;
}

static void like_pattern(struct sbuf *out, const char *text)
{
    sbuf_putc(out, '%');
    for (const char *p = text; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            sbuf_putc(out, '\\');
        sbuf_putc(out, *p);
    }
    sbuf_putc(out, '%');
}

static int build_query(struct ctx *c, const struct msg_filter *f, struct query *q, char **err)
{
    query_init(q, "messages", msg_columns);
    bool pg = dbi_kind(c->app->ro) == DBI_PG;
    int rc = 0;
    if (*f->platform)
        rc |= query_where(q, "platform = ?", f->platform, QUERY_INDEXED);
    if (*f->sender)
        rc |= query_where(q, "sender = ?", f->sender, QUERY_INDEXED);
    if (*f->room)
        rc |= query_where(q, "room = ?", f->room, QUERY_INDEXED);
    if (*f->text) {
        struct sbuf pat = SBUF_INIT;
        like_pattern(&pat, f->text);
        rc |= pat.failed ? -1
                         : query_where(q,
                                       /* SQLite's LIKE ignores ASCII case, PostgreSQL's ILIKE
                                          does what SQLite's does */
                                       pg ? "message_text ILIKE ? ESCAPE '\\'"
                                          : "message_text LIKE ? ESCAPE '\\'",
                                       sbuf_str(&pat), QUERY_RESIDUAL);
        sbuf_free(&pat);
    }
    /* The unary + (SQLite) and the || '' (PostgreSQL) keep the planner from choosing the
     * created_at index (and a sort) for the page itself: the range of ids already selects
     * the rows. */
    if (f->from_ts[0]) {
        long long id;
        if (id_at(c->app->ro, f->from_ts, true, &id, err) < 0)
            return -1;
        if (id < 0)
            q->empty = true;
        else
            query_bound(q, id, q->id_hi);
        rc |= query_where(q, pg ? "created_at || '' >= ?" : "+created_at >= ?", f->from_ts,
                          QUERY_BOUNDED);
    }
    if (f->to_ts[0]) {
        long long id;
        if (id_at(c->app->ro, f->to_ts, false, &id, err) < 0)
            return -1;
        if (id < 0)
            q->empty = true;
        else
            query_bound(q, q->id_lo, id);
        rc |= query_where(q, pg ? "created_at || '' < ?" : "+created_at < ?", f->to_ts,
                          QUERY_BOUNDED);
    }
    if (rc) {
        *err = strdup("out of memory");
        return -1;
    }
    return 0;
}

/* "platform=web&sender=..." of the filters in use (for links that keep them). */
static void filter_qs(const struct msg_filter *f, struct sbuf *qs)
{
    const char *names[] = {"platform", "sender", "room", "q", "from", "to"};
    const char *vals[] = {f->platform, f->sender, f->room, f->text, f->from, f->to};
    for (size_t i = 0; i < 6; i++) {
        if (!*vals[i])
            continue;
        if (qs->len)
            sbuf_putc(qs, '&');
        sbuf_puts(qs, names[i]);
        sbuf_putc(qs, '=');
        http_url_encode(qs, vals[i]);
    }
}

static void set_link(tmpl_dict *d, const char *key, const struct sbuf *base, const char *cursor,
                     long long id)
{
    struct sbuf s = SBUF_INIT;
    sbuf_append(&s, sbuf_str(base), base->len);
    if (cursor)
        sbuf_printf(&s, "%s%s=%lld", base->len ? "&" : "", cursor, id);
    tmpl_set(d, key, sbuf_str(&s));
    sbuf_free(&s);
}

void ui_messages(struct ctx *c)
{
    struct msg_filter f;
    const char *why = NULL;
    if (parse_filter(c, &f, &why) < 0) {
        ui_error(c, 400, why);
        return;
    }
    struct query q;
    struct query_page page;
    char *err = NULL;
    if (build_query(c, &f, &q, &err) < 0 ||
        query_page(c->app->ro, &q, f.before, f.after, c->cfg->page_size, c->cfg->scan_rows, &page,
                   &err) < 0) {
        query_free(&q);
        ui_fail(c, "messages", err);
        return;
    }
    query_free(&q);
    struct ui_page p;
    if (ui_page_begin(c, &p, "Messages", "messages.tpl", "messages") < 0) {
        query_page_free(&page);
        return;
    }
    tmpl_dict *b = p.body;
    tmpl_set(b, "F_SENDER", f.sender);
    tmpl_set(b, "F_ROOM", f.room);
    tmpl_set(b, "F_Q", f.text);
    tmpl_set(b, "F_FROM", f.from);
    tmpl_set(b, "F_TO", f.to);
    if (ui_platform_options(c, "message_counts", b, f.platform, &err) < 0) {
        tmpl_dict_free(p.root);
        query_page_free(&page);
        ui_fail(c, "messages", err);
        return;
    }
    struct sbuf qs = SBUF_INIT;
    filter_qs(&f, &qs);
    set_link(b, "CSV_QS", &qs, NULL, 0);
    if (qs.len)
        tmpl_show(b, "FILTERED");
    for (size_t i = 0; i < page.n; i++) {
        tmpl_dict *r = tmpl_add_section(b, "ROW");
        tmpl_set(r, "ID", query_cell(&page, i, 0));
        tmpl_set(r, "TIME", query_cell(&page, i, 1));
        tmpl_set(r, "PLATFORM", query_cell(&page, i, 2));
        tmpl_set(r, "SENDER", query_cell(&page, i, 3));
        const char *room = query_cell(&page, i, 4);
        if (room)
            tmpl_set(tmpl_add_section(r, "ROOM"), "NAME", room);
        else
            tmpl_show(r, "NO_ROOM");
        ui_set_clipped(r, "TEXT", query_cell(&page, i, 5), TEXT_SHOWN);
        tmpl_set(r, "SOCKET", query_cell(&page, i, 6));
    }
    if (page.n == 0)
        tmpl_show(b, "EMPTY");
    tmpl_set_int(b, "COUNT", (long long)page.n);
    if (page.scan_capped) {
        tmpl_dict *s = tmpl_add_section(b, "SCAN_CAPPED");
        tmpl_set_int(s, "DOWN_TO", page.scanned_lo);
        tmpl_set_int(s, "SCAN_ROWS", c->cfg->scan_rows);
    }
    if (page.has_older)
        set_link(tmpl_add_section(b, "OLDER"), "QS", &qs, "before", page.older_cursor);
    if (page.has_newer)
        set_link(tmpl_add_section(b, "NEWER"), "QS", &qs, "after", page.newer_cursor);
    if (f.before || f.after)
        set_link(tmpl_add_section(b, "NEWEST"), "QS", &qs, NULL, 0);
    sbuf_free(&qs);
    query_page_free(&page);
    ui_page_end(c, &p, 200);
}

/* ---- CSV ---------------------------------------------------------------------------- */

struct csv_out {
    struct http_req *req;
    struct sbuf buf;
};

/* RFC 4180 quoting, for every character a spreadsheet may split cells at: the comma, and
 * also ';' (the separator where the comma is the decimal mark) and the tab. Text that
 * people wrote (user_text: sender, room, message) and that a spreadsheet would take for a
 * formula gets a leading ' (OWASP's advice against CSV injection); values the server made
 * (ids, times, socket ids, platform tokens) are written as stored, so they still match the
 * database. */
static void csv_field(struct sbuf *b, const char *s, bool user_text)
{
    if (!s)
        return;
    bool formula = user_text && *s && strchr("=+-@\t\r\n", *s);
    if (!formula && !strpbrk(s, ",;\"\t\r\n")) {
        sbuf_puts(b, s);
        return;
    }
    sbuf_putc(b, '"');
    if (formula)
        sbuf_putc(b, '\'');
    for (; *s; s++) {
        if (*s == '"')
            sbuf_putc(b, '"');
        sbuf_putc(b, *s);
    }
    sbuf_putc(b, '"');
}

/* Output order of the columns of msg_columns, and which of them people wrote. */
static const struct {
    int column;
    bool user_text;
} csv_columns[] = {
    {0, false}, /* id */
    {1, false}, /* created_at */
    {2, false}, /* platform: a token rtd checked ([a-z0-9._-]) */
    {3, true},  /* sender */
    {4, true},  /* room */
    {6, false}, /* socket_id: made by rtd */
    {5, true},  /* message_text */
};

static int csv_row(void *ud, struct dbi_stmt *st)
{
    struct csv_out *o = ud;
    for (size_t i = 0; i < sizeof csv_columns / sizeof csv_columns[0]; i++) {
        if (i)
            sbuf_putc(&o->buf, ',');
        csv_field(&o->buf, dbi_column_text(st, csv_columns[i].column),
                  csv_columns[i].user_text);
    }
    sbuf_puts(&o->buf, "\r\n");
    if (o->buf.failed)
        return -1;
    if (o->buf.len >= 32768) {
        if (http_write(o->req, o->buf.data, o->buf.len) < 0)
            return -1;
        sbuf_reset(&o->buf);
    }
    return 0;
}

void ui_messages_csv(struct ctx *c)
{
    struct msg_filter f;
    const char *why = NULL;
    if (parse_filter(c, &f, &why) < 0) {
        ui_error(c, 400, why);
        return;
    }
    struct query q;
    char *err = NULL;
    if (build_query(c, &f, &q, &err) < 0) {
        query_free(&q);
        ui_fail(c, "messages.csv", err);
        return;
    }
    char ts[UTIL_TS_LEN], disp[96];
    util_format_ts(c->now_ms, ts);
    snprintf(disp, sizeof disp, "attachment; filename=\"messages-%.4s%.2s%.2s-%.2s%.2s%.2s.csv\"",
             ts, ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
    http_header(c->req, "Content-Disposition", disp);
    http_header(c->req, "Cache-Control", "no-store");
    http_begin(c->req, 200, "text/csv; charset=utf-8");
    struct csv_out o = {c->req, SBUF_INIT};
    sbuf_puts(&o.buf, "id,created_at,platform,sender,room,socket_id,text\r\n");
    int rc = c->req->head ? 0 : query_each(c->app->ro, &q, csv_row, &o, &err);
    if (rc == 0 && o.buf.len)
        http_write(c->req, o.buf.data, o.buf.len);
    if (rc < 0 && err)
        admin_log("messages.csv: %s (the export was cut short)", err);
    free(err);
    sbuf_free(&o.buf);
    query_free(&q);
}
