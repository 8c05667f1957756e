/* Unit tests for agent/config: defaults, environment, flags and clear errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static config_t cfg;
static char err[512];

static void clean_env(void)
{
    const char *vars[] = {"EXECTIME_REDIS_URL", "EXECTIME_STREAM", "EXECTIME_BATCH_MAX",
                          "EXECTIME_LISTEN", "EXECTIME_LOG_FORMAT", "EXECTIME_DATABASE_URL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    config_defaults(&cfg);
    err[0] = '\0';
}

TestSuite(config, .init = clean_env);

Test(config, defaults_are_valid_except_the_required_database_url)
{
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379");
    cr_assert_str_eq(cfg.stream, "exectime:events");
    cr_assert_eq(cfg.stream_count, 1);
    cr_assert_str_eq(cfg.group, "exectime");
    cr_assert_str_eq(cfg.listen, "127.0.0.1:8080");
    cr_assert_eq(cfg.batch_max, 50000);
    cr_assert_eq(cfg.flush_ms, 200);
    cr_assert_neq(cfg.consumer[0], '\0');
    cr_assert_lt(config_validate(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_DATABASE_URL"));
}

Test(config, default_consumer_is_the_pod_name_in_kubernetes_else_host_and_pid)
{
    char host[64];
    cr_assert_eq(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    char with_pid[128];
    snprintf(with_pid, sizeof with_pid, "%s-%ld", host, (long)getpid());
    unsetenv("KUBERNETES_SERVICE_HOST");
    config_defaults(&cfg);
    cr_assert_str_eq(cfg.consumer, with_pid);
    setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
    config_defaults(&cfg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_str_eq(cfg.consumer, host, "a restarted container keeps its pod's name");
}

Test(config, environment_then_flags_win)
{
    setenv("EXECTIME_BATCH_MAX", "100", 1);
    setenv("EXECTIME_STREAM", "s:{0},s:{1}", 1);
    cr_assert_eq(config_load_env(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.batch_max, 100);
    cr_assert_eq(cfg.stream_count, 2);
    cr_assert_str_eq(cfg.streams[1], "s:{1}");
    char *argv[] = {"agent", "run", "--batch-max", "200", "--listen=[::1]:9000", "extra"};
    int rest[8], n = 0;
    cr_assert_eq(config_load_args(&cfg, 6, argv, 1, rest, 8, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(cfg.batch_max, 200);
    cr_assert_str_eq(cfg.listen, "[::1]:9000");
    cr_assert_eq(n, 2);
    cr_assert_eq(rest[0], 1);
    cr_assert_eq(rest[1], 5);
}

Test(config, a_bad_value_names_the_variable)
{
    setenv("EXECTIME_BATCH_MAX", "abc", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_BATCH_MAX"), "%s", err);
    unsetenv("EXECTIME_BATCH_MAX");
    setenv("EXECTIME_BATCH_MAX", "0", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    unsetenv("EXECTIME_BATCH_MAX");
    setenv("EXECTIME_LOG_FORMAT", "xml", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_LOG_FORMAT"), "%s", err);
    unsetenv("EXECTIME_LOG_FORMAT");
    setenv("EXECTIME_REDIS_URL", "rediss://x", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_REDIS_URL"), "%s", err);
    unsetenv("EXECTIME_REDIS_URL");
    setenv("EXECTIME_LISTEN", "::1:80", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    setenv("EXECTIME_LISTEN", "127.0.0.1:70000", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    setenv("EXECTIME_STREAM", "a,,b", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
}

Test(config, a_flag_without_value_or_too_long_is_refused)
{
    char *argv[] = {"agent", "--group"};
    int rest[4], n = 0;
    cr_assert_lt(config_load_args(&cfg, 2, argv, 1, rest, 4, &n, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "--group"), "%s", err);
    char long_value[2000];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    char *argv2[] = {"agent", "--group", long_value};
    cr_assert_lt(config_load_args(&cfg, 3, argv2, 1, rest, 4, &n, err, sizeof err), 0);
}
