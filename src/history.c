/* history.c -- a customer's event history in memory and on disk, and the
 * canonical replay that defines its features (see history.h). */
#include "history.h"

#include <stdlib.h>
#include <string.h>

#include "bytecur.h"
#include "leadscore/error.h"

#define MS_PER_DAY 86400000LL

void history_init(history *h)
{
    memset(h, 0, sizeof *h);
}

void history_free(history *h)
{
    free(h->ev);
    free(h->str);
    free(h->off);
    free(h->len);
    free(h->str_hash);
    free(h->folded);
    free(h->fold_days.v);
    free(h->fold_orders.v);
    history_init(h);
}

/* Empties the string index: a big one is let go (a customer with
 * thousands of strings is rare; the next small one should not pay to
 * clear its slots). */
static void str_index_clear(history *h)
{
    if (h->str_hash_slots > 4096) {
        free(h->str_hash);
        h->str_hash = NULL;
        h->str_hash_slots = 0;
    } else if (h->str_indexed && h->str_hash) {
        memset(h->str_hash, 0, h->str_hash_slots * sizeof *h->str_hash);
    }
    h->str_indexed = 0;
}

void history_clear(history *h)
{
    h->has_before = 0;
    h->nfolded = 0;
    h->fold_days.n = 0;
    h->fold_orders.n = 0;
    h->fold_sets_lost = 0;
    h->n = 0;
    h->str_used = 0;
    h->nstr = 0;
    str_index_clear(h);
}

