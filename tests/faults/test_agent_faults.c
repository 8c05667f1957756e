/*
 * Agent faults under load: SIGKILL at random moments, restarted each time under a new
 * consumer name (its predecessors' entries must be claimed) or under the same one (it
 * re-reads its own pending entries); three agents in one group with one killed; SIGTERM.
 * Every published event must end up exactly once, nothing pending, dead letters exact.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_harness.h"

/*
 * Kills the agent `kills` times at random moments (some before it is even ready) while
 * the publisher runs, restarting it each time under a new name or the same one, then lets
 * the last one finish. The recovery time runs from the last restart.
 */
static void kill_repeatedly(const char *scenario, bool new_names)
{
    const int events = ft_pick(20000, 200000);
    const int kills = ft_pick(8, 20);
    /* Claims only in test time for the new-name variant: 1000 ms is the minimum. */
    const char *env[] = {"EXECTIME_CLAIM_IDLE_MS=1000", "EXECTIME_BATCH_MAX=2000", NULL};
    const char *fixed_env[] = {"EXECTIME_BATCH_MAX=2000", NULL};
    ft_publish_opts_t po = {.run_prefix = "kill-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 97,
                            .events_per_s = events / (kills * 1.6)};
    ft_publisher_t *pub = ft_publish_start(&po);
    char name[32];
    for (int k = 0; k < kills; k++) {
        snprintf(name, sizeof name, "%s%d", new_names ? "k" : "c", new_names ? k + 1 : 1);
        it_agent_t *a = it_agent_start(name, new_names ? env : fixed_env);
        it_sleep_ms(ft_random(300, 2500));
        it_agent_kill(a);
    }
    snprintf(name, sizeof name, "%s%d", new_names ? "k" : "c", new_names ? kills + 1 : 1);
    it_agent_t *last = it_agent_start(name, new_names ? env : fixed_env);
    int64_t restarted = it_now_ms();
    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("kill-", out.valid_events, restarted);
    ft_report(scenario, seconds, out.valid_events, "kills=%d", kills);
    ft_check_outcome(&pub, 1, "kill-", out.valid_events, true, NULL);
    it_agent_stop(last);
    it_pass();
}

Test(agent_faults, agent_sigkilled_repeatedly_under_new_names_loses_and_doubles_nothing,
     FT_TEST_OPTS)
{
    kill_repeatedly("agent_sigkill_new_names", true);
}

Test(agent_faults, agent_sigkilled_repeatedly_under_one_name_loses_and_doubles_nothing,
     FT_TEST_OPTS)
{
    kill_repeatedly("agent_sigkill_same_name", false);
}

Test(agent_faults, three_agents_take_over_the_entries_of_one_sigkilled, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    /* Batches held up to a second keep entries pending on the victim when it dies. */
    const char *env[] = {"EXECTIME_CLAIM_IDLE_MS=1000", "EXECTIME_FLUSH_MS=1000",
                         "EXECTIME_BATCH_MAX=3000", NULL};
    it_agent_t *a1 = it_agent_start("a1", env);
    it_agent_t *a2 = it_agent_start("a2", env);
    it_agent_t *a3 = it_agent_start("a3", env);
    it_agent_wait_ready(a1);
    it_agent_wait_ready(a2);
    it_agent_wait_ready(a3);
    ft_publish_opts_t po = {.run_prefix = "three-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 97,
                            .events_per_s = events / 8.0};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("three-") > 0 && it_consumer_pending("a3") > 0, IT_WAIT_MS,
                  "never caught a3 with entries pending mid-load");
    long long orphaned = it_consumer_pending("a3");
    it_agent_kill(a3);
    int64_t killed = it_now_ms();
    orphaned = it_consumer_pending("a3");
    IT_WAIT_UNTIL(it_consumer_pending("a3") == 0, IT_WAIT_MS,
                  "the other agents did not take a3's %lld entries within %d ms (left %lld)",
                  orphaned, IT_WAIT_MS, it_consumer_pending("a3"));
    double claim_s = (double)(it_now_ms() - killed) / 1000.0;

    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("three-", out.valid_events, killed);
    ft_report("three_agents_one_sigkilled", seconds, out.valid_events,
              "claim_seconds=%.1f orphaned_entries=%lld claim_idle_ms=1000", claim_s, orphaned);
    cr_assert(it_metric(a1, "exectime_entries_claimed_total") +
                      it_metric(a2, "exectime_entries_claimed_total") >=
                  (double)orphaned,
              "fewer entries claimed than a3 left behind");
    ft_check_outcome(&pub, 1, "three-", out.valid_events, true, NULL);
    it_agent_stop(a1);
    it_agent_stop(a2);
    it_pass();
}

Test(agent_faults, agent_sigterm_under_load_exits_zero_and_leaves_nothing_pending, FT_TEST_OPTS)
{
    const int events = ft_pick(20000, 200000);
    const char *env[] = {"EXECTIME_BATCH_MAX=2000", NULL};
    it_agent_t *a = it_agent_start("c1", env);
    it_agent_wait_ready(a);
    ft_publish_opts_t po = {.run_prefix = "term-",
                            .events = events,
                            .max_per_entry = 6,
                            .invalid_every = 97,
                            .events_per_s = events / 8.0};
    ft_publisher_t *pub = ft_publish_start(&po);
    IT_WAIT_UNTIL(ft_raw_count_prefix("term-") > 0, IT_WAIT_MS, "nothing committed under load");
    it_sleep_ms(1000);
    it_agent_stop(a); /* SIGTERM; expects exit status 0 */
    cr_assert_eq(it_consumer_pending("c1"), 0,
                 "entries left pending on the agent after its clean shutdown");

    it_agent_t *b = it_agent_start("c2", env);
    int64_t restarted = it_now_ms();
    ft_published_t out;
    ft_publish_wait(pub, &out);
    double seconds = ft_wait_visible("term-", out.valid_events, restarted);
    ft_report("agent_sigterm_under_load", seconds, out.valid_events, NULL);
    ft_check_outcome(&pub, 1, "term-", out.valid_events, false, NULL);
    it_agent_stop(b);
    it_pass();
}
