/* agent — see agent.h. */
#include "agent.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "batch_writer.h"
#include "et_macros.h"
#include "http_server.h"
#include "log.h"
#include "metrics.h"
#include "pg_conn.h"
#include "process_metrics.h"
#include "regressions.h"
#include "router.h"
#include "service_notify.h"
#include "static_assets.h"
#include "stats_query.h"
#include "stream_consumer.h"

/* Exit status of a shutdown that ran out of time with entries left uncommitted: they stay
 * pending in Redis, but a supervisor should know the exit was not clean. */
#define EXIT_SHUTDOWN_TIMED_OUT 3
#define MAINTAIN_INTERVAL_MS (3600 * 1000)

typedef enum agent_phase {
    AGENT_RUNNING,
    AGENT_STOPPING_READS, /* waiting for the last read to come back */
    AGENT_DRAINING,       /* the writer commits what it holds */
    AGENT_ACKING,         /* waiting for the last acknowledgements */
    AGENT_CLOSING,
} agent_phase_t;

typedef struct agent {
    uv_loop_t loop;
    const config_t *cfg;
    agent_phase_t phase;
    int exit_code;
    batch_writer_t writer;
    stream_consumer_t consumer;
    pg_conn_t maintenance;
    http_server_t http;
    router_t router;
    http_server_t ops_http; /* EXECTIME_OPS_LISTEN: probes and metrics, own limits */
    router_t ops_router;
    bool ops_enabled; /* ops_http initialized: it must be closed */
    stats_api_t stats;
    static_assets_t assets;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t maintain_timer;
    uv_timer_t shutdown_deadline; /* a graceful shutdown's bound */
    service_notify_t notify;      /* systemd: READY=1, STOPPING=1, watchdog */
    int open_parts;               /* closing parts not yet closed */
    /* metrics */
    metric_counter_t *events_consumed;
    metric_counter_t *events_inserted;
    metric_counter_t *events_duplicate;
    metric_counter_t *entries_acked;
    metric_counter_t *entries_claimed;
    metric_counter_t *redis_reconnects;
    metric_counter_t *groups_recreated;
    metric_counter_t *consumers_removed;
    metric_counter_t *cache_hits;
    metric_counter_t *cache_misses;
    metric_counter_t *cache_dropped;
    metric_gauge_t *stranded;
    metric_counter_t *batches_failed;
    metric_counter_t *batches_split;
    metric_counter_t *entries_rejected;
    metric_counter_t *workflows_overflowed;
    metric_family_t *dead_lettered;
    metric_histogram_t *batch_events;
    metric_histogram_t *commit_seconds;
    metric_gauge_t *stream_lag;
    metric_gauge_t *ready;
    metric_family_t *http_requests; /* by handler and code */
    metric_family_t *http_seconds;  /* by handler */
    writer_stats_t seen_writer;     /* stats already folded into counters */
    day_cache_stats_t seen_cache;
    consumer_stats_t seen_consumer;
} agent_t;

static void begin_shutdown(agent_t *a, int exit_code);

/* --- wiring --------------------------------------------------------------------------- */

static void on_committed(batch_writer_t *w, const writer_ack_t *acks, size_t n, void *arg)
{
    agent_t *a = arg;
    consumer_ack(&a->consumer, acks, n);
}

static void on_room(batch_writer_t *w, void *arg)
{
    agent_t *a = arg;
    consumer_resume(&a->consumer);
}

/* The database refuses this entry: dead-letter it (read back from Redis), then ack it. */
static void on_rejected(batch_writer_t *w, const writer_ack_t *ack, const char *reason, void *arg)
{
    agent_t *a = arg;
    consumer_reject(&a->consumer, ack->stream, ack->id, reason);
}

static void on_fatal(batch_writer_t *w, const char *reason, void *arg)
{
    agent_t *a = arg;
    log_write(LOG_ERROR, "cannot continue", "reason", reason, NULL);
    begin_shutdown(a, 1);
}

static void on_batch(batch_writer_t *w, size_t events, size_t inserted, uint64_t commit_ms,
                     void *arg)
{
    agent_t *a = arg;
    metrics_histogram_observe(a->batch_events, (double)events);
    metrics_histogram_observe(a->commit_seconds, (double)commit_ms / 1000.0);
}

