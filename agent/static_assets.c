/* static_assets — see static_assets.h. */
#include "static_assets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const static_asset_t templates[STATIC_ASSET_COUNT] = {
    {"/", "dashboard.html", "text/html; charset=utf-8", "no-cache", NULL, 0, ""},
    {"/widget/exectime-widget.js", "exectime-widget.js", "text/javascript; charset=utf-8",
     "public, max-age=300, must-revalidate", NULL, 0, ""},
};

/* Reads a whole file of at most STATIC_ASSET_MAX_BYTES. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    char *data = malloc(STATIC_ASSET_MAX_BYTES);
    if (data == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(data, 1, STATIC_ASSET_MAX_BYTES, f);
    int too_big = n == STATIC_ASSET_MAX_BYTES && fgetc(f) != EOF;
    int failed = ferror(f);
    fclose(f);
    if (too_big || failed) {
        free(data);
        return too_big ? -EFBIG : -EIO;
    }
    char *fit = realloc(data, n ? n : 1);
    *out = fit ? fit : data;
    *len = n;
    return 0;
}

int static_assets_load(static_assets_t *sa, const char *dir)
{
    memset(sa, 0, sizeof *sa);
    memcpy(sa->assets, templates, sizeof templates);
    snprintf(sa->dir, sizeof sa->dir, "%s", dir);
    int loaded = 0;
    for (int i = 0; i < STATIC_ASSET_COUNT && dir[0]; i++) {
        static_asset_t *a = &sa->assets[i];
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, a->file);
        int rc = read_file(path, &a->data, &a->len);
        if (rc < 0) {
            log_write(LOG_WARN, "dashboard file not loaded", "path", path, "error",
                      strerror(-rc), NULL);
            continue;
        }
        uint64_t h = 1469598103934665603ULL;
        for (size_t k = 0; k < a->len; k++)
            h = (h ^ (uint8_t)a->data[k]) * 1099511628211ULL;
        snprintf(a->etag, sizeof a->etag, "\"%016" PRIx64 "\"", h);
        loaded++;
    }
    return loaded;
}

bool static_assets_serve(const static_assets_t *sa, const http_request_t *req,
                         http_response_t *res)
{
    for (int i = 0; i < STATIC_ASSET_COUNT; i++) {
        const static_asset_t *a = &sa->assets[i];
        if (strcmp(req->path, a->path) != 0)
            continue;
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
            int rc = http_response_header(res, "Allow", "GET, HEAD");
            (void)rc;
            http_respond_error(res, 405, "method_not_allowed", "use GET");
            return true;
        }
        if (a->data == NULL) {
            http_respond_error(res, 404, "not_found",
                               "the dashboard is not installed: build ui-widget (npm run build) "
                               "and point EXECTIME_UI_DIR at its dist folder");
            return true;
        }
        int rc = http_response_header(res, "Cache-Control", a->cache_control);
        if (rc == 0)
            rc = http_response_header(res, "ETag", a->etag);
        if (rc == 0)
            rc = http_response_header(res, "X-Content-Type-Options", "nosniff");
        (void)rc; /* fixed, valid values */
        const char *inm = http_request_header(req, "If-None-Match");
        if (inm && strstr(inm, a->etag))
            http_respond(res, 304, NULL, NULL, 0);
        else
            http_respond(res, 200, a->content_type, a->data, a->len);
        return true;
    }
    return false;
}

void static_assets_free(static_assets_t *sa)
{
    for (int i = 0; i < STATIC_ASSET_COUNT; i++) {
        free(sa->assets[i].data);
        sa->assets[i].data = NULL;
    }
}
