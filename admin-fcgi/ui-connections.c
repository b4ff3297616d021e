/* ui-connections.c: "/admin/connections": who is connected now (the partial index on
 * active rows) and the connection log, newest first, with filters and keyset pagination
 * (see query.h). Durations: duration_ms of closed connections; for open ones, the time
 * since they connected. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/query.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

#define FILTER_MAX 256
#define ACTIVE_SHOWN 100

static const char conn_columns[] =
    "id, socket_id, platform, user_id, transport, remote_addr, connected_at, "
    "disconnected_at, duration_ms, status, app_version, user_agent";

enum {
    C_ID,
    C_SOCKET,
    C_PLATFORM,
    C_USER,
    C_TRANSPORT,
    C_ADDR,
    C_CONNECTED,
    C_DISCONNECTED,
    C_DURATION,
    C_STATUS,
    C_APP,
    C_UA
};

struct conn_filter {
    const char *platform, *user, *socket, *status, *from, *to;
    char from_ts[UTIL_TS_LEN], to_ts[UTIL_TS_LEN];
    long long before, after;
};

static int parse_filter(struct ctx *c, struct conn_filter *f, const char **why)
{
    memset(f, 0, sizeof *f);
    f->platform = http_query(c->req, "platform");
    f->user = http_query(c->req, "user");
    f->socket = http_query(c->req, "socket");
    f->status = http_query(c->req, "status");
    f->from = http_query(c->req, "from");
    f->to = http_query(c->req, "to");
    const char *vals[] = {f->platform, f->user, f->socket, f->status, f->from, f->to};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (strlen(vals[i]) > FILTER_MAX) {
            *why = "A filter is longer than 256 bytes.";
            return -1;
        }
    if (*f->status && strcmp(f->status, "active") != 0 && strcmp(f->status, "disconnected") != 0) {
        *why = "The status filter must be \"active\" or \"disconnected\".";
        return -1;
    }
    if (ui_date_range(f->from, f->to, f->from_ts, f->to_ts, why) < 0)
        return -1;
    return ui_page_position(c, &f->before, &f->after,
                            "The page position is not a connection number.", why);
}

static int build_query(const struct conn_filter *f, struct query *q)
{
    query_init(q, "connections", conn_columns);
    int rc = 0;
    if (*f->platform)
        rc |= query_where(q, "platform = ?", f->platform, QUERY_INDEXED);
    if (*f->user)
        rc |= query_where(q, "user_id = ?", f->user, QUERY_INDEXED);
    if (*f->socket)
        rc |= query_where(q, "socket_id = ?", f->socket, QUERY_INDEXED);
    if (strcmp(f->status, "active") == 0)
        rc |= query_where_sql(q, "status = 'active'", QUERY_INDEXED);
    else if (*f->status)
        rc |= query_where_sql(q, "status <> 'active'", QUERY_RESIDUAL);
    if (f->from_ts[0])
        rc |= query_where(q, "connected_at >= ?", f->from_ts, QUERY_RESIDUAL);
    if (f->to_ts[0])
        rc |= query_where(q, "connected_at < ?", f->to_ts, QUERY_RESIDUAL);
    return rc ? -1 : 0;
}

static void filter_qs(const struct conn_filter *f, struct sbuf *qs)
{
    const char *names[] = {"platform", "user", "socket", "status", "from", "to"};
    const char *vals[] = {f->platform, f->user, f->socket, f->status, f->from, f->to};
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

static void set_link(tmpl_dict *d, const struct sbuf *base, const char *cursor, long long id)
{
    struct sbuf s = SBUF_INIT;
    sbuf_append(&s, sbuf_str(base), base->len);
    if (cursor)
        sbuf_printf(&s, "%s%s=%lld", base->len ? "&" : "", cursor, id);
    tmpl_set(d, "QS", sbuf_str(&s));
    sbuf_free(&s);
}

static void set_duration(struct ctx *c, tmpl_dict *r, const char *status, const char *dur,
                         const char *connected)
{
    long long ms;
    int64_t since;
    if (status && strcmp(status, "active") == 0 && connected &&
        util_parse_ts(connected, &since, NULL) == 0) {
        ui_set_duration(r, "DURATION", c->now_ms - since);
        tmpl_show(r, "OPEN");
    } else if (dur && util_parse_ll(dur, 0, (long long)9e18, &ms) == 0) {
        ui_set_duration(r, "DURATION", ms);
    } else {
        tmpl_set(r, "DURATION", "-");
    }
}

static void fill_row(struct ctx *c, tmpl_dict *r, const struct query_page *p, size_t i)
{
    static const struct {
        int col;
        const char *key;
    } map[] = {
        {C_ID, "ID"},
        {C_SOCKET, "SOCKET"},
        {C_PLATFORM, "PLATFORM"},
        {C_USER, "USER"},
        {C_TRANSPORT, "TRANSPORT"},
        {C_ADDR, "ADDR"},
        {C_CONNECTED, "CONNECTED"},
        {C_DISCONNECTED, "DISCONNECTED"},
        {C_STATUS, "STATUS"},
        {C_APP, "APP"},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        const char *v = query_cell(p, i, (size_t)map[k].col);
        tmpl_set(r, map[k].key, v && *v ? v : "-");
    }
    ui_set_clipped(r, "UA", query_cell(p, i, C_UA), 80);
    set_duration(c, r, query_cell(p, i, C_STATUS), query_cell(p, i, C_DURATION),
                 query_cell(p, i, C_CONNECTED));
}

/* The connected-now table: the partial index idx_connections_active serves both. */
static int active_now(struct ctx *c, tmpl_dict *b, char **err)
{
    struct dbi *db = c->app->ro;
    struct query q;
    query_init(&q, "connections", conn_columns);
    struct query_page page;
    int rc = query_where_sql(&q, "status = 'active'", QUERY_INDEXED);
    if (rc == 0)
        rc = query_page(db, &q, 0, 0, ACTIVE_SHOWN, 0, &page, err);
    query_free(&q);
    if (rc < 0)
        return -1;
    long long count = 0;
    dbi_query_int(db, "SELECT COUNT(*) FROM connections WHERE status = 'active'", &count);
    ui_set_count(b, "ACTIVE_COUNT", count);
    if ((long long)page.n < count)
        ui_set_count(tmpl_add_section(b, "ACTIVE_MORE"), "SHOWN", (long long)page.n);
    for (size_t i = 0; i < page.n; i++)
        fill_row(c, tmpl_add_section(b, "ACTIVE_ROW"), &page, i);
    if (page.n == 0)
        tmpl_show(b, "ACTIVE_EMPTY");
    query_page_free(&page);
    return 0;
}

