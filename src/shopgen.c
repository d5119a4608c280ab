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
 * Modules: shopgen_random.c (the generator and samplers, `sgr_`),
 * shopgen_persona.c (catalogue, personas, customer traits, `sgp_`),
 * shopgen_write.c (CSV / JSON Lines and the truth, `sgw_`); their shared
 * state is shopgen_state.h.  Prefixes: `shopgen_` public; static helpers
 * unprefixed, grouped by the banners below.  Errors during the simulation are sticky in gen.err (an
 * emit that cannot grow the buffer writes to a scratch record), so the
 * simulation code needs no error plumbing; the day loop checks once per
 * customer. */
#include "shopgen.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "shopgen_persona.h"
#include "shopgen_random.h"
#include "shopgen_state.h"
#include "shopgen_write.h"

#define SESSION_MAX_MS 2700000u      /* a session lasts at most 45 minutes */
#define AGENDA_CAP 24
#define MAX_LINES 5                  /* order lines */
#define PURCHASES_PER_DAY 4

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
    return sgp_personas[segment].name;
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
    double u = sgr_unit(&g->r);

    if (u < 0.5)
        return c->prefs[0];
    if (u < 0.7)
        return c->prefs[1];
    if (u < 0.8)
        return c->prefs[2];
    return sgr_pick_cdf(&g->r, g->category_cdf, NCATEGORIES);
}

/* A product of category cat, popular ones first; big spenders pick the
 * dearest of several. */
static uint16_t pick_product(gen *g, const customer *c, int cat)
{
    int draws = sgp_personas[c->segment].price_draws;
    uint16_t best = NO_PRODUCT;

    for (int d = 0; d < draws; d++) {
        double u = sgr_unit(&g->r);
        uint16_t p = (uint16_t)(cat * (int)PER_CATEGORY + (int)(u * u * PER_CATEGORY));
        if (best == NO_PRODUCT || g->price[p] > g->price[best])
            best = p;
    }
    return best;
}

/* A time of day (ms) from the diurnal profile. */
static uint32_t time_of_day(gen *g)
{
    int h = sgr_pick_cdf(&g->r, g->hour_cdf, 24);

    return (uint32_t)h * 3600000u + sgr_below(&g->r, 3600000u);
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
    double u = sgr_unit(&g->r);
    uint8_t q = u < 0.80 ? 1 : u < 0.95 ? 2 : 3;

    if (c->segment == SHOPGEN_BIG_SPENDER && sgr_unit(&g->r) < 0.3)
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
    double gap = 4000.0 + sgr_exponential(&s->g->r, 30000.0);
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
    if ((s->c->flags & C_ANON) && sgr_unit(&s->g->r) < 0.04)
        signup(s);
    profile_event(s);
}

/* Browsing: a category, a few products, now and then a cart.  sign_up:
 * the visitor registers right after landing (first visit). */
