/* test_feature.c -- the feature record: time decay worked out by hand,
 * arrival-order independence (late events, every permutation of a
 * sequence), money, sessions, the category top-K, merging, the stored
 * encoding (round trip, truncation, versions) and the named values. */
#define _GNU_SOURCE
#include <check.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "bytecur.h"
#include "feature.h"
#include "leadscore/error.h"
#include "testutil.h"

#define DAY 86400000LL
#define MINUTE 60000LL
#define HOUR 3600000LL
/* 2023-11-14T22:13:20Z */
#define T0 1700000000000LL

/* half-lives: short = 3 days, long = 30 days (as models/default.json) */
static const feature_decay DECAY = {3 * DAY, 30 * DAY};

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static ls_event mk(event_type type, int64_t ts)
{
    ls_event ev;
    event_init(&ev);
    ev.type = type;
    ev.customer = (ls_str){"c", 1};
    ev.ts_ms = ts;
    ev.has = EVF_TS;
    return ev;
}

static ls_event mk_session(event_type type, int64_t ts, const char *session)
{
    ls_event ev = mk(type, ts);
    ev.session = (ls_str){session, strlen(session)};
    return ev;
}

static ls_event mk_cat(event_type type, int64_t ts, const char *category)
{
    ls_event ev = mk(type, ts);
    ev.category = (ls_str){category, strlen(category)};
    return ev;
}

static ls_event mk_value(event_type type, int64_t ts, double value)
{
    ls_event ev = mk(type, ts);
    ev.value = value;
    ev.has |= EVF_VALUE;
    return ev;
}

static void apply(ls_features *f, const ls_event *ev)
{
    feature_apply(f, ev, &DECAY);
}

static double fv(const ls_features *f, const char *name, int64_t now)
{
    int id = feature_lookup(name);
    ck_assert_msg(id >= 0, "no feature named %s", name);
    feature_ctx ctx = {now, DECAY};
    return feature_value(f, id, &ctx);
}

#define ASSERT_FV(f, name, now, expected)                                                     \
    do {                                                                                       \
        double got_ = fv((f), (name), (now)), want_ = (expected);                             \
        ck_assert_msg(fabs(got_ - want_) <= 1e-9 * fmax(1.0, fabs(want_)),                    \
                      "%s at T0%+.3fd: got %.12g, want %.12g", (name),                        \
                      (double)((now) - T0) / DAY, got_, want_);                               \
    } while (0)

/* Encodes and decodes f: what the store hands back. */
static void roundtrip(const ls_features *in, ls_features *out)
{
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0;
    ck_assert_int_eq(feature_encode(in, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_decode(out, buf, n), LS_OK);
}

/* Decayed values are float32 once stored: equal within 1e-5 relative. */
static int close_rel(double a, double b)
{
    return fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)) + 1e-9;
}

typedef struct {
    int64_t ts_ms;
    double value;
} cart_slot;

static int cmp_slot(const void *a, const void *b)
{
    const cart_slot *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
    return (x->value > y->value) - (x->value < y->value);
}

/* The cart ring as a set: its slot order is bookkeeping. */
static void sorted_cart(const ls_features *f, cart_slot out[FEATURE_CART_RING])
{
    for (int i = 0; i < FEATURE_CART_RING; i++)
        out[i] = (cart_slot){f->cart[i].ts_ms, f->cart[i].value};
    qsort(out, FEATURE_CART_RING, sizeof out[0], cmp_slot);
}

typedef struct {
    uint32_t hash;
    int64_t ts_ms;
} session_slot;

static int cmp_session(const void *x, const void *y)
{
    const session_slot *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return (a->ts_ms > b->ts_ms) - (a->ts_ms < b->ts_ms);
}

/* The session ring as a sorted set of (id hash, latest time). */
static void session_set(const ls_features *f, session_slot *out)
{
    for (int i = 0; i < FEATURE_SESSION_RING; i++)
        out[i] = (session_slot){f->session_ring[i].hash, f->session_ring[i].ts_ms};
    qsort(out, FEATURE_SESSION_RING, sizeof out[0], cmp_session);
}

static const feature_category *find_cat(const ls_features *f, const char *name, size_t len)
{
    for (int i = 0; i < f->ncategories; i++)
        if (f->categories[i].len == len && memcmp(f->categories[i].name, name, len) == 0)
            return &f->categories[i];
    return NULL;
}

#define SAME_INT(field) \
    ck_assert_msg(a->field == b->field, "%s: " #field " %lld != %lld", what, (long long)a->field, (long long)b->field)
#define SAME_DBL(field) \
    ck_assert_msg(close_rel(a->field, b->field), "%s: " #field " %.9g != %.9g", what, (double)a->field, (double)b->field)

/* Asserts that two records say the same thing: every field, the session
 * ring and the category table compared as sets (their slot order is
 * bookkeeping), decayed values within 1e-5 relative. */
static void assert_same(const ls_features *a, const ls_features *b, const char *what)
{
    SAME_INT(first_seen_ms);
    SAME_INT(last_seen_ms);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        SAME_INT(count[i]);
        SAME_DBL(recent[i]);
        SAME_DBL(decayed[i]);
    }
    SAME_INT(sessions);
    session_slot ra[FEATURE_SESSION_RING], rb[FEATURE_SESSION_RING];
    session_set(a, ra);
    session_set(b, rb);
    for (int i = 0; i < FEATURE_SESSION_RING; i++)
        ck_assert_msg(ra[i].hash == rb[i].hash && ra[i].ts_ms == rb[i].ts_ms, "%s: session rings differ", what);
    SAME_DBL(sessions_recent);
    SAME_DBL(sessions_decayed);
    SAME_DBL(spend);
    SAME_DBL(refunded);
    SAME_DBL(discounted_spend);
    cart_slot sa[FEATURE_CART_RING], sb[FEATURE_CART_RING];
    sorted_cart(a, sa);
    sorted_cart(b, sb);
    for (int i = 0; i < FEATURE_CART_RING; i++)
        ck_assert_msg(sa[i].ts_ms == sb[i].ts_ms && sa[i].value == sb[i].value,
                      "%s: cart rings differ at %d: (%lld, %g) != (%lld, %g)", what, i, (long long)sa[i].ts_ms,
                      sa[i].value, (long long)sb[i].ts_ms, sb[i].value);
    SAME_INT(first_purchase_ms);
    SAME_INT(last_purchase_ms);
    SAME_INT(last_cart_ms);
    SAME_INT(first_visit_ms);
    SAME_DBL(first_purchase_value);
    SAME_INT(last_review_ms);
    SAME_INT(last_negative_ms);
    SAME_INT(rating_sum);
    SAME_INT(rating_n);
    SAME_INT(bad_reviews);
    SAME_INT(good_reviews);
    SAME_INT(birthday_mmdd);
    SAME_INT(ncategories);
    for (int i = 0; i < a->ncategories; i++) {
        const feature_category *ca = &a->categories[i];
        const feature_category *cb = find_cat(b, ca->name, ca->len);
        ck_assert_msg(cb != NULL, "%s: category %.*s missing", what, (int)ca->len, ca->name);
        ck_assert_msg(ca->count == cb->count && close_rel(ca->recent, cb->recent) &&
                          close_rel(ca->decayed, cb->decayed),
                      "%s: category %.*s differs", what, (int)ca->len, ca->name);
    }
}

/* And the same through every named value at a query time. */
static void assert_same_values(const ls_features *a, const ls_features *b, int64_t now, const char *what)
{
    feature_ctx ctx = {now, DECAY};
    for (int id = 0; id < feature_count(); id++) {
        double x = feature_value(a, id, &ctx), y = feature_value(b, id, &ctx);
        ck_assert_msg(close_rel(x, y), "%s: %s %.9g != %.9g", what, feature_name(id), x, y);
    }
}

/* ------------------------------------------------------------------ */
/* Decay, worked by hand                                               */
/* ------------------------------------------------------------------ */

START_TEST(decay_factor_basics)
{
    ck_assert_double_eq(feature_decay_factor(0, DAY), 1.0);
    ck_assert_double_eq(feature_decay_factor(-5 * DAY, DAY), 1.0);
    ck_assert_double_eq(feature_decay_factor(DAY, 0), 1.0);
    ck_assert_double_eq_tol(feature_decay_factor(3 * DAY, 3 * DAY), 0.5, 1e-15);
    ck_assert_double_eq_tol(feature_decay_factor(6 * DAY, 3 * DAY), 0.25, 1e-15);
    ck_assert_double_eq_tol(feature_decay_factor(DAY, 3 * DAY), 0.7937005259840998, 1e-15);
}
END_TEST

/* One product_view at T0.  recent(t) = 2^-(t-T0)/3d, decayed(t) = 2^-(t-T0)/30d:
 *   T0: 1, 1;  T0+3d: 0.5, 2^-0.1 = 0.933033;  T0+6d: 0.25, 2^-0.2 = 0.870551;
 *   T0+30d: decayed 0.5;  T0+60d: decayed 0.25.  The count never decays. */
START_TEST(one_event_halves_every_half_life)
{
    ls_features f;
    feature_init(&f);
    ls_event ev = mk(EV_PRODUCT_VIEW, T0);
    apply(&f, &ev);

    ASSERT_FV(&f, "product_view_recent", T0, 1.0);
    ASSERT_FV(&f, "product_view_recent", T0 + 3 * DAY, 0.5);
    ASSERT_FV(&f, "product_view_recent", T0 + 6 * DAY, 0.25);
    ASSERT_FV(&f, "product_view_recent", T0 + 9 * DAY, 0.125);
    ASSERT_FV(&f, "product_view_decayed", T0, 1.0);
    ASSERT_FV(&f, "product_view_decayed", T0 + 3 * DAY, 0.9330329915368074);
    ASSERT_FV(&f, "product_view_decayed", T0 + 6 * DAY, 0.8705505632961241);
    ASSERT_FV(&f, "product_view_decayed", T0 + 30 * DAY, 0.5);
    ASSERT_FV(&f, "product_view_decayed", T0 + 60 * DAY, 0.25);
    ASSERT_FV(&f, "product_view_count", T0 + 60 * DAY, 1.0);
    /* a query before the anchor does not grow the value */
    ASSERT_FV(&f, "product_view_recent", T0 - DAY, 1.0);
    /* other types are untouched */
    ASSERT_FV(&f, "page_view_recent", T0, 0.0);
    ASSERT_FV(&f, "purchase_count", T0, 0.0);
    ck_assert_int_eq(f.first_seen_ms, T0);
    ck_assert_int_eq(f.last_seen_ms, T0);
}
END_TEST

/* The same for every type: <type>_recent at T0+3d is 0.5, _decayed at
 * T0+30d is 0.5, and only that type's counters move. */
START_TEST(every_type_has_its_own_decayed_counters)
{
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ls_features f;
        char name[64];
        feature_init(&f);
        ls_event ev = mk((event_type)t, T0);
        apply(&f, &ev);
        const char *tn = event_type_name((event_type)t);
        snprintf(name, sizeof name, "%s_recent", tn);
        ASSERT_FV(&f, name, T0 + 3 * DAY, 0.5);
        snprintf(name, sizeof name, "%s_decayed", tn);
        ASSERT_FV(&f, name, T0 + 30 * DAY, 0.5);
        snprintf(name, sizeof name, "%s_count", tn);
        ASSERT_FV(&f, name, T0 + 30 * DAY, 1.0);
        for (int u = 0; u < EV_TYPE_COUNT; u++) {
            if (u == t)
                continue;
            ck_assert_uint_eq(f.count[u], 0);
            ck_assert_double_eq(f.recent[u], 0.0);
        }
    }
}
END_TEST

/* Two product_views, at T0 and T0+3d.  At T0+3d: recent = 0.5 + 1 = 1.5,
 * decayed = 2^-0.1 + 1 = 1.933033; at T0+6d recent = 0.25 + 0.5 = 0.75. */
