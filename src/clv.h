/* clv.h -- customer-base analysis: is a customer still buying, how much more
 * will they buy, and what is that worth.
 *
 * Three published models, each a handful of closed forms plus a maximum-
 * likelihood fit over a customer summary (x, t_x, T[, zbar]):
 *   - BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy
 *     Way"): repeat purchases while alive, then a coin-flip dropout after
 *     each purchase.  Gives P(alive) and expected purchases in a horizon.
 *   - Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-value
 *     Curves"): the value of an order, shrunk from the customer's own mean
 *     towards the population mean.
 *   - clv_value*(): expected purchases times expected order value.
 * The Gaussian hypergeometric function 2F1, which BG/NBD needs, is public
 * too so that it can be tested against closed forms.
 *
 * Units: x and every other count is a whole number of repeat purchases (the
 * first purchase is not counted).  t_x, T and horizons are in the model's
 * time unit (whatever unit the data was summarised in, e.g. weeks): t_x is
 * the time from the first to the last purchase, T the time from the first
 * purchase to the end of observation, so 0 <= t_x <= T.
 *
 * Every function returns LS_OK (0) or a negative code from
 * leadscore/error.h, and writes its result through the last pointer only on
 * success.  LS_EINVAL: a NULL pointer, a NaN or infinite input, a parameter
 * out of its domain.  LS_ECONVERGE: a series or an optimiser did not
 * converge, or the result is not representable as a finite double.  No
 * function allocates, logs or touches global state (the log-gamma used is
 * our own, not lgamma(3), which writes the global signgam), so all of them
 * may be called from any thread. */
#ifndef LS_CLV_H
#define LS_CLV_H

#include <stddef.h>

/* BG/NBD parameters, all > 0.  Purchase rate while alive ~ Gamma(r, alpha)
 * (alpha in time units, so rate scale 1/alpha); dropout probability after
 * each purchase ~ Beta(a, b).  {1, 1, 1, 1} is a reasonable start for
 * clv_bgnbd_fit() when nothing better is known. */
typedef struct {
    double r;
    double alpha;
    double a;
    double b;
} clv_bgnbd;

/* Gamma-Gamma parameters, all > 0.  An order's value ~ Gamma(p, nu) with
 * the customer's nu ~ Gamma(q, gamma); gamma is in money units.  The mean
 * order value exists only for q > 1.  {1, 1, 1} is a reasonable start for
 * clv_gamma_gamma_fit(). */
typedef struct {
    double p;
    double q;
    double gamma;
} clv_gamma_gamma;

/* ------------------------------------------------------------------------
 * Gaussian hypergeometric function
 * --------------------------------------------------------------------- */

/* *out = 2F1(a, b; c; z) = sum_k (a)_k (b)_k / ((c)_k k!) z^k.
 *
 * Domain: any finite a, b, c and real z <= 1, except that c must not be
 * zero or a negative integer (LS_EINVAL).  How it is computed:
 *   - a or b zero or a negative integer: the series is a polynomial and is
 *     summed exactly, for any real z (also z > 1);
 *   - 0 <= z < 1: the power series, summed until a rigorous bound on the
 *     remaining tail is below 1e-16 of the sum; for z > 0.9 with c-a-b at
 *     least 0.05 away from an integer, the 1-z connection formula (two fast
 *     series in 1-z) is used instead;
 *   - z < 0: Pfaff's transformation to z/(z-1), which lies in (0, 1);
 *   - z == 1: Gauss's theorem when c-a-b > 0.
 * LS_ECONVERGE: z > 1 (outside the disc of convergence; the principal value
 * is complex there), z == 1 with c-a-b <= 0 (the series diverges), z so
 * close to 1 that a million terms do not reach the tolerance (only when
 * c-a-b is within 0.05 of an integer), or a result beyond double range. */
int clv_hyp2f1(double a, double b, double c, double z, double *out);

/* ------------------------------------------------------------------------
 * BG/NBD
 * --------------------------------------------------------------------- */

/* *out = P(customer still alive at T | x, t_x, T), in [0, 1]:
 *     1 / (1 + [x > 0] * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)),
 * computed in log space (it tends to 0, never overflows).  x == 0 gives 1. */
int clv_bgnbd_p_alive(const clv_bgnbd *m, double x, double t_x, double T,
                      double *out);

