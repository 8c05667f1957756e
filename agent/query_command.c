/* query_command — see query_command.h. */
#include "query_command.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api_client.h"
#include "timeutil.h"

#define PROG "exectime-agent query"
#define API_PATH "/api/v1/statistics/execution-times"
#define PATH_MAX_LEN 8192
#define PERCENTILES_MAX 20 /* the API's own limit */
#define COLS_MAX (10 + PERCENTILES_MAX)

/* --- the request ------------------------------------------------------------------------ */

int query_build_path(const cli_t *cli, char *out, size_t cap)
{
    const struct {
        const char *name, *value;
    } params[] = {
        {"tenant_id", cli->tenant},  {"workflow_id", cli->workflow},
        {"start_date", cli->from},   {"end_date", cli->to},
        {"status", cli->status},     {"percentiles", cli->percentiles},
        {"interval", cli->interval}, {"group_by", cli->group_by},
    };
    if (cap <= strlen(API_PATH))
        return -ENOSPC;
    snprintf(out, cap, "%s", API_PATH);
    char *query = out + strlen(API_PATH);
    size_t query_cap = cap - strlen(API_PATH);
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (params[i].value == NULL)
            continue;
        int rc = api_query_append(query, query_cap, params[i].name, params[i].value);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- cells -------------------------------------------------------------------------------- */

/* The rows of one printed table: cells in row order, each malloc'd. */
typedef struct grid {
    size_t cols;
    size_t len, cap; /* cells */
    char **cells;
    bool out_of_memory;
} grid_t;

static void grid_push(grid_t *g, const char *text)
{
    if (g->out_of_memory)
        return;
    if (g->len == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **grown = realloc(g->cells, cap * sizeof *grown);
        if (grown == NULL) {
            g->out_of_memory = true;
            return;
        }
        g->cells = grown;
        g->cap = cap;
    }
    char *copy = strdup(text);
    if (copy == NULL) {
        g->out_of_memory = true;
        return;
    }
    g->cells[g->len++] = copy;
}

static void grid_free(grid_t *g)
{
    for (size_t i = 0; i < g->len; i++)
        free(g->cells[i]);
    free(g->cells);
    memset(g, 0, sizeof *g);
}

/* A number as text: in CSV the shortest decimal that reads back as the same double (so a
 * script gets the API's value), in a table milliseconds (ms) to the µs, whole or not.
 * Absent or null: "" in CSV, "-" in a table. */
static void format_value(const json_t *v, bool csv, bool ms, char *buf, size_t cap)
{
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, cap, "%s", csv ? "" : "-");
    } else if (ms && !csv && json_is_number(v)) {
        snprintf(buf, cap, "%.3f", json_number_value(v));
    } else if (json_is_integer(v)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!csv) {
            snprintf(buf, cap, "%.3f", d);
            return;
        }
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(buf, cap, "%.*g", digits, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    } else if (json_is_string(v)) {
        snprintf(buf, cap, "%s", json_string_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    } else {
        snprintf(buf, cap, "%s", csv ? "" : "?");
    }
}

/* The statistics columns, in the order both formats print them. */
static const char *const stat_keys[] = {"count",     "failed", "avg_ms",
                                        "median_ms", "min_ms", "max_ms"};
#define STAT_KEYS (sizeof stat_keys / sizeof stat_keys[0])

typedef struct layout {
    const char *pct_keys[PERCENTILES_MAX];
    size_t pct_count;
    bool csv;
    bool with_median; /* the series has none: its tables leave the column out */
} layout_t;

static void push_stats(grid_t *g, const layout_t *l, const json_t *o)
{
    char buf[64];
    for (size_t k = 0; k < STAT_KEYS; k++) {
        if (!l->with_median && strcmp(stat_keys[k], "median_ms") == 0)
            continue;
        bool ms = k >= 2; /* after count and failed */
        format_value(json_object_get(o, stat_keys[k]), l->csv, ms, buf, sizeof buf);
        grid_push(g, buf);
    }
    const json_t *pcts = json_object_get(o, "percentiles");
    for (size_t k = 0; k < l->pct_count; k++) {
        format_value(json_object_get(pcts, l->pct_keys[k]), l->csv, true, buf, sizeof buf);
        grid_push(g, buf);
    }
}

