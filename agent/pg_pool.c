/* pg_pool — see pg_pool.h. */
#include "pg_pool.h"

#include <errno.h>
#include <string.h>

#include "et_macros.h"
#include "log.h"

static void dispatch(pg_pool_t *pool);

static const char *const session_state_names[] = {
    [PG_SESSION_DOWN] = "down",
    [PG_SESSION_SETTING_UP] = "setting_up",
    [PG_SESSION_FREE] = "free",
    [PG_SESSION_LENT] = "lent",
    [PG_SESSION_ROLLING_BACK] = "rolling_back",
};

/* The one place a session changes state, so every change is logged. */
static void session_set_state(pg_pool_session_t *s, pg_session_state_t next)
{
    if (s->state == next)
        return;
    if (log_enabled(LOG_DEBUG))
        log_write(LOG_DEBUG, "API session state", "from", session_state_names[s->state], "to",
                  session_state_names[next], NULL);
    s->state = next;
}

/* First line of a result's error message. */
static void result_error(const PGresult *res, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", PQresultErrorMessage(res));
    buf[strcspn(buf, "\n")] = '\0';
}

static void on_setup_done(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    pg_pool_session_t *s = arg;
    if (event == PG_QUERY_RESULT) {
        if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
            char msg[512];
            result_error(res, msg, sizeof msg);
            log_write(LOG_ERROR, "API session set-up failed", "error", msg, NULL);
            s->setup_failed = true;
        }
        return;
    }
    if (event != PG_QUERY_DONE)
        return; /* lost: on_session_down has marked it down */
    if (!s->setup_failed) {
        session_set_state(s, PG_SESSION_FREE);
        dispatch(s->pool);
    } else { /* reconnect with backoff and try again: the cause may be fixed meanwhile */
        pg_conn_reset(conn, "session set-up failed");
    }
}

static void on_session_up(pg_conn_t *conn, void *arg)
{
    pg_pool_session_t *s = arg;
    s->setup_failed = false;
    session_set_state(s, PG_SESSION_SETTING_UP);
    if (pg_conn_query(conn, s->pool->setup_sql, on_setup_done, s) < 0)
        pg_conn_reset(conn, "cannot send the session set-up");
}

static void on_session_down(pg_conn_t *conn, const char *reason, void *arg)
{
    pg_pool_session_t *s = arg;
    session_set_state(s, PG_SESSION_DOWN);
}

/* The ROLLBACK sent by pg_pool_release: the session is free again only if it worked. */
static void on_rolled_back(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    pg_pool_session_t *s = arg;
    if (event == PG_QUERY_RESULT) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char msg[512];
            result_error(res, msg, sizeof msg);
            log_write(LOG_WARN, "API session ROLLBACK failed", "error", msg, NULL);
            s->rollback_failed = true;
        }
        return;
    }
    if (event != PG_QUERY_DONE)
        return; /* lost: on_session_down has marked it down */
    if (s->rollback_failed || PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        pg_conn_reset(conn, "ROLLBACK left the session unclean");
        return;
    }
    session_set_state(s, PG_SESSION_FREE);
    dispatch(s->pool);
}

int pg_pool_init(pg_pool_t *pool, uv_loop_t *loop, const char *conninfo, int size, int queue_max,
                 const char *setup_sql)
{
    memset(pool, 0, sizeof *pool);
    if (size < 1 || size > PG_POOL_MAX)
        return -EINVAL;
    pool->loop = loop;
    pool->setup_sql = setup_sql;
    pool->size = size;
    pool->queue_max = queue_max;
    for (int i = 0; i < size; i++) {
        pg_pool_session_t *s = &pool->sessions[i];
        s->pool = pool;
        int rc = pg_conn_init(&s->conn, loop, "api", conninfo, on_session_up, on_session_down, s);
        if (rc < 0)
            return rc;
        /* The sessions fail and recover together: the first one's lines tell it all. */
        pg_conn_set_quiet(&s->conn, i > 0);
    }
    return 0;
}

void pg_pool_start(pg_pool_t *pool)
{
    for (int i = 0; i < pool->size; i++)
        pg_conn_start(&pool->sessions[i].conn);
}

static bool session_free(const pg_pool_session_t *s)
{
    return s->state == PG_SESSION_FREE && pg_conn_ready(&s->conn);
}

