/*
 * harness — what the integration tests share: real PostgreSQL and Redis servers and the
 * agent binary as a child process (oracle.h has the events and the checks).
 *
 * Servers come from EXECTIME_TEST_ADMIN_DATABASE_URL (a superuser) and
 * EXECTIME_TEST_REDIS_URL; when either is missing the test FAILS and says which variable
 * to set (deploy/local/test sets both). The binaries come from EXECTIME_AGENT_BIN (and
 * EXECTIME_PYTHON, EXECTIME_PUBLISH_PY for the other-language publisher), which
 * tests/integration/meson.build sets.
 *
 * Every test runs it_setup() first and it_teardown() last (criterion .init/.fini, see
 * IT_TEST_OPTS). Setup gives the test its own database (exectime_it_<pid>_<n>, migrated
 * with `exectime-agent migrate`, login role exectime_agent granted exectime_writer and
 * exectime_reader), its own stream key, dead-letter key and consumer group, and a
 * temporary directory for logs. Teardown kills agents still running, prints their logs
 * unless the test reached it_pass(), drops the database and deletes the keys.
 *
 * Waits poll a condition with a generous bound (IT_WAIT_MS) and never assert a wall-clock
 * duration; while waiting they check that no agent died unexpectedly.
 *
 * Ownership: the harness owns the global context `it`, every it_agent_t it hands out and
 * the connections in `it`; they live until it_teardown. Strings returned through char **
 * are malloc'd and freed by the caller. Any failure inside a helper fails the test (a
 * criterion assertion), so helpers return only good values.
 */
#ifndef EXECTIME_IT_HARNESS_H
#define EXECTIME_IT_HARNESS_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "emitter.h"

#define IT_WAIT_MS 120000 /* bound of every wait: generous, ASan on 2 busy cores */
#define IT_AGENTS_MAX 24  /* the fault tests restart agents many times */
#define IT_STREAMS_MAX 2
#define IT_TEST_OPTS .init = it_setup, .fini = it_teardown, .timeout = 400

/* One agent child process. */
typedef struct it_agent {
    pid_t pid;        /* 0 once reaped */
    int port;         /* HTTP on 127.0.0.1 */
    int wait_status;  /* waitpid status, once reaped */
    bool expect_exit; /* the test ended it (or expects it to end) on purpose */
    bool signalled;   /* the test sent it a signal */
    char consumer[64];
    char log_path[512];
} it_agent_t;

/* The current test's servers, names and connections. */
typedef struct it_context {
    char admin_url[1024];    /* conninfo: superuser, maintenance database */
    char db_admin_url[1024]; /* conninfo: superuser, this test's database */
    char agent_url[1024];    /* conninfo: exectime_agent, this test's database */
    char redis_url[512];
    char db_name[64];
    char stream[128]; /* the first stream key; its dead letters in dead_stream */
    char dead_stream[160];
    char streams[IT_STREAMS_MAX][128];
    int stream_count;
    char stream_list[300]; /* EXECTIME_STREAM of the agents and the emitter */
    char group[64];
    char tmp_dir[256];
    const char *agent_bin; /* agent_link, which points at EXECTIME_AGENT_BIN */
    char agent_link[300];
    PGconn *pg; /* superuser on this test's database */
    redisContext *redis;
    it_agent_t agents[IT_AGENTS_MAX];
    int agent_count;
    bool db_created;
    bool passed;
} it_context_t;

extern it_context_t it;

void it_setup(void);
/*
 * it_setup on the given servers instead of the environment's: admin_url a PostgreSQL
 * superuser URL or conninfo, redis_url redis://host:port. The fault tests, which start
 * servers of their own, use it from their criterion .init.
 */
void it_setup_servers(const char *admin_url, const char *redis_url);
/*
 * After a server restart: replaces the test's PostgreSQL and Redis connections when they
 * broke (fails if the server does not answer), and drops the emitter so its next use
 * reconnects.
 */
void it_reconnect(void);
void it_teardown(void);
/* Marks the test as passed: teardown then keeps the agents' logs to itself. */
void it_pass(void);

int64_t it_now_ms(void);
void it_sleep_ms(int ms);

/* Fails the test if an agent not expected to exit has exited; prints its log first. */
void it_check_agents(void);

/*
 * Polls cond every 50 ms until it holds; fails with the message after timeout_ms.
 * Checks the agents between polls, so a crash fails fast with the agent's log.
 */
#define IT_WAIT_UNTIL(cond, timeout_ms, ...)                                                       \
    do {                                                                                           \
        int64_t it_deadline_ = it_now_ms() + (timeout_ms);                                         \
        while (!(cond)) {                                                                          \
            it_check_agents();                                                                     \
            if (it_now_ms() > it_deadline_)                                                        \
                cr_assert_fail(__VA_ARGS__);                                                       \
            it_sleep_ms(50);                                                                       \
        }                                                                                          \
    } while (0)

/* --- agents --------------------------------------------------------------------------- */

/*
 * Starts `exectime-agent run` with the test's database, Redis, stream and group, the given
 * consumer name, a free port, text logs, plus env ("NAME=value", NULL-terminated, may be
 * NULL), which override the defaults. Inherited EXECTIME_* variables are dropped.
 */
