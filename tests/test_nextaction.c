/* test_nextaction.c -- next best action (src/nextaction.c): a worked
 * example computed by hand under models/handset.json (every value, the
 * order and every reason), the cart without prices, monotonicity in the
 * cart value and in readiness, ties in journey_action order, finite values
 * and bounded reasons on empty and odd records, the real assessment path,
 * the msgpack shape of `next_actions`, and the hand-built reason text
 * (textfmt.h) against snprintf as the oracle. */
#define _GNU_SOURCE
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "assess.h"
#include "leadscore/error.h"
#include "nextaction.h"
#include "testutil.h"
#include "textfmt.h"
#include "timefmt.h"

#define DAY 86400000LL
#define HOUR 3600000LL
#define ALL_ACTIONS ((1u << JA_COUNT) - 1)

static model *m;
static const int64_t NOW = 1793527200000LL; /* 2026-11-01T10:00:00Z */
/* handset.json's Gamma-Gamma population mean order value p.gamma/(q - 1) */
static const double POP_ORDER = 6.25 * 15.44 / 2.74;

static void setup(void)
{
    char err[256];
    ck_assert_int_eq(model_load_file(LS_SOURCE_DIR "/models/handset.json", &m, err, sizeof err), LS_OK);
}

static void teardown(void) { model_unref(&m); }

/* The worked example's customer: two orders worth 84.00 (average 42.00),
 * the first on 2024-11-04 (anniversary in 3 days, 2 years), the last 40
 * days ago; a cart of 84.50 added 3 h ago; birthday 5 November (in 4
 * days); a refund 5 days ago; no sign-up. */
static void worked_record(ls_features *f)
{
    feature_init(f);
    f->first_seen_ms = timefmt_days_from_civil(2024, 11, 4) * DAY + 12 * HOUR;
    f->last_seen_ms = NOW - 3 * HOUR;
    f->count[EV_PURCHASE] = 2;
    f->spend = 84.0;
    f->purchase_days = 2;
    f->first_purchase_ms = f->first_seen_ms;
    f->last_purchase_ms = NOW - 40 * DAY;
    f->cart[0].ts_ms = NOW - 3 * HOUR;
    f->cart[0].value = 84.5f;
    f->cart[0].items = 1;
    f->last_cart_ms = NOW - 3 * HOUR;
    f->birthday_mmdd = 1105;
    f->last_negative_ms = NOW - 5 * DAY;
}

static void worked_assessment(assess_result *a, double score, double p_alive, double clv)
{
    memset(a, 0, sizeof *a);
    a->logistic.score = score;
    a->p_alive = p_alive;
    a->clv = clv;
    a->journey.actions = ALL_ACTIONS;
}

static const nextaction_item *find(const nextaction_item *items, int n, journey_action act)
{
    for (int i = 0; i < n; i++)
        if (items[i].action == act)
            return &items[i];
    ck_abort_msg("action %s not ranked", journey_action_name(act));
    return NULL;
}

static void check_sane(const nextaction_item *items, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_msg(isfinite(items[i].value) && isfinite(items[i].p) && isfinite(items[i].stake), "item %d", i);
        ck_assert(items[i].p >= 0 && items[i].p <= 1);
        ck_assert(items[i].stake >= 0 && items[i].stake <= NEXTACTION_MAX_STAKE);
        ck_assert(items[i].value >= 0);
        size_t len = strnlen(items[i].reason, NEXTACTION_REASON_MAX);
        ck_assert_msg(len > 0 && len < NEXTACTION_REASON_MAX, "reason of item %d", i);
        if (i > 0)
            ck_assert(items[i - 1].value > items[i].value ||
                      (items[i - 1].value == items[i].value && items[i - 1].action < items[i].action));
    }
}

