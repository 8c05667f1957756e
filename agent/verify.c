/* verify — see verify.h. */
#include "verify.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "copy_text.h"
#include "day_cache.h"
#include "rollup_delta.h"
#include "timeutil.h"

static const char *const rollup_tables[ET_RES_COUNT] = {"rollup_minute", "rollup_hour",
                                                        "rollup_day"};

typedef struct verify_run_state {
    FILE *out;
    int max_report;
    uint64_t checked;
    uint64_t differences;
} verify_state_t;

static void report(verify_state_t *st, const char *what, et_resolution_t res, const char *tenant,
                   const char *workflow, int64_t bucket, int status, const char *detail)
{
    st->differences++;
    if (st->differences > (uint64_t)st->max_report)
        return;
    char when[40];
    if (et_time_format(bucket, when, sizeof when) < 0)
        snprintf(when, sizeof when, "%" PRId64, bucket);
    fprintf(st->out, "%s %s tenant=%s workflow=%s bucket=%s status=%s: %s\n", what,
            et_resolution_name(res), tenant, workflow[0] ? workflow : "(all)", when,
            et_status_name((et_status_t)status), detail);
}

static void print_pg_error(const char *what, PGconn *pg, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    fprintf(stderr, "exectime-agent verify: %s: %.*s\n", what, (int)strcspn(msg, "\n"), msg);
}

/*
 * Streams the raw rows of the range (single-row mode) into expected rollup deltas. The
 * writer's workflow limit is a function of exectime.workflows: a run whose workflow is
 * not admitted there rolls up under the overflow id (admissions are never taken back, and
 * one is refused only once the tenant has no room left, so a refused workflow's runs all
 * went there), which is the rule ingest applies.
 */
static int load_expected(PGconn *pg, const char *from, const char *to, const char *tenant,
                         rollup_set_t *expected)
{
    /* clang-format off */
    const char *sql =
        "SELECT e.tenant_id, CASE WHEN w.workflow_id IS NULL THEN $4 ELSE e.workflow_id END,"
        " e.status, (extract(epoch FROM e.finished_at) * 1000000)::bigint, e.duration_us,"
        " coalesce(e.queue_wait_us, -1)"
        " FROM exectime.execution_time_statistics e"
        " LEFT JOIN exectime.workflows w"
        "  ON w.tenant_id = e.tenant_id AND w.workflow_id = e.workflow_id"
        " WHERE e.finished_at >= $1 AND e.finished_at < $2"
        " AND ($3::text IS NULL OR e.tenant_id = $3)";
    /* clang-format on */
    const char *params[4] = {from, to, tenant, ET_OVERFLOW_WORKFLOW_ID};
    if (!PQsendQueryParams(pg, sql, 4, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(pg)) {
        print_pg_error("reading raw rows", pg, NULL);
        return -EIO;
    }
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(pg)) != NULL) {
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_SINGLE_TUPLE && rc == 0) {
            et_status_t status;
            const char *st = PQgetvalue(res, 0, 2);
            if (et_status_parse(st, strlen(st), &status) < 0) {
                rc = -EINVAL;
            } else {
                rc = rollup_set_add(expected, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), status,
                                    strtoll(PQgetvalue(res, 0, 3), NULL, 10),
                                    strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                                    strtoll(PQgetvalue(res, 0, 5), NULL, 10));
            }
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK) {
            print_pg_error("reading raw rows", pg, res);
            rc = -EIO;
        }
        PQclear(res);
    }
    return rc;
}

static bool hist_equal(const et_hist_t *a, const et_hist_t *b)
{
    if (a->len != b->len)
        return false;
    for (uint32_t i = 0; i < a->len; i++)
        if (a->bins[i].slot != b->bins[i].slot || a->bins[i].count != b->bins[i].count)
            return false;
    return true;
}

/* The queue-wait columns (9 to 12, bins decoded) of a stored row against the raw rows':
 * min and max count only when there are runs with queue data. */
static bool queue_matches(const PGresult *r, const rollup_delta_t *d, const et_hist_t *bins,
                          char *detail, size_t cap)
{
    uint64_t runs = strtoull(PQgetvalue(r, 0, 9), NULL, 10);
    int64_t sum = strtoll(PQgetvalue(r, 0, 10), NULL, 10);
    int64_t min = strtoll(PQgetvalue(r, 0, 11), NULL, 10);
    int64_t max = strtoll(PQgetvalue(r, 0, 12), NULL, 10);
    if (runs != d->queue_runs || sum != d->queue_sum_us ||
        (runs > 0 && (min != d->queue_min_us || max != d->queue_max_us))) {
        snprintf(detail, cap,
                 "stored queue_runs=%" PRIu64 " queue_sum=%" PRId64 " queue_min=%" PRId64
                 " queue_max=%" PRId64 ", raw rows give queue_runs=%" PRIu64 " queue_sum=%" PRId64
                 " queue_min=%" PRId64 " queue_max=%" PRId64,
                 runs, sum, min, max, d->queue_runs, d->queue_sum_us,
                 d->queue_runs ? d->queue_min_us : 0, d->queue_runs ? d->queue_max_us : 0);
        return false;
    }
    if (!hist_equal(bins, &d->queue_hist)) {
        snprintf(detail, cap, "queue-wait histogram bins differ from the raw rows'");
        return false;
    }
    return true;
}

