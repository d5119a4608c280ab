/* nextaction.c -- next best action: each flagged journey action valued as
 * P(it pays off) x what it is worth, ranked, with a reason (the rule and
 * its table are in nextaction.h).  Pure arithmetic on one record and its
 * assessment: no allocation, no I/O. */
#include "nextaction.h"

#include <math.h>
#include <string.h>

#include "leadscore/error.h"
#include "textfmt.h"
#include "timefmt.h"

#define MS_PER_HOUR 3600000.0
#define MS_PER_DAY 86400000.0

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* Reasons are built piece by piece with textfmt.h, which gives the bytes
 * snprintf would give for the format written above each rule: a reason
 * longer than its buffer is cut, on purpose (every reason fits
 * NEXTACTION_REASON_MAX with money below NEXTACTION_MAX_STAKE; the cut
 * only guards odd records).  No printf on the score path. */

/* "; readiness %.2f" and "; P(alive) %.2f", the usual endings. */
static void end_readiness(textfmt *t, double s)
{
    textfmt_lit(t, "; readiness ");
    textfmt_fixed(t, s, 2);
}

static void end_alive(textfmt *t, double alive)
{
    textfmt_lit(t, "; P(alive) ");
    textfmt_fixed(t, alive, 2);
}

/* "; average order %.2f; readiness %.2f" */
static void end_order(textfmt *t, double order, double s)
{
    textfmt_lit(t, "; average order ");
    textfmt_fixed(t, order, 2);
    end_readiness(t, s);
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

/* The Gamma-Gamma mean order value, computed once at load
 * (assess_consts.mean_order: 0 when q <= 1). */
static double population_order(const model *m)
{
    return m ? money(model_assess_consts(m)->mean_order) : 0.0;
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
    textfmt t = textfmt_begin(in->clv_label, sizeof in->clv_label);
    if (h > 0 && h < 1e6) {    /* "%.0f-day value" */
        textfmt_fixed(&t, h, 0);
        textfmt_lit(&t, "-day value");
    } else {
        textfmt_lit(&t, "expected value");
    }
    textfmt_end(&t, in->clv_label);
}

/* ------------------------------------------------------------------ */
/* Pieces of reasons                                                   */
/* ------------------------------------------------------------------ */

/* "3 h" below two days, else "5 days" / "1 day"; a time in the future or
 * never (then_ms 0) reads as 0 h. */
static void age_text(textfmt *t, int64_t now_ms, int64_t then_ms)
{
    double ms = then_ms && now_ms > then_ms ? (double)(now_ms - then_ms) : 0.0;
    if (ms < 48 * MS_PER_HOUR) {     /* "%.0f h" */
        textfmt_fixed(t, floor(ms / MS_PER_HOUR), 0);
        textfmt_lit(t, " h");
        return;
    }
    double days = floor(ms / MS_PER_DAY);
    textfmt_fixed(t, days, 0);       /* "%.0f day%s" */
    if (days == 1)
        textfmt_lit(t, " day");
    else
        textfmt_lit(t, " days");
}

static void in_days_text(textfmt *t, int days)
{
    if (days == 0) {
        textfmt_lit(t, "today");
    } else if (days == 1) {
        textfmt_lit(t, "tomorrow");
    } else {                         /* "in %d days" */
        textfmt_lit(t, "in ");
        textfmt_int(t, days);
        textfmt_lit(t, " days");
    }
}

static int valid_mmdd(int mmdd) { return mmdd / 100 >= 1 && mmdd / 100 <= 12 && mmdd % 100 >= 1 && mmdd % 100 <= 31; }

/* ------------------------------------------------------------------ */
/* One rule per action                                                 */
/* ------------------------------------------------------------------ */

/* Each rule's format is written above it; the pieces of text (ages,
 * dates, the clv label) are short enough (under 32 bytes) that none was
 * ever cut before being copied into the reason. */

/* "cart of %.2f open %s; readiness %.2f" or
 * "cart without prices open %s; average order %.2f; readiness %.2f" */
static void rule_cart(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->s;
    if (in->cart > 0) {
        it->stake = in->cart;
        textfmt_lit(&t, "cart of ");
        textfmt_fixed(&t, in->cart, 2);
        textfmt_lit(&t, " open ");
        age_text(&t, now, f->last_cart_ms);
        end_readiness(&t, in->s);
    } else {
        it->stake = in->order;
        textfmt_lit(&t, "cart without prices open ");
        age_text(&t, now, f->last_cart_ms);
        end_order(&t, in->order, in->s);
    }
    textfmt_end(&t, it->reason);
}

/* "no order for %s; average order %.2f; readiness %.2f" or
 * "no order on record; average order %.2f; readiness %.2f" */
static void rule_win_back(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->s;
    it->stake = in->order;
    if (f->last_purchase_ms) {
        textfmt_lit(&t, "no order for ");
        age_text(&t, now, f->last_purchase_ms);
    } else {
        textfmt_lit(&t, "no order on record");
    }
    end_order(&t, in->order, in->s);
    textfmt_end(&t, it->reason);
}

/* "birthday %s; average order %.2f; readiness %.2f", %s "soon" when the
 * date is not valid */
static void rule_birthday(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->s;
    it->stake = in->order;
    textfmt_lit(&t, "birthday ");
    if (valid_mmdd(f->birthday_mmdd))
        in_days_text(&t, timefmt_days_until(now, f->birthday_mmdd / 100, f->birthday_mmdd % 100));
    else
        textfmt_lit(&t, "soon");
    end_order(&t, in->order, in->s);
    textfmt_end(&t, it->reason);
}

/* "anniversary of the first order soon; average order %.2f; readiness %.2f" or
 * "anniversary of the first order (%lld year%s) %s; average order %.2f; readiness %.2f" */
static void rule_anniversary(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->s;
    it->stake = in->order;
    if (!f->first_purchase_ms || f->first_purchase_ms > now) {
        textfmt_lit(&t, "anniversary of the first order soon");
        end_order(&t, in->order, in->s);
        textfmt_end(&t, it->reason);
        return;
    }
    int64_t y, y_first;
    int m, d;
    timefmt_civil(f->first_purchase_ms, &y_first, &m, &d);
    int days = timefmt_days_until(now, m, d);
    timefmt_civil(now + (int64_t)days * 86400000LL, &y, &m, &d);
    long long years = (long long)(y - y_first);
    textfmt_lit(&t, "anniversary of the first order (");
    textfmt_int(&t, years);
    if (years == 1)
        textfmt_lit(&t, " year) ");
    else
        textfmt_lit(&t, " years) ");
    in_days_text(&t, days);
    end_order(&t, in->order, in->s);
    textfmt_end(&t, it->reason);
}

/* "%s %.2f, %.0f%% credited to a reward; P(alive) %.2f" (label, clv, share) */
static void rule_vip(const inputs *in, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->alive;
    it->stake = NEXTACTION_VIP_SHARE * in->clv;
    textfmt_str(&t, in->clv_label);
    textfmt_char(&t, ' ');
    textfmt_fixed(&t, in->clv, 2);
    textfmt_lit(&t, ", ");
    textfmt_fixed(&t, 100 * NEXTACTION_VIP_SHARE, 0);
    textfmt_lit(&t, "% credited to a reward");
    end_alive(&t, in->alive);
    textfmt_end(&t, it->reason);
}

/* "%.0f%% of %s %.2f" (share, label, clv) */
static void share_of_value(textfmt *t, double share, const inputs *in)
{
    textfmt_fixed(t, 100 * share, 0);
    textfmt_lit(t, "% of ");
    textfmt_str(t, in->clv_label);
    textfmt_char(t, ' ');
    textfmt_fixed(t, in->clv, 2);
}

/* "ordered %s ago, no review since; %.0f%% of %s %.2f; P(alive) %.2f" */
static void rule_review(const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->alive;
    it->stake = NEXTACTION_REVIEW_SHARE * in->clv;
    textfmt_lit(&t, "ordered ");
    age_text(&t, now, f->last_purchase_ms);
    textfmt_lit(&t, " ago, no review since; ");
    share_of_value(&t, NEXTACTION_REVIEW_SHARE, in);
    end_alive(&t, in->alive);
    textfmt_end(&t, it->reason);
}

/* What put the customer in the disappointment phase, in journey.c's order:
 * "refund, bad review or ticket %s ago", "repeat buyer lapsing",
 * "no order for %s" or "disappointed". */
static void recovery_cause(const model *m, const ls_features *f, const inputs *in, int64_t now, textfmt *t)
{
    journey_rules defaults;
    const journey_rules *r = m ? model_journey(m) : NULL;
    if (!r) {
        journey_defaults(&defaults);
        r = &defaults;
    }
    if (f->last_negative_ms && (double)(now - f->last_negative_ms) <= r->disappointment_days * MS_PER_DAY) {
        textfmt_lit(t, "refund, bad review or ticket ");
        age_text(t, now, f->last_negative_ms);
        textfmt_lit(t, " ago");
    } else if (f->count[EV_PURCHASE] >= 2 && in->alive < r->lapsing_max_p_alive) {
        textfmt_lit(t, "repeat buyer lapsing");
    } else if (f->last_purchase_ms) {
        textfmt_lit(t, "no order for ");
        age_text(t, now, f->last_purchase_ms);
    } else {
        textfmt_lit(t, "disappointed");
    }
}

/* "%s; %s %.2f at risk; P(alive) %.2f" (cause, label, clv) */
static void rule_recovery(const model *m, const ls_features *f, const inputs *in, int64_t now, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    it->p = in->alive;
    it->stake = in->clv;
    recovery_cause(m, f, in, now, &t);
    textfmt_lit(&t, "; ");
    textfmt_str(&t, in->clv_label);
    textfmt_char(&t, ' ');
    textfmt_fixed(&t, in->clv, 2);
    textfmt_lit(&t, " at risk");
    end_alive(&t, in->alive);
    textfmt_end(&t, it->reason);
}

/* "%u order%s without an account; %.0f%% of %s %.2f; readiness %.2f" */
static void rule_invite(const ls_features *f, const inputs *in, nextaction_item *it)
{
    textfmt t = textfmt_begin(it->reason, sizeof it->reason);
    unsigned orders = f->count[EV_PURCHASE];
    it->p = in->s;
    it->stake = NEXTACTION_INVITE_SHARE * in->clv;
    textfmt_uint(&t, orders);
    if (orders == 1)
        textfmt_lit(&t, " order without an account; ");
    else
        textfmt_lit(&t, " orders without an account; ");
    share_of_value(&t, NEXTACTION_INVITE_SHARE, in);
    end_readiness(&t, in->s);
    textfmt_end(&t, it->reason);
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
    if (!it->reason[0]) {
        textfmt t = textfmt_begin(it->reason, sizeof it->reason);
        textfmt_str(&t, journey_action_name(act));
        textfmt_end(&t, it->reason);
    }
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
        CW_KEY(w, "action");
        cw_str(w, journey_action_name(items[i].action));
        CW_KEY(w, "value");
        cw_double(w, items[i].value);
        CW_KEY(w, "p");
        cw_double(w, items[i].p);
        CW_KEY(w, "stake");
        cw_double(w, items[i].stake);
        CW_KEY(w, "reason");
        cw_str(w, items[i].reason);
        cw_end(w);
    }
    cw_end(w);
}

void nextaction_emit(codec_writer *w, const model *m, const ls_features *f, const assess_result *a, int64_t now_ms)
{
    nextaction_item items[JA_COUNT];
    int n = nextaction_rank(m, f, a, now_ms, items);
    CW_KEY(w, "next_actions");
    nextaction_write(w, items, n);
}
