/* evalmetrics.c -- hold-out quality metrics (see evalmetrics.h).
 *
 * The ranking metrics share one step: copy (score, label) pairs, sort them
 * by score ascending, and walk the groups of equal scores.  That walk both
 * counts the Mann-Whitney pairs for AUC and replaces each row's label by
 * its tie group's positive rate ("smoothing"), after which the expected
 * number of positives in any run of sorted positions is a plain sum --
 * which is all the lift and calibration cuts need.  Log loss and Brier
 * score are single passes with no allocation.  The paired AUC comparison
 * sorts row indices instead, to give each row its placement value. */
#include "evalmetrics.h"

#include <math.h>
#include <stdlib.h>

#include "leadscore/error.h"

#define LOGLOSS_CLIP 1e-15
#define WHOLE_RTOL 1e-9   /* fraction * n this close to an integer is one */

typedef struct {
    double score;
    double pos;   /* the label, then the tie group's positive rate */
} scored;

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/* Pointers present, n > 0, labels 0/1, scores finite and, if `unit`, in
 * [0, 1].  Counts the positives into *npos. */
static int inputs_valid(const double *score, const uint8_t *label, size_t n,
                        int unit, size_t *npos)
{
    size_t pos = 0;

    if (!score || !label || n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (label[i] > 1 || !isfinite(score[i]))
            return 0;
        if (unit && !(score[i] >= 0.0 && score[i] <= 1.0))
            return 0;
        pos += label[i];
    }
    *npos = pos;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Sorting and ties                                                    */
/* ------------------------------------------------------------------ */

static int by_score(const void *a, const void *b)
{
    double x = ((const scored *)a)->score, y = ((const scored *)b)->score;

    return (x > y) - (x < y);
}

/* A new array of the n pairs sorted by score ascending, or NULL when out
 * of memory.  The caller frees it. */
static scored *sorted_copy(const double *score, const uint8_t *label,
                           size_t n)
{
    scored *v;

    if (n > SIZE_MAX / sizeof *v || !(v = malloc(n * sizeof *v)))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        v[i].score = score[i];
        v[i].pos = label[i];
    }
    qsort(v, n, sizeof *v, by_score);
    return v;
}

/* Walks the tie groups of sorted v: sets each row's pos to its group's
 * positive rate, and returns the Mann-Whitney count -- the number of
 * (positive, negative) pairs with the positive scoring higher, plus half
 * the tied pairs. */
static double smooth_ties(scored *v, size_t n)
{
    double neg_below = 0.0, pairs = 0.0;
    size_t start = 0;

    while (start < n) {
        size_t end = start;
        double gpos = 0.0;
        while (end < n && v[end].score == v[start].score)
            gpos += v[end++].pos;
        double gsize = (double)(end - start), gneg = gsize - gpos;
        pairs += gpos * (neg_below + 0.5 * gneg);
        neg_below += gneg;
        for (size_t i = start; i < end; i++)
            v[i].pos = gpos / gsize;
        start = end;
    }
    return pairs;
}

/* Sum of smoothed pos over sorted positions [lo, hi). */
static double positives_in(const scored *v, size_t lo, size_t hi)
{
    double s = 0.0;

    for (size_t i = lo; i < hi; i++)
        s += v[i].pos;
    return s;
}

static double scores_in(const scored *v, size_t lo, size_t hi)
{
    double s = 0.0;

    for (size_t i = lo; i < hi; i++)
        s += v[i].score;
    return s;
}

/* k = ceil(fraction * n), at least 1, with products within WHOLE_RTOL of
 * an integer taken as that integer. */
static size_t top_count(double fraction, size_t n)
{
    double x = fraction * (double)n;
    size_t k = (size_t)x;

    if ((double)k < x - WHOLE_RTOL * x)
        k++;
    if (k > n)
        k = n;
    return k == 0 ? 1 : k;
}

/* ------------------------------------------------------------------ */
/* Public functions                                                    */
/* ------------------------------------------------------------------ */

int evalm_auc(const double *score, const uint8_t *label, size_t n,
              double *auc)
{
    size_t npos;
    scored *v;

    if (!auc || !inputs_valid(score, label, n, 0, &npos)
        || npos == 0 || npos == n)
        return LS_EINVAL;
    if (!(v = sorted_copy(score, label, n)))
        return LS_ENOMEM;
    *auc = smooth_ties(v, n) / ((double)npos * (double)(n - npos));
    free(v);
    return LS_OK;
}

/* The clipped loss of one row. */
static double row_loss(double prob, uint8_t label)
{
    double q = label ? prob : 1.0 - prob;   /* exact */

    return -log(fmin(fmax(q, LOGLOSS_CLIP), 1.0 - LOGLOSS_CLIP));
}

int evalm_logloss(const double *prob, const uint8_t *label, size_t n,
                  double *logloss)
{
    size_t npos;
    double sum = 0.0;

    if (!logloss || !inputs_valid(prob, label, n, 1, &npos))
        return LS_EINVAL;
    for (size_t i = 0; i < n; i++)
        sum += row_loss(prob[i], label[i]);
    *logloss = sum / (double)n;
    return LS_OK;
}

int evalm_brier(const double *prob, const uint8_t *label, size_t n,
                double *brier)
{
    size_t npos;
    double sum = 0.0;

    if (!brier || !inputs_valid(prob, label, n, 1, &npos))
        return LS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        double e = prob[i] - (double)label[i];
        sum += e * e;
    }
    *brier = sum / (double)n;
    return LS_OK;
}

