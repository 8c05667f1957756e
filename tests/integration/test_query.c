/*
 * Integration tests of `exectime-agent query` against a real agent, PostgreSQL and Redis:
 * for each question (range, workflow, status and percentiles, group-by, series) its JSON
 * equals the API's answer to the same question, its CSV (RFC 4180) holds the API's numbers
 * exactly, and its table holds them to the µs in aligned columns. The exit statuses a
 * script relies on: 3 without a token or with a refused one, 2 for a bad --from, 4 for a
 * parameter the API refuses, 5 when the API is unreachable or the database is down.
 * The command runs with no EXECTIME_* variable but the two it reads (it_run drops the
 * rest), so it also shows that query needs no database settings.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"
#include "tokens.h"

#define SECRET "exectime-query-test-secret-0123456789abcdef"
#define API_PATH "/api/v1/statistics/execution-times"
#define ODD_WORKFLOW "wf,\"odd\"" /* CSV must quote it */

static it_agent_t *start_api_agent(void)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    return a;
}

/* 1500 runs of 2 tenants × 4 workflows over two days; some of t1's under ODD_WORKFLOW. */
static void publish_data(void)
{
    enum { N = 1500 };
    et_event_t *ev = calloc(N, sizeof *ev);
    cr_assert_not_null(ev);
    it_gen_t gen = {.seed = 4242,
                    .tenants = 2,
                    .workflows = 4,
                    .spread_us = 2 * ET_US_PER_DAY,
                    .run_prefix = "q-"};
    it_gen_events(ev, N, &gen);
    for (size_t i = 0; i < N; i += 7)
        if (strcmp(ev[i].tenant_id, "t1") == 0)
            snprintf(ev[i].workflow_id, sizeof ev[i].workflow_id, "%s", ODD_WORKFLOW);
    long long before = it_raw_count();
    it_publish(ev, N, 20, 17);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), before + N, "not every event became a raw row");
    free(ev);
}

/* YYYY-MM-DD of the UTC day holding t. */
static void format_date(int64_t t, char *out, size_t cap)
{
    int64_t y;
    unsigned m, d;
    et_civil_from_days(t / ET_US_PER_DAY, &y, &m, &d);
    snprintf(out, cap, "%04" PRId64 "-%02u-%02u", y, m, d);
}

/* "NAME=value", malloc'd. */
static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    cr_assert_not_null(s);
    snprintf(s, n, "%s=%s", name, value);
    return s;
}

/* `exectime-agent query ARGS...` (NULL-terminated) with env; its output in *out. */
static int run_query(const char *const *env, char **out, const char *const *args)
{
    const char *argv[32] = {it.agent_bin, "query"};
    size_t n = 2;
    for (size_t i = 0; args[i]; i++) {
        cr_assert(n < 31);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return it_run(argv, env, out, 120000);
}

/* The API's JSON answer to query (the same parameters the command sends). */
static json_t *api_answer(const it_agent_t *a, const char *auth, const char *query)
{
    char path[1024];
    snprintf(path, sizeof path, "%s?%s", API_PATH, query);
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = it_http_request(a->port, "GET", path, headers, &res);
    cr_assert_eq(status, 200, "GET %s: %d %s", path, status, res.body);
    json_t *j = json_loads(res.body, 0, NULL);
    cr_assert_not_null(j, "GET %s: not JSON: %s", path, res.body);
    it_http_response_free(&res);
    return j;
}

/* --- CSV, read by the test's own RFC 4180 reader ------------------------------------------ */

#define CSV_FIELDS_MAX 40

typedef struct csv_record {
    char *fields[CSV_FIELDS_MAX];
    int count;
} csv_record_t;

/* Splits text into records; every record must end in CRLF. Returns the number read. */
static int csv_read(const char *text, csv_record_t *out, int cap)
{
    int records = 0;
    const char *p = text;
    while (*p) {
        cr_assert(records < cap, "more CSV records than %d", cap);
        csv_record_t *r = &out[records++];
        r->count = 0;
        for (;;) {
            char *field = malloc(strlen(p) + 1);
            cr_assert_not_null(field);
            size_t n = 0;
            if (*p == '"') {
                p++;
                for (;;) {
                    cr_assert(*p, "an unclosed quoted CSV field");
                    if (*p == '"' && p[1] == '"') {
                        field[n++] = '"';
                        p += 2;
                    } else if (*p == '"') {
                        p++;
                        break;
                    } else {
                        field[n++] = *p++;
                    }
                }
            } else {
                while (*p && *p != ',' && *p != '\r' && *p != '\n') {
                    cr_assert(*p != '"', "a quote inside an unquoted CSV field");
                    field[n++] = *p++;
                }
            }
            field[n] = '\0';
            cr_assert(r->count < CSV_FIELDS_MAX);
            r->fields[r->count++] = field;
            if (*p == ',') {
                p++;
                continue;
            }
            cr_assert(p[0] == '\r' && p[1] == '\n', "a CSV record that does not end in CRLF");
            p += 2;
            break;
        }
    }
    return records;
}

static void csv_free(csv_record_t *r, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < r[i].count; k++)
            free(r[i].fields[k]);
}

