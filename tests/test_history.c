/* test_history.c -- the per-customer event history (history.h) and the
 * store's use of it (store.h, schema 3):
 *   - the history encoding: a round trip of every field kind, and ugly
 *     input (every truncation, random byte flips, a newer version, a time
 *     that overflows) that must be refused or read, never crash;
 *   - the property the store is built on: the running vector equals the
 *     canonical replay of the stored history, bit for bit, whatever the
 *     arrival order and transaction split of the events;
 *   - reads as of a time equal those of a store that only got the events
 *     up to that time;
 *   - orders, dedupe by event id, alias merges and retention;
 *   - profile / score / recommend as of a time end to end, through the C
 *     client library and the CLI, against a server on loopback.
 * Random data comes from a fixed seed; every size and loop is bounded. */
#define _GNU_SOURCE
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "feature.h"
#include "history.h"
#include "leadscore/client.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"

#define HOUR 3600000LL
#define DAY 86400000LL
/* 2023-11-14T22:13:20Z, and the UTC midnight before it */
#define T0 1700000000000LL
#define D0 (T0 / DAY * DAY)
#define MAP_SIZE (256ULL << 20)

static const feature_decay DECAY = {3 * DAY, 30 * DAY};

/* ------------------------------------------------------------------ */
/* Random numbers (xorshift64*, fixed seeds)                           */
/* ------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rnd(s) >> 11) % n;
}

/* ------------------------------------------------------------------ */
/* Generated events: owned strings, turned into validated ls_events    */
/* ------------------------------------------------------------------ */

typedef struct {
    event_type type;
    int64_t ts_ms;
    char customer[24];
    char event_id[40];
    char session[8];
    char category[16];
    char product[16];
    char order_id[16];
    double value;
    int64_t quantity;
    int discounted;
    int rating;
    int birthday;
} gen_ev;

typedef struct {
    gen_ev *ev;
    size_t n, cap;
} gen_set;

static ls_str S(const char *s)
{
    return (ls_str){s, strlen(s)};
}

static gen_ev *gen_push(gen_set *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->ev = realloc(s->ev, s->cap * sizeof *s->ev);
        ck_assert_ptr_nonnull(s->ev);
    }
    gen_ev *g = &s->ev[s->n++];
    memset(g, 0, sizeof *g);
    g->quantity = 1;
    return g;
}

static void gen_free(gen_set *s)
{
    free(s->ev);
    memset(s, 0, sizeof *s);
}

/* A simple event of customer cust (strings must outlive its use). */
static gen_ev plain(const char *cust, event_type type, int64_t ts)
{
    gen_ev g;
    memset(&g, 0, sizeof g);
    snprintf(g.customer, sizeof g.customer, "%s", cust);
    g.type = type;
    g.ts_ms = ts;
    g.quantity = 1;
    return g;
}

/* The ls_event of g, validated as the server would (points into g). */
static ls_event as_event(const gen_ev *g)
{
    ls_event ev;
    const char *why = NULL;
    event_init(&ev);
    ev.type = g->type;
    ev.ts_ms = g->ts_ms;
    ev.has = EVF_TS;
    ev.customer = S(g->customer);
    ev.event_id = S(g->event_id);
    ev.session = S(g->session);
    ev.category = S(g->category);
    ev.product = S(g->product);
    ev.order_id = S(g->order_id);
    if (g->value != 0) {
        ev.value = g->value;
        ev.has |= EVF_VALUE;
    }
    if (g->quantity != 1) {
        ev.quantity = g->quantity;
        ev.has |= EVF_QUANTITY;
    }
    if (g->discounted) {
        ev.discounted = 1;
        ev.has |= EVF_DISCOUNTED;
    }
    if (g->rating) {
        ev.rating = g->rating;
        ev.has |= EVF_RATING;
    }
    if (g->birthday) {
        ev.birthday_mmdd = g->birthday;
        ev.has |= EVF_BIRTHDAY;
    }
    ck_assert_msg(event_validate(&ev, T0 + 3650 * DAY, EVENT_MAX_STR, &why) == LS_OK, "invalid event: %s", why);
    return ev;
}

static const event_type type_mix[] = {
    EV_PAGE_VIEW, EV_PAGE_VIEW, EV_PAGE_VIEW, EV_PRODUCT_VIEW, EV_PRODUCT_VIEW, EV_PRODUCT_VIEW,
    EV_SEARCH, EV_ADD_TO_CART, EV_ADD_TO_CART, EV_REMOVE_FROM_CART, EV_CHECKOUT,
    EV_PURCHASE, EV_PURCHASE, EV_PURCHASE, EV_PURCHASE, EV_REFUND, EV_REVIEW, EV_EMAIL_OPEN,
    EV_EMAIL_CLICK, EV_SMS_CLICK, EV_SIGNUP, EV_REFERRAL, EV_SHARE, EV_SUPPORT_TICKET, EV_PROFILE};

/* nev events of customer cust between start and start + span, on whole
 * hours (so times repeat), some at the very time of the previous one,
 * about one in ten an exact resend of an earlier one. */
static void gen_customer(gen_set *s, uint64_t *r, const char *cust, int64_t start, int64_t span, int nev)
{
    size_t first = s->n;
    for (int i = 0; i < nev; i++) {
        size_t prior = s->n - first;
        if (prior > 0 && below(r, 10) == 0) {
            gen_ev copy = s->ev[first + below(r, (uint32_t)prior)];
            *gen_push(s) = copy;
            continue;
        }
        gen_ev *g = gen_push(s);
        snprintf(g->customer, sizeof g->customer, "%s", cust);
        g->type = type_mix[below(r, sizeof type_mix / sizeof type_mix[0])];
        if (prior > 0 && below(r, 8) == 0)
            g->ts_ms = s->ev[s->n - 2].ts_ms;
        else
            g->ts_ms = start + (int64_t)below(r, (uint32_t)(span / HOUR)) * HOUR;
        if (below(r, 2))
            snprintf(g->event_id, sizeof g->event_id, "%s-e%d", cust, i);
        if (below(r, 4))
            snprintf(g->session, sizeof g->session, "s%u", below(r, 6));
        if (below(r, 2))
            snprintf(g->category, sizeof g->category, "cat%u", below(r, 11));
        switch (g->type) {
        case EV_PURCHASE:
            if (below(r, 5))
                snprintf(g->order_id, sizeof g->order_id, "o%u", below(r, 4));
            snprintf(g->product, sizeof g->product, "p%u", below(r, 9));
            g->value = (1 + below(r, 20000)) / 100.0;
            g->quantity = 1 + below(r, 3);
            g->discounted = below(r, 4) == 0;
            break;
        case EV_PRODUCT_VIEW:
            snprintf(g->product, sizeof g->product, "p%u", below(r, 9));
            break;
        case EV_REFUND:
        case EV_ADD_TO_CART:
        case EV_REMOVE_FROM_CART:
        case EV_CHECKOUT:
            g->value = (1 + below(r, 20000)) / 100.0;
            break;
        case EV_REVIEW:
            g->rating = (int)below(r, 6); /* 0: a review without stars */
            break;
        case EV_PROFILE:
            g->birthday = (1 + (int)below(r, 12)) * 100 + 1 + (int)below(r, 28);
            break;
        case EV_SIGNUP: /* a birthday may come with any event: the history keeps it too */
            if (below(r, 2))
                g->birthday = (1 + (int)below(r, 12)) * 100 + 1 + (int)below(r, 28);
            break;
        default:
            break;
        }
    }
}

/* ncust customers "<prefix>NNN"; cust_start[i] is where customer i's
 * events begin in s (cust_start[ncust] = s->n). */
static void gen_customers(gen_set *s, uint64_t *r, const char *prefix, int ncust, int max_events, int64_t span,
                          size_t *cust_start)
{
    for (int c = 0; c < ncust; c++) {
        char id[24];
        snprintf(id, sizeof id, "%s%03d", prefix, c);
        cust_start[c] = s->n;
        int64_t start = T0 + (int64_t)below(r, (uint32_t)(span / 2 / HOUR)) * HOUR;
        gen_customer(s, r, id, start, span / 2, 1 + (int)below(r, (uint32_t)max_events));
    }
    cust_start[ncust] = s->n;
}

/* What the events of one customer (s->ev[from, to)) with ts <= upto add up
 * to, counted independently of the store: an event id counts once, a
 * purchase order (lines with one order id) once. */
typedef struct {
    uint32_t count[EV_TYPE_COUNT];
    uint32_t lines, units;
    double spend;
    int64_t first_ms;
} tally;

static int same_id_before(const gen_set *s, size_t from, size_t i)
{
    for (size_t j = from; j < i; j++)
        if (strcmp(s->ev[j].event_id, s->ev[i].event_id) == 0)
            return 1;
    return 0;
}

static void tally_of(const gen_set *s, size_t from, size_t to, int64_t upto, tally *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = from; i < to; i++) {
        const gen_ev *g = &s->ev[i];
        if (g->ts_ms > upto || (g->event_id[0] && same_id_before(s, from, i)))
            continue;
        if (t->first_ms == 0 || g->ts_ms < t->first_ms)
            t->first_ms = g->ts_ms;
        if (g->type != EV_PURCHASE) {
            t->count[g->type]++;
            continue;
        }
        t->lines++;
        t->units += (uint32_t)g->quantity;
        t->spend += g->value;
        int new_order = 1;
        for (size_t j = from; j < i && g->order_id[0] && new_order; j++) {
            const gen_ev *o = &s->ev[j];
            if (o->type == EV_PURCHASE && o->ts_ms <= upto && strcmp(o->order_id, g->order_id) == 0)
                new_order = 0;
        }
        t->count[EV_PURCHASE] += (uint32_t)new_order;
    }
}

