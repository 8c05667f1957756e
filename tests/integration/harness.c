/* harness — see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emitter.h"
#include "redis_url.h"
#include "timeutil.h"

#define SQL_MAX 16384
/* Serialises role and migration set-up across tests running at once: the roles are
 * cluster-wide, and two CREATE ROLE racing would fail one of them. */
#define SETUP_LOCK_KEY 0x657865637469LL

it_context_t it;

static et_emitter_t *emitter; /* opened on first use by it_emitter */
static int run_seq;           /* names the output files of it_run */

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* --- conninfo ----------------------------------------------------------------------- */

/* Appends " key='value'" with conninfo quoting. */
static void conninfo_append(char *out, size_t cap, const char *key, const char *value)
{
    size_t len = strlen(out);
    int n = snprintf(out + len, cap - len, "%s%s='", len ? " " : "", key);
    cr_assert(n > 0 && (size_t)n < cap - len, "conninfo too long");
    len += (size_t)n;
    for (const char *p = value; *p; p++) {
        cr_assert(len + 3 < cap, "conninfo too long");
        if (*p == '\'' || *p == '\\')
            out[len++] = '\\';
        out[len++] = *p;
    }
    cr_assert(len + 2 < cap, "conninfo too long");
    out[len++] = '\'';
    out[len] = '\0';
}

/* The admin URL as a conninfo string, with dbname and user replaced when given. */
static void conninfo_build(char *out, size_t cap, const char *url, const char *dbname,
                           const char *user, char *password, size_t password_cap)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    cr_assert(opts != NULL, "EXECTIME_TEST_ADMIN_DATABASE_URL does not parse: %s",
              err ? err : "out of memory");
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *v = o->val;
        if (strcmp(o->keyword, "dbname") == 0 && dbname)
            v = dbname;
        else if (strcmp(o->keyword, "user") == 0 && user)
            v = user;
        if (strcmp(o->keyword, "password") == 0 && password && v)
            snprintf(password, password_cap, "%s", v);
        if (v && *v)
            conninfo_append(out, cap, o->keyword, v);
    }
    if (dbname && !strstr(out, "dbname="))
        conninfo_append(out, cap, "dbname", dbname);
    if (user && !strstr(out, "user="))
        conninfo_append(out, cap, "user", user);
    PQconninfoFree(opts);
}

static PGconn *pg_connect(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    cr_assert(PQstatus(pg) == CONNECTION_OK, "cannot connect to PostgreSQL (%s): %s", conninfo,
              PQerrorMessage(pg));
    PGresult *r = PQexec(pg, "SET client_min_messages = warning");
    PQclear(r);
    return pg;
}

static void pg_exec_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
}

/* --- processes ---------------------------------------------------------------------- */

/* The inherited environment less EXECTIME_*, then extra ("NAME=value"; later wins). The
 * array is malloc'd; its strings belong to environ and the caller. */
static char **child_env(const char *const *extra)
{
    extern char **environ;
    size_t n = 0, m = 0;
    for (char **e = environ; *e; e++)
        n++;
    for (const char *const *x = extra; x && *x; x++)
        m++;
    char **env = calloc(n + m + 1, sizeof *env);
    cr_assert(env != NULL);
    size_t k = 0;
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "EXECTIME_", 9) != 0)
            env[k++] = *e;
    for (const char *const *x = extra; x && *x; x++) {
        size_t name_len = strcspn(*x, "=");
        for (size_t i = 0; i < k; i++) {
            if (strncmp(env[i], *x, name_len + 1) == 0) {
                memmove(env + i, env + i + 1, (k - i - 1) * sizeof *env);
                k--;
                break;
            }
        }
        env[k++] = (char *)*x;
    }
    env[k] = NULL;
    return env;
}

pid_t it_fork(void)
{
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127); /* we died before the signal was armed */
    }
    return pid;
}

/* fork + exec with stdout and stderr appended to out_path. The child dies with us, so a
 * test killed on timeout leaves no agent behind. */
int it_agent_command(const char *command, const char *url, char **out)
{
    const char *argv[] = {it.agent_bin, command, "--database-url", url, NULL};
    return it_run(argv, NULL, out, 300000);
}

