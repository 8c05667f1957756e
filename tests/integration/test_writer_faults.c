/*
 * Integration tests of the writer when PostgreSQL says no or does not answer: an entry the
 * database refuses is isolated by bisecting its batch, dead-lettered with the database's
 * reason, and every other entry commits exactly once; readiness follows whether events
 * flow; a shutdown that cannot commit exits non-zero and leaves its entries pending.
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

static et_event_t make_event(const char *tenant, const char *workflow, const char *run,
                             int64_t finished_us, int64_t duration_us)
{
    et_event_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.tenant_id, sizeof e.tenant_id, "%s", tenant);
    snprintf(e.workflow_id, sizeof e.workflow_id, "%s", workflow);
    snprintf(e.run_id, sizeof e.run_id, "%s", run);
    e.status = ET_STATUS_SUCCESS;
    e.finished_us = finished_us;
    e.duration_us = duration_us;
    return e;
}

/* Publishes events as one entry; writes its id. */
static void publish_entry(const et_event_t *ev, size_t n, char *id, size_t id_cap)
{
    char *bytes;
    size_t len;
    it_encode(ev, n, n > 1 ? IT_ENC_ARRAY : 0, &bytes, &len);
    it_xadd_raw(bytes, len, id, id_cap);
    free(bytes);
}

static const char *entry_field(const redisReply *entry, const char *name, size_t *len)
{
    const redisReply *fields = entry->element[1];
    for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (strcmp(fields->element[f]->str, name) == 0) {
            if (len)
                *len = fields->element[f + 1]->len;
            return fields->element[f + 1]->str;
        }
    }
    if (len)
        *len = 0;
    return "";
}

/* Every dead letter's original id is one of ids[0..n), each once, with bytes and a reason
 * holding `reason`. */
static void check_dead_letters(const char *const *ids, size_t n, const char *reason)
{
    redisReply *dead = it_redis("XRANGE %s - +", it.dead_stream);
    cr_assert_eq(dead->elements, n, "%zu dead letters, expected %zu", dead->elements, n);
    for (size_t i = 0; i < dead->elements; i++) {
        size_t event_len;
        const char *id = entry_field(dead->element[i], "id", NULL);
        const char *why = entry_field(dead->element[i], "reason", NULL);
        entry_field(dead->element[i], "event", &event_len);
        bool known = false;
        for (size_t k = 0; k < n; k++)
            known |= strcmp(ids[k], id) == 0;
        cr_assert(known, "dead letter of entry %s, which was not refused", id);
        cr_assert(strstr(why, reason) != NULL, "reason \"%s\" lacks \"%s\"", why, reason);
        cr_assert(event_len > 0, "the dead letter of %s lost the event bytes", id);
    }
    freeReplyObject(dead);
}

/* /readyz: returns the status code; *flowing tells whether the JSON says writer_flowing. */
static int readyz(const it_agent_t *a, bool *flowing)
{
    char *body = NULL;
    int status = it_http_get(a->port, "/readyz", &body);
    *flowing = body && strstr(body, "\"writer_flowing\":true") != NULL;
    bool stalled = body && strstr(body, "\"writer_flowing\":false") != NULL;
    free(body);
    return *flowing || stalled ? status : -2; /* -2: the field is missing */
}

/* A second superuser session holding an ACCESS EXCLUSIVE lock on the raw table, so the
 * writer's INSERT waits: a PostgreSQL that accepts connections but does not answer. */
static PGconn *lock_raw_table(void)
{
    PGconn *conn = PQconnectdb(it.db_admin_url);
    cr_assert(PQstatus(conn) == CONNECTION_OK, "lock session: %s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, "BEGIN; LOCK TABLE exectime.execution_time_statistics "
                                 "IN ACCESS EXCLUSIVE MODE");
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "LOCK: %s", PQerrorMessage(conn));
    PQclear(res);
    return conn;
}

static void unlock_raw_table(PGconn *conn)
{
    PGresult *res = PQexec(conn, "COMMIT");
    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK, "COMMIT: %s", PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
}

