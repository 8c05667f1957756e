/*
 * Unit tests for agent/query_plan: which rollup rows answer a range, how retention
 * coarsens the plan, and the bucket arithmetic of series. A property test checks the
 * plan's shape and row count against a brute-force greedy over thousands of ranges.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "et_rng.h"
#include "query_plan.h"
#include "timeutil.h"

#define MIN ET_US_PER_MIN
#define HOUR ET_US_PER_HOUR
#define DAY ET_US_PER_DAY

/* No retention limit: every rollup row still exists. */
static const plan_retention_t keep_all = {INT64_MIN, INT64_MIN};

/* Midnight UTC of a civil date. */
static int64_t date_us(int64_t y, unsigned m, unsigned d)
{
    return et_days_from_civil(y, m, d) * DAY;
}

static int64_t at(int64_t day_us, int h, int m)
{
    return day_us + h * HOUR + m * MIN;
}

static int64_t piece_rows(const plan_piece_t *pc)
{
    return (pc->to_us - pc->from_us) / et_resolution_us(pc->res);
}

static int64_t plan_rows(const plan_t *p)
{
    int64_t rows = 0;
    for (int i = 0; i < p->count; i++)
        rows += piece_rows(&p->pieces[i]);
    return rows;
}

static void expect_piece(const plan_t *p, int i, et_resolution_t res, int64_t from, int64_t to)
{
    cr_assert_lt(i, p->count, "piece %d missing (count %d)", i, p->count);
    cr_expect_eq(p->pieces[i].res, res, "piece %d res %d, want %d", i, p->pieces[i].res, res);
    cr_expect_eq(p->pieces[i].from_us, from, "piece %d from", i);
    cr_expect_eq(p->pieces[i].to_us, to, "piece %d to", i);
}

static plan_t plan_ok(int64_t start, int64_t end, et_resolution_t max_res,
                      const plan_retention_t *ret)
{
    plan_t p;
    cr_assert_eq(plan_range(start, end, max_res, ret, &p), 0);
    return p;
}

/* ---- typical ranges ---------------------------------------------------------------- */

Test(query_plan, thirty_aligned_days_read_thirty_day_rows)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_t p = plan_ok(d0, d0 + 30 * DAY, ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, d0, d0 + 30 * DAY);
    cr_expect_eq(plan_rows(&p), 30);
    cr_expect_eq(p.start_us, d0);
    cr_expect_eq(p.end_us, d0 + 30 * DAY);
    cr_expect_not(p.coarsened);
}

Test(query_plan, thirty_days_with_13h37_at_both_ends_use_minutes_hours_days_hours_minutes)
{
    int64_t d0 = date_us(2026, 11, 1);
    int64_t d30 = d0 + 30 * DAY;
    int64_t start = d0 - 13 * HOUR - 37 * MIN;
    int64_t end = d30 + 13 * HOUR + 37 * MIN;
    plan_t p = plan_ok(start, end, ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 5);
    expect_piece(&p, 0, ET_RES_MINUTE, start, d0 - 13 * HOUR);
    expect_piece(&p, 1, ET_RES_HOUR, d0 - 13 * HOUR, d0);
    expect_piece(&p, 2, ET_RES_DAY, d0, d30);
    expect_piece(&p, 3, ET_RES_HOUR, d30, d30 + 13 * HOUR);
    expect_piece(&p, 4, ET_RES_MINUTE, d30 + 13 * HOUR, end);
    cr_expect_eq(plan_rows(&p), 37 + 13 + 30 + 13 + 37);
    cr_expect_eq(p.start_us, start);
    cr_expect_eq(p.end_us, end);
    cr_expect_not(p.coarsened);
}

Test(query_plan, range_within_one_hour_reads_only_minutes)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = plan_ok(at(d, 10, 5), at(d, 10, 50), ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_MINUTE, at(d, 10, 5), at(d, 10, 50));
    cr_expect_eq(plan_rows(&p), 45);
}

Test(query_plan, range_crossing_one_hour_boundary_without_a_whole_hour_is_one_minute_piece)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = plan_ok(at(d, 10, 30), at(d, 11, 20), ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_MINUTE, at(d, 10, 30), at(d, 11, 20));
}

