/* http_server — see http_server.h. */
#include "http_server.h"

#include <assert.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "et_rng.h"
#include "json_out.h"
#include "listen_addr.h"
#include "log.h"

#define HTTP_INBUF_SIZE (16 * 1024)     /* per connection; holds unparsed pipelined input */
#define HTTP_LINGER_MS 2000             /* drain input this long after the last response */
#define HTTP_LINGER_MAX_BYTES (1 << 20) /* ... or until this much was discarded */
#define HTTP_SHED_MAX 64                /* over-limit connections answered 503 at once */
#define HTTP_EXTRA_HEADERS_MAX 4096     /* handler-added response header bytes */
#define HTTP_REQUEST_LINE_OVERHEAD 16   /* method, spaces, version, CRLF: approximated */
#define HTTP_LISTEN_BACKLOG 511

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

/* One enum of states per connection; conn_set_state is the only place that changes it. */
typedef enum conn_state {
    CONN_IDLE,         /* waiting for the first byte of a request */
    CONN_READING_HEAD, /* request line and headers arriving */
    CONN_READING_BODY, /* body arriving */
    CONN_HANDLING,     /* the handler owns the response; input is buffered, not parsed */
    CONN_WRITING,      /* response queued; waiting for the write to finish */
    CONN_LINGERING,    /* last response sent, write side shut; input discarded */
    CONN_CLOSING,      /* uv_close called; freed in conn_on_close */
} conn_state_t;

/* clang-format off */
static const char *const conn_state_names[] = {
    "idle", "reading_head", "reading_body", "handling", "writing", "lingering", "closing",
};
/* clang-format on */

typedef enum conn_event {
    EV_DATA,     /* bytes were appended to the input buffer */
    EV_EOF,      /* the peer finished sending */
    EV_IO_ERROR, /* a read or write failed */
    EV_WRITTEN,  /* the response write completed */
    EV_TIMEOUT,  /* the sweep found the state's deadline passed */
    EV_SHUTDOWN, /* the server is closing */
} conn_event_t;

/* clang-format off */
static const char *const conn_event_names[] = {
    "data", "eof", "io_error", "written", "timeout", "shutdown",
};
/* clang-format on */

typedef struct header_ref {
    uint32_t name;  /* arena offset of the NUL-terminated name */
    uint32_t value; /* arena offset of the NUL-terminated value */
} header_ref_t;

typedef enum header_step { HDR_NONE, HDR_FIELD, HDR_VALUE } header_step_t;

/*
 * One request and its response. Allocated when a request starts, owned by the
 * connection while it is read, by the handler from dispatch until http_respond.
 */
struct http_response {
    struct http_conn *conn; /* NULL once abandoned */
    http_request_t req;     /* public view; pointers set at dispatch */
    char *arena;            /* target, then header names/values, then body, path, query */
    size_t arena_len;
    size_t arena_cap;
    size_t url_len;  /* arena[0, url_len) is the request target */
    size_t body_off; /* arena offset of the body */
    size_t body_len;
    header_ref_t *headers;
    unsigned nheaders;
    unsigned headers_cap;
    header_step_t hdr_last; /* which header callback ran last */
    size_t head_bytes;      /* request line + headers, counted against max_header_bytes */
    char *extra;            /* handler-added "Name: value\r\n" lines */
    size_t extra_len;
    void (*on_abandon)(http_response_t *res, void *arg);
    void *abandon_arg;
    char peer[INET6_ADDRSTRLEN];
    char request_id[HTTP_REQUEST_ID_MAX + 1]; /* set when the request starts */
    bool skip_budget;                         /* sent even when the response budget is spent */
};

typedef struct http_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    http_parser parser;
    http_server_t *server;
    struct http_conn *prev;
    struct http_conn *next;
    conn_state_t state;
    uint64_t deadline;        /* uv_now() at which the current state times out; 0 none */
    uint64_t idle_since;      /* uv_now() when it last entered CONN_IDLE */
    uint64_t req_start_ns;    /* uv_hrtime() when the current request began */
    http_response_t *current; /* request being read or handled; NULL otherwise */
    size_t in_off;            /* in[in_off, in_len) is input not yet parsed */
    size_t in_len;
    size_t discarded;  /* bytes dropped while lingering */
    unsigned requests; /* requests dispatched on this connection */
    int fail_status;   /* set by a parser callback that refuses the request */
    const char *fail_code;
    const char *fail_message;
    bool keep_alive;  /* keep the connection after the response in flight */
    bool http10;      /* the current request is HTTP/1.0 */
    bool head_method; /* the current request is HEAD: send no body */
    bool reading;     /* uv_read_start is in effect */
    bool input_full;  /* buffer filled up: read again only once it is drained */
    bool peer_eof;    /* the peer finished sending */
    bool counted;     /* counted in server->nconns */
    bool shed;        /* over the limit: counted in server->nshed */
    char peer[INET6_ADDRSTRLEN];
    char in[HTTP_INBUF_SIZE];
} http_conn_t;

typedef struct conn_write {
    uv_write_t req;
    bool is_response; /* completion ends CONN_WRITING; an interim 100 Continue does not */
    size_t len;
    char data[];
} conn_write_t;

static void conn_dispatch(http_conn_t *c, conn_event_t ev);
static void conn_close(http_conn_t *c);
static void conn_parse(http_conn_t *c);
static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/* ---- limits ---- */

