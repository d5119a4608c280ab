/* test_clv.c -- Check suite for clv.c: 2F1, BG/NBD, Gamma-Gamma, value.
 *
 * Closed forms of 2F1, hand-worked BG/NBD and Gamma-Gamma cases, and the
 * published CDNOW figures (Fader, Hardie & Lee 2005): the BG/NBD and
 * Gamma-Gamma maximum-likelihood estimates and the worked 39-week
 * forecast.  The data directory comes from $LEADSCORE_DATA_DIR, else the
 * compile-time LS_SHARED_DATA_DIR, else /work/shared/data; the CSV files
 * are in its cdnow/ subdirectory.  Exit status 1 if any test fails. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clv.h"
#include "leadscore/error.h"

#ifndef LS_SHARED_DATA_DIR
#define LS_SHARED_DATA_DIR "../shared/data"
#endif
#define LAST_RESORT_DATA_DIR "/work/shared/data"

#define SUMMARY_CSV "cdnow/cdnow_customers_summary.csv"
#define SPEND_CSV "cdnow/cdnow_customers_summary_with_transactions.csv"
#define MAX_COLS 5

/* The published BG/NBD estimates for CDNOW, weeks. */
static const clv_bgnbd PUBLISHED = {0.243, 4.414, 0.793, 2.426};

/* ========================================================================
 * Helpers
 * ===================================================================== */

#define ck_assert_close(got, want, tol)                                      \
    ck_assert_msg(fabs((got) - (want)) <= (tol),                            \
                  "%s = %.12g, want %.12g +- %g", #got, (double)(got),      \
                  (double)(want), (double)(tol))

#define ck_assert_rel(got, want, rel)                                        \
    ck_assert_msg(fabs((got) - (want)) <= (rel) * fabs(want),               \
                  "%s = %.15g, want %.15g (rel %g)", #got, (double)(got),   \
                  (double)(want), (double)(rel))

/* A numeric CSV with a header line, read column-wise. */
typedef struct {
    double *col[MAX_COLS];
    size_t n;
} table;

static void table_free(table *t)
{
    int c;

    for (c = 0; c < MAX_COLS; c++) {
        free(t->col[c]);
        t->col[c] = NULL;
    }
    t->n = 0;
}

/* fopen(dir/name) for the first data directory that has it. */
static FILE *open_data(const char *name)
{
    const char *env = getenv("LEADSCORE_DATA_DIR");
    const char *dirs[] = {LS_SHARED_DATA_DIR, LAST_RESORT_DATA_DIR};
    char path[4096];
    size_t i;

    if (env != NULL && env[0] != '\0') {
        snprintf(path, sizeof path, "%s/%s", env, name);
        return fopen(path, "r");
    }
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        FILE *f;
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        f = fopen(path, "r");
        if (f != NULL)
            return f;
    }
    return NULL;
}

/* Parse one line of ncols comma-separated numbers into row[]. */
static int parse_row(const char *line, int ncols, double *row)
{
    const char *p = line;
    int c;

    for (c = 0; c < ncols; c++) {
        char *end;
        row[c] = strtod(p, &end);
        if (end == p)
            return 0;
        p = end;
        if (c + 1 < ncols) {
            if (*p != ',')
                return 0;
            p++;
        }
    }
    return 1;
}

/* Load name (ncols numeric columns, one header line) into *t; fails the
 * test when the file cannot be found or parsed. */
static void load_table(const char *name, int ncols, table *t)
{
    FILE *f = open_data(name);
    char line[512];
    size_t cap = 0;
    int c;

    memset(t, 0, sizeof *t);
    ck_assert_msg(f != NULL,
                  "cannot open %s: set LEADSCORE_DATA_DIR to the directory "
                  "holding cdnow/", name);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));   /* header */
    while (fgets(line, sizeof line, f) != NULL) {
        double row[MAX_COLS];
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0')
            continue;
        ck_assert_msg(parse_row(line, ncols, row), "bad row in %s: %s",
                      name, line);
        if (t->n == cap) {
            cap = cap ? 2 * cap : 1024;
            for (c = 0; c < ncols; c++) {
                double *grown = realloc(t->col[c], cap * sizeof(double));
                ck_assert_ptr_nonnull(grown);
                t->col[c] = grown;
            }
        }
        for (c = 0; c < ncols; c++)
            t->col[c][t->n] = row[c];
        t->n++;
    }
    fclose(f);
}

/* Equation 10 of the BG/NBD paper taken literally, through clv_hyp2f1()
 * (valid for a != 1): an independent check of clv_bgnbd_expected(). */
static double expected_eq10(const clv_bgnbd *m, double x, double t_x,
                            double T, double t)
{
    double r = m->r, al = m->alpha, a = m->a, b = m->b, f, num, den;

    ck_assert_int_eq(clv_hyp2f1(r + x, b + x, a + b + x - 1.0,
                                t / (al + T + t), &f), LS_OK);
    num = (a + b + x - 1.0) / (a - 1.0) *
          (1.0 - pow((al + T) / (al + T + t), r + x) * f);
    den = 1.0 + (x > 0.0 ? a / (b + x - 1.0) *
                 pow((al + T) / (al + t_x), r + x) : 0.0);
    return num / den;
}

/* ========================================================================
 * 2F1
 * ===================================================================== */

START_TEST(hyp2f1_log_closed_form)
{
    /* 2F1(1, 1; 2; z) = -ln(1-z)/z; c-a-b = 0 so always the direct series */
    const double zs[] = {1e-9, 0.1, 0.5, 0.9, 0.99, 0.999};
    size_t i;

    for (i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        double f = 0.0, z = zs[i];
        ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, z, &f), LS_OK);
        ck_assert_rel(f, -log1p(-z) / z, 1e-13);
    }
}
END_TEST

START_TEST(hyp2f1_power_closed_form)
{
    /* 2F1(a, b; b; z) = (1-z)^-a, on each path: direct series, the 1-z
     * connection (z > 0.9, c-a-b = -a not an integer) and Pfaff (z < 0) */
    const double cases[][3] = {   /* a, b, z */
        {0.5, 1.5, 0.3},
        {2.7, 0.4, 0.95},
        {0.5, 3.0, 0.9999},       /* (1e-4)^-0.5 = 100 */
        {1.25, 2.0, -3.0},        /* 4^-1.25 */
        {0.3, 7.5, -0.5},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double a = cases[i][0], b = cases[i][1], z = cases[i][2], f = 0.0;
        ck_assert_int_eq(clv_hyp2f1(a, b, b, z, &f), LS_OK);
        ck_assert_rel(f, pow(1.0 - z, -a), 1e-12);
    }
}
END_TEST

