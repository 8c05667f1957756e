/* stream_consumer — see stream_consumer.h. */
#include "stream_consumer.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_backoff.h"
#include "et_macros.h"
#include "log.h"
#include "redis_uv.h"
#include "stream_scripts.h"
#include "stream_upkeep.h"
#include "timeutil.h"

#define CONNECT_TIMEOUT_MS 5000
/* Commands may go unanswered this long, with no reply at all coming back, before the
 * connection counts as dead (a network cut or a frozen server sends no error). Nothing
 * blocks in Redis (the read scripts poll), so every command answers in milliseconds. */
#define REPLY_TIMEOUT_MS 5000
#define READ_COUNT_MAX 128 /* entries per read: bounds a batch's overshoot */
/* Bytes of events one read or claim page may bring: what hiredis buffers at once. The
 * script stops at the first entry that reaches it, so a reply holds at most this plus one
 * event of ET_ENTRY_MAX_BYTES. */
#define READ_BYTES_MAX (4u << 20)
#define READ_BYTES_PER_EVENT 128 /* budget per event of room: a read fits the batch */
#define READ_BYTES_MIN (64u << 10)
/* Reads do not block in Redis (a script cannot), so an empty round waits this long before
 * the next; commands never queue behind a blocked read either. */
#define READ_POLL_MS 20
#define CLAIM_PAGE 100 /* pending entries examined per XPENDING */

static const char *const state_names[] = {
    [CONSUMER_DOWN] = "down",
    [CONSUMER_RESOLVING] = "resolving",
    [CONSUMER_CONNECTING] = "connecting",
    [CONSUMER_SETUP] = "setup",
    [CONSUMER_READING] = "reading",
    [CONSUMER_BACKOFF] = "backoff",
    [CONSUMER_CLOSING] = "closing",
    [CONSUMER_CLOSED] = "closed",
};

const char *consumer_state_name(consumer_state_t state)
{
    return state_names[state];
}

static void set_state(stream_consumer_t *c, consumer_state_t next)
{
    if (c->state == next)
        return;
    log_write(LOG_DEBUG, "redis consumer state", "from", state_names[c->state], "to",
              state_names[next], NULL);
    c->state = next;
}

static void read_next(stream_consumer_t *c);
static void on_poll_timer(uv_timer_t *timer);
static void note_reply(stream_consumer_t *c);
static void arm_waiters(stream_consumer_t *c);
static void on_backoff_timer(uv_timer_t *timer);
static void maybe_finish_close(stream_consumer_t *c);

/* --- connection ------------------------------------------------------------------- */

static void schedule_reconnect(stream_consumer_t *c)
{
    c->ac = NULL;
    c->replies_waited_since_ms = 0;
    c->read_in_flight = c->claim_in_flight = false;
    upkeep_connection_lost(&c->upkeep);
    c->commands_in_flight = 0;
    c->setup_replies = 0;
    arm_waiters(c);
    if (c->state == CONSUMER_CLOSING) {
        maybe_finish_close(c);
        return;
    }
    set_state(c, CONSUMER_BACKOFF);
    uv_timer_start(&c->backoff_timer, on_backoff_timer, c->backoff_ms, 0);
    c->backoff_ms = et_backoff_next(c->backoff_ms, ET_RECONNECT_MAX_MS);
}

/*
 * One failed connection attempt (resolve, connect or set-up): logged at the 1st, 2nd,
 * 4th, 8th… attempt of a streak or when the reason changes (et_retry_log_t), with the
 * attempt's number and the wait before the next. Call before schedule_reconnect.
 */
static void log_attempt_failed(stream_consumer_t *c, const char *what, const char *error)
{
    if (!et_retry_failed(&c->retry_log, error, uv_now(c->loop)))
        return;
    log_field_t fields[] = {log_uint("attempt", c->retry_log.failures), log_str("error", error),
                            log_uint("next_attempt_ms", c->backoff_ms),
                            log_str("host", c->url.host)};
    /* The host name only when there is one to resolve (not a Unix socket). */
    log_write_fields(LOG_WARN, what, fields, c->url.unix_path[0] ? 3 : 4);
}

/* A connection that was up is gone: always logged, and a new streak of attempts begins. */
static void log_connection_lost(stream_consumer_t *c, const char *what, const char *key,
                                const char *reason)
{
    et_retry_succeeded(&c->retry_log);
    log_fields(LOG_WARN, what, log_str(key, reason), log_uint("next_attempt_ms", c->backoff_ms));
}

/* Sends one command; privdata is c unless given. Returns 0 or -ENOTCONN. */
static int send_argv(stream_consumer_t *c, redisCallbackFn *fn, void *priv, int argc,
                     const char **argv, const size_t *lens)
{
    if (c->ac == NULL)
        return -ENOTCONN;
    if (redisAsyncCommandArgv(c->ac, fn, priv ? priv : c, argc, argv, lens) != REDIS_OK)
        return -EIO;
    return 0;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    stream_consumer_t *c = priv;
    redisReply *reply = r;
    if (reply == NULL)
        return; /* disconnected: the disconnect callback reconnects */
    note_reply(c);
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSYGROUP", 9) != 0) {
        bool loading = strncmp(reply->str, "LOADING", 7) == 0;
        /* A restarted Redis answers LOADING while it reads its AOF: it is almost back,
         * so the next attempt comes at the shortest step, not after a grown backoff. */
        if (loading)
            c->backoff_ms = ET_RECONNECT_MIN_MS;
        if (!c->setup_failed) /* once per attempt, not once per pipelined command */
            log_write(loading ? LOG_INFO : LOG_ERROR, "redis set-up failed", "error", reply->str,
                      NULL);
        c->setup_failed = true;
        redisAsyncDisconnect(ac);
        return;
    }
    if (--c->setup_replies > 0)
        return;
    c->backoff_ms = ET_RECONNECT_MIN_MS;
    c->setups_done++;
    if (c->reconnecting) { /* a session set up again: what the metric counts */
        c->stats.reconnects++;
        c->reconnecting = false;
    }
    for (int i = 0; i < c->cfg->stream_count; i++) {
        c->pending_done[i] = false;
        snprintf(c->cursor[i], sizeof c->cursor[i], "-");
        snprintf(c->claim_cursor[i], sizeof c->claim_cursor[i], "-");
    }
    c->pass_stranded = 0;
    c->deferred_len = 0; /* still pending on us: the own-pending scan reads them again */
    set_state(c, CONSUMER_READING);
    log_fields(LOG_INFO, "redis connected; reading own pending entries first",
               log_str("group", c->cfg->group), log_str("consumer", c->cfg->consumer),
               log_uint("failed_attempts", et_retry_succeeded(&c->retry_log)));
    read_next(c);
}

