/*
 * pg_conn — one non-blocking libpq connection driven by the libuv loop: looks up host names
 * on the thread pool (pg_resolve: libpq would block the loop in getaddrinfo), connects with
 * PQconnectStartParams/PQconnectPoll, reconnects with exponential backoff (100 ms doubling
 * to 2 s: an outage's end is noticed quickly) after any failure, and runs one query (a
 * simple-protocol string that may hold several statements and COPY FROM STDIN) at a time.
 *
 * Dead peers: unless the conninfo sets them, TCP keepalives (idle 10 s, every 5 s, 3
 * probes) and tcp_user_timeout (15 s) are added, so a half-open connection fails in
 * seconds instead of hanging a query. An owner may also set a query watchdog
 * (pg_conn_set_query_timeout): a query with no complete answer within it resets the
 * session, as if it had been lost.
 *
 * Callbacks:
 *  - on_up(conn, arg) runs each time a session is established; the owner then sends its
 *    session set-up as an ordinary query. on_down(conn, reason, arg) runs when a session
 *    is lost or an attempt fails (reason is valid during the call only).
 *  - A query's callback gets PG_QUERY_RESULT once per PGresult (the result belongs to
 *    pg_conn and is cleared after the call returns; copy what you need), then exactly one
 *    of PG_QUERY_DONE (all results read) or PG_QUERY_LOST (the session died; the server may
 *    or may not have committed). For a PGRES_COPY_IN result the callback must, before it
 *    returns, send the rows with pg_conn_copy_data and finish with pg_conn_copy_end.
 *
 * Logs: a lost session is one warning with libpq's reason (or the socket's error); while
 * attempts keep failing, the 1st, 2nd, 4th, 8th… of a streak and any whose reason
 * changed are logged (et_retry_log_t), each with its number and the delay before the
 * next; "postgres connected" then says how many had failed. A quiet connection
 * (pg_conn_set_quiet: the pool's spare sessions, which fail like the first) logs all
 * of this at debug level.
 *
 * Ownership: pg_conn_t is embedded by its owner; pg_conn_close stops everything and calls
 * on_closed once every handle is closed, after which the owner may free the memory.
 * Functions return 0 or a negative errno; -EBUSY when a query is already running, -ENOTCONN
 * when no session is up.
 */
#ifndef EXECTIME_PG_CONN_H
#define EXECTIME_PG_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "et_backoff.h"

typedef enum pg_conn_state {
    PG_CONN_IDLE_DOWN = 0, /* not started */
    PG_CONN_RESOLVING,     /* host names looked up off the loop (pg_resolve) */
    PG_CONN_CONNECTING,
    PG_CONN_READY,   /* session up, no query running */
    PG_CONN_BUSY,    /* a query is running */
    PG_CONN_BACKOFF, /* waiting before the next attempt */
    PG_CONN_CLOSING,
    PG_CONN_CLOSED,
} pg_conn_state_t;

typedef enum pg_query_event {
    PG_QUERY_RESULT,
    PG_QUERY_DONE,
    PG_QUERY_LOST,
} pg_query_event_t;

typedef struct pg_conn pg_conn_t;
typedef void (*pg_conn_up_fn)(pg_conn_t *conn, void *arg);
typedef void (*pg_conn_down_fn)(pg_conn_t *conn, const char *reason, void *arg);
typedef void (*pg_query_fn)(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg);
typedef void (*pg_conn_closed_fn)(pg_conn_t *conn);
/* A NOTIFY on a channel this session listens to (strings valid during the call only). */
typedef void (*pg_conn_notify_fn)(pg_conn_t *conn, const char *channel, const char *payload,
                                  void *arg);

struct pg_poll; /* the uv_poll_t of one socket, re-created on every connection */
struct pg_resolve;