START_TEST(two_events_two_half_lives)
{
    ls_event a = mk(EV_PRODUCT_VIEW, T0), b = mk(EV_PRODUCT_VIEW, T0 + 3 * DAY);
    ls_features in_order, late;
    feature_init(&in_order);
    feature_init(&late);
    apply(&in_order, &a);
    apply(&in_order, &b);
    apply(&late, &b); /* the older event arrives second */
    apply(&late, &a);
    const ls_features *both[2] = {&in_order, &late};
    for (int i = 0; i < 2; i++) {
        ASSERT_FV(both[i], "product_view_recent", T0 + 3 * DAY, 1.5);
        ASSERT_FV(both[i], "product_view_recent", T0 + 6 * DAY, 0.75);
        ASSERT_FV(both[i], "product_view_decayed", T0 + 3 * DAY, 1.9330329915368074);
        ASSERT_FV(both[i], "product_view_decayed", T0 + 33 * DAY, 0.5 * 1.9330329915368074);
        ASSERT_FV(both[i], "product_view_count", T0 + 6 * DAY, 2.0);
        ck_assert_int_eq(both[i]->first_seen_ms, T0);
        ck_assert_int_eq(both[i]->last_seen_ms, T0 + 3 * DAY);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Arrival order                                                       */
/* ------------------------------------------------------------------ */

/* Five events of a short shopping story; each session id appears in one
 * event only (see session_weight_does_not_depend_on_arrival_order for
 * sessions that span events). */
static void story(ls_event ev[5])
{
    ev[0] = mk_session(EV_PRODUCT_VIEW, T0, "s1");
    ev[0].category = (ls_str){"shoes", 5};
    ev[1] = mk_value(EV_ADD_TO_CART, T0 + 1 * DAY, 60);
    ev[1].category = (ls_str){"shoes", 5};
    ev[1].session = (ls_str){"s2", 2};
    ev[2] = mk_value(EV_PURCHASE, T0 + 2 * DAY, 60);
    ev[2].discounted = 1;
    ev[2].has |= EVF_DISCOUNTED;
    ev[2].category = (ls_str){"shoes/running", 13};
    ev[2].session = (ls_str){"s3", 2};
    ev[3] = mk(EV_REVIEW, T0 + 2 * DAY + DAY / 2);
    ev[3].rating = 5;
    ev[3].has |= EVF_RATING;
    ev[4] = mk_value(EV_REFUND, T0 + 4 * DAY, 20);
}

START_TEST(late_event_gives_the_same_record)
{
    ls_event ev[5];
    story(ev);
    ls_features in_order, late, a, b;
    feature_init(&in_order);
    feature_init(&late);
    for (int i = 0; i < 5; i++)
        apply(&in_order, &ev[i]);
    static const int arrival[5] = {1, 2, 3, 4, 0}; /* the first event arrives last */
    for (int i = 0; i < 5; i++)
        apply(&late, &ev[arrival[i]]);
    roundtrip(&in_order, &a);
    roundtrip(&late, &b);
    assert_same(&a, &b, "late arrival");
    assert_same_values(&a, &b, T0 + 10 * DAY, "late arrival");
    /* and the story itself, by hand */
    ck_assert_int_eq(a.first_seen_ms, T0);
    ck_assert_int_eq(a.last_seen_ms, T0 + 4 * DAY);
    ck_assert_uint_eq(a.sessions, 3);
    ck_assert_uint_eq(a.ncategories, 2);
    ck_assert_uint_eq(a.good_reviews, 1);
    /* shoes: product_view (1.0) at T0 + add_to_cart (2.0) at T0+1d, seen from T0+4d */
    const feature_category *shoes = find_cat(&a, "shoes", 5);
    ck_assert_ptr_nonnull(shoes);
    ck_assert_uint_eq(shoes->count, 2);
    ck_assert(close_rel(shoes->recent, 1.0 * exp2(-4.0 / 3) + 2.0 * exp2(-3.0 / 3)));
    ck_assert(close_rel(shoes->decayed, 1.0 * exp2(-4.0 / 30) + 2.0 * exp2(-3.0 / 30)));
}
END_TEST

/* Heap's algorithm: calls fn for every permutation of idx[0..n-1]. */
static void permute(int *idx, int n, void (*fn)(const int *idx, void *arg), void *arg)
{
    int c[8] = {0};
    fn(idx, arg);
    for (int i = 1; i < n;) {
        if (c[i] < i) {
            int j = i % 2 ? c[i] : 0, t = idx[j];
            idx[j] = idx[i];
            idx[i] = t;
            fn(idx, arg);
            c[i]++;
            i = 1;
        } else {
            c[i++] = 0;
        }
    }
}

typedef struct {
    ls_event ev[5];
    ls_features reference;
    int seen;
} perm_state;

static void check_permutation(const int *idx, void *arg)
{
    perm_state *st = arg;
    ls_features f, decoded;
    char what[64];
    feature_init(&f);
    for (int i = 0; i < 5; i++)
        apply(&f, &st->ev[idx[i]]);
    roundtrip(&f, &decoded);
    snprintf(what, sizeof what, "order %d%d%d%d%d", idx[0], idx[1], idx[2], idx[3], idx[4]);
    assert_same(&decoded, &st->reference, what);
    assert_same_values(&decoded, &st->reference, T0 + 5 * DAY, what);
    st->seen++;
}

START_TEST(every_permutation_gives_the_same_record)
{
    static perm_state st;
    int idx[5] = {0, 1, 2, 3, 4};
    ls_features f;
    story(st.ev);
    feature_init(&f);
    for (int i = 0; i < 5; i++)
        apply(&f, &st.ev[i]);
    roundtrip(&f, &st.reference);
    st.seen = 0;
    permute(idx, 5, check_permutation, &st);
    ck_assert_int_eq(st.seen, 120);
}
END_TEST

/* EXPECTS A FIX in src/feature.c (note_session): a session is credited
 * with the decay weight of whichever of its events ARRIVES first, so two
 * events of one session give sessions_recent 0.5 in time order and 1.0 in
 * reverse order.  PROTOCOL.md section 2: "the features must come out the
 * same whatever the arrival order". */
START_TEST(session_weight_does_not_depend_on_arrival_order)
{
    ls_event a = mk_session(EV_PAGE_VIEW, T0, "s1");
    ls_event b = mk_session(EV_PRODUCT_VIEW, T0 + 3 * DAY, "s1");
    ls_features in_order, reversed;
    feature_init(&in_order);
    feature_init(&reversed);
    apply(&in_order, &a);
    apply(&in_order, &b);
    apply(&reversed, &b);
    apply(&reversed, &a);
    ck_assert_uint_eq(in_order.sessions, 1);
    ck_assert_uint_eq(reversed.sessions, 1);
    double x = fv(&in_order, "sessions_recent", T0 + 3 * DAY);
    double y = fv(&reversed, "sessions_recent", T0 + 3 * DAY);
    ck_assert_msg(close_rel(x, y), "sessions_recent: %g in time order, %g in reverse order", x, y);
    x = fv(&in_order, "sessions_decayed", T0 + 3 * DAY);
    y = fv(&reversed, "sessions_decayed", T0 + 3 * DAY);
    ck_assert_msg(close_rel(x, y), "sessions_decayed: %g in time order, %g in reverse order", x, y);
}
END_TEST

/* EXPECTS A FIX in src/feature.c (apply_opinion): the birthday of the
 * profile event that ARRIVES last wins, so a corrected birthday (newer ts)
 * is undone by an older profile event that arrives late.  The newest
 * profile (by ts) should win whatever the arrival order. */
START_TEST(newest_birthday_wins_whatever_the_arrival_order)
{
    ls_event old = mk(EV_PROFILE, T0), fixed = mk(EV_PROFILE, T0 + DAY);
    old.birthday_mmdd = 301;
    old.has |= EVF_BIRTHDAY;
    fixed.birthday_mmdd = 401;
    fixed.has |= EVF_BIRTHDAY;
    ls_features in_order, late;
    feature_init(&in_order);
    feature_init(&late);
    apply(&in_order, &old);
    apply(&in_order, &fixed);
    apply(&late, &fixed);
    apply(&late, &old);
    ck_assert_uint_eq(in_order.birthday_mmdd, 401);
    ck_assert_msg(late.birthday_mmdd == 401, "the older profile arrived late and won: %u", late.birthday_mmdd);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Money, sessions, categories                                         */
/* ------------------------------------------------------------------ */

START_TEST(money_features)
{
    ls_features f;
    feature_init(&f);
    ls_event add = mk(EV_ADD_TO_CART, T0);
    add.price = 30;
    add.quantity = 2;
    add.value = 60; /* what event_validate fills in */
    add.has |= EVF_PRICE | EVF_QUANTITY;
    apply(&f, &add);
    ls_event rm = mk_value(EV_REMOVE_FROM_CART, T0 + DAY / 2, 20);
    apply(&f, &rm);
    /* open cart = added - removed = 60 - 20 */
    ASSERT_FV(&f, "open_cart_value", T0 + DAY, 40.0);
    ck_assert_double_eq(feature_open_cart(&f), 40.0);
    ASSERT_FV(&f, "cart_open", T0 + DAY, 1.0);
    ASSERT_FV(&f, "spend", T0 + DAY, 0.0);
    ASSERT_FV(&f, "avg_order_value", T0 + DAY, 0.0);
    ASSERT_FV(&f, "discounted_share", T0 + DAY, 0.0);
    ASSERT_FV(&f, "refund_rate", T0 + DAY, 0.0);
    ASSERT_FV(&f, "days_since_last_cart", T0 + DAY, 1.0);

    ls_event p1 = mk_value(EV_PURCHASE, T0 + 1 * DAY, 100);
    p1.discounted = 1;
    p1.has |= EVF_DISCOUNTED;
    ls_event p2 = mk_value(EV_PURCHASE, T0 + 2 * DAY, 50);
    apply(&f, &p2);
    apply(&f, &p1); /* the first purchase arrives second */
    ck_assert_double_eq(f.spend, 150.0);
    ck_assert_double_eq(f.discounted_spend, 100.0);
    ck_assert_double_eq(f.first_purchase_value, 100.0);
    ck_assert_int_eq(f.first_purchase_ms, T0 + DAY);
    ck_assert_int_eq(f.last_purchase_ms, T0 + 2 * DAY);
    /* the purchase closed the cart: nothing added since */
    ASSERT_FV(&f, "open_cart_value", T0 + 4 * DAY, 0.0);
    ASSERT_FV(&f, "cart_open", T0 + 4 * DAY, 0.0);
    ASSERT_FV(&f, "spend", T0 + 4 * DAY, 150.0);
    ASSERT_FV(&f, "net_spend", T0 + 4 * DAY, 150.0);
    ASSERT_FV(&f, "avg_order_value", T0 + 4 * DAY, 75.0);
    ASSERT_FV(&f, "discounted_share", T0 + 4 * DAY, 100.0 / 150.0);
    ASSERT_FV(&f, "purchase_count", T0 + 4 * DAY, 2.0);
    ASSERT_FV(&f, "days_since_first_purchase", T0 + 4 * DAY, 3.0);
    ASSERT_FV(&f, "days_since_last_purchase", T0 + 4 * DAY, 2.0);
    ASSERT_FV(&f, "days_since_last_cart", T0 + 4 * DAY, 4.0);
    ck_assert_int_eq(f.last_negative_ms, 0);

    ls_event r = mk_value(EV_REFUND, T0 + 3 * DAY, 30);
    apply(&f, &r);
    ck_assert_double_eq(f.refunded, 30.0);
    ck_assert_int_eq(f.last_negative_ms, T0 + 3 * DAY);
    ASSERT_FV(&f, "refund_rate", T0 + 4 * DAY, 0.2);
    ASSERT_FV(&f, "net_spend", T0 + 4 * DAY, 120.0);
    ASSERT_FV(&f, "spend", T0 + 4 * DAY, 150.0); /* gross */

    /* refunds beyond the spend: the rate caps at 1, net spend at 0 */
    ls_event r2 = mk_value(EV_REFUND, T0 + 2 * DAY, 200);
    apply(&f, &r2);
    ck_assert_int_eq(f.last_negative_ms, T0 + 3 * DAY); /* the latest, not the last to arrive */
    ASSERT_FV(&f, "refund_rate", T0 + 4 * DAY, 1.0);
    ASSERT_FV(&f, "net_spend", T0 + 4 * DAY, 0.0);

    /* a fresh cart after the purchases: 500 - 120 = 380 */
    ls_event add2 = mk_value(EV_ADD_TO_CART, T0 + 5 * DAY, 500);
    apply(&f, &add2);
    ASSERT_FV(&f, "open_cart_value", T0 + 5 * DAY, 500.0);
    ASSERT_FV(&f, "cart_open", T0 + 5 * DAY, 1.0);
    ASSERT_FV(&f, "days_since_last_cart", T0 + 5 * DAY, 0.0);
    ls_event rm2 = mk_value(EV_REMOVE_FROM_CART, T0 + 5 * DAY + 1000, 120);
    apply(&f, &rm2);
    ASSERT_FV(&f, "open_cart_value", T0 + 6 * DAY, 380.0);
    /* a late cart add from before the last purchase does not reopen anything */
    ls_event late = mk_value(EV_ADD_TO_CART, T0 + DAY + DAY / 2, 70);
    apply(&f, &late);
    ASSERT_FV(&f, "open_cart_value", T0 + 6 * DAY, 380.0);
    ck_assert_int_eq(f.last_cart_ms, T0 + 5 * DAY);
    /* removing more than is in the cart: clamped at 0 when read */
    ls_event rm3 = mk_value(EV_REMOVE_FROM_CART, T0 + 5 * DAY + 2000, 1000);
    apply(&f, &rm3);
    ASSERT_FV(&f, "open_cart_value", T0 + 6 * DAY, 0.0);
    ASSERT_FV(&f, "cart_open", T0 + 6 * DAY, 0.0);
    ck_assert_double_eq(feature_open_cart(&f), 0.0);
}
END_TEST

/* Seven cart adds of 1, 2, 4 .. 64 in time order (the order a record is
 * built in: the replay of its history, history.h): the ring merges its
 * oldest slots instead of dropping them, so the cart holds all seven items
 * (127), and the encoding keeps that. */
START_TEST(a_long_cart_keeps_every_item)
{
    ls_event ev[7];
    ls_features f, back;
    feature_init(&f);
    for (int k = 0; k < 7; k++) {
        ev[k] = mk_value(EV_ADD_TO_CART, T0 + k * 3600000LL, (double)(1 << k));
        apply(&f, &ev[k]);
    }
    ck_assert_uint_eq(FEATURE_CART_RING, 6);
    ASSERT_FV(&f, "open_cart_value", T0 + DAY, 127.0);
    ASSERT_FV(&f, "cart_open", T0 + DAY, 1.0);
    roundtrip(&f, &back);
    assert_same(&f, &back, "a merged cart ring");
}
END_TEST

/* Adds and removes of one item each, n adds then n - 1 removes, priced or
 * not: one item is left, worth one item's price, however many events that
 * took; n adds then n removes leave nothing, and no open cart. */
START_TEST(adds_and_removes_leave_what_was_not_removed)
{
    for (int priced_removal = 0; priced_removal < 2; priced_removal++) {
        for (int n = 1; n <= 12; n++) {
            for (int all = 0; all < 2; all++) {
                ls_features f;
                feature_init(&f);
                int64_t t = T0;
                for (int k = 0; k < n; k++) {
                    ls_event add = mk_value(EV_ADD_TO_CART, t += 60000, 20.0);
                    apply(&f, &add);
                }
                for (int k = 0; k < n - 1 + all; k++) {
                    ls_event rm = mk_value(EV_REMOVE_FROM_CART, t += 60000, priced_removal ? 20.0 : 0.0);
                    apply(&f, &rm);
                }
                double want = all ? 0.0 : 20.0;
                ck_assert_msg(fabs(feature_open_cart(&f) - want) < 1e-3,
                              "%d adds, %d removes (%s): open cart %.4f, want %.1f", n, n - 1 + all,
                              priced_removal ? "priced" : "unpriced", feature_open_cart(&f), want);
                ck_assert_int_eq(feature_cart_is_open(&f), !all);
            }
        }
    }
}
END_TEST

/* A removal without a price takes out the cart's average price per item:
 * two items for 40, one removed unpriced, leaves 20; a purchase closes
 * what came before it. */
START_TEST(an_unpriced_removal_takes_the_average_item)
{
    ls_features f;
    feature_init(&f);
    ls_event add = mk_value(EV_ADD_TO_CART, T0, 40.0);
    add.quantity = 2;
    apply(&f, &add);
    ls_event rm = mk_value(EV_REMOVE_FROM_CART, T0 + 60000, 0.0);
    apply(&f, &rm);
    ck_assert_double_eq_tol(feature_open_cart(&f), 20.0, 1e-9);
    ck_assert_int_eq(feature_cart_is_open(&f), 1);
    ls_event buy = mk_value(EV_PURCHASE, T0 + 120000, 20.0);
    apply(&f, &buy);
    ck_assert_double_eq(feature_open_cart(&f), 0.0);
    ck_assert_int_eq(feature_cart_is_open(&f), 0);
    for (int k = 0; k < 8; k++) { /* old slots before the purchase are dropped, not merged in */
        ls_event again = mk_value(EV_ADD_TO_CART, T0 + (3 + k) * 60000, 5.0);
        apply(&f, &again);
    }
    ck_assert_double_eq_tol(feature_open_cart(&f), 40.0, 1e-9);
}
END_TEST

/* A removal takes out at most what the cart holds since the last order:
 * an item left from before an order, or added before tracking began,
 * removed now, does not cancel the next cart. */
START_TEST(a_removal_takes_out_no_more_than_the_cart_holds)
{
    static const struct {
        const char *what;
        double add_before, purchase, remove, add_after; /* 0: no such event; remove < 0: unpriced */
        double want;
    } rows[] = {
        {"order, unpriced remove, add 25", 0, 20, -1, 25, 25},
        {"add 20, order, remove 20, add 30", 20, 20, 20, 30, 30},
        {"remove 20 (empty cart), add 20", 0, 0, 20, 20, 20},
        {"add 20, remove 50, add 30", 20, 0, 50, 30, 30},
        {"unpriced remove (empty cart), add 15", 0, 0, -1, 15, 15},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        ls_features f;
        feature_init(&f);
        int64_t t = T0;
        if (rows[i].add_before > 0) {
            ls_event e = mk_value(EV_ADD_TO_CART, t += 60000, rows[i].add_before);
            apply(&f, &e);
        }
        if (rows[i].purchase > 0) {
            ls_event e = mk_value(EV_PURCHASE, t += 60000, rows[i].purchase);
            apply(&f, &e);
        }
        ls_event rm = mk_value(EV_REMOVE_FROM_CART, t += 60000, rows[i].remove > 0 ? rows[i].remove : 0.0);
        apply(&f, &rm);
        ls_event add = mk_value(EV_ADD_TO_CART, t += 60000, rows[i].add_after);
        apply(&f, &add);
        ck_assert_msg(fabs(feature_open_cart(&f) - rows[i].want) < 1e-3, "%s: open cart %.4f, want %.1f",
                      rows[i].what, feature_open_cart(&f), rows[i].want);
        ck_assert_msg(feature_cart_is_open(&f), "%s: the cart is not open", rows[i].what);
    }
}
END_TEST

/* The cart keeps its values as 32-bit floats; open_cart_value reads them
 * back as the decimals they were sent as (89.9, not 89.9000015...), so a
 * rule `open_cart_value == 89.9` holds, also for a sum of lines. */
START_TEST(open_cart_value_reads_the_decimals_sent)
{
    ls_features f;
    feature_init(&f);
    ls_event add = mk_value(EV_ADD_TO_CART, T0, 89.9);
    apply(&f, &add);
    ck_assert(fv(&f, "open_cart_value", T0 + HOUR) == 89.9);
    for (int i = 1; i <= 3; i++) {
        ls_event line = mk_value(EV_ADD_TO_CART, T0 + i * 1000, 0.1);
        apply(&f, &line);
    }
    ck_assert(fv(&f, "open_cart_value", T0 + HOUR) == 90.2);
    ls_event big = mk_value(EV_ADD_TO_CART, T0 + 5000, 1234567.0);
    apply(&f, &big);
    ck_assert(fv(&f, "open_cart_value", T0 + HOUR) == 1234657.0); /* 7 digits: 1234567 + 90.2, rounded */
}
END_TEST

/* A checkout while the cart holds nothing since the last order (a
 * storefront that sends no add_to_cart) puts its basket in the cart: its
 * value and quantity, open from the checkout's time; a checkout of an open
 * cart leaves the cart as it is; the order closes it; an unpriced
 * checkout opens a basket of one item worth nothing known. */
START_TEST(a_checkout_fills_an_empty_basket)
{
    ls_features f;
    feature_init(&f);
    ls_event co = mk_value(EV_CHECKOUT, T0, 80.0);
    co.quantity = 3;
    apply(&f, &co);
    ASSERT_FV(&f, "open_cart_value", T0 + HOUR, 80.0);
    ASSERT_FV(&f, "cart_open", T0 + HOUR, 1.0);
    ASSERT_FV(&f, "cart_open_recent", T0, 1.0);
    ASSERT_FV(&f, "checkout_open", T0 + HOUR, 1.0);
    ck_assert_int_eq(f.last_cart_ms, T0);
    int items = 0;
    for (int i = 0; i < FEATURE_CART_RING; i++)
        items += f.cart[i].ts_ms > f.last_purchase_ms ? f.cart[i].items : 0;
    ck_assert_int_eq(items, 3);
    /* a second checkout of that basket adds nothing; an add does */
    ls_event again = mk_value(EV_CHECKOUT, T0 + 60000, 80.0);
    apply(&f, &again);
    ASSERT_FV(&f, "open_cart_value", T0 + HOUR, 80.0);
    ls_event add = mk_value(EV_ADD_TO_CART, T0 + 120000, 15.0);
    apply(&f, &add);
    ASSERT_FV(&f, "open_cart_value", T0 + HOUR, 95.0);
    ls_event buy = mk_value(EV_PURCHASE, T0 + 180000, 95.0);
    apply(&f, &buy);
    ASSERT_FV(&f, "cart_open", T0 + HOUR, 0.0);
    ASSERT_FV(&f, "open_cart_value", T0 + HOUR, 0.0);
    /* a tracked cart then its checkout: the cart's value, not twice it */
    ls_event cart = mk_value(EV_ADD_TO_CART, T0 + DAY, 40.0);
    apply(&f, &cart);
    ls_event co2 = mk_value(EV_CHECKOUT, T0 + DAY + 60000, 40.0);
    apply(&f, &co2);
    ASSERT_FV(&f, "open_cart_value", T0 + DAY + HOUR, 40.0);
    ck_assert_int_eq(f.last_cart_ms, T0 + DAY);
    /* a checkout stamped 1 minute after an order is that order's (clocks
     * apart): no basket; one 2 hours after it is a new basket */
    ls_features h;
    feature_init(&h);
    ls_event order = mk_value(EV_PURCHASE, T0, 70.0);
    apply(&h, &order);
    ls_event skewed = mk_value(EV_CHECKOUT, T0 + 60000, 70.0);
    apply(&h, &skewed);
    ASSERT_FV(&h, "cart_open", T0 + HOUR, 0.0);
    ASSERT_FV(&h, "checkout_open", T0 + HOUR, 0.0); /* completed: the order's own */
    ASSERT_FV(&h, "checkout_open_recent", T0 + HOUR, 0.0);
    ls_event later = mk_value(EV_CHECKOUT, T0 + 2 * HOUR, 25.0);
    apply(&h, &later);
    ASSERT_FV(&h, "cart_open", T0 + 3 * HOUR, 1.0);
    ASSERT_FV(&h, "open_cart_value", T0 + 3 * HOUR, 25.0);
    ASSERT_FV(&h, "checkout_open", T0 + 3 * HOUR, 1.0);
    /* an unpriced checkout of an empty cart: open, of unknown value */
    ls_features g;
    feature_init(&g);
    ls_event bare = mk_value(EV_CHECKOUT, T0, 0.0);
    apply(&g, &bare);
    ASSERT_FV(&g, "cart_open", T0 + HOUR, 1.0);
    ASSERT_FV(&g, "open_cart_value", T0 + HOUR, 0.0);
    ls_features back;
    roundtrip(&f, &back);
    assert_same(&f, &back, "a basket from a checkout");
}
END_TEST

/* The first storefront visit is kept: after orders (an order history
 * imported, then a storefront) it says the orders came first; a visit
 * before the first order says they did not; a merge keeps the earlier;
 * it survives the encoding, and a record of version 6 (which did not keep
 * it) reads its first event in its place. */
START_TEST(the_first_visit_says_whether_orders_came_first)
{
    ls_features f, back;
    feature_init(&f);
    ls_event buy = mk_value(EV_PURCHASE, T0, 30.0);
    apply(&f, &buy);
    ck_assert_int_eq(f.first_visit_ms, 0);
    ck_assert_int_eq(feature_orders_before_visits(&f), 0); /* no visit: an order feed, not this rule */
    ls_event mail = mk(EV_EMAIL_OPEN, T0 + DAY);
    apply(&f, &mail); /* not a visit */
    ck_assert_int_eq(f.first_visit_ms, 0);
    ls_event view = mk(EV_PAGE_VIEW, T0 + 3 * DAY);
    apply(&f, &view);
    ck_assert_int_eq(f.first_visit_ms, T0 + 3 * DAY);
    ck_assert_int_eq(feature_orders_before_visits(&f), 1);
    roundtrip(&f, &back);
    assert_same(&f, &back, "orders first");
    ck_assert_int_eq(back.first_visit_ms, T0 + 3 * DAY);
    /* an anonymous history that visited before the order, merged in */
    ls_features anon;
    feature_init(&anon);
    ls_event early = mk(EV_PRODUCT_VIEW, T0 - DAY);
    apply(&anon, &early);
    ls_features merged = f;
    feature_merge(&merged, &anon, &DECAY);
    ck_assert_int_eq(merged.first_visit_ms, T0 - DAY);
    ck_assert_int_eq(feature_orders_before_visits(&merged), 0);
    /* a version 6 record: the first event stands in (never "orders first") */
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n;
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    buf[0] = 6;
    ls_features old;
    ck_assert_int_eq(feature_decode(&old, buf, n), LS_EPARSE); /* the first-visit bit is not version 6's */
    ls_features plain = f;
    plain.first_visit_ms = plain.first_seen_ms;
    ck_assert_int_eq(feature_encode(&plain, buf, sizeof buf, &n), LS_OK);
    buf[0] = 6;
    ck_assert_int_eq(feature_decode(&old, buf, n), LS_OK);
    ck_assert_int_eq(old.first_visit_ms, T0);
    ck_assert_int_eq(feature_orders_before_visits(&old), 0);
}
END_TEST

/* Eight categories browsed heavily a month or two ago fill the table; ten
 * views of a ninth today must still enter it, and lead on recent interest:
 * what the customer looks at now is what to recommend. */
START_TEST(todays_category_enters_a_table_full_of_old_interest)
{
    ls_features f;
    feature_init(&f);
    char name[16];
    for (int c = 0; c < FEATURE_MAX_CATEGORIES; c++) {
        snprintf(name, sizeof name, "old%d", c);
        for (int k = 0; k < 30; k++) {
            ls_event v = mk_cat(EV_PRODUCT_VIEW, T0 + (int64_t)(c * 5 + k % 5) * DAY + k * 60000, name);
            apply(&f, &v);
        }
    }
    int64_t today = T0 + 80 * DAY;
    for (int k = 0; k < 10; k++) {
        ls_event v = mk_cat(EV_PRODUCT_VIEW, today + k * 60000, "books");
        apply(&f, &v);
    }
    int found = -1;
    for (int i = 0; i < f.ncategories; i++)
        if (f.categories[i].len == 5 && memcmp(f.categories[i].name, "books", 5) == 0)
            found = i;
    ck_assert_msg(found >= 0, "books, viewed 10 times today, is not in the category table");
    ck_assert_uint_eq(f.categories[found].count, 10);
    for (int i = 0; i < f.ncategories; i++)
        ck_assert(i == found || f.categories[i].recent < f.categories[found].recent);
    /* one page view of yet another category does not push books out */
    ls_event pv = mk_cat(EV_PAGE_VIEW, today + 3600000LL, "toys");
    apply(&f, &pv);
    ck_assert_uint_eq(f.categories[found].count, 10);
}
END_TEST

START_TEST(reviews_and_birthday)
{
    ls_features f;
    feature_init(&f);
    static const int ratings[] = {1, 2, 3, 4, 5, 5};
    for (size_t i = 0; i < sizeof ratings / sizeof ratings[0]; i++) {
        ls_event ev = mk(EV_REVIEW, T0 + (int64_t)i * 1000);
        ev.rating = ratings[i];
        ev.has |= EVF_RATING;
        apply(&f, &ev);
    }
    ASSERT_FV(&f, "avg_rating", T0, 20.0 / 6.0);
    ASSERT_FV(&f, "bad_reviews", T0, 2.0);
    ASSERT_FV(&f, "good_reviews", T0, 3.0);
    ASSERT_FV(&f, "has_birthday", T0, 0.0);
    ck_assert_int_eq(f.last_review_ms, T0 + 5000);
    ck_assert_int_eq(f.last_negative_ms, T0 + 1000); /* the 2-star review */
    ls_event p = mk(EV_PROFILE, T0);
    p.birthday_mmdd = 1224;
    p.has |= EVF_BIRTHDAY;
    apply(&f, &p);
    ck_assert_uint_eq(f.birthday_mmdd, 1224);
    ASSERT_FV(&f, "has_birthday", T0, 1.0);
    /* a profile event without a birthday keeps the known one */
    ls_event q = mk(EV_PROFILE, T0 + DAY);
    apply(&f, &q);
    ck_assert_uint_eq(f.birthday_mmdd, 1224);
}
END_TEST

/* A review without stars (v1 makes rating optional) is a review: it counts,
 * ends a review request and earns review points once a day, but adds
 * nothing to the average, the good or the bad reviews, and is no complaint. */
START_TEST(a_review_without_a_rating_counts_outside_the_ratings)
{
    ls_features f;
    feature_init(&f);
    ls_event a = mk(EV_REVIEW, T0), b = mk(EV_REVIEW, T0 + 1000);
    apply(&f, &a);
    apply(&f, &b);
    ASSERT_FV(&f, "review_count", T0, 2.0);
    ASSERT_FV(&f, "avg_rating", T0, 0.0);
    ASSERT_FV(&f, "good_reviews", T0, 0.0);
    ASSERT_FV(&f, "bad_reviews", T0, 0.0);
    ck_assert_uint_eq(f.rating_n, 0);
    ck_assert_uint_eq(f.review_days, 1); /* two on one day: one review day */
    ck_assert_int_eq(f.last_review_ms, T0 + 1000);
    ck_assert_int_eq(f.last_negative_ms, 0);
    ck_assert_int_eq(f.last_engaged_ms, T0 + 1000);
    ls_event c = mk(EV_REVIEW, T0 + DAY);
    c.rating = 4;
    c.has |= EVF_RATING;
    apply(&f, &c);
    ASSERT_FV(&f, "avg_rating", T0 + DAY, 4.0);
    ASSERT_FV(&f, "good_reviews", T0 + DAY, 1.0);
    ck_assert_uint_eq(f.review_days, 2);
}
END_TEST

/* E-mails opened or clicked: the opens' and the clicks' decayed counts
 * added (a click proves its mail was opened).  Worked by hand with half-
 * lives of 3 and 30 days: an open at T0 and a click 3 days later, seen 3
 * days after the click: recent 0.25 + 0.5, decayed 0.5^(6/30) + 0.5^(3/30). */
START_TEST(email_engaged_adds_the_opens_and_the_clicks)
{
    ls_features f;
    feature_init(&f);
    ASSERT_FV(&f, "email_engaged_recent", T0, 0.0);
    ls_event open = mk(EV_EMAIL_OPEN, T0), click = mk(EV_EMAIL_CLICK, T0 + 3 * DAY);
    apply(&f, &open);
    apply(&f, &click);
    int64_t at = T0 + 6 * DAY;
    ASSERT_FV(&f, "email_engaged_recent", at, 0.25 + 0.5);
    ASSERT_FV(&f, "email_engaged_decayed", at, pow(0.5, 6.0 / 30.0) + pow(0.5, 3.0 / 30.0));
    ck_assert_double_eq_tol(fv(&f, "email_engaged_recent", at),
                            fv(&f, "email_open_recent", at) + fv(&f, "email_click_recent", at), 1e-12);
    /* a click alone counts as an open alone */
    ls_features o, c;
    feature_init(&o);
    feature_init(&c);
    apply(&o, &open);
    ls_event click0 = mk(EV_EMAIL_CLICK, T0);
    apply(&c, &click0);
    ck_assert_double_eq(fv(&o, "email_engaged_decayed", at), fv(&c, "email_engaged_decayed", at));
}
END_TEST

/* A visit sent without a session id counts as a session of its half hour
 * of the UTC clock: views at :00, :10 and :29 are one session, one at :31
 * another; a view with an id is its own session whatever its time; an
 * e-mail open without one is no visit and no session.  The count does not
 * depend on the order the events arrive in. */
START_TEST(a_visit_without_a_session_id_is_a_session_of_its_half_hour)
{
    const int64_t h = T0 - T0 % (30 * MINUTE); /* the start of T0's half hour */
    const struct {
        event_type type;
        int64_t ts;
        const char *session;
    } evs[] = {{EV_PAGE_VIEW, h, ""},       {EV_PRODUCT_VIEW, h + 10 * MINUTE, ""},
               {EV_ADD_TO_CART, h + 29 * MINUTE, ""}, {EV_PRODUCT_VIEW, h + 31 * MINUTE, ""},
               {EV_PRODUCT_VIEW, h + 5 * MINUTE, "s1"}, {EV_EMAIL_OPEN, h + 90 * MINUTE, ""}};
    const size_t n = sizeof evs / sizeof evs[0];
    ls_features fwd, rev;
    feature_init(&fwd);
    feature_init(&rev);
    for (size_t i = 0; i < n; i++) {
        ls_event a = mk_session(evs[i].type, evs[i].ts, evs[i].session);
        ls_event b = mk_session(evs[n - 1 - i].type, evs[n - 1 - i].ts, evs[n - 1 - i].session);
        apply(&fwd, &a);
        apply(&rev, &b);
    }
    ck_assert_uint_eq(fwd.sessions, 3);
    ck_assert_uint_eq(rev.sessions, 3);
    int64_t at = h + DAY;
    ck_assert(close_rel(fv(&fwd, "sessions_recent", at), fv(&rev, "sessions_recent", at)));
    ck_assert(close_rel(fv(&fwd, "sessions_decayed", at), fv(&rev, "sessions_decayed", at)));
}
END_TEST

START_TEST(sessions_are_counted_once_per_id)
{
    ls_features f;
    feature_init(&f);
    /* "": e-mail clicks without a session, which are no visit: no session */
    static const char *const ids[] = {"s1", "s1", "s2", "", "s1", "s3", "s2", ""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ls_event ev = mk_session(ids[i][0] ? EV_PAGE_VIEW : EV_EMAIL_CLICK, T0, ids[i]);
        apply(&f, &ev);
    }
    ASSERT_FV(&f, "sessions", T0, 3.0);
    ASSERT_FV(&f, "sessions_recent", T0, 3.0);
    ASSERT_FV(&f, "sessions_recent", T0 + 3 * DAY, 1.5);
    ASSERT_FV(&f, "sessions_decayed", T0 + 30 * DAY, 1.5);
    ASSERT_FV(&f, "page_view_count", T0, 6.0); /* events still count, sessions or not */
    ASSERT_FV(&f, "email_click_count", T0, 2.0);

    /* the last FEATURE_SESSION_RING distinct ids are remembered */
    ls_event s4 = mk_session(EV_PAGE_VIEW, T0, "s4"), s5 = mk_session(EV_PAGE_VIEW, T0, "s5");
    apply(&f, &s4);
    apply(&f, &s5); /* s1 is the oldest and drops out of the ring */
    ck_assert_uint_eq(f.sessions, 5);
    static const char *const recent_ids[] = {"s2", "s3", "s4", "s5"};
    for (int i = 0; i < 4; i++) {
        ls_event ev = mk_session(EV_SEARCH, T0, recent_ids[i]);
        apply(&f, &ev);
    }
    ck_assert_uint_eq(f.sessions, 5);
    ASSERT_FV(&f, "sessions_recent", T0, 5.0);
}
END_TEST

/* Categories c1..c8 get k product_views each (interest k), then "strong"
 * comes with a purchase (interest 3) and replaces the weakest, c1; "weak"
 * comes with a page_view (0.5), weaker than every kept one, and is dropped. */
START_TEST(category_top_k_keeps_the_strongest)
{
    ls_features f;
    feature_init(&f);
    char names[8][4];
    for (int k = 1; k <= 8; k++) {
        snprintf(names[k - 1], sizeof names[k - 1], "c%d", k);
        for (int j = 0; j < k; j++) {
            ls_event ev = mk_cat(EV_PRODUCT_VIEW, T0, names[k - 1]);
            apply(&f, &ev);
        }
    }
    ck_assert_uint_eq(f.ncategories, FEATURE_MAX_CATEGORIES);
    ck_assert_uint_eq(FEATURE_MAX_CATEGORIES, 8);
    ASSERT_FV(&f, "categories", T0, 8.0);
    for (int k = 1; k <= 8; k++) {
        const feature_category *c = find_cat(&f, names[k - 1], strlen(names[k - 1]));
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(c->count, (unsigned)k);
        ck_assert_double_eq_tol(c->decayed, k, 1e-12);
        ck_assert_double_eq_tol(c->recent, k, 1e-12);
    }

    ls_event strong = mk_cat(EV_PURCHASE, T0, "strong");
    apply(&f, &strong);
    ls_event weak = mk_cat(EV_PAGE_VIEW, T0, "weak");
    apply(&f, &weak);
    ls_event more = mk_cat(EV_PAGE_VIEW, T0, "c3");
    apply(&f, &more);

    ck_assert_uint_eq(f.ncategories, 8);
    ck_assert_ptr_null(find_cat(&f, "c1", 2));
    ck_assert_ptr_null(find_cat(&f, "weak", 4));
    const feature_category *s = find_cat(&f, "strong", 6);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(s->count, 1);
    ck_assert_double_eq_tol(s->decayed, 3.0, 1e-12);
    const feature_category *c3 = find_cat(&f, "c3", 2);
    ck_assert_ptr_nonnull(c3);
    ck_assert_uint_eq(c3->count, 4);
    ck_assert_double_eq_tol(c3->decayed, 3.5, 1e-12);
    for (int k = 2; k <= 8; k++)
        ck_assert_ptr_nonnull(find_cat(&f, names[k - 1], strlen(names[k - 1])));

    /* types that say nothing about a category (refund, email_open) add none */
    ls_features g;
    feature_init(&g);
    ls_event r = mk_cat(EV_REFUND, T0, "x");
    ls_event e = mk_cat(EV_EMAIL_OPEN, T0, "y");
    apply(&g, &r);
    apply(&g, &e);
    ck_assert_uint_eq(g.ncategories, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Merging                                                             */
/* ------------------------------------------------------------------ */

static void merge_events(ls_event ev[6])
{
    ev[0] = mk_session(EV_PRODUCT_VIEW, T0, "anon-session");
    ev[0].category = (ls_str){"books", 5};
    ev[1] = mk_value(EV_ADD_TO_CART, T0 + DAY, 40);
    ev[1].category = (ls_str){"books", 5};
    ev[2] = mk_value(EV_PURCHASE, T0 + 2 * DAY, 40);
    ev[2].session = (ls_str){"cust-session-1", 14};
    ev[2].category = (ls_str){"books", 5};
    ev[3] = mk(EV_PROFILE, T0 + 3 * DAY);
    ev[3].birthday_mmdd = 704;
    ev[3].has |= EVF_BIRTHDAY;
    ev[4] = mk(EV_REVIEW, T0 + 4 * DAY);
    ev[4].rating = 2;
    ev[4].has |= EVF_RATING;
    ev[4].category = (ls_str){"music", 5};
    ev[5] = mk_value(EV_PURCHASE, T0 + 5 * DAY, 15.5);
    ev[5].discounted = 1;
    ev[5].has |= EVF_DISCOUNTED;
    ev[5].session = (ls_str){"cust-session-2", 14};
}

START_TEST(merge_equals_one_record_with_all_events)
{
    ls_event ev[6];
    merge_events(ev);
    ls_features all, anon, cust, ab, ba, x, y;
    feature_init(&all);
    feature_init(&anon);
    feature_init(&cust);
    for (int i = 0; i < 6; i++)
        apply(&all, &ev[i]);
    /* the anonymous visitor saw events 0, 1 and 4; the customer 2, 3, 5 */
    apply(&anon, &ev[0]);
    apply(&anon, &ev[1]);
    apply(&anon, &ev[4]);
    apply(&cust, &ev[2]);
    apply(&cust, &ev[3]);
    apply(&cust, &ev[5]);

    ab = cust;
    feature_merge(&ab, &anon, &DECAY);
    ba = anon;
    feature_merge(&ba, &cust, &DECAY);
    roundtrip(&all, &x);
    roundtrip(&ab, &y);
    assert_same(&y, &x, "merge(customer, anonymous)");
    assert_same_values(&y, &x, T0 + 7 * DAY, "merge(customer, anonymous)");
    roundtrip(&ba, &y);
    assert_same(&y, &x, "merge(anonymous, customer)");
    assert_same_values(&y, &x, T0 + 7 * DAY, "merge(anonymous, customer)");
    /* the anonymous session, the half hour of the add-to-cart sent
     * without one, and the customer's two */
    ck_assert_uint_eq(x.sessions, 4);
    ck_assert_int_eq(x.first_purchase_ms, T0 + 2 * DAY);
    ck_assert_int_eq(x.last_purchase_ms, T0 + 5 * DAY);

    /* merging with an empty record changes nothing */
    ls_features empty, e1 = anon;
    feature_init(&empty);
    feature_merge(&e1, &empty, &DECAY);
    assert_same(&e1, &anon, "merge(anonymous, empty)");
    feature_merge(&empty, &anon, &DECAY);
    assert_same(&empty, &anon, "merge(empty, anonymous)");
}
END_TEST

/* EXPECTS A FIX in src/feature.c (merge_sessions): a session id present in
 * both records is counted once in `sessions` but its weight is added twice
 * to sessions_recent / sessions_decayed (2 instead of 1 here), so the
 * merged record differs from one that saw all the events. */
START_TEST(merge_counts_a_shared_session_once)
{
    ls_event a = mk_session(EV_PAGE_VIEW, T0, "s1");
    ls_event b = mk_session(EV_PRODUCT_VIEW, T0, "s1");
    ls_features all, anon, cust;
    feature_init(&all);
    feature_init(&anon);
    feature_init(&cust);
    apply(&all, &a);
    apply(&all, &b);
    apply(&anon, &a);
    apply(&cust, &b);
    feature_merge(&cust, &anon, &DECAY);
    ck_assert_uint_eq(all.sessions, 1);
    ck_assert_uint_eq(cust.sessions, 1);
    ASSERT_FV(&all, "sessions_recent", T0, 1.0);
    ASSERT_FV(&cust, "sessions_recent", T0, 1.0);
    ASSERT_FV(&cust, "sessions_decayed", T0, 1.0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

/* A record with every field set and 8 categories of the longest names. */
static void rich_record(ls_features *f)
{
    static char names[8][EVENT_MAX_STR];
    feature_init(f);
    for (int t = 0; t < EV_TYPE_COUNT; t++) {
        ls_event ev = mk_session((event_type)t, T0 + t * 3600000LL, t % 2 ? "odd" : "even");
        ev.value = 10.25 * (t + 1);
        ev.has |= EVF_VALUE;
        if (t == EV_REVIEW) {
            ev.rating = 1;
            ev.has |= EVF_RATING;
        }
        if (t == EV_PROFILE) {
            ev.birthday_mmdd = 229;
            ev.has |= EVF_BIRTHDAY;
        }
        if (t == EV_PURCHASE) {
            ev.discounted = 1;
            ev.has |= EVF_DISCOUNTED;
            ev.order_id = (ls_str){"o1", 2};
        }
        apply(f, &ev);
        if (t == EV_PURCHASE) { /* a second line of the order: 3 units */
            ev.quantity = 3;
            ev.has |= EVF_QUANTITY;
            feature_apply_line(f, &ev, &DECAY, 1);
        }
    }
    for (int i = 0; i < 8; i++) {
        memset(names[i], 'a' + i, EVENT_MAX_STR);
        ls_event ev = mk(EV_PRODUCT_VIEW, T0 - i * DAY);
        ev.category = (ls_str){names[i], EVENT_MAX_STR};
        apply(f, &ev);
    }
}

/* A customer of a few days: sessions, a category, a cart, an order of
 * two lines, a review, a birthday (every kind of field, most of them
 * zero, as most records are). */
static void small_record(ls_features *f)
{
    feature_init(f);
    ls_event ev = mk_session(EV_PAGE_VIEW, T0, "s1");
    apply(f, &ev);
    ev = mk_session(EV_PRODUCT_VIEW, T0 + 60000, "s1");
    ev.category = (ls_str){"shoes/running", 13};
    apply(f, &ev);
    ev = mk_session(EV_ADD_TO_CART, T0 + 120000, "s1");
    ev.value = 89.9;
    ev.has |= EVF_VALUE;
    ev.category = (ls_str){"shoes/running", 13};
    apply(f, &ev);
    ev = mk_session(EV_PURCHASE, T0 + DAY, "s2");
    ev.value = 89.9;
    ev.has |= EVF_VALUE;
    ev.order_id = (ls_str){"o7", 2};
    apply(f, &ev);
    ev.value = 12.5;
    ev.quantity = 2;
    ev.has |= EVF_QUANTITY;
    feature_apply_line(f, &ev, &DECAY, 1);
    ev = mk_session(EV_REVIEW, T0 + 3 * DAY, "s3");
    ev.rating = 5;
    ev.has |= EVF_RATING;
    apply(f, &ev);
    ev = mk(EV_PROFILE, T0 + 3 * DAY + 1000);
    ev.birthday_mmdd = 1224;
    ev.has |= EVF_BIRTHDAY;
    apply(f, &ev);
}

/* small_record as the version 3 encoder wrote it (the last build that
 * wrote version 3 made these bytes). */
static const char V3_SMALL_HEX[] =
    "0301c804e87f58df8b0100000068e5cf8b010000e87f58df8b0100000100000001000000000000000100000000000000"
    "000000000100000000000000010000000000000000000000000000000000000000000000000000000000000001000000"
    "d3ffff3e2c05003f000000006e0a003f0000000000000000fc44213f00000000d3ff7f3f000000000000000000000000"
    "000000000000000000000000000000000000803f3cdb6e3f37dc6e3f0000000032dd6e3f00000000000000007c70743f"
    "00000000fcff7f3f000000000000000000000000000000000000000000000000000000000000803f03000000c9b85108"
    "c03ce7cf8b01000010b4510500c40bd58b010000a3b55106007c58df8b010000000000000000000000000000cf530840"
    "6ad338409a9999999999594000000000000000000000000000000000c03ce7cf8b010000cdccb3420100000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000c40bd58b01000000c40bd58b010000c03ce7cf8b0100009a99999999995940"
    "007c58df8b01000000000000000000000500000001000000000000000100000002000000010000000300000000000000"
    "00000000000000000000000000000000010000000d0073686f65732f72756e6e696e6702000000040dc03fa7253340";

/* Version 3 records (every field at full width) still decode, to the same
 * record: re-encoded they give the version 4 bytes of the record itself.
 * The test's own version 3 writer is checked against bytes the real one
 * wrote.  Version 4 is smaller: a quarter to a third for a record like
 * most. */
START_TEST(records_of_version_three_still_decode)
{
    ls_features f, g;
    uint8_t v3[FEATURE_MAX_ENCODED], a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
    size_t n3, na, nb;
    small_record(&f);
    n3 = tu_encode_v3_record(&f, v3);
    ck_assert_uint_eq(n3 * 2, strlen(V3_SMALL_HEX));
    for (size_t i = 0; i < n3; i++) {
        unsigned byte;
        ck_assert_int_eq(sscanf(V3_SMALL_HEX + 2 * i, "%2x", &byte), 1);
        ck_assert_uint_eq(v3[i], byte);
    }
    for (int k = 0; k < 2; k++) {
        if (k == 1)
            rich_record(&f);
        n3 = tu_encode_v3_record(&f, v3);
        ck_assert_int_eq(feature_decode(&g, v3, n3), LS_OK);
        ck_assert_int_eq(g.last_engaged_ms, g.last_seen_ms); /* not kept before version 5 */
        f.last_engaged_ms = f.last_seen_ms;
        ck_assert_int_eq(feature_encode(&f, a, sizeof a, &na), LS_OK);
        ck_assert_int_eq(feature_encode(&g, b, sizeof b, &nb), LS_OK);
        ck_assert_uint_eq(a[0], FEATURE_RECORD_VERSION);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na);
        ck_assert_uint_lt(na, n3);
        if (k == 0)
            ck_assert_uint_le(na * 2, n3); /* 527 bytes -> under half */
    }
}
END_TEST

/* A complaint (refund, support ticket, review of 1 or 2 stars) is
 * contact, not engagement: it moves last_seen but not last_engaged, so
 * days_since_last_engaged keeps counting from the last real visit or
 * order.  Version 5 stores last_engaged only when it differs from
 * last_seen; a version 4 record (no such field) decodes with
 * last_engaged = last_seen, and the bit is refused in version 4. */
START_TEST(complaints_are_not_engagement)
{
    const feature_ctx at = {T0 + 40 * DAY, DECAY};
    int engaged = feature_lookup("days_since_last_engaged"), seen = feature_lookup("days_since_last_seen");
    ck_assert_int_ge(engaged, 0);
    ls_features f, g;
    feature_init(&f);
    ck_assert_double_eq(feature_value(&f, engaged, &at), FEATURE_NEVER_DAYS);
    ls_event ev = mk(EV_PURCHASE, T0);
    ev.value = 50;
    ev.has |= EVF_VALUE;
    apply(&f, &ev);
    ck_assert_int_eq(f.last_engaged_ms, T0);
    ls_event refund = mk(EV_REFUND, T0 + 30 * DAY), ticket = mk(EV_SUPPORT_TICKET, T0 + 31 * DAY);
    ls_event bad = mk(EV_REVIEW, T0 + 32 * DAY), good = mk(EV_REVIEW, T0 + 10 * DAY);
    bad.rating = 2, bad.has |= EVF_RATING;
    good.rating = 3, good.has |= EVF_RATING;
    apply(&f, &refund);
    apply(&f, &ticket);
    apply(&f, &bad);
    ck_assert_int_eq(f.last_seen_ms, T0 + 32 * DAY);
    ck_assert_int_eq(f.last_engaged_ms, T0);
    ck_assert_double_eq_tol(feature_value(&f, seen, &at), 8.0, 1e-9);
    ck_assert_double_eq_tol(feature_value(&f, engaged, &at), 40.0, 1e-9);
    apply(&f, &good); /* a review of 3 stars is engagement, here a late one */
    ck_assert_int_eq(f.last_engaged_ms, T0 + 10 * DAY);

    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n;
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    ck_assert_uint_eq(buf[0], FEATURE_RECORD_VERSION);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
    ck_assert_int_eq(g.last_engaged_ms, T0 + 10 * DAY);
    buf[0] = 4; /* the V5_ENGAGED bit means nothing in version 4: corrupt */
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);

    /* only complaints: never engaged */
    ls_features c;
    feature_init(&c);
    apply(&c, &ticket);
    ck_assert_int_eq(c.last_engaged_ms, 0);
    ck_assert_int_eq(feature_encode(&c, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
    ck_assert_int_eq(g.last_engaged_ms, 0);
    ck_assert_double_eq(feature_value(&g, engaged, &at), FEATURE_NEVER_DAYS);

    /* engaged last: nothing more is stored, and a version 4 record with
     * the same bytes reads the same */
    ls_features e;
    feature_init(&e);
    apply(&e, &ev);
    size_t n5;
    ck_assert_int_eq(feature_encode(&e, buf, sizeof buf, &n5), LS_OK);
    buf[0] = 4;
    ck_assert_int_eq(feature_decode(&g, buf, n5), LS_OK);
    ck_assert_int_eq(g.last_engaged_ms, T0);

    /* a merge (alias) keeps the later engagement of the two */
    ls_features m = f;
    feature_merge(&m, &e, &DECAY);
    ck_assert_int_eq(m.last_engaged_ms, T0 + 10 * DAY);
}
END_TEST

START_TEST(encode_decode_round_trip)
{
    ls_features f, g;
    uint8_t buf[FEATURE_MAX_ENCODED], again[FEATURE_MAX_ENCODED];
    size_t n = 0, m = 0;
    rich_record(&f);
    ck_assert_uint_eq(f.ncategories, 8);
    ck_assert_uint_eq(f.birthday_mmdd, 229);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    ck_assert_uint_gt(n, 8 * EVENT_MAX_STR);
    ck_assert_uint_le(n, FEATURE_MAX_ENCODED);
    ck_assert_uint_eq(buf[0], FEATURE_RECORD_VERSION);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);

    ck_assert_int_eq(g.first_seen_ms, f.first_seen_ms);
    ck_assert_int_eq(g.last_seen_ms, f.last_seen_ms);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        ck_assert_uint_eq(g.count[i], f.count[i]);
        ck_assert_double_eq(g.recent[i], (double)(float)f.recent[i]);
        ck_assert_double_eq(g.decayed[i], (double)(float)f.decayed[i]);
    }
    ck_assert_uint_eq(g.sessions, f.sessions);
    ck_assert_mem_eq(g.session_ring, f.session_ring, sizeof f.session_ring);
    ck_assert_double_eq(g.sessions_recent, (double)(float)f.sessions_recent);
    ck_assert_double_eq(g.sessions_decayed, (double)(float)f.sessions_decayed);
    ck_assert_double_eq(g.spend, f.spend); /* money is kept as double */
    ck_assert_double_eq(g.refunded, f.refunded);
    ck_assert_double_eq(g.discounted_spend, f.discounted_spend);
    for (int i = 0; i < FEATURE_CART_RING; i++) {
        ck_assert_int_eq(g.cart[i].ts_ms, f.cart[i].ts_ms);
        ck_assert(g.cart[i].value == f.cart[i].value);
    }
    ck_assert_double_eq(g.first_purchase_value, f.first_purchase_value);
    ck_assert_int_eq(g.last_review_ms, f.last_review_ms);
    ck_assert_int_eq(g.last_negative_ms, f.last_negative_ms);
    ck_assert_int_eq(g.first_purchase_ms, f.first_purchase_ms);
    ck_assert_int_eq(g.last_purchase_ms, f.last_purchase_ms);
    ck_assert_int_eq(g.last_cart_ms, f.last_cart_ms);
    ck_assert_uint_eq(g.rating_sum, f.rating_sum);
    ck_assert_uint_eq(g.rating_n, f.rating_n);
    ck_assert_uint_eq(g.bad_reviews, f.bad_reviews);
    ck_assert_uint_eq(g.good_reviews, f.good_reviews);
    ck_assert_uint_eq(g.purchase_lines, f.purchase_lines);
    ck_assert_uint_eq(g.purchase_days, f.purchase_days);
    ck_assert_uint_eq(g.purchase_units, f.purchase_units);
    ck_assert_uint_eq(g.purchase_lines, 2);
    ck_assert_uint_eq(g.purchase_units, 4);
    ck_assert_uint_eq(g.purchase_days, 1);
    ck_assert_uint_eq(g.count[EV_PURCHASE], 1);
    ck_assert_uint_eq(g.birthday_mmdd, f.birthday_mmdd);
    ck_assert_uint_eq(g.ncategories, f.ncategories);
    for (int i = 0; i < f.ncategories; i++) {
        ck_assert_uint_eq(g.categories[i].len, f.categories[i].len);
        ck_assert_mem_eq(g.categories[i].name, f.categories[i].name, f.categories[i].len);
        ck_assert_uint_eq(g.categories[i].count, f.categories[i].count);
        ck_assert_double_eq(g.categories[i].recent, (double)(float)f.categories[i].recent);
        ck_assert_double_eq(g.categories[i].decayed, (double)(float)f.categories[i].decayed);
    }
    /* a decoded record encodes to the same bytes */
    ck_assert_int_eq(feature_encode(&g, again, sizeof again, &m), LS_OK);
    ck_assert_uint_eq(m, n);
    ck_assert_mem_eq(again, buf, n);

    /* an empty record round-trips too, and stays empty */
    feature_init(&f);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
    ck_assert(feature_empty(&g));
}
END_TEST

static uint64_t rt_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rt_next(void)
{
    rt_rng ^= rt_rng << 13;
    rt_rng ^= rt_rng >> 7;
    rt_rng ^= rt_rng << 17;
    return rt_rng;
}

/* Half the time 0, else one of: a small or large value, its negative,
 * -0.0: every branch of the sparse encoding. */
static double rt_double(void)
{
    switch (rt_next() % 8) {
    case 0: return -0.0;
    case 1: return (double)(rt_next() % 1000) / 8.0;
    case 2: return -(double)(rt_next() % 1000) / 3.0;
    case 3: return (double)(rt_next() >> 11) * 1e-3;
    default: return 0.0;
    }
}

static int64_t rt_time(int64_t anchor)
{
    switch (rt_next() % 4) {
    case 0: return 0;
    case 1: return anchor;
    case 2: {
        int64_t t = anchor - (int64_t)(rt_next() % (400LL * 86400000));
        return t > 0 ? t : 0; /* a negative time is corrupt */
    }
    default: return anchor + (int64_t)(rt_next() % 86400000);
    }
}

static uint32_t rt_count(void)
{
    uint64_t r = rt_next();
    return r % 2 ? 0 : r % 3 ? (uint32_t)(r >> 40) % 300 : (uint32_t)(r >> 32);
}

/* Random records, most fields zero, others anything a field may hold:
 * decoded they give every field back (floats as their f32), and encode to
 * the same bytes again. */
START_TEST(sparse_records_round_trip)
{
    for (int k = 0; k < 20000; k++) {
        ls_features f, g;
        uint8_t a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
        size_t na, nb;
        feature_init(&f);
        f.last_seen_ms = k % 50 == 0 ? 0 : 1500000000000LL + (int64_t)(rt_next() % 300000000000LL);
        f.first_seen_ms = rt_time(f.last_seen_ms);
        f.birthday_ts_ms = rt_time(f.last_seen_ms);
        f.birthday_mmdd = (uint16_t)(rt_next() % 2 ? 0 : rt_next() % 1232);
        for (int i = 0; i < EV_TYPE_COUNT; i++) {
            f.count[i] = rt_count();
            f.recent[i] = (float)rt_double();
            f.decayed[i] = (float)rt_double();
        }
        f.sessions = rt_count();
        for (int i = 0; i < FEATURE_SESSION_RING; i++) {
            f.session_ring[i].hash = rt_next() % 2 ? 0 : (uint32_t)rt_next();
            f.session_ring[i].ts_ms = rt_time(f.last_seen_ms);
        }
        f.sessions_recent = (float)rt_double();
        f.sessions_decayed = (float)rt_double();
        f.spend = rt_double();
        f.refunded = rt_double();
        f.discounted_spend = rt_double();
        f.first_purchase_value = rt_double();
        for (int i = 0; i < FEATURE_CART_RING; i++) {
            f.cart[i].ts_ms = rt_time(f.last_seen_ms);
            f.cart[i].value = (float)rt_double();
            f.cart[i].items = (int16_t)(rt_next() % 2 ? 0 : (int)(rt_next() % 65536) - 32768);
        }
        f.first_purchase_ms = rt_time(f.last_seen_ms);
        f.last_purchase_ms = rt_time(f.last_seen_ms);
        f.last_cart_ms = rt_time(f.last_seen_ms);
        f.last_review_ms = rt_time(f.last_seen_ms);
        f.last_negative_ms = rt_time(f.last_seen_ms);
        f.last_checkout_ms = rt_time(f.last_seen_ms);
        f.last_share_ms = rt_time(f.last_seen_ms);
        f.rating_sum = rt_count();
        f.rating_n = rt_count();
        f.bad_reviews = rt_count();
        f.good_reviews = rt_count();
        f.purchase_lines = rt_count();
        f.purchase_days = rt_count();
        f.purchase_units = rt_count();
        f.share_days = rt_count();
        f.review_days = rt_count();
        f.ncategories = (uint8_t)(rt_next() % (FEATURE_MAX_CATEGORIES + 1));
        for (int i = 0; i < f.ncategories; i++) {
            feature_category *c = &f.categories[i];
            c->len = (uint16_t)(rt_next() % (EVENT_MAX_STR + 1));
            memset(c->name, 'a' + i, c->len);
            c->name[c->len] = '\0';
            c->count = rt_count();
            c->recent = (float)rt_double();
            c->decayed = (float)rt_double();
        }
        if (k % 50 == 0) /* an empty record has no times either */
            f.first_seen_ms = f.birthday_ts_ms = 0;
        ck_assert_int_eq(feature_encode(&f, a, sizeof a, &na), LS_OK);
        int rc = feature_decode(&g, a, na);
        if (rc != LS_OK)
            ck_abort_msg("record %d: decode %d", k, rc);
        /* every field, bit for bit (the floats were f32 values already) */
        if (memcmp(&f, &g, offsetof(ls_features, categories)) != 0)
            ck_abort_msg("record %d: the fixed fields differ", k);
        for (int i = 0; i < f.ncategories; i++)
            if (g.categories[i].len != f.categories[i].len ||
                memcmp(g.categories[i].name, f.categories[i].name, f.categories[i].len + 1) != 0 ||
                g.categories[i].count != f.categories[i].count ||
                memcmp(&g.categories[i].recent, &f.categories[i].recent, sizeof(double)) != 0 ||
                memcmp(&g.categories[i].decayed, &f.categories[i].decayed, sizeof(double)) != 0)
                ck_abort_msg("record %d: category %d differs", k, i);
        ck_assert_int_eq(feature_encode(&g, b, sizeof b, &nb), LS_OK);
        if (na != nb || memcmp(a, b, na) != 0)
            ck_abort_msg("record %d: encodes differently after a round trip", k);
    }
}
END_TEST

START_TEST(encode_into_a_short_buffer_fails)
{
    ls_features f;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0, m = 12345;
    rich_record(&f);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_encode(&f, buf, n - 1, &m), LS_EINVAL);
    ck_assert_int_eq(feature_encode(&f, buf, 0, &m), LS_EINVAL);
    ck_assert_int_eq(feature_encode(&f, buf, n, &m), LS_OK);
    ck_assert_uint_eq(m, n);
}
END_TEST

START_TEST(truncated_record_is_a_parse_error_at_every_length)
{
    ls_features f, g;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0;
    rich_record(&f);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    for (size_t len = 0; len < n; len++) {
        /* an exact-size heap copy, so a read past the end is caught by ASan */
        uint8_t *copy = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, len);
        int rc = feature_decode(&g, copy, len);
        free(copy);
        ck_assert_msg(rc == LS_EPARSE, "length %zu of %zu: got %d", len, n, rc);
    }
    /* a byte too many is corrupt as well */
    uint8_t *longer = calloc(1, n + 1);
    memcpy(longer, buf, n);
    ck_assert_int_eq(feature_decode(&g, longer, n + 1), LS_EPARSE);
    free(longer);
}
END_TEST

/* feature_decode zeroes only the fixed fields: decoded over a record full
 * of garbage, a record reads, scores, grows and encodes exactly as when
 * decoded over a zeroed one; a failed decode is the old, fully zeroed one. */
START_TEST(decode_over_garbage_is_decode_over_zeros)
{
    ls_features rich, few, clean, dirty;
    uint8_t buf[FEATURE_MAX_ENCODED], a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
    size_t n = 0, na = 0, nb = 0;
    rich_record(&rich);
    feature_init(&few);
    for (int i = 0; i < 3; i++) {
        ls_event ev = mk(EV_ADD_TO_CART, T0 + i * DAY);
        ev.category = (ls_str){i ? "shoes/running" : "toys", i ? 13u : 4u};
        apply(&few, &ev);
    }
    const ls_features *recs[] = {&rich, &few};
    for (int r = 0; r < 2; r++) {
        ck_assert_int_eq(feature_encode(recs[r], buf, sizeof buf, &n), LS_OK);
        memset(&clean, 0, sizeof clean);
        memset(&dirty, 0xa5, sizeof dirty);
        ck_assert_int_eq(feature_decode(&clean, buf, n), LS_OK);
        ck_assert_int_eq(feature_decode(&dirty, buf, n), LS_OK);
        ck_assert_mem_eq(&clean, &dirty, offsetof(ls_features, categories));
        for (int i = 0; i < clean.ncategories; i++) {
            ck_assert_uint_eq(clean.categories[i].len, dirty.categories[i].len);
            ck_assert_str_eq(clean.categories[i].name, dirty.categories[i].name);
            ck_assert_uint_eq(clean.categories[i].count, dirty.categories[i].count);
            ck_assert(clean.categories[i].recent == dirty.categories[i].recent);
            ck_assert(clean.categories[i].decayed == dirty.categories[i].decayed);
        }
        feature_ctx ctx = {T0 + 40 * DAY, DECAY};
        for (int id = 0; id < feature_count(); id++) {
            double x = feature_value(&clean, id, &ctx), y = feature_value(&dirty, id, &ctx);
            ck_assert_msg(x == y || (isnan(x) && isnan(y)), "%s", feature_name(id));
        }
        /* a new category takes a free slot (or the weakest) the same way */
        ls_event ev = mk(EV_PURCHASE, T0 + 41 * DAY);
        ev.category = (ls_str){"books/new", 9};
        apply(&clean, &ev);
        apply(&dirty, &ev);
        ck_assert_int_eq(feature_encode(&clean, a, sizeof a, &na), LS_OK);
        ck_assert_int_eq(feature_encode(&dirty, b, sizeof b, &nb), LS_OK);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na);
        /* cut short: all of it as before (zeros past the fault) */
        for (size_t len = 0; len < n; len += 7) {
            memset(&clean, 0, sizeof clean);
            memset(&dirty, 0xa5, sizeof dirty);
            ck_assert_int_eq(feature_decode(&clean, buf, len), LS_EPARSE);
            ck_assert_int_eq(feature_decode(&dirty, buf, len), LS_EPARSE);
            ck_assert_mem_eq(&clean, &dirty, sizeof clean);
        }
    }
}
END_TEST

START_TEST(corrupt_or_newer_records_are_refused)
{
    ls_features f, g;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0;
    rich_record(&f);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);

    buf[0] = FEATURE_RECORD_VERSION + 1;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EVERSION);
    buf[0] = 0xff;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EVERSION);
    buf[0] = FEATURE_RECORD_VERSION;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);

    /* more categories than a record can hold */
    buf[1] = FEATURE_MAX_CATEGORIES + 1;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);
    buf[1] = 8;

    /* a category name longer than EVENT_MAX_STR: the categories end the
     * record, each a varint length, the name, a varint count and two f32 */
    size_t cats = n;
    for (int i = 0; i < 8; i++)
        cats -= bytecur_varint_size(EVENT_MAX_STR) + EVENT_MAX_STR + bytecur_varint_size(f.categories[i].count) + 8;
    ck_assert_uint_eq(buf[cats], 0x80 | (EVENT_MAX_STR & 0x7f)); /* 256 = 0x80 0x02 */
    ck_assert_uint_eq(buf[cats + 1], EVENT_MAX_STR >> 7);
    buf[cats] += 1; /* 257, the same two bytes */
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);
    buf[cats] -= 1;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
}
END_TEST