/* XGROUP CREATE answers OK only when the group was missing. After a reconnect that means
 * Redis lost the group (restarted without persistence, or a failover to an empty
 * replica): what it held and nobody had read yet is gone, and only the log can say so. */
static void on_group_create_reply(redisAsyncContext *ac, void *r, void *priv)
{
    stream_consumer_t *c = priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_STATUS && c->setups_done > 0) {
        c->stats.groups_recreated++;
        log_write(LOG_WARN,
                  "the consumer group had vanished (deleted, or Redis restarted without its "
                  "data); created it anew: entries that were not yet read are lost with it",
                  "group", c->cfg->group, NULL);
    }
    on_setup_reply(ac, r, priv);
}

/* SCRIPT LOAD answers the script's SHA1, which every later EVALSHA names. */
static void on_script_loaded(redisAsyncContext *ac, void *r, void *priv, stream_script_t which)
{
    stream_consumer_t *c = priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
        reply->len < sizeof c->script_sha[which])
        memcpy(c->script_sha[which], reply->str, reply->len + 1);
    on_setup_reply(ac, r, priv);
}

static void on_read_script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    on_script_loaded(ac, r, priv, STREAM_SCRIPT_READ);
}

static void on_claim_script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
    on_script_loaded(ac, r, priv, STREAM_SCRIPT_CLAIM);
}

/* AUTH, SELECT, SCRIPT LOAD of both scripts and XGROUP CREATE per stream, pipelined. */
static void send_setup(stream_consumer_t *c)
{
    set_state(c, CONSUMER_SETUP);
    c->setup_replies = 0;
    c->setup_failed = false;
    if (c->url.password[0]) {
        const char *argv[3] = {"AUTH", c->url.username[0] ? c->url.username : c->url.password,
                               c->url.password};
        int argc = c->url.username[0] ? 3 : 2;
        if (send_argv(c, on_setup_reply, NULL, argc, argv, NULL) == 0)
            c->setup_replies++;
    }
    if (c->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->url.db);
        const char *argv[2] = {"SELECT", db};
        if (send_argv(c, on_setup_reply, NULL, 2, argv, NULL) == 0)
            c->setup_replies++;
    }
    redisCallbackFn *const loaded[STREAM_SCRIPT_COUNT] = {on_read_script_loaded,
                                                          on_claim_script_loaded};
    for (int i = 0; i < STREAM_SCRIPT_COUNT; i++) {
        const char *argv[3] = {"SCRIPT", "LOAD", stream_script_text((stream_script_t)i)};
        if (send_argv(c, loaded[i], NULL, 3, argv, NULL) == 0)
            c->setup_replies++;
    }
    for (int i = 0; i < c->cfg->stream_count; i++) {
        const char *argv[6] = {"XGROUP",      "CREATE", c->cfg->streams[i],
                               c->cfg->group, "0",      "MKSTREAM"};
        if (send_argv(c, on_group_create_reply, NULL, 6, argv, NULL) == 0)
            c->setup_replies++;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    stream_consumer_t *c = ac->data;
    if (status != REDIS_OK) {
        log_attempt_failed(c, "redis connect failed", ac->errstr);
        schedule_reconnect(c); /* hiredis frees the context after this callback */
        return;
    }
    if (c->state == CONSUMER_CLOSING) {
        redisAsyncDisconnect(c->ac);
        return;
    }
    c->reconnecting = c->setups_done > 0;
    send_setup(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    stream_consumer_t *c = ac->data;
    if (status != REDIS_OK && c->state != CONSUMER_CLOSING) {
        if (c->state == CONSUMER_READING)
            log_connection_lost(c, "redis connection lost", "error", ac->errstr);
        else /* lost during set-up: that attempt failed */
            log_attempt_failed(c, "redis connection lost during set-up", ac->errstr);
    }
    schedule_reconnect(c);
}

/*
 * Ends the current context from outside any hiredis callback (a timer): hiredis runs the
 * pending callbacks with NULL replies, then on_disconnect if the connection was up; an
 * attempt still connecting gets no callback, so the reconnect is scheduled here.
 */
static void drop_connection(stream_consumer_t *c, const char *reason)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    if (c->state == CONSUMER_READING)
        log_connection_lost(c, "redis connection dropped", "reason", reason);
    else
        log_attempt_failed(c, "redis connection dropped", reason);
    redisAsyncFree(ac);
    if (c->ac == ac)
        schedule_reconnect(c);
}

/* Every reply that arrives proves the connection alive. */
static void note_reply(stream_consumer_t *c)
{
    c->replies_seen++;
    arm_waiters(c);
}

/*
 * The watchdog, from the maintenance tick: a connect that takes too long, or a command
 * left unanswered too long while replies stopped coming, drops the connection.
 */
static void check_connection(stream_consumer_t *c, uint64_t now)
{
    if (c->state == CONSUMER_RESOLVING && c->resolving &&
        now - c->connect_started_ms >= CONNECT_TIMEOUT_MS) {
        uv_cancel((uv_req_t *)&c->resolve_req); /* on_resolved gets UV_EAI_CANCELED */
        return;
    }
    if (c->ac == NULL || c->state == CONSUMER_CLOSING)
        return;
    if (c->state == CONSUMER_CONNECTING) {
        if (now - c->connect_started_ms >= CONNECT_TIMEOUT_MS)
            drop_connection(c, "connect timed out");
        return;
    }
    if (c->ac->replies.head == NULL || c->replies_seen != c->replies_seen_at_check) {
        c->replies_seen_at_check = c->replies_seen;
        c->replies_waited_since_ms = now;
        return;
    }
    if (c->replies_waited_since_ms == 0) {
        c->replies_waited_since_ms = now;
        return;
    }
    if (now - c->replies_waited_since_ms >= REPLY_TIMEOUT_MS)
        drop_connection(c, "no reply from Redis in time");
}

