/* train.c -- the trainer: one pass over the customer histories of a store
 * snapshot into rows at every cutoff (features as of the cutoff by
 * canonical replay, labels from the orders in the horizon after it, the
 * buyers' repeat-purchase summaries); then the repeat-purchase fits per
 * cutoff, the constrained logistic fit on the pooled fit rows with lambda
 * chosen on the calibration rows, Platt scaling, the hold-out evaluation
 * against recency and RFM baselines (and, optionally, an existing model),
 * the recommendation hit rate and Gamma-Gamma (see train.h). */
#include "train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assess.h"
#include "history.h"
#include "error_internal.h"
#include "logreg.h"
#include "median.h"
#include "timefmt.h"

#define MS_PER_DAY 86400000LL
/* customers between two progress calls */
#define PROGRESS_EVERY 4096
#define MAX_CUTOFFS (TRAIN_FIT_CUTOFFS + 2)
/* BG/NBD is degenerate (the NBD limit) beyond these */
#define DEGENERATE_B 1e3
#define DEGENERATE_DROP 1e-3
/* the short-history model's lambda when none is given */
#define DEFAULT_LAMBDA 1.0
#define BASELINE_LAMBDA 1.0

static const double lambda_grid[] = {0.1, 1, 10, 100, 1000, 10000};
#define N_LAMBDAS ((int)(sizeof lambda_grid / sizeof lambda_grid[0]))

/* ------------------------------------------------------------------ */
/* Candidate features                                                  */
/* ------------------------------------------------------------------ */

/* Candidate features: name, log1p transform, sign constraint (+1: the
 * coefficient may not be negative, -1: not positive, 0: free).
 *   +1  intent and engagement (decayed counts, the open cart and checkout
 *       fading from their last add or checkout,
 *       repeat_p_buy): they only fall with silence;
 *   -1  silence (days since the last engagement -- any event but a
 *       complaint --, purchase, cart or checkout, recency / mean gap):
 *       they only grow with silence, and a complaint does not reset the
 *       first (days since the last event would: a refund would then read
 *       as a visit and raise the score);
 *   -1  disappointment (refund rate and count, tickets, bad reviews): as
 *       lifetime figures, which silence does not change;
 *   +1  repeat buying, through the repeat-purchase model's P(an order) and
 *       expected orders (repeat_p_buy, repeat_expected): a customer who came
 *       back more often is never less ready than one who bought once, all
 *       else equal, and unlike lifetime counts these lapse with silence;
 *   +1  lifetime sessions too: a returning visitor is never less ready
 *       than a new one doing the same today;
 *   -1  days since the last engagement and the last purchase once more as
 *       log1p(days / horizon_days): flat within a horizon, then falling
 *       like log(days), the shape of the buy rate after an order in both
 *       the synthetic shop and CDNOW; the fit weighs the two shapes.
 *       Not candidates: the discount share, a ratio, so either sign of
 *       it lets an order lower the score (with a negative coefficient a
 *       discounted second order did); lifetime
 *       orders, purchase days and spend, which never lapse: with them a
 *       buyer of ten orders silent for a year outscored a visitor in
 *       checkout today, and a free spend term could undo the sign of the
 *       orders (a second order lowered the score) -- but in an order feed
 *       (orders_only_rows) purchase days and net spend (spend less refunds,
 *       so a refund lowers it) are, with sign +1; lines and units per
 *       order, which measure how a shop sends an order (one event with the
 *       total, or a line per item) more than the customer: the training
 *       data has one line per order, so they learnt "has bought", and an
 *       order sent as five lines read as hot; the average order value and
 *       the mean gap between orders, which never lapse either and are
 *       unbounded: an order of 1,000 a year ago (+1.8 on the log-odds) or
 *       a buyer with long gaps outscored a visitor in checkout today, and
 *       moving an order later could lower the score (the gap shrank); the
 *       open cart and checkout as such (cart_open, checkout_open,
 *       open_cart_value), which stay on until the next order however old:
 *       a checkout abandoned a year ago counted as one of today, and an
 *       order closing it lowered the score.
 * Tenure (days since first seen or first purchase) is no candidate: it
 * grows with silence, so it could only enter with a negative sign, and a
 * customer of many years would then rank below a newcomer for having been
 * around (a persona test holds the default to the opposite).
 * So with silence alone every term moves the score down or not at all:
 * a buyer's score never rises by waiting, and a refund never raises it.
 * `level` marks a model-level feature (model.h), filled in after the
 * repeat-purchase fit of the row's cutoff. */
static const struct {
    const char *name;
    int log1p;
    int sign;
    int level;
    int per_horizon; /* log1p(x / horizon_days): flat within a horizon */
    int orders_only; /* a candidate only for data without storefront visits */
} candidates[] = {
    {"page_view_recent", 1, +1, 0, 0, 0},      {"page_view_decayed", 1, +1, 0, 0, 0},
    {"product_view_recent", 1, +1, 0, 0, 0},   {"product_view_decayed", 1, +1, 0, 0, 0},
    {"search_recent", 1, +1, 0, 0, 0},         {"search_decayed", 1, +1, 0, 0, 0},
    {"add_to_cart_recent", 1, +1, 0, 0, 0},    {"add_to_cart_decayed", 1, +1, 0, 0, 0},
    {"checkout_recent", 1, +1, 0, 0, 0},       {"checkout_decayed", 1, +1, 0, 0, 0},
    {"purchase_recent", 1, +1, 0, 0, 0},       {"purchase_decayed", 1, +1, 0, 0, 0},
    {"email_engaged_decayed", 1, +1, 0, 0, 0}, {"email_click_recent", 1, +1, 0, 0, 0},
    {"email_click_decayed", 1, +1, 0, 0, 0},   {"sms_click_decayed", 1, +1, 0, 0, 0},
    {"review_decayed", 1, +1, 0, 0, 0},        {"share_decayed", 1, +1, 0, 0, 0},
    {"sessions_recent", 1, +1, 0, 0, 0},       {"sessions_decayed", 1, +1, 0, 0, 0},
    {"cart_open_recent", 0, +1, 0, 0, 0},      {"checkout_open_recent", 0, +1, 0, 0, 0},
    {"open_cart_value_recent", 1, +1, 0, 0, 0},
    {"days_since_last_engaged", 1, -1, 0, 0, 0}, {"days_since_last_purchase", 1, -1, 0, 0, 0},
    {"days_since_last_cart", 1, -1, 0, 0, 0},  {"days_since_last_checkout", 1, -1, 0, 0, 0},
    {"purchase_recency_ratio", 1, -1, 0, 0, 0},
    {"days_since_last_engaged", 1, -1, 0, 1, 0}, {"days_since_last_purchase", 1, -1, 0, 1, 0},
    {"sessions", 1, +1, 0, 0, 0},
    {"purchase_days", 1, +1, 0, 0, 1},   {"net_spend", 1, +1, 0, 0, 1},
    {"refund_rate", 0, -1, 0, 0, 0},           {"refund_count", 1, -1, 0, 0, 0},
    {"support_ticket_count", 1, -1, 0, 0, 0},  {"bad_reviews", 1, -1, 0, 0, 0},
    {"repeat_p_buy", 0, +1, MODEL_FEATURE_REPEAT_P_BUY, 0, 0},
    {"repeat_expected", 1, +1, MODEL_FEATURE_REPEAT_EXPECTED, 0, 0},
};
#define N_CANDIDATES ((int)(sizeof candidates / sizeof candidates[0]))
#define N_RFM 3

static double transform(int cand, double v, double horizon_days)
{
    double y = v > 0 ? v : 0;
    if (candidates[cand].per_horizon)
        return log1p(y / horizon_days);
    return candidates[cand].log1p ? log1p(y) : v;
}

static double named(const ls_features *f, const char *name, const feature_ctx *ctx)
{
    return feature_value(f, feature_lookup(name), ctx);
}

/* ------------------------------------------------------------------ */
/* Rows, one table per cutoff                                          */
/* ------------------------------------------------------------------ */

/* How the model file will score a row's customer (orders_by_repeat). */
enum { ROW_BY_LOGISTIC = 0, ROW_ORDERS_ONLY = 1, ROW_ORDERS_FIRST = 2 };

typedef struct {
    size_t n, cap;
    double *x;        /* n x N_CANDIDATES transformed values */
    double *y;
    uint8_t *label;
    uint8_t *buyer;   /* has a repeat-purchase summary */
    uint8_t *orders_only; /* ROW_ORDERS_ONLY: a buyer without a storefront visit (feature_has_visit);
                             ROW_ORDERS_FIRST: a buyer whose first order came before any visit */
    double *sx, *stx, *sT, *zbar; /* the summary, time units */
    double *recency;  /* log1p(days since last seen) */
    double *rfm;      /* n x N_RFM: log1p days since last purchase, orders, spend */
    double *compare;  /* the compared model's scores (hold-out only), or NULL */
} dataset;

