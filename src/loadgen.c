/* loadgen.c -- the load generator behind `leadscore bench` (see loadgen.h).
 *
 * Sections: the workload table and configuration; random numbers, the Zipf
 * sampler and the synthetic customer base; request building; reading
 * replies; the echo server; the client threads (request/reply and PUSH);
 * the controller that starts, times, stops and sums up a run; the probe
 * and the server's event counters.
 *
 * Timing.  Every client has a window of `inflight` slots.  A slot holds
 * one outstanding request: its generation number (carried in the request
 * "id" together with the slot index, so a late reply to a request that
 * timed out is recognised and dropped), the time it was DUE and the time
 * it was sent.  Latency is reply time minus due time.  In a closed loop a
 * request is due when a slot frees up; in an open loop at fixed intervals,
 * whether or not a slot is free.  Clients wait on their socket's ZMQ_FD
 * with ppoll (nanosecond timeouts, 1 ns timer slack), so an open-loop
 * client wakes on time for its next request without spinning. */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "timefmt.h"

#define SLOT_BITS 20                  /* id = generation << SLOT_BITS | slot */
#define SLOT_MASK ((UINT64_C(1) << SLOT_BITS) - 1)
#define WAIT_SLICE_NS 20000000LL      /* longest single wait: 20 ms */
#define EXPIRE_EVERY_NS 20000000LL    /* how often slots are checked for timeouts */
#define PROGRESS_EVERY_NS 1000000000LL
#define CONTROL_TICK_NS 50000000LL
#define PULL_POLL_NS 50000000LL
#define START_DELAY_NS 20000000LL     /* lets the clients connect before t0 */
#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ */
/* Workloads and configuration                                         */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *help;
} workloads[LOADGEN_WORKLOAD_COUNT] = {
#define LOADGEN_WORKLOAD_ROW(sym, name, what) {name, what},
    LOADGEN_WORKLOAD_MAP(LOADGEN_WORKLOAD_ROW)
#undef LOADGEN_WORKLOAD_ROW
};

const char *loadgen_workload_name(loadgen_workload w)
{
    return (int)w >= 0 && w < LOADGEN_WORKLOAD_COUNT ? workloads[w].name : NULL;
}

const char *loadgen_workload_help(loadgen_workload w)
{
    return (int)w >= 0 && w < LOADGEN_WORKLOAD_COUNT ? workloads[w].help : NULL;
}

int loadgen_workload_parse(const char *name, loadgen_workload *out)
{
    for (int i = 0; i < LOADGEN_WORKLOAD_COUNT; i++) {
        if (strcmp(name, workloads[i].name) == 0) {
            *out = (loadgen_workload)i;
            return LS_OK;
        }
    }
    return LS_EINVAL;
}

int loadgen_workload_batched(loadgen_workload w)
{
    return w == LOADGEN_SCORE_BATCH || w == LOADGEN_TRACK || w == LOADGEN_PULL || w == LOADGEN_MIXED;
}

void loadgen_config_defaults(loadgen_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workload = LOADGEN_SCORE;
    cfg->customers = 100000;
    cfg->clients = 1;
    cfg->inflight = 1;
    cfg->duration_s = 10;
    cfg->warmup_s = 1;
    cfg->batch = 100;
    cfg->mix_read_pct = 90;
    cfg->seed = 1;
    cfg->timeout_ms = 5000;
    cfg->pull_settle_s = 1;
    cfg->pull_max_wait_s = 60;
    cfg->pull_backlog = 200000;
}

__attribute__((format(printf, 3, 4)))
static int invalid(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return LS_EINVAL;
}

int loadgen_config_check(const loadgen_config *cfg, char *why, size_t cap)
{
    if (!loadgen_workload_name(cfg->workload))
        return invalid(why, cap, "unknown workload");
    if (!cfg->endpoint || !*cfg->endpoint)
        return invalid(why, cap, "no endpoint to connect to");
    if (cfg->workload == LOADGEN_PULL && (!cfg->pull_endpoint || !*cfg->pull_endpoint))
        return invalid(why, cap, "the pull workload needs the server's PULL endpoint");
    if (cfg->customers < 1)
        return invalid(why, cap, "customers must be at least 1");
    if (!(cfg->zipf_s >= 0) || !isfinite(cfg->zipf_s))
        return invalid(why, cap, "the Zipf exponent must be a number > 0");
    if (cfg->clients < 1 || cfg->clients > LOADGEN_MAX_CLIENTS)
        return invalid(why, cap, "clients must be between 1 and %d", LOADGEN_MAX_CLIENTS);
    if (cfg->inflight < 1 || cfg->inflight > LOADGEN_MAX_INFLIGHT)
        return invalid(why, cap, "inflight must be between 1 and %d", LOADGEN_MAX_INFLIGHT);
    if (!(cfg->rate >= 0) || !isfinite(cfg->rate))
        return invalid(why, cap, "rate must be a number >= 0 (0: closed loop)");
    if (cfg->requests == 0 && !(cfg->duration_s > 0 && cfg->duration_s <= 86400 * 7))
        return invalid(why, cap, "duration must be between 0 and a week of seconds");
    if (!(cfg->warmup_s >= 0 && cfg->warmup_s <= 3600))
        return invalid(why, cap, "warmup must be between 0 and 3600 seconds");
    if (cfg->batch < 1 || cfg->batch > LOADGEN_MAX_BATCH)
        return invalid(why, cap, "batch must be between 1 and %d", LOADGEN_MAX_BATCH);
    if (cfg->mix_read_pct < 0 || cfg->mix_read_pct > 100)
        return invalid(why, cap, "mix must be a percentage, 0 to 100");
    if (cfg->timeout_ms < 1)
        return invalid(why, cap, "timeout must be at least 1 ms");
    if (!(cfg->pull_settle_s > 0) || !(cfg->pull_max_wait_s >= cfg->pull_settle_s))
        return invalid(why, cap, "the pull check needs settle > 0 and max wait >= settle");
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Random numbers and the Zipf sampler                                 */
/* ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void loadgen_rng_seed(loadgen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t loadgen_rng_next(loadgen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double loadgen_rng_unit(loadgen_rng *r)
{
    return (double)(loadgen_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t loadgen_rng_below(loadgen_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)loadgen_rng_next(r) * n) >> 64);
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
        double u = z->h_n + loadgen_rng_unit(r) * (z->h_x1 - z->h_n);
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

static const char *const categories[] = {
    "shoes/running", "shoes/casual", "apparel/jackets", "apparel/shirts", "electronics/audio",
    "electronics/phones", "home/kitchen", "home/garden", "beauty/skin", "sports/cycling",
    "toys/lego", "books/fiction"};
#define N_CATEGORIES (sizeof categories / sizeof categories[0])

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
    ev->category = lit(categories[cat]);
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
    loadgen_rng_seed(&r, seed * UINT64_C(0x9e3779b97f4a7c15) ^ k);
    ls_str customer = {id, loadgen_customer_id(k, id, sizeof id)};
    int n = 2 + (int)loadgen_rng_below(&r, 5);
    int64_t t = now_ms - (int64_t)(1 + loadgen_rng_below(&r, 90)) * DAY_MS;
    int cat = (int)loadgen_rng_below(&r, N_CATEGORIES);
    snprintf(sess, sizeof sess, "s-%016llx", (unsigned long long)loadgen_rng_next(&r));
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

/* ------------------------------------------------------------------ */
/* Shared run state and clients                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t gen;        /* 0: free */
    int64_t due_ns;
    int64_t sent_ns;
    uint32_t items;
    uint8_t kind;
    uint8_t measured;
} lg_slot;

