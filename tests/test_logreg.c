/* test_logreg.c -- Check suite for the logistic regression fit (logreg.h).
 *
 * A hand-checkable case (one binary feature: the unpenalised optimum
 * reproduces the two group rates), recovery of known coefficients from
 * synthetic data drawn with a fixed-seed generator, shrinkage as lambda
 * grows, finite answers on perfectly separable data, constant columns,
 * weights against repeated rows, soft labels against split rows, and every
 * error return.  Exits 1 on any failure. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "logreg.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* xorshift64*: a small fixed-seed generator so the data repeats. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

/* Uniform on (0, 1). */
static double rng_uniform(uint64_t *state)
{
    return ((double)(rng_next(state) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal by Box-Muller (one of the pair). */
static double rng_gauss(uint64_t *state)
{
    double u = rng_uniform(state), v = rng_uniform(state);

    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static double logit_of(double p)
{
    return log(p / (1.0 - p));
}

/* Raw-unit slope of feature j: the standardised coef over the scale. */
static double raw_slope(const logreg_model *m, int j)
{
    return m->coef[j] / m->scale[j];
}

static double coef_norm(const logreg_model *m)
{
    double s = 0.0;

    for (int j = 0; j < m->d; j++)
        s += m->coef[j] * m->coef[j];
    return sqrt(s);
}

/* n rows of d N(0,1) features and Bernoulli labels from the given raw
 * intercept and slopes.  The caller frees *X and *y. */
static void synth(uint64_t seed, size_t n, int d, double b0, const double *b,
                  double **X, double **y)
{
    uint64_t st = seed;

    *X = malloc(n * (size_t)d * sizeof(double));
    *y = malloc(n * sizeof(double));
    ck_assert_ptr_nonnull(*X);
    ck_assert_ptr_nonnull(*y);
    for (size_t i = 0; i < n; i++) {
        double eta = b0;
        for (int j = 0; j < d; j++) {
            double x = rng_gauss(&st);
            (*X)[i * (size_t)d + (size_t)j] = x;
            eta += b[j] * x;
        }
        (*y)[i] = rng_uniform(&st) < 1.0 / (1.0 + exp(-eta)) ? 1.0 : 0.0;
    }
}

static void assert_models_close(const logreg_model *a, const logreg_model *b,
                                double tol)
{
    ck_assert_int_eq(a->d, b->d);
    ck_assert_double_eq_tol(a->intercept, b->intercept, tol);
    ck_assert_double_eq_tol(a->loglik, b->loglik, tol * fabs(a->loglik));
    for (int j = 0; j < a->d; j++) {
        ck_assert_double_eq_tol(a->coef[j], b->coef[j], tol);
        ck_assert_double_eq_tol(a->mean[j], b->mean[j], tol);
        ck_assert_double_eq_tol(a->scale[j], b->scale[j], tol);
    }
}

static int model_is_empty(const logreg_model *m)
{
    return m->d == 0 && m->coef == NULL && m->mean == NULL
        && m->scale == NULL && m->intercept == 0.0 && m->iterations == 0;
}

/* ------------------------------------------------------------------ */
/* Known answers                                                       */
/* ------------------------------------------------------------------ */

/* One binary feature: 40 rows at x = 0 with 10 positives (rate 1/4) and
 * 60 rows at x = 1 with 45 positives (rate 3/4).  The unpenalised optimum
 * predicts each group's rate, so the logit at x is logit(rate); the
 * log-likelihood is 25 ln(1/4) + 75 ln(3/4); mean 0.6, scale sqrt(0.24). */
START_TEST(test_binary_feature_closed_form)
{
    double X[100], y[100];
    logreg_model m = {0};
    double x0 = 0.0, x1 = 1.0;

    for (int i = 0; i < 100; i++) {
        X[i] = i < 40 ? 0.0 : 1.0;
        y[i] = i < 40 ? (i < 10) : (i < 85);
    }
    ck_assert_int_eq(logreg_fit(X, y, NULL, 100, 1, 1e-10, &m), LS_OK);
    ck_assert_double_eq_tol(m.mean[0], 0.6, 1e-12);
    ck_assert_double_eq_tol(m.scale[0], sqrt(0.24), 1e-12);
    ck_assert_double_eq_tol(logreg_logit(&m, &x0), logit_of(0.25), 1e-6);
    ck_assert_double_eq_tol(logreg_logit(&m, &x1), logit_of(0.75), 1e-6);
    ck_assert_double_eq_tol(logreg_predict(&m, &x0), 0.25, 1e-6);
    ck_assert_double_eq_tol(logreg_predict(&m, &x1), 0.75, 1e-6);
    ck_assert_double_eq_tol(raw_slope(&m, 0), 2.0 * log(3.0), 1e-6);
    ck_assert_double_eq_tol(m.loglik, 25 * log(0.25) + 75 * log(0.75), 1e-6);
    ck_assert_int_ge(m.iterations, 1);
    ck_assert_int_le(m.iterations, 20);
    logreg_destroy(&m);
}
END_TEST

/* 200,000 rows, raw intercept -0.5 and slopes (1.5, -2, 0.5), features
 * shifted and scaled so that standardisation matters. */
START_TEST(test_recovers_known_coefficients)
{
    const double b[3] = {1.5, -2.0, 0.5}, shift[3] = {10.0, -3.0, 0.0};
    const double stretch[3] = {1.0, 0.25, 4.0};
    const size_t n = 200000;
    double *X, *y;
    logreg_model m = {0};

    synth(42, n, 3, -0.5, b, &X, &y);
    for (size_t i = 0; i < n; i++)      /* x' = shift + x / stretch, same eta */
        for (int j = 0; j < 3; j++)
            X[i * 3 + j] = shift[j] + X[i * 3 + j] / stretch[j];
    ck_assert_int_eq(logreg_fit(X, y, NULL, n, 3, 1.0, &m), LS_OK);
    for (int j = 0; j < 3; j++) {
        ck_assert_double_eq_tol(raw_slope(&m, j), b[j] * stretch[j], 0.05 * stretch[j]);
        ck_assert_double_eq_tol(m.mean[j], shift[j], 0.05);
        ck_assert_double_eq_tol(m.scale[j], 1.0 / stretch[j], 0.01 / stretch[j]);
    }
    /* the point x' = shift, i.e. x = 0, has logit b0 = -0.5 */
    ck_assert_double_eq_tol(logreg_logit(&m, shift), -0.5, 0.05);
    ck_assert(m.grad_norm <= 1e-9 * (double)n);
    logreg_destroy(&m);
    free(X);
    free(y);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Regularisation                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_lambda_shrinks_monotonically)
{
    const double b[3] = {1.0, -1.0, 0.3}, lambdas[] = {0, 1, 10, 100, 1e3, 1e4, 1e5};
    const size_t n = 2000;
    double *X, *y, prev_norm = INFINITY, prev_ll = 0.0;

    synth(7, n, 3, 0.2, b, &X, &y);
    for (size_t k = 0; k < sizeof lambdas / sizeof lambdas[0]; k++) {
        logreg_model m = {0};
        ck_assert_int_eq(logreg_fit(X, y, NULL, n, 3, lambdas[k], &m), LS_OK);
        ck_assert(coef_norm(&m) < prev_norm);
        if (k > 0)
            ck_assert(m.loglik < prev_ll);
        prev_norm = coef_norm(&m);
        prev_ll = m.loglik;
        logreg_destroy(&m);
    }
    ck_assert(prev_norm < 0.05);   /* lambda 1e5 on 2000 rows: near zero */
    {   /* the intercept is not penalised: it stays at the log-odds of the
         * mean label however hard the coefficients are pushed to 0 */
        logreg_model m = {0};
        double ybar = 0.0;
        for (size_t i = 0; i < n; i++)
            ybar += y[i] / (double)n;
        ck_assert_int_eq(logreg_fit(X, y, NULL, n, 3, 1e12, &m), LS_OK);
        ck_assert(coef_norm(&m) < 1e-8);
        ck_assert_double_eq_tol(m.intercept, logit_of(ybar), 1e-8);
        logreg_destroy(&m);
    }
    free(X);
    free(y);
}
END_TEST

/* x = -50..-1 all negative, 1..50 all positive: the unpenalised optimum is
 * at infinity; any lambda > 0 gives a finite one, larger for smaller lambda. */
START_TEST(test_separable_data_stays_finite)
{
    double X[100], y[100], lambdas[] = {1.0, 0.1, 1e-3, 1e-6};
    double prev = 0.0, hi = 50.0, lo = -50.0;

    for (int i = 0; i < 100; i++) {
        X[i] = i < 50 ? -(double)(i + 1) : (double)(i - 49);
        y[i] = i < 50 ? 0.0 : 1.0;
    }
    for (int k = 0; k < 4; k++) {
        logreg_model m = {0};
        ck_assert_int_eq(logreg_fit(X, y, NULL, 100, 1, lambdas[k], &m), LS_OK);
        ck_assert(isfinite(m.coef[0]) && isfinite(m.intercept));
        ck_assert(m.coef[0] > prev);
        ck_assert(fabs(m.intercept) < 1e-6);    /* symmetric data */
        ck_assert(logreg_predict(&m, &hi) > 0.99);
        ck_assert(logreg_predict(&m, &lo) < 0.01);
        prev = m.coef[0];
        logreg_destroy(&m);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Columns, weights and labels                                         */
/* ------------------------------------------------------------------ */

/* A constant column gets scale 1 and coefficient 0 and leaves the rest of
 * the fit as it is without the column -- also with lambda 0, where it
 * would otherwise make the Hessian singular.  So does a column of values
 * that are 0 but for rounding (about 1e-21): standardised by its sd it
 * once weighed 1e18 per unit, and `train` wrote a model that would not
 * load. */
START_TEST(test_constant_column)
{
    const double b[2] = {0.8, -0.4};
    const size_t n = 3000;
    double *X, *y, *X3 = malloc(n * 3 * sizeof(double));
    double lambdas[] = {0.0, 2.0};

    ck_assert_ptr_nonnull(X3);
    synth(11, n, 2, 0.1, b, &X, &y);
    for (int k_tiny = 0; k_tiny < 2; k_tiny++) {
        for (size_t i = 0; i < n; i++) {
            X3[i * 3] = X[i * 2];
            X3[i * 3 + 1] = 0.1;          /* not exactly representable */
            if (k_tiny)                   /* 0 but for rounding: values around 1e-21 */
                X3[i * 3 + 1] = (double)(i % 7) * 1e-21;
            X3[i * 3 + 2] = X[i * 2 + 1];
        }
        for (int k = 0; k < 2; k++) {
            logreg_model m2 = {0}, m3 = {0};
            ck_assert_int_eq(logreg_fit(X, y, NULL, n, 2, lambdas[k], &m2), LS_OK);
            ck_assert_int_eq(logreg_fit(X3, y, NULL, n, 3, lambdas[k], &m3), LS_OK);
            ck_assert_double_eq(m3.scale[1], 1.0);
            ck_assert_double_eq(m3.coef[1], 0.0);
            ck_assert_double_eq_tol(m3.mean[1], k_tiny ? 3e-21 : 0.1, 1e-15);
            ck_assert_double_eq_tol(m3.coef[0], m2.coef[0], 1e-9);
            ck_assert_double_eq_tol(m3.coef[2], m2.coef[1], 1e-9);
            ck_assert_double_eq_tol(m3.intercept, m2.intercept, 1e-9);
            logreg_destroy(&m2);
            logreg_destroy(&m3);
        }
    }
    free(X);
    free(X3);
    free(y);
}
END_TEST

/* Weight k (0..3) on a row fits the same model as the row repeated k
 * times: same means, scales, coefficients and log-likelihood. */
START_TEST(test_weights_equal_repeated_rows)
{
    const double b[2] = {1.2, 0.7};
    const size_t n = 500;
    double *X, *y, w[500], *Xd = malloc(n * 3 * 2 * sizeof(double));
    double *yd = malloc(n * 3 * sizeof(double));
    uint64_t st = 99;
    size_t nd = 0;
    logreg_model mw = {0}, md = {0};

    ck_assert_ptr_nonnull(Xd);
    ck_assert_ptr_nonnull(yd);
    synth(5, n, 2, -0.3, b, &X, &y);
    for (size_t i = 0; i < n; i++) {
        w[i] = (double)(rng_next(&st) % 4);
        for (int k = 0; k < (int)w[i]; k++, nd++) {
            Xd[nd * 2] = X[i * 2];
            Xd[nd * 2 + 1] = X[i * 2 + 1];
            yd[nd] = y[i];
        }
    }
    ck_assert_int_eq(logreg_fit(X, y, w, n, 2, 0.5, &mw), LS_OK);
    ck_assert_int_eq(logreg_fit(Xd, yd, NULL, nd, 2, 0.5, &md), LS_OK);
    assert_models_close(&mw, &md, 1e-9);
    logreg_destroy(&mw);
    logreg_destroy(&md);
    free(X);
    free(y);
    free(Xd);
    free(yd);
}
END_TEST

/* A soft label 0.5 is the row split in two with weight 1/2, labels 0 and 1. */
START_TEST(test_soft_label_equals_split_row)
{
    double X[6] = {0, 1, 2, 3, 4, 5}, y[6] = {0, 0, 1, 0.5, 1, 1};
    double Xs[7] = {0, 1, 2, 3, 3, 4, 5}, ys[7] = {0, 0, 1, 0, 1, 1, 1};
    double ws[7] = {1, 1, 1, 0.5, 0.5, 1, 1};
    logreg_model a = {0}, b = {0};

    ck_assert_int_eq(logreg_fit(X, y, NULL, 6, 1, 0.1, &a), LS_OK);
    ck_assert_int_eq(logreg_fit(Xs, ys, ws, 7, 1, 0.1, &b), LS_OK);
    assert_models_close(&a, &b, 1e-9);
    logreg_destroy(&a);
    logreg_destroy(&b);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors and edges                                                    */
/* ------------------------------------------------------------------ */

START_TEST(test_rejects_bad_args)
{
    double X[4] = {0, 1, 2, 3}, y[4] = {0, 1, 0, 1}, w[4] = {1, 1, 1, 1};
    double bad[4], nan = NAN;
    logreg_opts o = logreg_opts_default();
    logreg_model m = {.d = 7, .intercept = 3.0, .iterations = 2};

    ck_assert_int_eq(logreg_fit(NULL, y, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    ck_assert(model_is_empty(&m));
    ck_assert_int_eq(logreg_fit(X, NULL, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 1, 1.0, NULL), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 0, 1, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 0, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, -1, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 1, LOGREG_MAX_FEATURES + 1, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, SIZE_MAX / 2, 3, 1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 1, -1.0, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 1, nan, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 1, INFINITY, &m), LS_EINVAL);
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, 4, 1, NULL, &m), LS_EINVAL);
    o.max_iter = 0;
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, 4, 1, &o, &m), LS_EINVAL);
    o = logreg_opts_default();
    o.tol = 0.0;
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, 4, 1, &o, &m), LS_EINVAL);

    memcpy(bad, y, sizeof bad);
    bad[2] = 2.0;                                   /* label out of range */
    ck_assert_int_eq(logreg_fit(X, bad, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    bad[2] = nan;
    ck_assert_int_eq(logreg_fit(X, bad, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    bad[2] = -0.1;
    ck_assert_int_eq(logreg_fit(X, bad, NULL, 4, 1, 1.0, &m), LS_EINVAL);

    memcpy(bad, X, sizeof bad);
    bad[1] = nan;                                   /* feature not finite */
    ck_assert_int_eq(logreg_fit(bad, y, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    bad[1] = -INFINITY;
    ck_assert_int_eq(logreg_fit(bad, y, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    ck_assert(model_is_empty(&m));

    memcpy(bad, w, sizeof bad);
    bad[0] = -1.0;                                  /* weights */
    ck_assert_int_eq(logreg_fit(X, y, bad, 4, 1, 1.0, &m), LS_EINVAL);
    bad[0] = INFINITY;
    ck_assert_int_eq(logreg_fit(X, y, bad, 4, 1, 1.0, &m), LS_EINVAL);
    bad[0] = nan;
    ck_assert_int_eq(logreg_fit(X, y, bad, 4, 1, 1.0, &m), LS_EINVAL);
    memset(bad, 0, sizeof bad);
    ck_assert_int_eq(logreg_fit(X, y, bad, 4, 1, 1.0, &m), LS_EINVAL);
    bad[1] = bad[3] = 1.0;                          /* weight only on y = 1 */
    ck_assert_int_eq(logreg_fit(X, y, bad, 4, 1, 1.0, &m), LS_EINVAL);

    memset(bad, 0, sizeof bad);                     /* one class only */
    ck_assert_int_eq(logreg_fit(X, bad, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    for (int i = 0; i < 4; i++)
        bad[i] = 1.0;
    ck_assert_int_eq(logreg_fit(X, bad, NULL, 4, 1, 1.0, &m), LS_EINVAL);
    ck_assert(model_is_empty(&m));
}
END_TEST

/* Too few iterations, and lambda 0 with two proportional columns (a
 * singular Hessian), both fail with LS_ECONVERGE and leave *out empty. */
START_TEST(test_not_converged)
{
    const double b[2] = {1.0, -1.0};
    const size_t n = 1000;
    double *X, *y;
    logreg_opts o = logreg_opts_default();
    logreg_model m = {0};

    synth(3, n, 2, 0.0, b, &X, &y);
    o.max_iter = 1;
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, n, 2, &o, &m), LS_ECONVERGE);
    ck_assert(model_is_empty(&m));
    for (size_t i = 0; i < n; i++)
        X[i * 2 + 1] = 3.0 * X[i * 2] + 1.0;
    ck_assert_int_eq(logreg_fit(X, y, NULL, n, 2, 0.0, &m), LS_ECONVERGE);
    ck_assert(model_is_empty(&m));
    ck_assert_int_eq(logreg_fit(X, y, NULL, n, 2, 1.0, &m), LS_OK);
    ck_assert_double_eq_tol(m.coef[0], m.coef[1], 1e-9);   /* split evenly */
    logreg_destroy(&m);
    free(X);
    free(y);
}
END_TEST

START_TEST(test_destroy_twice_and_extreme_predictions)
{
    double X[4] = {0, 1, 2, 3}, y[4] = {0, 1, 0, 1};
    double far_hi = 1e300, far_lo = -1e300;
    logreg_model m = {0};

    logreg_destroy(&m);                              /* empty: harmless */
    logreg_destroy(NULL);
    ck_assert_int_eq(logreg_fit(X, y, NULL, 4, 1, 1.0, &m), LS_OK);
    ck_assert(m.coef[0] > 0.0);
    ck_assert_double_eq(logreg_predict(&m, &far_hi), 1.0);
    ck_assert_double_eq(logreg_predict(&m, &far_lo), 0.0);
    logreg_destroy(&m);
    ck_assert(model_is_empty(&m));
    logreg_destroy(&m);
}
END_TEST


/* Sign constraints: a feature whose free coefficient comes out negative is
 * held at exactly 0 under sign +1, and the rest of the fit is then the fit
 * without that feature; a feature whose free coefficient is already on the
 * allowed side is not affected. */
START_TEST(sign_constraints_hold_a_coefficient_at_zero)
{
    enum { N = 400 };
    static double X[N * 2], X1[N], y[N];
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        double u = (double)(seed >> 8) / 16777216.0;
        seed = seed * 1103515245u + 12345u;
        double v = (double)(seed >> 8) / 16777216.0;
        X[2 * i] = u;
        X[2 * i + 1] = u + 0.3 * v;  /* correlated; its own effect negative */
        X1[i] = u;
        y[i] = (3.0 * u - 1.5 * v + 0.2 * ((i * 7) % 5 - 2) > 0.6) ? 1.0 : 0.0;
    }
    logreg_model free_m = {0}, con = {0}, one = {0};
    logreg_opts o = logreg_opts_default();
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, N, 2, &o, &free_m), LS_OK);
    ck_assert(free_m.coef[1] < 0);
    const signed char sign[2] = {0, +1};
    o.sign = sign;
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, N, 2, &o, &con), LS_OK);
    ck_assert(con.coef[1] == 0.0);
    o.sign = NULL;
    ck_assert_int_eq(logreg_fit_opts(X1, y, NULL, N, 1, &o, &one), LS_OK);
    /* same model as without the column: coefficients on the raw scale agree */
    ck_assert(fabs(con.coef[0] / con.scale[0] - one.coef[0] / one.scale[0]) < 1e-6);
    const signed char keep[2] = {0, -1};
    logreg_model same = {0};
    o.sign = keep;
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, N, 2, &o, &same), LS_OK);
    ck_assert(fabs(same.coef[1] - free_m.coef[1]) < 1e-6 && fabs(same.coef[0] - free_m.coef[0]) < 1e-6);
    const signed char bad[2] = {0, 2};
    o.sign = bad;
    logreg_model none = {0};
    ck_assert_int_eq(logreg_fit_opts(X, y, NULL, N, 2, &o, &none), LS_EINVAL);
    logreg_destroy(&free_m);
    logreg_destroy(&con);
    logreg_destroy(&one);
    logreg_destroy(&same);
}
END_TEST

static Suite *logreg_suite(void)
{
    Suite *s = suite_create("logreg");
    TCase *answers = tcase_create("answers");
    TCase *shape = tcase_create("shape");
    TCase *errors = tcase_create("errors");

    tcase_set_timeout(answers, 60);
    tcase_add_test(answers, sign_constraints_hold_a_coefficient_at_zero);
    tcase_add_test(answers, test_binary_feature_closed_form);
    tcase_add_test(answers, test_recovers_known_coefficients);
    tcase_add_test(answers, test_lambda_shrinks_monotonically);
    tcase_add_test(answers, test_separable_data_stays_finite);
    suite_add_tcase(s, answers);

    tcase_add_test(shape, test_constant_column);
    tcase_add_test(shape, test_weights_equal_repeated_rows);
    tcase_add_test(shape, test_soft_label_equals_split_row);
    suite_add_tcase(s, shape);

    tcase_add_test(errors, test_rejects_bad_args);
    tcase_add_test(errors, test_not_converged);
    tcase_add_test(errors, test_destroy_twice_and_extreme_predictions);
    suite_add_tcase(s, errors);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(logreg_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
