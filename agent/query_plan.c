/* query_plan — see query_plan.h. */
#include "query_plan.h"

#include <assert.h>
#include <errno.h>

/* Times beyond ±2^61 µs (about 73,000 years) are refused, so rounding an edge out to a
 * whole day can never overflow int64_t. */
#define PLAN_TIME_LIMIT_US ((int64_t)1 << 61)

/* "auto" aims at about 240 points per series. */
#define PLAN_AUTO_POINTS 240

/* A switch rather than a range compare: the enum's underlying type may be unsigned, and
 * a value cast in from elsewhere must still be caught. */
static bool res_valid(et_resolution_t res)
{
    switch (res) {
    case ET_RES_MINUTE:
    case ET_RES_HOUR:
    case ET_RES_DAY: return true;
    }
    return false;
}

/* Start of the first bucket of res at or after t. */
static int64_t ceil_to(int64_t t_us, et_resolution_t res)
{
    int64_t f = et_time_floor(t_us, res);

    return f == t_us ? t_us : f + et_resolution_us(res);
}

/* Appends [from, to) at res; extends the previous piece instead when it ends at from
 * with the same resolution, so the plan is one SQL range per resolution run. */
static void push_piece(plan_t *p, et_resolution_t res, int64_t from_us, int64_t to_us)
{
    if (from_us >= to_us)
        return;
    if (p->count > 0) {
        plan_piece_t *last = &p->pieces[p->count - 1];
        if (last->res == res && last->to_us == from_us) {
            last->to_us = to_us;
            return;
        }
    }
    assert(p->count < PLAN_PIECES_MAX);
    p->pieces[p->count++] = (plan_piece_t){.res = res, .from_us = from_us, .to_us = to_us};
}

/*
 * The canonical decomposition of [a, b): every whole bucket of res inside it as one
 * piece, the two edges recursively at the next finer resolution. UTC buckets nest (a day
 * is exactly 24 hours, an hour 60 minutes), so any bucket used could only be replaced by
 * more rows of a finer one: this is the fewest rows. The left edge ends on a res
 * boundary and the right one starts on one, so each adds at most two pieces: five in all.
 */
static void decompose(plan_t *p, int64_t a_us, int64_t b_us, et_resolution_t res)
{
    if (a_us >= b_us)
        return;
    if (res == ET_RES_MINUTE) {
        push_piece(p, ET_RES_MINUTE, a_us, b_us);
        return;
    }

    et_resolution_t finer = res == ET_RES_DAY ? ET_RES_HOUR : ET_RES_MINUTE;
    int64_t whole_from = ceil_to(a_us, res);
    int64_t whole_to = et_time_floor(b_us, res);

    if (whole_from < whole_to) {
        decompose(p, a_us, whole_from, finer);
        push_piece(p, res, whole_from, whole_to);
        decompose(p, whole_to, b_us, finer);
    } else {
        decompose(p, a_us, b_us, finer);
    }
}

/*
 * Finds the first piece whose oldest buckets are past retention and that max_res lets
 * grow one resolution coarser, and widens [*s, *e) to the coarser buckets covering the
 * expired part. Returns true when the range moved.
 *
 * Only the expired part is covered: a minute piece straddling the boundary keeps its
 * retained minutes rather than rounding the far edge out too. The covering bucket always
 * sticks out of [*s, *e): had it been inside, the decomposition would have used it
 * instead of the finer piece. So every true return moves an edge outwards to a coarser
 * boundary, and the caller's loop ends after at most four.
 */
static bool widen_expired(const plan_t *p, int64_t *s_us, int64_t *e_us, et_resolution_t max_res,
                          const plan_retention_t *ret)
{
    for (int i = 0; i < p->count; i++) {
        const plan_piece_t *pc = &p->pieces[i];
        int64_t oldest;
        et_resolution_t coarser;

        if (pc->res == ET_RES_MINUTE) {
            oldest = ret->minute_oldest_us;
            coarser = ET_RES_HOUR;
        } else if (pc->res == ET_RES_HOUR) {
            oldest = ret->hour_oldest_us;
            coarser = ET_RES_DAY;
        } else {
            continue; /* day rollups are kept forever */
        }
        if (pc->from_us >= oldest || coarser > max_res)
            continue;

        int64_t expired_to = pc->to_us < oldest ? pc->to_us : oldest;
        int64_t lo = et_time_floor(pc->from_us, coarser);
        int64_t hi = ceil_to(expired_to, coarser);

        if (lo < *s_us || hi > *e_us) {
            if (lo < *s_us)
                *s_us = lo;
            if (hi > *e_us)
                *e_us = hi;
            return true;
        }
    }
    return false;
}

int plan_range(int64_t start_us, int64_t end_us, et_resolution_t max_res,
               const plan_retention_t *ret, plan_t *out)
{
    assert(out != NULL);
    if (!res_valid(max_res))
        return -EINVAL;
    if (start_us >= end_us || start_us < -PLAN_TIME_LIMIT_US || end_us > PLAN_TIME_LIMIT_US)
        return -EINVAL;
    if (et_time_floor(start_us, ET_RES_MINUTE) != start_us ||
        et_time_floor(end_us, ET_RES_MINUTE) != end_us)
        return -EINVAL;

    plan_t p = {0};
    int64_t s = start_us;
    int64_t e = end_us;

    /* Decompose, and while some used bucket no longer exists, widen and decompose again:
     * widened edges can expose coarser buckets that are past retention themselves. */
    for (;;) {
        p.count = 0;
        decompose(&p, s, e, max_res);
        if (ret == NULL || !widen_expired(&p, &s, &e, max_res, ret))
            break;
    }
    p.start_us = s;
    p.end_us = e;
    p.coarsened = s != start_us || e != end_us;
    *out = p;
    return 0;
}

int64_t plan_series_buckets(int64_t start_us, int64_t end_us, et_resolution_t interval)
{
    if (!res_valid(interval))
        return -EINVAL;
    if (start_us >= end_us)
        return 0;

    /* Bucket indexes of the first and last instants in the range; dividing the floors,
     * not subtracting times, keeps this exact and overflow-free for any int64_t. */
    int64_t r = et_resolution_us(interval);
    int64_t first = et_time_floor(start_us, interval) / r;
    int64_t last = et_time_floor(end_us - 1, interval) / r;

    return last - first + 1;
}

et_resolution_t plan_auto_interval(int64_t start_us, int64_t end_us)
{
    if (end_us <= start_us)
        return ET_RES_MINUTE;

    /* Unsigned difference: exact even when the range spans most of int64_t. */
    uint64_t span = (uint64_t)end_us - (uint64_t)start_us;

    if (span <= (uint64_t)(PLAN_AUTO_POINTS * ET_US_PER_MIN))
        return ET_RES_MINUTE;
    if (span <= (uint64_t)(PLAN_AUTO_POINTS * ET_US_PER_HOUR))
        return ET_RES_HOUR;
    return ET_RES_DAY;
}
