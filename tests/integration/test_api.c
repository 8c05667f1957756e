/*
 * Integration tests of GET /api/v1/statistics/execution-times against real servers. The
 * events go through the real pipeline (Redis stream → agent → PostgreSQL rollups); the
 * answers are then compared with SQL over the raw rows of the range the API echoes:
 * count, failed, min and max exactly, avg to 1e-9, every percentile within 1% of
 * percentile_disc; per range, per series bucket and per workflow. Also: refused tokens
 * and tenants, row-level security read directly in SQL, ETag and CORS, parameter errors
 * naming the parameter, and 503 while the database is unreachable.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tokens.h"
#include "oracle.h"
#include "sketch.h"
#include "timeutil.h"

#define SECRET "exectime-integration-test-secret-0123456789"
#define API_PATH "/api/v1/statistics/execution-times"
#define REGRESSIONS_PATH "/api/v1/statistics/regressions"
#define CORS_ORIGIN "https://app.example"

/* Every statistics question asks for these; SQL computes the same quantiles. */
#define PCTS "50,90,95,99,99.9"
#define PCT_COUNT 5
static const char *const pct_keys[PCT_COUNT] = {"p50", "p90", "p95", "p99", "p99.9"};
#define PCT_SQL "ARRAY[0.5, 0.9, 0.95, 0.99, 0.999]::float8[]"

/* The product's promises (DESIGN section 4): percentiles within 1% of percentile_disc,
 * avg exact to 1e-9. The API prints percentiles in ms with 6 decimals (to the ns) and avg
 * with 12, so half a unit of that last digit is allowed on top. */
#define PCT_REL_TOL 0.01
#define PCT_ABS_TOL 0.0000005
#define AVG_REL_TOL 1e-9
#define AVG_ABS_TOL 5e-13

/* --- agents and tokens -------------------------------------------------------------------- */

static it_agent_t *start_api_agent(const char *cors_origins)
{
    static char cors[256];
    const char *env[3] = {"EXECTIME_JWT_SECRET=" SECRET, NULL, NULL};
    if (cors_origins) {
        snprintf(cors, sizeof cors, "EXECTIME_CORS_ORIGINS=%s", cors_origins);
        env[1] = cors;
    }
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    return a;
}

/* --- HTTP and JSON ------------------------------------------------------------------------ */

/* GET of the endpoint with query and header lines (NULL-terminated list, may be NULL). */
static int api_get(const it_agent_t *a, const char *query, const char *const *headers,
                   it_http_response_t *res)
{
    size_t n = strlen(API_PATH) + strlen(query) + 2;
    char *path = malloc(n);
    cr_assert_not_null(path);
    snprintf(path, n, "%s%s%s", API_PATH, query[0] ? "?" : "", query);
    int status = it_http_request(a->port, "GET", path, headers, res);
    free(path);
    return status;
}

static json_t *parse_json(const char *body, const char *what)
{
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    cr_assert(j != NULL && json_is_object(j), "%s: the body is not a JSON object (%s): %s", what,
              err.text, body);
    return j;
}

/* The 200 answer to query with the given Authorization line, parsed. */
static json_t *api_ok(const it_agent_t *a, const char *auth, const char *query)
{
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = api_get(a, query, headers, &res);
    cr_assert_eq(status, 200, "GET ?%s answered %d: %s", query, status, res.body);
    char *ctype = it_http_header(&res, "Content-Type");
    cr_assert(ctype && strncmp(ctype, "application/json", 16) == 0, "Content-Type %s",
              ctype ? ctype : "(none)");
    free(ctype);
    json_t *j = parse_json(res.body, query);
    it_http_response_free(&res);
    return j;
}

static const json_t *member(const json_t *o, const char *key, const char *what)
{
    const json_t *v = json_object_get(o, key);
    cr_assert(v != NULL, "%s: no \"%s\" in the answer", what, key);
    return v;
}

static long long int_member(const json_t *o, const char *key, const char *what)
{
    const json_t *v = member(o, key, what);
    cr_assert(json_is_integer(v), "%s: \"%s\" is not an integer", what, key);
    return (long long)json_integer_value(v);
}

static const char *str_member(const json_t *o, const char *key, const char *what)
{
    const json_t *v = member(o, key, what);
    cr_assert(json_is_string(v), "%s: \"%s\" is not a string", what, key);
    return json_string_value(v);
}

/* Checks a 4xx/5xx answer: JSON with only "error" {code, message[, parameter]}. */
static void expect_error(const it_http_response_t *res, int status, const char *code,
                         const char *parameter, const char *what)
{
    cr_assert_eq(res->status, status, "%s: status %d, expected %d: %s", what, res->status, status,
                 res->body);
    json_t *j = parse_json(res->body, what);
    cr_assert_eq(json_object_size(j), 1, "%s: the error answer carries more than \"error\": %s",
                 what, res->body);
    const json_t *e = member(j, "error", what);
    cr_assert_str_eq(str_member(e, "code", what), code, "%s: %s", what, res->body);
    cr_assert(strlen(str_member(e, "message", what)) > 0, "%s: empty message", what);
    const json_t *p = json_object_get(e, "parameter");
    if (parameter) {
        cr_assert(p && json_is_string(p) && strcmp(json_string_value(p), parameter) == 0,
                  "%s: error.parameter should be \"%s\": %s", what, parameter, res->body);
    }
    json_decref(j);
}

/* --- times -------------------------------------------------------------------------------- */

static int64_t ceil_to(int64_t t, et_resolution_t res)
{
    int64_t f = et_time_floor(t, res);
    return f == t ? t : f + et_resolution_us(res);
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
    cr_assert(et_time_format(t, out, cap) > 0);
}

static void fmt_date(int64_t t, char *out, size_t cap)
{
    char full[48];
    fmt_time(t, full, sizeof full);
    snprintf(out, cap, "%.10s", full);
}

/*
 * t as RFC 3339 in a zone offset_min east of UTC ("…T05:30:00+05:30"); the '+' sign
 * percent-encoded unless raw_plus, which leaves it to decode to a space, as a browser
 * address bar would send it.
 */
static void fmt_offset(int64_t t, int offset_min, bool raw_plus, char *out, size_t cap)
{
    char local[48];
    fmt_time(t + offset_min * ET_US_PER_MIN, local, sizeof local);
    size_t n = strlen(local);
    cr_assert(n > 0 && local[n - 1] == 'Z');
    local[n - 1] = '\0';
    if (offset_min == 0) {
        snprintf(out, cap, "%sZ", local);
        return;
    }
    int m = abs(offset_min);
    snprintf(out, cap, "%s%s%02d:%02d", local,
             offset_min < 0 ? "-"
             : raw_plus     ? "+"
                            : "%2B",
             m / 60, m % 60);
}

/* --- SQL on the raw rows ---------------------------------------------------------------------- */

typedef struct sql_stats {
    long long count;
    long long failed;
    long long min_us, max_us, sum_us; /* meaningful when count > 0 */
    long long pct_us[PCT_COUNT];      /* percentile_disc of PCTS */
} sql_stats_t;

/* The statistics columns every oracle query starts with, over its rows. */
/* clang-format off */
#define STATS_COLS                                                                             \
    "count(*), count(*) FILTER (WHERE status IN ('failed', 'timeout')), min(duration_us),"     \
    " max(duration_us), sum(duration_us)::bigint,"                                             \
    " percentile_disc(" PCT_SQL ") WITHIN GROUP (ORDER BY duration_us)"
/* clang-format on */
#define STATS_NCOLS 6
/* $1 tenant, $2 workflow (NULL: all), $3 statuses (text[]). */
/* clang-format off */
#define FILTER                                                                                 \
    "tenant_id = $1 AND ($2::text IS NULL OR workflow_id = $2) AND status = ANY ($3::text[])"
/* clang-format on */

static void read_stats(const PGresult *r, int row, sql_stats_t *s)
{
    memset(s, 0, sizeof *s);
    s->count = strtoll(PQgetvalue(r, row, 0), NULL, 10);
    s->failed = strtoll(PQgetvalue(r, row, 1), NULL, 10);
    if (s->count == 0)
        return;
    s->min_us = strtoll(PQgetvalue(r, row, 2), NULL, 10);
    s->max_us = strtoll(PQgetvalue(r, row, 3), NULL, 10);
    s->sum_us = strtoll(PQgetvalue(r, row, 4), NULL, 10);
    const char *p = PQgetvalue(r, row, 5);
    cr_assert(*p == '{', "percentile_disc gave %s", p);
    p++;
    for (int i = 0; i < PCT_COUNT; i++) {
        char *end;
        s->pct_us[i] = strtoll(p, &end, 10);
        cr_assert(end != p && (*end == ',' || *end == '}'), "percentile_disc gave %s",
                  PQgetvalue(r, row, 5));
        p = end + 1;
    }
}

static PGresult *sql_params(const char *sql, int n, const char *const *values)
{
    PGresult *r = PQexecParams(it.pg, sql, n, NULL, values, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s\n-> %s", sql, PQresultErrorMessage(r));
    return r;
}

/* Statuses of a mask as a text[] literal. */
static void status_array(unsigned mask, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "{");
    for (int s = 0; s < ET_STATUS_COUNT; s++)
        if (mask & (1u << s))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n > 1 ? "," : "",
                                  et_status_name((et_status_t)s));
    snprintf(out + n, cap - n, "}");
}

/* What the raw rows say for [start, end) (RFC 3339 texts). */
static sql_stats_t sql_range(const char *tenant, const char *workflow, unsigned mask,
                             const char *start, const char *end)
{
    char statuses[64];
    status_array(mask, statuses, sizeof statuses);
    const char *values[] = {tenant, workflow, statuses, start, end};
    PGresult *r = sql_params("SELECT " STATS_COLS " FROM exectime.execution_time_statistics"
                             " WHERE " FILTER " AND finished_at >= $4::timestamptz"
                             " AND finished_at < $5::timestamptz",
                             5, values);
    sql_stats_t s;
    read_stats(r, 0, &s);
    PQclear(r);
    return s;
}

/* --- comparing an answer with SQL --------------------------------------------------------- */

/* A duration in ms that must be null when there are no runs; returns NAN for null. */
static double ms_member(const json_t *o, const char *key, const char *what)
{
    const json_t *v = member(o, key, what);
    if (json_is_null(v))
        return NAN;
    cr_assert(json_is_number(v), "%s: \"%s\" is not a number", what, key);
    return json_number_value(v);
}

static void check_exact_us(double ms, long long us, const char *key, const char *what)
{
    cr_assert(!isnan(ms), "%s: %s is null, expected %lld µs", what, key, us);
    cr_assert_eq(llround(ms * 1000.0), us, "%s: %s is %.3f ms, SQL on the raw rows says %lld µs",
                 what, key, ms, us);
    cr_assert(fabs(ms * 1000.0 - (double)us) < 1e-3, "%s: %s %.6f ms is not a whole µs", what, key,
              ms);
}

static void check_percentile(double ms, long long us, const char *key, const char *what)
{
    double want = (double)us / 1000.0;
    cr_assert(!isnan(ms), "%s: %s is null, expected %.3f ms", what, key, want);
    cr_assert(fabs(ms - want) <= PCT_REL_TOL * want + PCT_ABS_TOL + 1e-12,
              "%s: %s is %.3f ms, percentile_disc on the raw rows %.3f ms (%.3f%% off)", what, key,
              ms, want, want > 0 ? 100.0 * fabs(ms - want) / want : INFINITY);
}

/*
 * One statistics object of the answer (the top level, a series bucket, a workflow) against
 * SQL: count and failed exact, min and max to the µs, avg to 1e-9, every percentile (and
 * the median, when the object has one) within 1%; with no runs, every statistic null.
 */
static void check_stats(const json_t *o, const sql_stats_t *e, bool with_median, const char *what)
{
    long long count = int_member(o, "count", what);
    cr_assert_eq(count, e->count, "%s: count %lld, SQL on the raw rows %lld", what, count,
                 e->count);
    long long failed = int_member(o, "failed", what);
    cr_assert_eq(failed, e->failed, "%s: failed %lld, SQL on the raw rows %lld", what, failed,
                 e->failed);
    const json_t *pcts = member(o, "percentiles", what);
    cr_assert(json_is_object(pcts));
    cr_assert_eq(json_object_size(pcts), PCT_COUNT, "%s: %zu percentiles, asked %d", what,
                 json_object_size(pcts), PCT_COUNT);
    if (e->count == 0) {
        cr_assert(isnan(ms_member(o, "avg_ms", what)), "%s: avg_ms not null with no runs", what);
        cr_assert(isnan(ms_member(o, "min_ms", what)), "%s: min_ms not null with no runs", what);
        cr_assert(isnan(ms_member(o, "max_ms", what)), "%s: max_ms not null with no runs", what);
        if (with_median)
            cr_assert(isnan(ms_member(o, "median_ms", what)), "%s: median not null", what);
        for (int i = 0; i < PCT_COUNT; i++)
            cr_assert(isnan(ms_member(pcts, pct_keys[i], what)), "%s: %s not null with no runs",
                      what, pct_keys[i]);
        return;
    }
    check_exact_us(ms_member(o, "min_ms", what), e->min_us, "min_ms", what);
    check_exact_us(ms_member(o, "max_ms", what), e->max_us, "max_ms", what);
    double avg = ms_member(o, "avg_ms", what);
    double want = (double)e->sum_us / (double)e->count / 1000.0;
    cr_assert(!isnan(avg) && fabs(avg - want) <= AVG_REL_TOL * want + AVG_ABS_TOL,
              "%s: avg_ms %.12f, SQL on the raw rows %.12f", what, avg, want);
    for (int i = 0; i < PCT_COUNT; i++)
        check_percentile(ms_member(pcts, pct_keys[i], what), e->pct_us[i], pct_keys[i], what);
    if (with_median)
        check_percentile(ms_member(o, "median_ms", what), e->pct_us[0], "median_ms", what);
    else
        cr_assert_null(json_object_get(o, "median_ms"), "%s: a series bucket has median_ms", what);
}

