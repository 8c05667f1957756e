/* stream_upkeep — see stream_upkeep.h. */
#include "stream_upkeep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define TRIM_INTERVAL_MS 10000
#define EXPIRE_INTERVAL_MS 30000 /* idle consumers are looked for at least this often */
#define CONSUMER_NAME_MAX 128    /* as config_t.consumer */

static int send_argv(redisAsyncContext *ac, redisCallbackFn *fn, void *priv, int argc,
                     const char **argv)
{
    return redisAsyncCommandArgv(ac, fn, priv, argc, argv, NULL) == REDIS_OK ? 0 : -1;
}

/* The value of `key` in a reply of alternating names and values, or NULL. */
static const redisReply *map_get(const redisReply *flat, const char *key)
{
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING && strcmp(flat->element[i]->str, key) == 0)
            return flat->element[i + 1];
    return NULL;
}

/* --- trimming ----------------------------------------------------------------------- */

typedef struct stream_id {
    uint64_t ms, seq;
} stream_id_t;

static bool parse_id(const char *s, stream_id_t *out)
{
    char *end;
    out->ms = strtoull(s, &end, 10);
    if (*end != '-')
        return false;
    out->seq = strtoull(end + 1, &end, 10);
    return *end == '\0';
}

static int id_cmp(stream_id_t a, stream_id_t b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return (a.seq > b.seq) - (a.seq < b.seq);
}

typedef struct trim {
    stream_upkeep_t *u;
    int stream;
    unsigned waiting; /* XPENDING summaries still unanswered */
    bool unknown;     /* some group's position could not be read: do not trim */
    stream_id_t safe; /* entries below this are acknowledged by every group */
} trim_t;

static void on_trimmed(redisAsyncContext *ac, void *r, void *priv)
{
    stream_upkeep_t *u = priv;
    redisReply *reply = r;
    if (reply == NULL)
        return;
    u->on_reply(u->arg);
    if (u->commands_in_flight > 0)
        u->commands_in_flight--;
    if (reply->type == REDIS_REPLY_ERROR)
        log_write(LOG_WARN, "XTRIM failed", "error", reply->str, NULL);
}

/* The sum over the streams of per-stream values, or -1 while one is still unknown. */
static double sum_known(const int64_t *values, int n)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (values[i] < 0)
            return -1;
        total += values[i];
    }
    return (double)total;
}

static void publish_gauges(stream_upkeep_t *u)
{
    metrics_gauge_set(u->pending_gauge, sum_known(u->pending, u->cfg->stream_count));
    metrics_gauge_set(u->dead_letters_gauge, sum_known(u->dead_letters, u->cfg->stream_count));
}

typedef struct dead_length {
    stream_upkeep_t *u;
    int stream;
} dead_length_t;

static void on_dead_length(redisAsyncContext *ac, void *r, void *priv)
{
    dead_length_t *d = priv;
    stream_upkeep_t *u = d->u;
    redisReply *reply = r;
    if (reply != NULL) {
        u->on_reply(u->arg);
        if (u->commands_in_flight > 0)
            u->commands_in_flight--;
        if (reply->type == REDIS_REPLY_INTEGER) {
            u->dead_letters[d->stream] = reply->integer;
            publish_gauges(u);
        }
    }
    free(d);
}

/* XLEN of the stream's dead letters, read with each trim round of that stream. */
static void read_dead_length(stream_upkeep_t *u, redisAsyncContext *ac, int stream)
{
    dead_length_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return;
    d->u = u;
    d->stream = stream;
    char key[300];
    snprintf(key, sizeof key, "%s:dead", u->cfg->streams[stream]);
    const char *argv[2] = {"XLEN", key};
    if (send_argv(ac, on_dead_length, d, 2, argv) < 0) {
        free(d);
        return;
    }
    u->commands_in_flight++;
}

static void trim_finish(trim_t *t, redisAsyncContext *ac)
{
    stream_upkeep_t *u = t->u;
    if (!t->unknown && (t->safe.ms || t->safe.seq)) {
        char minid[48];
        snprintf(minid, sizeof minid, "%" PRIu64 "-%" PRIu64, t->safe.ms, t->safe.seq);
        const char *argv[4] = {"XTRIM", u->cfg->streams[t->stream], "MINID", minid};
        if (send_argv(ac, on_trimmed, u, 4, argv) == 0)
            u->commands_in_flight++;
    }
    u->trim_in_flight = false;
    free(t);
}

