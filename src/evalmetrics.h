/* evalmetrics.h -- hold-out quality metrics for a scoring model.
 *
 * `leadscore train` scores the rows it held out of the fit and reports how
 * good the scores are: how well they rank (ROC AUC, lift in the top few
 * percent), how good they are as probabilities (log loss, Brier score) and
 * how well predicted and observed rates agree across the score range
 * (a calibration table).
 *
 * Inputs are parallel arrays of n scores and n labels; a label is 0 or 1
 * (any other byte value is LS_EINVAL).  Scores must be finite; for log loss
 * and the Brier score they are probabilities and must lie in [0, 1].
 *
 * Ties.  The ranking metrics treat rows with equal scores as if their order
 * were random and report the expected value: AUC counts a tied
 * positive/negative pair as one half (the Mann-Whitney statistic with
 * average ranks), and where a top-fraction cut or a calibration bin
 * boundary falls inside a group of tied scores, each row of the group
 * counts as the group's positive rate rather than its own label.  So the
 * results do not depend on the order of the input rows.
 *
 * Every function returns LS_OK (0) or a negative code from
 * leadscore/error.h and writes its result only on success.  LS_EINVAL: a
 * NULL pointer, n == 0, a bad label or score, or a metric that is undefined
 * for the data (said per function).  LS_ENOMEM: the functions that sort
 * allocate a copy of 16 * n bytes, freed before they return.  Nothing here
 * logs or keeps state, so any function may run on any thread. */
#ifndef LS_EVALMETRICS_H
#define LS_EVALMETRICS_H

#include <stddef.h>
#include <stdint.h>

/* One row of a calibration table: a bin of rows with adjacent scores. */
typedef struct {
    size_t count;            /* rows in the bin */
    double mean_predicted;   /* mean score of those rows */
    double observed_rate;    /* fraction of them labelled 1 (ties: above) */
} evalm_calib_row;

/* ROC AUC: the probability that a random positive scores above a random
 * negative, ties counting one half.  Sorts a copy: O(n log n).  LS_EINVAL
 * also when all labels are one class (AUC is undefined). */
int evalm_auc(const double *score, const uint8_t *label, size_t n,
              double *auc);

/* Mean negative log-likelihood of the labels under probabilities prob
 * (natural log).  The probability each row gives its own label (prob, or
 * 1 - prob for a 0) is clipped to [1e-15, 1 - 1e-15] first, so a sure miss
 * costs -ln(1e-15) = 34.54 rather than infinity, the same for either label
 * (clipping prob itself would not be: 1 - 1e-15 is not a double). */
int evalm_logloss(const double *prob, const uint8_t *label, size_t n,
                  double *logloss);

/* Mean squared difference between prob and the label. */
int evalm_brier(const double *prob, const uint8_t *label, size_t n,
                double *brier);

/* Lift of the top `fraction` (0 < fraction <= 1, e.g. 0.10) of rows by
 * score: their positive rate divided by the overall positive rate.  The top
 * is the k = ceil(fraction * n) highest-scoring rows (at least 1; a product
 * within 1e-9 relative of a whole number counts as that number, so 0.1 of
 * 30 rows is 3).  Sorts a copy.  LS_EINVAL also when fraction is outside
 * (0, 1] or there are no positives (lift is undefined). */
int evalm_lift_top(const double *score, const uint8_t *label, size_t n,
                   double fraction, double *lift);

/* Calibration table: the rows sorted by score (ascending) and cut into
 * `bins` equal-count bins (deciles for 10); when n is not a multiple of
 * bins the first n % bins bins hold one row more.  Writes bins rows to
 * out_rows, which the caller provides, lowest scores first.  Sorts a copy.
 * LS_EINVAL also when bins is 0 or greater than n. */
int evalm_calibration(const double *score, const uint8_t *label, size_t n,
                      size_t bins, evalm_calib_row *out_rows);

/* Paired AUC comparison of two scorings a and b of the same n rows:
 * *diff = AUC(a) - AUC(b) and *se its standard error by DeLong, DeLong &
 * Clarke-Pearson (1988) -- from each row's placement value under both
 * scorings (for a positive, the share of negatives scored below it; for a
 * negative, the share of positives scored above it; ties count one half),
 * so the correlation of the two scorings on the shared rows is counted:
 * Var = var(positives' placement differences) / n1 + var(negatives'
 * placement differences) / n0 (sample variances).  A class with a single
 * row adds 0 (its variance cannot be estimated).  Sorts copies: O(n log n),
 * 40 * n bytes.  LS_EINVAL also when all labels are one class. */
int evalm_auc_diff(const double *a, const double *b, const uint8_t *label,
                   size_t n, double *diff, double *se);

/* Paired log-loss comparison of two probability vectors a and b of the
 * same n rows: *diff = log loss(a) - log loss(b) (each clipped as
 * evalm_logloss clips) and *se the standard error of that mean of per-row
 * differences (their sample standard deviation / sqrt(n); 0 when n is 1).
 * No allocation. */
int evalm_logloss_diff(const double *a, const double *b, const uint8_t *label,
                       size_t n, double *diff, double *se);

#endif
