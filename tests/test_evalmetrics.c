/* test_evalmetrics.c -- Check suite for the hold-out metrics (evalmetrics.h).
 *
 * Small examples worked out by hand for each metric -- AUC with and
 * without ties, log loss including the clip, Brier score, lift at a cut
 * that falls inside a tie group, calibration bins of unequal size and
 * across a tie -- plus AUC against a brute-force pair count on many tied
 * pseudo-random scores, independence from row order, the paired AUC
 * difference and its DeLong error against placement values counted pair
 * by pair, and every error return.  Exits 1 on any failure. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "evalmetrics.h"
#include "leadscore/error.h"

#define TOL 1e-12
#define N_OF(a) (sizeof (a) / sizeof (a)[0])

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

/* ------------------------------------------------------------------ */
/* AUC                                                                 */
/* ------------------------------------------------------------------ */

/* Positive 0.35 beats negative 0.1 but not 0.4; positive 0.8 beats both:
 * 3 of 4 pairs. */
START_TEST(test_auc_hand_example)
{
    const double s[] = {0.1, 0.4, 0.35, 0.8};
    const uint8_t y[] = {0, 0, 1, 1};
    double auc = -1.0;

    ck_assert_int_eq(evalm_auc(s, y, 4, &auc), LS_OK);
    ck_assert_double_eq_tol(auc, 0.75, TOL);
}
END_TEST

/* Positive 0.5 ties negative 0.5 (1/2) and beats 0.2 (1); positive 0.9
 * beats both (2): 3.5 of 4 pairs.  All scores equal: 1/2. */
START_TEST(test_auc_ties)
{
    const double s[] = {0.5, 0.5, 0.2, 0.9}, flat[] = {0.3, 0.3, 0.3};
    const double s_perm[] = {0.9, 0.5, 0.2, 0.5};
    const uint8_t y[] = {1, 0, 0, 1}, yflat[] = {1, 0, 1};
    const uint8_t y_perm[] = {1, 0, 0, 1};
    double auc = -1.0;

    ck_assert_int_eq(evalm_auc(s, y, 4, &auc), LS_OK);
    ck_assert_double_eq_tol(auc, 0.875, TOL);
    ck_assert_int_eq(evalm_auc(s_perm, y_perm, 4, &auc), LS_OK);
    ck_assert_double_eq_tol(auc, 0.875, TOL);
    ck_assert_int_eq(evalm_auc(flat, yflat, 3, &auc), LS_OK);
    ck_assert_double_eq_tol(auc, 0.5, TOL);
}
END_TEST

START_TEST(test_auc_perfect_and_reversed)
{
    const double s[] = {-3.0, 0.1, 0.2, 7.5, 9.0};
    const uint8_t up[] = {0, 0, 1, 1, 1}, down[] = {1, 1, 1, 0, 0};
    double auc = -1.0;

    ck_assert_int_eq(evalm_auc(s, up, 5, &auc), LS_OK);
    ck_assert_double_eq(auc, 1.0);
    ck_assert_int_eq(evalm_auc(s, down, 5, &auc), LS_OK);
    ck_assert_double_eq(auc, 0.0);
}
END_TEST

/* 3000 scores on a 20-value grid (so nearly every score is tied) against
 * the definition: count every (positive, negative) pair. */