/* Connects to an address (a numeric host, resolved by resolve_redis) or the Unix socket. */
static void connect_redis(stream_consumer_t *c, const char *address)
{
    redisAsyncContext *ac = c->url.unix_path[0] ? redisAsyncConnectUnix(c->url.unix_path)
                                                : redisAsyncConnect(address, c->url.port);
    if (ac == NULL || ac->err) {
        log_attempt_failed(c, "redis connect failed", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    ac->data = c;
    int rc = redis_uv_attach(ac, c->loop);
    if (rc < 0) {
        log_attempt_failed(c, "redis connect failed", strerror(-rc));
        redisAsyncFree(ac);
        schedule_reconnect(c);
        return;
    }
    (void)redisEnableKeepAlive(&ac->c); /* a dead peer is found by TCP too, not only by us */
    c->ac = ac;
    c->connect_started_ms = uv_now(c->loop);
    set_state(c, CONSUMER_CONNECTING);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    stream_consumer_t *c = container_of(req, stream_consumer_t, resolve_req);
    c->resolving = false;
    char address[INET6_ADDRSTRLEN] = "";
    if (status == 0 && res != NULL)
        status = uv_ip_name(res->ai_addr, address, sizeof address);
    uv_freeaddrinfo(res);
    if (c->state == CONSUMER_CLOSING) {
        maybe_finish_close(c);
        return;
    }
    if (status < 0) {
        log_attempt_failed(c, "redis host not resolved", uv_strerror(status));
        schedule_reconnect(c);
        return;
    }
    connect_redis(c, address);
}

/*
 * Every attempt resolves the host name again, off the loop (hiredis would call
 * getaddrinfo on it): a failover that moves the name to a new address is followed, and a
 * slow resolver never stalls the agent.
 */
static void resolve_redis(stream_consumer_t *c)
{
    if (c->url.unix_path[0]) {
        connect_redis(c, NULL);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    set_state(c, CONSUMER_RESOLVING);
    c->connect_started_ms = uv_now(c->loop);
    int rc = uv_getaddrinfo(c->loop, &c->resolve_req, on_resolved, c->url.host, NULL, &hints);
    if (rc < 0) {
        log_attempt_failed(c, "redis host not resolved", uv_strerror(rc));
        schedule_reconnect(c);
        return;
    }
    c->resolving = true;
}

static void on_backoff_timer(uv_timer_t *timer)
{
    stream_consumer_t *c = container_of(timer, stream_consumer_t, backoff_timer);
    if (c->state == CONSUMER_BACKOFF || c->state == CONSUMER_DOWN)
        resolve_redis(c);
}

/* --- dead letters and acks ------------------------------------------------------- */

typedef struct dead_letter {
    stream_consumer_t *c;
    int stream;
    char id[WRITER_ENTRY_ID_MAX];
} dead_letter_t;

/* A command counted in commands_in_flight was answered (NULL: the connection went away,
 * and schedule_reconnect already forgot what was in flight). */
static bool command_answered(stream_consumer_t *c, const redisReply *reply)
{
    if (reply == NULL)
        return false;
    note_reply(c);
    if (c->commands_in_flight > 0)
        c->commands_in_flight--;
    return true;
}

static void on_command_reply(redisAsyncContext *ac, void *r, void *priv)
{
    stream_consumer_t *c = priv;
    redisReply *reply = r;
    if (!command_answered(c, reply))
        return;
    if (reply->type == REDIS_REPLY_ERROR)
        log_write(LOG_WARN, "redis command failed", "error", reply->str, NULL);
    maybe_finish_close(c);
}

static void send_ack(stream_consumer_t *c, int stream, const char *const *ids, size_t n)
{
    if (n == 0)
        return;
    const char **argv = malloc((n + 3) * sizeof *argv);
    if (argv == NULL)
        return; /* unacknowledged entries are redelivered later; the raw key dedups them */
    argv[0] = "XACK";
    argv[1] = c->cfg->streams[stream];
    argv[2] = c->cfg->group;
    memcpy(argv + 3, ids, n * sizeof *ids);
    if (send_argv(c, on_command_reply, NULL, (int)(n + 3), argv, NULL) == 0) {
        c->commands_in_flight++;
        c->stats.entries_acked += n;
    }
    free(argv);
}

static void on_dead_lettered(redisAsyncContext *ac, void *r, void *priv)
{
    dead_letter_t *dl = priv;
    stream_consumer_t *c = dl->c;
    redisReply *reply = r;
    if (command_answered(c, reply)) {
        if (reply->type == REDIS_REPLY_ERROR) {
            log_write(LOG_ERROR, "dead-letter XADD failed; the entry stays pending", "error",
                      reply->str, "id", dl->id, NULL);
        } else {
            const char *ids[1] = {dl->id};
            send_ack(c, dl->stream, ids, 1);
        }
        maybe_finish_close(c);
    }
    free(dl);
}

/*
 * Moves one entry to "<stream>:dead" with the reason; acknowledges it once stored. The
 * dead-letter stream is capped twice: about EXECTIME_DEAD_LETTER_MAXLEN entries
 * (MAXLEN ~), each keeping at most EXECTIME_DEAD_LETTER_MAX_BYTES of the event, with the
 * field `truncated` holding the full size when it was cut.
 */
static void dead_letter(stream_consumer_t *c, int stream, const char *id, const char *event,
                        size_t event_len, const char *reason, const char *reason_class)
{
    char key[300], maxlen[24], full_size[24] = "";
    snprintf(key, sizeof key, "%s:dead", c->cfg->streams[stream]);
    snprintf(maxlen, sizeof maxlen, "%d", c->cfg->dead_letter_maxlen);
    dead_letter_t *dl = calloc(1, sizeof *dl);
    if (dl == NULL)
        return;
    dl->c = c;
    dl->stream = stream;
    snprintf(dl->id, sizeof dl->id, "%s", id);
    size_t kept = event ? event_len : 0;
    bool cut = kept > (size_t)c->cfg->dead_letter_max_bytes;
    if (cut) {
        kept = (size_t)c->cfg->dead_letter_max_bytes;
        snprintf(full_size, sizeof full_size, "%zu", event_len);
    }
    const char *argv[14] = {"XADD", key,     "MAXLEN",           "~",      maxlen,
                            "*",    "event", event ? event : "", "reason", reason,
                            "id",   id,      "truncated",        full_size};
    size_t lens[14];
    for (int i = 0; i < 14; i++)
        lens[i] = i == 7 ? kept : i < 12 || cut ? strlen(argv[i]) : 0;
    if (send_argv(c, on_dead_lettered, dl, cut ? 14 : 12, argv, lens) < 0) {
        free(dl);
        return;
    }
    c->commands_in_flight++;
    c->stats.dead_lettered++;
    log_write(LOG_WARN, "entry dead-lettered", "stream", c->cfg->streams[stream], "id", id,
              "reason", reason, NULL);
    if (c->on_dead)
        c->on_dead(c, reason_class, c->arg);
}

void consumer_ack(stream_consumer_t *c, const writer_ack_t *acks, size_t n)
{
    /* One XACK per stream with all of its ids. */
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (ids == NULL)
        return;
    for (int s = 0; s < c->cfg->stream_count; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (acks[i].stream == s)
                ids[k++] = acks[i].id;
        send_ack(c, s, ids, k);
    }
    free(ids);
}

/* A database refusal being dead-lettered: the entry's bytes are fetched again. */
typedef struct reject {
    stream_consumer_t *c;
    int stream;
    char id[WRITER_ENTRY_ID_MAX];
    char reason[512];
} reject_t;

static const redisReply *find_event_field(const redisReply *fields, const char *name);

static void on_rejected_entry(redisAsyncContext *ac, void *r, void *priv)
{
    reject_t *rj = priv;
    stream_consumer_t *c = rj->c;
    redisReply *reply = r;
    if (command_answered(c, reply)) {
        if (reply->type == REDIS_REPLY_ERROR) {
            log_write(LOG_ERROR, "cannot read a refused entry back; it stays pending", "id", rj->id,
                      "error", reply->str, NULL);
        } else {
            /* [[id, fields]], or empty when the entry was deleted meanwhile. */
            const redisReply *event = NULL;
            if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
                reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2)
                event = find_event_field(reply->element[0]->element[1], "event");
            bool bytes = event != NULL && event->type == REDIS_REPLY_STRING;
            dead_letter(c, rj->stream, rj->id, bytes ? event->str : NULL, bytes ? event->len : 0,
                        rj->reason, "rejected");
        }
        maybe_finish_close(c);
    }
    free(rj);
}

void consumer_reject(stream_consumer_t *c, int stream, const char *id, const char *reason)
{
    reject_t *rj = calloc(1, sizeof *rj);
    if (rj == NULL)
        return; /* stays pending: redelivered, refused and isolated again */
    rj->c = c;
    rj->stream = stream;
    snprintf(rj->id, sizeof rj->id, "%s", id);
    snprintf(rj->reason, sizeof rj->reason, "refused by the database: %s", reason);
    const char *argv[4] = {"XRANGE", c->cfg->streams[stream], id, id};
    if (send_argv(c, on_rejected_entry, rj, 4, argv, NULL) < 0) {
        log_write(LOG_WARN, "Redis is away; a refused entry stays pending", "id", id, NULL);
        free(rj);
        return;
    }
    c->commands_in_flight++;
}

/* --- entries ------------------------------------------------------------------------ */

/* The value of the field `name` in an entry's [field, value, ...], or NULL. */
static const redisReply *find_event_field(const redisReply *fields, const char *name)
{
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t len = strlen(name);
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == len && memcmp(k->str, name, len) == 0)
            return fields->element[i + 1];
    }
    return NULL;
}

