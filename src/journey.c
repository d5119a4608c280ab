/* journey.c -- customer type, loyalty phase, loyalty points and tier, and
 * the action triggers, from the rules in the model file (see journey.h). */
#include "journey.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error_internal.h"
#include "timefmt.h"

#define MS_PER_DAY 86400000.0

static const char *const type_names[] = {
#define NAME(sym, name) name,
    JOURNEY_TYPE_MAP(NAME)};
static const char *const phase_names[] = {JOURNEY_PHASE_MAP(NAME)};
static const char *const action_names[] = {JOURNEY_ACTION_MAP(NAME)
#undef NAME
};

const char *journey_type_name(journey_type t) { return t < JT_COUNT ? type_names[t] : "prospect"; }
const char *journey_phase_name(journey_phase p) { return p < JP_COUNT ? phase_names[p] : "prospect"; }
const char *journey_action_name(journey_action a) { return a < JA_COUNT ? action_names[a] : "?"; }

/* ------------------------------------------------------------------ */
/* Rules: defaults and the model file                                  */
/* ------------------------------------------------------------------ */

/* One row per numeric rule: its key in the model file and its field. */
#define RULE(group, key, field) {group, key, offsetof(journey_rules, field)}
static const struct {
    const char *group;
    const char *key;
    size_t off;
} rule_keys[] = {
    RULE("types", "new_max_days", new_max_days),
    RULE("types", "regular_min_purchases", regular_min_purchases),
    RULE("types", "regular_min_p_alive", regular_min_p_alive),
    RULE("types", "big_spender_min_clv", big_spender_min_clv),
    RULE("types", "big_spender_min_spend", big_spender_min_spend),
    RULE("types", "sale_hunter_min_share", sale_hunter_min_share),
    RULE("types", "sale_hunter_min_purchases", sale_hunter_min_purchases),
    RULE("phases", "advocate_min_purchases", advocate_min_purchases),
    RULE("phases", "advocate_min_shares", advocate_min_shares),
    RULE("phases", "advocate_min_good_reviews", advocate_min_good_reviews),
    RULE("phases", "disappointment_days", disappointment_days),
    RULE("phases", "lapsing_max_p_alive", lapsing_max_p_alive),
    RULE("phases", "lapsed_days", lapsed_days),
    RULE("loyalty", "points_per_currency", points_per_currency),
    RULE("loyalty", "points_per_review", points_per_review),
    RULE("loyalty", "points_per_share", points_per_share),
    RULE("loyalty", "points_per_referral", points_per_referral),
    RULE("loyalty", "points_per_signup", points_per_signup),
    RULE("loyalty", "engagement_max_points", engagement_max_points),
    RULE("actions", "cart_min_hours", cart_min_hours),
    RULE("actions", "cart_max_days", cart_max_days),
    RULE("actions", "winback_min_purchases", winback_min_purchases),
    RULE("actions", "winback_max_p_alive", winback_max_p_alive),
    RULE("actions", "winback_min_days", winback_min_days),
    RULE("actions", "birthday_days_ahead", birthday_days_ahead),
    RULE("actions", "anniversary_days_ahead", anniversary_days_ahead),
    RULE("actions", "vip_min_clv", vip_min_clv),
    RULE("actions", "review_min_days", review_min_days),
    RULE("actions", "review_max_days", review_max_days),
};
#undef RULE
#define N_RULES (sizeof rule_keys / sizeof rule_keys[0])

void journey_defaults(journey_rules *r)
{
    memset(r, 0, sizeof *r);
    *r = (journey_rules){
        .new_max_days = 60, .regular_min_purchases = 3, .regular_min_p_alive = 0.5,
        .big_spender_min_clv = 1000, .big_spender_min_spend = 2000,
        .sale_hunter_min_share = 0.6, .sale_hunter_min_purchases = 2,
        .advocate_min_purchases = 2, .advocate_min_shares = 2, .advocate_min_good_reviews = 2,
        .disappointment_days = 45, .lapsing_max_p_alive = 0.3, .lapsed_days = 365,
        .points_per_currency = 1, .points_per_review = 50, .points_per_share = 20,
        .points_per_referral = 200, .points_per_signup = 100, .engagement_max_points = 1000,
        .cart_min_hours = 1, .cart_max_days = 7,
        .winback_min_purchases = 2, .winback_max_p_alive = 0.5, .winback_min_days = 90,
        .birthday_days_ahead = 7, .anniversary_days_ahead = 7, .vip_min_clv = 1500,
        .review_min_days = 7, .review_max_days = 30,
    };
    static const struct { const char *name; double min; } tiers[] = {{"bronze", 0}, {"silver", 500}, {"gold", 2000}};
    r->ntiers = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(r->tiers[i].name, sizeof r->tiers[i].name, "%s", tiers[i].name);
        r->tiers[i].min_points = tiers[i].min;
    }
}

