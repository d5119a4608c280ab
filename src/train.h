/* train.h -- fitting a model from the event histories in a store.
 *
 * The trainer reads one store snapshot (a store_reader with a snapshot
 * begun by the caller: a live store being served, or the temporary store
 * `leadscore train FILE...` loads its files into).  Features are what the
 * service scores, by definition: the canonical replay of each customer's
 * history as of a time (history_replay, history.h).  With h the horizon
 * and c the evaluation cutoff, the cutoffs are
 *     fit:          c - 2h - i*h/2, i = 0..3   (pooled training rows)
 *     calibration:  c - h                     (lambda choice, Platt scaling)
 *     evaluation:   c                         (the final hold-out)
 * and for each a label: whether the customer placed an order (a purchase
 * event) in (cutoff, cutoff + h] -- the fit windows all end by the
 * calibration cutoff, whose window ends at c, so no row is labelled with
 * anything a later stage is judged on.  A customer contributes one row per
 * cutoff at which it exists.  No event later than c + h is read at all.
 * When the history is too short for fit rows (no fit row, or one class),
 * the model is fitted on the calibration rows with the fixed lambda and
 * no calibration, and the report says so (short_history).
 *
 * train_from_store then
 *   - fits the repeat-purchase model at every cutoff on the buyers'
 *     summary as of that cutoff, as scoring computes it (assess_summary,
 *     assess.h: transactions are purchase days): BG/NBD, or the NBD when
 *     BG/NBD degenerates (dropout b -> infinity, a/(a+b) -> 0, or no
 *     convergence), or -- loudly -- the start parameters when neither
 *     fits.  Its P(order within h) and expected orders (assess_repeat,
 *     the model-level features repeat_p_buy, repeat_expected) are columns
 *     of the rows at that cutoff: no row sees a repeat model fitted on data
 *     after its cutoff.  The fit at c is the one the model file keeps;
 *     Gamma-Gamma is fitted at c;
 *   - fits the L2-regularised logistic readiness model on the pooled fit
 *     rows with sign constraints (logreg.h: intent and engagement terms
 *     never negative, silence and tenure terms never positive,
 *     disappointment terms never positive, so silence alone never raises
 *     a score), choosing lambda from a small grid by the calibrated
 *     log-loss on the calibration rows, then Platt-scales it there;
 *   - evaluates it on the evaluation rows: AUC, log-loss, Brier, lift in
 *     the top 10 %, mean predicted vs observed rate, a 10-bin reliability
 *     table -- next to a recency baseline and an RFM baseline (logistic on
 *     log recency, log frequency, log monetary value) fitted and calibrated
 *     the same way, and (optionally) next to an existing model scored
 *     exactly as the service scores it;
 *   - with a base model, measures its recommendations: the share of the
 *     customers whose next order in the horizon after c falls in a
 *     catalogue segment that find it among the top 3 segments recommended
 *     as of c (assess_customer with the base model, as the recommend op),
 *     next to the 3 segments most bought before c.
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
#include "segments.h"
#include "store.h"

#define TRAIN_MAX_FEATURES 64
#define TRAIN_DECILES 10
#define TRAIN_FIT_CUTOFFS 4
#define TRAIN_MAX_LAMBDAS 8
#define TRAIN_TOP_SEGMENTS 3

/* Called every few thousand customers with the number scanned so far,
 * and again before each fit after the scan (each lambda of the grid, each
 * baseline, each cutoff's repeat-purchase fit) and at the end; a non-zero
 * return stops the training (train_from_store then returns LS_EUNAVAIL),
 * so a stop is honoured within one fit. */
typedef int (*train_progress_fn)(void *arg, uint64_t customers_done);

/* Called (with progress_arg) as each long step after the scan begins. */
typedef void (*train_stage_fn)(void *arg, const char *what);

