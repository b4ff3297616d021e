/* stats.h: the dashboard's figures, read from rtd's counters and never from a scan of the
 * messages table.
 *
 * totals (whole history), message_counts and connection_counts (per hour and platform),
 * the partial index on active connections, daemon_status (rtd's heartbeat: one row on
 * SQLite, one per node on PostgreSQL) and the database's size. stats_load reads all of them in one read transaction, so the figures are
 * one consistent snapshot. The dashboard page and /admin/stats.json share this struct. */
#ifndef ADMIN_STATS_H
#define ADMIN_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "admin-fcgi/dbi.h"

#define STATS_PLATFORMS 12 /* platforms listed; the rest are summed as "other" */
#define STATS_HOURS 24
#define STATS_DAYS 30
#define STATS_HEALTHY_MS 15000 /* heartbeat age under which rtd counts as running */
#define STATS_NODES 64         /* rtd nodes listed */

struct stats_platform {
    char name[64];
    long long count;
};

enum stats_health { STATS_NEVER, STATS_RUNNING, STATS_STOPPED, STATS_NOT_RESPONDING };

/* One rtd node's daemon_status row. */
struct stats_node {
    char node_id[80];
    enum stats_health health;
    long long pid, connections, messages_in, messages_out;
    char version[32], started_at[24], updated_at[24], stopped_at[24];
    long long heartbeat_age_ms;
};

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
    /* rtd's heartbeat: the node heard from last (pid, version, times, health) and the sums
     * of every node's sockets and messages */
    enum stats_health health;
    long long pid, d_connections, d_messages_in, d_messages_out;
    char version[32], started_at[24], updated_at[24], stopped_at[24];
    long long heartbeat_age_ms;
    /* rtd --laravel-config's figures (daemon_status.laravel), summed over the nodes that
     * have them: events sent to channels and packets delivered, since each node started */
    int laravel_nodes;
    long long laravel_broadcasts, laravel_deliveries;
    struct stats_node nodes[STATS_NODES]; /* by node id */
    int n_nodes;
    char generated_at[24];
};

/* Fills s as of now_ms. Returns 0, or -1 and a malloc'ed *err. */
int stats_load(struct dbi *ro, int64_t now_ms, struct stats *s, char **err);

const char *stats_health_name(enum stats_health h);

#endif
