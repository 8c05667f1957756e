/* Unit tests for agent/rollup_delta: six keys per run, exact sums, key order. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "rollup_delta.h"
#include "timeutil.h"

#define T0 1764547200000000LL /* 2025-12-01T00:00:00Z */

Test(rollup_delta, one_run_touches_three_resolutions_for_workflow_and_tenant)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, T0 + 61 * ET_US_PER_SEC, 5,
                                ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(set.len, 6);
    for (int r = 0; r < ET_RES_COUNT; r++) {
        rollup_delta_t *wf = rollup_set_find(
            &set, (et_resolution_t)r, "t", "wf",
            et_time_floor(T0 + 61 * ET_US_PER_SEC, (et_resolution_t)r), ET_STATUS_SUCCESS);
        rollup_delta_t *all = rollup_set_find(&set, (et_resolution_t)r, "t", "",
                                              wf ? wf->bucket_us : 0, ET_STATUS_SUCCESS);
        cr_assert_not_null(wf);
        cr_assert_not_null(all);
        cr_assert_eq(wf->runs, 1);
        cr_assert_eq(all->sum_us, 5);
    }
    cr_assert_eq(
        rollup_set_find(&set, ET_RES_MINUTE, "t", "wf", T0 + ET_US_PER_MIN, ET_STATUS_SUCCESS)
            ->bucket_us,
        T0 + ET_US_PER_MIN);
    rollup_set_free(&set);
}

Test(rollup_delta, sums_min_max_and_bins_add_up_per_key)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    int64_t durations[] = {0, 1, 1000, 1000, 999999, 30LL * 24 * 3600 * 1000000};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0 + (int64_t)i,
                                    durations[i], ROLLUP_NO_QUEUE_WAIT),
                     0);
    rollup_delta_t *d = rollup_set_find(&set, ET_RES_DAY, "t", "", T0, ET_STATUS_FAILED);
    cr_assert_not_null(d);
    cr_assert_eq(d->runs, 6);
    cr_assert_eq(d->sum_us, 0 + 1 + 1000 + 1000 + 999999 + 30LL * 24 * 3600 * 1000000);
    cr_assert_eq(d->min_us, 0);
    cr_assert_eq(d->max_us, 30LL * 24 * 3600 * 1000000);
    cr_assert_eq(et_hist_total(&d->hist), 6);
    cr_assert_eq(d->hist.bins[0].slot, 0); /* the 0 µs bin has a slot of its own */
    rollup_set_free(&set);
}

