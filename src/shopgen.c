/* shopgen.c -- the synthetic shop of shopgen.h.
 *
 * How a run goes.  Customers are drawn once, each from its own generator
 * seeded by (seed, index), so a customer's persona, rates and tastes do
 * not depend on the other customers or on the stream length.  Then the days are simulated in order with one run
 * generator: for each customer that has arrived, first the follow-ups due
 * that day (refund, review), then an agenda of the day's sessions (the
 * first visit, campaign clicks, purchases falling due, browsing and intent
 * sessions) is played in time order.  Sessions of one customer never
 * overlap, which keeps "anonymous before the signup, customer id after"
 * true in time and not just in generation order.  The day's events go to
 * a buffer of 32-byte records holding numbers only (customer index,
 * session and order numbers, catalogue index, cents); after the day they
 * are radix-sorted by time (stable, so same-ms events keep their order)
 * and formatted into a 1 MiB text buffer by hand.  Ids are derived from
 * the numbers at write time: the hex ids go through a keyed bijective
 * mixer, so they look random but can never collide.
 *
 * Determinism rule: no expression holds two calls that draw from the same
 * generator (C leaves the order of operands and arguments unspecified, and
 * gcc and clang do pick different orders); each draw gets its own
 * statement or initialiser.
 *
 * Prefixes: `shopgen_` public; static helpers unprefixed, grouped by the
 * banners below.  Errors during the simulation are sticky in gen.err (an
 * emit that cannot grow the buffer writes to a scratch record), so the
 * simulation code needs no error plumbing; the day loop checks once per
 * customer. */
#include "shopgen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define DAY_MS INT64_C(86400000)
#define NEVER INT64_MAX
#define SESSION_MAX_MS 2700000u      /* a session lasts at most 45 minutes */
#define OUT_CAP (1u << 20)
#define LINE_MAX_BYTES 512           /* longest formatted event, generously */
#define AGENDA_CAP 24
#define MAX_LINES 5                  /* order lines */
#define PURCHASES_PER_DAY 4
#define NO_PRODUCT 0xFFFFu
#define PER_CATEGORY 200u            /* products per category */

/* ------------------------------------------------------------------ */
/* Random numbers: xoshiro256** seeded by splitmix64, and samplers     */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t s[4];
} rng;

