/* Unit tests for agent/api_params: the statistics endpoint's query string. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_params.h"
#include "timeutil.h"

/* 2026-11-28T12:34:56.789Z: "now" for every test, deliberately not on a minute. */
#define NOW_US 1795869296789000LL

static int64_t at(const char *rfc3339)
{
    int64_t t = 0;
    cr_assert_eq(et_time_parse(rfc3339, strlen(rfc3339), &t, NULL), 0, "bad test time %s", rfc3339);
    return t;
}

static int parse(const char *q, api_params_t *p, api_error_t *e)
{
    return api_params_parse(q, strlen(q), NOW_US, p, e);
}

static api_params_t parse_ok(const char *q)
{
    api_params_t p;
    api_error_t e;
    int rc = parse(q, &p, &e);
    cr_assert_eq(rc, 0, "query \"%s\" failed: %s: %s", q, e.parameter, e.message);
    return p;
}

static bool printable_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

/* The query fails as a 400 on param, with a message containing why. */
static void expect_error_len(const char *q, size_t len, const char *param, const char *why)
{
    api_params_t p;
    api_error_t e;
    int rc = api_params_parse(q, len, NOW_US, &p, &e);
    cr_assert_eq(rc, -EINVAL, "query \"%.80s\" should fail on %s", q, param);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.code, "invalid_parameter");
    cr_assert_str_eq(e.parameter, param, "query \"%.80s\": parameter \"%s\", expected \"%s\"", q,
                     e.parameter, param);
    cr_assert_not_null(strstr(e.message, why), "query \"%.80s\": message \"%s\" lacks \"%s\"", q,
                       e.message, why);
    cr_assert(printable_ascii(e.message) && printable_ascii(e.parameter));
}

static void expect_error(const char *q, const char *param, const char *why)
{
    expect_error_len(q, strlen(q), param, why);
}

static const char *const all_params[] = {"workflow_id", "tenant_id",   "start_date", "end_date",
                                         "status",      "percentiles", "interval",   "group_by",
                                         "sort",        "limit",       "include",    "measure"};
/* A valid value for each of all_params, in the same order. */
static const char *const valid_values[] = {"wf-1",   "t1", "2026-11-01", "2026-11-02",
                                           "failed", "99", "hour",       "workflow",
                                           "count",  "10", "histogram",  "queue_wait"};

#define DATE_MSG "must be an RFC 3339 time like 2026-11-01T12:00:00Z or a date like 2026-11-01"

/* ---- defaults and valid values ---- */

Test(api_params, empty_query_gives_every_default)
{
    api_params_t p = parse_ok("");
    cr_assert(!p.has_tenant);
    cr_assert(!p.has_workflow);
    cr_assert_eq(p.end_us, at("2026-11-28T12:35:00Z"), "end = now, ceiled to the minute");
    cr_assert_eq(p.start_us, at("2026-11-27T12:34:00Z"), "start = end - 24 h, floored");
    cr_assert_eq(p.status_mask, 0xf);
    cr_assert_str_eq(p.status_text, "all");
    cr_assert_eq(p.percentile_count, 4);
    cr_assert_str_eq(p.percentile_keys[0], "p50");
    cr_assert_str_eq(p.percentile_keys[1], "p90");
    cr_assert_str_eq(p.percentile_keys[2], "p95");
    cr_assert_str_eq(p.percentile_keys[3], "p99");
    cr_assert_eq(p.percentiles[0], 0.5);
    cr_assert_eq(p.percentiles[1], 0.9);
    cr_assert_eq(p.percentiles[2], 0.95);
    cr_assert_eq(p.percentiles[3], 0.99);
    cr_assert_eq(p.interval, API_INTERVAL_NONE);
    cr_assert(!p.group_by_workflow);
    cr_assert_eq(p.sort, API_SORT_P95);
    cr_assert_eq(p.limit, 50);
    cr_assert(!p.include_histogram);
}

Test(api_params, null_query_with_zero_length_is_empty)
{
    api_params_t p;
    api_error_t e;
    cr_assert_eq(api_params_parse(NULL, 0, NOW_US, &p, &e), 0);
    cr_assert_eq(p.limit, 50);
}

Test(api_params, accepts_every_parameter_at_once)
{
    api_params_t p = parse_ok("workflow_id=wf-1&tenant_id=t1&start_date=2026-11-01T00:00:00Z"
                              "&end_date=2026-11-08T00:00:00Z&status=failed,timeout"
                              "&percentiles=50,99.9&interval=hour&group_by=workflow"
                              "&sort=count&limit=1000&include=histogram");
    cr_assert(p.has_workflow);
    cr_assert_str_eq(p.workflow_id, "wf-1");
    cr_assert(p.has_tenant);
    cr_assert_str_eq(p.tenant_id, "t1");
    cr_assert_eq(p.start_us, at("2026-11-01T00:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-08T00:00:00Z"));
    cr_assert_eq(p.status_mask, (1 << ET_STATUS_FAILED) | (1 << ET_STATUS_TIMEOUT));
    cr_assert_str_eq(p.status_text, "failed,timeout");
    cr_assert_eq(p.percentile_count, 2);
    cr_assert_eq(p.interval, API_INTERVAL_HOUR);
    cr_assert(p.group_by_workflow);
    cr_assert_eq(p.sort, API_SORT_COUNT);
    cr_assert_eq(p.limit, 1000);
    cr_assert(p.include_histogram);
}

