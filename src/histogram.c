/* histogram.c -- the log-linear latency histogram of histogram.h.
 *
 * Layout.  A value v is first scaled down by the unit, 2^unit_mag with
 * unit_mag = floor(log2(lowest)).  The scaled values are cut into buckets:
 * bucket 0 holds 0 .. S-1 one by one (S = 2^sub_mag sub-buckets, the
 * smallest power of two >= 2 * 10^digits); bucket b >= 1 holds
 * S/2 * 2^b .. S * 2^b - 1 in S/2 sub-buckets, each 2^b wide.  A sub-bucket
 * is therefore never wider than 1/(S/2) <= 10^-digits of the values in it.
 * The sub-buckets of all buckets sit end to end in one counts array, from
 * index 0 up to the index of `highest`, so finding the slot of a value is a
 * shift, a count of leading zeros and an add.
 *
 * Counts are 32-bit to keep the footprint near 130 KiB for an hour in
 * nanoseconds at 3 digits (64-bit counts would need twice that); the
 * total and every other counter are 64-bit.
 *
 * Invariant: every non-zero count lies between slot_of(min_value) and
 * slot_of(max_value), so reports and reset only walk that range. */
#include "histogram.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define HIST_MIN_DIGITS 1
#define HIST_MAX_DIGITS 5

struct hist {
    uint64_t lowest;        /* as given to hist_init */
    uint64_t highest;       /* as given; larger values are clamped to it */
    int digits;             /* as given */
    unsigned unit_mag;      /* floor(log2(lowest)) */
    unsigned sub_mag;       /* log2 of sub-buckets in bucket 0 */
    size_t counts_len;      /* slot_of(highest) + 1 */
    uint64_t total;         /* sum of counts[] */
    uint64_t min_value;     /* smallest value recorded; valid if total > 0 */
    uint64_t max_value;     /* largest value recorded (after clamping) */
    uint64_t clamped;       /* counts whose value was above highest */
    uint64_t dropped;       /* counts lost to a full slot */
    uint32_t counts[];      /* counts_len slots */
};

/* ------------------------------------------------------------------ */
/* Slot arithmetic                                                     */
/* ------------------------------------------------------------------ */

/* floor(log2(x)) for x > 0. */
static unsigned floor_log2(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return 63u - (unsigned)__builtin_clzll(x);
#else
    unsigned n = 0;
    while (x >>= 1)
        n++;
    return n;
#endif
}

/* Index in counts[] of the sub-bucket holding value v. */
static size_t slot_of(const hist *h, uint64_t v)
{
    uint64_t scaled = v >> h->unit_mag;
    uint64_t sub_mask = (UINT64_C(1) << h->sub_mag) - 1;
    /* OR-ing the mask puts every scaled value below S into bucket 0. */
    unsigned bucket = floor_log2(scaled | sub_mask) + 1u - h->sub_mag;
    uint64_t sub = scaled >> bucket;

    return (size_t)(((uint64_t)bucket << (h->sub_mag - 1)) + sub);
}

/* Bucket number of a slot: the inverse of the layout in slot_of. */
static unsigned bucket_of_slot(const hist *h, size_t slot)
{
    size_t halves = slot >> (h->sub_mag - 1);

    return halves > 1 ? (unsigned)(halves - 1) : 0u;
}

/* Smallest value that lands in `slot`. */
static uint64_t slot_lowest(const hist *h, size_t slot)
{
    unsigned bucket = bucket_of_slot(h, slot);
    uint64_t sub = (uint64_t)slot - ((uint64_t)bucket << (h->sub_mag - 1));

    return (sub << bucket) << h->unit_mag;
}

/* Width of `slot` minus one, so that lowest + span never overflows. */
static uint64_t slot_span(const hist *h, size_t slot)
{
    return (UINT64_C(1) << (bucket_of_slot(h, slot) + h->unit_mag)) - 1;
}

/* Largest value that lands in `slot`. */
static uint64_t slot_highest(const hist *h, size_t slot)
{
    return slot_lowest(h, slot) + slot_span(h, slot);
}