/* A negative time is corrupt: no event is that old, and the decay
 * arithmetic would overflow on it. */
START_TEST(negative_times_are_corrupt)
{
    ls_features f, g;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0;
    rich_record(&f);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    /* last_seen, the zigzag varint after version, ncategories and birthday:
     * its lowest bit is the sign */
    buf[4] ^= 0x01;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);
    buf[4] ^= 0x01;
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
    ls_features neg = f;
    neg.first_seen_ms = -1;
    ck_assert_int_eq(feature_encode(&neg, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);
    f.cart[2].ts_ms = -5;
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_EPARSE);
}
END_TEST

/* Version 2 had no cart item counts and none of purchase_lines,
 * purchase_days, purchase_units, last checkout, last share, share and
 * review days: such a record still decodes, each purchase taken as an
 * order of one line and one unit on a day of its own, and is written back
 * as the current version. */
START_TEST(records_of_version_two_still_decode)
{
    ls_features f, g, h;
    uint8_t buf[FEATURE_MAX_ENCODED], again[FEATURE_MAX_ENCODED];
    size_t n = 0, m = 0;
    rich_record(&f);
    n = tu_encode_v2_record(&f, buf);
    ck_assert_int_eq(feature_decode(&g, buf, n), LS_OK);
    roundtrip(&f, &h);
    h.purchase_lines = h.purchase_days = h.purchase_units = h.count[EV_PURCHASE];
    /* what version 2 did not keep, derived as feature_decode documents */
    h.share_days = h.count[EV_SHARE] + h.count[EV_REFERRAL];
    h.review_days = h.count[EV_REVIEW];
    h.last_checkout_ms = h.last_share_ms = 0;
    h.last_engaged_ms = h.last_seen_ms; /* not kept before version 5 */
    for (int i = 0; i < FEATURE_CART_RING; i++)
        h.cart[i].items = (int16_t)(h.cart[i].value > 0 ? 1 : h.cart[i].value < 0 ? -1 : 0);
    ck_assert_uint_eq(g.purchase_lines, 1);
    ck_assert_int_eq(feature_encode(&g, again, sizeof again, &m), LS_OK);
    ck_assert_uint_eq(again[0], FEATURE_RECORD_VERSION);
    ck_assert_int_eq(feature_encode(&h, buf, sizeof buf, &n), LS_OK);
    ck_assert_uint_eq(m, n);
    ck_assert_mem_eq(again, buf, n);
    /* a version-2 record cut short, or a version-3 one without the new fields, is corrupt */
    ck_assert_int_eq(feature_decode(&g, buf, n - 12), LS_EPARSE);
}
END_TEST

