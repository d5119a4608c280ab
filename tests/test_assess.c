/* test_assess.c -- the full score result on worked examples: a customer
 * built from events gives the expected type, phase, loyalty, actions and
 * segments under models/handset.json; BG/NBD figures match the paper's
 * formula by hand; readiness moves the right way with carts and refunds. */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <string.h>

#include "assess.h"
#include "leadscore/error.h"
#include "testutil.h"
#include "timefmt.h"

#define DAY 86400000LL
#define HOUR 3600000LL

static model *m;
static const int64_t NOW = 1793527200000LL; /* 2026-11-01T10:00:00Z */

static void setup(void)
{
    char err[256];
    ck_assert_int_eq(model_load_file(LS_SOURCE_DIR "/models/handset.json", &m, err, sizeof err), LS_OK);
}

static void teardown(void) { model_unref(&m); }

/* Applies one event of type t at NOW - ago_ms. */
static void ev(ls_features *f, event_type t, int64_t ago_ms, double value, const char *category)
{
    ls_event e;
    event_init(&e);
    e.type = t;
    e.ts_ms = NOW - ago_ms;
    e.customer = (ls_str){"c", 1};
    e.value = value;
    if (category)
        e.category = (ls_str){category, strlen(category)};
    if (t == EV_REVIEW) {
        e.has |= EVF_RATING;
        e.rating = (int)value;
        e.value = 0;
    }
    feature_apply(f, &e, model_decay(m));
}

static void assess(const ls_features *f, assess_result *a)
{
    feature_ctx ctx = {NOW, *model_decay(m)};
    assess_customer(m, f, &ctx, 0, -1, a);
}

static int has(const assess_result *a, journey_action x) { return (a->journey.actions >> x) & 1u; }

START_TEST(a_browser_is_a_prospect)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, 2 * HOUR, 0, "shoes/running");
    assess(&f, &a);
    ck_assert_int_eq(a.journey.type, JT_PROSPECT);
    ck_assert_int_eq(a.journey.phase, JP_PROSPECT);
    ck_assert_double_eq(a.p_alive, 1.0);
    /* a prospect's expected purchases: score x 30/horizon (horizon is 30) */
    ck_assert_double_eq_tol(a.expected_purchases_30d, a.logistic.score, 1e-12);
    /* clv: score x population mean order value p*gamma/(q-1) */
    ck_assert_double_eq_tol(a.clv, a.logistic.score * 6.25 * 15.44 / 2.74, 1e-9);
    ck_assert_int_eq(a.journey.loyalty_points, 0);
    ck_assert_str_eq(a.journey.loyalty_tier, "bronze");
    ck_assert_uint_eq(a.journey.actions, 0);
    ck_assert_int_eq(a.nsegments, 2);
    ck_assert_str_eq(a.segments[0].segment, "running");
    ck_assert_str_eq(a.segments[0].reason, "showed interest in shoes/running 1 time (recent interest 1.0)");
    ck_assert_str_eq(a.segments[1].segment, "bestsellers");
}
END_TEST

/* The category count takes every event in it: a buyer who never browsed
 * books is not told "browsed books". */
START_TEST(a_category_reason_says_interest_not_browsing)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 40 * DAY, 20, "books");
    ev(&f, EV_PURCHASE, 10 * DAY, 20, "books");
    assess(&f, &a);
    int found = 0;
    for (int i = 0; i < a.nsegments; i++)
        if (strcmp(a.segments[i].segment, "books") == 0) {
            ck_assert_ptr_null(strstr(a.segments[i].reason, "browsed"));
            ck_assert_ptr_eq(strstr(a.segments[i].reason, "showed interest in books 2 times ("), a.segments[i].reason);
            found = 1;
        }
    ck_assert(found);
}
END_TEST

START_TEST(one_recent_purchase_is_new_in_the_illusion_phase)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 10 * DAY, 60, NULL);
    assess(&f, &a);
    ck_assert_int_eq(a.journey.type, JT_NEW);
    ck_assert_int_eq(a.journey.phase, JP_ILLUSION);
    ck_assert(has(&a, JA_REVIEW_REQUEST));  /* 10 days after, not reviewed */
    ck_assert(has(&a, JA_ACCOUNT_INVITE));  /* bought as a guest */
    ck_assert(!has(&a, JA_WIN_BACK));
    ck_assert_int_eq(a.journey.loyalty_points, 60);
    ck_assert_str_eq(a.segments[0].segment, "welcome-series");
    ck_assert_str_eq(a.segments[0].reason, "new customer: first purchase 10 days ago");
    ev(&f, EV_REVIEW, 2 * DAY, 5, NULL);
    ev(&f, EV_SIGNUP, 2 * DAY, 0, NULL);
    assess(&f, &a);
    ck_assert(!has(&a, JA_REVIEW_REQUEST));
    ck_assert(!has(&a, JA_ACCOUNT_INVITE));
    ck_assert_int_eq(a.journey.loyalty_points, 60 + 50 + 100);
}
END_TEST

START_TEST(steady_repeat_buyer_is_regular_with_trust)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 364 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 250 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 120 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 28 * DAY, 50, NULL);
    assess(&f, &a);
    /* x = 3, t_x = 336/7, T = 364/7 weeks: P(alive) by the paper's formula
     * 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) = 0.814712 */
    ck_assert_double_eq_tol(a.p_alive, 0.814712, 1e-5);
    ck_assert_int_eq(a.journey.type, JT_REGULAR);
    ck_assert_int_eq(a.journey.phase, JP_TRUST);
    ck_assert(!has(&a, JA_WIN_BACK));
    ck_assert(a.expected_purchases_30d > 0 && a.clv > 0);
}
END_TEST

