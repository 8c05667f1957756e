/*
 * api_params — query string parsing for the statistics endpoint.
 *
 * One pass over the raw query: split on '&', split each pair at its first '=',
 * percent-decode name and value into stack buffers, look the name up in one table of
 * parameters and hand the value to that parameter's parser. The date range needs both
 * ends (and their defaults), so it is settled after the pass. Every parser is strict: a
 * value is accepted only in the exact forms DESIGN section 5 names, so nothing odd can
 * reach SQL, cache keys or the response echo.
 */
#include "api_params.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "et_hex.h"
#include "et_macros.h"
#include "timeutil.h"

/* User bytes echoed in a message: at most this many, then "...". */
#define ECHO_MAX 40
/* Percentile values are handled as exact integers in millionths (6 fraction digits). */
#define PCT_SCALE 1000000LL
#define PCT_FRACTION_DIGITS 6
#define PCT_MAX (100 * PCT_SCALE)
/* now_us must be a real clock reading: [1970, 10000); keeps the range arithmetic far
 * from overflow. */
#define NOW_MAX_US 253402300800000000LL
#define STATUS_ALL_MASK ((uint8_t)((1u << ET_STATUS_COUNT) - 1))

/* What the single pass collects beyond *out: the dates as given, settled at the end. */
typedef struct parse_state {
    api_params_t *out;
    api_regression_params_t *reg; /* the regressions endpoint's own fields; NULL otherwise */
    int64_t now_us;
    bool has_start, has_end;
    int64_t start_us, end_us; /* as given (UTC) */
    bool end_date_only;       /* end_date was "YYYY-MM-DD": it covers that whole day */
} parse_state_t;

typedef int (*param_parse_fn)(parse_state_t *st, const char *name, const char *v, size_t n,
                              api_error_t *err);

typedef enum decode_result {
    DECODE_OK,
    DECODE_BAD_ESCAPE,
    DECODE_NUL,
    DECODE_TOO_LONG,
    DECODE_BAD_UTF8,
} decode_result_t;

/* ---- errors ---- */

/* Copies s as printable ASCII ('?' for anything else) so user bytes can never break the
 * JSON error body or a log line; longer than max bytes ends in "...". */
static void echo_sanitized(const char *s, size_t n, size_t max, char *buf, size_t cap)
{
    size_t o = 0;
    bool cut = n > max;

    assert(cap >= max + 4);
    if (cut)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (cut) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
}

/* Fills *err as a 400 naming param (sanitized, truncated to the field) and returns
 * -EINVAL, so every error path is one `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static int fail(api_error_t *err, const char *param,
                                                      const char *fmt, ...)
{
    va_list ap;
    size_t plen = strlen(param);

    err->status = 400;
    snprintf(err->code, sizeof(err->code), "%s", "invalid_parameter");
    if (plen > sizeof(err->parameter) - 1)
        plen = sizeof(err->parameter) - 1;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)param[i];
        err->parameter[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    err->parameter[plen] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* ---- decoding ---- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
 * Identifiers become SQL parameters and JSON strings; both need valid UTF-8. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false;
        }
        if (n - i - 1 < need || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
        }
        i += need + 1;
    }
    return true;
}

/*
 * application/x-www-form-urlencoded decoding of one name or value into out (capacity
 * API_VALUE_MAX + 1, NUL-terminated): "%XX" is a byte, '+' a space. A NUL byte is
 * refused because every consumer of the result treats it as a C string.
 */
static decode_result_t percent_decode(const char *s, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (n - i < 3 || (hi = et_hex_value(s[i + 1])) < 0 || (lo = et_hex_value(s[i + 2])) < 0)
                return DECODE_BAD_ESCAPE;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0')
            return DECODE_NUL;
        if (o == API_VALUE_MAX)
            return DECODE_TOO_LONG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (!utf8_valid((const unsigned char *)out, o))
        return DECODE_BAD_UTF8;
    *out_len = o;
    return DECODE_OK;
}

