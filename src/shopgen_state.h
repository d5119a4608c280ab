/* shopgen_state.h -- the state of one synthetic shop run, shared by
 * shopgen's modules: shopgen.c (the simulation of days, sessions and
 * orders), shopgen_persona.c (who the customers are) and shopgen_write.c
 * (the events as CSV or JSON Lines, and the ground truth).  Internal:
 * callers use shopgen.h. */
#ifndef LS_SHOPGEN_STATE_H
#define LS_SHOPGEN_STATE_H

#include <stdint.h>
#include <stdio.h>

#include "shopgen.h"
#include "shopgen_random.h"

#define DAY_MS INT64_C(86400000)
#define NEVER INT64_MAX
#define OUT_CAP (1u << 20)
#define NO_PRODUCT 0xFFFFu
#define PER_CATEGORY 200u            /* products per category */
#define NCATEGORIES 21               /* rows of sgp_categories */
#define NPRODUCTS (NCATEGORIES * (int)PER_CATEGORY)


enum {
    C_ALIVE = 1 << 0,      /* still buying (BG/NBD) */
    C_REGISTERED = 1 << 1, /* has a customer id in use */
    C_ANON = 1 << 2,       /* events currently go out under the anon id */
    C_ALIASED = 1 << 3,    /* was anonymous, then signed up */
    C_PHONE = 1 << 4,      /* gets SMS campaigns */
    C_SEEN = 1 << 5,       /* produced at least one event */
    C_UNHAPPY = 1 << 6,    /* refund or bad review: no referrals */
    C_PROFILED = 1 << 7    /* its profile event went out */
};

typedef struct {
    double lambda;          /* purchases per day while alive */
    double p_drop;          /* dropout probability after each purchase */
    int64_t next_buy;       /* ms since start of the next purchase, or NEVER */
    int64_t dropout;        /* ms since start of the purchase it dropped after;
                               -1 before the stream; NEVER while alive */
    int64_t arrival;        /* ms since start of the first visit */
    uint32_t sessions, orders;
    uint32_t before_cutoff, in_horizon;
    int32_t arrival_day;
    int32_t refund_day, review_day;   /* -1: none pending */
    uint32_t refund_order, refund_cents;
    uint16_t refund_product, review_product;
    uint16_t intent;        /* product of the next purchase */
    uint16_t birthday;      /* MM*100+DD, 0 when unknown */
    uint8_t segment, flags, review_bad;
    uint8_t prefs[3];       /* favourite categories, most liked first */
} customer;

_Static_assert(sizeof(customer) <= 96, "the per-customer state should stay small");

/* One event, numbers only; strings are made at write time. */
enum {
    F_ANON = 1 << 0,       /* customer field is the anon id */
    F_CAT_ONLY = 1 << 1,   /* product holds a category index (search) */
    F_PRICE = 1 << 2,
    F_VALUE = 1 << 3,
    F_DISC_SET = 1 << 4,   /* discounted field present */
    F_DISC = 1 << 5        /* ... and true */
};

typedef struct {
    uint32_t ms;        /* ms into the day */
    uint32_t cust;      /* customer index */
    uint32_t session;   /* customer's session number, 0 = none */
    uint32_t order;     /* customer's order number, 0 = none */
    uint32_t price;     /* cents, with F_PRICE */
    uint32_t value;     /* cents, with F_VALUE */
    uint16_t product;   /* catalogue index, NO_PRODUCT, or category (F_CAT_ONLY) */
    uint8_t type;       /* event_type */
    uint8_t flags;      /* F_* */
    uint8_t quantity;   /* 0 = absent */
    uint8_t rating;     /* 0 = absent */
    uint16_t birthday;  /* MM*100+DD, 0 = absent */
} rec;

_Static_assert(sizeof(rec) == 32, "an event record should stay 32 bytes");

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
    int err;                       /* 0, or the errno of the write that failed */
} outbuf;

typedef struct {
    const shopgen_config *cfg;
    int err;                       /* sticky LS_* status */
    sgr_rng r;                         /* the run's generator */
    uint64_t key_anon, key_session, key_order;
    char tag[8];                   /* event id prefix, hex of the seed */
    uint32_t price[NPRODUCTS];     /* cents */
    double category_cdf[NCATEGORIES];
    double hour_cdf[24];
    customer *cust;
    uint64_t ncust;
    rec *ev;                       /* today's events */
    size_t nev, cap;
    rec scratch;                   /* target of emits after a failed grow */
    uint64_t *keys, *tmp;          /* sort space, cap each */
    double *fade;                  /* [segment * days + age]: exp(-age / visit_fade) */
    int day;
    int64_t cutoff, horizon_end;   /* ms since start */
    outbuf out;
    shopgen_summary sum;
} gen;

#endif
