/*
 * Unit tests for common/sketch: the exact bin mapping, the sparse histogram and the
 * percentile_disc-compatible quantiles with their 1% guarantee.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"

/* Relative tolerance of the guarantee, plus room for double rounding of 2γ^k/(γ+1). */
#define REL_TOL (ET_SKETCH_ALPHA * (1.0 + 1e-9))
#define TWO_PI 6.283185307179586

/* splitmix64: a fixed-seed generator so every run sees the same data. */
typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box-Muller. */
static double rng_normal(rng_t *r)
{
    double u1 = 1.0 - rng_unit(r); /* (0, 1]: log stays finite */
    double u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

static uint64_t clamp_duration(double us)
{
    if (us < 0.0)
        return 0;
    if (us > (double)ET_DURATION_MAX_US)
        return (uint64_t)ET_DURATION_MAX_US;
    return (uint64_t)llround(us);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* What PostgreSQL's percentile_disc(q) returns on the sorted values. */
static uint64_t exact_rank_value(const uint64_t *sorted, size_t n, double q)
{
    int64_t rownum = (int64_t)ceil(q * (double)n);
    if (rownum < 1)
        rownum = 1;
    if ((uint64_t)rownum > n)
        rownum = (int64_t)n;
    return sorted[rownum - 1];
}

static void assert_within_alpha(double got, uint64_t want, const char *what, size_t n, double q)
{
    double err = fabs(got - (double)want);
    cr_assert(err <= REL_TOL * (double)want, "%s n=%zu q=%.6g: got %.6f, exact %llu (rel err %.6g)",
              what, n, q, got, (unsigned long long)want, want ? err / (double)want : err);
}

/* Exact slots, computed with Python's fractions.Fraction(101, 99): values just below, at
 * and just above floor(γ^k) for the k where γ^k is closest to an integer, where the
 * double path alone gets the wrong answer, and 1, 30 days and 2^64-1. */
static const struct {
    uint64_t x;
    uint32_t slot;
} exact_slots[] = {
    {1ULL, 1},
    {2ULL, 36},
    {3ULL, 56},
    {6ULL, 91},
    {7ULL, 99},
    {8ULL, 105},
    {242901ULL, 621},
    {242902ULL, 621},
    {242903ULL, 622},
    {485488765ULL, 1001},
    {485488766ULL, 1001},
    {485488767ULL, 1002},
    {15448566407ULL, 1174},
    {15448566408ULL, 1174},
    {15448566409ULL, 1175},
    {20853591977ULL, 1189},
    {20853591978ULL, 1189},
    {20853591979ULL, 1190},
    {33701495442ULL, 1213},
    {33701495443ULL, 1213},
    {33701495444ULL, 1214},
    {145124338390ULL, 1286},
    {145124338391ULL, 1286},
    {145124338392ULL, 1287},
    {148056143206ULL, 1287},
    {148056143207ULL, 1287},
    {148056143208ULL, 1288},
    {588535678240ULL, 1356},
    {588535678241ULL, 1356},
    {588535678242ULL, 1357},
    {2585532823254ULL, 1430},
    {2585532823255ULL, 1430},
    {2585532823256ULL, 1431},
    {2591999999999ULL, 1431},
    {2592000000000ULL, 1431},
    {2592000000001ULL, 1431},
    {2637765809582ULL, 1431},
    {2637765809583ULL, 1431},
    {2637765809584ULL, 1432},
    {9487498113068ULL, 1495},
    {9487498113069ULL, 1495},
    {9487498113070ULL, 1496},
    {51937008740414ULL, 1580},
    {51937008740415ULL, 1580},
    {51937008740416ULL, 1581},
    {87360999079083ULL, 1606},
    {87360999079084ULL, 1606},
    {87360999079085ULL, 1607},
    {1176307554430686ULL, 1736},
    {1176307554430687ULL, 1736},
    {1176307554430688ULL, 1737},
    {4492570401765372ULL, 1803},
    {4492570401765373ULL, 1803},
    {4492570401765374ULL, 1804},
    {9007199254740992ULL, 1838},
    {9007199254740993ULL, 1838},
    {235699342041133926ULL, 2001},
    {235699342041133927ULL, 2001},
    {235699342041133928ULL, 2002},
    {18082532459060787289ULL, 2218},
    {18082532459060787290ULL, 2218},
    {18082532459060787291ULL, 2219},
    {18446744073709551615ULL, 2219},
};

/* Bit-equal to the double nearest 101/99, which is what the migration stores in
 * exectime.sketch_constants and what the agent compares against at start-up. */
Test(sketch, gamma_is_one_plus_alpha_over_one_minus_alpha)
{
    cr_assert_eq(et_sketch_gamma(), 101.0 / 99.0);
}

Test(sketch, slot_of_zero_is_zero)
{
    cr_assert_eq(et_sketch_slot(0), 0);
    cr_assert_eq(et_sketch_slot_value(0), 0.0);
    cr_assert_eq(et_sketch_slot_upper(0), 0.0);
}

Test(sketch, slot_of_one_microsecond_is_bin_zero_in_slot_one)
{
    cr_assert_eq(et_sketch_slot(1), 1);
    cr_assert_eq(et_sketch_slot_upper(1), 1.0);
    cr_assert_float_eq(et_sketch_slot_value(1), 2.0 / (et_sketch_gamma() + 1.0), 1e-15);
}

Test(sketch, slot_is_exact_at_and_around_powers_of_gamma)
{
    for (size_t i = 0; i < sizeof(exact_slots) / sizeof(exact_slots[0]); i++)
        cr_expect_eq(et_sketch_slot(exact_slots[i].x), exact_slots[i].slot,
                     "slot(%llu) = %u, want %u", (unsigned long long)exact_slots[i].x,
                     et_sketch_slot(exact_slots[i].x), exact_slots[i].slot);
}

Test(sketch, max_slot_is_slot_of_thirty_days)
{
    cr_assert_eq(et_sketch_max_slot(), 1431);
    cr_assert_eq(et_sketch_slot((uint64_t)ET_DURATION_MAX_US), 1431);
    cr_assert_leq(et_sketch_slot((uint64_t)ET_DURATION_MAX_US - 1), 1431);
    cr_assert(et_sketch_max_slot() < ET_HIST_BINS_MAX);
}

/* Below about 50 µs a bin is narrower than 1 µs, so consecutive integers skip slots;
 * above it every slot is used. */
Test(sketch, slot_is_monotonic_and_never_skips_above_fifty_microseconds)
{
    uint32_t prev = et_sketch_slot(1);

    for (uint64_t x = 2; x <= 2000000; x++) {
        uint32_t s = et_sketch_slot(x);
        cr_assert(s >= prev, "slot(%llu)=%u after %u", (unsigned long long)x, s, prev);
        if (x > 50)
            cr_assert(s <= prev + 1, "slot(%llu)=%u after %u", (unsigned long long)x, s, prev);
        prev = s;
    }
}

Test(sketch, slot_upper_bounds_contain_the_value)
{
    rng_t r = {42};

    for (int i = 0; i < 200000; i++) {
        /* log-uniform over 1 µs .. 2^63 */
        uint64_t x = (uint64_t)exp(rng_unit(&r) * 43.6) + 1;
        uint32_t s = et_sketch_slot(x);
        double hi = et_sketch_slot_upper(s), lo = et_sketch_slot_upper(s - 1);

        cr_assert(s >= 1);
        cr_assert((double)x <= hi * (1 + 1e-12), "x=%llu above upper %.17g of slot %u",
                  (unsigned long long)x, hi, s);
        if (s >= 2)
            cr_assert((double)x > lo * (1 - 1e-12), "x=%llu not above lower %.17g of slot %u",
                      (unsigned long long)x, lo, s);
    }
}

Test(sketch, slot_value_is_within_alpha_of_every_value_in_the_slot)
{
    for (uint32_t s = 2; s <= et_sketch_max_slot(); s++) {
        double v = et_sketch_slot_value(s);
        double lo = et_sketch_slot_upper(s - 1), hi = et_sketch_slot_upper(s);

        /* The worst cases are the two ends of the slot. */
        cr_assert_leq(fabs(v - hi) / hi, REL_TOL);
        cr_assert_leq(fabs(v - lo) / lo, REL_TOL);
        cr_assert(v > lo && v < hi);
    }
}

Test(sketch, hist_add_keeps_bins_sorted_unique_and_nonzero)
{
    et_hist_t h;
    rng_t r = {7};

    et_hist_init(&h);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(et_hist_add(&h, (uint32_t)(rng_next(&r) % 500), rng_next(&r) % 3), 0);
    for (uint32_t i = 0; i < h.len; i++) {
        cr_assert_gt(h.bins[i].count, 0);
        if (i > 0)
            cr_assert_lt(h.bins[i - 1].slot, h.bins[i].slot);
    }
    cr_assert_leq(h.len, h.cap);
    et_hist_free(&h);
    cr_assert_null(h.bins);
    cr_assert_eq(h.len, 0);
}

Test(sketch, hist_add_zero_count_adds_no_bin)
{
    et_hist_t h;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 5, 0), 0);
    cr_assert_eq(h.len, 0);
    cr_assert_eq(et_hist_total(&h), 0);
    et_hist_free(&h);
}

