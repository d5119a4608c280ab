/* train.c -- the trainer: one pass over events into per-customer state,
 * then the logistic fit with sign constraints, the hold-out evaluation
 * against a recency baseline, and the BG/NBD and Gamma-Gamma fits (see
 * train.h). */
#include "train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "logreg.h"
#include "timefmt.h"

#define MS_PER_DAY 86400000LL

/* ------------------------------------------------------------------ */
/* Per-customer state in an open-addressing hash table                  */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t *data;
    uint16_t len;
} blob;

typedef struct {
    char *id;                 /* NULL: free slot */
    uint32_t id_len;
    uint64_t hash;
    blob rec[2];              /* features as of c1 and c2 */
    uint8_t label[2];         /* bought in (c1, c1+h] / (c2, c2+h] */
    /* purchase days up to c2, for BG/NBD and Gamma-Gamma */
    int32_t first_day, last_day, ndays;
    double first_day_value, total_value;
} customer;

struct trainer {
    train_options opt;
    int64_t cut[2];           /* c1, c2 */
    customer *slots;
    size_t cap, used;
    uint64_t events;
    int64_t first_ts, last_ts;
};

static uint64_t hash_id(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int grow(trainer *t)
{
    size_t cap = t->cap ? t->cap * 2 : 4096;
    customer *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return LS_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        customer *c = &t->slots[i];
        if (!c->id)
            continue;
        size_t j = c->hash & (cap - 1);
        while (slots[j].id)
            j = (j + 1) & (cap - 1);
        slots[j] = *c;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return LS_OK;
}

static customer *find_or_add(trainer *t, const ls_str *id)
{
    if ((t->used + 1) * 10 >= t->cap * 7 && grow(t) != LS_OK)
        return NULL;
    uint64_t h = hash_id(id->ptr, id->len);
    size_t j = h & (t->cap - 1);
    for (;; j = (j + 1) & (t->cap - 1)) {
        customer *c = &t->slots[j];
        if (!c->id)
            break;
        if (c->hash == h && c->id_len == id->len && memcmp(c->id, id->ptr, id->len) == 0)
            return c;
    }
    customer *c = &t->slots[j];
    c->id = malloc(id->len + 1);
    if (!c->id)
        return NULL;
    memcpy(c->id, id->ptr, id->len);
    c->id[id->len] = '\0';
    c->id_len = (uint32_t)id->len;
    c->hash = h;
    t->used++;
    return c;
}

int train_new(trainer **out, const train_options *opt)
{
    trainer *t = calloc(1, sizeof *t);
    if (!t)
        return LS_ENOMEM;
    t->opt = *opt;
    t->cut[1] = opt->cutoff_ms;
    t->cut[0] = opt->cutoff_ms - (int64_t)opt->horizon_days * MS_PER_DAY;
    if (grow(t) != LS_OK) {
        free(t);
        return LS_ENOMEM;
    }
    *out = t;
    return LS_OK;
}

void train_free(trainer **tp)
{
    if (!tp || !*tp)
        return;
    trainer *t = *tp;
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].id);
        free(t->slots[i].rec[0].data);
        free(t->slots[i].rec[1].data);
    }
    free(t->slots);
    free(t);
    *tp = NULL;
}

/* ------------------------------------------------------------------ */
/* Folding events in                                                   */
/* ------------------------------------------------------------------ */

static int update_record(blob *b, const ls_event *ev, const feature_decay *d)
{
    ls_features f;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t len;
    if (b->len == 0)
        feature_init(&f);
    else if (feature_decode(&f, b->data, b->len) != LS_OK)
        return LS_EINTERNAL;
    feature_apply(&f, ev, d);
    if (feature_encode(&f, buf, sizeof buf, &len) != LS_OK)
        return LS_EINTERNAL;
    if (len > b->len) {
        uint8_t *p = realloc(b->data, len);
        if (!p)
            return LS_ENOMEM;
        b->data = p;
    }
    memcpy(b->data, buf, len);
    b->len = (uint16_t)len;
    return LS_OK;
}

/* Purchase days up to c2: same-day purchases are one transaction. */
static void note_purchase_day(customer *c, const ls_event *ev)
{
    int32_t day = (int32_t)(ev->ts_ms / MS_PER_DAY);
    c->total_value += ev->value;
    if (c->ndays == 0) {
        c->first_day = c->last_day = day;
        c->ndays = 1;
        c->first_day_value = ev->value;
    } else if (day == c->first_day) {
        c->first_day_value += ev->value;
    } else if (day < c->first_day) { /* arrived out of order */
        c->first_day = day;
        c->first_day_value = ev->value;
        c->ndays++;
    } else if (day > c->last_day) {
        c->last_day = day;
        c->ndays++;
    }
}

