/*
 * Unit tests of pg_conn's connection parameters: the user's conninfo, URI or key=value,
 * gains TCP keepalives and tcp_user_timeout only where it does not set them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"

/* The value of keyword in the arrays, or NULL. */
static const char *param(char **keywords, char **values, const char *keyword)
{
    for (size_t i = 0; keywords[i]; i++)
        if (strcmp(keywords[i], keyword) == 0)
            return values[i];
    return NULL;
}

Test(pg_conn, uri_without_tcp_settings_gets_keepalives_and_user_timeout)
{
    char **k, **v, err[256];
    cr_assert_eq(pg_conninfo_params("postgresql://agent:pw@db.example:6543/exectime"
                                    "?sslmode=disable",
                                    &k, &v, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(param(k, v, "host"), "db.example");
    cr_assert_str_eq(param(k, v, "port"), "6543");
    cr_assert_str_eq(param(k, v, "dbname"), "exectime");
    cr_assert_str_eq(param(k, v, "user"), "agent");
    cr_assert_str_eq(param(k, v, "password"), "pw");
    cr_assert_str_eq(param(k, v, "sslmode"), "disable");
    cr_assert_str_eq(param(k, v, "keepalives"), "1");
    cr_assert_str_eq(param(k, v, "keepalives_idle"), "10");
    cr_assert_str_eq(param(k, v, "keepalives_interval"), "5");
    cr_assert_str_eq(param(k, v, "keepalives_count"), "3");
    cr_assert_str_eq(param(k, v, "tcp_user_timeout"), "15000");
    /* Nothing the user did not say besides those: libpq's environment defaults apply. */
    cr_assert_null(param(k, v, "connect_timeout"));
    pg_conninfo_free(k, v);
}

Test(pg_conn, key_value_conninfo_keeps_the_users_own_tcp_settings)
{
    char **k, **v, err[256];
    cr_assert_eq(pg_conninfo_params("host=127.0.0.1 dbname=x keepalives_idle=60 "
                                    "tcp_user_timeout=5000",
                                    &k, &v, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(param(k, v, "host"), "127.0.0.1");
    cr_assert_str_eq(param(k, v, "keepalives_idle"), "60");
    cr_assert_str_eq(param(k, v, "tcp_user_timeout"), "5000");
    cr_assert_str_eq(param(k, v, "keepalives"), "1");
    cr_assert_str_eq(param(k, v, "keepalives_count"), "3");
    pg_conninfo_free(k, v);
}

Test(pg_conn, uri_that_turns_keepalives_off_is_obeyed)
{
    char **k, **v, err[256];
    cr_assert_eq(pg_conninfo_params("postgres:///exectime?host=/run/postgresql&keepalives=0", &k,
                                    &v, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(param(k, v, "keepalives"), "0");
    cr_assert_str_eq(param(k, v, "host"), "/run/postgresql");
    pg_conninfo_free(k, v);
}

Test(pg_conn, conninfo_that_does_not_parse_is_refused_with_libpqs_reason)
{
    char **k, **v, err[256];
    cr_assert_eq(pg_conninfo_params("host=x nonsense_option=1", &k, &v, err, sizeof err), -EINVAL);
    cr_assert_null(k);
    cr_assert_null(v);
    cr_assert(strstr(err, "nonsense_option") != NULL, "err: %s", err);
    cr_assert_null(strchr(err, '\n'));
}