typedef struct lg_run lg_run;
typedef struct stats_conn stats_conn;

typedef struct {
    lg_run *run;
    int index;
    pthread_t thread;
    int thread_started;
    void *sock;
    int type;                 /* ZMQ_REQ, ZMQ_DEALER or ZMQ_PUSH */
    int fd;                   /* the socket's ZMQ_FD */
    loadgen_rng rng;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    lg_slot *slots;
    uint32_t *free_slots;
    int nfree, outstanding;
    uint64_t next_gen;
    uint64_t quota;           /* measured requests to send; 0: no limit */
    uint64_t sent_measured;
    int done_sending;
    int64_t next_due, interval_ns, last_expire_ns;
    uint64_t event_seq;
    hist *lat, *kind_lat[LOADGEN_KINDS];
    /* figures, read by the controller after the join */
    uint64_t ok_measured, items, kind_n[LOADGEN_KINDS], warmup_ok;
    uint64_t error_replies, timeouts, send_failures, abandoned;
    uint64_t req_bytes, req_count, reply_bytes, reply_count;
    uint64_t pull_events_sent;
    int64_t last_done_ns;
    char first_error[256];
    /* live counters for the progress line */
    _Alignas(64) atomic_uint_fast64_t live_done;
    atomic_uint_fast64_t live_errors;
    atomic_int finished;
} lg_client;

struct lg_run {
    const loadgen_config *cfg;
    void *zmq;
    int use_zipf;
    loadgen_zipf zipf;
    uint64_t perm_a, perm_b;  /* rank r -> customer 1 + ((r-1)*a + b) mod n */
    uint32_t nonce;           /* makes event ids unique per run */
    int64_t t0_ns, measure_ns, end_ns;
    atomic_int stop;          /* 1: send no more; 2: stop waiting too */
    stats_conn *pull_stats;   /* pull: where landed events are counted */
    uint64_t pull_before;     /* pull: the count before the run */
    atomic_uint_fast64_t pull_sent, pull_allowed; /* pull: the backlog gate */
    atomic_int go;            /* 0: wait; 1: run; -1: set-up failed, exit */
    lg_client *clients;
    int nclients;
};

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A multiplier coprime with n near n/phi, so hot ranks land far apart. */
static void choose_permutation(lg_run *run, uint64_t n)
{
    uint64_t a = (uint64_t)((double)n * 0.6180339887498949) | 1;
    while (a > 1 && gcd64(a, n) != 1)
        a++;
    run->perm_a = n > 1 ? a % n : 0;
    run->perm_b = n / 3;
    if (run->perm_a == 0)
        run->perm_a = 1;
}

static uint64_t pick_customer(lg_client *c)
{
    lg_run *run = c->run;
    uint64_t n = run->cfg->customers;
    if (!run->use_zipf)
        return 1 + loadgen_rng_below(&c->rng, n);
    uint64_t r = loadgen_zipf_next(&run->zipf, &c->rng) - 1;
    return 1 + (uint64_t)(((unsigned __int128)r * run->perm_a + run->perm_b) % n);
}

/* ------------------------------------------------------------------ */
/* Request building                                                    */
/* ------------------------------------------------------------------ */

static void pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_lit(msgpack_packer *pk, const char *s)
{
    pack_strn(pk, s, strlen(s));
}

static void pack_customer(lg_client *c)
{
    char id[32];
    pack_strn(&c->pk, id, loadgen_customer_id(pick_customer(c), id, sizeof id));
}

/* Starts a request map of nfields entries after "id" and "op". */
static void begin_request(lg_client *c, uint32_t nfields, uint64_t id, const char *op)
{
    c->sb.size = 0;
    msgpack_pack_map(&c->pk, nfields + (id ? 2 : 1));
    if (id) {
        pack_lit(&c->pk, "id");
        msgpack_pack_fix_uint64(&c->pk, id);
    }
    pack_lit(&c->pk, "op");
    pack_lit(&c->pk, op);
}

/* A track event of realistic shape: about 150 bytes of msgpack. */
static void pack_event(lg_client *c, int64_t now_ms)
{
    static const struct {
        const char *type;
        int weight, priced;
    } mix[] = {{"page_view", 35, 0}, {"product_view", 30, 1}, {"search", 10, 0}, {"add_to_cart", 10, 1},
               {"remove_from_cart", 2, 1}, {"checkout", 4, 0}, {"purchase", 4, 1}, {"email_open", 3, 0},
               {"email_click", 2, 0}};
    char buf[64];
    int roll = (int)loadgen_rng_below(&c->rng, 100), t = 0;
    while (roll >= mix[t].weight) {
        roll -= mix[t].weight;
        t++;
    }
    uint64_t customer = pick_customer(c);
    msgpack_pack_map(&c->pk, mix[t].priced ? 8 : 7);
    pack_lit(&c->pk, "customer");
    pack_strn(&c->pk, buf, loadgen_customer_id(customer, buf, sizeof buf));
    pack_lit(&c->pk, "type");
    pack_lit(&c->pk, mix[t].type);
    pack_lit(&c->pk, "ts");
    msgpack_pack_int64(&c->pk, now_ms);
    pack_lit(&c->pk, "event_id");
    snprintf(buf, sizeof buf, "%08x-%03x-%010llx", (unsigned)c->run->nonce, (unsigned)c->index & 0xfff,
             (unsigned long long)(++c->event_seq & UINT64_C(0xffffffffff)));
    pack_lit(&c->pk, buf);
    pack_lit(&c->pk, "session");
    snprintf(buf, sizeof buf, "s-%016llx", (unsigned long long)(customer * UINT64_C(0x9e3779b97f4a7c15)));
    pack_lit(&c->pk, buf);
    pack_lit(&c->pk, "product");
    snprintf(buf, sizeof buf, "sku-%05u", (unsigned)loadgen_rng_below(&c->rng, 100000));
    pack_lit(&c->pk, buf);
    pack_lit(&c->pk, "category");
    pack_lit(&c->pk, categories[loadgen_rng_below(&c->rng, N_CATEGORIES)]);
    if (mix[t].priced) {
        pack_lit(&c->pk, "price");
        msgpack_pack_double(&c->pk, 5.0 + (double)loadgen_rng_below(&c->rng, 19500) / 100.0);
    }
}

static void build_track(lg_client *c, uint64_t id, int nevents)
{
    int64_t now_ms = timefmt_now_ms();
    begin_request(c, 1, id, "track");
    pack_lit(&c->pk, "events");
    msgpack_pack_array(&c->pk, (size_t)nevents);
    for (int i = 0; i < nevents; i++)
        pack_event(c, now_ms);
}

/* Builds the next request of the workload into c->sb; sets its kind and
 * the number of items it carries. */
