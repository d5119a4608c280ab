/* test_histogram.c -- Check suite for the latency histogram (histogram.h).
 *
 * Known answers on 1..10000, the 0.1% precision promise as a property over
 * many pseudo-random values (fixed seed, so failures repeat), merge against
 * the histogram of the union, record_n against repeated record, clamping,
 * bucket overflow, bad configurations and reset.  Exits 1 on any failure. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "histogram.h"
#include "stats.h"
#include "leadscore/error.h"

#define HOUR_NS UINT64_C(3600000000000)   /* 3.6e12 */
#define REL_TOL 0.001                      /* 3 significant digits */

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* xorshift64*: a small fixed-seed generator so the property tests repeat. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* A value spread evenly in log scale over [1, top]. */
static uint64_t rng_log_value(uint64_t *state, uint64_t top)
{
    double u = (double)(rng_next(state) >> 11) / 9007199254740992.0; /* 2^53 */
    double v = exp(u * log((double)top));

    if (v < 1.0)
        return 1;
    if (v >= (double)top)
        return top;
    return (uint64_t)v;
}

static double rel_err(uint64_t reported, uint64_t truth)
{
    return fabs((double)reported - (double)truth) / (double)truth;
}

static hist *make(uint64_t lowest, uint64_t highest, int digits)
{
    hist *h = NULL;

    ck_assert_int_eq(hist_init(&h, lowest, highest, digits), LS_OK);
    ck_assert_ptr_nonnull(h);
    return h;
}

/* Two histograms report the same everything. */
static void assert_same_reports(const hist *a, const hist *b)
{
    static const double extra[] = {0.0, 0.001, 1.0, 25.0, 50.0, 75.0, 90.0,
                                   99.0, 99.9, 99.99, 99.999, 100.0};

    ck_assert_uint_eq(hist_count(a), hist_count(b));
    ck_assert_uint_eq(hist_min(a), hist_min(b));
    ck_assert_uint_eq(hist_max(a), hist_max(b));
    ck_assert_uint_eq(hist_clamped(a), hist_clamped(b));
    ck_assert_uint_eq(hist_dropped(a), hist_dropped(b));
    ck_assert_double_eq_tol(hist_mean(a), hist_mean(b),
                            1e-12 * (1.0 + fabs(hist_mean(b))));
    for (double p = 0.0; p <= 100.0; p += 0.5)
        ck_assert_uint_eq(hist_percentile(a, p), hist_percentile(b, p));
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        ck_assert_uint_eq(hist_percentile(a, extra[i]),
                          hist_percentile(b, extra[i]));
}

/* ------------------------------------------------------------------ */
/* Known answers                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_one_to_ten_thousand)
{
    hist *h = make(1, HOUR_NS, 3);

    for (uint64_t v = 1; v <= 10000; v++)
        hist_record(h, v);

    ck_assert_uint_eq(hist_count(h), 10000);
    ck_assert_uint_eq(hist_min(h), 1);

    uint64_t p50 = hist_percentile(h, 50.0);
    uint64_t p99 = hist_percentile(h, 99.0);
    uint64_t p100 = hist_percentile(h, 100.0);

    ck_assert_double_le(rel_err(p50, 5000), REL_TOL);
    ck_assert_double_le(rel_err(p99, 9900), REL_TOL);
    ck_assert_uint_ge(p50, 5000);
    ck_assert_uint_ge(p99, 9900);
    /* The bucket tops, by hand: 5000 is in 5000..5003 (width 4), 9900 in
     * 9896..9903 (width 8), 10000 in 10000..10007 (width 8). */
    ck_assert_uint_eq(p50, 5003);
    ck_assert_uint_eq(p99, 9903);
    ck_assert_uint_eq(hist_max(h), 10007);

    ck_assert_uint_eq(p100, hist_max(h));
    ck_assert_uint_ge(hist_max(h), 10000);
    ck_assert_double_le(rel_err(hist_max(h), 10000), REL_TOL);
    ck_assert_double_le(fabs(hist_mean(h) - 5000.5) / 5000.5, REL_TOL);
    ck_assert_uint_eq(hist_percentile(h, 0.0), 1);
    ck_assert_uint_eq(hist_clamped(h), 0);

    hist_destroy(&h);
}
END_TEST