START_TEST(worked_example_by_hand)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    worked_record(&f);
    /* readiness s = 0.4, P(alive) A = 0.8, V = 300 (365-day), O = 84 / 2 = 42, C = 84.50 */
    worked_assessment(&a, 0.4, 0.8, 300);
    int n = nextaction_rank(m, &f, &a, NOW, it);
    ck_assert_int_eq(n, JA_COUNT);
    check_sane(it, n);
    static const struct {
        journey_action act;
        double p, stake, value;
        const char *reason;
    } want[] = {
        /* recovery: A x V = 0.8 x 300 */
        {JA_RECOVERY, 0.8, 300, 240,
         "refund, bad review or ticket 5 days ago; 365-day value 300.00 at risk; P(alive) 0.80"},
        /* abandoned_cart: s x C = 0.4 x 84.50 */
        {JA_ABANDONED_CART, 0.4, 84.5, 33.8, "cart of 84.50 open 3 h; readiness 0.40"},
        /* vip_reward: A x 10% V = 0.8 x 30 */
        {JA_VIP_REWARD, 0.8, 30, 24, "365-day value 300.00, 10% credited to a reward; P(alive) 0.80"},
        /* win_back, birthday, anniversary: s x O = 0.4 x 42, tied, in journey_action order */
        {JA_WIN_BACK, 0.4, 42, 16.8, "no order for 40 days; average order 42.00; readiness 0.40"},
        {JA_BIRTHDAY, 0.4, 42, 16.8, "birthday in 4 days; average order 42.00; readiness 0.40"},
        {JA_ANNIVERSARY, 0.4, 42, 16.8,
         "anniversary of the first order (2 years) in 3 days; average order 42.00; readiness 0.40"},
        /* review_request: A x 5% V = 0.8 x 15; account_invite: s x 10% V = 0.4 x 30; tied */
        {JA_REVIEW_REQUEST, 0.8, 15, 12,
         "ordered 40 days ago, no review since; 5% of 365-day value 300.00; P(alive) 0.80"},
        {JA_ACCOUNT_INVITE, 0.4, 30, 12, "2 orders without an account; 10% of 365-day value 300.00; readiness 0.40"},
    };
    for (int i = 0; i < JA_COUNT; i++) {
        ck_assert_msg(it[i].action == want[i].act, "rank %d: %s, wanted %s", i, journey_action_name(it[i].action),
                      journey_action_name(want[i].act));
        ck_assert_double_eq_tol(it[i].p, want[i].p, 1e-12);
        ck_assert_double_eq_tol(it[i].stake, want[i].stake, 1e-9);
        ck_assert_double_eq(it[i].value, want[i].value); /* rounded to cents: exact */
        ck_assert_str_eq(it[i].reason, want[i].reason);
    }
}
END_TEST

START_TEST(only_the_flagged_actions_are_ranked)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    worked_record(&f);
    worked_assessment(&a, 0.4, 0.8, 300);
    a.journey.actions = (1u << JA_ABANDONED_CART) | (1u << JA_BIRTHDAY);
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 2);
    ck_assert_int_eq(it[0].action, JA_ABANDONED_CART);
    ck_assert_int_eq(it[1].action, JA_BIRTHDAY);
    a.journey.actions = 0;
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 0);
}
END_TEST

START_TEST(a_cart_without_prices_is_worth_an_average_order)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    /* a prospect: two items added 2 h ago, no prices, never bought */
    feature_init(&f);
    f.first_seen_ms = f.last_seen_ms = f.last_cart_ms = NOW - 2 * HOUR;
    f.cart[0].ts_ms = NOW - 2 * HOUR;
    f.cart[0].items = 2;
    worked_assessment(&a, 0.25, 1.0, 0.25 * POP_ORDER);
    a.journey.actions = 1u << JA_ABANDONED_CART;
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 1);
    ck_assert_double_eq_tol(it[0].stake, POP_ORDER, 1e-9); /* 35.2190 */
    ck_assert_double_eq(it[0].value, 8.80);                /* 0.25 x 35.2190 = 8.8047 */
    ck_assert_str_eq(it[0].reason, "cart without prices open 2 h; average order 35.22; readiness 0.25");
    /* a buyer's own average order replaces the population's */
    f.count[EV_PURCHASE] = 4;
    f.spend = 200;
    f.first_purchase_ms = f.last_purchase_ms = NOW - 30 * DAY;
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 1);
    ck_assert_double_eq_tol(it[0].stake, 50, 1e-12);
    ck_assert_double_eq(it[0].value, 12.5);
}
END_TEST

