/*
 * Integration tests of the ingest path against real servers: every event counted exactly
 * once in raw rows and in minute/hour/day rollups, republished events changing nothing,
 * malformed entries dead-lettered with their reasons, and events from a Python publisher
 * (msgpack timestamps) counted once.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oracle.h"
#include "sketch.h"
#include "timeutil.h"

/* Puts the edge cases in, whatever the generator drew: both ends of the duration range,
 * boundaries of each bucket size, and every status. */
static void force_edge_cases(et_event_t *ev, size_t n)
{
    cr_assert(n >= 16);
    int64_t now = et_now_us();
    ev[0].duration_us = 0;
    ev[1].duration_us = 1;
    ev[2].duration_us = ET_DURATION_MAX_US;
    ev[3].duration_us = ET_DURATION_MAX_US - 1;
    ev[4].finished_us = et_time_floor(now, ET_RES_DAY);                     /* today 00:00 */
    ev[5].finished_us = et_time_floor(now, ET_RES_DAY) - ET_US_PER_DAY;     /* yesterday */
    ev[6].finished_us = et_time_floor(now, ET_RES_DAY) - 2 * ET_US_PER_DAY; /* two days ago */
    ev[7].finished_us = et_time_floor(now, ET_RES_DAY) - 1; /* last µs of yesterday */
    ev[8].finished_us = et_time_floor(now - ET_US_PER_HOUR, ET_RES_HOUR);
    ev[9].finished_us = et_time_floor(now - ET_US_PER_HOUR, ET_RES_MINUTE);
    ev[10].finished_us = et_time_floor(now - ET_US_PER_HOUR, ET_RES_MINUTE) - 1;
    for (int s = 0; s < ET_STATUS_COUNT; s++)
        ev[11 + s].status = (et_status_t)s;
    for (size_t i = 0; i < 16; i++)
        if (ev[i].has_started)
            ev[i].started_us = ev[i].finished_us - ev[i].duration_us;
}

Test(ingest, ingest_counts_every_event_exactly, IT_TEST_OPTS)
{
    enum { N = 5000 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 20240601,
                    .tenants = 3,
                    .workflows = 7,
                    .spread_us = 3 * ET_US_PER_DAY,
                    .run_prefix = "run-"};
    it_gen_events(ev, N, &gen);
    force_edge_cases(ev, N);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    size_t entries = it_publish(ev, N, 20, 7);
    it_wait_drained();

    it_check_rollups_match(ev, N);
    it_check_rollups_match_raw_sql();
    it_check_totals(ev, N);
    it_verify_ok();
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), N);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total"), 0);
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total"), 0);
    cr_assert_eq(it_metric(a, "exectime_entries_acked_total"), (double)entries);
    it_agent_stop(a);
    it_pass();
}

/* Every raw row (created_at included) and rollup row, as one comparable string. */
static char *snapshot(void)
{
    return it_sql_text(
        "SELECT (SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY"
        "  tenant_id, run_id, finished_at)) FROM exectime.execution_time_statistics t)"
        " || ' ' || (SELECT count(*) || ':' || md5(string_agg(r::text, ',' ORDER BY"
        "  tenant_id, workflow_id, bucket, status)) FROM exectime.rollup_minute r)"
        " || ' ' || (SELECT count(*) || ':' || md5(string_agg(r::text, ',' ORDER BY"
        "  tenant_id, workflow_id, bucket, status)) FROM exectime.rollup_hour r)"
        " || ' ' || (SELECT count(*) || ':' || md5(string_agg(r::text, ',' ORDER BY"
        "  tenant_id, workflow_id, bucket, status)) FROM exectime.rollup_day r)");
}

