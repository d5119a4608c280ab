/* kpis.c -- loyalty KPIs over a period from one store snapshot (the
 * definitions are in kpis.h): one pass over the records, then ratios. */
#include "kpis.h"

#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define DAY_MS 86400000LL

typedef struct {
    kpis_result *k;
    int64_t month0;             /* year * 12 + month - 1 of the first cohort */
} pass;

static int64_t month_index(int64_t ms)
{
    int64_t y;
    int m, d;
    timefmt_civil(ms, &y, &m, &d);
    return y * 12 + (m - 1);
}

static int64_t month_start_ms(int64_t index)
{
    int64_t y = index / 12;
    int m = (int)(index % 12) + 1;
    return timefmt_days_from_civil(y, m, 1) * DAY_MS;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0.0;
}

/* A buyer still active at `to` (see kpis.h). */
static int retained(const ls_features *f, int64_t to_ms)
{
    return f->last_seen_ms >= f->first_purchase_ms + DAY_MS && f->last_seen_ms >= to_ms - KPIS_ACTIVE_DAYS * DAY_MS;
}

static int visit(void *arg, const char *id, size_t len, const ls_features *f)
{
    pass *p = arg;
    kpis_result *k = p->k;
    (void)id;
    (void)len;
    if (f->first_seen_ms >= k->to_ms)
        return 0; /* not a customer yet at `to` */
    k->customers++;
    if (f->first_seen_ms >= k->from_ms)
        k->new_customers++;
    if (f->last_seen_ms >= k->from_ms && f->last_seen_ms < k->to_ms)
        k->active++;
    uint32_t purchases = f->count[EV_PURCHASE], views = f->count[EV_PRODUCT_VIEW];
    int buyer = purchases > 0 && f->first_purchase_ms > 0 && f->first_purchase_ms < k->to_ms;
    if (views > 0) {
        k->viewers++;
        k->viewer_buyers += buyer;
        k->viewer_carters += f->count[EV_ADD_TO_CART] > 0;
    }
    k->product_views += views;
    k->add_to_carts += f->count[EV_ADD_TO_CART];
    if (!buyer)
        return 0;
    int kept = retained(f, k->to_ms), repeat = purchases >= 2;
    k->buyers++;
    k->repeat_buyers += repeat;
    k->purchases += purchases;
    k->revenue += f->spend;
    k->retained += kept;
    if (f->first_purchase_ms >= k->from_ms) {
        kpis_cohort *c = &k->cohorts[month_index(f->first_purchase_ms) - p->month0];
        c->customers++;
        c->retained += kept;
        c->repeat_buyers += repeat;
    }
    return 0;
}

