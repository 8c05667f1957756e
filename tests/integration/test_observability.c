/*
 * Integration tests of what operators see: /metrics passes `promtool check metrics` and
 * holds the process, build, HTTP-by-handler and stream gauges with sensible values; the
 * JSON log is one valid UTF-8 JSON object per line with typed fields, the version on the
 * start line, and the request id of each request (the client's or a made-up one), which
 * the response echoes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "oracle.h"

static const char *expected_version(void)
{
    const char *v = getenv("EXECTIME_VERSION");
    cr_assert(v != NULL && *v, "EXECTIME_VERSION is not set (tests/integration/meson.build)");
    return v;
}

static it_agent_t *start_json_agent(void)
{
    static const char *const env[] = {"EXECTIME_LOG_FORMAT=json", NULL};
    it_agent_t *a = it_agent_start("obs1", env);
    it_agent_wait_ready(a);
    return a;
}

/* Sends one request and returns its status; the X-Request-Id it got back in *id. */
static int request(it_agent_t *a, const char *path, const char *client_id, char **id)
{
    char header[128];
    snprintf(header, sizeof header, "X-Request-Id: %s", client_id ? client_id : "");
    const char *headers[] = {client_id ? header : NULL, NULL};
    it_http_response_t r;
    int status = it_http_request(a->port, "GET", path, headers, &r);
    char *got = it_http_header(&r, "X-Request-Id");
    cr_assert_not_null(got, "no X-Request-Id on the answer to %s", path);
    if (id != NULL)
        *id = got;
    else
        free(got);
    it_http_response_free(&r);
    return status;
}

/* Every line of the agent's log parsed as JSON (jansson refuses invalid UTF-8). */
static json_t *log_lines(const it_agent_t *a)
{
    char *log = it_agent_log(a);
    json_t *lines = json_array();
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        cr_assert_not_null(obj, "log line is not valid JSON / UTF-8 (%s): %s", err.text, line);
        cr_assert(json_is_object(obj) && json_is_string(json_object_get(obj, "ts")) &&
                      json_is_string(json_object_get(obj, "level")) &&
                      json_is_string(json_object_get(obj, "msg")),
                  "log line without ts, level, msg: %s", line);
        json_array_append_new(lines, obj);
    }
    free(log);
    return lines;
}

/* The first "http request" line with this request id, or NULL. */
static json_t *request_line(json_t *lines, const char *id)
{
    size_t i;
    json_t *obj;
    json_array_foreach(lines, i, obj)
    {
        const char *rid = json_string_value(json_object_get(obj, "request_id"));
        if (strcmp(json_string_value(json_object_get(obj, "msg")), "http request") == 0 &&
            rid != NULL && strcmp(rid, id) == 0)
            return obj;
    }
    return NULL;
}

Test(observability, json_log_has_typed_fields_request_ids_and_the_version, IT_TEST_OPTS)
{
    it_agent_t *a = start_json_agent();
    char *id = NULL;
    cr_assert_eq(request(a, "/no-such-page", "it-req-404", &id), 404);
    cr_assert_str_eq(id, "it-req-404", "a sane client id is echoed");
    free(id);
    cr_assert_eq(request(a, "/no-such-page", "bad id with spaces", &id), 404);
    cr_assert(strlen(id) == 16 && strspn(id, "0123456789abcdef") == 16,
              "an unusable client id is replaced by a made-up one, got %s", id);
    char *made_up = id;
    /* The path of issue 9: bytes that are not UTF-8 must not break the log line. */
    cr_assert_eq(request(a, "/\xff\xfe", "it-req-bad-utf8", NULL), 404);
    it_agent_stop(a);

    json_t *lines = log_lines(a);
    size_t i;
    json_t *obj;
    bool started = false;
    json_array_foreach(lines, i, obj)
    {
        if (strcmp(json_string_value(json_object_get(obj, "msg")), "exectime-agent started") == 0) {
            started = true;
            cr_assert_str_eq(json_string_value(json_object_get(obj, "version")),
                             expected_version());
        }
    }
    cr_assert(started, "no start line");
    json_t *line = request_line(lines, "it-req-404");
    cr_assert_not_null(line, "no access line with the client's request id");
    cr_assert(json_is_integer(json_object_get(line, "status")));
    cr_assert_eq(json_integer_value(json_object_get(line, "status")), 404);
    cr_assert(json_is_number(json_object_get(line, "duration_ms")));
    cr_assert_str_eq(json_string_value(json_object_get(line, "path")), "/no-such-page");
    cr_assert_not_null(request_line(lines, made_up), "no access line with the made-up id");
    line = request_line(lines, "it-req-bad-utf8");
    cr_assert_not_null(line, "no access line for the path that is not UTF-8");
    cr_assert_str_eq(json_string_value(json_object_get(line, "path")), "/\xef\xbf\xbd\xef\xbf\xbd",
                     "invalid bytes become U+FFFD");
    free(made_up);
    json_decref(lines);
    it_pass();
}

