/* Unit tests for agent/pg_resolve: which conninfos need a lookup, and the arrays libpq gets
 * once the names have addresses. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"
#include "pg_resolve.h"

static char **kw, **val;

static void parse(const char *conninfo)
{
    char err[256];
    unsetenv("PGHOST");
    cr_assert_eq(pg_conninfo_params(conninfo, &kw, &val, err, sizeof err), 0, "%s", err);
}

static const char *get(char **k, char **v, const char *key)
{
    for (size_t i = 0; k[i]; i++)
        if (strcmp(k[i], key) == 0)
            return v[i];
    return NULL;
}

static void done(void)
{
    pg_conninfo_free(kw, val);
    kw = val = NULL;
}

TestSuite(pg_resolve, .fini = done);

Test(pg_resolve, names_need_a_lookup_addresses_and_sockets_do_not)
{
    parse("postgresql://agent@db.svc.cluster.local:5432/exectime");
    cr_assert(pg_resolve_needed(kw, val));
    done();
    parse("host=127.0.0.1,::1 dbname=x");
    cr_assert_not(pg_resolve_needed(kw, val));
    done();
    parse("host=/var/run/postgresql dbname=x");
    cr_assert_not(pg_resolve_needed(kw, val));
    done();
    parse("host=db hostaddr=10.0.0.5 dbname=x");
    cr_assert_not(pg_resolve_needed(kw, val), "the user's own hostaddr wins");
    done();
    parse("host=10.0.0.1,replica.svc dbname=x");
    cr_assert(pg_resolve_needed(kw, val));
    done();
    parse("dbname=x");
    setenv("PGHOST", "db.from.env", 1);
    cr_assert(pg_resolve_needed(kw, val), "PGHOST is what libpq would use");
    unsetenv("PGHOST");
    cr_assert_not(pg_resolve_needed(kw, val));
}

Test(pg_resolve, each_address_becomes_a_host_entry_with_its_name_kept)
{
    parse("host=db.svc,10.0.0.9 port=5432,6432 dbname=x sslmode=verify-full");
    const char *db_addrs[] = {"10.1.0.1", "fd00::1", NULL};
    const char *const *per_host[] = {db_addrs, NULL};
    char **k = NULL, **v = NULL;
    cr_assert_eq(pg_resolve_expand(kw, val, 2, per_host, &k, &v), 0);
    cr_assert_str_eq(get(k, v, "host"), "db.svc,db.svc,10.0.0.9", "names stay for TLS");
    cr_assert_str_eq(get(k, v, "hostaddr"), "10.1.0.1,fd00::1,");
    cr_assert_str_eq(get(k, v, "port"), "5432,5432,6432", "a port per host follows its host");
    cr_assert_str_eq(get(k, v, "sslmode"), "verify-full");
    cr_assert_str_eq(get(k, v, "keepalives"), "1", "the TCP defaults stay");
    pg_conninfo_free(k, v);
}

Test(pg_resolve, one_port_stays_one_and_a_name_without_address_is_dropped)
{
    parse("host=gone.svc,db.svc port=5433 dbname=x");
    const char *none[] = {NULL};
    const char *db_addrs[] = {"10.1.0.1", NULL};
    const char *const *per_host[] = {none, db_addrs};
    char **k = NULL, **v = NULL;
    cr_assert_eq(pg_resolve_expand(kw, val, 2, per_host, &k, &v), 0);
    cr_assert_str_eq(get(k, v, "host"), "db.svc");
    cr_assert_str_eq(get(k, v, "hostaddr"), "10.1.0.1");
    cr_assert_str_eq(get(k, v, "port"), "5433");
    pg_conninfo_free(k, v);
    const char *const *nothing[] = {none, none};
    cr_assert_eq(pg_resolve_expand(kw, val, 2, nothing, &k, &v), -ENOENT);
}

static int lookups_done;
static int lookup_status;
static char lookup_hostaddr[256];

static void on_lookup(int status, const char *error, char **k, char **v, void *arg)
{
    lookups_done++;
    lookup_status = status;
    if (status == 0)
        snprintf(lookup_hostaddr, sizeof lookup_hostaddr, "%s", get(k, v, "hostaddr"));
    else
        snprintf(lookup_hostaddr, sizeof lookup_hostaddr, "%s", error);
    pg_conninfo_free(k, v);
}

Test(pg_resolve, a_lookup_runs_on_the_thread_pool_and_an_abandoned_one_is_freed)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    parse("host=localhost dbname=x");
    pg_resolve_t *r = NULL;
    cr_assert_eq(pg_resolve_start(&r, &loop, kw, val, on_lookup, NULL), 0);
    cr_assert_eq(lookups_done, 0, "the callback waits for a later loop turn");
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(lookups_done, 1);
    cr_assert_eq(lookup_status, 0, "%s", lookup_hostaddr);
    cr_assert(strstr(lookup_hostaddr, "127.0.0.1") || strstr(lookup_hostaddr, "::1"), "%s",
              lookup_hostaddr);
    cr_assert_eq(pg_resolve_start(&r, &loop, kw, val, on_lookup, NULL), 0);
    pg_resolve_abandon(r);
    uv_run(&loop, UV_RUN_DEFAULT); /* ASan: the abandoned lookup frees itself */
    cr_assert_eq(lookups_done, 1, "an abandoned lookup never calls back");
    cr_assert_eq(uv_loop_close(&loop), 0);
}