static const char *decode_problem(decode_result_t r)
{
    switch (r) {
    case DECODE_BAD_ESCAPE:
        return "has a bad percent escape: '%' must be followed by two hex digits";
    case DECODE_NUL: return "must not contain a NUL byte (%00)";
    case DECODE_TOO_LONG: return "is longer than 1024 bytes";
    case DECODE_BAD_UTF8: return "is not valid UTF-8";
    case DECODE_OK: break;
    }
    assert(0 && "no problem to describe");
    return "is invalid";
}

static bool text_is(const char *v, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(v, word, n) == 0;
}

/* ---- one parser per parameter ---- */

/* Identifiers are opaque: any valid UTF-8 of the right length is a legal id (it only
 * ever travels as a bound SQL parameter), exactly as the event codec accepts them. */
static int parse_id(const char *name, const char *v, size_t n, size_t max, char *dst,
                    api_error_t *err)
{
    if (n > max)
        return fail(err, name, "must be at most %zu bytes", max);
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

static int parse_workflow(parse_state_t *st, const char *name, const char *v, size_t n,
                          api_error_t *err)
{
    st->out->has_workflow = true;
    return parse_id(name, v, n, ET_WORKFLOW_ID_MAX, st->out->workflow_id, err);
}

static int parse_tenant(parse_state_t *st, const char *name, const char *v, size_t n,
                        api_error_t *err)
{
    st->out->has_tenant = true;
    return parse_id(name, v, n, ET_TENANT_ID_MAX, st->out->tenant_id, err);
}

/*
 * An RFC 3339 instant or a date, bounded to [2000-01-01, now + 1 day]. A '+' typed
 * unencoded in a query decodes to a space, so "…T12:00:00+05:30" arrives as
 * "…T12:00:00 05:30"; a space can mean nothing else at the offset's sign, so it is read
 * as '+' rather than failing the most natural way to write an offset.
 */
static int parse_instant(const parse_state_t *st, const char *name, const char *v, size_t n,
                         int64_t *t, bool *date_only, api_error_t *err)
{
    int rc = et_time_parse(v, n, t, date_only);

    if (rc < 0 && n >= 25 && n <= 40 && v[n - 6] == ' ') {
        char fixed[41];

        memcpy(fixed, v, n);
        fixed[n - 6] = '+';
        rc = et_time_parse(fixed, n, t, date_only);
    }
    if (rc < 0)
        return fail(err, name,
                    "must be an RFC 3339 time like 2026-11-01T12:00:00Z or a date like "
                    "2026-11-01");
    if (*t < ET_TIME_MIN_VALID_US)
        return fail(err, name, "must not be before 2000-01-01");
    if (*t > st->now_us + ET_US_PER_DAY)
        return fail(err, name, "must not be more than 1 day in the future");
    return 0;
}

static int parse_start(parse_state_t *st, const char *name, const char *v, size_t n,
                       api_error_t *err)
{
    bool date_only;

    st->has_start = true;
    return parse_instant(st, name, v, n, &st->start_us, &date_only, err);
}

static int parse_end(parse_state_t *st, const char *name, const char *v, size_t n, api_error_t *err)
{
    st->has_end = true;
    return parse_instant(st, name, v, n, &st->end_us, &st->end_date_only, err);
}

/* "all", or a comma list of distinct statuses; the echo is rebuilt canonically so equal
 * questions get equal answers (and ETags) however they were spelled. */
static int parse_status(parse_state_t *st, const char *name, const char *v, size_t n,
                        api_error_t *err)
{
    api_params_t *out = st->out;
    bool is_list = memchr(v, ',', n) != NULL;
    uint8_t mask = 0;
    size_t pos = 0, o = 0;

    if (text_is(v, n, "all")) {
        out->status_mask = STATUS_ALL_MASK;
        snprintf(out->status_text, sizeof(out->status_text), "%s", "all");
        return 0;
    }
    while (pos <= n) {
        const char *item = v + pos;
        const char *comma = memchr(item, ',', n - pos);
        size_t len = comma != NULL ? (size_t)(comma - item) : n - pos;
        et_status_t s;
        char echo[ECHO_MAX + 4];

        pos += len + 1;
        if (len == 0)
            return fail(err, name, "has an empty item in its comma list");
        if (is_list && text_is(item, len, "all"))
            return fail(err, name, "must be all or a list of statuses, not both");
        echo_sanitized(item, len, ECHO_MAX, echo, sizeof(echo));
        if (et_status_parse(item, len, &s) < 0)
            return fail(err, name,
                        "has unknown status \"%s\": use all, success, failed, cancelled or "
                        "timeout",
                        echo);
        if (mask & (1u << s))
            return fail(err, name, "lists %s more than once", et_status_name(s));
        mask |= (uint8_t)(1u << s);
    }

    out->status_mask = mask;
    if (mask == STATUS_ALL_MASK) {
        snprintf(out->status_text, sizeof(out->status_text), "%s", "all");
        return 0;
    }
    for (int s = 0; s < ET_STATUS_COUNT; s++) {
        const char *sname;
        size_t slen;

        if (!(mask & (1u << s)))
            continue;
        sname = et_status_name((et_status_t)s);
        slen = strlen(sname);
        assert(o + slen + 2 <= sizeof(out->status_text));
        if (o > 0)
            out->status_text[o++] = ',';
        memcpy(out->status_text + o, sname, slen);
        o += slen;
    }
    out->status_text[o] = '\0';
    return 0;
}

typedef enum pct_result {
    PCT_OK,
    PCT_SYNTAX,
    PCT_LEADING_ZERO,
    PCT_TOO_PRECISE,
    PCT_RANGE,
} pct_result_t;

/*
 * One percentile as written: digits, then optionally '.' and 1-6 digits. The value is
 * kept as an exact integer in millionths: duplicates compare exactly ("99.9" equals
 * "99.90"), and q = millionths / 1e8 is one correctly rounded division, so "99.9" gives
 * the same double as the literal 0.999. Leading zeros are refused so a key ("p050")
 * cannot differ from the canonical spelling of its value.
 */
static pct_result_t parse_percentile(const char *s, size_t n, int64_t *millionths)
{
    size_t i = 0;
    int idigits = 0, fdigits = 0;
    int64_t ip = 0, frac = 0;

    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (idigits < 4) /* enough to know it is out of range */
            ip = ip * 10 + (s[i] - '0');
        idigits++;
        i++;
    }
    if (idigits == 0)
        return PCT_SYNTAX;
    if (i < n) {
        if (s[i] != '.')
            return PCT_SYNTAX;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (fdigits == PCT_FRACTION_DIGITS)
                return PCT_TOO_PRECISE;
            frac = frac * 10 + (s[i] - '0');
            fdigits++;
            i++;
        }
        if (fdigits == 0 || i != n)
            return PCT_SYNTAX;
    }
    if (idigits > 1 && s[0] == '0')
        return PCT_LEADING_ZERO;
    if (idigits > 3)
        return PCT_RANGE;
    for (int k = fdigits; k < PCT_FRACTION_DIGITS; k++)
        frac *= 10;
    *millionths = ip * PCT_SCALE + frac;
    if (*millionths <= 0 || *millionths > PCT_MAX)
        return PCT_RANGE;
    return PCT_OK;
}

