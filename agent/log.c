/* log — see log.h. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

/* Room kept free while a line is built, so a cut line can still say so and end
 * properly: ,"truncated":true}\n is 19 bytes. */
#define LINE_TRAILER_ROOM 20

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

/* ---- building one bounded line ---- */

typedef struct line {
    char *buf;
    size_t len;
    size_t limit;   /* capacity less LINE_TRAILER_ROOM */
    bool truncated; /* something was cut or left out */
} line_t;

/* Appends n bytes if they fit below the limit; otherwise nothing, and the line is cut. */
static bool line_put(line_t *l, const char *s, size_t n)
{
    if (l->len + n > l->limit) {
        l->truncated = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool line_puts(line_t *l, const char *s)
{
    return line_put(l, s, strlen(s));
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when the byte at p does not start one. The
 * string's NUL is never a continuation byte, so the scan stops at the end by itself.
 */
static size_t utf8_valid_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong below U+0800 */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong ASCII) or F5..FF */
    }
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

static const char replacement_char[] = "\xef\xbf\xbd"; /* U+FFFD */

/*
 * The bytes that stand for the character at p in the output: escaped for JSON or for a
 * logfmt value, U+FFFD for an invalid byte, the character itself otherwise. Returns how
 * many input bytes it consumed; out gets at most 8 bytes.
 */
static size_t escape_char(const unsigned char *p, bool json, char *out, size_t *out_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = *p;
    const char *shortcut = NULL;
    switch (c) {
    case '"': shortcut = "\\\""; break;
    case '\\': shortcut = "\\\\"; break;
    case '\n': shortcut = "\\n"; break;
    case '\r': shortcut = "\\r"; break;
    case '\t': shortcut = "\\t"; break;
    default: break;
    }
    if (shortcut != NULL) {
        *out_len = strlen(shortcut);
        memcpy(out, shortcut, *out_len);
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        *out_len =
            (size_t)snprintf(out, 8, json ? "\\u00%c%c" : "\\x%c%c", hex[c >> 4], hex[c & 15]);
        return 1;
    }
    size_t n = utf8_valid_len(p);
    if (n == 0) {
        memcpy(out, replacement_char, 3);
        *out_len = 3;
        return 1;
    }
    memcpy(out, p, n);
    *out_len = n;
    return n;
}

/*
 * Appends s character by character, each escaped, keeping `keep` bytes free for what
 * must follow (a closing quote). Stops at the first character that does not fit: the
 * string is cut at a character boundary and the line marked truncated.
 */
static void put_escaped(line_t *l, const char *s, bool json, size_t keep)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    while (*p) {
        char piece[8];
        size_t piece_len;
        size_t used = escape_char(p, json, piece, &piece_len);
        if (l->len + piece_len + keep > l->limit) {
            l->truncated = true;
            return;
        }
        memcpy(l->buf + l->len, piece, piece_len);
        l->len += piece_len;
        p += used;
    }
}

/* A JSON string, quotes included; false (nothing written) when not even "" fits. */
static bool put_json_string(line_t *l, const char *s)
{
    if (l->len + 2 > l->limit) {
        l->truncated = true;
        return false;
    }
    l->buf[l->len++] = '"';
    put_escaped(l, s, true, 1);
    l->buf[l->len++] = '"';
    return true;
}

/* A logfmt value: bare when it is plain, quoted and escaped when it holds a space, '=',
 * a quote, a backslash or a control character, or is empty. */
static bool put_text_value(line_t *l, const char *s)
{
    if (s == NULL)
        s = "";
    bool quote = s[0] == '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && !quote; p++)
        quote = *p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f;
    if (!quote) {
        put_escaped(l, s, false, 0);
        return true;
    }
    if (l->len + 2 > l->limit) {
        l->truncated = true;
        return false;
    }
    l->buf[l->len++] = '"';
    put_escaped(l, s, false, 1);
    l->buf[l->len++] = '"';
    return true;
}

