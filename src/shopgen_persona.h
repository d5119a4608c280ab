/* shopgen_persona.h -- the catalogue and the customer personas of the
 * synthetic shop, and the drawing of customers (shopgen_persona.c).
 * Internal to shopgen. */
#ifndef LS_SHOPGEN_PERSONA_H
#define LS_SHOPGEN_PERSONA_H

#include <stdint.h>

#include "shopgen_state.h"

typedef struct {
    const char *name;
    double median_price;  /* currency units */
    double popularity;    /* relative share of interest */
} sgp_category;

typedef struct {
    const char *name;
    double lambda_mult;    /* scales the drawn purchase rate */
    double p_mult;         /* scales the drawn dropout probability */
    double visit0;         /* browsing sessions/day right after arrival */
    double visit_floor;    /* ... and in the long run */
    double visit_fade;     /* days over which visit0 fades to the floor */
    double disc_buy;       /* P(an order is discounted) */
    double disc_view;      /* P(a viewed product is on sale) */
    int price_draws;       /* product picks per choice; the dearest wins */
    double extra_line;     /* P(one more order line), repeatedly */
    double refund_mult;    /* scales config.refund_rate */
    double review;         /* P(an order gets a review) */
    double cart;           /* P(add to cart) in a plain browsing session */
    double email_open;     /* P(opening a campaign mail) */
} sgp_persona;

/* The catalogue: NCATEGORIES categories of PER_CATEGORY products each. */
extern const sgp_category sgp_categories[NCATEGORIES];
/* Indexed by shopgen_segment. */
extern const sgp_persona sgp_personas[SHOPGEN_NSEGMENTS];
/* Cumulative review ratings 1..5 of happy and of unhappy customers. */
extern const double sgp_rating_happy[5];
extern const double sgp_rating_sad[5];

/* The category a catalogue index belongs to. */
static inline int sgp_category_of(uint16_t product)
{
    return product / (int)PER_CATEGORY;
}

/* Draws the catalogue's prices (from the seed alone) into g->price and
 * fills g->category_cdf and g->hour_cdf. */
void sgp_build_catalogue(gen *g);
/* Draws customer idx's persona and traits into g->cust[idx] from its own
 * generator, seeded by (seed, idx): independent of the other customers. */
void sgp_customer_init(gen *g, uint32_t idx);

#endif