/* *out = E[purchases in (T, T+t] | x, t_x, T], t >= 0 (equation 10 of the
 * paper).  The 2F1 of equation 10 is rewritten by Euler's transformation so
 * that its (a-1) factor cancels analytically: there is no loss of precision
 * near a == 1 and no overflow for heavy buyers.  The series behind it has
 * argument z = t/(alpha+T+t); horizons up to about 10^4 (alpha+T) are
 * fine, far beyond that it needs over a million terms (LS_ECONVERGE). */
int clv_bgnbd_expected(const clv_bgnbd *m, double x, double t_x, double T,
                       double t, double *out);

/* *out = E[X(t)], the expected number of repeat purchases in the first t
 * time units after a (random, new) customer's first purchase, t >= 0
 * (equation 7).  Equals clv_bgnbd_expected() with x = t_x = T = 0. */
int clv_bgnbd_expected_unconditional(const clv_bgnbd *m, double t,
                                     double *out);

/* *out = log-likelihood of one customer's (x, t_x, T) under m (equation 6
 * of the paper, without any constant dropped). */
int clv_bgnbd_loglik(const clv_bgnbd *m, double x, double t_x, double T,
                     double *out);

/* *out = sum over i < n of weight[i] * loglik(x[i], t_x[i], T[i]).
 * weight may be NULL (every row counts once); otherwise each weight must be
 * finite and >= 0 (a count of identical customers, for example).  n == 0
 * gives 0.  Every row is validated, also those with weight 0. */
int clv_bgnbd_loglik_sum(const clv_bgnbd *m, const double *x,
                         const double *t_x, const double *T,
                         const double *weight, size_t n, double *out);

/* Maximum-likelihood fit of the BG/NBD parameters to n >= 1 customers.
 * *inout holds the starting point on entry (all > 0) and the estimate on
 * success; *loglik_out (may be NULL) gets the maximised log-likelihood.
 * The optimiser is Nelder-Mead on log-parameters, restarted at its own
 * optimum until a restart no longer improves, then checked by a numerical
 * gradient; at most a fixed number of likelihood evaluations.  If that
 * fails from *inout it is run once more from {1, 1, 1, 1}.
 * LS_ECONVERGE (and *inout unchanged): the budget ran out, the gradient
 * check failed, or the likelihood has no interior maximum (a parameter ran
 * off towards 0 or infinity, e.g. when nobody made a repeat purchase).
 * Cost: about 2000 evaluations of n rows; 0.15 s for 2357 customers. */
int clv_bgnbd_fit(const double *x, const double *t_x, const double *T,
                  size_t n, clv_bgnbd *inout, double *loglik_out);

/* Same as clv_bgnbd_fit() with a weight per row as in clv_bgnbd_loglik_sum()
 * (weight may be NULL); the sum of the weights must be > 0.  Lets a caller
 * fit on distinct (x, t_x, T) rows with their counts. */
int clv_bgnbd_fit_weighted(const double *x, const double *t_x,
                           const double *T, const double *weight, size_t n,
                           clv_bgnbd *inout, double *loglik_out);

/* *out = P(at least one purchase in (T, T+tau] | x, t_x, T), tau >= 0.
 * Exact for BG/NBD, since a customer can only drop out right after a
 * purchase, so one alive at T buys in the window unless the Poisson
 * process stays silent:
 *     P(none) = 1 - P(alive) + P(alive) * ((alpha+T)/(alpha+T+tau))^(r+x),
 *     *out    = P(alive) * (1 - ((alpha+T)/(alpha+T+tau))^(r+x)),
 * computed with expm1/log1p (no cancellation for small tau). */
int clv_bgnbd_p_buy(const clv_bgnbd *m, double x, double t_x, double T,
                    double tau, double *out);

/* ------------------------------------------------------------------------
 * NBD: the BG/NBD without dropout (b -> infinity), P(alive) = 1
 *
 * A shop whose data give BG/NBD no interior optimum (dropout b running off
 * to infinity, a/(a+b) -> 0) is described by this limit, fitted by maximum
 * likelihood itself rather than by keeping another shop's parameters.
 * --------------------------------------------------------------------- */

/* NBD parameters, both > 0: purchase rate ~ Gamma(r, alpha). */
typedef struct {
    double r;
    double alpha;
} clv_nbd;

/* *out = 1 - ((alpha+T)/(alpha+T+tau))^(r+x) (t_x is validated, unused). */
int clv_nbd_p_buy(const clv_nbd *m, double x, double t_x, double T,
                  double tau, double *out);

/* *out = E[purchases in (T, T+t]] = (r+x) / (alpha+T) * t. */
int clv_nbd_expected(const clv_nbd *m, double x, double t_x, double T,
                     double t, double *out);