/* A cell against the JSON value it came from: the same number exactly, "" for null. */
static void check_cell(const char *cell, const json_t *v, const char *what)
{
    if (v == NULL || json_is_null(v)) {
        cr_assert_str_empty(cell, "%s: \"%s\" where the API has null", what, cell);
    } else if (json_is_integer(v)) {
        cr_assert_eq(strtoll(cell, NULL, 10), (long long)json_integer_value(v), "%s: %s vs %lld",
                     what, cell, (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        char *end;
        double d = strtod(cell, &end);
        cr_assert(*end == '\0' && cell[0], "%s: \"%s\" is not a number", what, cell);
        cr_assert(d == json_real_value(v), "%s: %s vs the API's %.17g", what, cell,
                  json_real_value(v));
    } else {
        cr_assert(json_is_string(v));
        cr_assert_str_eq(cell, json_string_value(v), "%s", what);
    }
}

static const char *const stat_keys[] = {"count",     "failed", "avg_ms",
                                        "median_ms", "min_ms", "max_ms"};

static void check_csv_row(const csv_record_t *r, const char *scope, const json_t *answer,
                          const json_t *o, const char *what)
{
    const json_t *pcts = json_object_get(answer, "percentiles");
    cr_assert_eq(r->count, 4 + 6 + (int)json_object_size(pcts), "%s: %d fields", what, r->count);
    cr_assert_str_eq(r->fields[0], scope, "%s", what);
    cr_assert_str_eq(r->fields[1], json_string_value(json_object_get(answer, "tenant_id")));
    const json_t *workflow =
        json_object_get(strcmp(scope, "workflow") == 0 ? o : answer, "workflow_id");
    check_cell(r->fields[2], workflow, what);
    check_cell(r->fields[3], json_object_get(o, "bucket_start"), what);
    for (int k = 0; k < 6; k++)
        check_cell(r->fields[4 + k], json_object_get(o, stat_keys[k]), stat_keys[k]);
    const char *key;
    json_t *v;
    int k = 10;
    json_object_foreach((json_t *)pcts, key, v)
    {
        check_cell(r->fields[k++], json_object_get(json_object_get(o, "percentiles"), key), key);
    }
}

static void check_csv(const char *csv, const json_t *answer, const char *what)
{
    const json_t *workflows = json_object_get(answer, "workflows");
    const json_t *series = json_object_get(answer, "series");
    int want = 2 + (int)json_array_size(workflows) + (int)json_array_size(series);
    csv_record_t *rec = calloc((size_t)want + 1, sizeof *rec);
    cr_assert_not_null(rec);
    int n = csv_read(csv, rec, want + 1);
    cr_assert_eq(n, want, "%s: %d CSV records, want %d:\n%s", what, n, want, csv);
    static const char *const head[] = {"scope",  "tenant_id", "workflow_id", "bucket_start",
                                       "count",  "failed",    "avg_ms",      "median_ms",
                                       "min_ms", "max_ms"};
    for (int k = 0; k < 10; k++)
        cr_assert_str_eq(rec[0].fields[k], head[k], "%s: header field %d", what, k);
    const char *key;
    json_t *v;
    int k = 10;
    json_object_foreach(json_object_get(answer, "percentiles"), key, v)
    {
        cr_assert_str_eq(rec[0].fields[k++], key, "%s: header", what);
    }
    check_csv_row(&rec[1], "summary", answer, answer, what);
    int row = 2;
    size_t i;
    json_t *item;
    json_array_foreach(workflows, i, item)
    {
        check_csv_row(&rec[row++], "workflow", answer, item, what);
    }
    json_array_foreach(series, i, item)
    {
        check_csv_row(&rec[row++], "series", answer, item, what);
    }
    csv_free(rec, n);
    free(rec);
}

/* --- the table ------------------------------------------------------------------------------ */

static void cell_text(const json_t *v, bool ms, char *buf, size_t cap)
{
    if (v == NULL || json_is_null(v))
        snprintf(buf, cap, "-");
    else if (ms && json_is_number(v))
        snprintf(buf, cap, "%.3f", json_number_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%.3f", json_real_value(v));
    else
        snprintf(buf, cap, "%s", json_string_value(v));
}

/* The row of o as the table prints it, its cells one space apart. */
static void table_row(const json_t *answer, const json_t *o, const char *first, bool median,
                      char *buf, size_t cap)
{
    char cell[128];
    size_t n = 0;
    buf[0] = '\0';
    if (first)
        n += (size_t)snprintf(buf + n, cap - n, "%s", first);
    for (int k = 0; k < 6; k++) {
        if (!median && k == 3)
            continue;
        cell_text(json_object_get(o, stat_keys[k]), k >= 2, cell, sizeof cell);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? " " : "", cell);
    }
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(answer, "percentiles"), key, v)
    {
        cell_text(json_object_get(json_object_get(o, "percentiles"), key), true, cell, sizeof cell);
        n += (size_t)snprintf(buf + n, cap - n, " %s", cell);
    }
    cr_assert(n < cap);
}

/* Finds want (cells one space apart) as a line of text at or after *from, whose cells are
 * two or more spaces apart; moves *from past it. Returns the line's length. */
static size_t expect_line(const char *text, const char **from, const char *want, const char *what)
{
    const char *p = *from;
    while (*p) {
        const char *end = strchr(p, '\n');
        cr_assert_not_null(end, "%s: the table does not end in a newline", what);
        char collapsed[4096];
        size_t n = 0;
        bool space = false;
        for (const char *c = p; c < end && n + 1 < sizeof collapsed; c++) {
            if (*c == ' ') {
                space = true;
                continue;
            }
            if (space && n > 0)
                collapsed[n++] = ' ';
            space = false;
            collapsed[n++] = *c;
        }
        collapsed[n] = '\0';
        if (strcmp(collapsed, want) == 0) {
            *from = end + 1;
            return (size_t)(end - p);
        }
        p = end + 1;
    }
    cr_assert_fail("%s: no line \"%s\" in the table:\n%s", what, want, text);
    return 0;
}

static void check_table(const char *table, const json_t *answer, const char *what)
{
    char want[4096], head[1024];
    const char *at = table;
    /* the summary: a header line and a value line of the same width (aligned columns) */
    snprintf(head, sizeof head, "count failed avg_ms median_ms min_ms max_ms");
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(answer, "percentiles"), key, v)
    {
        strncat(head, " ", sizeof head - strlen(head) - 1);
        strncat(head, key, sizeof head - strlen(head) - 1);
    }
    size_t width = expect_line(table, &at, head, what);
    table_row(answer, answer, NULL, true, want, sizeof want);
    cr_assert_eq(expect_line(table, &at, want, what), width, "%s: summary columns not aligned",
                 what);
    size_t i;
    json_t *item;
    const json_t *workflows = json_object_get(answer, "workflows");
    if (json_array_size(workflows) > 0) {
        char wf_head[1100];
        snprintf(wf_head, sizeof wf_head, "workflow_id %s", head);
        width = expect_line(table, &at, wf_head, what);
        json_array_foreach(workflows, i, item)
        {
            table_row(answer, item, json_string_value(json_object_get(item, "workflow_id")), true,
                      want, sizeof want);
            cr_assert_eq(expect_line(table, &at, want, what), width,
                         "%s: workflow columns not aligned", what);
        }
    }
    const json_t *series = json_object_get(answer, "series");
    if (json_array_size(series) > 0) {
        json_array_foreach(series, i, item)
        {
            table_row(answer, item, json_string_value(json_object_get(item, "bucket_start")), false,
                      want, sizeof want);
            expect_line(table, &at, want, what);
        }
    }
}

