/* listen_addr — see listen_addr.h. */
#include "listen_addr.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* Splits "host:port" / "[v6]:port" into a socket address; numeric hosts only. */
int listen_addr_parse(const char *addr, struct sockaddr_storage *ss, char *err, size_t err_cap)
{
    const char *host;
    const char *host_end;
    const char *port_str;
    bool v6 = false;
    if (addr == NULL || addr[0] == '\0') {
        snprintf(err, err_cap, "the address is empty");
        return -EINVAL;
    }
    if (addr[0] == '[') {
        host = addr + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':') {
            snprintf(err, err_cap, "expected [IPv6]:port");
            return -EINVAL;
        }
        port_str = host_end + 2;
        v6 = true;
    } else {
        host = addr;
        host_end = strrchr(addr, ':');
        if (host_end == NULL) {
            snprintf(err, err_cap, "expected host:port or [IPv6]:port");
            return -EINVAL;
        }
        if (memchr(addr, ':', (size_t)(host_end - addr)) != NULL) {
            snprintf(err, err_cap, "put IPv6 addresses in brackets, e.g. [::1]:8080");
            return -EINVAL;
        }
        port_str = host_end + 1;
    }
    size_t digits = strspn(port_str, "0123456789");
    long port =
        digits > 0 && digits <= 5 && port_str[digits] == '\0' ? strtol(port_str, NULL, 10) : -1;
    if (port < 0 || port > 65535) {
        snprintf(err, err_cap, "the port must be a number from 0 to 65535");
        return -EINVAL;
    }
    char hostbuf[INET6_ADDRSTRLEN + 32];
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof hostbuf) {
        snprintf(err, err_cap, "missing or overlong host");
        return -EINVAL;
    }
    memcpy(hostbuf, host, host_len);
    hostbuf[host_len] = '\0';
    memset(ss, 0, sizeof *ss);
    int rc = v6 ? uv_ip6_addr(hostbuf, (int)port, (struct sockaddr_in6 *)ss)
                : uv_ip4_addr(hostbuf, (int)port, (struct sockaddr_in *)ss);
    if (rc != 0) {
        snprintf(err, err_cap, "\"%s\" is not a numeric %s address (nothing is resolved)", hostbuf,
                 v6 ? "IPv6" : "IPv4");
        return -EINVAL;
    }
    return 0;
}
