/* shopgen.h -- a seeded generator of a realistic shop's event stream, with
 * the ground truth that produced it.
 *
 * `leadscore gen` writes its output; tests, demos, model training and
 * benchmarks read it.  The same seed and configuration give byte-identical
 * output (gcc and clang builds agree on x86-64; the samplers use libm's
 * exp/log, so another libm or an FMA-contracting build may differ in the
 * last bit of a draw and from there on).
 *
 * The story.  Every simulated person (a "customer" below, whether or not
 * they ever buy) draws a persona (segment), a purchase rate and a dropout
 * probability, BG/NBD style: lambda ~ Gamma(r, alpha) per day, scaled by the
 * persona, and p ~ Beta(a, b).  While alive, purchases come as a Poisson
 * process of rate lambda; after each purchase the customer drops out with
 * probability p.  Browsing sessions come on top: a persona-specific rate
 * that fades after the first visit, plus "intent" sessions whose rate rises
 * as the next purchase comes near (views of the product about to be bought,
 * carts, abandoned checkouts), so recent activity predicts a purchase, with
 * noise from browsers who fill carts and never buy.  Personas:
 *   browser      the large majority: looks, rarely buys;
 *   occasional   the plain BG/NBD customer;
 *   regular      higher rate, lower dropout;
 *   big_spender  dearer products, bigger baskets;
 *   sale_hunter  about a tenth of buyers: most purchases discounted.
 * Around the funnel: refunds (a few % of orders), reviews (mostly 4-5,
 * worse after a refund), support tickets, shares and referrals by happy
 * repeat customers, weekly e-mail and fortnightly SMS campaigns, signups,
 * `profile` events with a birthday, and anonymous visitors ("anon-<hex>")
 * who may sign up later: their events before the signup carry the anon id,
 * the signup and everything after it the customer id ("cust-<n>", n from
 * 1 to customers).
 * Every buyer has signed up by the checkout of the first order.
 *
 * Output.  Events come out in non-decreasing ts order, each with the
 * PROTOCOL.md section 2 fields (never others): JSON Lines with keys in the
 * order of the CSV header, or CSV with the header row
 *   event_id,customer,type,ts,session,product,category,price,quantity,
 *   value,discounted,rating,order_id,birthday
 * (one line; absent fields are empty cells; cells are quoted per RFC 4180
 * when they need it, which generated values never do).  Money is written
 * with a decimal point (89.99, 12.0) so JSON readers see floats.  On a
 * purchase, product/category/price/quantity describe the order's first
 * line and value is the order total; a refund carries order_id and the
 * refunded value.  Ids: event_id "<8 hex>-<n>", n counting from 1 in
 * output order and the prefix a hash of the seed and of every setting
 * that shapes the events (so the ids of two different streams differ, and
 * CSV and JSONL of one stream share them), session "s-<16 hex>", order_id
 * "ord-<16 hex>", product "sku-<5 digits>".
 *
 * Ground truth (CSV, written after the events).  A header row
 *   customer,purchases_before_cutoff,purchased_in_horizon,
 *   purchases_in_horizon,alive_at_cutoff,lambda_per_day,p_dropout,segment
 * then one row per customer, in customer order: the id its events end
 * under (the anon id for a visitor who never signed up), purchases with
 * ts < cutoff, 1/0 whether it bought in [cutoff, cutoff + horizon), how
 * often, 1/0 whether it had arrived and not dropped out before the cutoff,
 * its purchase rate per day and dropout probability, and its segment.
 * Customers who never produced an event (dormant registered customers)
 * are listed too.  After all customer rows come alias rows
 *   alias,<anon id>,<customer id>
 * (first cell literally "alias", three cells), one per visitor who was
 * anonymous and then signed up, in customer order.  A horizon that runs
 * past the end of the stream is cut at the end of the stream.
 *
 * Memory: about 96 bytes per customer plus 48 bytes per event of the
 * busiest simulated day (events are generated a day at a time as 32-byte
 * records, sorted by time and written), and a 1 MiB output buffer; never
 * proportional to the whole stream (1,000,000 customers over 90 days, 13
 * million events: 110 MB resident).  Nothing here logs, touches global
 * state or calls rand(). */
#ifndef LS_SHOPGEN_H
#define LS_SHOPGEN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"

/* shopgen_config.format */
#define SHOPGEN_JSONL 0
#define SHOPGEN_CSV 1

/* shopgen_config.cutoff_ms: horizon_days before the end of the stream
 * (clamped to the start). */
#define SHOPGEN_CUTOFF_AUTO INT64_MIN

/* 2026-01-01T00:00:00Z */
#define SHOPGEN_DEFAULT_START_MS INT64_C(1767225600000)

/* Bounds checked by shopgen_validate() and shopgen_run(). */
#define SHOPGEN_MAX_CUSTOMERS UINT64_C(100000000)
#define SHOPGEN_MAX_DAYS 36500

