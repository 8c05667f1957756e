/*
 * stats_answer — the numbers of one statistics answer and their JSON body. Rollup rows
 * are folded in as they arrive: into the total (bins counted per slot, the hot path), the
 * series bucket of the row, the row's workflow for group_by, and, when asked, a separate
 * merge of the day rows for day_cache. Then the body of DESIGN section 5 is rendered,
 * percentiles read off the merged bins.
 *
 * Ownership: stats_answer_t owns its arrays and borrows params (which must outlive it);
 * stats_answer_free releases everything. Functions return 0, -ENOMEM, or -EINVAL for a
 * row that does not read as the rows query's (binary) columns.
 */
#ifndef EXECTIME_STATS_ANSWER_H
#define EXECTIME_STATS_ANSWER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_params.h"
#include "day_cache.h"
#include "event_codec.h"
#include "query_plan.h"
#include "sketch.h"
#include "timeutil.h"

typedef struct stats_agg {
    uint64_t runs;
    uint64_t failed; /* runs that ended failed or timed out */
    int64_t sum_us;
    int64_t min_us;
    int64_t max_us;
    et_hist_t hist;
    /* The queue wait of the queue_runs runs (of runs) that carried enqueued_at; folded
     * only when the question asks for it. */
    uint64_t queue_runs;
    int64_t queue_sum_us;
    int64_t queue_min_us;
    int64_t queue_max_us;
    et_hist_t queue_hist;
} stats_agg_t;

typedef struct stats_workflow_agg {
    char id[ET_WORKFLOW_ID_MAX + 1];
    stats_agg_t agg;
    double sort_key;
} stats_workflow_agg_t;

typedef struct stats_answer {
    const api_params_t *params;
    stats_agg_t total;        /* its bins accumulate in total_dense until rendered */
    uint64_t *total_dense;    /* one count per slot: O(1) per bin */
    et_hist_t row_bins;       /* the bins of the row being folded */
    et_hist_t row_queue_bins; /* and its queue-wait bins */
    bool has_series;
    et_resolution_t interval;
    int64_t series_start;
    int64_t series_count;
    stats_agg_t *series;
    stats_workflow_agg_t *workflows;
    size_t workflow_len, workflow_cap;
    uint32_t *workflow_index; /* open addressing: 1 + position; 0 empty */
    size_t workflow_index_cap;
    bool keep_days; /* merge the day rows into days too */
    stats_agg_t days;
} stats_answer_t;

__attribute__((warn_unused_result)) int stats_answer_init(stats_answer_t *a,
                                                          const api_params_t *params);
void stats_answer_free(stats_answer_t *a);

/* A series of count buckets of interval from start_us (aligned). */
__attribute__((warn_unused_result)) int stats_answer_set_series(stats_answer_t *a,
                                                                et_resolution_t interval,
                                                                int64_t start_us, int64_t count);

/* One row of the rows query: resolution, workflow, bucket, status, runs, sum_us, min_us,
 * max_us, hist, queue_runs, queue_sum_us, queue_min_us, queue_max_us, queue_hist, in
 * binary (the queue columns read only when params->measures asks for queue wait). A tenant-wide row (workflow "") counts for the total unless
 * group_by reads per-workflow rows, which then count only for their workflow. */
__attribute__((warn_unused_result)) int stats_answer_add_row(stats_answer_t *a, const PGresult *res,
                                                             int row);

/* The merged rows of workflow id (group_by), or NULL when no row named it. */
const stats_agg_t *stats_answer_workflow(const stats_answer_t *a, const char *id);

/* Whole days from day_cache, added to the total. */
__attribute__((warn_unused_result)) int stats_answer_add_days(stats_answer_t *a,
                                                              const day_cache_value_t *v);

/*
 * The JSON body for tenant over the plan's range, at most limit bytes: malloc'd, its
 * length in *len. NULL with *too_large set when it would pass limit, NULL alone when out
 * of memory.
 */
char *stats_answer_render(stats_answer_t *a, const char *tenant, const plan_t *plan, size_t limit,
                          size_t *len, bool *too_large);

#endif