static void browse_session(sess *s, int sign_up)
{
    gen *g = s->g;
    customer *c = s->c;
    const sgp_persona *ps = &sgp_personas[c->segment];
    int cat = pick_category(g, c);
    uint16_t last = NO_PRODUCT;
    int last_disc = 0;

    sess_open(s);
    if (sign_up)
        signup(s);
    if (sgr_unit(&g->r) < 0.3)
        search(s, cat);
    for (uint32_t n = 1 + sgr_poisson(&g->r, 1.5); n > 0; n--) {
        last = pick_product(g, c, cat);
        last_disc = sgr_unit(&g->r) < ps->disc_view;
        view(s, last, last_disc);
        if (sgr_unit(&g->r) < 0.15)
            page_view(s);
    }
    if (sgr_unit(&g->r) < ps->cart) {
        line l = {last, draw_quantity(g, c)};
        cart(s, EV_ADD_TO_CART, &l, last_disc);
        if (sgr_unit(&g->r) < 0.3)
            cart(s, EV_REMOVE_FROM_CART, &l, last_disc);
    }
    if (is_happy(c) && sgr_unit(&g->r) < 0.08) {
        sess_step(s);
        set_product(g, sess_emit(s, EV_SHARE), last, last_disc);
    }
    if (is_happy(c) && sgr_unit(&g->r) < 0.05) {
        sess_step(s);
        sess_emit(s, EV_REFERRAL);
    }
    if (c->orders > 0 && sgr_unit(&g->r) < 0.01) {
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
    int cat = sgp_category_of(c->intent);
    int disc = sgr_unit(&g->r) < sgp_personas[c->segment].disc_view;

    sess_open(s);
    if (sgr_unit(&g->r) < 0.4)
        search(s, cat);
    for (uint32_t n = 1 + sgr_poisson(&g->r, 1.0); n > 0; n--) {
        if (sgr_unit(&g->r) < 0.6) {
            view(s, c->intent, disc);
        } else {
            uint16_t other = pick_product(g, c, cat);
            view(s, other, sgr_unit(&g->r) < sgp_personas[c->segment].disc_view);
        }
    }
    if (sgr_unit(&g->r) < 0.35) {
        line l = {c->intent, draw_quantity(g, c)};
        cart(s, EV_ADD_TO_CART, &l, disc);
        if (sgr_unit(&g->r) < 0.25)
            cart(s, EV_REMOVE_FROM_CART, &l, disc);
        else if (sgr_unit(&g->r) < 0.12) {
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
    double gap_days = c->lambda > 0.0 ? sgr_exponential(&g->r, 1.0 / c->lambda) : INFINITY;
    double end = (double)g->cfg->days * (double)DAY_MS;
    double when = (double)from + gap_days * (double)DAY_MS;

    c->next_buy = when < end ? (int64_t)when : NEVER;
    if (c->next_buy != NEVER)
        c->intent = pick_product(g, c, pick_category(g, c));
}

static void plan_followups(gen *g, customer *c, uint32_t order, uint32_t cents,
                           uint32_t main_cents, uint16_t main)
{
    const sgp_persona *ps = &sgp_personas[c->segment];
    int refunded = 0;

    if (c->refund_day < 0 && sgr_unit(&g->r) < g->cfg->refund_rate * ps->refund_mult) {
        c->refund_day = g->day + 2 + (int32_t)sgr_below(&g->r, 18);
        c->refund_order = order;
        c->refund_cents = sgr_unit(&g->r) < 0.7 ? cents : main_cents;
        c->refund_product = main;
        refunded = 1;
    }
    if (c->review_day < 0 && sgr_unit(&g->r) < ps->review * (refunded ? 3.0 : 1.0)) {
        c->review_day = g->day + 3 + (int32_t)sgr_below(&g->r, 12);
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
    if (sgr_unit(&g->r) < c->p_drop) {
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
    const sgp_persona *ps = &sgp_personas[c->segment];
    int disc = sgr_unit(&g->r) < ps->disc_buy;
    line lines[MAX_LINES];
    int n = 0;
    uint32_t cents = 0;
    sess s;

    if (c->intent == NO_PRODUCT)
        c->intent = pick_product(g, c, pick_category(g, c));
    sess_begin(&s, g, idx);
    sess_open(&s);
    if (sgr_unit(&g->r) < 0.3)
        search(&s, sgp_category_of(c->intent));
    for (uint32_t k = sgr_below(&g->r, 3); k > 0; k--)
        view(&s, pick_product(g, c, sgp_category_of(c->intent)), disc);
    view(&s, c->intent, disc);
    lines[n++] = (line){c->intent, draw_quantity(g, c)};
    cart(&s, EV_ADD_TO_CART, &lines[0], disc);
    while (n < MAX_LINES && sgr_unit(&g->r) < ps->extra_line) {
        uint16_t p = pick_product(g, c, pick_category(g, c));
        view(&s, p, disc);
        lines[n] = (line){p, draw_quantity(g, c)};
        cart(&s, EV_ADD_TO_CART, &lines[n++], disc);
    }
    if (n > 1 && sgr_unit(&g->r) < 0.15)
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

    if (sgr_unit(&g->r) < 0.4) {
        uint32_t before = 60000u + sgr_below(&g->r, 3600000u);
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
    int rating = 1 + sgr_pick_cdf(&g->r, c->review_bad ? sgp_rating_sad : sgp_rating_happy, 5);

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
    const sgp_persona *ps = &sgp_personas[c->segment];
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
    double open = sms ? 1.0 : sgp_personas[c->segment].email_open;
    double click = sms ? 0.04 : 0.25;

    if (!(c->flags & C_ALIVE))
        open *= 0.4;
    if (intent_rate(g, c) > 0.1 * g->cfg->intent_boost)
        click *= 1.8;
    if (sgr_unit(&g->r) >= open)
        return;
    uint32_t ms = clamp_ms(send_ms + (int64_t)sgr_exponential(&g->r, 3.0 * 3600000.0));
    if (!sms)
        emit(g, idx, ms, EV_EMAIL_OPEN, 0);
    if (sgr_unit(&g->r) < click)
        agenda_add(a, clamp_ms(ms + 10000 + (int64_t)sgr_below(&g->r, 290000)),
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
    for (uint32_t n = sgr_poisson(&g->r, browse + intent); n > 0; n--) {
        uint32_t ms = time_of_day(g);
        agenda_add(a, ms, sgr_unit(&g->r) * (browse + intent) < intent ? A_INTENT : A_BROWSE);
    }
}

/* Plays one slot after *cursor (the end of the customer's previous session
 * that day, -1 before the first) and a pause; moves the cursor past it. */
static void play_slot(gen *g, uint32_t idx, agenda *a, slot sl, int64_t *cursor, int *bought)
{
    customer *c = &g->cust[idx];
    int64_t earliest = *cursor < 0 ? 0 : *cursor + 60000 + sgr_below(&g->r, 1200000u);
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
    return sgr_mix64(h ^ sgr_mix64(v));
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
    uint64_t h = fold(fold(fold(sgr_mix64(c->seed), c->customers), (uint64_t)c->days),
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
    sgr_rng_seed(&g->r, cfg->seed);
    g->key_anon = sgr_splitmix64(&k);
    g->key_session = sgr_splitmix64(&k);
    g->key_order = sgr_splitmix64(&k);
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
            g->fade[seg * cfg->days + age] = exp(-age / sgp_personas[seg].visit_fade);
    sgp_build_catalogue(g);
    for (uint32_t i = 0; i < g->ncust; i++)
        sgp_customer_init(g, i);
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

    sgw_begin(g);
    for (g->day = 0; g->day < cfg->days; g->day++) {
        for (uint32_t i = 0; i < g->ncust && !g->err; i++)
            customer_day(g, i);
        if (g->err)
            return g->err;
        sgw_flush_day(g);
        if (g->out.err)
            return LS_EIO;
        if (progress)
            progress(arg, g->sum.events, g->day + 1, cfg->days);
        if (cfg->stop && *cfg->stop)
            return LS_ETIMEOUT;
    }
    sgw_finish(g);
    errno = 0;
    if (!g->out.err && (fflush(g->out.f) != 0 || ferror(g->out.f)))
        g->out.err = errno ? errno : EIO;
    return g->out.err ? LS_EIO : LS_OK;
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
        rc = sgw_truth(g, truth);
    if (rc == LS_OK) {
        summarise(g);
        if (out)
            *out = g->sum;
    }
leave:;
    /* a failed write's reason, kept over the cleanup: the events', else
     * (sgw_truth returns at once) the truth file's */
    int why = rc != LS_EIO ? 0 : g->out.err ? g->out.err : errno ? errno : EIO;
    if (g)
        gen_close(g);
    free(g);
    if (why)
        errno = why;
    return rc;
}