static void push_header(grid_t *g, const layout_t *l, const char *const *first, size_t n_first)
{
    for (size_t k = 0; k < n_first; k++)
        grid_push(g, first[k]);
    for (size_t k = 0; k < STAT_KEYS; k++)
        if (l->with_median || strcmp(stat_keys[k], "median_ms") != 0)
            grid_push(g, stat_keys[k]);
    for (size_t k = 0; k < l->pct_count; k++)
        grid_push(g, l->pct_keys[k]);
}

/* --- printing ----------------------------------------------------------------------------- */

/* Columns two spaces apart, numbers to the right; a first column of names or times (label)
 * to the left. */
static void print_aligned(FILE *out, const grid_t *g, bool label)
{
    size_t width[COLS_MAX] = {0};
    for (size_t i = 0; i < g->len; i++) {
        size_t w = strlen(g->cells[i]);
        if (w > width[i % g->cols])
            width[i % g->cols] = w;
    }
    for (size_t i = 0; i < g->len; i++) {
        size_t col = i % g->cols;
        int w = (int)width[col];
        if (col == 0)
            fprintf(out, label ? "%-*s" : "%*s", w, g->cells[i]);
        else
            fprintf(out, "  %*s", w, g->cells[i]);
        if (col == g->cols - 1)
            fputc('\n', out);
    }
}

/* RFC 4180: a field with a comma, quote, CR or LF goes in quotes, quotes doubled; CRLF
 * ends each record. */
static void print_csv(FILE *out, const grid_t *g)
{
    for (size_t i = 0; i < g->len; i++) {
        const char *cell = g->cells[i];
        size_t col = i % g->cols;
        if (col > 0)
            fputc(',', out);
        if (strpbrk(cell, ",\"\r\n")) {
            fputc('"', out);
            for (const char *c = cell; *c; c++) {
                if (*c == '"')
                    fputc('"', out);
                fputc(*c, out);
            }
            fputc('"', out);
        } else {
            fputs(cell, out);
        }
        if (col == g->cols - 1)
            fputs("\r\n", out);
    }
}

static const char *string_or(const json_t *o, const char *key, const char *fallback)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : fallback;
}

/* Checks that list (may be absent) is an array of objects. */
static bool objects_or_absent(const json_t *list)
{
    if (list == NULL)
        return true;
    if (!json_is_array(list))
        return false;
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        if (!json_is_object(item))
            return false;
    }
    return true;
}

static int render_csv(const json_t *answer, layout_t *l, FILE *out)
{
    const json_t *workflows = json_object_get(answer, "workflows");
    const json_t *series = json_object_get(answer, "series");
    const char *tenant = string_or(answer, "tenant_id", "");
    const char *workflow = string_or(answer, "workflow_id", "");
    static const char *const first[] = {"scope", "tenant_id", "workflow_id", "bucket_start"};
    grid_t g = {.cols = 4 + STAT_KEYS + l->pct_count};
    l->with_median = true;
    push_header(&g, l, first, 4);
    const char *summary[] = {"summary", tenant, workflow, ""};
    for (size_t k = 0; k < 4; k++)
        grid_push(&g, summary[k]);
    push_stats(&g, l, answer);
    size_t i;
    const json_t *item;
    json_array_foreach(workflows, i, item)
    {
        const char *row[] = {"workflow", tenant, string_or(item, "workflow_id", ""), ""};
        for (size_t k = 0; k < 4; k++)
            grid_push(&g, row[k]);
        push_stats(&g, l, item);
    }
    json_array_foreach(series, i, item)
    {
        const char *row[] = {"series", tenant, workflow, string_or(item, "bucket_start", "")};
        for (size_t k = 0; k < 4; k++)
            grid_push(&g, row[k]);
        /* a bucket has no median_ms: the cell stays empty */
        push_stats(&g, l, item);
    }
    int rc = g.out_of_memory ? -ENOMEM : 0;
    if (rc == 0)
        print_csv(out, &g);
    grid_free(&g);
    return rc;
}

