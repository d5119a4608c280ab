/* clv.c -- the maths behind clv.h: 2F1, BG/NBD, Gamma-Gamma and their fits.
 *
 * Laid out bottom-up: special functions (log-gamma, a scaled hypergeometric
 * series), the public 2F1, the two models' closed forms, a small
 * Nelder-Mead minimiser shared by both fits, the fits, and the value
 * helpers.  Everything is pure arithmetic on the caller's data: no
 * allocation, no global state, no logging.  Inputs are validated once, in
 * the public functions; the static "_row" helpers trust their arguments so
 * that the fits do not re-check every customer at every evaluation. */
#include "clv.h"

#include <math.h>
#include <string.h>

#include "leadscore/error.h"

#define PI_VALUE 3.14159265358979323846
#define LN_SQRT_2PI 0.91893853320467274178

/* Hypergeometric series: stop when a bound on the tail is below
 * SERIES_TOL of the sum; give up after SERIES_MAX_TERMS terms.  The partial
 * sum is kept as sum * exp(log_scale) and rescaled by SERIES_RESCALE so
 * that large intermediate sums do not overflow. */
#define SERIES_TOL 1e-16
#define SERIES_MAX_TERMS 1000000L
#define SERIES_RESCALE 1e200
#define SERIES_LOG_RESCALE 460.51701859880913680  /* ln(1e200) */

/* 2F1 near z = 1: use the 1-z connection formula above HYP_NEAR_ONE when
 * c-a-b is at least HYP_MIN_FRAC away from an integer (closer than that
 * its two terms cancel and the direct series is the better choice). */
#define HYP_NEAR_ONE 0.9
#define HYP_MIN_FRAC 0.05

/* Optimiser.  Parameters are searched as theta = ln(parameter).  Outside
 * |theta| <= OPT_THETA_MAX the objective is +inf; an optimum beyond
 * OPT_THETA_EDGE means the likelihood has no interior maximum. */
#define OPT_MAX_DIM 4
#define OPT_THETA_MAX 30.0
#define OPT_THETA_EDGE 25.0
#define OPT_START_MAX 20.0      /* a start is clamped into |theta| <= this */
#define OPT_MAX_EVALS 30000L
#define OPT_MAX_ROUNDS 12
#define NM_STEP_FIRST 0.5      /* initial simplex edge, first run */
#define NM_STEP_RESTART 0.1    /* initial simplex edge, restarts */
#define NM_FTOL 1e-13          /* spread of values in the final simplex */
#define NM_XTOL 1e-8           /* spread of theta in the final simplex */
#define RESTART_FTOL 1e-11     /* a restart that gains less than this ends */
#define GRAD_STEP 1e-5         /* central difference step in theta */
#define GRAD_TOL 1e-5          /* largest |d objective / d theta| accepted */

/* clv_value_discounted(): most periods summed. */
#define VALUE_MAX_PERIODS 100000.0

/* ========================================================================
 * Small predicates
 * ===================================================================== */

static int positive_finite(double v)
{
    return isfinite(v) && v > 0.0;
}

/* A whole number >= 0 (a count of repeat purchases). */
static int is_count(double v)
{
    return isfinite(v) && v >= 0.0 && v == floor(v);
}

static int is_nonpositive_integer(double v)
{
    return v <= 0.0 && v == floor(v);
}

static int bgnbd_valid(const clv_bgnbd *m)
{
    return m != NULL && positive_finite(m->r) && positive_finite(m->alpha) &&
           positive_finite(m->a) && positive_finite(m->b);
}

static int gamma_gamma_valid(const clv_gamma_gamma *m)
{
    return m != NULL && positive_finite(m->p) && positive_finite(m->q) &&
           positive_finite(m->gamma);
}

/* One customer summary: x a count, 0 <= t_x <= T, all finite. */
static int customer_valid(double x, double t_x, double T)
{
    return is_count(x) && isfinite(t_x) && isfinite(T) && t_x >= 0.0 &&
           t_x <= T;
}

/* A weight vector (may be NULL: all ones) is finite and >= 0; *sum gets
 * the total weight. */
static int weights_valid(const double *weight, size_t n, double *sum)
{
    double total = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        if (!isfinite(w) || w < 0.0)
            return 0;
        total += w;
    }
    *sum = total;
    return isfinite(total);
}

/* ========================================================================
 * Log-gamma
 *
 * Our own, because lgamma(3) writes the global signgam and so is not
 * thread-safe.  For x >= 15 the Stirling series with six Bernoulli terms
 * is exact to about 1e-16 relative; smaller x are shifted up with
 * Gamma(x) = Gamma(x+n) / (x (x+1) ... (x+n-1)).
 * ===================================================================== */

static double log_gamma(double x)   /* x > 0 */
{
    double prod = 1.0, inv, inv2, tail;

    while (x < 15.0) {
        prod *= x;
        x += 1.0;
    }
    inv = 1.0 / x;
    inv2 = inv * inv;
    tail = inv * (1.0 / 12.0 +
           inv2 * (-1.0 / 360.0 +
           inv2 * (1.0 / 1260.0 +
           inv2 * (-1.0 / 1680.0 +
           inv2 * (1.0 / 1188.0 +
           inv2 * (-691.0 / 360360.0))))));
    return (x - 0.5) * log(x) - x + LN_SQRT_2PI + tail - log(prod);
}

/* sin(pi x), accurate also for large |x|. */
static double sin_pi(double x)
{
    double n = nearbyint(x);
    double s = sin(PI_VALUE * (x - n));

    return fmod(n, 2.0) != 0.0 ? -s : s;
}

/* ln|Gamma(x)| and the sign of Gamma(x); x must not be 0 or a negative
 * integer.  Negative x by reflection: Gamma(x) Gamma(1-x) = pi/sin(pi x). */
static double log_gamma_signed(double x, int *sign)
{
    double s;

    if (x > 0.0) {
        *sign = 1;
        return log_gamma(x);
    }
    s = sin_pi(x);
    *sign = s < 0.0 ? -1 : 1;
    return log(PI_VALUE) - log(fabs(s)) - log_gamma(1.0 - x);
}

/* ========================================================================
 * Hypergeometric series
 * ===================================================================== */

/* A bound on |t_{j+1} / t_j| for every j >= k, where
 *     t_{j+1} / t_j = (p+j)(q+j) / ((s+j)(j+1)) * z,
 * or +inf while k is not yet past the zeros and poles of the ratio.  Each
 * of (p+j)/(j+1) and (q+j)/(s+j) is monotonic in j and tends to 1, so it
 * is bounded by the larger of 1 and its value at j = k. */
static double ratio_bound(double p, double q, double s, double z, double k)
{
    double f1, f2;

    if (p + k <= 0.0 || q + k <= 0.0 || s + k <= 0.0)
        return HUGE_VAL;
    /* fmax(1.0, .) without the libm call: both ratios are finite here */
    f1 = (p + k) / (k + 1.0);
    f2 = (q + k) / (s + k);
    return fabs(z) * (f1 > 1.0 ? f1 : 1.0) * (f2 > 1.0 ? f2 : 1.0);
}