typedef struct {
    int64_t cutoff_ms;        /* the evaluation cutoff c */
    int horizon_days;
    double lambda;            /* with lambda_fixed: the L2 penalty (standardised coefficients) */
    int lambda_fixed;         /* 0: choose lambda from the grid on the calibration rows */
    feature_decay decay;      /* half-lives: the store's (store_decay) */
    double time_unit_days;    /* BG/NBD time unit (7: weeks) */
    clv_repeat repeat_start;  /* optimiser start values; kept (loudly) when nothing fits */
    clv_gamma_gamma gg_start;
    int clv_only;             /* fit only the repeat-purchase model and Gamma-Gamma */
    const model *compare;     /* NULL, or a model to evaluate on the same hold-out (train_report.compare) */
    const model *base;        /* NULL, or the model whose recommendations are measured */
    train_progress_fn progress; /* NULL: none */
    train_stage_fn stage;     /* NULL: none */
    void *progress_arg;
} train_options;

typedef struct {
    double auc, logloss, brier, lift_top10, base_rate, mean_predicted;
    size_t rows, positives;
    size_t calib_count[TRAIN_DECILES];
    double calib_predicted[TRAIN_DECILES], calib_observed[TRAIN_DECILES];
} train_metrics;

/* The repeat-purchase fit at one cutoff. */
typedef struct {
    clv_repeat model;            /* what the rows (and, at c, the model file) use */
    int fitted;                  /* 0: nothing fitted, the start parameters were kept */
    double loglik;               /* of `model` (when fitted) */
    size_t customers;            /* buyers summarised */
    int bgnbd_converged;         /* the BG/NBD attempt converged (it may still be degenerate) */
    clv_bgnbd bgnbd_attempt;
    double bgnbd_loglik;
    int nbd_converged;
    double nbd_loglik;
    char reason[200];            /* why this model; "" when BG/NBD fitted well */
} train_repeat_fit;

/* Standard errors of the paired differences model - other on the same
 * hold-out rows (0 when they cannot be computed). */
typedef struct {
    double auc_se;       /* of the AUC difference (DeLong, evalm_auc_diff) */
    double logloss_se;   /* of the log-loss difference (evalm_logloss_diff) */
} train_paired;

typedef struct {
    /* data: the events read (ts <= c + horizon) and their customers */
    uint64_t events, customers;
    int64_t first_ts_ms, last_ts_ms;
    int nfit;                              /* fit cutoffs */
    int64_t fit_cutoff_ms[TRAIN_FIT_CUTOFFS];
    size_t fit_rows[TRAIN_FIT_CUTOFFS];
    int64_t train_cutoff_ms;               /* the latest fit cutoff */
    int64_t calib_cutoff_ms, eval_cutoff_ms;
    int short_history;                     /* fitted on the calibration rows, uncalibrated */
    int orders_by_repeat;                  /* not orders_only: the model scores a buyer known from orders alone by
                                              the repeat-purchase model ("orders_only_customers") */
    size_t orders_only_rows;               /* such hold-out rows, scored so in `model` */
    size_t orders_first_rows;              /* hold-out buyers whose first order came before any visit: scored
                                              by the larger of that and the logistic terms */
    int orders_only;                       /* under 1 % of the fit rows' customers visited the storefront:
                                              lifetime purchase days and net spend were candidates */
    double unpriced_cart_value;            /* > 0: the median open cart value of the fit rows, which the model
                                              counts a cart without prices as ("unpriced_cart_value"); 0 when
                                              1 % or more of their open carts had no price (the fit saw them) or
                                              the model has no cart value term */
    size_t priced_carts, unpriced_carts;   /* the fit rows' open carts with a value and without */
    /* readiness */
    int nterms;
    int term_feature[TRAIN_MAX_FEATURES];  /* model_feature_lookup ids */
    int term_log1p[TRAIN_MAX_FEATURES];
    double term_per[TRAIN_MAX_FEATURES];   /* > 0: log1p_scaled, log1p(x / per) */
    double term_mean[TRAIN_MAX_FEATURES], term_scale[TRAIN_MAX_FEATURES], term_coef[TRAIN_MAX_FEATURES];
    double intercept;
    int held_at_zero;                      /* terms the sign constraints hold at 0 */
    double lambda;                         /* the lambda used */
    int nlambdas;                          /* the grid tried (0: fixed) */
    double grid_lambda[TRAIN_MAX_LAMBDAS], grid_logloss[TRAIN_MAX_LAMBDAS], grid_auc[TRAIN_MAX_LAMBDAS];
    int calibrated;                        /* Platt a, b fitted on the calibration rows */
    double cal_a, cal_b;
    train_metrics train, calib, model, baseline, rfm;
    train_paired vs_rfm;         /* model against rfm */
    int compared;                /* 1: `compare` holds options.compare on the hold-out */
    train_metrics compare;
    train_paired vs_compare;     /* model against compare */
    /* recommendations (options.base) on the hold-out */
    int recs_measured;
    size_t recs_customers, recs_hits, recs_popular_hits;
    char recs_popular[TRAIN_TOP_SEGMENTS][SEGMENTS_NAME];
    int recs_npopular;
    /* customer base, at the evaluation cutoff */
    train_repeat_fit repeat;
    int gg_ok;
    clv_gamma_gamma gg;
    double gg_loglik;
    size_t gg_customers;
    double seconds;              /* scan and fits */
} train_report;

