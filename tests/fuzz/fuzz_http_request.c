/*
 * libFuzzer target for the HTTP request path: the bytes a client sends, through the real
 * server (agent/http_server.c: http-parser and its callbacks, limits, keep-alive and
 * pipelining, the connection state machine), the router (agent/router.c), the dashboard
 * files (agent/static_assets.c) and the statistics handler up to the database
 * (agent/stats_query.c: CORS, method, token via agent/auth.c, parameters via
 * agent/api_params.c, tenant choice and query plan; its pool never connects, so an
 * admitted request is answered 503).
 *
 * http_server.c takes requests only from a socket, so each input is one real loopback
 * TCP connection on one libuv loop shared by every input: the client writes the input,
 * shuts down its sending side and reads until the server closes; the loop runs until
 * both ends are closed, so every allocation of an input is freed within it (libFuzzer's
 * leak check holds per input). No part of the path is mocked; only the readiness
 * callback, the agent's, is a constant here.
 *
 * Tokens: "$TOKEN1" in the input becomes a valid token for the single tenant "tenant-1",
 * and "$TOKEN" one for the tenants "tenant-1" and "tenant-2", both HS256 with
 * FUZZ_SECRET, so the seed corpus stays readable and the fuzzer gets past the signature.
 *
 * Beyond "never crash": whatever the server writes back parses as a sequence of
 * HTTP/1.1 responses (unless a HEAD request makes the bodies unknowable to a parser),
 * and every status the server reports is 100-599.
 *
 * FUZZ_HTTP_PRINT=1 in the environment prints each input's responses (to check what a
 * seed reaches: build-fuzz/tests/fuzz/fuzz_http_request corpus/fuzz_http_request/<file>).
 */
#include <errno.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "auth.h"
#include "fuzz_jwt.h"
#include "config.h"
#include "http_server.h"
#include "log.h"
#include "router.h"
#include "static_assets.h"
#include "stats_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_SECRET "fuzz-secret-0123456789abcdef0123"
#define INPUT_MAX (64 * 1024)    /* the server refuses more anyway (body, headers, URL) */
#define OUTPUT_MAX (1024 * 1024) /* responses kept for the check; more is dropped */

static struct {
    uv_loop_t loop;
    config_t cfg;
    stats_api_t api;
    static_assets_t assets;
    router_t router;
    http_server_t server;
    struct sockaddr_in addr;
    char token_many[512]; /* "$TOKEN" */
    char token_one[512];  /* "$TOKEN1" */
} fz;

/* One input's client connection. */
typedef struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_shutdown_t shutdown;
    uv_buf_t request;
    char *out;
    size_t out_len;
    bool closed;
} client_t;

/* ---- set-up, once per process ---- */

/* An HS256 JWT for payload (exp in 2100: stats_query reads the real clock). */
static void make_token(const char *payload, char *out)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    fuzz_jwt_sign(FUZZ_SECRET, header, sizeof header - 1, payload, strlen(payload), out);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        abort();
}

static bool readiness(void *arg, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"status\":\"not ready\",\"fuzz\":true}");
    return false;
}

static bool assets(void *arg, const http_request_t *req, http_response_t *res)
{
    return static_assets_serve(&fz.assets, fz.cfg.cors_origins, req, res);
}

static void statistics(void *arg, const http_request_t *req, http_response_t *res)
{
    stats_api_handle(&fz.api, req, res);
}

static void observe(void *arg, const http_request_t *req, const char *request_id, int status,
                    double seconds)
{
    if (status < 100 || status > 599)
        abort();
}

