/* histogram.h -- a fixed-size log-linear latency histogram.
 *
 * In the spirit of HdrHistogram: values (typically nanoseconds) from 1 up
 * to a configured highest value are counted in buckets whose width grows
 * with the value, so that every recorded value is reported to a fixed
 * number of significant digits.  With 3 digits, any value v >= 1 recorded
 * into a histogram made with lowest = 1 is reported within 0.1% of v.
 * All memory is taken in hist_init(); hist_record() is O(1) and never
 * allocates, so it is safe on a request's hot path.
 *
 * How leadscore uses it: the server keeps one histogram per worker thread
 * per op, records each request's latency into its own, and merges them into
 * a fresh histogram (hist_merge) when it reports.  The bench does the same,
 * measuring from each request's intended send time.
 *
 * Thread-safety: none inside.  A histogram is owned by one thread; reading
 * or merging one that another thread is recording into is a data race.
 *
 * Reported values.  Each bucket stands for a range of values; a report
 * names one of them: hist_max() and hist_percentile() give the highest value
 * of the bucket (an upper bound on what was recorded), hist_min() the lowest
 * (a lower bound), hist_mean() weighs each bucket by its middle.  The error
 * is below max(2^floor(log2(lowest)), v / 10^digits) for a recorded v:
 * values >= lowest * 2 * 10^digits, and with lowest = 1 all values, are
 * within 10^-digits relative.
 *
 * Memory: for lowest = 1, highest = 3.6e12 (one hour in ns), 3 digits, the
 * histogram takes 133,764 bytes (about 131 KiB) on x86-64, in a single
 * allocation; hist_footprint() gives the figure for any configuration.
 * Each bucket holds up to 2^32 - 1 counts (UINT32_MAX); see hist_dropped(). */
#ifndef LS_HISTOGRAM_H
#define LS_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct hist hist;

/* Makes an empty histogram for values up to `highest`, with `lowest` the
 * smallest value that must be told apart from 0 (use 1 for "full
 * precision everywhere") and `significant_digits` in 1..5.  Returns LS_OK
 * and sets *out to a histogram the caller owns (free with hist_destroy);
 * LS_EINVAL when out is NULL, lowest is 0, highest < 2 * lowest, digits
 * are outside 1..5 or lowest is too large for that many digits; LS_ENOMEM.
 * On failure *out (when out is not NULL) is set to NULL. */
int hist_init(hist **out, uint64_t lowest, uint64_t highest,
              int significant_digits);

/* Frees *h and sets *h to NULL.  h == NULL or *h == NULL does nothing, so a
 * second destroy is harmless. */
void hist_destroy(hist **h);

/* Counts one value.  A value above the configured highest is counted as
 * highest and also in hist_clamped().  0 is accepted and reported as 0. */
void hist_record(hist *h, uint64_t value);

/* Counts `count` occurrences of one value: the same as calling hist_record
 * `count` times, in O(1).  count == 0 does nothing.  If the value's bucket
 * would pass UINT32_MAX, it is filled up and the rest is not counted but
 * added to hist_dropped(). */
void hist_record_n(hist *h, uint64_t value, uint64_t count);

/* The value at percentile `pct` (0..100; values outside are clamped, NaN
 * counts as 0): the smallest reported value at or below which at least
 * pct% of the counts lie.  pct == 0 gives hist_min(), pct == 100 gives
 * hist_max().  0 for an empty histogram.  O(number of buckets). */
uint64_t hist_percentile(const hist *h, double pct);

/* Lowest value of the smallest recorded value's bucket; 0 when empty. */
uint64_t hist_min(const hist *h);

/* Highest value of the largest recorded value's bucket (>= the largest
 * recorded value, and within the precision above); 0 when empty. */
uint64_t hist_max(const hist *h);

/* Mean of the counts, each bucket weighed by its middle value; 0.0 when
 * empty.  O(number of buckets). */
double hist_mean(const hist *h);

/* Number of counts held (clamped ones included, dropped ones not). */
uint64_t hist_count(const hist *h);

/* Number of counts held whose value was above highest and was clamped to
 * it (they are part of hist_count()). */
uint64_t hist_clamped(const hist *h);

/* Number of counts lost because their bucket was full (UINT32_MAX).  Only
 * a histogram that is never reset can get there: about 4.3e9 counts in one
 * 0.1%-wide bucket. */
uint64_t hist_dropped(const hist *h);

/* Empties the histogram (counts and the clamped and dropped counters); its
 * configuration stays.  O(range of values recorded). */
void hist_reset(hist *h);

/* Adds every count of src into dst, as if each value recorded into src had
 * been recorded into dst too; src is unchanged.  Returns LS_OK, or
 * LS_EINVAL (dst untouched) when either is NULL or they were not made with
 * the same lowest, highest and significant_digits.  Bucket overflow is
 * handled as in hist_record_n. */
int hist_merge(hist *dst, const hist *src);

/* Bytes the histogram uses, its one allocation included. */
size_t hist_footprint(const hist *h);

#endif