/* Compares one resolution's stored rows with the expected deltas; marks matched ones. */
static int compare_resolution(PGconn *pg, et_resolution_t res, const char *from, const char *to,
                              const char *tenant, rollup_set_t *expected, bool *seen,
                              verify_state_t *st)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT tenant_id, workflow_id,"
             " (extract(epoch FROM bucket) * 1000000)::bigint, status, runs, sum_us, min_us,"
             " max_us, hist, queue_runs, queue_sum_us, queue_min_us, queue_max_us, queue_hist"
             " FROM exectime.%s"
             " WHERE bucket >= $1 AND bucket < $2 AND ($3::text IS NULL OR tenant_id = $3)",
             rollup_tables[res]);
    const char *params[3] = {from, to, tenant};
    if (!PQsendQueryParams(pg, sql, 3, NULL, params, NULL, NULL, 0) || !PQsetSingleRowMode(pg)) {
        print_pg_error("reading rollups", pg, NULL);
        return -EIO;
    }
    int rc = 0;
    et_hist_t hist, queue_hist;
    et_hist_init(&hist);
    et_hist_init(&queue_hist);
    PGresult *r;
    while ((r = PQgetResult(pg)) != NULL) {
        if (PQresultStatus(r) == PGRES_SINGLE_TUPLE && rc == 0) {
            const char *t = PQgetvalue(r, 0, 0), *w = PQgetvalue(r, 0, 1);
            int64_t bucket = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
            int status = atoi(PQgetvalue(r, 0, 3));
            st->checked++;
            rollup_delta_t *d = rollup_set_find(expected, res, t, w, bucket, (et_status_t)status);
            et_hist_reset(&hist);
            et_hist_reset(&queue_hist);
            if (et_hist_decode_hex(&hist, PQgetvalue(r, 0, 8)) < 0 ||
                et_hist_decode_hex(&queue_hist, PQgetvalue(r, 0, 13)) < 0) {
                report(st, "BAD", res, t, w, bucket, status, "histogram does not parse");
            } else if (d == NULL) {
                report(st, "EXTRA", res, t, w, bucket, status,
                       "rollup row has no raw rows behind it");
            } else {
                seen[d - expected->deltas] = true;
                char detail[256];
                uint64_t runs = strtoull(PQgetvalue(r, 0, 4), NULL, 10);
                int64_t sum = strtoll(PQgetvalue(r, 0, 5), NULL, 10);
                int64_t min = strtoll(PQgetvalue(r, 0, 6), NULL, 10);
                int64_t max = strtoll(PQgetvalue(r, 0, 7), NULL, 10);
                if (runs != d->runs || sum != d->sum_us || min != d->min_us || max != d->max_us) {
                    snprintf(detail, sizeof detail,
                             "stored runs=%" PRIu64 " sum=%" PRId64 " min=%" PRId64 " max=%" PRId64
                             ", raw rows give runs=%" PRIu64 " sum=%" PRId64 " min=%" PRId64
                             " max=%" PRId64,
                             runs, sum, min, max, d->runs, d->sum_us, d->min_us, d->max_us);
                    report(st, "DIFF", res, t, w, bucket, status, detail);
                } else if (!hist_equal(&hist, &d->hist)) {
                    report(st, "DIFF", res, t, w, bucket, status,
                           "histogram bins differ from the raw rows'");
                } else if (!queue_matches(r, d, &queue_hist, detail, sizeof detail)) {
                    report(st, "DIFF", res, t, w, bucket, status, detail);
                }
            }
        } else if (PQresultStatus(r) != PGRES_SINGLE_TUPLE &&
                   PQresultStatus(r) != PGRES_TUPLES_OK) {
            print_pg_error("reading rollups", pg, r);
            rc = -EIO;
        }
        PQclear(r);
    }
    et_hist_free(&hist);
    et_hist_free(&queue_hist);
    return rc;
}

/* The range both commands work on: widened to whole UTC days (so every bucket of every
 * resolution is complete), narrowed to the raw window the agent accepts; oldest[res] is
 * where each resolution's window starts. These are the windows of the writer
 * (et_retention_start): inside them every inserted run was folded, while the day before
 * each belongs to maintenance, which may have deleted it or may yet by its own clock. */
