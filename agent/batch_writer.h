/*
 * batch_writer — turns decoded events into committed rows, one transaction per batch:
 *   1. BEGIN; COPY the batch into a temporary staging table; INSERT it into the raw table
 *      in key order ON CONFLICT DO NOTHING RETURNING only the rows really inserted;
 *   2. fold those rows into rollup deltas in C (rollup_delta), COPY the deltas into a
 *      second staging table, upsert minute/hour/day rollups in key order; COMMIT.
 * Only after COMMIT succeeds are the batch's stream entry ids handed to on_committed, so
 * the consumer acknowledges only what PostgreSQL holds. A failed or interrupted batch is
 * retried whole: the raw table's primary key makes the retry add nothing twice.
 *
 * One batch fills while one commits; writer_room says how many more events fit, and
 * on_room tells the consumer when room has come back (backpressure: Redis is the buffer).
 *
 * Ownership: batch_writer_t is embedded by its owner. Ack arrays passed to on_committed
 * live only during the call. writer_close calls on_closed when every handle has closed.
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

#define WRITER_ENTRY_ID_MAX 48 /* "<ms>-<seq>": two 20-digit numbers and a dash */

typedef struct writer_ack {
    uint8_t stream;                /* index into config_t.streams */
    char id[WRITER_ENTRY_ID_MAX];  /* stream entry id */
} writer_ack_t;

typedef enum writer_state {
    WRITER_DOWN = 0,      /* no PostgreSQL session */
    WRITER_SETUP,         /* session set-up and schema check running */
    WRITER_NOT_MIGRATED,  /* schema missing or old: re-checked on a timer */
    WRITER_IDLE,          /* ready, nothing in flight */
    WRITER_INSERTING,     /* round trip 1: staging + raw insert */
    WRITER_UPSERTING,     /* round trip 2: rollups + COMMIT */
    WRITER_ROLLING_BACK,
    WRITER_RETRY_WAIT,    /* a batch failed: wait, then retry it */
    WRITER_CLOSING,
} writer_state_t;

typedef struct writer_batch {
    copy_buf_t rows;    /* staging rows in COPY text format */
    size_t events;
    writer_ack_t *acks;
    size_t ack_len;
    size_t ack_cap;
    uint64_t opened_ms; /* loop time of the first event */
    unsigned attempts;
} writer_batch_t;

typedef struct writer_stats {
    uint64_t events_received; /* events added to batches */
    uint64_t events_inserted; /* raw rows really inserted */
    uint64_t events_duplicate;/* rows the primary key turned away */
    uint64_t batches_committed;
    uint64_t batches_failed;
} writer_stats_t;

typedef struct batch_writer batch_writer_t;
typedef void (*writer_committed_fn)(batch_writer_t *w, const writer_ack_t *acks, size_t n,
                                    void *arg);
typedef void (*writer_room_fn)(batch_writer_t *w, void *arg);
typedef void (*writer_fatal_fn)(batch_writer_t *w, const char *reason, void *arg);
typedef void (*writer_batch_fn)(batch_writer_t *w, size_t events, size_t inserted,
                                uint64_t commit_ms, void *arg);
typedef void (*writer_closed_fn)(batch_writer_t *w);

typedef struct writer_callbacks {
    writer_committed_fn on_committed;
    writer_room_fn on_room;
    writer_fatal_fn on_fatal;   /* the database is unusable for this agent: exit */
    writer_batch_fn on_batch;   /* after each commit, for metrics */
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
    writer_batch_t *inflight;   /* NULL when nothing is being written */
    rollup_set_t deltas;
    copy_buf_t rollup_rows;
    size_t returned_rows;       /* rows RETURNING gave for the in-flight batch */
    char error[512];            /* first error of the in-flight round trip */
    bool schema_ok;
    bool draining;              /* flush everything, then call on_drained */
    void (*on_drained)(batch_writer_t *w);
    uv_timer_t flush_timer;     /* age of the filling batch */
    uv_timer_t retry_timer;     /* failed batch and schema re-check */
    uint64_t retry_ms;
    uint64_t round_started_ms;
    uint64_t upsert_started_ms; /* end of round trip 1 */
    int schema_version;         /* seen in the database */
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
 * commit). Returns 0, or -ENOBUFS / -ENOMEM when the batch cannot hold them.
 */
__attribute__((warn_unused_result)) int writer_add(batch_writer_t *w, uint8_t stream,
                                                   const char *id, const et_event_t *events,
                                                   size_t n);

/* Session up and schema current: the agent is ready to ingest. */
bool writer_ready(const batch_writer_t *w);

/* Writes what is buffered, then calls on_drained once nothing is left or in flight. */
void writer_drain(batch_writer_t *w, void (*on_drained)(batch_writer_t *w));

const char *writer_state_name(writer_state_t state);

void writer_close(batch_writer_t *w, writer_closed_fn on_closed);

#endif