void http_server_limits_default(http_server_limits_t *limits)
{
    limits->max_header_bytes = 8 * 1024;
    limits->max_url_bytes = 4 * 1024;
    limits->max_body_bytes = 64 * 1024;
    limits->max_headers = 100;
    limits->max_connections = 1024;
    limits->max_connections_per_client = 128;
    limits->header_timeout_ms = 10 * 1000;
    limits->idle_timeout_ms = 60 * 1000;
    limits->request_timeout_ms = 30 * 1000;
    limits->response_budget_bytes = 64 * 1024 * 1024;
}

/* ---- small helpers ---- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static const char *status_reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return (r == NULL || r[0] == '<') ? "Unknown" : r;
}

/* ---- request ids ---- */

/* A client's id is kept only when it is short and plain: it goes into our logs and back
 * into a response header, so nothing that could break either gets through. */
static bool request_id_acceptable(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > HTTP_REQUEST_ID_MAX)
        return false;
    for (const char *p = id; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("-_.:+/=", ch) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

/* 16 hex digits, unique enough to find one request's lines among a day's logs. */
static void request_id_make(http_server_t *s, char *out, size_t cap)
{
    snprintf(out, cap, "%016llx", (unsigned long long)et_splitmix64(&s->request_id_state));
}

/* ---- request storage ---- */

/* Appends len bytes. data may point into the arena itself (exchange_finalize copies the
 * path and query out of the stored target): its offset is kept across the realloc, which
 * may move the arena and free the old block. */
static int arena_append(http_response_t *res, const char *data, size_t len)
{
    if (res->arena_len + len + 1 > res->arena_cap) {
        uintptr_t base = (uintptr_t)res->arena, at = (uintptr_t)data;
        bool inside = res->arena != NULL && at >= base && at < base + res->arena_len;
        size_t offset = inside ? (size_t)(at - base) : 0;
        size_t cap = res->arena_cap ? res->arena_cap : 512;
        while (cap < res->arena_len + len + 1)
            cap *= 2;
        char *p = realloc(res->arena, cap);
        if (p == NULL)
            return -ENOMEM;
        res->arena = p;
        res->arena_cap = cap;
        if (inside)
            data = p + offset;
    }
    memcpy(res->arena + res->arena_len, data, len);
    res->arena_len += len;
    return 0;
}

static int arena_nul(http_response_t *res)
{
    return arena_append(res, "", 1);
}

/* Terminates the header being collected, giving a name without value an empty one. */
static int header_finish(http_response_t *res)
{
    int rc = 0;
    if (res->hdr_last == HDR_FIELD) {
        rc = arena_nul(res);
        if (rc == 0) {
            res->headers[res->nheaders - 1].value = (uint32_t)res->arena_len;
            rc = arena_nul(res);
        }
    } else if (res->hdr_last == HDR_VALUE) {
        rc = arena_nul(res);
    }
    res->hdr_last = HDR_NONE;
    return rc;
}

/* Header lookup on arena offsets; usable before the request is dispatched. */
static const char *exchange_header(const http_response_t *res, const char *name)
{
    for (unsigned i = 0; i < res->nheaders; i++) {
        if (strcasecmp(res->arena + res->headers[i].name, name) == 0)
            return res->arena + res->headers[i].value;
    }
    return NULL;
}

static void exchange_free(http_response_t *res)
{
    free(res->arena);
    free(res->headers);
    free(res->extra);
    free(res);
}

/* Runs the handler's abandon callback last, once the connection no longer refers to res. */
static void exchange_notify_abandoned(http_response_t *res)
{
    if (res != NULL && res->on_abandon != NULL) {
        void (*cb)(http_response_t *, void *) = res->on_abandon;
        res->on_abandon = NULL;
        cb(res, res->abandon_arg);
    }
}

/* ---- writes ---- */

/*
 * Builds status line, headers and body into one owned buffer freed in the write
 * callback. Bodies are dropped for HEAD and for statuses that never carry one.
 */
static conn_write_t *response_build(const http_conn_t *c, int status, const char *ctype,
                                    const char *request_id, const char *extra, size_t extra_len,
                                    const void *body, size_t body_len)
{
    bool no_body_status = (status >= 100 && status < 200) || status == 204 || status == 304;
    bool send_body = !no_body_status && !c->head_method;
    if (ctype != NULL && strpbrk(ctype, "\r\n") != NULL)
        ctype = NULL;
    char length_line[48] = "";
    if (!no_body_status)
        snprintf(length_line, sizeof length_line, "Content-Length: %zu\r\n", body_len);
    const char *conn_line = !c->keep_alive ? "Connection: close\r\n"
                            : c->http10    ? "Connection: keep-alive\r\n"
                                           : "";
    /* clang-format off */
    const char *fmt =
        "HTTP/1.1 %d %s\r\nServer: exectime\r\nX-Request-Id: %s\r\n%s%s%s%s%.*s%s\r\n";
    /* clang-format on */
    int head = snprintf(NULL, 0, fmt, status, status_reason(status), request_id,
                        ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                        length_line, (int)extra_len, extra ? extra : "", conn_line);
    if (head < 0)
        return NULL;
    size_t total = (size_t)head + (send_body ? body_len : 0);
    conn_write_t *w = malloc(sizeof *w + total + 1);
    if (w == NULL)
        return NULL;
    snprintf(w->data, (size_t)head + 1, fmt, status, status_reason(status), request_id,
             ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "", length_line,
             (int)extra_len, extra ? extra : "", conn_line);
    if (send_body && body_len > 0)
        memcpy(w->data + head, body, body_len);
    w->len = total;
    w->is_response = true;
    return w;
}

static void conn_on_write(uv_write_t *req, int status)
{
    conn_write_t *w = container_of(req, conn_write_t, req);
    http_conn_t *c = container_of((uv_tcp_t *)req->handle, http_conn_t, tcp);
    bool is_response = w->is_response;
    c->server->response_bytes_held -= w->len; /* runs for cancelled writes too */
    free(w);
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0)
        conn_dispatch(c, EV_IO_ERROR);
    else if (is_response)
        conn_dispatch(c, EV_WRITTEN);
}