static void window(const config_t *cfg, const verify_options_t *opts, int64_t now, int64_t *from,
                   int64_t *to, int64_t oldest[ET_RES_COUNT])
{
    *from = et_time_floor(opts->from_us, ET_RES_DAY);
    *to = et_time_floor(opts->to_us + ET_US_PER_DAY - 1, ET_RES_DAY);
    int64_t raw_oldest = et_retention_start(now, cfg->raw_retention_days);
    if (*from < raw_oldest)
        *from = raw_oldest;
    oldest[ET_RES_MINUTE] = et_retention_start(now, cfg->minute_retention_days);
    oldest[ET_RES_HOUR] = et_retention_start(now, cfg->hour_retention_days);
    oldest[ET_RES_DAY] = *from;
    for (int res = 0; res < ET_RES_COUNT; res++)
        if (oldest[res] < *from)
            oldest[res] = *from;
}

int verify_run(const config_t *cfg, const verify_options_t *opts, FILE *out)
{
    int64_t now = et_now_us(), from, to, oldest[ET_RES_COUNT];
    window(cfg, opts, now, &from, &to, oldest);

    PGconn *pg = PQconnectdb(cfg->database_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        print_pg_error("cannot connect", pg, NULL);
        PQfinish(pg);
        return 2;
    }
    /* The writer role sees every tenant through row-level security. One snapshot for raw
     * rows and rollups: each batch commits both at once, so agents may keep ingesting. */
    PGresult *r = PQexec(pg, "SET ROLE exectime_writer; SET TIME ZONE 'UTC';"
                             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        print_pg_error("SET ROLE exectime_writer", pg, r);
        PQclear(r);
        PQfinish(pg);
        return 2;
    }
    PQclear(r);

    verify_state_t st = {out, opts->max_report, 0, 0};
    rollup_set_t expected;
    rollup_set_init(&expected, SIZE_MAX);
    rollup_set_retain(&expected, cfg->minute_retention_days, cfg->hour_retention_days, now);
    char from_text[40], to_text[40];
    int rc = -EINVAL;
    if (from < to && et_time_format(from, from_text, sizeof from_text) > 0 &&
        et_time_format(to, to_text, sizeof to_text) > 0)
        rc = load_expected(pg, from_text, to_text, opts->tenant_id, &expected);
    bool *seen = rc == 0 ? calloc(expected.len + 1, sizeof *seen) : NULL;
    if (rc == 0 && seen == NULL)
        rc = -ENOMEM;
    for (int res = 0; rc == 0 && res < ET_RES_COUNT; res++) {
        int64_t res_from = oldest[res];
        char res_from_text[40];
        if (res_from >= to || et_time_format(res_from, res_from_text, sizeof res_from_text) < 0)
            continue;
        rc = compare_resolution(pg, (et_resolution_t)res, res_from_text, to_text, opts->tenant_id,
                                &expected, seen, &st);
        for (size_t i = 0; rc == 0 && i < expected.len; i++) {
            const rollup_delta_t *d = &expected.deltas[i];
            if (d->resolution == (et_resolution_t)res && !seen[i] && d->bucket_us >= res_from)
                report(&st, "MISSING", d->resolution, d->tenant_id, d->workflow_id, d->bucket_us,
                       d->status, "raw rows have no rollup row");
        }
    }
    free(seen);
    rollup_set_free(&expected);
    PQfinish(pg);
    if (rc < 0) {
        if (rc != -EIO)
            fprintf(stderr, "exectime-agent verify: %s\n", strerror(-rc));
        return 2;
    }
    fprintf(out,
            "verify: %" PRIu64 " rollup rows checked from %s to %s, %" PRIu64 " difference%s\n",
            st.checked, from_text, to_text, st.differences, st.differences == 1 ? "" : "s");
    return st.differences ? 1 : 0;
}

/* Runs one statement; reports and returns -EIO on failure. */
static int exec_step(PGconn *pg, const char *what, const char *sql, int nparams,
                     const char *const *params, long *rows)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -EIO;
    if (rc < 0)
        print_pg_error(what, pg, r);
    else if (rows)
        *rows += atol(PQcmdTuples(r));
    PQclear(r);
    return rc;
}

