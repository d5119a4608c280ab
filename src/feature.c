/* feature.c -- folding events into a customer's feature record, decaying
 * it in time, encoding it for the store, and naming its values for models.
 * The decay scheme is explained at the top of feature.h. */
#include "feature.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "bytecur.h"
#include "leadscore/error.h"

#define MS_PER_DAY 86400000.0
/* The slice of the clock a visit without a session id counts as a
 * session of (sliced_session_hash). */
#ifndef SESSION_SLICE_MS
#define SESSION_SLICE_MS (30 * 60000LL)
#endif

/* How much one event of each type says about interest in its category. */
static const double category_weight[EV_TYPE_COUNT] = {
    [EV_PAGE_VIEW] = 0.5, [EV_PRODUCT_VIEW] = 1.0, [EV_SEARCH] = 0.5,
    [EV_ADD_TO_CART] = 2.0, [EV_CHECKOUT] = 2.0, [EV_PURCHASE] = 3.0,
    [EV_REVIEW] = 1.0, [EV_SHARE] = 1.0,
};

double feature_decay_factor(int64_t dt_ms, int64_t half_life_ms)
{
    if (dt_ms <= 0 || half_life_ms <= 0)
        return 1.0;
    return exp2(-(double)dt_ms / (double)half_life_ms);
}

void feature_init(ls_features *f)
{
    memset(f, 0, sizeof *f);
}

int feature_empty(const ls_features *f)
{
    return f->first_seen_ms == 0 && f->last_seen_ms == 0;
}

/* ------------------------------------------------------------------ */
/* Folding events in                                                   */
/* ------------------------------------------------------------------ */

/* Moves every decayed value from the current anchor to new_anchor. */
static void move_anchor(ls_features *f, int64_t new_anchor, const feature_decay *d)
{
    int64_t dt = new_anchor - f->last_seen_ms;
    double ks = feature_decay_factor(dt, d->short_ms);
    double kl = feature_decay_factor(dt, d->long_ms);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        f->recent[i] *= ks;
        f->decayed[i] *= kl;
    }
    f->sessions_recent *= ks;
    f->sessions_decayed *= kl;
    for (int i = 0; i < f->ncategories; i++) {
        f->categories[i].recent *= ks;
        f->categories[i].decayed *= kl;
    }
    f->last_seen_ms = new_anchor;
}

/* Extends [first_seen, last_seen] to cover ts, moving the anchor forward. */
static void cover_time(ls_features *f, int64_t ts, const feature_decay *d)
{
    if (feature_empty(f)) {
        f->first_seen_ms = f->last_seen_ms = ts;
        return;
    }
    if (ts > f->last_seen_ms)
        move_anchor(f, ts, d);
    if (ts < f->first_seen_ms)
        f->first_seen_ms = ts;
}

uint32_t feature_session_hash(const char *s, size_t len)
{
    uint32_t h = bytecur_fnv1a32(s, len);
    return h ? h : 1; /* 0 marks an empty ring slot */
}

/* A storefront visit: a page or product view, a search, a cart change or a
 * checkout. */
static int is_visit(event_type t) { return t >= EV_PAGE_VIEW && t <= EV_CHECKOUT; }

/* Sessions are counted by id, and a session weighs as its latest event.
 * The FEATURE_SESSION_RING most recent sessions (by their latest event)
 * are remembered with that time, so events of those sessions count the
 * session once, and at the same weight, whatever their arrival order.  A
 * session older than all remembered ones, when the ring is full, counts as
 * new.  Refunds and support tickets do not make a visit. */
static int ring_find(const ls_features *f, uint32_t h)
{
    for (int i = 0; i < FEATURE_SESSION_RING; i++)
        if (f->session_ring[i].hash == h)
            return i;
    return -1;
}

/* Remembers session h at ts in the slot of the oldest remembered one,
 * unless ts is older than all of them. */
static void ring_insert(ls_features *f, uint32_t h, int64_t ts)
{
    int slot = -1;
    for (int i = 0; i < FEATURE_SESSION_RING; i++) {
        if (f->session_ring[i].hash == 0) {
            slot = i; /* a free slot */
            break;
        }
        if (slot < 0 || f->session_ring[i].ts_ms < f->session_ring[slot].ts_ms)
            slot = i; /* else the oldest */
    }
    if (f->session_ring[slot].hash != 0 && f->session_ring[slot].ts_ms > ts)
        return;
    f->session_ring[slot].hash = h;
    f->session_ring[slot].ts_ms = ts;
}

static double weight_at(const ls_features *f, int64_t ts, int64_t half_life)
{
    return feature_decay_factor(f->last_seen_ms - ts, half_life);
}

/* The session of a visit sent without a session id: the slice of the UTC
 * clock it falls in, SESSION_SLICE_MS long.  A storefront (or a file)
 * that sends no session ids would otherwise show no sessions at all, and
 * its visitors would lack what the model learnt from sessions; a slice
 * depends on the event's time alone, so the count is the same in any
 * order of arrival and in a replay.  The key begins with a NUL byte,
 * which storefronts' session ids do not hold (one that did would at
 * worst share a session with the visits of one half hour). */
static uint32_t sliced_session_hash(int64_t ts_ms)
{
    int64_t slice = ts_ms / SESSION_SLICE_MS - (ts_ms % SESSION_SLICE_MS < 0);
    uint8_t key[10] = {0, 's'};
    for (int i = 0; i < 8; i++)
        key[2 + i] = (uint8_t)((uint64_t)slice >> (8 * i));
    return feature_session_hash((const char *)key, sizeof key);
}

static void note_session(ls_features *f, const ls_event *ev, const feature_decay *d)
{
    uint32_t h = ev->session_hash;
    if (h == 0 && ev->session.len > 0)
        h = feature_session_hash(ev->session.ptr, ev->session.len);
    if (h == 0 && is_visit(ev->type))
        h = sliced_session_hash(ev->ts_ms);
    if (h == 0)
        return; /* complaints and profile updates never get here: feature_apply_line */
    int i = ring_find(f, h);
    if (i >= 0) {
        int64_t old = f->session_ring[i].ts_ms;
        if (ev->ts_ms > old) {
            f->sessions_recent += weight_at(f, ev->ts_ms, d->short_ms) - weight_at(f, old, d->short_ms);
            f->sessions_decayed += weight_at(f, ev->ts_ms, d->long_ms) - weight_at(f, old, d->long_ms);
            f->session_ring[i].ts_ms = ev->ts_ms;
        }
        return;
    }
    ring_insert(f, h, ev->ts_ms);
    f->sessions++;
    f->sessions_recent += weight_at(f, ev->ts_ms, d->short_ms);
    f->sessions_decayed += weight_at(f, ev->ts_ms, d->long_ms);
}

