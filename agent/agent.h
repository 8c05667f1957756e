/*
 * agent — the `run` command: one libuv loop owning the stream consumer, the batch writer,
 * the maintenance connection and the HTTP server; wires their callbacks together, exposes
 * metrics, and shuts down gracefully on SIGTERM/SIGINT (stop reading, commit what is in
 * flight, acknowledge it, exit 0).
 */
#ifndef EXECTIME_AGENT_H
#define EXECTIME_AGENT_H

#include "config.h"

/* Runs until a signal or a fatal error; returns the process exit code. */
int agent_run(const config_t *cfg);

#endif