static void build_request(lg_client *c, uint64_t id, int *kind, uint32_t *items)
{
    const loadgen_config *cfg = c->run->cfg;
    loadgen_workload w = cfg->workload;
    if (w == LOADGEN_MIXED)
        w = (int)loadgen_rng_below(&c->rng, 100) < cfg->mix_read_pct ? LOADGEN_SCORE : LOADGEN_TRACK;
    *kind = LOADGEN_KIND_READ;
    *items = 1;
    switch (w) {
    case LOADGEN_SCORE_BATCH:
        begin_request(c, 1, id, "score");
        pack_lit(&c->pk, "customers");
        msgpack_pack_array(&c->pk, (size_t)cfg->batch);
        for (int i = 0; i < cfg->batch; i++)
            pack_customer(c);
        *items = (uint32_t)cfg->batch;
        break;
    case LOADGEN_TRACK:
    case LOADGEN_PULL:
        build_track(c, id, cfg->batch);
        *kind = LOADGEN_KIND_WRITE;
        *items = (uint32_t)cfg->batch;
        break;
    case LOADGEN_RECOMMEND:
        begin_request(c, 1, id, "recommend");
        pack_lit(&c->pk, "customer");
        pack_customer(c);
        break;
    default:
        begin_request(c, 1, id, "score");
        pack_lit(&c->pk, "customer");
        pack_customer(c);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Reading replies                                                     */
/* ------------------------------------------------------------------ */

static uint64_t read_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads the header of the value at *pos: how many payload bytes follow it
 * and how many child values it contains.  Advances *pos past the header.
 * Returns 0, or -1 for a bad or cut-short header. */
static int mp_header(const uint8_t *p, size_t len, size_t *pos, uint64_t *payload, uint64_t *children)
{
    static const signed char fixed[32] = {0, -1, 0, 0, -2, -2, -2, -3, -3, -3, 4, 8, 1, 2, 4, 8,
                                          1, 2, 4, 8, 2, 3, 5, 9, 17, -2, -2, -2, -4, -4, -5, -5};
    static const unsigned char lenb[32] = {[4] = 1, [5] = 2, [6] = 4, [7] = 1, [8] = 2, [9] = 4,
                                           [25] = 1, [26] = 2, [27] = 4, [28] = 2, [29] = 4, [30] = 2, [31] = 4};
    if (*pos >= len)
        return -1;
    uint8_t b = p[(*pos)++];
    *payload = *children = 0;
    if (b <= 0x7f || b >= 0xe0)
        return 0;
    if (b <= 0x8f) { *children = 2u * (b & 0x0f); return 0; }
    if (b <= 0x9f) { *children = b & 0x0f; return 0; }
    if (b <= 0xbf) { *payload = b & 0x1f; return 0; }
    int idx = b - 0xc0, kind = fixed[idx];
    if (kind == -1)
        return -1;
    if (kind >= 0) {
        *payload = (uint64_t)kind;
        return 0;
    }
    if (len - *pos < lenb[idx])
        return -1;
    uint64_t v = read_be(p + *pos, lenb[idx]);
    *pos += lenb[idx];
    if (kind == -2) *payload = v;
    else if (kind == -3) *payload = v + 1;
    else if (kind == -4) *children = v;
    else *children = 2 * v;
    return 0;
}

/* Skips one whole value (and everything inside it). */
static int mp_skip(const uint8_t *p, size_t len, size_t *pos)
{
    uint64_t pending = 1;
    while (pending > 0) {
        uint64_t payload, children;
        pending--;
        if (mp_header(p, len, pos, &payload, &children) || payload > len - *pos || children > len - *pos)
            return -1;
        *pos += (size_t)payload;
        pending += children;
    }
    return 0;
}

/* Reads an unsigned integer value; -1 when the value is something else. */
static int mp_uint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint8_t b = p[*pos];
    int n = b <= 0x7f ? 0 : b >= 0xcc && b <= 0xcf ? 1 << (b - 0xcc) : -1;
    if (n < 0 || len - *pos < (size_t)n + 1)
        return -1;
    *out = n == 0 ? b : read_be(p + *pos + 1, n);
    *pos += (size_t)n + 1;
    return 0;
}

int loadgen_scan_reply(const void *buf, size_t len, int *ok, uint64_t *id, int *has_id)
{
    const uint8_t *p = buf;
    size_t pos = 0;
    uint64_t payload, entries;
    *ok = -1;
    *has_id = 0;
    if (!p || len == 0 || ((p[0] & 0xf0) != 0x80 && p[0] != 0xde && p[0] != 0xdf) ||
        mp_header(p, len, &pos, &payload, &entries))
        return LS_EPARSE;
    for (uint64_t i = 0; i < entries / 2 && (*ok < 0 || !*has_id); i++) {
        size_t kpos = pos;
        if (mp_skip(p, len, &pos) || pos >= len)
            return LS_EPARSE;
        size_t klen = pos - kpos;
        if (klen == 3 && p[kpos] == 0xa2 && memcmp(p + kpos + 1, "ok", 2) == 0 && (p[pos] == 0xc2 || p[pos] == 0xc3)) {
            *ok = p[pos++] == 0xc3;
            continue;
        }
        if (klen == 3 && p[kpos] == 0xa2 && memcmp(p + kpos + 1, "id", 2) == 0 && mp_uint(p, len, &pos, id) == 0) {
            *has_id = 1;
            continue;
        }
        if (mp_skip(p, len, &pos))
            return LS_EPARSE;
    }
    return LS_OK;
}

/* The slow path for an error reply: "code: message" into out. */
static void describe_error(const void *buf, size_t len, char *out, size_t cap)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    snprintf(out, cap, "an error reply that could not be read");
    if (msgpack_unpack_next(&up, buf, len, NULL) == MSGPACK_UNPACK_SUCCESS && up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *err = NULL;
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
                memcmp(kv->key.via.str.ptr, "error", 5) == 0 && kv->val.type == MSGPACK_OBJECT_MAP)
                err = &kv->val;
        }
        const char *code = "?", *msg = "";
        int code_len = 1, msg_len = 0;
        for (uint32_t i = 0; err && i < err->via.map.size; i++) {
            const msgpack_object_kv *kv = &err->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR)
                continue;
            if (kv->key.via.str.size == 4 && memcmp(kv->key.via.str.ptr, "code", 4) == 0) {
                code = kv->val.via.str.ptr;
                code_len = (int)kv->val.via.str.size;
            } else if (kv->key.via.str.size == 7 && memcmp(kv->key.via.str.ptr, "message", 7) == 0) {
                msg = kv->val.via.str.ptr;
                msg_len = (int)kv->val.via.str.size;
            }
        }
        if (err)
            snprintf(out, cap, "%.*s: %.*s", code_len > 64 ? 64 : code_len, code, msg_len > 160 ? 160 : msg_len, msg);
    }
    msgpack_unpacked_destroy(&up);
}

/* ------------------------------------------------------------------ */
/* The echo server                                                     */
/* ------------------------------------------------------------------ */

struct loadgen_echo {
    void *zmq, *router, *pull;
    pthread_t thread;
    char endpoint[256], pull_endpoint[256];
    int curve;
    char public_key[41], secret_key[41];
    atomic_uint_fast64_t pulled;
};

/* Moves one whole message from `from` back out of `to` (frame by frame,
 * flags preserved).  Returns -1 when the context is shutting down. */
