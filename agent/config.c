/* config — see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen_addr.h"
#include "log.h"
#include "redis_url.h"

#ifndef EXECTIME_UI_DIR_DEFAULT
#define EXECTIME_UI_DIR_DEFAULT "/usr/local/share/exectime/ui"
#endif

typedef enum setting_type {
    SETTING_STRING,
    SETTING_INT,
} setting_type_t;

typedef int (*setting_check_fn)(const char *value, char *why, size_t why_cap);

typedef struct setting {
    const char *name; /* flag without the leading "--" */
    const char *env;
    setting_type_t type;
    size_t offset;   /* of the field in config_t */
    size_t size;     /* of a string field */
    const char *default_value;
    long min, max;   /* for SETTING_INT */
    setting_check_fn check;
    const char *help;
} setting_t;

static int check_log_level(const char *v, char *why, size_t cap)
{
    log_level_t level;
    if (log_level_parse(v, &level) == 0)
        return 0;
    snprintf(why, cap, "must be debug, info, warn or error");
    return -EINVAL;
}

static int check_log_format(const char *v, char *why, size_t cap)
{
    if (strcmp(v, "json") == 0 || strcmp(v, "text") == 0)
        return 0;
    snprintf(why, cap, "must be json or text");
    return -EINVAL;
}

static int check_redis_url(const char *v, char *why, size_t cap)
{
    et_redis_url_t url;
    return et_redis_url_parse(v, &url, why, cap);
}

static int check_not_empty(const char *v, char *why, size_t cap)
{
    if (*v)
        return 0;
    snprintf(why, cap, "must not be empty");
    return -EINVAL;
}

/* host:port or [v6]:port, numeric: what the HTTP server will bind (listen_addr). */
static int check_listen(const char *v, char *why, size_t cap)
{
    struct sockaddr_storage ss;
    return listen_addr_parse(v, &ss, why, cap);
}

/* Like check_listen, but empty means "off". */
static int check_listen_or_empty(const char *v, char *why, size_t cap)
{
    return *v ? check_listen(v, why, cap) : 0;
}

#define STR(field) SETTING_STRING, offsetof(config_t, field), sizeof(((config_t *)0)->field)
#define INT(field) SETTING_INT, offsetof(config_t, field), 0

