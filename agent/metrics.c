/* metrics — see metrics.h. */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
    KIND_COUNTER_FAMILY,
    KIND_GAUGE_FAMILY,
    KIND_HISTOGRAM_FAMILY,
    KIND_OBSERVED_COUNTER, /* a metric_gauge_t rendered as a counter */
} metric_kind_t;

/* Common head of every metric; always the first member so a metric_head_t * and the
 * concrete metric pointer are interchangeable. */
typedef struct metric_head {
    metric_kind_t kind;
    char *name;
    char *help;
    struct metric_head *next; /* registration order */
} metric_head_t;

struct metric_counter {
    metric_head_t head;
    uint64_t value;
};

struct metric_gauge {
    metric_head_t head;
    double value;
};

struct metric_histogram {
    metric_head_t head;
    size_t nbounds;
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t counts[METRICS_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last is +Inf */
    double sum;
    uint64_t count;
};

typedef struct family_series {
    char values[METRICS_MAX_LABELS][METRICS_MAX_LABEL_VALUE_LEN]; /* one per label name */
    double v;                                                     /* counter total or gauge value */
    double sum;        /* histogram families: sum of observations */
    uint64_t count;    /* histogram families: number of observations */
    uint64_t *buckets; /* histogram families: nbounds + 1 per-bucket counts (last +Inf),
                          a slice of the family's bucket_block */
} family_series_t;

struct metric_family {
    metric_head_t head;
    size_t nlabels;
    char *label_names[METRICS_MAX_LABELS];
    size_t nbounds; /* histogram families only */
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t *bucket_block; /* every series' buckets, allocated at registration */
    size_t nseries;
    family_series_t series[METRICS_MAX_LABEL_VALUES]; /* in order of first sight */
};

static metric_head_t *registry_head;
static metric_head_t *registry_tail;

/* Registration happens once at start-up; running out of memory there is fatal. */
static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fputs("metrics: out of memory while registering metrics\n", stderr);
        abort();
    }
    return p;
}

/*
 * Registration mistakes (bad names, kind clashes, unsorted buckets) are programmer
 * misuse; they are checked in release builds too, since a bad name would silently
 * break every scrape.
 */
static void require(bool ok, const char *what, const char *name)
{
    if (!ok) {
        fprintf(stderr, "metrics: %s: %s\n", what, name ? name : "(null)");
        abort();
    }
}

static char *xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = xcalloc(1, len);
    memcpy(p, s, len);
    return p;
}

static bool valid_name(const char *name, bool allow_colon)
{
    if (name == NULL || name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                  (allow_colon && ch == ':') || (p != name && ch >= '0' && ch <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static metric_head_t *registry_find(const char *name)
{
    for (metric_head_t *m = registry_head; m != NULL; m = m->next) {
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
}

/* Links a freshly allocated metric at the end so rendering follows registration order. */
static void registry_add(metric_head_t *m, metric_kind_t kind, const char *name, const char *help)
{
    m->kind = kind;
    m->name = xstrdup(name);
    m->help = xstrdup(help != NULL ? help : "");
    m->next = NULL;
    if (registry_tail != NULL)
        registry_tail->next = m;
    else
        registry_head = m;
    registry_tail = m;
}

metric_counter_t *metrics_counter(const char *name, const char *help)
{
    require(valid_name(name, true), "invalid metric name", name);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        require(m->kind == KIND_COUNTER, "registered with another kind", name);
        return (metric_counter_t *)m;
    }
    metric_counter_t *c = xcalloc(1, sizeof *c);
    registry_add(&c->head, KIND_COUNTER, name, help);
    return c;
}

void metrics_counter_inc(metric_counter_t *c, uint64_t n)
{
    c->value += n;
}

uint64_t metrics_counter_value(const metric_counter_t *c)
{
    return c->value;
}

metric_gauge_t *metrics_gauge(const char *name, const char *help)
{
    require(valid_name(name, true), "invalid metric name", name);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        require(m->kind == KIND_GAUGE, "registered with another kind", name);
        return (metric_gauge_t *)m;
    }
    metric_gauge_t *g = xcalloc(1, sizeof *g);
    registry_add(&g->head, KIND_GAUGE, name, help);
    return g;
}

void metrics_gauge_set(metric_gauge_t *g, double value)
{
    g->value = value;
}

void metrics_gauge_add(metric_gauge_t *g, double delta)
{
    g->value += delta;
}

metric_gauge_t *metrics_counter_observed(const char *name, const char *help)
{
    require(valid_name(name, true), "invalid metric name", name);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        require(m->kind == KIND_OBSERVED_COUNTER, "registered with another kind", name);
        return (metric_gauge_t *)m;
    }
    metric_gauge_t *g = xcalloc(1, sizeof *g);
    registry_add(&g->head, KIND_OBSERVED_COUNTER, name, help);
    return g;
}

static bool valid_label_name(const char *label_name)
{
    return valid_name(label_name, false) && strncmp(label_name, "__", 2) != 0 &&
           strcmp(label_name, "le") != 0;
}

static void check_buckets(const char *name, const double *bounds, size_t nbounds)
{
    require(nbounds >= 1 && nbounds <= METRICS_MAX_BUCKETS, "bad bucket count", name);
    for (size_t i = 0; i < nbounds; i++) {
        require(isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]),
                "buckets must be finite and strictly increasing", name);
    }
}

