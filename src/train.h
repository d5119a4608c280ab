/* train.h -- fitting a model from the event histories in a store.
 *
 * The trainer reads one store snapshot (a store_reader with a snapshot
 * begun by the caller: a live store being served, or the temporary store
 * `leadscore train FILE...` loads its files into).  Features are what the
 * service scores, by definition: the canonical replay of each customer's
 * history as of a time (history_replay, history.h).  Two cutoffs:
 *     c1 = cutoff - horizon   training:  features as of c1,
 *     c2 = cutoff             hold-out:  features as of c2,
 * and for each a label: whether the customer placed an order (a purchase
 * event) in (c, c + horizon].  A customer first seen after a cutoff has no
 * row at that cutoff.  No event later than c2 + horizon is read at all, so
 * events after it change nothing in the report.
 *
 * train_from_store then
 *   - fits the L2-regularised logistic readiness model on the c1 rows, with
 *     sign constraints that keep the model sensible (cart activity never
 *     lowers readiness, refunds/tickets/bad reviews never raise it: a
 *     feature whose coefficient comes out on the wrong side is dropped and
 *     the model refitted);
 *   - evaluates it on the c2 rows (a hold-out by time): AUC, log-loss,
 *     Brier, lift in the top 10 %, calibration by decile -- next to a plain
 *     recency baseline fitted and evaluated the same way, and (optionally)
 *     next to an existing model scored exactly as the service scores it;
 *   - fits BG/NBD and Gamma-Gamma by maximum likelihood on the customers'
 *     repeat-purchase summary as of c2, computed as scoring computes it
 *     (assess_summary, assess.h): transactions are purchase days, x =
 *     purchase_days - 1, t_x and T from the first and last purchase in the
 *     model's time unit with T running to c2, and Gamma-Gamma's zbar the
 *     mean value of the purchase days after the first.
 * The trainer never prints or logs; the caller reports. */
#ifndef LS_TRAIN_H
#define LS_TRAIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "clv.h"
#include "evalmetrics.h"
#include "feature.h"
#include "model.h"
#include "store.h"

#define TRAIN_MAX_FEATURES 32
#define TRAIN_DECILES 10

/* Called every few thousand customers with the number scanned so far;
 * a non-zero return stops the training (train_from_store then returns
 * LS_EUNAVAIL). */
typedef int (*train_progress_fn)(void *arg, uint64_t customers_done);

typedef struct {
    int64_t cutoff_ms;        /* the evaluation cutoff c2 */
    int horizon_days;
    double lambda;            /* L2 penalty (on standardised coefficients) */
    feature_decay decay;      /* half-lives: the store's (store_decay) */
    double time_unit_days;    /* BG/NBD time unit (7: weeks) */
    clv_bgnbd bgnbd_start;    /* optimiser start values */
    clv_gamma_gamma gg_start;
    int clv_only;             /* fit only BG/NBD and Gamma-Gamma; keep the base logistic model */
    const model *compare;     /* NULL, or a model to evaluate on the same hold-out (train_report.compare) */
    train_progress_fn progress; /* NULL: none */
    void *progress_arg;
} train_options;

typedef struct {
    double auc, logloss, brier, lift_top10, base_rate;
    size_t rows, positives;
    size_t calib_count[TRAIN_DECILES];
    double calib_predicted[TRAIN_DECILES], calib_observed[TRAIN_DECILES];
} train_metrics;

typedef struct {
    /* data: the events read (ts <= c2 + horizon) and their customers */
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
    int compared;                /* 1: `compare` holds options.compare on the hold-out */
    train_metrics compare;
    /* customer base */
    int bgnbd_ok, gg_ok;
    clv_bgnbd bgnbd;
    double bgnbd_loglik;
    size_t bgnbd_customers;
    clv_gamma_gamma gg;
    double gg_loglik;
    size_t gg_customers;
    double seconds;              /* scan and fits */
} train_report;

/* The newest event time in the reader's snapshot (0 for an empty store).
 * 0 or a store status. */
int train_last_event(store_reader *r, int64_t *out_ms);

/* Builds the training set from every customer history in the reader's
 * current snapshot (which the caller begins and ends) and fits and
 * evaluates as above.  LS_EINVAL when the data cannot support a model (no
 * customer before c1, or only one class of label), with the reason in err;
 * LS_EUNAVAIL when opt->progress asked to stop; else a store status. */
int train_from_store(store_reader *r, const train_options *opt, train_report *rep, char *err, size_t errlen);

/* Builds the model file: base (a parsed model file, e.g. the built-in
 * default) with the fitted logistic terms, BG/NBD and Gamma-Gamma
 * parameters, horizon, name, version, trained_at, metrics and a data
 * summary.  Returns a new JSON object (json_decref it) or NULL. */
json_t *train_model_json(const train_report *rep, const train_options *opt, json_t *base,
                         const char *name, const char *version);

#endif
