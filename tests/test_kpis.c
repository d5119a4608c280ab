/* test_kpis.c -- the loyalty KPIs (kpis.h) on a small shop whose every
 * figure is worked out by hand below: orders of several lines, refunds,
 * events after the period (which must change nothing, bit for bit), a
 * customer first seen after it, a record from an older schema, events
 * folded out of retention, cohort retention with its monthly curve; then
 * the msgpack form, the `kpis` op and `leadscore kpis` (table, --json,
 * errors). */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "codec.h"
#include "config.h"
#include "feature.h"
#include "history.h"
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

/* ------------------------------------------------------------------ */
/* The shop                                                            */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *customer;
    event_type type;
    const char *when;
    double value;          /* purchases and refunds */
    const char *order;     /* NULL: none */
    int64_t quantity;      /* 0: 1 */
} shop_event;

#define PV EV_PRODUCT_VIEW
#define ATC EV_ADD_TO_CART
#define BUY EV_PURCHASE
#define REF EV_REFUND
#define PAGE EV_PAGE_VIEW

/* The period of the hand-computed figures: [2026-01-01, 2026-04-01). */
#define FROM "2026-01-01"
#define TO "2026-04-01"

/* Every event before `to`.  By hand (see test_hand_computed):
 *   A  views and carts 01-05, order A1 of THREE lines (10, 20 x2, 30) on
 *      01-05; views 02-10, order A2 (40) on 02-10; refund 20 on 02-20
 *   B  views 01-10, two purchases without order id (50, 25) on 01-10: two orders
 *   C  views and carts 02-01, never buys
 *   D  order D1 (60) 2025-11-10, page_view 01-20, order D2 (80) 03-05
 *   E  carts 03-10 without a product view
 *   F  page_view 2025-10-01 only (exists, not active)
 *   G  views 03-20, order G1 of two lines (45, 25) on 03-20; refund 25 on 03-25
 *   I  a record from an older schema (no history: its `before`): purchases
 *      35 on 2025-06-10 and 15 on 2025-07-10, i.e. 2 lifetime orders
 *   J  order J1: a line (10) 2025-12-31T23:59, another (5) 2026-01-01T00:01:
 *      the order is placed in December, the 5 counts as revenue in January
 *   K  views 01-15, order K1 (30) 01-15, order K2 (30) 03-02
 *   L  views 02-14, order L1 (100) 02-14, order L2 (50) 03-01 */
static const shop_event SHOP[] = {
    {"A", PV, "2026-01-05T10:00:00Z", 0, NULL, 0},
    {"A", ATC, "2026-01-05T10:01:00Z", 0, NULL, 0},
    {"A", BUY, "2026-01-05T10:05:00Z", 10, "A1", 0},
    {"A", BUY, "2026-01-05T10:05:00Z", 20, "A1", 2},
    {"A", BUY, "2026-01-05T10:05:00Z", 30, "A1", 0},
    {"A", PV, "2026-02-10T09:00:00Z", 0, NULL, 0},
    {"A", BUY, "2026-02-10T09:05:00Z", 40, "A2", 0},
    {"A", REF, "2026-02-20T12:00:00Z", 20, NULL, 0},
    {"B", PV, "2026-01-10T10:00:00Z", 0, NULL, 0},
    {"B", BUY, "2026-01-10T10:05:00Z", 50, NULL, 0},
    {"B", BUY, "2026-01-10T11:00:00Z", 25, NULL, 0},
    {"C", PV, "2026-02-01T10:00:00Z", 0, NULL, 0},
    {"C", ATC, "2026-02-01T10:01:00Z", 0, NULL, 0},
    {"D", BUY, "2025-11-10T10:00:00Z", 60, "D1", 0},
    {"D", PAGE, "2026-01-20T10:00:00Z", 0, NULL, 0},
    {"D", BUY, "2026-03-05T10:00:00Z", 80, "D2", 0},
    {"E", ATC, "2026-03-10T10:00:00Z", 0, NULL, 0},
    {"F", PAGE, "2025-10-01T10:00:00Z", 0, NULL, 0},
    {"G", PV, "2026-03-20T10:00:00Z", 0, NULL, 0},
    {"G", BUY, "2026-03-20T10:05:00Z", 45, "G1", 0},
    {"G", BUY, "2026-03-20T10:05:00Z", 25, "G1", 0},
    {"G", REF, "2026-03-25T10:00:00Z", 25, NULL, 0},
    {"J", BUY, "2025-12-31T23:59:00Z", 10, "J1", 0},
    {"J", BUY, "2026-01-01T00:01:00Z", 5, "J1", 0},
    {"K", PV, "2026-01-15T10:00:00Z", 0, NULL, 0},
    {"K", BUY, "2026-01-15T10:05:00Z", 30, "K1", 0},
    {"K", BUY, "2026-03-02T10:00:00Z", 30, "K2", 0},
    {"L", PV, "2026-02-14T10:00:00Z", 0, NULL, 0},
    {"L", BUY, "2026-02-14T10:05:00Z", 100, "L1", 0},
    {"L", BUY, "2026-03-01T10:00:00Z", 50, "L2", 0},
};

