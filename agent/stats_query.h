/*
 * stats_query — GET /api/v1/statistics/execution-times (DESIGN section 5): verifies the
 * caller's JWT (auth), parses the parameters (api_params), plans the fewest rollup rows
 * (query_plan), reads them in one pipelined round trip on a reader session — inside one
 * transaction as exectime_reader with the request's claims set locally, so PostgreSQL's
 * row-level security decides what the caller sees — merges the histograms in C and
 * answers JSON with an ETag (If-None-Match gives 304) and CORS headers. The whole days of
 * a summary question come from day_cache when it holds them (PostgreSQL still decides
 * whether the token may read the tenant); a listener session keeps the cache fresh.
 *
 * Ownership: stats_api_t is embedded by its owner. Each request's state is allocated on
 * arrival and freed when its response is sent and its database work has finished,
 * whichever comes last. Errors: init returns 0 or a negative errno with a reason.
 */
#ifndef EXECTIME_STATS_QUERY_H
#define EXECTIME_STATS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "day_cache.h"
#include "http_server.h"
#include "pg_pool.h"

#define STATS_API_PATH "/api/v1/statistics/execution-times"
#define STATS_DB_SESSIONS 4
#define STATS_QUEUE_MAX 256

typedef struct stats_api {
    uv_loop_t *loop;
    const config_t *cfg;
    pg_pool_t pool;
    auth_t auth;
    bool auth_configured; /* false: every request gets 401 with a reason */
    char auth_error[256]; /* why auth is not configured */
    day_cache_t cache;    /* merged whole days of summary answers */
    pg_conn_t listener;   /* LISTEN exectime_rollups: what drops cache entries */
    int closing;          /* pool and listener still to close */
    void (*on_closed)(struct stats_api *api);
} stats_api_t;

__attribute__((warn_unused_result)) int stats_api_init(stats_api_t *api, uv_loop_t *loop,
                                                       const config_t *cfg, char *err,
                                                       size_t err_cap);
void stats_api_start(stats_api_t *api);

/* Handles one request to STATS_API_PATH (any method). */
void stats_api_handle(stats_api_t *api, const http_request_t *req, http_response_t *res);

/* Reader sessions up: the API can answer. */
bool stats_api_ready(const stats_api_t *api);

void stats_api_close(stats_api_t *api, void (*on_closed)(stats_api_t *api));

#endif
