/*
 * Integration tests of exectime.execution_time_stats() (migration 0006), the statistics
 * API's summary in SQL for Supabase and PostgREST. Events go through the real pipeline;
 * each question is then asked twice: of the API over HTTP with a token, and of the
 * function as exectime_reader with the same claims set for one transaction (what the API's
 * own transaction and PostgREST do). Every field must be the same: echoes, counts, min and
 * max, and avg, median and percentiles identical once printed as the API prints them (both
 * read the same bins by the same rule, in the same double arithmetic). Also: the refusals
 * (a tenant the claims do not allow is 42501, bad parameters 22023 naming the parameter),
 * and that row-level security, not the function, decides which rows it reads.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"
#include "tokens.h"

#define SECRET "exectime-integration-test-secret-0123456789"
#define API_PATH "/api/v1/statistics/execution-times"

/* The function's parameters, bound as text ($1 claims, then tenant_id .. status). */
/* clang-format off */
#define STATS_CALL                                                                             \
    "SELECT tenant_id, workflow_id, status,"                                                   \
    " to_char(start_date AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"               \
    " to_char(end_date AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                 \
    " count, failed, avg_ms, median_ms, min_ms, max_ms, percentiles, relative_error,"          \
    " coarsened FROM exectime.execution_time_stats(tenant_id => $1, workflow_id => $2,"       \
    " start_date => $3::timestamptz, end_date => $4::timestamptz,"                             \
    " percentiles => $5::float8[], status => $6::text[])"
/* clang-format on */
/* docs/sql.md's wrapper for supabase.rpc(), which calls functions of the public schema. */
/* clang-format off */
#define PUBLIC_WRAPPER                                                                         \
    "CREATE FUNCTION public.execution_time_stats(tenant_id text DEFAULT NULL,"                  \
    " workflow_id text DEFAULT NULL, start_date timestamptz DEFAULT NULL,"                      \
    " end_date timestamptz DEFAULT NULL, percentiles float8[] DEFAULT NULL,"                    \
    " status text[] DEFAULT NULL) RETURNS exectime.execution_time_summary"                      \
    " LANGUAGE sql STABLE AS $$ SELECT * FROM exectime.execution_time_stats(tenant_id,"         \
    " workflow_id, start_date, end_date, percentiles, status) $$"
/* clang-format on */

enum {
    COL_TENANT,
    COL_WORKFLOW,
    COL_STATUS,
    COL_START,
    COL_END,
    COL_COUNT,
    COL_FAILED,
    COL_AVG,
    COL_MEDIAN,
    COL_MIN,
    COL_MAX,
    COL_PCTS,
    COL_RELERR,
    COL_COARSENED,
    COL_COUNT_ALL
};

/* One question, as the API and the function take it. NULL: the parameter is left out. */
typedef struct question {
    const char *claims;     /* the token's claims, without exp */
    const char *tenant;     /* tenant_id */
    const char *workflow;   /* workflow_id */
    int64_t start_us;       /* 0: the default */
    int64_t end_us;         /* 0: the default */
    const char *status_api; /* "failed,timeout" */
    const char *status_sql; /* "{failed,timeout}" */
    const char *pcts_api;   /* "50,95,99.9" */
    const char *pcts_sql;   /* "{50,95,99.9}" */
} question_t;

/* --- the two answers ----------------------------------------------------------------------- */

static void fmt_time(int64_t t, char *out, size_t cap)
{
    cr_assert(et_time_format(t, out, cap) > 0);
}

