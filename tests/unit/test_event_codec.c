/*
 * event_codec: the wire format v1 decoder on good and hostile bytes, and the encoder.
 * Valid events are built with msgpack-c's packer; the timestamp ext forms and broken
 * encodings are written byte by byte.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_codec.h"
#include "sketch.h"
#include "timeutil.h"

/* 2026-01-01T00:00:00Z: the decoder's clock in every test. */
#define NOW_US (1767225600LL * ET_US_PER_SEC)
#define FIN_US (NOW_US - 5 * ET_US_PER_SEC)
#define MAX_EVENTS 1200

typedef struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp_t;

static et_event_t events[MAX_EVENTS];
static size_t count;
static char reason[256];

static void mp_init(mp_t *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_free(mp_t *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static void mp_str(mp_t *m, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

static void mp_strn(mp_t *m, const char *s, size_t n)
{
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, s, n);
}

static void mp_raw(mp_t *m, const void *bytes, size_t n)
{
    msgpack_sbuffer_write(&m->sb, bytes, n);
}

static const char *const base_keys[] = {"v",      "tenant_id",   "workflow_id", "run_id",
                                        "status", "finished_at", "duration_us"};
#define BASE_KEYS 7

/* Packs one base field by key. */
static void pack_base_field(mp_t *m, const char *key)
{
    mp_str(m, key);
    if (strcmp(key, "v") == 0)
        msgpack_pack_uint8(&m->pk, 1);
    else if (strcmp(key, "tenant_id") == 0)
        mp_str(m, "t1");
    else if (strcmp(key, "workflow_id") == 0)
        mp_str(m, "wf-1");
    else if (strcmp(key, "run_id") == 0)
        mp_str(m, "r-1");
    else if (strcmp(key, "status") == 0)
        mp_str(m, "success");
    else if (strcmp(key, "finished_at") == 0)
        msgpack_pack_int64(&m->pk, FIN_US);
    else if (strcmp(key, "duration_us") == 0)
        msgpack_pack_uint32(&m->pk, 1500);
}

/*
 * Starts a map holding the valid base event without the nomit keys named in omit, with
 * room for extra pairs the caller packs next.
 */
static void begin_event(mp_t *m, const char *const *omit, size_t nomit, uint32_t extra)
{
    msgpack_pack_map(&m->pk, BASE_KEYS - (uint32_t)nomit + extra);
    for (size_t i = 0; i < BASE_KEYS; i++) {
        bool skip = false;
        for (size_t j = 0; j < nomit; j++)
            skip = skip || strcmp(base_keys[i], omit[j]) == 0;
        if (!skip)
            pack_base_field(m, base_keys[i]);
    }
}

/* The base event with `key` replaced: the caller packs the new value right after. */
static void begin_replace(mp_t *m, const char *key)
{
    const char *omit[1] = {key};
    begin_event(m, omit, 1, 1);
    mp_str(m, key);
}

static int decode_bytes(const void *buf, size_t len)
{
    memset(reason, 0, sizeof(reason));
    return et_event_decode(buf, len, NOW_US, 0, events, MAX_EVENTS, &count, reason, sizeof(reason));
}

static int decode_mp(mp_t *m)
{
    return decode_bytes(m->sb.data, m->sb.size);
}

/* Asserts the buffer is rejected and the reason contains want. */
static void expect_invalid(mp_t *m, const char *want)
{
    int rc = decode_mp(m);
    cr_assert_eq(rc, -EINVAL, "expected -EINVAL for \"%s\", got %d", want, rc);
    cr_assert_eq(count, 0);
    cr_assert(strstr(reason, want) != NULL, "reason \"%s\" lacks \"%s\"", reason, want);
    cr_assert(strchr(reason, '\n') == NULL, "reason is not one line: %s", reason);
}

static void expect_valid(mp_t *m)
{
    int rc = decode_mp(m);
    cr_assert_eq(rc, 0, "expected success, got %d: %s", rc, reason);
}

Test(event_codec, decode_accepts_minimal_map)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 0);
    expect_valid(&m);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(events[0].tenant_id, "t1");
    cr_assert_str_eq(events[0].workflow_id, "wf-1");
    cr_assert_str_eq(events[0].run_id, "r-1");
    cr_assert_eq(events[0].status, ET_STATUS_SUCCESS);
    cr_assert_eq(events[0].finished_us, FIN_US);
    cr_assert_eq(events[0].duration_us, 1500);
    cr_assert_not(events[0].has_started);
    mp_free(&m);
}

Test(event_codec, decode_reads_started_at)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, FIN_US - 2000);
    expect_valid(&m);
    cr_assert(events[0].has_started);
    cr_assert_eq(events[0].started_us, FIN_US - 2000);
    cr_assert_eq(events[0].duration_us, 1500, "duration_us wins over started_at");
    mp_free(&m);
}

Test(event_codec, decode_rejects_reserved_overflow_workflow_id)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "workflow_id");
    mp_str(&m, ET_OVERFLOW_WORKFLOW_ID);
    expect_invalid(&m, "workflow_id: \"(overflow)\" is reserved");
    mp_free(&m);
}

Test(event_codec, decode_rejects_each_missing_required_key)
{
    const char *required[] = {"v", "tenant_id", "workflow_id", "run_id", "status", "finished_at"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        mp_t m;
        char want[64];
        mp_init(&m);
        begin_event(&m, &required[i], 1, 0);
        snprintf(want, sizeof(want), "%s: missing", required[i]);
        expect_invalid(&m, want);
        mp_free(&m);
    }
}

Test(event_codec, decode_rejects_missing_duration_and_started_at)
{
    mp_t m;
    const char *omit[1] = {"duration_us"};
    mp_init(&m);
    begin_event(&m, omit, 1, 0);
    expect_invalid(&m, "duration_us: missing");
    mp_free(&m);
}

typedef enum wrong_kind {
    W_NIL,
    W_BOOL,
    W_FLOAT,
    W_STR,
    W_UINT,
    W_NEG,
    W_BIN,
    W_ARRAY,
    W_MAP,
    W_EXT,
    W_KINDS
} wrong_kind_t;