/* The mean weighs each bucket by its middle: 10001 is in 10000..10007. */
START_TEST(test_mean_uses_bucket_middle)
{
    hist *h = make(1, HOUR_NS, 3);

    hist_record(h, 10001);
    ck_assert_double_eq(hist_mean(h), 10003.5);
    hist_record_n(h, 3, 3);                /* width 1: exact */
    ck_assert_double_eq(hist_mean(h), (10003.5 + 9.0) / 4.0);
    hist_destroy(&h);
}
END_TEST

START_TEST(test_empty_reports_zero)
{
    hist *h = make(1, HOUR_NS, 3);

    ck_assert_uint_eq(hist_count(h), 0);
    ck_assert_uint_eq(hist_min(h), 0);
    ck_assert_uint_eq(hist_max(h), 0);
    ck_assert_uint_eq(hist_percentile(h, 50.0), 0);
    ck_assert_uint_eq(hist_percentile(h, 100.0), 0);
    ck_assert_double_eq(hist_mean(h), 0.0);
    hist_destroy(&h);
}
END_TEST

START_TEST(test_percentile_argument_edges)
{
    hist *h = make(1, HOUR_NS, 3);

    for (uint64_t v = 100; v <= 200; v++)
        hist_record(h, v);
    ck_assert_uint_eq(hist_percentile(h, -5.0), hist_min(h));
    ck_assert_uint_eq(hist_percentile(h, NAN), hist_min(h));
    ck_assert_uint_eq(hist_percentile(h, 150.0), hist_max(h));
    ck_assert_uint_eq(hist_percentile(h, INFINITY), hist_max(h));
    ck_assert_uint_eq(hist_percentile(h, 0.0), 100);
    ck_assert_uint_eq(hist_percentile(h, 100.0), 200);
    /* 101 values: rank ceil(0.5 * 101) = 51 is the value 150. */
    ck_assert_uint_eq(hist_percentile(h, 50.0), 150);
    hist_destroy(&h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Precision as a property                                             */
/* ------------------------------------------------------------------ */

/* Records v alone and checks every report is within REL_TOL of v. */
static void check_single_value(hist *h, uint64_t v)
{
    hist_reset(h);
    hist_record(h, v);

    ck_assert_uint_eq(hist_count(h), 1);
    ck_assert_uint_le(hist_min(h), v);
    ck_assert_uint_ge(hist_max(h), v);
    ck_assert_double_le(rel_err(hist_min(h), v), REL_TOL);
    ck_assert_double_le(rel_err(hist_max(h), v), REL_TOL);
    ck_assert_double_le(rel_err(hist_percentile(h, 50.0), v), REL_TOL);
    ck_assert_double_le(rel_err(hist_percentile(h, 99.9), v), REL_TOL);
    ck_assert_double_le(fabs(hist_mean(h) - (double)v) / (double)v, REL_TOL);
}

START_TEST(test_single_value_precision_random)
{
    hist *h = make(1, HOUR_NS, 3);
    uint64_t state = UINT64_C(0x9E3779B97F4A7C15);

    for (int i = 0; i < 10000; i++)
        check_single_value(h, rng_log_value(&state, HOUR_NS));
    hist_destroy(&h);
}
END_TEST

START_TEST(test_single_value_precision_edges)
{
    hist *h = make(1, HOUR_NS, 3);

    for (uint64_t v = 1; v <= 5000; v++)
        check_single_value(h, v);
    for (unsigned k = 1; k < 42; k++) {
        uint64_t p = UINT64_C(1) << k;

        check_single_value(h, p - 1);
        check_single_value(h, p);
        check_single_value(h, p + 1);
    }
    check_single_value(h, HOUR_NS - 1);
    check_single_value(h, HOUR_NS);
    hist_destroy(&h);
}
END_TEST

/* Every digits setting keeps its promise, 10^-digits, on every value in a
 * dense low range and on a sparse high one. */
START_TEST(test_precision_each_digits)
{
    int digits = _i;
    double tol = pow(10.0, -digits);
    hist *h = make(1, UINT64_C(1) << 40, digits);
    uint64_t state = UINT64_C(12345) + (uint64_t)digits;

    for (int i = 0; i < 300000; i++) {
        uint64_t v = i < 200000 ? (uint64_t)i + 1
                                : rng_log_value(&state, UINT64_C(1) << 40);

        hist_reset(h);
        hist_record(h, v);
        ck_assert_uint_le(hist_min(h), v);
        ck_assert_uint_ge(hist_max(h), v);
        ck_assert_double_le(rel_err(hist_max(h), v), tol);
        ck_assert_double_le(rel_err(hist_min(h), v), tol);
    }
    hist_destroy(&h);
}
END_TEST

/* With lowest > 1 the unit is 2^floor(log2(lowest)): below about
 * lowest * 2 * 10^digits the error is bounded by that unit, not by
 * 10^-digits. */
START_TEST(test_precision_with_coarse_lowest)
{
    hist *h = make(1000, UINT64_C(1000000000), 3);
    uint64_t state = 77;

    for (int i = 0; i < 20000; i++) {
        uint64_t v = rng_log_value(&state, UINT64_C(1000000000));
        double bound = fmax(512.0, (double)v / 1000.0);

        hist_reset(h);
        hist_record(h, v);
        ck_assert_uint_le(hist_min(h), v);
        ck_assert_uint_ge(hist_max(h), v);
        ck_assert_double_lt((double)(hist_max(h) - v), bound);
        ck_assert_double_lt((double)(v - hist_min(h)), bound);
        if (v >= 2000000)
            ck_assert_double_le(rel_err(hist_max(h), v), REL_TOL);
    }
    hist_destroy(&h);
}
END_TEST

START_TEST(test_percentiles_monotone)
{
    hist *h = make(1, HOUR_NS, 3);
    uint64_t state = 4242;
    uint64_t prev = 0;

    for (int i = 0; i < 50000; i++)
        hist_record(h, rng_log_value(&state, HOUR_NS));
    ck_assert_uint_eq(hist_percentile(h, 0.0), hist_min(h));
    for (double p = 0.0; p <= 100.0; p += 0.25) {
        uint64_t q = hist_percentile(h, p);

        ck_assert_uint_ge(q, prev);
        prev = q;
    }
    ck_assert_uint_eq(prev, hist_max(h));
    hist_destroy(&h);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Merge and record_n                                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_merge_equals_union)
{
    hist *a = make(1, HOUR_NS, 3);
    hist *b = make(1, HOUR_NS, 3);
    hist *both = make(1, HOUR_NS, 3);
    uint64_t state = 2024;
    uint64_t in_b = 0;

    for (int i = 0; i < 20000; i++) {
        uint64_t v = rng_log_value(&state, HOUR_NS);

        hist_record(i % 3 ? a : b, v);
        in_b += i % 3 == 0;
        hist_record(both, v);
    }
    hist_record(b, HOUR_NS * 2);            /* a clamped one travels too */
    hist_record(both, HOUR_NS * 2);
    in_b++;

    ck_assert_int_eq(hist_merge(a, b), LS_OK);
    assert_same_reports(a, both);
    ck_assert_uint_eq(hist_count(b), in_b);  /* src untouched */
    ck_assert_uint_eq(hist_clamped(a), 1);

    hist_destroy(&a);
    hist_destroy(&b);
    hist_destroy(&both);
}
END_TEST

START_TEST(test_merge_into_empty_and_from_empty)
{
    hist *src = make(1, HOUR_NS, 3);
    hist *dst = make(1, HOUR_NS, 3);
    hist *none = make(1, HOUR_NS, 3);

    for (uint64_t v = 500; v < 90000; v += 7)
        hist_record(src, v);
    ck_assert_int_eq(hist_merge(dst, src), LS_OK);
    assert_same_reports(dst, src);
    ck_assert_int_eq(hist_merge(dst, none), LS_OK);
    assert_same_reports(dst, src);

    hist_destroy(&src);
    hist_destroy(&dst);
    hist_destroy(&none);
}
END_TEST

START_TEST(test_merge_with_itself_doubles)
{
    hist *h = make(1, HOUR_NS, 3);
    hist *twice = make(1, HOUR_NS, 3);

    for (uint64_t v = 1; v < 100000; v = v * 3 + 1) {
        hist_record(h, v);
        hist_record_n(twice, v, 2);
    }
    ck_assert_int_eq(hist_merge(h, h), LS_OK);
    assert_same_reports(h, twice);
    hist_destroy(&h);
    hist_destroy(&twice);
}
END_TEST

START_TEST(test_merge_rejects_other_config)
{
    hist *dst = make(1, HOUR_NS, 3);
    hist *lo = make(2, HOUR_NS, 3);
    hist *hi = make(1, HOUR_NS / 2, 3);
    hist *dig = make(1, HOUR_NS, 2);

    hist_record(dst, 123);
    hist_record(lo, 456);
    hist_record(hi, 456);
    hist_record(dig, 456);
    ck_assert_int_eq(hist_merge(dst, lo), LS_EINVAL);
    ck_assert_int_eq(hist_merge(dst, hi), LS_EINVAL);
    ck_assert_int_eq(hist_merge(dst, dig), LS_EINVAL);
    ck_assert_int_eq(hist_merge(dst, NULL), LS_EINVAL);
    ck_assert_int_eq(hist_merge(NULL, dst), LS_EINVAL);
    ck_assert_uint_eq(hist_count(dst), 1);
    ck_assert_uint_eq(hist_max(dst), 123);

    hist_destroy(&dst);
    hist_destroy(&lo);
    hist_destroy(&hi);
    hist_destroy(&dig);
}
END_TEST

START_TEST(test_record_n_equals_repeated_record)
{
    static const uint64_t values[] = {1, 2, 999, 1024, 2047, 2048, 5000,
                                      123456789, HOUR_NS, HOUR_NS + 5};
    static const uint64_t counts[] = {1, 2, 3, 17, 1000};
    hist *bulk = make(1, HOUR_NS, 3);
    hist *single = make(1, HOUR_NS, 3);

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (size_t j = 0; j < sizeof counts / sizeof counts[0]; j++) {
            hist_reset(bulk);
            hist_reset(single);
            hist_record(bulk, 77);           /* something else in there */
            hist_record(single, 77);
            hist_record_n(bulk, values[i], counts[j]);
            for (uint64_t k = 0; k < counts[j]; k++)
                hist_record(single, values[i]);
            assert_same_reports(bulk, single);
        }
    }
    hist_reset(bulk);
    hist_record_n(bulk, 42, 0);
    ck_assert_uint_eq(hist_count(bulk), 0);
    ck_assert_uint_eq(hist_max(bulk), 0);

    hist_destroy(&bulk);
    hist_destroy(&single);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_clamps_above_highest)
{
    uint64_t highest = 1000000;
    hist *h = make(1, highest, 3);
    hist *at_top = make(1, highest, 3);

    hist_record(h, highest + 1);
    hist_record(h, 5 * highest);
    hist_record_n(h, UINT64_MAX, 3);
    hist_record(h, highest);               /* equal is not clamped */
    hist_record_n(at_top, highest, 6);

    ck_assert_uint_eq(hist_count(h), 6);
    ck_assert_uint_eq(hist_clamped(h), 5);
    ck_assert_uint_eq(hist_max(h), hist_max(at_top));
    ck_assert_uint_ge(hist_max(h), highest);
    ck_assert_double_le(rel_err(hist_max(h), highest), REL_TOL);
    ck_assert_uint_eq(hist_percentile(h, 50.0), hist_max(at_top));

    hist_destroy(&h);
    hist_destroy(&at_top);
}
END_TEST

START_TEST(test_full_uint64_range)
{
    hist *h = make(1, UINT64_MAX, 3);

    hist_record(h, UINT64_MAX);
    ck_assert_uint_eq(hist_max(h), UINT64_MAX);
    ck_assert_double_le(rel_err(hist_min(h), UINT64_MAX), REL_TOL);
    hist_record(h, 0);
    ck_assert_uint_eq(hist_min(h), 0);
    ck_assert_uint_eq(hist_clamped(h), 0);
    ck_assert_uint_eq(hist_count(h), 2);
    hist_destroy(&h);
}
END_TEST

START_TEST(test_full_bucket_drops)
{
    hist *h = make(1, HOUR_NS, 3);
    hist *other = make(1, HOUR_NS, 3);

    hist_record_n(h, 1000, UINT32_MAX);
    ck_assert_uint_eq(hist_dropped(h), 0);
    hist_record(h, 1000);
    ck_assert_uint_eq(hist_count(h), UINT32_MAX);
    ck_assert_uint_eq(hist_dropped(h), 1);
    hist_record(h, 1001);                  /* another bucket still counts */
    ck_assert_uint_eq(hist_count(h), (uint64_t)UINT32_MAX + 1);

    hist_record_n(other, 1000, 10);
    ck_assert_int_eq(hist_merge(other, h), LS_OK);
    ck_assert_uint_eq(hist_count(other), (uint64_t)UINT32_MAX + 1);
    ck_assert_uint_eq(hist_dropped(other), 11);

    hist_reset(h);
    hist_record_n(h, 7, UINT64_MAX);
    ck_assert_uint_eq(hist_count(h), UINT32_MAX);
    ck_assert_uint_eq(hist_dropped(h), UINT64_MAX - UINT32_MAX);
    ck_assert_uint_eq(hist_percentile(h, 99.0), 7);

    hist_destroy(&h);
    hist_destroy(&other);
}
END_TEST

START_TEST(test_init_rejects_bad_args)
{
    static char junk;
    hist *h = (hist *)(void *)&junk;       /* not NULL: must be cleared */

    ck_assert_int_eq(hist_init(&h, 10, 19, 3), LS_EINVAL);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(hist_init(&h, 0, 1000, 3), LS_EINVAL);
    ck_assert_int_eq(hist_init(&h, 1, 1, 3), LS_EINVAL);
    ck_assert_int_eq(hist_init(&h, UINT64_MAX / 2 + 1, UINT64_MAX, 1),
                     LS_EINVAL);
    ck_assert_int_eq(hist_init(&h, 1, HOUR_NS, 0), LS_EINVAL);
    ck_assert_int_eq(hist_init(&h, 1, HOUR_NS, 6), LS_EINVAL);
    ck_assert_int_eq(hist_init(&h, 1, HOUR_NS, -1), LS_EINVAL);
    /* 5 digits need 2^18 units in bucket 0: a unit of 2^46 does not fit. */
    ck_assert_int_eq(hist_init(&h, UINT64_C(1) << 46, UINT64_MAX, 5),
                     LS_EINVAL);
    ck_assert_ptr_null(h);
    ck_assert_int_eq(hist_init(NULL, 1, HOUR_NS, 3), LS_EINVAL);

    ck_assert_int_eq(hist_init(&h, 10, 20, 3), LS_OK);  /* exactly 2x */
    hist_destroy(&h);
    ck_assert_int_eq(hist_init(&h, UINT64_C(1) << 45, UINT64_MAX, 5), LS_OK);
    hist_destroy(&h);
    for (int d = 1; d <= 5; d++) {
        ck_assert_int_eq(hist_init(&h, 1, HOUR_NS, d), LS_OK);
        hist_destroy(&h);
    }
}
END_TEST

START_TEST(test_destroy_twice_is_harmless)
{
    hist *h = make(1, HOUR_NS, 3);

    hist_destroy(&h);
    ck_assert_ptr_null(h);
    hist_destroy(&h);
    hist_destroy(NULL);
}
END_TEST

START_TEST(test_reset_empties)
{
    hist *h = make(1, 1000000, 3);
    hist *fresh = make(1, 1000000, 3);

    for (uint64_t v = 1; v < 2000000; v += 997)
        hist_record(h, v);
    ck_assert_uint_gt(hist_clamped(h), 0);
    hist_reset(h);
    assert_same_reports(h, fresh);
    ck_assert_uint_eq(hist_count(h), 0);
    ck_assert_uint_eq(hist_max(h), 0);

    hist_record(h, 31337);
    hist_record(fresh, 31337);
    assert_same_reports(h, fresh);

    hist_destroy(&h);
    hist_destroy(&fresh);
}
END_TEST

START_TEST(test_footprint_hour_in_ns)
{
    hist *h = make(1, HOUR_NS, 3);
    size_t bytes = hist_footprint(h);

    /* 33,421 four-byte slots plus the header. */
    ck_assert_uint_ge(bytes, 33421u * 4u);
    ck_assert_uint_lt(bytes, 33421u * 4u + 256u);
    ck_assert_uint_lt(bytes, 200u * 1024u);
    hist_destroy(&h);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The Prometheus latency buckets (stats.h, rendered by metrics.c) start
 * at 10 us, rise strictly, and count a request in the first bucket whose
 * bound it does not exceed. */
START_TEST(test_prometheus_latency_buckets_start_at_10us)
{
    ck_assert_double_eq(stats_latency_bounds[0], 0.00001);
    for (int b = 1; b < STATS_LATENCY_BUCKETS; b++)
        ck_assert(stats_latency_bounds[b] > stats_latency_bounds[b - 1]);
    ck_assert(stats_latency_bounds[STATS_LATENCY_BUCKETS - 1] >= 2.5);
    stats *st = calloc(1, sizeof *st);
    ck_assert_int_eq(stats_init(st, 1, 0), LS_OK);
    stats_request(st, 0, 1, 4000);    /* 4 us  -> le 1e-05 */
    stats_request(st, 0, 1, 10000);   /* 10 us -> le 1e-05 (bounds are inclusive) */
    stats_request(st, 0, 1, 30000);   /* 30 us -> le 5e-05 */
    stats_request(st, 0, 1, 200000);  /* 200 us -> le 0.00025 */
    ck_assert_uint_eq(st->latency_buckets[0][0], 2);
    ck_assert_uint_eq(st->latency_buckets[0][1], 0);
    ck_assert_uint_eq(st->latency_buckets[0][2], 1);
    ck_assert_uint_eq(st->latency_buckets[0][4], 1);
    /* the HDR histogram behind the percentiles is unchanged */
    ck_assert_uint_eq(hist_count(st->latency[0]), 4);
    stats_destroy(st);
    free(st);
}
END_TEST

static Suite *histogram_suite(void)
{
    Suite *s = suite_create("histogram");
    TCase *known = tcase_create("known");
    TCase *prop = tcase_create("precision");
    TCase *combine = tcase_create("combine");
    TCase *limits = tcase_create("limits");

    tcase_add_test(known, test_one_to_ten_thousand);
    tcase_add_test(known, test_mean_uses_bucket_middle);
    tcase_add_test(known, test_empty_reports_zero);
    tcase_add_test(known, test_percentile_argument_edges);
    suite_add_tcase(s, known);

    tcase_set_timeout(prop, 120);
    tcase_add_test(prop, test_single_value_precision_random);
    tcase_add_test(prop, test_single_value_precision_edges);
    tcase_add_loop_test(prop, test_precision_each_digits, 1, 6);
    tcase_add_test(prop, test_precision_with_coarse_lowest);
    tcase_add_test(prop, test_percentiles_monotone);
    suite_add_tcase(s, prop);

    tcase_set_timeout(combine, 60);
    tcase_add_test(combine, test_merge_equals_union);
    tcase_add_test(combine, test_merge_into_empty_and_from_empty);
    tcase_add_test(combine, test_merge_with_itself_doubles);
    tcase_add_test(combine, test_merge_rejects_other_config);
    tcase_add_test(combine, test_record_n_equals_repeated_record);
    suite_add_tcase(s, combine);

    tcase_add_test(limits, test_clamps_above_highest);
    tcase_add_test(limits, test_full_uint64_range);
    tcase_add_test(limits, test_full_bucket_drops);
    tcase_add_test(limits, test_init_rejects_bad_args);
    tcase_add_test(limits, test_destroy_twice_is_harmless);
    tcase_add_test(limits, test_reset_empties);
    tcase_add_test(limits, test_footprint_hour_in_ns);
    tcase_add_test(limits, test_prometheus_latency_buckets_start_at_10us);
    suite_add_tcase(s, limits);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(histogram_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
