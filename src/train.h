/* train.h -- fitting a model from a shop's event history.
 *
 * The trainer sees every event once (train_add, any order) and keeps, per
 * customer, two encoded feature records: as of the training cutoff
 * c1 = cutoff - horizon, and as of the evaluation cutoff c2 = cutoff.  A
 * customer's label is whether it bought in the horizon after each cutoff.
 * train_fit then
 *   - fits the L2-regularised logistic readiness model on (features at c1,
 *     label after c1), with sign constraints that keep the model sensible
 *     (cart activity never lowers readiness, refunds/tickets/bad reviews
 *     never raise it: a feature whose coefficient comes out on the wrong
 *     side is dropped and the model refitted);
 *   - evaluates it on the later, held-out cutoff (features at c2, label
 *     after c2): AUC, log-loss, Brier, lift in the top 10 %, calibration by
 *     decile -- next to a plain recency baseline (a logistic model on days
 *     since last seen) fitted and evaluated the same way;
 *   - fits BG/NBD and Gamma-Gamma by maximum likelihood on the purchase
 *     history up to c2, counting as the papers do: purchases on the same
 *     day are one transaction, x counts repeat transactions, t_x and T are
 *     in the model's time unit with T running to c2.
 * The trainer never prints; the caller reports. */
#ifndef LS_TRAIN_H
#define LS_TRAIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clv.h"
#include "evalmetrics.h"
#include "event.h"
#include "feature.h"
#include "model.h"

#define TRAIN_MAX_FEATURES 32
#define TRAIN_DECILES 10

typedef struct {
    int64_t cutoff_ms;        /* the evaluation cutoff c2 */
    int horizon_days;
    double lambda;            /* L2 penalty (on standardised coefficients) */
    feature_decay decay;      /* half-lives of the records */
    double time_unit_days;    /* BG/NBD time unit (7: weeks) */
    clv_bgnbd bgnbd_start;    /* optimiser start values */
    clv_gamma_gamma gg_start;
    int clv_only;             /* fit only BG/NBD and Gamma-Gamma; keep the base logistic model */
} train_options;

typedef struct {
    double auc, logloss, brier, lift_top10, base_rate;
    size_t rows, positives;
    size_t calib_count[TRAIN_DECILES];
    double calib_predicted[TRAIN_DECILES], calib_observed[TRAIN_DECILES];
} train_metrics;

typedef struct {
    /* data */
    uint64_t events, customers;
    int64_t first_ts_ms, last_ts_ms, train_cutoff_ms, eval_cutoff_ms;
    /* readiness */
    int nterms;
    int term_feature[TRAIN_MAX_FEATURES];
    int term_log1p[TRAIN_MAX_FEATURES];
    double term_mean[TRAIN_MAX_FEATURES], term_scale[TRAIN_MAX_FEATURES], term_coef[TRAIN_MAX_FEATURES];
    double intercept;
    int dropped;                 /* features dropped by the sign constraints */
    train_metrics train, model, baseline;
    /* customer base */
    int bgnbd_ok, gg_ok;
    clv_bgnbd bgnbd;
    double bgnbd_loglik;
    size_t bgnbd_customers;
    clv_gamma_gamma gg;
    double gg_loglik;
    size_t gg_customers;
    double seconds;
} train_report;

typedef struct trainer trainer;

int train_new(trainer **out, const train_options *opt);
void train_free(trainer **t);

/* Folds one validated event in.  0 or LS_ENOMEM. */
int train_add(trainer *t, const ls_event *ev);

/* Fits and evaluates (see above).  LS_EINVAL when the data cannot support
 * a model (no customer before c1, or only one class of label), with the
 * reason in err. */
int train_fit(trainer *t, train_report *rep, char *err, size_t errlen);

/* Builds the model file: base (a parsed model file, e.g. the built-in
 * default) with the fitted logistic terms, BG/NBD and Gamma-Gamma
 * parameters, horizon, name, version, trained_at, metrics and a data
 * summary.  Returns a new JSON object (json_decref it) or NULL. */
json_t *train_model_json(const train_report *rep, const train_options *opt, json_t *base,
                         const char *name, const char *version);

#endif
