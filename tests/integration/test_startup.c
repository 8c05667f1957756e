/*
 * Integration tests of start-up: the agent refuses a database whose sketch constants are
 * not its own, a bad setting stops it with one line naming the setting, and secrets come
 * from files as Kubernetes and systemd hand them over.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "tokens.h"

Test(startup, agent_refuses_a_database_with_other_sketch_constants, IT_TEST_OPTS)
{
    PGresult *r = it_sql("UPDATE exectime.sketch_constants SET relative_accuracy = 0.02,"
                         " gamma = 1.02 / 0.98");
    PQclear(r);
    it_agent_t *a = it_agent_start("c1", NULL);
    int status = it_agent_wait_exit(a, IT_WAIT_MS);
    char *log = it_agent_log(a);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1,
              "agent exited with wait status 0x%x, expected exit status 1; log:\n%s", status, log);
    cr_assert(strstr(log, "sketch constants") != NULL && strstr(log, "0.02") != NULL,
              "the log does not say which constants differ:\n%s", log);
    free(log);
    cr_assert_eq(it_raw_count(), 0);
    it_pass();
}

/* Runs `exectime-agent run` with one bad setting; it must exit 2 with one line naming it. */
static void expect_refused(const char *setting, const char *flag, const char *name)
{
    char db[1200], listen[64];
    snprintf(db, sizeof db, "EXECTIME_DATABASE_URL=%s", it.agent_url);
    snprintf(listen, sizeof listen, "EXECTIME_LISTEN=127.0.0.1:1");
    const char *env[] = {db, listen, "EXECTIME_LOG_FORMAT=text", setting, NULL};
    const char *argv[] = {it.agent_bin, "run", flag, flag ? "abc" : NULL, NULL};
    char *out = NULL;
    int status = it_run(argv, env, &out, 60000);
    cr_assert_eq(status, 2, "%s: exit status %d, expected 2; output:\n%s", name, status, out);
    size_t len = strlen(out);
    cr_assert(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
              "%s: expected exactly one line, got:\n%s", name, out);
    cr_assert(strstr(out, name) != NULL, "%s: the line does not name it: %s", name, out);
    free(out);
}

Test(startup, a_bad_setting_stops_start_up_with_one_line_naming_it, IT_TEST_OPTS)
{
    expect_refused("EXECTIME_BATCH_MAX=abc", NULL, "EXECTIME_BATCH_MAX");
    expect_refused("EXECTIME_BATCH_MAX=0", NULL, "EXECTIME_BATCH_MAX");
    expect_refused("EXECTIME_CLAIM_IDLE_MS=999", NULL, "EXECTIME_CLAIM_IDLE_MS");
    expect_refused("EXECTIME_FLUSH_MS=", NULL, "EXECTIME_FLUSH_MS");
    expect_refused("EXECTIME_LOG_FORMAT=xml", NULL, "EXECTIME_LOG_FORMAT");
    expect_refused("EXECTIME_LISTEN=localhost", NULL, "EXECTIME_LISTEN");
    expect_refused("EXECTIME_REDIS_URL=http://127.0.0.1:6379", NULL, "EXECTIME_REDIS_URL");
    expect_refused("EXECTIME_DATABASE_URL=", NULL, "EXECTIME_DATABASE_URL");
    expect_refused("EXECTIME_MAX_DELIVERIES=-1", NULL, "EXECTIME_MAX_DELIVERIES");
    expect_refused("EXECTIME_GROUP=", NULL, "EXECTIME_GROUP");
    expect_refused("EXECTIME_STREAM=a,,b", NULL, "EXECTIME_STREAM");
    expect_refused("EXECTIME_BATCH_MAX=100", "--batch-max", "--batch-max");
    it_pass();
}

static bool log_has(const it_agent_t *a, const char *text)
{
    char *log = it_agent_log(a);
    bool found = strstr(log, text) != NULL;
    free(log);
    return found;
}

