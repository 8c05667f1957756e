/*
 * Loop tests for agent/http_server: a real server on 127.0.0.1 (or ::1) on a uv loop in
 * the test's thread, driven by a blocking-socket client in a second thread. Client-side
 * checks are recorded and asserted after the loop ends; each test counts callbacks and
 * ends with uv_loop_close() == 0.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "http_server.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef struct fixture fixture_t;
typedef void (*scenario_fn)(fixture_t *f);

struct fixture {
    uv_loop_t loop;
    http_server_t server;
    uv_async_t done; /* the client thread signals the end of its scenario */
    pthread_t thread;
    scenario_fn scenario;
    int family;
    int port;
    char failure[1024]; /* first failed client-side check */
    sem_t handled_sem;  /* posted by the handler, so the client can wait for it */
    sem_t abandon_sem;  /* posted when a response is abandoned */
    /* loop-thread counters, read after the loop has ended */
    int handled;
    int abandoned;
    int timers_fired;
    int responded_late; /* async replies sent to an already abandoned response */
    int closed;         /* on_closed calls */
    int observed;
    int status_seen[600];
    char observed_id[HTTP_REQUEST_ID_MAX + 1]; /* the last request id the observer saw */
    int header_api_ok; /* /header: every http_response_header check passed */
    int open_fds[4];   /* client sockets left open for the server to close */
    int nopen_fds;
    http_response_t *parked; /* /park: answered only when the test ends */
};

/* ---- loop side ---- */

typedef struct async_reply {
    uv_timer_t timer;
    fixture_t *f;
    http_response_t *res;
} async_reply_t;

static void count_abandon(http_response_t *res, void *arg)
{
    fixture_t *f = arg;
    f->abandoned++;
    sem_post(&f->abandon_sem);
}

static void async_reply_closed(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, async_reply_t, timer));
}

static void async_reply_fire(uv_timer_t *t)
{
    async_reply_t *a = container_of(t, async_reply_t, timer);
    a->f->timers_fired++;
    if (http_response_abandoned(a->res))
        a->f->responded_late++;
    http_respond(a->res, 200, "text/plain", "async", 5);
    uv_close((uv_handle_t *)&a->timer, async_reply_closed);
}

static bool header_api_checks(http_response_t *res)
{
    char big[5000];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    return http_response_header(res, "X-Extra", "yes") == 0 &&
           http_response_header(res, "Bad\r\nName", "x") == -EINVAL &&
           http_response_header(res, "X-Split", "a\r\nInjected: 1") == -EINVAL &&
           http_response_header(res, "content-length", "5") == -EINVAL &&
           http_response_header(res, "X-Request-Id", "mine") == -EINVAL &&
           http_response_header(res, "", "x") == -EINVAL &&
           http_response_header(res, "X-Big", big) == -ENOSPC;
}

static void handler(void *arg, const http_request_t *req, http_response_t *res)
{
    fixture_t *f = arg;
    f->handled++;
    sem_post(&f->handled_sem);
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/healthz") == 0) {
        if (!get) {
            http_respond_error(res, 405, "method_not_allowed", "use GET");
            return;
        }
        http_respond(res, 200, "application/json", "{\"status\":\"ok\"}", 15);
    } else if (strcmp(req->path, "/echo") == 0) {
        const char *x = http_request_header(req, "x-test");
        char body[4096];
        int n = snprintf(body, sizeof body, "%s|%s|%s|%s|%zu|%s|%.*s", req->method, req->path,
                         req->query, x ? x : "(none)", req->body_len, req->remote_addr,
                         req->body_len > 64 ? 64 : (int)req->body_len, req->body);
        http_respond(res, 200, "text/plain", body, (size_t)n);
    } else if (strcmp(req->path, "/async") == 0) {
        int ms = 50;
        sscanf(req->query, "ms=%d", &ms);
        async_reply_t *a = calloc(1, sizeof *a);
        a->f = f;
        a->res = res;
        http_response_on_abandon(res, count_abandon, f);
        uv_timer_init(&f->loop, &a->timer);
        uv_timer_start(&a->timer, async_reply_fire, (uint64_t)ms, 0);
    } else if (strcmp(req->path, "/park") == 0) {
        f->parked = res;
        http_response_on_abandon(res, count_abandon, f);
    } else if (strcmp(req->path, "/big") == 0 || strcmp(req->path, "/scrape") == 0) {
        size_t n = 0;
        sscanf(req->query, "n=%zu", &n);
        if (strcmp(req->path, "/scrape") == 0)
            http_response_skip_budget(res); /* as the router does for /metrics */
        char *body = malloc(n + 1);
        memset(body, 'b', n);
        http_respond(res, 200, "text/plain", body, n);
        free(body);
    } else if (strcmp(req->path, "/rid") == 0) {
        http_respond(res, 200, "text/plain", req->request_id, strlen(req->request_id));
    } else if (strcmp(req->path, "/header") == 0) {
        f->header_api_ok = header_api_checks(res);
        http_respond(res, 200, "text/plain", "h", 1);
    } else {
        http_respond_error(res, 404, "not_found", "no such path");
    }
}

static void observer(void *arg, const http_request_t *req, const char *request_id, int status,
                     double seconds)
{
    fixture_t *f = arg;
    f->observed++;
    snprintf(f->observed_id, sizeof f->observed_id, "%s", request_id);
    if (status >= 0 && status < 600)
        f->status_seen[status]++;
}

static void on_server_closed(http_server_t *s)
{
    fixture_t *f = container_of(s, fixture_t, server);
    f->closed++;
}

static void on_done(uv_async_t *a)
{
    fixture_t *f = container_of(a, fixture_t, done);
    http_server_close(&f->server, on_server_closed);
    uv_close((uv_handle_t *)&f->done, NULL);
    if (f->parked != NULL) {
        /* Abandoned by now (timeout or close): responding only frees it. */
        cr_assert(http_response_abandoned(f->parked));
        http_respond(f->parked, 200, NULL, NULL, 0);
        f->parked = NULL;
    }
}

