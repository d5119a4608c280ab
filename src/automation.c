/* automation.c -- live audiences and moments on the write path (see
 * automation.h): per-customer state, the evaluation of one customer, the
 * timer queue and the sweep.
 *
 * A customer's state (table trigger_states):
 *   u8 version (1), be64 next_due_ms (0: no timer), u8 n, then n moments:
 *   u8 moment, u8 in_occurrence, be64 occurrence key, be64 last fired ms;
 *   then be16 m and m be32 ids of the audiences it is a member of. */
#include "automation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assess.h"
#include "bytecur.h"
#include "error_internal.h"
#include "leadscore/error.h"
#include "log.h"
#include "timefmt.h"
#include "trigger.h"

#define STATE_VERSION 1
/* A state with heard_ms: version 1's fields, then heard_ms (be64).  A
 * customer whose events arrive as they happen never needs it, so its
 * state stays version 1, byte for byte. */
#define STATE_VERSION_HEARD 2
/* Events whose newest is stamped this long before they are heard came
 * late (a backlog, a history streamed to the service): the customer's
 * silence counts from when they were heard (quiet_since). */
#define HEARD_LATE_MS 60000LL
#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL
#define TIMER_CHUNK 500        /* timers run per txn */
#define SWEEP_CHUNK 256        /* customers a sweep txn evaluates (a few ms: a track waits at most that) */
#define SWEEP_YIELD_EVERY 16   /* ... but it looks for waiting requests this often, and stops for them */
#define SWEEP_ALONG 64         /* customers a group commit evaluates for a running pass */
#define SWEEP_YIELD 1
#define PRUNE_EVERY_MS 1000
#define PRUNE_CHUNK 1000
#define TOUCH_MAX_ID STORE_MAX_KEY

typedef struct {
    uint8_t occ;               /* an occurrence is under way (fired or not) */
    int64_t key;               /* which occurrence */
    int64_t fired_ms;          /* last trigger of this moment, 0: never */
} moment_state;

typedef struct {
    int64_t next_due_ms;
    moment_state moment[JA_COUNT];
    uint16_t naud;
    uint32_t aud[AUDIENCE_MAX];
    int64_t heard_ms;          /* when events stamped over HEARD_LATE_MS ago were last heard; 0: none such */
} cust_state;

/* Customers touched in the open txn: ids packed in a buffer (a u16
 * length first, its top bit set when events of the customer's own were
 * heard: TOUCH_HEARD), a small open-addressing set over them to drop
 * repeats. */
typedef struct {
    char *buf;
    size_t used, cap;
    size_t *offs;              /* start of each id in buf (u16 length first) */
    size_t n, offs_cap;
    uint32_t *slots;           /* 1-based index into offs, 0 empty */
    size_t nslots;
} touch_set;

#define TOUCH_HEARD 0x8000u /* ids are at most STORE_MAX_KEY bytes: the bit is free */

/* Why a customer is evaluated: its events were heard (LIVE); an alias
 * folded another's record into it, no event of its own heard (JOINED: as
 * LIVE, but the silence after its last events goes on); its timer rang;
 * the sweep came by. */
enum { MODE_LIVE, MODE_JOINED, MODE_TIMER, MODE_SWEEP };

struct automation {
    automation_config cfg;
    stats *st;
    audience_set audiences;
    int audiences_loaded;
    trigger_outbox outbox;
    touch_set touched;
    const model *m;
    int64_t now_ms;
    uint64_t last_seq;
    /* the sweep */
    int sweeping;
    char cursor[STORE_MAX_KEY + 1];
    size_t cursor_len;
    int64_t next_pass_ms;      /* 0: start one at once */
    uint64_t pass_visited;     /* customers the running pass has evaluated */
    int (*should_yield)(void *); /* the writer: requests are waiting (the sweep stops its chunk) */
    void *yield_arg;
    unsigned since_yield_check;
    int pass_pending;          /* an audience changed: start a pass after the current */
    uint32_t building[AUDIENCE_MAX]; /* not-ready audiences a running pass covers from its start */
    size_t nbuilding;
    int64_t last_prune_ms;
    int prune_more;            /* the last prune took a whole chunk: prune again without waiting */
    int64_t next_wake_ms;      /* the earliest timer as last seen */
    /* the running txn: its evaluations (counted in stats once it commits),
     * and the sweep and the timer wake as they began (put back if it
     * aborts: the customers of a chunk that failed are evaluated again,
     * none is skipped, and timers a failed txn took are due again) */
    uint64_t evaluations;
    struct {
        uint64_t moments, enters, exits, suppressed; /* triggers written (or held back) by the txn */
    } txn_counts;
    struct {
        int sweeping;
        char cursor[STORE_MAX_KEY + 1];
        size_t cursor_len, nbuilding;
        int64_t next_pass_ms, next_wake_ms;
        uint64_t pass_visited;
    } at_begin;
    /* scratch */
    uint8_t state_buf[AUTOMATION_STATE_MAX];
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

static const char DEFAULT_COOLDOWNS[] = "abandoned_cart=1d,win_back=30d,birthday=300d,anniversary=300d,"
                                        "vip_reward=30d,review_request=7d,recovery=30d,account_invite=30d";

int automation_parse_cooldowns(const char *text, int64_t out[JA_COUNT], char *err, size_t errlen)
{
    const char *p = text;
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char name[32], dur[32];
        if (!eq || (size_t)(eq - p) >= sizeof name || len - (size_t)(eq - p) - 1 >= sizeof dur)
            return ls_fail(err, errlen, LS_EPARSE, "--trigger-cooldowns: expected moment=duration, got \"%.*s\"",
                           (int)(len > 40 ? 40 : len), p);
        memcpy(name, p, (size_t)(eq - p));
        name[eq - p] = '\0';
        memcpy(dur, eq + 1, len - (size_t)(eq - p) - 1);
        dur[len - (size_t)(eq - p) - 1] = '\0';
        int i = 0;
        while (i < JA_COUNT && strcmp(journey_action_name((journey_action)i), name) != 0)
            i++;
        if (i == JA_COUNT)
            return ls_fail(err, errlen, LS_EPARSE, "--trigger-cooldowns: unknown moment \"%s\"", name);
        int64_t ms;
        if (timefmt_parse_duration(dur, &ms) != LS_OK || ms < 0)
            return ls_fail(err, errlen, LS_EPARSE, "--trigger-cooldowns: \"%s\" is not a duration (30s, 2h, 7d)",
                           dur);
        out[i] = ms;
        p = end ? end + 1 : NULL;
    }
    return LS_OK;
}