Test(api_params, parameter_order_does_not_matter)
{
    api_params_t a = parse_ok("limit=7&status=failed&end_date=2026-11-02&start_date=2026-11-01");
    api_params_t b = parse_ok("start_date=2026-11-01&end_date=2026-11-02&status=failed&limit=7");
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
}

Test(api_params, ignores_empty_pairs_between_ampersands)
{
    api_params_t p = parse_ok("&&limit=5&&&interval=day&");
    cr_assert_eq(p.limit, 5);
    cr_assert_eq(p.interval, API_INTERVAL_DAY);
    p = parse_ok("&");
    cr_assert_eq(p.limit, 50);
}

Test(api_params, percent_decodes_names_and_values_and_plus_is_space)
{
    api_params_t p = parse_ok("workflow%5Fid=wf%2D1%2fnightly&tenant_id=acme+corp");
    cr_assert_str_eq(p.workflow_id, "wf-1/nightly");
    cr_assert_str_eq(p.tenant_id, "acme corp");
    p = parse_ok("workflow_id=caf%C3%A9%20%F0%9F%9A%80");
    cr_assert_str_eq(p.workflow_id, "caf\xc3\xa9 \xf0\x9f\x9a\x80");
}

Test(api_params, workflow_id_accepts_1_to_128_bytes)
{
    char q[512];
    snprintf(q, sizeof(q), "workflow_id=%s", "x");
    cr_assert_str_eq(parse_ok(q).workflow_id, "x");
    snprintf(q, sizeof(q), "workflow_id=%0128d", 7);
    cr_assert_eq(strlen(parse_ok(q).workflow_id), 128);
    snprintf(q, sizeof(q), "workflow_id=%0129d", 7);
    expect_error(q, "workflow_id", "must be at most 128 bytes");
}

Test(api_params, tenant_id_accepts_1_to_64_bytes)
{
    char q[512];
    snprintf(q, sizeof(q), "tenant_id=%064d", 7);
    cr_assert_eq(strlen(parse_ok(q).tenant_id), 64);
    snprintf(q, sizeof(q), "tenant_id=%065d", 7);
    expect_error(q, "tenant_id", "must be at most 64 bytes");
}

/* Ids are opaque and only ever bound as SQL parameters: SQL-looking text is a legal id,
 * kept byte for byte. */
Test(api_params, ids_keep_injection_text_verbatim)
{
    api_params_t p = parse_ok("workflow_id=%27%20OR%201%3D1%20--&tenant_id=a;b");
    cr_assert_str_eq(p.workflow_id, "' OR 1=1 --");
    cr_assert_str_eq(p.tenant_id, "a;b");
    p = parse_ok("workflow_id=' OR 1=1 --");
    cr_assert_str_eq(p.workflow_id, "' OR 1=1 --");
}

/* ---- problems common to every parameter ---- */

Test(api_params, every_parameter_rejects_an_empty_value)
{
    char q[128];
    for (size_t i = 0; i < sizeof(all_params) / sizeof(all_params[0]); i++) {
        snprintf(q, sizeof(q), "%s=", all_params[i]);
        expect_error(q, all_params[i], "must not be empty");
        snprintf(q, sizeof(q), "%s", all_params[i]); /* no '=' at all */
        expect_error(q, all_params[i], "must not be empty");
    }
}

Test(api_params, every_parameter_rejects_being_given_twice)
{
    char q[256];
    for (size_t i = 0; i < sizeof(all_params) / sizeof(all_params[0]); i++) {
        snprintf(q, sizeof(q), "%s=%s", all_params[i], valid_values[i]);
        parse_ok(q);
        snprintf(q, sizeof(q), "%s=%s&limit=3&%s=%s", all_params[i], valid_values[i], all_params[i],
                 valid_values[i]);
        expect_error(q, all_params[i], "given more than once");
    }
    /* Spelled differently, still the same parameter. */
    expect_error("limit=1&l%69mit=2", "limit", "given more than once");
}

Test(api_params, every_parameter_rejects_bad_escapes_nul_and_invalid_utf8)
{
    static const struct {
        const char *value;
        const char *why;
    } bad[] = {
        {"%zz", "bad percent escape"},
        {"a%4", "bad percent escape"},
        {"a%", "bad percent escape"},
        {"%%41", "bad percent escape"},
        {"a%00b", "NUL byte"},
        {"%00", "NUL byte"},
        {"%ff", "not valid UTF-8"},
        {"%C0%AF", "not valid UTF-8"},       /* overlong '/' */
        {"%ED%A0%80", "not valid UTF-8"},    /* surrogate */
        {"%F4%90%80%80", "not valid UTF-8"}, /* above U+10FFFF */
        {"%C3", "not valid UTF-8"},          /* truncated sequence */
        {"\xff", "not valid UTF-8"},         /* raw, unescaped */
    };
    char q[128];
    for (size_t i = 0; i < sizeof(all_params) / sizeof(all_params[0]); i++) {
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            snprintf(q, sizeof(q), "%s=%s", all_params[i], bad[k].value);
            expect_error(q, all_params[i], bad[k].why);
        }
    }
}

