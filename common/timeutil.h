/*
 * timeutil — UTC time in µs since the Unix epoch: clocks, bucket flooring and RFC 3339.
 * All functions are pure except the clocks; none allocates. Parsers return 0 or -EINVAL.
 */
#ifndef EXECTIME_TIMEUTIL_H
#define EXECTIME_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ET_US_PER_SEC 1000000LL
#define ET_US_PER_MIN (60LL * ET_US_PER_SEC)
#define ET_US_PER_HOUR (60LL * ET_US_PER_MIN)
#define ET_US_PER_DAY (24LL * ET_US_PER_HOUR)
/* 2000-01-01T00:00:00Z: events before it are refused. */
#define ET_TIME_MIN_VALID_US 946684800000000LL

typedef enum et_resolution {
    ET_RES_MINUTE = 0,
    ET_RES_HOUR = 1,
    ET_RES_DAY = 2,
} et_resolution_t;
#define ET_RES_COUNT 3

int64_t et_now_us(void);       /* CLOCK_REALTIME */
int64_t et_monotonic_us(void); /* CLOCK_MONOTONIC */

int64_t et_resolution_us(et_resolution_t res);
const char *et_resolution_name(et_resolution_t res); /* "minute", "hour", "day" */

/* Start of the UTC bucket holding t (floor, also for negative t). */
int64_t et_time_floor(int64_t t_us, et_resolution_t res);

/*
 * The first instant the agent still writes for a retention of `days` days: the start of
 * the UTC day (days - 1) days before the day holding now_us. The database's maintenance
 * (exectime.maintain) keeps one day more, from the start of (today - days) by its own
 * clock, so the agent never writes into a day that maintenance has removed or is about to
 * remove while their clocks differ by less than a day (docs/operations.md, "Retention").
 * days <= 0 means kept for ever: INT64_MIN.
 */
int64_t et_retention_start(int64_t now_us, int days);

/* Days since the epoch <-> civil date (proleptic Gregorian, UTC). */
int64_t et_days_from_civil(int64_t y, unsigned m, unsigned d);
void et_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/*
 * Formats t as "YYYY-MM-DDTHH:MM:SSZ", or with ".ffffff" before the Z when t has
 * a fraction of a second. Needs cap >= 28; returns the length, -ENOSPC, or -ERANGE for a
 * year outside 0000-9999 (no RFC 3339 form).
 */
int et_time_format(int64_t t_us, char *buf, size_t cap);

/*
 * Parses an RFC 3339 instant ("2026-11-01T12:00:00Z", "…T12:00:00.5+02:00", lower-case t/z
 * allowed) or a date "2026-11-01" (UTC midnight; *date_only set true). Rejects anything
 * else, including out-of-range fields and trailing bytes. Returns 0 or -EINVAL.
 */
int et_time_parse(const char *s, size_t len, int64_t *out_us, bool *date_only);

#endif