/* --- the questions ------------------------------------------------------------------------- */

typedef struct question {
    const char *args[16]; /* query's flags, NULL-terminated */
    const char *query;    /* the same question to the API */
} question_t;

Test(query, query_prints_the_apis_numbers_as_json_csv_and_table, IT_TEST_OPTS)
{
    it_agent_t *a = start_api_agent();
    publish_data();
    char *auth = it_bearer_hs256(SECRET, "\"tenant_ids\": [\"t1\", \"t2\"]");
    const char *token = auth + strlen("Authorization: Bearer ");
    char url[64], from[16], to[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", a->port); /* a trailing slash is fine */
    int64_t now = et_now_us();
    int64_t day0 = now / ET_US_PER_DAY * ET_US_PER_DAY;
    format_date(day0 - 3 * ET_US_PER_DAY, from, sizeof from);
    format_date(day0, to, sizeof to); /* a date end: that whole day */
    char *env_url = env_entry("EXECTIME_API_URL", url);
    char *env_token = env_entry("EXECTIME_TOKEN", token);
    const char *env[] = {env_url, env_token, NULL};

    char q[6][512];
    snprintf(q[0], sizeof q[0], "tenant_id=t1&start_date=%s&end_date=%s", from, to);
    snprintf(q[1], sizeof q[1], "tenant_id=t1&workflow_id=wf-2&start_date=%s&end_date=%s", from,
             to);
    snprintf(q[2], sizeof q[2],
             "tenant_id=t1&start_date=%s&end_date=%s&status=failed%%2Ctimeout"
             "&percentiles=50%%2C99.9&group_by=workflow",
             from, to);
    snprintf(q[3], sizeof q[3], "tenant_id=t2&start_date=%s&end_date=%s&interval=hour", from, to);
    snprintf(q[4], sizeof q[4],
             "tenant_id=t1&workflow_id=wf%%2C%%22odd%%22&start_date=%s&end_date=%s"
             "&interval=day&group_by=workflow",
             from, to);
    snprintf(q[5], sizeof q[5],
             "tenant_id=t2&start_date=%s&end_date=%s&group_by=workflow"
             "&interval=auto&percentiles=95",
             from, to);
    const question_t questions[] = {
        {{"--tenant", "t1", "--from", from, "--to", to, NULL}, q[0]},
        {{"--tenant", "t1", "--workflow", "wf-2", "--from", from, "--to", to, NULL}, q[1]},
        {{"--tenant", "t1", "--from", from, "--to", to, "--status", "failed,timeout",
          "--percentiles", "50,99.9", "--group-by", "workflow", NULL},
         q[2]},
        {{"--tenant", "t2", "--from", from, "--to", to, "--interval", "hour", NULL}, q[3]},
        {{"--tenant", "t1", "--workflow", ODD_WORKFLOW, "--from", from, "--to", to, "--interval",
          "day", "--group-by", "workflow", NULL},
         q[4]},
        {{"--tenant", "t2", "--from", from, "--to", to, "--group-by", "workflow", "--interval",
          "auto", "--percentiles", "95", NULL},
         q[5]},
    };
    static const char *const formats[] = {"json", "csv", "table"};
    for (size_t qi = 0; qi < sizeof questions / sizeof questions[0]; qi++) {
        json_t *api = api_answer(a, auth, questions[qi].query);
        cr_assert(json_integer_value(json_object_get(api, "count")) > 0, "%s: no runs",
                  questions[qi].query);
        for (size_t f = 0; f < 3; f++) {
            const char *args[20];
            size_t n = 0;
            for (; questions[qi].args[n]; n++)
                args[n] = questions[qi].args[n];
            args[n++] = "--format";
            args[n++] = formats[f];
            args[n] = NULL;
            char *out = NULL;
            int status = run_query(env, &out, args);
            char what[600];
            snprintf(what, sizeof what, "query --format %s (%s)", formats[f], questions[qi].query);
            cr_assert_eq(status, 0, "%s: exit %d: %s", what, status, out);
            if (f == 0) {
                json_t *j = json_loads(out, 0, NULL);
                cr_assert(j && json_equal(j, api), "%s: not the API's answer:\n%s", what, out);
                json_decref(j);
            } else if (f == 1) {
                check_csv(out, api, what);
            } else {
                check_table(out, api, what);
            }
            free(out);
        }
        json_decref(api);
    }
    /* The table, for the eye when the test runs verbose. */
    const char *show[] = {"--tenant", "t1",         "--from",   from, "--to",
                          to,         "--group-by", "workflow", NULL};
    char *out = NULL;
    cr_assert_eq(run_query(env, &out, show), 0);
    cr_log_info("%s", out);
    free(out);
    free(env_url);
    free(env_token);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* --- exit statuses --------------------------------------------------------------------------- */

static void expect_exit(const char *const *env, int want, const char *pattern,
                        const char *const *args)
{
    char *out = NULL;
    int status = run_query(env, &out, args);
    cr_assert(status == want && strstr(out, pattern) != NULL,
              "query %s ...: exit %d (want %d), output without \"%s\":\n%s", args[0] ? args[0] : "",
              status, want, pattern, out);
    free(out);
}

static void admin_exec(const char *sql)
{
    PGconn *admin = PQconnectdb(it.admin_url);
    cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s", PQerrorMessage(admin));
    PGresult *r = PQexec(admin, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(admin);
}

Test(query, query_exit_statuses_tell_scripts_what_went_wrong, IT_TEST_OPTS)
{
    it_agent_t *a = start_api_agent();
    publish_data();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", a->port);
    char *env_url = env_entry("EXECTIME_API_URL", url);
    char *auth = it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
    char *env_token = env_entry("EXECTIME_TOKEN", auth + strlen("Authorization: Bearer "));
    char *env_dev = env_entry("EXECTIME_DEV_TOKEN", auth + strlen("Authorization: Bearer "));
    char claims[128];
    snprintf(claims, sizeof claims, "{\"exp\": %lld, \"tenant_id\": \"t1\"}",
             (long long)(et_now_us() / 1000000 + 3600));
    char *other = it_bearer_signed(JWT_ALG_HS256, "another-secret-of-enough-length!", claims);
    char *env_other = env_entry("EXECTIME_TOKEN", other + strlen("Authorization: Bearer "));
    const char *with_token[] = {env_url, env_token, NULL};
    const char *no_token[] = {env_url, NULL};
    const char *dev_token[] = {env_url, env_dev, NULL};
    const char *bad_token[] = {env_url, env_other, NULL};

    const char *plain[] = {NULL};
    expect_exit(with_token, 0, "count", plain);
    expect_exit(dev_token, 0, "count", plain); /* .local/env's name */
    expect_exit(no_token, 3, "HTTP 401 unauthorized", plain);
    expect_exit(no_token, 3, "no token was given: set EXECTIME_TOKEN", plain);
    expect_exit(bad_token, 3, "HTTP 401", plain);
    const char *other_tenant[] = {"--tenant", "t2", NULL};
    expect_exit(with_token, 3, "HTTP 403 forbidden", other_tenant);
    const char *bad_from[] = {"--from", "yesterday", NULL};
    expect_exit(with_token, 2, "--from: \"yesterday\" is not an RFC 3339 time", bad_from);
    const char *bad_format[] = {"--format", "xml", NULL};
    expect_exit(with_token, 2, "--format", bad_format);
    const char *bad_pct[] = {"--percentiles", "0", NULL};
    expect_exit(with_token, 4, "HTTP 400 invalid_parameter: percentiles", bad_pct);
    const char *bad_interval[] = {"--interval", "fortnight", NULL};
    expect_exit(with_token, 4, "interval", bad_interval);
    const char *https[] = {"--url", "https://127.0.0.1:1", NULL};
    expect_exit(with_token, 2, "https:// is not supported", https);
    const char *closed[] = {"--url", "http://127.0.0.1:1", NULL};
    expect_exit(with_token, 5, "cannot connect to 127.0.0.1 port 1", closed);
    const char *not_found[] = {"--url", url, NULL};
    char prefixed[96];
    snprintf(prefixed, sizeof prefixed, "%s/elsewhere", url);
    not_found[1] = prefixed;
    expect_exit(with_token, 1, "HTTP 404", not_found);

    /* The database away: the API answers 503, the command exits 5. */
    char sql[256];
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS false", it.db_name);
    admin_exec(sql);
    snprintf(sql, sizeof sql,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE datname = '%s' AND usename = 'exectime_agent'",
             it.db_name);
    admin_exec(sql);
    const char *headers[] = {auth, NULL};
    it_http_response_t res = {0};
    IT_WAIT_UNTIL((it_http_response_free(&res),
                   it_http_request(a->port, "GET", API_PATH, headers, &res) == 503),
                  IT_WAIT_MS, "no 503 with the database away");
    it_http_response_free(&res);
    expect_exit(with_token, 5, "HTTP 503 unavailable", plain);
    snprintf(sql, sizeof sql, "ALTER DATABASE %s ALLOW_CONNECTIONS true", it.db_name);
    admin_exec(sql);
    it_agent_wait_ready(a);

    free(env_url);
    free(env_token);
    free(env_dev);
    free(env_other);
    free(other);
    free(auth);
    it_agent_stop(a);
    it_pass();
}
