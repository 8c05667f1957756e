/*
 * http_server — HTTP/1.1 on the agent's one libuv loop: uv_tcp + http-parser,
 * keep-alive, pipelining, size and time limits, JSON errors.
 *
 * Each connection handles one request at a time: the next pipelined request is parsed
 * only after the previous response has been written, so responses always go out in
 * request order. HTTP/1.0 without "Connection: keep-alive", "Connection: close",
 * upgrades and every error the server answers itself end the connection.
 *
 * Ownership:
 *  - http_server_t is embedded by its owner, who keeps it in place until on_closed has
 *    run. After a successful http_server_init the owner must call http_server_close
 *    (also when http_server_listen failed) and run the loop until on_closed.
 *  - For each complete request the server calls the handler once with the request and
 *    a response handle, both allocated and freed by the server. Every string in the
 *    request, and the body, stays valid until http_respond or http_respond_error is
 *    called on that response.
 *  - The handler must call http_respond or http_respond_error exactly once per
 *    response, either before returning or later from any other callback on the loop
 *    (e.g. after a PostgreSQL query). After that call neither the request nor the
 *    response may be touched.
 *  - If the connection goes away first (peer reset, a read or write error, request
 *    timeout, server closing) the response is *abandoned*: its on_abandon callback, if
 *    set, runs once, http_response_abandoned() turns true, and the eventual http_respond
 *    only frees it. So responding late is always safe; never responding leaks the
 *    response. An end of input from the peer (FIN) while its request is being handled is
 *    taken as a half-close (shutdown(SHUT_WR) after sending): the response is still
 *    written, then the connection closes. A peer that in fact closed completely is
 *    noticed when that write fails.
 *  - Everything passed to http_respond and http_response_header is copied.
 *
 * Errors: functions that can fail return 0 or a negative errno-style (libuv) code, with
 * a reason in the caller's buffer where one is given. Errors the server answers itself
 * are JSON {"error":{"code":"...","message":"..."}} and close the connection:
 * 400 bad_request, 408 request_timeout, 413 payload_too_large, 414 uri_too_long,
 * 431 headers_too_large, 503 unavailable (connection limit or handler timeout).
 *
 * Request ids: every request gets one, for logs and for the client to quote. A client's
 * X-Request-Id of 1..HTTP_REQUEST_ID_MAX characters from A-Z a-z 0-9 - _ . : + / = is
 * kept; any other (or none) is replaced by 16 hex digits the server makes up. Every
 * response, the server's own errors included, carries it back in X-Request-Id (a
 * handler cannot set that header), and the observer receives it.
 *
 * Connection limits: a server-wide cap and a cap per remote IP address. Under either, a
 * new connection is served by closing the longest-idle connection in its scope (one
 * waiting for a request: a keep-alive between requests, or one that has sent nothing
 * yet) instead of refusing the newcomer; only when every connection in scope is busy is
 * the newcomer answered 503 with Retry-After. Health probes belong on a separate server
 * (the agent's EXECTIME_OPS_LISTEN) so they answer whatever the API's clients do.
 */
#ifndef EXECTIME_HTTP_SERVER_H
#define EXECTIME_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Limits; http_server_limits_default fills the defaults shown. */
typedef struct http_server_limits {
    size_t max_header_bytes;             /* request line + headers; beyond: 431 (8 KiB) */
    size_t max_url_bytes;                /* request target; beyond: 414 (4 KiB, at most 65535) */
    size_t max_body_bytes;               /* beyond: 413, also for GET (64 KiB) */
    unsigned max_headers;                /* header lines; beyond: 431 (100) */
    unsigned max_connections;            /* open at once (1024); a new connection beyond it
                                    first closes the longest-idle keep-alive connection,
                                    and is answered 503 and closed only if none is idle */
    unsigned max_connections_per_client; /* open at once from one remote IP address (128);
                                    beyond: the same, among that address's connections */
    uint64_t header_timeout_ms;          /* a new connection's first request, or a started
                                    request's headers, must arrive within: 408 (10 s) */
    uint64_t idle_timeout_ms;            /* keep-alive wait for the next request: close (60 s) */
    uint64_t request_timeout_ms;         /* body, handler and response write each: body 408,
                                    handler 503, write close (30 s) */
    size_t response_budget_bytes;        /* response bytes queued and not yet written, over all
                                    connections (64 MiB): an answer larger than
                                    HTTP_BUDGET_EXEMPT_BYTES that would pass it is
                                    replaced by 503 with Retry-After */
} http_server_limits_t;

#define HTTP_REQUEST_ID_MAX 64 /* characters of a request id, without the NUL */

/* Answers up to this size (errors, probes, metrics) always go out, budget or not. */
#define HTTP_BUDGET_EXEMPT_BYTES (16 * 1024)

/* A parsed request. Strings are NUL-terminated, raw (no percent-decoding). */
typedef struct http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* "/api/v1/statistics/execution-times"; never NULL */
    const char *query;       /* text after '?', without it; "" when none */
    const char *body;        /* NUL-terminated copy; "" when none */
    size_t body_len;         /* excludes the terminating NUL */
    int http_minor;          /* HTTP/1.<minor> */
    bool keep_alive;         /* the connection stays open after this response */
    const char *remote_addr; /* peer IP address as text */
    const char *request_id;  /* the client's X-Request-Id if sane, else one made up */
} http_request_t;

