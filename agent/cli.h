/*
 * cli — exectime-agent's command line: one command (run, migrate, verify, rollup-rebuild,
 * query, version, help) and flags anywhere around it, read by one getopt_long pass over one
 * option list: every setting of config's table (--redis-url …, also as EXECTIME_* variables),
 * the commands' own flags (--tenant, --from, --to; query's --workflow, --format …), -h/--help
 * and --version.
 *
 * Ownership: cli_t points into argv (which getopt_long may reorder); settings are stored in
 * the config_t passed in. Errors: -EINVAL with one line in err that names the argument;
 * the caller prints it and exits 2.
 */
#ifndef EXECTIME_CLI_H
#define EXECTIME_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

typedef enum cli_command {
    CLI_RUN,
    CLI_MIGRATE,
    CLI_VERIFY,
    CLI_ROLLUP_REBUILD,
    CLI_QUERY, /* the statistics API from a terminal (query_command.h) */
    CLI_VERSION,
    CLI_HELP,
    CLI_CONFIG_MARKDOWN, /* the settings as docs/configuration.md's table (not in --help) */
} cli_command_t;

typedef struct cli {
    cli_command_t command; /* CLI_RUN when none is given */
    bool command_given;
    bool help;                /* -h/--help: print the command's help and do nothing else */
    bool version;             /* --version */
    cli_command_t help_topic; /* help COMMAND */
    bool help_topic_given;
    const char *tenant; /* verify, rollup-rebuild: NULL = every tenant; query: the token's */
    const char *from;   /* verify, rollup-rebuild, query: as given, NULL = default */
    const char *to;
    /* query's own flags, as given; NULL when absent (the API's default) */
    const char *workflow;
    const char *group_by;    /* "workflow" (checked here) */
    const char *status;      /* the API judges it */
    const char *percentiles; /* the API judges it */
    const char *interval;    /* the API judges it */
    const char *format;      /* "table", "csv" or "json" (checked here); NULL = table */
    const char *url;         /* over EXECTIME_API_URL */
    const char *token;       /* over EXECTIME_TOKEN */
} cli_t;

/* Reads argv[1..argc) into out and the settings into cfg (over what cfg holds already). */
__attribute__((warn_unused_result)) int cli_parse(int argc, char **argv, config_t *cfg, cli_t *out,
                                                  char *err, size_t err_cap);

/* The help of one command (its usage, what it does, its flags and settings), or with
 * general = true the list of commands and every setting. */
void cli_print_help(FILE *out, cli_command_t command, bool general);

const char *cli_command_name(cli_command_t command);

#endif
