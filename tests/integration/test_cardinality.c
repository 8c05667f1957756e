/*
 * Integration test of the workflow limit (EXECTIME_MAX_WORKFLOWS_PER_TENANT): one tenant
 * floods the agent with a new workflow id per event while another publishes normally.
 * The flooded tenant keeps at most limit workflows plus "(overflow)" in its per-workflow
 * rollups, its tenant-wide count stays exact, the metric counts the overflowed runs and
 * `verify` agrees; the other tenant's answers are exactly those of the same events
 * ingested without the flood (a twin tenant, published alone first, gives them).
 *
 * The ingest rate of the normal tenant with and without the flood is printed as a figure
 * (CARDINALITY lines), never asserted.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tokens.h"
#include "oracle.h"
#include "timeutil.h"

#define SECRET "cardinality-test-secret-of-32-bytes!!"
#define API_PATH "/api/v1/statistics/execution-times"
#define LIMIT 1000
#define FLOOD 50000 /* events of the flooded tenant, each with a workflow id of its own */
#define CALM 3000   /* events of the normal tenant (and of its twin) */

static const char *const agent_env[] = {"EXECTIME_JWT_SECRET=" SECRET,
                                        "EXECTIME_MAX_WORKFLOWS_PER_TENANT=1000", NULL};

/* "Authorization: Bearer <token>" for service_role (every tenant), malloc'd. */
static char *service_auth(void)
{
    return it_bearer_hs256(SECRET, "\"role\": \"service_role\"");
}