Test(api_params, every_parameter_rejects_a_value_over_1024_bytes)
{
    static char q[4096];
    for (size_t i = 0; i < sizeof(all_params) / sizeof(all_params[0]); i++) {
        int n = snprintf(q, sizeof(q), "%s=", all_params[i]);
        memset(q + n, 'a', 1025);
        q[n + 1025] = '\0';
        expect_error(q, all_params[i], "longer than 1024 bytes");
        /* Escapes count decoded: 1025 "%41" is 1025 bytes too. */
        n = snprintf(q, sizeof(q), "%s=", all_params[i]);
        for (int k = 0; k < 1025; k++)
            memcpy(q + n + 3 * k, "%41", 3);
        q[n + 3 * 1025] = '\0';
        expect_error(q, all_params[i], "longer than 1024 bytes");
    }
}

Test(api_params, rejects_a_query_over_8_kib)
{
    static char q[8194];
    /* Exactly 8 KiB is fine: a parameter padded with empty pairs. */
    memset(q, '&', 8192);
    memcpy(q, "limit=9", 7);
    q[8192] = '\0';
    api_params_t p;
    api_error_t e;
    cr_assert_eq(api_params_parse(q, 8192, NOW_US, &p, &e), 0);
    cr_assert_eq(p.limit, 9);
    q[8192] = '&';
    q[8193] = '\0';
    expect_error_len(q, 8193, "query", "longer than 8192 bytes");
}

Test(api_params, rejects_unknown_parameters_by_name)
{
    expect_error("foo=1", "foo", "unknown parameter \"foo\"");
    expect_error("limit=5&Limit=5", "Limit", "unknown parameter \"Limit\"");
    expect_error("workflow=wf-1", "workflow", "unknown parameter \"workflow\"");
    expect_error("status;drop=1", "status;drop", "unknown parameter");
    expect_error("limit=5;status=failed", "limit", "whole number");
    /* A long name is cut to fit the parameter field; the message is cut too. */
    expect_error("aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd=1", "aaaaaaaaaabbbbbbbbbbccccccccccd",
                 "unknown parameter \"aaaaaaaaaa");
    /* Control bytes never reach the error text. */
    expect_error("a%0Ab=1", "a?b", "unknown parameter \"a?b\"");
}

Test(api_params, rejects_a_value_without_a_name_or_a_badly_escaped_name)
{
    expect_error("=5", "query", "no parameter name");
    expect_error("limit=5&=x", "query", "no parameter name");
    expect_error("%zz=1", "%zz", "parameter name has a bad percent escape");
    expect_error("lim%00it=1", "lim%00it", "parameter name must not contain a NUL");
    expect_error("%ff=1", "%ff", "parameter name is not valid UTF-8");
}

Test(api_params, reports_the_first_problem_from_the_left)
{
    expect_error("limit=0&interval=week", "limit", "from 1 to 1000");
    expect_error("interval=week&limit=0", "interval", "minute, hour, day or auto");
}

/* ---- dates ---- */

Test(api_params, dates_take_rfc3339_with_z_and_keep_whole_minutes)
{
    api_params_t p = parse_ok("start_date=2026-11-01T12:00:00Z&end_date=2026-11-01T13:00:00Z");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T13:00:00Z"));
    p = parse_ok("start_date=2026-11-01t12:00:00z&end_date=2026-11-01t13:00:00z");
    cr_assert_eq(p.end_us - p.start_us, ET_US_PER_HOUR);
}

Test(api_params, dates_floor_start_and_ceil_end_to_minutes)
{
    api_params_t p =
        parse_ok("start_date=2026-11-01T12:00:59.999999Z&end_date=2026-11-01T12:30:00.000001Z");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T12:31:00Z"));
    /* Less than a minute apart, inside one minute: that whole minute. */
    p = parse_ok("start_date=2026-11-01T12:00:10Z&end_date=2026-11-01T12:00:50Z");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T12:01:00Z"));
}

Test(api_params, dates_accept_fractions_of_a_second)
{
    api_params_t p = parse_ok("start_date=2026-11-01T12:00:00.5Z&end_date=2026-11-01T12:05:"
                              "00.123456789Z");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T12:06:00Z"));
}

Test(api_params, dates_apply_utc_offsets)
{
    api_params_t p =
        parse_ok("start_date=2026-11-01T17:30:00%2B05:30&end_date=2026-11-01T05:00:00-08:00");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T13:00:00Z"));
    /* A '+' typed unencoded arrives as a space; at an offset's sign it can only mean '+'. */
    p = parse_ok("start_date=2026-11-01T17:30:00+05:30&end_date=2026-11-01T18:30:00+05:30");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-01T13:00:00Z"));
    /* An offset that is not a whole minute after conversion still floors correctly. */
    p = parse_ok("start_date=2026-11-01T12:00:30%2B00:00&end_date=2026-11-01T12:10:00Z");
    cr_assert_eq(p.start_us, at("2026-11-01T12:00:00Z"));
}

Test(api_params, date_only_end_covers_that_whole_day)
{
    api_params_t p = parse_ok("start_date=2026-11-01&end_date=2026-11-01");
    cr_assert_eq(p.start_us, at("2026-11-01T00:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-02T00:00:00Z"));
    p = parse_ok("start_date=2026-11-01&end_date=2026-11-07");
    cr_assert_eq(p.end_us - p.start_us, 7 * ET_US_PER_DAY);
    /* Without a start, the default 24 h before a date-only end is that same day. */
    p = parse_ok("end_date=2026-11-01");
    cr_assert_eq(p.start_us, at("2026-11-01T00:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-02T00:00:00Z"));
    /* An instant end is exclusive and not extended. */
    p = parse_ok("start_date=2026-11-01&end_date=2026-11-01T00:01:00Z");
    cr_assert_eq(p.end_us, at("2026-11-01T00:01:00Z"));
}

