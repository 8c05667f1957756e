/*
 * config — the agent's settings, defined once in a table (name, environment variable,
 * flag, type, default, help). Each setting comes from its default, then the environment
 * (EXECTIME_REDIS_URL), then the command line (--redis-url), the later winning.
 *
 * Ownership: config_t holds copies of every string (fixed buffers); nothing points into
 * argv or environ. Errors return -EINVAL with one line naming the variable or flag.
 */
#ifndef EXECTIME_CONFIG_H
#define EXECTIME_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_STREAMS_MAX 16

typedef struct config {
    char redis_url[512];
    char stream[1024];                     /* as given: comma-separated stream keys */
    char streams[CONFIG_STREAMS_MAX][256]; /* parsed from stream */
    int stream_count;
    char group[128];
    char consumer[128];
    char database_url[1024];
    char listen[128];
    char ops_listen[128];                /* /healthz, /readyz, /metrics only; "" = none */
    int http_max_connections;            /* on listen: open at once */
    int http_max_connections_per_client; /* on listen: open at once from one IP address */
    char jwt_secret[512];
    char jwt_public_key_file[512];
    int batch_max;             /* events per transaction */
    int batch_max_keys;        /* distinct minute rollup keys per transaction */
    int flush_ms;              /* age at which a partial batch is written */
    int claim_idle_ms;         /* pending this long on another consumer: XAUTOCLAIM takes it */
    int max_deliveries;        /* delivered more often than this: dead-lettered */
    int consumer_expire_ms;    /* idle this long with nothing pending: removed from the group */
    int dead_letter_maxlen;    /* MAXLEN ~ of <stream>:dead */
    int dead_letter_max_bytes; /* event bytes a dead letter keeps */
    int statement_timeout_ms;  /* the writer session's statement_timeout */
    int shutdown_timeout_ms;   /* SIGTERM: most time to commit what is in flight */
    int raw_retention_days;
    int minute_retention_days;
    int hour_retention_days;
    int max_workflows_per_tenant;   /* distinct workflows in a tenant's per-workflow rollups */
    int api_statement_timeout_ms;   /* statement_timeout of the API's database sessions */
    int api_max_response_bytes;     /* a statistics answer larger than this is refused (422) */
    int api_cache_entries;          /* day_cache: merged closed days of summary answers */
    int http_response_budget_bytes; /* response bytes held in write buffers, all connections */
    char cors_origins[1024];
    char ui_dir[512]; /* dashboard.html and exectime-widget.js */
    char log_level[16];
    char log_format[16];
} config_t;

/* Fills every setting with its default (consumer: "<hostname>-<pid>"). */
void config_defaults(config_t *cfg);

/* Applies EXECTIME_* variables from the environment (a secret and its *_FILE both set is an
 * error). */
__attribute__((warn_unused_result)) int config_load_env(config_t *cfg, char *err, size_t err_cap);

/*
 * The settings as flags, for the command line parser: index 0..config_setting_count()-1,
 * config_setting_flag(i) its name without "--" (static storage), config_apply stores one
 * value (who names the source in errors; NULL: "--<flag>"). A *-file setting reads the
 * value of its plain setting from the file named (one line, trailing newline dropped).
 */
size_t config_setting_count(void);
const char *config_setting_flag(size_t index);
__attribute__((warn_unused_result)) int config_apply(config_t *cfg, size_t index, const char *value,
                                                     const char *who, char *err, size_t err_cap);

/* Checks cross-setting rules (e.g. a database URL is set). */
__attribute__((warn_unused_result)) int config_validate(const config_t *cfg, char *err,
                                                        size_t err_cap);

/* Prints the settings named in only (NULL-terminated flag names; NULL: every setting):
 * flag, variable, default and help, from the table. */
void config_print_help(FILE *out, const char *const *only);

/* Prints the table as the Markdown of docs/configuration.md. */
void config_print_markdown(FILE *out);

#endif