static const setting_t settings[] = {
    {"redis-url", "EXECTIME_REDIS_URL", STR(redis_url), "redis://127.0.0.1:6379", 0, 0,
     check_redis_url, "Redis to consume from: redis://[[user]:password@]host[:port][/db]"},
    {"stream", "EXECTIME_STREAM", STR(stream), "exectime:events", 0, 0, check_not_empty,
     "stream key, or a comma-separated list of keys"},
    {"group", "EXECTIME_GROUP", STR(group), "exectime", 0, 0, check_not_empty,
     "consumer group (created when missing)"},
    {"consumer", "EXECTIME_CONSUMER", STR(consumer), "", 0, 0, NULL,
     "consumer name in the group (default: <hostname>-<pid>; in Kubernetes the pod name)"},
    {"database-url", "EXECTIME_DATABASE_URL", STR(database_url), "", 0, 0, NULL,
     "PostgreSQL: libpq URI or conninfo string (required)"},
    {"listen", "EXECTIME_LISTEN", STR(listen), "127.0.0.1:8080", 0, 0, check_listen,
     "HTTP address: host:port or [ipv6]:port"},
    {"ops-listen", "EXECTIME_OPS_LISTEN", STR(ops_listen), "", 0, 0, check_listen_or_empty,
     "second HTTP address serving only /healthz, /readyz and /metrics, apart from the API's "
     "connection limits (empty: off)"},
    {"http-max-connections", "EXECTIME_HTTP_MAX_CONNECTIONS", INT(http_max_connections), "1024",
     1, 65536, NULL,
     "connections open at once on EXECTIME_LISTEN; beyond, the longest-idle keep-alive one is "
     "closed, or the newcomer gets 503"},
    {"http-max-connections-per-client", "EXECTIME_HTTP_MAX_CONNECTIONS_PER_CLIENT",
     INT(http_max_connections_per_client), "128", 1, 65536, NULL,
     "the same, per remote IP address (raise it behind a reverse proxy)"},
    {"jwt-secret", "EXECTIME_JWT_SECRET", STR(jwt_secret), "", 0, 0, NULL,
     "HS256 secret for API tokens"},
    {"jwt-public-key-file", "EXECTIME_JWT_PUBLIC_KEY_FILE", STR(jwt_public_key_file), "", 0, 0,
     NULL, "PEM public key for RS256/ES256 API tokens"},
    {"batch-max", "EXECTIME_BATCH_MAX", INT(batch_max), "50000", 1, 50000, NULL,
     "most events written in one transaction (a batch is written when full, or when "
     "EXECTIME_FLUSH_MS old and the writer is free)"},
    {"batch-max-keys", "EXECTIME_BATCH_MAX_KEYS", INT(batch_max_keys), "10000", 100, 100000,
     NULL,
     "a batch is written once it holds this many distinct (tenant, workflow, minute, "
     "status) rollup keys: bounds the rollup work and memory of one transaction"},
    {"flush-ms", "EXECTIME_FLUSH_MS", INT(flush_ms), "200", 1, 60000, NULL,
     "a partial batch is written once it is this old (ms)"},
    {"claim-idle-ms", "EXECTIME_CLAIM_IDLE_MS", INT(claim_idle_ms), "60000", 1000, 86400000, NULL,
     "entries pending this long on another consumer are claimed (ms)"},
    {"max-deliveries", "EXECTIME_MAX_DELIVERIES", INT(max_deliveries), "10", 1, 1000, NULL,
     "an entry delivered more often is dead-lettered"},
    {"dead-letter-maxlen", "EXECTIME_DEAD_LETTER_MAXLEN", INT(dead_letter_maxlen), "10000", 100,
     10000000, NULL, "the dead-letter stream <stream>:dead keeps about this many entries"},
    {"dead-letter-max-bytes", "EXECTIME_DEAD_LETTER_MAX_BYTES", INT(dead_letter_max_bytes),
     "65536", 0, 1048576, NULL,
     "a dead letter keeps at most this many bytes of its event (field truncated: full size)"},
    {"consumer-expire-ms", "EXECTIME_CONSUMER_EXPIRE_MS", INT(consumer_expire_ms), "3600000",
     10000, 2147483647, NULL,
     "a consumer of the group with nothing pending, idle this long, is removed (ms)"},
    {"statement-timeout-ms", "EXECTIME_STATEMENT_TIMEOUT_MS", INT(statement_timeout_ms), "60000",
     1000, 3600000, NULL,
     "statement_timeout of the writer's session (ms); a round trip unanswered 10 s longer "
     "resets the session"},
    {"shutdown-timeout-ms", "EXECTIME_SHUTDOWN_TIMEOUT_MS", INT(shutdown_timeout_ms), "30000",
     100, 3600000, NULL,
     "on SIGTERM, most time to commit what is in flight before exiting with status 3 (ms)"},
    {"raw-retention-days", "EXECTIME_RAW_RETENTION_DAYS", INT(raw_retention_days), "30", 1, 3650,
     NULL, "days of raw rows kept; older events are refused"},
    {"minute-retention-days", "EXECTIME_MINUTE_RETENTION_DAYS", INT(minute_retention_days), "14",
     1, 3650, NULL, "days of minute rollups kept"},
    {"hour-retention-days", "EXECTIME_HOUR_RETENTION_DAYS", INT(hour_retention_days), "400", 1,
     36500, NULL, "days of hour rollups kept"},
    {"max-workflows-per-tenant", "EXECTIME_MAX_WORKFLOWS_PER_TENANT",
     INT(max_workflows_per_tenant), "10000", 1, 1000000, NULL,
     "distinct workflows a tenant may have in the per-workflow rollups; runs of further "
     "workflows are stored and counted tenant-wide, and rolled up per workflow under "
     "\"(overflow)\" (use one value for every agent of a database)"},
    {"api-statement-timeout-ms", "EXECTIME_API_STATEMENT_TIMEOUT_MS",
     INT(api_statement_timeout_ms), "5000", 1, 20000, NULL,
     "an API query running longer is cancelled and answered 503 (ms; under the 30 s "
     "request timeout)"},
    {"api-cache-entries", "EXECTIME_API_CACHE_ENTRIES", INT(api_cache_entries), "1024", 0,
     65536, NULL,
     "summary answers whose whole days the API keeps merged in memory (each up to 19 KiB, "
     "typically 2-4 KiB), dropped by the writers' notifications; 0: off"},
    {"api-max-response-bytes", "EXECTIME_API_MAX_RESPONSE_BYTES", INT(api_max_response_bytes),
     "8388608", 1024, 1073741824, NULL,
     "largest statistics answer (bytes); a larger one is refused with 422 response_too_large"},
    {"http-response-budget-bytes", "EXECTIME_HTTP_RESPONSE_BUDGET_BYTES",
     INT(http_response_budget_bytes), "67108864", 1048576, 2147483647, NULL,
     "response bytes held at once for slow readers, all connections (bytes); beyond, answers "
     "over 16 KiB are replaced by 503 with Retry-After"},
    {"cors-origins", "EXECTIME_CORS_ORIGINS", STR(cors_origins), "", 0, 0, NULL,
     "comma-separated origins whose pages may call the API and load the widget bundle, or *"},
    {"ui-dir", "EXECTIME_UI_DIR", STR(ui_dir), EXECTIME_UI_DIR_DEFAULT, 0, 0, NULL,
     "folder holding the dashboard (dashboard.html, exectime-widget.js)"},
    {"log-level", "EXECTIME_LOG_LEVEL", STR(log_level), "info", 0, 0, check_log_level,
     "debug, info, warn or error"},
    {"log-format", "EXECTIME_LOG_FORMAT", STR(log_format), "json", 0, 0, check_log_format,
     "json or text"},
};
#define SETTING_COUNT (sizeof settings / sizeof settings[0])