/* Lines of one order: feature_apply_line with continues_order counts the
 * line's value, units and category but not another order. */
START_TEST(order_lines_count_one_order)
{
    ls_features f;
    feature_init(&f);
    int64_t day0 = T0 / DAY * DAY;
    ls_event a = mk_value(EV_PURCHASE, day0 + 3600000, 10);
    a.category = (ls_str){"books", 5};
    ls_event b = a;
    b.value = 5;
    b.quantity = 4;
    b.has |= EVF_QUANTITY;
    feature_apply_line(&f, &a, &DECAY, 0);
    feature_apply_line(&f, &b, &DECAY, 1);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 1);
    ck_assert_double_eq(f.recent[EV_PURCHASE], 1.0);
    ck_assert_uint_eq(f.purchase_lines, 2);
    ck_assert_uint_eq(f.purchase_units, 5);
    ck_assert_uint_eq(f.purchase_days, 1);
    ck_assert_double_eq(f.spend, 15);
    ck_assert_double_eq(f.first_purchase_value, 15);
    ck_assert_uint_eq(f.categories[0].count, 2);
    ASSERT_FV(&f, "avg_order_value", day0 + DAY, 15.0);
    ASSERT_FV(&f, "purchase_lines", day0 + DAY, 2.0);
    /* another order the same day: a second order, still one day */
    ls_event c = mk_value(EV_PURCHASE, day0 + 20 * 3600000LL, 30);
    feature_apply_line(&f, &c, &DECAY, 0);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 2);
    ck_assert_uint_eq(f.purchase_days, 1);
    ck_assert_double_eq(f.first_purchase_value, 45);
    ASSERT_FV(&f, "avg_order_value", day0 + DAY, 22.5);
    /* the next day: a second day; a refund is neither an order nor a line */
    ls_event d = mk_value(EV_PURCHASE, day0 + DAY + 1, 1);
    feature_apply_line(&f, &d, &DECAY, 0);
    ls_event r = mk_value(EV_REFUND, day0 + DAY + 2, 1);
    feature_apply_line(&f, &r, &DECAY, 1); /* continues_order means nothing for a refund */
    ck_assert_uint_eq(f.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(f.count[EV_REFUND], 1);
    ck_assert_uint_eq(f.purchase_lines, 4);
    ck_assert_uint_eq(f.purchase_days, 2);
    ASSERT_FV(&f, "purchase_days", day0 + 2 * DAY, 2.0);
    ASSERT_FV(&f, "purchase_units", day0 + 2 * DAY, 7.0);
}
END_TEST