START_TEST(a_lapsing_regular_is_disappointed_and_won_back)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 364 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 340 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 320 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 300 * DAY, 50, NULL);
    assess(&f, &a);
    ck_assert_double_eq_tol(a.p_alive, 0.051930, 1e-5); /* x 3, t_x 64/7, T 52 weeks */
    ck_assert_int_eq(a.journey.phase, JP_DISAPPOINTMENT);
    ck_assert(has(&a, JA_WIN_BACK));
    ck_assert(has(&a, JA_RECOVERY));
    ck_assert_int_eq(a.journey.type, JT_OCCASIONAL); /* too unlikely alive to be regular */
    ck_assert_str_eq(a.segments[0].segment, "service-recovery");
}
END_TEST

/* Orders on one day are one buying occasion: the type counts purchase
 * days, so a first day's orders make a new customer, never a regular or a
 * sale hunter, and the same day two years on an occasional buyer. */
START_TEST(orders_on_one_day_are_one_occasion)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 20 * 60000LL, 40, NULL); /* 3 orders in 20 minutes today */
    ev(&f, EV_PURCHASE, 10 * 60000LL, 40, NULL);
    ev(&f, EV_PURCHASE, 0, 40, NULL);
    assess(&f, &a);
    ck_assert_str_eq(journey_type_name(a.journey.type), "new");
    ck_assert_str_eq(a.segments[0].reason, "new customer: first purchase 0 days ago");

    feature_init(&f);
    ev(&f, EV_PURCHASE, 10 * 60000LL, 40, NULL); /* 2 orders today */
    ev(&f, EV_PURCHASE, 0, 40, NULL);
    assess(&f, &a);
    ck_assert_str_eq(journey_type_name(a.journey.type), "new");

    ls_event e;
    feature_init(&f);
    for (int i = 0; i < 2; i++) { /* 2 discounted orders in one visit: no sale hunter yet */
        event_init(&e);
        e.type = EV_PURCHASE;
        e.ts_ms = NOW - i * 10 * 60000LL;
        e.customer = (ls_str){"c", 1};
        e.value = 40;
        e.discounted = 1;
        feature_apply(&f, &e, model_decay(m));
    }
    assess(&f, &a);
    ck_assert_str_eq(journey_type_name(a.journey.type), "new");

    feature_init(&f);
    for (int i = 0; i < 3; i++) /* 3 orders 10 minutes apart, two years ago */
        ev(&f, EV_PURCHASE, 730 * DAY + i * 10 * 60000LL, 40, NULL);
    assess(&f, &a);
    ck_assert_double_eq(a.p_alive, 1.0); /* one purchase day: x = 0 */
    ck_assert_str_eq(journey_type_name(a.journey.type), "occasional");
    ck_assert_int_eq(a.journey.phase, JP_DISAPPOINTMENT);
    ck_assert(has(&a, JA_WIN_BACK));
}
END_TEST

/* No order for lapsed_days (365) is no regular, whatever P(alive) says:
 * a long history keeps P(alive) high through a year of silence. */
START_TEST(a_lapsed_buyer_is_no_regular)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 3650 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 2000 * DAY, 50, NULL);
    ev(&f, EV_PURCHASE, 400 * DAY, 50, NULL);
    assess(&f, &a);
    ck_assert(a.p_alive >= 0.5); /* regular_min_p_alive alone would let it through */
    ck_assert_int_eq(a.journey.phase, JP_DISAPPOINTMENT);
    ck_assert_str_eq(journey_type_name(a.journey.type), "occasional");
    ev(&f, EV_PURCHASE, 10 * DAY, 50, NULL); /* back: regular again */
    assess(&f, &a);
    ck_assert_str_eq(journey_type_name(a.journey.type), "regular");
}
END_TEST

START_TEST(discounted_buyer_is_a_sale_hunter)
{
    ls_features f;
    assess_result a;
    ls_event e;
    feature_init(&f);
    for (int i = 0; i < 3; i++) {
        event_init(&e);
        e.type = EV_PURCHASE;
        e.ts_ms = NOW - (30 + 20 * i) * DAY;
        e.customer = (ls_str){"c", 1};
        e.value = 40;
        e.discounted = i < 2; /* 80 of 120 = 67 % */
        feature_apply(&f, &e, model_decay(m));
    }
    assess(&f, &a);
    ck_assert_int_eq(a.journey.type, JT_SALE_HUNTER);
    ck_assert_str_eq(a.segments[0].segment, "deals");
    ck_assert_str_eq(a.segments[0].reason, "sale hunter: 67% of spend on discounted items");
}
END_TEST

START_TEST(high_spend_is_a_big_spender_and_gold)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 40 * DAY, 1500, NULL);
    ev(&f, EV_PURCHASE, 10 * DAY, 900, NULL);
    assess(&f, &a);
    ck_assert_int_eq(a.journey.type, JT_BIG_SPENDER);
    ck_assert_int_eq(a.journey.loyalty_points, 2400);
    ck_assert_str_eq(a.journey.loyalty_tier, "gold");
}
END_TEST

