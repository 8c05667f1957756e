/*
 * stream_consumer — reads run events from the Redis stream(s) with a consumer group and
 * hands them to the batch writer; acknowledges entries only when the writer reports them
 * committed.
 *
 * Connection (one state machine, consumer_state_t): the host is resolved off the loop,
 * then connected through our libuv adapter (redis_uv), then set up (AUTH, SELECT, SCRIPT
 * LOAD, XGROUP CREATE ... MKSTREAM). A connect over 5 s, or a command unanswered for 5 s
 * while nothing else came back, drops the connection; reconnects back off from 0.1 to 2 s.
 * A group that is missing after a reconnect (Redis lost its data) is created again and
 * said so in the log.
 *
 * Delivery: after each set-up the consumer first takes up its own pending entries, then
 * reads new ones. Entries come through the scripts of stream_scripts, bounded in entries
 * and bytes. Entries idle on other consumers for claim_idle_ms are claimed page after page
 * (new reads wait meanwhile). A delivery is counted by a new read, a claim from another
 * consumer, or the first session of a process; re-reads after a reconnect and entries the
 * writer had no room for (fetched again when it has) keep their count. An entry delivered
 * more than max_deliveries times, an invalid one, and one the database refused
 * (consumer_reject) go to "<stream>:dead" and are acknowledged once that XADD succeeded.
 * Trimming, the lag and idle consumers are stream_upkeep's.
 *
 * Backpressure: a read is issued only while writer_room() > 0; the writer's room callback
 * calls consumer_resume.
 *
 * Ownership: stream_consumer_t is embedded by its owner; replies live only during hiredis
 * callbacks and every byte kept is copied. consumer_close calls on_closed after the Redis
 * context, the address lookup and every handle are gone. Errors are logged and retried:
 * nothing the network does stops the consumer.
 */
#ifndef EXECTIME_STREAM_CONSUMER_H
#define EXECTIME_STREAM_CONSUMER_H

#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "batch_writer.h"
#include "config.h"
#include "et_backoff.h"
#include "event_codec.h"
#include "redis_url.h"
#include "stream_upkeep.h"

typedef enum consumer_state {
    CONSUMER_DOWN = 0,
    CONSUMER_RESOLVING, /* the host name is being resolved, off the loop */
    CONSUMER_CONNECTING,
    CONSUMER_SETUP, /* AUTH/SELECT/XGROUP CREATE sent */
    CONSUMER_READING,
    CONSUMER_BACKOFF,
    CONSUMER_CLOSING,
    CONSUMER_CLOSED,
} consumer_state_t;

typedef struct consumer_stats {
    uint64_t entries_read;
    uint64_t entries_acked;
    uint64_t entries_claimed;
    uint64_t dead_lettered;
    int64_t lag;                /* entries not yet delivered to the group; -1 unknown */
    uint64_t reconnects;        /* sessions set up again after the first */
    uint64_t groups_recreated;  /* the group was missing after a reconnect or a read */
    uint64_t stranded;          /* entries idle on other consumers, seen in the last pass */
    uint64_t consumers_removed; /* idle consumers with nothing pending, deleted */
} consumer_stats_t;

/* An entry read while the writer had no room: still pending on us, fetched again. */
typedef struct consumer_deferred {
    uint8_t stream;
    char id[WRITER_ENTRY_ID_MAX];
    long long deliveries; /* its delivery count in Redis now */
} consumer_deferred_t;

/* A read and a claim page at most, with room to spare. */
#define CONSUMER_DEFERRED_MAX 512

typedef struct stream_consumer stream_consumer_t;
/* reason_class is a short stable word for metrics labels ("decode", "deliveries"). */
typedef void (*consumer_dead_fn)(stream_consumer_t *c, const char *reason_class, void *arg);
typedef void (*consumer_closed_fn)(stream_consumer_t *c);
/* A moment the owner waits for (reads stopped, quiet); called from the loop, never from
 * inside the consumer's own reply handling. */
typedef void (*consumer_event_fn)(stream_consumer_t *c);

