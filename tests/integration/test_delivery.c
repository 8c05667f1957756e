/*
 * Integration tests of delivery: at-least-once from Redis turned into an exactly-once
 * effect across SIGKILL and restart, claims from a dead consumer, two agents in one group,
 * and a clean SIGTERM that commits what is in flight.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "oracle.h"
#include "timeutil.h"

Test(delivery, restart_after_sigkill_mid_load_keeps_totals_exact, IT_TEST_OPTS)
{
    enum { N = 30000, CHUNK = 1000 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 4242,
                    .tenants = 3,
                    .workflows = 7,
                    .spread_us = 2 * ET_US_PER_DAY,
                    .run_prefix = "k-"};
    it_gen_events(ev, N, &gen);

    /* Batches held up to a second keep read-but-uncommitted entries around to be killed
     * with. */
    const char *env[] = {"EXECTIME_FLUSH_MS=1000", "EXECTIME_BATCH_MAX=3000", NULL};
    it_agent_t *a = it_agent_start("c1", env);
    it_agent_wait_ready(a);
    bool killed = false;
    long long pending_at_kill = 0, committed_at_kill = 0;
    for (size_t i = 0; i < N; i += CHUNK) {
        it_publish(ev + i, CHUNK, 10, 1000 + i);
        if (killed || i < N / 3)
            continue;
        long long raw = it_raw_count();
        long long pending = it_consumer_pending("c1");
        if (raw > 0 && pending > 0) {
            it_agent_kill(a);
            killed = true;
            pending_at_kill = it_consumer_pending("c1");
            committed_at_kill = it_raw_count();
        }
        cr_assert(killed || i + 2 * CHUNK < N,
                  "never caught the agent with entries committed and others pending");
    }
    cr_assert(pending_at_kill > 0, "no entries were pending when the agent was killed");
    cr_assert(committed_at_kill > 0 && committed_at_kill < N, "%lld rows committed at the kill",
              committed_at_kill);

    it_agent_t *b = it_agent_start("c1", env); /* the same consumer: re-reads its pending */
    it_agent_wait_ready(b);
    it_wait_drained();
    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    cr_assert_eq(it_metric(b, "exectime_events_inserted_total"), N - committed_at_kill,
                 "the restarted agent inserted %g rows, %lld were missing at its start",
                 it_metric(b, "exectime_events_inserted_total"), N - committed_at_kill);
    it_agent_stop(b);
    it_pass();
}

Test(delivery, dead_consumers_entries_are_claimed, IT_TEST_OPTS)
{
    enum { N = 2000 };
    static et_event_t ev[N];
    it_gen_t gen = {
        .seed = 55, .tenants = 2, .workflows = 4, .spread_us = ET_US_PER_DAY, .run_prefix = "cl-"};
    it_gen_events(ev, N, &gen);

    /* Agent a reads everything and commits nothing: its batch waits for a minute. */
    const char *hold[] = {"EXECTIME_FLUSH_MS=60000", "EXECTIME_BATCH_MAX=50000", NULL};
    it_agent_t *a = it_agent_start("a", hold);
    it_agent_wait_ready(a);
    long long entries = (long long)it_publish(ev, N, 8, 3);
    IT_WAIT_UNTIL(it_consumer_pending("a") == entries, IT_WAIT_MS,
                  "agent a did not read all %lld entries (pending on a: %lld)", entries,
                  it_consumer_pending("a"));
    cr_assert_eq(it_raw_count(), 0, "agent a committed before its flush time");
    it_agent_kill(a);
    cr_assert_eq(it_consumer_pending("a"), entries);

    const char *claim[] = {"EXECTIME_CLAIM_IDLE_MS=1000", NULL};
    it_agent_t *b = it_agent_start("b", claim);
    it_agent_wait_ready(b);
    it_wait_drained();
    cr_assert_eq(it_consumer_pending("a"), 0);
    cr_assert_eq(it_group_pending(), 0);
    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    cr_assert_eq(it_metric(b, "exectime_events_inserted_total"), N);
    cr_assert_eq(it_metric(b, "exectime_dead_lettered_total"), 0);
    it_agent_stop(b);
    it_pass();
}

