/* process_metrics — see process_metrics.h. */
#include "process_metrics.h"

#include <dirent.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "metrics.h"

static struct {
    metric_gauge_t *cpu_seconds;
    metric_gauge_t *resident_bytes;
    metric_gauge_t *virtual_bytes;
    metric_gauge_t *open_fds;
    metric_gauge_t *max_fds;
    metric_gauge_t *start_time;
} pm;

/*
 * The process's start as Unix time: its start in clock ticks after boot (field 22 of
 * /proc/self/stat) plus the boot time (btime in /proc/stat). Falls back to now, which at
 * start-up is off by the few milliseconds since exec.
 */
static double process_start_time(void)
{
    double now = (double)time(NULL);
    long ticks_per_second = sysconf(_SC_CLK_TCK);
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL || ticks_per_second <= 0)
        goto fallback;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    f = NULL;
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces: count fields
     * after its closing parenthesis, which is field 2's end. */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        goto fallback;
    unsigned long long start_ticks = 0;
    int field = 2;
    for (p++; *p && field < 22; p++) {
        if (*p == ' ')
            field++;
        if (field == 22) {
            start_ticks = strtoull(p + 1, NULL, 10);
            break;
        }
    }
    if (field != 22)
        goto fallback;
    f = fopen("/proc/stat", "r");
    if (f == NULL)
        goto fallback;
    unsigned long long btime = 0;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    }
    fclose(f);
    if (btime == 0)
        goto fallback;
    return (double)btime + (double)start_ticks / (double)ticks_per_second;
fallback:
    if (f != NULL)
        fclose(f);
    return now;
}

void process_metrics_register(void)
{
    static const char *const build_labels[] = {"version", "libuv", "libpq", "hiredis"};
    metric_family_t *build = metrics_gauge_vec(
        "exectime_build_info",
        "Always 1; the labels say which agent version runs, with which libraries.", 4,
        build_labels);
    char libpq[32], hiredis[32];
    int pqv = PQlibVersion(); /* 150010 for 15.10 */
    snprintf(libpq, sizeof libpq, "%d.%d", pqv / 10000, pqv % 10000);
    snprintf(hiredis, sizeof hiredis, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    metrics_vec_set(build, (const char *[]){EXECTIME_VERSION, uv_version_string(), libpq, hiredis},
                    1);

    pm.cpu_seconds = metrics_counter_observed("process_cpu_seconds_total",
                                              "Total user and system CPU time spent in seconds.");
    pm.resident_bytes =
        metrics_gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    pm.virtual_bytes =
        metrics_gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.");
    pm.open_fds = metrics_gauge("process_open_fds", "Number of open file descriptors.");
    pm.max_fds = metrics_gauge("process_max_fds", "Maximum number of open file descriptors.");
    pm.start_time = metrics_gauge("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.");
    metrics_gauge_set(pm.start_time, process_start_time());
    process_metrics_refresh();
}

/* Entries of /proc/self/fd, less the one the listing itself holds open. */
static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

void process_metrics_refresh(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        metrics_gauge_set(pm.cpu_seconds, cpu);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long long size_pages = 0, resident_pages = 0;
        long page = sysconf(_SC_PAGESIZE);
        if (fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2 && page > 0) {
            metrics_gauge_set(pm.virtual_bytes, (double)size_pages * (double)page);
            metrics_gauge_set(pm.resident_bytes, (double)resident_pages * (double)page);
        }
        fclose(f);
    }
    int fds = count_open_fds();
    if (fds >= 0)
        metrics_gauge_set(pm.open_fds, fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metrics_gauge_set(pm.max_fds, (double)rl.rlim_cur);
}