static int parse_percentiles(parse_state_t *st, const char *name, const char *v, size_t n,
                             api_error_t *err)
{
    api_params_t *out = st->out;
    int64_t seen[API_PERCENTILES_MAX];
    size_t pos = 0;
    int count = 0;

    while (pos <= n) {
        const char *item = v + pos;
        const char *comma = memchr(item, ',', n - pos);
        size_t len = comma != NULL ? (size_t)(comma - item) : n - pos;
        char echo[ECHO_MAX + 4];
        int64_t m = 0;

        pos += len + 1;
        if (len == 0)
            return fail(err, name, "has an empty item in its comma list");
        if (count == API_PERCENTILES_MAX)
            return fail(err, name, "must list at most %d percentiles", API_PERCENTILES_MAX);
        echo_sanitized(item, len, ECHO_MAX, echo, sizeof(echo));
        switch (parse_percentile(item, len, &m)) {
        case PCT_OK: break;
        case PCT_SYNTAX:
            return fail(err, name,
                        "has \"%s\", which is not a plain number like 50 or 99.9 (digits, "
                        "optional fraction)",
                        echo);
        case PCT_LEADING_ZERO:
            return fail(err, name, "has \"%s\": write numbers without leading zeros", echo);
        case PCT_TOO_PRECISE:
            return fail(err, name, "has \"%s\": at most %d digits after the point", echo,
                        PCT_FRACTION_DIGITS);
        case PCT_RANGE:
            return fail(err, name, "has \"%s\": a percentile must be above 0 and at most 100",
                        echo);
        }
        for (int k = 0; k < count; k++) {
            if (seen[k] == m)
                return fail(err, name, "lists the percentile \"%s\" more than once", echo);
        }
        seen[count] = m;
        out->percentiles[count] = (double)m / (double)PCT_MAX;
        /* len <= 10 here ("100", "99.999999"), so the key always fits. */
        snprintf(out->percentile_keys[count], sizeof(out->percentile_keys[count]), "p%.*s",
                 (int)len, item);
        count++;
    }
    out->percentile_count = count;
    return 0;
}