/* Sum of t_k over k >= k0, given t_{k0} = first and the ratio above.  The
 * sum is *sum_out * exp(*log_scale_out).  The caller guarantees s + k != 0
 * for k >= k0.  Stops when the term is exactly 0 (a terminating series) or
 * when the tail bound term * rb / (1 - rb) is below SERIES_TOL of the sum;
 * LS_ECONVERGE after SERIES_MAX_TERMS terms or on overflow.
 *
 * The tail test needs ratio_bound (two divisions) but can only pass near
 * the end: rb >= |z| always, so while rb < 1, rb / (1 - rb) >= zr =
 * |z| / (1 - |z|), and while |term| * zr is above twice the tolerance (a
 * margin far wider than the few rounding errors between the two ways of
 * computing it) the test fails and rb is not computed.  The shortcut is
 * off for a sum below SERIES_TINY (subnormal rounding).
 *
 * Terms come SERIES_BLOCK at a time with one division: t_{k+i} is
 * t_k (n_k ... n_{k+i-1}) (d_{k+i} ... d_{k+3}) / (d_k ... d_{k+3}), n and
 * d the ratio's numerator (with z) and denominator, so the tests above run
 * once a block (the sum may take up to three terms more than a test at
 * every term would, each below the tolerance).  A block's products hold
 * eight factors, so parameters beyond SERIES_BLOCK_MAX (not met in the
 * models; 2F1 callers may pass any) take one term at a time. */
#define SERIES_TINY 1e-280
#define SERIES_BLOCK 4
#define SERIES_BLOCK_MAX 1e15

/* The next SERIES_BLOCK terms after term, whose index is k, added to *sum;
 * returns the last of them. */
static double series_block(double p, double q, double s, double z, double k, double term, double *sum)
{
    double n1 = (p + k) * (q + k) * z, d0 = (s + k) * (k + 1.0);
    double n2 = n1 * ((p + k + 1.0) * (q + k + 1.0) * z), d1 = (s + k + 1.0) * (k + 2.0);
    double n3 = n2 * ((p + k + 2.0) * (q + k + 2.0) * z), d2 = (s + k + 2.0) * (k + 3.0);
    double n4 = n3 * ((p + k + 3.0) * (q + k + 3.0) * z), d3 = (s + k + 3.0) * (k + 4.0);
    double d23 = d2 * d3, d123 = d1 * d23, scaled = term / (d0 * d123);
    double t4 = n4 * scaled;
    *sum += n1 * d123 * scaled;
    *sum += n2 * d23 * scaled;
    *sum += n3 * d3 * scaled;
    *sum += t4;
    return t4;
}

static int hyp_series(double p, double q, double s, double z, long k0,
                      double first, double *sum_out, double *log_scale_out)
{
    double term = first, sum = first, log_scale = 0.0;
    double az = fabs(z), zr = az < 1.0 ? az / (1.0 - az) : HUGE_VAL;
    int step = fabs(p) < SERIES_BLOCK_MAX && fabs(q) < SERIES_BLOCK_MAX && fabs(s) < SERIES_BLOCK_MAX
                   ? SERIES_BLOCK : 1;
    long k;

    for (k = k0; k < k0 + SERIES_MAX_TERMS; k += step) {
        double kd = (double)k, rb;

        if (term == 0.0)
            goto done;
        if (!(fabs(term) * zr > 2.0 * SERIES_TOL * fabs(sum) &&
              fabs(sum) > SERIES_TINY)) {
            rb = ratio_bound(p, q, s, z, kd);
            if (rb < 1.0 &&
                fabs(term) * rb / (1.0 - rb) <= SERIES_TOL * fabs(sum))
                goto done;
        }
        if (step == SERIES_BLOCK) {
            term = series_block(p, q, s, z, kd, term, &sum);
        } else {
            term *= (p + kd) * (q + kd) / ((s + kd) * (kd + 1.0)) * z;
            sum += term;
        }
        if (fabs(sum) > SERIES_RESCALE) {
            sum /= SERIES_RESCALE;
            term /= SERIES_RESCALE;
            log_scale += SERIES_LOG_RESCALE;
        }
        if (!isfinite(sum) || !isfinite(term))
            return LS_ECONVERGE;
    }
    return LS_ECONVERGE;
done:
    *sum_out = sum;
    *log_scale_out = log_scale;
    return LS_OK;
}

/* ========================================================================
 * Gaussian hypergeometric function 2F1
 *
 * The helpers return the value as *sum * exp(*log_scale) so that the
 * prefactors of the transformations can be applied in log space.
 * ===================================================================== */

/* ln|Gamma(g1) Gamma(g2) / (Gamma(d1) Gamma(d2))| and the ratio's sign;
 * *sign = 0 when d1 or d2 is a pole (1/Gamma = 0, so the ratio is 0).
 * g1 and g2 must not be poles. */
static double log_gamma_ratio(double g1, double g2, double d1, double d2,
                              int *sign)
{
    int s1, s2, s3, s4;
    double l;

    if (is_nonpositive_integer(d1) || is_nonpositive_integer(d2)) {
        *sign = 0;
        return 0.0;
    }
    l = log_gamma_signed(g1, &s1) + log_gamma_signed(g2, &s2) -
        log_gamma_signed(d1, &s3) - log_gamma_signed(d2, &s4);
    *sign = s1 * s2 * s3 * s4;
    return l;
}

/* Gauss: 2F1(a, b; c; 1) = Gamma(c) Gamma(c-a-b) / (Gamma(c-a) Gamma(c-b))
 * for c-a-b > 0. */
static int hyp2f1_at_one(double a, double b, double c, double *sum,
                         double *log_scale)
{
    int sign;
    double l;

    if (!(c - a - b > 0.0))
        return LS_ECONVERGE;
    l = log_gamma_ratio(c, c - a - b, c - a, c - b, &sign);
    *sum = (double)sign;
    *log_scale = l;
    return LS_OK;
}

/* 0.9 < z < 1, d = c-a-b not an integer, a and b not poles:
 *   2F1(a,b;c;z) = G(c)G(d)/(G(c-a)G(c-b))     2F1(a, b; 1-d; 1-z)
 *                + (1-z)^d G(c)G(-d)/(G(a)G(b)) 2F1(c-a, c-b; 1+d; 1-z). */
static int hyp2f1_connection(double a, double b, double c, double z,
                             double *sum, double *log_scale)
{
    double d = c - a - b, w = 1.0 - z;
    double s1, l1, s2, l2, big;
    int sign1, sign2, rc;

    rc = hyp_series(a, b, 1.0 - d, w, 0, 1.0, &s1, &l1);
    if (rc != LS_OK)
        return rc;
    rc = hyp_series(c - a, c - b, 1.0 + d, w, 0, 1.0, &s2, &l2);
    if (rc != LS_OK)
        return rc;
    l1 += log_gamma_ratio(c, d, c - a, c - b, &sign1);
    l2 += log_gamma_ratio(c, -d, a, b, &sign2) + d * log(w);
    big = sign1 != 0 ? fmax(l1, l2) : l2;
    *sum = (sign1 != 0 ? sign1 * s1 * exp(l1 - big) : 0.0) +
           sign2 * s2 * exp(l2 - big);
    *log_scale = big;
    return LS_OK;
}

/* 0 <= z <= 1, c not a pole. */
static int hyp2f1_unit(double a, double b, double c, double z, double *sum,
                       double *log_scale)
{
    double d = c - a - b;

    if (z == 1.0)
        return hyp2f1_at_one(a, b, c, sum, log_scale);
    if (z > HYP_NEAR_ONE && fabs(d - nearbyint(d)) >= HYP_MIN_FRAC &&
        !is_nonpositive_integer(a) && !is_nonpositive_integer(b))
        return hyp2f1_connection(a, b, c, z, sum, log_scale);
    return hyp_series(a, b, c, z, 0, 1.0, sum, log_scale);
}

