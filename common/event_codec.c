/*
 * event_codec — run events (DESIGN section 2) to and from msgpack.
 *
 * Decoding happens in two steps. A structural scan walks the raw bytes first: it checks
 * that they are exactly one well-formed msgpack value, that no container declares more
 * elements than there are bytes left and that nesting stays shallow. Only then does
 * msgpack_unpack build the object tree, so a five-byte "map of 4 billion pairs" can never
 * make msgpack-c ask for gigabytes, and its fixed parse stack can never overflow. The
 * tree is then checked key by key, in a fixed order so the same entry always gets the
 * same reason.
 */
#include "event_codec.h"

#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <msgpack/unpack_define.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketch.h"
#include "timeutil.h"

/* Deepest container nesting accepted; msgpack-c's own parse stack holds 32 levels. */
#define CODEC_MAX_DEPTH 16
/* Bytes of an offending value echoed in a reason. */
#define CODEC_ECHO_MAX 32
#define CODEC_WHY_MAX 192

_Static_assert(CODEC_MAX_DEPTH < MSGPACK_EMBED_STACK_SIZE, "scan must be stricter than msgpack-c");
_Static_assert(ET_FUTURE_SKEW_US == ET_US_PER_HOUR, "reasons say \"1 hour\"");

typedef enum codec_key {
    KEY_V = 0,
    KEY_TENANT_ID,
    KEY_WORKFLOW_ID,
    KEY_RUN_ID,
    KEY_STATUS,
    KEY_FINISHED_AT,
    KEY_STARTED_AT,
    KEY_DURATION_US,
    KEY_ENQUEUED_AT,
    KEY_COUNT
} codec_key_t;

static const char *const key_names[KEY_COUNT] = {
    [KEY_V] = "v",
    [KEY_TENANT_ID] = "tenant_id",
    [KEY_WORKFLOW_ID] = "workflow_id",
    [KEY_RUN_ID] = "run_id",
    [KEY_STATUS] = "status",
    [KEY_FINISHED_AT] = "finished_at",
    [KEY_STARTED_AT] = "started_at",
    [KEY_DURATION_US] = "duration_us",
    [KEY_ENQUEUED_AT] = "enqueued_at",
};

static const char *const status_names[ET_STATUS_COUNT] = {
    [ET_STATUS_SUCCESS] = "success",
    [ET_STATUS_FAILED] = "failed",
    [ET_STATUS_CANCELLED] = "cancelled",
    [ET_STATUS_TIMEOUT] = "timeout",
};

const char *et_status_name(et_status_t s)
{
    if ((unsigned)s >= ET_STATUS_COUNT)
        return "unknown";
    return status_names[s];
}