/* Parses and stores one value; who names the source ("EXECTIME_X" or "--x") for errors. */
static int setting_apply(config_t *cfg, const setting_t *s, const char *value, const char *who,
                         char *err, size_t err_cap)
{
    char why[256] = "";
    char *field = (char *)cfg + s->offset;
    if (s->type == SETTING_INT) {
        char *end;
        errno = 0;
        long n = strtol(value, &end, 10);
        if (errno || end == value || *end || n < s->min || n > s->max) {
            snprintf(err, err_cap, "%s: \"%s\" is not a whole number from %ld to %ld", who, value,
                     s->min, s->max);
            return -EINVAL;
        }
        *(int *)(void *)field = (int)n;
        return 0;
    }
    if (strlen(value) >= s->size) {
        snprintf(err, err_cap, "%s: longer than %zu bytes", who, s->size - 1);
        return -EINVAL;
    }
    if (s->check && s->check(value, why, sizeof why) < 0) {
        snprintf(err, err_cap, "%s: \"%s\" %s", who, value, why);
        return -EINVAL;
    }
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

/* Splits cfg->stream into cfg->streams. */
static int split_streams(config_t *cfg, const char *who, char *err, size_t err_cap)
{
    cfg->stream_count = 0;
    const char *p = cfg->stream;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len >= sizeof cfg->streams[0]) {
            snprintf(err, err_cap, "%s: each stream key must be 1 to %zu bytes", who,
                     sizeof cfg->streams[0] - 1);
            return -EINVAL;
        }
        if (cfg->stream_count == CONFIG_STREAMS_MAX) {
            snprintf(err, err_cap, "%s: at most %d streams", who, CONFIG_STREAMS_MAX);
            return -EINVAL;
        }
        memcpy(cfg->streams[cfg->stream_count], p, len);
        cfg->streams[cfg->stream_count][len] = '\0';
        cfg->stream_count++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

void config_defaults(config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char err[64];
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        int rc = setting_apply(cfg, &settings[i], settings[i].default_value, "default", err,
                               sizeof err);
        (void)rc; /* defaults are valid by construction; the config test checks them */
    }
    char host[64] = "agent";
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "agent");
    host[sizeof host - 1] = '\0';
    /* In Kubernetes the host name is the pod name, which a restarted container keeps: a
     * stable name lets it re-read its own pending entries at once. Elsewhere the pid keeps
     * two agents on one host apart; deploy/systemd sets a stable name itself. */
    if (getenv("KUBERNETES_SERVICE_HOST") != NULL)
        snprintf(cfg->consumer, sizeof cfg->consumer, "%s", host);
    else
        snprintf(cfg->consumer, sizeof cfg->consumer, "%s-%ld", host, (long)getpid());
    int rc = split_streams(cfg, "default", err, sizeof err);
    (void)rc;
}