/* The record layout of the first release (commit b560223), which wrote
 * version byte 1: ..., spend, refunded, discounted_spend, cart_value (f64),
 * first_purchase_ms, last_purchase_ms, last_cart_ms, the four review
 * counters, then the categories. */
static size_t v1_record(uint8_t *buf)
{
    uint8_t *p = buf;
#define PUT(type, v) do { type x_ = (v); memcpy(p, &x_, sizeof x_); p += sizeof x_; } while (0)
    PUT(uint8_t, 1);                 /* version */
    PUT(uint8_t, 1);                 /* ncategories */
    PUT(uint16_t, 1224);             /* birthday */
    PUT(int64_t, T0);                /* first_seen */
    PUT(int64_t, T0 + DAY);          /* last_seen */
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        PUT(uint32_t, i == EV_PURCHASE || i == EV_ADD_TO_CART ? 1u : 0u);
    for (int k = 0; k < 2; k++)      /* recent, decayed */
        for (int i = 0; i < EV_TYPE_COUNT; i++)
            PUT(float, i == EV_PURCHASE ? 1.0f : i == EV_ADD_TO_CART ? 0.5f : 0.0f);
    PUT(uint32_t, 0);                /* sessions */
    for (int i = 0; i < 4; i++)
        PUT(uint32_t, 0);            /* session ring */
    PUT(float, 0.0f);
    PUT(float, 0.0f);
    PUT(double, 40.0);               /* spend */
    PUT(double, 0.0);                /* refunded */
    PUT(double, 0.0);                /* discounted_spend */
    PUT(double, 25.0);               /* cart_value */
    PUT(int64_t, T0 + DAY);          /* first_purchase */
    PUT(int64_t, T0 + DAY);          /* last_purchase */
    PUT(int64_t, T0);                /* last_cart */
    for (int i = 0; i < 4; i++)
        PUT(uint32_t, 0);            /* rating_sum, rating_n, bad, good */
    PUT(uint16_t, 5);
    memcpy(p, "books", 5);
    p += 5;
    PUT(uint32_t, 2);
    PUT(float, 3.0f);
    PUT(float, 3.0f);
#undef PUT
    return (size_t)(p - buf);
}