/* COPYs one resolution's recomputed rows into its table. */
static int copy_rows(PGconn *pg, const rollup_set_t *set, et_resolution_t res, int64_t res_from,
                     long *written)
{
    char sql[256];
    snprintf(sql, sizeof sql, "COPY exectime.%s (" ROLLUP_COPY_COLUMNS ") FROM STDIN",
             rollup_tables[res]);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        print_pg_error("COPY", pg, r);
        PQclear(r);
        return -EIO;
    }
    PQclear(r);
    copy_buf_t rows;
    copy_buf_init(&rows, SIZE_MAX);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < set->len; i++) {
        const rollup_delta_t *d = &set->deltas[i];
        if (d->resolution != res || d->bucket_us < res_from)
            continue;
        rc = rollup_delta_copy_row(d, false, &rows);
        (*written)++;
        if (rc == 0 && rows.len > (1 << 20)) { /* send in chunks of about 1 MiB */
            rc = PQputCopyData(pg, rows.data, (int)rows.len) == 1 ? 0 : -EIO;
            copy_buf_reset(&rows);
        }
    }
    if (rc == 0 && rows.len)
        rc = PQputCopyData(pg, rows.data, (int)rows.len) == 1 ? 0 : -EIO;
    copy_buf_free(&rows);
    if (PQputCopyEnd(pg, rc == 0 ? NULL : "rollup rows could not be built") != 1)
        rc = -EIO;
    r = PQgetResult(pg);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        print_pg_error("COPY", pg, r);
        rc = -EIO;
    }
    PQclear(r);
    while ((r = PQgetResult(pg)) != NULL)
        PQclear(r);
    return rc;
}

int verify_rebuild(const config_t *cfg, const verify_options_t *opts, FILE *out)
{
    int64_t now = et_now_us(), from, to, oldest[ET_RES_COUNT];
    window(cfg, opts, now, &from, &to, oldest);
    char from_text[40], to_text[40];
    if (from >= to || et_time_format(from, from_text, sizeof from_text) < 0 ||
        et_time_format(to, to_text, sizeof to_text) < 0) {
        fprintf(stderr, "exectime-agent rollup-rebuild: the range holds no day within the raw "
                        "retention\n");
        return 2;
    }
    PGconn *pg = PQconnectdb(cfg->database_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        print_pg_error("cannot connect", pg, NULL);
        PQfinish(pg);
        return 2;
    }
    rollup_set_t expected;
    rollup_set_init(&expected, SIZE_MAX);
    rollup_set_retain(&expected, cfg->minute_retention_days, cfg->hour_retention_days, now);
    long removed = 0, written = 0;
    /* The lock makes running agents wait before their rollup upserts: a batch that
     * committed before it is in the raw rows read below, one that commits after it adds
     * its delta to the rebuilt rows. */
    int rc = exec_step(pg, "BEGIN", "BEGIN", 0, NULL, NULL);
    if (rc == 0)
        rc = exec_step(pg, "settings", "SET LOCAL TIME ZONE 'UTC'", 0, NULL, NULL);
    if (rc == 0)
        rc = exec_step(pg, "LOCK",
                       "LOCK TABLE exectime.rollup_minute, exectime.rollup_hour,"
                       " exectime.rollup_day IN SHARE ROW EXCLUSIVE MODE",
                       0, NULL, NULL);
    if (rc == 0)
        rc = load_expected(pg, from_text, to_text, opts->tenant_id, &expected);
    rollup_set_sort(&expected);
    for (int res = 0; rc == 0 && res < ET_RES_COUNT; res++) {
        char res_from_text[40], sql[200];
        if (oldest[res] >= to ||
            et_time_format(oldest[res], res_from_text, sizeof res_from_text) < 0)
            continue;
        snprintf(sql, sizeof sql,
                 "DELETE FROM exectime.%s WHERE bucket >= $1 AND bucket < $2"
                 " AND ($3::text IS NULL OR tenant_id = $3)",
                 rollup_tables[res]);
        const char *params[3] = {res_from_text, to_text, opts->tenant_id};
        rc = exec_step(pg, "DELETE (run rollup-rebuild as the schema owner)", sql, 3, params,
                       &removed);
        if (rc == 0)
            rc = copy_rows(pg, &expected, (et_resolution_t)res, oldest[res], &written);
    }
    /* Every agent's statistics cache forgets what it merged (day_cache.h). */
    if (rc == 0)
        rc = exec_step(pg, "NOTIFY", "NOTIFY " DAY_CACHE_CHANNEL ", '*'", 0, NULL, NULL);
    if (rc == 0)
        rc = exec_step(pg, "COMMIT", "COMMIT", 0, NULL, NULL);
    rollup_set_free(&expected);
    PQfinish(pg); /* an open transaction rolls back */
    if (rc < 0) {
        if (rc != -EIO)
            fprintf(stderr, "exectime-agent rollup-rebuild: %s\n", strerror(-rc));
        return 2;
    }
    fprintf(out,
            "rollup-rebuild: %ld rollup rows replaced by %ld recomputed from raw rows, "
            "from %s to %s\n",
            removed, written, from_text, to_text);
    return 0;
}