int clv_hyp2f1(double a, double b, double c, double z, double *out)
{
    double sum = 0.0, log_scale = 0.0, value;
    int rc;

    if (out == NULL || !isfinite(a) || !isfinite(b) || !isfinite(c) ||
        !isfinite(z) || is_nonpositive_integer(c))
        return LS_EINVAL;
    if (is_nonpositive_integer(a) || is_nonpositive_integer(b)) {
        /* a polynomial: the series terminates for every z */
        rc = hyp_series(a, b, c, z, 0, 1.0, &sum, &log_scale);
    } else if (z > 1.0) {
        rc = LS_ECONVERGE;
    } else if (z < 0.0) {
        /* Pfaff: 2F1(a,b;c;z) = (1-z)^-a 2F1(a, c-b; c; z/(z-1)) */
        rc = hyp2f1_unit(a, c - b, c, z / (z - 1.0), &sum, &log_scale);
        log_scale -= a * log1p(-z);
    } else {
        rc = hyp2f1_unit(a, b, c, z, &sum, &log_scale);
    }
    if (rc != LS_OK)
        return rc;
    value = sum == 0.0 ? 0.0 : sum * exp(log_scale);
    if (!isfinite(value))
        return LS_ECONVERGE;
    *out = value;
    return LS_OK;
}

/* ========================================================================
 * BG/NBD closed forms (arguments trusted)
 * ===================================================================== */

static double log_add_exp(double u, double v)
{
    double hi = fmax(u, v), lo = fmin(u, v);

    return hi + log1p(exp(lo - hi));
}

/* Equation 6 of the paper, as
 *   ln L = A1 + A2 + ln(exp(A3) + [x > 0] exp(A4)),
 *   A1 = ln G(r+x) - ln G(r) + r ln alpha,
 *   A2 = ln B(a, b+x) - ln B(a, b),
 *   A3 = -(r+x) ln(alpha+T),
 *   A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x). */
static double bgnbd_loglik_row(const clv_bgnbd *m, double x, double t_x,
                               double T)
{
    double r = m->r, alpha = m->alpha, a = m->a, b = m->b;
    double a1 = log_gamma(r + x) - log_gamma(r) + r * log(alpha);
    double a2 = log_gamma(a + b) + log_gamma(b + x) - log_gamma(b) -
                log_gamma(a + b + x);
    double a3 = -(r + x) * log(alpha + T);

    if (x > 0.0) {
        double a4 = log(a) - log(b + x - 1.0) - (r + x) * log(alpha + t_x);
        return a1 + a2 + log_add_exp(a3, a4);
    }
    return a1 + a2 + a3;
}

/* 1 / (1 + exp(L)), L = ln a - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x)) */
static double bgnbd_p_alive_row(const clv_bgnbd *m, double x, double t_x,
                                double T)
{
    double l;

    if (x == 0.0)
        return 1.0;
    l = log(m->a) - log(m->b + x - 1.0) +
        (m->r + x) * log1p((T - t_x) / (m->alpha + t_x));
    return 1.0 / (1.0 + exp(l));
}

/* The bracket shared by equations 7 and 10,
 *     C/(a-1) * [1 - (1-z)^A 2F1(A, C-a+1; C; z)],
 * with A = r+x, C = a+b+x-1, z = t/(alpha+T+t) (x = T = 0 for eq. 7).
 * Euler's transformation turns (1-z)^A 2F1(A, B; C; z), B = C-e, e = a-1,
 * into (1-z)^e 2F1(C-A, e; C; z), whose terms past the first all carry the
 * factor e; dividing it out gives
 *     C Q - (1-z)^e G,
 *     Q = (1 - (1-z)^e) / e                    (-ln(1-z) when e == 0),
 *     G = sum_{k>=1} (C-A)_k (a)_{k-1} / ((C+1)_{k-1} k!) z^k,
 * with no cancellation at a == 1 and no division by C (C+1 = a+b+x > 0).
 * log1mz = ln(1-z), passed in because the caller has it more accurately
 * than log1p(-z). */
/* Terms of the table's series summed per check: two blocks of eight
 * partial sums. */
#define TABLE_STEP 16

/* G of bgnbd_bracket from the table's coefficients: sum_k coef[k-1] z^k,
 * eight partial sums over z^8 steps, with hyp_series' stopping rule
 * tested every TABLE_STEP terms.  LS_ECONVERGE when the table cannot
 * answer (other parameters, x not in it, the series longer than it). */
static int table_sum(const clv_bgnbd_table *t, const clv_bgnbd *m, double x, double A, double C, double z,
                     double *out)
{
    int xi = (int)x;
    if (!(x >= 0.0 && x < CLV_TABLE_X && x == (double)xi) || !(z >= 0.0 && z < 1.0) || t->params.r != m->r ||
        t->params.alpha != m->alpha || t->params.a != m->a || t->params.b != m->b)
        return LS_ECONVERGE;
    const double *coef = t->coef[xi];
    double zp[8], acc[8] = {0}, z8, power = z, zr = z / (1.0 - z);
    zp[0] = 1.0;
    for (int j = 1; j < 8; j++)
        zp[j] = zp[j - 1] * z;
    z8 = zp[7] * z;
    for (int k = 0; k + TABLE_STEP <= t->nterms[xi]; k += TABLE_STEP) {
        for (int j = 0; j < 8; j++)
            acc[j] += coef[k + j] * power;
        power *= z8;
        for (int j = 0; j < 8; j++)
            acc[j] += coef[k + 8 + j] * power;
        double last = coef[k + 15] * power * zp[7], sum = 0.0; /* term k + 16 */
        for (int j = 0; j < 8; j++)
            sum += acc[j] * zp[j];
        power *= z8;
        if (!(fabs(last) * zr > 2.0 * SERIES_TOL * fabs(sum))) {
            double rb = ratio_bound(C - A, m->a - 1.0, C, z, (double)(k + TABLE_STEP));
            if (rb < 1.0 && fabs(last) * rb / (1.0 - rb) <= SERIES_TOL * fabs(sum)) {
                *out = sum;
                return isfinite(sum) ? LS_OK : LS_ECONVERGE;
            }
        }
    }
    return LS_ECONVERGE;
}

void clv_bgnbd_table_init(const clv_bgnbd *m, clv_bgnbd_table *t)
{
    memset(t, 0, sizeof *t);
    t->params = *m;
    double p = m->a + m->b - 1.0 - m->r, q = m->a - 1.0; /* C - A and e, the same for every x */
    for (int x = 0; x < CLV_TABLE_X; x++) {
        double s = m->a + m->b + x - 1.0, c = p;     /* C */
        int n = 0;
        for (; n < CLV_TABLE_TERMS && isfinite(c) && fabs(c) < 1e280; n++) {
            t->coef[x][n] = c;
            c *= (p + n + 1.0) * (q + n + 1.0) / ((s + n + 1.0) * (n + 2.0));
        }
        t->nterms[x] = n;
    }
}

static int bgnbd_bracket(const clv_bgnbd *m, const clv_bgnbd_table *tab, double x, double A, double C, double z,
                         double log1mz, double *out)
{
    double e = m->a - 1.0, q, g = 0.0, log_scale = 0.0, value;
    int rc = LS_ECONVERGE;

    q = e == 0.0 ? -log1mz : -expm1(e * log1mz) / e;
    if (tab != NULL)
        rc = table_sum(tab, m, x, A, C, z, &g);
    if (rc != LS_OK)
        rc = hyp_series(C - A, e, C, z, 1, (C - A) * z, &g, &log_scale);
    if (rc != LS_OK)
        return rc;
    if (g != 0.0)
        g *= exp(e * log1mz + log_scale);
    value = C * q - g;
    if (!isfinite(value))
        return LS_ECONVERGE;
    *out = fmax(value, 0.0);
    return LS_OK;
}

/* ========================================================================
 * BG/NBD public functions
 * ===================================================================== */