static void pack_kind(mp_t *m, wrong_kind_t k)
{
    switch (k) {
    case W_NIL: msgpack_pack_nil(&m->pk); break;
    case W_BOOL: msgpack_pack_true(&m->pk); break;
    case W_FLOAT: msgpack_pack_double(&m->pk, 1.5); break;
    case W_STR: mp_str(m, "12"); break;
    case W_UINT: msgpack_pack_uint64(&m->pk, 7); break;
    case W_NEG: msgpack_pack_int64(&m->pk, -7); break;
    case W_BIN:
        msgpack_pack_bin(&m->pk, 2);
        msgpack_pack_bin_body(&m->pk, "t1", 2);
        break;
    case W_ARRAY:
        msgpack_pack_array(&m->pk, 1);
        msgpack_pack_uint8(&m->pk, 1);
        break;
    case W_MAP:
        msgpack_pack_map(&m->pk, 1);
        mp_str(m, "a");
        msgpack_pack_uint8(&m->pk, 1);
        break;
    case W_EXT:
        msgpack_pack_ext(&m->pk, 2, 5);
        msgpack_pack_ext_body(&m->pk, "ab", 2);
        break;
    case W_KINDS: break;
    }
}

/* Per key, the value kinds that must be refused. */
Test(event_codec, decode_rejects_wrong_type_for_each_key)
{
    static const struct {
        const char *key;
        wrong_kind_t bad[W_KINDS];
        size_t n;
    } cases[] = {
        {"v", {W_NIL, W_BOOL, W_FLOAT, W_STR, W_NEG, W_BIN, W_ARRAY, W_MAP, W_EXT}, 9},
        {"tenant_id", {W_NIL, W_BOOL, W_FLOAT, W_UINT, W_NEG, W_BIN, W_ARRAY, W_MAP, W_EXT}, 9},
        {"workflow_id", {W_NIL, W_BOOL, W_FLOAT, W_BIN, W_ARRAY, W_MAP, W_EXT}, 7},
        {"run_id", {W_NIL, W_BOOL, W_FLOAT, W_BIN, W_ARRAY, W_MAP, W_EXT}, 7},
        {"status", {W_NIL, W_BOOL, W_FLOAT, W_UINT, W_NEG, W_BIN, W_ARRAY, W_MAP, W_EXT}, 9},
        {"finished_at", {W_NIL, W_BOOL, W_FLOAT, W_STR, W_BIN, W_ARRAY, W_MAP, W_EXT}, 8},
        /* nil in an optional key means absent (decode_nil_optional_keys_are_absent); a float
         * duration_us must be whole (W_FLOAT is 1.5). */
        {"started_at", {W_BOOL, W_FLOAT, W_STR, W_BIN, W_ARRAY, W_MAP, W_EXT}, 7},
        {"duration_us", {W_BOOL, W_FLOAT, W_STR, W_NEG, W_BIN, W_ARRAY, W_MAP, W_EXT}, 8},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t i = 0; i < cases[c].n; i++) {
            mp_t m;
            mp_init(&m);
            if (strcmp(cases[c].key, "started_at") == 0) {
                begin_event(&m, NULL, 0, 1);
                mp_str(&m, "started_at");
            } else {
                begin_replace(&m, cases[c].key);
            }
            pack_kind(&m, cases[c].bad[i]);
            expect_invalid(&m, cases[c].key);
            mp_free(&m);
        }
    }
}

Test(event_codec, decode_rejects_unsupported_version)
{
    uint64_t bad[] = {0, 2, 1000};
    for (size_t i = 0; i < 3; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "v");
        msgpack_pack_uint64(&m.pk, bad[i]);
        expect_invalid(&m, "v: unsupported version");
        mp_free(&m);
    }
}

Test(event_codec, decode_accepts_version_as_any_int_width)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "v");
    mp_raw(&m, "\xcf\x00\x00\x00\x00\x00\x00\x00\x01", 9); /* uint64 1 */
    expect_valid(&m);
    mp_free(&m);
}

static void check_str_len(const char *key, size_t max)
{
    char *s = malloc(max + 2);
    memset(s, 'a', max + 1);
    s[max + 1] = '\0';
    for (size_t len = max; len <= max + 1; len++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, key);
        mp_strn(&m, s, len);
        if (len == max) {
            expect_valid(&m);
        } else {
            char want[80];
            snprintf(want, sizeof(want), "%s: %zu bytes, more than the %zu allowed", key, len, max);
            expect_invalid(&m, want);
        }
        mp_free(&m);
    }
    mp_t m;
    mp_init(&m);
    begin_replace(&m, key);
    mp_str(&m, "");
    expect_invalid(&m, "empty");
    mp_free(&m);
    free(s);
}

Test(event_codec, decode_accepts_64_byte_tenant_rejects_65)
{
    check_str_len("tenant_id", ET_TENANT_ID_MAX);
}

Test(event_codec, decode_bounds_workflow_and_run_ids)
{
    check_str_len("workflow_id", ET_WORKFLOW_ID_MAX);
    check_str_len("run_id", ET_RUN_ID_MAX);
}

Test(event_codec, decode_stores_max_length_ids_intact)
{
    char tenant[ET_TENANT_ID_MAX + 1];
    memset(tenant, 'x', ET_TENANT_ID_MAX);
    tenant[ET_TENANT_ID_MAX] = '\0';
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "tenant_id");
    mp_str(&m, tenant);
    expect_valid(&m);
    cr_assert_str_eq(events[0].tenant_id, tenant);
    mp_free(&m);
}

Test(event_codec, decode_rejects_huge_strings)
{
    size_t n = 512 * 1024;
    char *big = malloc(n);
    memset(big, 'z', n);
    const char *keys[] = {"tenant_id", "workflow_id", "run_id", "status"};
    for (size_t i = 0; i < 4; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, keys[i]);
        mp_strn(&m, big, n);
        expect_invalid(&m, keys[i]);
        mp_free(&m);
    }
    free(big);
}

Test(event_codec, decode_rejects_status_echo_bounded_and_sanitized)
{
    char s[300];
    memset(s, 'q', sizeof(s));
    s[3] = '\n';
    s[4] = '"';
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "status");
    mp_strn(&m, s, sizeof(s));
    expect_invalid(&m, "status: unknown value \"qqq??qq");
    cr_assert_lt(strlen(reason), 100);
    mp_free(&m);
}

Test(event_codec, decode_rejects_oversized_entry)
{
    size_t n = ET_ENTRY_MAX_BYTES + 1;
    char *buf = calloc(1, n);
    buf[0] = (char)0x80; /* an empty map, then junk: the size check comes first */
    cr_assert_eq(decode_bytes(buf, n), -EINVAL);
    cr_assert(strstr(reason, "more than the") != NULL, "%s", reason);
    free(buf);
}