pid_t it_spawn(const char *const *argv, const char *const *extra_env, const char *out_path)
{
    char **envp = child_env(extra_env);
    pid_t pid = it_fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || out < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        close_range(3, ~0U, 0); /* no test connection leaks into the child */
        execve(argv[0], (char *const *)argv, envp);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(envp);
    return pid;
}

/* waitpid with a bound: 0 when reaped, -ETIMEDOUT otherwise. */
int it_wait_pid(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        cr_assert(r == 0 || errno == EINTR, "waitpid %d: %s", (int)pid, strerror(errno));
        if (it_now_ms() > deadline)
            return -ETIMEDOUT;
        it_sleep_ms(20);
    }
}

static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "wait status 0x%x", status);
}

char *it_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    cr_assert(buf != NULL);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf != NULL);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int it_run(const char *const *argv, const char *const *env, char **output, int timeout_ms)
{
    char path[512];
    snprintf(path, sizeof path, "%s/run-%d.out", it.tmp_dir, ++run_seq);
    pid_t pid = it_spawn(argv, env, path);
    int status = 0;
    if (it_wait_pid(pid, timeout_ms, &status) < 0) {
        kill(pid, SIGKILL);
        int ignored;
        it_wait_pid(pid, 10000, &ignored);
        char *out = it_read_file(path);
        cr_assert_fail("%s did not finish within %d ms; output:\n%s", argv[0], timeout_ms, out);
    }
    if (output)
        *output = it_read_file(path);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* --- set-up and teardown -------------------------------------------------------------- */

static void need_env(const char *name, const char **out)
{
    *out = getenv(name);
    cr_assert(*out != NULL && **out != '\0',
              "%s is not set: the integration tests need real servers. Run deploy/local/test, "
              "or set EXECTIME_TEST_ADMIN_DATABASE_URL (a PostgreSQL superuser URL) and "
              "EXECTIME_TEST_REDIS_URL (redis://host:port) yourself.",
              name);
}

static void create_database(const char *admin_env)
{
    static int seq;
    char password[256] = "";
    snprintf(it.db_name, sizeof it.db_name, "exectime_it_%d_%d", (int)getpid(), ++seq);
    conninfo_build(it.admin_url, sizeof it.admin_url, admin_env, NULL, NULL, password,
                   sizeof password);
    conninfo_build(it.db_admin_url, sizeof it.db_admin_url, admin_env, it.db_name, NULL, NULL, 0);
    conninfo_build(it.agent_url, sizeof it.agent_url, admin_env, it.db_name, "exectime_agent", NULL,
                   0);

    PGconn *admin = pg_connect(it.admin_url);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", SETUP_LOCK_KEY);
    pg_exec_ok(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", it.db_name);
    pg_exec_ok(admin, sql);
    it.db_created = true;

    const char *argv[] = {it.agent_bin, "migrate", "--database-url", it.db_admin_url, NULL};
    char *out = NULL;
    int status = it_run(argv, NULL, &out, 120000);
    cr_assert(status == 0, "exectime-agent migrate exited %d:\n%s", status, out);
    free(out);

    pg_exec_ok(admin, "DO $$ BEGIN"
                      " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'exectime_agent') THEN"
                      " CREATE ROLE exectime_agent LOGIN; END IF; END $$");
    pg_exec_ok(admin, "GRANT exectime_writer, exectime_reader TO exectime_agent");
    if (password[0]) {
        /* The servers may want a password: give the agent's role the admin's. */
        char *lit = PQescapeLiteral(admin, password, strlen(password));
        cr_assert(lit != NULL);
        snprintf(sql, sizeof sql, "ALTER ROLE exectime_agent PASSWORD %s", lit);
        PQfreemem(lit);
        pg_exec_ok(admin, sql);
        conninfo_append(it.agent_url, sizeof it.agent_url, "password", password);
    }
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", SETUP_LOCK_KEY);
    pg_exec_ok(admin, sql);
    PQfinish(admin);
    it.pg = pg_connect(it.db_admin_url);
}

static void connect_redis(void)
{
    et_redis_url_t url;
    char why[256];
    cr_assert(et_redis_url_parse(it.redis_url, &url, why, sizeof why) == 0,
              "EXECTIME_TEST_REDIS_URL: %s", why);
    struct timeval tv = {10, 0};
    it.redis = url.unix_path[0] ? redisConnectUnixWithTimeout(url.unix_path, tv)
                                : redisConnectWithTimeout(url.host, url.port, tv);
    cr_assert(it.redis != NULL && it.redis->err == 0, "cannot connect to Redis at %s: %s",
              it.redis_url, it.redis ? it.redis->errstr : "out of memory");
    redisSetTimeout(it.redis, tv);
    if (url.password[0]) {
        redisReply *r = url.username[0]
                            ? redisCommand(it.redis, "AUTH %s %s", url.username, url.password)
                            : redisCommand(it.redis, "AUTH %s", url.password);
        cr_assert(r && r->type != REDIS_REPLY_ERROR, "Redis AUTH failed");
        freeReplyObject(r);
    }
    if (url.db) {
        redisReply *r = redisCommand(it.redis, "SELECT %d", url.db);
        cr_assert(r && r->type != REDIS_REPLY_ERROR, "Redis SELECT failed");
        freeReplyObject(r);
    }
}

void it_setup(void)
{
    const char *admin, *redis;
    need_env("EXECTIME_TEST_ADMIN_DATABASE_URL", &admin);
    need_env("EXECTIME_TEST_REDIS_URL", &redis);
    it_setup_servers(admin, redis);
}

void it_setup_servers(const char *admin, const char *redis)
{
    memset(&it, 0, sizeof it);
    emitter = NULL;
    const char *bin = getenv("EXECTIME_AGENT_BIN");
    cr_assert(bin && access(bin, X_OK) == 0,
              "EXECTIME_AGENT_BIN is not an executable (meson test sets it): %s",
              bin ? bin : "(unset)");
    snprintf(it.redis_url, sizeof it.redis_url, "%s", redis);

    const char *tmp = getenv("TMPDIR");
    snprintf(it.tmp_dir, sizeof it.tmp_dir, "%s/exectime-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(it.tmp_dir) != NULL, "mkdtemp: %s", strerror(errno));
    /* The agents run under another name: on a shared machine someone restarting their own
     * agent with `pkill exectime-agent` must not stop ours in the middle of a test. */
    snprintf(it.agent_link, sizeof it.agent_link, "%s/it-agent", it.tmp_dir);
    cr_assert(symlink(bin, it.agent_link) == 0, "symlink %s: %s", it.agent_link, strerror(errno));
    it.agent_bin = it.agent_link;

    /* Unique per test process and time, so a rerun never meets an old group. */
    unsigned tag = (unsigned)getpid() ^ (unsigned)(time(NULL) & 0xffff) << 16;
    snprintf(it.stream, sizeof it.stream, "exectime-it:%08x:events", tag);
    snprintf(it.dead_stream, sizeof it.dead_stream, "%s:dead", it.stream);
    snprintf(it.streams[0], sizeof it.streams[0], "%s", it.stream);
    snprintf(it.stream_list, sizeof it.stream_list, "%s", it.stream);
    it.stream_count = 1;
    snprintf(it.group, sizeof it.group, "it-group-%08x", tag);

    connect_redis();
    create_database(admin);
}

void it_reconnect(void)
{
    /* A connection whose server went away still says CONNECTION_OK until it is used. */
    if (it.pg) {
        PGresult *r = PQexec(it.pg, "SELECT 1");
        bool alive = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (!alive) {
            PQfinish(it.pg);
            it.pg = NULL;
        }
    }
    if (it.pg == NULL && it.db_created)
        it.pg = pg_connect(it.db_admin_url);
    if (it.redis) {
        redisReply *r = redisCommand(it.redis, "PING");
        bool alive = r != NULL && r->type != REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (!alive) {
            redisFree(it.redis);
            it.redis = NULL;
        }
    }
    if (it.redis == NULL)
        connect_redis();
    et_emitter_close(emitter);
    emitter = NULL;
}

void it_pass(void)
{
    it.passed = true;
}

static void remove_tmp_dir(void)
{
    char path[600];
    unlink(it.agent_link);
    for (int i = 0; i < it.agent_count; i++)
        unlink(it.agents[i].log_path);
    for (int i = 1; i <= run_seq; i++) {
        snprintf(path, sizeof path, "%s/run-%d.out", it.tmp_dir, i);
        unlink(path);
    }
    rmdir(it.tmp_dir);
}

void it_teardown(void)
{
    for (int i = 0; i < it.agent_count; i++) {
        it_agent_t *a = &it.agents[i];
        if (a->pid > 0) {
            kill(a->pid, SIGKILL);
            int status;
            if (it_wait_pid(a->pid, 10000, &status) == 0)
                a->pid = 0;
        }
    }
    if (!it.passed) {
        for (int i = 0; i < it.agent_count; i++)
            it_agent_print_log(&it.agents[i], 150);
        if (it.tmp_dir[0])
            fprintf(stderr, "(files of this test kept in %s)\n", it.tmp_dir);
    } else if (it.tmp_dir[0]) {
        remove_tmp_dir();
    }
    et_emitter_close(emitter);
    emitter = NULL;
    if (it.pg) {
        PQfinish(it.pg);
        it.pg = NULL;
    }
    if (it.db_created) {
        PGconn *admin = PQconnectdb(it.admin_url);
        if (PQstatus(admin) == CONNECTION_OK) {
            char sql[256];
            snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", it.db_name);
            PGresult *r = PQexec(admin, sql);
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                fprintf(stderr, "teardown: %s: %s", sql, PQresultErrorMessage(r));
            PQclear(r);
        }
        PQfinish(admin);
    }
    if (it.redis) {
        for (int i = 0; i < it.stream_count; i++) {
            redisReply *r = redisCommand(it.redis, "DEL %s %s:dead", it.streams[i], it.streams[i]);
            freeReplyObject(r);
        }
        redisFree(it.redis);
        it.redis = NULL;
    }
}

/* --- agents ------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind: %s", strerror(errno));
    cr_assert(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin_port);
}

it_agent_t *it_agent_start(const char *consumer, const char *const *env)
{
    cr_assert(it.agent_count < IT_AGENTS_MAX, "more than %d agents in one test", IT_AGENTS_MAX);
    int index = it.agent_count++;
    it_agent_t *a = &it.agents[index];
    memset(a, 0, sizeof *a);
    snprintf(a->consumer, sizeof a->consumer, "%s", consumer);
    a->port = free_port();
    snprintf(a->log_path, sizeof a->log_path, "%s/agent-%d-%s.log", it.tmp_dir, index + 1,
             consumer);

    static char vars[8][1200];
    snprintf(vars[0], sizeof vars[0], "EXECTIME_DATABASE_URL=%s", it.agent_url);
    snprintf(vars[1], sizeof vars[1], "EXECTIME_REDIS_URL=%s", it.redis_url);
    snprintf(vars[2], sizeof vars[2], "EXECTIME_STREAM=%s", it.stream_list);
    snprintf(vars[3], sizeof vars[3], "EXECTIME_GROUP=%s", it.group);
    snprintf(vars[4], sizeof vars[4], "EXECTIME_CONSUMER=%s", consumer);
    snprintf(vars[5], sizeof vars[5], "EXECTIME_LISTEN=127.0.0.1:%d", a->port);
    snprintf(vars[6], sizeof vars[6], "EXECTIME_LOG_FORMAT=text");
    const char *list[32];
    size_t n = 0;
    for (int i = 0; i < 7; i++)
        list[n++] = vars[i];
    for (const char *const *x = env; x && *x; x++) {
        cr_assert(n < 31, "too many environment overrides");
        list[n++] = *x;
    }
    list[n] = NULL;
    const char *argv[] = {it.agent_bin, "run", NULL};
    a->pid = it_spawn(argv, list, a->log_path);
    return a;
}

char *it_agent_log(const it_agent_t *a)
{
    return it_read_file(a->log_path);
}

void it_agent_print_log(const it_agent_t *a, int max_lines)
{
    char *log = it_agent_log(a);
    const char *start = log + strlen(log);
    int lines = 0;
    while (start > log && lines <= max_lines) {
        start--;
        if (*start == '\n')
            lines++;
    }
    if (start > log)
        start++;
    fprintf(stderr, "----- agent %s (port %d) log %s, last %d lines -----\n%s\n----- end -----\n",
            a->consumer, a->port, a->log_path, max_lines, start);
    free(log);
}

void it_check_agents(void)
{
    for (int i = 0; i < it.agent_count; i++) {
        it_agent_t *a = &it.agents[i];
        if (a->pid <= 0)
            continue;
        int status;
        pid_t r = waitpid(a->pid, &status, WNOHANG);
        if (r != a->pid)
            continue;
        a->pid = 0;
        a->wait_status = status;
        if (!a->expect_exit) {
            char what[128];
            describe_status(status, what, sizeof what);
            it_agent_print_log(a, 150);
            /* A clean shutdown nobody here asked for came from outside the test. */
            char *log = it_agent_log(a);
            bool outside = !a->signalled && strstr(log, "shutting down") != NULL;
            free(log);
            cr_assert_fail("agent %s exited unexpectedly (%s)%s", a->consumer, what,
                           outside ? ": it was sent SIGTERM or SIGINT from outside this test "
                                     "(another process killing exectime-agent by name?)"
                                   : "");
        }
    }
}