/* The own-pending scan finds what this consumer holds but has not taken: after this
 * read, before new entries. */
static void rescan_own_pending(stream_consumer_t *c, int stream)
{
    c->pending_done[stream] = false;
    snprintf(c->cursor[stream], sizeof c->cursor[stream], "-");
}

/* An entry pending on us that the writer has no room for (or that the read left without
 * its event): fetched again once the writer has room (fetch_deferred), its delivery count
 * kept. Past the deferred list's bound, the own-pending scan finds it. */
static void defer_entry(stream_consumer_t *c, int stream, const char *id, long long deliveries)
{
    if (c->deferred_len == CONSUMER_DEFERRED_MAX) {
        rescan_own_pending(c, stream);
        return;
    }
    consumer_deferred_t *d = &c->deferred[c->deferred_len++];
    d->stream = (uint8_t)stream;
    snprintf(d->id, sizeof d->id, "%s", id);
    d->deliveries = deliveries > 0 ? deliveries : 1; /* XREADGROUP counted one */
}

/* One stream entry [id, fields]: decode, then batch or dead-letter it. */
static void handle_entry(stream_consumer_t *c, int stream, const redisReply *entry,
                         long long deliveries)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING ||
        entry->element[0]->len >= WRITER_ENTRY_ID_MAX)
        return;
    const char *id = entry->element[0]->str;
    const redisReply *fields = entry->element[1];
    c->stats.entries_read++;
    if (fields->type == REDIS_REPLY_NIL) {
        /* Deleted from the stream while pending: nothing to store, just forget it. */
        const char *ids[1] = {id};
        send_ack(c, stream, ids, 1);
        return;
    }
    if (find_event_field(fields, STREAM_DEFERRED_FIELD) != NULL) {
        defer_entry(c, stream, id, deliveries);
        return;
    }
    const redisReply *event = find_event_field(fields, "event");
    const redisReply *oversize = find_event_field(fields, STREAM_OVERSIZE_FIELD);
    char reason[256];
    if (deliveries > c->cfg->max_deliveries) {
        snprintf(reason, sizeof reason, "delivered %lld times without being committed", deliveries);
        dead_letter(c, stream, id, event ? event->str : NULL, event ? event->len : 0, reason,
                    "deliveries");
        return;
    }
    if (oversize != NULL && oversize->type == REDIS_REPLY_STRING) {
        snprintf(reason, sizeof reason, "event is %s bytes, more than the limit of %d",
                 oversize->str, ET_ENTRY_MAX_BYTES);
        dead_letter(c, stream, id, NULL, 0, reason, "too_large");
        return;
    }
    if (event == NULL || event->type != REDIS_REPLY_STRING) {
        dead_letter(c, stream, id, NULL, 0, "entry has no string field \"event\"", "no_event");
        return;
    }
    if (event->len > ET_ENTRY_MAX_BYTES) {
        snprintf(reason, sizeof reason, "event is %zu bytes, more than the limit of %d", event->len,
                 ET_ENTRY_MAX_BYTES);
        dead_letter(c, stream, id, NULL, 0, reason, "too_large");
        return;
    }
    size_t count = 0;
    int64_t now = et_now_us();
    int64_t not_before = et_retention_start(now, c->cfg->raw_retention_days);
    if (et_event_decode(event->str, event->len, now, not_before, c->scratch, ET_ENTRY_MAX_EVENTS,
                        &count, reason, sizeof reason) < 0) {
        dead_letter(c, stream, id, event->str, event->len, reason, "invalid");
        return;
    }
    int rc = writer_add(c->writer, (uint8_t)stream, id, c->scratch, count);
    if (rc == -ENOBUFS) {
        defer_entry(c, stream, id, deliveries);
    } else if (rc < 0) {
        rescan_own_pending(c, stream);
        log_write(LOG_WARN, "no room for an entry; it is read again from the pending list", "id",
                  id, "error", strerror(-rc), NULL);
    }
}