Test(query_plan, range_within_one_day_crossing_hours_reads_hours_between_minute_edges)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = plan_ok(at(d, 9, 45), at(d, 17, 20), ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 3);
    expect_piece(&p, 0, ET_RES_MINUTE, at(d, 9, 45), at(d, 10, 0));
    expect_piece(&p, 1, ET_RES_HOUR, at(d, 10, 0), at(d, 17, 0));
    expect_piece(&p, 2, ET_RES_MINUTE, at(d, 17, 0), at(d, 17, 20));
    cr_expect_eq(plan_rows(&p), 15 + 7 + 20);
}

Test(query_plan, exactly_one_day_reads_one_day_row)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = plan_ok(d, d + DAY, ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, d, d + DAY);
    cr_expect_eq(plan_rows(&p), 1);
}

Test(query_plan, day_long_range_from_noon_to_noon_merges_its_hours_into_one_piece)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = plan_ok(at(d, 12, 0), at(d + DAY, 12, 0), ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_HOUR, at(d, 12, 0), at(d + DAY, 12, 0));
    cr_expect_eq(plan_rows(&p), 24);
}

Test(query_plan, month_boundary_is_an_ordinary_utc_midnight)
{
    int64_t feb1 = date_us(2026, 2, 1);
    plan_t p = plan_ok(at(feb1 - DAY, 22, 30), at(feb1, 1, 15), ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 3);
    expect_piece(&p, 0, ET_RES_MINUTE, at(feb1 - DAY, 22, 30), at(feb1 - DAY, 23, 0));
    expect_piece(&p, 1, ET_RES_HOUR, at(feb1 - DAY, 23, 0), at(feb1, 1, 0));
    expect_piece(&p, 2, ET_RES_MINUTE, at(feb1, 1, 0), at(feb1, 1, 15));

    /* A whole calendar month is its number of days, whatever the month. */
    int64_t mar1 = date_us(2026, 3, 1);
    p = plan_ok(feb1, mar1, ET_RES_DAY, &keep_all);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, feb1, mar1);
    cr_expect_eq(plan_rows(&p), 28);
}

Test(query_plan, leap_day_is_one_more_day_row)
{
    int64_t feb28 = date_us(2024, 2, 28);
    int64_t mar1 = date_us(2024, 3, 1);
    plan_t p = plan_ok(feb28, mar1, ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, feb28, mar1);
    cr_expect_eq(plan_rows(&p), 2);

    int64_t feb29 = date_us(2024, 2, 29);
    p = plan_ok(at(feb29, 6, 10), at(mar1, 6, 0), ET_RES_DAY, &keep_all);
    cr_assert_eq(p.count, 2);
    expect_piece(&p, 0, ET_RES_MINUTE, at(feb29, 6, 10), at(feb29, 7, 0));
    expect_piece(&p, 1, ET_RES_HOUR, at(feb29, 7, 0), at(mar1, 6, 0));
    cr_expect_eq(plan_rows(&p), 50 + 23);
}

Test(query_plan, year_end_crossing_joins_minutes_and_days_across_new_year)
{
    int64_t jan1 = date_us(2026, 1, 1);
    plan_t p = plan_ok(jan1 - MIN, jan1 + MIN, ET_RES_DAY, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_MINUTE, jan1 - MIN, jan1 + MIN);

    p = plan_ok(at(jan1 - 2 * DAY, 12, 0), jan1 + DAY, ET_RES_DAY, &keep_all);
    cr_assert_eq(p.count, 2);
    expect_piece(&p, 0, ET_RES_HOUR, at(jan1 - 2 * DAY, 12, 0), jan1 - DAY);
    expect_piece(&p, 1, ET_RES_DAY, jan1 - DAY, jan1 + DAY);
}

Test(query_plan, refuses_empty_unaligned_or_out_of_range_input)
{
    int64_t d = date_us(2026, 11, 3);
    plan_t p = {.count = 42};

    cr_expect_eq(plan_range(d, d, ET_RES_DAY, &keep_all, &p), -EINVAL);
    cr_expect_eq(plan_range(d + MIN, d, ET_RES_DAY, &keep_all, &p), -EINVAL);
    cr_expect_eq(plan_range(d + 1, d + HOUR, ET_RES_DAY, &keep_all, &p), -EINVAL);
    cr_expect_eq(plan_range(d, d + HOUR + ET_US_PER_SEC, ET_RES_DAY, &keep_all, &p), -EINVAL);
    cr_expect_eq(plan_range(d, d + HOUR, (et_resolution_t)3, &keep_all, &p), -EINVAL);
    cr_expect_eq(plan_range(d, INT64_MAX - INT64_MAX % MIN, ET_RES_DAY, &keep_all, &p), -EINVAL);
    cr_expect_eq(p.count, 42, "out is untouched on error");
}