/* Events at or after `to`: none of them may change a figure.  C buys at
 * exactly `to` (excluded: ts < to); B, G and L order again, G is refunded,
 * A's order A2 gets another line, D and the old-schema I come back, and H
 * is first seen after `to`. */
static const shop_event LATER[] = {
    {"A", BUY, "2026-04-03T10:00:00Z", 5, "A2", 0},
    {"B", BUY, "2026-04-15T10:00:00Z", 99, NULL, 0},
    {"C", BUY, "2026-04-01T00:00:00Z", 10, "C1", 0},
    {"D", PAGE, "2026-05-01T10:00:00Z", 0, NULL, 0},
    {"G", BUY, "2026-04-10T10:00:00Z", 60, "G2", 0},
    {"G", REF, "2026-04-12T10:00:00Z", 45, NULL, 0},
    {"H", PV, "2026-04-05T10:00:00Z", 0, NULL, 0},
    {"H", BUY, "2026-04-05T10:05:00Z", 70, "H1", 0},
    {"I", PAGE, "2026-04-20T10:00:00Z", 0, NULL, 0},
    {"L", BUY, "2026-04-02T10:00:00Z", 20, "L3", 0},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void to_event(const shop_event *s, ls_event *e)
{
    event_init(e);
    e->type = s->type;
    e->customer = (ls_str){s->customer, strlen(s->customer)};
    e->ts_ms = at(s->when);
    e->has = EVF_TS;
    if (s->type == EV_PURCHASE || s->type == EV_REFUND) {
        e->value = s->value;
        e->has |= EVF_VALUE;
    }
    if (s->order)
        e->order_id = (ls_str){s->order, strlen(s->order)};
    if (s->quantity) {
        e->quantity = s->quantity;
        e->has |= EVF_QUANTITY;
    }
}

/* Writes I, the record of an older schema (no history). */
static void put_old_record(store_wtxn *w)
{
    const shop_event old[] = {{"I", BUY, "2025-06-10T10:00:00Z", 35, NULL, 0},
                              {"I", BUY, "2025-07-10T10:00:00Z", 15, NULL, 0}};
    ls_features f;
    ls_event e;
    feature_init(&f);
    for (size_t i = 0; i < N(old); i++) {
        to_event(&old[i], &e);
        feature_apply(&f, &e, &DECAY);
    }
    feature_round(&f);
    ck_assert_int_eq(store_wtxn_put(w, "I", 1, &f), LS_OK);
}

/* Adds events through the store's held record, as import does. */
static void add_events(store_wtxn *w, store_held *held, const shop_event *evs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ls_event e;
        const char *why = NULL;
        int dup = 0;
        to_event(&evs[i], &e);
        ck_assert_int_eq(event_validate(&e, at("2030-01-01"), EVENT_MAX_STR, &why), LS_OK);
        ck_assert_int_eq(store_wtxn_add_event(w, held, &e, &dup), LS_OK);
        ck_assert_int_eq(dup, 0);
    }
    ck_assert_int_eq(store_wtxn_put_back(w, held), LS_OK);
}

/* A new store in path (history_days 0: the default) with the events of a
 * (and of b, if not NULL) in one txn, and I's old record when old. */