int clv_bgnbd_p_alive(const clv_bgnbd *m, double x, double t_x, double T,
                      double *out)
{
    if (out == NULL || !bgnbd_valid(m) || !customer_valid(x, t_x, T))
        return LS_EINVAL;
    *out = bgnbd_p_alive_row(m, x, t_x, T);
    return LS_OK;
}

/* clv_bgnbd_expected() with the coefficient table tab (or NULL). */
static int bgnbd_expected(const clv_bgnbd *m, const clv_bgnbd_table *tab, double x, double t_x, double T, double t,
                          double *out)
{
    double bracket, span;
    int rc;

    if (out == NULL || !bgnbd_valid(m) || !customer_valid(x, t_x, T) ||
        !isfinite(t) || t < 0.0)
        return LS_EINVAL;
    span = m->alpha + T;
    rc = bgnbd_bracket(m, tab, x, m->r + x, m->a + m->b + x - 1.0, t / (span + t), -log1p(t / span), &bracket);
    if (rc != LS_OK)
        return rc;
    *out = bracket * bgnbd_p_alive_row(m, x, t_x, T);
    return LS_OK;
}

int clv_bgnbd_expected(const clv_bgnbd *m, double x, double t_x, double T,
                       double t, double *out)
{
    return bgnbd_expected(m, NULL, x, t_x, T, t, out);
}

int clv_bgnbd_expected_unconditional(const clv_bgnbd *m, double t,
                                     double *out)
{
    return clv_bgnbd_expected(m, 0.0, 0.0, 0.0, t, out);
}

int clv_bgnbd_loglik(const clv_bgnbd *m, double x, double t_x, double T,
                     double *out)
{
    if (out == NULL || !bgnbd_valid(m) || !customer_valid(x, t_x, T))
        return LS_EINVAL;
    *out = bgnbd_loglik_row(m, x, t_x, T);
    return LS_OK;
}

/* Every row a valid customer and the weights valid; *wsum the total. */
static int bgnbd_data_valid(const double *x, const double *t_x,
                            const double *T, const double *weight, size_t n,
                            double *wsum)
{
    size_t i;

    if (n > 0 && (x == NULL || t_x == NULL || T == NULL))
        return 0;
    for (i = 0; i < n; i++)
        if (!customer_valid(x[i], t_x[i], T[i]))
            return 0;
    return weights_valid(weight, n, wsum);
}

/* Rows with x below this share their x-only terms through a cache. */
#define LOGLIK_CACHE 64

/* The sum of bgnbd_loglik_row over the rows, bit for bit: the terms that
 * depend on x alone (A1 + A2, ln a - ln(b+x-1)) are computed once per
 * distinct small x, in the same expression order, so the fit costs two
 * logarithms per row and evaluation instead of six log-gammas. */
static double bgnbd_loglik_rows(const clv_bgnbd *m, const double *x,
                                const double *t_x, const double *T,
                                const double *weight, size_t n)
{
    double total = 0.0, a12[LOGLIK_CACHE], a4c[LOGLIK_CACHE];
    double r = m->r, alpha = m->alpha, a = m->a, b = m->b;
    double lg_r = log_gamma(r), r_log_alpha = r * log(alpha);
    double lg_ab = log_gamma(a + b), lg_b = log_gamma(b), log_a = log(a);
    unsigned char have[LOGLIK_CACHE] = {0};
    size_t i;

    for (i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0, xi = x[i], ll;
        if (w == 0.0)
            continue;
        if (xi >= (double)LOGLIK_CACHE) {
            total += w * bgnbd_loglik_row(m, xi, t_x[i], T[i]);
            continue;
        }
        int k = (int)xi;
        if (!have[k]) {
            double a1 = log_gamma(r + xi) - lg_r + r_log_alpha;
            double a2 = lg_ab + log_gamma(b + xi) - lg_b - log_gamma(a + b + xi);
            a12[k] = a1 + a2;
            a4c[k] = xi > 0.0 ? log_a - log(b + xi - 1.0) : 0.0;
            have[k] = 1;
        }
        double a3 = -(r + xi) * log(alpha + T[i]);
        if (xi > 0.0)
            ll = a12[k] + log_add_exp(a3, a4c[k] - (r + xi) * log(alpha + t_x[i]));
        else
            ll = a12[k] + a3;
        total += w * ll;
    }
    return total;
}

int clv_bgnbd_loglik_sum(const clv_bgnbd *m, const double *x,
                         const double *t_x, const double *T,
                         const double *weight, size_t n, double *out)
{
    double wsum;

    if (out == NULL || !bgnbd_valid(m) ||
        !bgnbd_data_valid(x, t_x, T, weight, n, &wsum))
        return LS_EINVAL;
    *out = bgnbd_loglik_rows(m, x, t_x, T, weight, n);
    return LS_OK;
}

int clv_bgnbd_p_buy(const clv_bgnbd *m, double x, double t_x, double T,
                    double tau, double *out)
{
    double silent;

    if (out == NULL || !bgnbd_valid(m) || !customer_valid(x, t_x, T) ||
        !isfinite(tau) || tau < 0.0)
        return LS_EINVAL;
    /* 1 - ((alpha+T)/(alpha+T+tau))^(r+x) */
    silent = -expm1(-(m->r + x) * log1p(tau / (m->alpha + T)));
    *out = bgnbd_p_alive_row(m, x, t_x, T) * silent;
    return LS_OK;
}

/* ========================================================================
 * NBD
 * ===================================================================== */

static int nbd_valid(const clv_nbd *m)
{
    return m != NULL && positive_finite(m->r) && positive_finite(m->alpha);
}

static double nbd_loglik_row(const clv_nbd *m, double x, double T)
{
    return log_gamma(m->r + x) - log_gamma(m->r) + m->r * log(m->alpha) -
           (m->r + x) * log(m->alpha + T);
}

int clv_nbd_p_buy(const clv_nbd *m, double x, double t_x, double T,
                  double tau, double *out)
{
    if (out == NULL || !nbd_valid(m) || !customer_valid(x, t_x, T) ||
        !isfinite(tau) || tau < 0.0)
        return LS_EINVAL;
    *out = -expm1(-(m->r + x) * log1p(tau / (m->alpha + T)));
    return LS_OK;
}

int clv_nbd_expected(const clv_nbd *m, double x, double t_x, double T,
                     double t, double *out)
{
    if (out == NULL || !nbd_valid(m) || !customer_valid(x, t_x, T) ||
        !isfinite(t) || t < 0.0)
        return LS_EINVAL;
    *out = (m->r + x) / (m->alpha + T) * t;
    return LS_OK;
}

int clv_nbd_loglik(const clv_nbd *m, double x, double t_x, double T,
                   double *out)
{
    if (out == NULL || !nbd_valid(m) || !customer_valid(x, t_x, T))
        return LS_EINVAL;
    *out = nbd_loglik_row(m, x, T);
    return LS_OK;
}

/* ========================================================================
 * Gamma-Gamma closed forms
 * ===================================================================== */

/* x >= 1, zbar > 0 */
static double gamma_gamma_loglik_row(const clv_gamma_gamma *m, double x,
                                     double zbar)
{
    double px = m->p * x, q = m->q, g = m->gamma;

    return log_gamma(px + q) - log_gamma(px) - log_gamma(q) + q * log(g) +
           (px - 1.0) * log(zbar) + px * log(x) - (px + q) * log(g + x * zbar);
}