static int echo_one(void *from, void *to)
{
    zmq_msg_t m;
    for (;;) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, from, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&m);
            return err == EAGAIN ? 0 : -1;
        }
        int more = zmq_msg_more(&m);
        if (to)
            zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0);
        zmq_msg_close(&m);
        if (!more)
            return 1;
    }
}

static void *echo_main(void *arg)
{
    loadgen_echo *e = arg;
    for (;;) {
        zmq_pollitem_t items[2] = {{e->router, 0, ZMQ_POLLIN, 0}, {e->pull, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0 && zmq_errno() != EINTR)
            break;
        int rc = 0;
        while (rc >= 0 && (rc = echo_one(e->router, e->router)) > 0)
            ;
        int pc = 0;
        while (pc >= 0 && (pc = echo_one(e->pull, NULL)) > 0)
            atomic_fetch_add(&e->pulled, 1);
        if (rc < 0 || pc < 0)
            break;
    }
    zmq_close(e->router);
    zmq_close(e->pull);
    return NULL;
}

static void *echo_socket(loadgen_echo *e, int type, char *bound)
{
    int hwm = 100000, zero = 0;
    size_t len = 256;
    void *s = zmq_socket(e->zmq, type);
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (e->curve) {
        int one = 1;
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, e->secret_key, 40);
    }
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) {
        zmq_close(s);
        return NULL;
    }
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len);
    return s;
}

int loadgen_echo_start(loadgen_echo **out, int curve)
{
    loadgen_echo *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return LS_ENOMEM;
    e->curve = curve;
    e->zmq = zmq_ctx_new();
    if (curve && zmq_curve_keypair(e->public_key, e->secret_key) != 0) {
        zmq_ctx_term(e->zmq);
        free(e);
        return LS_EINTERNAL;
    }
    if (e->zmq) {
        e->router = echo_socket(e, ZMQ_ROUTER, e->endpoint);
        e->pull = echo_socket(e, ZMQ_PULL, e->pull_endpoint);
    }
    if (!e->router || !e->pull || pthread_create(&e->thread, NULL, echo_main, e) != 0) {
        if (e->router)
            zmq_close(e->router);
        if (e->pull)
            zmq_close(e->pull);
        if (e->zmq)
            zmq_ctx_term(e->zmq);
        free(e);
        return LS_EINTERNAL;
    }
    *out = e;
    return LS_OK;
}

const char *loadgen_echo_endpoint(const loadgen_echo *e) { return e->endpoint; }
const char *loadgen_echo_pull_endpoint(const loadgen_echo *e) { return e->pull_endpoint; }
const char *loadgen_echo_server_key(const loadgen_echo *e) { return e->curve ? e->public_key : NULL; }

/* Makes sock a CurveZMQ client when cfg has keys (before connect). */
static void apply_curve(const loadgen_config *cfg, void *sock)
{
    const char *server = cfg->echo ? loadgen_echo_server_key(cfg->echo) : cfg->server_key;
    if (!server || !cfg->client_public || !cfg->client_secret)
        return;
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, cfg->client_public, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, cfg->client_secret, 40);
}

uint64_t loadgen_echo_pulled(const loadgen_echo *e)
{
    return atomic_load(&((loadgen_echo *)e)->pulled);
}

void loadgen_echo_stop(loadgen_echo **ep)
{
    if (!ep || !*ep)
        return;
    loadgen_echo *e = *ep;
    zmq_ctx_shutdown(e->zmq); /* wakes the thread with ETERM */
    pthread_join(e->thread, NULL);
    zmq_ctx_term(e->zmq);
    free(e);
    *ep = NULL;
}

/* ------------------------------------------------------------------ */
/* Client threads: common parts                                        */
/* ------------------------------------------------------------------ */

static int64_t mono(void)
{
    return timefmt_mono_ns();
}

static void note_error(lg_client *c, const char *what)
{
    if (!c->first_error[0])
        snprintf(c->first_error, sizeof c->first_error, "%s", what);
    atomic_fetch_add_explicit(&c->live_errors, 1, memory_order_relaxed);
}

/* Waits until the socket may have something to read, for at most ns. */
static void wait_readable(lg_client *c, int64_t ns)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN))
        return;
    if (ns <= 0)
        return;
    struct pollfd p = {c->fd, POLLIN, 0};
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    ppoll(&p, 1, &ts, NULL);
}

/* Sleeps until the monotonic time `until` (or for at most a slice). */
static void sleep_until(int64_t until)
{
    int64_t now = mono(), ns = until - now;
    if (ns <= 0)
        return;
    if (ns > WAIT_SLICE_NS)
        ns = WAIT_SLICE_NS;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/* The next request's due time, or -1 when this client sends no more. */
static int64_t next_due(lg_client *c, int64_t now)
{
    lg_run *run = c->run;
    if (c->done_sending || atomic_load_explicit(&run->stop, memory_order_relaxed))
        return -1;
    int64_t due = c->interval_ns ? c->next_due : now;
    if (due >= run->end_ns || (c->quota && c->sent_measured >= c->quota && due >= run->measure_ns)) {
        c->done_sending = 1;
        return -1;
    }
    return due;
}

/* Moves the schedule past a request that was due at `due`. */
static void advance(lg_client *c, int64_t due)
{
    if (due >= c->run->measure_ns)
        c->sent_measured++;
    if (c->interval_ns)
        c->next_due += c->interval_ns;
}

static void record(lg_client *c, int kind, int64_t latency_ns, uint32_t items, int64_t now)
{
    uint64_t v = latency_ns > 0 ? (uint64_t)latency_ns : 0;
    hist_record(c->lat, v);
    if (c->kind_lat[kind])
        hist_record(c->kind_lat[kind], v);
    c->kind_n[kind]++;
    c->ok_measured++;
    c->items += items;
    c->last_done_ns = now;
}

/* ------------------------------------------------------------------ */
/* Client threads: request / reply                                     */
/* ------------------------------------------------------------------ */

static void free_slot(lg_client *c, uint32_t idx)
{
    c->slots[idx].gen = 0;
    c->free_slots[c->nfree++] = idx;
    c->outstanding--;
}

/* Sends one request due at `due`.  Returns 0 when sent, 1 when the socket
 * cannot take it now (try again later), -1 on a failure (counted). */
static int send_request(lg_client *c, int64_t due)
{
    uint32_t idx = c->free_slots[c->nfree - 1];
    uint64_t gen = ++c->next_gen, id = gen << SLOT_BITS | idx;
    int kind;
    uint32_t items;
    build_request(c, id, &kind, &items);
    if (c->type == ZMQ_DEALER && zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        c->next_gen--;
        return zmq_errno() == EAGAIN ? 1 : -1;
    }
    if (zmq_send(c->sock, c->sb.data, c->sb.size, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN && c->type == ZMQ_REQ) {
            c->next_gen--;
            return 1;
        }
        c->send_failures++;
        note_error(c, zmq_strerror(zmq_errno()));
        return -1;
    }
    c->nfree--;
    c->outstanding++;
    lg_slot *s = &c->slots[idx];
    s->gen = gen;
    s->due_ns = due;
    s->sent_ns = mono();
    s->items = items;
    s->kind = (uint8_t)kind;
    s->measured = due >= c->run->measure_ns;
    c->req_bytes += c->sb.size;
    c->req_count++;
    return 0;
}

/* Sends every request that is due and has a free slot. */
static void send_due(lg_client *c)
{
    while (c->nfree > 0) {
        int64_t now = mono(), due = next_due(c, now);
        if (due < 0 || due > now)
            return;
        int rc = send_request(c, due);
        if (rc > 0)
            return;
        advance(c, due);
        if (rc < 0)
            return;
    }
}

/* Finds the slot a reply belongs to; -1 for a late or unknown one. */
static int match_slot(lg_client *c, int has_id, uint64_t id)
{
    if (!has_id) /* a REQ socket has one slot, and only its reply can come */
        return c->type == ZMQ_REQ && c->slots[0].gen ? 0 : -1;
    uint64_t idx = id & SLOT_MASK;
    if (idx >= (uint64_t)c->run->cfg->inflight || c->slots[idx].gen != id >> SLOT_BITS || c->slots[idx].gen == 0)
        return -1;
    return (int)idx;
}

static void handle_reply(lg_client *c, const void *body, size_t len, int64_t now)
{
    int ok, has_id;
    uint64_t id = 0;
    c->reply_bytes += len;
    c->reply_count++;
    if (loadgen_scan_reply(body, len, &ok, &id, &has_id) != LS_OK) {
        c->error_replies++;
        note_error(c, "a reply that is not a msgpack map");
        return;
    }
    int idx = match_slot(c, has_id, id);
    if (idx < 0)
        return; /* the answer to a request that already timed out */
    lg_slot s = c->slots[idx];
    free_slot(c, (uint32_t)idx);
    atomic_fetch_add_explicit(&c->live_done, 1, memory_order_relaxed);
    if (ok == 0 || (ok < 0 && !c->run->cfg->echo)) {
        char why[256];
        c->error_replies++;
        if (!c->first_error[0])
            describe_error(body, len, why, sizeof why);
        note_error(c, why);
        return;
    }
    if (s.measured)
        record(c, s.kind, now - s.due_ns, s.items, now);
    else
        c->warmup_ok++;
}

/* Receives one reply body (after the DEALER delimiter) if one is waiting.
 * Returns 1 when one was handled, 0 when none is there, -1 on ETERM. */
static int receive_one(lg_client *c)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&m);
        return err == EAGAIN || err == EFSM ? 0 : -1; /* EFSM: a REQ with nothing asked */
    }
    /* a DEALER reply is [empty delimiter, body]: step to the last frame */
    while (zmq_msg_more(&m)) {
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
    }
    handle_reply(c, zmq_msg_data(&m), zmq_msg_size(&m), mono());
    zmq_msg_close(&m);
    return 1;
}