static int parse_interval(parse_state_t *st, const char *name, const char *v, size_t n,
                          api_error_t *err)
{
    static const struct {
        const char *word;
        api_interval_t value;
    } words[] = {
        {"minute", API_INTERVAL_MINUTE},
        {"hour", API_INTERVAL_HOUR},
        {"day", API_INTERVAL_DAY},
        {"auto", API_INTERVAL_AUTO},
    };

    for (size_t i = 0; i < ET_ARRAY_LEN(words); i++) {
        if (text_is(v, n, words[i].word)) {
            st->out->interval = words[i].value;
            return 0;
        }
    }
    return fail(err, name, "must be minute, hour, day or auto");
}

static int parse_group_by(parse_state_t *st, const char *name, const char *v, size_t n,
                          api_error_t *err)
{
    if (!text_is(v, n, "workflow"))
        return fail(err, name, "must be workflow");
    st->out->group_by_workflow = true;
    return 0;
}

static int parse_sort(parse_state_t *st, const char *name, const char *v, size_t n,
                      api_error_t *err)
{
    static const struct {
        const char *word;
        api_sort_t value;
    } words[] = {
        {"p95", API_SORT_P95},
        {"count", API_SORT_COUNT},
        {"avg", API_SORT_AVG},
        {"max", API_SORT_MAX},
    };

    for (size_t i = 0; i < ET_ARRAY_LEN(words); i++) {
        if (text_is(v, n, words[i].word)) {
            st->out->sort = words[i].value;
            return 0;
        }
    }
    return fail(err, name, "must be p95, count, avg or max");
}

/* Digits only: strtol would take a sign, spaces and hex, none of which a limit needs. */
static int parse_limit(parse_state_t *st, const char *name, const char *v, size_t n,
                       api_error_t *err)
{
    long value = 0;

    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(err, name, "must be a whole number from 1 to %d", API_LIMIT_MAX);
        if (value <= API_LIMIT_MAX) /* past the maximum the exact value no longer matters */
            value = value * 10 + (v[i] - '0');
    }
    if (value < 1 || value > API_LIMIT_MAX)
        return fail(err, name, "must be from 1 to %d", API_LIMIT_MAX);
    st->out->limit = (int)value;
    return 0;
}

static int parse_include(parse_state_t *st, const char *name, const char *v, size_t n,
                         api_error_t *err)
{
    if (!text_is(v, n, "histogram"))
        return fail(err, name, "must be histogram");
    st->out->include_histogram = true;
    return 0;
}

