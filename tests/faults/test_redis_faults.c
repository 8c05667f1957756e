/*
 * Redis faults under load: restarted with AOF on (SIGTERM: a clean shutdown; SIGKILL: what
 * the AOF had), restarted WITHOUT persistence (the stream and the group vanish and the
 * agent must recreate them), absent when the agent starts, restarted again and again while
 * the agent holds entries it cannot commit (a flapping Redis), frozen (SIGSTOP: a network
 * cut that heals), and cut off behind a proxy for good (a half-open connection: the
 * agent's socket stays open and nothing ever answers on it). Each prints how long after
 * Redis accepted connections again the agent's /readyz said redis true, and how long
 * until every event was visible.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_harness.h"

/* Seconds from since_ms until the agent's /readyz says redis true. */
static double wait_redis_ready(const it_agent_t *a, int64_t since_ms)
{
    IT_WAIT_UNTIL(ft_ready_part(a, "redis"), IT_WAIT_MS,
                  "the agent's /readyz did not say redis true within %d ms of Redis' return",
                  IT_WAIT_MS);
    return (double)(it_now_ms() - since_ms) / 1000.0;
}

/* Redis goes away under load with its AOF on and comes back with everything it had
 * acknowledged: every published event must arrive exactly once. */
static void redis_restart_with_aof(const char *scenario, int sig)
{
    const int events = ft_pick(20000, 200000);
    const int down_ms = ft_pick(3000, 15000);
    it_agent_t *a = it_agent_start("a", NULL);
    it_agent_wait_ready(a);
    ft_publish_opts_t po = {.run_prefix = "aof-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 89,
                            .events_per_s = events / (3.0 + down_ms / 1000.0)};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("aof-") > 0, IT_WAIT_MS,
                  "nothing committed before the fault");

    ft_redis_stop(sig);
    it_sleep_ms(down_ms); /* the publisher retries meanwhile; the agent must not die */
    it_check_agents();
    ft_redis_start();
    int64_t back = it_now_ms();
    double ready_s = wait_redis_ready(a, back);

    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("aof-", out.valid_events, back);
    ft_report(scenario, seconds, out.valid_events, "ready_seconds=%.1f down_ms=%d", ready_s,
              down_ms);
    ft_check_outcome(&pub, 1, "aof-", out.valid_events, sig == SIGKILL, NULL);
    it_agent_stop(a);
    it_pass();
}

Test(redis_faults, agent_resumes_after_redis_restarted_with_aof, FT_TEST_OPTS)
{
    redis_restart_with_aof("redis_aof_sigterm", SIGTERM);
}

Test(redis_faults, agent_resumes_after_redis_killed_with_aof, FT_TEST_OPTS)
{
    redis_restart_with_aof("redis_aof_sigkill", SIGKILL);
}

Test(redis_faults, agent_recreates_stream_and_group_after_redis_lost_everything,
     FT_TEST_OPTS_VOLATILE)
{
    const int events = ft_pick(10000, 100000); /* per phase */
    /* Small batches: the agent holds little, so most of the burst is still in Redis. */
    const char *env[] = {"EXECTIME_BATCH_MAX=200", NULL};
    it_agent_t *a = it_agent_start("a", env);
    it_agent_wait_ready(a);

    /* Before: published in one burst, partly ingested when Redis goes; the backlog Redis
     * still held is lost with it. */
    ft_publish_opts_t before = {
        .run_prefix = "pre-", .events = 3 * events, .max_per_entry = 6, .invalid_every = 89};
    ft_publisher_t *pre = ft_publish_start(&before);
    IT_WAIT_UNTIL(ft_raw_count_prefix("pre-") > 0, IT_WAIT_MS,
                  "nothing committed before the fault");
    ft_published_t pre_out;
    ft_publish_stop(pre, &pre_out);
    ft_publish_lost_ok(pre);
    long long pre_committed = ft_raw_count_prefix("pre-");
    ft_redis_stop(SIGTERM); /* no AOF, no snapshot: the stream and the group are gone */
    it_sleep_ms(2000);
    it_check_agents();
    ft_redis_start();
    int64_t back = it_now_ms();

    /* After: every event published on the new, empty Redis must be ingested. */
    ft_publish_opts_t after = {
        .run_prefix = "post-", .events = events, .max_per_entry = 6, .invalid_every = 89};
    ft_publisher_t *post = ft_publish_start(&after);
    double ready_s = wait_redis_ready(a, back);
    ft_published_t post_out;
    ft_publish_wait(post, &post_out);
    double seconds = ft_wait_visible("post-", post_out.valid_events, back);
    ft_report("redis_restart_without_persistence", seconds, post_out.valid_events,
              "ready_seconds=%.1f lost_before=%lld", ready_s,
              pre_out.valid_events - ft_raw_count_prefix("pre-"));

    /* What had committed stays; a batch in flight at the restart may add to it; nothing
     * beyond what was published. */
    long long pre_rows = ft_raw_count_prefix("pre-");
    cr_assert(pre_rows >= pre_committed && pre_rows <= pre_out.valid_events,
              "rows of the first phase: %lld (committed at the restart %lld, published %lld)",
              pre_rows, pre_committed, pre_out.valid_events);
    ft_publisher_t *pubs[] = {pre, post};
    ft_check_outcome(pubs, 2, "post-", post_out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

/*
 * Issue 9: failed connection attempts are logged at the 1st, 2nd, 4th, 8th… of a streak
 * (and when the reason changes), each with its number, not once per attempt; the
 * connected line says how many failed.
 */
static void check_attempts_logged_sparingly(const it_agent_t *a)
{
    char *log = it_agent_log(a);
    const char *connected = strstr(log, "redis connected");
    cr_assert_not_null(connected, "no 'redis connected' line");
    const char *count = strstr(connected, "failed_attempts=");
    cr_assert_not_null(count, "the connected line does not say how many attempts failed");
    long failed = strtol(count + strlen("failed_attempts="), NULL, 10);
    cr_assert_gt(failed, 0, "Redis was absent, yet no attempt failed");
    int bound = 3; /* the first attempt, and up to two changes of reason */
    for (long k = 2; k <= failed; k *= 2)
        bound++;
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "redis connect failed")) != NULL; p++) {
        const char *end = strchr(p, '\n');
        const char *attempt = strstr(p, "attempt=");
        cr_assert(attempt != NULL && (end == NULL || attempt < end),
                  "a failed attempt without its number");
        lines++;
    }
    cr_assert(lines >= 1 && lines <= bound, "%d lines for %ld failed attempts, want 1 to %d", lines,
              failed, bound);
    free(log);
}