/* *out = ln G(r+x) - ln G(r) + r ln alpha - (r+x) ln(alpha+T): the same
 * likelihood as clv_bgnbd_loglik() (timing included) in the limit b ->
 * infinity, so the two are comparable. */
int clv_nbd_loglik(const clv_nbd *m, double x, double t_x, double T,
                   double *out);

/* Maximum-likelihood fit as clv_bgnbd_fit_weighted() (fallback start
 * {1, 1}); LS_ECONVERGE when r runs off to infinity (no heterogeneity)
 * or to 0. */
int clv_nbd_fit_weighted(const double *x, const double *t_x, const double *T,
                         const double *weight, size_t n, clv_nbd *inout,
                         double *loglik_out);

/* ------------------------------------------------------------------------
 * A repeat-purchase model: BG/NBD or NBD, one interface for the scorer
 * --------------------------------------------------------------------- */

typedef enum { CLV_MODEL_BGNBD = 0, CLV_MODEL_NBD = 1 } clv_model_kind;

/* The coefficients of the 2F1 series behind the BG/NBD expected purchases
 * (and so the value) of a customer with x = 0 .. CLV_TABLE_X - 1 repeat
 * purchases, for one parameter set: they depend on x but not on the
 * customer's age or the horizon, so a scorer sums the series as a
 * polynomial in z (several partial sums at once, no division a term)
 * instead of building each term from the one before.  The same sum to
 * about 1e-15 relative; the figures of every clv_repeat function given a
 * clv_repeat with a table are bit for bit the same as each other.  A
 * customer past the table (more repeat purchases, a series longer than
 * CLV_TABLE_TERMS) takes the series.  64 KiB: a model holds one. */
#define CLV_TABLE_X 8
#define CLV_TABLE_TERMS 1024
typedef struct {
    clv_bgnbd params;               /* the parameters the coefficients are for */
    int nterms[CLV_TABLE_X];        /* usable coefficients for each x */
    double coef[CLV_TABLE_X][CLV_TABLE_TERMS];
} clv_bgnbd_table;

/* Fills t for the parameters m (valid BG/NBD parameters). */
void clv_bgnbd_table_init(const clv_bgnbd *m, clv_bgnbd_table *t);

typedef struct {
    clv_model_kind kind;
    clv_bgnbd bgnbd;      /* with CLV_MODEL_BGNBD */
    clv_nbd nbd;          /* with CLV_MODEL_NBD */
    /* optional, BG/NBD: the coefficient table of bgnbd (ignored when its
     * parameters are not bgnbd's); it must outlive this struct's copies */
    const clv_bgnbd_table *table;
} clv_repeat;

/* P(alive) (1 under the NBD), expected purchases in (T, T+t] and P(at
 * least one purchase in (T, T+tau]) under whichever model m holds. */
int clv_repeat_p_alive(const clv_repeat *m, double x, double t_x, double T, double *out);
int clv_repeat_expected(const clv_repeat *m, double x, double t_x, double T, double t, double *out);
int clv_repeat_p_buy(const clv_repeat *m, double x, double t_x, double T, double tau, double *out);

/* clv_value_discounted() under whichever model m holds (rate 0 or
 * period <= 0: undiscounted, clv_value()). */
int clv_repeat_value(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                     double zbar, double horizon, double period, double rate, double *out);

/* Everything a score needs of one buyer, in one call: P(alive), the
 * expected purchases in (T, T+t] and the value over (T, T+horizon]
 * (discounted as clv_repeat_value() with period and rate), each with its
 * own status.  Every figure is bit for bit what clv_repeat_p_alive(),
 * clv_repeat_expected() and clv_repeat_value() give for the same
 * arguments (and each status the same); P(alive), which all three need,
 * is computed once. */
typedef struct {
    int p_alive_rc, expected_rc, value_rc;
    double p_alive, expected, value;   /* 0 where the status is not LS_OK */
} clv_repeat_figures;

void clv_repeat_customer(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                         double zbar, double t, double horizon, double period, double rate,
                         clv_repeat_figures *out);

/* P(at least one purchase in (T, T+tau]) and the expected purchases in
 * it, each with its status, bit for bit what clv_repeat_p_buy() and
 * clv_repeat_expected() give (tau = t), P(alive) computed once.  The
 * figures are 0 where their status is not LS_OK. */
void clv_repeat_window(const clv_repeat *m, double x, double t_x, double T, double tau, int *p_buy_rc,
                       double *p_buy, int *expected_rc, double *expected);

