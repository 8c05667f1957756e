/* Unit tests for agent/metrics: exact text exposition output. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(void)
{
    char *out = NULL;
    size_t len = 0;
    int rc = metrics_render(0, &out, &len);
    cr_assert_eq(rc, 0, "metrics_render: %d", rc);
    cr_assert_eq(strlen(out), len);
    return out;
}

static void teardown(void)
{
    metrics_reset();
}

TestSuite(metrics, .fini = teardown);

Test(metrics, render_counter_and_gauge_exactly)
{
    metric_counter_t *c = metrics_counter("exectime_events_consumed_total", "Events read.");
    metric_gauge_t *g = metrics_gauge("exectime_stream_lag", "Entries not yet read.");
    metrics_counter_inc(c, 2);
    metrics_counter_inc(c, 40);
    metrics_gauge_set(g, 1.5);
    metrics_gauge_add(g, -0.25);
    char *out = render();
    cr_assert_str_eq(out, "# HELP exectime_events_consumed_total Events read.\n"
                          "# TYPE exectime_events_consumed_total counter\n"
                          "exectime_events_consumed_total 42\n"
                          "# HELP exectime_stream_lag Entries not yet read.\n"
                          "# TYPE exectime_stream_lag gauge\n"
                          "exectime_stream_lag 1.25\n");
    free(out);
}

Test(metrics, empty_registry_renders_empty_text)
{
    char *out = render();
    cr_assert_str_eq(out, "");
    free(out);
}

Test(metrics, registering_twice_returns_same_metric)
{
    metric_counter_t *a = metrics_counter("x_total", "X.");
    metric_counter_t *b = metrics_counter("x_total", "X again.");
    cr_assert_eq(a, b);
    metrics_counter_inc(b, 1);
    cr_assert_eq(metrics_counter_value(a), 1);
    metric_family_t *f1 = metrics_counter_labels("y_total", "Y.", "code");
    metric_family_t *f2 = metrics_counter_labels("y_total", "Y.", "code");
    cr_assert_eq(f1, f2);
}

Test(metrics, labelled_counter_renders_series_in_first_seen_order)
{
    metric_family_t *f =
        metrics_counter_labels("exectime_http_requests_total", "HTTP requests by code.", "code");
    metrics_family_inc(f, "200", 3);
    metrics_family_inc(f, "404", 1);
    metrics_family_inc(f, "200", 2);
    char *out = render();
    cr_assert_str_eq(out, "# HELP exectime_http_requests_total HTTP requests by code.\n"
                          "# TYPE exectime_http_requests_total counter\n"
                          "exectime_http_requests_total{code=\"200\"} 5\n"
                          "exectime_http_requests_total{code=\"404\"} 1\n");
    cr_assert_eq(metrics_family_value(f, "200"), 5);
    cr_assert_eq(metrics_family_value(f, "500"), 0);
    free(out);
}

Test(metrics, labelled_gauge_sets_values)
{
    metric_family_t *f = metrics_gauge_labels("lag", "Lag per stream.", "stream");
    metrics_family_set(f, "events", 7);
    metrics_family_set(f, "events", 3);
    char *out = render();
    cr_assert_str_eq(out, "# HELP lag Lag per stream.\n"
                          "# TYPE lag gauge\n"
                          "lag{stream=\"events\"} 3\n");
    free(out);
}

Test(metrics, label_values_and_help_are_escaped)
{
    metric_family_t *f = metrics_counter_labels(
        "dead_total", "Dead letters\\by \"reason\".\nSecond line.", "reason");
    metrics_family_inc(f, "bad \"quote\" back\\slash\nnewline", 1);
    char *out = render();
    cr_assert_str_eq(out, "# HELP dead_total Dead letters\\\\by \"reason\".\\nSecond line.\n"
                          "# TYPE dead_total counter\n"
                          "dead_total{reason=\"bad \\\"quote\\\" back\\\\slash\\nnewline\"} 1\n");
    free(out);
}

Test(metrics, histogram_buckets_are_cumulative)
{
    static const double bounds[] = {0.0625, 0.1, 1, 2.5};
    metric_histogram_t *h = metrics_histogram("commit_seconds", "Commit time.", bounds, 4);
    metrics_histogram_observe(h, 0.03125); /* first bucket */
    metrics_histogram_observe(h, 0.0625);  /* boundary: le is inclusive */
    metrics_histogram_observe(h, 0.5);     /* le=1 */
    metrics_histogram_observe(h, 3);       /* only +Inf */
    metrics_histogram_observe(h, NAN);     /* ignored */
    char *out = render();
    cr_assert_str_eq(out, "# HELP commit_seconds Commit time.\n"
                          "# TYPE commit_seconds histogram\n"
                          "commit_seconds_bucket{le=\"0.0625\"} 2\n"
                          "commit_seconds_bucket{le=\"0.1\"} 2\n"
                          "commit_seconds_bucket{le=\"1\"} 3\n"
                          "commit_seconds_bucket{le=\"2.5\"} 3\n"
                          "commit_seconds_bucket{le=\"+Inf\"} 4\n"
                          "commit_seconds_sum 3.59375\n"
                          "commit_seconds_count 4\n");
    free(out);
}

