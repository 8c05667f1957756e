/*
 * redis_url — parses the Redis URL forms the agent and the emitter accept:
 *
 *   redis://[[user]:password@]host[:port][/db]     host may be [IPv6]
 *   unix://[[user]:password@]/path/to.sock[?db=N]
 *
 * As in redis-cli, userinfo without a ':' is the password alone. Everything is checked
 * strictly and every failure says why, because the URL comes from configuration and the
 * reason ends up in the one line that stops start-up.
 */
#include "redis_url.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define REDIS_DEFAULT_PORT 6379
#define REDIS_DB_MAX 2147483647L

/* A view into the URL: not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span_t;

__attribute__((format(printf, 3, 4))) static int fail(char *reason, size_t cap, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (reason != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(reason, cap, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != *prefix)
            return false;
    }
    return true;
}

static const char *span_find(span_t s, char c)
{
    return s.n == 0 ? NULL : memchr(s.p, c, s.n);
}

/* Bounded copy into a fixed field; too long is an error, never a silent truncation. */
static int copy_field(char *dst, size_t cap, span_t src, const char *what, char *reason,
                      size_t rcap)
{
    if (src.n >= cap)
        return fail(reason, rcap, "%s is too long (%zu bytes, at most %zu)", what, src.n, cap - 1);
    memcpy(dst, src.p, src.n);
    dst[src.n] = '\0';
    return 0;
}

