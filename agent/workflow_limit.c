/* workflow_limit — see workflow_limit.h. */
#include "workflow_limit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "et_hash.h"

/* --- the set --------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *p, size_t len)
{
    return et_fnv1a32(ET_FNV32_INIT, p, len);
}

void wlimit_set_init(wlimit_set_t *s)
{
    memset(s, 0, sizeof *s);
}

void wlimit_set_clear(wlimit_set_t *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        free(s->slots[i].data);
        s->slots[i].data = NULL;
    }
    s->len = 0;
}

void wlimit_set_free(wlimit_set_t *s)
{
    wlimit_set_clear(s);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static size_t find_slot(const wlimit_set_t *s, const char *data, size_t len, uint32_t h)
{
    size_t i = h & (s->cap - 1);
    while (s->slots[i].data) {
        const wlimit_key_t *k = &s->slots[i];
        if (k->hash == h && k->len == len && memcmp(k->data, data, len) == 0)
            return i;
        i = (i + 1) & (s->cap - 1);
    }
    return i;
}

wlimit_key_t *wlimit_set_find(const wlimit_set_t *s, const char *data, size_t len)
{
    if (s->len == 0)
        return NULL;
    size_t i = find_slot(s, data, len, hash_bytes(data, len));
    return s->slots[i].data ? &s->slots[i] : NULL;
}

/* Doubles the slot array (keys move, their strings do not). */
static int grow(wlimit_set_t *s)
{
    size_t cap = s->cap ? 2 * s->cap : 16;
    wlimit_key_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slots[i].data)
            continue;
        size_t j = s->slots[i].hash & (cap - 1);
        while (slots[j].data)
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

int wlimit_set_add(wlimit_set_t *s, const char *data, size_t len, wlimit_key_t **out)
{
    if (2 * (s->len + 1) > s->cap) { /* load factor at most 1/2 */
        int rc = grow(s);
        if (rc < 0)
            return rc;
    }
    uint32_t h = hash_bytes(data, len);
    size_t i = find_slot(s, data, len, h);
    wlimit_key_t *k = &s->slots[i];
    if (k->data) {
        if (out)
            *out = k;
        return 0;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, data, len);
    copy[len] = '\0';
    *k = (wlimit_key_t){.data = copy, .len = (uint32_t)len, .hash = h};
    s->len++;
    if (out)
        *out = k;
    return 1;
}

size_t wlimit_pair(char *buf, const char *tenant, const char *workflow)
{
    size_t t = strnlen(tenant, ET_TENANT_ID_MAX);
    size_t w = strnlen(workflow, ET_WORKFLOW_ID_MAX);
    memcpy(buf, tenant, t);
    buf[t] = '\0';
    memcpy(buf + t + 1, workflow, w);
    buf[t + 1 + w] = '\0';
    return t + 1 + w;
}

/* --- the cache ------------------------------------------------------------------- */

int wlimit_init(wlimit_t *wl, int64_t limit)
{
    memset(wl, 0, sizeof *wl);
    wl->limit = limit;
    size_t per_tenant = (size_t)limit + 1;
    wl->max_ids = WLIMIT_MAX_IDS > 2 * per_tenant ? WLIMIT_MAX_IDS : 2 * per_tenant;
    wl->tenants = calloc(WLIMIT_MAX_TENANTS, sizeof *wl->tenants);
    return wl->tenants ? 0 : -ENOMEM;
}

static void tenant_drop(wlimit_t *wl, wlimit_tenant_t *t)
{
    wl->ids_total -= t->ids.len;
    wlimit_set_free(&t->ids);
    t->in_use = false;
    wl->count--;
}

void wlimit_free(wlimit_t *wl)
{
    for (size_t i = 0; wl->tenants && i < WLIMIT_MAX_TENANTS; i++)
        if (wl->tenants[i].in_use)
            tenant_drop(wl, &wl->tenants[i]);
    free(wl->tenants);
    memset(wl, 0, sizeof *wl);
}

/* A linear scan: at most WLIMIT_MAX_TENANTS short compares, and the writer calls it once
 * per run of consecutive events of one tenant (see last). */