Test(event_codec, decode_rejects_invalid_utf8)
{
    static const char *const bad[] = {
        "\xff",             /* never valid */
        "a\x80",            /* lone continuation */
        "\xc3",             /* truncated 2-byte sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xe2\x82",         /* truncated 3-byte */
    };
    const char *keys[] = {"tenant_id", "workflow_id", "run_id"};
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            mp_t m;
            char want[64];
            mp_init(&m);
            begin_replace(&m, keys[k]);
            mp_str(&m, bad[i]);
            snprintf(want, sizeof(want), "%s: not valid UTF-8", keys[k]);
            expect_invalid(&m, want);
            mp_free(&m);
        }
    }
}

Test(event_codec, decode_accepts_multibyte_utf8)
{
    const char *s = "t\xc3\xa9-\xe2\x9c\x93-\xf0\x9f\x98\x80"; /* "té-✓-😀" */
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "tenant_id");
    mp_str(&m, s);
    expect_valid(&m);
    cr_assert_str_eq(events[0].tenant_id, s);
    mp_free(&m);
}

Test(event_codec, decode_rejects_embedded_nul)
{
    const char *keys[] = {"tenant_id", "workflow_id", "run_id"};
    for (size_t k = 0; k < 3; k++) {
        mp_t m;
        char want[64];
        mp_init(&m);
        begin_replace(&m, keys[k]);
        mp_strn(&m, "ab\0cd", 5);
        snprintf(want, sizeof(want), "%s: contains a NUL byte", keys[k]);
        expect_invalid(&m, want);
        mp_free(&m);
    }
}

Test(event_codec, decode_turns_int_ids_into_decimal_text)
{
    mp_t m;
    const char *omit[2] = {"workflow_id", "run_id"};
    mp_init(&m);
    begin_event(&m, omit, 2, 2);
    mp_str(&m, "workflow_id");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    mp_str(&m, "run_id");
    msgpack_pack_int64(&m.pk, INT64_MIN);
    expect_valid(&m);
    cr_assert_str_eq(events[0].workflow_id, "18446744073709551615");
    cr_assert_str_eq(events[0].run_id, "-9223372036854775808");
    mp_free(&m);

    mp_init(&m);
    begin_event(&m, omit, 2, 2);
    mp_str(&m, "workflow_id");
    msgpack_pack_int8(&m.pk, -5);
    mp_str(&m, "run_id");
    msgpack_pack_uint8(&m.pk, 0);
    expect_valid(&m);
    cr_assert_str_eq(events[0].workflow_id, "-5");
    cr_assert_str_eq(events[0].run_id, "0");
    mp_free(&m);
}

Test(event_codec, decode_accepts_every_status_and_aliases)
{
    static const struct {
        const char *text;
        et_status_t want;
    } cases[] = {
        {"success", ET_STATUS_SUCCESS},     {"failed", ET_STATUS_FAILED},
        {"cancelled", ET_STATUS_CANCELLED}, {"timeout", ET_STATUS_TIMEOUT},
        {"succeeded", ET_STATUS_SUCCESS},   {"canceled", ET_STATUS_CANCELLED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "status");
        mp_str(&m, cases[i].text);
        expect_valid(&m);
        cr_assert_eq(events[0].status, cases[i].want, "%s", cases[i].text);
        mp_free(&m);
    }
}

Test(event_codec, decode_rejects_unknown_status)
{
    const char *bad[] = {"done", "SUCCESS", "success ", "fail", "cancel"};
    for (size_t i = 0; i < 5; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "status");
        mp_str(&m, bad[i]);
        expect_invalid(&m, "status: unknown value");
        mp_free(&m);
    }
}

Test(event_codec, status_name_and_parse_agree)
{
    for (int s = 0; s < ET_STATUS_COUNT; s++) {
        et_status_t out;
        const char *name = et_status_name((et_status_t)s);
        cr_assert_eq(et_status_parse(name, strlen(name), &out), 0);
        cr_assert_eq(out, (et_status_t)s);
    }
    et_status_t out;
    cr_assert_eq(et_status_parse("succ", 4, &out), -EINVAL);
    cr_assert_eq(et_status_parse("successful", 7, &out), 0, "length, not NUL, bounds it");
    cr_assert_str_eq(et_status_name((et_status_t)9), "unknown");
}

/* ---- durations ---- */

Test(event_codec, decode_rejects_negative_duration)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_int64(&m.pk, -1);
    expect_invalid(&m, "duration_us: negative");
    mp_free(&m);
}

Test(event_codec, decode_bounds_duration_at_30_days)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_uint64(&m.pk, (uint64_t)ET_DURATION_MAX_US);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, ET_DURATION_MAX_US);
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_uint64(&m.pk, (uint64_t)ET_DURATION_MAX_US + 1);
    expect_invalid(&m, "duration_us: ");
    cr_assert(strstr(reason, "30 days") != NULL, "%s", reason);
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    expect_invalid(&m, "duration_us: ");
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_uint64(&m.pk, 0);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 0);
    mp_free(&m);
}

/* Base event without duration_us, with the given started_at. */
static void pack_started_only(mp_t *m, int64_t started)
{
    const char *omit[1] = {"duration_us"};
    begin_event(m, omit, 1, 1);
    mp_str(m, "started_at");
    msgpack_pack_int64(&m->pk, started);
}

Test(event_codec, decode_computes_duration_from_started_at)
{
    mp_t m;
    mp_init(&m);
    pack_started_only(&m, FIN_US - 123456);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 123456);
    cr_assert(events[0].has_started);
    cr_assert_eq(events[0].started_us, FIN_US - 123456);
    mp_free(&m);

    mp_init(&m);
    pack_started_only(&m, FIN_US);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 0);
    mp_free(&m);

    mp_init(&m);
    pack_started_only(&m, FIN_US - ET_DURATION_MAX_US);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, ET_DURATION_MAX_US);
    mp_free(&m);
}

Test(event_codec, decode_rejects_started_after_finished)
{
    mp_t m;
    mp_init(&m);
    pack_started_only(&m, FIN_US + 1);
    expect_invalid(&m, "started_at: after finished_at");
    mp_free(&m);
}

Test(event_codec, decode_rejects_started_more_than_30_days_before)
{
    mp_t m;
    mp_init(&m);
    pack_started_only(&m, FIN_US - ET_DURATION_MAX_US - 1);
    expect_invalid(&m, "started_at: more than 30 days");
    mp_free(&m);

    mp_init(&m);
    pack_started_only(&m, INT64_MIN);
    expect_invalid(&m, "started_at");
    mp_free(&m);
}

