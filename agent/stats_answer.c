/* stats_answer — see stats_answer.h. */
#include "stats_answer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_hash.h"
#include "json_out.h"

static void agg_init(stats_agg_t *a)
{
    memset(a, 0, sizeof *a);
    a->min_us = INT64_MAX;
    a->max_us = INT64_MIN;
    a->queue_min_us = INT64_MAX;
    a->queue_max_us = INT64_MIN;
    et_hist_init(&a->hist);
    et_hist_init(&a->queue_hist);
}

static void agg_free(stats_agg_t *a)
{
    et_hist_free(&a->hist);
    et_hist_free(&a->queue_hist);
}

int stats_answer_init(stats_answer_t *ans, const api_params_t *params)
{
    memset(ans, 0, sizeof *ans);
    ans->params = params;
    agg_init(&ans->total);
    agg_init(&ans->days);
    ans->total_dense = calloc(et_sketch_max_slot() + 1, sizeof *ans->total_dense);
    return ans->total_dense ? 0 : -ENOMEM;
}

void stats_answer_free(stats_answer_t *ans)
{
    agg_free(&ans->total);
    agg_free(&ans->days);
    et_hist_free(&ans->row_bins);
    et_hist_free(&ans->row_queue_bins);
    free(ans->total_dense);
    if (ans->series)
        for (int64_t i = 0; i < ans->series_count; i++)
            agg_free(&ans->series[i]);
    free(ans->series);
    for (size_t i = 0; i < ans->workflow_len; i++)
        agg_free(&ans->workflows[i].agg);
    free(ans->workflows);
    free(ans->workflow_index);
    memset(ans, 0, sizeof *ans);
}

int stats_answer_set_series(stats_answer_t *ans, et_resolution_t interval, int64_t start_us,
                            int64_t count)
{
    ans->series = calloc((size_t)count, sizeof *ans->series);
    if (ans->series == NULL)
        return -ENOMEM;
    ans->has_series = true;
    ans->interval = interval;
    ans->series_start = start_us;
    ans->series_count = count;
    for (int64_t i = 0; i < count; i++)
        agg_init(&ans->series[i]);
    return 0;
}

/* --- rows ------------------------------------------------------------------------------ */

static int64_t be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return (int64_t)v;
}

static int16_t be16(const char *p)
{
    return (int16_t)(((uint16_t)(uint8_t)p[0] << 8) | (uint8_t)p[1]);
}

static void agg_add_counts(stats_agg_t *a, uint64_t runs, uint64_t failed, int64_t sum, int64_t min,
                           int64_t max)
{
    a->runs += runs;
    a->failed += failed;
    a->sum_us += sum;
    if (min < a->min_us)
        a->min_us = min;
    if (max > a->max_us)
        a->max_us = max;
}

/* Adds one row; its bins (already read into bins) merge in one linear pass. */
static int agg_add_row(stats_agg_t *a, uint64_t runs, uint64_t failed, int64_t sum, int64_t min,
                       int64_t max, const et_hist_t *bins)
{
    agg_add_counts(a, runs, failed, sum, min, max);
    return et_hist_merge(&a->hist, bins);
}

/* One row's queue-wait columns (bins in row_queue_bins). A row without queue data adds
 * nothing: its min and max are placeholders. */
typedef struct queue_row {
    uint64_t runs;
    int64_t sum, min, max;
} queue_row_t;

static int agg_add_queue(stats_agg_t *a, const queue_row_t *q, const et_hist_t *bins)
{
    if (q->runs == 0)
        return 0;
    a->queue_runs += q->runs;
    a->queue_sum_us += q->sum;
    if (q->min < a->queue_min_us)
        a->queue_min_us = q->min;
    if (q->max > a->queue_max_us)
        a->queue_max_us = q->max;
    return et_hist_merge(&a->queue_hist, bins);
}