Test(api_params, start_alone_runs_until_now)
{
    api_params_t p = parse_ok("start_date=2026-11-21");
    cr_assert_eq(p.start_us, at("2026-11-21T00:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-28T12:35:00Z"));
}

Test(api_params, end_alone_starts_24_hours_before)
{
    api_params_t p = parse_ok("end_date=2026-11-10T08:00:30Z");
    cr_assert_eq(p.start_us, at("2026-11-09T08:00:00Z"));
    cr_assert_eq(p.end_us, at("2026-11-10T08:01:00Z"));
}

Test(api_params, dates_accept_leap_days_only_in_leap_years)
{
    api_params_t p = parse_ok("start_date=2024-02-29&end_date=2024-02-29");
    cr_assert_eq(p.start_us, at("2024-02-29T00:00:00Z"));
    cr_assert_eq(p.end_us, at("2024-03-01T00:00:00Z"));
    parse_ok("start_date=2000-02-29T10:00:00Z&end_date=2000-03-01");
    expect_error("start_date=2023-02-29", "start_date", DATE_MSG);
    expect_error("end_date=2023-02-29T00:00:00Z", "end_date", DATE_MSG);
    expect_error("start_date=2100-02-29", "start_date", DATE_MSG);
    expect_error("start_date=2024-02-30", "start_date", DATE_MSG);
}

Test(api_params, dates_reject_other_formats)
{
    static const char *const bad[] = {
        "2026-11-01%2012:00:00Z", /* space instead of T */
        "2026-11-01T12:00:00",    /* no zone */
        "2026/11/01",
        "2026-11-1",
        "20261101",
        "1762000000", /* epoch seconds */
        "2026-13-01",
        "2026-11-31",
        "2026-11-01T24:00:00Z",
        "2026-11-01T12:60:00Z",
        "2026-11-01T12:00:60Z", /* no leap seconds */
        "2026-11-01T12:00Z",
        "2026-11-01T12:00:00.Z",
        "2026-11-01T12:00:00%2B5:30",
        "2026-11-01T12:00:00%2B24:00",
        "2026-11-01T12:00:00Z%20",
        "%202026-11-01",
        "2026-11-01Z",
        "today",
        "now-1d",
        "-2026-11-01",
        "%27%20OR%201%3D1%20--",
        "2026-11-01;DROP",
    };
    char q[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(q, sizeof(q), "start_date=%s", bad[i]);
        expect_error(q, "start_date", DATE_MSG);
        snprintf(q, sizeof(q), "end_date=%s", bad[i]);
        expect_error(q, "end_date", DATE_MSG);
    }
}

Test(api_params, dates_reject_before_2000)
{
    expect_error("start_date=1999-12-31T23:59:59Z", "start_date", "before 2000-01-01");
    expect_error("end_date=1999-12-31", "end_date", "before 2000-01-01");
    expect_error("start_date=2000-01-01T00:30:00%2B01:00", "start_date", "before 2000-01-01");
    api_params_t p = parse_ok("start_date=2000-01-01&end_date=2000-01-02");
    cr_assert_eq(p.start_us, ET_TIME_MIN_VALID_US);
}

Test(api_params, dates_reject_more_than_a_day_ahead)
{
    /* now + 1 day is the last instant accepted. */
    api_params_t p = parse_ok("end_date=2026-11-29T12:34:56.789Z");
    cr_assert_eq(p.end_us, at("2026-11-29T12:35:00Z"));
    expect_error("end_date=2026-11-29T12:34:56.790Z", "end_date", "more than 1 day in the future");
    expect_error("start_date=2027-01-01", "start_date", "more than 1 day in the future");
    expect_error("end_date=9999-12-31", "end_date", "more than 1 day in the future");
    /* Tomorrow's date is fine: its start is within a day. */
    parse_ok("start_date=2026-11-29&end_date=2026-11-29");
}

Test(api_params, end_must_be_after_start)
{
    expect_error("start_date=2026-11-01T12:00:00Z&end_date=2026-11-01T12:00:00Z", "end_date",
                 "must be after start_date");
    expect_error("start_date=2026-11-02&end_date=2026-11-01T23:59:59Z", "end_date",
                 "must be after start_date");
    expect_error("end_date=2026-11-01T11:00:00Z&start_date=2026-11-01T12:00:00Z", "end_date",
                 "must be after start_date");
    /* With end defaulted to now, a start after now is the start's problem. */
    expect_error("start_date=2026-11-28T13:00:00Z", "start_date", "must be before end_date");
}

/* ---- status ---- */

Test(api_params, status_takes_all_or_each_status)
{
    static const struct {
        const char *value;
        uint8_t mask;
        const char *text;
    } ok[] = {
        {"all", 0xf, "all"},
        {"success", 1 << ET_STATUS_SUCCESS, "success"},
        {"succeeded", 1 << ET_STATUS_SUCCESS, "success"},
        {"failed", 1 << ET_STATUS_FAILED, "failed"},
        {"cancelled", 1 << ET_STATUS_CANCELLED, "cancelled"},
        {"canceled", 1 << ET_STATUS_CANCELLED, "cancelled"},
        {"timeout", 1 << ET_STATUS_TIMEOUT, "timeout"},
    };
    char q[64];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(q, sizeof(q), "status=%s", ok[i].value);
        api_params_t p = parse_ok(q);
        cr_assert_eq(p.status_mask, ok[i].mask, "%s", q);
        cr_assert_str_eq(p.status_text, ok[i].text);
    }
}

