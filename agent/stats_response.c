/* stats_response — see stats_response.h. */
#include "stats_response.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "et_hash.h"
#include "json_out.h"

#define RETRY_AFTER_S "5"

bool stats_origin_allowed(const char *cors_origins, const char *origin)
{
    const char *list = cors_origins;
    if (!origin[0] || !list[0])
        return false;
    size_t olen = strlen(origin);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if ((len == 1 && *p == '*') || (len == olen && memcmp(p, origin, len) == 0))
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

/*
 * A page of another origin reads only the safelisted response headers unless exposed: the
 * widget needs ETag for If-None-Match and Retry-After to wait as long as a 503 asks.
 */
int stats_cors_headers(http_response_t *res, const stats_reply_to_t *to)
{
    if (!stats_origin_allowed(to->cors_origins, to->origin))
        return 0;
    int rc = http_response_header(res, "Access-Control-Allow-Origin", to->origin);
    if (rc == 0)
        rc = http_response_header(res, "Access-Control-Expose-Headers", "ETag, Retry-After");
    return rc;
}

/* Headers every answer of this endpoint carries. */
static void common_headers(http_response_t *res, const stats_reply_to_t *to)
{
    int rc = http_response_header(res, "Cache-Control", "private, no-cache");
    if (rc == 0)
        rc = stats_cors_headers(res, to);
    if (rc == 0)
        rc = http_response_header(res, "Vary", "Origin, Authorization");
    (void)rc; /* fixed, validated header values; a refusal only drops the header */
}

void stats_respond_error(http_response_t *res, const stats_reply_to_t *to, int status,
                         const char *code, const char *parameter, const char *message)
{
    char body[JSON_ERROR_BODY_MAX];
    size_t len = json_error_body(body, sizeof body, code, message, parameter);
    common_headers(res, to);
    int rc = 0;
    if (status == 503)
        rc = http_response_header(res, "Retry-After", RETRY_AFTER_S);
    if (status == 401)
        rc = http_response_header(res, "WWW-Authenticate", "Bearer");
    (void)rc;
    http_respond(res, status, "application/json", body, len);
}

/* If-None-Match holds our tag (or *): the client's copy is current. */
static bool etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match[0])
        return false;
    if (strcmp(if_none_match, "*") == 0)
        return true;
    size_t n = strlen(etag);
    for (const char *p = strstr(if_none_match, etag); p; p = strstr(p + 1, etag))
        if ((p == if_none_match || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
    return false;
}

void stats_respond_body(http_response_t *res, const stats_reply_to_t *to, const char *if_none_match,
                        const char *body, size_t len)
{
    char etag[24];
    snprintf(etag, sizeof etag, "\"%016" PRIx64 "\"", et_fnv1a64(body, len));
    common_headers(res, to);
    int rc = http_response_header(res, "ETag", etag);
    (void)rc;
    if (etag_matches(if_none_match, etag))
        http_respond(res, 304, NULL, NULL, 0);
    else
        http_respond(res, 200, "application/json", body, len);
}

void stats_respond_preflight(http_response_t *res, const stats_reply_to_t *to)
{
    common_headers(res, to);
    int rc = http_response_header(res, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS");
    if (rc == 0)
        rc = http_response_header(res, "Access-Control-Allow-Headers",
                                  "Authorization, If-None-Match");
    if (rc == 0)
        rc = http_response_header(res, "Access-Control-Max-Age", "600");
    (void)rc; /* fixed, valid values */
    http_respond(res, 204, NULL, NULL, 0);
}
