/* router — see router.h. */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "openapi_doc.h"

void router_init(router_t *r, const router_ops_t *ops)
{
    r->ops = *ops;
}

static const char json_type[] = "application/json";

static void handle_healthz(router_t *r, const http_request_t *req, http_response_t *res)
{
    static const char body[] = "{\"status\":\"ok\"}";
    http_respond(res, 200, json_type, body, sizeof body - 1);
}

static void handle_readyz(router_t *r, const http_request_t *req, http_response_t *res)
{
    char body[512];
    bool ready = r->ops.readiness(r->ops.arg, body, sizeof body);
    if (!ready) {
        int rc = http_response_header(res, "Retry-After", "1");
        (void)rc; /* a constant, valid header is never refused */
    }
    http_respond(res, ready ? 200 : 503, json_type, body, strlen(body));
}

static void handle_metrics(router_t *r, const http_request_t *req, http_response_t *res)
{
    if (r->ops.refresh_metrics)
        r->ops.refresh_metrics(r->ops.arg);
    char *text = NULL;
    size_t len = 0;
    if (metrics_render(0, &text, &len) < 0) {
        http_respond_error(res, 500, "internal", "metrics could not be rendered");
        return;
    }
    /* About 21 KiB: over HTTP_BUDGET_EXEMPT_BYTES, yet a scrape must answer under load. */
    http_response_skip_budget(res);
    http_respond(res, 200, METRICS_CONTENT_TYPE, text, len);
    free(text);
}

/* The API's contract, for tools and clients: public (it holds no data), revalidated by ETag
 * since it changes only with the binary. */
static void handle_openapi(router_t *r, const http_request_t *req, http_response_t *res)
{
    int rc = http_response_header(res, "Cache-Control", "no-cache");
    if (rc == 0)
        rc = http_response_header(res, "ETag", openapi_json_etag);
    (void)rc; /* constant, valid headers are never refused */
    const char *inm = http_request_header(req, "If-None-Match");
    if (inm && (strcmp(inm, "*") == 0 || strstr(inm, openapi_json_etag)))
        http_respond(res, 304, NULL, NULL, 0);
    else
        http_respond(res, 200, json_type, openapi_json, openapi_json_len);
}

typedef struct route {
    const char *path;
    void (*handle)(router_t *r, const http_request_t *req, http_response_t *res);
    bool api_only; /* describes the statistics API: not on a listener without it */
} route_t;

static const route_t routes[] = {
    {"/healthz", handle_healthz, false},
    {"/readyz", handle_readyz, false},
    {"/metrics", handle_metrics, false},
    {"/openapi.json", handle_openapi, true},
};

static const char statistics_path[] = "/api/v1/statistics/execution-times";
static const char regressions_path[] = "/api/v1/statistics/regressions";
/* static_assets.c's paths: labelled even while the files are missing (answered 404). */
static const char *const asset_paths[] = {"/", "/widget/exectime-widget.js"};

/* clang-format off */
const char *const router_handler_labels[] = {
    "/api/v1/statistics/execution-times", "/api/v1/statistics/regressions", "/healthz", "/readyz",
    "/metrics", "/", "/widget/exectime-widget.js", "other",
};
/* clang-format on */
const size_t router_handler_label_count =
    sizeof router_handler_labels / sizeof router_handler_labels[0];

/* The routes' own (stats_query, stats_response, static_assets, the table above) and the
 * server's (http_server.h: refusals, timeouts, limits). One missing here still counts: its
 * series appears at its first response instead of at start-up. */
const int router_statuses[] = {200, 204, 304, 400, 401, 403, 404, 405,
                               408, 413, 414, 422, 431, 500, 503, 505};
const size_t router_status_count = sizeof router_statuses / sizeof router_statuses[0];

const char *router_handler_label(const router_t *r, const char *path)
{
    if (path == NULL)
        return "other";
    if (r->ops.statistics && strcmp(path, statistics_path) == 0)
        return router_handler_labels[0];
    if (r->ops.statistics && r->ops.regressions && strcmp(path, regressions_path) == 0)
        return router_handler_labels[1];
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].path;
    }
    for (size_t i = 0; r->ops.assets && i < sizeof asset_paths / sizeof asset_paths[0]; i++) {
        if (strcmp(path, asset_paths[i]) == 0)
            return asset_paths[i];
    }
    return "other";
}

void router_handle(void *arg, const http_request_t *req, http_response_t *res)
{
    router_t *r = arg;
    if (r->ops.statistics && strcmp(req->path, statistics_path) == 0) {
        r->ops.statistics(r->ops.arg, req, res);
        return;
    }
    if (r->ops.statistics && r->ops.regressions && strcmp(req->path, regressions_path) == 0) {
        r->ops.regressions(r->ops.arg, req, res);
        return;
    }
    if (r->ops.assets && r->ops.assets(r->ops.arg, req, res))
        return;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(req->path, routes[i].path) != 0 || (routes[i].api_only && !r->ops.statistics))
            continue;
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            int rc = http_response_header(res, "Allow", "GET, HEAD");
            (void)rc; /* a constant, valid header is never refused */
            http_respond_error(res, 405, "method_not_allowed", "use GET");
            return;
        }
        routes[i].handle(r, req, res);
        return;
    }
    http_respond_error(res, 404, "not_found", "no such endpoint");
}
