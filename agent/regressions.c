/* regressions — see regressions.h. */
#include "regressions.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_params.h"
#include "et_macros.h"
#include "json_out.h"
#include "log.h"
#include "query_plan.h"
#include "sketch.h"
#include "stats_request.h"
#include "timeutil.h"

/* The widest rank bound tried: 2*Phi(6) - 1 is 1 - 2e-9, shown as 1. */
#define Z_MAX 6.0
#define Z_STEPS 20 /* z to within 6 / 2^20: far finer than the 4 decimals shown */

enum { PERIOD_PREVIOUS, PERIOD_CURRENT, PERIOD_COUNT };

/* --- the numbers ---------------------------------------------------------------------------- */

static double quantile_us(const stats_agg_t *a, double q)
{
    double v = 0;
    if (et_hist_quantile(&a->hist, q, (uint64_t)a->min_us, (uint64_t)a->max_us, &v) < 0)
        return NAN;
    return v;
}

/* q moved by z standard deviations of the rank's binomial, kept inside (0, 1]: the
 * normal approximation of the order statistics that bound the quantile of n runs. */
static double rank_bound(double q, uint64_t n, double z)
{
    double b = q + z * sqrt(q * (1.0 - q) / (double)n);
    double lowest = 0.5 / (double)n; /* rank 1 */
    return b < lowest ? lowest : b > 1.0 ? 1.0 : b;
}

/* The current period's value is above the previous one's with both read z deviations of
 * rank toward each other, and the sketch's error taken against the rise. */
static bool separated(const stats_agg_t *prev, const stats_agg_t *cur, double q, double alpha,
                      double z)
{
    double low = quantile_us(cur, rank_bound(q, cur->runs, -z)) / (1.0 + alpha);
    double high = quantile_us(prev, rank_bound(q, prev->runs, z)) / (1.0 - alpha);
    /* Adjacent slots are exactly gamma = (1 + alpha) / (1 - alpha) apart: a value one slot
     * higher is within the combined error, whatever the rounding of their doubles. */
    return low > high * (1.0 + 1e-9);
}

double regressions_percentile_confidence(const stats_agg_t *previous, const stats_agg_t *current,
                                         double q, double alpha)
{
    if (!separated(previous, current, q, alpha, 0.0))
        return 0.0;
    /* Separation only shrinks as z grows: the largest z that keeps it, by bisection. */
    double lo = 0.0, hi = Z_MAX;
    if (separated(previous, current, q, alpha, hi))
        lo = hi;
    for (int i = 0; i < Z_STEPS; i++) {
        double mid = (lo + hi) / 2;
        if (separated(previous, current, q, alpha, mid))
            lo = mid;
        else
            hi = mid;
    }
    /* Each bound holds with probability Phi(z); both at once with at least 2*Phi(z) - 1. */
    return erf(lo / sqrt(2.0));
}

double regressions_rate_confidence(uint64_t previous_failed, uint64_t previous_runs,
                                   uint64_t current_failed, uint64_t current_runs)
{
    if (previous_runs == 0 || current_runs == 0)
        return 0.0;
    double p1 = (double)previous_failed / (double)previous_runs;
    double p2 = (double)current_failed / (double)current_runs;
    double pooled =
        (double)(previous_failed + current_failed) / (double)(previous_runs + current_runs);
    double se =
        sqrt(pooled * (1.0 - pooled) * (1.0 / (double)previous_runs + 1.0 / (double)current_runs));
    if (p2 <= p1 || se <= 0)
        return 0.0;
    return erf((p2 - p1) / se / sqrt(2.0));
}

/* --- per-request state ---------------------------------------------------------------------- */

typedef struct regression {
    const char *workflow_id;  /* borrowed from the current period's answer */
    double previous, current; /* ms, or a failure rate in [0, 1] */
    double change_percent;    /* INFINITY: from a failure rate of 0 */
    uint64_t previous_count, current_count;
    uint64_t previous_failed, current_failed;
    double confidence;
    double impact; /* (current - previous) * current_count */
} regression_t;

typedef struct regression_request {
    stats_db_request_t core; /* the life cycle stats_request runs; first */
    api_regression_params_t params;
    plan_t plans[PERIOD_COUNT];
    stats_rows_query_t rows[PERIOD_COUNT]; /* read in this order: rows statement i is period i */
    stats_answer_t answers[PERIOD_COUNT];  /* per-workflow merges of each period's rows */
} regression_request_t;

/* stats_db_request_handle allocates the request and hands the core to the callbacks. */
static_assert(offsetof(regression_request_t, core) == 0, "the core must come first");

static regression_request_t *request_of(stats_db_request_t *core)
{
    return container_of(core, regression_request_t, core);
}

static void request_free(stats_db_request_t *core)
{
    regression_request_t *r = request_of(core);
    for (int i = 0; i < PERIOD_COUNT; i++)
        stats_answer_free(&r->answers[i]);
    free(r);
}

/* --- the answer ------------------------------------------------------------------------------ */

