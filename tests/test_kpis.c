/* test_kpis.c -- the loyalty KPIs (kpis.h) on a small hand-made history
 * whose every figure is worked out by hand below, their msgpack form,
 * and `leadscore kpis` (table, --json, errors). */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "feature.h"
#include "kpis.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"
#include "timefmt.h"

#define DAY 86400000LL

static const feature_decay DECAY = {3 * DAY, 30 * DAY};
static char dir[512];

/* ms of a UTC date-time "YYYY-MM-DDTHH:MM:SSZ" or date */
static int64_t at(const char *iso)
{
    int64_t ms = 0;
    ck_assert_int_eq(timefmt_parse(iso, strlen(iso), TIMEFMT_ISO, &ms), LS_OK);
    return ms;
}

static void ev(ls_features *f, event_type type, const char *when, double value)
{
    ls_event e;
    event_init(&e);
    e.type = type;
    e.customer = (ls_str){"x", 1};
    e.ts_ms = at(when);
    e.has = EVF_TS;
    if (type == EV_PURCHASE) {
        e.value = value;
        e.has |= EVF_VALUE;
    }
    feature_apply(f, &e, &DECAY);
}

/* The history (the period is [2025-12-01, 2026-03-01); to - 90 days is
 * 2025-12-01 too):
 *   A  product_view 12-05, purchase 100 on 12-06, product_view 02-20
 *   B  product_view, add_to_cart, purchase 50 on 01-10; purchase 70 on 02-15
 *   C  product_view, add_to_cart on 01-20 (never buys)
 *   D  page_view 2025-06-01 (before the period, gone since)
 *   E  purchase 30 on 2025-08-10, page_view 2025-11-15 (came back, but not lately)
 *   F  page_view 2026-03-05 (after the period: not a customer yet)
 *   G  product_view + purchase 80 on 02-10 (one day only)
 *   H  product_view + purchase 40 on 01-25, email_open 01-28
 * By hand:
 *   customers 7 (all but F); new 5 (A B C G H); active 5 (A B C G H)
 *   buyers 5 (A B E G H), repeat 1 (B), purchases 6, revenue 370
 *   repeat rate 1/5 = 0.2, frequency 6/5 = 1.2, AOV 370/6
 *   retained 3 (A: back 02-20; B: back 02-15; H: back 01-28; not E: last
 *   seen 11-15 < 12-01; not G: never seen after its purchase day)
 *   retention 3/5 = 0.6, churn 0.4
 *   viewers 5 (A B C G H), who bought 4 (A B G H) -> macro 0.8;
 *   who carted 2 (B C) -> micro 0.4; events: 2 carts / 6 views = 1/3
 *   cohorts: 2025-12 {A}: 1, retained 1, repeat 0
 *            2026-01 {B, H}: 2, retained 2, repeat 1 -> 0.5
 *            2026-02 {G}: 1, retained 0 -> retention 0, churn 1 */
