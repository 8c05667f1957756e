/*
 * stream_upkeep — the consumer group's housekeeping, on the consumer's Redis connection:
 *  - trimming: every 10 s one stream (in turns) is trimmed with XTRIM MINID below what
 *    every group reading it has acknowledged (XINFO GROUPS, then an XPENDING summary per
 *    group with entries pending), so another group never loses entries; the group's lag
 *    is read on the way, with the group's pending entries (exported as the gauge
 *    exectime_stream_pending_entries) and the length of "<stream>:dead" (XLEN, exported
 *    as exectime_dead_letter_entries): both sums over the streams, -1 until every stream
 *    was read once, refreshed by these rounds and never by a scrape;
 *  - idle consumers: every restart under a new name leaves a consumer behind. One with
 *    nothing pending, idle for consumer_expire_ms, is removed by a script that checks and
 *    deletes in one step (XGROUP DELCONSUMER drops a consumer's pending entries with it, so
 *    an entry delivered to it in between must stop the delete).
 *
 * The consumer owns the connection: it calls upkeep_tick from its maintenance timer while
 * it is reading, with its current context, and upkeep_connection_lost when the context is
 * gone (hiredis has then run every pending callback with a NULL reply). Every reply is
 * reported to on_reply, which the consumer's watchdog counts as progress.
 *
 * Ownership: stream_upkeep_t is embedded by the consumer. Each request allocates its own
 * state, freed by its callback, which hiredis runs exactly once. Nothing here fails
 * loudly: a round that cannot be sent is tried again at the next tick.
 */
#ifndef EXECTIME_STREAM_UPKEEP_H
#define EXECTIME_STREAM_UPKEEP_H

#include <hiredis/async.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"

typedef struct stream_upkeep {
    const config_t *cfg;
    void (*on_reply)(void *arg); /* every reply, for the consumer's watchdog */
    void *arg;
    bool trim_in_flight;         /* XINFO GROUPS and its XPENDING summaries out */
    bool expire_in_flight;       /* XINFO CONSUMERS out */
    unsigned commands_in_flight; /* XTRIM and consumer removals out */
    unsigned trim_rounds;        /* streams take turns */
    unsigned expire_rounds;
    uint64_t next_trim_ms;
    uint64_t next_expire_ms;
    int64_t lag;                         /* entries not yet delivered to our group; -1 unknown */
    int64_t pending[CONFIG_STREAMS_MAX]; /* our group's pending entries; -1 unknown */
    int64_t dead_letters[CONFIG_STREAMS_MAX]; /* XLEN <stream>:dead; -1 unknown */
    metric_gauge_t *pending_gauge;
    metric_gauge_t *dead_letters_gauge;
    uint64_t consumers_removed;
} stream_upkeep_t;

void upkeep_init(stream_upkeep_t *u, const config_t *cfg, void (*on_reply)(void *arg), void *arg,
                 uint64_t now_ms);

/* Starts the rounds that are due; ac is the consumer's connected context. */
void upkeep_tick(stream_upkeep_t *u, redisAsyncContext *ac, uint64_t now_ms);

/* The connection is gone: nothing is in flight any more. */
void upkeep_connection_lost(stream_upkeep_t *u);

/* No upkeep request is waiting for Redis. */
bool upkeep_quiet(const stream_upkeep_t *u);

#endif
