/*
 * Unit tests for common/timeutil: clocks, UTC bucket flooring, civil dates and the strict
 * RFC 3339 formatter and parser.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "et_rng.h"
#include "timeutil.h"

/* Fixed seed, same times every run. */
static uint64_t rng_next(uint64_t *s)
{
    return et_splitmix64(s);
}

static int parse(const char *s, int64_t *t, bool *date_only)
{
    return et_time_parse(s, strlen(s), t, date_only);
}

static void expect_instant(const char *s, int64_t want)
{
    int64_t t = 0;
    bool d = true;

    cr_assert_eq(parse(s, &t, &d), 0, "\"%s\" rejected", s);
    cr_assert_eq(t, want, "\"%s\" -> %lld, want %lld", s, (long long)t, (long long)want);
    cr_assert_not(d, "\"%s\" is not date-only", s);
}

static void expect_reject(const char *s)
{
    int64_t t = 12345;
    bool d = true;

    cr_assert_eq(parse(s, &t, &d), -EINVAL, "\"%s\" accepted as %lld", s, (long long)t);
    cr_assert_eq(t, 12345, "\"%s\": output written on failure", s);
}

static void expect_format(int64_t t, const char *want)
{
    char buf[32];
    int n = et_time_format(t, buf, sizeof(buf));

    cr_assert_eq(n, (int)strlen(want), "format(%lld) length %d", (long long)t, n);
    cr_assert_str_eq(buf, want);
}

Test(timeutil, realtime_clock_is_after_2020)
{
    cr_assert_gt(et_now_us(), 1577836800000000LL);
}

Test(timeutil, monotonic_clock_never_goes_back)
{
    int64_t a = et_monotonic_us(), b = et_monotonic_us();

    cr_assert_geq(b, a);
    cr_assert_gt(a, 0);
}

Test(timeutil, resolutions_have_names_and_lengths)
{
    cr_assert_eq(et_resolution_us(ET_RES_MINUTE), 60000000LL);
    cr_assert_eq(et_resolution_us(ET_RES_HOUR), 3600000000LL);
    cr_assert_eq(et_resolution_us(ET_RES_DAY), 86400000000LL);
    cr_assert_str_eq(et_resolution_name(ET_RES_MINUTE), "minute");
    cr_assert_str_eq(et_resolution_name(ET_RES_HOUR), "hour");
    cr_assert_str_eq(et_resolution_name(ET_RES_DAY), "day");
}

Test(timeutil, floor_truncates_to_the_utc_bucket_start)
{
    int64_t t = 1793534400000000LL + 25 * ET_US_PER_MIN + 17 * ET_US_PER_SEC + 3; /* 12:25:17 */

    cr_assert_eq(et_time_floor(t, ET_RES_MINUTE), 1793534400000000LL + 25 * ET_US_PER_MIN);
    cr_assert_eq(et_time_floor(t, ET_RES_HOUR), 1793534400000000LL);
    cr_assert_eq(et_time_floor(t, ET_RES_DAY), 1793534400000000LL - 12 * ET_US_PER_HOUR);
}

Test(timeutil, floor_of_a_bucket_start_is_itself)
{
    for (int r = 0; r < ET_RES_COUNT; r++) {
        int64_t len = et_resolution_us((et_resolution_t)r);
        for (int64_t k = -3; k <= 3; k++)
            cr_assert_eq(et_time_floor(k * len, (et_resolution_t)r), k * len);
    }
}

Test(timeutil, floor_goes_down_for_negative_times)
{
    cr_assert_eq(et_time_floor(-1, ET_RES_MINUTE), -ET_US_PER_MIN);
    cr_assert_eq(et_time_floor(-1, ET_RES_HOUR), -ET_US_PER_HOUR);
    cr_assert_eq(et_time_floor(-1, ET_RES_DAY), -ET_US_PER_DAY);
    cr_assert_eq(et_time_floor(-ET_US_PER_DAY - 1, ET_RES_DAY), -2 * ET_US_PER_DAY);
    cr_assert_eq(et_time_floor(-ET_US_PER_MIN + 1, ET_RES_MINUTE), -ET_US_PER_MIN);
    /* 1969-12-31T23:59:59.5Z is in the 23:59 minute of 1969-12-31 */
    cr_assert_eq(et_time_floor(-500000, ET_RES_MINUTE), -ET_US_PER_MIN);
}

