/*
 * static_assets — the dashboard's files, read once at start-up from EXECTIME_UI_DIR into
 * memory and served from there: GET / is the standalone dashboard page
 * (dashboard.html) and GET /widget/exectime-widget.js the widget bundle. Reading at
 * start-up keeps file I/O off the loop; a missing directory or file only disables that
 * path (answered 404 with a hint), it never stops the agent.
 *
 * Every answer carries X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer;
 * the page also a Content-Security-Policy (scripts only from the agent itself and the
 * page's own inline scripts, by their SHA-256 computed at load; no plugins, no <base>,
 * framed only by the agent's own origin) and X-Frame-Options: SAMEORIGIN for browsers
 * older than CSP's frame-ancestors. docs/security.md explains each.
 *
 * The widget bundle may be loaded by pages of other origins: <script type="module"> fetches
 * it in CORS mode, so it carries Access-Control-Allow-Origin for the origins
 * EXECTIME_CORS_ORIGINS lists (the API's rule, stats_cors_headers) and Vary: Origin; a
 * page of any other origin gets no such header and the browser refuses to run the module.
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
#define STATIC_CSP_MAX 1024         /* bytes of the page's Content-Security-Policy */
#define STATIC_INLINE_SCRIPTS_MAX 8 /* inline <script> hashes the policy can list */

typedef struct static_asset {
    const char *path; /* URL path */
    const char *file; /* name inside the directory */
    const char *content_type;
    const char *cache_control;
    bool is_page;      /* HTML: gets the Content-Security-Policy */
    bool cross_origin; /* may be loaded by pages of the CORS origins */
    char *data;        /* NULL when not loaded */
    size_t len;
    char etag[24];
    char csp[STATIC_CSP_MAX]; /* the page's policy; "" for other files */
} static_asset_t;

typedef struct static_assets {
    static_asset_t assets[STATIC_ASSET_COUNT];
    char dir[512];
} static_assets_t;

/* Loads what it can from dir (blocking; call before the loop runs). Returns the number of
 * files loaded; reasons for missing ones are logged. A page whose inline scripts cannot
 * all be listed in its policy is served with a policy that allows none of them (logged). */
int static_assets_load(static_assets_t *sa, const char *dir);

/**
 * Builds the page's Content-Security-Policy into buf: script-src 'self' plus the
 * 'sha256-…' of each inline <script> (one without a src attribute) of html.
 * @return the policy's length, -E2BIG (more than STATIC_INLINE_SCRIPTS_MAX inline
 *         scripts, or cap too small: buf then holds the policy without any hash),
 *         -EINVAL (an unterminated <script> element, same fallback) or -ENOMEM
 */
__attribute__((warn_unused_result)) int static_assets_page_csp(const char *html, size_t len,
                                                               char *buf, size_t cap);

/* Serves req if its path is one of the assets (GET/HEAD): true when answered.
 * cors_origins is EXECTIME_CORS_ORIGINS (may be ""), read during the call only. */
bool static_assets_serve(const static_assets_t *sa, const char *cors_origins,
                         const http_request_t *req, http_response_t *res);

void static_assets_free(static_assets_t *sa);

#endif