static void dataset_free(dataset *d)
{
    free(d->x);
    free(d->y);
    free(d->label);
    free(d->buyer);
    free(d->orders_only);
    free(d->sx);
    free(d->stx);
    free(d->sT);
    free(d->zbar);
    free(d->recency);
    free(d->rfm);
    free(d->compare);
    memset(d, 0, sizeof *d);
}

static int grow(void **p, size_t bytes)
{
    void *q = realloc(*p, bytes);
    if (!q)
        return LS_ENOMEM;
    *p = q;
    return LS_OK;
}

/* Makes room for one more row.  0 or LS_ENOMEM. */
static int dataset_reserve(dataset *d, int features, int with_compare)
{
    if (d->n < d->cap)
        return LS_OK;
    size_t cap = d->cap ? d->cap * 2 : 4096;
    int rc = LS_OK;
    double **cols[] = {&d->y, &d->sx, &d->stx, &d->sT, &d->zbar, &d->recency};
    for (size_t i = 0; rc == LS_OK && i < sizeof cols / sizeof cols[0]; i++)
        rc = grow((void **)cols[i], cap * sizeof(double));
    if (rc == LS_OK)
        rc = grow((void **)&d->label, cap);
    if (rc == LS_OK)
        rc = grow((void **)&d->buyer, cap);
    if (rc == LS_OK)
        rc = grow((void **)&d->orders_only, cap);
    if (rc == LS_OK && features)
        rc = grow((void **)&d->x, cap * N_CANDIDATES * sizeof(double));
    if (rc == LS_OK && features)
        rc = grow((void **)&d->rfm, cap * N_RFM * sizeof(double));
    if (rc == LS_OK && with_compare)
        rc = grow((void **)&d->compare, cap * sizeof(double));
    if (rc == LS_OK)
        d->cap = cap;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Segments of the base model's catalogue, for the recommendation test  */
/* ------------------------------------------------------------------ */

typedef struct {
    const segments_catalogue *cat;
    int nseg;
    const char *seg[SEGMENTS_MAX_RULES];  /* distinct catalogue segments */
    int rule_seg[SEGMENTS_MAX_RULES];     /* rule -> index in seg[] */
    uint64_t bought[SEGMENTS_MAX_RULES];  /* purchase lines before c, per segment */
    int *target;                          /* per hold-out row with a target: its segment */
    size_t ntarget, target_cap;
    size_t hits;
} rec_state;

static void rec_init(rec_state *s, const model *base)
{
    memset(s, 0, sizeof *s);
    if (!base)
        return;
    s->cat = model_segments(base);
    for (int r = 0; r < s->cat->nrules; r++) {
        int i = 0;
        while (i < s->nseg && strcmp(s->seg[i], s->cat->rules[r].segment) != 0)
            i++;
        if (i == s->nseg)
            s->seg[s->nseg++] = s->cat->rules[r].segment;
        s->rule_seg[r] = i;
    }
}

/* The segment of a category (segments.c's rule: the longest prefix that
 * matches the whole category or a leading part ending at a '/'), or -1. */
static int category_segment(const rec_state *s, ls_str name)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; s->cat && i < s->cat->nrules; i++) {
        size_t n = s->cat->rules[i].prefix_len;
        const char *p = s->cat->rules[i].prefix;
        if (n > name.len || memcmp(p, name.ptr, n) != 0)
            continue;
        if (n < name.len && name.ptr[n] != '/' && p[n - 1] != '/')
            continue;
        if (n > best_len) {
            best = i;
            best_len = n;
        }
    }
    return best < 0 ? -1 : s->rule_seg[best];
}

/* ------------------------------------------------------------------ */
/* The pass over the histories                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    const train_options *opt;
    int ncut, nfit, ical, ieval;   /* cut[0..nfit) fit, cut[ical], cut[ieval] */
    int64_t cut[MAX_CUTOFFS];
    int64_t horizon_ms;
    int64_t end_ms;                /* c + horizon: nothing later is read */
    model_clv clv;                 /* the time unit assess_summary counts in */
    dataset rows[MAX_CUTOFFS];
    rec_state rec;
    uint64_t events, customers, scanned;
    int64_t first_ts, last_ts;
    size_t visited[MAX_CUTOFFS];   /* rows whose customer visited the storefront */
    int orders_only;               /* the rows fitted on are an order feed (orders_only_rows) */
    double *cart_value;            /* the fit rows' open carts with a value: their values ... */
    size_t ncart_value, cart_value_cap;
    size_t unpriced_carts;         /* ... and how many open carts had none */
} collector;

static void collector_init(collector *c, const train_options *opt)
{
    memset(c, 0, sizeof *c);
    c->opt = opt;
    c->horizon_ms = (int64_t)opt->horizon_days * MS_PER_DAY;
    c->nfit = opt->clv_only ? 0 : TRAIN_FIT_CUTOFFS;
    for (int i = 0; i < c->nfit; i++) /* oldest first */
        c->cut[i] = opt->cutoff_ms - 2 * c->horizon_ms - (int64_t)(c->nfit - 1 - i) * (c->horizon_ms / 2);
    c->ical = c->nfit;
    c->ieval = c->nfit + 1;
    c->cut[c->ical] = opt->cutoff_ms - c->horizon_ms;
    c->cut[c->ieval] = opt->cutoff_ms;
    c->ncut = c->ieval + 1;
    c->end_ms = opt->cutoff_ms + c->horizon_ms;
    c->clv.time_unit_days = opt->time_unit_days;
    c->clv.horizon_days = opt->horizon_days;
    rec_init(&c->rec, opt->clv_only ? NULL : opt->base);
}

static void collector_free(collector *c)
{
    for (int k = 0; k < MAX_CUTOFFS; k++)
        dataset_free(&c->rows[k]);
    free(c->rec.target);
    free(c->cart_value);
}

/* 1 when the history holds an order (a purchase event) in (from, to]. */
static int ordered_in(const history *h, int64_t from, int64_t to)
{
    for (size_t i = history_upto(h, from); i < h->n && h->ev[i].ts_ms <= to; i++)
        if (h->ev[i].type == EV_PURCHASE)
            return 1;
    return 0;
}

/* The features as of every cutoff.  Each continues the previous one's
 * replay (the same operations in the same order, so the same bits) unless
 * the `before` aggregate starts to count between the two. */
