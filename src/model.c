/* model.c -- model files (JSON, read with jansson) and the logistic
 * readiness score.  jansson gives us line numbers in parse errors and a
 * well-tested parser, which a hand-written one would not. */
#include "model.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "assess.h"
#include "error_internal.h"

#define MS_PER_DAY 86400000.0
#define HALF_LIFE_MIN_DAYS (1.0 / 1440) /* one minute */
#define HALF_LIFE_MAX_DAYS 36525.0       /* a century */

enum { TRANSFORM_NONE, TRANSFORM_LOG1P, TRANSFORM_LOG1P_SCALED };

/* Most log1p terms are counts (sessions, purchases, reviews) and most of
 * them are small: their log1p comes from a table, the same doubles. */
#define MODEL_LOG1P_INTS 64
/* The largest calibrated weight (per unit of a term) and intercept a model
 * may have: a fitted model's are below 100; past this a term's log-odds
 * could overflow, and a score turn NaN. */
#define MODEL_MAX_LOGIT 1e6

typedef struct {
    int feature;
    int transform;
    double per;               /* log1p_scaled: log1p(x / per), per > 0 */
    double mean, scale, coef;
    double cal_weight;        /* cal_a * coef / scale, computed at load */
    int complaint;            /* a refund, support ticket or bad review term (complaint_feature) */
} model_term;

struct model {
    atomic_int refs;
    char name[MODEL_TEXT_MAX];
    char version[MODEL_TEXT_MAX];
    char trained_at[MODEL_TEXT_MAX];
    double horizon_days;
    feature_decay decay;
    double intercept;
    double cal_a, cal_b;      /* Platt calibration; 1, 0 = none */
    double cal_intercept;     /* cal_a * intercept + cal_b, computed at load */
    int model_level;          /* 1: some term, or orders_by_repeat, needs assess_repeat */
    int orders_by_repeat;     /* "orders_only_customers": "repeat_purchase" */
    double unpriced_cart_value; /* "unpriced_cart_value": 0 = none */
    int cart_value_feature;   /* the id of open_cart_value_recent, which it applies to (-1: none) ... */
    int cart_open_feature;    /* ... and of cart_open_recent, the fading it takes */
    int nterms;
    model_term terms[MODEL_MAX_TERMS];
    double tier_hot, tier_warm;
    model_clv clv;
    journey_rules journey;
    segments_catalogue segments;
    assess_consts assess;     /* computed at load (assess_prepare) */
    double log1p_int[MODEL_LOG1P_INTS]; /* log1p(k) for k = 0 .. MODEL_LOG1P_INTS - 1, computed at load */
    clv_bgnbd_table bgnbd_table; /* clv.repeat.table points here (BG/NBD), computed at load */
};

/* Defined in the file CMake generates from models/default.json. */
extern const char ls_builtin_model_json[];
extern const size_t ls_builtin_model_json_len;

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

static int get_string(json_t *root, const char *key, char *dst, size_t cap, int required,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v && !required) {
        dst[0] = '\0';
        return LS_OK;
    }
    if (!json_is_string(v))
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"%s\" must be a string", key);
    if (json_string_length(v) >= cap)
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"%s\" is too long", key);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return LS_OK;
}

/* A finite number (integer or real) at key, > 0 when positive is set. */
static int get_number(json_t *obj, const char *key, double *out, int positive,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"%s\" must be a number", key);
    *out = json_number_value(v);
    if (!isfinite(*out) || (positive && *out <= 0))
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"%s\" must be a finite positive number", key);
    return LS_OK;
}

static int parse_decay(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *hl = json_object_get(root, "half_lives_days");
    double s = 0, l = 0;
    int rc;
    if (!json_is_object(hl))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s must be an object {\"short\": days, \"long\": days}",
                    "\"half_lives_days\"");
    if ((rc = get_number(hl, "short", &s, 1, err, errlen)) || (rc = get_number(hl, "long", &l, 1, err, errlen)))
        return rc;
    /* stored in a store's meta as whole ms: a minute to a century, so none
     * rounds to 0 or overflows */
    if (s < HALF_LIFE_MIN_DAYS || s > HALF_LIFE_MAX_DAYS || l < HALF_LIFE_MIN_DAYS || l > HALF_LIFE_MAX_DAYS)
        return ls_fail(err, errlen, LS_EPARSE,
                       "model file: \"half_lives_days\" must lie between one minute (%.6g) and %g days, not %g / %g",
                       HALF_LIFE_MIN_DAYS, HALF_LIFE_MAX_DAYS, s, l);
    m->decay.short_ms = (int64_t)llround(s * MS_PER_DAY);
    m->decay.long_ms = (int64_t)llround(l * MS_PER_DAY);
    return LS_OK;
}

