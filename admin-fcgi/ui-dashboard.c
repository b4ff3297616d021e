/* ui-dashboard.c: "/admin", the operators' overview, and "/admin/stats.json", the same
 * figures for the page's live refresh (static/site.js polls it and updates the page in
 * place; without JavaScript the page is complete as served).
 *
 * The charts are SVG drawn on the server: this file computes the geometry (numbers only)
 * and templates/dashboard.tpl draws it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-fcgi/json.h"
#include "admin-fcgi/stats.h"
#include "admin-fcgi/ui-pages.h"
#include "admin-fcgi/ui-shared.h"

/* Chart geometry, in SVG user units (the drawing scales to the page width). Kept in step
 * with static/site.js, which redraws the bars from the JSON. */
#define CHART_W 720
#define CHART_H 220
#define CHART_LEFT 48
#define CHART_RIGHT 8
#define CHART_TOP 12
#define CHART_BOTTOM 28

/* The smallest 1, 2 or 5 times a power of ten at least v (and at least 1). */
static long long nice_max(long long v)
{
    long long m = 1;
    for (;;) {
        if (v <= m)
            return m;
        if (v <= 2 * m)
            return 2 * m;
        if (v <= 5 * m)
            return 5 * m;
        if (m > (long long)1e17)
            return v;
        m *= 10;
    }
}

static void chart(tmpl_dict *body, const char *id, const char *caption, const char *unit,
                  const long long *v, int n, const char *labels, size_t label_stride,
                  const char *(*short_label)(const char *full, char *buf, size_t n),
                  int label_every)
{
    tmpl_dict *d = tmpl_add_section(body, "CHART");
    long long max = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > max)
            max = v[i];
    max = nice_max(max);
    int plot_w = CHART_W - CHART_LEFT - CHART_RIGHT, plot_h = CHART_H - CHART_TOP - CHART_BOTTOM;
    tmpl_set(d, "ID", id);
    tmpl_set(d, "CAPTION", caption);
    tmpl_set_int(d, "W", CHART_W);
    tmpl_set_int(d, "H", CHART_H);
    tmpl_set_int(d, "TOP", CHART_TOP);
    tmpl_set_int(d, "PH", plot_h);
    tmpl_set_int(d, "MAX", max);
    for (int g = 0; g <= 2; g++) {
        tmpl_dict *gd = tmpl_add_section(d, "GRID");
        int y = CHART_TOP + plot_h - plot_h * g / 2;
        tmpl_set_int(gd, "Y", y);
        tmpl_set_int(gd, "X1", CHART_LEFT);
        tmpl_set_int(gd, "X2", CHART_W - CHART_RIGHT);
        tmpl_set_int(gd, "LX", CHART_LEFT - 6);
        tmpl_set_int(gd, "LY", y + 4);
        tmpl_set_int(gd, "FRAC", g);
        char label[48];
        util_format_count(max * g / 2, label, sizeof label);
        if (g == 1 && max % 2)
            strcat(label, ".5");
        tmpl_set(gd, "LABEL", label);
    }
    double slot = (double)plot_w / n;
    for (int i = 0; i < n; i++) {
        const char *full = labels + (size_t)i * label_stride;
        tmpl_dict *b = tmpl_add_section(d, "BAR");
        long long h = max ? v[i] * plot_h / max : 0;
        if (v[i] > 0 && h < 1)
            h = 1;
        tmpl_setf(b, "X", "%.1f", CHART_LEFT + slot * i + slot * 0.15);
        tmpl_setf(b, "BW", "%.1f", slot * 0.7);
        tmpl_set_int(b, "Y", CHART_TOP + plot_h - h);
        tmpl_set_int(b, "BH", h);
        tmpl_set_int(b, "I", i);
        char count[40];
        util_format_count(v[i], count, sizeof count);
        tmpl_setf(b, "TIP", "%s: %s %s", full, count, unit);
        if (i % label_every == 0 || i == n - 1) {
            char buf[20];
            tmpl_dict *l = tmpl_add_section(d, "XLABEL");
            tmpl_setf(l, "X", "%.1f", CHART_LEFT + slot * i + slot * 0.5);
            tmpl_set_int(l, "Y", CHART_H - 8);
            tmpl_set_int(l, "I", i);
            tmpl_set(l, "LABEL", short_label(full, buf, sizeof buf));
        }
    }
}

static const char *hour_short(const char *full, char *buf, size_t n)
{
    snprintf(buf, n, "%.5s", full + 11); /* "HH:MM" */
    return buf;
}

static const char *day_short(const char *full, char *buf, size_t n)
{
    snprintf(buf, n, "%.5s", full + 5); /* "MM-DD" */
    return buf;
}

static void platforms(tmpl_dict *body, const char *section, const struct stats_platform *p, int n,
                      long long total)
{
    tmpl_dict *t = tmpl_add_section(body, section);
    if (n == 0)
        tmpl_show(t, "EMPTY");
    long long sum = 0;
    for (int i = 0; i < n; i++)
        sum += p[i].count;
    if (sum < total)
        sum = total;
    for (int i = 0; i < n; i++) {
        tmpl_dict *r = tmpl_add_section(t, "ROW");
        tmpl_set(r, "NAME", p[i].name);
        ui_set_count(r, "COUNT", p[i].count);
        tmpl_set_int(r, "PCT", sum ? p[i].count * 100 / sum : 0);
    }
}