static int replay_all(const collector *c, const history *h, ls_features *f)
{
    const feature_decay *d = &c->opt->decay;
    int rc = history_replay(h, c->cut[0], d, &f[0]);
    for (int k = 1; rc == LS_OK && k < c->ncut; k++) {
        if (h->has_before && h->before.first_seen_ms > c->cut[k - 1] && h->before.first_seen_ms <= c->cut[k]) {
            rc = history_replay(h, c->cut[k], d, &f[k]);
            continue;
        }
        f[k] = f[k - 1];
        rc = history_apply_range(h, history_upto(h, c->cut[k - 1]), history_upto(h, c->cut[k]), d, &f[k]);
    }
    return rc;
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

static void fill_features(dataset *d, const ls_features *f, const feature_ctx *ctx, double horizon_days)
{
    double *x = &d->x[d->n * N_CANDIDATES];
    for (int j = 0; j < N_CANDIDATES; j++)
        x[j] = candidates[j].level ? 0.0 : transform(j, named(f, candidates[j].name, ctx), horizon_days);
    double *r = &d->rfm[d->n * N_RFM];
    r[0] = log1p(named(f, "days_since_last_purchase", ctx));
    r[1] = log1p(named(f, "purchase_count", ctx));
    r[2] = log1p(fmax(named(f, "spend", ctx), 0));
}

/* Counts a fit row's open cart: its value, or one more cart without a
 * price (cart_open but worth 0). */
static int note_cart(collector *c, const ls_features *f)
{
    if (!feature_cart_is_open(f))
        return LS_OK;
    double v = feature_open_cart(f);
    if (v <= 0) {
        c->unpriced_carts++;
        return LS_OK;
    }
    if (c->ncart_value == c->cart_value_cap) {
        size_t cap = c->cart_value_cap ? c->cart_value_cap * 2 : 1024;
        if (grow((void **)&c->cart_value, cap * sizeof *c->cart_value))
            return LS_ENOMEM;
        c->cart_value_cap = cap;
    }
    c->cart_value[c->ncart_value++] = v;
    return LS_OK;
}

/* One row at cutoff k: features, label, summary, baselines' inputs and,
 * on the hold-out, the compared model's score. */
static int add_row(collector *c, int k, const ls_features *f, const history *h)
{
    feature_ctx ctx = {c->cut[k], c->opt->decay};
    const model *cmp = k == c->ieval && !c->opt->clv_only ? c->opt->compare : NULL;
    dataset *d = &c->rows[k];
    int features = !c->opt->clv_only;
    int rc = dataset_reserve(d, features, cmp != NULL);
    if (rc)
        return rc;
    size_t i = d->n;
    d->buyer[i] = (uint8_t)assess_summary(&c->clv, f, c->cut[k], &d->sx[i], &d->stx[i], &d->sT[i]);
    d->zbar[i] = repeat_mean(f, d->sx[i]);
    d->label[i] = (uint8_t)ordered_in(h, c->cut[k], c->cut[k] + c->horizon_ms);
    d->y[i] = d->label[i];
    d->recency[i] = log1p(named(f, "days_since_last_seen", &ctx));
    c->visited[k] += (size_t)feature_has_visit(f);
    d->orders_only[i] = !d->buyer[i]                       ? ROW_BY_LOGISTIC
                        : !feature_has_visit(f)            ? ROW_ORDERS_ONLY
                        : feature_orders_before_visits(f)  ? ROW_ORDERS_FIRST
                                                           : ROW_BY_LOGISTIC;
    if (features)
        fill_features(d, f, &ctx, c->opt->horizon_days);
    if (features && k < c->nfit && (rc = note_cart(c, f)))
        return rc;
    if (cmp) {
        model_result res;
        model_score(cmp, f, &ctx, 0, &res);
        d->compare[i] = res.score;
    }
    d->n++;
    return LS_OK;
}

/* The recommendation test for one hold-out customer: the segment of its
 * next order in the horizon (if it maps to one), and whether the base
 * model's top 3 as of the cutoff hold it. */
static int add_recommendation(collector *c, const ls_features *f, const history *h)
{
    rec_state *s = &c->rec;
    int64_t cut = c->cut[c->ieval];
    int target = -1;
    for (size_t i = history_upto(h, cut); i < h->n && h->ev[i].ts_ms <= cut + c->horizon_ms && target < 0; i++)
        if (h->ev[i].type == EV_PURCHASE && h->ev[i].category)
            target = category_segment(s, history_string(h, h->ev[i].category));
    if (target < 0)
        return LS_OK;
    if (s->ntarget == s->target_cap) {
        size_t cap = s->target_cap ? s->target_cap * 2 : 4096;
        if (grow((void **)&s->target, cap * sizeof *s->target))
            return LS_ENOMEM;
        s->target_cap = cap;
    }
    s->target[s->ntarget++] = target;
    feature_ctx ctx = {cut, c->opt->decay};
    assess_result a;
    assess_customer_ex(c->opt->base, f, &ctx, 0, TRAIN_TOP_SEGMENTS, ASSESS_NO_REASONS, &a); /* names only */
    for (int i = 0; i < a.nsegments; i++)
        if (strcmp(a.segments[i].segment, s->seg[target]) == 0) {
            s->hits++;
            break;
        }
    return LS_OK;
}

/* Purchase lines before the hold-out cutoff, per segment. */
static void count_bought(collector *c, const history *h)
{
    size_t n = history_upto(h, c->cut[c->ieval]);
    for (size_t i = 0; i < n; i++)
        if (h->ev[i].type == EV_PURCHASE && h->ev[i].category) {
            int s = category_segment(&c->rec, history_string(h, h->ev[i].category));
            if (s >= 0)
                c->rec.bought[s]++;
        }
}

static int visit(void *arg, const char *id, size_t len, const ls_features *now, const history *h)
{
    collector *c = arg;
    ls_features f[MAX_CUTOFFS];
    int rc;
    (void)id;
    (void)len;
    (void)now;
    if (c->opt->progress && ++c->scanned % PROGRESS_EVERY == 0 && c->opt->progress(c->opt->progress_arg, c->scanned))
        return LS_EUNAVAIL;
    note_data(c, h);
    if ((rc = replay_all(c, h, f)))
        return rc;
    for (int k = c->opt->clv_only ? c->ieval : 0; k < c->ncut; k++)
        if (!feature_empty(&f[k]) && (rc = add_row(c, k, &f[k], h)))
            return rc;
    if (c->rec.cat) {
        count_bought(c, h);
        if (!feature_empty(&f[c->ieval]) && (rc = add_recommendation(c, &f[c->ieval], h)))
            return rc;
    }
    return LS_OK;
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

/* Asks the caller's progress hook whether to go on: LS_EUNAVAIL when it
 * asks to stop (between the fits, so a stop is honoured within one fit,
 * not at the end of the run), else LS_OK. */
static int keep_going(const collector *c)
{
    const train_options *o = c->opt;
    return o->progress && o->progress(o->progress_arg, c->scanned) ? LS_EUNAVAIL : LS_OK;
}

/* Tells the caller's stage hook "<what> <cutoff>"; then keep_going. */
static int stage(const collector *c, const char *what, int64_t at_ms)
{
    char when[40], line[200];
    if (c->opt->stage) {
        timefmt_format_iso(at_ms, when, sizeof when);
        snprintf(line, sizeof line, "%s %s", what, when);
        c->opt->stage(c->opt->progress_arg, line);
    }
    return keep_going(c);
}

/* ------------------------------------------------------------------ */
/* The repeat-purchase model, per cutoff                               */
/* ------------------------------------------------------------------ */

/* The buyers' summaries of a table, packed. */
static int pack_buyers(const dataset *d, double **x, double **tx, double **T, size_t *n)
{
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++)
        m += d->buyer[i];
    *x = malloc((m ? m : 1) * sizeof **x);
    *tx = malloc((m ? m : 1) * sizeof **tx);
    *T = malloc((m ? m : 1) * sizeof **T);
    if (!*x || !*tx || !*T)
        return LS_ENOMEM;
    *n = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->buyer[i]) {
            (*x)[*n] = d->sx[i];
            (*tx)[*n] = d->stx[i];
            (*T)[*n] = d->sT[i];
            (*n)++;
        }
    return LS_OK;
}

/* BG/NBD; the NBD when BG/NBD degenerates or fails; the start values,
 * with the reason, when neither fits.  nbd_only: straight to the NBD (the
 * earlier cutoffs of a shop whose hold-out fit is the NBD, so that the
 * model-level features mean the same at every cutoff). */
static int fit_repeat(const dataset *d, const train_options *opt, int nbd_only, train_repeat_fit *out)
{
    const clv_repeat *s = &opt->repeat_start;
    double *x = NULL, *tx = NULL, *T = NULL;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    out->model = *s;
    out->model.table = NULL; /* the base model's: the report may outlive it */
    int rc = pack_buyers(d, &x, &tx, &T, &n);
    out->customers = n;
    if (rc || n == 0) {
        snprintf(out->reason, sizeof out->reason, "no buyer to fit: the base model's parameters were kept");
        goto done;
    }
    clv_bgnbd bg = s->kind == CLV_MODEL_BGNBD ? s->bgnbd : (clv_bgnbd){s->nbd.r, s->nbd.alpha, 1, 1};
    clv_nbd nb = s->kind == CLV_MODEL_NBD ? s->nbd : (clv_nbd){s->bgnbd.r, s->bgnbd.alpha};
    out->bgnbd_converged = !nbd_only && clv_bgnbd_fit(x, tx, T, n, &bg, &out->bgnbd_loglik) == LS_OK;
    out->bgnbd_attempt = bg;
    out->nbd_converged = clv_nbd_fit_weighted(x, tx, T, NULL, n, &nb, &out->nbd_loglik) == LS_OK;
    double drop = bg.a / (bg.a + bg.b);
    if (out->bgnbd_converged && bg.b <= DEGENERATE_B && drop >= DEGENERATE_DROP) {
        out->model = (clv_repeat){.kind = CLV_MODEL_BGNBD, .bgnbd = bg};
        out->fitted = 1;
        out->loglik = out->bgnbd_loglik;
        goto done;
    }
    if (nbd_only)
        snprintf(out->reason, sizeof out->reason, "the NBD, as at the hold-out cutoff");
    else if (out->bgnbd_converged)
        snprintf(out->reason, sizeof out->reason, "BG/NBD degenerates (b %.4g, dropout a/(a+b) %.2g: no dropout "
                 "in these data)", bg.b, drop);
    else
        snprintf(out->reason, sizeof out->reason, "BG/NBD did not converge (the dropout parameters ran off)");
    if (out->nbd_converged) {
        out->model = (clv_repeat){.kind = CLV_MODEL_NBD, .nbd = nb};
        out->fitted = 1;
        out->loglik = out->nbd_loglik;
        strncat(out->reason, ": the NBD (P(alive) = 1) was fitted instead", sizeof out->reason - strlen(out->reason) - 1);
    } else {
        strncat(out->reason, "; the NBD did not converge either: THE BASE MODEL'S PARAMETERS WERE KEPT",
                sizeof out->reason - strlen(out->reason) - 1);
    }
done:
    free(x);
    free(tx);
    free(T);
    return rc;
}