int clv_gamma_gamma_expected_spend(const clv_gamma_gamma *m, double x,
                                   double zbar, double *out)
{
    double value;

    if (out == NULL || !gamma_gamma_valid(m) || !(m->q > 1.0) ||
        !is_count(x) || !isfinite(zbar) || zbar < 0.0)
        return LS_EINVAL;
    if (x == 0.0)
        value = m->p * m->gamma / (m->q - 1.0);
    else
        value = (m->gamma + x * zbar) * m->p / (m->p * x + m->q - 1.0);
    if (!isfinite(value))
        return LS_EINVAL;
    *out = value;
    return LS_OK;
}

int clv_gamma_gamma_loglik(const clv_gamma_gamma *m, double x, double zbar,
                           double *out)
{
    if (out == NULL || !gamma_gamma_valid(m) || !is_count(x) || x < 1.0 ||
        !positive_finite(zbar))
        return LS_EINVAL;
    *out = gamma_gamma_loglik_row(m, x, zbar);
    return LS_OK;
}

/* Rows with x >= 1 have zbar > 0; weights valid; *wsum = the total weight
 * of the rows with x >= 1. */
static int gamma_gamma_data_valid(const double *x, const double *zbar,
                                  const double *weight, size_t n,
                                  double *wsum)
{
    double total = 0.0, all;
    size_t i;

    if (n > 0 && (x == NULL || zbar == NULL))
        return 0;
    if (!weights_valid(weight, n, &all))
        return 0;
    for (i = 0; i < n; i++) {
        if (!is_count(x[i]))
            return 0;
        if (x[i] == 0.0)
            continue;
        if (!positive_finite(zbar[i]))
            return 0;
        total += weight ? weight[i] : 1.0;
    }
    *wsum = total;
    return 1;
}

static double gamma_gamma_loglik_rows(const clv_gamma_gamma *m,
                                      const double *x, const double *zbar,
                                      const double *weight, size_t n)
{
    double total = 0.0;
    size_t i;

    for (i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        if (x[i] != 0.0 && w != 0.0)
            total += w * gamma_gamma_loglik_row(m, x[i], zbar[i]);
    }
    return total;
}

int clv_gamma_gamma_loglik_sum(const clv_gamma_gamma *m, const double *x,
                               const double *zbar, const double *weight,
                               size_t n, double *out)
{
    double wsum;

    if (out == NULL || !gamma_gamma_valid(m) ||
        !gamma_gamma_data_valid(x, zbar, weight, n, &wsum))
        return LS_EINVAL;
    *out = gamma_gamma_loglik_rows(m, x, zbar, weight, n);
    return LS_OK;
}

/* ========================================================================
 * Minimiser: Nelder-Mead on log-parameters, restarted until a restart
 * gains nothing, then a gradient check.
 * ===================================================================== */

/* Objective to minimise at theta (dim values); may return +inf or NaN. */
typedef double (*objective_fn)(const double *theta, const void *ctx);

typedef struct {
    objective_fn f;
    const void *ctx;
    int dim;
    long evals;      /* evaluations so far, against OPT_MAX_EVALS */
} problem;

static double evaluate(problem *pb, const double *theta)
{
    double v;
    int i;

    pb->evals++;
    for (i = 0; i < pb->dim; i++)
        if (!(fabs(theta[i]) <= OPT_THETA_MAX))
            return HUGE_VAL;
    v = pb->f(theta, pb->ctx);
    return isfinite(v) ? v : HUGE_VAL;
}

typedef struct {
    double v[OPT_MAX_DIM + 1][OPT_MAX_DIM];   /* vertices */
    double f[OPT_MAX_DIM + 1];                /* their values */
} simplex;

/* Insertion sort of the n+1 vertices by value, best first. */
static void simplex_sort(simplex *s, int n)
{
    int i, j, k;

    for (i = 1; i <= n; i++) {
        for (j = i; j > 0 && s->f[j] < s->f[j - 1]; j--) {
            double tf = s->f[j];
            s->f[j] = s->f[j - 1];
            s->f[j - 1] = tf;
            for (k = 0; k < n; k++) {
                double tv = s->v[j][k];
                s->v[j][k] = s->v[j - 1][k];
                s->v[j - 1][k] = tv;
            }
        }
    }
}

/* Sorted simplex small enough in both value and position. */
static int simplex_converged(const simplex *s, int n)
{
    int i, k;

    if (!(s->f[n] - s->f[0] <= NM_FTOL))
        return 0;
    for (i = 1; i <= n; i++)
        for (k = 0; k < n; k++)
            if (fabs(s->v[i][k] - s->v[0][k]) > NM_XTOL)
                return 0;
    return 1;
}

/* out = c + t (from - c), where c is the centroid of all but the worst. */
static void simplex_point(const double *c, const double *from, double t,
                          int n, double *out)
{
    int k;

    for (k = 0; k < n; k++)
        out[k] = c[k] + t * (from[k] - c[k]);
}

static void simplex_take(simplex *s, int n, const double *v, double f)
{
    int k;

    for (k = 0; k < n; k++)
        s->v[n][k] = v[k];
    s->f[n] = f;
}

static void simplex_shrink(problem *pb, simplex *s, int n)
{
    int i, k;

    for (i = 1; i <= n; i++) {
        for (k = 0; k < n; k++)
            s->v[i][k] = s->v[0][k] + 0.5 * (s->v[i][k] - s->v[0][k]);
        s->f[i] = evaluate(pb, s->v[i]);
    }
}

/* One step: reflect the worst vertex through the centroid of the others,
 * then expand, contract or shrink (the standard coefficients 1, 2, 1/2,
 * 1/2). */
static void simplex_step(problem *pb, simplex *s, int n)
{
    double c[OPT_MAX_DIM] = {0}, xr[OPT_MAX_DIM], xt[OPT_MAX_DIM];
    double fr, ft;
    int i, k;

    for (i = 0; i < n; i++)
        for (k = 0; k < n; k++)
            c[k] += s->v[i][k] / n;
    simplex_point(c, s->v[n], -1.0, n, xr);
    fr = evaluate(pb, xr);
    if (fr < s->f[0]) {
        simplex_point(c, s->v[n], -2.0, n, xt);
        ft = evaluate(pb, xt);
        if (ft < fr)
            simplex_take(s, n, xt, ft);
        else
            simplex_take(s, n, xr, fr);
        return;
    }
    if (fr < s->f[n - 1]) {
        simplex_take(s, n, xr, fr);
        return;
    }
    if (fr < s->f[n]) {
        simplex_point(c, s->v[n], -0.5, n, xt);     /* outside */
        ft = evaluate(pb, xt);
        if (ft <= fr) {
            simplex_take(s, n, xt, ft);
            return;
        }
    } else {
        simplex_point(c, s->v[n], 0.5, n, xt);      /* inside */
        ft = evaluate(pb, xt);
        if (ft < s->f[n]) {
            simplex_take(s, n, xt, ft);
            return;
        }
    }
    simplex_shrink(pb, s, n);
}

/* One Nelder-Mead run from theta, initial simplex edge `step`.  On return
 * theta is the best vertex and *fbest its value.  LS_OK when the simplex
 * converged, LS_ECONVERGE when the evaluation budget ran out first. */
static int nelder_mead(problem *pb, double *theta, double step,
                       double *fbest)
{
    simplex s;
    int n = pb->dim, i, k, rc = LS_ECONVERGE;

    for (i = 0; i <= n; i++) {
        for (k = 0; k < n; k++)
            s.v[i][k] = theta[k] + (i == k + 1 ? step : 0.0);
        s.f[i] = evaluate(pb, s.v[i]);
    }
    while (pb->evals < OPT_MAX_EVALS) {
        simplex_sort(&s, n);
        if (simplex_converged(&s, n)) {
            rc = LS_OK;
            break;
        }
        simplex_step(pb, &s, n);
    }
    simplex_sort(&s, n);
    for (k = 0; k < n; k++)
        theta[k] = s.v[0][k];
    *fbest = s.f[0];
    return rc;
}