static void build(const char *path, int history_days, int old, const shop_event *a, size_t na, const shop_event *b,
                  size_t nb)
{
    store *s = NULL;
    store_wtxn *w = NULL;
    store_held held;
    char err[512];
    store_options so = {.map_size = 16ULL << 20, .no_sync = 1, .history_days = history_days};
    ck_assert_int_eq(store_open(&s, path, &so, &DECAY, err, sizeof err), LS_OK);
    store_held_init(&held);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    if (old)
        put_old_record(w);
    add_events(w, &held, a, na);
    if (b)
        add_events(w, &held, b, nb);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_held_free(&held);
    store_close(&s);
}

/* dir holds the shop WITH the later events (the hand-computed figures
 * must hold there). */
static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
    build(dir, 0, 1, SHOP, N(SHOP), LATER, N(LATER));
}

static void teardown(void)
{
    tu_rmtree(dir);
}

/* KPIs of [from, to) of the store in path. */
static int compute_in(const char *path, int64_t from, int64_t to, kpis_result *k)
{
    store *s = NULL;
    store_reader *r = NULL;
    char err[512];
    store_options so = {.read_only = 1};
    ck_assert_int_eq(store_open(&s, path, &so, NULL, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    int rc = kpis_compute(r, from, to, k);
    store_reader_close(&r);
    store_close(&s);
    return rc;
}

static int compute(int64_t from, int64_t to, kpis_result *k)
{
    return compute_in(dir, from, to, k);
}

#define EQ(a, b) ck_assert_msg(fabs((a) - (b)) < 1e-12, "%s = %.15g, want %.15g", #a, (double)(a), (double)(b))

/* ------------------------------------------------------------------ */
/* The figures                                                         */
/* ------------------------------------------------------------------ */

/* [2026-01-01, 2026-04-01), by hand:
 *   customers 11: A B C D E F G I J K L (H is first seen after `to`)
 *   new 7: A B C E G K L (D, F, I, J were seen before 01-01)
 *   active 9: A B C D E G J K L (F and I have no event in the period)
 *   orders 10: A 2 (A1's three lines are one), B 2 (no order id: one each),
 *     D 1 (D2), G 1 (two lines), K 2, L 2; J 0 (J1 was placed 12-31)
 *   purchase lines 14: A 4, B 2, D 1, G 2, J 1, K 2, L 2
 *   buyers 6: A B D G K L; repeat buyers 4: A B K L
 *   gross revenue 540: A 100, B 75, D 80, G 70, J 5, K 60, L 150
 *   refunds 45 (A 20, G 25) in 2 events; net revenue 495
 *   average order value 540 / 10 = 54; frequency 10 / 6; repeat rate 4 / 6
 *   conversion buyers / active = 6 / 9
 *   lifetime orders before `to`: A 2, B 2, D 2, G 1, I 2 (its record), J 1,
 *     K 2, L 2 -> lifetime buyers 8, repeat 6 (A B D I K L), rate 0.75
 *   viewers 6: A B C G K L; product views 7 (A has 2); who ordered 5
 *     (A B G K L); who carted 2 (A C); cart adders 3 (A C E); carts 3
 *   macro conversion orders / viewers = 10 / 6; micro cart adders / viewers
 *     = 3 / 6 = 0.5; micro by events 3 / 7
 *   cohorts by month of first order ever (D's, I's and J's are earlier):
 *     2026-01 {A, B, K}: A ordered again in Feb, K in Mar, B only in Jan:
 *             retained 2, retention 2/3, churn 1/3, all have 2+ orders: repeat 3 (1.0),
 *             returning [Feb 1 (A), Mar 1 (K)]
 *     2026-02 {L}: L2 in Mar: retained 1, retention 1, churn 0, repeat 1, returning [1]
 *     2026-03 {G}: retained 0, retention 0, churn 1, repeat 0 (G2 is after `to`)
 *   new buyers 5, retained 3, retention 0.6, churn 0.4 */
START_TEST(test_hand_computed)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at(FROM), at(TO), &k), LS_OK);
    ck_assert_int_eq(k.from_ms, at(FROM));
    ck_assert_int_eq(k.to_ms, at(TO));
    ck_assert_uint_eq(k.customers, 11);
    ck_assert_uint_eq(k.new_customers, 7);
    ck_assert_uint_eq(k.active, 9);
    ck_assert_uint_eq(k.orders, 10);
    ck_assert_uint_eq(k.purchase_lines, 14);
    ck_assert_uint_eq(k.buyers, 6);
    ck_assert_uint_eq(k.repeat_buyers, 4);
    ck_assert(k.gross_revenue == 540.0);
    ck_assert(k.refunds == 45.0);
    ck_assert_uint_eq(k.refund_events, 2);
    ck_assert(k.net_revenue == 495.0);
    EQ(k.average_order_value, 54.0);
    EQ(k.purchase_frequency, 10.0 / 6.0);
    EQ(k.repeat_purchase_rate, 4.0 / 6.0);
    EQ(k.conversion_rate, 6.0 / 9.0);
    ck_assert_uint_eq(k.lifetime_buyers, 8);
    ck_assert_uint_eq(k.lifetime_repeat_buyers, 6);
    EQ(k.lifetime_repeat_rate, 0.75);
    ck_assert_uint_eq(k.viewers, 6);
    ck_assert_uint_eq(k.product_views, 7);
    ck_assert_uint_eq(k.viewer_buyers, 5);
    ck_assert_uint_eq(k.viewer_carters, 2);
    ck_assert_uint_eq(k.cart_adders, 3);
    ck_assert_uint_eq(k.add_to_carts, 3);
    EQ(k.macro_conversion, 10.0 / 6.0);
    EQ(k.micro_conversion, 0.5);
    EQ(k.micro_conversion_events, 3.0 / 7.0);

    ck_assert_int_eq(k.ncohorts, 3);
    const int ym[3][2] = {{2026, 1}, {2026, 2}, {2026, 3}};
    const uint64_t n[3] = {3, 1, 1}, kept[3] = {2, 1, 0}, rep[3] = {3, 1, 0};
    const double ret[3] = {2.0 / 3.0, 1, 0}, rr[3] = {1, 1, 0};
    for (int i = 0; i < 3; i++) {
        const kpis_cohort *c = &k.cohorts[i];
        ck_assert_int_eq(c->year, ym[i][0]);
        ck_assert_int_eq(c->month, ym[i][1]);
        ck_assert_uint_eq(c->customers, n[i]);
        ck_assert_uint_eq(c->retained, kept[i]);
        ck_assert_uint_eq(c->repeat_buyers, rep[i]);
        ck_assert_int_eq(c->nmonths, 2 - i);
        EQ(c->retention, ret[i]);
        EQ(c->churn, 1 - ret[i]);
        EQ(c->repeat_rate, rr[i]);
    }
    ck_assert_uint_eq(k.cohorts[0].returning[0], 1); /* A in February */
    ck_assert_uint_eq(k.cohorts[0].returning[1], 1); /* K in March */
    ck_assert_uint_eq(k.cohorts[1].returning[0], 1); /* L in March */
    ck_assert_int_eq(k.cohorts[0].from_ms, at("2026-01-01"));
    ck_assert_int_eq(k.cohorts[1].from_ms, at("2026-02-01"));
    ck_assert_int_eq(k.cohorts[2].to_ms, at(TO));
    ck_assert_uint_eq(k.new_buyers, 5);
    ck_assert_uint_eq(k.retained, 3);
    EQ(k.retention_rate, 0.6);
    EQ(k.churn_rate, 0.4);
}
END_TEST