/* Shortest decimal that reads back as the same double; JSON has no NaN or infinity. */
static void format_double(char *buf, size_t cap, double v, bool json)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "%s", json ? "null" : isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* A field's value as text: numbers and booleans are never quoted. */
static bool put_value(line_t *l, const log_field_t *f, bool json)
{
    char num[40];
    switch (f->type) {
    case LOG_FIELD_STR: return json ? put_json_string(l, f->v.s) : put_text_value(l, f->v.s);
    case LOG_FIELD_INT: snprintf(num, sizeof num, "%" PRId64, f->v.i); break;
    case LOG_FIELD_UINT: snprintf(num, sizeof num, "%" PRIu64, f->v.u); break;
    case LOG_FIELD_DOUBLE: format_double(num, sizeof num, f->v.d, json); break;
    case LOG_FIELD_BOOL: snprintf(num, sizeof num, "%s", f->v.b ? "true" : "false"); break;
    default: snprintf(num, sizeof num, "%s", json ? "null" : "?"); break;
    }
    return line_puts(l, num);
}

/* One field; all of it or nothing (a string value may be cut, never the key). */
static bool put_field(line_t *l, const log_field_t *f, bool json)
{
    size_t mark = l->len;
    bool ok;
    if (json) {
        ok = line_puts(l, ",") && put_json_string(l, f->key) && !l->truncated &&
             line_puts(l, ":") && put_value(l, f, json);
    } else {
        ok = line_puts(l, " ");
        for (const char *k = f->key ? f->key : ""; ok && *k; k++) /* keys are ours: plain */
            ok = line_put(l, (*k > ' ' && *k != '=' && *k != 0x7f) ? k : "_", 1);
        ok = ok && line_puts(l, "=") && put_value(l, f, json);
    }
    if (!ok) {
        l->len = mark;
        l->truncated = true;
    }
    return ok;
}

size_t log_format_line(char *buf, size_t cap, bool json, log_level_t level, const char *ts,
                       const char *msg, const log_field_t *fields, size_t n)
{
    line_t l = {.buf = buf, .len = 0, .limit = cap - LINE_TRAILER_ROOM, .truncated = false};
    const char *level_name =
        level >= LOG_DEBUG && level <= LOG_ERROR ? level_names[level] : "error";
    if (json) {
        line_puts(&l, "{\"ts\":");
        put_json_string(&l, ts);
        line_puts(&l, ",\"level\":");
        put_json_string(&l, level_name);
        line_puts(&l, ",\"msg\":");
        put_json_string(&l, msg);
    } else {
        line_puts(&l, ts);
        line_puts(&l, " ");
        line_puts(&l, level_name);
        line_puts(&l, " ");
        put_escaped(&l, msg, false, 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (!put_field(&l, &fields[i], json))
            break; /* the rest would not fit either, or would read out of order */
    }
    /* The trailer fits in the room kept free. */
    const char *end = json ? (l.truncated ? ",\"truncated\":true}\n" : "}\n")
                           : (l.truncated ? " truncated=true\n" : "\n");
    size_t end_len = strlen(end);
    memcpy(buf + l.len, end, end_len);
    return l.len + end_len;
}

void log_write_fields(log_level_t level, const char *msg, const log_field_t *fields, size_t n)
{
    if (!log_enabled(level))
        return;
    char line[LOG_LINE_MAX];
    char ts[32];
    if (et_time_format(et_now_us(), ts, sizeof ts) < 0)
        ts[0] = '\0';
    size_t len = log_format_line(line, sizeof line, as_json, level, ts, msg, fields, n);
    fwrite(line, 1, len, stderr);
}

void log_write(log_level_t level, const char *msg, ...)
{
    if (!log_enabled(level))
        return;
    log_field_t fields[LOG_FIELDS_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        if (n < LOG_FIELDS_MAX)
            fields[n++] = log_str(key, value);
    }
    va_end(ap);
    log_write_fields(level, msg, fields, n);
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
    log_write_fields(level, msg, NULL, 0);
}