static void *client_main(void *arg)
{
    fixture_t *f = arg;
    f->scenario(f);
    uv_async_send(&f->done);
    return NULL;
}

/* Starts the server, runs scenario in a client thread, and checks the loop ends cleanly. */
static fixture_t *run(const http_server_limits_t *limits, const char *listen, int family,
                      scenario_fn scenario)
{
    fixture_t *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    f->family = family;
    f->scenario = scenario;
    sem_init(&f->handled_sem, 0, 0);
    sem_init(&f->abandon_sem, 0, 0);
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    cr_assert_eq(http_server_init(&f->server, &f->loop, limits, handler, f), 0);
    http_server_set_observer(&f->server, observer, f);
    char err[256] = "";
    int rc = http_server_listen(&f->server, listen, err, sizeof err);
    cr_assert_eq(rc, 0, "listen: %s", err);
    f->port = http_server_port(&f->server);
    cr_assert_gt(f->port, 0);
    cr_assert_eq(uv_async_init(&f->loop, &f->done, on_done), 0);
    cr_assert_eq(pthread_create(&f->thread, NULL, client_main, f), 0);
    cr_assert_eq(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    pthread_join(f->thread, NULL);
    cr_assert_str_empty(f->failure, "client: %s", f->failure);
    cr_assert_eq(f->closed, 1, "on_closed ran %d times", f->closed);
    cr_assert_eq(http_server_connections(&f->server), 0);
    cr_assert_eq(uv_loop_close(&f->loop), 0);
    return f;
}

static void fixture_free(fixture_t *f)
{
    sem_destroy(&f->handled_sem);
    sem_destroy(&f->abandon_sem);
    free(f);
}

static http_server_limits_t limits_with(uint64_t header_ms, uint64_t idle_ms, uint64_t request_ms)
{
    http_server_limits_t l;
    http_server_limits_default(&l);
    l.header_timeout_ms = header_ms;
    l.idle_timeout_ms = idle_ms;
    l.request_timeout_ms = request_ms;
    return l;
}

/* ---- client side (runs in the client thread) ---- */

static void fail_at(fixture_t *f, int line, const char *fmt, ...)
{
    if (f->failure[0] != '\0')
        return;
    int n = snprintf(f->failure, sizeof f->failure, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->failure + n, sizeof f->failure - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CHECK(f, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail_at((f), __LINE__, __VA_ARGS__);                                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

typedef struct client {
    int fd;
    size_t len;
    char buf[256 * 1024];
} client_t;

typedef struct response {
    int status;
    char head[8192];
    size_t body_len;
    char body[8192];
} response_t;

static bool wait_sem(sem_t *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (sem_timedwait(s, &ts) != 0) {
        if (errno != EINTR)
            return false;
    }
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static client_t *client_open(fixture_t *f)
{
    client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = socket(f->family, SOCK_STREAM, 0);
    if (c->fd < 0) {
        free(c);
        return NULL;
    }
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (f->family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)f->port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)f->port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (connect(c->fd, (struct sockaddr *)&ss, len) != 0) {
        close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static void client_close(client_t *c)
{
    if (c != NULL) {
        close(c->fd);
        free(c);
    }
}

static bool client_send(client_t *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return false;
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static bool client_send_str(client_t *c, const char *s)
{
    return client_send(c, s, strlen(s));
}

/* Reads more input; 1 on data, 0 on orderly close or reset, -1 on timeout or error. */
static int client_fill(client_t *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            return 1;
        }
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Finds a header value in a response head; copies it to out. */
static bool resp_header(const response_t *r, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t vlen = end ? (size_t)(end - v) : strlen(v);
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return true;
        }
    }
    return false;
}

/*
 * Reads one response framed by Content-Length (no body for HEAD or when absent).
 * 0 on success, -1 closed before a full response, -2 timeout, -3 malformed.
 */
static int client_read_response(client_t *c, response_t *r, bool head_request)
{
    memset(r, 0, sizeof *r);
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        int rc = client_fill(c);
        if (rc <= 0)
            return rc == 0 ? -1 : -2;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (head_len >= sizeof r->head)
        return -3;
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
        return -3;
    char value[32];
    size_t body_len = 0;
    if (!head_request && resp_header(r, "Content-Length", value, sizeof value))
        body_len = strtoul(value, NULL, 10);
    while (c->len < head_len + body_len) {
        int rc = client_fill(c);
        if (rc <= 0)
            return rc == 0 ? -1 : -2;
    }
    r->body_len = body_len;
    memcpy(r->body, c->buf + head_len, body_len < sizeof r->body ? body_len : sizeof r->body - 1);
    memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
    c->len -= head_len + body_len;
    return 0;
}

/* 1 when the server closes with nothing more sent, 0 when data came, -1 on timeout. */
static int client_wait_closed(client_t *c)
{
    if (c->len > 0)
        return 0;
    int rc = client_fill(c);
    return rc == 0 ? 1 : rc > 0 ? 0 : -1;
}

/* Sends a request and reads its response, recording a failure unless it has status. */
static bool exchange(fixture_t *f, client_t *c, const char *request, int status, response_t *r)
{
    if (!client_send_str(c, request)) {
        fail_at(f, __LINE__, "send failed: %s", strerror(errno));
        return false;
    }
    int rc = client_read_response(c, r, strncmp(request, "HEAD ", 5) == 0);
    if (rc != 0) {
        fail_at(f, __LINE__, "no response to %.40s: %d", request, rc);
        return false;
    }
    if (r->status != status) {
        fail_at(f, __LINE__, "status %d, want %d, for %.40s; body %s", r->status, status, request,
                r->body);
        return false;
    }
    return true;
}

static bool error_code_is(const response_t *r, const char *code)
{
    char want[128];
    snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    return strncmp(r->body, want, strlen(want)) == 0 && strstr(r->body, "\"}}") != NULL;
}

#define GET_HEALTHZ "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- scenarios and tests ---- */

static void scenario_simple_get(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    if (!exchange(f, c, GET_HEALTHZ, 200, &r))
        return;
    char v[128];
    CHECK(f, strcmp(r.body, "{\"status\":\"ok\"}") == 0, "body %s", r.body);
    CHECK(f, resp_header(&r, "Content-Length", v, sizeof v) && strcmp(v, "15") == 0, "length");
    CHECK(f, resp_header(&r, "Content-Type", v, sizeof v) && strcmp(v, "application/json") == 0,
          "type");
    CHECK(f, resp_header(&r, "Server", v, sizeof v) && strcmp(v, "exectime") == 0, "server");
    CHECK(f, !resp_header(&r, "Connection", v, sizeof v), "unexpected Connection header");
    if (!exchange(f, c, "GET /nope HTTP/1.1\r\n\r\n", 404, &r))
        return;
    CHECK(f, error_code_is(&r, "not_found"), "404 body %s", r.body);
    client_close(c);
}

Test(http_server, get_healthz_answers_200)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_simple_get);
    cr_assert_eq(f->handled, 2);
    cr_assert_eq(f->observed, 2);
    cr_assert_eq(f->status_seen[200], 1);
    cr_assert_eq(f->status_seen[404], 1);
    fixture_free(f);
}

static void scenario_request_parts(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    if (!exchange(f, c,
                  "POST /echo?a=1%20b&c=%2F HTTP/1.1\r\nHost: t\r\nX-TEST:  Value \r\n"
                  "Content-Length: 5\r\n\r\nhello",
                  200, &r))
        return;
    CHECK(f, strcmp(r.body, "POST|/echo|a=1%20b&c=%2F|Value|5|127.0.0.1|hello") == 0, "echo %s",
          r.body);
    if (!exchange(f, c, "GET http://example.com/echo?q=1#frag HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, strcmp(r.body, "GET|/echo|q=1|(none)|0|127.0.0.1|") == 0, "absolute form %s", r.body);
    if (!exchange(f, c,
                  "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nx-test: c\r\n\r\n"
                  "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
                  200, &r))
        return;
    CHECK(f, strcmp(r.body, "POST|/echo||c|5|127.0.0.1|hello") == 0, "chunked %s", r.body);
    /* GET with a body within the limit is served. */
    char req[2048];
    char body[1001];
    memset(body, 'b', 1000);
    body[1000] = '\0';
    snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n%s", body);
    if (!exchange(f, c, req, 200, &r))
        return;
    CHECK(f, strstr(r.body, "|1000|") != NULL, "GET body %s", r.body);
    /* Expect: 100-continue gets the interim answer before the body is sent. */
    CHECK(f,
          client_send_str(c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                             "Content-Length: 2\r\n\r\n"),
          "send");
    CHECK(f, client_read_response(c, &r, false) == 0 && r.status == 100, "no 100 Continue");
    if (!exchange(f, c, "ok", 200, &r))
        return;
    CHECK(f, strstr(r.body, "|2|127.0.0.1|ok") != NULL, "after continue %s", r.body);
    client_close(c);
}

Test(http_server, request_path_query_headers_and_body_are_parsed)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_request_parts);
    cr_assert_eq(f->handled, 5);
    fixture_free(f);
}

/*
 * Targets of every length across the request arena's growth (512, 1 KiB, 2 KiB bytes):
 * the path and query are copied out of the stored target inside that arena, so a copy
 * that makes it grow must not read the block realloc just freed.
 */
static void scenario_target_lengths(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    char query[2200], req[2600], want[2400];
    for (size_t n = 1; n < sizeof query; n += 1) {
        for (size_t i = 0; i < n; i++)
            query[i] = (char)('a' + (i * 7 + n) % 26);
        query[n] = '\0';
        snprintf(req, sizeof req, "GET /echo?%s HTTP/1.1\r\nHost: t\r\nX-Test: v\r\n\r\n", query);
        response_t r;
        if (!exchange(f, c, req, 200, &r))
            return;
        snprintf(want, sizeof want, "GET|/echo|%s|v|0|127.0.0.1|", query);
        CHECK(f, strcmp(r.body, want) == 0, "query of %zu bytes echoed as %.80s", n, r.body);
    }
    client_close(c);
}

Test(http_server, targets_of_every_length_keep_path_and_query)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_target_lengths);
    cr_assert_eq(f->handled, 2199);
    fixture_free(f);
}

static void scenario_pipelined(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    /* The first request answers later than the second would: order must still hold. */
    CHECK(f, client_send_str(c, "GET /async?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n" GET_HEALTHZ),
          "send");
    response_t r;
    CHECK(f, client_read_response(c, &r, false) == 0, "first response");
    CHECK(f, r.status == 200 && strcmp(r.body, "async") == 0, "first is %d %s", r.status, r.body);
    CHECK(f, client_read_response(c, &r, false) == 0, "second response");
    CHECK(f, r.status == 200 && strcmp(r.body, "{\"status\":\"ok\"}") == 0, "second %s", r.body);
    /* Still open for a third. */
    if (!exchange(f, c, GET_HEALTHZ, 200, &r))
        return;
    client_close(c);
}

Test(http_server, pipelined_requests_are_answered_in_order)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_pipelined);
    cr_assert_eq(f->handled, 3);
    cr_assert_eq(f->timers_fired, 1);
    cr_assert_eq(f->responded_late, 0);
    cr_assert_eq(f->abandoned, 0);
    fixture_free(f);
}

