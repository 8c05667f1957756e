/*
 * Integration tests of GET /api/v1/statistics/regressions against real servers. Runs go
 * through the real pipeline (Redis stream → agent → PostgreSQL rollups) in two periods of
 * three hours: one workflow's p95 rises 50% over many runs, one 30% over many runs of
 * longer durations (the larger impact), one 50% over too few runs, one 1% (within the
 * sketch's error), one falls, one fails more often; another tenant has a regression of
 * its own. The list, its order, both values against percentile_disc on the raw rows
 * (within 1%), the counts exactly, the failure rates exactly; another tenant's token gets
 * 403, bad parameters 400 naming the parameter, a repeated question 304.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"
#include "tokens.h"

#define SECRET "exectime-integration-test-secret-0123456789"
#define REGRESSIONS_PATH "/api/v1/statistics/regressions"
#define PERIOD_US (3 * ET_US_PER_HOUR)

/* One workflow's runs in both periods: durations base * (0.5 + u), u spread over [0, 1),
 * times factor in the current period; failed runs every fail_every-th (0: none). */
typedef struct shape {
    const char *tenant;
    const char *workflow;
    int runs;        /* per period */
    int64_t base_us; /* the previous period's scale */
    double factor;   /* current / previous durations */
    int fail_every_previous, fail_every_current;
} shape_t;

static const shape_t shapes[] = {
    {"t1", "slow-50", 400, 100000, 1.5, 0, 0}, {"t1", "slow-30", 200, 1000000, 1.3, 0, 0},
    {"t1", "few-50", 30, 100000, 1.5, 0, 0},   {"t1", "tiny-1", 400, 100000, 1.01, 0, 0},
    {"t1", "faster", 400, 100000, 0.7, 0, 0},  {"t1", "flaky", 400, 50000, 1.0, 50, 5},
    {"t2", "slow-50", 300, 200000, 2.0, 0, 0},
};
#define SHAPE_COUNT (sizeof shapes / sizeof shapes[0])

/* Publishes every shape's runs into [end - 2 periods, end) and waits until all are in. */
static void publish_shapes(int64_t end)
{
    size_t total = 0;
    for (size_t s = 0; s < SHAPE_COUNT; s++)
        total += 2 * (size_t)shapes[s].runs;
    et_event_t *ev = calloc(total, sizeof *ev);
    cr_assert_not_null(ev);
    size_t n = 0;
    for (size_t s = 0; s < SHAPE_COUNT; s++) {
        const shape_t *sh = &shapes[s];
        for (int period = 0; period < 2; period++) {
            int64_t from = end - (2 - period) * PERIOD_US;
            for (int i = 0; i < sh->runs; i++, n++) {
                et_event_t *e = &ev[n];
                snprintf(e->tenant_id, sizeof e->tenant_id, "%s", sh->tenant);
                snprintf(e->workflow_id, sizeof e->workflow_id, "%s", sh->workflow);
                snprintf(e->run_id, sizeof e->run_id, "reg-%s-%s-%d-%d", sh->tenant, sh->workflow,
                         period, i);
                /* u in a fixed shuffled order, so durations are not sorted by time. */
                double u = (double)((i * 7919) % sh->runs) / sh->runs;
                double d = (double)sh->base_us * (0.5 + u) * (period ? sh->factor : 1.0);
                e->duration_us = (int64_t)llround(d);
                e->finished_us = from + (int64_t)((i + 0.5) * (double)PERIOD_US / sh->runs);
                int every = period ? sh->fail_every_current : sh->fail_every_previous;
                e->status = every && i % every == 0 ? ET_STATUS_FAILED : ET_STATUS_SUCCESS;
            }
        }
    }
    long long before = it_raw_count();
    it_publish(ev, n, 20, 5);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), before + (long long)n, "not every event became a raw row");
    free(ev);
}

/* --- HTTP and JSON ------------------------------------------------------------------------ */

static int get(const it_agent_t *a, const char *query, const char *const *headers,
               it_http_response_t *res)
{
    char path[1024];
    snprintf(path, sizeof path, "%s?%s", REGRESSIONS_PATH, query);
    return it_http_request(a->port, "GET", path, headers, res);
}

static json_t *ok(const it_agent_t *a, const char *auth, const char *query)
{
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = get(a, query, headers, &res);
    cr_assert_eq(status, 200, "?%s answered %d: %s", query, status, res.body);
    json_error_t err;
    json_t *j = json_loads(res.body, 0, &err);
    cr_assert(j && json_is_object(j), "?%s: not a JSON object: %s", query, res.body);
    it_http_response_free(&res);
    return j;
}