static void assert_tally(const ls_features *f, const tally *t, const char *id)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++)
        ck_assert_msg(f->count[i] == t->count[i], "%s: %s count %u, want %u", id, event_type_name((event_type)i),
                      f->count[i], t->count[i]);
    ck_assert_msg(f->purchase_lines == t->lines, "%s: purchase_lines %u, want %u", id, f->purchase_lines, t->lines);
    ck_assert_msg(f->purchase_units == t->units, "%s: purchase_units %u, want %u", id, f->purchase_units, t->units);
    ck_assert_msg(f->spend >= t->spend - 1e-6 * (1 + t->spend) && f->spend <= t->spend + 1e-6 * (1 + t->spend),
                  "%s: spend %.6f, want %.6f", id, f->spend, t->spend);
    ck_assert_msg(f->first_seen_ms == t->first_ms, "%s: first seen %lld, want %lld", id, (long long)f->first_seen_ms,
                  (long long)t->first_ms);
}

/* ------------------------------------------------------------------ */
/* Stores                                                              */
/* ------------------------------------------------------------------ */

static store *open_store(const char *dir, int history_days)
{
    char err[512] = "";
    store_options opt = {.map_size = MAP_SIZE, .no_sync = 1, .history_days = history_days};
    store *s = NULL;
    int rc = store_open(&s, dir, &opt, &DECAY, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "store_open: %d %s", rc, err);
    return s;
}

/* Adds events order[0, n) as the writer does: transactions of 1 ..
 * max_txn events (sizes drawn from r), the held record written back at
 * the end of each.  *dups counts the events the history refused. */
static void feed(store *s, const gen_ev *const *order, size_t n, uint64_t *r, uint32_t max_txn, size_t *dups)
{
    store_held held;
    size_t i = 0, refused = 0;
    store_held_init(&held);
    while (i < n) {
        store_wtxn *w = NULL;
        size_t k = 1 + below(r, max_txn);
        ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
        held.open = 0; /* as the writer: nothing held at the start of a txn */
        for (size_t j = 0; j < k && i < n; j++, i++) {
            ls_event ev = as_event(order[i]);
            int dup = -1;
            ck_assert_int_eq(store_wtxn_add_event(w, &held, &ev, &dup), LS_OK);
            ck_assert(dup == 0 || dup == 1);
            refused += (size_t)dup;
        }
        ck_assert_int_eq(store_wtxn_put_back(w, &held), LS_OK);
        ck_assert_int_eq(store_write_commit(&w), LS_OK);
    }
    store_held_free(&held);
    if (dups)
        *dups = refused;
}

/* One event, in a transaction of its own; returns dup. */
static int add_one(store *s, const gen_ev *g)
{
    const gen_ev *one[1] = {g};
    uint64_t r = 1;
    size_t dups = 0;
    feed(s, one, 1, &r, 1, &dups);
    return (int)dups;
}

static size_t encode(const ls_features *f, uint8_t *buf)
{
    size_t n = 0;
    ck_assert_int_eq(feature_encode(f, buf, FEATURE_MAX_ENCODED, &n), LS_OK);
    return n;
}

/* Fails naming the first differing byte of two encoded records. */
static void assert_same_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, const char *what,
                              const char *id)
{
    size_t at = 0;
    while (at < na && at < nb && a[at] == b[at])
        at++;
    ck_assert_msg(na == nb && at == na, "%s: %s: records differ (%zu and %zu bytes, first at byte %zu)", what, id,
                  na, nb, at);
}

static void assert_same_record(const ls_features *a, const ls_features *b, const char *what, const char *id)
{
    uint8_t x[FEATURE_MAX_ENCODED], y[FEATURE_MAX_ENCODED];
    size_t nx = encode(a, x), ny = encode(b, y);
    if (nx == ny && memcmp(x, y, nx) == 0)
        return;
    ck_assert_msg(a->count[EV_PURCHASE] == b->count[EV_PURCHASE] && a->purchase_lines == b->purchase_lines &&
                      a->purchase_days == b->purchase_days,
                  "%s: %s: orders %u/%u, lines %u/%u, days %u/%u", what, id, a->count[EV_PURCHASE],
                  b->count[EV_PURCHASE], a->purchase_lines, b->purchase_lines, a->purchase_days, b->purchase_days);
    assert_same_bytes(x, nx, y, ny, what, id);
}

/* The running record of id (store_reader_get) must be, bit for bit, the
 * replay of its stored history; the record is copied into *out. */
static void assert_running_is_replay(store_reader *r, const char *id, ls_features *out)
{
    history h;
    ls_features f, g;
    history_init(&h);
    ck_assert_int_eq(store_reader_get(r, id, strlen(id), &f), LS_OK);
    ck_assert_int_eq(store_reader_get_history(r, id, strlen(id), &h), LS_OK);
    ck_assert_int_eq(history_replay(&h, INT64_MAX, &DECAY, &g), LS_OK);
    assert_same_record(&f, &g, "running vector vs replay of the stored history", id);
    history_free(&h);
    if (out)
        *out = f;
}

static ls_features record_of(store *s, const char *id)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    assert_running_is_replay(r, id, &f);
    store_reader_end(r);
    store_reader_close(&r);
    return f;
}

/* ------------------------------------------------------------------ */
/* Arrival orders                                                      */
/* ------------------------------------------------------------------ */

static int by_time(const void *x, const void *y)
{
    const gen_ev *a = *(const gen_ev *const *)x, *b = *(const gen_ev *const *)y;
    if (a->ts_ms != b->ts_ms)
        return a->ts_ms < b->ts_ms ? -1 : 1;
    return a < b ? -1 : a > b; /* generation order among equals */
}

enum { ARRIVE_BY_TIME, ARRIVE_BY_CUSTOMER, ARRIVE_SHUFFLED, ARRIVE_REVERSED, ARRIVE_KINDS };

/* Pointers to s's events with ts <= upto, in one arrival order. */
static const gen_ev **arrival(const gen_set *s, int kind, int64_t upto, uint64_t *r, size_t *n)
{
    const gen_ev **order = malloc((s->n ? s->n : 1) * sizeof *order);
    ck_assert_ptr_nonnull(order);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->ev[i].ts_ms <= upto)
            order[k++] = &s->ev[i];
    if (kind == ARRIVE_BY_TIME || kind == ARRIVE_REVERSED)
        qsort(order, k, sizeof *order, by_time);
    if (kind == ARRIVE_REVERSED)
        for (size_t i = 0; i < k / 2; i++) {
            const gen_ev *t = order[i];
            order[i] = order[k - 1 - i];
            order[k - 1 - i] = t;
        }
    if (kind == ARRIVE_SHUFFLED)
        for (size_t i = k; i > 1; i--) {
            size_t j = below(r, (uint32_t)i);
            const gen_ev *t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    *n = k;
    return order;
}

/* ================================================================== */
/* The encoding                                                         */
/* ================================================================== */

/* A history with every field kind: value, quantity (also 0 and negative
 * as a stored value may hold), event ids, sessions, categories, products,
 * orders, ratings, birthdays, equal times, long strings; and a `before`. */
