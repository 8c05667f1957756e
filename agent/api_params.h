/*
 * api_params — the query strings of GET /api/v1/statistics/execution-times (DESIGN
 * section 5) and of GET /api/v1/statistics/regressions (docs/api.md), parsed and
 * validated into fixed-size structs. Both share the decoding, the error style and the
 * parameters they have in common (tenant_id, start_date, end_date, status, limit).
 *
 * The parser is pure: no I/O, no allocation, no globals, no clock (the caller passes
 * now_us), so it is safe from any thread and easy to fuzz. The input is untrusted: every
 * byte is checked, every length bounded, and the first problem found (left to right)
 * is reported as a 400 "invalid_parameter" naming the parameter and saying why in plain
 * words. Error texts are always printable ASCII, so they can go straight into JSON; user
 * bytes are echoed only sanitized and truncated. A problem with the query as a whole
 * (over API_QUERY_MAX bytes, a pair with no name) names the parameter "query".
 *
 * Ownership: api_params_parse writes only into the caller's *out and *err; nothing in
 * them points into the query. On error *out is partly filled and must not be used.
 */
#ifndef EXECTIME_API_PARAMS_H
#define EXECTIME_API_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_codec.h"

#define API_PERCENTILES_MAX 20
#define API_QUERY_MAX 8192 /* raw query bytes */
#define API_VALUE_MAX 1024 /* decoded bytes of one name or value */
#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX 1000
#define API_MIN_RUNS_DEFAULT 50
#define API_MIN_RUNS_MAX 1000000000LL
#define API_THRESHOLD_DEFAULT 20.0
#define API_THRESHOLD_MAX 100000 /* percent */

typedef enum api_interval {
    API_INTERVAL_NONE, /* no series */
    API_INTERVAL_MINUTE,
    API_INTERVAL_HOUR,
    API_INTERVAL_DAY,
    API_INTERVAL_AUTO, /* the caller picks a resolution for <= ~240 points */
} api_interval_t;

typedef enum api_sort {
    API_SORT_P95, /* all sorts are descending */
    API_SORT_COUNT,
    API_SORT_AVG,
    API_SORT_MAX,
} api_sort_t;

/* What the answer measures (bits of api_params_t.measures). The run-time block is always
 * answered; API_MEASURE_QUEUE_WAIT adds the queue_wait blocks beside it. */
#define API_MEASURE_RUN 1u
#define API_MEASURE_QUEUE_WAIT 2u

typedef struct api_error {
    int status;         /* HTTP status: 400 */
    char code[32];      /* "invalid_parameter" */
    char parameter[32]; /* the parameter's name (an unknown one truncated), or "query" */
    char message[256];  /* why, e.g. "must not be empty"; printable ASCII */
} api_error_t;

typedef struct api_params {
    bool has_tenant;                          /* false: the caller decides from the token */
    char tenant_id[ET_TENANT_ID_MAX + 1];     /* 1-64 bytes, valid UTF-8, no NUL */
    bool has_workflow;                        /* false: all workflows of the tenant */
    char workflow_id[ET_WORKFLOW_ID_MAX + 1]; /* 1-128 bytes, valid UTF-8, no NUL */
    int64_t start_us, end_us; /* effective range [start, end): start floored, end ceiled
                                 to whole minutes (UTC); start < end */
    uint8_t status_mask;      /* bit (1 << et_status_t); all four for "all" */
    char status_text[64];     /* echo: "all", or the canonical comma list in et_status
                                 order, e.g. "failed,timeout" */
    int percentile_count;     /* 1..API_PERCENTILES_MAX, in the order given */
    double percentiles[API_PERCENTILES_MAX];       /* as q in (0, 1]: value / 100 */
    char percentile_keys[API_PERCENTILES_MAX][24]; /* "p" + the number as given: "p99.9" */
    api_interval_t interval;                       /* API_INTERVAL_AUTO resolved by the caller */
    bool group_by_workflow;
    api_sort_t sort; /* default API_SORT_P95; accepted without group_by too */
    int limit;       /* 1..API_LIMIT_MAX, default API_LIMIT_DEFAULT */
    bool include_histogram;
    uint8_t measures; /* API_MEASURE_* bits; default API_MEASURE_RUN */
} api_params_t;

/**
 * Parses the raw query (the bytes after '?', not percent-decoded; may be empty, and
 * query may be NULL when len is 0) into *out, applying the defaults of DESIGN section 5.
 * now_us is the current time: the default end, and the limit for dates in the future.
 *
 * @return 0, or -EINVAL with *err filled (status 400, code "invalid_parameter").
 */
__attribute__((warn_unused_result)) int api_params_parse(const char *query, size_t len,
                                                         int64_t now_us, api_params_t *out,
                                                         api_error_t *err);

/* The regressions question: the statistics parameters it shares in base (group_by_workflow
 * set, the metric's percentile as the only one), and its own. */
typedef struct api_regression_params {
    api_params_t base;        /* tenant_id, start_date, end_date, status, limit */
    bool failure_rate;        /* metric=failure_rate; else a percentile */
    double quantile;          /* the percentile as q in (0, 1]; default 0.95 */
    char metric[24];          /* echo: "p95", "p99.9" or "failure_rate" */
    int64_t min_runs;         /* both periods need this many runs; default 50 */
    double threshold_percent; /* the least rise reported, in percent; default 20 */
} api_regression_params_t;

/**
 * Parses the query of the regressions endpoint into *out, as api_params_parse does:
 * tenant_id, start_date, end_date (the current period; the previous one is as long and
 * ends where it starts), status (percentile metrics only), metric (p<percentile> or
 * failure_rate), min_runs, threshold and limit.
 *
 * @return 0, or -EINVAL with *err filled (status 400, code "invalid_parameter").
 */
__attribute__((warn_unused_result)) int api_regression_params_parse(const char *query, size_t len,
                                                                    int64_t now_us,
                                                                    api_regression_params_t *out,
                                                                    api_error_t *err);

#endif