Test(ingest, republishing_the_same_events_changes_nothing, IT_TEST_OPTS)
{
    enum { N = 2000 };
    static et_event_t ev[N], again[N];
    it_gen_t gen = {.seed = 77,
                    .tenants = 2,
                    .workflows = 5,
                    .spread_us = 2 * ET_US_PER_DAY,
                    .run_prefix = "rp-"};
    it_gen_events(ev, N, &gen);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    it_publish(ev, N, 10, 1);
    it_wait_drained();
    it_check_rollups_match(ev, N);
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), N);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total"), 0);
    char *before = snapshot();

    /* Same (tenant_id, run_id, finished_at); a tenth also differ in everything else, which
     * must not matter either: the key identifies the event. */
    memcpy(again, ev, sizeof ev);
    for (size_t i = 0; i < N; i += 10) {
        again[i].duration_us = ev[i].duration_us / 2 + 12345;
        again[i].status = (et_status_t)((ev[i].status + 1) % ET_STATUS_COUNT);
        snprintf(again[i].workflow_id, sizeof again[i].workflow_id, "wf-elsewhere");
        again[i].has_started = false;
    }
    it_publish(again, N, 25, 2); /* other entry boundaries than the first time */
    it_wait_drained();
    char *after = snapshot();
    cr_assert_str_eq(after, before, "republishing changed rows: before %s, after %s", before,
                     after);
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), N);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total"), N,
                 "exectime_events_duplicate_total is %g, %d events were republished",
                 it_metric(a, "exectime_events_duplicate_total"), N);
    it_agent_stop(a);
    free(after);

    /* A third time to a fresh agent, whose first batches hold nothing new (as after a
     * restart that re-reads entries committed just before a crash). */
    it_agent_t *b = it_agent_start("c2", NULL);
    it_agent_wait_ready(b);
    it_publish(ev, N, 10, 3);
    it_wait_drained();
    after = snapshot();
    cr_assert_str_eq(after, before, "republishing to a fresh agent changed rows");
    cr_assert_eq(it_metric(b, "exectime_events_inserted_total"), 0);
    cr_assert_eq(it_metric(b, "exectime_events_duplicate_total"), N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_agent_stop(b);
    free(before);
    free(after);
    it_pass();
}

/* --- malformed entries ------------------------------------------------------------------ */

typedef enum bad_kind {
    BAD_NOT_MSGPACK,
    BAD_MISSING_KEY,
    BAD_WRONG_TYPE,
    BAD_NEGATIVE_DURATION,
    BAD_FUTURE,
    BAD_BEFORE_2000,
    BAD_LONG_TENANT,
    BAD_NO_EVENT_FIELD,
    BAD_ARRAY_ELEMENT,
    BAD_TOO_OLD,
    BAD_TOO_LONG,
    BAD_TOO_MANY,
    BAD_TOO_LARGE,
    BAD_ENQUEUED_AFTER_START,
    BAD_ENQUEUED_TOO_EARLY,
    BAD_COUNT
} bad_kind_t;

typedef struct bad_case {
    const char *reason;       /* must appear in the dead letter's reason */
    const char *reason_class; /* label of exectime_dead_lettered_total */
} bad_case_t;