START_TEST(a_larger_cart_never_lowers_its_value)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    worked_record(&f);
    worked_assessment(&a, 0.37, 0.8, 300);
    double prev = -1;
    for (double cart = 0.01; cart < 5000; cart *= 1.37) {
        f.cart[0].value = (float)cart;
        int n = nextaction_rank(m, &f, &a, NOW, it);
        check_sane(it, n);
        const nextaction_item *c = find(it, n, JA_ABANDONED_CART);
        ck_assert_double_eq_tol(c->stake, (float)cart, 1e-6 * cart); /* read to 7 digits, as a float holds */
        ck_assert_msg(c->value >= prev, "cart %.2f: value %.4f < %.4f", cart, c->value, prev);
        prev = c->value;
        /* the other actions do not move with the cart */
        ck_assert_double_eq(find(it, n, JA_RECOVERY)->value, 240);
    }
    /* and a bigger cart climbs the ranking: 0.37 x 1000 = 370 beats recovery's 240 */
    f.cart[0].value = 1000.0f;
    nextaction_rank(m, &f, &a, NOW, it);
    ck_assert_int_eq(it[0].action, JA_ABANDONED_CART);
    ck_assert_double_eq(it[0].value, 370);
}
END_TEST

START_TEST(a_higher_readiness_never_lowers_any_value)
{
    ls_features buyer, prospect;
    assess_result a;
    nextaction_item it[JA_COUNT];
    worked_record(&buyer);
    feature_init(&prospect);
    prospect.first_seen_ms = prospect.last_seen_ms = prospect.last_cart_ms = NOW - 5 * HOUR;
    prospect.cart[0].ts_ms = NOW - 5 * HOUR;
    prospect.cart[0].value = 19.9f;
    prospect.cart[0].items = 1;
    prospect.birthday_mmdd = 1102;
    const ls_features *recs[] = {&buyer, &prospect};
    for (int r = 0; r < 2; r++) {
        double prev[JA_COUNT];
        for (int i = 0; i < JA_COUNT; i++)
            prev[i] = -1;
        for (int step = 0; step <= 100; step++) {
            double s = step / 100.0;
            /* a prospect's clv is s x the population mean order (assess.h) */
            worked_assessment(&a, s, 0.8, r == 0 ? 300 : s * POP_ORDER);
            int n = nextaction_rank(m, recs[r], &a, NOW, it);
            ck_assert_int_eq(n, JA_COUNT);
            check_sane(it, n);
            for (int i = 0; i < n; i++) {
                ck_assert_msg(it[i].value >= prev[it[i].action], "record %d, %s at s = %.2f: %.4f < %.4f", r,
                              journey_action_name(it[i].action), s, it[i].value, prev[it[i].action]);
                prev[it[i].action] = it[i].value;
            }
        }
    }
}
END_TEST

START_TEST(ties_keep_the_journey_action_order)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    worked_record(&f);
    /* nothing is worth anything: the order is the enum's */
    worked_assessment(&a, 0, 0, 0);
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), JA_COUNT);
    for (int i = 0; i < JA_COUNT; i++) {
        ck_assert_int_eq(it[i].action, i);
        ck_assert_double_eq(it[i].value, 0);
    }
    /* values equal to the cent tie even when the products differ below
     * it: s x C = 0.5 x 42.004 = 21.002 and s x O = 0.5 x 42 are both
     * 21.00, and the enum order holds */
    worked_assessment(&a, 0.5, 0, 0);
    a.journey.actions = (1u << JA_ABANDONED_CART) | (1u << JA_WIN_BACK);
    f.cart[0].value = 42.004f;
    ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 2);
    ck_assert_double_eq(it[0].value, it[1].value);
    ck_assert_int_eq(it[0].action, JA_ABANDONED_CART);
    /* a win-back worth more than the cart goes first */
    f.cart[0].value = 30.0f;
    nextaction_rank(m, &f, &a, NOW, it);
    ck_assert_int_eq(it[0].action, JA_WIN_BACK);
    ck_assert_double_eq(it[0].value, 21);
    ck_assert_double_eq(it[1].value, 15);
}
END_TEST