/* Fills the model-level columns of table d from its cutoff's fit. */
static void fill_repeat_columns(const collector *c, dataset *d, const clv_repeat *m)
{
    model_clv clv = c->clv;
    int jp = -1, je = -1;
    clv.repeat = *m;
    for (int j = 0; j < N_CANDIDATES; j++) {
        if (candidates[j].level == MODEL_FEATURE_REPEAT_P_BUY)
            jp = j;
        if (candidates[j].level == MODEL_FEATURE_REPEAT_EXPECTED)
            je = j;
    }
    for (size_t i = 0; i < d->n; i++) {
        double p = 0, e = 0;
        if (d->buyer[i])
            assess_repeat_summary(&clv, d->sx[i], d->stx[i], d->sT[i], c->opt->horizon_days, &p, &e);
        d->x[i * N_CANDIDATES + jp] = transform(jp, p, c->opt->horizon_days);
        d->x[i * N_CANDIDATES + je] = transform(je, e, c->opt->horizon_days);
    }
}

static int fit_customer_base(collector *c, train_report *rep)
{
    const dataset *d = &c->rows[c->ieval];
    int rc = stage(c, "fitting the repeat-purchase model at", c->cut[c->ieval]);
    if (rc == LS_OK)
        rc = fit_repeat(d, c->opt, 0, &rep->repeat);
    if (rc)
        return rc;
    rep->gg = c->opt->gg_start;
    double *x = malloc((d->n ? d->n : 1) * sizeof *x), *z = malloc((d->n ? d->n : 1) * sizeof *z);
    size_t n = 0;
    if (!x || !z) {
        rc = LS_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < d->n; i++)
        if (d->buyer[i]) {
            x[n] = d->sx[i];
            z[n] = d->zbar[i];
            rep->gg_customers += x[n] > 0;
            n++;
        }
    rep->gg_ok = rep->gg_customers > 0 && clv_gamma_gamma_fit(x, z, n, &rep->gg, &rep->gg_loglik) == LS_OK &&
                 rep->gg.q > 1;
    if (!rep->gg_ok)
        rep->gg = c->opt->gg_start;
done:
    free(x);
    free(z);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Fitting and evaluating                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    double *x, *y;
    size_t n;
    int d;
} matrix;

static void matrix_free(matrix *m)
{
    free(m->x);
    free(m->y);
    memset(m, 0, sizeof *m);
}

/* Which columns: the candidates, the recency baseline or the RFM one. */
enum { COLS_MODEL, COLS_RECENCY, COLS_RFM };

static int ncols(int which)
{
    return which == COLS_MODEL ? N_CANDIDATES : which == COLS_RECENCY ? 1 : N_RFM;
}

static const double *row_of(const dataset *d, size_t i, int which)
{
    return which == COLS_MODEL ? &d->x[i * N_CANDIDATES] : which == COLS_RECENCY ? &d->recency[i] : &d->rfm[i * N_RFM];
}

/* Whether tables [from, to) are an order feed: under 1 % of their rows'
 * customers visited the storefront (a stray test event does not make a
 * shop of orders a shop of visitors). */
static int orders_only_rows(const collector *c, int from, int to)
{
    size_t rows = 0, visited = 0;
    for (int k = from; k < to; k++) {
        rows += c->rows[k].n;
        visited += c->visited[k];
    }
    return rows > 0 && visited * 100 < rows;
}

/* Stacks tables [from, to) into one matrix. */
static int stack(const collector *c, int from, int to, int which, matrix *m)
{
    memset(m, 0, sizeof *m);
    m->d = ncols(which);
    for (int k = from; k < to; k++)
        m->n += c->rows[k].n;
    m->x = malloc((m->n ? m->n : 1) * (size_t)m->d * sizeof *m->x);
    m->y = malloc((m->n ? m->n : 1) * sizeof *m->y);
    if (!m->x || !m->y)
        return LS_ENOMEM;
    size_t o = 0;
    for (int k = from; k < to; k++)
        for (size_t i = 0; i < c->rows[k].n; i++, o++) {
            double *x = &m->x[o * (size_t)m->d];
            memcpy(x, row_of(&c->rows[k], i, which), (size_t)m->d * sizeof *m->x);
            for (int j = 0; which == COLS_MODEL && !c->orders_only && j < N_CANDIDATES; j++)
                if (candidates[j].orders_only)
                    x[j] = 0; /* a constant column: its coefficient is 0, not written */
            m->y[o] = c->rows[k].y[i];
        }
    return LS_OK;
}

static int both_classes(const matrix *m)
{
    size_t pos = 0;
    for (size_t i = 0; i < m->n; i++)
        pos += m->y[i] > 0.5;
    return pos > 0 && pos < m->n;
}

/* A fitted scorer: the logistic model and its Platt calibration, and
 * whether it scores a buyer known from orders alone by the
 * repeat-purchase model (orders_only_p) as the model file will. */
typedef struct {
    logreg_model lr;
    int which;
    double a, b;
    int orders_by_repeat;
    uint8_t complaint[N_CANDIDATES]; /* with orders_by_repeat: the columns of complaint terms */
} scorer;

static double sigmoid(double t)
{
    return t >= 0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
}

/* The score of a buyer known from orders alone, as model.c gives it
 * ("orders_only_customers": "repeat_purchase"): the row's repeat_p_buy on
 * the log-odds scale, moved by the complaint terms counted from 0 (their
 * transforms are 0 at 0). */
static double orders_only_p(const scorer *s, const double *row)
{
    double p = 0, logit = 0;
    for (int j = 0; j < N_CANDIDATES; j++)
        if (candidates[j].level == MODEL_FEATURE_REPEAT_P_BUY)
            p = row[j];
    p = fmin(fmax(p, MODEL_ORDERS_P_MIN), 1.0 - MODEL_ORDERS_P_MIN);
    logit = log(p / (1.0 - p));
    for (int j = 0; j < N_CANDIDATES; j++)
        if (s->complaint[j])
            logit += s->a * s->lr.coef[j] / s->lr.scale[j] * row[j];
    return sigmoid(logit);
}

/* Lets scorer s score buyers known from orders alone by orders_only_p. */
static void score_orders_by_repeat(scorer *s)
{
    s->orders_by_repeat = 1;
    for (int j = 0; j < N_CANDIDATES; j++)
        s->complaint[j] = (uint8_t)model_complaint_feature(model_feature_lookup(candidates[j].name));
}

/* Calibrated probabilities of table d. */
static double *predict(const scorer *s, const dataset *d)
{
    double *p = malloc((d->n ? d->n : 1) * sizeof *p);
    for (size_t i = 0; p && i < d->n; i++) {
        const double *row = row_of(d, i, s->which);
        int by = s->orders_by_repeat ? d->orders_only[i] : ROW_BY_LOGISTIC;
        p[i] = by == ROW_ORDERS_ONLY ? orders_only_p(s, row) : sigmoid(s->a * logreg_logit(&s->lr, row) + s->b);
        if (by == ROW_ORDERS_FIRST)
            p[i] = fmax(p[i], orders_only_p(s, row));
    }
    return p;
}