START_TEST(hyp2f1_arcsin_and_gauss)
{
    /* 2F1(1/2, 1/2; 3/2; s^2) = asin(s)/s; c-a-b = 1/2, so s^2 > 0.9 uses
     * the connection formula, and at z = 1 Gauss gives pi/2 */
    const double ss[] = {0.5, 0.97, 0.99999};
    size_t i;
    double f = 0.0;

    for (i = 0; i < sizeof ss / sizeof ss[0]; i++) {
        double s = ss[i];
        ck_assert_int_eq(clv_hyp2f1(0.5, 0.5, 1.5, s * s, &f), LS_OK);
        ck_assert_rel(f, asin(s) / s, 1e-12);
    }
    ck_assert_int_eq(clv_hyp2f1(0.5, 0.5, 1.5, 1.0, &f), LS_OK);
    ck_assert_rel(f, 2.0 * atan(1.0), 1e-13);
    /* Gauss with a pole in the denominator: 2F1(a, b; b; 1) = 0 for a < 0
     * (c-a-b = -a > 0, Gamma(c-b) = Gamma(0)) */
    ck_assert_int_eq(clv_hyp2f1(-0.5, 2.0, 2.0, 1.0, &f), LS_OK);
    ck_assert_close(f, 0.0, 1e-300);
}
END_TEST

START_TEST(hyp2f1_negative_z)
{
    /* 2F1(1, 1; 2; -z) = ln(1+z)/z, through Pfaff's transformation */
    const double zs[] = {0.5, 1.0, 3.0, 1000.0};
    size_t i;

    for (i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        double f = 0.0, z = zs[i];
        ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, -z, &f), LS_OK);
        ck_assert_rel(f, log1p(z) / z, 1e-12);
    }
}
END_TEST

START_TEST(hyp2f1_polynomial_and_zero)
{
    /* 2F1(-2, 3; 4; z) = 1 + (-2)(3)/(4 1!) z + (-2)(-1)(3)(4)/((4)(5) 2!) z^2
     *                 = 1 - 1.5 z + 0.6 z^2, for any z, also z > 1 */
    const double zs[] = {-7.0, 0.25, 1.0, 2.0, 5.0};
    size_t i;
    double f = 0.0;

    for (i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        double z = zs[i];
        ck_assert_int_eq(clv_hyp2f1(-2.0, 3.0, 4.0, z, &f), LS_OK);
        ck_assert_close(f, 1.0 - 1.5 * z + 0.6 * z * z, 1e-13);
    }
    ck_assert_int_eq(clv_hyp2f1(2.5, -3.7, 1.1, 0.0, &f), LS_OK);
    ck_assert_close(f, 1.0, 0.0);
}
END_TEST

START_TEST(hyp2f1_does_not_converge)
{
    double f = 42.0;

    /* z = 1 with c-a-b <= 0: the series diverges */
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, 1.0, &f), LS_ECONVERGE);
    /* outside the disc of convergence */
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, 1.5, &f), LS_ECONVERGE);
    /* so close to 1 that a million terms are not enough, and c-a-b is an
     * integer so the connection formula is not used */
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, 1.0 - 1e-12, &f),
                     LS_ECONVERGE);
    /* (1-z)^-a near the top of the double range is still fine (the
     * series is rescaled as it goes), beyond it is not representable */
    ck_assert_int_eq(clv_hyp2f1(150.0, 0.5, 0.5, 0.99, &f), LS_OK);
    ck_assert_rel(f, 1e300, 1e-10);
    ck_assert_int_eq(clv_hyp2f1(200.0, 0.5, 0.5, 0.99, &f), LS_ECONVERGE);
}
END_TEST

START_TEST(hyp2f1_invalid)
{
    double f = 0.0;

    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 0.0, 0.5, &f), LS_EINVAL);
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, -3.0, 0.5, &f), LS_EINVAL);
    ck_assert_int_eq(clv_hyp2f1(NAN, 1.0, 2.0, 0.5, &f), LS_EINVAL);
    ck_assert_int_eq(clv_hyp2f1(1.0, INFINITY, 2.0, 0.5, &f), LS_EINVAL);
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, NAN, &f), LS_EINVAL);
    ck_assert_int_eq(clv_hyp2f1(1.0, 1.0, 2.0, 0.5, NULL), LS_EINVAL);
}
END_TEST

/* ========================================================================
 * BG/NBD closed forms
 * ===================================================================== */

START_TEST(bgnbd_p_alive_cases)
{
    const clv_bgnbd unit = {1.0, 1.0, 1.0, 2.0};
    double p = -1.0;

    /* no repeat purchase: alive by assumption (death only after one) */
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 0.0, 0.0, 38.86, &p),
                     LS_OK);
    ck_assert_close(p, 1.0, 0.0);
    /* r = alpha = a = 1, b = 2, x = 1, t_x = 1, T = 3:
     *   a/(b+x-1) = 1/2, ((alpha+T)/(alpha+t_x))^(r+x) = (4/2)^2 = 4,
     *   P = 1/(1 + 1/2 * 4) = 1/3 */
    ck_assert_int_eq(clv_bgnbd_p_alive(&unit, 1.0, 1.0, 3.0, &p), LS_OK);
    ck_assert_close(p, 1.0 / 3.0, 1e-15);
    /* bought at the very end (t_x = T): P = 1/(1 + a/(b+x-1)) = 2/3 */
    ck_assert_int_eq(clv_bgnbd_p_alive(&unit, 1.0, 3.0, 3.0, &p), LS_OK);
    ck_assert_close(p, 2.0 / 3.0, 1e-15);
    /* CDNOW customer 1 (x = 2, t_x = 30.43, T = 38.86), published params:
     *   a/(b+x-1) = 0.793/3.426 = 0.2314653
     *   (alpha+T)/(alpha+t_x) = 43.274/34.844 = 1.2419355
     *   ^(r+x = 2.243): exp(2.243 * 0.2166710) = exp(0.4859931) = 1.6257888
     *   P = 1/(1 + 0.2314653 * 1.6257888) = 1/1.3763136 = 0.7265786 */
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 2.0, 30.43, 38.86, &p),
                     LS_OK);
    ck_assert_close(p, 0.7265786, 1e-7);
    /* a long-silent heavy buyer is dead, without overflow */
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 500.0, 1.0, 1000.0, &p),
                     LS_OK);
    ck_assert_close(p, 0.0, 1e-300);
}
END_TEST

START_TEST(bgnbd_expected_worked_example)
{
    double e = 0.0;

    /* the paper: customer 1 expects 1.226 purchases in the next 39 weeks */
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 2.0, 30.43, 38.86, 39.0,
                                        &e), LS_OK);
    ck_assert_close(e, 1.226, 0.0005);
    ck_assert_rel(e, expected_eq10(&PUBLISHED, 2.0, 30.43, 38.86, 39.0),
                  1e-12);
}
END_TEST