static void scenario_connection_close(fixture_t *f)
{
    response_t r;
    char v[64];
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "Connection", v, sizeof v) && strcmp(v, "close") == 0, "header");
    CHECK(f, client_wait_closed(c) == 1, "not closed after Connection: close");
    client_close(c);

    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, "GET /healthz HTTP/1.0\r\n\r\n", 200, &r))
        return;
    CHECK(f, client_wait_closed(c) == 1, "HTTP/1.0 not closed");
    client_close(c);

    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "Connection", v, sizeof v) && strcasecmp(v, "keep-alive") == 0,
          "1.0 keep-alive header");
    if (!exchange(f, c, "GET /healthz HTTP/1.0\r\n\r\n", 200, &r))
        return;
    CHECK(f, client_wait_closed(c) == 1, "HTTP/1.0 second not closed");
    client_close(c);
}

Test(http_server, connection_close_and_http10_end_the_connection)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_connection_close);
    cr_assert_eq(f->handled, 4);
    fixture_free(f);
}

static void scenario_oversized(fixture_t *f)
{
    static char req[90000];
    response_t r;
    client_t *c;

    /* Header block over 8 KiB. */
    char *big = malloc(9001);
    memset(big, 'a', 9000);
    big[9000] = '\0';
    snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    free(big);
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, req, 431, &r))
        return;
    CHECK(f, error_code_is(&r, "headers_too_large"), "431 body %s", r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after 431");
    client_close(c);

    /* Too many header lines. */
    size_t pos = (size_t)snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\n");
    for (int i = 0; i < 120; i++)
        pos += (size_t)snprintf(req + pos, sizeof req - pos, "X-H%d: v\r\n", i);
    snprintf(req + pos, sizeof req - pos, "\r\n");
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, req, 431, &r))
        return;
    client_close(c);

    /* Request target over 4 KiB. */
    pos = (size_t)snprintf(req, sizeof req, "GET /");
    memset(req + pos, 'u', 5000);
    pos += 5000;
    snprintf(req + pos, sizeof req - pos, " HTTP/1.1\r\n\r\n");
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, req, 414, &r))
        return;
    CHECK(f, error_code_is(&r, "uri_too_long"), "414 body %s", r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after 414");
    client_close(c);

    /* Declared body over 64 KiB, sent anyway. */
    pos = (size_t)snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nContent-Length: 70000\r\n\r\n");
    memset(req + pos, 'b', 70000);
    req[pos + 70000] = '\0';
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, req, 413, &r))
        return;
    CHECK(f, error_code_is(&r, "payload_too_large"), "413 body %s", r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after 413");
    client_close(c);

    /* Chunked body growing over the limit. */
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
          "send");
    char chunk[8192 + 16];
    pos = (size_t)snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + pos, 'c', 8192);
    memcpy(chunk + pos + 8192, "\r\n", 2);
    for (int i = 0; i < 9; i++) {
        if (!client_send(c, chunk, pos + 8194))
            break; /* the server may already have answered */
    }
    CHECK(f, client_read_response(c, &r, false) == 0 && r.status == 413, "chunked: %d", r.status);
    client_close(c);
}