static void on_dead(stream_consumer_t *c, const char *reason_class, void *arg)
{
    agent_t *a = arg;
    metrics_family_inc(a->dead_lettered, reason_class, 1);
}

/* Metrics and the access log line of one response; router says which handler it was. */
static void observe_http(agent_t *a, const router_t *router, const http_request_t *req,
                         const char *request_id, int status, double seconds)
{
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *handler = router_handler_label(router, req ? req->path : NULL);
    metrics_vec_inc(a->http_requests, (const char *[]){handler, code}, 1);
    metrics_vec_observe(a->http_seconds, &handler, seconds);
    /* One line per request; health probes and scrapes only at debug level. */
    bool probe = strcmp(handler, "/healthz") == 0 || strcmp(handler, "/readyz") == 0 ||
                 strcmp(handler, "/metrics") == 0;
    log_level_t level = probe && status < 500 ? LOG_DEBUG : LOG_INFO;
    if (!log_enabled(level))
        return;
    log_fields(level, "http request", log_str("method", req ? req->method : "-"),
               log_str("path", req ? req->path : "-"), log_int("status", status),
               log_double("duration_ms", (double)(int64_t)(seconds * 1e6) / 1000.0), /* µs */
               log_str("remote", req ? req->remote_addr : "-"), log_str("request_id", request_id));
}

static void on_http_done(void *arg, const http_request_t *req, const char *request_id, int status,
                         double seconds)
{
    agent_t *a = arg;
    observe_http(a, &a->router, req, request_id, status, seconds);
}

static void on_ops_http_done(void *arg, const http_request_t *req, const char *request_id,
                             int status, double seconds)
{
    agent_t *a = arg;
    observe_http(a, &a->ops_router, req, request_id, status, seconds);
}

static bool readiness(void *arg, char *buf, size_t cap)
{
    agent_t *a = arg;
    bool redis = consumer_connected(&a->consumer);
    bool postgres = pg_conn_up(&a->writer.pg);
    bool schema = writer_ready(&a->writer);
    bool flowing = writer_flowing(&a->writer); /* connected is not enough: commits go on */
    bool api = stats_api_ready(&a->stats);
    bool ready = redis && schema && flowing && api && a->phase == AGENT_RUNNING;
    snprintf(buf, cap,
             "{\"status\":\"%s\",\"redis\":%s,\"postgres\":%s,\"schema_current\":%s,"
             "\"writer_flowing\":%s,\"api_sessions\":%s,\"writer\":\"%s\",\"stopping\":%s,"
             "\"stranded_entries\":%" PRIu64 "}",
             ready ? "ready" : "not_ready", redis ? "true" : "false", postgres ? "true" : "false",
             schema ? "true" : "false", flowing ? "true" : "false", api ? "true" : "false",
             writer_state_name(a->writer.state), a->phase == AGENT_RUNNING ? "false" : "true",
             a->consumer.stats.stranded);
    return ready;
}

static bool assets(void *arg, const http_request_t *req, http_response_t *res)
{
    agent_t *a = arg;
    return static_assets_serve(&a->assets, a->cfg->cors_origins, req, res);
}

static void statistics(void *arg, const http_request_t *req, http_response_t *res)
{
    agent_t *a = arg;
    stats_api_handle(&a->stats, req, res);
}

static void regressions(void *arg, const http_request_t *req, http_response_t *res)
{
    agent_t *a = arg;
    regressions_handle(&a->stats, req, res);
}