static int find_category(const ls_features *f, const char *name, size_t len)
{
    for (int i = 0; i < f->ncategories; i++)
        if (f->categories[i].len == len && memcmp(f->categories[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Slot for a category not yet in the table: a free one; else the one the
 * customer shows the least recent interest in (ties: the least long-term
 * interest), if the newcomer's recent weight beats that.  What the
 * customer looks at now displaces what they looked at weeks ago, however
 * much that was, but not what they look at now too: a table filled by
 * heavy browsing a month ago once kept every new category out until that
 * interest had decayed, so today's views counted nowhere.  -1 if none. */
static int category_slot(ls_features *f, double ws)
{
    if (f->ncategories < FEATURE_MAX_CATEGORIES)
        return f->ncategories++;
    int weakest = 0;
    for (int i = 1; i < f->ncategories; i++) {
        const feature_category *c = &f->categories[i], *w = &f->categories[weakest];
        if (c->recent < w->recent || (c->recent == w->recent && c->decayed < w->decayed))
            weakest = i;
    }
    return f->categories[weakest].recent < ws ? weakest : -1;
}

static void add_category(ls_features *f, const char *name, size_t len, uint32_t count,
                         double ws, double wl)
{
    int i = find_category(f, name, len);
    if (i < 0) {
        i = category_slot(f, ws);
        if (i < 0)
            return;
        feature_category *c = &f->categories[i];
        memset(c, 0, sizeof *c);
        c->len = (uint16_t)len;
        memcpy(c->name, name, len);
    }
    f->categories[i].count += count;
    f->categories[i].recent += ws;
    f->categories[i].decayed += wl;
}

/* Keeps the cart events after the last purchase in FEATURE_CART_RING
 * slots.  With the ring full, the oldest slot is dropped when it comes
 * before the last purchase (it no longer counts), else merged into the
 * next oldest (sums, that one's time), so a long cart keeps every item:
 * four adds and three removes leave one item, not none.  The record is
 * the replay of the events in time order (history.h), so the merge does
 * not depend on arrival order.  An event older than every slot, with the
 * ring full, is dropped. */
/* A slot's item count: the ring keeps at most 999 either way. */
static int16_t slot_items(int64_t items)
{
    return (int16_t)(items > 999 ? 999 : items < -999 ? -999 : items);
}

/* The items an add or a removal moves (1 when it names no quantity). */
static int cart_items(const ls_event *ev)
{
    return ev->quantity > 0 ? slot_items(ev->quantity) : 1;
}

static void note_cart(ls_features *f, int64_t ts, double value, int items)
{
    int slot = 0, next = -1;
    for (int i = 1; i < FEATURE_CART_RING; i++)
        if (f->cart[i].ts_ms < f->cart[slot].ts_ms)
            slot = i;
    if (f->cart[slot].ts_ms != 0 && f->cart[slot].ts_ms >= ts)
        return;
    if (f->cart[slot].ts_ms != 0 && f->cart[slot].ts_ms > f->last_purchase_ms) {
        for (int i = 0; i < FEATURE_CART_RING; i++)
            if (i != slot && (next < 0 || f->cart[i].ts_ms < f->cart[next].ts_ms))
                next = i;
        f->cart[next].value += f->cart[slot].value;
        f->cart[next].items = slot_items(f->cart[next].items + f->cart[slot].items);
    }
    f->cart[slot].ts_ms = ts;
    f->cart[slot].value = (float)value;
    f->cart[slot].items = slot_items(items);
}

/* Items and value in the cart since the last purchase. */
static void cart_totals(const ls_features *f, int *items, double *value)
{
    *items = 0;
    *value = 0;
    for (int i = 0; i < FEATURE_CART_RING; i++) {
        if (f->cart[i].ts_ms > f->last_purchase_ms) {
            *items += f->cart[i].items;
            *value += f->cart[i].value;
        }
    }
}

/* A removal takes out at most what the cart holds since the last
 * purchase: an item left from before an order, or added before tracking
 * began, removed now, must not cancel the next cart.  Sent without a
 * price it takes out the cart's average price per item so far, so an
 * emptied cart is worth nothing whatever the removals carry. */
static void remove_from_cart(ls_features *f, const ls_event *ev)
{
    int items = cart_items(ev);
    int held;
    double value, taken;
    cart_totals(f, &held, &value);
    if (items > held)
        items = held > 0 ? held : 0;
    if (value <= 0)
        taken = 0.0;
    else if (ev->value > 0)
        taken = ev->value < value ? ev->value : value;
    else
        taken = held > 0 ? value * (double)items / (double)held : value;
    if (items == 0 && taken == 0.0)
        return; /* nothing in the cart to take out */
    note_cart(f, ev->ts_ms, -taken, -items);
}

/* A checkout stamped this soon after an order is taken for that order's
 * (the storefront's and the order system's clocks disagree), not for a
 * basket of its own. */
#define CHECKOUT_OF_THE_ORDER_MS (30 * 60000LL)

/* 1 when a checkout at checkout_ms belongs to the last order: before it,
 * or within CHECKOUT_OF_THE_ORDER_MS after it. */
static int checkout_of_the_last_order(const ls_features *f, int64_t checkout_ms)
{
    return f->last_purchase_ms && checkout_ms - f->last_purchase_ms < CHECKOUT_OF_THE_ORDER_MS;
}

/* A checkout pays for a basket: one begun while the cart holds nothing
 * since the last order (a storefront that sends no add_to_cart, or a cart
 * added before tracking began) puts that basket in the cart -- its value
 * and quantity (1 item when it names none) -- so the checkout reads as a
 * cart at least: open, worth what it carries, and abandoned when no order
 * follows.  A checkout of a cart already open leaves the cart as it is, and
 * so does one within CHECKOUT_OF_THE_ORDER_MS after an order. */
static void checkout_basket(ls_features *f, const ls_event *ev)
{
    int held;
    double value;
    if (checkout_of_the_last_order(f, ev->ts_ms))
        return; /* the checkout of the order just placed, stamped after it (clocks apart) */
    cart_totals(f, &held, &value);
    if (held > 0 || value > 0.005)
        return;
    note_cart(f, ev->ts_ms, ev->value > 0 ? ev->value : 0.0, cart_items(ev));
    if (ev->ts_ms > f->last_cart_ms)
        f->last_cart_ms = ev->ts_ms;
}

/* The storefront's own events: views, searches, the cart, the checkout. */

/* A checkout not completed: there is one, and it is not the last order's. */
static int checkout_is_open(const ls_features *f)
{
    return f->last_checkout_ms != 0 && !checkout_of_the_last_order(f, f->last_checkout_ms);
}

int feature_has_visit(const ls_features *f)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++)
        if (is_visit((event_type)t) && f->count[t] > 0)
            return 1;
    return 0;
}

/* What a record that does not store first_visit_ms takes for it: its
 * first event when it has a visit (so a record of a version before 7 is
 * never read as a buyer whose orders came first), else none. */
static int64_t first_visit_stand_in(const ls_features *f)
{
    return feature_has_visit(f) ? f->first_seen_ms : 0;
}

int feature_orders_before_visits(const ls_features *f)
{
    return f->first_purchase_ms != 0 && f->first_visit_ms != 0 && f->first_purchase_ms < f->first_visit_ms;
}

/* v rounded to 7 significant digits, what a 32-bit float holds: the cart
 * keeps its values as floats, so a cart of 89.9 sums to 89.9000015...;
 * rounded, it is 89.9 again, and a rule `open_cart_value == 89.9` (or
 * `<= 89.9`) holds for it. */
static double float_decimal(double v)
{
    /* 10^k for k = -15 .. 15: found by bisection, no log10 or pow on the
     * scoring path (a cart outside this range is left as it is) */
    static const double p10[] = {1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5,
                                 1e-4,  1e-3,  1e-2,  1e-1,  1e0,   1e1,   1e2,  1e3,  1e4,  1e5,  1e6,
                                 1e7,   1e8,   1e9,   1e10,  1e11,  1e12,  1e13, 1e14, 1e15};
    enum { N = sizeof p10 / sizeof p10[0], ZERO = 15 };
    double a = fabs(v);
    if (!(a >= p10[0] && a < p10[N - 1]))
        return v;
    int lo = 0, hi = N - 1; /* p10[lo] <= a < p10[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (p10[mid] <= a)
            lo = mid;
        else
            hi = mid;
    }
    int shift = 6 - (lo - ZERO); /* 7 significant digits: a x 10^shift has 7 before the point */
    if (shift >= 0 && shift <= ZERO)
        return round(v * p10[ZERO + shift]) / p10[ZERO + shift];
    if (shift < 0 && -shift <= ZERO)
        return round(v / p10[ZERO - shift]) * p10[ZERO - shift];
    return v;
}

double feature_open_cart(const ls_features *f)
{
    int items;
    double v;
    cart_totals(f, &items, &v);
    return v > 0.005 ? float_decimal(v) : 0.0;
}

int feature_cart_is_open(const ls_features *f)
{
    int items;
    double v;
    cart_totals(f, &items, &v);
    return f->last_cart_ms > f->last_purchase_ms && (items > 0 || v > 0.005);
}

static void note_negative(ls_features *f, int64_t ts)
{
    if (ts > f->last_negative_ms)
        f->last_negative_ms = ts;
}

static int64_t utc_day(int64_t ms)
{
    return ms >= 0 ? ms / 86400000LL : -((-ms + 86400000LL - 1) / 86400000LL);
}

/* A purchase line: value and units always count; a new purchase day is a
 * BG/NBD transaction; the first day's value is Gamma-Gamma's first
 * transaction. */
static void apply_purchase(ls_features *f, const ls_event *ev)
{
    int64_t day = utc_day(ev->ts_ms);
    f->spend += ev->value;
    if (ev->discounted)
        f->discounted_spend += ev->value;
    f->purchase_lines++;
    f->purchase_units += ev->quantity > 0 && ev->quantity < UINT32_MAX ? (uint32_t)ev->quantity : 1;
    if (f->first_purchase_ms == 0) {
        f->purchase_days = 1;
        f->first_purchase_ms = f->last_purchase_ms = ev->ts_ms;
        f->first_purchase_value = ev->value;
        return;
    }
    if (day == utc_day(f->first_purchase_ms))
        f->first_purchase_value += ev->value;
    else if (ev->ts_ms < f->first_purchase_ms) {
        f->first_purchase_value = ev->value; /* out of order: a new first day */
        f->purchase_days++;
    } else if (day != utc_day(f->last_purchase_ms))
        f->purchase_days++;
    if (ev->ts_ms < f->first_purchase_ms)
        f->first_purchase_ms = ev->ts_ms;
    if (ev->ts_ms > f->last_purchase_ms)
        f->last_purchase_ms = ev->ts_ms;
}

static void apply_money(ls_features *f, const ls_event *ev)
{
    switch (ev->type) {
    case EV_PURCHASE:
        apply_purchase(f, ev);
        break;
    case EV_REFUND:
        f->refunded += ev->value;
        note_negative(f, ev->ts_ms);
        break;
    case EV_SUPPORT_TICKET:
        note_negative(f, ev->ts_ms);
        break;
    case EV_ADD_TO_CART:
        note_cart(f, ev->ts_ms, ev->value, cart_items(ev));
        if (ev->ts_ms > f->last_cart_ms)
            f->last_cart_ms = ev->ts_ms;
        break;
    case EV_REMOVE_FROM_CART:
        remove_from_cart(f, ev);
        break;
    case EV_CHECKOUT:
        checkout_basket(f, ev);
        if (ev->ts_ms > f->last_checkout_ms)
            f->last_checkout_ms = ev->ts_ms;
        break;
    case EV_SHARE:
    case EV_REFERRAL:
        /* one a day counts (loyalty points cannot be farmed); exact in time order */
        if (f->last_share_ms == 0 || utc_day(ev->ts_ms) != utc_day(f->last_share_ms))
            f->share_days++;
        if (ev->ts_ms > f->last_share_ms)
            f->last_share_ms = ev->ts_ms;
        break;
    default:
        break;
    }
}

/* A review counts (review_days, last_review_ms) with or without a rating;
 * only a rated one enters the average and the good and bad reviews. */
static void apply_opinion(ls_features *f, const ls_event *ev)
{
    if (ev->type == EV_REVIEW) {
        if (f->last_review_ms == 0 || utc_day(ev->ts_ms) != utc_day(f->last_review_ms))
            f->review_days++;
        if (ev->ts_ms > f->last_review_ms)
            f->last_review_ms = ev->ts_ms;
    }
    if (ev->type == EV_REVIEW && (ev->has & EVF_RATING)) {
        f->rating_sum += (uint32_t)ev->rating;
        f->rating_n++;
        if (ev->rating <= 2) {
            f->bad_reviews++;
            note_negative(f, ev->ts_ms);
        }
        if (ev->rating >= 4)
            f->good_reviews++;
    }
    if ((ev->has & EVF_BIRTHDAY) && (ev->ts_ms > f->birthday_ts_ms || !f->birthday_mmdd ||
                                     (ev->ts_ms == f->birthday_ts_ms && ev->birthday_mmdd > f->birthday_mmdd))) {
        f->birthday_mmdd = (uint16_t)ev->birthday_mmdd;
        f->birthday_ts_ms = ev->ts_ms;
    }
}

void feature_apply(ls_features *f, const ls_event *ev, const feature_decay *d)
{
    feature_apply_line(f, ev, d, 0);
}

/* Engagement is what the customer does with the shop.  Not a complaint
 * (a refund, a support ticket, a review of 1 or 2 stars: contact, not
 * interest), nor a profile update (a birthday a CRM loads is data, not a
 * visit).  Neither moves last_engaged nor opens a session, so neither can
 * raise an engagement term. */
static int is_engagement(const ls_event *ev)
{
    return ev->type != EV_REFUND && ev->type != EV_SUPPORT_TICKET && ev->type != EV_PROFILE &&
           !(ev->type == EV_REVIEW && (ev->has & EVF_RATING) && ev->rating <= 2);
}

void feature_apply_line(ls_features *f, const ls_event *ev, const feature_decay *d, int continues_order)
{
    cover_time(f, ev->ts_ms, d);
    int engaged = is_engagement(ev);
    if (engaged && ev->ts_ms > f->last_engaged_ms)
        f->last_engaged_ms = ev->ts_ms;
    if (is_visit(ev->type) && (f->first_visit_ms == 0 || ev->ts_ms < f->first_visit_ms))
        f->first_visit_ms = ev->ts_ms;
    int64_t age = f->last_seen_ms - ev->ts_ms;
    double ws = feature_decay_factor(age, d->short_ms);
    double wl = feature_decay_factor(age, d->long_ms);
    if (!(continues_order && ev->type == EV_PURCHASE)) {
        f->count[ev->type]++;
        f->recent[ev->type] += ws;
        f->decayed[ev->type] += wl;
    }
    if (engaged) /* a complaint or a profile update opens no session: no visit to score */
        note_session(f, ev, d);
    apply_money(f, ev);
    apply_opinion(f, ev);
    double cw = category_weight[ev->type];
    if (ev->category.len > 0 && cw > 0)
        add_category(f, ev->category.ptr, ev->category.len, 1, cw * ws, cw * wl);
}

/* Rounds *v to the nearest float, as put_f32 stores it.  The float is
 * volatile on purpose: GCC 12's SLP vectoriser at -O2 folds a pair of
 * neighbouring double->float->double round trips into nothing (the
 * stores vanish), which would break the bit-for-bit replay. */
static void round_f32(double *v)
{
    volatile float x = (float)*v;
    *v = (double)x;
}

void feature_round(ls_features *f)
{
    round_f32(&f->sessions_recent);
    round_f32(&f->sessions_decayed);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        round_f32(&f->recent[i]);
        round_f32(&f->decayed[i]);
    }
    for (int i = 0; i < f->ncategories && i < FEATURE_MAX_CATEGORIES; i++) {
        round_f32(&f->categories[i].recent);
        round_f32(&f->categories[i].decayed);
    }
}

static int64_t min_nonzero(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

/* Both records are at the same anchor here.  A session both remember was
 * counted, and weighed, in each: it is counted once, at its latest time. */
static void merge_sessions(ls_features *dst, const ls_features *src, const feature_decay *d)
{
    dst->sessions += src->sessions;
    dst->sessions_recent += src->sessions_recent;
    dst->sessions_decayed += src->sessions_decayed;
    for (int i = 0; i < FEATURE_SESSION_RING; i++) {
        uint32_t h = src->session_ring[i].hash;
        int64_t ts = src->session_ring[i].ts_ms;
        if (!h)
            continue;
        int j = ring_find(dst, h);
        if (j < 0) {
            ring_insert(dst, h, ts);
            continue;
        }
        int64_t older = ts < dst->session_ring[j].ts_ms ? ts : dst->session_ring[j].ts_ms;
        dst->sessions--;
        dst->sessions_recent -= weight_at(dst, older, d->short_ms);
        dst->sessions_decayed -= weight_at(dst, older, d->long_ms);
        if (ts > dst->session_ring[j].ts_ms)
            dst->session_ring[j].ts_ms = ts;
    }
}

void feature_merge(ls_features *dst, const ls_features *src_in, const feature_decay *d)
{
    if (feature_empty(src_in))
        return;
    ls_features src = *src_in;
    if (feature_empty(dst)) {
        *dst = src;
        return;
    }
    if (src.last_seen_ms > dst->last_seen_ms)
        move_anchor(dst, src.last_seen_ms, d);
    else if (src.last_seen_ms < dst->last_seen_ms)
        move_anchor(&src, dst->last_seen_ms, d);
    dst->first_seen_ms = min_nonzero(dst->first_seen_ms, src.first_seen_ms);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        dst->count[i] += src.count[i];
        dst->recent[i] += src.recent[i];
        dst->decayed[i] += src.decayed[i];
    }
    merge_sessions(dst, &src, d);
    dst->spend += src.spend;
    dst->purchase_lines += src.purchase_lines;
    dst->purchase_days += src.purchase_days; /* days both bought on count twice: merge is rare */
    dst->purchase_units += src.purchase_units;
    dst->refunded += src.refunded;
    dst->discounted_spend += src.discounted_spend;
    for (int i = 0; i < FEATURE_CART_RING; i++)
        if (src.cart[i].ts_ms)
            note_cart(dst, src.cart[i].ts_ms, src.cart[i].value, src.cart[i].items);
    if (src.first_purchase_ms && (!dst->first_purchase_ms || src.first_purchase_ms < dst->first_purchase_ms))
        dst->first_purchase_value = src.first_purchase_value;
    dst->first_purchase_ms = min_nonzero(dst->first_purchase_ms, src.first_purchase_ms);
    if (src.last_review_ms > dst->last_review_ms)
        dst->last_review_ms = src.last_review_ms;
    if (src.last_negative_ms > dst->last_negative_ms)
        dst->last_negative_ms = src.last_negative_ms;
    if (src.last_engaged_ms > dst->last_engaged_ms)
        dst->last_engaged_ms = src.last_engaged_ms;
    dst->first_visit_ms = min_nonzero(dst->first_visit_ms, src.first_visit_ms);
    if (src.last_purchase_ms > dst->last_purchase_ms)
        dst->last_purchase_ms = src.last_purchase_ms;
    if (src.last_cart_ms > dst->last_cart_ms)
        dst->last_cart_ms = src.last_cart_ms;
    if (src.last_checkout_ms > dst->last_checkout_ms)
        dst->last_checkout_ms = src.last_checkout_ms;
    if (src.last_share_ms > dst->last_share_ms)
        dst->last_share_ms = src.last_share_ms;
    dst->share_days += src.share_days;
    dst->review_days += src.review_days;
    dst->rating_sum += src.rating_sum;
    dst->rating_n += src.rating_n;
    dst->bad_reviews += src.bad_reviews;
    dst->good_reviews += src.good_reviews;
    if (src.birthday_mmdd && (!dst->birthday_mmdd || src.birthday_ts_ms > dst->birthday_ts_ms)) {
        dst->birthday_mmdd = src.birthday_mmdd;
        dst->birthday_ts_ms = src.birthday_ts_ms;
    }
    for (int i = 0; i < src.ncategories; i++) {
        const feature_category *c = &src.categories[i];
        add_category(dst, c->name, c->len, c->count, c->recent, c->decayed);
    }
}

/* ------------------------------------------------------------------ */
/* Encoding: little-endian, field by field, version byte first          */
/* ------------------------------------------------------------------ */

typedef bytecur_w wcur;
typedef bytecur_r rcur;

/* The store is little-endian on every platform we build for (x86-64,
 * arm64); the static assert below keeps it honest. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "record format is little-endian");

static void put_u8(wcur *w, uint8_t v) { bytecur_put(w, &v, 1); }
static void put_u16(wcur *w, uint16_t v) { bytecur_put(w, &v, 2); }
static void put_u32(wcur *w, uint32_t v) { bytecur_put(w, &v, 4); }
static void put_f32(wcur *w, double v) { float x = (float)v; bytecur_put(w, &x, 4); }
static void put_f64(wcur *w, double v) { bytecur_put(w, &v, 8); }

static uint8_t get_u8(rcur *r) { uint8_t v; bytecur_get(r, &v, 1); return v; }
static uint16_t get_u16(rcur *r) { uint16_t v; bytecur_get(r, &v, 2); return v; }
static uint32_t get_u32(rcur *r) { uint32_t v; bytecur_get(r, &v, 4); return v; }
static int64_t get_i64(rcur *r) { int64_t v; bytecur_get(r, &v, 8); return v; }
static double get_f32(rcur *r) { float v; bytecur_get(r, &v, 4); return v; }
static double get_f64(rcur *r) { double v; bytecur_get(r, &v, 8); return v; }

/* Version 4: every field of version 3, in its order, the zero ones
 * left out.
 *   u8 version, u8 ncategories, u16 birthday_mmdd,
 *   varint zigzag last_seen_ms (the anchor), time first_seen_ms,
 *   time birthday_ts_ms,
 *   varint type mask: for each type set, varint count, f32 recent, f32 decayed,
 *   varint sessions, u8 slot mask: for each session slot set, u32 hash, time ts,
 *   u8 flags (V4_*): the f32 pair sessions_recent, sessions_decayed, then
 *     f64 spend, refunded, discounted_spend, first_purchase_value, each when set,
 *     then (version 5, V5_ENGAGED) time last_engaged, when it is not last_seen,
 *     then (version 7, V7_FIRST_VISIT) time first_visit, when it is not
 *     first_visit_stand_in's (the first event, for a customer with a visit),
 *   u8 slot mask: for each cart slot set, time ts, f32 value, varint zigzag items,
 *   times first_purchase, last_purchase, last_cart, last_review, last_negative,
 *     last_checkout, last_share,
 *   varints rating_sum, rating_n, bad_reviews, good_reviews, purchase_lines,
 *     purchase_days, purchase_units, share_days, review_days,
 *   per category: varint len, its bytes, varint count, f32 recent, f32 decayed.
 * A time is varint 0 for 0 (never), else varint 1 + zigzag(t - last_seen).
 * "Set" means bits other than all zero, so -0.0 keeps its sign. */
enum {
    V4_SESSION_FLOATS = 1 << 0,
    V4_SPEND = 1 << 1,
    V4_REFUNDED = 1 << 2,
    V4_DISCOUNTED = 1 << 3,
    V4_FIRST_VALUE = 1 << 4,
    V4_ALL = (1 << 5) - 1,
    V5_ENGAGED = 1 << 5,
    V5_ALL = (1 << 6) - 1,
    V7_FIRST_VISIT = 1 << 6,
    V7_ALL = (1 << 7) - 1
};

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static int f32_set(double v)
{
    float x = (float)v;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits != 0;
}

static int f64_set(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits != 0;
}

static void put_var(wcur *w, uint64_t v) { bytecur_put_varint(w, v); }

static void put_time(wcur *w, int64_t t, int64_t anchor)
{
    uint64_t zz = zigzag((int64_t)((uint64_t)t - (uint64_t)anchor));
    if (t != 0 && zz == UINT64_MAX)
        w->bad = 1; /* 1 + zz would wrap: a span no clock gives */
    put_var(w, t == 0 ? 0 : zz + 1);
}

static void encode_types(wcur *w, const ls_features *f)
{
    uint64_t mask = 0;
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        if (f->count[i] || f32_set(f->recent[i]) || f32_set(f->decayed[i]))
            mask |= (uint64_t)1 << i;
    put_var(w, mask);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (!(mask >> i & 1))
            continue;
        put_var(w, f->count[i]);
        put_f32(w, f->recent[i]);
        put_f32(w, f->decayed[i]);
    }
}

