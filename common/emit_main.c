/*
 * exectime-emit — publishes run events to the Redis stream, for shells, demos and load.
 *
 * Single-event mode builds one event from flags. Generator mode (--count or --rate) makes
 * a realistic stream: tenants tenant-1..N, workflows wf-1..N per tenant picked with a
 * Zipf-like skew (a few are hot), lognormal durations whose median is fixed per workflow
 * (50 ms to 5 s) with a heavy tail, and a few failed, cancelled and timed-out runs.
 * Exit status: 0 done (also after SIGINT/SIGTERM), 1 Redis error, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "emitter.h"
#include "et_rng.h"
#include "event_codec.h"
#include "redis_url.h"
#include "sketch.h"
#include "timeutil.h"

#define PROG "exectime-emit"
#define DEFAULT_REDIS_URL "redis://127.0.0.1:6379"
#define DEFAULT_STREAM "exectime:events"
#define GEN_MAX_TENANTS 100000
#define GEN_MAX_WORKFLOWS 100000
#define ERR_MAX 512

/* Generator shape, chosen to look like a real fleet of workflows. */
#define GEN_MEDIAN_MIN_US 50000.0    /* fastest workflow's median: 50 ms */
#define GEN_MEDIAN_MAX_US 5000000.0  /* slowest workflow's median: 5 s */
#define GEN_TAIL_PROB 0.01           /* share of runs in the heavy tail */
#define GEN_TAIL_FACTOR 20.0         /* how much slower a tail run is */
#define GEN_WORKFLOW_ZIPF_S 1.0      /* skew of workflow popularity */
#define GEN_TENANT_ZIPF_S 0.5        /* milder skew across tenants */
#define GEN_QUEUE_MEDIAN_US 200000.0 /* tenant-1's median queue wait: 200 ms */
#define GEN_QUEUE_SIGMA 1.0          /* spread of queue waits */

enum {
    OPT_REDIS_URL = 256,
    OPT_STREAM,
    OPT_TENANT,
    OPT_WORKFLOW,
    OPT_RUN,
    OPT_STATUS,
    OPT_DURATION_MS,
    OPT_DURATION_US,
    OPT_QUEUE_WAIT_MS,
    OPT_FINISHED_AT,
    OPT_COUNT,
    OPT_RATE,
    OPT_TENANTS,
    OPT_WORKFLOWS,
    OPT_BATCH,
    OPT_SEED,
    OPT_FAILURE_RATE,
    OPT_QUEUE_SHARE,
    OPT_SPREAD_DAYS,
    OPT_VERSION,
};