/* The optimum is interior and flat: every |theta| within OPT_THETA_EDGE
 * and every central-difference derivative within GRAD_TOL. */
static int optimum_acceptable(problem *pb, const double *theta)
{
    double probe[OPT_MAX_DIM];
    int i, k;

    for (i = 0; i < pb->dim; i++)
        if (!(fabs(theta[i]) <= OPT_THETA_EDGE))
            return 0;
    for (i = 0; i < pb->dim; i++) {
        double up, down;
        for (k = 0; k < pb->dim; k++)
            probe[k] = theta[k];
        probe[i] = theta[i] + GRAD_STEP;
        up = evaluate(pb, probe);
        probe[i] = theta[i] - GRAD_STEP;
        down = evaluate(pb, probe);
        if (!(fabs(up - down) / (2.0 * GRAD_STEP) <= GRAD_TOL))
            return 0;
    }
    return 1;
}

/* Minimise pb from theta (clamped into the search box first); theta gets
 * the optimum on LS_OK. */
static int minimise(problem *pb, double *theta)
{
    double f = HUGE_VAL, fnew, step = NM_STEP_FIRST;
    int round, rc, k;

    for (k = 0; k < pb->dim; k++)
        theta[k] = fmax(-OPT_START_MAX, fmin(OPT_START_MAX, theta[k]));
    for (round = 0; round < OPT_MAX_ROUNDS; round++) {
        rc = nelder_mead(pb, theta, step, &fnew);
        if (rc != LS_OK)
            return rc;
        if (!(fnew < HUGE_VAL))
            return LS_ECONVERGE;
        if (f - fnew <= RESTART_FTOL)
            return optimum_acceptable(pb, theta) ? LS_OK : LS_ECONVERGE;
        f = fnew;
        step = NM_STEP_RESTART;
    }
    return LS_ECONVERGE;
}

/* minimise() from the caller's start; if that fails, once more from
 * theta = 0 (every parameter 1) with a fresh budget.  A start far from the
 * optimum can end on a ridge of the likelihood (BG/NBD: a -> 0, b -> inf,
 * the NBD limit), which the gradient check rejects. */
static int minimise_from(problem *pb, double *theta)
{
    double start[OPT_MAX_DIM];
    int k, rc, neutral = 1;

    for (k = 0; k < pb->dim; k++) {
        start[k] = theta[k];
        neutral = neutral && theta[k] == 0.0;
    }
    rc = minimise(pb, start);
    if (rc != LS_OK && !neutral) {
        for (k = 0; k < pb->dim; k++)
            start[k] = 0.0;
        pb->evals = 0;
        rc = minimise(pb, start);
    }
    if (rc == LS_OK)
        for (k = 0; k < pb->dim; k++)
            theta[k] = start[k];
    return rc;
}

/* ========================================================================
 * Fits
 * ===================================================================== */

typedef struct {
    const double *x, *t_x, *T, *weight;
    size_t n;
    double wsum;
} bgnbd_data;

static clv_bgnbd bgnbd_from_theta(const double *theta)
{
    clv_bgnbd m = {exp(theta[0]), exp(theta[1]), exp(theta[2]),
                   exp(theta[3])};
    return m;
}

/* Mean negative log-likelihood per unit of weight. */
static double bgnbd_objective(const double *theta, const void *ctx)
{
    const bgnbd_data *d = ctx;
    clv_bgnbd m = bgnbd_from_theta(theta);

    return -bgnbd_loglik_rows(&m, d->x, d->t_x, d->T, d->weight, d->n) /
           d->wsum;
}

int clv_bgnbd_fit_weighted(const double *x, const double *t_x,
                           const double *T, const double *weight, size_t n,
                           clv_bgnbd *inout, double *loglik_out)
{
    bgnbd_data d = {x, t_x, T, weight, n, 0.0};
    problem pb = {bgnbd_objective, &d, 4, 0};
    double theta[4];
    clv_bgnbd fitted;
    int rc;

    if (!bgnbd_valid(inout) || n == 0 ||
        !bgnbd_data_valid(x, t_x, T, weight, n, &d.wsum) || !(d.wsum > 0.0))
        return LS_EINVAL;
    theta[0] = log(inout->r);
    theta[1] = log(inout->alpha);
    theta[2] = log(inout->a);
    theta[3] = log(inout->b);
    rc = minimise_from(&pb, theta);
    if (rc != LS_OK)
        return rc;
    fitted = bgnbd_from_theta(theta);
    *inout = fitted;
    if (loglik_out != NULL)
        *loglik_out = bgnbd_loglik_rows(&fitted, x, t_x, T, weight, n);
    return LS_OK;
}

int clv_bgnbd_fit(const double *x, const double *t_x, const double *T,
                  size_t n, clv_bgnbd *inout, double *loglik_out)
{
    return clv_bgnbd_fit_weighted(x, t_x, T, NULL, n, inout, loglik_out);
}

/* Mean negative log-likelihood per unit of weight; the x-only terms are
 * cached per small x as in bgnbd_loglik_rows. */
static double nbd_objective(const double *theta, const void *ctx)
{
    const bgnbd_data *d = ctx;
    clv_nbd m = {exp(theta[0]), exp(theta[1])};
    double total = 0.0, c[LOGLIK_CACHE], base = -log_gamma(m.r) + m.r * log(m.alpha);
    unsigned char have[LOGLIK_CACHE] = {0};
    size_t i;

    for (i = 0; i < d->n; i++) {
        double w = d->weight ? d->weight[i] : 1.0, xi = d->x[i];
        if (w == 0.0)
            continue;
        if (xi >= (double)LOGLIK_CACHE) {
            total += w * nbd_loglik_row(&m, xi, d->T[i]);
            continue;
        }
        int k = (int)xi;
        if (!have[k]) {
            c[k] = log_gamma(m.r + xi) + base;
            have[k] = 1;
        }
        total += w * (c[k] - (m.r + xi) * log(m.alpha + d->T[i]));
    }
    return -total / d->wsum;
}

int clv_nbd_fit_weighted(const double *x, const double *t_x, const double *T,
                         const double *weight, size_t n, clv_nbd *inout,
                         double *loglik_out)
{
    bgnbd_data d = {x, t_x, T, weight, n, 0.0};
    problem pb = {nbd_objective, &d, 2, 0};
    double theta[2];
    int rc;

    if (!nbd_valid(inout) || n == 0 ||
        !bgnbd_data_valid(x, t_x, T, weight, n, &d.wsum) || !(d.wsum > 0.0))
        return LS_EINVAL;
    theta[0] = log(inout->r);
    theta[1] = log(inout->alpha);
    rc = minimise_from(&pb, theta);
    if (rc != LS_OK)
        return rc;
    inout->r = exp(theta[0]);
    inout->alpha = exp(theta[1]);
    if (loglik_out != NULL)
        *loglik_out = -nbd_objective(theta, &d) * d.wsum;
    return LS_OK;
}

typedef struct {
    const double *x, *zbar, *weight;
    size_t n;
    double wsum;
} gamma_gamma_data;

static clv_gamma_gamma gamma_gamma_from_theta(const double *theta)
{
    clv_gamma_gamma m = {exp(theta[0]), exp(theta[1]), exp(theta[2])};
    return m;
}

static double gamma_gamma_objective(const double *theta, const void *ctx)
{
    const gamma_gamma_data *d = ctx;
    clv_gamma_gamma m = gamma_gamma_from_theta(theta);

    return -gamma_gamma_loglik_rows(&m, d->x, d->zbar, d->weight, d->n) /
           d->wsum;
}