Test(delivery, two_agents_share_a_group_without_deadlock, IT_TEST_OPTS)
{
    enum { N = 20000, DUPS = N / 20 };
    static et_event_t ev[N], stream[N + DUPS];
    it_gen_t gen = {
        .seed = 2, .tenants = 3, .workflows = 5, .spread_us = ET_US_PER_DAY, .run_prefix = "two-"};
    it_gen_events(ev, N, &gen);
    /* 5% published twice, the copy a few events after the original: the two copies often
     * land with different agents at about the same time. */
    size_t len = 0;
    for (size_t i = 0; i < N; i++) {
        stream[len++] = ev[i];
        if (i % 20 == 19)
            stream[len++] = ev[i - 7];
    }
    cr_assert_eq(len, N + DUPS);

    it_agent_t *a = it_agent_start("a", NULL);
    it_agent_t *b = it_agent_start("b", NULL);
    it_agent_wait_ready(a);
    it_agent_wait_ready(b);
    it_publish(stream, len, 6, 17);
    it_wait_drained();

    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_check_rollups_match_raw_sql();
    it_verify_ok();
    double consumed_a = it_metric(a, "exectime_events_consumed_total");
    double consumed_b = it_metric(b, "exectime_events_consumed_total");
    cr_assert(consumed_a > 0 && consumed_b > 0, "one agent did all the work: a %g, b %g",
              consumed_a, consumed_b);
    cr_assert_eq(consumed_a + consumed_b, (double)len);
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total") +
                     it_metric(b, "exectime_events_inserted_total"),
                 N);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total") +
                     it_metric(b, "exectime_events_duplicate_total"),
                 DUPS);
    /* A failed batch is retried whole, so totals hold anyway; say so if it happened. */
    double failed = it_metric(a, "exectime_batches_failed_total") +
                    it_metric(b, "exectime_batches_failed_total");
    if (failed > 0) {
        for (int i = 0; i < 2; i++) {
            char *log = it_agent_log(i ? b : a);
            cr_log_warn("%g batches failed and were retried; agent %s logged a deadlock: %s",
                        failed, i ? "b" : "a", strstr(log, "deadlock") ? "yes" : "no");
            free(log);
        }
    }
    it_agent_stop(a);
    it_agent_stop(b);
    it_pass();
}

Test(delivery, sigterm_commits_in_flight_and_exits_zero, IT_TEST_OPTS)
{
    enum { N = 300 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 15,
                    .tenants = 2,
                    .workflows = 3,
                    .spread_us = ET_US_PER_DAY,
                    .run_prefix = "term-"};
    it_gen_events(ev, N, &gen);

    /* Nothing is written before SIGTERM: the batch would wait a minute. */
    const char *hold[] = {"EXECTIME_FLUSH_MS=60000", "EXECTIME_BATCH_MAX=50000", NULL};
    it_agent_t *a = it_agent_start("c1", hold);
    it_agent_wait_ready(a);
    long long entries = (long long)it_publish(ev, N, 5, 9);
    IT_WAIT_UNTIL(it_consumer_pending("c1") == entries, IT_WAIT_MS,
                  "the agent did not read all %lld entries (pending %lld)", entries,
                  it_consumer_pending("c1"));
    cr_assert_eq(it_raw_count(), 0, "the agent committed before its flush time");

    it_agent_stop(a); /* SIGTERM; expects exit status 0 */
    cr_assert_eq(it_group_pending(), 0, "entries left unacknowledged after SIGTERM");
    cr_assert(it_stream_drained());
    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_pass();
}

