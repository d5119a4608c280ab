/* rescore.c -- scoring every customer of a store from one read snapshot
 * (see rescore.h): the row formats, the --where filters, the bounded
 * top-N heap and the scan -> score -> write pipeline. */
#define _GNU_SOURCE
#include "rescore.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assess.h"
#include "error_internal.h"
#include "jsonout.h"
#include "textfmt.h"
#include "timefmt.h"

/* A scorer writes its rows out past this size while its range is the
 * one being written ... */
#define FLUSH_AT (256u << 10)
/* ... and holds at most about this much of a later range's rows before it
 * waits for that range's turn (memory: threads x HOLD_AT at most). */
#define HOLD_AT (4u << 20)
/* Customers per range by default, and ranges per thread at least. */
#define RANGE_CUSTOMERS 2048
#define RANGES_PER_THREAD 8
/* A scan callback's "stop": the run failed elsewhere. */
#define RUN_STOPPED 1

/* ------------------------------------------------------------------ */
/* Output buffer and the number and string writers                     */
/* ------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
    json_t *jnum, *jstr; /* reused scalars: every JSON value is encoded by jansson */
} obuf;

static int ob_grow(obuf *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

/* Room for n more bytes; 0 when memory ran out (the row is then lost and
 * b->oom reported by the caller). */
static inline int ob_room(obuf *b, size_t n)
{
    return b->len + n <= b->cap || ob_grow(b, n);
}

static inline void ob_put(obuf *b, const char *s, size_t n)
{
    if (ob_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static inline void ob_c(obuf *b, char c)
{
    if (ob_room(b, 1))
        b->p[b->len++] = c;
}

static inline void ob_s(obuf *b, const char *s)
{
    ob_put(b, s, strlen(s));
}

/* A string literal (its length known at compile time). */
#define ob_lit(b, lit) ob_put((b), "" lit, sizeof(lit) - 1)

static void ob_free(obuf *b)
{
    json_decref(b->jnum);
    json_decref(b->jstr);
    free(b->p);
    *b = (obuf){0};
}

static void ob_u64(obuf *b, uint64_t v)
{
    if (ob_room(b, 20))
        b->len = (size_t)(textfmt_digits(b->p + b->len, v) - b->p);
}

static void ob_i64(obuf *b, int64_t v)
{
    if (v < 0) {
        ob_c(b, '-');
        ob_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        ob_u64(b, (uint64_t)v);
    }
}

/* v with 10 significant digits, as %.10g writes it (textfmt_g10); a
 * zero, either sign, is "0"; non-finite: null_text. */
static void ob_num(obuf *b, double v, const char *null_text)
{
    if (!isfinite(v)) {
        ob_s(b, null_text);
        return;
    }
    if (v == 0) {
        ob_c(b, '0');
        return;
    }
    if (ob_room(b, TEXTFMT_G10_MAX))
        b->len = (size_t)(textfmt_g10(b->p + b->len, v) - b->p);
}

/* Bytes that make a CSV field need quotes: , " CR LF. */
static const unsigned char csv_special[256] = {[','] = 1, ['"'] = 1, ['\n'] = 1, ['\r'] = 1};

/* A CSV field: as is, or quoted with "" when it holds , " CR or LF. */
static void ob_csv_str(obuf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !csv_special[(unsigned char)s[i]])
        i++;
    if (i == n) {
        ob_put(b, s, n);
        return;
    }
    ob_c(b, '"');
    size_t run = 0;
    for (i = 0; i < n; i++) {
        if (s[i] == '"') {
            ob_put(b, s + run, i + 1 - run);
            ob_c(b, '"');
            run = i + 1;
        }
    }
    ob_put(b, s + run, n - run);
    ob_c(b, '"');
}

/* CSV-quotes, in place, the field written at b->p[start .. b->len): the
 * text moves right a run between quotes at a time, from the end. */
static void ob_csv_tail(obuf *b, size_t start)
{
    size_t n = b->len - start, quotes = 0;
    unsigned special = 0;
    for (size_t i = start; i < b->len; i++) {
        unsigned char c = (unsigned char)b->p[i];
        quotes += c == '"';
        special |= csv_special[c];
    }
    if (!special || !ob_room(b, quotes + 2))
        return;
    char *p = b->p + start;
    size_t src = n, dst = n + quotes + 1; /* dst - src: the quotes still to insert, and the opening one */
    p[dst] = '"';
    while (dst - src > 1) {
        const char *q = memrchr(p, '"', src);
        size_t at = (size_t)(q - p), run = src - at - 1;
        dst -= run;
        memmove(p + dst, p + at + 1, run);
        p[--dst] = '"';
        p[--dst] = '"';
        src = at;
    }
    memmove(p + 1, p, src);
    p[0] = '"';
    b->len += quotes + 2;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                */
/* ------------------------------------------------------------------ */

/* What every row shares, prepared once. */
typedef struct {
    const rescore_options *o;
    char tag[160];        /* name@version */
    size_t tag_len;
} row_ctx;

static int tier_code(const char *tier)
{
    return tier[0] == 'h' ? 0 : tier[0] == 'w' ? 1 : 2;
}

/* Appends the JSON text of the scalar j as jansson writes it (JSONOUT_FLAGS:
 * doubles to 17 significant digits, so they round-trip). */
static void ob_jdump(obuf *b, const json_t *j)
{
    size_t room = b->cap - b->len;
    size_t n = json_dumpb(j, b->p ? b->p + b->len : NULL, b->p ? room : 0, JSONOUT_FLAGS | JSON_ENCODE_ANY);
    if (n > room) {
        if (ob_room(b, n))
            n = json_dumpb(j, b->p + b->len, n, JSONOUT_FLAGS | JSON_ENCODE_ANY);
        else
            n = 0;
    }
    if (n == 0)
        b->oom = 1;
    b->len += n;
}

/* A JSON number (null when not finite). */
static void ob_jnum(obuf *b, double v)
{
    if (!isfinite(v)) {
        ob_lit(b, "null");
        return;
    }
    if (ob_room(b, JSONOUT_REAL_MAX)) { /* jansson's text, without printf, for the usual range */
        size_t n = jsonout_real_text(b->p + b->len, v);
        if (n) {
            b->len += n;
            return;
        }
    }
    if (!b->jnum && !(b->jnum = json_real(v))) {
        b->oom = 1;
        return;
    }
    json_real_set(b->jnum, v);
    ob_jdump(b, b->jnum);
}

/* 1 for the bytes jansson writes as they are: printable ASCII but '"'
 * and '\\'. */
static const unsigned char json_plain[256] = {[0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7e] = 1};

/* A JSON string: jansson's escaping, invalid UTF-8 bytes as U+FFFD. */
static void ob_jstr(obuf *b, const char *s, size_t n)
{
    /* printable ASCII without '"' or '\\': jansson writes it quoted as is */
    size_t i = 0;
    while (i < n && json_plain[(unsigned char)s[i]])
        i++;
    if (i == n && ob_room(b, n + 2)) {
        b->p[b->len++] = '"';
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len++] = '"';
        return;
    }
    if (!b->jstr && !(b->jstr = json_string_nocheck(""))) {
        b->oom = 1;
        return;
    }
    if (jsonout_string_set(b->jstr, s, n) != 0) {
        b->oom = 1;
        return;
    }
    ob_jdump(b, b->jstr);
}

/* The JSON string of ob_jstr, its quotes doubled for a quoted CSV field. */
static void ob_jstr_csv(obuf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && json_plain[(unsigned char)s[i]])
        i++;
    if (i == n && ob_room(b, n + 4)) { /* the usual case: ""text"" */
        memcpy(b->p + b->len, "\"\"", 2);
        memcpy(b->p + b->len + 2, s, n);
        memcpy(b->p + b->len + 2 + n, "\"\"", 2);
        b->len += n + 4;
        return;
    }
    size_t start = b->len;
    ob_jstr(b, s, n);
    ob_csv_tail(b, start); /* quoted and doubled: the outer quotes dropped below */
    if (b->len - start >= 2 && !b->oom) {
        memmove(b->p + start, b->p + start + 1, b->len - start - 2);
        b->len -= 2;
    }
}

/* A result's segments as a JSON array of {segment, weight, reason}; with
 * csv, as the quoted CSV field holding that text (each '"' doubled). */
static void json_segments(obuf *b, const assess_result *a, int csv)
{
    if (csv && a->nsegments == 0) { /* "[]" holds nothing CSV quotes */
        ob_lit(b, "[]");
        return;
    }
    void (*str)(obuf *, const char *, size_t) = csv ? ob_jstr_csv : ob_jstr;
    ob_s(b, csv ? "\"[" : "[");
    for (int i = 0; i < a->nsegments; i++) {
        const segments_item *s = &a->segments[i];
        if (i)
            ob_c(b, ',');
        ob_s(b, csv ? "{\"\"segment\"\":" : "{\"segment\":");
        str(b, s->segment, strlen(s->segment));
        ob_s(b, csv ? ",\"\"weight\"\":" : ",\"weight\":");
        ob_jnum(b, s->weight);
        ob_s(b, csv ? ",\"\"reason\"\":" : ",\"reason\":");
        str(b, s->reason, strlen(s->reason));
        ob_c(b, '}');
    }
    ob_s(b, csv ? "]\"" : "]");
}

/* One JSON Lines row: the keys of the score op's result, in its order.
 * The keys and the enumerated values (tier, type, phase, actions) are fixed
 * ASCII names; every other value is encoded by jansson. */
static void row_jsonl(obuf *b, const row_ctx *rc, const char *id, size_t len, const assess_result *a)
{
    ob_lit(b, "{\"customer\":");
    ob_jstr(b, id, len);
    ob_lit(b, ",\"known\":true,\"score\":");
    ob_jnum(b, a->logistic.score);
    ob_lit(b, ",\"score_100\":");
    ob_i64(b, a->logistic.score_100);
    ob_lit(b, ",\"tier\":\"");
    ob_s(b, a->logistic.tier);
    ob_lit(b, "\",\"p_alive\":");
    ob_jnum(b, a->p_alive);
    ob_lit(b, ",\"expected_purchases_30d\":");
    ob_jnum(b, a->expected_purchases_30d);
    ob_lit(b, ",\"clv\":");
    ob_jnum(b, a->clv);
    ob_lit(b, ",\"customer_type\":\"");
    ob_s(b, journey_type_name(a->journey.type));
    ob_lit(b, "\",\"phase\":\"");
    ob_s(b, journey_phase_name(a->journey.phase));
    ob_lit(b, "\",\"loyalty_points\":");
    ob_i64(b, a->journey.loyalty_points);
    ob_lit(b, ",\"loyalty_tier\":");
    ob_jstr(b, a->journey.loyalty_tier, strlen(a->journey.loyalty_tier));
    ob_lit(b, ",\"actions\":[");
    int first = 1;
    for (int i = 0; i < JA_COUNT; i++) {
        if (a->journey.actions & (1u << i)) {
            ob_s(b, first ? "\"" : ",\"");
            ob_s(b, journey_action_name((journey_action)i));
            ob_c(b, '"');
            first = 0;
        }
    }
    ob_lit(b, "],\"segments\":");
    json_segments(b, a, 0);
    ob_lit(b, ",\"model\":");
    ob_jstr(b, rc->tag, rc->tag_len);
    ob_lit(b, "}\n");
}

static void row_csv(obuf *b, const row_ctx *rc, const char *id, size_t len, const assess_result *a)
{
    ob_csv_str(b, id, len);
    ob_lit(b, ",true,");
    ob_num(b, a->logistic.score, "");
    ob_c(b, ',');
    ob_i64(b, a->logistic.score_100);
    ob_c(b, ',');
    ob_s(b, a->logistic.tier);
    ob_c(b, ',');
    ob_num(b, a->p_alive, "");
    ob_c(b, ',');
    ob_num(b, a->expected_purchases_30d, "");
    ob_c(b, ',');
    ob_num(b, a->clv, "");
    ob_c(b, ',');
    ob_s(b, journey_type_name(a->journey.type));
    ob_c(b, ',');
    ob_s(b, journey_phase_name(a->journey.phase));
    ob_c(b, ',');
    ob_i64(b, a->journey.loyalty_points);
    ob_c(b, ',');
    ob_csv_str(b, a->journey.loyalty_tier, strlen(a->journey.loyalty_tier));
    ob_c(b, ',');
    int first = 1;
    for (int i = 0; i < JA_COUNT; i++) {
        if (a->journey.actions & (1u << i)) {
            if (!first)
                ob_c(b, '|');
            ob_s(b, journey_action_name((journey_action)i));
            first = 0;
        }
    }
    ob_c(b, ',');
    /* segment names come from the model file: quote the whole list when needed */
    size_t start = b->len;
    for (int i = 0; i < a->nsegments; i++) {
        if (i)
            ob_c(b, '|');
        ob_s(b, a->segments[i].segment);
    }
    ob_csv_tail(b, start);
    ob_c(b, ',');
    ob_csv_str(b, rc->tag, rc->tag_len);
    if (rc->o->segments_detail) {
        ob_c(b, ',');
        json_segments(b, a, 1);
    }
    ob_c(b, '\n');
}

static void write_row(obuf *b, const row_ctx *rc, const char *id, size_t len, const assess_result *a)
{
    if (rc->o->format == RESCORE_JSONL)
        row_jsonl(b, rc, id, len, a);
    else
        row_csv(b, rc, id, len, a);
}

const char *rescore_csv_header(const rescore_options *o)
{
    return o->segments_detail
               ? "customer,known,score,score_100,tier,p_alive,expected_purchases_30d,clv,customer_type,phase,"
                 "loyalty_points,loyalty_tier,actions,segments,model,segments_detail\n"
               : "customer,known,score,score_100,tier,p_alive,expected_purchases_30d,clv,customer_type,phase,"
                 "loyalty_points,loyalty_tier,actions,segments,model\n";
}

/* ------------------------------------------------------------------ */
/* Filters                                                             */
/* ------------------------------------------------------------------ */

#define WHERE_NAME(sym, name) name,
static const char *const where_names[] = {RESCORE_WHERE_MAP(WHERE_NAME)};
#undef WHERE_NAME

static const char *tier_name_of(int i) { static const char *const t[] = {"hot", "warm", "cold"}; return t[i]; }
static const char *type_name_of(int i) { return journey_type_name((journey_type)i); }
static const char *phase_name_of(int i) { return journey_phase_name((journey_phase)i); }
static const char *action_name_of(int i) { return journey_action_name((journey_action)i); }
static const char *known_name_of(int i) { return i ? "true" : "false"; }

/* Index of value among n names, or -1. */
static int lookup(const char *v, size_t len, const char *(*name_of)(int), int n)
{
    for (int i = 0; i < n; i++)
        if (strlen(name_of(i)) == len && memcmp(name_of(i), v, len) == 0)
            return i;
    return -1;
}

static void list_names(char *buf, size_t cap, const char *(*name_of)(int), int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", name_of(i));
}

int rescore_parse_where(const char *expr, rescore_filter *out, char *err, size_t errlen)
{
    const char *eq = strchr(expr, '=');
    memset(out, 0, sizeof *out);
    if (!eq)
        return ls_fail(err, errlen, LS_EINVAL, "--where \"%s\" is not FIELD=VALUE", expr);
    size_t flen = (size_t)(eq - expr);
    int field = -1;
    for (int i = 0; i < RESCORE_WHERE_COUNT; i++)
        if (strlen(where_names[i]) == flen && memcmp(where_names[i], expr, flen) == 0)
            field = i;
    if (field < 0 && flen == 4 && memcmp(expr, "type", 4) == 0)
        field = RESCORE_WHERE_CUSTOMER_TYPE;
    if (field < 0)
        return ls_fail(err, errlen, LS_EINVAL,
                       "--where: unknown field \"%.*s\" (fields: tier, customer_type, phase, action, segment, known)",
                       (int)flen, expr);
    out->field = (rescore_where_field)field;
    const char *(*name_of)(int) = NULL;
    int n = 0;
    switch (out->field) {
    case RESCORE_WHERE_TIER: name_of = tier_name_of; n = 3; break;
    case RESCORE_WHERE_CUSTOMER_TYPE: name_of = type_name_of; n = JT_COUNT; break;
    case RESCORE_WHERE_PHASE: name_of = phase_name_of; n = JP_COUNT; break;
    case RESCORE_WHERE_ACTION: name_of = action_name_of; n = JA_COUNT; break;
    case RESCORE_WHERE_KNOWN: name_of = known_name_of; n = 2; break;
    default: break;
    }
    const char *v = eq + 1;
    if (!*v)
        return ls_fail(err, errlen, LS_EINVAL, "--where %s: give a value", where_names[field]);
    for (;;) {
        const char *comma = strchr(v, ',');
        size_t vlen = comma ? (size_t)(comma - v) : strlen(v);
        if (vlen == 0)
            return ls_fail(err, errlen, LS_EINVAL, "--where %s: empty value in \"%s\"", where_names[field], eq + 1);
        if (out->field == RESCORE_WHERE_SEGMENT) {
            if (out->nsegments == RESCORE_MAX_VALUES || vlen >= SEGMENTS_NAME)
                return ls_fail(err, errlen, LS_EINVAL, "--where segment: at most %d names of at most %d bytes",
                               RESCORE_MAX_VALUES, SEGMENTS_NAME - 1);
            memcpy(out->segments[out->nsegments], v, vlen);
            out->segments[out->nsegments++][vlen] = '\0';
        } else {
            int i = lookup(v, vlen, name_of, n);
            if (i < 0 && out->field == RESCORE_WHERE_KNOWN)
                i = lookup(v, vlen, known_name_of, 2) >= 0 ? 0
                    : (vlen == 1 && (*v == '1' || *v == '0')) ? *v - '0' : -1;
            if (i < 0) {
                char names[400];
                list_names(names, sizeof names, name_of, n);
                return ls_fail(err, errlen, LS_EINVAL, "--where %s: \"%.*s\" is not one of %s", where_names[field],
                               (int)vlen, v, names);
            }
            out->mask |= 1u << i;
        }
        if (!comma)
            break;
        v = comma + 1;
    }
    return LS_OK;
}

int rescore_parse_by(const char *name, rescore_key *out)
{
    if (strcmp(name, "score") == 0)
        *out = RESCORE_BY_SCORE;
    else if (strcmp(name, "clv") == 0)
        *out = RESCORE_BY_CLV;
    else if (strcmp(name, "expected_purchases") == 0 || strcmp(name, "expected_purchases_30d") == 0)
        *out = RESCORE_BY_EXPECTED;
    else
        return LS_EINVAL;
    return LS_OK;
}

static int has_segment(const assess_result *a, const rescore_filter *f)
{
    for (int i = 0; i < a->nsegments; i++)
        for (int j = 0; j < f->nsegments; j++)
            if (strcmp(a->segments[i].segment, f->segments[j]) == 0)
                return 1;
    return 0;
}

static int matches(const rescore_options *o, const assess_result *a)
{
    for (int i = 0; i < o->nwhere; i++) {
        const rescore_filter *f = &o->where[i];
        int ok;
        switch (f->field) {
        case RESCORE_WHERE_TIER: ok = (f->mask >> tier_code(a->logistic.tier)) & 1; break;
        case RESCORE_WHERE_CUSTOMER_TYPE: ok = (f->mask >> a->journey.type) & 1; break;
        case RESCORE_WHERE_PHASE: ok = (f->mask >> a->journey.phase) & 1; break;
        case RESCORE_WHERE_ACTION: ok = (f->mask & a->journey.actions) != 0; break;
        case RESCORE_WHERE_SEGMENT: ok = has_segment(a, f); break;
        case RESCORE_WHERE_KNOWN: ok = (f->mask >> 1) & 1; break; /* every stored record is known */
        default: ok = 0; break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* The top-N heap                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    double key;
    char *buf;            /* id bytes, then row bytes */
    size_t id_len, row_len, cap;
} top_slot;

struct rescore_top {
    size_t n, count, cap;
    top_slot *slot;       /* slot[0] is the worst row (a min-heap) */
};

static double clean_key(double k)
{
    return isnan(k) ? -INFINITY : k;
}

/* 1 when row a is worse than row b: a lower key, or an equal key and a
 * larger id. */
static int worse(double ka, const char *ia, size_t la, double kb, const char *ib, size_t lb)
{
    if (ka != kb)
        return ka < kb;
    size_t l = la < lb ? la : lb;
    int c = l ? memcmp(ia, ib, l) : 0;
    return c != 0 ? c > 0 : la > lb;
}

static int slot_worse(const top_slot *a, const top_slot *b)
{
    return worse(a->key, a->buf, a->id_len, b->key, b->buf, b->id_len);
}

static void sift_down(top_slot *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && slot_worse(&h[l], &h[w]))
            w = l;
        if (r < n && slot_worse(&h[r], &h[w]))
            w = r;
        if (w == i)
            return;
        top_slot t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(top_slot *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!slot_worse(&h[i], &h[p]))
            return;
        top_slot t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int rescore_top_new(size_t n, rescore_top **out)
{
    *out = NULL;
    if (n == 0)
        return LS_EINVAL;
    if (n > SIZE_MAX / sizeof(top_slot)) /* more than any store holds: every row */
        n = SIZE_MAX / sizeof(top_slot);
    rescore_top *t = calloc(1, sizeof *t);
    if (!t)
        return LS_ENOMEM;
    /* slots are allocated as rows arrive, so a huge N costs nothing up front */
    t->n = n;
    *out = t;
    return LS_OK;
}

void rescore_top_free(rescore_top **tp)
{
    if (!tp || !*tp)
        return;
    for (size_t i = 0; i < (*tp)->count; i++)
        free((*tp)->slot[i].buf);
    free((*tp)->slot);
    free(*tp);
    *tp = NULL;
}

int rescore_top_wants(const rescore_top *t, double key, const char *id, size_t id_len)
{
    if (t->count < t->n)
        return 1;
    const top_slot *w = &t->slot[0];
    return worse(w->key, w->buf, w->id_len, clean_key(key), id, id_len);
}

static int fill_slot(top_slot *s, double key, const char *id, size_t id_len, const char *row, size_t row_len)
{
    size_t need = id_len + row_len;
    if (need > s->cap) {
        char *p = realloc(s->buf, need);
        if (!p)
            return LS_ENOMEM;
        s->buf = p;
        s->cap = need;
    }
    if (id_len)
        memcpy(s->buf, id, id_len);
    if (row_len)
        memcpy(s->buf + id_len, row, row_len);
    s->key = key;
    s->id_len = id_len;
    s->row_len = row_len;
    return LS_OK;
}

int rescore_top_offer(rescore_top *t, double key, const char *id, size_t id_len, const char *row, size_t row_len)
{
    key = clean_key(key);
    if (!rescore_top_wants(t, key, id, id_len))
        return 0;
    if (t->count < t->n) {
        if (t->count == t->cap) { /* grow by doubling, up to n */
            size_t cap = t->cap ? t->cap * 2 : 16;
            if (cap > t->n || cap < t->cap)
                cap = t->n;
            top_slot *p = realloc(t->slot, cap * sizeof *p);
            if (!p)
                return LS_ENOMEM;
            t->slot = p;
            t->cap = cap;
        }
        top_slot *s = &t->slot[t->count];
        *s = (top_slot){0};
        if (fill_slot(s, key, id, id_len, row, row_len) != LS_OK)
            return LS_ENOMEM;
        sift_up(t->slot, t->count++);
        return 1;
    }
    if (fill_slot(&t->slot[0], key, id, id_len, row, row_len) != LS_OK)
        return LS_ENOMEM;
    sift_down(t->slot, t->count, 0);
    return 1;
}

int rescore_top_merge(rescore_top *dst, const rescore_top *src)
{
    for (size_t i = 0; i < src->count; i++) {
        const top_slot *s = &src->slot[i];
        int rc = rescore_top_offer(dst, s->key, s->buf, s->id_len, s->buf + s->id_len, s->row_len);
        if (rc < 0)
            return rc;
    }
    return LS_OK;
}

size_t rescore_top_count(const rescore_top *t)
{
    return t->count;
}

size_t rescore_top_bytes(const rescore_top *t)
{
    size_t bytes = sizeof *t + t->cap * sizeof(top_slot);
    for (size_t i = 0; i < t->count; i++)
        bytes += t->slot[i].cap;
    return bytes;
}

static int best_first(const void *a, const void *b)
{
    const top_slot *x = a, *y = b;
    return slot_worse(y, x) ? -1 : slot_worse(x, y) ? 1 : 0;
}

void rescore_top_sort(rescore_top *t)
{
    if (t->count > 1)
        qsort(t->slot, t->count, sizeof t->slot[0], best_first);
}

void rescore_top_row(const rescore_top *t, size_t i, double *key, const char **row, size_t *row_len)
{
    const top_slot *s = &t->slot[i];
    *key = s->key;
    *row = s->buf + s->id_len;
    *row_len = s->row_len;
}

/* ------------------------------------------------------------------ */
/* Scoring one customer                                                */
/* ------------------------------------------------------------------ */

typedef struct run run;

/* One scoring thread's state (scorers[0] is the calling thread's).  Each
 * has its own reader on the run's one snapshot and scans whole ranges. */
typedef struct {
    _Alignas(64) run *r;  /* a scorer's counters share no cache line with another's */
    pthread_t thread;
    store_reader *rd;
    int is_caller;        /* the calling thread: it reports progress */
    assess_result a;
    obuf row;             /* a top-N candidate row */
    obuf out;             /* the current range's rows, in scan order */
    rescore_top *top;
    uint64_t range;       /* the range being scanned */
    uint64_t customers, matched, tiers[3], types[JT_COUNT];
    store_scan_stats replay;
    uint64_t unreported;  /* customers scored and not yet added to r->scanned */
    int failed;           /* out of memory */
} scorer;

struct run {
    const rescore_options *o;
    const model *m;
    feature_ctx ctx;
    row_ctx rc;
    int nscorers;         /* scoring threads (fewer than nalloc when one snapshot could not be shared) */
    int nalloc;
    scorer *scorers;
    /* the ranges: range i is [split key i - 1, split key i) */
    store_split split;
    uint64_t nranges;
    atomic_uint_fast64_t next_range;  /* the next range to claim */
    /* ranges are written in order: only the scorer of range next_write
     * writes, and it may write early (streaming) while it is that one */
    pthread_mutex_t mu;
    pthread_cond_t written;
    atomic_uint_fast64_t next_write;
    atomic_int stop;                  /* a failure: every scorer stops */
    int status;                       /* the first failure (under mu) */
    int write_errno;                  /* errno of the first failed write of the rows: set by the
                                         thread that wrote (whose turn it was), read after the join */
    _Alignas(64) atomic_uint_fast64_t scanned; /* added to by every scorer: a line of its own */
    uint64_t next_tick;               /* the caller's next progress report */
    int started;                      /* scoring threads running, the caller's included */
};

static void *scorer_main(void *arg);

/* Starts the other scoring threads: once the caller holds its first
 * range, so that it scores (and reports progress) whatever the timing. */
static void start_helpers(run *r)
{
    for (; r->started < r->nscorers; r->started++)
        if (pthread_create(&r->scorers[r->started].thread, NULL, scorer_main, &r->scorers[r->started]) != 0)
            break; /* fewer threads: ranges are claimed, not assigned */
}

static double key_of(const rescore_options *o, const assess_result *a)
{
    switch (o->by) {
    case RESCORE_BY_CLV: return a->clv;
    case RESCORE_BY_EXPECTED: return a->expected_purchases_30d;
    default: return a->logistic.score;
    }
}

/* Assesses one customer, counts it and, if it passes the filters, writes
 * its row into out (streaming) or offers it to the heap (top N). */
static void score_one(scorer *sc, obuf *out, const char *id, size_t len, const ls_features *f)
{
    run *r = sc->r;
    const rescore_options *o = r->o;
    assess_result *a = &sc->a;
    /* reasons are written only by JSON Lines and --segments-detail */
    int reasons = o->format != RESCORE_CSV || o->segments_detail;
    assess_customer_ex(r->m, f, &r->ctx, 0, -1, reasons ? 0 : ASSESS_NO_REASONS, a);
    sc->customers++;
    sc->tiers[tier_code(a->logistic.tier)]++;
    sc->types[a->journey.type]++;
    if (o->nwhere && !matches(o, a))
        return;
    sc->matched++;
    if (!sc->top) {
        write_row(out, &r->rc, id, len, a);
        return;
    }
    double key = key_of(o, a);
    if (!rescore_top_wants(sc->top, key, id, len))
        return;
    sc->row.len = 0;
    write_row(&sc->row, &r->rc, id, len, a);
    if (sc->row.oom || rescore_top_offer(sc->top, key, id, len, sc->row.p, sc->row.len) < 0)
        sc->failed = 1;
}

/* LS_EIO after a failed write to the output, its errno kept for the
 * report (errno is per thread, and the run's report is made by the
 * caller's). */
static int write_failed(run *r)
{
    if (!r->write_errno)
        r->write_errno = errno ? errno : EIO;
    return LS_EIO;
}

static int write_out(run *r, const obuf *b)
{
    if (b->len && fwrite(b->p, 1, b->len, r->o->out) != b->len)
        return write_failed(r);
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Ranges in parallel, rows in order                                   */
/* ------------------------------------------------------------------ */

/* Records the run's first failure and wakes every scorer to stop. */
static void fail(run *r, int status)
{
    pthread_mutex_lock(&r->mu);
    if (r->status == LS_OK)
        r->status = status;
    atomic_store(&r->stop, 1);
    pthread_cond_broadcast(&r->written);
    pthread_mutex_unlock(&r->mu);
}

/* Waits until range is the one to write; 0, or -1 when the run stops. */
static int wait_turn(run *r, uint64_t range)
{
    if (atomic_load(&r->next_write) == range)
        return 0;
    pthread_mutex_lock(&r->mu);
    while (atomic_load(&r->next_write) != range && !atomic_load(&r->stop))
        pthread_cond_wait(&r->written, &r->mu);
    pthread_mutex_unlock(&r->mu);
    return atomic_load(&r->stop) ? -1 : 0;
}

/* Adds the scorer's count to the run's; the caller's thread reports
 * progress (only it: the callback need not be thread-safe). */
static void report(scorer *sc)
{
    run *r = sc->r;
    uint64_t total = atomic_fetch_add(&r->scanned, sc->unreported) + sc->unreported;
    sc->unreported = 0;
    if (!sc->is_caller || !r->o->progress || total < r->next_tick)
        return;
    uint64_t every = r->o->progress_every ? r->o->progress_every : 4096;
    r->next_tick = (total / every + 1) * every;
    r->o->progress(r->o->progress_arg, total);
}

static int visit(void *arg, const char *id, size_t len, const ls_features *f)
{
    scorer *sc = arg;
    run *r = sc->r;
    score_one(sc, &sc->out, id, len, f);
    if (sc->out.oom || sc->failed)
        return LS_ENOMEM;
    /* the shared count is touched every 64 customers (every one on the
     * caller's thread while a progress callback wants exact ticks) */
    if (++sc->unreported == 64 || (sc->is_caller && r->o->progress))
        report(sc);
    if (sc->out.len >= FLUSH_AT) {
        /* stream while this range is the one being written; else hold the
         * rows, up to HOLD_AT, then wait for its turn (bounded memory) */
        if (atomic_load(&r->next_write) != sc->range && sc->out.len < HOLD_AT)
            return 0;
        if (wait_turn(r, sc->range) != 0)
            return RUN_STOPPED;
        if (write_out(r, &sc->out) != 0)
            return LS_EIO;
        sc->out.len = 0;
    }
    return atomic_load(&r->stop) ? RUN_STOPPED : 0;
}

static void split_key(const run *r, uint64_t i, const void **key, size_t *len)
{
    *key = r->split.bytes + r->split.off[i];
    *len = r->split.off[i + 1] - r->split.off[i];
}

/* A scorer's loop: claims the next range, scans and scores it into its
 * buffer, waits for its turn and writes it; until no range is left. */
static void *scorer_main(void *arg)
{
    scorer *sc = arg;
    run *r = sc->r;
    while (!atomic_load(&r->stop)) {
        uint64_t i = atomic_fetch_add(&r->next_range, 1);
        if (sc->is_caller && r->started == 1)
            start_helpers(r);
        if (i >= r->nranges)
            break;
        const void *from = NULL, *to = NULL;
        size_t from_len = 0, to_len = 0;
        if (i > 0)
            split_key(r, i - 1, &from, &from_len);
        if (i + 1 < r->nranges)
            split_key(r, i, &to, &to_len);
        sc->range = i;
        sc->out.len = 0;
        int rc = store_reader_scan_range_asof(sc->rd, from, from_len, to, to_len, r->o->now_ms, visit, sc,
                                              &sc->replay);
        report(sc);
        if (rc == LS_OK && wait_turn(r, i) != 0)
            rc = RUN_STOPPED;
        if (rc == LS_OK && write_out(r, &sc->out) != 0)
            rc = LS_EIO;
        if (rc != LS_OK) {
            if (rc != RUN_STOPPED)
                fail(r, rc);
            break;
        }
        pthread_mutex_lock(&r->mu);
        atomic_store(&r->next_write, i + 1);
        pthread_cond_broadcast(&r->written);
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

void rescore_options_init(rescore_options *o)
{
    memset(o, 0, sizeof *o);
    o->now_ms = timefmt_now_ms();
    o->format = RESCORE_CSV;
    o->by = RESCORE_BY_SCORE;
    o->out = stdout;
}

static int auto_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static int setup(run *r, store *s, int threads)
{
    r->nscorers = r->nalloc = threads;
    r->scorers = aligned_alloc(_Alignof(scorer), (size_t)threads * sizeof *r->scorers);
    if (!r->scorers)
        return LS_ENOMEM;
    memset(r->scorers, 0, (size_t)threads * sizeof *r->scorers);
    for (int i = 0; i < threads; i++) {
        scorer *sc = &r->scorers[i];
        sc->r = r;
        sc->is_caller = i == 0;
        if (r->o->top && rescore_top_new(r->o->top, &sc->top) != LS_OK)
            return LS_ENOMEM;
        int rc = store_reader_open(s, &sc->rd);
        if (rc != LS_OK)
            return rc;
    }
    return LS_OK;
}

static void teardown(run *r)
{
    for (int i = 0; i < r->nalloc && r->scorers; i++) {
        rescore_top_free(&r->scorers[i].top);
        ob_free(&r->scorers[i].row);
        ob_free(&r->scorers[i].out);
        store_reader_close(&r->scorers[i].rd);
    }
    free(r->scorers);
    store_split_free(&r->split);
}

/* Begins the snapshot: every scorer's reader on the same one (when
 * commits keep landing between the begins, one reader and one thread).
 * Then cuts it into ranges. */
static int begin(run *r)
{
    store_reader *rds[RESCORE_MAX_THREADS];
    for (int i = 0; i < r->nscorers; i++)
        rds[i] = r->scorers[i].rd;
    int rc = store_reader_begin_same(rds, r->nscorers);
    if (rc == LS_EUNAVAIL) {
        r->nscorers = 1;
        rc = store_reader_begin(rds[0]);
    }
    if (rc != LS_OK)
        return rc;
    r->nranges = 1;
    if (r->nscorers > 1) {
        int by_pages;
        size_t per = r->o->range_customers ? r->o->range_customers : RANGE_CUSTOMERS;
        rc = store_reader_split_keys(rds[0], (size_t)r->nscorers * RANGES_PER_THREAD, per, &r->split, &by_pages);
        if (rc != LS_OK)
            return rc;
        r->nranges = r->split.n + 1;
    }
    return LS_OK;
}

/* Scans the ranges with nscorers threads (the caller is one of them),
 * then ends the snapshot. */
static int scan_ranges(run *r)
{
    r->started = 1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->written, NULL);
    scorer_main(&r->scorers[0]);
    for (int i = 1; i < r->started; i++)
        pthread_join(r->scorers[i].thread, NULL);
    for (int i = 0; i < r->nscorers; i++)
        store_reader_end(r->scorers[i].rd); /* on this thread, which began them */
    pthread_cond_destroy(&r->written);
    pthread_mutex_destroy(&r->mu);
    return r->status;
}

/* Merges the scorers' heaps and writes the N best rows. */
static int write_top(run *r, rescore_summary *sum)
{
    rescore_top *all = r->scorers[0].top;
    for (int i = 1; i < r->nscorers; i++)
        if (rescore_top_merge(all, r->scorers[i].top) != LS_OK)
            return LS_ENOMEM;
    for (int i = 0; i < r->nscorers; i++)
        sum->top_bytes += rescore_top_bytes(r->scorers[i].top);
    rescore_top_sort(all);
    for (size_t i = 0; i < rescore_top_count(all); i++) {
        double key;
        const char *row;
        size_t len;
        rescore_top_row(all, i, &key, &row, &len);
        if (fwrite(row, 1, len, r->o->out) != len)
            return write_failed(r);
    }
    sum->rows = rescore_top_count(all);
    return LS_OK;
}

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

int rescore_run(store *s, const model *m, const rescore_options *o, rescore_summary *sum_out, char *err,
                size_t errlen)
{
    rescore_summary dummy = {0}, *sum = sum_out ? sum_out : &dummy;
    memset(sum, 0, sizeof *sum);
    const feature_decay *sd = store_decay(s), *md = model_decay(m);
    if (!same_decay(sd, md))
        return ls_fail(err, errlen, LS_EINVAL,
                       "the model %s@%s has half-lives of %.4g and %.4g days but the store keeps %.4g and %.4g: "
                       "use the model the store was created with",
                       model_name(m), model_version(m), md->short_ms / 864e5, md->long_ms / 864e5,
                       sd->short_ms / 864e5, sd->long_ms / 864e5);
    if (o->nwhere < 0 || o->nwhere > RESCORE_MAX_WHERE || !o->out)
        return ls_fail(err, errlen, LS_EINVAL, "bad rescore options");
    int threads = o->threads > 0 ? o->threads : auto_threads();
    if (threads > RESCORE_MAX_THREADS)
        threads = RESCORE_MAX_THREADS;
    run r = {.o = o, .m = m, .ctx = {o->now_ms, *sd}};
    r.rc.o = o;
    int n = snprintf(r.rc.tag, sizeof r.rc.tag, "%s@%s", model_name(m), model_version(m));
    r.rc.tag_len = n < 0 ? 0 : (size_t)n >= sizeof r.rc.tag ? sizeof r.rc.tag - 1 : (size_t)n;
    int64_t t0 = timefmt_mono_ns();
    int rc = setup(&r, s, threads);
    if (rc == LS_OK && o->format == RESCORE_CSV && fputs(rescore_csv_header(o), o->out) == EOF)
        rc = write_failed(&r);
    if (rc == LS_OK && (rc = begin(&r)) == LS_OK)
        rc = scan_ranges(&r);
    for (int i = 0; i < r.nscorers && r.scorers; i++) {
        scorer *sc = &r.scorers[i];
        sum->customers += sc->customers;
        sum->matched += sc->matched;
        sum->replayed += sc->replay.replayed;
        sum->events_replayed += sc->replay.events_replayed;
        for (int t = 0; t < 3; t++)
            sum->tiers[t] += sc->tiers[t];
        for (int t = 0; t < JT_COUNT; t++)
            sum->types[t] += sc->types[t];
    }
    if (rc == LS_OK && o->top)
        rc = write_top(&r, sum);
    else if (!o->top)
        sum->rows = sum->matched;
    if (rc == LS_OK && fflush(o->out) != 0)
        rc = write_failed(&r);
    sum->threads = r.nscorers;
    sum->ranges = r.nranges;
    sum->seconds = (double)(timefmt_mono_ns() - t0) / 1e9;
    teardown(&r);
    if (rc == LS_EIO)
        return ls_fail(err, errlen, rc, "writing the rows failed: %s", strerror(r.write_errno ? r.write_errno : EIO));
    if (rc != LS_OK)
        return ls_fail(err, errlen, rc, "rescore failed: %s", ls_strerror(rc));
    return LS_OK;
}