static void encode_rings(wcur *w, const ls_features *f, int64_t anchor)
{
    uint8_t smask = 0, cmask = 0;
    for (int i = 0; i < FEATURE_SESSION_RING; i++)
        if (f->session_ring[i].hash || f->session_ring[i].ts_ms)
            smask |= (uint8_t)(1u << i);
    put_var(w, f->sessions);
    put_u8(w, smask);
    for (int i = 0; i < FEATURE_SESSION_RING; i++) {
        if (smask >> i & 1) {
            put_u32(w, f->session_ring[i].hash);
            put_time(w, f->session_ring[i].ts_ms, anchor);
        }
    }
    uint8_t flags = (uint8_t)((f32_set(f->sessions_recent) || f32_set(f->sessions_decayed) ? V4_SESSION_FLOATS : 0) |
                              (f64_set(f->spend) ? V4_SPEND : 0) | (f64_set(f->refunded) ? V4_REFUNDED : 0) |
                              (f64_set(f->discounted_spend) ? V4_DISCOUNTED : 0) |
                              (f64_set(f->first_purchase_value) ? V4_FIRST_VALUE : 0) |
                              (f->last_engaged_ms != anchor ? V5_ENGAGED : 0) |
                              (f->first_visit_ms != first_visit_stand_in(f) ? V7_FIRST_VISIT : 0));
    put_u8(w, flags);
    if (flags & V4_SESSION_FLOATS) {
        put_f32(w, f->sessions_recent);
        put_f32(w, f->sessions_decayed);
    }
    if (flags & V4_SPEND)
        put_f64(w, f->spend);
    if (flags & V4_REFUNDED)
        put_f64(w, f->refunded);
    if (flags & V4_DISCOUNTED)
        put_f64(w, f->discounted_spend);
    if (flags & V4_FIRST_VALUE)
        put_f64(w, f->first_purchase_value);
    if (flags & V5_ENGAGED)
        put_time(w, f->last_engaged_ms, anchor);
    if (flags & V7_FIRST_VISIT)
        put_time(w, f->first_visit_ms, anchor);
    for (int i = 0; i < FEATURE_CART_RING; i++)
        if (f->cart[i].ts_ms || f32_set(f->cart[i].value) || f->cart[i].items)
            cmask |= (uint8_t)(1u << i);
    put_u8(w, cmask);
    for (int i = 0; i < FEATURE_CART_RING; i++) {
        if (cmask >> i & 1) {
            put_time(w, f->cart[i].ts_ms, anchor);
            put_f32(w, f->cart[i].value);
            put_var(w, zigzag(f->cart[i].items));
        }
    }
}