static int parse_term(model_term *t, json_t *j, char *err, size_t errlen)
{
    json_t *fname = json_object_get(j, "feature");
    json_t *tr = json_object_get(j, "transform");
    int rc;
    if (!json_is_string(fname))
        return ls_fail(err, errlen, LS_EPARSE, "model file: every logistic term needs a %s", "\"feature\" name");
    t->feature = model_feature_lookup(json_string_value(fname));
    if (t->feature < 0)
        return ls_fail(err, errlen, LS_EPARSE, "model file: unknown feature \"%s\" (see README, Features)",
                    json_string_value(fname));
    t->transform = TRANSFORM_NONE;
    t->per = 1.0;
    const char *feature = json_string_value(fname);
    if (tr && !json_is_string(tr))
        return ls_fail(err, errlen, LS_EPARSE, "model file: the term of \"%s\": \"transform\" must be \"none\", "
                       "\"log1p\" or \"log1p_scaled\"", feature);
    if (tr && strcmp(json_string_value(tr), "log1p") == 0)
        t->transform = TRANSFORM_LOG1P;
    else if (tr && strcmp(json_string_value(tr), "log1p_scaled") == 0)
        t->transform = TRANSFORM_LOG1P_SCALED;
    else if (tr && strcmp(json_string_value(tr), "none") != 0)
        return ls_fail(err, errlen, LS_EPARSE, "model file: the term of \"%s\": \"transform\" must be \"none\", "
                       "\"log1p\" or \"log1p_scaled\", not \"%.40s\"", feature, json_string_value(tr));
    json_t *per = json_object_get(j, "per");
    if (t->transform == TRANSFORM_LOG1P_SCALED) {
        t->per = json_is_number(per) ? json_number_value(per) : NAN;
        if (!(t->per > 0) || !isfinite(t->per)) {
            char was[40];
            if (json_is_number(per))
                snprintf(was, sizeof was, "not %g", t->per);
            else
                snprintf(was, sizeof was, "%s", per ? "not a number" : "it has none");
            return ls_fail(err, errlen, LS_EPARSE, "model file: the \"log1p_scaled\" term of \"%s\" needs a "
                           "positive \"per\" (it is log1p(x / per)): %s", feature, was);
        }
    } else if (per) {
        return ls_fail(err, errlen, LS_EPARSE, "model file: the term of \"%s\" has a \"per\", which belongs to "
                       "\"log1p_scaled\" terms only", feature);
    }
    t->mean = 0.0;
    t->scale = 1.0;
    if (json_object_get(j, "mean") && (rc = get_number(j, "mean", &t->mean, 0, err, errlen)))
        return rc;
    if (json_object_get(j, "scale") && (rc = get_number(j, "scale", &t->scale, 1, err, errlen)))
        return rc;
    return get_number(j, "coef", &t->coef, 0, err, errlen);
}

static int parse_logistic(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *lg = json_object_get(root, "logistic");
    json_t *terms = json_object_get(lg, "terms");
    int rc;
    if (!json_is_object(lg) || !json_is_array(terms))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "\"logistic\" must be an object with \"intercept\" and \"terms\"");
    if ((rc = get_number(lg, "intercept", &m->intercept, 0, err, errlen)))
        return rc;
    if (json_array_size(terms) > MODEL_MAX_TERMS)
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "more than 64 logistic terms");
    m->nterms = (int)json_array_size(terms);
    for (int i = 0; i < m->nterms; i++) {
        if ((rc = parse_term(&m->terms[i], json_array_get(terms, (size_t)i), err, errlen)))
            return rc;
        m->model_level |= m->terms[i].feature >= MODEL_FEATURE_REPEAT_P_BUY;
    }
    return LS_OK;
}