static void setup(void)
{
    char err[256];
    log_configure(LOG_ERROR, false);
    if (uv_loop_init(&fz.loop) != 0)
        abort();
    config_defaults(&fz.cfg);
    snprintf(fz.cfg.jwt_secret, sizeof fz.cfg.jwt_secret, "%s", FUZZ_SECRET);
    /* Never started: the pool has no session, so the handler answers 503 after the
     * checks this target is about. */
    snprintf(fz.cfg.database_url, sizeof fz.cfg.database_url, "postgresql://fuzz@127.0.0.1:1/fuzz");
    snprintf(fz.cfg.cors_origins, sizeof fz.cfg.cors_origins, "https://app.example");

    /* The dashboard files come from a directory read at start-up: a small one here. */
    char dir[] = "/tmp/fuzz_http_request.XXXXXX";
    if (mkdtemp(dir) == NULL)
        abort();
    write_file(dir, "dashboard.html", "<!doctype html><title>exectime</title>\n");
    write_file(dir, "exectime-widget.js", "customElements.define('x-y', class {});\n");
    snprintf(fz.cfg.ui_dir, sizeof fz.cfg.ui_dir, "%s", dir);
    if (static_assets_load(&fz.assets, dir) != STATIC_ASSET_COUNT)
        abort();
    char path[512];
    snprintf(path, sizeof path, "%s/dashboard.html", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/exectime-widget.js", dir);
    unlink(path);
    rmdir(dir);

    if (stats_api_init(&fz.api, &fz.loop, &fz.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_http_request: %s\n", err);
        abort();
    }
    router_ops_t ops = {readiness, NULL, assets, statistics, NULL, NULL};
    router_init(&fz.router, &ops);
    if (http_server_init(&fz.server, &fz.loop, NULL, router_handle, &fz.router) != 0 ||
        http_server_listen(&fz.server, "127.0.0.1:0", err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_http_request: %s\n", err);
        abort();
    }
    http_server_set_observer(&fz.server, observe, NULL);
    if (uv_ip4_addr("127.0.0.1", http_server_port(&fz.server), &fz.addr) != 0)
        abort();
    make_token("{\"sub\":\"fuzz\",\"role\":\"authenticated\","
               "\"tenant_ids\":[\"tenant-1\",\"tenant-2\"],\"exp\":4102444800}",
               fz.token_many);
    make_token("{\"sub\":\"fuzz\",\"role\":\"authenticated\",\"tenant_id\":\"tenant-1\","
               "\"exp\":4102444800}",
               fz.token_one);
}

/* ---- one input ---- */

/* Copies data into a new buffer with the token placeholders replaced. */
static char *expand(const uint8_t *data, size_t size, size_t *out_len)
{
    size_t cap = size + 1;
    for (size_t i = 0; i + 6 <= size; i++) {
        if (memcmp(data + i, "$TOKEN", 6) == 0)
            cap += sizeof fz.token_many;
    }
    char *out = malloc(cap);
    if (out == NULL)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        const char *tok = NULL;
        size_t skip = 0;
        if (size - i >= 7 && memcmp(data + i, "$TOKEN1", 7) == 0) {
            tok = fz.token_one;
            skip = 7;
        } else if (size - i >= 6 && memcmp(data + i, "$TOKEN", 6) == 0) {
            tok = fz.token_many;
            skip = 6;
        }
        if (tok != NULL) {
            size_t n = strlen(tok);
            memcpy(out + o, tok, n);
            o += n;
            i += skip;
        } else {
            out[o++] = (char)data[i++];
        }
    }
    *out_len = o;
    return out;
}

static void client_on_close(uv_handle_t *h)
{
    client_t *c = h->data;
    c->closed = true;
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[64 * 1024];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void client_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = s->data;
    if (nread > 0) {
        size_t n = (size_t)nread;
        if (c->out_len + n > OUTPUT_MAX)
            n = OUTPUT_MAX - c->out_len;
        memcpy(c->out + c->out_len, buf->base, n);
        c->out_len += n;
    } else if (nread < 0) {
        uv_close((uv_handle_t *)s, client_on_close); /* EOF, or a reset from the server */
    }
}

static void client_on_shutdown(uv_shutdown_t *req, int status)
{
}

static void client_on_write(uv_write_t *req, int status)
{
}

static void client_on_connect(uv_connect_t *req, int status)
{
    client_t *c = req->data;
    if (status < 0) {
        uv_close((uv_handle_t *)&c->tcp, client_on_close);
        return;
    }
    /* A refused write or shutdown (the server already closed) shows as a read error. */
    if (c->request.len > 0)
        (void)uv_write(&c->write, (uv_stream_t *)&c->tcp, &c->request, 1, client_on_write);
    (void)uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, client_on_shutdown);
    if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_on_read) < 0)
        uv_close((uv_handle_t *)&c->tcp, client_on_close);
}

/* The responses must parse as HTTP/1.1; a HEAD request's bodiless answers cannot. */
static void check_responses(const char *req, size_t req_len, const char *out, size_t len)
{
    if (len == 0 || len == OUTPUT_MAX || memmem(req, req_len, "HEAD", 4) != NULL)
        return;
    static const http_parser_settings none;
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    size_t n = http_parser_execute(&p, &none, out, len);
    if (HTTP_PARSER_ERRNO(&p) == HPE_OK && n == len)
        http_parser_execute(&p, &none, out, 0); /* end of input */
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK) {
        fprintf(stderr, "fuzz_http_request: unparsable response (%s):\n%.*s\n",
                http_errno_name(HTTP_PARSER_ERRNO(&p)), (int)(len > 2048 ? 2048 : len), out);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > INPUT_MAX)
        return 0;
    client_t *c = calloc(1, sizeof *c);
    if (c == NULL || (c->out = malloc(OUTPUT_MAX)) == NULL)
        abort();
    size_t req_len = 0;
    char *req = expand(data, size, &req_len);
    c->request = uv_buf_init(req, (unsigned)req_len);
    if (uv_tcp_init_ex(&fz.loop, &c->tcp, AF_INET) != 0)
        abort();
    /* The client half-closes first, so each of its sockets ends in TIME_WAIT on an
     * ephemeral port for a minute: thousands a second cover the whole range, where the
     * test servers listen too (55442, 56389). Marked SO_REUSEADDR, those leftovers no
     * longer stop a server that binds with SO_REUSEADDR (PostgreSQL, Redis and libuv all
     * do) from starting meanwhile. */
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        abort();
    c->tcp.data = c;
    c->connect.data = c;
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&fz.addr,
                       client_on_connect) != 0)
        abort();
    /* Until the client has closed and the server has let go of every connection. */
    while (!c->closed || http_server_connections(&fz.server) > 0)
        uv_run(&fz.loop, UV_RUN_ONCE);
    if (getenv("FUZZ_HTTP_PRINT") != NULL)
        fprintf(stderr, "%.*s\n", (int)c->out_len, c->out);
    check_responses(req, req_len, c->out, c->out_len);
    free(req);
    free(c->out);
    free(c);
    return 0;
}
