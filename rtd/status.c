/* status.c: /health and /metrics (see status.h). Both are cheap: counters only, no I/O. */
#include "config.h"

#include <string.h>

#include "rtd/lib/util.h"
#include "rtd/net/loop.h"
#include "rtd/status.h"

void status_health(http_request *req, void *ud)
{
    struct status_sources *src = ud;
    struct store_stats st;
    store_get_stats(src->store, &st);
    eio_server *eio = sio_server_engine(src->sio);
    bool ok = st.db_ok;
    buf b = BUF_INIT;
    buf_printf(&b,
               "{\"status\":\"%s\",\"version\":\"%s\",\"uptime\":%.3f,\"connections\":%u,"
               "\"sessions\":%u,\"database\":{\"ok\":%s,\"queueDepth\":%zu}}",
               ok ? "ok" : "degraded", PACKAGE_VERSION,
               (double)(util_wall_ms() - src->started_ms) / 1000.0,
               platform_connections(src->platform), eio_server_session_count(eio),
               st.db_ok ? "true" : "false", st.queue_depth);
    if (src->cluster) {
        struct cluster_stats cs;
        cluster_get_stats(src->cluster, &cs);
        b.len--; /* reopen the object */
        buf_printf(&b,
                   ",\"redis\":{\"state\":\"%s\",\"uid\":\"%s\",\"reconnects\":%llu,"
                   "\"published\":%llu,\"publishFailed\":%llu,\"received\":%llu,"
                   "\"delivered\":%llu,\"dropped\":%llu,\"requests\":%llu}}",
                   redis_link_state_name(cs.link.state), cluster_uid(src->cluster),
                   (unsigned long long)cs.link.reconnects, (unsigned long long)cs.link.published,
                   (unsigned long long)cs.link.publish_failed,
                   (unsigned long long)cs.link.received, (unsigned long long)cs.delivered,
                   (unsigned long long)cs.dropped, (unsigned long long)cs.requests);
    }
    http_add_header(req, "Cache-Control", "no-store");
    http_respond_buf(req, ok ? 200 : 503, "application/json", &b);
}

static void platform_line(const char *name, unsigned n, void *ud)
{
    buf_printf(ud, "rtd_connections_by_platform{platform=\"%s\"} %u\n", name, n);
}