static bool bytes_equal(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

int et_status_parse(const char *s, size_t len, et_status_t *out)
{
    for (int i = 0; i < ET_STATUS_COUNT; i++) {
        if (bytes_equal(s, len, status_names[i])) {
            *out = (et_status_t)i;
            return 0;
        }
    }
    if (bytes_equal(s, len, "succeeded")) {
        *out = ET_STATUS_SUCCESS;
        return 0;
    }
    if (bytes_equal(s, len, "canceled")) {
        *out = ET_STATUS_CANCELLED;
        return 0;
    }
    return -EINVAL;
}

/* ---- structural scan of raw bytes ---- */

static uint64_t load_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Walks exactly one msgpack value from p without building anything. Fails on a reserved
 * byte, on a value running past len, on a container that claims more elements than bytes
 * remain (each element takes at least one), and on nesting deeper than CODEC_MAX_DEPTH.
 * Iterative with a fixed stack, so hostile input cannot exhaust the C stack.
 * On success *end is the offset just past the value.
 */
static int scan_value(const uint8_t *p, size_t len, size_t *end, char *why, size_t cap)
{
    uint64_t pending[CODEC_MAX_DEPTH + 1]; /* elements still to read at each level */
    size_t depth = 0;
    size_t off = 0;

    pending[0] = 1;
    for (;;) {
        if (pending[depth] == 0) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        pending[depth]--;
        if (off >= len) {
            snprintf(why, cap, "not msgpack: truncated at byte %zu", off);
            return -EINVAL;
        }
        size_t at = off;
        uint8_t b = p[off++];
        size_t hdr = 0;    /* length-field bytes after the type byte */
        uint64_t skip = 0; /* payload bytes */
        uint64_t children = 0;
        bool var_len = false; /* payload length comes from the length field */
        uint64_t per_len = 1; /* children per declared element (2 for maps) */
        bool container = false;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            skip = 0;
        } else if (b >= 0x80 && b <= 0x8f) {
            container = true;
            children = 2ULL * (b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            container = true;
            children = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                hdr = 1;
                var_len = true;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                hdr = 2;
                var_len = true;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                hdr = 4;
                var_len = true;
                break; /* bin32, str32 */
            case 0xc7:
                hdr = 1;
                var_len = true;
                skip = 1;
                break; /* ext8 (+type) */
            case 0xc8:
                hdr = 2;
                var_len = true;
                skip = 1;
                break; /* ext16 */
            case 0xc9:
                hdr = 4;
                var_len = true;
                skip = 1;
                break; /* ext32 */
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc:
            case 0xd0: skip = 1; break;
            case 0xcd:
            case 0xd1: skip = 2; break;
            case 0xce:
            case 0xd2: skip = 4; break;
            case 0xcf:
            case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break; /* fixext 1: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc:
                hdr = 2;
                container = true;
                break;
            case 0xdd:
                hdr = 4;
                container = true;
                break;
            case 0xde:
                hdr = 2;
                container = true;
                per_len = 2;
                break;
            case 0xdf:
                hdr = 4;
                container = true;
                per_len = 2;
                break;
            default:
                snprintf(why, cap, "not msgpack: reserved byte 0x%02x at offset %zu", b, at);
                return -EINVAL;
            }
        }
        if (hdr > len - off) {
            snprintf(why, cap, "not msgpack: truncated at byte %zu", len);
            return -EINVAL;
        }
        if (hdr > 0) {
            uint64_t n = load_be(p + off, hdr);
            off += hdr;
            if (container)
                children = n * per_len;
            else if (var_len)
                skip += n;
        }
        if (skip > len - off) {
            snprintf(why, cap, "not msgpack: truncated at byte %zu", len);
            return -EINVAL;
        }
        off += (size_t)skip;
        if (!container || children == 0)
            continue;
        if (children > len - off) {
            snprintf(why, cap,
                     "not msgpack: container at offset %zu declares %" PRIu64
                     " elements but only %zu bytes follow",
                     at, children, len - off);
            return -EINVAL;
        }
        if (depth == CODEC_MAX_DEPTH) {
            snprintf(why, cap, "not msgpack: nested deeper than %d levels", CODEC_MAX_DEPTH);
            return -EINVAL;
        }
        pending[++depth] = children;
    }
    *end = off;
    return 0;
}

/* ---- value checks ---- */

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown type";
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            uint8_t b = s[i + k];
            if ((b & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/* Copies at most CODEC_ECHO_MAX bytes of s as printable ASCII, so a reason stays one line. */
static void echo_sanitized(const char *s, size_t len, char *dst, size_t cap)
{
    size_t o = 0;
    size_t n = len < CODEC_ECHO_MAX ? len : CODEC_ECHO_MAX;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (len > n && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
}

/* A str of min..max bytes, valid UTF-8 without NUL, copied NUL-terminated into dst. */
static int check_str(const msgpack_object *o, const char *key, size_t max, char *dst, char *why,
                     size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        snprintf(why, cap, "%s: expected str, got %s", key, type_name(o));
        return -EINVAL;
    }
    size_t n = o->via.str.size;
    if (n == 0) {
        snprintf(why, cap, "%s: empty", key);
        return -EINVAL;
    }
    if (n > max) {
        snprintf(why, cap, "%s: %zu bytes, more than the %zu allowed", key, n, max);
        return -EINVAL;
    }
    if (memchr(o->via.str.ptr, '\0', n) != NULL) {
        snprintf(why, cap, "%s: contains a NUL byte", key);
        return -EINVAL;
    }
    if (!utf8_valid((const uint8_t *)o->via.str.ptr, n)) {
        snprintf(why, cap, "%s: not valid UTF-8", key);
        return -EINVAL;
    }
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
    return 0;
}

/* workflow_id / run_id: a str, or an int written as its decimal text. */
static int check_id(const msgpack_object *o, const char *key, size_t max, char *dst, char *why,
                    size_t cap)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(dst, max + 1, "%" PRIu64, o->via.u64);
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        snprintf(dst, max + 1, "%" PRId64, o->via.i64);
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_STR) {
        snprintf(why, cap, "%s: expected str or int, got %s", key, type_name(o));
        return -EINVAL;
    }
    return check_str(o, key, max, dst, why, cap);
}

/*
 * finished_at / started_at / enqueued_at: int µs since the epoch, or a msgpack timestamp (ext -1) in its
 * 32-, 64- or 96-bit form. Nanoseconds are floored to µs.
 */
static int check_time(const msgpack_object *o, const char *key, int64_t *out, char *why, size_t cap)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            snprintf(why, cap, "%s: %" PRIu64 " out of range", key, o->via.u64);
            return -EINVAL;
        }
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_EXT) {
        snprintf(why, cap, "%s: expected int (microseconds) or timestamp, got %s", key,
                 type_name(o));
        return -EINVAL;
    }
    if (o->via.ext.type != -1) {
        snprintf(why, cap, "%s: ext type %d is not a timestamp", key, (int)o->via.ext.type);
        return -EINVAL;
    }
    const uint8_t *p = (const uint8_t *)o->via.ext.ptr;
    int64_t sec;
    uint64_t nsec;
    switch (o->via.ext.size) {
    case 4:
        sec = (int64_t)load_be(p, 4);
        nsec = 0;
        break;
    case 8: {
        uint64_t v = load_be(p, 8);
        nsec = v >> 34;
        sec = (int64_t)(v & 0x3ffffffffULL);
        break;
    }
    case 12:
        nsec = load_be(p, 4);
        sec = (int64_t)load_be(p + 4, 8);
        break;
    default:
        snprintf(why, cap, "%s: timestamp of %" PRIu32 " bytes (expected 4, 8 or 12)", key,
                 o->via.ext.size);
        return -EINVAL;
    }
    if (nsec >= 1000000000ULL) {
        snprintf(why, cap, "%s: timestamp nanoseconds %" PRIu64 " out of range", key, nsec);
        return -EINVAL;
    }
    if (sec > (INT64_MAX - 999999) / ET_US_PER_SEC || sec < INT64_MIN / ET_US_PER_SEC) {
        snprintf(why, cap, "%s: timestamp seconds %" PRId64 " out of range", key, sec);
        return -EINVAL;
    }
    *out = sec * ET_US_PER_SEC + (int64_t)(nsec / 1000);
    return 0;
}

/* Formats t for a reason; falls back to the raw number if formatting fails. */
static void fmt_time(int64_t t, char *buf, size_t cap)
{
    if (et_time_format(t, buf, cap) < 0)
        snprintf(buf, cap, "%" PRId64 " us", t);
}

/*
 * enqueued_at (o, NULL when absent) of an event whose other times are checked: the run
 * waited from it to its start, started_at when given, else finished_at − duration_us (the
 * same start the duration measures from when only duration_us is sent). A wait is never
 * negative and never longer than a run may be: a clock that runs backwards or a value in
 * the wrong unit is refused here rather than stored as an absurd queue.
 */
static int check_enqueued(const msgpack_object *o, et_event_t *ev, char *why, size_t cap)
{
    if (o == NULL)
        return 0;
    int64_t enq;
    if (check_time(o, "enqueued_at", &enq, why, cap) < 0)
        return -EINVAL;
    int64_t start = ev->has_started ? ev->started_us : ev->finished_us - ev->duration_us;
    if (enq > ev->finished_us) {
        snprintf(why, cap, "enqueued_at: after finished_at (must be <= started_at <= finished_at)");
        return -EINVAL;
    }
    if (enq > start) {
        snprintf(why, cap, "enqueued_at: after %s (must be <= started_at <= finished_at)",
                 ev->has_started ? "started_at" : "the start (finished_at - duration_us)");
        return -EINVAL;
    }
    if (enq < start - ET_DURATION_MAX_US) {
        snprintf(why, cap, "enqueued_at: a queue wait of more than 30 days before the start");
        return -EINVAL;
    }
    ev->enqueued_us = enq;
    ev->has_enqueued = true;
    ev->queue_wait_us = start - enq;
    return 0;
}

/*
 * Validates one event map into ev. Known keys are collected first (rejecting duplicates
 * and non-str keys), then checked in table order, so the reason does not depend on the
 * publisher's key order.
 */
static int decode_map(const msgpack_object_map *m, int64_t now_us, int64_t floor_us, et_event_t *ev,
                      char *why, size_t cap)
{
    const msgpack_object *val[KEY_COUNT] = {0};

    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            snprintf(why, cap, "map key #%" PRIu32 " is %s, not str", i + 1, type_name(k));
            return -EINVAL;
        }
        for (int j = 0; j < KEY_COUNT; j++) {
            if (!bytes_equal(k->via.str.ptr, k->via.str.size, key_names[j]))
                continue;
            if (val[j] != NULL) {
                snprintf(why, cap, "%s: duplicate key", key_names[j]);
                return -EINVAL;
            }
            val[j] = &m->ptr[i].val;
            break;
        }
    }
    /* An optional key whose value is nil is absent: how msgpack libraries write a field
     * left undefined (@msgpack/msgpack for `started_at: undefined`, None in Python). */
    if (val[KEY_STARTED_AT] && val[KEY_STARTED_AT]->type == MSGPACK_OBJECT_NIL)
        val[KEY_STARTED_AT] = NULL;
    if (val[KEY_DURATION_US] && val[KEY_DURATION_US]->type == MSGPACK_OBJECT_NIL)
        val[KEY_DURATION_US] = NULL;
    if (val[KEY_ENQUEUED_AT] && val[KEY_ENQUEUED_AT]->type == MSGPACK_OBJECT_NIL)
        val[KEY_ENQUEUED_AT] = NULL;
    for (int j = 0; j < KEY_COUNT; j++) {
        if (val[j] == NULL && j != KEY_STARTED_AT && j != KEY_DURATION_US && j != KEY_ENQUEUED_AT) {
            snprintf(why, cap, "%s: missing", key_names[j]);
            return -EINVAL;
        }
    }

    memset(ev, 0, sizeof(*ev));
    const msgpack_object *o = val[KEY_V];
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(why, cap, "v: expected uint, got %s", type_name(o));
        return -EINVAL;
    }
    if (o->via.u64 != ET_EVENT_VERSION) {
        snprintf(why, cap, "v: unsupported version %" PRIu64 " (expected %d)", o->via.u64,
                 ET_EVENT_VERSION);
        return -EINVAL;
    }
    if (check_str(val[KEY_TENANT_ID], "tenant_id", ET_TENANT_ID_MAX, ev->tenant_id, why, cap) < 0 ||
        check_id(val[KEY_WORKFLOW_ID], "workflow_id", ET_WORKFLOW_ID_MAX, ev->workflow_id, why,
                 cap) < 0 ||
        check_id(val[KEY_RUN_ID], "run_id", ET_RUN_ID_MAX, ev->run_id, why, cap) < 0)
        return -EINVAL;
    if (strcmp(ev->workflow_id, ET_OVERFLOW_WORKFLOW_ID) == 0) {
        snprintf(why, cap,
                 "workflow_id: \"%s\" is reserved for runs past the tenant's "
                 "workflow limit",
                 ET_OVERFLOW_WORKFLOW_ID);
        return -EINVAL;
    }

    o = val[KEY_STATUS];
    if (o->type != MSGPACK_OBJECT_STR) {
        snprintf(why, cap, "status: expected str, got %s", type_name(o));
        return -EINVAL;
    }
    if (et_status_parse(o->via.str.ptr, o->via.str.size, &ev->status) < 0) {
        char echo[CODEC_ECHO_MAX + 4];
        echo_sanitized(o->via.str.ptr, o->via.str.size, echo, sizeof(echo));
        snprintf(why, cap, "status: unknown value \"%s\"", echo);
        return -EINVAL;
    }

    if (check_time(val[KEY_FINISHED_AT], "finished_at", &ev->finished_us, why, cap) < 0)
        return -EINVAL;
    int64_t fin = ev->finished_us;
    char tbuf[40];
    if (fin < ET_TIME_MIN_VALID_US) {
        /* The usual mistake: seconds or milliseconds where microseconds belong. */
        const int64_t y2000_s = ET_TIME_MIN_VALID_US / ET_US_PER_SEC, y2100_s = 4102444800LL;
        const char *unit = fin >= y2000_s && fin < y2100_s                 ? "seconds"
                           : fin >= y2000_s * 1000 && fin < y2100_s * 1000 ? "milliseconds"
                                                                           : NULL;
        if (unit)
            snprintf(why, cap,
                     "finished_at: before 2000-01-01 (%" PRId64 " looks like %s since the "
                     "epoch: send microseconds, e.g. Date.now() * 1000, or a msgpack "
                     "timestamp)",
                     fin, unit);
        else
            snprintf(why, cap, "finished_at: before 2000-01-01");
        return -EINVAL;
    }
    if (fin < floor_us) {
        fmt_time(floor_us, tbuf, sizeof(tbuf));
        snprintf(why, cap, "finished_at: older than the accepted window (from %s)", tbuf);
        return -EINVAL;
    }
    if (now_us <= INT64_MAX - ET_FUTURE_SKEW_US && fin > now_us + ET_FUTURE_SKEW_US) {
        snprintf(why, cap, "finished_at: more than 1 hour in the future");
        return -EINVAL;
    }

    if (val[KEY_STARTED_AT] != NULL) {
        int64_t st;
        if (check_time(val[KEY_STARTED_AT], "started_at", &st, why, cap) < 0)
            return -EINVAL;
        ev->started_us = st;
        ev->has_started = true;
    }

    o = val[KEY_DURATION_US];
    if (o != NULL) {
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            snprintf(why, cap, "duration_us: negative (%" PRId64 ")", o->via.i64);
            return -EINVAL;
        }
        uint64_t us;
        if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
            /* JavaScript has one number type, and a measured duration may arrive as a
             * float: a whole number of µs is taken as it is, a fraction is refused rather
             * than rounded behind the publisher's back. */
            double d = o->via.f64;
            if (!(d >= 0) || d > (double)ET_DURATION_MAX_US || d != (double)(int64_t)d) {
                snprintf(why, cap,
                         "duration_us: %.17g is not a whole number of microseconds up to 30 "
                         "days (round it, e.g. Math.round)",
                         d);
                return -EINVAL;
            }
            us = (uint64_t)d;
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            us = o->via.u64;
        } else {
            snprintf(why, cap, "duration_us: expected uint, got %s", type_name(o));
            return -EINVAL;
        }
        if (us > (uint64_t)ET_DURATION_MAX_US) {
            snprintf(why, cap, "duration_us: %" PRIu64 " is more than 30 days", us);
            return -EINVAL;
        }
        ev->duration_us = (int64_t)us;
        /* duration_us wins, but a started_at far from it would still land in the database:
         * allow the clock skew either way, nothing wilder. */
        if (ev->has_started && (ev->started_us > fin + ET_FUTURE_SKEW_US ||
                                ev->started_us < fin - ET_DURATION_MAX_US - ET_FUTURE_SKEW_US)) {
            snprintf(why, cap, "started_at: not within 30 days before finished_at");
            return -EINVAL;
        }
        return check_enqueued(val[KEY_ENQUEUED_AT], ev, why, cap);
    }
    if (!ev->has_started) {
        snprintf(why, cap, "duration_us: missing (give duration_us or started_at)");
        return -EINVAL;
    }
    if (ev->started_us > fin) {
        snprintf(why, cap, "started_at: after finished_at (negative duration)");
        return -EINVAL;
    }
    if (ev->started_us < fin - ET_DURATION_MAX_US) {
        snprintf(why, cap, "started_at: more than 30 days before finished_at");
        return -EINVAL;
    }
    ev->duration_us = fin - ev->started_us;
    return check_enqueued(val[KEY_ENQUEUED_AT], ev, why, cap);
}