/* Personas, the `segment` column of the truth file. */
typedef enum {
    SHOPGEN_BROWSER,
    SHOPGEN_OCCASIONAL,
    SHOPGEN_REGULAR,
    SHOPGEN_BIG_SPENDER,
    SHOPGEN_SALE_HUNTER,
    SHOPGEN_NSEGMENTS
} shopgen_segment;

typedef struct {
    uint64_t seed;
    uint64_t customers;     /* people simulated, 1 .. SHOPGEN_MAX_CUSTOMERS */
    int days;               /* stream length, 1 .. SHOPGEN_MAX_DAYS */
    int64_t start_ms;       /* first instant of day 0, >= 0 */
    int64_t cutoff_ms;      /* truth cutoff, or SHOPGEN_CUTOFF_AUTO */
    int horizon_days;       /* truth horizon after the cutoff, >= 1 */
    int format;             /* SHOPGEN_JSONL or SHOPGEN_CSV */

    /* BG/NBD: lambda ~ Gamma(shape r, rate alpha) per day (alpha in days),
     * p ~ Beta(a, b).  All > 0. */
    double r, alpha, a, b;

    /* Share of customers per buying persona; browsers are the rest.  Each
     * in [0, 1], sum <= 1. */
    double share_occasional, share_regular, share_big_spender, share_sale_hunter;

    double existing_share;  /* registered before day 0 (no signup event) */
    double anon_share;      /* of the new visitors: start anonymous */
    double refund_rate;     /* refunded orders, before persona scaling */
    double intent_boost;    /* extra sessions/day just before a purchase */
    double intent_days;     /* e-folding time of that boost, days, > 0 */

    volatile sig_atomic_t *stop; /* non-NULL and set (a signal): stop after
                                    the day in progress; shopgen_run returns
                                    LS_ETIMEOUT, the output incomplete */
} shopgen_config;

/* What a run produced.  by_type is indexed by event_type (event.h). */
typedef struct {
    uint64_t events;
    uint64_t by_type[EV_TYPE_COUNT];
    uint64_t customers;       /* simulated (config.customers) */
    uint64_t visitors;        /* customers with at least one event (an anon
                                 id and the customer id it became count once) */
    uint64_t buyers;          /* customers with at least one purchase */
    uint64_t repeat_buyers;   /* customers with two or more */
    uint64_t by_segment[SHOPGEN_NSEGMENTS];
    uint64_t aliases;         /* alias rows (anonymous, then signed up) */
    double revenue;           /* sum of purchase values */
    int64_t first_ts, last_ts; /* 0 when no event was written */
    int64_t cutoff_ms;        /* the cutoff used (resolved when AUTO) */
} shopgen_summary;

/* Called after every simulated day: events written so far, days done. */
typedef void (*shopgen_progress_fn)(void *arg, uint64_t events, int days_done, int days_total);

/* Fills c with the defaults: seed 1, 10,000 customers, 90 days from
 * SHOPGEN_DEFAULT_START_MS, cutoff AUTO, 30-day horizon, JSONL, and the
 * tuned model: r 0.75, alpha 110 days (mean rate 0.0068/day before the
 * persona scaling), a 0.8, b 2.5, buying personas 13.3 % of the people
 * (occasional 7.8, regular 2.6, big spender 1.6, sale hunter 1.3), 15 %
 * registered before day 0, 75 % of newcomers anonymous, refunds 4 %,
 * intent boost 0.5 sessions/day fading over 5 days.  Over 90 days this
 * gives about 3.5 % visitor->buyer conversion and 30 % repeat buyers
 * (measured over 20 seeds of 5,000 customers: 3.0-4.0 % and 23-38 %; the
 * default run: 3.5 % and 27 %).  Fewer customers mean noisier rates: a
 * thousand people make only about 35 buyers. */
void shopgen_defaults(shopgen_config *c);

/* Checks a configuration.  Returns LS_OK or LS_EINVAL. */
int shopgen_validate(const shopgen_config *c);

/* Runs the simulation and writes the events to `events` (required) and the
 * ground truth to `truth` (may be NULL: no truth is written).  The streams
 * stay owned and open by the caller; they are written to and flushed,
 * never closed or seeked.  progress may be NULL.  *out (may be NULL) is
 * filled on success.  Returns LS_OK, LS_EINVAL (bad config or NULL
 * events), LS_ENOMEM, LS_ETOOLARGE (a single day beyond 4 billion events),
 * LS_ETIMEOUT (stopped by c->stop) or LS_EIO (a write failed, errno saying
 * why -- ferror() tells which stream; the output is then incomplete). */
int shopgen_run(const shopgen_config *c, FILE *events, FILE *truth,
                shopgen_progress_fn progress, void *arg, shopgen_summary *out);

/* The truth-file name of a segment ("sale_hunter"), or NULL when out of
 * range.  Static storage. */
const char *shopgen_segment_name(int segment);

#endif