static void refused(const it_agent_t *a, const char *auth, const char *query, int status,
                    const char *code, const char *parameter)
{
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    cr_assert_eq(get(a, query, headers, &res), status, "?%s answered %d, not %d: %s", query,
                 res.status, status, res.body);
    json_t *j = json_loads(res.body, 0, NULL);
    cr_assert(j != NULL, "?%s: not JSON: %s", query, res.body);
    json_t *e = json_object_get(j, "error");
    cr_assert(e && json_is_string(json_object_get(e, "code")), "?%s: %s", query, res.body);
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code, "?%s: %s", query,
                     res.body);
    if (parameter) {
        json_t *p = json_object_get(e, "parameter");
        cr_assert(p && json_is_string(p) && strcmp(json_string_value(p), parameter) == 0,
                  "?%s: should name %s: %s", query, parameter, res.body);
    }
    json_decref(j);
    it_http_response_free(&res);
}

/* The workflow ids of the answer's list, in order, comma-separated. */
static void listed(const json_t *j, char *out, size_t cap)
{
    const json_t *list = json_object_get(j, "regressions");
    cr_assert(json_is_array(list));
    size_t n = 0, i;
    const json_t *g;
    out[0] = '\0';
    json_array_foreach(list, i, g) n +=
        (size_t)snprintf(out + n, cap - n, "%s%s", i ? "," : "",
                         json_string_value(json_object_get(g, "workflow_id")));
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(v && json_is_number(v), "\"%s\" is not a number", key);
    return json_number_value(v);
}

static const json_t *entry(const json_t *j, const char *workflow)
{
    const json_t *list = json_object_get(j, "regressions"), *g;
    size_t i;
    json_array_foreach(list, i, g) if (strcmp(json_string_value(json_object_get(g, "workflow_id")),
                                              workflow) == 0) return g;
    cr_assert_fail("%s is not listed", workflow);
    return NULL;
}

/* --- SQL on the raw rows ---------------------------------------------------------------------- */

/* percentile_disc(q), count and failures of one workflow over [from, to). */
static void sql_period(const char *tenant, const char *workflow, double q, int64_t from, int64_t to,
                       double *pct_us, long long *count, long long *failed)
{
    char f[48], t[48];
    cr_assert(et_time_format(from, f, sizeof f) > 0 && et_time_format(to, t, sizeof t) > 0);
    PGresult *r = it_sql("SELECT percentile_disc(%.6f) WITHIN GROUP (ORDER BY duration_us),"
                         " count(*), count(*) FILTER (WHERE status IN ('failed', 'timeout'))"
                         " FROM exectime.execution_time_statistics WHERE tenant_id = '%s'"
                         " AND workflow_id = '%s' AND finished_at >= '%s' AND finished_at < '%s'",
                         q, tenant, workflow, f, t);
    *pct_us = strtod(PQgetvalue(r, 0, 0), NULL);
    *count = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    *failed = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
}

/* One listed percentile regression against SQL: both values within 1%, counts exact, the
 * change and the impact as the values say. */
static void check_against_sql(const json_t *g, const char *tenant, const char *workflow, double q,
                              int64_t end)
{
    double prev_us, cur_us;
    long long prev_n, cur_n, prev_f, cur_f;
    sql_period(tenant, workflow, q, end - 2 * PERIOD_US, end - PERIOD_US, &prev_us, &prev_n,
               &prev_f);
    sql_period(tenant, workflow, q, end - PERIOD_US, end, &cur_us, &cur_n, &cur_f);
    double prev = num(g, "previous"), cur = num(g, "current");
    cr_assert(fabs(prev - prev_us / 1000) <= 0.01 * prev_us / 1000 + 1e-6,
              "%s: previous %.3f ms, percentile_disc %.3f ms", workflow, prev, prev_us / 1000);
    cr_assert(fabs(cur - cur_us / 1000) <= 0.01 * cur_us / 1000 + 1e-6,
              "%s: current %.3f ms, percentile_disc %.3f ms", workflow, cur, cur_us / 1000);
    cr_assert_eq((long long)num(g, "previous_count"), prev_n, "%s: previous_count", workflow);
    cr_assert_eq((long long)num(g, "current_count"), cur_n, "%s: current_count", workflow);
    double change = num(g, "change_percent");
    cr_assert(fabs(change - (cur / prev - 1) * 100) < 0.01, "%s: change_percent %.3f", workflow,
              change);
    cr_assert(fabs(num(g, "impact") - (cur - prev) * (double)cur_n) < 0.01 * (double)cur_n,
              "%s: impact %.3f", workflow, num(g, "impact"));
    double confidence = num(g, "confidence");
    cr_assert(confidence > 0 && confidence <= 1, "%s: confidence %.4f", workflow, confidence);
}

/* --- the tests ------------------------------------------------------------------------------- */