static void rich_history(history *h)
{
    static char long_cat[EVENT_MAX_STR + 1];
    memset(long_cat, 'k', EVENT_MAX_STR);
    history_init(h);
    gen_ev evs[12];
    evs[0] = plain("rich", EV_PAGE_VIEW, T0);
    snprintf(evs[0].session, sizeof evs[0].session, "s1");
    evs[1] = plain("rich", EV_PRODUCT_VIEW, T0 + 1000);
    snprintf(evs[1].category, sizeof evs[1].category, "shoes");
    snprintf(evs[1].product, sizeof evs[1].product, "sku-1");
    snprintf(evs[1].event_id, sizeof evs[1].event_id, "e-1");
    evs[2] = plain("rich", EV_PURCHASE, T0 + 1000);
    evs[2].value = 12.5;
    evs[2].quantity = 3;
    evs[2].discounted = 1;
    snprintf(evs[2].order_id, sizeof evs[2].order_id, "ord-9");
    snprintf(evs[2].product, sizeof evs[2].product, "sku-1");
    snprintf(evs[2].category, sizeof evs[2].category, "shoes");
    evs[3] = evs[2];
    evs[3].value = 7.25;
    evs[3].quantity = 1;
    evs[3].discounted = 0;
    evs[4] = plain("rich", EV_REVIEW, T0 + 5 * DAY);
    evs[4].rating = 2;
    evs[5] = plain("rich", EV_PROFILE, T0 + 6 * DAY);
    evs[5].birthday = 1231;
    evs[6] = plain("rich", EV_REFUND, T0 + 7 * DAY);
    evs[6].value = 3;
    snprintf(evs[6].order_id, sizeof evs[6].order_id, "ord-9");
    evs[7] = plain("rich", EV_ADD_TO_CART, T0 + 8 * DAY);
    evs[7].value = 1e9;
    evs[7].quantity = 1000000;
    evs[8] = plain("rich", EV_REMOVE_FROM_CART, T0 + 8 * DAY);
    evs[8].value = 0.01;
    evs[9] = plain("rich", EV_SUPPORT_TICKET, T0 + 9 * DAY);
    evs[10] = plain("rich", EV_SEARCH, T0 + 400 * DAY);
    snprintf(evs[10].session, sizeof evs[10].session, "s2");
    snprintf(evs[10].event_id, sizeof evs[10].event_id, "e-2");
    evs[11] = plain("rich", EV_PROFILE, T0 + 400 * DAY);
    for (int i = 0; i < 12; i++) {
        ls_event ev = as_event(&evs[i]);
        int dup = -1;
        uint64_t ident = ev.event_id.len ? history_ident(ev.event_id.ptr, ev.event_id.len) : 0;
        if (i == 11) /* a string at the longest, only once in the history */
            ev.category = (ls_str){long_cat, EVENT_MAX_STR};
        ck_assert_int_eq(history_add(h, &ev, ident, &dup, NULL), LS_OK);
        ck_assert_int_eq(dup, 0);
    }
    ck_assert_uint_eq(h->n, 12);
    /* a before aggregate: two older events */
    feature_init(&h->before);
    gen_ev old = plain("rich", EV_PURCHASE, T0 - 90 * DAY);
    old.value = 99;
    ls_event ev = as_event(&old);
    feature_apply(&h->before, &ev, &DECAY);
    old = plain("rich", EV_EMAIL_OPEN, T0 - 80 * DAY);
    ev = as_event(&old);
    feature_apply(&h->before, &ev, &DECAY);
    feature_round(&h->before);
    h->has_before = 1;
    /* and the identities of three folded events */
    static const uint64_t folded[] = {7, 1234567, 0xfeedfacecafebeefULL};
    h->folded = malloc(sizeof folded);
    ck_assert_ptr_nonnull(h->folded);
    memcpy(h->folded, folded, sizeof folded);
    h->nfolded = h->folded_cap = 3;
    /* and what before counted: the old purchase's day, no order id */
    h->fold_days.v = malloc(sizeof *h->fold_days.v);
    ck_assert_ptr_nonnull(h->fold_days.v);
    h->fold_days.v[0] = (uint64_t)((T0 - 90 * DAY) / DAY); /* kind 0: a purchase day */
    h->fold_days.n = h->fold_days.cap = 1;
}

static uint8_t *encode_history(const history *h, size_t *n)
{
    size_t cap = history_encoded_size(h);
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(history_encode(h, buf, cap, n), LS_OK);
    ck_assert_uint_le(*n, cap);
    return buf;
}

static int same_str(const history *a, uint32_t ra, const history *b, uint32_t rb)
{
    ls_str x = history_string(a, ra), y = history_string(b, rb);
    return x.len == y.len && (x.len == 0 || memcmp(x.ptr, y.ptr, x.len) == 0);
}

static void assert_same_history(const history *a, const history *b)
{
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_int_eq(a->has_before, b->has_before);
    ck_assert_uint_eq(a->nfolded, b->nfolded);
    for (size_t i = 0; i < a->nfolded; i++)
        ck_assert_uint_eq(a->folded[i], b->folded[i]);
    if (a->has_before)
        assert_same_record(&a->before, &b->before, "before", "history");
    ck_assert_int_eq(a->fold_sets_lost, b->fold_sets_lost);
    ck_assert_uint_eq(a->fold_days.n, b->fold_days.n);
    for (size_t i = 0; i < a->fold_days.n; i++)
        ck_assert_uint_eq(a->fold_days.v[i], b->fold_days.v[i]);
    ck_assert_uint_eq(a->fold_orders.n, b->fold_orders.n);
    for (size_t i = 0; i < a->fold_orders.n; i++)
        ck_assert_uint_eq(a->fold_orders.v[i], b->fold_orders.v[i]);
    for (size_t i = 0; i < a->n; i++) {
        const history_event *x = &a->ev[i], *y = &b->ev[i];
        ck_assert_int_eq(x->ts_ms, y->ts_ms);
        ck_assert_uint_eq(x->ident, y->ident);
        ck_assert(memcmp(&x->value, &y->value, sizeof x->value) == 0);
        ck_assert_int_eq(x->quantity, y->quantity);
        ck_assert_uint_eq(x->session_hash, y->session_hash);
        ck_assert_uint_eq(x->birthday_mmdd, y->birthday_mmdd);
        ck_assert_uint_eq(x->type, y->type);
        ck_assert_uint_eq(x->rating, y->rating);
        ck_assert_uint_eq(x->bits, y->bits);
        ck_assert(same_str(a, x->category, b, y->category));
        ck_assert(same_str(a, x->product, b, y->product));
        ck_assert(same_str(a, x->order, b, y->order));
    }
}

START_TEST(encoding_round_trips_every_field)
{
    history h, g;
    size_t n = 0, m = 0;
    rich_history(&h);
    history_init(&g);
    /* the events are held in time order, equal times by content */
    for (size_t i = 1; i < h.n; i++)
        ck_assert_int_le(h.ev[i - 1].ts_ms, h.ev[i].ts_ms);
    ck_assert_uint_eq(h.nstr, 4); /* shoes, sku-1, ord-9 and the long one, each once */
    uint8_t *buf = encode_history(&h, &n);
    ck_assert_uint_eq(buf[0], HISTORY_VERSION);
    ck_assert_uint_eq(buf[1], 7); /* before, folded identities, before's sets */
    ck_assert_int_eq(history_decode(&g, buf, n), LS_OK);
    assert_same_history(&h, &g);
    ck_assert_uint_eq(g.nstr, h.nstr);
    /* and encodes to the same bytes */
    uint8_t *again = encode_history(&g, &m);
    ck_assert_uint_eq(m, n);
    ck_assert_mem_eq(again, buf, n);
    /* the replays agree */
    ls_features a, b;
    ck_assert_int_eq(history_replay(&h, INT64_MAX, &DECAY, &a), LS_OK);
    ck_assert_int_eq(history_replay(&g, INT64_MAX, &DECAY, &b), LS_OK);
    assert_same_record(&a, &b, "replay after a round trip", "rich");
    ck_assert_uint_eq(a.count[EV_PURCHASE], 2); /* before's one + ord-9 */
    ck_assert_uint_eq(a.purchase_lines, 3);
    ck_assert_uint_eq(a.purchase_units, 1 + 3 + 1);
    ck_assert_uint_eq(a.birthday_mmdd, 1231);
    /* a decode replaces what the history held (string table included) */
    ck_assert_int_eq(history_decode(&g, buf, n), LS_OK);
    assert_same_history(&h, &g);
    ck_assert_uint_eq(g.nstr, h.nstr);
    /* a before without its sets (a store from before them) is written as
     * version 2 was, and read back as such */
    h.fold_sets_lost = 1;
    h.fold_days.n = 0;
    free(again);
    again = encode_history(&h, &m);
    ck_assert_uint_eq(again[0], 2);
    ck_assert_uint_eq(again[1], 3);
    ck_assert_int_eq(history_decode(&g, again, m), LS_OK);
    ck_assert_int_eq(g.fold_sets_lost, 1);
    assert_same_history(&h, &g);

    /* an empty history, with and without before */
    history e;
    history_init(&e);
    free(buf);
    buf = encode_history(&e, &n);
    ck_assert_int_eq(history_decode(&g, buf, n), LS_OK);
    ck_assert_uint_eq(g.n, 0);
    ck_assert_int_eq(g.has_before, 0);
    ls_features none;
    ck_assert_int_eq(history_replay(&g, INT64_MAX, &DECAY, &none), LS_OK);
    ck_assert(feature_empty(&none));
    e.has_before = 1;
    e.before = h.before;
    free(buf);
    buf = encode_history(&e, &n);
    ck_assert_int_eq(history_decode(&g, buf, n), LS_OK);
    ck_assert_int_eq(g.has_before, 1);
    assert_same_record(&g.before, &h.before, "before only", "empty");
    free(buf);
    free(again);
    history_free(&e);
    history_free(&g);
    history_free(&h);
}
END_TEST

START_TEST(every_truncation_is_a_parse_error)
{
    history h, g;
    size_t n = 0;
    rich_history(&h);
    history_init(&g);
    uint8_t *buf = encode_history(&h, &n);
    for (size_t len = 0; len < n; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees a read past the end */
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, buf, len);
        int rc = history_decode(&g, copy, len);
        free(copy);
        ck_assert_msg(rc == LS_EPARSE, "length %zu of %zu: got %d", len, n, rc);
    }
    uint8_t *longer = calloc(1, n + 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, buf, n);
    ck_assert_int_eq(history_decode(&g, longer, n + 1), LS_EPARSE);
    /* a newer format is refused as such, a version 0 is corrupt */
    memcpy(longer, buf, n);
    longer[0] = HISTORY_VERSION + 1;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_EVERSION);
    longer[0] = 0xff;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_EVERSION);
    longer[0] = 0;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_EPARSE);
    /* a before record of a newer feature format too */
    longer[0] = HISTORY_VERSION;
    ck_assert_uint_eq(longer[1] & 1, 1);
    size_t at = 2; /* the before record follows its length varint */
    while (at < n && (longer[at] & 0x80))
        at++;
    at++;
    ck_assert_uint_eq(longer[at], FEATURE_RECORD_VERSION);
    longer[at] = FEATURE_RECORD_VERSION + 1;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_EVERSION);
    /* a negative time in before (its last_seen's sign bit) is corrupt */
    longer[at] = FEATURE_RECORD_VERSION;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_OK);
    longer[at + 1 + 1 + 2 + 8 + 8 + 7] ^= 0x80;
    ck_assert_int_eq(history_decode(&g, longer, n), LS_EPARSE);
    free(longer);
    free(buf);
    history_free(&g);
    history_free(&h);
}
END_TEST