/* Gives up on requests outstanding for longer than the timeout. */
static void expire(lg_client *c, int64_t now)
{
    int64_t limit = (int64_t)c->run->cfg->timeout_ms * 1000000;
    if (now - c->last_expire_ns < EXPIRE_EVERY_NS || c->outstanding == 0)
        return;
    c->last_expire_ns = now;
    for (uint32_t i = 0; i < (uint32_t)c->run->cfg->inflight; i++) {
        if (c->slots[i].gen && now - c->slots[i].sent_ns > limit) {
            free_slot(c, i);
            c->timeouts++;
            note_error(c, "no reply within the timeout");
        }
    }
}

/* How long to wait for a reply before the next thing to do. */
static int64_t wait_budget(lg_client *c, int64_t now)
{
    if (c->nfree > 0) {
        int64_t due = next_due(c, now);
        if (due >= 0)
            return due - now < WAIT_SLICE_NS ? due - now : WAIT_SLICE_NS;
    }
    return WAIT_SLICE_NS;
}

static void request_loop(lg_client *c)
{
    for (;;) {
        int stop = atomic_load_explicit(&c->run->stop, memory_order_relaxed);
        if (stop >= 2)
            break;
        send_due(c);
        int got = 0;
        while (c->outstanding > 0 && (got = receive_one(c)) > 0)
            ;
        if (got < 0)
            break;
        int64_t now = mono();
        expire(c, now);
        if (c->outstanding == 0 && next_due(c, now) < 0)
            break;
        wait_readable(c, wait_budget(c, now));
    }
    c->abandoned += (uint64_t)c->outstanding;
}

/* ------------------------------------------------------------------ */
/* Client threads: fire-and-forget PUSH                                */
/* ------------------------------------------------------------------ */

/* Waits until the server has caught up enough to take n more events
 * (cfg->pull_backlog).  Returns 0 when it may send, -1 when the run ends
 * first. */
