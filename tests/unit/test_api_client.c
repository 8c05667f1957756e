/* Unit tests for agent/api_client: the URL it accepts, the query strings it writes, and
 * what it makes of answers from a canned server (a child process that answers one
 * connection with given bytes): chunked bodies, refusals, oversized, cut-off, silent or
 * non-HTTP answers. Against a real agent: tests/integration/test_query.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_client.h"

static char err[256];

/* The canned server: its port, pid and the pipe the request it read comes back on. */
typedef struct canned {
    api_url_t url;
    pid_t pid;
    int request_fd;
} canned_t;

/* Serves one connection: reads the request head, sends reply (len bytes), then holds the
 * connection hold_ms before closing it. */
static canned_t serve_once(const char *reply, size_t len, int hold_ms)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(listener >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    cr_assert_eq(bind(listener, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(listen(listener, 1), 0);
    cr_assert_eq(getsockname(listener, (struct sockaddr *)&addr, &alen), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int c = accept(listener, NULL, NULL);
        char head[8192];
        size_t n = 0;
        while (c >= 0 && n < sizeof head - 1) {
            ssize_t got = read(c, head + n, sizeof head - 1 - n);
            if (got <= 0)
                break;
            n += (size_t)got;
            head[n] = '\0';
            if (strstr(head, "\r\n\r\n"))
                break;
        }
        if (write(fds[1], head, n) < 0)
            _exit(1);
        close(fds[1]);
        for (size_t sent = 0; c >= 0 && sent < len;) {
            ssize_t w = write(c, reply + sent, len - sent);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        usleep((useconds_t)hold_ms * 1000);
        _exit(0);
    }
    close(fds[1]);
    close(listener);
    canned_t s = {.pid = pid, .request_fd = fds[0]};
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/base", ntohs(addr.sin_port));
    cr_assert_eq(api_url_parse(url, &s.url, err, sizeof err), 0, "%s", err);
    return s;
}

static char *finish(canned_t *s)
{
    static char request[8192];
    ssize_t n = read(s->request_fd, request, sizeof request - 1);
    request[n > 0 ? n : 0] = '\0';
    close(s->request_fd);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return request;
}

#define REPLY(text) text, sizeof text - 1

Test(api_client, get_sends_the_token_and_reads_a_whole_answer)
{
    canned_t s = serve_once(REPLY("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 12\r\n\r\n{\"count\": 1}"),
                            0);
    api_response_t res;
    cr_assert_eq(api_client_get(&s.url, "/api/v1/x?a=1", "tok", 5000, 1024, &res, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(res.status, 200);
    cr_assert_str_eq(res.body, "{\"count\": 1}");
    cr_assert_eq(res.body_len, 12);
    cr_assert_str_eq(res.content_type, "application/json");
    api_response_free(&res);
    char *request = finish(&s);
    static const char line1[] = "GET /base/api/v1/x?a=1 HTTP/1.1\r\n";
    cr_assert(strncmp(request, line1, sizeof line1 - 1) == 0, "%s", request);
    cr_assert_not_null(strstr(request, "\r\nAuthorization: Bearer tok\r\n"), "%s", request);
    cr_assert_not_null(strstr(request, "\r\nHost: 127.0.0.1:"), "%s", request);
}

Test(api_client, chunked_and_read_to_close_bodies_are_whole)
{
    canned_t s = serve_once(REPLY("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "4\r\n{\"er\r\n6\r\nror\": \r\n3\r\n{}}\r\n0\r\n\r\n"),
                            0);
    api_response_t res;
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 5000, 1024, &res, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(res.status, 401);
    cr_assert_str_eq(res.body, "{\"error\": {}}");
    api_response_free(&res);
    char *request = finish(&s);
    cr_assert_null(strstr(request, "Authorization"), "no token, no header: %s", request);

    s = serve_once(REPLY("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy"), 0);
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 5000, 1024, &res, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(res.status, 503);
    cr_assert_str_eq(res.body, "busy");
    api_response_free(&res);
    finish(&s);
}

Test(api_client, bad_answers_are_named_errors)
{
    api_response_t res;
    canned_t s = serve_once(REPLY("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
                                  "0123456789"),
                            0);
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 5000, 16, &res, err, sizeof err), -EMSGSIZE);
    cr_assert_not_null(strstr(err, "larger than 16 bytes"), "%s", err);
    cr_assert_null(res.body);
    finish(&s);

    s = serve_once(REPLY("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"), 0);
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 5000, 1024, &res, err, sizeof err), -EPROTO);
    cr_assert_not_null(strstr(err, "closed before the whole answer"), "%s", err);
    finish(&s);

    s = serve_once(REPLY("SSH-2.0-OpenSSH_9.2\r\n"), 0);
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 5000, 1024, &res, err, sizeof err), -EPROTO);
    cr_assert_not_null(strstr(err, "not HTTP"), "%s", err);
    finish(&s);

    s = serve_once(REPLY("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"), 3000);
    cr_assert_eq(api_client_get(&s.url, "/", NULL, 300, 1024, &res, err, sizeof err), -ETIMEDOUT);
    cr_assert_not_null(strstr(err, "before the timeout"), "%s", err);
    finish(&s);

    cr_assert_eq(api_client_get(&s.url, "/", "a\r\nX-Evil: 1", 300, 1024, &res, err, sizeof err),
                 -EINVAL, "a token cannot add header lines");
}

Test(api_client, url_takes_host_port_and_a_proxy_prefix)
{
    api_url_t u;
    cr_assert_eq(api_url_parse("http://127.0.0.1:8080", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_str_eq(u.port, "8080");
    cr_assert_str_eq(u.prefix, "");
    cr_assert_eq(api_url_parse("HTTP://stats.example/exectime//", &u, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(u.host, "stats.example");
    cr_assert_str_eq(u.port, "80");
    cr_assert_str_eq(u.prefix, "/exectime", "trailing slashes dropped");
    cr_assert_eq(api_url_parse("http://[::1]:9/", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.port, "9");
}

Test(api_client, url_refuses_https_and_what_is_not_a_plain_http_url)
{
    api_url_t u;
    cr_assert_eq(api_url_parse("https://h", &u, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "https:// is not supported"), "%s", err);
    const char *bad[] = {"h:80",           "http://",      "http://:80",  "http://h:0",
                         "http://h:65536", "http://h:8x",  "http://[::1", "http://u@h",
                         "http://h/p?q=1", "http://h/a b", "http://h#f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(api_url_parse(bad[i], &u, err, sizeof err), -EINVAL, "%s accepted", bad[i]);
}

Test(api_client, query_values_are_percent_encoded_and_bounded)
{
    char q[64] = "";
    cr_assert_eq(api_query_append(q, sizeof q, "workflow_id", "wf,\"odd\" é"), 0);
    cr_assert_eq(api_query_append(q, sizeof q, "status", "failed"), 0);
    cr_assert_str_eq(q, "?workflow_id=wf%2C%22odd%22%20%C3%A9&status=failed");
    char small[16] = "";
    cr_assert_eq(api_query_append(small, sizeof small, "a", "bc"), 0);
    cr_assert_eq(api_query_append(small, sizeof small, "percentiles", "50"), -ENOSPC);
    cr_assert_str_eq(small, "?a=bc", "a value that does not fit leaves the string as it was");
}
