/* segments.c -- the content-segment catalogue and the ranking of segments
 * for one customer (see segments.h). */
#include "segments.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "textfmt.h"

#define MS_PER_DAY 86400000.0
/* Candidates considered before the k best are kept. */
#define MAX_CANDIDATES (FEATURE_MAX_CATEGORIES + 2 + SEGMENTS_MAX_DEFAULTS)

/* ------------------------------------------------------------------ */
/* The catalogue                                                       */
/* ------------------------------------------------------------------ */

static int copy_name(char *dst, json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= SEGMENTS_NAME)
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int parse_fixed(json_t *v, segments_fixed *out)
{
    json_t *w = json_object_get(v, "weight");
    if (!json_is_object(v) || copy_name(out->segment, json_object_get(v, "segment")) || !json_is_number(w) ||
        json_number_value(w) < 0)
        return -1;
    out->weight = json_number_value(w);
    return 0;
}

static int parse_rules(json_t *arr, segments_catalogue *cat, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) > SEGMENTS_MAX_RULES)
        return ls_fail(err, errlen, LS_EPARSE, "model file: segments.catalogue must be an array of at most %d {prefix, segment}",
                    SEGMENTS_MAX_RULES);
    cat->nrules = (int)json_array_size(arr);
    for (int i = 0; i < cat->nrules; i++) {
        json_t *r = json_array_get(arr, (size_t)i), *p = json_object_get(r, "prefix");
        if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) >= sizeof cat->rules[i].prefix ||
            copy_name(cat->rules[i].segment, json_object_get(r, "segment")))
            return ls_fail(err, errlen, LS_EPARSE, "model file: segments.catalogue[%d] needs a prefix and a segment name", i);
        memcpy(cat->rules[i].prefix, json_string_value(p), json_string_length(p) + 1);
        cat->rules[i].prefix_len = json_string_length(p);
    }
    return LS_OK;
}

/* Reads {"name": {segment, weight}, ...} keyed by type or phase names. */
static int parse_named(json_t *obj, segments_fixed *out, int n, const char *(*name_of)(int), const char *what,
                       char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    if (!json_is_object(obj))
        return ls_fail(err, errlen, LS_EPARSE, "model file: segments.%s must be an object", what);
    json_object_foreach(obj, key, v) {
        int i = 0;
        while (i < n && strcmp(name_of(i), key) != 0)
            i++;
        if (i == n)
            return ls_fail(err, errlen, LS_EPARSE, "model file: segments.%s: unknown name \"%s\"", what, key);
        if (parse_fixed(v, &out[i]))
            return ls_fail(err, errlen, LS_EPARSE, "model file: segments.%s.%s needs {segment, weight >= 0}", what, key);
    }
    return LS_OK;
}

static const char *type_name_of(int i) { return journey_type_name((journey_type)i); }
static const char *phase_name_of(int i) { return journey_phase_name((journey_phase)i); }

static int parse_defaults(json_t *arr, segments_catalogue *cat, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) > SEGMENTS_MAX_DEFAULTS)
        return ls_fail(err, errlen, LS_EPARSE, "model file: segments.defaults must be an array of at most %d {segment, weight}",
                    SEGMENTS_MAX_DEFAULTS);
    cat->ndefaults = (int)json_array_size(arr);
    for (int i = 0; i < cat->ndefaults; i++)
        if (parse_fixed(json_array_get(arr, (size_t)i), &cat->defaults[i]))
            return ls_fail(err, errlen, LS_EPARSE, "model file: segments.defaults[%d] needs {segment, weight >= 0}", i);
    return LS_OK;
}

/* The id of a segment name: the index, in the order rules, by_type,
 * by_phase, defaults, of its first entry, so that ranking compares
 * integers instead of names. */
static void assign_ids(segments_catalogue *cat)
{
    const char *names[SEGMENTS_MAX_RULES + JT_COUNT + JP_COUNT + SEGMENTS_MAX_DEFAULTS];
    int *ids[SEGMENTS_MAX_RULES + JT_COUNT + JP_COUNT + SEGMENTS_MAX_DEFAULTS];
    int n = 0;
    for (int i = 0; i < cat->nrules; i++, n++) {
        names[n] = cat->rules[i].segment;
        ids[n] = &cat->rules[i].id;
    }
    for (int i = 0; i < JT_COUNT; i++, n++) {
        names[n] = cat->by_type[i].segment;
        ids[n] = &cat->by_type[i].id;
    }
    for (int i = 0; i < JP_COUNT; i++, n++) {
        names[n] = cat->by_phase[i].segment;
        ids[n] = &cat->by_phase[i].id;
    }
    for (int i = 0; i < cat->ndefaults; i++, n++) {
        names[n] = cat->defaults[i].segment;
        ids[n] = &cat->defaults[i].id;
    }
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (strcmp(names[j], names[i]) != 0)
            j++;
        *ids[i] = j;
    }
}

