/*
 * Database host names are looked up off the event loop: with a DNS answer that does not come
 * (dns_gate_preload holds "db.exectime.test" until the test opens the gate), the agent still
 * answers /healthz and says it is not ready; once the name resolves, it connects and ingests.
 * A name with several addresses (localhost: ::1, where nothing listens, and 127.0.0.1) is
 * tried address by address.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "oracle.h"

static bool log_has(const it_agent_t *a, const char *text)
{
    char *log = it_agent_log(a);
    bool found = strstr(log, text) != NULL;
    free(log);
    return found;
}

/* Publishes n events and waits until each is stored, with its rollups. */
static void publish_and_check(size_t n)
{
    et_event_t ev[16];
    cr_assert_leq(n, 16);
    it_gen_t gen = {
        .seed = 42, .tenants = 1, .workflows = 2, .spread_us = 3600000000LL, .run_prefix = "dns-"};
    it_gen_events(ev, n, &gen);
    cr_assert_eq(it_publish(ev, n, 1, 42), n);
    it_wait_drained();
    cr_assert_eq(it_raw_count(), (long long)n);
    it_check_rollups_match(ev, n);
}

Test(dns, a_slow_database_name_lookup_does_not_stop_the_loop, IT_TEST_OPTS)
{
    const char *preload = getenv("EXECTIME_DNS_PRELOAD");
    cr_assert(preload && *preload, "EXECTIME_DNS_PRELOAD (the dns_gate_preload library) not set");
    char gate[300], url[1400], env_gate[320], env_url[1500], env_preload[600];
    snprintf(gate, sizeof gate, "%s/dns-gate", it.tmp_dir);
    unlink(gate);
    snprintf(url, sizeof url, "%s host=db.exectime.test", it.agent_url);
    snprintf(env_gate, sizeof env_gate, "EXECTIME_DNS_GATE=%s", gate);
    snprintf(env_url, sizeof env_url, "EXECTIME_DATABASE_URL=%s", url);
    snprintf(env_preload, sizeof env_preload, "LD_PRELOAD=%s", preload);
    const char *env[] = {env_gate, env_url, env_preload,
                         /* the sanitizer runtime need not come first under LD_PRELOAD */
                         "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1:abort_on_error=1",
                         NULL};
    it_agent_t *a = it_agent_start("c1", env);
    IT_WAIT_UNTIL(it_http_get(a->port, "/healthz", NULL) == 200, IT_WAIT_MS,
                  "/healthz did not answer while the lookup hangs");
    /* The lookup is still held: the loop answers every request meanwhile. */
    for (int i = 0; i < 20; i++) {
        char *body = NULL;
        cr_assert_eq(it_http_get(a->port, "/healthz", NULL), 200, "request %d", i);
        int ready = it_http_get(a->port, "/readyz", &body);
        cr_assert_eq(ready, 503, "ready without a database: %s", body);
        free(body);
        it_sleep_ms(50);
    }
    cr_assert_eq(it_raw_count(), 0);
    FILE *f = fopen(gate, "w");
    cr_assert_not_null(f);
    fclose(f);
    it_agent_wait_ready(a);
    publish_and_check(5);
    it_agent_stop(a);
    cr_assert_not(log_has(a, "could not translate host name"), "the lookup was not retried");
    it_pass();
}

Test(dns, every_address_of_a_name_is_tried, IT_TEST_OPTS)
{
    char env_url[1500];
    snprintf(env_url, sizeof env_url, "EXECTIME_DATABASE_URL=%s host=localhost", it.agent_url);
    const char *env[] = {env_url, NULL};
    it_agent_t *a = it_agent_start("c1", env);
    it_agent_wait_ready(a);
    publish_and_check(3);
    it_agent_stop(a);
    it_pass();
}

Test(dns, a_name_that_does_not_resolve_is_said_and_retried, IT_TEST_OPTS)
{
    char env_url[1500];
    snprintf(env_url, sizeof env_url, "EXECTIME_DATABASE_URL=%s host=no-such-db.invalid",
             it.agent_url);
    const char *env[] = {env_url, NULL};
    it_agent_t *a = it_agent_start("c1", env);
    IT_WAIT_UNTIL(log_has(a, "could not translate host name") && log_has(a, "no-such-db.invalid"),
                  IT_WAIT_MS, "the log never says the name did not resolve");
    cr_assert_eq(it_http_get(a->port, "/readyz", NULL), 503);
    cr_assert_eq(it_http_get(a->port, "/healthz", NULL), 200);
    it_agent_stop(a);
    it_pass();
}