Test(metrics, empty_histogram_renders_zero_buckets)
{
    static const double bounds[] = {10, 100};
    metrics_histogram("batch_size", "Events per batch.", bounds, 2);
    char *out = render();
    cr_assert_str_eq(out, "# HELP batch_size Events per batch.\n"
                          "# TYPE batch_size histogram\n"
                          "batch_size_bucket{le=\"10\"} 0\n"
                          "batch_size_bucket{le=\"100\"} 0\n"
                          "batch_size_bucket{le=\"+Inf\"} 0\n"
                          "batch_size_sum 0\n"
                          "batch_size_count 0\n");
    free(out);
}

Test(metrics, gauge_special_values)
{
    metric_gauge_t *g = metrics_gauge("g", "G.");
    metrics_gauge_set(g, INFINITY);
    char *out = render();
    cr_assert(strstr(out, "\ng +Inf\n") != NULL, "%s", out);
    free(out);
    metrics_gauge_set(g, -INFINITY);
    out = render();
    cr_assert(strstr(out, "\ng -Inf\n") != NULL, "%s", out);
    free(out);
    metrics_gauge_set(g, NAN);
    out = render();
    cr_assert(strstr(out, "\ng NaN\n") != NULL, "%s", out);
    free(out);
}

Test(metrics, label_cardinality_is_capped_with_other)
{
    metric_family_t *f = metrics_counter_labels("reasons_total", "Reasons.", "reason");
    char value[32];
    for (int i = 0; i < METRICS_MAX_LABEL_VALUES + 36; i++) {
        snprintf(value, sizeof value, "r%d", i);
        metrics_family_inc(f, value, 1);
    }
    /* A value too long to store also folds into "other". */
    char longv[METRICS_MAX_LABEL_VALUE_LEN + 10];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    metrics_family_inc(f, longv, 1);
    /* A value seen before the cap keeps counting on its own series. */
    metrics_family_inc(f, "r0", 5);

    char *out = render();
    int lines = 0;
    for (const char *p = out; (p = strstr(p, "reasons_total{")) != NULL; p++)
        lines++;
    cr_assert_eq(lines, METRICS_MAX_LABEL_VALUES, "%d series", lines);
    cr_assert(strstr(out, "reasons_total{reason=\"r0\"} 6\n") != NULL);
    char stored[64], folded[64];
    snprintf(stored, sizeof stored, "reasons_total{reason=\"r%d\"} 1\n",
             METRICS_MAX_LABEL_VALUES - 2);
    snprintf(folded, sizeof folded, "reason=\"r%d\"", METRICS_MAX_LABEL_VALUES - 1);
    cr_assert(strstr(out, stored) != NULL);
    cr_assert(strstr(out, folded) == NULL);
    /* the 37 values past the last stored one, and the long one */
    cr_assert(strstr(out, "reasons_total{reason=\"other\"} 38\n") != NULL, "%s", out);
    free(out);
}

Test(metrics, explicit_other_value_shares_the_overflow_series)
{
    metric_family_t *f = metrics_counter_labels("o_total", "O.", "kind");
    metrics_family_inc(f, "other", 2);
    char value[32];
    for (int i = 0; i < METRICS_MAX_LABEL_VALUES + 6; i++) {
        snprintf(value, sizeof value, "k%d", i);
        metrics_family_inc(f, value, 1);
    }
    /* "other" holds a slot, leaving MAX - 2 for k0.., the last 8 fold into "other". */
    char last[32], first_folded[32];
    snprintf(last, sizeof last, "k%d", METRICS_MAX_LABEL_VALUES - 3);
    snprintf(first_folded, sizeof first_folded, "k%d", METRICS_MAX_LABEL_VALUES - 2);
    cr_assert_eq(metrics_family_value(f, "other"), 2 + 8);
    cr_assert_eq(metrics_family_value(f, last), 1);
    cr_assert_eq(metrics_family_value(f, first_folded), 0);
}

Test(metrics, render_respects_upper_bound)
{
    metric_counter_t *c = metrics_counter("some_counter_total", "A help text of some length.");
    metrics_counter_inc(c, 1);
    char *out = (char *)1;
    size_t len = 99;
    int rc = metrics_render(16, &out, &len);
    cr_assert_eq(rc, -E2BIG);
    cr_assert_null(out);
    cr_assert_eq(len, 0);
}

Test(metrics, bucket_bounds_use_the_shortest_decimal)
{
    static const double bounds[] = {0.005, 0.25, 10, 1e6};
    metric_histogram_t *h = metrics_histogram("lat", "L.", bounds, 4);
    metrics_histogram_observe(h, 0.1);
    char *out = render();
    cr_assert(strstr(out, "lat_bucket{le=\"0.005\"} 0\n"
                          "lat_bucket{le=\"0.25\"} 1\n"
                          "lat_bucket{le=\"10\"} 1\n"
                          "lat_bucket{le=\"1000000\"} 1\n"
                          "lat_bucket{le=\"+Inf\"} 1\n"
                          "lat_sum 0.1\n") != NULL,
              "%s", out);
    free(out);
}