int feature_encode(const ls_features *f, uint8_t *buf, size_t cap, size_t *len)
{
    wcur w = {buf, cap, 0};
    int64_t anchor = f->last_seen_ms;
    put_u8(&w, FEATURE_RECORD_VERSION);
    put_u8(&w, f->ncategories);
    put_u16(&w, f->birthday_mmdd);
    put_var(&w, zigzag(anchor));
    put_time(&w, f->first_seen_ms, anchor);
    put_time(&w, f->birthday_ts_ms, anchor);
    encode_types(&w, f);
    encode_rings(&w, f, anchor);
    const int64_t times[] = {f->first_purchase_ms, f->last_purchase_ms, f->last_cart_ms, f->last_review_ms,
                             f->last_negative_ms, f->last_checkout_ms, f->last_share_ms};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        put_time(&w, times[i], anchor);
    const uint32_t counts[] = {f->rating_sum, f->rating_n, f->bad_reviews, f->good_reviews, f->purchase_lines,
                               f->purchase_days, f->purchase_units, f->share_days, f->review_days};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        put_var(&w, counts[i]);
    for (int i = 0; i < f->ncategories && i < FEATURE_MAX_CATEGORIES; i++) {
        const feature_category *c = &f->categories[i];
        size_t n = c->len > EVENT_MAX_STR ? EVENT_MAX_STR : c->len;
        put_var(&w, n);
        bytecur_put(&w, c->name, n);
        put_var(&w, c->count);
        put_f32(&w, c->recent);
        put_f32(&w, c->decayed);
    }
    if (w.bad || f->ncategories > FEATURE_MAX_CATEGORIES)
        return LS_EINVAL;
    *len = cap - w.left;
    return LS_OK;
}

