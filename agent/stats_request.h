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
 * Ownership: stats_db_request_handle allocates an endpoint's request (ops->size bytes,
 * zeroed, the stats_db_request_t its first member) and frees it (ops->free) when its
 * response is sent and its database work has finished, whichever comes last; no callback
 * runs after that. Errors: every refusal is a JSON error body (stats_response); answering a
 * request already answered does nothing.
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
    size_t size; /* of the endpoint's request, which starts with its stats_db_request_t */
    /* The endpoint's own allocations, once the request is allocated: 0, or -ENOMEM (503). */
    int (*init)(stats_db_request_t *r);
    /* After the method and the token passed: parses the endpoint's parameters, resolves the
     * tenant (stats_db_request_resolve_tenant) and plans. Answers any refusal itself and
     * returns false; true sends the request to the database. */
    bool (*admit)(stats_db_request_t *r, const http_request_t *req, int64_t now_us);
    /* As the session arrives (and the client is still there): fills 1 to
     * STATS_DB_ROWS_STEPS_MAX rows statements into rows and returns how many. Their values
     * must outlive the call (keep them in the request): the pipeline is sent after it. */
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
    /* Frees the endpoint's own members (also after a failed init) and the allocation itself
     * (the claims are freed). */
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

/* Handles one request to an endpoint (any method: preflight, 405 and 401 come first). */
void stats_db_request_handle(stats_api_t *api, const http_request_t *req, http_response_t *res,
                             const stats_db_request_ops_t *ops);

/* stats_api_tenant into r->tenant: false when it answered 400 naming tenant_id. */
bool stats_db_request_resolve_tenant(stats_db_request_t *r, const api_params_t *params);

/* Answers a JSON error unless the request was answered already. */
void stats_db_request_respond_error(stats_db_request_t *r, int status, const char *code,
                                    const char *parameter, const char *message);

/* Merges every row of res into answer; an unreadable row is logged and fails the round
 * trip (503), and the rows after it are not read. */
void stats_db_request_add_rows(stats_db_request_t *r, stats_answer_t *answer, PGresult *res);

#endif
