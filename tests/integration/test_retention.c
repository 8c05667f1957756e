/*
 * Integration test of the retention edges (docs/operations.md, "Retention"): events just
 * inside and just outside the raw window, and older than the minute window but inside the
 * raw one, published, then maintenance run as the database would by its clock (also a
 * day ahead of the agent's), then the same events published again. Nothing may be counted
 * twice, exactly the outside events are dead-lettered naming the window, no minute rollup
 * holds a run older than the minute window, and verify stays exact throughout.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"

enum { RAW_DAYS = 30, MINUTE_DAYS = 14, HOUR_DAYS = 400 };

enum {
    EV_FIRST_ACCEPTED, /* the raw window's first microsecond */
    EV_INSIDE,         /* an hour into the raw window */
    EV_MINUTE_BEFORE,  /* the microsecond before the minute window: hours and days only */
    EV_MINUTE_OLD,     /* 20 days old: hours and days only */
    EV_MINUTE_FIRST,   /* the minute window's first microsecond */
    EV_RECENT,         /* an hour ago */
    EV_LAST_REFUSED,   /* the microsecond before the raw window */
    EV_DAY_BEFORE,     /* the day maintenance still keeps, but the agent no longer accepts */
    EV_COUNT
};
#define EV_STORED EV_LAST_REFUSED /* events [0, EV_STORED) are stored */
#define EV_MINUTE_STORED 2        /* EV_MINUTE_FIRST and EV_RECENT */

static void make_event(et_event_t *e, int k, int64_t finished_us)
{
    memset(e, 0, sizeof *e);
    snprintf(e->tenant_id, sizeof e->tenant_id, "ret");
    snprintf(e->workflow_id, sizeof e->workflow_id, "wf-%d", k % 2);
    snprintf(e->run_id, sizeof e->run_id, "edge-%d", k);
    e->status = (et_status_t)(k % 4);
    e->finished_us = finished_us;
    e->duration_us = 1000 + 17 * k;
}

/* One entry per event, so each dead letter is one event. */
static void publish_each(const et_event_t *ev, uint64_t seed)
{
    for (int k = 0; k < EV_COUNT; k++)
        cr_assert_eq(it_publish(&ev[k], 1, 1, seed + (uint64_t)k), 1);
}

static long long tenant_runs(const char *table)
{
    return it_sql_int("SELECT coalesce(sum(runs), 0) FROM exectime.%s"
                      " WHERE tenant_id = 'ret' AND workflow_id = ''",
                      table);
}

/* Everything the test expects of the database and the dead-letter stream at any point. */
static void check_state(const et_event_t *ev, long long dead_expected, const char *window_text,
                        int64_t minute_from)
{
    cr_assert_eq(it_raw_count(), EV_STORED, "raw rows: %lld, expected %d", it_raw_count(),
                 EV_STORED);
    for (int k = 0; k < EV_STORED; k++)
        cr_assert_eq(it_sql_int("SELECT count(*) FROM exectime.execution_time_statistics"
                                " WHERE run_id = '%s'",
                                ev[k].run_id),
                     1, "%s is not stored exactly once", ev[k].run_id);
    /* Each stored run counted once in every rollup that keeps it. */
    cr_assert_eq(tenant_runs("rollup_day"), EV_STORED, "day rollups count %lld runs",
                 tenant_runs("rollup_day"));
    cr_assert_eq(tenant_runs("rollup_hour"), EV_STORED, "hour rollups count %lld runs",
                 tenant_runs("rollup_hour"));
    cr_assert_eq(tenant_runs("rollup_minute"), EV_MINUTE_STORED, "minute rollups count %lld runs",
                 tenant_runs("rollup_minute"));
    char from_text[40];
    cr_assert(et_time_format(minute_from, from_text, sizeof from_text) > 0);
    long long old_minutes = it_sql_int("SELECT count(*) FROM exectime.rollup_minute"
                                       " WHERE bucket < '%s'",
                                       from_text);
    cr_assert_eq(old_minutes, 0, "%lld minute rollups older than the minute window (%s)",
                 old_minutes, from_text);

    /* Dead letters: exactly the outside events, each with the reason naming the window. */
    redisReply *r = it_redis("XRANGE %s - +", it.dead_stream);
    cr_assert_eq((long long)r->elements, dead_expected, "%zu dead letters, expected %lld",
                 r->elements, dead_expected);
    char want[128];
    snprintf(want, sizeof want, "finished_at: older than the accepted window (from %s)",
             window_text);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *fields = r->element[i]->element[1];
        const redisReply *reason = NULL, *bytes = NULL;
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            if (strcmp(fields->element[f]->str, "reason") == 0)
                reason = fields->element[f + 1];
            else if (strcmp(fields->element[f]->str, "event") == 0)
                bytes = fields->element[f + 1];
        }
        cr_assert(reason != NULL && strstr(reason->str, want) != NULL,
                  "dead letter %zu: reason \"%s\", expected \"%s\"", i, reason ? reason->str : "",
                  want);
        cr_assert(bytes != NULL, "dead letter %zu has no event bytes", i);
        bool outside = false;
        for (int k = EV_STORED; k < EV_COUNT; k++)
            outside |= memmem(bytes->str, bytes->len, ev[k].run_id, strlen(ev[k].run_id)) != NULL;
        cr_assert(outside, "dead letter %zu is not one of the outside events", i);
    }
    freeReplyObject(r);
}

