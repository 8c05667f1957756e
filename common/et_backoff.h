/*
 * et_backoff — how every connection of the agent waits before its next attempt: from
 * ET_RECONNECT_MIN_MS doubling to ET_RECONNECT_MAX_MS, so that a server that comes back is
 * tried again within one step of at most 2 s (docs/operations.md quotes these figures).
 */
#ifndef EXECTIME_ET_BACKOFF_H
#define EXECTIME_ET_BACKOFF_H

#include <stdint.h>

#define ET_RECONNECT_MIN_MS 100
#define ET_RECONNECT_MAX_MS 2000

/* The wait after current_ms: twice as long, at most max_ms. */
static inline uint64_t et_backoff_next(uint64_t current_ms, uint64_t max_ms)
{
    return current_ms * 2 > max_ms ? max_ms : current_ms * 2;
}

#endif