static void decode_category(rcur *r, feature_category *c)
{
    c->len = get_u16(r);
    if (c->len > EVENT_MAX_STR) {
        r->bad = 1;
        c->len = 0;
        return;
    }
    bytecur_get(r, c->name, c->len);
    c->name[c->len] = '\0';
    c->count = get_u32(r);
    c->recent = get_f32(r);
    c->decayed = get_f32(r);
}

static void decode_sessions(rcur *r, ls_features *f, int v1)
{
    f->sessions = get_u32(r);
    for (int i = 0; i < FEATURE_SESSION_RING; i++) {
        f->session_ring[i].hash = get_u32(r);
        /* version 1 kept no session times: take the record's anchor */
        f->session_ring[i].ts_ms = v1 ? (f->session_ring[i].hash ? f->last_seen_ms : 0) : get_i64(r);
    }
    f->sessions_recent = get_f32(r);
    f->sessions_decayed = get_f32(r);
}

/* Version 1 kept a running cart sum instead of the cart ring; a positive
 * one becomes one cart event at the last cart time. */
static void decode_cart(rcur *r, ls_features *f, int version, double *v1_cart)
{
    if (version == 1) {
        *v1_cart = get_f64(r);
        return;
    }
    for (int i = 0; i < FEATURE_CART_RING; i++) {
        f->cart[i].ts_ms = get_i64(r);
        f->cart[i].value = (float)get_f32(r);
        /* version 2 kept no item counts: one per priced event */
        f->cart[i].items = version >= 3 ? (int16_t)get_u16(r)
                                        : (int16_t)(f->cart[i].value > 0 ? 1 : f->cart[i].value < 0 ? -1 : 0);
    }
}