Test(event_codec, decode_rejects_wild_started_at_even_with_duration)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, 0);
    expect_invalid(&m, "started_at: not within");
    mp_free(&m);
}

/* ---- timestamps ---- */

static void be_store(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Raw msgpack timestamp ext: 32-bit (fixext4), 64-bit (fixext8) or 96-bit (ext8, len 12). */
static void pack_ts(mp_t *m, int form, int64_t sec, uint32_t nsec)
{
    uint8_t b[16];
    size_t n = 0;
    if (form == 32) {
        b[n++] = 0xd6;
        b[n++] = 0xff;
        be_store(b + n, (uint64_t)sec, 4);
        n += 4;
    } else if (form == 64) {
        b[n++] = 0xd7;
        b[n++] = 0xff;
        be_store(b + n, ((uint64_t)nsec << 34) | ((uint64_t)sec & 0x3ffffffffULL), 8);
        n += 8;
    } else {
        b[n++] = 0xc7;
        b[n++] = 12;
        b[n++] = 0xff;
        be_store(b + n, nsec, 4);
        n += 4;
        be_store(b + n, (uint64_t)sec, 8);
        n += 8;
    }
    mp_raw(m, b, n);
}

static void expect_finished(int form, int64_t sec, uint32_t nsec, int64_t want_us)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "finished_at");
    pack_ts(&m, form, sec, nsec);
    expect_valid(&m);
    cr_assert_eq(events[0].finished_us, want_us, "form %d: got %lld want %lld", form,
                 (long long)events[0].finished_us, (long long)want_us);
    mp_free(&m);
}

Test(event_codec, decode_accepts_timestamp_as_int_us)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_uint64(&m.pk, (uint64_t)FIN_US + 7);
    expect_valid(&m);
    cr_assert_eq(events[0].finished_us, FIN_US + 7);
    mp_free(&m);
}

Test(event_codec, decode_accepts_timestamp_ext32)
{
    int64_t sec = FIN_US / ET_US_PER_SEC;
    expect_finished(32, sec, 0, sec * ET_US_PER_SEC);
}

Test(event_codec, decode_accepts_timestamp_ext64_and_floors_ns)
{
    int64_t sec = FIN_US / ET_US_PER_SEC;
    expect_finished(64, sec, 999999999, sec * ET_US_PER_SEC + 999999);
    expect_finished(64, sec, 1999, sec * ET_US_PER_SEC + 1);
    expect_finished(64, sec, 0, sec * ET_US_PER_SEC);
}

Test(event_codec, decode_accepts_timestamp_ext96)
{
    int64_t sec = FIN_US / ET_US_PER_SEC;
    expect_finished(96, sec, 123456789, sec * ET_US_PER_SEC + 123456);
}

Test(event_codec, decode_accepts_timestamp_ext_for_started_at)
{
    int64_t sec = FIN_US / ET_US_PER_SEC;
    const char *omit[1] = {"duration_us"};
    mp_t m;
    mp_init(&m);
    begin_event(&m, omit, 1, 1);
    mp_str(&m, "started_at");
    pack_ts(&m, 96, sec - 3, 500000999);
    expect_valid(&m);
    cr_assert_eq(events[0].started_us, (sec - 3) * ET_US_PER_SEC + 500000);
    cr_assert_eq(events[0].duration_us, FIN_US - events[0].started_us);
    mp_free(&m);
}

Test(event_codec, decode_rejects_timestamp_nsec_out_of_range)
{
    int64_t sec = FIN_US / ET_US_PER_SEC;
    int forms[] = {64, 96};
    for (size_t i = 0; i < 2; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "finished_at");
        pack_ts(&m, forms[i], sec, 1000000000u);
        expect_invalid(&m, "finished_at: timestamp nanoseconds");
        mp_free(&m);
    }
}

Test(event_codec, decode_rejects_timestamp_extreme_seconds)
{
    int64_t secs[] = {INT64_MAX, INT64_MIN, -1};
    for (size_t i = 0; i < 3; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "finished_at");
        pack_ts(&m, 96, secs[i], 0);
        expect_invalid(&m, "finished_at");
        mp_free(&m);
    }
}

Test(event_codec, decode_rejects_non_timestamp_ext)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "finished_at");
    mp_raw(&m, "\xd6\x01\x00\x00\x00\x01", 6); /* fixext4, type 1 */
    expect_invalid(&m, "finished_at: ext type 1 is not a timestamp");
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "finished_at");
    mp_raw(&m, "\xd5\xff\x00\x01", 4); /* fixext2, type -1: no such timestamp size */
    expect_invalid(&m, "finished_at: timestamp of 2 bytes");
    mp_free(&m);
}

Test(event_codec, decode_rejects_finished_in_the_future)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_int64(&m.pk, NOW_US + ET_FUTURE_SKEW_US);
    expect_valid(&m);
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_int64(&m.pk, NOW_US + ET_FUTURE_SKEW_US + 1);
    expect_invalid(&m, "finished_at: more than 1 hour in the future");
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_uint64(&m.pk, UINT64_MAX);
    expect_invalid(&m, "finished_at: ");
    mp_free(&m);
}

Test(event_codec, decode_rejects_finished_before_2000)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_int64(&m.pk, ET_TIME_MIN_VALID_US);
    expect_valid(&m);
    mp_free(&m);

    int64_t bad[] = {ET_TIME_MIN_VALID_US - 1, 0, -1, INT64_MIN};
    for (size_t i = 0; i < 4; i++) {
        mp_init(&m);
        begin_replace(&m, "finished_at");
        msgpack_pack_int64(&m.pk, bad[i]);
        expect_invalid(&m, "finished_at: before 2000-01-01");
        mp_free(&m);
    }
    mp_init(&m);
    begin_replace(&m, "finished_at");
    pack_ts(&m, 32, 946684799, 0);
    expect_invalid(&m, "finished_at: before 2000-01-01");
    mp_free(&m);
}

Test(event_codec, decode_respects_not_before)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 0);
    int rc = et_event_decode(m.sb.data, m.sb.size, NOW_US, FIN_US, events, 1, &count, reason,
                             sizeof(reason));
    cr_assert_eq(rc, 0, "%s", reason);
    rc = et_event_decode(m.sb.data, m.sb.size, NOW_US, FIN_US + 1, events, 1, &count, reason,
                         sizeof(reason));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_eq(count, 0);
    cr_assert(strstr(reason, "finished_at: older than") != NULL, "%s", reason);
    mp_free(&m);
}

/* ---- map shape ---- */

