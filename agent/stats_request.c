/* stats_request — see stats_request.h. */
#include "stats_request.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"
#include "stats_response.h"

/* The pipeline: the endpoint's rows statements sit between the tenant check and COMMIT. */
enum { STEP_BEGIN, STEP_CLAIMS, STEP_ALLOWED, STEP_FIRST_ROWS };

static void copy_header(const http_request_t *req, const char *name, char *out, size_t cap)
{
    const char *v = http_request_header(req, name);
    snprintf(out, cap, "%s", v ? v : "");
}

static void request_init(stats_db_request_t *r, const stats_db_request_ops_t *ops, stats_api_t *api,
                         const http_request_t *req, http_response_t *res)
{
    r->ops = ops;
    r->api = api;
    r->res = res;
    snprintf(r->request_id, sizeof r->request_id, "%s", req->request_id ? req->request_id : "-");
    copy_header(req, "Origin", r->origin, sizeof r->origin);
    copy_header(req, "If-None-Match", r->if_none_match, sizeof r->if_none_match);
}

/* Its claims, then the endpoint's own members and the allocation. */
static void request_free(stats_db_request_t *r)
{
    auth_claims_free(&r->claims);
    r->ops->free(r);
}

/* 503 to a request whose state could not be allocated. */
static void respond_no_memory(http_response_t *res)
{
    int rc = http_response_header(res, "Retry-After", "5"); /* as every other 503 */
    (void)rc;
    http_respond_error(res, 503, "unavailable", "out of memory");
}

void stats_db_request_respond_error(stats_db_request_t *r, int status, const char *code,
                                    const char *parameter, const char *message)
{
    if (r->res == NULL)
        return;
    stats_reply_to_t to = {r->api->cfg->cors_origins, r->origin};
    stats_respond_error(r->res, &to, status, code, parameter, message);
    r->res = NULL;
}

/* stats_api_admit for r: false when it answered (preflight, 405, 401, 503). */
static bool admit_method_and_token(stats_db_request_t *r, const http_request_t *req, int64_t now_us)
{
    if (!stats_api_admit(r->api, req, r->res, r->origin, now_us, &r->claims)) {
        r->res = NULL; /* answered */
        return false;
    }
    return true;
}

bool stats_db_request_resolve_tenant(stats_db_request_t *r, const api_params_t *params)
{
    const char *why = stats_api_tenant(&r->claims, params, r->tenant, sizeof r->tenant);
    if (why)
        stats_db_request_respond_error(r, 400, "invalid_parameter", "tenant_id", why);
    return why == NULL;
}

/* --- the answer ------------------------------------------------------------------------------ */

static void respond_ok(stats_db_request_t *r)
{
    size_t len = 0, limit = (size_t)r->api->cfg->api_max_response_bytes;
    bool too_large;
    char *body = r->ops->render(r, limit, &len, &too_large);
    if (body == NULL && too_large) {
        char msg[256];
        snprintf(msg, sizeof msg, "the answer would be larger than %zu bytes: %s", limit,
                 r->ops->too_large_advice);
        stats_db_request_respond_error(r, 422, "response_too_large", NULL, msg);
        return;
    }
    if (body == NULL) {
        stats_db_request_respond_error(r, 503, "unavailable", NULL, "out of memory");
        return;
    }
    stats_reply_to_t to = {r->api->cfg->cors_origins, r->origin};
    stats_respond_body(r->res, &to, r->if_none_match, body, len);
    free(body);
    r->res = NULL;
}

/* --- the database round trip -------------------------------------------------------------- */

/* The end of the request, whichever came last: the answer (if the client is still there),
 * what the endpoint keeps, then the request is freed. */
static void finish_request(stats_db_request_t *r)
{
    if (r->conn) {
        pg_pool_release(&r->api->pool, r->conn);
        r->conn = NULL;
    }
    if (r->db_error)
        stats_db_request_respond_error(r, 503, "unavailable", NULL,
                                       "the database could not answer; retry");
    else if (!r->allowed)
        stats_db_request_respond_error(r, 403, "forbidden", "tenant_id",
                                       "this token may not read that tenant");
    else if (r->res)
        respond_ok(r);
    if (r->ops->on_finish)
        r->ops->on_finish(r);
    request_free(r);
}

void stats_db_request_add_rows(stats_db_request_t *r, stats_answer_t *answer, PGresult *res)
{
    for (int i = 0; i < PQntuples(res) && !r->db_error; i++) {
        if (stats_answer_add_row(answer, res, i) < 0) {
            log_write(LOG_ERROR, r->ops->log_row_unreadable, "request_id", r->request_id, NULL);
            r->db_error = true;
        }
    }
}