int evalm_lift_top(const double *score, const uint8_t *label, size_t n,
                   double fraction, double *lift)
{
    size_t npos, k;
    scored *v;

    if (!lift || !(fraction > 0.0 && fraction <= 1.0)
        || !inputs_valid(score, label, n, 0, &npos) || npos == 0)
        return LS_EINVAL;
    if (!(v = sorted_copy(score, label, n)))
        return LS_ENOMEM;
    smooth_ties(v, n);
    k = top_count(fraction, n);
    *lift = (positives_in(v, n - k, n) / (double)k)
          / ((double)npos / (double)n);
    free(v);
    return LS_OK;
}

int evalm_calibration(const double *score, const uint8_t *label, size_t n,
                      size_t bins, evalm_calib_row *out_rows)
{
    size_t npos, lo = 0;
    scored *v;

    if (!out_rows || !inputs_valid(score, label, n, 0, &npos)
        || bins == 0 || bins > n)
        return LS_EINVAL;
    if (!(v = sorted_copy(score, label, n)))
        return LS_ENOMEM;
    smooth_ties(v, n);
    for (size_t b = 0; b < bins; b++) {
        size_t count = n / bins + (b < n % bins);
        out_rows[b].count = count;
        out_rows[b].mean_predicted = scores_in(v, lo, lo + count) / (double)count;
        out_rows[b].observed_rate = positives_in(v, lo, lo + count) / (double)count;
        lo += count;
    }
    free(v);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Paired comparisons: AUC (DeLong) and log loss                      */
/* ------------------------------------------------------------------ */

typedef struct {
    double score;
    size_t row;
} ranked;

static int by_rank_score(const void *a, const void *b)
{
    double x = ((const ranked *)a)->score, y = ((const ranked *)b)->score;

    return (x > y) - (x < y);
}

/* Each row's placement value under score into place[row]: for a positive
 * the share of negatives scored below it, for a negative the share of the
 * npos positives scored above it, ties one half.  v is scratch space for
 * n entries. */
static void placements(const double *score, const uint8_t *label, size_t n,
                       size_t npos, ranked *v, double *place)
{
    double nneg = (double)(n - npos), pos_below = 0.0, neg_below = 0.0;
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        v[i].score = score[i];
        v[i].row = i;
    }
    qsort(v, n, sizeof *v, by_rank_score);
    while (start < n) {
        size_t end = start;
        double gpos = 0.0;
        while (end < n && v[end].score == v[start].score)
            gpos += label[v[end++].row];
        double gneg = (double)(end - start) - gpos;
        double pos_above = (double)npos - pos_below - gpos;
        for (size_t i = start; i < end; i++)
            place[v[i].row] = label[v[i].row]
                ? (neg_below + 0.5 * gneg) / nneg
                : (pos_above + 0.5 * gpos) / (double)npos;
        pos_below += gpos;
        neg_below += gneg;
        start = end;
    }
}

/* Adds the sample variance of the placement differences of the rows of
 * class cls (count rows), divided by count, to *var; returns their mean. */
static double class_term(const double *pa, const double *pb,
                         const uint8_t *label, size_t n, uint8_t cls,
                         size_t count, double *var)
{
    double mean = 0.0, ss = 0.0;

    for (size_t i = 0; i < n; i++)
        if (label[i] == cls)
            mean += pa[i] - pb[i];
    mean /= (double)count;
    for (size_t i = 0; i < n; i++)
        if (label[i] == cls) {
            double d = pa[i] - pb[i] - mean;
            ss += d * d;
        }
    if (count > 1)
        *var += ss / (double)(count - 1) / (double)count;
    return mean;
}

int evalm_auc_diff(const double *a, const double *b, const uint8_t *label,
                   size_t n, double *diff, double *se)
{
    size_t npos, nb;
    double var = 0.0;

    if (!diff || !se || !inputs_valid(a, label, n, 0, &npos)
        || !inputs_valid(b, label, n, 0, &nb) || npos == 0 || npos == n)
        return LS_EINVAL;
    if (n > SIZE_MAX / (2 * sizeof(double) + sizeof(ranked)))
        return LS_ENOMEM;
    ranked *v = malloc(n * sizeof *v);
    double *pa = malloc(n * sizeof *pa), *pb = malloc(n * sizeof *pb);
    if (!v || !pa || !pb) {
        free(v);
        free(pa);
        free(pb);
        return LS_ENOMEM;
    }
    placements(a, label, n, npos, v, pa);
    placements(b, label, n, npos, v, pb);
    *diff = class_term(pa, pb, label, n, 1, npos, &var);
    class_term(pa, pb, label, n, 0, n - npos, &var);
    *se = sqrt(var);
    free(v);
    free(pa);
    free(pb);
    return LS_OK;
}

int evalm_logloss_diff(const double *a, const double *b, const uint8_t *label,
                       size_t n, double *diff, double *se)
{
    size_t npos;
    double mean = 0.0, ss = 0.0;

    if (!diff || !se || !inputs_valid(a, label, n, 1, &npos)
        || !inputs_valid(b, label, n, 1, &npos))
        return LS_EINVAL;
    for (size_t i = 0; i < n; i++)
        mean += row_loss(a[i], label[i]) - row_loss(b[i], label[i]);
    mean /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = row_loss(a[i], label[i]) - row_loss(b[i], label[i]) - mean;
        ss += d * d;
    }
    *diff = mean;
    *se = n > 1 ? sqrt(ss / (double)(n - 1) / (double)n) : 0.0;
    return LS_OK;
}
