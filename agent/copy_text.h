/*
 * copy_text — builds rows in PostgreSQL's COPY text format into a growable buffer with a
 * hard limit. Fields are escaped (backslash, tab, newline, carriage return); callers pass
 * strings already checked to be valid UTF-8 without NUL bytes.
 *
 * Ownership: copy_buf_t owns data; copy_buf_free releases it, copy_buf_reset keeps it.
 * Appends return 0, or -ENOBUFS past the limit / -ENOMEM; the buffer is then unchanged
 * up to the failed row's start only if the caller rolls back with copy_buf_truncate.
 */
#ifndef EXECTIME_COPY_TEXT_H
#define EXECTIME_COPY_TEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct copy_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit; /* most bytes the buffer may hold */
} copy_buf_t;

void copy_buf_init(copy_buf_t *b, size_t limit);
void copy_buf_free(copy_buf_t *b);
void copy_buf_reset(copy_buf_t *b);
void copy_buf_truncate(copy_buf_t *b, size_t len);

/* Each field helper writes the separator before the field unless it starts the row. */
__attribute__((warn_unused_result)) int copy_buf_text(copy_buf_t *b, const char *s, int first);
__attribute__((warn_unused_result)) int copy_buf_int(copy_buf_t *b, int64_t v, int first);
__attribute__((warn_unused_result)) int copy_buf_null(copy_buf_t *b, int first);
/* A timestamptz field from µs since the epoch, in RFC 3339 UTC. */
__attribute__((warn_unused_result)) int copy_buf_time(copy_buf_t *b, int64_t t_us, int first);
/* A bytea field in hex form: \\x and two lowercase hex digits a byte (the backslash
 * doubled, as COPY text wants it). */
__attribute__((warn_unused_result)) int copy_buf_bytea(copy_buf_t *b, const uint8_t *v, size_t n,
                                                       int first);
__attribute__((warn_unused_result)) int copy_buf_end_row(copy_buf_t *b);
/* Appends bytes as they are, unescaped (the buffer used as a bounded arena). */
__attribute__((warn_unused_result)) int copy_buf_raw(copy_buf_t *b, const void *data, size_t len);

#endif