typedef struct emit_opts {
    const char *redis_url;
    const char *stream;
    /* single-event mode */
    const char *tenant;
    const char *workflow;
    const char *run;
    et_status_t status;
    bool has_duration;
    int64_t duration_us;
    const char *duration_flag; /* which of --duration-ms/--duration-us was given */
    const char *finished_at;
    bool has_queue_wait;
    int64_t queue_wait_us; /* enqueued_at = finished_at - duration - this */
    /* generator mode */
    bool generator;
    uint64_t count; /* 0: until SIGINT/SIGTERM */
    double rate;    /* events per second; 0: as fast as possible */
    uint64_t tenants;
    uint64_t workflows;
    uint64_t batch;
    bool has_seed;
    uint64_t seed;
    double failure_rate;
    double queue_share;      /* share of events with enqueued_at */
    double spread_days;      /* finished_at spread uniformly over this many past days */
    const char *gen_flag;    /* a generator-only flag seen, for the conflict message */
    const char *single_flag; /* a single-event flag seen, likewise */
} emit_opts_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " PROG " [connection] --tenant ID --workflow ID\n"
            "                     (--duration-ms MS | --duration-us US)\n"
            "                     [--run ID] [--status S] [--finished-at TIME]\n"
            "                     [--queue-wait-ms MS]\n"
            "       " PROG " [connection] (--count N | --rate R) [generator options]\n"
            "\n"
            "Publishes run events (msgpack, wire format v1) to a Redis stream with XADD.\n"
            "\n"
            "Connection:\n"
            "  --redis-url URL     redis://[[user]:password@]host[:port][/db] or unix:///path\n"
            "                      (default: $EXECTIME_REDIS_URL or " DEFAULT_REDIS_URL ")\n"
            "  --stream KEYS       stream key, or a comma list used round-robin\n"
            "                      (default: $EXECTIME_STREAM or " DEFAULT_STREAM ")\n"
            "\n"
            "Single event:\n"
            "  --tenant ID         tenant id, 1-64 bytes (required)\n"
            "  --workflow ID       workflow id, 1-128 bytes (required)\n"
            "  --run ID            run id, 1-128 bytes (default: a random UUID)\n"
            "  --status S          success, failed, cancelled or timeout (default: success)\n"
            "  --duration-ms MS    run time in milliseconds, fractions allowed\n"
            "  --duration-us US    run time in microseconds (at most 30 days either way)\n"
            "  --finished-at TIME  RFC 3339 instant, e.g. 2026-11-01T12:00:00Z (default: now)\n"
            "  --queue-wait-ms MS  time the run waited in the queue before it started: sends\n"
            "                      enqueued_at = finished_at - duration - MS (default: none)\n"
            "\n"
            "Generator (finished_at = now unless --spread-days, run ids \"<seed>-<counter>\"):\n"
            "  --count N           events to send; 0 or absent with --rate: until SIGINT/SIGTERM\n"
            "  --rate R            events per second, paced; 0: as fast as possible (default)\n"
            "  --tenants N         tenants tenant-1..N (default 3)\n"
            "  --workflows N       workflows wf-1..N per tenant, a few hot (default 20)\n"
            "  --batch N           events per XADD, an array entry when > 1 (default 1, max %d)\n"
            "  --seed N            random seed (default: random; printed at start)\n"
            "  --spread-days D     finished_at spread uniformly over the past D days, for\n"
            "                      history (default 0: now); keep D below the agent's raw\n"
            "                      retention (30 days) or it refuses the oldest events\n"
            "  --failure-rate F    share of failed runs, 0..1 (default 0.03); cancelled and\n"
            "                      timed-out runs come on top, at a third of that each\n"
            "  --queue-share F     share of events that carry enqueued_at, 0..1 (default 0);\n"
            "                      queue waits are lognormal, their median per tenant\n"
            "\n"
            "  -h, --help          show this help\n"
            "  --version           print the version\n"
            "\n"
            "Exit status: 0 sent (or stopped by a signal), 1 Redis error, 2 bad usage.\n",
            ET_ENTRY_MAX_EVENTS);
}

/* Prints one usage error line naming the flag; the caller exits 2. */
__attribute__((format(printf, 2, 3))) static int bad_flag(const char *flag, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": %s: ", flag);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -EINVAL;
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;

    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        goto bad;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, PROG ": %s: expected an integer in [%" PRIu64 ", %" PRIu64 "], got \"%s\"\n",
            flag, min, max, s);
    return -EINVAL;
}

static int parse_double(const char *flag, const char *s, double min, double max, double *out)
{
    char *end = NULL;

    if (*s == '\0' || *s == ' ')
        goto bad;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, PROG ": %s: expected a number in [%g, %g], got \"%s\"\n", flag, min, max, s);
    return -EINVAL;
}

static int set_duration(emit_opts_t *o, const char *flag, const char *s, bool ms)
{
    if (o->has_duration)
        return bad_flag(flag, "conflicts with %s (give one duration)", o->duration_flag);
    if (ms) {
        double v;
        if (parse_double(flag, s, 0.0, (double)ET_DURATION_MAX_US / 1000.0, &v) < 0)
            return -EINVAL;
        o->duration_us = llround(v * 1000.0);
    } else {
        uint64_t v;
        if (parse_u64(flag, s, 0, (uint64_t)ET_DURATION_MAX_US, &v) < 0)
            return -EINVAL;
        o->duration_us = (int64_t)v;
    }
    o->has_duration = true;
    o->duration_flag = flag;
    return 0;
}

