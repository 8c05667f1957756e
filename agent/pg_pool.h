/*
 * pg_pool — a few pg_conn sessions for request/response work (the statistics API): each
 * session runs the owner's set-up SQL after every (re)connect, then serves one request at
 * a time. Requests wait in a bounded FIFO while every ready session is busy.
 *
 * A request embeds a pg_pool_waiter_t. pg_pool_acquire either fails at once (no session
 * is up, or the queue is full: the caller answers 503) or later calls run(conn, arg) with
 * a ready session, exactly once, unless pg_pool_cancel removed the waiter first. The user
 * of a session calls pg_pool_release exactly once, when its last callback has run
 * (PG_QUERY_DONE or PG_QUERY_LOST) or when it sent nothing.
 *
 * A released session is lent again only once it is clean: whatever the request left
 * behind (a statement timeout, a cancel, a lock timeout or any other error inside its
 * BEGIN ... COMMIT leaves the session in an aborted transaction) is cleaned up by
 * pg_pool_release, the one place that decides: outside a transaction the session is free
 * at once; inside one (PQTRANS_INTRANS, PQTRANS_INERROR) the pool sends ROLLBACK first;
 * with a command still running or the status unknown (PQTRANS_ACTIVE, PQTRANS_UNKNOWN)
 * it drops the session, which reconnects and runs the set-up SQL again.
 *
 * Ownership: pg_pool_t is embedded by its owner; pg_pool_close calls on_closed after every
 * session closed; waiters still queued then are failed with their fail callback.
 */
#ifndef EXECTIME_PG_POOL_H
#define EXECTIME_PG_POOL_H

#include <stdbool.h>
#include <uv.h>

#include "pg_conn.h"

#define PG_POOL_MAX 16

typedef struct pg_pool_waiter pg_pool_waiter_t;
typedef void (*pg_pool_run_fn)(pg_conn_t *conn, void *arg);
typedef void (*pg_pool_fail_fn)(const char *why, void *arg);

struct pg_pool_waiter {
    pg_pool_waiter_t *next; /* FIFO link while queued */
    pg_pool_run_fn run;
    pg_pool_fail_fn fail;
    void *arg;
    bool queued;
};

/* One enum of states per session; session_set_state in pg_pool.c changes it. */
typedef enum pg_session_state {
    PG_SESSION_DOWN = 0,     /* no session: connecting or waiting to reconnect */
    PG_SESSION_SETTING_UP,   /* the set-up SQL runs */
    PG_SESSION_FREE,         /* set up, clean, waiting for a request */
    PG_SESSION_LENT,         /* a request uses it until pg_pool_release */
    PG_SESSION_ROLLING_BACK, /* ROLLBACK of a transaction a released request left open */
} pg_session_state_t;

typedef struct pg_pool_session {
    pg_conn_t conn;
    struct pg_pool *pool;
    pg_session_state_t state;
    bool setup_failed;    /* an error came back while the set-up SQL ran */
    bool rollback_failed; /* an error came back for the cleaning ROLLBACK */
} pg_pool_session_t;

typedef struct pg_pool {
    uv_loop_t *loop;
    const char *setup_sql; /* borrowed; run on every new session */
    pg_pool_session_t sessions[PG_POOL_MAX];
    int size;
    pg_pool_waiter_t *head; /* waiting requests, oldest first */
    pg_pool_waiter_t *tail;
    int queued;
    int queue_max;
    int closing; /* sessions not yet closed */
    void (*on_closed)(struct pg_pool *pool);
} pg_pool_t;

__attribute__((warn_unused_result)) int pg_pool_init(pg_pool_t *pool, uv_loop_t *loop,
                                                     const char *conninfo, int size, int queue_max,
                                                     const char *setup_sql);
void pg_pool_start(pg_pool_t *pool);

/* 0 when run will be called later; -ENOTCONN (no session up) or -EBUSY (queue full). */
__attribute__((warn_unused_result)) int pg_pool_acquire(pg_pool_t *pool, pg_pool_waiter_t *w,
                                                        pg_pool_run_fn run, pg_pool_fail_fn fail,
                                                        void *arg);
/* Removes a waiter that has not run yet; harmless otherwise. */
void pg_pool_cancel(pg_pool_t *pool, pg_pool_waiter_t *w);
/*
 * Gives back a session lent by run(). Never fails: a session left inside a transaction
 * is rolled back, one in an unknown state is dropped and reconnected (see above). Safe to
 * call from the session's query callback and after the session was lost.
 */
void pg_pool_release(pg_pool_t *pool, pg_conn_t *conn);

/* Sessions up and set up (lent and rolling-back ones included). */
int pg_pool_ready_count(const pg_pool_t *pool);

void pg_pool_close(pg_pool_t *pool, void (*on_closed)(pg_pool_t *pool));

#endif