Test(event_codec, decode_ignores_unknown_keys)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 4);
    mp_str(&m, "attempt");
    msgpack_pack_uint8(&m.pk, 3);
    mp_str(&m, "labels");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "queue");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_nil(&m.pk);
    msgpack_pack_double(&m.pk, 2.5);
    mp_str(&m, "attempt"); /* a repeated unknown key is still just ignored */
    mp_str(&m, "x");
    mp_str(&m, "");
    msgpack_pack_bin(&m.pk, 1);
    msgpack_pack_bin_body(&m.pk, "\xff", 1);
    expect_valid(&m);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(events[0].tenant_id, "t1");
    mp_free(&m);
}

Test(event_codec, decode_rejects_duplicate_known_key)
{
    const char *keys[] = {"v", "tenant_id", "status", "finished_at", "duration_us"};
    for (size_t i = 0; i < 5; i++) {
        mp_t m;
        char want[64];
        mp_init(&m);
        begin_event(&m, NULL, 0, 1);
        pack_base_field(&m, keys[i]);
        snprintf(want, sizeof(want), "%s: duplicate key", keys[i]);
        expect_invalid(&m, want);
        mp_free(&m);
    }
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 2);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, FIN_US - 1);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, FIN_US - 1);
    expect_invalid(&m, "started_at: duplicate key");
    mp_free(&m);
}

Test(event_codec, decode_rejects_non_str_key)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    msgpack_pack_uint8(&m.pk, 1);
    msgpack_pack_uint8(&m.pk, 1);
    expect_invalid(&m, "map key #8 is uint, not str");
    mp_free(&m);

    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_bin(&m.pk, 1);
    msgpack_pack_bin_body(&m.pk, "v", 1);
    msgpack_pack_uint8(&m.pk, 1);
    expect_invalid(&m, "not str");
    mp_free(&m);
}

Test(event_codec, decode_key_match_is_exact)
{
    mp_t m;
    const char *omit[1] = {"status"};
    mp_init(&m);
    begin_event(&m, omit, 1, 2);
    mp_str(&m, "statu");
    mp_str(&m, "success");
    mp_str(&m, "status_");
    mp_str(&m, "success");
    expect_invalid(&m, "status: missing");
    mp_free(&m);
}

/* ---- arrays ---- */

Test(event_codec, decode_accepts_array_of_maps)
{
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    for (int i = 0; i < 3; i++) {
        const char *omit[1] = {"run_id"};
        begin_event(&m, omit, 1, 1);
        mp_str(&m, "run_id");
        msgpack_pack_int(&m.pk, i);
    }
    expect_valid(&m);
    cr_assert_eq(count, 3);
    cr_assert_str_eq(events[2].run_id, "2");
    mp_free(&m);
}

Test(event_codec, decode_rejects_empty_array)
{
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 0);
    expect_invalid(&m, "event: empty array");
    mp_free(&m);
}

Test(event_codec, decode_rejects_bad_element_with_index)
{
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    begin_event(&m, NULL, 0, 0);
    begin_replace(&m, "duration_us");
    msgpack_pack_int(&m.pk, -3);
    begin_event(&m, NULL, 0, 0);
    expect_invalid(&m, "event[1]: duration_us: negative");
    cr_assert_eq(strncmp(reason, "event[1]: ", 10), 0, "%s", reason);
    mp_free(&m);

    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    begin_event(&m, NULL, 0, 0);
    msgpack_pack_uint8(&m.pk, 7);
    expect_invalid(&m, "event[1]: expected a map, got uint");
    mp_free(&m);

    mp_init(&m);
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_array(&m.pk, 1);
    begin_event(&m, NULL, 0, 0);
    expect_invalid(&m, "event[0]: expected a map, got array");
    mp_free(&m);
}

static void pack_n_events(mp_t *m, size_t n)
{
    msgpack_pack_array(&m->pk, n);
    for (size_t i = 0; i < n; i++)
        begin_event(m, NULL, 0, 0);
}

Test(event_codec, decode_bounds_events_per_entry)
{
    mp_t m;
    mp_init(&m);
    pack_n_events(&m, ET_ENTRY_MAX_EVENTS);
    expect_valid(&m);
    cr_assert_eq(count, ET_ENTRY_MAX_EVENTS);
    mp_free(&m);

    mp_init(&m);
    pack_n_events(&m, ET_ENTRY_MAX_EVENTS + 1);
    expect_invalid(&m, "more than the 1000 allowed");
    mp_free(&m);
}

Test(event_codec, decode_never_writes_past_cap)
{
    mp_t m;
    et_event_t small[2];
    mp_init(&m);
    pack_n_events(&m, 3);
    int rc =
        et_event_decode(m.sb.data, m.sb.size, NOW_US, 0, small, 2, &count, reason, sizeof(reason));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_eq(count, 0);
    rc = et_event_decode(m.sb.data, m.sb.size, NOW_US, 0, small, 0, &count, reason, sizeof(reason));
    cr_assert_eq(rc, -EINVAL);
    mp_free(&m);

    mp_init(&m);
    begin_event(&m, NULL, 0, 0);
    rc = et_event_decode(m.sb.data, m.sb.size, NOW_US, 0, small, 0, &count, reason, sizeof(reason));
    cr_assert_eq(rc, -EINVAL);
    mp_free(&m);
}

Test(event_codec, decode_truncates_reason_to_cap)
{
    mp_t m;
    char tiny[8];
    mp_init(&m);
    msgpack_pack_array(&m.pk, 0);
    memset(tiny, 'x', sizeof(tiny));
    int rc =
        et_event_decode(m.sb.data, m.sb.size, NOW_US, 0, events, 1, &count, tiny, sizeof(tiny));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_eq(tiny[7], '\0');
    cr_assert_str_eq(tiny, "event: ");
    rc = et_event_decode(m.sb.data, m.sb.size, NOW_US, 0, events, 1, &count, NULL, 0);
    cr_assert_eq(rc, -EINVAL);
    mp_free(&m);
}

/* ---- not msgpack, wrong shape ---- */

static void expect_bytes_invalid(const void *buf, size_t len, const char *want)
{
    int rc = decode_bytes(buf, len);
    cr_assert_eq(rc, -EINVAL, "expected -EINVAL (%s)", want);
    cr_assert_eq(count, 0);
    cr_assert(strstr(reason, want) != NULL, "reason \"%s\" lacks \"%s\"", reason, want);
}

