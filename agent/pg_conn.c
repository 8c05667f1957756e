/* pg_conn — see pg_conn.h. */
#include "pg_conn.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "et_backoff.h"
#include "et_macros.h"
#include "log.h"
#include "pg_resolve.h"

/* Short and capped low: most outages are brief (a restart, a failover), and every second
 * of backoff after PostgreSQL is back is a second of backlog that did not need to grow. */
#define CONNECT_TIMEOUT_MS 10000

/* Added unless the conninfo sets them: a dead peer is noticed in about 15-25 s, whether
 * the session is idle (keepalives) or has data unacknowledged (tcp_user_timeout), instead
 * of the kernel's default of hours. Ignored by libpq on Unix sockets. */
static const char *const tcp_defaults[][2] = {
    {"keepalives", "1"},       {"keepalives_idle", "10"},     {"keepalives_interval", "5"},
    {"keepalives_count", "3"}, {"tcp_user_timeout", "15000"},
};

/* Heap-allocated so a new socket can get a new handle while the old one is still closing. */
struct pg_poll {
    uv_poll_t handle;
    pg_conn_t *conn; /* NULL once abandoned: late callbacks return early */
};

static void on_socket(uv_poll_t *handle, int status, int events);

static const char *const state_names[] = {
    [PG_CONN_IDLE_DOWN] = "down",
    [PG_CONN_RESOLVING] = "resolving",
    [PG_CONN_CONNECTING] = "connecting",
    [PG_CONN_READY] = "ready",
    [PG_CONN_BUSY] = "busy",
    [PG_CONN_BACKOFF] = "backoff",
    [PG_CONN_CLOSING] = "closing",
    [PG_CONN_CLOSED] = "closed",
};

const char *pg_conn_state_name(pg_conn_state_t state)
{
    return state_names[state];
}

/* The one place the state changes, so every transition is logged. */
static void set_state(pg_conn_t *c, pg_conn_state_t next)
{
    if (c->state == next)
        return;
    log_write(LOG_DEBUG, "postgres connection state", "conn", c->name, "from",
              state_names[c->state], "to", state_names[next], NULL);
    c->state = next;
}

static void on_poll_closed(uv_handle_t *handle)
{
    free(container_of((uv_poll_t *)handle, struct pg_poll, handle));
}

static void drop_poll(pg_conn_t *c)
{
    if (c->poll == NULL)
        return;
    c->poll->conn = NULL;
    uv_close((uv_handle_t *)&c->poll->handle, on_poll_closed);
    c->poll = NULL;
    c->polled_fd = -1;
}

/* Watches libpq's current socket; libpq may change it between attempts and hosts. */
static int watch(pg_conn_t *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -EBADF;
    if (c->poll && c->polled_fd != fd)
        drop_poll(c);
    if (c->poll == NULL) {
        struct pg_poll *p = calloc(1, sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        int rc = uv_poll_init(c->loop, &p->handle, fd);
        if (rc < 0) {
            free(p);
            return rc;
        }
        p->conn = c;
        c->poll = p;
        c->polled_fd = fd;
    }
    return uv_poll_start(&c->poll->handle, events, on_socket);
}

static int wanted_events(const pg_conn_t *c)
{
    return UV_READABLE | (c->flushing ? UV_WRITABLE : 0);
}

static void finish_pg(pg_conn_t *c)
{
    pg_resolve_abandon(c->resolve); /* its callback will not run; it frees itself */
    c->resolve = NULL;
    c->pipelined = false;
    drop_poll(c);
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->flushing = false;
}

/* Hands the running query its last event and forgets it. */
static void end_query(pg_conn_t *c, pg_query_event_t event)
{
    pg_query_fn cb = c->query_cb;
    void *arg = c->query_arg;
    c->query_cb = NULL;
    c->query_arg = NULL;
    if (cb)
        cb(c, event, NULL, arg);
}

static void on_timer(uv_timer_t *timer);

/* Any failure of a session or an attempt: tear down, tell the owner, retry later. */
static void lose_session(pg_conn_t *c, const char *reason)
{
    if (c->state == PG_CONN_CLOSING || c->state == PG_CONN_CLOSED)
        return;
    bool was_up = c->state == PG_CONN_READY || c->state == PG_CONN_BUSY;
    finish_pg(c);
    set_state(c, PG_CONN_BACKOFF);
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, on_timer, c->backoff_ms, 0);
    log_level_t level = c->quiet ? LOG_DEBUG : LOG_WARN;
    if (was_up) {
        et_retry_succeeded(&c->retry); /* a new streak of attempts begins */
        log_fields(level, "postgres connection lost", log_str("conn", c->name),
                   log_str("reason", reason), log_uint("next_attempt_ms", c->backoff_ms));
    } else if (et_retry_failed(&c->retry, reason, uv_now(c->loop))) {
        log_fields(level, "postgres connection attempt failed", log_str("conn", c->name),
                   log_uint("attempt", c->retry.failures), log_str("reason", reason),
                   log_uint("next_attempt_ms", c->backoff_ms));
    }
    c->backoff_ms = et_backoff_next(c->backoff_ms, ET_RECONNECT_MAX_MS);
    end_query(c, PG_QUERY_LOST);
    if (c->on_down && c->state == PG_CONN_BACKOFF)
        c->on_down(c, reason, c->arg);
}

