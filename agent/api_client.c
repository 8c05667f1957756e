/* api_client — see api_client.h. */
#include "api_client.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int api_url_parse(const char *url, api_url_t *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(err, err_cap,
                 "\"%s\": https:// is not supported; give the agent's own http:// address "
                 "(TLS belongs to the proxy in front of it)",
                 url);
        return -EINVAL;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, err_cap, "\"%s\" is not an http://HOST[:PORT][/PATH] URL", url);
        return -EINVAL;
    }
    for (const char *c = url; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#' || *c == '@') {
            snprintf(err, err_cap, "\"%s\": an API URL has no spaces, query, fragment or user name",
                     url);
            return -EINVAL;
        }
    }
    const char *host = url + 7, *host_end, *rest;
    if (*host == '[') {
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(err, err_cap, "\"%s\": unclosed [ in the host", url);
            return -EINVAL;
        }
        host++;
        rest = host_end + 1;
    } else {
        host_end = host + strcspn(host, ":/");
        rest = host_end;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof out->host) {
        snprintf(err, err_cap, "\"%s\": no host, or a host name too long", url);
        return -EINVAL;
    }
    memcpy(out->host, host, host_len);
    snprintf(out->port, sizeof out->port, "80");
    if (*rest == ':') {
        rest++;
        size_t digits = strspn(rest, "0123456789");
        long port = digits > 0 && digits <= 5 ? strtol(rest, NULL, 10) : 0;
        if (port < 1 || port > 65535 || (rest[digits] != '\0' && rest[digits] != '/')) {
            snprintf(err, err_cap, "\"%s\": the port is not a number from 1 to 65535", url);
            return -EINVAL;
        }
        snprintf(out->port, sizeof out->port, "%ld", port);
        rest += digits;
    } else if (*rest != '\0' && *rest != '/') {
        snprintf(err, err_cap, "\"%s\": unexpected text after the host", url);
        return -EINVAL;
    }
    size_t prefix_len = strlen(rest);
    while (prefix_len > 0 && rest[prefix_len - 1] == '/')
        prefix_len--;
    if (prefix_len >= sizeof out->prefix) {
        snprintf(err, err_cap, "\"%s\": the path is too long", url);
        return -EINVAL;
    }
    memcpy(out->prefix, rest, prefix_len);
    return 0;
}

int api_query_append(char *out, size_t cap, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out), start = n;
    const char *parts[2] = {name, value};
    if (n + 1 >= cap)
        return -ENOSPC;
    out[n++] = start == 0 ? '?' : '&';
    for (int part = 0; part < 2; part++) {
        if (part == 1) {
            if (n + 1 >= cap)
                goto full;
            out[n++] = '=';
        }
        for (const unsigned char *c = (const unsigned char *)parts[part]; *c; c++) {
            bool plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                         (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' ||
                         *c == '~';
            if (n + (plain ? 1 : 3) >= cap)
                goto full;
            if (plain) {
                out[n++] = (char)*c;
            } else {
                out[n++] = '%';
                out[n++] = hex[*c >> 4];
                out[n++] = hex[*c & 15];
            }
        }
    }
    out[n] = '\0';
    return 0;
full:
    out[start] = '\0';
    return -ENOSPC;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline: 0 when ready, -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -errno;
    }
}