void it_agent_wait_ready(it_agent_t *a)
{
    IT_WAIT_UNTIL(it_http_get(a->port, "/readyz", NULL) == 200, IT_WAIT_MS,
                  "agent %s: /readyz did not answer 200 on port %d within %d ms", a->consumer,
                  a->port, IT_WAIT_MS);
}

void it_agent_signal(it_agent_t *a, int sig)
{
    cr_assert(a->pid > 0, "agent %s is not running", a->consumer);
    a->signalled = true;
    cr_assert(kill(a->pid, sig) == 0, "kill: %s", strerror(errno));
}

int it_agent_wait_exit(it_agent_t *a, int timeout_ms)
{
    a->expect_exit = true;
    if (a->pid > 0) {
        int status;
        if (it_wait_pid(a->pid, timeout_ms, &status) < 0) {
            it_agent_print_log(a, 150);
            cr_assert_fail("agent %s did not exit within %d ms", a->consumer, timeout_ms);
        }
        a->pid = 0;
        a->wait_status = status;
    }
    return a->wait_status;
}

void it_agent_stop(it_agent_t *a)
{
    a->expect_exit = true;
    it_agent_signal(a, SIGTERM);
    int status = it_agent_wait_exit(a, IT_WAIT_MS);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char what[128];
        describe_status(status, what, sizeof what);
        it_agent_print_log(a, 150);
        cr_assert_fail("agent %s did not stop cleanly on SIGTERM: %s", a->consumer, what);
    }
}

