/*
 * emitter — the small synchronous publisher for workers: encode events (event_codec) and
 * XADD them to the stream as field `event`. Blocking (sync hiredis); not for the agent loop.
 *
 * Ownership: et_emitter_open allocates the emitter; et_emitter_close frees it. Errors
 * return a negative errno and write a one-line reason into the caller's buffer.
 */
#ifndef EXECTIME_EMITTER_H
#define EXECTIME_EMITTER_H

#include <stddef.h>

#include "event_codec.h"

typedef struct et_emitter et_emitter_t;

__attribute__((warn_unused_result)) int et_emitter_open(const char *redis_url, const char *stream,
                                                        et_emitter_t **out, char *err,
                                                        size_t err_cap);

/* One XADD: a map when n == 1, an array of maps when n > 1. */
__attribute__((warn_unused_result)) int et_emitter_send(et_emitter_t *em, const et_event_t *events,
                                                        size_t n, char *err, size_t err_cap);

/* XADD of raw bytes as field `event` (tests use it for malformed entries). */
__attribute__((warn_unused_result)) int et_emitter_send_raw(et_emitter_t *em, const void *bytes,
                                                            size_t len, char *err, size_t err_cap);

void et_emitter_close(et_emitter_t *em);

#endif
