/* eventfile_fold.c -- events out of checked rows (see eventfile_fold.h):
 * the lines of one order folded into one purchase or refund, and the
 * event ids derived for rows that carry none -- "order:<hash>" of
 * (type, customer, order id), "row:<hash>" of the row's content and its
 * occurrence among identical rows of the same ts -- so that reading a
 * file again gives the same ids and re-imports deduplicate. */
#include "eventfile_fold.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Hashing (64-bit FNV-1a with a final avalanche)                      */
/* ------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* A tagged, length-prefixed string, so concatenations cannot collide. */
static uint64_t fnv_str(uint64_t h, char tag, const ls_str *s)
{
    uint32_t len = (uint32_t)s->len;
    h = fnv_bytes(h, &tag, 1);
    h = fnv_bytes(h, &len, sizeof len);
    return fnv_bytes(h, s->ptr, s->len);
}

static uint64_t fnv_u64(uint64_t h, char tag, uint64_t v)
{
    unsigned char b[9] = {(unsigned char)tag};
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i)); /* byte order fixed: ids are the same everywhere */
    return fnv_bytes(h, b, sizeof b);
}

static uint64_t fnv_double(uint64_t h, char tag, double d)
{
    uint64_t bits;
    d += 0.0; /* -0.0 -> 0.0 */
    memcpy(&bits, &d, sizeof bits);
    return fnv_u64(h, tag, bits);
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* The content of a parsed event, as its id is derived from. */
static uint64_t event_hash(const ls_event *ev)
{
    uint64_t h = FNV_OFFSET;
    h = fnv_u64(h, 'y', (uint64_t)ev->type);
    h = fnv_str(h, 'c', &ev->customer);
    h = fnv_u64(h, 't', (uint64_t)ev->ts_ms);
    h = fnv_str(h, 's', &ev->session);
    h = fnv_str(h, 'p', &ev->product);
    h = fnv_str(h, 'g', &ev->category);
    h = fnv_str(h, 'o', &ev->order_id);
    if (ev->has & EVF_PRICE)
        h = fnv_double(h, 'P', ev->price);
    if (ev->has & EVF_QUANTITY)
        h = fnv_u64(h, 'Q', (uint64_t)ev->quantity);
    if (ev->has & EVF_VALUE)
        h = fnv_double(h, 'V', ev->value);
    if (ev->has & EVF_DISCOUNTED)
        h = fnv_u64(h, 'D', (uint64_t)ev->discounted);
    if (ev->has & EVF_RATING)
        h = fnv_u64(h, 'R', (uint64_t)ev->rating);
    if (ev->has & EVF_BIRTHDAY)
        h = fnv_u64(h, 'B', (uint64_t)ev->birthday_mmdd);
    return h;
}

static uint64_t order_key(event_type type, const ls_str *customer, const ls_str *order_id)
{
    uint64_t h = fnv_u64(FNV_OFFSET, 'y', (uint64_t)type);
    h = fnv_str(h, 'c', customer);
    return mix64(fnv_str(h, 'o', order_id));
}


/* Which order a row names, whatever its type: customer and order id. */
static uint64_t named_order(const char *customer, size_t clen, const char *order_id, size_t olen)
{
    ls_str c = {customer, clen}, o = {order_id, olen};
    uint64_t h = fnv_str(FNV_OFFSET, 'c', &c);
    return mix64(fnv_str(h, 'o', &o)) | 1; /* never 0: 0 is "none" */
}

/* ------------------------------------------------------------------ */
/* Events: order folding and ids                                        */
/* ------------------------------------------------------------------ */

static void copy_str(char *dst, ls_str *s)
{
    if (s->len)
        memcpy(dst, s->ptr, s->len);
    dst[s->len] = '\0';
    s->ptr = dst;
}

int eff_foldable(const eventfile *f, const ls_event *ev)
{
    return !f->o.no_fold && ev->order_id.len && (ev->type == EV_PURCHASE || ev->type == EV_REFUND);
}

static int same_str(const ls_str *a, const ls_str *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

int eff_continues(const order_fold *g, const ls_event *ev)
{
    return ev->type == g->ev.type && same_str(&ev->customer, &g->ev.customer) && same_str(&ev->order_id, &g->ev.order_id);
}

void eff_start_order(eventfile *f, const ls_event *ev, uint64_t line)
{
    order_fold *g = &f->grp;
    g->open = 1;
    g->ev = *ev;
    g->first_line = g->last_line = line;
    g->nlines = 1;
    copy_str(g->customer, &g->ev.customer);
    copy_str(g->order_id, &g->ev.order_id);
    copy_str(g->session, &g->ev.session);
    copy_str(g->product, &g->ev.product);
    copy_str(g->category, &g->ev.category);
    copy_str(g->event_id, &g->ev.event_id);
    g->key = order_key(ev->type, &ev->customer, &ev->order_id);
    g->bad_key = named_order(ev->customer.ptr, ev->customer.len, ev->order_id.ptr, ev->order_id.len);
    g->refused_line = f->last_bad_key == g->bad_key && (f->last_bad_type < 0 || f->last_bad_type == (int)ev->type)
                          ? f->last_bad_line
                          : 0;
    f->last_bad_key = 0;
    g->again = f->recent[g->key % RECENT_ORDERS] == g->key;
}

/* Folds one more line (validated: value filled in) into the order. */
void eff_add_line(eventfile *f, const ls_event *ev, uint64_t line)
{
    order_fold *g = &f->grp;
    g->ev.value += ev->value;
    g->ev.quantity += ev->quantity;
    if (ev->ts_ms < g->ev.ts_ms)
        g->ev.ts_ms = ev->ts_ms;
    if (ev->discounted)
        g->ev.discounted = 1;
    g->ev.has |= ev->has & EVF_DISCOUNTED;
    g->last_line = line;
    g->nlines++;
    f->st.folded_rows++;
}

/* Hands out the finished order (1) or reports it (BAD_ROW). */
int eff_emit_order(eventfile *f, ls_event *out)
{
    order_fold *g = &f->grp;
    char q[80], c[80];
    g->open = 0;
    f->recent[g->key % RECENT_ORDERS] = g->key;
    if (g->refused_line)
        return ef_bad_row(f, g->first_line, EVENTFILE_KIND_ORDER_REFUSED,
                       "%llu line(s) of order %s of customer %s skipped: its line %llu was refused; fix that line "
                       "and import again to bring the whole order in (a part of it now would make the fixed order "
                       "a duplicate)",
                       (unsigned long long)g->nlines, ef_shown(q, sizeof q, g->ev.order_id.ptr, g->ev.order_id.len),
                       ef_shown(c, sizeof c, g->ev.customer.ptr, g->ev.customer.len),
                       (unsigned long long)g->refused_line);
    if (g->again && !g->ev.event_id.len)
        return ef_bad_row(f, g->first_line, "order lines not consecutive",
                       "%llu line(s) of order %s of customer %s come after other rows than that order's other lines "
                       "(sort the file by order): skipped, they would repeat the order's event id",
                       (unsigned long long)g->nlines, ef_shown(q, sizeof q, g->ev.order_id.ptr, g->ev.order_id.len),
                       ef_shown(c, sizeof c, g->ev.customer.ptr, g->ev.customer.len));
    if (g->nlines > 1) {
        g->ev.has &= ~(unsigned)EVF_PRICE;
        g->ev.price = 0;
        g->ev.has |= EVF_VALUE | EVF_QUANTITY;
        g->ev.value += 0.0;
        int rc = ef_check_event(f, &g->ev, g->first_line);
        if (rc != 1) {
            size_t l = strlen(f->err);
            snprintf(f->err + l, sizeof f->err - l, " (order of lines %llu-%llu)", (unsigned long long)g->first_line,
                     (unsigned long long)g->last_line);
            return rc;
        }
    }
    if (!g->ev.event_id.len) {
        snprintf(g->id, sizeof g->id, "order:%016llx", (unsigned long long)g->key);
        g->ev.event_id = (ls_str){g->id, strlen(g->id)};
    }
    *out = g->ev;
    f->event_first = g->first_line;
    f->event_last = g->last_line;
    f->st.events++;
    return 1;
}

/* How many copies of content hash h the current ts run has seen,
 * counting this one.  Memory is bounded: after OCC_MAX_USED distinct
 * contents in one run (a file whose ts is a constant) the count starts
 * over, at the same row every time the file is read, so ids stay stable;
 * only an identical copy across that boundary would share an id. */
static uint32_t occurrence(eventfile *f, int64_t ts, uint64_t h)
{
    if (!f->run_open || ts != f->run_ts || f->occ_used >= OCC_MAX_USED) {
        f->run_open = 1;
        f->run_ts = ts;
        f->occ_used = 0;
        if (++f->occ_gen == 0) {
            memset(f->occ, 0, f->occ_cap * sizeof *f->occ);
            f->occ_gen = 1;
        }
    }
    if ((f->occ_used + 1) * 2 > f->occ_cap) {
        size_t cap = f->occ_cap ? f->occ_cap * 2 : 1024;
        occ_slot *t = calloc(cap, sizeof *t);
        if (!t)
            return 1; /* cannot tell copies apart: treat as first */
        for (size_t i = 0; i < f->occ_cap; i++) {
            if (f->occ[i].gen != f->occ_gen)
                continue;
            size_t j = (size_t)f->occ[i].h & (cap - 1);
            while (t[j].gen)
                j = (j + 1) & (cap - 1);
            t[j] = f->occ[i];
        }
        free(f->occ);
        f->occ = t;
        f->occ_cap = cap;
    }
    size_t j = (size_t)h & (f->occ_cap - 1);
    while (f->occ[j].gen == f->occ_gen && f->occ[j].h != h)
        j = (j + 1) & (f->occ_cap - 1);
    if (f->occ[j].gen != f->occ_gen) {
        f->occ[j] = (occ_slot){h, f->occ_gen, 0};
        f->occ_used++;
    }
    return ++f->occ[j].count;
}

void eff_note_refused_row(eventfile *f, uint64_t line)
{
    const char *cust = f->val[EVENTFILE_F_CUSTOMER], *ord = f->val[EVENTFILE_F_ORDER_ID];
    if (f->o.no_fold)
        return;
    if (!f->row_read) {
        /* a row that could not be read at all (fields miscounted, a value
         * that is no scalar, a line too long): it names nothing readable,
         * so the order it comes right after is the one it may belong to */
        if (f->grp.open && !f->grp.refused_line)
            f->grp.refused_line = line;
        return;
    }
    if (!cust || !ord || !f->vlen[EVENTFILE_F_CUSTOMER] || !f->vlen[EVENTFILE_F_ORDER_ID])
        return;
    uint64_t key = named_order(cust, f->vlen[EVENTFILE_F_CUSTOMER], ord, f->vlen[EVENTFILE_F_ORDER_ID]);
    /* a row whose type parsed names the purchase or the refund order of
     * that id; one whose type did not parse, either */
    if (f->grp.open && f->grp.bad_key == key && (f->row_type < 0 || f->row_type == (int)f->grp.ev.type)) {
        if (!f->grp.refused_line)
            f->grp.refused_line = line;
        return;
    }
    f->last_bad_key = key;
    f->last_bad_type = f->row_type;
    f->last_bad_line = line;
}

int eff_finish_order(eventfile *f, ls_event *out)
{
    return f->grp.open ? eff_emit_order(f, out) : 0;
}

/* Hands out a row that is not part of an order, with its id. */
int eff_emit_row(eventfile *f, ls_event *ev, ls_event *out)
{
    if (!ev->event_id.len) {
        uint64_t h = event_hash(ev);
        uint32_t k = occurrence(f, ev->ts_ms, h);
        if (k > 1)
            h = fnv_u64(h, '#', k);
        snprintf(f->row_id, sizeof f->row_id, "row:%016llx", (unsigned long long)mix64(h));
        ev->event_id = (ls_str){f->row_id, strlen(f->row_id)};
    }
    *out = *ev;
    f->st.events++;
    return 1;
}