static stats_workflow_agg_t *workflow_find(stats_answer_t *ans, const char *id)
{
    if (ans->workflow_index_cap < 2 * (ans->workflow_len + 1)) {
        size_t cap = ans->workflow_index_cap ? 2 * ans->workflow_index_cap : 64;
        uint32_t *index = calloc(cap, sizeof *index);
        if (index == NULL)
            return NULL;
        for (size_t i = 0; i < ans->workflow_len; i++) {
            size_t s = et_fnv1a64(ans->workflows[i].id, strlen(ans->workflows[i].id)) & (cap - 1);
            while (index[s])
                s = (s + 1) & (cap - 1);
            index[s] = (uint32_t)(i + 1);
        }
        free(ans->workflow_index);
        ans->workflow_index = index;
        ans->workflow_index_cap = cap;
    }
    size_t s = et_fnv1a64(id, strlen(id)) & (ans->workflow_index_cap - 1);
    while (ans->workflow_index[s]) {
        stats_workflow_agg_t *w = &ans->workflows[ans->workflow_index[s] - 1];
        if (strcmp(w->id, id) == 0)
            return w;
        s = (s + 1) & (ans->workflow_index_cap - 1);
    }
    if (ans->workflow_len == ans->workflow_cap) {
        size_t cap = ans->workflow_cap ? 2 * ans->workflow_cap : 64;
        stats_workflow_agg_t *w = realloc(ans->workflows, cap * sizeof *w);
        if (w == NULL)
            return NULL;
        ans->workflows = w;
        ans->workflow_cap = cap;
    }
    stats_workflow_agg_t *w = &ans->workflows[ans->workflow_len];
    snprintf(w->id, sizeof w->id, "%s", id);
    agg_init(&w->agg);
    ans->workflow_index[s] = (uint32_t)(++ans->workflow_len);
    return w;
}

const stats_agg_t *stats_answer_workflow(const stats_answer_t *ans, const char *id)
{
    if (ans->workflow_index_cap == 0)
        return NULL;
    size_t s = et_fnv1a64(id, strlen(id)) & (ans->workflow_index_cap - 1);
    while (ans->workflow_index[s]) {
        const stats_workflow_agg_t *w = &ans->workflows[ans->workflow_index[s] - 1];
        if (strcmp(w->id, id) == 0)
            return &w->agg;
        s = (s + 1) & (ans->workflow_index_cap - 1);
    }
    return NULL;
}

/* Folds one result row into the total, its series bucket and its workflow. */
int stats_answer_add_row(stats_answer_t *ans, const PGresult *res, int row)
{
    for (int c = 0; c < 14; c++)
        if (PQgetisnull(res, row, c))
            return -EINVAL;
    if (PQgetlength(res, row, 0) != 2 || PQgetlength(res, row, 2) != 8 ||
        PQgetlength(res, row, 3) != 2 || PQgetlength(res, row, 4) != 8)
        return -EINVAL;
    const char *workflow = PQgetvalue(res, row, 1);
    /* timestamptz in binary: µs since 2000-01-01 UTC. */
    int64_t bucket = be64(PQgetvalue(res, row, 2)) + ET_TIME_MIN_VALID_US;
    int status = be16(PQgetvalue(res, row, 3));
    uint64_t runs = (uint64_t)be64(PQgetvalue(res, row, 4));
    int64_t sum = be64(PQgetvalue(res, row, 5));
    int64_t min = be64(PQgetvalue(res, row, 6));
    int64_t max = be64(PQgetvalue(res, row, 7));
    int rc = et_hist_decode(&ans->row_bins, (const uint8_t *)PQgetvalue(res, row, 8),
                            (size_t)PQgetlength(res, row, 8));
    if (rc < 0)
        return rc;
    bool queue = (ans->params->measures & API_MEASURE_QUEUE_WAIT) != 0;
    queue_row_t q = {0, 0, 0, 0};
    if (queue) {
        if (PQgetlength(res, row, 9) != 8 || PQgetlength(res, row, 10) != 8 ||
            PQgetlength(res, row, 11) != 8 || PQgetlength(res, row, 12) != 8)
            return -EINVAL;
        q.runs = (uint64_t)be64(PQgetvalue(res, row, 9));
        q.sum = be64(PQgetvalue(res, row, 10));
        q.min = be64(PQgetvalue(res, row, 11));
        q.max = be64(PQgetvalue(res, row, 12));
        rc = et_hist_decode(&ans->row_queue_bins, (const uint8_t *)PQgetvalue(res, row, 13),
                            (size_t)PQgetlength(res, row, 13));
        if (rc < 0)
            return rc;
    }
    /* Failures are runs that ended failed or timed out; cancelled runs are not. */
    uint64_t failed = status == ET_STATUS_FAILED || status == ET_STATUS_TIMEOUT ? runs : 0;
    bool tenant_wide = workflow[0] == '\0';
    if (ans->keep_days && be16(PQgetvalue(res, row, 0)) == ET_RES_DAY) {
        rc = agg_add_row(&ans->days, runs, failed, sum, min, max, &ans->row_bins);
        if (rc < 0)
            return rc;
    }
    bool for_total =
        ans->params->group_by_workflow && !ans->params->has_workflow ? tenant_wide : true;
    if (for_total) {
        agg_add_counts(&ans->total, runs, failed, sum, min, max);
        for (uint32_t i = 0; i < ans->row_bins.len; i++)
            ans->total_dense[ans->row_bins.bins[i].slot] += ans->row_bins.bins[i].count;
        if (queue)
            rc = agg_add_queue(&ans->total, &q, &ans->row_queue_bins);
        if (rc == 0 && ans->has_series) {
            int64_t index = (et_time_floor(bucket, ans->interval) - ans->series_start) /
                            et_resolution_us(ans->interval);
            if (index >= 0 && index < ans->series_count) {
                rc = agg_add_row(&ans->series[index], runs, failed, sum, min, max, &ans->row_bins);
                if (rc == 0 && queue)
                    rc = agg_add_queue(&ans->series[index], &q, &ans->row_queue_bins);
            }
        }
    }
    if (rc == 0 && ans->params->group_by_workflow && !tenant_wide) {
        stats_workflow_agg_t *w = workflow_find(ans, workflow);
        rc = w ? agg_add_row(&w->agg, runs, failed, sum, min, max, &ans->row_bins) : -ENOMEM;
        if (rc == 0 && queue)
            rc = agg_add_queue(&w->agg, &q, &ans->row_queue_bins);
    }
    return rc;
}