/* "calibration": {"method": "platt", "a": > 0, "b": number, ...}; absent:
 * the identity. */
static int parse_calibration(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *c = json_object_get(root, "calibration"), *method = json_object_get(c, "method");
    int rc;
    m->cal_a = 1.0;
    m->cal_b = 0.0;
    if (!c)
        return LS_OK;
    if (!json_is_object(c) || !json_is_string(method))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "\"calibration\" must be an object with a \"method\"");
    if (strcmp(json_string_value(method), "none") == 0)
        return LS_OK;
    if (strcmp(json_string_value(method), "platt") != 0)
        return ls_fail(err, errlen, LS_EPARSE, "model file: calibration.method \"%s\" is not \"platt\" or \"none\"",
                       json_string_value(method));
    if ((rc = get_number(c, "a", &m->cal_a, 1, err, errlen)) || (rc = get_number(c, "b", &m->cal_b, 0, err, errlen)))
        return rc;
    return LS_OK;
}

static int parse_tiers(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *tiers = json_object_get(root, "tiers");
    int rc;
    if (!json_is_object(tiers))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "\"tiers\" must be an object {\"hot\": p, \"warm\": p}");
    if ((rc = get_number(tiers, "hot", &m->tier_hot, 1, err, errlen)) ||
        (rc = get_number(tiers, "warm", &m->tier_warm, 1, err, errlen)))
        return rc;
    if (m->tier_hot > 1 || m->tier_warm > m->tier_hot)
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "tiers need 0 < warm <= hot <= 1");
    return LS_OK;
}

static int parse_params(json_t *obj, const char *what, const char *const *keys, double *out, int n,
                        char *err, size_t errlen)
{
    if (!json_is_object(obj))
        return ls_fail(err, errlen, LS_EPARSE, "model file: clv.%s must be an object", what);
    for (int i = 0; i < n; i++) {
        int rc = get_number(obj, keys[i], &out[i], 1, err, errlen);
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* clv.model: "bgnbd" (also when absent, as in older files) with clv.bgnbd
 * {r, alpha, a, b}, or "nbd" with clv.nbd {r, alpha}. */
static int parse_repeat(model *m, json_t *c, char *err, size_t errlen)
{
    static const char *const bg[] = {"r", "alpha", "a", "b"}, *const nb[] = {"r", "alpha"};
    json_t *kind = json_object_get(c, "model");
    double b[4];
    int rc;
    if (kind && (!json_is_string(kind) ||
                 (strcmp(json_string_value(kind), "bgnbd") && strcmp(json_string_value(kind), "nbd"))))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "clv.model must be \"bgnbd\" or \"nbd\"");
    if (kind && strcmp(json_string_value(kind), "nbd") == 0) {
        if ((rc = parse_params(json_object_get(c, "nbd"), "nbd", nb, b, 2, err, errlen)))
            return rc;
        m->clv.repeat.kind = CLV_MODEL_NBD;
        m->clv.repeat.nbd = (clv_nbd){b[0], b[1]};
        return LS_OK;
    }
    if ((rc = parse_params(json_object_get(c, "bgnbd"), "bgnbd", bg, b, 4, err, errlen)))
        return rc;
    m->clv.repeat.kind = CLV_MODEL_BGNBD;
    m->clv.repeat.bgnbd = (clv_bgnbd){b[0], b[1], b[2], b[3]};
    clv_bgnbd_table_init(&m->clv.repeat.bgnbd, &m->bgnbd_table);
    m->clv.repeat.table = &m->bgnbd_table;
    return LS_OK;
}

static int parse_clv(model *m, json_t *root, char *err, size_t errlen)
{
    static const char *const gg[] = {"p", "q", "gamma"};
    json_t *c = json_object_get(root, "clv");
    double g[3];
    int rc;
    if (!json_is_object(c))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "\"clv\" must be an object (time_unit_days, bgnbd, gamma_gamma, horizon_days)");
    if ((rc = get_number(c, "time_unit_days", &m->clv.time_unit_days, 1, err, errlen)) ||
        (rc = get_number(c, "horizon_days", &m->clv.horizon_days, 1, err, errlen)) ||
        (rc = parse_repeat(m, c, err, errlen)) ||
        (rc = parse_params(json_object_get(c, "gamma_gamma"), "gamma_gamma", gg, g, 3, err, errlen)))
        return rc;
    if (json_object_get(c, "discount_rate_annual") &&
        (rc = get_number(c, "discount_rate_annual", &m->clv.discount_rate_annual, 0, err, errlen)))
        return rc;
    if (m->clv.discount_rate_annual < 0 || g[1] <= 1)
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "clv needs discount_rate_annual >= 0 and gamma_gamma.q > 1");
    m->clv.gamma_gamma = (clv_gamma_gamma){g[0], g[1], g[2]};
    return LS_OK;
}

