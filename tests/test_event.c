/* test_event.c -- the event module: type names (whose order is part of the
 * store format), MM-DD birthdays, and event_validate(), the one check every
 * event passes at the edge (PROTOCOL.md section 2). */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <string.h>

#include "event.h"
#include "leadscore/error.h"
#include "testutil.h"

/* 2023-11-14T22:13:20Z, a server clock well inside the accepted range. */
#define NOW_MS 1700000000000LL
#define DAY_MS 86400000LL

/* The 17 wire names in their store order (PROTOCOL.md section 2). */
static const char *const wire_names[] = {
    "page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout",
    "purchase", "refund", "review", "email_open", "email_click", "sms_click", "signup",
    "referral", "share", "support_ticket", "profile",
};

/* A valid page_view by customer "c1" with no optional field. */
static void base_event(ls_event *ev)
{
    event_init(ev);
    ev->type = EV_PAGE_VIEW;
    ev->customer = (ls_str){"c1", 2};
}

static int validate(ls_event *ev, const char **why)
{
    *why = NULL;
    return event_validate(ev, NOW_MS, EVENT_MAX_STR, why);
}

/* Asserts that validation fails with rc and a reason that names `field`. */
static void assert_rejected(ls_event *ev, int rc, const char *field)
{
    const char *why;
    ck_assert_int_eq(validate(ev, &why), rc);
    ck_assert_ptr_nonnull(why);
    ck_assert_msg(strstr(why, field) != NULL, "reason \"%s\" does not name %s", why, field);
}

/* ------------------------------------------------------------------ */
/* Type names                                                          */
/* ------------------------------------------------------------------ */

START_TEST(type_names_round_trip_for_all_17_types)
{
    ck_assert_int_eq(EV_TYPE_COUNT, 17);
    ck_assert_int_eq(sizeof wire_names / sizeof wire_names[0], EV_TYPE_COUNT);
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        const char *name = event_type_name((event_type)i);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_eq(name, wire_names[i]);
        event_type t = EV_TYPE_COUNT;
        ck_assert_int_eq(event_type_parse(name, strlen(name), &t), LS_OK);
        ck_assert_int_eq(t, i);
    }
    /* a few by enum name, so a reordering cannot hide behind the table */
    ck_assert_str_eq(event_type_name(EV_PURCHASE), "purchase");
    ck_assert_str_eq(event_type_name(EV_SUPPORT_TICKET), "support_ticket");
    ck_assert_str_eq(event_type_name(EV_PROFILE), "profile");
    ck_assert_ptr_null(event_type_name(EV_TYPE_COUNT));
    ck_assert_ptr_null(event_type_name((event_type)-1));
}
END_TEST