/* The same store without the later events gives the same bytes, for the
 * hand-computed period and others ending before the later events. */
START_TEST(test_later_events_change_nothing)
{
    static kpis_result with, without;
    char base[512];
    tu_tempdir(base, sizeof base);
    build(base, 0, 1, SHOP, N(SHOP), NULL, 0);
    const char *periods[][2] = {{FROM, TO}, {"2025-11-15", TO}, {"2025-01-01", "2026-03-01"}, {"2026-02-01", "2026-03-21"}};
    for (size_t i = 0; i < N(periods); i++) {
        memset(&with, 0xa5, sizeof with); /* padding and all must be rewritten */
        memset(&without, 0x5a, sizeof without);
        ck_assert_int_eq(compute(at(periods[i][0]), at(periods[i][1]), &with), LS_OK);
        ck_assert_int_eq(compute_in(base, at(periods[i][0]), at(periods[i][1]), &without), LS_OK);
        ck_assert_msg(memcmp(&with, &without, sizeof with) == 0, "period %s..%s differs", periods[i][0],
                      periods[i][1]);
    }
    /* ...and the later events do count once `to` moves past them */
    ck_assert_int_eq(compute(at(FROM), at("2026-06-01"), &with), LS_OK);
    ck_assert_int_eq(compute_in(base, at(FROM), at("2026-06-01"), &without), LS_OK);
    ck_assert_uint_eq(with.customers, 12); /* H */
    ck_assert_uint_eq(without.customers, 11);
    ck_assert_uint_eq(with.orders, 10 + 5); /* B, C1, G2, H1, L3; A2's line is no new order */
    ck_assert(with.gross_revenue == 540.0 + 5 + 99 + 10 + 60 + 70 + 20);
    ck_assert(with.net_revenue == with.gross_revenue - 45 - 45);
    ck_assert_uint_eq(with.cohorts[2].retained, 1); /* G ordered again in April */
    tu_rmtree(base);
}
END_TEST