/* "orders_only_customers": "logistic" (the default: every customer is
 * scored by the logistic terms) or "repeat_purchase" (a buyer known from
 * orders alone is scored by the repeat-purchase part: orders_only_logit). */
static int parse_orders_only(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, "orders_only_customers");
    m->orders_by_repeat = 0;
    if (!v)
        return LS_OK;
    if (!json_is_string(v))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s",
                       "\"orders_only_customers\" must be \"logistic\" or \"repeat_purchase\"");
    if (strcmp(json_string_value(v), "logistic") == 0)
        return LS_OK;
    if (strcmp(json_string_value(v), "repeat_purchase") != 0)
        return ls_fail(err, errlen, LS_EPARSE,
                       "model file: orders_only_customers \"%s\" is not \"logistic\" or \"repeat_purchase\"",
                       json_string_value(v));
    m->orders_by_repeat = 1;
    m->model_level = 1;
    return LS_OK;
}

/* "unpriced_cart_value" (optional, >= 0): what an open cart of items
 * sent without a price counts as in the terms (open_cart_value_recent);
 * without it, or at 0, such a cart is worth 0 there, as in the record. */
static int parse_unpriced_cart(model *m, json_t *root, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, "unpriced_cart_value");
    m->unpriced_cart_value = 0;
    m->cart_value_feature = -1;
    if (!v)
        return LS_OK;
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s",
                       "\"unpriced_cart_value\" must be a number >= 0");
    m->unpriced_cart_value = json_number_value(v);
    m->cart_value_feature = feature_lookup("open_cart_value_recent");
    m->cart_open_feature = feature_lookup("cart_open_recent");
    return LS_OK;
}

double model_unpriced_cart_value(const model *m) { return m->unpriced_cart_value; }

int model_complaint_feature(int id)
{
    static const char *const names[] = {"refund_rate", "refund_count", "support_ticket_count", "bad_reviews"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (id == feature_lookup(names[i]))
            return 1;
    return 0;
}

static int check_keys(json_t *root, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "version", "trained_at", "horizon_days", "half_lives_days",
                                        "notes", "logistic", "tiers", "clv", "journey", "segments",
                                        "metrics", "data", "calibration", "orders_only_customers",
                                        "unpriced_cart_value", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(known[i], key) == 0;
        if (!ok)
            return ls_fail(err, errlen, LS_EPARSE, "model file: unknown top-level key \"%s\"", key);
    }
    return LS_OK;
}