static json_t *api_answer(const it_agent_t *a, const question_t *q, const char *what)
{
    char claims[512], query[1024], t[48];
    snprintf(claims, sizeof claims, "{\"exp\": %lld, %s}", (long long)time(NULL) + 3600, q->claims);
    char *auth = it_bearer_signed(JWT_ALG_HS256, SECRET, claims);
    size_t n = (size_t)snprintf(query, sizeof query, "%s?", API_PATH);
#define ADD_PARAM(name, value)                                                                     \
    n += (size_t)snprintf(query + n, sizeof query - n, "%s%s=%s", query[n - 1] == '?' ? "" : "&",  \
                          name, value)
    if (q->tenant)
        ADD_PARAM("tenant_id", q->tenant);
    if (q->workflow)
        ADD_PARAM("workflow_id", q->workflow);
    if (q->start_us) {
        fmt_time(q->start_us, t, sizeof t);
        ADD_PARAM("start_date", t);
    }
    if (q->end_us) {
        fmt_time(q->end_us, t, sizeof t);
        ADD_PARAM("end_date", t);
    }
    if (q->status_api)
        ADD_PARAM("status", q->status_api);
    if (q->pcts_api)
        ADD_PARAM("percentiles", q->pcts_api);
#undef ADD_PARAM
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = it_http_request(a->port, "GET", query, headers, &res);
    cr_assert_eq(status, 200, "%s: the API answered %d: %s", what, status, res.body);
    json_error_t err;
    json_t *j = json_loads(res.body, 0, &err);
    cr_assert(j != NULL && json_is_object(j), "%s: not JSON: %s", what, res.body);
    it_http_response_free(&res);
    free(auth);
    return j;
}

/*
 * The function's answer to q as exectime_reader with q's claims for one transaction.
 * Returns the result (the caller clears it), or NULL with the SQLSTATE in state (and the
 * message in message) when it raised.
 */
