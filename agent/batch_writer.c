/* batch_writer — see batch_writer.h. */
#include "batch_writer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_backoff.h"
#include "et_hash.h"
#include "day_cache.h"
#include "et_macros.h"
#include "log.h"
#include "migrate.h"
#include "sketch.h"
#include "timeutil.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 10000
#define SCHEMA_RECHECK_MS 5000
/* The watchdog of a round trip beyond statement_timeout: by then the server should have
 * cancelled the statement and said so; silence means the session is dead or frozen. */
#define WATCHDOG_SLACK_MS 10000
/* Bytes of COPY text per event at most: three escaped ids, two timestamps, numbers. */
#define ROW_BYTES_MAX (2 * (ET_TENANT_ID_MAX + ET_WORKFLOW_ID_MAX + ET_RUN_ID_MAX) + 160)
/* The merged rollup rows of one batch, at most. A row takes its two histograms' bytes
 * twice (hex; run time and queue wait), up to 4 * ET_HIST_ENCODED_MAX; one entry's runs
 * touch at most 6 * ET_ENTRY_MAX_EVENTS keys, under 440 MiB even if every one held every
 * bin of both. A batch past the bound fails as a program limit (54000) and is bisected
 * until its slices fit, so the bound never refuses an entry. A bound, not an allocation:
 * the buffer grows only as far as a batch needs. */
#define ROLLUP_ROWS_MAX_BYTES (512u << 20)

/* After "SET statement_timeout = <ms>;", so that a statement stuck on a lock or a slow disk
 * fails (57014, retried) instead of holding the batch for ever. */
/* clang-format off */
static const char setup_sql_tail[] =
    "SET client_min_messages = warning;"
    "SET ROLE exectime_writer;"
    "SET TIME ZONE 'UTC';"
    "SET application_name = 'exectime-agent writer';"
    "CREATE TEMP TABLE IF NOT EXISTS exectime_staging ("
    " tenant_id text COLLATE \"C\", workflow_id text COLLATE \"C\", run_id text COLLATE \"C\","
    " status text, started_at timestamptz, finished_at timestamptz, duration_us bigint,"
    " queue_wait_us bigint"
    ") ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS exectime_rollup_keys ("
    " n integer, resolution smallint, tenant_id text COLLATE \"C\","
    " workflow_id text COLLATE \"C\", bucket timestamptz, status smallint"
    ") ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS exectime_rollup_staging ("
    " stored boolean,"
    " resolution smallint, tenant_id text COLLATE \"C\", workflow_id text COLLATE \"C\","
    " bucket timestamptz, status smallint, runs bigint, sum_us bigint, min_us bigint,"
    " max_us bigint, hist bytea, queue_runs bigint, queue_sum_us bigint, queue_min_us bigint,"
    " queue_max_us bigint, queue_hist bytea"
    ") ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS exectime_admit ("
    " tenant_id text COLLATE \"C\", workflow_id text COLLATE \"C\", load boolean"
    ") ON COMMIT DELETE ROWS;"
    "SELECT relative_accuracy, encoding FROM exectime.sketch_constants;"
    "SELECT coalesce(max(version), 0) FROM exectime.schema_migrations";
/* clang-format on */

#define STAGE_SQL "BEGIN;COPY exectime_staging FROM STDIN;"
/* clang-format off */
#define INSERT_HEAD                                                                            \
    "INSERT INTO exectime.execution_time_statistics"                                           \
    " (tenant_id, workflow_id, run_id, status, started_at, finished_at, duration_us,"          \
    " queue_wait_us)"                                                                          \
    " SELECT tenant_id, workflow_id, run_id, status, started_at, finished_at, duration_us,"    \
    " queue_wait_us FROM exectime_staging"
/* clang-format on */

/* Round trip 1, usually: a plain INSERT, about half the cost of the careful one (no
 * speculative insertion, no sort, nothing sent back). A stored run fails it with 23505. */
static const char insert_sql[] = STAGE_SQL INSERT_HEAD;

/* Round trip 1 after a duplicate. The ORDER BY makes two agents that meet the same keys
 * lock them in the same order. RETURNING names only what the rollups need, from the
 * inserted rows alone. */
/* clang-format off */
static const char insert_careful_sql[] =
    STAGE_SQL INSERT_HEAD " ORDER BY tenant_id, run_id, finished_at ON CONFLICT DO NOTHING"
    " RETURNING tenant_id, workflow_id, status,"
    " (extract(epoch FROM finished_at) * 1000000)::bigint, duration_us, queue_wait_us";
/* clang-format on */

/* The lock class of the writers' per-tenant rollup locks ("ET" 01). */
#define ROLLUP_LOCK_CLASS "1163132929"

/* clang-format off */
#define READ_SQL(table, res)                                                                   \
    "SELECT k.n, r.runs, r.sum_us, r.min_us, r.max_us, r.hist, r.queue_runs, r.queue_sum_us,"  \
    " r.queue_min_us, r.queue_max_us, r.queue_hist FROM exectime_rollup_keys k"                \
    " JOIN exectime." table " r USING (tenant_id, workflow_id, bucket, status)"                \
    " WHERE k.resolution = " res
/* clang-format on */

/* Round trip 2. The staging table has no statistics: the joins must probe the primary
 * keys, never hash a whole rollup table. The tenant locks are taken in hash order. */
/* clang-format off */
static const char read_sql[] =
    "COPY exectime_rollup_keys FROM STDIN;"
    "SET LOCAL enable_hashjoin = off;"
    "SET LOCAL enable_mergejoin = off;"
    "LOCK TABLE exectime.rollup_minute, exectime.rollup_hour, exectime.rollup_day"
    " IN ROW EXCLUSIVE MODE;"
    "SELECT pg_advisory_xact_lock(" ROLLUP_LOCK_CLASS ", h) FROM"
    " (SELECT DISTINCT hashtext(tenant_id) AS h FROM exectime_rollup_keys ORDER BY h) t;"
    READ_SQL("rollup_minute", "0") " UNION ALL " READ_SQL("rollup_hour", "1")
    " UNION ALL " READ_SQL("rollup_day", "2");
/* clang-format on */

/* clang-format off */
#define WRITE_SQL(table, res)                                                                  \
    "UPDATE exectime." table " r SET runs = s.runs, sum_us = s.sum_us, min_us = s.min_us,"     \
    " max_us = s.max_us, hist = s.hist, queue_runs = s.queue_runs,"                            \
    " queue_sum_us = s.queue_sum_us, queue_min_us = s.queue_min_us,"                           \
    " queue_max_us = s.queue_max_us, queue_hist = s.queue_hist FROM exectime_rollup_staging s" \
    " WHERE s.resolution = " res " AND s.stored AND r.tenant_id = s.tenant_id"                 \
    " AND r.workflow_id = s.workflow_id AND r.bucket = s.bucket AND r.status = s.status;"      \
    "INSERT INTO exectime." table                                                              \
    " (" ROLLUP_COPY_COLUMNS ") SELECT " ROLLUP_COPY_COLUMNS                                   \
    " FROM exectime_rollup_staging WHERE resolution = " res " AND NOT stored;"
/* clang-format on */

/* Round trip 3: the merged rows replace what round trip 2 read, and the keys it did not
 * find are inserted: the tenant locks kept every other writer out since, so a plain INSERT
 * (a fifth cheaper than ON CONFLICT's speculative one) meets no row. Should a row appear
 * anyway (a hand-made insert), 23505 fails the batch, which is retried and reads it. The
 * notification, one per tenant with the days it changed, reaches every agent's statistics
 * cache (day_cache.h) at COMMIT. */
