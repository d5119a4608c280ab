/* assess.c -- one customer's full assessment (see assess.h). */
#include "assess.h"

#include <math.h>

#include "clv.h"
#include "leadscore/error.h"

#define MS_PER_DAY 86400000.0

int assess_is_buyer(const ls_features *f) { return f->purchase_days > 0 && f->first_purchase_ms != 0; }

int assess_summary(const model_clv *c, const ls_features *f, int64_t now_ms, double *x, double *t_x, double *T)
{
    double unit_ms = c->time_unit_days * MS_PER_DAY;
    *x = *t_x = *T = 0;
    if (!assess_is_buyer(f))
        return 0;
    /* transactions are purchase days, as in `train` (history.h) */
    *x = (double)f->purchase_days - 1;
    *t_x = (double)(f->last_purchase_ms - f->first_purchase_ms) / unit_ms;
    *T = (double)(now_ms - f->first_purchase_ms) / unit_ms;
    if (*T < *t_x) /* asked about a time before the last purchase */
        *T = *t_x;
    return 1;
}

/* Mean value of the repeat purchases, or the mean order value when that
 * cannot be told (out-of-range data). */
static double repeat_mean(const ls_features *f, double x)
{
    if (x <= 0)
        return 0;
    double rest = (f->spend - f->first_purchase_value) / x;
    return rest > 0 ? rest : f->spend / (x + 1);
}

/* The model-level features from the window figures: a failed or
 * non-finite figure is 0. */
static void window_level(const clv_repeat_window_figures *w, double *p_buy, double *expected)
{
    *p_buy = w->p_buy_rc == LS_OK && isfinite(w->p_buy) ? w->p_buy : 0.0;
    *expected = w->expected_rc == LS_OK && isfinite(w->expected) ? w->expected : 0.0;
}

void assess_repeat_summary(const model_clv *c, double x, double t_x, double T, double horizon_days, double *p_buy,
                           double *expected)
{
    double tau = horizon_days / c->time_unit_days;
    clv_repeat_window_figures w;
    /* P(alive) once */
    clv_repeat_window(&c->repeat, x, t_x, T, tau, &w.p_buy_rc, &w.p_buy, &w.expected_rc, &w.expected);
    window_level(&w, p_buy, expected);
}

void assess_repeat(const model_clv *c, const ls_features *f, int64_t now_ms, double horizon_days, double *p_buy,
                   double *expected)
{
    double x, t_x, T;
    *p_buy = *expected = 0;
    if (assess_summary(c, f, now_ms, &x, &t_x, &T))
        assess_repeat_summary(c, x, t_x, T, horizon_days, p_buy, expected);
}

void assess_prepare(const model_clv *c, double horizon_days, assess_consts *out)
{
    double mean_order = 0;
    clv_gamma_gamma_expected_spend(&c->gamma_gamma, 0, 0, &mean_order);
    out->mean_order = mean_order;
    out->prospect_share = horizon_days > 30 ? 30.0 / horizon_days : 1.0;
    out->tau_30 = 30.0 / c->time_unit_days;
    out->tau_window = horizon_days / c->time_unit_days;   /* as assess_repeat_summary */
    out->horizon = c->horizon_days / c->time_unit_days;
    out->period = out->rate = 0;
    if (c->discount_rate_annual > 0) {
        out->period = 30.0 / c->time_unit_days;
        out->rate = pow(1.0 + c->discount_rate_annual, 30.0 / 365.0) - 1.0;
    }
}

/* The customer-base figures of a buyer (x, t_x, T): P(alive), expected
 * purchases in 30 days and the value over the clv horizon, in one
 * clv_repeat_customer call (P(alive) once).  When the model scores with
 * repeat_p_buy / repeat_expected, level[] gets them (assess_repeat's
 * figures at the model's horizon) from the same call, which then also
 * shares P(alive) and, for a 30-day horizon, the expected purchases with
 * them; otherwise level[] is left alone. */
static void buyer_base(const model *m, const ls_features *f, double x, double t_x, double T, assess_result *out,
                       double level[2])
{
    const model_clv *c = model_clv_params(m);
    const assess_consts *k = model_assess_consts(m);
    double zbar = repeat_mean(f, x);
    clv_repeat_figures fig;
    if (model_uses_repeat(m)) {
        clv_repeat_window_figures w;
        clv_repeat_customer_window(&c->repeat, &c->gamma_gamma, x, t_x, T, zbar, k->tau_30, k->horizon, k->period,
                                   k->rate, k->tau_window, &fig, &w);
        window_level(&w, &level[0], &level[1]);
    } else {
        clv_repeat_customer(&c->repeat, &c->gamma_gamma, x, t_x, T, zbar, k->tau_30, k->horizon, k->period, k->rate,
                            &fig);
    }
    out->p_alive = fig.p_alive_rc == LS_OK ? fig.p_alive : 0.0;
    out->expected_purchases_30d = fig.expected_rc == LS_OK ? fig.expected : 0.0;
    out->clv = fig.value_rc == LS_OK && isfinite(fig.value) ? fig.value : 0.0;
}

/* A prospect (never bought): p_alive 1, its score's share of 30 days, its
 * score times the mean order. */
static void prospect_base(const model *m, assess_result *out)
{
    const assess_consts *k = model_assess_consts(m);
    out->p_alive = 1.0;
    out->expected_purchases_30d = out->logistic.score * k->prospect_share;
    out->clv = out->logistic.score * k->mean_order;
}

void assess_customer_ex(const model *m, const ls_features *f, const feature_ctx *ctx, int explain, int k,
                        unsigned flags, assess_result *out)
{
    double x, t_x, T, level[2] = {0, 0};   /* a prospect's model-level features are 0 (assess_repeat) */
    /* the customer base first, for a buyer, so that the score takes its
     * model-level features from the same BG/NBD pass */
    int buyer = assess_summary(model_clv_params(m), f, ctx->now_ms, &x, &t_x, &T);
    if (buyer)
        buyer_base(m, f, x, t_x, T, out, level);
    model_score_ex(m, f, ctx, explain, level, &out->logistic);
    if (!buyer)
        prospect_base(m, out);
    journey_inputs ji = {ctx->now_ms, out->p_alive, out->clv};
    journey_eval(model_journey(m), f, &ji, &out->journey);
    out->nsegments = 0;
    if (k < 0)
        k = model_segments(m)->k;
    if (k > 0) {
        segments_inputs si = {*ctx, out->journey, out->p_alive, out->clv};
        out->nsegments = segments_rank_ex(model_segments(m), f, &si, k, !(flags & ASSESS_NO_REASONS), out->segments);
    }
}

void assess_customer(const model *m, const ls_features *f, const feature_ctx *ctx, int explain, int k,
                     assess_result *out)
{
    assess_customer_ex(m, f, ctx, explain, k, 0, out);
}