/* Validates the unpacked top-level value: one map, or a non-empty array of maps. */
static int decode_object(const msgpack_object *top, int64_t now_us, int64_t floor_us,
                         et_event_t *out, size_t cap, size_t *count, char *reason,
                         size_t reason_cap)
{
    char why[CODEC_WHY_MAX];
    size_t limit = cap < ET_ENTRY_MAX_EVENTS ? cap : ET_ENTRY_MAX_EVENTS;

    if (top->type == MSGPACK_OBJECT_MAP) {
        if (limit < 1) {
            snprintf(reason, reason_cap, "event: no room for the event (cap 0)");
            return -EINVAL;
        }
        if (decode_map(&top->via.map, now_us, floor_us, &out[0], why, sizeof(why)) < 0) {
            snprintf(reason, reason_cap, "%s", why);
            return -EINVAL;
        }
        *count = 1;
        return 0;
    }
    if (top->type != MSGPACK_OBJECT_ARRAY) {
        snprintf(reason, reason_cap, "event: expected a map or an array of maps, got %s",
                 type_name(top));
        return -EINVAL;
    }
    size_t n = top->via.array.size;
    if (n == 0) {
        snprintf(reason, reason_cap, "event: empty array");
        return -EINVAL;
    }
    if (n > limit) {
        snprintf(reason, reason_cap, "event: array of %zu events, more than the %zu allowed", n,
                 limit);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &top->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_MAP) {
            snprintf(reason, reason_cap, "event[%zu]: expected a map, got %s", i, type_name(e));
            return -EINVAL;
        }
        if (decode_map(&e->via.map, now_us, floor_us, &out[i], why, sizeof(why)) < 0) {
            snprintf(reason, reason_cap, "event[%zu]: %s", i, why);
            return -EINVAL;
        }
    }
    *count = n;
    return 0;
}

