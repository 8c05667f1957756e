/*
 * exectime-agent — commands: run (default), migrate, verify, rollup-rebuild, query, version,
 * help (cli reads the command line). Configuration comes from config (environment, then flags);
 * a bad value stops start-up with one line naming the variable, exit status 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "query_command.h"
#include "timeutil.h"
#include "verify.h"

static int parse_time_flag(const char *flag, const char *value, bool is_end, int64_t *out)
{
    bool date_only = false;
    if (value == NULL || et_time_parse(value, strlen(value), out, &date_only) < 0) {
        fprintf(stderr, "exectime-agent: %s: \"%s\" is not an RFC 3339 time or a date\n", flag,
                value ? value : "");
        return -EINVAL;
    }
    if (is_end && date_only)
        *out += ET_US_PER_DAY; /* a date-only end covers that whole day */
    return 0;
}

/* verify and rollup-rebuild share their arguments: [--tenant T] [--from TIME] [--to TIME]. */
static int run_verify(const config_t *cfg, const cli_t *cli)
{
    int64_t now = et_now_us();
    verify_options_t opts = {cli->tenant, et_retention_start(now, cfg->raw_retention_days),
                             now + ET_US_PER_HOUR, 50};
    if ((cli->from && parse_time_flag("--from", cli->from, false, &opts.from_us) < 0) ||
        (cli->to && parse_time_flag("--to", cli->to, true, &opts.to_us) < 0))
        return 2;
    if (opts.from_us >= opts.to_us) {
        fprintf(stderr, "exectime-agent: --from must be before --to\n");
        return 2;
    }
    return cli->command == CLI_ROLLUP_REBUILD ? verify_rebuild(cfg, &opts, stdout)
                                              : verify_run(cfg, &opts, stdout);
}

static int run_migrate(const config_t *cfg)
{
    char err[512];
    int applied = 0;
    if (migrate_apply(cfg->database_url, &applied, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent migrate: %s\n", err);
        return 1;
    }
    printf("schema at version %d (%d migration%s applied now)\n", migrate_latest_version(), applied,
           applied == 1 ? "" : "s");
    return 0;
}

/* The commands that print and exit: help, version, config-markdown. Returns -1 for the
 * others. */
static int run_informational(const cli_t *cli)
{
    if (cli->help) { /* COMMAND --help: that command's, even help's own */
        cli_print_help(stdout, cli->command, !cli->command_given);
        return 0;
    }
    if (cli->command == CLI_HELP) {
        cli_print_help(stdout, cli->help_topic, !cli->help_topic_given);
        return 0;
    }
    if (cli->version || cli->command == CLI_VERSION) {
        printf("exectime-agent %s (schema version %d)\n", EXECTIME_VERSION,
               migrate_latest_version());
        return 0;
    }
    if (cli->command == CLI_CONFIG_MARKDOWN) {
        config_print_markdown(stdout);
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    config_t *cfg = calloc(1, sizeof *cfg);
    cli_t cli;
    char err[512];
    if (cfg == NULL)
        return 1;
    config_defaults(cfg);
    /* Flags win over the environment: they are read second. A bad environment value does
     * not keep --help or --version from answering. */
    char env_err[512];
    int env_rc = config_load_env(cfg, env_err, sizeof env_err);
    if (cli_parse(argc, argv, cfg, &cli, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: %s\n", err);
        free(cfg);
        return 2;
    }
    int code = run_informational(&cli);
    if (code >= 0) {
        free(cfg);
        return code;
    }
    if (cli.command == CLI_QUERY) {
        /* A client of the API: the agent's settings (the database's above all) are not its
         * business, so neither their absence nor a bad one stops it. */
        free(cfg);
        return query_command_run(&cli, stdout, stderr);
    }
    if (env_rc < 0 || config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: %s\n", env_rc < 0 ? env_err : err);
        free(cfg);
        return 2;
    }
    log_level_t level = LOG_INFO;
    int rc = log_level_parse(cfg->log_level, &level);
    (void)rc; /* validated by config */
    log_configure(level, strcmp(cfg->log_format, "json") == 0);

    switch (cli.command) {
    case CLI_RUN: code = agent_run(cfg); break;
    case CLI_MIGRATE: code = run_migrate(cfg); break;
    case CLI_VERIFY:
    case CLI_ROLLUP_REBUILD: code = run_verify(cfg, &cli); break;
    case CLI_QUERY: /* answered above */
    case CLI_VERSION:
    case CLI_HELP:
    case CLI_CONFIG_MARKDOWN:
        code = 0; /* answered by run_informational */
        break;
    }
    free(cfg);
    return code;
}
