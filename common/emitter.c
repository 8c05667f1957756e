/*
 * emitter — synchronous publisher: encode with event_codec, XADD with blocking hiredis.
 *
 * The connection is (re)made from the parsed URL: connect with a timeout, AUTH, SELECT.
 * After an I/O error hiredis marks the context unusable, so the next send opens a fresh
 * one once before giving up; a worker that outlives a Redis restart keeps publishing.
 * `stream` may be a comma-separated list of keys (sharded streams, DESIGN section 2):
 * successive XADDs then go round-robin over them.
 */
#include "emitter.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "redis_url.h"

/* Connect and per-command timeout. */
#define EMITTER_TIMEOUT_MS 5000
#define EMITTER_MAX_STREAMS 64
#define EMITTER_STREAM_MAX 512

struct et_emitter {
    redisContext *ctx;                       /* NULL until connected or after a failed reconnect */
    et_redis_url_t url;                      /* parsed once; reused by every reconnect */
    char *streams;                           /* owned copy of the list, commas replaced by NULs */
    const char *stream[EMITTER_MAX_STREAMS]; /* pointers into streams */
    size_t nstreams;
    size_t next; /* round-robin position */
};

/* Where the emitter points, for error messages; never includes the password. */
static void describe_target(const et_emitter_t *em, char *buf, size_t cap)
{
    if (em->url.unix_path[0] != '\0')
        snprintf(buf, cap, "unix:%s", em->url.unix_path);
    else
        snprintf(buf, cap, "%s:%d", em->url.host, em->url.port);
}

/* hiredis error kinds to negative errno. */
static int context_errno(const redisContext *c)
{
    switch (c->err) {
    case REDIS_ERR_EOF: return -ECONNRESET;
    case REDIS_ERR_OOM: return -ENOMEM;
    case REDIS_ERR_PROTOCOL: return -EPROTO;
    default: return -EIO;
    }
}

/* Copies a Redis reply error into err on one line (CR/LF replaced). */
static void reply_error(const char *what, const redisReply *r, char *err, size_t err_cap)
{
    char msg[256];
    size_t n = r->len < sizeof(msg) - 1 ? r->len : sizeof(msg) - 1;
    memcpy(msg, r->str, n);
    msg[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (msg[i] == '\r' || msg[i] == '\n')
            msg[i] = ' ';
    }
    snprintf(err, err_cap, "%s: %s", what, msg);
}

/*
 * Checks (and frees) the reply of a command expected to answer +OK (AUTH, SELECT); label
 * names the command in errors so the password never appears there.
 */
static int command_ok(et_emitter_t *em, redisReply *r, const char *label, char *err, size_t err_cap)
{
    char where[300];
    int rc = 0;

    describe_target(em, where, sizeof(where));
    if (r == NULL) {
        snprintf(err, err_cap, "redis %s: %s failed: %s", where, label, em->ctx->errstr);
        return context_errno(em->ctx);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        char what[340];
        snprintf(what, sizeof(what), "redis %s: %s refused", where, label);
        reply_error(what, r, err, err_cap);
        rc = strncmp(r->str, "WRONGPASS", 9) == 0 || strncmp(r->str, "NOAUTH", 6) == 0 ||
                     strstr(r->str, "password") != NULL
                 ? -EACCES
                 : -EPROTO;
    } else if (r->type != REDIS_REPLY_STATUS) {
        snprintf(err, err_cap, "redis %s: %s: unexpected reply type %d", where, label, r->type);
        rc = -EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

/* Opens a fresh connection: connect with timeout, read timeout, AUTH, SELECT. */
static int emitter_connect(et_emitter_t *em, char *err, size_t err_cap)
{
    struct timeval tv = {EMITTER_TIMEOUT_MS / 1000, (EMITTER_TIMEOUT_MS % 1000) * 1000};
    char where[300];

    describe_target(em, where, sizeof(where));
    if (em->ctx != NULL) {
        redisFree(em->ctx);
        em->ctx = NULL;
    }
    redisContext *c = em->url.unix_path[0] != '\0'
                          ? redisConnectUnixWithTimeout(em->url.unix_path, tv)
                          : redisConnectWithTimeout(em->url.host, em->url.port, tv);
    if (c == NULL) {
        snprintf(err, err_cap, "redis %s: cannot allocate a connection", where);
        return -ENOMEM;
    }
    if (c->err != 0) {
        snprintf(err, err_cap, "redis %s: connect failed: %s", where, c->errstr);
        int rc = context_errno(c);
        redisFree(c);
        return rc == -EIO ? -ECONNREFUSED : rc;
    }
    em->ctx = c;
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, err_cap, "redis %s: cannot set the command timeout", where);
        return -EIO;
    }
    int rc = 0;
    if (em->url.password[0] != '\0') {
        if (em->url.username[0] != '\0')
            rc = command_ok(em, redisCommand(c, "AUTH %s %s", em->url.username, em->url.password),
                            "AUTH", err, err_cap);
        else
            rc = command_ok(em, redisCommand(c, "AUTH %s", em->url.password), "AUTH", err, err_cap);
    }
    if (rc == 0 && em->url.db != 0)
        rc = command_ok(em, redisCommand(c, "SELECT %d", em->url.db), "SELECT", err, err_cap);
    if (rc < 0) {
        redisFree(em->ctx);
        em->ctx = NULL;
    }
    return rc;
}

