/* logreg.c -- L2-regularised logistic regression by Newton's method (IRLS).
 *
 * The fit keeps one working struct (struct fit) that holds the input, the
 * standardisation, the parameters theta = (intercept, coef_1..coef_d), and
 * two n-long scratch arrays: eta[i], the current logit of row i, and
 * deta[i], the change in that logit along the Newton direction.  Keeping
 * eta means the line search costs O(n) per trial instead of O(n d).
 *
 * One iteration: a pass over the rows adds each row's gradient and Hessian
 * term (the Hessian's upper triangle, packed, so the inner loop is a plain
 * contiguous multiply-add), the penalty is added, the gradient is tested, a
 * Cholesky solve gives the direction, a second pass turns it into deta, and
 * the step is halved until the penalised log-likelihood does not fall.
 * All matrices here are the negated Hessian, which is positive definite.
 *
 * Layout: validation, then standardisation, then the Newton pieces, then
 * the public functions. */
#include "logreg.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define CONSTANT_RTOL 1e-12  /* sd below this times |mean|: constant column */
/* ... or below this at all: a column of values like 1e-21 (a probability
 * that is 0 but for rounding) standardised by its sd would weigh 1e18 per
 * unit, and one customer's ordinary value would swamp every score */
#define CONSTANT_ATOL 1e-9
#define SINGULAR_RTOL 1e-12  /* Cholesky pivot below this times max diagonal */
#define MAX_HALVINGS 40      /* step-halving line search gives up after this */
#define OBJECTIVE_SLACK 1e-12 /* relative fall in F tolerated as roundoff */

struct fit {
    const double *X, *y, *w;
    size_t n;
    int d, p;                 /* p = d + 1 parameters, intercept first */
    double lambda, wsum;
    const signed char *sign;  /* d entries or NULL (see logreg.h) */
    double *mean, *scale;     /* d each, owned by the output model */
    double *inv;              /* d: 1 / scale, or 0 for a constant column */
    double *theta, *trial;    /* p each */
    double *grad, *step, *z;  /* p each; z is one standardised row */
    double *tri;              /* packed upper triangle, p (p + 1) / 2 */
    double *hess;             /* p x p, row-major, for the Cholesky solve */
    double *eta, *deta;       /* n each */
    double *block;            /* one allocation behind inv .. hess */
};

/* ------------------------------------------------------------------ */
/* Small numeric helpers                                               */
/* ------------------------------------------------------------------ */