struct pg_conn {
    uv_loop_t *loop;
    const char *name; /* for logs: "writer", "maintenance" */
    char *conninfo;   /* owned copy */
    pg_conn_state_t state;
    PGconn *pg;
    struct pg_poll *poll;
    struct pg_resolve *resolve; /* the host name lookup in flight, while RESOLVING */
    int polled_fd;
    char **keywords;  /* owned: conninfo parsed, with our TCP defaults; NULL-ended */
    char **values;    /* NULL when the conninfo did not parse: libpq says why */
    uv_timer_t timer; /* backoff, connect timeout, query watchdog */
    uint64_t backoff_ms;
    uint64_t query_timeout_ms; /* watchdog of a running query; 0: none */
    bool flushing;             /* libpq still holds output: watch for writable */
    bool pipelined;            /* the running query is a pipeline: it ends at its sync */
    pg_conn_up_fn on_up;
    pg_conn_down_fn on_down;
    void *arg;
    pg_query_fn query_cb; /* the running query's callback */
    void *query_arg;
    pg_conn_closed_fn on_closed;
    pg_conn_notify_fn on_notify; /* NULL: notifications are dropped */
    et_retry_log_t retry;        /* failed attempts in a row, for the log */
    bool quiet;                  /* connection lines at debug level */
};

__attribute__((warn_unused_result)) int pg_conn_init(pg_conn_t *conn, uv_loop_t *loop,
                                                     const char *name, const char *conninfo,
                                                     pg_conn_up_fn on_up, pg_conn_down_fn on_down,
                                                     void *arg);

/*
 * Parses conninfo (a URI or key=value string) into NULL-terminated keyword and value
 * arrays for PQconnectStartParams, adding keepalives and tcp_user_timeout where the
 * conninfo does not set them (the user's own values win). The arrays and their strings
 * are malloc'd; free them with pg_conninfo_free. Returns 0, -EINVAL with libpq's reason in
 * err, or -ENOMEM.
 */
__attribute__((warn_unused_result)) int pg_conninfo_params(const char *conninfo, char ***keywords,
                                                           char ***values, char *err,
                                                           size_t err_cap);
void pg_conninfo_free(char **keywords, char **values);

/* Hands every notification this session receives to on_notify (with the owner's arg). */
void pg_conn_set_notify(pg_conn_t *conn, pg_conn_notify_fn on_notify);

/* Logs this connection's losses, failed attempts and connects at debug level only. */
void pg_conn_set_quiet(pg_conn_t *conn, bool quiet);

/* Sets the query watchdog (0: none); applies from the next query on. */
void pg_conn_set_query_timeout(pg_conn_t *conn, uint64_t ms);

/* Starts the first connection attempt; failures are retried with backoff. */
void pg_conn_start(pg_conn_t *conn);

/* Sends a simple-protocol query string. */
__attribute__((warn_unused_result)) int pg_conn_query(pg_conn_t *conn, const char *sql,
                                                      pg_query_fn cb, void *arg);

/* Sends a parameterized single-statement query (text parameters, text results). */
__attribute__((warn_unused_result)) int pg_conn_query_params(pg_conn_t *conn, const char *sql,
                                                             int nparams, const char *const *values,
                                                             pg_query_fn cb, void *arg);

/* One statement of a pipeline: a prepared statement's name or SQL text, text parameters. */
typedef struct pg_step {
    const char *sql; /* SQL text, or NULL to run the prepared statement `prepared` */
    const char *prepared;
    int nparams;
    const char *const *values;
    int binary_result; /* 1: results in binary format */
} pg_step_t;

/*
 * Sends every step in pipeline mode with one sync at the end: one round trip. The callback
 * gets each step's results in order (PGRES_PIPELINE_ABORTED for steps skipped after an
 * error), then PG_QUERY_DONE once the sync arrived (or PG_QUERY_LOST). Steps and their
 * values are copied by libpq before this returns.
 */
__attribute__((warn_unused_result)) int pg_conn_pipeline(pg_conn_t *conn, const pg_step_t *steps,
                                                         int nsteps, pg_query_fn cb, void *arg);

/* Inside a PGRES_COPY_IN result callback: queue rows, then end the copy. */
__attribute__((warn_unused_result)) int pg_conn_copy_data(pg_conn_t *conn, const char *data,
                                                          size_t len);
__attribute__((warn_unused_result)) int pg_conn_copy_end(pg_conn_t *conn, const char *error);

/* Drops the session (e.g. after a protocol surprise) and reconnects after backoff. */
void pg_conn_reset(pg_conn_t *conn, const char *reason);

/* A session is up and no query is running. */
bool pg_conn_ready(const pg_conn_t *conn);
/* A session is up (a query may be running). */
bool pg_conn_up(const pg_conn_t *conn);
const char *pg_conn_state_name(pg_conn_state_t state);

void pg_conn_close(pg_conn_t *conn, pg_conn_closed_fn on_closed);

#endif