/* The echoed range as texts, and checked against what the request should cover. */
static void echoed_range(const json_t *j, int64_t want_start, int64_t want_end, char *start,
                         char *end, size_t cap, const char *what)
{
    snprintf(start, cap, "%s", str_member(j, "start_date", what));
    snprintf(end, cap, "%s", str_member(j, "end_date", what));
    if (want_start || want_end) {
        char ws[48], we[48];
        fmt_time(want_start, ws, sizeof ws);
        fmt_time(want_end, we, sizeof we);
        cr_assert_str_eq(start, ws, "%s: start_date echo", what);
        cr_assert_str_eq(end, we, "%s: end_date echo", what);
    }
}

/* --- publishing ----------------------------------------------------------------------------- */

/* Publishes generated events through the real pipeline and waits until all are in. */
static void publish_and_wait(const et_event_t *ev, size_t n, uint64_t seed)
{
    long long before = it_raw_count();
    it_publish(ev, n, 20, seed);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), before + (long long)n, "not every event became a raw row");
}

static et_event_t *gen_events(size_t n, uint64_t seed, int tenants, int workflows,
                              int64_t spread_us, const char *prefix)
{
    et_event_t *ev = calloc(n, sizeof *ev);
    cr_assert_not_null(ev);
    it_gen_t gen = {.seed = seed,
                    .tenants = tenants,
                    .workflows = workflows,
                    .spread_us = spread_us,
                    .run_prefix = prefix};
    it_gen_events(ev, n, &gen);
    return ev;
}

static const char *const workflow_ids[6] = {"wf-1", "wf-2", "wf-3", "wf-4", "wf-5", "9001"};

/* A status filter: mask, and how to write it (random order, maybe MeshHook's aliases). */
static void status_param(it_rng_t *rng, unsigned mask, char *out, size_t cap)
{
    int order[ET_STATUS_COUNT] = {0, 1, 2, 3};
    for (int i = ET_STATUS_COUNT - 1; i > 0; i--) {
        int k = (int)it_rng_below(rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
    }
    bool aliases = it_rng_below(rng, 3) == 0;
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < ET_STATUS_COUNT; i++) {
        int s = order[i];
        if (!(mask & (1u << s)))
            continue;
        const char *name = et_status_name((et_status_t)s);
        if (aliases && s == ET_STATUS_SUCCESS)
            name = "succeeded";
        if (aliases && s == ET_STATUS_CANCELLED)
            name = "canceled";
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", name);
    }
}

static void status_echo(unsigned mask, char *out, size_t cap)
{
    if (mask == 15) {
        snprintf(out, cap, "all");
        return;
    }
    size_t n = 0;
    out[0] = '\0';
    for (int s = 0; s < ET_STATUS_COUNT; s++)
        if (mask & (1u << s))
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                                  et_status_name((et_status_t)s));
}

/* ================================================================================================
 * 1. Summary statistics over random ranges equal SQL on the raw rows.
 * ============================================================================================= */

/*
 * 8000 runs of 3 tenants × 6 workflows over the last three days; the generator puts some
 * exactly on minute, hour and day boundaries and some 1 µs before an hour, so ranges
 * starting or ending on whole minutes meet runs right at their edges. 60 questions with
 * seeded random ranges, status filters, workflows and tokens.
 */
Test(api, api_statistics_equal_sql_on_raw_rows_for_random_ranges, IT_TEST_OPTS)
{
    enum { N = 8000, QUESTIONS = 60 };
    et_event_t *ev = gen_events(N, 20250101, 3, 6, 3 * ET_US_PER_DAY, "r1-");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(ev, N, 11);
    free(ev);

    char *tenant_auth[3];
    for (int t = 0; t < 3; t++)
        tenant_auth[t] =
            it_bearer_hs256(SECRET, "\"sub\": \"user-%d\", \"tenant_id\": \"t%d\"", t + 1, t + 1);
    char *multi_auth = it_bearer_hs256(SECRET, "\"tenant_ids\": [\"t1\", \"t2\", \"t3\"]");
    char *service_auth = it_bearer_hs256(SECRET, "\"role\": \"service_role\"");
    char *app_auth[3];
    for (int t = 0; t < 3; t++)
        app_auth[t] = it_bearer_hs256(SECRET, "\"app_metadata\": {\"tenant_id\": \"t%d\"}", t + 1);

/* clang-format off */
#define API_OK_SERIES                                                                          \
    "exectime_http_requests_total{handler=\"/api/v1/statistics/execution-times\",code=\"200\"}"
    /* clang-format on */
    double ok_before = it_metric(a, API_OK_SERIES);
    it_rng_t rng = {424242};
    int with_runs = 0, without_runs = 0;
    for (int q = 0; q < QUESTIONS; q++) {
        int64_t now = et_now_us();
        int tenant = (int)it_rng_below(&rng, 3);
        char tenant_id[16];
        snprintf(tenant_id, sizeof tenant_id, "t%d", tenant + 1);
        const char *workflow = it_rng_below(&rng, 2) ? workflow_ids[it_rng_below(&rng, 6)] : NULL;
        if (q == 2)
            workflow = "no-such-workflow";

        /* The range: random minutes (some with seconds and µs), dates, offsets. */
        char start_text[64] = "", end_text[64] = "";
        int64_t want_start = 0, want_end = 0;
        if (q == 0) {
            /* No dates: the last 24 hours, checked through the echo below. */
        } else {
            int64_t start, end;
            if (q == 1) { /* before any data: no runs */
                start = et_time_floor(now, ET_RES_MINUTE) - 6 * ET_US_PER_DAY;
                end = start + ET_US_PER_DAY;
            } else {
                int64_t lo = et_time_floor(now, ET_RES_MINUTE) - 84 * ET_US_PER_HOUR;
                start = lo + (int64_t)it_rng_below(&rng, 84 * 60) * ET_US_PER_MIN;
                uint64_t kind = it_rng_below(&rng, 4);
                int64_t len = kind == 0 ? (1 + (int64_t)it_rng_below(&rng, 90)) * ET_US_PER_MIN
                              : kind == 1
                                  ? (1 + (int64_t)it_rng_below(&rng, 48 * 60)) * ET_US_PER_MIN
                                  : (1 + (int64_t)it_rng_below(&rng, 4 * 24 * 60)) * ET_US_PER_MIN;
                end = start + len;
                if (end > now + 20 * ET_US_PER_HOUR)
                    end = now + 20 * ET_US_PER_HOUR -
                          (int64_t)it_rng_below(&rng, 3600) * ET_US_PER_SEC;
                if (it_rng_below(&rng, 4) == 0) /* off the minute: seconds and µs */
                    start += (int64_t)it_rng_below(&rng, ET_US_PER_MIN);
                if (it_rng_below(&rng, 4) == 0)
                    end -= (int64_t)it_rng_below(&rng, ET_US_PER_MIN);
                if (end <= start)
                    end = start + ET_US_PER_SEC;
            }
            want_start = et_time_floor(start, ET_RES_MINUTE);
            want_end = ceil_to(end, ET_RES_MINUTE);
            static const int offsets[] = {330, -480, 60, -210, 840, 0};
            uint64_t form = it_rng_below(&rng, 8);
            bool raw_plus = q == 3; /* once: "+05:30" typed unencoded arrives as " 05:30" */
            if (raw_plus)
                form = 1;
            if (form == 0 && q > 1) { /* date-only start: its midnight */
                want_start = et_time_floor(start, ET_RES_DAY);
                fmt_date(start, start_text, sizeof start_text);
            } else if (form <= 2) {
                fmt_offset(start, raw_plus ? 330 : offsets[it_rng_below(&rng, 6)], raw_plus,
                           start_text, sizeof start_text);
            } else {
                fmt_time(start, start_text, sizeof start_text);
            }
            form = it_rng_below(&rng, 8);
            if (form == 0 && q > 1) { /* date-only end: the whole day */
                want_end = et_time_floor(end, ET_RES_DAY) + ET_US_PER_DAY;
                fmt_date(end, end_text, sizeof end_text);
            } else if (form <= 2) {
                fmt_offset(end, offsets[it_rng_below(&rng, 6)], false, end_text, sizeof end_text);
            } else {
                fmt_time(end, end_text, sizeof end_text);
            }
        }

        unsigned mask = 15;
        char status_text[64] = "";
        if (it_rng_below(&rng, 3) != 0) {
            mask = 1u + (unsigned)it_rng_below(&rng, 15);
            status_param(&rng, mask, status_text, sizeof status_text);
        }

        /* Who asks: the tenant's own token, or a wider one naming the tenant. */
        const char *auth = tenant_auth[tenant];
        bool pass_tenant = false;
        switch (it_rng_below(&rng, 6)) {
        case 0:
            auth = multi_auth;
            pass_tenant = true;
            break;
        case 1:
            auth = service_auth;
            pass_tenant = true;
            break;
        case 2: auth = app_auth[tenant]; break;
        case 3: pass_tenant = true; break;
        default: break;
        }

        char query[1024];
        size_t n = (size_t)snprintf(query, sizeof query, "percentiles=" PCTS);
        if (start_text[0])
            n += (size_t)snprintf(query + n, sizeof query - n, "&start_date=%s", start_text);
        if (end_text[0])
            n += (size_t)snprintf(query + n, sizeof query - n, "&end_date=%s", end_text);
        if (status_text[0])
            n += (size_t)snprintf(query + n, sizeof query - n, "&status=%s", status_text);
        if (workflow)
            n += (size_t)snprintf(query + n, sizeof query - n, "&workflow_id=%s", workflow);
        if (pass_tenant)
            snprintf(query + n, sizeof query - n, "&tenant_id=%s", tenant_id);

        char what[1200];
        snprintf(what, sizeof what, "question %d, tenant %s: ?%s", q, tenant_id, query);
        json_t *j = api_ok(a, auth, query);
        char start[64], end[64];
        echoed_range(j, want_start, want_end, start, end, sizeof start, what);
        if (q == 0) {
            int64_t s_us = 0, e_us = 0;
            bool date_only;
            cr_assert(et_time_parse(start, strlen(start), &s_us, &date_only) == 0);
            cr_assert(et_time_parse(end, strlen(end), &e_us, &date_only) == 0);
            int64_t span = e_us - s_us;
            cr_assert(span == ET_US_PER_DAY || span == ET_US_PER_DAY + ET_US_PER_MIN,
                      "%s: the default range spans %" PRId64 " µs", what, span);
            cr_assert(e_us >= now && e_us <= et_now_us() + ET_US_PER_MIN,
                      "%s: the default range does not end now", what);
        }
        cr_assert_str_eq(str_member(j, "tenant_id", what), tenant_id, "%s", what);
        const json_t *wf = member(j, "workflow_id", what);
        if (workflow)
            cr_assert(json_is_string(wf) && strcmp(json_string_value(wf), workflow) == 0,
                      "%s: workflow_id echo", what);
        else
            cr_assert(json_is_null(wf), "%s: workflow_id should be null for all workflows", what);
        char echo[64];
        status_echo(mask, echo, sizeof echo);
        cr_assert_str_eq(str_member(j, "status", what), echo, "%s: status echo", what);
        cr_assert(fabs(json_number_value(member(j, "relative_error", what)) - 0.01) < 1e-12);
        cr_assert(json_is_false(member(j, "coarsened", what)), "%s: coarsened", what);

        sql_stats_t e = sql_range(tenant_id, workflow, mask, start, end);
        check_stats(j, &e, true, what);
        if (e.count > 0)
            with_runs++;
        else
            without_runs++;
        json_decref(j);
    }
    cr_assert(with_runs >= QUESTIONS / 2, "only %d of %d questions had runs", with_runs, QUESTIONS);
    cr_assert(without_runs >= 2, "the no-runs case was not exercised");

    /* Every one of those answers was counted as a 200. */
    double ok_after = it_metric(a, API_OK_SERIES);
    cr_assert(ok_after >= ok_before + QUESTIONS,
              API_OK_SERIES " went from %g to %g over %d answers", ok_before, ok_after, QUESTIONS);

    for (int t = 0; t < 3; t++) {
        free(tenant_auth[t]);
        free(app_auth[t]);
    }
    free(multi_auth);
    free(service_auth);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 2. Series buckets each equal SQL over their part of the range.
 * ============================================================================================= */

/* Checks the series of one answer bucket by bucket against SQL over
 * [max(start, bucket_start), min(end, bucket_start + interval)). Returns empty buckets. */
static int check_series(const json_t *j, const char *tenant, const char *workflow, unsigned mask,
                        et_resolution_t want_interval, const char *what)
{
    cr_assert_str_eq(str_member(j, "interval", what), et_resolution_name(want_interval),
                     "%s: interval", what);
    const char *start = str_member(j, "start_date", what);
    const char *end = str_member(j, "end_date", what);
    int64_t s_us, e_us;
    bool date_only;
    cr_assert(et_time_parse(start, strlen(start), &s_us, &date_only) == 0);
    cr_assert(et_time_parse(end, strlen(end), &e_us, &date_only) == 0);
    int64_t step = et_resolution_us(want_interval);
    int64_t first = et_time_floor(s_us, want_interval);
    int64_t count = (ceil_to(e_us, want_interval) - first) / step;

    const json_t *series = member(j, "series", what);
    cr_assert(json_is_array(series));
    cr_assert_eq((int64_t)json_array_size(series), count,
                 "%s: %zu series buckets, expected %" PRId64, what, json_array_size(series), count);

    char statuses[64], first_text[48], step_text[24], count_text[24];
    status_array(mask, statuses, sizeof statuses);
    fmt_time(first, first_text, sizeof first_text);
    snprintf(step_text, sizeof step_text, "%lld", (long long)(step / ET_US_PER_SEC));
    snprintf(count_text, sizeof count_text, "%" PRId64, count);
    const char *values[] = {tenant, workflow,   statuses,  start,
                            end,    first_text, step_text, count_text};
    PGresult *r = sql_params(
        "SELECT s.* FROM generate_series(0, $8::int - 1) i,"
        " LATERAL (SELECT $6::timestamptz + i * ($7::bigint * interval '1 second') AS b) bb,"
        " LATERAL (SELECT " STATS_COLS " FROM exectime.execution_time_statistics WHERE " FILTER
        "  AND finished_at >= greatest($4::timestamptz, bb.b)"
        "  AND finished_at < least($5::timestamptz, bb.b + $7::bigint * interval '1 second')) s"
        " ORDER BY i",
        8, values);
    cr_assert_eq(PQntuples(r), count);
    int empty = 0;
    for (int64_t i = 0; i < count; i++) {
        const json_t *b = json_array_get(series, (size_t)i);
        char bucket_what[1400], want_start[48];
        fmt_time(first + i * step, want_start, sizeof want_start);
        snprintf(bucket_what, sizeof bucket_what, "%s, bucket %" PRId64 " (%s)", what, i,
                 want_start);
        cr_assert_str_eq(str_member(b, "bucket_start", bucket_what), want_start, "%s: bucket_start",
                         bucket_what);
        sql_stats_t e;
        read_stats(r, (int)i, &e);
        check_stats(b, &e, false, bucket_what);
        empty += e.count == 0;
    }
    PQclear(r);
    return empty;
}

Test(api, api_series_buckets_each_equal_sql_for_that_bucket, IT_TEST_OPTS)
{
    /* Three days of runs, and a denser last three hours for the minute buckets. */
    enum { N_SPREAD = 3000, N_DENSE = 1500 };
    et_event_t *spread = gen_events(N_SPREAD, 9090, 2, 6, 3 * ET_US_PER_DAY, "s-");
    et_event_t *dense = gen_events(N_DENSE, 9191, 2, 6, 3 * ET_US_PER_HOUR, "d-");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(spread, N_SPREAD, 21);
    publish_and_wait(dense, N_DENSE, 22);
    free(spread);
    free(dense);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_ids\": [\"t1\", \"t2\"]");

    int64_t now = et_now_us();
    int64_t hour = et_time_floor(now, ET_RES_HOUR), minute = et_time_floor(now, ET_RES_MINUTE);
    int64_t today = et_time_floor(now, ET_RES_DAY);
    struct {
        const char *interval;
        et_resolution_t want;
        int64_t start, end;
    } cases[] = {
        /* hours: partial first and last buckets (17 min in, 43 min in) */
        {"hour", ET_RES_HOUR, hour - 30 * ET_US_PER_HOUR + 17 * ET_US_PER_MIN,
         hour - 2 * ET_US_PER_HOUR + 43 * ET_US_PER_MIN},
        /* hours up to now and a little past it: the last buckets are empty */
        {"hour", ET_RES_HOUR, hour - 5 * ET_US_PER_HOUR + 59 * ET_US_PER_MIN,
         now + 2 * ET_US_PER_HOUR + 7 * ET_US_PER_SEC},
        /* minutes over the dense part; off-minute edges widen to whole minutes */
        {"minute", ET_RES_MINUTE, minute - 150 * ET_US_PER_MIN + 13 * ET_US_PER_SEC,
         minute - 10 * ET_US_PER_MIN + 31 * ET_US_PER_SEC},
        {"day", ET_RES_DAY, today - 3 * ET_US_PER_DAY + 5 * ET_US_PER_HOUR + 11 * ET_US_PER_MIN,
         today + 7 * ET_US_PER_HOUR + 3 * ET_US_PER_MIN},
        /* auto: 200 minutes → minute, 50 hours → hour, 12 days → day */
        {"auto", ET_RES_MINUTE, minute - 200 * ET_US_PER_MIN, minute},
        {"auto", ET_RES_HOUR, hour - 50 * ET_US_PER_HOUR + 29 * ET_US_PER_MIN,
         hour + 1 * ET_US_PER_MIN},
        {"auto", ET_RES_DAY, today - 12 * ET_US_PER_DAY + 13 * ET_US_PER_HOUR + 7 * ET_US_PER_MIN,
         today + 2 * ET_US_PER_HOUR + 45 * ET_US_PER_MIN},
    };
    struct {
        const char *tenant;
        const char *workflow;
        unsigned mask;
    } filters[] = {
        {"t1", NULL, 15},
        {"t2", "wf-3", 15},
        {"t1", "9001", 1u << ET_STATUS_FAILED | 1u << ET_STATUS_TIMEOUT},
    };

    int empty = 0, buckets = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t f = 0; f < sizeof filters / sizeof filters[0]; f++) {
            char start[48], end[48], status[64] = "", query[600];
            fmt_time(cases[c].start, start, sizeof start);
            fmt_time(cases[c].end, end, sizeof end);
            if (filters[f].mask != 15)
                status_echo(filters[f].mask, status, sizeof status);
            snprintf(query, sizeof query,
                     "tenant_id=%s&interval=%s&start_date=%s&end_date=%s&percentiles=" PCTS
                     "%s%s%s%s",
                     filters[f].tenant, cases[c].interval, start, end,
                     filters[f].workflow ? "&workflow_id=" : "",
                     filters[f].workflow ? filters[f].workflow : "", status[0] ? "&status=" : "",
                     status);
            char what[700];
            snprintf(what, sizeof what, "?%s", query);
            json_t *j = api_ok(a, auth, query);
            char s[64], e[64];
            echoed_range(j, et_time_floor(cases[c].start, ET_RES_MINUTE),
                         ceil_to(cases[c].end, ET_RES_MINUTE), s, e, sizeof s, what);
            /* The whole range, too. */
            sql_stats_t total =
                sql_range(filters[f].tenant, filters[f].workflow, filters[f].mask, s, e);
            check_stats(j, &total, true, what);
            empty += check_series(j, filters[f].tenant, filters[f].workflow, filters[f].mask,
                                  cases[c].want, what);
            buckets += (int)json_array_size(json_object_get(j, "series"));
            json_decref(j);
        }
    }
    cr_assert(empty > 0 && empty < buckets, "%d of %d buckets empty: both kinds must occur", empty,
              buckets);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 3. group_by=workflow: sorted, limited, each entry equal to SQL; the histogram adds up.
 * ============================================================================================= */