/* Copies libpq's message on one line: its line breaks and tabs become single spaces. */
static const char *pg_reason(pg_conn_t *c, char *buf, size_t cap)
{
    const char *msg = c->pg ? PQerrorMessage(c->pg) : "no connection";
    if (msg == NULL || *msg == '\0')
        msg = "unknown error";
    size_t n = 0;
    bool blank = false;
    for (const char *p = msg; *p && n + 1 < cap; p++) {
        bool space = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (space && (n == 0 || blank))
            continue;
        buf[n++] = space ? ' ' : *p;
        blank = space;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

/*
 * Why the socket failed, for a poll error on a session that was up: the socket's own
 * error (ECONNRESET…) when it has one, else libpq's message, else libuv's, which for
 * POLLERR is only "bad file descriptor" and says nothing of the cause.
 */
static const char *socket_reason(pg_conn_t *c, int status, char *buf, size_t cap)
{
    int fd = c->pg ? PQsocket(c->pg) : -1;
    int err = 0;
    socklen_t len = sizeof err;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        snprintf(buf, cap, "%s", strerror(err));
        return buf;
    }
    const char *msg = c->pg ? PQerrorMessage(c->pg) : NULL;
    if (msg != NULL && *msg != '\0')
        return pg_reason(c, buf, cap);
    snprintf(buf, cap, "socket error (%s)", uv_strerror(status));
    return buf;
}

/* Server notices and warnings go to our log, not raw to stderr. */
static void on_notice(void *arg, const char *message)
{
    pg_conn_t *c = arg;
    char line[512];
    snprintf(line, sizeof line, "%s", message);
    line[strcspn(line, "\n")] = '\0';
    log_write(c->quiet ? LOG_DEBUG : LOG_INFO, "postgres notice", "conn", c->name, "notice", line,
              NULL);
}

void pg_conninfo_free(char **keywords, char **values)
{
    for (size_t i = 0; keywords && keywords[i]; i++)
        free(keywords[i]);
    for (size_t i = 0; values && values[i]; i++)
        free(values[i]);
    free(keywords);
    free(values);
}

int pg_conninfo_params(const char *conninfo, char ***keywords, char ***values, char *err,
                       size_t err_cap)
{
    *keywords = NULL;
    *values = NULL;
    char *why = NULL;
    /* Parses both forms; only what the string sets has a value, so environment defaults
     * (PGHOST…) still apply in PQconnectStartParams. */
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (opts == NULL) {
        snprintf(err, err_cap, "%s", why ? why : "out of memory");
        err[strcspn(err, "\n")] = '\0';
        int rc = why ? -EINVAL : -ENOMEM;
        PQfreemem(why);
        return rc;
    }
    size_t n = 0;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    char **k = calloc(n + 1, sizeof *k);
    char **v = calloc(n + 1, sizeof *v);
    int rc = k && v ? 0 : -ENOMEM;
    size_t used = 0;
    for (const PQconninfoOption *o = opts; rc == 0 && o->keyword; o++) {
        const char *val = o->val;
        /* Only keywords this libpq knows get a default: an older one lacks some. */
        for (size_t d = 0; val == NULL && d < ET_ARRAY_LEN(tcp_defaults); d++)
            if (strcmp(o->keyword, tcp_defaults[d][0]) == 0)
                val = tcp_defaults[d][1];
        if (val == NULL)
            continue;
        k[used] = strdup(o->keyword);
        v[used] = strdup(val);
        if (k[used] == NULL || v[used] == NULL)
            rc = -ENOMEM;
        used++;
    }
    PQconninfoFree(opts);
    if (rc < 0) {
        for (size_t i = 0; i < used; i++) {
            free(k[i]);
            free(v[i]);
        }
        free(k);
        free(v);
        snprintf(err, err_cap, "out of memory");
        return rc;
    }
    *keywords = k;
    *values = v;
    return 0;
}

/* One attempt with the given parameters (libpq copies them). */
static void connect_with(pg_conn_t *c, char *const *keywords, char *const *values)
{
    char reason[512];
    /* expand_dbname 0: the conninfo was expanded by the parse already. A conninfo that
     * did not parse goes to libpq as it is, so the log says libpq's reason each try. */
    c->pg = keywords ? PQconnectStartParams((const char *const *)keywords,
                                            (const char *const *)values, 0)
                     : PQconnectStart(c->conninfo);
    if (c->pg == NULL) {
        lose_session(c, "out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pg, on_notice, c);
    if (PQstatus(c->pg) == CONNECTION_BAD || PQsetnonblocking(c->pg, 1) != 0) {
        lose_session(c, pg_reason(c, reason, sizeof reason));
        return;
    }
    set_state(c, PG_CONN_CONNECTING);
    uv_timer_start(&c->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    if (watch(c, UV_WRITABLE) < 0)
        lose_session(c, "cannot watch the socket");
}

static void on_resolved(int status, const char *error, char **keywords, char **values, void *arg)
{
    pg_conn_t *c = arg;
    c->resolve = NULL;
    if (status < 0)
        lose_session(c, error);
    else
        connect_with(c, keywords, values);
    pg_conninfo_free(keywords, values);
}

static void start_attempt(pg_conn_t *c)
{
    if (c->keywords == NULL || !pg_resolve_needed(c->keywords, c->values)) {
        connect_with(c, c->keywords, c->values);
        return;
    }
    /* Each attempt looks the names up again: a Kubernetes service or a failover may have
     * moved the database to another address. */
    set_state(c, PG_CONN_RESOLVING);
    uv_timer_start(&c->timer, on_timer, CONNECT_TIMEOUT_MS, 0);
    int rc = pg_resolve_start(&c->resolve, c->loop, c->keywords, c->values, on_resolved, c);
    if (rc < 0) {
        char reason[128];
        snprintf(reason, sizeof reason, "cannot look up the host names: %s", strerror(-rc));
        lose_session(c, reason);
    }
}

static void on_timer(uv_timer_t *timer)
{
    pg_conn_t *c = container_of(timer, pg_conn_t, timer);
    char reason[96];
    if (c->state == PG_CONN_BACKOFF) {
        start_attempt(c);
    } else if (c->state == PG_CONN_RESOLVING) {
        lose_session(c, "host name lookup timed out");
    } else if (c->state == PG_CONN_CONNECTING) {
        lose_session(c, "connect timed out");
    } else if (c->state == PG_CONN_BUSY) {
        /* The server neither answered nor failed the session: a half-open connection or a
         * backend frozen. Reset; the owner retries on a new session. */
        snprintf(reason, sizeof reason, "no answer to a query within %llu ms",
                 (unsigned long long)c->query_timeout_ms);
        lose_session(c, reason);
    }
}

/* One step of PQconnectPoll; on success the session is up. */
static void advance_connect(pg_conn_t *c)
{
    char reason[512];
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (watch(c, UV_READABLE) < 0)
            lose_session(c, "cannot watch the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (watch(c, UV_WRITABLE) < 0)
            lose_session(c, "cannot watch the socket");
        return;
    case PGRES_POLLING_FAILED: lose_session(c, pg_reason(c, reason, sizeof reason)); return;
    case PGRES_POLLING_OK:
        uv_timer_stop(&c->timer);
        c->backoff_ms = ET_RECONNECT_MIN_MS;
        set_state(c, PG_CONN_READY);
        if (watch(c, UV_READABLE) < 0) {
            lose_session(c, "cannot watch the socket");
            return;
        }
        log_fields(c->quiet ? LOG_DEBUG : LOG_INFO, "postgres connected", log_str("conn", c->name),
                   log_uint("failed_attempts", et_retry_succeeded(&c->retry)));
        if (c->on_up)
            c->on_up(c, c->arg);
        return;
    default: return;
    }
}

/* Writes what libpq still buffers; watches for writable until it is all out. */
static int flush_output(pg_conn_t *c)
{
    int rc = PQflush(c->pg);
    if (rc < 0)
        return -EIO;
    bool want = rc == 1;
    if (want != c->flushing) {
        c->flushing = want;
        if (watch(c, wanted_events(c)) < 0)
            return -EIO;
    }
    return 0;
}

/* Delivers every result that is complete; ends the query at libpq's final NULL. */
static void drain_results(pg_conn_t *c)
{
    char reason[512];
    bool after_null = false;
    while (c->state == PG_CONN_BUSY && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL && c->pipelined) {
            /* The end of one step's results; the sync ends the pipeline. Two in a row
             * mean nothing more has arrived yet: wait for the socket. */
            if (after_null)
                break;
            after_null = true;
            continue;
        }
        after_null = false;
        if (res == NULL) {
            uv_timer_stop(&c->timer);
            set_state(c, PG_CONN_READY);
            end_query(c, PG_QUERY_DONE);
            return;
        }
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            c->pipelined = false;
            if (!PQexitPipelineMode(c->pg)) {
                lose_session(c, pg_reason(c, reason, sizeof reason));
                return;
            }
            uv_timer_stop(&c->timer);
            set_state(c, PG_CONN_READY);
            end_query(c, PG_QUERY_DONE);
            return;
        }
        if (c->query_cb)
            c->query_cb(c, PG_QUERY_RESULT, res, c->query_arg);
        PQclear(res);
        if (c->state != PG_CONN_BUSY)
            return; /* the callback reset or closed the connection */
        if (status == PGRES_COPY_IN && PQisBusy(c->pg) == 0 &&
            PQputCopyEnd(c->pg, "client sent no copy data") < 0) {
            lose_session(c, pg_reason(c, reason, sizeof reason));
            return;
        }
        if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
            lose_session(c, "unexpected COPY TO");
            return;
        }
    }
    if (c->state == PG_CONN_BUSY && flush_output(c) < 0)
        lose_session(c, pg_reason(c, reason, sizeof reason));
}

/* Hands over the notifications libpq has parsed (during any read), or drops them. */
static void deliver_notifications(pg_conn_t *c)
{
    PGnotify *n;
    while ((c->state == PG_CONN_READY || c->state == PG_CONN_BUSY) &&
           (n = PQnotifies(c->pg)) != NULL) {
        if (c->on_notify)
            c->on_notify(c, n->relname, n->extra, c->arg);
        PQfreemem(n);
    }
}

static void on_socket(uv_poll_t *handle, int status, int events)
{
    struct pg_poll *p = container_of(handle, struct pg_poll, handle);
    pg_conn_t *c = p->conn;
    char reason[512];
    if (c == NULL)
        return;
    if (status < 0) {
        /* POLLERR (UV_EBADF) says only that the socket failed; libpq reads the socket's
         * error and says what it was ("connection refused"…). While connecting, libpq may
         * also go on to the host's next address. */
        if (c->state == PG_CONN_CONNECTING) {
            advance_connect(c);
            return;
        }
        if ((c->state == PG_CONN_READY || c->state == PG_CONN_BUSY) &&
            (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD)) {
            lose_session(c, pg_reason(c, reason, sizeof reason));
            return;
        }
        lose_session(c, socket_reason(c, status, reason, sizeof reason));
        return;
    }
    switch (c->state) {
    case PG_CONN_CONNECTING: advance_connect(c); return;
    case PG_CONN_READY:
    case PG_CONN_BUSY:
        if ((events & UV_WRITABLE) && flush_output(c) < 0) {
            lose_session(c, pg_reason(c, reason, sizeof reason));
            return;
        }
        if (events & UV_READABLE) {
            if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
                lose_session(c, pg_reason(c, reason, sizeof reason));
                return;
            }
        }
        if (c->state == PG_CONN_BUSY)
            drain_results(c);
        deliver_notifications(c);
        return;
    case PG_CONN_IDLE_DOWN:
    case PG_CONN_RESOLVING: /* no socket yet */
    case PG_CONN_BACKOFF:
    case PG_CONN_CLOSING:
    case PG_CONN_CLOSED: return;
    }
}

