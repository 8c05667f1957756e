/*
 * day_cache — the whole-day part of summary answers, merged, per (tenant, workflow,
 * statuses, day range). A dashboard polling "the last 30 days" then reads the closed days
 * from memory and only today's hours and minutes from PostgreSQL.
 *
 * Freshness: every batch transaction that changes day rollups sends, with its commit,
 * NOTIFY exectime_rollups "<first day µs> <last day µs> <tenant>" (rollup-rebuild: "*"),
 * so every agent's listener drops the entries the change overlaps, whichever agent wrote.
 * Three rules keep a stale entry out:
 *  - lookups and stores only while the listener is up (day_cache_set_listening); every
 *    change of that state empties the cache, since notifications may have been missed;
 *  - an answer is stored only if no notification arrived since its request began
 *    (day_cache_generation at the start, passed to day_cache_put): its rows may predate
 *    a commit that the notification already announced;
 *  - a request that begins after a notification was handled reads rows committed before
 *    it (the notification is sent at commit).
 * Tenant isolation does not rest on the cache: every request still asks PostgreSQL, under
 * the request's claims, whether its token may read the tenant, and a cached value is
 * used only for a request that was allowed; it was itself read under row-level security.
 *
 * Bounds: at most max_entries entries, each a key and one encoded histogram (at most
 * ET_HIST_ENCODED_MAX bytes); the least recently used goes first. 0 entries: off.
 *
 * Ownership: the cache owns its entries; day_cache_find's result is valid until the next
 * call that changes the cache. Functions that can fail return 0 or -ENOMEM.
 */
#ifndef EXECTIME_DAY_CACHE_H
#define EXECTIME_DAY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_codec.h"
#include "sketch.h"

#define DAY_CACHE_CHANNEL "exectime_rollups"

typedef struct day_cache_key {
    char tenant[ET_TENANT_ID_MAX + 1];
    char workflow[ET_WORKFLOW_ID_MAX + 1]; /* "" for the tenant-wide rollup */
    unsigned status_mask;
    int64_t from_us; /* day buckets [from_us, to_us) */
    int64_t to_us;
} day_cache_key_t;

typedef struct day_cache_value {
    uint64_t runs;
    uint64_t failed;
    int64_t sum_us;
    int64_t min_us;
    int64_t max_us;
    uint8_t *bins; /* et_hist_encode */
    size_t bins_len;
} day_cache_value_t;

typedef struct day_cache_entry {
    day_cache_key_t key;
    day_cache_value_t value;
    uint32_t hash;
    uint64_t last_used;
    bool used;
} day_cache_entry_t;

typedef struct day_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t stores;
    uint64_t dropped; /* entries dropped by notifications or a listener change */
} day_cache_stats_t;

typedef struct day_cache {
    day_cache_entry_t *entries; /* [0, max_entries) */
    size_t max_entries;
    uint64_t generation; /* notifications handled and listener changes */
    uint64_t tick;
    bool listening;
    day_cache_stats_t stats;
} day_cache_t;

__attribute__((warn_unused_result)) int day_cache_init(day_cache_t *c, size_t max_entries);
void day_cache_free(day_cache_t *c);

bool day_cache_enabled(const day_cache_t *c);

/* The listener is up (LISTEN done) or down. Either change empties the cache. */
void day_cache_set_listening(day_cache_t *c, bool listening);

uint64_t day_cache_generation(const day_cache_t *c);

/* The entry for key, or NULL (also while not listening). */
const day_cache_value_t *day_cache_find(day_cache_t *c, const day_cache_key_t *key);

/* Stores the value of key unless a notification arrived since generation was read, or the
 * listener is down; bins as the request merged them. */
__attribute__((warn_unused_result)) int day_cache_put(day_cache_t *c, const day_cache_key_t *key,
                                                      uint64_t runs, uint64_t failed,
                                                      int64_t sum_us, int64_t min_us,
                                                      int64_t max_us, const et_hist_t *bins,
                                                      uint64_t generation);

/*
 * One notification's payload: "<first day µs> <last day µs> <tenant>" drops that tenant's
 * entries whose days overlap those days; "*" (or anything unreadable: better to drop too
 * much) drops every entry.
 */
void day_cache_notified(day_cache_t *c, const char *payload);

#endif