typedef struct wf_row {
    char id[ET_WORKFLOW_ID_MAX + 1];
    sql_stats_t s;
} wf_row_t;

static const char *sort_name;

static double wf_key(const wf_row_t *w)
{
    if (strcmp(sort_name, "count") == 0)
        return (double)w->s.count;
    if (strcmp(sort_name, "max") == 0)
        return (double)w->s.max_us;
    return (double)w->s.sum_us / (double)w->s.count; /* avg */
}

static int compare_wf(const void *pa, const void *pb)
{
    const wf_row_t *a = pa, *b = pb;
    double ka = wf_key(a), kb = wf_key(b);
    if (ka != kb)
        return ka > kb ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* The merged histogram of the answer against the raw durations binned here. */
static void check_histogram(const json_t *j, const char *tenant, unsigned mask, const char *start,
                            const char *end, long long count, const char *what)
{
    const json_t *hist = member(j, "histogram", what);
    cr_assert(json_is_array(hist));
    long long sum = 0;
    double prev = -1;
    for (size_t i = 0; i < json_array_size(hist); i++) {
        const json_t *bin = json_array_get(hist, i);
        double le = json_number_value(member(bin, "le_ms", what));
        long long n = int_member(bin, "count", what);
        cr_assert(le > prev, "%s: histogram bins out of order at %zu", what, i);
        cr_assert(n > 0, "%s: an empty histogram bin", what);
        prev = le;
        sum += n;
    }
    cr_assert_eq(sum, count, "%s: the histogram adds up to %lld, count is %lld", what, sum, count);

    /* Bin the raw durations with the sketch's mapping: same bins, same counts. */
    char statuses[64];
    status_array(mask, statuses, sizeof statuses);
    const char *values[] = {tenant, NULL, statuses, start, end};
    PGresult *r = sql_params("SELECT duration_us FROM exectime.execution_time_statistics"
                             " WHERE " FILTER " AND finished_at >= $4::timestamptz"
                             " AND finished_at < $5::timestamptz ORDER BY duration_us",
                             5, values);
    size_t k = 0;
    for (int i = 0; i < PQntuples(r);) {
        uint32_t slot = et_sketch_slot((uint64_t)strtoll(PQgetvalue(r, i, 0), NULL, 10));
        long long n = 0;
        while (i < PQntuples(r) &&
               et_sketch_slot((uint64_t)strtoll(PQgetvalue(r, i, 0), NULL, 10)) == slot) {
            n++;
            i++;
        }
        cr_assert(k < json_array_size(hist), "%s: the histogram lacks bins", what);
        const json_t *bin = json_array_get(hist, k++);
        double le = json_number_value(json_object_get(bin, "le_ms"));
        double want = et_sketch_slot_upper(slot) / 1000.0;
        cr_assert(fabs(le - want) <= 5e-7 + 1e-12 * want,
                  "%s: histogram bin %zu has le_ms %.6f, the raw rows' bin is %.6f", what, k - 1,
                  le, want);
        cr_assert_eq(json_integer_value(json_object_get(bin, "count")), n,
                     "%s: histogram bin le_ms %.6f counts %lld, the raw rows %lld", what, le,
                     (long long)json_integer_value(json_object_get(bin, "count")), n);
    }
    cr_assert_eq(k, json_array_size(hist), "%s: the histogram has extra bins", what);
    PQclear(r);
}

Test(api, api_group_by_workflow_sorts_and_limits, IT_TEST_OPTS)
{
    enum { N = 4000 };
    et_event_t *ev = gen_events(N, 31337, 3, 6, 2 * ET_US_PER_DAY, "g-");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(ev, N, 31);
    free(ev);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t2\"");

    int64_t now = et_now_us();
    int64_t range_start =
        et_time_floor(now, ET_RES_MINUTE) - 40 * ET_US_PER_HOUR - 23 * ET_US_PER_MIN;
    char start_text[48];
    fmt_time(range_start, start_text, sizeof start_text);
    static const char *const sorts[] = {"count", "avg", "max", "p95", NULL};
    static const int limits[] = {0, 3, 1, 1000};
    static const unsigned masks[] = {15, 1u << ET_STATUS_SUCCESS,
                                     1u << ET_STATUS_FAILED | 1u << ET_STATUS_CANCELLED};
    int truncated = 0;
    for (int s = 0; s < 5; s++) {
        for (int l = 0; l < 4; l++) {
            unsigned mask = masks[(s + l) % 3];
            char status[64] = "", query[600], extra[64] = "";
            if (mask != 15)
                status_echo(mask, status, sizeof status);
            if (sorts[s])
                snprintf(extra, sizeof extra, "&sort=%s", sorts[s]);
            if (limits[l])
                snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "&limit=%d",
                         limits[l]);
            snprintf(query, sizeof query,
                     "group_by=workflow&include=histogram&start_date=%s&percentiles=" PCTS "%s%s%s",
                     start_text, extra, status[0] ? "&status=" : "", status);
            char what[700];
            snprintf(what, sizeof what, "?%s", query);
            json_t *j = api_ok(a, auth, query);
            char start[64], end[64];
            echoed_range(j, 0, 0, start, end, sizeof start, what);
            sql_stats_t total = sql_range("t2", NULL, mask, start, end);
            check_stats(j, &total, true, what);
            check_histogram(j, "t2", mask, start, end, total.count, what);

            /* SQL per workflow. */
            char statuses[64];
            status_array(mask, statuses, sizeof statuses);
            const char *values[] = {"t2", NULL, statuses, start, end};
            PGresult *r = sql_params("SELECT " STATS_COLS ", workflow_id"
                                     " FROM exectime.execution_time_statistics"
                                     " WHERE " FILTER " AND finished_at >= $4::timestamptz"
                                     " AND finished_at < $5::timestamptz"
                                     " GROUP BY workflow_id ORDER BY workflow_id",
                                     5, values);
            int nwf = PQntuples(r);
            cr_assert(nwf >= 4, "%s: only %d workflows have runs", what, nwf);
            wf_row_t rows[16];
            cr_assert(nwf <= 16);
            for (int i = 0; i < nwf; i++) {
                snprintf(rows[i].id, sizeof rows[i].id, "%s", PQgetvalue(r, i, STATS_NCOLS));
                read_stats(r, i, &rows[i].s);
            }
            PQclear(r);

            int limit = limits[l] ? limits[l] : 50;
            const json_t *wfs = member(j, "workflows", what);
            cr_assert(json_is_array(wfs));
            size_t got = json_array_size(wfs);
            size_t want = (size_t)(nwf < limit ? nwf : limit);
            cr_assert_eq(got, want, "%s: %zu workflows, expected %zu", what, got, want);
            cr_assert_eq(int_member(j, "workflows_total", what), nwf,
                         "%s: workflows_total is not the count before the limit", what);
            truncated += got < (size_t)nwf;

            /* Every entry equals SQL for its workflow. */
            bool listed[16] = {false};
            double prev_p95 = INFINITY;
            for (size_t i = 0; i < got; i++) {
                const json_t *w = json_array_get(wfs, i);
                const char *id = str_member(w, "workflow_id", what);
                char wwhat[800];
                snprintf(wwhat, sizeof wwhat, "%s, workflows[%zu] (%s)", what, i, id);
                int k = 0;
                while (k < nwf && strcmp(rows[k].id, id) != 0)
                    k++;
                cr_assert(k < nwf, "%s: no runs in SQL for this workflow", wwhat);
                cr_assert(!listed[k], "%s: listed twice", wwhat);
                listed[k] = true;
                check_stats(w, &rows[k].s, true, wwhat);
                double p95 =
                    json_number_value(json_object_get(json_object_get(w, "percentiles"), "p95"));
                if (!sorts[s] || strcmp(sorts[s], "p95") == 0) {
                    cr_assert(p95 <= prev_p95, "%s: p95 %.3f after %.3f: not descending", wwhat,
                              p95, prev_p95);
                }
                prev_p95 = p95;
            }

            if (!sorts[s] || strcmp(sorts[s], "p95") == 0) {
                /* p95 is the sketch's, so the order is checked on the answer's own values;
                 * a workflow left out cannot have a clearly higher p95 than one listed. */
                for (int k = 0; k < nwf; k++) {
                    if (listed[k])
                        continue;
                    double lowest = prev_p95;
                    double its = (double)rows[k].s.pct_us[2] / 1000.0;
                    cr_assert(its * (1 - PCT_REL_TOL) - PCT_ABS_TOL <= lowest * (1 + 1e-12),
                              "%s: %s (p95 %.3f ms in SQL) was left out, yet %.3f ms was listed",
                              what, rows[k].id, its, lowest);
                }
            } else {
                /* count, avg, max: exact in SQL, so the order and the cut are too. */
                sort_name = sorts[s];
                qsort(rows, (size_t)nwf, sizeof rows[0], compare_wf);
                for (size_t i = 0; i < got; i++) {
                    const char *id =
                        json_string_value(json_object_get(json_array_get(wfs, i), "workflow_id"));
                    cr_assert_str_eq(id, rows[i].id,
                                     "%s: workflows[%zu] is %s, SQL's order "
                                     "by %s has %s",
                                     what, i, id, sorts[s], rows[i].id);
                }
            }
            json_decref(j);
        }
    }
    cr_assert(truncated > 0, "the limit never cut the list");

    /* group_by with one workflow: one entry, equal to the total. */
    char query[600];
    snprintf(query, sizeof query,
             "group_by=workflow&workflow_id=wf-2&start_date=%s&percentiles=" PCTS, start_text);
    json_t *j = api_ok(a, auth, query);
    char start[64], end[64];
    echoed_range(j, 0, 0, start, end, sizeof start, query);
    sql_stats_t e = sql_range("t2", "wf-2", 15, start, end);
    check_stats(j, &e, true, query);
    const json_t *wfs = member(j, "workflows", query);
    cr_assert_eq(json_array_size(wfs), 1);
    cr_assert_eq(int_member(j, "workflows_total", query), 1);
    cr_assert_str_eq(str_member(json_array_get(wfs, 0), "workflow_id", query), "wf-2");
    check_stats(json_array_get(wfs, 0), &e, true, query);
    json_decref(j);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 4. Bad tokens and other tenants get nothing.
 * ============================================================================================= */

