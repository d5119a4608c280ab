/* kpis.c -- loyalty KPIs over a period from one store snapshot (the
 * definitions are in kpis.h): one pass over every customer's history,
 * each customer tallied on its own, then added to the totals; ratios at
 * the end. */
#include "kpis.h"

#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define DAY_MS 86400000LL
#define NONE INT64_MAX

/* The pass over the customers. */
typedef struct {
    kpis_result *k;
    int64_t month0;             /* month index of the first cohort */
    uint8_t *seen;              /* per string ref: an order id already placed */
    size_t seen_cap;
    uint8_t hit[KPIS_MAX_COHORTS]; /* per month after the cohort's: ordered then */
} pass;

/* One customer's figures. */
typedef struct {
    int64_t first_seen;         /* NONE: no event at all */
    int64_t first_order;        /* first order ever before `to`; NONE: none */
    int active;
    uint64_t orders, lines, views, carts, refund_events;
    uint64_t lifetime_orders;
    double gross, refunds;
    int64_t cohort;             /* index into k->cohorts, or -1 */
} tally;

/* ------------------------------------------------------------------ */
/* Months                                                              */
/* ------------------------------------------------------------------ */

/* year * 12 + month - 1 of a time (>= 0 within the timefmt range). */
static int64_t month_index(int64_t ms)
{
    int64_t y;
    int m, d;
    timefmt_civil(ms, &y, &m, &d);
    return y * 12 + (m - 1);
}