Test(api_params, status_list_is_echoed_in_canonical_order)
{
    api_params_t p = parse_ok("status=timeout,failed");
    cr_assert_eq(p.status_mask, (1 << ET_STATUS_FAILED) | (1 << ET_STATUS_TIMEOUT));
    cr_assert_str_eq(p.status_text, "failed,timeout");
    p = parse_ok("status=canceled,succeeded");
    cr_assert_str_eq(p.status_text, "success,cancelled");
    p = parse_ok("status=timeout%2Ccancelled%2Cfailed");
    cr_assert_str_eq(p.status_text, "failed,cancelled,timeout");
    /* All four listed is the same question as all. */
    p = parse_ok("status=timeout,cancelled,failed,success");
    cr_assert_eq(p.status_mask, 0xf);
    cr_assert_str_eq(p.status_text, "all");
}

Test(api_params, status_rejects_bad_lists_and_values)
{
    expect_error("status=failed,failed", "status", "lists failed more than once");
    expect_error("status=success,succeeded", "status", "lists success more than once");
    expect_error("status=cancelled,canceled", "status", "lists cancelled more than once");
    expect_error("status=all,failed", "status", "not both");
    expect_error("status=failed,all", "status", "not both");
    expect_error("status=all,all", "status", "not both");
    expect_error("status=failed,", "status", "empty item");
    expect_error("status=,failed", "status", "empty item");
    expect_error("status=failed,,timeout", "status", "empty item");
    expect_error("status=,", "status", "empty item");
    expect_error("status=done", "status", "unknown status \"done\"");
    expect_error("status=FAILED", "status", "unknown status \"FAILED\"");
    expect_error("status=All", "status", "unknown status");
    expect_error("status=failed,%20timeout", "status", "unknown status \" timeout\"");
    expect_error("status=failed+timeout", "status", "unknown status \"failed timeout\"");
    expect_error("status=failed;timeout", "status", "unknown status \"failed;timeout\"");
    expect_error("status=%27%20OR%201%3D1%20--", "status", "unknown status \"' OR 1=1 --\"");
    expect_error("status=fail%0Aed", "status", "unknown status \"fail?ed\"");
}

/* ---- percentiles ---- */

Test(api_params, percentile_keys_are_the_numbers_exactly_as_given)
{
    api_params_t p = parse_ok("percentiles=99.9,50,100,0.1,99.50,12.345678");
    cr_assert_eq(p.percentile_count, 6);
    cr_assert_str_eq(p.percentile_keys[0], "p99.9");
    cr_assert_str_eq(p.percentile_keys[1], "p50");
    cr_assert_str_eq(p.percentile_keys[2], "p100");
    cr_assert_str_eq(p.percentile_keys[3], "p0.1");
    cr_assert_str_eq(p.percentile_keys[4], "p99.50");
    cr_assert_eq(p.percentiles[4], 0.995);
    cr_assert_str_eq(p.percentile_keys[5], "p12.345678");
    cr_assert_eq(p.percentiles[0], 0.999);
    cr_assert_eq(p.percentiles[1], 0.5);
    cr_assert_eq(p.percentiles[2], 1.0);
    cr_assert_eq(p.percentiles[3], 0.001);
    cr_assert_eq(p.percentiles[5], 0.12345678);
}

Test(api_params, percentiles_keep_the_order_given)
{
    api_params_t p = parse_ok("percentiles=99,50");
    cr_assert_eq(p.percentile_count, 2);
    cr_assert_str_eq(p.percentile_keys[0], "p99");
    cr_assert_str_eq(p.percentile_keys[1], "p50");
}

Test(api_params, percentiles_accept_the_smallest_and_largest)
{
    api_params_t p = parse_ok("percentiles=0.000001,100.000000,99.999999");
    cr_assert_eq(p.percentile_count, 3);
    cr_assert_str_eq(p.percentile_keys[0], "p0.000001");
    cr_assert_eq(p.percentiles[0], 1e-8);
    cr_assert_str_eq(p.percentile_keys[1], "p100.000000");
    cr_assert_eq(p.percentiles[1], 1.0);
}

Test(api_params, percentiles_allow_up_to_20)
{
    char q[256] = "percentiles=";
    for (int i = 1; i <= 20; i++)
        snprintf(q + strlen(q), sizeof(q) - strlen(q), "%s%d", i > 1 ? "," : "", i * 5);
    api_params_t p = parse_ok(q);
    cr_assert_eq(p.percentile_count, 20);
    cr_assert_str_eq(p.percentile_keys[19], "p100");
    cr_assert_eq(p.percentiles[19], 1.0);
    strcat(q, ",1");
    expect_error(q, "percentiles", "at most 20 percentiles");
}

Test(api_params, percentiles_reject_what_is_not_a_plain_number)
{
    static const char *const bad[] = {
        "abc",          "1e2", "1E2",   "-5",    "%2B5",
        "+5",           ".5",  "5.",    "0x10",  "inf",
        "nan",          "NaN", "50%20", "%2050", "5%2C",
        "\xef\xbc\x95", "50;", "5..5",  "5.5.5", "%27%20OR%201%3D1%20--",
        "99.9a",
    };
    char q[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(q, sizeof(q), "percentiles=%s", bad[i]);
        api_params_t p;
        api_error_t e;
        cr_assert_eq(parse(q, &p, &e), -EINVAL, "%s should fail", q);
        cr_assert_str_eq(e.parameter, "percentiles");
        cr_assert(strstr(e.message, "not a plain number") != NULL ||
                      strstr(e.message, "empty item") != NULL,
                  "%s: %s", q, e.message);
    }
}