/* Decodes a fuzzed buffer; when it is read, everything done with a
 * history must work on it without a crash. */
static void exercise(history *g, const uint8_t *buf, size_t len)
{
    int rc = history_decode(g, buf, len);
    ck_assert_msg(rc == LS_OK || rc == LS_EPARSE || rc == LS_EVERSION, "decode gave %d", rc);
    if (rc != LS_OK)
        return;
    ls_features f;
    uint8_t rec[FEATURE_MAX_ENCODED];
    ck_assert_int_eq(history_replay(g, INT64_MAX, &DECAY, &f), LS_OK);
    encode(&f, rec);
    if (g->n) {
        ck_assert_int_eq(history_replay(g, g->ev[g->n / 2].ts_ms, &DECAY, &f), LS_OK);
        encode(&f, rec);
    }
    size_t n = 0;
    uint8_t *again = encode_history(g, &n);
    ck_assert_int_eq(history_decode(g, again, n), LS_OK);
    free(again);
    gen_ev late = plain("fuzz", EV_PURCHASE, T0 + 1);
    snprintf(late.order_id, sizeof late.order_id, "ord-9");
    ls_event ev = as_event(&late);
    int dup;
    ck_assert_int_eq(history_add(g, &ev, 0, &dup, NULL), LS_OK);
    ck_assert_int_eq(history_replay(g, INT64_MAX, &DECAY, &f), LS_OK);
    size_t folded = 0;
    ck_assert_int_eq(history_fold(g, 30 * DAY, 4, &DECAY, &folded), LS_OK);
}

START_TEST(random_byte_flips_never_crash)
{
    history h, g;
    size_t n = 0;
    uint64_t r = 0x5eed0001;
    int ok = 0;
    rich_history(&h);
    history_init(&g);
    uint8_t *buf = encode_history(&h, &n);
    uint8_t *copy = malloc(n);
    ck_assert_ptr_nonnull(copy);
    /* every byte with its low bit, its sign bit and all its bits flipped
     * (a sign bit in a time is what overflows arithmetic) ... */
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t at = 0; at < n; at++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(copy, buf, n);
            copy[at] ^= masks[k];
            exercise(&g, copy, n);
        }
    /* ... then random flips of one to three bytes */
    for (int round = 0; round < 4000; round++) {
        memcpy(copy, buf, n);
        int flips = 1 + (int)below(&r, 3);
        for (int k = 0; k < flips; k++)
            copy[below(&r, (uint32_t)n)] ^= (uint8_t)(1 + below(&r, 255));
        exercise(&g, copy, n);
        ok += g.n > 0;
    }
    ck_assert_int_gt(ok, 0); /* some flips (in values, say) still read */
    free(copy);
    free(buf);
    history_free(&g);
    history_free(&h);
}
END_TEST

/* Two events, the second's time delta so large the sum overflows int64:
 * corrupt, and no signed overflow on the way (UBSan). */
START_TEST(a_time_delta_that_overflows_is_a_parse_error)
{
    uint8_t buf[64];
    size_t n = 0;
    history g;
    history_init(&g);
    buf[n++] = HISTORY_VERSION;
    buf[n++] = 0;      /* no before */
    buf[n++] = 0;      /* no strings */
    buf[n++] = 2;      /* two events */
    buf[n++] = 0x80 | 0x68; /* ts 1000 */
    buf[n++] = 0x07;
    buf[n++] = EV_PAGE_VIEW;
    buf[n++] = 0;
    for (int i = 0; i < 8; i++) /* delta INT64_MAX: 63 one bits */
        buf[n++] = 0xff;
    buf[n++] = 0x7f;
    buf[n++] = EV_PAGE_VIEW;
    buf[n++] = 0;
    ck_assert_int_eq(history_decode(&g, buf, n), LS_EPARSE);
    /* a delta of 2^64 - 1 (a negative step) as well */
    n = 8;
    for (int i = 0; i < 9; i++)
        buf[n++] = 0xff;
    buf[n++] = 0x01;
    buf[n++] = EV_PAGE_VIEW;
    buf[n++] = 0;
    ck_assert_int_eq(history_decode(&g, buf, n), LS_EPARSE);
    /* and the same buffer with a sane delta reads */
    n = 8;
    buf[n++] = 5;
    buf[n++] = EV_PAGE_VIEW;
    buf[n++] = 0;
    ck_assert_int_eq(history_decode(&g, buf, n), LS_OK);
    ck_assert_uint_eq(g.n, 2);
    ck_assert_int_eq(g.ev[1].ts_ms, 1005);
    history_free(&g);
}
END_TEST

/* A hot customer: thousands of distinct order ids and a few hundred
 * products go through the string table's hash index (past 32 strings);
 * every string is kept once, refs resolve to their own text, and an
 * encode/decode round trip (which re-interns them all) keeps them. */
START_TEST(a_big_string_table_interns_each_string_once)
{
    history h, back;
    history_init(&h);
    history_init(&back);
    char order[32], product[32];
    for (int i = 0; i < 3000; i++) {
        ls_event e;
        event_init(&e);
        snprintf(order, sizeof order, "o-%d", i);
        snprintf(product, sizeof product, "p-%d", i % 300);
        e.customer = (ls_str){"hot", 3};
        e.type = EV_PURCHASE;
        e.ts_ms = 1700000000000 + (int64_t)((i * 7919) % 3000) * 1000; /* out of order */
        e.value = 10;
        e.order_id = (ls_str){order, strlen(order)};
        e.product = (ls_str){product, strlen(product)};
        e.category = (ls_str){"shoes", 5};
        int dup = 0;
        size_t at;
        ck_assert_int_eq(history_add(&h, &e, 0, &dup, &at), LS_OK);
        ck_assert_int_eq(dup, 0);
        if (i % 500 == 0) { /* the same strings again add nothing */
            size_t before = h.nstr;
            ck_assert_int_eq(history_add(&h, &e, 0, &dup, &at), LS_OK);
            ck_assert_uint_eq(h.nstr, before);
        }
    }
    ck_assert_uint_eq(h.nstr, 3000 + 300 + 1);
    for (size_t i = 0; i < h.n; i++) {
        ls_str o = history_string(&h, h.ev[i].order), p = history_string(&h, h.ev[i].product);
        ck_assert(o.len > 2 && memcmp(o.ptr, "o-", 2) == 0);
        ck_assert(p.len > 2 && memcmp(p.ptr, "p-", 2) == 0);
        ck_assert_int_eq(atoi(o.ptr + 2) % 300, atoi(p.ptr + 2)); /* each event kept its own pair */
    }
    size_t cap = history_encoded_size(&h), len;
    uint8_t *buf = malloc(cap);
    ck_assert_int_eq(history_encode(&h, buf, cap, &len), LS_OK);
    ck_assert_int_eq(history_decode(&back, buf, len), LS_OK);
    ck_assert_uint_eq(back.nstr, h.nstr);
    ck_assert_uint_eq(back.n, h.n);
    free(buf);
    history_free(&h);
    history_free(&back);
}
END_TEST

/* ================================================================== */
/* The running vector is the replay, whatever the arrival order         */
/* ================================================================== */

#define PROP_CUSTOMERS 200
#define PROP_EVENTS 50

START_TEST(running_vector_equals_replay_in_every_arrival_order)
{
    gen_set set = {0};
    size_t start[PROP_CUSTOMERS + 1];
    uint64_t r = 0x1234567;
    gen_customers(&set, &r, "c", PROP_CUSTOMERS, PROP_EVENTS, 120 * DAY, start);
    uint8_t(*want)[FEATURE_MAX_ENCODED] = calloc(PROP_CUSTOMERS, FEATURE_MAX_ENCODED);
    size_t *want_len = calloc(PROP_CUSTOMERS, sizeof *want_len);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(want_len);
    size_t want_dups = 0;
    for (int kind = 0; kind < ARRIVE_KINDS; kind++) {
        char dir[512];
        size_t n = 0, dups = 0;
        tu_tempdir(dir, sizeof dir);
        store *s = open_store(dir, 0);
        const gen_ev **order = arrival(&set, kind, INT64_MAX, &r, &n);
        ck_assert_uint_eq(n, set.n);
        feed(s, order, n, &r, kind == ARRIVE_BY_CUSTOMER ? 7 : 60, &dups);
        if (kind == 0)
            want_dups = dups;
        ck_assert_uint_eq(dups, want_dups); /* the same events are refused */
        ck_assert_uint_gt(dups, 0);

        store_reader *rd = NULL;
        ck_assert_int_eq(store_reader_open(s, &rd), LS_OK);
        ck_assert_int_eq(store_reader_begin(rd), LS_OK);
        for (int c = 0; c < PROP_CUSTOMERS; c++) {
            char id[24], what[64];
            ls_features f;
            tally t;
            uint8_t got[FEATURE_MAX_ENCODED];
            snprintf(id, sizeof id, "c%03d", c);
            assert_running_is_replay(rd, id, &f);
            tally_of(&set, start[c], start[c + 1], INT64_MAX, &t);
            assert_tally(&f, &t, id);
            size_t len = encode(&f, got);
            if (kind == 0) {
                memcpy(want[c], got, len);
                want_len[c] = len;
            }
            snprintf(what, sizeof what, "arrival order %d vs 0", kind);
            assert_same_bytes(got, len, want[c], want_len[c], what, id);
        }
        store_stats st;
        ck_assert_int_eq(store_stat(s, &st), LS_OK);
        ck_assert_uint_eq(st.customers, PROP_CUSTOMERS);
        ck_assert_uint_eq(tu_customers_with_history(s), PROP_CUSTOMERS);
        store_reader_end(rd);
        store_reader_close(&rd);
        store_close(&s);
        free(order);
        tu_rmtree(dir);
    }
    free(want);
    free(want_len);
    gen_free(&set);
}
END_TEST