static int parse_tiers(json_t *arr, journey_rules *r, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > JOURNEY_MAX_TIERS)
        return ls_fail(err, errlen, LS_EPARSE, "model file: journey.loyalty.tiers must be 1 to %d {name, min_points}", JOURNEY_MAX_TIERS);
    r->ntiers = (int)json_array_size(arr);
    for (int i = 0; i < r->ntiers; i++) {
        json_t *t = json_array_get(arr, (size_t)i);
        json_t *name = json_object_get(t, "name"), *min = json_object_get(t, "min_points");
        if (!json_is_string(name) || json_string_length(name) >= sizeof r->tiers[i].name || !json_is_number(min))
            return ls_fail(err, errlen, LS_EPARSE, "model file: journey.loyalty.tiers[%d] needs a short name and min_points", i);
        snprintf(r->tiers[i].name, sizeof r->tiers[i].name, "%s", json_string_value(name));
        r->tiers[i].min_points = json_number_value(min);
        if (i > 0 && r->tiers[i].min_points <= r->tiers[i - 1].min_points)
            return ls_fail(err, errlen, LS_EPARSE, "model file: journey.loyalty.tiers must ascend by min_points");
    }
    return LS_OK;
}

static int parse_group(json_t *grp, const char *group, journey_rules *r, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(grp, key, v) {
        if (strcmp(group, "loyalty") == 0 && strcmp(key, "tiers") == 0) {
            int rc = parse_tiers(v, r, err, errlen);
            if (rc)
                return rc;
            continue;
        }
        size_t i = 0;
        while (i < N_RULES && !(strcmp(rule_keys[i].group, group) == 0 && strcmp(rule_keys[i].key, key) == 0))
            i++;
        if (i == N_RULES)
            return ls_fail(err, errlen, LS_EPARSE, "model file: unknown rule journey.%s.%s", group, key);
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
            return ls_fail(err, errlen, LS_EPARSE, "model file: journey.%s.%s must be a number >= 0", group, key);
        *(double *)((char *)r + rule_keys[i].off) = json_number_value(v);
    }
    return LS_OK;
}