Test(http_server, oversized_requests_get_431_414_413)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_oversized);
    cr_assert_eq(f->handled, 0);
    cr_assert_eq(f->status_seen[431], 2);
    cr_assert_eq(f->status_seen[414], 1);
    cr_assert_eq(f->status_seen[413], 2);
    fixture_free(f);
}

static void scenario_garbage(fixture_t *f)
{
    response_t r;
    client_t *good = client_open(f);
    CHECK(f, good != NULL, "connect");
    if (!exchange(f, good, GET_HEALTHZ, 200, &r))
        return;

    client_t *bad = client_open(f);
    CHECK(f, bad != NULL, "connect");
    if (!exchange(f, bad, "\x01\x02 garbage\r\n\r\n", 400, &r))
        return;
    CHECK(f, error_code_is(&r, "bad_request"), "400 body %s", r.body);
    CHECK(f, client_wait_closed(bad) == 1, "not closed after 400");
    client_close(bad);

    bad = client_open(f);
    CHECK(f, bad != NULL, "connect");
    if (!exchange(f, bad, "GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                  400, &r))
        return;
    client_close(bad);

    bad = client_open(f);
    CHECK(f, bad != NULL, "connect");
    if (!exchange(f, bad, "GET /healthz HTTP/2.0\r\n\r\n", 505, &r))
        return;
    client_close(bad);

    /* The other connection is unaffected. */
    if (!exchange(f, good, GET_HEALTHZ, 200, &r))
        return;
    client_close(good);
}

Test(http_server, garbage_gets_400_and_spares_other_connections)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_garbage);
    cr_assert_eq(f->handled, 2);
    cr_assert_eq(f->status_seen[400], 2);
    fixture_free(f);
}

static void scenario_async(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    if (!exchange(f, c, "GET /async?ms=30 HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, strcmp(r.body, "async") == 0, "body %s", r.body);
    client_close(c);
}

Test(http_server, async_handler_answers_from_a_timer)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_async);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->timers_fired, 1);
    cr_assert_eq(f->responded_late, 0);
    fixture_free(f);
}

/* Closes with a reset (SO_LINGER 0), the way a client that gives up tears a connection. */
static void client_reset(client_t *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_close(c);
}

static void scenario_disconnect_before_async(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, "GET /async?ms=300 HTTP/1.1\r\n\r\n"), "send");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "request never reached the handler");
    client_reset(c);
    CHECK(f, wait_sem(&f->abandon_sem, 5000), "response never abandoned");
}

Test(http_server, client_resetting_before_async_answer_is_safe)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_disconnect_before_async);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->abandoned, 1);
    cr_assert_eq(f->timers_fired, 1);
    cr_assert_eq(f->responded_late, 1);
    cr_assert_eq(f->observed, 0);
    fixture_free(f);
}