static int64_t month_start_ms(int64_t index)
{
    return timefmt_days_from_civil(index / 12, (int)(index % 12) + 1, 1) * DAY_MS;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

const char *kpis_period_error(int64_t from_ms, int64_t to_ms)
{
    if (from_ms < TIMEFMT_MIN_MS || from_ms > TIMEFMT_MAX_MS || to_ms < TIMEFMT_MIN_MS || to_ms > TIMEFMT_MAX_MS)
        return "from and to must lie between the years 0000 and 9999";
    if (from_ms >= to_ms)
        return "from must be before to";
    if (month_index(to_ms - 1) - month_index(from_ms) + 1 > KPIS_MAX_COHORTS)
        return "the period spans more than 240 calendar months";
    return NULL;
}

int64_t kpis_default_from(int64_t to_ms)
{
    return to_ms < INT64_MIN + KPIS_DEFAULT_PERIOD_MS ? INT64_MIN : to_ms - KPIS_DEFAULT_PERIOD_MS;
}

/* ------------------------------------------------------------------ */
/* One customer                                                        */
/* ------------------------------------------------------------------ */

/* `before` when it holds orders placed before `to` (kpis.h), else NULL. */
static const ls_features *before_orders(const history *h, int64_t to_ms)
{
    const ls_features *b = &h->before;
    if (!h->has_before || b->count[EV_PURCHASE] == 0 || b->first_purchase_ms <= 0 || b->first_purchase_ms >= to_ms)
        return NULL;
    return b;
}

/* When the customer was first seen and first ordered, looking at the
 * events [0, n) (those before `to`) and `before`. */
static void first_times(const history *h, size_t n, int64_t to_ms, tally *t)
{
    const ls_features *b = before_orders(h, to_ms);
    t->first_seen = t->first_order = NONE;
    if (h->has_before && !feature_empty(&h->before))
        t->first_seen = h->before.first_seen_ms;
    if (n > 0 && h->ev[0].ts_ms < t->first_seen)
        t->first_seen = h->ev[0].ts_ms;
    if (b)
        t->first_order = b->first_purchase_ms;
    for (size_t i = 0; i < n; i++) {
        if (h->ev[i].type == EV_PURCHASE) {
            if (h->ev[i].ts_ms < t->first_order)
                t->first_order = h->ev[i].ts_ms;
            break; /* time order: the first purchase line opens the first order */
        }
    }
}

/* Marks that the customer ordered in the month of ts, when it is after
 * its cohort's month (ts < `to`, so within the curve). */
static void note_month(pass *p, const tally *t, int64_t ts)
{
    int64_t off = month_index(ts) - (p->month0 + t->cohort);
    if (off >= 1)
        p->hit[off - 1] = 1;
}

/* 1 when purchase event e opens an order: no order id, or one not seen. */
static int opens_order(pass *p, const history_event *e)
{
    if (e->order == 0)
        return 1;
    int fresh = !p->seen[e->order];
    p->seen[e->order] = 1;
    return fresh;
}

static void tally_event(pass *p, tally *t, const history_event *e)
{
    const kpis_result *k = p->k;
    int in = e->ts_ms >= k->from_ms;
    t->active |= in;
    switch (e->type) {
    case EV_PRODUCT_VIEW: t->views += in; break;
    case EV_ADD_TO_CART: t->carts += in; break;
    case EV_REFUND:
        if (in) {
            t->refund_events++;
            t->refunds += e->value;
        }
        break;
    case EV_PURCHASE:
        if (in) {
            t->lines++;
            t->gross += e->value;
        }
        if (opens_order(p, e)) {
            t->lifetime_orders++;
            t->orders += in;
            if (t->cohort >= 0)
                note_month(p, t, e->ts_ms);
        }
        break;
    default: break;
    }
}

/* Makes p->seen hold one zeroed flag per string ref of h. */
static int seen_reset(pass *p, const history *h)
{
    size_t need = h->nstr + 1;
    if (need > p->seen_cap) {
        uint8_t *s = realloc(p->seen, need);
        if (!s)
            return LS_ENOMEM;
        p->seen = s;
        p->seen_cap = need;
    }
    memset(p->seen, 0, need);
    return LS_OK;
}

/* Adds customer t to the totals and, when it has one, to its cohort. */
static void add_customer(pass *p, const tally *t)
{
    kpis_result *k = p->k;
    k->customers++;
    k->new_customers += t->first_seen >= k->from_ms;
    k->active += (uint64_t)t->active;
    k->orders += t->orders;
    k->purchase_lines += t->lines;
    k->buyers += t->orders >= 1;
    k->repeat_buyers += t->orders >= 2;
    k->gross_revenue += t->gross;
    k->refunds += t->refunds;
    k->refund_events += t->refund_events;
    k->lifetime_buyers += t->lifetime_orders >= 1;
    k->lifetime_repeat_buyers += t->lifetime_orders >= 2;
    k->viewers += t->views > 0;
    k->viewer_buyers += t->views > 0 && t->orders > 0;
    k->viewer_carters += t->views > 0 && t->carts > 0;
    k->cart_adders += t->carts > 0;
    k->product_views += t->views;
    k->add_to_carts += t->carts;
    if (t->cohort < 0)
        return;
    kpis_cohort *c = &k->cohorts[t->cohort];
    int kept = 0;
    c->customers++;
    c->repeat_buyers += t->lifetime_orders >= 2;
    for (int64_t i = 0; i < c->nmonths; i++) {
        c->returning[i] += p->hit[i];
        kept |= p->hit[i];
    }
    c->retained += (uint64_t)kept;
}

static int visit(void *arg, const char *id, size_t len, const ls_features *f, const history *h)
{
    pass *p = arg;
    const kpis_result *k = p->k;
    size_t n = history_upto(h, k->to_ms - 1); /* the events with ts < to */
    tally t;
    (void)id;
    (void)len;
    (void)f;
    memset(&t, 0, sizeof t);
    first_times(h, n, k->to_ms, &t);
    if (t.first_seen >= k->to_ms)
        return LS_OK; /* not a customer yet at `to` */
    int rc = seen_reset(p, h);
    if (rc != LS_OK)
        return rc;
    t.cohort = -1;
    if (t.first_order >= k->from_ms && t.first_order < k->to_ms) {
        t.cohort = month_index(t.first_order) - p->month0;
        memset(p->hit, 0, sizeof p->hit);
    }
    const ls_features *b = before_orders(h, k->to_ms);
    if (b) {
        t.lifetime_orders = b->count[EV_PURCHASE];
        if (t.cohort >= 0 && b->last_purchase_ms < k->to_ms)
            note_month(p, &t, b->last_purchase_ms);
    }
    for (size_t i = 0; i < n; i++)
        tally_event(p, &t, &h->ev[i]);
    add_customer(p, &t);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* The pass                                                            */
/* ------------------------------------------------------------------ */

static void lay_out_cohorts(kpis_result *k, int64_t m0, int64_t m1)
{
    k->ncohorts = m1 - m0 + 1;
    for (int64_t i = 0; i < k->ncohorts; i++) {
        kpis_cohort *c = &k->cohorts[i];
        int64_t a = month_start_ms(m0 + i), b = month_start_ms(m0 + i + 1);
        c->year = (int)((m0 + i) / 12);
        c->month = (int)((m0 + i) % 12) + 1;
        c->from_ms = a > k->from_ms ? a : k->from_ms;
        c->to_ms = b < k->to_ms ? b : k->to_ms;
        c->nmonths = k->ncohorts - 1 - i;
    }
}

static void finish(kpis_result *k)
{
    k->net_revenue = k->gross_revenue - k->refunds;
    k->average_order_value = ratio(k->gross_revenue, (double)k->orders);
    k->purchase_frequency = ratio((double)k->orders, (double)k->buyers);
    k->repeat_purchase_rate = ratio((double)k->repeat_buyers, (double)k->buyers);
    k->conversion_rate = ratio((double)k->buyers, (double)k->active);
    k->lifetime_repeat_rate = ratio((double)k->lifetime_repeat_buyers, (double)k->lifetime_buyers);
    k->macro_conversion = ratio((double)k->orders, (double)k->viewers);
    k->micro_conversion = ratio((double)k->cart_adders, (double)k->viewers);
    k->micro_conversion_events = ratio((double)k->add_to_carts, (double)k->product_views);
    for (int64_t i = 0; i < k->ncohorts; i++) {
        kpis_cohort *c = &k->cohorts[i];
        c->retention = ratio((double)c->retained, (double)c->customers);
        c->churn = c->customers ? 1.0 - c->retention : 0.0;
        c->repeat_rate = ratio((double)c->repeat_buyers, (double)c->customers);
        k->new_buyers += c->customers;
        k->retained += c->retained;
    }
    k->retention_rate = ratio((double)k->retained, (double)k->new_buyers);
    k->churn_rate = k->new_buyers ? 1.0 - k->retention_rate : 0.0;
}

int kpis_compute(store_reader *r, int64_t from_ms, int64_t to_ms, kpis_result *out)
{
    memset(out, 0, sizeof *out);
    out->from_ms = from_ms;
    out->to_ms = to_ms;
    if (kpis_period_error(from_ms, to_ms))
        return LS_EINVAL;
    pass *p = calloc(1, sizeof *p);
    if (!p)
        return LS_ENOMEM;
    p->k = out;
    p->month0 = month_index(from_ms);
    lay_out_cohorts(out, p->month0, month_index(to_ms - 1));
    int rc = store_reader_begin(r);
    if (rc == LS_OK) {
        rc = store_reader_scan_history(r, visit, p);
        store_reader_end(r);
    }
    if (rc == LS_OK)
        finish(out);
    free(p->seen);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static void kv_u(codec_writer *w, const char *k, uint64_t v)
{
    cw_key(w, k);
    cw_int(w, (int64_t)v);
}

static void kv_d(codec_writer *w, const char *k, double v)
{
    cw_key(w, k);
    cw_double(w, v);
}

static void write_cohort(const kpis_cohort *c, codec_writer *w)
{
    char month[16];
    snprintf(month, sizeof month, "%04d-%02d", c->year, c->month);
    cw_map(w);
    cw_key(w, "month");
    cw_str(w, month);
    cw_key(w, "from");
    cw_int(w, c->from_ms);
    cw_key(w, "to");
    cw_int(w, c->to_ms);
    kv_u(w, "customers", c->customers);
    kv_u(w, "retained", c->retained);
    kv_d(w, "retention", c->retention);
    kv_d(w, "churn", c->churn);
    kv_u(w, "repeat_buyers", c->repeat_buyers);
    kv_d(w, "repeat_rate", c->repeat_rate);
    cw_key(w, "returning");
    cw_array(w);
    for (int64_t i = 0; i < c->nmonths; i++)
        cw_int(w, (int64_t)c->returning[i]);
    cw_end(w);
    cw_key(w, "retention_curve");
    cw_array(w);
    for (int64_t i = 0; i < c->nmonths; i++)
        cw_double(w, ratio((double)c->returning[i], (double)c->customers));
    cw_end(w);
    cw_end(w);
}

void kpis_write_msgpack(const kpis_result *k, codec_writer *w)
{
    cw_key(w, "from");
    cw_int(w, k->from_ms);
    cw_key(w, "to");
    cw_int(w, k->to_ms);
    kv_u(w, "customers", k->customers);
    kv_u(w, "new_customers", k->new_customers);
    kv_u(w, "active", k->active);
    kv_u(w, "buyers", k->buyers);
    kv_u(w, "repeat_buyers", k->repeat_buyers);
    kv_u(w, "purchases", k->orders);
    kv_u(w, "orders", k->orders);
    kv_u(w, "purchase_lines", k->purchase_lines);
    kv_d(w, "revenue", k->gross_revenue);
    kv_d(w, "gross_revenue", k->gross_revenue);
    kv_d(w, "refunds", k->refunds);
    kv_u(w, "refund_events", k->refund_events);
    kv_d(w, "net_revenue", k->net_revenue);
    kv_d(w, "repeat_purchase_rate", k->repeat_purchase_rate);
    kv_d(w, "purchase_frequency", k->purchase_frequency);
    kv_d(w, "average_order_value", k->average_order_value);
    kv_d(w, "conversion_rate", k->conversion_rate);
    kv_u(w, "lifetime_buyers", k->lifetime_buyers);
    kv_u(w, "lifetime_repeat_buyers", k->lifetime_repeat_buyers);
    kv_d(w, "lifetime_repeat_rate", k->lifetime_repeat_rate);
    kv_u(w, "new_buyers", k->new_buyers);
    kv_u(w, "retained", k->retained);
    kv_d(w, "retention_rate", k->retention_rate);
    kv_d(w, "churn_rate", k->churn_rate);
    kv_u(w, "viewers", k->viewers);
    kv_u(w, "viewer_buyers", k->viewer_buyers);
    kv_u(w, "viewer_carters", k->viewer_carters);
    kv_u(w, "cart_adders", k->cart_adders);
    kv_u(w, "product_views", k->product_views);
    kv_u(w, "add_to_carts", k->add_to_carts);
    kv_d(w, "macro_conversion", k->macro_conversion);
    kv_d(w, "micro_conversion", k->micro_conversion);
    kv_d(w, "micro_conversion_events", k->micro_conversion_events);
    cw_key(w, "cohorts");
    cw_array(w);
    for (int64_t i = 0; i < k->ncohorts; i++)
        write_cohort(&k->cohorts[i], w);
    cw_end(w);
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

/* Curve columns the table shows (the JSON has them all). */
#define TABLE_CURVE 12

static void row_u(FILE *out, const char *name, uint64_t v, const char *note)
{
    fprintf(out, "  %-26s %12llu   %s\n", name, (unsigned long long)v, note);
}

static void row_pct(FILE *out, const char *name, double v, const char *note)
{
    fprintf(out, "  %-26s %11.1f%%   %s\n", name, 100.0 * v, note);
}

static void row_d(FILE *out, const char *name, double v, const char *note)
{
    fprintf(out, "  %-26s %12.2f   %s\n", name, v, note);
}

static void print_cohorts(FILE *out, const kpis_result *k)
{
    fprintf(out, "\nCohorts by month of first order (retained = ordered again in a later month;\n"
                 "+N = share of the cohort that ordered N months later)\n\n");
    fprintf(out, "  %-8s %10s %10s %10s %8s %10s ", "month", "customers", "retained", "retention", "churn", "repeat");
    for (int i = 1; i <= TABLE_CURVE && i < k->ncohorts; i++)
        fprintf(out, " %5s%-2d", "+", i);
    fputc('\n', out);
    for (int64_t i = 0; i < k->ncohorts; i++) {
        const kpis_cohort *c = &k->cohorts[i];
        fprintf(out, "  %04d-%02d  %10llu %10llu %9.1f%% %7.1f%% %9.1f%% ", c->year, c->month,
                (unsigned long long)c->customers, (unsigned long long)c->retained, 100.0 * c->retention,
                100.0 * c->churn, 100.0 * c->repeat_rate);
        for (int64_t m = 0; m < c->nmonths && m < TABLE_CURVE; m++)
            fprintf(out, " %6.1f%%", 100.0 * ratio((double)c->returning[m], (double)c->customers));
        fputc('\n', out);
    }
}

void kpis_print_table(FILE *out, const kpis_result *k)
{
    char from[TIMEFMT_ISO_BUFSZ], to[TIMEFMT_ISO_BUFSZ];
    timefmt_format_iso(k->from_ms, from, sizeof from);
    timefmt_format_iso(k->to_ms, to, sizeof to);
    fprintf(out, "Loyalty KPIs from %s to %s (events before the end only)\n\n", from, to);
    row_u(out, "customers", k->customers, "first seen before the end");
    row_u(out, "new customers", k->new_customers, "first seen in the period");
    row_u(out, "active", k->active, "any event in the period");
    row_u(out, "buyers", k->buyers, "at least one order in the period");
    row_u(out, "repeat buyers", k->repeat_buyers, "two orders or more in the period");
    row_u(out, "orders", k->orders, "placed in the period (lines of one order id are one order)");
    row_u(out, "purchase lines", k->purchase_lines, "purchase events in the period");
    row_d(out, "gross revenue", k->gross_revenue, "purchase value in the period");
    row_d(out, "refunds", k->refunds, "refund value in the period");
    row_d(out, "net revenue", k->net_revenue, "gross revenue - refunds");
    row_d(out, "average order value", k->average_order_value, "gross revenue / orders");
    row_d(out, "purchase frequency", k->purchase_frequency, "orders / buyers");
    row_pct(out, "repeat-purchase rate", k->repeat_purchase_rate, "repeat buyers / buyers, in the period");
    row_pct(out, "lifetime repeat rate", k->lifetime_repeat_rate, "2+ orders / 1+ orders, ever before the end");
    row_pct(out, "conversion", k->conversion_rate, "buyers / active customers");
    row_u(out, "product viewers", k->viewers, "customers with a product_view in the period");
    row_u(out, "cart adders", k->cart_adders, "customers with an add_to_cart in the period");
    row_pct(out, "macro conversion", k->macro_conversion, "orders / product viewers (may pass 100%)");
    row_pct(out, "micro conversion", k->micro_conversion, "cart adders / product viewers");
    row_pct(out, "micro conversion (events)", k->micro_conversion_events, "add_to_cart events / product_view events");
    row_u(out, "new buyers", k->new_buyers, "first order ever in the period");
    row_pct(out, "retention", k->retention_rate, "new buyers who ordered again in a later month");
    row_pct(out, "churn", k->churn_rate, "1 - retention");
    print_cohorts(out, k);
}