static void build_history(void)
{
    store *s = NULL;
    store_wtxn *w = NULL;
    char err[512];
    store_options so = {.map_size = 16ULL << 20, .no_sync = 1};
    ck_assert_int_eq(store_open(&s, dir, &so, &DECAY, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ls_features f;
#define PUT(id) ck_assert_int_eq(store_wtxn_put(w, id, strlen(id), &f), LS_OK)
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, "2025-12-05T10:00:00Z", 0);
    ev(&f, EV_PURCHASE, "2025-12-06T10:00:00Z", 100);
    ev(&f, EV_PRODUCT_VIEW, "2026-02-20T10:00:00Z", 0);
    PUT("A");
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, "2026-01-10T10:00:00Z", 0);
    ev(&f, EV_ADD_TO_CART, "2026-01-10T10:01:00Z", 0);
    ev(&f, EV_PURCHASE, "2026-01-10T10:05:00Z", 50);
    ev(&f, EV_PURCHASE, "2026-02-15T10:00:00Z", 70);
    PUT("B");
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, "2026-01-20T10:00:00Z", 0);
    ev(&f, EV_ADD_TO_CART, "2026-01-20T10:01:00Z", 0);
    PUT("C");
    feature_init(&f);
    ev(&f, EV_PAGE_VIEW, "2025-06-01T10:00:00Z", 0);
    PUT("D");
    feature_init(&f);
    ev(&f, EV_PURCHASE, "2025-08-10T10:00:00Z", 30);
    ev(&f, EV_PAGE_VIEW, "2025-11-15T10:00:00Z", 0);
    PUT("E");
    feature_init(&f);
    ev(&f, EV_PAGE_VIEW, "2026-03-05T10:00:00Z", 0);
    PUT("F");
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, "2026-02-10T10:00:00Z", 0);
    ev(&f, EV_PURCHASE, "2026-02-10T10:10:00Z", 80);
    PUT("G");
    feature_init(&f);
    ev(&f, EV_PRODUCT_VIEW, "2026-01-25T10:00:00Z", 0);
    ev(&f, EV_PURCHASE, "2026-01-25T10:10:00Z", 40);
    ev(&f, EV_EMAIL_OPEN, "2026-01-28T10:00:00Z", 0);
    PUT("H");
#undef PUT
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_close(&s);
}

static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
    build_history();
}

static void teardown(void)
{
    tu_rmtree(dir);
}

/* KPIs of [from, to) of the store in dir. */
static int compute(int64_t from, int64_t to, kpis_result *k)
{
    store *s = NULL;
    store_reader *r = NULL;
    char err[512];
    store_options so = {.read_only = 1};
    ck_assert_int_eq(store_open(&s, dir, &so, NULL, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    int rc = kpis_compute(r, from, to, k);
    store_reader_close(&r);
    store_close(&s);
    return rc;
}

#define EQ(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-12, "%s = %.15g, want %.15g", #a, (double)(a), (double)(b))

START_TEST(test_hand_computed)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2025-12-01"), at("2026-03-01"), &k), LS_OK);
    ck_assert_int_eq(k.from_ms, at("2025-12-01"));
    ck_assert_int_eq(k.to_ms, at("2026-03-01"));
    ck_assert_uint_eq(k.customers, 7);
    ck_assert_uint_eq(k.new_customers, 5);
    ck_assert_uint_eq(k.active, 5);
    ck_assert_uint_eq(k.buyers, 5);
    ck_assert_uint_eq(k.repeat_buyers, 1);
    ck_assert_uint_eq(k.purchases, 6);
    EQ(k.revenue, 370.0);
    EQ(k.repeat_purchase_rate, 0.2);
    EQ(k.purchase_frequency, 1.2);
    EQ(k.average_order_value, 370.0 / 6.0);
    ck_assert_uint_eq(k.retained, 3);
    EQ(k.retention_rate, 0.6);
    EQ(k.churn_rate, 0.4);
    ck_assert_uint_eq(k.viewers, 5);
    ck_assert_uint_eq(k.viewer_buyers, 4);
    ck_assert_uint_eq(k.viewer_carters, 2);
    ck_assert_uint_eq(k.product_views, 6);
    ck_assert_uint_eq(k.add_to_carts, 2);
    EQ(k.macro_conversion, 0.8);
    EQ(k.micro_conversion, 0.4);
    EQ(k.micro_conversion_events, 2.0 / 6.0);

    ck_assert_int_eq(k.ncohorts, 3);
    const int ym[3][2] = {{2025, 12}, {2026, 1}, {2026, 2}};
    const uint64_t n[3] = {1, 2, 1}, kept[3] = {1, 2, 0}, rep[3] = {0, 1, 0};
    const double ret[3] = {1, 1, 0}, rr[3] = {0, 0.5, 0};
    for (int i = 0; i < 3; i++) {
        const kpis_cohort *c = &k.cohorts[i];
        ck_assert_int_eq(c->year, ym[i][0]);
        ck_assert_int_eq(c->month, ym[i][1]);
        ck_assert_uint_eq(c->customers, n[i]);
        ck_assert_uint_eq(c->retained, kept[i]);
        ck_assert_uint_eq(c->repeat_buyers, rep[i]);
        EQ(c->retention, ret[i]);
        EQ(c->churn, 1 - ret[i]);
        EQ(c->repeat_rate, rr[i]);
    }
    ck_assert_int_eq(k.cohorts[0].from_ms, at("2025-12-01"));
    ck_assert_int_eq(k.cohorts[1].from_ms, at("2026-01-01"));
    ck_assert_int_eq(k.cohorts[2].to_ms, at("2026-03-01"));
}
END_TEST

/* A period that starts and ends mid-month: partial first and last cohorts;
 * A's first purchase (12-06) falls before it, so no cohort holds A. */
START_TEST(test_partial_months)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2025-12-10"), at("2026-02-12"), &k), LS_OK);
    ck_assert_int_eq(k.ncohorts, 3);
    ck_assert_int_eq(k.cohorts[0].from_ms, at("2025-12-10"));
    ck_assert_int_eq(k.cohorts[0].to_ms, at("2026-01-01"));
    ck_assert_int_eq(k.cohorts[2].from_ms, at("2026-02-01"));
    ck_assert_int_eq(k.cohorts[2].to_ms, at("2026-02-12"));
    ck_assert_uint_eq(k.cohorts[0].customers, 0); /* A bought on 12-06 */
    ck_assert_uint_eq(k.cohorts[1].customers, 2);
    ck_assert_uint_eq(k.cohorts[2].customers, 1); /* G, 02-10 */
    EQ(k.cohorts[0].retention, 0.0);             /* 0/0 is 0 */
    EQ(k.cohorts[0].churn, 0.0);
    /* F is still in the future; A and B were last seen after the end */
    ck_assert_uint_eq(k.customers, 7);
    ck_assert_uint_eq(k.active, 3); /* C 01-20, G 02-10, H 01-28 */
}
END_TEST

