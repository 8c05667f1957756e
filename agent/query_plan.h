/*
 * query_plan — decides which rollup rows answer a time range: whole days from the day
 * rollup, whole hours at the edges from the hour rollup, minutes at the outer edges from
 * the minute rollup, so a 30-day question reads about 130 rows instead of 43,200.
 * Where minute or hour rows are past their retention, the plan widens to the coarser
 * buckets that still exist and reports the wider range it really covers.
 *
 * Also the arithmetic of a series: how many buckets an interval gives over a range, and
 * which interval "auto" means.
 *
 * Pure functions: no allocation, no I/O, no clock. The caller owns every struct.
 */
#ifndef EXECTIME_QUERY_PLAN_H
#define EXECTIME_QUERY_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "timeutil.h"

/* Minute, hour, day, hour, minute: the most a canonical plan can need. */
#define PLAN_PIECES_MAX 5

/* Buckets of res whose bucket start is in [from_us, to_us); both aligned to res. */
typedef struct plan_piece {
    et_resolution_t res;
    int64_t from_us;
    int64_t to_us;
} plan_piece_t;

/* Rollup rows with a bucket start below these no longer exist (need not be aligned). */
typedef struct plan_retention {
    int64_t minute_oldest_us;
    int64_t hour_oldest_us;
} plan_retention_t;

typedef struct plan {
    int count;                            /* pieces used, 1..PLAN_PIECES_MAX */
    plan_piece_t pieces[PLAN_PIECES_MAX]; /* in time order, contiguous, no overlap; adjacent
                                             pieces differ in resolution */
    int64_t start_us;                     /* what the pieces cover exactly: may be wider */
    int64_t end_us;                       /*   than asked when coarsened */
    bool coarsened;                       /* minute or hour data past its retention forced
                                             a coarser bucket (then start/end moved) */
} plan_t;

/**
 * Plans [start_us, end_us) with the fewest rollup rows, never using a resolution coarser
 * than max_res (ET_RES_DAY for a summary; the series interval for a series, so each row
 * falls in one series bucket). Minute pieces that reach before ret->minute_oldest_us are
 * widened to their covering hours, hour pieces before ret->hour_oldest_us to their
 * covering days, as far as max_res allows; a piece max_res keeps from widening stays as
 * it is (its expired buckets simply read as empty).
 *
 * @param start_us, end_us  minute-aligned, start_us < end_us, each within ±2^61 µs
 * @param ret               retention boundaries; NULL means every rollup row still exists
 * @param out               filled on success, untouched on error
 * @return 0, or -EINVAL for a bad range or max_res
 */
__attribute__((warn_unused_result)) int plan_range(int64_t start_us, int64_t end_us,
                                                   et_resolution_t max_res,
                                                   const plan_retention_t *ret, plan_t *out);

/**
 * Number of series buckets of interval over [start_us, end_us): buckets aligned to the
 * interval in UTC, the first and last possibly partial (clipped to the range).
 * @return the count, 0 when start_us >= end_us, -EINVAL for a bad interval
 */
int64_t plan_series_buckets(int64_t start_us, int64_t end_us, et_resolution_t interval);

/* The interval "auto" stands for: minute up to 240 minutes, hour up to 240 hours, else
 * day, so a series has at most about 240 points. */
et_resolution_t plan_auto_interval(int64_t start_us, int64_t end_us);

#endif