static void scenario_half_close_before_async(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, "GET /async?ms=100 HTTP/1.1\r\n\r\n"), "send");
    CHECK(f, shutdown(c->fd, SHUT_WR) == 0, "shutdown");
    response_t r;
    int rc = client_read_response(c, &r, false);
    CHECK(f, rc == 0, "no answer after the half-close: %d", rc);
    CHECK(f, r.status == 200 && strcmp(r.body, "async") == 0, "got %d %s", r.status, r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after the answer");
    client_close(c);
}

Test(http_server, half_closed_client_gets_its_async_answer)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_half_close_before_async);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->abandoned, 0);
    cr_assert_eq(f->responded_late, 0);
    cr_assert_eq(f->status_seen[200], 1);
    fixture_free(f);
}

static void scenario_close_before_async(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, "GET /async?ms=100 HTTP/1.1\r\n\r\n"), "send");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "request never reached the handler");
    client_close(c);
    /* Wait for the timer's answer, which goes into the void: the server must not mind. */
    for (int i = 0; i < 500 && __atomic_load_n(&f->timers_fired, __ATOMIC_SEQ_CST) == 0; i++)
        sleep_ms(10);
}

Test(http_server, client_closing_before_async_answer_is_safe)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_close_before_async);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->timers_fired, 1);
    cr_assert_eq(f->abandoned + f->observed, 1, "abandoned %d, observed %d", f->abandoned,
                 f->observed);
    fixture_free(f);
}

static void scenario_header_timeout(fixture_t *f)
{
    response_t r;
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n"), "send");
    CHECK(f, client_read_response(c, &r, false) == 0, "no 408");
    CHECK(f, r.status == 408 && error_code_is(&r, "request_timeout"), "got %d %s", r.status,
          r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after header timeout");
    client_close(c);

    /* A connection that never sends anything is closed too. */
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_wait_closed(c) == 1, "silent connection not closed");
    client_close(c);
}

Test(http_server, header_timeout_closes_the_connection)
{
    http_server_limits_t l = limits_with(200, 60000, 30000);
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_header_timeout);
    cr_assert_eq(f->handled, 0);
    cr_assert_eq(f->status_seen[408], 1);
    fixture_free(f);
}

static void scenario_idle_timeout(fixture_t *f)
{
    response_t r;
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, GET_HEALTHZ, 200, &r))
        return;
    CHECK(f, client_wait_closed(c) == 1, "idle keep-alive connection not closed");
    client_close(c);
}

Test(http_server, idle_keep_alive_connection_is_closed)
{
    http_server_limits_t l = limits_with(10000, 200, 30000);
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_idle_timeout);
    cr_assert_eq(f->handled, 1);
    fixture_free(f);
}

static void scenario_handler_timeout(fixture_t *f)
{
    response_t r;
    char v[32];
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, "GET /park HTTP/1.1\r\n\r\n", 503, &r))
        return;
    CHECK(f, error_code_is(&r, "unavailable"), "body %s", r.body);
    CHECK(f, resp_header(&r, "Retry-After", v, sizeof v), "no Retry-After");
    CHECK(f, client_wait_closed(c) == 1, "not closed after handler timeout");
    client_close(c);
}

Test(http_server, handler_timeout_answers_503)
{
    http_server_limits_t l = limits_with(10000, 60000, 200);
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_handler_timeout);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->abandoned, 1);
    cr_assert_eq(f->status_seen[503], 1);
    fixture_free(f);
}

static void scenario_max_connections(fixture_t *f)
{
    response_t r;
    client_t *a = client_open(f);
    client_t *b = client_open(f);
    CHECK(f, a != NULL && b != NULL, "connect");
    /* Both busy: a's answer comes first, so a is the longer idle afterwards. */
    CHECK(f, client_send_str(a, "GET /async?ms=100 HTTP/1.1\r\n\r\n"), "send a");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "a never handled");
    CHECK(f, client_send_str(b, "GET /async?ms=400 HTTP/1.1\r\n\r\n"), "send b");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "b never handled");
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect third");
    CHECK(f, client_read_response(c, &r, false) == 0, "third got no answer");
    CHECK(f, r.status == 503 && error_code_is(&r, "unavailable"), "third got %d", r.status);
    CHECK(f, strstr(r.body, "too many connections") != NULL, "body %s", r.body);
    CHECK(f, client_wait_closed(c) == 1, "third not closed");
    client_close(c);

    /* Once they are idle keep-alive connections, a newcomer is served, and the
     * longest-idle one is closed to make room. */
    CHECK(f, client_read_response(a, &r, false) == 0 && r.status == 200, "a's answer");
    CHECK(f, client_read_response(b, &r, false) == 0 && r.status == 200, "b's answer");
    client_t *d = client_open(f);
    CHECK(f, d != NULL, "connect fourth");
    if (!exchange(f, d, GET_HEALTHZ, 200, &r))
        return;
    CHECK(f, client_wait_closed(a) == 1, "the longest-idle connection was not closed");
    if (!exchange(f, b, GET_HEALTHZ, 200, &r))
        return;
    client_close(a);
    client_close(b);
    client_close(d);
}

Test(http_server, max_connections_sheds_idle_then_refuses)
{
    http_server_limits_t l;
    http_server_limits_default(&l);
    l.max_connections = 2;
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_max_connections);
    cr_assert_eq(f->handled, 4);
    cr_assert_eq(f->status_seen[503], 1);
    cr_assert_eq(http_server_idle_evictions(&f->server), 1);
    fixture_free(f);
}