static int parse_catalogue(json_t *obj, segments_catalogue *cat, char *err, size_t errlen);

int segments_parse(json_t *obj, segments_catalogue *cat, char *err, size_t errlen)
{
    int rc = parse_catalogue(obj, cat, err, errlen);
    if (rc == LS_OK)
        assign_ids(cat);
    return rc;
}

static int parse_catalogue(json_t *obj, segments_catalogue *cat, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    int rc = LS_OK;
    memset(cat, 0, sizeof *cat);
    cat->k = 3;
    cat->long_term_weight = 0.25;
    if (!obj)
        return LS_OK;
    if (!json_is_object(obj))
        return ls_fail(err, errlen, LS_EPARSE, "model file: \"segments\" must be an object");
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "k") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > SEGMENTS_MAX_K)
                return ls_fail(err, errlen, LS_EPARSE, "model file: segments.k must be an integer from 1 to %d", SEGMENTS_MAX_K);
            cat->k = (int)json_integer_value(v);
        } else if (strcmp(key, "long_term_weight") == 0) {
            if (!json_is_number(v) || json_number_value(v) < 0)
                return ls_fail(err, errlen, LS_EPARSE, "model file: segments.long_term_weight must be a number >= 0");
            cat->long_term_weight = json_number_value(v);
        } else if (strcmp(key, "catalogue") == 0) {
            rc = parse_rules(v, cat, err, errlen);
        } else if (strcmp(key, "by_type") == 0) {
            rc = parse_named(v, cat->by_type, JT_COUNT, type_name_of, "by_type", err, errlen);
        } else if (strcmp(key, "by_phase") == 0) {
            rc = parse_named(v, cat->by_phase, JP_COUNT, phase_name_of, "by_phase", err, errlen);
        } else if (strcmp(key, "defaults") == 0) {
            rc = parse_defaults(v, cat, err, errlen);
        } else {
            return ls_fail(err, errlen, LS_EPARSE, "model file: unknown key segments.%s", key);
        }
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Ranking                                                             */
/* ------------------------------------------------------------------ */

/* The rule with the longest prefix matching category c, or -1.  A prefix
 * matches the whole category or a leading part ending at a '/'. */
static int match_rule(const segments_catalogue *cat, const feature_category *c)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < cat->nrules; i++) {
        size_t n = cat->rules[i].prefix_len;
        /* prefix_len >= 1: the first byte turns most rules away cheaply */
        if (n > c->len || cat->rules[i].prefix[0] != c->name[0] || memcmp(cat->rules[i].prefix, c->name, n) != 0)
            continue;
        if (n < c->len && c->name[n] != '/' && cat->rules[i].prefix[n - 1] != '/')
            continue;
        if (n > best_len) {
            best = i;
            best_len = n;
        }
    }
    return best;
}

/* Why a candidate is there; the text is written only for the segments
 * returned (formatting is most of the cost of ranking). */
enum { WHY_CATEGORY, WHY_TYPE, WHY_PHASE, WHY_DEFAULT };

typedef struct {
    const char *segment;  /* points into the catalogue */
    int id;               /* its id (segments_fixed.id) */
    double weight;
    double best;          /* the strongest single contribution, for the reason */
    int why;              /* WHY_* of that contribution */
    int category;         /* with WHY_CATEGORY: index in the record */
    double recent;        /* with WHY_CATEGORY: its recent interest */
} candidate;

/* Adds weight to the candidate named seg (creating it); the reason is kept
 * from the strongest contribution. */
static void add_candidate(candidate *cands, int *n, const char *seg, int id, double w, int why, int category,
                          double recent)
{
    int i = 0;
    while (i < *n && cands[i].id != id)
        i++;
    if (i == *n) {
        if (*n >= MAX_CANDIDATES)
            return;
        cands[i] = (candidate){seg, id, 0, -1, why, category, recent};
        (*n)++;
    }
    if (w > cands[i].best) {
        cands[i].best = w;
        cands[i].why = why;
        cands[i].category = category;
        cands[i].recent = recent;
    }
    cands[i].weight += w;
}

