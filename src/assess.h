/* assess.h -- everything a score result says about one customer, computed
 * in one place: the readiness score (model.h), the customer-base figures
 * (BG/NBD P(alive) and expected purchases, Gamma-Gamma spend, CLV: clv.h),
 * the marketing reading (type, phase, loyalty, actions: journey.h) and the
 * content segments (segments.h).
 *
 * BG/NBD (or its no-dropout limit, the NBD, when the model file's
 * clv.model says "nbd": P(alive) is then 1) describes buyers.  A customer with purchases is summarised as
 * x = purchases - 1 (repeat purchases), t_x = last - first purchase and
 * T = now - first purchase, in the model's time unit.  For a prospect (no
 * purchase yet) BG/NBD says nothing, so: p_alive = 1 (its x = 0
 * convention), expected_purchases_30d = score x min(1, 30 / horizon_days)
 * and clv = score x the population mean order value (one expected first
 * order).  The Gamma-Gamma zbar is the mean value of the repeat purchases
 * (spend minus the first order, over x). */
#ifndef LS_ASSESS_H
#define LS_ASSESS_H

#include "feature.h"
#include "journey.h"
#include "model.h"
#include "segments.h"

typedef struct {
    model_result logistic;
    double p_alive;
    double expected_purchases_30d;
    double clv;
    journey_result journey;
    int nsegments;
    segments_item segments[SEGMENTS_MAX_K];
} assess_result;

/* 1 when the record holds a purchase: what assess_summary needs for a
 * BG/NBD summary (and what model.c's orders-only rule needs). */
int assess_is_buyer(const ls_features *f);

/* The BG/NBD summary of a record at now_ms; returns 0 when the customer
 * never bought (assess_is_buyer; x, t_x, T then 0). */
int assess_summary(const model_clv *c, const ls_features *f, int64_t now_ms, double *x, double *t_x, double *T);

/* The repeat-purchase figures of a buyer with summary (x, t_x, T) (time
 * units of c) over the next horizon_days: *p_buy = P(at least one order)
 * and *expected = expected orders, under c's BG/NBD or NBD
 * (clv_repeat_p_buy, clv_repeat_expected).  A figure the maths cannot give
 * is 0.  THE definition of the model-level features repeat_p_buy and
 * repeat_expected (model.h): model_score and `train` both come here;
 * assess_customer_ex takes the same bits from clv_repeat_customer_window
 * (tests/test_assess.c compares the two). */
void assess_repeat_summary(const model_clv *c, double x, double t_x, double T, double horizon_days, double *p_buy,
                           double *expected);

/* The same for record f at now_ms; both 0 for a customer who never bought. */
void assess_repeat(const model_clv *c, const ls_features *f, int64_t now_ms, double horizon_days, double *p_buy,
                   double *expected);

/* Assesses record f at ctx->now_ms: k segments (0: none, < 0: the
 * model's default k), contributions when explain is set.  Never fails: a
 * numerical failure in the BG/NBD maths leaves that figure at 0.  The
 * result is bit for bit model_score followed by the customer-base figures
 * computed on their own; the BG/NBD work the two share (P(alive), and the
 * 30-day expected purchases when the model's horizon_days is 30) is done
 * once (clv_repeat_customer_window). */
void assess_customer(const model *m, const ls_features *f, const feature_ctx *ctx, int explain, int k,
                     assess_result *out);

/* What assess_customer_ex may leave out. */
enum {
    ASSESS_NO_REASONS = 1 << 0    /* segments[i].reason left empty ("") */
};

/* assess_customer with flags (ASSESS_*): a caller that shows no segment
 * reasons (a CSV of segment names, train's hit rate, a trigger) saves
 * their formatting (about 70 ns a buyer; more when a type or phase reason,
 * written with snprintf, ranks).  Every other field is the same. */
void assess_customer_ex(const model *m, const ls_features *f, const feature_ctx *ctx, int explain, int k,
                        unsigned flags, assess_result *out);

/* The per-model constants of the customer-base figures, computed once by
 * assess_prepare when a model is loaded (model.c keeps them; see
 * model_assess_consts), with exactly the expressions assess_customer would
 * otherwise evaluate for every customer. */
struct assess_consts {
    double mean_order;        /* Gamma-Gamma population mean order value (0 if q <= 1) */
    double prospect_share;    /* a prospect's 30-day share of its score: min(1, 30 / horizon_days) */
    double tau_30;            /* 30 days in the model's time unit */
    double tau_window;        /* the model's horizon_days in time units (repeat_p_buy, repeat_expected) */
    double horizon;           /* the clv horizon in time units */
    double period, rate;      /* discounting per 30 days (0, 0: none) */
};

void assess_prepare(const model_clv *c, double horizon_days, assess_consts *out);

#endif