static void age_text(long long ms, char *out, size_t n)
{
    if (ms < 0) {
        snprintf(out, n, "never");
        return;
    }
    char d[40];
    util_format_duration(ms, d, sizeof d);
    snprintf(out, n, "%s ago", d);
}

void ui_dashboard(struct ctx *c)
{
    struct stats *s = malloc(sizeof *s);
    char *err = NULL;
    if (!s || stats_load(c->app->ro, c->now_ms, s, &err) < 0) {
        free(s);
        ui_fail(c, "dashboard", err);
        return;
    }
    struct ui_page p;
    if (ui_page_begin(c, &p, "Dashboard", "dashboard.tpl", "dashboard") < 0) {
        free(s);
        return;
    }
    tmpl_dict *b = p.body;
    tmpl_set_int(b, "REFRESH_MS", (long long)c->cfg->refresh_seconds * 1000);
    ui_set_count(b, "CONNECTIONS_TOTAL", s->connections_total);
    ui_set_count(b, "CONNECTIONS_ACTIVE", s->connections_active);
    ui_set_count(b, "MESSAGES_TOTAL", s->messages_total);
    ui_set_count(b, "MESSAGES_TODAY", s->messages_today);
    ui_set_duration(b, "SESSION_AVG", s->session_ms_avg);
    ui_set_duration(b, "SESSION_MAX", s->session_ms_max);
    ui_set_count(b, "SESSIONS_CLOSED", s->sessions_closed);
    char bytes[40];
    util_format_bytes(s->db_bytes, bytes, sizeof bytes);
    tmpl_set(b, "DB_SIZE", bytes);
    tmpl_set(b, "GENERATED_AT", s->generated_at);

    tmpl_set(b, "HEALTH", stats_health_name(s->health));
    tmpl_set(b, "HEALTH_CLASS", s->health == STATS_RUNNING ? "ok" : "bad");
    tmpl_set_int(b, "PID", s->pid);
    tmpl_set(b, "VERSION", s->version[0] ? s->version : "-");
    tmpl_set(b, "STARTED_AT", s->started_at[0] ? s->started_at : "-");
    tmpl_set(b, "STOPPED_AT", s->stopped_at[0] ? s->stopped_at : "-");
    char age[64];
    age_text(s->heartbeat_age_ms, age, sizeof age);
    tmpl_set(b, "HEARTBEAT", age);
    ui_set_count(b, "D_CONNECTIONS", s->d_connections);
    ui_set_count(b, "D_MESSAGES_IN", s->d_messages_in);
    ui_set_count(b, "D_MESSAGES_OUT", s->d_messages_out);
    if (s->laravel_nodes) { /* rtd --laravel-config */
        tmpl_dict *l = tmpl_add_section(b, "LARAVEL");
        ui_set_count(l, "BROADCASTS", s->laravel_broadcasts);
        ui_set_count(l, "DELIVERIES", s->laravel_deliveries);
    }
    for (int i = 0; i < s->n_nodes; i++) {
        const struct stats_node *n = &s->nodes[i];
        tmpl_dict *r = tmpl_add_section(b, "NODE");
        tmpl_set(r, "NODE_ID", n->node_id);
        tmpl_set(r, "HEALTH", stats_health_name(n->health));
        tmpl_set(r, "HEALTH_CLASS", n->health == STATS_RUNNING ? "ok" : "bad");
        age_text(n->heartbeat_age_ms, age, sizeof age);
        tmpl_set(r, "HEARTBEAT", age);
        tmpl_set_int(r, "PID", n->pid);
        tmpl_set(r, "VERSION", n->version[0] ? n->version : "-");
        tmpl_set(r, "STARTED_AT", n->started_at[0] ? n->started_at : "-");
        ui_set_count(r, "CONNECTIONS", n->connections);
        ui_set_count(r, "MESSAGES_IN", n->messages_in);
        ui_set_count(r, "MESSAGES_OUT", n->messages_out);
    }
    if (s->n_nodes == 0)
        tmpl_show(b, "NO_NODES");

    platforms(b, "CONN_PLATFORMS", s->conn_platforms, s->n_conn_platforms, s->connections_total);
    platforms(b, "MSG_PLATFORMS", s->msg_platforms, s->n_msg_platforms, s->messages_total);

    chart(b, "hours", "Messages per hour, last 24 hours (UTC)", "messages", s->per_hour,
          STATS_HOURS, s->hour_label[0], sizeof s->hour_label[0], hour_short, 4);
    chart(b, "days", "Messages per day, last 30 days (UTC)", "messages", s->per_day, STATS_DAYS,
          s->day_label[0], sizeof s->day_label[0], day_short, 5);
    free(s);
    ui_page_end(c, &p, 200);
}

