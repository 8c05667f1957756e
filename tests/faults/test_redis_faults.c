/*
 * Redis faults under load: restarted with AOF on (SIGTERM: a clean shutdown; SIGKILL: what
 * the AOF had), restarted WITHOUT persistence (the stream and the group vanish and the
 * agent must recreate them), and absent when the agent starts. Each prints how long after
 * Redis accepted connections again the agent's /readyz said redis true, and how long
 * until every event was visible.
 */
#include <criterion/criterion.h>
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
    ft_publish_opts_t po = {.run_prefix = "aof-", .events = events, .max_per_entry = 6,
                            .invalid_every = 89,
                            .events_per_s = events / (3.0 + down_ms / 1000.0)};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("aof-") > 0, IT_WAIT_MS, "nothing committed before the fault");

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
    ft_publish_opts_t before = {.run_prefix = "pre-", .events = 3 * events, .max_per_entry = 6,
                                .invalid_every = 89};
    ft_publisher_t *pre = ft_publish_start(&before);
    IT_WAIT_UNTIL(ft_raw_count_prefix("pre-") > 0, IT_WAIT_MS, "nothing committed before the fault");
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
    ft_publish_opts_t after = {.run_prefix = "post-", .events = events, .max_per_entry = 6,
                               .invalid_every = 89};
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

Test(redis_faults, agent_started_while_redis_is_absent_ingests_once_it_starts, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    ft_redis_stop(SIGTERM);
    it_agent_t *a = it_agent_start("a", NULL);
    ft_expect_waiting_for(a, "redis");

    /* The publisher waits for Redis too, and publishes as soon as it is there. */
    ft_publish_opts_t po = {.run_prefix = "late-", .events = events, .max_per_entry = 8,
                            .invalid_every = 101};
    ft_publisher_t *pub = ft_publish_start(&po);
    ft_redis_start();
    int64_t back = it_now_ms();
    double ready_s = wait_redis_ready(a, back);
    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("late-", out.valid_events, back);
    ft_report("redis_absent_at_start", seconds, out.valid_events, "ready_seconds=%.1f", ready_s);
    ft_check_outcome(&pub, 1, "late-", out.valid_events, false, NULL);
    it_agent_stop(a);
    it_pass();
}
