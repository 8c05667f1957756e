/* cli — see cli.h. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

#define PROG "exectime-agent"

/* getopt_long values: the commands' own flags, then the settings from SETTING_BASE on. */
enum {
    OPT_HELP = 'h',
    OPT_VERSION = 0x100,
    OPT_TENANT,
    OPT_FROM,
    OPT_TO,
    OPT_WORKFLOW,
    OPT_GROUP_BY,
    OPT_STATUS,
    OPT_PERCENTILES,
    OPT_INTERVAL,
    OPT_FORMAT,
    OPT_URL,
    OPT_TOKEN,
    OPT_SETTING_BASE = 0x1000,
};

#define OPTIONS_MAX 128

typedef struct command_info {
    const char *name;
    const char *usage;           /* its arguments */
    const char *summary;         /* one line, for the command list */
    const char *text;            /* what it does, for its own help */
    const char *const *settings; /* the settings it reads; NULL: all */
    bool range_flags;            /* takes --tenant, --from, --to */
    bool query_flags;            /* takes --workflow, --format and the others of query */
    bool listed;                 /* shown in the general help */
} command_info_t;

static const char *const database_settings[] = {"database-url", "database-url-file", "log-level",
                                                "log-format", NULL};
static const char *const verify_settings[] = {
    "database-url", "database-url-file", "raw-retention-days", "log-level", "log-format", NULL};
static const char *const no_settings[] = {NULL};

/* clang-format off */
static const char range_text[] =
    "  --tenant T    only this tenant (default: every tenant)\n"
    "  --from TIME   start, RFC 3339 or a date (default: the start of the raw retention)\n"
    "  --to TIME     end, exclusive; a date covers that whole day (default: an hour from now)\n";
static const char query_flags_text[] =
    "  --tenant T           the tenant (default: the token's; required when it allows several)\n"
    "  --workflow W         one workflow (default: all of the tenant's)\n"
    "  --from TIME          start, RFC 3339 or a date (default: 24 hours ago)\n"
    "  --to TIME            end, exclusive; a date covers that whole day (default: now)\n"
    "  --group-by workflow  adds one row per workflow\n"
    "  --status LIST        all (default), success, failed, cancelled, timeout, or a comma list\n"
    "  --percentiles LIST   e.g. 50,95,99.9 (default: 50,90,95,99)\n"
    "  --interval I         minute, hour, day or auto: adds the series\n"
    "  --format F           table (default), csv or json\n"
    "  --url URL            the API, http:// only (default: $EXECTIME_API_URL, else\n"
    "                       http://127.0.0.1:8080)\n"
    "  --token JWT          the bearer token (default: $EXECTIME_TOKEN, else\n"
    "                       $EXECTIME_DEV_TOKEN; prefer the variable: flags show in ps)\n"
    "\nenvironment: EXECTIME_API_URL, EXECTIME_TOKEN (or EXECTIME_DEV_TOKEN, as deploy/local/up\n"
    "writes it to .local/env); the database settings are not read.\n"
    "\nexit status:\n"
    "  0  the statistics were printed\n"
    "  1  any other answer or failure (404, an answer that is not the statistics, ...)\n"
    "  2  usage: an unknown flag, a bad --from/--to/--format/--group-by/--url\n"
    "  3  401 or 403: no token, a refused token, or a tenant the token may not see\n"
    "  4  400 or 422: the API refused a parameter (its message names it)\n"
    "  5  the API is unreachable, timed out (30 s) or answered 5xx (503: database down)\n";
/* clang-format on */

