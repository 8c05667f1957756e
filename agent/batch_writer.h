/*
 * batch_writer — turns decoded events into committed rows, one transaction per batch:
 *   1. BEGIN; COPY the batch into a temporary staging table; INSERT it into the raw table.
 *      Usually a plain INSERT: when it succeeds every row was new, and the rollup deltas
 *      are folded in C (rollup_delta) from the batch's own copy of the events. A batch
 *      with a run already stored fails it (23505) and is written again at once the careful
 *      way: INSERT in key order ON CONFLICT DO NOTHING RETURNING only the rows really
 *      inserted, folded from what came back. After such a batch the next few start
 *      careful too (redeliveries come in runs).
 *   2. COPY the keys the deltas touch; take a transaction-scoped advisory lock per tenant
 *      (in one order); read the rollup rows that exist for those keys.
 *   3. Merge each row into its delta in C; COPY the sums into a second staging table;
 *      UPDATE the stored keys with them and INSERT the new ones; COMMIT.
 * The tenant locks make 2-3 a read-modify-write that no other agent interleaves with; the
 * writers take their locks in the same phases in the same orders (raw rows, admission rows
 * by tenant, tenant locks by hash), so they never deadlock. Step 2 also takes ROW
 * EXCLUSIVE on the rollup tables, which waits for a running rollup-rebuild.
 * Per-workflow rollups are limited per tenant (workflow_limit.h): a row whose workflow the
 * cache cannot decide waits, and one more round trip between 1 and 2 (only in batches that
 * have such rows) asks exectime.admit_workflows, in the same transaction, about all of
 * them at once; rows of workflows not admitted are folded under WLIMIT_OVERFLOW_ID. What
 * the admission answered enters the cache only after COMMIT.
 * Only after COMMIT succeeds are the batch's stream entry ids handed to on_committed, so
 * the consumer acknowledges only what PostgreSQL holds. An interrupted batch, or one that
 * failed for a reason that is not its rows' (lost session, serialization, deadlock,
 * cancel, statement_timeout, lack of resources), is retried as it is, with backoff: the
 * raw table's primary key makes a retry add nothing twice.
 *
 * Refused rows: a batch that fails WRITER_DATA_ATTEMPTS times with a data error (SQLSTATE
 * class 22 data exception, 23 integrity, 54 program limit) is bisected by stream entry:
 * it is written as contiguous slices (the entries' COPY rows and their acks), each its
 * own transaction (raw insert, rollups of what that slice inserted, COMMIT), halving a
 * slice that fails until the refused entry stands alone. That entry goes to on_rejected
 * with the database's reason (the consumer dead-letters and acknowledges it); every
 * committed slice goes to on_committed with exactly its entries. Then the rest of the
 * batch is tried whole again.
 *
 * One batch fills while one commits; writer_room says how many more events fit, and
 * on_room tells the consumer when room has come back (backpressure: Redis is the buffer).
 * writer_add refuses (-ENOBUFS) an entry that would take the filling batch past
 * batch_max + ET_ENTRY_MAX_EVENTS events, which bounds memory whatever a read brought.
 *
 * Ownership: batch_writer_t is embedded by its owner. Ack arrays passed to on_committed
 * and the ack and reason passed to on_rejected live only during the call; callbacks must
 * not call writer_add. writer_close calls on_closed when every handle has closed.
 */
#ifndef EXECTIME_BATCH_WRITER_H
#define EXECTIME_BATCH_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "copy_text.h"
#include "event_codec.h"
#include "pg_conn.h"
#include "rollup_delta.h"
#include "workflow_limit.h"

#define WRITER_ENTRY_ID_MAX 48 /* "<ms>-<seq>": two 20-digit numbers and a dash */

/* A batch failing this often with a data error is bisected (a slice of it: once). */
#define WRITER_DATA_ATTEMPTS 3
/* A round trip in flight longer than this means events are not flowing (readiness). */
#define WRITER_STALL_MS 10000

typedef struct writer_ack {
    uint8_t stream;               /* index into config_t.streams */
    char id[WRITER_ENTRY_ID_MAX]; /* stream entry id */
    size_t rows_end;              /* end of this entry's rows in the batch's COPY text */
    size_t events_end;            /* events of the batch up to and including this entry */
} writer_ack_t;