/* ================================================================== */
/* Reads as of a time                                                   */
/* ================================================================== */

#define ASOF_CUSTOMERS 120

typedef struct {
    int n;
    char ids[ASOF_CUSTOMERS + 8][24];
    uint8_t rec[ASOF_CUSTOMERS + 8][FEATURE_MAX_ENCODED];
    size_t len[ASOF_CUSTOMERS + 8];
} scan_log;

static int log_visit(void *arg, const char *id, size_t len, const ls_features *f)
{
    scan_log *log = arg;
    ck_assert_int_lt(log->n, ASOF_CUSTOMERS + 8);
    ck_assert_uint_lt(len, sizeof log->ids[0]);
    memcpy(log->ids[log->n], id, len);
    log->ids[log->n][len] = '\0';
    log->len[log->n] = encode(f, log->rec[log->n]);
    log->n++;
    return 0;
}

START_TEST(asof_equals_a_store_that_stopped_then)
{
    gen_set set = {0};
    size_t start[ASOF_CUSTOMERS + 1];
    uint64_t r = 0xa50f;
    gen_customers(&set, &r, "a", ASOF_CUSTOMERS, 40, 60 * DAY, start);
    char dir_all[512];
    tu_tempdir(dir_all, sizeof dir_all);
    store *all = open_store(dir_all, 0);
    size_t n = 0;
    const gen_ev **order = arrival(&set, ARRIVE_SHUFFLED, INT64_MAX, &r, &n);
    feed(all, order, n, &r, 50, NULL);
    free(order);

    /* between hours; exactly on an hour (events at T are in); before all */
    const int64_t times[] = {T0 + 14 * DAY + 30 * 60000, T0 + 20 * DAY, T0 + 35 * DAY, T0 - 1};
    for (size_t ti = 0; ti < sizeof times / sizeof times[0]; ti++) {
        int64_t T = times[ti];
        char dir[512];
        tu_tempdir(dir, sizeof dir);
        store *upto = open_store(dir, 0);
        order = arrival(&set, ARRIVE_SHUFFLED, T, &r, &n);
        feed(upto, order, n, &r, 50, NULL);
        free(order);

        store_reader *ra = NULL, *rb = NULL;
        ck_assert_int_eq(store_reader_open(upto, &ra), LS_OK);
        ck_assert_int_eq(store_reader_open(all, &rb), LS_OK);
        ck_assert_int_eq(store_reader_begin(ra), LS_OK);
        ck_assert_int_eq(store_reader_begin(rb), LS_OK);
        int known = 0, middle = 0, later = 0;
        for (int c = 0; c < ASOF_CUSTOMERS; c++) {
            char id[24];
            ls_features fa, fb, fnow;
            tally t;
            snprintf(id, sizeof id, "a%03d", c);
            tally_of(&set, start[c], start[c + 1], T, &t);
            int rca = store_reader_get_asof(ra, id, strlen(id), T, &fa);
            int rcb = store_reader_get_asof(rb, id, strlen(id), T, &fb);
            ck_assert_msg(rca == rcb, "%s as of %lld: %d in the store that stopped, %d in the full one", id,
                          (long long)T, rca, rcb);
            if (t.first_ms == 0) { /* first seen after T */
                ck_assert_int_eq(rcb, LS_ENOTFOUND);
                ck_assert(feature_empty(&fb));
                ck_assert_int_eq(store_reader_get(rb, id, strlen(id), &fnow), LS_OK);
                later++;
                continue;
            }
            ck_assert_int_eq(rca, LS_OK);
            known++;
            assert_same_record(&fa, &fb, "as of T: stopped store vs full store", id);
            assert_tally(&fb, &t, id);
            ck_assert_int_le(fb.last_seen_ms, T);
            ck_assert_int_eq(store_reader_get(rb, id, strlen(id), &fnow), LS_OK);
            middle += fnow.last_seen_ms > T; /* T in the middle of its history */
            /* in the stopped store as of T is the running record */
            ck_assert_int_eq(store_reader_get(ra, id, strlen(id), &fnow), LS_OK);
            assert_same_record(&fa, &fnow, "as of T vs running, stopped store", id);
        }
        if (T > T0) {
            ck_assert_int_gt(middle, 10);
            ck_assert_int_gt(known, 10);
        } else {
            ck_assert_int_eq(known, 0);
        }
        ck_assert_int_eq(known + later, ASOF_CUSTOMERS);

        /* scanning as of T visits the same customers with the same records */
        static scan_log la, lb;
        memset(&la, 0, sizeof la);
        memset(&lb, 0, sizeof lb);
        ck_assert_int_eq(store_reader_scan_asof(ra, T, log_visit, &la), LS_OK);
        ck_assert_int_eq(store_reader_scan_asof(rb, T, log_visit, &lb), LS_OK);
        ck_assert_int_eq(la.n, known);
        ck_assert_int_eq(lb.n, known);
        for (int i = 0; i < la.n; i++) {
            ck_assert_str_eq(la.ids[i], lb.ids[i]);
            assert_same_bytes(la.rec[i], la.len[i], lb.rec[i], lb.len[i], "scan as of T", la.ids[i]);
        }
        store_reader_end(ra);
        store_reader_end(rb);
        store_reader_close(&ra);
        store_reader_close(&rb);
        store_close(&upto);
        tu_rmtree(dir);
    }
    store_close(&all);
    tu_rmtree(dir_all);
    gen_free(&set);
}
END_TEST

/* ================================================================== */
/* Orders                                                               */
/* ================================================================== */

static gen_ev line(const char *cust, int64_t ts, const char *order, double value, int64_t quantity)
{
    gen_ev g = plain(cust, EV_PURCHASE, ts);
    snprintf(g.order_id, sizeof g.order_id, "%s", order);
    g.value = value;
    g.quantity = quantity;
    return g;
}

static double value_of(const ls_features *f, const char *name, int64_t now)
{
    int id = feature_lookup(name);
    ck_assert_msg(id >= 0, "no feature %s", name);
    feature_ctx ctx = {now, DECAY};
    return feature_value(f, id, &ctx);
}

