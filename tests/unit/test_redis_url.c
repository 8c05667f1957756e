/*
 * Unit tests for common/redis_url: the accepted URL forms, their defaults, and a clear
 * reason for everything refused.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "redis_url.h"

static et_redis_url_t parse_ok(const char *url)
{
    et_redis_url_t u;
    char reason[256] = "";

    memset(&u, 0x5a, sizeof(u));
    cr_assert_eq(et_redis_url_parse(url, &u, reason, sizeof(reason)), 0, "\"%s\": %s", url, reason);
    return u;
}

/* Rejected, with a reason containing want, and *out left untouched. */
static void expect_reject(const char *url, const char *want)
{
    et_redis_url_t u, before;
    char reason[256] = "";

    memset(&u, 0x5a, sizeof(u));
    before = u;
    cr_assert_eq(et_redis_url_parse(url, &u, reason, sizeof(reason)), -EINVAL, "\"%s\" accepted",
                 url);
    cr_assert_neq(reason[0], '\0', "\"%s\": no reason", url);
    cr_assert_not_null(strstr(reason, want), "\"%s\": reason \"%s\" lacks \"%s\"", url, reason,
                       want);
    cr_assert_eq(memcmp(&u, &before, sizeof(u)), 0, "\"%s\": output written on failure", url);
}

Test(redis_url, host_only_gets_default_port_and_db)
{
    et_redis_url_t u = parse_ok("redis://localhost");

    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_str_empty(u.unix_path);
    cr_assert_str_empty(u.username);
    cr_assert_str_empty(u.password);
}

Test(redis_url, host_port_and_db)
{
    et_redis_url_t u = parse_ok("redis://cache.internal:6380/3");

    cr_assert_str_eq(u.host, "cache.internal");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 3);
}

Test(redis_url, trailing_slash_means_db_zero)
{
    et_redis_url_t u = parse_ok("redis://127.0.0.1:7000/");

    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 0);
}

Test(redis_url, scheme_is_case_insensitive)
{
    et_redis_url_t u = parse_ok("REDIS://Host_1");

    cr_assert_str_eq(u.host, "Host_1");
    u = parse_ok("Unix:///tmp/r.sock");
    cr_assert_str_eq(u.unix_path, "/tmp/r.sock");
}

Test(redis_url, user_and_password)
{
    et_redis_url_t u = parse_ok("redis://agent:s3cret@redis:6379/1");

    cr_assert_str_eq(u.username, "agent");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "redis");
    cr_assert_eq(u.db, 1);
}

Test(redis_url, password_only_with_leading_colon)
{
    et_redis_url_t u = parse_ok("redis://:pw@localhost");

    cr_assert_str_empty(u.username);
    cr_assert_str_eq(u.password, "pw");
}

Test(redis_url, userinfo_without_colon_is_the_password_like_redis_cli)
{
    et_redis_url_t u = parse_ok("redis://pw@localhost");

    cr_assert_str_empty(u.username);
    cr_assert_str_eq(u.password, "pw");
}

Test(redis_url, password_may_contain_colon_and_at)
{
    et_redis_url_t u = parse_ok("redis://user:p:a@ss@localhost:1");

    cr_assert_str_eq(u.username, "user");
    cr_assert_str_eq(u.password, "p:a@ss");
    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 1);
}

Test(redis_url, bracketed_ipv6_host)
{
    et_redis_url_t u = parse_ok("redis://[::1]");

    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6379);
    u = parse_ok("redis://:pw@[2001:db8::7]:6390/15");
    cr_assert_str_eq(u.host, "2001:db8::7");
    cr_assert_eq(u.port, 6390);
    cr_assert_eq(u.db, 15);
    cr_assert_str_eq(u.password, "pw");
    u = parse_ok("redis://[::ffff:192.0.2.1]:6379");
    cr_assert_str_eq(u.host, "::ffff:192.0.2.1");
}

Test(redis_url, port_and_db_limits)
{
    cr_assert_eq(parse_ok("redis://h:1").port, 1);
    cr_assert_eq(parse_ok("redis://h:65535").port, 65535);
    cr_assert_eq(parse_ok("redis://h/2147483647").db, 2147483647);
    cr_assert_eq(parse_ok("redis://h/0").db, 0);
    expect_reject("redis://h:0", "port");
    expect_reject("redis://h:65536", "port");
    expect_reject("redis://h:99999999999", "port");
    expect_reject("redis://h:", "port");
    expect_reject("redis://h:-1", "port");
    expect_reject("redis://h:+80", "port");
    expect_reject("redis://h:80a", "port");
    expect_reject("redis://h/2147483648", "db");
    expect_reject("redis://h/99999999999", "db");
    expect_reject("redis://h/-1", "db");
    expect_reject("redis://h/x", "db");
    expect_reject("redis://h/1/2", "db");
    expect_reject("redis://h//", "db");
}

Test(redis_url, unix_socket_path)
{
    et_redis_url_t u = parse_ok("unix:///run/redis/redis.sock");

    cr_assert_str_eq(u.unix_path, "/run/redis/redis.sock");
    cr_assert_str_empty(u.host);
    cr_assert_eq(u.db, 0);
}

Test(redis_url, unix_socket_with_password_and_db)
{
    et_redis_url_t u = parse_ok("unix://user:pw@/tmp/redis.sock?db=4");

    cr_assert_str_eq(u.unix_path, "/tmp/redis.sock");
    cr_assert_str_eq(u.username, "user");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_eq(u.db, 4);
}

