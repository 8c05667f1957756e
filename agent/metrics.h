/*
 * metrics — a tiny Prometheus registry for the agent's one loop: counters, gauges,
 * fixed-bucket histograms, and families of each with 1..METRICS_MAX_LABELS labels,
 * rendered as text exposition format 0.0.4 for GET /metrics.
 *
 * Ownership: the registry is process-wide and owns every metric. Handles returned by
 * the constructors stay valid until metrics_reset(); name, help and label names are
 * copied. Registration happens at start-up and allocates; it aborts on out-of-memory
 * (as Redis's zmalloc does) so callers need no error path. Updates never allocate.
 * Registering a name again with the same kind (and label name or buckets) returns the
 * metric registered first, so modules may register independently; a different kind,
 * an invalid name or unsorted buckets is programmer misuse: it aborts with a message,
 * in release builds too.
 *
 * Families keep at most METRICS_MAX_LABEL_VALUES series, "other" included: once all
 * but one slot are taken, every new label set (and any set with a value of
 * METRICS_MAX_LABEL_VALUE_LEN bytes or more) is counted in the series whose every label
 * is "other". A series exists from its first update or touch (metrics_vec_touch) and is
 * rendered from then on, at zero until counted: touch every label set known in advance
 * at start-up so rate() and increase() see the first increment.
 *
 * Errors: metrics_render returns 0 or a negative errno code. Single-threaded: call only
 * from the loop thread; nothing here is atomic.
 */
#ifndef EXECTIME_METRICS_H
#define EXECTIME_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Series per family, "other" included: room beyond the 8 routes x 16 status codes of
 * exectime_http_requests_total that are all present from start-up. */
#define METRICS_MAX_LABEL_VALUES 160
#define METRICS_MAX_LABELS 4           /* label names per family */
#define METRICS_MAX_LABEL_VALUE_LEN 64 /* longer label values count as "other" */
#define METRICS_MAX_BUCKETS 32         /* finite histogram bounds; +Inf is implicit */
#define METRICS_RENDER_MAX (1024 * 1024)
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct metric_counter metric_counter_t;
typedef struct metric_gauge metric_gauge_t;
typedef struct metric_histogram metric_histogram_t;
typedef struct metric_family metric_family_t;

/** Registers (or finds) a counter; name matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
metric_counter_t *metrics_counter(const char *name, const char *help);
void metrics_counter_inc(metric_counter_t *c, uint64_t n);
uint64_t metrics_counter_value(const metric_counter_t *c);

/** Registers (or finds) a gauge. */
metric_gauge_t *metrics_gauge(const char *name, const char *help);
void metrics_gauge_set(metric_gauge_t *g, double value);
void metrics_gauge_add(metric_gauge_t *g, double delta);

/**
 * Registers (or finds) a counter that is kept elsewhere and copied in before rendering
 * (process_cpu_seconds_total from the kernel): set with metrics_gauge_set, rendered with
 * TYPE counter. The source must never go down.
 */
metric_gauge_t *metrics_counter_observed(const char *name, const char *help);

/**
 * Registers (or finds) a family with nlabels label names (copied), e.g.
 * metrics_counter_vec("exectime_http_requests_total", "...", 2,
 *                     (const char *[]){"handler", "code"}).
 * Label names match [a-zA-Z_][a-zA-Z0-9_]*, are distinct, not "le" nor "__"-prefixed.
 * A histogram family's bounds follow the rules of metrics_histogram.
 */
metric_family_t *metrics_counter_vec(const char *name, const char *help, size_t nlabels,
                                     const char *const *label_names);
metric_family_t *metrics_gauge_vec(const char *name, const char *help, size_t nlabels,
                                   const char *const *label_names);
metric_family_t *metrics_histogram_vec(const char *name, const char *help, size_t nlabels,
                                       const char *const *label_names, const double *bounds,
                                       size_t nbounds);
/* values: one per label name, in the family's order. */
void metrics_vec_inc(metric_family_t *f, const char *const *values, uint64_t n);
void metrics_vec_set(metric_family_t *f, const char *const *values, double value);
void metrics_vec_observe(metric_family_t *f, const char *const *values, double value);
/** Creates the series at zero, if absent, so it is rendered before its first update. */
void metrics_vec_touch(metric_family_t *f, const char *const *values);
/** A counter's total, a gauge's value or a histogram's count (0 when absent). */
double metrics_vec_value(const metric_family_t *f, const char *const *values);

/**
 * Registers (or finds) a counter family with one label, e.g.
 * metrics_counter_labels("exectime_dead_lettered_total", "...", "reason").
 */
metric_family_t *metrics_counter_labels(const char *name, const char *help, const char *label_name);
/** Registers (or finds) a gauge family with one label (e.g. lag per stream). */
metric_family_t *metrics_gauge_labels(const char *name, const char *help, const char *label_name);
/** Adds n to the series label_value of a counter family. */
void metrics_family_inc(metric_family_t *f, const char *label_value, uint64_t n);
/** Sets the series label_value of a gauge family. */
void metrics_family_set(metric_family_t *f, const char *label_value, double value);
/** Current value of a series (0 when absent); for tests and health output. */
double metrics_family_value(const metric_family_t *f, const char *label_value);

/**
 * Registers (or finds) a histogram.
 * @param bounds  finite upper bounds, strictly increasing, 1..METRICS_MAX_BUCKETS of
 *                them (copied); the +Inf bucket is added.
 */
metric_histogram_t *metrics_histogram(const char *name, const char *help, const double *bounds,
                                      size_t nbounds);
/** Counts value into the first bucket whose bound is >= value; NaN is ignored. */
void metrics_histogram_observe(metric_histogram_t *h, double value);

/**
 * Renders every metric, in registration order, as Prometheus text 0.0.4.
 * @param max_bytes  upper bound on the output (0 means METRICS_RENDER_MAX)
 * @param out        receives a malloc'd NUL-terminated text the caller frees
 * @param out_len    receives its length without the NUL
 * @return 0, -ENOMEM, or -E2BIG when the text would exceed max_bytes (*out is NULL
 *         on failure)
 */
__attribute__((warn_unused_result)) int metrics_render(size_t max_bytes, char **out,
                                                       size_t *out_len);

/** Frees every metric; handles obtained before become invalid. For tests and exit. */
void metrics_reset(void);

#endif
