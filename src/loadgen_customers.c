/* loadgen_customers.c -- the synthetic customer base of `leadscore bench`
 * (see loadgen_customers.h): a Zipf
 * sampler over customer ranks, the ids "cust-<k>" and the events a
 * benchmark preloads for each customer.  Nothing here touches sockets. */
#include "loadgen_customers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"

#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ */
/* Random numbers and the Zipf sampler                                 */
/* ------------------------------------------------------------------ */

uint64_t loadgen_rng_below(loadgen_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)sgr_rng_next(r) * n) >> 64);
}

/* log1p(x)/x and expm1(x)/x, with their limits near 0. */
static double helper1(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

/* H(x) = integral of x^-s (up to a constant), its inverse, and h(x) = x^-s. */
static double zipf_hint(double s, double x)
{
    double lx = log(x);
    return helper2((1 - s) * lx) * lx;
}

static double zipf_hint_inverse(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1)
        t = -1;
    return exp(helper1(t) * x);
}

static double zipf_h(double s, double x)
{
    return exp(-s * log(x));
}

int loadgen_zipf_init(loadgen_zipf *z, uint64_t n, double s)
{
    if (n < 1 || !(s > 0) || !isfinite(s))
        return LS_EINVAL;
    z->n = n;
    z->s = s;
    z->h_x1 = zipf_hint(s, 1.5) - 1;
    z->h_n = zipf_hint(s, (double)n + 0.5);
    z->threshold = 2 - zipf_hint_inverse(s, zipf_hint(s, 2.5) - zipf_h(s, 2));
    return LS_OK;
}

uint64_t loadgen_zipf_next(const loadgen_zipf *z, loadgen_rng *r)
{
    for (;;) {
        double u = z->h_n + sgr_unit(r) * (z->h_x1 - z->h_n);
        double x = zipf_hint_inverse(z->s, u);
        double kd = floor(x + 0.5);
        uint64_t k = kd < 1 ? 1 : kd > (double)z->n ? z->n : (uint64_t)kd;
        if ((double)k - x <= z->threshold || u >= zipf_hint(z->s, (double)k + 0.5) - zipf_h(z->s, (double)k))
            return k;
    }
}

/* ------------------------------------------------------------------ */
/* The customer base                                                   */
/* ------------------------------------------------------------------ */