/* The splitmix64 finaliser: a bijection on 64-bit words (each step is
 * invertible), so distinct inputs give distinct ids. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    return mix64(*x += UINT64_C(0x9E3779B97F4A7C15));
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
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
static double unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in (0, 1): safe for log(). */
static double unit_open(rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n >= 1, by multiply-shift: each value's
 * probability is off by at most n / 2^32 relative, harmless here. */
static uint32_t below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double exponential(rng *r, double mean)
{
    return -mean * log(unit_open(r));
}

/* Standard normal, Box-Muller (one of the pair is dropped: no state). */
static double normal(rng *r)
{
    double u1 = unit_open(r), u2 = unit(r);

    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Gamma(shape, scale): Marsaglia & Tsang (2000); shape < 1 by boosting to
 * shape + 1 and multiplying by U^(1/shape). */
static double gamma_draw(rng *r, double shape, double scale)
{
    if (shape < 1.0) {
        double g = gamma_draw(r, shape + 1.0, scale); /* first: the draw order is fixed */
        return g * pow(unit_open(r), 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = normal(r), v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = unit_open(r);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * scale;
    }
}

static double beta_draw(rng *r, double a, double b)
{
    double x = gamma_draw(r, a, 1.0), y = gamma_draw(r, b, 1.0);

    return x / (x + y);
}

/* Poisson(mean): Knuth's product of uniforms below 30, a rounded normal
 * above (the rates here are far below 30). */
static uint32_t poisson(rng *r, double mean)
{
    if (mean <= 0.0)
        return 0;
    if (mean >= 30.0) {
        double n = floor(mean + sqrt(mean) * normal(r) + 0.5);
        return n < 0.0 ? 0 : (uint32_t)n;
    }
    double prod = unit(r);
    if (prod <= 1.0 - mean) /* exp(-mean) >= 1 - mean: surely none, no exp() */
        return 0;
    double limit = exp(-mean);
    uint32_t k = 0;
    while (prod > limit) {
        k++;
        prod *= unit(r);
    }
    return k;
}

/* Index into a cumulative table of n weights (last entry = total). */
static int pick_cdf(rng *r, const double *cdf, int n)
{
    double u = unit(r) * cdf[n - 1];
    int i = 0;

    while (i < n - 1 && u >= cdf[i])
        i++;
    return i;
}

/* ------------------------------------------------------------------ */
/* The catalogue and the personas                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    double median_price;  /* currency units */
    double popularity;    /* relative share of interest */
} category_def;

static const category_def categories[] = {
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

#define NCATEGORIES ((int)(sizeof categories / sizeof categories[0]))
#define NPRODUCTS (NCATEGORIES * (int)PER_CATEGORY)

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
} persona;

/* Indexed by shopgen_segment. */
static const persona personas[SHOPGEN_NSEGMENTS] = {
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

static const double rating_happy[5] = {0.03, 0.07, 0.18, 0.50, 1.00};  /* cumulative */
static const double rating_sad[5] = {0.35, 0.65, 0.85, 0.95, 1.00};

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

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
    int err;
} outbuf;

typedef struct {
    const shopgen_config *cfg;
    int err;                       /* sticky LS_* status */
    rng r;                         /* the run's generator */
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

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

void shopgen_defaults(shopgen_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->customers = 10000;
    c->days = 90;
    c->start_ms = SHOPGEN_DEFAULT_START_MS;
    c->cutoff_ms = SHOPGEN_CUTOFF_AUTO;
    c->horizon_days = 30;
    c->format = SHOPGEN_JSONL;
    c->r = 0.75;
    c->alpha = 110.0;
    c->a = 0.8;
    c->b = 2.5;
    c->share_occasional = 0.078;
    c->share_regular = 0.026;
    c->share_big_spender = 0.016;
    c->share_sale_hunter = 0.013;
    c->existing_share = 0.15;
    c->anon_share = 0.75;
    c->refund_rate = 0.04;
    c->intent_boost = 0.5;
    c->intent_days = 5.0;
}

static int is_prob(double x)
{
    return x >= 0.0 && x <= 1.0; /* false for NaN */
}

static int is_positive(double x)
{
    return x > 0.0 && x < 1e12; /* false for NaN and infinities */
}

int shopgen_validate(const shopgen_config *c)
{
    if (!c || c->customers < 1 || c->customers > SHOPGEN_MAX_CUSTOMERS)
        return LS_EINVAL;
    if (c->days < 1 || c->days > SHOPGEN_MAX_DAYS || c->horizon_days < 1 ||
        c->horizon_days > SHOPGEN_MAX_DAYS)
        return LS_EINVAL;
    if (c->start_ms < 0 || c->start_ms > INT64_C(1) << 52)
        return LS_EINVAL;
    if (c->format != SHOPGEN_JSONL && c->format != SHOPGEN_CSV)
        return LS_EINVAL;
    if (!is_positive(c->r) || !is_positive(c->alpha) || !is_positive(c->a) ||
        !is_positive(c->b) || !is_positive(c->intent_days))
        return LS_EINVAL;
    if (!(c->intent_boost >= 0.0 && c->intent_boost <= 100.0))
        return LS_EINVAL;
    if (!is_prob(c->share_occasional) || !is_prob(c->share_regular) ||
        !is_prob(c->share_big_spender) || !is_prob(c->share_sale_hunter) ||
        !is_prob(c->share_occasional + c->share_regular + c->share_big_spender +
                 c->share_sale_hunter))
        return LS_EINVAL;
    if (!is_prob(c->existing_share) || !is_prob(c->anon_share) || !is_prob(c->refund_rate))
        return LS_EINVAL;
    if (c->cutoff_ms != SHOPGEN_CUTOFF_AUTO &&
        (c->cutoff_ms < 0 || c->cutoff_ms > INT64_C(1) << 53))
        return LS_EINVAL;
    return LS_OK;
}

const char *shopgen_segment_name(int segment)
{
    if (segment < 0 || segment >= SHOPGEN_NSEGMENTS)
        return NULL;
    return personas[segment].name;
}

/* ------------------------------------------------------------------ */
/* Setup: catalogue and customers                                      */
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

static void build_catalogue(gen *g)
{
    rng r;
    double total = 0.0, hours = 0.0;

    rng_seed(&r, g->cfg->seed ^ UINT64_C(0x6361746c6f677565));
    for (int c = 0; c < NCATEGORIES; c++) {
        total += categories[c].popularity;
        g->category_cdf[c] = total;
        for (uint32_t j = 0; j < PER_CATEGORY; j++) {
            double units = categories[c].median_price * exp(0.45 * normal(&r));
            g->price[c * (int)PER_CATEGORY + (int)j] = shop_price(units);
        }
    }
    for (int h = 0; h < 24; h++) {
        hours += hour_weight[h];
        g->hour_cdf[h] = hours;
    }
}

static int draw_segment(rng *r, const shopgen_config *cfg)
{
    double u = unit(r);
    const double shares[SHOPGEN_NSEGMENTS] = {0.0, cfg->share_occasional, cfg->share_regular,
                                              cfg->share_big_spender, cfg->share_sale_hunter};

    for (int s = 1; s < SHOPGEN_NSEGMENTS; s++) {
        if (u < shares[s])
            return s;
        u -= shares[s];
    }
    return SHOPGEN_BROWSER;
}

static uint16_t draw_birthday(rng *r)
{
    uint32_t m = below(r, 12);

    return (uint16_t)((m + 1) * 100 + 1 + below(r, days_in_month[m]));
}

/* Draws customer idx's traits from its own generator. */
static void customer_init(gen *g, uint32_t idx)
{
    const shopgen_config *cfg = g->cfg;
    customer *c = &g->cust[idx];
    rng r;

    rng_seed(&r, mix64(cfg->seed) ^ mix64((uint64_t)idx + UINT64_C(0x5eed)));
    memset(c, 0, sizeof *c);
    c->segment = (uint8_t)draw_segment(&r, cfg);
    const persona *ps = &personas[c->segment];
    c->lambda = gamma_draw(&r, cfg->r, 1.0 / cfg->alpha) * ps->lambda_mult;
    c->p_drop = fmin(0.95, beta_draw(&r, cfg->a, cfg->b) * ps->p_mult);
    c->next_buy = NEVER;
    c->dropout = NEVER;
    c->refund_day = -1;
    c->review_day = -1;
    c->intent = NO_PRODUCT;
    c->flags = C_ALIVE;
    if (unit(&r) < cfg->existing_share) {
        c->flags |= C_REGISTERED;
        if (unit(&r) < 0.3) { /* lapsed before the stream began */
            c->flags &= (uint8_t)~C_ALIVE;
            c->dropout = -1;
        }
    } else {
        c->arrival_day = (int32_t)below(&r, (uint32_t)cfg->days);
        if (unit(&r) < cfg->anon_share)
            c->flags |= C_ANON;
    }
    for (int i = 0; i < 3; i++)
        c->prefs[i] = (uint8_t)pick_cdf(&r, g->category_cdf, NCATEGORIES);
    if (unit(&r) < 0.35)
        c->birthday = draw_birthday(&r);
    if (unit(&r) < 0.3)
        c->flags |= C_PHONE;
}

/* ------------------------------------------------------------------ */
/* Emitting events                                                     */
/* ------------------------------------------------------------------ */

static int grow_events(gen *g)
{
    size_t cap = g->cap ? g->cap * 2 : 4096;

    if (cap > UINT32_MAX) {
        g->err = LS_ETOOLARGE;
        return -1;
    }
    rec *ev = realloc(g->ev, cap * sizeof *ev);
    uint64_t *keys = ev ? realloc(g->keys, cap * sizeof *keys) : NULL;
    if (ev)
        g->ev = ev;
    if (keys)
        g->keys = keys;
    uint64_t *tmp = keys ? realloc(g->tmp, cap * sizeof *tmp) : NULL;
    if (!tmp) {
        g->err = LS_ENOMEM;
        return -1;
    }
    g->tmp = tmp;
    g->cap = cap;
    return 0;
}

/* A new event of customer idx at ms into the day, under the id the
 * customer is known by right now.  Never NULL: after a failure it returns
 * a scratch record and the error stays in g->err. */
static rec *emit(gen *g, uint32_t idx, uint32_t ms, int type, uint32_t session)
{
    customer *c = &g->cust[idx];
    rec *e = &g->scratch;

    if (g->nev < g->cap || (!g->err && grow_events(g) == 0))
        e = &g->ev[g->nev++];
    memset(e, 0, sizeof *e);
    e->ms = ms;
    e->cust = idx;
    e->session = session;
    e->type = (uint8_t)type;
    e->product = NO_PRODUCT;
    e->flags = (c->flags & C_ANON) ? F_ANON : 0;
    c->flags |= C_SEEN;
    return e;
}

static uint32_t sale_price(uint32_t cents, int discounted)
{
    return discounted ? (cents * 4u + 2u) / 5u : cents; /* 20 % off */
}

static void set_product(const gen *g, rec *e, uint16_t product, int discounted)
{
    e->product = product;
    e->price = sale_price(g->price[product], discounted);
    e->flags |= F_PRICE | F_DISC_SET | (discounted ? F_DISC : 0);
}

/* ------------------------------------------------------------------ */
/* Choices                                                             */
/* ------------------------------------------------------------------ */

static int pick_category(gen *g, const customer *c)
{
    double u = unit(&g->r);

    if (u < 0.5)
        return c->prefs[0];
    if (u < 0.7)
        return c->prefs[1];
    if (u < 0.8)
        return c->prefs[2];
    return pick_cdf(&g->r, g->category_cdf, NCATEGORIES);
}

/* A product of category cat, popular ones first; big spenders pick the
 * dearest of several. */
static uint16_t pick_product(gen *g, const customer *c, int cat)
{
    int draws = personas[c->segment].price_draws;
    uint16_t best = NO_PRODUCT;

    for (int d = 0; d < draws; d++) {
        double u = unit(&g->r);
        uint16_t p = (uint16_t)(cat * (int)PER_CATEGORY + (int)(u * u * PER_CATEGORY));
        if (best == NO_PRODUCT || g->price[p] > g->price[best])
            best = p;
    }
    return best;
}

static int category_of(uint16_t product)
{
    return product / (int)PER_CATEGORY;
}

/* A time of day (ms) from the diurnal profile. */
static uint32_t time_of_day(gen *g)
{
    int h = pick_cdf(&g->r, g->hour_cdf, 24);

    return (uint32_t)h * 3600000u + below(&g->r, 3600000u);
}

static uint32_t clamp_ms(int64_t ms)
{
    if (ms < 0)
        return 0;
    if (ms >= DAY_MS)
        return (uint32_t)(DAY_MS - 1);
    return (uint32_t)ms;
}

static uint8_t draw_quantity(gen *g, const customer *c)
{
    double u = unit(&g->r);
    uint8_t q = u < 0.80 ? 1 : u < 0.95 ? 2 : 3;

    if (c->segment == SHOPGEN_BIG_SPENDER && unit(&g->r) < 0.3)
        q++;
    return q;
}

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

/* A session being built: events get offsets from 0; sess_place() moves
 * them to their time of day once the length is known. */
typedef struct {
    gen *g;
    uint32_t idx;
    customer *c;
    uint32_t number;   /* session number (id) */
    uint32_t t;        /* offset of the latest event, <= SESSION_MAX_MS */
    size_t first;      /* index of its first event in g->ev */
} sess;

typedef struct {
    uint16_t product;
    uint8_t quantity;
} line;

/* Session numbers wrap at 2^24 per customer (ids would then repeat; at a
 * hundred sessions a day that takes 460 years). */
static void sess_begin(sess *s, gen *g, uint32_t idx)
{
    s->g = g;
    s->idx = idx;
    s->c = &g->cust[idx];
    s->number = (++s->c->sessions) & 0xFFFFFFu;
    s->t = 0;
    s->first = g->nev;
}

static rec *sess_emit(sess *s, int type)
{
    return emit(s->g, s->idx, s->t, type, s->number);
}

/* Time passes between two clicks: 4 s plus about half a minute. */
static void sess_step(sess *s)
{
    double gap = 4000.0 + exponential(&s->g->r, 30000.0);
    double t = (double)s->t + fmin(gap, 300000.0);

    s->t = t > SESSION_MAX_MS ? SESSION_MAX_MS : (uint32_t)t;
}

/* Shifts the session's events to start at `start` ms into the day. */
static void sess_place(sess *s, uint32_t start)
{
    gen *g = s->g;

    if (g->err)
        return;
    for (size_t i = s->first; i < g->nev; i++)
        g->ev[i].ms += start;
}

static void profile_event(sess *s)
{
    customer *c = s->c;

    if (!c->birthday || (c->flags & C_PROFILED) || !(c->flags & C_REGISTERED))
        return;
    sess_step(s);
    rec *e = sess_emit(s, EV_PROFILE);
    e->birthday = c->birthday;
    e->session = 0;
    c->flags |= C_PROFILED;
}

/* Signs the visitor up: from here on, the customer id. */
static void signup(sess *s)
{
    customer *c = s->c;

    if (c->flags & C_ANON)
        c->flags |= C_ALIASED;
    c->flags = (uint8_t)((c->flags & ~C_ANON) | C_REGISTERED);
    sess_step(s);
    sess_emit(s, EV_SIGNUP);
    profile_event(s);
}

static void view(sess *s, uint16_t product, int discounted)
{
    sess_step(s);
    set_product(s->g, sess_emit(s, EV_PRODUCT_VIEW), product, discounted);
}

static void search(sess *s, int cat)
{
    sess_step(s);
    rec *e = sess_emit(s, EV_SEARCH);
    e->product = (uint16_t)cat;
    e->flags |= F_CAT_ONLY;
}

static void cart(sess *s, int type, const line *l, int discounted)
{
    sess_step(s);
    rec *e = sess_emit(s, type);
    set_product(s->g, e, l->product, discounted);
    e->quantity = l->quantity;
}

static void page_view(sess *s)
{
    sess_step(s);
    sess_emit(s, EV_PAGE_VIEW);
}

static int is_happy(const customer *c)
{
    return c->orders >= 2 && !(c->flags & C_UNHAPPY);
}

/* What every session opens with: the landing page, and for anonymous
 * visitors now and then a signup. */
static void sess_open(sess *s)
{
    sess_emit(s, EV_PAGE_VIEW);
    if ((s->c->flags & C_ANON) && unit(&s->g->r) < 0.04)
        signup(s);
    profile_event(s);
}

/* Browsing: a category, a few products, now and then a cart.  sign_up:
 * the visitor registers right after landing (first visit). */
static void browse_session(sess *s, int sign_up)
{
    gen *g = s->g;
    customer *c = s->c;
    const persona *ps = &personas[c->segment];
    int cat = pick_category(g, c);
    uint16_t last = NO_PRODUCT;
    int last_disc = 0;

    sess_open(s);
    if (sign_up)
        signup(s);
    if (unit(&g->r) < 0.3)
        search(s, cat);
    for (uint32_t n = 1 + poisson(&g->r, 1.5); n > 0; n--) {
        last = pick_product(g, c, cat);
        last_disc = unit(&g->r) < ps->disc_view;
        view(s, last, last_disc);
        if (unit(&g->r) < 0.15)
            page_view(s);
    }
    if (unit(&g->r) < ps->cart) {
        line l = {last, draw_quantity(g, c)};
        cart(s, EV_ADD_TO_CART, &l, last_disc);
        if (unit(&g->r) < 0.3)
            cart(s, EV_REMOVE_FROM_CART, &l, last_disc);
    }
    if (is_happy(c) && unit(&g->r) < 0.08) {
        sess_step(s);
        set_product(g, sess_emit(s, EV_SHARE), last, last_disc);
    }
    if (is_happy(c) && unit(&g->r) < 0.05) {
        sess_step(s);
        sess_emit(s, EV_REFERRAL);
    }
    if (c->orders > 0 && unit(&g->r) < 0.01) {
        sess_step(s);
        sess_emit(s, EV_SUPPORT_TICKET);
    }
}

/* The run-up to a purchase: the product about to be bought, carts,
 * sometimes an abandoned checkout. */
static void intent_session(sess *s)
{
    gen *g = s->g;
    customer *c = s->c;
    int cat = category_of(c->intent);
    int disc = unit(&g->r) < personas[c->segment].disc_view;

    sess_open(s);
    if (unit(&g->r) < 0.4)
        search(s, cat);
    for (uint32_t n = 1 + poisson(&g->r, 1.0); n > 0; n--) {
        if (unit(&g->r) < 0.6) {
            view(s, c->intent, disc);
        } else {
            uint16_t other = pick_product(g, c, cat);
            view(s, other, unit(&g->r) < personas[c->segment].disc_view);
        }
    }
    if (unit(&g->r) < 0.35) {
        line l = {c->intent, draw_quantity(g, c)};
        cart(s, EV_ADD_TO_CART, &l, disc);
        if (unit(&g->r) < 0.25)
            cart(s, EV_REMOVE_FROM_CART, &l, disc);
        else if (unit(&g->r) < 0.12) {
            sess_step(s);
            sess_emit(s, EV_CHECKOUT);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Purchases and their consequences                                    */
/* ------------------------------------------------------------------ */

static void schedule_next_buy(gen *g, customer *c, int64_t from)
{
    double gap_days = c->lambda > 0.0 ? exponential(&g->r, 1.0 / c->lambda) : INFINITY;
    double end = (double)g->cfg->days * (double)DAY_MS;
    double when = (double)from + gap_days * (double)DAY_MS;

    c->next_buy = when < end ? (int64_t)when : NEVER;
    if (c->next_buy != NEVER)
        c->intent = pick_product(g, c, pick_category(g, c));
}

static void plan_followups(gen *g, customer *c, uint32_t order, uint32_t cents,
                           uint32_t main_cents, uint16_t main)
{
    const persona *ps = &personas[c->segment];
    int refunded = 0;

    if (c->refund_day < 0 && unit(&g->r) < g->cfg->refund_rate * ps->refund_mult) {
        c->refund_day = g->day + 2 + (int32_t)below(&g->r, 18);
        c->refund_order = order;
        c->refund_cents = unit(&g->r) < 0.7 ? cents : main_cents;
        c->refund_product = main;
        refunded = 1;
    }
    if (c->review_day < 0 && unit(&g->r) < ps->review * (refunded ? 3.0 : 1.0)) {
        c->review_day = g->day + 3 + (int32_t)below(&g->r, 12);
        if (refunded && c->review_day <= c->refund_day)
            c->review_day = c->refund_day + 1;
        c->review_product = main;
        c->review_bad = (uint8_t)refunded;
    }
}

/* Books a purchase made at `at` (ms since start): truth counters, refund
 * and review plans, the dropout coin and the next purchase. */
static void book_purchase(gen *g, customer *c, int64_t at, uint32_t order, uint32_t cents,
                          uint32_t main_cents, uint16_t main)
{
    if (at < g->cutoff)
        c->before_cutoff++;
    else if (at < g->horizon_end)
        c->in_horizon++;
    g->sum.revenue += cents / 100.0;
    plan_followups(g, c, order, cents, main_cents, main);
    if (unit(&g->r) < c->p_drop) {
        c->flags &= (uint8_t)~C_ALIVE;
        c->dropout = at;
        c->next_buy = NEVER;
    } else {
        schedule_next_buy(g, c, at);
    }
}

/* The purchase funnel, ending at `end` ms into the day or as soon after
 * `earliest` as the session allows.  Returns the session's last offset
 * into the day. */
static uint32_t purchase_session(gen *g, uint32_t idx, uint32_t end, uint32_t earliest)
{
    customer *c = &g->cust[idx];
    const persona *ps = &personas[c->segment];
    int disc = unit(&g->r) < ps->disc_buy;
    line lines[MAX_LINES];
    int n = 0;
    uint32_t cents = 0;
    sess s;

    if (c->intent == NO_PRODUCT)
        c->intent = pick_product(g, c, pick_category(g, c));
    sess_begin(&s, g, idx);
    sess_open(&s);
    if (unit(&g->r) < 0.3)
        search(&s, category_of(c->intent));
    for (uint32_t k = below(&g->r, 3); k > 0; k--)
        view(&s, pick_product(g, c, category_of(c->intent)), disc);
    view(&s, c->intent, disc);
    lines[n++] = (line){c->intent, draw_quantity(g, c)};
    cart(&s, EV_ADD_TO_CART, &lines[0], disc);
    while (n < MAX_LINES && unit(&g->r) < ps->extra_line) {
        uint16_t p = pick_product(g, c, pick_category(g, c));
        view(&s, p, disc);
        lines[n] = (line){p, draw_quantity(g, c)};
        cart(&s, EV_ADD_TO_CART, &lines[n++], disc);
    }
    if (n > 1 && unit(&g->r) < 0.15)
        cart(&s, EV_REMOVE_FROM_CART, &lines[--n], disc);
    if (c->flags & C_ANON)
        signup(&s);
    sess_step(&s);
    sess_emit(&s, EV_CHECKOUT);
    for (int i = 0; i < n; i++)
        cents += sale_price(g->price[lines[i].product], disc) * lines[i].quantity;
    sess_step(&s);
    uint32_t order = ++c->orders;
    rec *e = sess_emit(&s, EV_PURCHASE);
    set_product(g, e, lines[0].product, disc);
    e->quantity = lines[0].quantity;
    e->value = cents;
    e->order = order;
    e->flags |= F_VALUE;

    uint32_t start = end > s.t ? end - s.t : 0;
    if (start < earliest)
        start = earliest;
    sess_place(&s, start);
    book_purchase(g, c, (int64_t)g->day * DAY_MS + start + s.t, order, cents,
                  sale_price(g->price[lines[0].product], disc) * lines[0].quantity,
                  lines[0].product);
    return start + s.t;
}

static void refund_day(gen *g, uint32_t idx)
{
    customer *c = &g->cust[idx];
    uint32_t ms = time_of_day(g);

    if (unit(&g->r) < 0.4) {
        uint32_t before = 60000u + below(&g->r, 3600000u);
        emit(g, idx, ms > before ? ms - before : 0, EV_SUPPORT_TICKET, 0);
    }
    rec *e = emit(g, idx, ms, EV_REFUND, 0);
    e->product = c->refund_product;
    e->order = c->refund_order;
    e->value = c->refund_cents;
    e->flags |= F_VALUE;
    c->flags |= C_UNHAPPY;
    c->refund_day = -1;
}

static void review_day(gen *g, uint32_t idx)
{
    customer *c = &g->cust[idx];
    rec *e = emit(g, idx, time_of_day(g), EV_REVIEW, 0);
    int rating = 1 + pick_cdf(&g->r, c->review_bad ? rating_sad : rating_happy, 5);

    e->product = c->review_product;
    e->rating = (uint8_t)rating;
    if (rating <= 2)
        c->flags |= C_UNHAPPY;
    c->review_day = -1;
}

/* ------------------------------------------------------------------ */
/* A customer's day                                                    */
/* ------------------------------------------------------------------ */

enum { A_ARRIVAL, A_PURCHASE, A_EMAIL_CLICK, A_SMS_CLICK, A_BROWSE, A_INTENT };

typedef struct {
    uint32_t ms;
    uint8_t kind;
} slot;

typedef struct {
    slot s[AGENDA_CAP];
    int n;
} agenda;

static void agenda_add(agenda *a, uint32_t ms, int kind)
{
    if (a->n < AGENDA_CAP)
        a->s[a->n++] = (slot){ms, (uint8_t)kind};
}

/* Removes and returns the earliest slot (the first added among equals). */
static slot agenda_pop(agenda *a)
{
    int best = 0;

    for (int i = 1; i < a->n; i++)
        if (a->s[i].ms < a->s[best].ms)
            best = i;
    slot out = a->s[best];
    memmove(&a->s[best], &a->s[best + 1], (size_t)(a->n - best - 1) * sizeof a->s[0]);
    a->n--;
    return out;
}

/* Days until the next purchase, from the middle of today (>= 0). */
static double days_to_purchase(const gen *g, const customer *c)
{
    double d = ((double)c->next_buy - ((double)g->day + 0.5) * (double)DAY_MS) / (double)DAY_MS;

    return d < 0.0 ? 0.0 : d;
}

static double browse_rate(const gen *g, const customer *c)
{
    const persona *ps = &personas[c->segment];
    size_t age = (size_t)(g->day - c->arrival_day);
    double fade = g->fade[(size_t)c->segment * (size_t)g->cfg->days + age];
    double rate = ps->visit_floor + (ps->visit0 - ps->visit_floor) * fade;

    return (c->flags & C_ALIVE) ? rate : rate * 0.3;
}

static double intent_rate(const gen *g, const customer *c)
{
    if (!(c->flags & C_ALIVE) || c->next_buy == NEVER)
        return 0.0;
    double d = days_to_purchase(g, c), tau = g->cfg->intent_days;
    return d > 4.0 * tau ? 0.0 : g->cfg->intent_boost * exp(-d / tau);
}

/* A campaign message: maybe opened (an event), maybe clicked (a session
 * later in the agenda). */
static void campaign(gen *g, uint32_t idx, agenda *a, int sms, uint32_t send_ms)
{
    customer *c = &g->cust[idx];
    double open = sms ? 1.0 : personas[c->segment].email_open;
    double click = sms ? 0.04 : 0.25;

    if (!(c->flags & C_ALIVE))
        open *= 0.4;
    if (intent_rate(g, c) > 0.1 * g->cfg->intent_boost)
        click *= 1.8;
    if (unit(&g->r) >= open)
        return;
    uint32_t ms = clamp_ms(send_ms + (int64_t)exponential(&g->r, 3.0 * 3600000.0));
    if (!sms)
        emit(g, idx, ms, EV_EMAIL_OPEN, 0);
    if (unit(&g->r) < click)
        agenda_add(a, clamp_ms(ms + 10000 + (int64_t)below(&g->r, 290000)),
                   sms ? A_SMS_CLICK : A_EMAIL_CLICK);
}

static void plan_day(gen *g, uint32_t idx, agenda *a)
{
    customer *c = &g->cust[idx];
    int64_t day0 = (int64_t)g->day * DAY_MS;
    double browse = browse_rate(g, c), intent = intent_rate(g, c);

    /* On the mailing list from the day after the signup (or arrival). */
    if ((c->flags & C_REGISTERED) && g->day > c->arrival_day) {
        if (g->day % 7 == 3)
            campaign(g, idx, a, 0, 9u * 3600000u);
        if (g->day % 14 == 10 && (c->flags & C_PHONE))
            campaign(g, idx, a, 1, 12u * 3600000u);
    }
    if (c->next_buy < day0 + DAY_MS)
        agenda_add(a, clamp_ms(c->next_buy - day0), A_PURCHASE);
    for (uint32_t n = poisson(&g->r, browse + intent); n > 0; n--) {
        uint32_t ms = time_of_day(g);
        agenda_add(a, ms, unit(&g->r) * (browse + intent) < intent ? A_INTENT : A_BROWSE);
    }
}

/* Plays one slot after *cursor (the end of the customer's previous session
 * that day, -1 before the first) and a pause; moves the cursor past it. */
static void play_slot(gen *g, uint32_t idx, agenda *a, slot sl, int64_t *cursor, int *bought)
{
    customer *c = &g->cust[idx];
    int64_t earliest = *cursor < 0 ? 0 : *cursor + 60000 + below(&g->r, 1200000u);
    sess s;

    if (earliest > DAY_MS - 1 - SESSION_MAX_MS) { /* so every session fits the day */
        if (sl.kind == A_PURCHASE) /* no room left today: tomorrow */
            c->next_buy = ((int64_t)g->day + 1) * DAY_MS + time_of_day(g);
        return;
    }
    if (sl.kind == A_PURCHASE) {
        *cursor = purchase_session(g, idx, sl.ms, (uint32_t)earliest);
        int64_t day_end = ((int64_t)g->day + 1) * DAY_MS;
        if (c->next_buy < day_end && ++*bought < PURCHASES_PER_DAY)
            agenda_add(a, clamp_ms(c->next_buy - (int64_t)g->day * DAY_MS), A_PURCHASE);
        else if (c->next_buy < day_end)
            c->next_buy = day_end + time_of_day(g);
        return;
    }
    sess_begin(&s, g, idx);
    if (sl.kind == A_EMAIL_CLICK || sl.kind == A_SMS_CLICK) {
        rec *e = sess_emit(&s, sl.kind == A_EMAIL_CLICK ? EV_EMAIL_CLICK : EV_SMS_CLICK);
        e->session = 0; /* the click lands, then the session starts */
        sess_step(&s);
    }
    if (sl.kind == A_INTENT && c->intent != NO_PRODUCT)
        intent_session(&s);
    else
        browse_session(&s, sl.kind == A_ARRIVAL && !(c->flags & (C_ANON | C_REGISTERED)));
    uint32_t start = sl.ms > earliest ? sl.ms : (uint32_t)earliest;
    if (start + s.t > DAY_MS - 1)
        start = (uint32_t)(DAY_MS - 1) - s.t;
    sess_place(&s, start);
    *cursor = start + s.t;
    if (sl.kind == A_ARRIVAL) {
        c->arrival = (int64_t)g->day * DAY_MS + start;
        if (c->flags & C_ALIVE)
            schedule_next_buy(g, c, c->arrival);
    }
}

static void customer_day(gen *g, uint32_t idx)
{
    customer *c = &g->cust[idx];
    agenda a;
    int64_t cursor = -1;
    int bought = 0;

    if (g->day < c->arrival_day)
        return;
    a.n = 0;
    if (g->day == c->arrival_day) {
        if (c->flags & C_REGISTERED) { /* known before the stream */
            if (c->flags & C_ALIVE)
                schedule_next_buy(g, c, 0);
        } else {
            play_slot(g, idx, &a, (slot){time_of_day(g), A_ARRIVAL}, &cursor, &bought);
        }
    }
    if (c->refund_day == g->day)
        refund_day(g, idx);
    if (c->review_day == g->day)
        review_day(g, idx);
    plan_day(g, idx, &a);
    while (a.n > 0)
        play_slot(g, idx, &a, agenda_pop(&a), &cursor, &bought);
}

/* ------------------------------------------------------------------ */
/* Sorting a day                                                       */
/* ------------------------------------------------------------------ */

/* Sorts keys (ms << 32 | index) by ms with a stable LSD radix sort: three
 * passes of 9 bits cover the 27 bits of a day's milliseconds.  Returns the
 * array that holds the result (keys or tmp). */
static uint64_t *sort_day(uint64_t *keys, uint64_t *tmp, size_t n)
{
    for (int shift = 32; shift < 32 + 27; shift += 9) {
        size_t count[513] = {0};
        for (size_t i = 0; i < n; i++)
            count[((keys[i] >> shift) & 511u) + 1]++;
        for (int d = 0; d < 512; d++)
            count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++)
            tmp[count[(keys[i] >> shift) & 511u]++] = keys[i];
        uint64_t *swap = keys;
        keys = tmp;
        tmp = swap;
    }
    return keys;
}

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t len;
} type_names[EV_TYPE_COUNT] = {
#define TYPE_NAME(sym, name) {name, sizeof name - 1},
    EVENT_TYPE_MAP(TYPE_NAME)
#undef TYPE_NAME
};

static const char csv_header[] =
    "event_id,customer,type,ts,session,product,category,price,quantity,value,"
    "discounted,rating,order_id,birthday\n";

static void out_flush(outbuf *o)
{
    if (o->len && !o->err && fwrite(o->buf, 1, o->len, o->f) != o->len)
        o->err = 1;
    o->len = 0;
}

/* Room for n more bytes; returns where to write them. */
static char *out_reserve(outbuf *o, size_t n)
{
    if (OUT_CAP - o->len < n)
        out_flush(o);
    return o->buf + o->len;
}

static void out_commit(outbuf *o, const char *end)
{
    o->len = (size_t)(end - o->buf);
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Decimal, two digits per division. */
static char *put_u64(char *p, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char tmp[20];
    int n = 20;

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    }
    if (v >= 10) {
        tmp[--n] = pairs[v * 2 + 1];
        tmp[--n] = pairs[v * 2];
    } else {
        tmp[--n] = (char)('0' + v);
    }
    return put(p, tmp + n, (size_t)(20 - n));
}

static char *put_hex16(char *p, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, v >>= 4)
        p[i] = digits[v & 15];
    return p + 16;
}

/* Cents as a decimal with at least one fraction digit: 12.0, 12.3, 12.34. */
static char *put_money(char *p, uint32_t cents)
{
    uint32_t frac = cents % 100;

    p = put_u64(p, cents / 100);
    *p++ = '.';
    *p++ = (char)('0' + frac / 10);
    if (frac % 10)
        *p++ = (char)('0' + frac % 10);
    return p;
}

static char *put_2digits(char *p, unsigned v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Text cell: quoted (RFC 4180) when it holds a comma, quote, CR or LF. */
static char *put_csv_text(char *p, const char *s, size_t n)
{
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n) && !memchr(s, '\n', n))
        return put(p, s, n);
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    return p;
}

static char *put_event_id(char *p, const gen *g, uint64_t n)
{
    p = put(p, g->tag, sizeof g->tag);
    *p++ = '-';
    return put_u64(p, n);
}

/* A customer as its events show it: "anon-<hex>" or "cust-<n>". */
static char *put_customer(char *p, const gen *g, uint32_t idx, int anon)
{
    if (anon)
        return put_hex16(PUT(p, "anon-"), mix64(g->key_anon ^ idx));
    return put_u64(PUT(p, "cust-"), (uint64_t)idx + 1);
}

static char *put_session(char *p, const gen *g, const rec *e)
{
    return put_hex16(PUT(p, "s-"), mix64(g->key_session ^ ((uint64_t)e->cust << 24 | e->session)));
}

static char *put_order(char *p, const gen *g, const rec *e)
{
    return put_hex16(PUT(p, "ord-"), mix64(g->key_order ^ ((uint64_t)e->cust << 24 | e->order)));
}

static char *put_sku(char *p, uint16_t product)
{
    char digits[5];

    for (int i = 4, v = product; i >= 0; i--, v /= 10)
        digits[i] = (char)('0' + v % 10);
    return put(PUT(p, "sku-"), digits, 5);
}

static const char *category_name(const rec *e, size_t *len)
{
    int cat = (e->flags & F_CAT_ONLY) ? e->product : category_of(e->product);

    *len = strlen(categories[cat].name);
    return categories[cat].name;
}

/* Generated strings hold only [a-z0-9/-], so JSON needs no escaping. */
static void write_jsonl(gen *g, const rec *e, uint64_t n, int64_t ts)
{
    char *p = out_reserve(&g->out, LINE_MAX_BYTES);

    p = put_event_id(PUT(p, "{\"event_id\":\""), g, n);
    p = put_customer(PUT(p, "\",\"customer\":\""), g, e->cust, e->flags & F_ANON);
    p = put(PUT(p, "\",\"type\":\""), type_names[e->type].name, type_names[e->type].len);
    p = put_u64(PUT(p, "\",\"ts\":"), (uint64_t)ts);
    if (e->session)
        p = PUT(put_session(PUT(p, ",\"session\":\""), g, e), "\"");
    if (e->product != NO_PRODUCT) {
        size_t len;
        const char *cat = category_name(e, &len);
        if (!(e->flags & F_CAT_ONLY))
            p = PUT(put_sku(PUT(p, ",\"product\":\""), e->product), "\"");
        p = PUT(put(PUT(p, ",\"category\":\""), cat, len), "\"");
    }
    if (e->flags & F_PRICE)
        p = put_money(PUT(p, ",\"price\":"), e->price);
    if (e->quantity)
        p = put_u64(PUT(p, ",\"quantity\":"), e->quantity);
    if (e->flags & F_VALUE)
        p = put_money(PUT(p, ",\"value\":"), e->value);
    if (e->flags & F_DISC_SET)
        p = (e->flags & F_DISC) ? PUT(p, ",\"discounted\":true") : PUT(p, ",\"discounted\":false");
    if (e->rating)
        p = put_u64(PUT(p, ",\"rating\":"), e->rating);
    if (e->order)
        p = PUT(put_order(PUT(p, ",\"order_id\":\""), g, e), "\"");
    if (e->birthday) {
        p = put_2digits(PUT(p, ",\"birthday\":\""), e->birthday / 100u);
        p = PUT(put_2digits(PUT(p, "-"), e->birthday % 100u), "\"");
    }
    out_commit(&g->out, PUT(p, "}\n"));
}

static void write_csv(gen *g, const rec *e, uint64_t n, int64_t ts)
{
    char *p = out_reserve(&g->out, LINE_MAX_BYTES);

    p = put_event_id(p, g, n);
    p = put_customer(PUT(p, ","), g, e->cust, e->flags & F_ANON);
    p = put(PUT(p, ","), type_names[e->type].name, type_names[e->type].len);
    p = put_u64(PUT(p, ","), (uint64_t)ts);
    *p++ = ',';
    if (e->session)
        p = put_session(p, g, e);
    *p++ = ',';
    if (e->product != NO_PRODUCT && !(e->flags & F_CAT_ONLY))
        p = put_sku(p, e->product);
    *p++ = ',';
    if (e->product != NO_PRODUCT) {
        size_t len;
        const char *cat = category_name(e, &len);
        p = put_csv_text(p, cat, len);
    }
    *p++ = ',';
    if (e->flags & F_PRICE)
        p = put_money(p, e->price);
    *p++ = ',';
    if (e->quantity)
        p = put_u64(p, e->quantity);
    *p++ = ',';
    if (e->flags & F_VALUE)
        p = put_money(p, e->value);
    *p++ = ',';
    if (e->flags & F_DISC_SET)
        p = (e->flags & F_DISC) ? PUT(p, "true") : PUT(p, "false");
    *p++ = ',';
    if (e->rating)
        p = put_u64(p, e->rating);
    *p++ = ',';
    if (e->order)
        p = put_order(p, g, e);
    *p++ = ',';
    if (e->birthday)
        p = put_2digits(PUT(put_2digits(p, e->birthday / 100u), "-"), e->birthday % 100u);
    out_commit(&g->out, PUT(p, "\n"));
}

/* Sorts today's events and writes them, numbering the event ids. */
static void flush_day(gen *g)
{
    int64_t day0 = g->cfg->start_ms + (int64_t)g->day * DAY_MS;

    for (size_t i = 0; i < g->nev; i++)
        g->keys[i] = (uint64_t)g->ev[i].ms << 32 | i;
    const uint64_t *order = sort_day(g->keys, g->tmp, g->nev);
    for (size_t i = 0; i < g->nev; i++) {
        const rec *e = &g->ev[(uint32_t)order[i]];
        int64_t ts = day0 + e->ms;
        uint64_t n = ++g->sum.events;
        if (g->cfg->format == SHOPGEN_CSV)
            write_csv(g, e, n, ts);
        else
            write_jsonl(g, e, n, ts);
        g->sum.by_type[e->type]++;
        if (n == 1)
            g->sum.first_ts = ts;
        g->sum.last_ts = ts;
    }
    g->nev = 0;
}

/* ------------------------------------------------------------------ */
/* Ground truth                                                        */
/* ------------------------------------------------------------------ */

static int alive_at(const customer *c, int64_t cutoff)
{
    return c->arrival < cutoff && c->dropout >= cutoff;
}

static int write_truth(const gen *g, FILE *f)
{
    char id[64];

    if (fputs("customer,purchases_before_cutoff,purchased_in_horizon,purchases_in_horizon,"
              "alive_at_cutoff,lambda_per_day,p_dropout,segment\n", f) < 0)
        return LS_EIO;
    for (uint32_t i = 0; i < g->ncust; i++) {
        const customer *c = &g->cust[i];
        *put_customer(id, g, i, c->flags & C_ANON) = '\0';
        if (fprintf(f, "%s,%lu,%d,%lu,%d,%.6g,%.6g,%s\n", id, (unsigned long)c->before_cutoff,
                    c->in_horizon > 0, (unsigned long)c->in_horizon, alive_at(c, g->cutoff),
                    c->lambda, c->p_drop, personas[c->segment].name) < 0)
            return LS_EIO;
    }
    for (uint32_t i = 0; i < g->ncust; i++) {
        char cust[64];
        if (!(g->cust[i].flags & C_ALIASED))
            continue;
        *put_customer(id, g, i, 1) = '\0';
        *put_customer(cust, g, i, 0) = '\0';
        if (fprintf(f, "alias,%s,%s\n", id, cust) < 0)
            return LS_EIO;
    }
    return fflush(f) == 0 && !ferror(f) ? LS_OK : LS_EIO;
}

static void summarise(gen *g)
{
    for (uint32_t i = 0; i < g->ncust; i++) {
        const customer *c = &g->cust[i];
        g->sum.by_segment[c->segment]++;
        g->sum.visitors += (c->flags & C_SEEN) != 0;
        g->sum.buyers += c->orders >= 1;
        g->sum.repeat_buyers += c->orders >= 2;
        g->sum.aliases += (c->flags & C_ALIASED) != 0;
    }
    g->sum.customers = g->ncust;
    g->sum.cutoff_ms = g->cfg->start_ms + g->cutoff;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

static uint64_t fold(uint64_t h, uint64_t v)
{
    return mix64(h ^ mix64(v));
}

static uint64_t fold_double(uint64_t h, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof bits);
    return fold(h, bits);
}

/* A hash of everything that shapes the events (not the format, cutoff or
 * horizon): two different streams get different event id prefixes, so
 * loading both into one store does not "deduplicate" one away. */
static uint64_t stream_tag(const shopgen_config *c)
{
    const double params[] = {c->r, c->alpha, c->a, c->b, c->share_occasional,
                             c->share_regular, c->share_big_spender, c->share_sale_hunter,
                             c->existing_share, c->anon_share, c->refund_rate,
                             c->intent_boost, c->intent_days};
    uint64_t h = fold(fold(fold(mix64(c->seed), c->customers), (uint64_t)c->days),
                      (uint64_t)c->start_ms);

    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        h = fold_double(h, params[i]);
    return h;
}

static int gen_open(gen *g, const shopgen_config *cfg, FILE *events)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t k = cfg->seed ^ UINT64_C(0x73686f7067656e31);
    uint64_t tag = stream_tag(cfg);
    int64_t end = (int64_t)cfg->days * DAY_MS;

    g->cfg = cfg;
    rng_seed(&g->r, cfg->seed);
    g->key_anon = splitmix64(&k);
    g->key_session = splitmix64(&k);
    g->key_order = splitmix64(&k);
    for (int i = 0; i < 8; i++)
        g->tag[i] = hex[(tag >> (60 - 4 * i)) & 15];
    if (cfg->cutoff_ms == SHOPGEN_CUTOFF_AUTO)
        g->cutoff = cfg->days > cfg->horizon_days
                        ? (int64_t)(cfg->days - cfg->horizon_days) * DAY_MS : 0;
    else
        g->cutoff = cfg->cutoff_ms - cfg->start_ms;
    g->horizon_end = g->cutoff + (int64_t)cfg->horizon_days * DAY_MS;
    if (g->horizon_end > end)
        g->horizon_end = end;
    g->sum.cutoff_ms = cfg->start_ms + g->cutoff;
    g->ncust = cfg->customers;
    g->out.f = events;
    g->cust = calloc((size_t)g->ncust, sizeof *g->cust);
    g->out.buf = malloc(OUT_CAP);
    g->fade = malloc((size_t)SHOPGEN_NSEGMENTS * (size_t)cfg->days * sizeof *g->fade);
    if (!g->cust || !g->out.buf || !g->fade || grow_events(g))
        return LS_ENOMEM;
    for (int seg = 0; seg < SHOPGEN_NSEGMENTS; seg++)
        for (int age = 0; age < cfg->days; age++)
            g->fade[seg * cfg->days + age] = exp(-age / personas[seg].visit_fade);
    build_catalogue(g);
    for (uint32_t i = 0; i < g->ncust; i++)
        customer_init(g, i);
    return LS_OK;
}

static void gen_close(gen *g)
{
    free(g->cust);
    free(g->ev);
    free(g->keys);
    free(g->tmp);
    free(g->fade);
    free(g->out.buf);
}

static int simulate(gen *g, shopgen_progress_fn progress, void *arg)
{
    const shopgen_config *cfg = g->cfg;

    if (cfg->format == SHOPGEN_CSV) {
        char *p = out_reserve(&g->out, sizeof csv_header);
        out_commit(&g->out, put(p, csv_header, sizeof csv_header - 1));
    }
    for (g->day = 0; g->day < cfg->days; g->day++) {
        for (uint32_t i = 0; i < g->ncust && !g->err; i++)
            customer_day(g, i);
        if (g->err)
            return g->err;
        flush_day(g);
        if (g->out.err)
            return LS_EIO;
        if (progress)
            progress(arg, g->sum.events, g->day + 1, cfg->days);
    }
    out_flush(&g->out);
    if (g->out.err || fflush(g->out.f) != 0 || ferror(g->out.f))
        return LS_EIO;
    return LS_OK;
}

int shopgen_run(const shopgen_config *c, FILE *events, FILE *truth,
                shopgen_progress_fn progress, void *arg, shopgen_summary *out)
{
    gen *g = NULL;
    int rc = shopgen_validate(c);

    if (rc == LS_OK && !events)
        rc = LS_EINVAL;
    if (rc != LS_OK)
        goto leave;
    g = calloc(1, sizeof *g);
    if (!g) {
        rc = LS_ENOMEM;
        goto leave;
    }
    rc = gen_open(g, c, events);
    if (rc == LS_OK)
        rc = simulate(g, progress, arg);
    if (rc == LS_OK && truth)
        rc = write_truth(g, truth);
    if (rc == LS_OK) {
        summarise(g);
        if (out)
            *out = g->sum;
    }
leave:
    if (g)
        gen_close(g);
    free(g);
    return rc;
}