/* A non-blocking connect to one address, bounded by deadline: the socket, or -errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = -errno;
        if (rc == -EINPROGRESS) {
            rc = wait_fd(fd, POLLOUT, deadline);
            int so_error = 0;
            socklen_t len = sizeof so_error;
            if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) < 0)
                rc = -errno;
            else if (rc == 0 && so_error != 0)
                rc = -so_error;
        }
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* What the parser callbacks fill. */
typedef struct reader {
    api_response_t *res;
    size_t max_body;
    size_t body_cap;
    bool in_content_type; /* the header field being read is Content-Type */
    bool too_large;
    bool out_of_memory;
    bool complete;
} reader_t;

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    reader_t *r = p->data;
    /* A field name split across reads arrives in pieces; Content-Type is short enough
     * that the agent's and proxies' answers carry it whole. */
    r->in_content_type = len == 12 && strncasecmp(at, "Content-Type", 12) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    reader_t *r = p->data;
    if (r->in_content_type) {
        size_t have = strlen(r->res->content_type);
        size_t room = sizeof r->res->content_type - 1 - have;
        memcpy(r->res->content_type + have, at, len < room ? len : room);
        r->res->content_type[have + (len < room ? len : room)] = '\0';
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    reader_t *r = p->data;
    api_response_t *res = r->res;
    if (len > r->max_body - res->body_len) {
        r->too_large = true;
        return 1;
    }
    if (res->body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 16384;
        while (cap < res->body_len + len + 1)
            cap *= 2;
        char *grown = realloc(res->body, cap);
        if (grown == NULL) {
            r->out_of_memory = true;
            return 1;
        }
        res->body = grown;
        r->body_cap = cap;
    }
    memcpy(res->body + res->body_len, at, len);
    res->body_len += len;
    res->body[res->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    reader_t *r = p->data;
    r->complete = true;
    r->res->status = (int)p->status_code;
    return 0;
}

/* "GET ... HTTP/1.1" with its headers, malloc'd; NULL when out of memory. */
static char *build_request(const api_url_t *url, const char *path_query, const char *token)
{
    bool ipv6 = strchr(url->host, ':') != NULL;
    bool default_port = strcmp(url->port, "80") == 0;
    const char *fmt = "GET %s%s HTTP/1.1\r\n"
                      "Host: %s%s%s%s%s\r\n"
                      "User-Agent: exectime-agent/" EXECTIME_VERSION "\r\n"
                      "Accept: application/json\r\n"
                      "%s%s%s"
                      "Connection: close\r\n\r\n";
    const char *auth1 = token ? "Authorization: Bearer " : "", *auth2 = token ? token : "";
    const char *auth3 = token ? "\r\n" : "";
    int n =
        snprintf(NULL, 0, fmt, url->prefix, path_query, ipv6 ? "[" : "", url->host, ipv6 ? "]" : "",
                 default_port ? "" : ":", default_port ? "" : url->port, auth1, auth2, auth3);
    char *req = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (req)
        snprintf(req, (size_t)n + 1, fmt, url->prefix, path_query, ipv6 ? "[" : "", url->host,
                 ipv6 ? "]" : "", default_port ? "" : ":", default_port ? "" : url->port, auth1,
                 auth2, auth3);
    return req;
}

static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len > 0) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Reads the answer into res through http_parser until it is complete or the peer closes. */
static int read_answer(int fd, api_response_t *res, size_t max_body, int64_t deadline, char *err,
                       size_t err_cap)
{
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    reader_t r = {.res = res, .max_body = max_body};
    parser.data = &r;
    char buf[16384];
    while (!r.complete) {
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) {
            snprintf(err, err_cap, "%s",
                     rc == -ETIMEDOUT ? "no whole answer before the timeout" : strerror(-rc));
            return rc;
        }
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got < 0) {
            snprintf(err, err_cap, "reading the answer: %s", strerror(errno));
            return -errno;
        }
        /* Length 0 tells the parser the peer closed: the end of a body read to the close. */
        size_t used = http_parser_execute(&parser, &settings, buf, (size_t)got);
        if (r.too_large) {
            snprintf(err, err_cap, "the answer is larger than %zu bytes", max_body);
            return -EMSGSIZE;
        }
        if (r.out_of_memory) {
            snprintf(err, err_cap, "out of memory for the answer");
            return -ENOMEM;
        }
        if (got == 0 && !r.complete) {
            snprintf(err, err_cap, "the connection closed before the whole answer came");
            return -EPROTO;
        }
        if (!r.complete && (used != (size_t)got || HTTP_PARSER_ERRNO(&parser) != HPE_OK)) {
            snprintf(err, err_cap, "the answer is not HTTP (%s)",
                     http_errno_description(HTTP_PARSER_ERRNO(&parser)));
            return -EPROTO;
        }
    }
    if (res->body == NULL) {
        res->body = calloc(1, 1);
        if (res->body == NULL) {
            snprintf(err, err_cap, "out of memory for the answer");
            return -ENOMEM;
        }
    }
    return 0;
}

int api_client_get(const api_url_t *url, const char *path_query, const char *token, int timeout_ms,
                   size_t max_body, api_response_t *out, char *err, size_t err_cap)
{
    memset(out, 0, sizeof *out);
    if (token && strpbrk(token, "\r\n")) {
        snprintf(err, err_cap, "the token holds a line break");
        return -EINVAL;
    }
    int64_t deadline = now_ms() + timeout_ms;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(url->host, url->port, &hints, &list);
    if (gai != 0) {
        snprintf(err, err_cap, "cannot resolve %s: %s", url->host, gai_strerror(gai));
        return -EHOSTUNREACH;
    }
    int fd = -ECONNREFUSED;
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline);
    freeaddrinfo(list);
    if (fd < 0) {
        snprintf(err, err_cap, "cannot connect to %s port %s: %s", url->host, url->port,
                 fd == -ETIMEDOUT ? "no answer before the timeout" : strerror(-fd));
        return fd == -ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
    }
    char *req = build_request(url, path_query, token);
    int rc = req ? send_all(fd, req, strlen(req), deadline) : -ENOMEM;
    free(req);
    if (rc < 0)
        snprintf(err, err_cap, "sending the request to %s port %s: %s", url->host, url->port,
                 rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
    else
        rc = read_answer(fd, out, max_body, deadline, err, err_cap);
    close(fd);
    if (rc < 0)
        api_response_free(out);
    return rc;
}

void api_response_free(api_response_t *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}
