/* stats_query — see stats_query.h. */
#include "stats_query.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_params.h"
#include "et_macros.h"
#include "event_codec.h"
#include "log.h"
#include "query_plan.h"
#include "stats_answer.h"
#include "stats_request.h"
#include "stats_response.h"
#include "timeutil.h"

#define MAX_SERIES_BUCKETS 10000

/* --- SQL ----------------------------------------------------------------------------- */

/* The rows of one question: up to two ranges of minutes, two of hours, one of days. The
 * text parameters are bound, never spliced. $2 is the workflow ('' = tenant-wide). */
/* clang-format off */
#define ROWS_SELECT(res, table, ranges)                                                        \
    "SELECT " res "::int2, workflow_id, bucket, status,"                                        \
    " runs, sum_us, min_us, max_us, hist, queue_runs, queue_sum_us, queue_min_us,"              \
    " queue_max_us, queue_hist FROM exectime." table                                           \
    " WHERE tenant_id = $1 AND %s AND status = ANY ($3::int2[]) AND (" ranges ")"
/* clang-format on */
/* clang-format off */
#define ROWS_SQL                                                                               \
    ROWS_SELECT("0", "rollup_minute",                                                          \
                "(bucket >= $4 AND bucket < $5) OR (bucket >= $6 AND bucket < $7)")            \
    " UNION ALL "                                                                              \
    ROWS_SELECT("1", "rollup_hour",                                                            \
                "(bucket >= $8 AND bucket < $9) OR (bucket >= $10 AND bucket < $11)")          \
    " UNION ALL "                                                                              \
    ROWS_SELECT("2", "rollup_day", "bucket >= $12 AND bucket < $13")
/* clang-format on */
/* clang-format off */
#define ROWS_PARAMS                                                                            \
    "(text, text, int2[], timestamptz, timestamptz, timestamptz, timestamptz, timestamptz,"    \
    " timestamptz, timestamptz, timestamptz, timestamptz, timestamptz)"
/* clang-format on */
#define ROWS_PARAM_COUNT STATS_ROWS_PARAM_COUNT

static char setup_sql[6144];

/* Builds the session set-up once: a statement timeout, so a stuck query (a lock held
 * elsewhere, a slow plan) cannot hold a session for ever, and prepared statements for one
 * workflow (or the tenant-wide rows) and for every row of the tenant (group_by=workflow).
 * Generic plans: the statements' shape never changes, and a custom plan per request (the
 * default, since every request binds new times) cost more than reading the rows did. */
static void build_setup_sql(const config_t *cfg)
{
    char one[2048], all[2048];
    int n1 = snprintf(one, sizeof one, ROWS_SQL, "workflow_id = $2", "workflow_id = $2",
                      "workflow_id = $2");
    int n2 = snprintf(all, sizeof all, ROWS_SQL, "workflow_id >= $2", "workflow_id >= $2",
                      "workflow_id >= $2");
    assert(n1 > 0 && (size_t)n1 < sizeof one && n2 > 0 && (size_t)n2 < sizeof all);
    (void)n1;
    (void)n2;
    int n = snprintf(
        setup_sql, sizeof setup_sql,
        "SET application_name = 'exectime-agent api';"
        "SET TIME ZONE 'UTC';"
        "SET statement_timeout = %d;"
        "SET plan_cache_mode = force_generic_plan;"
        "DO $$ BEGIN IF NOT pg_has_role('exectime_reader', 'MEMBER') THEN"
        " RAISE EXCEPTION 'role %% is not a member of exectime_reader: GRANT exectime_reader"
        " TO %%', current_user, current_user; END IF; END $$;"
        "DEALLOCATE ALL;"
        "PREPARE " STATS_ALLOWED_STATEMENT "(text) AS SELECT exectime.all_tenants_allowed()"
        " OR $1 = ANY (exectime.allowed_tenants());"
        "PREPARE " STATS_ROWS_ONE_STATEMENT ROWS_PARAMS " AS %s;"
        "PREPARE " STATS_ROWS_ALL_STATEMENT ROWS_PARAMS " AS %s;",
        cfg->api_statement_timeout_ms, one, all);
    assert(n > 0 && (size_t)n < sizeof setup_sql);
    (void)n;
}

/* --- what the statistics endpoints share ------------------------------------------------ */

/* Times for the rows statement: unused ranges are empty (from == to). */
static void format_time(int64_t t_us, char *out, size_t cap)
{
    if (et_time_format(t_us, out, cap) <= 0)
        snprintf(out, cap, "%s", "2000-01-01T00:00:00Z"); /* planned times always format */
}

