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
    char value[METRICS_MAX_LABEL_VALUE_LEN]; /* label value, NUL-terminated */
    double v;                                /* counter total or gauge value */
} family_series_t;

struct metric_family {
    metric_head_t head;
    char *label_name;
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
static void registry_add(metric_head_t *m, metric_kind_t kind, const char *name,
                         const char *help)
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

static metric_family_t *family_register(metric_kind_t kind, const char *name, const char *help,
                                        const char *label_name)
{
    require(valid_name(name, true), "invalid metric name", name);
    require(valid_name(label_name, false) && strncmp(label_name, "__", 2) != 0 &&
                strcmp(label_name, "le") != 0,
            "invalid label name", label_name);
    metric_head_t *m = registry_find(name);
    if (m != NULL) {
        require(m->kind == kind, "registered with another kind", name);
        require(strcmp(((metric_family_t *)m)->label_name, label_name) == 0,
                "registered with another label name", name);
        return (metric_family_t *)m;
    }
    metric_family_t *f = xcalloc(1, sizeof *f);
    f->label_name = xstrdup(label_name);
    registry_add(&f->head, kind, name, help);
    return f;
}

metric_family_t *metrics_counter_labels(const char *name, const char *help,
                                        const char *label_name)
{
    return family_register(KIND_COUNTER_FAMILY, name, help, label_name);
}

metric_family_t *metrics_gauge_labels(const char *name, const char *help,
                                      const char *label_name)
{
    return family_register(KIND_GAUGE_FAMILY, name, help, label_name);
}

static family_series_t *family_find(const metric_family_t *f, const char *value)
{
    for (size_t i = 0; i < f->nseries; i++) {
        if (strcmp(f->series[i].value, value) == 0)
            return (family_series_t *)&f->series[i];
    }
    return NULL;
}

static family_series_t *family_add(metric_family_t *f, const char *value)
{
    family_series_t *s = &f->series[f->nseries++];
    snprintf(s->value, sizeof s->value, "%s", value);
    s->v = 0;
    return s;
}

/*
 * Finds or creates the series for value. The last free slot is kept for "other" so
 * a flood of distinct values (a bug, or values derived from input) cannot grow the
 * output without bound.
 */
static family_series_t *family_series(metric_family_t *f, const char *value)
{
    static const char other[] = "other";
    bool storable = value != NULL && strlen(value) < METRICS_MAX_LABEL_VALUE_LEN;
    if (storable) {
        family_series_t *s = family_find(f, value);
        if (s != NULL)
            return s;
        bool is_other = strcmp(value, other) == 0;
        if (f->nseries + 1 < METRICS_MAX_LABEL_VALUES ||
            (is_other && f->nseries < METRICS_MAX_LABEL_VALUES))
            return family_add(f, value);
    }
    family_series_t *s = family_find(f, other);
    if (s != NULL)
        return s;
    assert(f->nseries < METRICS_MAX_LABEL_VALUES);
    return family_add(f, other);
}

void metrics_family_inc(metric_family_t *f, const char *label_value, uint64_t n)
{
    assert(f->head.kind == KIND_COUNTER_FAMILY);
    family_series(f, label_value)->v += (double)n;
}

void metrics_family_set(metric_family_t *f, const char *label_value, double value)
{
    assert(f->head.kind == KIND_GAUGE_FAMILY);
    family_series(f, label_value)->v = value;
}

double metrics_family_value(const metric_family_t *f, const char *label_value)
{
    const family_series_t *s = family_find(f, label_value);
    return s != NULL ? s->v : 0;
}

metric_histogram_t *metrics_histogram(const char *name, const char *help, const double *bounds,
                                      size_t nbounds)
{
    require(valid_name(name, true), "invalid metric name", name);
    require(nbounds >= 1 && nbounds <= METRICS_MAX_BUCKETS, "bad bucket count", name);
    for (size_t i = 0; i < nbounds; i++) {
        require(isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]),
                "buckets must be finite and strictly increasing", name);
    }
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
    size_t i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

void metrics_reset(void)
{
    metric_head_t *m = registry_head;
    while (m != NULL) {
        metric_head_t *next = m->next;
        if (m->kind == KIND_COUNTER_FAMILY || m->kind == KIND_GAUGE_FAMILY)
            free(((metric_family_t *)m)->label_name);
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

static void render_family(out_buf_t *o, const metric_family_t *f)
{
    for (size_t i = 0; i < f->nseries; i++) {
        out_str(o, f->head.name);
        out_char(o, '{');
        out_str(o, f->label_name);
        out_str(o, "=\"");
        out_escaped(o, f->series[i].value, true);
        out_str(o, "\"} ");
        out_double(o, f->series[i].v);
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
            render_preamble(&o, m, "gauge");
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