/* rtd --laravel-config's channels (daemon_status.laravel of the running nodes), summed by
 * name, most subscribed first. Shown when a node has Laravel figures. */
static int laravel_channels(struct ctx *c, tmpl_dict *b, char **err)
{
    struct dbi *db = c->app->ro;
    long long nodes = 0;
    if (dbi_query_int(db, "SELECT COUNT(*) FROM daemon_status WHERE laravel IS NOT NULL", &nodes) != 0)
        return 0; /* a database rtd has not migrated yet: nothing to show */
    if (!nodes)
        return 0;
    static const char sqlite_sql[] =
        "SELECT j.key, SUM(j.value) AS n FROM daemon_status AS d, json_each(d.laravel, '$.channels') AS j"
        " WHERE d.laravel IS NOT NULL AND d.stopped_at IS NULL GROUP BY j.key ORDER BY n DESC, j.key"
        " LIMIT 100";
    static const char pg_sql[] =
        "SELECT j.key, SUM(j.value::text::bigint) AS n FROM daemon_status AS d,"
        " json_each(d.laravel::json->'channels') AS j WHERE d.laravel IS NOT NULL"
        " AND d.stopped_at IS NULL GROUP BY j.key ORDER BY n DESC, j.key LIMIT 100";
    struct dbi_stmt *st;
    const char *sql = dbi_kind(db) == DBI_PG ? pg_sql : sqlite_sql;
    if (dbi_prepare(db, sql, &st) != 0) {
        *err = admin_db_err(db, sql);
        return -1;
    }
    tmpl_dict *l = tmpl_add_section(b, "LARAVEL");
    int rc, n = 0;
    while ((rc = dbi_step(st)) == DBI_ROW) {
        tmpl_dict *r = tmpl_add_section(l, "CHANNEL");
        const char *name = dbi_column_text(st, 0);
        tmpl_set(r, "NAME", name ? name : "");
        ui_set_count(r, "SUBSCRIBERS", dbi_column_int64(st, 1));
        n++;
    }
    dbi_finalize(st);
    if (rc != DBI_DONE) {
        *err = admin_db_err(db, "Laravel channels");
        return -1;
    }
    ui_set_count(l, "CHANNEL_COUNT", n);
    if (!n)
        tmpl_show(l, "NO_CHANNEL");
    return 0;
}