static void evaluate(const double *p, const uint8_t *label, size_t n, train_metrics *out)
{
    evalm_calib_row rows[TRAIN_DECILES];
    double sum = 0;
    memset(out, 0, sizeof *out);
    out->rows = n;
    for (size_t i = 0; i < n; i++) {
        out->positives += label[i];
        sum += p[i];
    }
    out->base_rate = n ? (double)out->positives / (double)n : 0;
    out->mean_predicted = n ? sum / (double)n : 0;
    if (evalm_auc(p, label, n, &out->auc) != LS_OK)
        out->auc = NAN; /* one class (or no row): no AUC, and the gate finds the figures unusable */
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

/* Platt scaling on table d: score = sigmoid(a * logit + b).  Keeps the
 * identity when the fit fails or a would not be positive (a must keep
 * the ranking and the signs). */
static int platt(scorer *s, const dataset *d)
{
    double *z = malloc((d->n ? d->n : 1) * sizeof *z);
    logreg_model m = {0};
    s->a = 1;
    s->b = 0;
    if (!z)
        return LS_ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        z[i] = logreg_logit(&s->lr, row_of(d, i, s->which));
    int rc = d->n ? logreg_fit(z, d->y, NULL, d->n, 1, 1e-6, &m) : LS_EINVAL;
    if (rc == LS_OK && m.coef[0] / m.scale[0] > 0) {
        s->a = m.coef[0] / m.scale[0];
        s->b = m.intercept - s->a * m.mean[0];
    }
    logreg_destroy(&m);
    free(z);
    return rc == LS_ENOMEM ? rc : LS_OK;
}

/* Fits a scorer on m (signs for the model's columns) and calibrates it
 * on table cal (NULL: identity). */
static int fit_scorer(const matrix *m, int which, double lambda, const dataset *cal, scorer *s)
{
    signed char sign[N_CANDIDATES];
    logreg_opts o = logreg_opts_default();
    o.lambda = lambda;
    if (which == COLS_MODEL) {
        for (int j = 0; j < N_CANDIDATES; j++)
            sign[j] = (signed char)candidates[j].sign;
        o.sign = sign;
    }
    memset(s, 0, sizeof *s);
    s->which = which;
    s->a = 1;
    int rc = logreg_fit_opts(m->x, m->y, NULL, m->n, m->d, &o, &s->lr);
    if (rc == LS_OK && cal)
        rc = platt(s, cal);
    return rc;
}

static int evaluate_on(const scorer *s, const dataset *d, train_metrics *out)
{
    double *p = predict(s, d);
    if (!p)
        return LS_ENOMEM;
    evaluate(p, d->label, d->n, out);
    free(p);
    return LS_OK;
}

/* (train.h) Under 1 % of the open carts without a price, or the fit saw
 * such carts as worth 0 and learnt from them. */
double train_unpriced_cart_value(double *values, size_t n, size_t unpriced, int has_term)
{
    if (!has_term || n < TRAIN_MIN_PRICED_CARTS || unpriced * 100 >= n + unpriced)
        return 0;
    return median_sort(values, n);
}

/* What the model counts an open cart of items without a price as, from
 * the fit rows' open carts (train_unpriced_cart_value). */
static double unpriced_cart_guess(collector *c, const train_report *rep)
{
    int has_term = 0;
    for (int i = 0; i < rep->nterms; i++)
        has_term |= rep->term_feature[i] == feature_lookup("open_cart_value_recent");
    return train_unpriced_cart_value(c->cart_value, c->ncart_value, c->unpriced_carts, has_term);
}

static void keep_terms(train_report *rep, const scorer *s, double horizon_days)
{
    const logreg_model *m = &s->lr;
    rep->nterms = 0;
    rep->held_at_zero = 0;
    rep->intercept = m->intercept;
    for (int j = 0; j < N_CANDIDATES; j++) {
        if (m->coef[j] == 0.0) { /* held at 0 by its sign, or a constant column: not written */
            rep->held_at_zero += candidates[j].sign != 0 && m->scale[j] != 1.0;
            continue;
        }
        int i = rep->nterms++;
        rep->term_feature[i] = model_feature_lookup(candidates[j].name);
        rep->term_log1p[i] = candidates[j].log1p;
        rep->term_per[i] = candidates[j].per_horizon ? horizon_days : 0.0;
        rep->term_mean[i] = m->mean[j];
        rep->term_scale[i] = m->scale[j];
        rep->term_coef[i] = m->coef[j];
    }
    rep->calibrated = s->a != 1.0 || s->b != 0.0;
    rep->cal_a = s->a;
    rep->cal_b = s->b;
}

/* Lambda by the calibrated log-loss on the calibration rows. */
static int choose_lambda(collector *c, const matrix *m, train_report *rep, double *best)
{
    const dataset *cal = &c->rows[c->ical];
    double best_ll = HUGE_VAL;
    *best = DEFAULT_LAMBDA;
    for (int g = 0; g < N_LAMBDAS && g < TRAIN_MAX_LAMBDAS; g++) {
        char what[80];
        scorer s;
        snprintf(what, sizeof what, "fitting the readiness model, lambda %g (%d of %d)", lambda_grid[g], g + 1,
                 N_LAMBDAS);
        if (c->opt->stage)
            c->opt->stage(c->opt->progress_arg, what);
        if (keep_going(c))
            return LS_EUNAVAIL;
        train_metrics v;
        int rc = fit_scorer(m, COLS_MODEL, lambda_grid[g], cal, &s);
        if (rc == LS_OK)
            rc = evaluate_on(&s, cal, &v);
        logreg_destroy(&s.lr);
        if (rc == LS_ENOMEM)
            return rc;
        rep->grid_lambda[rep->nlambdas] = lambda_grid[g];
        rep->grid_logloss[rep->nlambdas] = rc == LS_OK ? v.logloss : NAN;
        rep->grid_auc[rep->nlambdas] = rc == LS_OK ? v.auc : NAN;
        rep->nlambdas++;
        if (rc == LS_OK && v.logloss < best_ll) {
            best_ll = v.logloss;
            *best = lambda_grid[g];
        }
    }
    return best_ll < HUGE_VAL ? LS_OK : LS_ECONVERGE;
}

/* One baseline: fitted on the fit rows, calibrated, evaluated.  With
 * hold_p, *hold_p is a new array of its hold-out probabilities (the
 * caller frees it). */
static int fit_baseline(collector *c, int from, int to, int which, const dataset *cal, train_metrics *out,
                        double **hold_p)
{
    const dataset *ev = &c->rows[c->ieval];
    matrix m;
    scorer s;
    double *p = NULL;
    memset(&s, 0, sizeof s);
    int rc = stack(c, from, to, which, &m);
    if (rc == LS_OK)
        rc = fit_scorer(&m, which, BASELINE_LAMBDA, cal, &s);
    if (rc == LS_OK && !(p = predict(&s, ev)))
        rc = LS_ENOMEM;
    if (rc == LS_OK)
        evaluate(p, ev->label, ev->n, out);
    if (hold_p)
        *hold_p = p;
    else
        free(p);
    logreg_destroy(&s.lr);
    matrix_free(&m);
    return rc;
}

/* The standard errors of model - other on the hold-out rows (zeros for
 * those that cannot be computed). */
static train_paired paired(const double *model_p, const double *other_p, const dataset *ev)
{
    train_paired t = {0, 0};
    double diff, se;
    if (!model_p || !other_p)
        return t;
    if (evalm_auc_diff(model_p, other_p, ev->label, ev->n, &diff, &se) == LS_OK && isfinite(se))
        t.auc_se = se;
    if (evalm_logloss_diff(model_p, other_p, ev->label, ev->n, &diff, &se) == LS_OK && isfinite(se))
        t.logloss_se = se;
    return t;
}

/* LS_OK when table d (the rows at cutoff at_ms, named `set`) holds both
 * buyers and non-buyers; else LS_EINVAL with what to change in err. */
static int check_classes(const collector *c, const dataset *d, const char *set, int64_t at_ms, char *err,
                         size_t errlen)
{
    char when[40];
    size_t pos = 0;
    for (size_t i = 0; i < d->n; i++)
        pos += d->label[i];
    if (pos > 0 && pos < d->n)
        return LS_OK;
    timefmt_format_iso(at_ms, when, sizeof when);
    int h = c->opt->horizon_days;
    if (pos == 0)
        return ls_fail(err, errlen, LS_EINVAL, "the %s has no buyer: none of its %zu customers ordered in the %d "
                       "day%s after %s, so there is nothing to %s: give a longer --horizon, an earlier --cutoff or "
                       "more data", set, d->n, h, h == 1 ? "" : "s", when,
                       d == &c->rows[c->ieval] ? "judge the model by" : "calibrate on");
    return ls_fail(err, errlen, LS_EINVAL, "the %s has no non-buyer: all of its %zu customers ordered in the %d "
                   "day%s after %s: give a shorter --horizon or more data (customers who did not order)", set, d->n,
                   h, h == 1 ? "" : "s", when);
}

static int fit_readiness(collector *c, train_report *rep, char *err, size_t errlen)
{
    dataset *ev = &c->rows[c->ieval];
    const dataset *cal = &c->rows[c->ical];
    matrix m;
    scorer s;
    double *model_p = NULL, *rfm_p = NULL;
    int rc, from = 0, to = c->nfit;
    memset(&s, 0, sizeof s);
    if (ev->n == 0 || cal->n == 0)
        return ls_fail(err, errlen, LS_EINVAL, "no customer was seen before the calibration cutoff (one horizon "
                       "before the hold-out cutoff): give a shorter --horizon, move --cutoff later or give more "
                       "history");
    if ((rc = check_classes(c, ev, "hold-out", c->cut[c->ieval], err, errlen)) ||
        (rc = check_classes(c, cal, "calibration set", c->cut[c->ical], err, errlen)))
        return rc;
    c->orders_only = orders_only_rows(c, from, to);
    if ((rc = stack(c, from, to, COLS_MODEL, &m)))
        return rc;
    if (!both_classes(&m)) { /* too little history for separate fit rows */
        matrix_free(&m);
        rep->short_history = 1;
        from = c->ical;
        to = c->ical + 1;
        cal = NULL;
        c->orders_only = orders_only_rows(c, from, to);
        if ((rc = stack(c, from, to, COLS_MODEL, &m)))
            return rc;
    }
    rep->orders_only = c->orders_only;
    rep->lambda = c->opt->lambda_fixed ? c->opt->lambda : DEFAULT_LAMBDA;
    if (!c->opt->lambda_fixed && cal && (rc = choose_lambda(c, &m, rep, &rep->lambda)) != LS_OK &&
        rc != LS_ECONVERGE)
        goto done;
    if ((rc = stage(c, "fitting the readiness model and its baselines, hold-out", c->cut[c->ieval])))
        goto done;
    rc = fit_scorer(&m, COLS_MODEL, rep->lambda, cal, &s);
    if (rc == LS_OK && (rc = keep_going(c)) == LS_OK)
        rc = fit_baseline(c, from, to, COLS_RECENCY, cal, &rep->baseline, NULL);
    if (rc == LS_OK && (rc = keep_going(c)) == LS_OK)
        rc = fit_baseline(c, from, to, COLS_RFM, cal, &rep->rfm, &rfm_p);
    if (rc == LS_ENOMEM || rc == LS_EUNAVAIL)
        goto done;
    if (rc) {
        rc = ls_fail(err, errlen, LS_EINVAL, "the readiness model cannot be fitted: %s",
                     rc == LS_ECONVERGE ? "the fit did not converge" : "the training window needs both buyers and "
                     "non-buyers");
        goto done;
    }
    keep_terms(rep, &s, c->opt->horizon_days);
    rep->priced_carts = c->ncart_value;
    rep->unpriced_carts = c->unpriced_carts;
    rep->unpriced_cart_value = unpriced_cart_guess(c, rep);
    /* a storefront's model scores its customers known from orders alone by
     * the repeat-purchase model; an order feed's model is fitted on them */
    rep->orders_by_repeat = !c->orders_only;
    if (rep->orders_by_repeat)
        score_orders_by_repeat(&s);
    for (size_t i = 0; i < ev->n && s.orders_by_repeat; i++) {
        rep->orders_only_rows += ev->orders_only[i] == ROW_ORDERS_ONLY;
        rep->orders_first_rows += ev->orders_only[i] == ROW_ORDERS_FIRST;
    }
    double *p = malloc((m.n ? m.n : 1) * sizeof *p);
    if (!p) {
        rc = LS_ENOMEM;
        goto done;
    }
    uint8_t *lab = malloc(m.n ? m.n : 1);
    for (size_t i = 0; lab && i < m.n; i++) {
        p[i] = sigmoid(s.a * logreg_logit(&s.lr, &m.x[i * (size_t)m.d]) + s.b);
        lab[i] = m.y[i] > 0.5;
    }
    if (lab)
        evaluate(p, lab, m.n, &rep->train);
    free(p);
    free(lab);
    if ((rc = evaluate_on(&s, &c->rows[c->ical], &rep->calib)))
        goto done;
    if (!(model_p = predict(&s, ev))) {
        rc = LS_ENOMEM;
        goto done;
    }
    evaluate(model_p, ev->label, ev->n, &rep->model);
    rep->vs_rfm = paired(model_p, rfm_p, ev);
    if (ev->compare) {
        evaluate(ev->compare, ev->label, ev->n, &rep->compare);
        rep->vs_compare = paired(model_p, ev->compare, ev);
        rep->compared = 1;
    }
done:
    free(model_p);
    free(rfm_p);
    logreg_destroy(&s.lr);
    matrix_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The gate                                                            */
/* ------------------------------------------------------------------ */

double train_gate_tolerance(double se)
{
    double t = isfinite(se) ? TRAIN_GATE_SES * se : 0;
    return t > TRAIN_GATE_TIE ? t : TRAIN_GATE_TIE;
}

static int gate_usable(const train_metrics *m)
{
    return m->rows > 0 && isfinite(m->auc) && isfinite(m->logloss);
}

/* 1: clearly worse (behind by more than the tolerance of se), -1: clearly
 * better, 0: within the noise. */
static int clearly(double behind_by, double se)
{
    double tol = train_gate_tolerance(se);
    return behind_by > tol ? 1 : behind_by < -tol ? -1 : 0;
}

train_gate_verdict train_gate(const train_metrics *m, const train_metrics *ref, const train_paired *se)
{
    if (!gate_usable(m) || !gate_usable(ref))
        return TRAIN_GATE_UNUSABLE;
    int ll = clearly(m->logloss - ref->logloss, se->logloss_se), auc = clearly(ref->auc - m->auc, se->auc_se);
    if (ll > 0 && auc > 0)
        return TRAIN_GATE_BOTH;
    if (ll > 0 && auc == 0)
        return TRAIN_GATE_LOGLOSS;
    if (auc > 0 && ll == 0)
        return TRAIN_GATE_AUC;
    return TRAIN_GATE_HOLDS;
}

const char *train_term_transform(const train_report *rep, int i)
{
    return rep->term_per[i] > 0 ? "log1p_scaled" : rep->term_log1p[i] ? "log1p" : "none";
}

const char *train_gate_name(train_gate_verdict v)
{
    switch (v) {
    case TRAIN_GATE_HOLDS: return "holds";
    case TRAIN_GATE_LOGLOSS: return "log_loss";
    case TRAIN_GATE_AUC: return "auc";
    case TRAIN_GATE_BOTH: return "log_loss_and_auc";
    default: return "unusable";
    }
}

static const char *clearly_word(int c)
{
    return c > 0 ? "worse" : c < 0 ? "better" : "within noise";
}

const char *train_gate_describe(const train_metrics *m, const train_metrics *ref, const train_paired *se, char *buf,
                                size_t len)
{
    if (!gate_usable(m) || !gate_usable(ref)) {
        snprintf(buf, len, "no finite AUC and log-loss to compare");
        return buf;
    }
    double dll = m->logloss - ref->logloss, dauc = m->auc - ref->auc;
    snprintf(buf, len, "log-loss %.4f vs %.4f, %+.4f with a standard error of %.4f: %s; AUC %.4f vs %.4f, %+.4f with "
             "a standard error of %.4f: %s", m->logloss, ref->logloss, dll, se->logloss_se,
             clearly_word(clearly(dll, se->logloss_se)), m->auc, ref->auc, dauc, se->auc_se,
             clearly_word(clearly(-dauc, se->auc_se)));
    return buf;
}

/* The recommendation figures: hits, and the most-bought baseline. */
static void finish_recommendations(const collector *c, train_report *rep)
{
    const rec_state *s = &c->rec;
    int top[TRAIN_TOP_SEGMENTS], ntop = 0;
    if (!s->cat)
        return;
    for (int t = 0; t < TRAIN_TOP_SEGMENTS; t++) {
        int best = -1;
        for (int i = 0; i < s->nseg; i++) {
            int taken = 0;
            for (int u = 0; u < ntop; u++)
                taken |= top[u] == i;
            if (!taken && s->bought[i] > 0 && (best < 0 || s->bought[i] > s->bought[best]))
                best = i;
        }
        if (best < 0)
            break;
        top[ntop++] = best;
        snprintf(rep->recs_popular[t], sizeof rep->recs_popular[t], "%s", s->seg[best]);
    }
    rep->recs_npopular = ntop;
    rep->recs_measured = 1;
    rep->recs_customers = s->ntarget;
    rep->recs_hits = s->hits;
    for (size_t i = 0; i < s->ntarget; i++)
        for (int u = 0; u < ntop; u++)
            if (s->target[i] == top[u]) {
                rep->recs_popular_hits++;
                break;
            }
}

/* Repeat-purchase fits at the fit and calibration cutoffs (the hold-out's
 * is the customer base fit), each on the data up to its own cutoff. */
static int fill_model_level(collector *c, const train_report *rep)
{
    for (int k = 0; k < c->ieval; k++) {
        train_repeat_fit fit;
        if (c->rows[k].n == 0)
            continue;
        int rc = stage(c, "fitting the repeat-purchase model at", c->cut[k]);
        if (rc == LS_OK)
            rc = fit_repeat(&c->rows[k], c->opt, rep->repeat.fitted && rep->repeat.model.kind == CLV_MODEL_NBD, &fit);
        if (rc)
            return rc;
        fill_repeat_columns(c, &c->rows[k], &fit.model);
    }
    fill_repeat_columns(c, &c->rows[c->ieval], &rep->repeat.model);
    return LS_OK;
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
    if (rc && rc != LS_EUNAVAIL)
        ls_fail(err, errlen, rc, "cannot read the store: %s", ls_strerror(rc));
    rep->events = c.events;
    rep->customers = c.customers;
    rep->first_ts_ms = c.first_ts;
    rep->last_ts_ms = c.last_ts;
    rep->nfit = c.nfit;
    for (int k = 0; k < c.nfit; k++) {
        rep->fit_cutoff_ms[k] = c.cut[k];
        rep->fit_rows[k] = c.rows[k].n;
    }
    rep->train_cutoff_ms = c.nfit ? c.cut[c.nfit - 1] : c.cut[c.ical];
    rep->calib_cutoff_ms = c.cut[c.ical];
    rep->eval_cutoff_ms = c.cut[c.ieval];
    if (rc == LS_OK)
        rc = fit_customer_base(&c, rep);
    if (rc == LS_OK && !opt->clv_only)
        rc = fill_model_level(&c, rep);
    if (rc == LS_OK && !opt->clv_only)
        rc = fit_readiness(&c, rep, err, errlen);
    if (rc == LS_OK && !opt->clv_only && rep->nterms == 0) /* never the base's terms under new figures */
        rc = ls_fail(err, errlen, LS_EINVAL,
                     "no readiness term could be fitted: no feature tells who buys in the fit rows (the customers "
                     "look alike before the cutoffs, or none bought after them); train on a more varied history, "
                     "or give --clv-only to refit the repeat-purchase model alone");
    if (rc == LS_OK && !opt->clv_only)
        finish_recommendations(&c, rep);
    if (rc == LS_OK)
        rc = keep_going(&c); /* a stop asked for during the last fit */
    if (rc == LS_EUNAVAIL)
        ls_fail(err, errlen, rc, "training stopped before the end");
    else if (rc == LS_ENOMEM)
        ls_fail(err, errlen, rc, "out of memory");
    collector_free(&c);
    rep->seconds = (double)(timefmt_mono_ns() - t0) / 1e9;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The model file                                                      */
/* ------------------------------------------------------------------ */

static json_t *metrics_json(const train_metrics *m)
{
    json_t *o = json_pack("{s:o, s:f, s:f, s:f, s:f, s:f, s:I, s:I}", "auc",
                          isfinite(m->auc) ? json_real(m->auc) : json_null(), "log_loss", m->logloss,
                          "brier", m->brier, "lift_top10", m->lift_top10, "base_rate", m->base_rate,
                          "mean_predicted", m->mean_predicted, "rows", (json_int_t)m->rows,
                          "positives", (json_int_t)m->positives);
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
    for (int i = 0; i < rep->nterms && terms; i++) {
        json_t *t = json_pack("{s:s, s:s}", "feature", model_feature_name(rep->term_feature[i]), "transform",
                              train_term_transform(rep, i));
        if (t && rep->term_per[i] > 0)
            json_object_set_new(t, "per", json_real(rep->term_per[i]));
        if (t) {
            json_object_set_new(t, "mean", json_real(rep->term_mean[i]));
            json_object_set_new(t, "scale", json_real(rep->term_scale[i]));
            json_object_set_new(t, "coef", json_real(rep->term_coef[i]));
        }
        if (!t || json_array_append_new(terms, t) != 0) { /* a term left out would be another model */
            json_decref(terms);
            return NULL;
        }
    }
    return json_pack("{s:f, s:o}", "intercept", rep->intercept, "terms", terms);
}

static json_t *iso_json(int64_t ms)
{
    char s[40];
    timefmt_format_iso(ms, s, sizeof s);
    return json_string(s);
}

/* clv.fit: what data fitted the repeat-purchase model, and how it went. */
static json_t *repeat_fit_json(const train_report *rep)
{
    const train_repeat_fit *f = &rep->repeat;
    json_t *o = json_pack("{s:I, s:o, s:b, s:s, s:s}", "customers", (json_int_t)f->customers, "cutoff",
                          iso_json(rep->eval_cutoff_ms), "converged", f->fitted, "model",
                          !f->fitted ? "base parameters kept" : f->model.kind == CLV_MODEL_NBD ? "nbd" : "bgnbd",
                          "reason", f->reason[0] ? f->reason : "BG/NBD fitted by maximum likelihood");
    if (!o)
        return NULL;
    json_object_set_new(o, "loglik", f->fitted ? json_real(f->loglik) : json_null());
    json_object_set_new(o, "bgnbd_attempt",
                        f->bgnbd_converged
                            ? json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "converged", 1, "r", f->bgnbd_attempt.r,
                                        "alpha", f->bgnbd_attempt.alpha, "a", f->bgnbd_attempt.a, "b",
                                        f->bgnbd_attempt.b, "loglik", f->bgnbd_loglik)
                            : json_pack("{s:b}", "converged", 0));
    json_object_set_new(o, "nbd_loglik", f->nbd_converged ? json_real(f->nbd_loglik) : json_null());
    return o;
}

static json_t *clv_json(const train_report *rep, const train_options *opt, json_t *base_clv)
{
    json_t *c = json_is_object(base_clv) ? json_deep_copy(base_clv) : json_object();
    const clv_repeat *m = &rep->repeat.model;
    if (!c)
        return NULL;
    json_object_del(c, "bgnbd");
    json_object_del(c, "nbd");
    json_object_set_new(c, "model", json_string(m->kind == CLV_MODEL_NBD ? "nbd" : "bgnbd"));
    json_object_set_new(c, "time_unit_days", json_real(opt->time_unit_days));
    if (m->kind == CLV_MODEL_NBD)
        json_object_set_new(c, "nbd", json_pack("{s:f, s:f}", "r", m->nbd.r, "alpha", m->nbd.alpha));
    else
        json_object_set_new(c, "bgnbd", json_pack("{s:f, s:f, s:f, s:f}", "r", m->bgnbd.r, "alpha", m->bgnbd.alpha,
                                                  "a", m->bgnbd.a, "b", m->bgnbd.b));
    json_object_set_new(c, "gamma_gamma", json_pack("{s:f, s:f, s:f}", "p", rep->gg.p, "q", rep->gg.q,
                                                    "gamma", rep->gg.gamma));
    if (!json_object_get(c, "horizon_days"))
        json_object_set_new(c, "horizon_days", json_integer(365));
    json_object_set_new(c, "fit", repeat_fit_json(rep));
    return c;
}

static void note(json_t *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one sentence, as long as it needs (an out-of-memory one is left out). */
static void note(json_t *notes, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!line)
        return;
    va_start(ap, fmt);
    vsnprintf(line, (size_t)len + 1, fmt, ap);
    va_end(ap);
    json_array_append_new(notes, json_string(line));
    free(line);
}

static json_t *notes_json(const train_report *rep)
{
    json_t *notes = json_array();
    /* no fitting time here: the same data must give the same file (but trained_at) */
    note(notes, "Trained by `leadscore train` on %llu events of %llu customers.", (unsigned long long)rep->events,
         (unsigned long long)rep->customers);
    if (rep->nterms > 0) {
        note(notes, "Readiness = calibrated P(an order within horizon_days): L2-regularised logistic regression on "
             "standardised features (z = (transform(x) - mean) / scale), rows pooled from %d cutoffs (a customer "
             "counts once per cutoff), lambda %g chosen by log-loss on a later calibration cutoff, then Platt "
             "scaling there (\"calibration\").", rep->short_history ? 1 : rep->nfit, rep->lambda);
        if (rep->short_history)
            note(notes, "SHORT HISTORY: fewer than three horizons of data, so the model was fitted on the "
                 "calibration cutoff's rows with a fixed lambda and is NOT calibrated.");
        note(notes, "Sign constraints: intent and engagement terms (views, carts, checkouts, sessions, lifetime "
             "sessions, e-mail) and repeat buying (repeat_p_buy, repeat_expected) >= 0; silence terms (days "
             "since the last engagement -- any event but a complaint or a profile update --, purchase, cart or "
             "checkout; purchase_recency_ratio; days since the last engagement and the last purchase once more as "
             "log1p_scaled terms, log1p(days / horizon_days), flat within a horizon) <= 0; refund, ticket and "
             "bad-review terms <= 0: silence alone never "
             "raises a score, and a complaint moves only those. Tenure, days since the last event (a refund would "
             "read as a visit), lifetime orders, purchase days and spend (they never lapse: a buyer silent for a "
             "year outranked a visitor in checkout), lines and units per order (how a shop sends an order) are no "
             "candidates. Terms held at 0 are left out.");
        if (rep->orders_by_repeat)
            note(notes, "orders_only_customers: a buyer whose record holds no storefront visit (no view, search, "
                 "cart or checkout: an order feed, an imported order history) is scored by the repeat-purchase "
                 "model instead, P(an order within horizon_days) = repeat_p_buy, moved only by the complaint "
                 "terms (refunds, tickets, bad reviews): the terms above read storefront behaviour such a customer "
                 "cannot show, so for it a silent storefront says nothing. A buyer whose first order came before "
                 "any visit (an order history imported, then a storefront that began to send visits) is scored by "
                 "the larger of that and the terms above, so a first visit never reads as less than the orders. "
                 "The metrics score the %zu and %zu such hold-out rows so.", rep->orders_only_rows,
                 rep->orders_first_rows);
        if (rep->unpriced_cart_value > 0)
            note(notes, "unpriced_cart_value: an open cart of items sent without a price (a storefront that "
                 "sends none) counts as %.2f in open_cart_value_recent, the median of the %zu priced open carts "
                 "of the fit rows (%zu had no price): its value is unknown, not 0, and the term was learnt on "
                 "priced carts.", rep->unpriced_cart_value, rep->priced_carts, rep->unpriced_carts);
        if (rep->orders_only)
            note(notes, "ORDERS ONLY: under 1%% of the customers fitted on had a storefront visit (a view, a "
                 "search, a cart or a checkout), so lifetime purchase days and net spend (log1p, >= 0) were candidates "
                 "too: with (almost) no visitor to outrank, they carry how often and how much a customer buys. "
                 "Retrain once the shop sends visits.");
        note(notes, "repeat_p_buy / repeat_expected: P(an order) and expected orders within horizon_days under the "
             "clv section's repeat-purchase model (0 for non-buyers); in training each cutoff's rows use a model "
             "fitted on the data up to that cutoff.");
        note(notes, "Hold-out (final cutoff): AUC %.3f vs %.3f recency and %.3f RFM; mean predicted %.4f vs "
             "observed %.4f.", rep->model.auc, rep->baseline.auc, rep->rfm.auc, rep->model.mean_predicted,
             rep->model.base_rate);
    }
    note(notes, "clv: %s on the repeat-purchase summary as of the evaluation cutoff (transactions = purchase days, "
         "x = purchase_days - 1)%s%s; Gamma-Gamma %s. Journey, segments and tiers come from the base model.",
         !rep->repeat.fitted ? "NOTHING FITTED, the base model's parameters were kept"
         : rep->repeat.model.kind == CLV_MODEL_NBD ? "NBD fitted by maximum likelihood" : "BG/NBD fitted by maximum likelihood",
         rep->repeat.reason[0] ? ": " : "", rep->repeat.reason,
         rep->gg_ok ? "fitted by maximum likelihood" : "NOT fitted, the base model's parameters were kept");
    return notes;
}

static json_t *calibration_json(const train_report *rep)
{
    return json_pack("{s:s, s:f, s:f, s:{s:o, s:I, s:I}}", "method", "platt", "a", rep->cal_a, "b", rep->cal_b,
                     "fitted_on", "cutoff", iso_json(rep->calib_cutoff_ms), "rows", (json_int_t)rep->calib.rows,
                     "positives", (json_int_t)rep->calib.positives);
}

static json_t *recs_json(const train_report *rep)
{
    json_t *pop = json_array();
    for (int i = 0; i < rep->recs_npopular; i++)
        json_array_append_new(pop, json_string(rep->recs_popular[i]));
    double n = rep->recs_customers ? (double)rep->recs_customers : 1;
    return json_pack("{s:I, s:f, s:f, s:o}", "customers", (json_int_t)rep->recs_customers, "hit_rate_at_3",
                     (double)rep->recs_hits / n, "popular_hit_rate_at_3", (double)rep->recs_popular_hits / n,
                     "popular", pop);
}

static json_t *grid_json(const train_report *rep)
{
    json_t *g = json_array();
    for (int i = 0; i < rep->nlambdas; i++)
        json_array_append_new(g, json_pack("{s:f, s:o, s:o}", "lambda", rep->grid_lambda[i], "log_loss",
                                           isfinite(rep->grid_logloss[i]) ? json_real(rep->grid_logloss[i]) : json_null(),
                                           "auc", isfinite(rep->grid_auc[i]) ? json_real(rep->grid_auc[i]) : json_null()));
    return g;
}

/* The gate against a reference: the verdict and the figures it read. */
static json_t *gate_json(const train_metrics *m, const train_metrics *ref, const train_paired *se)
{
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f}", "verdict", train_gate_name(train_gate(m, ref, se)),
                     "log_loss_difference", m->logloss - ref->logloss, "log_loss_difference_se", se->logloss_se,
                     "log_loss_tolerance", train_gate_tolerance(se->logloss_se), "auc_difference", m->auc - ref->auc,
                     "auc_difference_se", se->auc_se, "auc_tolerance", train_gate_tolerance(se->auc_se));
}