/* A period that starts and ends mid-month, [2026-01-10, 2026-03-03):
 *   cohorts Jan (01-10..02-01) {B, K}: A's first order (01-05) is before
 *   it; B never orders again, K does on 03-02 (Mar, two months on):
 *   retained 1, returning [0, 1].  Feb {L}: L2 on 03-01, returning [1].
 *   Mar (03-01..03-03): nobody (G's first order is 03-20).
 *   orders: A2, B 2, K 2, L 2 = 7 (D2 on 03-05 is after the end)
 *   customers 9: all but E (first seen 03-10), G (03-20) and H */
START_TEST(test_partial_months)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2026-01-10"), at("2026-03-03"), &k), LS_OK);
    ck_assert_int_eq(k.ncohorts, 3);
    ck_assert_int_eq(k.cohorts[0].from_ms, at("2026-01-10"));
    ck_assert_int_eq(k.cohorts[0].to_ms, at("2026-02-01"));
    ck_assert_int_eq(k.cohorts[2].from_ms, at("2026-03-01"));
    ck_assert_int_eq(k.cohorts[2].to_ms, at("2026-03-03"));
    ck_assert_uint_eq(k.cohorts[0].customers, 2);
    ck_assert_uint_eq(k.cohorts[0].retained, 1);
    ck_assert_uint_eq(k.cohorts[0].returning[0], 0);
    ck_assert_uint_eq(k.cohorts[0].returning[1], 1);
    ck_assert_uint_eq(k.cohorts[1].customers, 1);
    ck_assert_uint_eq(k.cohorts[1].returning[0], 1);
    ck_assert_uint_eq(k.cohorts[2].customers, 0);
    EQ(k.cohorts[2].retention, 0.0); /* 0/0 is 0 */
    EQ(k.cohorts[2].churn, 0.0);
    ck_assert_uint_eq(k.orders, 7);
    ck_assert_uint_eq(k.customers, 9); /* E (03-10), G (03-20), H are not yet */
}
END_TEST

/* Events folded out of retention count in lifetime figures only.  M, with
 * history-days 200: orders M1 2025-03-01 and M2 2025-04-01, then a view
 * and order M3 on 2026-02-10; 2026-02-10 - 200 days = 2025-07-25, so M1
 * and M2 are folded into `before`.
 *   [2026-01-01, 2026-04-01): orders 1, buyers 1; lifetime orders 3
 *     (before's 2 + M3): lifetime repeat 1/1; no cohort (first order 2025-03)
 *   [2025-03-01, 2026-04-01): still 1 order (folded ones have no date), but
 *     the cohort 2025-03 holds M (before's first purchase) and M is
 *     retained: April 2025 (before's last purchase) and February 2026 */
