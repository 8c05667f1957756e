/*
 * et_backoff — how every connection of the agent waits before its next attempt: from
 * ET_RECONNECT_MIN_MS doubling to ET_RECONNECT_MAX_MS, so that a server that comes back is
 * tried again within one step of at most 2 s (docs/operations.md quotes these figures).
 */
#ifndef EXECTIME_ET_BACKOFF_H
#define EXECTIME_ET_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ET_RECONNECT_MIN_MS 100
#define ET_RECONNECT_MAX_MS 2000

/* The wait after current_ms: twice as long, at most max_ms. */
static inline uint64_t et_backoff_next(uint64_t current_ms, uint64_t max_ms)
{
    return current_ms * 2 > max_ms ? max_ms : current_ms * 2;
}

/*
 * How a connection's failed attempts are logged: while a server is away, an attempt
 * fails every step of the backoff, and one line per attempt would bury everything else.
 * A streak of failures in a row is logged at its 1st, 2nd, 4th, 8th… attempt and
 * whenever the reason changes, each line with the attempt's number; the line that says
 * the connection is back says how many attempts failed.
 */
typedef struct et_retry_log {
    uint64_t failures;     /* attempts failed in a row */
    uint64_t since_ms;     /* when the streak's first failure happened */
    char last_reason[160]; /* the reason last logged, cut */
} et_retry_log_t;

/* Counts one failed attempt; true when this one should be logged. */
static inline bool et_retry_failed(et_retry_log_t *r, const char *reason, uint64_t now_ms)
{
    if (r->failures == 0)
        r->since_ms = now_ms;
    r->failures++;
    char cut[sizeof r->last_reason];
    snprintf(cut, sizeof cut, "%s", reason != NULL ? reason : "");
    bool changed = strcmp(cut, r->last_reason) != 0;
    bool power_of_two = (r->failures & (r->failures - 1)) == 0;
    if (changed)
        memcpy(r->last_reason, cut, sizeof cut);
    return changed || power_of_two;
}

/* The connection is back: returns how many attempts had failed, and ends the streak. */
static inline uint64_t et_retry_succeeded(et_retry_log_t *r)
{
    uint64_t failures = r->failures;
    r->failures = 0;
    r->last_reason[0] = '\0';
    return failures;
}

#endif
