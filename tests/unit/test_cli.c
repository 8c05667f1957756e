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
    static char copies[16][256];
    char *argv[17];
    int argc = 0;
    for (; list[argc] && argc < 16; argc++) {
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
    cr_assert_not_null(strstr(err, "verify and rollup-rebuild"), "%s", err);
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