/* EXPECTS A FIX in src/feature.c / feature.h: commit e8576d6 replaced
 * cart_value (8 bytes) with a 6-slot cart ring and added
 * first_purchase_value, last_review_ms and last_negative_ms, but kept
 * FEATURE_RECORD_VERSION at 1.  Every record an earlier binary stored now
 * fails to decode (LS_EPARSE: store_reader_get fails, store_reader_scan
 * silently skips the customer), and an older binary reading a new record
 * gets LS_EPARSE instead of LS_EVERSION.  PROTOCOL.md section 5: "a newer
 * binary opens an older store, and an older binary refuses a newer store
 * with a clear error".  Bump the version and keep reading version 1. */
START_TEST(records_of_the_first_layout_still_decode)
{
    uint8_t buf[FEATURE_MAX_ENCODED];
    ls_features f;
    size_t n = v1_record(buf);
    int rc = feature_decode(&f, buf, n);
    ck_assert_msg(rc == LS_OK, "a version-1 record of the first layout (%zu bytes) gives %d", n, rc);
    ck_assert_int_eq(f.first_seen_ms, T0);
    ck_assert_int_eq(f.last_seen_ms, T0 + DAY);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 1);
    ck_assert_uint_eq(f.count[EV_ADD_TO_CART], 1);
    ck_assert_double_eq(f.recent[EV_PURCHASE], 1.0);
    ck_assert_double_eq(f.spend, 40.0);
    ck_assert_int_eq(f.last_purchase_ms, T0 + DAY);
    ck_assert_int_eq(f.last_cart_ms, T0);
    ck_assert_uint_eq(f.birthday_mmdd, 1224);
    ck_assert_uint_eq(f.ncategories, 1);
    ck_assert_uint_eq(f.categories[0].count, 2);
    ck_assert_mem_eq(f.categories[0].name, "books", 5);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Named values                                                        */
