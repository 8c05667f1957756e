/*
 * pg_resolve — looks up the host names of a parsed conninfo on libuv's thread pool
 * (uv_getaddrinfo), so that libpq, which would call getaddrinfo inside PQconnectPoll on the
 * loop thread, gets addresses only: each name becomes one host entry per address (at most
 * PG_RESOLVE_ADDRESSES_MAX) with host=<name> kept, for TLS and the log, and hostaddr=<address>,
 * so libpq still tries the addresses in turn. Numeric hosts and Unix socket directories pass
 * through with an empty hostaddr; a conninfo that sets hostaddr itself is not looked up.
 *
 * Ownership: the keyword/value arrays given are only read during pg_resolve_start; the
 * arrays handed to the callback are malloc'd and belong to the callback (free them with
 * pg_conninfo_free). The lookup owns its memory: pg_resolve_abandon makes the callback never
 * run and the memory is freed when the thread pool gives the lookup back.
 * The callback runs on a later loop turn (before pg_resolve_start returns only when the
 * thread pool refuses the lookup outright).
 * Errors: pg_resolve_start returns 0, -ENOMEM or a libuv error; the callback gets status 0,
 * or a negative errno with libpq-like words in error ("could not translate host name …").
 */
#ifndef EXECTIME_PG_RESOLVE_H
#define EXECTIME_PG_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define PG_RESOLVE_ADDRESSES_MAX 8 /* per name: enough for dual stack and a few replicas */
#define PG_RESOLVE_HOSTS_MAX 16    /* host entries in one conninfo */

typedef struct pg_resolve pg_resolve_t;
typedef void (*pg_resolve_fn)(int status, const char *error, char **keywords, char **values,
                              void *arg);

/* True when the conninfo (or PGHOST) names a host that needs a lookup: a name, not an
 * address or a socket directory, and no hostaddr. */
bool pg_resolve_needed(char *const *keywords, char *const *values);

__attribute__((warn_unused_result)) int pg_resolve_start(pg_resolve_t **out, uv_loop_t *loop,
                                                         char *const *keywords, char *const *values,
                                                         pg_resolve_fn cb, void *arg);
void pg_resolve_abandon(pg_resolve_t *r);

/*
 * The pure part, for tests: builds the arrays libpq gets from the original ones and, for
 * each of the n_hosts host entries, its addresses (addresses[i] NULL-terminated, NULL for
 * an entry that needs none; an empty list drops the entry). Returns 0, -ENOENT when no entry
 * is left, or -ENOMEM.
 */
__attribute__((warn_unused_result)) int pg_resolve_expand(char *const *keywords,
                                                          char *const *values, size_t n_hosts,
                                                          const char *const *const *addresses,
                                                          char ***out_keywords, char ***out_values);

#endif