Test(timeutil, floor_near_int64_min_does_not_overflow)
{
    int64_t f = et_time_floor(INT64_MIN, ET_RES_DAY);

    cr_assert_geq(f, INT64_MIN);
    cr_assert_eq(f % ET_US_PER_DAY, 0);
    cr_assert_eq(et_time_floor(INT64_MAX, ET_RES_DAY) % ET_US_PER_DAY, 0);
}

Test(timeutil, floor_holds_its_definition_for_random_times)
{
    uint64_t s = 11;

    for (int i = 0; i < 100000; i++) {
        int64_t t = (int64_t)(rng_next(&s) >> 2) - (INT64_C(1) << 61);
        for (int r = 0; r < ET_RES_COUNT; r++) {
            int64_t len = et_resolution_us((et_resolution_t)r);
            int64_t f = et_time_floor(t, (et_resolution_t)r);
            cr_assert(f <= t && t - f < len, "t=%lld f=%lld", (long long)t, (long long)f);
            cr_assert_eq(f % len, 0);
        }
    }
}

Test(timeutil, days_from_civil_known_dates)
{
    cr_assert_eq(et_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(et_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(et_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(et_days_from_civil(2024, 2, 29), 19782);
    cr_assert_eq(et_days_from_civil(1, 1, 1), -719162);
    cr_assert_eq(et_days_from_civil(0, 3, 1), -719468);
    cr_assert_eq(et_days_from_civil(9999, 12, 31), 2932896);
}

Test(timeutil, civil_from_days_inverts_days_from_civil_every_day)
{
    int64_t y0;
    unsigned m0, d0;

    et_civil_from_days(-1000000, &y0, &m0, &d0);
    for (int64_t days = -1000000; days <= 3000000; days++) {
        int64_t y;
        unsigned m, d;

        et_civil_from_days(days, &y, &m, &d);
        cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= 31);
        cr_assert_eq(et_days_from_civil(y, m, d), days, "%lld-%u-%u", (long long)y, m, d);
        /* consecutive days are consecutive dates */
        if (days > -1000000) {
            bool next_day = y == y0 && m == m0 && d == d0 + 1;
            bool next_month = y == y0 && m == m0 + 1 && d == 1;
            bool next_year = y == y0 + 1 && m == 1 && d == 1 && m0 == 12 && d0 == 31;
            cr_assert(next_day || next_month || next_year);
        }
        y0 = y;
        m0 = m;
        d0 = d;
    }
}

Test(timeutil, format_writes_utc_without_fraction_when_whole_seconds)
{
    expect_format(0, "1970-01-01T00:00:00Z");
    expect_format(1793534400000000LL, "2026-11-01T12:00:00Z");
    expect_format(1709164800000000LL, "2024-02-29T00:00:00Z");
    expect_format(-62135596800000000LL, "0001-01-01T00:00:00Z");
}

Test(timeutil, format_writes_six_fraction_digits_when_not_whole)
{
    expect_format(1, "1970-01-01T00:00:00.000001Z");
    expect_format(500000, "1970-01-01T00:00:00.500000Z");
    expect_format(951868799999999LL, "2000-02-29T23:59:59.999999Z");
    expect_format(-500000, "1969-12-31T23:59:59.500000Z");
    expect_format(-1, "1969-12-31T23:59:59.999999Z");
    expect_format(253402300799999999LL, "9999-12-31T23:59:59.999999Z");
}

Test(timeutil, format_needs_room_for_the_terminator)
{
    char buf[28];

    cr_assert_eq(et_time_format(1, buf, 27), -ENOSPC);
    cr_assert_eq(et_time_format(1, buf, 28), 27);
    cr_assert_eq(et_time_format(0, buf, 20), -ENOSPC);
    cr_assert_eq(et_time_format(0, buf, 21), 20);
    cr_assert_eq(et_time_format(0, buf, 0), -ENOSPC);
}

Test(timeutil, format_refuses_years_outside_four_digits)
{
    char buf[64];

    cr_assert_eq(et_time_format(253402300800000000LL, buf, sizeof(buf)), -ERANGE);
    cr_assert_eq(et_time_format(-62167219200000000LL - 1, buf, sizeof(buf)), -ERANGE);
    cr_assert_eq(et_time_format(-62167219200000000LL, buf, sizeof(buf)), 20); /* 0000-01-01 */
    cr_assert_str_eq(buf, "0000-01-01T00:00:00Z");
    cr_assert_eq(et_time_format(INT64_MIN, buf, sizeof(buf)), -ERANGE);
    cr_assert_eq(et_time_format(INT64_MAX, buf, sizeof(buf)), -ERANGE);
}

Test(timeutil, parse_utc_instants)
{
    expect_instant("2026-11-01T12:00:00Z", 1793534400000000LL);
    expect_instant("1970-01-01T00:00:00Z", 0);
    expect_instant("1969-12-31T23:59:59Z", -ET_US_PER_SEC);
    expect_instant("0000-01-01T00:00:00Z", -62167219200000000LL);
    expect_instant("9999-12-31T23:59:59.999999Z", 253402300799999999LL);
}

Test(timeutil, parse_accepts_lower_case_t_and_z)
{
    expect_instant("2026-11-01t12:00:00z", 1793534400000000LL);
    expect_instant("2026-11-01T12:00:00z", 1793534400000000LL);
    expect_instant("2026-11-01t12:00:00Z", 1793534400000000LL);
}

Test(timeutil, parse_applies_offsets)
{
    expect_instant("2026-11-01T12:00:00+05:30", 1793514600000000LL);
    expect_instant("2026-11-01T12:00:00-08:00", 1793563200000000LL);
    expect_instant("2026-11-01T12:00:00+00:00", 1793534400000000LL);
    expect_instant("2026-11-01T12:00:00-00:00", 1793534400000000LL);
    expect_instant("2026-11-01T17:30:00.25+05:30", 1793534400250000LL);
    /* an offset can move the instant across a day and a year boundary */
    expect_instant("2000-01-01T00:00:00+23:59",
                   946684800000000LL - 23 * ET_US_PER_HOUR - 59 * ET_US_PER_MIN);
    expect_instant("1999-12-31T23:00:00-01:00", 946684800000000LL);
}

Test(timeutil, parse_truncates_fraction_to_microseconds)
{
    expect_instant("1970-01-01T00:00:00.1Z", 100000);
    expect_instant("1970-01-01T00:00:00.12Z", 120000);
    expect_instant("1970-01-01T00:00:00.000001Z", 1);
    expect_instant("1970-01-01T00:00:00.0000009Z", 0);
    expect_instant("1970-01-01T00:00:00.123456789Z", 123456);
    expect_instant("1970-01-01T00:00:00.999999999Z", 999999);
    expect_instant("1970-01-01T00:00:00.000000000Z", 0);
    expect_instant("1969-12-31T23:59:59.9999999Z", -1);
}

Test(timeutil, parse_date_only_is_utc_midnight)
{
    int64_t t;
    bool d = false;

    cr_assert_eq(parse("2026-11-01", &t, &d), 0);
    cr_assert(d);
    cr_assert_eq(t, 1793534400000000LL - 12 * ET_US_PER_HOUR);
    cr_assert_eq(parse("1900-03-01", &t, NULL), 0);
    cr_assert_eq(t, -2203891200000000LL);
}

Test(timeutil, parse_leap_days)
{
    int64_t t;

    cr_assert_eq(parse("2024-02-29", &t, NULL), 0);
    cr_assert_eq(t, 1709164800000000LL);
    cr_assert_eq(parse("2000-02-29", &t, NULL), 0);
    cr_assert_eq(parse("2000-02-29T23:59:59.999999Z", &t, NULL), 0);
    cr_assert_eq(t, 951868799999999LL);
    cr_assert_eq(parse("2400-02-29", &t, NULL), 0);
    expect_reject("2023-02-29");
    expect_reject("2023-02-29T00:00:00Z");
    expect_reject("1900-02-29");
    expect_reject("2100-02-29T12:00:00Z");
    expect_reject("2024-02-30");
}

Test(timeutil, parse_validates_days_of_each_month)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    char buf[32];
    int64_t t;

    for (unsigned m = 1; m <= 12; m++) {
        snprintf(buf, sizeof(buf), "2023-%02u-%02u", m, mdays[m - 1]);
        cr_assert_eq(parse(buf, &t, NULL), 0, "%s", buf);
        snprintf(buf, sizeof(buf), "2023-%02u-%02u", m, mdays[m - 1] + 1);
        expect_reject(buf);
        snprintf(buf, sizeof(buf), "2023-%02u-00", m);
        expect_reject(buf);
    }
    expect_reject("2023-00-10");
    expect_reject("2023-13-10");
}

Test(timeutil, parse_validates_time_fields)
{
    int64_t t;

    cr_assert_eq(parse("2026-11-01T23:59:59Z", &t, NULL), 0);
    expect_reject("2026-11-01T24:00:00Z");
    expect_reject("2026-11-01T12:60:00Z");
    expect_reject("2026-11-01T23:59:60Z"); /* leap seconds are not representable */
    expect_reject("2026-11-01T12:00:61Z");
    expect_reject("2026-11-01T12:00:00+24:00");
    expect_reject("2026-11-01T12:00:00+05:60");
    expect_reject("2026-11-01T12:00:00-99:00");
}

Test(timeutil, parse_rejects_malformed_input)
{
    static const char *const bad[] = {
        "",
        " ",
        "2026",
        "2026-11",
        "2026-11-1",
        "2026-1-01",
        "26-11-01",
        "+2026-11-01",
        "-2026-11-01",
        "02026-11-01",
        "2026/11/01",
        "2026-11-01 ",
        " 2026-11-01",
        "2026-11-01Z",
        "2026-11-01T",
        "2026-11-01T12",
        "2026-11-01T12:00",
        "2026-11-01T12:00Z",
        "2026-11-01T12:00:00",
        "2026-11-01 12:00:00Z",
        "2026-11-01_12:00:00Z",
        "2026-11-01T1:00:00Z",
        "2026-11-01T12:0:00Z",
        "2026-11-01T12:00:0Z",
        "2026-11-01T12:00:00.Z",
        "2026-11-01T12:00:00.1234567890Z",
        "2026-11-01T12:00:00,5Z",
        "2026-11-01T12:00:00.5",
        "2026-11-01T12:00:00ZZ",
        "2026-11-01T12:00:00Z ",
        "2026-11-01T12:00:00Zjunk",
        "2026-11-01T12:00:00+05",
        "2026-11-01T12:00:00+0530",
        "2026-11-01T12:00:00+5:30",
        "2026-11-01T12:00:00+05:3",
        "2026-11-01T12:00:00+05:30:00",
        "2026-11-01T12:00:00+05:30Z",
        "2026-11-01T12:00:00 +05:30",
        "2026-11-01T12:00:00UTC",
        "2026-11-01T12:00:00GMT",
        "2026-11-01T12:00:00+-5:30",
        "2026-11-01T12:00:00Z+05:30",
        "2026-11-01T+2:00:00Z",
        "2026-11-01T12:-1:00Z",
        "2026-11-01T12:00:00.-1Z",
        "2026-11-01T12:00:00.+1Z",
        "2026-11-01T12:00:00. 1Z",
        "2026-11-01T12:00:00.1 Z",
        "2026-11-0aT12:00:00Z",
        "2026-1a-01",
        "2026-11-01T12:00:00z\n",
        "2026-11-01\n",
        "２０２６-11-01",
        "20261101",
        "20261101T120000Z",
        "2026-W44-7",
        "2026-305",
        "now",
        "1793534400",
        "2026-11-01T12:00:00.5e3Z",
        "2026-11-01TT12:00:00Z",
        "2026-11-01T12::00:00Z",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(bad[i]);
}

Test(timeutil, parse_rejects_null_and_embedded_nul)
{
    int64_t t;
    static const char with_nul[] = "2026-11-01T12:00:00\0Z";

    cr_assert_eq(et_time_parse(NULL, 0, &t, NULL), -EINVAL);
    cr_assert_eq(et_time_parse(with_nul, sizeof(with_nul) - 1, &t, NULL), -EINVAL);
    cr_assert_eq(et_time_parse("2026-11-01\0", 11, &t, NULL), -EINVAL);
}

Test(timeutil, parse_reads_only_len_bytes)
{
    const char *s = "2026-11-01T12:00:00Zjunk";
    int64_t t;
    bool d = true;

    cr_assert_eq(et_time_parse(s, 20, &t, &d), 0);
    cr_assert_eq(t, 1793534400000000LL);
    cr_assert_not(d);
    cr_assert_eq(et_time_parse(s, 10, &t, &d), 0);
    cr_assert(d);
    cr_assert_eq(et_time_parse(s, 19, &t, &d), -EINVAL);
    cr_assert_eq(et_time_parse(s, strlen(s), &t, &d), -EINVAL);
}

Test(timeutil, format_then_parse_round_trips_random_times)
{
    const int64_t lo = -62167219200000000LL;        /* 0000-01-01 */
    const int64_t span = 253402300800000000LL - lo; /* up to 9999-12-31 */
    uint64_t s = 3;

    for (int i = 0; i < 20000; i++) {
        int64_t t = lo + (int64_t)(rng_next(&s) % (uint64_t)span);
        char buf[32];
        int64_t back;
        bool d = true;

        if (i % 4 == 0)
            t -= t % ET_US_PER_SEC; /* some whole seconds: the short form */
        cr_assert_gt(et_time_format(t, buf, sizeof(buf)), 0);
        cr_assert_eq(parse(buf, &back, &d), 0, "%s", buf);
        cr_assert_eq(back, t, "%s -> %lld, want %lld", buf, (long long)back, (long long)t);
        cr_assert_not(d);
    }
}

/* Every local time with any offset names the same instant as its UTC form. */
Test(timeutil, parse_with_offset_matches_utc_for_random_times)
{
    uint64_t s = 5;

    for (int i = 0; i < 20000; i++) {
        int64_t t = 946684800000000LL + (int64_t)(rng_next(&s) % (100ULL * 365 * 86400000000ULL));
        int64_t off_min = (int64_t)(rng_next(&s) % (2 * 1439 + 1)) - 1439;
        int64_t local = t + off_min * ET_US_PER_MIN;
        int64_t a = off_min < 0 ? -off_min : off_min;
        char buf[40], with_off[48];
        int64_t back;
        int n;

        n = et_time_format(local, buf, sizeof(buf));
        cr_assert_gt(n, 0);
        snprintf(with_off, sizeof(with_off), "%.*s%c%02lld:%02lld", n - 1, buf,
                 off_min < 0 ? '-' : '+', (long long)(a / 60), (long long)(a % 60));
        cr_assert_eq(parse(with_off, &back, NULL), 0, "%s", with_off);
        cr_assert_eq(back, t, "%s", with_off);
    }
}

Test(timeutil, format_of_parsed_date_is_midnight)
{
    int64_t t;
    char buf[32];

    cr_assert_eq(parse("2000-02-29", &t, NULL), 0);
    cr_assert_eq(et_time_format(t, buf, sizeof(buf)), 20);
    cr_assert_str_eq(buf, "2000-02-29T00:00:00Z");
    cr_assert_geq(t, ET_TIME_MIN_VALID_US);
    cr_assert_eq(et_time_floor(t, ET_RES_DAY), t);
}

/* RFC 3339 text to µs, for the retention tests below. */
static int64_t at(const char *s)
{
    int64_t t = 0;

    cr_assert_eq(parse(s, &t, NULL), 0, "\"%s\" rejected", s);
    return t;
}

static void expect_retention_start(const char *now, int days, const char *want)
{
    int64_t got = et_retention_start(at(now), days);
    char buf[32];

    cr_assert_eq(got, at(want), "retention_start(%s, %d) = %s, want %s", now, days,
                 et_time_format(got, buf, sizeof buf) > 0 ? buf : "?", want);
}

Test(timeutil, retention_start_is_the_utc_midnight_days_minus_one_back)
{
    expect_retention_start("2026-03-15T12:34:56.789012Z", 30, "2026-02-14T00:00:00Z");
    expect_retention_start("2026-03-15T12:34:56.789012Z", 14, "2026-03-02T00:00:00Z");
    expect_retention_start("2026-03-15T12:34:56.789012Z", 1, "2026-03-15T00:00:00Z");
}

/* The first accepted µs is the window's start itself; the µs before it is the last
 * refused one (callers compare finished_at >= start). */
Test(timeutil, retention_start_first_accepted_and_last_refused_microsecond)
{
    int64_t now = at("2026-07-20T08:00:00Z");
    int64_t start = et_retention_start(now, 30);

    cr_assert_eq(start, at("2026-06-21T00:00:00Z"));
    cr_assert(at("2026-06-21T00:00:00Z") >= start, "first microsecond of the window refused");
    cr_assert(at("2026-06-20T23:59:59.999999Z") < start, "last microsecond before it accepted");
}

/* The window moves by whole days: the same start all day long, one day on at midnight. */
Test(timeutil, retention_start_moves_only_at_utc_midnight)
{
    expect_retention_start("2026-03-01T00:00:00Z", 30, "2026-01-31T00:00:00Z");
    expect_retention_start("2026-03-01T23:59:59.999999Z", 30, "2026-01-31T00:00:00Z");
    expect_retention_start("2026-02-28T23:59:59.999999Z", 30, "2026-01-30T00:00:00Z");
}

Test(timeutil, retention_start_around_month_and_year_ends)
{
    /* Leap year: the day before March 1st is February 29th. */
    expect_retention_start("2024-03-01T00:00:00Z", 2, "2024-02-29T00:00:00Z");
    expect_retention_start("2024-03-01T00:00:00Z", 30, "2024-02-01T00:00:00Z");
    expect_retention_start("2024-03-31T10:00:00Z", 31, "2024-03-01T00:00:00Z");
    /* Not a leap year. */
    expect_retention_start("2026-03-01T00:00:00Z", 2, "2026-02-28T00:00:00Z");
    expect_retention_start("2100-03-01T00:00:00Z", 2, "2100-02-28T00:00:00Z");
    expect_retention_start("2000-03-01T00:00:00Z", 2, "2000-02-29T00:00:00Z");
    /* Months of 30 and 31 days, and the year end. */
    expect_retention_start("2026-05-01T06:00:00Z", 2, "2026-04-30T00:00:00Z");
    expect_retention_start("2026-08-01T06:00:00Z", 2, "2026-07-31T00:00:00Z");
    expect_retention_start("2027-01-01T00:00:00.000001Z", 1, "2027-01-01T00:00:00Z");
    expect_retention_start("2027-01-01T00:00:00.000001Z", 2, "2026-12-31T00:00:00Z");
    expect_retention_start("2027-01-14T00:00:00Z", 14, "2027-01-01T00:00:00Z");
    expect_retention_start("2027-01-14T00:00:00Z", 15, "2026-12-31T00:00:00Z");
}

/* exectime.maintain keeps from the start of (today - days): exactly one day before the
 * agent's window, for every day of a leap year and a few retentions. */
Test(timeutil, retention_start_is_one_day_after_what_maintenance_keeps)
{
    static const int retentions[] = {1, 14, 30, 400};
    int64_t first = at("2024-01-01T13:00:00Z");

    for (int i = 0; i < 366; i++) {
        int64_t now = first + i * ET_US_PER_DAY;
        int64_t today = et_time_floor(now, ET_RES_DAY);
        for (size_t k = 0; k < sizeof retentions / sizeof retentions[0]; k++) {
            int days = retentions[k];
            int64_t kept_from = today - (int64_t)days * ET_US_PER_DAY;
            cr_assert_eq(et_retention_start(now, days), kept_from + ET_US_PER_DAY,
                         "day %d, retention %d", i, days);
        }
    }
}

Test(timeutil, retention_of_zero_days_keeps_for_ever)
{
    cr_assert_eq(et_retention_start(at("2026-01-01T00:00:00Z"), 0), INT64_MIN);
    cr_assert_eq(et_retention_start(at("2026-01-01T00:00:00Z"), -1), INT64_MIN);
}