Test(query_plan, null_retention_means_every_row_exists)
{
    int64_t d = date_us(2000, 1, 1);
    plan_t p = plan_ok(at(d, 9, 45), at(d, 17, 20), ET_RES_DAY, NULL);

    cr_expect_eq(p.count, 3);
    cr_expect_not(p.coarsened);
}

/* ---- max_res caps -------------------------------------------------------------------- */

Test(query_plan, hour_cap_uses_no_day_pieces)
{
    int64_t d0 = date_us(2026, 11, 1);
    int64_t start = d0 - 13 * HOUR - 37 * MIN;
    int64_t end = d0 + 30 * DAY + 13 * HOUR + 37 * MIN;
    plan_t p = plan_ok(start, end, ET_RES_HOUR, &keep_all);

    cr_assert_eq(p.count, 3);
    expect_piece(&p, 0, ET_RES_MINUTE, start, d0 - 13 * HOUR);
    expect_piece(&p, 1, ET_RES_HOUR, d0 - 13 * HOUR, d0 + 30 * DAY + 13 * HOUR);
    expect_piece(&p, 2, ET_RES_MINUTE, d0 + 30 * DAY + 13 * HOUR, end);
    cr_expect_eq(plan_rows(&p), 37 + 13 + 30 * 24 + 13 + 37);
}

Test(query_plan, minute_cap_uses_only_minutes)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_t p = plan_ok(d0, d0 + 2 * DAY, ET_RES_MINUTE, &keep_all);

    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_MINUTE, d0, d0 + 2 * DAY);
    cr_expect_eq(plan_rows(&p), 2 * 24 * 60);
}

/* ---- retention coarsening ---------------------------------------------------------- */

Test(query_plan, minutes_past_retention_widen_to_hours_and_move_start_earlier)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = d0 + 2 * DAY, .hour_oldest_us = d0 - 100 * DAY};
    int64_t start = at(d0, 10, 13);
    int64_t end = at(d0 + 10 * DAY, 5, 20);
    plan_t p = plan_ok(start, end, ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_expect_eq(p.start_us, at(d0, 10, 0));
    cr_expect_eq(p.end_us, end, "the recent edge keeps its minutes");
    cr_assert_eq(p.count, 4);
    expect_piece(&p, 0, ET_RES_HOUR, at(d0, 10, 0), d0 + DAY);
    expect_piece(&p, 1, ET_RES_DAY, d0 + DAY, d0 + 10 * DAY);
    expect_piece(&p, 2, ET_RES_HOUR, d0 + 10 * DAY, at(d0 + 10 * DAY, 5, 0));
    expect_piece(&p, 3, ET_RES_MINUTE, at(d0 + 10 * DAY, 5, 0), end);
}

Test(query_plan, short_range_entirely_past_minute_retention_becomes_its_covering_hour)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = d0 + 20 * DAY, .hour_oldest_us = d0 - DAY};
    plan_t p = plan_ok(at(d0, 10, 13), at(d0, 10, 50), ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_HOUR, at(d0, 10, 0), at(d0, 11, 0));
    cr_expect_eq(p.start_us, at(d0, 10, 0));
    cr_expect_eq(p.end_us, at(d0, 11, 0));
}

Test(query_plan, minute_piece_straddling_retention_widens_only_its_expired_part)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = at(d0, 10, 40), .hour_oldest_us = d0 - DAY};
    plan_t p = plan_ok(at(d0, 10, 13), at(d0, 11, 20), ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_assert_eq(p.count, 2);
    expect_piece(&p, 0, ET_RES_HOUR, at(d0, 10, 0), at(d0, 11, 0));
    expect_piece(&p, 1, ET_RES_MINUTE, at(d0, 11, 0), at(d0, 11, 20));
    cr_expect_eq(p.end_us, at(d0, 11, 20));
}