/* maintain() as the database runs it; retention days as given. */
static void maintain(int raw_days, int minute_days, int hour_days)
{
    PGresult *r = it_sql("SELECT exectime.maintain(%d, %d, %d)", raw_days, minute_days, hour_days);
    PQclear(r);
}

Test(retention, window_edges_survive_maintenance_and_republishing, IT_TEST_OPTS)
{
    /* The windows move at UTC midnight: start well clear of it. */
    int64_t left = ET_US_PER_DAY - (et_now_us() - et_time_floor(et_now_us(), ET_RES_DAY));
    if (left < 15 * ET_US_PER_MIN)
        it_sleep_ms((int)(left / 1000) + 2000);
    int64_t now = et_now_us();
    int64_t raw_from = et_retention_start(now, RAW_DAYS);
    int64_t minute_from = et_retention_start(now, MINUTE_DAYS);
    char window_text[40];
    cr_assert(et_time_format(raw_from, window_text, sizeof window_text) > 0);

    et_event_t ev[EV_COUNT];
    make_event(&ev[EV_FIRST_ACCEPTED], EV_FIRST_ACCEPTED, raw_from);
    make_event(&ev[EV_INSIDE], EV_INSIDE, raw_from + ET_US_PER_HOUR);
    make_event(&ev[EV_MINUTE_BEFORE], EV_MINUTE_BEFORE, minute_from - 1);
    make_event(&ev[EV_MINUTE_OLD], EV_MINUTE_OLD, now - 20 * ET_US_PER_DAY);
    make_event(&ev[EV_MINUTE_FIRST], EV_MINUTE_FIRST, minute_from);
    make_event(&ev[EV_RECENT], EV_RECENT, now - ET_US_PER_HOUR);
    make_event(&ev[EV_LAST_REFUSED], EV_LAST_REFUSED, raw_from - 1);
    make_event(&ev[EV_DAY_BEFORE], EV_DAY_BEFORE, raw_from - ET_US_PER_DAY / 2);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    publish_each(ev, 100);
    it_wait_drained();
    check_state(ev, 2, window_text, minute_from);
    it_verify_ok();

    /* Maintenance by the database's clock; then as a database whose date is one day ahead
     * of the agent's (a clock difference under a day moves the date by one at most): it
     * drops the day before the agent's raw window and deletes the minute rollups of the
     * day before its minute window. */
    maintain(RAW_DAYS, MINUTE_DAYS, HOUR_DAYS);
    maintain(RAW_DAYS - 1, MINUTE_DAYS - 1, HOUR_DAYS - 1);
    check_state(ev, 2, window_text, minute_from);
    it_verify_ok();

    /* The backstop: a row of a day maintenance dropped is refused by the database itself,
     * whatever the agent's clock says. */
    char refused_at[40];
    cr_assert(et_time_format(raw_from - 1, refused_at, sizeof refused_at) > 0);
    PGresult *r = PQexec(it.pg, "BEGIN");
    PQclear(r);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO exectime.execution_time_statistics (tenant_id, workflow_id, run_id,"
             " status, finished_at, duration_us) VALUES ('ret', 'wf', 'direct', 'success',"
             " '%s', 1)",
             refused_at);
    r = PQexec(it.pg, sql);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    cr_assert(PQresultStatus(r) == PGRES_FATAL_ERROR && state && strcmp(state, "23514") == 0,
              "a row older than what maintenance keeps was not refused: %s",
              PQresultErrorMessage(r));
    cr_assert(strstr(PQresultErrorMessage(r), "finished_at_within_raw_retention") != NULL,
              "refused for another reason: %s", PQresultErrorMessage(r));
    PQclear(r);
    r = PQexec(it.pg, "ROLLBACK");
    PQclear(r);

    /* The same events again, as a publisher retrying or Redis redelivering would. */
    publish_each(ev, 200);
    it_wait_drained();
    check_state(ev, 4, window_text, minute_from);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total"), EV_STORED,
                 "%g duplicates recognised, expected %d",
                 it_metric(a, "exectime_events_duplicate_total"), EV_STORED);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}