/* Every time in a record is 0 (never) or an event time: a negative one is
 * corrupt, and would overflow the decay arithmetic (move_anchor). */
static int times_valid(const ls_features *f)
{
    const int64_t t[] = {f->first_seen_ms, f->last_seen_ms, f->birthday_ts_ms, f->first_purchase_ms,
                         f->last_purchase_ms, f->last_cart_ms, f->last_review_ms, f->last_negative_ms,
                         f->last_checkout_ms, f->last_share_ms, f->last_engaged_ms, f->first_visit_ms};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] < 0)
            return 0;
    for (int i = 0; i < FEATURE_SESSION_RING; i++)
        if (f->session_ring[i].ts_ms < 0)
            return 0;
    for (int i = 0; i < FEATURE_CART_RING; i++)
        if (f->cart[i].ts_ms < 0)
            return 0;
    return 1;
}

/* Reads a varint of at most max; past it the record is corrupt. */
static uint64_t get_var(rcur *r, uint64_t max)
{
    uint64_t v = bytecur_get_varint(r);
    if (v > max)
        r->bad = 1;
    return r->bad ? 0 : v;
}

static int64_t get_time(rcur *r, int64_t anchor)
{
    uint64_t v = get_var(r, UINT64_MAX);
    return v == 0 ? 0 : (int64_t)((uint64_t)anchor + (uint64_t)unzigzag(v - 1));
}

static void decode_v4_rings(rcur *r, ls_features *f, int64_t anchor, int version)
{
    f->sessions = (uint32_t)get_var(r, UINT32_MAX);
    uint8_t smask = get_u8(r);
    if (smask >> FEATURE_SESSION_RING)
        r->bad = 1;
    for (int i = 0; i < FEATURE_SESSION_RING && !r->bad; i++) {
        if (smask >> i & 1) {
            f->session_ring[i].hash = get_u32(r);
            f->session_ring[i].ts_ms = get_time(r, anchor);
        }
    }
    uint8_t flags = get_u8(r);
    if (flags & ~(version >= 7 ? V7_ALL : version >= 5 ? V5_ALL : V4_ALL))
        r->bad = 1;
    if (flags & V4_SESSION_FLOATS) {
        f->sessions_recent = get_f32(r);
        f->sessions_decayed = get_f32(r);
    }
    if (flags & V4_SPEND)
        f->spend = get_f64(r);
    if (flags & V4_REFUNDED)
        f->refunded = get_f64(r);
    if (flags & V4_DISCOUNTED)
        f->discounted_spend = get_f64(r);
    if (flags & V4_FIRST_VALUE)
        f->first_purchase_value = get_f64(r);
    f->last_engaged_ms = flags & V5_ENGAGED ? get_time(r, anchor) : anchor;
    f->first_visit_ms = flags & V7_FIRST_VISIT ? get_time(r, anchor) : first_visit_stand_in(f);
    uint8_t cmask = get_u8(r);
    if (cmask >> FEATURE_CART_RING)
        r->bad = 1;
    for (int i = 0; i < FEATURE_CART_RING && !r->bad; i++) {
        if (cmask >> i & 1) {
            f->cart[i].ts_ms = get_time(r, anchor);
            f->cart[i].value = (float)get_f32(r);
            int64_t items = unzigzag(get_var(r, UINT64_MAX));
            if (items < INT16_MIN || items > INT16_MAX)
                r->bad = 1;
            f->cart[i].items = (int16_t)(r->bad ? 0 : items);
        }
    }
}

/* The fields of a version 4 or 5 record after its version byte (see
 * feature_encode); the caller checks r->bad and the rest. */
static void decode_v4(rcur *r, ls_features *f, int version)
{
    f->ncategories = get_u8(r);
    f->birthday_mmdd = get_u16(r);
    int64_t anchor = unzigzag(get_var(r, UINT64_MAX));
    f->last_seen_ms = anchor;
    f->first_seen_ms = get_time(r, anchor);
    f->birthday_ts_ms = get_time(r, anchor);
    uint64_t mask = get_var(r, ((uint64_t)1 << EV_TYPE_COUNT) - 1);
    for (int i = 0; i < EV_TYPE_COUNT && !r->bad; i++) {
        if (mask >> i & 1) {
            f->count[i] = (uint32_t)get_var(r, UINT32_MAX);
            f->recent[i] = get_f32(r);
            f->decayed[i] = get_f32(r);
        }
    }
    decode_v4_rings(r, f, anchor, version);
    int64_t *const times[] = {&f->first_purchase_ms, &f->last_purchase_ms, &f->last_cart_ms, &f->last_review_ms,
                              &f->last_negative_ms, &f->last_checkout_ms, &f->last_share_ms};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        *times[i] = get_time(r, anchor);
    uint32_t *const counts[] = {&f->rating_sum, &f->rating_n, &f->bad_reviews, &f->good_reviews, &f->purchase_lines,
                                &f->purchase_days, &f->purchase_units, &f->share_days, &f->review_days};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        *counts[i] = (uint32_t)get_var(r, UINT32_MAX);
    if (f->ncategories > FEATURE_MAX_CATEGORIES)
        return;
    for (int i = 0; i < f->ncategories && !r->bad; i++) {
        feature_category *c = &f->categories[i];
        c->len = (uint16_t)get_var(r, EVENT_MAX_STR);
        bytecur_get(r, c->name, c->len);
        c->name[c->len] = '\0';
        c->count = (uint32_t)get_var(r, UINT32_MAX);
        c->recent = get_f32(r);
        c->decayed = get_f32(r);
    }
}

/* Every field of record buf into f, over a record whose fixed fields
 * (everything before the categories) the caller has zeroed: what an older
 * version does not store stays 0.  Returns as feature_decode. */