Test(query_plan, unaligned_retention_boundary_drops_the_minute_bucket_that_starts_before_it)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = at(d0, 10, 13) + 30 * ET_US_PER_SEC,
                            .hour_oldest_us = d0 - DAY};
    plan_t p = plan_ok(at(d0, 10, 13), at(d0, 10, 50), ET_RES_DAY, &ret);
    cr_expect(p.coarsened, "bucket 10:13 starts before 10:13:30, so it is gone");

    p = plan_ok(at(d0, 10, 14), at(d0, 10, 50), ET_RES_DAY, &ret);
    cr_expect_not(p.coarsened);
    cr_expect_eq(p.count, 1);
}

Test(query_plan, hours_past_retention_widen_to_days_and_move_both_edges)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = d0 + 12 * DAY, .hour_oldest_us = d0 + 10 * DAY};
    plan_t p = plan_ok(at(d0, 10, 13), at(d0 + 5 * DAY, 5, 20), ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, d0, d0 + 6 * DAY);
    cr_expect_eq(p.start_us, d0);
    cr_expect_eq(p.end_us, d0 + 6 * DAY);
}

Test(query_plan, hours_past_retention_at_the_old_edge_only_widen_that_edge)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = d0 + 4 * DAY, .hour_oldest_us = d0 + 3 * DAY};
    int64_t end = at(d0 + 5 * DAY, 5, 20);
    plan_t p = plan_ok(at(d0, 10, 13), end, ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_expect_eq(p.start_us, d0);
    cr_expect_eq(p.end_us, end);
    cr_assert_eq(p.count, 3);
    expect_piece(&p, 0, ET_RES_DAY, d0, d0 + 5 * DAY);
    expect_piece(&p, 1, ET_RES_HOUR, d0 + 5 * DAY, at(d0 + 5 * DAY, 5, 0));
    expect_piece(&p, 2, ET_RES_MINUTE, at(d0 + 5 * DAY, 5, 0), end);
}

Test(query_plan, hour_piece_across_midnight_past_retention_takes_both_days)
{
    int64_t mon = date_us(2026, 11, 2);
    plan_retention_t ret = {.minute_oldest_us = mon - DAY, .hour_oldest_us = at(mon + DAY, 1, 0)};
    plan_t p = plan_ok(at(mon, 22, 30), at(mon + DAY, 2, 0), ET_RES_DAY, &ret);

    cr_expect(p.coarsened);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_DAY, mon, mon + 2 * DAY);
}

Test(query_plan, max_res_keeps_expired_pieces_from_widening_past_the_cap)
{
    int64_t d0 = date_us(2026, 11, 1);
    plan_retention_t ret = {.minute_oldest_us = d0 + 20 * DAY, .hour_oldest_us = d0 + 20 * DAY};
    int64_t start = at(d0, 10, 13);
    int64_t end = at(d0 + 2 * DAY, 5, 20);

    plan_t p = plan_ok(start, end, ET_RES_MINUTE, &ret);
    cr_expect_not(p.coarsened);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_MINUTE, start, end);

    p = plan_ok(start, end, ET_RES_HOUR, &ret);
    cr_expect(p.coarsened);
    cr_assert_eq(p.count, 1);
    expect_piece(&p, 0, ET_RES_HOUR, at(d0, 10, 0), at(d0 + 2 * DAY, 6, 0));
}

/* ---- property test ------------------------------------------------------------------- */

/* splitmix64: a fixed seed gives the same ranges on every run and machine. */
static uint64_t rng_state = 0x5eed2026c0ffeeULL;

static uint64_t rng_next(void)
{
    return et_splitmix64(&rng_state);
}

static int64_t rng_below(int64_t n)
{
    return (int64_t)(rng_next() % (uint64_t)n);
}

/* Brute force: walk from start, each step taking the coarsest bucket (up to max_res)
 * that starts here and ends by end. */
static int64_t greedy_rows(int64_t start, int64_t end, et_resolution_t max_res)
{
    int64_t rows = 0;
    for (int64_t t = start; t < end; rows++) {
        int r = (int)max_res;
        while (r > 0 && (et_time_floor(t, (et_resolution_t)r) != t ||
                         t + et_resolution_us((et_resolution_t)r) > end))
            r--;
        t += et_resolution_us((et_resolution_t)r);
    }
    return rows;
}