/* Connects from a chosen loopback address (Linux routes all of 127.0.0.0/8 locally). */
static client_t *client_open_from(fixture_t *f, const char *source)
{
    client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in src = {.sin_family = AF_INET};
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    inet_pton(AF_INET, source, &src.sin_addr);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(c->fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static void scenario_per_client_limit(fixture_t *f)
{
    response_t r;
    client_t *a = client_open_from(f, "127.0.0.1");
    client_t *b = client_open_from(f, "127.0.0.1");
    CHECK(f, a != NULL && b != NULL, "connect");
    CHECK(f, client_send_str(a, "GET /async?ms=300 HTTP/1.1\r\n\r\n"), "send a");
    CHECK(f, client_send_str(b, "GET /async?ms=300 HTTP/1.1\r\n\r\n"), "send b");
    CHECK(f, wait_sem(&f->handled_sem, 5000) && wait_sem(&f->handled_sem, 5000), "not handled");
    /* A third from the same address is refused; another address is served. */
    client_t *c = client_open_from(f, "127.0.0.1");
    CHECK(f, c != NULL, "connect third");
    CHECK(f, client_read_response(c, &r, false) == 0, "third got no answer");
    CHECK(f, r.status == 503 && strstr(r.body, "from this address") != NULL, "third got %d %s",
          r.status, r.body);
    client_close(c);
    client_t *other = client_open_from(f, "127.0.0.2");
    CHECK(f, other != NULL, "connect from 127.0.0.2");
    if (!exchange(f, other, GET_HEALTHZ, 200, &r))
        return;
    CHECK(f, client_read_response(a, &r, false) == 0 && r.status == 200, "a's answer");
    CHECK(f, client_read_response(b, &r, false) == 0 && r.status == 200, "b's answer");
    client_close(a);
    client_close(b);
    client_close(other);
}

Test(http_server, per_client_limit_refuses_one_address_only)
{
    http_server_limits_t l;
    http_server_limits_default(&l);
    l.max_connections_per_client = 2;
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_per_client_limit);
    cr_assert_eq(f->handled, 3);
    cr_assert_eq(f->status_seen[503], 1);
    fixture_free(f);
}

#define BIG_BODY (12u << 20) /* more than loopback socket buffers hold unread */

/* Reads one response's head, then discards its body as it streams: returns the status. */
static int client_drain_response(client_t *c)
{
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
        if (client_fill(c) <= 0)
            return -1;
    int status = 0;
    size_t body_len = 0;
    sscanf(c->buf, "HTTP/1.1 %d ", &status);
    const char *cl = strcasestr(c->buf, "Content-Length:");
    if (cl != NULL && cl < end)
        body_len = strtoul(cl + 15, NULL, 10);
    size_t have = c->len - (size_t)(end + 4 - c->buf);
    while (have < body_len) {
        ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    c->len = 0;
    return status;
}

static void scenario_response_budget(fixture_t *f)
{
    char req[64];
    snprintf(req, sizeof req, "GET /big?n=%u HTTP/1.1\r\n\r\n", BIG_BODY);
    /* A slow reader: a tiny receive buffer, and nothing read for now. */
    client_t *slow = calloc(1, sizeof *slow);
    CHECK(f, slow != NULL, "alloc");
    slow->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {5, 0};
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(f, connect(slow->fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect slow");
    CHECK(f, client_send_str(slow, req), "send slow");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "slow request never handled");

    /* The budget is held: another big answer is refused, small ones still go out. */
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    if (!exchange(f, c, req, 503, &r))
        return;
    CHECK(f, error_code_is(&r, "unavailable"), "body %s", r.body);
    char v[32];
    CHECK(f, resp_header(&r, "Retry-After", v, sizeof v), "no Retry-After");
    if (!exchange(f, c, GET_HEALTHZ, 200, &r))
        return;
    /* An answer marked to skip the budget goes out whatever its size (/metrics). */
    if (!exchange(f, c, "GET /scrape?n=20000 HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, r.body_len == 20000, "scrape body %zu bytes", r.body_len);

    /* Once the slow reader has its answer, big answers go out again. */
    CHECK(f, client_drain_response(slow) == 200, "slow reader's answer");
    CHECK(f, client_send_str(c, req), "send again");
    CHECK(f, client_drain_response(c) == 200, "big answer after the budget freed up");
    client_close(slow);
    client_close(c);
}

Test(http_server, response_budget_refuses_big_answers_while_slow_readers_hold_it)
{
    http_server_limits_t l;
    http_server_limits_default(&l);
    l.response_budget_bytes = BIG_BODY + BIG_BODY / 2;
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_response_budget);
    cr_assert_eq(f->handled, 5);
    cr_assert_eq(http_server_budget_refusals(&f->server), 1);
    cr_assert_eq(f->server.response_bytes_held, 0);
    fixture_free(f);
}

static void scenario_ipv6(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect ::1");
    response_t r;
    if (!exchange(f, c, "GET /echo HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, strcmp(r.body, "GET|/echo||(none)|0|::1|") == 0, "echo %s", r.body);
    client_close(c);
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

Test(http_server, listens_on_ipv6_loopback)
{
    if (!have_ipv6_loopback())
        cr_skip("no ::1 on this machine");
    fixture_t *f = run(NULL, "[::1]:0", AF_INET6, scenario_ipv6);
    cr_assert_eq(f->handled, 1);
    fixture_free(f);
}

static void scenario_head_and_methods(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    char v[32];
    if (!exchange(f, c, "HEAD /healthz HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "Content-Length", v, sizeof v) && strcmp(v, "15") == 0, "HEAD length");
    /* Framing holds: the next response starts right after HEAD's headers. */
    if (!exchange(f, c, "DELETE /healthz HTTP/1.1\r\n\r\n", 405, &r))
        return;
    CHECK(f, error_code_is(&r, "method_not_allowed"), "405 body %s", r.body);
    if (!exchange(f, c, "GET /header HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "X-Extra", v, sizeof v) && strcmp(v, "yes") == 0, "X-Extra");
    CHECK(f, !resp_header(&r, "Injected", v, sizeof v), "header injection");
    client_close(c);
}

Test(http_server, head_omits_body_and_handler_decides_405)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_head_and_methods);
    cr_assert_eq(f->handled, 3);
    cr_assert(f->header_api_ok);
    fixture_free(f);
}

static void scenario_random_input(fixture_t *f)
{
    static const char valid[] = "POST /echo?x=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                                "Transfer-Encoding: identity\r\n\r\nbody";
    unsigned seed = 12345;
    char buf[2048];
    for (int i = 0; i < 60; i++) {
        size_t len;
        if (i % 2 == 0) {
            len = 1 + (size_t)(rand_r(&seed) % (int)sizeof buf);
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)(rand_r(&seed) & 0xff);
        } else {
            len = sizeof valid - 1;
            memcpy(buf, valid, len);
            for (int k = 0; k < 4; k++)
                buf[rand_r(&seed) % (int)len] = (char)(rand_r(&seed) & 0xff);
        }
        client_t *c = client_open(f);
        CHECK(f, c != NULL, "connect %d", i);
        client_send(c, buf, len);
        /* Whatever comes back, the server must end or answer within its timeouts. */
        int rc;
        do {
            c->len = 0;
            rc = client_fill(c);
        } while (rc > 0);
        CHECK(f, rc == 0, "input %d: connection neither answered nor closed", i);
        client_close(c);
    }
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    if (!exchange(f, c, GET_HEALTHZ, 200, &r))
        return;
    client_close(c);
}

Test(http_server, random_input_never_breaks_the_server)
{
    http_server_limits_t l = limits_with(200, 200, 200);
    fixture_t *f = run(&l, "127.0.0.1:0", AF_INET, scenario_random_input);
    cr_assert_geq(f->handled, 1);
    fixture_free(f);
}

static void scenario_pipelined_flood(fixture_t *f)
{
    /* Far more pipelined input than the server's 16 KiB input buffer. */
    enum { N = 2000 };
    static char req[N * 40];
    size_t pos = (size_t)snprintf(req, sizeof req, "GET /async?ms=50 HTTP/1.1\r\n\r\n");
    for (int i = 1; i < N; i++)
        pos += (size_t)snprintf(req + pos, sizeof req - pos, "GET /echo?i=%d HTTP/1.1\r\n\r\n", i);
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, pos > 3 * 16384, "flood too small: %zu", pos);
    CHECK(f, client_send(c, req, pos), "send");
    response_t r;
    CHECK(f, client_read_response(c, &r, false) == 0 && strcmp(r.body, "async") == 0, "first");
    for (int i = 1; i < N; i++) {
        char want[64];
        snprintf(want, sizeof want, "GET|/echo|i=%d|", i);
        CHECK(f, client_read_response(c, &r, false) == 0, "response %d missing", i);
        CHECK(f, strncmp(r.body, want, strlen(want)) == 0, "response %d is %s", i, r.body);
    }
    client_close(c);
}

Test(http_server, pipelined_flood_beyond_input_buffer_stays_in_order)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_pipelined_flood);
    cr_assert_eq(f->handled, 2000);
    fixture_free(f);
}

static void scenario_half_close(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    CHECK(f, client_send_str(c, GET_HEALTHZ "GET /echo?second HTTP/1.1\r\n\r\n"), "send");
    CHECK(f, shutdown(c->fd, SHUT_WR) == 0, "shutdown");
    response_t r;
    CHECK(f, client_read_response(c, &r, false) == 0 && r.status == 200, "first");
    CHECK(f, client_read_response(c, &r, false) == 0 && strstr(r.body, "|second|") != NULL,
          "second: %s", r.body);
    CHECK(f, client_wait_closed(c) == 1, "not closed after the peer's EOF");
    client_close(c);
}

Test(http_server, half_closed_client_still_gets_pipelined_answers)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_half_close);
    cr_assert_eq(f->handled, 2);
    cr_assert_eq(f->abandoned, 0);
    fixture_free(f);
}

static void scenario_upgrade_and_connect(fixture_t *f)
{
    response_t r;
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c,
                  "GET /healthz HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 200,
                  &r))
        return;
    CHECK(f, client_wait_closed(c) == 1, "upgrade request: connection kept");
    client_close(c);

    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c, "CONNECT example.com:443 HTTP/1.1\r\n\r\n", 404, &r))
        return;
    CHECK(f, client_wait_closed(c) == 1, "CONNECT: connection kept");
    client_close(c);
}