static int decode_fields(ls_features *f, const uint8_t *buf, size_t len)
{
    rcur r = {buf, len, 0};
    double v1_cart = 0;
    uint8_t version = get_u8(&r);
    if (r.bad || version == 0)
        return LS_EPARSE;
    if (version > FEATURE_RECORD_VERSION)
        return LS_EVERSION;
    if (version >= 4) {
        decode_v4(&r, f, version);
        return (r.bad || r.left != 0 || f->ncategories > FEATURE_MAX_CATEGORIES || !times_valid(f)) ? LS_EPARSE
                                                                                                    : LS_OK;
    }
    int v1 = version == 1;
    f->ncategories = get_u8(&r);
    f->birthday_mmdd = get_u16(&r);
    f->birthday_ts_ms = v1 ? 0 : get_i64(&r);
    f->first_seen_ms = get_i64(&r);
    f->last_seen_ms = get_i64(&r);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        f->count[i] = get_u32(&r);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        f->recent[i] = get_f32(&r);
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        f->decayed[i] = get_f32(&r);
    decode_sessions(&r, f, v1);
    f->spend = get_f64(&r);
    f->refunded = get_f64(&r);
    f->discounted_spend = get_f64(&r);
    decode_cart(&r, f, version, &v1_cart);
    f->first_purchase_ms = get_i64(&r);
    f->last_purchase_ms = get_i64(&r);
    f->last_cart_ms = get_i64(&r);
    if (!v1) {
        f->first_purchase_value = get_f64(&r);
        f->last_review_ms = get_i64(&r);
        f->last_negative_ms = get_i64(&r);
    } else if (v1_cart > 0.005) {
        f->cart[0].ts_ms = f->last_cart_ms ? f->last_cart_ms : f->last_seen_ms;
        f->cart[0].value = (float)v1_cart;
        f->cart[0].items = 1;
    }
    f->rating_sum = get_u32(&r);
    f->rating_n = get_u32(&r);
    f->bad_reviews = get_u32(&r);
    f->good_reviews = get_u32(&r);
    if (version >= 3) {
        f->purchase_lines = get_u32(&r);
        f->purchase_days = get_u32(&r);
        f->purchase_units = get_u32(&r);
        f->last_checkout_ms = get_i64(&r);
        f->last_share_ms = get_i64(&r);
        f->share_days = get_u32(&r);
        f->review_days = get_u32(&r);
    } else {
        /* older records counted purchase events: each is taken as an order
         * of one unit on a day of its own */
        f->purchase_lines = f->purchase_days = f->purchase_units = f->count[EV_PURCHASE];
        f->share_days = f->count[EV_SHARE] + f->count[EV_REFERRAL]; /* at most one a day: unknown */
        f->review_days = f->count[EV_REVIEW];
    }
    f->last_engaged_ms = f->last_seen_ms; /* not kept before version 5 */
    f->first_visit_ms = first_visit_stand_in(f); /* nor this before version 7 */
    if (f->ncategories > FEATURE_MAX_CATEGORIES)
        return LS_EPARSE;
    for (int i = 0; i < f->ncategories; i++)
        decode_category(&r, &f->categories[i]);
    return (r.bad || r.left != 0 || !times_valid(f)) ? LS_EPARSE : LS_OK;
}

/* A score decodes a record per request: only the fixed fields are zeroed
 * first, not the category table (8 slots of 257-byte names, most of the
 * record's size), whose slots decode_category fills up to ncategories.
 * A record that fails to decode is decoded again the old way (all zeroed
 * first), so that a caller sees the same partial record as before. */