static void lower_safe(trim_t *t, stream_id_t id)
{
    if (id_cmp(id, t->safe) < 0)
        t->safe = id;
}

static void on_group_pending(redisAsyncContext *ac, void *r, void *priv)
{
    trim_t *t = priv;
    redisReply *reply = r;
    stream_id_t min;
    if (reply != NULL)
        t->u->on_reply(t->u->arg);
    /* Summary form: [count, smallest id, largest id, consumers]. */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[1]->type != REDIS_REPLY_STRING || !parse_id(reply->element[1]->str, &min))
        t->unknown = true;
    else
        lower_safe(t, min);
    if (--t->waiting > 0)
        return;
    if (reply == NULL)
        free(t); /* the connection is gone: upkeep_connection_lost cleared the flag */
    else
        trim_finish(t, ac);
}

static void on_groups(redisAsyncContext *ac, void *r, void *priv)
{
    trim_t *t = priv;
    stream_upkeep_t *u = t->u;
    redisReply *reply = r;
    if (reply == NULL) {
        free(t);
        return;
    }
    u->on_reply(u->arg);
    if (reply->type != REDIS_REPLY_ARRAY) {
        u->trim_in_flight = false;
        free(t);
        return;
    }
    t->safe.ms = UINT64_MAX;
    t->safe.seq = UINT64_MAX;
    t->waiting = 1; /* held until every summary is sent */
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        if (g->type != REDIS_REPLY_ARRAY) {
            t->unknown = true;
            continue;
        }
        const redisReply *name = map_get(g, "name");
        const redisReply *pending = map_get(g, "pending");
        const redisReply *last = map_get(g, "last-delivered-id");
        const redisReply *lag = map_get(g, "lag");
        stream_id_t last_id;
        if (!name || !pending || !last || last->type != REDIS_REPLY_STRING ||
            !parse_id(last->str, &last_id)) {
            t->unknown = true;
            continue;
        }
        if (strcmp(name->str, u->cfg->group) == 0) {
            u->lag = lag && lag->type == REDIS_REPLY_INTEGER ? lag->integer : -1;
            u->pending[t->stream] = pending->type == REDIS_REPLY_INTEGER ? pending->integer : -1;
            publish_gauges(u);
        }
        /* Without pending entries, everything up to last-delivered-id is acknowledged. */
        stream_id_t next = last_id;
        if (++next.seq == 0)
            next.ms++;
        lower_safe(t, next);
        if (pending->type == REDIS_REPLY_INTEGER && pending->integer > 0) {
            const char *argv[3] = {"XPENDING", u->cfg->streams[t->stream], name->str};
            if (send_argv(ac, on_group_pending, t, 3, argv) == 0)
                t->waiting++;
            else
                t->unknown = true;
        }
    }
    if (reply->elements == 0)
        t->unknown = true;
    if (--t->waiting == 0)
        trim_finish(t, ac);
}

static void trim_round(stream_upkeep_t *u, redisAsyncContext *ac)
{
    if (u->trim_in_flight)
        return;
    trim_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return;
    t->u = u;
    t->stream = (int)(u->trim_rounds++ % (unsigned)u->cfg->stream_count);
    const char *argv[3] = {"XINFO", "GROUPS", u->cfg->streams[t->stream]};
    if (send_argv(ac, on_groups, t, 3, argv) < 0) {
        free(t);
        return;
    }
    u->trim_in_flight = true;
    read_dead_length(u, ac, t->stream);
}

/* --- idle consumers ----------------------------------------------------------------- */

/* clang-format off */
static const char delete_idle_consumer_lua[] =
    "if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then "
    "return -1 end "
    "return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])";
/* clang-format on */

typedef struct consumer_removal {
    stream_upkeep_t *u;
    char name[CONSUMER_NAME_MAX];
} consumer_removal_t;

static void on_consumer_removed(redisAsyncContext *ac, void *r, void *priv)
{
    consumer_removal_t *rm = priv;
    stream_upkeep_t *u = rm->u;
    redisReply *reply = r;
    if (reply != NULL) {
        u->on_reply(u->arg);
        if (u->commands_in_flight > 0)
            u->commands_in_flight--;
        if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
            u->consumers_removed++;
            log_write(LOG_INFO, "removed an idle consumer with nothing pending", "consumer",
                      rm->name, NULL);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            log_write(LOG_WARN, "cannot remove an idle consumer", "consumer", rm->name, "error",
                      reply->str, NULL);
        }
    }
    free(rm);
}