START_TEST(advocates_identify_until_disappointed)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 90 * DAY, 100, NULL);
    ev(&f, EV_PURCHASE, 60 * DAY, 100, NULL);
    ev(&f, EV_REFERRAL, 50 * DAY, 0, NULL);
    assess(&f, &a);
    ck_assert_int_eq(a.journey.phase, JP_TRUST); /* one referral alone is not an advocate */
    ev(&f, EV_SHARE, 40 * DAY, 0, NULL);          /* advocacy on a second day */
    assess(&f, &a);
    ck_assert_int_eq(a.journey.phase, JP_IDENTIFICATION);
    ck_assert_int_eq(a.journey.loyalty_points, 200 + 200 + 20);
    ck_assert_str_eq(a.journey.loyalty_tier, "bronze");
    ev(&f, EV_REFUND, 5 * DAY, 100, NULL); /* disappointment wins while it lasts */
    assess(&f, &a);
    ck_assert_int_eq(a.journey.phase, JP_DISAPPOINTMENT);
    ck_assert(has(&a, JA_RECOVERY));
    ck_assert_int_eq(a.journey.loyalty_points, 100 + 200 + 20); /* points on net spend */
    ck_assert_str_eq(a.segments[0].segment, "service-recovery");
    ck_assert_str_eq(a.segments[0].reason, "at risk: refund, bad review or support ticket 5 days ago");
    /* 60 days later the refund is past the 45-day window: back to advocate */
    feature_ctx later = {NOW + 60 * DAY, *model_decay(m)};
    assess_customer(m, &f, &later, 0, -1, &a);
    ck_assert_int_eq(a.journey.phase, JP_IDENTIFICATION);
}
END_TEST

START_TEST(abandoned_cart_needs_an_open_cart_in_the_window)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_ADD_TO_CART, 30 * 60000LL, 120, "shoes/running");
    assess(&f, &a);
    ck_assert(!has(&a, JA_ABANDONED_CART)); /* 30 minutes: still shopping */
    feature_init(&f);
    ev(&f, EV_ADD_TO_CART, 3 * HOUR, 120, "shoes/running");
    assess(&f, &a);
    ck_assert(has(&a, JA_ABANDONED_CART));
    ev(&f, EV_REMOVE_FROM_CART, 2 * HOUR, 120, NULL); /* emptied: nothing open */
    assess(&f, &a);
    ck_assert(!has(&a, JA_ABANDONED_CART));
    feature_init(&f);
    ev(&f, EV_ADD_TO_CART, 8 * DAY, 120, NULL); /* past the 7-day window */
    assess(&f, &a);
    ck_assert(!has(&a, JA_ABANDONED_CART));
    feature_init(&f);
    ev(&f, EV_ADD_TO_CART, 5 * HOUR, 120, NULL);
    ev(&f, EV_PURCHASE, 4 * HOUR, 120, NULL); /* bought */
    assess(&f, &a);
    ck_assert(!has(&a, JA_ABANDONED_CART));
    ev(&f, EV_ADD_TO_CART, 2 * HOUR, 30, NULL); /* a new cart after the purchase */
    assess(&f, &a);
    ck_assert(has(&a, JA_ABANDONED_CART));
    ck_assert_double_eq_tol(feature_open_cart(&f), 30.0, 1e-6);
}
END_TEST

static void birthday_at(ls_features *f, int mmdd)
{
    ls_event e;
    event_init(&e);
    e.type = EV_PROFILE;
    e.ts_ms = NOW - DAY;
    e.customer = (ls_str){"c", 1};
    e.has |= EVF_BIRTHDAY;
    e.birthday_mmdd = mmdd;
    feature_init(f);
    feature_apply(f, &e, model_decay(m));
}

START_TEST(birthdays_within_a_week_including_across_new_year)
{
    ls_features f;
    assess_result a;
    birthday_at(&f, 1104); /* NOW is 1 November: 3 days ahead */
    assess(&f, &a);
    ck_assert(has(&a, JA_BIRTHDAY));
    birthday_at(&f, 1111); /* 10 days ahead */
    assess(&f, &a);
    ck_assert(!has(&a, JA_BIRTHDAY));
    birthday_at(&f, 1031); /* yesterday: next one is a year away */
    assess(&f, &a);
    ck_assert(!has(&a, JA_BIRTHDAY));
    birthday_at(&f, 102);
    feature_ctx dec30 = {timefmt_days_from_civil(2026, 12, 30) * DAY + 10 * HOUR, *model_decay(m)};
    assess_customer(m, &f, &dec30, 0, 0, &a);
    ck_assert(has(&a, JA_BIRTHDAY)); /* 2 January, three days after 30 December */
}
END_TEST

START_TEST(first_purchase_anniversary)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    ev(&f, EV_PURCHASE, 362 * DAY, 40, NULL); /* 2025-11-04: anniversary in 3 days */
    ev(&f, EV_SIGNUP, 362 * DAY, 0, NULL);
    assess(&f, &a);
    ck_assert(has(&a, JA_ANNIVERSARY));
    feature_init(&f);
    ev(&f, EV_PURCHASE, 200 * DAY, 40, NULL);
    assess(&f, &a);
    ck_assert(!has(&a, JA_ANNIVERSARY));
}
END_TEST

START_TEST(segments_follow_the_longest_prefix_and_k)
{
    ls_features f;
    assess_result a;
    feature_init(&f);
    for (int i = 0; i < 5; i++)
        ev(&f, EV_PRODUCT_VIEW, HOUR, 0, "shoes/running/road");
    ev(&f, EV_PRODUCT_VIEW, HOUR, 0, "shoes/boots");
    ev(&f, EV_PRODUCT_VIEW, HOUR, 0, "garden/tools");   /* in no catalogue rule */
    ev(&f, EV_PRODUCT_VIEW, HOUR, 0, "shoesies");       /* "shoes" is not its prefix */
    feature_ctx ctx = {NOW, *model_decay(m)};
    assess_customer(m, &f, &ctx, 0, 10, &a);
    ck_assert_int_eq(a.nsegments, 3);
    ck_assert_str_eq(a.segments[0].segment, "running");
    ck_assert_str_eq(a.segments[1].segment, "footwear");
    ck_assert_str_eq(a.segments[2].segment, "bestsellers");
    ck_assert(a.segments[0].weight > a.segments[1].weight && a.segments[1].weight > a.segments[2].weight);
    assess_customer(m, &f, &ctx, 0, 1, &a);
    ck_assert_int_eq(a.nsegments, 1);
}
END_TEST

