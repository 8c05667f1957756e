/* Unit tests for agent/log: typed JSON fields, UTF-8 and control escaping, bounds. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "et_backoff.h"
#include "log.h"

#define TS "2026-11-30T10:00:00.000000Z"

/* Formats one JSON line, checks its framing, and parses it (jansson refuses invalid
 * UTF-8, so a parse is also the UTF-8 check). */
static json_t *json_line(char *buf, size_t cap, const char *msg, const log_field_t *f, size_t n)
{
    size_t len = log_format_line(buf, cap, true, LOG_INFO, TS, msg, f, n);
    cr_assert(len > 0 && len <= cap);
    cr_assert_eq(buf[len - 1], '\n');
    cr_assert_null(memchr(buf, '\n', len - 1), "one line");
    json_error_t err;
    json_t *root = json_loadb(buf, len - 1, 0, &err);
    cr_assert_not_null(root, "not JSON (%s): %.*s", err.text, (int)len, buf);
    return root;
}

Test(log, json_fields_keep_their_types)
{
    char buf[LOG_LINE_MAX];
    log_field_t f[] = {log_str("path", "/healthz"),
                       log_int("status", 200),
                       log_int("delta", -7),
                       log_uint("events", UINT64_C(1099511627776)),
                       log_double("duration_ms", 1.25),
                       log_bool("ready", true),
                       log_bool("stopping", false)};
    json_t *root = json_line(buf, sizeof buf, "http request", f, 7);
    cr_assert_str_eq(json_string_value(json_object_get(root, "path")), "/healthz");
    cr_assert(json_is_integer(json_object_get(root, "status")));
    cr_assert_eq(json_integer_value(json_object_get(root, "status")), 200);
    cr_assert_eq(json_integer_value(json_object_get(root, "delta")), -7);
    cr_assert(json_is_real(json_object_get(root, "duration_ms")));
    cr_assert_float_eq(json_real_value(json_object_get(root, "duration_ms")), 1.25, 1e-12);
    cr_assert(json_is_true(json_object_get(root, "ready")));
    cr_assert(json_is_false(json_object_get(root, "stopping")));
    cr_assert_not_null(strstr(buf, "\"events\":1099511627776,"), "%s", buf);
    cr_assert_str_eq(json_string_value(json_object_get(root, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(root, "msg")), "http request");
    json_decref(root);
}

Test(log, json_double_nan_is_null_and_integral_double_stays_a_number)
{
    char buf[LOG_LINE_MAX];
    log_field_t f[] = {log_double("a", NAN), log_double("b", INFINITY), log_double("c", 3.0),
                       log_double("d", 0.1)};
    json_t *root = json_line(buf, sizeof buf, "m", f, 4);
    cr_assert(json_is_null(json_object_get(root, "a")));
    cr_assert(json_is_null(json_object_get(root, "b")));
    cr_assert(json_is_number(json_object_get(root, "c")));
    cr_assert(strstr(buf, "\"d\":0.1,") != NULL || strstr(buf, "\"d\":0.1}") != NULL, "%s", buf);
    json_decref(root);
}

Test(log, invalid_utf8_becomes_replacement_characters)
{
    char buf[LOG_LINE_MAX];
    /* The path of the request in issue 9, then an overlong '/', a surrogate, a code
     * point above U+10FFFF, a lone continuation byte and a sequence cut by the end. */
    log_field_t f[] = {log_str("path", "/\xff\xfe"),
                       log_str("overlong", "\xc0\xaf"),
                       log_str("surrogate", "\xed\xa0\x80"),
                       log_str("big", "\xf4\x90\x80\x80"),
                       log_str("lone", "a\x80z"),
                       log_str("cut", "ok\xe2\x82")};
    json_t *root = json_line(buf, sizeof buf, "bad \xff msg", f, 6);
    cr_assert_str_eq(json_string_value(json_object_get(root, "path")), "/\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(json_string_value(json_object_get(root, "overlong")),
                     "\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(json_string_value(json_object_get(root, "surrogate")),
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(json_string_value(json_object_get(root, "big")),
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(json_string_value(json_object_get(root, "lone")), "a\xef\xbf\xbdz");
    cr_assert_str_eq(json_string_value(json_object_get(root, "cut")), "ok\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_str_eq(json_string_value(json_object_get(root, "msg")), "bad \xef\xbf\xbd msg");
    json_decref(root);
}

Test(log, valid_utf8_passes_unchanged)
{
    char buf[LOG_LINE_MAX];
    const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf";
    log_field_t f[] = {log_str("s", s)};
    json_t *root = json_line(buf, sizeof buf, "m", f, 1);
    cr_assert_str_eq(json_string_value(json_object_get(root, "s")), s);
    json_decref(root);
}

Test(log, control_characters_are_escaped)
{
    char buf[LOG_LINE_MAX];
    log_field_t f[] = {log_str("s", "a\nb\rc\td\x01"
                                    "e\x7f\"q\\")};
    json_t *root = json_line(buf, sizeof buf, "two\nlines", f, 1);
    cr_assert_str_eq(json_string_value(json_object_get(root, "s")), "a\nb\rc\td\x01"
                                                                    "e\x7f\"q\\");
    cr_assert_not_null(strstr(buf, "\\u0001"), "%s", buf);
    cr_assert_not_null(strstr(buf, "\\u007f"), "%s", buf);
    cr_assert_str_eq(json_string_value(json_object_get(root, "msg")), "two\nlines");
    json_decref(root);
}

Test(log, text_format_quotes_what_needs_it_and_leaves_numbers_bare)
{
    char buf[LOG_LINE_MAX];
    log_field_t f[] = {log_str("path", "/a b"), log_str("plain", "x"), log_int("status", 404),
                       log_bool("ok", false),   log_str("empty", ""),  log_str("nl", "a\nb\x01"),
                       log_str("bad", "\xff")};
    size_t len = log_format_line(buf, sizeof buf, false, LOG_WARN, TS, "http request", f, 7);
    buf[len] = '\0';
    cr_assert_str_eq(buf, TS " warn http request path=\"/a b\" plain=x status=404 ok=false "
                             "empty=\"\" nl=\"a\\nb\\x01\" bad=\xef\xbf\xbd\n");
}

Test(log, long_value_is_cut_at_a_character_boundary_and_marked)
{
    char big[LOG_LINE_MAX * 2];
    /* Three-byte characters so a cut in the middle of one would show. */
    size_t n = 0;
    while (n + 3 < sizeof big) {
        memcpy(big + n, "\xe2\x82\xac", 3);
        n += 3;
    }
    big[n] = '\0';
    char buf[LOG_LINE_MAX];
    log_field_t f[] = {log_str("big", big), log_int("after", 1)};
    json_t *root = json_line(buf, sizeof buf, "m", f, 2);
    cr_assert(json_is_true(json_object_get(root, "truncated")));
    cr_assert_null(json_object_get(root, "after"), "fields after the cut are left out");
    const char *kept = json_string_value(json_object_get(root, "big"));
    cr_assert(strlen(kept) % 3 == 0 && strlen(kept) > 1000);
    json_decref(root);
}

Test(log, field_that_does_not_fit_is_left_out_whole)
{
    char buf[128];
    log_field_t f[] = {log_str("a", "0123456789012345678901234567890123456789"),
                       log_uint("b", 1234567890123), log_str("c", "x")};
    json_t *root = json_line(buf, sizeof buf, "m", f, 3);
    cr_assert(json_is_true(json_object_get(root, "truncated")));
    cr_assert_null(json_object_get(root, "c"));
    json_decref(root);
}

Test(log, every_cut_of_a_line_is_valid_json)
{
    char buf[512];
    log_field_t f[] = {log_str("path", "/\xff\xfe\"\\\n"), log_int("status", 200),
                       log_double("duration_ms", 0.5), log_bool("b", true),
                       log_str("remote", "127.0.0.1")};
    for (size_t cap = 128; cap <= sizeof buf; cap++)
        json_decref(json_line(buf, cap, "http request \xe2\x82\xac\xe2\x82\xac", f, 5));
}

/* common/et_backoff.h: which failed attempts of a streak are logged. */
Test(log, retry_log_logs_powers_of_two_and_changed_reasons)
{
    et_retry_log_t r = {0};
    int logged[20] = {0};
    for (int i = 1; i <= 17; i++)
        logged[i] = et_retry_failed(&r, i == 6 ? "other reason" : "refused", 1000 + (uint64_t)i);
    /* 1, 2, 4, 8, 16 by count; 6 (new reason) and 7 (back to the old one) by change. */
    int want[20] = {0};
    want[1] = want[2] = want[4] = want[6] = want[7] = want[8] = want[16] = 1;
    for (int i = 1; i <= 17; i++)
        cr_assert_eq(logged[i], want[i], "attempt %d logged %d, want %d", i, logged[i], want[i]);
    cr_assert_eq(r.since_ms, 1001);
    cr_assert_eq(et_retry_succeeded(&r), 17);
    cr_assert(et_retry_failed(&r, "refused", 5000), "a new streak logs its first failure");
    cr_assert_eq(r.failures, 1);
}