Test(sketch, hist_add_sums_counts_of_the_same_slot)
{
    et_hist_t h;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 9, 2), 0);
    cr_assert_eq(et_hist_add(&h, 3, 1), 0);
    cr_assert_eq(et_hist_add(&h, 9, 5), 0);
    cr_assert_eq(et_hist_add(&h, UINT32_MAX, 1), 0);
    cr_assert_eq(h.len, 3);
    cr_assert_eq(h.bins[0].slot, 3);
    cr_assert_eq(h.bins[1].slot, 9);
    cr_assert_eq(h.bins[1].count, 7);
    cr_assert_eq(h.bins[2].slot, UINT32_MAX);
    cr_assert_eq(et_hist_total(&h), 9);
    et_hist_free(&h);
}

Test(sketch, hist_add_overflow_is_erange_and_changes_nothing)
{
    et_hist_t h;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 4, UINT64_MAX), 0);
    cr_assert_eq(et_hist_add(&h, 4, 1), -ERANGE);
    cr_assert_eq(h.len, 1);
    cr_assert_eq(h.bins[0].count, UINT64_MAX);
    et_hist_free(&h);
}

Test(sketch, hist_reset_empties_but_keeps_allocation)
{
    et_hist_t h;
    et_hist_bin_t *bins;

    et_hist_init(&h);
    for (uint32_t s = 0; s < 100; s++)
        cr_assert_eq(et_hist_add(&h, s, 1), 0);
    bins = h.bins;
    et_hist_reset(&h);
    cr_assert_eq(h.len, 0);
    cr_assert_eq(h.bins, bins);
    cr_assert_geq(h.cap, 100);
    cr_assert_eq(et_hist_add(&h, 1, 1), 0);
    cr_assert_eq(et_hist_total(&h), 1);
    et_hist_free(&h);
}

