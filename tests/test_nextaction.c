/* test_nextaction.c -- next best action (src/nextaction.c): a worked
 * example computed by hand under models/handset.json (every value, the
 * order and every reason), the cart without prices, monotonicity in the
 * cart value and in readiness, ties in journey_action order, finite values
 * and bounded reasons on empty and odd records, the real assessment path,
 * and the msgpack shape of `next_actions`. */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <string.h>

#include "assess.h"
#include "leadscore/error.h"
#include "nextaction.h"
#include "testutil.h"
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
        ck_assert_double_eq_tol(c->stake, (float)cart, 1e-9);
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