START_TEST(unknown_type_is_rejected)
{
    static const char *const bad[] = {"", "purchases", "Purchase", "PAGE_VIEW", "page-view",
                                      "page_view ", " page_view", "unknown"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        event_type t = EV_SEARCH;
        ck_assert_msg(event_type_parse(bad[i], strlen(bad[i]), &t) == LS_EBADREQ, "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(t, EV_SEARCH); /* untouched on failure */
    }
    /* the length counts, not a NUL: a prefix of a name is not the name */
    event_type t = EV_SEARCH;
    ck_assert_int_eq(event_type_parse("page_vie", 8, &t), LS_EBADREQ);
    ck_assert_int_eq(event_type_parse("refundX", 6, &t), LS_OK);
    ck_assert_int_eq(t, EV_REFUND);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Birthdays                                                           */
/* ------------------------------------------------------------------ */

START_TEST(birthday_parses_valid_dates)
{
    static const struct { const char *s; int mmdd; } ok[] = {
        {"02-29", 229}, {"01-01", 101}, {"12-31", 1231}, {"04-30", 430}, {"10-09", 1009}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int mmdd = -1;
        ck_assert_msg(event_parse_birthday(ok[i].s, 5, &mmdd) == LS_OK, "\"%s\" rejected", ok[i].s);
        ck_assert_int_eq(mmdd, ok[i].mmdd);
    }
}
END_TEST

START_TEST(birthday_rejects_bad_dates)
{
    static const char *const bad[] = {"02-30", "13-01", "1-01", "0101", "00-10", "01-00", "04-31",
                                      "06-31", "01/01", "0a-01", "01-1a", "01-011", "", "-1-01",
                                      "1201", "12-3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int mmdd = -7;
        ck_assert_msg(event_parse_birthday(bad[i], strlen(bad[i]), &mmdd) == LS_EBADREQ,
                      "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(mmdd, -7);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

START_TEST(init_sets_quantity_one_and_no_type)
{
    ls_event ev;
    memset(&ev, 0x5a, sizeof ev);
    event_init(&ev);
    ck_assert_int_eq(ev.quantity, 1);
    ck_assert_int_eq(ev.type, EV_TYPE_COUNT);
    ck_assert_uint_eq(ev.has, 0);
    ck_assert_uint_eq(ev.customer.len, 0);
    ck_assert_int_eq(ev.birthday_mmdd, 0);
    /* an event nobody gave a type is refused */
    const char *why;
    ev.customer = (ls_str){"c1", 2};
    ck_assert_int_eq(validate(&ev, &why), LS_EBADREQ);
    ck_assert_ptr_nonnull(strstr(why, "type"));
}
END_TEST

START_TEST(missing_ts_becomes_now)
{
    ls_event ev;
    const char *why;
    base_event(&ev);
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_int_eq(ev.ts_ms, NOW_MS);
    ck_assert(ev.has & EVF_TS);

    base_event(&ev);
    ev.ts_ms = NOW_MS - 5 * DAY_MS;
    ev.has |= EVF_TS;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_int_eq(ev.ts_ms, NOW_MS - 5 * DAY_MS); /* a given ts is kept */
}
END_TEST

START_TEST(value_defaults_to_price_times_quantity)
{
    ls_event ev;
    const char *why;
    base_event(&ev);
    ev.type = EV_PURCHASE;
    ev.price = 2.5;
    ev.quantity = 4;
    ev.has |= EVF_PRICE | EVF_QUANTITY;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 10.0);

    /* quantity defaults to 1 */
    base_event(&ev);
    ev.type = EV_ADD_TO_CART;
    ev.price = 19.99;
    ev.has |= EVF_PRICE;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 19.99);

    /* an explicit value wins over price x quantity */
    base_event(&ev);
    ev.type = EV_PURCHASE;
    ev.price = 10;
    ev.quantity = 3;
    ev.value = 25; /* a coupon */
    ev.has |= EVF_PRICE | EVF_QUANTITY | EVF_VALUE;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 25.0);

    /* no price, no value: 0 */
    base_event(&ev);
    ev.type = EV_PURCHASE;
    ev.value = 99; /* not flagged as given */
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 0.0);
}
END_TEST

START_TEST(ts_out_of_range_is_rejected)
{
    ls_event ev;
    const char *why;
    static const int64_t bad[] = {EVENT_MIN_TS_MS - 1, 0, -1, 1700000000 /* seconds, not ms */,
                                  NOW_MS + EVENT_MAX_FUTURE_MS + 1, NOW_MS + 30 * DAY_MS, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_event(&ev);
        ev.ts_ms = bad[i];
        ev.has |= EVF_TS;
        assert_rejected(&ev, LS_EBADREQ, "ts");
    }
    /* both ends are inclusive */
    static const int64_t good[] = {EVENT_MIN_TS_MS, NOW_MS + EVENT_MAX_FUTURE_MS, NOW_MS};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        base_event(&ev);
        ev.ts_ms = good[i];
        ev.has |= EVF_TS;
        ck_assert_msg(validate(&ev, &why) == LS_OK, "ts %lld rejected: %s", (long long)good[i], why);
        ck_assert_int_eq(ev.ts_ms, good[i]);
    }
}
END_TEST

START_TEST(bad_price_and_value_are_rejected)
{
    ls_event ev;
    const char *why;
    const double bad[] = {NAN, INFINITY, -INFINITY, -0.01, -1e9, 1e13};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_event(&ev);
        ev.type = EV_PURCHASE;
        ev.price = bad[i];
        ev.has |= EVF_PRICE;
        assert_rejected(&ev, LS_EBADREQ, "price");

        base_event(&ev);
        ev.type = EV_PURCHASE;
        ev.value = bad[i];
        ev.has |= EVF_VALUE;
        assert_rejected(&ev, LS_EBADREQ, "value");
    }
    base_event(&ev);
    ev.type = EV_PURCHASE;
    ev.price = 0; /* free items exist */
    ev.has |= EVF_PRICE;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 0.0);
}
END_TEST

START_TEST(bad_quantity_is_rejected)
{
    ls_event ev;
    const char *why;
    const int64_t bad[] = {0, -1, -1000, 1000001, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_event(&ev);
        ev.type = EV_ADD_TO_CART;
        ev.quantity = bad[i];
        ev.has |= EVF_QUANTITY;
        assert_rejected(&ev, LS_EBADREQ, "quantity");
    }
    base_event(&ev);
    ev.type = EV_ADD_TO_CART;
    ev.quantity = 1000000;
    ev.price = 1;
    ev.has |= EVF_QUANTITY | EVF_PRICE;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert_double_eq(ev.value, 1000000.0);
}
END_TEST

START_TEST(rating_must_be_1_to_5_and_a_review_may_have_none)
{
    ls_event ev;
    const char *why;
    const int bad[] = {0, 6, -1, 100};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_event(&ev);
        ev.type = EV_REVIEW;
        ev.rating = bad[i];
        ev.has |= EVF_RATING;
        assert_rejected(&ev, LS_EBADREQ, "rating");
    }
    /* a rating on another type is checked too */
    base_event(&ev);
    ev.type = EV_PURCHASE;
    ev.rating = 9;
    ev.has |= EVF_RATING;
    assert_rejected(&ev, LS_EBADREQ, "rating");

    /* a review without a rating is a review (v1: rating is optional) */
    base_event(&ev);
    ev.type = EV_REVIEW;
    ck_assert_int_eq(validate(&ev, &why), LS_OK);
    ck_assert(!(ev.has & EVF_RATING));

    for (int r = 1; r <= 5; r++) {
        base_event(&ev);
        ev.type = EV_REVIEW;
        ev.rating = r;
        ev.has |= EVF_RATING;
        ck_assert_int_eq(validate(&ev, &why), LS_OK);
        ck_assert_int_eq(ev.rating, r);
    }
}
END_TEST