START_TEST(empty_and_odd_records_stay_finite)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    const model *models[] = {m, NULL};
    static const double odd[] = {NAN, INFINITY, -INFINITY, -1, 0, 1e300, 2, 0.5};
    for (int mi = 0; mi < 2; mi++) {
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            /* an empty record with every action bit and more set */
            feature_init(&f);
            worked_assessment(&a, odd[i], odd[(i + 1) % 8], odd[(i + 2) % 8]);
            a.journey.actions = ~0u;
            int n = nextaction_rank(models[mi], &f, &a, NOW, it);
            ck_assert_int_eq(n, JA_COUNT);
            check_sane(it, n);
            /* a record with odd contents: NaN money, future times, a bad birthday */
            worked_record(&f);
            f.spend = odd[i];
            f.cart[0].value = (float)odd[(i + 3) % 8];
            f.last_purchase_ms = NOW + 10 * DAY;
            f.last_cart_ms = 0;
            f.first_purchase_ms = NOW + DAY;
            f.birthday_mmdd = (uint16_t)(i == 0 ? 9999 : 229);
            f.count[EV_PURCHASE] = i == 1 ? UINT32_MAX : (uint32_t)i;
            n = nextaction_rank(models[mi], &f, &a, NOW, it);
            ck_assert_int_eq(n, JA_COUNT);
            check_sane(it, n);
            ck_assert(find(it, n, JA_RECOVERY)->stake <= NEXTACTION_MAX_STAKE);
        }
    }
}
END_TEST

START_TEST(the_assessed_customer_gets_its_actions_ranked)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    feature_ctx ctx = {NOW, *model_decay(m)};
    feature_init(&f);
    /* two orders months ago, then an abandoned cart of 60 four hours ago */
    int64_t times[] = {NOW - 200 * DAY, NOW - 120 * DAY};
    for (int i = 0; i < 2; i++) {
        ls_event e;
        event_init(&e);
        e.type = EV_PURCHASE;
        e.ts_ms = times[i];
        e.customer = (ls_str){"c", 1};
        e.value = 50;
        feature_apply(&f, &e, model_decay(m));
    }
    ls_event e;
    event_init(&e);
    e.type = EV_ADD_TO_CART;
    e.ts_ms = NOW - 4 * HOUR;
    e.customer = (ls_str){"c", 1};
    e.value = 60;
    feature_apply(&f, &e, model_decay(m));
    assess_customer(m, &f, &ctx, 0, -1, &a);
    ck_assert(a.journey.actions & (1u << JA_ABANDONED_CART));
    int n = nextaction_rank(m, &f, &a, NOW, it);
    ck_assert_int_eq(n, __builtin_popcount(a.journey.actions));
    check_sane(it, n);
    const nextaction_item *c = find(it, n, JA_ABANDONED_CART);
    ck_assert_double_eq(c->p, a.logistic.score);
    ck_assert_double_eq_tol(c->stake, 60, 1e-9);
    ck_assert_double_eq(c->value, round(a.logistic.score * 60 * 100) / 100);
    ck_assert_msg(strncmp(c->reason, "cart of 60.00 open 4 h; readiness ", 34) == 0, "%s", c->reason);
}
END_TEST

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
            return &kv->val;
    }
    return NULL;
}

static int str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