int pg_pool_ready_count(const pg_pool_t *pool)
{
    int n = 0;
    for (int i = 0; i < pool->size; i++) {
        const pg_pool_session_t *s = &pool->sessions[i];
        n += s->state != PG_SESSION_DOWN && s->state != PG_SESSION_SETTING_UP &&
             pg_conn_up(&s->conn);
    }
    return n;
}

/* Lends free sessions to the oldest waiters. */
static void dispatch(pg_pool_t *pool)
{
    for (int i = 0; i < pool->size && pool->head; i++) {
        pg_pool_session_t *s = &pool->sessions[i];
        if (!session_free(s))
            continue;
        pg_pool_waiter_t *w = pool->head;
        pool->head = w->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->queued--;
        w->queued = false;
        w->next = NULL;
        session_set_state(s, PG_SESSION_LENT);
        w->run(&s->conn, w->arg);
    }
}

int pg_pool_acquire(pg_pool_t *pool, pg_pool_waiter_t *w, pg_pool_run_fn run, pg_pool_fail_fn fail,
                    void *arg)
{
    if (pool->closing)
        return -ENOTCONN;
    if (pg_pool_ready_count(pool) == 0)
        return -ENOTCONN;
    if (pool->queued >= pool->queue_max)
        return -EBUSY;
    w->run = run;
    w->fail = fail;
    w->arg = arg;
    w->next = NULL;
    w->queued = true;
    if (pool->tail)
        pool->tail->next = w;
    else
        pool->head = w;
    pool->tail = w;
    pool->queued++;
    dispatch(pool);
    return 0;
}

void pg_pool_cancel(pg_pool_t *pool, pg_pool_waiter_t *w)
{
    if (!w->queued)
        return;
    pg_pool_waiter_t **p = &pool->head;
    pg_pool_waiter_t *prev = NULL;
    while (*p && *p != w) {
        prev = *p;
        p = &(*p)->next;
    }
    if (*p == NULL)
        return;
    *p = w->next;
    if (pool->tail == w)
        pool->tail = prev;
    pool->queued--;
    w->queued = false;
}

/*
 * Takes a session back and makes it clean before anyone else gets it: a request that
 * failed inside its transaction (statement timeout, cancel, lock timeout, out of memory)
 * leaves it aborted, and the next BEGIN on it would fail, request after request.
 */
void pg_pool_release(pg_pool_t *pool, pg_conn_t *conn)
{
    pg_pool_session_t *s = container_of(conn, pg_pool_session_t, conn);
    if (s->state != PG_SESSION_LENT)
        return; /* lost while lent: it is down and sets itself up again when back */
    if (!pg_conn_up(conn)) {
        session_set_state(s, PG_SESSION_DOWN);
        return;
    }
    PGTransactionStatusType tx =
        pg_conn_ready(conn) ? PQtransactionStatus(conn->pg) : PQTRANS_ACTIVE;
    switch (tx) {
    case PQTRANS_IDLE:
        session_set_state(s, PG_SESSION_FREE);
        dispatch(pool);
        return;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        log_write(LOG_INFO, "API session released inside a transaction: rolling back",
                  "transaction", tx == PQTRANS_INERROR ? "aborted" : "open", NULL);
        s->rollback_failed = false;
        session_set_state(s, PG_SESSION_ROLLING_BACK);
        if (pg_conn_query(conn, "ROLLBACK", on_rolled_back, s) < 0 && pg_conn_up(conn))
            pg_conn_reset(conn, "cannot send ROLLBACK");
        return;
    case PQTRANS_ACTIVE:
    case PQTRANS_UNKNOWN: break;
    }
    /* Down first: the reset ends a running query, whose callback must not find it lent. */
    session_set_state(s, PG_SESSION_DOWN);
    pg_conn_reset(conn, "API session released with a command running or in an unknown state");
}

static void on_session_closed(pg_conn_t *conn)
{
    pg_pool_session_t *s = container_of(conn, pg_pool_session_t, conn);
    pg_pool_t *pool = s->pool;
    if (--pool->closing == 0 && pool->on_closed)
        pool->on_closed(pool);
}

void pg_pool_close(pg_pool_t *pool, void (*on_closed)(pg_pool_t *pool))
{
    pool->on_closed = on_closed;
    pool->closing = pool->size;
    while (pool->head) {
        pg_pool_waiter_t *w = pool->head;
        pool->head = w->next;
        w->queued = false;
        pool->queued--;
        w->fail("the agent is shutting down", w->arg);
    }
    pool->tail = NULL;
    for (int i = 0; i < pool->size; i++)
        pg_conn_close(&pool->sessions[i].conn, on_session_closed);
}