START_TEST(test_bad_periods)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2026-03-01"), at("2026-03-01"), &k), LS_EINVAL);
    ck_assert_int_eq(compute(at("2026-03-01"), at("2026-01-01"), &k), LS_EINVAL);
    ck_assert_int_eq(compute(at("2000-01-01"), at("2020-01-01"), &k), LS_OK);       /* 240 months */
    ck_assert_int_eq(k.ncohorts, 240);
    ck_assert_int_eq(compute(at("2000-01-01"), at("2020-01-02"), &k), LS_EINVAL); /* 241 */
}
END_TEST

START_TEST(test_empty_store)
{
    static kpis_result k;
    tu_rmtree(dir);
    tu_tempdir(dir, sizeof dir);
    store *s = NULL;
    char err[512];
    store_options so = {.map_size = 16ULL << 20, .no_sync = 1};
    ck_assert_int_eq(store_open(&s, dir, &so, &DECAY, err, sizeof err), LS_OK);
    store_close(&s);
    ck_assert_int_eq(compute(at("2025-12-01"), at("2026-03-01"), &k), LS_OK);
    ck_assert_uint_eq(k.customers, 0);
    EQ(k.repeat_purchase_rate, 0.0);
    EQ(k.churn_rate, 0.0);
    EQ(k.macro_conversion, 0.0);
}
END_TEST

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_msg(v != NULL, "no key %s", key);
    return v;
}