void stats_rows_query_fill(stats_rows_query_t *q, const char *tenant, const char *workflow,
                           uint8_t status_mask, const plan_t *plan, bool skip_days)
{
    int64_t ranges[ET_RES_COUNT][2][2] = {{{0, 0}, {0, 0}}, {{0, 0}, {0, 0}}, {{0, 0}, {0, 0}}};
    int used[ET_RES_COUNT] = {0, 0, 0};
    for (int i = 0; i < plan->count; i++) {
        const plan_piece_t *p = &plan->pieces[i];
        if (p->res == ET_RES_DAY && skip_days)
            continue;
        if (used[p->res] < 2) {
            ranges[p->res][used[p->res]][0] = p->from_us;
            ranges[p->res][used[p->res]][1] = p->to_us;
            used[p->res]++;
        }
    }
    /* $4..$11: two minute ranges, two hour ranges; $12, $13: the day range. */
    int k = 0;
    for (int res = 0; res < ET_RES_COUNT; res++)
        for (int n = 0; n < (res == ET_RES_DAY ? 1 : 2); n++, k++) {
            bool set = n < used[res];
            format_time(set ? ranges[res][n][0] : ET_TIME_MIN_VALID_US, q->times[2 * k],
                        sizeof q->times[2 * k]);
            format_time(set ? ranges[res][n][1] : ET_TIME_MIN_VALID_US, q->times[2 * k + 1],
                        sizeof q->times[2 * k + 1]);
        }
    snprintf(q->statuses, sizeof q->statuses, "{");
    for (int s = 0; s < ET_STATUS_COUNT; s++)
        if (status_mask & (1u << s)) {
            size_t n = strlen(q->statuses);
            snprintf(q->statuses + n, sizeof q->statuses - n, "%s%d", n > 1 ? "," : "", s);
        }
    strcat(q->statuses, "}");
    q->statement = workflow ? STATS_ROWS_ONE_STATEMENT : STATS_ROWS_ALL_STATEMENT;
    q->values[0] = tenant;
    q->values[1] = workflow ? workflow : ""; /* et_rows_all: workflow_id >= '' */
    q->values[2] = q->statuses;
    for (int i = 0; i < 10; i++)
        q->values[3 + i] = q->times[i];
}

/* The writer's own bound (et_retention_start: today and the days - 1 before it): it writes
 * no minute or hour rows older than that, so a late run of the oldest day maintenance
 * still keeps is only in its day row. Reading from the same bound keeps such a run. */
plan_retention_t stats_api_retention(const stats_api_t *api, int64_t now_us)
{
    plan_retention_t ret = {et_retention_start(now_us, api->cfg->minute_retention_days),
                            et_retention_start(now_us, api->cfg->hour_retention_days)};
    return ret;
}

/* --- per-request state ---------------------------------------------------------------- */

typedef struct stats_request {
    stats_db_request_t core; /* the life cycle stats_request runs; first */
    api_params_t params;
    plan_t plan;
    stats_rows_query_t rows; /* the rows statement's parameters */
    uint64_t started_ns;     /* uv_hrtime() at arrival, for debug timings */
    /* the whole days of a summary question, from or for day_cache */
    day_cache_key_t cache_key;
    bool cache_store;          /* a miss: store the day rows' merge with the answer */
    uint64_t cache_generation; /* day_cache_generation as the request began */
    stats_answer_t answer;
} stats_request_t;

/* stats_db_request_handle allocates the request and hands the core to the callbacks. */
static_assert(offsetof(stats_request_t, core) == 0, "the core must come first");

static stats_request_t *request_of(stats_db_request_t *core)
{
    return container_of(core, stats_request_t, core);
}

static void request_free(stats_db_request_t *core)
{
    stats_request_t *r = request_of(core);
    stats_answer_free(&r->answer);
    free(r);
}

/* --- the answer ------------------------------------------------------------------------- */

static char *render(stats_db_request_t *core, size_t limit, size_t *len, bool *too_large)
{
    stats_request_t *r = request_of(core);
    return stats_answer_render(&r->answer, core->tenant, &r->plan, limit, len, too_large);
}

/* A miss of day_cache that the round trip answered: its day rows' merge is kept. */
static void store_days(stats_db_request_t *core)
{
    stats_request_t *r = request_of(core);
    if (!r->cache_store || !core->allowed || core->db_error)
        return;
    const stats_agg_t *d = &r->answer.days;
    if (day_cache_put(&core->api->cache, &r->cache_key, d->runs, d->failed, d->sum_us, d->min_us,
                      d->max_us, &d->hist, r->cache_generation) < 0)
        log_write(LOG_WARN, "statistics cache: out of memory, answer not kept", NULL);
}

