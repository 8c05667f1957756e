/* json_out — see json_out.h. */
#include "json_out.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

void json_out_init(json_out_t *j)
{
    memset(j, 0, sizeof *j);
}

void json_out_set_limit(json_out_t *j, size_t limit)
{
    j->limit = limit;
}

bool json_out_too_large(const json_out_t *j)
{
    return j->too_large;
}

void json_out_free(json_out_t *j)
{
    free(j->data);
    memset(j, 0, sizeof *j);
}

bool json_out_failed(const json_out_t *j)
{
    return j->failed;
}

char *json_out_take(json_out_t *j, size_t *len)
{
    if (j->failed || j->data == NULL) {
        json_out_free(j);
        return NULL;
    }
    char *out = j->data;
    *len = j->len;
    j->data = NULL;
    json_out_free(j);
    return out;
}

static void put(json_out_t *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (j->limit != 0 && j->len + n > j->limit) {
        j->failed = true;
        j->too_large = true;
        return;
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *data = realloc(j->data, cap);
        if (data == NULL) {
            j->failed = true;
            return;
        }
        j->data = data;
        j->cap = cap;
    }
    memcpy(j->data + j->len, s, n);
    j->len += n;
    j->data[j->len] = '\0';
}

static void puts_(json_out_t *j, const char *s)
{
    put(j, s, strlen(s));
}

/* A value or key starts: a comma when something came before it at this level. */
static void before_value(json_out_t *j)
{
    if (j->depth > 0 && j->need_comma[j->depth - 1])
        put(j, ",", 1);
    if (j->depth > 0)
        j->need_comma[j->depth - 1] = true;
}

static void open_(json_out_t *j, const char *c)
{
    before_value(j);
    put(j, c, 1);
    if (j->depth < JSON_OUT_DEPTH)
        j->need_comma[j->depth++] = false;
    else
        j->failed = true;
}

static void close_(json_out_t *j, const char *c)
{
    if (j->depth > 0)
        j->depth--;
    put(j, c, 1);
}

void jout_obj_begin(json_out_t *j)
{
    open_(j, "{");
}
void jout_obj_end(json_out_t *j)
{
    close_(j, "}");
}
void jout_arr_begin(json_out_t *j)
{
    open_(j, "[");
}
void jout_arr_end(json_out_t *j)
{
    close_(j, "]");
}

/* One character as JSON string text: itself, or its escape (quote, backslash, controls
 * and DEL). Returns the bytes written to out. */
static size_t escape_char(unsigned char c, char out[6])
{
    static const char hex[] = "0123456789abcdef";
    if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = (char)c;
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        memcpy(out, "\\u00", 4);
        out[4] = hex[c >> 4];
        out[5] = hex[c & 15];
        return 6;
    }
    out[0] = (char)c;
    return 1;
}

static void put_string(json_out_t *j, const char *s)
{
    put(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[6];
        put(j, esc, escape_char(*p, esc));
    }
    put(j, "\"", 1);
}

void jout_key(json_out_t *j, const char *key)
{
    before_value(j);
    put_string(j, key);
    put(j, ":", 1);
    /* The value after a key takes no comma of its own. */
    if (j->depth > 0)
        j->need_comma[j->depth - 1] = false;
}

/* After a key, the value must not add a comma; afterwards the next key needs one. */
static void value_done(json_out_t *j)
{
    if (j->depth > 0)
        j->need_comma[j->depth - 1] = true;
}

void jout_str(json_out_t *j, const char *s)
{
    before_value(j);
    put_string(j, s);
    value_done(j);
}

void jout_int(json_out_t *j, int64_t v)
{
    char tmp[24];
    before_value(j);
    snprintf(tmp, sizeof tmp, "%" PRId64, v);
    puts_(j, tmp);
    value_done(j);
}

void jout_null(json_out_t *j)
{
    before_value(j);
    puts_(j, "null");
    value_done(j);
}

void jout_bool(json_out_t *j, bool v)
{
    before_value(j);
    puts_(j, v ? "true" : "false");
    value_done(j);
}

void jout_num(json_out_t *j, double v, int decimals)
{
    if (!isfinite(v)) {
        jout_null(j);
        return;
    }
    char tmp[64];
    before_value(j);
    int n = snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
    if (n > 0 && strchr(tmp, '.')) {
        while (n > 1 && tmp[n - 1] == '0')
            tmp[--n] = '\0';
        if (tmp[n - 1] == '.')
            tmp[--n] = '\0';
    }
    if (strcmp(tmp, "-0") == 0)
        strcpy(tmp, "0");
    puts_(j, tmp);
    value_done(j);
}

void jout_ms(json_out_t *j, int64_t us)
{
    char tmp[32];
    before_value(j);
    int64_t whole = us / 1000, frac = us % 1000;
    if (frac < 0) {
        frac = -frac;
        if (whole == 0)
            puts_(j, "-");
    }
    if (frac == 0)
        snprintf(tmp, sizeof tmp, "%" PRId64, whole);
    else if (frac % 100 == 0)
        snprintf(tmp, sizeof tmp, "%" PRId64 ".%" PRId64, whole, frac / 100);
    else if (frac % 10 == 0)
        snprintf(tmp, sizeof tmp, "%" PRId64 ".%02" PRId64, whole, frac / 10);
    else
        snprintf(tmp, sizeof tmp, "%" PRId64 ".%03" PRId64, whole, frac);
    puts_(j, tmp);
    value_done(j);
}

/*
 * Appends s JSON-escaped at buf[pos], leaving room for `reserve` more bytes; stops
 * before an escape that would not fit, so the result is always valid JSON text.
 */
static size_t json_escape(char *buf, size_t pos, size_t cap, size_t reserve, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[6];
        size_t n = escape_char(*p, esc);
        if (pos + n + reserve >= cap)
            break;
        memcpy(buf + pos, esc, n);
        pos += n;
    }
    return pos;
}

size_t json_error_body(char *buf, size_t cap, const char *code, const char *message,
                       const char *parameter)
{
    static const char head[] = "{\"error\":{\"code\":\"";
    static const char mid[] = "\",\"message\":\"";
    static const char param[] = "\",\"parameter\":\"";
    static const char tail[] = "\"}}";
    /* The fields' framing is always written: each text keeps room for what follows. */
    size_t frame = sizeof mid + sizeof param + sizeof tail;
    if (cap < sizeof head + frame + 64)
        return 0;
    memcpy(buf, head, sizeof head - 1);
    size_t pos = json_escape(buf, sizeof head - 1, cap, frame + 64, code ? code : "error");
    memcpy(buf + pos, mid, sizeof mid - 1);
    pos += sizeof mid - 1;
    pos = json_escape(buf, pos, cap, sizeof param + sizeof tail + 64, message ? message : "");
    if (parameter) {
        memcpy(buf + pos, param, sizeof param - 1);
        pos += sizeof param - 1;
        pos = json_escape(buf, pos, cap, sizeof tail, parameter);
    }
    memcpy(buf + pos, tail, sizeof tail);
    return pos + sizeof tail - 1;
}

void jout_time(json_out_t *j, int64_t t_us)
{
    char text[40];
    if (et_time_format(t_us, text, sizeof text) > 0)
        jout_str(j, text);
    else
        jout_null(j);
}
