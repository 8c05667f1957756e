/*
 * redis_uv — drives a hiredis async context from the libuv loop (our own adapter).
 *
 * Why not hiredis/adapters/libuv.h: Debian's hiredis 0.14.1 adapter returns early when
 * libuv reports a poll error. libuv turns POLLERR into UV_EBADF and stops the poll, so a
 * refused connect or a reset connection never reaches hiredis: the context sits in
 * "connecting" or on a dead socket forever. Here a poll error is handed to hiredis as a
 * read and a write event, so hiredis reads the socket's real error and calls the connect
 * or disconnect callback; polling resumes when the context survives.
 *
 * Ownership: redis_uv_attach allocates the adapter's state; hiredis frees it through the
 * cleanup hook when the context goes away (the poll handle closes first, then the state
 * is freed in the close callback, so a late libuv callback never sees freed memory).
 * Errors: returns 0, or -ENOMEM / a libuv error code, in which case nothing is attached
 * and the caller frees the context.
 */
#ifndef EXECTIME_REDIS_UV_H
#define EXECTIME_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

__attribute__((warn_unused_result)) int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