Test(api, api_refuses_bad_tokens_without_data, IT_TEST_OPTS)
{
    enum { N = 600 };
    et_event_t *ev = gen_events(N, 4444, 2, 3, ET_US_PER_DAY, "a-");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(ev, N, 41);
    free(ev);

    /* The good token reads data: the refusals below are not for lack of it. */
    char *good = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    json_t *j = api_ok(a, good, "");
    cr_assert_gt(int_member(j, "count", "good token"), 0);
    json_decref(j);

    long long now = (long long)time(NULL);
    char claims[256];
    snprintf(claims, sizeof claims, "{\"exp\": %lld, \"tenant_id\": \"t1\"}", now + 3600);
    char *bad_signature =
        it_bearer_signed(JWT_ALG_HS256, "another-secret-of-enough-length!", claims);
    char *hs512 = it_bearer_signed(JWT_ALG_HS512, SECRET, claims);
    char *alg_none = it_bearer_signed(JWT_ALG_NONE, NULL, claims);
    snprintf(claims, sizeof claims, "{\"exp\": %lld, \"tenant_id\": \"t1\"}", now - 3600);
    char *expired = it_bearer_signed(JWT_ALG_HS256, SECRET, claims);
    snprintf(claims, sizeof claims, "{\"tenant_id\": \"t1\"}");
    char *no_exp = it_bearer_signed(JWT_ALG_HS256, SECRET, claims);
    /* A good token with its signature cut off, and one with a letter of the payload changed. */
    char truncated[2048], tampered[2048];
    snprintf(truncated, sizeof truncated, "%.*s", (int)(strrchr(good, '.') - good), good);
    snprintf(tampered, sizeof tampered, "%s", good);
    char *payload = strchr(tampered, '.') + 1;
    payload[3] = payload[3] == 'A' ? 'B' : 'A';

    struct {
        const char *name;
        const char *header; /* NULL: no Authorization at all */
    } refused[] = {
        {"no Authorization", NULL},
        {"empty bearer", "Authorization: Bearer "},
        {"another scheme", "Authorization: Basic dXNlcjpwYXNz"},
        {"malformed token", "Authorization: Bearer not.a.jwt"},
        {"garbage token", "Authorization: Bearer abcdef"},
        {"signature cut off", truncated},
        {"tampered payload", tampered},
        {"bad signature", bad_signature},
        {"expired", expired},
        {"no exp", no_exp},
        {"alg none", alg_none},
        {"HS512", hs512},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *headers[] = {refused[i].header, NULL};
        it_http_response_t res;
        api_get(a, "tenant_id=t1", headers, &res);
        expect_error(&res, 401, "unauthorized", NULL, refused[i].name);
        char *www = it_http_header(&res, "WWW-Authenticate");
        cr_assert(www && strncmp(www, "Bearer", 6) == 0, "%s: WWW-Authenticate is %s",
                  refused[i].name, www ? www : "(none)");
        free(www);
        cr_assert_null(it_http_header(&res, "ETag"), "%s: a refusal carries an ETag",
                       refused[i].name);
        it_http_response_free(&res);
    }

    /* Tenant A's token asking for tenant B: 403, decided by the database. */
    {
        const char *headers[] = {good, NULL};
        it_http_response_t res;
        api_get(a, "tenant_id=t2", headers, &res);
        expect_error(&res, 403, "forbidden", NULL, "t1's token asking for t2");
        it_http_response_free(&res);
        char *app = it_bearer_hs256(SECRET, "\"app_metadata\": {\"tenant_ids\": [\"t1\"]}");
        const char *app_headers[] = {app, NULL};
        api_get(a, "tenant_id=t2&group_by=workflow", app_headers, &res);
        expect_error(&res, 403, "forbidden", NULL, "app_metadata t1 asking for t2");
        it_http_response_free(&res);
        free(app);
    }
    /* Several tenants and no tenant_id: 400 naming tenant_id; with it, 200. */
    {
        char *multi = it_bearer_hs256(SECRET, "\"tenant_ids\": [\"t1\", \"t2\"]");
        char *service = it_bearer_hs256(SECRET, "\"role\": \"service_role\"");
        char *none = it_bearer_hs256(SECRET, "\"sub\": \"nobody\"");
        const char *const tokens[] = {multi, service, none};
        for (int i = 0; i < 3; i++) {
            const char *headers[] = {tokens[i], NULL};
            it_http_response_t res;
            api_get(a, "", headers, &res);
            expect_error(&res, 400, "invalid_parameter", "tenant_id",
                         i == 0   ? "two tenants, no tenant_id"
                         : i == 1 ? "service_role, no tenant_id"
                                  : "no tenant claim, no tenant_id");
            it_http_response_free(&res);
        }
        json_decref(api_ok(a, multi, "tenant_id=t2"));
        json_decref(api_ok(a, service, "tenant_id=t2"));
        /* A token naming no tenant cannot pick one either. */
        const char *headers[] = {none, NULL};
        it_http_response_t res;
        api_get(a, "tenant_id=t2", headers, &res);
        expect_error(&res, 403, "forbidden", NULL, "no tenant claim asking for t2");
        it_http_response_free(&res);
        free(multi);
        free(service);
        free(none);
    }
    free(good);
    free(bad_signature);
    free(hs512);
    free(alg_none);
    free(expired);
    free(no_exp);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 5. Row-level security, read directly in SQL.
 * ============================================================================================= */

/*
 * Tenants and rows exectime_reader sees in table with these claims (NULL: none set), with
 * no tenant filter: only the policies decide. Returns false when the role may not read
 * the table at all (permission denied), which shows nothing either.
 */
static bool reader_sees(const char *table, const char *claims, char **tenants, long long *rows)
{
    PQclear(it_sql("BEGIN"));
    PQclear(it_sql("SET LOCAL ROLE exectime_reader"));
    if (claims) {
        const char *values[] = {claims};
        PQclear(sql_params("SELECT set_config('request.jwt.claims', $1, true)", 1, values));
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*), coalesce(string_agg(DISTINCT tenant_id, ',' ORDER BY tenant_id),"
             " '') FROM %s",
             table);
    PGresult *r = PQexec(it.pg, sql);
    bool readable = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (readable) {
        *rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *tenants = strdup(PQgetvalue(r, 0, 1));
    } else {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        cr_assert(state && strcmp(state, "42501") == 0, "%s\n-> %s", sql, PQresultErrorMessage(r));
        *rows = 0;
        *tenants = strdup("");
    }
    PQclear(r);
    PQclear(it_sql(readable ? "COMMIT" : "ROLLBACK"));
    return readable;
}

Test(api, reader_role_with_tenant_a_claims_cannot_read_tenant_b, IT_TEST_OPTS)
{
    enum { N = 1500 };
    /* Over three days: rows land in the daily partitions and in the default one. */
    et_event_t *ev = gen_events(N, 5555, 3, 4, 3 * ET_US_PER_DAY, "rls-");
    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    publish_and_wait(ev, N, 51);
    free(ev);
    it_agent_stop(a);

    /* A daily partition that holds rows of every tenant, read directly. */
    char *partition =
        it_sql_text("SELECT 'exectime.' || quote_ident(c.relname) FROM pg_inherits i"
                    " JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'exectime.execution_time_statistics'::regclass"
                    " AND c.relname ~ '^execution_time_statistics_[0-9]{8}$'"
                    " ORDER BY (SELECT count(*) FROM exectime.execution_time_statistics t"
                    "  WHERE t.tableoid = c.oid) DESC LIMIT 1");
    const char *tables[] = {
        "exectime.execution_time_statistics",
        "exectime.execution_time_statistics_default",
        partition,
        "exectime.rollup_minute",
        "exectime.rollup_hour",
        "exectime.rollup_day",
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        long long all = it_sql_int("SELECT count(*) FROM %s", tables[t]);
        char *every = it_sql_text("SELECT string_agg(DISTINCT tenant_id, ',' ORDER BY tenant_id)"
                                  " FROM %s",
                                  tables[t]);
        cr_assert_str_eq(every, "t1,t2,t3", "%s should hold rows of every tenant", tables[t]);
        long long own[3];
        for (int k = 0; k < 3; k++)
            own[k] =
                it_sql_int("SELECT count(*) FROM %s WHERE tenant_id = 't%d'", tables[t], k + 1);
        /* A partition the reader was never granted is closed anyway (permission denied);
         * grant it, as a careless administrator might, and the policies must still hold. */
        char *seen;
        long long seen_rows;
        if (!reader_sees(tables[t], "{\"tenant_id\": \"t1\"}", &seen, &seen_rows)) {
            cr_assert(t == 1 || t == 2, "exectime_reader may not read %s", tables[t]);
            PQclear(it_sql("GRANT SELECT ON %s TO exectime_reader", tables[t]));
        }
        free(seen);

        struct {
            const char *claims;
            const char *tenants;
            long long rows;
        } cases[] = {
            {"{\"tenant_id\": \"t1\"}", "t1", own[0]},
            {"{\"sub\": \"u\", \"tenant_id\": \"t2\", \"role\": \"authenticated\"}", "t2", own[1]},
            {"{\"tenant_ids\": [\"t1\", \"t3\"]}", "t1,t3", own[0] + own[2]},
            {"{\"app_metadata\": {\"tenant_id\": \"t3\"}}", "t3", own[2]},
            {"{\"role\": \"service_role\"}", "t1,t2,t3", all},
            {"{\"tenant_id\": \"t9\"}", "", 0},
            {"{\"tenant_id\": [\"t1\"]}", "", 0}, /* not a string: no tenant */
            {"{}", "", 0},
            {"", "", 0},
            {NULL, "", 0},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            char *tenants;
            long long rows;
            cr_assert(reader_sees(tables[t], cases[c].claims, &tenants, &rows));
            cr_assert_str_eq(tenants, cases[c].tenants, "%s with claims %s: sees tenants %s",
                             tables[t], cases[c].claims ? cases[c].claims : "(none)", tenants);
            cr_assert_eq(rows, cases[c].rows, "%s with claims %s: sees %lld rows, expected %lld",
                         tables[t], cases[c].claims ? cases[c].claims : "(none)", rows,
                         cases[c].rows);
            free(tenants);
        }
        free(every);
    }
    /* Claims set for one transaction do not outlive it. */
    PQclear(it_sql("BEGIN"));
    PQclear(it_sql("SET LOCAL ROLE exectime_reader"));
    PQclear(it_sql("SELECT set_config('request.jwt.claims',"
                   " '{\"role\": \"service_role\"}', true)"));
    PQclear(it_sql("COMMIT"));
    char *tenants;
    long long rows;
    cr_assert(reader_sees("exectime.rollup_day", NULL, &tenants, &rows));
    cr_assert_str_eq(tenants, "", "service_role claims outlived their transaction");
    free(tenants);
    free(partition);
    it_pass();
}

/* ================================================================================================
 * 6. ETag and CORS.
 * ============================================================================================= */

Test(api, api_etag_gives_304_and_cors_headers, IT_TEST_OPTS)
{
    enum { N = 400 };
    et_event_t *ev = gen_events(N, 6666, 1, 3, ET_US_PER_DAY, "e-");
    it_agent_t *a = start_api_agent(CORS_ORIGIN);
    publish_and_wait(ev, N, 61);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");

    int64_t now = et_now_us();
    char start[48], end[48], query[200];
    fmt_time(et_time_floor(now, ET_RES_DAY) - 2 * ET_US_PER_DAY, start, sizeof start);
    /* Two hours ahead: the run added later falls inside. */
    fmt_time(et_time_floor(now, ET_RES_MINUTE) + 2 * ET_US_PER_HOUR, end, sizeof end);
    snprintf(query, sizeof query, "start_date=%s&end_date=%s&interval=hour", start, end);

    const char *plain[] = {auth, NULL};
    it_http_response_t r1, r2;
    cr_assert_eq(api_get(a, query, plain, &r1), 200, "%s", r1.body);
    char *etag = it_http_header(&r1, "ETag");
    cr_assert(etag && strlen(etag) > 2 && etag[0] == '"' && etag[strlen(etag) - 1] == '"',
              "ETag %s", etag ? etag : "(none)");
    char *cache = it_http_header(&r1, "Cache-Control");
    cr_assert(cache && strstr(cache, "no-cache"), "Cache-Control %s", cache ? cache : "(none)");
    free(cache);
    cr_assert_null(it_http_header(&r1, "Access-Control-Allow-Origin"),
                   "no Origin, yet Access-Control-Allow-Origin");
    json_t *j1 = parse_json(r1.body, "first");
    long long count1 = int_member(j1, "count", "first");
    json_decref(j1);

    /* The same question again: same ETag, same body. */
    cr_assert_eq(api_get(a, query, plain, &r2), 200);
    char *etag2 = it_http_header(&r2, "ETag");
    cr_assert_str_eq(etag2, etag, "the same data gave another ETag");
    cr_assert_str_eq(r2.body, r1.body);
    free(etag2);
    it_http_response_free(&r2);

    /* If-None-Match: 304, no body; a list holding it too; another tag: 200. */
    char inm[300], inm_list[400];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    snprintf(inm_list, sizeof inm_list, "If-None-Match: \"0000000000000000\", W/%s", etag);
    const char *const conditional[][3] = {{auth, inm, NULL}, {auth, inm_list, NULL}};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(api_get(a, query, conditional[i], &r2), 304, "%s: %d %s", conditional[i][1],
                     r2.status, r2.body);
        cr_assert_eq(r2.body_len, 0, "a 304 carries a body: %s", r2.body);
        etag2 = it_http_header(&r2, "ETag");
        cr_assert(etag2 && strcmp(etag2, etag) == 0, "a 304 should carry the ETag");
        free(etag2);
        it_http_response_free(&r2);
    }
    const char *other[] = {auth, "If-None-Match: \"0123456789abcdef\"", NULL};
    cr_assert_eq(api_get(a, query, other, &r2), 200);
    cr_assert_str_eq(r2.body, r1.body);
    it_http_response_free(&r2);

    /* New data: the old tag no longer matches, the answer and its ETag change. */
    et_event_t fresh = ev[0];
    snprintf(fresh.run_id, sizeof fresh.run_id, "e-fresh");
    snprintf(fresh.tenant_id, sizeof fresh.tenant_id, "t1");
    fresh.finished_us = et_now_us() - ET_US_PER_SEC;
    fresh.has_started = false;
    publish_and_wait(&fresh, 1, 62);
    cr_assert_eq(api_get(a, query, conditional[0], &r2), 200,
                 "new data arrived, yet the old ETag still matches (%d)", r2.status);
    etag2 = it_http_header(&r2, "ETag");
    cr_assert(etag2 && strcmp(etag2, etag) != 0, "new data, same ETag %s", etag);
    json_t *j2 = parse_json(r2.body, "after new data");
    cr_assert_eq(int_member(j2, "count", "after new data"), count1 + 1);
    json_decref(j2);
    free(etag2);
    it_http_response_free(&r2);
    it_http_response_free(&r1);

    /* CORS: the listed origin is allowed (and may read the ETag), another is not. */
    const char *from_app[] = {auth, "Origin: " CORS_ORIGIN, NULL};
    cr_assert_eq(api_get(a, query, from_app, &r2), 200);
    char *acao = it_http_header(&r2, "Access-Control-Allow-Origin");
    cr_assert(acao && strcmp(acao, CORS_ORIGIN) == 0, "Access-Control-Allow-Origin %s",
              acao ? acao : "(none)");
    free(acao);
    char *expose = it_http_header(&r2, "Access-Control-Expose-Headers");
    cr_assert(expose && strcasestr(expose, "etag"), "Access-Control-Expose-Headers %s",
              expose ? expose : "(none)");
    free(expose);
    char *vary = it_http_header(&r2, "Vary");
    cr_assert(vary && strcasestr(vary, "origin"), "Vary %s", vary ? vary : "(none)");
    free(vary);
    it_http_response_free(&r2);

    const char *from_elsewhere[] = {auth, "Origin: https://evil.example", NULL};
    cr_assert_eq(api_get(a, query, from_elsewhere, &r2), 200);
    cr_assert_null(it_http_header(&r2, "Access-Control-Allow-Origin"),
                   "another origin got Access-Control-Allow-Origin");
    it_http_response_free(&r2);
    const char *suffix[] = {auth, "Origin: https://app.example.evil.example", NULL};
    cr_assert_eq(api_get(a, query, suffix, &r2), 200);
    cr_assert_null(it_http_header(&r2, "Access-Control-Allow-Origin"),
                   "an origin that only starts like the allowed one got in");
    it_http_response_free(&r2);

    /* A refusal still tells the allowed origin's page why, and how long a 503 asks it to
     * wait: the widget reads Retry-After (and ETag) only if they are exposed. */
    const char *refused[] = {"Origin: " CORS_ORIGIN, NULL};
    cr_assert_eq(api_get(a, query, refused, &r2), 401);
    acao = it_http_header(&r2, "Access-Control-Allow-Origin");
    cr_assert(acao && strcmp(acao, CORS_ORIGIN) == 0, "a 401 to the allowed origin lacks CORS");
    free(acao);
    expose = it_http_header(&r2, "Access-Control-Expose-Headers");
    cr_assert(expose && strcasestr(expose, "etag") && strcasestr(expose, "retry-after"),
              "Access-Control-Expose-Headers %s", expose ? expose : "(none)");
    free(expose);
    it_http_response_free(&r2);

    /* The preflight: 204, no token needed. */
    char path[400];
    snprintf(path, sizeof path, "%s?%s", API_PATH, query);
    const char *preflight[] = {"Origin: " CORS_ORIGIN, "Access-Control-Request-Method: GET",
                               "Access-Control-Request-Headers: authorization, if-none-match",
                               NULL};
    cr_assert_eq(it_http_request(a->port, "OPTIONS", path, preflight, &r2), 204, "%d %s", r2.status,
                 r2.body);
    cr_assert_eq(r2.body_len, 0);
    acao = it_http_header(&r2, "Access-Control-Allow-Origin");
    cr_assert(acao && strcmp(acao, CORS_ORIGIN) == 0, "preflight lacks Allow-Origin");
    free(acao);
    char *methods = it_http_header(&r2, "Access-Control-Allow-Methods");
    cr_assert(methods && strstr(methods, "GET"), "Access-Control-Allow-Methods %s",
              methods ? methods : "(none)");
    free(methods);
    char *allow = it_http_header(&r2, "Access-Control-Allow-Headers");
    cr_assert(allow && strcasestr(allow, "authorization") && strcasestr(allow, "if-none-match"),
              "Access-Control-Allow-Headers %s", allow ? allow : "(none)");
    free(allow);
    it_http_response_free(&r2);
    const char *preflight_elsewhere[] = {"Origin: https://evil.example",
                                         "Access-Control-Request-Method: GET", NULL};
    cr_assert_eq(it_http_request(a->port, "OPTIONS", path, preflight_elsewhere, &r2), 204);
    cr_assert_null(it_http_header(&r2, "Access-Control-Allow-Origin"),
                   "a preflight from another origin got Access-Control-Allow-Origin");
    it_http_response_free(&r2);

    free(etag);
    free(auth);
    free(ev);
    it_agent_stop(a);
    it_pass();
}

