/*
 * Integration tests of the statistics API under faults, against real servers: a query
 * that fails inside its transaction (statement timeout, cancel, lock timeout, terminated
 * backend) answers 503, and every request after it is answered again, because the failed
 * session is rolled back (or reconnected) before it is lent again.
 *
 * Each fault is produced the way it happens in production: another session holds
 * `LOCK TABLE exectime.rollup_day IN ACCESS EXCLUSIVE MODE` while an API request runs, and
 * then the request's statement times out, its lock wait times out, or an operator cancels
 * or terminates its backend. Also: a client that half-closes after its request is answered.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jwt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "tokens.h"

#define SECRET "exectime-integration-test-secret-0123456789"
#define API_PATH "/api/v1/statistics/execution-times"
#define FOLLOWING_REQUESTS 20 /* answered after the fault: every one must be 200 */
#define ANSWER_WAIT_S 60      /* bound on the faulted request's answer (not a timing check) */

/* --- tokens and requests ----------------------------------------------------------------- */

/* "Authorization: Bearer <HS256 token for tenant t1, exp in an hour>", malloc'd. */
static char *auth_line(void)
{
    return it_bearer_hs256(SECRET, "\"tenant_id\": \"t1\"");
}

/*
 * Sends one API request on a new connection and returns the socket without reading, so
 * the test can act on the database while the request waits there.
 */