Test(api_params, percentiles_reject_out_of_range_values)
{
    expect_error("percentiles=0", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=0.0", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=0.000000", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=100.000001", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=101", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=1000", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=99999999999999999999999", "percentiles", "above 0 and at most 100");
    expect_error("percentiles=50,200", "percentiles", "\"200\"");
}

Test(api_params, percentiles_reject_too_many_decimals_and_leading_zeros)
{
    expect_error("percentiles=99.9999999", "percentiles", "at most 6 digits after the point");
    expect_error("percentiles=050", "percentiles", "without leading zeros");
    expect_error("percentiles=00.5", "percentiles", "without leading zeros");
}

Test(api_params, percentiles_reject_duplicates_and_empty_items)
{
    expect_error("percentiles=50,50", "percentiles", "more than once");
    expect_error("percentiles=50,90,50.0", "percentiles", "\"50.0\" more than once");
    expect_error("percentiles=99.9,99.90", "percentiles", "more than once");
    expect_error("percentiles=50,,90", "percentiles", "empty item");
    expect_error("percentiles=50,", "percentiles", "empty item");
    expect_error("percentiles=,", "percentiles", "empty item");
}

/* ---- interval, group_by, sort, limit, include ---- */

Test(api_params, interval_takes_minute_hour_day_or_auto)
{
    cr_assert_eq(parse_ok("interval=minute").interval, API_INTERVAL_MINUTE);
    cr_assert_eq(parse_ok("interval=hour").interval, API_INTERVAL_HOUR);
    cr_assert_eq(parse_ok("interval=day").interval, API_INTERVAL_DAY);
    cr_assert_eq(parse_ok("interval=auto").interval, API_INTERVAL_AUTO);
    static const char *const bad[] = {"week",    "Minute",   "1h",    "60",
                                      "hour%20", "hour,day", "hour;", "%27%20OR%201%3D1%20--",
                                      "none"};
    char q[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(q, sizeof(q), "interval=%s", bad[i]);
        expect_error(q, "interval", "must be minute, hour, day or auto");
    }
}

Test(api_params, group_by_takes_only_workflow)
{
    cr_assert(parse_ok("group_by=workflow").group_by_workflow);
    expect_error("group_by=workflows", "group_by", "must be workflow");
    expect_error("group_by=tenant", "group_by", "must be workflow");
    expect_error("group_by=workflow,status", "group_by", "must be workflow");
    expect_error("group_by=workflow;", "group_by", "must be workflow");
}

Test(api_params, sort_takes_p95_count_avg_or_max_even_without_group_by)
{
    cr_assert_eq(parse_ok("sort=p95").sort, API_SORT_P95);
    cr_assert_eq(parse_ok("sort=count").sort, API_SORT_COUNT);
    cr_assert_eq(parse_ok("sort=avg").sort, API_SORT_AVG);
    cr_assert_eq(parse_ok("sort=max&group_by=workflow").sort, API_SORT_MAX);
    expect_error("sort=p99", "sort", "must be p95, count, avg or max");
    expect_error("sort=count+desc", "sort", "must be p95, count, avg or max");
    expect_error("sort=-count", "sort", "must be p95, count, avg or max");
    expect_error("sort=count;DROP%20TABLE%20x", "sort", "must be p95, count, avg or max");
}

Test(api_params, limit_takes_whole_numbers_from_1_to_1000)
{
    cr_assert_eq(parse_ok("limit=1").limit, 1);
    cr_assert_eq(parse_ok("limit=1000").limit, 1000);
    cr_assert_eq(parse_ok("limit=0050").limit, 50);
    expect_error("limit=0", "limit", "must be from 1 to 1000");
    expect_error("limit=1001", "limit", "must be from 1 to 1000");
    expect_error("limit=99999999999999999999999999", "limit", "must be from 1 to 1000");
    static const char *const bad[] = {"-1",
                                      "%2B1",
                                      "+1",
                                      "1e3",
                                      "10.0",
                                      "0x10",
                                      "ten",
                                      "5%20",
                                      "5;",
                                      "5,6",
                                      "%27%20OR%201%3D1%20--"};
    char q[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(q, sizeof(q), "limit=%s", bad[i]);
        expect_error(q, "limit", "must be a whole number from 1 to 1000");
    }
}

Test(api_params, include_takes_only_histogram)
{
    cr_assert(parse_ok("include=histogram").include_histogram);
    expect_error("include=histograms", "include", "must be histogram");
    expect_error("include=series", "include", "must be histogram");
    expect_error("include=histogram,series", "include", "must be histogram");
}

Test(api_params, measure_takes_run_queue_wait_or_both)
{
    cr_assert_eq(parse_ok("").measures, API_MEASURE_RUN);
    cr_assert_eq(parse_ok("measure=run").measures, API_MEASURE_RUN);
    cr_assert_eq(parse_ok("measure=queue_wait").measures, API_MEASURE_QUEUE_WAIT);
    cr_assert_eq(parse_ok("measure=run,queue_wait").measures,
                 API_MEASURE_RUN | API_MEASURE_QUEUE_WAIT);
    cr_assert_eq(parse_ok("measure=queue_wait%2Crun").measures,
                 API_MEASURE_RUN | API_MEASURE_QUEUE_WAIT);
    expect_error("measure=queue", "measure", "must be run, queue_wait or run,queue_wait");
    expect_error("measure=run,", "measure", "must be run, queue_wait or run,queue_wait");
    expect_error("measure=run,run", "measure", "lists a measure more than once");
}

