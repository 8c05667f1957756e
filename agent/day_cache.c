/* day_cache — see day_cache.h. */
#include "day_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "et_hash.h"
#include "timeutil.h"

int day_cache_init(day_cache_t *c, size_t max_entries)
{
    memset(c, 0, sizeof *c);
    c->max_entries = max_entries;
    if (max_entries == 0)
        return 0;
    c->entries = calloc(max_entries, sizeof *c->entries);
    return c->entries ? 0 : -ENOMEM;
}

static void drop(day_cache_t *c, day_cache_entry_t *e)
{
    free(e->value.bins);
    memset(e, 0, sizeof *e);
    c->stats.dropped++;
}

static void drop_all(day_cache_t *c)
{
    for (size_t i = 0; i < c->max_entries; i++)
        if (c->entries[i].used)
            drop(c, &c->entries[i]);
}

void day_cache_free(day_cache_t *c)
{
    if (c->entries)
        drop_all(c);
    free(c->entries);
    c->entries = NULL;
}

bool day_cache_enabled(const day_cache_t *c)
{
    return c->max_entries > 0;
}

void day_cache_set_listening(day_cache_t *c, bool listening)
{
    if (c->listening == listening)
        return;
    c->listening = listening;
    c->generation++;
    if (c->entries)
        drop_all(c);
}

uint64_t day_cache_generation(const day_cache_t *c)
{
    return c->generation;
}

static uint32_t key_hash(const day_cache_key_t *k)
{
    uint32_t h = et_fnv1a32(ET_FNV32_INIT, k->tenant, strlen(k->tenant) + 1);
    h = et_fnv1a32(h, k->workflow, strlen(k->workflow) + 1);
    h = et_fnv1a32(h, &k->status_mask, sizeof k->status_mask);
    h = et_fnv1a32(h, &k->from_us, sizeof k->from_us);
    return et_fnv1a32(h, &k->to_us, sizeof k->to_us);
}

static bool key_equal(const day_cache_key_t *a, const day_cache_key_t *b)
{
    return a->status_mask == b->status_mask && a->from_us == b->from_us && a->to_us == b->to_us &&
           strcmp(a->tenant, b->tenant) == 0 && strcmp(a->workflow, b->workflow) == 0;
}

/* A linear scan: a few thousand entries at most, against a request's milliseconds. */
static day_cache_entry_t *lookup(day_cache_t *c, const day_cache_key_t *key, uint32_t h)
{
    for (size_t i = 0; i < c->max_entries; i++) {
        day_cache_entry_t *e = &c->entries[i];
        if (e->used && e->hash == h && key_equal(&e->key, key))
            return e;
    }
    return NULL;
}

const day_cache_value_t *day_cache_find(day_cache_t *c, const day_cache_key_t *key)
{
    if (!c->listening || c->max_entries == 0)
        return NULL;
    day_cache_entry_t *e = lookup(c, key, key_hash(key));
    if (e == NULL) {
        c->stats.misses++;
        return NULL;
    }
    c->stats.hits++;
    e->last_used = ++c->tick;
    return &e->value;
}

int day_cache_put(day_cache_t *c, const day_cache_key_t *key, uint64_t runs, uint64_t failed,
                  int64_t sum_us, int64_t min_us, int64_t max_us, const et_hist_t *bins,
                  uint64_t generation)
{
    if (!c->listening || c->max_entries == 0 || generation != c->generation)
        return 0;
    size_t size = et_hist_encoded_size(bins);
    uint8_t *encoded = malloc(size ? size : 1);
    if (encoded == NULL)
        return -ENOMEM;
    long n = et_hist_encode(bins, encoded, size);
    if (n < 0) {
        free(encoded);
        return (int)n;
    }
    uint32_t h = key_hash(key);
    day_cache_entry_t *slot = lookup(c, key, h);
    if (slot == NULL) {
        /* A free slot, else the least recently used one. */
        for (size_t i = 0; i < c->max_entries; i++) {
            day_cache_entry_t *e = &c->entries[i];
            if (!e->used) {
                slot = e;
                break;
            }
            if (slot == NULL || e->last_used < slot->last_used)
                slot = e;
        }
    }
    if (slot->used)
        drop(c, slot);
    slot->key = *key;
    slot->hash = h;
    slot->value = (day_cache_value_t){runs, failed, sum_us, min_us, max_us, encoded, (size_t)n};
    slot->last_used = ++c->tick;
    slot->used = true;
    c->stats.stores++;
    return 0;
}

void day_cache_notified(day_cache_t *c, const char *payload)
{
    c->generation++;
    if (c->entries == NULL)
        return;
    /* Exactly one space after each number: a tenant id may itself begin with one. */
    char *p;
    long long first = strtoll(payload, &p, 10);
    long long last = *p == ' ' ? strtoll(p + 1, &p, 10) : 0;
    if (*p != ' ' || p[1] == '\0' || first > last || last > INT64_MAX - ET_US_PER_DAY) {
        drop_all(c);
        return;
    }
    const char *tenant = p + 1;
    int64_t end = (int64_t)last + ET_US_PER_DAY;
    for (size_t i = 0; i < c->max_entries; i++) {
        day_cache_entry_t *e = &c->entries[i];
        if (e->used && e->key.from_us < end && (int64_t)first < e->key.to_us &&
            strcmp(e->key.tenant, tenant) == 0)
            drop(c, e);
    }
}