/* "run", "queue_wait", or both as a comma list, each once. */
static int parse_measure(parse_state_t *st, const char *name, const char *v, size_t n,
                         api_error_t *err)
{
    uint8_t mask = 0;
    size_t pos = 0;

    while (pos <= n) {
        const char *item = v + pos;
        const char *comma = memchr(item, ',', n - pos);
        size_t len = comma != NULL ? (size_t)(comma - item) : n - pos;
        uint8_t bit;

        pos += len + 1;
        if (text_is(item, len, "run"))
            bit = API_MEASURE_RUN;
        else if (text_is(item, len, "queue_wait"))
            bit = API_MEASURE_QUEUE_WAIT;
        else
            return fail(err, name, "must be run, queue_wait or run,queue_wait");
        if (mask & bit)
            return fail(err, name, "lists a measure more than once");
        mask |= bit;
    }
    st->out->measures = mask;
    return 0;
}

typedef struct param_def {
    const char *name;
    param_parse_fn parse;
} param_def_t;

/* Every parameter the endpoint knows; the index is its bit in the "seen" mask. */
static const param_def_t param_defs[] = {
    {"workflow_id", parse_workflow},
    {"tenant_id", parse_tenant},
    {"start_date", parse_start},
    {"end_date", parse_end},
    {"status", parse_status},
    {"percentiles", parse_percentiles},
    {"interval", parse_interval},
    {"group_by", parse_group_by},
    {"sort", parse_sort},
    {"limit", parse_limit},
    {"include", parse_include},
    {"measure", parse_measure},
};

/* ---- the whole query ---- */

static void set_defaults(api_params_t *out)
{
    static const char *const keys[] = {"50", "90", "95", "99"};
    static const int values[] = {50, 90, 95, 99};

    memset(out, 0, sizeof(*out));
    out->status_mask = STATUS_ALL_MASK;
    snprintf(out->status_text, sizeof(out->status_text), "%s", "all");
    for (size_t i = 0; i < ET_ARRAY_LEN(keys); i++) {
        /* Same arithmetic as parse_percentiles, so a default equals the same value given. */
        out->percentiles[i] = (double)(values[i] * PCT_SCALE) / (double)PCT_MAX;
        snprintf(out->percentile_keys[i], sizeof(out->percentile_keys[i]), "p%s", keys[i]);
    }
    out->percentile_count = (int)ET_ARRAY_LEN(keys);
    out->interval = API_INTERVAL_NONE;
    out->sort = API_SORT_P95;
    out->limit = API_LIMIT_DEFAULT;
    out->measures = API_MEASURE_RUN;
}

/*
 * Applies the range defaults (end = now, start = end - 24 h), extends a date-only end to
 * the end of its day, checks start < end on the values as given, then widens the range to
 * whole minutes, the finest rollup: the response echoes what it actually covered.
 */
static int settle_range(parse_state_t *st, api_error_t *err)
{
    api_params_t *out = st->out;
    int64_t end = st->has_end ? st->end_us + (st->end_date_only ? ET_US_PER_DAY : 0) : st->now_us;
    int64_t start = st->has_start ? st->start_us : end - ET_US_PER_DAY;
    int64_t end_floor;

    if (start >= end) {
        /* Name the parameter the caller wrote: with end_date defaulted, a start in the
         * future is the start's fault. */
        if (!st->has_end)
            return fail(err, "start_date", "must be before end_date, which defaults to now");
        return fail(err, "end_date", "must be after start_date");
    }
    out->start_us = et_time_floor(start, ET_RES_MINUTE);
    end_floor = et_time_floor(end, ET_RES_MINUTE);
    out->end_us = end_floor == end ? end : end_floor + ET_US_PER_MIN;
    return 0;
}

static const param_def_t *find_param(const param_def_t *defs, size_t ndefs, const char *name,
                                     size_t n)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (text_is(name, n, defs[i].name))
            return &defs[i];
    }
    return NULL;
}

/* The pass over the pairs both endpoints share, against one endpoint's table; the
 * defaults are already in place. */