Test(rollup_delta, a_workflow_named_like_nothing_else_never_meets_the_tenant_wide_key)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    cr_assert_eq(rollup_set_add(&set, "t", "all", ET_STATUS_SUCCESS, T0, 1, ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(rollup_set_add(&set, "t", "*", ET_STATUS_SUCCESS, T0, 1, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(rollup_set_find(&set, ET_RES_DAY, "t", "", T0, ET_STATUS_SUCCESS)->runs, 2);
    cr_assert_eq(rollup_set_find(&set, ET_RES_DAY, "t", "all", T0, ET_STATUS_SUCCESS)->runs, 1);
    rollup_set_free(&set);
}

Test(rollup_delta, sort_orders_by_resolution_tenant_workflow_bucket_status)
{
    rollup_set_t set;
    rollup_set_init(&set, 100000);
    const char *tenants[] = {"b", "a", "c"};
    for (int i = 0; i < 3000; i++)
        cr_assert_eq(rollup_set_add(&set, tenants[i % 3], (i % 7) ? "w2" : "w1",
                                    (et_status_t)(i % 4), T0 + (int64_t)i * 37 * ET_US_PER_SEC, i,
                                    ROLLUP_NO_QUEUE_WAIT),
                     0);
    rollup_set_sort(&set);
    for (size_t i = 1; i < set.len; i++) {
        const rollup_delta_t *a = &set.deltas[i - 1], *b = &set.deltas[i];
        int c = a->resolution != b->resolution           ? (a->resolution < b->resolution ? -1 : 1)
                : strcmp(a->tenant_id, b->tenant_id)     ? strcmp(a->tenant_id, b->tenant_id)
                : strcmp(a->workflow_id, b->workflow_id) ? strcmp(a->workflow_id, b->workflow_id)
                : a->bucket_us != b->bucket_us           ? (a->bucket_us < b->bucket_us ? -1 : 1)
                                                         : (int)a->status - (int)b->status;
        cr_assert_lt(c, 0, "deltas %zu and %zu out of order or repeated", i - 1, i);
    }
    rollup_set_reset(&set);
    cr_assert_eq(set.len, 0);
    cr_assert_eq(rollup_set_add(&set, "a", "w", ET_STATUS_SUCCESS, T0, 1, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(set.len, 6);
    rollup_set_free(&set);
}

Test(rollup_delta, refuses_keys_beyond_its_limit)
{
    rollup_set_t set;
    rollup_set_init(&set, 8);
    cr_assert_eq(rollup_set_add(&set, "t", "w", ET_STATUS_SUCCESS, T0, 1, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(rollup_set_add(&set, "t", "w2", ET_STATUS_SUCCESS, T0, 1, ROLLUP_NO_QUEUE_WAIT),
                 -ENOBUFS);
    rollup_set_free(&set);
}

/* A batch made only of duplicates folds nothing: sorting a set that never held a key is fine. */
Test(rollup_delta, sorting_a_set_that_never_held_a_key_is_fine)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    rollup_set_sort(&set);
    cr_assert_eq(set.len, 0);
    rollup_set_reset(&set);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0, 7, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(set.len, 6);
    rollup_set_free(&set);
}

/* Keys the set holds at one resolution. */
static size_t count_resolution(const rollup_set_t *set, et_resolution_t res)
{
    size_t n = 0;
    for (size_t i = 0; i < set->len; i++)
        n += set->deltas[i].resolution == res;
    return n;
}

/* Minute retention 14 days at 2025-12-15T10:00Z: the window starts 2025-12-02T00:00Z. Its
 * first microsecond is folded at every resolution, the one before it only into hours and
 * days. */
Test(rollup_delta, runs_before_the_minute_window_skip_minute_rollups)
{
    int64_t now = T0 + 14 * ET_US_PER_DAY + 10 * ET_US_PER_HOUR;
    int64_t window = T0 + ET_US_PER_DAY;
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    rollup_set_retain(&set, 14, 400, now);

    cr_assert_eq(
        rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, window - 1, 7, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(count_resolution(&set, ET_RES_MINUTE), 0, "a run before the window in minutes");
    cr_assert_eq(count_resolution(&set, ET_RES_HOUR), 2);
    cr_assert_eq(count_resolution(&set, ET_RES_DAY), 2);

    cr_assert_eq(
        rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, window, 9, ROLLUP_NO_QUEUE_WAIT), 0);
    cr_assert_eq(count_resolution(&set, ET_RES_MINUTE), 2, "the window's first microsecond");
    rollup_delta_t *m = rollup_set_find(&set, ET_RES_MINUTE, "t", "wf", window, ET_STATUS_SUCCESS);
    cr_assert(m != NULL && m->runs == 1 && m->sum_us == 9);
    rollup_delta_t *d = rollup_set_find(&set, ET_RES_DAY, "t", "", T0, ET_STATUS_SUCCESS);
    cr_assert(d != NULL && d->runs == 1 && d->sum_us == 7, "the day before holds the older run");
    rollup_set_free(&set);
}

Test(rollup_delta, hour_window_applies_to_hour_rollups_and_days_are_kept_for_ever)
{
    int64_t now = T0 + 2 * ET_US_PER_DAY + ET_US_PER_HOUR; /* 2025-12-03T01:00Z */
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    rollup_set_retain(&set, 1, 2, now); /* minutes from 12-03, hours from 12-02 */

    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0 - 1, 1, ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0 + ET_US_PER_DAY, 2,
                                ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0 + 2 * ET_US_PER_DAY, 3,
                                ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(count_resolution(&set, ET_RES_MINUTE), 2);
    cr_assert_eq(count_resolution(&set, ET_RES_HOUR), 4);
    cr_assert_eq(count_resolution(&set, ET_RES_DAY), 6);
    rollup_set_free(&set);
}

Test(rollup_delta, without_retention_every_run_is_folded_everywhere)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, ET_TIME_MIN_VALID_US, 1,
                                ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(set.len, 6);
    rollup_set_retain(&set, 0, 0, T0);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, ET_TIME_MIN_VALID_US + 1, 1,
                                ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(set.len, 6, "0 days means kept for ever");
    rollup_set_free(&set);
}

/* The writer resets the set before each batch: the windows follow the clock then, so a
 * long-running agent keeps moving them; the configuration survives the reset. */
Test(rollup_delta, reset_moves_the_windows_to_the_clock)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    rollup_set_retain(&set, 14, 400, T0);
    cr_assert_eq(set.not_before_us[ET_RES_MINUTE], T0 - 13 * ET_US_PER_DAY);
    rollup_set_reset(&set);
    int64_t now = et_now_us();
    cr_assert_eq(set.not_before_us[ET_RES_MINUTE], et_retention_start(now, 14));
    cr_assert_eq(set.not_before_us[ET_RES_HOUR], et_retention_start(now, 400));
    cr_assert_eq(set.not_before_us[ET_RES_DAY], INT64_MIN);
    rollup_set_free(&set);
}

Test(rollup_delta, queue_wait_folds_only_runs_that_have_one)
{
    rollup_set_t set;
    rollup_set_init(&set, 100);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, T0, 5, 40), 0);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, T0, 6, ROLLUP_NO_QUEUE_WAIT),
                 0);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, T0, 7, 0), 0);
    rollup_delta_t *d = rollup_set_find(&set, ET_RES_DAY, "t", "", et_time_floor(T0, ET_RES_DAY),
                                        ET_STATUS_SUCCESS);
    cr_assert_not_null(d);
    cr_assert_eq(d->runs, 3);
    cr_assert_eq(d->queue_runs, 2);
    cr_assert_eq(d->queue_sum_us, 40);
    cr_assert_eq(d->queue_min_us, 0);
    cr_assert_eq(d->queue_max_us, 40);
    cr_assert_eq(d->queue_hist.len, 2);

    copy_buf_t out;
    copy_buf_init(&out, 1 << 16);
    cr_assert_eq(rollup_delta_copy_row(d, false, &out), 0);
    cr_assert_eq(copy_buf_raw(&out, "", 1), 0);
    /* runs, sum, min, max, hist, then queue_runs, queue_sum, queue_min, queue_max */
    cr_assert(strstr(out.data, "\t3\t18\t5\t7\t\\\\x") != NULL, "%s", out.data);
    cr_assert(strstr(out.data, "\t2\t40\t0\t40\t\\\\x") != NULL, "%s", out.data);
    copy_buf_free(&out);
    rollup_set_free(&set);
}

Test(rollup_delta, a_key_without_queue_data_writes_zeros_and_an_empty_histogram)
{
    rollup_set_t set;
    rollup_set_init(&set, 100);
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0, 5, ROLLUP_NO_QUEUE_WAIT), 0);
    copy_buf_t out;
    copy_buf_init(&out, 1 << 16);
    cr_assert_eq(rollup_delta_copy_row(&set.deltas[0], false, &out), 0);
    cr_assert_eq(copy_buf_raw(&out, "", 1), 0);
    size_t n = strlen(out.data);
    const char *tail = "\t0\t0\t0\t0\t\\\\x\n";
    cr_assert(n > strlen(tail) && strcmp(out.data + n - strlen(tail), tail) == 0, "%s", out.data);
    copy_buf_free(&out);
    rollup_set_free(&set);
}
