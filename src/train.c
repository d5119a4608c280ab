/* train.c -- the trainer: one pass over the customer histories of a store
 * snapshot into training rows (features as of each cutoff by canonical
 * replay, labels from the orders in the horizon after it) and the
 * customer-base summary; then the logistic fit with sign constraints, the
 * hold-out evaluation against a recency baseline (and, optionally, an
 * existing model), and the BG/NBD and Gamma-Gamma fits (see train.h). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assess.h"
#include "history.h"
#include "leadscore/error.h"
#include "logreg.h"
#include "timefmt.h"

#define MS_PER_DAY 86400000LL
/* customers between two progress calls */
#define PROGRESS_EVERY 4096

/* ------------------------------------------------------------------ */
/* Candidate features                                                  */
/* ------------------------------------------------------------------ */

/* Candidate features: name, log1p transform, sign constraint (+1: the
 * coefficient may not be negative, -1: not positive, 0: free).  Engagement
 * (views, searches, e-mail, sessions, carts, checkouts) may only raise
 * readiness and disappointment only lower it, so a marketer can read every
 * explanation at face value; purchase history is free (a purchase just made
 * can make the next one less likely).  No plain recency or tenure term, for
 * the reason models/handset.json explains. */
static const struct {
    const char *name;
    int log1p;
    int sign;
} candidates[] = {
    {"add_to_cart_recent", 1, +1}, {"add_to_cart_decayed", 1, +1}, {"checkout_recent", 1, +1},
    {"open_cart_value", 1, +1},    {"sessions_recent", 1, +1},     {"sessions_decayed", 1, +1},
    {"product_view_recent", 1, +1}, {"product_view_decayed", 1, +1}, {"page_view_recent", 1, +1},
    {"search_recent", 1, +1},       {"email_open_recent", 1, +1},    {"email_click_recent", 1, +1},
    {"purchase_count", 1, 0},      {"purchase_decayed", 1, 0},     {"discounted_share", 0, 0},
    {"refund_rate", 0, -1},        {"refund_decayed", 1, -1},      {"support_ticket_recent", 1, -1},
    {"bad_reviews", 1, -1},
};
#define N_CANDIDATES ((int)(sizeof candidates / sizeof candidates[0]))

static double transformed(const ls_features *f, int cand, const feature_ctx *ctx)
{
    double v = feature_value(f, feature_lookup(candidates[cand].name), ctx);
    return candidates[cand].log1p ? log1p(v > 0 ? v : 0) : v;
}

/* ------------------------------------------------------------------ */
/* Rows and the customer-base summary, grown as customers are read      */
/* ------------------------------------------------------------------ */

typedef struct {
    size_t n, cap;
    double *x;       /* n x N_CANDIDATES transformed values */
    double *y;
    uint8_t *label;
    double *recency; /* log1p(days since last seen), for the baseline */
    double *compare; /* the compared model's scores (hold-out rows only), or NULL */
} dataset;

static void dataset_free(dataset *d)
{
    free(d->x);
    free(d->y);
    free(d->label);
    free(d->recency);
    free(d->compare);
    memset(d, 0, sizeof *d);
}

/* Makes room for one more row.  0 or LS_ENOMEM (d unchanged). */
static int dataset_reserve(dataset *d, int with_compare)
{
    if (d->n < d->cap)
        return LS_OK;
    size_t cap = d->cap ? d->cap * 2 : 4096;
    double *x = realloc(d->x, cap * N_CANDIDATES * sizeof *x);
    if (x)
        d->x = x;
    double *y = realloc(d->y, cap * sizeof *y);
    if (y)
        d->y = y;
    uint8_t *label = realloc(d->label, cap);
    if (label)
        d->label = label;
    double *rec = realloc(d->recency, cap * sizeof *rec);
    if (rec)
        d->recency = rec;
    double *cmp = with_compare ? realloc(d->compare, cap * sizeof *cmp) : NULL;
    if (cmp)
        d->compare = cmp;
    if (!x || !y || !label || !rec || (with_compare && !cmp))
        return LS_ENOMEM;
    d->cap = cap;
    return LS_OK;
}

/* BG/NBD inputs of every buyer as of c2 (x, t_x, T) and its Gamma-Gamma zbar. */
typedef struct {
    size_t n, cap;
    double *x, *tx, *T, *zbar;
} base_set;

