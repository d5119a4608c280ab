/* loadgen_customers.h -- the synthetic customer base of `leadscore bench`
 * (loadgen_customers.c): random numbers, a Zipf sampler over customer
 * ranks, the ids "cust-<k>" (the ones `leadscore gen` writes) and the
 * events and record a benchmark preloads for each customer.  Pure
 * computation: the same seed gives the same customers. */
#ifndef LS_LOADGEN_CUSTOMERS_H
#define LS_LOADGEN_CUSTOMERS_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "feature.h"
#include "shopgen_random.h"

/* The generator is the synthetic shop's (shopgen_random.h: xoshiro256**
 * seeded by splitmix64; sgr_rng_seed, sgr_rng_next, sgr_unit). */
typedef sgr_rng loadgen_rng;

/* Uniform integer in [0, n), n > 0, without modulo bias worth noting (64
 * bits, where sgr_below takes 32). */
uint64_t loadgen_rng_below(loadgen_rng *r, uint64_t n);

/* Zipf over ranks 1..n with exponent s > 0: P(k) = k^-s / H(n, s).
 * Rejection-inversion sampling (Hormann and Derflinger, 1996): O(1)
 * memory and time per draw for any n, so 10 million keys cost nothing. */
typedef struct {
    uint64_t n;
    double s;
    double h_x1, h_n, threshold;
} loadgen_zipf;

/* 0, or LS_EINVAL unless n >= 1 and s > 0 (and finite). */
int loadgen_zipf_init(loadgen_zipf *z, uint64_t n, double s);
/* A rank in 1..n; rank 1 is the most frequent. */
uint64_t loadgen_zipf_next(const loadgen_zipf *z, loadgen_rng *r);

/* Writes customer k's id ("cust-<k>") into buf (cap >= 32 is enough);
 * returns its length. */
size_t loadgen_customer_id(uint64_t k, char *buf, size_t cap);

/* The shape of the event ids the write workloads send: sequential (each
 * client counts up from its own prefix, so a run's ids land on a few
 * B-tree leaves of the server's window table) or random (UUID-shaped text
 * of 128 random-looking bits, as storefronts that make a UUID v4 per
 * event send: every id lands on its own leaf). */
typedef enum { LOADGEN_IDS_SEQUENTIAL, LOADGEN_IDS_RANDOM } loadgen_event_ids;

/* Event id number seq (< 2^40) of client (< 4096) in the run of nonce,
 * in the given shape, into buf; its length.  Unique within a run in both
 * shapes: the random one is a bijection of (client, seq) for each nonce. */
size_t loadgen_event_id(loadgen_event_ids shape, uint32_t nonce, int client, uint64_t seq, char *buf, size_t cap);

/* The synthetic events preloaded for customer k: two to eight events
 * (views, searches, sometimes a cart, a purchase, a review) over the 90
 * days before now_ms, the same for the same (seed, k), handed to fn one by
 * one in time order (strings valid during the call).  Returns how many. */
typedef int (*loadgen_event_fn)(void *arg, const ls_event *ev);
int loadgen_customer_events(uint64_t k, uint64_t seed, int64_t now_ms, loadgen_event_fn fn, void *arg);

/* Those events folded into one record with feature_apply.  *nevents (if
 * not NULL) says how many. */
void loadgen_customer_record(uint64_t k, uint64_t seed, int64_t now_ms, const feature_decay *decay,
                             ls_features *out, int *nevents);

/* Calls fn(arg, k) for k = 1..n in the byte order of the ids "cust-<k>"
 * (1, 10, 100, 1000, ..., 101, ..., 2, 20, ...), so that a preload puts
 * keys into LMDB in sorted order.  Stops early, returning fn's value,
 * when fn returns non-zero. */
int loadgen_customers_in_key_order(uint64_t n, int (*fn)(void *arg, uint64_t k), void *arg);

/* The product categories synthetic events and track requests use. */
#define LOADGEN_N_CATEGORIES 12
extern const char *const loadgen_categories[LOADGEN_N_CATEGORIES];

#endif
