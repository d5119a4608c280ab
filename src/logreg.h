/* logreg.h -- fitting an L2-regularised logistic regression.
 *
 * `leadscore train` uses this to turn a table of feature rows and 0/1
 * outcomes into the coefficients of a scoring model (model.h).  Each feature
 * is standardised before the fit, z_j = (x_j - mean_j) / scale_j, and the
 * model is
 *     logit = intercept + sum_j coef_j * z_j,   p = 1 / (1 + exp(-logit)),
 * which is exactly the form the model file stores and the scorer evaluates,
 * so mean[], scale[], intercept and coef[] can be written out as they are.
 *
 * The fit maximises the penalised, weighted log-likelihood
 *     F = sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)]
 *         - lambda / 2 * sum_j coef_j^2
 * (the intercept is not penalised; the penalty acts on the standardised
 * coefficients and on the sum, not the mean, over rows, so the same lambda
 * shrinks less as the data grows) by Newton's method (IRLS): one pass over
 * the rows per iteration builds the gradient and the (d+1) x (d+1) Hessian,
 * a Cholesky solve gives the step, and the step is halved until F does not
 * fall.  It stops when the largest gradient component is at most
 * tol * (sum of weights).  Cost: O(n d^2) time per iteration, typically
 * 5 to 10 iterations; memory: 2 n doubles of scratch besides the input.
 * With lambda > 0 the optimum is finite even for perfectly separable data.
 *
 * Standardisation: mean_j and scale_j are the weighted mean and the weighted
 * population standard deviation (divided by the sum of weights) of column j.
 * A column whose standard deviation is 0, or below 1e-12 of |mean_j|, is
 * constant: its scale is 1 and its coefficient is held at 0.
 *
 * Every fitting function returns LS_OK (0) or a negative code from
 * leadscore/error.h.  Nothing here logs or touches global state, so
 * different fits may run on different threads at once. */
#ifndef LS_LOGREG_H
#define LS_LOGREG_H

#include <stddef.h>

/* Most features a fit accepts; the Hessian takes 8 (d + 1)^2 bytes. */
#define LOGREG_MAX_FEATURES 4096

/* A fitted model.  The caller owns the struct; coef, mean and scale are
 * separate heap arrays of d doubles each, owned by the model and released
 * by logreg_destroy() -- do not free them yourself.  A model whose every
 * field is zero (e.g. `logreg_model m = {0};`) is a valid empty model that
 * logreg_destroy() accepts. */
typedef struct {
    int d;              /* number of features */
    double intercept;   /* on the standardised scale */
    double *coef;       /* d coefficients of the standardised features */
    double *mean;       /* d column means */
    double *scale;      /* d column scales (> 0; 1 for constant columns) */
    int iterations;     /* Newton steps taken */
    double loglik;      /* weighted log-likelihood at the fit, unpenalised */
    double grad_norm;   /* largest |gradient component| of F at the fit */
} logreg_model;

/* Fitting options.  logreg_opts_default() gives lambda 1, max_iter 50,
 * tol 1e-9 and no sign constraints.
 *
 * Sign constraints (sign != NULL, d entries): +1 keeps coef_j >= 0, -1
 * keeps coef_j <= 0, 0 leaves it free.  The fit is then a projected
 * Newton method: a constrained coefficient at 0 whose gradient points out
 * of its half-line is held at 0 for the step, the others take the Newton
 * step on their own block of the Hessian, and every trial point of the
 * line search is projected back (a coefficient crossing 0 stops at 0).
 * Convergence is tested on the projected gradient.  The result is the
 * maximum of F over the constrained set (F is concave), which is what
 * dropping the offending features one by one approximates. */
typedef struct {
    double lambda;      /* L2 penalty, finite and >= 0 */
    int max_iter;       /* most Newton steps, >= 1 */
    double tol;         /* relative gradient tolerance, finite and > 0 */
    const signed char *sign; /* NULL, or d entries in {-1, 0, +1} */
} logreg_opts;

logreg_opts logreg_opts_default(void);

/* Fits the model to n rows of d features.
 *   X: n x d doubles, row-major (row i is X[i*d .. i*d+d-1]), all finite.
 *   y: n outcomes in [0, 1] (normally 0 or 1; fractions act as soft labels).
 *   w: n row weights, finite and >= 0, or NULL for all 1.  An integer
 *      weight k fits the same model as the row repeated k times.
 * On LS_OK *out holds a new model owned by the caller (logreg_destroy()).
 * On any failure *out is left zeroed and owns nothing.  Whatever *out held
 * before is overwritten, not freed.  Errors:
 *   LS_EINVAL    NULL pointer, n == 0, d outside 1..LOGREG_MAX_FEATURES,
 *                n * d overflows size_t, a NaN or infinite value, y
 *                outside [0, 1], a negative weight, a zero sum of weights,
 *                only one class present (the weighted mean of y is 0 or 1),
 *                or bad options;
 *   LS_ENOMEM    out of memory;
 *   LS_ECONVERGE the gradient test was not met within max_iter steps, no
 *                halved step improved F, or the Hessian is numerically
 *                singular (in practice only with lambda == 0 and collinear
 *                features).
 * With lambda == 0 on perfectly separable data there is no optimum; the fit
 * then "converges" once the gradient falls below the tolerance, with very
 * large coefficients (hundreds, on the standardised scale).  Use
 * lambda > 0 unless the data are known not to separate. */
int logreg_fit_opts(const double *X, const double *y, const double *w,
                    size_t n, int d, const logreg_opts *opts,
                    logreg_model *out);

/* logreg_fit_opts() with the default options and the given lambda. */
int logreg_fit(const double *X, const double *y, const double *w, size_t n,
               int d, double lambda, logreg_model *out);

/* Releases the model's arrays and zeroes *m; harmless on a zeroed model
 * and on NULL, so destroying twice is safe. */
void logreg_destroy(logreg_model *m);

/* intercept + sum_j coef_j * (x_j - mean_j) / scale_j for one row x of
 * m->d raw feature values.  m must be a fitted model. */
double logreg_logit(const logreg_model *m, const double *x);

/* The probability 1 / (1 + exp(-logit)) for one row x, computed without
 * overflow for any logit.  m must be a fitted model. */
double logreg_predict(const logreg_model *m, const double *x);

#endif