static const bad_case_t bad_cases[BAD_COUNT] = {
    [BAD_NOT_MSGPACK] = {"not msgpack", "invalid"},
    [BAD_MISSING_KEY] = {"run_id: missing", "invalid"},
    [BAD_WRONG_TYPE] = {"status: expected str", "invalid"},
    [BAD_NEGATIVE_DURATION] = {"duration_us: negative", "invalid"},
    [BAD_FUTURE] = {"finished_at: more than 1 hour in the future", "invalid"},
    [BAD_BEFORE_2000] = {"finished_at: before 2000", "invalid"},
    [BAD_LONG_TENANT] = {"tenant_id: 65 bytes", "invalid"},
    [BAD_NO_EVENT_FIELD] = {"\"event\"", "no_event"},
    [BAD_ARRAY_ELEMENT] = {"event[1]: status: unknown value \"done\"", "invalid"},
    [BAD_TOO_OLD] = {"finished_at: older than the accepted window", "invalid"},
    [BAD_TOO_LONG] = {"duration_us: 2592000000001 is more than 30 days", "invalid"},
    [BAD_TOO_MANY] = {"event: array of 1001 events, more than the 1000 allowed", "invalid"},
    [BAD_TOO_LARGE] = {"event is 1048577 bytes, more than the limit", "too_large"},
    [BAD_ENQUEUED_AFTER_START] = {"(must be <= started_at <= finished_at)", "invalid"},
    [BAD_ENQUEUED_TOO_EARLY] = {"enqueued_at: a queue wait of more than 30 days", "invalid"},
};

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A map like a good event, with one thing wrong according to kind. */
static void pack_bad_map(msgpack_packer *pk, const et_event_t *e, bad_kind_t kind)
{
    char tenant[80];
    snprintf(tenant, sizeof tenant, "%s", e->tenant_id);
    if (kind == BAD_LONG_TENANT)
        snprintf(tenant, sizeof tenant, "%065d", 7);
    int64_t finished = e->finished_us;
    if (kind == BAD_FUTURE)
        finished = et_now_us() + 2 * ET_US_PER_HOUR;
    else if (kind == BAD_BEFORE_2000)
        finished = ET_TIME_MIN_VALID_US - ET_US_PER_SEC;
    else if (kind == BAD_TOO_OLD) /* past the default raw retention of 30 days */
        finished = et_now_us() - 31 * ET_US_PER_DAY;
    bool enqueued = kind == BAD_ENQUEUED_AFTER_START || kind == BAD_ENQUEUED_TOO_EARLY;
    msgpack_pack_map(pk, kind == BAD_MISSING_KEY ? 6 : enqueued ? 8 : 7);
    pack_cstr(pk, "v");
    msgpack_pack_uint8(pk, 1);
    pack_cstr(pk, "tenant_id");
    pack_cstr(pk, tenant);
    pack_cstr(pk, "workflow_id");
    pack_cstr(pk, e->workflow_id);
    if (kind != BAD_MISSING_KEY) {
        pack_cstr(pk, "run_id");
        pack_cstr(pk, e->run_id);
    }
    pack_cstr(pk, "status");
    if (kind == BAD_WRONG_TYPE)
        msgpack_pack_int(pk, 1);
    else if (kind == BAD_ARRAY_ELEMENT)
        pack_cstr(pk, "done");
    else
        pack_cstr(pk, et_status_name(e->status));
    pack_cstr(pk, "finished_at");
    msgpack_pack_int64(pk, finished);
    pack_cstr(pk, "duration_us");
    if (kind == BAD_NEGATIVE_DURATION)
        msgpack_pack_int64(pk, -5);
    else if (kind == BAD_TOO_LONG)
        msgpack_pack_uint64(pk, (uint64_t)ET_DURATION_MAX_US + 1);
    else
        msgpack_pack_uint64(pk, (uint64_t)e->duration_us);
    if (enqueued) {
        int64_t start = finished - e->duration_us;
        pack_cstr(pk, "enqueued_at");
        msgpack_pack_int64(pk, kind == BAD_ENQUEUED_AFTER_START
                                   ? start + 1
                                   : start - ET_DURATION_MAX_US - ET_US_PER_SEC);
    }
}

