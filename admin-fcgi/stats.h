/* stats.h: the dashboard's figures, read from rtd's counters and never from a scan of the
 * messages table.
 *
 * totals (whole history), message_counts and connection_counts (per hour and platform),
 * the partial index on active connections, daemon_status (rtd's heartbeat) and the page
 * count pragmas. stats_load reads all of them in one read transaction, so the figures are
 * one consistent snapshot. The dashboard page and /admin/stats.json share this struct. */
#ifndef ADMIN_STATS_H
#define ADMIN_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <sqlite3.h>

#define STATS_PLATFORMS 12 /* platforms listed; the rest are summed as "other" */
#define STATS_HOURS 24
#define STATS_DAYS 30
#define STATS_HEALTHY_MS 15000 /* heartbeat age under which rtd counts as running */

struct stats_platform {
    char name[64];
    long long count;
};

enum stats_health { STATS_NEVER, STATS_RUNNING, STATS_STOPPED, STATS_NOT_RESPONDING };

struct stats {
    long long connections_total, connections_active;
    long long messages_total, messages_today;
    long long sessions_closed, session_ms_total, session_ms_max, session_ms_avg;
    struct stats_platform conn_platforms[STATS_PLATFORMS + 1];
    int n_conn_platforms;
    struct stats_platform msg_platforms[STATS_PLATFORMS + 1];
    int n_msg_platforms;
    /* Oldest first; labels are 'YYYY-MM-DD HH:00:00' and 'YYYY-MM-DD'. */
    long long per_hour[STATS_HOURS];
    char hour_label[STATS_HOURS][20];
    long long per_day[STATS_DAYS];
    char day_label[STATS_DAYS][11];
    long long db_bytes;
    /* rtd's heartbeat */
    enum stats_health health;
    long long pid, d_connections, d_messages_in, d_messages_out;
    char version[32], started_at[24], updated_at[24], stopped_at[24];
    long long heartbeat_age_ms;
    char generated_at[24];
};

/* Fills s as of now_ms. Returns 0, or -1 and a malloc'ed *err. */
int stats_load(sqlite3 *ro, int64_t now_ms, struct stats *s, char **err);

const char *stats_health_name(enum stats_health h);

#endif