/* Sessions of agents on the test's database (the agents name them exectime-agent ...). */
static long long agent_sessions(void)
{
    return it_sql_int("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                      " AND pid <> pg_backend_pid() AND usename = 'exectime_agent'");
}

void it_agent_kill(it_agent_t *a)
{
    a->expect_exit = true;
    it_agent_signal(a, SIGKILL);
    it_agent_wait_exit(a, IT_WAIT_MS);
    bool others = false;
    for (int i = 0; i < it.agent_count; i++)
        others |= it.agents[i].pid > 0;
    if (!others)
        IT_WAIT_UNTIL(agent_sessions() == 0, IT_WAIT_MS,
                      "the killed agent's PostgreSQL sessions did not end (%lld left)",
                      agent_sessions());
}

/* --- HTTP ----------------------------------------------------------------------------- */

int it_http_request(int port, const char *method, const char *path, const char *const *headers,
                    it_http_response_t *out)
{
    out->status = -1;
    out->head = strdup("");
    out->body = strdup("");
    out->body_len = 0;
    cr_assert(out->head != NULL && out->body != NULL);

    size_t req_cap = strlen(method) + strlen(path) + 128;
    for (const char *const *h = headers; h && *h; h++) {
        cr_assert(strpbrk(*h, "\r\n") == NULL, "header line with a line break: %s", *h);
        req_cap += strlen(*h) + 2;
    }
    char *req = malloc(req_cap);
    cr_assert(req != NULL);
    int n = snprintf(req, req_cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
                     method, path, port);
    size_t len = (size_t)n;
    for (const char *const *h = headers; h && *h; h++)
        len += (size_t)snprintf(req + len, req_cap - len, "%s\r\n", *h);
    len += (size_t)snprintf(req + len, req_cap - len, "\r\n");

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        free(req);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        free(req);
        return -1;
    }
    free(req);
    size_t cap = 65536;
    len = 0;
    char *buf = malloc(cap);
    cr_assert(buf != NULL);
    for (;;) {
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf != NULL);
        }
        ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    const char *line_end = strstr(buf, "\r\n");
    const char *sep = strstr(buf, "\r\n\r\n");
    if (line_end && sep) {
        free(out->head);
        out->head = strndup(line_end + 2, (size_t)(sep + 2 - (line_end + 2)));
        free(out->body);
        out->body_len = len - (size_t)(sep + 4 - buf);
        out->body = malloc(out->body_len + 1);
        cr_assert(out->head != NULL && out->body != NULL);
        memcpy(out->body, sep + 4, out->body_len);
        out->body[out->body_len] = '\0';
    }
    free(buf);
    out->status = status;
    return status;
}