Test(event_codec, decode_rejects_non_msgpack)
{
    expect_bytes_invalid("", 0, "event: empty value");
    expect_bytes_invalid(NULL, 0, "event: empty value");
    expect_bytes_invalid("\xc1", 1, "reserved byte 0xc1");
    expect_bytes_invalid("{\"v\":1}", 7, "not msgpack");
    expect_bytes_invalid("\x81\xa1v\x01\xc1", 5, "not msgpack");
}

Test(event_codec, decode_rejects_wrong_top_level_type)
{
    expect_bytes_invalid("\xc0", 1, "expected a map or an array of maps, got nil");
    expect_bytes_invalid("\x01", 1, "got uint");
    expect_bytes_invalid("\xa3"
                         "abc",
                         4, "got str");
    expect_bytes_invalid("\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 9, "got float");
    expect_bytes_invalid("\x80", 1, "v: missing");
}

Test(event_codec, decode_rejects_trailing_bytes)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 0);
    msgpack_pack_nil(&m.pk);
    expect_invalid(&m, "not msgpack: 1 trailing byte after");
    mp_free(&m);

    mp_init(&m);
    begin_event(&m, NULL, 0, 0);
    begin_event(&m, NULL, 0, 0);
    expect_invalid(&m, "trailing bytes after");
    mp_free(&m);
}

/* Every strict prefix of a valid entry is an incomplete value. */
static void check_prefixes(const mp_t *m)
{
    for (size_t len = 0; len < m->sb.size; len++) {
        char *copy = malloc(len ? len : 1); /* exact size: ASan catches any overread */
        memcpy(copy, m->sb.data, len);
        int rc = decode_bytes(copy, len);
        cr_assert_eq(rc, -EINVAL, "prefix of %zu/%zu bytes accepted", len, m->sb.size);
        cr_assert_eq(count, 0);
        free(copy);
    }
}

Test(event_codec, decode_rejects_every_prefix)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 2);
    mp_str(&m, "started_at");
    pack_ts(&m, 96, FIN_US / ET_US_PER_SEC - 1, 5);
    mp_str(&m, "extra");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m, "k");
    msgpack_pack_bin(&m.pk, 300);
    char zeros[300] = {0};
    msgpack_pack_bin_body(&m.pk, zeros, 300);
    expect_valid(&m);
    check_prefixes(&m);
    mp_free(&m);

    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    begin_replace(&m, "finished_at");
    pack_ts(&m, 64, FIN_US / ET_US_PER_SEC, 7);
    begin_replace(&m, "finished_at");
    pack_ts(&m, 32, FIN_US / ET_US_PER_SEC, 0);
    expect_valid(&m);
    check_prefixes(&m);
    mp_free(&m);
}

Test(event_codec, decode_rejects_nested_garbage)
{
    /* {"x": [1, 2, <missing 8 more>]} */
    expect_bytes_invalid("\x81\xa1x\x9a\x01\x02", 6, "not msgpack");
    /* map32 claiming 4 billion pairs in a handful of bytes: refused before allocating */
    expect_bytes_invalid("\xdf\xff\xff\xff\xff\xa1v\x01", 8, "declares");
    /* array32 likewise, nested under an unknown key */
    expect_bytes_invalid("\x81\xa1x\xdd\xff\xff\xff\xff\x00", 9, "declares");
    /* str32 longer than the buffer */
    expect_bytes_invalid("\x81\xa1x\xdb\x7f\xff\xff\xff"
                         "ab",
                         10, "truncated");
    /* ext32 longer than the buffer */
    expect_bytes_invalid("\x81\xa1x\xc9\x00\x01\x00\x00\xff", 9, "truncated");
    /* a reserved byte inside an unknown key's array */
    expect_bytes_invalid("\x81\xa1x\x92\x01\xc1", 6, "reserved byte 0xc1 at offset 5");
}

Test(event_codec, decode_rejects_deep_nesting)
{
    size_t depth = 100000;
    size_t n = 3 + depth + 1;
    char *buf = malloc(n);
    memcpy(buf, "\x81\xa1x", 3);
    memset(buf + 3, 0x91, depth); /* [[[[...]]]] */
    buf[n - 1] = 0x01;
    expect_bytes_invalid(buf, n, "nested deeper than");
    free(buf);

    /* moderate nesting under an unknown key is fine */
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "x");
    for (int i = 0; i < 10; i++)
        msgpack_pack_array(&m.pk, 1);
    msgpack_pack_nil(&m.pk);
    expect_valid(&m);
    mp_free(&m);
}

/* ---- encoding ---- */

static void fill_event(et_event_t *ev, int i)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->tenant_id, sizeof(ev->tenant_id), "tenant-%d", i % 3);
    snprintf(ev->workflow_id, sizeof(ev->workflow_id), "wf-\xc3\xa9-%d", i);
    snprintf(ev->run_id, sizeof(ev->run_id), "run-%d", i);
    ev->status = (et_status_t)(i % ET_STATUS_COUNT);
    ev->finished_us = FIN_US - i;
    ev->duration_us = (int64_t)i * 1000 + 1;
    ev->has_started = i % 2 == 0;
    ev->started_us = ev->has_started ? ev->finished_us - ev->duration_us : 0;
}

static void assert_same_event(const et_event_t *a, const et_event_t *b)
{
    cr_assert_str_eq(a->tenant_id, b->tenant_id);
    cr_assert_str_eq(a->workflow_id, b->workflow_id);
    cr_assert_str_eq(a->run_id, b->run_id);
    cr_assert_eq(a->status, b->status);
    cr_assert_eq(a->finished_us, b->finished_us);
    cr_assert_eq(a->has_started, b->has_started);
    if (a->has_started)
        cr_assert_eq(a->started_us, b->started_us);
    cr_assert_eq(a->duration_us, b->duration_us);
}

Test(event_codec, encode_then_decode_round_trips)
{
    et_event_t in[50];
    for (int i = 0; i < 50; i++)
        fill_event(&in[i], i);

    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(et_event_encode(in, 1, false, &buf, &len), 0);
    cr_assert_eq((uint8_t)buf[0] & 0xf0, 0x80, "a single event is a map");
    cr_assert_eq(decode_bytes(buf, len), 0, "%s", reason);
    cr_assert_eq(count, 1);
    assert_same_event(&in[0], &events[0]);
    free(buf);

    cr_assert_eq(et_event_encode(in, 1, true, &buf, &len), 0);
    cr_assert_eq((uint8_t)buf[0], 0x91, "as_array forces an array");
    cr_assert_eq(decode_bytes(buf, len), 0, "%s", reason);
    cr_assert_eq(count, 1);
    free(buf);

    cr_assert_eq(et_event_encode(in, 50, false, &buf, &len), 0);
    cr_assert_eq(decode_bytes(buf, len), 0, "%s", reason);
    cr_assert_eq(count, 50);
    for (int i = 0; i < 50; i++)
        assert_same_event(&in[i], &events[i]);
    free(buf);
}

