/*
 * rollup_delta — adds up, in memory, what one batch's inserted runs change in the rollups:
 * for each run, its minute, hour and day buckets, for its workflow and for the tenant-wide
 * rollup (workflow ""), keyed by status. The writer then upserts each key once, in one
 * fixed order, so concurrent agents lock rows in the same order and never deadlock.
 *
 * Retention: a set given rollup_set_retain folds a run into the minute (hour) rollups
 * only when it finished inside that resolution's window, et_retention_start(now, days):
 * older buckets are deleted by the next maintenance anyway, and verify checks exactly those
 * windows. The writer, verify and rollup-rebuild share this one rule. Without it every run
 * is folded into every resolution.
 *
 * Ownership: the set owns its deltas, their histograms and key strings (copied on add, into
 * blocks that never move; a delta holds pointers to them, valid until rollup_set_reset).
 * rollup_set_reset keeps the allocations for the next batch (the first block of names). Functions return 0 or -ENOMEM;
 * -ENOBUFS when the set would exceed its limit of keys.
 */
#ifndef EXECTIME_ROLLUP_DELTA_H
#define EXECTIME_ROLLUP_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "copy_text.h"
#include "event_codec.h"
#include "sketch.h"
#include "timeutil.h"

typedef struct rollup_delta {
    et_resolution_t resolution;
    const char *tenant_id;   /* in the set's names: valid until rollup_set_reset */
    const char *workflow_id; /* "" for the tenant-wide rollup */
    int64_t bucket_us;
    et_status_t status;
    uint64_t runs;
    uint64_t stored_runs; /* of runs, those already stored (the writer's merge); 0 */
    int64_t sum_us;
    int64_t min_us;
    int64_t max_us;
    et_hist_t hist;
    /* The queue-wait sketch of the runs that carried enqueued_at: queue_runs of runs
     * (stored ones included, like runs); queue_min_us/queue_max_us mean something only
     * when queue_runs > 0. */
    uint64_t queue_runs;
    int64_t queue_sum_us;
    int64_t queue_min_us;
    int64_t queue_max_us;
    et_hist_t queue_hist;
    uint32_t hash;
} rollup_delta_t;

/* Blocks of NUL-terminated key strings that never move, so deltas can point into them. */
typedef struct rollup_names_block rollup_names_block_t;

typedef struct rollup_set {
    rollup_delta_t *deltas; /* deltas[0..len) in use */
    size_t len;
    size_t cap;
    uint32_t *index;             /* open addressing: 1 + position in deltas, 0 empty */
    size_t index_cap;            /* power of two, at least 2 * len */
    size_t limit;                /* most keys */
    rollup_names_block_t *names; /* the first block; the one being filled is last */
    rollup_names_block_t *names_tail;
    const char *last_tenant; /* the last names added: a run's six keys share them */
    const char *last_workflow;
    int retain_days[ET_RES_COUNT];       /* 0: every run folded into that resolution */
    int64_t not_before_us[ET_RES_COUNT]; /* runs finished earlier are not folded there */
} rollup_set_t;

void rollup_set_init(rollup_set_t *set, size_t limit);
void rollup_set_free(rollup_set_t *set);
/* Empties the set; with a retention configured, also moves its windows to the clock's
 * now (one clock reading per batch). */
void rollup_set_reset(rollup_set_t *set);

/*
 * Configures the retention windows: minute_days and hour_days as in the configuration
 * (0: kept for ever), windows computed from now_us until the next rollup_set_reset, which
 * reads the clock again. Day rollups are kept for ever. The writer calls it once after
 * rollup_set_init; verify calls it with the instant its own range was computed from.
 */
void rollup_set_retain(rollup_set_t *set, int minute_days, int hour_days, int64_t now_us);

/* No queue wait: the run carried no enqueued_at. */
#define ROLLUP_NO_QUEUE_WAIT (-1)

/* Folds one inserted run into its six rollup keys, fewer when it finished before the
 * retention window of a resolution (rollup_set_retain). queue_wait_us is the run's wait
 * (0..ET_DURATION_MAX_US) or ROLLUP_NO_QUEUE_WAIT: only runs with one fold the queue
 * sketch. */
__attribute__((warn_unused_result)) int rollup_set_add(rollup_set_t *set, const char *tenant_id,
                                                       const char *workflow_id, et_status_t status,
                                                       int64_t finished_us, int64_t duration_us,
                                                       int64_t queue_wait_us);

/* The delta of one key, or NULL. Only valid before rollup_set_sort. */
rollup_delta_t *rollup_set_find(rollup_set_t *set, et_resolution_t res, const char *tenant_id,
                                const char *workflow_id, int64_t bucket_us, et_status_t status);

/*
 * Appends one delta as a COPY text row: [resolution,] tenant_id, workflow_id, bucket,
 * status, runs, sum_us, min_us, max_us, hist (bytea, et_hist_encode), queue_runs,
 * queue_sum_us, queue_min_us, queue_max_us, queue_hist (0 and empty without queue data).
 * ROLLUP_COPY_COLUMNS names them in that order; the writer's staging table's resolution
 * column goes in front when asked.
 */
__attribute__((warn_unused_result)) int rollup_delta_copy_row(const rollup_delta_t *d,
                                                              bool with_resolution,
                                                              copy_buf_t *out);

#define ROLLUP_COPY_COLUMNS                                                                        \
    "tenant_id, workflow_id, bucket, status, runs, sum_us, min_us, max_us, hist, queue_runs,"      \
    " queue_sum_us, queue_min_us, queue_max_us, queue_hist"

/* The same row with the bins of stored and stored_queue (either may be NULL) added to the
 * delta's own: the writer merges a stored row's counts into the delta, and its bins only
 * here, so a delta never grows to the stored row's size. -ERANGE when a count would pass
 * 2^64. */
__attribute__((warn_unused_result)) int rollup_delta_copy_row_with(const rollup_delta_t *d,
                                                                   const et_hist_t *stored,
                                                                   const et_hist_t *stored_queue,
                                                                   bool with_resolution,
                                                                   copy_buf_t *out);

/* Appends the key columns tenant_id, workflow_id, bucket, status (first: tenant_id opens
 * the row, else a tab comes before it); the row is not ended. */
__attribute__((warn_unused_result)) int rollup_delta_copy_key(const rollup_delta_t *d, bool first,
                                                              copy_buf_t *out);

/* Sorts deltas by (resolution, tenant, workflow, bucket, status); the index is dropped. */
void rollup_set_sort(rollup_set_t *set);

#endif
