/* median.h -- the median of some figures: for the benchmarks that repeat
 * a run and quote medians (`bench --rounds`: cmd_bench.c,
 * bench_audiences.c, bench_offline.c), and for train.c's typical open
 * cart (train_unpriced_cart_value).  Header-only: one small function. */
#ifndef LS_MEDIAN_H
#define LS_MEDIAN_H

#include <stddef.h>
#include <stdlib.h>

/* The most runs `bench --rounds` repeats. */
#define MEDIAN_MAX_RUNS 100

static inline int median_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v[0..n) in place and returns its median (the mean of the middle
 * two when n is even); 0 when n is 0. */
static inline double median_sort(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, median_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
