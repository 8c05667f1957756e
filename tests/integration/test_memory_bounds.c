/*
 * Integration tests of the agent's memory bounds against real Redis and PostgreSQL: an
 * oversized entry is refused without its bytes ever reaching the agent, and entries that
 * each hold many events never swell a batch past EXECTIME_BATCH_MAX plus one entry.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_codec.h"
#include "harness.h"
#include "oracle.h"
#include "timeutil.h"

/* VmHWM or VmRSS of the agent, in KiB. */
static long proc_kib(const it_agent_t *a, const char *name)
{
    long kib = it_proc_kib(a->pid, name);
    cr_assert_geq(kib, 0, "no %s for pid %d", name, (int)a->pid);
    return kib;
}

static long long dead_count(void)
{
    redisReply *r = it_redis("XLEN %s", it.dead_stream);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static et_event_t make_event(const char *run, int64_t finished_us)
{
    et_event_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.tenant_id, sizeof e.tenant_id, "t-mem");
    snprintf(e.workflow_id, sizeof e.workflow_id, "wf-%d", (int)(finished_us % 7));
    snprintf(e.run_id, sizeof e.run_id, "%s", run);
    e.status = ET_STATUS_SUCCESS;
    e.finished_us = finished_us;
    e.duration_us = 1000 + finished_us % 5000;
    return e;
}

#define BIG_BYTES (32u << 20)
#define BIG_ENTRIES 4

/* Before: hiredis buffered each 32 MiB entry whole (four took VmHWM from ~20 to 117 MB)
 * only for the agent to refuse it. Now the read script leaves its bytes in Redis. */
Test(memory_bounds, oversized_entries_are_refused_without_their_bytes_reaching_the_agent,
     IT_TEST_OPTS)
{
    it_agent_t *a = it_agent_start("mem-1", NULL);
    it_agent_wait_ready(a);
    long hwm_before = proc_kib(a, "VmHWM");

    char *big = malloc(BIG_BYTES);
    cr_assert_not_null(big);
    memset(big, 0x91, BIG_BYTES); /* not msgpack either: only its size may decide */
    char id[64];
    for (int i = 0; i < BIG_ENTRIES; i++)
        it_xadd_raw(big, BIG_BYTES, id, sizeof id);
    free(big);
    et_event_t after = make_event("after-the-big-ones", et_now_us() - 1000);
    char *bytes;
    size_t len;
    it_encode(&after, 1, 0, &bytes, &len);
    it_xadd_raw(bytes, len, id, sizeof id);
    free(bytes);

    IT_WAIT_UNTIL(dead_count() == BIG_ENTRIES && it_raw_count() == 1, IT_WAIT_MS,
                  "the big entries were not all dead-lettered, or the next event not stored");
    it_wait_drained();
    redisReply *r = it_redis("XRANGE %s - +", it.dead_stream);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *fields = r->element[i]->element[1];
        bool reason_ok = false;
        for (size_t f = 0; f + 1 < fields->elements; f += 2) {
            const char *name = fields->element[f]->str, *value = fields->element[f + 1]->str;
            if (strcmp(name, "reason") == 0)
                reason_ok = strstr(value, "33554432 bytes, more than the limit") != NULL;
            if (strcmp(name, "event") == 0)
                cr_assert_eq(fields->element[f + 1]->len, 0, "a dead letter kept the bytes");
        }
        cr_assert(reason_ok, "dead letter %zu lacks the size reason", i);
    }
    freeReplyObject(r);
    long hwm_after = proc_kib(a, "VmHWM");
    printf("MEMORY oversized_entries=%d entry_mib=%u vmhwm_before_kib=%ld vmhwm_after_kib=%ld\n",
           BIG_ENTRIES, BIG_BYTES >> 20, hwm_before, hwm_after);
    cr_assert_lt(hwm_after - hwm_before, (long)(BIG_BYTES >> 10),
                 "VmHWM grew by %ld KiB: an oversized entry reached the agent",
                 hwm_after - hwm_before);
    it_agent_stop(a);
    it_verify_ok();
    it_pass();
}

#define WIDE_ENTRIES 60
#define WIDE_EVENTS ET_ENTRY_MAX_EVENTS

/* Before: a read took up to 128 entries whatever they held, so 1,000-event entries made
 * batches of 50,000+ events with EXECTIME_BATCH_MAX 5,000. */
