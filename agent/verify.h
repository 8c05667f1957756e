/*
 * verify — the `verify` command: recomputes the rollups of a time range from the raw rows,
 * with the same C code the writer uses, and prints every rollup row that differs, is
 * missing or should not exist. Blocking (synchronous libpq); never on the agent loop.
 *
 * The range is widened to whole UTC days and narrowed to what retention still holds
 * (raw rows for all, minute and hour rollups for their own retention).
 * Returns 0 when everything matches, 1 when something differs, 2 on an error (with a
 * one-line reason on stderr).
 */
#ifndef EXECTIME_VERIFY_H
#define EXECTIME_VERIFY_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"

typedef struct verify_options {
    const char *tenant_id; /* NULL: every tenant */
    int64_t from_us;       /* inclusive */
    int64_t to_us;         /* exclusive */
    int max_report;        /* differences printed at most (all are counted) */
} verify_options_t;

int verify_run(const config_t *cfg, const verify_options_t *opts, FILE *out);

#endif