Test(delivery, an_entry_delivered_too_often_is_dead_lettered, IT_TEST_OPTS)
{
    enum { N = 60 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 31,
                    .tenants = 1,
                    .workflows = 2,
                    .spread_us = ET_US_PER_HOUR,
                    .run_prefix = "often-"};
    it_gen_events(ev, N, &gen);

    const char *hold[] = {"EXECTIME_FLUSH_MS=60000", "EXECTIME_BATCH_MAX=50000", NULL};
    it_agent_t *a = it_agent_start("a", hold);
    it_agent_wait_ready(a);
    long long entries = (long long)it_publish(ev, N, 4, 8);
    IT_WAIT_UNTIL(it_consumer_pending("a") == entries, IT_WAIT_MS,
                  "agent a did not read all %lld entries", entries);
    it_agent_kill(a);

    /* Delivered once to a; b's claim is the second delivery, one more than allowed. */
    const char *strict[] = {"EXECTIME_CLAIM_IDLE_MS=1000", "EXECTIME_MAX_DELIVERIES=1", NULL};
    it_agent_t *b = it_agent_start("b", strict);
    it_agent_wait_ready(b);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), 0, "an entry past its deliveries was stored");
    redisReply *dead = it_redis("XRANGE %s - +", it.dead_stream);
    cr_assert_eq((long long)dead->elements, entries);
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *fields = dead->element[i]->element[1];
        const char *reason = "";
        size_t event_len = 0;
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            if (strcmp(fields->element[f]->str, "reason") == 0)
                reason = fields->element[f + 1]->str;
            else if (strcmp(fields->element[f]->str, "event") == 0)
                event_len = fields->element[f + 1]->len;
        }
        cr_assert(strstr(reason, "delivered 2 times") != NULL, "reason: %s", reason);
        cr_assert(event_len > 0, "the dead letter lost the event bytes");
    }
    freeReplyObject(dead);
    cr_assert_eq(it_metric(b, "exectime_dead_lettered_total{reason=\"deliveries\"}"),
                 (double)entries);
    it_agent_stop(b);
    it_pass();
}

Test(delivery, sharded_streams_are_consumed_exactly_across_a_restart, IT_TEST_OPTS)
{
    enum { N = 8000, CHUNK = 500 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 808,
                    .tenants = 2,
                    .workflows = 4,
                    .spread_us = ET_US_PER_DAY,
                    .run_prefix = "shard-"};
    it_gen_events(ev, N, &gen);
    it_use_two_streams();

    const char *env[] = {"EXECTIME_FLUSH_MS=1000", "EXECTIME_BATCH_MAX=1500", NULL};
    it_agent_t *a = it_agent_start("c1", env);
    it_agent_wait_ready(a);
    bool killed = false;
    for (size_t i = 0; i < N; i += CHUNK) {
        it_publish(ev + i, CHUNK, 5, 77 + i);
        if (!killed && i >= N / 4 && it_raw_count() > 0 && it_consumer_pending("c1") > 0) {
            it_agent_kill(a);
            killed = true;
        }
    }
    cr_assert(killed, "never caught the agent with entries committed and others pending");

    it_agent_t *b = it_agent_start("c1", env);
    it_agent_wait_ready(b);
    it_wait_drained();
    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_agent_stop(b);
    it_pass();
}