uint64_t history_ident(const char *event_id, size_t len)
{
    uint64_t x = 1469598103934665603ULL; /* FNV-1a 64, then a finaliser */
    for (size_t i = 0; i < len; i++) {
        x ^= (uint8_t)event_id[i];
        x *= 1099511628211ULL;
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x ? x : 1;
}

/* ------------------------------------------------------------------ */
/* The string table                                                    */
/* ------------------------------------------------------------------ */

ls_str history_string(const history *h, uint32_t ref)
{
    ls_str s = {"", 0};
    if (ref >= 1 && ref <= h->nstr) {
        s.ptr = h->str + h->off[ref - 1];
        s.len = h->len[ref - 1];
    }
    return s;
}

static int str_append(history *h, const char *p, size_t len, uint32_t *ref)
{
    if (h->nstr == h->str_slots) {
        size_t slots = h->str_slots ? h->str_slots * 2 : 8;
        uint32_t *off = realloc(h->off, slots * sizeof *off);
        if (!off)
            return LS_ENOMEM;
        h->off = off;
        uint16_t *ln = realloc(h->len, slots * sizeof *ln);
        if (!ln)
            return LS_ENOMEM;
        h->len = ln;
        h->str_slots = slots;
    }
    if (h->str_used + len > h->str_cap) {
        size_t cap = h->str_cap ? h->str_cap : 256;
        while (cap < h->str_used + len)
            cap *= 2;
        char *s = realloc(h->str, cap);
        if (!s)
            return LS_ENOMEM;
        h->str = s;
        h->str_cap = cap;
    }
    if (len)
        memcpy(h->str + h->str_used, p, len);
    h->off[h->nstr] = (uint32_t)h->str_used;
    h->len[h->nstr] = (uint16_t)len;
    h->str_used += len;
    *ref = (uint32_t)++h->nstr;
    return LS_OK;
}

/* Strings below this many are looked up by a scan; from it on, by the
 * hash index (a hot customer's thousands of order ids and products made
 * every write, and every fold, quadratic). */
#define STR_INDEX_FROM 32

static void str_index_put(history *h, uint32_t ref)
{
    size_t mask = h->str_hash_slots - 1;
    size_t i = bytecur_fnv1a32(h->str + h->off[ref - 1], h->len[ref - 1]) & mask;
    while (h->str_hash[i])
        i = (i + 1) & mask;
    h->str_hash[i] = ref;
}

/* Brings the index up to every string of the table (growing it to keep
 * it at most half full).  0 or LS_ENOMEM. */
static int str_index_sync(history *h)
{
    if ((h->nstr + 1) * 2 > h->str_hash_slots) {
        size_t slots = h->str_hash_slots ? h->str_hash_slots : 64;
        while ((h->nstr + 1) * 2 > slots)
            slots *= 2;
        uint32_t *t = calloc(slots, sizeof *t);
        if (!t)
            return LS_ENOMEM;
        free(h->str_hash);
        h->str_hash = t;
        h->str_hash_slots = slots;
        h->str_indexed = 0;
    }
    for (; h->str_indexed < h->nstr; h->str_indexed++)
        str_index_put(h, (uint32_t)h->str_indexed + 1);
    return LS_OK;
}

/* The ref of a string, added when new; 0 for an empty one. */
static int str_intern(history *h, ls_str s, uint32_t *ref)
{
    *ref = 0;
    if (s.len == 0)
        return LS_OK;
    if (h->nstr < STR_INDEX_FROM) {
        for (size_t i = 0; i < h->nstr; i++)
            if (h->len[i] == s.len && memcmp(h->str + h->off[i], s.ptr, s.len) == 0) {
                *ref = (uint32_t)i + 1;
                return LS_OK;
            }
        return str_append(h, s.ptr, s.len, ref);
    }
    int rc = str_index_sync(h);
    if (rc)
        return rc;
    size_t mask = h->str_hash_slots - 1;
    for (size_t i = bytecur_fnv1a32(s.ptr, s.len) & mask; h->str_hash[i]; i = (i + 1) & mask) {
        uint32_t r = h->str_hash[i];
        if (h->len[r - 1] == s.len && memcmp(h->str + h->off[r - 1], s.ptr, s.len) == 0) {
            *ref = r;
            return LS_OK;
        }
    }
    return str_append(h, s.ptr, s.len, ref); /* indexed at the next sync */
}

static int str_cmp(const history *ha, uint32_t a, const history *hb, uint32_t b)
{
    ls_str x = history_string(ha, a), y = history_string(hb, b);
    size_t n = x.len < y.len ? x.len : y.len;
    int c = n ? memcmp(x.ptr, y.ptr, n) : 0;
    if (c)
        return c;
    return x.len < y.len ? -1 : x.len > y.len;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

#define CMP(a, b) do { if ((a) != (b)) return (a) < (b) ? -1 : 1; } while (0)

/* The canonical order: time, then every field, strings by content, so
 * that it does not depend on arrival order or on the string table. */
static int event_cmp(const history *ha, const history_event *a, const history *hb, const history_event *b)
{
    CMP(a->ts_ms, b->ts_ms);
    CMP(a->type, b->type);
    CMP(a->ident, b->ident);
    CMP(a->bits, b->bits);
    CMP(a->value, b->value);
    CMP(a->quantity, b->quantity);
    CMP(a->session_hash, b->session_hash);
    CMP(a->rating, b->rating);
    CMP(a->birthday_mmdd, b->birthday_mmdd);
    int c;
    if ((c = str_cmp(ha, a->order, hb, b->order)) || (c = str_cmp(ha, a->category, hb, b->category)))
        return c;
    return str_cmp(ha, a->product, hb, b->product);
}

static int reserve(history *h, size_t n)
{
    if (n <= h->cap)
        return LS_OK;
    size_t cap = h->cap ? h->cap : 16;
    while (cap < n)
        cap *= 2;
    history_event *ev = realloc(h->ev, cap * sizeof *ev);
    if (!ev)
        return LS_ENOMEM;
    h->ev = ev;
    h->cap = cap;
    return LS_OK;
}

/* Index where e belongs: after every event that sorts before or equal. */
static size_t insert_point(const history *h, const history *eh, const history_event *e)
{
    size_t lo = 0, hi = h->n;
    if (hi > 0 && event_cmp(h, &h->ev[hi - 1], eh, e) <= 0)
        return hi; /* the common case: a new event at the tail */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (event_cmp(h, &h->ev[mid], eh, e) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first of the n ascending keys v[] that is >= x. */
static size_t lower_bound(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts x at index at of the sorted keys (*v)[0, *n), growing them. */
static int insert_key(uint64_t **v, size_t *n, size_t *cap, size_t at, uint64_t x)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 16;
        uint64_t *p = realloc(*v, grown * sizeof *p);
        if (!p)
            return LS_ENOMEM;
        *v = p;
        *cap = grown;
    }
    memmove(*v + at + 1, *v + at, (*n - at) * sizeof **v);
    (*v)[at] = x;
    (*n)++;
    return LS_OK;
}

/* Index of the first folded identity >= ident. */
static size_t folded_point(const history *h, uint64_t ident)
{
    return lower_bound(h->folded, h->nfolded, ident);
}

static int holds_ident(const history *h, uint64_t ident)
{
    for (size_t i = h->n; i-- > 0;)
        if (h->ev[i].ident == ident)
            return 1;
    size_t at = folded_point(h, ident);
    return at < h->nfolded && h->folded[at] == ident;
}

/* Keeps ident among the folded identities; past HISTORY_MAX_FOLDED_IDS the
 * smallest goes (a bound on the value every event rewrites; which one goes
 * does not depend on arrival order). */
static int keep_folded(history *h, uint64_t ident)
{
    size_t at = folded_point(h, ident);
    if (ident == 0 || (at < h->nfolded && h->folded[at] == ident))
        return LS_OK;
    if (h->nfolded == HISTORY_MAX_FOLDED_IDS) {
        if (at == 0)
            return LS_OK; /* smaller than all kept: it would go first */
        memmove(h->folded, h->folded + 1, (at - 1) * sizeof *h->folded);
        h->folded[at - 1] = ident;
        return LS_OK;
    }
    return insert_key(&h->folded, &h->nfolded, &h->folded_cap, at, ident);
}

/* ------------------------------------------------------------------ */
/* Before's day and order sets                                         */
/* ------------------------------------------------------------------ */

/* Index of the first key >= x. */
static size_t set_point(const history_set *s, uint64_t x)
{
    return lower_bound(s->v, s->n, x);
}

static int set_has(const history_set *s, uint64_t x)
{
    size_t at = set_point(s, x);
    return at < s->n && s->v[at] == x;
}

/* Adds x; 1 when the set would outgrow HISTORY_MAX_FOLD_SET (nothing
 * added), LS_ENOMEM, else 0. */
static int set_add(history_set *s, uint64_t x)
{
    size_t at = set_point(s, x);
    if (at < s->n && s->v[at] == x)
        return LS_OK;
    if (s->n == HISTORY_MAX_FOLD_SET)
        return 1;
    return insert_key(&s->v, &s->n, &s->cap, at, x);
}

/* Lets the sets go: `before` counts by itself from now on. */
static void lose_fold_sets(history *h)
{
    h->fold_days.n = 0;
    h->fold_orders.n = 0;
    h->fold_sets_lost = 1;
}

/* Whether replays count days and orders by the sets: there is a `before`
 * and its sets are whole. */
static int counts_by_sets(const history *h)
{
    return h->has_before && !h->fold_sets_lost;
}

/* The day-counted kinds: a purchase, a share or referral, a review. */
enum { DAY_PURCHASE, DAY_SHARE, DAY_REVIEW, DAY_KINDS };

static int day_kind(uint8_t type)
{
    switch (type) {
    case EV_PURCHASE: return DAY_PURCHASE;
    case EV_SHARE:
    case EV_REFERRAL: return DAY_SHARE;
    case EV_REVIEW: return DAY_REVIEW;
    default: return -1;
    }
}

static uint32_t *day_counter(ls_features *f, int kind)
{
    return kind == DAY_PURCHASE ? &f->purchase_days : kind == DAY_SHARE ? &f->share_days : &f->review_days;
}

static int64_t utc_day(int64_t ms)
{
    return ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
}

static uint64_t day_key(int kind, int64_t day)
{
    return (uint64_t)kind << 32 | (uint32_t)day;
}

/* The key of an event's order id (0: none). */
static uint64_t order_key(const history *h, const history_event *e)
{
    if (e->type != EV_PURCHASE || e->order == 0)
        return 0;
    ls_str o = history_string(h, e->order);
    return history_ident(o.ptr, o.len);
}

/* Notes in the sets what events [0, k) bring to `before`. */
static int keep_fold_sets(history *h, size_t k)
{
    for (size_t i = 0; i < k && !h->fold_sets_lost; i++) {
        const history_event *e = &h->ev[i];
        int kind = day_kind(e->type), rc = LS_OK;
        uint64_t order = order_key(h, e);
        if (kind >= 0)
            rc = set_add(&h->fold_days, day_key(kind, utc_day(e->ts_ms)));
        if (rc == LS_OK && order)
            rc = set_add(&h->fold_orders, order);
        if (rc == 1)
            lose_fold_sets(h);
        else if (rc)
            return rc;
    }
    return LS_OK;
}

static int insert_event(history *h, const history *eh, const history_event *e, size_t *at)
{
    if (reserve(h, h->n + 1))
        return LS_ENOMEM;
    size_t i = insert_point(h, eh, e);
    if (i < h->n)
        memmove(&h->ev[i + 1], &h->ev[i], (h->n - i) * sizeof *e);
    h->ev[i] = *e;
    h->n++;
    if (at)
        *at = i;
    return LS_OK;
}

static int from_event(history *h, const ls_event *ev, uint64_t ident, history_event *e)
{
    int rc;
    memset(e, 0, sizeof *e);
    e->ts_ms = ev->ts_ms;
    e->type = (uint8_t)ev->type;
    e->ident = ident;
    e->quantity = ev->quantity;
    e->bits = (uint8_t)((ident ? HB_IDENT : 0) | (ev->quantity != 1 ? HB_QUANTITY : 0) |
                        (ev->discounted ? HB_DISCOUNTED : 0));
    if (ev->value != 0) {
        e->value = ev->value;
        e->bits |= HB_VALUE;
    }
    if (ev->session.len || ev->session_hash) {
        e->session_hash = ev->session_hash ? ev->session_hash : feature_session_hash(ev->session.ptr, ev->session.len);
        e->bits |= HB_SESSION;
    }
    if ((rc = str_intern(h, ev->category, &e->category)) || (rc = str_intern(h, ev->product, &e->product)) ||
        (rc = str_intern(h, ev->order_id, &e->order)))
        return rc;
    e->bits |= (e->category ? HB_CATEGORY : 0) | (e->product ? HB_PRODUCT : 0) | (e->order ? HB_ORDER : 0);
    if (ev->type == EV_REVIEW && (ev->has & EVF_RATING))
        e->rating = (uint8_t)ev->rating;
    if (ev->has & EVF_BIRTHDAY)
        e->birthday_mmdd = (uint16_t)ev->birthday_mmdd;
    return LS_OK;
}

int history_add(history *h, const ls_event *ev, uint64_t ident, int *dup, size_t *at)
{
    history_event e;
    *dup = 0;
    if (ident && holds_ident(h, ident)) {
        *dup = 1;
        return LS_OK;
    }
    int rc = from_event(h, ev, ident, &e);
    return rc ? rc : insert_event(h, h, &e, at);
}

size_t history_upto(const history *h, int64_t asof_ms)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->ev[mid].ts_ms <= asof_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void history_event_get(const history *h, size_t i, ls_event *out)
{
    const history_event *e = &h->ev[i];
    event_init(out);
    out->type = (event_type)e->type;
    out->ts_ms = e->ts_ms;
    out->has = EVF_TS | (e->bits & HB_VALUE ? EVF_VALUE : 0) | (e->bits & HB_QUANTITY ? EVF_QUANTITY : 0) |
               (e->bits & HB_DISCOUNTED ? EVF_DISCOUNTED : 0) | (e->rating ? EVF_RATING : 0) |
               (e->birthday_mmdd ? EVF_BIRTHDAY : 0);
    out->value = e->value;
    out->quantity = e->quantity;
    out->discounted = (e->bits & HB_DISCOUNTED) != 0;
    out->rating = e->rating;
    out->birthday_mmdd = e->birthday_mmdd;
    out->session_hash = e->session_hash;
    out->category = history_string(h, e->category);
    out->product = history_string(h, e->product);
    out->order_id = history_string(h, e->order);
}

/* ------------------------------------------------------------------ */
/* Replay                                                              */
/* ------------------------------------------------------------------ */

/* Which order ids a replay has seen a purchase line of. */
typedef struct {
    uint8_t local[256];
    uint8_t *seen;
} order_set;

static int orders_open(order_set *o, size_t nstr)
{
    memset(o->local, 0, sizeof o->local);
    o->seen = nstr + 1 <= sizeof o->local ? o->local : calloc(nstr + 1, 1);
    return o->seen ? LS_OK : LS_ENOMEM;
}

static void orders_close(order_set *o)
{
    if (o->seen != o->local)
        free(o->seen);
}

/* 1 when event e continues an order already seen; marks it seen. */
static int orders_note(order_set *o, const history_event *e)
{
    if (e->type != EV_PURCHASE || e->order == 0)
        return 0;
    int seen = o->seen[e->order];
    o->seen[e->order] = 1;
    return seen;
}

/* The day of the last event of each day-counted kind a replay applied
 * (INT64_MIN: none yet). */
typedef struct {
    int64_t day[DAY_KINDS];
} last_days;

static void last_days_note(last_days *l, const history_event *e)
{
    int kind = day_kind(e->type);
    if (kind >= 0)
        l->day[kind] = utc_day(e->ts_ms);
}

/* Applies events [from, to) onto f.  On top of a `before` with its sets,
 * an order counts unless a line of it was folded or applied before, and a
 * day unless it was folded or is the day of the kind's last event applied
 * (the history is in time order): what the time order counts, wherever
 * the folded events lie in time. */
static void apply_events(const history *h, size_t from, size_t to, order_set *o, last_days *l,
                         const feature_decay *d, ls_features *f)
{
    ls_event ev;
    int by_sets = counts_by_sets(h);
    for (size_t i = from; i < to; i++) {
        const history_event *e = &h->ev[i];
        int cont = orders_note(o, e), kind = day_kind(e->type);
        uint64_t order = by_sets ? order_key(h, e) : 0;
        cont |= order && set_has(&h->fold_orders, order);
        uint32_t days = kind >= 0 ? *day_counter(f, kind) : 0;
        history_event_get(h, i, &ev);
        feature_apply_line(f, &ev, d, cont);
        if (by_sets && kind >= 0) {
            int64_t day = utc_day(e->ts_ms);
            *day_counter(f, kind) = days + (day != l->day[kind] && !set_has(&h->fold_days, day_key(kind, day)));
        }
        if (by_sets)
            last_days_note(l, e);
        feature_round(f);
    }
}

/* The days of the last events of each kind in [0, from) (only replays
 * that count by the sets need them): walked back, stopping once every
 * kind is found. */
static void last_days_before(const history *h, size_t from, last_days *l)
{
    int missing = DAY_KINDS;
    for (size_t i = from; i-- > 0 && missing > 0;) {
        int kind = day_kind(h->ev[i].type);
        if (kind >= 0 && l->day[kind] == INT64_MIN) {
            l->day[kind] = utc_day(h->ev[i].ts_ms);
            missing--;
        }
    }
}

int history_apply_range(const history *h, size_t from, size_t to, const feature_decay *d, ls_features *f)
{
    order_set o;
    last_days l = {{INT64_MIN, INT64_MIN, INT64_MIN}};
    if (to > h->n)
        to = h->n;
    if (from >= to)
        return LS_OK;
    if (orders_open(&o, h->nstr))
        return LS_ENOMEM;
    for (size_t i = 0; i < from; i++)
        orders_note(&o, &h->ev[i]);
    if (counts_by_sets(h))
        last_days_before(h, from, &l);
    apply_events(h, from, to, &o, &l, d, f);
    orders_close(&o);
    return LS_OK;
}

int history_replay(const history *h, int64_t asof_ms, const feature_decay *d, ls_features *out)
{
    if (h->has_before && h->before.first_seen_ms <= asof_ms)
        *out = h->before;
    else
        feature_init(out);
    return history_apply_range(h, 0, history_upto(h, asof_ms), d, out);
}

/* ------------------------------------------------------------------ */
/* Retention and merging                                               */
/* ------------------------------------------------------------------ */

/* Rebuilds the string table with only the strings events refer to. */
static int compact_strings(history *h)
{
    history old = *h;
    history fresh;
    history_init(&fresh);
    for (size_t i = 0; i < h->n; i++) {
        history_event *e = &h->ev[i];
        uint32_t *refs[3] = {&e->category, &e->product, &e->order};
        for (int k = 0; k < 3; k++) {
            if (*refs[k] == 0)
                continue;
            int rc = str_intern(&fresh, history_string(&old, *refs[k]), refs[k]);
            if (rc) {
                free(fresh.str);
                free(fresh.off);
                free(fresh.len);
                free(fresh.str_hash);
                return rc; /* refs already rewritten point into fresh: keep going is unsafe */
            }
        }
    }
    free(h->str);
    free(h->off);
    free(h->len);
    free(h->str_hash);
    h->str = fresh.str;
    h->str_used = fresh.str_used;
    h->str_cap = fresh.str_cap;
    h->off = fresh.off;
    h->len = fresh.len;
    h->nstr = fresh.nstr;
    h->str_slots = fresh.str_slots;
    h->str_hash = fresh.str_hash;
    h->str_hash_slots = fresh.str_hash_slots;
    h->str_indexed = fresh.str_indexed;
    return LS_OK;
}

/* The largest fold point <= k that splits no order: the replay counts an
 * order at its first line (orders_note) and `before` keeps no order ids,
 * so an order's lines are folded all together or not at all.  A point j
 * is whole when no purchase line at or after j belongs to an order whose
 * first line is before j. */
static int whole_orders_point(const history *h, size_t k, size_t *out)
{
    size_t *first = calloc(h->nstr + 1, sizeof *first); /* 1 + index of each order's first line */
    if (!first)
        return LS_ENOMEM;
    for (size_t i = 0; i < h->n; i++) {
        const history_event *e = &h->ev[i];
        if (e->type == EV_PURCHASE && e->order && first[e->order] == 0)
            first[e->order] = i + 1;
    }
    size_t j = h->n, m = SIZE_MAX; /* m: the earliest first line of the orders with a line at >= j */
    while (j > 0 && !(j <= k && m >= j)) {
        const history_event *e = &h->ev[--j];
        if (e->type == EV_PURCHASE && e->order && first[e->order] - 1 < m)
            m = first[e->order] - 1;
    }
    free(first);
    *out = j;
    return LS_OK;
}

int history_fold(history *h, int64_t retention_ms, size_t max_events, const feature_decay *d, size_t *folded)
{
    size_t k = 0;
    if (folded)
        *folded = 0;
    if (h->n == 0)
        return LS_OK;
    if (retention_ms > 0) {
        int64_t newest = h->ev[h->n - 1].ts_ms, cut = newest - retention_ms;
        while (k < h->n && h->ev[k].ts_ms < cut)
            k++;
    }
    if (max_events > 0 && h->n - k > max_events)
        k = h->n - max_events;
    if (k > 0 && whole_orders_point(h, k, &k))
        return LS_ENOMEM;
    if (k == 0)
        return LS_OK;
    if (!h->has_before)
        feature_init(&h->before);
    int rc = history_apply_range(h, 0, k, d, &h->before);
    if (rc == LS_OK)
        rc = keep_fold_sets(h, k);
    for (size_t i = 0; rc == LS_OK && i < k; i++)
        rc = keep_folded(h, h->ev[i].ident);
    if (rc)
        return rc;
    h->has_before = 1;
    memmove(h->ev, h->ev + k, (h->n - k) * sizeof *h->ev);
    h->n -= k;
    if (folded)
        *folded = k;
    return compact_strings(h);
}

/* Adds src's keys to dst; *common counts those dst held already (per
 * day kind for the day set: common[kind]).  1 when dst would outgrow the
 * bound, LS_ENOMEM, else 0. */
static int union_sets(history_set *dst, const history_set *src, uint32_t *common, int by_kind)
{
    for (size_t i = 0; i < src->n; i++) {
        uint64_t x = src->v[i];
        if (set_has(dst, x)) {
            common[by_kind ? (int)(x >> 32) : 0]++;
            continue;
        }
        int rc = set_add(dst, x);
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* Merges src's `before` (with its sets) into dst's.  With both sets whole,
 * a day or an order both counted is counted once. */
static int merge_befores(history *dst, const history *src, const feature_decay *d)
{
    if (!dst->has_before) { /* src's before and sets, as they are */
        uint32_t none[DAY_KINDS] = {0};
        dst->before = src->before;
        dst->has_before = 1;
        dst->fold_sets_lost = src->fold_sets_lost;
        dst->fold_days.n = dst->fold_orders.n = 0;
        int rc = src->fold_sets_lost ? LS_OK : union_sets(&dst->fold_days, &src->fold_days, none, 1);
        return rc == LS_OK && !src->fold_sets_lost ? union_sets(&dst->fold_orders, &src->fold_orders, none, 0) : rc;
    }
    feature_merge(&dst->before, &src->before, d);
    feature_round(&dst->before); /* as the stored `before` is: the replays agree bit for bit */
    if (dst->fold_sets_lost || src->fold_sets_lost) {
        lose_fold_sets(dst);
        return LS_OK;
    }
    uint32_t common_days[DAY_KINDS] = {0}, common_orders[1] = {0};
    int rc = union_sets(&dst->fold_days, &src->fold_days, common_days, 1);
    if (rc == LS_OK)
        rc = union_sets(&dst->fold_orders, &src->fold_orders, common_orders, 0);
    if (rc == 1) {
        lose_fold_sets(dst);
        return LS_OK;
    }
    if (rc)
        return rc;
    for (int k = 0; k < DAY_KINDS; k++)
        *day_counter(&dst->before, k) -= common_days[k];
    dst->before.count[EV_PURCHASE] -= common_orders[0];
    return LS_OK;
}

int history_merge(history *dst, const history *src, const feature_decay *d)
{
    if (src->has_before) {
        int rc = merge_befores(dst, src, d);
        if (rc == 1)
            lose_fold_sets(dst);
        else if (rc)
            return rc;
    }
    for (size_t i = 0; i < src->nfolded; i++)
        if (keep_folded(dst, src->folded[i]))
            return LS_ENOMEM;
    if (reserve(dst, dst->n + src->n))
        return LS_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        history_event e = src->ev[i];
        if (e.ident && holds_ident(dst, e.ident))
            continue;
        ls_str cat = history_string(src, e.category), prod = history_string(src, e.product),
               ord = history_string(src, e.order);
        int rc;
        if ((rc = str_intern(dst, cat, &e.category)) || (rc = str_intern(dst, prod, &e.product)) ||
            (rc = str_intern(dst, ord, &e.order)) || (rc = insert_event(dst, dst, &e, NULL)))
            return rc;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */
/* ------------------------------------------------------------------ */

typedef bytecur_w wbuf;
typedef bytecur_r rbuf;

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* The type byte's high bit says a non-profile event carries a birthday
 * (profile events always have the field). */
#define TYPE_BIRTHDAY 0x80

static int has_birthday_field(const history_event *e)
{
    return e->type == EV_PROFILE || e->birthday_mmdd != 0;
}

static size_t event_size(const history_event *e, int64_t prev)
{
    size_t n = bytecur_varint_size((uint64_t)(e->ts_ms - prev)) + 2;
    n += e->bits & HB_VALUE ? 8 : 0;
    n += e->bits & HB_QUANTITY ? bytecur_varint_size(zigzag(e->quantity)) : 0;
    n += e->bits & HB_IDENT ? 8 : 0;
    n += e->bits & HB_SESSION ? 4 : 0;
    n += e->bits & HB_CATEGORY ? bytecur_varint_size(e->category) : 0;
    n += e->bits & HB_PRODUCT ? bytecur_varint_size(e->product) : 0;
    n += e->bits & HB_ORDER ? bytecur_varint_size(e->order) : 0;
    n += e->type == EV_REVIEW ? 1 : 0;
    n += has_birthday_field(e) ? bytecur_varint_size(e->birthday_mmdd) : 0;
    return n;
}

size_t history_encoded_size(const history *h)
{
    size_t n = 2 + (h->has_before ? 10 + FEATURE_MAX_ENCODED : 0) + bytecur_varint_size(h->nstr) + bytecur_varint_size(h->n);
    if (h->nfolded)
        n += bytecur_varint_size(h->nfolded) + 8 * h->nfolded;
    if (counts_by_sets(h))
        n += 2 * 10 + 10 * h->fold_days.n + 8 * h->fold_orders.n; /* varints of at most 10 bytes */
    for (size_t i = 0; i < h->nstr; i++)
        n += bytecur_varint_size(h->len[i]) + h->len[i];
    int64_t prev = 0;
    for (size_t i = 0; i < h->n; i++) {
        n += event_size(&h->ev[i], prev);
        prev = h->ev[i].ts_ms;
    }
    return n;
}

static void encode_event(wbuf *w, const history_event *e, int64_t prev)
{
    uint8_t type = (uint8_t)(e->type | (e->type != EV_PROFILE && e->birthday_mmdd ? TYPE_BIRTHDAY : 0));
    bytecur_put_varint(w, (uint64_t)(e->ts_ms - prev));
    bytecur_put(w, &type, 1);
    bytecur_put(w, &e->bits, 1);
    if (e->bits & HB_VALUE)
        bytecur_put(w, &e->value, 8);
    if (e->bits & HB_QUANTITY)
        bytecur_put_varint(w, zigzag(e->quantity));
    if (e->bits & HB_IDENT)
        bytecur_put(w, &e->ident, 8);
    if (e->bits & HB_SESSION)
        bytecur_put(w, &e->session_hash, 4);
    if (e->bits & HB_CATEGORY)
        bytecur_put_varint(w, e->category);
    if (e->bits & HB_PRODUCT)
        bytecur_put_varint(w, e->product);
    if (e->bits & HB_ORDER)
        bytecur_put_varint(w, e->order);
    if (e->type == EV_REVIEW)
        bytecur_put(w, &e->rating, 1);
    if (has_birthday_field(e))
        bytecur_put_varint(w, e->birthday_mmdd);
}

int history_encode(const history *h, uint8_t *buf, size_t cap, size_t *len)
{
    wbuf w = {buf, cap, 0};
    /* the lowest version whose reader misses nothing of h */
    int sets = counts_by_sets(h);
    uint8_t head[2] = {sets ? 3 : h->nfolded ? 2 : 1,
                       (uint8_t)((h->has_before ? 1 : 0) | (h->nfolded ? 2 : 0) | (sets ? 4 : 0))};
    bytecur_put(&w, head, 2);
    if (h->has_before) {
        uint8_t rec[FEATURE_MAX_ENCODED];
        size_t n;
        if (feature_encode(&h->before, rec, sizeof rec, &n))
            return LS_EINVAL;
        bytecur_put_varint(&w, n);
        bytecur_put(&w, rec, n);
    }
    if (h->nfolded) {
        bytecur_put_varint(&w, h->nfolded);
        for (size_t i = 0; i < h->nfolded; i++)
            bytecur_put(&w, &h->folded[i], 8);
    }
    if (sets) {
        bytecur_put_varint(&w, h->fold_days.n);
        for (size_t i = 0; i < h->fold_days.n; i++)
            bytecur_put_varint(&w, h->fold_days.v[i] - (i ? h->fold_days.v[i - 1] : 0));
        bytecur_put_varint(&w, h->fold_orders.n);
        for (size_t i = 0; i < h->fold_orders.n; i++)
            bytecur_put(&w, &h->fold_orders.v[i], 8);
    }
    bytecur_put_varint(&w, h->nstr);
    for (size_t i = 0; i < h->nstr; i++) {
        bytecur_put_varint(&w, h->len[i]);
        bytecur_put(&w, h->str + h->off[i], h->len[i]);
    }
    bytecur_put_varint(&w, h->n);
    int64_t prev = 0;
    for (size_t i = 0; i < h->n; i++) {
        encode_event(&w, &h->ev[i], prev);
        prev = h->ev[i].ts_ms;
    }
    if (w.bad)
        return LS_EINVAL;
    *len = cap - w.left;
    return LS_OK;
}

/* One of before's sets: n keys ascending (days as deltas from the one
 * before, orders as u64s), at most the bound. */
static int decode_set(history_set *s, rbuf *r, int deltas)
{
    uint64_t n = bytecur_get_varint(r);
    if (r->bad || n > HISTORY_MAX_FOLD_SET || n > r->left / (deltas ? 1 : 8))
        return LS_EPARSE;
    if (s->cap < n) {
        uint64_t *p = realloc(s->v, (size_t)n * sizeof *p);
        if (!p)
            return LS_ENOMEM;
        s->v = p;
        s->cap = (size_t)n;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x;
        if (deltas) {
            uint64_t step = bytecur_get_varint(r);
            x = (i ? s->v[i - 1] : 0) + step;
            if ((i > 0 && step == 0) || x < step || (x >> 32) >= DAY_KINDS)
                return LS_EPARSE;
        } else {
            bytecur_get(r, &x, 8);
            if (x == 0 || (i > 0 && x <= s->v[i - 1]))
                return LS_EPARSE;
        }
        s->v[i] = x;
    }
    s->n = (size_t)n;
    return r->bad ? LS_EPARSE : LS_OK;
}

/* The folded identities: ascending, none 0, at most the bound. */
static int decode_folded(history *h, rbuf *r)
{
    uint64_t n = bytecur_get_varint(r);
    if (r->bad || n == 0 || n > HISTORY_MAX_FOLDED_IDS || n > r->left / 8)
        return LS_EPARSE;
    if (h->folded_cap < n) {
        uint64_t *p = realloc(h->folded, (size_t)n * sizeof *p);
        if (!p)
            return LS_ENOMEM;
        h->folded = p;
        h->folded_cap = (size_t)n;
    }
    for (uint64_t i = 0; i < n; i++) {
        bytecur_get(r, &h->folded[i], 8);
        if (h->folded[i] == 0 || (i > 0 && h->folded[i] <= h->folded[i - 1]))
            return LS_EPARSE;
    }
    h->nfolded = (size_t)n;
    return LS_OK;
}

static int decode_strings(history *h, rbuf *r)
{
    uint64_t nstr = bytecur_get_varint(r);
    if (r->bad || nstr > r->left)
        return LS_EPARSE;
    for (uint64_t i = 0; i < nstr; i++) {
        uint64_t len = bytecur_get_varint(r);
        uint32_t ref;
        if (r->bad || len > EVENT_MAX_STR || len > r->left)
            return LS_EPARSE;
        if (str_append(h, (const char *)r->p, (size_t)len, &ref))
            return LS_ENOMEM;
        r->p += len;
        r->left -= len;
    }
    return LS_OK;
}

static int decode_event(const history *h, rbuf *r, history_event *e, int64_t prev)
{
    memset(e, 0, sizeof *e);
    uint64_t dt = bytecur_get_varint(r);
    if (dt > (uint64_t)INT64_MAX - (uint64_t)prev) /* prev >= 0: checked before the sum overflows */
        r->bad = 1;
    else
        e->ts_ms = prev + (int64_t)dt;
    bytecur_get(r, &e->type, 1);
    int birthday = e->type == EV_PROFILE || (e->type & TYPE_BIRTHDAY);
    e->type &= (uint8_t)~TYPE_BIRTHDAY;
    bytecur_get(r, &e->bits, 1);
    e->quantity = 1;
    if (e->bits & HB_VALUE)
        bytecur_get(r, &e->value, 8);
    if (e->bits & HB_QUANTITY)
        e->quantity = unzigzag(bytecur_get_varint(r));
    if (e->bits & HB_IDENT)
        bytecur_get(r, &e->ident, 8);
    if (e->bits & HB_SESSION)
        bytecur_get(r, &e->session_hash, 4);
    if (e->bits & HB_CATEGORY)
        e->category = (uint32_t)bytecur_get_varint(r);
    if (e->bits & HB_PRODUCT)
        e->product = (uint32_t)bytecur_get_varint(r);
    if (e->bits & HB_ORDER)
        e->order = (uint32_t)bytecur_get_varint(r);
    if (e->type == EV_REVIEW)
        bytecur_get(r, &e->rating, 1);
    if (birthday)
        e->birthday_mmdd = (uint16_t)bytecur_get_varint(r);
    if (r->bad || e->type >= EV_TYPE_COUNT ||
        e->category > h->nstr || e->product > h->nstr || e->order > h->nstr || e->rating > 5)
        return LS_EPARSE;
    return LS_OK;
}

int history_decode(history *h, const uint8_t *buf, size_t len)
{
    rbuf r = {buf, len, 0};
    uint8_t head[2];
    history_clear(h);
    bytecur_get(&r, head, 2);
    if (r.bad || head[0] == 0)
        return LS_EPARSE;
    if (head[0] > HISTORY_VERSION)
        return LS_EVERSION;
    h->has_before = head[1] & 1;
    if (h->has_before) {
        uint64_t n = bytecur_get_varint(&r);
        if (r.bad || n > r.left)
            return LS_EPARSE;
        int rc = feature_decode(&h->before, r.p, (size_t)n);
        if (rc)
            return rc;
        r.p += n;
        r.left -= n;
    }
    if (head[1] & 2) {
        int rc = decode_folded(h, &r);
        if (rc)
            return rc;
    }
    if ((head[1] & 4) && !h->has_before)
        return LS_EPARSE; /* sets of no before */
    if (head[1] & 4) {
        int rc = decode_set(&h->fold_days, &r, 1);
        if (rc == LS_OK)
            rc = decode_set(&h->fold_orders, &r, 0);
        if (rc)
            return rc;
    }
    h->fold_sets_lost = h->has_before && !(head[1] & 4); /* a history from before the sets */
    int rc = decode_strings(h, &r);
    if (rc)
        return rc;
    uint64_t n = bytecur_get_varint(&r);
    if (r.bad || n > r.left / 3 + 1)
        return LS_EPARSE;
    if (reserve(h, (size_t)n))
        return LS_ENOMEM;
    int64_t prev = 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = decode_event(h, &r, &h->ev[i], prev)))
            return rc;
        prev = h->ev[i].ts_ms;
    }
    h->n = (size_t)n;
    return r.left == 0 ? LS_OK : LS_EPARSE;
}
