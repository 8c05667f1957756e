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
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_SUCCESS, T0 + 61 * ET_US_PER_SEC, 5), 0);
    cr_assert_eq(set.len, 6);
    for (int r = 0; r < ET_RES_COUNT; r++) {
        rollup_delta_t *wf = rollup_set_find(&set, (et_resolution_t)r, "t", "wf",
                                             et_time_floor(T0 + 61 * ET_US_PER_SEC, (et_resolution_t)r),
                                             ET_STATUS_SUCCESS);
        rollup_delta_t *all = rollup_set_find(&set, (et_resolution_t)r, "t", "",
                                              wf ? wf->bucket_us : 0, ET_STATUS_SUCCESS);
        cr_assert_not_null(wf);
        cr_assert_not_null(all);
        cr_assert_eq(wf->runs, 1);
        cr_assert_eq(all->sum_us, 5);
    }
    cr_assert_eq(rollup_set_find(&set, ET_RES_MINUTE, "t", "wf", T0 + ET_US_PER_MIN, ET_STATUS_SUCCESS)->bucket_us,
                 T0 + ET_US_PER_MIN);
    rollup_set_free(&set);
}

Test(rollup_delta, sums_min_max_and_bins_add_up_per_key)
{
    rollup_set_t set;
    rollup_set_init(&set, 1000);
    int64_t durations[] = {0, 1, 1000, 1000, 999999, 30LL * 24 * 3600 * 1000000};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0 + (int64_t)i, durations[i]), 0);
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
    cr_assert_eq(rollup_set_add(&set, "t", "all", ET_STATUS_SUCCESS, T0, 1), 0);
    cr_assert_eq(rollup_set_add(&set, "t", "*", ET_STATUS_SUCCESS, T0, 1), 0);
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
                                    (et_status_t)(i % 4), T0 + (int64_t)i * 37 * ET_US_PER_SEC,
                                    i),
                     0);
    rollup_set_sort(&set);
    for (size_t i = 1; i < set.len; i++) {
        const rollup_delta_t *a = &set.deltas[i - 1], *b = &set.deltas[i];
        int c = a->resolution != b->resolution ? (a->resolution < b->resolution ? -1 : 1)
              : strcmp(a->tenant_id, b->tenant_id) ? strcmp(a->tenant_id, b->tenant_id)
              : strcmp(a->workflow_id, b->workflow_id) ? strcmp(a->workflow_id, b->workflow_id)
              : a->bucket_us != b->bucket_us ? (a->bucket_us < b->bucket_us ? -1 : 1)
              : (int)a->status - (int)b->status;
        cr_assert_lt(c, 0, "deltas %zu and %zu out of order or repeated", i - 1, i);
    }
    rollup_set_reset(&set);
    cr_assert_eq(set.len, 0);
    cr_assert_eq(rollup_set_add(&set, "a", "w", ET_STATUS_SUCCESS, T0, 1), 0);
    cr_assert_eq(set.len, 6);
    rollup_set_free(&set);
}

Test(rollup_delta, refuses_keys_beyond_its_limit)
{
    rollup_set_t set;
    rollup_set_init(&set, 8);
    cr_assert_eq(rollup_set_add(&set, "t", "w", ET_STATUS_SUCCESS, T0, 1), 0);
    cr_assert_eq(rollup_set_add(&set, "t", "w2", ET_STATUS_SUCCESS, T0, 1), -ENOBUFS);
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
    cr_assert_eq(rollup_set_add(&set, "t", "wf", ET_STATUS_FAILED, T0, 7), 0);
    cr_assert_eq(set.len, 6);
    rollup_set_free(&set);
}