/* --- the database round trip -------------------------------------------------------------- */

static void on_rows(stats_db_request_t *core, int index, PGresult *res)
{
    stats_request_t *r = request_of(core);
    (void)index; /* one rows statement */
    if (log_enabled(LOG_DEBUG)) {
        log_fields(
            LOG_DEBUG, "statistics rows", log_int("rows", PQntuples(res)),
            log_int("plan_pieces", r->plan.count),
            log_double("ms_since_request", (double)((uv_hrtime() - r->started_ns) / 1000) / 1000.0),
            log_str("request_id", core->request_id));
    }
    stats_db_request_add_rows(core, &r->answer, res);
}

/*
 * The whole days of a summary question: from day_cache when it holds them (they are added
 * to the total now, and the day rows are not read), else read and stored with the answer.
 * Returns true when the day rows need not be read. Series and group_by read everything.
 */
static bool days_from_cache(stats_request_t *r, const plan_piece_t *day)
{
    day_cache_t *cache = &r->core.api->cache;
    /* The cache keeps the run-time merge only: a queue-wait question reads its rows. */
    if (day == NULL || r->answer.has_series || r->params.group_by_workflow ||
        (r->params.measures & API_MEASURE_QUEUE_WAIT) || !day_cache_enabled(cache))
        return false;
    day_cache_key_t *k = &r->cache_key;
    snprintf(k->tenant, sizeof k->tenant, "%s", r->core.tenant);
    snprintf(k->workflow, sizeof k->workflow, "%s",
             r->params.has_workflow ? r->params.workflow_id : "");
    k->status_mask = r->params.status_mask;
    k->from_us = day->from_us;
    k->to_us = day->to_us;
    const day_cache_value_t *v = day_cache_find(cache, k);
    if (v == NULL) {
        r->cache_store = true;
        r->cache_generation = day_cache_generation(cache);
        r->answer.keep_days = true;
        return false;
    }
    /* Cannot fail (we encoded it) but for a bad value: the rows are read then. */
    return stats_answer_add_days(&r->answer, v) == 0;
}

/* Decided as the session arrives, so a cache entry is looked up as late as possible. */
static int fill_rows_steps(stats_db_request_t *core, pg_step_t *rows)
{
    stats_request_t *r = request_of(core);
    const plan_piece_t *day = NULL;
    for (int i = 0; i < r->plan.count; i++)
        if (r->plan.pieces[i].res == ET_RES_DAY)
            day = &r->plan.pieces[i];
    bool skip_days = days_from_cache(r, day);
    bool all_rows = r->params.group_by_workflow && !r->params.has_workflow;
    stats_rows_query_fill(&r->rows, core->tenant, all_rows ? NULL : r->params.workflow_id,
                          r->params.status_mask, &r->plan, skip_days);
    rows[0] = (pg_step_t){NULL, r->rows.statement, ROWS_PARAM_COUNT, r->rows.values, 1};
    return 1;
}

/* --- the handler -------------------------------------------------------------------------- */

const char *stats_api_tenant(const auth_claims_t *claims, const api_params_t *params, char *tenant,
                             size_t cap)
{
    if (params->has_tenant) {
        snprintf(tenant, cap, "%s", params->tenant_id);
        return NULL;
    }
    if (claims->tenant_count == 1 && !claims->all_tenants) {
        snprintf(tenant, cap, "%s", claims->tenant);
        return NULL;
    }
    return claims->tenant_count == 0 && !claims->all_tenants
               ? "required: the token names no tenant"
               : "required: the token allows several tenants";
}

/* Chooses the series interval and the rollup rows to read; answers 400 and returns false
 * when the question cannot be answered as asked. */
