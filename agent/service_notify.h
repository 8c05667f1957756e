/*
 * service_notify — tells the service manager how the agent is doing, by systemd's notify
 * protocol (sd_notify(3)): READY=1 once the agent serves, STOPPING=1 when its shutdown
 * begins, STATUS= lines that follow /readyz, and WATCHDOG=1 pings while the loop turns.
 *
 * Nothing happens unless the manager asked for it (NOTIFY_SOCKET in the environment, as
 * systemd sets it for Type=notify units) and the agent was built with libsystemd (meson
 * option `systemd`, auto by default). So the same binary runs unchanged under systemd,
 * Kubernetes, a container runtime or a shell. A NOTIFY_SOCKET seen by a build without
 * libsystemd is reported once at warn: a Type=notify unit would wait for a READY=1 that
 * never comes.
 *
 * READY=1 goes out once both HTTP listeners are bound and every part has started, not when
 * /readyz first answers 200: the agent waits for Redis, PostgreSQL and a current schema by
 * design (backoff, re-checks), and a start job blocked on them would turn a database outage
 * or a pending migration into start timeouts, restart loops and a boot that never reaches
 * multi-user.target. The STATUS= line tells what /readyz says instead (docs/operations.md).
 *
 * Watchdog: when the manager sets WATCHDOG_USEC (WatchdogSec=), a libuv timer pings at half
 * that interval. The timer only fires while the loop turns, so a loop stuck in one callback
 * misses its pings and the manager kills and restarts the agent.
 *
 * Each message is one datagram to the manager's socket (libsystemd opens, sends and
 * closes); the manager drains it at once, and the agent sends at most one per tick (1 s, or
 * half the watchdog interval when that is shorter) plus the READY and STOPPING edges.
 *
 * Ownership: service_notify_t is embedded in its owner and holds one uv_timer_t on the
 * owner's loop: the owner calls service_notify_close and frees nothing before on_closed
 * runs. The readiness callback runs on the loop; it writes the /readyz JSON into the buffer
 * it is given (capacity included) and returns whether the agent is ready.
 * Errors: notifying is best effort. A failed send is logged once at warn and never stops
 * the agent: losing the manager's socket must not stop ingest.
 */
#ifndef EXECTIME_SERVICE_NOTIFY_H
#define EXECTIME_SERVICE_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SERVICE_STATUS_MAX 256

typedef bool (*service_readiness_fn)(void *arg, char *buf, size_t cap);

typedef struct service_notify {
    uv_timer_t tick; /* watchdog pings and STATUS= refresh */
    service_readiness_fn readiness;
    void *arg;
    void (*on_closed)(struct service_notify *n);
    bool enabled; /* NOTIFY_SOCKET set and libsystemd built in */
    bool ready_sent;
    bool stopping_sent;
    bool send_failed;                /* a send failed: warned once already */
    uint64_t watchdog_usec;          /* 0: no watchdog asked for */
    char status[SERVICE_STATUS_MAX]; /* the STATUS= text last sent */
} service_notify_t;

/* Reads the environment and initializes the timer (not started). Never fails. */
void service_notify_init(service_notify_t *n, uv_loop_t *loop, service_readiness_fn readiness,
                         void *arg);
/* READY=1 with the current status, then the ticks start. Only the first call sends. */
void service_notify_ready(service_notify_t *n);
/* STOPPING=1 and a status saying so; only the first call sends. Ticks go on. */
void service_notify_stopping(service_notify_t *n);
/* Sends STOPPING=1 if not sent yet, stops the ticks and closes the timer; on_closed runs
 * from the loop once it is closed. */
void service_notify_close(service_notify_t *n, void (*on_closed)(service_notify_t *n));

/*
 * The STATUS= text for a readiness answer: "ready" or "not ready: waiting for <parts>"
 * naming each part whose value in the /readyz JSON is false. Exposed for the unit tests.
 */
void service_status_text(bool ready, const char *readyz_json, char *out, size_t cap);

#endif
