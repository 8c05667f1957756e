/*
 * libFuzzer target for dates: et_time_parse (common/timeutil.c) on raw bytes, and the
 * statistics API's date parameters (agent/api_params.c) with the same bytes as
 * start_date, as end_date and as a whole query string. Beyond "never crash": a parsed
 * instant survives a format/parse round trip; an instant api_params accepts is
 * whole-minute aligned and inside the documented bounds; api_params agrees with
 * et_time_parse on bytes its query syntax leaves alone; every refusal is a 400 with a
 * printable message naming a parameter.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_params.h"
#include "timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US 1795000000000000LL /* 2026-11-18T10:13:20Z: a fixed clock, reproducible runs */

static void check_printable(const char *s, bool nonempty)
{
    if (nonempty && s[0] == '\0')
        abort();
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f)
            abort();
    }
}

/* Parses query and checks what any outcome must satisfy. Returns the parse's result. */
static int parse_checked(const char *query, size_t len, api_params_t *out)
{
    api_error_t err;
    int rc = api_params_parse(query, len, NOW_US, out, &err);
    if (rc == -EINVAL) {
        if (err.status != 400 || strcmp(err.code, "invalid_parameter") != 0)
            abort();
        check_printable(err.parameter, true);
        check_printable(err.message, true);
        return rc;
    }
    if (rc != 0)
        abort();
    /* Effective range: whole minutes, start < end, start no earlier than a day before
     * 2000-01-01 (a given start is refused before it; the default start is end_date - 24 h)
     * and end no later than a date-only end_date one day ahead covers (+ rounding up). */
    if (out->start_us >= out->end_us || out->start_us % ET_US_PER_MIN != 0 ||
        out->end_us % ET_US_PER_MIN != 0 || out->start_us < ET_TIME_MIN_VALID_US - ET_US_PER_DAY ||
        out->end_us > NOW_US + 2 * ET_US_PER_DAY + ET_US_PER_MIN)
        abort();
    if (out->percentile_count < 1 || out->percentile_count > API_PERCENTILES_MAX ||
        out->limit < 1 || out->limit > API_LIMIT_MAX || out->status_mask == 0)
        abort();
    for (int i = 0; i < out->percentile_count; i++) {
        if (!(out->percentiles[i] > 0.0 && out->percentiles[i] <= 1.0) ||
            out->percentile_keys[i][0] != 'p')
            abort();
    }
    return rc;
}

/* name=<data> as a query; returns the parse's result. */
static int parse_param(const char *name, const uint8_t *data, size_t size, api_params_t *out)
{
    static char query[API_QUERY_MAX + 64];
    size_t nlen = strlen(name);
    if (size > API_QUERY_MAX)
        size = API_QUERY_MAX; /* longer is refused before any parameter is read */
    memcpy(query, name, nlen);
    query[nlen] = '=';
    memcpy(query + nlen + 1, data, size);
    return parse_checked(query, nlen + 1 + size, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    int64_t t = 0;
    bool date_only = false;
    bool parsed = et_time_parse(s, size, &t, &date_only) == 0;
    if (parsed) {
        if (date_only && (size != 10 || t % ET_US_PER_DAY != 0))
            abort();
        char buf[40];
        int n = et_time_format(t, buf, sizeof buf);
        if (n >= 0) {
            int64_t again = 0;
            bool again_date_only = true;
            if (et_time_parse(buf, (size_t)n, &again, &again_date_only) != 0 || again != t ||
                again_date_only)
                abort();
        } else if (n != -ERANGE) {
            abort();
        }
    }

    api_params_t p;
    int start_rc = parse_param("start_date", data, size, &p);
    /* Bytes the query syntax leaves alone ('&', '%', '+' and '=' change their meaning) and
     * an instant in range and before the default end (now): api_params must read it as
     * et_time_parse does, floored to the minute. */
    bool plain = memchr(data, '&', size) == NULL && memchr(data, '%', size) == NULL &&
                 memchr(data, '+', size) == NULL && memchr(data, '=', size) == NULL &&
                 memchr(data, '\0', size) == NULL;
    if (parsed && plain && t >= ET_TIME_MIN_VALID_US && t < NOW_US) {
        if (start_rc != 0 || p.start_us != et_time_floor(t, ET_RES_MINUTE))
            abort();
    }
    (void)parse_param("end_date", data, size, &p);
    (void)parse_checked(s, size, &p);
    return 0;
}
