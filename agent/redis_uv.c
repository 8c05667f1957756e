/* redis_uv — see redis_uv.h. */
#include "redis_uv.h"

#include <errno.h>
#include <stdlib.h>

#include "et_macros.h"

typedef struct redis_uv {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis cleaned up: late callbacks return */
    int events;            /* UV_READABLE | UV_WRITABLE that hiredis asked for */
} redis_uv_t;

static void on_poll(uv_poll_t *handle, int status, int events);

/* Polls for what hiredis wants, or stops polling when it wants nothing. */
static void update_poll(redis_uv_t *p)
{
    if (p->ac == NULL)
        return;
    if (p->events)
        uv_poll_start(&p->poll, p->events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    redis_uv_t *p = container_of(handle, redis_uv_t, poll);
    /* On an error libuv has stopped the poll: let hiredis find the socket's error by
     * trying both directions, as if the socket were readable and writable. */
    int ready = status < 0 ? p->events : events;
    if (p->ac != NULL && (ready & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (ready & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
    if (status < 0)
        update_poll(p); /* still attached: the error was transient, keep watching */
}

static void add_read(void *data)
{
    redis_uv_t *p = data;
    p->events |= UV_READABLE;
    update_poll(p);
}

static void del_read(void *data)
{
    redis_uv_t *p = data;
    p->events &= ~UV_READABLE;
    update_poll(p);
}

static void add_write(void *data)
{
    redis_uv_t *p = data;
    p->events |= UV_WRITABLE;
    update_poll(p);
}

static void del_write(void *data)
{
    redis_uv_t *p = data;
    p->events &= ~UV_WRITABLE;
    update_poll(p);
}

static void on_closed(uv_handle_t *handle)
{
    free(container_of((uv_poll_t *)handle, redis_uv_t, poll));
}

static void cleanup(void *data)
{
    redis_uv_t *p = data;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, on_closed);
}

int redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data != NULL)
        return -EEXIST;
    redis_uv_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    int rc = uv_poll_init(loop, &p->poll, ac->c.fd);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}