/* ---- never crashes ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Either a well-formed result or a 400 that names a parameter in printable ASCII. */
static void check_outcome(const char *q, size_t len, int64_t now)
{
    api_params_t p;
    api_error_t e;
    int rc = api_params_parse(q, len, now, &p, &e);

    if (rc == 0) {
        cr_assert_lt(p.start_us, p.end_us);
        cr_assert_eq(p.start_us % ET_US_PER_MIN, 0);
        cr_assert_eq(p.end_us % ET_US_PER_MIN, 0);
        cr_assert(p.status_mask >= 1 && p.status_mask <= 0xf);
        cr_assert(p.percentile_count >= 1 && p.percentile_count <= API_PERCENTILES_MAX);
        for (int i = 0; i < p.percentile_count; i++) {
            cr_assert(p.percentiles[i] > 0 && p.percentiles[i] <= 1);
            cr_assert_eq(p.percentile_keys[i][0], 'p');
            cr_assert_lt(strlen(p.percentile_keys[i]), sizeof(p.percentile_keys[i]));
        }
        cr_assert(p.limit >= 1 && p.limit <= API_LIMIT_MAX);
        cr_assert(!p.has_tenant || (strlen(p.tenant_id) >= 1 && strlen(p.tenant_id) <= 64));
        cr_assert(!p.has_workflow || (strlen(p.workflow_id) >= 1 && strlen(p.workflow_id) <= 128));
        return;
    }
    cr_assert_eq(rc, -EINVAL);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.code, "invalid_parameter");
    cr_assert_gt(strlen(e.parameter), 0, "no parameter named for a failed query");
    cr_assert_gt(strlen(e.message), 0);
    cr_assert(printable_ascii(e.parameter) && printable_ascii(e.message));
}

Test(api_params, random_bytes_never_crash_and_always_name_a_parameter, .timeout = 120)
{
    static char q[API_QUERY_MAX + 64];
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = (size_t)(rng() % (iter % 100 == 0 ? sizeof(q) : 64));
        for (size_t i = 0; i < len; i++)
            q[i] = (char)rng();
        check_outcome(q, len, NOW_US);
    }
}

Test(api_params, random_token_soup_never_crashes_and_always_name_a_parameter, .timeout = 120)
{
    static const char *const tokens[] = {
        "workflow_id", "tenant_id", "start_date", "end_date",   "status",
        "percentiles", "interval",  "group_by",   "sort",       "limit",
        "include",     "=",         "=",          "=",          "&",
        "&",           "&",         ",",          ",",          "%",
        "%2",          "%00",       "%ff",        "%C3%A9",     "%2B",
        "+",           "-",         ".",          ":",          "T",
        "Z",           "0",         "1",          "5",          "9",
        "99",          "100",       "99.9",       "2026-11-01", "2026-11-28T12:00:00",
        "2024-02-29",  "05:30",     "all",        "failed",     "success",
        "canceled",    "timeout",   "hour",       "auto",       "workflow",
        "p95",         "count",     "histogram",  "1000",       "x",
        " ",           ";",         "'",
    };
    char q[1024];
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 0;
        int ntok = (int)(rng() % 24);
        for (int t = 0; t < ntok; t++) {
            const char *tok = tokens[rng() % (sizeof(tokens) / sizeof(tokens[0]))];
            size_t tl = strlen(tok);
            if (len + tl >= sizeof(q))
                break;
            memcpy(q + len, tok, tl);
            len += tl;
        }
        /* now anywhere from 2000 to 9000: the range arithmetic must hold throughout. */
        int64_t now =
            ET_TIME_MIN_VALID_US + (int64_t)(rng() % (uint64_t)(7000 * 365 * ET_US_PER_DAY));
        check_outcome(q, len, iter % 2 ? NOW_US : now);
    }
}

/* ---- the regressions endpoint ---- */

static api_regression_params_t regression_ok(const char *q)
{
    api_regression_params_t p;
    api_error_t e;
    int rc = api_regression_params_parse(q, strlen(q), NOW_US, &p, &e);
    cr_assert_eq(rc, 0, "query \"%s\" failed: %s: %s", q, e.parameter, e.message);
    return p;
}

static void expect_regression_error(const char *q, const char *param, const char *why)
{
    api_regression_params_t p;
    api_error_t e;
    int rc = api_regression_params_parse(q, strlen(q), NOW_US, &p, &e);
    cr_assert_eq(rc, -EINVAL, "query \"%s\" should fail on %s", q, param);
    cr_assert_eq(e.status, 400);
    cr_assert_str_eq(e.code, "invalid_parameter");
    cr_assert_str_eq(e.parameter, param, "query \"%s\": parameter \"%s\", expected \"%s\"", q,
                     e.parameter, param);
    cr_assert_not_null(strstr(e.message, why), "query \"%s\": message \"%s\" lacks \"%s\"", q,
                       e.message, why);
    cr_assert(printable_ascii(e.message) && printable_ascii(e.parameter));
}

