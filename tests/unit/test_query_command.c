/* Unit tests for agent/query_command: the request it builds and how it prints an answer
 * (CSV quoting and columns, the table's alignment, nulls). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query_command.h"

static char *render(const char *json, query_format_t format)
{
    json_t *j = json_loads(json, 0, NULL);
    cr_assert_not_null(j, "%s", json);
    char *text = NULL, err[256];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_eq(query_render(j, format, out, err, sizeof err), 0, "%s", err);
    fclose(out);
    json_decref(j);
    return text;
}

static const char answer[] =
    "{\"tenant_id\": \"t1\", \"workflow_id\": null, \"status\": \"all\","
    " \"start_date\": \"2026-11-21T00:00:00Z\", \"end_date\": \"2026-11-22T00:00:00Z\","
    " \"count\": 3, \"failed\": 1, \"avg_ms\": 812.4, \"median_ms\": 790.1, \"min_ms\": 3,"
    " \"max_ms\": 92000.0, \"percentiles\": {\"p50\": 790.1, \"p99.9\": 0.1},"
    " \"relative_error\": 0.01, \"interval\": \"day\","
    " \"series\": [{\"bucket_start\": \"2026-11-21T00:00:00Z\", \"count\": 0, \"failed\": 0,"
    " \"avg_ms\": null, \"min_ms\": null, \"max_ms\": null,"
    " \"percentiles\": {\"p50\": null, \"p99.9\": null}}],"
    " \"workflows\": [{\"workflow_id\": \"wf,\\\"odd\\\"\", \"count\": 3, \"failed\": 1,"
    " \"avg_ms\": 812.4, \"median_ms\": 790.1, \"min_ms\": 3, \"max_ms\": 92000.0,"
    " \"percentiles\": {\"p50\": 790.1, \"p99.9\": 0.1}}]}";

Test(query_command, csv_has_one_header_and_quotes_as_rfc_4180)
{
    char *csv = render(answer, QUERY_FORMAT_CSV);
    cr_assert_str_eq(csv, "scope,tenant_id,workflow_id,bucket_start,count,failed,avg_ms,median_ms,"
                          "min_ms,max_ms,p50,p99.9\r\n"
                          "summary,t1,,,3,1,812.4,790.1,3,92000,790.1,0.1\r\n"
                          "workflow,t1,\"wf,\"\"odd\"\"\",,3,1,812.4,790.1,3,92000,790.1,0.1\r\n"
                          "series,t1,,2026-11-21T00:00:00Z,0,0,,,,,,\r\n");
    free(csv);
}

Test(query_command, table_aligns_columns_and_shows_nulls_as_dashes)
{
    char *table = render(answer, QUERY_FORMAT_TABLE);
    cr_assert_not_null(strstr(table, "tenant t1, all workflows, status all, "
                                     "2026-11-21T00:00:00Z to 2026-11-22T00:00:00Z\n"),
                       "%s", table);
    cr_assert_not_null(strstr(table, "count  failed   avg_ms  median_ms  min_ms     max_ms"
                                     "      p50  p99.9\n"
                                     "    3       1  812.400    790.100   3.000  92000.000"
                                     "  790.100  0.100\n"),
                       "%s", table);
    cr_assert_not_null(strstr(table, "workflow_id  count"), "%s", table);
    cr_assert_not_null(strstr(table, "wf,\"odd\"         3"), "%s", table);
    cr_assert_not_null(strstr(table, "series (day)\n"), "%s", table);
    cr_assert_not_null(strstr(table, "2026-11-21T00:00:00Z      0       0       -       -       -"
                                     "    -      -\n"),
                       "%s", table);
    free(table);
}

Test(query_command, an_answer_that_is_not_the_statistics_is_refused)
{
    const char *bad[] = {"[]", "{}", "{\"count\": \"3\"}", "{\"count\": 1, \"series\": [1]}",
                         "{\"count\": 1, \"workflows\": {}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        char err[256];
        FILE *out = fopen("/dev/null", "w");
        cr_assert_eq(query_render(j, QUERY_FORMAT_TABLE, out, err, sizeof err), -EINVAL, "%s",
                     bad[i]);
        fclose(out);
        json_decref(j);
    }
}

Test(query_command, the_request_carries_the_flags_given_and_only_those)
{
    cli_t cli = {.command = CLI_QUERY,
                 .tenant = "t 1",
                 .from = "2026-11-01",
                 .group_by = "workflow",
                 .percentiles = "50,99.9"};
    char path[512];
    cr_assert_eq(query_build_path(&cli, path, sizeof path), 0);
    cr_assert_str_eq(path, "/api/v1/statistics/execution-times?tenant_id=t%201"
                           "&start_date=2026-11-01&percentiles=50%2C99.9&group_by=workflow");
    cli_t none = {.command = CLI_QUERY};
    cr_assert_eq(query_build_path(&none, path, sizeof path), 0);
    cr_assert_str_eq(path, "/api/v1/statistics/execution-times");
    cr_assert_eq(query_build_path(&cli, path, 40), -ENOSPC);
}
