/*
 * stats_request — the life cycle every statistics endpoint's request shares (stats_query,
 * regressions): the request's id and the headers its answer depends on, copied on arrival;
 * admission (stats_api_admit) and the tenant rule (stats_api_tenant); a reader session
 * borrowed from the statistics API's pool; one pipelined round trip in one transaction
 * (BEGIN, the claims set locally, the tenant check, the endpoint's rows statements,
 * COMMIT); and the answer: 503 when the database could not answer, 403 when the token may
 * not read the tenant, else the body the endpoint renders. What is the endpoint's own
 * (parameters, plans, rows, rendering) it gives through a table of callbacks.
 *
 * Ownership: an endpoint allocates its request with a stats_db_request_t embedded (first,
 * by convention), calls stats_db_request_init, and until stats_db_request_submit frees it
 * itself with stats_db_request_free. Submit hands it over: this module frees it (ops->free)
 * when its response is sent and its database work has finished, whichever comes last; the
 * callbacks never run after that. Errors: every refusal is a JSON error body
 * (stats_response); answering a request already answered does nothing.
 */
#ifndef EXECTIME_STATS_REQUEST_H
#define EXECTIME_STATS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api_params.h"
#include "auth.h"
#include "event_codec.h"
#include "http_server.h"
#include "pg_conn.h"
#include "pg_pool.h"
#include "stats_answer.h"
#include "stats_query.h"

/* Rows statements one round trip may carry: regressions reads two periods. */
#define STATS_DB_ROWS_STEPS_MAX 2

typedef struct stats_db_request stats_db_request_t;

/* What an endpoint adds to the shared life cycle. Every callback gets the embedded core. */
typedef struct stats_db_request_ops {
    /* As the session arrives (and the client is still there): fills 1 to
     * STATS_DB_ROWS_STEPS_MAX rows statements into rows and returns how many. Their values
     * must live in the request: the pipeline copies them only as it is sent. */
    int (*fill_rows_steps)(stats_db_request_t *r, pg_step_t *rows);
    /* The result of rows statement index (from 0, in fill order), when it did not fail;
     * valid during the call only. Reads the rows with stats_db_request_add_rows. */
    void (*on_rows)(stats_db_request_t *r, int index, PGresult *res);
    /* The body of a successful round trip, at most limit bytes; NULL with *too_large, or
     * NULL alone when out of memory. The caller frees it. */
    char *(*render)(stats_db_request_t *r, size_t limit, size_t *len, bool *too_large);
    /* Optional: once, as the request finishes (answered or abandoned), before it is freed:
     * what the endpoint keeps from the round trip. */
    void (*on_finish)(stats_db_request_t *r);
    /* Frees the endpoint's own members and the allocation itself (claims are freed). */
    void (*free)(stats_db_request_t *r);
    const char *too_large_advice;   /* the 422's message after "larger than N bytes: " */
    const char *log_query_failed;   /* the log line of a statement PostgreSQL refused */
    const char *log_row_unreadable; /* the log line of a row stats_answer cannot read */
} stats_db_request_ops_t;

struct stats_db_request {
    const stats_db_request_ops_t *ops;
    stats_api_t *api;
    http_response_t *res; /* NULL once answered */
    pg_pool_waiter_t waiter;
    pg_conn_t *conn; /* the session lent to us, while in use */
    auth_claims_t claims;
    char tenant[ET_TENANT_ID_MAX + 1];
    char request_id[HTTP_REQUEST_ID_MAX + 1]; /* the HTTP request's, for its log lines */
    char if_none_match[256];
    char origin[256];
    int step;       /* pipeline step whose results arrive */
    int rows_steps; /* rows statements in the round trip */
    bool allowed;   /* PostgreSQL said the token may read the tenant */
    bool db_error;  /* the round trip failed: the answer is 503 */
};

/* Copies what the answer needs from req (id, Origin, If-None-Match); allocates nothing. */
void stats_db_request_init(stats_db_request_t *r, const stats_db_request_ops_t *ops,
                           stats_api_t *api, const http_request_t *req, http_response_t *res);

/* Frees a request not yet submitted (claims, then ops->free). */
void stats_db_request_free(stats_db_request_t *r);

/* stats_api_admit for r: false when it answered (preflight, 405, 401, 503); r->claims
 * holds the token's claims when true. */
bool stats_db_request_admit(stats_db_request_t *r, const http_request_t *req, int64_t now_us);

/* stats_api_tenant into r->tenant: false when it answered 400 naming tenant_id. */
bool stats_db_request_resolve_tenant(stats_db_request_t *r, const api_params_t *params);

/* Answers a JSON error unless the request was answered already. */
void stats_db_request_respond_error(stats_db_request_t *r, int status, const char *code,
                                    const char *parameter, const char *message);

/* Waits for a reader session and makes the round trip; from here this module owns r. When
 * no session can be waited for it answers 503 and frees r at once. */
void stats_db_request_submit(stats_db_request_t *r);

/* Merges every row of res into answer; an unreadable row is logged and fails the round
 * trip (503), and the rows after it are not read. */
void stats_db_request_add_rows(stats_db_request_t *r, stats_answer_t *answer, PGresult *res);

/* 503 to a request whose state could not be allocated (before any stats_db_request_init). */
void stats_db_request_respond_no_memory(http_response_t *res);

#endif
