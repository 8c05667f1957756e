/*
 * verify — the `verify` and `rollup-rebuild` commands: recompute the rollups of a time
 * range from the raw rows, with the same C code the writer uses, and either print every
 * rollup row that differs, is missing or should not exist, or replace the rollup rows.
 * Blocking (synchronous libpq); never on the agent loop.
 *
 * Both apply the writer's workflow limit as the writer does: runs of a workflow that is not
 * in exectime.workflows belong to the overflow id's rollups (ET_OVERFLOW_WORKFLOW_ID).
 *
 * The range is widened to whole UTC days and narrowed to the windows the writer applies
 * (et_retention_start: the raw window for all, the minute and hour windows for their own
 * rollups), so the comparison is exact whatever maintenance has deleted the day before.
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

/*
 * The `rollup-rebuild` command: in one transaction, with the rollup tables locked against
 * concurrent upserts (agents wait, then continue), deletes the rollup rows of the range and
 * writes them anew from the raw rows. Needs a role that may delete rollup rows (the owner).
 * Returns 0, or 2 on an error (one line on stderr; nothing is changed).
 */
int verify_rebuild(const config_t *cfg, const verify_options_t *opts, FILE *out);

#endif