/* clang-format off */
static const char write_sql[] =
    "COPY exectime_rollup_staging FROM STDIN;"
    WRITE_SQL("rollup_minute", "0")
    WRITE_SQL("rollup_hour", "1")
    WRITE_SQL("rollup_day", "2")
    "SELECT pg_notify('" DAY_CACHE_CHANNEL "',"
    " (extract(epoch FROM min(bucket)) * 1000000)::bigint || ' ' ||"
    " (extract(epoch FROM max(bucket)) * 1000000)::bigint || ' ' || tenant_id)"
    " FROM exectime_rollup_staging WHERE resolution = 2 GROUP BY tenant_id;"
    "COMMIT";
/* clang-format on */

static const char *const state_names[] = {
    [WRITER_DOWN] = "down",
    [WRITER_SETUP] = "setup",
    [WRITER_NOT_MIGRATED] = "not_migrated",
    [WRITER_IDLE] = "idle",
    [WRITER_INSERTING] = "inserting",
    [WRITER_ADMITTING] = "admitting",
    [WRITER_READING] = "reading",
    [WRITER_UPSERTING] = "upserting",
    [WRITER_ROLLING_BACK] = "rolling_back",
    [WRITER_RETRY_WAIT] = "retry_wait",
    [WRITER_CLOSING] = "closing",
};

const char *writer_state_name(writer_state_t state)
{
    return state_names[state];
}

static void set_state(batch_writer_t *w, writer_state_t next)
{
    /* CLOSING is final: closing the session ends its query with PG_QUERY_LOST, whose
     * handlers would otherwise move the writer to DOWN, and a later writer_close would
     * close the handles a second time. */
    if (w->state == next || w->state == WRITER_CLOSING)
        return;
    log_write(LOG_DEBUG, "writer state", "from", state_names[w->state], "to", state_names[next],
              NULL);
    w->state = next;
}

static void maybe_flush(batch_writer_t *w);

/* --- which entries a batch holds ------------------------------------------------ */

/* Open addressing over a batch's acks (position + 1; 0 is empty), so that the consumer can
 * ask whether an entry is already here without a scan of up to 50,000 acks. Positions are
 * never removed: one before slice_from is committed, hence no longer held. */
static uint32_t ack_hash(uint8_t stream, const char *id)
{
    return et_fnv1a32(et_fnv1a32(ET_FNV32_INIT, &stream, 1), id, strlen(id));
}

static void index_put(writer_batch_t *b, size_t pos)
{
    size_t mask = b->index_cap - 1;
    for (size_t i = ack_hash(b->acks[pos].stream, b->acks[pos].id) & mask;; i = (i + 1) & mask)
        if (b->index[i] == 0) {
            b->index[i] = (uint32_t)pos + 1;
            return;
        }
}

/* Keeps the index at most half full for `acks` acks; -ENOMEM when it cannot grow. */
static int index_reserve(writer_batch_t *b, size_t acks)
{
    if (acks * 2 <= b->index_cap)
        return 0;
    size_t cap = b->index_cap ? b->index_cap : 512;
    while (cap < acks * 2)
        cap *= 2;
    uint32_t *index = calloc(cap, sizeof *index);
    if (index == NULL)
        return -ENOMEM;
    free(b->index);
    b->index = index;
    b->index_cap = cap;
    for (size_t pos = 0; pos < b->ack_len; pos++)
        index_put(b, pos);
    return 0;
}

static bool batch_holds(const writer_batch_t *b, uint8_t stream, const char *id)
{
    if (b->index_cap == 0)
        return false;
    size_t mask = b->index_cap - 1;
    for (size_t i = ack_hash(stream, id) & mask; b->index[i] != 0; i = (i + 1) & mask) {
        size_t pos = b->index[i] - 1;
        if (pos >= b->slice_from && pos < b->ack_len && b->acks[pos].stream == stream &&
            strcmp(b->acks[pos].id, id) == 0)
            return true;
    }
    return false;
}

/* --- rollup keys of a batch ----------------------------------------------------- */

/* A batch's rollup work and the agent's memory for its deltas grow with its distinct
 * (tenant, workflow, minute, status) keys, not with its events: live traffic has few keys
 * for many events, history one key per event. The filling batch counts its keys in a set
 * of their hashes (a collision undercounts by one: harmless for a bound). */
static uint32_t minute_key_hash(const et_event_t *e)
{
    int64_t minute = e->finished_us / (60 * ET_US_PER_SEC);
    uint8_t tail[9];
    for (int i = 0; i < 8; i++)
        tail[i] = (uint8_t)((uint64_t)minute >> (8 * i));
    tail[8] = (uint8_t)e->status;
    static const uint8_t separator = 0xff;
    uint32_t h = et_fnv1a32(ET_FNV32_INIT, e->tenant_id, strlen(e->tenant_id));
    h = et_fnv1a32(h, &separator, 1);
    h = et_fnv1a32(h, e->workflow_id, strlen(e->workflow_id));
    h = et_fnv1a32(h, tail, sizeof tail);
    return h ? h : 1; /* 0 marks an empty slot */
}

static void count_key(writer_batch_t *b, uint32_t h)
{
    size_t mask = b->key_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (b->key_hashes[i] == h)
            return;
        if (b->key_hashes[i] == 0) {
            b->key_hashes[i] = h;
            b->keys++;
            return;
        }
    }
}

bool writer_holds(const batch_writer_t *w, uint8_t stream, const char *id)
{
    return batch_holds(w->filling, stream, id) ||
           (w->inflight != NULL && batch_holds(w->inflight, stream, id));
}

static void batch_reset(writer_batch_t *b)
{
    copy_buf_reset(&b->rows);
    copy_buf_reset(&b->names);
    if (b->keys > 0)
        memset(b->key_hashes, 0, b->key_cap * sizeof *b->key_hashes);
    b->keys = 0;
    if (b->index)
        memset(b->index, 0, b->index_cap * sizeof *b->index);
    b->events = 0;
    b->ack_len = 0;
    b->opened_ms = 0;
    b->attempts = 0;
    b->slice_from = 0;
    b->slice_len = 0;
    b->data_failures = 0;
    b->split = false;
    b->careful = false;
    b->failed = false;
}

/* The slice's COPY rows and events: from the end of the entry before it to its last. */
static size_t slice_rows_from(const writer_batch_t *b)
{
    return b->slice_from ? b->acks[b->slice_from - 1].rows_end : 0;
}

static size_t slice_rows_to(const writer_batch_t *b)
{
    return b->acks[b->slice_from + b->slice_len - 1].rows_end;
}

static size_t slice_events_from(const writer_batch_t *b)
{
    return b->slice_from ? b->acks[b->slice_from - 1].events_end : 0;
}

static size_t slice_events(const writer_batch_t *b)
{
    return b->acks[b->slice_from + b->slice_len - 1].events_end - slice_events_from(b);
}

static void record_error(batch_writer_t *w, const PGresult *res)
{
    if (w->error[0])
        return;
    const char *msg = PQresultErrorMessage(res);
    snprintf(w->error, sizeof w->error, "%s", msg && *msg ? msg : "unknown error");
    for (char *p = w->error; *p; p++)
        if (*p == '\n')
            *p = ' ';
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    snprintf(w->sqlstate, sizeof w->sqlstate, "%s", state ? state : "");
    snprintf(w->reason, sizeof w->reason, "%.300s%s%.150s (SQLSTATE %.5s)",
             primary ? primary : w->error, detail ? ": " : "", detail ? detail : "",
             state ? state : "none");
}