Test(regressions, regressions_list_what_rose_beyond_error_with_enough_runs, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    int64_t end = et_time_floor(et_now_us(), ET_RES_MINUTE);
    publish_shapes(end);
    char *t1 = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    char *t2 = it_bearer_hs256(SECRET, "\"tenant_id\": \"t2\"");
    char s[48], e[48], range[160], query[400], names[400];
    cr_assert(et_time_format(end - PERIOD_US, s, sizeof s) > 0);
    cr_assert(et_time_format(end, e, sizeof e) > 0);
    snprintf(range, sizeof range, "start_date=%s&end_date=%s", s, e);

    /* Any rise at all (threshold 0): the 1% is within the sketch's error, few-50 has too
     * few runs, faster fell, flaky's durations did not change. Sorted by impact: slow-30's
     * 30% of a second over 200 runs before slow-50's 50% of 0.15 s over 400. */
    snprintf(query, sizeof query, "%s&metric=p95&min_runs=50&threshold=0", range);
    json_t *j = ok(a, t1, query);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "slow-30,slow-50", "?%s listed %s", query, names);
    cr_assert_str_eq(json_string_value(json_object_get(j, "tenant_id")), "t1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "metric")), "p95");
    cr_assert_str_eq(json_string_value(json_object_get(j, "start_date")), s);
    cr_assert_eq((long long)num(j, "regressions_total"), 2);
    cr_assert_eq((long long)num(j, "workflows_compared"), 5); /* few-50 not compared */
    check_against_sql(entry(j, "slow-50"), "t1", "slow-50", 0.95, end);
    check_against_sql(entry(j, "slow-30"), "t1", "slow-30", 0.95, end);
    cr_assert(num(entry(j, "slow-50"), "change_percent") > 45);
    cr_assert(num(entry(j, "slow-50"), "confidence") > 0.99);
    json_decref(j);

    /* The default threshold (20%) and a higher one; p50 as well. */
    snprintf(query, sizeof query, "%s", range);
    j = ok(a, t1, query);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "slow-30,slow-50", "?%s listed %s", query, names);
    json_decref(j);
    snprintf(query, sizeof query, "%s&threshold=40&metric=p50", range);
    j = ok(a, t1, query);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "slow-50", "?%s listed %s", query, names);
    check_against_sql(entry(j, "slow-50"), "t1", "slow-50", 0.5, end);
    json_decref(j);

    /* Fewer runs required: few-50 is in. */
    snprintf(query, sizeof query, "%s&min_runs=20&limit=2", range);
    j = ok(a, t1, query);
    cr_assert_eq((long long)num(j, "regressions_total"), 3);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "slow-30,slow-50", "?%s listed %s (limit 2)", query, names);
    json_decref(j);
    snprintf(query, sizeof query, "%s&min_runs=20", range);
    j = ok(a, t1, query);
    check_against_sql(entry(j, "few-50"), "t1", "few-50", 0.95, end);
    json_decref(j);

    /* The failure rate: flaky's went from 2% to 20%, exactly as counted. */
    snprintf(query, sizeof query, "%s&metric=failure_rate", range);
    j = ok(a, t1, query);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "flaky", "?%s listed %s", query, names);
    const json_t *g = entry(j, "flaky");
    cr_assert_eq((long long)num(g, "previous_failed"), 8);
    cr_assert_eq((long long)num(g, "current_failed"), 80);
    cr_assert(fabs(num(g, "previous") - 0.02) < 1e-9 && fabs(num(g, "current") - 0.2) < 1e-9);
    cr_assert(fabs(num(g, "change_percent") - 900) < 1e-6);
    cr_assert(fabs(num(g, "impact") - 72) < 1e-6); /* 72 more failed runs than at 2% */
    cr_assert(num(g, "confidence") > 0.99);
    cr_assert_str_eq(json_string_value(json_object_get(j, "unit")), "ratio");
    json_decref(j);

    /* Tenants: t2's token reads t2 (its own regression, none of t1's), never t1. */
    j = ok(a, t2, range);
    listed(j, names, sizeof names);
    cr_assert_str_eq(names, "slow-50", "t2 listed %s", names);
    check_against_sql(entry(j, "slow-50"), "t2", "slow-50", 0.95, end);
    json_decref(j);
    snprintf(query, sizeof query, "%s&tenant_id=t1", range);
    refused(a, t2, query, 403, "forbidden", "tenant_id");

    /* Refusals as the statistics endpoint's. */
    refused(a, NULL, range, 401, "unauthorized", NULL);
    refused(a, t1, "metric=p0", 400, "invalid_parameter", "metric");
    refused(a, t1, "metric=avg", 400, "invalid_parameter", "metric");
    refused(a, t1, "threshold=abc", 400, "invalid_parameter", "threshold");
    refused(a, t1, "min_runs=0", 400, "invalid_parameter", "min_runs");
    refused(a, t1, "workflow_id=slow-50", 400, "invalid_parameter", "workflow_id");
    refused(a, t1, "metric=failure_rate&status=failed", 400, "invalid_parameter", "status");
    refused(a, t1, "start_date=2000-01-01T12:00:00Z", 400, "invalid_parameter", "start_date");

    /* The same question again: 304 with its ETag. */
    const char *headers[] = {t1, NULL, NULL};
    it_http_response_t res;
    cr_assert_eq(get(a, range, headers, &res), 200);
    char *etag = it_http_header(&res, "ETag");
    cr_assert_not_null(etag);
    it_http_response_free(&res);
    char inm[300];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    headers[1] = inm;
    cr_assert_eq(get(a, range, headers, &res), 304, "%d: %s", res.status, res.body);
    it_http_response_free(&res);
    free(etag);

    free(t1);
    free(t2);
    it_pass();
}