Test(memory_bounds, entries_of_many_events_keep_batches_within_batch_max_and_one_entry,
     IT_TEST_OPTS)
{
    et_event_t *events = calloc(WIDE_EVENTS, sizeof *events);
    cr_assert_not_null(events);
    int64_t now = et_now_us();
    char id[64], run[64];
    for (int e = 0; e < WIDE_ENTRIES; e++) {
        for (int k = 0; k < WIDE_EVENTS; k++) {
            snprintf(run, sizeof run, "wide-%d-%d", e, k);
            events[k] = make_event(run, now - 1000 - e * WIDE_EVENTS - k);
        }
        char *bytes;
        size_t len;
        it_encode(events, WIDE_EVENTS, IT_ENC_ARRAY, &bytes, &len);
        it_xadd_raw(bytes, len, id, sizeof id);
        free(bytes);
    }
    free(events);
    /* Published before the agent starts: the whole backlog is there at its first read. */
    const char *env[] = {"EXECTIME_BATCH_MAX=5000", NULL};
    it_agent_t *a = it_agent_start("mem-2", env);
    IT_WAIT_UNTIL(it_raw_count() == WIDE_ENTRIES * WIDE_EVENTS, IT_WAIT_MS,
                  "not every event was stored");
    it_wait_drained();
    double batches = it_metric(a, "exectime_batch_events_count");
    double within = it_metric(a, "exectime_batch_events_bucket{le=\"10000\"}");
    printf("MEMORY wide_entries=%d events_per_entry=%d batches=%.0f batches_over_10000=%.0f\n",
           WIDE_ENTRIES, WIDE_EVENTS, batches, batches - within);
    cr_assert_gt(batches, 0);
    cr_assert_eq(within, batches, "%.0f batches held more than 10,000 events (batch max 5,000)",
                 batches - within);
    it_agent_stop(a);
    it_verify_ok();
    it_pass();
}

#define JUNK_ENTRIES 400
#define JUNK_BYTES 20000

/* The dead-letter stream is bounded in entries (MAXLEN ~) and in the bytes each keeps;
 * before, every dead letter kept its whole event (up to 1 MiB) and 100,000 of them. */
Test(memory_bounds, dead_letters_are_capped_in_number_and_in_bytes, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_DEAD_LETTER_MAXLEN=100", "EXECTIME_DEAD_LETTER_MAX_BYTES=1000",
                         NULL};
    it_agent_t *a = it_agent_start("mem-3", env);
    it_agent_wait_ready(a);
    char *junk = malloc(JUNK_BYTES);
    cr_assert_not_null(junk);
    memset(junk, 0xc1, JUNK_BYTES); /* 0xc1 is never valid msgpack */
    char id[64];
    for (int i = 0; i < JUNK_ENTRIES; i++)
        it_xadd_raw(junk, JUNK_BYTES, id, sizeof id);
    free(junk);
    IT_WAIT_UNTIL(it_metric(a, "exectime_dead_lettered_total") == JUNK_ENTRIES, IT_WAIT_MS,
                  "not every junk entry was dead-lettered");
    it_wait_drained();
    long long kept = dead_count();
    printf("MEMORY dead_letters_published=%d kept=%lld\n", JUNK_ENTRIES, kept);
    cr_assert_lt(kept, JUNK_ENTRIES, "the dead-letter stream was not trimmed (%lld)", kept);
    redisReply *r = it_redis("XREVRANGE %s + - COUNT 1", it.dead_stream);
    cr_assert_eq(r->elements, 1);
    const redisReply *fields = r->element[0]->element[1];
    bool truncated = false;
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        const char *name = fields->element[f]->str;
        if (strcmp(name, "event") == 0)
            cr_assert_eq(fields->element[f + 1]->len, 1000, "kept %zu bytes",
                         fields->element[f + 1]->len);
        if (strcmp(name, "truncated") == 0)
            truncated = strcmp(fields->element[f + 1]->str, "20000") == 0;
    }
    cr_assert(truncated, "no field truncated with the full size");
    freeReplyObject(r);
    it_agent_stop(a);
    it_pass();
}

#define SPREAD_EVENTS 3000

/* History has a rollup key per event: a batch closes at EXECTIME_BATCH_MAX_KEYS distinct
 * keys, whatever its events (before, 50,000-event history batches took the agent to
 * 115 MiB). One read may still land after the bound: at most 128 entries. */
Test(memory_bounds, history_batches_close_at_the_rollup_key_bound, IT_TEST_OPTS)
{
    static et_event_t ev[SPREAD_EVENTS];
    int64_t now = et_now_us();
    char run[64];
    for (int i = 0; i < SPREAD_EVENTS; i++) {
        snprintf(run, sizeof run, "spread-%d", i);
        ev[i] = make_event(run, now - (int64_t)(i + 1) * 60 * ET_US_PER_SEC); /* a minute each */
    }
    it_publish(ev, SPREAD_EVENTS, 1, 1);
    const char *env[] = {"EXECTIME_BATCH_MAX_KEYS=100", NULL};
    it_agent_t *a = it_agent_start("mem-4", env);
    IT_WAIT_UNTIL(it_raw_count() == SPREAD_EVENTS, IT_WAIT_MS, "not every event was stored");
    it_wait_drained();
    double batches = it_metric(a, "exectime_batch_events_count");
    double small = it_metric(a, "exectime_batch_events_bucket{le=\"500\"}");
    printf("MEMORY spread_events=%d batch_max_keys=100 batches=%.0f over_500=%.0f\n", SPREAD_EVENTS,
           batches, batches - small);
    cr_assert_geq(batches, SPREAD_EVENTS / 228, "only %.0f batches", batches);
    cr_assert_eq(small, batches, "%.0f batches held more than 500 events (100 keys + a read)",
                 batches - small);
    it_agent_stop(a);
    it_verify_ok();
    it_pass();
}