Test(startup, an_agent_role_outside_exectime_reader_is_not_ready_until_granted, IT_TEST_OPTS)
{
    /* The role is cluster-wide; every test's set-up grants it again, so a failure here
     * leaves no trace for the next test. */
    PQclear(it_sql("REVOKE exectime_reader FROM exectime_agent"));
    it_agent_t *a = it_agent_start("c1", NULL);
    char *body = NULL;
    IT_WAIT_UNTIL(log_has(a, "not a member of exectime_reader"), IT_WAIT_MS,
                  "the log never says the role lacks exectime_reader");
    int status = it_http_get(a->port, "/readyz", &body);
    PQclear(it_sql("GRANT exectime_reader TO exectime_agent"));
    cr_assert_eq(status, 503, "readyz answered %d: %s", status, body);
    cr_assert(strstr(body, "\"api_sessions\":false") != NULL, "%s", body);
    free(body);
    /* The sessions reconnect and set up again once the grant is there. */
    it_agent_wait_ready(a);
    it_agent_stop(a);
    it_pass();
}

/* A Redis host that does not resolve keeps the agent up and not ready, saying why, and it
 * keeps trying (the name is looked up again at every attempt, off the loop). */
Test(startup, a_redis_host_that_does_not_resolve_is_retried_not_ready, IT_TEST_OPTS)
{
    const char *env[] = {"EXECTIME_REDIS_URL=redis://no-such-host.invalid:6379", NULL};
    it_agent_t *a = it_agent_start("c1", env);
    IT_WAIT_UNTIL(log_has(a, "redis host not resolved"), IT_WAIT_MS,
                  "the log never says the Redis host did not resolve");
    char *body = NULL;
    int status = it_http_get(a->port, "/readyz", &body);
    cr_assert_eq(status, 503, "readyz answered %d: %s", status, body);
    cr_assert(strstr(body, "\"redis\":false") != NULL, "%s", body);
    free(body);
    it_agent_stop(a);
    it_pass();
}

/* Writes text to the file name of the test's folder; its path goes to path. */
static void write_secret(const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", it.tmp_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

Test(startup, secrets_from_files_serve_the_api_and_a_missing_key_is_said, IT_TEST_OPTS)
{
    const char *secret = "file-secret-0123456789abcdef0123456789abcdef";
    char url_path[512], secret_path[512], url_text[1200], secret_text[128];
    snprintf(url_text, sizeof url_text, "%s\n", it.agent_url); /* as `echo` leaves it */
    snprintf(secret_text, sizeof secret_text, "%s\n", secret);
    write_secret("database_url", url_text, url_path, sizeof url_path);
    write_secret("jwt_secret", secret_text, secret_path, sizeof secret_path);
    char env_url[600], env_secret[600];
    snprintf(env_url, sizeof env_url, "EXECTIME_DATABASE_URL_FILE=%s", url_path);
    snprintf(env_secret, sizeof env_secret, "EXECTIME_JWT_SECRET_FILE=%s", secret_path);
    /* EXECTIME_DATABASE_URL empty: the harness's own must not stand (both set is an error) */
    const char *env[] = {"EXECTIME_DATABASE_URL=", env_url, env_secret, NULL};
    it_agent_t *a = it_agent_start("c1", env);
    it_agent_wait_ready(a);
    char *auth = it_bearer_hs256(secret, "\"tenant_id\": \"t1\"");
    const char *headers[] = {auth, NULL};
    it_http_response_t res;
    int code = it_http_request(a->port, "GET", "/api/v1/statistics/execution-times", headers, &res);
    cr_assert_eq(code, 200, "a token signed with the file's secret: %d %s", code, res.body);
    it_http_response_free(&res);
    free(auth);
    cr_assert_not(log_has(a, "no EXECTIME_JWT_SECRET"), "the key was there");
    it_agent_stop(a);

    /* Without a key the agent still starts, and says at once that tokens are refused. */
    it_agent_t *b = it_agent_start("c2", NULL);
    it_agent_wait_ready(b);
    cr_assert(log_has(b, "no EXECTIME_JWT_SECRET(_FILE) or EXECTIME_JWT_PUBLIC_KEY_FILE"),
              "the start-up log does not say the API has no key");
    it_agent_stop(b);

    /* An unreadable file stops start-up with a line naming the variable and the path. */
    const char *bad[] = {"EXECTIME_JWT_SECRET_FILE=/nonexistent/jwt", NULL};
    it_agent_t *c = it_agent_start("c3", bad);
    int status = it_agent_wait_exit(c, 30000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "wait status %d", status);
    cr_assert(log_has(c, "EXECTIME_JWT_SECRET_FILE") && log_has(c, "/nonexistent/jwt"),
              "the refusal does not name the variable and the path");
    it_pass();
}