static void assert_hist_eq(const et_hist_t *a, const et_hist_t *b)
{
    cr_assert_eq(a->len, b->len);
    for (uint32_t i = 0; i < a->len; i++) {
        cr_assert_eq(a->bins[i].slot, b->bins[i].slot, "bin %u", i);
        cr_assert_eq(a->bins[i].count, b->bins[i].count, "bin %u", i);
    }
}

Test(sketch, hist_merge_equals_adding_all)
{
    enum { PARTS = 17 };
    et_hist_t parts[PARTS], all, merged;
    rng_t r = {2024};

    et_hist_init(&all);
    et_hist_init(&merged);
    for (int p = 0; p < PARTS; p++)
        et_hist_init(&parts[p]);
    for (int i = 0; i < 50000; i++) {
        uint64_t x = clamp_duration(exp(12.0 + 2.0 * rng_normal(&r)));
        uint32_t s = et_sketch_slot(x);
        /* part 0 stays empty; part 1 gets about half, the others share the rest */
        uint64_t spread = rng_next(&r) % (PARTS - 1);
        int p = 1 + (int)(rng_next(&r) % 2 == 0 ? 0 : spread);

        cr_assert_eq(et_hist_add(&all, s, 1), 0);
        cr_assert_eq(et_hist_add(&parts[p], s, 1), 0);
    }
    for (int p = 0; p < PARTS; p++)
        cr_assert_eq(et_hist_merge(&merged, &parts[p]), 0);
    assert_hist_eq(&merged, &all);
    cr_assert_eq(et_hist_total(&merged), 50000);

    /* Merging in the other order, into a non-empty histogram, gives the same bins. */
    et_hist_reset(&merged);
    for (int p = PARTS - 1; p >= 0; p--)
        cr_assert_eq(et_hist_merge(&merged, &parts[p]), 0);
    assert_hist_eq(&merged, &all);

    for (int p = 0; p < PARTS; p++)
        et_hist_free(&parts[p]);
    et_hist_free(&all);
    et_hist_free(&merged);
}