/* Finds or registers a family; a second registration must match the first exactly. */
static metric_family_t *family_register(metric_kind_t kind, const char *name, const char *help,
                                        size_t nlabels, const char *const *label_names,
                                        const double *bounds, size_t nbounds)
{
    require(valid_name(name, true), "invalid metric name", name);
    require(nlabels >= 1 && nlabels <= METRICS_MAX_LABELS, "bad label count", name);
    for (size_t i = 0; i < nlabels; i++) {
        require(valid_label_name(label_names[i]), "invalid label name", label_names[i]);
        for (size_t j = 0; j < i; j++)
            require(strcmp(label_names[i], label_names[j]) != 0, "label name twice", name);
    }
    if (kind == KIND_HISTOGRAM_FAMILY)
        check_buckets(name, bounds, nbounds);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        const metric_family_t *f = (const metric_family_t *)m;
        require(m->kind == kind && f->nlabels == nlabels, "registered with another kind", name);
        for (size_t i = 0; i < nlabels; i++)
            require(strcmp(f->label_names[i], label_names[i]) == 0,
                    "registered with another label name", name);
        require(f->nbounds == nbounds &&
                    (nbounds == 0 || memcmp(f->bounds, bounds, nbounds * sizeof *bounds) == 0),
                "registered with other buckets", name);
        return (metric_family_t *)m;
    }
    metric_family_t *f = xcalloc(1, sizeof *f);
    f->nlabels = nlabels;
    for (size_t i = 0; i < nlabels; i++)
        f->label_names[i] = xstrdup(label_names[i]);
    if (kind == KIND_HISTOGRAM_FAMILY) {
        f->nbounds = nbounds;
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->bucket_block = xcalloc(METRICS_MAX_LABEL_VALUES * (nbounds + 1), sizeof(uint64_t));
        for (size_t i = 0; i < METRICS_MAX_LABEL_VALUES; i++)
            f->series[i].buckets = f->bucket_block + i * (nbounds + 1);
    }
    registry_add(&f->head, kind, name, help);
    return f;
}

metric_family_t *metrics_counter_vec(const char *name, const char *help, size_t nlabels,
                                     const char *const *label_names)
{
    return family_register(KIND_COUNTER_FAMILY, name, help, nlabels, label_names, NULL, 0);
}

metric_family_t *metrics_gauge_vec(const char *name, const char *help, size_t nlabels,
                                   const char *const *label_names)
{
    return family_register(KIND_GAUGE_FAMILY, name, help, nlabels, label_names, NULL, 0);
}

metric_family_t *metrics_histogram_vec(const char *name, const char *help, size_t nlabels,
                                       const char *const *label_names, const double *bounds,
                                       size_t nbounds)
{
    return family_register(KIND_HISTOGRAM_FAMILY, name, help, nlabels, label_names, bounds,
                           nbounds);
}

metric_family_t *metrics_counter_labels(const char *name, const char *help, const char *label_name)
{
    return metrics_counter_vec(name, help, 1, &label_name);
}