Test(event_codec, encode_rejects_bad_events)
{
    et_event_t ev;
    char *buf = (char *)1;
    size_t len = 0;

    fill_event(&ev, 1);
    cr_assert_eq(et_event_encode(&ev, 0, false, &buf, &len), -EINVAL);

    fill_event(&ev, 1);
    ev.tenant_id[0] = '\0';
    cr_assert_eq(et_event_encode(&ev, 1, false, &buf, &len), -EINVAL);

    fill_event(&ev, 1);
    memset(ev.run_id, 'r', sizeof(ev.run_id)); /* no terminating NUL */
    cr_assert_eq(et_event_encode(&ev, 1, false, &buf, &len), -EINVAL);

    fill_event(&ev, 1);
    ev.duration_us = -1;
    cr_assert_eq(et_event_encode(&ev, 1, false, &buf, &len), -EINVAL);

    fill_event(&ev, 1);
    ev.status = (et_status_t)7;
    cr_assert_eq(et_event_encode(&ev, 1, false, &buf, &len), -EINVAL);

    cr_assert_eq(et_event_encode(events, ET_ENTRY_MAX_EVENTS + 1, true, &buf, &len), -EINVAL);
}

/* ---- randomized corruption ---- */

static uint64_t rng_state = 0x5eed5eedULL;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A decode that succeeds must still hand back only well-formed events. */
static void check_sane(int rc)
{
    cr_assert(rc == 0 || rc == -EINVAL, "decode returned %d", rc);
    if (rc != 0) {
        cr_assert_eq(count, 0);
        cr_assert(strlen(reason) > 0 && strchr(reason, '\n') == NULL);
        return;
    }
    cr_assert(count >= 1 && count <= ET_ENTRY_MAX_EVENTS);
    for (size_t i = 0; i < count; i++) {
        size_t t = strnlen(events[i].tenant_id, sizeof(events[i].tenant_id));
        size_t w = strnlen(events[i].workflow_id, sizeof(events[i].workflow_id));
        size_t r = strnlen(events[i].run_id, sizeof(events[i].run_id));
        cr_assert(t >= 1 && t <= ET_TENANT_ID_MAX);
        cr_assert(w >= 1 && w <= ET_WORKFLOW_ID_MAX);
        cr_assert(r >= 1 && r <= ET_RUN_ID_MAX);
        cr_assert((unsigned)events[i].status < ET_STATUS_COUNT);
        cr_assert(events[i].duration_us >= 0 && events[i].duration_us <= ET_DURATION_MAX_US);
        cr_assert(events[i].finished_us >= ET_TIME_MIN_VALID_US);
        cr_assert(events[i].finished_us <= NOW_US + ET_FUTURE_SKEW_US);
    }
}

Test(event_codec, decode_survives_random_corruption, .timeout = 100)
{
    et_event_t in[4];
    for (int i = 0; i < 4; i++)
        fill_event(&in[i], i);
    char *enc[3];
    size_t enc_len[3];
    cr_assert_eq(et_event_encode(in, 1, false, &enc[0], &enc_len[0]), 0);
    cr_assert_eq(et_event_encode(in, 4, true, &enc[1], &enc_len[1]), 0);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "started_at");
    pack_ts(&m, 64, FIN_US / ET_US_PER_SEC - 1, 42);
    begin_replace(&m, "finished_at");
    pack_ts(&m, 96, FIN_US / ET_US_PER_SEC, 43);
    enc_len[2] = m.sb.size;
    enc[2] = malloc(m.sb.size);
    memcpy(enc[2], m.sb.data, m.sb.size);
    mp_free(&m);

    for (int iter = 0; iter < 60000; iter++) {
        size_t which = rnd() % 3;
        size_t len = enc_len[which];
        char *buf = malloc(len);
        memcpy(buf, enc[which], len);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = rnd() % len;
            if (rnd() % 2)
                buf[at] = (char)(rnd() & 0xff);
            else
                buf[at] ^= (char)(1u << (rnd() % 8));
        }
        size_t use = len;
        if (rnd() % 8 == 0)
            use = rnd() % len; /* sometimes truncate as well */
        check_sane(decode_bytes(buf, use));
        free(buf);
    }
    for (int i = 0; i < 3; i++)
        free(enc[i]);
}

Test(event_codec, decode_survives_random_bytes)
{
    uint8_t buf[64];
    for (int iter = 0; iter < 50000; iter++) {
        size_t len = 1 + rnd() % sizeof(buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (iter % 2)
            buf[0] = (uint8_t)(0x80 | (buf[0] & 0x1f)); /* start as a map or array */
        check_sane(decode_bytes(buf, len));
    }
}

/* ---- what publishers' libraries send ---- */

/* @msgpack/msgpack writes `started_at: undefined` as nil, Python's msgpack None as nil. */
Test(event_codec, decode_nil_optional_keys_are_absent)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "started_at");
    msgpack_pack_nil(&m.pk);
    expect_valid(&m);
    cr_assert(!events[0].has_started);
    cr_assert_eq(events[0].duration_us, 1500);
    mp_free(&m);

    /* duration_us nil, started_at given: the duration comes from started_at. */
    const char *omit[1] = {"duration_us"};
    mp_init(&m);
    begin_event(&m, omit, 1, 2);
    mp_str(&m, "duration_us");
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, FIN_US - 2000);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 2000);
    mp_free(&m);

    /* Both nil: neither is there. */
    mp_init(&m);
    begin_event(&m, omit, 1, 2);
    mp_str(&m, "duration_us");
    msgpack_pack_nil(&m.pk);
    mp_str(&m, "started_at");
    msgpack_pack_nil(&m.pk);
    expect_invalid(&m, "duration_us: missing (give duration_us or started_at)");
    mp_free(&m);

    /* A required key stays required, nil or not. */
    mp_init(&m);
    begin_replace(&m, "finished_at");
    msgpack_pack_nil(&m.pk);
    expect_invalid(&m, "finished_at: expected int (microseconds) or timestamp, got nil");
    mp_free(&m);
}