/* Indexed by cli_command_t. */
static const command_info_t commands[] = {
    [CLI_RUN] = {"run", "[run] [--SETTING VALUE ...]",
                 "consume the stream(s), write batches and rollups, serve HTTP (default)",
                 "Consumes the stream(s) with the consumer group, writes the events in batches to\n"
                 "PostgreSQL with their rollups, and serves the statistics API, the dashboard,\n"
                 "/healthz, /readyz and /metrics, until SIGTERM or SIGINT (then commits what is\n"
                 "in flight and exits 0).",
                 NULL, false, false, true},
    [CLI_MIGRATE] = {"migrate", "migrate [--database-url URL]",
                     "apply the embedded schema migrations, then exit",
                     "Applies the embedded schema migrations that the database lacks and exits.\n"
                     "Run it as a role that may create schemas and roles (the database owner);\n"
                     "running it again applies nothing.",
                     database_settings, false, false, true},
    [CLI_VERIFY] = {"verify", "verify [--tenant T] [--from TIME] [--to TIME]",
                    "recompute rollups from raw rows, print every difference (exit 1 if any)",
                    "Recomputes the rollups of the range from the raw rows and prints every\n"
                    "difference; exits 0 when there is none, 1 when there is any.",
                    verify_settings, true, false, true},
    [CLI_ROLLUP_REBUILD] = {"rollup-rebuild",
                            "rollup-rebuild [--tenant T] [--from TIME] [--to TIME]",
                            "replace the rollups of a range by a recomputation from raw rows",
                            "Replaces the rollups of the range by a recomputation from the raw\n"
                            "rows (run it as the schema owner); writers wait for it.",
                            verify_settings, true, false, true},
    [CLI_QUERY] = {"query",
                   "query [--tenant T] [--workflow W] [--from TIME] [--to TIME]\n"
                   "       [--group-by workflow] [--status LIST] [--percentiles LIST]\n"
                   "       [--interval I] [--format table|csv|json] [--url URL] [--token JWT]",
                   "print the statistics API's answer as a table, CSV or JSON",
                   "Asks GET /api/v1/statistics/execution-times of a running agent (over plain\n"
                   "HTTP) and prints the answer: a table (the summary, then one row per workflow\n"
                   "with --group-by workflow, then the series with --interval), CSV (RFC 4180,\n"
                   "one header row; the first column, scope, says summary, workflow or series)\n"
                   "or the API's JSON as it came. Durations are in milliseconds.",
                   no_settings, false, true, true},
    [CLI_VERSION] = {"version", "version", "print the version (also --version)",
                     "Prints the agent's version and the schema version it migrates to.",
                     no_settings, false, false, true},
    [CLI_HELP] = {"help", "help [COMMAND]", "print this help, or a command's (also -h, --help)",
                  "Prints the list of commands, or one command's help.", no_settings, false, false,
                  true},
    [CLI_CONFIG_MARKDOWN] = {"config-markdown", "config-markdown", "",
                             "Prints the settings as the table of docs/configuration.md.",
                             no_settings, false, false, false},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

const char *cli_command_name(cli_command_t command)
{
    return (size_t)command < COMMAND_COUNT ? commands[command].name : "?";
}

static int find_command(const char *name, cli_command_t *out)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            *out = (cli_command_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* The one option list: the commands' flags, then every setting of config's table. */
static int build_options(struct option *opts, size_t cap)
{
    static const struct option own[] = {
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"group-by", required_argument, NULL, OPT_GROUP_BY},
        {"status", required_argument, NULL, OPT_STATUS},
        {"percentiles", required_argument, NULL, OPT_PERCENTILES},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"url", required_argument, NULL, OPT_URL},
        {"token", required_argument, NULL, OPT_TOKEN},
    };
    size_t n = 0;
    size_t settings = config_setting_count();
    if (sizeof own / sizeof own[0] + settings + 1 > cap)
        return -ENOSPC;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        opts[n++] = own[i];
    for (size_t i = 0; i < settings; i++)
        opts[n++] = (struct option){config_setting_flag(i), required_argument, NULL,
                                    OPT_SETTING_BASE + (int)i};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    return 0;
}

static int positional(cli_t *out, const char *arg, char *err, size_t err_cap)
{
    cli_command_t command;
    if (!out->command_given) {
        if (find_command(arg, &command) < 0) {
            snprintf(err, err_cap, "unknown command \"%s\" (see " PROG " --help)", arg);
            return -EINVAL;
        }
        out->command = command;
        out->command_given = true;
        return 0;
    }
    if (out->command == CLI_HELP && !out->help_topic_given &&
        find_command(arg, &out->help_topic) == 0) {
        out->help_topic_given = true;
        return 0;
    }
    snprintf(err, err_cap, "%s: unexpected argument \"%s\" (see " PROG " %s --help)",
             commands[out->command].name, arg, commands[out->command].name);
    return -EINVAL;
}