START_TEST(nothing_from_no_evidence_but_the_defaults)
{
    char err[256];
    model *bare;
    static const char *json =
        "{\"name\":\"t\",\"version\":\"1\",\"horizon_days\":30,\"half_lives_days\":{\"short\":3,\"long\":30},"
        "\"logistic\":{\"intercept\":-3,\"terms\":[]},\"tiers\":{\"hot\":0.5,\"warm\":0.2},"
        "\"clv\":{\"time_unit_days\":7,\"horizon_days\":365,\"bgnbd\":{\"r\":0.243,\"alpha\":4.414,\"a\":0.793,\"b\":2.426},"
        "\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}},"
        "\"segments\":{\"catalogue\":[{\"prefix\":\"shoes\",\"segment\":\"footwear\"}]}}";
    ck_assert_int_eq(model_load_text(json, strlen(json), &bare, err, sizeof err), LS_OK);
    ls_features f;
    assess_result a;
    feature_init(&f);
    feature_ctx ctx = {NOW, *model_decay(bare)};
    assess_customer(bare, &f, &ctx, 0, -1, &a);
    ck_assert_int_eq(a.nsegments, 0);
    ck_assert_double_eq_tol(a.logistic.score, 1.0 / (1.0 + exp(3.0)), 1e-12);
    model_unref(&bare);
}
END_TEST

START_TEST(more_recent_cart_activity_never_lowers_readiness)
{
    /* over a grid of base customers, a cart add (sooner or later) never
     * lowers the score, and a refund or ticket never raises it */
    for (int base = 0; base < 27; base++) {
        ls_features f;
        assess_result before, after;
        feature_init(&f);
        for (int v = 0; v < base % 3; v++)
            ev(&f, EV_PRODUCT_VIEW, (v + 1) * DAY, 0, "books");
        for (int p = 0; p < (base / 3) % 3; p++)
            ev(&f, EV_PURCHASE, (p + 2) * 20 * DAY, 35, NULL);
        if (base / 9 == 1)
            ev(&f, EV_ADD_TO_CART, 10 * DAY, 20, NULL);
        if (base / 9 == 2)
            ev(&f, EV_REFUND, 15 * DAY, 35, NULL);
        assess(&f, &before);
        ls_features g = f;
        ev(&g, EV_ADD_TO_CART, 6 * DAY, 25, NULL);
        assess(&g, &after);
        ck_assert(after.logistic.score >= before.logistic.score);
        ls_features h = g;
        ev(&h, EV_ADD_TO_CART, 0, 25, NULL); /* the same add, but more recent */
        ev(&g, EV_ADD_TO_CART, 5 * DAY, 25, NULL);
        assess(&h, &after);
        assess(&g, &before);
        ck_assert(after.logistic.score >= before.logistic.score);
        ls_features r = f;
        ev(&r, EV_REFUND, DAY, 35, NULL);
        assess(&f, &before);
        assess(&r, &after);
        ck_assert(after.logistic.score <= before.logistic.score);
        ev(&f, EV_SUPPORT_TICKET, DAY, 0, NULL);
        assess(&f, &after);
        ck_assert(after.logistic.score <= before.logistic.score);
    }
}
END_TEST