/* ------------------------------------------------------------------ */

START_TEST(names_and_ids_round_trip)
{
    int n = feature_count();
    ck_assert_int_ge(n, 3 * EV_TYPE_COUNT + 20);
    for (int id = 0; id < n; id++) {
        const char *name = feature_name(id);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(feature_lookup(name), id);
        for (int j = 0; j < id; j++)
            ck_assert_str_ne(feature_name(j), name);
    }
    ck_assert_ptr_null(feature_name(-1));
    ck_assert_ptr_null(feature_name(n));
    ck_assert_int_eq(feature_lookup("no_such_feature"), -1);
    ck_assert_int_eq(feature_lookup(""), -1);
    ck_assert_int_eq(feature_lookup("purchase_coun"), -1);
    char name[64];
    static const char *const suffix[] = {"_count", "_recent", "_decayed"};
    for (int t = 0; t < EV_TYPE_COUNT; t++)
        for (int s = 0; s < 3; s++) {
            snprintf(name, sizeof name, "%s%s", event_type_name((event_type)t), suffix[s]);
            ck_assert_msg(feature_lookup(name) >= 0, "no feature %s", name);
        }
    static const char *const derived[] = {
        "days_since_first_seen", "days_since_last_seen", "days_since_last_purchase",
        "days_since_first_purchase", "days_since_last_cart", "spend", "net_spend",
        "avg_order_value", "refund_rate", "discounted_share", "avg_rating", "bad_reviews",
        "good_reviews", "open_cart_value", "cart_open", "sessions", "sessions_recent",
        "sessions_decayed", "categories", "has_birthday"};
    for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++)
        ck_assert_msg(feature_lookup(derived[i]) >= 0, "no feature %s", derived[i]);
}
END_TEST