size_t loadgen_customer_id(uint64_t k, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "cust-%llu", (unsigned long long)k);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t loadgen_event_id(loadgen_event_ids shape, uint32_t nonce, int client, uint64_t seq, char *buf, size_t cap)
{
    uint64_t unique = ((uint64_t)(client & 0xfff) << 40) | (seq & UINT64_C(0xffffffffff));
    int n;
    if (shape == LOADGEN_IDS_RANDOM) {
        uint64_t x = unique ^ ((uint64_t)nonce << 52 | (uint64_t)nonce << 20), hi = sgr_splitmix64(&x);
        uint64_t y = hi, lo = sgr_splitmix64(&y);
        n = snprintf(buf, cap, "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
                     (unsigned long long)(hi >> 16 & 0xffff), (unsigned long long)(hi & 0xffff),
                     (unsigned long long)(lo >> 48), (unsigned long long)(lo & UINT64_C(0xffffffffffff)));
    } else {
        n = snprintf(buf, cap, "%08x-%03x-%010llx", (unsigned)nonce, (unsigned)(unique >> 40),
                     (unsigned long long)(unique & UINT64_C(0xffffffffff)));
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

int loadgen_customers_in_key_order(uint64_t n, int (*fn)(void *arg, uint64_t k), void *arg)
{
    uint64_t k = 1;
    for (uint64_t i = 0; i < n; i++) {
        int rc = fn(arg, k);
        if (rc)
            return rc;
        if (k <= n / 10) {
            k *= 10;
        } else {
            if (k >= n)
                k /= 10;
            k++;
            while (k % 10 == 0)
                k /= 10;
        }
    }
    return 0;
}

const char *const loadgen_categories[LOADGEN_N_CATEGORIES] = {
    "shoes/running", "shoes/casual", "apparel/jackets", "apparel/shirts", "electronics/audio",
    "electronics/phones", "home/kitchen", "home/garden", "beauty/skin", "sports/cycling",
    "toys/lego", "books/fiction"};

static ls_str lit(const char *s)
{
    ls_str v = {s, strlen(s)};
    return v;
}

/* One synthetic event of customer record building. */
static void synthetic_event(ls_event *ev, loadgen_rng *r, event_type type, int64_t ts, int cat,
                            const ls_str *customer, const ls_str *session)
{
    event_init(ev);
    ev->type = type;
    ev->ts_ms = ts;
    ev->has = EVF_TS;
    ev->customer = *customer;
    ev->session = *session;
    ev->category = lit(loadgen_categories[cat]);
    if (type == EV_PRODUCT_VIEW || type == EV_ADD_TO_CART || type == EV_PURCHASE) {
        ev->price = 5.0 + (double)loadgen_rng_below(r, 19500) / 100.0;
        ev->has |= EVF_PRICE;
        ev->value = ev->price;
    }
    if (type == EV_REVIEW) {
        ev->rating = 1 + (int)loadgen_rng_below(r, 5);
        ev->has |= EVF_RATING;
    }
}

int loadgen_customer_events(uint64_t k, uint64_t seed, int64_t now_ms, loadgen_event_fn fn, void *arg)
{
    static const event_type browse[] = {EV_PAGE_VIEW, EV_PRODUCT_VIEW, EV_PRODUCT_VIEW, EV_SEARCH,
                                        EV_EMAIL_OPEN, EV_ADD_TO_CART};
    loadgen_rng r;
    char id[32], sess[32];
    ls_event ev;
    sgr_rng_seed(&r, seed * UINT64_C(0x9e3779b97f4a7c15) ^ k);
    ls_str customer = {id, loadgen_customer_id(k, id, sizeof id)};
    int n = 2 + (int)loadgen_rng_below(&r, 5);
    int64_t t = now_ms - (int64_t)(1 + loadgen_rng_below(&r, 90)) * DAY_MS;
    int cat = (int)loadgen_rng_below(&r, LOADGEN_N_CATEGORIES);
    snprintf(sess, sizeof sess, "s-%016llx", (unsigned long long)sgr_rng_next(&r));
    ls_str session = lit(sess);
    for (int i = 0; i < n; i++) {
        synthetic_event(&ev, &r, browse[loadgen_rng_below(&r, sizeof browse / sizeof browse[0])], t, cat,
                        &customer, &session);
        fn(arg, &ev);
        t += (int64_t)loadgen_rng_below(&r, (uint64_t)(now_ms - t) / 2 + 1);
    }
    int roll = (int)loadgen_rng_below(&r, 100);
    if (roll < 25) { /* a buyer, sometimes with a review */
        synthetic_event(&ev, &r, EV_PURCHASE, t, cat, &customer, &session);
        fn(arg, &ev);
        n++;
        if (roll < 8) {
            synthetic_event(&ev, &r, EV_REVIEW, t + 3 * DAY_MS < now_ms ? t + 3 * DAY_MS : now_ms, cat,
                            &customer, &session);
            fn(arg, &ev);
            n++;
        }
    }
    return n;
}

typedef struct {
    ls_features *f;
    const feature_decay *decay;
} fold_into;

static int fold_event(void *arg, const ls_event *ev)
{
    fold_into *fi = arg;
    feature_apply(fi->f, ev, fi->decay);
    return 0;
}

void loadgen_customer_record(uint64_t k, uint64_t seed, int64_t now_ms, const feature_decay *decay,
                             ls_features *out, int *nevents)
{
    fold_into fi = {out, decay};
    feature_init(out);
    int n = loadgen_customer_events(k, seed, now_ms, fold_event, &fi);
    if (nevents)
        *nevents = n;
}
