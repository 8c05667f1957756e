/*
 * sketch — the DDSketch log-bucket mapping (relative accuracy ET_SKETCH_ALPHA) and a
 * sparse, mergeable histogram of slot counts with exact-rank quantiles.
 *
 * Slots: slot 0 holds the duration 0 µs; a duration x >= 1 µs falls in bin
 * k = ceil(ln x / ln gamma) and is stored in slot k + 1, so every slot is >= 0.
 *
 * Stored encoding (ET_SKETCH_ENCODING 2, the rollups' bytea column hist): the bins in slot
 * order, each as two unsigned LEB128 varints, the slot's distance from the previous bin's
 * slot (the first bin: its slot) and its count. A typical bin takes 2-3 bytes, so even a
 * day of a busy tenant stays below PostgreSQL's 2 kB TOAST threshold: stored inline,
 * uncompressed, read without de-TOASTing.
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
#define ET_SKETCH_ENCODING 2 /* version of the slot numbering and the stored encoding */
/* Longest duration the codec accepts: 30 days in µs. */
#define ET_DURATION_MAX_US (30LL * 24 * 3600 * 1000000)
/* Most bytes one encoded bin takes: a slot distance (2 bytes for any slot up to
 * et_sketch_max_slot()) and a 64-bit count (10 bytes). */
#define ET_HIST_BIN_BYTES_MAX 12
/* More than et_sketch_max_slot() + 1 (1,431 at these constants): a bound on any valid
 * histogram's bins, checked by a unit test. */
#define ET_HIST_BINS_MAX 1536
/* The longest stored encoding of a valid histogram. */
#define ET_HIST_ENCODED_MAX (ET_HIST_BINS_MAX * ET_HIST_BIN_BYTES_MAX)

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
__attribute__((warn_unused_result)) int et_hist_add(et_hist_t *h, uint32_t slot, uint64_t count);

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

/* Bytes et_hist_encode writes for h (0 for an empty histogram). */
size_t et_hist_encoded_size(const et_hist_t *h);

/* Writes h's stored encoding into out; returns its length, or -ERANGE when cap is too
 * small (et_hist_encoded_size says how much is needed). */
__attribute__((warn_unused_result)) long et_hist_encode(const et_hist_t *h, uint8_t *out,
                                                        size_t cap);

/* The encoding of the bin-wise sum of a and b, without building it: what a merge then
 * et_hist_encode would write. -ERANGE when cap is too small or a count would pass 2^64. */
__attribute__((warn_unused_result)) long et_hist_encode_sum(const et_hist_t *a, const et_hist_t *b,
                                                            uint8_t *out, size_t cap);

/*
 * Reads a stored encoding into out (reset first). Refuses with -EINVAL what the encoder
 * never writes: a truncated varint, slots out of order or past et_sketch_max_slot(), a zero
 * count; -ENOMEM when out cannot grow. Input from the database is checked like any other.
 */
__attribute__((warn_unused_result)) int et_hist_decode(et_hist_t *out, const uint8_t *p,
                                                       size_t len);

/* The same from PostgreSQL's text form of a bytea, "\x" and two hex digits a byte. */
__attribute__((warn_unused_result)) int et_hist_decode_hex(et_hist_t *out, const char *text);

/* PostgreSQL's text form of a bytea ("\x" and hex digits) into bytes: out gets at most
 * cap; returns the length, or -EINVAL (not that form) / -ERANGE (longer than cap). */
__attribute__((warn_unused_result)) long et_hex_bytea_decode(const char *text, uint8_t *out,
                                                             size_t cap);

#endif