START_TEST(next_actions_on_the_wire)
{
    ls_features f;
    assess_result a;
    nextaction_item it[JA_COUNT];
    codec_writer w;
    msgpack_unpacked up;
    size_t off = 0;
    worked_record(&f);
    worked_assessment(&a, 0.4, 0.8, 300);
    a.journey.actions = (1u << JA_ABANDONED_CART) | (1u << JA_RECOVERY);
    int n = nextaction_rank(m, &f, &a, NOW, it);
    codec_writer_init(&w);
    cw_map(&w);
    cw_key(&w, "actions"); /* the v1 field beside it, unchanged */
    cw_array(&w);
    cw_str(&w, "abandoned_cart");
    cw_str(&w, "recovery");
    cw_end(&w);
    nextaction_emit(&w, m, &f, &a, NOW);
    cw_end(&w);
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(msgpack_unpack_next(&up, w.sb.data, w.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, w.sb.size);
    ck_assert_int_eq(up.data.type, MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq(up.data.via.map.size, 2);
    const msgpack_object *arr = get(&up.data, "next_actions");
    ck_assert_ptr_nonnull(arr);
    ck_assert_int_eq(arr->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(arr->via.array.size, (uint32_t)n);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        ck_assert_int_eq(o->type, MSGPACK_OBJECT_MAP);
        ck_assert_uint_eq(o->via.map.size, 5);
        ck_assert(str_is(get(o, "action"), journey_action_name(it[i].action)));
        ck_assert(str_is(get(o, "reason"), it[i].reason));
        ck_assert_int_eq(get(o, "value")->type, MSGPACK_OBJECT_FLOAT64);
        ck_assert_double_eq(get(o, "value")->via.f64, it[i].value);
        ck_assert_double_eq(get(o, "p")->via.f64, it[i].p);
        ck_assert_double_eq(get(o, "stake")->via.f64, it[i].stake);
    }
    ck_assert(str_is(get(&arr->via.array.ptr[0], "action"), "recovery"));
    msgpack_unpacked_destroy(&up);
    /* nothing flagged: an empty array */
    codec_writer_reset(&w);
    a.journey.actions = 0;
    cw_map(&w);
    nextaction_emit(&w, m, &f, &a, NOW);
    cw_end(&w);
    off = 0;
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(msgpack_unpack_next(&up, w.sb.data, w.sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    arr = get(&up.data, "next_actions");
    ck_assert_ptr_nonnull(arr);
    ck_assert_int_eq(arr->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(arr->via.array.size, 0);
    msgpack_unpacked_destroy(&up);
    codec_writer_destroy(&w);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reason text: textfmt.h against snprintf, the oracle                 */
/* ------------------------------------------------------------------ */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static double uniform01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* Values that probe "%.Nf": ties (exact binary halves of the last digit),
 * signs, -0, subnormals, the 1e15 edge of the fast path, NaN and inf. */
static double probe_value(int i)
{
    static const double fixed[] = {0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -2.5, 0.05, 0.125, 0.375, 0.625, 0.875,
                                   -0.125, 0.005, 0.015, 0.025, 0.045, 1.005, 2.675, 9.995, 99.995, 0.25,
                                   0.75, 1.25, 0.95, 9.95, 1e-310, -1e-310, 5e-324, 4.9e-324, 1e-20,
                                   0.4999999999999999, 0.5000000000000001, 1e14 + 0.25, 1e14 + 0.125,
                                   999999999999999.9, 999999999999999.875, 1e15, -1e15, 1e15 + 2, 1e16,
                                   1e300, -1e300, DBL_MAX, -DBL_MAX, NAN, -NAN, INFINITY, -INFINITY,
                                   123456.45, 0.1, 0.15, 0.35, 4503599627370495.5, 1e12, 1e12 - 0.005};
    int nf = (int)(sizeof fixed / sizeof fixed[0]);
    if (i < nf)
        return fixed[i];
    switch (i % 5) {
    case 0: return (double)(i % 20000) / 8.0 - 1000.0;            /* exact halves, quarters, eighths */
    case 1: return (double)(i % 100000) / 200.0;                  /* x.xx5 as near as binary gets */
    case 2: return ldexp((double)(i % 4096), -(i % 12));          /* exact dyadic ties */
    case 3: return (uniform01() < 0.3 ? -1 : 1) * pow(10.0, -25.0 + 42.0 * uniform01());
    default: return (uniform01() - 0.5) * 2e15;                    /* near the fast path's edge */
    }
}

START_TEST(fixed_point_text_is_what_snprintf_writes)
{
    for (int i = 0; i < 60000; i++) {
        double v = probe_value(i);
        for (int d = 0; d <= 2; d++) {
            char got[400], want[400];
            textfmt t = textfmt_begin(got, sizeof got);
            textfmt_fixed(&t, v, d);
            textfmt_end(&t, got);
            snprintf(want, sizeof want, "%.*f", d, v);
            ck_assert_msg(strcmp(got, want) == 0, "%%.%df of %a: \"%s\" != \"%s\"", d, v, got, want);
        }
    }
}
END_TEST

START_TEST(integer_text_is_what_snprintf_writes)
{
    static const int64_t fixed[] = {0, 1, -1, 9, 10, -10, 99, 100, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN,
                                    (int64_t)1e18, -(int64_t)1e18};
    for (int i = 0; i < 100000; i++) {
        int64_t v = i < 14 ? fixed[i] : (int64_t)(uniform01() * 1.8e19 - 9e18) >> (i % 60);
        char got[40], want[40];
        textfmt t = textfmt_begin(got, sizeof got);
        textfmt_int(&t, v);
        textfmt_end(&t, got);
        snprintf(want, sizeof want, "%lld", (long long)v);
        ck_assert_str_eq(got, want);
        t = textfmt_begin(got, sizeof got);
        textfmt_uint(&t, (uint64_t)v);
        textfmt_end(&t, got);
        snprintf(want, sizeof want, "%llu", (unsigned long long)(uint64_t)v);
        ck_assert_str_eq(got, want);
    }
}
END_TEST

/* Values that probe "%.10g": ten-digit ties (exact binary halves of the
 * tenth digit), the doubles on both sides of every power of ten the
 * format switches at, values that round up to the next power, whole
 * numbers, signs, zeros, the exponent form and what is not finite. */
static double probe_g10(int i)
{
    static const double fixed[] = {0.0, -0.0, 1.0, -1.0, 1234567890.5, 1234567891.5, -1234567890.5,
                                   123456789.25, 123456789.75, 12345678.125, 1234567.0625, 0.5, 1.5,
                                   9999999999.5, 9999999999.4, 999999999.95, 99.999999995, 9.9999999995,
                                   0.99999999995, 0.000099999999995, 0.0001, 0.001, 1e9, 1e10, 9999999999.0,
                                   1e-5, 1e-300, 5e-324, 1e300, DBL_MAX, NAN, -NAN, INFINITY, -INFINITY,
                                   0.21361928434999999, 0.1, 0.3, 2.0 / 3.0, 150.2084535, 1e15 + 0.5};
    static const double powers[] = {1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5,
                                    1e6, 1e7, 1e8, 1e9, 1e10, 1e11};
    int nf = (int)(sizeof fixed / sizeof fixed[0]), np = (int)(sizeof powers / sizeof powers[0]);
    if (i < nf)
        return fixed[i];
    i -= nf;
    if (i < np * 9) { /* -4 .. +4 ulps around each power */
        double v = powers[i / 9];
        for (int k = i % 9 - 4; k < 0; k++)
            v = nextafter(v, 0);
        for (int k = i % 9 - 4; k > 0; k--)
            v = nextafter(v, INFINITY);
        return i % 2 ? -v : v;
    }
    switch (i % 4) {
    case 0: return ldexp((double)(rng % 100000000000ull), -(int)(i % 40)); /* dyadic: exact ties */
    case 1: return (double)(int64_t)(uniform01() * 2e10 - 1e10);         /* whole numbers */
    case 2: return (uniform01() < 0.3 ? -1 : 1) * pow(10.0, -6.0 + 18.0 * uniform01());
    default: return pow(10.0, (double)(i % 16 - 5)) * (1.0 - 5e-11 * uniform01()); /* rounds up or not */
    }
}

START_TEST(ten_digit_text_is_what_snprintf_writes)
{
    /* asserted only on a mismatch: a passing ck_assert costs a write to
     * Check's pipe, and this loop is long */
    for (int i = 0; i < 300000; i++) {
        double v = probe_g10(i);
        char got[TEXTFMT_G10_MAX + 8], want[64];
        memset(got, 'Z', sizeof got);
        char *end = textfmt_g10(got, v);
        if (!(end >= got && end < got + TEXTFMT_G10_MAX) || memcmp(got + TEXTFMT_G10_MAX, "ZZZZZZZZ", 8) != 0)
            ck_abort_msg("%%.10g of %a: wrote past its room", v);
        *end = '\0';
        snprintf(want, sizeof want, "%.10g", v);
        if (strcmp(got, want) != 0)
            ck_abort_msg("%%.10g of %a (%.17g): \"%s\" != \"%s\"", v, v, got, want);
    }
}
END_TEST

/* A builder cut short gives snprintf's prefix, at every capacity. */
START_TEST(a_full_builder_cuts_like_snprintf)
{
    const double vals[] = {1234.5678, -0.125, NAN, 1e300, -INFINITY};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        for (size_t cap = 1; cap <= 360; cap++) {
            char got[400], want[400];
            memset(got, 'Z', sizeof got);
            textfmt t = textfmt_begin(got, cap);
            textfmt_lit(&t, "cart of ");
            textfmt_fixed(&t, vals[k], 2);
            textfmt_char(&t, ' ');
            textfmt_uint(&t, 4294967295u);
            textfmt_str(&t, " open 3 h; readiness ");
            textfmt_int(&t, -42);
            size_t n = textfmt_end(&t, got);
            int w = snprintf(want, cap, "cart of %.2f %u open 3 h; readiness %d", vals[k], 4294967295u, -42);
            ck_assert_str_eq(got, want);
            ck_assert_uint_eq(n, (size_t)w < cap ? (size_t)w : cap - 1);
            ck_assert_int_eq(got[cap], 'Z');   /* nothing past the buffer */
        }
    }
}
END_TEST

/* Every rule's reason, over many figures, against its format written with
 * snprintf (the rule's text before it was built by hand). */
START_TEST(reasons_read_as_the_printf_formats_write_them)
{
    char label[32], want[NEXTACTION_REASON_MAX];
    snprintf(label, sizeof label, "%.0f-day value", model_clv_params(m)->horizon_days);
    for (int i = 0; i < 20000; i++) {
        ls_features f;
        assess_result a;
        nextaction_item it[JA_COUNT];
        memset(&a, 0, sizeof a);
        feature_init(&f);
        f.first_seen_ms = NOW - 400 * DAY;
        f.last_seen_ms = NOW - HOUR;
        f.count[EV_PURCHASE] = (uint32_t)(i % 4);
        f.spend = f.count[EV_PURCHASE] ? fabs(probe_value(i + 7)) : 0;
        if (!(f.spend < 1e13))
            f.spend = 84.0;
        f.last_purchase_ms = f.count[EV_PURCHASE] ? NOW - (int64_t)(uniform01() * 900) * HOUR : 0;
        f.first_purchase_ms = f.last_purchase_ms ? f.last_purchase_ms - 30 * DAY : 0;
        f.last_cart_ms = NOW - (int64_t)(uniform01() * 200) * HOUR;
        double s = i % 7 == 0 ? probe_value(i) : uniform01();
        a.logistic.score = s;
        a.p_alive = i % 11 == 0 ? probe_value(i + 3) : uniform01();
        a.clv = i % 3 == 0 ? probe_value(i + 1) : uniform01() * 5000;
        a.journey.actions = (1u << JA_VIP_REWARD) | (1u << JA_ACCOUNT_INVITE) | (1u << JA_WIN_BACK);
        int n = nextaction_rank(m, &f, &a, NOW, it);
        ck_assert_int_eq(n, 3);
        double sc = s > 0 ? (s < 1 ? s : 1) : 0, al = a.p_alive > 0 ? (a.p_alive < 1 ? a.p_alive : 1) : 0;
        double clv = a.clv > 0 ? (a.clv < NEXTACTION_MAX_STAKE ? a.clv : NEXTACTION_MAX_STAKE) : 0;
        for (int j = 0; j < n; j++) {
            double order = it[j].action == JA_WIN_BACK ? it[j].stake : 0;
            if (it[j].action == JA_VIP_REWARD)
                snprintf(want, sizeof want, "%s %.2f, %.0f%% credited to a reward; P(alive) %.2f", label, clv,
                         100 * NEXTACTION_VIP_SHARE, al);
            else if (it[j].action == JA_ACCOUNT_INVITE)
                snprintf(want, sizeof want, "%u order%s without an account; %.0f%% of %s %.2f; readiness %.2f",
                         f.count[EV_PURCHASE], f.count[EV_PURCHASE] == 1 ? "" : "s", 100 * NEXTACTION_INVITE_SHARE,
                         label, clv, sc);
            else if (f.last_purchase_ms == 0)
                snprintf(want, sizeof want, "no order on record; average order %.2f; readiness %.2f", order, sc);
            else {
                double ms = NOW > f.last_purchase_ms ? (double)(NOW - f.last_purchase_ms) : 0;
                char age[32];
                if (ms < 48 * (double)HOUR)
                    snprintf(age, sizeof age, "%.0f h", floor(ms / (double)HOUR));
                else
                    snprintf(age, sizeof age, "%.0f day%s", floor(ms / (double)DAY),
                             floor(ms / (double)DAY) == 1 ? "" : "s");
                snprintf(want, sizeof want, "no order for %s; average order %.2f; readiness %.2f", age, order, sc);
            }
            ck_assert_msg(strcmp(it[j].reason, want) == 0, "\"%s\" != \"%s\"", it[j].reason, want);
        }
        /* the cart, priced */
        a.journey.actions = 1u << JA_ABANDONED_CART;
        f.cart[0].ts_ms = NOW - HOUR;
        f.cart[0].value = (float)(i % 5 == 0 ? probe_value(i) : uniform01() * 900);
        f.cart[0].items = 1;
        f.last_purchase_ms = f.first_purchase_ms = 0;
        ck_assert_int_eq(nextaction_rank(m, &f, &a, NOW, it), 1);
        double cart = feature_open_cart(&f);
        if (cart > 0) {
            double ms = (double)(NOW - f.last_cart_ms);
            char age[32];
            if (ms < 48 * (double)HOUR)
                snprintf(age, sizeof age, "%.0f h", floor(ms / (double)HOUR));
            else
                snprintf(age, sizeof age, "%.0f day%s", floor(ms / (double)DAY),
                         floor(ms / (double)DAY) == 1 ? "" : "s");
            snprintf(want, sizeof want, "cart of %.2f open %s; readiness %.2f",
                     cart < NEXTACTION_MAX_STAKE ? cart : NEXTACTION_MAX_STAKE, age, sc);
            ck_assert_msg(strcmp(it[0].reason, want) == 0, "\"%s\" != \"%s\"", it[0].reason, want);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("nextaction");
    TCase *tc = tcase_create("rank");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, worked_example_by_hand);
    tcase_add_test(tc, only_the_flagged_actions_are_ranked);
    tcase_add_test(tc, a_cart_without_prices_is_worth_an_average_order);
    tcase_add_test(tc, a_larger_cart_never_lowers_its_value);
    tcase_add_test(tc, a_higher_readiness_never_lowers_any_value);
    tcase_add_test(tc, ties_keep_the_journey_action_order);
    tcase_add_test(tc, empty_and_odd_records_stay_finite);
    tcase_add_test(tc, the_assessed_customer_gets_its_actions_ranked);
    tcase_add_test(tc, next_actions_on_the_wire);
    tcase_add_test(tc, fixed_point_text_is_what_snprintf_writes);
    tcase_add_test(tc, integer_text_is_what_snprintf_writes);
    tcase_add_test(tc, ten_digit_text_is_what_snprintf_writes);
    tcase_add_test(tc, a_full_builder_cuts_like_snprintf);
    tcase_add_test(tc, reasons_read_as_the_printf_formats_write_them);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
