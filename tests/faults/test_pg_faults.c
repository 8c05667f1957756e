/*
 * PostgreSQL faults under load: stopped fast, stopped immediately, frozen (SIGSTOP), absent
 * when the agent starts, and a database that refuses one entry inside a batch. While the
 * database is away the agent must stop reading (Redis holds the backlog: the group's lag
 * grows, the agent's pending entries stay within two batches), keep its memory bounded,
 * and catch up afterwards with every event exactly once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_harness.h"

#define BATCH_MAX 500
/* Two batches of events, each entry at least one event, plus one read in flight. */
#define PENDING_BOUND (2 * (BATCH_MAX + 128))

typedef enum outage { STOP_FAST, STOP_IMMEDIATE, FREEZE } outage_t;

/* One outage of `seconds` under load, then the catch-up and the checks. */
static void pg_outage_under_load(const char *scenario, outage_t kind)
{
    const int events = ft_pick(20000, 200000);
    const int down_ms = ft_pick(5000, 30000);
    const char *env[] = {"EXECTIME_BATCH_MAX=500", NULL};
    it_agent_t *a = it_agent_start("a", env);
    it_agent_wait_ready(a);

    /* Publishing spans the outage: the backlog builds up while the database is away. */
    ft_publish_opts_t po = {.run_prefix = "pg-",
                            .events = events,
                            .max_per_entry = 4,
                            .invalid_every = 97,
                            .events_per_s = events / (2.0 + 0.8 * down_ms / 1000.0)};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("pg-") > 0, IT_WAIT_MS, "nothing committed before the fault");

    long rss_before = it_proc_kib(a->pid, "VmRSS");
    long long lag_before = ft_group_lag();
    if (kind == FREEZE)
        ft_pg_freeze();
    else
        ft_pg_stop(kind == STOP_FAST ? FT_PG_FAST : FT_PG_IMMEDIATE);

    /* While it is away: no SQL from here (a frozen server would hang us). */
    long long max_pending = 0;
    long max_rss = rss_before;
    int64_t until = it_now_ms() + down_ms;
    while (it_now_ms() < until) {
        it_check_agents();
        long long pending = it_consumer_pending("a");
        long rss = it_proc_kib(a->pid, "VmRSS");
        max_pending = pending > max_pending ? pending : max_pending;
        max_rss = rss > max_rss ? rss : max_rss;
        it_sleep_ms(200);
    }
    long long lag_after = ft_group_lag();

    if (kind == FREEZE)
        ft_pg_thaw();
    else
        ft_pg_start();
    int64_t back = it_now_ms();

    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("pg-", out.valid_events, back);
    long hwm = it_proc_kib(a->pid, "VmHWM");
    ft_report(scenario, seconds, out.valid_events,
              "down_ms=%d max_pending=%lld lag_before=%lld lag_after=%lld rss_before_kib=%ld "
              "max_rss_kib=%ld peak_rss_kib=%ld",
              down_ms, max_pending, lag_before, lag_after, rss_before, max_rss, hwm);

    cr_assert(max_pending <= PENDING_BOUND,
              "the agent kept reading while the database was away: %lld entries pending on it "
              "(bound %d)",
              max_pending, PENDING_BOUND);
    cr_assert(lag_after > lag_before,
              "the group's lag did not grow while the database was away (%lld -> %lld): "
              "the publisher should have outrun a stopped reader",
              lag_before, lag_after);
    ft_check_outcome(&pub, 1, "pg-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

Test(pg_faults, agent_catches_up_after_postgres_stopped_fast, FT_TEST_OPTS)
{
    pg_outage_under_load("pg_stop_fast", STOP_FAST);
}

Test(pg_faults, agent_catches_up_after_postgres_stopped_immediately, FT_TEST_OPTS)
{
    pg_outage_under_load("pg_stop_immediate", STOP_IMMEDIATE);
}

Test(pg_faults, agent_catches_up_after_postgres_frozen, FT_TEST_OPTS)
{
    pg_outage_under_load("pg_freeze", FREEZE);
}

Test(pg_faults, agent_started_while_postgres_is_absent_ingests_once_it_starts, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    ft_pg_stop(FT_PG_FAST);
    it_agent_t *a = it_agent_start("a", NULL);
    ft_publish_opts_t po = {
        .run_prefix = "late-", .events = events, .max_per_entry = 8, .invalid_every = 101};
    ft_publisher_t *pub = ft_publish_start(&po);
    ft_published_t out;
    ft_publish_wait(pub, &out);

    /* Up, answering, not ready, and not giving up while the database is absent. */
    ft_expect_waiting_for(a, "postgres");

    ft_pg_start();
    int64_t back = it_now_ms();
    double seconds = ft_wait_visible("late-", out.valid_events, back);
    ft_report("pg_absent_at_start", seconds, out.valid_events, NULL);
    ft_check_outcome(&pub, 1, "late-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

/* Lines of log from offset on that contain every one of the given strings. */
static int count_lines(const char *log, size_t offset, const char *a, const char *b)
{
    int n = 0;
    for (const char *line = log + offset; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        if (strstr(copy, a) && (b == NULL || strstr(copy, b)))
            n++;
        free(copy);
        line += len + (end ? 1 : 0);
    }
    return n;
}

/*
 * Issue 9: a PostgreSQL outage used to log "postgres connection lost" for every attempt
 * of every connection (the pool's spare sessions included), some only saying "bad file
 * descriptor". Now each connection logs the loss once and its failed attempts at the 1st,
 * 2nd, 4th, 8th… with the real reason; the pool's spare sessions only at debug level.
 */
Test(pg_faults, outage_logs_each_connection_once_per_backoff_step, FT_TEST_OPTS)
{
    const int down_ms = ft_pick(12000, 30000);
    it_agent_t *a = it_agent_start("a", NULL);
    it_agent_wait_ready(a);
    char *log = it_agent_log(a);
    size_t offset = strlen(log);
    free(log);

    ft_pg_stop(FT_PG_FAST);
    it_sleep_ms(down_ms);
    log = it_agent_log(a);
    /* Attempts start 100 ms apart and double to 2 s: the attempts of the outage. */
    int attempts = 0;
    for (int t = 0, step = 100; t<down_ms; t += step, step = step * 2> 2000 ? 2000 : step * 2)
        attempts++;
    /* The loss and the first attempt; two more for reasons that change on the way
     * ("the database system is shutting down", then "Connection refused"). */
    int logged_bound = 4;
    for (int k = 2; k <= attempts; k *= 2)
        logged_bound++;
    static const char *const conns[] = {"conn=writer", "conn=maintenance", "conn=api-listener",
                                        "conn=api"};
    int total = 0;
    for (size_t i = 0; i < sizeof conns / sizeof conns[0]; i++) {
        char conn[64];
        snprintf(conn, sizeof conn, "%s ", conns[i]);
        int lost = count_lines(log, offset, "postgres connection lost", conn);
        int failed = count_lines(log, offset, "postgres connection attempt failed", conn);
        cr_assert_eq(lost, 1, "%s: %d 'connection lost' lines, want 1", conns[i], lost);
        cr_assert(failed >= 1 && lost + failed <= logged_bound,
                  "%s: %d lines about failed attempts in %d ms (about %d attempts), want 1 to %d",
                  conns[i], failed, down_ms, attempts, logged_bound - 1);
        total += lost + failed;
    }
    int all = count_lines(log, offset, "postgres connection", NULL);
    cr_assert_eq(all, total,
                 "connections other than one per kind logged their failures "
                 "(%d lines in all, %d from the four)",
                 all, total);
    cr_assert_eq(count_lines(log, offset, "bad file descriptor", NULL), 0,
                 "a reason says only 'bad file descriptor'");
    cr_assert(count_lines(log, offset, "postgres connection attempt failed", "attempt=1 ") >= 4 &&
                  count_lines(log, offset, "next_attempt_ms=", NULL) == total,
              "failed attempts without their number or the next delay");
    free(log);

    ft_pg_start();
    IT_WAIT_UNTIL(ft_ready_part(a, "postgres"), IT_WAIT_MS, "never reconnected");
    log = it_agent_log(a);
    cr_assert(count_lines(log, offset, "postgres connected", "conn=writer failed_attempts=") == 1,
              "the writer's connected line does not say how many attempts failed");
    ft_report("pg_outage_logs", 0, 0, "down_ms=%d attempts=%d lines=%d", down_ms, attempts, total);
    free(log);
    it_agent_stop(a);
    it_pass();
}

Test(pg_faults, entry_postgres_refuses_is_dead_lettered_and_its_batch_committed,
     FT_TEST_OPTS_EUC_JP)
{
    /* The database is EUC_JP: a run id with "€" is valid UTF-8 (the decoder lets it
     * through) but PostgreSQL refuses it inside the COPY of a batch. Everything is
     * published first, so the refused entries sit inside full batches. */
    const int events = ft_pick(5000, 50000);
    ft_publish_opts_t po = {.run_prefix = "enc-",
                            .events = events,
                            .max_per_entry = 3,
                            .invalid_every = 211,
                            .db_reject_every = 157};
    ft_publisher_t *pub = ft_publish_start(&po);
    ft_published_t out;
    ft_publish_wait(pub, &out);
    cr_assert(out.db_reject_entries > 0);

    const char *env[] = {"EXECTIME_BATCH_MAX=1000", NULL};
    int64_t start = it_now_ms();
    it_agent_t *a = it_agent_start("a", env);
    double seconds = ft_wait_visible("enc-", out.valid_events, start);
    ft_report("db_refused_entry", seconds, out.valid_events, "refused_entries=%lld",
              out.db_reject_entries);
    ft_check_outcome(&pub, 1, "enc-", out.valid_events, false, "EUC_JP");
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), out.valid_events);
    it_agent_stop(a);
    it_pass();
}