Test(event_codec, decode_says_when_finished_at_is_in_seconds_or_milliseconds)
{
    static const struct {
        int64_t value;
        const char *want;
    } cases[] = {
        {1764547200LL, "looks like seconds since the epoch: send microseconds"},
        {1764547200123LL, "looks like milliseconds since the epoch: send microseconds"},
        {5, "finished_at: before 2000-01-01"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mp_t m;
        mp_init(&m);
        begin_replace(&m, "finished_at");
        msgpack_pack_int64(&m.pk, cases[i].value);
        expect_invalid(&m, cases[i].want);
        mp_free(&m);
    }
}

/* JavaScript's numbers: a whole float is a duration, a fraction is refused with a hint. */
Test(event_codec, decode_takes_whole_float_durations_and_refuses_fractions)
{
    mp_t m;
    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_double(&m.pk, 2500000.0);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 2500000);
    mp_free(&m);

    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_float(&m.pk, 64.0f);
    expect_valid(&m);
    cr_assert_eq(events[0].duration_us, 64);
    mp_free(&m);

    static const double bad[] = {1234.5, -1.0, 3e12, 1e300};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_init(&m);
        begin_replace(&m, "duration_us");
        msgpack_pack_double(&m.pk, bad[i]);
        expect_invalid(&m, "is not a whole number of microseconds up to 30 days (round it");
        mp_free(&m);
    }
    mp_init(&m);
    begin_replace(&m, "duration_us");
    msgpack_pack_double(&m.pk, __builtin_nan(""));
    expect_invalid(&m, "duration_us:");
    mp_free(&m);
}

/* The base event (finished FIN_US, duration 1500 µs) with enqueued_at, and started_at when
 * started is not 0. */
static void pack_queued(mp_t *m, int64_t enqueued, int64_t started)
{
    begin_event(m, NULL, 0, started ? 2 : 1);
    if (started) {
        mp_str(m, "started_at");
        msgpack_pack_int64(&m->pk, started);
    }
    mp_str(m, "enqueued_at");
    msgpack_pack_int64(&m->pk, enqueued);
}

Test(event_codec, decode_reads_enqueued_at_as_the_wait_before_started_at)
{
    mp_t m;
    mp_init(&m);
    pack_queued(&m, FIN_US - 1500 - 40 * ET_US_PER_SEC, FIN_US - 1500);
    expect_valid(&m);
    cr_assert(events[0].has_enqueued);
    cr_assert_eq(events[0].enqueued_us, FIN_US - 1500 - 40 * ET_US_PER_SEC);
    cr_assert_eq(events[0].queue_wait_us, 40 * ET_US_PER_SEC);
    mp_free(&m);
}

Test(event_codec, decode_measures_the_wait_to_finished_minus_duration_without_started_at)
{
    mp_t m;
    mp_init(&m);
    pack_queued(&m, FIN_US - 1500 - 7, 0);
    expect_valid(&m);
    cr_assert(events[0].has_enqueued);
    cr_assert_eq(events[0].queue_wait_us, 7);
    mp_free(&m);
}

Test(event_codec, decode_accepts_a_zero_wait_and_a_timestamp_ext)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "enqueued_at");
    /* timestamp 32: whole seconds, FIN_US is whole seconds; duration 0 below */
    uint8_t ext[6] = {0xd6, 0xff};
    uint32_t sec = (uint32_t)(FIN_US / ET_US_PER_SEC);
    for (int i = 0; i < 4; i++)
        ext[2 + i] = (uint8_t)(sec >> (24 - 8 * i));
    mp_raw(&m, ext, sizeof ext);
    int rc = decode_mp(&m);
    cr_assert_eq(rc, -EINVAL, "FIN_US is after the start FIN_US - 1500");
    cr_assert(strstr(reason, "enqueued_at: after the start") != NULL, "%s", reason);
    mp_free(&m);

    mp_init(&m);
    begin_event(&m, NULL, 0, 2);
    mp_str(&m, "started_at");
    msgpack_pack_int64(&m.pk, FIN_US);
    mp_str(&m, "enqueued_at");
    mp_raw(&m, ext, sizeof ext);
    expect_valid(&m);
    cr_assert_eq(events[0].queue_wait_us, 0);
    mp_free(&m);
}

Test(event_codec, decode_rejects_enqueued_after_started_or_finished)
{
    mp_t m;
    mp_init(&m);
    pack_queued(&m, FIN_US - 1000, FIN_US - 1500);
    expect_invalid(&m, "enqueued_at: after started_at (must be <= started_at <= finished_at)");
    mp_free(&m);
    mp_init(&m);
    pack_queued(&m, FIN_US + 1, FIN_US - 1500);
    expect_invalid(&m, "enqueued_at: after finished_at");
    mp_free(&m);
}

Test(event_codec, decode_rejects_waits_longer_than_30_days_and_wrong_types)
{
    mp_t m;
    mp_init(&m);
    pack_queued(&m, FIN_US - 1500 - ET_DURATION_MAX_US - 1, 0);
    expect_invalid(&m, "enqueued_at: a queue wait of more than 30 days");
    mp_free(&m);
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "enqueued_at");
    mp_str(&m, "yesterday");
    expect_invalid(&m, "enqueued_at: expected");
    mp_free(&m);
    mp_init(&m);
    pack_queued(&m, (FIN_US - 1500 - 1) / ET_US_PER_SEC, 0);
    expect_invalid(&m, "enqueued_at: a queue wait of more than 30 days");
    mp_free(&m);
}

Test(event_codec, decode_nil_enqueued_at_is_absent)
{
    mp_t m;
    mp_init(&m);
    begin_event(&m, NULL, 0, 1);
    mp_str(&m, "enqueued_at");
    msgpack_pack_nil(&m.pk);
    expect_valid(&m);
    cr_assert_not(events[0].has_enqueued);
    mp_free(&m);
}

Test(event_codec, encode_round_trips_enqueued_at)
{
    et_event_t in = {.tenant_id = "t",
                     .workflow_id = "w",
                     .run_id = "r",
                     .status = ET_STATUS_FAILED,
                     .finished_us = FIN_US,
                     .duration_us = 1000,
                     .has_enqueued = true,
                     .enqueued_us = FIN_US - 1000 - 250};
    char *buf;
    size_t len;
    cr_assert_eq(et_event_encode(&in, 1, false, &buf, &len), 0);
    cr_assert_eq(decode_bytes(buf, len), 0, "%s", reason);
    cr_assert(events[0].has_enqueued);
    cr_assert_eq(events[0].enqueued_us, FIN_US - 1000 - 250);
    cr_assert_eq(events[0].queue_wait_us, 250);
    free(buf);
}