int config_load_env(config_t *cfg, char *err, size_t err_cap)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const char *value = getenv(settings[i].env);
        if (value == NULL)
            continue;
        int rc = setting_apply(cfg, &settings[i], value, settings[i].env, err, err_cap);
        if (rc < 0)
            return rc;
        if (settings[i].offset == offsetof(config_t, stream) &&
            (rc = split_streams(cfg, settings[i].env, err, err_cap)) < 0)
            return rc;
    }
    return 0;
}

int config_load_args(config_t *cfg, int argc, char **argv, int first, int *rest, int rest_cap,
                     int *rest_count, char *err, size_t err_cap)
{
    *rest_count = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        const setting_t *found = NULL;
        const char *value = NULL;
        if (strncmp(arg, "--", 2) == 0) {
            const char *name = arg + 2;
            size_t name_len = strcspn(name, "=");
            for (size_t k = 0; k < SETTING_COUNT; k++) {
                if (strlen(settings[k].name) == name_len &&
                    strncmp(settings[k].name, name, name_len) == 0) {
                    found = &settings[k];
                    break;
                }
            }
            if (found && name[name_len] == '=') {
                value = name + name_len + 1;
            } else if (found) {
                if (i + 1 >= argc) {
                    snprintf(err, err_cap, "--%s: needs a value", found->name);
                    return -EINVAL;
                }
                value = argv[++i];
            }
        }
        if (!found) {
            if (*rest_count >= rest_cap) {
                snprintf(err, err_cap, "too many arguments at \"%s\"", arg);
                return -EINVAL;
            }
            rest[(*rest_count)++] = i;
            continue;
        }
        char who[80];
        snprintf(who, sizeof who, "--%s", found->name);
        int rc = setting_apply(cfg, found, value, who, err, err_cap);
        if (rc < 0)
            return rc;
        if (found->offset == offsetof(config_t, stream) &&
            (rc = split_streams(cfg, who, err, err_cap)) < 0)
            return rc;
    }
    return 0;
}

int config_validate(const config_t *cfg, char *err, size_t err_cap)
{
    if (cfg->database_url[0] == '\0') {
        snprintf(err, err_cap,
                 "EXECTIME_DATABASE_URL (--database-url) is required: a libpq URI such as "
                 "postgresql://user@127.0.0.1:5432/exectime");
        return -EINVAL;
    }
    if (cfg->consumer[0] == '\0') {
        snprintf(err, err_cap, "EXECTIME_CONSUMER (--consumer): must not be empty");
        return -EINVAL;
    }
    return 0;
}

void config_print_help(FILE *out)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        fprintf(out, "  --%-24s %s\n      %s%s%s%s\n", s->name, s->env, s->help,
                s->default_value[0] ? " (default: " : "", s->default_value,
                s->default_value[0] ? ")" : "");
    }
}

void config_print_markdown(FILE *out)
{
    fprintf(out, "| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        fprintf(out, "| `%s` | `--%s` | %s%s%s | %s |\n", s->env, s->name,
                s->default_value[0] ? "`" : "", s->default_value[0] ? s->default_value : "—",
                s->default_value[0] ? "`" : "", s->help);
    }
}
