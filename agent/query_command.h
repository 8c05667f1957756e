/*
 * query_command — `exectime-agent query`: the statistics API from a terminal. Builds the
 * request from cli's flags, asks a running agent through api_client (blocking: this
 * command runs no loop), and prints the answer as a table, CSV (RFC 4180) or the JSON as
 * it came. Reads EXECTIME_API_URL and EXECTIME_TOKEN (else EXECTIME_DEV_TOKEN) from the
 * environment, under the --url and --token flags; never the database settings.
 *
 * Exit statuses (QUERY_EXIT_*) are for scripts and are listed in `query --help` and
 * docs/operations.md. Ownership: nothing is kept between calls; answers are printed to
 * out, one line per problem to err.
 */
#ifndef EXECTIME_QUERY_COMMAND_H
#define EXECTIME_QUERY_COMMAND_H

#include <jansson.h>
#include <stdio.h>

#include "cli.h"

enum {
    QUERY_EXIT_OK = 0,
    QUERY_EXIT_OTHER = 1,        /* an answer that is none of the below, out of memory */
    QUERY_EXIT_USAGE = 2,        /* a flag's value, the URL */
    QUERY_EXIT_UNAUTHORIZED = 3, /* 401, 403 */
    QUERY_EXIT_BAD_REQUEST = 4,  /* 400, 422 */
    QUERY_EXIT_UNAVAILABLE = 5,  /* no connection, timeout, 5xx */
};

#define QUERY_TIMEOUT_MS 30000
#define QUERY_DEFAULT_URL "http://127.0.0.1:8080"

typedef enum query_format {
    QUERY_FORMAT_TABLE,
    QUERY_FORMAT_CSV,
    QUERY_FORMAT_JSON,
} query_format_t;

/* Runs the command; returns its exit status. */
int query_command_run(const cli_t *cli, FILE *out, FILE *err);

/*
 * Prints a statistics answer (the API's JSON, parsed) as a table or CSV. -EINVAL with one
 * line in errbuf when answer is not shaped like the statistics (no count, ...).
 */
__attribute__((warn_unused_result)) int query_render(const json_t *answer, query_format_t format,
                                                     FILE *out, char *errbuf, size_t err_cap);

/* The path and query string of the request cli asks for, into out ("/api/v1/..."). */
__attribute__((warn_unused_result)) int query_build_path(const cli_t *cli, char *out, size_t cap);

#endif