int clv_gamma_gamma_fit_weighted(const double *x, const double *zbar,
                                 const double *weight, size_t n,
                                 clv_gamma_gamma *inout, double *loglik_out)
{
    gamma_gamma_data d = {x, zbar, weight, n, 0.0};
    problem pb = {gamma_gamma_objective, &d, 3, 0};
    double theta[3];
    clv_gamma_gamma fitted;
    int rc;

    if (!gamma_gamma_valid(inout) ||
        !gamma_gamma_data_valid(x, zbar, weight, n, &d.wsum) ||
        !(d.wsum > 0.0))
        return LS_EINVAL;
    theta[0] = log(inout->p);
    theta[1] = log(inout->q);
    theta[2] = log(inout->gamma);
    rc = minimise_from(&pb, theta);
    if (rc != LS_OK)
        return rc;
    fitted = gamma_gamma_from_theta(theta);
    *inout = fitted;
    if (loglik_out != NULL)
        *loglik_out = gamma_gamma_loglik_rows(&fitted, x, zbar, weight, n);
    return LS_OK;
}

int clv_gamma_gamma_fit(const double *x, const double *zbar, size_t n,
                        clv_gamma_gamma *inout, double *loglik_out)
{
    return clv_gamma_gamma_fit_weighted(x, zbar, NULL, n, inout, loglik_out);
}

/* ========================================================================
 * Customer value
 * ===================================================================== */

/* clv_value() with the coefficient table tab (or NULL). */
static int value_of(const clv_bgnbd *purchases, const clv_bgnbd_table *tab, const clv_gamma_gamma *spend, double x,
                    double t_x, double T, double zbar, double horizon, double *out)
{
    double count, order;
    int rc;

    if (out == NULL)
        return LS_EINVAL;
    rc = clv_gamma_gamma_expected_spend(spend, x, zbar, &order);
    if (rc != LS_OK)
        return rc;
    rc = bgnbd_expected(purchases, tab, x, t_x, T, horizon, &count);
    if (rc != LS_OK)
        return rc;
    *out = count * order;
    return LS_OK;
}

int clv_value(const clv_bgnbd *purchases, const clv_gamma_gamma *spend,
              double x, double t_x, double T, double zbar, double horizon,
              double *out)
{
    return value_of(purchases, NULL, spend, x, t_x, T, zbar, horizon, out);
}

/* clv_value_discounted() with the coefficient table tab (or NULL). */
static int value_discounted_of(const clv_bgnbd *purchases, const clv_bgnbd_table *tab,
                               const clv_gamma_gamma *spend, double x, double t_x, double T, double zbar,
                               double horizon, double period, double rate, double *out)
{
    double order, periods, prev = 0.0, total = 0.0, factor = 1.0;
    long i, n;
    int rc;

    if (out == NULL || !bgnbd_valid(purchases) ||
        !customer_valid(x, t_x, T) || !isfinite(horizon) || horizon < 0.0 ||
        !positive_finite(period) || !isfinite(rate) || rate < 0.0)
        return LS_EINVAL;
    if (rate == 0.0)
        return value_of(purchases, tab, spend, x, t_x, T, zbar, horizon, out);
    periods = ceil(horizon / period);
    if (!(periods <= VALUE_MAX_PERIODS))
        return LS_EINVAL;
    rc = clv_gamma_gamma_expected_spend(spend, x, zbar, &order);
    if (rc != LS_OK)
        return rc;
    n = (long)periods;
    for (i = 1; i <= n; i++) {
        double t = fmin((double)i * period, horizon), e;
        rc = bgnbd_expected(purchases, tab, x, t_x, T, t, &e);
        if (rc != LS_OK)
            return rc;
        factor /= 1.0 + rate;
        total += (e - prev) * factor;
        prev = e;
    }
    *out = total * order;
    return LS_OK;
}

int clv_value_discounted(const clv_bgnbd *purchases,
                         const clv_gamma_gamma *spend, double x, double t_x,
                         double T, double zbar, double horizon, double period,
                         double rate, double *out)
{
    return value_discounted_of(purchases, NULL, spend, x, t_x, T, zbar, horizon, period, rate, out);
}

/* ========================================================================
 * Either repeat-purchase model
 * ===================================================================== */

int clv_repeat_p_alive(const clv_repeat *m, double x, double t_x, double T, double *out)
{
    if (m == NULL)
        return LS_EINVAL;
    if (m->kind == CLV_MODEL_BGNBD)
        return clv_bgnbd_p_alive(&m->bgnbd, x, t_x, T, out);
    if (out == NULL || !nbd_valid(&m->nbd) || !customer_valid(x, t_x, T))
        return LS_EINVAL;
    *out = 1.0;
    return LS_OK;
}

int clv_repeat_expected(const clv_repeat *m, double x, double t_x, double T, double t, double *out)
{
    if (m == NULL)
        return LS_EINVAL;
    return m->kind == CLV_MODEL_BGNBD ? bgnbd_expected(&m->bgnbd, m->table, x, t_x, T, t, out)
                                      : clv_nbd_expected(&m->nbd, x, t_x, T, t, out);
}

int clv_repeat_p_buy(const clv_repeat *m, double x, double t_x, double T, double tau, double *out)
{
    if (m == NULL)
        return LS_EINVAL;
    return m->kind == CLV_MODEL_BGNBD ? clv_bgnbd_p_buy(&m->bgnbd, x, t_x, T, tau, out)
                                      : clv_nbd_p_buy(&m->nbd, x, t_x, T, tau, out);
}

int clv_repeat_value(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                     double zbar, double horizon, double period, double rate, double *out)
{
    double order, prev = 0.0, total = 0.0, factor = 1.0, e;
    long i, n;
    int rc;

    if (m == NULL || out == NULL || !isfinite(horizon) || horizon < 0.0 || !isfinite(rate) || rate < 0.0)
        return LS_EINVAL;
    if (m->kind == CLV_MODEL_BGNBD)
        return rate > 0.0 && period > 0.0
                   ? value_discounted_of(&m->bgnbd, m->table, spend, x, t_x, T, zbar, horizon, period, rate, out)
                   : value_of(&m->bgnbd, m->table, spend, x, t_x, T, zbar, horizon, out);
    if ((rc = clv_gamma_gamma_expected_spend(spend, x, zbar, &order)) != LS_OK)
        return rc;
    if (!(rate > 0.0 && period > 0.0)) {
        if ((rc = clv_nbd_expected(&m->nbd, x, t_x, T, horizon, &e)) != LS_OK)
            return rc;
        *out = e * order;
        return LS_OK;
    }
    if (!positive_finite(period) || !(ceil(horizon / period) <= VALUE_MAX_PERIODS))
        return LS_EINVAL;
    n = (long)ceil(horizon / period);
    for (i = 1; i <= n; i++) {
        double t = fmin((double)i * period, horizon);
        if ((rc = clv_nbd_expected(&m->nbd, x, t_x, T, t, &e)) != LS_OK)
            return rc;
        factor /= 1.0 + rate;
        total += (e - prev) * factor;
        prev = e;
    }
    *out = total * order;
    return LS_OK;
}

/* The BG/NBD part of clv_repeat_customer(): the bodies of
 * clv_bgnbd_expected(), clv_value() and clv_value_discounted() with
 * p_alive_row computed once (the same value, so the same products). */