Test(writer_faults, a_rollup_overflow_dead_letters_only_the_entry_that_overflows, IT_TEST_OPTS)
{
    enum { N = 300 };
    static et_event_t ev[N];
    it_gen_t gen = {
        .seed = 41, .tenants = 4, .workflows = 3, .spread_us = ET_US_PER_HOUR, .run_prefix = "ok-"};
    it_gen_events(ev, N, &gen);

    /* A minute rollup one event short of the bigint limit: adding the poison event's
     * duration to its sum_us overflows, which no retry can cure. */
    int64_t fin = et_now_us() - 10 * ET_US_PER_MIN;
    long long bucket_s = (long long)(fin / ET_US_PER_MIN * 60);
    PQclear(it_sql("INSERT INTO exectime.rollup_minute VALUES ('poison', 'wf',"
                   " to_timestamp(%lld), 0, 1, 9223372036854775000, 1000, 1000, '{}')",
                   bucket_s));
    et_event_t poison = make_event("poison", "wf", "overflow-1", fin, 5000);

    /* Published before the agent starts, so its first read puts them in one batch. */
    size_t entries = it_publish(ev, N / 2, 10, 3);
    char poison_id[64];
    publish_entry(&poison, 1, poison_id, sizeof poison_id);
    entries += it_publish(ev + N / 2, N - N / 2, 10, 4) + 1;
    cr_assert(entries <= 128, "%zu entries do not fit one read", entries);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_wait_drained();

    const char *ids[] = {poison_id};
    check_dead_letters(ids, 1, "bigint out of range");
    cr_assert_eq(it_group_pending(), 0);
    cr_assert_eq(it_raw_count(), N);
    cr_assert_eq(it_sql_int("SELECT count(*) FROM exectime.execution_time_statistics"
                            " WHERE tenant_id = 'poison'"),
                 0);
    cr_assert_eq(it_metric(a, "exectime_entries_rejected_total"), 1.0);
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total{reason=\"rejected\"}"), 1.0);
    cr_assert_geq(it_metric(a, "exectime_batches_split_total"), 1.0);
    /* The planted row is unchanged by the refused event; remove it, then every rollup is
     * exactly the valid events'. */
    cr_assert_eq(it_sql_int("SELECT sum_us - 9223372036854775000 FROM exectime.rollup_minute"
                            " WHERE tenant_id = 'poison'"),
                 0);
    PQclear(it_sql("DELETE FROM exectime.rollup_minute WHERE tenant_id = 'poison'"));
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}