typedef enum writer_state {
    WRITER_DOWN = 0,     /* no PostgreSQL session */
    WRITER_SETUP,        /* session set-up and schema check running */
    WRITER_NOT_MIGRATED, /* schema missing or old: re-checked on a timer */
    WRITER_IDLE,         /* ready, nothing in flight */
    WRITER_INSERTING,    /* round trip 1: staging + raw insert */
    WRITER_ADMITTING,    /* between 1 and 2, when needed: admission of new workflows */
    WRITER_READING,      /* round trip 2: tenant locks, the rollup rows the batch touches */
    WRITER_UPSERTING,    /* round trip 3: merged rollups + COMMIT */
    WRITER_ROLLING_BACK,
    WRITER_RETRY_WAIT, /* a batch failed: wait, then retry it */
    WRITER_CLOSING,
} writer_state_t;

/* One event of a batch, as the rollups need it; its ids are in the batch's names. */
typedef struct writer_event {
    uint32_t names_at; /* tenant id, NUL, workflow id, NUL */
    uint8_t status;    /* et_status_t */
    int64_t finished_us;
    int64_t duration_us;
    int64_t queue_wait_us; /* ROLLUP_NO_QUEUE_WAIT when the event had no enqueued_at */
} writer_event_t;

typedef struct writer_batch {
    copy_buf_t rows; /* staging rows in COPY text format */
    size_t events;
    writer_event_t *event_list; /* [0, events): folded when the plain INSERT succeeds */
    size_t event_cap;
    copy_buf_t names; /* the events' ids, NUL-terminated */
    writer_ack_t *acks;
    size_t ack_len;
    size_t ack_cap;
    uint32_t *index;        /* open addressing over acks: writer_holds without a scan */
    size_t index_cap;       /* a power of two, at least twice ack_len */
    uint32_t *key_hashes;   /* set of its (tenant, workflow, minute, status) key hashes */
    size_t key_cap;         /* a power of two */
    size_t keys;            /* distinct rollup keys so far: bounded by batch_max_keys */
    uint64_t opened_ms;     /* loop time of the first event */
    unsigned attempts;      /* of the slice being written */
    size_t slice_from;      /* first ack not yet committed or rejected */
    size_t slice_len;       /* acks written in one transaction: all that is left, unless split */
    unsigned data_failures; /* of the current slice, with a data error */
    bool split;             /* being bisected: a failing slice is halved at once */
    bool careful;           /* met a stored run: INSERT ON CONFLICT DO NOTHING from now on */
    bool failed;            /* the current slice's last attempt failed */
} writer_batch_t;

typedef struct writer_stats {
    uint64_t events_received;  /* events added to batches */
    uint64_t events_inserted;  /* raw rows really inserted */
    uint64_t events_duplicate; /* rows the primary key turned away */
    uint64_t batches_committed;
    uint64_t batches_failed;
    uint64_t batches_split;     /* refused batches or slices halved */
    uint64_t entries_rejected;  /* entries the database refused, given to on_rejected */
    uint64_t events_overflowed; /* inserted rows rolled up under WLIMIT_OVERFLOW_ID */
    uint64_t batches_careful;   /* slices written with ON CONFLICT DO NOTHING RETURNING */
} writer_stats_t;

typedef struct batch_writer batch_writer_t;
typedef void (*writer_committed_fn)(batch_writer_t *w, const writer_ack_t *acks, size_t n,
                                    void *arg);
typedef void (*writer_room_fn)(batch_writer_t *w, void *arg);
typedef void (*writer_fatal_fn)(batch_writer_t *w, const char *reason, void *arg);
typedef void (*writer_batch_fn)(batch_writer_t *w, size_t events, size_t inserted,
                                uint64_t commit_ms, void *arg);
typedef void (*writer_rejected_fn)(batch_writer_t *w, const writer_ack_t *ack, const char *reason,
                                   void *arg);
typedef void (*writer_closed_fn)(batch_writer_t *w);

typedef struct writer_callbacks {
    writer_committed_fn on_committed;
    writer_room_fn on_room;
    writer_fatal_fn on_fatal; /* the database is unusable for this agent: exit */
    writer_batch_fn on_batch; /* after each commit, for metrics */
    /* The database refuses this entry's rows (reason: its message and SQLSTATE). The owner
     * dead-letters and acknowledges it; without this callback it stays pending. */
    writer_rejected_fn on_rejected;
    void *arg;
} writer_callbacks_t;