static int pull_gate(lg_client *c, uint64_t n)
{
    lg_run *run = c->run;
    while (run->cfg->pull_backlog &&
           atomic_load_explicit(&run->pull_sent, memory_order_relaxed) + n >
               atomic_load_explicit(&run->pull_allowed, memory_order_relaxed)) {
        if (atomic_load_explicit(&run->stop, memory_order_relaxed) || mono() >= run->end_ns)
            return -1;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void push_loop(lg_client *c)
{
    for (;;) {
        int64_t now = mono(), due = next_due(c, now);
        if (due < 0)
            break;
        if (due > now) {
            sleep_until(due);
            continue;
        }
        if (pull_gate(c, (uint64_t)c->run->cfg->batch) != 0)
            break; /* the run ended while the server was catching up */
        if (!c->interval_ns)
            due = mono(); /* closed loop: due once the gate opened */
        int kind;
        uint32_t items;
        build_request(c, 0, &kind, &items);
        int rc;
        while ((rc = zmq_send(c->sock, c->sb.data, c->sb.size, 0)) < 0 && zmq_errno() == EAGAIN &&
               !atomic_load_explicit(&c->run->stop, memory_order_relaxed))
            ; /* blocked by the high-water mark: SNDTIMEO lets us look at stop */
        now = mono();
        advance(c, due);
        if (rc < 0) {
            if (zmq_errno() == EAGAIN) {
                c->abandoned++;
                break;
            }
            c->send_failures++;
            note_error(c, zmq_strerror(zmq_errno()));
            continue;
        }
        c->pull_events_sent += items;
        atomic_fetch_add_explicit(&c->run->pull_sent, items, memory_order_relaxed);
        c->req_bytes += c->sb.size;
        c->req_count++;
        atomic_fetch_add_explicit(&c->live_done, 1, memory_order_relaxed);
        if (due >= c->run->measure_ns)
            record(c, kind, now - due, items, now);
        else
            c->warmup_ok++;
    }
}

static void *client_main(void *arg)
{
    lg_client *c = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int go;
    while ((go = atomic_load(&c->run->go)) == 0) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (go < 0) {
        atomic_store(&c->finished, 1);
        return NULL;
    }
    while (mono() < c->run->t0_ns)
        sleep_until(c->run->t0_ns);
    c->next_due = c->run->t0_ns + (c->interval_ns ? c->interval_ns * c->index / c->run->nclients : 0);
    if (c->type == ZMQ_PUSH)
        push_loop(c);
    else
        request_loop(c);
    atomic_store(&c->finished, 1);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Setting clients up and down                                         */
/* ------------------------------------------------------------------ */

static int open_client_socket(lg_client *c)
{
    const loadgen_config *cfg = c->run->cfg;
    int pull = cfg->workload == LOADGEN_PULL;
    int hwm = cfg->inflight * 2 > 1000 ? cfg->inflight * 2 : 1000, zero = 0, one = 1;
    int linger = pull ? (int)(cfg->pull_max_wait_s * 1000) : 0, sndtimeo = 100;
    size_t len = sizeof c->fd;
    c->type = pull ? ZMQ_PUSH : cfg->inflight == 1 ? ZMQ_REQ : ZMQ_DEALER;
    c->sock = zmq_socket(c->run->zmq, c->type);
    if (!c->sock)
        return LS_EINTERNAL;
    zmq_setsockopt(c->sock, ZMQ_LINGER, pull ? &linger : &zero, sizeof(int));
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (c->type == ZMQ_REQ)
        zmq_setsockopt(c->sock, ZMQ_REQ_RELAXED, &one, sizeof one);
    if (pull)
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    apply_curve(cfg, c->sock);
    const char *ep = pull ? cfg->pull_endpoint : cfg->endpoint;
    if (cfg->echo)
        ep = pull ? loadgen_echo_pull_endpoint(cfg->echo) : loadgen_echo_endpoint(cfg->echo);
    if (zmq_connect(c->sock, ep) != 0 || zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &len) != 0)
        return LS_EINTERNAL;
    return LS_OK;
}

static int new_hist(hist **h)
{
    return hist_init(h, LOADGEN_HIST_LOWEST, LOADGEN_HIST_HIGHEST, LOADGEN_HIST_DIGITS);
}

static int client_init(lg_run *run, lg_client *c, int index)
{
    const loadgen_config *cfg = run->cfg;
    c->run = run;
    c->index = index;
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    loadgen_rng_seed(&c->rng, cfg->seed * 1000003 + (uint64_t)index);
    c->slots = calloc((size_t)cfg->inflight, sizeof *c->slots);
    c->free_slots = malloc((size_t)cfg->inflight * sizeof *c->free_slots);
    if (!c->slots || !c->free_slots || new_hist(&c->lat))
        return LS_ENOMEM;
    if (cfg->workload == LOADGEN_MIXED)
        for (int k = 0; k < LOADGEN_KINDS; k++)
            if (new_hist(&c->kind_lat[k]))
                return LS_ENOMEM;
    for (int i = cfg->inflight - 1; i >= 0; i--)
        c->free_slots[c->nfree++] = (uint32_t)i;
    if (cfg->requests)
        c->quota = cfg->requests / (uint64_t)cfg->clients + ((uint64_t)index < cfg->requests % (uint64_t)cfg->clients);
    if (cfg->rate > 0)
        c->interval_ns = (int64_t)(1e9 * cfg->clients / cfg->rate);
    if (cfg->rate > 0 && c->interval_ns < 1)
        c->interval_ns = 1;
    return open_client_socket(c);
}

static void client_free(lg_client *c)
{
    int zero = 0;
    if (c->sock) {
        /* the pull check has already waited for what was queued */
        zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(c->sock);
    }
    msgpack_sbuffer_destroy(&c->sb);
    free(c->slots);
    free(c->free_slots);
    hist_destroy(&c->lat);
    for (int k = 0; k < LOADGEN_KINDS; k++)
        hist_destroy(&c->kind_lat[k]);
}

/* ------------------------------------------------------------------ */
/* The controller                                                      */
/* ------------------------------------------------------------------ */

static int64_t seconds_ns(double s)
{
    return (int64_t)(s * 1e9);
}

static int setup_run(lg_run *run, const loadgen_config *cfg, loadgen_result *out)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->nclients = cfg->clients;
    run->use_zipf = cfg->zipf_s > 0;
    if (run->use_zipf)
        loadgen_zipf_init(&run->zipf, cfg->customers, cfg->zipf_s);
    choose_permutation(run, cfg->customers);
    uint64_t seed = (uint64_t)timefmt_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)mono();
    run->nonce = (uint32_t)splitmix64(&seed);
    run->zmq = zmq_ctx_new();
    run->clients = calloc((size_t)cfg->clients, sizeof *run->clients);
    if (!run->zmq || !run->clients) {
        snprintf(out->first_error, sizeof out->first_error, "out of memory");
        return LS_ENOMEM;
    }
    for (int i = 0; i < cfg->clients; i++) {
        int rc = client_init(run, &run->clients[i], i);
        if (rc) {
            snprintf(out->first_error, sizeof out->first_error, "cannot set up client %d: %s", i,
                     rc == LS_ENOMEM ? "out of memory" : zmq_strerror(zmq_errno()));
            return rc;
        }
    }
    return LS_OK;
}

static int start_clients(lg_run *run, loadgen_result *out)
{
    for (int i = 0; i < run->nclients; i++) {
        if (pthread_create(&run->clients[i].thread, NULL, client_main, &run->clients[i]) != 0) {
            snprintf(out->first_error, sizeof out->first_error, "cannot start client thread %d", i);
            return LS_EINTERNAL;
        }
        run->clients[i].thread_started = 1;
    }
    const loadgen_config *cfg = run->cfg;
    run->t0_ns = mono() + START_DELAY_NS;
    run->measure_ns = run->t0_ns + seconds_ns(cfg->warmup_s);
    run->end_ns = cfg->requests ? INT64_MAX : run->measure_ns + seconds_ns(cfg->duration_s);
    atomic_store(&run->go, 1); /* publishes the times above */
    return LS_OK;
}

/* Sends the started clients home without running (set-up failed). */
static void abort_clients(lg_run *run)
{
    atomic_store(&run->go, -1);
    for (int i = 0; run->clients && i < run->nclients; i++)
        if (run->clients[i].thread_started)
            pthread_join(run->clients[i].thread, NULL);
}

static int all_finished(lg_run *run)
{
    for (int i = 0; i < run->nclients; i++)
        if (!atomic_load(&run->clients[i].finished))
            return 0;
    return 1;
}

static void report_progress(lg_run *run, int64_t now, uint64_t *last_done, int64_t *last_ns)
{
    const loadgen_config *cfg = run->cfg;
    loadgen_progress p = {0};
    for (int i = 0; i < run->nclients; i++) {
        p.requests += atomic_load_explicit(&run->clients[i].live_done, memory_order_relaxed);
        p.errors += atomic_load_explicit(&run->clients[i].live_errors, memory_order_relaxed);
    }
    p.elapsed_s = (double)(now - run->t0_ns) / 1e9;
    p.total_s = cfg->requests ? 0 : cfg->warmup_s + cfg->duration_s;
    p.warming_up = now < run->measure_ns;
    p.rate = now > *last_ns ? (double)(p.requests - *last_done) * 1e9 / (double)(now - *last_ns) : 0;
    *last_done = p.requests;
    *last_ns = now;
    cfg->progress(cfg->progress_arg, &p);
}

static int landed_now(const loadgen_config *cfg, stats_conn *s, uint64_t *landed);

/* Opens the pull gate as far as the server has caught up. */
static void update_pull_gate(lg_run *run)
{
    uint64_t landed;
    if (!run->cfg->pull_backlog || landed_now(run->cfg, run->pull_stats, &landed) != LS_OK)
        return;
    atomic_store(&run->pull_allowed, landed - run->pull_before + run->cfg->pull_backlog);
}

