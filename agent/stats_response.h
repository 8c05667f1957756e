/*
 * stats_response — the HTTP side of the statistics endpoint's answers: the headers every
 * answer carries (Cache-Control, Vary, and CORS for the origins EXECTIME_CORS_ORIGINS
 * lists), JSON error bodies, a body with its ETag (If-None-Match: 304), and the CORS
 * preflight. Each stats_respond_* call sends the response; the http_response_t is gone
 * afterwards. stats_cors_headers is the agent's one CORS decision, also used for the
 * widget bundle (static_assets).
 *
 * Header values are fixed or validated; a header the response refuses is only dropped.
 */
#ifndef EXECTIME_STATS_RESPONSE_H
#define EXECTIME_STATS_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_server.h"

typedef struct stats_reply_to {
    const char *cors_origins; /* EXECTIME_CORS_ORIGINS */
    const char *origin;       /* the request's Origin, "" if none */
} stats_reply_to_t;

/* origin is in the comma-separated list (or the list is "*"). */
bool stats_origin_allowed(const char *cors_origins, const char *origin);

/*
 * Adds Access-Control-Allow-Origin (the request's origin) and Access-Control-Expose-Headers
 * (what the widget reads: ETag, Retry-After) when to->origin is allowed; nothing otherwise.
 * The caller adds Vary: Origin in both cases, as the answer depends on it. Sends nothing.
 * @return 0, or the negative code of the header http_response_header refused
 */
__attribute__((warn_unused_result)) int stats_cors_headers(http_response_t *res,
                                                           const stats_reply_to_t *to);

/* {"error": {"code", "message"[, "parameter"]}} with status; 503 adds Retry-After, 401
 * WWW-Authenticate. */
void stats_respond_error(http_response_t *res, const stats_reply_to_t *to, int status,
                         const char *code, const char *parameter, const char *message);

/* 200 with the JSON body and its ETag, or 304 when if_none_match holds that tag. */
void stats_respond_body(http_response_t *res, const stats_reply_to_t *to, const char *if_none_match,
                        const char *body, size_t len);

/* 204 to an OPTIONS preflight. */
void stats_respond_preflight(http_response_t *res, const stats_reply_to_t *to);

#endif