Test(metrics, registering_a_name_as_another_kind_aborts, .signal = SIGABRT)
{
    metrics_counter("dup", "D.");
    metrics_gauge("dup", "D.");
}

Test(metrics, invalid_metric_name_aborts, .signal = SIGABRT)
{
    metrics_counter("bad-name", "B.");
}

Test(metrics, two_label_counter_renders_labels_in_registration_order)
{
    static const char *const names[] = {"handler", "code"};
    metric_family_t *f = metrics_counter_vec("req_total", "Requests.", 2, names);
    metrics_vec_touch(f, (const char *[]){"/healthz", "200"});
    metrics_vec_inc(f, (const char *[]){"/metrics", "200"}, 2);
    metrics_vec_inc(f, (const char *[]){"/healthz", "200"}, 1);
    char *out = render();
    cr_assert_str_eq(out, "# HELP req_total Requests.\n"
                          "# TYPE req_total counter\n"
                          "req_total{handler=\"/healthz\",code=\"200\"} 1\n"
                          "req_total{handler=\"/metrics\",code=\"200\"} 2\n");
    cr_assert_eq(metrics_vec_value(f, (const char *[]){"/metrics", "200"}), 2);
    cr_assert_eq(metrics_vec_value(f, (const char *[]){"/metrics", "404"}), 0);
    free(out);
}

Test(metrics, touched_series_render_at_zero_before_any_update)
{
    static const char *const names[] = {"reason"};
    metric_family_t *f = metrics_counter_vec("dead_total", "Dead.", 1, names);
    metrics_vec_touch(f, (const char *[]){"invalid"});
    metrics_vec_touch(f, (const char *[]){"invalid"});
    char *out = render();
    cr_assert_str_eq(out, "# HELP dead_total Dead.\n"
                          "# TYPE dead_total counter\n"
                          "dead_total{reason=\"invalid\"} 0\n");
    free(out);
}

Test(metrics, labelled_histogram_renders_each_series_with_le_last)
{
    static const double bounds[] = {0.1, 1};
    static const char *const names[] = {"handler"};
    metric_family_t *f = metrics_histogram_vec("req_seconds", "Latency.", 1, names, bounds, 2);
    metrics_vec_touch(f, (const char *[]){"/readyz"});
    metrics_vec_observe(f, (const char *[]){"/api"}, 0.5);
    metrics_vec_observe(f, (const char *[]){"/api"}, 0.05);
    metrics_vec_observe(f, (const char *[]){"/api"}, NAN);
    char *out = render();
    cr_assert_str_eq(out, "# HELP req_seconds Latency.\n"
                          "# TYPE req_seconds histogram\n"
                          "req_seconds_bucket{handler=\"/readyz\",le=\"0.1\"} 0\n"
                          "req_seconds_bucket{handler=\"/readyz\",le=\"1\"} 0\n"
                          "req_seconds_bucket{handler=\"/readyz\",le=\"+Inf\"} 0\n"
                          "req_seconds_sum{handler=\"/readyz\"} 0\n"
                          "req_seconds_count{handler=\"/readyz\"} 0\n"
                          "req_seconds_bucket{handler=\"/api\",le=\"0.1\"} 1\n"
                          "req_seconds_bucket{handler=\"/api\",le=\"1\"} 2\n"
                          "req_seconds_bucket{handler=\"/api\",le=\"+Inf\"} 2\n"
                          "req_seconds_sum{handler=\"/api\"} 0.55\n"
                          "req_seconds_count{handler=\"/api\"} 2\n");
    cr_assert_eq(metrics_vec_value(f, (const char *[]){"/api"}), 2);
    free(out);
}

Test(metrics, two_label_overflow_goes_to_the_all_other_series)
{
    static const char *const names[] = {"a", "b"};
    metric_family_t *f = metrics_counter_vec("many_total", "Many.", 2, names);
    for (int i = 0; i < METRICS_MAX_LABEL_VALUES + 5; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", i);
        metrics_vec_inc(f, (const char *[]){v, "x"}, 1);
    }
    cr_assert_eq(metrics_vec_value(f, (const char *[]){"other", "other"}), 6);
    char *out = render();
    cr_assert_not_null(strstr(out, "many_total{a=\"other\",b=\"other\"} 6\n"));
    free(out);
}

Test(metrics, observed_counter_is_set_and_typed_counter)
{
    metric_gauge_t *c = metrics_counter_observed("process_cpu_seconds_total", "CPU.");
    metrics_gauge_set(c, 1.5);
    char *out = render();
    cr_assert_str_eq(out, "# HELP process_cpu_seconds_total CPU.\n"
                          "# TYPE process_cpu_seconds_total counter\n"
                          "process_cpu_seconds_total 1.5\n");
    free(out);
}

Test(metrics, same_family_with_other_label_names_aborts, .signal = SIGABRT)
{
    static const char *const ab[] = {"a", "b"};
    static const char *const ac[] = {"a", "c"};
    metrics_counter_vec("z_total", "Z.", 2, ab);
    metrics_counter_vec("z_total", "Z.", 2, ac);
}
