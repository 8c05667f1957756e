/* rollup_delta — see rollup_delta.h. */
#include "rollup_delta.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_hash.h"

void rollup_set_init(rollup_set_t *set, size_t limit)
{
    memset(set, 0, sizeof *set);
    set->limit = limit;
    for (int r = 0; r < ET_RES_COUNT; r++)
        set->not_before_us[r] = INT64_MIN;
}

static void set_windows(rollup_set_t *set, int64_t now_us)
{
    for (int r = 0; r < ET_RES_COUNT; r++)
        set->not_before_us[r] = et_retention_start(now_us, set->retain_days[r]);
}

void rollup_set_retain(rollup_set_t *set, int minute_days, int hour_days, int64_t now_us)
{
    set->retain_days[ET_RES_MINUTE] = minute_days;
    set->retain_days[ET_RES_HOUR] = hour_days;
    set->retain_days[ET_RES_DAY] = 0;
    set_windows(set, now_us);
}

/* --- names ------------------------------------------------------------------------------- */

#define NAMES_BLOCK_BYTES 65536

struct rollup_names_block {
    rollup_names_block_t *next;
    size_t used;
    char text[NAMES_BLOCK_BYTES];
};

/* Empties the names; keeps the first block. */
static void names_reset(rollup_set_t *set)
{
    if (set->names == NULL)
        return;
    for (rollup_names_block_t *b = set->names->next, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    set->names->next = NULL;
    set->names->used = 0;
    set->names_tail = set->names;
    set->last_tenant = set->last_workflow = NULL;
}

/* A copy of s in the names (the previous one when it is the same text), or NULL. */
static const char *name_copy(rollup_set_t *set, const char *s, const char **last)
{
    if (s[0] == '\0')
        return ""; /* the tenant-wide rollup's workflow */
    if (*last && strcmp(*last, s) == 0)
        return *last;
    size_t n = strlen(s) + 1;
    rollup_names_block_t *b = set->names_tail;
    if (b == NULL || b->used + n > NAMES_BLOCK_BYTES) {
        rollup_names_block_t *fresh = malloc(sizeof *fresh);
        if (fresh == NULL)
            return NULL;
        fresh->next = NULL;
        fresh->used = 0;
        if (b)
            b->next = fresh;
        else
            set->names = fresh;
        set->names_tail = b = fresh;
    }
    char *copy = memcpy(b->text + b->used, s, n);
    b->used += n;
    *last = copy;
    return copy;
}

void rollup_set_free(rollup_set_t *set)
{
    names_reset(set);
    free(set->names);
    for (size_t i = 0; i < set->cap; i++) {
        et_hist_free(&set->deltas[i].hist);
        et_hist_free(&set->deltas[i].queue_hist);
    }
    free(set->deltas);
    free(set->index);
    memset(set, 0, sizeof *set);
}

#define KEPT_BINS_MAX 16

void rollup_set_reset(rollup_set_t *set)
{
    /* Kept for the next batch, unless large: a slot that once held a busy key's bins would
     * otherwise keep them for good, and thousands of slots add up. */
    for (size_t i = 0; i < set->len; i++) {
        if (set->deltas[i].hist.cap > KEPT_BINS_MAX)
            et_hist_free(&set->deltas[i].hist);
        else
            et_hist_reset(&set->deltas[i].hist);
        if (set->deltas[i].queue_hist.cap > KEPT_BINS_MAX)
            et_hist_free(&set->deltas[i].queue_hist);
        else
            et_hist_reset(&set->deltas[i].queue_hist);
    }
    set->len = 0;
    names_reset(set);
    if (set->index)
        memset(set->index, 0, set->index_cap * sizeof *set->index);
    if (set->retain_days[ET_RES_MINUTE] > 0 || set->retain_days[ET_RES_HOUR] > 0)
        set_windows(set, et_now_us());
}

/* FNV-1a over the key fields; 0xff (never in UTF-8) keeps "ab"+"c" apart from "a"+"bc". */
static uint32_t key_hash(et_resolution_t res, const char *tenant, const char *workflow,
                         int64_t bucket, et_status_t status)
{
    static const uint8_t separator = 0xff;
    uint32_t h = et_fnv1a32(ET_FNV32_INIT, tenant, strlen(tenant));
    h = et_fnv1a32(h, &separator, 1);
    h = et_fnv1a32(h, workflow, strlen(workflow));
    uint64_t rest = (uint64_t)bucket ^ ((uint64_t)res << 56) ^ ((uint64_t)status << 60);
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(rest >> (8 * i));
    return et_fnv1a32(h, bytes, sizeof bytes);
}

static int rebuild_index(rollup_set_t *set, size_t index_cap)
{
    uint32_t *index = calloc(index_cap, sizeof *index);
    if (index == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < set->len; i++) {
        size_t slot = set->deltas[i].hash & (index_cap - 1);
        while (index[slot])
            slot = (slot + 1) & (index_cap - 1);
        index[slot] = (uint32_t)(i + 1);
    }
    free(set->index);
    set->index = index;
    set->index_cap = index_cap;
    return 0;
}

/* Index slot of a key: where it is, or the empty slot where it would go. */
static size_t find_slot(const rollup_set_t *set, uint32_t h, et_resolution_t res,
                        const char *tenant, const char *workflow, int64_t bucket,
                        et_status_t status)
{
    size_t slot = h & (set->index_cap - 1);
    while (set->index[slot]) {
        const rollup_delta_t *d = &set->deltas[set->index[slot] - 1];
        if (d->hash == h && d->resolution == res && d->bucket_us == bucket && d->status == status &&
            strcmp(d->tenant_id, tenant) == 0 && strcmp(d->workflow_id, workflow) == 0)
            return slot;
        slot = (slot + 1) & (set->index_cap - 1);
    }
    return slot;
}

rollup_delta_t *rollup_set_find(rollup_set_t *set, et_resolution_t res, const char *tenant_id,
                                const char *workflow_id, int64_t bucket_us, et_status_t status)
{
    if (set->index == NULL)
        return NULL;
    uint32_t h = key_hash(res, tenant_id, workflow_id, bucket_us, status);
    size_t slot = find_slot(set, h, res, tenant_id, workflow_id, bucket_us, status);
    return set->index[slot] ? &set->deltas[set->index[slot] - 1] : NULL;
}

/* Finds or creates the delta of one key. */
static int lookup(rollup_set_t *set, et_resolution_t res, const char *tenant, const char *workflow,
                  int64_t bucket, et_status_t status, rollup_delta_t **out)
{
    if (set->index_cap < 2 * (set->len + 1)) {
        int rc = rebuild_index(set, set->index_cap ? set->index_cap * 2 : 256);
        if (rc < 0)
            return rc;
    }
    uint32_t h = key_hash(res, tenant, workflow, bucket, status);
    size_t slot = find_slot(set, h, res, tenant, workflow, bucket, status);
    if (set->index[slot]) {
        *out = &set->deltas[set->index[slot] - 1];
        return 0;
    }
    if (set->len == set->limit)
        return -ENOBUFS;
    if (set->len == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        rollup_delta_t *deltas = realloc(set->deltas, cap * sizeof *deltas);
        if (deltas == NULL)
            return -ENOMEM;
        for (size_t i = set->cap; i < cap; i++) {
            et_hist_init(&deltas[i].hist);
            et_hist_init(&deltas[i].queue_hist);
        }
        set->deltas = deltas;
        set->cap = cap;
    }
    rollup_delta_t *d = &set->deltas[set->len];
    d->resolution = res;
    d->tenant_id = name_copy(set, tenant, &set->last_tenant);
    d->workflow_id = name_copy(set, workflow, &set->last_workflow);
    if (d->tenant_id == NULL || d->workflow_id == NULL)
        return -ENOMEM;
    d->bucket_us = bucket;
    d->status = status;
    d->runs = 0;
    d->stored_runs = 0;
    d->sum_us = 0;
    d->min_us = INT64_MAX;
    d->max_us = INT64_MIN;
    d->queue_runs = 0;
    d->queue_sum_us = 0;
    d->queue_min_us = INT64_MAX;
    d->queue_max_us = INT64_MIN;
    d->hash = h;
    set->index[slot] = (uint32_t)(++set->len);
    *out = d;
    return 0;
}

int rollup_set_add(rollup_set_t *set, const char *tenant_id, const char *workflow_id,
                   et_status_t status, int64_t finished_us, int64_t duration_us,
                   int64_t queue_wait_us)
{
    uint32_t slot = et_sketch_slot((uint64_t)duration_us);
    bool queued = queue_wait_us >= 0;
    uint32_t queue_slot = queued ? et_sketch_slot((uint64_t)queue_wait_us) : 0;
    for (int r = 0; r < ET_RES_COUNT; r++) {
        /* Windows start on a UTC midnight, so comparing the run's time or its bucket's
         * start gives the same answer at every resolution. */
        if (finished_us < set->not_before_us[r])
            continue;
        int64_t bucket = et_time_floor(finished_us, (et_resolution_t)r);
        for (int wide = 0; wide < 2; wide++) {
            rollup_delta_t *d;
            int rc = lookup(set, (et_resolution_t)r, tenant_id, wide ? "" : workflow_id, bucket,
                            status, &d);
            if (rc == 0)
                rc = et_hist_add(&d->hist, slot, 1);
            if (rc < 0)
                return rc;
            d->runs++;
            d->sum_us += duration_us;
            if (duration_us < d->min_us)
                d->min_us = duration_us;
            if (duration_us > d->max_us)
                d->max_us = duration_us;
            if (!queued)
                continue;
            if ((rc = et_hist_add(&d->queue_hist, queue_slot, 1)) < 0)
                return rc;
            d->queue_runs++;
            d->queue_sum_us += queue_wait_us;
            if (queue_wait_us < d->queue_min_us)
                d->queue_min_us = queue_wait_us;
            if (queue_wait_us > d->queue_max_us)
                d->queue_max_us = queue_wait_us;
        }
    }
    return 0;
}

static int compare_deltas(const void *pa, const void *pb)
{
    const rollup_delta_t *a = pa, *b = pb;
    if (a->resolution != b->resolution)
        return a->resolution < b->resolution ? -1 : 1;
    int c = strcmp(a->tenant_id, b->tenant_id);
    if (c)
        return c;
    c = strcmp(a->workflow_id, b->workflow_id);
    if (c)
        return c;
    if (a->bucket_us != b->bucket_us)
        return a->bucket_us < b->bucket_us ? -1 : 1;
    return (a->status > b->status) - (a->status < b->status);
}

void rollup_set_sort(rollup_set_t *set)
{
    /* An empty set may have no array yet, and qsort wants a valid pointer even for 0. */
    if (set->len > 1)
        qsort(set->deltas, set->len, sizeof *set->deltas, compare_deltas);
    if (set->index)
        memset(set->index, 0, set->index_cap * sizeof *set->index);
    /* Positions changed: the index is rebuilt on the next add (after a reset). */
    free(set->index);
    set->index = NULL;
    set->index_cap = 0;
}

int rollup_delta_copy_key(const rollup_delta_t *d, bool first, copy_buf_t *out)
{
    int rc = copy_buf_text(out, d->tenant_id, first);
    if (rc == 0)
        rc = copy_buf_text(out, d->workflow_id, 0);
    if (rc == 0)
        rc = copy_buf_time(out, d->bucket_us, 0);
    if (rc == 0)
        rc = copy_buf_int(out, d->status, 0);
    return rc;
}

int rollup_delta_copy_row_with(const rollup_delta_t *d, const et_hist_t *stored,
                               const et_hist_t *stored_queue, bool with_resolution, copy_buf_t *out)
{
    static const et_hist_t none;
    uint8_t encoded[ET_HIST_ENCODED_MAX];
    size_t mark = out->len;
    int rc = with_resolution ? copy_buf_int(out, d->resolution, 1) : 0;
    if (rc == 0)
        rc = rollup_delta_copy_key(d, !with_resolution, out);
    if (rc == 0)
        rc = copy_buf_int(out, (int64_t)d->runs, 0);
    if (rc == 0)
        rc = copy_buf_int(out, d->sum_us, 0);
    if (rc == 0)
        rc = copy_buf_int(out, d->min_us, 0);
    if (rc == 0)
        rc = copy_buf_int(out, d->max_us, 0);
    long n = rc == 0
                 ? et_hist_encode_sum(&d->hist, stored ? stored : &none, encoded, sizeof encoded)
                 : 0;
    if (n < 0)
        rc = (int)n;
    if (rc == 0)
        rc = copy_buf_bytea(out, encoded, (size_t)n, 0);
    bool queued = d->queue_runs > 0;
    if (rc == 0)
        rc = copy_buf_int(out, (int64_t)d->queue_runs, 0);
    if (rc == 0)
        rc = copy_buf_int(out, d->queue_sum_us, 0);
    if (rc == 0)
        rc = copy_buf_int(out, queued ? d->queue_min_us : 0, 0);
    if (rc == 0)
        rc = copy_buf_int(out, queued ? d->queue_max_us : 0, 0);
    n = rc == 0 ? et_hist_encode_sum(&d->queue_hist, stored_queue ? stored_queue : &none, encoded,
                                     sizeof encoded)
                : 0;
    if (n < 0)
        rc = (int)n;
    if (rc == 0)
        rc = copy_buf_bytea(out, encoded, (size_t)n, 0);
    if (rc == 0)
        rc = copy_buf_end_row(out);
    if (rc < 0)
        copy_buf_truncate(out, mark);
    return rc;
}

int rollup_delta_copy_row(const rollup_delta_t *d, bool with_resolution, copy_buf_t *out)
{
    return rollup_delta_copy_row_with(d, NULL, NULL, with_resolution, out);
}