int train_add(trainer *t, const ls_event *ev)
{
    customer *c = find_or_add(t, &ev->customer);
    int rc = LS_OK;
    if (!c)
        return LS_ENOMEM;
    t->events++;
    if (t->first_ts == 0 || ev->ts_ms < t->first_ts)
        t->first_ts = ev->ts_ms;
    if (ev->ts_ms > t->last_ts)
        t->last_ts = ev->ts_ms;
    int64_t h = (int64_t)t->opt.horizon_days * MS_PER_DAY;
    for (int k = 0; k < 2 && rc == LS_OK; k++) {
        if (ev->ts_ms <= t->cut[k])
            rc = update_record(&c->rec[k], ev, &t->opt.decay);
        else if (ev->type == EV_PURCHASE && ev->ts_ms <= t->cut[k] + h)
            c->label[k] = 1;
    }
    if (ev->type == EV_PURCHASE && ev->ts_ms <= t->cut[1])
        note_purchase_day(c, ev);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The readiness model                                                 */
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

typedef struct {
    size_t n;
    double *x;       /* n x nfeat transformed values */
    double *y;
    uint8_t *label;
    double *recency; /* log1p(days since last seen), for the baseline */
} dataset;

static void dataset_free(dataset *d)
{
    free(d->x);
    free(d->y);
    free(d->label);
    free(d->recency);
    memset(d, 0, sizeof *d);
}

static double transformed(const ls_features *f, int cand, const feature_ctx *ctx)
{
    double v = feature_value(f, feature_lookup(candidates[cand].name), ctx);
    return candidates[cand].log1p ? log1p(v > 0 ? v : 0) : v;
}

/* Rows of every customer seen by cutoff k, with all candidate features. */
static int build_dataset(const trainer *t, int k, dataset *d)
{
    feature_ctx ctx = {t->cut[k], t->opt.decay};
    ls_features f;
    memset(d, 0, sizeof *d);
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++)
        n += t->slots[i].id && t->slots[i].rec[k].len;
    if (n == 0)
        return LS_OK;
    d->x = malloc(n * N_CANDIDATES * sizeof *d->x);
    d->y = malloc(n * sizeof *d->y);
    d->label = malloc(n);
    d->recency = malloc(n * sizeof *d->recency);
    if (!d->x || !d->y || !d->label || !d->recency) {
        dataset_free(d);
        return LS_ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++) {
        const customer *c = &t->slots[i];
        if (!c->id || !c->rec[k].len || feature_decode(&f, c->rec[k].data, c->rec[k].len) != LS_OK)
            continue;
        for (int j = 0; j < N_CANDIDATES; j++)
            d->x[d->n * N_CANDIDATES + j] = transformed(&f, j, &ctx);
        d->recency[d->n] = log1p(feature_value(&f, feature_lookup("days_since_last_seen"), &ctx));
        d->label[d->n] = c->label[k];
        d->y[d->n] = c->label[k];
        d->n++;
    }
    return LS_OK;
}

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

