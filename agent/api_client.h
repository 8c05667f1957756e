/*
 * api_client — one blocking HTTP/1.1 GET against the statistics API, for commands that run
 * outside the agent's loop (`exectime-agent query`); nothing here may be called from the
 * loop. http:// only: TLS belongs to a reverse proxy in front of the agent, and a client
 * on the same host or network as it talks plain HTTP.
 *
 * The URL is "http://HOST[:PORT][/PREFIX]" (PREFIX when a proxy serves the API under a
 * path); HOST a name, an IPv4 address or a bracketed IPv6 address. Every address the name
 * resolves to is tried in turn. One deadline covers resolving aside, connecting, sending
 * and reading; the body is bounded (max_body), and chunked answers are decoded.
 *
 * Ownership: api_response_t's body is malloc'd by api_client_get and freed by
 * api_response_free (safe on a zeroed or already freed response). Errors: negative errno
 * codes with one line in err: -EINVAL for a URL that is not http://HOST..., -EHOSTUNREACH
 * when the name does not resolve or no address accepts, -ETIMEDOUT past the deadline,
 * -EMSGSIZE for a body over max_body, -EPROTO for an answer that is not HTTP, -ENOMEM.
 * Any HTTP status (200, 401, 503, ...) is a success of the call: the caller reads
 * out->status.
 */
#ifndef EXECTIME_API_CLIENT_H
#define EXECTIME_API_CLIENT_H

#include <stddef.h>

#define API_CLIENT_BODY_MAX (64u << 20) /* 64 MiB: a year of minute buckets fits */

typedef struct api_response {
    int status;            /* the HTTP status code */
    char *body;            /* NUL-terminated (the body may hold NULs: use body_len) */
    size_t body_len;       /* bytes of body, decoded when chunked */
    char content_type[96]; /* the Content-Type header, truncated; "" when absent */
} api_response_t;

/* A parsed http:// URL. */
typedef struct api_url {
    char host[256];   /* without the brackets of an IPv6 address */
    char port[8];     /* "80" when not given */
    char prefix[512]; /* path before /api/..., without the trailing slash; "" for none */
} api_url_t;

__attribute__((warn_unused_result)) int api_url_parse(const char *url, api_url_t *out, char *err,
                                                      size_t err_cap);

/*
 * GET prefix + path_query from url with "Authorization: Bearer token" when token is not
 * NULL, waiting at most timeout_ms in all, accepting at most max_body bytes of body.
 */
__attribute__((warn_unused_result)) int api_client_get(const api_url_t *url, const char *path_query,
                                                       const char *token, int timeout_ms,
                                                       size_t max_body, api_response_t *out,
                                                       char *err, size_t err_cap);

void api_response_free(api_response_t *r);

/* Appends value to out (of cap bytes, holding a NUL-terminated string) percent-encoded for
 * a query string: everything but RFC 3986's unreserved characters. -ENOSPC if it does not
 * fit (out is then unchanged). */
__attribute__((warn_unused_result)) int api_query_append(char *out, size_t cap, const char *name,
                                                         const char *value);

#endif