START_TEST(purchase_lines_of_one_order_are_one_order)
{
    char dir[512];
    tu_tempdir(dir, sizeof dir);
    store *s = open_store(dir, 0);
    /* three lines of order A, arriving last line first, in two txns */
    gen_ev a1 = line("ord", D0 + 10 * HOUR, "A", 10, 1), a2 = line("ord", D0 + 10 * HOUR, "A", 20, 2),
           a3 = line("ord", D0 + 10 * HOUR + 1000, "A", 30.5, 4);
    const gen_ev *first[] = {&a3, &a2};
    uint64_t r = 7;
    feed(s, first, 2, &r, 1, NULL);
    add_one(s, &a1);
    ls_features f = record_of(s, "ord");
    ck_assert_uint_eq(f.count[EV_PURCHASE], 1);
    ck_assert_uint_eq(f.purchase_lines, 3);
    ck_assert_double_eq(f.spend, 60.5);
    ck_assert_uint_eq(f.purchase_units, 7);
    ck_assert_uint_eq(f.purchase_days, 1);
    ck_assert_double_eq(f.first_purchase_value, 60.5);
    ck_assert_double_eq(value_of(&f, "purchase_count", D0 + DAY), 1);
    ck_assert_double_eq(value_of(&f, "avg_order_value", D0 + DAY), 60.5);
    ck_assert_double_eq(value_of(&f, "purchase_units", D0 + DAY), 7);

    /* two orders on one later UTC day: two orders, one purchase day */
    gen_ev b = line("ord", D0 + 2 * DAY + 9 * HOUR, "B", 5, 1), c = line("ord", D0 + 2 * DAY + 15 * HOUR, "C", 5, 1);
    add_one(s, &c);
    add_one(s, &b);
    f = record_of(s, "ord");
    ck_assert_uint_eq(f.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(f.purchase_lines, 5);
    ck_assert_uint_eq(f.purchase_days, 2);
    ck_assert_double_eq(value_of(&f, "avg_order_value", D0 + 3 * DAY), 70.5 / 3);

    /* a late line of order A is still order A; refunds never count as
     * purchases, not even with the order's id */
    gen_ev a4 = line("ord", D0 + 11 * HOUR, "A", 1, 1);
    gen_ev refund = plain("ord", EV_REFUND, D0 + 3 * DAY);
    refund.value = 5;
    snprintf(refund.order_id, sizeof refund.order_id, "A");
    add_one(s, &refund);
    add_one(s, &a4);
    f = record_of(s, "ord");
    ck_assert_uint_eq(f.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(f.count[EV_REFUND], 1);
    ck_assert_uint_eq(f.purchase_lines, 6);
    ck_assert_uint_eq(f.purchase_days, 2);
    ck_assert_double_eq(f.refunded, 5);
    ck_assert_double_eq(f.first_purchase_value, 61.5);

    /* lines without an order id are an order each, even at one time */
    gen_ev n1 = line("ord", D0 + 5 * DAY, "", 2, 1), n2 = line("ord", D0 + 5 * DAY, "", 2, 1);
    add_one(s, &n1);
    add_one(s, &n2);
    f = record_of(s, "ord");
    ck_assert_uint_eq(f.count[EV_PURCHASE], 5);
    ck_assert_uint_eq(f.purchase_lines, 8);
    ck_assert_uint_eq(f.purchase_days, 3);
    /* an order id is per customer: another customer's order A is its own */
    gen_ev other = line("ord2", D0 + 10 * HOUR, "A", 10, 1);
    add_one(s, &other);
    ck_assert_uint_eq(record_of(s, "ord2").count[EV_PURCHASE], 1);
    ck_assert_uint_eq(record_of(s, "ord").count[EV_PURCHASE], 5);

    /* as of a time between the lines of order A: one order, the lines so far */
    store_reader *rd = NULL;
    ck_assert_int_eq(store_reader_open(s, &rd), LS_OK);
    ck_assert_int_eq(store_reader_begin(rd), LS_OK);
    ck_assert_int_eq(store_reader_get_asof(rd, "ord", 3, D0 + 10 * HOUR, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 1);
    ck_assert_uint_eq(f.purchase_lines, 2);
    ck_assert_uint_eq(f.purchase_units, 3);
    ck_assert_int_eq(store_reader_get_asof(rd, "ord", 3, D0 + 10 * HOUR - 1, &f), LS_ENOTFOUND);
    ck_assert(feature_empty(&f));
    store_reader_end(rd);
    store_reader_close(&rd);
    store_close(&s);
    tu_rmtree(dir);
}
END_TEST

/* ================================================================== */
/* Dedupe and aliases                                                   */
/* ================================================================== */

START_TEST(an_event_id_counts_once_per_customer)
{
    char dir[512];
    tu_tempdir(dir, sizeof dir);
    store *s = open_store(dir, 0);
    gen_ev e1 = plain("dd", EV_PAGE_VIEW, T0 + HOUR);
    snprintf(e1.event_id, sizeof e1.event_id, "e1");
    gen_ev other = plain("dd", EV_PRODUCT_VIEW, T0 + 2 * HOUR);
    gen_ev later = plain("dd", EV_SEARCH, T0 + 3 * DAY);

    /* twice in one txn: the second is refused */
    const gen_ev *twice[] = {&e1, &other, &e1};
    uint64_t r = 3;
    size_t dups = 0;
    feed(s, twice, 3, &r, 1000, &dups);
    ck_assert_uint_eq(dups, 1);
    /* again in later txns, after other (later) events, even with other content */
    ck_assert_int_eq(add_one(s, &later), 0);
    ck_assert_int_eq(add_one(s, &e1), 1);
    gen_ev changed = e1;
    changed.type = EV_PURCHASE;
    changed.ts_ms = T0 + 4 * DAY;
    changed.value = 50;
    ck_assert_int_eq(add_one(s, &changed), 1);
    ls_features f = record_of(s, "dd");
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 1);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 0);
    ck_assert_int_eq(f.last_seen_ms, T0 + 3 * DAY);

    /* without an id nothing is deduplicated: the same event twice is two */
    ck_assert_int_eq(add_one(s, &other), 0);
    ck_assert_uint_eq(record_of(s, "dd").count[EV_PRODUCT_VIEW], 2);

    /* the history dedupe is per customer (the server's event-id table is
     * what dedupes across customers) */
    gen_ev elsewhere = e1;
    snprintf(elsewhere.customer, sizeof elsewhere.customer, "dd2");
    ck_assert_int_eq(add_one(s, &elsewhere), 0);
    ck_assert_uint_eq(record_of(s, "dd2").count[EV_PAGE_VIEW], 1);
    store_close(&s);
    tu_rmtree(dir);
}
END_TEST

static void alias(store *s, const char *from, const char *to)
{
    store_wtxn *w = NULL;
    int merged = -1;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_alias(w, from, strlen(from), to, strlen(to), &merged), LS_OK);
    ck_assert_int_eq(merged, 1);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
}

