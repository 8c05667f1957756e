/*
 * oracle — the events the integration tests publish and the checks of what the agent made
 * of them: a seeded generator, a msgpack encoder independent of event_codec, a publisher
 * mixing both encoders and entry sizes, and comparisons of the database with a
 * computation done here in C and with SQL aggregates over the raw rows.
 *
 * Ownership: events live in the caller's arrays; encoded bytes are malloc'd for the caller.
 * Every check fails the test (criterion) with the first differences spelled out.
 */
#ifndef EXECTIME_IT_ORACLE_H
#define EXECTIME_IT_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "event_codec.h"

/* --- events --------------------------------------------------------------------------- */

typedef struct it_rng {
    uint64_t state;
} it_rng_t;

uint64_t it_rng_next(it_rng_t *r); /* splitmix64 */
uint64_t it_rng_below(it_rng_t *r, uint64_t n);
double it_rng_unit(it_rng_t *r); /* [0, 1) */

/* How it_gen_events shapes events. */
typedef struct it_gen {
    uint64_t seed;
    int tenants;            /* tenant ids "t<k>" */
    int workflows;          /* per tenant; the last one is numeric ("9001") */
    int64_t spread_us;      /* finished_at within [now - spread_us, now] */
    const char *run_prefix; /* run ids "<prefix><i>": unique per call */
} it_gen_t;

/*
 * n events over every status, with finished_at spread back from now (some exactly on a
 * minute, hour or day boundary, some 1 µs before one) and durations 0 µs, 1 µs,
 * lognormal, and up to exactly 30 days; a fifth also carry started_at.
 */
void it_gen_events(et_event_t *out, size_t n, const it_gen_t *gen);

#define IT_ENC_ALIASES 1u /* "succeeded"/"canceled" instead of "success"/"cancelled" */
#define IT_ENC_INT_IDS 2u /* all-digit ids as msgpack ints */
#define IT_ENC_ARRAY 4u   /* an array even for one event */

/* Encodes events with msgpack-c directly (not event_codec): *out malloc'd. */
void it_encode(const et_event_t *ev, size_t n, unsigned flags, char **out, size_t *len);

/*
 * Publishes events in entries of 1 to max_per_entry events (sizes drawn from seed), half
 * through the emitter library, half encoded by it_encode with aliases and int ids.
 * Returns the number of entries.
 */
size_t it_publish(const et_event_t *ev, size_t n, int max_per_entry, uint64_t seed);

/*
 * Checks the database against the events, which must have distinct keys: raw row count,
 * and every rollup row of every resolution (per workflow and tenant-wide: runs, sum,
 * min, max and histogram bins) equal to a computation from the events in C, with no
 * row missing or extra.
 */
void it_check_rollups_match(const et_event_t *ev, size_t n);
/* Rollups equal SQL aggregates over the raw table, bins add up to runs. */
void it_check_rollups_match_raw_sql(void);
/* Raw count, tenant-wide day runs and sums, and minute/hour/day totals equal the events'. */
void it_check_totals(const et_event_t *ev, size_t n);

#endif