void automation_config_defaults(automation_config *c)
{
    memset(c, 0, sizeof *c);
    c->abandoned_cart_after_ms = HOUR_MS;
    c->retention_ms = 7 * DAY_MS;
    c->outbox_max = 1000000;
    c->refresh_ms = 15 * 60 * 1000;
    automation_parse_cooldowns(DEFAULT_COOLDOWNS, c->cooldown_ms, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* The touched set                                                     */
/* ------------------------------------------------------------------ */

static void touch_free(touch_set *t)
{
    free(t->buf);
    free(t->offs);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static void touch_clear(touch_set *t)
{
    t->used = t->n = 0;
    if (t->slots)
        memset(t->slots, 0, t->nslots * sizeof *t->slots);
}

static unsigned touch_prefix(const touch_set *t, size_t i)
{
    const char *p = t->buf + t->offs[i];
    return (unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1];
}

static const char *touch_get(const touch_set *t, size_t i, size_t *len)
{
    *len = touch_prefix(t, i) & ~TOUCH_HEARD;
    return t->buf + t->offs[i] + 2;
}

/* Whether events of customer i's own were heard in the txn. */
static int touch_heard(const touch_set *t, size_t i)
{
    return (touch_prefix(t, i) & TOUCH_HEARD) != 0;
}

static int touch_rehash(touch_set *t, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return LS_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        size_t len;
        const char *id = touch_get(t, i, &len);
        size_t s = bytecur_fnv1a32(id, len) & (nslots - 1);
        while (slots[s])
            s = (s + 1) & (nslots - 1);
        slots[s] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    return LS_OK;
}

static int touch_add(touch_set *t, const char *id, size_t len, int heard)
{
    if (len == 0 || len > TOUCH_MAX_ID)
        return LS_OK; /* cannot be keyed: automation leaves it alone */
    if ((t->n + 1) * 2 > t->nslots && touch_rehash(t, t->nslots ? t->nslots * 2 : 1024) != LS_OK)
        return LS_ENOMEM;
    uint32_t h = bytecur_fnv1a32(id, len);
    size_t s = h & (t->nslots - 1);
    for (; t->slots[s]; s = (s + 1) & (t->nslots - 1)) {
        size_t l;
        const char *have = touch_get(t, t->slots[s] - 1, &l);
        if (l == len && memcmp(have, id, len) == 0) {
            if (heard)
                t->buf[t->offs[t->slots[s] - 1]] |= (char)(TOUCH_HEARD >> 8);
            return LS_OK;
        }
    }
    if (t->used + 2 + len > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 65536;
        while (cap < t->used + 2 + len)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return LS_ENOMEM;
        t->buf = b;
        t->cap = cap;
    }
    if (t->n == t->offs_cap) {
        size_t cap = t->offs_cap ? t->offs_cap * 2 : 1024;
        size_t *o = realloc(t->offs, cap * sizeof *o);
        if (!o)
            return LS_ENOMEM;
        t->offs = o;
        t->offs_cap = cap;
    }
    t->offs[t->n] = t->used;
    unsigned prefix = (unsigned)len | (heard ? TOUCH_HEARD : 0);
    t->buf[t->used] = (char)(prefix >> 8);
    t->buf[t->used + 1] = (char)prefix;
    memcpy(t->buf + t->used + 2, id, len);
    t->used += 2 + len;
    t->slots[s] = (uint32_t)++t->n;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Customer state                                                      */
/* ------------------------------------------------------------------ */

static size_t state_encode(const cust_state *s, uint8_t *buf, size_t cap)
{
    bytecur_w w = {buf, cap, 0};
    uint8_t version = s->heard_ms ? STATE_VERSION_HEARD : STATE_VERSION, n = 0;
    for (int i = 0; i < JA_COUNT; i++)
        n += s->moment[i].occ || s->moment[i].fired_ms;
    bytecur_put(&w, &version, 1);
    bytecur_put_be64(&w, (uint64_t)s->next_due_ms);
    bytecur_put(&w, &n, 1);
    for (int i = 0; i < JA_COUNT; i++) {
        const moment_state *m = &s->moment[i];
        if (!m->occ && !m->fired_ms)
            continue;
        uint8_t idx = (uint8_t)i;
        bytecur_put(&w, &idx, 1);
        bytecur_put(&w, &m->occ, 1);
        bytecur_put_be64(&w, (uint64_t)m->key);
        bytecur_put_be64(&w, (uint64_t)m->fired_ms);
    }
    uint8_t nb[2] = {(uint8_t)(s->naud >> 8), (uint8_t)s->naud};
    bytecur_put(&w, nb, 2);
    for (uint16_t i = 0; i < s->naud; i++)
        bytecur_put_be32(&w, s->aud[i]);
    if (s->heard_ms)
        bytecur_put_be64(&w, (uint64_t)s->heard_ms);
    return w.bad ? 0 : (size_t)(w.p - buf);
}

static int state_decode(cust_state *s, const uint8_t *p, size_t len)
{
    bytecur_r r = {p, len, 0};
    uint8_t version = 0, n = 0, nb[2];
    memset(s, 0, sizeof *s);
    bytecur_get(&r, &version, 1);
    if (version != STATE_VERSION && version != STATE_VERSION_HEARD)
        return LS_EVERSION;
    s->next_due_ms = (int64_t)bytecur_get_be64(&r);
    bytecur_get(&r, &n, 1);
    for (uint8_t i = 0; i < n && !r.bad; i++) {
        uint8_t idx = 0, occ = 0;
        bytecur_get(&r, &idx, 1);
        bytecur_get(&r, &occ, 1);
        int64_t key = (int64_t)bytecur_get_be64(&r), fired = (int64_t)bytecur_get_be64(&r);
        if (idx < JA_COUNT) {
            s->moment[idx].occ = occ;
            s->moment[idx].key = key;
            s->moment[idx].fired_ms = fired;
        }
    }
    bytecur_get(&r, nb, 2);
    uint16_t naud = (uint16_t)(nb[0] << 8 | nb[1]);
    for (uint16_t i = 0; i < naud && !r.bad; i++) {
        uint32_t id = bytecur_get_be32(&r);
        if (s->naud < AUDIENCE_MAX)
            s->aud[s->naud++] = id;
    }
    if (version == STATE_VERSION_HEARD)
        s->heard_ms = (int64_t)bytecur_get_be64(&r);
    return r.bad ? LS_EPARSE : LS_OK;
}

static int state_has(const cust_state *s, uint32_t id)
{
    for (uint16_t i = 0; i < s->naud; i++)
        if (s->aud[i] == id)
            return 1;
    return 0;
}

/* Adds audience id to the state's list (member) or takes it out. */
static void state_mark(cust_state *s, uint32_t id, int member)
{
    if (member) {
        if (!state_has(s, id) && s->naud < AUDIENCE_MAX)
            s->aud[s->naud++] = id;
        return;
    }
    for (uint16_t k = 0; k < s->naud; k++)
        if (s->aud[k] == id) {
            memmove(&s->aud[k], &s->aud[k + 1], (size_t)(s->naud - k - 1) * sizeof s->aud[0]);
            s->naud--;
            return;
        }
}

/* ------------------------------------------------------------------ */
/* Moments                                                             */
/* ------------------------------------------------------------------ */

static int64_t floor_day(int64_t ms)
{
    return ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
}

/* Since when the customer has been silent: its last event, or when its
 * latest events were heard if they came late (heard_ms, kept in its
 * state), whichever is later -- events stamped hours ago that arrive now
 * (a backlog, a history streamed to the service) are no silence, so a cart
 * among them waits its whole delay for an order still on the way. */
static int64_t quiet_since(const ls_features *f, int64_t heard_ms)
{
    return heard_ms > f->last_seen_ms ? heard_ms : f->last_seen_ms;
}

/* The cart condition of the trigger: open, silent for abandoned_cart_after,
 * and not older than the model's cart_max_days. */
static int cart_stale(const automation *a, const journey_rules *r, const ls_features *f)
{
    return (double)(a->now_ms - f->last_cart_ms) > r->cart_max_days * (double)DAY_MS;
}

static int cart_abandoned(const automation *a, const journey_rules *r, const ls_features *f, int64_t heard_ms)
{
    return feature_cart_is_open(f) && a->now_ms - quiet_since(f, heard_ms) >= a->cfg.abandoned_cart_after_ms &&
           !cart_stale(a, r, f);
}

/* The year of day number `day` (days since 1970-01-01). */
static int64_t year_of_day(int64_t day)
{
    int64_t y;
    int mo, d;
    timefmt_civil(day * DAY_MS, &y, &mo, &d);
    return y;
}

/* Which occurrence of moment m holds now (see automation.h), and whether
 * the occurrence ends when the condition stops holding.  A birthday or an
 * anniversary is one occurrence per calendar year of the date it falls
 * on: a birthday changed back and forth within its window fires once. */
static int64_t occurrence_key(const automation *a, const journey_rules *r, const ls_features *f, int m,
                              int *ends_when_off)
{
    int64_t today = floor_day(a->now_ms);
    (void)r;
    *ends_when_off = 0;
    switch (m) {
    case JA_ABANDONED_CART:
        *ends_when_off = !feature_cart_is_open(f) || cart_stale(a, r, f);
        return f->last_purchase_ms;
    case JA_WIN_BACK:
    case JA_REVIEW_REQUEST:
        return f->last_purchase_ms;
    case JA_BIRTHDAY:
        return f->birthday_mmdd
                   ? year_of_day(timefmt_next_date(today, f->birthday_mmdd / 100, f->birthday_mmdd % 100))
                   : 0;
    case JA_ANNIVERSARY: {
        int64_t y;
        int mo, d;
        timefmt_civil(f->first_purchase_ms, &y, &mo, &d);
        return year_of_day(timefmt_next_date(today, mo, d));
    }
    default:
        *ends_when_off = 1;
        return 0;
    }
}

/* A stored occurrence key against this one.  States written before the
 * birthday and anniversary keys were years hold the date's day number
 * (days since 1970, far above any year): that date's year is the same
 * occurrence, so an upgrade fires none of them again. */
static int same_occurrence(int m, int64_t stored, int64_t key)
{
    if ((m == JA_BIRTHDAY || m == JA_ANNIVERSARY) && stored > 10000)
        stored = year_of_day(stored);
    return stored == key;
}

/* The earliest time after now at which a time-based condition of f can
 * change (the timer), or 0 (heard_ms: see quiet_since). */
static int64_t next_due(const automation *a, const journey_rules *r, const ls_features *f, int64_t heard_ms)
{
    int64_t now = a->now_ms, best = 0, today = floor_day(now);
    int64_t cand[16];
    int n = 0;
    if (feature_cart_is_open(f)) {
        cand[n++] = quiet_since(f, heard_ms) + a->cfg.abandoned_cart_after_ms;
        cand[n++] = f->last_cart_ms + (int64_t)(r->cart_max_days * (double)DAY_MS) + 1;
        cand[n++] = f->last_cart_ms + (int64_t)(r->cart_min_hours * (double)HOUR_MS);
    }
    if (f->last_purchase_ms) {
        cand[n++] = f->last_purchase_ms + (int64_t)(r->review_min_days * (double)DAY_MS);
        cand[n++] = f->last_purchase_ms + (int64_t)(r->review_max_days * (double)DAY_MS) + 1;
        cand[n++] = f->last_purchase_ms + (int64_t)(r->winback_min_days * (double)DAY_MS);
        cand[n++] = f->last_purchase_ms + (int64_t)(r->lapsed_days * (double)DAY_MS);
    }
    if (f->last_negative_ms)
        cand[n++] = f->last_negative_ms + (int64_t)(r->disappointment_days * (double)DAY_MS) + 1;
    if (f->birthday_mmdd) {
        int64_t bday = timefmt_next_date(today, f->birthday_mmdd / 100, f->birthday_mmdd % 100);
        int64_t start = bday - (int64_t)r->birthday_days_ahead;
        cand[n++] = (start > today ? start : bday + 1) * DAY_MS;
    }
    if (f->first_purchase_ms) {
        int64_t y;
        int mo, d;
        timefmt_civil(f->first_purchase_ms, &y, &mo, &d);
        int64_t ann = timefmt_next_date(today, mo, d);
        int64_t start = ann - (int64_t)r->anniversary_days_ahead;
        cand[n++] = (start > today ? start : ann + 1) * DAY_MS;
    }
    for (int i = 0; i < n; i++)
        if (cand[i] > now && (best == 0 || cand[i] < best))
            best = cand[i];
    return best;
}

/* ------------------------------------------------------------------ */
/* Evaluating one customer                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *id;
    size_t len;
    const ls_features *f;
    assess_result *res;
    const journey_rules *rules;
    const model *m;
    int64_t now_ms;
    const feature_decay *decay;
    int segments_done;          /* res->segments are ranked (they are only when needed) */
    int64_t heard_ms;           /* the state's heard_ms (quiet_since) */
} eval_ctx;

/* Ranks the customer's content segments into e->res, once: a trigger
 * carries the top one, and a rule may read them; most evaluations need
 * neither. */
static void need_segments(eval_ctx *e)
{
    if (e->segments_done)
        return;
    e->segments_done = 1;
    feature_ctx ctx = {e->now_ms, *e->decay};
    segments_inputs si = {ctx, e->res->journey, e->res->p_alive, e->res->clv};
    const segments_catalogue *cat = model_segments(e->m);
    e->res->nsegments = segments_rank_ex(cat, e->f, &si, cat->k, 0, e->res->segments); /* names only */
}

/* Adds n to the counter `field` of the server's stats, when there are. */
#define BUMP(a, field, n)                                  \
    do {                                                   \
        if ((a)->st && (n))                                \
            atomic_fetch_add(&(a)->st->field, (n));        \
    } while (0)

static int emit(automation *a, store_wtxn *w, eval_ctx *e, trigger_kind kind, const char *name, double value)
{
    need_segments(e);
    const assess_result *r = e->res;
    trigger_record t = {kind, name, e->id, e->len, a->now_ms, r->logistic.score, r->logistic.tier,
                        journey_phase_name(r->journey.phase), journey_type_name(r->journey.type),
                        r->nsegments ? r->segments[0].segment : "", r->clv, value};
    return trigger_append(&a->outbox, w, &t, NULL);
}

static int step_moments(automation *a, store_wtxn *w, eval_ctx *e, cust_state *s, int baseline)
{
    unsigned on = e->res->journey.actions & ~(1u << JA_ABANDONED_CART);
    if (cart_abandoned(a, e->rules, e->f, e->heard_ms))
        on |= 1u << JA_ABANDONED_CART;
    for (int m = 0; m < JA_COUNT; m++) {
        moment_state *ms = &s->moment[m];
        int ends_when_off;
        int64_t key = occurrence_key(a, e->rules, e->f, m, &ends_when_off);
        if (!(on & (1u << m))) {
            if (ends_when_off)
                ms->occ = 0;
            continue;
        }
        if (ms->occ && same_occurrence(m, ms->key, key))
            continue; /* this occurrence is handled */
        ms->occ = 1;
        ms->key = key;
        if (baseline)
            continue;
        if (ms->fired_ms && a->now_ms - ms->fired_ms < a->cfg.cooldown_ms[m]) {
            a->txn_counts.suppressed++;
            continue;
        }
        /* the record keeps cart values as 32-bit floats: to the cent, 89.9 reads 89.9 */
        double value = m == JA_ABANDONED_CART ? round(feature_open_cart(e->f) * 100.0) / 100.0 : 0;
        int rc = emit(a, w, e, TRIGGER_MOMENT, journey_action_name((journey_action)m), value);
        if (rc)
            return rc;
        ms->fired_ms = a->now_ms;
        a->txn_counts.moments++;
    }
    return LS_OK;
}

static int building(const automation *a, uint32_t id)
{
    for (size_t i = 0; i < a->nbuilding; i++)
        if (a->building[i] == id)
            return 1;
    return 0;
}

static int step_audiences(automation *a, store_wtxn *w, eval_ctx *e, const ls_features *f, cust_state *s,
                          int baseline)
{
    feature_ctx ctx = {a->now_ms, a->cfg.decay};
    arule_input in = {e->res, f, &ctx, 1};
    cust_state next = *s;
    next.naud = 0;
    for (size_t i = 0; i < a->audiences.n; i++) {
        audience_def *d = &a->audiences.defs[i];
        if (arule_uses_segments(d->rule))
            need_segments(e);
        int member = arule_eval(d->rule, &in), was = state_has(s, d->info.id);
        if (member)
            next.aud[next.naud++] = d->info.id;
        if (member == was)
            continue;
        int rc = audience_set_member(d, w, e->id, e->len, member, a->now_ms);
        if (rc)
            return rc;
        if (baseline || !d->info.ready || building(a, d->info.id))
            continue;
        if ((rc = emit(a, w, e, member ? TRIGGER_ENTER : TRIGGER_EXIT, d->info.name, 0)))
            return rc;
        if (member)
            a->txn_counts.enters++;
        else
            a->txn_counts.exits++;
    }
    s->naud = next.naud;
    memcpy(s->aud, next.aud, next.naud * sizeof *s->aud);
    return LS_OK;
}

/* The first pass of an offline `audience add` (offline_build): only the
 * audiences not yet ready, no trigger.  keep_state: the customer has a
 * state, which then lists its new memberships too; a customer the
 * automation never met gets none (the service's sweep records it whole,
 * its member rows already counted). */
static int step_building(automation *a, store_wtxn *w, eval_ctx *e, const ls_features *f, cust_state *s,
                         int keep_state)
{
    feature_ctx ctx = {a->now_ms, a->cfg.decay};
    arule_input in = {e->res, f, &ctx, 1};
    for (size_t i = 0; i < a->audiences.n; i++) {
        audience_def *d = &a->audiences.defs[i];
        if (d->info.ready && !building(a, d->info.id))
            continue;
        if (arule_uses_segments(d->rule))
            need_segments(e);
        int member = arule_eval(d->rule, &in), was = state_has(s, d->info.id);
        if (member == was)
            continue;
        int rc = audience_set_member(d, w, e->id, e->len, member, a->now_ms);
        if (rc)
            return rc;
        if (keep_state)
            state_mark(s, d->info.id, member);
    }
    return LS_OK;
}

/* A stored value that cannot be decoded (damage: LMDB keeps no checksums).
 * A timer or the sweep passes such a customer by, logged, instead of
 * failing its whole transaction at every turn (which held up every other
 * timer); a write to it is refused by the writer, which names it. */
static int passed_by_as_damaged(int rc, int mode, const char *id, size_t len)
{
    if (mode == MODE_LIVE || mode == MODE_JOINED || (rc != LS_EPARSE && rc != LS_EVERSION))
        return 0;
    LOG_ERROR("stored_record_damaged", "customer=\"%.*s\" reason=\"%s\" note=\"the automation passes it by; "
              "restore the store from a backup\"", (int)len, id, ls_strerror(rc));
    return 1;
}

/* Evaluates customer id (a record key: already resolved) at a->now_ms. */
/* Writes customer id's state s, unless it encodes to old (NULL: none). */
static int keep_state(automation *a, store_wtxn *w, const char *id, size_t len, const cust_state *s,
                      const uint8_t *old, size_t old_len)
{
    size_t n = state_encode(s, a->state_buf, sizeof a->state_buf);
    if (n == 0)
        return LS_EINTERNAL;
    a->evaluations++;
    if (old && n == old_len && memcmp(a->state_buf, old, n) == 0)
        return LS_OK;
    BUMP(a, automation_state_writes, 1);
    return store_wtxn_put_state(w, id, len, a->state_buf, n);
}

static int evaluate(automation *a, store_wtxn *w, const char *id, size_t len, const ls_features *f_in, int mode)
{
    ls_features f;
    store_bytes old;
    cust_state s;
    int rc;
    if (len > TOUCH_MAX_ID - 8)
        return LS_OK;
    rc = store_wtxn_get_state(w, id, len, f_in ? NULL : &f, &old);
    if (rc == LS_ENOTFOUND)
        return LS_OK; /* gone (forget, alias) before its turn: automation_forget saw to it */
    if (rc)
        return passed_by_as_damaged(rc, mode, id, len) ? LS_OK : rc;
    if (f_in)
        f = *f_in;
    /* A customer with events still ahead of the clock (their time is at
     * most a day away) is evaluated as the reads see it, as of now, and
     * comes up again when the first of them is due: a purchase stamped
     * for tonight fires nothing and joins no audience before tonight. */
    int64_t upcoming = 0;
    int not_yet = 0;
    if (f.last_seen_ms > a->now_ms) {
        rc = store_wtxn_get_asof(w, id, len, a->now_ms, &f, &upcoming);
        if (rc != LS_OK && rc != LS_ENOTFOUND)
            return passed_by_as_damaged(rc, mode, id, len) ? LS_OK : rc;
        not_yet = rc == LS_ENOTFOUND;
    }
    int had = old.len > 0;
    uint8_t old_bytes[sizeof a->state_buf];
    size_t old_len = had && old.len <= sizeof old_bytes ? old.len : 0;
    if (old_len)
        memcpy(old_bytes, old.ptr, old_len);
    if (!had || state_decode(&s, old_bytes, old_len) != LS_OK)
        memset(&s, 0, sizeof s);
    if (mode == MODE_TIMER)
        s.next_due_ms = 0; /* its timer key is already gone */
    /* Met first by the sweep: stored without the automation (a bulk
     * import, a store from before automation, events while --triggers was
     * off); what holds is recorded, not fired.  Every customer the
     * automation evaluated keeps a state (below), so this is never a
     * customer it met: whatever changes for one of those fires, even when
     * its events carry old times (a history sent over the wire). */
    int baseline = mode == MODE_SWEEP && !had;
    assess_result res;
    feature_ctx ctx = {a->now_ms, a->cfg.decay};
    assess_customer(a->m, &f, &ctx, 0, 0, &res); /* segments: need_segments */
    /* events just heard: late ones start the silence now, timely ones
     * end what late ones started */
    if (mode == MODE_LIVE)
        s.heard_ms = a->now_ms - f.last_seen_ms > HEARD_LATE_MS ? a->now_ms : 0;
    eval_ctx e = {id, len, &f, &res, model_journey(a->m), a->m, a->now_ms, &a->cfg.decay, 0, s.heard_ms};
    if (a->cfg.offline_build) {
        if (not_yet || (rc = step_building(a, w, &e, &f, &s, had)) || !had)
            return rc;
        return keep_state(a, w, id, len, &s, old_bytes, old_len);
    }
    if (!not_yet && ((rc = step_moments(a, w, &e, &s, baseline)) || (rc = step_audiences(a, w, &e, &f, &s, baseline))))
        return rc;
    /* The timer moves only when it must ring earlier: one that rings too
     * early finds nothing due and re-arms, which costs less than moving it
     * on every event (an open cart's silence restarts with each).  A
     * customer has at most one timer, the one its state names, so a forget
     * can delete it (the key holds the id). */
    int64_t due = not_yet ? 0 : next_due(a, e.rules, &f, e.heard_ms);
    if (upcoming > a->now_ms && (due == 0 || upcoming < due))
        due = upcoming;
    if (due && (s.next_due_ms == 0 || due < s.next_due_ms || s.next_due_ms <= a->now_ms)) {
        if ((rc = trigger_timer_move(w, id, len, s.next_due_ms, due)))
            return rc;
        s.next_due_ms = due;
        BUMP(a, automation_timer_moves, 1);
    }
    if (s.next_due_ms && (a->next_wake_ms == 0 || s.next_due_ms < a->next_wake_ms))
        a->next_wake_ms = s.next_due_ms;
    /* kept even when nothing is under way: it marks the customer as met */
    return keep_state(a, w, id, len, &s, had ? old_bytes : NULL, old_len);
}

/* ------------------------------------------------------------------ */
/* The txn protocol                                                    */
/* ------------------------------------------------------------------ */

int automation_open(automation **out, const automation_config *cfg, stats *st)
{
    automation *a = calloc(1, sizeof *a);
    if (!a)
        return LS_ENOMEM;
    a->cfg = *cfg;
    a->st = st;
    trigger_outbox_init(&a->outbox);
    *out = a;
    return LS_OK;
}

void automation_close(automation **ap)
{
    if (!ap || !*ap)
        return;
    automation *a = *ap;
    audience_set_free(&a->audiences);
    trigger_outbox_free(&a->outbox);
    touch_free(&a->touched);
    free(a);
    *ap = NULL;
}

int automation_begin(automation *a, store_wtxn *w, const model *m, int64_t now_ms)
{
    int rc;
    a->m = m;
    a->now_ms = now_ms;
    touch_clear(&a->touched);
    a->evaluations = 0;
    a->at_begin.sweeping = a->sweeping;
    memcpy(a->at_begin.cursor, a->cursor, a->cursor_len);
    a->at_begin.cursor_len = a->cursor_len;
    a->at_begin.nbuilding = a->nbuilding;
    a->at_begin.next_pass_ms = a->next_pass_ms;
    a->at_begin.next_wake_ms = a->next_wake_ms; /* a timer txn that fails gives its due timers back */
    a->at_begin.pass_visited = a->pass_visited;
    if (!a->audiences_loaded) {
        if ((rc = audience_set_load(&a->audiences, w)) != LS_OK)
            return rc;
        a->audiences_loaded = 1;
        for (size_t i = 0; i < a->audiences.n; i++)
            if (!a->audiences.defs[i].info.ready)
                a->pass_pending = 1; /* a pass that was cut short by a restart */
    }
    return trigger_outbox_begin(&a->outbox, w);
}

int automation_touch(automation *a, const char *id, size_t len)
{
    return touch_add(&a->touched, id, len, 1);
}

int automation_touch_joined(automation *a, const char *id, size_t len)
{
    return touch_add(&a->touched, id, len, 0);
}

int automation_state_read(store_wtxn *w, const char *id, size_t len, uint8_t *buf, size_t cap, size_t *n)
{
    store_bytes st;
    *n = 0;
    int rc = store_wtxn_get_state(w, id, len, NULL, &st);
    if (rc == LS_ENOTFOUND)
        return LS_OK;
    if (rc)
        return rc;
    if (st.len > cap)
        return LS_EPARSE;
    if (st.len)
        memcpy(buf, st.ptr, st.len);
    *n = st.len;
    return LS_OK;
}

int automation_forget(automation *a, store_wtxn *w, const char *id, size_t len, int erase_triggers,
                      const uint8_t *state, size_t state_len)
{
    cust_state s;
    size_t erased = 0;
    if (len > TOUCH_MAX_ID - 8)
        return LS_OK;
    int rc = erase_triggers ? trigger_forget(w, id, len, &erased) : LS_OK; /* erasure: the outbox too */
    if (rc || state_len == 0 || state_decode(&s, state, state_len) != LS_OK)
        return rc;
    /* its timer goes too: the key holds the id */
    if ((rc = trigger_timer_move(w, id, len, s.next_due_ms, 0)))
        return rc;
    for (uint16_t i = 0; i < s.naud; i++) {
        audience_def *d = audience_find_id(&a->audiences, s.aud[i]);
        if (d && (rc = audience_set_member(d, w, id, len, 0, a->now_ms)))
            return rc;
    }
    return LS_OK;
}

int automation_forget_damaged(automation *a, store_wtxn *w, const char *id, size_t len)
{
    size_t erased = 0;
    if (len > TOUCH_MAX_ID - 8)
        return LS_OK;
    int rc = trigger_forget(w, id, len, &erased);
    for (size_t i = 0; rc == LS_OK && i < a->audiences.n; i++)
        rc = audience_set_member(&a->audiences.defs[i], w, id, len, 0, a->now_ms);
    return rc;
}

int automation_alias_exits(automation *a, store_wtxn *w, const char *id, size_t len, const ls_features *f,
                           const uint8_t *state, size_t state_len)
{
    cust_state s;
    if (len > TOUCH_MAX_ID - 8 || state_len == 0 || state_decode(&s, state, state_len) != LS_OK || s.naud == 0)
        return LS_OK;
    assess_result res;
    feature_ctx ctx = {a->now_ms, a->cfg.decay};
    assess_customer(a->m, f, &ctx, 0, 0, &res);
    eval_ctx e = {id, len, f, &res, model_journey(a->m), a->m, a->now_ms, &a->cfg.decay, 0, s.heard_ms};
    for (uint16_t i = 0; i < s.naud; i++) {
        audience_def *d = audience_find_id(&a->audiences, s.aud[i]);
        if (!d || !d->info.ready || building(a, d->info.id))
            continue; /* an audience still building fires nothing for anyone */
        int rc = emit(a, w, &e, TRIGGER_EXIT, d->info.name, 0);
        if (rc)
            return rc;
        a->txn_counts.exits++;
    }
    return LS_OK;
}

int automation_forget_stopped(store_wtxn *w, const char *id, size_t len, int erase_triggers, const uint8_t *state,
                              size_t state_len, int64_t now_ms)
{
    audience_set set = {0};
    cust_state s;
    size_t erased = 0;
    if (len > TOUCH_MAX_ID - 8)
        return LS_OK;
    int rc = erase_triggers ? trigger_forget(w, id, len, &erased) : LS_OK;
    if (rc == LS_OK && state_len && state_decode(&s, state, state_len) == LS_OK)
        rc = trigger_timer_move(w, id, len, s.next_due_ms, 0);
    if (rc == LS_OK)
        rc = audience_set_load(&set, w);
    for (size_t i = 0; rc == LS_OK && i < set.n; i++) /* every audience: the state may be older than a rule */
        rc = audience_set_member(&set.defs[i], w, id, len, 0, now_ms);
    if (rc == LS_OK)
        rc = audience_flush(&set, w);
    audience_set_free(&set);
    return rc;
}

int automation_inherit(automation *a, store_wtxn *w, const char *id, size_t len, const uint8_t *from_state,
                       size_t from_len)
{
    cust_state from, to;
    store_bytes st;
    int merged = 0;
    if (len > TOUCH_MAX_ID - 8 || from_len == 0 || state_decode(&from, from_state, from_len) != LS_OK)
        return LS_OK;
    int rc = store_wtxn_get_state(w, id, len, NULL, &st);
    if (rc)
        return rc == LS_ENOTFOUND ? LS_OK : rc;
    if (st.len == 0 || state_decode(&to, st.ptr, st.len) != LS_OK)
        memset(&to, 0, sizeof to);
    for (int i = 0; i < JA_COUNT; i++) {
        if (from.moment[i].fired_ms > to.moment[i].fired_ms) {
            to.moment[i].fired_ms = from.moment[i].fired_ms;
            merged = 1;
        }
    }
    if (!merged)
        return LS_OK;
    size_t n = state_encode(&to, a->state_buf, sizeof a->state_buf);
    return n ? store_wtxn_put_state(w, id, len, a->state_buf, n) : LS_EINTERNAL;
}

int automation_audience_put(automation *a, store_wtxn *w, const char *name, size_t name_len, const char *rule,
                            int *created, int *changed, char *err, size_t errlen)
{
    int rc = audience_put(&a->audiences, w, name, name_len, rule, a->now_ms, created, changed, err, errlen);
    if (rc == LS_OK && *changed)
        a->pass_pending = 1;
    return rc;
}

int automation_audience_delete(automation *a, store_wtxn *w, const char *name, size_t name_len, int *deleted)
{
    return audience_delete(&a->audiences, w, name, name_len, deleted);
}

/* The customers evaluated a few steps ahead have their values brought
 * into the cache (a customer's value was written a whole group ago). */
#define PREFETCH_SLOT_AHEAD 4
#define PREFETCH_ENTRY_AHEAD 2

static void prefetch_touched(automation *a, store_wtxn *w, size_t i)
{
    size_t len;
    if (i + PREFETCH_SLOT_AHEAD < a->touched.n) {
        const char *id = touch_get(&a->touched, i + PREFETCH_SLOT_AHEAD, &len);
        store_wtxn_prefetch(w, id, len, STORE_PREFETCH_SLOT);
    }
    if (i + PREFETCH_ENTRY_AHEAD < a->touched.n) {
        const char *id = touch_get(&a->touched, i + PREFETCH_ENTRY_AHEAD, &len);
        store_wtxn_prefetch(w, id, len, STORE_PREFETCH_VALUE);
    }
}

int automation_finish(automation *a, store_wtxn *w)
{
    for (size_t i = 0; i < a->touched.n; i++) {
        size_t len, rlen;
        prefetch_touched(a, w, i);
        const char *id = touch_get(&a->touched, i, &len), *target;
        int rc = store_wtxn_resolve(w, id, len, &target, &rlen);
        if (rc)
            return rc;
        char copy[STORE_MAX_KEY + 1];
        memcpy(copy, target, rlen); /* txn memory: copy before writing */
        if ((rc = evaluate(a, w, copy, rlen, NULL, touch_heard(&a->touched, i) ? MODE_LIVE : MODE_JOINED)) != LS_OK)
            return rc;
    }
    touch_clear(&a->touched);
    return audience_flush(&a->audiences, w);
}

uint64_t automation_committed(automation *a)
{
    uint64_t n = a->outbox.appended;
    if (a->outbox.next_seq > 1)
        a->last_seq = a->outbox.next_seq - 1;
    a->outbox.appended = 0;
    BUMP(a, automation_evaluations, a->evaluations);
    a->evaluations = 0;
    /* what the outbox now holds: counted once, after the commit (a txn
     * that aborts and is tried again writes its triggers again) */
    BUMP(a, triggers_moments, a->txn_counts.moments);
    BUMP(a, triggers_enters, a->txn_counts.enters);
    BUMP(a, triggers_exits, a->txn_counts.exits);
    BUMP(a, triggers_suppressed, a->txn_counts.suppressed);
    memset(&a->txn_counts, 0, sizeof a->txn_counts);
    return n;
}

void automation_aborted(automation *a)
{
    a->audiences_loaded = 0; /* what the txn changed in memory goes */
    a->outbox.appended = 0;
    touch_clear(&a->touched);
    a->evaluations = 0;
    memset(&a->txn_counts, 0, sizeof a->txn_counts);
    a->sweeping = a->at_begin.sweeping;
    memcpy(a->cursor, a->at_begin.cursor, a->at_begin.cursor_len);
    a->cursor_len = a->at_begin.cursor_len;
    a->nbuilding = a->at_begin.nbuilding;
    a->next_pass_ms = a->at_begin.next_pass_ms;
    a->next_wake_ms = a->at_begin.next_wake_ms;
    a->pass_visited = a->at_begin.pass_visited;
}

uint64_t automation_last_seq(const automation *a)
{
    return a->last_seq;
}

void automation_set_yield(automation *a, int (*should_yield)(void *), void *arg)
{
    a->should_yield = should_yield;
    a->yield_arg = arg;
}

int automation_audiences_ready(const automation *a)
{
    if (!a->audiences_loaded || a->pass_pending)
        return 0;
    for (size_t i = 0; i < a->audiences.n; i++)
        if (!a->audiences.defs[i].info.ready)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Timers, sweep, pruning                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    automation *a;
    store_wtxn *w;
    int mode;
} visit_ctx;

/* A timer came due: the customer re-evaluates (a timer its state does
 * not name, left by a failure or a forget racing it, is dropped). */
static int visit_due(void *arg, const char *id, size_t len, int64_t due_ms)
{
    visit_ctx *v = arg;
    store_bytes cur;
    cust_state s;
    int rc = store_wtxn_get_state(v->w, id, len, NULL, &cur);
    if (rc == LS_ENOTFOUND)
        return LS_OK;
    if (rc) /* a damaged customer's timer is let go: it would ring again at every turn */
        return passed_by_as_damaged(rc, MODE_TIMER, id, len) ? trigger_timer_move(v->w, id, len, due_ms, 0) : rc;
    if (cur.len == 0 || state_decode(&s, cur.ptr, cur.len) != LS_OK || s.next_due_ms != due_ms)
        return LS_OK;
    BUMP(v->a, automation_timers, 1);
    return evaluate(v->a, v->w, id, len, NULL, MODE_TIMER);
}

static int visit_sweep(void *arg, const char *id, size_t len, const ls_features *f)
{
    visit_ctx *v = arg;
    automation *a = v->a;
    char copy[STORE_MAX_KEY + 1];
    if (a->should_yield && ++a->since_yield_check >= SWEEP_YIELD_EVERY) {
        a->since_yield_check = 0;
        if (a->should_yield(a->yield_arg))
            return SWEEP_YIELD; /* this customer is the next chunk's first */
    }
    memcpy(copy, id, len); /* the cursor's memory: copy before writing */
    memcpy(a->cursor, id, len);
    a->cursor_len = len;
    return evaluate(a, v->w, copy, len, f, MODE_SWEEP);
}

/* Runs fn inside one txn of s with the automation's begin/finish around
 * it, committing on success.  *appended gets the triggers committed. */
static int in_txn(automation *a, store *s, const model *m, int64_t now_ms, int (*fn)(automation *, store_wtxn *, void *),
                  void *arg, uint64_t *appended)
{
    store_wtxn *w = NULL;
    int rc = store_write_begin(s, &w);
    if (rc == LS_OK)
        rc = automation_begin(a, w, m, now_ms);
    if (rc == LS_OK)
        rc = fn(a, w, arg);
    if (rc == LS_OK)
        rc = automation_finish(a, w);
    if (rc == LS_OK)
        rc = store_write_commit(&w);
    store_write_abort(&w);
    if (rc == LS_OK) {
        *appended += automation_committed(a);
    } else {
        automation_aborted(a);
    }
    return rc;
}

static int run_timers(automation *a, store_wtxn *w, void *arg)
{
    size_t *taken = arg;
    visit_ctx v = {a, w, MODE_TIMER};
    int rc = trigger_timer_take(w, a->now_ms, TIMER_CHUNK, visit_due, &v, taken);
    if (rc == LS_OK) {
        a->next_wake_ms = trigger_timer_first(w);
    }
    return rc;
}

/* Evaluates up to max customers of the running pass in w; at the pass's
 * end marks the audiences it built ready and schedules the next pass.
 * (An aborted txn undoes the ready flags, and automation_aborted puts the
 * pass back where the txn began: its customers are evaluated again.) */
static int sweep_chunk(automation *a, store_wtxn *w, size_t max)
{
    int more = 0;
    size_t visited;
    visit_ctx v = {a, w, MODE_SWEEP};
    int rc = store_wtxn_scan_customers(w, a->cursor, a->cursor_len, max, visit_sweep, &v, &visited, &more);
    a->pass_visited += visited;
    if (rc == SWEEP_YIELD) /* requests came: commit what is done, go on later */
        return LS_OK;
    if (rc != LS_OK || more)
        return rc;
    for (size_t i = 0; i < a->nbuilding; i++) { /* the pass is done: what it built is ready */
        audience_def *d = audience_find_id(&a->audiences, a->building[i]);
        if (d && !d->info.ready) {
            d->info.ready = 1;
            d->dirty = 1;
        }
    }
    a->sweeping = 0;
    a->nbuilding = 0;
    a->next_pass_ms = a->now_ms + a->cfg.refresh_ms; /* a refresh after this one ended */
    return audience_flush(&a->audiences, w);
}

static int run_sweep(automation *a, store_wtxn *w, void *arg)
{
    (void)arg;
    return sweep_chunk(a, w, SWEEP_CHUNK);
}

int automation_sweep_along(automation *a, store_wtxn *w)
{
    if (!a->sweeping)
        return LS_OK;
    int (*yield)(void *) = a->should_yield;
    a->should_yield = NULL; /* inside a group: the jobs waiting are the next group's */
    int rc = sweep_chunk(a, w, SWEEP_ALONG);
    a->should_yield = yield;
    /* after automation_finish's flush: the members this chunk moved are
     * counted in the same txn as their rows (an abort later would lose a
     * count left in memory) */
    return rc == LS_OK ? audience_flush(&a->audiences, w) : rc;
}

static int run_prune(automation *a, store_wtxn *w, void *arg)
{
    size_t *pruned = arg;
    return trigger_prune(w, a->now_ms - a->cfg.retention_ms, a->cfg.outbox_max, PRUNE_CHUNK, pruned);
}

static void start_pass(automation *a, int64_t now_ms)
{
    a->sweeping = 1;
    a->cursor_len = 0;
    a->pass_visited = 0;
    a->pass_pending = 0;
    a->nbuilding = 0;
    for (size_t i = 0; i < a->audiences.n; i++)
        if (!a->audiences.defs[i].info.ready)
            a->building[a->nbuilding++] = a->audiences.defs[i].info.id;
    (void)now_ms;
    BUMP(a, automation_sweeps, 1);
}

int automation_tick(automation *a, store *s, const model *m, int64_t now_ms, int *busy, int64_t *wake_ms,
                    uint64_t *appended)
{
    int rc = LS_OK;
    *busy = 0;
    if (!a->audiences_loaded) {
        store_wtxn *w = NULL;
        if ((rc = store_write_begin(s, &w)) == LS_OK && (rc = automation_begin(a, w, m, now_ms)) == LS_OK)
            a->next_wake_ms = trigger_timer_first(w);
        store_write_abort(&w);
        if (rc)
            return rc;
    }
    if (!a->cfg.offline_build && a->next_wake_ms && a->next_wake_ms <= now_ms) {
        size_t taken = 0;
        rc = in_txn(a, s, m, now_ms, run_timers, &taken, appended);
        if (rc)
            return rc;
        *busy |= taken == TIMER_CHUNK;
    }
    if (!a->sweeping && (a->pass_pending || a->next_pass_ms == 0 || now_ms >= a->next_pass_ms))
        start_pass(a, now_ms);
    /* a chunk of its own only while no request waits: under load the sweep
     * rides along the group commits (automation_sweep_along), sharing
     * their fsync */
    if (a->sweeping && !(a->should_yield && a->should_yield(a->yield_arg))) {
        rc = in_txn(a, s, m, now_ms, run_sweep, NULL, appended);
        if (rc)
            return rc;
    }
    *busy |= a->sweeping || a->pass_pending;
    /* once a second, and at once again while a prune finds more to do (a
     * burst of triggers past --trigger-max must not outgrow 1,000/s) */
    if (!a->cfg.offline_build && (a->prune_more || now_ms - a->last_prune_ms >= PRUNE_EVERY_MS)) {
        size_t pruned = 0;
        a->last_prune_ms = now_ms;
        rc = in_txn(a, s, m, now_ms, run_prune, &pruned, appended);
        if (rc == LS_OK) /* a prune that did not commit pruned nothing */
            BUMP(a, triggers_pruned, pruned);
        a->prune_more = rc == LS_OK && pruned == PRUNE_CHUNK;
        *busy |= a->prune_more;
    }
    *wake_ms = a->next_wake_ms;
    return rc;
}

int automation_build(automation *a, store *s, const model *m, int64_t now_ms, automation_progress_fn progress,
                     void *arg)
{
    int busy = 1;
    int64_t wake;
    uint64_t appended = 0;
    a->next_pass_ms = 0;
    for (;;) {
        int rc = automation_tick(a, s, m, now_ms, &busy, &wake, &appended);
        if (rc)
            return rc;
        if (progress)
            progress(arg, a->pass_visited);
        if (!a->sweeping && !a->pass_pending)
            return LS_OK;
    }
}
