/*
 * listen_addr — the one parser of the agent's listen addresses (EXECTIME_LISTEN,
 * EXECTIME_OPS_LISTEN): "host:port" or "[ipv6]:port", host numeric (the server resolves
 * nothing), port 0-65535. config checks a setting with it at start-up, so a bad address
 * stops the agent with the variable's name; http_server binds what it returns.
 *
 * Errors: -EINVAL with one line in err saying what is wrong with the address.
 */
#ifndef EXECTIME_LISTEN_ADDR_H
#define EXECTIME_LISTEN_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

__attribute__((warn_unused_result)) int listen_addr_parse(const char *addr,
                                                          struct sockaddr_storage *ss, char *err,
                                                          size_t err_cap);

#endif
