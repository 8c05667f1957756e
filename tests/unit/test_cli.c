/* Unit tests for agent/cli: commands, flags anywhere, help and version before anything runs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static config_t cfg;
static cli_t cli;
static char err[512];

/* Parses a NULL-terminated argument list (argv[0] added). */
#define PARSE(...) parse_list((const char *[]){"exectime-agent", __VA_ARGS__, NULL})

static int parse_list(const char **list)
{
    static char copies[32][256];
    char *argv[33];
    int argc = 0;
    for (; list[argc] && argc < 32; argc++) {
        snprintf(copies[argc], sizeof copies[argc], "%s", list[argc]);
        argv[argc] = copies[argc];
    }
    argv[argc] = NULL;
    config_defaults(&cfg);
    err[0] = '\0';
    return cli_parse(argc, argv, &cfg, &cli, err, sizeof err);
}

Test(cli, no_command_is_run_and_settings_go_anywhere)
{
    cr_assert_eq(parse_list((const char *[]){"exectime-agent", NULL}), 0, "%s", err);
    cr_assert_eq(cli.command, CLI_RUN);
    cr_assert_not(cli.command_given);
    cr_assert_eq(PARSE("--batch-max", "300", "run", "--group=g2"), 0, "%s", err);
    cr_assert_eq(cli.command, CLI_RUN);
    cr_assert_eq(cfg.batch_max, 300);
    cr_assert_str_eq(cfg.group, "g2");
}

Test(cli, help_is_asked_by_h_help_or_the_help_command_and_names_its_topic)
{
    cr_assert_eq(PARSE("-h"), 0, "%s", err);
    cr_assert(cli.help);
    cr_assert_not(cli.command_given);
    cr_assert_eq(PARSE("migrate", "--help"), 0, "%s", err);
    cr_assert(cli.help, "migrate --help asks for help, it does not migrate");
    cr_assert_eq(cli.command, CLI_MIGRATE);
    cr_assert_eq(PARSE("--help", "verify"), 0, "%s", err);
    cr_assert(cli.help);
    cr_assert_eq(cli.command, CLI_VERIFY);
    cr_assert_eq(PARSE("help", "rollup-rebuild"), 0, "%s", err);
    cr_assert_eq(cli.command, CLI_HELP);
    cr_assert(cli.help_topic_given);
    cr_assert_eq(cli.help_topic, CLI_ROLLUP_REBUILD);
    cr_assert_eq(PARSE("--version"), 0, "%s", err);
    cr_assert(cli.version);
}

Test(cli, verify_takes_its_range_flags_and_others_do_not)
{
    cr_assert_eq(PARSE("verify", "--tenant", "t1", "--from", "2026-01-01", "--to=2026-02-01"), 0,
                 "%s", err);
    cr_assert_eq(cli.command, CLI_VERIFY);
    cr_assert_str_eq(cli.tenant, "t1");
    cr_assert_str_eq(cli.from, "2026-01-01");
    cr_assert_str_eq(cli.to, "2026-02-01");
    cr_assert_lt(PARSE("run", "--tenant", "t1"), 0);
    cr_assert_not_null(strstr(err, "verify, rollup-rebuild and query"), "%s", err);
}

Test(cli, query_takes_its_flags_anywhere_as_given)
{
    cr_assert_eq(PARSE("--format", "csv", "query", "--tenant", "t1", "--group-by=workflow",
                       "--workflow", "wf 1", "--status", "failed,timeout", "--percentiles",
                       "50,99.9", "--interval", "hour", "--url", "http://h:1/x", "--token", "abc",
                       "--from", "2026-01-01", "--to", "2026-01-02T00:00:00Z"),
                 0, "%s", err);
    cr_assert_eq(cli.command, CLI_QUERY);
    cr_assert_str_eq(cli.format, "csv");
    cr_assert_str_eq(cli.tenant, "t1");
    cr_assert_str_eq(cli.group_by, "workflow");
    cr_assert_str_eq(cli.workflow, "wf 1");
    cr_assert_str_eq(cli.status, "failed,timeout");
    cr_assert_str_eq(cli.percentiles, "50,99.9");
    cr_assert_str_eq(cli.interval, "hour");
    cr_assert_str_eq(cli.url, "http://h:1/x");
    cr_assert_str_eq(cli.token, "abc");
    cr_assert_str_eq(cli.from, "2026-01-01");
    cr_assert_str_eq(cli.to, "2026-01-02T00:00:00Z");
    cr_assert_eq(PARSE("query"), 0, "%s", err);
    cr_assert_null(cli.format, "no --format: the table (query_command decides)");
    cr_assert_null(cli.group_by);
    cr_assert_eq(PARSE("query", "--format", "json", "--format", "table"), 0, "%s", err);
    cr_assert_str_eq(cli.format, "table", "the last one wins, as with settings");
}

Test(cli, query_flags_are_refused_by_other_commands)
{
    cr_assert_lt(PARSE("verify", "--format", "csv"), 0);
    cr_assert_not_null(strstr(err, "are flags of query"), "%s", err);
    cr_assert_lt(PARSE("--url", "http://h:1"), 0);
    cr_assert_not_null(strstr(err, "run: "), "%s", err);
    cr_assert_lt(PARSE("migrate", "--token", "abc"), 0);
}

Test(cli, query_refuses_a_format_or_grouping_it_does_not_know_and_empty_values)
{
    cr_assert_lt(PARSE("query", "--format", "xml"), 0);
    cr_assert_not_null(strstr(err, "--format: \"xml\" is not table, csv or json"), "%s", err);
    cr_assert_lt(PARSE("query", "--group-by", "tenant"), 0);
    cr_assert_not_null(strstr(err, "--group-by: \"tenant\""), "%s", err);
    cr_assert_lt(PARSE("query", "--workflow", ""), 0);
    cr_assert_not_null(strstr(err, "--workflow: an empty value"), "%s", err);
    cr_assert_lt(PARSE("query", "--token="), 0);
    cr_assert_not_null(strstr(err, "--token: an empty value"), "%s", err);
    cr_assert_lt(PARSE("query", "extra"), 0);
    cr_assert_not_null(strstr(err, "query: unexpected argument \"extra\""), "%s", err);
}

Test(cli, mistakes_are_named)
{
    cr_assert_lt(PARSE("--no-such-flag"), 0);
    cr_assert_not_null(strstr(err, "--no-such-flag: unknown flag"), "%s", err);
    cr_assert_lt(PARSE("frobnicate"), 0);
    cr_assert_not_null(strstr(err, "unknown command \"frobnicate\""), "%s", err);
    cr_assert_lt(PARSE("migrate", "extra"), 0);
    cr_assert_not_null(strstr(err, "unexpected argument \"extra\""), "%s", err);
    cr_assert_lt(PARSE("run", "--group"), 0);
    cr_assert_not_null(strstr(err, "--group: needs a value"), "%s", err);
    cr_assert_lt(PARSE("--batch-max", "0"), 0);
    cr_assert_not_null(strstr(err, "--batch-max"), "%s", err);
    cr_assert_lt(PARSE("-x"), 0);
    cr_assert_not_null(strstr(err, "unknown flag"), "%s", err);
}

Test(cli, each_command_has_help_naming_its_usage)
{
    for (int c = CLI_RUN; c <= CLI_CONFIG_MARKDOWN; c++) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        cli_print_help(out, (cli_command_t)c, false);
        fclose(out);
        cr_assert_not_null(strstr(text, cli_command_name((cli_command_t)c)), "%s", text);
        cr_assert_not_null(strstr(text, "usage: exectime-agent"), "%s", text);
        free(text);
    }
}