/* A length from 1 minute to 400 days, often short, with round hours and days mixed in. */
static int64_t random_length(void)
{
    switch (rng_below(4)) {
    case 0: return (1 + rng_below(240)) * MIN;
    case 1: return (1 + rng_below(48)) * HOUR + rng_below(3) * rng_below(60) * MIN;
    case 2: return (1 + rng_below(400)) * DAY;
    default: return 1 * MIN + rng_below(400 * 24 * 60) * MIN;
    }
}

/* A retention boundary near the range (so every case is exercised) or far before it. */
static int64_t random_oldest(int64_t start, int64_t end)
{
    switch (rng_below(4)) {
    case 0: return INT64_MIN;
    case 1: return start - rng_below(30 * DAY);
    default: return start - 2 * DAY + rng_below(end - start + 4 * DAY);
    }
}

static void check_plan(int64_t start, int64_t end, et_resolution_t max_res,
                       const plan_retention_t *ret, const plan_t *p, int iter)
{
    cr_assert(p->count >= 1 && p->count <= PLAN_PIECES_MAX, "iter %d: count %d", iter, p->count);
    cr_assert_eq(p->pieces[0].from_us, p->start_us, "iter %d: first piece starts the plan", iter);
    cr_assert_eq(p->pieces[p->count - 1].to_us, p->end_us, "iter %d: last piece ends it", iter);
    for (int i = 0; i < p->count; i++) {
        const plan_piece_t *pc = &p->pieces[i];
        cr_assert_lt(pc->from_us, pc->to_us, "iter %d piece %d: empty", iter, i);
        cr_assert_leq(pc->res, max_res, "iter %d piece %d: coarser than max_res", iter, i);
        cr_assert_eq(et_time_floor(pc->from_us, pc->res), pc->from_us, "iter %d: from", iter);
        cr_assert_eq(et_time_floor(pc->to_us, pc->res), pc->to_us, "iter %d: to", iter);
        if (i > 0) {
            cr_assert_eq(p->pieces[i - 1].to_us, pc->from_us, "iter %d: contiguous", iter);
            cr_assert_neq(p->pieces[i - 1].res, pc->res, "iter %d: not merged", iter);
        }
        /* Every bucket read exists, unless max_res forbade the coarser one. */
        if (pc->res == ET_RES_MINUTE && max_res > ET_RES_MINUTE)
            cr_assert_geq(pc->from_us, ret->minute_oldest_us, "iter %d: expired minutes", iter);
        if (pc->res == ET_RES_HOUR && max_res > ET_RES_HOUR)
            cr_assert_geq(pc->from_us, ret->hour_oldest_us, "iter %d: expired hours", iter);
    }
    cr_assert_leq(p->start_us, start, "iter %d", iter);
    cr_assert_geq(p->end_us, end, "iter %d", iter);
    cr_assert_eq(p->coarsened, p->start_us != start || p->end_us != end, "iter %d", iter);
    /* Fewest rows for what it covers: for the uncoarsened case that is the range asked. */
    cr_assert_eq(plan_rows(p), greedy_rows(p->start_us, p->end_us, max_res), "iter %d: not minimal",
                 iter);
}

Test(query_plan, random_ranges_give_ordered_contiguous_minimal_plans)
{
    int64_t base = date_us(2024, 1, 1);
    int coarsened = 0;
    int plain = 0;

    for (int iter = 0; iter < 5000; iter++) {
        int64_t start = base + rng_below(3 * 365 * 24 * 60) * MIN;
        int64_t end = start + random_length();
        et_resolution_t max_res = (et_resolution_t)rng_below(ET_RES_COUNT);
        plan_retention_t ret = {random_oldest(start, end), random_oldest(start, end)};
        /* Mostly the deployed shape (minutes kept shorter than hours), sometimes not. */
        if (rng_below(4) != 0 && ret.minute_oldest_us < ret.hour_oldest_us) {
            int64_t t = ret.minute_oldest_us;
            ret.minute_oldest_us = ret.hour_oldest_us;
            ret.hour_oldest_us = t;
        }

        plan_t p;
        cr_assert_eq(plan_range(start, end, max_res, &ret, &p), 0, "iter %d", iter);
        check_plan(start, end, max_res, &ret, &p, iter);
        if (p.coarsened) {
            coarsened++;
        } else {
            plain++;
            cr_assert_eq(p.start_us, start);
            cr_assert_eq(p.end_us, end);
        }

        /* Without retention limits the same range is never coarsened. */
        plan_t q;
        cr_assert_eq(plan_range(start, end, max_res, &keep_all, &q), 0);
        check_plan(start, end, max_res, &keep_all, &q, iter);
        cr_assert_not(q.coarsened, "iter %d", iter);
        cr_assert_eq(plan_rows(&q), greedy_rows(start, end, max_res), "iter %d", iter);
    }
    /* Both branches were really exercised. */
    cr_expect_gt(coarsened, 500);
    cr_expect_gt(plain, 500);
}

