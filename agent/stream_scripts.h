/*
 * stream_scripts — the Lua scripts through which the consumer takes entries from a
 * stream, so that what crosses the network, and what hiredis buffers, is bounded by bytes
 * as well as by entries:
 *  - STREAM_SCRIPT_READ delivers new entries until a count or a byte budget is reached.
 *    It asks XREADGROUP for a few entries at a time (COUNT 1 per call cost Redis three
 *    times the CPU per entry), as many as the budget left holds at the average size seen
 *    so far, at most 128; entries of the last call that would pass the budget come back
 *    as their id with the field `exectime:deferred` and no event: they are pending on
 *    this consumer, and the consumer claims them when the writer has room;
 *  - STREAM_SCRIPT_CLAIM claims given pending entries (XCLAIM one id at a time, each with
 *    its own RETRYCOUNT or none) until a byte budget is reached, and says where it stopped.
 * Both keep only the `event` field of an entry, and replace an `event` larger than the
 * limit by the field `exectime:oversize` holding its size, so an oversized entry is
 * refused without its bytes ever leaving Redis.
 *
 * Arguments (after EVALSHA sha 1 <stream>):
 *   READ:  group, consumer, max entries, byte budget, largest event kept
 *          → an array of entries [id, [field, value, ...]]
 *   CLAIM: group, consumer, min idle ms, byte budget, largest event kept, then pairs
 *          (id, retry count or "" to count a delivery)
 *          → [entries, the id after which it stopped for the budget, or ""]
 * A script runs atomically; its errors come back with Redis's own prefix (NOGROUP ...).
 *
 * Ownership: the texts are static; nothing to free.
 */
#ifndef EXECTIME_STREAM_SCRIPTS_H
#define EXECTIME_STREAM_SCRIPTS_H

typedef enum stream_script {
    STREAM_SCRIPT_READ = 0,
    STREAM_SCRIPT_CLAIM,
    STREAM_SCRIPT_COUNT,
} stream_script_t;

/* The field that stands for an event too large to be fetched; its value is the size. */
#define STREAM_OVERSIZE_FIELD "exectime:oversize"
/* The field of an entry delivered past the read's byte budget, without its event. */
#define STREAM_DEFERRED_FIELD "exectime:deferred"

/* Bytes an entry costs beyond its event (id, field names, reply framing). */
#define STREAM_ENTRY_OVERHEAD 64

const char *stream_script_text(stream_script_t script);

#endif