metric_family_t *metrics_gauge_labels(const char *name, const char *help, const char *label_name)
{
    return metrics_gauge_vec(name, help, 1, &label_name);
}

static bool series_matches(const metric_family_t *f, const family_series_t *s,
                           const char *const *values)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    }
    return true;
}

static family_series_t *family_find(const metric_family_t *f, const char *const *values)
{
    for (size_t i = 0; i < f->nseries; i++) {
        if (series_matches(f, &f->series[i], values))
            return (family_series_t *)&f->series[i];
    }
    return NULL;
}

static family_series_t *family_add(metric_family_t *f, const char *const *values)
{
    family_series_t *s = &f->series[f->nseries++];
    for (size_t i = 0; i < f->nlabels; i++)
        snprintf(s->values[i], sizeof s->values[i], "%s", values[i]);
    return s; /* zeroed at registration, never reused */
}

/*
 * Finds or creates the series for values. The last free slot is kept for the series
 * whose every label is "other", so a flood of distinct values (a bug, or values derived
 * from input) cannot grow the output without bound.
 */
static family_series_t *family_series(metric_family_t *f, const char *const *values)
{
    static const char other[] = "other";
    const char *others[METRICS_MAX_LABELS];
    bool storable = true, is_other = true;
    for (size_t i = 0; i < f->nlabels; i++) {
        others[i] = other;
        storable = storable && values[i] != NULL && strlen(values[i]) < METRICS_MAX_LABEL_VALUE_LEN;
        is_other = is_other && values[i] != NULL && strcmp(values[i], other) == 0;
    }
    if (storable) {
        family_series_t *s = family_find(f, values);
        if (s != NULL)
            return s;
        if (f->nseries + 1 < METRICS_MAX_LABEL_VALUES ||
            (is_other && f->nseries < METRICS_MAX_LABEL_VALUES))
            return family_add(f, values);
    }
    family_series_t *s = family_find(f, others);
    if (s != NULL)
        return s;
    assert(f->nseries < METRICS_MAX_LABEL_VALUES);
    return family_add(f, others);
}

void metrics_vec_inc(metric_family_t *f, const char *const *values, uint64_t n)
{
    assert(f->head.kind == KIND_COUNTER_FAMILY);
    family_series(f, values)->v += (double)n;
}

void metrics_vec_set(metric_family_t *f, const char *const *values, double value)
{
    assert(f->head.kind == KIND_GAUGE_FAMILY);
    family_series(f, values)->v = value;
}

/* Counts value into the first bucket whose bound is >= value; NaN is ignored. */
static size_t bucket_index(const double *bounds, size_t nbounds, double value)
{
    size_t i = 0;
    while (i < nbounds && value > bounds[i])
        i++;
    return i;
}

void metrics_vec_observe(metric_family_t *f, const char *const *values, double value)
{
    assert(f->head.kind == KIND_HISTOGRAM_FAMILY);
    if (isnan(value))
        return;
    family_series_t *s = family_series(f, values);
    s->buckets[bucket_index(f->bounds, f->nbounds, value)]++;
    s->sum += value;
    s->count++;
}

void metrics_vec_touch(metric_family_t *f, const char *const *values)
{
    (void)family_series(f, values);
}

double metrics_vec_value(const metric_family_t *f, const char *const *values)
{
    const family_series_t *s = family_find(f, values);
    if (s == NULL)
        return 0;
    return f->head.kind == KIND_HISTOGRAM_FAMILY ? (double)s->count : s->v;
}

void metrics_family_inc(metric_family_t *f, const char *label_value, uint64_t n)
{
    metrics_vec_inc(f, &label_value, n);
}

void metrics_family_set(metric_family_t *f, const char *label_value, double value)
{
    metrics_vec_set(f, &label_value, value);
}

double metrics_family_value(const metric_family_t *f, const char *label_value)
{
    if (label_value == NULL)
        return 0;
    return metrics_vec_value(f, &label_value);
}