/* Middle of `slot`, as used by the mean. */
static double slot_middle(const hist *h, size_t slot)
{
    return (double)slot_lowest(h, slot) + (double)slot_span(h, slot) / 2.0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

/* log2 of the number of sub-buckets in bucket 0 for `digits` digits: the
 * smallest power of two >= 2 * 10^digits, so half of it is >= 10^digits. */
static unsigned sub_mag_for(int digits)
{
    uint64_t need = 2;
    unsigned mag = 0;

    for (int i = 0; i < digits; i++)
        need *= 10;
    while ((UINT64_C(1) << mag) < need)
        mag++;
    return mag;
}

static int check_config(uint64_t lowest, uint64_t highest, int digits)
{
    if (lowest == 0 || highest / 2 < lowest)
        return LS_EINVAL;
    if (digits < HIST_MIN_DIGITS || digits > HIST_MAX_DIGITS)
        return LS_EINVAL;
    /* Bucket 0 must fit in 64 bits: S << unit_mag <= 2^63. */
    if (floor_log2(lowest) + sub_mag_for(digits) > 63)
        return LS_EINVAL;
    return LS_OK;
}

int hist_init(hist **out, uint64_t lowest, uint64_t highest,
              int significant_digits)
{
    hist shape = {0};
    hist *h = NULL;
    int rc = LS_EINVAL;

    if (out == NULL)
        return LS_EINVAL;
    rc = check_config(lowest, highest, significant_digits);
    if (rc != LS_OK)
        goto leave;

    shape.unit_mag = floor_log2(lowest);
    shape.sub_mag = sub_mag_for(significant_digits);
    shape.counts_len = slot_of(&shape, highest) + 1;
    if (shape.counts_len > (SIZE_MAX - sizeof *h) / sizeof h->counts[0]) {
        rc = LS_ENOMEM;
        goto leave;
    }

    h = calloc(1, sizeof *h + shape.counts_len * sizeof h->counts[0]);
    if (h == NULL) {
        rc = LS_ENOMEM;
        goto leave;
    }
    h->lowest = lowest;
    h->highest = highest;
    h->digits = significant_digits;
    h->unit_mag = shape.unit_mag;
    h->sub_mag = shape.sub_mag;
    h->counts_len = shape.counts_len;
    rc = LS_OK;

leave:
    *out = h;
    return rc;
}

void hist_destroy(hist **h)
{
    if (h == NULL)
        return;
    free(*h);
    *h = NULL;
}

size_t hist_footprint(const hist *h)
{
    return sizeof *h + h->counts_len * sizeof h->counts[0];
}

/* ------------------------------------------------------------------ */
/* Recording                                                           */
/* ------------------------------------------------------------------ */

/* Adds up to `count` to one slot without passing UINT32_MAX; the rest goes
 * to h->dropped.  Returns how many were added. */
static uint64_t add_to_slot(hist *h, size_t slot, uint64_t count)
{
    uint64_t room = UINT32_MAX - h->counts[slot];
    uint64_t added = count < room ? count : room;

    h->counts[slot] += (uint32_t)added;
    h->dropped += count - added;
    h->total += added;
    return added;
}

/* Widens [min_value, max_value] to take in [lo, hi]. */
static void widen_range(hist *h, uint64_t lo, uint64_t hi)
{
    if (h->total == 0 || lo < h->min_value)
        h->min_value = lo;
    if (h->total == 0 || hi > h->max_value)
        h->max_value = hi;
}

void hist_record_n(hist *h, uint64_t value, uint64_t count)
{
    int too_high = value > h->highest;
    uint64_t added;

    if (count == 0)
        return;
    if (too_high)
        value = h->highest;
    /* widen_range reads total, so it runs before the add. */
    widen_range(h, value, value);
    added = add_to_slot(h, slot_of(h, value), count);
    if (too_high)
        h->clamped += added;
}

void hist_record(hist *h, uint64_t value)
{
    hist_record_n(h, value, 1);
}

void hist_reset(hist *h)
{
    if (h->total > 0) {
        size_t first = slot_of(h, h->min_value);
        size_t last = slot_of(h, h->max_value);

        memset(&h->counts[first], 0, (last - first + 1) * sizeof h->counts[0]);
    }
    h->total = 0;
    h->min_value = 0;
    h->max_value = 0;
    h->clamped = 0;
    h->dropped = 0;
}

static int same_config(const hist *a, const hist *b)
{
    return a->lowest == b->lowest && a->highest == b->highest &&
           a->digits == b->digits;
}

int hist_merge(hist *dst, const hist *src)
{
    if (dst == NULL || src == NULL || !same_config(dst, src))
        return LS_EINVAL;
    if (src->total == 0) {
        dst->clamped += src->clamped;
        dst->dropped += src->dropped;
        return LS_OK;
    }

    /* Read src's range first: dst may be src. */
    size_t first = slot_of(src, src->min_value);
    size_t last = slot_of(src, src->max_value);
    uint64_t src_min = src->min_value;
    uint64_t src_max = src->max_value;
    uint64_t src_clamped = src->clamped;
    uint64_t src_dropped = src->dropped;

    widen_range(dst, src_min, src_max);
    for (size_t i = first; i <= last; i++) {
        if (src->counts[i] != 0)
            add_to_slot(dst, i, src->counts[i]);
    }
    dst->clamped += src_clamped;
    dst->dropped += src_dropped;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Reports                                                             */
/* ------------------------------------------------------------------ */

uint64_t hist_count(const hist *h)
{
    return h->total;
}

uint64_t hist_clamped(const hist *h)
{
    return h->clamped;
}

uint64_t hist_dropped(const hist *h)
{
    return h->dropped;
}

uint64_t hist_min(const hist *h)
{
    if (h->total == 0)
        return 0;
    return slot_lowest(h, slot_of(h, h->min_value));
}

uint64_t hist_max(const hist *h)
{
    if (h->total == 0)
        return 0;
    return slot_highest(h, slot_of(h, h->max_value));
}

double hist_mean(const hist *h)
{
    if (h->total == 0)
        return 0.0;

    size_t first = slot_of(h, h->min_value);
    size_t last = slot_of(h, h->max_value);
    double sum = 0.0;

    for (size_t i = first; i <= last; i++) {
        if (h->counts[i] != 0)
            sum += (double)h->counts[i] * slot_middle(h, i);
    }
    return sum / (double)h->total;
}

/* How many counts must lie at or below the answer for percentile pct
 * (0 < pct < 100): ceil(pct% of total), kept within 1 .. total. */
static uint64_t rank_for(const hist *h, double pct)
{
    double rank = ceil(pct * (double)h->total / 100.0);

    if (rank < 1.0)
        return 1;
    if (rank >= (double)h->total)
        return h->total;
    return (uint64_t)rank;
}

uint64_t hist_percentile(const hist *h, double pct)
{
    if (h->total == 0)
        return 0;
    if (!(pct > 0.0))           /* also NaN */
        return hist_min(h);
    if (pct >= 100.0)
        return hist_max(h);

    uint64_t rank = rank_for(h, pct);
    size_t last = slot_of(h, h->max_value);
    uint64_t seen = 0;

    for (size_t i = slot_of(h, h->min_value); i <= last; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return slot_highest(h, i);
    }
    return hist_max(h);         /* not reached: the counts sum to total */
}