START_TEST(bgnbd_expected_matches_equation_10)
{
    /* x, t_x, T, t, under parameters with a < 1 and a > 1 */
    const double cust[][4] = {
        {0, 0, 38.86, 39}, {1, 1.71, 38.86, 39}, {7, 35, 38.86, 1},
        {30, 38, 38.86, 52}, {3, 10, 20, 200}, {0, 0, 5, 0.001},
    };
    const clv_bgnbd models[] = {PUBLISHED, {1.7, 12.0, 3.5, 6.0}};
    size_t i, k;

    for (k = 0; k < sizeof models / sizeof models[0]; k++) {
        for (i = 0; i < sizeof cust / sizeof cust[0]; i++) {
            double e = 0.0;
            ck_assert_int_eq(clv_bgnbd_expected(&models[k], cust[i][0],
                                                cust[i][1], cust[i][2],
                                                cust[i][3], &e), LS_OK);
            ck_assert_rel(e, expected_eq10(&models[k], cust[i][0],
                                           cust[i][1], cust[i][2],
                                           cust[i][3]), 1e-10);
        }
    }
}
END_TEST

START_TEST(bgnbd_expected_limits)
{
    clv_bgnbd m = PUBLISHED;
    double e0 = -1.0, e = 0.0, lo = 0.0, hi = 0.0, p = 0.0, u = 0.0;
    const double t = 1e-7;

    /* t = 0: nothing */
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, 0.0, &e0),
                     LS_OK);
    ck_assert_close(e0, 0.0, 0.0);
    /* small t: P(alive) * E[rate | x, T] * t = P (r+x)/(alpha+T) t */
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, t, &e),
                     LS_OK);
    ck_assert_int_eq(clv_bgnbd_p_alive(&m, 2.0, 30.43, 38.86, &p), LS_OK);
    ck_assert_rel(e, p * (m.r + 2.0) / (m.alpha + 38.86) * t, 1e-6);
    /* a == 1, where equation 10 is 0/0: continuous with its neighbours */
    m.a = 1.0;
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, 39.0, &e),
                     LS_OK);
    m.a = 1.0 - 1e-9;
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, 39.0, &lo),
                     LS_OK);
    m.a = 1.0 + 1e-9;
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, 39.0, &hi),
                     LS_OK);
    ck_assert_rel(e, lo, 1e-8);
    ck_assert_rel(e, hi, 1e-8);
    ck_assert(lo > e && e > hi);   /* fewer purchases as dropout rises */
    /* a heavy buyer, long horizon: no overflow, about (r+x)/(alpha+T) t */
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 400.0, 38.8, 38.86,
                                        520.0, &e), LS_OK);
    ck_assert(isfinite(e) && e > 100.0);
    /* unconditional E[X(t)] is the x = t_x = T = 0 case, and equation 7 */
    ck_assert_int_eq(clv_bgnbd_expected_unconditional(&PUBLISHED, 39.0, &u),
                     LS_OK);
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 0.0, 0.0, 0.0, 39.0,
                                        &e), LS_OK);
    ck_assert_close(u, e, 0.0);
    ck_assert_rel(u, expected_eq10(&PUBLISHED, 0.0, 0.0, 0.0, 39.0), 1e-12);
}
END_TEST

START_TEST(bgnbd_loglik_hand)
{
    const clv_bgnbd ones = {1.0, 1.0, 1.0, 1.0};
    const double x[] = {0.0, 1.0}, t_x[] = {0.0, 1.0}, T[] = {1.0, 2.0};
    const double w[] = {3.0, 0.5};
    double ll = 0.0, sum = 0.0;

    /* x = 0: L = (alpha/(alpha+T))^r = 1/2 */
    ck_assert_int_eq(clv_bgnbd_loglik(&ones, 0.0, 0.0, 1.0, &ll), LS_OK);
    ck_assert_close(ll, log(0.5), 1e-14);
    /* x = 1, t_x = 1, T = 2, all parameters 1:
     *   B(1,2)/B(1,1) * G(2)/G(1) / 3^2 = 1/2 * 1/9 = 1/18
     * + B(2,1)/B(1,1) * G(2)/G(1) / 2^2 = 1/2 * 1/4 = 1/8
     * = 13/72 */
    ck_assert_int_eq(clv_bgnbd_loglik(&ones, 1.0, 1.0, 2.0, &ll), LS_OK);
    ck_assert_close(ll, log(13.0 / 72.0), 1e-14);
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&ones, x, t_x, T, NULL, 2, &sum),
                     LS_OK);
    ck_assert_close(sum, log(0.5) + log(13.0 / 72.0), 1e-14);
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&ones, x, t_x, T, w, 2, &sum),
                     LS_OK);
    ck_assert_close(sum, 3.0 * log(0.5) + 0.5 * log(13.0 / 72.0), 1e-14);
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&ones, NULL, NULL, NULL, NULL, 0,
                                          &sum), LS_OK);
    ck_assert_close(sum, 0.0, 0.0);
}
END_TEST

START_TEST(bgnbd_invalid)
{
    const clv_bgnbd bad[] = {
        {0.0, 1, 1, 1}, {1, -1.0, 1, 1}, {1, 1, NAN, 1}, {1, 1, 1, INFINITY},
    };
    const double x[] = {1.0, 2.0}, t_x[] = {1.0, 5.0}, T[] = {2.0, 4.0};
    const double w[] = {1.0, -1.0};
    double v = 0.0;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(clv_bgnbd_p_alive(&bad[i], 1, 1, 2, &v), LS_EINVAL);
        ck_assert_int_eq(clv_bgnbd_expected(&bad[i], 1, 1, 2, 3, &v),
                         LS_EINVAL);
        ck_assert_int_eq(clv_bgnbd_loglik(&bad[i], 1, 1, 2, &v), LS_EINVAL);
    }
    ck_assert_int_eq(clv_bgnbd_p_alive(NULL, 1, 1, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 1, 1, 2, NULL), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 1, 3, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, -1, 0, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 1.5, 1, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 1, -1, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_p_alive(&PUBLISHED, 1, NAN, 2, &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 1, 1, 2, -1, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 1, 1, 2, NAN, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 1, 1, INFINITY, 1, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_expected_unconditional(&PUBLISHED, -1, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_loglik(&PUBLISHED, 1, 1, 2, NULL), LS_EINVAL);
    /* row 1 has t_x > T */
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&PUBLISHED, x, t_x, T, NULL, 2,
                                          &v), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&PUBLISHED, x, t_x, T, w, 1, &v),
                     LS_OK);
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&PUBLISHED, x, T, T, w, 2, &v),
                     LS_EINVAL);   /* negative weight */
    ck_assert_int_eq(clv_bgnbd_loglik_sum(&PUBLISHED, NULL, t_x, T, NULL, 1,
                                          &v), LS_EINVAL);
}
END_TEST

/* ========================================================================
 * BG/NBD fit
 * ===================================================================== */