int journey_parse(json_t *obj, journey_rules *r, char *err, size_t errlen)
{
    static const char *const groups[] = {"types", "phases", "loyalty", "actions"};
    const char *key;
    json_t *v;
    journey_defaults(r);
    if (!obj)
        return LS_OK;
    if (!json_is_object(obj))
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"journey\" must be an object");
    json_object_foreach(obj, key, v) {
        size_t g = 0;
        while (g < 4 && strcmp(groups[g], key) != 0)
            g++;
        if (g == 4)
            return ls_fail(err, errlen, LS_EPARSE, "model file: unknown journey section \"%s\" (types, phases, loyalty, actions)", key);
        if (!json_is_object(v))
            return ls_fail(err, errlen, LS_EPARSE, "model file: journey.%s must be an object", key);
        int rc = parse_group(v, groups[g], r, err, errlen);
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */

static double days_since(int64_t now, int64_t then)
{
    return then ? (double)(now - then) / MS_PER_DAY : INFINITY;
}

/* A buyer silent for lapsed_days since the last purchase, whatever
 * P(alive) says (BG/NBD gives a one-time buyer P(alive) = 1 forever). */
static int lapsed(const journey_rules *r, const ls_features *f, const journey_inputs *in)
{
    return f->count[EV_PURCHASE] > 0 && r->lapsed_days > 0 &&
           days_since(in->now_ms, f->last_purchase_ms) >= r->lapsed_days;
}

/* Repeat buying is counted in purchase days (purchase_days: distinct UTC
 * days with an order, BG/NBD's transactions), so three orders on one day
 * are one occasion: a new customer on the day, never a regular. */
static journey_type type_of(const journey_rules *r, const ls_features *f, const journey_inputs *in)
{
    double days = f->purchase_days;
    double net = f->spend - f->refunded;
    double share = f->spend > 0 ? f->discounted_spend / f->spend : 0;
    if (f->count[EV_PURCHASE] == 0)
        return JT_PROSPECT;
    if (in->clv >= r->big_spender_min_clv || net >= r->big_spender_min_spend)
        return JT_BIG_SPENDER;
    if (days >= r->sale_hunter_min_purchases && share >= r->sale_hunter_min_share)
        return JT_SALE_HUNTER;
    if (days >= r->regular_min_purchases && in->p_alive >= r->regular_min_p_alive && !lapsed(r, f, in))
        return JT_REGULAR;
    if (days <= 1 && days_since(in->now_ms, f->first_purchase_ms) <= r->new_max_days)
        return JT_NEW;
    return JT_OCCASIONAL;
}

/* Phases and actions count repeat buying in purchase days too: orders
 * on one day are a first purchase, not trust, and no loyal customer. */
static journey_phase phase_of(const journey_rules *r, const ls_features *f, const journey_inputs *in)
{
    double purchase_days = f->purchase_days;
    if (f->count[EV_PURCHASE] == 0)
        return JP_PROSPECT;
    int hurt = f->last_negative_ms && days_since(in->now_ms, f->last_negative_ms) <= r->disappointment_days;
    int lapsing = purchase_days >= 2 && in->p_alive < r->lapsing_max_p_alive;
    if (hurt || lapsing || lapsed(r, f, in))
        return JP_DISAPPOINTMENT;
    int advocacy = (r->advocate_min_shares > 0 && f->share_days >= r->advocate_min_shares) ||
                   (r->advocate_min_good_reviews > 0 && f->good_reviews >= r->advocate_min_good_reviews);
    if (advocacy && purchase_days >= r->advocate_min_purchases)
        return JP_IDENTIFICATION;
    return purchase_days >= 2 ? JP_TRUST : JP_ILLUSION;
}

/* Purchases earn points by net value; reviews, shares and referrals at
 * most once a day each (review_days, share_days), and all of those plus
 * the sign-up at most engagement_max_points, so points cannot be farmed
 * by repeating a free action. */
static int64_t points_of(const journey_rules *r, const ls_features *f)
{
    double net = f->spend - f->refunded;
    double referrals = f->count[EV_REFERRAL] < f->share_days ? f->count[EV_REFERRAL] : f->share_days;
    double engagement = r->points_per_review * f->review_days +
                        r->points_per_share * (f->share_days - referrals) + r->points_per_referral * referrals +
                        r->points_per_signup * (f->count[EV_SIGNUP] > 0);
    if (r->engagement_max_points > 0 && engagement > r->engagement_max_points)
        engagement = r->engagement_max_points;
    return (int64_t)floor(r->points_per_currency * (net > 0 ? net : 0) + engagement);
}

static const char *tier_of(const journey_rules *r, int64_t points)
{
    const char *tier = r->ntiers ? r->tiers[0].name : "";
    for (int i = 0; i < r->ntiers; i++)
        if ((double)points >= r->tiers[i].min_points)
            tier = r->tiers[i].name;
    return tier;
}

static int date_within(int64_t now_ms, int month, int day, double ahead)
{
    return month >= 1 && timefmt_days_until(now_ms, month, day) <= ahead;
}

static unsigned actions_of(const journey_rules *r, const ls_features *f, const journey_inputs *in,
                           journey_phase phase)
{
    unsigned a = 0;
    double purchase_days = f->purchase_days;
    int bought = f->count[EV_PURCHASE] > 0;
    double cart_age_h = days_since(in->now_ms, f->last_cart_ms) * 24.0;
    if (feature_cart_is_open(f) && cart_age_h >= r->cart_min_hours && cart_age_h <= r->cart_max_days * 24.0)
        a |= 1u << JA_ABANDONED_CART;
    if ((purchase_days >= r->winback_min_purchases &&
         (in->p_alive < r->winback_max_p_alive || days_since(in->now_ms, f->last_purchase_ms) >= r->winback_min_days)) ||
        lapsed(r, f, in))
        a |= 1u << JA_WIN_BACK;
    if (f->birthday_mmdd && date_within(in->now_ms, f->birthday_mmdd / 100, f->birthday_mmdd % 100, r->birthday_days_ahead))
        a |= 1u << JA_BIRTHDAY;
    if (f->first_purchase_ms && days_since(in->now_ms, f->first_purchase_ms) >= 300) {
        int64_t y;
        int m, d;
        timefmt_civil(f->first_purchase_ms, &y, &m, &d);
        if (date_within(in->now_ms, m, d, r->anniversary_days_ahead))
            a |= 1u << JA_ANNIVERSARY;
    }
    if (bought && in->clv >= r->vip_min_clv)
        a |= 1u << JA_VIP_REWARD;
    double since_buy = days_since(in->now_ms, f->last_purchase_ms);
    if (bought && since_buy >= r->review_min_days && since_buy <= r->review_max_days &&
        f->last_review_ms < f->last_purchase_ms)
        a |= 1u << JA_REVIEW_REQUEST;
    if (phase == JP_DISAPPOINTMENT)
        a |= 1u << JA_RECOVERY;
    if (bought && f->count[EV_SIGNUP] == 0)
        a |= 1u << JA_ACCOUNT_INVITE;
    return a;
}

void journey_eval(const journey_rules *r, const ls_features *f, const journey_inputs *in, journey_result *out)
{
    out->type = type_of(r, f, in);
    out->phase = phase_of(r, f, in);
    out->loyalty_points = points_of(r, f);
    out->loyalty_tier = tier_of(r, out->loyalty_points);
    out->actions = actions_of(r, f, in, out->phase);
}
