/*
 * event_codec — the run event wire format v1 (DESIGN section 2) on msgpack-c.
 *
 * Decoding is for untrusted bytes: every key is checked, every length bounded, and a bad
 * entry yields -EINVAL with a one-line reason naming the key ("status: unknown value
 * \"done\"", "event[3]: finished_at: more than 1 hour in the future"). An entry is
 * all-or-nothing: either every event in it is valid or none is returned.
 *
 * Ownership: decoded events are copied into the caller's array (fixed-size strings, no
 * pointers into the input). et_event_encode allocates *out with malloc; the caller frees.
 */
#ifndef EXECTIME_EVENT_CODEC_H
#define EXECTIME_EVENT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ET_EVENT_VERSION 1
#define ET_TENANT_ID_MAX 64
#define ET_WORKFLOW_ID_MAX 128
#define ET_RUN_ID_MAX 128
/* The workflow id under which a tenant's runs past its workflow limit are rolled up
 * (agent/workflow_limit.h). Reserved: an event naming it is refused, so it never means a
 * real workflow. */
#define ET_OVERFLOW_WORKFLOW_ID "(overflow)"
/* An entry larger than this, or with more events, is dead-lettered. */
#define ET_ENTRY_MAX_BYTES (1024 * 1024)
#define ET_ENTRY_MAX_EVENTS 1000
/* finished_at may be at most this far ahead of the agent's clock. */
#define ET_FUTURE_SKEW_US (3600LL * 1000000)

typedef enum et_status {
    ET_STATUS_SUCCESS = 0,
    ET_STATUS_FAILED = 1,
    ET_STATUS_CANCELLED = 2,
    ET_STATUS_TIMEOUT = 3,
} et_status_t;
#define ET_STATUS_COUNT 4

typedef struct et_event {
    char tenant_id[ET_TENANT_ID_MAX + 1]; /* NUL-terminated, valid UTF-8, no NUL inside */
    char workflow_id[ET_WORKFLOW_ID_MAX + 1];
    char run_id[ET_RUN_ID_MAX + 1];
    et_status_t status;
    int64_t finished_us; /* µs since the Unix epoch, UTC */
    int64_t started_us;  /* valid only when has_started */
    bool has_started;
    int64_t duration_us; /* always set after decode: given, or finished − started */
    int64_t enqueued_us; /* valid only when has_enqueued */
    bool has_enqueued;
    /* valid only when has_enqueued: the run's start (started_at, else finished −
     * duration) − enqueued_at, 0..ET_DURATION_MAX_US */
    int64_t queue_wait_us;
} et_event_t;

/* "success", "failed", "cancelled", "timeout". */
const char *et_status_name(et_status_t s);
/* Accepts the four names and MeshHook's "succeeded"/"canceled"; -EINVAL otherwise. */
int et_status_parse(const char *s, size_t len, et_status_t *out);

/*
 * Decodes one stream entry's `event` value: a map (one run) or an array of maps.
 * now_us is the agent's clock for the future-skew check; not_before_us is the oldest
 * finished_at accepted (at least ET_TIME_MIN_VALID_US; the agent passes its raw retention).
 * Writes at most cap events to out and their number to *count.
 * Returns 0, or -EINVAL with reason filled (one line, NUL-terminated, truncated to
 * reason_cap); -ENOMEM only if msgpack-c cannot allocate its object tree.
 */
__attribute__((warn_unused_result)) int et_event_decode(const void *buf, size_t len, int64_t now_us,
                                                        int64_t not_before_us, et_event_t *out,
                                                        size_t cap, size_t *count, char *reason,
                                                        size_t reason_cap);

/*
 * Encodes n >= 1 events: a map when n == 1 and !as_array, else an array of maps.
 * finished_at/started_at/enqueued_at are written as msgpack ints (µs); duration_us always;
 * enqueued_at only when has_enqueued (queue_wait_us is not sent: the decoder derives it).
 * Returns 0 or -ENOMEM / -EINVAL.
 */
__attribute__((warn_unused_result)) int et_event_encode(const et_event_t *events, size_t n,
                                                        bool as_array, char **out, size_t *out_len);

#endif
