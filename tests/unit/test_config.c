/* Unit tests for agent/config: defaults, environment, flags and clear errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static config_t cfg;
static char err[512];

static size_t setting_index(const char *flag)
{
    for (size_t i = 0; i < config_setting_count(); i++)
        if (strcmp(config_setting_flag(i), flag) == 0)
            return i;
    cr_assert_fail("no setting --%s", flag);
    return 0;
}

static void clean_env(void)
{
    const char *vars[] = {"EXECTIME_REDIS_URL",         "EXECTIME_STREAM",
                          "EXECTIME_BATCH_MAX",         "EXECTIME_LISTEN",
                          "EXECTIME_LOG_FORMAT",        "EXECTIME_DATABASE_URL",
                          "EXECTIME_DATABASE_URL_FILE", "EXECTIME_JWT_SECRET",
                          "EXECTIME_JWT_SECRET_FILE"};
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
    cr_assert_eq(config_apply(&cfg, setting_index("batch-max"), "200", NULL, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(cfg.batch_max, 200);
    cr_assert_eq(config_apply(&cfg, setting_index("stream"), "one", NULL, err, sizeof err), 0);
    cr_assert_eq(cfg.stream_count, 1, "a flag re-splits the stream list");
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

Test(config, a_too_long_value_names_the_flag)
{
    char long_value[2000];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    cr_assert_lt(config_apply(&cfg, setting_index("group"), long_value, NULL, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "--group"), "%s", err);
}

/* Writes contents to a fresh temporary file; returns its path (static buffer). */
static const char *secret_file(const char *contents)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/exectime-secret-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, contents, strlen(contents)), (ssize_t)strlen(contents));
    close(fd);
    return path;
}

Test(config, secrets_come_from_files_with_the_trailing_newline_dropped)
{
    const char *path = secret_file("postgresql://agent@db.svc:5432/exectime\n");
    setenv("EXECTIME_DATABASE_URL_FILE", path, 1);
    setenv("EXECTIME_JWT_SECRET_FILE", secret_file("s3cret\r\n"), 1);
    cr_assert_eq(config_load_env(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(cfg.database_url, "postgresql://agent@db.svc:5432/exectime");
    cr_assert_str_eq(cfg.jwt_secret, "s3cret");
    cr_assert_eq(config_validate(&cfg, err, sizeof err), 0, "%s", err);
    cr_assert_eq(config_apply(&cfg, setting_index("jwt-secret-file"), secret_file("other"), NULL,
                              err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(cfg.jwt_secret, "other", "--jwt-secret-file wins over the environment");
}

Test(config, a_secret_file_that_cannot_be_used_is_refused_by_name)
{
    setenv("EXECTIME_JWT_SECRET_FILE", "/nonexistent/secret", 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_JWT_SECRET_FILE"), "%s", err);
    cr_assert_not_null(strstr(err, "/nonexistent/secret"), "%s", err);
    const char *bad[] = {"", "\n", "two\nlines\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("EXECTIME_JWT_SECRET_FILE", secret_file(bad[i]), 1);
        cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0, "contents %zu", i);
        cr_assert_not_null(strstr(err, "one non-empty line"), "%s", err);
    }
    char big[1500];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("EXECTIME_JWT_SECRET_FILE", secret_file(big), 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "more than"), "%s", err);
}

Test(config, a_secret_and_its_file_both_set_is_an_error)
{
    setenv("EXECTIME_JWT_SECRET", "inline", 1);
    setenv("EXECTIME_JWT_SECRET_FILE", secret_file("from-file"), 1);
    cr_assert_lt(config_load_env(&cfg, err, sizeof err), 0);
    cr_assert_not_null(strstr(err, "EXECTIME_JWT_SECRET and EXECTIME_JWT_SECRET_FILE"), "%s", err);
}