Test(sketch, hist_merge_of_disjoint_and_interleaved_slots)
{
    et_hist_t a, b, want;

    et_hist_init(&a);
    et_hist_init(&b);
    et_hist_init(&want);
    for (uint32_t s = 0; s < 300; s += 3) {
        cr_assert_eq(et_hist_add(&a, s, s + 1), 0);
        cr_assert_eq(et_hist_add(&want, s, s + 1), 0);
    }
    for (uint32_t s = 0; s < 600; s += 2) {
        cr_assert_eq(et_hist_add(&b, s, 2), 0);
        cr_assert_eq(et_hist_add(&want, s, 2), 0);
    }
    cr_assert_eq(et_hist_merge(&a, &b), 0);
    assert_hist_eq(&a, &want);
    et_hist_free(&a);
    et_hist_free(&b);
    et_hist_free(&want);
}

Test(sketch, hist_merge_with_itself_doubles_every_count)
{
    et_hist_t h;

    et_hist_init(&h);
    for (uint32_t s = 1; s < 50; s++)
        cr_assert_eq(et_hist_add(&h, s * 7, s), 0);
    cr_assert_eq(et_hist_merge(&h, &h), 0);
    cr_assert_eq(h.len, 49);
    for (uint32_t i = 0; i < h.len; i++)
        cr_assert_eq(h.bins[i].count, 2 * (uint64_t)(i + 1));
    et_hist_free(&h);
}

Test(sketch, hist_merge_of_empty_changes_nothing)
{
    et_hist_t a, empty;

    et_hist_init(&a);
    et_hist_init(&empty);
    cr_assert_eq(et_hist_merge(&a, &empty), 0);
    cr_assert_eq(a.len, 0);
    cr_assert_eq(et_hist_add(&a, 3, 3), 0);
    cr_assert_eq(et_hist_merge(&a, &empty), 0);
    cr_assert_eq(et_hist_merge(&empty, &a), 0);
    assert_hist_eq(&a, &empty);
    et_hist_free(&a);
    et_hist_free(&empty);
}

Test(sketch, hist_merge_overflow_is_erange_and_leaves_dst_unchanged)
{
    et_hist_t a, b;

    et_hist_init(&a);
    et_hist_init(&b);
    cr_assert_eq(et_hist_add(&a, 1, 1), 0);
    cr_assert_eq(et_hist_add(&a, 5, UINT64_MAX - 1), 0);
    cr_assert_eq(et_hist_add(&b, 0, 1), 0);
    cr_assert_eq(et_hist_add(&b, 5, 2), 0);
    cr_assert_eq(et_hist_merge(&a, &b), -ERANGE);
    cr_assert_eq(a.len, 2);
    cr_assert_eq(a.bins[0].slot, 1);
    cr_assert_eq(a.bins[1].count, UINT64_MAX - 1);
    et_hist_free(&a);
    et_hist_free(&b);
}

Test(sketch, quantile_of_empty_histogram_is_einval)
{
    et_hist_t h;
    double v = -1.0;

    et_hist_init(&h);
    cr_assert_eq(et_hist_quantile(&h, 0.5, 0, 100, &v), -EINVAL);
    cr_assert_eq(v, -1.0);
    et_hist_free(&h);
}

Test(sketch, quantile_rejects_q_outside_zero_to_one)
{
    et_hist_t h;
    double v;
    const double bad[] = {0.0, -0.5, 1.0000001, 2.0, NAN, INFINITY, -INFINITY};

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 10, 1), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(et_hist_quantile(&h, bad[i], 0, 100, &v), -EINVAL, "q=%g", bad[i]);
    cr_assert_eq(et_hist_quantile(&h, 1e-300, 0, 100, &v), 0);
    et_hist_free(&h);
}

Test(sketch, quantile_rejects_min_above_max)
{
    et_hist_t h;
    double v;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 10, 1), 0);
    cr_assert_eq(et_hist_quantile(&h, 0.5, 11, 10, &v), -EINVAL);
    et_hist_free(&h);
}