static int render_table(const json_t *answer, layout_t *l, FILE *out)
{
    const json_t *workflows = json_object_get(answer, "workflows");
    const json_t *series = json_object_get(answer, "series");
    fprintf(out, "tenant %s, %s%s, status %s, %s to %s\n", string_or(answer, "tenant_id", "?"),
            json_is_string(json_object_get(answer, "workflow_id")) ? "workflow " : "",
            string_or(answer, "workflow_id", "all workflows"), string_or(answer, "status", "?"),
            string_or(answer, "start_date", "?"), string_or(answer, "end_date", "?"));
    const json_t *rel = json_object_get(answer, "relative_error");
    fprintf(out, "durations in ms; percentiles within %g%%\n\n",
            json_is_number(rel) ? json_number_value(rel) * 100 : 1.0);
    int rc = 0;
    grid_t g = {.cols = STAT_KEYS + l->pct_count};
    l->with_median = true;
    push_header(&g, l, NULL, 0);
    push_stats(&g, l, answer);
    if (g.out_of_memory)
        rc = -ENOMEM;
    else
        print_aligned(out, &g, false);
    grid_free(&g);
    size_t i;
    const json_t *item;
    if (rc == 0 && workflows && json_array_size(workflows) > 0) {
        static const char *const first[] = {"workflow_id"};
        g = (grid_t){.cols = 1 + STAT_KEYS + l->pct_count};
        push_header(&g, l, first, 1);
        json_array_foreach(workflows, i, item)
        {
            grid_push(&g, string_or(item, "workflow_id", "?"));
            push_stats(&g, l, item);
        }
        fputc('\n', out);
        if (g.out_of_memory)
            rc = -ENOMEM;
        else
            print_aligned(out, &g, true);
        grid_free(&g);
    }
    if (rc == 0 && series && json_array_size(series) > 0) {
        static const char *const first[] = {"bucket_start"};
        l->with_median = false;
        g = (grid_t){.cols = 1 + STAT_KEYS - 1 + l->pct_count};
        push_header(&g, l, first, 1);
        json_array_foreach(series, i, item)
        {
            grid_push(&g, string_or(item, "bucket_start", "?"));
            push_stats(&g, l, item);
        }
        fprintf(out, "\nseries (%s)\n", string_or(answer, "interval", "?"));
        if (g.out_of_memory)
            rc = -ENOMEM;
        else
            print_aligned(out, &g, true);
        grid_free(&g);
    }
    return rc;
}

int query_render(const json_t *answer, query_format_t format, FILE *out, char *errbuf,
                 size_t err_cap)
{
    if (!json_is_object(answer) || !json_is_integer(json_object_get(answer, "count")) ||
        !objects_or_absent(json_object_get(answer, "workflows")) ||
        !objects_or_absent(json_object_get(answer, "series"))) {
        snprintf(errbuf, err_cap,
                 "the answer is not the statistics (no count, or a list that "
                 "is not of objects)");
        return -EINVAL;
    }
    layout_t l = {.csv = format == QUERY_FORMAT_CSV};
    const json_t *pcts = json_object_get(answer, "percentiles");
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)pcts, key, value)
    {
        if (l.pct_count == PERCENTILES_MAX)
            break;
        l.pct_keys[l.pct_count++] = key;
    }
    int rc =
        format == QUERY_FORMAT_CSV ? render_csv(answer, &l, out) : render_table(answer, &l, out);
    if (rc < 0)
        snprintf(errbuf, err_cap, "out of memory while printing");
    return rc;
}

/* --- the command -------------------------------------------------------------------------- */

static bool bad_time(const char *flag, const char *value, FILE *err)
{
    int64_t us;
    bool date_only;
    if (value == NULL || et_time_parse(value, strlen(value), &us, &date_only) == 0)
        return false;
    fprintf(err, PROG ": %s: \"%s\" is not an RFC 3339 time or a date\n", flag, value);
    return true;
}

static const char *first_set(const char *a, const char *b, const char *c)
{
    if (a && a[0])
        return a;
    if (b && b[0])
        return b;
    return c && c[0] ? c : NULL;
}