START_TEST(strings_over_max_str_are_too_large)
{
    static char big[EVENT_MAX_STR + 2];
    memset(big, 'x', sizeof big);
    static const struct { size_t off; const char *name; } fields[] = {
        {offsetof(ls_event, customer), "customer"}, {offsetof(ls_event, event_id), "event_id"},
        {offsetof(ls_event, session), "session"},   {offsetof(ls_event, product), "product"},
        {offsetof(ls_event, category), "category"}, {offsetof(ls_event, order_id), "order_id"}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        ls_event ev;
        const char *why;
        ls_str *s;

        /* over a configured limit of 16 */
        base_event(&ev);
        s = (ls_str *)((char *)&ev + fields[i].off);
        *s = (ls_str){big, 17};
        why = NULL;
        ck_assert_int_eq(event_validate(&ev, NOW_MS, 16, &why), LS_ETOOLARGE);
        ck_assert_msg(why && strstr(why, fields[i].name), "reason does not name %s", fields[i].name);

        /* exactly at the limit */
        base_event(&ev);
        s = (ls_str *)((char *)&ev + fields[i].off);
        *s = (ls_str){big, 16};
        ck_assert_int_eq(event_validate(&ev, NOW_MS, 16, &why), LS_OK);

        /* a limit above EVENT_MAX_STR is capped at it */
        base_event(&ev);
        s = (ls_str *)((char *)&ev + fields[i].off);
        *s = (ls_str){big, EVENT_MAX_STR + 1};
        ck_assert_int_eq(event_validate(&ev, NOW_MS, 100000, &why), LS_ETOOLARGE);

        base_event(&ev);
        s = (ls_str *)((char *)&ev + fields[i].off);
        *s = (ls_str){big, EVENT_MAX_STR};
        ck_assert_int_eq(event_validate(&ev, NOW_MS, 100000, &why), LS_OK);
    }
}
END_TEST

START_TEST(empty_customer_is_rejected)
{
    ls_event ev;
    base_event(&ev);
    ev.customer = (ls_str){"", 0};
    assert_rejected(&ev, LS_EBADREQ, "customer");
    base_event(&ev);
    ev.customer = (ls_str){NULL, 0};
    assert_rejected(&ev, LS_EBADREQ, "customer");
}
END_TEST

START_TEST(default_value_has_the_same_cap_as_an_explicit_one)
{
    ls_event ev;
    const char *why = NULL;
    event_init(&ev);
    ev.type = EV_ADD_TO_CART;
    ev.customer = (ls_str){"c", 1};
    ev.has = EVF_PRICE | EVF_QUANTITY;
    ev.price = 1e9;
    ev.quantity = 1000; /* 1e12: at the cap, accepted */
    ck_assert_int_eq(event_validate(&ev, 1800000000000LL, 256, &why), LS_OK);
    ck_assert_double_eq(ev.value, 1e12);
    event_init(&ev);
    ev.type = EV_ADD_TO_CART;
    ev.customer = (ls_str){"c", 1};
    ev.has = EVF_PRICE | EVF_QUANTITY;
    ev.price = 1e9;
    ev.quantity = 1001; /* over it */
    ck_assert_int_eq(event_validate(&ev, 1800000000000LL, 256, &why), LS_EBADREQ);
    ck_assert_ptr_nonnull(strstr(why, "1e12"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("event");
    TCase *tc = tcase_create("types");
    tcase_add_test(tc, type_names_round_trip_for_all_17_types);
    tcase_add_test(tc, default_value_has_the_same_cap_as_an_explicit_one);
    tcase_add_test(tc, unknown_type_is_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("birthday");
    tcase_add_test(tc, birthday_parses_valid_dates);
    tcase_add_test(tc, birthday_rejects_bad_dates);
    suite_add_tcase(s, tc);

    tc = tcase_create("validate");
    tcase_add_test(tc, init_sets_quantity_one_and_no_type);
    tcase_add_test(tc, missing_ts_becomes_now);
    tcase_add_test(tc, value_defaults_to_price_times_quantity);
    tcase_add_test(tc, ts_out_of_range_is_rejected);
    tcase_add_test(tc, bad_price_and_value_are_rejected);
    tcase_add_test(tc, bad_quantity_is_rejected);
    tcase_add_test(tc, rating_must_be_1_to_5_and_a_review_may_have_none);
    tcase_add_test(tc, strings_over_max_str_are_too_large);
    tcase_add_test(tc, empty_customer_is_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
