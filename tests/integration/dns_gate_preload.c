/*
 * dns_gate_preload — an LD_PRELOAD library for test_dns: getaddrinfo of the name
 * "db.exectime.test" waits until the file named by EXECTIME_DNS_GATE exists (at most 60 s)
 * and then answers 127.0.0.1, like a DNS server that is slow until the test lets it answer.
 * Every other name goes to the C library's getaddrinfo. A process that looked the name up on
 * its event loop thread would stop answering HTTP while the gate is closed.
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GATED_NAME "db.exectime.test"

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    getaddrinfo_fn real;
    void *symbol = dlsym(RTLD_NEXT, "getaddrinfo");
    memcpy(&real, &symbol, sizeof real); /* POSIX's way from dlsym to a function pointer */
    if (real == NULL)
        return EAI_SYSTEM;
    if (node == NULL || strcmp(node, GATED_NAME) != 0)
        return real(node, service, hints, res);
    const char *gate = getenv("EXECTIME_DNS_GATE");
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; gate && i < 6000 && access(gate, F_OK) != 0; i++)
        nanosleep(&tick, NULL);
    return real("127.0.0.1", service, hints, res);
}
