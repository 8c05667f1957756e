/* pg_resolve — see pg_resolve.h. */
#include "pg_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"

#define LIST_MAX 4096 /* bytes of one comma-joined host, hostaddr or port list */

struct pg_resolve {
    uv_getaddrinfo_t req;
    pg_resolve_fn cb; /* NULL once abandoned */
    void *arg;
    char **keywords; /* copies of the arrays given */
    char **values;
    size_t n_hosts;
    size_t next; /* the entry being looked up */
    char *hosts[PG_RESOLVE_HOSTS_MAX];
    bool is_name[PG_RESOLVE_HOSTS_MAX];
    size_t n_addresses[PG_RESOLVE_HOSTS_MAX];
    char addresses[PG_RESOLVE_HOSTS_MAX][PG_RESOLVE_ADDRESSES_MAX][INET6_ADDRSTRLEN];
    char error[256]; /* the last lookup that failed */
};

static const char *find_value(char *const *keywords, char *const *values, const char *key)
{
    for (size_t i = 0; keywords && keywords[i]; i++)
        if (strcmp(keywords[i], key) == 0)
            return values[i];
    return NULL;
}

/* The host list libpq would use: the conninfo's, else PGHOST. */
static const char *host_list(char *const *keywords, char *const *values)
{
    const char *host = find_value(keywords, values, "host");
    return host ? host : getenv("PGHOST");
}

/* A name to look up: not empty, not a socket directory, not an address already. */
static bool entry_is_name(const char *entry, size_t len)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char addr[sizeof(struct in6_addr)];
    if (len == 0 || entry[0] == '/' || entry[0] == '@')
        return false;
    if (len >= sizeof buf)
        return true;
    memcpy(buf, entry, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1;
}

bool pg_resolve_needed(char *const *keywords, char *const *values)
{
    const char *hostaddr = find_value(keywords, values, "hostaddr");
    const char *hosts = host_list(keywords, values);
    if ((hostaddr && *hostaddr) || hosts == NULL)
        return false;
    for (const char *p = hosts;;) {
        size_t len = strcspn(p, ",");
        if (entry_is_name(p, len))
            return true;
        if (p[len] == '\0')
            return false;
        p += len + 1;
    }
}

/* Appends item to a comma list in buf; -ENOSPC when it does not fit. */
static int list_add(char *buf, size_t *used, const char *item, size_t len, bool first)
{
    if (*used + len + 2 > LIST_MAX)
        return -ENOSPC;
    if (!first)
        buf[(*used)++] = ',';
    memcpy(buf + *used, item, len);
    *used += len;
    buf[*used] = '\0';
    return 0;
}

/* The n-th entry of a comma list (no copy): its start and length. */
static const char *list_entry(const char *list, size_t n, size_t *len)
{
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, ',');
        if (p == NULL)
            return NULL;
        p++;
    }
    *len = strcspn(p, ",");
    return p;
}

static size_t list_count(const char *list)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

/* Copies keywords/values without the given keys, then appends the extra pairs. */
static int rebuild_arrays(char *const *keywords, char *const *values, const char *const *drop,
                          const char *const *extra_keys, const char *const *extra_values,
                          char ***out_keywords, char ***out_values)
{
    size_t n = 0, extra = 0;
    while (keywords && keywords[n])
        n++;
    while (extra_keys[extra])
        extra++;
    char **k = calloc(n + extra + 1, sizeof *k);
    char **v = calloc(n + extra + 1, sizeof *v);
    size_t used = 0;
    int rc = k && v ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n + extra; i++) {
        const char *key = i < n ? keywords[i] : extra_keys[i - n];
        const char *value = i < n ? values[i] : extra_values[i - n];
        bool dropped = false;
        for (size_t d = 0; i < n && drop[d]; d++)
            dropped |= strcmp(key, drop[d]) == 0;
        if (dropped)
            continue;
        k[used] = strdup(key);
        v[used] = strdup(value);
        if (k[used] == NULL || v[used] == NULL)
            rc = -ENOMEM;
        used++;
    }
    if (rc < 0) {
        pg_conninfo_free(k, v);
        return rc;
    }
    *out_keywords = k;
    *out_values = v;
    return 0;
}

int pg_resolve_expand(char *const *keywords, char *const *values, size_t n_hosts,
                      const char *const *const *addresses, char ***out_keywords, char ***out_values)
{
    const char *hosts = host_list(keywords, values);
    const char *ports = find_value(keywords, values, "port");
    bool port_per_host = ports && list_count(ports) > 1 && list_count(ports) == n_hosts;
    char *host_out = malloc(LIST_MAX), *addr_out = malloc(LIST_MAX), *port_out = malloc(LIST_MAX);
    size_t host_used = 0, addr_used = 0, port_used = 0, entries = 0;
    int rc = host_out && addr_out && port_out ? 0 : -ENOMEM;
    if (hosts == NULL)
        rc = -ENOENT;
    for (size_t i = 0; rc == 0 && i < n_hosts; i++) {
        size_t host_len = 0, port_len = 0;
        const char *host = list_entry(hosts, i, &host_len);
        const char *port = port_per_host ? list_entry(ports, i, &port_len) : "";
        if (host == NULL || port == NULL)
            break;
        /* NULL: the entry needs no lookup, one entry with an empty hostaddr */
        static const char *const no_lookup[] = {"", NULL};
        const char *const *list = addresses[i] ? addresses[i] : no_lookup;
        for (size_t a = 0; rc == 0 && list[a]; a++, entries++) {
            rc = list_add(host_out, &host_used, host, host_len, entries == 0);
            if (rc == 0)
                rc = list_add(addr_out, &addr_used, list[a], strlen(list[a]), entries == 0);
            if (rc == 0 && port_per_host)
                rc = list_add(port_out, &port_used, port, port_len, entries == 0);
        }
    }
    if (rc == 0 && entries == 0)
        rc = -ENOENT;
    if (rc == 0) {
        static const char *const drop[] = {"host", "hostaddr", "port", NULL};
        const char *ports_final = port_per_host ? port_out : ports;
        const char *keys[] = {"host", "hostaddr", ports_final ? "port" : NULL, NULL};
        const char *vals[] = {host_out, addr_out, ports_final, NULL};
        rc = rebuild_arrays(keywords, values, drop, keys, vals, out_keywords, out_values);
    }
    free(host_out);
    free(addr_out);
    free(port_out);
    return rc;
}