START_TEST(bgnbd_fit_cdnow)
{
    table t;
    clv_bgnbd m = {1.0, 1.0, 1.0, 1.0};
    double ll = 0.0, e = 0.0;

    load_table(SUMMARY_CSV, 4, &t);
    ck_assert_uint_eq(t.n, 2357);
    ck_assert_int_eq(clv_bgnbd_fit(t.col[1], t.col[2], t.col[3], t.n, &m,
                                   &ll), LS_OK);
    /* published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL
     * -9582.4; three significant figures */
    ck_assert_close(m.r, 0.243, 0.0005);
    ck_assert_close(m.alpha, 4.414, 0.005);
    ck_assert_close(m.a, 0.793, 0.0005);
    ck_assert_close(m.b, 2.426, 0.005);
    ck_assert_close(ll, -9582.4, 0.05);
    /* and tighter, our optimum (r 0.2425930, alpha 4.413534, a 0.792887,
     * b 2.425758, LL -9582.4255606; the likelihood is flat along a-b, so
     * the last digits of a and b depend on the start) */
    ck_assert_close(m.r, 0.2425930, 2e-6);
    ck_assert_close(m.alpha, 4.413534, 5e-5);
    ck_assert_close(m.a, 0.792887, 2e-5);
    ck_assert_close(m.b, 2.425758, 1e-4);
    ck_assert_close(ll, -9582.4255606, 1e-6);
    /* the worked example also holds with the fitted parameters */
    ck_assert_int_eq(clv_bgnbd_expected(&m, 2.0, 30.43, 38.86, 39.0, &e),
                     LS_OK);
    ck_assert_close(e, 1.226, 0.0005);
    table_free(&t);
}
END_TEST

START_TEST(bgnbd_fit_weighted_is_repetition)
{
    /* the first 300 CDNOW customers twice == once with weight 2 */
    enum { N = 300 };
    table t;
    double x2[2 * N], tx2[2 * N], T2[2 * N], w[N];
    clv_bgnbd dup = {1.0, 1.0, 1.0, 1.0}, wtd = {0.5, 2.0, 0.5, 2.0};
    double ll_dup = 0.0, ll_wtd = 0.0;
    size_t i;

    load_table(SUMMARY_CSV, 4, &t);
    ck_assert_uint_ge(t.n, N);
    for (i = 0; i < 2 * N; i++) {
        x2[i] = t.col[1][i % N];
        tx2[i] = t.col[2][i % N];
        T2[i] = t.col[3][i % N];
    }
    for (i = 0; i < N; i++)
        w[i] = 2.0;
    ck_assert_int_eq(clv_bgnbd_fit(x2, tx2, T2, 2 * N, &dup, &ll_dup),
                     LS_OK);
    ck_assert_int_eq(clv_bgnbd_fit_weighted(t.col[1], t.col[2], t.col[3], w,
                                            N, &wtd, &ll_wtd), LS_OK);
    ck_assert_rel(wtd.r, dup.r, 1e-4);
    ck_assert_rel(wtd.alpha, dup.alpha, 1e-4);
    ck_assert_rel(wtd.a, dup.a, 1e-3);
    ck_assert_rel(wtd.b, dup.b, 1e-3);
    ck_assert_close(ll_wtd, ll_dup, 1e-6);
    table_free(&t);
}
END_TEST

START_TEST(bgnbd_fit_no_interior_optimum)
{
    /* nobody came back: L = (alpha/(alpha+T))^r grows as r -> 0, so there
     * is no maximum; the fit says so and leaves *inout alone */
    const double x[] = {0, 0, 0, 0}, t_x[] = {0, 0, 0, 0};
    const double T[] = {10, 20, 30, 40};
    clv_bgnbd m = {1.0, 1.0, 1.0, 1.0};
    double ll = 7.0;

    ck_assert_int_eq(clv_bgnbd_fit(x, t_x, T, 4, &m, &ll), LS_ECONVERGE);
    ck_assert_close(m.r, 1.0, 0.0);
    ck_assert_close(m.b, 1.0, 0.0);
    ck_assert_close(ll, 7.0, 0.0);
}
END_TEST

START_TEST(bgnbd_fit_invalid)
{
    const double x[] = {1, 2}, t_x[] = {1, 2}, T[] = {3, 4};
    const double bad_t_x[] = {1, 5}, frac[] = {1, 0.5}, nan_T[] = {3, NAN};
    const double zero_w[] = {0, 0};
    clv_bgnbd m = {1.0, 1.0, 1.0, 1.0}, bad_start = {0.0, 1.0, 1.0, 1.0};
    double ll = 0.0;

    ck_assert_int_eq(clv_bgnbd_fit(x, bad_t_x, T, 2, &m, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(frac, t_x, T, 2, &m, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(x, t_x, nan_T, 2, &m, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(x, t_x, T, 0, &m, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(NULL, t_x, T, 2, &m, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(x, t_x, T, 2, NULL, &ll), LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit(x, t_x, T, 2, &bad_start, &ll),
                     LS_EINVAL);
    ck_assert_int_eq(clv_bgnbd_fit_weighted(x, t_x, T, zero_w, 2, &m, &ll),
                     LS_EINVAL);
}
END_TEST

/* ========================================================================
 * Gamma-Gamma
 * ===================================================================== */

START_TEST(gamma_gamma_closed_forms)
{
    const clv_gamma_gamma m = {6.0, 4.0, 15.0}, ones = {1.0, 1.0, 1.0};
    const clv_gamma_gamma q_one = {6.0, 1.0, 15.0}, q_low = {6.0, 0.5, 15.0};
    const double x[] = {0.0, 1.0, 2.0}, zbar[] = {NAN, 1.0, 3.0};
    double v = 0.0, sum = 0.0, row = 0.0;

    /* x = 2, zbar = 20: (15 + 2*20) * 6 / (6*2 + 4 - 1) = 55*6/15 = 22 */
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 2.0, 20.0, &v),
                     LS_OK);
    ck_assert_close(v, 22.0, 1e-12);
    /* x = 0: population mean p gamma/(q-1) = 6*15/3 = 30 (zbar ignored) */
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 0.0, 999.0, &v),
                     LS_OK);
    ck_assert_close(v, 30.0, 1e-12);
    /* p = q = gamma = 1, x = 1, zbar = 1:
     *   G(2)/(G(1)G(1)) * 1^1 * 1^1 * 1^0 / (1 + 1)^2 = 1/4 */
    ck_assert_int_eq(clv_gamma_gamma_loglik(&ones, 1.0, 1.0, &v), LS_OK);
    ck_assert_close(v, log(0.25), 1e-14);
    /* the sum skips x = 0 rows (their zbar is not even read) */
    ck_assert_int_eq(clv_gamma_gamma_loglik(&ones, 2.0, 3.0, &row), LS_OK);
    ck_assert_int_eq(clv_gamma_gamma_loglik_sum(&ones, x, zbar, NULL, 3,
                                                &sum), LS_OK);
    ck_assert_close(sum, log(0.25) + row, 1e-13);
    /* the mean needs q > 1 */
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&q_one, 2, 20, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&q_low, 2, 20, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_loglik(&q_low, 2, 20, &v), LS_OK);
}
END_TEST

