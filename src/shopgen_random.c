/* shopgen_random.c -- the random numbers of the synthetic shop (see
 * shopgen_random.h): xoshiro256** seeded by splitmix64, and the samplers
 * the simulation draws its customers and days from (uniform, exponential,
 * normal, gamma, beta, Poisson, a weighted pick).  Every draw is a
 * function of the generator state alone, so a seed fixes the stream. */
#include "shopgen_random.h"

#include <math.h>

/* The splitmix64 finaliser: a bijection on 64-bit words (each step is
 * invertible), so distinct inputs give distinct ids. */
uint64_t sgr_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

uint64_t sgr_splitmix64(uint64_t *x)
{
    return sgr_mix64(*x += UINT64_C(0x9E3779B97F4A7C15));
}

void sgr_rng_seed(sgr_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = sgr_splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sgr_rng_next(sgr_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1). */
double sgr_unit(sgr_rng *r)
{
    return (double)(sgr_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1): safe for log(). */
double sgr_unit_open(sgr_rng *r)
{
    return ((double)(sgr_rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n >= 1, by multiply-shift: each value's
 * probability is off by at most n / 2^32 relative, harmless here. */
uint32_t sgr_below(sgr_rng *r, uint32_t n)
{
    return (uint32_t)(((sgr_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

double sgr_exponential(sgr_rng *r, double mean)
{
    return -mean * log(sgr_unit_open(r));
}

/* Standard normal, Box-Muller (one of the pair is dropped: no state). */
double sgr_normal(sgr_rng *r)
{
    double u1 = sgr_unit_open(r), u2 = sgr_unit(r);

    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(shape, scale): Marsaglia & Tsang (2000); shape < 1 by boosting to
 * shape + 1 and multiplying by U^(1/shape). */
double sgr_gamma_draw(sgr_rng *r, double shape, double scale)
{
    if (shape < 1.0) {
        double g = sgr_gamma_draw(r, shape + 1.0, scale); /* first: the draw order is fixed */
        return g * pow(sgr_unit_open(r), 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = sgr_normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = sgr_unit_open(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * scale;
    }
}

double sgr_beta_draw(sgr_rng *r, double a, double b)
{
    double x = sgr_gamma_draw(r, a, 1.0), y = sgr_gamma_draw(r, b, 1.0);

    return x / (x + y);
}

/* Poisson(mean): Knuth's product of uniforms below 30, a rounded normal
 * above (the rates here are far below 30). */
uint32_t sgr_poisson(sgr_rng *r, double mean)
{
    if (mean <= 0.0)
        return 0;
    if (mean >= 30.0) {
        double n = floor(mean + sqrt(mean) * sgr_normal(r) + 0.5);
        return n < 0.0 ? 0 : (uint32_t)n;
    }
    double prod = sgr_unit(r);
    if (prod <= 1.0 - mean) /* exp(-mean) >= 1 - mean: surely none, no exp() */
        return 0;
    double limit = exp(-mean);
    uint32_t k = 0;
    while (prod > limit) {
        k++;
        prod *= sgr_unit(r);
    }
    return k;
}

/* Index into a cumulative table of n weights (last entry = total). */
int sgr_pick_cdf(sgr_rng *r, const double *cdf, int n)
{
    double u = sgr_unit(r) * cdf[n - 1];
    int i = 0;

    while (i < n - 1 && u >= cdf[i])
        i++;
    return i;
}