/*
 * The rows' own fault, which every retry meets again: class 22 (data exception: out of
 * range, bad input), 23 (integrity: a check), 54 (program limit). Everything else says
 * nothing about the rows and is retried as it is: a lost session, 40001 serialization,
 * 40P01 deadlock, 57014 cancel or statement_timeout, 53 insufficient resources, and XX
 * internal errors (a server fault: dead-lettering good events for it would be worse than
 * waiting, and readiness shows the stall).
 */
static bool data_error(const char *sqlstate)
{
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
           strncmp(sqlstate, "54", 2) == 0;
}

/* Sends COPY data for the round trip that asked for it. */
static void send_copy(batch_writer_t *w, pg_conn_t *conn, const char *data, size_t len)
{
    if (pg_conn_copy_data(conn, data, len) < 0 || pg_conn_copy_end(conn, NULL) < 0)
        pg_conn_reset(conn, "COPY failed to send");
}

/* --- schema check --------------------------------------------------------------- */

static void on_setup(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);

static void run_setup(batch_writer_t *w)
{
    w->error[0] = '\0';
    w->constants_differ[0] = '\0';
    w->schema_version = -1;
    set_state(w, WRITER_SETUP);
    if (pg_conn_query(&w->pg, w->setup_sql, on_setup, w) < 0)
        set_state(w, WRITER_DOWN);
}

static void on_retry_timer(uv_timer_t *timer);

static void on_setup(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
            record_error(w, res);
        } else if (st == PGRES_TUPLES_OK && PQnfields(res) == 2 && PQntuples(res) == 1) {
            double alpha = strtod(PQgetvalue(res, 0, 0), NULL);
            int encoding = atoi(PQgetvalue(res, 0, 1));
            if (alpha != ET_SKETCH_ALPHA || encoding != ET_SKETCH_ENCODING)
                snprintf(w->constants_differ, sizeof w->constants_differ,
                         "the database's sketch constants (relative_accuracy %s, encoding %d) "
                         "differ from this agent's (%g, %d): refusing to write",
                         PQgetvalue(res, 0, 0), encoding, ET_SKETCH_ALPHA, ET_SKETCH_ENCODING);
        } else if (st == PGRES_TUPLES_OK && PQnfields(res) == 1 && PQntuples(res) == 1) {
            w->schema_version = atoi(PQgetvalue(res, 0, 0));
        }
        return;
    }
    if (event == PG_QUERY_LOST) {
        set_state(w, WRITER_DOWN);
        return;
    }
    int needed = migrate_latest_version();
    /* Constants of an older schema change with its migration (version 5 changed the
     * encoding): only a current schema with other constants is a reason to stop. */
    if (!w->error[0] && w->schema_version >= needed && w->constants_differ[0]) {
        set_state(w, WRITER_NOT_MIGRATED);
        if (w->cb.on_fatal)
            w->cb.on_fatal(w, w->constants_differ, w->cb.arg);
        return;
    }
    if (w->error[0] || w->schema_version < needed) {
        log_fields(LOG_WARN,
                   "database schema is not current: run `exectime-agent migrate`; retrying",
                   log_int("schema_version", w->schema_version < 0 ? 0 : w->schema_version),
                   log_str("error", w->error));
        w->schema_ok = false;
        set_state(w, WRITER_NOT_MIGRATED);
        uv_timer_start(&w->retry_timer, on_retry_timer, SCHEMA_RECHECK_MS, 0);
        return;
    }
    w->schema_ok = true;
    set_state(w, WRITER_IDLE);
    maybe_flush(w);
}

/* --- the two round trips ------------------------------------------------------- */

static void send_insert(batch_writer_t *w);
static void on_insert(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);
static void on_upsert(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);
static void on_rollback(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);

/* Batches that start careful after one met a stored run: a restart or a take-over
 * redelivers a stretch of entries, not one. */
#define CAREFUL_BATCHES 8

/* The slice failed inside a transaction: roll back, then retry, split or reject it. */
static void fail_batch(batch_writer_t *w)
{
    writer_batch_t *b = w->inflight;
    if (!w->careful_round) {
        /* Whatever failed the plain INSERT, the careful one answers it: a stored run is
         * skipped there, and a refused row fails there too, where the bisection runs. */
        b->careful = true;
        w->careful_left = CAREFUL_BATCHES;
        if (strcmp(w->sqlstate, "23505") == 0) {
            log_write(LOG_DEBUG, "batch holds runs already stored; writing it again, skipping them",
                      NULL);
            set_state(w, WRITER_ROLLING_BACK);
            if (pg_conn_query(&w->pg, "ROLLBACK", on_rollback, w) < 0)
                set_state(w, WRITER_DOWN);
            return;
        }
    }
    /* A rollup key stored since round trip 2 read (only a writer outside the tenant locks
     * can do that) is not the rows' fault: the retry reads it and merges. */
    bool data = data_error(w->sqlstate) &&
                !(w->state == WRITER_UPSERTING && strcmp(w->sqlstate, "23505") == 0);
    w->stats.batches_failed++;
    b->failed = true;
    if (data)
        b->data_failures++;
    log_fields(LOG_WARN,
               data ? "batch refused by the database" : "batch failed; it will be retried",
               log_str("error", w->error), log_str("sqlstate", w->sqlstate),
               log_uint("entries", b->slice_len), log_uint("attempt", b->attempts));
    set_state(w, WRITER_ROLLING_BACK);
    if (pg_conn_query(&w->pg, "ROLLBACK", on_rollback, w) < 0)
        set_state(w, WRITER_DOWN);
}

/*
 * Moves past n entries of the in-flight batch (committed or rejected): the next slice
 * keeps the current length, or takes all that is left when whole_rest. Returns true when
 * nothing is left: the writer then holds no batch in flight (the caller resets it after
 * its callbacks, which still read its acks).
 */
static bool advance(batch_writer_t *w, size_t n, bool whole_rest)
{
    writer_batch_t *b = w->inflight;
    b->slice_from += n;
    size_t left = b->ack_len - b->slice_from;
    if (whole_rest || b->slice_len > left)
        b->slice_len = left;
    b->attempts = 0;
    b->data_failures = 0;
    b->failed = false;
    if (left == 0)
        w->inflight = NULL;
    set_state(w, WRITER_IDLE);
    return left == 0;
}

/* After a slice is done: free the batch if it was the last, write on, tell of room. */
static void step_done(batch_writer_t *w, writer_batch_t *b, bool finished)
{
    if (finished)
        batch_reset(b);
    maybe_flush(w);
    if (w->cb.on_room && w->state != WRITER_CLOSING)
        w->cb.on_room(w, w->cb.arg);
}

/* The slice is one entry the database refuses: hand it over, then try the rest whole. */
static void reject_entry(batch_writer_t *w)
{
    writer_batch_t *b = w->inflight;
    const writer_ack_t *ack = &b->acks[b->slice_from];
    w->stats.entries_rejected++;
    log_write(LOG_WARN, "the database refuses an entry; it goes to the dead letters", "stream",
              w->cfg->streams[ack->stream], "id", ack->id, "error", w->reason, NULL);
    bool finished = advance(w, 1, true);
    if (w->cb.on_rejected)
        w->cb.on_rejected(w, ack, w->reason, w->cb.arg);
    step_done(w, b, finished);
}