START_TEST(gamma_gamma_invalid)
{
    const clv_gamma_gamma m = {6.0, 4.0, 15.0}, bad = {6.0, 4.0, -1.0};
    const double x[] = {1.0, 2.0}, zbar[] = {10.0, 0.0};
    const double none[] = {0.0, 0.0};
    clv_gamma_gamma fit = {1.0, 1.0, 1.0};
    double v = 0.0;

    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&bad, 2, 20, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(NULL, 2, 20, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 2, -1, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 1.5, 20, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 2, NAN, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&m, 2, 20, NULL),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_loglik(&m, 0, 20, &v), LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_loglik(&m, 2, 0, &v), LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_loglik(&bad, 2, 20, &v), LS_EINVAL);
    /* a repeat buyer with zbar = 0 */
    ck_assert_int_eq(clv_gamma_gamma_loglik_sum(&m, x, zbar, NULL, 2, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_fit(x, zbar, 2, &fit, &v), LS_EINVAL);
    /* no repeat buyer at all */
    ck_assert_int_eq(clv_gamma_gamma_fit(none, zbar, 2, &fit, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_fit(x, zbar, 0, &fit, &v), LS_EINVAL);
    ck_assert_int_eq(clv_gamma_gamma_fit(x, zbar, 1, NULL, &v), LS_EINVAL);
}
END_TEST

START_TEST(gamma_gamma_fit_cdnow)
{
    table t;
    clv_gamma_gamma m = {1.0, 1.0, 1.0};
    double ll = 0.0, ll_near = 0.0;
    size_t i, buyers = 0;

    load_table(SPEND_CSV, 5, &t);
    ck_assert_uint_eq(t.n, 2357);
    for (i = 0; i < t.n; i++)
        buyers += t.col[1][i] > 0.0;
    ck_assert_uint_eq(buyers, 946);
    /* all rows in: the x = 0 ones are skipped */
    ck_assert_int_eq(clv_gamma_gamma_fit(t.col[1], t.col[4], t.n, &m, &ll),
                     LS_OK);
    /* published p = 6.25, q = 3.74, gamma = 15.44 (ML on this file 15.45) */
    ck_assert_close(m.p, 6.25, 0.01);
    ck_assert_close(m.q, 3.74, 0.01);
    ck_assert_close(m.gamma, 15.44, 0.02);
    /* the ML optimum: p 6.248802, q 3.744588, gamma 15.447749,
     * LL -4055.9232435 (the same from other starts) */
    ck_assert_close(m.p, 6.248802, 1e-5);
    ck_assert_close(m.q, 3.744588, 1e-5);
    ck_assert_close(m.gamma, 15.447749, 2e-5);
    ck_assert_close(ll, -4055.9232435, 1e-6);
    /* and it is a maximum: the published rounding is lower */
    {
        const clv_gamma_gamma near = {6.25, 3.74, 15.44};
        ck_assert_int_eq(clv_gamma_gamma_loglik_sum(&near, t.col[1],
                                                    t.col[4], NULL, t.n,
                                                    &ll_near), LS_OK);
        ck_assert(ll_near < ll);
    }
    table_free(&t);
}
END_TEST

/* ========================================================================
 * Customer value
 * ===================================================================== */

START_TEST(value_cases)
{
    const clv_gamma_gamma spend = {6.25, 3.74, 15.44};
    const clv_gamma_gamma no_mean = {6.25, 0.9, 15.44};
    double v = 0.0, d = 0.0, e = 0.0, s = 0.0, manual = 0.0, prev = 0.0;
    int i;

    ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 2, 30.43, 38.86, 39,
                                        &e), LS_OK);
    ck_assert_int_eq(clv_gamma_gamma_expected_spend(&spend, 2, 22.35, &s),
                     LS_OK);
    ck_assert_int_eq(clv_value(&PUBLISHED, &spend, 2, 30.43, 38.86, 22.35,
                               39, &v), LS_OK);
    ck_assert_rel(v, e * s, 1e-15);
    /* rate 0 is exactly the undiscounted value */
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30.43,
                                          38.86, 22.35, 39, 4, 0.0, &d),
                     LS_OK);
    ck_assert_close(d, v, 0.0);
    /* one period: everything discounted once */
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30.43,
                                          38.86, 22.35, 39, 39, 0.1, &d),
                     LS_OK);
    ck_assert_rel(d, v / 1.1, 1e-14);
    /* 39 weeks in 10-week periods: 10, 20, 30 and a short last one, 39 */
    for (i = 1; i <= 4; i++) {
        double t = i < 4 ? 10.0 * i : 39.0;
        ck_assert_int_eq(clv_bgnbd_expected(&PUBLISHED, 2, 30.43, 38.86, t,
                                            &e), LS_OK);
        manual += (e - prev) * s / pow(1.05, i);
        prev = e;
    }
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30.43,
                                          38.86, 22.35, 39, 10, 0.05, &d),
                     LS_OK);
    ck_assert_rel(d, manual, 1e-13);
    ck_assert(d < v && d > v / pow(1.05, 4));
    /* errors */
    ck_assert_int_eq(clv_value(&PUBLISHED, &no_mean, 2, 30, 38, 22, 39, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_value(&PUBLISHED, &spend, 2, 30, 38, 22, -1, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_value(NULL, &spend, 2, 30, 38, 22, 39, &v),
                     LS_EINVAL);
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30, 38, 22,
                                          39, 0, 0.1, &v), LS_EINVAL);
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30, 38, 22,
                                          39, 1, -0.1, &v), LS_EINVAL);
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30, 38, 22,
                                          1e6, 1, 0.1, &v), LS_EINVAL);
    ck_assert_int_eq(clv_value_discounted(NULL, &spend, 2, 30, 38, 22, 0, 1,
                                          0.1, &v), LS_EINVAL);
    ck_assert_int_eq(clv_value_discounted(&PUBLISHED, &spend, 2, 30, 38, 22,
                                          39, 1, 0.1, NULL), LS_EINVAL);
}
END_TEST

/* ========================================================================
 * Runner
 * ===================================================================== */


/* P(an order in (T, T+tau]) by hand, CDNOW parameters, x = 2, t_x = 30.43,
 * T = 38.86, tau = 4 weeks:
 *   P(alive) = 1 / (1 + 0.793/3.426 * (43.274/34.844)^2.243) = 0.7265786
 *   silent   = (43.274/47.274)^2.243                            = 0.8201236
 *   p_buy    = 0.7265786 * (1 - 0.8201236)                      = 0.1306943
 * (P(none) = 1 - P(alive) + P(alive) * silent = 0.8693057.)  The NBD
 * (r 0.5, alpha 10; x 3, T 20, tau 8): 1 - (30/38)^3.5 = 0.5627983. */