static json_t *metrics_all_json(const train_report *rep)
{
    json_t *m = json_object();
    if (rep->nterms > 0) {
        json_object_set_new(m, "train", metrics_json(&rep->train));
        json_object_set_new(m, "calibration_set", metrics_json(&rep->calib));
        json_object_set_new(m, "holdout", metrics_json(&rep->model));
        json_object_set_new(m, "holdout_recency_baseline", metrics_json(&rep->baseline));
        json_object_set_new(m, "holdout_rfm_baseline", metrics_json(&rep->rfm));
        json_object_set_new(m, "rfm_gate", gate_json(&rep->model, &rep->rfm, &rep->vs_rfm));
        if (rep->compared)
            json_object_set_new(m, "holdout_compared_model", metrics_json(&rep->compare));
        if (rep->recs_measured)
            json_object_set_new(m, "recommendations", recs_json(rep));
        json_object_set_new(m, "lambda_grid", grid_json(rep));
        json_object_set_new(m, "orders_only", json_boolean(rep->orders_only));
        json_object_set_new(m, "holdout_orders_only_customers", json_integer((json_int_t)rep->orders_only_rows));
        json_object_set_new(m, "holdout_orders_first_customers", json_integer((json_int_t)rep->orders_first_rows));
    }
    json_object_set_new(m, "clv", json_pack("{s:s, s:b, s:s, s:f, s:I, s:b, s:f, s:b, s:f, s:I}", "model",
        rep->repeat.model.kind == CLV_MODEL_NBD ? "nbd" : "bgnbd", "repeat_fitted", rep->repeat.fitted, "reason",
        rep->repeat.reason, "bgnbd_loglik", rep->repeat.bgnbd_loglik, "bgnbd_customers",
        (json_int_t)rep->repeat.customers, "bgnbd_converged", rep->repeat.bgnbd_converged, "nbd_loglik",
        rep->repeat.nbd_loglik, "gamma_gamma_converged", rep->gg_ok, "gamma_gamma_loglik", rep->gg_loglik,
        "gamma_gamma_customers", (json_int_t)rep->gg_customers));
    return m;
}