/* Bytes of the bad entry: the `event` value as published. */
static void bad_bytes(bad_kind_t kind, const et_event_t *good, const et_event_t *filler,
                      msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (kind == BAD_NOT_MSGPACK) {
        static const char junk[] = "\xc1 this is not msgpack";
        msgpack_sbuffer_write(sb, junk, sizeof junk - 1);
    } else if (kind == BAD_TOO_MANY) {
        /* Valid events, one more than an entry may hold. */
        enum { MANY = ET_ENTRY_MAX_EVENTS + 1 };
        et_event_t *many = calloc(MANY, sizeof *many);
        cr_assert(many != NULL);
        it_gen_t gen = {.seed = 9,
                        .tenants = 1,
                        .workflows = 2,
                        .spread_us = ET_US_PER_HOUR,
                        .run_prefix = "many-"};
        it_gen_events(many, MANY, &gen);
        char *enc;
        size_t len;
        it_encode(many, MANY, 0, &enc, &len);
        msgpack_sbuffer_write(sb, enc, len);
        free(enc);
        free(many);
    } else if (kind == BAD_TOO_LARGE) {
        /* Over the size limit by one byte: refused before decoding. */
        char *big = malloc(ET_ENTRY_MAX_BYTES + 1);
        cr_assert(big != NULL);
        memset(big, 'x', ET_ENTRY_MAX_BYTES + 1);
        msgpack_sbuffer_write(sb, big, ET_ENTRY_MAX_BYTES + 1);
        free(big);
    } else if (kind == BAD_ARRAY_ELEMENT) {
        /* [good, bad, good]: all or nothing, so the good ones are not counted either. */
        char *enc;
        size_t len;
        msgpack_pack_array(&pk, 3);
        it_encode(&filler[0], 1, 0, &enc, &len);
        msgpack_sbuffer_write(sb, enc, len);
        free(enc);
        pack_bad_map(&pk, good, kind);
        it_encode(&filler[1], 1, 0, &enc, &len);
        msgpack_sbuffer_write(sb, enc, len);
        free(enc);
    } else {
        pack_bad_map(&pk, good, kind);
    }
}

Test(ingest, malformed_entries_are_dead_lettered_with_reasons, IT_TEST_OPTS)
{
    enum { VALID = 3 * BAD_COUNT + 3 };
    static et_event_t valid[VALID], spare[2 * BAD_COUNT];
    it_gen_t gen = {
        .seed = 5, .tenants = 2, .workflows = 3, .spread_us = ET_US_PER_DAY, .run_prefix = "ok-"};
    it_gen_events(valid, VALID, &gen);
    gen.run_prefix = "never-";
    gen.seed = 6;
    it_gen_events(spare, 2 * BAD_COUNT, &gen);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);

    char ids[BAD_COUNT][64];
    msgpack_sbuffer bytes[BAD_COUNT];
    size_t v = 0;
    for (int k = 0; k < BAD_COUNT; k++) {
        /* Valid events before and after each bad entry, one of them inside an array. */
        it_publish(&valid[v], 1, 1, (uint64_t)k);
        it_publish(&valid[v + 1], 2, 2, (uint64_t)k);
        v += 3;
        msgpack_sbuffer_init(&bytes[k]);
        bad_bytes((bad_kind_t)k, &spare[2 * k], &spare[2 * k], &bytes[k]);
        if (k == BAD_NO_EVENT_FIELD) {
            redisReply *r =
                it_redis("XADD %s * payload %b", it.stream, bytes[k].data, bytes[k].size);
            snprintf(ids[k], sizeof ids[k], "%s", r->str);
            freeReplyObject(r);
        } else {
            it_xadd_raw(bytes[k].data, bytes[k].size, ids[k], sizeof ids[k]);
        }
    }
    it_publish(&valid[v], VALID - v, 3, 99);
    it_wait_drained();

    /* Valid events all counted, nothing of the bad entries. */
    it_check_rollups_match(valid, VALID);
    cr_assert_eq(it_group_pending(), 0);

    redisReply *dead = it_redis("XRANGE %s - +", it.dead_stream);
    cr_assert_eq(dead->elements, BAD_COUNT, "%zu dead letters, expected %d", dead->elements,
                 BAD_COUNT);
    for (int k = 0; k < BAD_COUNT; k++) {
        const redisReply *found = NULL;
        for (size_t i = 0; i < dead->elements && !found; i++) {
            const redisReply *fields = dead->element[i]->element[1];
            for (size_t f = 0; f + 1 < fields->elements; f += 2)
                if (strcmp(fields->element[f]->str, "id") == 0 &&
                    strcmp(fields->element[f + 1]->str, ids[k]) == 0)
                    found = fields;
        }
        cr_assert(found != NULL, "no dead letter for entry %s (case %d, %s)", ids[k], k,
                  bad_cases[k].reason);
        const redisReply *reason = NULL, *event = NULL;
        for (size_t f = 0; f + 1 < found->elements; f += 2) {
            if (strcmp(found->element[f]->str, "reason") == 0)
                reason = found->element[f + 1];
            else if (strcmp(found->element[f]->str, "event") == 0)
                event = found->element[f + 1];
        }
        cr_assert(reason != NULL && event != NULL, "dead letter of %s lacks reason or event",
                  ids[k]);
        cr_assert(strstr(reason->str, bad_cases[k].reason) != NULL,
                  "dead letter of %s: reason \"%s\" does not say \"%s\"", ids[k], reason->str,
                  bad_cases[k].reason);
        cr_assert(strchr(reason->str, '\n') == NULL, "reason is not one line: %s", reason->str);
        if (k == BAD_NO_EVENT_FIELD || k == BAD_TOO_LARGE) {
            /* No event field to copy; an oversized one is not copied (the dead-letter
             * stream keeps up to 100,000 entries and must not hold that many MiB). */
            cr_assert_eq(event->len, 0, "dead letter of %s holds %zu bytes", ids[k], event->len);
        } else {
            /* A dead letter keeps at most EXECTIME_DEAD_LETTER_MAX_BYTES (64 KiB) of it. */
            size_t kept = bytes[k].size < 65536 ? bytes[k].size : 65536;
            cr_assert(event->len == kept && memcmp(event->str, bytes[k].data, kept) == 0,
                      "dead letter of %s does not hold the original bytes", ids[k]);
        }
        msgpack_sbuffer_destroy(&bytes[k]);
    }
    freeReplyObject(dead);

    cr_assert_eq(it_http_get(a->port, "/healthz", NULL), 200);
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total"), BAD_COUNT);
    static const char *const classes[] = {"invalid", "no_event", "too_large"};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        int want = 0;
        for (int k = 0; k < BAD_COUNT; k++)
            want += strcmp(bad_cases[k].reason_class, classes[c]) == 0;
        char series[128];
        snprintf(series, sizeof series, "exectime_dead_lettered_total{reason=\"%s\"}", classes[c]);
        cr_assert_eq(it_metric(a, series), want, "%s is %g, expected %d", series,
                     it_metric(a, series), want);
    }
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), VALID);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}