metric_histogram_t *metrics_histogram(const char *name, const char *help, const double *bounds,
                                      size_t nbounds)
{
    require(valid_name(name, true), "invalid metric name", name);
    check_buckets(name, bounds, nbounds);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        const metric_histogram_t *h = (const metric_histogram_t *)m;
        require(m->kind == KIND_HISTOGRAM && h->nbounds == nbounds &&
                    memcmp(h->bounds, bounds, nbounds * sizeof *bounds) == 0,
                "registered with another kind or buckets", name);
        return (metric_histogram_t *)m;
    }
    metric_histogram_t *h = xcalloc(1, sizeof *h);
    h->nbounds = nbounds;
    memcpy(h->bounds, bounds, nbounds * sizeof *bounds);
    registry_add(&h->head, KIND_HISTOGRAM, name, help);
    return h;
}

void metrics_histogram_observe(metric_histogram_t *h, double value)
{
    if (isnan(value))
        return;
    h->counts[bucket_index(h->bounds, h->nbounds, value)]++;
    h->sum += value;
    h->count++;
}

void metrics_reset(void)
{
    metric_head_t *m = registry_head;
    while (m != NULL) {
        metric_head_t *next = m->next;
        if (m->kind == KIND_COUNTER_FAMILY || m->kind == KIND_GAUGE_FAMILY ||
            m->kind == KIND_HISTOGRAM_FAMILY) {
            metric_family_t *f = (metric_family_t *)m;
            for (size_t i = 0; i < f->nlabels; i++)
                free(f->label_names[i]);
            free(f->bucket_block);
        }
        free(m->name);
        free(m->help);
        free(m);
        m = next;
    }
    registry_head = registry_tail = NULL;
}

/* ---- rendering ---- */

/* Growable output with a hard upper bound; the first failure sticks. */
typedef struct out_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int err; /* 0, -ENOMEM or -E2BIG */
} out_buf_t;

static void out_reserve(out_buf_t *o, size_t extra)
{
    if (o->err != 0)
        return;
    if (o->len + extra + 1 > o->max) {
        o->err = -E2BIG;
        return;
    }
    if (o->len + extra + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + extra + 1)
        cap *= 2;
    if (cap > o->max)
        cap = o->max;
    char *p = realloc(o->data, cap);
    if (p == NULL) {
        o->err = -ENOMEM;
        return;
    }
    o->data = p;
    o->cap = cap;
}

static void out_mem(out_buf_t *o, const char *s, size_t n)
{
    out_reserve(o, n);
    if (o->err != 0)
        return;
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void out_str(out_buf_t *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_char(out_buf_t *o, char ch)
{
    out_mem(o, &ch, 1);
}

/* Escapes for HELP text (\\ and \n) or, with quote set, label values (also \"). */
static void out_escaped(out_buf_t *o, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_str(o, "\\\\");
        else if (*s == '\n')
            out_str(o, "\\n");
        else if (quote && *s == '"')
            out_str(o, "\\\"");
        else
            out_char(o, *s);
    }
}

/*
 * Formats v the way Prometheus clients do: the shortest decimal that reads back as
 * the same double (so 0.005 stays "0.005", not 0.0050000000000000001), and
 * NaN/+Inf/-Inf spelled as the exposition format wants.
 */
static void format_double(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v); /* integers without an exponent: 10, not 1e+01 */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void out_double(out_buf_t *o, double v)
{
    char buf[40];
    format_double(buf, sizeof buf, v);
    out_str(o, buf);
}

static void out_u64(out_buf_t *o, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    out_str(o, buf);
}

static void render_preamble(out_buf_t *o, const metric_head_t *m, const char *type)
{
    out_str(o, "# HELP ");
    out_str(o, m->name);
    out_char(o, ' ');
    out_escaped(o, m->help, false);
    out_str(o, "\n# TYPE ");
    out_str(o, m->name);
    out_char(o, ' ');
    out_str(o, type);
    out_char(o, '\n');
}

/* Writes name="value",… of one series (no braces); le, when given, comes last. */
static void render_labels(out_buf_t *o, const metric_family_t *f, const family_series_t *s)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i > 0)
            out_char(o, ',');
        out_str(o, f->label_names[i]);
        out_str(o, "=\"");
        out_escaped(o, s->values[i], true);
        out_char(o, '"');
    }
}