static int parse_model(model *m, json_t *root, char *err, size_t errlen)
{
    int rc;
    if (!json_is_object(root))
        return ls_fail(err, errlen, LS_EPARSE, "model file: %s", "the top level must be a JSON object");
    if ((rc = check_keys(root, err, errlen)) || (rc = parse_clv(m, root, err, errlen)) ||
        (rc = journey_parse(json_object_get(root, "journey"), &m->journey, err, errlen)) ||
        (rc = segments_parse(json_object_get(root, "segments"), &m->segments, err, errlen)))
        return rc;
    if ((rc = get_string(root, "name", m->name, sizeof m->name, 1, err, errlen)) ||
        (rc = get_string(root, "version", m->version, sizeof m->version, 1, err, errlen)) ||
        (rc = get_string(root, "trained_at", m->trained_at, sizeof m->trained_at, 0, err, errlen)) ||
        (rc = get_number(root, "horizon_days", &m->horizon_days, 1, err, errlen)) ||
        (rc = parse_decay(m, root, err, errlen)) ||
        (rc = parse_logistic(m, root, err, errlen)) ||
        (rc = parse_calibration(m, root, err, errlen)) ||
        (rc = parse_orders_only(m, root, err, errlen)) || (rc = parse_unpriced_cart(m, root, err, errlen)) ||
        (rc = parse_tiers(m, root, err, errlen)))
        return rc;
    /* per-model constants of scoring, with the very expressions model_score
     * and assess_customer would evaluate per customer */
    m->cal_intercept = m->cal_a * m->intercept + m->cal_b;
    if (!isfinite(m->cal_intercept) || fabs(m->cal_intercept) > MODEL_MAX_LOGIT)
        return ls_fail(err, errlen, LS_EPARSE, "model file: the calibrated intercept (calibration a x intercept + "
                       "b = %g) is out of range: a model's log-odds must stay within +-%g", m->cal_intercept,
                       MODEL_MAX_LOGIT);
    for (int i = 0; i < m->nterms; i++) {
        model_term *t = &m->terms[i];
        t->cal_weight = m->cal_a * t->coef / t->scale;
        t->complaint = model_complaint_feature(t->feature);
        if (!isfinite(t->cal_weight) || fabs(t->cal_weight) > MODEL_MAX_LOGIT ||
            !(fabs(t->cal_weight * t->mean) <= MODEL_MAX_LOGIT * MODEL_MAX_LOGIT))
            return ls_fail(err, errlen, LS_EPARSE, "model file: the term of \"%s\" weighs %g per unit (calibration "
                           "a x coef / scale) with mean %g: out of range, its log-odds would not stay finite",
                           model_feature_name(t->feature), t->cal_weight, t->mean);
    }
    for (int k = 0; k < MODEL_LOG1P_INTS; k++)
        m->log1p_int[k] = log1p((double)k);
    assess_prepare(&m->clv, m->horizon_days, &m->assess);
    return LS_OK;
}

int model_load_text(const char *text, size_t len, model **out, char *err, size_t errlen)
{
    json_error_t jerr;
    *out = NULL;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err && errlen)
            snprintf(err, errlen, "model file: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return LS_EPARSE;
    }
    model *m = calloc(1, sizeof *m);
    if (!m) {
        json_decref(root);
        return LS_ENOMEM;
    }
    int rc = parse_model(m, root, err, errlen);
    json_decref(root);
    if (rc) {
        free(m);
        return rc;
    }
    atomic_init(&m->refs, 1);
    *out = m;
    return LS_OK;
}

int model_load_file(const char *path, model **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open model file %s: %s", path, strerror(errno));
        return LS_EIO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = LS_OK;
    for (;;) {
        if (len + 65536 > cap) {
            if (cap >= (64u << 20)) {
                rc = ls_fail(err, errlen, LS_EPARSE, "model file %s is larger than 64 MiB", path);
                break;
            }
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536 * 2);
            if (!nb) {
                rc = LS_ENOMEM;
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, fp);
        len += n;
        if (n == 0)
            break;
    }
    if (rc == LS_OK && ferror(fp)) /* a directory opens, then fails to read (EISDIR) */
        rc = ls_fail(err, errlen, LS_EIO, "cannot read model file %s: %s", path, strerror(errno));
    if (rc == LS_ENOMEM)
        ls_fail(err, errlen, LS_ENOMEM, "out of memory reading model file %s", path);
    fclose(fp);
    if (rc == LS_OK)
        rc = model_load_text(buf, len, out, err, errlen);
    free(buf);
    return rc;
}

const char *model_builtin_text(size_t *len)
{
    *len = ls_builtin_model_json_len;
    return ls_builtin_model_json;
}

int model_load_builtin(model **out, char *err, size_t errlen)
{
    return model_load_text(ls_builtin_model_json, ls_builtin_model_json_len, out, err, errlen);
}

model *model_ref(model *m)
{
    atomic_fetch_add(&m->refs, 1);
    return m;
}