/* The 200 answer to the query, parsed. */
__attribute__((format(printf, 3, 4))) static json_t *api(const it_agent_t *a, const char *auth,
                                                         const char *fmt, ...)
{
    char query[512], path[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(query, sizeof query, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s?%s", API_PATH, query);
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = it_http_request(a->port, "GET", path, headers, &res);
    cr_assert_eq(status, 200, "GET %s answered %d: %s", path, status, res.body);
    json_error_t err;
    json_t *j = json_loads(res.body, 0, &err);
    cr_assert(j != NULL, "not JSON (%s): %s", err.text, res.body);
    it_http_response_free(&res);
    return j;
}

/* Events of tenant, finished over the last two days, run ids "<prefix><i>". */
static void gen(et_event_t *ev, size_t n, uint64_t seed, int workflows, const char *tenant,
                const char *prefix)
{
    it_gen_t g = {.seed = seed,
                  .tenants = 1,
                  .workflows = workflows,
                  .spread_us = 2 * ET_US_PER_DAY,
                  .run_prefix = prefix};
    it_gen_events(ev, n, &g);
    for (size_t i = 0; i < n; i++)
        snprintf(ev[i].tenant_id, sizeof ev[i].tenant_id, "%s", tenant);
}

static long long tenant_rows(const char *tenant)
{
    return it_sql_int("SELECT count(*) FROM exectime.execution_time_statistics"
                      " WHERE tenant_id = '%s'",
                      tenant);
}

/* Starts an agent on what is already in the stream; returns events/s of tenant's n. */
static double ingest_rate(const char *consumer, const char *tenant, long long n, it_agent_t **out)
{
    it_agent_t *a = it_agent_start(consumer, agent_env);
    it_agent_wait_ready(a);
    int64_t t0 = it_now_ms();
    IT_WAIT_UNTIL(tenant_rows(tenant) == n, IT_WAIT_MS, "tenant %s: %lld of %lld rows", tenant,
                  tenant_rows(tenant), n);
    int64_t ms = it_now_ms() - t0;
    *out = a;
    return (double)n * 1000.0 / (double)(ms > 0 ? ms : 1);
}

/* Distinct per-workflow rollup keys of a tenant in one rollup table. */
static long long workflow_keys(const char *table, const char *tenant)
{
    return it_sql_int("SELECT count(DISTINCT workflow_id) FROM exectime.%s"
                      " WHERE tenant_id = '%s' AND workflow_id <> ''",
                      table, tenant);
}

Test(cardinality, flooded_tenant_capped_other_tenant_unaffected_verify_agrees, IT_TEST_OPTS)
{
    static et_event_t alone[CALM], calm[CALM], flood[FLOOD], mixed[CALM + FLOOD];
    /* The twins: the same workflows, durations, times and statuses, two tenant ids. */
    gen(alone, CALM, 11, 7, "calm-alone", "c-");
    gen(calm, CALM, 11, 7, "calm", "c-");
    gen(flood, FLOOD, 12, 1, "flood", "f-");
    for (size_t i = 0; i < FLOOD; i++)
        snprintf(flood[i].workflow_id, sizeof flood[i].workflow_id, "user-%zu", i);
    /* The normal tenant's events spread evenly through the flood. */
    size_t m = 0;
    for (size_t i = 0, c = 0; i < FLOOD; i++) {
        mixed[m++] = flood[i];
        if (c < CALM && (i + 1) * CALM / FLOOD > c)
            mixed[m++] = calm[c++];
    }
    cr_assert_eq(m, (size_t)CALM + FLOOD);

    /* Without the flood: the twin alone, already in the stream when the agent starts. */
    it_publish(alone, CALM, 20, 1);
    it_agent_t *a;
    double rate_alone = ingest_rate("alone", "calm-alone", CALM, &a);
    it_wait_drained();
    it_agent_stop(a);

    /* With the flood: a fresh agent (cold cache) on the mixed stream. */
    it_publish(mixed, m, 20, 2);
    double rate_flood = ingest_rate("flood", "calm", CALM, &a);
    it_wait_drained();
    fprintf(stderr,
            "CARDINALITY normal tenant: %.0f events/s alone, %.0f events/s beside a tenant "
            "publishing %d new workflow ids (limit %d; figures, not asserted)\n",
            rate_alone, rate_flood, FLOOD, LIMIT);

    /* Every event stored raw; the flooded tenant counted exactly tenant-wide. */
    cr_assert_eq(tenant_rows("flood"), FLOOD);
    cr_assert_eq(tenant_rows("calm"), CALM);
    for (int r = 0; r < 3; r++) {
        static const char *const tables[] = {"rollup_minute", "rollup_hour", "rollup_day"};
        cr_assert_eq(it_sql_int("SELECT coalesce(sum(runs), 0) FROM exectime.%s"
                                " WHERE tenant_id = 'flood' AND workflow_id = ''",
                                tables[r]),
                     FLOOD, "%s: tenant-wide runs", tables[r]);
        cr_assert_eq(it_sql_int("SELECT coalesce(sum(runs), 0) FROM exectime.%s"
                                " WHERE tenant_id = 'flood' AND workflow_id <> ''",
                                tables[r]),
                     FLOOD, "%s: per-workflow runs add up", tables[r]);
        long long keys = workflow_keys(tables[r], "flood");
        cr_assert(keys <= LIMIT + 1, "%s: %lld workflow keys, limit %d", tables[r], keys, LIMIT);
        cr_assert_eq(it_sql_int("SELECT coalesce(sum(runs), 0) FROM exectime.%s"
                                " WHERE tenant_id = 'flood' AND workflow_id = '(overflow)'",
                                tables[r]),
                     FLOOD - LIMIT, "%s: the overflow id holds the runs past the limit", tables[r]);
        cr_assert_eq(workflow_keys(tables[r], "calm"), 7);
    }
    cr_assert_eq(it_sql_int("SELECT count(*) FROM exectime.workflows WHERE tenant_id = 'flood'"),
                 LIMIT);
    cr_assert_eq(it_metric(a, "exectime_workflows_overflowed_total"), FLOOD - LIMIT);

    /* The log names the tenant, at most once a minute. */
    char *log = it_agent_log(a);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "EXECTIME_MAX_WORKFLOWS_PER_TENANT")); p++)
        lines += strstr(p, "flood") != NULL;
    free(log);
    cr_assert(lines >= 1, "no log line about the flooded tenant");
    cr_assert(lines <= 3, "%d log lines about the flooded tenant", lines);

    /* The API: the flooded tenant's count is exact and its overflow shows as such. */
    char *auth = service_auth();
    char from[16], to[16];
    time_t now = time(NULL);
    time_t t = now - 3 * 86400;
    strftime(from, sizeof from, "%Y-%m-%d", gmtime(&t));
    t = now + 86400;
    strftime(to, sizeof to, "%Y-%m-%d", gmtime(&t));
    json_t *f = api(a, auth,
                    "tenant_id=flood&start_date=%s&end_date=%s&group_by=workflow"
                    "&sort=count&limit=5",
                    from, to);
    cr_assert_eq(json_integer_value(json_object_get(f, "count")), FLOOD);
    json_t *first = json_array_get(json_object_get(f, "workflows"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "workflow_id")), "(overflow)");
    cr_assert_eq(json_integer_value(json_object_get(first, "count")), FLOOD - LIMIT);
    json_decref(f);

    /* The normal tenant's answers equal its twin's, ingested without the flood. */
    const char *questions[] = {
        "percentiles=50,90,95,99,99.9&include=histogram&group_by=workflow&limit=1000",
        "interval=hour&percentiles=50,99", "workflow_id=wf-1&percentiles=50,90,99"};
    for (size_t q = 0; q < sizeof questions / sizeof questions[0]; q++) {
        json_t *x =
            api(a, auth, "tenant_id=calm&start_date=%s&end_date=%s&%s", from, to, questions[q]);
        json_t *y = api(a, auth, "tenant_id=calm-alone&start_date=%s&end_date=%s&%s", from, to,
                        questions[q]);
        cr_assert_eq(json_integer_value(json_object_get(x, "count")),
                     q == 0 ? CALM : json_integer_value(json_object_get(y, "count")));
        json_object_del(x, "tenant_id");
        json_object_del(y, "tenant_id");
        char *xs = json_dumps(x, JSON_SORT_KEYS), *ys = json_dumps(y, JSON_SORT_KEYS);
        cr_assert(json_equal(x, y), "question %s:\nwith the flood %.600s\nalone %.600s",
                  questions[q], xs, ys);
        free(xs);
        free(ys);
        json_decref(x);
        json_decref(y);
    }
    free(auth);

    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}