/* The figures of clv_repeat_window(), for clv_repeat_customer_window(). */
typedef struct {
    int p_buy_rc, expected_rc;
    double p_buy, expected;   /* 0 where the status is not LS_OK */
} clv_repeat_window_figures;

/* clv_repeat_customer() into *out and clv_repeat_window() at tau into *win
 * in one call, for a scorer that needs both (assess.c): every figure and
 * status bit for bit what the two calls give.  P(alive) is computed once
 * for all, and the expected purchases in (T, T+tau] are those in (T, T+t]
 * when tau and t are the same double (under BG/NBD each is a 2F1 series;
 * a different tau costs one more). */
void clv_repeat_customer_window(const clv_repeat *m, const clv_gamma_gamma *spend, double x, double t_x, double T,
                                double zbar, double t, double horizon, double period, double rate, double tau,
                                clv_repeat_figures *out, clv_repeat_window_figures *win);

/* ------------------------------------------------------------------------
 * Gamma-Gamma
 * --------------------------------------------------------------------- */

/* *out = E[value of a future order | x, zbar], in money units, where x is
 * the number of repeat purchases and zbar (>= 0) their mean value:
 *     (gamma + x*zbar) * p / (p*x + q - 1),
 * and for x == 0 the population mean p*gamma/(q-1) (zbar is then ignored).
 * Requires q > 1 (else LS_EINVAL: the mean does not exist). */
int clv_gamma_gamma_expected_spend(const clv_gamma_gamma *m, double x,
                                   double zbar, double *out);

/* *out = log-density of a repeat buyer's mean order value zbar (> 0) over
 * x (>= 1) orders:
 *     ln[ G(px+q) / (G(px) G(q)) * gamma^q x^(px) zbar^(px-1)
 *         / (gamma + x zbar)^(px+q) ].  */
int clv_gamma_gamma_loglik(const clv_gamma_gamma *m, double x, double zbar,
                           double *out);

/* *out = sum of weight[i] * loglik(x[i], zbar[i]) over the rows with
 * x[i] >= 1; rows with x[i] == 0 carry no order values and are skipped
 * (their zbar is not looked at), so a whole customer summary can be passed.
 * weight as in clv_bgnbd_loglik_sum(). */
int clv_gamma_gamma_loglik_sum(const clv_gamma_gamma *m, const double *x,
                               const double *zbar, const double *weight,
                               size_t n, double *out);

/* Maximum-likelihood fit of the Gamma-Gamma parameters over the rows with
 * x >= 1 (at least one is needed, else LS_EINVAL).  In/out, optimiser and
 * failure behaviour as clv_bgnbd_fit() (the fallback start is {1, 1, 1}). */
int clv_gamma_gamma_fit(const double *x, const double *zbar, size_t n,
                        clv_gamma_gamma *inout, double *loglik_out);

/* Same with weights as in clv_gamma_gamma_loglik_sum(); the weights of the
 * rows with x >= 1 must sum to > 0. */
int clv_gamma_gamma_fit_weighted(const double *x, const double *zbar,
                                 const double *weight, size_t n,
                                 clv_gamma_gamma *inout, double *loglik_out);

/* ------------------------------------------------------------------------
 * Customer value
 * --------------------------------------------------------------------- */

/* *out = undiscounted expected value of one customer's purchases in
 * (T, T+horizon]:
 *     clv_bgnbd_expected(x, t_x, T, horizon) *
 *     clv_gamma_gamma_expected_spend(x, zbar),
 * in money units.  horizon >= 0 in time units; spend needs q > 1. */
int clv_value(const clv_bgnbd *purchases, const clv_gamma_gamma *spend,
              double x, double t_x, double T, double zbar, double horizon,
              double *out);

/* Same, discounted per period.  The horizon is cut into n = ceil(horizon /
 * period) periods (the last one possibly shorter); the purchases expected
 * in period i, E(t_i) - E(t_{i-1}) with t_i = min(i*period, horizon), are
 * discounted by (1 + rate)^-i:
 *     value = spend * sum_{i=1..n} (E(t_i) - E(t_{i-1})) / (1 + rate)^i.
 * period > 0 in time units, rate >= 0 per period; rate == 0 gives exactly
 * clv_value().  At most 100000 periods (else LS_EINVAL). */
int clv_value_discounted(const clv_bgnbd *purchases,
                         const clv_gamma_gamma *spend, double x, double t_x,
                         double T, double zbar, double horizon, double period,
                         double rate, double *out);

#endif