START_TEST(p_buy_by_hand)
{
    clv_nbd nbd = {0.5, 10.0};
    clv_repeat rep = {.kind = CLV_MODEL_NBD, .nbd = nbd};
    double p, pa, e;

    ck_assert_int_eq(clv_bgnbd_p_buy(&PUBLISHED, 2, 30.43, 38.86, 4.0, &p), LS_OK);
    ck_assert_close(p, 0.13069432378471696, 1e-12);
    ck_assert_int_eq(clv_bgnbd_p_buy(&PUBLISHED, 2, 30.43, 38.86, 0.0, &p), LS_OK);
    ck_assert_close(p, 0.0, 0.0);
    /* a long window tends to P(alive) */
    ck_assert_int_eq(clv_bgnbd_p_buy(&PUBLISHED, 2, 30.43, 38.86, 1e9, &p), LS_OK);
    ck_assert_close(p, 0.726578570080673, 1e-6);
    ck_assert_int_eq(clv_nbd_p_buy(&nbd, 3, 12, 20, 8, &p), LS_OK);
    ck_assert_close(p, 0.5627983388751414, 1e-12);
    ck_assert_int_eq(clv_repeat_p_buy(&rep, 3, 12, 20, 8, &p), LS_OK);
    ck_assert_close(p, 0.5627983388751414, 1e-12);
    ck_assert_int_eq(clv_repeat_p_alive(&rep, 3, 12, 20, &pa), LS_OK);
    ck_assert_close(pa, 1.0, 0.0);
    ck_assert_int_eq(clv_nbd_expected(&nbd, 3, 12, 20, 8, &e), LS_OK);
    ck_assert_close(e, 3.5 / 30.0 * 8.0, 1e-15);
    ck_assert_int_eq(clv_bgnbd_p_buy(&PUBLISHED, 2, 30.43, 38.86, -1, &p), LS_EINVAL);
    ck_assert_int_eq(clv_nbd_p_buy(&nbd, 3, 21, 20, 8, &p), LS_EINVAL);
}
END_TEST

/* The NBD is the BG/NBD without dropout: its log-likelihood is the BG/NBD
 * one as b -> infinity; on data with no sign of dropout (everyone bought
 * at the very end) BG/NBD has no interior optimum and the NBD fits. */
START_TEST(nbd_is_the_no_dropout_limit_and_fits)
{
    clv_nbd nbd = {0.7, 3.0};
    clv_bgnbd near = {0.7, 3.0, 1.0, 1e6}; /* (larger b loses digits in ln G(b+x) - ln G(b)) */
    double l1, l2;
    ck_assert_int_eq(clv_nbd_loglik(&nbd, 4, 10, 15, &l1), LS_OK);
    ck_assert_int_eq(clv_bgnbd_loglik(&near, 4, 10, 15, &l2), LS_OK);
    ck_assert_close(l1, l2, 1e-5);

    const double x[] = {0, 1, 2, 3, 5, 8, 1, 0, 2, 4, 6, 0};
    const double T[] = {10, 12, 20, 25, 30, 30, 8, 40, 15, 22, 35, 5};
    double tx[12];
    for (int i = 0; i < 12; i++)
        tx[i] = x[i] > 0 ? T[i] : 0;
    clv_bgnbd bg = {1, 1, 1, 1};
    double llb = 0, lln = 0;
    int rc = clv_bgnbd_fit(x, tx, T, 12, &bg, &llb);
    ck_assert(rc == LS_ECONVERGE || bg.a / (bg.a + bg.b) < 1e-3);
    clv_nbd fit = {1, 1};
    ck_assert_int_eq(clv_nbd_fit_weighted(x, tx, T, NULL, 12, &fit, &lln), LS_OK);
    ck_assert(fit.r > 0 && fit.alpha > 0 && isfinite(lln));
    /* a maximum: moving either parameter lowers the likelihood */
    double sum = 0, other;
    for (int i = 0; i < 12; i++) {
        clv_nbd_loglik(&fit, x[i], tx[i], T[i], &other);
        sum += other;
    }
    ck_assert_close(sum, lln, 1e-9);
    for (int k = 0; k < 4; k++) {
        clv_nbd moved = {fit.r * (k == 0 ? 1.05 : k == 1 ? 0.95 : 1), fit.alpha * (k == 2 ? 1.05 : k == 3 ? 0.95 : 1)};
        double s2 = 0;
        for (int i = 0; i < 12; i++) {
            clv_nbd_loglik(&moved, x[i], tx[i], T[i], &other);
            s2 += other;
        }
        ck_assert(s2 < lln);
    }
}
END_TEST

/* ========================================================================
 * The fast paths give the same doubles as the plain ones
 * ===================================================================== */

static unsigned long long rng = 0x2545F4914F6CDD1DULL;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* The series loop as it was before the tail test got its shortcut and
 * the terms came in blocks: the bound tested at every term, one division
 * a term.  *abs_sum gets the sum of |terms| (times the same scale), the
 * size the rounding errors of any order of summation are relative to. */
static double plain_series(double p, double q, double s, double z, double *abs_sum)
{
    double term = 1.0, sum = 1.0, mag = 1.0, log_scale = 0.0;
    for (long k = 0; k < 1000000L; k++) {
        double kd = (double)k, rb;
        if (term == 0.0)
            break;
        if (p + kd <= 0.0 || q + kd <= 0.0 || s + kd <= 0.0)
            rb = HUGE_VAL;
        else
            rb = fabs(z) * fmax(1.0, (p + kd) / (kd + 1.0)) * fmax(1.0, (q + kd) / (s + kd));
        if (rb < 1.0 && fabs(term) * rb / (1.0 - rb) <= 1e-16 * fabs(sum))
            break;
        term *= (p + kd) * (q + kd) / ((s + kd) * (kd + 1.0)) * z;
        sum += term;
        mag += fabs(term);
        if (fabs(sum) > 1e200) {
            sum /= 1e200;
            term /= 1e200;
            mag /= 1e200;
            log_scale += 460.51701859880913680;
        }
    }
    *abs_sum = mag * exp(log_scale);
    return sum == 0.0 ? 0.0 : sum * exp(log_scale);
}

/* For 0 <= z <= 0.9 clv_hyp2f1() is the plain series summed four terms
 * a division: the two agree to a few units in the last place of the
 * terms' magnitude. */
START_TEST(series_blocks_agree_with_plain_series)
{
    for (int i = 0; i < 20000; i++) {
        double a = -3.0 + 12.0 * uniform(), b = -3.0 + 12.0 * uniform(), c = 0.05 + 10.0 * uniform();
        double z = i % 7 == 0 ? 0.9 : i % 11 == 0 ? 1e-300 * uniform() : 0.9 * uniform(), f, mag;
        if (i % 5 == 0)
            a = -(double)(i % 9);   /* polynomials too */
        ck_assert_int_eq(clv_hyp2f1(a, b, c, z, &f), LS_OK);
        double want = plain_series(a, b, c, z, &mag);
        ck_assert_msg(fabs(f - want) <= 1e-14 * mag, "2F1(%.17g, %.17g; %.17g; %.17g) = %a, plain series %a", a, b, c,
                      z, f, want);
    }
}
END_TEST

/* clv_repeat_customer() against the three public functions it stands
 * for, statuses and bits, BG/NBD and NBD, valid and invalid inputs. */