/* Halves a refused slice: its first half is written next, the second after it. */
static void split_slice(batch_writer_t *w)
{
    writer_batch_t *b = w->inflight;
    char from[24], to[24];
    snprintf(from, sizeof from, "%zu", b->slice_len);
    b->slice_len /= 2;
    snprintf(to, sizeof to, "%zu", b->slice_len);
    b->split = true;
    b->attempts = 0;
    b->data_failures = 0;
    b->failed = false;
    w->stats.batches_split++;
    log_write(LOG_WARN, "splitting a refused batch to isolate the entry the database refuses",
              "entries", from, "slice", to, NULL);
    set_state(w, WRITER_IDLE);
    maybe_flush(w);
}

static void on_rollback(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT)
        return;
    if (event == PG_QUERY_LOST) {
        set_state(w, WRITER_DOWN);
        return;
    }
    writer_batch_t *b = w->inflight;
    if (!b->failed) {
        /* A duplicate in the plain INSERT: not a failure, written again at once. */
        set_state(w, WRITER_IDLE);
        maybe_flush(w);
        return;
    }
    /* A data error comes back on every try: after a few (once, inside a bisection, where
     * the slice's entries have all failed together already) stop retrying it as it is. */
    if (b->data_failures >= (b->split ? 1u : (unsigned)WRITER_DATA_ATTEMPTS)) {
        if (b->slice_len > 1)
            split_slice(w);
        else
            reject_entry(w);
        return;
    }
    set_state(w, WRITER_RETRY_WAIT);
    uv_timer_start(&w->retry_timer, on_retry_timer, w->retry_ms, 0);
    w->retry_ms = et_backoff_next(w->retry_ms, RETRY_MAX_MS);
}

static void on_retry_timer(uv_timer_t *timer)
{
    batch_writer_t *w = container_of(timer, batch_writer_t, retry_timer);
    if (w->state == WRITER_RETRY_WAIT) {
        set_state(w, WRITER_IDLE);
        maybe_flush(w);
    } else if (w->state == WRITER_NOT_MIGRATED && pg_conn_ready(&w->pg)) {
        run_setup(w);
    }
}

/*
 * The end of a round trip that did not succeed: a lost session waits for the reconnect
 * (committed or not, the retry is safe: the raw key turns away what committed), an error
 * rolls back and retries. Returns true when it took over.
 */
static bool round_failed(batch_writer_t *w, pg_query_event_t event)
{
    if (event == PG_QUERY_LOST) {
        w->inflight->failed = true;
        set_state(w, WRITER_DOWN);
        return true;
    }
    if (w->error[0]) {
        fail_batch(w);
        return true;
    }
    return false;
}

static void send_insert(batch_writer_t *w)
{
    w->error[0] = '\0';
    w->sqlstate[0] = '\0';
    w->reason[0] = '\0';
    w->inserted_rows = 0;
    rollup_set_reset(&w->deltas);
    w->held_len = 0;
    wlimit_set_clear(&w->asked);
    wlimit_set_clear(&w->answers);
    copy_buf_reset(&w->admit_rows);
    w->inflight->attempts++;
    w->round_started_ms = w->step_started_ms = uv_now(w->loop);
    w->careful_round = w->inflight->careful || w->careful_left > 0;
    if (w->careful_round) {
        w->stats.batches_careful++;
        if (w->careful_left > 0)
            w->careful_left--;
    }
    set_state(w, WRITER_INSERTING);
    if (pg_conn_query(&w->pg, w->careful_round ? insert_careful_sql : insert_sql, on_insert, w) < 0)
        set_state(w, WRITER_DOWN);
}

/* An inserted row whose workflow the admission round trip decides. */
typedef struct writer_held_row {
    char tenant_id[ET_TENANT_ID_MAX + 1];
    char workflow_id[ET_WORKFLOW_ID_MAX + 1];
    et_status_t status;
    int64_t finished_us;
    int64_t duration_us;
    int64_t queue_wait_us;
} writer_held_row_t;

/* Adds one exectime_admit row (workflow NULL: load the tenant's ids) unless already asked. */
static int ask(batch_writer_t *w, const char *tenant, const char *workflow)
{
    char key[WLIMIT_PAIR_MAX];
    int rc =
        wlimit_set_add(&w->asked, key, wlimit_pair(key, tenant, workflow ? workflow : ""), NULL);
    if (rc <= 0)
        return rc;
    size_t mark = w->admit_rows.len;
    rc = copy_buf_text(&w->admit_rows, tenant, 1);
    if (rc == 0)
        rc = workflow ? copy_buf_text(&w->admit_rows, workflow, 0)
                      : copy_buf_null(&w->admit_rows, 0);
    if (rc == 0)
        rc = copy_buf_text(&w->admit_rows, workflow ? "f" : "t", 0);
    if (rc == 0)
        rc = copy_buf_end_row(&w->admit_rows);
    if (rc < 0)
        copy_buf_truncate(&w->admit_rows, mark);
    return rc;
}

/* Keeps a row for the admission round trip, and asks about its workflow. */
static int hold_row(batch_writer_t *w, const char *tenant, const char *workflow, et_status_t status,
                    int64_t finished, int64_t duration, int64_t queue_wait, bool load)
{
    if (w->held_len == w->held_cap) {
        size_t cap = w->held_cap ? 2 * w->held_cap : 256;
        writer_held_row_t *held = realloc(w->held, cap * sizeof *held);
        if (held == NULL)
            return -ENOMEM;
        w->held = held;
        w->held_cap = cap;
    }
    int rc = ask(w, tenant, workflow);
    if (rc == 0 && load)
        rc = ask(w, tenant, NULL);
    if (rc < 0)
        return rc;
    writer_held_row_t *h = &w->held[w->held_len++];
    snprintf(h->tenant_id, sizeof h->tenant_id, "%s", tenant);
    snprintf(h->workflow_id, sizeof h->workflow_id, "%s", workflow);
    h->status = status;
    h->finished_us = finished;
    h->duration_us = duration;
    h->queue_wait_us = queue_wait;
    return 0;
}

/*
 * Adds one RETURNING row to the rollup deltas: under its workflow when admitted, under the
 * overflow id when the cache knows the tenant is full, or held for the admission round
 * trip when only the database can tell.
 */
static int fold_run(batch_writer_t *w, const char *tenant, const char *workflow, et_status_t status,
                    int64_t finished, int64_t duration, int64_t queue_wait)
{
    switch (wlimit_check(&w->wlimit, tenant, workflow)) {
    case WLIMIT_OWN: break;
    case WLIMIT_OVERFLOW: workflow = WLIMIT_OVERFLOW_ID; break;
    case WLIMIT_ASK:
        return hold_row(w, tenant, workflow, status, finished, duration, queue_wait, false);
    case WLIMIT_ASK_LOAD:
        return hold_row(w, tenant, workflow, status, finished, duration, queue_wait, true);
    }
    return rollup_set_add(&w->deltas, tenant, workflow, status, finished, duration, queue_wait);
}

/* One row the careful INSERT returned. */
static int fold_row(batch_writer_t *w, const PGresult *res, int row)
{
    et_status_t status;
    const char *st = PQgetvalue(res, row, 2);
    if (et_status_parse(st, strlen(st), &status) < 0)
        return -EINVAL;
    return fold_run(w, PQgetvalue(res, row, 0), PQgetvalue(res, row, 1), status,
                    strtoll(PQgetvalue(res, row, 3), NULL, 10),
                    strtoll(PQgetvalue(res, row, 4), NULL, 10),
                    PQgetisnull(res, row, 5) ? ROLLUP_NO_QUEUE_WAIT
                                             : strtoll(PQgetvalue(res, row, 5), NULL, 10));
}