/* --- another language ------------------------------------------------------------------- */

/* Reads the publisher's manifest: one valid event per line. */
static size_t read_manifest(const char *path, et_event_t *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert(f != NULL, "publisher wrote no manifest at %s", path);
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert(n < cap);
        et_event_t *e = &out[n++];
        memset(e, 0, sizeof *e);
        char status[32];
        long long fin, dur, st;
        int got = sscanf(line, "%64[^\t]\t%128[^\t]\t%lld\t%128[^\t]\t%31[^\t]\t%lld\t%lld",
                         e->tenant_id, e->run_id, &fin, e->workflow_id, status, &dur, &st);
        cr_assert_eq(got, 7, "bad manifest line: %s", line);
        cr_assert(et_status_parse(status, strlen(status), &e->status) == 0);
        e->finished_us = fin;
        e->duration_us = dur;
        e->started_us = st;
        e->has_started = true;
    }
    fclose(f);
    return n;
}

static void run_python_publisher(int count, long long base_s, const char *manifest)
{
    const char *python = getenv("EXECTIME_PYTHON");
    const char *script = getenv("EXECTIME_PUBLISH_PY");
    cr_assert(python && *python && script && *script,
              "EXECTIME_PYTHON and EXECTIME_PUBLISH_PY are not set (meson test sets them)");
    char count_s[16], base[32];
    snprintf(count_s, sizeof count_s, "%d", count);
    snprintf(base, sizeof base, "%lld", base_s);
    const char *argv[] = {python,     script,     "--redis-url", it.redis_url, "--stream",
                          it.stream,  "--tenant", "tenant-py",   "--count",    count_s,
                          "--base-s", base,       "--manifest",  manifest,     NULL};
    char *out = NULL;
    int status = it_run(argv, NULL, &out, 120000);
    cr_assert(status == 0, "publish_py.py exited %d:\n%s", status, out);
    free(out);
}