static void check_customer(const clv_repeat *m, const clv_gamma_gamma *gg, double x, double t_x, double T, double zbar,
                           double t, double horizon, double period, double rate)
{
    clv_repeat_figures fig;
    double pa = 0, e = 0, v = 0;
    int rp = clv_repeat_p_alive(m, x, t_x, T, &pa);
    int re = clv_repeat_expected(m, x, t_x, T, t, &e);
    int rv = clv_repeat_value(m, gg, x, t_x, T, zbar, horizon, period, rate, &v);
    clv_repeat_customer(m, gg, x, t_x, T, zbar, t, horizon, period, rate, &fig);
    ck_assert_int_eq(fig.p_alive_rc, rp);
    /* the window figures: P(buy) and expected purchases in (T, T+t] */
    double pb = 0, wpb, we;
    int rb = clv_repeat_p_buy(m, x, t_x, T, t, &pb), wrb, wre;
    clv_repeat_window(m, x, t_x, T, t, &wrb, &wpb, &wre, &we);
    ck_assert_int_eq(wrb, rb);
    ck_assert_int_eq(wre, re);
    if (rb == LS_OK)
        ck_assert(memcmp(&wpb, &pb, sizeof pb) == 0);
    if (re == LS_OK)
        ck_assert(memcmp(&we, &e, sizeof e) == 0);
    ck_assert_int_eq(fig.expected_rc, re);
    ck_assert_int_eq(fig.value_rc, rv);
    if (rp == LS_OK)
        ck_assert(memcmp(&fig.p_alive, &pa, sizeof pa) == 0);
    if (re == LS_OK)
        ck_assert_msg(memcmp(&fig.expected, &e, sizeof e) == 0, "expected %a vs %a", fig.expected, e);
    if (rv == LS_OK)
        ck_assert_msg(memcmp(&fig.value, &v, sizeof v) == 0, "value %a vs %a", fig.value, v);
    /* clv_repeat_customer_window() is the two calls, every byte: at the
     * same horizon (the shared expected purchases), at others, at a bad one */
    const double taus[] = {t, t * (1 + 0x1p-52), 0.5 * t + 1.0, 0.0, -0.0, -1.0, NAN};
    for (size_t i = 0; i < sizeof taus / sizeof taus[0]; i++) {
        clv_repeat_figures both;
        clv_repeat_window_figures w, want = {0, 0, 0.0, 0.0};
        memset(&both, 0x5a, sizeof both);
        memset(&w, 0x5a, sizeof w);
        clv_repeat_window(m, x, t_x, T, taus[i], &want.p_buy_rc, &want.p_buy, &want.expected_rc, &want.expected);
        clv_repeat_customer_window(m, gg, x, t_x, T, zbar, t, horizon, period, rate, taus[i], &both, &w);
        ck_assert_int_eq(both.p_alive_rc, fig.p_alive_rc);
        ck_assert_int_eq(both.expected_rc, fig.expected_rc);
        ck_assert_int_eq(both.value_rc, fig.value_rc);
        ck_assert(memcmp(&both.p_alive, &fig.p_alive, sizeof pa) == 0);
        ck_assert(memcmp(&both.expected, &fig.expected, sizeof e) == 0);
        ck_assert(memcmp(&both.value, &fig.value, sizeof v) == 0);
        ck_assert_int_eq(w.p_buy_rc, want.p_buy_rc);
        ck_assert_int_eq(w.expected_rc, want.expected_rc);
        ck_assert_msg(memcmp(&w.p_buy, &want.p_buy, sizeof pb) == 0, "p_buy %a vs %a", w.p_buy, want.p_buy);
        ck_assert_msg(memcmp(&w.expected, &want.expected, sizeof e) == 0, "expected %a vs %a", w.expected,
                      want.expected);
    }
}

static clv_bgnbd_table coef_table; /* 64 KiB: not on the stack */

/* The coefficient table sums the same series: the expected purchases
 * and values through a table agree with the plain series for every x it
 * holds, at ages and horizons from a day to years, to 1e-12 (the sums
 * agree to a few units in the last place; the bracket subtracts two parts
 * up to a hundred times its size), and a table made for other parameters
 * is not used (the series' own bits). */
START_TEST(table_sums_the_series)
{
    clv_gamma_gamma gg = {6.25, 3.74, 15.44};
    double worst = 0;
    int used = 0;
    for (int i = 0; i < 2000; i++) {
        clv_repeat plain = {CLV_MODEL_BGNBD,
                            {0.05 + 2.0 * uniform(), 0.5 + 20.0 * uniform(), 0.1 + 3.0 * uniform(), 0.1 + 10.0 * uniform()},
                            {1, 1}, NULL};
        if (i % 11 == 0)
            plain.bgnbd.a = 1.0;
        clv_repeat tab = plain, other = plain;
        clv_bgnbd_table_init(&plain.bgnbd, &coef_table);
        tab.table = &coef_table;
        other.bgnbd.b *= 1.5;      /* parameters the table is not for */
        other.table = &coef_table;
        double x = (double)(i % (CLV_TABLE_X + 2)), T = 0.1 + 150.0 * uniform(), t_x = x > 0 ? T * uniform() : 0;
        double t = i % 3 == 0 ? 30.0 / 7.0 : i % 3 == 1 ? 365.0 / 7.0 : 400.0 * uniform();
        double a, b, c, d;
        ck_assert_int_eq(clv_repeat_expected(&plain, x, t_x, T, t, &a), LS_OK);
        ck_assert_int_eq(clv_repeat_expected(&tab, x, t_x, T, t, &b), LS_OK);
        ck_assert_msg(fabs(a - b) <= 1e-12 * fabs(a), "x %g T %g t %g: series %.17g, table %.17g", x, T, t, a, b);
        worst = fmax(worst, fabs(a - b) / fabs(a));
        used += memcmp(&a, &b, sizeof a) != 0;
        ck_assert_int_eq(clv_repeat_value(&plain, &gg, x, t_x, T, 40.0, t, 0, 0, &c), LS_OK);
        ck_assert_int_eq(clv_repeat_value(&tab, &gg, x, t_x, T, 40.0, t, 0, 0, &d), LS_OK);
        ck_assert(fabs(c - d) <= 1e-12 * fabs(c));
        double e1, e2;
        ck_assert_int_eq(clv_repeat_expected(&other, x, t_x, T, t, &e1), LS_OK);
        other.table = NULL;
        ck_assert_int_eq(clv_repeat_expected(&other, x, t_x, T, t, &e2), LS_OK);
        ck_assert(memcmp(&e1, &e2, sizeof e1) == 0);
    }
    ck_assert(used > 100); /* the table did answer (its last bits differ) */
    ck_assert(worst < 1e-12);
}
END_TEST