/* percentile_disc computes ceil(0.07 * 100) in double: 7.000000000000001 rounds up to 8. */
Test(sketch, quantile_rank_rounds_like_percentile_disc)
{
    et_hist_t h;
    double v;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(1000), 7), 0);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(5000), 93), 0);
    cr_assert_eq(et_hist_quantile(&h, 0.07, 1000, 5000, &v), 0);
    cr_assert_eq(ceil(0.07 * 100.0), 8.0);
    cr_assert_float_eq(v, et_sketch_slot_value(et_sketch_slot(5000)), 1e-9);
    /* 0.06 * 100 is exactly 6 in double: rank 6, the first bin. */
    cr_assert_eq(et_hist_quantile(&h, 0.06, 1000, 5000, &v), 0);
    cr_assert_float_eq(v, et_sketch_slot_value(et_sketch_slot(1000)), 1e-9);
    et_hist_free(&h);
}

Test(sketch, quantile_with_tiny_q_is_the_first_row)
{
    et_hist_t h;
    double v;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(250), 1), 0);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(9000), 1000), 0);
    cr_assert_eq(et_hist_quantile(&h, 1e-12, 250, 9000, &v), 0);
    cr_assert_float_eq(v, et_sketch_slot_value(et_sketch_slot(250)), 1e-9);
    et_hist_free(&h);
}

Test(sketch, quantile_is_clamped_to_exact_min_and_max)
{
    et_hist_t h;
    double v;

    /* A single run: every quantile must be the run itself, exactly. */
    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(123457), 1), 0);
    cr_assert_eq(et_hist_quantile(&h, 0.5, 123457, 123457, &v), 0);
    cr_assert_eq(v, 123457.0);
    cr_assert_eq(et_hist_quantile(&h, 1.0, 123457, 123457, &v), 0);
    cr_assert_eq(v, 123457.0);
    et_hist_free(&h);
}

Test(sketch, quantile_of_zero_durations_is_zero)
{
    et_hist_t h;
    double v;

    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(0), 10), 0);
    cr_assert_eq(et_hist_add(&h, et_sketch_slot(40), 1), 0);
    cr_assert_eq(et_hist_quantile(&h, 0.5, 0, 40, &v), 0);
    cr_assert_eq(v, 0.0);
    cr_assert_eq(et_hist_quantile(&h, 1.0, 0, 40, &v), 0);
    cr_assert_float_eq(v, 40.0, 0.4);
    et_hist_free(&h);
}

Test(sketch, encoding_round_trips_and_is_what_the_migration_writes)
{
    et_hist_t h, back;
    et_hist_init(&h);
    et_hist_init(&back);
    cr_assert_eq(et_hist_add(&h, 5, 2), 0);
    cr_assert_eq(et_hist_add(&h, 200, 300000), 0);
    cr_assert_eq(et_hist_add(&h, 1430, (1ULL << 40) - 1), 0);
    uint8_t out[ET_HIST_ENCODED_MAX];
    long n = et_hist_encode(&h, out, sizeof out);
    /* The bytes migration 0005 produced for the same bins (checked by hand in psql). */
    static const uint8_t want[] = {0x05, 0x02, 0xc3, 0x01, 0xe0, 0xa7, 0x12, 0xce,
                                   0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f};
    cr_assert_eq(n, (long)sizeof want);
    cr_assert_eq(et_hist_encoded_size(&h), sizeof want);
    cr_assert_arr_eq(out, want, sizeof want);
    cr_assert_eq(et_hist_decode(&back, out, (size_t)n), 0);
    cr_assert_eq(back.len, 3);
    cr_assert_eq(back.bins[2].slot, 1430);
    cr_assert_eq(back.bins[2].count, (1ULL << 40) - 1);
    cr_assert_eq(et_hist_decode_hex(&back, "\\x0502c301e0a712ce09ffffffffff1f"), 0);
    cr_assert_eq(back.len, 3);
    cr_assert_eq(back.bins[1].count, 300000);
    cr_assert_eq(et_hist_encode(&h, out, 3), -ERANGE);
    et_hist_free(&h);
    et_hist_free(&back);
}