/* The values of query's flags that the API does not judge (or would judge late). */
static int check_query_values(const cli_t *out, char *err, size_t err_cap)
{
    if (out->group_by && strcmp(out->group_by, "workflow") != 0) {
        snprintf(err, err_cap, "--group-by: \"%s\" is not workflow (the one grouping)",
                 out->group_by);
        return -EINVAL;
    }
    if (out->format && strcmp(out->format, "table") != 0 && strcmp(out->format, "csv") != 0 &&
        strcmp(out->format, "json") != 0) {
        snprintf(err, err_cap, "--format: \"%s\" is not table, csv or json", out->format);
        return -EINVAL;
    }
    const char *const values[] = {out->tenant,   out->workflow, out->status, out->percentiles,
                                  out->interval, out->url,      out->token};
    const char *const flags[] = {"--tenant",   "--workflow", "--status", "--percentiles",
                                 "--interval", "--url",      "--token"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        if (values[i] && values[i][0] == '\0') {
            snprintf(err, err_cap, "%s: an empty value (leave the flag out for the default)",
                     flags[i]);
            return -EINVAL;
        }
    }
    return 0;
}

int cli_parse(int argc, char **argv, config_t *cfg, cli_t *out, char *err, size_t err_cap)
{
    struct option opts[OPTIONS_MAX];
    memset(out, 0, sizeof *out);
    out->command = CLI_RUN;
    if (build_options(opts, OPTIONS_MAX) < 0) {
        snprintf(err, err_cap, "too many settings for the option list");
        return -EINVAL;
    }
    opterr = 0;
    optind = 0; /* GNU: start over, so a second parse (tests) sees a fresh argv */
    int c;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 1: /* "-" in optstring: a positional argument, in order */
            rc = positional(out, optarg, err, err_cap);
            break;
        case OPT_HELP: out->help = true; break;
        case OPT_VERSION: out->version = true; break;
        case OPT_TENANT: out->tenant = optarg; break;
        case OPT_FROM: out->from = optarg; break;
        case OPT_TO: out->to = optarg; break;
        case OPT_WORKFLOW: out->workflow = optarg; break;
        case OPT_GROUP_BY: out->group_by = optarg; break;
        case OPT_STATUS: out->status = optarg; break;
        case OPT_PERCENTILES: out->percentiles = optarg; break;
        case OPT_INTERVAL: out->interval = optarg; break;
        case OPT_FORMAT: out->format = optarg; break;
        case OPT_URL: out->url = optarg; break;
        case OPT_TOKEN: out->token = optarg; break;
        case ':': snprintf(err, err_cap, "%s: needs a value", argv[optind - 1]); return -EINVAL;
        case '?':
            snprintf(err, err_cap, "%s: unknown flag (see " PROG " --help)", argv[optind - 1]);
            return -EINVAL;
        default:
            rc = config_apply(cfg, (size_t)(c - OPT_SETTING_BASE), optarg, NULL, err, err_cap);
            break;
        }
        if (rc < 0)
            return rc;
    }
    const command_info_t *info = &commands[out->command];
    if ((out->tenant || out->from || out->to) && !info->range_flags && !info->query_flags) {
        snprintf(err, err_cap,
                 "%s: --tenant, --from and --to are flags of verify, rollup-rebuild and query",
                 info->name);
        return -EINVAL;
    }
    if ((out->workflow || out->group_by || out->status || out->percentiles || out->interval ||
         out->format || out->url || out->token) &&
        !info->query_flags) {
        snprintf(err, err_cap,
                 "%s: --workflow, --group-by, --status, --percentiles, --interval, "
                 "--format, --url and --token are flags of query",
                 info->name);
        return -EINVAL;
    }
    return check_query_values(out, err, err_cap);
}

void cli_print_help(FILE *out, cli_command_t command, bool general)
{
    if (general) {
        fprintf(out, "usage: " PROG " [COMMAND] [--SETTING VALUE ...]\n\ncommands:\n");
        for (size_t i = 0; i < COMMAND_COUNT; i++)
            if (commands[i].listed)
                fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
        fprintf(out, "\n" PROG " COMMAND --help tells more about one command.\n"
                     "\nsettings (each flag also as its environment variable; "
                     "see docs/configuration.md):\n");
        config_print_help(out, NULL);
        return;
    }
    const command_info_t *info = &commands[command];
    fprintf(out, "usage: " PROG " %s\n\n%s\n", info->usage, info->text);
    if (info->range_flags)
        fprintf(out, "\nflags:\n%s", range_text);
    if (info->query_flags)
        fprintf(out, "\nflags:\n%s", query_flags_text);
    if (info->settings == NULL || info->settings[0] != NULL) {
        fprintf(out, "\nsettings (each flag also as its environment variable; "
                     "see docs/configuration.md):\n");
        config_print_help(out, info->settings);
    }
}
