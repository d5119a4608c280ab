/* shopgen_persona.c -- who shops in the synthetic shop (see
 * shopgen_persona.h): the catalogue (categories, their median prices and
 * popularity), the five personas and their parameters, the diurnal
 * profile, and the drawing of the catalogue's prices and of each
 * customer's traits from its own generator. */
#include "shopgen_persona.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The catalogue and the personas                                      */
/* ------------------------------------------------------------------ */

const sgp_category sgp_categories[] = {
    {"shoes/running", 95, 8},         {"shoes/trail", 110, 4},
    {"shoes/casual", 70, 7},          {"shoes/kids", 45, 3},
    {"apparel/jackets", 120, 5},      {"apparel/shirts", 30, 8},
    {"apparel/pants", 55, 5},         {"apparel/socks", 12, 4},
    {"electronics/audio", 90, 6},     {"electronics/phones", 450, 3},
    {"electronics/accessories", 25, 6}, {"electronics/wearables", 180, 3},
    {"home/kitchen", 40, 6},          {"home/furniture", 220, 2},
    {"home/decor", 30, 4},            {"home/bedding", 60, 3},
    {"sports/fitness", 50, 5},        {"sports/cycling", 150, 2},
    {"beauty/skincare", 28, 5},       {"books/fiction", 15, 4},
    {"toys/games", 35, 4},
};

_Static_assert(sizeof sgp_categories / sizeof sgp_categories[0] == NCATEGORIES, "NCATEGORIES counts the catalogue");

/* Indexed by shopgen_segment. */
const sgp_persona sgp_personas[SHOPGEN_NSEGMENTS] = {
    {"browser", 0.002, 1.0, 0.30, 0.004, 4, 0.15, 0.15, 1, 0.10, 1.0, 0.05, 0.06, 0.08},
    {"occasional", 1.0, 1.0, 0.10, 0.020, 20, 0.12, 0.12, 1, 0.20, 1.0, 0.10, 0.05, 0.18},
    {"regular", 2.5, 0.5, 0.15, 0.060, 30, 0.10, 0.10, 1, 0.30, 0.7, 0.20, 0.06, 0.30},
    {"big_spender", 1.5, 0.7, 0.12, 0.040, 30, 0.08, 0.08, 3, 0.50, 1.5, 0.15, 0.06, 0.25},
    {"sale_hunter", 1.0, 1.0, 0.25, 0.080, 30, 0.90, 0.55, 1, 0.30, 1.3, 0.10, 0.10, 0.40},
};

/* Share of sessions starting in each UTC hour (evening peak). */
static const double hour_weight[24] = {2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6,
                                       7, 6, 6, 6, 6, 7, 8, 10, 11, 10, 7, 4};

static const uint8_t days_in_month[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

const double sgp_rating_happy[5] = {0.03, 0.07, 0.18, 0.50, 1.00};  /* cumulative */
const double sgp_rating_sad[5] = {0.35, 0.65, 0.85, 0.95, 1.00};

/* ------------------------------------------------------------------ */
/* Drawing the catalogue and the customers                             */
/* ------------------------------------------------------------------ */

/* Shop prices: x.99 above 10, whole cents below. */
static uint32_t shop_price(double units)
{
    if (units < 1.0)
        units = 1.0;
    if (units > 20000.0)
        units = 20000.0;
    if (units < 10.0)
        return (uint32_t)(units * 100.0 + 0.5);
    return (uint32_t)ceil(units) * 100u - 1u;
}

void sgp_build_catalogue(gen *g)
{
    sgr_rng r;
    double total = 0.0, hours = 0.0;

    sgr_rng_seed(&r, g->cfg->seed ^ UINT64_C(0x6361746c6f677565));
    for (int c = 0; c < NCATEGORIES; c++) {
        total += sgp_categories[c].popularity;
        g->category_cdf[c] = total;
        for (uint32_t j = 0; j < PER_CATEGORY; j++) {
            double units = sgp_categories[c].median_price * exp(0.45 * sgr_normal(&r));
            g->price[c * (int)PER_CATEGORY + (int)j] = shop_price(units);
        }
    }
    for (int h = 0; h < 24; h++) {
        hours += hour_weight[h];
        g->hour_cdf[h] = hours;
    }
}

static int draw_segment(sgr_rng *r, const shopgen_config *cfg)
{
    double u = sgr_unit(r);
    const double shares[SHOPGEN_NSEGMENTS] = {0.0, cfg->share_occasional, cfg->share_regular,
                                              cfg->share_big_spender, cfg->share_sale_hunter};

    for (int s = 1; s < SHOPGEN_NSEGMENTS; s++) {
        if (u < shares[s])
            return s;
        u -= shares[s];
    }
    return SHOPGEN_BROWSER;
}

static uint16_t draw_birthday(sgr_rng *r)
{
    uint32_t m = sgr_below(r, 12);

    return (uint16_t)((m + 1) * 100 + 1 + sgr_below(r, days_in_month[m]));
}

/* Draws customer idx's traits from its own generator. */
void sgp_customer_init(gen *g, uint32_t idx)
{
    const shopgen_config *cfg = g->cfg;
    customer *c = &g->cust[idx];
    sgr_rng r;

    sgr_rng_seed(&r, sgr_mix64(cfg->seed) ^ sgr_mix64((uint64_t)idx + UINT64_C(0x5eed)));
    memset(c, 0, sizeof *c);
    c->segment = (uint8_t)draw_segment(&r, cfg);
    const sgp_persona *ps = &sgp_personas[c->segment];
    c->lambda = sgr_gamma_draw(&r, cfg->r, 1.0 / cfg->alpha) * ps->lambda_mult;
    c->p_drop = fmin(0.95, sgr_beta_draw(&r, cfg->a, cfg->b) * ps->p_mult);
    c->next_buy = NEVER;
    c->dropout = NEVER;
    c->refund_day = -1;
    c->review_day = -1;
    c->intent = NO_PRODUCT;
    c->flags = C_ALIVE;
    if (sgr_unit(&r) < cfg->existing_share) {
        c->flags |= C_REGISTERED;
        if (sgr_unit(&r) < 0.3) { /* lapsed before the stream began */
            c->flags &= (uint8_t)~C_ALIVE;
            c->dropout = -1;
        }
    } else {
        c->arrival_day = (int32_t)sgr_below(&r, (uint32_t)cfg->days);
        if (sgr_unit(&r) < cfg->anon_share)
            c->flags |= C_ANON;
    }
    for (int i = 0; i < 3; i++)
        c->prefs[i] = (uint8_t)sgr_pick_cdf(&r, g->category_cdf, NCATEGORIES);
    if (sgr_unit(&r) < 0.35)
        c->birthday = draw_birthday(&r);
    if (sgr_unit(&r) < 0.3)
        c->flags |= C_PHONE;
}