START_TEST(test_msgpack)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2025-12-01"), at("2026-03-01"), &k), LS_OK);
    codec_writer w;
    codec_writer_init(&w);
    cw_map(&w);
    cw_key(&w, "ok");
    cw_bool(&w, 1);
    kpis_write_msgpack(&k, &w);
    cw_end(&w);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(msgpack_unpack_next(&up, w.sb.data, w.sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *m = &up.data;
    ck_assert_int_eq(m->type, MSGPACK_OBJECT_MAP);
    ck_assert_int_eq(tu_get_int(m, "from"), at("2025-12-01"));
    ck_assert_int_eq(tu_get_int(m, "to"), at("2026-03-01"));
    ck_assert_int_eq(tu_get_int(m, "customers"), 7);
    ck_assert_int_eq(tu_get_int(m, "active"), 5);
    ck_assert_int_eq(tu_get_int(m, "buyers"), 5);
    EQ(tu_get_double(m, "repeat_purchase_rate"), 0.2);
    EQ(tu_get_double(m, "purchase_frequency"), 1.2);
    EQ(tu_get_double(m, "average_order_value"), 370.0 / 6.0);
    EQ(tu_get_double(m, "churn_rate"), 0.4);
    EQ(tu_get_double(m, "macro_conversion"), 0.8);
    EQ(tu_get_double(m, "micro_conversion"), 0.4);
    const msgpack_object *cohorts = get(m, "cohorts");
    ck_assert_int_eq(cohorts->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(cohorts->via.array.size, 3);
    const msgpack_object *jan = &cohorts->via.array.ptr[1], *month = get(jan, "month");
    ck_assert_int_eq(month->type, MSGPACK_OBJECT_STR);
    ck_assert_int_eq((int)month->via.str.size, 7);
    ck_assert(memcmp(month->via.str.ptr, "2026-01", 7) == 0);
    ck_assert_int_eq(tu_get_int(jan, "customers"), 2);
    ck_assert_int_eq(tu_get_int(jan, "retained"), 2);
    EQ(tu_get_double(jan, "repeat_rate"), 0.5);
    /* every key once: the map's size is what was written */
    for (uint32_t i = 0; i < m->via.map.size; i++)
        for (uint32_t j = i + 1; j < m->via.map.size; j++)
            ck_assert(m->via.map.ptr[i].key.via.str.size != m->via.map.ptr[j].key.via.str.size ||
                      memcmp(m->via.map.ptr[i].key.via.str.ptr, m->via.map.ptr[j].key.via.str.ptr,
                             m->via.map.ptr[i].key.via.str.size) != 0);
    msgpack_unpacked_destroy(&up);
    codec_writer_destroy(&w);
}
END_TEST

/* ---- the command ---- */

START_TEST(test_cli_json)
{
    static char out[1 << 16];
    const char *args[] = {"kpis", "--data", dir, "--from", "2025-12-01", "--to", "2026-03-01", "--json", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", out, je.text);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "customers")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "repeat_buyers")), 1);
    EQ(json_number_value(json_object_get(j, "retention_rate")), 0.6);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "cohorts")), 3);
    json_decref(j);
}
END_TEST

START_TEST(test_cli_table_and_errors)
{
    static char out[1 << 16];
    const char *table[] = {"kpis", "--data", dir, "--from", "1764547200", "--to", "2026-03-01", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, table), 0);
    ck_assert_ptr_nonnull(strstr(out, "repeat-purchase rate"));
    ck_assert_ptr_nonnull(strstr(out, "2026-01"));
    ck_assert_ptr_nonnull(strstr(out, "20.0%"));
    const char *help[] = {"kpis", "--help", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: leadscore kpis"));
    const char *nostore[] = {"kpis", "--data", "/nonexistent/leadscore-kpis", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nostore), 1);
    ck_assert_ptr_nonnull(strstr(out, "no leadscore store"));
    const char *badtime[] = {"kpis", "--data", dir, "--from", "yesterday", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badtime), 2);
    const char *backwards[] = {"kpis", "--data", dir, "--from", "2026-03-01", "--to", "2026-01-01", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, backwards), 2);
    const char *extra[] = {"kpis", "--data", dir, "stray", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, extra), 2);
}
END_TEST

static Suite *kpis_suite(void)
{
    Suite *s = suite_create("kpis");
    TCase *tc = tcase_create("kpis");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hand_computed);
    tcase_add_test(tc, test_partial_months);
    tcase_add_test(tc, test_bad_periods);
    tcase_add_test(tc, test_empty_store);
    tcase_add_test(tc, test_msgpack);
    tcase_add_test(tc, test_cli_json);
    tcase_add_test(tc, test_cli_table_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(kpis_suite());
}