START_TEST(test_folded_events)
{
    static const shop_event m[] = {
        {"M", BUY, "2025-03-01T10:00:00Z", 10, "M1", 0},
        {"M", BUY, "2025-04-01T10:00:00Z", 20, "M2", 0},
        {"M", PV, "2026-02-10T10:00:00Z", 0, NULL, 0},
        {"M", BUY, "2026-02-10T10:05:00Z", 30, "M3", 0},
    };
    static kpis_result k;
    char path[512];
    tu_tempdir(path, sizeof path);
    build(path, 200, 0, m, N(m), NULL, 0);

    store *s = NULL;
    store_reader *r = NULL;
    history h;
    char err[512];
    store_options so = {.read_only = 1};
    history_init(&h);
    ck_assert_int_eq(store_open(&s, path, &so, NULL, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get_history(r, "M", 1, &h), LS_OK);
    ck_assert_int_eq(h.has_before, 1); /* the premise: M1 and M2 were folded */
    ck_assert_uint_eq(h.before.count[EV_PURCHASE], 2);
    ck_assert_uint_eq(h.n, 2);
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
    history_free(&h);

    ck_assert_int_eq(compute_in(path, at(FROM), at(TO), &k), LS_OK);
    ck_assert_uint_eq(k.customers, 1);
    ck_assert_uint_eq(k.new_customers, 0);
    ck_assert_uint_eq(k.orders, 1);
    ck_assert_uint_eq(k.buyers, 1);
    ck_assert(k.gross_revenue == 30.0);
    ck_assert_uint_eq(k.lifetime_buyers, 1);
    ck_assert_uint_eq(k.lifetime_repeat_buyers, 1);
    ck_assert_uint_eq(k.new_buyers, 0);

    ck_assert_int_eq(compute_in(path, at("2025-03-01"), at(TO), &k), LS_OK);
    ck_assert_uint_eq(k.new_customers, 1);
    ck_assert_uint_eq(k.orders, 1);
    ck_assert_int_eq(k.ncohorts, 13);
    ck_assert_uint_eq(k.cohorts[0].customers, 1);
    ck_assert_uint_eq(k.cohorts[0].retained, 1);
    ck_assert_uint_eq(k.cohorts[0].repeat_buyers, 1);
    ck_assert_int_eq(k.cohorts[0].nmonths, 12);
    for (int i = 0; i < 12; i++) /* April 2025 is +1, February 2026 is +11 */
        ck_assert_uint_eq(k.cohorts[0].returning[i], i == 0 || i == 10);
    tu_rmtree(path);
}
END_TEST

START_TEST(test_bad_periods)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at("2026-03-01"), at("2026-03-01"), &k), LS_EINVAL);
    ck_assert_int_eq(compute(at("2026-03-01"), at("2026-01-01"), &k), LS_EINVAL);
    ck_assert_int_eq(compute(INT64_MIN, at("2026-01-01"), &k), LS_EINVAL);
    ck_assert_int_eq(compute(INT64_MIN, INT64_MIN, &k), LS_EINVAL);
    ck_assert_int_eq(compute(at("2026-01-01"), INT64_MAX, &k), LS_EINVAL);
    ck_assert_int_eq(compute(INT64_MAX - 1, INT64_MAX, &k), LS_EINVAL);
    ck_assert_int_eq(compute(TIMEFMT_MAX_MS, TIMEFMT_MAX_MS + 1, &k), LS_EINVAL);
    ck_assert_ptr_nonnull(kpis_period_error(0, 0));
    ck_assert_ptr_null(kpis_period_error(TIMEFMT_MIN_MS, TIMEFMT_MIN_MS + 1));
    ck_assert_int_eq(kpis_default_from(INT64_MIN), INT64_MIN);
    ck_assert_int_eq(kpis_default_from(INT64_MIN + 5), INT64_MIN);
    ck_assert_int_eq(kpis_default_from(at(TO)), at(TO) - KPIS_DEFAULT_PERIOD_MS);
    ck_assert_int_eq(compute(at("2000-01-01"), at("2020-01-01"), &k), LS_OK); /* 240 months */
    ck_assert_int_eq(k.ncohorts, 240);
    ck_assert_int_eq(k.cohorts[0].nmonths, 239);
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
    ck_assert_int_eq(compute(at(FROM), at(TO), &k), LS_OK);
    ck_assert_uint_eq(k.customers, 0);
    EQ(k.repeat_purchase_rate, 0.0);
    EQ(k.conversion_rate, 0.0);
    EQ(k.churn_rate, 0.0);
    EQ(k.macro_conversion, 0.0);
    EQ(k.average_order_value, 0.0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The msgpack form                                                    */
/* ------------------------------------------------------------------ */

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_msg(v != NULL, "no key %s", key);
    return v;
}