Test(redis_faults, agent_started_while_redis_is_absent_ingests_once_it_starts, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    ft_redis_stop(SIGTERM);
    it_agent_t *a = it_agent_start("a", NULL);
    ft_expect_waiting_for(a, "redis");

    /* The publisher waits for Redis too, and publishes as soon as it is there. */
    ft_publish_opts_t po = {
        .run_prefix = "late-", .events = events, .max_per_entry = 8, .invalid_every = 101};
    ft_publisher_t *pub = ft_publish_start(&po);
    ft_redis_start();
    int64_t back = it_now_ms();
    double ready_s = wait_redis_ready(a, back);
    check_attempts_logged_sparingly(a);
    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("late-", out.valid_events, back);
    ft_report("redis_absent_at_start", seconds, out.valid_events, "ready_seconds=%.1f", ready_s);
    ft_check_outcome(&pub, 1, "late-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

/* Redis forgets the agent's scripts (SCRIPT FLUSH, or a failover to a replica that never
 * loaded them): the next read answers NOSCRIPT, the agent reconnects, which loads them
 * again, and every event arrives exactly once. */
Test(redis_faults, agent_reloads_its_scripts_after_redis_forgot_them, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    it_agent_t *a = it_agent_start("a", NULL);
    it_agent_wait_ready(a);
    ft_publish_opts_t po = {
        .run_prefix = "flush-", .events = events, .max_per_entry = 6, .events_per_s = events / 4.0};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("flush-") > 0, IT_WAIT_MS,
                  "nothing committed before the flush");
    freeReplyObject(it_redis("SCRIPT FLUSH"));
    int64_t flushed = it_now_ms();
    IT_WAIT_UNTIL(it_metric(a, "exectime_redis_reconnects_total") >= 1, IT_WAIT_MS,
                  "the agent did not reconnect after NOSCRIPT");
    double ready_s = wait_redis_ready(a, flushed);
    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("flush-", out.valid_events, flushed);
    ft_report("redis_scripts_flushed", seconds, out.valid_events, "ready_seconds=%.1f", ready_s);
    ft_check_outcome(&pub, 1, "flush-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

/* --- a flapping Redis ---------------------------------------------------------------- */

/* A second session on the private PostgreSQL holding an ACCESS EXCLUSIVE lock on the raw
 * table: the writer's batches wait, so what the agent read stays pending on it. Closed
 * by the test, or by the teardown when the test fails first. */
static PGconn *table_lock;

static void lock_raw_table(void)
{
    table_lock = PQconnectdb(it.db_admin_url);
    cr_assert(PQstatus(table_lock) == CONNECTION_OK, "lock session: %s",
              PQerrorMessage(table_lock));
    PGresult *r = PQexec(table_lock, "BEGIN; LOCK TABLE exectime.execution_time_statistics"
                                     " IN ACCESS EXCLUSIVE MODE");
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "LOCK: %s", PQerrorMessage(table_lock));
    PQclear(r);
}

static void unlock_raw_table(void)
{
    PGresult *r = PQexec(table_lock, "COMMIT");
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "COMMIT: %s", PQerrorMessage(table_lock));
    PQclear(r);
    PQfinish(table_lock);
    table_lock = NULL;
}

static void teardown_table_lock(void)
{
    if (table_lock != NULL) {
        PQfinish(table_lock);
        table_lock = NULL;
    }
    ft_teardown();
}

/*
 * The consumer's pending entries, from XPENDING's extended form: how many, the highest
 * delivery count among them, and how many were delivered or claimed within the last
 * max_idle_ms (an entry's idle time restarts at each XREADGROUP or XCLAIM).
 */
static long long own_pending(const char *consumer, long long max_idle_ms, long long *max_count,
                             long long *touched)
{
    redisReply *r = it_redis("XPENDING %s %s - + 1000000 %s", it.stream, it.group, consumer);
    *max_count = 0;
    *touched = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *p = r->element[i]; /* [id, consumer, idle ms, deliveries] */
        cr_assert(p->type == REDIS_REPLY_ARRAY && p->elements == 4);
        *touched += p->element[2]->integer <= max_idle_ms;
        if (p->element[3]->integer > *max_count)
            *max_count = p->element[3]->integer;
    }
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

static long long dead_letter_count(void)
{
    redisReply *r = it_redis("XLEN %s", it.dead_stream);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/*
 * Valid entries the agent holds while the writer cannot commit, through Redis restarted
 * (SIGTERM, AOF on) more often than EXECTIME_MAX_DELIVERIES allows deliveries. Re-reading
 * its own pending entries after a reconnect delivers nothing new to the writer, so it
 * must not count as a delivery: none is dead-lettered, and once the database takes them
 * every event arrives exactly once. (Before the consumer kept the delivery count of its
 * own entries across reconnects, each reconnect's XCLAIM counted one, and every entry
 * held through a second reconnect was dead-lettered although valid.)
 */
Test(redis_faults, entries_held_through_redis_restarts_are_not_dead_lettered, .init = ft_setup,
     .fini = teardown_table_lock, .timeout = FT_TEST_TIMEOUT)
{
    const int events = ft_pick(2000, 8000);
    const int max_deliveries = 2;
    const int restarts = 2 * max_deliveries;
    /* Batches far larger than the load: the first batch waits for the lock and the writer
     * keeps room for the rest, so after each reconnect the agent scans its own pending
     * entries at once instead of waiting for room. The entries its batches still hold are
     * not taken up again (before, each reconnect handed all of them to the writer once
     * more: room taken twice, duplicates for the database to drop). */
    const char *env[] = {"EXECTIME_MAX_DELIVERIES=2", "EXECTIME_BATCH_MAX=50000", NULL};
    it_agent_t *a = it_agent_start("a", env);
    it_agent_wait_ready(a);

    /* No raw-table SQL from the test while the lock is held: it would wait too. */
    lock_raw_table();
    ft_publish_opts_t po = {.run_prefix = "flap-", .events = events, .max_per_entry = 6};
    ft_publisher_t *pub = ft_publish_start(&po);
    ft_published_t out;
    ft_publish_wait(pub, &out);
    IT_WAIT_UNTIL(it_consumer_pending("a") > 0, IT_WAIT_MS,
                  "the agent read nothing while the writer was blocked");
    long long held = it_consumer_pending("a");

    long long max_count_seen = 0;
    double ready_total_s = 0;
    for (int i = 0; i < restarts; i++) {
        ft_redis_stop(SIGTERM);
        ft_redis_start();
        int64_t back = it_now_ms();
        ready_total_s += wait_redis_ready(a, back);
        /* The agent scans its own pending entries after the reconnect; give it a moment,
         * then read the highest delivery count among what it holds. */
        it_sleep_ms(1000);
        long long max_count = 0, touched = 0;
        own_pending("a", 0, &max_count, &touched);
        max_count_seen = max_count > max_count_seen ? max_count : max_count_seen;
    }
    long long still_held = it_consumer_pending("a");
    long long dead_while_held = dead_letter_count();

    unlock_raw_table();
    int64_t released = it_now_ms();
    double seconds = ft_wait_visible("flap-", out.valid_events, released);
    ft_report("redis_flapping", seconds, out.valid_events,
              "restarts=%d max_deliveries=%d held_entries=%lld still_held=%lld "
              "max_delivery_count=%lld dead_letters=%lld mean_ready_seconds=%.1f",
              restarts, max_deliveries, held, still_held, max_count_seen, dead_while_held,
              ready_total_s / restarts);
    cr_assert_eq(dead_while_held, 0,
                 "%lld valid entries were dead-lettered while held through %d Redis restarts "
                 "(EXECTIME_MAX_DELIVERIES=%d; highest delivery count seen %lld)",
                 dead_while_held, restarts, max_deliveries, max_count_seen);
    ft_check_outcome(&pub, 1, "flap-", out.valid_events, false, NULL);
    cr_assert_eq(dead_letter_count(), 0, "valid entries were dead-lettered");
    double duplicates = it_metric(a, "exectime_events_duplicate_total");
    cr_assert_eq(duplicates, 0,
                 "%.0f events were handed to the writer again after reconnects although its "
                 "batches held them",
                 duplicates);
    it_agent_stop(a);
    it_pass();
}

/* --- a frozen Redis ---------------------------------------------------------------------- */

/*
 * Redis stops answering under load without closing anything (SIGSTOP: a network cut that
 * heals, as the agent sees it). The agent's reply watchdog drops the silent connection and
 * keeps trying; when Redis answers again it reconnects, re-reads what it held, and every
 * event arrives exactly once, although the commands it had sent on the dropped
 * connections run late, after the thaw. (The frozen Redis keeps its connections, so an
 * agent that only waited would resume too: the half-open scenario below is the one a
 * missing watchdog fails.) Prints the time from the thaw to /readyz redis true and to
 * every event visible, and whether /readyz said redis false while Redis was frozen.
 */
Test(redis_faults, agent_resumes_after_redis_frozen, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    const int frozen_ms = ft_pick(10000, 30000);
    it_agent_t *a = it_agent_start("a", NULL);
    it_agent_wait_ready(a);
    ft_publish_opts_t po = {.run_prefix = "frz-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 89,
                            .events_per_s = events / (3.0 + frozen_ms / 1000.0)};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("frz-") > 0, IT_WAIT_MS,
                  "nothing committed before the fault");

    /* While frozen: no Redis command from the test (it would hang). */
    ft_redis_freeze();
    bool said_down = false;
    int64_t until = it_now_ms() + frozen_ms;
    while (it_now_ms() < until) {
        it_check_agents();
        said_down = said_down || !ft_ready_part(a, "redis");
        it_sleep_ms(200);
    }
    ft_redis_thaw();
    int64_t thawed = it_now_ms();
    double ready_s = wait_redis_ready(a, thawed);

    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("frz-", out.valid_events, thawed);
    ft_report("redis_frozen", seconds, out.valid_events,
              "ready_seconds=%.1f frozen_ms=%d readyz_redis_false_while_frozen=%s", ready_s,
              frozen_ms, said_down ? "yes" : "no");
    ft_check_outcome(&pub, 1, "frz-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}

/* --- a half-open connection ---------------------------------------------------------------- */

/*
 * The agent talks to Redis through a proxy, which cuts every connection under load: the
 * Redis side is closed, the agent's side stays open and silent for good (no FIN, no RST:
 * what a failover behind a virtual address, a NAT or firewall that forgot the connection,
 * or a peer that vanished leaves behind). New connections find nothing answering until the
 * cut heals. The agent must notice the silence by itself (its reply watchdog), drop the
 * connection, reconnect once the proxy serves again, and ingest every event exactly once.
 * (An agent that waits for a reply on the dead socket never reads again.)
 */
Test(redis_faults, agent_reconnects_after_a_cut_leaves_its_connection_half_open, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    const int cut_ms = ft_pick(10000, 30000);
    char url[64];
    snprintf(url, sizeof url, "EXECTIME_REDIS_URL=redis://127.0.0.1:%d", ft_redis_proxy_start());
    const char *env[] = {url, NULL};
    it_agent_t *a = it_agent_start("a", env);
    it_agent_wait_ready(a);
    ft_publish_opts_t po = {.run_prefix = "cut-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 89,
                            .events_per_s = events / (3.0 + cut_ms / 1000.0)};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("cut-") > 0, IT_WAIT_MS,
                  "nothing committed before the fault");

    ft_redis_proxy_cut();
    bool said_down = false;
    int64_t until = it_now_ms() + cut_ms;
    while (it_now_ms() < until) {
        it_check_agents();
        said_down = said_down || !ft_ready_part(a, "redis");
        it_sleep_ms(200);
    }
    ft_redis_proxy_heal();
    int64_t healed = it_now_ms();
    double ready_s = wait_redis_ready(a, healed);

    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("cut-", out.valid_events, healed);
    ft_report("redis_half_open", seconds, out.valid_events,
              "ready_seconds=%.1f cut_ms=%d readyz_redis_false_while_cut=%s", ready_s, cut_ms,
              said_down ? "yes" : "no");
    ft_check_outcome(&pub, 1, "cut-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}
