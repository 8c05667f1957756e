/* Unit tests for agent/api_client: the URL it accepts and the query strings it writes. The
 * requests themselves are tested against a real agent (tests/integration/test_query.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "api_client.h"

static char err[256];

Test(api_client, url_takes_host_port_and_a_proxy_prefix)
{
    api_url_t u;
    cr_assert_eq(api_url_parse("http://127.0.0.1:8080", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_str_eq(u.port, "8080");
    cr_assert_str_eq(u.prefix, "");
    cr_assert_eq(api_url_parse("HTTP://stats.example/exectime//", &u, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(u.host, "stats.example");
    cr_assert_str_eq(u.port, "80");
    cr_assert_str_eq(u.prefix, "/exectime", "trailing slashes dropped");
    cr_assert_eq(api_url_parse("http://[::1]:9/", &u, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_str_eq(u.port, "9");
}

Test(api_client, url_refuses_https_and_what_is_not_a_plain_http_url)
{
    api_url_t u;
    cr_assert_eq(api_url_parse("https://h", &u, err, sizeof err), -EINVAL);
    cr_assert_not_null(strstr(err, "https:// is not supported"), "%s", err);
    const char *bad[] = {"h:80",           "http://",      "http://:80",  "http://h:0",
                         "http://h:65536", "http://h:8x",  "http://[::1", "http://u@h",
                         "http://h/p?q=1", "http://h/a b", "http://h#f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(api_url_parse(bad[i], &u, err, sizeof err), -EINVAL, "%s accepted", bad[i]);
}

Test(api_client, query_values_are_percent_encoded_and_bounded)
{
    char q[64] = "";
    cr_assert_eq(api_query_append(q, sizeof q, "workflow_id", "wf,\"odd\" é"), 0);
    cr_assert_eq(api_query_append(q, sizeof q, "status", "failed"), 0);
    cr_assert_str_eq(q, "?workflow_id=wf%2C%22odd%22%20%C3%A9&status=failed");
    char small[16] = "";
    cr_assert_eq(api_query_append(small, sizeof small, "a", "bc"), 0);
    cr_assert_eq(api_query_append(small, sizeof small, "percentiles", "50"), -ENOSPC);
    cr_assert_str_eq(small, "?a=bc", "a value that does not fit leaves the string as it was");
}