/* The plain INSERT stored every event of the slice: they are folded from the batch. */
static int fold_slice(batch_writer_t *w)
{
    const writer_batch_t *b = w->inflight;
    size_t from = slice_events_from(b), to = from + slice_events(b);
    for (size_t i = from; i < to; i++) {
        const writer_event_t *e = &b->event_list[i];
        const char *tenant = b->names.data + e->names_at;
        int rc = fold_run(w, tenant, tenant + strlen(tenant) + 1, (et_status_t)e->status,
                          e->finished_us, e->duration_us, e->queue_wait_us);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void send_read(batch_writer_t *w);
static void on_admit(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);

/* The round trip between insert and upsert: admit what the held rows need, in this
 * transaction, so the decision commits (or rolls back) with the rows it is about. */
static void send_admit(batch_writer_t *w)
{
    set_state(w, WRITER_ADMITTING);
    w->step_started_ms = uv_now(w->loop);
    if (pg_conn_query(&w->pg, w->admit_sql, on_admit, w) < 0)
        set_state(w, WRITER_DOWN);
}

static void on_admit(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT) {
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN: send_copy(w, conn, w->admit_rows.data, w->admit_rows.len); break;
        case PGRES_TUPLES_OK:
            for (int i = 0; i < PQntuples(res) && !w->error[0]; i++) {
                char key[WLIMIT_PAIR_MAX];
                wlimit_key_t *k;
                size_t len = wlimit_pair(key, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
                if (wlimit_set_add(&w->answers, key, len, &k) < 0) {
                    snprintf(w->error, sizeof w->error, "out of memory for the admission");
                    break;
                }
                k->flag = k->flag || PQgetvalue(res, i, 2)[0] == 't';
                k->value = strtoll(PQgetvalue(res, i, 3), NULL, 10);
            }
            break;
        case PGRES_COMMAND_OK: break;
        default: record_error(w, res); break;
        }
        return;
    }
    if (round_failed(w, event))
        return;
    for (size_t i = 0; i < w->held_len; i++) {
        const writer_held_row_t *h = &w->held[i];
        char key[WLIMIT_PAIR_MAX];
        const wlimit_key_t *k =
            wlimit_set_find(&w->answers, key, wlimit_pair(key, h->tenant_id, h->workflow_id));
        int rc = k == NULL
                     ? -EPROTO
                     : rollup_set_add(&w->deltas, h->tenant_id,
                                      k->flag ? h->workflow_id : WLIMIT_OVERFLOW_ID, h->status,
                                      h->finished_us, h->duration_us, h->queue_wait_us);
        if (rc < 0) {
            snprintf(w->error, sizeof w->error, "cannot fold inserted row after admission: %s",
                     strerror(-rc));
            fail_batch(w);
            return;
        }
    }
    send_read(w);
}

/*
 * After COMMIT: the cache learns what the admission answered, and the rows folded under
 * the overflow id are counted, with a log line per tenant at most once a minute.
 */
static void after_commit_limits(batch_writer_t *w)
{
    for (size_t i = 0; i < w->answers.cap; i++) {
        const wlimit_key_t *k = &w->answers.slots[i];
        if (k->data == NULL)
            continue;
        const char *workflow = k->data + strlen(k->data) + 1;
        if (wlimit_learn(&w->wlimit, k->data, *workflow ? workflow : NULL, k->flag, k->value) < 0)
            break; /* out of memory: the cache knows less, later batches ask again */
    }
    /* Sorted deltas: one tenant's overflow keys of one resolution are contiguous. */
    for (size_t i = 0; i < w->deltas.len;) {
        const rollup_delta_t *d = &w->deltas.deltas[i];
        if (d->resolution != ET_RES_DAY || strcmp(d->workflow_id, WLIMIT_OVERFLOW_ID) != 0) {
            i++;
            continue;
        }
        uint64_t n = 0;
        size_t j = i;
        for (; j < w->deltas.len && w->deltas.deltas[j].resolution == ET_RES_DAY &&
               strcmp(w->deltas.deltas[j].tenant_id, d->tenant_id) == 0 &&
               strcmp(w->deltas.deltas[j].workflow_id, WLIMIT_OVERFLOW_ID) == 0;
             j++)
            n += w->deltas.deltas[j].runs - w->deltas.deltas[j].stored_runs;
        w->stats.events_overflowed += n;
        uint64_t events;
        if (wlimit_overflowed(&w->wlimit, d->tenant_id, n, uv_now(w->loop), &events)) {
            log_fields(LOG_WARN,
                       "tenant is past EXECTIME_MAX_WORKFLOWS_PER_TENANT: runs of its further "
                       "workflows are rolled up under \"" WLIMIT_OVERFLOW_ID "\"",
                       log_str("tenant", d->tenant_id),
                       log_int("limit", w->cfg->max_workflows_per_tenant),
                       log_uint("events", events));
        }
        i = j;
    }
}

static void on_insert(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT) {
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN: {
            const writer_batch_t *b = w->inflight;
            size_t from = slice_rows_from(b);
            send_copy(w, conn, b->rows.data + from, slice_rows_to(b) - from);
            break;
        }
        case PGRES_TUPLES_OK: /* the careful INSERT's RETURNING */
            w->inserted_rows = (size_t)PQntuples(res);
            for (int i = 0; i < PQntuples(res); i++) {
                if (fold_row(w, res, i) < 0 && !w->error[0])
                    snprintf(w->error, sizeof w->error, "cannot fold inserted row %d", i);
            }
            break;
        case PGRES_COMMAND_OK: /* BEGIN, COPY, and the plain INSERT */
            if (!w->careful_round && strncmp(PQcmdStatus(res), "INSERT", 6) == 0)
                w->inserted_rows = strtoull(PQcmdTuples(res), NULL, 10);
            break;
        default: record_error(w, res); break;
        }
        return;
    }
    if (!w->careful_round && !w->error[0] && event == PG_QUERY_DONE) {
        /* Without an error the plain INSERT stored every row; anything else is a server
         * this code does not understand, and the careful way asks it row by row. */
        int rc = w->inserted_rows == slice_events(w->inflight) ? fold_slice(w) : -EPROTO;
        if (rc < 0)
            snprintf(w->error, sizeof w->error, "cannot fold the inserted batch: %s",
                     strerror(-rc));
    }
    if (round_failed(w, event))
        return;
    if (w->held_len)
        send_admit(w);
    else
        send_read(w);
}

/* No delta's row is built yet. */
static int rows_reset(batch_writer_t *w)
{
    copy_buf_reset(&w->rollup_rows);
    if (w->row_built_cap < w->deltas.len) {
        uint8_t *built = realloc(w->row_built, w->deltas.len);
        if (built == NULL)
            return -ENOMEM;
        w->row_built = built;
        w->row_built_cap = w->deltas.len;
    }
    if (w->deltas.len)
        memset(w->row_built, 0, w->deltas.len);
    return 0;
}

/* One row of exectime_rollup_keys: n, resolution, tenant, workflow, bucket, status. */
static int key_copy_row(copy_buf_t *out, size_t n, const rollup_delta_t *d)
{
    size_t mark = out->len;
    int rc = copy_buf_int(out, (int64_t)n, 1);
    if (rc == 0)
        rc = copy_buf_int(out, d->resolution, 0);
    if (rc == 0)
        rc = rollup_delta_copy_key(d, false, out);
    if (rc == 0)
        rc = copy_buf_end_row(out);
    if (rc < 0)
        copy_buf_truncate(out, mark);
    return rc;
}