START_TEST(test_msgpack)
{
    static kpis_result k;
    ck_assert_int_eq(compute(at(FROM), at(TO), &k), LS_OK);
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
    ck_assert_int_eq(tu_get_int(m, "from"), at(FROM));
    ck_assert_int_eq(tu_get_int(m, "to"), at(TO));
    /* v1 keys */
    ck_assert_int_eq(tu_get_int(m, "customers"), 11);
    ck_assert_int_eq(tu_get_int(m, "new_customers"), 7);
    ck_assert_int_eq(tu_get_int(m, "active"), 9);
    ck_assert_int_eq(tu_get_int(m, "buyers"), 6);
    ck_assert_int_eq(tu_get_int(m, "repeat_buyers"), 4);
    ck_assert_int_eq(tu_get_int(m, "purchases"), 10);
    EQ(tu_get_double(m, "revenue"), 540.0);
    EQ(tu_get_double(m, "repeat_purchase_rate"), 4.0 / 6.0);
    EQ(tu_get_double(m, "purchase_frequency"), 10.0 / 6.0);
    EQ(tu_get_double(m, "average_order_value"), 54.0);
    ck_assert_int_eq(tu_get_int(m, "retained"), 3);
    EQ(tu_get_double(m, "retention_rate"), 0.6);
    EQ(tu_get_double(m, "churn_rate"), 0.4);
    ck_assert_int_eq(tu_get_int(m, "viewers"), 6);
    ck_assert_int_eq(tu_get_int(m, "viewer_buyers"), 5);
    ck_assert_int_eq(tu_get_int(m, "viewer_carters"), 2);
    ck_assert_int_eq(tu_get_int(m, "product_views"), 7);
    ck_assert_int_eq(tu_get_int(m, "add_to_carts"), 3);
    EQ(tu_get_double(m, "macro_conversion"), 10.0 / 6.0);
    EQ(tu_get_double(m, "micro_conversion"), 0.5);
    EQ(tu_get_double(m, "micro_conversion_events"), 3.0 / 7.0);
    /* new keys */
    ck_assert_int_eq(tu_get_int(m, "orders"), 10);
    ck_assert_int_eq(tu_get_int(m, "purchase_lines"), 14);
    EQ(tu_get_double(m, "gross_revenue"), 540.0);
    EQ(tu_get_double(m, "refunds"), 45.0);
    ck_assert_int_eq(tu_get_int(m, "refund_events"), 2);
    EQ(tu_get_double(m, "net_revenue"), 495.0);
    EQ(tu_get_double(m, "conversion_rate"), 6.0 / 9.0);
    ck_assert_int_eq(tu_get_int(m, "lifetime_buyers"), 8);
    ck_assert_int_eq(tu_get_int(m, "lifetime_repeat_buyers"), 6);
    EQ(tu_get_double(m, "lifetime_repeat_rate"), 0.75);
    ck_assert_int_eq(tu_get_int(m, "cart_adders"), 3);
    ck_assert_int_eq(tu_get_int(m, "new_buyers"), 5);

    const msgpack_object *cohorts = get(m, "cohorts");
    ck_assert_int_eq(cohorts->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(cohorts->via.array.size, 3);
    const msgpack_object *jan = &cohorts->via.array.ptr[0], *month = get(jan, "month");
    ck_assert_int_eq(month->type, MSGPACK_OBJECT_STR);
    ck_assert_int_eq((int)month->via.str.size, 7);
    ck_assert(memcmp(month->via.str.ptr, "2026-01", 7) == 0);
    ck_assert_int_eq(tu_get_int(jan, "customers"), 3);
    ck_assert_int_eq(tu_get_int(jan, "retained"), 2);
    ck_assert_int_eq(tu_get_int(jan, "repeat_buyers"), 3);
    EQ(tu_get_double(jan, "repeat_rate"), 1.0);
    EQ(tu_get_double(jan, "retention"), 2.0 / 3.0);
    const msgpack_object *ret = get(jan, "returning"), *curve = get(jan, "retention_curve");
    ck_assert_int_eq(ret->type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(ret->via.array.size, 2);
    ck_assert_uint_eq(ret->via.array.ptr[1].via.u64, 1);
    ck_assert_uint_eq(curve->via.array.size, 2);
    EQ(curve->via.array.ptr[0].via.f64, 1.0 / 3.0);
    ck_assert_uint_eq(get(&cohorts->via.array.ptr[2], "returning")->via.array.size, 0);
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

/* ------------------------------------------------------------------ */
/* The op                                                              */
/* ------------------------------------------------------------------ */

/* Sends {"op": "kpis", "from"?: from, "to": to} to a server on dir. */
static void kpis_op(tu_conn *c, int has_from, int64_t from, int64_t to, msgpack_unpacked *up)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2 + (uint32_t)has_from);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "kpis");
    if (has_from) {
        tu_pack_str(&pk, "from");
        msgpack_pack_int64(&pk, from);
    }
    tu_pack_str(&pk, "to");
    msgpack_pack_int64(&pk, to);
    ck_assert_int_eq(tu_call_raw(c, sb.data, sb.size, up), 0);
    msgpack_sbuffer_destroy(&sb);
}