START_TEST(an_alias_merge_equals_one_customer_with_all_events)
{
    gen_set anon = {0}, known = {0};
    uint64_t r = 0xa11a5;
    gen_customer(&anon, &r, "anon", T0, 20 * DAY, 40);
    gen_customer(&known, &r, "known", T0 + 3 * DAY, 20 * DAY, 40);
    /* both got one same event (an exact copy, id included) */
    gen_ev shared = line("known", T0 + 5 * DAY, "o1", 10, 1);
    snprintf(shared.event_id, sizeof shared.event_id, "shared-1");
    *gen_push(&known) = shared;
    snprintf(shared.customer, sizeof shared.customer, "anon");
    *gen_push(&anon) = shared;
    /* and an order whose lines came under both ids */
    gen_ev split = line("known", T0 + 6 * DAY, "o-split", 3, 1);
    *gen_push(&known) = split;
    snprintf(split.customer, sizeof split.customer, "anon");
    split.value = 4;
    *gen_push(&anon) = split;

    char d1[512], d2[512];
    tu_tempdir(d1, sizeof d1);
    tu_tempdir(d2, sizeof d2);
    store *merged = open_store(d1, 0), *single = open_store(d2, 0);
    size_t n = 0;
    const gen_ev **order = arrival(&anon, ARRIVE_SHUFFLED, INT64_MAX, &r, &n);
    feed(merged, order, n, &r, 9, NULL);
    free(order);
    order = arrival(&known, ARRIVE_SHUFFLED, INT64_MAX, &r, &n);
    feed(merged, order, n, &r, 9, NULL);
    feed(single, order, n, &r, 9, NULL);
    free(order);
    /* the single store gets anon's events under "known" */
    for (size_t i = 0; i < anon.n; i++)
        snprintf(anon.ev[i].customer, sizeof anon.ev[i].customer, "known");
    order = arrival(&anon, ARRIVE_SHUFFLED, INT64_MAX, &r, &n);
    feed(single, order, n, &r, 9, NULL);
    free(order);
    for (size_t i = 0; i < anon.n; i++)
        snprintf(anon.ev[i].customer, sizeof anon.ev[i].customer, "anon");

    alias(merged, "anon", "known");
    ls_features a = record_of(merged, "known"), b = record_of(single, "known"), via;
    assert_same_record(&a, &b, "alias merge vs one customer", "known");
    via = record_of(merged, "anon"); /* the alias answers for the customer */
    assert_same_record(&a, &via, "through the alias", "anon");

    /* later events under either id keep them equal */
    gen_ev more = plain("anon", EV_ADD_TO_CART, T0 + 4 * DAY);
    more.value = 12;
    add_one(merged, &more);
    snprintf(more.customer, sizeof more.customer, "known");
    add_one(single, &more);
    gen_ev resend = shared; /* already held under both ids */
    ck_assert_int_eq(add_one(merged, &resend), 1);
    a = record_of(merged, "known");
    b = record_of(single, "known");
    assert_same_record(&a, &b, "alias merge vs one customer, after more events", "known");
    store_stats st;
    ck_assert_int_eq(store_stat(merged, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 1);
    ck_assert_uint_eq(tu_customers_with_history(merged), 1);
    store_close(&merged);
    store_close(&single);
    tu_rmtree(d1);
    tu_rmtree(d2);
    gen_free(&anon);
    gen_free(&known);
}
END_TEST

/* ================================================================== */
/* Retention                                                            */
/* ================================================================== */

static void get_history(store *s, const char *id, history *h)
{
    store_reader *rd = NULL;
    ck_assert_int_eq(store_reader_open(s, &rd), LS_OK);
    ck_assert_int_eq(store_reader_begin(rd), LS_OK);
    ck_assert_int_eq(store_reader_get_history(rd, id, strlen(id), h), LS_OK);
    store_reader_end(rd);
    store_reader_close(&rd);
}

START_TEST(retention_folds_old_events_into_before)
{
    char d1[512], d2[512];
    tu_tempdir(d1, sizeof d1);
    tu_tempdir(d2, sizeof d2);
    store *fold = open_store(d1, 10), *keep = open_store(d2, 3650);
    gen_set set = {0};
    /* a page view a day for 40 days, an order every 5th day, sessions */
    for (int day = 0; day < 40; day++) {
        gen_ev *g = gen_push(&set);
        *g = plain("ret", EV_PAGE_VIEW, D0 + day * DAY + 12 * HOUR);
        snprintf(g->session, sizeof g->session, "s%d", day % 3);
        snprintf(g->event_id, sizeof g->event_id, "pv-%d", day);
        if (day % 5 == 0) {
            g = gen_push(&set);
            char order[16];
            snprintf(order, sizeof order, "o%d", day);
            *g = line("ret", D0 + day * DAY + 13 * HOUR, order, 10 + day, 1);
            g = gen_push(&set);
            *g = line("ret", D0 + day * DAY + 13 * HOUR, order, 1, 2);
        }
    }
    size_t n = 0;
    uint64_t r = 0x4e7;
    const gen_ev **order = arrival(&set, ARRIVE_BY_TIME, INT64_MAX, &r, &n);
    feed(fold, order, n, &r, 5, NULL);
    feed(keep, order, n, &r, 5, NULL);
    free(order);

    ls_features a = record_of(fold, "ret"), b = record_of(keep, "ret");
    assert_same_record(&a, &b, "folded vs kept", "ret"); /* folding leaves the running vector */
    ck_assert_uint_eq(a.count[EV_PAGE_VIEW], 40);
    ck_assert_uint_eq(a.count[EV_PURCHASE], 8);
    ck_assert_uint_eq(a.purchase_lines, 16);
    ck_assert_uint_eq(a.purchase_days, 8);
    ck_assert_int_eq(a.first_seen_ms, D0 + 12 * HOUR);

    history h;
    history_init(&h);
    get_history(fold, "ret", &h);
    ck_assert_int_eq(h.has_before, 1);
    ck_assert_uint_gt(h.n, 0);
    int64_t newest = h.ev[h.n - 1].ts_ms;
    ck_assert_int_eq(newest, D0 + 39 * DAY + 12 * HOUR);
    for (size_t i = 0; i < h.n; i++)
        ck_assert_int_ge(h.ev[i].ts_ms, newest - 10 * DAY);
    ck_assert_uint_eq(h.before.count[EV_PAGE_VIEW] + h.n - 2 * 2, 40); /* days 30 and 35 have 2 lines each */
    ck_assert_int_eq(h.before.first_seen_ms, D0 + 12 * HOUR);
    get_history(keep, "ret", &h);
    ck_assert_int_eq(h.has_before, 0);
    ck_assert_uint_eq(h.n, set.n);

    /* as of a time inside retention, both stores agree */
    store_reader *ra = NULL, *rb = NULL;
    ls_features fa, fb;
    ck_assert_int_eq(store_reader_open(fold, &ra), LS_OK);
    ck_assert_int_eq(store_reader_open(keep, &rb), LS_OK);
    ck_assert_int_eq(store_reader_begin(ra), LS_OK);
    ck_assert_int_eq(store_reader_begin(rb), LS_OK);
    int64_t T = D0 + 35 * DAY;
    ck_assert_int_eq(store_reader_get_asof(ra, "ret", 3, T, &fa), LS_OK);
    ck_assert_int_eq(store_reader_get_asof(rb, "ret", 3, T, &fb), LS_OK);
    assert_same_record(&fa, &fb, "as of a time in retention", "ret");
    ck_assert_uint_eq(fa.count[EV_PAGE_VIEW], 35);
    ck_assert_int_eq(store_reader_get_asof(ra, "ret", 3, D0, &fa), LS_ENOTFOUND);
    store_reader_end(ra);
    store_reader_end(rb);
    store_reader_close(&ra);
    store_reader_close(&rb);

    /* every event sent again -- those folded out of retention too, in
     * another order -- is a duplicate, and nothing changes (a second
     * import of a file longer than retention) */
    get_history(fold, "ret", &h);
    ck_assert_uint_gt(h.nfolded, 0);
    size_t dups = 0, with_ids = 0;
    order = arrival(&set, ARRIVE_SHUFFLED, INT64_MAX, &r, &n);
    for (size_t i = 0; i < n; i++) /* events without an id are never taken for duplicates */
        if (order[i]->event_id[0])
            order[with_ids++] = order[i];
    ck_assert_uint_eq(with_ids, 40);
    feed(fold, order, with_ids, &r, 5, &dups);
    free(order);
    ck_assert_uint_eq(dups, with_ids);
    ls_features again = record_of(fold, "ret");
    assert_same_record(&again, &a, "folded, after every event again", "ret");

    /* a late event inside retention (a replay from before) keeps them equal */
    gen_ev late = plain("ret", EV_ADD_TO_CART, D0 + 33 * DAY);
    late.value = 40;
    add_one(fold, &late);
    add_one(keep, &late);
    a = record_of(fold, "ret");
    b = record_of(keep, "ret");
    assert_same_record(&a, &b, "folded vs kept, after a late event", "ret");

    /* an order whose lines straddle the retention cut stays one order */
    gen_ev s1 = line("ret", D0 + 40 * DAY, "straddle", 5, 1), s2 = line("ret", D0 + 43 * DAY, "straddle", 6, 1);
    gen_ev push = plain("ret", EV_PAGE_VIEW, D0 + 51 * DAY); /* cut: day 41 */
    const gen_ev *tail[] = {&s1, &s2, &push};
    feed(fold, tail, 3, &r, 1, NULL);
    feed(keep, tail, 3, &r, 1, NULL);
    a = record_of(fold, "ret");
    b = record_of(keep, "ret");
    assert_same_record(&a, &b, "folded vs kept, an order across the cut", "ret");
    ck_assert_uint_eq(a.count[EV_PURCHASE], 9);
    gen_ev late2 = plain("ret", EV_EMAIL_OPEN, D0 + 45 * DAY); /* lands in the middle: a replay */
    add_one(fold, &late2);
    add_one(keep, &late2);
    a = record_of(fold, "ret");
    b = record_of(keep, "ret");
    assert_same_record(&a, &b, "folded vs kept, a replay after an order across the cut", "ret");
    ck_assert_uint_eq(a.count[EV_PURCHASE], 9);
    ck_assert_uint_eq(a.count[EV_PAGE_VIEW], 41);

    history_free(&h);
    store_close(&fold);
    store_close(&keep);
    tu_rmtree(d1);
    tu_rmtree(d2);
    gen_free(&set);
}
END_TEST

/* Distinct UTC days of s->ev[from, to) of types t1 or t2. */
static uint32_t distinct_days(const gen_set *s, size_t from, size_t to, event_type t1, event_type t2)
{
    uint32_t n = 0;
    for (size_t i = from; i < to; i++) {
        const gen_ev *g = &s->ev[i];
        if (g->type != t1 && g->type != t2)
            continue;
        int seen = 0;
        for (size_t j = from; j < i && !seen; j++)
            seen = (s->ev[j].type == t1 || s->ev[j].type == t2) && s->ev[j].ts_ms / DAY == g->ts_ms / DAY;
        n += !seen;
    }
    return n;
}

static void assert_days(const ls_features *f, const gen_set *s, size_t from, size_t to, const char *what)
{
    uint32_t buy = distinct_days(s, from, to, EV_PURCHASE, EV_PURCHASE),
             share = distinct_days(s, from, to, EV_SHARE, EV_REFERRAL),
             review = distinct_days(s, from, to, EV_REVIEW, EV_REVIEW);
    ck_assert_msg(f->purchase_days == buy, "%s: purchase_days %u, want %u", what, f->purchase_days, buy);
    ck_assert_msg(f->share_days == share, "%s: share_days %u, want %u", what, f->share_days, share);
    ck_assert_msg(f->review_days == review, "%s: review_days %u, want %u", what, f->review_days, review);
}

/* Histories longer than retention (200 days of events, 30 days kept),
 * sent in four arrival orders: the counts -- orders, purchase, share and
 * review days -- are those of the events, in every order, although most
 * events are folded into `before` and, out of time order, after newer
 * ones (a backfill sent newest first once counted a folded day or order
 * again).  An alias of two such customers counts what they share once. */
START_TEST(counts_beyond_retention_hold_in_every_arrival_order)
{
    gen_set set = {0};
    size_t start[PROP_CUSTOMERS + 1];
    uint64_t r = 0x5eed;
    gen_customers(&set, &r, "c", PROP_CUSTOMERS, PROP_EVENTS, 400 * DAY, start);
    for (int kind = 0; kind < ARRIVE_KINDS; kind++) {
        char dir[512];
        size_t n = 0, dups = 0;
        tu_tempdir(dir, sizeof dir);
        store *s = open_store(dir, 30);
        const gen_ev **order = arrival(&set, kind, INT64_MAX, &r, &n);
        feed(s, order, n, &r, kind == ARRIVE_BY_CUSTOMER ? 7 : 60, &dups);
        size_t folded = 0;
        for (int c = 0; c < PROP_CUSTOMERS; c++) {
            char id[24], what[64];
            history h;
            tally t;
            snprintf(id, sizeof id, "c%03d", c);
            snprintf(what, sizeof what, "%s, arrival order %d", id, kind);
            ls_features f = record_of(s, id);
            tally_of(&set, start[c], start[c + 1], INT64_MAX, &t);
            assert_tally(&f, &t, what);
            assert_days(&f, &set, start[c], start[c + 1], what);
            history_init(&h);
            get_history(s, id, &h);
            folded += (size_t)h.has_before;
            ck_assert(!h.fold_sets_lost);
            history_free(&h);
        }
        ck_assert_uint_gt(folded, PROP_CUSTOMERS / 2); /* most customers have a before */
        /* pairs merged by an alias: what both counted counts once */
        for (int c = 0; c + 1 < PROP_CUSTOMERS; c += 2) {
            char to[24], from[24], what[96];
            tally t;
            snprintf(to, sizeof to, "c%03d", c);
            snprintf(from, sizeof from, "c%03d", c + 1);
            alias(s, from, to);
            snprintf(what, sizeof what, "%s+%s, arrival order %d", to, from, kind);
            ls_features f = record_of(s, to);
            tally_of(&set, start[c], start[c + 2], INT64_MAX, &t);
            assert_tally(&f, &t, what);
            assert_days(&f, &set, start[c], start[c + 2], what);
        }
        store_close(&s);
        free(order);
        tu_rmtree(dir);
    }
    gen_free(&set);
}
END_TEST

/* ================================================================== */
/* End to end: reads as of a time                                       */
/* ================================================================== */

static double profile_value(ls_client *c, const char *customer, int64_t now, const char *name, int *known)
{
    void *reply = NULL;
    size_t len = 0;
    double v = -1;
    ck_assert_int_eq(ls_client_profile(c, customer, now, &reply, &len), LS_OK);
    ck_assert_int_eq(ls_client_profile_value(reply, len, name, &v), LS_OK);
    if (known) {
        double first = -1;
        ck_assert_int_eq(ls_client_profile_value(reply, len, "first_seen", &first), LS_OK);
        *known = first > 0;
    }
    free(reply);
    return v;
}

/* Runs the CLI and parses its --json output. */
static json_t *cli_json(const char *const *args)
{
    static char out[1 << 16];
    json_error_t jerr;
    int rc = tu_run_cli(out, sizeof out, args);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, out);
    json_t *j = json_loads(out, 0, &jerr);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    return j;
}

