/*
 * exectime-agent — commands: run (default), migrate, verify, rollup-rebuild, version, help.
 * Configuration comes from config (environment, then flags); a bad value stops start-up
 * with one line naming the variable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "migrate.h"
#include "timeutil.h"
#include "verify.h"

#include "exectime_version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: exectime-agent [run|migrate|verify|rollup-rebuild|version|help] [--flag value ...]\n"
            "\n"
            "  run       consume the stream(s), write batches and rollups, serve HTTP (default)\n"
            "  migrate   apply the embedded schema migrations (needs a role that may create\n"
            "            schemas and roles, e.g. the database owner)\n"
            "  verify    recompute rollups from raw rows and print every difference; exit 1 if\n"
            "            any: [--tenant T] [--from TIME] [--to TIME] (default: the raw window)\n"
            "  rollup-rebuild  replace the rollups of a range by a recomputation from the raw\n"
            "            rows (same arguments as verify; run it as the schema owner)\n"
            "  version   print the version\n"
            "\n"
            "settings (each flag has an environment variable):\n");
    config_print_help(out);
}

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
static int run_verify(const config_t *cfg, char **argv, const int *rest, int rest_count,
                      bool rebuild)
{
    int64_t now = et_now_us();
    verify_options_t opts = {NULL, et_retention_start(now, cfg->raw_retention_days),
                             now + ET_US_PER_HOUR, 50};
    for (int i = 1; i < rest_count; i += 2) { /* flag and value pairs */
        const char *arg = argv[rest[i]];
        const char *value = i + 1 < rest_count ? argv[rest[i + 1]] : NULL;
        if (strcmp(arg, "--tenant") == 0 && value) {
            opts.tenant_id = value;
        } else if (strcmp(arg, "--from") == 0) {
            if (parse_time_flag("--from", value, false, &opts.from_us) < 0)
                return 2;
        } else if (strcmp(arg, "--to") == 0) {
            if (parse_time_flag("--to", value, true, &opts.to_us) < 0)
                return 2;
        } else {
            fprintf(stderr, "exectime-agent %s: unknown argument \"%s\"\n",
                    rebuild ? "rollup-rebuild" : "verify", arg);
            return 2;
        }
    }
    if (opts.from_us >= opts.to_us) {
        fprintf(stderr, "exectime-agent: --from must be before --to\n");
        return 2;
    }
    return rebuild ? verify_rebuild(cfg, &opts, stdout) : verify_run(cfg, &opts, stdout);
}

int main(int argc, char **argv)
{
    config_t *cfg = calloc(1, sizeof *cfg);
    int rest[64];
    int rest_count = 0;
    char err[512];
    if (cfg == NULL)
        return 1;
    config_defaults(cfg);
    if (config_load_env(cfg, err, sizeof err) < 0 ||
        config_load_args(cfg, argc, argv, 1, rest, 64, &rest_count, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: %s\n", err);
        free(cfg);
        return 2;
    }
    const char *command = rest_count > 0 ? argv[rest[0]] : "run";
    if (rest_count > 0 && strncmp(command, "--", 2) == 0) {
        if (strcmp(command, "--help") == 0) {
            usage(stdout);
            free(cfg);
            return 0;
        }
        fprintf(stderr, "exectime-agent: unknown flag %s (see exectime-agent help)\n", command);
        free(cfg);
        return 2;
    }
    log_level_t level = LOG_INFO;
    int rc = log_level_parse(cfg->log_level, &level);
    (void)rc; /* validated by config */
    log_configure(level, strcmp(cfg->log_format, "json") == 0);

    int code = 0;
    if (strcmp(command, "help") == 0) {
        usage(stdout);
    } else if (strcmp(command, "version") == 0) {
        printf("exectime-agent %s (schema version %d)\n", EXECTIME_VERSION,
               migrate_latest_version());
    } else if (strcmp(command, "config-markdown") == 0) {
        config_print_markdown(stdout);
    } else if (config_validate(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "exectime-agent: %s\n", err);
        code = 2;
    } else if (strcmp(command, "run") == 0) {
        if (rest_count > 1) {
            fprintf(stderr, "exectime-agent run: unexpected argument \"%s\"\n", argv[rest[1]]);
            code = 2;
        } else {
            code = agent_run(cfg);
        }
    } else if (strcmp(command, "migrate") == 0) {
        int applied = 0;
        if (migrate_apply(cfg->database_url, &applied, err, sizeof err) < 0) {
            fprintf(stderr, "exectime-agent migrate: %s\n", err);
            code = 1;
        } else {
            printf("schema at version %d (%d migration%s applied now)\n",
                   migrate_latest_version(), applied, applied == 1 ? "" : "s");
        }
    } else if (strcmp(command, "verify") == 0) {
        code = run_verify(cfg, argv, rest, rest_count, false);
    } else if (strcmp(command, "rollup-rebuild") == 0) {
        code = run_verify(cfg, argv, rest, rest_count, true);
    } else {
        fprintf(stderr, "exectime-agent: unknown command \"%s\" (see exectime-agent help)\n",
                command);
        code = 2;
    }
    free(cfg);
    return code;
}
