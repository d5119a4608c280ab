/* nextaction.c -- next best action: each flagged journey action valued as
 * P(it pays off) x what it is worth, ranked, with a reason (the rule and
 * its table are in nextaction.h).  Pure arithmetic on one record and its
 * assessment: no allocation, no I/O. */
#include "nextaction.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define MS_PER_HOUR 3600000.0
#define MS_PER_DAY 86400000.0

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* snprintf into buf of capacity cap: a reason longer than the buffer is
 * cut, on purpose (every reason fits NEXTACTION_REASON_MAX with money
 * below NEXTACTION_MAX_STAKE; the cut only guards odd records). */
static void say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* The figures every rule reads                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    double s;          /* readiness, 0..1 */
    double alive;      /* P(alive), 0..1 */
    double cart;       /* open cart value */
    double order;      /* average order: the customer's, else the population's */
    double clv;        /* expected value over the clv horizon */
    char clv_label[32]; /* "365-day value" */
} inputs;

static double chance(double p)
{
    return p > 0 ? (p < 1 ? p : 1.0) : 0.0; /* NaN fails p > 0 */
}

static double money(double v)
{
    return v > 0 ? (v < NEXTACTION_MAX_STAKE ? v : NEXTACTION_MAX_STAKE) : 0.0;
}

static double population_order(const model *m)
{
    double mu = 0;
    if (!m || clv_gamma_gamma_expected_spend(&model_clv_params(m)->gamma_gamma, 0, 0, &mu) != LS_OK)
        return 0.0;
    return money(mu);
}

static void read_inputs(const model *m, const ls_features *f, const assess_result *a, inputs *in)
{
    double orders = f->count[EV_PURCHASE];
    in->s = chance(a->logistic.score);
    in->alive = chance(a->p_alive);
    in->cart = money(feature_open_cart(f));
    in->order = orders > 0 && f->spend > 0 ? money(f->spend / orders) : population_order(m);
    in->clv = money(a->clv);
    double h = m ? model_clv_params(m)->horizon_days : 0;
    if (h > 0 && h < 1e6)
        say(in->clv_label, sizeof in->clv_label, "%.0f-day value", h);
    else
        say(in->clv_label, sizeof in->clv_label, "expected value");
}

/* ------------------------------------------------------------------ */
/* Pieces of reasons                                                   */
/* ------------------------------------------------------------------ */

/* "3 h" below two days, else "5 days" / "1 day"; a time in the future or
 * never (then_ms 0) reads as 0 h. */
static void age_text(char *buf, size_t cap, int64_t now_ms, int64_t then_ms)
{
    double ms = then_ms && now_ms > then_ms ? (double)(now_ms - then_ms) : 0.0;
    if (ms < 48 * MS_PER_HOUR) {
        say(buf, cap, "%.0f h", floor(ms / MS_PER_HOUR));
        return;
    }
    double days = floor(ms / MS_PER_DAY);
    say(buf, cap, "%.0f day%s", days, days == 1 ? "" : "s");
}

static void in_days_text(char *buf, size_t cap, int days)
{
    if (days == 0)
        say(buf, cap, "today");
    else if (days == 1)
        say(buf, cap, "tomorrow");
    else
        say(buf, cap, "in %d days", days);
}

static int valid_mmdd(int mmdd) { return mmdd / 100 >= 1 && mmdd / 100 <= 12 && mmdd % 100 >= 1 && mmdd % 100 <= 31; }

/* ------------------------------------------------------------------ */
/* One rule per action                                                 */
/* ------------------------------------------------------------------ */

static void rule_cart(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    char age[32];
    age_text(age, sizeof age, now, f->last_cart_ms);
    it->p = in->s;
    if (in->cart > 0) {
        it->stake = in->cart;
        say(it->reason, sizeof it->reason, "cart of %.2f open %s; readiness %.2f", in->cart, age, in->s);
    } else {
        it->stake = in->order;
        say(it->reason, sizeof it->reason, "cart without prices open %s; average order %.2f; readiness %.2f",
            age, in->order, in->s);
    }
}

static void rule_win_back(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    char age[32];
    it->p = in->s;
    it->stake = in->order;
    if (f->last_purchase_ms) {
        age_text(age, sizeof age, now, f->last_purchase_ms);
        say(it->reason, sizeof it->reason, "no order for %s; average order %.2f; readiness %.2f", age,
            in->order, in->s);
    } else {
        say(it->reason, sizeof it->reason, "no order on record; average order %.2f; readiness %.2f", in->order,
            in->s);
    }
}

static void rule_birthday(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    char when[32] = "soon";
    it->p = in->s;
    it->stake = in->order;
    if (valid_mmdd(f->birthday_mmdd))
        in_days_text(when, sizeof when, timefmt_days_until(now, f->birthday_mmdd / 100, f->birthday_mmdd % 100));
    say(it->reason, sizeof it->reason, "birthday %s; average order %.2f; readiness %.2f", when, in->order, in->s);
}

static void rule_anniversary(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    it->p = in->s;
    it->stake = in->order;
    if (!f->first_purchase_ms || f->first_purchase_ms > now) {
        say(it->reason, sizeof it->reason, "anniversary of the first order soon; average order %.2f; readiness %.2f",
            in->order, in->s);
        return;
    }
    int64_t y, y_first;
    int m, d;
    char when[24];
    timefmt_civil(f->first_purchase_ms, &y_first, &m, &d);
    int days = timefmt_days_until(now, m, d);
    in_days_text(when, sizeof when, days);
    timefmt_civil(now + (int64_t)days * 86400000LL, &y, &m, &d);
    long long years = (long long)(y - y_first);
    say(it->reason, sizeof it->reason,
        "anniversary of the first order (%lld year%s) %s; average order %.2f; readiness %.2f", years,
        years == 1 ? "" : "s", when, in->order, in->s);
}

