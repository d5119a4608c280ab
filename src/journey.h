/* journey.h -- the marketing reading of a customer: what kind of customer
 * (type), where in the loyalty journey (phase), loyalty points and tier,
 * and which moments are worth a message now (actions).
 *
 * Every threshold and weight comes from the "journey" section of the model
 * file (journey_parse); the defaults below apply to keys it leaves out, and
 * unknown keys are an error.  journey_eval is pure: the same record, time
 * and BG/NBD figures always give the same answer. */
#ifndef LS_JOURNEY_H
#define LS_JOURNEY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "feature.h"

#define JOURNEY_TYPE_MAP(X) \
    X(PROSPECT, "prospect") X(NEW, "new") X(OCCASIONAL, "occasional") \
    X(REGULAR, "regular") X(BIG_SPENDER, "big_spender") X(SALE_HUNTER, "sale_hunter")

#define JOURNEY_PHASE_MAP(X) \
    X(PROSPECT, "prospect") X(ILLUSION, "illusion") X(TRUST, "trust") \
    X(IDENTIFICATION, "identification") X(DISAPPOINTMENT, "disappointment")

#define JOURNEY_ACTION_MAP(X) \
    X(ABANDONED_CART, "abandoned_cart") X(WIN_BACK, "win_back") X(BIRTHDAY, "birthday") \
    X(ANNIVERSARY, "anniversary") X(VIP_REWARD, "vip_reward") X(REVIEW_REQUEST, "review_request") \
    X(RECOVERY, "recovery") X(ACCOUNT_INVITE, "account_invite")

#define JOURNEY_TYPE_ENUM(sym, name) JT_##sym,
#define JOURNEY_PHASE_ENUM(sym, name) JP_##sym,
#define JOURNEY_ACTION_ENUM(sym, name) JA_##sym,
typedef enum { JOURNEY_TYPE_MAP(JOURNEY_TYPE_ENUM) JT_COUNT } journey_type;
typedef enum { JOURNEY_PHASE_MAP(JOURNEY_PHASE_ENUM) JP_COUNT } journey_phase;
typedef enum { JOURNEY_ACTION_MAP(JOURNEY_ACTION_ENUM) JA_COUNT } journey_action;
#undef JOURNEY_TYPE_ENUM
#undef JOURNEY_PHASE_ENUM
#undef JOURNEY_ACTION_ENUM

#define JOURNEY_MAX_TIERS 8

typedef struct {
    /* types */
    double new_max_days;              /* one purchase day, at most this old: new */
    double regular_min_purchases;     /* purchases on at least this many days ... */
    double regular_min_p_alive;       /* ... and P(alive) at least this, not lapsed: regular */
    double big_spender_min_clv;       /* expected 365-day value at least this */
    double big_spender_min_spend;     /* ... or net spend at least this */
    double sale_hunter_min_share;     /* discounted share of spend at least this ... */
    double sale_hunter_min_purchases; /* ... over purchases on at least this many days */
    /* phases */
    double advocate_min_purchases;    /* an advocate has bought at least this often ... */
    double advocate_min_shares;       /* ... and shared or referred on at least this many days ... */
    double advocate_min_good_reviews; /* ... or written at least this many good reviews (>= 4) */
    double disappointment_days;       /* a refund, bad review or ticket this recent */
    double lapsing_max_p_alive;       /* a repeat buyer below this P(alive) is lapsing */
    double lapsed_days;               /* any buyer silent this long since the last purchase is lapsed */
    /* loyalty programme */
    double points_per_currency, points_per_review, points_per_share, points_per_referral, points_per_signup;
    double engagement_max_points;     /* cap on the points of reviews, shares, referrals and sign-up */
    int ntiers;
    struct {
        char name[32];
        double min_points;
    } tiers[JOURNEY_MAX_TIERS];       /* ascending min_points */
    /* actions */
    double cart_min_hours, cart_max_days;
    double winback_min_purchases, winback_max_p_alive, winback_min_days;
    double birthday_days_ahead, anniversary_days_ahead;
    double vip_min_clv;
    double review_min_days, review_max_days;
} journey_rules;

/* What journey_eval needs besides the record. */
typedef struct {
    int64_t now_ms;
    double p_alive;
    double clv;
} journey_inputs;

typedef struct {
    journey_type type;
    journey_phase phase;
    int64_t loyalty_points;
    const char *loyalty_tier;         /* points into rules->tiers; valid while the rules live */
    unsigned actions;                 /* bit (1u << journey_action) */
} journey_result;

/* The built-in defaults (documented in README.md). */
void journey_defaults(journey_rules *r);

/* Reads the "journey" object (NULL: defaults only).  Returns 0 or
 * LS_EPARSE with the reason in err. */
int journey_parse(json_t *obj, journey_rules *r, char *err, size_t errlen);

/* Reads the record at in->now_ms.  Never fails. */
void journey_eval(const journey_rules *r, const ls_features *f, const journey_inputs *in, journey_result *out);

const char *journey_type_name(journey_type t);
const char *journey_phase_name(journey_phase p);
const char *journey_action_name(journey_action a);

#endif