typedef struct http_response http_response_t; /* opaque; see the rules above */
typedef struct http_server http_server_t;
struct http_conn;

/* Called once per complete request; see the ownership rules above. */
typedef void (*http_handler_fn)(void *arg, const http_request_t *req, http_response_t *res);

/*
 * Called after each response is queued, the server's own errors included (req is NULL
 * when the request never parsed). request_id is the id the response carries, never NULL
 * (valid during the call only). For metrics and access logs.
 */
typedef void (*http_observer_fn)(void *arg, const http_request_t *req, const char *request_id,
                                 int status, double seconds);

struct http_server {
    /* private: */
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweep; /* one periodic timer for every connection's deadline */
    http_server_limits_t limits;
    http_handler_fn handler;
    void *handler_arg;
    http_observer_fn observer;
    void *observer_arg;
    struct http_conn *conns;    /* every connection not yet freed, closing ones included */
    unsigned nconns;            /* connections counted against max_connections */
    unsigned nshed;             /* connections over the limit being answered 503 */
    uint64_t idle_evictions;    /* idle connections closed to make room for new ones */
    size_t response_bytes_held; /* queued response bytes whose write has not completed */
    uint64_t budget_refusals;   /* answers replaced by 503 for the response budget */
    uint64_t sweep_ms;
    uint64_t request_id_state; /* made-up request ids: splitmix64, seeded per server */
    bool listener_open;        /* listener initialized and not yet closed */
    bool sweep_open;           /* sweep timer not yet closed */
    bool closing;
    void (*on_closed)(http_server_t *s);
};

/** Fills the defaults documented on http_server_limits_t. */
void http_server_limits_default(http_server_limits_t *limits);

/**
 * Prepares s; nothing listens yet.
 * @param limits  copied; NULL for the defaults
 * @return 0, or -EINVAL for a limit out of range
 */
__attribute__((warn_unused_result)) int http_server_init(http_server_t *s, uv_loop_t *loop,
                                                         const http_server_limits_t *limits,
                                                         http_handler_fn handler,
                                                         void *handler_arg);

/** Sets the observer called after each response (or NULL to remove it). */
void http_server_set_observer(http_server_t *s, http_observer_fn observer, void *arg);

/**
 * Binds and listens. At most one successful call per server.
 * @param listen_addr  "127.0.0.1:8080" or "[::1]:8080" (numeric addresses); port 0
 *                     picks a free port (see http_server_port)
 * @return 0 or a negative errno code, with one line in err
 */
__attribute__((warn_unused_result)) int http_server_listen(http_server_t *s,
                                                           const char *listen_addr, char *err,
                                                           size_t err_cap);

/** The bound port, or a negative errno code when not listening. */
int http_server_port(const http_server_t *s);

/** Connections currently open and counted against max_connections. */
unsigned http_server_connections(const http_server_t *s);

/** Idle connections closed so far to make room for new ones (for metrics and tests). */
uint64_t http_server_idle_evictions(const http_server_t *s);

/** Answers replaced by 503 so far because the response budget was spent. */
uint64_t http_server_budget_refusals(const http_server_t *s);

/**
 * Closes the listener and every connection at once (responses still with a handler are
 * abandoned) and calls on_closed (may be NULL) after every handle has closed. Call once.
 */
void http_server_close(http_server_t *s, void (*on_closed)(http_server_t *s));

/** First header named name (case-insensitive), or NULL. Valid as long as req. */
const char *http_request_header(const http_request_t *req, const char *name);

/**
 * Adds a response header (e.g. "ETag", "Retry-After", CORS). Content-Length,
 * Connection, Transfer-Encoding, Server, Content-Type and X-Request-Id are the server's.
 * @return 0, -EINVAL (empty or reserved name, CR/LF in name or value), or -ENOSPC
 *         (extra headers beyond 4 KiB in all); on failure nothing is added
 */
__attribute__((warn_unused_result)) int http_response_header(http_response_t *res, const char *name,
                                                             const char *value);

/**
 * Registers cb to run once if the response is abandoned before http_respond. The
 * callback may call http_respond (which then only frees res); it must not otherwise
 * touch res after that call.
 */
void http_response_on_abandon(http_response_t *res, void (*cb)(http_response_t *res, void *arg),
                              void *arg);

/**
 * Sends this answer even while the response budget is spent, whatever its size: for
 * /metrics, which outgrew HTTP_BUDGET_EXEMPT_BYTES and is needed most under load.
 */
void http_response_skip_budget(http_response_t *res);

/** True once the connection behind res is gone; http_respond will only free res. */
bool http_response_abandoned(const http_response_t *res);

/**
 * Sends the response and ends res's life. Adds Server, Content-Length (except for
 * 1xx, 204 and 304, which never carry a body) and Connection as needed; HEAD requests
 * get the headers without the body. A body over HTTP_BUDGET_EXEMPT_BYTES that would take
 * the bytes held for slow readers past limits.response_budget_bytes is not sent: the
 * client gets 503 unavailable with Retry-After instead (the handler's headers dropped).
 * @param content_type  e.g. "application/json"; NULL sends none
 * @param body          copied; may be NULL when body_len is 0
 */
void http_respond(http_response_t *res, int status, const char *content_type, const void *body,
                  size_t body_len);

/** http_respond with {"error":{"code":code,"message":message}} (JSON-escaped). */
void http_respond_error(http_response_t *res, int status, const char *code, const char *message);

#endif
