/* kpis.h -- the loyalty KPIs of a shop over a period [from, to), computed
 * from every customer's event history (history.h) in one read snapshot of
 * the store (the `kpis` op and `leadscore kpis`).
 *
 * True-period figures.  Only events with ts < `to` are read, so a store
 * that also holds later events gives exactly the same result, bit for bit,
 * as one that never saw them; a customer first seen at or after `to` does
 * not exist yet.  "In the period" means from <= ts < to.
 *
 * What cannot be split by date.  A history keeps `before`, the aggregate
 * of the events folded out of retention (older than the customer's newest
 * event minus history-days, 730 by default; or past HISTORY_MAX_EVENTS),
 * and a customer written by an older schema has only that aggregate.
 * Period figures use the history's events alone: folded events never
 * count in the period.  Lifetime figures (as of `to`) add `before` when its
 * first purchase is before `to`: its order count (before.count[EV_PURCHASE],
 * whole: it cannot be split), its first purchase time (the cohort) and its
 * last purchase time (a known later order).  So the figures are exact while
 * the events they need are still in the histories; a store that folded
 * events of the period (later events pushed them out of retention) counts
 * them only in lifetime figures.
 *
 * Orders.  Purchase lines of one customer with the same order id are one
 * order; a purchase without order id is an order of its own.  An order is
 * placed at the time of its first line (as the feature record counts it,
 * history.h), so orders add up across adjacent periods; a line's value
 * counts at its own ts.  Refunds are never purchases: their value counts
 * at the refund's own ts.
 *
 * Definitions.  A customer "exists" when first seen before `to` (its first
 * history event or `before`'s first_seen).  With "viewer" = customer with a
 * product_view in the period:
 *   customers               customers that exist
 *   new_customers           first seen in the period
 *   active                  customers with any event in the period
 *   orders (key also "purchases")  orders placed in the period
 *   purchase_lines          purchase events in the period
 *   buyers                  customers with >= 1 order in the period
 *   repeat_buyers           customers with >= 2 orders in the period
 *   gross_revenue (key also "revenue")  value of the purchase lines in the period
 *   refunds, refund_events  value and number of refunds in the period
 *   net_revenue             gross_revenue - refunds
 *   average_order_value     gross_revenue / orders
 *   purchase_frequency      orders / buyers
 *   repeat_purchase_rate    repeat_buyers / buyers
 *   conversion_rate         buyers / active
 *   lifetime_buyers         customers with >= 1 order before `to`
 *   lifetime_repeat_buyers  customers with >= 2 orders before `to`
 *   lifetime_repeat_rate    lifetime_repeat_buyers / lifetime_buyers
 *   viewers                 customers with a product_view in the period
 *   viewer_buyers, viewer_carters  viewers with an order / an add_to_cart in the period
 *   cart_adders             customers with an add_to_cart in the period
 *   product_views, add_to_carts    those events in the period
 *   macro_conversion        orders / viewers (can exceed 1)
 *   micro_conversion        cart_adders / viewers
 *   micro_conversion_events add_to_carts / product_views
 *   cohorts                 one per calendar month (UTC) overlapping the period: the
 *                           customers whose FIRST order ever falls in that month (and in
 *                           the period);
 *     customers             the cohort's size
 *     retained              customers of the cohort with an order in a later month, before `to`
 *     retention, churn      retained / customers, 1 - retention
 *     repeat_buyers, repeat_rate  customers of the cohort with >= 2 orders before `to`, / size
 *     returning[i]          customers of the cohort with an order in month cohort + 1 + i
 *                           (i < nmonths: the months up to the one holding `to`, which may
 *                           be partial); the retention curve is returning[i] / customers
 *   new_buyers              sum of the cohort sizes: first order ever in the period
 *   retained                sum of the cohorts' retained
 *   retention_rate          retained / new_buyers;  churn_rate = 1 - retention_rate
 * A ratio whose denominator is 0 is 0 (churn too).  Counts are uint64,
 * money and ratios double, summed in store order (id, then event order),
 * so the same events give the same bits. */
#ifndef LS_KPIS_H
#define LS_KPIS_H

#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "store.h"

/* Longest period, in calendar months (20 years). */
#define KPIS_MAX_COHORTS 240
#define KPIS_DEFAULT_PERIOD_MS (365LL * 86400000LL)

typedef struct {
    int year, month;            /* the calendar month (UTC) */
    int64_t from_ms, to_ms;     /* its part of the period */
    uint64_t customers;         /* first order ever in [from_ms, to_ms) */
    uint64_t retained;
    uint64_t repeat_buyers;
    double retention, churn, repeat_rate;
    int64_t nmonths;            /* months after this one up to `to` */
    uint64_t returning[KPIS_MAX_COHORTS - 1];
} kpis_cohort;

typedef struct {
    int64_t from_ms, to_ms;
    uint64_t customers, new_customers, active;
    uint64_t orders, purchase_lines, buyers, repeat_buyers;
    double gross_revenue, refunds, net_revenue;
    uint64_t refund_events;
    double average_order_value, purchase_frequency, repeat_purchase_rate, conversion_rate;
    uint64_t lifetime_buyers, lifetime_repeat_buyers;
    double lifetime_repeat_rate;
    uint64_t viewers, viewer_buyers, viewer_carters, cart_adders;
    uint64_t product_views, add_to_carts;
    double macro_conversion, micro_conversion, micro_conversion_events;
    uint64_t new_buyers, retained;
    double retention_rate, churn_rate;
    int64_t ncohorts;
    kpis_cohort cohorts[KPIS_MAX_COHORTS];
} kpis_result;

/* NULL when [from_ms, to_ms) is a period kpis_compute accepts: from < to,
 * both within TIMEFMT_MIN_MS..TIMEFMT_MAX_MS, at most KPIS_MAX_COHORTS
 * calendar months.  Otherwise a static reason, for a person. */
const char *kpis_period_error(int64_t from_ms, int64_t to_ms);

/* The default start for a period ending at to_ms: KPIS_DEFAULT_PERIOD_MS
 * before it, saturating at INT64_MIN (never overflows). */
int64_t kpis_default_from(int64_t to_ms);

/* Computes the KPIs of [from_ms, to_ms) in ONE snapshot of r: it begins
 * the snapshot (ending any r had open) and ends it before returning.
 * Returns 0; LS_EINVAL (out zeroed but for from/to) when kpis_period_error
 * says why; LS_ENOMEM; or the store's status.  Cost: one pass over every
 * customer's history.  The result is about 470 KB (a retention curve per
 * cohort): keep it off the stack.  The bytes of *out (it has no padding)
 * depend only on the events before to_ms that the histories hold. */
int kpis_compute(store_reader *r, int64_t from_ms, int64_t to_ms, kpis_result *out);

/* Writes the KPIs as key/value pairs into the map open in w (so an op
 * does begin_ok + kpis_write_msgpack + cw_end).  Keys are the field names
 * above, plus "purchases" (= orders) and "revenue" (= gross_revenue) as v1
 * had them; from/to are ms; cohorts is an array of maps with "month"
 * ("YYYY-MM"), from, to, customers, retained, retention, churn,
 * repeat_buyers, repeat_rate, returning (array of counts) and
 * retention_curve (array of returning[i] / customers). */
void kpis_write_msgpack(const kpis_result *k, codec_writer *w);

/* A plain table for people. */
void kpis_print_table(FILE *out, const kpis_result *k);

#endif
