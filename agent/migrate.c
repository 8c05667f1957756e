/* migrate — see migrate.h. */
#include "migrate.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Any constant works as long as every agent uses the same: "exectime" in ASCII. */
#define MIGRATE_LOCK_KEY "7311705472865234277"

int migrate_latest_version(void)
{
    int latest = 0;
    for (int i = 0; i < migrations_embedded_count; i++)
        if (migrations_embedded[i].version > latest)
            latest = migrations_embedded[i].version;
    return latest;
}

/* Runs one statement string; on failure copies the server's message into err. */
static int exec_ok(PGconn *pg, const char *sql, const char *what, char *err, size_t err_cap)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);
        snprintf(err, err_cap, "%s: %s", what, msg && *msg ? msg : PQerrorMessage(pg));
        err[strcspn(err, "\n")] = '\0';
        rc = -EIO;
    }
    PQclear(res);
    return rc;
}

static bool version_applied(PGconn *pg, int version)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT 1 FROM exectime.schema_migrations WHERE version = %d",
             version);
    PGresult *res = PQexec(pg, sql);
    bool applied = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    PQclear(res);
    return applied;
}

static bool table_exists(PGconn *pg)
{
    PGresult *res = PQexec(pg, "SELECT to_regclass('exectime.schema_migrations') IS NOT NULL");
    bool exists = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                  strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return exists;
}

int migrate_apply(const char *database_url, int *applied, char *err, size_t err_cap)
{
    *applied = 0;
    PGconn *pg = PQconnectdb(database_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, err_cap, "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(pg);
        return -EIO;
    }
    int rc = exec_ok(pg, "SET client_min_messages = warning", "settings", err, err_cap);
    if (rc == 0)
        rc = exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "advisory lock", err,
                     err_cap);
    for (int i = 0; rc == 0 && i < migrations_embedded_count; i++) {
        const migration_t *m = &migrations_embedded[i];
        if (table_exists(pg) && version_applied(pg, m->version))
            continue;
        rc = exec_ok(pg, "BEGIN", m->name, err, err_cap);
        if (rc == 0)
            rc = exec_ok(pg, m->sql, m->name, err, err_cap);
        if (rc == 0)
            rc = exec_ok(pg, "COMMIT", m->name, err, err_cap);
        if (rc < 0) {
            char ignored[16];
            (void)exec_ok(pg, "ROLLBACK", "rollback", ignored, sizeof ignored);
            break;
        }
        log_write(LOG_INFO, "migration applied", "name", m->name, NULL);
        (*applied)++;
    }
    char ignored[16];
    (void)exec_ok(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "unlock", ignored,
                  sizeof ignored);
    PQfinish(pg);
    return rc;
}
