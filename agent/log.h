/*
 * log — one line per message on stderr, as JSON ({"ts","level","msg",…}) or as logfmt
 * text (ts level msg key=value …). Set once at start-up (log_configure) and then used
 * from the one loop thread only.
 *
 * Fields are typed: a string is written as a JSON string, an integer or a finite double
 * as a JSON number (a NaN or an infinity as null), a boolean as true/false. Every line is
 * valid UTF-8 whatever the strings hold: a byte that is not part of a well-formed UTF-8
 * sequence (overlong forms and surrogates included) is written as U+FFFD, and control
 * characters are escaped (JSON: \n, \t, \u00XX; text: \n, \t, \xXX inside a quoted
 * value). A line is at most LOG_LINE_MAX bytes: a string that does not fit is cut at a
 * character boundary, fields that do not fit are left out, and the line then ends with
 * "truncated":true (text: truncated=true).
 *
 * Ownership: strings passed in are copied into the line; nothing is retained.
 */
#ifndef EXECTIME_LOG_H
#define EXECTIME_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LINE_MAX 4096 /* bytes of one line, newline included */
#define LOG_FIELDS_MAX 32 /* fields of one log_write call; more are ignored */

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
} log_level_t;

typedef enum log_field_type {
    LOG_FIELD_STR,
    LOG_FIELD_INT,
    LOG_FIELD_UINT,
    LOG_FIELD_DOUBLE,
    LOG_FIELD_BOOL,
} log_field_type_t;

/* One key and its typed value; build them with log_str, log_int… below. */
typedef struct log_field {
    const char *key;
    log_field_type_t type;
    union {
        const char *s; /* NULL is written as "" */
        int64_t i;
        uint64_t u;
        double d;
        bool b;
    } v;
} log_field_t;

static inline log_field_t log_str(const char *key, const char *value)
{
    return (log_field_t){.key = key, .type = LOG_FIELD_STR, .v.s = value};
}
static inline log_field_t log_int(const char *key, int64_t value)
{
    return (log_field_t){.key = key, .type = LOG_FIELD_INT, .v.i = value};
}
static inline log_field_t log_uint(const char *key, uint64_t value)
{
    return (log_field_t){.key = key, .type = LOG_FIELD_UINT, .v.u = value};
}
static inline log_field_t log_double(const char *key, double value)
{
    return (log_field_t){.key = key, .type = LOG_FIELD_DOUBLE, .v.d = value};
}
static inline log_field_t log_bool(const char *key, bool value)
{
    return (log_field_t){.key = key, .type = LOG_FIELD_BOOL, .v.b = value};
}

/* Returns 0, or -EINVAL for an unknown name. */
int log_level_parse(const char *name, log_level_t *out);
void log_configure(log_level_t min_level, bool json);
bool log_enabled(log_level_t level);

/*
 * Writes one line with typed fields:
 *   log_fields(LOG_INFO, "batch committed", log_uint("events", n), log_str("stream", s));
 * At least one field; use log_write(level, msg, NULL) for none.
 */
#define log_fields(level, msg, ...)                                                                \
    log_write_fields((level), (msg), (const log_field_t[]){__VA_ARGS__},                           \
                     sizeof((const log_field_t[]){__VA_ARGS__}) / sizeof(log_field_t))

/* The function behind log_fields: n fields from fields. */
void log_write_fields(log_level_t level, const char *msg, const log_field_t *fields, size_t n);

/*
 * Writes one line: msg, then key/value pairs given as alternating const char * (NULL
 * terminates), all string fields:
 *   log_write(LOG_INFO, "redis connected", "group", group, NULL);
 */
void log_write(log_level_t level, const char *msg, ...) __attribute__((sentinel));

/* printf-style message without fields. */
void log_fmt(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Formats one line into buf (capacity cap, at least 128) exactly as it would be written,
 * newline included, and returns its length. For tests.
 */
size_t log_format_line(char *buf, size_t cap, bool json, log_level_t level, const char *ts,
                       const char *msg, const log_field_t *fields, size_t n);

#endif
