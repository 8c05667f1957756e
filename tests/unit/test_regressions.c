/* Unit tests for agent/regressions: the confidence of a rise (docs/api.md). */
#include <criterion/criterion.h>
#include <math.h>

#include "regressions.h"
#include "sketch.h"

/* n runs with durations base_us * (0.5 + i/n), i = 0..n-1, scaled by factor. */
static void fill(stats_agg_t *a, int n, double base_us, double factor)
{
    memset(a, 0, sizeof *a);
    et_hist_init(&a->hist);
    a->min_us = INT64_MAX;
    a->max_us = INT64_MIN;
    for (int i = 0; i < n; i++) {
        int64_t d = llround(base_us * (0.5 + (double)i / n) * factor);
        cr_assert_eq(et_hist_add(&a->hist, et_sketch_slot((uint64_t)d), 1), 0);
        a->runs++;
        a->sum_us += d;
        if (d < a->min_us)
            a->min_us = d;
        if (d > a->max_us)
            a->max_us = d;
    }
}

static double confidence(int n_prev, double base_prev, int n_cur, double base_cur, double q)
{
    stats_agg_t prev, cur;
    fill(&prev, n_prev, base_prev, 1.0);
    fill(&cur, n_cur, base_cur, 1.0);
    double c = regressions_percentile_confidence(&prev, &cur, q, ET_SKETCH_ALPHA);
    et_hist_free(&prev.hist);
    et_hist_free(&cur.hist);
    return c;
}

Test(regressions, a_large_rise_over_many_runs_is_near_certain)
{
    double c = confidence(400, 100000, 400, 150000, 0.95);
    cr_assert(c > 0.9999, "confidence %f", c);
}

Test(regressions, a_rise_within_the_sketchs_combined_error_has_no_confidence)
{
    for (double f = 1.0; f <= 1.02; f += 0.0025) {
        double c = confidence(1000, 100000, 1000, 100000 * f, 0.95);
        cr_assert_eq(c, 0.0, "a rise of %.2f%% gave confidence %f", (f - 1) * 100, c);
    }
}

Test(regressions, a_fall_has_no_confidence)
{
    cr_assert_eq(confidence(400, 100000, 400, 70000, 0.95), 0.0);
    cr_assert_eq(confidence(400, 100000, 400, 100000, 0.5), 0.0);
}

Test(regressions, fewer_runs_give_less_confidence_in_the_same_rise)
{
    double many = confidence(2000, 100000, 2000, 110000, 0.95);
    double few = confidence(40, 100000, 40, 110000, 0.95);
    cr_assert(many > few, "2000 runs: %f, 40 runs: %f", many, few);
    cr_assert(few >= 0 && many <= 1);
}

Test(regressions, a_rise_of_the_tail_alone_is_judged_at_the_asked_percentile)
{
    stats_agg_t prev, cur;
    fill(&prev, 1000, 100000, 1.0);
    fill(&cur, 1000, 100000, 1.0);
    /* The slowest 2% of the current runs became ten times slower. */
    int64_t slow = 10 * 150000;
    cr_assert_eq(et_hist_add(&cur.hist, et_sketch_slot((uint64_t)slow), 20), 0);
    cur.runs += 20;
    cur.max_us = slow;
    cr_assert(regressions_percentile_confidence(&prev, &cur, 0.995, ET_SKETCH_ALPHA) > 0.9);
    cr_assert_eq(regressions_percentile_confidence(&prev, &cur, 0.5, ET_SKETCH_ALPHA), 0.0);
    et_hist_free(&prev.hist);
    et_hist_free(&cur.hist);
}

Test(regressions, failure_rate_confidence_is_the_two_proportion_z_test)
{
    /* 8/400 against 80/400: pooled 0.11, z = 0.18 / sqrt(0.11 * 0.89 * 2 / 400) = 8.14. */
    double c = regressions_rate_confidence(8, 400, 80, 400);
    cr_assert(c > 0.999999, "confidence %f", c);
    /* 10/100 against 15/100: pooled 0.125, z = 0.05 / sqrt(0.125 * 0.875 * 0.02) = 1.069,
     * 2 * Phi(z) - 1 = 0.715. */
    c = regressions_rate_confidence(10, 100, 15, 100);
    cr_assert(fabs(c - 0.715) < 0.001, "confidence %f", c);
    cr_assert_eq(regressions_rate_confidence(15, 100, 10, 100), 0.0);
    cr_assert_eq(regressions_rate_confidence(0, 100, 0, 100), 0.0);
    cr_assert_eq(regressions_rate_confidence(5, 100, 5, 100), 0.0);
    cr_assert_eq(regressions_rate_confidence(0, 0, 5, 100), 0.0);
    cr_assert(regressions_rate_confidence(0, 100, 3, 100) > 0);
}