Test(redis_url, unix_socket_malformed)
{
    expect_reject("unix://", "path");
    expect_reject("unix:///", "empty");
    expect_reject("unix://localhost/tmp/r.sock", "no host");
    expect_reject("unix://relative.sock", "absolute");
    expect_reject("unix:///tmp/r.sock?database=1", "db=N");
    expect_reject("unix:///tmp/r.sock?db=", "db");
    expect_reject("unix:///tmp/r.sock?db=x", "db");
    expect_reject("unix:///tmp/r.sock#frag", "fragment");
}

Test(redis_url, tls_scheme_is_refused_with_a_reason)
{
    expect_reject("rediss://localhost:6380", "TLS");
    expect_reject("REDISS://localhost", "TLS");
}

Test(redis_url, unknown_or_missing_scheme_is_refused)
{
    expect_reject("localhost:6379", "redis://");
    expect_reject("http://localhost", "redis://");
    expect_reject("redis:/localhost", "redis://");
    expect_reject("redis:localhost", "redis://");
    expect_reject("valkey://localhost", "redis://");
}

Test(redis_url, percent_encoding_is_refused_with_a_reason)
{
    expect_reject("redis://:p%40ss@localhost", "percent");
    expect_reject("unix:///tmp/my%20sock", "percent");
}

Test(redis_url, malformed_hosts_are_refused)
{
    expect_reject("redis://", "host");
    expect_reject("redis:///0", "host");
    expect_reject("redis://:6379", "host");
    expect_reject("redis://pw@", "host");
    expect_reject("redis://::1", "brackets");
    expect_reject("redis://[::1", "']'");
    expect_reject("redis://[]:6379", "IPv6");
    expect_reject("redis://[localhost]", "IPv6");
    expect_reject("redis://[::1]x", "after ']'");
    expect_reject("redis://[::1]:", "port");
    expect_reject("redis://[::g]", "IPv6");
    expect_reject("redis://ho$t", "host");
    expect_reject("redis://a,b:6379", "host");
}

Test(redis_url, empty_credentials_are_refused)
{
    expect_reject("redis://@localhost", "password");
    expect_reject("redis://user:@localhost", "password");
    expect_reject("redis://:@localhost", "password");
}

Test(redis_url, spaces_controls_queries_and_fragments_are_refused)
{
    expect_reject("", "empty");
    expect_reject(" redis://localhost", "space");
    expect_reject("redis://localhost ", "space");
    expect_reject("redis://local host", "space");
    expect_reject("redis://localhost\n", "control");
    expect_reject("redis://localhost\t:6379", "control");
    expect_reject("redis://localhost/0?timeout=1", "query");
    expect_reject("redis://localhost?db=1", "query");
    expect_reject("redis://localhost#x", "fragment");
}

Test(redis_url, null_url_is_refused)
{
    et_redis_url_t u;
    char reason[64];

    cr_assert_eq(et_redis_url_parse(NULL, &u, reason, sizeof(reason)), -EINVAL);
    cr_assert_str_neq(reason, "");
}

Test(redis_url, long_fields_are_bounded)
{
    char url[1200], field[600];

    /* longest host that fits: 255 bytes */
    memset(field, 'h', 255);
    field[255] = '\0';
    snprintf(url, sizeof(url), "redis://%s:1", field);
    cr_assert_eq(strlen(parse_ok(url).host), 255);
    field[255] = 'h';
    field[256] = '\0';
    snprintf(url, sizeof(url), "redis://%s:1", field);
    expect_reject(url, "host is too long");

    memset(field, 'u', 128);
    field[128] = '\0';
    snprintf(url, sizeof(url), "redis://%s:pw@h", field);
    expect_reject(url, "username is too long");
    field[127] = '\0';
    snprintf(url, sizeof(url), "redis://%s:pw@h", field);
    cr_assert_eq(strlen(parse_ok(url).username), 127);

    memset(field, 'p', 256);
    field[256] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@h", field);
    expect_reject(url, "password is too long");
    field[255] = '\0';
    snprintf(url, sizeof(url), "redis://:%s@h", field);
    cr_assert_eq(strlen(parse_ok(url).password), 255);

    field[0] = '/';
    memset(field + 1, 's', 255);
    field[256] = '\0';
    snprintf(url, sizeof(url), "unix://%s", field);
    expect_reject(url, "path is too long");
    field[255] = '\0';
    snprintf(url, sizeof(url), "unix://%s", field);
    cr_assert_eq(strlen(parse_ok(url).unix_path), 255);
}

Test(redis_url, reason_is_truncated_to_its_buffer_and_optional)
{
    et_redis_url_t u;
    char small[8];

    memset(small, 'x', sizeof(small));
    cr_assert_eq(et_redis_url_parse("rediss://h", &u, small, sizeof(small)), -EINVAL);
    cr_assert_eq(strlen(small), sizeof(small) - 1);
    cr_assert_eq(et_redis_url_parse("rediss://h", &u, NULL, 0), -EINVAL);
    cr_assert_eq(et_redis_url_parse("redis://h", &u, NULL, 0), 0);
    cr_assert_str_eq(u.host, "h");
}

Test(redis_url, success_clears_the_reason)
{
    et_redis_url_t u;
    char reason[64] = "stale";

    cr_assert_eq(et_redis_url_parse("redis://h", &u, reason, sizeof(reason)), 0);
    cr_assert_str_empty(reason);
}