/* --- reading ------------------------------------------------------------------------ */

/* Bytes a read or claim page may bring, for `room` events left in the batch. */
static size_t read_budget(size_t room)
{
    size_t budget = room * READ_BYTES_PER_EVENT;
    return budget < READ_BYTES_MIN   ? READ_BYTES_MIN
           : budget > READ_BYTES_MAX ? READ_BYTES_MAX
                                     : budget;
}

/* A script call failed: a vanished group is created again, anything else reconnects
 * (which loads the scripts again, should Redis have lost them). */
static void script_failed(stream_consumer_t *c, redisAsyncContext *ac, const char *what,
                          const char *error)
{
    if (strncmp(error, "NOGROUP", 7) == 0) {
        send_setup(c); /* on_group_create_reply says that it was lost */
        return;
    }
    log_write(LOG_ERROR, what, "error", error, NULL);
    redisAsyncDisconnect(ac);
}

static void on_read(redisAsyncContext *ac, void *r, void *priv)
{
    stream_consumer_t *c = priv;
    redisReply *reply = r;
    c->read_in_flight = false;
    if (reply == NULL)
        return;
    note_reply(c);
    if (reply->type == REDIS_REPLY_ERROR) {
        script_failed(c, ac, "reading new entries failed", reply->str);
        return;
    }
    int stream = c->read_stream;
    size_t got = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;
    for (size_t k = 0; k < got; k++)
        handle_entry(c, stream, reply->element[k], 0);
    c->read_turn++; /* the streams take turns */
    c->idle_streams = got > 0 ? 0 : c->idle_streams + 1;
    if (c->idle_streams >= (unsigned)c->cfg->stream_count) {
        /* Every stream was empty: look again a little later. */
        c->idle_streams = 0;
        uv_timer_start(&c->poll_timer, on_poll_timer, READ_POLL_MS, 0);
        return;
    }
    read_next(c);
}

static void on_poll_timer(uv_timer_t *timer)
{
    read_next(container_of(timer, stream_consumer_t, poll_timer));
}

/* New entries of one stream, bounded by the batch's room in entries and in bytes. */
static void read_new(stream_consumer_t *c, size_t room)
{
    int stream = (int)(c->read_turn % (unsigned)c->cfg->stream_count);
    char count[24], budget[24], limit[24];
    snprintf(count, sizeof count, "%zu", room < READ_COUNT_MAX ? room : READ_COUNT_MAX);
    snprintf(budget, sizeof budget, "%zu", read_budget(room));
    snprintf(limit, sizeof limit, "%d", ET_ENTRY_MAX_BYTES);
    const char *argv[9] = {"EVALSHA",     c->script_sha[STREAM_SCRIPT_READ],
                           "1",           c->cfg->streams[stream],
                           c->cfg->group, c->cfg->consumer,
                           count,         budget,
                           limit};
    if (send_argv(c, on_read, NULL, 9, argv, NULL) == 0) {
        c->read_in_flight = true;
        c->read_stream = stream;
    }
}

static void read_own_pending(stream_consumer_t *c, int stream);

/* A take-over pass is under way: a page is out, or the pass stopped mid-way for room. */
static bool take_over_active(const stream_consumer_t *c)
{
    if (c->claim_in_flight)
        return true;
    for (int s = 0; s < c->cfg->stream_count; s++)
        if (strcmp(c->claim_cursor[s], "-") != 0)
            return true;
    return false;
}
static bool fetch_deferred(stream_consumer_t *c);
static void claim_round(stream_consumer_t *c);

/* Issues the next read unless one is out, the writer is full, or we are stopping: first
 * this consumer's own pending entries, stream by stream, then new entries of all. */
static void read_next(stream_consumer_t *c)
{
    if (c->state != CONSUMER_READING || c->read_in_flight || c->stopping)
        return;
    size_t room = writer_room(c->writer);
    if (room == 0)
        return; /* consumer_resume restarts reading */
    if (fetch_deferred(c))
        return;
    for (int s = 0; s < c->cfg->stream_count; s++) {
        if (!c->pending_done[s]) {
            read_own_pending(c, s);
            return;
        }
    }
    /* Stranded entries are older than anything new: while a take-over pass pages through
     * them, new entries wait. */
    if (take_over_active(c))
        return; /* claim_done reads on once the pass is over */
    if (uv_is_active((uv_handle_t *)&c->poll_timer))
        return; /* an empty round: on_poll_timer reads again */
    read_new(c, room);
}

void consumer_resume(stream_consumer_t *c)
{
    read_next(c);
    /* A take-over pass that stopped for room goes on where it was. */
    int stream = (int)(c->claim_rounds % (unsigned)c->cfg->stream_count);
    if (strcmp(c->claim_cursor[stream], "-") != 0)
        claim_round(c);
}

/* --- claims ------------------------------------------------------------------------- */

/*
 * Taking over pending entries goes through XPENDING, which tells how often each entry
 * was delivered, then XCLAIM, which returns the entries. Three uses:
 *  - TAKE_OVER: entries idle too long on other consumers. A pass pages through the
 *    group's idle entries from a cursor and goes on at once while the writer has room, so
 *    a dead consumer's backlog flows at ingest speed; XCLAIM counts a delivery.
 *  - OWN_FIRST: this consumer's own pending entries when the process starts (a restart
 *    under a fixed name): they may have crashed the last process, so XCLAIM counts a
 *    delivery, which bounds a crash loop by max_deliveries.
 *  - OWN_AGAIN: own entries after a reconnect of this process, and entries the writer
 *    had no room for (deferred). Neither reached the writer a new time, so RETRYCOUNT
 *    keeps their delivery count as it was: a flapping Redis dead-letters nothing.
 * An entry delivered more than max_deliveries times is dead-lettered.
 */