/* Writes text to dir/name. */
static void write_text(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert(fputs(text, f) >= 0 && fclose(f) == 0, "%s", path);
}

/* The value of header name in r, or "(none)"; copied into buf. */
static const char *header_or_none(const it_http_response_t *r, const char *name, char *buf,
                                  size_t cap)
{
    char *v = it_http_header(r, name);
    snprintf(buf, cap, "%s", v ? v : "(none)");
    free(v);
    return buf;
}

/*
 * A page of another origin loads the widget with <script type="module" src=…>, a CORS
 * request: the bundle carries Access-Control-Allow-Origin for the origins
 * EXECTIME_CORS_ORIGINS lists, and only for those, on 200 and on 304 alike; it always
 * says Vary: Origin. The dashboard page is for the agent's own origin only.
 */
Test(api, api_widget_bundle_is_shared_with_listed_origins_only, IT_TEST_OPTS)
{
    static const char bundle[] = "export const widget = 1;\n";
    write_text(it.tmp_dir, "exectime-widget.js", bundle);
    write_text(it.tmp_dir, "dashboard.html", "<!doctype html><title>t</title>\n");
    static char ui_dir[300];
    snprintf(ui_dir, sizeof ui_dir, "EXECTIME_UI_DIR=%s", it.tmp_dir);
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET,
                         "EXECTIME_CORS_ORIGINS=https://other.example, " CORS_ORIGIN, ui_dir, NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    const char *js = "/widget/exectime-widget.js";
    it_http_response_t r;
    char v[300];

    const char *from_app[] = {"Origin: " CORS_ORIGIN, NULL};
    cr_assert_eq(it_http_request(a->port, "GET", js, from_app, &r), 200, "%d %s", r.status, r.body);
    cr_assert_str_eq(r.body, bundle);
    cr_assert_str_eq(header_or_none(&r, "Access-Control-Allow-Origin", v, sizeof v), CORS_ORIGIN);
    cr_assert(strcasestr(header_or_none(&r, "Vary", v, sizeof v), "origin"), "Vary %s", v);
    cr_assert(strstr(header_or_none(&r, "Content-Type", v, sizeof v), "text/javascript"),
              "Content-Type %s", v);
    char etag[64];
    header_or_none(&r, "ETag", etag, sizeof etag);
    cr_assert_eq(etag[0], '"', "ETag %s", etag);
    it_http_response_free(&r);

    /* The browser revalidates its cached copy: the 304 must pass the CORS check too. */
    char inm[100];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *revalidate[] = {"Origin: " CORS_ORIGIN, inm, NULL};
    cr_assert_eq(it_http_request(a->port, "GET", js, revalidate, &r), 304, "%d", r.status);
    cr_assert_str_eq(header_or_none(&r, "Access-Control-Allow-Origin", v, sizeof v), CORS_ORIGIN);
    it_http_response_free(&r);

    /* Other origins, one that merely starts like a listed one, and no Origin at all: the
     * file, but no permission to run it elsewhere. */
    const char *const others[][2] = {{"Origin: https://evil.example", NULL},
                                     {"Origin: https://app.example.evil.example", NULL},
                                     {"Origin: null", NULL},
                                     {NULL, NULL}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        const char *what = others[i][0] ? others[i][0] : "no Origin";
        cr_assert_eq(it_http_request(a->port, "GET", js, others[i], &r), 200, "%s", what);
        cr_assert_str_eq(r.body, bundle);
        cr_assert_str_eq(header_or_none(&r, "Access-Control-Allow-Origin", v, sizeof v), "(none)",
                         "%s", what);
        cr_assert(strcasestr(header_or_none(&r, "Vary", v, sizeof v), "origin"), "%s: Vary %s",
                  what, v);
        it_http_response_free(&r);
    }

    /* The dashboard page is not for other origins, listed or not. */
    cr_assert_eq(it_http_request(a->port, "GET", "/", from_app, &r), 200, "%d", r.status);
    cr_assert_str_eq(header_or_none(&r, "Access-Control-Allow-Origin", v, sizeof v), "(none)");
    it_http_response_free(&r);

    it_agent_stop(a);
    char path[512];
    snprintf(path, sizeof path, "%s/exectime-widget.js", it.tmp_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/dashboard.html", it.tmp_dir);
    unlink(path);
    it_pass();
}

/* ================================================================================================
 * 7. Bad parameters: 400 naming the parameter.
 * ============================================================================================= */

Test(api, api_bad_parameters_name_the_parameter, IT_TEST_OPTS)
{
    it_agent_t *a = start_api_agent(NULL);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    int64_t now = et_now_us();
    char t_early[48], t_late[48], t_8d[48], t_future[48], t_old[48], t_old_end[48];
    fmt_time(et_time_floor(now, ET_RES_MINUTE) - 2 * ET_US_PER_HOUR, t_early, sizeof t_early);
    fmt_time(et_time_floor(now, ET_RES_MINUTE) - 1 * ET_US_PER_HOUR, t_late, sizeof t_late);
    fmt_time(et_time_floor(now, ET_RES_MINUTE) - 8 * ET_US_PER_DAY, t_8d, sizeof t_8d);
    fmt_time(et_time_floor(now, ET_RES_MINUTE) + 2 * ET_US_PER_HOUR, t_future, sizeof t_future);
    fmt_time(et_time_floor(now, ET_RES_DAY) - 20 * ET_US_PER_DAY, t_old, sizeof t_old);
    fmt_time(et_time_floor(now, ET_RES_DAY) - 19 * ET_US_PER_DAY, t_old_end, sizeof t_old_end);

    char q[12][300];
    struct {
        const char *query;
        const char *parameter;
    } cases[] = {
        {q[0], "end_date"},   /* start after end */
        {q[1], "end_date"},   /* start equal to end */
        {q[2], "start_date"}, /* start in the future, end defaulting to now */
        {"foo=1", "foo"},
        {"percentiles=0", "percentiles"},
        {"percentiles=50,101", "percentiles"},
        {"limit=5000", "limit"},
        {"limit=0", "limit"},
        {q[3], "interval"}, /* 8 days of minutes: 11,520 buckets */
        {q[4], "interval"}, /* 1,440 minutes, but older than their retention */
        {"interval=week", "interval"},
        {"status=running", "status"},
        {"status=all&status=all", "status"},
        {"workflow_id=", "workflow_id"},
        {"start_date=yesterday", "start_date"},
        {"group_by=tenant", "group_by"},
        {"sort=median", "sort"},
        {"include=everything", "include"},
        {"tenant_id=%ff", "tenant_id"},
    };
    snprintf(q[0], sizeof q[0], "start_date=%s&end_date=%s", t_late, t_early);
    snprintf(q[1], sizeof q[1], "start_date=%s&end_date=%s", t_late, t_late);
    snprintf(q[2], sizeof q[2], "start_date=%s", t_future);
    snprintf(q[3], sizeof q[3], "interval=minute&start_date=%s", t_8d);
    snprintf(q[4], sizeof q[4], "interval=minute&start_date=%s&end_date=%s", t_old, t_old_end);
    const char *headers[] = {auth, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        it_http_response_t res;
        api_get(a, cases[i].query, headers, &res);
        char what[400];
        snprintf(what, sizeof what, "?%s", cases[i].query);
        expect_error(&res, 400, "invalid_parameter", cases[i].parameter, what);
        it_http_response_free(&res);
    }
    /* The edge of the bucket limit is fine: 10,000 minute buckets exactly. */
    char ok[300], s[48], e[48];
    fmt_time(et_time_floor(now, ET_RES_MINUTE) - 10000 * ET_US_PER_MIN, s, sizeof s);
    fmt_time(et_time_floor(now, ET_RES_MINUTE), e, sizeof e);
    snprintf(ok, sizeof ok, "interval=minute&start_date=%s&end_date=%s", s, e);
    json_t *j = api_ok(a, auth, ok);
    cr_assert_eq(json_array_size(json_object_get(j, "series")), 10000);
    json_decref(j);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * 8. 503 while the database is unreachable, 200 again after.
 * ============================================================================================= */

static void admin_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void admin_exec(const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGconn *admin = PQconnectdb(it.admin_url);
    cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
    PGresult *r = PQexec(admin, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(admin);
}

Test(api, api_answers_503_when_the_database_is_unreachable, IT_TEST_OPTS)
{
    enum { N = 300 };
    et_event_t *ev = gen_events(N, 8888, 1, 2, ET_US_PER_DAY, "u-");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(ev, N, 81);
    free(ev);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    json_t *j = api_ok(a, auth, "");
    long long count = int_member(j, "count", "before");
    json_decref(j);

    /* No new sessions to the test's database, and the agent's sessions ended. */
    admin_exec("ALTER DATABASE %s ALLOW_CONNECTIONS false", it.db_name);
    admin_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE datname = '%s' AND usename = 'exectime_agent'",
               it.db_name);

    const char *headers[] = {auth, NULL};
    it_http_response_t res = {0};
    int64_t deadline = it_now_ms() + IT_WAIT_MS;
    for (;;) {
        it_check_agents();
        it_http_response_free(&res);
        int status = api_get(a, "", headers, &res);
        if (status == 503)
            break;
        /* Until the agent notices, a session may still answer: only 200 or 503. */
        cr_assert_eq(status, 200, "while the database goes away: %d %s", status, res.body);
        cr_assert(it_now_ms() < deadline, "no 503 within %d ms", IT_WAIT_MS);
        it_sleep_ms(100);
    }
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            it_http_response_free(&res);
            api_get(a, "", headers, &res);
        }
        expect_error(&res, 503, "unavailable", NULL, "database unreachable");
        char *retry = it_http_header(&res, "Retry-After");
        cr_assert(retry && atoi(retry) > 0, "503 without a Retry-After: %s",
                  retry ? retry : "(none)");
        free(retry);
    }
    it_http_response_free(&res);
    /* The other endpoints keep answering: alive, not ready. */
    cr_assert_eq(it_http_get(a->port, "/healthz", NULL), 200);
    IT_WAIT_UNTIL(it_http_get(a->port, "/readyz", NULL) == 503, IT_WAIT_MS,
                  "/readyz still says ready with the database unreachable");

    admin_exec("ALTER DATABASE %s ALLOW_CONNECTIONS true", it.db_name);
    deadline = it_now_ms() + IT_WAIT_MS;
    while (api_get(a, "", headers, &res) != 200) {
        cr_assert(res.status == 503, "while the database comes back: %d %s", res.status, res.body);
        cr_assert(it_now_ms() < deadline, "no 200 within %d ms of the database coming back",
                  IT_WAIT_MS);
        it_http_response_free(&res);
        it_check_agents();
        it_sleep_ms(100);
    }
    j = parse_json(res.body, "after");
    cr_assert_eq(int_member(j, "count", "after"), count);
    json_decref(j);
    it_http_response_free(&res);
    free(auth);
    it_agent_wait_ready(a);
    it_agent_stop(a);
    it_pass();
}