/* ---- series ------------------------------------------------------------------------ */

Test(query_plan, series_buckets_count_whole_buckets_per_interval)
{
    int64_t d = date_us(2026, 11, 3);

    cr_expect_eq(plan_series_buckets(at(d, 10, 0), at(d, 10, 5), ET_RES_MINUTE), 5);
    cr_expect_eq(plan_series_buckets(at(d, 10, 0), at(d, 12, 0), ET_RES_HOUR), 2);
    cr_expect_eq(plan_series_buckets(d, d + 30 * DAY, ET_RES_DAY), 30);
    cr_expect_eq(plan_series_buckets(d, d + DAY, ET_RES_MINUTE), 1440);
}

Test(query_plan, series_buckets_count_partial_first_and_last_buckets)
{
    int64_t d = date_us(2026, 11, 3);

    cr_expect_eq(plan_series_buckets(at(d, 10, 13), at(d, 12, 20), ET_RES_HOUR), 3);
    cr_expect_eq(plan_series_buckets(at(d, 10, 13), at(d, 12, 0), ET_RES_HOUR), 2);
    cr_expect_eq(plan_series_buckets(at(d, 10, 13), at(d, 10, 14), ET_RES_HOUR), 1);
    cr_expect_eq(plan_series_buckets(at(d, 23, 0), at(d + DAY, 1, 0), ET_RES_DAY), 2);
    cr_expect_eq(plan_series_buckets(at(d, 12, 0), at(d + 30 * DAY, 12, 0), ET_RES_DAY), 31);
    cr_expect_eq(plan_series_buckets(at(d, 10, 13) + 1, at(d, 10, 15), ET_RES_MINUTE), 2);
    /* Before 1970 the buckets are still aligned to UTC midnight. */
    cr_expect_eq(plan_series_buckets(-DAY - HOUR, HOUR, ET_RES_DAY), 3);
}

Test(query_plan, series_buckets_of_empty_range_or_bad_interval)
{
    int64_t d = date_us(2026, 11, 3);

    cr_expect_eq(plan_series_buckets(d, d, ET_RES_HOUR), 0);
    cr_expect_eq(plan_series_buckets(d + MIN, d, ET_RES_HOUR), 0);
    cr_expect_eq(plan_series_buckets(d, d + DAY, (et_resolution_t)7), -EINVAL);
}

Test(query_plan, auto_interval_switches_after_240_minutes_and_240_hours)
{
    int64_t d = date_us(2026, 11, 3);

    cr_expect_eq(plan_auto_interval(d, d + MIN), ET_RES_MINUTE);
    cr_expect_eq(plan_auto_interval(d, d + 240 * MIN), ET_RES_MINUTE);
    cr_expect_eq(plan_auto_interval(d, d + 241 * MIN), ET_RES_HOUR);
    cr_expect_eq(plan_auto_interval(d, d + 24 * HOUR), ET_RES_HOUR);
    cr_expect_eq(plan_auto_interval(d, d + 240 * HOUR), ET_RES_HOUR);
    cr_expect_eq(plan_auto_interval(d, d + 240 * HOUR + MIN), ET_RES_DAY);
    cr_expect_eq(plan_auto_interval(d, d + 400 * DAY), ET_RES_DAY);
    cr_expect_eq(plan_auto_interval(INT64_MIN, INT64_MAX), ET_RES_DAY);
}