/* Queues w; on failure w is freed and the caller decides what happens to c. */
static int conn_send(http_conn_t *c, conn_write_t *w)
{
    if (c->state == CONN_CLOSING) {
        free(w);
        return -ECANCELED;
    }
    uv_buf_t buf = uv_buf_init(w->data, (unsigned int)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, conn_on_write);
    if (rc < 0)
        free(w);
    else
        c->server->response_bytes_held += w->len;
    return rc;
}

static void conn_observe(http_conn_t *c, const http_request_t *req, const char *request_id,
                         int status)
{
    http_server_t *s = c->server;
    if (s->observer != NULL)
        s->observer(s->observer_arg, req, request_id, status,
                    (double)(uv_hrtime() - c->req_start_ns) / 1e9);
}

/* ---- the state machine ---- */

/*
 * Reads while the state wants input and the buffer has room. Once the buffer filled
 * up (ENOBUFS) reading waits until the backlog is parsed, not just for a few free bytes.
 */
static void conn_sync_reading(http_conn_t *c)
{
    bool want = c->state != CONN_CLOSING && !c->peer_eof && !c->input_full;
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read);
        if (rc < 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/*
 * The one place a connection changes state: logs the change, sets the state's
 * deadline (checked by the sweep timer) and starts or stops reading.
 */
static void conn_set_state(http_conn_t *c, conn_state_t next)
{
    const http_server_limits_t *l = &c->server->limits;
    uint64_t now = uv_now(c->server->loop);
    if (log_enabled(LOG_DEBUG))
        log_write(LOG_DEBUG, "http connection state", "peer", c->peer, "from",
                  conn_state_names[c->state], "to", conn_state_names[next], NULL);
    switch (next) {
    case CONN_IDLE:
        c->deadline = now + (c->requests == 0 ? l->header_timeout_ms : l->idle_timeout_ms);
        c->idle_since = now;
        break;
    case CONN_READING_HEAD:
        /* A new connection's first request keeps the deadline counted from accept. */
        if (!(c->state == CONN_IDLE && c->requests == 0))
            c->deadline = now + l->header_timeout_ms;
        break;
    case CONN_READING_BODY:
    case CONN_HANDLING:
    case CONN_WRITING: c->deadline = now + l->request_timeout_ms; break;
    case CONN_LINGERING: c->deadline = now + HTTP_LINGER_MS; break;
    case CONN_CLOSING: c->deadline = 0; break;
    }
    c->state = next;
    conn_sync_reading(c);
}

static void conn_on_close(uv_handle_t *handle);

/*
 * Lets go of the current exchange: one still being read is freed; a response still with
 * the handler is returned, cut from c, so the caller can tell the handler it was abandoned.
 */
static http_response_t *detach_current(http_conn_t *c)
{
    http_response_t *abandoned = NULL;
    if (c->current != NULL) {
        if (c->state == CONN_HANDLING) {
            abandoned = c->current;
            abandoned->conn = NULL;
        } else {
            exchange_free(c->current);
        }
        c->current = NULL;
    }
    return abandoned;
}

/*
 * Closes the connection from any state. A response still with the handler is
 * abandoned (its callback runs last, when c no longer refers to it); one still being
 * read is freed. The struct itself is freed in conn_on_close.
 */
static void conn_close(http_conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    http_response_t *abandoned = detach_current(c);
    conn_set_state(c, CONN_CLOSING);
    uv_close((uv_handle_t *)&c->tcp, conn_on_close);
    exchange_notify_abandoned(abandoned);
}

/*
 * Answers with a server-generated JSON error and ends the connection after it. Used
 * for malformed or oversized requests, timeouts and the connection limit.
 */
static void conn_fail(http_conn_t *c, int status, const char *code, const char *message,
                      const char *extra)
{
    if (c->state == CONN_CLOSING)
        return;
    /* The refused request's id if it got that far, else a new one. */
    char request_id[HTTP_REQUEST_ID_MAX + 1];
    if (c->current != NULL)
        memcpy(request_id, c->current->request_id, sizeof request_id);
    else
        request_id_make(c->server, request_id, sizeof request_id);
    http_response_t *abandoned = detach_current(c);
    if (log_enabled(LOG_DEBUG))
        log_fields(LOG_DEBUG, "http request refused", log_str("peer", c->peer),
                   log_int("status", status), log_str("code", code), log_str("message", message),
                   log_str("request_id", request_id));
    c->keep_alive = false;
    char body[JSON_ERROR_BODY_MAX];
    size_t body_len = json_error_body(body, sizeof body, code, message, NULL);
    conn_write_t *w = response_build(c, status, "application/json", request_id, extra,
                                     extra ? strlen(extra) : 0, body, body_len);
    conn_observe(c, abandoned ? &abandoned->req : NULL, request_id, status);
    if (w == NULL) {
        conn_close(c);
    } else {
        conn_set_state(c, CONN_WRITING);
        if (conn_send(c, w) < 0)
            conn_close(c);
    }
    exchange_notify_abandoned(abandoned);
}

/* After the final response: half-close and drain so the peer reads it before any RST. */
static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = container_of(req, http_conn_t, shutdown_req);
    if (status < 0 && c->state != CONN_CLOSING)
        conn_close(c);
}