Test(sketch, every_bin_of_a_full_histogram_fits_the_encoded_bound)
{
    et_hist_t h, back;
    et_hist_init(&h);
    et_hist_init(&back);
    for (uint32_t slot = 0; slot <= et_sketch_max_slot(); slot++)
        cr_assert_eq(et_hist_add(&h, slot, UINT64_MAX), 0);
    static uint8_t out[ET_HIST_ENCODED_MAX];
    long n = et_hist_encode(&h, out, sizeof out);
    cr_assert_gt(n, 0);
    cr_assert_eq(et_hist_decode(&back, out, (size_t)n), 0);
    cr_assert_eq(back.len, h.len);
    cr_assert_eq(back.bins[back.len - 1].count, UINT64_MAX);
    et_hist_free(&h);
    et_hist_free(&back);
}

Test(sketch, decode_refuses_what_the_encoder_never_writes)
{
    et_hist_t h;
    et_hist_init(&h);
    static const uint8_t truncated[] = {0x05, 0x82};
    static const uint8_t zero_count[] = {0x05, 0x00};
    static const uint8_t repeated_slot[] = {0x05, 0x01, 0x00, 0x01};
    static const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0x7f, 0x01};
    static const uint8_t lone_slot[] = {0x05};
    cr_assert_eq(et_hist_decode(&h, truncated, sizeof truncated), -EINVAL);
    cr_assert_eq(et_hist_decode(&h, zero_count, sizeof zero_count), -EINVAL);
    cr_assert_eq(et_hist_decode(&h, repeated_slot, sizeof repeated_slot), -EINVAL);
    cr_assert_eq(et_hist_decode(&h, too_long, sizeof too_long), -EINVAL);
    cr_assert_eq(et_hist_decode(&h, lone_slot, sizeof lone_slot), -EINVAL);
    uint8_t big[] = {0x00, 0x01, 0xb0, 0x0b, 0x01}; /* 0, then 0 + 1456 > max slot */
    cr_assert_eq(et_hist_decode(&h, big, sizeof big), -EINVAL);
    cr_assert_eq(et_hist_decode_hex(&h, "0501"), -EINVAL);
    cr_assert_eq(et_hist_decode_hex(&h, "\\x050"), -EINVAL);
    cr_assert_eq(et_hist_decode_hex(&h, "\\x05zz"), -EINVAL);
    cr_assert_eq(et_hist_decode(&h, NULL, 0), 0);
    cr_assert_eq(h.len, 0);
    et_hist_free(&h);
}

typedef enum dist { DIST_LOGNORMAL, DIST_UNIFORM, DIST_BIMODAL } dist_t;

static uint64_t draw(rng_t *r, dist_t d)
{
    switch (d) {
    case DIST_LOGNORMAL:
        /* median 200 ms, long tail; about 1 in 500 runs take 0 µs */
        if (rng_next(r) % 500 == 0)
            return 0;
        return clamp_duration(exp(log(200000.0) + 1.6 * rng_normal(r)));
    case DIST_UNIFORM: return rng_next(r) % 10000000;
    case DIST_BIMODAL:
        if (rng_unit(r) < 0.7)
            return clamp_duration(50000.0 + 5000.0 * rng_normal(r));
        return clamp_duration(5000000.0 + 1000000.0 * rng_normal(r));
    }
    return 0;
}

/*
 * Builds a histogram from n draws and checks many quantiles against the exact rank on
 * the sorted data, the way the API's answer is checked against percentile_disc.
 */
static void check_quantiles(dist_t d, uint64_t seed, const char *name)
{
    static const size_t sizes[] = {1, 2, 3, 5, 10, 99, 100, 1000, 4999, 10000, 100000};
    static const double fixed_q[] = {1e-9, 0.001, 0.01,  0.05,   0.1,    0.25, 1.0 / 3.0,
                                     0.5,  0.6,   0.66,  0.75,   0.9,    0.95, 0.975,
                                     0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0};
    rng_t r = {seed};

    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        uint64_t *v = malloc(n * sizeof(*v));
        uint64_t mn = UINT64_MAX, mx = 0;
        et_hist_t h;

        cr_assert_not_null(v);
        et_hist_init(&h);
        for (size_t i = 0; i < n; i++) {
            v[i] = draw(&r, d);
            mn = v[i] < mn ? v[i] : mn;
            mx = v[i] > mx ? v[i] : mx;
            cr_assert_eq(et_hist_add(&h, et_sketch_slot(v[i]), 1), 0);
        }
        qsort(v, n, sizeof(*v), cmp_u64);
        cr_assert_eq(et_hist_total(&h), n);

        for (size_t qi = 0; qi < sizeof(fixed_q) / sizeof(fixed_q[0]) + 200; qi++) {
            double q = qi < sizeof(fixed_q) / sizeof(fixed_q[0]) ? fixed_q[qi] : 1.0 - rng_unit(&r);
            double got;

            cr_assert_eq(et_hist_quantile(&h, q, mn, mx, &got), 0);
            assert_within_alpha(got, exact_rank_value(v, n, q), name, n, q);
        }
        et_hist_free(&h);
        free(v);
    }
}

