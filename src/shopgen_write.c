/* shopgen_write.c -- the synthetic shop's output (see shopgen_write.h):
 * a day's event records radix-sorted by time and formatted by hand as CSV
 * or JSON Lines into a 1 MiB buffer, with the ids derived from numbers at
 * write time (the hex ids go through a keyed bijective mixer, so they
 * look random but never collide); and the ground truth per customer. */
#include "shopgen_write.h"

#include <errno.h>
#include <string.h>

#include "leadscore/error.h"
#include "shopgen_persona.h"

#define LINE_MAX_BYTES 512           /* longest formatted event, generously */

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
        o->err = errno ? errno : EIO;
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
        return put_hex16(PUT(p, "anon-"), sgr_mix64(g->key_anon ^ idx));
    return put_u64(PUT(p, "cust-"), (uint64_t)idx + 1);
}

static char *put_session(char *p, const gen *g, const rec *e)
{
    return put_hex16(PUT(p, "s-"), sgr_mix64(g->key_session ^ ((uint64_t)e->cust << 24 | e->session)));
}

static char *put_order(char *p, const gen *g, const rec *e)
{
    return put_hex16(PUT(p, "ord-"), sgr_mix64(g->key_order ^ ((uint64_t)e->cust << 24 | e->order)));
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
    int cat = (e->flags & F_CAT_ONLY) ? e->product : sgp_category_of(e->product);

    *len = strlen(sgp_categories[cat].name);
    return sgp_categories[cat].name;
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
void sgw_flush_day(gen *g)
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

int sgw_truth(const gen *g, FILE *f)
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
                    c->lambda, c->p_drop, sgp_personas[c->segment].name) < 0)
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

void sgw_begin(gen *g)
{
    if (g->cfg->format == SHOPGEN_CSV) {
        char *p = out_reserve(&g->out, sizeof csv_header);
        out_commit(&g->out, put(p, csv_header, sizeof csv_header - 1));
    }
}

void sgw_finish(gen *g)
{
    out_flush(&g->out);
}
