/*
 * Unit tests of day_cache: what may be stored and found (listener up, no notification
 * since the request began), what a notification drops, and the bound.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "day_cache.h"
#include "timeutil.h"

#define DAY ET_US_PER_DAY

static day_cache_key_t key(const char *tenant, int64_t from_day, int64_t to_day)
{
    day_cache_key_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.tenant, sizeof k.tenant, "%s", tenant);
    k.status_mask = 0xf;
    k.from_us = from_day * DAY;
    k.to_us = to_day * DAY;
    return k;
}

static void put(day_cache_t *c, const day_cache_key_t *k, uint64_t runs)
{
    et_hist_t h;
    et_hist_init(&h);
    cr_assert_eq(et_hist_add(&h, 100, runs), 0);
    cr_assert_eq(day_cache_put(c, k, runs, 0, 5, 1, 2, &h, day_cache_generation(c)), 0);
    et_hist_free(&h);
}

Test(day_cache, nothing_is_kept_or_found_while_the_listener_is_down)
{
    day_cache_t c;
    cr_assert_eq(day_cache_init(&c, 4), 0);
    day_cache_key_t k = key("t1", 10, 20);
    put(&c, &k, 3);
    cr_assert_null(day_cache_find(&c, &k));
    day_cache_set_listening(&c, true);
    put(&c, &k, 3);
    const day_cache_value_t *v = day_cache_find(&c, &k);
    cr_assert_not_null(v);
    cr_assert_eq(v->runs, 3);
    et_hist_t back;
    et_hist_init(&back);
    cr_assert_eq(et_hist_decode(&back, v->bins, v->bins_len), 0);
    cr_assert_eq(back.len, 1);
    cr_assert_eq(back.bins[0].count, 3);
    et_hist_free(&back);
    /* Down and up again: notifications may have been missed meanwhile. */
    day_cache_set_listening(&c, false);
    day_cache_set_listening(&c, true);
    cr_assert_null(day_cache_find(&c, &k));
    day_cache_free(&c);
}

Test(day_cache, an_answer_read_across_a_notification_is_not_kept)
{
    day_cache_t c;
    cr_assert_eq(day_cache_init(&c, 4), 0);
    day_cache_set_listening(&c, true);
    day_cache_key_t k = key("t1", 10, 20);
    uint64_t began = day_cache_generation(&c);
    day_cache_notified(&c, "0 0 someone-else");
    et_hist_t h;
    et_hist_init(&h);
    cr_assert_eq(day_cache_put(&c, &k, 1, 0, 1, 1, 1, &h, began), 0);
    cr_assert_null(day_cache_find(&c, &k));
    day_cache_free(&c);
}

Test(day_cache, a_notification_drops_the_overlapping_days_of_its_tenant_only)
{
    day_cache_t c;
    cr_assert_eq(day_cache_init(&c, 8), 0);
    day_cache_set_listening(&c, true);
    day_cache_key_t a = key("t1", 10, 20), b = key("t1", 20, 30), other = key("t2", 10, 30);
    day_cache_key_t spaced = key(" t1", 10, 30);
    put(&c, &a, 1);
    put(&c, &b, 1);
    put(&c, &other, 1);
    put(&c, &spaced, 1);
    char payload[64];
    /* Day 19 alone: inside a, just before b. */
    snprintf(payload, sizeof payload, "%lld %lld t1", 19LL * DAY, 19LL * DAY);
    day_cache_notified(&c, payload);
    cr_assert_null(day_cache_find(&c, &a));
    cr_assert_not_null(day_cache_find(&c, &b));
    cr_assert_not_null(day_cache_find(&c, &other));
    cr_assert_not_null(day_cache_find(&c, &spaced), "a tenant id with a leading space is another");
    /* Days 30 and 31: after b. */
    snprintf(payload, sizeof payload, "%lld %lld t1", 30LL * DAY, 31LL * DAY);
    day_cache_notified(&c, payload);
    cr_assert_not_null(day_cache_find(&c, &b));
    snprintf(payload, sizeof payload, "%lld %lld  t1", 25LL * DAY, 25LL * DAY);
    day_cache_notified(&c, payload);
    cr_assert_null(day_cache_find(&c, &spaced));
    cr_assert_not_null(day_cache_find(&c, &b));
    /* "*", or anything unreadable, drops everything. */
    day_cache_notified(&c, "garbage");
    cr_assert_null(day_cache_find(&c, &b));
    cr_assert_null(day_cache_find(&c, &other));
    put(&c, &other, 1);
    day_cache_notified(&c, "*");
    cr_assert_null(day_cache_find(&c, &other));
    day_cache_free(&c);
}

Test(day_cache, the_least_recently_used_entry_goes_first)
{
    day_cache_t c;
    cr_assert_eq(day_cache_init(&c, 2), 0);
    day_cache_set_listening(&c, true);
    day_cache_key_t a = key("t1", 1, 2), b = key("t1", 2, 3), d = key("t1", 3, 4);
    put(&c, &a, 1);
    put(&c, &b, 2);
    cr_assert_not_null(day_cache_find(&c, &a)); /* a used after b */
    put(&c, &d, 3);
    cr_assert_null(day_cache_find(&c, &b));
    cr_assert_not_null(day_cache_find(&c, &a));
    cr_assert_not_null(day_cache_find(&c, &d));
    cr_assert_eq(c.stats.stores, 3);
    day_cache_free(&c);
}

Test(day_cache, zero_entries_is_off)
{
    day_cache_t c;
    cr_assert_eq(day_cache_init(&c, 0), 0);
    cr_assert(!day_cache_enabled(&c));
    day_cache_set_listening(&c, true);
    day_cache_key_t k = key("t1", 1, 2);
    put(&c, &k, 1);
    cr_assert_null(day_cache_find(&c, &k));
    day_cache_notified(&c, "*");
    day_cache_free(&c);
}