/* Passes the text through `promtool check metrics`; fails with its complaints. */
static void promtool_check(const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.txt", it.tmp_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    char script[700];
    snprintf(script, sizeof script,
             "command -v promtool >/dev/null || { echo 'promtool not found: install the "
             "Debian package prometheus (deploy/packages.txt)'; exit 127; }; "
             "promtool check metrics < '%s'",
             path);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *out = NULL;
    int status = it_run(argv, NULL, &out, 60000);
    cr_assert_eq(status, 0, "promtool check metrics failed (%d):\n%s", status, out);
    free(out);
}

Test(observability, metrics_pass_promtool_and_hold_the_operator_series, IT_TEST_OPTS)
{
    it_agent_t *a = start_json_agent();
    /* Before any traffic, every handler and status is there at 0 (rate() sees the first). */
    cr_assert_eq(it_metric(a, "exectime_http_requests_total{handler=\"/readyz\",code=\"401\"}"), 0);
    char *body = NULL;
    cr_assert_eq(it_http_get(a->port, "/metrics", &body), 200);
    cr_assert_not_null(
        strstr(body, "exectime_http_requests_total{handler=\"/readyz\",code=\"401\"} 0\n"),
        "a handler x status series is missing at start-up");
    cr_assert_not_null(strstr(body, "exectime_dead_lettered_total{reason=\"invalid\"} 0\n"));
    cr_assert_not_null(strstr(
        body,
        "exectime_http_request_seconds_count{handler=\"/api/v1/statistics/execution-times\"} 0\n"));
    free(body);

    /* A few events, one of them invalid (a dead letter), and a few requests. */
    enum { N = 20 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 99,
                    .tenants = 2,
                    .workflows = 3,
                    .spread_us = 3600 * 1000000LL,
                    .run_prefix = "obs-"};
    it_gen_events(ev, N, &gen);
    it_publish(ev, N, 5, 3);
    char id[64];
    it_xadd_raw("\xc1", 1, id, sizeof id);
    it_wait_drained();
    cr_assert_eq(it_http_get(a->port, "/healthz", NULL), 200);
    cr_assert_eq(it_http_get(a->port, "/nope", NULL), 404);
    cr_assert_eq(it_http_get(a->port, "/api/v1/statistics/execution-times", NULL), 401);

    /* The upkeep rounds read pending entries and the dead letters' length every 10 s. */
    IT_WAIT_UNTIL(it_metric(a, "exectime_dead_letter_entries") == 1, IT_WAIT_MS,
                  "exectime_dead_letter_entries never showed the dead letter (is %g)",
                  it_metric(a, "exectime_dead_letter_entries"));
    IT_WAIT_UNTIL(it_metric(a, "exectime_stream_pending_entries") == 0, IT_WAIT_MS,
                  "exectime_stream_pending_entries never came to 0 (is %g)",
                  it_metric(a, "exectime_stream_pending_entries"));

    body = NULL;
    cr_assert_eq(it_http_get(a->port, "/metrics", &body), 200);
    promtool_check(body);
    char build[256];
    snprintf(build, sizeof build, "exectime_build_info{version=\"%s\",", expected_version());
    cr_assert_not_null(strstr(body, build), "no %s in:\n%s", build, body);
    free(body);

    double cpu = it_metric(a, "process_cpu_seconds_total");
    double rss = it_metric(a, "process_resident_memory_bytes");
    double fds = it_metric(a, "process_open_fds");
    double max_fds = it_metric(a, "process_max_fds");
    double start = it_metric(a, "process_start_time_seconds");
    double now = (double)time(NULL);
    cr_assert(cpu > 0 && cpu < 3600, "process_cpu_seconds_total %g", cpu);
    cr_assert(rss > 1e6 && rss < 8e9, "process_resident_memory_bytes %g", rss);
    cr_assert(fds >= 5 && fds < max_fds, "process_open_fds %g of %g", fds, max_fds);
    cr_assert(start > now - 600 && start <= now + 1, "process_start_time_seconds %g, now %g", start,
              now);
    cr_assert_geq(it_metric(a, "exectime_http_requests_total{handler=\"/healthz\",code=\"200\"}"),
                  1);
    cr_assert_geq(it_metric(a, "exectime_http_requests_total{handler=\"other\",code=\"404\"}"), 1);
    cr_assert_geq(it_metric(a, "exectime_http_requests_total{handler=\"/api/v1/statistics/"
                               "execution-times\",code=\"401\"}"),
                  1);
    cr_assert_geq(it_metric(a, "exectime_http_request_seconds_count{handler=\"/healthz\"}"), 1);
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total{reason=\"invalid\"}"), 1);
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), N);
    it_agent_stop(a);
    it_pass();
}