static void category_candidates(const segments_catalogue *cat, const ls_features *f, const segments_inputs *in,
                                candidate *cands, int *n)
{
    int64_t dt = in->ctx.now_ms - f->last_seen_ms;
    double ks = feature_decay_factor(dt, in->ctx.decay.short_ms);
    double kl = feature_decay_factor(dt, in->ctx.decay.long_ms);
    for (int i = 0; i < f->ncategories; i++) {
        const feature_category *c = &f->categories[i];
        int r = match_rule(cat, c);
        if (r < 0)
            continue;
        double recent = c->recent * ks;
        double w = recent + cat->long_term_weight * c->decayed * kl;
        if (w < 1e-3)
            continue;
        add_candidate(cands, n, cat->rules[r].segment, cat->rules[r].id, w, WHY_CATEGORY, i, recent);
    }
}

/* Copies the constant text s (shorter than cap). */
static void put_text(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
}

/* The type and phase reasons are snprintf's text, built by hand
 * (textfmt.h: the same bytes, cut at cap - 1 like snprintf). */
static void type_reason(char *buf, size_t cap, const ls_features *f, const segments_inputs *in)
{
    textfmt t = textfmt_begin(buf, cap);
    switch (in->journey.type) {
    case JT_SALE_HUNTER:
        textfmt_lit(&t, "sale hunter: ");
        textfmt_fixed(&t, 100.0 * f->discounted_spend / f->spend, 0);
        textfmt_lit(&t, "% of spend on discounted items");
        break;
    case JT_NEW:
        textfmt_lit(&t, "new customer: first purchase ");
        textfmt_fixed(&t, f->first_purchase_ms ? (double)(in->ctx.now_ms - f->first_purchase_ms) / MS_PER_DAY : 0, 0);
        textfmt_lit(&t, " days ago");
        break;
    case JT_BIG_SPENDER:
        textfmt_lit(&t, "big spender: expected value ");
        textfmt_fixed(&t, in->clv, 0);
        textfmt_lit(&t, " over the next year");
        break;
    case JT_REGULAR:
        textfmt_lit(&t, "regular: ");
        textfmt_uint(&t, f->count[EV_PURCHASE]);
        textfmt_lit(&t, " purchases, P(alive) ");
        textfmt_fixed(&t, in->p_alive, 2);
        break;
    case JT_OCCASIONAL:
        textfmt_lit(&t, "occasional buyer: ");
        textfmt_uint(&t, f->count[EV_PURCHASE]);
        textfmt_lit(&t, " purchases");
        break;
    default: textfmt_lit(&t, "prospect: no purchase yet"); break;
    }
    textfmt_end(&t, buf);
}

static void phase_reason(char *buf, size_t cap, const ls_features *f, const segments_inputs *in)
{
    textfmt t = textfmt_begin(buf, cap);
    switch (in->journey.phase) {
    case JP_DISAPPOINTMENT:
        if (f->last_negative_ms && f->last_negative_ms >= f->last_purchase_ms - 1) {
            textfmt_lit(&t, "at risk: refund, bad review or support ticket ");
            textfmt_fixed(&t, (double)(in->ctx.now_ms - f->last_negative_ms) / MS_PER_DAY, 0);
            textfmt_lit(&t, " days ago");
        } else if (f->count[EV_PURCHASE] >= 2) {
            textfmt_lit(&t, "at risk: activity fading, no purchase for ");
            textfmt_fixed(&t, (double)(in->ctx.now_ms - f->last_purchase_ms) / MS_PER_DAY, 0);
            textfmt_lit(&t, " days, P(alive) ");
            textfmt_fixed(&t, in->p_alive, 2);
        } else { /* one order: BG/NBD's P(alive) stays 1, silence alone says it */
            textfmt_lit(&t, "at risk: no purchase for ");
            textfmt_fixed(&t, (double)(in->ctx.now_ms - f->last_purchase_ms) / MS_PER_DAY, 0);
            textfmt_lit(&t, " days");
        }
        break;
    case JP_IDENTIFICATION:
        textfmt_lit(&t, "advocate: ");
        textfmt_uint(&t, (unsigned)(f->count[EV_REFERRAL] + f->count[EV_SHARE]));
        textfmt_lit(&t, " referrals/shares, ");
        textfmt_uint(&t, f->good_reviews);
        textfmt_lit(&t, " good reviews");
        break;
    case JP_TRUST:
        textfmt_lit(&t, "repeat buyer: ");
        textfmt_uint(&t, f->count[EV_PURCHASE]);
        textfmt_lit(&t, " purchases");
        break;
    case JP_ILLUSION: textfmt_lit(&t, "first purchase made"); break;
    default: textfmt_lit(&t, "no purchase yet"); break;
    }
    textfmt_end(&t, buf);
}