static void send_upsert(batch_writer_t *w);
static void on_read(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);

/* Round trip 2: the keys the deltas touch, the tenant locks, the stored rows. */
static void send_read(batch_writer_t *w)
{
    w->rollups_started_ms = uv_now(w->loop);
    if (w->deltas.len == 0) { /* every run was stored already: nothing to roll up */
        send_upsert(w);
        return;
    }
    copy_buf_reset(&w->rollup_keys);
    rollup_set_sort(&w->deltas);
    int rc = rows_reset(w);
    for (size_t i = 0; rc == 0 && i < w->deltas.len; i++)
        rc = key_copy_row(&w->rollup_keys, i, &w->deltas.deltas[i]);
    if (rc < 0) {
        snprintf(w->error, sizeof w->error, "cannot build rollup keys: %s", strerror(-rc));
        fail_batch(w);
        return;
    }
    set_state(w, WRITER_READING);
    w->step_started_ms = uv_now(w->loop);
    if (pg_conn_query(&w->pg, read_sql, on_read, w) < 0)
        set_state(w, WRITER_DOWN);
}

/* Appends one row of exectime_rollup_staging: whether the key is stored (stored_bins
 * given, added to the delta's own as the row is encoded), then the delta's row. */
static int stage_row(batch_writer_t *w, const rollup_delta_t *d, const et_hist_t *stored_bins,
                     const et_hist_t *stored_queue_bins)
{
    size_t mark = w->rollup_rows.len;
    int rc = copy_buf_raw(&w->rollup_rows, stored_bins ? "t\t" : "f\t", 2);
    if (rc == 0)
        rc = rollup_delta_copy_row_with(d, stored_bins, stored_queue_bins, true, &w->rollup_rows);
    if (rc < 0)
        copy_buf_truncate(&w->rollup_rows, mark);
    return rc;
}

/*
 * Adds one stored row's counts to its delta and stages the merged row at once (the stored
 * bins are never kept: a delta stays the size of the batch's own runs, whatever the stored
 * rows hold). The sums must fit where they are stored: a sum past bigint would have failed
 * the database's own addition with 22003 (out of range), and failing the same way keeps
 * the batch's handling (retried, then bisected) unchanged.
 */
static int merge_stored(batch_writer_t *w, const PGresult *res, int row)
{
    long long n = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    if (n < 0 || (size_t)n >= w->deltas.len || w->row_built[n])
        return -EPROTO;
    rollup_delta_t *d = &w->deltas.deltas[n];
    uint64_t runs = strtoull(PQgetvalue(res, row, 1), NULL, 10);
    int64_t sum = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    int64_t min = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    int64_t max = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    uint64_t queue_runs = strtoull(PQgetvalue(res, row, 6), NULL, 10);
    int64_t queue_sum = strtoll(PQgetvalue(res, row, 7), NULL, 10);
    int64_t queue_min = strtoll(PQgetvalue(res, row, 8), NULL, 10);
    int64_t queue_max = strtoll(PQgetvalue(res, row, 9), NULL, 10);
    int rc = et_hist_decode_hex(&w->stored_bins, PQgetvalue(res, row, 5));
    if (rc == 0)
        rc = et_hist_decode_hex(&w->stored_queue_bins, PQgetvalue(res, row, 10));
    if (rc < 0)
        return rc;
    if (d->runs > INT64_MAX - runs || __builtin_add_overflow(d->sum_us, sum, &sum) ||
        d->queue_runs > INT64_MAX - queue_runs ||
        __builtin_add_overflow(d->queue_sum_us, queue_sum, &queue_sum))
        return -ERANGE;
    if (queue_runs > 0) { /* else the stored min and max are placeholders */
        if (queue_min < d->queue_min_us)
            d->queue_min_us = queue_min;
        if (queue_max > d->queue_max_us)
            d->queue_max_us = queue_max;
    }
    d->queue_runs += queue_runs;
    d->queue_sum_us = queue_sum;
    d->runs += runs;
    d->stored_runs += runs;
    d->sum_us = sum;
    if (min < d->min_us)
        d->min_us = min;
    if (max > d->max_us)
        d->max_us = max;
    w->row_built[n] = 1;
    return stage_row(w, d, &w->stored_bins, &w->stored_queue_bins);
}

/* A failure the agent finds itself, recorded as the database would report it, so that the
 * batch is handled by its SQLSTATE class like any other (data errors are bisected). */
static void fail_as(batch_writer_t *w, const char *sqlstate, const char *message)
{
    snprintf(w->error, sizeof w->error, "%s", message);
    snprintf(w->sqlstate, sizeof w->sqlstate, "%s", sqlstate);
    snprintf(w->reason, sizeof w->reason, "%s (SQLSTATE %s)", message, sqlstate);
}

/* The batch's merged rows pass ROLLUP_ROWS_MAX_BYTES: a program limit, so the batch is
 * bisected like one the database refuses. */
static void rows_too_big(batch_writer_t *w)
{
    char message[64];
    snprintf(message, sizeof message, "the batch's rollup rows pass %u MiB",
             ROLLUP_ROWS_MAX_BYTES >> 20);
    fail_as(w, "54000", message);
}

static void on_read(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT) {
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN: send_copy(w, conn, w->rollup_keys.data, w->rollup_keys.len); break;
        case PGRES_TUPLES_OK:
            if (PQnfields(res) != 11) /* the tenant locks */
                break;
            for (int i = 0; i < PQntuples(res) && !w->error[0]; i++) {
                int rc = merge_stored(w, res, i);
                if (rc == -ERANGE) {
                    fail_as(w, "22003", "bigint out of range: a rollup sum would pass it");
                } else if (rc == -ENOBUFS) {
                    rows_too_big(w);
                } else if (rc < 0) {
                    snprintf(w->error, sizeof w->error, "cannot merge a stored rollup row: %s",
                             strerror(-rc));
                }
            }
            break;
        case PGRES_COMMAND_OK: break;
        default: record_error(w, res); break;
        }
        return;
    }
    if (round_failed(w, event))
        return;
    send_upsert(w);
}

/* Round trip 3: the merged rows and the new keys' rows written back, and COMMIT. */
static void send_upsert(batch_writer_t *w)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < w->deltas.len; i++) {
        if (!w->row_built[i])
            rc = stage_row(w, &w->deltas.deltas[i], NULL, NULL); /* a new key */
    }
    if (rc == -ENOBUFS) {
        rows_too_big(w);
        fail_batch(w);
        return;
    }
    if (rc < 0) {
        snprintf(w->error, sizeof w->error, "cannot build rollup rows: %s", strerror(-rc));
        fail_batch(w);
        return;
    }
    set_state(w, WRITER_UPSERTING);
    w->step_started_ms = uv_now(w->loop);
    const char *sql = w->deltas.len ? write_sql : "COMMIT";
    if (pg_conn_query(&w->pg, sql, on_upsert, w) < 0)
        set_state(w, WRITER_DOWN);
}

