/* kpis.h -- the loyalty KPIs of a shop over a period [from, to), computed
 * from one read snapshot of the store (the `kpis` op and `leadscore kpis`).
 *
 * What the records allow.  A customer's record keeps aggregates, not a
 * history: lifetime counts per event type, first/last seen, first/last
 * purchase, spend.  So a KPI can be cut by those few times, but a count
 * cannot be split by date ("purchases made in March" is not stored).  The
 * definitions below say which times they use; every count is a lifetime
 * count.  They are exact when `to` is now (the default) and approximate
 * for a past `to`, where later activity is already folded into the
 * records (e.g. a buyer's count includes purchases made after `to`).
 *
 * Population: the records whose first_seen is before `to` (all customers
 * when `to` is now).  Then, with "viewer" = at least one product_view:
 *   customers               records in the population
 *   new_customers           first_seen in [from, to)
 *   active                  last_seen in [from, to)
 *   buyers                  at least one purchase, the first before `to`
 *   repeat_buyers           buyers with >= 2 purchases
 *   purchases, revenue      their purchase count and gross spend (refunds not deducted)
 *   repeat_purchase_rate    repeat_buyers / buyers
 *   purchase_frequency      purchases / buyers
 *   average_order_value     revenue / purchases
 *   retained                buyers still active at `to`: seen again at least a day after
 *                           their first purchase, and last seen within the KPIS_ACTIVE_DAYS
 *                           (90) days before `to` (or later)
 *   retention_rate          retained / buyers;  churn_rate = 1 - retention_rate
 *   viewers                 customers with a product_view
 *   macro_conversion        viewers who bought / viewers
 *   micro_conversion        viewers with an add_to_cart / viewers
 *   micro_conversion_events add_to_cart events / product_view events
 *   cohorts                 one per calendar month (UTC) overlapping [from, to): the buyers
 *                           whose FIRST purchase falls in that month (within the period), their
 *                           retained count, retention (retained / customers), churn
 *                           (1 - retention) and repeat rate (>= 2 purchases / customers).
 *                           Retention after k months cannot be told from aggregates; this is
 *                           "still active at `to`".  Cohorts whose first purchases are less
 *                           than 90 days before `to` measure "came back", not long-term loyalty.
 * A ratio whose denominator is 0 is 0.  Counts are uint64, money and
 * ratios double. */
#ifndef LS_KPIS_H
#define LS_KPIS_H

#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "store.h"

#define KPIS_ACTIVE_DAYS 90
/* Longest period, in calendar months (20 years). */
#define KPIS_MAX_COHORTS 240
#define KPIS_DEFAULT_PERIOD_MS (365LL * 86400000LL)

typedef struct {
    int year, month;            /* the calendar month (UTC) */
    int64_t from_ms, to_ms;     /* its part of the period */
    uint64_t customers;         /* first purchase in [from_ms, to_ms) */
    uint64_t retained;
    uint64_t repeat_buyers;
    double retention, churn, repeat_rate;
} kpis_cohort;

typedef struct {
    int64_t from_ms, to_ms;
    uint64_t customers, new_customers, active;
    uint64_t buyers, repeat_buyers, purchases;
    double revenue;
    double repeat_purchase_rate, purchase_frequency, average_order_value;
    uint64_t retained;
    double retention_rate, churn_rate;
    uint64_t viewers, viewer_buyers, viewer_carters;
    uint64_t product_views, add_to_carts;
    double macro_conversion, micro_conversion, micro_conversion_events;
    int ncohorts;
    kpis_cohort cohorts[KPIS_MAX_COHORTS];
} kpis_result;

/* Computes the KPIs of [from_ms, to_ms) in ONE snapshot of r: it begins
 * the snapshot (ending any r had open) and ends it before returning.
 * Returns 0; LS_EINVAL (out untouched but for from/to) when from_ms >= to_ms
 * or the period spans more than KPIS_MAX_COHORTS months; or the store's
 * status.  Cost: one pass over every record (about 0.3 s per million customers);
 * the result is about 17 KB: keep it off small stacks. */
int kpis_compute(store_reader *r, int64_t from_ms, int64_t to_ms, kpis_result *out);

/* Writes the KPIs as key/value pairs into the map open in w (so an op
 * does begin_ok + kpis_write_msgpack + cw_end).  Keys are the field names
 * above; from/to are ms; cohorts is an array of maps with "month"
 * ("YYYY-MM"), from, to, customers, retained, retention, churn,
 * repeat_buyers, repeat_rate. */
void kpis_write_msgpack(const kpis_result *k, codec_writer *w);

/* A plain table for people. */
void kpis_print_table(FILE *out, const kpis_result *k);

#endif