/* ================================================================================================
 * The statistics cache: whole days of summary answers kept by the API agent.
 * ============================================================================================= */

/* n events of tenant t1 finished within the day that starts days_ago days before today. */
static et_event_t *late_events(size_t n, uint64_t seed, int days_ago, const char *prefix)
{
    et_event_t *ev = gen_events(n, seed, 1, 3, ET_US_PER_HOUR, prefix);
    int64_t day = et_time_floor(et_now_us(), ET_RES_DAY) - days_ago * ET_US_PER_DAY;
    for (size_t i = 0; i < n; i++) {
        ev[i].finished_us = day + (int64_t)(i % 1000) * 60 * ET_US_PER_SEC + 17;
        ev[i].has_started = false;
    }
    return ev;
}

/*
 * The API agent reads no stream; another agent writes every run. The API agent answers the
 * same 10-day questions again and again: their whole days come from its cache (the hit
 * counter grows), and every answer equals SQL on the raw rows, also right after the other
 * agent wrote runs into the cached days (its notification dropped them) and after
 * rollup-rebuild (which notifies every agent). A token for another tenant is refused
 * whatever the cache holds.
 */
Test(api, cached_days_follow_what_other_agents_write, IT_TEST_OPTS)
{
    char idle_stream[200];
    snprintf(idle_stream, sizeof idle_stream, "EXECTIME_STREAM=%s:idle", it.stream);
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, idle_stream, NULL};
    it_agent_t *api = it_agent_start("api-only", env);
    it_agent_t *writer = it_agent_start("writer-only", NULL);
    it_agent_wait_ready(api);
    it_agent_wait_ready(writer);

    et_event_t *ev = gen_events(1200, 77, 1, 3, 6 * ET_US_PER_DAY, "cache-");
    publish_and_wait(ev, 1200, 3);
    free(ev);

    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    char *other = it_bearer_hs256(SECRET, "\"tenant_id\": \"t2\"");
    int64_t end = et_time_floor(et_now_us(), ET_RES_MINUTE) + ET_US_PER_MIN;
    int64_t start = end - 10 * ET_US_PER_DAY;
    char s[48], e[48], query[3][300];
    fmt_time(start, s, sizeof s);
    fmt_time(end, e, sizeof e);
    snprintf(query[0], sizeof query[0], "tenant_id=t1&start_date=%s&end_date=%s&percentiles=" PCTS,
             s, e);
    snprintf(query[1], sizeof query[1],
             "tenant_id=t1&workflow_id=wf-2&start_date=%s&end_date=%s&percentiles=" PCTS, s, e);
    snprintf(query[2], sizeof query[2],
             "tenant_id=t1&status=failed,timeout&start_date=%s&end_date=%s&percentiles=" PCTS, s,
             e);
    static const char *const workflows[3] = {NULL, "wf-2", NULL};
    static const unsigned masks[3] = {0xf, 0xf,
                                      (1u << ET_STATUS_FAILED) | (1u << ET_STATUS_TIMEOUT)};

    double hits_before = it_metric(api, "exectime_api_cache_hits_total");
    for (int round = 0; round < 4; round++) {
        if (round == 2) {
            /* Runs into two of the cached days, written by the other agent. */
            et_event_t *late = late_events(400, 78, 3, "late-");
            publish_and_wait(late, 400, 4);
            free(late);
            late = late_events(100, 79, 5, "later-");
            publish_and_wait(late, 100, 5);
            free(late);
        }
        if (round == 3) {
            /* Drift from outside the agents, announced by hand as docs/schema.md asks: the
             * cache takes the drifted days. rollup-rebuild repairs them and must say so. */
            PQclear(it_sql("UPDATE exectime.rollup_day SET runs = runs + 7 WHERE tenant_id = 't1';"
                           "NOTIFY exectime_rollups, '*'"));
            it_sleep_ms(300);
            json_t *j = api_ok(api, auth, query[0]);
            sql_stats_t raw = sql_range("t1", NULL, 0xf, s, e);
            cr_assert_gt(int_member(j, "count", "drifted"), raw.count,
                         "the drifted day rows should show before the repair");
            json_decref(j);
            char *out = NULL;
            cr_assert_eq(it_agent_command("rollup-rebuild", it.db_admin_url, &out), 0, "%s", out);
            free(out);
        }
        /* A notification travels apart from the answer that follows the commit. */
        if (round >= 2)
            it_sleep_ms(300);
        for (int q = 0; q < 3; q++) {
            for (int again = 0; again < 2; again++) {
                char what[64];
                snprintf(what, sizeof what, "round %d, question %d, ask %d", round, q, again);
                json_t *j = api_ok(api, auth, query[q]);
                sql_stats_t want = sql_range("t1", workflows[q], masks[q], s, e);
                check_stats(j, &want, true, what);
                json_decref(j);
            }
        }
        const char *headers[] = {other, NULL};
        it_http_response_t res;
        cr_assert_eq(api_get(api, query[0], headers, &res), 403, "%s", res.body);
        it_http_response_free(&res);
    }
    double hits = it_metric(api, "exectime_api_cache_hits_total") - hits_before;
    cr_assert_geq(hits, 12, "%.0f answers took their days from the cache", hits);
    cr_assert_geq(it_metric(api, "exectime_api_cache_dropped_total"), 3);
    free(auth);
    free(other);
    it_pass();
}

