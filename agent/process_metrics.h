/*
 * process_metrics — what Prometheus client libraries export about the process itself,
 * under their standard names, and the agent's build:
 *   exectime_build_info{version,libuv,libpq,hiredis} 1
 *   process_cpu_seconds_total, process_resident_memory_bytes,
 *   process_virtual_memory_bytes, process_open_fds, process_max_fds,
 *   process_start_time_seconds.
 *
 * process_metrics_register runs once at start-up (it reads the start time from /proc);
 * process_metrics_refresh runs before each scrape: getrusage, one small read of
 * /proc/self/statm and a listing of /proc/self/fd (as many entries as open descriptors,
 * which the connection limits bound), a few microseconds; nothing waits on the network.
 * Where /proc is missing the values it gives stay at 0.
 *
 * Ownership: the gauges belong to the metrics registry (see metrics.h); metrics_reset
 * invalidates them, after which process_metrics_register must run again.
 */
#ifndef EXECTIME_PROCESS_METRICS_H
#define EXECTIME_PROCESS_METRICS_H

/* Registers the metrics and sets build info and the start time. */
void process_metrics_register(void);

/* Reads CPU time, memory and descriptors into the gauges. */
void process_metrics_refresh(void);

#endif