/* Waits for the clients to finish, telling them to stop on an interrupt
 * or when they overrun the end by more than a timeout. */
static void supervise(lg_run *run, loadgen_result *out)
{
    const loadgen_config *cfg = run->cfg;
    int64_t next_progress = run->t0_ns + PROGRESS_EVERY_NS, last_ns = run->t0_ns;
    int64_t hard_end = run->end_ns == INT64_MAX ? INT64_MAX
                                                 : run->end_ns + (int64_t)cfg->timeout_ms * 1000000 + 1000000000;
    uint64_t last_done = 0;
    while (!all_finished(run)) {
        struct timespec tick = {0, CONTROL_TICK_NS};
        nanosleep(&tick, NULL);
        int64_t now = mono();
        if (cfg->stop && *cfg->stop && !out->interrupted) {
            out->interrupted = 1;
            atomic_store(&run->stop, 2);
        }
        if (now > hard_end)
            atomic_store(&run->stop, 2);
        if (run->cfg->workload == LOADGEN_PULL)
            update_pull_gate(run);
        if (cfg->progress && now >= next_progress) {
            report_progress(run, now, &last_done, &last_ns);
            next_progress += PROGRESS_EVERY_NS;
        }
    }
    for (int i = 0; i < run->nclients; i++)
        if (run->clients[i].thread_started)
            pthread_join(run->clients[i].thread, NULL);
}

/* ---- the pull check: did every event sent land on the server? ---- */

struct stats_conn {
    void *zmq, *sock;
    int timeout_ms;
};

static void stats_close(stats_conn *s)
{
    if (s->sock)
        zmq_close(s->sock);
    if (s->zmq)
        zmq_ctx_term(s->zmq);
    s->sock = s->zmq = NULL;
}

static int stats_open(stats_conn *s, const loadgen_config *cfg, const char *endpoint, int timeout_ms)
{
    int zero = 0, one = 1;
    s->timeout_ms = timeout_ms;
    s->zmq = zmq_ctx_new();
    s->sock = s->zmq ? zmq_socket(s->zmq, ZMQ_REQ) : NULL;
    if (!s->sock) {
        stats_close(s);
        return LS_EINTERNAL;
    }
    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s->sock, ZMQ_REQ_RELAXED, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_REQ_CORRELATE, &one, sizeof one);
    zmq_setsockopt(s->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (cfg)
        apply_curve(cfg, s->sock);
    if (zmq_connect(s->sock, endpoint) != 0) {
        stats_close(s);
        return LS_EINTERNAL;
    }
    return LS_OK;
}

/* A reply held for reading: msgpack-c points strings into the frame, so
 * the frame stays open until reply_done. */
typedef struct {
    zmq_msg_t msg;
    msgpack_unpacked up;
} lg_reply;

/* Sends body and unpacks the reply into r (release with reply_done, also
 * after a failure).  0, LS_ETIMEOUT or LS_EPARSE. */
static int call_once(void *sock, const void *body, size_t len, lg_reply *r)
{
    zmq_msg_init(&r->msg);
    msgpack_unpacked_init(&r->up);
    if (zmq_send(sock, body, len, 0) < 0 || zmq_msg_recv(&r->msg, sock, 0) < 0)
        return LS_ETIMEOUT;
    if (msgpack_unpack_next(&r->up, zmq_msg_data(&r->msg), zmq_msg_size(&r->msg), NULL) != MSGPACK_UNPACK_SUCCESS ||
        r->up.data.type != MSGPACK_OBJECT_MAP)
        return LS_EPARSE;
    return LS_OK;
}

