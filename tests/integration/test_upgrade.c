/*
 * Integration test of the schema upgrade to version 5 (compact histograms): rollups the
 * agent made are turned back into version 4's form (bigint[] of packed bins, the version 4
 * functions and sketch encoding), then `exectime-agent migrate` converts them again. The
 * converted rows must be byte for byte what the agent had written, verify must agree with
 * the raw rows, an agent started on the old schema must wait (not exit, not write) until
 * the migration, and then ingest on top of the converted rows exactly.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"

/* Every rollup row of every resolution as one text, in key order. */
static char *rollup_snapshot(void)
{
    return it_sql_text(
        "SELECT string_agg(t || '|' || tenant_id || '|' || workflow_id || '|' || bucket || '|'"
        " || status || '|' || runs || '|' || sum_us || '|' || min_us || '|' || max_us || '|'"
        " || hist::text, E'\\n' ORDER BY t, tenant_id, workflow_id, bucket, status) FROM ("
        " SELECT 'minute' t, * FROM exectime.rollup_minute UNION ALL"
        " SELECT 'hour', * FROM exectime.rollup_hour UNION ALL"
        " SELECT 'day', * FROM exectime.rollup_day) r");
}

/* Without version 7's queue-wait columns (the raw rows' and the rollups'). */
static void downgrade_to_version_6(void)
{
    PQclear(it_sql("BEGIN;"
                   "ALTER TABLE exectime.execution_time_statistics DROP COLUMN queue_wait_us;"
                   "ALTER TABLE exectime.rollup_minute DROP COLUMN queue_runs,"
                   " DROP COLUMN queue_sum_us, DROP COLUMN queue_min_us,"
                   " DROP COLUMN queue_max_us, DROP COLUMN queue_hist;"
                   "ALTER TABLE exectime.rollup_hour DROP COLUMN queue_runs,"
                   " DROP COLUMN queue_sum_us, DROP COLUMN queue_min_us,"
                   " DROP COLUMN queue_max_us, DROP COLUMN queue_hist;"
                   "ALTER TABLE exectime.rollup_day DROP COLUMN queue_runs,"
                   " DROP COLUMN queue_sum_us, DROP COLUMN queue_min_us,"
                   " DROP COLUMN queue_max_us, DROP COLUMN queue_hist;"
                   "DELETE FROM exectime.schema_migrations WHERE version = 7;"
                   "COMMIT"));
}

/* Version 4 as migrations 0001-0004 left it, as far as versions 5 and 7 change it; of
 * version 6 (which may run again over itself) the statistics function and its row go, so
 * the upgrade applies 5, 6 and 7. */
static void downgrade_to_version_4(void)
{
    PQclear(
        it_sql("BEGIN;"
               "CREATE FUNCTION pg_temp.packed(h bytea) RETURNS bigint[] LANGUAGE sql AS"
               " $$ SELECT coalesce(array_agg((slot::bigint << 40) | count ORDER BY slot), '{}')"
               " FROM exectime.hist_bins(h) $$;"
               "ALTER TABLE exectime.rollup_minute ALTER COLUMN hist TYPE bigint[] USING "
               "pg_temp.packed(hist);"
               "ALTER TABLE exectime.rollup_hour ALTER COLUMN hist TYPE bigint[] USING "
               "pg_temp.packed(hist);"
               "ALTER TABLE exectime.rollup_day ALTER COLUMN hist TYPE bigint[] USING "
               "pg_temp.packed(hist);"
               "DROP FUNCTION exectime.hist_bins(bytea);"
               "CREATE FUNCTION exectime.hist_merge(a bigint[], b bigint[]) RETURNS bigint[]"
               " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
               " SELECT array_agg((s << 40) | c ORDER BY s)"
               " FROM (SELECT e >> 40 AS s, sum(e & 1099511627775)::bigint AS c"
               " FROM (SELECT unnest(a) AS e UNION ALL SELECT unnest(b)) u GROUP BY 1) g $$;"
               "CREATE FUNCTION exectime.hist_bins(h bigint[], OUT slot integer, OUT count bigint)"
               " RETURNS SETOF record LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$"
               " SELECT (e >> 40)::integer, e & 1099511627775 FROM unnest(h) e $$;"
               "UPDATE exectime.sketch_constants SET encoding = 1;"
               "DROP FUNCTION exectime.execution_time_stats(text, text, timestamptz, timestamptz,"
               " float8[], text[]);"
               "DELETE FROM exectime.schema_migrations WHERE version >= 5;"
               "COMMIT"));
    downgrade_to_version_6();
    cr_assert_eq(it_sql_int("SELECT count(*) FROM information_schema.columns"
                            " WHERE table_schema = 'exectime' AND column_name = 'hist'"
                            " AND data_type = 'ARRAY'"),
                 3);
}