/* ================================================================================================
 * The contract: live answers against docs/openapi.yaml.
 * ============================================================================================= */

/* Where the exchanges go, one JSON object a line, for check_openapi.py. */
typedef struct exchange_log {
    FILE *f;
    int count;
} exchange_log_t;

/* The answer's header lines as a JSON object, names lower-cased; the first of a repeated
 * name wins (the agent repeats none). */
static json_t *headers_json(const it_http_response_t *r)
{
    json_t *h = json_object();
    cr_assert_not_null(h);
    for (const char *line = r->head; line && *line;) {
        const char *end = strstr(line, "\r\n");
        size_t n = end ? (size_t)(end - line) : strlen(line);
        const char *colon = memchr(line, ':', n);
        if (colon) {
            char name[128];
            size_t nlen = (size_t)(colon - line);
            cr_assert(nlen < sizeof name, "header name too long");
            for (size_t i = 0; i < nlen; i++)
                name[i] = (char)tolower((unsigned char)line[i]);
            name[nlen] = '\0';
            const char *v = colon + 1;
            while (v < line + n && *v == ' ')
                v++;
            if (!json_object_get(h, name))
                cr_assert_eq(json_object_set_new(h, name, json_stringn(v, (size_t)(line + n - v))),
                             0, "header %s is not UTF-8", name);
        }
        line = end ? end + 2 : line + n;
    }
    return h;
}

/*
 * Sends one request and logs it with its answer. Returns the status; *keep (if given)
 * receives the answer, else it is freed.
 */
static int exchange(exchange_log_t *log, const it_agent_t *a, const char *name, const char *method,
                    const char *target, const char *const *headers, it_http_response_t *keep)
{
    it_http_response_t r;
    int status = it_http_request(a->port, method, target, headers, &r);
    cr_assert_gt(status, 0, "%s: %s %.100s: no answer", name, method, target);
    json_t *line = json_object();
    cr_assert_not_null(line);
    json_object_set_new(line, "name", json_string(name));
    json_object_set_new(line, "method", json_string(method));
    json_object_set_new(line, "target", json_string(target));
    json_object_set_new(line, "status", json_integer(status));
    json_object_set_new(line, "headers", headers_json(&r));
    json_t *body = json_stringn(r.body, r.body_len);
    cr_assert_not_null(body, "%s: the body is not UTF-8", name);
    json_object_set_new(line, "body", body);
    char *text = json_dumps(line, JSON_COMPACT);
    cr_assert_not_null(text);
    cr_assert(fprintf(log->f, "%s\n", text) > 0);
    free(text);
    json_decref(line);
    log->count++;
    if (keep)
        *keep = r;
    else
        it_http_response_free(&r);
    return status;
}

/* A statistics question: the status is asserted here, the document checks the rest. */
static void ask(exchange_log_t *log, const it_agent_t *a, const char *name, const char *query,
                const char *const *headers, int want)
{
    char target[2048];
    snprintf(target, sizeof target, "%s%s%s", API_PATH, query[0] ? "?" : "", query);
    int status = exchange(log, a, name, "GET", target, headers, NULL);
    cr_assert_eq(status, want, "%s: ?%s answered %d, expected %d", name, query, status, want);
}

/* A regressions question, as ask. */
static void ask_regressions(exchange_log_t *log, const it_agent_t *a, const char *name,
                            const char *query, const char *const *headers, int want)
{
    char target[2048];
    snprintf(target, sizeof target, "%s%s%s", REGRESSIONS_PATH, query[0] ? "?" : "", query);
    int status = exchange(log, a, name, "GET", target, headers, NULL);
    cr_assert_eq(status, want, "%s: ?%s answered %d, expected %d", name, query, status, want);
}

/*
 * Every kind of answer the agent gives, from a running agent over a real data set, is
 * checked by tests/integration/check_openapi.py against docs/openapi.yaml: summaries,
 * series at each interval, group_by with limit and sort, the histogram, odd percentiles,
 * HEAD, ETag and 304, CORS and its preflight; every refusal (400, 401, 403, 404, 405, 413,
 * 414, 422, 431); the probes, the dashboard's files and /openapi.json, which must equal
 * the YAML. An answer the document does not describe (a field, a status, a header, a
 * content type) fails the test.
 */