void pg_conn_set_quiet(pg_conn_t *c, bool quiet)
{
    c->quiet = quiet;
}

void pg_conn_set_notify(pg_conn_t *c, pg_conn_notify_fn on_notify)
{
    c->on_notify = on_notify;
}

int pg_conn_init(pg_conn_t *c, uv_loop_t *loop, const char *name, const char *conninfo,
                 pg_conn_up_fn on_up, pg_conn_down_fn on_down, void *arg)
{
    memset(c, 0, sizeof *c);
    char why[256];
    c->conninfo = strdup(conninfo);
    if (c->conninfo == NULL)
        return -ENOMEM;
    int rc = pg_conninfo_params(conninfo, &c->keywords, &c->values, why, sizeof why);
    if (rc == -ENOMEM) {
        free(c->conninfo);
        return rc;
    }
    rc = uv_timer_init(loop, &c->timer);
    if (rc < 0) {
        pg_conninfo_free(c->keywords, c->values);
        free(c->conninfo);
        return rc;
    }
    c->loop = loop;
    c->name = name;
    c->on_up = on_up;
    c->on_down = on_down;
    c->arg = arg;
    c->polled_fd = -1;
    c->backoff_ms = ET_RECONNECT_MIN_MS;
    c->state = PG_CONN_IDLE_DOWN;
    return 0;
}

