/*
 * et_hex — the value of one hexadecimal digit, for the decoders that read hex from outside
 * (percent-encoded query strings, PostgreSQL's bytea text). Header only.
 */
#ifndef EXECTIME_ET_HEX_H
#define EXECTIME_ET_HEX_H

/* 0-15, or -1 for anything that is not a hex digit (either case). */
static inline int et_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
