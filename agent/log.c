/* log — see log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

static log_level_t min_level = LOG_INFO;
static bool as_json = true;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name, log_level_t *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

void log_configure(log_level_t level, bool json)
{
    min_level = level;
    as_json = json;
}

bool log_enabled(log_level_t level)
{
    return level >= min_level;
}

/* Appends s JSON-escaped; the line is bounded by the caller's buffer. */
static size_t append_json_string(char *buf, size_t pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (pos < cap)
        buf[pos++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p && pos + 7 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)*p;
        } else if (*p < 0x20) {
            buf[pos++] = '\\';
            buf[pos++] = 'u';
            buf[pos++] = '0';
            buf[pos++] = '0';
            buf[pos++] = hex[*p >> 4];
            buf[pos++] = hex[*p & 15];
        } else {
            buf[pos++] = (char)*p;
        }
    }
    if (pos < cap)
        buf[pos++] = '"';
    return pos;
}

static size_t append_raw(char *buf, size_t pos, size_t cap, const char *s)
{
    while (*s && pos < cap)
        buf[pos++] = *s++;
    return pos;
}

static void write_line(log_level_t level, const char *msg, va_list fields)
{
    char line[4096];
    size_t cap = sizeof line - 2; /* room for '}' or nothing, and '\n' */
    size_t pos = 0;
    char ts[32];
    if (et_time_format(et_now_us(), ts, sizeof ts) < 0)
        ts[0] = '\0';

    if (as_json) {
        pos = append_raw(line, pos, cap, "{\"ts\":");
        pos = append_json_string(line, pos, cap, ts);
        pos = append_raw(line, pos, cap, ",\"level\":");
        pos = append_json_string(line, pos, cap, level_names[level]);
        pos = append_raw(line, pos, cap, ",\"msg\":");
        pos = append_json_string(line, pos, cap, msg);
    } else {
        pos = append_raw(line, pos, cap, ts);
        pos = append_raw(line, pos, cap, " ");
        pos = append_raw(line, pos, cap, level_names[level]);
        pos = append_raw(line, pos, cap, " ");
        pos = append_raw(line, pos, cap, msg);
    }
    for (;;) {
        const char *key = va_arg(fields, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(fields, const char *);
        if (value == NULL)
            value = "";
        if (as_json) {
            pos = append_raw(line, pos, cap, ",");
            pos = append_json_string(line, pos, cap, key);
            pos = append_raw(line, pos, cap, ":");
            pos = append_json_string(line, pos, cap, value);
        } else {
            pos = append_raw(line, pos, cap, " ");
            pos = append_raw(line, pos, cap, key);
            pos = append_raw(line, pos, cap, "=");
            pos = append_raw(line, pos, cap, value);
        }
    }
    if (as_json)
        line[pos++] = '}';
    line[pos++] = '\n';
    fwrite(line, 1, pos, stderr);
}

void log_write(log_level_t level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    va_list ap;
    va_start(ap, msg);
    write_line(level, msg, ap);
    va_end(ap);
}

/* Wrapper so write_line can take a va_list with no fields. */
static void write_plain(log_level_t level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    write_line(level, msg, ap);
    va_end(ap);
}

void log_fmt(log_level_t level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    write_plain(level, msg, (const char *)NULL);
}