static int parse_pairs(parse_state_t *st, const param_def_t *defs, size_t ndefs, const char *query,
                       size_t len, api_error_t *err)
{
    char name[API_VALUE_MAX + 1], value[API_VALUE_MAX + 1];
    uint32_t seen = 0;
    size_t pos = 0;

    assert(ndefs <= 32);
    if (len > API_QUERY_MAX)
        return fail(err, "query", "is longer than %d bytes", API_QUERY_MAX);

    while (pos < len) {
        const char *pair = query + pos;
        const char *amp = memchr(pair, '&', len - pos);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : len - pos;
        const char *eq;
        size_t raw_nlen, raw_vlen, nlen, vlen;
        const param_def_t *def;
        decode_result_t r;
        char echo[ECHO_MAX + 4];

        pos += plen + 1;
        if (plen == 0)
            continue; /* "a=1&&b=2" or a trailing '&': nothing was asked, nothing is wrong */
        eq = memchr(pair, '=', plen);
        raw_nlen = eq != NULL ? (size_t)(eq - pair) : plen;
        raw_vlen = eq != NULL ? plen - raw_nlen - 1 : 0;
        if (raw_nlen == 0)
            return fail(err, "query", "has a value with no parameter name before '='");

        r = percent_decode(pair, raw_nlen, name, &nlen);
        if (r != DECODE_OK) {
            echo_sanitized(pair, raw_nlen, sizeof(err->parameter) - 4, echo, sizeof(echo));
            return fail(err, echo, "parameter name %s", decode_problem(r));
        }
        def = find_param(defs, ndefs, name, nlen);
        if (def == NULL) {
            echo_sanitized(name, nlen, ECHO_MAX, echo, sizeof(echo));
            return fail(err, name, "unknown parameter \"%s\"", echo);
        }
        if (seen & (1u << (def - defs)))
            return fail(err, def->name, "given more than once");
        seen |= 1u << (def - defs);

        r = percent_decode(eq != NULL ? eq + 1 : pair + plen, raw_vlen, value, &vlen);
        if (r != DECODE_OK)
            return fail(err, def->name, "%s", decode_problem(r));
        if (vlen == 0)
            return fail(err, def->name, "must not be empty");
        if (def->parse(st, def->name, value, vlen, err) < 0)
            return -EINVAL;
    }
    return settle_range(st, err);
}

int api_params_parse(const char *query, size_t len, int64_t now_us, api_params_t *out,
                     api_error_t *err)
{
    parse_state_t st = {.out = out, .now_us = now_us};

    assert(out != NULL && err != NULL);
    assert(query != NULL || len == 0);
    assert(now_us >= 0 && now_us < NOW_MAX_US && "now_us must be a clock reading");

    memset(err, 0, sizeof(*err));
    set_defaults(out);
    return parse_pairs(&st, param_defs, ET_ARRAY_LEN(param_defs), query, len, err);
}

/* ---- the regressions endpoint ---- */

/* "failure_rate", or a percentile as percentiles= takes one, after a 'p': "p95", "p99.9". */
static int parse_metric(parse_state_t *st, const char *name, const char *v, size_t n,
                        api_error_t *err)
{
    api_regression_params_t *reg = st->reg;
    char echo[ECHO_MAX + 4];
    int64_t m = 0;

    if (text_is(v, n, "failure_rate")) {
        reg->failure_rate = true;
        snprintf(reg->metric, sizeof(reg->metric), "%s", "failure_rate");
        return 0;
    }
    echo_sanitized(v, n, ECHO_MAX, echo, sizeof(echo));
    if (n < 2 || v[0] != 'p' || parse_percentile(v + 1, n - 1, &m) != PCT_OK)
        return fail(err, name,
                    "has \"%s\": use failure_rate or a percentile like p50, p95 or p99.9 (above "
                    "0, at most 100, no leading zeros, at most %d decimals)",
                    echo, PCT_FRACTION_DIGITS);
    reg->failure_rate = false;
    reg->quantile = (double)m / (double)PCT_MAX;
    /* n <= 11 here ("p99.999999"), so the key always fits. */
    snprintf(reg->metric, sizeof(reg->metric), "%.*s", (int)n, v);
    return 0;
}