Test(ingest, msgpack_timestamps_from_another_language_are_counted_once, IT_TEST_OPTS)
{
    enum { N = 600 };
    static et_event_t ev[N];
    char manifest[600];
    snprintf(manifest, sizeof manifest, "%s/manifest.tsv", it.tmp_dir);
    long long base_s = et_now_us() / ET_US_PER_SEC - 60;

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    run_python_publisher(N, base_s, manifest);
    it_wait_drained();
    size_t n = read_manifest(manifest, ev, N);
    cr_assert_eq(n, N);
    it_check_rollups_match(ev, n);

    run_python_publisher(N, base_s, manifest); /* the same events again */
    it_wait_drained();
    it_check_rollups_match(ev, n);
    it_check_rollups_match_raw_sql();
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), N);
    cr_assert_eq(it_metric(a, "exectime_events_duplicate_total"), N);

    /* The one event per run with a 96-bit timestamp in 2514 is refused. */
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total"), 2);
    redisReply *dead = it_redis("XRANGE %s - +", it.dead_stream);
    cr_assert_eq(dead->elements, 2);
    for (size_t i = 0; i < dead->elements; i++) {
        const redisReply *fields = dead->element[i]->element[1];
        bool named = false;
        for (size_t f = 0; f + 1 < fields->elements; f += 2)
            if (strcmp(fields->element[f]->str, "reason") == 0)
                named = strstr(fields->element[f + 1]->str, "finished_at") != NULL;
        cr_assert(named, "dead letter %zu does not name finished_at", i);
    }
    freeReplyObject(dead);
    remove(manifest);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}

/* Runs `exectime-agent verify` or `rollup-rebuild` on the test's database with the given
 * URL; returns its exit status and its output (malloc'd) in *out. */
Test(ingest, rollup_rebuild_repairs_damaged_rollups_while_an_agent_ingests, IT_TEST_OPTS)
{
    enum { N = 1500 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 91,
                    .tenants = 2,
                    .workflows = 4,
                    .spread_us = 2 * ET_US_PER_DAY,
                    .run_prefix = "rb-"};
    it_gen_events(ev, N, &gen);
    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    it_publish(ev, N, 10, 1);
    it_wait_drained();

    /* Damage every kind of way: a wrong count, a missing row, a row with no raw rows. */
    PQclear(it_sql("UPDATE exectime.rollup_hour SET runs = runs + 3, sum_us = sum_us + 1"
                   " WHERE ctid = (SELECT ctid FROM exectime.rollup_hour LIMIT 1)"));
    PQclear(it_sql("DELETE FROM exectime.rollup_day"
                   " WHERE ctid = (SELECT ctid FROM exectime.rollup_day LIMIT 1)"));
    PQclear(it_sql("INSERT INTO exectime.rollup_minute VALUES ('ghost', 'wf',"
                   " date_trunc('minute', now()), 0, 1, 5, 5, 5, '\\x0101')"));
    char *out = NULL;
    cr_assert_eq(it_agent_command("verify", it.agent_url, &out), 1,
                 "verify should see the damage: %s", out);
    cr_assert(strstr(out, "DIFF") && strstr(out, "MISSING") && strstr(out, "EXTRA"), "%s", out);
    free(out);

    /* The agent's own role may not delete rollup rows: a clear refusal, nothing changed. */
    cr_assert_eq(it_agent_command("rollup-rebuild", it.agent_url, &out), 2, "%s", out);
    cr_assert(strstr(out, "schema owner"), "%s", out);
    free(out);

    /* The owner rebuilds while the agent keeps ingesting more events. */
    static et_event_t more[N];
    it_gen_t gen2 = gen;
    gen2.seed = 92;
    gen2.run_prefix = "rb2-";
    it_gen_events(more, N, &gen2);
    it_publish(more, N, 10, 2);
    cr_assert_eq(it_agent_command("rollup-rebuild", it.db_admin_url, &out), 0, "%s", out);
    cr_assert(strstr(out, "rollup-rebuild:"), "%s", out);
    free(out);
    it_wait_drained();
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}
