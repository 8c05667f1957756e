/*
 * log — one line per message on stderr, as JSON ({"ts","level","msg",…}) or plain text.
 * Set once at start-up (log_configure) and then used from the one loop thread only.
 * Strings passed in are copied into the line; nothing is retained.
 */
#ifndef EXECTIME_LOG_H
#define EXECTIME_LOG_H

#include <stdbool.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
} log_level_t;

/* Returns 0, or -EINVAL for an unknown name. */
int log_level_parse(const char *name, log_level_t *out);
void log_configure(log_level_t min_level, bool json);
bool log_enabled(log_level_t level);

/*
 * Writes one line: msg, then key/value pairs given as alternating const char * (NULL
 * terminates). Values are strings; use log_fmt for formatted text.
 *   log_write(LOG_INFO, "batch committed", "events", "512", NULL);
 */
void log_write(log_level_t level, const char *msg, ...) __attribute__((sentinel));

/* printf-style message without fields. */
void log_fmt(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