START_TEST(test_op)
{
    config cfg;
    tu_server srv;
    tu_conn c;
    msgpack_unpacked up;
    tu_config(&cfg, dir);
    tu_server_start(&srv, &cfg);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    msgpack_unpacked_init(&up);
    kpis_op(&c, 1, at(FROM), at(TO), &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert_int_eq(tu_get_int(&up.data, "orders"), 10);
    EQ(tu_get_double(&up.data, "net_revenue"), 495.0);
    kpis_op(&c, 0, 0, INT64_MIN, &up); /* the default from must not overflow */
    ck_assert(tu_is_error(&up.data, "bad_request"));
    kpis_op(&c, 1, INT64_MIN, INT64_MAX, &up);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&srv);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_cli_json)
{
    static char out[1 << 16];
    const char *args[] = {"kpis", "--data", dir, "--from", FROM, "--to", TO, "--json", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, args), 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", out, je.text);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "customers")), 11);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "repeat_buyers")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "orders")), 10);
    EQ(json_number_value(json_object_get(j, "net_revenue")), 495.0);
    EQ(json_number_value(json_object_get(j, "retention_rate")), 0.6);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "cohorts")), 3);
    json_decref(j);
}
END_TEST

START_TEST(test_cli_table_and_errors)
{
    static char out[1 << 16];
    /* 1767225600 is 2026-01-01 in Unix seconds */
    const char *table[] = {"kpis", "--data", dir, "--from", "1767225600", "--to", TO, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, table), 0);
    ck_assert_ptr_nonnull(strstr(out, "repeat-purchase rate"));
    ck_assert_ptr_nonnull(strstr(out, "net revenue"));
    ck_assert_ptr_nonnull(strstr(out, "495.00"));
    ck_assert_ptr_nonnull(strstr(out, "2026-01"));
    ck_assert_ptr_nonnull(strstr(out, "66.7%"));
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
    ck_assert_ptr_nonnull(strstr(out, "from must be before to"));
    const char *toolong[] = {"kpis", "--data", dir, "--from", "2000-01-01", "--to", "2030-01-01", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, toolong), 2);
    ck_assert_ptr_nonnull(strstr(out, "240"));
    const char *extra[] = {"kpis", "--data", dir, "stray", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, extra), 2);
}
END_TEST

static Suite *kpis_suite(void)
{
    Suite *s = suite_create("kpis");
    TCase *tc = tcase_create("kpis");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_hand_computed);
    tcase_add_test(tc, test_later_events_change_nothing);
    tcase_add_test(tc, test_partial_months);
    tcase_add_test(tc, test_folded_events);
    tcase_add_test(tc, test_bad_periods);
    tcase_add_test(tc, test_empty_store);
    tcase_add_test(tc, test_msgpack);
    tcase_add_test(tc, test_op);
    tcase_add_test(tc, test_cli_json);
    tcase_add_test(tc, test_cli_table_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(kpis_suite());
}
