/*
 * redis_url — parses redis://[[user]:password@]host[:port][/db] and unix:///path/to.sock.
 * Pure; fills a caller-owned struct. Returns 0 or -EINVAL with a reason.
 */
#ifndef EXECTIME_REDIS_URL_H
#define EXECTIME_REDIS_URL_H

#include <stddef.h>

typedef struct et_redis_url {
    char host[256]; /* empty when unix_path is set */
    int port;       /* default 6379 */
    char unix_path[256];
    char username[128]; /* empty: none (AUTH password only) */
    char password[256]; /* empty: no AUTH */
    int db;             /* default 0 */
} et_redis_url_t;

__attribute__((warn_unused_result)) int et_redis_url_parse(const char *url, et_redis_url_t *out,
                                                           char *reason, size_t reason_cap);

#endif
