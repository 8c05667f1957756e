/*
 * router — maps each HTTP request to its endpoint: /healthz, /readyz, /metrics, the
 * statistics API, its OpenAPI document (/openapi.json, only where the API is served) and
 * the dashboard's files. It knows nothing of the agent's modules:
 * the owner hands it callbacks for what it needs to ask.
 *
 * Ownership: router_t is embedded by its owner and only borrows the callbacks' argument.
 */
#ifndef EXECTIME_ROUTER_H
#define EXECTIME_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http_server.h"

typedef struct router_ops {
    /* Fills a JSON object describing readiness into buf; returns true when ready. */
    bool (*readiness)(void *arg, char *buf, size_t cap);
    /* Brings gauges and counters up to date just before /metrics renders. */
    void (*refresh_metrics)(void *arg);
    /* Serves a static dashboard file if the path is one: true when answered. */
    bool (*assets)(void *arg, const http_request_t *req, http_response_t *res);
    /* Answers the statistics API (any method; it answers 405 itself). */
    void (*statistics)(void *arg, const http_request_t *req, http_response_t *res);
    /* Answers the regressions endpoint, served wherever the statistics API is. */
    void (*regressions)(void *arg, const http_request_t *req, http_response_t *res);
    void *arg;
} router_ops_t;

typedef struct router {
    router_ops_t ops;
} router_t;

void router_init(router_t *r, const router_ops_t *ops);

/*
 * The route a path names, as the bounded `handler` label of the HTTP metrics: one of
 * ROUTER_HANDLER_LABELS, "other" for paths this router does not serve (404s). A
 * router without the statistics API or the dashboard (the ops port) says "other" for
 * their paths too. Never the raw path, so the label's values are few and known.
 */
const char *router_handler_label(const router_t *r, const char *path);

/* Every value router_handler_label can return, for metrics set up at start-up. */
extern const char *const router_handler_labels[];
extern const size_t router_handler_label_count;

/* Every status code the server or a route answers with, for metrics set up at start-up. */
extern const int router_statuses[];
extern const size_t router_status_count;

/* The http_handler_fn to give http_server_init, with the router as its argument. */
void router_handle(void *router, const http_request_t *req, http_response_t *res);

#endif