static wlimit_tenant_t *tenant_find(wlimit_t *wl, const char *tenant)
{
    for (size_t i = 0, seen = 0; seen < wl->count && i < WLIMIT_MAX_TENANTS; i++) {
        wlimit_tenant_t *t = &wl->tenants[i];
        if (!t->in_use)
            continue;
        seen++;
        if (strcmp(t->tenant_id, tenant) == 0)
            return t;
    }
    return NULL;
}

/* The least recently used tenant other than keep, or NULL. */
static wlimit_tenant_t *tenant_oldest(wlimit_t *wl, const wlimit_tenant_t *keep)
{
    wlimit_tenant_t *oldest = NULL;
    for (size_t i = 0; i < WLIMIT_MAX_TENANTS; i++) {
        wlimit_tenant_t *t = &wl->tenants[i];
        if (t->in_use && t != keep && (oldest == NULL || t->used < oldest->used))
            oldest = t;
    }
    return oldest;
}

static wlimit_tenant_t *tenant_lookup(wlimit_t *wl, const char *tenant)
{
    if (wl->last && wl->last->in_use && strcmp(wl->last->tenant_id, tenant) == 0)
        return wl->last;
    wlimit_tenant_t *t = tenant_find(wl, tenant);
    if (t)
        wl->last = t;
    return t;
}

wlimit_verdict_t wlimit_check(wlimit_t *wl, const char *tenant, const char *workflow)
{
    wlimit_tenant_t *t = tenant_lookup(wl, tenant);
    if (t == NULL)
        return WLIMIT_ASK_LOAD;
    t->used = ++wl->tick;
    if (wlimit_set_find(&t->ids, workflow, strlen(workflow)))
        return WLIMIT_OWN;
    int64_t known = (int64_t)t->ids.len;
    if (known >= t->db_count && t->db_count >= wl->limit)
        return WLIMIT_OVERFLOW; /* every admitted id is here and no room is left */
    /* Behind other agents, and all of the tenant's ids would fit: fetch them again. */
    if (known < t->db_count && t->db_count <= wl->limit + 1)
        return WLIMIT_ASK_LOAD;
    return WLIMIT_ASK;
}

int wlimit_learn(wlimit_t *wl, const char *tenant, const char *workflow, bool admitted,
                 int64_t count)
{
    wlimit_tenant_t *t = tenant_lookup(wl, tenant);
    if (t == NULL) {
        if (wl->count == WLIMIT_MAX_TENANTS)
            tenant_drop(wl, tenant_oldest(wl, NULL));
        for (size_t i = 0; i < WLIMIT_MAX_TENANTS; i++) {
            if (!wl->tenants[i].in_use) {
                t = &wl->tenants[i];
                break;
            }
        }
        memset(t, 0, sizeof *t);
        snprintf(t->tenant_id, sizeof t->tenant_id, "%s", tenant);
        wlimit_set_init(&t->ids);
        t->in_use = true;
        wl->count++;
    }
    t->used = ++wl->tick;
    t->db_count = count;
    if (!admitted || workflow == NULL || t->ids.len >= (size_t)wl->limit + 1)
        return 0;
    while (wl->ids_total >= wl->max_ids) {
        wlimit_tenant_t *old = tenant_oldest(wl, t);
        if (old == NULL)
            return 0; /* this tenant alone fills the budget: it stays incomplete */
        tenant_drop(wl, old);
    }
    int rc = wlimit_set_add(&t->ids, workflow, strlen(workflow), NULL);
    if (rc > 0)
        wl->ids_total++;
    return rc < 0 ? rc : 0;
}

bool wlimit_overflowed(wlimit_t *wl, const char *tenant, uint64_t n, uint64_t now_ms,
                       uint64_t *events)
{
    wlimit_tenant_t *t = tenant_lookup(wl, tenant);
    if (t == NULL) { /* evicted meanwhile: no state to rate-limit by, say it now */
        *events = n;
        return true;
    }
    t->overflowed += n;
    if (t->logged_ms != 0 && now_ms - t->logged_ms < WLIMIT_LOG_EVERY_MS)
        return false;
    t->logged_ms = now_ms ? now_ms : 1;
    *events = t->overflowed;
    t->overflowed = 0;
    return true;
}