static PGresult *sql_answer(const question_t *q, char *state, char *message, size_t message_cap)
{
    char start[48] = "", end[48] = "";
    if (q->start_us)
        fmt_time(q->start_us, start, sizeof start);
    if (q->end_us)
        fmt_time(q->end_us, end, sizeof end);
    char claims[512];
    snprintf(claims, sizeof claims, "{%s}", q->claims);
    PQclear(it_sql("BEGIN READ ONLY"));
    PQclear(it_sql("SET LOCAL ROLE exectime_reader"));
    const char *set_values[] = {claims};
    PGresult *r = PQexecParams(it.pg, "SELECT set_config('request.jwt.claims', $1, true)", 1, NULL,
                               set_values, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    const char *values[] = {
        q->tenant,   q->workflow,  q->start_us ? start : NULL, q->end_us ? end : NULL,
        q->pcts_sql, q->status_sql};
    r = PQexecParams(it.pg, STATS_CALL, 6, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(state, 6, "%s", s ? s : "?????");
        snprintf(message, message_cap, "%s", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
        PQclear(r);
        PQclear(it_sql("ROLLBACK"));
        return NULL;
    }
    PQclear(it_sql("COMMIT"));
    cr_assert_eq(PQntuples(r), 1);
    cr_assert_eq(PQnfields(r), COL_COUNT_ALL);
    return r;
}

static PGresult *sql_ok(const question_t *q, const char *what)
{
    char state[6], message[512];
    PGresult *r = sql_answer(q, state, message, sizeof message);
    cr_assert(r != NULL, "%s: the function raised %s: %s", what, state, message);
    return r;
}

/* --- comparing ----------------------------------------------------------------------------- */

/* v as the API prints it (json_out.c: "%.*f", trailing zeros cut), read back. */
static double as_api_prints(double v, int decimals)
{
    char text[64];
    snprintf(text, sizeof text, "%.*f", decimals, v);
    return strtod(text, NULL);
}

/* A number field of the API (NAN for null) against the function's text (NAN for NULL),
 * rounded as the API rounds it: the very same double is expected. */
static void same_number(const json_t *api, const char *sql_text, bool sql_null, int decimals,
                        const char *key, const char *what)
{
    cr_assert(api != NULL, "%s: the API's answer has no %s", what, key);
    if (json_is_null(api)) {
        cr_assert(sql_null, "%s: %s is null in the API, %s in SQL", what, key, sql_text);
        return;
    }
    cr_assert(!sql_null, "%s: %s is %g in the API, NULL in SQL", what, key, json_number_value(api));
    double want = json_number_value(api);
    double got = strtod(sql_text, NULL);
    double printed = decimals < 0 ? got : as_api_prints(got, decimals);
    cr_assert(printed == want, "%s: %s is %.17g in the API, %s in SQL (%.17g as the API prints)",
              what, key, want, sql_text, printed);
}

static const char *col(const PGresult *r, int c)
{
    return PQgetvalue(r, 0, c);
}

static bool col_null(const PGresult *r, int c)
{
    return PQgetisnull(r, 0, c);
}

/* Every field of the function's row against the API's answer; coarsened too when
 * same_question (not when the API was asked the range SQL answered, already widened). */
static void check_same_fields(const json_t *j, const PGresult *r, const char *what,
                              bool same_question)
{
    cr_assert_str_eq(col(r, COL_TENANT), json_string_value(json_object_get(j, "tenant_id")),
                     "%s: tenant_id", what);
    const json_t *wf = json_object_get(j, "workflow_id");
    if (json_is_null(wf))
        cr_assert(col_null(r, COL_WORKFLOW), "%s: workflow_id should be NULL", what);
    else
        cr_assert_str_eq(col(r, COL_WORKFLOW), json_string_value(wf), "%s: workflow_id", what);
    cr_assert_str_eq(col(r, COL_STATUS), json_string_value(json_object_get(j, "status")),
                     "%s: status", what);
    cr_assert_str_eq(col(r, COL_START), json_string_value(json_object_get(j, "start_date")),
                     "%s: start_date", what);
    cr_assert_str_eq(col(r, COL_END), json_string_value(json_object_get(j, "end_date")),
                     "%s: end_date", what);
    cr_assert_eq(strtoll(col(r, COL_COUNT), NULL, 10),
                 json_integer_value(json_object_get(j, "count")), "%s: count %s", what,
                 col(r, COL_COUNT));
    cr_assert_eq(strtoll(col(r, COL_FAILED), NULL, 10),
                 json_integer_value(json_object_get(j, "failed")), "%s: failed %s", what,
                 col(r, COL_FAILED));
    same_number(json_object_get(j, "avg_ms"), col(r, COL_AVG), col_null(r, COL_AVG), 12, "avg_ms",
                what);
    same_number(json_object_get(j, "median_ms"), col(r, COL_MEDIAN), col_null(r, COL_MEDIAN), 6,
                "median_ms", what);
    /* min and max are whole µs: the API prints them exactly, SQL's double reads the same. */
    same_number(json_object_get(j, "min_ms"), col(r, COL_MIN), col_null(r, COL_MIN), -1, "min_ms",
                what);
    same_number(json_object_get(j, "max_ms"), col(r, COL_MAX), col_null(r, COL_MAX), -1, "max_ms",
                what);
    same_number(json_object_get(j, "relative_error"), col(r, COL_RELERR), false, -1,
                "relative_error", what);
    bool coarsened = json_is_true(json_object_get(j, "coarsened"));
    if (same_question)
        cr_assert_eq(coarsened, col(r, COL_COARSENED)[0] == 't', "%s: coarsened", what);

    json_error_t err;
    json_t *sql_pcts = json_loads(col(r, COL_PCTS), JSON_DECODE_ANY, &err);
    cr_assert(sql_pcts && json_is_object(sql_pcts), "%s: percentiles %s", what, col(r, COL_PCTS));
    const json_t *api_pcts = json_object_get(j, "percentiles");
    cr_assert_eq(json_object_size(sql_pcts), json_object_size(api_pcts),
                 "%s: percentiles %s in SQL", what, col(r, COL_PCTS));
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)api_pcts, key, value)
    {
        const json_t *mine = json_object_get(sql_pcts, key);
        cr_assert(mine != NULL, "%s: no %s in SQL's percentiles %s", what, key, col(r, COL_PCTS));
        char text[64];
        snprintf(text, sizeof text, "%.17g", json_is_null(mine) ? 0.0 : json_number_value(mine));
        same_number(value, text, json_is_null(mine), 6, key, what);
    }
    json_decref(sql_pcts);
}

/* --- the data set -------------------------------------------------------------------------- */

/* 6000 runs of 3 tenants × 6 workflows over the last three days, through the real pipeline,
 * by an agent that keeps minute rollups 1 day and hour rollups 2, so questions reaching two
 * or three days back are widened (coarsened) by both. Returns the agent. */