void pg_conn_start(pg_conn_t *c)
{
    if (c->state == PG_CONN_IDLE_DOWN)
        start_attempt(c);
}

/* Common tail of both query kinds: the query is queued in libpq; flush and wait. */
static int begin_query(pg_conn_t *c, int sent, pg_query_fn cb, void *arg)
{
    char reason[512];
    if (!sent) {
        lose_session(c, pg_reason(c, reason, sizeof reason));
        return -EIO;
    }
    c->query_cb = cb;
    c->query_arg = arg;
    set_state(c, PG_CONN_BUSY);
    if (c->query_timeout_ms)
        uv_timer_start(&c->timer, on_timer, c->query_timeout_ms, 0);
    if (flush_output(c) < 0) {
        lose_session(c, pg_reason(c, reason, sizeof reason));
        return 0; /* the callback has had PG_QUERY_LOST */
    }
    return 0;
}

int pg_conn_query(pg_conn_t *c, const char *sql, pg_query_fn cb, void *arg)
{
    if (c->state == PG_CONN_BUSY)
        return -EBUSY;
    if (c->state != PG_CONN_READY)
        return -ENOTCONN;
    return begin_query(c, PQsendQuery(c->pg, sql), cb, arg);
}

int pg_conn_query_params(pg_conn_t *c, const char *sql, int nparams, const char *const *values,
                         pg_query_fn cb, void *arg)
{
    if (c->state == PG_CONN_BUSY)
        return -EBUSY;
    if (c->state != PG_CONN_READY)
        return -ENOTCONN;
    return begin_query(c, PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0), cb,
                       arg);
}