it_agent_t *it_agent_start(const char *consumer, const char *const *env);
/* Waits for GET /readyz 200. */
void it_agent_wait_ready(it_agent_t *a);
void it_agent_signal(it_agent_t *a, int sig);
/* Waits for the agent to exit and returns its waitpid status; fails after timeout_ms. */
int it_agent_wait_exit(it_agent_t *a, int timeout_ms);
/* SIGTERM, then expects exit status 0 (a clean shutdown, sanitizers quiet). */
void it_agent_stop(it_agent_t *a);
/*
 * SIGKILL and reap, then wait until the agent's PostgreSQL sessions have ended: a COMMIT
 * it had sent may still complete after its death, so counts are stable only then.
 */
void it_agent_kill(it_agent_t *a);
/* Prints the agent's log (the last max_lines lines) to stderr. */
void it_agent_print_log(const it_agent_t *a, int max_lines);
/* The agent's whole log, malloc'd. */
char *it_agent_log(const it_agent_t *a);

/* A "Name:  123 kB" line of /proc/<pid>/status (VmRSS, VmHWM), in KiB; -1 if absent. */
long it_proc_kib(pid_t pid, const char *field);

/* GET path from 127.0.0.1:port; returns the status code (-1 if no answer); *body if given. */
int it_http_get(int port, const char *path, char **body);

/* One HTTP answer; its strings are malloc'd and freed by it_http_response_free. */
typedef struct it_http_response {
    int status;      /* -1 when no answer came */
    char *head;      /* the header lines after the status line, each ending in "\r\n" */
    char *body;      /* NUL-terminated; "" when there is none */
    size_t body_len; /* bytes after the blank line (0 for 204 and 304) */
} it_http_response_t;

/*
 * Sends "<method> <path> HTTP/1.1" to 127.0.0.1:port with Host, Connection: close and the
 * given header lines ("Name: value", NULL-terminated, may be NULL), reads the answer to
 * the end and fills *out (always: status -1 and empty strings when nothing came back).
 * Returns out->status. A refused connection is -1, not a failure: polls use it.
 */
int it_http_request(int port, const char *method, const char *path, const char *const *headers,
                    it_http_response_t *out);
/* The value of the first header called name (case-insensitive), malloc'd; NULL if absent. */
char *it_http_header(const it_http_response_t *r, const char *name);
void it_http_response_free(it_http_response_t *r);
/*
 * A /metrics value: series "name" sums every series of that name, "name{l=\"v\"}" reads
 * exactly that series. A series that is absent counts 0.
 */
double it_metric(const it_agent_t *a, const char *series);

/* --- commands ------------------------------------------------------------------------- */

/*
 * Runs argv (argv[0] a path) with the inherited environment less EXECTIME_*, plus env;
 * stdout and stderr together go to *output (malloc'd) when given. Returns the exit
 * status, or 128 + signal. Fails the test after timeout_ms.
 */
int it_run(const char *const *argv, const char *const *env, char **output, int timeout_ms);
/* `exectime-agent <command> --database-url <url>` (migrate, verify, rollup-rebuild):
 * its exit status, its output in *out (malloc'd). */
int it_agent_command(const char *command, const char *url, char **out);
/*
 * fork + exec of argv (argv[0] a path) with the inherited environment less EXECTIME_*,
 * plus extra_env; stdout and stderr appended to out_path. The child dies with the test
 * (PR_SET_PDEATHSIG). Returns its pid.
 */
pid_t it_spawn(const char *const *argv, const char *const *extra_env, const char *out_path);
/* fork (output flushed first) whose child gets SIGKILL when the test process dies, so a
 * test killed on timeout leaves nothing behind. Returns 0 in the child, like fork. */
pid_t it_fork(void);
/* waitpid with a bound: 0 when reaped (status written), -ETIMEDOUT otherwise. */
int it_wait_pid(pid_t pid, int timeout_ms, int *status);
/* A whole file, malloc'd and NUL-terminated ("" when it cannot be read). */
char *it_read_file(const char *path);
/* `exectime-agent verify` on the test's database; expects exit 0. */
void it_verify_ok(void);

/* --- PostgreSQL (superuser on the test's database) -------------------------------------- */

PGresult *it_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long it_sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* First column of the one row, malloc'd text ("" for NULL). */
char *it_sql_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
long long it_raw_count(void);

/* --- Redis ---------------------------------------------------------------------------- */

/*
 * Shards the test over two stream keys (hash-tagged, as on a Redis Cluster): the agents
 * read both, the emitter alternates between them, and the group checks cover both. Call
 * before starting agents or publishing.
 */
void it_use_two_streams(void);
/* The emitter on the test's stream list, opened on first use; closed by it_teardown. */
et_emitter_t *it_emitter(void);
/* One command on the test's own connection; fails on an error reply. */
redisReply *it_redis(const char *fmt, ...);
/* XADD of raw bytes as field `event` to the first stream; writes the entry id. */
void it_xadd_raw(const void *bytes, size_t len, char *id, size_t id_cap);
/* Pending entries of the test's group over its streams (0 before the group exists). */
long long it_group_pending(void);
/* Pending entries of one consumer of the group over the test's streams. */
long long it_consumer_pending(const char *consumer);
/* Every entry of every stream delivered to the group and acknowledged. */
bool it_stream_drained(void);
void it_wait_drained(void);

#endif