START_TEST(test_auc_matches_pair_count)
{
    enum { N = 3000 };
    static double s[N];
    static uint8_t y[N];
    uint64_t st = 2024;
    double wins = 0.0, npos = 0.0, auc;

    for (int i = 0; i < N; i++) {
        int level = (int)(rng_next(&st) % 20);
        s[i] = level / 20.0;
        y[i] = (uint8_t)(rng_next(&st) % 100 < (uint64_t)(20 + 3 * level));
        npos += y[i];
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            if (y[i] && !y[j])
                wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    ck_assert_int_eq(evalm_auc(s, y, N, &auc), LS_OK);
    ck_assert_double_eq_tol(auc, wins / (npos * (N - npos)), TOL);
    ck_assert(auc > 0.6 && auc < 0.9);
}
END_TEST

START_TEST(test_auc_rejects_bad_input)
{
    const double s[] = {0.1, 0.2, 0.3}, nan_s[] = {0.1, NAN, 0.3};
    const double inf_s[] = {0.1, INFINITY, 0.3};
    const uint8_t y[] = {0, 1, 1}, zeros[] = {0, 0, 0}, ones[] = {1, 1, 1};
    const uint8_t two[] = {0, 2, 1};
    double auc = 42.0;

    ck_assert_int_eq(evalm_auc(s, zeros, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(s, ones, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(s, two, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(nan_s, y, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(inf_s, y, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(NULL, y, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(s, NULL, 3, &auc), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(s, y, 3, NULL), LS_EINVAL);
    ck_assert_int_eq(evalm_auc(s, y, 0, &auc), LS_EINVAL);
    ck_assert_double_eq(auc, 42.0);                 /* untouched */
}
END_TEST

/* ------------------------------------------------------------------ */
/* Log loss and Brier score                                            */
/* ------------------------------------------------------------------ */

/* -(ln 0.9 + ln 0.8 + ln 0.4 + ln 0.5) / 4 = 0.484485494851534 */
START_TEST(test_logloss_hand_example)
{
    const double p[] = {0.9, 0.2, 0.6, 0.5};
    const uint8_t y[] = {1, 0, 0, 1};
    double ll = -1.0;

    ck_assert_int_eq(evalm_logloss(p, y, 4, &ll), LS_OK);
    ck_assert_double_eq_tol(ll, 0.484485494851534, TOL);
    ck_assert_double_eq_tol(ll, -(log(0.9) + log(0.8) + log(0.4) + log(0.5)) / 4, TOL);
}
END_TEST

/* A sure miss costs -ln(1e-15) = 34.538776394910684, not infinity; a sure
 * hit costs about 1e-15. */
START_TEST(test_logloss_clips)
{
    const double miss[] = {0.0, 1.0}, hit[] = {1.0, 0.0};
    const uint8_t y[] = {1, 0};
    double ll = -1.0;

    ck_assert_int_eq(evalm_logloss(miss, y, 2, &ll), LS_OK);
    ck_assert_double_eq_tol(ll, 34.538776394910684, 1e-9);
    ck_assert_int_eq(evalm_logloss(hit, y, 2, &ll), LS_OK);
    ck_assert(ll >= 0.0 && ll < 1e-14);
}
END_TEST

/* (0.1^2 + 0.2^2 + 0.6^2 + 0.5^2) / 4 = 0.66 / 4 = 0.165 */
START_TEST(test_brier_hand_example)
{
    const double p[] = {0.9, 0.2, 0.6, 0.5};
    const uint8_t y[] = {1, 0, 0, 1}, one[] = {1};
    double b = -1.0;

    ck_assert_int_eq(evalm_brier(p, y, 4, &b), LS_OK);
    ck_assert_double_eq_tol(b, 0.165, TOL);
    ck_assert_int_eq(evalm_brier(p, one, 1, &b), LS_OK);   /* one class is fine */
    ck_assert_double_eq_tol(b, 0.01, TOL);
}
END_TEST

START_TEST(test_probability_metrics_reject_bad_input)
{
    const double above[] = {0.5, 1.5}, below[] = {-0.1, 0.5}, nan_p[] = {NAN, 0.5};
    const double ok[] = {0.5, 0.5};
    const uint8_t y[] = {0, 1}, two[] = {0, 2};
    double r = 42.0;

    ck_assert_int_eq(evalm_logloss(above, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(below, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(nan_p, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(ok, two, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(ok, y, 0, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(NULL, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss(ok, y, 2, NULL), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(above, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(below, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(nan_p, y, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(ok, two, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(ok, NULL, 2, &r), LS_EINVAL);
    ck_assert_int_eq(evalm_brier(ok, y, 2, NULL), LS_EINVAL);
    ck_assert_double_eq(r, 42.0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lift                                                                */
/* ------------------------------------------------------------------ */

/* Scores 1..10 (given in mixed order), positives at 10, 9, 5 and 2: the
 * overall rate is 0.4.  Top 20% = {10, 9}: rate 1, lift 2.5.  Top 30% =
 * {10, 9, 8}: rate 2/3, lift 5/3; 25% rounds up to the same 3 rows. */
START_TEST(test_lift_hand_example)
{
    const double s[] = {3, 10, 1, 5, 8, 2, 9, 4, 7, 6};
    const uint8_t y[] = {0, 1, 0, 1, 0, 1, 1, 0, 0, 0};
    double lift = -1.0;

    ck_assert_int_eq(evalm_lift_top(s, y, 10, 0.2, &lift), LS_OK);
    ck_assert_double_eq_tol(lift, 2.5, TOL);
    ck_assert_int_eq(evalm_lift_top(s, y, 10, 0.3, &lift), LS_OK);
    ck_assert_double_eq_tol(lift, 5.0 / 3.0, TOL);
    ck_assert_int_eq(evalm_lift_top(s, y, 10, 0.25, &lift), LS_OK);
    ck_assert_double_eq_tol(lift, 5.0 / 3.0, TOL);
    ck_assert_int_eq(evalm_lift_top(s, y, 10, 1.0, &lift), LS_OK);
    ck_assert_double_eq_tol(lift, 1.0, TOL);
    ck_assert_int_eq(evalm_lift_top(s, y, 10, 0.01, &lift), LS_OK);  /* 1 row */
    ck_assert_double_eq_tol(lift, 2.5, TOL);
}
END_TEST

/* 0.07 * 100 is 7.000000000000001 in doubles; the top must still be 7
 * rows.  Scores 0..99, positives the top 7 and the bottom 7: overall rate
 * 0.14, top-7 rate 1, lift 1 / 0.14 (an 8-row top would give 6.25). */
START_TEST(test_lift_fraction_rounding)
{
    double s[100];
    uint8_t y[100];
    double lift = -1.0;

    for (int i = 0; i < 100; i++) {
        s[i] = i;
        y[i] = i >= 93 || i < 7;
    }
    ck_assert_int_eq(evalm_lift_top(s, y, 100, 0.07, &lift), LS_OK);
    ck_assert_double_eq_tol(lift, 1.0 / 0.14, 1e-9);
}
END_TEST

/* Score 9 (positive), four at 5 (one positive), five at 1 (one positive):
 * overall rate 0.3.  The top 3 are the 9 and two of the four 5s, each worth
 * the group's rate 1/4: 1.5 expected positives, rate 0.5, lift 5/3 --
 * whatever order the tied rows come in. */
START_TEST(test_lift_cut_inside_ties)
{
    const double s[] = {9, 5, 5, 5, 5, 1, 1, 1, 1, 1};
    const uint8_t ya[] = {1, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    const uint8_t yb[] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    double la = -1.0, lb = -2.0;

    ck_assert_int_eq(evalm_lift_top(s, ya, 10, 0.3, &la), LS_OK);
    ck_assert_int_eq(evalm_lift_top(s, yb, 10, 0.3, &lb), LS_OK);
    ck_assert_double_eq_tol(la, 5.0 / 3.0, TOL);
    ck_assert_double_eq_tol(lb, 5.0 / 3.0, TOL);
}
END_TEST

START_TEST(test_lift_rejects_bad_input)
{
    const double s[] = {0.1, 0.2, 0.3};
    const uint8_t y[] = {0, 1, 1}, zeros[] = {0, 0, 0};
    double lift = 42.0;

    ck_assert_int_eq(evalm_lift_top(s, y, 3, 0.0, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, y, 3, -0.1, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, y, 3, 1.5, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, y, 3, NAN, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, zeros, 3, 0.5, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, y, 0, 0.5, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(NULL, y, 3, 0.5, &lift), LS_EINVAL);
    ck_assert_int_eq(evalm_lift_top(s, y, 3, 0.5, NULL), LS_EINVAL);
    ck_assert_double_eq(lift, 42.0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Calibration                                                         */
/* ------------------------------------------------------------------ */

/* Ten scores in three bins of 4, 3, 3 (the remainder goes to the lowest):
 *   {.05 .1 .2 .3}  labels 0 0 1 0 -> mean 0.1625, rate 1/4
 *   {.4 .5 .6}      labels 0 1 1   -> mean 0.5,    rate 2/3
 *   {.7 .8 .9}      labels 1 1 1   -> mean 0.8,    rate 1 */
START_TEST(test_calibration_hand_example)
{
    const double s[] = {0.6, 0.05, 0.9, 0.3, 0.5, 0.1, 0.8, 0.2, 0.7, 0.4};
    const uint8_t y[] = {1, 0, 1, 0, 1, 0, 1, 1, 1, 0};
    const size_t count[] = {4, 3, 3};
    const double mean[] = {0.1625, 0.5, 0.8}, rate[] = {0.25, 2.0 / 3.0, 1.0};
    evalm_calib_row rows[3];

    ck_assert_int_eq(evalm_calibration(s, y, 10, 3, rows), LS_OK);
    for (int b = 0; b < 3; b++) {
        ck_assert_uint_eq(rows[b].count, count[b]);
        ck_assert_double_eq_tol(rows[b].mean_predicted, mean[b], TOL);
        ck_assert_double_eq_tol(rows[b].observed_rate, rate[b], TOL);
    }
}
END_TEST

/* Four rows at 0.2 (one positive) and two at 0.8 (both positive) in two
 * bins of 3: the boundary splits the 0.2 group, whose rows each count 1/4.
 *   bin 0: three 0.2s            -> mean 0.2, rate 0.75 / 3 = 0.25
 *   bin 1: one 0.2 and two 0.8s  -> mean 0.6, rate (0.25 + 2) / 3 = 0.75 */
START_TEST(test_calibration_boundary_in_ties)
{
    const double s[] = {0.2, 0.8, 0.2, 0.2, 0.8, 0.2};
    const uint8_t ya[] = {1, 1, 0, 0, 1, 0}, yb[] = {0, 1, 0, 0, 1, 1};
    evalm_calib_row a[2], b[2];

    ck_assert_int_eq(evalm_calibration(s, ya, 6, 2, a), LS_OK);
    ck_assert_int_eq(evalm_calibration(s, yb, 6, 2, b), LS_OK);
    for (int k = 0; k < 2; k++) {
        ck_assert_uint_eq(a[k].count, 3);
        ck_assert_double_eq_tol(a[k].mean_predicted, k ? 0.6 : 0.2, TOL);
        ck_assert_double_eq_tol(a[k].observed_rate, k ? 0.75 : 0.25, TOL);
        ck_assert_double_eq_tol(b[k].observed_rate, a[k].observed_rate, TOL);
    }
}
END_TEST

/* Deciles of 1000 distinct scores: 100 rows each, increasing means, and
 * the table accounts for every positive. */
START_TEST(test_calibration_deciles)
{
    enum { N = 1000 };
    static double s[N];
    static uint8_t y[N];
    evalm_calib_row rows[10];
    uint64_t st = 77;
    double npos = 0.0, total = 0.0;

    for (int i = 0; i < N; i++) {
        s[i] = (double)((i * 7919) % N) / N;    /* a permutation of k / N */
        y[i] = (uint8_t)((double)(rng_next(&st) >> 11) / 9007199254740992.0 < s[i]);
        npos += y[i];
    }
    ck_assert_int_eq(evalm_calibration(s, y, N, 10, rows), LS_OK);
    for (int b = 0; b < 10; b++) {
        ck_assert_uint_eq(rows[b].count, 100);
        ck_assert_double_eq_tol(rows[b].mean_predicted, b / 10.0 + 0.0495, 1e-12);
        total += rows[b].observed_rate * (double)rows[b].count;
    }
    ck_assert_double_eq_tol(total, npos, 1e-9);
}
END_TEST

START_TEST(test_calibration_rejects_bad_input)
{
    const double s[] = {0.1, 0.2, 0.3}, nan_s[] = {0.1, NAN, 0.3};
    const uint8_t y[] = {0, 1, 1}, two[] = {0, 1, 2};
    evalm_calib_row rows[4] = {{.count = 42}};

    ck_assert_int_eq(evalm_calibration(s, y, 3, 0, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(s, y, 3, 4, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(nan_s, y, 3, 2, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(s, two, 3, 2, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(s, y, 0, 1, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(NULL, y, 3, 2, rows), LS_EINVAL);
    ck_assert_int_eq(evalm_calibration(s, y, 3, 2, NULL), LS_EINVAL);
    ck_assert_uint_eq(rows[0].count, 42);
    ck_assert_int_eq(evalm_calibration(s, y, 3, 3, rows), LS_OK);  /* bins == n */
    ck_assert_uint_eq(rows[2].count, 1);
    ck_assert_double_eq(rows[2].mean_predicted, 0.3);
    ck_assert_double_eq(rows[0].observed_rate, 0.0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Paired AUC difference (DeLong)                                      */
/* ------------------------------------------------------------------ */

/* Placement values by pair count: for a positive the share of negatives
 * it beats, for a negative the share of positives that beat it. */
static void brute_placements(const double *s, const uint8_t *y, int n, double *place)
{
    for (int i = 0; i < n; i++) {
        double w = 0.0, other = 0.0;
        for (int j = 0; j < n; j++) {
            if (y[j] == y[i])
                continue;
            other++;
            double hi = y[i] ? s[i] : s[j], lo = y[i] ? s[j] : s[i];
            w += hi > lo ? 1.0 : hi == lo ? 0.5 : 0.0;
        }
        place[i] = w / other;
    }
}

START_TEST(test_auc_diff_matches_delong_by_pair_count)
{
    enum { N = 1500 };
    static double a[N], b[N], pa[N], pb[N];
    static uint8_t y[N];
    uint64_t st = 77;
    double diff, se, auc_a, auc_b;

    for (int i = 0; i < N; i++) {
        int level = (int)(rng_next(&st) % 20);
        y[i] = (uint8_t)(rng_next(&st) % 100 < (uint64_t)(20 + 3 * level));
        a[i] = level / 20.0;                                          /* ties */
        b[i] = level / 20.0 + (double)(rng_next(&st) % 1000) / 4000.0; /* a noisier copy */
    }
    brute_placements(a, y, N, pa);
    brute_placements(b, y, N, pb);
    double m[2] = {0, 0}, ss[2] = {0, 0}, cnt[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        m[y[i]] += pa[i] - pb[i];
        cnt[y[i]]++;
    }
    for (int c = 0; c < 2; c++)
        m[c] /= cnt[c];
    for (int i = 0; i < N; i++) {
        double d = pa[i] - pb[i] - m[y[i]];
        ss[y[i]] += d * d;
    }
    double want_se = sqrt(ss[1] / (cnt[1] - 1) / cnt[1] + ss[0] / (cnt[0] - 1) / cnt[0]);
    ck_assert_int_eq(evalm_auc_diff(a, b, y, N, &diff, &se), LS_OK);
    ck_assert_int_eq(evalm_auc(a, y, N, &auc_a), LS_OK);
    ck_assert_int_eq(evalm_auc(b, y, N, &auc_b), LS_OK);
    ck_assert_double_eq_tol(diff, auc_a - auc_b, 1e-9);
    ck_assert_double_eq_tol(diff, m[1], 1e-9);
    ck_assert_double_eq_tol(diff, m[0], 1e-9);
    ck_assert_double_eq_tol(se, want_se, 1e-9);
    ck_assert(se > 0.001 && se < 0.05);
    /* the difference the other way round, the same error */
    double back, back_se;
    ck_assert_int_eq(evalm_auc_diff(b, a, y, N, &back, &back_se), LS_OK);
    ck_assert_double_eq_tol(back, -diff, 1e-12);
    ck_assert_double_eq_tol(back_se, se, 1e-12);
    /* a scoring against itself, or a monotone transform of it: no difference, no error */
    for (int i = 0; i < N; i++)
        b[i] = 3.0 * a[i] + 1.0;
    ck_assert_int_eq(evalm_auc_diff(a, b, y, N, &diff, &se), LS_OK);
    ck_assert_double_eq_tol(diff, 0.0, TOL);
    ck_assert_double_eq_tol(se, 0.0, TOL);
}
END_TEST

START_TEST(test_auc_diff_rejects_bad_input)
{
    double s[] = {0.1, 0.5, 0.9}, nan_s[] = {0.1, NAN, 0.9}, d, se;
    uint8_t y[] = {0, 1, 1}, ones[] = {1, 1, 1}, two[] = {0, 2, 1};

    ck_assert_int_eq(evalm_auc_diff(s, s, ones, 3, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(s, s, two, 3, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(s, nan_s, y, 3, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(NULL, s, y, 3, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(s, s, y, 3, NULL, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(s, s, y, 3, &d, NULL), LS_EINVAL);
    ck_assert_int_eq(evalm_auc_diff(s, s, y, 0, &d, &se), LS_EINVAL);
    /* one negative: its class adds no variance, the positives' does --
     * AUC 1 vs 0.5; the positives' placement differences are 1 and 0
     * (variance 0.5, over 2 rows: 0.25) */
    double a[] = {0.1, 0.5, 0.9}, b[] = {0.6, 0.5, 0.9};
    ck_assert_int_eq(evalm_auc_diff(a, b, y, 3, &d, &se), LS_OK);
    ck_assert_double_eq_tol(d, 0.5, TOL);
    ck_assert_double_eq_tol(se, 0.5, TOL);
}
END_TEST


/* Per-row log-loss differences ln 2 - ln(4/3) and ln 2 - ln 4 (mean, and
 * the standard error of the mean of two rows: |d1 - d2| / 2). */
START_TEST(test_logloss_diff_hand_example)
{
    double a[] = {0.5, 0.5}, b[] = {0.25, 0.25}, d, se;
    uint8_t y[] = {0, 1};
    double d0 = log(2.0) - log(4.0 / 3.0), d1 = log(2.0) - log(4.0);

    ck_assert_int_eq(evalm_logloss_diff(a, b, y, 2, &d, &se), LS_OK);
    ck_assert_double_eq_tol(d, (d0 + d1) / 2, TOL);
    ck_assert_double_eq_tol(se, fabs(d0 - d1) / 2, TOL);
    ck_assert_int_eq(evalm_logloss_diff(a, a, y, 2, &d, &se), LS_OK);
    ck_assert_double_eq_tol(d, 0.0, TOL);
    ck_assert_double_eq_tol(se, 0.0, TOL);
    ck_assert_int_eq(evalm_logloss_diff(a, b, y, 1, &d, &se), LS_OK);
    ck_assert_double_eq_tol(se, 0.0, TOL);
    double big[] = {0.5, 1.5};
    ck_assert_int_eq(evalm_logloss_diff(a, big, y, 2, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss_diff(a, b, y, 0, &d, &se), LS_EINVAL);
    ck_assert_int_eq(evalm_logloss_diff(a, b, y, 2, NULL, &se), LS_EINVAL);
}
END_TEST


static Suite *evalmetrics_suite(void)
{
    Suite *s = suite_create("evalmetrics");
    TCase *auc = tcase_create("auc");
    TCase *prob = tcase_create("probability");
    TCase *lift = tcase_create("lift");
    TCase *calib = tcase_create("calibration");

    tcase_set_timeout(auc, 60);
    tcase_add_test(auc, test_auc_hand_example);
    tcase_add_test(auc, test_auc_ties);
    tcase_add_test(auc, test_auc_perfect_and_reversed);
    tcase_add_test(auc, test_auc_matches_pair_count);
    tcase_add_test(auc, test_auc_rejects_bad_input);
    tcase_add_test(auc, test_auc_diff_matches_delong_by_pair_count);
    tcase_add_test(auc, test_auc_diff_rejects_bad_input);
    suite_add_tcase(s, auc);

    tcase_add_test(prob, test_logloss_hand_example);
    tcase_add_test(prob, test_logloss_clips);
    tcase_add_test(prob, test_brier_hand_example);
    tcase_add_test(prob, test_probability_metrics_reject_bad_input);
    tcase_add_test(prob, test_logloss_diff_hand_example);
    suite_add_tcase(s, prob);

    tcase_add_test(lift, test_lift_hand_example);
    tcase_add_test(lift, test_lift_fraction_rounding);
    tcase_add_test(lift, test_lift_cut_inside_ties);
    tcase_add_test(lift, test_lift_rejects_bad_input);
    suite_add_tcase(s, lift);

    tcase_add_test(calib, test_calibration_hand_example);
    tcase_add_test(calib, test_calibration_boundary_in_ties);
    tcase_add_test(calib, test_calibration_deciles);
    tcase_add_test(calib, test_calibration_rejects_bad_input);
    suite_add_tcase(s, calib);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(evalmetrics_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