typedef enum claim_mode {
    CLAIM_TAKE_OVER,
    CLAIM_OWN_FIRST,
    CLAIM_OWN_AGAIN,
} claim_mode_t;

typedef struct claim {
    stream_consumer_t *c;
    int stream;
    claim_mode_t mode;
    bool own_scan;                           /* part of the own-pending scan after a (re)connect */
    bool last_page;                          /* XPENDING returned less than a page */
    bool deferred;                           /* re-fetching entries the writer had no room for */
    char page_last[WRITER_ENTRY_ID_MAX];     /* the last id XPENDING listed */
    char stopped_after[WRITER_ENTRY_ID_MAX]; /* the claim stopped for its byte budget */
    size_t n;
    char (*ids)[WRITER_ENTRY_ID_MAX];
    long long *deliveries; /* as XPENDING reported them, before this claim */
} claim_t;

static void claim_free(claim_t *cl)
{
    free(cl->ids);
    free(cl->deliveries);
    free(cl);
}

/* Sets a scan's cursor after the id given (nothing when the id is empty). */
static void cursor_after(char *cursor, size_t cap, const char *id)
{
    if (id[0])
        snprintf(cursor, cap, "(%s", id);
}

/* Entries of a deferred re-fetch after the point where the claim stopped go back to the
 * deferred list, to be fetched with the next room. */
static void requeue_deferred(claim_t *cl)
{
    stream_consumer_t *c = cl->c;
    bool after = false;
    for (size_t i = 0; i < cl->n && c->deferred_len < CONSUMER_DEFERRED_MAX; i++) {
        if (after) {
            consumer_deferred_t *d = &c->deferred[c->deferred_len++];
            d->stream = (uint8_t)cl->stream;
            snprintf(d->id, sizeof d->id, "%s", cl->ids[i]);
            d->deliveries = cl->deliveries[i];
        }
        after = after || strcmp(cl->ids[i], cl->stopped_after) == 0;
    }
}

/*
 * The claim is over: move its scan's cursor (past the page, or only past what the byte
 * budget let through), clear the in-flight flag it held, and go on.
 */
static void claim_done(claim_t *cl)
{
    stream_consumer_t *c = cl->c;
    bool stopped = cl->stopped_after[0] != '\0';
    const char *next = stopped ? cl->stopped_after : cl->page_last;
    bool last_page = cl->last_page && !stopped;
    if (cl->deferred) {
        if (stopped)
            requeue_deferred(cl);
        c->read_in_flight = false;
        claim_free(cl);
        read_next(c);
    } else if (cl->own_scan) {
        cursor_after(c->cursor[cl->stream], sizeof c->cursor[cl->stream], next);
        if (last_page)
            c->pending_done[cl->stream] = true;
        c->read_in_flight = false;
        claim_free(cl);
        read_next(c);
    } else {
        char *cursor = c->claim_cursor[cl->stream];
        cursor_after(cursor, sizeof c->claim_cursor[cl->stream], next);
        c->pass_stranded += cl->n;
        if (last_page) {
            c->stats.stranded = c->pass_stranded; /* idle on others, found in the pass */
            c->pass_stranded = 0;
            snprintf(cursor, sizeof c->claim_cursor[cl->stream], "-");
            c->claim_rounds++; /* the next pass looks at the next stream */
        }
        c->claim_in_flight = false;
        claim_free(cl);
        if (!last_page)
            claim_round(c); /* the next page at once, while the writer has room */
        else
            read_next(c); /* new entries again, now that the pass is over */
    }
    maybe_finish_close(c);
}

static claim_t *claim_new(stream_consumer_t *c, int stream, claim_mode_t mode, size_t cap)
{
    claim_t *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return NULL;
    cl->c = c;
    cl->stream = stream;
    cl->mode = mode;
    cl->ids = calloc(cap ? cap : 1, sizeof *cl->ids);
    cl->deliveries = calloc(cap ? cap : 1, sizeof *cl->deliveries);
    if (!cl->ids || !cl->deliveries) {
        claim_free(cl);
        return NULL;
    }
    return cl;
}

static void on_claimed(redisAsyncContext *ac, void *r, void *priv)
{
    claim_t *cl = priv;
    stream_consumer_t *c = cl->c;
    redisReply *reply = r;
    if (reply == NULL) {
        claim_free(cl); /* disconnected: schedule_reconnect reset the flags */
        return;
    }
    note_reply(c);
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Nothing was claimed: the scans start over after the reconnect or set-up. */
        bool own_read = cl->own_scan || cl->deferred;
        claim_free(cl);
        if (own_read)
            c->read_in_flight = false;
        else
            c->claim_in_flight = false;
        script_failed(c, ac, "claiming entries failed", reply->str);
        return;
    }
    /* [entries, the id after which the byte budget stopped it, or ""] */
    const redisReply *entries = NULL;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        entries = reply->element[0];
        const redisReply *stopped = reply->element[1];
        if (stopped->type == REDIS_REPLY_STRING && stopped->len < sizeof cl->stopped_after)
            memcpy(cl->stopped_after, stopped->str, stopped->len + 1);
    }
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements;
         i++) {
        const redisReply *e = entries->element[i];
        long long deliveries = 0;
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[0]->type == REDIS_REPLY_STRING)
            for (size_t k = 0; k < cl->n; k++)
                if (strcmp(cl->ids[k], e->element[0]->str) == 0)
                    deliveries = cl->deliveries[k] + (cl->mode != CLAIM_OWN_AGAIN);
        if (cl->mode == CLAIM_TAKE_OVER)
            c->stats.entries_claimed++;
        handle_entry(c, cl->stream, e, deliveries);
    }
    claim_done(cl);
}

/*
 * Claims the claim's ids through the claim script: the min idle time guards a take-over
 * against an owner that came back; OWN_AGAIN gives each id its delivery count back
 * (RETRYCOUNT), the other modes let XCLAIM count one more. Ends the claim at once when
 * there is nothing to claim or Redis is away.
 */