/* Checks --redis-url and --stream up front, so a typo is a usage error naming the flag. */
static int check_target(const emit_opts_t *o)
{
    et_redis_url_t url;
    char why[256];

    if (et_redis_url_parse(o->redis_url, &url, why, sizeof(why)) < 0) {
        fprintf(stderr, PROG ": --redis-url (or EXECTIME_REDIS_URL): %s\n", why);
        return -EINVAL;
    }
    size_t n = strlen(o->stream);
    if (n == 0 || o->stream[0] == ',' || o->stream[n - 1] == ',' || strstr(o->stream, ",,")) {
        fprintf(stderr, PROG ": --stream (or EXECTIME_STREAM): empty stream key in \"%s\"\n",
                o->stream);
        return -EINVAL;
    }
    return 0;
}

/*
 * Reads the flags into o. Returns 0, 1 after --help, or -EINVAL after printing one line
 * naming the offending flag.
 */
static int parse_args(int argc, char **argv, emit_opts_t *o)
{
    static const struct option longopts[] = {
        {"redis-url", required_argument, NULL, OPT_REDIS_URL},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"workflow", required_argument, NULL, OPT_WORKFLOW},
        {"run", required_argument, NULL, OPT_RUN},
        {"status", required_argument, NULL, OPT_STATUS},
        {"duration-ms", required_argument, NULL, OPT_DURATION_MS},
        {"duration-us", required_argument, NULL, OPT_DURATION_US},
        {"finished-at", required_argument, NULL, OPT_FINISHED_AT},
        {"queue-wait-ms", required_argument, NULL, OPT_QUEUE_WAIT_MS},
        {"queue-share", required_argument, NULL, OPT_QUEUE_SHARE},
        {"count", required_argument, NULL, OPT_COUNT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"tenants", required_argument, NULL, OPT_TENANTS},
        {"workflows", required_argument, NULL, OPT_WORKFLOWS},
        {"batch", required_argument, NULL, OPT_BATCH},
        {"seed", required_argument, NULL, OPT_SEED},
        {"failure-rate", required_argument, NULL, OPT_FAILURE_RATE},
        {"spread-days", required_argument, NULL, OPT_SPREAD_DAYS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *env;

    memset(o, 0, sizeof(*o));
    env = getenv("EXECTIME_REDIS_URL");
    o->redis_url = env != NULL && *env != '\0' ? env : DEFAULT_REDIS_URL;
    env = getenv("EXECTIME_STREAM");
    o->stream = env != NULL && *env != '\0' ? env : DEFAULT_STREAM;
    o->status = ET_STATUS_SUCCESS;
    o->tenants = 3;
    o->workflows = 20;
    o->batch = 1;
    o->failure_rate = 0.03;

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        const char *flag = "";
        for (const struct option *lo = longopts; lo->name != NULL; lo++) {
            if (lo->val == c)
                flag = lo->name;
        }
        char flagbuf[40];
        snprintf(flagbuf, sizeof(flagbuf), "--%s", flag);
        if (c >= OPT_TENANT && c <= OPT_FINISHED_AT)
            o->single_flag = flag;
        if (c >= OPT_TENANTS && c <= OPT_SPREAD_DAYS)
            o->gen_flag = flag;

        switch (c) {
        case 'h': usage(stdout); return 1;
        case OPT_VERSION: printf(PROG " %s\n", EXECTIME_VERSION); return 1;
        case OPT_REDIS_URL: o->redis_url = optarg; break;
        case OPT_STREAM: o->stream = optarg; break;
        case OPT_TENANT: o->tenant = optarg; break;
        case OPT_WORKFLOW: o->workflow = optarg; break;
        case OPT_RUN: o->run = optarg; break;
        case OPT_STATUS:
            if (et_status_parse(optarg, strlen(optarg), &o->status) < 0)
                return bad_flag(
                    flagbuf, "expected success, failed, cancelled or timeout, got \"%s\"", optarg);
            break;
        case OPT_DURATION_MS:
            if (set_duration(o, "--duration-ms", optarg, true) < 0)
                return -EINVAL;
            break;
        case OPT_DURATION_US:
            if (set_duration(o, "--duration-us", optarg, false) < 0)
                return -EINVAL;
            break;
        case OPT_FINISHED_AT: o->finished_at = optarg; break;
        case OPT_QUEUE_WAIT_MS: {
            double v;
            if (parse_double(flagbuf, optarg, 0.0, (double)ET_DURATION_MAX_US / 1000.0, &v) < 0)
                return -EINVAL;
            o->queue_wait_us = llround(v * 1000.0);
            o->has_queue_wait = true;
            break;
        }
        case OPT_QUEUE_SHARE:
            if (parse_double(flagbuf, optarg, 0.0, 1.0, &o->queue_share) < 0)
                return -EINVAL;
            break;
        case OPT_COUNT:
            if (parse_u64(flagbuf, optarg, 0, UINT64_MAX, &o->count) < 0)
                return -EINVAL;
            o->generator = true;
            break;
        case OPT_RATE:
            if (parse_double(flagbuf, optarg, 0.0, 1e9, &o->rate) < 0)
                return -EINVAL;
            o->generator = true;
            break;
        case OPT_TENANTS:
            if (parse_u64(flagbuf, optarg, 1, GEN_MAX_TENANTS, &o->tenants) < 0)
                return -EINVAL;
            break;
        case OPT_WORKFLOWS:
            if (parse_u64(flagbuf, optarg, 1, GEN_MAX_WORKFLOWS, &o->workflows) < 0)
                return -EINVAL;
            break;
        case OPT_BATCH:
            if (parse_u64(flagbuf, optarg, 1, ET_ENTRY_MAX_EVENTS, &o->batch) < 0)
                return -EINVAL;
            break;
        case OPT_SEED:
            if (parse_u64(flagbuf, optarg, 0, UINT64_MAX, &o->seed) < 0)
                return -EINVAL;
            o->has_seed = true;
            break;
        case OPT_FAILURE_RATE:
            if (parse_double(flagbuf, optarg, 0.0, 1.0, &o->failure_rate) < 0)
                return -EINVAL;
            break;
        case OPT_SPREAD_DAYS:
            /* The agent refuses events older than its raw retention (30 days by default). */
            if (parse_double(flagbuf, optarg, 0.0, 365.0, &o->spread_days) < 0)
                return -EINVAL;
            break;
        case ':':
            fprintf(stderr, PROG ": %s: needs a value (see --help)\n", argv[optind - 1]);
            return -EINVAL;
        default:
            fprintf(stderr, PROG ": %s: unknown flag (see --help)\n", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": %s: unexpected argument (flags only; see --help)\n", argv[optind]);
        return -EINVAL;
    }
    if (o->generator && o->single_flag != NULL) {
        fprintf(stderr, PROG ": --%s: single-event flag, cannot be used with --count/--rate\n",
                o->single_flag);
        return -EINVAL;
    }
    if (!o->generator && o->gen_flag != NULL) {
        fprintf(stderr, PROG ": --%s: generator flag, needs --count or --rate\n", o->gen_flag);
        return -EINVAL;
    }
    return check_target(o);
}

/* ---- randomness ---- */

static uint64_t rng_next(uint64_t *state)
{
    return et_splitmix64(state);
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box-Muller (one of the pair is enough here). */
static double rng_normal(uint64_t *state)
{
    double u1 = 1.0 - rng_unit(state); /* (0, 1]: log is finite */
    double u2 = rng_unit(state);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* OS randomness for seeds and run ids; falls back to the clock if getrandom fails. */
static uint64_t random_u64(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof(v), 0) == (ssize_t)sizeof(v))
        return v;
    uint64_t s = (uint64_t)et_now_us() ^ ((uint64_t)getpid() << 32);
    return rng_next(&s);
}

static void random_uuid(char *buf, size_t cap)
{
    uint64_t hi = random_u64();
    uint64_t lo = random_u64();
    hi = (hi & ~0xf000ULL) | 0x4000ULL;                 /* version 4 */
    lo = (lo & ~(0xc000ULL << 48)) | (0x8000ULL << 48); /* RFC 4122 variant */
    snprintf(buf, cap, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
             hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48, lo & (uint64_t)0xffffffffffff);
}

/* ---- single event ---- */

/* Copies a flag value into a fixed id field, refusing an empty or too long one. */
static int copy_id(const char *flag, const char *v, char *dst, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max) {
        fprintf(stderr, PROG ": %s: must be 1-%zu bytes, got %zu\n", flag, max, n);
        return -EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* Names the flag behind a decoder reason ("finished_at: ..." is --finished-at's fault). */
static int report_rejected(const char *reason)
{
    static const struct {
        const char *key;
        const char *flag;
    } map[] = {
        {"tenant_id: ", "--tenant"},
        {"workflow_id: ", "--workflow"},
        {"run_id: ", "--run"},
        {"finished_at: ", "--finished-at"},
        {"duration_us: ", "--duration-us"},
        {"enqueued_at: ", "--queue-wait-ms"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t n = strlen(map[i].key);
        if (strncmp(reason, map[i].key, n) == 0)
            return bad_flag(map[i].flag, "%s (the agent would reject it)", reason + n);
    }
    fprintf(stderr, PROG ": the agent would reject this event: %s\n", reason);
    return -EINVAL;
}

/*
 * Builds the event from flags and checks it with the decoder the agent uses, so a value
 * the agent would dead-letter (invalid UTF-8, finished_at out of range) is refused here.
 * Returns 0 or -EINVAL after one line on stderr.
 */
static int build_single(const emit_opts_t *o, et_event_t *ev)
{
    char run[64];

    memset(ev, 0, sizeof(*ev));
    if (o->tenant == NULL)
        return bad_flag("--tenant", "%s", "required (or use --count/--rate)");
    if (o->workflow == NULL)
        return bad_flag("--workflow", "%s", "required");
    if (!o->has_duration)
        return bad_flag("--duration-ms", "%s", "required (or --duration-us)");
    if (copy_id("--tenant", o->tenant, ev->tenant_id, ET_TENANT_ID_MAX) < 0 ||
        copy_id("--workflow", o->workflow, ev->workflow_id, ET_WORKFLOW_ID_MAX) < 0)
        return -EINVAL;
    if (o->run != NULL) {
        if (copy_id("--run", o->run, ev->run_id, ET_RUN_ID_MAX) < 0)
            return -EINVAL;
    } else {
        random_uuid(run, sizeof(run));
        memcpy(ev->run_id, run, strlen(run) + 1);
    }
    ev->status = o->status;
    ev->duration_us = o->duration_us;
    ev->finished_us = et_now_us();
    if (o->finished_at != NULL) {
        bool date_only = false;
        if (et_time_parse(o->finished_at, strlen(o->finished_at), &ev->finished_us, &date_only) < 0)
            return bad_flag("--finished-at",
                            "expected an RFC 3339 time like 2026-11-01T12:00:00Z, got \"%s\"",
                            o->finished_at);
    }
    if (o->has_queue_wait) {
        ev->has_enqueued = true;
        ev->enqueued_us = ev->finished_us - ev->duration_us - o->queue_wait_us;
    }

    char *buf = NULL;
    size_t len = 0;
    if (et_event_encode(ev, 1, false, &buf, &len) < 0) {
        fprintf(stderr, PROG ": cannot encode the event\n");
        return -EINVAL;
    }
    et_event_t check;
    size_t n = 0;
    char reason[256];
    int rc = et_event_decode(buf, len, et_now_us(), 0, &check, 1, &n, reason, sizeof(reason));
    free(buf);
    if (rc < 0)
        return report_rejected(reason);
    return 0;
}

/* ---- generator ---- */

typedef struct generator {
    uint64_t rng;
    uint64_t seed;
    uint64_t counter;     /* run ids "<seed>-<counter>" */
    double *tenant_cdf;   /* cumulative Zipf weights, tenants entries */
    double *workflow_cdf; /* likewise for workflows */
    uint64_t tenants;
    uint64_t workflows;
    double failure_rate;
    double queue_share; /* share of events with enqueued_at */
    int64_t spread_us;  /* finished_at = now − uniform [0, spread_us) */
} generator_t;

/* Cumulative, normalised weights 1/k^s for k = 1..n. */
static double *zipf_cdf(uint64_t n, double s)
{
    double *cdf = malloc(n * sizeof(*cdf));
    if (cdf == NULL)
        return NULL;
    double sum = 0.0;
    for (uint64_t k = 0; k < n; k++) {
        sum += 1.0 / pow((double)(k + 1), s);
        cdf[k] = sum;
    }
    for (uint64_t k = 0; k < n; k++)
        cdf[k] /= sum;
    return cdf;
}

/* Index of the first cdf entry above u (binary search); 0-based. */
static uint64_t cdf_pick(const double *cdf, uint64_t n, double u)
{
    uint64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/*
 * Each (tenant, workflow) keeps the same median and spread for a given seed, derived by
 * hashing instead of a table, so many tenants and workflows cost no memory.
 */
static void workflow_profile(const generator_t *g, uint64_t t, uint64_t w, double *median_us,
                             double *sigma)
{
    uint64_t h = g->seed ^ (t * 0x9e3779b97f4a7c15ULL) ^ (w * 0xc2b2ae3d27d4eb4fULL);
    double u = rng_unit(&h);
    double lo = log(GEN_MEDIAN_MIN_US), hi = log(GEN_MEDIAN_MAX_US);
    *median_us = exp(lo + u * (hi - lo));
    *sigma = 0.3 + 0.5 * rng_unit(&h);
}

static void generate_event(generator_t *g, et_event_t *ev)
{
    uint64_t t = cdf_pick(g->tenant_cdf, g->tenants, rng_unit(&g->rng)) + 1;
    uint64_t w = cdf_pick(g->workflow_cdf, g->workflows, rng_unit(&g->rng)) + 1;
    double median, sigma;

    memset(ev, 0, sizeof(*ev));
    snprintf(ev->tenant_id, sizeof(ev->tenant_id), "tenant-%" PRIu64, t);
    snprintf(ev->workflow_id, sizeof(ev->workflow_id), "wf-%" PRIu64, w);
    snprintf(ev->run_id, sizeof(ev->run_id), "%" PRIu64 "-%" PRIu64, g->seed, ++g->counter);

    workflow_profile(g, t, w, &median, &sigma);
    double d = median * exp(sigma * rng_normal(&g->rng));
    if (rng_unit(&g->rng) < GEN_TAIL_PROB)
        d *= GEN_TAIL_FACTOR;

    double u = rng_unit(&g->rng);
    double f = g->failure_rate;
    ev->status = ET_STATUS_SUCCESS;
    if (u < f) {
        ev->status = ET_STATUS_FAILED;
        d *= 0.2 + 0.8 * rng_unit(&g->rng); /* failures tend to stop early */
    } else if (u < f * (1.0 + 1.0 / 3.0)) {
        ev->status = ET_STATUS_CANCELLED;
        d *= rng_unit(&g->rng);
    } else if (u < f * (1.0 + 2.0 / 3.0)) {
        ev->status = ET_STATUS_TIMEOUT;
        d = median * 10.0; /* the worker's deadline */
    }
    if (d < 1.0)
        d = 1.0;
    if (d > (double)ET_DURATION_MAX_US)
        d = (double)ET_DURATION_MAX_US;
    ev->duration_us = (int64_t)d;
    ev->finished_us = et_now_us();
    if (g->spread_us > 0)
        ev->finished_us -= (int64_t)(rng_unit(&g->rng) * (double)g->spread_us);
    /* Drawn only when asked for, so a seed without --queue-share gives the same events. */
    if (g->queue_share > 0 && rng_unit(&g->rng) < g->queue_share) {
        /* A tenant's workers are busy or not: medians from 200 ms (tenant-1) upwards. */
        double wait = GEN_QUEUE_MEDIAN_US * pow(4.0, (double)((t - 1) % 4)) *
                      exp(GEN_QUEUE_SIGMA * rng_normal(&g->rng));
        if (wait > (double)ET_US_PER_HOUR)
            wait = (double)ET_US_PER_HOUR;
        ev->has_enqueued = true;
        ev->enqueued_us = ev->finished_us - ev->duration_us - (int64_t)wait;
    }
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}

/*
 * Sends events batch by batch until --count is reached or a signal arrives. With --rate
 * each batch waits for its due time; after falling more than a second behind (slow Redis)
 * the schedule restarts from now instead of bursting to catch up.
 */
static int run_generator(const emit_opts_t *o, et_emitter_t *em, uint64_t *sent, uint64_t *entries)
{
    generator_t g = {0};
    char err[ERR_MAX];
    int rc = 0;

    g.seed = o->has_seed ? o->seed : random_u64() >> 16;
    g.rng = g.seed;
    g.tenants = o->tenants;
    g.workflows = o->workflows;
    g.failure_rate = o->failure_rate;
    g.queue_share = o->queue_share;
    g.spread_us = (int64_t)(o->spread_days * 86400e6);
    g.tenant_cdf = zipf_cdf(o->tenants, GEN_TENANT_ZIPF_S);
    g.workflow_cdf = zipf_cdf(o->workflows, GEN_WORKFLOW_ZIPF_S);
    et_event_t *batch = calloc(o->batch, sizeof(*batch));
    if (g.tenant_cdf == NULL || g.workflow_cdf == NULL || batch == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = -ENOMEM;
        goto out;
    }
    fprintf(stderr, PROG ": seed %" PRIu64 "\n", g.seed);

    int64_t base = et_monotonic_us();
    uint64_t base_sent = 0;
    while (!stop_requested && (o->count == 0 || *sent < o->count)) {
        uint64_t n = o->batch;
        if (o->count != 0 && o->count - *sent < n)
            n = o->count - *sent;
        if (o->rate > 0.0) {
            int64_t due = base + (int64_t)((double)(*sent - base_sent) * 1e6 / o->rate);
            int64_t now = et_monotonic_us();
            if (now - due > ET_US_PER_SEC) {
                base = now;
                base_sent = *sent;
            } else if (due > now) {
                sleep_us(due - now);
                continue; /* re-check the signal flag and the clock */
            }
        }
        for (uint64_t i = 0; i < n; i++)
            generate_event(&g, &batch[i]);
        rc = et_emitter_send(em, batch, n, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, PROG ": %s\n", err);
            break;
        }
        *sent += n;
        (*entries)++;
    }
out:
    free(batch);
    free(g.tenant_cdf);
    free(g.workflow_cdf);
    return rc;
}

int main(int argc, char **argv)
{
    emit_opts_t o;
    et_event_t single;
    char err[ERR_MAX];

    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (!o.generator && build_single(&o, &single) < 0)
        return 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    et_emitter_t *em = NULL;
    rc = et_emitter_open(o.redis_url, o.stream, &em, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return rc == -EINVAL ? 2 : 1;
    }

    uint64_t sent = 0, entries = 0;
    int64_t t0 = et_monotonic_us();
    if (o.generator) {
        rc = run_generator(&o, em, &sent, &entries);
    } else {
        rc = et_emitter_send(em, &single, 1, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, PROG ": %s\n", err);
        } else {
            sent = 1;
            entries = 1;
        }
    }
    double secs = (double)(et_monotonic_us() - t0) / 1e6;
    et_emitter_close(em);

    if (!o.generator && rc == 0)
        fprintf(stderr,
                PROG ": sent 1 event (tenant %s, workflow %s, run %s, %s, %" PRId64
                     " us) to %s in %.3f s\n",
                single.tenant_id, single.workflow_id, single.run_id, et_status_name(single.status),
                single.duration_us, o.stream, secs);
    else
        fprintf(stderr,
                PROG ": sent %" PRIu64 " events in %" PRIu64 " entries to %s in %.3f s (%.1f "
                     "events/s)%s\n",
                sent, entries, o.stream, secs, secs > 0.0 ? (double)sent / secs : 0.0,
                stop_requested ? ", stopped by signal" : "");
    return rc < 0 ? 1 : 0;
}