/* Heavier first, then by name: a total order (names are unique among
 * candidates), so any sort gives the same list. */
static int by_weight(const candidate *a, const candidate *b)
{
    double x = a->weight, y = b->weight;
    if (x != y)
        return (x < y) - (x > y);
    return strcmp(a->segment, b->segment);
}

/* Insertion sort: a score has a handful of candidates (at most
 * MAX_CANDIDATES), where qsort's set-up and indirect calls cost more. */
static void sort_candidates(candidate *c, int n)
{
    for (int i = 1; i < n; i++) {
        candidate v = c[i];
        int j = i;
        while (j > 0 && by_weight(&c[j - 1], &v) > 0) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = v;
    }
}

/* "showed interest in NAME COUNT time(s) (recent interest %.1f)", NAME cut
 * at 120 bytes: snprintf's text byte for byte, built by hand (textfmt.h).
 * COUNT is every event in the category (views, searches, carts, checkouts,
 * purchases, reviews, shares), not only browsing. */
static void category_reason(char *buf, size_t cap, const feature_category *cat, double recent)
{
    textfmt t = textfmt_begin(buf, cap);
    textfmt_lit(&t, "showed interest in ");
    textfmt_mem(&t, cat->name, strnlen(cat->name, 120));
    textfmt_char(&t, ' ');
    textfmt_uint(&t, cat->count);
    if (cat->count == 1)
        textfmt_lit(&t, " time (recent interest ");
    else
        textfmt_lit(&t, " times (recent interest ");
    textfmt_fixed(&t, recent, 1);
    textfmt_char(&t, ')');
    textfmt_end(&t, buf);
}

static void write_reason(const candidate *c, const ls_features *f, const segments_inputs *in, char *buf, size_t cap)
{
    const feature_category *cat = &f->categories[c->category];
    switch (c->why) {
    case WHY_CATEGORY: category_reason(buf, cap, cat, c->recent); break;
    case WHY_TYPE: type_reason(buf, cap, f, in); break;
    case WHY_PHASE: phase_reason(buf, cap, f, in); break;
    default: put_text(buf, cap, "default for everyone"); break;
    }
}

int segments_rank_ex(const segments_catalogue *cat, const ls_features *f, const segments_inputs *in, int k,
                     int reasons, segments_item *out)
{
    candidate cands[MAX_CANDIDATES];
    int n = 0;
    category_candidates(cat, f, in, cands, &n);
    const segments_fixed *t = &cat->by_type[in->journey.type], *p = &cat->by_phase[in->journey.phase];
    if (t->segment[0])
        add_candidate(cands, &n, t->segment, t->id, t->weight, WHY_TYPE, 0, 0);
    if (p->segment[0])
        add_candidate(cands, &n, p->segment, p->id, p->weight, WHY_PHASE, 0, 0);
    for (int i = 0; i < cat->ndefaults; i++)
        add_candidate(cands, &n, cat->defaults[i].segment, cat->defaults[i].id, cat->defaults[i].weight, WHY_DEFAULT,
                      0, 0);
    sort_candidates(cands, n);
    if (k > SEGMENTS_MAX_K)
        k = SEGMENTS_MAX_K;
    if (n > k)
        n = k;
    for (int i = 0; i < n; i++) {
        put_text(out[i].segment, sizeof out[i].segment, cands[i].segment);
        out[i].weight = cands[i].weight;
        if (reasons)
            write_reason(&cands[i], f, in, out[i].reason, sizeof out[i].reason);
        else
            out[i].reason[0] = '\0';
    }
    return n > 0 ? n : 0;
}

int segments_rank(const segments_catalogue *cat, const ls_features *f, const segments_inputs *in, int k,
                  segments_item *out)
{
    return segments_rank_ex(cat, f, in, k, 1, out);
}
