/*
 * sketch — the DDSketch log-bucket mapping (relative accuracy ET_SKETCH_ALPHA) and a
 * sparse, mergeable histogram of slot counts with exact-rank quantiles.
 *
 * Slots: slot 0 holds the duration 0 µs; a duration x >= 1 µs falls in bin
 * k = ceil(ln x / ln gamma) and is stored in slot k + 1, so every slot is >= 0 and fits the
 * packed database encoding (ET_HIST_PACK_SHIFT).
 *
 * Ownership: an et_hist_t owns its bins array; et_hist_free releases it. Functions that can
 * fail return 0 or a negative errno (-ENOMEM, -EINVAL, -ERANGE).
 */
#ifndef EXECTIME_SKETCH_H
#define EXECTIME_SKETCH_H

#include <stddef.h>
#include <stdint.h>

/* The one place the sketch constants live; the database row exectime.sketch_constants
 * must hold the same values or the agent refuses to start. */
#define ET_SKETCH_ALPHA 0.01
#define ET_SKETCH_ENCODING 1 /* version of the slot numbering and packing below */
/* Longest duration the codec accepts: 30 days in µs. */
#define ET_DURATION_MAX_US (30LL * 24 * 3600 * 1000000)
/* Packed bin as stored in PostgreSQL bigint[]: slot << 40 | count. */
#define ET_HIST_PACK_SHIFT 40
#define ET_HIST_COUNT_MASK ((1ULL << ET_HIST_PACK_SHIFT) - 1)

typedef struct et_hist_bin {
    uint32_t slot;
    uint64_t count;
} et_hist_bin_t;

/* Sparse histogram: bins sorted by slot, no zero counts, no repeated slot. */
typedef struct et_hist {
    et_hist_bin_t *bins;
    uint32_t len;
    uint32_t cap;
} et_hist_t;

/* gamma = (1 + alpha) / (1 - alpha). */
double et_sketch_gamma(void);

/* Slot of a duration in µs (0 for 0). */
uint32_t et_sketch_slot(uint64_t duration_us);

/* Largest slot a duration <= ET_DURATION_MAX_US can have. */
uint32_t et_sketch_max_slot(void);

/* Value reported for a slot, in µs, before clamping: 0 for slot 0, else 2γ^k/(γ+1). */
double et_sketch_slot_value(uint32_t slot);

/* Upper bound of a slot in µs (γ^k; 0 for slot 0): the histogram's "le". */
double et_sketch_slot_upper(uint32_t slot);

void et_hist_init(et_hist_t *h);
void et_hist_free(et_hist_t *h);
void et_hist_reset(et_hist_t *h); /* keeps the allocation */

/* Makes room for at least cap bins without changing the contents. */
__attribute__((warn_unused_result)) int et_hist_reserve(et_hist_t *h, uint32_t cap);

/* Add count to slot. */
__attribute__((warn_unused_result)) int et_hist_add(et_hist_t *h, uint32_t slot,
                                                    uint64_t count);

/* dst += src. */
__attribute__((warn_unused_result)) int et_hist_merge(et_hist_t *dst, const et_hist_t *src);

uint64_t et_hist_total(const et_hist_t *h);

/*
 * The q-quantile (0 < q <= 1) as DESIGN section 4 defines it: the value of rank ceil(q*n)
 * (computed exactly as PostgreSQL's percentile_disc does, in double), reported as the slot
 * value clamped to [min_us, max_us]. Returns -EINVAL for an empty histogram or q outside
 * (0, 1].
 */
__attribute__((warn_unused_result)) int et_hist_quantile(const et_hist_t *h, double q,
                                                         uint64_t min_us, uint64_t max_us,
                                                         double *out_us);

static inline int64_t et_hist_pack(uint32_t slot, uint64_t count)
{
    return (int64_t)(((uint64_t)slot << ET_HIST_PACK_SHIFT) | (count & ET_HIST_COUNT_MASK));
}
static inline uint32_t et_hist_packed_slot(int64_t packed)
{
    return (uint32_t)((uint64_t)packed >> ET_HIST_PACK_SHIFT);
}
static inline uint64_t et_hist_packed_count(int64_t packed)
{
    return (uint64_t)packed & ET_HIST_COUNT_MASK;
}

#endif