START_TEST(days_since_never_is_the_cap)
{
    ls_features f;
    feature_init(&f);
    ck_assert(feature_empty(&f));
    static const char *const days[] = {"days_since_first_seen", "days_since_last_seen",
                                       "days_since_last_purchase", "days_since_first_purchase",
                                       "days_since_last_cart"};
    for (size_t i = 0; i < 5; i++)
        ASSERT_FV(&f, days[i], T0, FEATURE_NEVER_DAYS);
    ck_assert_double_eq(FEATURE_NEVER_DAYS, 3650.0);
    /* every other value of an empty record is 0 */
    feature_ctx ctx = {T0, DECAY};
    for (int id = 0; id < feature_count(); id++) {
        if (strncmp(feature_name(id), "days_since_", 11) == 0)
            continue;
        ck_assert_msg(feature_value(&f, id, &ctx) == 0.0, "%s of an empty record is not 0", feature_name(id));
    }
    ck_assert_double_eq(feature_value(&f, -1, &ctx), 0.0);
    ck_assert_double_eq(feature_value(&f, feature_count(), &ctx), 0.0);

    /* seen (not bought) 2.5 days ago */
    ls_event ev = mk(EV_PAGE_VIEW, T0);
    apply(&f, &ev);
    ck_assert(!feature_empty(&f));
    ASSERT_FV(&f, "days_since_first_seen", T0 + 5 * DAY / 2, 2.5);
    ASSERT_FV(&f, "days_since_last_seen", T0 + 5 * DAY / 2, 2.5);
    ASSERT_FV(&f, "days_since_last_purchase", T0 + 5 * DAY / 2, FEATURE_NEVER_DAYS);
    ASSERT_FV(&f, "days_since_first_purchase", T0 + 5 * DAY / 2, FEATURE_NEVER_DAYS);
    ASSERT_FV(&f, "days_since_last_cart", T0 + 5 * DAY / 2, FEATURE_NEVER_DAYS);
    /* long ago is capped at "never", the future counts as 0 */
    ASSERT_FV(&f, "days_since_last_seen", T0 + 5000 * DAY, FEATURE_NEVER_DAYS);
    ASSERT_FV(&f, "days_since_last_seen", T0 - DAY, 0.0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("feature");
    TCase *tc = tcase_create("decay");
    tcase_add_test(tc, decay_factor_basics);
    tcase_add_test(tc, one_event_halves_every_half_life);
    tcase_add_test(tc, every_type_has_its_own_decayed_counters);
    tcase_add_test(tc, two_events_two_half_lives);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_test(tc, late_event_gives_the_same_record);
    tcase_add_test(tc, every_permutation_gives_the_same_record);
    tcase_add_test(tc, session_weight_does_not_depend_on_arrival_order); /* expects a fix */
    tcase_add_test(tc, newest_birthday_wins_whatever_the_arrival_order); /* expects a fix */
    suite_add_tcase(s, tc);

    tc = tcase_create("content");
    tcase_add_test(tc, money_features);
    tcase_add_test(tc, order_lines_count_one_order);
    tcase_add_test(tc, a_long_cart_keeps_every_item);
    tcase_add_test(tc, adds_and_removes_leave_what_was_not_removed);
    tcase_add_test(tc, an_unpriced_removal_takes_the_average_item);
    tcase_add_test(tc, todays_category_enters_a_table_full_of_old_interest);
    tcase_add_test(tc, a_removal_takes_out_no_more_than_the_cart_holds);
    tcase_add_test(tc, a_checkout_fills_an_empty_basket);
    tcase_add_test(tc, open_cart_value_reads_the_decimals_sent);
    tcase_add_test(tc, the_first_visit_says_whether_orders_came_first);
    tcase_add_test(tc, reviews_and_birthday);
    tcase_add_test(tc, a_review_without_a_rating_counts_outside_the_ratings);
    tcase_add_test(tc, sessions_are_counted_once_per_id);
    tcase_add_test(tc, a_visit_without_a_session_id_is_a_session_of_its_half_hour);
    tcase_add_test(tc, email_engaged_adds_the_opens_and_the_clicks);
    tcase_add_test(tc, category_top_k_keeps_the_strongest);
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_add_test(tc, merge_equals_one_record_with_all_events);
    tcase_add_test(tc, merge_counts_a_shared_session_once); /* expects a fix */
    suite_add_tcase(s, tc);

    tc = tcase_create("encoding");
    tcase_add_test(tc, encode_decode_round_trip);
    tcase_add_test(tc, complaints_are_not_engagement);
    tcase_add_test(tc, records_of_version_three_still_decode);
    tcase_add_test(tc, sparse_records_round_trip);
    tcase_add_test(tc, encode_into_a_short_buffer_fails);
    tcase_add_test(tc, truncated_record_is_a_parse_error_at_every_length);
    tcase_add_test(tc, decode_over_garbage_is_decode_over_zeros);
    tcase_add_test(tc, corrupt_or_newer_records_are_refused);
    tcase_add_test(tc, records_of_the_first_layout_still_decode); /* expects a fix */
    tcase_add_test(tc, records_of_version_two_still_decode);
    tcase_add_test(tc, negative_times_are_corrupt);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, names_and_ids_round_trip);
    tcase_add_test(tc, days_since_never_is_the_cap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