static int parse_min_runs(parse_state_t *st, const char *name, const char *v, size_t n,
                          api_error_t *err)
{
    int64_t value = 0;

    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(err, name, "must be a whole number from 1 to %lld",
                        (long long)API_MIN_RUNS_MAX);
        if (value <= API_MIN_RUNS_MAX)
            value = value * 10 + (v[i] - '0');
    }
    if (value < 1 || value > API_MIN_RUNS_MAX)
        return fail(err, name, "must be from 1 to %lld", (long long)API_MIN_RUNS_MAX);
    st->reg->min_runs = value;
    return 0;
}

/* A percentage: digits, optionally '.' and one or two digits; 0 to API_THRESHOLD_MAX. */
static int parse_threshold(parse_state_t *st, const char *name, const char *v, size_t n,
                           api_error_t *err)
{
    int64_t hundredths = 0;
    size_t i = 0;
    int idigits = 0, fdigits = 0;

    while (i < n && v[i] >= '0' && v[i] <= '9' && idigits < 8) {
        hundredths = hundredths * 10 + (v[i++] - '0');
        idigits++;
    }
    hundredths *= 100;
    if (i < n && v[i] == '.' && idigits > 0) {
        for (i++; i < n && v[i] >= '0' && v[i] <= '9' && fdigits < 2; i++, fdigits++)
            hundredths += (v[i] - '0') * (fdigits == 0 ? 10 : 1);
        if (fdigits == 0)
            i = 0; /* "20." */
    }
    if (idigits == 0 || i != n)
        return fail(err, name, "must be a percentage like 20 or 12.5 (digits, at most 2 decimals)");
    if (hundredths > (int64_t)API_THRESHOLD_MAX * 100)
        return fail(err, name, "must be at most %d (percent)", API_THRESHOLD_MAX);
    st->reg->threshold_percent = (double)hundredths / 100.0;
    return 0;
}

static const param_def_t regression_param_defs[] = {
    {"tenant_id", parse_tenant},    {"start_date", parse_start}, {"end_date", parse_end},
    {"status", parse_status},       {"metric", parse_metric},    {"min_runs", parse_min_runs},
    {"threshold", parse_threshold}, {"limit", parse_limit},
};

int api_regression_params_parse(const char *query, size_t len, int64_t now_us,
                                api_regression_params_t *out, api_error_t *err)
{
    parse_state_t st = {.out = &out->base, .reg = out, .now_us = now_us};
    int rc;

    assert(out != NULL && err != NULL);
    assert(query != NULL || len == 0);
    assert(now_us >= 0 && now_us < NOW_MAX_US && "now_us must be a clock reading");

    memset(err, 0, sizeof(*err));
    memset(out, 0, sizeof(*out));
    set_defaults(&out->base);
    out->base.group_by_workflow = true; /* the rows are read and merged per workflow */
    out->quantile = 0.95;               /* as parse_percentile gives "95" */
    snprintf(out->metric, sizeof(out->metric), "%s", "p95");
    out->min_runs = API_MIN_RUNS_DEFAULT;
    out->threshold_percent = API_THRESHOLD_DEFAULT;
    rc = parse_pairs(&st, regression_param_defs, ET_ARRAY_LEN(regression_param_defs), query, len,
                     err);
    if (rc < 0)
        return rc;
    /* A failure rate counts failed and timed-out runs among all runs: a status filter would
     * only make it 0 or 1. */
    if (out->failure_rate && out->base.status_mask != STATUS_ALL_MASK)
        return fail(err, "status", "applies to percentile metrics only, not to failure_rate");
    out->base.percentile_count = 1;
    out->base.percentiles[0] = out->quantile;
    snprintf(out->base.percentile_keys[0], sizeof(out->base.percentile_keys[0]), "%s",
             out->failure_rate ? "p95" : out->metric);
    return 0;
}