/* Splits the comma-separated stream list into em->stream; empty keys are refused. */
static int parse_streams(et_emitter_t *em, const char *list, char *err, size_t err_cap)
{
    size_t len = strlen(list);
    if (len == 0 || len > EMITTER_STREAM_MAX) {
        snprintf(err, err_cap, "stream: must be 1-%d bytes", EMITTER_STREAM_MAX);
        return -EINVAL;
    }
    em->streams = strdup(list);
    if (em->streams == NULL) {
        snprintf(err, err_cap, "stream: out of memory");
        return -ENOMEM;
    }
    char *p = em->streams;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        if (*p == '\0') {
            snprintf(err, err_cap, "stream: empty key in list \"%s\"", list);
            return -EINVAL;
        }
        if (em->nstreams == EMITTER_MAX_STREAMS) {
            snprintf(err, err_cap, "stream: more than %d keys", EMITTER_MAX_STREAMS);
            return -EINVAL;
        }
        em->stream[em->nstreams++] = p;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

int et_emitter_open(const char *redis_url, const char *stream, et_emitter_t **out, char *err,
                    size_t err_cap)
{
    char why[256];

    *out = NULL;
    et_emitter_t *em = calloc(1, sizeof(*em));
    if (em == NULL) {
        snprintf(err, err_cap, "emitter: out of memory");
        return -ENOMEM;
    }
    int rc = et_redis_url_parse(redis_url, &em->url, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, err_cap, "redis url: %s", why);
        et_emitter_close(em);
        return rc;
    }
    rc = parse_streams(em, stream, err, err_cap);
    if (rc == 0)
        rc = emitter_connect(em, err, err_cap);
    if (rc < 0) {
        et_emitter_close(em);
        return rc;
    }
    *out = em;
    return 0;
}

/* One XADD attempt on the current connection. */
static int xadd_once(et_emitter_t *em, const char *stream, const void *bytes, size_t len, char *err,
                     size_t err_cap)
{
    char where[300];

    describe_target(em, where, sizeof(where));
    redisReply *r = redisCommand(em->ctx, "XADD %s * event %b", stream, bytes, len);
    if (r == NULL) {
        snprintf(err, err_cap, "redis %s: XADD %s failed: %s", where, stream, em->ctx->errstr);
        return context_errno(em->ctx);
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        char what[600];
        snprintf(what, sizeof(what), "redis %s: XADD %s refused", where, stream);
        reply_error(what, r, err, err_cap);
        rc = -EPROTO;
    } else if (r->type != REDIS_REPLY_STRING) {
        snprintf(err, err_cap, "redis %s: XADD %s: unexpected reply type %d", where, stream,
                 r->type);
        rc = -EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

int et_emitter_send_raw(et_emitter_t *em, const void *bytes, size_t len, char *err, size_t err_cap)
{
    const char *stream = em->stream[em->next];
    em->next = (em->next + 1) % em->nstreams;

    /* A dead context (server restarted, connection dropped) gets one fresh attempt. A
     * retried XADD may land twice if only the reply was lost; the agent's exactly-once
     * effect makes that harmless. */
    if (em->ctx == NULL || em->ctx->err != 0) {
        int rc = emitter_connect(em, err, err_cap);
        if (rc < 0)
            return rc;
    }
    int rc = xadd_once(em, stream, bytes, len, err, err_cap);
    if (rc < 0 && rc != -EPROTO && em->ctx->err != 0) {
        rc = emitter_connect(em, err, err_cap);
        if (rc == 0)
            rc = xadd_once(em, stream, bytes, len, err, err_cap);
    }
    return rc;
}

int et_emitter_send(et_emitter_t *em, const et_event_t *events, size_t n, char *err, size_t err_cap)
{
    char *buf = NULL;
    size_t len = 0;

    int rc = et_event_encode(events, n, n > 1, &buf, &len);
    if (rc < 0) {
        snprintf(err, err_cap, "encode: %s",
                 rc == -ENOMEM ? "out of memory"
                               : "invalid event (empty or too long id, bad status or duration,"
                                 " or too many events)");
        return rc;
    }
    rc = et_emitter_send_raw(em, buf, len, err, err_cap);
    free(buf);
    return rc;
}

void et_emitter_close(et_emitter_t *em)
{
    if (em == NULL)
        return;
    if (em->ctx != NULL)
        redisFree(em->ctx);
    free(em->streams);
    free(em);
}
