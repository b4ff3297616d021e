/* status.h: GET /health (JSON) and GET /metrics (Prometheus text format).
 * Reads figures from the engine, the platform and the store; owns nothing of theirs. */
#ifndef RTD_STATUS_H
#define RTD_STATUS_H

#include <stdint.h>

#include "rtd/cluster/cluster.h"
#include "rtd/laravel/laravel.h"
#include "rtd/net/http.h"
#include "rtd/platform.h"
#include "rtd/socketio/sio.h"
#include "rtd/store/store.h"

struct status_sources {
    sio_server *sio;
    platform *platform;
    store *store;
    int64_t started_ms; /* wall clock at start */
    cluster *cluster;   /* NULL without --redis */
    laravel *laravel;   /* NULL without --laravel-config */
};

void status_health(http_request *req, void *ud);  /* ud: struct status_sources */
void status_metrics(http_request *req, void *ud); /* ud: struct status_sources */

#endif