static bool plan_request(stats_request_t *r, int64_t now)
{
    stats_db_request_t *core = &r->core;
    const config_t *cfg = core->api->cfg;
    plan_retention_t ret = stats_api_retention(core->api, now);
    /* The series interval caps the resolution, so each row falls in one bucket. */
    et_resolution_t max_res = ET_RES_DAY, interval = ET_RES_DAY;
    bool series = r->params.interval != API_INTERVAL_NONE;
    switch (r->params.interval) {
    case API_INTERVAL_NONE: break;
    case API_INTERVAL_MINUTE: interval = ET_RES_MINUTE; break;
    case API_INTERVAL_HOUR: interval = ET_RES_HOUR; break;
    case API_INTERVAL_DAY: interval = ET_RES_DAY; break;
    case API_INTERVAL_AUTO:
        /* auto never picks buckets that retention no longer holds. */
        interval = plan_auto_interval(r->params.start_us, r->params.end_us);
        if (interval == ET_RES_MINUTE && r->params.start_us < ret.minute_oldest_us)
            interval = ET_RES_HOUR;
        if (interval == ET_RES_HOUR && r->params.start_us < ret.hour_oldest_us)
            interval = ET_RES_DAY;
        break;
    }
    if (series)
        max_res = interval;
    /* A series finer than what retention still holds would show empty buckets. */
    if (series && ((interval == ET_RES_MINUTE && r->params.start_us < ret.minute_oldest_us) ||
                   (interval == ET_RES_HOUR && r->params.start_us < ret.hour_oldest_us))) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%s buckets are kept for %d days; use a coarser interval for "
                 "an older start_date",
                 et_resolution_name(interval),
                 interval == ET_RES_MINUTE ? cfg->minute_retention_days : cfg->hour_retention_days);
        stats_db_request_respond_error(core, 400, "invalid_parameter", "interval", msg);
        return false;
    }
    if (plan_range(r->params.start_us, r->params.end_us, max_res, &ret, &r->plan) < 0) {
        stats_db_request_respond_error(core, 400, "invalid_parameter", "start_date",
                                       "the range cannot be planned");
        return false;
    }
    if (!series)
        return true;
    int64_t count = plan_series_buckets(r->plan.start_us, r->plan.end_us, interval);
    if (count > MAX_SERIES_BUCKETS) {
        char msg[128];
        snprintf(msg, sizeof msg, "gives %" PRId64 " buckets, more than %d: use a coarser interval",
                 count, MAX_SERIES_BUCKETS);
        stats_db_request_respond_error(core, 400, "invalid_parameter", "interval", msg);
        return false;
    }
    if (stats_answer_set_series(&r->answer, interval, et_time_floor(r->plan.start_us, interval),
                                count) < 0) {
        stats_db_request_respond_error(core, 503, "unavailable", NULL, "out of memory");
        return false;
    }
    return true;
}

bool stats_api_admit(stats_api_t *api, const http_request_t *req, http_response_t *res,
                     const char *origin, int64_t now_us, auth_claims_t *claims)
{
    stats_reply_to_t to = {api->cfg->cors_origins, origin};
    if (strcmp(req->method, "OPTIONS") == 0) {
        stats_respond_preflight(res, &to);
        return false;
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        int rc = http_response_header(res, "Allow", "GET, HEAD, OPTIONS");
        (void)rc;
        stats_respond_error(res, &to, 405, "method_not_allowed", NULL, "use GET");
        return false;
    }
    if (!api->auth_configured) {
        stats_respond_error(res, &to, 401, "unauthorized", NULL, api->auth_error);
        return false;
    }
    char why[256];
    int rc = auth_verify(&api->auth, http_request_header(req, "Authorization"),
                         now_us / ET_US_PER_SEC, claims, why, sizeof why);
    if (rc < 0) {
        if (rc == -ENOMEM)
            stats_respond_error(res, &to, 503, "unavailable", NULL, "out of memory");
        else
            stats_respond_error(res, &to, 401, "unauthorized", NULL, why);
        return false;
    }
    return true;
}

/* After method and token: parameters, tenant and plan, answering any refusal itself.
 * Returns true when the request should go to the database. */
static bool admit_request(stats_db_request_t *core, const http_request_t *req, int64_t now)
{
    stats_request_t *r = request_of(core);
    api_error_t perr;
    if (api_params_parse(req->query, strlen(req->query), now, &r->params, &perr) < 0) {
        stats_db_request_respond_error(core, perr.status, perr.code, perr.parameter, perr.message);
        return false;
    }
    return stats_db_request_resolve_tenant(core, &r->params) && plan_request(r, now);
}

static int request_init(stats_db_request_t *core)
{
    stats_request_t *r = request_of(core);
    r->started_ns = uv_hrtime();
    return stats_answer_init(&r->answer, &r->params);
}