START_TEST(profile_score_and_recommend_as_of_a_time_end_to_end)
{
    tu_server srv;
    ls_client *c = NULL;
    ls_track_result tr;
    tu_server_start(&srv, NULL);
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    const int64_t t1 = D0 + 10 * HOUR;              /* a product view */
    const int64_t t2 = D0 + DAY + 10 * HOUR;        /* order o1: two lines */
    const int64_t t3 = D0 + 5 * DAY + 10 * HOUR;    /* order o2 and a page view */
    ls_client_event evs[] = {
        {.customer = "pat", .type = "purchase", .ts_ms = t3, .order_id = "o2", .price = 7, .has = LS_HAS_PRICE,
         .event_id = "pat-5"},
        {.customer = "pat", .type = "product_view", .ts_ms = t1, .category = "shoes/running/road", .event_id = "pat-1"},
        {.customer = "pat", .type = "purchase", .ts_ms = t2, .order_id = "o1", .price = 10, .quantity = 2,
         .has = LS_HAS_PRICE | LS_HAS_QUANTITY, .event_id = "pat-2"},
        {.customer = "pat", .type = "purchase", .ts_ms = t2, .order_id = "o1", .price = 5, .has = LS_HAS_PRICE,
         .event_id = "pat-3"},
        {.customer = "pat", .type = "page_view", .ts_ms = t3, .category = "books", .event_id = "pat-4"},
    };
    ck_assert_int_eq(ls_client_track(c, evs, 5, &tr), LS_OK);
    ck_assert_uint_eq(tr.accepted, 5);

    /* profile as of a time between the orders */
    int known = 0;
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "purchase_count", &known), 1);
    ck_assert(known);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "purchase_lines", NULL), 2);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "purchase_units", NULL), 3);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "spend", NULL), 25);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "page_view_count", NULL), 0);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "last_seen", NULL), (double)t2);
    ck_assert_double_eq(profile_value(c, "pat", t2 + HOUR, "days_since_last_seen", NULL), 1.0 / 24);
    /* exactly at t1: the first event is in */
    ck_assert_double_eq(profile_value(c, "pat", t1, "product_view_count", &known), 1);
    ck_assert(known);
    /* and now: everything */
    ck_assert_double_eq(profile_value(c, "pat", 0, "purchase_count", NULL), 2);
    ck_assert_double_eq(profile_value(c, "pat", 0, "page_view_count", NULL), 1);
    ck_assert_double_eq(profile_value(c, "pat", t3, "purchase_lines", NULL), 3);
    /* before the first event: not known */
    void *reply = NULL;
    size_t len = 0;
    ck_assert_int_eq(ls_client_profile(c, "pat", t1 - 1, &reply, &len), LS_OK);
    double v = -1;
    ck_assert_int_eq(ls_client_profile_value(reply, len, "purchase_count", &v), LS_OK);
    ck_assert_double_eq(v, 0);
    ck_assert_int_eq(ls_client_profile_value(reply, len, "no_such_feature", &v), LS_ENOTFOUND);
    ck_assert_int_eq(ls_client_profile_value(reply, 1, "purchase_count", &v), LS_EPARSE);
    ck_assert_ptr_nonnull(memmem(reply, len, "known\xc2", 6)); /* "known": false */
    free(reply);

    /* score: before the first event the customer is unknown */
    ls_score sc;
    ck_assert_int_eq(ls_client_score_at(c, "pat", t1 - 1, &sc), LS_OK);
    ck_assert_int_eq(sc.known, 0);
    ck_assert_str_eq(sc.customer, "pat");
    ls_score_free(&sc);
    ck_assert_int_eq(ls_client_score_at(c, "pat", t1, &sc), LS_OK);
    ck_assert_int_eq(sc.known, 1);
    ls_score_free(&sc);
    ck_assert_int_eq(ls_client_score(c, "pat", &sc), LS_OK);
    ck_assert_int_eq(sc.known, 1);
    ls_score_free(&sc);

    /* recommend as of a time: the running-shoe view is all there was */
    ck_assert_int_eq(ls_client_recommend(c, "pat", 1, t1 + HOUR, &reply, &len), LS_OK);
    ck_assert_ptr_nonnull(memmem(reply, len, "running", 7));
    free(reply);
    ck_assert_int_eq(ls_client_recommend(c, "pat", 0, 0, &reply, &len), LS_OK);
    free(reply);
    /* a server's error comes back as its status */
    ck_assert_int_eq(ls_client_call(c, "profile", NULL, 0, 0, &reply, &len), LS_EBADREQ);
    free(reply);

    /* the CLI: profile --now and recommend --now */
    char now_s[32], before_s[32];
    snprintf(now_s, sizeof now_s, "%lld", (long long)((t2 + HOUR) / 1000));
    snprintf(before_s, sizeof before_s, "%lld", (long long)((t1 - 1000) / 1000));
    const char *prof[] = {"profile", "--connect", srv.endpoint, "--json", "--now", now_s, "pat", NULL};
    json_t *j = cli_json(prof);
    json_t *feat = json_object_get(j, "features");
    ck_assert(json_is_true(json_object_get(j, "known")));
    ck_assert_double_eq(json_number_value(json_object_get(feat, "purchase_count")), 1);
    ck_assert_double_eq(json_number_value(json_object_get(feat, "purchase_lines")), 2);
    json_decref(j);
    const char *prof0[] = {"profile", "--connect", srv.endpoint, "--json", "--now", before_s, "pat", NULL};
    j = cli_json(prof0);
    ck_assert(json_is_false(json_object_get(j, "known")));
    json_decref(j);
    const char *rec[] = {"recommend", "--connect", srv.endpoint, "--json", "--now", now_s, "--k", "2", "pat", NULL};
    j = cli_json(rec);
    ck_assert(json_is_array(json_object_get(j, "segments")));
    json_decref(j);
    const char *sco[] = {"score", "--connect", srv.endpoint, "--json", "--now", before_s, "pat", NULL};
    j = cli_json(sco); /* score --json: always {"results": [...]} */
    ck_assert(json_is_false(json_object_get(json_array_get(json_object_get(j, "results"), 0), "known")));
    json_decref(j);
    /* --now is for the reads; --explain still only for score */
    static char out[4096];
    const char *ping[] = {"ping", "--connect", srv.endpoint, "--now", now_s, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, ping), 2);
    ck_assert_ptr_nonnull(strstr(out, "--now"));
    const char *expl[] = {"profile", "--connect", srv.endpoint, "--explain", "pat", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, expl), 2);
    ck_assert_ptr_nonnull(strstr(out, "--explain"));
    const char *help[] = {"profile", "--help", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "--now"));

    ls_client_close(&c);
    tu_server_stop(&srv);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("history");
    TCase *tc = tcase_create("encoding");
    tcase_add_test(tc, encoding_round_trips_every_field);
    tcase_add_test(tc, every_truncation_is_a_parse_error);
    tcase_add_test(tc, random_byte_flips_never_crash);
    tcase_add_test(tc, a_time_delta_that_overflows_is_a_parse_error);
    tcase_add_test(tc, a_big_string_table_interns_each_string_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("replay");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, running_vector_equals_replay_in_every_arrival_order);
    tcase_add_test(tc, asof_equals_a_store_that_stopped_then);
    suite_add_tcase(s, tc);

    tc = tcase_create("semantics");
    tcase_add_test(tc, purchase_lines_of_one_order_are_one_order);
    tcase_add_test(tc, an_event_id_counts_once_per_customer);
    tcase_add_test(tc, an_alias_merge_equals_one_customer_with_all_events);
    tcase_add_test(tc, retention_folds_old_events_into_before);
    tcase_add_test(tc, counts_beyond_retention_hold_in_every_arrival_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("end to end");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, profile_score_and_recommend_as_of_a_time_end_to_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
