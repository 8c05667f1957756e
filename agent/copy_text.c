/* copy_text — see copy_text.h. */
#include "copy_text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

void copy_buf_init(copy_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void copy_buf_free(copy_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void copy_buf_reset(copy_buf_t *b)
{
    b->len = 0;
}

void copy_buf_truncate(copy_buf_t *b, size_t len)
{
    if (len < b->len)
        b->len = len;
}

/* Makes room for extra more bytes, doubling, never past the limit. */
static int reserve(copy_buf_t *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    if (b->len + extra > b->limit)
        return -ENOBUFS;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    if (cap > b->limit)
        cap = b->limit;
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return -ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int separator(copy_buf_t *b, int first)
{
    if (first)
        return 0;
    int rc = reserve(b, 1);
    if (rc == 0)
        b->data[b->len++] = '\t';
    return rc;
}

int copy_buf_text(copy_buf_t *b, const char *s, int first)
{
    size_t n = strlen(s);
    size_t escaped = n;
    for (size_t i = 0; i < n; i++)
        escaped += s[i] == '\\' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
    int rc = separator(b, first);
    if (rc == 0)
        rc = reserve(b, escaped);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\':
            b->data[b->len++] = '\\';
            b->data[b->len++] = '\\';
            break;
        case '\t':
            b->data[b->len++] = '\\';
            b->data[b->len++] = 't';
            break;
        case '\n':
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'n';
            break;
        case '\r':
            b->data[b->len++] = '\\';
            b->data[b->len++] = 'r';
            break;
        default: b->data[b->len++] = c; break;
        }
    }
    return 0;
}

static int append(copy_buf_t *b, const char *s, size_t n)
{
    int rc = reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

int copy_buf_int(copy_buf_t *b, int64_t v, int first)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    int rc = separator(b, first);
    return rc < 0 ? rc : append(b, tmp, (size_t)n);
}

int copy_buf_null(copy_buf_t *b, int first)
{
    int rc = separator(b, first);
    return rc < 0 ? rc : append(b, "\\N", 2);
}

int copy_buf_time(copy_buf_t *b, int64_t t_us, int first)
{
    char tmp[40];
    int n = et_time_format(t_us, tmp, sizeof tmp);
    if (n < 0)
        return n;
    int rc = separator(b, first);
    return rc < 0 ? rc : append(b, tmp, (size_t)n);
}

int copy_buf_bytea(copy_buf_t *b, const uint8_t *v, size_t n, int first)
{
    static const char digits[] = "0123456789abcdef";
    int rc = separator(b, first);
    if (rc == 0)
        rc = reserve(b, 3 + 2 * n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, "\\\\x", 3);
    b->len += 3;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = digits[v[i] >> 4];
        b->data[b->len++] = digits[v[i] & 15];
    }
    return 0;
}

int copy_buf_raw(copy_buf_t *b, const void *data, size_t len)
{
    return append(b, data, len);
}

int copy_buf_end_row(copy_buf_t *b)
{
    return append(b, "\n", 1);
}