/* Folds module statistics into monotonic counters. */
static void refresh_metrics(void *arg)
{
    agent_t *a = arg;
    const writer_stats_t *ws = &a->writer.stats;
    consumer_stats_t consumer_stats;
    consumer_stats_get(&a->consumer, &consumer_stats);
    const consumer_stats_t *cs = &consumer_stats;
    metrics_counter_inc(a->events_consumed, ws->events_received - a->seen_writer.events_received);
    metrics_counter_inc(a->events_inserted, ws->events_inserted - a->seen_writer.events_inserted);
    metrics_counter_inc(a->events_duplicate,
                        ws->events_duplicate - a->seen_writer.events_duplicate);
    metrics_counter_inc(a->batches_failed, ws->batches_failed - a->seen_writer.batches_failed);
    metrics_counter_inc(a->batches_split, ws->batches_split - a->seen_writer.batches_split);
    metrics_counter_inc(a->entries_rejected,
                        ws->entries_rejected - a->seen_writer.entries_rejected);
    metrics_counter_inc(a->workflows_overflowed,
                        ws->events_overflowed - a->seen_writer.events_overflowed);
    metrics_counter_inc(a->entries_acked, cs->entries_acked - a->seen_consumer.entries_acked);
    metrics_counter_inc(a->entries_claimed, cs->entries_claimed - a->seen_consumer.entries_claimed);
    metrics_counter_inc(a->redis_reconnects, cs->reconnects - a->seen_consumer.reconnects);
    metrics_counter_inc(a->groups_recreated,
                        cs->groups_recreated - a->seen_consumer.groups_recreated);
    metrics_counter_inc(a->consumers_removed,
                        cs->consumers_removed - a->seen_consumer.consumers_removed);
    metrics_gauge_set(a->stranded, (double)cs->stranded);
    const day_cache_stats_t *dc = &a->stats.cache.stats;
    metrics_counter_inc(a->cache_hits, dc->hits - a->seen_cache.hits);
    metrics_counter_inc(a->cache_misses, dc->misses - a->seen_cache.misses);
    metrics_counter_inc(a->cache_dropped, dc->dropped - a->seen_cache.dropped);
    a->seen_cache = *dc;
    a->seen_writer = *ws;
    a->seen_consumer = *cs;
    metrics_gauge_set(a->stream_lag, (double)cs->lag);
    char ignored[256];
    metrics_gauge_set(a->ready, readiness(a, ignored, sizeof ignored) ? 1 : 0);
    process_metrics_refresh();
}

static void register_metrics(agent_t *a)
{
    static const double batch_bounds[] = {1,    10,   50,    100,   500,  1000,
                                          2000, 5000, 10000, 20000, 50000};
    static const double commit_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                           0.25,  0.5,    1,     2.5,  5,     10};
    static const double http_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.3,    1,     5};
    a->events_consumed = metrics_counter("exectime_events_consumed_total",
                                         "Valid events read from the stream and batched.");
    a->events_inserted = metrics_counter("exectime_events_inserted_total",
                                         "Events committed as new raw rows and rolled up.");
    a->events_duplicate = metrics_counter("exectime_events_duplicate_total",
                                          "Events already stored (redelivered or republished).");
    a->entries_acked =
        metrics_counter("exectime_entries_acked_total", "Stream entries acknowledged (XACK).");
    a->entries_claimed = metrics_counter("exectime_entries_claimed_total",
                                         "Entries taken over from consumers idle too long.");
    a->redis_reconnects = metrics_counter("exectime_redis_reconnects_total",
                                          "Redis connections lost and re-established.");
    a->batches_failed = metrics_counter("exectime_batches_failed_total",
                                        "Batch transactions that failed and were retried.");
    a->batches_split = metrics_counter("exectime_batches_split_total",
                                       "Refused batches (or slices) halved to isolate an entry.");
    a->entries_rejected = metrics_counter("exectime_entries_rejected_total",
                                          "Entries the database refused, sent to dead letters.");
    /* No tenant label: a tenant's name is in the (rate-limited) log line instead, and a
     * label would grow with the number of tenants. */
    a->workflows_overflowed = metrics_counter(
        "exectime_workflows_overflowed_total",
        "Inserted runs whose workflow is past its tenant's EXECTIME_MAX_WORKFLOWS_PER_TENANT, "
        "rolled up per workflow under (overflow).");
    a->dead_lettered = metrics_counter_labels("exectime_dead_lettered_total",
                                              "Entries moved to the dead-letter stream.", "reason");
    /* stream_consumer.c's reason classes, at 0 from the start so rate() sees the first. */
    static const char *const dead_reasons[] = {"invalid", "no_event", "too_large", "deliveries",
                                               "rejected"};
    for (size_t i = 0; i < ET_ARRAY_LEN(dead_reasons); i++)
        metrics_vec_touch(a->dead_lettered, &dead_reasons[i]);
    a->batch_events = metrics_histogram("exectime_batch_events", "Events per batch.", batch_bounds,
                                        ET_ARRAY_LEN(batch_bounds));
    a->commit_seconds = metrics_histogram("exectime_batch_commit_seconds",
                                          "Time from a batch's first statement to COMMIT.",
                                          commit_bounds, ET_ARRAY_LEN(commit_bounds));
    a->groups_recreated =
        metrics_counter("exectime_redis_groups_recreated_total",
                        "Consumer groups found missing (Redis lost its data) and created anew.");
    a->consumers_removed =
        metrics_counter("exectime_consumers_removed_total",
                        "Idle consumers with nothing pending removed from the group.");
    a->stranded = metrics_gauge("exectime_stream_stranded_entries",
                                "Entries idle longer than EXECTIME_CLAIM_IDLE_MS on other "
                                "consumers, seen by the last claim pass.");
    a->stream_lag = metrics_gauge("exectime_stream_lag",
                                  "Entries not yet delivered to the group (-1: unknown).");
    a->ready =
        metrics_gauge("exectime_ready", "1 when Redis, PostgreSQL and the schema are ready.");
    a->cache_hits = metrics_counter("exectime_api_cache_hits_total",
                                    "Summary answers whose whole days came from the cache.");
    a->cache_misses = metrics_counter("exectime_api_cache_misses_total",
                                      "Summary answers whose whole days were read (and kept).");
    a->cache_dropped = metrics_counter(
        "exectime_api_cache_dropped_total",
        "Cached day ranges dropped: changed by a writer, evicted, or the listener reconnected.");
    static const char *const http_labels[] = {"handler", "code"};
    a->http_requests =
        metrics_counter_vec("exectime_http_requests_total",
                            "HTTP responses by handler (route) and status code.", 2, http_labels);
    a->http_seconds = metrics_histogram_vec("exectime_http_request_seconds",
                                            "Time from a request's first byte to its response, "
                                            "by handler (route).",
                                            1, http_labels, http_bounds, ET_ARRAY_LEN(http_bounds));
    for (size_t h = 0; h < router_handler_label_count; h++) {
        metrics_vec_touch(a->http_seconds, &router_handler_labels[h]);
        for (size_t s = 0; s < router_status_count; s++) {
            char code[8];
            snprintf(code, sizeof code, "%d", router_statuses[s]);
            metrics_vec_touch(a->http_requests, (const char *[]){router_handler_labels[h], code});
        }
    }
    process_metrics_register();
}