static void bgnbd_customer(const clv_bgnbd *m, const clv_bgnbd_table *tab, const clv_gamma_gamma *spend, double x,
                           double t_x, double T,
                           double zbar, double t, double horizon, double period, double rate,
                           clv_repeat_figures *out)
{
    double pa, span = m->alpha + T, bracket, order, prev = 0.0, total = 0.0, factor = 1.0;
    long i, n;
    int rc;

    pa = bgnbd_p_alive_row(m, x, t_x, T);
    out->p_alive = pa;
    out->p_alive_rc = LS_OK;
    if (!isfinite(t) || t < 0.0) {
        out->expected_rc = LS_EINVAL;
    } else {
        rc = bgnbd_bracket(m, tab, x, m->r + x, m->a + m->b + x - 1.0, t / (span + t), -log1p(t / span), &bracket);
        out->expected_rc = rc;
        if (rc == LS_OK)
            out->expected = bracket * pa;
    }
    if (!isfinite(horizon) || horizon < 0.0 || !isfinite(rate) || rate < 0.0) {
        out->value_rc = LS_EINVAL;
        return;
    }
    if (!(rate > 0.0 && period > 0.0)) {       /* clv_value() */
        if ((rc = clv_gamma_gamma_expected_spend(spend, x, zbar, &order)) == LS_OK)
            rc = bgnbd_bracket(m, tab, x, m->r + x, m->a + m->b + x - 1.0, horizon / (span + horizon),
                               -log1p(horizon / span), &bracket);
        out->value_rc = rc;
        if (rc == LS_OK)
            out->value = bracket * pa * order;
        return;
    }
    /* clv_value_discounted() */
    if (!positive_finite(period) || !(ceil(horizon / period) <= VALUE_MAX_PERIODS)) {
        out->value_rc = LS_EINVAL;
        return;
    }
    if ((rc = clv_gamma_gamma_expected_spend(spend, x, zbar, &order)) != LS_OK) {
        out->value_rc = rc;
        return;
    }
    n = (long)ceil(horizon / period);
    for (i = 1; i <= n; i++) {
        double ti = fmin((double)i * period, horizon), e;
        rc = bgnbd_bracket(m, tab, x, m->r + x, m->a + m->b + x - 1.0, ti / (span + ti), -log1p(ti / span), &bracket);
        if (rc != LS_OK) {
            out->value_rc = rc;
            return;
        }
        e = bracket * pa;
        factor /= 1.0 + rate;
        total += (e - prev) * factor;
        prev = e;
    }
    out->value_rc = LS_OK;
    out->value = total * order;
}

void clv_repeat_customer(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                         double zbar, double t, double horizon, double period, double rate,
                         clv_repeat_figures *out)
{
    *out = (clv_repeat_figures){LS_EINVAL, LS_EINVAL, LS_EINVAL, 0.0, 0.0, 0.0};
    if (m == NULL)
        return;
    if (m->kind != CLV_MODEL_BGNBD) {   /* closed forms: nothing to share */
        out->p_alive_rc = clv_repeat_p_alive(m, x, t_x, T, &out->p_alive);
        out->expected_rc = clv_repeat_expected(m, x, t_x, T, t, &out->expected);
        out->value_rc = clv_repeat_value(m, spend, x, t_x, T, zbar, horizon, period, rate, &out->value);
        if (out->p_alive_rc != LS_OK)
            out->p_alive = 0.0;
        if (out->expected_rc != LS_OK)
            out->expected = 0.0;
        if (out->value_rc != LS_OK)
            out->value = 0.0;
        return;
    }
    if (!bgnbd_valid(&m->bgnbd) || !customer_valid(x, t_x, T))
        return;   /* every public function says LS_EINVAL first */
    bgnbd_customer(&m->bgnbd, m->table, spend, x, t_x, T, zbar, t, horizon, period, rate, out);
}

/* The window figures of clv_repeat_window() for a valid BG/NBD m and
 * customer (x, T) whose P(alive) is pa, in the expressions of
 * clv_bgnbd_p_buy() and clv_bgnbd_expected().  When fig is not NULL it
 * holds bgnbd_customer()'s figures for a horizon t: if tau is the same
 * double, the expected purchases are that one (the same bracket, the same
 * product), not computed again. */
static void bgnbd_window(const clv_bgnbd *m, const clv_bgnbd_table *tab, double x, double T, double pa, double tau,
                         const clv_repeat_figures *fig,
                         double t, clv_repeat_window_figures *out)
{
    double span = m->alpha + T, log1p_ratio, silent, bracket;

    out->p_buy = out->expected = 0.0;
    if (!isfinite(tau) || tau < 0.0) {
        out->p_buy_rc = out->expected_rc = LS_EINVAL;
        return;
    }
    /* ln(1 + tau / (alpha + T)): the same double for both figures, once */
    log1p_ratio = log1p(tau / span);
    silent = -expm1(-(m->r + x) * log1p_ratio);
    out->p_buy = pa * silent;
    out->p_buy_rc = LS_OK;
    if (fig != NULL && tau == t && signbit(tau) == signbit(t)) {   /* -0.0 == 0.0 but its z differs */
        out->expected_rc = fig->expected_rc;
        out->expected = fig->expected;
        return;
    }
    out->expected_rc = bgnbd_bracket(m, tab, x, m->r + x, m->a + m->b + x - 1.0, tau / (span + tau), -log1p_ratio,
                                     &bracket);
    if (out->expected_rc == LS_OK)
        out->expected = bracket * pa;
}

void clv_repeat_window(const clv_repeat *m, double x, double t_x, double T, double tau, int *p_buy_rc,
                       double *p_buy, int *expected_rc, double *expected)
{
    clv_repeat_window_figures w;

    *p_buy = *expected = 0.0;
    if (m == NULL || m->kind != CLV_MODEL_BGNBD) {   /* closed forms: nothing to share */
        *p_buy_rc = clv_repeat_p_buy(m, x, t_x, T, tau, p_buy);
        *expected_rc = clv_repeat_expected(m, x, t_x, T, tau, expected);
        if (*p_buy_rc != LS_OK)
            *p_buy = 0.0;
        if (*expected_rc != LS_OK)
            *expected = 0.0;
        return;
    }
    /* clv_bgnbd_p_buy() and clv_bgnbd_expected() check the same things */
    if (!bgnbd_valid(&m->bgnbd) || !customer_valid(x, t_x, T) || !isfinite(tau) || tau < 0.0) {
        *p_buy_rc = *expected_rc = LS_EINVAL;
        return;
    }
    bgnbd_window(&m->bgnbd, m->table, x, T, bgnbd_p_alive_row(&m->bgnbd, x, t_x, T), tau, NULL, 0.0, &w);
    *p_buy_rc = w.p_buy_rc;
    *p_buy = w.p_buy;
    *expected_rc = w.expected_rc;
    *expected = w.expected;
}

void clv_repeat_customer_window(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                                double zbar, double t, double horizon, double period, double rate, double tau,
                                clv_repeat_figures *out, clv_repeat_window_figures *win)
{
    if (m == NULL || m->kind != CLV_MODEL_BGNBD || !bgnbd_valid(&m->bgnbd) || !customer_valid(x, t_x, T)) {
        /* closed forms, or every figure LS_EINVAL: nothing to share */
        clv_repeat_customer(m, spend, x, t_x, T, zbar, t, horizon, period, rate, out);
        clv_repeat_window(m, x, t_x, T, tau, &win->p_buy_rc, &win->p_buy, &win->expected_rc, &win->expected);
        return;
    }
    *out = (clv_repeat_figures){LS_EINVAL, LS_EINVAL, LS_EINVAL, 0.0, 0.0, 0.0};
    bgnbd_customer(&m->bgnbd, m->table, spend, x, t_x, T, zbar, t, horizon, period, rate, out);
    bgnbd_window(&m->bgnbd, m->table, x, T, out->p_alive, tau, out, t, win);
}