static void resolve_free(pg_resolve_t *r)
{
    for (size_t i = 0; i < r->n_hosts; i++)
        free(r->hosts[i]);
    pg_conninfo_free(r->keywords, r->values);
    free(r);
}

static void finish(pg_resolve_t *r)
{
    const char *lists[PG_RESOLVE_HOSTS_MAX][PG_RESOLVE_ADDRESSES_MAX + 1];
    const char *const *per_host[PG_RESOLVE_HOSTS_MAX];
    for (size_t i = 0; i < r->n_hosts; i++) {
        for (size_t a = 0; a < r->n_addresses[i]; a++)
            lists[i][a] = r->addresses[i][a];
        lists[i][r->n_addresses[i]] = NULL;
        per_host[i] = r->is_name[i] ? lists[i] : NULL;
    }
    char **k = NULL, **v = NULL;
    int rc = pg_resolve_expand(r->keywords, r->values, r->n_hosts, per_host, &k, &v);
    if (rc == -ENOMEM)
        snprintf(r->error, sizeof r->error, "out of memory");
    else if (rc < 0 && r->error[0] == '\0')
        snprintf(r->error, sizeof r->error, "no address for the host list");
    r->cb(rc, r->error, k, v, r->arg);
    resolve_free(r);
}

static void look_up_next(pg_resolve_t *r);

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pg_resolve_t *r = req->data;
    if (r->cb == NULL) { /* abandoned while the thread pool looked it up */
        uv_freeaddrinfo(res);
        resolve_free(r);
        return;
    }
    size_t i = r->next;
    if (status < 0) {
        snprintf(r->error, sizeof r->error, "could not translate host name \"%s\" to address: %s",
                 r->hosts[i], uv_strerror(status));
    }
    for (struct addrinfo *ai = res; ai && r->n_addresses[i] < PG_RESOLVE_ADDRESSES_MAX;
         ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *addr =
            ai->ai_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            inet_ntop(ai->ai_family, addr, text, sizeof text) == NULL)
            continue;
        bool seen = false;
        for (size_t a = 0; a < r->n_addresses[i]; a++)
            seen |= strcmp(r->addresses[i][a], text) == 0;
        if (!seen)
            memcpy(r->addresses[i][r->n_addresses[i]++], text, strlen(text) + 1);
    }
    uv_freeaddrinfo(res);
    r->next++;
    look_up_next(r);
}

/* Looks up the next name of the list, one at a time; then hands the arrays over. */
static void look_up_next(pg_resolve_t *r)
{
    while (r->next < r->n_hosts && !r->is_name[r->next])
        r->next++;
    if (r->next == r->n_hosts) {
        finish(r);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(r->req.loop, &r->req, on_resolved, r->hosts[r->next], NULL, &hints);
    if (rc < 0) {
        snprintf(r->error, sizeof r->error, "cannot look up \"%s\": %s", r->hosts[r->next],
                 uv_strerror(rc));
        r->next++;
        look_up_next(r);
    }
}

int pg_resolve_start(pg_resolve_t **out, uv_loop_t *loop, char *const *keywords,
                     char *const *values, pg_resolve_fn cb, void *arg)
{
    static const char *const none[] = {NULL};
    pg_resolve_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    r->req.loop = loop;
    r->req.data = r;
    int rc = rebuild_arrays(keywords, values, none, none, none, &r->keywords, &r->values);
    const char *hosts = host_list(keywords, values);
    for (const char *p = hosts; rc == 0 && p;) {
        size_t len = strcspn(p, ",");
        if (r->n_hosts == PG_RESOLVE_HOSTS_MAX) {
            rc = -E2BIG;
            break;
        }
        r->is_name[r->n_hosts] = entry_is_name(p, len);
        r->hosts[r->n_hosts] = strndup(p, len);
        if (r->hosts[r->n_hosts++] == NULL)
            rc = -ENOMEM;
        p = p[len] ? p + len + 1 : NULL;
    }
    if (rc < 0) {
        resolve_free(r);
        return rc;
    }
    *out = r;
    /* The first lookup goes to the thread pool now; the callback runs on a later turn. */
    look_up_next(r);
    return 0;
}

void pg_resolve_abandon(pg_resolve_t *r)
{
    if (r != NULL)
        r->cb = NULL;
}