void model_unref(model **mp)
{
    if (!mp || !*mp)
        return;
    if (atomic_fetch_sub(&(*mp)->refs, 1) == 1)
        free(*mp);
    *mp = NULL;
}

const char *model_name(const model *m) { return m->name; }
const char *model_version(const model *m) { return m->version; }
const char *model_trained_at(const model *m) { return m->trained_at; }
double model_horizon_days(const model *m) { return m->horizon_days; }
const feature_decay *model_decay(const model *m) { return &m->decay; }
int model_nterms(const model *m) { return m->nterms; }
double model_intercept(const model *m) { return m->cal_intercept; }
const model_clv *model_clv_params(const model *m) { return &m->clv; }
const journey_rules *model_journey(const model *m) { return &m->journey; }
const segments_catalogue *model_segments(const model *m) { return &m->segments; }
const assess_consts *model_assess_consts(const model *m) { return &m->assess; }
int model_term_feature(const model *m, int i) { return m->terms[i].feature; }

void model_calibration(const model *m, double *a, double *b)
{
    *a = m->cal_a;
    *b = m->cal_b;
}

static const char *const model_level_names[] = {"repeat_p_buy", "repeat_expected"};

const char *model_feature_name(int id)
{
    if (id >= MODEL_FEATURE_REPEAT_P_BUY && id < MODEL_FEATURE_END)
        return model_level_names[id - MODEL_FEATURE_REPEAT_P_BUY];
    return feature_name(id);
}

int model_feature_lookup(const char *name)
{
    for (int i = 0; i < MODEL_FEATURE_END - MODEL_FEATURE_REPEAT_P_BUY; i++)
        if (strcmp(model_level_names[i], name) == 0)
            return MODEL_FEATURE_REPEAT_P_BUY + i;
    return feature_lookup(name);
}

/* ------------------------------------------------------------------ */
/* Scoring                                                             */
/* ------------------------------------------------------------------ */

/* The term's contribution on the calibrated scale (times cal_a):
 * (v - mean) * cal_a * coef / scale, the weight taken from the load. */
static double term_contribution(const model *m, const model_term *t, double x)
{
    double v = x;
    if (t->transform == TRANSFORM_LOG1P) {
        double y = x > 0 ? x : 0; /* also NaN -> 0 */
        v = y < MODEL_LOG1P_INTS && y == (double)(int)y ? m->log1p_int[(int)y] : log1p(y);
    } else if (t->transform == TRANSFORM_LOG1P_SCALED) {
        v = log1p((x > 0 ? x : 0) / t->per);
    }
    double c = (v - t->mean) * t->cal_weight;
    return c + 0.0; /* no -0 for people to puzzle over */
}

static int by_magnitude(const void *a, const void *b)
{
    double x = fabs(((const model_contrib *)a)->contribution);
    double y = fabs(((const model_contrib *)b)->contribution);
    return (x < y) - (x > y);
}