static void base_free(base_set *b)
{
    free(b->x);
    free(b->tx);
    free(b->T);
    free(b->zbar);
    memset(b, 0, sizeof *b);
}

static int base_reserve(base_set *b)
{
    if (b->n < b->cap)
        return LS_OK;
    size_t cap = b->cap ? b->cap * 2 : 4096;
    double **cols[] = {&b->x, &b->tx, &b->T, &b->zbar};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        double *p = realloc(*cols[i], cap * sizeof *p);
        if (!p)
            return LS_ENOMEM;
        *cols[i] = p;
    }
    b->cap = cap;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* The pass over the histories                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const train_options *opt;
    int64_t cut[2];           /* c1, c2 */
    int64_t horizon_ms;
    int64_t end_ms;           /* c2 + horizon: nothing later is read */
    model_clv clv;            /* the time unit assess_summary counts in */
    dataset rows[2];          /* rows at c1 (training) and c2 (hold-out) */
    base_set base;
    uint64_t events, customers, scanned;
    int64_t first_ts, last_ts;
} collector;

static void collector_init(collector *c, const train_options *opt)
{
    memset(c, 0, sizeof *c);
    c->opt = opt;
    c->horizon_ms = (int64_t)opt->horizon_days * MS_PER_DAY;
    c->cut[1] = opt->cutoff_ms;
    c->cut[0] = opt->cutoff_ms - c->horizon_ms;
    c->end_ms = opt->cutoff_ms + c->horizon_ms;
    c->clv.time_unit_days = opt->time_unit_days;
}

static void collector_free(collector *c)
{
    dataset_free(&c->rows[0]);
    dataset_free(&c->rows[1]);
    base_free(&c->base);
}

/* 1 when the history holds an order (a purchase event) in (from, to]. */
static int ordered_in(const history *h, int64_t from, int64_t to)
{
    for (size_t i = history_upto(h, from); i < h->n && h->ev[i].ts_ms <= to; i++)
        if (h->ev[i].type == EV_PURCHASE)
            return 1;
    return 0;
}

/* The features as of c1 and c2.  The second continues the first's replay
 * (the same operations in the same order, so the same bits) unless the
 * `before` aggregate counts at c2 and not at c1. */
static int replay_both(const collector *c, const history *h, ls_features f[2])
{
    const feature_decay *d = &c->opt->decay;
    int rc = history_replay(h, c->cut[0], d, &f[0]);
    if (rc)
        return rc;
    if (h->has_before && h->before.first_seen_ms > c->cut[0] && h->before.first_seen_ms <= c->cut[1])
        return history_replay(h, c->cut[1], d, &f[1]);
    f[1] = f[0];
    return history_apply_range(h, history_upto(h, c->cut[0]), history_upto(h, c->cut[1]), d, &f[1]);
}

/* Counts the customer's events up to end_ms in the data summary. */
static void note_data(collector *c, const history *h)
{
    size_t n = history_upto(h, c->end_ms);
    int64_t first = 0, last = 0;
    if (h->has_before && h->before.first_seen_ms <= c->end_ms) {
        first = h->before.first_seen_ms;
        last = h->before.last_seen_ms;
    }
    if (n > 0) {
        if (first == 0 || h->ev[0].ts_ms < first)
            first = h->ev[0].ts_ms;
        if (h->ev[n - 1].ts_ms > last)
            last = h->ev[n - 1].ts_ms;
    }
    if (first == 0)
        return;
    c->events += n;
    c->customers++;
    if (c->first_ts == 0 || first < c->first_ts)
        c->first_ts = first;
    if (last > c->last_ts)
        c->last_ts = last;
}

/* One row at cutoff k: every candidate feature, the recency, the label
 * and, on the hold-out, the compared model's score. */
static int add_row(collector *c, int k, const ls_features *f, const history *h)
{
    feature_ctx ctx = {c->cut[k], c->opt->decay};
    const model *cmp = k == 1 ? c->opt->compare : NULL;
    dataset *d = &c->rows[k];
    int rc = dataset_reserve(d, cmp != NULL);
    if (rc)
        return rc;
    for (int j = 0; j < N_CANDIDATES; j++)
        d->x[d->n * N_CANDIDATES + j] = transformed(f, j, &ctx);
    d->recency[d->n] = log1p(feature_value(f, feature_lookup("days_since_last_seen"), &ctx));
    d->label[d->n] = (uint8_t)ordered_in(h, c->cut[k], c->cut[k] + c->horizon_ms);
    d->y[d->n] = d->label[d->n];
    if (cmp) {
        model_result res;
        model_score(cmp, f, &ctx, 0, &res);
        d->compare[d->n] = res.score;
    }
    d->n++;
    return LS_OK;
}