/* Compares one workflow over both periods; true with *out filled when it regressed. */
static bool compare_workflow(const api_regression_params_t *p, const char *id,
                             const stats_agg_t *prev, const stats_agg_t *cur, regression_t *out)
{
    *out = (regression_t){.workflow_id = id,
                          .previous_count = prev->runs,
                          .current_count = cur->runs,
                          .previous_failed = prev->failed,
                          .current_failed = cur->failed};
    if (p->failure_rate) {
        out->previous = (double)prev->failed / (double)prev->runs;
        out->current = (double)cur->failed / (double)cur->runs;
    } else {
        double v_prev = quantile_us(prev, p->quantile), v_cur = quantile_us(cur, p->quantile);
        if (!(v_prev > 0) || !(v_cur > 0)) /* no relative change from 0 µs */
            return false;
        out->previous = v_prev / 1000.0;
        out->current = v_cur / 1000.0;
    }
    if (!(out->current > out->previous))
        return false;
    out->change_percent =
        out->previous > 0 ? (out->current / out->previous - 1.0) * 100.0 : INFINITY;
    if (out->change_percent < p->threshold_percent)
        return false;
    /* Last, as the bisection is the costly part: only for what the threshold lets through. */
    out->confidence =
        p->failure_rate
            ? regressions_rate_confidence(prev->failed, prev->runs, cur->failed, cur->runs)
            : regressions_percentile_confidence(prev, cur, p->quantile, ET_SKETCH_ALPHA);
    out->impact = (out->current - out->previous) * (double)out->current_count;
    return out->confidence > 0;
}

static int compare_impact(const void *pa, const void *pb)
{
    const regression_t *a = pa, *b = pb;
    if (a->impact != b->impact)
        return a->impact > b->impact ? -1 : 1; /* descending */
    return strcmp(a->workflow_id, b->workflow_id);
}

static void write_regression(json_out_t *j, const regression_t *g)
{
    jout_obj_begin(j);
    jout_key(j, "workflow_id");
    jout_str(j, g->workflow_id);
    jout_key(j, "previous");
    jout_num(j, g->previous, 6);
    jout_key(j, "current");
    jout_num(j, g->current, 6);
    jout_key(j, "change_percent");
    if (isinf(g->change_percent))
        jout_null(j); /* a rise from a failure rate of 0 */
    else
        jout_num(j, g->change_percent, 3);
    jout_key(j, "previous_count");
    jout_int(j, (int64_t)g->previous_count);
    jout_key(j, "current_count");
    jout_int(j, (int64_t)g->current_count);
    jout_key(j, "previous_failed");
    jout_int(j, (int64_t)g->previous_failed);
    jout_key(j, "current_failed");
    jout_int(j, (int64_t)g->current_failed);
    jout_key(j, "confidence");
    jout_num(j, floor(g->confidence * 10000.0) / 10000.0, 4); /* never rounded up to 1 */
    jout_key(j, "impact");
    jout_num(j, g->impact, 3);
    jout_obj_end(j);
}

/* The body, at most limit bytes; NULL with *too_large, or NULL alone when out of memory. */
static char *render(stats_db_request_t *core, size_t limit, size_t *len, bool *too_large)
{
    regression_request_t *r = request_of(core);
    const api_regression_params_t *p = &r->params;
    const stats_answer_t *prev = &r->answers[PERIOD_PREVIOUS], *cur = &r->answers[PERIOD_CURRENT];
    *too_large = false;
    regression_t *found = calloc(cur->workflow_len ? cur->workflow_len : 1, sizeof *found);
    if (found == NULL)
        return NULL;
    size_t count = 0, compared = 0;
    for (size_t i = 0; i < cur->workflow_len; i++) {
        const stats_workflow_agg_t *w = &cur->workflows[i];
        const stats_agg_t *before = stats_answer_workflow(prev, w->id);
        if (before == NULL || before->runs < (uint64_t)p->min_runs ||
            w->agg.runs < (uint64_t)p->min_runs)
            continue;
        compared++;
        if (compare_workflow(p, w->id, before, &w->agg, &found[count]))
            count++;
    }
    qsort(found, count, sizeof *found, compare_impact);

    json_out_t j;
    json_out_init(&j);
    json_out_set_limit(&j, limit);
    jout_obj_begin(&j);
    jout_key(&j, "tenant_id");
    jout_str(&j, core->tenant);
    jout_key(&j, "metric");
    jout_str(&j, p->metric);
    jout_key(&j, "unit");
    jout_str(&j, p->failure_rate ? "ratio" : "ms");
    jout_key(&j, "status");
    jout_str(&j, p->base.status_text);
    jout_key(&j, "start_date");
    jout_time(&j, r->plans[PERIOD_CURRENT].start_us);
    jout_key(&j, "end_date");
    jout_time(&j, r->plans[PERIOD_CURRENT].end_us);
    jout_key(&j, "previous_start_date");
    jout_time(&j, r->plans[PERIOD_PREVIOUS].start_us);
    jout_key(&j, "previous_end_date");
    jout_time(&j, r->plans[PERIOD_PREVIOUS].end_us);
    jout_key(&j, "coarsened");
    jout_bool(&j, r->plans[PERIOD_PREVIOUS].coarsened || r->plans[PERIOD_CURRENT].coarsened);
    jout_key(&j, "threshold_percent");
    jout_num(&j, p->threshold_percent, 2);
    jout_key(&j, "min_runs");
    jout_int(&j, p->min_runs);
    jout_key(&j, "relative_error");
    jout_num(&j, ET_SKETCH_ALPHA, 6);
    jout_key(&j, "workflows_compared");
    jout_int(&j, (int64_t)compared);
    jout_key(&j, "regressions");
    jout_arr_begin(&j);
    for (size_t i = 0; i < count && i < (size_t)p->base.limit; i++)
        write_regression(&j, &found[i]);
    jout_arr_end(&j);
    jout_key(&j, "regressions_total");
    jout_int(&j, (int64_t)count);
    jout_obj_end(&j);
    free(found);
    if (json_out_too_large(&j)) {
        json_out_free(&j);
        *too_large = true;
        return NULL;
    }
    return json_out_take(&j, len);
}