static void conn_linger(http_conn_t *c)
{
    c->discarded = 0;
    c->in_off = c->in_len = 0;
    c->input_full = false;
    conn_set_state(c, CONN_LINGERING);
    if (c->state != CONN_LINGERING)
        return;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_on_shutdown) < 0)
        conn_close(c);
}

static void conn_discard(http_conn_t *c)
{
    c->discarded += c->in_len - c->in_off;
    c->in_off = c->in_len = 0;
    if (c->discarded > HTTP_LINGER_MAX_BYTES)
        conn_close(c);
}

/* The response is on the wire: go on with the next request, or end the connection. */
static void conn_after_response(http_conn_t *c)
{
    if (c->keep_alive && !c->server->closing) {
        conn_set_state(c, CONN_IDLE);
        conn_parse(c);
    } else if (c->peer_eof) {
        conn_close(c);
    } else {
        conn_linger(c);
    }
}

static void conn_unexpected(http_conn_t *c, conn_event_t ev)
{
    log_write(LOG_ERROR, "http connection: impossible event", "state", conn_state_names[c->state],
              "event", conn_event_names[ev], NULL);
    abort();
}

/* The dispatcher: what each event means in each state. */
static void conn_dispatch(http_conn_t *c, conn_event_t ev)
{
    switch (ev) {
    case EV_DATA:
        switch (c->state) {
        case CONN_IDLE:
        case CONN_READING_HEAD:
        case CONN_READING_BODY: conn_parse(c); break;
        case CONN_HANDLING:
        case CONN_WRITING: break; /* pipelined input waits until the response is written */
        case CONN_LINGERING: conn_discard(c); break;
        case CONN_CLOSING: c->in_off = c->in_len = 0; break;
        }
        break;
    case EV_EOF:
        switch (c->state) {
        case CONN_IDLE:
        case CONN_READING_HEAD:
        case CONN_READING_BODY:
        case CONN_LINGERING: conn_close(c); break;
        case CONN_HANDLING:
            /* A half-close (shutdown(SHUT_WR) after the request) looks the same as a peer
             * that left: answer anyway, as curl expects and nginx does. A peer that left
             * shows up as a failed write; the handler timeout bounds the wait. */
        case CONN_WRITING: break; /* finish; conn_after_response and conn_parse see peer_eof */
        case CONN_CLOSING: break;
        }
        break;
    case EV_IO_ERROR:
        if (c->state != CONN_CLOSING)
            conn_close(c);
        break;
    case EV_WRITTEN:
        switch (c->state) {
        case CONN_WRITING: conn_after_response(c); break;
        default: conn_unexpected(c, ev);
        }
        break;
    case EV_TIMEOUT:
        switch (c->state) {
        case CONN_IDLE: conn_close(c); break;
        case CONN_READING_HEAD:
            conn_fail(c, 408, "request_timeout", "request headers not received in time", NULL);
            break;
        case CONN_READING_BODY:
            conn_fail(c, 408, "request_timeout", "request body not received in time", NULL);
            break;
        case CONN_HANDLING:
            conn_fail(c, 503, "unavailable", "the request took too long", "Retry-After: 1\r\n");
            break;
        case CONN_WRITING:
        case CONN_LINGERING: conn_close(c); break;
        case CONN_CLOSING: break;
        }
        break;
    case EV_SHUTDOWN: conn_close(c); break;
    }
}

/* ---- parsing ---- */

/* Refuses the request from inside a parser callback; conn_parse answers afterwards. */
static int conn_refuse(http_conn_t *c, int status, const char *code, const char *message)
{
    if (c->fail_status == 0) {
        c->fail_status = status;
        c->fail_code = code;
        c->fail_message = message;
    }
    return -1;
}