/* Mean value of the purchase days after the first -- the zbar assess.c
 * scores with (its repeat_mean) -- or the mean per purchase day when that
 * cannot be told. */
static double repeat_mean(const ls_features *f, double x)
{
    if (x <= 0)
        return 0;
    double rest = (f->spend - f->first_purchase_value) / x;
    return rest > 0 ? rest : f->spend / (x + 1);
}

/* The customer's BG/NBD summary as of c2, as scoring computes it. */
static int add_base(collector *c, const ls_features *f)
{
    double x, tx, T;
    if (!assess_summary(&c->clv, f, c->cut[1], &x, &tx, &T))
        return LS_OK;
    int rc = base_reserve(&c->base);
    if (rc)
        return rc;
    base_set *b = &c->base;
    b->x[b->n] = x;
    b->tx[b->n] = tx;
    b->T[b->n] = T;
    b->zbar[b->n] = repeat_mean(f, x);
    b->n++;
    return LS_OK;
}

static int visit(void *arg, const char *id, size_t len, const ls_features *now, const history *h)
{
    collector *c = arg;
    ls_features f[2];
    int rc;
    (void)id;
    (void)len;
    (void)now;
    if (c->opt->progress && ++c->scanned % PROGRESS_EVERY == 0 && c->opt->progress(c->opt->progress_arg, c->scanned))
        return LS_EUNAVAIL;
    note_data(c, h);
    if ((rc = replay_both(c, h, f)))
        return rc;
    for (int k = 0; k < 2 && !c->opt->clv_only; k++)
        if (!feature_empty(&f[k]) && (rc = add_row(c, k, &f[k], h)))
            return rc;
    return feature_empty(&f[1]) ? LS_OK : add_base(c, &f[1]);
}

static int note_last(void *arg, const char *id, size_t len, const ls_features *f)
{
    int64_t *last = arg;
    (void)id;
    (void)len;
    if (f->last_seen_ms > *last)
        *last = f->last_seen_ms;
    return LS_OK;
}

int train_last_event(store_reader *r, int64_t *out_ms)
{
    *out_ms = 0;
    return store_reader_scan(r, note_last, out_ms);
}

/* ------------------------------------------------------------------ */
/* The readiness model                                                 */
/* ------------------------------------------------------------------ */

/* Copies the columns in use (use[j] set) into a dense matrix. */
static double *select_columns(const dataset *d, const int *use, int nuse)
{
    double *x = malloc(d->n * (size_t)nuse * sizeof *x);
    if (!x)
        return NULL;
    for (size_t r = 0; r < d->n; r++)
        for (int j = 0, o = 0; j < N_CANDIDATES; j++)
            if (use[j])
                x[r * (size_t)nuse + (size_t)o++] = d->x[r * N_CANDIDATES + j];
    return x;
}

/* Fits on the columns in use, dropping sign violators until none is left. */
static int fit_constrained(const dataset *d, double lambda, int *use, logreg_model *m, int *dropped)
{
    for (;;) {
        int nuse = 0;
        for (int j = 0; j < N_CANDIDATES; j++)
            nuse += use[j];
        if (nuse == 0)
            return LS_EINVAL;
        double *x = select_columns(d, use, nuse);
        if (!x)
            return LS_ENOMEM;
        int rc = logreg_fit(x, d->y, NULL, d->n, nuse, lambda, m);
        free(x);
        if (rc)
            return rc;
        int worst = -1;
        double worst_v = 0;
        for (int j = 0, o = 0; j < N_CANDIDATES; j++) {
            if (!use[j])
                continue;
            double v = m->coef[o++] * candidates[j].sign;
            if (v < worst_v) {
                worst_v = v;
                worst = j;
            }
        }
        if (worst < 0)
            return LS_OK;
        use[worst] = 0; /* the worst violator goes; refit without it */
        (*dropped)++;
        logreg_destroy(m);
    }
}