static json_t *data_json(const train_report *rep, const train_options *opt)
{
    json_t *fit = json_array();
    for (int k = 0; k < rep->nfit; k++)
        json_array_append_new(fit, json_pack("{s:o, s:I}", "cutoff", iso_json(rep->fit_cutoff_ms[k]), "rows",
                                             (json_int_t)rep->fit_rows[k]));
    json_t *d = json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:f, s:b}", "events", (json_int_t)rep->events,
                     "customers", (json_int_t)rep->customers, "first_event", iso_json(rep->first_ts_ms), "last_event",
                     iso_json(rep->last_ts_ms), "train_cutoff", iso_json(rep->train_cutoff_ms), "fit_cutoffs", fit,
                     "calibration_cutoff", iso_json(rep->calib_cutoff_ms), "eval_cutoff",
                     iso_json(rep->eval_cutoff_ms), "short_history", rep->short_history, "lambda",
                     opt->clv_only ? opt->lambda : rep->lambda, "lambda_chosen", !opt->lambda_fixed && rep->nlambdas > 0);
    if (d && rep->orders_only)
        json_object_set_new(d, "orders_only", json_true());
    return d;
}

json_t *train_model_json(const train_report *rep, const train_options *opt, json_t *base, const char *name,
                         const char *version)
{
    char when[40];
    json_t *m = json_deep_copy(base);
    if (!m)
        return NULL;
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000, when, sizeof when);
    json_object_set_new(m, "name", json_string(name));
    json_object_set_new(m, "version", json_string(version));
    json_object_set_new(m, "trained_at", json_string(when));
    json_object_set_new(m, "horizon_days", json_integer(opt->horizon_days));
    json_object_set_new(m, "notes", notes_json(rep));
    if (rep->nterms > 0) {
        json_t *lg = logistic_json(rep);
        if (!lg || json_object_set_new(m, "logistic", lg) != 0) { /* never the base's terms under new figures */
            json_decref(m);
            return NULL;
        }
        if (rep->calibrated)
            json_object_set_new(m, "calibration", calibration_json(rep));
        else
            json_object_del(m, "calibration");
        if (rep->orders_by_repeat)
            json_object_set_new(m, "orders_only_customers", json_string("repeat_purchase"));
        else
            json_object_del(m, "orders_only_customers");
        if (rep->unpriced_cart_value > 0)
            json_object_set_new(m, "unpriced_cart_value", json_real(round(rep->unpriced_cart_value * 100) / 100));
        else
            json_object_del(m, "unpriced_cart_value");
    }
    json_object_set_new(m, "clv", clv_json(rep, opt, json_object_get(base, "clv")));
    json_object_set_new(m, "metrics", metrics_all_json(rep));
    json_object_set_new(m, "data", data_json(rep, opt));
    return m;
}