Test(writer_faults, entries_a_constraint_refuses_are_dead_lettered_and_the_rest_commits,
     IT_TEST_OPTS)
{
    enum { N = 240 };
    static et_event_t ev[N];
    it_gen_t gen = {
        .seed = 43, .tenants = 3, .workflows = 2, .spread_us = ET_US_PER_HOUR, .run_prefix = "ok-"};
    it_gen_events(ev, N, &gen);

    /* A rule of the database that the decoder does not know (as a newer schema might
     * have): PostgreSQL refuses these rows with check_violation. */
    PQclear(it_sql("ALTER TABLE exectime.execution_time_statistics ADD CONSTRAINT it_refuse"
                   " CHECK (run_id NOT LIKE 'refuse-%%')"));
    int64_t fin = et_now_us() - 5 * ET_US_PER_MIN;
    et_event_t bad1 = make_event("t0", "wf", "refuse-1", fin, 10);
    et_event_t bad2[2] = {make_event("t1", "wf", "refuse-2", fin, 20),
                          make_event("t2", "wf", "refuse-3", fin, 30)};
    /* One valid event sharing an entry with a refused one goes with it: the entry is the
     * unit of acknowledgement. */
    et_event_t mixed[2] = {make_event("t0", "wf", "mixed-ok", fin, 40),
                           make_event("t0", "wf", "refuse-4", fin, 50)};

    char ids[3][64];
    size_t entries = it_publish(ev, N / 3, 10, 5);
    publish_entry(&bad1, 1, ids[0], sizeof ids[0]);
    entries += it_publish(ev + N / 3, N / 3, 10, 6);
    publish_entry(bad2, 2, ids[1], sizeof ids[1]);
    entries += it_publish(ev + 2 * (N / 3), N - 2 * (N / 3), 10, 7);
    publish_entry(mixed, 2, ids[2], sizeof ids[2]);
    entries += 3;
    cr_assert(entries <= 128, "%zu entries do not fit one read", entries);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_wait_drained();

    const char *refused[] = {ids[0], ids[1], ids[2]};
    check_dead_letters(refused, 3, "it_refuse");
    cr_assert_eq(it_group_pending(), 0);
    cr_assert_eq(it_raw_count(), N);
    cr_assert_eq(it_metric(a, "exectime_entries_rejected_total"), 3.0);
    cr_assert_eq(it_metric(a, "exectime_dead_lettered_total{reason=\"rejected\"}"), 3.0);
    cr_assert_eq(it_metric(a, "exectime_events_inserted_total"), (double)N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}

Test(writer_faults, readiness_goes_false_while_the_writer_waits_and_back_after, IT_TEST_OPTS)
{
    enum { N = 60 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 47,
                    .tenants = 2,
                    .workflows = 2,
                    .spread_us = ET_US_PER_HOUR,
                    .run_prefix = "ready-"};
    it_gen_events(ev, N, &gen);

    it_agent_t *a = it_agent_start("c1", NULL);
    it_agent_wait_ready(a);
    bool flowing = false;
    cr_assert_eq(readyz(a, &flowing), 200, "/readyz lacks writer_flowing or is not ready");
    cr_assert(flowing);

    PGconn *lock = lock_raw_table();
    it_publish(ev, N, 3, 8);
    int status = 0;
    IT_WAIT_UNTIL((status = readyz(a, &flowing)) == 503 && !flowing, IT_WAIT_MS,
                  "/readyz stayed %d (writer_flowing %d) while the writer could not commit", status,
                  flowing);
    unlock_raw_table(lock);
    IT_WAIT_UNTIL((status = readyz(a, &flowing)) == 200 && flowing, IT_WAIT_MS,
                  "/readyz stayed %d after the lock was released", status);
    it_wait_drained();
    it_check_totals(ev, N);
    it_verify_ok();
    it_agent_stop(a);
    it_pass();
}

Test(writer_faults, a_shutdown_that_cannot_commit_exits_3_and_leaves_entries_pending, IT_TEST_OPTS)
{
    enum { N = 40 };
    static et_event_t ev[N];
    it_gen_t gen = {.seed = 53,
                    .tenants = 2,
                    .workflows = 2,
                    .spread_us = ET_US_PER_HOUR,
                    .run_prefix = "stuck-"};
    it_gen_events(ev, N, &gen);

    const char *quick[] = {"EXECTIME_SHUTDOWN_TIMEOUT_MS=1000", NULL};
    it_agent_t *a = it_agent_start("c1", quick);
    it_agent_wait_ready(a);
    PGconn *lock = lock_raw_table();
    long long entries = (long long)it_publish(ev, N, 3, 9);
    IT_WAIT_UNTIL(it_consumer_pending("c1") == entries, IT_WAIT_MS,
                  "the agent did not read all %lld entries", entries);

    it_agent_signal(a, SIGTERM);
    int status = it_agent_wait_exit(a, IT_WAIT_MS);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3,
              "a shutdown that timed out ended with status %d, expected exit 3", status);
    char *log = it_agent_log(a);
    cr_assert(strstr(log, "shutdown timed out") != NULL);
    char want[64];
    snprintf(want, sizeof want, "entries=%lld", entries);
    bool counted = strstr(log, want) != NULL;
    free(log);
    cr_assert(counted, "the log does not say %s were left", want);
    unlock_raw_table(lock);
    cr_assert_eq(it_group_pending(), entries, "entries acknowledged without a commit");

    /* The next start of the same consumer takes them up and commits them once. */
    it_agent_t *b = it_agent_start("c1", NULL);
    it_wait_drained();
    it_check_totals(ev, N);
    it_check_rollups_match(ev, N);
    it_verify_ok();
    it_agent_stop(b);
    it_pass();
}