int kpis_compute(store_reader *r, int64_t from_ms, int64_t to_ms, kpis_result *out)
{
    out->from_ms = from_ms;
    out->to_ms = to_ms;
    if (from_ms >= to_ms || from_ms < TIMEFMT_MIN_MS || to_ms > TIMEFMT_MAX_MS)
        return LS_EINVAL;
    int64_t m0 = month_index(from_ms), m1 = month_index(to_ms - 1);
    if (m1 - m0 + 1 > KPIS_MAX_COHORTS)
        return LS_EINVAL;
    memset(out, 0, sizeof *out);
    out->from_ms = from_ms;
    out->to_ms = to_ms;
    out->ncohorts = (int)(m1 - m0 + 1);
    for (int i = 0; i < out->ncohorts; i++) {
        kpis_cohort *c = &out->cohorts[i];
        c->year = (int)((m0 + i) / 12);
        c->month = (int)((m0 + i) % 12) + 1;
        int64_t a = month_start_ms(m0 + i), b = month_start_ms(m0 + i + 1);
        c->from_ms = a > from_ms ? a : from_ms;
        c->to_ms = b < to_ms ? b : to_ms;
    }
    pass p = {out, m0};
    int rc = store_reader_begin(r);
    if (rc != LS_OK)
        return rc;
    rc = store_reader_scan(r, visit, &p);
    store_reader_end(r);
    if (rc != LS_OK)
        return rc;
    out->repeat_purchase_rate = ratio((double)out->repeat_buyers, (double)out->buyers);
    out->purchase_frequency = ratio((double)out->purchases, (double)out->buyers);
    out->average_order_value = ratio(out->revenue, (double)out->purchases);
    out->retention_rate = ratio((double)out->retained, (double)out->buyers);
    out->churn_rate = out->buyers ? 1.0 - out->retention_rate : 0.0;
    out->macro_conversion = ratio((double)out->viewer_buyers, (double)out->viewers);
    out->micro_conversion = ratio((double)out->viewer_carters, (double)out->viewers);
    out->micro_conversion_events = ratio((double)out->add_to_carts, (double)out->product_views);
    for (int i = 0; i < out->ncohorts; i++) {
        kpis_cohort *c = &out->cohorts[i];
        c->retention = ratio((double)c->retained, (double)c->customers);
        c->churn = c->customers ? 1.0 - c->retention : 0.0;
        c->repeat_rate = ratio((double)c->repeat_buyers, (double)c->customers);
    }
    return LS_OK;
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
    kv_u(w, "purchases", k->purchases);
    kv_d(w, "revenue", k->revenue);
    kv_d(w, "repeat_purchase_rate", k->repeat_purchase_rate);
    kv_d(w, "purchase_frequency", k->purchase_frequency);
    kv_d(w, "average_order_value", k->average_order_value);
    kv_u(w, "retained", k->retained);
    kv_d(w, "retention_rate", k->retention_rate);
    kv_d(w, "churn_rate", k->churn_rate);
    kv_u(w, "active_days", KPIS_ACTIVE_DAYS);
    kv_u(w, "viewers", k->viewers);
    kv_u(w, "viewer_buyers", k->viewer_buyers);
    kv_u(w, "viewer_carters", k->viewer_carters);
    kv_u(w, "product_views", k->product_views);
    kv_u(w, "add_to_carts", k->add_to_carts);
    kv_d(w, "macro_conversion", k->macro_conversion);
    kv_d(w, "micro_conversion", k->micro_conversion);
    kv_d(w, "micro_conversion_events", k->micro_conversion_events);
    cw_key(w, "cohorts");
    cw_array(w);
    for (int i = 0; i < k->ncohorts; i++) {
        const kpis_cohort *c = &k->cohorts[i];
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
        cw_end(w);
    }
    cw_end(w);
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

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

void kpis_print_table(FILE *out, const kpis_result *k)
{
    char from[TIMEFMT_ISO_BUFSZ], to[TIMEFMT_ISO_BUFSZ];
    timefmt_format_iso(k->from_ms, from, sizeof from);
    timefmt_format_iso(k->to_ms, to, sizeof to);
    fprintf(out, "Loyalty KPIs from %s to %s\n\n", from, to);
    row_u(out, "customers", k->customers, "records first seen before the end");
    row_u(out, "new customers", k->new_customers, "first seen in the period");
    row_u(out, "active", k->active, "last seen in the period");
    row_u(out, "buyers", k->buyers, "at least one purchase");
    row_u(out, "repeat buyers", k->repeat_buyers, "two purchases or more");
    row_u(out, "purchases", k->purchases, "lifetime, of the buyers");
    row_d(out, "revenue", k->revenue, "gross spend of the buyers");
    row_pct(out, "repeat-purchase rate", k->repeat_purchase_rate, "repeat buyers / buyers");
    row_d(out, "purchase frequency", k->purchase_frequency, "purchases / buyers");
    row_d(out, "average order value", k->average_order_value, "revenue / purchases");
    row_pct(out, "retention", k->retention_rate, "buyers who came back and were seen in the last 90 days");
    row_pct(out, "churn", k->churn_rate, "1 - retention");
    row_u(out, "product viewers", k->viewers, "customers with a product_view");
    row_pct(out, "macro conversion", k->macro_conversion, "viewers who bought / viewers");
    row_pct(out, "micro conversion", k->micro_conversion, "viewers who added to cart / viewers");
    row_pct(out, "micro conversion (events)", k->micro_conversion_events, "add_to_cart events / product_view events");
    fprintf(out, "\nCohorts by month of first purchase (retention = still active at the end)\n\n");
    fprintf(out, "  %-8s %10s %10s %10s %8s %10s\n", "month", "customers", "retained", "retention", "churn", "repeat");
    for (int i = 0; i < k->ncohorts; i++) {
        const kpis_cohort *c = &k->cohorts[i];
        fprintf(out, "  %04d-%02d  %10llu %10llu %9.1f%% %7.1f%% %9.1f%%\n", c->year, c->month,
                (unsigned long long)c->customers, (unsigned long long)c->retained, 100.0 * c->retention,
                100.0 * c->churn, 100.0 * c->repeat_rate);
    }
}