/* --- maintenance: partitions ahead, retention -------------------------------------------- */

static void on_maintained(pg_conn_t *conn, pg_query_event_t event, PGresult *res, void *arg)
{
    if (event != PG_QUERY_RESULT)
        return;
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(res));
        msg[strcspn(msg, "\n")] = '\0';
        log_write(LOG_WARN, "maintenance failed; retried next hour", "error", msg, NULL);
    } else if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        log_write(LOG_DEBUG, "maintenance done", "partitions_created", PQgetvalue(res, 0, 0), NULL);
    }
}

static void run_maintenance(agent_t *a)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SET ROLE exectime_writer; SELECT exectime.maintain(%d, %d, %d)",
             a->cfg->raw_retention_days, a->cfg->minute_retention_days,
             a->cfg->hour_retention_days);
    int rc = pg_conn_query(&a->maintenance, sql, on_maintained, a);
    (void)rc; /* not connected or busy: the next tick tries again */
}

static void on_maintenance_up(pg_conn_t *conn, void *arg)
{
    run_maintenance(arg);
}

static void on_maintain_timer(uv_timer_t *timer)
{
    run_maintenance(container_of(timer, agent_t, maintain_timer));
}

/* --- shutdown ----------------------------------------------------------------------- */

static void on_part_closed(agent_t *a)
{
    if (--a->open_parts == 0)
        log_write(LOG_INFO, "agent stopped", NULL);
}