static void remove_consumer(stream_upkeep_t *u, redisAsyncContext *ac, int stream, const char *name)
{
    consumer_removal_t *rm = calloc(1, sizeof *rm);
    if (rm == NULL)
        return;
    rm->u = u;
    snprintf(rm->name, sizeof rm->name, "%s", name);
    const char *argv[6] = {
        "EVAL", delete_idle_consumer_lua, "1", u->cfg->streams[stream], u->cfg->group, rm->name};
    if (send_argv(ac, on_consumer_removed, rm, 6, argv) < 0) {
        free(rm);
        return;
    }
    u->commands_in_flight++;
}

static void on_consumers(redisAsyncContext *ac, void *r, void *priv)
{
    stream_upkeep_t *u = priv;
    redisReply *reply = r;
    if (reply == NULL)
        return;
    u->on_reply(u->arg);
    u->expire_in_flight = false;
    int stream = (int)(u->expire_rounds++ % (unsigned)u->cfg->stream_count);
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *info = reply->element[i];
        if (info->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *name = map_get(info, "name");
        const redisReply *pending = map_get(info, "pending");
        const redisReply *idle = map_get(info, "idle");
        if (!name || name->type != REDIS_REPLY_STRING || name->len >= CONSUMER_NAME_MAX ||
            !pending || pending->type != REDIS_REPLY_INTEGER || !idle ||
            idle->type != REDIS_REPLY_INTEGER)
            continue;
        if (pending->integer == 0 && idle->integer >= u->cfg->consumer_expire_ms &&
            strcmp(name->str, u->cfg->consumer) != 0)
            remove_consumer(u, ac, stream, name->str);
    }
}

/* Lists one stream's consumers per round; on_consumers removes the expired ones. */
static void expire_round(stream_upkeep_t *u, redisAsyncContext *ac)
{
    if (u->expire_in_flight)
        return;
    int stream = (int)(u->expire_rounds % (unsigned)u->cfg->stream_count);
    const char *argv[4] = {"XINFO", "CONSUMERS", u->cfg->streams[stream], u->cfg->group};
    if (send_argv(ac, on_consumers, u, 4, argv) == 0)
        u->expire_in_flight = true;
}

/* --- the interface ---------------------------------------------------------------------- */

void upkeep_init(stream_upkeep_t *u, const config_t *cfg, void (*on_reply)(void *arg), void *arg,
                 uint64_t now_ms)
{
    memset(u, 0, sizeof *u);
    u->cfg = cfg;
    u->on_reply = on_reply;
    u->arg = arg;
    u->lag = -1;
    for (int i = 0; i < CONFIG_STREAMS_MAX; i++)
        u->pending[i] = u->dead_letters[i] = -1;
    u->pending_gauge = metrics_gauge(
        "exectime_stream_pending_entries",
        "Entries delivered to the group and not yet acknowledged, all streams (-1: unknown).");
    u->dead_letters_gauge = metrics_gauge(
        "exectime_dead_letter_entries",
        "Entries in the dead-letter streams <stream>:dead, all streams (-1: unknown).");
    publish_gauges(u);
    u->next_trim_ms = now_ms + 1000;
    u->next_expire_ms = now_ms + 1000;
}

void upkeep_tick(stream_upkeep_t *u, redisAsyncContext *ac, uint64_t now_ms)
{
    if (now_ms >= u->next_trim_ms) {
        u->next_trim_ms = now_ms + TRIM_INTERVAL_MS;
        trim_round(u, ac);
    }
    if (now_ms >= u->next_expire_ms) {
        uint64_t every = (uint64_t)u->cfg->consumer_expire_ms / 2;
        u->next_expire_ms = now_ms + (every < EXPIRE_INTERVAL_MS ? every : EXPIRE_INTERVAL_MS);
        expire_round(u, ac);
    }
}

void upkeep_connection_lost(stream_upkeep_t *u)
{
    u->trim_in_flight = false;
    u->expire_in_flight = false;
    u->commands_in_flight = 0;
}

bool upkeep_quiet(const stream_upkeep_t *u)
{
    return !u->trim_in_flight && !u->expire_in_flight && u->commands_in_flight == 0;
}
