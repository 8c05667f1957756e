/* Unit tests for agent/copy_text: COPY text escaping and buffer limits. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "copy_text.h"

static char *as_string(copy_buf_t *b)
{
    static char out[4096];
    memcpy(out, b->data, b->len);
    out[b->len] = '\0';
    return out;
}

Test(copy_text, escapes_backslash_tab_newline_and_carriage_return)
{
    copy_buf_t b;
    copy_buf_init(&b, 1 << 20);
    cr_assert_eq(copy_buf_text(&b, "a\\b\tc\nd\re", 1), 0);
    cr_assert_str_eq(as_string(&b), "a\\\\b\\tc\\nd\\re");
    copy_buf_free(&b);
}

Test(copy_text, writes_a_row_with_separators_null_and_time)
{
    copy_buf_t b;
    copy_buf_init(&b, 1 << 20);
    cr_assert_eq(copy_buf_text(&b, "t1", 1), 0);
    cr_assert_eq(copy_buf_int(&b, -42, 0), 0);
    cr_assert_eq(copy_buf_null(&b, 0), 0);
    cr_assert_eq(copy_buf_time(&b, 1764547200000001LL, 0), 0);
    const uint8_t bytes[] = {0x01, 0xab, 0x00, 0xff};
    cr_assert_eq(copy_buf_bytea(&b, bytes, 4, 0), 0);
    cr_assert_eq(copy_buf_bytea(&b, bytes, 0, 0), 0);
    cr_assert_eq(copy_buf_end_row(&b), 0);
    cr_assert_str_eq(as_string(&b),
                     "t1\t-42\t\\N\t2025-12-01T00:00:00.000001Z\t\\\\x01ab00ff\t\\\\x\n");
    copy_buf_free(&b);
}

Test(copy_text, refuses_to_grow_past_its_limit_and_truncate_restores_the_row)
{
    copy_buf_t b;
    copy_buf_init(&b, 16);
    cr_assert_eq(copy_buf_text(&b, "0123456789", 1), 0);
    size_t mark = b.len;
    cr_assert_eq(copy_buf_text(&b, "abcdefgh", 0), -ENOBUFS);
    copy_buf_truncate(&b, mark);
    cr_assert_eq(b.len, 10);
    cr_assert_eq(copy_buf_int(&b, INT64_MIN, 0), -ENOBUFS);
    copy_buf_free(&b);
}