Test(api_params, regressions_empty_query_gives_p95_50_runs_20_percent_last_24_hours)
{
    api_regression_params_t p = regression_ok("");
    cr_assert(!p.failure_rate);
    cr_assert_str_eq(p.metric, "p95");
    cr_assert_eq(p.quantile, 0.95);
    cr_assert_eq(p.min_runs, 50);
    cr_assert_eq(p.threshold_percent, 20.0);
    cr_assert_eq(p.base.limit, API_LIMIT_DEFAULT);
    cr_assert(p.base.group_by_workflow && !p.base.has_workflow && !p.base.has_tenant);
    cr_assert_str_eq(p.base.status_text, "all");
    cr_assert_eq(p.base.end_us - p.base.start_us, ET_US_PER_DAY + ET_US_PER_MIN);
}

Test(api_params, regressions_take_every_parameter)
{
    api_regression_params_t p =
        regression_ok("tenant_id=t1&start_date=2026-11-01&end_date=2026-11-07&metric=p99.9"
                      "&min_runs=200&threshold=12.5&limit=7&status=success");
    cr_assert(p.base.has_tenant);
    cr_assert_str_eq(p.base.tenant_id, "t1");
    cr_assert_eq(p.base.start_us, at("2026-11-01T00:00:00Z"));
    cr_assert_eq(p.base.end_us, at("2026-11-08T00:00:00Z"));
    cr_assert_str_eq(p.metric, "p99.9");
    cr_assert_eq(p.quantile, 0.999);
    cr_assert_eq(p.base.percentile_count, 1);
    cr_assert_eq(p.base.percentiles[0], 0.999);
    cr_assert_eq(p.min_runs, 200);
    cr_assert_eq(p.threshold_percent, 12.5);
    cr_assert_eq(p.base.limit, 7);
    cr_assert_str_eq(p.base.status_text, "success");
}

Test(api_params, regressions_metric_takes_any_percentile_or_failure_rate)
{
    cr_assert_eq(regression_ok("metric=p50").quantile, 0.5);
    cr_assert_eq(regression_ok("metric=p100").quantile, 1.0);
    cr_assert_eq(regression_ok("metric=p0.001").quantile, 0.00001);
    api_regression_params_t p = regression_ok("metric=failure_rate");
    cr_assert(p.failure_rate);
    cr_assert_str_eq(p.metric, "failure_rate");
    const char *bad[] = {"95",   "p",          "P95", "p095", "p0",
                         "p101", "p9.1234567", "avg", "p95 ", "failure-rate"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char q[64];
        snprintf(q, sizeof q, "metric=%s", bad[i]);
        expect_regression_error(q, "metric", "use failure_rate or a percentile");
    }
}

Test(api_params, regressions_min_runs_takes_whole_numbers_from_1)
{
    cr_assert_eq(regression_ok("min_runs=1").min_runs, 1);
    cr_assert_eq(regression_ok("min_runs=1000000000").min_runs, 1000000000);
    expect_regression_error("min_runs=0", "min_runs", "must be from 1");
    expect_regression_error("min_runs=1000000001", "min_runs", "must be from 1");
    expect_regression_error("min_runs=99999999999999999999999", "min_runs", "must be from 1");
    expect_regression_error("min_runs=-5", "min_runs", "whole number");
    expect_regression_error("min_runs=5.5", "min_runs", "whole number");
}

Test(api_params, regressions_threshold_takes_percentages_with_two_decimals)
{
    cr_assert_eq(regression_ok("threshold=0").threshold_percent, 0.0);
    cr_assert_eq(regression_ok("threshold=0.5").threshold_percent, 0.5);
    cr_assert_eq(regression_ok("threshold=12.25").threshold_percent, 12.25);
    cr_assert_eq(regression_ok("threshold=300").threshold_percent, 300.0);
    cr_assert_eq(regression_ok("threshold=100000").threshold_percent, 100000.0);
    const char *bad[] = {"-1", ".5", "20.", "1.234", "1e3", "20%25", "twenty", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char q[64];
        snprintf(q, sizeof q, "threshold=%s", bad[i]);
        expect_regression_error(q, "threshold", "must be a percentage");
    }
    expect_regression_error("threshold=100000.01", "threshold", "at most 100000");
    expect_regression_error("threshold=999999999", "threshold", "must be a percentage");
}

Test(api_params, regressions_refuse_what_only_the_statistics_endpoint_takes)
{
    expect_regression_error("workflow_id=wf-1", "workflow_id", "unknown parameter");
    expect_regression_error("percentiles=95", "percentiles", "unknown parameter");
    expect_regression_error("group_by=workflow", "group_by", "unknown parameter");
    expect_regression_error("metric=p95&metric=p99", "metric", "given more than once");
    expect_regression_error("metric=", "metric", "must not be empty");
}

Test(api_params, regressions_share_the_date_status_and_limit_rules)
{
    expect_regression_error("start_date=1999-12-31", "start_date", "before 2000-01-01");
    expect_regression_error("start_date=2026-11-02&end_date=2026-11-01T00:00:00Z", "end_date",
                            "must be after start_date");
    expect_regression_error("status=bogus", "status", "unknown status");
    expect_regression_error("limit=0", "limit", "must be from 1 to 1000");
}

Test(api_params, regressions_failure_rate_refuses_a_status_filter)
{
    expect_regression_error("metric=failure_rate&status=failed", "status",
                            "percentile metrics only");
    cr_assert(regression_ok("metric=failure_rate&status=all").failure_rate);
}
