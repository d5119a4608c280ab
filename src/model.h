/* model.h -- a scoring model: loaded from a JSON model file, immutable
 * once loaded, shared between worker threads by reference count.
 *
 * The readiness score is a logistic model over standardised features:
 *     z_i   = (transform_i(x_i) - mean_i) / scale_i
 *     logit = intercept + sum_i coef_i * z_i
 *     score = 1 / (1 + exp(-logit))
 * where x_i is a named feature of the customer's record at query time
 * (feature.h) or a model-level feature (below) and transform_i is "none",
 * "log1p" or "log1p_scaled" (log1p(x / per), per > 0 from the term).  A
 * feature may enter through several terms; `explain` sums them.
 *
 * Calibration.  A model file may carry "calibration": {"method": "platt",
 * "a": a > 0, "b": b}; the score is then sigmoid(a * logit + b), and the
 * logit, the intercept and every contribution model_score reports are on
 * that calibrated scale (a * coef_i * z_i; intercept a * intercept + b), so
 * they still add up to the logit `explain` shows.  Without the key the
 * calibration is the identity (a = 1, b = 0), as in older files.
 *
 * Model-level features are computed from the model's own repeat-purchase
 * part (its "clv" section) rather than read from the record:
 *   repeat_p_buy     P(at least one order within horizon_days) under the
 *                    fitted BG/NBD or NBD (0 for a customer who never bought);
 *   repeat_expected  expected orders within horizon_days (0 likewise).
 * assess_repeat (assess.h) is their one definition; `train` uses it too.
 * The file format is documented in README.md and models/default.json. */
#ifndef LS_MODEL_H
#define LS_MODEL_H

#include <stddef.h>

#include "clv.h"
#include "feature.h"
#include "journey.h"
#include "segments.h"

#define MODEL_MAX_TERMS 64

/* Ids of the model-level features (beyond feature.h's ids). */
enum { MODEL_FEATURE_REPEAT_P_BUY = 10000, MODEL_FEATURE_REPEAT_EXPECTED, MODEL_FEATURE_END };

typedef struct model model;
typedef struct assess_consts assess_consts;   /* assess.h */

/* The customer-base section: BG/NBD and Gamma-Gamma parameters in the
 * model's time unit, and how the customer value is summed. */
typedef struct {
    double time_unit_days;      /* 7: parameters are per week */
    clv_repeat repeat;          /* "model": "bgnbd" (the default) or "nbd" */
    clv_gamma_gamma gamma_gamma;
    double horizon_days;        /* the clv horizon, 365 */
    double discount_rate_annual; /* 0: undiscounted */
} model_clv;

typedef struct {
    int feature;          /* feature id (feature.h) */
    double value;         /* the raw feature value */
    double contribution;  /* coef * standardised value, in log-odds */
} model_contrib;

typedef struct {
    double logit;
    double score;         /* calibrated probability, 0..1 */
    int score_100;        /* round(100 * score) */
    const char *tier;     /* "hot", "warm" or "cold"; static storage */
    int orders_only;      /* 1: scored by its orders (the repeat-purchase part), not by the logistic terms */
    int ncontrib;         /* terms in contrib[], largest |contribution| first */
    model_contrib contrib[MODEL_MAX_TERMS];
} model_result;

/* Loads a model file.  On failure *out is NULL, the status is LS_EIO (file
 * unreadable) or LS_EPARSE (bad JSON or bad content) and err holds the
 * reason with the JSON line where there is one.  The new model has one
 * reference, owned by the caller. */
int model_load_file(const char *path, model **out, char *err, size_t errlen);

/* Same, from a JSON text of len bytes. */
int model_load_text(const char *text, size_t len, model **out, char *err, size_t errlen);

/* Loads models/default.json as it was compiled into the binary. */
int model_load_builtin(model **out, char *err, size_t errlen);

/* The text of that built-in model file (static storage). */
const char *model_builtin_text(size_t *len);

/* The default --model path; when no file is there, the built-in copy. */
#define MODEL_DEFAULT_PATH "models/default.json"

/* 1 when path (NULL: MODEL_DEFAULT_PATH) stands for the built-in copy:
 * the default path where no file is. */
int model_path_is_builtin(const char *path);