struct stream_consumer {
    uv_loop_t *loop;
    const config_t *cfg;
    batch_writer_t *writer;
    et_redis_url_t url;
    redisAsyncContext *ac;
    consumer_state_t state;
    uv_timer_t backoff_timer;
    uv_getaddrinfo_t resolve_req; /* the host's address, looked up at every attempt */
    bool resolving;               /* resolve_req is out: closing waits for it */
    uv_timer_t maint_timer;       /* claims, trims and lag, every second */
    uv_timer_t poll_timer;        /* after a round of empty reads */
    char script_sha[2][41];       /* SHA1 of each stream_script_t, from SCRIPT LOAD */
    unsigned read_turn;           /* streams take turns in reads */
    unsigned idle_streams;        /* reads in a row that found nothing */
    int read_stream;              /* the stream of the read in flight */
    uint64_t backoff_ms;
    et_retry_log_t retry_log;    /* failed connection attempts in a row, for the log */
    uint64_t connect_started_ms; /* loop time of the current attempt */
    uint64_t replies_seen;       /* every reply counts: the watchdog's progress */
    uint64_t replies_seen_at_check;
    uint64_t replies_waited_since_ms; /* commands outstanding and no reply since; 0: none */
    unsigned setups_done;             /* sessions set up; after the first, a group created
                                        anew was lost, and a set-up follows a reconnect */
    bool reconnecting;                /* this connection's set-up, once done, is a reconnect */
    bool setup_failed;                /* an error came back during this set-up */
    uint64_t next_claim_ms;
    bool read_in_flight;
    bool claim_in_flight;
    bool stopping; /* no new reads: the agent is shutting down */
    bool pending_done[CONFIG_STREAMS_MAX];
    char cursor[CONFIG_STREAMS_MAX][WRITER_ENTRY_ID_MAX + 2];       /* own-pending scan: "(<id>" */
    char claim_cursor[CONFIG_STREAMS_MAX][WRITER_ENTRY_ID_MAX + 2]; /* take-over pass */
    uint64_t pass_stranded; /* others' idle entries found so far in this pass */
    consumer_deferred_t deferred[CONSUMER_DEFERRED_MAX];
    size_t deferred_len;
    unsigned setup_replies;      /* set-up commands still unanswered */
    unsigned commands_in_flight; /* acks and dead letters still unanswered */
    stream_upkeep_t upkeep;      /* trims, lag, idle consumers */
    unsigned claim_rounds;       /* streams take turns in claims and trims */
    et_event_t *scratch;         /* decode buffer: ET_ENTRY_MAX_EVENTS events */
    consumer_dead_fn on_dead;
    void *arg;
    consumer_closed_fn on_closed;
    uv_timer_t waiter_timer;            /* re-checks what the owner waits for, after replies */
    consumer_event_fn on_reads_stopped; /* waiting for no read or claim in flight */
    consumer_event_fn on_quiet;         /* waiting for nothing to wait for from Redis */
    int closing_handles;
    consumer_stats_t stats;
};

__attribute__((warn_unused_result)) int consumer_init(stream_consumer_t *c, uv_loop_t *loop,
                                                      const config_t *cfg, batch_writer_t *writer,
                                                      consumer_dead_fn on_dead, void *arg);
void consumer_start(stream_consumer_t *c);

/* The writer has room again: read if idle. */
void consumer_resume(stream_consumer_t *c);

/* Acknowledges committed entries (the writer's on_committed). */
void consumer_ack(stream_consumer_t *c, const writer_ack_t *acks, size_t n);

/*
 * The database refused the entry `id` of stream index `stream` (the writer isolated it):
 * moves it to the dead-letter stream with the database's reason (reason class
 * "rejected"), then acknowledges it. Its bytes are read back from the stream; while Redis
 * is away the entry stays pending and comes back through redelivery.
 */
void consumer_reject(stream_consumer_t *c, int stream, const char *id, const char *reason);

/* Stops issuing reads; entries already read still flow to the writer. on_stopped (may be
 * NULL) runs once no read or claim is waiting for Redis (at once if none is). */
void consumer_stop_reading(stream_consumer_t *c, consumer_event_fn on_stopped);

/* on_quiet runs once no read, claim or command is waiting for Redis (at once if none is). */
void consumer_when_quiet(stream_consumer_t *c, consumer_event_fn on_quiet);

bool consumer_connected(const stream_consumer_t *c);

/* The counters, with the upkeep's lag and removed consumers filled in. */
void consumer_stats_get(const stream_consumer_t *c, consumer_stats_t *out);
const char *consumer_state_name(consumer_state_t state);

void consumer_close(stream_consumer_t *c, consumer_closed_fn on_closed);

#endif
