/* static_assets — see static_assets.h. */
#include "static_assets.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "stats_response.h"

static const static_asset_t templates[STATIC_ASSET_COUNT] = {
    {"/", "dashboard.html", "text/html; charset=utf-8", "no-cache", true, false, NULL, 0, "", ""},
    {"/widget/exectime-widget.js", "exectime-widget.js", "text/javascript; charset=utf-8",
     "public, max-age=300, must-revalidate", false, true, NULL, 0, "", ""},
};

/*
 * The page's policy around its script sources. Styles may be inline: the page has a
 * <style> block and the widget injects its components' CSS as <style> elements (Svelte
 * with emitCss off); scripts may not, except the page's own by hash. The API is on the
 * agent's origin (connect-src 'self'); the page's icon is a data: URL.
 */
#define CSP_BEFORE_SCRIPTS "default-src 'self'; script-src 'self'"
/* clang-format off */
#define CSP_AFTER_SCRIPTS                                                                    \
    "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "        \
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
/* clang-format on */

/* First case-insensitive occurrence of needle in hay[0, n), or NULL. */
static const char *find_ci(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++) {
        if (strncasecmp(hay + i, needle, k) == 0)
            return hay + i;
    }
    return NULL;
}

/* True when the tag text tag[0, n) (between "<script" and ">") has a src attribute. */
static bool tag_has_src(const char *tag, size_t n)
{
    for (size_t i = 1; i + 3 <= n; i++) {
        if (!isspace((unsigned char)tag[i - 1]) || strncasecmp(tag + i, "src", 3) != 0)
            continue;
        char after = i + 3 < n ? tag[i + 3] : '>';
        if (after == '=' || after == '>' || after == '/' || isspace((unsigned char)after))
            return true;
    }
    return false;
}

int static_assets_page_csp(const char *html, size_t len, char *buf, size_t cap)
{
    char hashes[STATIC_INLINE_SCRIPTS_MAX * 64] = "";
    size_t hlen = 0;
    int count = 0, rc = 0;
    const char *p = html, *end = html + len;
    const char *open;
    while (rc == 0 && (open = find_ci(p, (size_t)(end - p), "<script")) != NULL) {
        const char *tag = open + 7;
        /* "<scripts>" or "<script-x>" is another element. */
        if (tag < end && *tag != '>' && !isspace((unsigned char)*tag)) {
            p = tag;
            continue;
        }
        const char *tag_end = memchr(tag, '>', (size_t)(end - tag));
        const char *close =
            tag_end ? find_ci(tag_end + 1, (size_t)(end - tag_end - 1), "</script") : NULL;
        if (close == NULL) {
            rc = -EINVAL;
            break;
        }
        p = close + 8;
        if (tag_has_src(tag, (size_t)(tag_end - tag)))
            continue;
        if (count == STATIC_INLINE_SCRIPTS_MAX) {
            rc = -E2BIG;
            break;
        }
        /* A hash source is the base64 SHA-256 of the element's text exactly as sent. */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
        if (EVP_Digest(tag_end + 1, (size_t)(close - tag_end - 1), md, &md_len, EVP_sha256(),
                       NULL) != 1) {
            rc = -ENOMEM;
            break;
        }
        EVP_EncodeBlock(b64, md, (int)md_len);
        hlen += (size_t)snprintf(hashes + hlen, sizeof hashes - hlen, " 'sha256-%s'", b64);
        count++;
    }
    if (rc < 0)
        hashes[0] = '\0';
    int n = snprintf(buf, cap, "%s%s%s", CSP_BEFORE_SCRIPTS, hashes, CSP_AFTER_SCRIPTS);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(buf, cap, "%s%s", CSP_BEFORE_SCRIPTS, CSP_AFTER_SCRIPTS);
        return -E2BIG;
    }
    return rc < 0 ? rc : n;
}

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
            log_write(LOG_WARN, "dashboard file not loaded", "path", path, "error", strerror(-rc),
                      NULL);
            continue;
        }
        uint64_t h = 1469598103934665603ULL;
        for (size_t k = 0; k < a->len; k++)
            h = (h ^ (uint8_t)a->data[k]) * 1099511628211ULL;
        snprintf(a->etag, sizeof a->etag, "\"%016" PRIx64 "\"", h);
        if (a->is_page) {
            int csp = static_assets_page_csp(a->data, a->len, a->csp, sizeof a->csp);
            if (csp < 0)
                log_write(LOG_WARN,
                          "dashboard page: its inline scripts are not allowed by the "
                          "Content-Security-Policy",
                          "path", path, "error", strerror(-csp), NULL);
        }
        loaded++;
    }
    return loaded;
}

/*
 * CORS for a file other origins may load. Vary: Origin whether or not the origin is
 * allowed, so that no shared cache hands one origin's answer to another; the 304 carries
 * the same headers, as the browser checks CORS on the revalidated answer too.
 */
static int cross_origin_headers(const char *cors_origins, const http_request_t *req,
                                http_response_t *res)
{
    const char *origin = http_request_header(req, "Origin");
    stats_reply_to_t to = {cors_origins, origin ? origin : ""};
    int rc = http_response_header(res, "Vary", "Origin");
    if (rc == 0)
        rc = stats_cors_headers(res, &to);
    return rc;
}

bool static_assets_serve(const static_assets_t *sa, const char *cors_origins,
                         const http_request_t *req, http_response_t *res)
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
        if (rc == 0)
            rc = http_response_header(res, "Referrer-Policy", "no-referrer");
        if (rc == 0 && a->is_page)
            rc = http_response_header(res, "Content-Security-Policy", a->csp);
        if (rc == 0 && a->is_page)
            rc = http_response_header(res, "X-Frame-Options", "SAMEORIGIN");
        if (rc == 0 && a->cross_origin)
            rc = cross_origin_headers(cors_origins, req, res);
        (void)rc; /* fixed or validated values, well within the header budget */
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