/* Fits model and baseline on c1, evaluates both on c2. */
static int fit_readiness(trainer *t, train_report *rep, char *err, size_t errlen)
{
    dataset tr = {0}, ev = {0};
    logreg_model m = {0}, base = {0};
    int use[N_CANDIDATES], rc;
    double *p = NULL;
    for (int j = 0; j < N_CANDIDATES; j++)
        use[j] = 1;
    if ((rc = build_dataset(t, 0, &tr)) || (rc = build_dataset(t, 1, &ev)))
        goto done;
    if (tr.n == 0 || ev.n == 0) {
        rc = ls_fail(err, errlen, LS_EINVAL, "no customer was seen before the training cutoff: move --cutoff later or give more history");
        goto done;
    }
    rc = fit_constrained(&tr, t->opt.lambda, use, &m, &rep->dropped);
    if (rc == LS_OK)
        rc = logreg_fit(tr.recency, tr.y, NULL, tr.n, 1, t->opt.lambda, &base);
    if (rc) {
        rc = ls_fail(err, errlen, LS_EINVAL, "the readiness model cannot be fitted (%s): the training window needs both buyers "
                 "and non-buyers", ls_strerror(rc));
        goto done;
    }
    keep_terms(rep, &m, use);
    if (!(p = predict_all(&m, &tr, use, 0)))
        goto nomem;
    evaluate(p, tr.label, tr.n, &rep->train);
    free(p);
    if (!(p = predict_all(&m, &ev, use, 0)))
        goto nomem;
    evaluate(p, ev.label, ev.n, &rep->model);
    free(p);
    if (!(p = predict_all(&base, &ev, use, 1)))
        goto nomem;
    evaluate(p, ev.label, ev.n, &rep->baseline);
    goto done;
nomem:
    rc = LS_ENOMEM;
done:
    free(p);
    logreg_destroy(&m);
    logreg_destroy(&base);
    dataset_free(&tr);
    dataset_free(&ev);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The customer base                                                   */
/* ------------------------------------------------------------------ */

static int fit_customer_base(trainer *t, train_report *rep)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < t->cap; i++)
        n += t->slots[i].id && t->slots[i].ndays > 0;
    rep->bgnbd = t->opt.bgnbd_start;
    rep->gg = t->opt.gg_start;
    if (n == 0)
        return LS_OK;
    double *x = malloc(n * sizeof *x), *tx = malloc(n * sizeof *tx), *T = malloc(n * sizeof *T);
    double *zbar = malloc(n * sizeof *zbar);
    int rc = LS_ENOMEM;
    if (!x || !tx || !T || !zbar)
        goto done;
    double unit = t->opt.time_unit_days;
    double end_day = (double)t->cut[1] / (double)MS_PER_DAY;
    for (size_t i = 0; i < t->cap; i++) {
        const customer *c = &t->slots[i];
        if (!c->id || c->ndays == 0)
            continue;
        x[k] = c->ndays - 1;
        tx[k] = (c->last_day - c->first_day) / unit;
        T[k] = (end_day - c->first_day) / unit;
        if (T[k] < tx[k])
            T[k] = tx[k];
        zbar[k] = x[k] > 0 ? (c->total_value - c->first_day_value) / x[k] : 0;
        if (x[k] > 0 && zbar[k] <= 0)
            zbar[k] = c->total_value / (x[k] + 1);
        k++;
    }
    rep->bgnbd_customers = k;
    rep->bgnbd_ok = clv_bgnbd_fit(x, tx, T, k, &rep->bgnbd, &rep->bgnbd_loglik) == LS_OK;
    for (size_t i = 0; i < k; i++)
        rep->gg_customers += x[i] > 0;
    rep->gg_ok = rep->gg_customers > 0 && clv_gamma_gamma_fit(x, zbar, k, &rep->gg, &rep->gg_loglik) == LS_OK &&
                 rep->gg.q > 1;
    if (!rep->bgnbd_ok)
        rep->bgnbd = t->opt.bgnbd_start;
    if (!rep->gg_ok)
        rep->gg = t->opt.gg_start;
    rc = LS_OK;
done:
    free(x);
    free(tx);
    free(T);
    free(zbar);
    return rc;
}

int train_fit(trainer *t, train_report *rep, char *err, size_t errlen)
{
    int64_t t0 = timefmt_mono_ns();
    memset(rep, 0, sizeof *rep);
    rep->events = t->events;
    rep->customers = t->used;
    rep->first_ts_ms = t->first_ts;
    rep->last_ts_ms = t->last_ts;
    rep->train_cutoff_ms = t->cut[0];
    rep->eval_cutoff_ms = t->cut[1];
    int rc = fit_customer_base(t, rep);
    if (rc == LS_OK && !t->opt.clv_only)
        rc = fit_readiness(t, rep, err, errlen);
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
        "mean) / scale), features as of the training cutoff, label = a purchase within horizon_days after it."));
    json_array_append_new(notes, json_string(
        "Sign constraints: engagement terms (views, searches, e-mail, sessions, carts, checkouts) may not be "
        "negative; refund, support-ticket and bad-review terms may not be positive; a violating feature is dropped "
        "and the model refitted."));
    snprintf(line, sizeof line, "Hold-out (later cutoff): AUC %.3f vs %.3f for a recency baseline; lift in the top "
             "10%% %.2f vs %.2f.", rep->model.auc, rep->baseline.auc, rep->model.lift_top10, rep->baseline.lift_top10);
    json_array_append_new(notes, json_string(line));
    json_array_append_new(notes, json_string(
        "clv: BG/NBD and Gamma-Gamma fitted by maximum likelihood on the purchase history up to the evaluation "
        "cutoff (purchases on one day = one transaction); journey, segments and tiers come from the base model."));
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
    json_object_set_new(m, "data", json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:f}", "events",
        (json_int_t)rep->events, "customers", (json_int_t)rep->customers, "first_event", first, "last_event", last,
        "train_cutoff", c1, "eval_cutoff", c2, "lambda", opt->lambda));
    return m;
}
