/* oracle — see oracle.h. */
#include "oracle.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emitter.h"
#include "et_rng.h"
#include "harness.h"
#include "sketch.h"
#include "timeutil.h"

#define MISMATCH_REPORT_MAX 10

/* --- events ------------------------------------------------------------------------------ */

uint64_t it_rng_next(it_rng_t *r)
{
    return et_splitmix64(&r->state);
}

uint64_t it_rng_below(it_rng_t *r, uint64_t n)
{
    return n ? it_rng_next(r) % n : 0;
}

double it_rng_unit(it_rng_t *r)
{
    return (double)(it_rng_next(r) >> 11) * 0x1.0p-53;
}

static int64_t gen_duration(it_rng_t *r)
{
    uint64_t pick = it_rng_below(r, 100);
    if (pick < 2)
        return 0;
    if (pick < 4)
        return 1;
    if (pick < 5)
        return it_rng_below(r, 2) ? ET_DURATION_MAX_US
                                  : ET_DURATION_MAX_US - (int64_t)it_rng_below(r, 86400000000LL);
    /* Lognormal around 800 ms with a heavy tail (Box-Muller). */
    double u1 = it_rng_unit(r), u2 = it_rng_unit(r);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
    double d = exp(log(800000.0) + 1.6 * z);
    if (d > (double)ET_DURATION_MAX_US)
        d = (double)ET_DURATION_MAX_US;
    return (int64_t)d;
}

static int64_t gen_finished(it_rng_t *r, int64_t now, int64_t spread)
{
    int64_t t = now - (int64_t)it_rng_below(r, (uint64_t)spread);
    uint64_t pick = it_rng_below(r, 100);
    if (pick < 5)
        return et_time_floor(t, ET_RES_MINUTE);
    if (pick < 8)
        return et_time_floor(t, ET_RES_HOUR);
    if (pick < 10)
        return et_time_floor(t, ET_RES_DAY);
    if (pick < 12)
        return et_time_floor(t, ET_RES_HOUR) - 1; /* the last µs of the previous bucket */
    return t;
}

/* A queue wait: none, 0, lognormal around 2 s, or up to a day. */
static void gen_queue_wait(it_rng_t *q, et_event_t *e)
{
    uint64_t pick = it_rng_below(q, 100);
    if (pick < 60)
        return; /* most events carry no enqueued_at */
    int64_t wait;
    if (pick < 63) {
        wait = 0;
    } else if (pick < 65) {
        wait = (int64_t)it_rng_below(q, (uint64_t)ET_US_PER_DAY);
    } else {
        double u1 = it_rng_unit(q), u2 = it_rng_unit(q);
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
        wait = (int64_t)exp(log(2000000.0) + 1.2 * z);
    }
    int64_t start = e->has_started ? e->started_us : e->finished_us - e->duration_us;
    e->has_enqueued = true;
    e->enqueued_us = start - wait;
    e->queue_wait_us = wait;
}

void it_gen_events(et_event_t *out, size_t n, const it_gen_t *gen)
{
    it_rng_t r = {gen->seed};
    /* Queue waits from a stream of their own: the other fields stay what they were. */
    it_rng_t q = {gen->seed ^ 0x71756575ULL};
    int64_t now = et_now_us();
    for (size_t i = 0; i < n; i++) {
        et_event_t *e = &out[i];
        memset(e, 0, sizeof *e);
        int tenant = (int)it_rng_below(&r, (uint64_t)gen->tenants) + 1;
        snprintf(e->tenant_id, sizeof e->tenant_id, "t%d", tenant);
        int wf = (int)it_rng_below(&r, (uint64_t)gen->workflows);
        if (wf == gen->workflows - 1)
            snprintf(e->workflow_id, sizeof e->workflow_id, "9001");
        else
            snprintf(e->workflow_id, sizeof e->workflow_id, "wf-%d", wf + 1);
        snprintf(e->run_id, sizeof e->run_id, "%s%zu", gen->run_prefix, i);
        uint64_t s = it_rng_below(&r, 100);
        e->status = s < 70   ? ET_STATUS_SUCCESS
                    : s < 85 ? ET_STATUS_FAILED
                    : s < 93 ? ET_STATUS_CANCELLED
                             : ET_STATUS_TIMEOUT;
        e->finished_us = gen_finished(&r, now, gen->spread_us);
        e->duration_us = gen_duration(&r);
        if (it_rng_below(&r, 5) == 0) {
            e->has_started = true;
            e->started_us = e->finished_us - e->duration_us;
        }
        gen_queue_wait(&q, e);
    }
}