static int api_send(int port, const char *auth)
{
    char req[2048];
    int len = snprintf(req, sizeof req,
                       "GET " API_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                       "Connection: close\r\n\r\n",
                       auth);
    cr_assert(len > 0 && (size_t)len < sizeof req);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct timeval tv = {ANSWER_WAIT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(send(fd, req, (size_t)len, MSG_NOSIGNAL), len);
    return fd;
}

/* Reads the answer on fd to its end and closes fd: its status, or -1 without one. */
static int api_read_status(int fd, char *body, size_t cap)
{
    char buf[8192];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof buf - 1 && (got = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
        len += (size_t)got;
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    const char *b = strstr(buf, "\r\n\r\n");
    /* The body, cut at cap (a deliberate truncation, said without snprintf's warning). */
    const char *from = b ? b + 4 : buf;
    size_t n = strnlen(from, cap - 1);
    memcpy(body, from, n);
    body[n] = '\0';
    return status;
}

/* A session holding rollup_day exclusively, so API requests wait for the lock: every API
 * query reads it. unlock_rollup_day ends it. */
static PGconn *lock_rollup_day(void)
{
    PGconn *locker = PQconnectdb(it.db_admin_url);
    cr_assert_eq(PQstatus(locker), CONNECTION_OK, "%s", PQerrorMessage(locker));
    PGresult *r = PQexec(locker, "BEGIN; LOCK TABLE exectime.rollup_day IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return locker;
}

static void unlock_rollup_day(PGconn *locker)
{
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
}

/* --- the faults ----------------------------------------------------------------------------- */

typedef enum fault {
    FAULT_STATEMENT_TIMEOUT, /* the agent's own EXECTIME_API_STATEMENT_TIMEOUT_MS fires */
    FAULT_CANCEL,            /* pg_cancel_backend of the waiting API backend */
    FAULT_LOCK_TIMEOUT,      /* lock_timeout set on the agent's login role */
    FAULT_TERMINATE,         /* pg_terminate_backend of the waiting API backend */
} fault_t;

/* The pid of an API backend waiting for a lock, or 0. */
static long long waiting_api_backend(void)
{
    return it_sql_int("SELECT coalesce(min(pid), 0) FROM pg_stat_activity"
                      " WHERE datname = current_database()"
                      " AND application_name = 'exectime-agent api'"
                      " AND wait_event_type = 'Lock'");
}

/*
 * Starts an agent, makes one API request fail with the fault while another session holds
 * an exclusive lock on rollup_day, releases the lock, and expects every following request
 * to be answered 200 (before the fix: every one 503, the failed session being lent again
 * inside its aborted transaction).
 */
static void fault_then_requests_succeed(fault_t fault)
{
    const char *env[3] = {"EXECTIME_JWT_SECRET=" SECRET, NULL, NULL};
    if (fault == FAULT_STATEMENT_TIMEOUT)
        env[1] = "EXECTIME_API_STATEMENT_TIMEOUT_MS=300";
    if (fault == FAULT_LOCK_TIMEOUT)
        PQclear(it_sql("ALTER ROLE exectime_agent IN DATABASE %s SET lock_timeout = '300ms'",
                       it.db_name));
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    char *auth = auth_line();
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int status = it_http_request(a->port, "GET", API_PATH, headers, &res);
    cr_assert_eq(status, 200, "before the fault: %d %s", status, res.body);
    it_http_response_free(&res);

    PGconn *locker = lock_rollup_day();

    int fd = api_send(a->port, auth);
    if (fault == FAULT_CANCEL || fault == FAULT_TERMINATE) {
        long long pid = 0;
        IT_WAIT_UNTIL((pid = waiting_api_backend()) != 0, IT_WAIT_MS,
                      "no API backend ever waited for the lock");
        PQclear(it_sql("SELECT %s(%lld)",
                       fault == FAULT_CANCEL ? "pg_cancel_backend" : "pg_terminate_backend", pid));
    }
    char body[1024];
    status = api_read_status(fd, body, sizeof body);
    cr_assert_eq(status, 503, "the faulted request answered %d: %s", status, body);

    unlock_rollup_day(locker);
    if (fault == FAULT_LOCK_TIMEOUT)
        PQclear(it_sql("ALTER ROLE exectime_agent IN DATABASE %s RESET lock_timeout", it.db_name));

    int failed = 0;
    char first_failure[512] = "";
    for (int i = 0; i < FOLLOWING_REQUESTS; i++) {
        status = it_http_request(a->port, "GET", API_PATH, headers, &res);
        if (status != 200 && failed++ == 0)
            snprintf(first_failure, sizeof first_failure, "%d %s", status, res.body);
        it_http_response_free(&res);
    }
    cr_assert_eq(failed, 0, "%d of %d requests after the fault failed; the first: %s", failed,
                 FOLLOWING_REQUESTS, first_failure);
    cr_assert_eq(it_http_get(a->port, "/readyz", NULL), 200);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

Test(api_faults, statement_timeout_leaves_the_api_answering, IT_TEST_OPTS)
{
    fault_then_requests_succeed(FAULT_STATEMENT_TIMEOUT);
}

Test(api_faults, cancelled_query_leaves_the_api_answering, IT_TEST_OPTS)
{
    fault_then_requests_succeed(FAULT_CANCEL);
}

Test(api_faults, lock_timeout_leaves_the_api_answering, IT_TEST_OPTS)
{
    fault_then_requests_succeed(FAULT_LOCK_TIMEOUT);
}

Test(api_faults, terminated_backend_leaves_the_api_answering, IT_TEST_OPTS)
{
    fault_then_requests_succeed(FAULT_TERMINATE);
}

/* A client that sends its request and then shuts down its sending side (as `curl` and
 * many HTTP/1.0 clients may) still gets the answer. */
Test(api_faults, half_closed_client_gets_the_api_answer, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    char *auth = auth_line();
    int fd = api_send(a->port, auth);
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    char body[1024];
    int status = api_read_status(fd, body, sizeof body);
    cr_assert_eq(status, 200, "after a half-close: %d %s", status, body);
    cr_assert(strstr(body, "\"count\"") != NULL, "not a statistics answer: %s", body);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* A port free right now on 127.0.0.1 (the kernel's choice for port 0). */
static int free_local_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/*
 * With the API port full of busy connections, new clients there get 503, while the ops
 * port (EXECTIME_OPS_LISTEN) still answers /healthz, /readyz and /metrics, and serves
 * nothing else.
 */
Test(api_faults, ops_port_answers_probes_while_the_api_port_is_full, IT_TEST_OPTS)
{
    enum { LIMIT = 4 }; /* as many as the API's database sessions: all of them wait */
    int ops_port = free_local_port();
    char ops_env[64], limit_env[64];
    snprintf(ops_env, sizeof ops_env, "EXECTIME_OPS_LISTEN=127.0.0.1:%d", ops_port);
    snprintf(limit_env, sizeof limit_env, "EXECTIME_HTTP_MAX_CONNECTIONS=%d", LIMIT);
    /* The longest statement timeout, so the held requests stay busy while we look. */
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, ops_env, limit_env,
                         "EXECTIME_API_STATEMENT_TIMEOUT_MS=20000", NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    IT_WAIT_UNTIL(it_http_get(ops_port, "/healthz", NULL) == 200, IT_WAIT_MS,
                  "the ops port never answered");

    /* Fill the API port with busy connections: requests waiting for a lock. (Idle ones
     * would be closed to make room, so they would not fill it.) */
    char *auth = auth_line();
    PGconn *locker = lock_rollup_day();
    int held[LIMIT];
    for (int i = 0; i < LIMIT; i++)
        held[i] = api_send(a->port, auth);
    IT_WAIT_UNTIL(it_sql_int("SELECT count(*) FROM pg_stat_activity"
                             " WHERE datname = current_database()"
                             " AND application_name = 'exectime-agent api'"
                             " AND wait_event_type = 'Lock'") == LIMIT,
                  IT_WAIT_MS, "the held requests never all waited for the lock");

    it_http_response_t res;
    cr_assert_eq(it_http_request(a->port, "GET", "/healthz", NULL, &res), 503,
                 "the full API port answered %d", res.status);
    cr_assert(strstr(res.body, "too many connections") != NULL, "%s", res.body);
    it_http_response_free(&res);
    cr_assert_eq(it_http_get(ops_port, "/healthz", NULL), 200);
    cr_assert_eq(it_http_get(ops_port, "/readyz", NULL), 200);
    char *metrics = NULL;
    cr_assert_eq(it_http_get(ops_port, "/metrics", &metrics), 200);
    cr_assert(strstr(metrics, "exectime_http_requests_total") != NULL, "%s", metrics);
    free(metrics);
    cr_assert_eq(it_http_get(ops_port, API_PATH, NULL), 404);
    cr_assert_eq(it_http_get(ops_port, "/", NULL), 404);
    cr_assert_eq(it_http_get(ops_port, "/openapi.json", NULL), 404);

    unlock_rollup_day(locker);
    for (int i = 0; i < LIMIT; i++) {
        char body[1024];
        int status = api_read_status(held[i], body, sizeof body);
        cr_assert_eq(status, 200, "held request %d answered %d: %s", i, status, body);
    }
    IT_WAIT_UNTIL(it_http_get(a->port, "/healthz", NULL) == 200, IT_WAIT_MS,
                  "the API port did not serve again once the connections closed");
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/* An answer over EXECTIME_API_MAX_RESPONSE_BYTES is refused with 422 response_too_large,
 * saying how to narrow it; a smaller question is answered. */
Test(api_faults, answer_over_the_cap_gets_422, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET, "EXECTIME_API_MAX_RESPONSE_BYTES=16384",
                         NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    char *auth = auth_line();
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    /* 24 hours of minute buckets: 1,440 series entries, far beyond 16 KiB. */
    int status = it_http_request(a->port, "GET", API_PATH "?interval=minute", headers, &res);
    cr_assert_eq(status, 422, "a large answer got %d: %.200s", status, res.body);
    cr_assert(strstr(res.body, "\"response_too_large\"") != NULL, "%s", res.body);
    cr_assert(strstr(res.body, "narrow the range") != NULL, "%s", res.body);
    it_http_response_free(&res);
    status = it_http_request(a->port, "GET", API_PATH "?interval=day", headers, &res);
    cr_assert_eq(status, 200, "a small answer got %d: %s", status, res.body);
    it_http_response_free(&res);
    free(auth);
    it_agent_stop(a);
    it_pass();
}

/*
 * More requests than the API has database sessions wait in its queue; beyond the queue
 * (STATS_QUEUE_MAX, 256) they are answered 503 at once, and a client that leaves while its
 * request waits is forgotten: once the database answers again, every request still wanted
 * is answered 200 and the API goes on answering.
 */
#define QUEUE_TEST_WAITING 300 /* 4 sessions + 256 queued + 40 refused */
#define QUEUE_TEST_LEAVING 20  /* of the queued: close their sockets while they wait */

Test(api_faults, a_full_queue_refuses_and_a_client_gone_while_queued_is_forgotten, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_JWT_SECRET=" SECRET,
                         "EXECTIME_HTTP_MAX_CONNECTIONS_PER_CLIENT=1024",
                         "EXECTIME_API_CACHE_ENTRIES=0", NULL};
    it_agent_t *a = it_agent_start("api", env);
    it_agent_wait_ready(a);
    char *auth = auth_line();

    PGconn *locker = lock_rollup_day();

    static int fds[QUEUE_TEST_WAITING];
    for (int i = 0; i < QUEUE_TEST_WAITING; i++)
        fds[i] = api_send(a->port, auth);
    /* Every session is held by the lock: the last ones, beyond the queue, are answered
     * meanwhile (503 at once, not after the database). */
    int refused = 0;
    char body[1024];
    for (int i = 4 + 256; i < QUEUE_TEST_WAITING; i++) {
        int status = api_read_status(fds[i], body, sizeof body);
        cr_assert_eq(status, 503, "request %d beyond the queue: %d %s", i, status, body);
        cr_assert(strstr(body, "too many requests are waiting") != NULL, "%s", body);
        refused++;
    }
    /* Queued ones (the sessions took the first four) leave with a reset: a half-close
     * would still want its answer. */
    struct linger reset = {1, 0};
    for (int i = 0; i < QUEUE_TEST_LEAVING; i++) {
        setsockopt(fds[10 + i], SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fds[10 + i]);
    }
    it_sleep_ms(200); /* let the agent see them go before the database answers */

    unlock_rollup_day(locker);

    int ok = 0, other = 0;
    for (int i = 0; i < 4 + 256; i++) {
        if (i >= 10 && i < 10 + QUEUE_TEST_LEAVING)
            continue;
        int status = api_read_status(fds[i], body, sizeof body);
        if (status == 200)
            ok++;
        else
            other++;
    }
    cr_assert_eq(other, 0, "%d queued requests not answered 200 (last body %s)", other, body);
    cr_assert_eq(refused, QUEUE_TEST_WAITING - 4 - 256, "refused %d, answered %d", refused, ok);
    cr_assert_eq(ok, 4 + 256 - QUEUE_TEST_LEAVING);
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    cr_assert_eq(it_http_request(a->port, "GET", API_PATH, headers, &res), 200);
    it_http_response_free(&res);
    free(auth);
    it_agent_stop(a);
    it_pass();
}