static void on_handle_closed(uv_handle_t *h)
{
    on_part_closed(h->data);
}
static void on_writer_closed(batch_writer_t *w)
{
    on_part_closed(container_of(w, agent_t, writer));
}
static void on_consumer_closed(stream_consumer_t *c)
{
    on_part_closed(container_of(c, agent_t, consumer));
}
static void on_http_closed(http_server_t *s)
{
    on_part_closed(container_of(s, agent_t, http));
}
static void on_ops_http_closed(http_server_t *s)
{
    on_part_closed(container_of(s, agent_t, ops_http));
}
static void on_maintenance_closed(pg_conn_t *c)
{
    on_part_closed(container_of(c, agent_t, maintenance));
}
static void on_stats_closed(stats_api_t *s)
{
    on_part_closed(container_of(s, agent_t, stats));
}
static void on_notify_closed(service_notify_t *n)
{
    on_part_closed(container_of(n, agent_t, notify));
}

static void close_everything(agent_t *a)
{
    if (a->phase == AGENT_CLOSING)
        return;
    a->phase = AGENT_CLOSING;
    uv_handle_t *handles[] = {(uv_handle_t *)&a->sigterm, (uv_handle_t *)&a->sigint,
                              (uv_handle_t *)&a->maintain_timer,
                              (uv_handle_t *)&a->shutdown_deadline};
    a->open_parts = (int)ET_ARRAY_LEN(handles) + 6 + (a->ops_enabled ? 1 : 0);
    for (size_t i = 0; i < ET_ARRAY_LEN(handles); i++) {
        handles[i]->data = a;
        uv_close(handles[i], on_handle_closed);
    }
    http_server_close(&a->http, on_http_closed);
    if (a->ops_enabled)
        http_server_close(&a->ops_http, on_ops_http_closed);
    consumer_close(&a->consumer, on_consumer_closed);
    writer_close(&a->writer, on_writer_closed);
    pg_conn_close(&a->maintenance, on_maintenance_closed);
    stats_api_close(&a->stats, on_stats_closed);
    service_notify_close(&a->notify, on_notify_closed);
}

/* The shutdown's steps, each started by the one before: reads back, batches committed,
 * acks answered, then close. The deadline timer ends it if a step never comes. */
static void on_consumer_quiet(stream_consumer_t *c)
{
    agent_t *a = container_of(c, agent_t, consumer);
    if (a->phase == AGENT_ACKING)
        close_everything(a);
}

static void on_drained(batch_writer_t *w)
{
    agent_t *a = container_of(w, agent_t, writer);
    if (a->phase != AGENT_DRAINING)
        return;
    a->phase = AGENT_ACKING;
    consumer_when_quiet(&a->consumer, on_consumer_quiet);
}

static void on_reads_stopped(stream_consumer_t *c)
{
    agent_t *a = container_of(c, agent_t, consumer);
    if (a->phase != AGENT_STOPPING_READS)
        return;
    a->phase = AGENT_DRAINING;
    writer_drain(&a->writer, on_drained);
}

static void on_shutdown_deadline(uv_timer_t *timer)
{
    agent_t *a = container_of(timer, agent_t, shutdown_deadline);
    size_t events, entries;
    writer_pending(&a->writer, &events, &entries);
    log_fields(LOG_ERROR,
               "shutdown timed out; uncommitted entries stay pending and will be redelivered",
               log_uint("events", events), log_uint("entries", entries),
               log_str("writer", writer_state_name(a->writer.state)));
    if (a->exit_code < EXIT_SHUTDOWN_TIMED_OUT)
        a->exit_code = EXIT_SHUTDOWN_TIMED_OUT;
    close_everything(a);
}

static void begin_shutdown(agent_t *a, int exit_code)
{
    if (exit_code > a->exit_code)
        a->exit_code = exit_code;
    if (a->phase != AGENT_RUNNING)
        return;
    service_notify_stopping(&a->notify);
    if (exit_code != 0) {
        close_everything(a);
        return;
    }
    log_write(LOG_INFO, "shutting down: committing what is in flight", NULL);
    a->phase = AGENT_STOPPING_READS;
    uv_timer_start(&a->shutdown_deadline, on_shutdown_deadline,
                   (uint64_t)a->cfg->shutdown_timeout_ms, 0);
    consumer_stop_reading(&a->consumer, on_reads_stopped);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    agent_t *a = handle->data;
    if (a->phase != AGENT_RUNNING) {
        log_write(LOG_WARN, "second signal: closing now", NULL);
        close_everything(a);
        return;
    }
    begin_shutdown(a, 0);
}

/* --- run ----------------------------------------------------------------------------- */