int et_event_decode(const void *buf, size_t len, int64_t now_us, int64_t not_before_us,
                    et_event_t *out, size_t cap, size_t *count, char *reason, size_t reason_cap)
{
    char why[CODEC_WHY_MAX];
    char dummy[1];
    size_t end = 0;

    if (reason == NULL || reason_cap == 0) {
        reason = dummy;
        reason_cap = sizeof(dummy);
    }
    reason[0] = '\0';
    *count = 0;
    if (buf == NULL || len == 0) {
        snprintf(reason, reason_cap, "event: empty value");
        return -EINVAL;
    }
    if (len > ET_ENTRY_MAX_BYTES) {
        snprintf(reason, reason_cap, "event: %zu bytes, more than the %d allowed", len,
                 ET_ENTRY_MAX_BYTES);
        return -EINVAL;
    }
    if (scan_value(buf, len, &end, why, sizeof(why)) < 0) {
        snprintf(reason, reason_cap, "%s", why);
        return -EINVAL;
    }
    if (end != len) {
        snprintf(reason, reason_cap, "not msgpack: %zu trailing byte%s after the value", len - end,
                 len - end == 1 ? "" : "s");
        return -EINVAL;
    }

    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 2048)) {
        snprintf(reason, reason_cap, "event: out of memory");
        return -ENOMEM;
    }
    msgpack_object top;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(buf, len, &off, &zone, &top);
    int rc;
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        snprintf(reason, reason_cap, "event: out of memory");
        rc = -ENOMEM;
    } else if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        snprintf(reason, reason_cap, "not msgpack: unpack failed (%d)", (int)ur);
        rc = -EINVAL;
    } else {
        int64_t floor_us =
            not_before_us > ET_TIME_MIN_VALID_US ? not_before_us : ET_TIME_MIN_VALID_US;
        rc = decode_object(&top, now_us, floor_us, out, cap, count, reason, reason_cap);
    }
    msgpack_zone_destroy(&zone);
    if (rc < 0)
        *count = 0;
    return rc;
}

