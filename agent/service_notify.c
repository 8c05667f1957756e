/* service_notify — see service_notify.h. */
#include "service_notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_macros.h"
#include "log.h"

#ifdef EXECTIME_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#define NOTIFY_BUILT_IN true
#else
/* Built without libsystemd: nothing is ever sent (service_notify_init keeps it disabled). */
#define NOTIFY_BUILT_IN false
static int sd_notify(int unset_environment, const char *state)
{
    (void)unset_environment;
    (void)state;
    return 0;
}
static int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
    (void)unset_environment;
    *usec = 0;
    return 0;
}
#endif

#define TICK_MAX_MS 1000
/* "STATUS=" + the text + the READY=1/STOPPING=1/WATCHDOG=1 lines that may share a datagram */
#define MESSAGE_MAX (SERVICE_STATUS_MAX + 64)
#define READYZ_MAX 512

void service_status_text(bool ready, const char *readyz_json, char *out, size_t cap)
{
    if (ready) {
        snprintf(out, cap, "ready");
        return;
    }
    size_t len = (size_t)snprintf(out, cap, "not ready: waiting for");
    bool named = false;
    /* Each "name":false pair of our own /readyz JSON, in order. "stopping" is the one key
     * whose false is good news. */
    for (const char *p = strstr(readyz_json, "\":false"); p && len < cap;
         p = strstr(p + 1, "\":false")) {
        const char *start = p;
        while (start > readyz_json && start[-1] != '"')
            start--;
        int name_len = (int)(p - start);
        if (start == readyz_json || (name_len == 8 && memcmp(start, "stopping", 8) == 0))
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s %.*s", named ? "," : "", name_len, start);
        named = true;
    }
    if (!named && len < cap)
        snprintf(out + len, cap - len, " start-up");
}

/* Sends one datagram; the first failure is logged, later ones are not (one a tick). */
static void send_message(service_notify_t *n, const char *message)
{
    int rc = sd_notify(0, message);
    if (rc >= 0 || n->send_failed)
        return;
    n->send_failed = true;
    log_write(LOG_WARN, "cannot notify the service manager; carrying on without it", "error",
              strerror(-rc), NULL);
}

/* Appends "STATUS=<text>\n" to message when the status changed since the last send. */
static size_t append_status(service_notify_t *n, const char *text, char *message, size_t len,
                            size_t cap)
{
    if (strcmp(text, n->status) == 0 || len >= cap)
        return len;
    snprintf(n->status, sizeof n->status, "%s", text);
    return len + (size_t)snprintf(message + len, cap - len, "STATUS=%s\n", n->status);
}

static size_t append_readiness(service_notify_t *n, char *message, size_t len, size_t cap)
{
    char readyz[READYZ_MAX];
    char text[SERVICE_STATUS_MAX];
    readyz[0] = '\0';
    bool ready = n->readiness(n->arg, readyz, sizeof readyz);
    service_status_text(ready, readyz, text, sizeof text);
    return append_status(n, text, message, len, cap);
}

static void on_tick(uv_timer_t *timer)
{
    service_notify_t *n = container_of(timer, service_notify_t, tick);
    char message[MESSAGE_MAX];
    size_t len = 0;
    if (n->watchdog_usec > 0)
        len = (size_t)snprintf(message, sizeof message, "WATCHDOG=1\n");
    if (!n->stopping_sent)
        len = append_readiness(n, message, len, sizeof message);
    if (len > 0)
        send_message(n, message);
}

void service_notify_init(service_notify_t *n, uv_loop_t *loop, service_readiness_fn readiness,
                         void *arg)
{
    memset(n, 0, sizeof *n);
    n->readiness = readiness;
    n->arg = arg;
    uv_timer_init(loop, &n->tick);
    uv_unref((uv_handle_t *)&n->tick); /* never what keeps the loop running */
    const char *socket_path = getenv("NOTIFY_SOCKET");
    if (socket_path == NULL || socket_path[0] == '\0')
        return;
    if (!NOTIFY_BUILT_IN) {
        log_write(LOG_WARN,
                  "NOTIFY_SOCKET is set but this agent was built without libsystemd "
                  "(meson -Dsystemd=disabled): use Type=simple",
                  NULL);
        return;
    }
    n->enabled = true;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        n->watchdog_usec = usec;
}

void service_notify_ready(service_notify_t *n)
{
    if (!n->enabled || n->ready_sent)
        return;
    n->ready_sent = true;
    char message[MESSAGE_MAX];
    size_t len = (size_t)snprintf(message, sizeof message, "READY=1\n");
    len = append_readiness(n, message, len, sizeof message);
    send_message(n, message);
    uint64_t tick_ms = TICK_MAX_MS;
    if (n->watchdog_usec > 0 && n->watchdog_usec / 2000 < tick_ms)
        tick_ms = n->watchdog_usec / 2000 > 0 ? n->watchdog_usec / 2000 : 1;
    uv_timer_start(&n->tick, on_tick, tick_ms, tick_ms);
    char watchdog_ms[24];
    snprintf(watchdog_ms, sizeof watchdog_ms, "%llu",
             (unsigned long long)(n->watchdog_usec / 1000));
    log_write(LOG_INFO, "service manager notified: ready", "watchdog_ms", watchdog_ms, NULL);
}

void service_notify_stopping(service_notify_t *n)
{
    if (!n->enabled || n->stopping_sent)
        return;
    n->stopping_sent = true;
    char message[MESSAGE_MAX];
    size_t len = (size_t)snprintf(message, sizeof message, "STOPPING=1\n");
    append_status(n, "stopping: committing what is in flight", message, len, sizeof message);
    send_message(n, message);
}

static void on_tick_closed(uv_handle_t *handle)
{
    service_notify_t *n = container_of((uv_timer_t *)handle, service_notify_t, tick);
    if (n->on_closed)
        n->on_closed(n);
}

void service_notify_close(service_notify_t *n, void (*on_closed)(service_notify_t *n))
{
    service_notify_stopping(n);
    n->on_closed = on_closed;
    uv_close((uv_handle_t *)&n->tick, on_tick_closed);
}