void status_metrics(http_request *req, void *ud)
{
    struct status_sources *src = ud;
    eio_server *eio = sio_server_engine(src->sio);
    struct store_stats st;
    struct platform_stats ps;
    unsigned polling, websocket;
    uint64_t bytes_in, bytes_out;
    store_get_stats(src->store, &st);
    platform_get_stats(src->platform, &ps);
    eio_server_transport_counts(eio, &polling, &websocket);
    eio_server_bytes(eio, &bytes_in, &bytes_out);
    buf b = BUF_INIT;
    buf_printf(&b,
               "# HELP rtd_uptime_seconds Seconds since rtd started.\n"
               "# TYPE rtd_uptime_seconds gauge\n"
               "rtd_uptime_seconds %.3f\n"
               "# HELP rtd_connections Engine.IO sessions by current transport.\n"
               "# TYPE rtd_connections gauge\n"
               "rtd_connections{transport=\"polling\"} %u\n"
               "rtd_connections{transport=\"websocket\"} %u\n"
               "# HELP rtd_connections_by_platform Sockets on \"/\" by identified platform.\n"
               "# TYPE rtd_connections_by_platform gauge\n",
               (double)(util_wall_ms() - src->started_ms) / 1000.0, polling, websocket);
    platform_each_count(src->platform, platform_line, &b);
    buf_printf(&b,
               "# HELP rtd_events_received_total Socket.IO events received from clients.\n"
               "# TYPE rtd_events_received_total counter\n"
               "rtd_events_received_total %llu\n"
               "# HELP rtd_events_rejected_total Events refused (invalid, rate limited, busy).\n"
               "# TYPE rtd_events_rejected_total counter\n"
               "rtd_events_rejected_total %llu\n"
               "# HELP rtd_rate_limited_total Events refused by the per-socket rate limit.\n"
               "# TYPE rtd_rate_limited_total counter\n"
               "rtd_rate_limited_total %llu\n"
               "# HELP rtd_messages_in_total Messages stored.\n"
               "# TYPE rtd_messages_in_total counter\n"
               "rtd_messages_in_total %llu\n"
               "# HELP rtd_messages_out_total receive-message deliveries.\n"
               "# TYPE rtd_messages_out_total counter\n"
               "rtd_messages_out_total %llu\n"
               "# HELP rtd_bytes_received_total Transport bytes received.\n"
               "# TYPE rtd_bytes_received_total counter\n"
               "rtd_bytes_received_total %llu\n"
               "# HELP rtd_bytes_sent_total Transport bytes sent.\n"
               "# TYPE rtd_bytes_sent_total counter\n"
               "rtd_bytes_sent_total %llu\n"
               "# HELP rtd_store_queue_depth Writes waiting for the writer thread.\n"
               "# TYPE rtd_store_queue_depth gauge\n"
               "rtd_store_queue_depth %zu\n"
               "# HELP rtd_store_queue_bytes Bytes of the writes waiting for the writer thread.\n"
               "# TYPE rtd_store_queue_bytes gauge\n"
               "rtd_store_queue_bytes %zu\n"
               "# HELP rtd_store_errors_total Failed store transactions.\n"
               "# TYPE rtd_store_errors_total counter\n"
               "rtd_store_errors_total %llu\n"
               "# HELP rtd_store_commit_seconds Duration of store transactions.\n"
               "# TYPE rtd_store_commit_seconds histogram\n",
               (unsigned long long)ps.events_in, (unsigned long long)ps.rejected,
               (unsigned long long)ps.rate_limited, (unsigned long long)ps.messages_in,
               (unsigned long long)ps.messages_out, (unsigned long long)bytes_in,
               (unsigned long long)bytes_out, st.queue_depth, st.queue_bytes,
               (unsigned long long)st.errors);
    buf_printf(&b,
               "# HELP rtd_recoveries_tried_total Reconnections that asked for their session back.\n"
               "# TYPE rtd_recoveries_tried_total counter\n"
               "rtd_recoveries_tried_total %llu\n"
               "# HELP rtd_recoveries_succeeded_total Sessions recovered (recovered: true).\n"
               "# TYPE rtd_recoveries_succeeded_total counter\n"
               "rtd_recoveries_succeeded_total %llu\n"
               "# HELP rtd_recovery_replayed_total Missed events replayed to recovered sockets.\n"
               "# TYPE rtd_recovery_replayed_total counter\n"
               "rtd_recovery_replayed_total %llu\n"
               "# HELP rtd_recovery_claimed_total Sessions claimed from the shared store (PostgreSQL).\n"
               "# TYPE rtd_recovery_claimed_total counter\n"
               "rtd_recovery_claimed_total %llu\n",
               (unsigned long long)ps.recoveries_tried, (unsigned long long)ps.recoveries_succeeded,
               (unsigned long long)ps.recovery_replayed, (unsigned long long)ps.recovery_claimed);
    for (int i = 0; i < 8; i++)
        buf_printf(&b, "rtd_store_commit_seconds_bucket{le=\"%g\"} %llu\n",
                   store_commit_buckets_ms[i] / 1000.0, (unsigned long long)st.commit_le[i]);
    buf_printf(&b,
               "rtd_store_commit_seconds_bucket{le=\"+Inf\"} %llu\n"
               "rtd_store_commit_seconds_sum %.6f\n"
               "rtd_store_commit_seconds_count %llu\n"
               "# HELP rtd_store_checkpoints_total WAL checkpoint passes.\n"
               "# TYPE rtd_store_checkpoints_total counter\n"
               "rtd_store_checkpoints_total %llu\n"
               "# HELP rtd_store_wal_frames Frames in the WAL after the last checkpoint pass.\n"
               "# TYPE rtd_store_wal_frames gauge\n"
               "rtd_store_wal_frames %llu\n"
               "# HELP rtd_store_wal_pauses_total Checkpoint passes that paused the writer so the WAL could start over.\n"
               "# TYPE rtd_store_wal_pauses_total counter\n"
               "rtd_store_wal_pauses_total %llu\n"
               "# HELP rtd_store_wal_pause_seconds_total Time the writer spent paused for them.\n"
               "# TYPE rtd_store_wal_pause_seconds_total counter\n"
               "rtd_store_wal_pause_seconds_total %.6f\n",
               (unsigned long long)st.commit_count, st.commit_sum_ms / 1000.0,
               (unsigned long long)st.commit_count, (unsigned long long)st.checkpoints,
               (unsigned long long)st.wal_frames, (unsigned long long)st.wal_pauses,
               st.wal_pause_ms / 1000.0);
    if (src->cluster) {
        struct cluster_stats cs;
        cluster_get_stats(src->cluster, &cs);
        buf_printf(&b,
                   "# HELP rtd_redis_up Whether the Redis link is up (both connections, every "
                   "subscription confirmed).\n"
                   "# TYPE rtd_redis_up gauge\n"
                   "rtd_redis_up %d\n"
                   "# HELP rtd_redis_reconnects_total Redis connections made again after a loss.\n"
                   "# TYPE rtd_redis_reconnects_total counter\n"
                   "rtd_redis_reconnects_total %llu\n"
                   "# HELP rtd_redis_published_total Messages published to Redis.\n"
                   "# TYPE rtd_redis_published_total counter\n"
                   "rtd_redis_published_total %llu\n"
                   "# HELP rtd_redis_publish_failed_total Messages that could not be published "
                   "(link down, Redis too slow, error).\n"
                   "# TYPE rtd_redis_publish_failed_total counter\n"
                   "rtd_redis_publish_failed_total %llu\n"
                   "# HELP rtd_redis_received_total Messages received from Redis.\n"
                   "# TYPE rtd_redis_received_total counter\n"
                   "rtd_redis_received_total %llu\n"
                   "# HELP rtd_redis_delivered_total Broadcasts of other nodes delivered here.\n"
                   "# TYPE rtd_redis_delivered_total counter\n"
                   "rtd_redis_delivered_total %llu\n"
                   "# HELP rtd_redis_dropped_total Messages from Redis refused (malformed, "
                   "wrong types, unknown namespace or request).\n"
                   "# TYPE rtd_redis_dropped_total counter\n"
                   "rtd_redis_dropped_total %llu\n"
                   "# HELP rtd_redis_requests_total Requests of other nodes handled.\n"
                   "# TYPE rtd_redis_requests_total counter\n"
                   "rtd_redis_requests_total %llu\n",
                   cs.link.state == REDIS_LINK_UP, (unsigned long long)cs.link.reconnects,
                   (unsigned long long)cs.link.published,
                   (unsigned long long)cs.link.publish_failed,
                   (unsigned long long)cs.link.received, (unsigned long long)cs.delivered,
                   (unsigned long long)cs.dropped, (unsigned long long)cs.requests);
    }
    if (src->laravel) {
        struct laravel_stats ls;
        laravel_get_stats(src->laravel, &ls);
        buf_printf(&b,
                   "# HELP rtd_laravel_broadcasts_received_total Laravel events received, by "
                   "source (Redis subscriber, HTTP subscriber, Pusher-signed API).\n"
                   "# TYPE rtd_laravel_broadcasts_received_total counter\n"
                   "rtd_laravel_broadcasts_received_total{source=\"redis\"} %llu\n"
                   "rtd_laravel_broadcasts_received_total{source=\"http\"} %llu\n"
                   "rtd_laravel_broadcasts_received_total{source=\"pusher\"} %llu\n"
                   "# HELP rtd_laravel_broadcasts_total Events sent to a channel (presence "
                   "events too).\n"
                   "# TYPE rtd_laravel_broadcasts_total counter\n"
                   "rtd_laravel_broadcasts_total %llu\n"
                   "# HELP rtd_laravel_deliveries_total Laravel event packets sent to sockets.\n"
                   "# TYPE rtd_laravel_deliveries_total counter\n"
                   "rtd_laravel_deliveries_total %llu\n"
                   "# HELP rtd_laravel_subscriptions_total Channels joined.\n"
                   "# TYPE rtd_laravel_subscriptions_total counter\n"
                   "rtd_laravel_subscriptions_total %llu\n"
                   "# HELP rtd_laravel_auth_callouts_total Auth callouts by result (200, another "
                   "status, no answer).\n"
                   "# TYPE rtd_laravel_auth_callouts_total counter\n"
                   "rtd_laravel_auth_callouts_total{result=\"ok\"} %llu\n"
                   "rtd_laravel_auth_callouts_total{result=\"denied\"} %llu\n"
                   "rtd_laravel_auth_callouts_total{result=\"failed\"} %llu\n"
                   "# HELP rtd_laravel_refused_total Bad input refused, by kind.\n"
                   "# TYPE rtd_laravel_refused_total counter\n"
                   "rtd_laravel_refused_total{kind=\"redis_message\"} %llu\n"
                   "rtd_laravel_refused_total{kind=\"client_payload\"} %llu\n"
                   "rtd_laravel_refused_total{kind=\"member_data\"} %llu\n"
                   "rtd_laravel_refused_total{kind=\"unauthorized\"} %llu\n"
                   "rtd_laravel_refused_total{kind=\"bad_request\"} %llu\n"
                   "rtd_laravel_refused_total{kind=\"too_large\"} %llu\n"
                   "# HELP rtd_laravel_api_requests_total HTTP API and subscriber requests.\n"
                   "# TYPE rtd_laravel_api_requests_total counter\n"
                   "rtd_laravel_api_requests_total %llu\n",
                   (unsigned long long)ls.received, (unsigned long long)ls.http_events,
                   (unsigned long long)ls.pusher_events, (unsigned long long)ls.broadcasts,
                   (unsigned long long)ls.delivered, (unsigned long long)ls.subscribes,
                   (unsigned long long)ls.auth_ok, (unsigned long long)ls.auth_denied,
                   (unsigned long long)ls.auth_failed, (unsigned long long)ls.dropped,
                   (unsigned long long)ls.refused, (unsigned long long)ls.member_refused,
                   (unsigned long long)ls.api_unauthorized, (unsigned long long)ls.api_bad_request,
                   (unsigned long long)ls.api_too_large, (unsigned long long)ls.api_requests);
    }
    http_add_header(req, "Cache-Control", "no-store");
    http_respond_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