/* One line for a refusal: status, the API's error code and message, what to do. */
static int report_refusal(const api_response_t *res, bool had_token, FILE *err)
{
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const json_t *e = json_object_get(j, "error");
    const char *code = string_or(e, "code", NULL), *message = string_or(e, "message", NULL);
    const char *parameter = string_or(e, "parameter", NULL);
    fprintf(err, PROG ": HTTP %d", res->status);
    if (code)
        fprintf(err, " %s", code);
    if (parameter)
        fprintf(err, ": %s", parameter);
    if (message)
        fprintf(err, ": %s", message);
    int status = res->status;
    int exit_code = QUERY_EXIT_OTHER;
    if (status == 401 || status == 403) {
        exit_code = QUERY_EXIT_UNAUTHORIZED;
        if (!had_token)
            fprintf(err, " (no token was given: set EXECTIME_TOKEN or use --token)");
    } else if (status == 400 || status == 422) {
        exit_code = QUERY_EXIT_BAD_REQUEST;
    } else if (status >= 500) {
        exit_code = QUERY_EXIT_UNAVAILABLE;
    } else if (status == 404) {
        fprintf(err, " (is the URL the agent's, with the proxy's path if any?)");
    }
    fputc('\n', err);
    json_decref(j);
    return exit_code;
}

int query_command_run(const cli_t *cli, FILE *out, FILE *err)
{
    query_format_t format = QUERY_FORMAT_TABLE;
    if (cli->format && strcmp(cli->format, "csv") == 0)
        format = QUERY_FORMAT_CSV;
    else if (cli->format && strcmp(cli->format, "json") == 0)
        format = QUERY_FORMAT_JSON;
    /* The API would refuse these too; checked here they are a usage error (2), like the
     * other commands' --from and --to. */
    if (bad_time("--from", cli->from, err) || bad_time("--to", cli->to, err))
        return QUERY_EXIT_USAGE;
    const char *url_text = first_set(cli->url, getenv("EXECTIME_API_URL"), QUERY_DEFAULT_URL);
    const char *token =
        first_set(cli->token, getenv("EXECTIME_TOKEN"), getenv("EXECTIME_DEV_TOKEN"));
    char msg[512];
    api_url_t url;
    if (api_url_parse(url_text, &url, msg, sizeof msg) < 0) {
        fprintf(err, PROG ": %s%s\n", cli->url ? "--url: " : "EXECTIME_API_URL: ", msg);
        return QUERY_EXIT_USAGE;
    }
    char path[PATH_MAX_LEN];
    if (query_build_path(cli, path, sizeof path) < 0) {
        fprintf(err, PROG ": the flags' values make a request over %d bytes\n", PATH_MAX_LEN);
        return QUERY_EXIT_USAGE;
    }
    api_response_t res;
    int rc = api_client_get(&url, path, token, QUERY_TIMEOUT_MS, API_CLIENT_BODY_MAX, &res, msg,
                            sizeof msg);
    if (rc < 0) {
        fprintf(err, PROG ": %s: %s\n", url_text, msg);
        if (rc == -EINVAL)
            return QUERY_EXIT_USAGE;
        return rc == -EHOSTUNREACH || rc == -ETIMEDOUT ? QUERY_EXIT_UNAVAILABLE : QUERY_EXIT_OTHER;
    }
    int code = QUERY_EXIT_OK;
    if (res.status != 200) {
        code = report_refusal(&res, token != NULL, err);
        api_response_free(&res);
        return code;
    }
    json_error_t jerr;
    json_t *answer = json_loadb(res.body, res.body_len, 0, &jerr);
    if (answer == NULL) {
        fprintf(err, PROG ": the answer is not JSON (%s); is %s the agent?\n", jerr.text, url_text);
        code = QUERY_EXIT_OTHER;
    } else if (format == QUERY_FORMAT_JSON) {
        fwrite(res.body, 1, res.body_len, out);
        if (res.body_len == 0 || res.body[res.body_len - 1] != '\n')
            fputc('\n', out);
    } else if (query_render(answer, format, out, msg, sizeof msg) < 0) {
        fprintf(err, PROG ": %s\n", msg);
        code = QUERY_EXIT_OTHER;
    }
    json_decref(answer);
    api_response_free(&res);
    if (code == QUERY_EXIT_OK && (fflush(out) != 0 || ferror(out))) {
        fprintf(err, PROG ": writing the output failed\n");
        code = QUERY_EXIT_OTHER;
    }
    return code;
}