START_TEST(bad_journey_and_segment_sections_are_refused)
{
    static const char *head =
        "{\"name\":\"t\",\"version\":\"1\",\"horizon_days\":30,\"half_lives_days\":{\"short\":3,\"long\":30},"
        "\"logistic\":{\"intercept\":-3,\"terms\":[]},\"tiers\":{\"hot\":0.5,\"warm\":0.2},"
        "\"clv\":{\"time_unit_days\":7,\"horizon_days\":365,\"bgnbd\":{\"r\":0.243,\"alpha\":4.414,\"a\":0.793,\"b\":2.426},"
        "\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}";
    static const struct { const char *tail; const char *needle; } cases[] = {
        {",\"journey\":{\"types\":{\"new_max_dayz\":3}}}", "new_max_dayz"},
        {",\"journey\":{\"moods\":{}}}", "moods"},
        {",\"journey\":{\"loyalty\":{\"tiers\":[{\"name\":\"a\",\"min_points\":5},{\"name\":\"b\",\"min_points\":1}]}}}", "ascend"},
        {",\"journey\":{\"actions\":{\"vip_min_clv\":-1}}}", "vip_min_clv"},
        {",\"segments\":{\"k\":0}}", "segments.k"},
        {",\"segments\":{\"by_type\":{\"wizard\":{\"segment\":\"x\",\"weight\":1}}}}", "wizard"},
        {",\"segments\":{\"catalogue\":[{\"prefix\":\"\",\"segment\":\"x\"}]}}", "catalogue[0]"},
        {",\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048], err[256] = "";
        model *bad = NULL;
        snprintf(text, sizeof text, "%s%s", head, cases[i].tail);
        ck_assert_int_eq(model_load_text(text, strlen(text), &bad, err, sizeof err), LS_EPARSE);
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
        ck_assert_ptr_null(bad);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* The per-model constants and the fast paths change no field          */
/* ------------------------------------------------------------------ */

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int same(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* A model with the given "clv" object and "horizon_days", and a catalogue
 * where several entries share a segment name. */
static model *model_with(const char *clv, int horizon_days)
{
    char text[4096], err[256] = "";
    model *mm = NULL;
    snprintf(text, sizeof text,
             "{\"name\":\"t\",\"version\":\"1\",\"horizon_days\":%d,\"half_lives_days\":{\"short\":3,\"long\":30},"
             "\"logistic\":{\"intercept\":-3,\"terms\":[{\"feature\":\"sessions_recent\",\"coef\":0.7,\"mean\":1,"
             "\"scale\":2},{\"feature\":\"spend\",\"transform\":\"log1p\",\"coef\":0.3},{\"feature\":\"repeat_p_buy\","
             "\"coef\":1.1},{\"feature\":\"repeat_expected\",\"coef\":-0.2}]},"
             "\"calibration\":{\"method\":\"platt\",\"a\":0.93,\"b\":-0.11},\"tiers\":{\"hot\":0.5,\"warm\":0.2},"
             "\"clv\":%s,\"segments\":{\"k\":4,\"catalogue\":[{\"prefix\":\"shoes/running\",\"segment\":\"running\"},"
             "{\"prefix\":\"shoes/trail\",\"segment\":\"running\"},{\"prefix\":\"shoes\",\"segment\":\"footwear\"},"
             "{\"prefix\":\"books\",\"segment\":\"books\"},{\"prefix\":\"home\",\"segment\":\"home\"}],"
             "\"by_type\":{\"new\":{\"segment\":\"welcome\",\"weight\":0.8},\"regular\":{\"segment\":\"running\","
             "\"weight\":0.3}},\"by_phase\":{\"disappointment\":{\"segment\":\"recovery\",\"weight\":2}},"
             "\"defaults\":[{\"segment\":\"bestsellers\",\"weight\":0.05},{\"segment\":\"books\",\"weight\":0.01}]}}",
             horizon_days, clv);
    ck_assert_msg(model_load_text(text, strlen(text), &mm, err, sizeof err) == LS_OK, "%s", err);
    return mm;
}

/* Mean value of the repeat purchases, as assess.c takes it. */
static double repeat_mean_of(const ls_features *f, double x)
{
    if (x <= 0)
        return 0;
    double rest = (f->spend - f->first_purchase_value) / x;
    return rest > 0 ? rest : f->spend / (x + 1);
}

/* p_alive, expected_purchases_30d and clv computed directly, every
 * constant evaluated for this customer, through the public clv.h
 * functions one by one (as assess_customer did before it kept them). */
static void direct_base(const model *mm, const ls_features *f, int64_t now, double score, double out[3])
{
    const model_clv *c = model_clv_params(mm);
    double x, t_x, T, mean_order = 0, p = 0, e = 0, v = 0, period = 0, rate = 0;
    clv_gamma_gamma_expected_spend(&c->gamma_gamma, 0, 0, &mean_order);
    if (!assess_summary(c, f, now, &x, &t_x, &T)) {
        double h = model_horizon_days(mm);
        out[0] = 1.0;
        out[1] = score * (h > 30 ? 30.0 / h : 1.0);
        out[2] = score * mean_order;
        return;
    }
    out[0] = clv_repeat_p_alive(&c->repeat, x, t_x, T, &p) == LS_OK ? p : 0.0;
    out[1] = clv_repeat_expected(&c->repeat, x, t_x, T, 30.0 / c->time_unit_days, &e) == LS_OK ? e : 0.0;
    if (c->discount_rate_annual > 0) {
        period = 30.0 / c->time_unit_days;
        rate = pow(1.0 + c->discount_rate_annual, 30.0 / 365.0) - 1.0;
    }
    int rc = clv_repeat_value(&c->repeat, &c->gamma_gamma, x, t_x, T, repeat_mean_of(f, x),
                              c->horizon_days / c->time_unit_days, period, rate, &v);
    out[2] = rc == LS_OK && isfinite(v) ? v : 0.0;
}

/* A random customer: up to 40 events over up to 900 days before NOW. */
static void random_customer(ls_features *f, const feature_decay *decay)
{
    static const char *const cats[] = {"shoes/running", "shoes/trail/x", "shoes", "shoesx", "books/fiction",
                                       "home/kitchen", "garden", "s"};
    int64_t span = 1 + (int64_t)(uniform() * 900) * DAY;
    int n = (int)(uniform() * 40), buyer = uniform() < 0.7;
    feature_init(f);
    for (int i = 0; i < n; i++) {
        ls_event e;
        event_init(&e);
        e.type = (event_type)(uniform() * EV_TYPE_COUNT);
        if (buyer && uniform() < 0.25)
            e.type = EV_PURCHASE;
        if (!buyer && e.type == EV_PURCHASE)
            e.type = EV_PAGE_VIEW;
        e.ts_ms = NOW - (int64_t)(uniform() * (double)span);
        e.customer = (ls_str){"c", 1};
        const char *c = cats[(int)(uniform() * 8)];
        e.category = (ls_str){c, strlen(c)};
        if (e.type == EV_PURCHASE || e.type == EV_REFUND || e.type == EV_ADD_TO_CART) {
            e.value = (double)(int)(uniform() * 50000) / 100.0;
            e.has |= EVF_VALUE;
        }
        if (e.type == EV_REVIEW) {
            e.has |= EVF_RATING;
            e.rating = 1 + (int)(uniform() * 5);
        }
        feature_apply(f, &e, decay);
    }
}

START_TEST(precomputed_constants_match_the_direct_computation)
{
    static const char *const clvs[] = {
        "{\"time_unit_days\":7,\"horizon_days\":365,\"bgnbd\":{\"r\":0.243,\"alpha\":4.414,\"a\":0.793,\"b\":2.426},"
        "\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}",
        "{\"time_unit_days\":7,\"horizon_days\":365,\"discount_rate_annual\":0.12,\"bgnbd\":{\"r\":0.4,\"alpha\":5.7,"
        "\"a\":1,\"b\":3.8},\"gamma_gamma\":{\"p\":2.99,\"q\":1.57,\"gamma\":28.66}}",
        "{\"time_unit_days\":1,\"horizon_days\":180,\"model\":\"nbd\",\"nbd\":{\"r\":0.7,\"alpha\":21},"
        "\"discount_rate_annual\":0.05,\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}",
        "{\"time_unit_days\":30,\"horizon_days\":730,\"model\":\"nbd\",\"nbd\":{\"r\":1.3,\"alpha\":2},"
        "\"gamma_gamma\":{\"p\":1.5,\"q\":1.01,\"gamma\":40}}",
    };
    static const int horizons[] = {30, 90, 20, 365};
    for (size_t mi = 0; mi < sizeof clvs / sizeof clvs[0]; mi++) {
        model *mm = model_with(clvs[mi], horizons[mi]);
        for (int i = 0; i < 1500; i++) {
            ls_features f;
            assess_result a;
            double want[3], lp = 0, le = 0;
            random_customer(&f, model_decay(mm));
            int64_t now = NOW + (int64_t)(uniform() * 400 * DAY) - (i % 9 == 0 ? 200 * DAY : 0);
            feature_ctx ctx = {now, *model_decay(mm)};
            assess_customer(mm, &f, &ctx, i % 2, -1, &a);
            direct_base(mm, &f, now, a.logistic.score, want);
            ck_assert_msg(same(a.p_alive, want[0]), "model %zu customer %d: p_alive %a, direct %a", mi, i, a.p_alive,
                          want[0]);
            ck_assert_msg(same(a.expected_purchases_30d, want[1]), "model %zu customer %d: expected %a, direct %a", mi,
                          i, a.expected_purchases_30d, want[1]);
            ck_assert_msg(same(a.clv, want[2]), "model %zu customer %d: clv %a, direct %a", mi, i, a.clv, want[2]);
            /* the intercept kept at load is the calibrated one */
            double ca, cb;
            model_calibration(mm, &ca, &cb);
            ck_assert(same(model_intercept(mm), ca * -3.0 + cb));
            /* model-level features through assess_repeat, in the contributions */
            assess_repeat(model_clv_params(mm), &f, now, model_horizon_days(mm), &lp, &le);
            for (int j = 0; j < a.logistic.ncontrib; j++)
                if (a.logistic.contrib[j].feature == MODEL_FEATURE_REPEAT_P_BUY)
                    ck_assert(same(a.logistic.contrib[j].value, lp));
            /* without reasons: every other field the same */
            assess_result b;
            assess_customer_ex(mm, &f, &ctx, i % 2, -1, ASSESS_NO_REASONS, &b);
            ck_assert(same(b.logistic.logit, a.logistic.logit) && same(b.clv, a.clv));
            ck_assert_int_eq(b.journey.actions, a.journey.actions);
            ck_assert_int_eq(b.nsegments, a.nsegments);
            for (int j = 0; j < a.nsegments; j++) {
                ck_assert_str_eq(b.segments[j].segment, a.segments[j].segment);
                ck_assert(same(b.segments[j].weight, a.segments[j].weight));
                ck_assert_str_eq(b.segments[j].reason, "");
                ck_assert(a.segments[j].reason[0] != '\0');
            }
        }
        model_unref(&mm);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* One BG/NBD pass for the score and the customer base                 */
/* ------------------------------------------------------------------ */

/* assess_customer_ex as it was before the score and the customer base
 * shared their BG/NBD work: model_score on its own (its model-level
 * features through assess_repeat), then the customer base through its own
 * clv_repeat_customer call, then journey and segments. */
static void separate_assess(const model *mm, const ls_features *f, const feature_ctx *ctx, int explain,
                            unsigned flags, assess_result *out)
{
    const model_clv *c = model_clv_params(mm);
    const assess_consts *k = model_assess_consts(mm);
    double x, t_x, T;
    model_score(mm, f, ctx, explain, &out->logistic);
    if (!assess_summary(c, f, ctx->now_ms, &x, &t_x, &T)) {
        out->p_alive = 1.0;
        out->expected_purchases_30d = out->logistic.score * k->prospect_share;
        out->clv = out->logistic.score * k->mean_order;
    } else {
        clv_repeat_figures fig;
        clv_repeat_customer(&c->repeat, &c->gamma_gamma, x, t_x, T, repeat_mean_of(f, x), k->tau_30, k->horizon,
                            k->period, k->rate, &fig);
        out->p_alive = fig.p_alive_rc == LS_OK ? fig.p_alive : 0.0;
        out->expected_purchases_30d = fig.expected_rc == LS_OK ? fig.expected : 0.0;
        out->clv = fig.value_rc == LS_OK && isfinite(fig.value) ? fig.value : 0.0;
    }
    journey_inputs ji = {ctx->now_ms, out->p_alive, out->clv};
    journey_eval(model_journey(mm), f, &ji, &out->journey);
    segments_inputs si = {*ctx, out->journey, out->p_alive, out->clv};
    out->nsegments = segments_rank_ex(model_segments(mm), f, &si, model_segments(mm)->k, !(flags & ASSESS_NO_REASONS),
                                      out->segments);
}

/* Every field of two assessments, doubles bit for bit. */
static void same_assessment(const assess_result *a, const assess_result *b, const char *what, int i)
{
    const model_result *x = &a->logistic, *y = &b->logistic;
    ck_assert_msg(same(x->logit, y->logit) && same(x->score, y->score), "%s %d: logit %a vs %a", what, i, x->logit,
                  y->logit);
    ck_assert_int_eq(x->score_100, y->score_100);
    ck_assert_ptr_eq(x->tier, y->tier);
    ck_assert_int_eq(x->ncontrib, y->ncontrib);
    for (int j = 0; j < x->ncontrib; j++) {
        ck_assert_int_eq(x->contrib[j].feature, y->contrib[j].feature);
        ck_assert_msg(same(x->contrib[j].value, y->contrib[j].value), "%s %d: %s %a vs %a", what, i,
                      model_feature_name(x->contrib[j].feature), x->contrib[j].value, y->contrib[j].value);
        ck_assert(same(x->contrib[j].contribution, y->contrib[j].contribution));
    }
    ck_assert_msg(same(a->p_alive, b->p_alive), "%s %d: p_alive %a vs %a", what, i, a->p_alive, b->p_alive);
    ck_assert_msg(same(a->expected_purchases_30d, b->expected_purchases_30d), "%s %d: expected %a vs %a", what, i,
                  a->expected_purchases_30d, b->expected_purchases_30d);
    ck_assert_msg(same(a->clv, b->clv), "%s %d: clv %a vs %a", what, i, a->clv, b->clv);
    ck_assert_int_eq(a->journey.type, b->journey.type);
    ck_assert_int_eq(a->journey.phase, b->journey.phase);
    ck_assert_int_eq(a->journey.loyalty_points, b->journey.loyalty_points);
    ck_assert_ptr_eq(a->journey.loyalty_tier, b->journey.loyalty_tier);
    ck_assert_uint_eq(a->journey.actions, b->journey.actions);
    ck_assert_int_eq(a->nsegments, b->nsegments);
    for (int j = 0; j < a->nsegments; j++) {
        ck_assert_str_eq(a->segments[j].segment, b->segments[j].segment);
        ck_assert(same(a->segments[j].weight, b->segments[j].weight));
        ck_assert_str_eq(a->segments[j].reason, b->segments[j].reason);
    }
}

/* A buyer at the edges of the BG/NBD summary, by hand: i picks x (0, a
 * few, huge), T == t_x, T below t_x (asked before the last purchase), a
 * tiny T (1 ms) or a huge one (60 years). */
static void edge_customer(ls_features *f, int i, int64_t *now)
{
    static const uint32_t days[] = {1, 2, 5, 40, 1000, 100000, 4294967295u};
    feature_init(f);
    f->sessions = 3;
    f->purchase_days = days[i % 7];
    f->count[EV_PURCHASE] = f->purchase_days;
    f->first_purchase_value = 20.0 + i % 13;
    f->spend = f->first_purchase_value * (1.0 + (double)f->purchase_days) * (i % 11 == 0 ? 0.01 : 1.0);
    switch ((i / 7) % 5) {
    case 0: /* T == t_x */
        f->first_purchase_ms = NOW - 400 * DAY;
        f->last_purchase_ms = *now = NOW;
        break;
    case 1: /* now before the last purchase: T = t_x */
        f->first_purchase_ms = NOW - 40 * DAY;
        f->last_purchase_ms = NOW;
        *now = NOW - 3 * DAY;
        break;
    case 2: /* tiny T */
        f->first_purchase_ms = f->last_purchase_ms = NOW - 1;
        *now = NOW;
        break;
    case 3: /* huge T */
        f->first_purchase_ms = NOW - 60 * 365 * DAY;
        f->last_purchase_ms = NOW - (int64_t)(uniform() * 60 * 365) * DAY;
        *now = NOW;
        break;
    default: /* tiny t_x, a while ago */
        f->first_purchase_ms = NOW - 200 * DAY;
        f->last_purchase_ms = f->first_purchase_ms + 1;
        *now = NOW;
        break;
    }
    if (f->purchase_days == 1)
        f->last_purchase_ms = f->first_purchase_ms;
    f->first_seen_ms = f->first_purchase_ms;
    f->last_seen_ms = f->last_purchase_ms;
}

START_TEST(one_bgnbd_pass_is_the_separate_calls_bit_for_bit)
{
    /* model horizon 30 days == the 30-day figure (one bracket shared),
     * 90 days (its own bracket), BG/NBD with a == 1 and discounting, NBD */
    static const char *const clvs[] = {
        "{\"time_unit_days\":7,\"horizon_days\":365,\"bgnbd\":{\"r\":0.243,\"alpha\":4.414,\"a\":0.793,\"b\":2.426},"
        "\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}",
        "{\"time_unit_days\":7,\"horizon_days\":365,\"discount_rate_annual\":0.12,\"bgnbd\":{\"r\":0.4,\"alpha\":5.7,"
        "\"a\":1,\"b\":3.8},\"gamma_gamma\":{\"p\":2.99,\"q\":1.57,\"gamma\":28.66}}",
        "{\"time_unit_days\":7,\"horizon_days\":365,\"bgnbd\":{\"r\":0.4005,\"alpha\":5.7044,\"a\":0.7112,\"b\":3.823},"
        "\"gamma_gamma\":{\"p\":2.99,\"q\":1.57,\"gamma\":28.66}}",
        "{\"time_unit_days\":1,\"horizon_days\":730,\"bgnbd\":{\"r\":1.7,\"alpha\":0.3,\"a\":2.5,\"b\":0.4},"
        "\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}",
        "{\"time_unit_days\":1,\"horizon_days\":180,\"model\":\"nbd\",\"nbd\":{\"r\":0.7,\"alpha\":21},"
        "\"discount_rate_annual\":0.05,\"gamma_gamma\":{\"p\":6.25,\"q\":3.74,\"gamma\":15.44}}",
        "{\"time_unit_days\":30,\"horizon_days\":730,\"model\":\"nbd\",\"nbd\":{\"r\":1.3,\"alpha\":2},"
        "\"gamma_gamma\":{\"p\":1.5,\"q\":1.01,\"gamma\":40}}",
    };
    static const int horizons[] = {30, 30, 90, 30, 30, 20};
    for (size_t mi = 0; mi < sizeof clvs / sizeof clvs[0] + 1; mi++) {
        /* the last: handset.json, whose terms need no model-level feature */
        model *mm = mi < sizeof clvs / sizeof clvs[0] ? model_with(clvs[mi], horizons[mi]) : model_ref(m);
        ck_assert_int_eq(model_uses_repeat(mm), mi < sizeof clvs / sizeof clvs[0]);
        for (int i = 0; i < 3000; i++) {
            ls_features f;
            assess_result a, want;
            int64_t now = NOW + (int64_t)(uniform() * 400 * DAY) - (i % 9 == 0 ? 200 * DAY : 0);
            if (i % 3 == 0)
                edge_customer(&f, i / 3, &now);
            else
                random_customer(&f, model_decay(mm));
            feature_ctx ctx = {now, *model_decay(mm)};
            unsigned flags = i % 4 == 1 ? ASSESS_NO_REASONS : 0;
            assess_customer_ex(mm, &f, &ctx, i % 2, -1, flags, &a);
            separate_assess(mm, &f, &ctx, i % 2, flags, &want);
            same_assessment(&a, &want, "model", (int)mi * 100000 + i);
            /* model_score_ex with the figures assess_repeat gives is model_score */
            double level[2];
            model_result r;
            assess_repeat(model_clv_params(mm), &f, now, model_horizon_days(mm), &level[0], &level[1]);
            model_score_ex(mm, &f, &ctx, 1, level, &r);
            model_score(mm, &f, &ctx, 1, &want.logistic);
            a.logistic = r;
            same_assessment(&a, &want, "model_score_ex", i);
        }
        model_unref(&mm);
    }
}
END_TEST

/* The category reason is built by hand; it must read exactly as
 * snprintf's "%.1f" would, ties (to even), signs, tiny and huge values. */
START_TEST(category_reasons_read_as_printf_writes_them)
{
    static const double fixed[] = {0.0, -0.0, 0.05, 0.25, 0.75, 1.25, 2.5, -0.25, -0.04, 0.95, 9.95, 99.95,
                                   1e-310, -1e-310, 5e-324, 1e14 + 0.25, 999999999999999.9, 1e15, -1e15, 1e300,
                                   NAN, INFINITY, -INFINITY, 123456.45, 0.1, 0.15, 0.35, 4503599627370495.5};
    char name[200];
    memset(name, 'x', sizeof name);
    memcpy(name, "shoes/running/", 14);
    name[150] = '\0';
    for (int i = 0; i < 40000; i++) {
        double r;
        if (i < (int)(sizeof fixed / sizeof fixed[0]))
            r = fixed[i];
        else if (i % 3 == 0)
            r = (double)(i % 4000) / 20.0;                  /* many exact halves */
        else
            r = (uniform() < 0.2 ? -1 : 1) * pow(10.0, -20.0 + 36.0 * uniform());
        ls_features f;
        assess_result a;
        feature_init(&f);
        f.first_seen_ms = f.last_seen_ms = NOW;
        f.ncategories = 1;
        feature_category *c = &f.categories[0];
        const char *nm = i % 2 ? "shoes/running" : name;
        c->len = (uint16_t)strlen(nm);
        memcpy(c->name, nm, c->len + 1);
        c->count = i % 5 == 0 ? 1 : (unsigned)(i * 2654435761u);
        c->recent = r;
        c->decayed = isfinite(r) ? 8.0 * (fabs(r) + 1.0) : 1.0;   /* keep it above the 1e-3 floor */
        assess(&f, &a);
        char want[200];
        snprintf(want, sizeof want, "showed interest in %.120s %u time%s (recent interest %.1f)", c->name, c->count,
                 c->count == 1 ? "" : "s", r);
        int found = 0;
        for (int j = 0; j < a.nsegments; j++)
            if (strcmp(a.segments[j].segment, "running") == 0) {
                ck_assert_msg(strcmp(a.segments[j].reason, want) == 0, "%a: \"%s\" != \"%s\"", r,
                              a.segments[j].reason, want);
                found = 1;
            }
        ck_assert_msg(found || !(r + 0.25 * c->decayed >= 1e-3), "%a: no running segment", r);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("assess");
    TCase *tc = tcase_create("rules");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_browser_is_a_prospect);
    tcase_add_test(tc, a_category_reason_says_interest_not_browsing);
    tcase_add_test(tc, one_recent_purchase_is_new_in_the_illusion_phase);
    tcase_add_test(tc, steady_repeat_buyer_is_regular_with_trust);
    tcase_add_test(tc, a_lapsing_regular_is_disappointed_and_won_back);
    tcase_add_test(tc, orders_on_one_day_are_one_occasion);
    tcase_add_test(tc, a_lapsed_buyer_is_no_regular);
    tcase_add_test(tc, discounted_buyer_is_a_sale_hunter);
    tcase_add_test(tc, high_spend_is_a_big_spender_and_gold);
    tcase_add_test(tc, advocates_identify_until_disappointed);
    tcase_add_test(tc, abandoned_cart_needs_an_open_cart_in_the_window);
    tcase_add_test(tc, birthdays_within_a_week_including_across_new_year);
    tcase_add_test(tc, first_purchase_anniversary);
    tcase_add_test(tc, segments_follow_the_longest_prefix_and_k);
    tcase_add_test(tc, nothing_from_no_evidence_but_the_defaults);
    tcase_add_test(tc, more_recent_cart_activity_never_lowers_readiness);
    tcase_add_test(tc, bad_journey_and_segment_sections_are_refused);
    tcase_add_test(tc, precomputed_constants_match_the_direct_computation);
    tcase_add_test(tc, one_bgnbd_pass_is_the_separate_calls_bit_for_bit);
    tcase_add_test(tc, category_reasons_read_as_printf_writes_them);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
