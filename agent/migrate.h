/*
 * migrate — applies the SQL migrations embedded in the binary (generated from
 * migrations/NNNN_name.sql by agent/embed_sql.py) in version order, each in its own
 * transaction, under an advisory lock so two agents starting together do not race.
 * Each file records itself in exectime.schema_migrations.
 *
 * Blocking (synchronous libpq): it runs as the `migrate` command, never on the agent loop.
 * Returns 0 or -EIO with a one-line reason in err.
 */
#ifndef EXECTIME_MIGRATE_H
#define EXECTIME_MIGRATE_H

#include <stddef.h>

typedef struct migration {
    int version;
    const char *name; /* "0001_init" */
    const char *sql;
} migration_t;

extern const migration_t migrations_embedded[];
extern const int migrations_embedded_count;

/* Highest version this binary knows. */
int migrate_latest_version(void);

/* Applies what is missing; *applied gets how many were applied now. */
__attribute__((warn_unused_result)) int migrate_apply(const char *database_url, int *applied,
                                                      char *err, size_t err_cap);

#endif