/* Loads the model `serve --model path` would use: the file, or for the
 * default path without a file there, the built-in copy (path NULL: the
 * default).  *used (may be NULL) names the file read, NULL for the
 * built-in copy. */
int model_load_default(const char *path, model **out, const char **used, char *err, size_t errlen);

/* Reference counting: model_ref adds one and returns m; model_unref drops
 * one, frees the model at zero, and NULLs *m. */
model *model_ref(model *m);
void model_unref(model **m);

/* The longest name, version or trained_at a model file may hold, plus 1. */
#define MODEL_TEXT_MAX 64

const char *model_name(const model *m);
const char *model_version(const model *m);
const char *model_trained_at(const model *m);
double model_horizon_days(const model *m);
const feature_decay *model_decay(const model *m);
int model_nterms(const model *m);
double model_intercept(const model *m);
/* Feature id of term i. */
int model_term_feature(const model *m, int i);
const model_clv *model_clv_params(const model *m);
const journey_rules *model_journey(const model *m);
const segments_catalogue *model_segments(const model *m);
/* The assessment's per-model constants (assess.h), computed at load. */
const assess_consts *model_assess_consts(const model *m);

/* The name of a feature id: a record feature (feature_name) or a
 * model-level one ("repeat_p_buy"); NULL when unknown. */
const char *model_feature_name(int id);

/* The id of a record or model-level feature name, or -1. */
int model_feature_lookup(const char *name);

/* Platt calibration of the model: score = sigmoid(a * raw logit + b);
 * a = 1, b = 0 when the file has none. */
void model_calibration(const model *m, double *a, double *b);

/* Scores record f at ctx.  With explain, fills out->contrib sorted by
 * |contribution| (largest first); without, out->ncontrib is 0. */
void model_score(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                 model_result *out);

/* 1 when some term is a model-level feature (repeat_p_buy,
 * repeat_expected), or orders-only customers are scored by the
 * repeat-purchase part: model_score computes them with assess_repeat. */
int model_uses_repeat(const model *m);

/* Customers known from orders alone.  A model file with
 * "orders_only_customers": "repeat_purchase" scores a buyer whose record
 * holds no storefront visit (feature_has_visit: an order feed, an
 * imported order history) by its orders instead of by the logistic terms,
 * whose storefront behaviour such a customer cannot show:
 *     logit = log(P / (1 - P)) + sum over complaint terms of
 *             a * coef_i * (transform_i(x_i) - transform_i(0)) / scale_i
 * with P = repeat_p_buy (clamped to [MODEL_ORDERS_P_MIN, 1 - that]) and the
 * complaint terms those of refund_rate, refund_count, support_ticket_count
 * and bad_reviews: 0 without a complaint, never positive with one (their
 * coefficients are <= 0 in a trained model).  Tiers apply as usual.
 * A buyer whose first order came before any visit (an order history
 * imported, then a storefront that began to send visits:
 * feature_orders_before_visits) is scored by the larger of that logit and
 * the logistic terms' -- the logistic terms never saw how such a customer
 * shops, so a first visit must not read as less than the orders alone.
 * model_orders_by_repeat: the model does; model_orders_only_customer: it
 * does and f has no visit (scored by its orders always). */
#define MODEL_ORDERS_P_MIN 1e-6
int model_orders_by_repeat(const model *m);
/* The model's "unpriced_cart_value" (0: none): what its terms count an
 * open cart of items sent without a price as. */
double model_unpriced_cart_value(const model *m);
int model_orders_only_customer(const model *m, const ls_features *f);

/* 1 when feature id is a complaint's (refund_rate, refund_count,
 * support_ticket_count, bad_reviews): the terms that still move an
 * orders-only customer's score. */
int model_complaint_feature(int id);

/* model_score with the model-level features given by a caller that has
 * them already: repeat_level[0] = repeat_p_buy, [1] = repeat_expected,
 * which must be what assess_repeat(model_clv_params(m), f, ctx->now_ms,
 * model_horizon_days(m)) gives (assess_customer_ex computes them with the
 * customer-base figures).  repeat_level NULL: model_score. */
void model_score_ex(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                    const double *repeat_level, model_result *out);

#endif
