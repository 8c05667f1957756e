/*
 * timeutil — UTC µs timestamps: clocks, bucket flooring, civil dates and RFC 3339.
 *
 * Calendar arithmetic is done here by hand (proleptic Gregorian, Howard Hinnant's
 * days/civil algorithms) so nothing depends on TZ, the locale, mktime or timegm.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include "timeutil.h"

#include <assert.h>
#include <errno.h>
#include <time.h>

/* Days from 0000-03-01 to 1970-01-01 in the shifted (March-based) calendar. */
#define EPOCH_SHIFT_DAYS 719468
#define DAYS_PER_ERA 146097 /* 400 Gregorian years */

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * ET_US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t et_now_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

int64_t et_monotonic_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

int64_t et_resolution_us(et_resolution_t res)
{
    switch (res) {
    case ET_RES_MINUTE: return ET_US_PER_MIN;
    case ET_RES_HOUR: return ET_US_PER_HOUR;
    case ET_RES_DAY: return ET_US_PER_DAY;
    }
    assert(0 && "bad resolution");
    return ET_US_PER_MIN;
}

const char *et_resolution_name(et_resolution_t res)
{
    switch (res) {
    case ET_RES_MINUTE: return "minute";
    case ET_RES_HOUR: return "hour";
    case ET_RES_DAY: return "day";
    }
    assert(0 && "bad resolution");
    return "unknown";
}

/* Floor division: C's / truncates toward zero, which would put a negative time in the
 * bucket after its own. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return q;
}

/*
 * Start of the bucket holding t. Every bucket boundary is a multiple of the resolution
 * because the epoch is a UTC midnight and UTC has no leap seconds in POSIX time. Within
 * one bucket of INT64_MIN the true start is not representable; the lowest representable
 * bucket start is returned instead.
 */
int64_t et_time_floor(int64_t t_us, et_resolution_t res)
{
    int64_t r = et_resolution_us(res);
    int64_t q = floor_div(t_us, r);

    if (q < INT64_MIN / r)
        q = INT64_MIN / r;
    return q * r;
}

/* Whole days only: maintenance drops raw partitions and deletes rollups by UTC day, so a
 * window that moved by the hour would split a day between "accepted" and "dropped". */
int64_t et_retention_start(int64_t now_us, int days)
{
    if (days <= 0)
        return INT64_MIN;
    return et_time_floor(now_us, ET_RES_DAY) - (int64_t)(days - 1) * ET_US_PER_DAY;
}

/* Hinnant's days_from_civil: shift the year to start in March so the leap day is last,
 * then count whole 400-year eras plus the day of the era. */
int64_t et_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    if (m <= 2)
        y -= 1;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * DAYS_PER_ERA + (int64_t)doe - EPOCH_SHIFT_DAYS;
}

/* Hinnant's civil_from_days: the inverse of the above, era by era. */
void et_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + EPOCH_SHIFT_DAYS;
    int64_t era = (z >= 0 ? z : z - (DAYS_PER_ERA - 1)) / DAYS_PER_ERA;
    unsigned doe = (unsigned)(z - era * DAYS_PER_ERA);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned mm = mp < 10 ? mp + 3 : mp - 9;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mm;
    *y = (int64_t)yoe + era * 400 + (mm <= 2);
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Writes the fields by hand: snprintf would do, but this keeps the output independent of
 * the locale and makes the length obvious. Years outside 0000–9999 have no RFC 3339
 * form and give -ERANGE. */
int et_time_format(int64_t t_us, char *buf, size_t cap)
{
    int64_t days = floor_div(t_us, ET_US_PER_DAY);
    int64_t rem = t_us % ET_US_PER_DAY; /* made [0, one day) below */
    int64_t y;
    unsigned m, d, sod, frac;
    size_t len;

    if (rem < 0)
        rem += ET_US_PER_DAY;
    et_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return -ERANGE;
    sod = (unsigned)(rem / ET_US_PER_SEC);
    frac = (unsigned)(rem % ET_US_PER_SEC);
    len = frac != 0 ? 27 : 20;
    if (cap < len + 1)
        return -ENOSPC;

    put_digits(buf, (unsigned)y, 4);
    buf[4] = '-';
    put_digits(buf + 5, m, 2);
    buf[7] = '-';
    put_digits(buf + 8, d, 2);
    buf[10] = 'T';
    put_digits(buf + 11, sod / 3600, 2);
    buf[13] = ':';
    put_digits(buf + 14, sod / 60 % 60, 2);
    buf[16] = ':';
    put_digits(buf + 17, sod % 60, 2);
    if (frac != 0) {
        buf[19] = '.';
        put_digits(buf + 20, frac, 6);
    }
    buf[len - 1] = 'Z';
    buf[len] = '\0';
    return (int)len;
}

/* Exactly n ASCII digits at s: no sign, no space, no short field. */
static bool parse_digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" at s (10 bytes available), validated against the calendar. */
static bool parse_date(const char *s, int64_t *days)
{
    unsigned y, m, d;

    if (!parse_digits(s, 4, &y) || s[4] != '-' || !parse_digits(s + 5, 2, &m) || s[7] != '-' ||
        !parse_digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return false;
    *days = et_days_from_civil(y, m, d);
    return true;
}

/*
 * Strict RFC 3339: the full date, 'T', the full time (no leap second), an optional
 * fraction of 1-9 digits truncated to µs, and 'Z' or a ±HH:MM offset; or a bare date. Each
 * position is checked by hand so a stray byte anywhere is an error, not ignored.
 */
int et_time_parse(const char *s, size_t len, int64_t *out_us, bool *date_only)
{
    int64_t days, t;
    unsigned hh, mi, ss, oh, om, frac = 0;
    size_t p = 19;
    int nfrac = 0;

    if (s == NULL || len < 10 || !parse_date(s, &days))
        return -EINVAL;
    if (len == 10) {
        *out_us = days * ET_US_PER_DAY;
        if (date_only != NULL)
            *date_only = true;
        return 0;
    }

    if (len < 20 || (s[10] != 'T' && s[10] != 't') || !parse_digits(s + 11, 2, &hh) ||
        s[13] != ':' || !parse_digits(s + 14, 2, &mi) || s[16] != ':' ||
        !parse_digits(s + 17, 2, &ss))
        return -EINVAL;
    if (hh > 23 || mi > 59 || ss > 59)
        return -EINVAL;

    if (s[p] == '.') {
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (nfrac == 9)
                return -EINVAL;
            if (nfrac < 6)
                frac = frac * 10 + (unsigned)(s[p] - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0)
            return -EINVAL;
        for (int i = nfrac; i < 6; i++)
            frac *= 10;
    }

    t = days * ET_US_PER_DAY + hh * ET_US_PER_HOUR + mi * ET_US_PER_MIN + ss * ET_US_PER_SEC + frac;

    if (p == len)
        return -EINVAL;
    if (s[p] == 'Z' || s[p] == 'z') {
        p++;
    } else if (s[p] == '+' || s[p] == '-') {
        int64_t off;

        if (len - p < 6 || !parse_digits(s + p + 1, 2, &oh) || s[p + 3] != ':' ||
            !parse_digits(s + p + 4, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
        off = oh * ET_US_PER_HOUR + om * ET_US_PER_MIN;
        t = s[p] == '+' ? t - off : t + off;
        p += 6;
    } else {
        return -EINVAL;
    }
    if (p != len)
        return -EINVAL;

    *out_us = t;
    if (date_only != NULL)
        *date_only = false;
    return 0;
}
