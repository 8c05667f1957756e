/*
 * libFuzzer target for the event codec: any bytes must decode to 0 or -EINVAL with a
 * one-line reason, never crash, leak or read out of bounds; what decodes must survive an
 * encode/decode round trip unchanged. Run with tests/fuzz/run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event_codec.h"
#include "timeutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_US 1795000000000000LL /* a fixed clock keeps runs reproducible */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static et_event_t events[ET_ENTRY_MAX_EVENTS];
    static et_event_t again[ET_ENTRY_MAX_EVENTS];
    char reason[256];
    size_t count = 0;
    int rc = et_event_decode(data, size, NOW_US, ET_TIME_MIN_VALID_US, events, ET_ENTRY_MAX_EVENTS,
                             &count, reason, sizeof reason);
    if (rc == -EINVAL) {
        if (reason[0] == '\0' || strchr(reason, '\n') != NULL)
            abort();
        return 0;
    }
    if (rc != 0 || count == 0)
        abort();
    char *out = NULL;
    size_t out_len = 0;
    if (et_event_encode(events, count, true, &out, &out_len) != 0)
        abort();
    size_t count2 = 0;
    if (et_event_decode(out, out_len, NOW_US, ET_TIME_MIN_VALID_US, again, ET_ENTRY_MAX_EVENTS,
                        &count2, reason, sizeof reason) != 0 ||
        count2 != count)
        abort();
    for (size_t i = 0; i < count; i++) {
        const et_event_t *a = &events[i], *b = &again[i];
        if (strcmp(a->tenant_id, b->tenant_id) || strcmp(a->workflow_id, b->workflow_id) ||
            strcmp(a->run_id, b->run_id) || a->status != b->status ||
            a->finished_us != b->finished_us || a->duration_us != b->duration_us ||
            a->has_enqueued != b->has_enqueued ||
            (a->has_enqueued && a->queue_wait_us != b->queue_wait_us))
            abort();
    }
    free(out);
    return 0;
}