int agent_run(const config_t *cfg)
{
    agent_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return 1;
    a->cfg = cfg;
    char err[512];
    int rc = uv_loop_init(&a->loop);
    if (rc < 0) {
        fprintf(stderr, "exectime-agent: cannot start the event loop: %s\n", uv_strerror(rc));
        free(a);
        return 1;
    }
    register_metrics(a);
    signal(SIGPIPE, SIG_IGN);

    writer_callbacks_t wcb = {.on_committed = on_committed,
                              .on_room = on_room,
                              .on_fatal = on_fatal,
                              .on_batch = on_batch,
                              .on_rejected = on_rejected,
                              .arg = a};
    router_ops_t ops = {readiness, refresh_metrics, assets, statistics, regressions, a};
    router_ops_t ops_only = {readiness, refresh_metrics, NULL, NULL, NULL, a};
    static_assets_load(&a->assets, cfg->ui_dir);
    router_init(&a->router, &ops);
    router_init(&a->ops_router, &ops_only);
    http_server_limits_t limits;
    http_server_limits_default(&limits);
    limits.max_connections = (unsigned)cfg->http_max_connections;
    limits.max_connections_per_client = (unsigned)cfg->http_max_connections_per_client;
    limits.response_budget_bytes = (size_t)cfg->http_response_budget_bytes;
    /* The ops port keeps the default limits: few scrapers and probes, never the API's. */
    a->ops_enabled = cfg->ops_listen[0] != '\0';
    if ((rc = writer_init(&a->writer, &a->loop, cfg, &wcb)) < 0 ||
        (rc = consumer_init(&a->consumer, &a->loop, cfg, &a->writer, on_dead, a)) < 0 ||
        (rc = pg_conn_init(&a->maintenance, &a->loop, "maintenance", cfg->database_url,
                           on_maintenance_up, NULL, a)) < 0 ||
        (rc = http_server_init(&a->http, &a->loop, &limits, router_handle, &a->router)) < 0 ||
        (a->ops_enabled && (rc = http_server_init(&a->ops_http, &a->loop, NULL, router_handle,
                                                  &a->ops_router)) < 0)) {
        fprintf(stderr, "exectime-agent: start-up failed: %s\n", uv_strerror(rc));
        return 1;
    }
    if (stats_api_init(&a->stats, &a->loop, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: %s\n", err);
        return 2;
    }
    http_server_set_observer(&a->http, on_http_done, a);
    if (a->ops_enabled)
        http_server_set_observer(&a->ops_http, on_ops_http_done, a);
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    uv_timer_init(&a->loop, &a->maintain_timer);
    uv_timer_init(&a->loop, &a->shutdown_deadline);
    service_notify_init(&a->notify, &a->loop, readiness, a);
    a->sigterm.data = a->sigint.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);

    if (http_server_listen(&a->http, cfg->listen, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: EXECTIME_LISTEN %s: %s\n", cfg->listen, err);
        a->exit_code = 1;
        close_everything(a);
    } else if (a->ops_enabled &&
               http_server_listen(&a->ops_http, cfg->ops_listen, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: EXECTIME_OPS_LISTEN %s: %s\n", cfg->ops_listen, err);
        a->exit_code = 1;
        close_everything(a);
    } else {
        log_write(LOG_INFO, "exectime-agent started", "version", EXECTIME_VERSION, "listen",
                  cfg->listen, "ops_listen", a->ops_enabled ? cfg->ops_listen : "off", "stream",
                  cfg->stream, "group", cfg->group, "consumer", cfg->consumer, NULL);
        writer_start(&a->writer);
        pg_conn_start(&a->maintenance);
        consumer_start(&a->consumer);
        stats_api_start(&a->stats);
        uv_timer_start(&a->maintain_timer, on_maintain_timer, MAINTAIN_INTERVAL_MS,
                       MAINTAIN_INTERVAL_MS);
        service_notify_ready(&a->notify);
    }
    uv_run(&a->loop, UV_RUN_DEFAULT);
    rc = uv_loop_close(&a->loop);
    if (rc != 0)
        log_write(LOG_WARN, "event loop closed with handles open", NULL);
    int code = a->exit_code;
    static_assets_free(&a->assets);
    metrics_reset();
    free(a);
    return code;
}
