/*
 * fault_harness — what the fault scenarios share: a PRIVATE PostgreSQL cluster and a
 * PRIVATE redis-server per test, which the test may stop, kill, freeze and restart, a
 * publisher in a child process that keeps publishing through the faults and knows exactly
 * what it published, and the end-of-scenario checks.
 *
 * Everything else (the test's database, stream, group, agents as child processes, HTTP,
 * metrics, SQL, waits, verify) is the integration harness (tests/integration/harness.h):
 * ft_setup starts the servers and hands their URLs to it_setup_servers.
 *
 * Servers. PostgreSQL: initdb runs once per machine and PostgreSQL version into a template
 * directory (under a lock), and every test copies it into a temporary data directory; the
 * postmaster is started directly (not through pg_ctl) as a child of the test, so the test
 * knows its pid and can signal it. As root it runs as the `postgres` OS user (the server
 * refuses root), like deploy/local/lib.sh. Redis runs as a child too, with its files in
 * its own directory, AOF on (ft_setup) or no persistence at all (ft_setup_volatile).
 * Both listen on 127.0.0.1 on free ports from 57000-57999, the same ports across restarts.
 * A test killed on its timeout takes its servers with it (PR_SET_PDEATHSIG).
 *
 * Quick and long variants: EXECTIME_FAULTS_LONG=1 selects the long one (≥ 200k events,
 * 30 s outages, 20 kills); ft_pick(quick, long) chooses a number.
 *
 * Measurements are printed, never asserted: one line per scenario on stdout,
 *   FAULT-RECOVERY scenario=<name> seconds=<s> events=<n> [key=value ...]
 * where seconds runs from the end of the last fault (server accepting connections again,
 * process thawed, agent restarted) to every expected event visible in the raw table.
 *
 * Ownership: the harness owns its servers and every ft_publisher_t it hands out; they
 * live until ft_teardown. Helpers fail the test (criterion) instead of returning errors.
 */
#ifndef EXECTIME_FAULT_HARNESS_H
#define EXECTIME_FAULT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

/* Private servers with Redis AOF on; the Redis without persistence; the database in
 * EUC_JP (text valid as UTF-8 that PostgreSQL refuses). */
void ft_setup(void);
void ft_setup_volatile(void);
void ft_setup_euc_jp(void);
void ft_teardown(void);

#define FT_TEST_TIMEOUT 1800 /* s; the long variant under ASan takes its time */
#define FT_TEST_OPTS .init = ft_setup, .fini = ft_teardown, .timeout = FT_TEST_TIMEOUT
#define FT_TEST_OPTS_VOLATILE                                                                      \
    .init = ft_setup_volatile, .fini = ft_teardown, .timeout = FT_TEST_TIMEOUT
#define FT_TEST_OPTS_EUC_JP .init = ft_setup_euc_jp, .fini = ft_teardown, .timeout = FT_TEST_TIMEOUT

/* EXECTIME_FAULTS_LONG=1 */
bool ft_long(void);
int ft_pick(int quick, int long_variant);

/* --- PostgreSQL ----------------------------------------------------------------------- */

typedef enum ft_pg_stop_mode {
    FT_PG_FAST,      /* SIGINT: sessions are terminated, a clean shutdown checkpoint */
    FT_PG_IMMEDIATE, /* SIGQUIT: no checkpoint, crash recovery at the next start */
} ft_pg_stop_mode_t;

/* Stops the postmaster and waits until it has exited and the port is free. */
void ft_pg_stop(ft_pg_stop_mode_t mode);
/* Starts it again on the same port and data directory; returns once it accepts
 * connections (and the test's own connection is back). */
void ft_pg_start(void);
/* SIGSTOP to the postmaster and all its children; SIGCONT to all of them. While frozen
 * the test must not use it.pg: it would hang. */
void ft_pg_freeze(void);
void ft_pg_thaw(void);

/* --- Redis ---------------------------------------------------------------------------- */

/* SIGTERM (Redis writes its AOF and exits) or SIGKILL; waits until it has exited. */
void ft_redis_stop(int sig);
/* Starts it again on the same port and directory (the AOF, when on, is loaded); returns
 * once it answers PING (and the test's own connection is back). */
void ft_redis_start(void);
/* SIGSTOP to redis-server: connections stay open and connects are still accepted by the
 * kernel, but nothing is answered (a network cut that heals, as a client sees it). While
 * frozen the test must not use it.redis: it would hang. ft_redis_thaw sends SIGCONT and
 * returns once it answers PING. */
void ft_redis_freeze(void);
void ft_redis_thaw(void);