void ui_connections(struct ctx *c)
{
    struct conn_filter f;
    const char *why = NULL;
    if (parse_filter(c, &f, &why) < 0) {
        ui_error(c, 400, why);
        return;
    }
    struct query q;
    struct query_page page;
    char *err = NULL;
    if (build_query(&f, &q) < 0) {
        query_free(&q);
        ui_fail(c, "connections", strdup("out of memory"));
        return;
    }
    if (query_page(c->app->ro, &q, f.before, f.after, c->cfg->page_size, c->cfg->scan_rows, &page,
                   &err) < 0) {
        query_free(&q);
        ui_fail(c, "connections", err);
        return;
    }
    query_free(&q);
    struct ui_page p;
    if (ui_page_begin(c, &p, "Connections", "connections.tpl", "connections") < 0) {
        query_page_free(&page);
        return;
    }
    tmpl_dict *b = p.body;
    if (laravel_channels(c, b, &err) < 0 || active_now(c, b, &err) < 0 ||
        ui_platform_options(c, "connection_counts", b, f.platform, &err) < 0) {
        tmpl_dict_free(p.root);
        query_page_free(&page);
        ui_fail(c, "connections", err);
        return;
    }
    tmpl_set(b, "F_USER", f.user);
    tmpl_set(b, "F_SOCKET", f.socket);
    tmpl_set(b, "F_FROM", f.from);
    tmpl_set(b, "F_TO", f.to);
    tmpl_show(b, !*f.status                        ? "STATUS_ANY"
                 : strcmp(f.status, "active") == 0 ? "STATUS_ACTIVE"
                                                   : "STATUS_CLOSED");
    for (size_t i = 0; i < page.n; i++)
        fill_row(c, tmpl_add_section(b, "ROW"), &page, i);
    if (page.n == 0)
        tmpl_show(b, "EMPTY");
    struct sbuf qs = SBUF_INIT;
    filter_qs(&f, &qs);
    if (qs.len)
        tmpl_show(b, "FILTERED");
    if (page.scan_capped) {
        tmpl_dict *s = tmpl_add_section(b, "SCAN_CAPPED");
        tmpl_set_int(s, "DOWN_TO", page.scanned_lo);
        tmpl_set_int(s, "SCAN_ROWS", c->cfg->scan_rows);
    }
    if (page.has_older)
        set_link(tmpl_add_section(b, "OLDER"), &qs, "before", page.older_cursor);
    if (page.has_newer)
        set_link(tmpl_add_section(b, "NEWER"), &qs, "after", page.newer_cursor);
    if (f.before || f.after)
        set_link(tmpl_add_section(b, "NEWEST"), &qs, NULL, 0);
    sbuf_free(&qs);
    query_page_free(&page);
    ui_page_end(c, &p, 200);
}
