/*
 * Integration tests of the systemd notify protocol (agent/service_notify.c): started as
 * systemd starts a Type=notify unit, with NOTIFY_SOCKET naming a datagram socket (here the
 * test's own, in the abstract namespace), the agent sends READY=1 once it serves, STATUS=
 * lines that follow /readyz, WATCHDOG=1 pings only when WATCHDOG_USEC asks for them, and
 * STOPPING=1 as soon as SIGTERM begins its shutdown, before it exits 0.
 *
 * The test drains the socket while it waits for anything: a Unix datagram queue holds
 * only a few messages (net.unix.max_dgram_qlen, 10 by default), and like systemd the
 * receiver must keep reading.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define MESSAGES_MAX (256 * 1024)

typedef struct notify_listener {
    int fd;
    char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16]; /* NOTIFY_SOCKET=@name */
    char messages[MESSAGES_MAX]; /* every datagram so far, each ending in "\n" */
    size_t len;
    int watchdog_pings;
    int ready_count;
} notify_listener_t;

static notify_listener_t listener;

/* An abstract socket: nothing to remove from the file system, however the test ends. */
static void listener_open(notify_listener_t *l)
{
    memset(l, 0, sizeof *l);
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert(l->fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    char name[64];
    snprintf(name, sizeof name, "exectime-it-notify-%d-%lld", (int)getpid(),
             (long long)it_now_ms());
    memcpy(addr.sun_path + 1, name, strlen(name)); /* sun_path[0] = 0: abstract */
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    cr_assert(bind(l->fd, (struct sockaddr *)&addr, addr_len) == 0, "bind: %s", strerror(errno));
    snprintf(l->env, sizeof l->env, "NOTIFY_SOCKET=@%s", name);
}

/* Reads every datagram waiting, appending each to messages. */
static void listener_drain(notify_listener_t *l)
{
    for (;;) {
        char buf[4096];
        ssize_t n = recv(l->fd, buf, sizeof buf - 1, 0);
        if (n < 0) {
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR, "recv: %s",
                      strerror(errno));
            if (errno != EINTR)
                return;
            continue;
        }
        buf[n] = '\0';
        for (const char *p = buf; (p = strstr(p, "WATCHDOG=1")) != NULL; p++)
            l->watchdog_pings++;
        for (const char *p = buf; (p = strstr(p, "READY=1")) != NULL; p++)
            l->ready_count++;
        cr_assert(l->len + (size_t)n + 2 < sizeof l->messages, "too many notifications");
        memcpy(l->messages + l->len, buf, (size_t)n);
        l->len += (size_t)n;
        if (n == 0 || buf[n - 1] != '\n')
            l->messages[l->len++] = '\n';
        l->messages[l->len] = '\0';
    }
}

static bool listener_has(notify_listener_t *l, const char *line)
{
    listener_drain(l);
    return strstr(l->messages, line) != NULL;
}

static bool ready_and_drained(notify_listener_t *l, const it_agent_t *a)
{
    listener_drain(l);
    return it_http_get(a->port, "/readyz", NULL) == 200;
}

/* Sleeps ms while draining, so the agent never waits on a full queue. */
static void drain_for(notify_listener_t *l, int ms)
{
    int64_t until = it_now_ms() + ms;
    while (it_now_ms() < until) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        (void)poll(&p, 1, 50);
        listener_drain(l);
    }
}

/* SIGTERM; STOPPING=1 must come before the exit, and the exit must be clean. */
static void stop_and_expect_stopping(notify_listener_t *l, it_agent_t *a)
{
    it_agent_signal(a, SIGTERM);
    a->expect_exit = true;
    IT_WAIT_UNTIL(listener_has(l, "STOPPING=1"), IT_WAIT_MS,
                  "no STOPPING=1 after SIGTERM; received:\n%s", l->messages);
    /* it_check_agents, run by the wait, reaps the agent (its exit is expected). */
    IT_WAIT_UNTIL((listener_drain(l), a->pid == 0), IT_WAIT_MS,
                  "the agent did not exit after SIGTERM");
    int status = a->wait_status;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "exit status 0x%x after SIGTERM, expected a clean exit 0", status);
    listener_drain(l);
    const char *stopping = strstr(l->messages, "STOPPING=1");
    cr_assert(strstr(stopping, "STATUS=stopping") != NULL,
              "STOPPING=1 without a stopping status:\n%s", l->messages);
    cr_assert_eq(l->ready_count, 1, "READY=1 sent %d times:\n%s", l->ready_count, l->messages);
}

Test(service_notify, agent_sends_ready_status_watchdog_and_stopping, IT_TEST_OPTS)
{
    listener_open(&listener);
    /* 1 s: a ping every 500 ms, so a few arrive within seconds. */
    const char *env[] = {listener.env, "WATCHDOG_USEC=1000000", NULL};
    it_agent_t *a = it_agent_start("c1", env);

    IT_WAIT_UNTIL(listener_has(&listener, "READY=1"), IT_WAIT_MS,
                  "no READY=1 from the agent; received:\n%s", listener.messages);
    cr_assert(strstr(listener.messages, "STATUS=") != NULL,
              "READY=1 came without a STATUS= line:\n%s", listener.messages);
    IT_WAIT_UNTIL(ready_and_drained(&listener, a), IT_WAIT_MS, "/readyz never answered 200");
    /* The status follows /readyz within a tick (500 ms here). */
    IT_WAIT_UNTIL(listener_has(&listener, "STATUS=ready\n"), IT_WAIT_MS,
                  "/readyz is 200 but no STATUS=ready came; received:\n%s", listener.messages);
    int pings = listener.watchdog_pings;
    IT_WAIT_UNTIL((listener_drain(&listener), listener.watchdog_pings >= pings + 2), IT_WAIT_MS,
                  "fewer than two WATCHDOG=1 pings; received:\n%s", listener.messages);

    stop_and_expect_stopping(&listener, a);
    close(listener.fd);
    it_pass();
}

Test(service_notify, agent_without_watchdog_usec_sends_no_pings, IT_TEST_OPTS)
{
    listener_open(&listener);
    const char *env[] = {listener.env, NULL};
    it_agent_t *a = it_agent_start("c1", env);

    IT_WAIT_UNTIL(listener_has(&listener, "READY=1"), IT_WAIT_MS,
                  "no READY=1 from the agent; received:\n%s", listener.messages);
    IT_WAIT_UNTIL(ready_and_drained(&listener, a), IT_WAIT_MS, "/readyz never answered 200");
    drain_for(&listener, 2500); /* more than two status ticks */
    cr_assert_eq(listener.watchdog_pings, 0, "WATCHDOG=1 sent without WATCHDOG_USEC:\n%s",
                 listener.messages);

    stop_and_expect_stopping(&listener, a);
    close(listener.fd);
    it_pass();
}