static int conn_refuse_oom(http_conn_t *c)
{
    return conn_refuse(c, 503, "unavailable", "out of memory");
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    http_response_t *res = c->current;
    res->url_len += len;
    res->head_bytes += len;
    if (res->url_len > c->server->limits.max_url_bytes)
        return conn_refuse(c, 414, "uri_too_long", "request target too long");
    if (res->head_bytes > c->server->limits.max_header_bytes)
        return conn_refuse(c, 431, "headers_too_large", "request headers too large");
    return arena_append(res, at, len) < 0 ? conn_refuse_oom(c) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    http_response_t *res = c->current;
    const http_server_limits_t *l = &c->server->limits;
    res->head_bytes += len;
    if (res->hdr_last != HDR_FIELD)
        res->head_bytes += 4; /* ": " and CRLF */
    if (res->head_bytes > l->max_header_bytes)
        return conn_refuse(c, 431, "headers_too_large", "request headers too large");
    if (c->state == CONN_READING_BODY)
        return 0; /* trailer fields: counted, not kept */
    if (res->hdr_last != HDR_FIELD) {
        if (header_finish(res) < 0)
            return conn_refuse_oom(c);
        if (res->nheaders >= l->max_headers)
            return conn_refuse(c, 431, "headers_too_large", "too many request header fields");
        if (res->nheaders == res->headers_cap) {
            unsigned cap = res->headers_cap ? res->headers_cap * 2 : 16;
            header_ref_t *h = realloc(res->headers, cap * sizeof *h);
            if (h == NULL)
                return conn_refuse_oom(c);
            res->headers = h;
            res->headers_cap = cap;
        }
        res->headers[res->nheaders].name = (uint32_t)res->arena_len;
        res->headers[res->nheaders].value = 0;
        res->nheaders++;
        res->hdr_last = HDR_FIELD;
    }
    return arena_append(res, at, len) < 0 ? conn_refuse_oom(c) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    http_response_t *res = c->current;
    res->head_bytes += len;
    if (res->head_bytes > c->server->limits.max_header_bytes)
        return conn_refuse(c, 431, "headers_too_large", "request headers too large");
    if (c->state == CONN_READING_BODY)
        return 0;
    if (res->hdr_last != HDR_VALUE) {
        if (res->hdr_last != HDR_FIELD)
            return conn_refuse(c, 400, "bad_request", "header value without a name");
        if (arena_nul(res) < 0)
            return conn_refuse_oom(c);
        res->headers[res->nheaders - 1].value = (uint32_t)res->arena_len;
        res->hdr_last = HDR_VALUE;
    }
    return arena_append(res, at, len) < 0 ? conn_refuse_oom(c) : 0;
}

/* Trims trailing blanks http-parser leaves on header values. */
static void headers_trim(http_response_t *res)
{
    for (unsigned i = 0; i < res->nheaders; i++) {
        char *v = res->arena + res->headers[i].value;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            v[--n] = '\0';
    }
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    http_response_t *res = c->current;
    const http_server_limits_t *l = &c->server->limits;
    if (header_finish(res) < 0)
        return conn_refuse_oom(c);
    headers_trim(res);
    /* Taken first, so the refusals below carry the client's id too. */
    const char *client_id = exchange_header(res, "x-request-id");
    if (client_id != NULL && request_id_acceptable(client_id))
        memcpy(res->request_id, client_id, strlen(client_id) + 1);
    res->body_off = res->arena_len;
    c->keep_alive = http_should_keep_alive(p) != 0;
    c->http10 = p->http_major == 1 && p->http_minor == 0;
    c->head_method = p->method == HTTP_HEAD;
    res->req.method = http_method_str((enum http_method)p->method);
    res->req.http_minor = p->http_minor;
    if (p->http_major != 1)
        return conn_refuse(c, 505, "unsupported_version", "only HTTP/1.0 and 1.1 are served");
    if (p->content_length != ULLONG_MAX && p->content_length > l->max_body_bytes)
        return conn_refuse(c, 413, "payload_too_large", "request body too large");
    const char *expect = exchange_header(res, "expect");
    if (expect != NULL && !c->http10 && strcasecmp(expect, "100-continue") == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write_t *w = malloc(sizeof *w + sizeof cont);
        if (w != NULL) {
            memcpy(w->data, cont, sizeof cont);
            w->len = sizeof cont - 1;
            w->is_response = false;
            conn_send(c, w); /* a failure shows again on the response write */
        }
    }
    conn_set_state(c, CONN_READING_BODY);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *c = p->data;
    http_response_t *res = c->current;
    res->body_len += len;
    if (res->body_len > c->server->limits.max_body_bytes)
        return conn_refuse(c, 413, "payload_too_large", "request body too large");
    return arena_append(res, at, len) < 0 ? conn_refuse_oom(c) : 0;
}