static void claim_send(claim_t *cl)
{
    stream_consumer_t *c = cl->c;
    const char **argv = cl->n ? calloc(9 + 2 * cl->n, sizeof *argv) : NULL;
    char(*retry)[24] = cl->n ? calloc(cl->n, sizeof *retry) : NULL;
    int rc = -ENOMEM;
    if (argv && retry) {
        char idle[24], budget[24], limit[24];
        snprintf(idle, sizeof idle, "%d", cl->mode == CLAIM_TAKE_OVER ? c->cfg->claim_idle_ms : 0);
        snprintf(budget, sizeof budget, "%zu", read_budget(writer_room(c->writer)));
        snprintf(limit, sizeof limit, "%d", ET_ENTRY_MAX_BYTES);
        int argc = 0;
        argv[argc++] = "EVALSHA";
        argv[argc++] = c->script_sha[STREAM_SCRIPT_CLAIM];
        argv[argc++] = "1";
        argv[argc++] = c->cfg->streams[cl->stream];
        argv[argc++] = c->cfg->group;
        argv[argc++] = c->cfg->consumer;
        argv[argc++] = idle;
        argv[argc++] = budget;
        argv[argc++] = limit;
        for (size_t i = 0; i < cl->n; i++) {
            if (cl->mode == CLAIM_OWN_AGAIN)
                snprintf(retry[i], sizeof retry[i], "%lld", cl->deliveries[i]);
            argv[argc++] = cl->ids[i];
            argv[argc++] = retry[i];
        }
        rc = send_argv(c, on_claimed, cl, argc, argv, NULL);
    }
    free(argv);
    free(retry);
    if (rc < 0)
        claim_done(cl); /* nothing sent: the entries stay pending where they are */
}

static void on_pending(redisAsyncContext *ac, void *r, void *priv)
{
    claim_t *cl = priv;
    stream_consumer_t *c = cl->c;
    redisReply *reply = r;
    if (reply == NULL) {
        claim_free(cl);
        return;
    }
    note_reply(c);
    if (reply->type != REDIS_REPLY_ARRAY || c->stopping) {
        if (reply->type == REDIS_REPLY_ERROR)
            log_write(LOG_WARN, "XPENDING failed", "error", reply->str, NULL);
        cl->last_page = true;
        claim_done(cl);
        return;
    }
    cl->last_page = reply->elements < CLAIM_PAGE;
    for (size_t i = 0; i < reply->elements && cl->n < CLAIM_PAGE; i++) {
        const redisReply *p = reply->element[i];
        /* [id, consumer, idle ms, deliveries] */
        if (p->type != REDIS_REPLY_ARRAY || p->elements != 4 ||
            p->element[0]->type != REDIS_REPLY_STRING ||
            p->element[0]->len >= WRITER_ENTRY_ID_MAX ||
            p->element[1]->type != REDIS_REPLY_STRING || p->element[3]->type != REDIS_REPLY_INTEGER)
            continue;
        /* The next page starts after the last id seen, taken or not, so entries of our
         * own at the head of the list never hide other consumers' entries behind them. */
        snprintf(cl->page_last, sizeof cl->page_last, "%s", p->element[0]->str);
        bool mine = strcmp(p->element[1]->str, c->cfg->consumer) == 0;
        if (cl->own_scan != mine)
            continue;
        /* After a reconnect most of our own entries are still in the writer's batches:
         * only those it does not hold (an acknowledgement lost with the connection) are
         * taken up again, so a held set does not take the batch's room twice. */
        if (mine && writer_holds(c->writer, (uint8_t)cl->stream, p->element[0]->str))
            continue;
        snprintf(cl->ids[cl->n], sizeof cl->ids[cl->n], "%s", p->element[0]->str);
        cl->deliveries[cl->n] = p->element[3]->integer;
        cl->n++;
    }
    if (log_enabled(LOG_DEBUG)) {
        log_fields(LOG_DEBUG, "pending page", log_str("stream", c->cfg->streams[cl->stream]),
                   log_bool("own", cl->own_scan), log_uint("taken", cl->n),
                   log_str("last", cl->page_last), log_bool("last_page", cl->last_page));
    }
    claim_send(cl);
}

/* Sends XPENDING for one page of a stream's pending entries, from the scan's cursor. */
static int send_pending_query(stream_consumer_t *c, int stream, bool own)
{
    /* The first session of the process counts a delivery (the last process may have died
     * of these entries); later ones follow a reconnect and keep the count. */
    claim_mode_t mode = !own                 ? CLAIM_TAKE_OVER
                        : c->setups_done > 1 ? CLAIM_OWN_AGAIN
                                             : CLAIM_OWN_FIRST;
    claim_t *cl = claim_new(c, stream, mode, CLAIM_PAGE);
    if (cl == NULL)
        return -ENOMEM;
    cl->own_scan = own;
    char idle[24], page[16];
    snprintf(idle, sizeof idle, "%d", c->cfg->claim_idle_ms);
    snprintf(page, sizeof page, "%d", CLAIM_PAGE);
    const char *argv[10] = {"XPENDING", c->cfg->streams[stream], c->cfg->group};
    int argc = 3;
    if (own) {
        argv[argc++] = c->cursor[stream];
        argv[argc++] = "+";
        argv[argc++] = page;
        argv[argc++] = c->cfg->consumer;
    } else {
        argv[argc++] = "IDLE";
        argv[argc++] = idle;
        argv[argc++] = c->claim_cursor[stream];
        argv[argc++] = "+";
        argv[argc++] = page;
    }
    if (send_argv(c, on_pending, cl, argc, argv, NULL) < 0) {
        claim_free(cl);
        return -ENOTCONN;
    }
    return 0;
}

static void read_own_pending(stream_consumer_t *c, int stream)
{
    if (send_pending_query(c, stream, true) == 0)
        c->read_in_flight = true;
}

/*
 * Fetches again the entries the writer had no room for, one stream at a time, keeping
 * their delivery counts. Returns true when a fetch went out.
 */
static bool fetch_deferred(stream_consumer_t *c)
{
    if (c->deferred_len == 0)
        return false;
    int stream = c->deferred[0].stream;
    claim_t *cl = claim_new(c, stream, CLAIM_OWN_AGAIN, c->deferred_len);
    if (cl == NULL)
        return false;
    cl->deferred = true;
    size_t kept = 0;
    for (size_t i = 0; i < c->deferred_len; i++) {
        if (c->deferred[i].stream != stream) {
            c->deferred[kept++] = c->deferred[i];
            continue;
        }
        snprintf(cl->ids[cl->n], sizeof cl->ids[cl->n], "%s", c->deferred[i].id);
        cl->deliveries[cl->n++] = c->deferred[i].deliveries;
    }
    c->deferred_len = kept;
    c->read_in_flight = true;
    claim_send(cl);
    return true;
}