Test(http_server, upgrade_and_connect_are_answered_then_closed)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_upgrade_and_connect);
    cr_assert_eq(f->handled, 2);
    fixture_free(f);
}

static void scenario_close_with_open_connections(fixture_t *f)
{
    client_t *partial = client_open(f);
    client_t *parked = client_open(f);
    client_t *idle = client_open(f);
    CHECK(f, partial != NULL && parked != NULL && idle != NULL, "connect");
    CHECK(f, client_send_str(partial, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
          "send");
    CHECK(f, client_send_str(parked, "GET /park HTTP/1.1\r\n\r\n"), "send");
    CHECK(f, wait_sem(&f->handled_sem, 5000), "park never handled");
    /* Leave the sockets open: the server closes under them. */
    f->open_fds[f->nopen_fds++] = partial->fd;
    f->open_fds[f->nopen_fds++] = parked->fd;
    f->open_fds[f->nopen_fds++] = idle->fd;
    free(partial);
    free(parked);
    free(idle);
}

Test(http_server, closing_with_requests_in_flight_is_clean)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_close_with_open_connections);
    cr_assert_eq(f->handled, 1);
    cr_assert_eq(f->abandoned, 1);
    for (int i = 0; i < f->nopen_fds; i++)
        close(f->open_fds[i]);
    fixture_free(f);
}

/* Bad listen addresses fail with a reason, and the server still closes cleanly. */
static int closed_calls;

