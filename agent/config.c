/* config — see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen_addr.h"
#include "log.h"
#include "redis_url.h"

#ifndef EXECTIME_UI_DIR_DEFAULT
#define EXECTIME_UI_DIR_DEFAULT "/usr/local/share/exectime/ui"
#endif

/* Bytes read from a secret's file: more than any string field holds, so a longer file is
 * refused rather than cut. */
#define SECRET_FILE_MAX 1024

typedef enum setting_type {
    SETTING_STRING,
    SETTING_INT,
    SETTING_FILE, /* a path whose contents are the value of the string field at offset */
} setting_type_t;

typedef int (*setting_check_fn)(const char *value, char *why, size_t why_cap);

typedef struct setting {
    const char *name; /* flag without the leading "--" */
    const char *env;
    setting_type_t type;
    size_t offset; /* of the field in config_t (SETTING_FILE: the field it fills) */
    size_t size;   /* of a string field */
    const char *default_value;
    long min, max; /* for SETTING_INT */
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
#define FILE_OF(field) SETTING_FILE, offsetof(config_t, field), sizeof(((config_t *)0)->field)

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
     "PostgreSQL: libpq URI or conninfo string (required, here or in a file)"},
    {"database-url-file", "EXECTIME_DATABASE_URL_FILE", FILE_OF(database_url), "", 0, 0, NULL,
     "file holding EXECTIME_DATABASE_URL (a Kubernetes secret volume, a systemd credential); "
     "a trailing newline is dropped"},
    {"listen", "EXECTIME_LISTEN", STR(listen), "127.0.0.1:8080", 0, 0, check_listen,
     "HTTP address: host:port or [ipv6]:port"},
    {"ops-listen", "EXECTIME_OPS_LISTEN", STR(ops_listen), "", 0, 0, check_listen_or_empty,
     "second HTTP address serving only /healthz, /readyz and /metrics, apart from the API's "
     "connection limits (empty: off)"},
    {"http-max-connections", "EXECTIME_HTTP_MAX_CONNECTIONS", INT(http_max_connections), "1024", 1,
     65536, NULL,
     "connections open at once on EXECTIME_LISTEN; beyond, the longest-idle keep-alive one is "
     "closed, or the newcomer gets 503"},
    {"http-max-connections-per-client", "EXECTIME_HTTP_MAX_CONNECTIONS_PER_CLIENT",
     INT(http_max_connections_per_client), "128", 1, 65536, NULL,
     "the same, per remote IP address (raise it behind a reverse proxy)"},
    {"jwt-secret", "EXECTIME_JWT_SECRET", STR(jwt_secret), "", 0, 0, NULL,
     "HS256 secret for API tokens"},
    {"jwt-secret-file", "EXECTIME_JWT_SECRET_FILE", FILE_OF(jwt_secret), "", 0, 0, NULL,
     "file holding EXECTIME_JWT_SECRET; a trailing newline is dropped"},
    {"jwt-public-key-file", "EXECTIME_JWT_PUBLIC_KEY_FILE", STR(jwt_public_key_file), "", 0, 0,
     NULL, "PEM public key for RS256/ES256 API tokens"},
    {"batch-max", "EXECTIME_BATCH_MAX", INT(batch_max), "50000", 1, 50000, NULL,
     "most events written in one transaction (a batch is written when full, or when "
     "EXECTIME_FLUSH_MS old and the writer is free)"},
    {"batch-max-keys", "EXECTIME_BATCH_MAX_KEYS", INT(batch_max_keys), "10000", 100, 100000, NULL,
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
    {"dead-letter-max-bytes", "EXECTIME_DEAD_LETTER_MAX_BYTES", INT(dead_letter_max_bytes), "65536",
     0, 1048576, NULL,
     "a dead letter keeps at most this many bytes of its event (field truncated: full size)"},
    {"consumer-expire-ms", "EXECTIME_CONSUMER_EXPIRE_MS", INT(consumer_expire_ms), "3600000", 10000,
     2147483647, NULL,
     "a consumer of the group with nothing pending, idle this long, is removed (ms)"},
    {"statement-timeout-ms", "EXECTIME_STATEMENT_TIMEOUT_MS", INT(statement_timeout_ms), "60000",
     1000, 3600000, NULL,
     "statement_timeout of the writer's session (ms); a round trip unanswered 10 s longer "
     "resets the session"},
    {"shutdown-timeout-ms", "EXECTIME_SHUTDOWN_TIMEOUT_MS", INT(shutdown_timeout_ms), "30000", 100,
     3600000, NULL,
     "on SIGTERM, most time to commit what is in flight before exiting with status 3 (ms)"},
    {"raw-retention-days", "EXECTIME_RAW_RETENTION_DAYS", INT(raw_retention_days), "30", 1, 3650,
     NULL, "days of raw rows kept; older events are refused"},
    {"minute-retention-days", "EXECTIME_MINUTE_RETENTION_DAYS", INT(minute_retention_days), "14", 1,
     3650, NULL, "days of minute rollups kept"},
    {"hour-retention-days", "EXECTIME_HOUR_RETENTION_DAYS", INT(hour_retention_days), "400", 1,
     36500, NULL, "days of hour rollups kept"},
    {"max-workflows-per-tenant", "EXECTIME_MAX_WORKFLOWS_PER_TENANT", INT(max_workflows_per_tenant),
     "10000", 1, 1000000, NULL,
     "distinct workflows a tenant may have in the per-workflow rollups; runs of further "
     "workflows are stored and counted tenant-wide, and rolled up per workflow under "
     "\"(overflow)\" (use one value for every agent of a database)"},
    {"api-statement-timeout-ms", "EXECTIME_API_STATEMENT_TIMEOUT_MS", INT(api_statement_timeout_ms),
     "5000", 1, 20000, NULL,
     "an API query running longer is cancelled and answered 503 (ms; under the 30 s "
     "request timeout)"},
    {"api-cache-entries", "EXECTIME_API_CACHE_ENTRIES", INT(api_cache_entries), "1024", 0, 65536,
     NULL,
     "summary answers whose whole days the API keeps merged in memory (each up to 19 KiB, "
     "typically 2-4 KiB), dropped by the writers' notifications; 0: off"},
    {"api-max-response-bytes", "EXECTIME_API_MAX_RESPONSE_BYTES", INT(api_max_response_bytes),
     "8388608", 1024, 1073741824, NULL,
     "largest statistics answer (bytes); a larger one is refused with 422 response_too_large"},
    {"http-response-budget-bytes", "EXECTIME_HTTP_RESPONSE_BUDGET_BYTES",
     INT(http_response_budget_bytes), "67108864", 1048576, 2147483647, NULL,
     "response bytes held at once for slow readers, all connections (bytes); beyond, answers "
     "over 16 KiB are replaced by 503 with Retry-After (/metrics is always answered)"},
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

/* Reads a secret's file into the string field of s: one line, a trailing newline dropped
 * (what `echo` and Kubernetes secret volumes write). */
static int setting_read_file(config_t *cfg, const setting_t *s, const char *path, const char *who,
                             char *err, size_t err_cap)
{
    char *field = (char *)cfg + s->offset;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "%s: cannot read \"%s\": %s", who, path, strerror(errno));
        return -EINVAL;
    }
    char buf[SECRET_FILE_MAX + 2];
    size_t len = fread(buf, 1, sizeof buf, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        snprintf(err, err_cap, "%s: cannot read \"%s\"", who, path);
        return -EINVAL;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len >= s->size || len > SECRET_FILE_MAX) {
        snprintf(err, err_cap, "%s: \"%s\" holds more than %zu bytes", who, path, s->size - 1);
        return -EINVAL;
    }
    if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\0', len)) {
        snprintf(err, err_cap, "%s: \"%s\" must hold one non-empty line of text", who, path);
        return -EINVAL;
    }
    memcpy(field, buf, len);
    field[len] = '\0';
    return 0;
}