Test(upgrade, version_4_rollups_convert_exactly_and_ingest_goes_on_after_migrate, IT_TEST_OPTS)
{
    enum { N = 3000, M = 1000 };
    static et_event_t ev[N + M];
    it_gen_t gen = {.seed = 505,
                    .tenants = 2,
                    .workflows = 6,
                    .spread_us = 3 * ET_US_PER_DAY,
                    .run_prefix = "up-"};
    it_gen_events(ev, N, &gen);
    for (size_t i = 0; i < N; i++)
        ev[i].has_enqueued = false; /* written before version 7: no queue data */
    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    it_publish(ev, N, 8, 1);
    it_wait_drained();
    it_agent_stop(a);
    char *written = rollup_snapshot();
    cr_assert(written != NULL && strlen(written) > 1000);

    downgrade_to_version_4();
    /* Versions 5, 6 and 7 undone. */
    cr_assert_eq(it_sql_int("SELECT count(*) FROM exectime.schema_migrations WHERE version >= 5"),
                 0);

    /* An agent of version 5 on the old schema waits for the migration: it neither exits
     * (the old sketch encoding is the schema's, not a foreign database's) nor writes. */
    it_agent_t *b = it_agent_start("c2", NULL);
    it_gen_t more = gen;
    more.seed = 506;
    more.run_prefix = "up2-";
    it_gen_events(ev + N, M, &more);
    it_publish(ev + N, M, 8, 2);
    it_sleep_ms(1500);
    it_check_agents();
    cr_assert_eq(it_raw_count(), N, "nothing may be written before the migration");
    char *body = NULL;
    cr_assert_eq(it_http_get(b->port, "/readyz", &body), 503, "%s", body ? body : "");
    free(body);

    char *out = NULL;
    cr_assert_eq(it_agent_command("migrate", it.db_admin_url, &out), 0, "%s", out);
    free(out);
    cr_assert_eq(it_sql_int("SELECT max(version) FROM exectime.schema_migrations"), 7);
    cr_assert_eq(it_sql_int("SELECT count(*) FROM pg_proc WHERE proname = 'execution_time_stats'"),
                 1);
    char *converted = rollup_snapshot();
    cr_assert_str_eq(converted, written,
                     "the converted rollups differ from the ones the agent had written");
    free(converted);
    free(written);
    cr_assert_eq(it_agent_command("verify", it.agent_url, &out), 0, "%s", out);
    free(out);

    /* The waiting agent re-checks the schema, then writes on top of the converted rows. */
    it_agent_wait_ready(b);
    it_wait_drained();
    it_check_rollups_match(ev, N + M);
    it_check_rollups_match_raw_sql();
    it_pass();
}

/* Version 7 (queue wait) on a database of version 6 with data: the rows keep every value,
 * read as "no queue data", and ingest goes on with queue waits on top of them. */
Test(upgrade, version_7_adds_queue_wait_and_keeps_data, IT_TEST_OPTS)
{
    enum { N = 1500, M = 1500 };
    static et_event_t ev[N + M];
    it_gen_t gen = {.seed = 707,
                    .tenants = 2,
                    .workflows = 4,
                    .spread_us = 2 * ET_US_PER_DAY,
                    .run_prefix = "q6-"};
    it_gen_events(ev, N, &gen);
    for (size_t i = 0; i < N; i++)
        ev[i].has_enqueued = false;
    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    it_publish(ev, N, 8, 1);
    it_wait_drained();
    it_agent_stop(a);
    downgrade_to_version_6();
    char *before = rollup_snapshot();
    cr_assert(before != NULL && strlen(before) > 1000);

    char *out = NULL;
    cr_assert_eq(it_agent_command("migrate", it.db_admin_url, &out), 0, "%s", out);
    free(out);
    char *after = rollup_snapshot();
    cr_assert_str_eq(after, before, "migrating to version 7 changed the rollups");
    free(after);
    free(before);
    cr_assert_eq(it_sql_int("SELECT count(*) FROM exectime.rollup_day WHERE queue_runs <> 0"
                            " OR queue_hist <> ''::bytea"),
                 0);
    cr_assert_eq(it_raw_count(), N);
    cr_assert_eq(it_agent_command("verify", it.agent_url, &out), 0, "%s", out);
    free(out);

    it_gen_t more = gen;
    more.seed = 708;
    more.run_prefix = "q7-";
    it_gen_events(ev + N, M, &more);
    size_t queued = 0;
    for (size_t i = N; i < N + M; i++)
        queued += ev[i].has_enqueued;
    cr_assert(queued > M / 4, "the generator gives a share of the events queue data");
    it_agent_t *b = it_agent_start("c2", NULL);
    it_agent_wait_ready(b);
    it_publish(ev + N, M, 8, 2);
    it_wait_drained();
    it_check_rollups_match(ev, N + M);
    it_check_rollups_match_raw_sql();
    cr_assert_eq(
        it_sql_int("SELECT sum(queue_runs) FROM exectime.rollup_day WHERE workflow_id = ''"),
        (long long)queued);
    it_verify_ok();
    it_pass();
}