static void on_result(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    stats_db_request_t *r = arg;
    if (event == PG_QUERY_LOST) {
        r->db_error = true;
        r->conn = NULL; /* the session is gone; it is not ours to release twice */
        pg_pool_release(&r->api->pool, conn);
        finish_request(r);
        return;
    }
    if (event == PG_QUERY_DONE) {
        finish_request(r);
        return;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
        /* The first error only: the steps after it are aborted because of it. */
        if (!r->db_error && st == PGRES_FATAL_ERROR) {
            char error[256];
            snprintf(error, sizeof error, "%s", PQresultErrorMessage(res));
            error[strcspn(error, "\n")] = '\0';
            log_write(LOG_ERROR, r->ops->log_query_failed, "error", error, "request_id",
                      r->request_id, NULL);
        }
        r->db_error = true;
        r->step++;
        return;
    }
    if (r->step == STEP_ALLOWED)
        r->allowed = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    else if (r->step >= STEP_FIRST_ROWS && r->step < STEP_FIRST_ROWS + r->rows_steps)
        r->ops->on_rows(r, r->step - STEP_FIRST_ROWS, res);
    r->step++;
}

static void on_session(pg_conn_t *conn, void *arg)
{
    stats_db_request_t *r = arg;
    r->conn = conn;
    if (r->res == NULL) { /* abandoned while waiting */
        finish_request(r);
        return;
    }
    pg_step_t steps[STEP_FIRST_ROWS + STATS_DB_ROWS_STEPS_MAX + 1];
    int rows_steps = r->ops->fill_rows_steps(r, &steps[STEP_FIRST_ROWS]);
    assert(rows_steps >= 1 && rows_steps <= STATS_DB_ROWS_STEPS_MAX);
    const char *claims_values[1] = {r->claims.claims_json};
    const char *allowed_values[1] = {r->tenant};
    steps[STEP_BEGIN] = (pg_step_t){STATS_SQL_BEGIN, NULL, 0, NULL, 0};
    steps[STEP_CLAIMS] = (pg_step_t){STATS_SQL_CLAIMS, NULL, 1, claims_values, 0};
    steps[STEP_ALLOWED] = (pg_step_t){NULL, STATS_ALLOWED_STATEMENT, 1, allowed_values, 0};
    steps[STEP_FIRST_ROWS + rows_steps] = (pg_step_t){"COMMIT", NULL, 0, NULL, 0};
    r->rows_steps = rows_steps;
    r->step = 0;
    if (pg_conn_pipeline(conn, steps, STEP_FIRST_ROWS + rows_steps + 1, on_result, r) < 0) {
        r->db_error = true;
        finish_request(r);
    }
}

static void on_no_session(const char *why, void *arg)
{
    stats_db_request_t *r = arg;
    r->db_error = true;
    finish_request(r);
}

static void on_abandon(http_response_t *res, void *arg)
{
    stats_db_request_t *r = arg;
    http_respond(res, 503, NULL, NULL, 0); /* only frees it: the client is gone */
    r->res = NULL;
    if (r->waiter.queued) {
        pg_pool_cancel(&r->api->pool, &r->waiter);
        request_free(r);
    }
    /* With a session running, finish_request frees r when the round trip ends. */
}

/* Waits for a reader session and makes the round trip. When no session can be waited for,
 * answers 503 and frees r at once. */
static void submit(stats_db_request_t *r)
{
    http_response_on_abandon(r->res, on_abandon, r);
    int rc = pg_pool_acquire(&r->api->pool, &r->waiter, on_session, on_no_session, r);
    if (rc < 0) {
        stats_db_request_respond_error(r, 503, "unavailable", NULL,
                                       rc == -EBUSY
                                           ? "too many requests are waiting for the database"
                                           : "the database is unreachable; retry");
        request_free(r);
    }
}

void stats_db_request_handle(stats_api_t *api, const http_request_t *req, http_response_t *res,
                             const stats_db_request_ops_t *ops)
{
    assert(ops->size >= sizeof(stats_db_request_t));
    stats_db_request_t *r = calloc(1, ops->size);
    if (r == NULL) {
        respond_no_memory(res);
        return;
    }
    request_init(r, ops, api, req, res);
    if (ops->init(r) < 0) {
        request_free(r);
        respond_no_memory(res);
        return;
    }
    int64_t now = et_now_us();
    if (!admit_method_and_token(r, req, now) || !ops->admit(r, req, now)) {
        request_free(r);
        return;
    }
    submit(r);
}