static void evaluate(const double *p, const uint8_t *label, size_t n, train_metrics *out)
{
    evalm_calib_row rows[TRAIN_DECILES];
    memset(out, 0, sizeof *out);
    out->rows = n;
    for (size_t i = 0; i < n; i++)
        out->positives += label[i];
    out->base_rate = n ? (double)out->positives / (double)n : 0;
    evalm_auc(p, label, n, &out->auc);
    evalm_logloss(p, label, n, &out->logloss);
    evalm_brier(p, label, n, &out->brier);
    evalm_lift_top(p, label, n, 0.10, &out->lift_top10);
    if (n >= TRAIN_DECILES && evalm_calibration(p, label, n, TRAIN_DECILES, rows) == LS_OK)
        for (int i = 0; i < TRAIN_DECILES; i++) {
            out->calib_count[i] = rows[i].count;
            out->calib_predicted[i] = rows[i].mean_predicted;
            out->calib_observed[i] = rows[i].observed_rate;
        }
}

/* Predictions of m on the dataset's columns in use. */
static double *predict_all(const logreg_model *m, const dataset *d, const int *use, int baseline)
{
    double *p = malloc((d->n ? d->n : 1) * sizeof *p), row[N_CANDIDATES];
    if (!p)
        return NULL;
    for (size_t r = 0; r < d->n; r++) {
        if (baseline) {
            p[r] = logreg_predict(m, &d->recency[r]);
            continue;
        }
        int o = 0;
        for (int j = 0; j < N_CANDIDATES; j++)
            if (use[j])
                row[o++] = d->x[r * N_CANDIDATES + j];
        p[r] = logreg_predict(m, row);
    }
    return p;
}

static void keep_terms(train_report *rep, const logreg_model *m, const int *use)
{
    rep->nterms = 0;
    rep->intercept = m->intercept;
    for (int j = 0, o = 0; j < N_CANDIDATES; j++) {
        if (!use[j])
            continue;
        int i = rep->nterms++;
        rep->term_feature[i] = feature_lookup(candidates[j].name);
        rep->term_log1p[i] = candidates[j].log1p;
        rep->term_mean[i] = m->mean[o];
        rep->term_scale[i] = m->scale[o];
        rep->term_coef[i] = m->coef[o];
        o++;
    }
}


/* Fits model and baseline on the c1 rows, evaluates both (and the
 * compared model) on the c2 rows. */