static void render_family(out_buf_t *o, const metric_family_t *f)
{
    for (size_t i = 0; i < f->nseries; i++) {
        out_str(o, f->head.name);
        out_char(o, '{');
        render_labels(o, f, &f->series[i]);
        out_str(o, "} ");
        out_double(o, f->series[i].v);
        out_char(o, '\n');
    }
}

/* One line of a histogram family: name<suffix>{labels[,le="bound"]} value. */
static void render_series_line(out_buf_t *o, const metric_family_t *f, const family_series_t *s,
                               const char *suffix, const char *le)
{
    out_str(o, f->head.name);
    out_str(o, suffix);
    out_char(o, '{');
    render_labels(o, f, s);
    if (le != NULL) {
        out_str(o, ",le=\"");
        out_str(o, le);
        out_char(o, '"');
    }
    out_str(o, "} ");
}

static void render_histogram_family(out_buf_t *o, const metric_family_t *f)
{
    for (size_t i = 0; i < f->nseries; i++) {
        const family_series_t *s = &f->series[i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= f->nbounds; b++) {
            char le[40] = "+Inf";
            if (b < f->nbounds)
                format_double(le, sizeof le, f->bounds[b]);
            cumulative += s->buckets[b];
            render_series_line(o, f, s, "_bucket", le);
            out_u64(o, cumulative);
            out_char(o, '\n');
        }
        render_series_line(o, f, s, "_sum", NULL);
        out_double(o, s->sum);
        out_char(o, '\n');
        render_series_line(o, f, s, "_count", NULL);
        out_u64(o, s->count);
        out_char(o, '\n');
    }
}

/* Buckets are stored per bucket and rendered cumulatively, as Prometheus requires. */
static void render_histogram(out_buf_t *o, const metric_histogram_t *h)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += h->counts[i];
        out_str(o, h->head.name);
        out_str(o, "_bucket{le=\"");
        if (i < h->nbounds)
            out_double(o, h->bounds[i]);
        else
            out_str(o, "+Inf");
        out_str(o, "\"} ");
        out_u64(o, cumulative);
        out_char(o, '\n');
    }
    out_str(o, h->head.name);
    out_str(o, "_sum ");
    out_double(o, h->sum);
    out_char(o, '\n');
    out_str(o, h->head.name);
    out_str(o, "_count ");
    out_u64(o, h->count);
    out_char(o, '\n');
}

int metrics_render(size_t max_bytes, char **out, size_t *out_len)
{
    out_buf_t o = {.max = max_bytes ? max_bytes : METRICS_RENDER_MAX};
    *out = NULL;
    *out_len = 0;
    out_str(&o, "");
    for (const metric_head_t *m = registry_head; m != NULL && o.err == 0; m = m->next) {
        switch (m->kind) {
        case KIND_COUNTER:
            render_preamble(&o, m, "counter");
            out_str(&o, m->name);
            out_char(&o, ' ');
            out_u64(&o, ((const metric_counter_t *)m)->value);
            out_char(&o, '\n');
            break;
        case KIND_GAUGE:
        case KIND_OBSERVED_COUNTER:
            render_preamble(&o, m, m->kind == KIND_GAUGE ? "gauge" : "counter");
            out_str(&o, m->name);
            out_char(&o, ' ');
            out_double(&o, ((const metric_gauge_t *)m)->value);
            out_char(&o, '\n');
            break;
        case KIND_COUNTER_FAMILY:
            render_preamble(&o, m, "counter");
            render_family(&o, (const metric_family_t *)m);
            break;
        case KIND_GAUGE_FAMILY:
            render_preamble(&o, m, "gauge");
            render_family(&o, (const metric_family_t *)m);
            break;
        case KIND_HISTOGRAM:
            render_preamble(&o, m, "histogram");
            render_histogram(&o, (const metric_histogram_t *)m);
            break;
        case KIND_HISTOGRAM_FAMILY:
            render_preamble(&o, m, "histogram");
            render_histogram_family(&o, (const metric_family_t *)m);
            break;
        }
    }
    if (o.err != 0) {
        free(o.data);
        return o.err;
    }
    *out = o.data;
    *out_len = o.len;
    return 0;
}