/* enqueued_at from the event's queue wait and its start as they are now: tests move
 * finished_at or change durations after generating, and the wait is what they check. */
static int64_t enqueued_at(const et_event_t *e)
{
    int64_t start = e->has_started ? e->started_us : e->finished_us - e->duration_us;
    return start - e->queue_wait_us;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* A decimal without leading zeros reads back as the same text. */
static bool plain_number(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 18 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static void pack_id(msgpack_packer *pk, const char *s, unsigned flags)
{
    if ((flags & IT_ENC_INT_IDS) && plain_number(s))
        msgpack_pack_uint64(pk, strtoull(s, NULL, 10));
    else
        pack_str(pk, s);
}

static void pack_event(msgpack_packer *pk, const et_event_t *e, unsigned flags)
{
    msgpack_pack_map(pk, 7 + (e->has_started ? 1 : 0) + (e->has_enqueued ? 1 : 0));
    pack_str(pk, "v");
    msgpack_pack_uint8(pk, 1);
    pack_str(pk, "tenant_id");
    pack_str(pk, e->tenant_id);
    pack_str(pk, "workflow_id");
    pack_id(pk, e->workflow_id, flags);
    pack_str(pk, "run_id");
    pack_id(pk, e->run_id, flags);
    pack_str(pk, "status");
    const char *status = et_status_name(e->status);
    if (flags & IT_ENC_ALIASES) {
        if (e->status == ET_STATUS_SUCCESS)
            status = "succeeded";
        else if (e->status == ET_STATUS_CANCELLED)
            status = "canceled";
    }
    pack_str(pk, status);
    pack_str(pk, "finished_at");
    msgpack_pack_int64(pk, e->finished_us);
    if (e->has_started) {
        pack_str(pk, "started_at");
        msgpack_pack_int64(pk, e->started_us);
    }
    pack_str(pk, "duration_us");
    msgpack_pack_uint64(pk, (uint64_t)e->duration_us);
    if (e->has_enqueued) {
        pack_str(pk, "enqueued_at");
        msgpack_pack_int64(pk, enqueued_at(e));
    }
}

void it_encode(const et_event_t *ev, size_t n, unsigned flags, char **out, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (n > 1 || (flags & IT_ENC_ARRAY))
        msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        pack_event(&pk, &ev[i], flags);
    *out = malloc(sb.size);
    cr_assert(*out != NULL);
    memcpy(*out, sb.data, sb.size);
    *len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

size_t it_publish(const et_event_t *ev, size_t n, int max_per_entry, uint64_t seed)
{
    char err[512];
    et_emitter_t *emitter = it_emitter();
    it_rng_t r = {seed};
    size_t entries = 0;
    for (size_t i = 0; i < n; entries++) {
        size_t k = 1;
        if (max_per_entry > 1 && it_rng_below(&r, 2))
            k = 1 + it_rng_below(&r, (uint64_t)max_per_entry);
        if (k > n - i)
            k = n - i;
        if (it_rng_below(&r, 2)) {
            et_event_t *copy = malloc(k * sizeof *copy);
            cr_assert(copy != NULL);
            memcpy(copy, ev + i, k * sizeof *copy);
            for (size_t c = 0; c < k; c++)
                copy[c].enqueued_us = enqueued_at(&copy[c]);
            int rc = et_emitter_send(emitter, copy, k, err, sizeof err);
            free(copy);
            cr_assert(rc == 0, "et_emitter_send: %s", err);
        } else {
            char *buf;
            size_t len;
            it_encode(ev + i, k,
                      IT_ENC_ALIASES | IT_ENC_INT_IDS |
                          (it_rng_below(&r, 3) == 0 ? IT_ENC_ARRAY : 0),
                      &buf, &len);
            int rc = et_emitter_send_raw(emitter, buf, len, err, sizeof err);
            free(buf);
            cr_assert(rc == 0, "et_emitter_send_raw: %s", err);
        }
        i += k;
    }
    return entries;
}

/* --- the oracle ------------------------------------------------------------------------ */

static const char *const rollup_tables[ET_RES_COUNT] = {"rollup_minute", "rollup_hour",
                                                        "rollup_day"};

/* One event's contribution to one rollup row. */
typedef struct obs {
    const char *tenant;
    const char *workflow; /* "" for the tenant-wide row */
    int64_t bucket;
    int status;
    uint32_t slot;
    int64_t duration;
    int64_t queue_wait; /* -1: none */
} obs_t;

typedef struct row_key {
    const char *tenant;
    const char *workflow;
    int64_t bucket;
    int status;
} row_key_t;

static int key_cmp(const row_key_t *a, const row_key_t *b)
{
    int c = strcmp(a->tenant, b->tenant);
    if (c)
        return c;
    c = strcmp(a->workflow, b->workflow);
    if (c)
        return c;
    if (a->bucket != b->bucket)
        return a->bucket < b->bucket ? -1 : 1;
    return (a->status > b->status) - (a->status < b->status);
}

static int obs_cmp(const void *pa, const void *pb)
{
    const obs_t *a = pa, *b = pb;
    row_key_t ka = {a->tenant, a->workflow, a->bucket, a->status};
    row_key_t kb = {b->tenant, b->workflow, b->bucket, b->status};
    int c = key_cmp(&ka, &kb);
    if (c)
        return c;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* Appends to a growing string. */
typedef struct text {
    char *s;
    size_t len, cap;
} text_t;

static void text_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap ? t->cap * 2 : 256) + (size_t)n;
        t->s = realloc(t->s, t->cap);
        cr_assert(t->s != NULL);
        if (t->len == 0)
            t->s[0] = '\0';
    }
}

/* Compares one resolution's rows with the rows computed from the events. */
static void check_resolution(const et_event_t *ev, size_t n, et_resolution_t res)
{
    obs_t *obs = calloc(2 * n + 1, sizeof *obs);
    cr_assert(obs != NULL);
    for (size_t i = 0; i < n; i++) {
        for (int wide = 0; wide < 2; wide++) {
            obs_t *o = &obs[2 * i + (size_t)wide];
            o->tenant = ev[i].tenant_id;
            o->workflow = wide ? "" : ev[i].workflow_id;
            /* Buckets by hand: floor division of µs, independent of timeutil. */
            int64_t width = res == ET_RES_MINUTE ? 60000000LL
                            : res == ET_RES_HOUR ? 3600000000LL
                                                 : 86400000000LL;
            o->bucket = ev[i].finished_us - ((ev[i].finished_us % width) + width) % width;
            o->status = (int)ev[i].status;
            o->slot = et_sketch_slot((uint64_t)ev[i].duration_us);
            o->duration = ev[i].duration_us;
            o->queue_wait = ev[i].has_enqueued ? ev[i].queue_wait_us : -1;
        }
    }
    qsort(obs, 2 * n, sizeof *obs, obs_cmp);

    PGresult *r = it_sql("SELECT tenant_id, workflow_id,"
                         " (extract(epoch FROM bucket) * 1000000)::bigint, status, runs, sum_us,"
                         " min_us, max_us, hist::text, queue_runs, queue_sum_us, queue_min_us,"
                         " queue_max_us, queue_hist::text FROM exectime.%s"
                         " ORDER BY tenant_id, workflow_id, bucket, status",
                         rollup_tables[res]);
    int rows = PQntuples(r), row = 0;
    size_t i = 0, expected_rows = 0, mismatches = 0;
    text_t report = {0};
    while (i < 2 * n || row < rows) {
        row_key_t want = {0}, have = {0};
        size_t j = i;
        if (i < 2 * n) {
            want = (row_key_t){obs[i].tenant, obs[i].workflow, obs[i].bucket, obs[i].status};
            for (j = i + 1; j < 2 * n; j++) {
                row_key_t k = {obs[j].tenant, obs[j].workflow, obs[j].bucket, obs[j].status};
                if (key_cmp(&k, &want) != 0)
                    break;
            }
        }
        if (row < rows)
            have =
                (row_key_t){PQgetvalue(r, row, 0), PQgetvalue(r, row, 1),
                            strtoll(PQgetvalue(r, row, 2), NULL, 10), atoi(PQgetvalue(r, row, 3))};
        int c = i >= 2 * n ? 1 : row >= rows ? -1 : key_cmp(&want, &have);
        if (c < 0) {
            if (++mismatches <= MISMATCH_REPORT_MAX)
                text_add(&report, "  MISSING %s|%s|%" PRId64 "|%d (%zu runs)\n", want.tenant,
                         want.workflow, want.bucket, want.status, j - i);
            expected_rows++;
            i = j;
            continue;
        }
        if (c > 0) {
            if (++mismatches <= MISMATCH_REPORT_MAX)
                text_add(&report, "  EXTRA %s|%s|%" PRId64 "|%d runs=%s\n", have.tenant,
                         have.workflow, have.bucket, have.status, PQgetvalue(r, row, 4));
            row++;
            continue;
        }
        /* Same key: the stored values must be exactly the computed ones. */
        text_t want_vals = {0};
        int64_t sum = 0, min = INT64_MAX, max = INT64_MIN;
        for (size_t k = i; k < j; k++) {
            sum += obs[k].duration;
            min = obs[k].duration < min ? obs[k].duration : min;
            max = obs[k].duration > max ? obs[k].duration : max;
        }
        text_add(&want_vals, "%zu|%" PRId64 "|%" PRId64 "|%" PRId64 "|\\x", j - i, sum, min, max);
        et_hist_t bins;
        et_hist_init(&bins);
        for (size_t k = i; k < j; k++)
            cr_assert(et_hist_add(&bins, obs[k].slot, 1) == 0);
        static uint8_t encoded[ET_HIST_ENCODED_MAX];
        long len = et_hist_encode(&bins, encoded, sizeof encoded);
        cr_assert(len >= 0);
        for (long k = 0; k < len; k++)
            text_add(&want_vals, "%02x", encoded[k]);
        et_hist_reset(&bins);
        /* The queue-wait sketch: only the events with enqueued_at. */
        int64_t qruns = 0, qsum = 0, qmin = INT64_MAX, qmax = INT64_MIN;
        for (size_t k = i; k < j; k++) {
            int64_t w = obs[k].queue_wait;
            if (w < 0)
                continue;
            qruns++;
            qsum += w;
            qmin = w < qmin ? w : qmin;
            qmax = w > qmax ? w : qmax;
            cr_assert(et_hist_add(&bins, et_sketch_slot((uint64_t)w), 1) == 0);
        }
        text_add(&want_vals, "|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64 "|\\x", qruns, qsum,
                 qruns ? qmin : 0, qruns ? qmax : 0);
        len = et_hist_encode(&bins, encoded, sizeof encoded);
        cr_assert(len >= 0);
        for (long k = 0; k < len; k++)
            text_add(&want_vals, "%02x", encoded[k]);
        et_hist_free(&bins);
        char have_vals[32768];
        snprintf(have_vals, sizeof have_vals, "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s",
                 PQgetvalue(r, row, 4), PQgetvalue(r, row, 5), PQgetvalue(r, row, 6),
                 PQgetvalue(r, row, 7), PQgetvalue(r, row, 8), PQgetvalue(r, row, 9),
                 PQgetvalue(r, row, 10), PQgetvalue(r, row, 11), PQgetvalue(r, row, 12),
                 PQgetvalue(r, row, 13));
        if (strcmp(want_vals.s, have_vals) != 0 && ++mismatches <= MISMATCH_REPORT_MAX)
            text_add(&report,
                     "  DIFF %s|%s|%" PRId64 "|%d\n    computed runs|sum|min|max|hist %s\n"
                     "    stored                      %s\n",
                     want.tenant, want.workflow, want.bucket, want.status, want_vals.s, have_vals);
        free(want_vals.s);
        expected_rows++;
        i = j;
        row++;
    }
    PQclear(r);
    free(obs);
    cr_assert(mismatches == 0,
              "%s: %zu rollup rows differ from the computation over the %zu published events "
              "(%zu rows expected, %d stored); first ones:\n%s",
              rollup_tables[res], mismatches, n, expected_rows, rows, report.s);
    free(report.s);
}

static int event_key_cmp(const void *pa, const void *pb)
{
    const et_event_t *a = pa, *b = pb;
    int c = strcmp(a->tenant_id, b->tenant_id);
    if (c)
        return c;
    c = strcmp(a->run_id, b->run_id);
    if (c)
        return c;
    return (a->finished_us > b->finished_us) - (a->finished_us < b->finished_us);
}

/* Every raw row equals its event, field by field. */
static void check_raw_rows(const et_event_t *events, size_t n)
{
    et_event_t *ev = malloc((n ? n : 1) * sizeof *ev);
    cr_assert(ev != NULL);
    memcpy(ev, events, n * sizeof *ev);
    qsort(ev, n, sizeof *ev, event_key_cmp);
    PGresult *r = it_sql(
        "SELECT tenant_id || '|' || run_id || '|' ||"
        " (extract(epoch FROM finished_at) * 1000000)::bigint || '|' || workflow_id || '|' ||"
        " status || '|' || duration_us || '|' ||"
        " coalesce((extract(epoch FROM started_at) * 1000000)::bigint::text, '-') || '|' ||"
        " execution_time_ms || '|' || coalesce(queue_wait_us::text, '-')"
        " FROM exectime.execution_time_statistics"
        " ORDER BY tenant_id, run_id, finished_at");
    cr_assert(PQntuples(r) == (int)n, "raw table holds %d rows, %zu events were published",
              PQntuples(r), n);
    size_t bad = 0;
    text_t report = {0};
    for (size_t i = 0; i < n; i++) {
        const et_event_t *e = &ev[i];
        char want[1024], started[32] = "-", queued[32] = "-";
        if (e->has_started)
            snprintf(started, sizeof started, "%" PRId64, e->started_us);
        if (e->has_enqueued)
            snprintf(queued, sizeof queued, "%" PRId64, e->queue_wait_us);
        int64_t ms = e->duration_us / 1000 > 2147483647 ? 2147483647 : e->duration_us / 1000;
        snprintf(want, sizeof want, "%s|%s|%" PRId64 "|%s|%s|%" PRId64 "|%s|%" PRId64 "|%s",
                 e->tenant_id, e->run_id, e->finished_us, e->workflow_id, et_status_name(e->status),
                 e->duration_us, started, ms, queued);
        const char *have = PQgetvalue(r, (int)i, 0);
        if (strcmp(want, have) != 0 && ++bad <= MISMATCH_REPORT_MAX)
            text_add(&report, "  want %s\n  have %s\n", want, have);
    }
    PQclear(r);
    free(ev);
    cr_assert(bad == 0, "%zu raw rows differ from their events:\n%s", bad, report.s);
    free(report.s);
}

void it_check_rollups_match(const et_event_t *ev, size_t n)
{
    check_raw_rows(ev, n);
    for (int res = 0; res < ET_RES_COUNT; res++)
        check_resolution(ev, n, (et_resolution_t)res);
}

void it_check_rollups_match_raw_sql(void)
{
    static const char *const units[ET_RES_COUNT] = {"minute", "hour", "day"};
    for (int res = 0; res < ET_RES_COUNT; res++) {
        long long bad = it_sql_int(
            "WITH raw AS ("
            " SELECT tenant_id, workflow_id, date_trunc('%s', finished_at, 'UTC') AS bucket,"
            "  (CASE status WHEN 'success' THEN 0 WHEN 'failed' THEN 1"
            "   WHEN 'cancelled' THEN 2 WHEN 'timeout' THEN 3 END)::smallint AS status,"
            "  duration_us, queue_wait_us FROM exectime.execution_time_statistics),"
            " agg AS ("
            " SELECT tenant_id, coalesce(workflow_id, '') AS workflow_id, bucket, status,"
            "  count(*) AS runs, sum(duration_us) AS sum_us, min(duration_us) AS min_us,"
            "  max(duration_us) AS max_us, count(queue_wait_us) AS queue_runs,"
            "  coalesce(sum(queue_wait_us), 0) AS queue_sum_us,"
            "  coalesce(min(queue_wait_us), 0) AS queue_min_us,"
            "  coalesce(max(queue_wait_us), 0) AS queue_max_us FROM raw"
            "  GROUP BY GROUPING SETS ((tenant_id, workflow_id, bucket, status),"
            "                         (tenant_id, bucket, status)))"
            " SELECT count(*) FROM agg a FULL JOIN exectime.%s r"
            "  ON r.tenant_id = a.tenant_id AND r.workflow_id = a.workflow_id"
            "  AND r.bucket = a.bucket AND r.status = a.status"
            " WHERE a.runs IS DISTINCT FROM r.runs OR a.sum_us IS DISTINCT FROM r.sum_us"
            "  OR a.min_us IS DISTINCT FROM r.min_us OR a.max_us IS DISTINCT FROM r.max_us"
            "  OR a.queue_runs IS DISTINCT FROM r.queue_runs"
            "  OR a.queue_sum_us IS DISTINCT FROM r.queue_sum_us"
            "  OR a.queue_min_us IS DISTINCT FROM r.queue_min_us"
            "  OR a.queue_max_us IS DISTINCT FROM r.queue_max_us",
            units[res], rollup_tables[res]);
        cr_assert(bad == 0, "%s: %lld rows differ from SQL aggregates over the raw table",
                  rollup_tables[res], bad);
        long long bins_off =
            it_sql_int("SELECT count(*) FROM exectime.%s r"
                       " WHERE (SELECT sum(count) FROM exectime.hist_bins(r.hist)) <> r.runs",
                       rollup_tables[res]);
        cr_assert(bins_off == 0, "%s: %lld rows whose histogram does not add up to runs",
                  rollup_tables[res], bins_off);
        long long queue_bins_off = it_sql_int(
            "SELECT count(*) FROM exectime.%s r"
            " WHERE coalesce((SELECT sum(count) FROM exectime.hist_bins(r.queue_hist)), 0)"
            " <> r.queue_runs",
            rollup_tables[res]);
        cr_assert(queue_bins_off == 0,
                  "%s: %lld rows whose queue-wait histogram does not add up to queue_runs",
                  rollup_tables[res], queue_bins_off);
    }
}

void it_check_totals(const et_event_t *ev, size_t n)
{
    long long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ev[i].duration_us;
    long long raw = it_raw_count();
    cr_assert(raw == (long long)n, "raw table holds %lld rows, expected %zu", raw, n);
    long long raw_sum = it_sql_int("SELECT coalesce(sum(duration_us), 0)"
                                   " FROM exectime.execution_time_statistics");
    cr_assert(raw_sum == sum, "raw durations sum to %lld, expected %lld", raw_sum, sum);
    for (int res = 0; res < ET_RES_COUNT; res++) {
        for (int wide = 0; wide < 2; wide++) {
            const char *cond = wide ? "workflow_id = ''" : "workflow_id <> ''";
            long long runs = it_sql_int("SELECT coalesce(sum(runs), 0) FROM exectime.%s WHERE %s",
                                        rollup_tables[res], cond);
            long long s = it_sql_int("SELECT coalesce(sum(sum_us), 0) FROM exectime.%s WHERE %s",
                                     rollup_tables[res], cond);
            cr_assert(runs == (long long)n && s == sum,
                      "%s (%s): runs %lld sum %lld, expected runs %zu sum %lld", rollup_tables[res],
                      wide ? "tenant-wide" : "per workflow", runs, s, n, sum);
        }
    }
}