static void closed_count(http_server_t *s)
{
    closed_calls++;
}

static void noop_handler(void *arg, const http_request_t *req, http_response_t *res)
{
    http_respond(res, 204, NULL, NULL, 0);
}

Test(http_server, listen_rejects_bad_addresses)
{
    static const char *const bad[] = {
        "",       "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:8x", "localhost:80",
        "::1:80", "[::1]80",   "[::1",       "1.2.3.4.5:80",    ":80",          "[]:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uv_loop_t loop;
        http_server_t s;
        char err[256] = "";
        closed_calls = 0;
        cr_assert_eq(uv_loop_init(&loop), 0);
        cr_assert_eq(http_server_init(&s, &loop, NULL, noop_handler, NULL), 0);
        int rc = http_server_listen(&s, bad[i], err, sizeof err);
        cr_assert_lt(rc, 0, "\"%s\" accepted", bad[i]);
        cr_assert_neq(err[0], '\0', "no reason for \"%s\"", bad[i]);
        http_server_close(&s, closed_count);
        cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
        cr_assert_eq(closed_calls, 1);
        cr_assert_eq(uv_loop_close(&loop), 0);
    }

    /* A port already in use. */
    uv_loop_t loop;
    http_server_t a, b;
    char err[256] = "";
    char addr[64];
    closed_calls = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(http_server_init(&a, &loop, NULL, noop_handler, NULL), 0);
    cr_assert_eq(http_server_init(&b, &loop, NULL, noop_handler, NULL), 0);
    cr_assert_eq(http_server_listen(&a, "127.0.0.1:0", err, sizeof err), 0, "%s", err);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_server_port(&a));
    cr_assert_lt(http_server_listen(&b, addr, err, sizeof err), 0);
    cr_assert(strstr(err, "address already in use") != NULL, "%s", err);
    http_server_close(&a, closed_count);
    http_server_close(&b, closed_count);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(closed_calls, 2);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(http_server, init_rejects_invalid_limits)
{
    uv_loop_t loop;
    http_server_t s;
    http_server_limits_t l;
    cr_assert_eq(uv_loop_init(&loop), 0);
    http_server_limits_default(&l);
    l.max_url_bytes = 70000;
    cr_assert_eq(http_server_init(&s, &loop, &l, noop_handler, NULL), -EINVAL);
    http_server_limits_default(&l);
    l.header_timeout_ms = 0;
    cr_assert_eq(http_server_init(&s, &loop, &l, noop_handler, NULL), -EINVAL);
    cr_assert_eq(uv_loop_close(&loop), 0);
}

static bool is_made_up_id(const char *id)
{
    if (strlen(id) != 16)
        return false;
    for (const char *p = id; *p; p++)
        if (!strchr("0123456789abcdef", *p))
            return false;
    return true;
}

static void scenario_request_ids(fixture_t *f)
{
    client_t *c = client_open(f);
    CHECK(f, c != NULL, "connect");
    response_t r;
    char v[128], first[128];
    /* A sane client id is kept, handed to the handler and echoed. */
    if (!exchange(f, c, "GET /rid HTTP/1.1\r\nX-Request-Id: abc-123_x.y:z+/=\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", v, sizeof v) && strcmp(v, "abc-123_x.y:z+/=") == 0,
          "echoed id %s", v);
    CHECK(f, strcmp(r.body, "abc-123_x.y:z+/=") == 0, "handler saw %s", r.body);
    /* None: one is made up, different for each request. */
    if (!exchange(f, c, "GET /rid HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", first, sizeof first) && is_made_up_id(first),
          "made-up id %s", first);
    CHECK(f, strcmp(r.body, first) == 0, "handler saw %s, header %s", r.body, first);
    if (!exchange(f, c, "GET /rid HTTP/1.1\r\n\r\n", 200, &r))
        return;
    CHECK(f,
          resp_header(&r, "X-Request-Id", v, sizeof v) && is_made_up_id(v) && strcmp(v, first) != 0,
          "second id %s after %s", v, first);
    /* Too long, or characters that could break a log line or a header: replaced. */
    char req[512];
    char longid[HTTP_REQUEST_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    snprintf(req, sizeof req, "GET /rid HTTP/1.1\r\nX-Request-Id: %s\r\n\r\n", longid);
    if (!exchange(f, c, req, 200, &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", v, sizeof v) && is_made_up_id(v), "long id %s", v);
    if (!exchange(f, c, "GET /rid HTTP/1.1\r\nX-Request-Id: a\"b\xff<x>\r\n\r\n", 200, &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", v, sizeof v) && is_made_up_id(v), "odd id %s", v);
    /* The server's own refusals carry an id too. */
    if (!exchange(f, c, "GET /rid HTTP/1.1\r\nX-Request-Id: refused-1\r\nBad Header\r\n\r\n", 400,
                  &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", v, sizeof v) && v[0] != '\0', "refusal id %s", v);
    client_close(c);
    /* A refusal after the headers were read keeps the client's id. */
    c = client_open(f);
    CHECK(f, c != NULL, "connect");
    if (!exchange(f, c,
                  "POST /rid HTTP/1.1\r\nX-Request-Id: big-1\r\nContent-Length: 99999999\r\n\r\n",
                  413, &r))
        return;
    CHECK(f, resp_header(&r, "X-Request-Id", v, sizeof v) && strcmp(v, "big-1") == 0, "413 id %s",
          v);
    client_close(c);
}

Test(http_server, request_id_is_kept_when_sane_made_up_otherwise_and_echoed)
{
    fixture_t *f = run(NULL, "127.0.0.1:0", AF_INET, scenario_request_ids);
    cr_assert_eq(f->handled, 5);
    cr_assert_eq(f->observed, 7);
    cr_assert_neq(f->observed_id[0], '\0');
    fixture_free(f);
}