int feature_decode(ls_features *f, const uint8_t *buf, size_t len)
{
    memset(f, 0, offsetof(ls_features, categories));
    int rc = decode_fields(f, buf, len);
    if (rc != LS_OK) {
        feature_init(f);
        rc = decode_fields(f, buf, len);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Named values                                                        */
/* ------------------------------------------------------------------ */

typedef double (*value_fn)(const ls_features *f, const feature_ctx *ctx, int arg);

static double days_between(int64_t later, int64_t earlier)
{
    if (earlier == 0)
        return FEATURE_NEVER_DAYS;
    double d = (double)(later - earlier) / MS_PER_DAY;
    if (d < 0)
        d = 0;
    return d > FEATURE_NEVER_DAYS ? FEATURE_NEVER_DAYS : d;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* A zero stays itself (the factor is finite and positive): most decayed
 * counts of most customers are 0, and their exp2 is skipped. */
static double decay_to_now(double at_anchor, const ls_features *f, const feature_ctx *c, int64_t h)
{
    if (at_anchor == 0.0)
        return at_anchor;
    return at_anchor * feature_decay_factor(c->now_ms - f->last_seen_ms, h);
}

static double v_count(const ls_features *f, const feature_ctx *c, int t) { (void)c; return f->count[t]; }
static double v_recent(const ls_features *f, const feature_ctx *c, int t) { return decay_to_now(f->recent[t], f, c, c->decay.short_ms); }
static double v_decayed(const ls_features *f, const feature_ctx *c, int t) { return decay_to_now(f->decayed[t], f, c, c->decay.long_ms); }

enum {
    V_FIRST_SEEN_DAYS, V_LAST_SEEN_DAYS, V_LAST_PURCHASE_DAYS, V_FIRST_PURCHASE_DAYS,
    V_LAST_CART_DAYS, V_SPEND, V_NET_SPEND, V_AOV, V_REFUND_RATE, V_DISCOUNTED_SHARE,
    V_AVG_RATING, V_BAD_REVIEWS, V_GOOD_REVIEWS, V_OPEN_CART, V_CART_OPEN, V_SESSIONS,
    V_SESSIONS_RECENT, V_SESSIONS_DECAYED, V_CATEGORIES, V_HAS_BIRTHDAY,
    V_PURCHASE_LINES, V_PURCHASE_DAYS, V_PURCHASE_UNITS, V_LAST_CHECKOUT_DAYS, V_CHECKOUT_OPEN,
    V_MEAN_GAP_DAYS, V_RECENCY_GAP_RATIO, V_LINES_PER_ORDER, V_UNITS_PER_ORDER, V_SHARE_DAYS, V_REVIEW_DAYS,
    V_LAST_ENGAGED_DAYS, V_CART_OPEN_RECENT, V_OPEN_CART_RECENT, V_CHECKOUT_OPEN_RECENT,
    V_EMAIL_ENGAGED_RECENT, V_EMAIL_ENGAGED_DECAYED
};

/* Mean days between purchase days (0 below two of them). */
static double mean_gap_days(const ls_features *f)
{
    if (f->purchase_days < 2 || f->last_purchase_ms <= f->first_purchase_ms)
        return 0.0;
    return (double)(f->last_purchase_ms - f->first_purchase_ms) / MS_PER_DAY / (double)(f->purchase_days - 1);
}

/* Days since the last purchase over the mean gap: about 1 when the next
 * purchase is due, far above when it is overdue (0 below two purchase
 * days; at most 100). */
static double recency_gap_ratio(const ls_features *f, const feature_ctx *c)
{
    double gap = mean_gap_days(f);
    if (gap <= 0)
        return 0.0;
    double r = days_between(c->now_ms, f->last_purchase_ms) / (gap > 1 ? gap : 1.0);
    return r > 100 ? 100.0 : r;
}

/* The short half-life's factor from ts to now (1 for a time not before
 * now: feature_decay_factor's rule). */
static double since_decay(int64_t ts, const feature_ctx *c)
{
    return feature_decay_factor(c->now_ms - ts, c->decay.short_ms);
}

static double v_derived(const ls_features *f, const feature_ctx *c, int which)
{
    switch (which) {
    case V_FIRST_SEEN_DAYS: return days_between(c->now_ms, f->first_seen_ms);
    case V_LAST_SEEN_DAYS: return days_between(c->now_ms, f->last_seen_ms);
    case V_LAST_PURCHASE_DAYS: return days_between(c->now_ms, f->last_purchase_ms);
    case V_FIRST_PURCHASE_DAYS: return days_between(c->now_ms, f->first_purchase_ms);
    case V_LAST_CART_DAYS: return days_between(c->now_ms, f->last_cart_ms);
    case V_SPEND: return f->spend;
    case V_NET_SPEND: return f->spend - f->refunded > 0 ? f->spend - f->refunded : 0.0;
    case V_AOV: return ratio(f->spend, f->count[EV_PURCHASE]);
    case V_REFUND_RATE: return ratio(f->refunded, f->spend) > 1 ? 1.0 : ratio(f->refunded, f->spend);
    case V_DISCOUNTED_SHARE: return ratio(f->discounted_spend, f->spend);
    case V_AVG_RATING: return ratio(f->rating_sum, f->rating_n);
    case V_BAD_REVIEWS: return f->bad_reviews;
    case V_GOOD_REVIEWS: return f->good_reviews;
    case V_OPEN_CART: return feature_open_cart(f);
    case V_CART_OPEN: return feature_cart_is_open(f) ? 1.0 : 0.0;
    case V_SESSIONS: return f->sessions;
    case V_SESSIONS_RECENT: return decay_to_now(f->sessions_recent, f, c, c->decay.short_ms);
    case V_SESSIONS_DECAYED: return decay_to_now(f->sessions_decayed, f, c, c->decay.long_ms);
    case V_CATEGORIES: return f->ncategories;
    case V_HAS_BIRTHDAY: return f->birthday_mmdd ? 1.0 : 0.0;
    case V_PURCHASE_LINES: return f->purchase_lines;
    case V_PURCHASE_DAYS: return f->purchase_days;
    case V_PURCHASE_UNITS: return f->purchase_units;
    case V_LAST_CHECKOUT_DAYS: return days_between(c->now_ms, f->last_checkout_ms);
    case V_CHECKOUT_OPEN: return checkout_is_open(f) ? 1.0 : 0.0;
    case V_MEAN_GAP_DAYS: return mean_gap_days(f);
    case V_RECENCY_GAP_RATIO: return recency_gap_ratio(f, c);
    case V_LINES_PER_ORDER: return ratio(f->purchase_lines, f->count[EV_PURCHASE]);
    case V_UNITS_PER_ORDER: return ratio(f->purchase_units, f->count[EV_PURCHASE]);
    case V_SHARE_DAYS: return f->share_days;
    case V_REVIEW_DAYS: return f->review_days;
    case V_LAST_ENGAGED_DAYS: return days_between(c->now_ms, f->last_engaged_ms);
    /* the open cart and checkout, fading with the short half-life from the
     * last add and the last checkout: one left a year ago is not "open" to
     * a score (cart_open stays 1 until an order, for rules that ask) */
    case V_CART_OPEN_RECENT:
        return feature_cart_is_open(f) ? since_decay(f->last_cart_ms, c) : 0.0;
    case V_OPEN_CART_RECENT: return feature_open_cart(f) * since_decay(f->last_cart_ms, c);
    case V_CHECKOUT_OPEN_RECENT:
        return checkout_is_open(f) ? since_decay(f->last_checkout_ms, c) : 0.0;
    /* e-mails opened or clicked: a click proves its mail was opened,
     * tracked or not (an image blocker, a privacy proxy), so it counts as
     * much as an open at least */
    case V_EMAIL_ENGAGED_RECENT: return v_recent(f, c, EV_EMAIL_OPEN) + v_recent(f, c, EV_EMAIL_CLICK);
    case V_EMAIL_ENGAGED_DECAYED: return v_decayed(f, c, EV_EMAIL_OPEN) + v_decayed(f, c, EV_EMAIL_CLICK);
    }
    return 0.0;
}

static const struct {
    const char *name;
    value_fn fn;
    int arg;
} named[] = {
#define FEATURE_COUNT_ROW(sym, name) {name "_count", v_count, EV_##sym},
    EVENT_TYPE_MAP(FEATURE_COUNT_ROW)
#undef FEATURE_COUNT_ROW
#define FEATURE_RECENT_ROW(sym, name) {name "_recent", v_recent, EV_##sym},
    EVENT_TYPE_MAP(FEATURE_RECENT_ROW)
#undef FEATURE_RECENT_ROW
#define FEATURE_DECAYED_ROW(sym, name) {name "_decayed", v_decayed, EV_##sym},
    EVENT_TYPE_MAP(FEATURE_DECAYED_ROW)
#undef FEATURE_DECAYED_ROW
    {"days_since_first_seen", v_derived, V_FIRST_SEEN_DAYS},
    {"days_since_last_seen", v_derived, V_LAST_SEEN_DAYS},
    {"days_since_last_purchase", v_derived, V_LAST_PURCHASE_DAYS},
    {"days_since_first_purchase", v_derived, V_FIRST_PURCHASE_DAYS},
    {"days_since_last_cart", v_derived, V_LAST_CART_DAYS},
    {"spend", v_derived, V_SPEND},
    {"net_spend", v_derived, V_NET_SPEND},
    {"avg_order_value", v_derived, V_AOV},
    {"refund_rate", v_derived, V_REFUND_RATE},
    {"discounted_share", v_derived, V_DISCOUNTED_SHARE},
    {"avg_rating", v_derived, V_AVG_RATING},
    {"bad_reviews", v_derived, V_BAD_REVIEWS},
    {"good_reviews", v_derived, V_GOOD_REVIEWS},
    {"open_cart_value", v_derived, V_OPEN_CART},
    {"cart_open", v_derived, V_CART_OPEN},
    {"sessions", v_derived, V_SESSIONS},
    {"sessions_recent", v_derived, V_SESSIONS_RECENT},
    {"sessions_decayed", v_derived, V_SESSIONS_DECAYED},
    {"categories", v_derived, V_CATEGORIES},
    {"has_birthday", v_derived, V_HAS_BIRTHDAY},
    {"purchase_lines", v_derived, V_PURCHASE_LINES},
    {"purchase_days", v_derived, V_PURCHASE_DAYS},
    {"purchase_units", v_derived, V_PURCHASE_UNITS},
    {"days_since_last_checkout", v_derived, V_LAST_CHECKOUT_DAYS},
    {"checkout_open", v_derived, V_CHECKOUT_OPEN},
    {"mean_purchase_gap_days", v_derived, V_MEAN_GAP_DAYS},
    {"purchase_recency_ratio", v_derived, V_RECENCY_GAP_RATIO},
    {"lines_per_order", v_derived, V_LINES_PER_ORDER},
    {"units_per_order", v_derived, V_UNITS_PER_ORDER},
    {"share_days", v_derived, V_SHARE_DAYS},
    {"review_days", v_derived, V_REVIEW_DAYS},
    {"days_since_last_engaged", v_derived, V_LAST_ENGAGED_DAYS},
    {"cart_open_recent", v_derived, V_CART_OPEN_RECENT},
    {"open_cart_value_recent", v_derived, V_OPEN_CART_RECENT},
    {"checkout_open_recent", v_derived, V_CHECKOUT_OPEN_RECENT},
    {"email_engaged_recent", v_derived, V_EMAIL_ENGAGED_RECENT},
    {"email_engaged_decayed", v_derived, V_EMAIL_ENGAGED_DECAYED},
};

int feature_count(void)
{
    return (int)(sizeof named / sizeof named[0]);
}

const char *feature_name(int id)
{
    return (id >= 0 && id < feature_count()) ? named[id].name : NULL;
}

int feature_lookup(const char *name)
{
    for (int i = 0; i < feature_count(); i++)
        if (strcmp(named[i].name, name) == 0)
            return i;
    return -1;
}

double feature_value(const ls_features *f, int id, const feature_ctx *ctx)
{
    if (id < 0 || id >= feature_count())
        return 0.0;
    return named[id].fn(f, ctx, named[id].arg);
}