START_TEST(repeat_customer_is_the_three_functions)
{
    clv_gamma_gamma gg = {6.25, 3.74, 15.44};
    for (int i = 0; i < 3000; i++) {
        clv_repeat m = {CLV_MODEL_BGNBD, {0.05 + 2.0 * uniform(), 0.5 + 20.0 * uniform(), 0.1 + 3.0 * uniform(),
                                          0.1 + 10.0 * uniform()},
                        {0.05 + 2.0 * uniform(), 0.5 + 20.0 * uniform()}, NULL};
        if (i % 4 == 0)
            m.kind = CLV_MODEL_NBD;
        if (i % 13 == 0)
            m.bgnbd.a = 1.0;
        if (i % 2 == 0) { /* half of them through a coefficient table, as a model's are */
            clv_bgnbd_table_init(&m.bgnbd, &coef_table);
            m.table = &coef_table;
        }
        double x = (double)(i % 40), T = 200.0 * uniform(), t_x = x > 0 ? T * uniform() : 0;
        double t = 30.0 / 7.0, horizon = 365.0 / 7.0, period = i % 3 ? 30.0 / 7.0 : 0, rate = i % 3 ? 0.01 : 0;
        check_customer(&m, &gg, x, t_x, T, 100.0 * uniform(), t, horizon, period, rate);
        check_customer(&m, &gg, x, t_x, T, 0, 300.0 * uniform(), 500.0 * uniform(), period, rate);
        /* edges: no repeat purchase, a heavy buyer, T == t_x, tiny and huge T */
        double ex = i % 5 == 0 ? 0 : i % 5 == 1 ? 1e6 * uniform() : (double)(i % 7);
        ex = floor(ex);
        double eT = i % 3 == 0 ? 1e-9 * uniform() : i % 3 == 1 ? 1e5 * uniform() : 3.0;
        check_customer(&m, &gg, ex, ex > 0 ? eT : 0, eT, 50.0, t, horizon, period, rate);
        check_customer(&m, &gg, ex, ex > 0 ? eT * uniform() : 0, eT, 50.0, t, horizon, period, rate);
    }
    clv_repeat m = {CLV_MODEL_BGNBD, {0.243, 4.414, 0.793, 2.426}, {0.5, 3.0}, NULL};
    clv_gamma_gamma bad = {6.25, 0.5, 15.44};   /* q <= 1: no mean */
    check_customer(&m, &gg, 2.5, 1, 2, 10, 4, 52, 0, 0);          /* x not a count */
    check_customer(&m, &gg, 2, 3, 2, 10, 4, 52, 0, 0);            /* t_x > T */
    check_customer(&m, &gg, 2, 1, 2, 10, -1, 52, 0, 0);           /* t < 0 */
    check_customer(&m, &gg, 2, 1, 2, 10, 4, NAN, 0, 0);           /* horizon */
    check_customer(&m, &gg, 2, 1, 2, 10, 4, 52, 4, -0.1);         /* rate < 0 */
    check_customer(&m, &gg, 2, 1, 2, 10, 4, 52, INFINITY, 0.1);   /* period */
    check_customer(&m, &gg, 2, 1, 2, 10, 4, 1e9, 1e-3, 0.1);      /* too many periods */
    check_customer(&m, &bad, 2, 1, 2, 10, 4, 52, 0, 0);
    check_customer(&m, &bad, 2, 1, 2, 10, 4, 52, 4, 0.1);
    check_customer(&m, &gg, 2, 1, 2, 10, 1e30, 1e30, 0, 0);       /* the series gives up */
    m.bgnbd.r = -1;
    check_customer(&m, &gg, 2, 1, 2, 10, 4, 52, 0, 0);
    clv_repeat_figures fig;
    clv_repeat_customer(NULL, &gg, 2, 1, 2, 10, 4, 52, 0, 0, &fig);
    ck_assert_int_eq(fig.p_alive_rc, LS_EINVAL);
    ck_assert_int_eq(fig.value_rc, LS_EINVAL);
    clv_repeat_window_figures w;
    clv_repeat_customer_window(NULL, &gg, 2, 1, 2, 10, 4, 52, 0, 0, 4, &fig, &w);
    ck_assert_int_eq(fig.p_alive_rc, LS_EINVAL);
    ck_assert_int_eq(fig.expected_rc, LS_EINVAL);
    ck_assert_int_eq(fig.value_rc, LS_EINVAL);
    ck_assert_int_eq(w.p_buy_rc, LS_EINVAL);
    ck_assert_int_eq(w.expected_rc, LS_EINVAL);
    ck_assert(w.p_buy == 0.0 && w.expected == 0.0 && fig.p_alive == 0.0 && fig.expected == 0.0 && fig.value == 0.0);
}
END_TEST

static Suite *clv_suite(void)
{
    Suite *s = suite_create("clv");
    TCase *hyp = tcase_create("hyp2f1");
    TCase *bg = tcase_create("bgnbd");
    TCase *fit = tcase_create("bgnbd_fit");
    TCase *gg = tcase_create("gamma_gamma");
    TCase *val = tcase_create("value");

    tcase_add_test(hyp, hyp2f1_log_closed_form);
    tcase_add_test(hyp, hyp2f1_power_closed_form);
    tcase_add_test(hyp, hyp2f1_arcsin_and_gauss);
    tcase_add_test(hyp, hyp2f1_negative_z);
    tcase_add_test(hyp, hyp2f1_polynomial_and_zero);
    tcase_add_test(hyp, hyp2f1_does_not_converge);
    tcase_add_test(hyp, hyp2f1_invalid);
    tcase_add_test(bg, bgnbd_p_alive_cases);
    tcase_add_test(bg, bgnbd_expected_worked_example);
    tcase_add_test(bg, bgnbd_expected_matches_equation_10);
    tcase_add_test(bg, bgnbd_expected_limits);
    tcase_add_test(bg, bgnbd_loglik_hand);
    tcase_add_test(bg, bgnbd_invalid);
    tcase_add_test(bg, p_buy_by_hand);
    tcase_add_test(fit, nbd_is_the_no_dropout_limit_and_fits);
    tcase_add_test(fit, bgnbd_fit_cdnow);
    tcase_add_test(fit, bgnbd_fit_weighted_is_repetition);
    tcase_add_test(fit, bgnbd_fit_no_interior_optimum);
    tcase_add_test(fit, bgnbd_fit_invalid);
    tcase_add_test(gg, gamma_gamma_closed_forms);
    tcase_add_test(gg, gamma_gamma_invalid);
    tcase_add_test(gg, gamma_gamma_fit_cdnow);
    tcase_add_test(val, value_cases);
    tcase_add_test(hyp, series_blocks_agree_with_plain_series);
    tcase_add_test(hyp, table_sums_the_series);
    tcase_add_test(val, repeat_customer_is_the_three_functions);
    /* the fits take well under a second, but leave room for sanitizers
     * and slow machines */
    tcase_set_timeout(fit, 30);
    tcase_set_timeout(gg, 30);
    suite_add_tcase(s, hyp);
    suite_add_tcase(s, bg);
    suite_add_tcase(s, fit);
    suite_add_tcase(s, gg);
    suite_add_tcase(s, val);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(clv_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