/* Looks for entries idle too long on other consumers: one page per call, the pass going
 * on from the stream's cursor; passes take the streams in turn. */
static void claim_round(stream_consumer_t *c)
{
    if (c->claim_in_flight || c->stopping || c->state != CONSUMER_READING ||
        writer_room(c->writer) == 0)
        return;
    int stream = (int)(c->claim_rounds % (unsigned)c->cfg->stream_count);
    if (send_pending_query(c, stream, false) == 0)
        c->claim_in_flight = true;
}

static void on_maint_timer(uv_timer_t *timer)
{
    stream_consumer_t *c = container_of(timer, stream_consumer_t, maint_timer);
    uint64_t now = uv_now(c->loop);
    check_connection(c, now);
    if (c->state != CONSUMER_READING)
        return;
    if (now >= c->next_claim_ms) {
        c->next_claim_ms = now + (uint64_t)c->cfg->claim_idle_ms / 4;
        claim_round(c);
    }
    if (!c->stopping)
        upkeep_tick(&c->upkeep, c->ac, now);
}

/* The upkeep's replies are progress for the watchdog like any other. */
static void on_upkeep_reply(void *arg)
{
    note_reply(arg);
}

/* --- life cycle ----------------------------------------------------------------------- */

int consumer_init(stream_consumer_t *c, uv_loop_t *loop, const config_t *cfg,
                  batch_writer_t *writer, consumer_dead_fn on_dead, void *arg)
{
    memset(c, 0, sizeof *c);
    char why[256];
    if (et_redis_url_parse(cfg->redis_url, &c->url, why, sizeof why) < 0)
        return -EINVAL;
    c->scratch = calloc(ET_ENTRY_MAX_EVENTS, sizeof *c->scratch);
    if (c->scratch == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->cfg = cfg;
    c->writer = writer;
    c->on_dead = on_dead;
    c->arg = arg;
    c->backoff_ms = ET_RECONNECT_MIN_MS;
    upkeep_init(&c->upkeep, cfg, on_upkeep_reply, c, uv_now(loop));
    int rc;
    if ((rc = uv_timer_init(loop, &c->backoff_timer)) < 0 ||
        (rc = uv_timer_init(loop, &c->maint_timer)) < 0 ||
        (rc = uv_timer_init(loop, &c->poll_timer)) < 0 ||
        (rc = uv_timer_init(loop, &c->waiter_timer)) < 0)
        return rc;
    return 0;
}

void consumer_start(stream_consumer_t *c)
{
    c->next_claim_ms = uv_now(c->loop) + 1000;
    uv_timer_start(&c->maint_timer, on_maint_timer, 1000, 1000);
    resolve_redis(c);
}

/* No read, claim or command is waiting for Redis. */
static bool consumer_quiet(const stream_consumer_t *c)
{
    return !c->read_in_flight && !c->claim_in_flight && c->commands_in_flight == 0 &&
           upkeep_quiet(&c->upkeep);
}

/* What the owner waits for can change only with a reply or a lost connection; the check
 * runs on the next loop turn, once the reply's handling is over. */
static void on_waiter_timer(uv_timer_t *timer)
{
    stream_consumer_t *c = container_of(timer, stream_consumer_t, waiter_timer);
    if (c->on_reads_stopped && !c->read_in_flight && !c->claim_in_flight) {
        consumer_event_fn fn = c->on_reads_stopped;
        c->on_reads_stopped = NULL;
        fn(c);
    }
    if (c->on_quiet && consumer_quiet(c)) {
        consumer_event_fn fn = c->on_quiet;
        c->on_quiet = NULL;
        fn(c);
    }
}

static void arm_waiters(stream_consumer_t *c)
{
    if ((c->on_reads_stopped || c->on_quiet) && c->state != CONSUMER_CLOSING &&
        c->state != CONSUMER_CLOSED)
        uv_timer_start(&c->waiter_timer, on_waiter_timer, 0, 0);
}

void consumer_stop_reading(stream_consumer_t *c, consumer_event_fn on_stopped)
{
    c->stopping = true;
    c->on_reads_stopped = on_stopped;
    arm_waiters(c);
}

void consumer_when_quiet(stream_consumer_t *c, consumer_event_fn on_quiet)
{
    c->on_quiet = on_quiet;
    arm_waiters(c);
}

void consumer_stats_get(const stream_consumer_t *c, consumer_stats_t *out)
{
    *out = c->stats;
    out->lag = c->upkeep.lag;
    out->consumers_removed = c->upkeep.consumers_removed;
}

bool consumer_connected(const stream_consumer_t *c)
{
    return c->state == CONSUMER_READING;
}

static void on_timer_closed(uv_handle_t *handle)
{
    stream_consumer_t *c = handle->data;
    c->closing_handles--;
    maybe_finish_close(c);
}

static void maybe_finish_close(stream_consumer_t *c)
{
    if (c->state != CONSUMER_CLOSING || c->ac != NULL || c->resolving || c->closing_handles > 0)
        return;
    set_state(c, CONSUMER_CLOSED);
    free(c->scratch);
    c->scratch = NULL;
    if (c->on_closed)
        c->on_closed(c);
}

void consumer_close(stream_consumer_t *c, consumer_closed_fn on_closed)
{
    if (c->state == CONSUMER_CLOSING || c->state == CONSUMER_CLOSED)
        return;
    c->stopping = true;
    c->on_closed = on_closed;
    bool connected = c->ac != NULL;
    set_state(c, CONSUMER_CLOSING);
    c->closing_handles = 4;
    c->backoff_timer.data = c;
    c->maint_timer.data = c;
    c->poll_timer.data = c;
    c->waiter_timer.data = c;
    c->on_reads_stopped = c->on_quiet = NULL;
    uv_close((uv_handle_t *)&c->waiter_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->poll_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->backoff_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->maint_timer, on_timer_closed);
    if (connected)
        redisAsyncDisconnect(c->ac); /* waits for pending replies, then on_disconnect */
}