static void on_upsert(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    batch_writer_t *w = arg;
    if (event == PG_QUERY_RESULT) {
        switch (PQresultStatus(res)) {
        case PGRES_COPY_IN: send_copy(w, conn, w->rollup_rows.data, w->rollup_rows.len); break;
        case PGRES_TUPLES_OK: /* the notifications */ break;
        case PGRES_COMMAND_OK:
            /* COMMIT of an aborted transaction answers ROLLBACK. */
            if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0 && !w->error[0])
                snprintf(w->error, sizeof w->error, "transaction rolled back at COMMIT");
            break;
        default: record_error(w, res); break;
        }
        return;
    }
    if (round_failed(w, event))
        return;
    /* The slice committed (the whole batch unless it is being bisected). */
    writer_batch_t *done = w->inflight;
    size_t from = done->slice_from, n = done->slice_len, slice = slice_events(done);
    uint64_t commit_ms = uv_now(w->loop) - w->round_started_ms;
    w->stats.batches_committed++;
    w->stats.events_inserted += w->inserted_rows;
    w->stats.events_duplicate += slice - w->inserted_rows;
    w->retry_ms = RETRY_MIN_MS;
    after_commit_limits(w);
    bool finished = advance(w, n, false);
    if (log_enabled(LOG_DEBUG)) {
        log_fields(LOG_DEBUG, "batch committed", log_uint("events", slice),
                   log_uint("inserted", w->inserted_rows), log_bool("careful", w->careful_round),
                   log_uint("rollup_keys", w->deltas.len),
                   log_uint("insert_ms", w->rollups_started_ms - w->round_started_ms),
                   log_uint("read_ms", w->step_started_ms - w->rollups_started_ms),
                   log_uint("write_ms", uv_now(w->loop) - w->step_started_ms));
    }
    if (w->cb.on_batch)
        w->cb.on_batch(w, slice, w->inserted_rows, commit_ms, w->cb.arg);
    if (w->cb.on_committed)
        w->cb.on_committed(w, done->acks + from, n, w->cb.arg);
    step_done(w, done, finished);
}

/* Starts writing when the session is idle and a batch is due: a retried batch first, then
 * the filling one once it is full, old enough, or the writer drains. */
/* Draining ends as soon as nothing is held, whatever the session is doing: with the
 * database down and no event taken, a shutdown has nothing to wait for. */
static void report_drained_if_empty(batch_writer_t *w)
{
    if (!w->draining || w->on_drained == NULL || w->inflight || w->filling->ack_len > 0)
        return;
    void (*cb)(batch_writer_t *) = w->on_drained;
    w->on_drained = NULL;
    cb(w);
}

static void maybe_flush(batch_writer_t *w)
{
    if (w->state != WRITER_IDLE) {
        report_drained_if_empty(w);
        return;
    }
    if (w->inflight) {
        send_insert(w);
        return;
    }
    writer_batch_t *f = w->filling;
    bool due = f->ack_len > 0 && (w->draining || f->events >= (size_t)w->cfg->batch_max ||
                                  f->keys >= (size_t)w->cfg->batch_max_keys ||
                                  uv_now(w->loop) - f->opened_ms >= (uint64_t)w->cfg->flush_ms);
    if (!due) {
        report_drained_if_empty(w);
        return;
    }
    w->inflight = f;
    f->slice_from = 0;
    f->slice_len = f->ack_len; /* the whole batch in one transaction */
    w->filling = f == &w->batches[0] ? &w->batches[1] : &w->batches[0];
    uv_timer_stop(&w->flush_timer);
    send_insert(w);
}

static void on_flush_timer(uv_timer_t *timer)
{
    maybe_flush(container_of(timer, batch_writer_t, flush_timer));
}

/* --- connection events ---------------------------------------------------------- */

static void on_pg_up(pg_conn_t *conn, void *arg)
{
    run_setup(arg);
}

static void on_pg_down(pg_conn_t *conn, const char *reason, void *arg)
{
    batch_writer_t *w = arg;
    if (w->state != WRITER_CLOSING)
        set_state(w, WRITER_DOWN);
}

int writer_init(batch_writer_t *w, uv_loop_t *loop, const config_t *cfg,
                const writer_callbacks_t *cb)
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->cfg = cfg;
    w->cb = *cb;
    w->retry_ms = RETRY_MIN_MS;
    w->schema_version = -1;
    /* writer_add refuses an entry past batch_max + one entry's most events, so that is
     * what a batch holds at most, whatever a read brought. */
    size_t cap = (size_t)cfg->batch_max + ET_ENTRY_MAX_EVENTS;
    size_t limit = cap * ROW_BYTES_MAX;
    /* The key count may pass batch_max_keys by one entry's events: room for that, half full. */
    size_t key_cap = 1024;
    while (key_cap < 2 * ((size_t)cfg->batch_max_keys + ET_ENTRY_MAX_EVENTS))
        key_cap *= 2;
    for (int i = 0; i < 2; i++) {
        copy_buf_init(&w->batches[i].rows, limit);
        copy_buf_init(&w->batches[i].names, cap * (ET_TENANT_ID_MAX + ET_WORKFLOW_ID_MAX + 2));
        w->batches[i].key_hashes = calloc(key_cap, sizeof *w->batches[i].key_hashes);
        if (w->batches[i].key_hashes == NULL)
            return -ENOMEM;
        w->batches[i].key_cap = key_cap;
    }
    w->filling = &w->batches[0];
    rollup_set_init(&w->deltas, 6 * cap);
    /* Runs older than the minute (hour) window are not folded there: maintenance deletes
     * those buckets, and verify checks exactly these windows; rollup_set_reset moves them. */
    rollup_set_retain(&w->deltas, cfg->minute_retention_days, cfg->hour_retention_days,
                      et_now_us());
    copy_buf_init(&w->rollup_keys, 6 * limit);
    copy_buf_init(&w->rollup_rows, ROLLUP_ROWS_MAX_BYTES);
    et_hist_init(&w->stored_bins);
    et_hist_init(&w->stored_queue_bins);
    /* A row per held event and a load row per tenant: two per event at most. */
    copy_buf_init(&w->admit_rows, 2 * limit);
    wlimit_set_init(&w->asked);
    wlimit_set_init(&w->answers);
    snprintf(w->admit_sql, sizeof w->admit_sql,
             "COPY exectime_admit FROM STDIN;"
             "SELECT tenant_id, workflow_id, admitted, workflows"
             " FROM exectime.admit_workflows(%d)",
             cfg->max_workflows_per_tenant);
    int wrc = wlimit_init(&w->wlimit, cfg->max_workflows_per_tenant);
    if (wrc < 0)
        return wrc;
    snprintf(w->setup_sql, sizeof w->setup_sql, "SET statement_timeout = %d;%s",
             cfg->statement_timeout_ms, setup_sql_tail);
    int rc = pg_conn_init(&w->pg, loop, "writer", cfg->database_url, on_pg_up, on_pg_down, w);
    if (rc < 0)
        return rc;
    pg_conn_set_query_timeout(&w->pg, (uint64_t)cfg->statement_timeout_ms + WATCHDOG_SLACK_MS);
    if ((rc = uv_timer_init(loop, &w->flush_timer)) < 0 ||
        (rc = uv_timer_init(loop, &w->retry_timer)) < 0)
        return rc;
    return 0;
}

void writer_start(batch_writer_t *w)
{
    pg_conn_start(&w->pg);
}

size_t writer_room(const batch_writer_t *w)
{
    const writer_batch_t *f = w->filling;
    if (f->keys >= (size_t)w->cfg->batch_max_keys)
        return 0; /* full by its rollup keys */
    size_t used = f->events;
    size_t max = (size_t)w->cfg->batch_max;
    return used >= max ? 0 : max - used;
}