/* Decimal digits only (no sign, no space), value in [lo, hi]. */
static bool parse_uint(span_t s, long lo, long hi, long *out)
{
    long v = 0;

    if (s.n == 0 || s.n > 10)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "[user]:password" or "password" (redis-cli's reading); both parts bounded. */
static int parse_userinfo(span_t ui, et_redis_url_t *u, char *reason, size_t rcap)
{
    const char *colon = span_find(ui, ':');
    span_t user = {ui.p, 0}, pass = ui;
    int rc;

    if (colon != NULL) {
        user.n = (size_t)(colon - ui.p);
        pass.p = colon + 1;
        pass.n = ui.n - user.n - 1;
    }
    if (pass.n == 0)
        return fail(reason, rcap, "empty password before '@' (omit the user info for no AUTH)");
    rc = copy_field(u->username, sizeof(u->username), user, "username", reason, rcap);
    if (rc == 0)
        rc = copy_field(u->password, sizeof(u->password), pass, "password", reason, rcap);
    return rc;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool is_ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

/* host[:port] or [ipv6][:port]; the host is stored without brackets, as hiredis wants. */
static int parse_hostport(span_t hp, et_redis_url_t *u, char *reason, size_t rcap)
{
    span_t host, port = {NULL, 0};
    bool has_port = false;
    long v;

    if (hp.n > 0 && hp.p[0] == '[') {
        const char *close = span_find(hp, ']');
        size_t after;

        if (close == NULL)
            return fail(reason, rcap, "IPv6 host is missing its closing ']'");
        host.p = hp.p + 1;
        host.n = (size_t)(close - host.p);
        if (host.n == 0 || span_find(host, ':') == NULL)
            return fail(reason, rcap, "bracketed host must be an IPv6 address");
        for (size_t i = 0; i < host.n; i++) {
            if (!is_ipv6_char(host.p[i]))
                return fail(reason, rcap, "invalid character '%c' in IPv6 address", host.p[i]);
        }
        after = hp.n - (size_t)(close + 1 - hp.p);
        if (after > 0) {
            if (close[1] != ':')
                return fail(reason, rcap, "unexpected '%c' after ']'", close[1]);
            has_port = true;
            port.p = close + 2;
            port.n = after - 1;
        }
    } else {
        const char *colon = span_find(hp, ':');

        host = hp;
        if (colon != NULL) {
            host.n = (size_t)(colon - hp.p);
            has_port = true;
            port.p = colon + 1;
            port.n = hp.n - host.n - 1;
            if (span_find(port, ':') != NULL)
                return fail(reason, rcap, "IPv6 address must be written in brackets: [::1]");
        }
        if (host.n == 0)
            return fail(reason, rcap, "host is empty");
        for (size_t i = 0; i < host.n; i++) {
            if (!is_host_char(host.p[i]))
                return fail(reason, rcap, "invalid character '%c' in host", host.p[i]);
        }
    }

    if (has_port) {
        if (!parse_uint(port, 1, 65535, &v))
            return fail(reason, rcap, "port must be a number from 1 to 65535");
        u->port = (int)v;
    }
    return copy_field(u->host, sizeof(u->host), host, "host", reason, rcap);
}

static int parse_db(span_t s, et_redis_url_t *u, char *reason, size_t rcap)
{
    long v;

    if (!parse_uint(s, 0, REDIS_DB_MAX, &v))
        return fail(reason, rcap, "db must be a number from 0 to 2147483647");
    u->db = (int)v;
    return 0;
}

/* Splits off "userinfo@" from the authority, at its last '@' so '@' may appear in a
 * password. */
static int split_userinfo(span_t *auth, et_redis_url_t *u, char *reason, size_t rcap)
{
    const char *at = NULL;

    for (size_t i = auth->n; i > 0; i--) {
        if (auth->p[i - 1] == '@') {
            at = auth->p + i - 1;
            break;
        }
    }
    if (at != NULL) {
        span_t ui = {auth->p, (size_t)(at - auth->p)};
        int rc = parse_userinfo(ui, u, reason, rcap);

        if (rc != 0)
            return rc;
        auth->n -= ui.n + 1;
        auth->p = at + 1;
    }
    return 0;
}

/* After "redis://": authority, then an optional "/db". */
static int parse_tcp(const char *rest, et_redis_url_t *u, char *reason, size_t rcap)
{
    span_t all = {rest, strlen(rest)};
    const char *slash;
    span_t auth = all;
    int rc;

    if (span_find(all, '?') != NULL)
        return fail(reason, rcap, "query parameters are not supported; give the db as /N");
    if (span_find(all, '#') != NULL)
        return fail(reason, rcap, "a '#' fragment is not allowed");

    slash = span_find(all, '/');
    if (slash != NULL)
        auth.n = (size_t)(slash - rest);
    rc = split_userinfo(&auth, u, reason, rcap);
    if (rc == 0)
        rc = parse_hostport(auth, u, reason, rcap);
    if (rc == 0 && slash != NULL && slash[1] != '\0') {
        span_t db = {slash + 1, all.n - (size_t)(slash + 1 - rest)};
        rc = parse_db(db, u, reason, rcap);
    }
    return rc;
}

/* After "unix://": optional "userinfo@", an absolute path, an optional "?db=N". */
static int parse_unix(const char *rest, et_redis_url_t *u, char *reason, size_t rcap)
{
    span_t all = {rest, strlen(rest)};
    const char *slash = span_find(all, '/');
    const char *q;
    span_t auth, path;
    int rc;

    if (slash == NULL)
        return fail(reason, rcap, "unix:// needs an absolute socket path: unix:///path");
    auth.p = rest;
    auth.n = (size_t)(slash - rest);
    rc = split_userinfo(&auth, u, reason, rcap);
    if (rc != 0)
        return rc;
    if (auth.n != 0)
        return fail(reason, rcap, "unix:// takes no host: write unix:///path/to.sock");
    if (span_find(all, '#') != NULL)
        return fail(reason, rcap, "a '#' fragment is not allowed");

    path.p = slash;
    path.n = all.n - (size_t)(slash - rest);
    q = span_find(path, '?');
    if (q != NULL) {
        span_t query = {q + 1, path.n - (size_t)(q - path.p) - 1};

        path.n = (size_t)(q - path.p);
        if (query.n < 3 || memcmp(query.p, "db=", 3) != 0)
            return fail(reason, rcap, "the only query parameter allowed is ?db=N");
        query.p += 3;
        query.n -= 3;
        rc = parse_db(query, u, reason, rcap);
        if (rc != 0)
            return rc;
    }
    if (path.n <= 1)
        return fail(reason, rcap, "unix socket path is empty");
    return copy_field(u->unix_path, sizeof(u->unix_path), path, "unix socket path", reason, rcap);
}

/* Parses into a local copy so *out is only written on success. */
int et_redis_url_parse(const char *url, et_redis_url_t *out, char *reason, size_t reason_cap)
{
    et_redis_url_t u;
    int rc;

    if (reason != NULL && reason_cap > 0)
        reason[0] = '\0';
    if (url == NULL || url[0] == '\0')
        return fail(reason, reason_cap, "URL is empty");
    for (const char *p = url; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == 0x7f)
            return fail(reason, reason_cap, "URL contains a space or control character");
    }
    if (strchr(url, '%') != NULL)
        return fail(reason, reason_cap,
                    "percent-encoding ('%%') is not supported; write the characters as they are");

    memset(&u, 0, sizeof(u));
    u.port = REDIS_DEFAULT_PORT;
    if (has_prefix_ci(url, "rediss://"))
        return fail(reason, reason_cap,
                    "rediss:// (TLS) is not supported; use redis:// or unix://, or a TLS proxy");
    if (has_prefix_ci(url, "redis://"))
        rc = parse_tcp(url + strlen("redis://"), &u, reason, reason_cap);
    else if (has_prefix_ci(url, "unix://"))
        rc = parse_unix(url + strlen("unix://"), &u, reason, reason_cap);
    else
        rc = fail(reason, reason_cap, "URL must start with redis:// or unix://");
    if (rc != 0)
        return rc;
    *out = u;
    return 0;
}