/* Pausing makes http_parser_execute return right after this request's last byte. */
static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Copies path and query out of the target and points the public request into the arena. */
static int exchange_finalize(http_response_t *res, bool is_connect)
{
    if (arena_nul(res) < 0) /* terminates the body */
        return -ENOMEM;
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(res->arena, res->url_len, is_connect, &u) != 0)
        return -EINVAL;
    size_t path_pos = res->arena_len;
    int rc;
    if (u.field_set & (1 << UF_PATH))
        rc = arena_append(res, res->arena + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    else if (is_connect)
        rc = arena_append(res, res->arena, res->url_len);
    else
        rc = arena_append(res, "/", 1);
    if (rc == 0)
        rc = arena_nul(res);
    size_t query_pos = res->arena_len;
    if (rc == 0 && (u.field_set & (1 << UF_QUERY)))
        rc = arena_append(res, res->arena + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    if (rc == 0)
        rc = arena_nul(res);
    if (rc < 0)
        return rc;
    res->req.path = res->arena + path_pos;
    res->req.query = res->arena + query_pos;
    res->req.body = res->arena + res->body_off;
    res->req.body_len = res->body_len;
    res->req.remote_addr = res->peer;
    res->req.request_id = res->request_id;
    return 0;
}

/* Hands a complete request to the handler; the connection waits in CONN_HANDLING. */
static void conn_dispatch_request(http_conn_t *c)
{
    http_server_t *s = c->server;
    http_response_t *res = c->current;
    if (c->parser.upgrade)
        c->keep_alive = false; /* what follows is not HTTP */
    int rc = exchange_finalize(res, c->parser.method == HTTP_CONNECT);
    if (rc < 0) {
        if (rc == -EINVAL)
            conn_fail(c, 400, "bad_request", "malformed request target", NULL);
        else
            conn_fail(c, 503, "unavailable", "out of memory", NULL);
        return;
    }
    res->req.keep_alive = c->keep_alive;
    c->requests++;
    conn_set_state(c, CONN_HANDLING);
    if (c->state != CONN_HANDLING) {
        exchange_free(res); /* closed on the way; the handler never saw it */
        return;
    }
    s->handler(s->handler_arg, &res->req, res);
}

static int conn_begin_request(http_conn_t *c)
{
    http_response_t *res = calloc(1, sizeof *res);
    if (res == NULL)
        return -ENOMEM;
    res->conn = c;
    res->head_bytes = HTTP_REQUEST_LINE_OVERHEAD;
    memcpy(res->peer, c->peer, sizeof res->peer);
    request_id_make(c->server, res->request_id, sizeof res->request_id);
    c->current = res;
    c->req_start_ns = uv_hrtime();
    c->fail_status = 0;
    c->head_method = false;
    conn_set_state(c, CONN_READING_HEAD);
    return 0;
}

static void conn_fail_parse(http_conn_t *c, enum http_errno err)
{
    if (err == HPE_HEADER_OVERFLOW)
        conn_fail(c, 431, "headers_too_large", "request headers too large", NULL);
    else
        conn_fail(c, 400, "bad_request", http_errno_description(err), NULL);
}

/*
 * Feeds buffered input to the parser until a request completes (then dispatches it and
 * stops: the next one is parsed only after the response), the input runs out, or the
 * request is refused.
 */
static void conn_parse(http_conn_t *c)
{
    while (c->in_off < c->in_len) {
        if (c->state == CONN_IDLE && conn_begin_request(c) < 0) {
            conn_close(c);
            return;
        }
        if (c->state != CONN_READING_HEAD && c->state != CONN_READING_BODY)
            break;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_off,
                                       c->in_len - c->in_off);
        c->in_off += n;
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (c->fail_status != 0) {
            conn_fail(c, c->fail_status, c->fail_code, c->fail_message, NULL);
            return;
        }
        if (err == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            conn_dispatch_request(c);
        } else if (err != HPE_OK) {
            conn_fail_parse(c, err);
            return;
        }
    }
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        c->input_full = false;
    }
    bool wants_input =
        c->state == CONN_IDLE || c->state == CONN_READING_HEAD || c->state == CONN_READING_BODY;
    if (wants_input && c->peer_eof)
        conn_close(c); /* no more input will come to complete a request */
    else if (c->state != CONN_CLOSING)
        conn_sync_reading(c);
}

/* ---- libuv callbacks ---- */

static void conn_on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = container_of((uv_tcp_t *)handle, http_conn_t, tcp);
    if (c->in_off > 0) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    buf->base = c->in + c->in_len;
    buf->len = sizeof c->in - c->in_len; /* 0 makes libuv report UV_ENOBUFS */
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *c = container_of((uv_tcp_t *)stream, http_conn_t, tcp);
    if (nread > 0) {
        c->in_len += (size_t)nread;
        conn_dispatch(c, EV_DATA);
    } else if (nread == UV_ENOBUFS) {
        /* Buffer full of pipelined input: pause until the requests in it are answered. */
        uv_read_stop(stream);
        c->reading = false;
        c->input_full = true;
    } else if (nread == UV_EOF) {
        c->reading = false; /* libuv stops reading at EOF */
        c->peer_eof = true;
        conn_dispatch(c, EV_EOF);
    } else if (nread < 0) {
        conn_dispatch(c, EV_IO_ERROR);
    }
}

static void server_maybe_finish(http_server_t *s)
{
    if (!s->closing || s->listener_open || s->sweep_open || s->conns != NULL)
        return;
    void (*cb)(http_server_t *) = s->on_closed;
    s->on_closed = NULL;
    if (cb != NULL)
        cb(s);
}

static void conn_on_close(uv_handle_t *handle)
{
    http_conn_t *c = container_of((uv_tcp_t *)handle, http_conn_t, tcp);
    http_server_t *s = c->server;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->counted)
        s->nconns--;
    if (c->shed)
        s->nshed--;
    assert(c->current == NULL);
    free(c);
    server_maybe_finish(s);
}

static void conn_peer_name(http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    strcpy(c->peer, "-");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
}

/* Counted connections from the address peer. */
static unsigned server_client_connections(const http_server_t *s, const char *peer)
{
    unsigned n = 0;
    for (const http_conn_t *c = s->conns; c != NULL; c = c->next)
        n += c->counted && strcmp(c->peer, peer) == 0;
    return n;
}

/*
 * Makes room for one connection by closing the longest-idle counted connection (of the
 * address peer, or of anyone when peer is NULL): a connection waiting for a request
 * costs its client only a reconnect, whereas refusing the newcomer may lock out a client
 * that has none. It stops counting at once; its memory goes in its close callback.
 * Returns false when every connection in scope is busy.
 */