/* --- the database round trip ------------------------------------------------------------------ */

/* Both periods in one transaction: one snapshot, so they are read as of one moment. */
static int fill_rows_steps(stats_db_request_t *core, pg_step_t *rows)
{
    regression_request_t *r = request_of(core);
    for (int i = 0; i < PERIOD_COUNT; i++) {
        stats_rows_query_fill(&r->rows[i], core->tenant, NULL, r->params.base.status_mask,
                              &r->plans[i], false);
        rows[i] =
            (pg_step_t){NULL, r->rows[i].statement, STATS_ROWS_PARAM_COUNT, r->rows[i].values, 1};
    }
    return PERIOD_COUNT;
}

static void on_rows(stats_db_request_t *core, int period, PGresult *res)
{
    stats_db_request_add_rows(core, &request_of(core)->answers[period], res);
}

/* --- the handler -------------------------------------------------------------------------------- */

/* The current period as asked and the previous one, as long, ending where it starts; both
 * planned like a summary. Answers 400 and returns false when they cannot be. */
static bool plan_periods(regression_request_t *r, int64_t now)
{
    const api_params_t *p = &r->params.base;
    plan_retention_t ret = stats_api_retention(r->core.api, now);
    int64_t previous_start = p->start_us - (p->end_us - p->start_us);
    if (previous_start < ET_TIME_MIN_VALID_US) {
        stats_db_request_respond_error(
            &r->core, 400, "invalid_parameter", "start_date",
            "the previous period, as long as the asked one, would start before "
            "2000-01-01");
        return false;
    }
    if (plan_range(previous_start, p->start_us, ET_RES_DAY, &ret, &r->plans[PERIOD_PREVIOUS]) < 0 ||
        plan_range(p->start_us, p->end_us, ET_RES_DAY, &ret, &r->plans[PERIOD_CURRENT]) < 0) {
        stats_db_request_respond_error(&r->core, 400, "invalid_parameter", "start_date",
                                       "the range cannot be planned");
        return false;
    }
    /* Past retention both periods widen to whole hours or days; they must not then share
     * one, or its runs would count for both. */
    if (r->plans[PERIOD_PREVIOUS].end_us > r->plans[PERIOD_CURRENT].start_us) {
        stats_db_request_respond_error(
            &r->core, 400, "invalid_parameter", "start_date",
            "is older than the minute or hour rollups keep: start at a whole hour or "
            "day so the two periods do not overlap");
        return false;
    }
    return true;
}

/* After method and token: parameters, tenant and both periods' plans, answering any refusal
 * itself. Returns true when the request should go to the database. */
static bool admit_request(stats_db_request_t *core, const http_request_t *req, int64_t now)
{
    regression_request_t *r = request_of(core);
    api_error_t perr;
    if (api_regression_params_parse(req->query, strlen(req->query), now, &r->params, &perr) < 0) {
        stats_db_request_respond_error(core, perr.status, perr.code, perr.parameter, perr.message);
        return false;
    }
    return stats_db_request_resolve_tenant(core, &r->params.base) && plan_periods(r, now);
}

static int request_init(stats_db_request_t *core)
{
    regression_request_t *r = request_of(core);
    if (stats_answer_init(&r->answers[PERIOD_PREVIOUS], &r->params.base) < 0 ||
        stats_answer_init(&r->answers[PERIOD_CURRENT], &r->params.base) < 0)
        return -ENOMEM;
    return 0;
}

static const stats_db_request_ops_t request_ops = {
    .size = sizeof(regression_request_t),
    .init = request_init,
    .admit = admit_request,
    .fill_rows_steps = fill_rows_steps,
    .on_rows = on_rows,
    .render = render,
    .free = request_free,
    .too_large_advice = "use a smaller limit",
    .log_query_failed = "regressions query failed",
    .log_row_unreadable = "regressions row could not be read",
};

void regressions_handle(stats_api_t *api, const http_request_t *req, http_response_t *res)
{
    stats_db_request_handle(api, req, res, &request_ops);
}
