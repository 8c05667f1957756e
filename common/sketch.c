/*
 * sketch — DDSketch log-bucket mapping and the sparse slot histogram.
 *
 * The mapping is exact: a duration x >= 1 µs lands in bin k = ceil(log_γ x) where γ is the
 * rational (1 + α) / (1 − α) (101/99 for α = 0.01), even when x lies within a rounding error
 * of a power of γ. The fast path uses doubles; only values whose computed log is within a
 * hair of an integer are settled with an exact big-integer comparison, so every program
 * that links this file bins a duration the same way, on every machine.
 */
#include "sketch.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "et_hex.h"

/* α in units of 1/ALPHA_SCALE: the exact rational behind ET_SKETCH_ALPHA. */
#define ALPHA_SCALE 10000

/* Computed log_γ x this close to an integer is settled exactly. The double path is off
 * by ~1e-13 at most for x < 2^64; the margin is generous because the exact path is rare. */
#define SLOT_DOUBT 1e-9

/* Enough 32-bit limbs for 101^2219 and x * 99^2219 (about 14 800 bits). */
#define BIG_LIMBS 512

/* Exact γ = num / den in lowest terms. */
typedef struct gamma_ratio {
    uint32_t num;
    uint32_t den;
} gamma_ratio_t;

/* Small fixed-size unsigned big integer, little-endian 32-bit limbs. */
typedef struct big {
    uint32_t limb[BIG_LIMBS];
    size_t len; /* limbs in use; no leading zero limb */
    bool overflow;
} big_t;

double et_sketch_gamma(void)
{
    return (1.0 + ET_SKETCH_ALPHA) / (1.0 - ET_SKETCH_ALPHA);
}

/* ln γ computed as ln(1+α) − ln(1−α): log(γ) itself loses precision because γ is near 1,
 * which would put the double path ~1e-11 off near 2^64. */
static double sketch_ln_gamma(void)
{
    return log1p(ET_SKETCH_ALPHA) - log1p(-ET_SKETCH_ALPHA);
}