static bool server_evict_idle(http_server_t *s, const char *peer)
{
    http_conn_t *oldest = NULL;
    for (http_conn_t *c = s->conns; c != NULL; c = c->next) {
        if (!c->counted || c->state != CONN_IDLE || (peer != NULL && strcmp(c->peer, peer) != 0))
            continue;
        if (oldest == NULL || c->idle_since < oldest->idle_since)
            oldest = c;
    }
    if (oldest == NULL)
        return false;
    if (log_enabled(LOG_DEBUG))
        log_write(LOG_DEBUG, "http connection closed to make room", "peer", oldest->peer, NULL);
    oldest->counted = false;
    s->nconns--;
    s->idle_evictions++;
    conn_close(oldest);
    return true;
}

/*
 * Accepts one connection. Over the per-client or the server-wide limit the longest-idle
 * connection in that scope is closed to make room; if none is idle the newcomer is
 * answered 503 and closed (up to HTTP_SHED_MAX at a time; beyond that closed without an
 * answer), so a flood costs a bounded amount of memory.
 */
static void server_on_connection(uv_stream_t *listener, int status)
{
    http_server_t *s = container_of((uv_tcp_t *)listener, http_server_t, listener);
    if (status < 0) {
        log_write(LOG_WARN, "http accept failed", "error", uv_strerror(status), NULL);
        return;
    }
    if (s->closing)
        return;
    http_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_write(LOG_ERROR, "http accept: out of memory", NULL);
        return;
    }
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->server = s;
    c->state = CONN_IDLE;
    c->req_start_ns = uv_hrtime();
    strcpy(c->peer, "-");
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    conn_peer_name(c);
    uv_tcp_nodelay(&c->tcp, 1);
    const char *refusal = NULL;
    if (server_client_connections(s, c->peer) >= s->limits.max_connections_per_client &&
        !server_evict_idle(s, c->peer))
        refusal = "too many connections from this address";
    else if (s->nconns >= s->limits.max_connections && !server_evict_idle(s, NULL))
        refusal = "too many connections";
    if (refusal != NULL) {
        c->shed = true;
        s->nshed++;
        if (s->nshed > HTTP_SHED_MAX)
            conn_close(c);
        else
            conn_fail(c, 503, "unavailable", refusal, "Retry-After: 1\r\n");
        return;
    }
    c->counted = true;
    s->nconns++;
    conn_set_state(c, CONN_IDLE);
}

/* One periodic timer enforces every connection's state deadline. */
static void server_on_sweep(uv_timer_t *timer)
{
    http_server_t *s = container_of(timer, http_server_t, sweep);
    uint64_t now = uv_now(s->loop);
    http_conn_t *next;
    for (http_conn_t *c = s->conns; c != NULL; c = next) {
        next = c->next; /* nodes are freed only in close callbacks, never here */
        if (c->state != CONN_CLOSING && c->deadline != 0 && now >= c->deadline)
            conn_dispatch(c, EV_TIMEOUT);
    }
}

/* ---- public API ---- */

int http_server_init(http_server_t *s, uv_loop_t *loop, const http_server_limits_t *limits,
                     http_handler_fn handler, void *handler_arg)
{
    assert(s != NULL && loop != NULL && handler != NULL);
    memset(s, 0, sizeof *s);
    if (limits != NULL)
        s->limits = *limits;
    else
        http_server_limits_default(&s->limits);
    const http_server_limits_t *l = &s->limits;
    if (l->max_header_bytes == 0 || l->max_url_bytes == 0 || l->max_url_bytes > UINT16_MAX ||
        l->max_headers == 0 || l->max_connections == 0 || l->max_connections_per_client == 0 ||
        l->header_timeout_ms == 0 || l->idle_timeout_ms == 0 || l->request_timeout_ms == 0 ||
        l->response_budget_bytes < HTTP_BUDGET_EXEMPT_BYTES ||
        l->max_body_bytes > (size_t)UINT32_MAX || l->max_header_bytes > (size_t)UINT32_MAX)
        return -EINVAL;
    s->loop = loop;
    /* Different per server and per run; ids need to be unique, not unpredictable. */
    s->request_id_state = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    s->handler = handler;
    s->handler_arg = handler_arg;
    uint64_t shortest =
        min_u64(l->header_timeout_ms, min_u64(l->idle_timeout_ms, l->request_timeout_ms));
    s->sweep_ms = shortest / 4;
    if (s->sweep_ms < 10)
        s->sweep_ms = 10;
    if (s->sweep_ms > 1000)
        s->sweep_ms = 1000;
    int rc = uv_timer_init(loop, &s->sweep);
    if (rc < 0)
        return rc;
    s->sweep_open = true;
    return 0;
}

void http_server_set_observer(http_server_t *s, http_observer_fn observer, void *arg)
{
    s->observer = observer;
    s->observer_arg = arg;
}

int http_server_listen(http_server_t *s, const char *listen_addr, char *err, size_t err_cap)
{
    assert(!s->listener_open && !s->closing);
    struct sockaddr_storage ss;
    int rc = listen_addr_parse(listen_addr, &ss, err, err_cap);
    if (rc < 0)
        return rc;
    rc = uv_tcp_init(s->loop, &s->listener);
    if (rc < 0) {
        snprintf(err, err_cap, "listen %s: %s", listen_addr, uv_strerror(rc));
        return rc;
    }
    s->listener_open = true;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, HTTP_LISTEN_BACKLOG, server_on_connection);
    if (rc < 0) {
        snprintf(err, err_cap, "listen %s: %s", listen_addr, uv_strerror(rc));
        return rc;
    }
    return uv_timer_start(&s->sweep, server_on_sweep, s->sweep_ms, s->sweep_ms);
}