static int fit_readiness(collector *c, train_report *rep, char *err, size_t errlen)
{
    dataset *tr = &c->rows[0], *ev = &c->rows[1];
    logreg_model m = {0}, base = {0};
    int use[N_CANDIDATES], rc;
    double *p = NULL;
    for (int j = 0; j < N_CANDIDATES; j++)
        use[j] = 1;
    if (tr->n == 0 || ev->n == 0)
        return ls_fail(err, errlen, LS_EINVAL, "no customer was seen before the training cutoff: move --cutoff later "
                       "or give more history");
    rc = fit_constrained(tr, c->opt->lambda, use, &m, &rep->dropped);
    if (rc == LS_OK)
        rc = logreg_fit(tr->recency, tr->y, NULL, tr->n, 1, c->opt->lambda, &base);
    if (rc) {
        rc = ls_fail(err, errlen, LS_EINVAL, "the readiness model cannot be fitted (%s): the training window needs "
                     "both buyers and non-buyers", ls_strerror(rc));
        goto done;
    }
    keep_terms(rep, &m, use);
    if (!(p = predict_all(&m, tr, use, 0)))
        goto nomem;
    evaluate(p, tr->label, tr->n, &rep->train);
    free(p);
    if (!(p = predict_all(&m, ev, use, 0)))
        goto nomem;
    evaluate(p, ev->label, ev->n, &rep->model);
    free(p);
    if (!(p = predict_all(&base, ev, use, 1)))
        goto nomem;
    evaluate(p, ev->label, ev->n, &rep->baseline);
    if (ev->compare) {
        evaluate(ev->compare, ev->label, ev->n, &rep->compare);
        rep->compared = 1;
    }
    goto done;
nomem:
    rc = LS_ENOMEM;
done:
    free(p);
    logreg_destroy(&m);
    logreg_destroy(&base);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The customer base                                                   */
/* ------------------------------------------------------------------ */

static void fit_customer_base(const collector *c, train_report *rep)
{
    const base_set *b = &c->base;
    rep->bgnbd = c->opt->bgnbd_start;
    rep->gg = c->opt->gg_start;
    rep->bgnbd_customers = b->n;
    if (b->n == 0)
        return;
    rep->bgnbd_ok = clv_bgnbd_fit(b->x, b->tx, b->T, b->n, &rep->bgnbd, &rep->bgnbd_loglik) == LS_OK;
    for (size_t i = 0; i < b->n; i++)
        rep->gg_customers += b->x[i] > 0;
    rep->gg_ok = rep->gg_customers > 0 && clv_gamma_gamma_fit(b->x, b->zbar, b->n, &rep->gg, &rep->gg_loglik) == LS_OK &&
                 rep->gg.q > 1;
    if (!rep->bgnbd_ok)
        rep->bgnbd = c->opt->bgnbd_start;
    if (!rep->gg_ok)
        rep->gg = c->opt->gg_start;
}

int train_from_store(store_reader *r, const train_options *opt, train_report *rep, char *err, size_t errlen)
{
    int64_t t0 = timefmt_mono_ns();
    collector c;
    memset(rep, 0, sizeof *rep);
    if (opt->horizon_days < 1 || !(opt->time_unit_days > 0))
        return ls_fail(err, errlen, LS_EINVAL, "the horizon and the BG/NBD time unit must be positive");
    collector_init(&c, opt);
    int rc = store_reader_scan_history(r, visit, &c);
    if (rc == LS_EUNAVAIL)
        ls_fail(err, errlen, rc, "training stopped before the end of the store");
    else if (rc)
        ls_fail(err, errlen, rc, "cannot read the store: %s", ls_strerror(rc));
    rep->events = c.events;
    rep->customers = c.customers;
    rep->first_ts_ms = c.first_ts;
    rep->last_ts_ms = c.last_ts;
    rep->train_cutoff_ms = c.cut[0];
    rep->eval_cutoff_ms = c.cut[1];
    if (rc == LS_OK)
        fit_customer_base(&c, rep);
    if (rc == LS_OK && !opt->clv_only)
        rc = fit_readiness(&c, rep, err, errlen);
    collector_free(&c);
    rep->seconds = (double)(timefmt_mono_ns() - t0) / 1e9;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The model file                                                      */
/* ------------------------------------------------------------------ */

static json_t *metrics_json(const train_metrics *m)
{
    json_t *o = json_pack("{s:f, s:f, s:f, s:f, s:f, s:I, s:I}", "auc", m->auc, "log_loss", m->logloss,
                          "brier", m->brier, "lift_top10", m->lift_top10, "base_rate", m->base_rate,
                          "rows", (json_int_t)m->rows, "positives", (json_int_t)m->positives);
    json_t *cal = json_array();
    for (int i = 0; i < TRAIN_DECILES && o && cal; i++)
        json_array_append_new(cal, json_pack("{s:I, s:f, s:f}", "count", (json_int_t)m->calib_count[i],
                                             "predicted", m->calib_predicted[i], "observed", m->calib_observed[i]));
    if (o && cal)
        json_object_set_new(o, "calibration", cal);
    return o;
}

static json_t *logistic_json(const train_report *rep)
{
    json_t *terms = json_array();
    for (int i = 0; i < rep->nterms && terms; i++)
        json_array_append_new(terms, json_pack("{s:s, s:s, s:f, s:f, s:f}", "feature",
                                               feature_name(rep->term_feature[i]), "transform",
                                               rep->term_log1p[i] ? "log1p" : "none", "mean", rep->term_mean[i],
                                               "scale", rep->term_scale[i], "coef", rep->term_coef[i]));
    return json_pack("{s:f, s:o}", "intercept", rep->intercept, "terms", terms);
}

static json_t *clv_json(const train_report *rep, const train_options *opt, json_t *base_clv)
{
    json_t *c = json_is_object(base_clv) ? json_deep_copy(base_clv) : json_object();
    if (!c)
        return NULL;
    json_object_set_new(c, "time_unit_days", json_real(opt->time_unit_days));
    json_object_set_new(c, "bgnbd", json_pack("{s:f, s:f, s:f, s:f}", "r", rep->bgnbd.r, "alpha", rep->bgnbd.alpha,
                                              "a", rep->bgnbd.a, "b", rep->bgnbd.b));
    json_object_set_new(c, "gamma_gamma", json_pack("{s:f, s:f, s:f}", "p", rep->gg.p, "q", rep->gg.q,
                                                    "gamma", rep->gg.gamma));
    if (!json_object_get(c, "horizon_days"))
        json_object_set_new(c, "horizon_days", json_integer(365));
    return c;
}

static json_t *notes_json(const train_report *rep)
{
    char line[512];
    json_t *notes = json_array();
    snprintf(line, sizeof line, "Trained by `leadscore train` on %llu events of %llu customers in %.1f s.",
             (unsigned long long)rep->events, (unsigned long long)rep->customers, rep->seconds);
    json_array_append_new(notes, json_string(line));
    json_array_append_new(notes, json_string(
        "Readiness: L2-regularised logistic regression (Newton/IRLS) on standardised features (z = (transform(x) - "
        "mean) / scale), features as of the training cutoff (the replay of each customer's event history), label = an "
        "order within horizon_days after it."));
    json_array_append_new(notes, json_string(
        "Sign constraints: engagement terms (views, searches, e-mail, sessions, carts, checkouts) may not be "
        "negative; refund, support-ticket and bad-review terms may not be positive; a violating feature is dropped "
        "and the model refitted."));
    snprintf(line, sizeof line, "Hold-out (later cutoff): AUC %.3f vs %.3f for a recency baseline; lift in the top "
             "10%% %.2f vs %.2f.", rep->model.auc, rep->baseline.auc, rep->model.lift_top10, rep->baseline.lift_top10);
    json_array_append_new(notes, json_string(line));
    json_array_append_new(notes, json_string(
        "clv: BG/NBD and Gamma-Gamma fitted by maximum likelihood on the repeat-purchase summary as of the "
        "evaluation cutoff, as scoring computes it (transactions = purchase days, x = purchase_days - 1); journey, "
        "segments and tiers come from the base model."));
    return notes;
}

json_t *train_model_json(const train_report *rep, const train_options *opt, json_t *base, const char *name,
                         const char *version)
{
    char when[40], c1[40], c2[40], first[40], last[40];
    json_t *m = json_deep_copy(base);
    if (!m)
        return NULL;
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000, when, sizeof when);
    timefmt_format_iso(rep->train_cutoff_ms, c1, sizeof c1);
    timefmt_format_iso(rep->eval_cutoff_ms, c2, sizeof c2);
    timefmt_format_iso(rep->first_ts_ms, first, sizeof first);
    timefmt_format_iso(rep->last_ts_ms, last, sizeof last);
    json_object_set_new(m, "name", json_string(name));
    json_object_set_new(m, "version", json_string(version));
    json_object_set_new(m, "trained_at", json_string(when));
    json_object_set_new(m, "horizon_days", json_integer(opt->horizon_days));
    json_object_set_new(m, "notes", notes_json(rep));
    if (rep->nterms > 0)
        json_object_set_new(m, "logistic", logistic_json(rep));
    json_object_set_new(m, "clv", clv_json(rep, opt, json_object_get(base, "clv")));
    json_object_set_new(m, "metrics", json_pack("{s:o, s:o, s:o, s:{s:b, s:f, s:I, s:b, s:f, s:I}}",
        "train", metrics_json(&rep->train), "holdout", metrics_json(&rep->model),
        "holdout_recency_baseline", metrics_json(&rep->baseline), "clv",
        "bgnbd_converged", rep->bgnbd_ok, "bgnbd_loglik", rep->bgnbd_loglik,
        "bgnbd_customers", (json_int_t)rep->bgnbd_customers, "gamma_gamma_converged", rep->gg_ok,
        "gamma_gamma_loglik", rep->gg_loglik, "gamma_gamma_customers", (json_int_t)rep->gg_customers));
    if (rep->compared)
        json_object_set_new(json_object_get(m, "metrics"), "holdout_compared_model", metrics_json(&rep->compare));
    json_object_set_new(m, "data", json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:f}", "events",
        (json_int_t)rep->events, "customers", (json_int_t)rep->customers, "first_event", first, "last_event", last,
        "train_cutoff", c1, "eval_cutoff", c2, "lambda", opt->lambda));
    return m;
}