static uint32_t gcd_u32(uint32_t a, uint32_t b)
{
    while (b != 0) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* The exact rational γ, derived from ET_SKETCH_ALPHA so the constant lives in one place. */
static gamma_ratio_t sketch_gamma_ratio(void)
{
    uint32_t p = (uint32_t)lround(ET_SKETCH_ALPHA * ALPHA_SCALE);
    gamma_ratio_t r = {ALPHA_SCALE + p, ALPHA_SCALE - p};
    uint32_t g = gcd_u32(r.num, r.den);

    assert(fabs(ET_SKETCH_ALPHA * ALPHA_SCALE - p) < 1e-9);
    r.num /= g;
    r.den /= g;
    return r;
}

static void big_set_u64(big_t *b, uint64_t v)
{
    b->len = 0;
    b->overflow = false;
    while (v != 0) {
        b->limb[b->len++] = (uint32_t)v;
        v >>= 32;
    }
}

static void big_mul_small(big_t *b, uint32_t m)
{
    uint64_t carry = 0;

    for (size_t i = 0; i < b->len; i++) {
        uint64_t cur = (uint64_t)b->limb[i] * m + carry;
        b->limb[i] = (uint32_t)cur;
        carry = cur >> 32;
    }
    if (carry != 0) {
        if (b->len == BIG_LIMBS) {
            b->overflow = true;
            return;
        }
        b->limb[b->len++] = (uint32_t)carry;
    }
}

/* b *= base^e, in chunks of the largest power of base that fits a limb. */
static void big_mul_pow(big_t *b, uint32_t base, unsigned e)
{
    uint32_t chunk = base;
    unsigned per = 1;

    while ((uint64_t)chunk * base <= UINT32_MAX && per < e) {
        chunk *= base;
        per++;
    }
    while (e >= per && !b->overflow) {
        big_mul_small(b, chunk);
        e -= per;
    }
    while (e > 0 && !b->overflow) {
        big_mul_small(b, base);
        e--;
    }
}

static int big_cmp(const big_t *a, const big_t *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    for (size_t i = a->len; i > 0; i--) {
        if (a->limb[i - 1] != b->limb[i - 1])
            return a->limb[i - 1] < b->limb[i - 1] ? -1 : 1;
    }
    return 0;
}

/* Exactly x <= γ^n, i.e. x * den^n <= num^n. Sets *ok false if the numbers do not fit. */
static bool sketch_le_gamma_pow(uint64_t x, unsigned n, bool *ok)
{
    gamma_ratio_t g = sketch_gamma_ratio();
    big_t lhs, rhs;

    big_set_u64(&lhs, x);
    big_mul_pow(&lhs, g.den, n);
    big_set_u64(&rhs, 1);
    big_mul_pow(&rhs, g.num, n);
    *ok = !lhs.overflow && !rhs.overflow;
    return big_cmp(&lhs, &rhs) <= 0;
}

/* Slot k + 1 for k = ceil(log_γ x). The double estimate is right unless x sits within a
 * rounding error of γ^n; only then is the exact comparison paid for (about 1 in 10^9
 * random durations, but every boundary test hits it). */
uint32_t et_sketch_slot(uint64_t duration_us)
{
    double r, n;
    bool ok;

    if (duration_us == 0)
        return 0;
    if (duration_us == 1)
        return 1; /* ln 1 = 0: bin 0, whatever rounding says */

    r = log((double)duration_us) / sketch_ln_gamma();
    n = nearbyint(r);
    if (fabs(r - n) < SLOT_DOUBT) {
        /* Within rounding of the boundary γ^n: ask exact arithmetic which side it is. */
        bool le = sketch_le_gamma_pow(duration_us, (unsigned)n, &ok);
        if (ok)
            return (uint32_t)n + (le ? 1 : 2);
    }
    return (uint32_t)ceil(r) + 1;
}

uint32_t et_sketch_max_slot(void)
{
    /* Computed once: callers use it as a loop bound and a validity check per bin. */
    static uint32_t max_slot;
    if (max_slot == 0)
        max_slot = et_sketch_slot((uint64_t)ET_DURATION_MAX_US);
    return max_slot;
}

double et_sketch_slot_value(uint32_t slot)
{
    double g = et_sketch_gamma();

    if (slot == 0)
        return 0.0;
    return 2.0 * pow(g, (double)(slot - 1)) / (g + 1.0);
}

double et_sketch_slot_upper(uint32_t slot)
{
    if (slot == 0)
        return 0.0;
    return pow(et_sketch_gamma(), (double)(slot - 1));
}

void et_hist_init(et_hist_t *h)
{
    h->bins = NULL;
    h->len = 0;
    h->cap = 0;
}

void et_hist_free(et_hist_t *h)
{
    free(h->bins);
    et_hist_init(h);
}

void et_hist_reset(et_hist_t *h)
{
    h->len = 0;
}

/* Make room for at least want bins, growing geometrically so n adds cost O(n) copies. */
static int hist_reserve(et_hist_t *h, uint64_t want)
{
    uint64_t cap = h->cap != 0 ? h->cap : 16;
    et_hist_bin_t *bins;

    if (want <= h->cap)
        return 0;
    if (want > UINT32_MAX || want > SIZE_MAX / sizeof(*bins))
        return -ENOMEM;
    while (cap < want)
        cap *= 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    bins = realloc(h->bins, (size_t)cap * sizeof(*bins));
    if (bins == NULL)
        return -ENOMEM;
    h->bins = bins;
    h->cap = (uint32_t)cap;
    return 0;
}

/* Index of the first bin whose slot >= slot. */
static uint32_t hist_lower_bound(const et_hist_t *h, uint32_t slot)
{
    uint32_t lo = 0, hi = h->len;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (h->bins[mid].slot < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int et_hist_add(et_hist_t *h, uint32_t slot, uint64_t count)
{
    uint32_t i;
    int rc;

    if (count == 0)
        return 0;
    /* Appending in slot order is the common case when decoding stored rows. */
    if (h->len > 0 && h->bins[h->len - 1].slot < slot)
        i = h->len;
    else
        i = hist_lower_bound(h, slot);

    if (i < h->len && h->bins[i].slot == slot) {
        if (h->bins[i].count > UINT64_MAX - count)
            return -ERANGE;
        h->bins[i].count += count;
        return 0;
    }
    rc = hist_reserve(h, (uint64_t)h->len + 1);
    if (rc != 0)
        return rc;
    memmove(&h->bins[i + 1], &h->bins[i], (size_t)(h->len - i) * sizeof(h->bins[0]));
    h->bins[i].slot = slot;
    h->bins[i].count = count;
    h->len++;
    return 0;
}

/*
 * Merges two sorted bin lists in place, from the back, after one pass that sizes the
 * union and checks for count overflow: no temporary array, and dst is left unchanged
 * when the merge fails.
 */
int et_hist_reserve(et_hist_t *h, uint32_t cap)
{
    return hist_reserve(h, cap);
}

int et_hist_merge(et_hist_t *dst, const et_hist_t *src)
{
    uint64_t out_len = 0;
    uint32_t i = 0, j = 0;
    int rc;

    if (src->len == 0)
        return 0;
    while (i < dst->len || j < src->len) {
        if (j == src->len || (i < dst->len && dst->bins[i].slot < src->bins[j].slot)) {
            i++;
        } else if (i == dst->len || src->bins[j].slot < dst->bins[i].slot) {
            j++;
        } else {
            if (dst->bins[i].count > UINT64_MAX - src->bins[j].count)
                return -ERANGE;
            i++;
            j++;
        }
        out_len++;
    }
    /* src == dst lands here with out_len == len: no reallocation moves src's bins. */
    rc = hist_reserve(dst, out_len);
    if (rc != 0)
        return rc;

    i = dst->len;
    j = src->len;
    for (uint64_t o = out_len; o > 0; o--) {
        et_hist_bin_t b;
        if (j == 0 || (i > 0 && dst->bins[i - 1].slot > src->bins[j - 1].slot)) {
            b = dst->bins[--i];
        } else if (i == 0 || src->bins[j - 1].slot > dst->bins[i - 1].slot) {
            b = src->bins[--j];
        } else {
            b = dst->bins[--i];
            b.count += src->bins[--j].count;
        }
        dst->bins[o - 1] = b;
    }
    dst->len = (uint32_t)out_len;
    return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Saturates rather than wraps, so a corrupt histogram cannot send quantile astray. */
uint64_t et_hist_total(const et_hist_t *h)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < h->len; i++)
        n = add_sat(n, h->bins[i].count);
    return n;
}

/*
 * The rank is computed exactly as PostgreSQL's percentile_disc does
 * (rownum = (int64) ceil(percentile * number_of_rows), in double, at least 1), so the
 * bin we pick holds the very row percentile_disc returns and the 1% bound holds.
 */
int et_hist_quantile(const et_hist_t *h, double q, uint64_t min_us, uint64_t max_us, double *out_us)
{
    uint64_t n = et_hist_total(h);
    uint64_t rownum, seen = 0;
    double v;

    if (n == 0 || !(q > 0.0 && q <= 1.0) || min_us > max_us)
        return -EINVAL;

    v = ceil(q * (double)n);
    rownum = v < 1.0 ? 1 : (v >= (double)n ? n : (uint64_t)v);

    for (uint32_t i = 0; i < h->len; i++) {
        seen = add_sat(seen, h->bins[i].count);
        if (seen >= rownum) {
            v = et_sketch_slot_value(h->bins[i].slot);
            if (v < (double)min_us)
                v = (double)min_us;
            if (v > (double)max_us)
                v = (double)max_us;
            *out_us = v;
            return 0;
        }
    }
    assert(0 && "rank beyond total");
    return -EINVAL;
}

/* --- stored encoding ------------------------------------------------------------------ */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads one varint at *p (before end); -EINVAL when truncated or longer than 64 bits. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t byte = *(*p)++;
        if (shift == 63 && byte > 1)
            return -EINVAL;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -EINVAL;
}

size_t et_hist_encoded_size(const et_hist_t *h)
{
    size_t n = 0;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        n += varint_size(h->bins[i].slot - prev) + varint_size(h->bins[i].count);
        prev = h->bins[i].slot;
    }
    return n;
}