int http_server_port(const http_server_t *s)
{
    if (!s->listener_open)
        return -ENOTCONN;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

unsigned http_server_connections(const http_server_t *s)
{
    return s->nconns;
}

uint64_t http_server_idle_evictions(const http_server_t *s)
{
    return s->idle_evictions;
}

uint64_t http_server_budget_refusals(const http_server_t *s)
{
    return s->budget_refusals;
}

static void server_on_listener_closed(uv_handle_t *handle)
{
    http_server_t *s = container_of((uv_tcp_t *)handle, http_server_t, listener);
    s->listener_open = false;
    server_maybe_finish(s);
}

static void server_on_sweep_closed(uv_handle_t *handle)
{
    http_server_t *s = container_of((uv_timer_t *)handle, http_server_t, sweep);
    s->sweep_open = false;
    server_maybe_finish(s);
}

void http_server_close(http_server_t *s, void (*on_closed)(http_server_t *s))
{
    assert(!s->closing);
    s->closing = true;
    s->on_closed = on_closed;
    if (s->listener_open)
        uv_close((uv_handle_t *)&s->listener, server_on_listener_closed);
    if (s->sweep_open)
        uv_close((uv_handle_t *)&s->sweep, server_on_sweep_closed);
    http_conn_t *next;
    for (http_conn_t *c = s->conns; c != NULL; c = next) {
        next = c->next;
        conn_dispatch(c, EV_SHUTDOWN);
    }
}

const char *http_request_header(const http_request_t *req, const char *name)
{
    const http_response_t *res = container_of(req, http_response_t, req);
    return exchange_header(res, name);
}

static bool header_name_ok(const char *name)
{
    static const char *const reserved[] = {"content-length", "connection",   "transfer-encoding",
                                           "server",         "content-type", "x-request-id"};
    if (name[0] == '\0' || strpbrk(name, "\r\n: \t") != NULL)
        return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcasecmp(name, reserved[i]) == 0)
            return false;
    }
    return true;
}

int http_response_header(http_response_t *res, const char *name, const char *value)
{
    if (name == NULL || value == NULL || !header_name_ok(name) || strpbrk(value, "\r\n") != NULL)
        return -EINVAL;
    size_t nlen = strlen(name);
    size_t vlen = strlen(value);
    size_t line = nlen + 2 + vlen + 2;
    if (res->extra_len + line > HTTP_EXTRA_HEADERS_MAX)
        return -ENOSPC;
    if (res->extra == NULL) {
        res->extra = malloc(HTTP_EXTRA_HEADERS_MAX);
        if (res->extra == NULL)
            return -ENOMEM;
    }
    char *p = res->extra + res->extra_len;
    memcpy(p, name, nlen);
    memcpy(p + nlen, ": ", 2);
    memcpy(p + nlen + 2, value, vlen);
    memcpy(p + nlen + 2 + vlen, "\r\n", 2);
    res->extra_len += line;
    return 0;
}

void http_response_on_abandon(http_response_t *res, void (*cb)(http_response_t *res, void *arg),
                              void *arg)
{
    res->on_abandon = cb;
    res->abandon_arg = arg;
}

void http_response_skip_budget(http_response_t *res)
{
    res->skip_budget = true;
}

bool http_response_abandoned(const http_response_t *res)
{
    return res->conn == NULL;
}

void http_respond(http_response_t *res, int status, const char *content_type, const void *body,
                  size_t body_len)
{
    assert(res != NULL && status >= 100 && status <= 999);
    assert(body != NULL || body_len == 0);
    http_conn_t *c = res->conn;
    if (c == NULL) {
        exchange_free(res);
        return;
    }
    assert(c->state == CONN_HANDLING && c->current == res);
    const char *extra = res->extra;
    size_t extra_len = res->extra_len;
    char refusal[JSON_ERROR_BODY_MAX];
    http_server_t *s = c->server;
    if (body_len > HTTP_BUDGET_EXEMPT_BYTES && !res->skip_budget &&
        s->response_bytes_held + body_len > s->limits.response_budget_bytes) {
        /* Slow readers already hold the budget: answering would grow memory without
         * bound. The client retries; small answers (errors, probes) still go out. */
        s->budget_refusals++;
        status = 503;
        content_type = "application/json";
        body = refusal;
        body_len = json_error_body(refusal, sizeof refusal, "unavailable",
                                   "the server is busy sending other answers; retry", NULL);
        extra = "Retry-After: 1\r\n";
        extra_len = strlen(extra);
    }
    conn_write_t *w =
        response_build(c, status, content_type, res->request_id, extra, extra_len, body, body_len);
    conn_observe(c, &res->req, res->request_id, status);
    c->current = NULL;
    exchange_free(res);
    if (w == NULL) {
        conn_close(c);
        return;
    }
    conn_set_state(c, CONN_WRITING);
    if (conn_send(c, w) < 0)
        conn_close(c);
}

void http_respond_error(http_response_t *res, int status, const char *code, const char *message)
{
    char body[JSON_ERROR_BODY_MAX];
    size_t len = json_error_body(body, sizeof body, code, message, NULL);
    http_respond(res, status, "application/json", body, len);
}