static void json_platforms(struct sbuf *j, const struct stats_platform *p, int n)
{
    sbuf_putc(j, '[');
    for (int i = 0; i < n; i++) {
        sbuf_puts(j, i ? ",{\"name\":" : "{\"name\":");
        json_str(j, p[i].name);
        sbuf_printf(j, ",\"count\":%lld}", p[i].count);
    }
    sbuf_putc(j, ']');
}

static void json_series(struct sbuf *j, const long long *v, const char *labels, size_t stride,
                        int n)
{
    sbuf_puts(j, "{\"labels\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            sbuf_putc(j, ',');
        json_str(j, labels + (size_t)i * stride);
    }
    sbuf_puts(j, "],\"values\":[");
    for (int i = 0; i < n; i++)
        sbuf_printf(j, i ? ",%lld" : "%lld", v[i]);
    sbuf_puts(j, "]}");
}

void ui_stats_json(struct ctx *c)
{
    struct stats *s = malloc(sizeof *s);
    char *err = NULL;
    if (!s || stats_load(c->app->ro, c->now_ms, s, &err) < 0) {
        free(s);
        ui_fail(c, "stats.json", err);
        return;
    }
    struct sbuf j = SBUF_INIT;
    sbuf_printf(&j,
                "{\"generatedAt\":\"%s\",\"connections\":{\"total\":%lld,\"active\":%lld},"
                "\"messages\":{\"total\":%lld,\"today\":%lld},"
                "\"sessions\":{\"closed\":%lld,\"avgMs\":%lld,\"maxMs\":%lld},"
                "\"dbBytes\":%lld,",
                s->generated_at, s->connections_total, s->connections_active, s->messages_total,
                s->messages_today, s->sessions_closed, s->session_ms_avg, s->session_ms_max,
                s->db_bytes);
    if (s->laravel_nodes) /* rtd --laravel-config: the dashboard's Laravel line follows */
        sbuf_printf(&j, "\"laravel\":{\"nodes\":%d,\"broadcasts\":%lld,\"deliveries\":%lld},",
                    s->laravel_nodes, s->laravel_broadcasts, s->laravel_deliveries);
    sbuf_puts(&j, "\"connectionsByPlatform\":");
    json_platforms(&j, s->conn_platforms, s->n_conn_platforms);
    sbuf_puts(&j, ",\"messagesByPlatform\":");
    json_platforms(&j, s->msg_platforms, s->n_msg_platforms);
    sbuf_puts(&j, ",\"perHour\":");
    json_series(&j, s->per_hour, s->hour_label[0], sizeof s->hour_label[0], STATS_HOURS);
    sbuf_puts(&j, ",\"perDay\":");
    json_series(&j, s->per_day, s->day_label[0], sizeof s->day_label[0], STATS_DAYS);
    sbuf_puts(&j, ",\"daemon\":{\"health\":");
    json_str(&j, stats_health_name(s->health));
    sbuf_printf(&j, ",\"pid\":%lld,\"version\":", s->pid);
    json_str(&j, s->version);
    sbuf_puts(&j, ",\"startedAt\":");
    json_str(&j, s->started_at);
    sbuf_puts(&j, ",\"updatedAt\":");
    json_str(&j, s->updated_at);
    sbuf_puts(&j, ",\"stoppedAt\":");
    json_str(&j, s->stopped_at);
    sbuf_printf(&j,
                ",\"heartbeatAgeMs\":%lld,\"connections\":%lld,\"messagesIn\":%lld,"
                "\"messagesOut\":%lld},\"nodes\":[",
                s->heartbeat_age_ms, s->d_connections, s->d_messages_in, s->d_messages_out);
    for (int i = 0; i < s->n_nodes; i++) {
        const struct stats_node *n = &s->nodes[i];
        sbuf_puts(&j, i ? ",{\"node\":" : "{\"node\":");
        json_str(&j, n->node_id);
        sbuf_puts(&j, ",\"health\":");
        json_str(&j, stats_health_name(n->health));
        sbuf_printf(&j, ",\"pid\":%lld,\"version\":", n->pid);
        json_str(&j, n->version);
        sbuf_puts(&j, ",\"startedAt\":");
        json_str(&j, n->started_at);
        sbuf_puts(&j, ",\"updatedAt\":");
        json_str(&j, n->updated_at);
        sbuf_puts(&j, ",\"stoppedAt\":");
        json_str(&j, n->stopped_at);
        sbuf_printf(&j,
                    ",\"heartbeatAgeMs\":%lld,\"connections\":%lld,\"messagesIn\":%lld,"
                    "\"messagesOut\":%lld}",
                    n->heartbeat_age_ms, n->connections, n->messages_in, n->messages_out);
    }
    sbuf_puts(&j, "]}\n");
    free(s);
    if (j.failed) {
        sbuf_free(&j);
        ui_fail(c, "stats.json", NULL);
        return;
    }
    http_header(c->req, "Cache-Control", "no-store");
    http_begin(c->req, 200, "application/json; charset=utf-8");
    http_write(c->req, j.data, j.len);
    sbuf_free(&j);
}