/* Parses and stores one value; who names the source ("EXECTIME_X" or "--x") for errors. */
static int setting_apply(config_t *cfg, const setting_t *s, const char *value, const char *who,
                         char *err, size_t err_cap)
{
    char why[256] = "";
    char *field = (char *)cfg + s->offset;
    if (s->type == SETTING_FILE) /* empty: no file, the plain setting stands */
        return *value ? setting_read_file(cfg, s, value, who, err, err_cap) : 0;
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
        int rc =
            setting_apply(cfg, &settings[i], settings[i].default_value, "default", err, sizeof err);
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

/* The plain string setting a SETTING_FILE row fills. */
static const setting_t *file_target(const setting_t *file_row)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (settings[i].type == SETTING_STRING && settings[i].offset == file_row->offset)
            return &settings[i];
    return NULL;
}

int config_load_env(config_t *cfg, char *err, size_t err_cap)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        const char *value = getenv(s->env);
        if (value == NULL)
            continue;
        const setting_t *target = s->type == SETTING_FILE ? file_target(s) : NULL;
        const char *direct = target ? getenv(target->env) : NULL;
        if (*value && direct && *direct) {
            snprintf(err, err_cap, "%s and %s are both set: set one", target->env, s->env);
            return -EINVAL;
        }
        int rc = config_apply(cfg, i, value, s->env, err, err_cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t config_setting_count(void)
{
    return SETTING_COUNT;
}

const char *config_setting_flag(size_t index)
{
    return index < SETTING_COUNT ? settings[index].name : NULL;
}

int config_apply(config_t *cfg, size_t index, const char *value, const char *who, char *err,
                 size_t err_cap)
{
    if (index >= SETTING_COUNT) {
        snprintf(err, err_cap, "%s: no such setting", who);
        return -EINVAL;
    }
    char flag_who[80];
    if (who == NULL) {
        snprintf(flag_who, sizeof flag_who, "--%s", settings[index].name);
        who = flag_who;
    }
    int rc = setting_apply(cfg, &settings[index], value, who, err, err_cap);
    if (rc == 0 && settings[index].offset == offsetof(config_t, stream))
        rc = split_streams(cfg, who, err, err_cap);
    return rc;
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

static bool listed(const char *name, const char *const *only)
{
    if (only == NULL)
        return true;
    for (; *only; only++)
        if (strcmp(*only, name) == 0)
            return true;
    return false;
}

void config_print_help(FILE *out, const char *const *only)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        if (!listed(s->name, only))
            continue;
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