static void rule_vip(const inputs *in, nextaction_item *it)
{
    it->p = in->alive;
    it->stake = NEXTACTION_VIP_SHARE * in->clv;
    say(it->reason, sizeof it->reason, "%s %.2f, %.0f%% credited to a reward; P(alive) %.2f", in->clv_label,
        in->clv, 100 * NEXTACTION_VIP_SHARE, in->alive);
}

static void rule_review(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    char age[32];
    age_text(age, sizeof age, now, f->last_purchase_ms);
    it->p = in->alive;
    it->stake = NEXTACTION_REVIEW_SHARE * in->clv;
    say(it->reason, sizeof it->reason, "ordered %s ago, no review since; %.0f%% of %s %.2f; P(alive) %.2f", age,
        100 * NEXTACTION_REVIEW_SHARE, in->clv_label, in->clv, in->alive);
}

/* What put the customer in the disappointment phase, in journey.c's order. */
static void recovery_cause(const model *m, const ls_features *f, const inputs *in, int64_t now, char *buf, size_t cap)
{
    journey_rules defaults;
    const journey_rules *r = m ? model_journey(m) : NULL;
    char age[32];
    if (!r) {
        journey_defaults(&defaults);
        r = &defaults;
    }
    if (f->last_negative_ms && (double)(now - f->last_negative_ms) <= r->disappointment_days * MS_PER_DAY) {
        age_text(age, sizeof age, now, f->last_negative_ms);
        say(buf, cap, "refund, bad review or ticket %s ago", age);
    } else if (f->count[EV_PURCHASE] >= 2 && in->alive < r->lapsing_max_p_alive) {
        say(buf, cap, "repeat buyer lapsing");
    } else if (f->last_purchase_ms) {
        age_text(age, sizeof age, now, f->last_purchase_ms);
        say(buf, cap, "no order for %s", age);
    } else {
        say(buf, cap, "disappointed");
    }
}

static void rule_recovery(const model *m, const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    char cause[64];
    recovery_cause(m, f, in, now, cause, sizeof cause);
    it->p = in->alive;
    it->stake = in->clv;
    say(it->reason, sizeof it->reason, "%s; %s %.2f at risk; P(alive) %.2f", cause, in->clv_label, in->clv,
        in->alive);
}

static void rule_invite(const ls_features *f, const inputs *in, nextaction_item *it)
{
    unsigned orders = f->count[EV_PURCHASE];
    it->p = in->s;
    it->stake = NEXTACTION_INVITE_SHARE * in->clv;
    say(it->reason, sizeof it->reason, "%u order%s without an account; %.0f%% of %s %.2f; readiness %.2f",
        orders, orders == 1 ? "" : "s", 100 * NEXTACTION_INVITE_SHARE, in->clv_label, in->clv, in->s);
}

static void value_of(const model *m, const ls_features *f, const inputs *in, int64_t now, journey_action act,
                     nextaction_item *it)
{
    it->action = act;
    it->p = it->stake = 0;
    it->reason[0] = '\0';
    switch (act) {
    case JA_ABANDONED_CART: rule_cart(f, in, now, it); break;
    case JA_WIN_BACK: rule_win_back(f, in, now, it); break;
    case JA_BIRTHDAY: rule_birthday(f, in, now, it); break;
    case JA_ANNIVERSARY: rule_anniversary(f, in, now, it); break;
    case JA_VIP_REWARD: rule_vip(in, it); break;
    case JA_REVIEW_REQUEST: rule_review(f, in, now, it); break;
    case JA_RECOVERY: rule_recovery(m, f, in, now, it); break;
    case JA_ACCOUNT_INVITE: rule_invite(f, in, it); break;
    case JA_COUNT: break;
    }
    it->p = chance(it->p);
    it->stake = money(it->stake);
    it->value = round(it->p * it->stake * 100.0) / 100.0; /* cents: equal products tie exactly */
    if (!it->reason[0])
        say(it->reason, sizeof it->reason, "%s", journey_action_name(act));
}

/* ------------------------------------------------------------------ */
/* Ranking and writing                                                 */
/* ------------------------------------------------------------------ */

int nextaction_rank(const model *m, const ls_features *f, const assess_result *a, int64_t now_ms,
                    nextaction_item out[JA_COUNT])
{
    inputs in;
    int n = 0;
    read_inputs(m, f, a, &in);
    for (int act = 0; act < JA_COUNT; act++) {
        if (!(a->journey.actions & (1u << act)))
            continue;
        nextaction_item it;
        value_of(m, f, &in, now_ms, (journey_action)act, &it);
        /* stable insertion: an equal value stays behind the earlier action */
        int i = n++;
        while (i > 0 && out[i - 1].value < it.value) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = it;
    }
    return n;
}

void nextaction_write(codec_writer *w, const nextaction_item *items, int n)
{
    cw_array(w);
    for (int i = 0; i < n; i++) {
        cw_map(w);
        cw_key(w, "action");
        cw_str(w, journey_action_name(items[i].action));
        cw_key(w, "value");
        cw_double(w, items[i].value);
        cw_key(w, "p");
        cw_double(w, items[i].p);
        cw_key(w, "stake");
        cw_double(w, items[i].stake);
        cw_key(w, "reason");
        cw_str(w, items[i].reason);
        cw_end(w);
    }
    cw_end(w);
}

void nextaction_emit(codec_writer *w, const model *m, const ls_features *f, const assess_result *a, int64_t now_ms)
{
    nextaction_item items[JA_COUNT];
    int n = nextaction_rank(m, f, a, now_ms, items);
    cw_key(w, "next_actions");
    nextaction_write(w, items, n);
}