Test(api, api_live_answers_match_the_openapi_document, IT_TEST_OPTS)
{
    enum { N = 1500 };
    write_text(it.tmp_dir, "exectime-widget.js", "export const widget = 1;\n");
    write_text(it.tmp_dir, "dashboard.html", "<!doctype html><title>t</title>\n");
    static char ui_dir[300];
    snprintf(ui_dir, sizeof ui_dir, "EXECTIME_UI_DIR=%s", it.tmp_dir);
    /* Small enough that a day of minute buckets is refused (422), large enough for the rest. */
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, "EXECTIME_CORS_ORIGINS=" CORS_ORIGIN,
                         "EXECTIME_API_MAX_RESPONSE_BYTES=65536", ui_dir, NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    et_event_t *ev = gen_events(N, 9090, 2, 6, 2 * ET_US_PER_DAY, "o-");
    publish_and_wait(ev, N, 91);
    free(ev);

    char path[512];
    snprintf(path, sizeof path, "%s/openapi-exchanges.jsonl", it.tmp_dir);
    exchange_log_t log = {fopen(path, "w"), 0};
    cr_assert_not_null(log.f, "%s", path);

    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    char *both = it_bearer_hs256(SECRET, "\"tenant_ids\": [\"t1\", \"t2\"]");
    char *empty = it_bearer_hs256(SECRET, "\"tenant_id\": \"t-empty\"");
    const char *h_auth[] = {auth, NULL};
    const char *h_both[] = {both, NULL};
    const char *h_empty[] = {empty, NULL};
    const char *h_cors[] = {auth, "Origin: " CORS_ORIGIN, NULL};

    int64_t now = et_now_us();
    char end[48], start_1d[48], start_3h[48], start_40h[48], day_3[48], q[1024];
    int64_t end_us = et_time_floor(now, ET_RES_MINUTE);
    fmt_time(end_us, end, sizeof end);
    fmt_time(end_us - ET_US_PER_DAY, start_1d, sizeof start_1d);
    fmt_time(end_us - 3 * ET_US_PER_HOUR, start_3h, sizeof start_3h);
    fmt_time(end_us - 40 * ET_US_PER_HOUR - 7 * ET_US_PER_MIN, start_40h, sizeof start_40h);
    fmt_date(now - 3 * ET_US_PER_DAY, day_3, sizeof day_3);

    /* Answers. */
    ask(&log, a, "summary, defaults", "", h_auth, 200);
    ask(&log, a, "summary, two tenants' token", "tenant_id=t2", h_both, 200);
    ask(&log, a, "summary, no runs", "", h_empty, 200);
    snprintf(q, sizeof q,
             "workflow_id=wf-1&status=failed,timeout&percentiles=0.5,50,99.9,99.999999,100"
             "&start_date=%s",
             day_3);
    ask(&log, a, "one workflow, some statuses, odd percentiles", q, h_auth, 200);
    snprintf(q, sizeof q, "interval=minute&start_date=%s&end_date=%s", start_3h, end);
    ask(&log, a, "series by minute", q, h_auth, 200);
    snprintf(q, sizeof q, "interval=hour&start_date=%s&status=success,cancelled", start_40h);
    ask(&log, a, "series by hour", q, h_auth, 200);
    snprintf(q, sizeof q, "interval=day&start_date=%s&percentiles=90", day_3);
    ask(&log, a, "series by day", q, h_auth, 200);
    snprintf(q, sizeof q, "interval=auto&start_date=%s", start_40h);
    ask(&log, a, "series, auto", q, h_auth, 200);
    snprintf(q, sizeof q, "group_by=workflow&limit=2&sort=count&start_date=%s", day_3);
    it_http_response_t cut;
    char target[2048];
    snprintf(target, sizeof target, "%s?%s", API_PATH, q);
    cr_assert_eq(exchange(&log, a, "group_by, cut by limit", "GET", target, h_auth, &cut), 200);
    json_t *j = parse_json(cut.body, "group_by, cut by limit");
    cr_assert_eq(json_array_size(member(j, "workflows", "cut")), 2);
    cr_assert_eq(int_member(j, "workflows_total", "cut"), 6, "%s", cut.body);
    json_decref(j);
    it_http_response_free(&cut);
    snprintf(q, sizeof q, "group_by=workflow&sort=max&include=histogram&start_date=%s", day_3);
    ask(&log, a, "group_by, sort=max, histogram", q, h_auth, 200);
    ask(&log, a, "group_by, sort=avg, series", "group_by=workflow&sort=avg&interval=hour", h_auth,
        200);
    ask(&log, a, "histogram, more percentiles",
        "include=histogram&percentiles=1,25,75,99.99&sort=p95", h_auth, 200);
    ask(&log, a, "queue wait, summary", "measure=queue_wait", h_auth, 200);
    ask(&log, a, "queue wait, no runs", "measure=run,queue_wait", h_empty, 200);
    snprintf(q, sizeof q, "measure=run,queue_wait&group_by=workflow&interval=hour&start_date=%s",
             start_40h);
    ask(&log, a, "queue wait, per workflow and series", q, h_auth, 200);
    ask(&log, a, "CORS: a listed origin", "", h_cors, 200);
    cr_assert_eq(exchange(&log, a, "HEAD", "HEAD", API_PATH, h_auth, NULL), 200);

    /* ETag and 304, on a range that no new run changes. */
    snprintf(q, sizeof q, "start_date=%s&end_date=%s", start_1d, end);
    snprintf(target, sizeof target, "%s?%s", API_PATH, q);
    it_http_response_t first;
    cr_assert_eq(exchange(&log, a, "for an ETag", "GET", target, h_auth, &first), 200);
    char *etag = it_http_header(&first, "ETag");
    cr_assert_not_null(etag);
    it_http_response_free(&first);
    char inm[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    const char *h_inm[] = {auth, inm, "Origin: " CORS_ORIGIN, NULL};
    ask(&log, a, "If-None-Match: 304", q, h_inm, 304);
    free(etag);
    const char *preflight[] = {"Origin: " CORS_ORIGIN, "Access-Control-Request-Method: GET",
                               "Access-Control-Request-Headers: authorization, if-none-match",
                               NULL};
    cr_assert_eq(exchange(&log, a, "CORS preflight", "OPTIONS", API_PATH, preflight, NULL), 204);

    /* The regressions endpoint: its answers, 304, preflight and refusals. */
    ask_regressions(&log, a, "regressions, defaults", "", h_auth, 200);
    snprintf(q, sizeof q, "metric=p99.9&threshold=0&min_runs=1&start_date=%s&end_date=%s", start_1d,
             end);
    ask_regressions(&log, a, "regressions, any rise", q, h_auth, 200);
    ask_regressions(&log, a, "regressions, failure rate",
                    "metric=failure_rate&threshold=0&min_runs=1&limit=3", h_auth, 200);
    ask_regressions(&log, a, "regressions, two tenants' token", "tenant_id=t2", h_both, 200);
    ask_regressions(&log, a, "regressions, CORS: a listed origin", "", h_cors, 200);
    snprintf(q, sizeof q, "threshold=0&min_runs=1&start_date=%s&end_date=%s", start_1d, end);
    snprintf(target, sizeof target, "%s?%s", REGRESSIONS_PATH, q);
    cr_assert_eq(exchange(&log, a, "regressions, for an ETag", "GET", target, h_auth, &first), 200);
    etag = it_http_header(&first, "ETag");
    cr_assert_not_null(etag);
    it_http_response_free(&first);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    ask_regressions(&log, a, "regressions, If-None-Match: 304", q, h_inm, 304);
    free(etag);
    cr_assert_eq(exchange(&log, a, "regressions, CORS preflight", "OPTIONS", REGRESSIONS_PATH,
                          preflight, NULL),
                 204);
    ask_regressions(&log, a, "regressions 400: metric", "metric=avg", h_auth, 400);
    ask_regressions(&log, a, "regressions 400: threshold", "threshold=-1", h_auth, 400);
    ask_regressions(&log, a, "regressions 400: status with failure_rate",
                    "metric=failure_rate&status=failed", h_auth, 400);
    ask_regressions(&log, a, "regressions 401: no token", "", NULL, 401);
    ask_regressions(&log, a, "regressions 403: another tenant", "tenant_id=t2", h_auth, 403);
    cr_assert_eq(exchange(&log, a, "regressions 405: POST", "POST", REGRESSIONS_PATH, h_auth, NULL),
                 405);

    /* Refusals. */
    ask(&log, a, "400: unknown interval", "interval=week", h_auth, 400);
    ask(&log, a, "400: limit 0", "group_by=workflow&limit=0", h_auth, 400);
    ask(&log, a, "400: percentile 0", "percentiles=0", h_auth, 400);
    ask(&log, a, "400: unknown parameter", "foo=1", h_auth, 400);
    ask(&log, a, "400: unknown measure", "measure=cpu", h_auth, 400);
    ask(&log, a, "400: repeated parameter", "sort=max&sort=avg", h_auth, 400);
    ask(&log, a, "400: end before start", "start_date=2026-01-02&end_date=2026-01-01", h_auth, 400);
    ask(&log, a, "400: the token allows two tenants", "", h_both, 400);
    ask(&log, a, "401: no token", "", NULL, 401);
    const char *h_bad[] = {"Authorization: Bearer not.a.token", "Origin: " CORS_ORIGIN, NULL};
    ask(&log, a, "401: a malformed token", "", h_bad, 401);
    ask(&log, a, "403: another tenant", "tenant_id=t2", h_auth, 403);
    snprintf(q, sizeof q, "interval=minute&include=histogram&start_date=%s&end_date=%s", start_1d,
             end);
    ask(&log, a, "422: a day of minutes over 64 KiB", q, h_auth, 422);
    cr_assert_eq(exchange(&log, a, "404", "GET", "/api/v2/nothing", h_auth, NULL), 404);
    cr_assert_eq(exchange(&log, a, "405: POST statistics", "POST", API_PATH, h_auth, NULL), 405);
    cr_assert_eq(exchange(&log, a, "405: DELETE /healthz", "DELETE", "/healthz", NULL, NULL), 405);
    cr_assert_eq(exchange(&log, a, "405: PUT /openapi.json", "PUT", "/openapi.json", NULL, NULL),
                 405);
    static char long_target[5200];
    int n = snprintf(long_target, sizeof long_target, "%s?workflow_id=", API_PATH);
    memset(long_target + n, 'w', sizeof long_target - (size_t)n - 1);
    cr_assert_eq(exchange(&log, a, "414: target over 4 KiB", "GET", long_target, h_auth, NULL),
                 414);
    static char big_header[9000];
    n = snprintf(big_header, sizeof big_header, "X-Padding: ");
    memset(big_header + n, 'x', sizeof big_header - (size_t)n - 1);
    const char *h_big[] = {auth, big_header, NULL};
    cr_assert_eq(exchange(&log, a, "431: headers over 8 KiB", "GET", API_PATH, h_big, NULL), 431);
    const char *h_body[] = {"Content-Length: 100000", NULL};
    cr_assert_eq(exchange(&log, a, "413: a body over 64 KiB", "GET", "/healthz", h_body, NULL),
                 413);

    /* Probes, files and the document itself. */
    cr_assert_eq(exchange(&log, a, "healthz", "GET", "/healthz", NULL, NULL), 200);
    cr_assert_eq(exchange(&log, a, "readyz", "GET", "/readyz", NULL, NULL), 200);
    cr_assert_eq(exchange(&log, a, "metrics", "GET", "/metrics", NULL, NULL), 200);
    cr_assert_eq(exchange(&log, a, "dashboard", "GET", "/", NULL, NULL), 200);
    const char *h_origin[] = {"Origin: " CORS_ORIGIN, NULL};
    it_http_response_t doc;
    cr_assert_eq(exchange(&log, a, "widget", "GET", "/widget/exectime-widget.js", h_origin, &doc),
                 200);
    etag = it_http_header(&doc, "ETag");
    cr_assert_not_null(etag);
    it_http_response_free(&doc);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    free(etag);
    const char *h_widget_inm[] = {"Origin: " CORS_ORIGIN, inm, NULL};
    cr_assert_eq(
        exchange(&log, a, "widget, 304", "GET", "/widget/exectime-widget.js", h_widget_inm, NULL),
        304);
    cr_assert_eq(exchange(&log, a, "openapi.json", "GET", "/openapi.json", NULL, &doc), 200);
    etag = it_http_header(&doc, "ETag");
    cr_assert_not_null(etag);
    it_http_response_free(&doc);
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    free(etag);
    const char *h_doc_inm[] = {inm, NULL};
    cr_assert_eq(exchange(&log, a, "openapi.json, 304", "GET", "/openapi.json", h_doc_inm, NULL),
                 304);
    cr_assert_eq(fclose(log.f), 0);

    const char *argv[] = {getenv("EXECTIME_PYTHON"), getenv("EXECTIME_CHECK_OPENAPI"),
                          getenv("EXECTIME_OPENAPI_YAML"), path, NULL};
    cr_assert(argv[0] && argv[1] && argv[2],
              "EXECTIME_PYTHON, EXECTIME_CHECK_OPENAPI and EXECTIME_OPENAPI_YAML must be set "
              "(meson test sets them)");
    char *out = NULL;
    int status = it_run(argv, NULL, &out, 120000);
    cr_assert_eq(status, 0, "%d answers do not all match docs/openapi.yaml:\n%s", log.count, out);
    free(out);
    free(auth);
    free(both);
    free(empty);
    it_agent_stop(a);
    it_pass();
}

/* --- queue wait ------------------------------------------------------------------------------ */

/* The queue-wait columns of SQL over the runs of the filter that carried enqueued_at, and
 * how many did not. $1-$5 as sql_range. */
static sql_stats_t sql_queue_range(const char *tenant, const char *workflow, unsigned mask,
                                   const char *start, const char *end, long long *without)
{
    char statuses[64];
    status_array(mask, statuses, sizeof statuses);
    const char *values[] = {tenant, workflow, statuses, start, end};
    PGresult *r = sql_params(
        "SELECT count(queue_wait_us), 0, min(queue_wait_us), max(queue_wait_us),"
        " sum(queue_wait_us)::bigint,"
        " percentile_disc(" PCT_SQL ") WITHIN GROUP (ORDER BY queue_wait_us),"
        " count(*) - count(queue_wait_us)"
        " FROM exectime.execution_time_statistics"
        " WHERE " FILTER " AND finished_at >= $4::timestamptz AND finished_at < $5::timestamptz",
        5, values);
    sql_stats_t s;
    read_stats(r, 0, &s);
    *without = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
    PQclear(r);
    return s;
}

/* One queue_wait object against SQL: counts exact, min/max to the µs, avg to 1e-9,
 * percentiles (and the median when it has one) within 1%; null statistics without data. */
static void check_queue(const json_t *parent, const sql_stats_t *e, long long without,
                        bool with_median, const char *what)
{
    const json_t *o = member(parent, "queue_wait", what);
    cr_assert(json_is_object(o), "%s: queue_wait is not an object", what);
    cr_assert_eq(int_member(o, "count", what), e->count, "%s: queue_wait.count", what);
    cr_assert_eq(int_member(o, "runs_without_queue_data", what), without,
                 "%s: runs_without_queue_data", what);
    const json_t *pcts = member(o, "percentiles", what);
    if (e->count == 0) {
        cr_assert(isnan(ms_member(o, "avg_ms", what)) && isnan(ms_member(o, "min_ms", what)) &&
                      isnan(ms_member(o, "max_ms", what)),
                  "%s: queue statistics not null without queue data", what);
        for (int i = 0; i < PCT_COUNT; i++)
            cr_assert(isnan(ms_member(pcts, pct_keys[i], what)), "%s: %s not null", what,
                      pct_keys[i]);
        return;
    }
    check_exact_us(ms_member(o, "min_ms", what), e->min_us, "queue min_ms", what);
    check_exact_us(ms_member(o, "max_ms", what), e->max_us, "queue max_ms", what);
    double avg = ms_member(o, "avg_ms", what);
    double want = (double)e->sum_us / (double)e->count / 1000.0;
    cr_assert(!isnan(avg) && fabs(avg - want) <= AVG_REL_TOL * want + AVG_ABS_TOL,
              "%s: queue avg_ms %.12f, SQL on the raw rows %.12f", what, avg, want);
    for (int i = 0; i < PCT_COUNT; i++)
        check_percentile(ms_member(pcts, pct_keys[i], what), e->pct_us[i], pct_keys[i], what);
    if (with_median)
        check_percentile(ms_member(o, "median_ms", what), e->pct_us[0], "queue median_ms", what);
    else
        cr_assert_null(json_object_get(o, "median_ms"), "%s: a series bucket has median_ms", what);
}

Test(api, api_queue_wait_equals_sql_on_raw_rows, IT_TEST_OPTS)
{
    enum { N = 5000 };
    et_event_t *ev = gen_events(N, 4711, 2, 4, 3 * ET_US_PER_DAY, "qw-");
    size_t queued = 0;
    for (size_t i = 0; i < N; i++)
        queued += ev[i].has_enqueued;
    cr_assert(queued > N / 4 && queued < N, "a share of the events carries enqueued_at");
    it_agent_t *a = start_api_agent(NULL);
    publish_and_wait(ev, N, 47);
    /* Redelivered events change nothing: the queue sketch counts each run once. */
    it_publish(ev, N / 2, 20, 48);
    it_wait_drained();
    free(ev);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    char *empty = it_bearer_hs256(SECRET, "\"tenant_id\": \"t-none\"");

    int64_t now = et_now_us();
    int64_t end_us = et_time_floor(now, ET_RES_MINUTE) + ET_US_PER_MIN;
    static const int64_t lengths[] = {4 * ET_US_PER_DAY, 30 * ET_US_PER_HOUR + 17 * ET_US_PER_MIN,
                                      3 * ET_US_PER_HOUR + 5 * ET_US_PER_MIN};
    const char *pcts = "percentiles=50,90,95,99,99.9";
    for (size_t l = 0; l < 3; l++) {
        char start[48], end[48], query[600], what[160];
        fmt_time(end_us - lengths[l], start, sizeof start);
        fmt_time(end_us, end, sizeof end);
        for (int wf = -1; wf < 2; wf++) {
            const char *workflow = wf < 0 ? NULL : workflow_ids[wf];
            snprintf(query, sizeof query, "%s&start_date=%s&end_date=%s&measure=%s%s%s", pcts,
                     start, end, l == 1 ? "queue_wait" : "run,queue_wait",
                     workflow ? "&workflow_id=" : "", workflow ? workflow : "");
            snprintf(what, sizeof what, "range %zu, %s", l, workflow ? workflow : "all");
            json_t *j = api_ok(a, auth, query);
            long long without;
            sql_stats_t run = sql_range("t1", workflow, 15, start, end);
            sql_stats_t q = sql_queue_range("t1", workflow, 15, start, end, &without);
            check_stats(j, &run, true, what);
            check_queue(j, &q, without, true, what);
            cr_assert(l == 0 && wf < 0 ? q.count > 100 && without > 100 : true,
                      "%s: the whole range has runs with and without queue data", what);
            json_decref(j);
        }
    }

    /* Per workflow and per series bucket, in one request. */
    char start[48], end[48], query[600];
    fmt_time(end_us - 40 * ET_US_PER_HOUR, start, sizeof start);
    fmt_time(end_us, end, sizeof end);
    snprintf(query, sizeof query,
             "%s&start_date=%s&end_date=%s&measure=run,queue_wait&group_by=workflow"
             "&interval=hour",
             pcts, start, end);
    json_t *j = api_ok(a, auth, query);
    const json_t *wfs = member(j, "workflows", "group_by");
    cr_assert(json_array_size(wfs) >= 3);
    for (size_t i = 0; i < json_array_size(wfs); i++) {
        const json_t *w = json_array_get(wfs, i);
        const char *id = str_member(w, "workflow_id", "workflow");
        long long without;
        sql_stats_t q = sql_queue_range("t1", id, 15, start, end, &without);
        check_queue(w, &q, without, true, id);
    }
    const json_t *series = member(j, "series", "series");
    int64_t bucket0 = et_time_floor(end_us - 40 * ET_US_PER_HOUR, ET_RES_HOUR);
    for (size_t i = 0; i < json_array_size(series); i++) {
        char from[48], to[48], what[64];
        int64_t b = bucket0 + (int64_t)i * ET_US_PER_HOUR;
        fmt_time(b < end_us - 40 * ET_US_PER_HOUR ? end_us - 40 * ET_US_PER_HOUR : b, from,
                 sizeof from);
        fmt_time(b + ET_US_PER_HOUR > end_us ? end_us : b + ET_US_PER_HOUR, to, sizeof to);
        snprintf(what, sizeof what, "series bucket %zu", i);
        long long without;
        sql_stats_t q = sql_queue_range("t1", NULL, 15, from, to, &without);
        check_queue(json_array_get(series, i), &q, without, false, what);
    }
    json_decref(j);

    /* measure=run answers as before: no queue_wait anywhere. */
    j = api_ok(a, auth, "group_by=workflow&interval=hour");
    cr_assert_null(json_object_get(j, "queue_wait"));
    cr_assert_null(json_object_get(json_array_get(member(j, "workflows", "w"), 0), "queue_wait"));
    json_decref(j);
    /* A tenant without runs: zero counts, null statistics. */
    j = api_ok(a, empty, "measure=queue_wait&percentiles=50,90,95,99,99.9");
    sql_stats_t none = {0};
    check_queue(j, &none, 0, true, "no runs");
    json_decref(j);

    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    cr_assert_eq(api_get(a, "measure=fast", headers, &res), 400);
    expect_error(&res, 400, "invalid_parameter", "measure", "run, queue_wait");
    it_http_response_free(&res);
    free(auth);
    free(empty);
    it_pass();
}