int stats_answer_add_days(stats_answer_t *ans, const day_cache_value_t *v)
{
    if (v->runs == 0)
        return 0; /* no run on those days */
    int rc = et_hist_decode(&ans->row_bins, v->bins, v->bins_len);
    if (rc < 0)
        return rc;
    agg_add_counts(&ans->total, v->runs, v->failed, v->sum_us, v->min_us, v->max_us);
    for (uint32_t i = 0; i < ans->row_bins.len; i++)
        ans->total_dense[ans->row_bins.bins[i].slot] += ans->row_bins.bins[i].count;
    return 0;
}

/* --- the body ---------------------------------------------------------------------------- */

/* avg, [median,] min, max and percentiles of the durations of n runs (one sketch: the run
 * times or the queue waits); null where there are none. */
static void write_durations(json_out_t *j, const stats_answer_t *ans, uint64_t n, int64_t sum_us,
                            int64_t min_us, int64_t max_us, const et_hist_t *hist, bool with_median)
{
    bool any = n > 0;
    uint64_t lo = any ? (uint64_t)min_us : 0, hi = any ? (uint64_t)max_us : 0;
    double v;
    jout_key(j, "avg_ms");
    if (any)
        jout_num(j, (double)sum_us / (double)n / 1000.0, 12);
    else
        jout_null(j);
    if (with_median) {
        jout_key(j, "median_ms");
        if (any && et_hist_quantile(hist, 0.5, lo, hi, &v) == 0)
            jout_num(j, v / 1000.0, 6);
        else
            jout_null(j);
    }
    jout_key(j, "min_ms");
    if (any)
        jout_ms(j, min_us);
    else
        jout_null(j);
    jout_key(j, "max_ms");
    if (any)
        jout_ms(j, max_us);
    else
        jout_null(j);
    jout_key(j, "percentiles");
    jout_obj_begin(j);
    for (int i = 0; i < ans->params->percentile_count; i++) {
        jout_key(j, ans->params->percentile_keys[i]);
        if (any && et_hist_quantile(hist, ans->params->percentiles[i], lo, hi, &v) == 0)
            jout_num(j, v / 1000.0, 6);
        else
            jout_null(j);
    }
    jout_obj_end(j);
}

/* Statistics of one aggregate: count, failed, avg, median, min, max, percentiles. */
static void write_stats(json_out_t *j, const stats_answer_t *ans, const stats_agg_t *a,
                        bool with_median)
{
    jout_key(j, "count");
    jout_int(j, (int64_t)a->runs);
    jout_key(j, "failed");
    jout_int(j, (int64_t)a->failed);
    write_durations(j, ans, a->runs, a->sum_us, a->min_us, a->max_us, &a->hist, with_median);
}

/* The queue_wait block of one aggregate: count (runs with queue data),
 * runs_without_queue_data, avg, [median,] min, max, percentiles of their waits. */
static void write_queue_stats(json_out_t *j, const stats_answer_t *ans, const stats_agg_t *a,
                              bool with_median)
{
    jout_key(j, "queue_wait");
    jout_obj_begin(j);
    jout_key(j, "count");
    jout_int(j, (int64_t)a->queue_runs);
    jout_key(j, "runs_without_queue_data");
    jout_int(j, (int64_t)(a->runs - a->queue_runs));
    write_durations(j, ans, a->queue_runs, a->queue_sum_us, a->queue_min_us, a->queue_max_us,
                    &a->queue_hist, with_median);
    jout_obj_end(j);
}