char *it_http_header(const it_http_response_t *r, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = r->head; line && *line;) {
        const char *end = strstr(line, "\r\n");
        if (end == NULL)
            break;
        if ((size_t)(end - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            size_t vlen = (size_t)(end - v);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            char *value = strndup(v, vlen);
            cr_assert(value != NULL);
            return value;
        }
        line = end + 2;
    }
    return NULL;
}

void it_http_response_free(it_http_response_t *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
    r->body_len = 0;
}

long it_proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kib = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kib;
}

int it_http_get(int port, const char *path, char **body)
{
    it_http_response_t r;
    int status = it_http_request(port, "GET", path, NULL, &r);
    if (body) {
        *body = r.body;
        r.body = NULL;
    }
    it_http_response_free(&r);
    return status;
}

double it_metric(const it_agent_t *a, const char *series)
{
    it_check_agents(); /* a dead agent explains itself better than a refused connection */
    char *body = NULL;
    int status = it_http_get(a->port, "/metrics", &body);
    cr_assert(status == 200, "agent %s: GET /metrics answered %d", a->consumer, status);
    bool exact = strchr(series, '{') != NULL;
    size_t n = strlen(series);
    double sum = 0;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || strncmp(line, series, n) != 0)
            continue;
        char next = line[n];
        if (next != ' ' && (exact || next != '{'))
            continue;
        const char *value = strrchr(line, ' ');
        if (value)
            sum += strtod(value + 1, NULL);
    }
    free(body);
    return sum;
}

