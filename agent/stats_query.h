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

#include "api_params.h"
#include "auth.h"
#include "config.h"
#include "day_cache.h"
#include "http_server.h"
#include "pg_pool.h"
#include "query_plan.h"

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

/* --- what the statistics endpoints share (stats_query, regressions) --------------------- */

/* The round trip every answer makes on a reader session, in one transaction: BEGIN, the
 * claims set locally (value: the claims JSON), the tenant check (value: the tenant; one
 * row, 't' when the token may read it), one or more rows statements, COMMIT. */
#define STATS_SQL_BEGIN "BEGIN READ ONLY"
#define STATS_SQL_CLAIMS                                                                           \
    "SELECT set_config('role', 'exectime_reader', true),"                                          \
    " set_config('request.jwt.claims', $1, true)"
#define STATS_ALLOWED_STATEMENT "et_allowed"
#define STATS_ROWS_ONE_STATEMENT "et_rows_one" /* one workflow's rows, or the tenant-wide */
#define STATS_ROWS_ALL_STATEMENT "et_rows_all" /* every row of the tenant */
#define STATS_ROWS_PARAM_COUNT 13

/* The parameters of one rows statement (results in binary, as stats_answer_add_row reads
 * them). values point into the struct itself: fill it where it stays until sent. */
typedef struct stats_rows_query {
    const char *statement; /* STATS_ROWS_ONE_STATEMENT or STATS_ROWS_ALL_STATEMENT */
    const char *values[STATS_ROWS_PARAM_COUNT];
    char times[10][40];
    char statuses[32];
} stats_rows_query_t;

/* The rows of tenant over plan's pieces (the day piece left out when skip_days), of one
 * workflow ("" the tenant-wide rows) or, workflow NULL, of every workflow and the tenant. */
void stats_rows_query_fill(stats_rows_query_t *q, const char *tenant, const char *workflow,
                           uint8_t status_mask, const plan_t *plan, bool skip_days);

/* Where minute and hour rollup rows end, by the configured retention, as of now_us. */
plan_retention_t stats_api_retention(const stats_api_t *api, int64_t now_us);

/*
 * The refusals that come before parameters: answers an OPTIONS preflight (204), another
 * method than GET or HEAD (405) or a token auth refuses (401, 503 out of memory) itself
 * and returns false (res is then gone). true: *claims holds the token's claims, which the
 * caller frees with auth_claims_free.
 */
bool stats_api_admit(stats_api_t *api, const http_request_t *req, http_response_t *res,
                     const char *origin, int64_t now_us, auth_claims_t *claims);

/* The tenant asked for, or the token's only one, into tenant: NULL, or the reason for a 400
 * naming tenant_id when it is neither. */
const char *stats_api_tenant(const auth_claims_t *claims, const api_params_t *params, char *tenant,
                             size_t cap);

#endif