Test(sketch, quantiles_within_one_percent_of_exact_rank_lognormal, .timeout = 120)
{
    check_quantiles(DIST_LOGNORMAL, 1, "lognormal");
    check_quantiles(DIST_LOGNORMAL, 99, "lognormal");
}

Test(sketch, quantiles_within_one_percent_of_exact_rank_uniform, .timeout = 120)
{
    check_quantiles(DIST_UNIFORM, 2, "uniform");
    check_quantiles(DIST_UNIFORM, 77, "uniform");
}

Test(sketch, quantiles_within_one_percent_of_exact_rank_bimodal, .timeout = 120)
{
    check_quantiles(DIST_BIMODAL, 3, "bimodal");
    check_quantiles(DIST_BIMODAL, 55, "bimodal");
}

/* Rollups are merged per bucket before a quantile is taken: the guarantee must survive. */
Test(sketch, quantiles_of_merged_histograms_within_one_percent, .timeout = 120)
{
    enum { N = 30000, BUCKETS = 24 };
    uint64_t *v = malloc(N * sizeof(*v));
    et_hist_t bucket[BUCKETS], all;
    uint64_t mn = UINT64_MAX, mx = 0;
    rng_t r = {31337};

    cr_assert_not_null(v);
    et_hist_init(&all);
    for (int b = 0; b < BUCKETS; b++)
        et_hist_init(&bucket[b]);
    for (size_t i = 0; i < N; i++) {
        v[i] = draw(&r, (dist_t)(i % 3));
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
        cr_assert_eq(et_hist_add(&bucket[i % BUCKETS], et_sketch_slot(v[i]), 1), 0);
    }
    for (int b = 0; b < BUCKETS; b++)
        cr_assert_eq(et_hist_merge(&all, &bucket[b]), 0);
    qsort(v, N, sizeof(*v), cmp_u64);
    for (double q = 0.001; q <= 1.0; q += 0.001) {
        double got;
        cr_assert_eq(et_hist_quantile(&all, q, mn, mx, &got), 0);
        assert_within_alpha(got, exact_rank_value(v, N, q), "merged", N, q);
    }
    for (int b = 0; b < BUCKETS; b++)
        et_hist_free(&bucket[b]);
    et_hist_free(&all);
    free(v);
}

Test(sketch, encode_sum_is_the_encoding_of_the_merge)
{
    et_hist_t a, b, merged;
    et_hist_init(&a);
    et_hist_init(&b);
    et_hist_init(&merged);
    uint64_t seed = 7;
    for (int i = 0; i < 500; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        cr_assert_eq(et_hist_add(i % 2 ? &a : &b, (uint32_t)(seed >> 33) % 1432, 1 + i % 5), 0);
    }
    cr_assert_eq(et_hist_merge(&merged, &a), 0);
    cr_assert_eq(et_hist_merge(&merged, &b), 0);
    static uint8_t want[ET_HIST_ENCODED_MAX], got[ET_HIST_ENCODED_MAX];
    long n = et_hist_encode(&merged, want, sizeof want);
    cr_assert_eq(et_hist_encode_sum(&a, &b, got, sizeof got), n);
    cr_assert_arr_eq(got, want, (size_t)n);
    cr_assert_eq(et_hist_encode_sum(&b, &a, got, sizeof got), n);
    cr_assert_arr_eq(got, want, (size_t)n);
    cr_assert_eq(et_hist_encode_sum(&a, &b, got, (size_t)n - 1), -ERANGE);
    et_hist_t big;
    et_hist_init(&big);
    cr_assert_eq(et_hist_add(&big, a.bins[0].slot, UINT64_MAX), 0);
    cr_assert_eq(et_hist_encode_sum(&a, &big, got, sizeof got), -ERANGE);
    et_hist_free(&big);
    et_hist_free(&a);
    et_hist_free(&b);
    et_hist_free(&merged);
}