int pg_conn_pipeline(pg_conn_t *c, const pg_step_t *steps, int nsteps, pg_query_fn cb, void *arg)
{
    if (c->state == PG_CONN_BUSY)
        return -EBUSY;
    if (c->state != PG_CONN_READY)
        return -ENOTCONN;
    int sent = PQenterPipelineMode(c->pg);
    for (int i = 0; sent && i < nsteps; i++) {
        const pg_step_t *s = &steps[i];
        sent = s->sql ? PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->values, NULL, NULL,
                                          s->binary_result)
                      : PQsendQueryPrepared(c->pg, s->prepared, s->nparams, s->values, NULL, NULL,
                                            s->binary_result);
    }
    if (sent)
        sent = PQpipelineSync(c->pg);
    c->pipelined = sent != 0;
    return begin_query(c, sent, cb, arg);
}

int pg_conn_copy_data(pg_conn_t *c, const char *data, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        int rc = PQputCopyData(c->pg, data, chunk);
        if (rc < 0)
            return -EIO;
        if (rc == 0) {
            /* libpq could not grow its buffer without blocking: push some out first. */
            if (PQflush(c->pg) < 0)
                return -EIO;
            continue;
        }
        data += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

int pg_conn_copy_end(pg_conn_t *c, const char *error)
{
    return PQputCopyEnd(c->pg, error) < 0 ? -EIO : 0;
}

void pg_conn_set_query_timeout(pg_conn_t *c, uint64_t ms)
{
    c->query_timeout_ms = ms;
}

void pg_conn_reset(pg_conn_t *c, const char *reason)
{
    lose_session(c, reason);
}

bool pg_conn_ready(const pg_conn_t *c)
{
    return c->state == PG_CONN_READY;
}

bool pg_conn_up(const pg_conn_t *c)
{
    return c->state == PG_CONN_READY || c->state == PG_CONN_BUSY;
}

static void on_timer_closed(uv_handle_t *handle)
{
    pg_conn_t *c = container_of((uv_timer_t *)handle, pg_conn_t, timer);
    set_state(c, PG_CONN_CLOSED);
    free(c->conninfo);
    c->conninfo = NULL;
    pg_conninfo_free(c->keywords, c->values);
    c->keywords = NULL;
    c->values = NULL;
    if (c->on_closed)
        c->on_closed(c);
}

void pg_conn_close(pg_conn_t *c, pg_conn_closed_fn on_closed)
{
    if (c->state == PG_CONN_CLOSING || c->state == PG_CONN_CLOSED)
        return;
    set_state(c, PG_CONN_CLOSING);
    c->on_closed = on_closed;
    finish_pg(c);
    end_query(c, PG_QUERY_LOST);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