static double sigmoid(double x)
{
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

int model_uses_repeat(const model *m) { return m->model_level; }

/* A feature that enters through two terms (two transforms of one value)
 * is one line of `explain`: the sum of its terms. */
static void add_contribution(model_result *out, int feature, double x, double c)
{
    for (int k = 0; k < out->ncontrib; k++)
        if (out->contrib[k].feature == feature) {
            out->contrib[k].contribution += c;
            return;
        }
    out->contrib[out->ncontrib++] = (model_contrib){feature, x, c};
}

int model_orders_by_repeat(const model *m) { return m->orders_by_repeat; }

int model_orders_only_customer(const model *m, const ls_features *f)
{
    return m->orders_by_repeat && assess_is_buyer(f) && !feature_has_visit(f);
}

/* The logit of a customer known from orders alone (orders_by_repeat): the
 * repeat-purchase part's P(an order within horizon_days), moved by the
 * model's complaint terms, each counted from "no complaint" (a customer
 * without one keeps P exactly).  With explain, repeat_p_buy's entry
 * carries logit(P) - intercept, so that the entries still add up. */
static double orders_only_logit(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                                double p_buy, model_result *out)
{
    double p = fmin(fmax(p_buy, MODEL_ORDERS_P_MIN), 1.0 - MODEL_ORDERS_P_MIN);
    double logit = log(p / (1.0 - p));
    if (explain)
        add_contribution(out, MODEL_FEATURE_REPEAT_P_BUY, p_buy, logit - model_intercept(m));
    for (int i = 0; i < m->nterms; i++) {
        if (!m->terms[i].complaint)
            continue;
        double x = feature_value(f, m->terms[i].feature, ctx);
        /* from "no complaint": every transform is 0 at 0, so the term at 0
         * is -mean * cal_weight */
        double c = term_contribution(m, &m->terms[i], x) + m->terms[i].mean * m->terms[i].cal_weight;
        logit += c;
        if (explain)
            add_contribution(out, m->terms[i].feature, x, c + 0.0);
    }
    return logit;
}

/* The logit of the logistic terms. */
/* open_cart_value_recent as the model's terms read it: for an open cart
 * of items sent without a price (worth 0 in the record), the model's
 * "unpriced_cart_value", fading as the cart does (cart_open_recent is
 * that factor while the cart is open). */
static double cart_value_term(const model *m, const ls_features *f, const feature_ctx *ctx, double x)
{
    if (x != 0 || m->unpriced_cart_value <= 0 || !feature_cart_is_open(f))
        return x;
    return m->unpriced_cart_value * feature_value(f, m->cart_open_feature, ctx);
}

static double logistic_logit(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                             const double level[2], model_result *out)
{
    double logit = model_intercept(m);
    for (int i = 0; i < m->nterms; i++) {
        int id = m->terms[i].feature;
        double x = id >= MODEL_FEATURE_REPEAT_P_BUY ? level[id - MODEL_FEATURE_REPEAT_P_BUY] : feature_value(f, id, ctx);
        if (id == m->cart_value_feature)
            x = cart_value_term(m, f, ctx, x);
        double c = term_contribution(m, &m->terms[i], x);
        logit += c;
        if (explain)
            add_contribution(out, m->terms[i].feature, x, c);
    }
    return logit;
}

void model_score_ex(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                    const double *repeat_level, model_result *out)
{
    double logit, level[2] = {0, 0};
    out->ncontrib = 0;
    if (m->model_level && repeat_level != NULL) {
        level[0] = repeat_level[0];
        level[1] = repeat_level[1];
    } else if (m->model_level) {
        assess_repeat(&m->clv, f, ctx->now_ms, m->horizon_days, &level[0], &level[1]);
    }
    out->orders_only = model_orders_only_customer(m, f);
    if (!out->orders_only && m->orders_by_repeat && assess_is_buyer(f) && feature_orders_before_visits(f))
        out->orders_only = orders_only_logit(m, f, ctx, 0, level[0], out) > logistic_logit(m, f, ctx, 0, level, out);
    if (out->orders_only)
        logit = orders_only_logit(m, f, ctx, explain, level[0], out);
    else
        logit = logistic_logit(m, f, ctx, explain, level, out);
    if (explain)
        qsort(out->contrib, (size_t)out->ncontrib, sizeof out->contrib[0], by_magnitude);
    if (isnan(logit)) /* not from a model that loaded (its weights are bounded): a last guard */
        logit = 0.0;
    out->logit = logit;
    out->score = sigmoid(logit);
    out->score_100 = (int)lround(out->score * 100.0);
    out->tier = out->score >= m->tier_hot ? "hot" : out->score >= m->tier_warm ? "warm" : "cold";
}

void model_score(const model *m, const ls_features *f, const feature_ctx *ctx, int explain,
                 model_result *out)
{
    model_score_ex(m, f, ctx, explain, NULL, out);
}

int model_path_is_builtin(const char *path)
{
    struct stat st;
    if (!path)
        path = MODEL_DEFAULT_PATH;
    return strcmp(path, MODEL_DEFAULT_PATH) == 0 && stat(path, &st) != 0;
}

int model_load_default(const char *path, model **out, const char **used, char *err, size_t errlen)
{
    if (!path)
        path = MODEL_DEFAULT_PATH;
    int builtin = model_path_is_builtin(path);
    if (used)
        *used = builtin ? NULL : path;
    return builtin ? model_load_builtin(out, err, errlen) : model_load_file(path, out, err, errlen);
}