/* ---- encoding ---- */

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0)
        return -ENOMEM;
    return 0;
}

/* A string field of an event is usable when NUL-terminated within its array and not empty. */
static bool field_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n >= 1 && n <= max;
}

static int pack_event(msgpack_packer *pk, const et_event_t *ev)
{
    if (!field_ok(ev->tenant_id, ET_TENANT_ID_MAX) ||
        !field_ok(ev->workflow_id, ET_WORKFLOW_ID_MAX) || !field_ok(ev->run_id, ET_RUN_ID_MAX) ||
        (unsigned)ev->status >= ET_STATUS_COUNT || ev->duration_us < 0 ||
        ev->duration_us > ET_DURATION_MAX_US)
        return -EINVAL;
    int rc = msgpack_pack_map(pk, 7 + ev->has_started + ev->has_enqueued) != 0 ? -ENOMEM : 0;
    if (rc == 0)
        rc = pack_str(pk, "v");
    if (rc == 0 && msgpack_pack_uint32(pk, ET_EVENT_VERSION) != 0)
        rc = -ENOMEM;
    if (rc == 0)
        rc = pack_str(pk, "tenant_id");
    if (rc == 0)
        rc = pack_str(pk, ev->tenant_id);
    if (rc == 0)
        rc = pack_str(pk, "workflow_id");
    if (rc == 0)
        rc = pack_str(pk, ev->workflow_id);
    if (rc == 0)
        rc = pack_str(pk, "run_id");
    if (rc == 0)
        rc = pack_str(pk, ev->run_id);
    if (rc == 0)
        rc = pack_str(pk, "status");
    if (rc == 0)
        rc = pack_str(pk, et_status_name(ev->status));
    if (rc == 0)
        rc = pack_str(pk, "finished_at");
    if (rc == 0 && msgpack_pack_int64(pk, ev->finished_us) != 0)
        rc = -ENOMEM;
    if (rc == 0 && ev->has_started) {
        rc = pack_str(pk, "started_at");
        if (rc == 0 && msgpack_pack_int64(pk, ev->started_us) != 0)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = pack_str(pk, "duration_us");
    if (rc == 0 && msgpack_pack_uint64(pk, (uint64_t)ev->duration_us) != 0)
        rc = -ENOMEM;
    if (rc == 0 && ev->has_enqueued) {
        rc = pack_str(pk, "enqueued_at");
        if (rc == 0 && msgpack_pack_int64(pk, ev->enqueued_us) != 0)
            rc = -ENOMEM;
    }
    return rc;
}

int et_event_encode(const et_event_t *events, size_t n, bool as_array, char **out, size_t *out_len)
{
    if (events == NULL || n == 0 || n > ET_ENTRY_MAX_EVENTS || out == NULL || out_len == NULL)
        return -EINVAL;
    *out = NULL;
    *out_len = 0;

    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    bool array = as_array || n > 1;
    int rc = 0;
    if (array && msgpack_pack_array(&pk, n) != 0)
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = pack_event(&pk, &events[i]);
    if (rc == 0 && sb.size > ET_ENTRY_MAX_BYTES)
        rc = -EINVAL;
    if (rc == 0) {
        *out = malloc(sb.size);
        if (*out == NULL) {
            rc = -ENOMEM;
        } else {
            memcpy(*out, sb.data, sb.size);
            *out_len = sb.size;
        }
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