bool writer_ready(const batch_writer_t *w)
{
    return w->schema_ok && w->state != WRITER_DOWN && w->state != WRITER_SETUP &&
           w->state != WRITER_NOT_MIGRATED && w->state != WRITER_CLOSING;
}

bool writer_flowing(const batch_writer_t *w)
{
    if (!writer_ready(w) || w->state == WRITER_ROLLING_BACK || w->state == WRITER_RETRY_WAIT)
        return false;
    if (w->inflight && w->inflight->failed)
        return false; /* retrying it after a failure */
    if ((w->state == WRITER_INSERTING || w->state == WRITER_ADMITTING ||
         w->state == WRITER_READING || w->state == WRITER_UPSERTING) &&
        uv_now(w->loop) - w->step_started_ms > WRITER_STALL_MS)
        return false; /* no answer for a while: locked, frozen or gone */
    return true;
}

void writer_pending(const batch_writer_t *w, size_t *events, size_t *entries)
{
    *events = w->filling->events;
    *entries = w->filling->ack_len;
    const writer_batch_t *b = w->inflight;
    if (b) {
        *entries += b->ack_len - b->slice_from;
        *events += b->events - (b->slice_from ? b->acks[b->slice_from - 1].events_end : 0);
    }
}

/* Keeps what the rollups need of one event, for folding it without a round trip. */
static int add_event(writer_batch_t *b, size_t at, const et_event_t *e)
{
    if (at == b->event_cap) {
        size_t cap = b->event_cap ? 2 * b->event_cap : 1024;
        writer_event_t *list = realloc(b->event_list, cap * sizeof *list);
        if (list == NULL)
            return -ENOMEM;
        b->event_list = list;
        b->event_cap = cap;
    }
    size_t tenant = strlen(e->tenant_id), workflow = strlen(e->workflow_id);
    if (b->names.len + tenant + workflow + 2 > b->names.limit || b->names.len > UINT32_MAX)
        return -ENOBUFS;
    writer_event_t *out = &b->event_list[at];
    out->names_at = (uint32_t)b->names.len;
    out->status = (uint8_t)e->status;
    out->finished_us = e->finished_us;
    out->duration_us = e->duration_us;
    out->queue_wait_us = e->has_enqueued ? e->queue_wait_us : ROLLUP_NO_QUEUE_WAIT;
    return copy_buf_raw(&b->names, e->tenant_id, tenant + 1) < 0 ||
                   copy_buf_raw(&b->names, e->workflow_id, workflow + 1) < 0
               ? -ENOMEM
               : 0;
}

/* Appends one event as a staging row; on failure the row is taken back out. */
static int add_row(copy_buf_t *rows, const et_event_t *e)
{
    size_t mark = rows->len;
    int rc = copy_buf_text(rows, e->tenant_id, 1);
    if (rc == 0)
        rc = copy_buf_text(rows, e->workflow_id, 0);
    if (rc == 0)
        rc = copy_buf_text(rows, e->run_id, 0);
    if (rc == 0)
        rc = copy_buf_text(rows, et_status_name(e->status), 0);
    if (rc == 0)
        rc = e->has_started ? copy_buf_time(rows, e->started_us, 0) : copy_buf_null(rows, 0);
    if (rc == 0)
        rc = copy_buf_time(rows, e->finished_us, 0);
    if (rc == 0)
        rc = copy_buf_int(rows, e->duration_us, 0);
    if (rc == 0)
        rc = e->has_enqueued ? copy_buf_int(rows, e->queue_wait_us, 0) : copy_buf_null(rows, 0);
    if (rc == 0)
        rc = copy_buf_end_row(rows);
    if (rc < 0)
        copy_buf_truncate(rows, mark);
    return rc;
}

int writer_add(batch_writer_t *w, uint8_t stream, const char *id, const et_event_t *events,
               size_t n)
{
    writer_batch_t *b = w->filling;
    if (strlen(id) >= WRITER_ENTRY_ID_MAX)
        return -EINVAL;
    if (b->events + n > (size_t)w->cfg->batch_max + ET_ENTRY_MAX_EVENTS)
        return -ENOBUFS; /* the hard cap: the consumer leaves the entry pending */
    if (b->ack_len == b->ack_cap) {
        size_t cap = b->ack_cap ? 2 * b->ack_cap : 256;
        writer_ack_t *acks = realloc(b->acks, cap * sizeof *acks);
        if (acks == NULL)
            return -ENOMEM;
        b->acks = acks;
        b->ack_cap = cap;
    }
    if (index_reserve(b, b->ack_len + 1) < 0)
        return -ENOMEM;
    size_t mark = b->rows.len, names_mark = b->names.len;
    for (size_t i = 0; i < n; i++) {
        int rc = add_row(&b->rows, &events[i]);
        if (rc == 0)
            rc = add_event(b, b->events + i, &events[i]);
        if (rc < 0) {
            copy_buf_truncate(&b->rows, mark);
            copy_buf_truncate(&b->names, names_mark);
            return rc;
        }
    }
    writer_ack_t *ack = &b->acks[b->ack_len++];
    ack->stream = stream;
    snprintf(ack->id, sizeof ack->id, "%s", id);
    ack->rows_end = b->rows.len;
    ack->events_end = b->events + n;
    index_put(b, b->ack_len - 1);
    for (size_t i = 0; i < n; i++)
        count_key(b, minute_key_hash(&events[i]));
    if (b->ack_len == 1) {
        b->opened_ms = uv_now(w->loop);
        uv_timer_start(&w->flush_timer, on_flush_timer, (uint64_t)w->cfg->flush_ms, 0);
    }
    b->events += n;
    w->stats.events_received += n;
    if (b->events >= (size_t)w->cfg->batch_max || b->keys >= (size_t)w->cfg->batch_max_keys)
        maybe_flush(w);
    return 0;
}

void writer_drain(batch_writer_t *w, void (*on_drained)(batch_writer_t *w))
{
    w->draining = true;
    w->on_drained = on_drained;
    maybe_flush(w);
}

static void on_handle_closed(uv_handle_t *handle)
{
    batch_writer_t *w = handle->data;
    if (--w->closing_handles > 0)
        return;
    for (int i = 0; i < 2; i++) {
        copy_buf_free(&w->batches[i].rows);
        copy_buf_free(&w->batches[i].names);
        free(w->batches[i].event_list);
        free(w->batches[i].acks);
        free(w->batches[i].index);
        free(w->batches[i].key_hashes);
    }
    rollup_set_free(&w->deltas);
    copy_buf_free(&w->rollup_rows);
    et_hist_free(&w->stored_bins);
    et_hist_free(&w->stored_queue_bins);
    copy_buf_free(&w->rollup_keys);
    free(w->row_built);
    copy_buf_free(&w->admit_rows);
    wlimit_set_free(&w->asked);
    wlimit_set_free(&w->answers);
    wlimit_free(&w->wlimit);
    free(w->held);
    if (w->on_closed)
        w->on_closed(w);
}

static void on_pg_closed(pg_conn_t *conn)
{
    on_handle_closed((uv_handle_t *)&container_of(conn, batch_writer_t, pg)->flush_timer);
}

void writer_close(batch_writer_t *w, writer_closed_fn on_closed)
{
    if (w->state == WRITER_CLOSING)
        return;
    set_state(w, WRITER_CLOSING);
    w->on_closed = on_closed;
    w->closing_handles = 3;
    w->flush_timer.data = w;
    w->retry_timer.data = w;
    uv_close((uv_handle_t *)&w->flush_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->retry_timer, on_handle_closed);
    pg_conn_close(&w->pg, on_pg_closed);
}
