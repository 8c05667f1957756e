/*
 * workflow_limit — the per-tenant limit on distinct workflows in the rollups
 * (EXECTIME_MAX_WORKFLOWS_PER_TENANT), decided in memory for almost every event.
 *
 * The database's exectime.workflows holds each tenant's admitted workflows; a run of any
 * other workflow rolls up under WLIMIT_OVERFLOW_ID (tenant-wide rollups count it as
 * usual). This module caches, per tenant, the admitted ids it has seen and the tenant's
 * admitted count in the database when last told, and answers per event:
 *   - WLIMIT_OWN: the id is admitted (admissions are never taken back);
 *   - WLIMIT_OVERFLOW: the cache holds every admitted id and there are at least `limit`:
 *     admission is exact (exectime.admit_workflows locks the tenant), so nothing else
 *     can be admitted, by any agent with the same limit;
 *   - WLIMIT_ASK / WLIMIT_ASK_LOAD: the database must decide (the writer asks once per
 *     batch for all such ids; _LOAD also fetches the tenant's admitted ids, when the
 *     tenant is new to the cache or the cache has fallen behind other agents).
 * Memory: at most limit + 1 ids per tenant, WLIMIT_MAX_TENANTS tenants and max(
 * WLIMIT_MAX_IDS, 2 * (limit + 1)) ids in all; the least recently used tenants are
 * evicted (an evicted tenant is asked about again, which costs a round trip, never a
 * wrong answer). A tenant whose database count is past what the cache may hold (it was
 * over the limit before the upgrade, or the limit was lowered) stays incomplete: its
 * unknown ids are asked about in every batch that has them.
 *
 * wlimit_set_t is also the writer's per-batch set of (tenant, workflow) keys.
 *
 * Ownership: both types own their keys (copied on add). Functions that allocate return 0
 * (or 1, see below) or -ENOMEM. Single-threaded: the loop thread only.
 */
#ifndef EXECTIME_WORKFLOW_LIMIT_H
#define EXECTIME_WORKFLOW_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_codec.h"

#define WLIMIT_OVERFLOW_ID ET_OVERFLOW_WORKFLOW_ID
#define WLIMIT_MAX_TENANTS 1024
#define WLIMIT_MAX_IDS 1000000
#define WLIMIT_LOG_EVERY_MS 60000 /* the overflow log line, per tenant */

/* A set of byte strings (open addressing), each with a value and a flag. */
typedef struct wlimit_key {
    char *data; /* malloc'd, len bytes plus a NUL; NULL: empty slot */
    uint32_t len;
    uint32_t hash;
    int64_t value; /* the caller's */
    bool flag;     /* the caller's */
} wlimit_key_t;

typedef struct wlimit_set {
    wlimit_key_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t len;
} wlimit_set_t;

void wlimit_set_init(wlimit_set_t *s);
void wlimit_set_clear(wlimit_set_t *s); /* keeps the slot array */
void wlimit_set_free(wlimit_set_t *s);
/* Adds a key: returns its entry through *out; 1 when added, 0 when present, -ENOMEM. */
__attribute__((warn_unused_result)) int wlimit_set_add(wlimit_set_t *s, const char *data,
                                                       size_t len, wlimit_key_t **out);
wlimit_key_t *wlimit_set_find(const wlimit_set_t *s, const char *data, size_t len);

/* "tenant\0workflow" in buf (capacity WLIMIT_PAIR_MAX); returns its length. */
#define WLIMIT_PAIR_MAX (ET_TENANT_ID_MAX + 1 + ET_WORKFLOW_ID_MAX + 1)
size_t wlimit_pair(char *buf, const char *tenant, const char *workflow);

typedef enum wlimit_verdict {
    WLIMIT_OWN = 0,
    WLIMIT_OVERFLOW,
    WLIMIT_ASK,
    WLIMIT_ASK_LOAD,
} wlimit_verdict_t;

typedef struct wlimit_tenant {
    char tenant_id[ET_TENANT_ID_MAX + 1];
    wlimit_set_t ids;    /* admitted workflow ids known here */
    int64_t db_count;    /* the tenant's admitted workflows in the database, when last told */
    uint64_t used;       /* tick of the last use, for eviction */
    uint64_t overflowed; /* events past the limit not yet in a log line */
    uint64_t logged_ms;  /* loop time of the last log line; 0: none yet */
    bool in_use;
} wlimit_tenant_t;

typedef struct wlimit {
    int64_t limit;
    size_t max_ids; /* ids cached in all */
    size_t ids_total;
    wlimit_tenant_t *tenants; /* WLIMIT_MAX_TENANTS slots */
    size_t count;             /* slots in use */
    uint64_t tick;
    wlimit_tenant_t *last; /* the tenant found last: runs of one tenant skip the scan */
} wlimit_t;

__attribute__((warn_unused_result)) int wlimit_init(wlimit_t *wl, int64_t limit);
void wlimit_free(wlimit_t *wl);

/* What to do with an inserted run of (tenant, workflow); see the top of this file. */
wlimit_verdict_t wlimit_check(wlimit_t *wl, const char *tenant, const char *workflow);

/*
 * Learns what a committed transaction's admission answered: the tenant has count admitted
 * workflows, and workflow (NULL: none) is admitted or not. Creates the tenant's entry,
 * evicting the least recently used one when full. Returns 0 or -ENOMEM (the cache then
 * just knows less).
 */
__attribute__((warn_unused_result)) int wlimit_learn(wlimit_t *wl, const char *tenant,
                                                     const char *workflow, bool admitted,
                                                     int64_t count);

/*
 * Counts n committed events of tenant rolled up under the overflow id. Returns true when
 * a log line is due — the first time, then at most once per WLIMIT_LOG_EVERY_MS per
 * cached tenant — with the events since the last line in *events.
 */
bool wlimit_overflowed(wlimit_t *wl, const char *tenant, uint64_t n, uint64_t now_ms,
                       uint64_t *events);

#endif