long et_hist_encode(const et_hist_t *h, uint8_t *out, size_t cap)
{
    size_t need = et_hist_encoded_size(h);
    if (need > cap || need > LONG_MAX)
        return -ERANGE;
    uint8_t *p = out;
    uint32_t prev = 0;
    for (uint32_t i = 0; i < h->len; i++) {
        p = varint_put(p, h->bins[i].slot - prev);
        p = varint_put(p, h->bins[i].count);
        prev = h->bins[i].slot;
    }
    return (long)(p - out);
}

long et_hist_encode_sum(const et_hist_t *a, const et_hist_t *b, uint8_t *out, size_t cap)
{
    uint8_t *p = out, *end = out + cap;
    uint32_t prev = 0, i = 0, j = 0;
    while (i < a->len || j < b->len) {
        uint32_t slot;
        uint64_t count;
        if (j == b->len || (i < a->len && a->bins[i].slot < b->bins[j].slot)) {
            slot = a->bins[i].slot;
            count = a->bins[i++].count;
        } else if (i == a->len || b->bins[j].slot < a->bins[i].slot) {
            slot = b->bins[j].slot;
            count = b->bins[j++].count;
        } else {
            slot = a->bins[i].slot;
            if (__builtin_add_overflow(a->bins[i].count, b->bins[j].count, &count))
                return -ERANGE;
            i++;
            j++;
        }
        if ((size_t)(end - p) < varint_size(slot - prev) + varint_size(count))
            return -ERANGE;
        p = varint_put(p, slot - prev);
        p = varint_put(p, count);
        prev = slot;
    }
    return (long)(p - out);
}