/* 1 / (1 + exp(-t)) without overflow. */
static double sigmoid(double t)
{
    if (t >= 0.0)
        return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* log(1 + exp(t)) without overflow or loss for large |t|. */
static double softplus(double t)
{
    return (t > 0.0 ? t : 0.0) + log1p(exp(-fabs(t)));
}

static double *alloc_doubles(size_t count)
{
    if (count == 0 || count > SIZE_MAX / sizeof(double))
        return NULL;
    return malloc(count * sizeof(double));
}

static double row_weight(const struct fit *f, size_t i)
{
    return f->w ? f->w[i] : 1.0;
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

static int opts_valid(const logreg_opts *o)
{
    return o && isfinite(o->lambda) && o->lambda >= 0.0 && o->max_iter >= 1
        && isfinite(o->tol) && o->tol > 0.0;
}

static int args_valid(const double *X, const double *y, size_t n, int d,
                      const logreg_opts *opts, const logreg_model *out)
{
    return X && y && out && n > 0 && d >= 1 && d <= LOGREG_MAX_FEATURES
        && n <= SIZE_MAX / (size_t)d && opts_valid(opts);
}

/* Checks y and w, and sets f->wsum.  The weighted mean of y must lie
 * strictly between 0 and 1, or the intercept has no finite optimum. */
static int check_labels(struct fit *f, double *ymean)
{
    double wsum = 0.0, wy = 0.0;

    for (size_t i = 0; i < f->n; i++) {
        double yi = f->y[i], wi = row_weight(f, i);
        if (!(yi >= 0.0 && yi <= 1.0) || !(wi >= 0.0) || !isfinite(wi))
            return LS_EINVAL;
        wsum += wi;
        wy += wi * yi;
    }
    if (!(wsum > 0.0) || !isfinite(wsum))
        return LS_EINVAL;
    *ymean = wy / wsum;
    if (!(*ymean > 0.0 && *ymean < 1.0))
        return LS_EINVAL;
    f->wsum = wsum;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Standardisation                                                     */
/* ------------------------------------------------------------------ */

/* Weighted column means; LS_EINVAL on a NaN or infinite entry. */
static int column_means(struct fit *f)
{
    int d = f->d;

    memset(f->mean, 0, (size_t)d * sizeof(double));
    for (size_t i = 0; i < f->n; i++) {
        const double *x = f->X + i * (size_t)d;
        double wi = row_weight(f, i);
        for (int j = 0; j < d; j++) {
            if (!isfinite(x[j]))
                return LS_EINVAL;
            f->mean[j] += wi * x[j];
        }
    }
    for (int j = 0; j < d; j++)
        f->mean[j] /= f->wsum;
    return LS_OK;
}

/* Weighted population standard deviations about the means (two-pass, so
 * large offsets do not cancel), then scale and inv for each column. */
static void column_scales(struct fit *f)
{
    int d = f->d;

    memset(f->scale, 0, (size_t)d * sizeof(double));
    for (size_t i = 0; i < f->n; i++) {
        const double *x = f->X + i * (size_t)d;
        double wi = row_weight(f, i);
        for (int j = 0; j < d; j++) {
            double c = x[j] - f->mean[j];
            f->scale[j] += wi * c * c;
        }
    }
    for (int j = 0; j < d; j++) {
        double sd = sqrt(f->scale[j] / f->wsum);
        int constant = sd <= CONSTANT_ATOL || sd <= CONSTANT_RTOL * fabs(f->mean[j]);
        f->scale[j] = constant ? 1.0 : sd;
        f->inv[j] = constant ? 0.0 : 1.0 / sd;
    }
}

/* z = (1, standardised row i); constant columns give exactly 0. */
static void standard_row(const struct fit *f, size_t i, double *z)
{
    const double *x = f->X + i * (size_t)f->d;

    z[0] = 1.0;
    for (int j = 0; j < f->d; j++)
        z[j + 1] = (x[j] - f->mean[j]) * f->inv[j];
}

/* ------------------------------------------------------------------ */
/* Newton's method                                                     */
/* ------------------------------------------------------------------ */

/* Penalised objective F at logits eta + t * deta and parameters th; the
 * unpenalised log-likelihood goes to *ll. */
static double objective(const struct fit *f, double t, const double *th,
                        double *ll)
{
    double sum = 0.0, pen = 0.0;

    for (size_t i = 0; i < f->n; i++) {
        double wi = row_weight(f, i);
        if (wi == 0.0)
            continue;
        double e = f->eta[i] + t * f->deta[i];
        sum += wi * (f->y[i] * e - softplus(e));
    }
    for (int a = 1; a < f->p; a++)
        pen += th[a] * th[a];
    *ll = sum;
    return sum - 0.5 * f->lambda * pen;
}

/* One pass over the rows: gradient of the log-likelihood into grad, the
 * negated Hessian's upper triangle into tri (packed by rows). */
static void accumulate(struct fit *f)
{
    int p = f->p;
    double *z = f->z;

    memset(f->grad, 0, (size_t)p * sizeof(double));
    memset(f->tri, 0, (size_t)p * (size_t)(p + 1) / 2 * sizeof(double));
    for (size_t i = 0; i < f->n; i++) {
        double wi = row_weight(f, i);
        if (wi == 0.0)
            continue;
        standard_row(f, i, z);
        double pr = sigmoid(f->eta[i]);
        double r = wi * (f->y[i] - pr), v = wi * pr * (1.0 - pr);
        double *h = f->tri;
        for (int a = 0; a < p; a++) {
            double va = v * z[a];
            f->grad[a] += r * z[a];
            for (int b = a; b < p; b++)
                *h++ += va * z[b];
        }
    }
}

/* Unpacks tri into the full symmetric hess, adds the penalty to hess and
 * grad, and pins the coefficients of constant columns at 0 (unit diagonal,
 * zero gradient).  Returns max |grad|. */
static double penalise(struct fit *f)
{
    int p = f->p;
    const double *h = f->tri;
    double gmax = 0.0;

    for (int a = 0; a < p; a++)
        for (int b = a; b < p; b++, h++)
            f->hess[a * p + b] = f->hess[b * p + a] = *h;
    for (int a = 1; a < p; a++) {
        f->grad[a] -= f->lambda * f->theta[a];
        f->hess[a * p + a] += f->lambda;
        if (f->inv[a - 1] == 0.0) {
            f->grad[a] = 0.0;
            f->hess[a * p + a] = 1.0;
        }
    }
    for (int a = 0; a < p; a++)
        if (fabs(f->grad[a]) > gmax)
            gmax = fabs(f->grad[a]);
    return gmax;
}

/* Solves hess * step = grad by Cholesky, overwriting hess with its factor.
 * Returns 0, or -1 if a pivot is not positive (relative to the largest
 * diagonal entry) -- the matrix is singular for practical purposes. */
static int cholesky_solve(struct fit *f)
{
    int p = f->p;
    double *A = f->hess, *x = f->step, dmax = 0.0;

    for (int a = 0; a < p; a++)
        if (A[a * p + a] > dmax)
            dmax = A[a * p + a];
    for (int j = 0; j < p; j++) {
        double s = A[j * p + j];
        for (int k = 0; k < j; k++)
            s -= A[j * p + k] * A[j * p + k];
        if (!(s > SINGULAR_RTOL * dmax))
            return -1;
        A[j * p + j] = sqrt(s);
        for (int i = j + 1; i < p; i++) {
            double t = A[i * p + j];
            for (int k = 0; k < j; k++)
                t -= A[i * p + k] * A[j * p + k];
            A[i * p + j] = t / A[j * p + j];
        }
    }
    for (int i = 0; i < p; i++) {          /* L u = grad */
        double s = f->grad[i];
        for (int k = 0; k < i; k++)
            s -= A[i * p + k] * x[k];
        x[i] = s / A[i * p + i];
    }
    for (int i = p - 1; i >= 0; i--) {     /* L^T step = u */
        double s = x[i];
        for (int k = i + 1; k < p; k++)
            s -= A[k * p + i] * x[k];
        x[i] = s / A[i * p + i];
    }
    return 0;
}

/* deta[i] = step . z_i for every row. */
static void direction(struct fit *f)
{
    for (size_t i = 0; i < f->n; i++) {
        double s = 0.0;
        standard_row(f, i, f->z);
        for (int a = 0; a < f->p; a++)
            s += f->step[a] * f->z[a];
        f->deta[i] = s;
    }
}

/* Tries steps 1, 1/2, 1/4, ... along step/deta and takes the first that
 * does not lower F (up to roundoff).  Updates theta, eta, *F and *ll and
 * returns 1, or returns 0 with nothing changed. */
static int line_search(struct fit *f, double *F, double *ll)
{
    double t = 1.0;

    for (int k = 0; k < MAX_HALVINGS; k++, t *= 0.5) {
        double trial_ll;
        for (int a = 0; a < f->p; a++)
            f->trial[a] = f->theta[a] + t * f->step[a];
        double Fn = objective(f, t, f->trial, &trial_ll);
        if (isfinite(Fn) && Fn >= *F - OBJECTIVE_SLACK * (fabs(*F) + 1.0)) {
            memcpy(f->theta, f->trial, (size_t)f->p * sizeof(double));
            for (size_t i = 0; i < f->n; i++)
                f->eta[i] += t * f->deta[i];
            *F = Fn;
            *ll = trial_ll;
            return 1;
        }
    }
    return 0;
}

/* Runs Newton steps from theta (with eta matching it) until the gradient
 * test passes.  Fills iterations, loglik and grad_norm of m. */
/* Sign constraints: holds at 0 the constrained coefficients at their
 * bound whose gradient points outwards (their Hessian row and column
 * become the identity, their gradient 0) and returns the largest
 * remaining |gradient| component. */
static double hold_bounds(struct fit *f)
{
    int p = f->p;
    double gmax = 0.0;

    for (int a = 1; a < p; a++) {
        int s = f->sign[a - 1];
        if (s != 0 && f->theta[a] * s <= 0.0 && f->grad[a] * s <= 0.0) {
            f->theta[a] = 0.0;
            f->grad[a] = 0.0;
            for (int b = 0; b < p; b++)
                f->hess[a * p + b] = f->hess[b * p + a] = 0.0;
            f->hess[a * p + a] = 1.0;
        }
    }
    for (int a = 0; a < p; a++)
        if (fabs(f->grad[a]) > gmax)
            gmax = fabs(f->grad[a]);
    return gmax;
}

/* The line search of the constrained fit: every trial point is projected
 * onto the constraints, so the change in eta is recomputed per trial. */
static int line_search_projected(struct fit *f, double *F, double *ll)
{
    double t = 1.0, *dir = f->step;

    for (int k = 0; k < MAX_HALVINGS; k++, t *= 0.5) {
        double trial_ll, move[LOGREG_MAX_FEATURES + 1];
        int moved = 0;
        for (int a = 0; a < f->p; a++) {
            double v = f->theta[a] + t * dir[a];
            if (a > 0 && f->sign[a - 1] != 0 && v * f->sign[a - 1] < 0.0)
                v = 0.0;
            f->trial[a] = v;
            move[a] = v - f->theta[a];
            moved |= move[a] != 0.0;
        }
        if (!moved)
            return 0;
        f->step = move; /* direction() turns step into deta */
        direction(f);
        f->step = dir;
        double Fn = objective(f, 1.0, f->trial, &trial_ll);
        if (isfinite(Fn) && Fn >= *F - OBJECTIVE_SLACK * (fabs(*F) + 1.0)) {
            memcpy(f->theta, f->trial, (size_t)f->p * sizeof(double));
            for (size_t i = 0; i < f->n; i++)
                f->eta[i] += f->deta[i];
            *F = Fn;
            *ll = trial_ll;
            return 1;
        }
    }
    return 0;
}

static int newton(struct fit *f, const logreg_opts *o, logreg_model *m)
{
    double ll, F = objective(f, 0.0, f->theta, &ll);

    for (int it = 0;; it++) {
        accumulate(f);
        double gmax = penalise(f);
        if (f->sign)
            gmax = hold_bounds(f);
        m->iterations = it;
        m->loglik = ll;
        m->grad_norm = gmax;
        if (gmax <= o->tol * f->wsum)
            return LS_OK;
        if (it == o->max_iter || cholesky_solve(f) != 0)
            return LS_ECONVERGE;
        if (f->sign) {
            if (!line_search_projected(f, &F, &ll))
                return LS_ECONVERGE;
            continue;
        }
        direction(f);
        if (!line_search(f, &F, &ll))
            return LS_ECONVERGE;
    }
}

/* ------------------------------------------------------------------ */
/* Setup and teardown of a fit                                         */
/* ------------------------------------------------------------------ */

/* Allocates the model's arrays and the fit's scratch.  On failure the
 * caller still runs fit_release() and logreg_destroy(). */
static int fit_alloc(struct fit *f, logreg_model *m)
{
    size_t p = (size_t)f->p, d = (size_t)f->d;
    size_t ntri = p * (p + 1) / 2;

    m->d = f->d;
    m->coef = alloc_doubles(d);
    m->mean = alloc_doubles(d);
    m->scale = alloc_doubles(d);
    f->block = alloc_doubles(d + 5 * p + ntri + p * p);
    f->eta = alloc_doubles(f->n);
    f->deta = alloc_doubles(f->n);
    if (!m->coef || !m->mean || !m->scale || !f->block || !f->eta || !f->deta)
        return LS_ENOMEM;
    f->mean = m->mean;
    f->scale = m->scale;
    f->inv = f->block;
    f->theta = f->inv + d;
    f->trial = f->theta + p;
    f->grad = f->trial + p;
    f->step = f->grad + p;
    f->z = f->step + p;
    f->tri = f->z + p;
    f->hess = f->tri + ntri;
    return LS_OK;
}

static void fit_release(struct fit *f)
{
    free(f->block);
    free(f->eta);
    free(f->deta);
}

/* Start: all coefficients 0, intercept the log-odds of the mean label. */
static void fit_start(struct fit *f, double ymean)
{
    memset(f->theta, 0, (size_t)f->p * sizeof(double));
    memset(f->deta, 0, f->n * sizeof(double));
    f->theta[0] = log(ymean / (1.0 - ymean));
    for (size_t i = 0; i < f->n; i++)
        f->eta[i] = f->theta[0];
}

/* ------------------------------------------------------------------ */
/* Public functions                                                    */
/* ------------------------------------------------------------------ */

logreg_opts logreg_opts_default(void)
{
    logreg_opts o = {.lambda = 1.0, .max_iter = 50, .tol = 1e-9, .sign = NULL};
    return o;
}

int logreg_fit_opts(const double *X, const double *y, const double *w,
                    size_t n, int d, const logreg_opts *opts,
                    logreg_model *out)
{
    struct fit f = {.X = X, .y = y, .w = w, .n = n, .d = d};
    double ymean = 0.0;
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    if (!args_valid(X, y, n, d, opts, out))
        return LS_EINVAL;
    f.p = d + 1;
    f.lambda = opts->lambda;
    f.sign = opts->sign;
    for (int j = 0; f.sign && j < d; j++)
        if (f.sign[j] < -1 || f.sign[j] > 1)
            return LS_EINVAL;
    if ((rc = check_labels(&f, &ymean)) != LS_OK)
        goto leave;
    if ((rc = fit_alloc(&f, out)) != LS_OK)
        goto leave;
    if ((rc = column_means(&f)) != LS_OK)
        goto leave;
    column_scales(&f);
    fit_start(&f, ymean);
    if ((rc = newton(&f, opts, out)) != LS_OK)
        goto leave;
    out->intercept = f.theta[0];
    memcpy(out->coef, f.theta + 1, (size_t)d * sizeof(double));
leave:
    fit_release(&f);
    if (rc != LS_OK)
        logreg_destroy(out);
    return rc;
}

int logreg_fit(const double *X, const double *y, const double *w, size_t n,
               int d, double lambda, logreg_model *out)
{
    logreg_opts o = logreg_opts_default();

    o.lambda = lambda;
    return logreg_fit_opts(X, y, w, n, d, &o, out);
}

void logreg_destroy(logreg_model *m)
{
    if (!m)
        return;
    free(m->coef);
    free(m->mean);
    free(m->scale);
    memset(m, 0, sizeof *m);
}

double logreg_logit(const logreg_model *m, const double *x)
{
    double s = m->intercept;

    for (int j = 0; j < m->d; j++)
        s += m->coef[j] * (x[j] - m->mean[j]) / m->scale[j];
    return s;
}

double logreg_predict(const logreg_model *m, const double *x)
{
    return sigmoid(logreg_logit(m, x));
}