static it_agent_t *load_data(size_t n)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, "EXECTIME_MINUTE_RETENTION_DAYS=1",
                         "EXECTIME_HOUR_RETENTION_DAYS=2", NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    et_event_t *ev = calloc(n, sizeof *ev);
    cr_assert_not_null(ev);
    it_gen_t gen = {.seed = 60606,
                    .tenants = 3,
                    .workflows = 6,
                    .spread_us = 3 * ET_US_PER_DAY,
                    .run_prefix = "sql-"};
    it_gen_events(ev, n, &gen);
    it_publish(ev, n, 20, 6);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), (long long)n);
    free(ev);
    /* maintain() at start-up recorded the retention the function plans with. */
    IT_WAIT_UNTIL(
        it_sql_int("SELECT minute_days * 1000 + hour_days FROM exectime.rollup_retention") == 1002,
        IT_WAIT_MS, "maintain() did not record the agent's retention");
    return a;
}

/* ================================================================================================
 * 1. The function answers what the API answers.
 * ============================================================================================= */

Test(sql_stats, function_answers_what_the_api_answers, IT_TEST_OPTS)
{
    enum { RANDOM_QUESTIONS = 40 };
    it_agent_t *a = load_data(6000);
    int64_t now = et_now_us();
    int64_t minute = et_time_floor(now, ET_RES_MINUTE);
    int64_t today = et_time_floor(now, ET_RES_DAY);
    static const char *const workflows[] = {"wf-1", "wf-2", "wf-3", "wf-4", "wf-5", "9001"};

    question_t fixed[] = {
        /* tenant-wide over three days: days, hours and minutes (widened by retention) */
        {"\"tenant_id\": \"t1\"", "t1", NULL, minute - 3 * ET_US_PER_DAY + 17 * ET_US_PER_MIN,
         minute, NULL, NULL, NULL, NULL},
        /* one workflow, off the minute at both ends, within what minutes still hold */
        {"\"tenant_id\": \"t2\"", "t2", "wf-3", now - 20 * ET_US_PER_HOUR - 12345678,
         now - 3 * ET_US_PER_HOUR + 7654321, NULL, NULL, "50,95,99.9", "{50,95,99.9}"},
        /* a status filter, MeshHook's spelling in both */
        {"\"tenant_ids\": [\"t1\", \"t3\"]", "t3", NULL, today - ET_US_PER_DAY + 5 * ET_US_PER_MIN,
         now, "failed,timeout,canceled", "{failed,timeout,canceled}", "50,95,99.9", "{50,95,99.9}"},
        /* minutes only */
        {"\"tenant_id\": \"t1\"", "t1", NULL, minute - 47 * ET_US_PER_MIN,
         minute - 2 * ET_US_PER_MIN, NULL, NULL, "1,25,50,75,99,99.99,100",
         "{1,25,50,75,99,99.99,100}"},
        /* hours and minutes past the minute retention: widened to hours, then days */
        {"\"tenant_id\": \"t2\"", "t2", "wf-1",
         today - 2 * ET_US_PER_DAY + 10 * ET_US_PER_HOUR + 13 * ET_US_PER_MIN,
         minute - 3 * ET_US_PER_HOUR - 9 * ET_US_PER_MIN, "success", "{success}", NULL, NULL},
        /* before any data: count 0 and every statistic null */
        {"\"tenant_id\": \"t3\"", "t3", NULL, today - 9 * ET_US_PER_DAY, today - 8 * ET_US_PER_DAY,
         NULL, NULL, NULL, NULL},
        /* a workflow that does not exist */
        {"\"tenant_id\": \"t3\"", "t3", "no-such-workflow", today - ET_US_PER_DAY, now, NULL, NULL,
         NULL, NULL},
        /* the tenant from the claims (app_metadata), no tenant_id */
        {"\"app_metadata\": {\"tenant_id\": \"t2\"}", NULL, "9001", today - ET_US_PER_DAY, now,
         NULL, NULL, "99.9,50", "{99.9,50}"},
        /* service_role names any tenant */
        {"\"role\": \"service_role\"", "t1", "wf-2", today - 2 * ET_US_PER_DAY, today, NULL, NULL,
         NULL, NULL},
    };
    char what[256];
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        snprintf(what, sizeof what, "fixed question %zu", i);
        json_t *j = api_answer(a, &fixed[i], what);
        PGresult *r = sql_ok(&fixed[i], what);
        check_same_fields(j, r, what, true);
        if (i == 0 || i == 4)
            cr_assert_eq(col(r, COL_COARSENED)[0], 't', "%s should be widened by retention", what);
        if (i == 5)
            cr_assert_str_eq(col(r, COL_COUNT), "0");
        else if (i < 5)
            cr_assert(strtoll(col(r, COL_COUNT), NULL, 10) > 0, "%s: no runs", what);
        PQclear(r);
        json_decref(j);
    }

    /* The default range: the function's last 24 hours, then the API over what it echoed. */
    question_t dflt = {"\"tenant_id\": \"t1\"", NULL, NULL, 0, 0, NULL, NULL, NULL, NULL};
    PGresult *r = sql_ok(&dflt, "the default range");
    int64_t s_us, e_us;
    bool date_only;
    cr_assert(et_time_parse(col(r, COL_START), strlen(col(r, COL_START)), &s_us, &date_only) == 0);
    cr_assert(et_time_parse(col(r, COL_END), strlen(col(r, COL_END)), &e_us, &date_only) == 0);
    /* 24 hours, or up to an hour more: with one day of minute retention, yesterday's part
     * is read from hour rows (the writer writes no minute rows before today). */
    cr_assert(e_us - s_us >= ET_US_PER_DAY && e_us - s_us <= ET_US_PER_DAY + ET_US_PER_HOUR,
              "the default range spans %" PRId64 " µs", e_us - s_us);
    cr_assert(e_us >= now && e_us <= et_now_us() + ET_US_PER_MIN, "the default does not end now");
    dflt.start_us = s_us;
    dflt.end_us = e_us;
    json_t *j = api_answer(a, &dflt, "the default range");
    check_same_fields(j, r, "the default range", false);
    cr_assert_str_eq(col(r, COL_STATUS), "all");
    json_decref(j);
    PQclear(r);

    /* Random questions like test_api's: tenants, workflows, statuses, ranges. */
    it_rng_t rng = {606};
    static const char *const statuses[] = {"success", "failed", "cancelled", "timeout"};
    int with_runs = 0, coarsened = 0;
    for (int q = 0; q < RANDOM_QUESTIONS; q++) {
        char claims[64], tenant[16], status_api[64] = "", status_sql[72] = "";
        int t = 1 + (int)it_rng_below(&rng, 3);
        snprintf(tenant, sizeof tenant, "t%d", t);
        snprintf(claims, sizeof claims, "\"tenant_id\": \"%s\"", tenant);
        question_t qq = {
            claims, tenant, NULL, 0, 0, NULL, NULL, "50,90,95,99,99.9", "{50,90,95,99,99.9}"};
        if (it_rng_below(&rng, 2))
            qq.workflow = workflows[it_rng_below(&rng, 6)];
        unsigned mask = it_rng_below(&rng, 3) ? 15 : 1u + (unsigned)it_rng_below(&rng, 15);
        if (mask != 15) {
            size_t n = 0;
            for (int s = 0; s < 4; s++)
                if (mask & (1u << s))
                    n += (size_t)snprintf(status_api + n, sizeof status_api - n, "%s%s",
                                          n ? "," : "", statuses[s]);
            snprintf(status_sql, sizeof status_sql, "{%s}", status_api);
            qq.status_api = status_api;
            qq.status_sql = status_sql;
        }
        int64_t lo = minute - 80 * ET_US_PER_HOUR;
        qq.start_us = lo + (int64_t)it_rng_below(&rng, 80 * 60) * ET_US_PER_MIN +
                      (int64_t)it_rng_below(&rng, 2) * (int64_t)it_rng_below(&rng, ET_US_PER_MIN);
        qq.end_us = qq.start_us + 1 + (int64_t)it_rng_below(&rng, 3 * ET_US_PER_DAY);
        if (qq.end_us > now)
            qq.end_us = now;
        if (qq.end_us <= qq.start_us)
            qq.end_us = qq.start_us + ET_US_PER_SEC;
        snprintf(what, sizeof what, "random question %d (%s, %s, %s)", q, tenant,
                 qq.workflow ? qq.workflow : "all workflows", status_api[0] ? status_api : "all");
        json_t *ans = api_answer(a, &qq, what);
        PGresult *row = sql_ok(&qq, what);
        check_same_fields(ans, row, what, true);
        if (strtoll(col(row, COL_COUNT), NULL, 10) > 0)
            with_runs++;
        if (col(row, COL_COARSENED)[0] == 't')
            coarsened++;
        PQclear(row);
        json_decref(ans);
    }
    cr_assert(with_runs >= RANDOM_QUESTIONS / 2, "only %d questions had runs", with_runs);
    cr_assert(coarsened > 0 && coarsened < RANDOM_QUESTIONS,
              "%d of %d random questions were widened by retention: both kinds should be asked",
              coarsened, RANDOM_QUESTIONS);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 2. Refusals, and row-level security deciding what the function reads.
 * ============================================================================================= */