static long long stream_len(void)
{
    redisReply *r = it_redis("XLEN %s", it.stream);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

Test(delivery, trimming_keeps_entries_another_group_has_not_acknowledged, IT_TEST_OPTS)
{
    enum { N = 200, HALF = N / 2 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 64,
                    .tenants = 1,
                    .workflows = 2,
                    .spread_us = ET_US_PER_HOUR,
                    .run_prefix = "trim-"};
    it_gen_events(ev, N, &gen);

    /* Another application reads the same stream with its own group. */
    freeReplyObject(it_redis("XGROUP CREATE %s other 0 MKSTREAM", it.stream));
    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    size_t entries = it_publish(ev, N, 1, 5);
    cr_assert_eq(entries, N);
    it_wait_drained();
    it_check_totals(ev, N);
    cr_assert_eq(stream_len(), N, "entries were trimmed before the other group read them");

    /* The other group acknowledges the first half: only that half may go. */
    redisReply *r =
        it_redis("XREADGROUP GROUP other reader COUNT %d STREAMS %s >", HALF, it.stream);
    cr_assert(r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    const redisReply *read = r->element[0]->element[1];
    cr_assert_eq(read->elements, HALF);
    for (size_t i = 0; i < read->elements; i++)
        freeReplyObject(it_redis("XACK %s other %s", it.stream, read->element[i]->element[0]->str));
    freeReplyObject(r);
    IT_WAIT_UNTIL(stream_len() == N - HALF, IT_WAIT_MS,
                  "the agent did not trim to the other group's position: length %lld, "
                  "expected %d",
                  stream_len(), N - HALF);

    /* And the rest once the other group has them too. */
    r = it_redis("XREADGROUP GROUP other reader COUNT %d STREAMS %s >", N, it.stream);
    read = r->element[0]->element[1];
    cr_assert_eq(read->elements, N - HALF, "the other group lost entries it never read");
    for (size_t i = 0; i < read->elements; i++)
        freeReplyObject(it_redis("XACK %s other %s", it.stream, read->element[i]->element[0]->str));
    freeReplyObject(r);
    IT_WAIT_UNTIL(stream_len() == 0, IT_WAIT_MS,
                  "the agent did not trim entries every group acknowledged: length %lld",
                  stream_len());
    it_agent_stop(a);
    it_pass();
}

/* True when the group lists a consumer of that name on the first stream. */
static bool group_has_consumer(const char *name)
{
    redisReply *r = it_redis("XINFO CONSUMERS %s %s", it.stream, it.group);
    bool found = false;
    for (size_t i = 0; i < r->elements && !found; i++) {
        const redisReply *info = r->element[i];
        for (size_t f = 0; f + 1 < info->elements; f += 2)
            if (strcmp(info->element[f]->str, "name") == 0 &&
                strcmp(info->element[f + 1]->str, name) == 0)
                found = true;
    }
    freeReplyObject(r);
    return found;
}

/* Restarts under new names leave consumers behind; the idle ones with nothing pending
 * go, one that still holds entries stays (deleting it would drop them from the group). */
Test(delivery, idle_consumers_with_nothing_pending_are_removed_and_holders_kept, IT_TEST_OPTS)
{
    enum { N = 40 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 77,
                    .tenants = 1,
                    .workflows = 3,
                    .spread_us = ET_US_PER_DAY,
                    .run_prefix = "idle-"};
    it_gen_events(ev, N, &gen);
    it_publish(ev, N, 1, 1);
    /* A consumer left empty by a restart, and one that read 5 entries and died. */
    freeReplyObject(it_redis("XGROUP CREATE %s %s 0 MKSTREAM", it.stream, it.group));
    freeReplyObject(it_redis("XGROUP CREATECONSUMER %s %s ghost", it.stream, it.group));
    freeReplyObject(
        it_redis("XREADGROUP GROUP %s holder COUNT 5 STREAMS %s >", it.group, it.stream));
    cr_assert_eq(it_consumer_pending("holder"), 5);

    const char *env[] = {"EXECTIME_CONSUMER_EXPIRE_MS=10000", NULL}; /* claims: 60 s */
    it_agent_t *a = it_agent_start("live", env);
    it_agent_wait_ready(a);
    IT_WAIT_UNTIL(it_raw_count() == N - 5, IT_WAIT_MS, "the free entries were not stored");
    IT_WAIT_UNTIL(!group_has_consumer("ghost"), IT_WAIT_MS,
                  "the idle consumer with nothing pending was never removed");
    cr_assert(group_has_consumer("holder"), "a consumer holding entries was removed");
    cr_assert_eq(it_consumer_pending("holder"), 5, "the holder's entries left its list");
    cr_assert(group_has_consumer("live"));
    cr_assert_geq(it_metric(a, "exectime_consumers_removed_total"), 1);
    it_agent_stop(a);
    it_pass();
}