struct batch_writer {
    uv_loop_t *loop;
    const config_t *cfg;
    pg_conn_t pg;
    writer_state_t state;
    writer_callbacks_t cb;
    writer_batch_t batches[2];
    writer_batch_t *filling;
    writer_batch_t *inflight; /* NULL when nothing is being written */
    rollup_set_t deltas;
    copy_buf_t rollup_keys; /* the keys the deltas touch (round trip 2) */
    copy_buf_t rollup_rows; /* the merged rows, built as round trip 2 reads (3) */
    uint8_t *row_built;     /* per delta: its merged row is in rollup_rows */
    size_t row_built_cap;
    et_hist_t stored_bins;        /* one stored row's bins, while merging it */
    et_hist_t stored_queue_bins;  /* and its queue-wait bins */
    size_t inserted_rows;         /* raw rows the in-flight slice really inserted */
    bool careful_round;           /* the in-flight slice's insert is the careful one */
    unsigned careful_left;        /* batches still to start careful after a duplicate */
    wlimit_t wlimit;              /* admitted workflows per tenant, as far as known */
    struct writer_held_row *held; /* inserted rows waiting for the admission's answer */
    size_t held_len;
    size_t held_cap;
    wlimit_set_t asked;    /* (tenant, workflow) pairs and (tenant, "") loads asked */
    wlimit_set_t answers;  /* the admission's: flag admitted, value the tenant's count */
    copy_buf_t admit_rows; /* COPY text for exectime_admit */
    char admit_sql[160];
    char error[512];            /* first error of the in-flight round trip */
    char sqlstate[6];           /* its SQLSTATE; "" when it did not come from the server */
    char reason[512];           /* its primary message, detail and SQLSTATE */
    char setup_sql[2048];       /* session set-up, with statement_timeout */
    char constants_differ[256]; /* why the sketch constants refuse this agent, or "" */
    bool schema_ok;
    bool draining; /* flush everything, then call on_drained */
    void (*on_drained)(batch_writer_t *w);
    uv_timer_t flush_timer; /* age of the filling batch */
    uv_timer_t retry_timer; /* failed batch and schema re-check */
    uint64_t retry_ms;
    uint64_t round_started_ms;
    uint64_t rollups_started_ms; /* end of round trip 1 (and admission) */
    uint64_t step_started_ms;    /* start of the round trip in flight (stall check) */
    int schema_version;          /* seen in the database */
    int closing_handles;
    writer_closed_fn on_closed;
    writer_stats_t stats;
};

__attribute__((warn_unused_result)) int writer_init(batch_writer_t *w, uv_loop_t *loop,
                                                    const config_t *cfg,
                                                    const writer_callbacks_t *cb);
void writer_start(batch_writer_t *w);

/* How many more events the filling batch takes before the consumer must pause. */
size_t writer_room(const batch_writer_t *w);

/*
 * Adds one stream entry's events (n may be 0: the id is still acknowledged after the next
 * commit). Returns 0, or -ENOBUFS when the filling batch would pass its hard cap
 * (batch_max + ET_ENTRY_MAX_EVENTS events, or its bytes), -ENOMEM: the entry is not
 * taken and the caller leaves it pending.
 */
__attribute__((warn_unused_result)) int writer_add(batch_writer_t *w, uint8_t stream,
                                                   const char *id, const et_event_t *events,
                                                   size_t n);

/* The entry is in a batch and not yet committed or rejected (the consumer does not hand
 * it over again when it re-reads its pending entries after a reconnect). */
bool writer_holds(const batch_writer_t *w, uint8_t stream, const char *id);

/* Session up and schema current: the agent is ready to ingest. */
bool writer_ready(const batch_writer_t *w);

/*
 * Events are flowing: ready, and not retrying a failed batch, waiting to retry, nor
 * waiting longer than WRITER_STALL_MS for a round trip (a frozen or locked database).
 */
bool writer_flowing(const batch_writer_t *w);

/* Events and entries added but not yet committed or rejected (for shutdown logs). */
void writer_pending(const batch_writer_t *w, size_t *events, size_t *entries);

/* Writes what is buffered, then calls on_drained once nothing is left or in flight. */
void writer_drain(batch_writer_t *w, void (*on_drained)(batch_writer_t *w));

const char *writer_state_name(writer_state_t state);

void writer_close(batch_writer_t *w, writer_closed_fn on_closed);

#endif