static void expect_raise(const question_t *q, const char *want_state, const char *want_prefix,
                         const char *what)
{
    char state[6], message[512];
    PGresult *r = sql_answer(q, state, message, sizeof message);
    cr_assert(r == NULL, "%s: the function answered, expected %s", what, want_state);
    cr_assert_str_eq(state, want_state, "%s: %s", what, message);
    cr_assert(strncmp(message, want_prefix, strlen(want_prefix)) == 0,
              "%s: the message should start with \"%s\": %s", what, want_prefix, message);
}

Test(sql_stats, function_refuses_like_the_api_and_reads_under_row_level_security, IT_TEST_OPTS)
{
    it_agent_t *a = load_data(1500);
    it_agent_stop(a);
    int64_t now = et_now_us();
    int64_t from = et_time_floor(now, ET_RES_DAY) - 2 * ET_US_PER_DAY;

    /* SECURITY INVOKER and STABLE, as PostgREST and the policies need it. */
    cr_assert_eq(it_sql_int("SELECT count(*) FROM pg_proc WHERE proname = 'execution_time_stats'"
                            " AND NOT prosecdef AND provolatile = 's'"),
                 1);

    question_t own = {"\"tenant_id\": \"t1\"", "t1", NULL, from, now, NULL, NULL, NULL, NULL};
    PGresult *r = sql_ok(&own, "own tenant");
    long long runs = strtoll(col(r, COL_COUNT), NULL, 10);
    cr_assert(runs > 0);
    PQclear(r);

    /* Another tenant's claims: 42501, as the API's 403 (PostgREST answers 403 too). */
    question_t other = own;
    other.claims = "\"tenant_id\": \"t2\"";
    expect_raise(&other, "42501", "tenant_id:", "t2's claims asking for t1");
    other.claims = "\"sub\": \"nobody\"";
    expect_raise(&other, "42501", "tenant_id:", "claims without a tenant asking for t1");
    other.tenant = NULL;
    expect_raise(&other, "22023", "tenant_id: required", "no tenant at all");
    other.claims = "\"tenant_ids\": [\"t1\", \"t2\"]";
    expect_raise(&other, "22023", "tenant_id: required", "several tenants, none named");

    /* Parameters the API refuses, refused with the parameter's name first. */
    struct {
        question_t q;
        const char *prefix;
    } bad[] = {
        {{own.claims, "t1", "", from, now, NULL, NULL, NULL, NULL}, "workflow_id:"},
        {{own.claims, "t1", NULL, now, from, NULL, NULL, NULL, NULL}, "end_date:"},
        {{own.claims, "t1", NULL, now + 2 * ET_US_PER_DAY, 0, NULL, NULL, NULL, NULL},
         "start_date:"},
        {{own.claims, "t1", NULL, ET_TIME_MIN_VALID_US - 1, now, NULL, NULL, NULL, NULL},
         "start_date:"},
        {{own.claims, "t1", NULL, from, now, NULL, "{bogus}", NULL, NULL}, "status:"},
        {{own.claims, "t1", NULL, from, now, NULL, "{failed,failed}", NULL, NULL}, "status:"},
        {{own.claims, "t1", NULL, from, now, NULL, "{}", NULL, NULL}, "status:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{0}"}, "percentiles:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{100.5}"}, "percentiles:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{99.9999999}"}, "percentiles:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{50,50.0}"}, "percentiles:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{}"}, "percentiles:"},
        {{own.claims, "t1", NULL, from, now, NULL, NULL, NULL, "{NaN}"}, "percentiles:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "bad parameter %zu", i);
        expect_raise(&bad[i].q, "22023", bad[i].prefix, what);
    }

    /* Row-level security decides what the function reads: without the reader policies
     * on the rollups (dropped inside a transaction that is rolled back), t1's own claims
     * read nothing. */
    PQclear(it_sql("BEGIN"));
    PQclear(it_sql("DROP POLICY reader_own_tenants ON exectime.rollup_minute;"
                   "DROP POLICY reader_own_tenants ON exectime.rollup_hour;"
                   "DROP POLICY reader_own_tenants ON exectime.rollup_day;"
                   "SET LOCAL ROLE exectime_reader;"
                   "SELECT set_config('request.jwt.claims', '{\"tenant_id\": \"t1\"}', true)"));
    char *count = it_sql_text("SELECT count FROM exectime.execution_time_stats('t1', NULL,"
                              " now() - interval '2 days', now())");
    cr_assert_str_eq(count, "0", "without the policies the function still read %s runs", count);
    free(count);
    PQclear(it_sql("ROLLBACK"));
    r = sql_ok(&own, "own tenant, policies back");
    cr_assert_eq(strtoll(col(r, COL_COUNT), NULL, 10), runs);
    PQclear(r);

    /* Supabase, as docs/sql.md sets it up: its authenticated role is NOINHERIT (a role of
     * this test's own stands in), grant_statistics_reader gives it what the function reads,
     * and the wrapper in public is what supabase.rpc('execution_time_stats', ...) calls. */
    char role[96], start[48], end[48];
    snprintf(role, sizeof role, "%s_authenticated", it.db_name);
    fmt_time(from, start, sizeof start);
    fmt_time(now, end, sizeof end);
    PQclear(it_sql("CREATE ROLE %s NOLOGIN NOINHERIT", role));
    PQclear(it_sql("SELECT exectime.grant_statistics_reader('%s')", role));
    PQclear(it_sql("%s", PUBLIC_WRAPPER));
    PQclear(it_sql("REVOKE ALL ON FUNCTION public.execution_time_stats FROM PUBLIC;"
                   "GRANT EXECUTE ON FUNCTION public.execution_time_stats TO %s",
                   role));
    const char *own_claims =
        "{\"role\": \"authenticated\", \"app_metadata\": {\"tenant_id\": \"t1\"}}";
    PQclear(it_sql("BEGIN; SET LOCAL ROLE %s; SELECT set_config('request.jwt.claims', '%s', true)",
                   role, own_claims));
    cr_assert_eq(it_sql_int("SELECT count FROM public.execution_time_stats(start_date => '%s',"
                            " end_date => '%s')",
                            start, end),
                 runs, "the Supabase role reads another count than exectime_reader");
    PGresult *denied = PQexec(it.pg, "SELECT count(*) FROM exectime.execution_time_statistics");
    const char *state = PQresultErrorField(denied, PG_DIAG_SQLSTATE);
    cr_assert(state && strcmp(state, "42501") == 0, "the Supabase role may read the raw runs");
    PQclear(denied);
    PQclear(it_sql("ROLLBACK"));
    PQclear(it_sql("BEGIN; SET LOCAL ROLE %s; SELECT set_config('request.jwt.claims',"
                   " '{\"role\": \"authenticated\", \"tenant_id\": \"t2\"}', true)",
                   role));
    denied = PQexec(it.pg, "SELECT count FROM public.execution_time_stats('t1')");
    state = PQresultErrorField(denied, PG_DIAG_SQLSTATE);
    cr_assert(state && strcmp(state, "42501") == 0, "t2's user read t1 through the wrapper");
    PQclear(denied);
    PQclear(it_sql("ROLLBACK"));
    PQclear(it_sql("DROP FUNCTION public.execution_time_stats; DROP OWNED BY %s; DROP ROLE %s",
                   role, role));
    it_pass();
}