static const stats_db_request_ops_t request_ops = {
    .size = sizeof(stats_request_t),
    .init = request_init,
    .admit = admit_request,
    .fill_rows_steps = fill_rows_steps,
    .on_rows = on_rows,
    .render = render,
    .on_finish = store_days,
    .free = request_free,
    .too_large_advice = "narrow the range, use a coarser interval or a smaller limit, or leave "
                        "out the histogram",
    .log_query_failed = "statistics query failed",
    .log_row_unreadable = "statistics row could not be read",
};

void stats_api_handle(stats_api_t *api, const http_request_t *req, http_response_t *res)
{
    stats_db_request_handle(api, req, res, &request_ops);
}

/* --- the cache's listener ------------------------------------------------------------------ */

static void on_listening(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    stats_api_t *api = arg;
    if (event == PG_QUERY_RESULT) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            log_write(LOG_WARN, "statistics cache: LISTEN failed; the cache stays off", "error",
                      PQresultErrorMessage(res), NULL);
        else
            day_cache_set_listening(&api->cache, true);
    }
}

static void on_listener_up(pg_conn_t *conn, void *arg)
{
    if (pg_conn_query(conn,
                      "SET application_name = 'exectime-agent api-listener';"
                      "LISTEN " DAY_CACHE_CHANNEL,
                      on_listening, arg) < 0)
        pg_conn_reset(conn, "cannot send LISTEN");
}

/* Notifications sent while the session was down are lost: nothing cached may be trusted. */
static void on_listener_down(pg_conn_t *conn, const char *reason, void *arg)
{
    stats_api_t *api = arg;
    day_cache_set_listening(&api->cache, false);
}

static void on_listener_notify(pg_conn_t *conn, const char *channel, const char *payload, void *arg)
{
    stats_api_t *api = arg;
    day_cache_notified(&api->cache, payload);
}

/* --- life cycle ---------------------------------------------------------------------------- */

int stats_api_init(stats_api_t *api, uv_loop_t *loop, const config_t *cfg, char *err,
                   size_t err_cap)
{
    memset(api, 0, sizeof *api);
    api->loop = loop;
    api->cfg = cfg;
    build_setup_sql(cfg);
    if (cfg->jwt_secret[0] || cfg->jwt_public_key_file[0]) {
        int rc = auth_init(&api->auth, cfg->jwt_secret, cfg->jwt_public_key_file, err, err_cap);
        if (rc < 0)
            return rc;
        api->auth_configured = true;
    } else {
        snprintf(api->auth_error, sizeof api->auth_error,
                 "the agent has no EXECTIME_JWT_SECRET or EXECTIME_JWT_PUBLIC_KEY_FILE: "
                 "every token is refused");
        /* Said once at start-up too: an operator reads the log before a 401 body. */
        log_write(LOG_WARN,
                  "no EXECTIME_JWT_SECRET(_FILE) or EXECTIME_JWT_PUBLIC_KEY_FILE: the statistics "
                  "API refuses every token (401)",
                  NULL);
    }
    int rc = day_cache_init(&api->cache, (size_t)cfg->api_cache_entries);
    if (rc == 0)
        rc = pg_conn_init(&api->listener, loop, "api-listener", cfg->database_url, on_listener_up,
                          on_listener_down, api);
    if (rc < 0) {
        snprintf(err, err_cap, "cannot set up the statistics cache: %s", strerror(-rc));
        return rc;
    }
    pg_conn_set_notify(&api->listener, on_listener_notify);
    return pg_pool_init(&api->pool, loop, cfg->database_url, STATS_DB_SESSIONS, STATS_QUEUE_MAX,
                        setup_sql);
}

void stats_api_start(stats_api_t *api)
{
    pg_pool_start(&api->pool);
    if (day_cache_enabled(&api->cache))
        pg_conn_start(&api->listener);
}

bool stats_api_ready(const stats_api_t *api)
{
    return pg_pool_ready_count(&api->pool) > 0;
}

static void one_closed(stats_api_t *api)
{
    if (--api->closing > 0)
        return;
    if (api->auth_configured)
        auth_free(&api->auth);
    day_cache_free(&api->cache);
    if (api->on_closed)
        api->on_closed(api);
}

static void on_pool_closed(pg_pool_t *pool)
{
    one_closed(container_of(pool, stats_api_t, pool));
}

static void on_listener_closed(pg_conn_t *conn)
{
    one_closed(container_of(conn, stats_api_t, listener));
}

void stats_api_close(stats_api_t *api, void (*on_closed)(stats_api_t *api))
{
    api->on_closed = on_closed;
    api->closing = 2;
    pg_conn_close(&api->listener, on_listener_closed);
    pg_pool_close(&api->pool, on_pool_closed);
}