static void reply_done(lg_reply *r)
{
    msgpack_unpacked_destroy(&r->up);
    zmq_msg_close(&r->msg);
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    for (uint32_t i = 0; map->type == MSGPACK_OBJECT_MAP && i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int map_uint(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *v = map_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return LS_EPARSE;
    *out = v->via.u64;
    return LS_OK;
}

/* Asks for "stats" on s and reads the three event counters. */
static int read_event_counters(stats_conn *s, uint64_t *accepted, uint64_t *duplicate, uint64_t *rejected)
{
    static const uint8_t req[] = {0x81, 0xa2, 'o', 'p', 0xa5, 's', 't', 'a', 't', 's'};
    lg_reply r;
    int rc = call_once(s->sock, req, sizeof req, &r);
    if (rc == LS_OK && (map_uint(&r.up.data, "events_accepted", accepted) ||
                        map_uint(&r.up.data, "events_duplicate", duplicate) ||
                        map_uint(&r.up.data, "events_rejected", rejected)))
        rc = LS_EPARSE;
    reply_done(&r);
    return rc;
}

/* accepted + duplicate + rejected, as the server counts them. */
static int stats_landed(stats_conn *s, uint64_t *landed)
{
    uint64_t a, d, r;
    int rc = read_event_counters(s, &a, &d, &r);
    if (rc == LS_OK)
        *landed = a + d + r;
    return rc;
}

int loadgen_server_events(const char *endpoint, int timeout_ms, uint64_t *accepted, uint64_t *duplicate,
                          uint64_t *rejected)
{
    stats_conn s = {0};
    int rc = stats_open(&s, NULL, endpoint, timeout_ms);
    if (rc == LS_OK)
        rc = read_event_counters(&s, accepted, duplicate, rejected);
    stats_close(&s);
    return rc;
}

/* Events landed so far on the target: the echo server's count of
 * batches times the batch size, or the server's counters. */
static int landed_now(const loadgen_config *cfg, stats_conn *s, uint64_t *landed)
{
    if (cfg->echo) {
        *landed = loadgen_echo_pulled(cfg->echo) * (uint64_t)cfg->batch;
        return LS_OK;
    }
    return stats_landed(s, landed);
}

/* Polls until every event sent has landed, or the count has not moved
 * for pull_settle_s, or pull_max_wait_s is over, or the user stops. */
static void pull_check(lg_run *run, stats_conn *s, uint64_t before, loadgen_result *out)
{
    const loadgen_config *cfg = run->cfg;
    int64_t sent_end = mono(), changed = sent_end, limit = sent_end + seconds_ns(cfg->pull_max_wait_s);
    uint64_t last = before, now_landed = before;
    for (;;) {
        if (landed_now(cfg, s, &now_landed) != LS_OK) {
            snprintf(out->first_error, sizeof out->first_error, "the pull check could not read the server's stats");
            return;
        }
        int64_t now = mono();
        if (now_landed != last) {
            last = now_landed;
            changed = now;
        }
        if (now_landed - before >= out->pull_events_sent || now - changed >= seconds_ns(cfg->pull_settle_s)) {
            out->pull_checked = 1;
            break;
        }
        if (now > limit || (cfg->stop && *cfg->stop))
            break;
        struct timespec tick = {0, PULL_POLL_NS};
        nanosleep(&tick, NULL);
    }
    out->pull_events_landed = last - before;
    out->pull_events_lost = (int64_t)out->pull_events_sent - (int64_t)out->pull_events_landed;
    out->pull_settle_wait_s = (double)(changed - sent_end) / 1e9;
    double span = (double)(changed - run->t0_ns) / 1e9;
    out->pull_ingest_per_s = span > 0 ? (double)out->pull_events_landed / span : 0;
}

/* ---- summing up ---- */

static int merge_into(hist **dst, const hist *src)
{
    if (!src)
        return LS_OK;
    if (!*dst && new_hist(dst))
        return LS_ENOMEM;
    return hist_merge(*dst, src);
}

static int sum_up(lg_run *run, loadgen_result *out)
{
    int64_t last = 0;
    uint64_t req_bytes = 0, req_count = 0, reply_bytes = 0, reply_count = 0;
    for (int i = 0; i < run->nclients; i++) {
        lg_client *c = &run->clients[i];
        if (merge_into(&out->latency, c->lat))
            return LS_ENOMEM;
        for (int k = 0; k < LOADGEN_KINDS; k++) {
            if (merge_into(&out->kind_latency[k], c->kind_lat[k]))
                return LS_ENOMEM;
            out->kind_requests[k] += c->kind_n[k];
        }
        out->requests += c->ok_measured;
        out->items += c->items;
        out->warmup_requests += c->warmup_ok;
        out->error_replies += c->error_replies;
        out->timeouts += c->timeouts;
        out->send_failures += c->send_failures;
        out->abandoned += c->abandoned;
        out->pull_events_sent += c->pull_events_sent;
        req_bytes += c->req_bytes;
        req_count += c->req_count;
        reply_bytes += c->reply_bytes;
        reply_count += c->reply_count;
        if (c->last_done_ns > last)
            last = c->last_done_ns;
        if (!out->first_error[0] && c->first_error[0])
            snprintf(out->first_error, sizeof out->first_error, "%s", c->first_error);
    }
    out->errors = out->error_replies + out->timeouts + out->send_failures;
    out->elapsed_s = last > run->measure_ns ? (double)(last - run->measure_ns) / 1e9 : 0;
    out->requests_per_s = out->elapsed_s > 0 ? (double)out->requests / out->elapsed_s : 0;
    out->items_per_s = out->elapsed_s > 0 ? (double)out->items / out->elapsed_s : 0;
    out->request_bytes = req_count ? (double)req_bytes / (double)req_count : 0;
    out->reply_bytes = reply_count ? (double)reply_bytes / (double)reply_count : 0;
    return LS_OK;
}

static void teardown_run(lg_run *run)
{
    for (int i = 0; run->clients && i < run->nclients; i++)
        client_free(&run->clients[i]);
    free(run->clients);
    if (run->zmq)
        zmq_ctx_term(run->zmq);
}

int loadgen_run(const loadgen_config *cfg, loadgen_result *out)
{
    lg_run run;
    stats_conn sc = {0};
    uint64_t before = 0;
    memset(out, 0, sizeof *out);
    if (loadgen_config_check(cfg, out->first_error, sizeof out->first_error))
        return LS_EINVAL;
    int pull = cfg->workload == LOADGEN_PULL;
    if (pull && !cfg->echo && stats_open(&sc, cfg, cfg->endpoint, cfg->timeout_ms) != LS_OK) {
        snprintf(out->first_error, sizeof out->first_error, "cannot open a socket for the server's stats");
        return LS_EINTERNAL;
    }
    if (pull && landed_now(cfg, &sc, &before) != LS_OK) {
        snprintf(out->first_error, sizeof out->first_error,
                 "the pull workload reads the server's \"stats\" op (an admin key under CurveZMQ), "
                 "and it did not answer at %s", cfg->endpoint);
        stats_close(&sc);
        return LS_ETIMEOUT;
    }
    int rc = setup_run(&run, cfg, out);
    run.pull_stats = &sc;
    run.pull_before = before;
    atomic_store(&run.pull_allowed, cfg->pull_backlog);
    if (rc == LS_OK)
        rc = start_clients(&run, out);
    if (rc != LS_OK) {
        abort_clients(&run);
    } else {
        supervise(&run, out);
        rc = sum_up(&run, out);
        if (pull)
            pull_check(&run, &sc, before, out);
    }
    teardown_run(&run);
    stats_close(&sc);
    return rc;
}

void loadgen_result_free(loadgen_result *r)
{
    hist_destroy(&r->latency);
    for (int k = 0; k < LOADGEN_KINDS; k++)
        hist_destroy(&r->kind_latency[k]);
}

/* ------------------------------------------------------------------ */
/* The probe                                                           */
/* ------------------------------------------------------------------ */

static int status_of_code(const char *code)
{
#define LOADGEN_CODE(name, value, wire, msg) if (strcmp(code, wire) == 0 && value != 0) return value;
    LS_ERROR_MAP(LOADGEN_CODE)
#undef LOADGEN_CODE
    return LS_EREMOTE;
}

/* Reads an error reply's code and message: the status, words in why. */
static int error_status(const msgpack_object *reply, char *why, size_t cap)
{
    const msgpack_object *err = map_get(reply, "error");
    const msgpack_object *cd = err ? map_get(err, "code") : NULL, *msg = err ? map_get(err, "message") : NULL;
    char code[64] = "";
    if (cd && cd->type == MSGPACK_OBJECT_STR)
        snprintf(code, sizeof code, "%.*s", (int)(cd->via.str.size < 63 ? cd->via.str.size : 63), cd->via.str.ptr);
    snprintf(why, cap, "%s: %.*s", code[0] ? code : "error",
             msg && msg->type == MSGPACK_OBJECT_STR ? (int)(msg->via.str.size < 200 ? msg->via.str.size : 200) : 0,
             msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr : "");
    return code[0] ? status_of_code(code) : LS_EREMOTE;
}

int loadgen_probe(const loadgen_config *cfg, char *why, size_t cap)
{
    lg_run run;
    lg_client c;
    stats_conn s = {0};
    lg_reply r;
    int kind;
    uint32_t items;
    memset(&run, 0, sizeof run);
    memset(&c, 0, sizeof c);
    run.cfg = cfg;
    choose_permutation(&run, cfg->customers ? cfg->customers : 1);
    c.run = &run;
    msgpack_sbuffer_init(&c.sb);
    msgpack_packer_init(&c.pk, &c.sb, msgpack_sbuffer_write);
    loadgen_rng_seed(&c.rng, cfg->seed);
    if (cfg->workload == LOADGEN_PULL)
        begin_request(&c, 0, 1, "ping");
    else
        build_request(&c, 1, &kind, &items);
    int rc = stats_open(&s, cfg, cfg->echo ? loadgen_echo_endpoint(cfg->echo) : cfg->endpoint, cfg->timeout_ms);
    if (rc == LS_OK) {
        rc = call_once(s.sock, c.sb.data, c.sb.size, &r);
        snprintf(why, cap, "%s", rc == LS_ETIMEOUT ? "no reply" : rc ? "a reply that is not a msgpack map" : "");
        const msgpack_object *ok = rc == LS_OK ? map_get(&r.up.data, "ok") : NULL;
        if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && !ok->via.boolean)
            rc = error_status(&r.up.data, why, cap);
        else if (rc == LS_OK && !ok && !cfg->echo) {
            snprintf(why, cap, "a reply without \"ok\": is this a leadscore server?");
            rc = LS_EPARSE;
        }
        reply_done(&r);
    }
    msgpack_sbuffer_destroy(&c.sb);
    stats_close(&s);
    return rc;
}
