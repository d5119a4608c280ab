/* shopgen_random.h -- random numbers for the synthetic shop
 * (shopgen_random.c): a small seedable generator (xoshiro256** seeded by
 * splitmix64) and the samplers the simulation draws from.  Internal to
 * shopgen.  The same seed gives the same draws on every platform. */
#ifndef LS_SHOPGEN_RANDOM_H
#define LS_SHOPGEN_RANDOM_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} sgr_rng;

/* The splitmix64 finaliser: a bijection on 64-bit words, so distinct
 * inputs give distinct outputs (used to derive ids and keys). */
uint64_t sgr_mix64(uint64_t z);
/* Advances *x by the golden-ratio step and returns it mixed. */
uint64_t sgr_splitmix64(uint64_t *x);

void sgr_rng_seed(sgr_rng *r, uint64_t seed);
uint64_t sgr_rng_next(sgr_rng *r);
/* Uniform in [0, 1). */
double sgr_unit(sgr_rng *r);
/* Uniform in (0, 1): safe for log(). */
double sgr_unit_open(sgr_rng *r);
/* Uniform integer in [0, n), n >= 1. */
uint32_t sgr_below(sgr_rng *r, uint32_t n);
/* Exponential with the given mean. */
double sgr_exponential(sgr_rng *r, double mean);
/* Standard normal. */
double sgr_normal(sgr_rng *r);
/* Gamma(shape, scale) and Beta(a, b). */
double sgr_gamma_draw(sgr_rng *r, double shape, double scale);
double sgr_beta_draw(sgr_rng *r, double a, double b);
/* Poisson(mean). */
uint32_t sgr_poisson(sgr_rng *r, double mean);
/* Index into a cumulative table of n weights (last entry = total). */
int sgr_pick_cdf(sgr_rng *r, const double *cdf, int n);

#endif