/* The gate: whether a model m loses to a reference ref scored on the same
 * hold-out rows.  `train` refuses a model that loses to the RFM baseline;
 * scheduled retraining swaps in a new model only when the serving one
 * loses to it.  Each of the two figures is compared with the standard
 * error of its paired difference (train_paired): log-loss (the objective
 * the model is fitted and its lambda chosen by: how good the
 * probabilities are) and AUC (how well it ranks).  A figure is clearly
 * worse (better) when it is behind (ahead) by more than TRAIN_GATE_SES
 * standard errors -- at least TRAIN_GATE_TIE, rounding -- and within the
 * noise otherwise.  m loses when it is clearly worse on one figure and
 * not clearly better on the other: a shortfall inside the noise of the
 * hold-out is no loss, and neither is a trade (clearly better probabilities
 * for a clearly worse ranking, or the reverse). */
typedef enum {
    TRAIN_GATE_HOLDS = 0,   /* does not lose */
    TRAIN_GATE_LOGLOSS,     /* loses on log-loss (AUC within the noise) */
    TRAIN_GATE_AUC,         /* loses on AUC (log-loss within the noise) */
    TRAIN_GATE_BOTH,        /* clearly worse on both */
    TRAIN_GATE_UNUSABLE     /* either has no rows or a non-finite AUC or log-loss */
} train_gate_verdict;

#define TRAIN_GATE_SES 2.0
#define TRAIN_GATE_TIE 1e-9

/* The verdict for model m against ref, se the standard errors of the
 * paired differences m - ref (a 0 or non-finite one: only TRAIN_GATE_TIE
 * counts as noise). */
train_gate_verdict train_gate(const train_metrics *m, const train_metrics *ref, const train_paired *se);

/* How far a figure may be behind or ahead and still be noise:
 * TRAIN_GATE_SES * se, at least TRAIN_GATE_TIE. */
double train_gate_tolerance(double se);

/* The model's "unpriced_cart_value" from the fit rows' open carts: the
 * median of the n priced ones' values (sorted in place), when the model
 * has a cart value term (has_term), n >= TRAIN_MIN_PRICED_CARTS and the
 * `unpriced` carts without a price are under 1 % of all; else 0, none. */
#define TRAIN_MIN_PRICED_CARTS 30
double train_unpriced_cart_value(double *values, size_t n, size_t unpriced, int has_term);

/* A term's "transform" as the model file names it: "none", "log1p" or
 * "log1p_scaled" (with term_per). */
const char *train_term_transform(const train_report *rep, int i);

/* A short name of a verdict: "holds", "log_loss", "auc",
 * "log_loss_and_auc", "unusable". */
const char *train_gate_name(train_gate_verdict v);

/* Both comparisons in words into buf (len bytes, truncated to fit), e.g.
 * "log-loss 0.1888 vs 0.1832, +0.0057 with a standard error of 0.0007:
 * worse; AUC 0.8476 vs 0.8490, -0.0014 with a standard error of 0.0024:
 * within noise".  Returns buf. */
const char *train_gate_describe(const train_metrics *m, const train_metrics *ref, const train_paired *se, char *buf,
                                size_t len);

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
 * default) with the fitted logistic terms, the calibration, the
 * repeat-purchase model ("clv": {"model": "bgnbd"|"nbd", ..., "fit":
 * {...}}) and Gamma-Gamma parameters, horizon, name, version, trained_at,
 * metrics and a data summary.  Returns a new JSON object (json_decref it) or NULL. */
json_t *train_model_json(const train_report *rep, const train_options *opt, json_t *base,
                         const char *name, const char *version);

#endif