void it_verify_ok(void)
{
    const char *argv[] = {it.agent_bin, "verify", "--database-url", it.agent_url, NULL};
    char *out = NULL;
    int status = it_run(argv, NULL, &out, 300000);
    cr_assert(status == 0, "exectime-agent verify exited %d:\n%s", status, out);
    cr_assert(strstr(out, " 0 differences") != NULL, "verify output: %s", out);
    free(out);
}

/* --- PostgreSQL ------------------------------------------------------------------------ */

static PGresult *sql_v(const char *fmt, va_list ap)
{
    static char sql[SQL_MAX];
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    cr_assert(n > 0 && n < SQL_MAX, "SQL too long");
    PGresult *r = PQexec(it.pg, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s\n-> %s", sql,
              PQresultErrorMessage(r));
    return r;
}

PGresult *it_sql(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = sql_v(fmt, ap);
    va_end(ap);
    return r;
}

long long it_sql_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = sql_v(fmt, ap);
    va_end(ap);
    cr_assert(PQntuples(r) == 1 && PQnfields(r) >= 1, "expected one row, got %d", PQntuples(r));
    long long v = PQgetisnull(r, 0, 0) ? 0 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *it_sql_text(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PGresult *r = sql_v(fmt, ap);
    va_end(ap);
    cr_assert(PQntuples(r) == 1 && PQnfields(r) >= 1, "expected one row, got %d", PQntuples(r));
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

long long it_raw_count(void)
{
    return it_sql_int("SELECT count(*) FROM exectime.execution_time_statistics");
}

/* --- Redis ------------------------------------------------------------------------------ */

redisReply *it_redis(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(it.redis, fmt, ap);
    va_end(ap);
    cr_assert(r != NULL, "Redis %s: %s", fmt, it.redis->errstr);
    cr_assert(r->type != REDIS_REPLY_ERROR, "Redis %s: %s", fmt, r->str);
    return r;
}

void it_xadd_raw(const void *bytes, size_t len, char *id, size_t id_cap)
{
    redisReply *r = it_redis("XADD %s * event %b", it.stream, bytes, len);
    cr_assert(r->type == REDIS_REPLY_STRING);
    snprintf(id, id_cap, "%s", r->str);
    freeReplyObject(r);
}

static const redisReply *flat_get(const redisReply *flat, const char *key)
{
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (flat->element[i]->type == REDIS_REPLY_STRING && strcmp(flat->element[i]->str, key) == 0)
            return flat->element[i + 1];
    return NULL;
}

void it_use_two_streams(void)
{
    cr_assert(it.agent_count == 0 && emitter == NULL, "it_use_two_streams comes first");
    /* Hash tags put each key on its own cluster slot, as a sharded deployment would. */
    char base[64];
    snprintf(base, sizeof base, "%.60s", it.stream);
    for (int i = 0; i < 2; i++)
        snprintf(it.streams[i], sizeof it.streams[i], "%s:{%d}", base, i);
    it.stream_count = 2;
    snprintf(it.stream, sizeof it.stream, "%s", it.streams[0]);
    snprintf(it.dead_stream, sizeof it.dead_stream, "%s:dead", it.stream);
    snprintf(it.stream_list, sizeof it.stream_list, "%s,%s", it.streams[0], it.streams[1]);
}

/* One stream's pending count and last-delivered-id for the group; false when the stream
 * or the group is missing. */
static bool group_info(const char *stream, long long *pending, char *last, size_t last_cap)
{
    redisReply *ex = it_redis("EXISTS %s", stream);
    bool exists = ex->integer == 1;
    freeReplyObject(ex);
    if (!exists)
        return false;
    redisReply *r = it_redis("XINFO GROUPS %s", stream);
    bool found = false;
    for (size_t i = 0; i < r->elements && !found; i++) {
        const redisReply *g = r->element[i];
        const redisReply *name = flat_get(g, "name");
        if (!name || strcmp(name->str, it.group) != 0)
            continue;
        const redisReply *p = flat_get(g, "pending");
        const redisReply *l = flat_get(g, "last-delivered-id");
        *pending = p ? p->integer : 0;
        snprintf(last, last_cap, "%s", l && l->type == REDIS_REPLY_STRING ? l->str : "");
        found = true;
    }
    freeReplyObject(r);
    return found;
}

long long it_group_pending(void)
{
    long long sum = 0;
    for (int s = 0; s < it.stream_count; s++) {
        long long pending = 0;
        char last[64];
        if (group_info(it.streams[s], &pending, last, sizeof last))
            sum += pending;
    }
    return sum;
}

long long it_consumer_pending(const char *consumer)
{
    long long n = 0;
    for (int s = 0; s < it.stream_count; s++) {
        long long pending = 0;
        char last[64];
        if (!group_info(it.streams[s], &pending, last, sizeof last) || pending == 0)
            continue;
        /* Summary form: [count, smallest id, largest id, [[consumer, count], ...]]. */
        redisReply *r = it_redis("XPENDING %s %s", it.streams[s], it.group);
        if (r->elements == 4 && r->element[3]->type == REDIS_REPLY_ARRAY) {
            const redisReply *list = r->element[3];
            for (size_t i = 0; i < list->elements; i++) {
                const redisReply *c = list->element[i];
                if (c->elements == 2 && strcmp(c->element[0]->str, consumer) == 0)
                    n += strtoll(c->element[1]->str, NULL, 10);
            }
        }
        freeReplyObject(r);
    }
    return n;
}

bool it_stream_drained(void)
{
    for (int s = 0; s < it.stream_count; s++) {
        long long pending = 0;
        char last[64];
        if (!group_info(it.streams[s], &pending, last, sizeof last) || pending != 0)
            return false;
        redisReply *r = it_redis("XINFO STREAM %s", it.streams[s]);
        const redisReply *gen = flat_get(r, "last-generated-id");
        bool drained = gen && gen->type == REDIS_REPLY_STRING && strcmp(gen->str, last) == 0;
        freeReplyObject(r);
        if (!drained)
            return false;
    }
    return true;
}

void it_wait_drained(void)
{
    IT_WAIT_UNTIL(it_stream_drained(), IT_WAIT_MS,
                  "the group did not read and acknowledge every entry within %d ms "
                  "(pending %lld)",
                  IT_WAIT_MS, it_group_pending());
}

et_emitter_t *it_emitter(void)
{
    if (emitter == NULL) {
        char err[512];
        int rc = et_emitter_open(it.redis_url, it.stream_list, &emitter, err, sizeof err);
        cr_assert(rc == 0, "et_emitter_open: %s", err);
    }
    return emitter;
}