/*
 * A TCP proxy in front of Redis (a child process), for network cuts that SIGSTOP cannot
 * show: ft_redis_proxy_start returns its port once a PING through it is answered; agents
 * given EXECTIME_REDIS_URL=redis://127.0.0.1:<port> talk through it, while the test and
 * the publisher keep talking to Redis directly. ft_redis_proxy_cut closes the Redis side
 * of every connection through it and leaves the client side open and silent for good (a
 * half-open connection: the client learns nothing, no FIN, no RST), and serves no new
 * connection (the kernel accepts them; nothing answers). ft_redis_proxy_heal serves new
 * connections again (returns once a PING through it is answered); the cut ones stay
 * silent. Stopped by ft_teardown.
 */
int ft_redis_proxy_start(void);
void ft_redis_proxy_cut(void);
void ft_redis_proxy_heal(void);

/* --- publisher -------------------------------------------------------------------------- */

/* What a publisher publishes: events finished "now" (at their XADD), in entries of 1 to
 * max_per_entry events, run ids "<run_prefix><n>". */
typedef struct ft_publish_opts {
    const char *run_prefix;
    int events; /* valid events in all */
    int max_per_entry;
    int invalid_every;   /* every k-th entry is not an event at all (0: none) */
    int db_reject_every; /* every k-th entry is one event the database refuses (0: none) */
    double events_per_s; /* 0: as fast as Redis takes them */
} ft_publish_opts_t;

/* What a publisher got into the stream, read from its log (entry ids it was answered). */
typedef struct ft_published {
    long long valid_events;    /* events of valid entries Redis acknowledged */
    long long entries;         /* all entries Redis acknowledged */
    long long invalid_entries; /* invalid entries Redis acknowledged */
    long long db_reject_entries;
    bool finished; /* it published everything (not stopped early) */
} ft_published_t;

typedef struct ft_publisher ft_publisher_t;

/*
 * Forks a publisher on the test's stream. It retries an XADD that got no answer (Redis
 * away) with the same explicit entry id, so an entry never lands twice and it knows which
 * entries landed; it gives up when Redis stays away for IT_WAIT_MS.
 */
ft_publisher_t *ft_publish_start(const ft_publish_opts_t *opts);
/* Reads what it has published so far (it may still run). */
void ft_publish_progress(ft_publisher_t *p, ft_published_t *out);
/* Waits for it to finish (fails if it failed) and reads the totals. */
void ft_publish_wait(ft_publisher_t *p, ft_published_t *out);
/* SIGTERM: it finishes the entry in hand and exits; then as ft_publish_wait. */
void ft_publish_stop(ft_publisher_t *p, ft_published_t *out);
/* Its entries may be lost (Redis restarted without persistence): ft_check_outcome then
 * neither requires nor refuses its dead letters. */
void ft_publish_lost_ok(ft_publisher_t *p);
/* The kind of an entry id this publisher got acknowledged: 'i' invalid, 'r' refused by
 * the database; 0 for a valid entry or an id that is not its own. Reads the log as of the
 * last ft_publish_progress. */
char ft_publish_kind(ft_publisher_t *p, const char *entry_id);

/* --- measurements and checks ----------------------------------------------------------- */

/* Raw rows whose run id starts with prefix. */
long long ft_raw_count_prefix(const char *prefix);
/*
 * Waits until the raw rows of run prefix reach n (never more: fails at once if there are
 * more) and returns the seconds since since_ms (it_now_ms()).
 */
double ft_wait_visible(const char *prefix, long long n, int64_t since_ms);
/* Entries of the group not yet delivered (XINFO GROUPS lag; -1 when unknown). */
long long ft_group_lag(void);
/* GET /readyz's JSON says "<part>":true. */
bool ft_ready_part(const it_agent_t *a, const char *part);
/* The agent, started while server `part` ("redis", "postgres") is absent, answers
 * /healthz, says 503 on /readyz with part false, and has not exited 3 s later. */
void ft_expect_waiting_for(const it_agent_t *a, const char *part);
/* A random integer in [lo, hi] from the test's seeded generator. */
int ft_random(int lo, int hi);

/*
 * The checks every scenario ends with: raw rows of prefix == valid_events, verify exits 0,
 * nothing pending in the group, and the dead letters are exactly the publisher's invalid
 * and refused entries (each once; when allow_duplicates, a crash between the dead-letter
 * XADD and the XACK may have written one twice, which is reported, not failed). reject_reason
 * (may be NULL) must appear in the reason of each refused entry.
 */
void ft_check_outcome(ft_publisher_t *const *pubs, int npubs, const char *prefix,
                      long long valid_events, bool allow_duplicates, const char *reject_reason);

/* Prints the scenario's FAULT-RECOVERY line: seconds, events, then "key=value" extras. */
void ft_report(const char *scenario, double seconds, long long events, const char *extra_fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
