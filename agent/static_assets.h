/*
 * static_assets — the dashboard's files, read once at start-up from EXECTIME_UI_DIR into
 * memory and served from there: GET / is the standalone dashboard page
 * (dashboard.html) and GET /widget/exectime-widget.js the widget bundle. Reading at
 * start-up keeps file I/O off the loop; a missing directory or file only disables that
 * path (answered 404 with a hint), it never stops the agent.
 *
 * Ownership: static_assets_t owns the file contents; static_assets_free releases them.
 */
#ifndef EXECTIME_STATIC_ASSETS_H
#define EXECTIME_STATIC_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

#include "http_server.h"

#define STATIC_ASSET_MAX_BYTES (4 * 1024 * 1024)
#define STATIC_ASSET_COUNT 2

typedef struct static_asset {
    const char *path;         /* URL path */
    const char *file;         /* name inside the directory */
    const char *content_type;
    const char *cache_control;
    char *data;               /* NULL when not loaded */
    size_t len;
    char etag[24];
} static_asset_t;

typedef struct static_assets {
    static_asset_t assets[STATIC_ASSET_COUNT];
    char dir[512];
} static_assets_t;

/* Loads what it can from dir (blocking; call before the loop runs). Returns the number of
 * files loaded; reasons for missing ones are logged. */
int static_assets_load(static_assets_t *sa, const char *dir);

/* Serves req if its path is one of the assets (GET/HEAD): true when answered. */
bool static_assets_serve(const static_assets_t *sa, const http_request_t *req,
                         http_response_t *res);

void static_assets_free(static_assets_t *sa);

#endif