static double sort_key(const stats_answer_t *ans, const stats_agg_t *a)
{
    double v = 0;
    switch (ans->params->sort) {
    case API_SORT_COUNT: return (double)a->runs;
    case API_SORT_AVG: return a->runs ? (double)a->sum_us / (double)a->runs : 0;
    case API_SORT_MAX: return a->runs ? (double)a->max_us : 0;
    case API_SORT_P95:
        if (a->runs &&
            et_hist_quantile(&a->hist, 0.95, (uint64_t)a->min_us, (uint64_t)a->max_us, &v) == 0)
            return v;
        return 0;
    }
    return 0;
}

static int compare_workflows(const void *pa, const void *pb)
{
    const stats_workflow_agg_t *a = pa, *b = pb;
    if (a->sort_key != b->sort_key)
        return a->sort_key > b->sort_key ? -1 : 1; /* descending */
    return strcmp(a->id, b->id);
}

char *stats_answer_render(stats_answer_t *ans, const char *tenant, const plan_t *plan, size_t limit,
                          size_t *len, bool *too_large)
{
    const api_params_t *p = ans->params;
    *too_large = false;
    for (uint32_t slot = 0; slot <= et_sketch_max_slot(); slot++)
        if (ans->total_dense[slot] &&
            et_hist_add(&ans->total.hist, slot, ans->total_dense[slot]) < 0)
            return NULL;
    json_out_t j;
    json_out_init(&j);
    json_out_set_limit(&j, limit);
    jout_obj_begin(&j);
    jout_key(&j, "tenant_id");
    jout_str(&j, tenant);
    jout_key(&j, "workflow_id");
    if (p->has_workflow)
        jout_str(&j, p->workflow_id);
    else
        jout_null(&j);
    jout_key(&j, "status");
    jout_str(&j, p->status_text);
    jout_key(&j, "start_date");
    jout_time(&j, plan->start_us);
    jout_key(&j, "end_date");
    jout_time(&j, plan->end_us);
    bool queue = (p->measures & API_MEASURE_QUEUE_WAIT) != 0;
    write_stats(&j, ans, &ans->total, true);
    if (queue)
        write_queue_stats(&j, ans, &ans->total, true);
    jout_key(&j, "relative_error");
    jout_num(&j, ET_SKETCH_ALPHA, 6);
    jout_key(&j, "coarsened");
    jout_bool(&j, plan->coarsened);
    if (ans->has_series) {
        jout_key(&j, "interval");
        jout_str(&j, et_resolution_name(ans->interval));
        jout_key(&j, "series");
        jout_arr_begin(&j);
        for (int64_t i = 0; i < ans->series_count; i++) {
            jout_obj_begin(&j);
            jout_key(&j, "bucket_start");
            jout_time(&j, ans->series_start + i * et_resolution_us(ans->interval));
            write_stats(&j, ans, &ans->series[i], false);
            if (queue)
                write_queue_stats(&j, ans, &ans->series[i], false);
            jout_obj_end(&j);
        }
        jout_arr_end(&j);
    }
    if (p->group_by_workflow) {
        for (size_t i = 0; i < ans->workflow_len; i++)
            ans->workflows[i].sort_key = sort_key(ans, &ans->workflows[i].agg);
        qsort(ans->workflows, ans->workflow_len, sizeof *ans->workflows, compare_workflows);
        jout_key(&j, "workflows");
        jout_arr_begin(&j);
        for (size_t i = 0; i < ans->workflow_len && i < (size_t)p->limit; i++) {
            jout_obj_begin(&j);
            jout_key(&j, "workflow_id");
            jout_str(&j, ans->workflows[i].id);
            write_stats(&j, ans, &ans->workflows[i].agg, true);
            if (queue)
                write_queue_stats(&j, ans, &ans->workflows[i].agg, true);
            jout_obj_end(&j);
        }
        jout_arr_end(&j);
        /* Counted before the limit: how many the caller did not get, and whether to ask
         * again with a larger limit. */
        jout_key(&j, "workflows_total");
        jout_int(&j, (int64_t)ans->workflow_len);
    }
    if (p->include_histogram) {
        jout_key(&j, "histogram");
        jout_arr_begin(&j);
        for (uint32_t i = 0; i < ans->total.hist.len; i++) {
            jout_obj_begin(&j);
            jout_key(&j, "le_ms");
            jout_num(&j, et_sketch_slot_upper(ans->total.hist.bins[i].slot) / 1000.0, 6);
            jout_key(&j, "count");
            jout_int(&j, (int64_t)ans->total.hist.bins[i].count);
            jout_obj_end(&j);
        }
        jout_arr_end(&j);
    }
    jout_obj_end(&j);
    if (json_out_too_large(&j)) {
        json_out_free(&j);
        *too_large = true;
        return NULL;
    }
    return json_out_take(&j, len);
}