/* The common one-byte case inline; longer varints through varint_get. */
#define VARINT_NEXT(p, end, out)                                                                   \
    ((p) < (end) && *(p) < 0x80 ? ((out) = *(p)++, 0) : varint_get(&(p), (end), &(out)))

int et_hist_decode(et_hist_t *out, const uint8_t *p, size_t len)
{
    et_hist_reset(out);
    const uint8_t *end = p + len;
    const uint64_t max_slot = et_sketch_max_slot();
    uint64_t slot = 0;
    /* Every bin takes two bytes at least: room for all of them at once. */
    if (len / 2 > out->cap) {
        int rc = hist_reserve(out, len / 2 < max_slot + 1 ? len / 2 : max_slot + 1);
        if (rc < 0)
            return rc;
    }
    while (p < end) {
        uint64_t distance, count;
        if (VARINT_NEXT(p, end, distance) < 0 || VARINT_NEXT(p, end, count) < 0)
            return -EINVAL;
        if ((out->len > 0 && distance == 0) || count == 0 || distance > max_slot - slot)
            return -EINVAL;
        slot += distance;
        if (out->len == out->cap) { /* only past max_slot + 1 bins, which the checks refuse */
            int rc = hist_reserve(out, (uint64_t)out->cap * 2);
            if (rc < 0)
                return rc;
        }
        out->bins[out->len].slot = (uint32_t)slot;
        out->bins[out->len].count = count;
        out->len++;
    }
    return 0;
}

long et_hex_bytea_decode(const char *text, uint8_t *out, size_t cap)
{
    if (text[0] != '\\' || text[1] != 'x')
        return -EINVAL;
    text += 2;
    size_t digits = strlen(text);
    if (digits % 2)
        return -EINVAL;
    if (digits / 2 > cap || digits / 2 > LONG_MAX)
        return -ERANGE;
    for (size_t i = 0; i < digits / 2; i++) {
        int hi = et_hex_value(text[2 * i]), lo = et_hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(digits / 2);
}

int et_hist_decode_hex(et_hist_t *out, const char *text)
{
    /* Decoded on the stack: no allocation per row. */
    uint8_t buf[ET_HIST_ENCODED_MAX];
    long n = et_hex_bytea_decode(text, buf, sizeof buf);
    return n < 0 ? -EINVAL : et_hist_decode(out, buf, (size_t)n);
}
