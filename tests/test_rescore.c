/* test_rescore.c -- `leadscore rescore` (rescore.h): one row per customer
 * whose every field is what assess_customer says (JSON Lines and CSV, one
 * scoring thread and several), --top N by each key in order, --where
 * filters, a snapshot that stays consistent while a writer keeps
 * committing (in this process and from the real binary in another), a
 * top-N heap bounded by design, and the command's errors. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "assess.h"
#include "csv.h"
#include "feature.h"
#include "leadscore/error.h"
#include "model.h"
#include "rescore.h"
#include "store.h"
#include "testutil.h"

#define DAY 86400000LL
#define HOUR 3600000LL
#define NOW 1780000000000LL /* 2026-05-28T20:26:40Z */
#define NCUST 240

static char dir[512];
static char model_path[600]; /* the built-in model as a file, for the command */
static model *M;
static store *S;
static char err[600];

/* ------------------------------------------------------------------ */
/* A store of varied customers                                         */
/* ------------------------------------------------------------------ */

static void add(ls_features *f, event_type type, int64_t ts, const char *category, double value, int flags)
{
    ls_event e;
    event_init(&e);
    e.type = type;
    e.customer = (ls_str){"x", 1};
    e.ts_ms = ts;
    e.has = EVF_TS;
    e.session = (ls_str){"s1", 2};
    if (category)
        e.category = (ls_str){category, strlen(category)};
    if (value > 0) {
        e.price = e.value = value;
        e.has |= EVF_PRICE | EVF_VALUE;
    }
    if (flags & 1) {
        e.discounted = 1;
        e.has |= EVF_DISCOUNTED;
    }
    if (type == EV_REVIEW) {
        e.rating = flags >> 1;
        e.has |= EVF_RATING;
    }
    feature_apply(f, &e, model_decay(M));
}

/* Customer i: one of eight kinds (prospect, open cart, new buyer, regular,
 * sale hunter, refund, big spender, advocate), its times shifted by i so
 * that scores differ. */
static void make_record(ls_features *f, unsigned i)
{
    static const char *const cats[] = {"shoes/running", "apparel/jackets", "electronics/audio", "home/kitchen",
                                       "books", "toys", "garden/tools"};
    const char *cat = cats[i % 7];
    int64_t t = NOW - (int64_t)(i % 37) * DAY - (int64_t)(i % 11) * HOUR - 2 * DAY;
    feature_init(f);
    add(f, EV_PAGE_VIEW, t - 3 * HOUR, NULL, 0, 0);
    add(f, EV_PRODUCT_VIEW, t - 2 * HOUR, cat, 0, 0);
    switch (i % 8) {
    case 0: add(f, EV_SEARCH, t, cat, 0, 0); break;
    case 1:
        add(f, EV_ADD_TO_CART, NOW - (3 + i % 20) * HOUR, cat, 20.0 + i % 50, 0);
        break;
    case 2: add(f, EV_PURCHASE, t, cat, 40.0 + i % 30, 0); break;
    case 3:
        for (int k = 0; k < 4; k++)
            add(f, EV_PURCHASE, t - k * 40 * DAY, cat, 30.0 + k + i % 9, 0);
        break;
    case 4:
        add(f, EV_PURCHASE, t - 60 * DAY, cat, 50, 1);
        add(f, EV_PURCHASE, t, cat, 45.0 + i % 7, 1);
        break;
    case 5:
        add(f, EV_PURCHASE, t - 10 * DAY, cat, 80, 0);
        add(f, EV_REFUND, t, NULL, 80, 0);
        break;
    case 6:
        add(f, EV_PURCHASE, t - 100 * DAY, cat, 1500, 0);
        add(f, EV_PURCHASE, t, cat, 1200.0 + i, 0);
        break;
    default:
        add(f, EV_PURCHASE, t - 30 * DAY, cat, 60, 0);
        add(f, EV_REVIEW, t - 20 * DAY, cat, 0, 5 << 1);
        add(f, EV_REVIEW, t - 19 * DAY, cat, 0, 4 << 1);
        add(f, EV_SHARE, t, cat, 0, 0);
        add(f, EV_ADD_TO_CART, NOW - 5 * HOUR, "shoes/trail", 99, 0);
        break;
    }
}

/* Customers from .. from + n - 1, as "c00000" ids. */
static void put_customers(store *s, unsigned from, unsigned n)
{
    store_wtxn *w = NULL;
    ls_features f;
    char id[64];
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (unsigned i = from; i < from + n; i++) {
        make_record(&f, i);
        snprintf(id, sizeof id, "c%05u", i);
        ck_assert_int_eq(store_wtxn_put(w, id, strlen(id), &f), LS_OK);
    }
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
}

static store *open_rw(const char *path, const feature_decay *decay, uint64_t map)
{
    store *s = NULL;
    store_options so = {.map_size = map, .no_sync = 1};
    int rc = store_open(&s, path, &so, decay, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "store_open: %s", err);
    return s;
}

static void setup(void)
{
    ck_assert_int_eq(model_load_builtin(&M, err, sizeof err), LS_OK);
    tu_tempdir(dir, sizeof dir);
    S = open_rw(dir, model_decay(M), 512ULL << 20);
    put_customers(S, 0, NCUST);
    size_t len;
    const char *text = model_builtin_text(&len);
    snprintf(model_path, sizeof model_path, "%s/model.json", dir);
    FILE *f = fopen(model_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void teardown(void)
{
    store_close(&S);
    model_unref(&M);
    tu_rmtree(dir);
}

/* ------------------------------------------------------------------ */
/* Running it and reading the rows back                                */
/* ------------------------------------------------------------------ */

static void opts(rescore_options *o, rescore_format format, int threads)
{
    rescore_options_init(o);
    o->now_ms = NOW;
    o->format = format;
    o->threads = threads;
}

/* Runs rescore into memory; returns the text (free it). */
static char *run(rescore_options *o, rescore_summary *sum)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    o->out = f;
    int rc = rescore_run(S, M, o, sum, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "rescore_run: %d %s", rc, err);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* The JSON objects of a JSON Lines text, in order. */
static json_t *parse_lines(const char *text)
{
    json_t *rows = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "last line has no newline");
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &je);
        ck_assert_msg(json_is_object(o), "line %zu is not a JSON object: %s", json_array_size(rows) + 1, je.text);
        json_array_append_new(rows, o);
        p = nl + 1;
    }
    return rows;
}

/* What the score op would say for id: the stored record, assessed. */
static void expected(const char *id, assess_result *a)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(S, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, id, strlen(id), &f), LS_OK);
    store_reader_close(&r);
    feature_ctx ctx = {NOW, *store_decay(S)};
    assess_customer(M, &f, &ctx, 0, -1, a);
}

/* Numbers are written with 10 significant digits. */
static void near(double got, double want, const char *what, const char *id)
{
    ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want) + 1e-300, "%s of %s: %.17g, want %.17g", what, id, got, want);
}

/* A CSV number is what %.10g writes for the value, byte for byte. */
static void g10(const char *field, double want, const char *what, const char *id)
{
    char ref[40];
    snprintf(ref, sizeof ref, "%.10g", want);
    ck_assert_msg(strcmp(field, ref) == 0, "%s of %s: \"%s\", %%.10g writes \"%s\"", what, id, field, ref);
}

static void action_list(const assess_result *a, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < JA_COUNT; i++)
        if (a->journey.actions & (1u << i))
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "|" : "", journey_action_name((journey_action)i));
}

static void segment_list(const assess_result *a, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < a->nsegments; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? "|" : "", a->segments[i].segment);
}

static void model_tag(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s@%s", model_name(M), model_version(M));
}

static void check_segments_json(json_t *segs, const assess_result *a, const char *id)
{
    ck_assert_msg(json_is_array(segs), "segments of %s", id);
    ck_assert_int_eq((int)json_array_size(segs), a->nsegments);
    for (int i = 0; i < a->nsegments; i++) {
        json_t *s = json_array_get(segs, (size_t)i);
        ck_assert_str_eq(json_string_value(json_object_get(s, "segment")), a->segments[i].segment);
        near(json_number_value(json_object_get(s, "weight")), a->segments[i].weight, "weight", id);
        ck_assert_str_eq(json_string_value(json_object_get(s, "reason")), a->segments[i].reason);
        ck_assert_int_eq((int)json_object_size(s), 3);
    }
}

/* One JSON Lines row against assess_customer, every key of the wire reply. */
static void check_json_row(json_t *row, const char *id)
{
    static const char *const keys[] = {"customer", "known", "score", "score_100", "tier", "p_alive",
                                       "expected_purchases_30d", "clv", "customer_type", "phase", "loyalty_points",
                                       "loyalty_tier", "actions", "segments", "model"};
    assess_result a;
    char buf[1024], tag[200];
    expected(id, &a);
    ck_assert_int_eq((int)json_object_size(row), (int)(sizeof keys / sizeof keys[0]));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_msg(json_object_get(row, keys[i]) != NULL, "row of %s has no %s", id, keys[i]);
    ck_assert_str_eq(json_string_value(json_object_get(row, "customer")), id);
    ck_assert(json_is_true(json_object_get(row, "known")));
    near(json_number_value(json_object_get(row, "score")), a.logistic.score, "score", id);
    ck_assert_int_eq(json_integer_value(json_object_get(row, "score_100")), a.logistic.score_100);
    ck_assert_str_eq(json_string_value(json_object_get(row, "tier")), a.logistic.tier);
    near(json_number_value(json_object_get(row, "p_alive")), a.p_alive, "p_alive", id);
    near(json_number_value(json_object_get(row, "expected_purchases_30d")), a.expected_purchases_30d, "expected", id);
    near(json_number_value(json_object_get(row, "clv")), a.clv, "clv", id);
    ck_assert_str_eq(json_string_value(json_object_get(row, "customer_type")), journey_type_name(a.journey.type));
    ck_assert_str_eq(json_string_value(json_object_get(row, "phase")), journey_phase_name(a.journey.phase));
    ck_assert_int_eq(json_integer_value(json_object_get(row, "loyalty_points")), a.journey.loyalty_points);
    ck_assert_str_eq(json_string_value(json_object_get(row, "loyalty_tier")), a.journey.loyalty_tier);
    json_t *acts = json_object_get(row, "actions");
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(acts); i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? "|" : "", json_string_value(json_array_get(acts, i)));
    char want[1024];
    action_list(&a, want, sizeof want);
    ck_assert_str_eq(buf, want);
    check_segments_json(json_object_get(row, "segments"), &a, id);
    model_tag(tag, sizeof tag);
    ck_assert_str_eq(json_string_value(json_object_get(row, "model")), tag);
}

/* ------------------------------------------------------------------ */
/* Rows                                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_jsonl_rows_match_assess)
{
    static const int threads[] = {1, 3};
    char id[32];
    for (int t = 0; t < 2; t++) {
        rescore_options o;
        rescore_summary sum;
        opts(&o, RESCORE_JSONL, threads[t]);
        char *text = run(&o, &sum);
        json_t *rows = parse_lines(text);
        ck_assert_int_eq((int)json_array_size(rows), NCUST);
        ck_assert_uint_eq(sum.customers, NCUST);
        ck_assert_uint_eq(sum.rows, NCUST);
        ck_assert_uint_eq(sum.matched, NCUST);
        ck_assert_int_eq(sum.threads, threads[t]);
        uint64_t tiers = 0, types = 0, ntypes[JT_COUNT] = {0};
        for (unsigned i = 0; i < NCUST; i++) {
            snprintf(id, sizeof id, "c%05u", i); /* id order */
            check_json_row(json_array_get(rows, i), id);
            assess_result a;
            expected(id, &a);
            ntypes[a.journey.type]++;
        }
        for (int k = 0; k < 3; k++)
            tiers += sum.tiers[k];
        for (int k = 0; k < JT_COUNT; k++) {
            types += sum.types[k];
            ck_assert_uint_eq(sum.types[k], ntypes[k]);
        }
        ck_assert_uint_eq(tiers, NCUST);
        ck_assert_uint_eq(types, NCUST);
        /* the records cover every type but regular at least once */
        ck_assert_uint_gt(ntypes[JT_PROSPECT], 0);
        ck_assert_uint_gt(ntypes[JT_SALE_HUNTER] + ntypes[JT_BIG_SPENDER], 0);
        json_decref(rows);
        free(text);
    }
}
END_TEST

START_TEST(test_csv_rows_match_assess)
{
    static const char *const header[] = {"customer", "known", "score", "score_100", "tier", "p_alive",
                                         "expected_purchases_30d", "clv", "customer_type", "phase", "loyalty_points",
                                         "loyalty_tier", "actions", "segments", "model", "segments_detail"};
    char path[700], id[32], want[1024], tag[200];
    snprintf(path, sizeof path, "%s/rows.csv", dir);
    for (int threads = 1; threads <= 2; threads++) {
        rescore_options o;
        rescore_summary sum;
        opts(&o, RESCORE_CSV, threads);
        o.segments_detail = 1;
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        o.out = f;
        ck_assert_int_eq(rescore_run(S, M, &o, &sum, err, sizeof err), LS_OK);
        ck_assert_int_eq(fclose(f), 0);
        csv_reader *r = NULL;
        csv_row row;
        ck_assert_int_eq(csv_open(&r, path, NULL), LS_OK);
        ck_assert_int_eq(csv_next(r, &row), 1);
        ck_assert_uint_eq(row.nfields, 16);
        for (int i = 0; i < 16; i++)
            ck_assert_str_eq(row.field[i], header[i]);
        model_tag(tag, sizeof tag);
        for (unsigned i = 0; i < NCUST; i++) {
            assess_result a;
            snprintf(id, sizeof id, "c%05u", i);
            expected(id, &a);
            ck_assert_int_eq(csv_next(r, &row), 1);
            ck_assert_uint_eq(row.nfields, 16);
            ck_assert_str_eq(row.field[0], id);
            ck_assert_str_eq(row.field[1], "true");
            g10(row.field[2], a.logistic.score, "score", id);
            ck_assert_int_eq(atoi(row.field[3]), a.logistic.score_100);
            ck_assert_str_eq(row.field[4], a.logistic.tier);
            g10(row.field[5], a.p_alive, "p_alive", id);
            g10(row.field[6], a.expected_purchases_30d, "expected", id);
            g10(row.field[7], a.clv, "clv", id);
            ck_assert_str_eq(row.field[8], journey_type_name(a.journey.type));
            ck_assert_str_eq(row.field[9], journey_phase_name(a.journey.phase));
            ck_assert_int_eq(atoll(row.field[10]), a.journey.loyalty_points);
            ck_assert_str_eq(row.field[11], a.journey.loyalty_tier);
            action_list(&a, want, sizeof want);
            ck_assert_str_eq(row.field[12], want);
            segment_list(&a, want, sizeof want);
            ck_assert_str_eq(row.field[13], want);
            ck_assert_str_eq(row.field[14], tag);
            json_error_t je;
            json_t *detail = json_loads(row.field[15], 0, &je);
            ck_assert_msg(detail != NULL, "segments_detail of %s: %s", id, je.text);
            check_segments_json(detail, &a, id);
            json_decref(detail);
        }
        ck_assert_int_eq(csv_next(r, &row), 0);
        csv_close(&r);
    }
}
END_TEST

/* Ids are opaque bytes: CSV quotes them, JSON escapes them (and replaces
 * bytes that are not UTF-8). */
START_TEST(test_awkward_ids)
{
    static const char *const ids[] = {"a,b", "q\"uote", "new\nline", "caf\xc3\xa9", "bad\xff\x62yte"};
    store_wtxn *w = NULL;
    ls_features f;
    make_record(&f, 3);
    ck_assert_int_eq(store_write_begin(S, &w), LS_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(store_wtxn_put(w, ids[i], strlen(ids[i]), &f), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);

    rescore_options o;
    opts(&o, RESCORE_JSONL, 1);
    o.nwhere = 1;
    char *text = NULL;
    ck_assert_int_eq(rescore_parse_where("customer_type=occasional,regular,big_spender,sale_hunter,new", &o.where[0],
                                         err, sizeof err), LS_OK);
    text = run(&o, NULL);
    json_t *rows = parse_lines(text);
    int seen = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const char *c = json_string_value(json_object_get(json_array_get(rows, i), "customer"));
        for (int k = 0; k < 4; k++)
            seen += strcmp(c, ids[k]) == 0;
        seen += strcmp(c, "bad\xef\xbf\xbd\x62yte") == 0;
    }
    ck_assert_int_eq(seen, 5);
    json_decref(rows);
    free(text);

    char path[700];
    snprintf(path, sizeof path, "%s/awkward.csv", dir);
    opts(&o, RESCORE_CSV, 2);
    FILE *out = fopen(path, "w");
    o.out = out;
    ck_assert_int_eq(rescore_run(S, M, &o, NULL, err, sizeof err), LS_OK);
    fclose(out);
    csv_reader *r = NULL;
    csv_row row;
    ck_assert_int_eq(csv_open(&r, path, NULL), LS_OK);
    seen = 0;
    int n = 0;
    while (csv_next(r, &row) == 1) {
        ck_assert_uint_eq(row.nfields, 15);
        for (int k = 0; k < 5; k++)
            seen += row.len[0] == strlen(ids[k]) && memcmp(row.field[0], ids[k], row.len[0]) == 0;
        n++;
    }
    csv_close(&r);
    ck_assert_int_eq(seen, 5);
    ck_assert_int_eq(n, NCUST + 5 + 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* --top and --where                                                   */
/* ------------------------------------------------------------------ */

typedef struct {
    double key;
    char id[32];
} ranked;

static int by_rank(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return strcmp(x->id, y->id);
}

START_TEST(test_top_n_each_key)
{
    static ranked all[NCUST];
    static const rescore_key keys[] = {RESCORE_BY_SCORE, RESCORE_BY_CLV, RESCORE_BY_EXPECTED};
    static const size_t tops[] = {1, 7, NCUST + 10};
    for (int k = 0; k < 3; k++) {
        for (unsigned i = 0; i < NCUST; i++) {
            assess_result a;
            snprintf(all[i].id, sizeof all[i].id, "c%05u", i);
            expected(all[i].id, &a);
            all[i].key = keys[k] == RESCORE_BY_SCORE ? a.logistic.score
                         : keys[k] == RESCORE_BY_CLV ? a.clv : a.expected_purchases_30d;
        }
        qsort(all, NCUST, sizeof all[0], by_rank);
        for (int t = 0; t < 3; t++) {
            for (int threads = 1; threads <= 3; threads += 2) {
                rescore_options o;
                rescore_summary sum;
                opts(&o, RESCORE_JSONL, threads);
                o.top = tops[t];
                o.by = keys[k];
                char *text = run(&o, &sum);
                json_t *rows = parse_lines(text);
                size_t want = tops[t] < NCUST ? tops[t] : NCUST;
                ck_assert_uint_eq(json_array_size(rows), want);
                ck_assert_uint_eq(sum.rows, want);
                ck_assert_uint_eq(sum.customers, NCUST);
                for (size_t i = 0; i < want; i++) {
                    json_t *row = json_array_get(rows, i);
                    ck_assert_msg(strcmp(json_string_value(json_object_get(row, "customer")), all[i].id) == 0,
                                  "key %d top %zu threads %d: row %zu is %s, want %s", k, tops[t], threads, i,
                                  json_string_value(json_object_get(row, "customer")), all[i].id);
                    if (i < 5)
                        check_json_row(row, all[i].id);
                }
                json_decref(rows);
                free(text);
            }
        }
    }
}
END_TEST

/* Rows through filters, counted against assess_customer. */
static void check_filter(const char *const *where, int n, int threads)
{
    rescore_options o;
    rescore_summary sum;
    opts(&o, RESCORE_JSONL, threads);
    for (int i = 0; i < n; i++)
        ck_assert_msg(rescore_parse_where(where[i], &o.where[o.nwhere++], err, sizeof err) == LS_OK, "%s: %s",
                      where[i], err);
    char *text = run(&o, &sum);
    json_t *rows = parse_lines(text);
    ck_assert_uint_eq(sum.customers, NCUST);
    ck_assert_uint_eq(sum.matched, json_array_size(rows));
    /* brute force: which ids should pass */
    size_t next = 0;
    for (unsigned i = 0; i < NCUST; i++) {
        char id[32], acts[512];
        assess_result a;
        snprintf(id, sizeof id, "c%05u", i);
        expected(id, &a);
        action_list(&a, acts, sizeof acts);
        int pass = 1;
        for (int w = 0; w < n; w++) {
            const char *eq = strchr(where[w], '='), *v = eq + 1;
            size_t flen = (size_t)(eq - where[w]);
            char any[600];
            snprintf(any, sizeof any, ",%s,", v);
            char probe[200];
            int ok = 0;
            if (!strncmp(where[w], "tier", flen)) {
                snprintf(probe, sizeof probe, ",%s,", a.logistic.tier);
                ok = strstr(any, probe) != NULL;
            } else if (!strncmp(where[w], "customer_type", flen) || (flen == 4 && !strncmp(where[w], "type", 4))) {
                snprintf(probe, sizeof probe, ",%s,", journey_type_name(a.journey.type));
                ok = strstr(any, probe) != NULL;
            } else if (!strncmp(where[w], "phase", flen)) {
                snprintf(probe, sizeof probe, ",%s,", journey_phase_name(a.journey.phase));
                ok = strstr(any, probe) != NULL;
            } else if (!strncmp(where[w], "action", flen)) {
                for (int k = 0; k < JA_COUNT; k++) {
                    snprintf(probe, sizeof probe, ",%s,", journey_action_name((journey_action)k));
                    ok |= (a.journey.actions & (1u << k)) && strstr(any, probe);
                }
            } else if (!strncmp(where[w], "segment", flen)) {
                for (int k = 0; k < a.nsegments; k++) {
                    snprintf(probe, sizeof probe, ",%s,", a.segments[k].segment);
                    ok |= strstr(any, probe) != NULL;
                }
            } else if (!strncmp(where[w], "known", flen)) {
                ok = strstr(any, ",true,") != NULL || strstr(any, ",1,") != NULL;
            }
            pass &= ok;
        }
        if (!pass)
            continue;
        ck_assert_msg(next < json_array_size(rows), "%s should pass %s", id, where[0]);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, next), "customer")), id);
        next++;
    }
    ck_assert_uint_eq(next, json_array_size(rows));
    json_decref(rows);
    free(text);
}

START_TEST(test_where)
{
    static const char *const hot[] = {"tier=hot"};
    static const char *const warm_or_hot[] = {"tier=warm,hot"};
    static const char *const prospects[] = {"customer_type=prospect"};
    static const char *const hunters[] = {"type=sale_hunter"};
    static const char *const trust[] = {"phase=trust"};
    static const char *const carts[] = {"action=abandoned_cart"};
    static const char *const running[] = {"segment=running,kitchen"};
    static const char *const known[] = {"known=true"};
    static const char *const unknown[] = {"known=false"};
    static const char *const both[] = {"customer_type=prospect", "action=abandoned_cart", "tier=cold,warm,hot"};
    static const char *const none[] = {"customer_type=prospect", "phase=trust"};
    struct {
        const char *const *w;
        int n;
    } cases[] = {{hot, 1},   {warm_or_hot, 1}, {prospects, 1}, {hunters, 1}, {trust, 1}, {carts, 1},
                 {running, 1}, {known, 1},     {unknown, 1},   {both, 3},    {none, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_filter(cases[i].w, cases[i].n, 1 + (int)(i % 2));

    /* the filters are not vacuous on this store */
    rescore_options o;
    rescore_summary sum;
    opts(&o, RESCORE_CSV, 1);
    ck_assert_int_eq(rescore_parse_where("action=abandoned_cart", &o.where[o.nwhere++], err, sizeof err), LS_OK);
    free(run(&o, &sum));
    ck_assert_uint_gt(sum.matched, 0);
    ck_assert_uint_lt(sum.matched, NCUST);
    o.nwhere = 0;
    ck_assert_int_eq(rescore_parse_where("known=0", &o.where[o.nwhere++], err, sizeof err), LS_OK);
    free(run(&o, &sum));
    ck_assert_uint_eq(sum.matched, 0);
    ck_assert_uint_eq(sum.rows, 0);
}
END_TEST

START_TEST(test_where_errors)
{
    rescore_filter f;
    ck_assert_int_eq(rescore_parse_where("colour=red", &f, err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown field \"colour\""));
    ck_assert_int_eq(rescore_parse_where("tier=hott", &f, err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "hot, warm, cold"));
    ck_assert_int_eq(rescore_parse_where("tier", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("tier=", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("tier=hot,", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("phase=happy", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("action=birthday,nap", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("known=maybe", &f, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(rescore_parse_where("action=birthday,win_back", &f, err, sizeof err), LS_OK);
    ck_assert_int_eq(f.field, RESCORE_WHERE_ACTION);
    ck_assert_uint_eq(f.mask, (1u << JA_BIRTHDAY) | (1u << JA_WIN_BACK));
    rescore_key k;
    ck_assert_int_eq(rescore_parse_by("clv", &k), LS_OK);
    ck_assert_int_eq(k, RESCORE_BY_CLV);
    ck_assert_int_eq(rescore_parse_by("expected_purchases", &k), LS_OK);
    ck_assert_int_eq(k, RESCORE_BY_EXPECTED);
    ck_assert_int_eq(rescore_parse_by("loyalty", &k), LS_EINVAL);
}
END_TEST

START_TEST(test_half_lives_must_match)
{
    char other[512];
    feature_decay d = *model_decay(M);
    d.short_ms += DAY;
    tu_tempdir(other, sizeof other);
    store *s = open_rw(other, &d, 16ULL << 20);
    rescore_options o;
    opts(&o, RESCORE_CSV, 1);
    o.out = stdout;
    ck_assert_int_eq(rescore_run(s, M, &o, NULL, err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "half-lives"));
    store_close(&s);
    tu_rmtree(other);
}
END_TEST

/* ------------------------------------------------------------------ */
/* One snapshot while a writer keeps committing                         */
/* ------------------------------------------------------------------ */

/* The writer commits, again and again, one transaction that adds a NEW
 * customer "nNNNNNN" (ids after every "c" customer) and rewrites the
 * customer "a-counter" (before them all) so that its spend is the number
 * of "n" customers committed so far.  In any one snapshot the counter's
 * loyalty points are floor(points_per_currency x the "n" rows).  A scan
 * that was not one snapshot reads the counter first and the "n" rows last,
 * after more commits: it would see more "n" rows than the counter says. */
typedef struct {
    store *s;
    atomic_int stop;
    atomic_uint begun;    /* transactions that reached their commit */
    atomic_uint commits;  /* transactions committed */
} writer_arg;

static void *writer_main(void *arg)
{
    writer_arg *w = arg;
    unsigned n = 0;
    while (!atomic_load(&w->stop)) {
        store_wtxn *t = NULL;
        ls_features f;
        char id[32];
        if (store_write_begin(w->s, &t) != LS_OK)
            break;
        make_record(&f, n);
        snprintf(id, sizeof id, "n%06u", n);
        int rc = store_wtxn_put(t, id, strlen(id), &f);
        feature_init(&f);
        add(&f, EV_PAGE_VIEW, NOW - DAY, NULL, 0, 0);
        f.spend = (double)(n + 1);
        if (rc == LS_OK)
            rc = store_wtxn_put(t, "a-counter", 9, &f);
        atomic_store(&w->begun, n + 1);
        if (rc != LS_OK || store_write_commit(&t) != LS_OK) {
            store_write_abort(&t);
            break;
        }
        n++;
        atomic_store(&w->commits, n);
        usleep(100);
    }
    return NULL;
}

/* Checks one rescore's JSON Lines against the invariant; returns the
 * counter it saw. */
static unsigned check_consistent(const char *text, unsigned initial)
{
    json_t *rows = parse_lines(text);
    unsigned news = 0, others = 0;
    int64_t points = -1;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        const char *id = json_string_value(json_object_get(row, "customer"));
        if (strcmp(id, "a-counter") == 0)
            points = json_integer_value(json_object_get(row, "loyalty_points"));
        else if (id[0] == 'n')
            news++;
        else
            others++;
    }
    json_decref(rows);
    ck_assert_uint_eq(others, initial);
    ck_assert_msg(points >= 0, "no counter row");
    double ppc = model_journey(M)->points_per_currency;
    ck_assert_msg(points == (int64_t)floor(ppc * news), "the snapshot saw %u new customers but a counter of %lld points",
                  news, (long long)points);
    return news;
}

typedef struct {
    writer_arg *w;
    unsigned at_start;
    int waited;
} hold_arg;

/* Progress hook, inside the snapshot: let the writer commit a few more
 * transactions before the scan goes on. */
static void hold(void *arg, uint64_t scanned)
{
    hold_arg *h = arg;
    (void)scanned;
    if (h->waited)
        return;
    h->waited = 1;
    h->at_start = atomic_load(&h->w->begun); /* at least what the snapshot holds */
    for (int i = 0; i < 5000 && atomic_load(&h->w->commits) < h->at_start + 5; i++)
        usleep(1000);
}

START_TEST(test_snapshot_while_writing)
{
    writer_arg w = {.s = S};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    for (int i = 0; i < 5000 && atomic_load(&w.commits) < 3; i++)
        usleep(1000);
    for (int threads = 1; threads <= 3; threads++) {
        hold_arg h = {&w, 0, 0};
        rescore_options o;
        rescore_summary sum;
        opts(&o, RESCORE_JSONL, threads);
        o.progress = hold;
        o.progress_arg = &h;
        o.progress_every = 64;
        char *text = run(&o, &sum);
        unsigned seen = check_consistent(text, NCUST);
        free(text);
        ck_assert(h.waited);
        /* the snapshot began before the hook ran and missed what came after */
        ck_assert_uint_le(seen, h.at_start);
        ck_assert_uint_ge(atomic_load(&w.commits), seen + 5);
        ck_assert_uint_eq(sum.customers, NCUST + 1 + seen);
    }
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
}
END_TEST

/* The real binary in another process, reading while this one writes. */
START_TEST(test_cli_snapshot_while_writing)
{
    static char out[1 << 16];
    char path[700];
    snprintf(path, sizeof path, "%s/rows.jsonl", dir);
    put_customers(S, NCUST, 4000); /* a longer scan */
    writer_arg w = {.s = S};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
    for (int i = 0; i < 5000 && atomic_load(&w.commits) < 3; i++)
        usleep(1000);
    const char *args[] = {"rescore", "--data",  dir,    "--model", model_path, "--now", "1780000000",
                          "--format", "jsonl", "--out", path,     NULL};
    int rc = tu_run_cli(out, sizeof out, args);
    unsigned after = atomic_load(&w.commits);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    ck_assert_msg(rc == 0, "rescore failed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "customers scored"));
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 23];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    unsigned seen = check_consistent(text, NCUST + 4000);
    ck_assert_uint_le(seen, after);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bounded memory                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_top_heap_bounded)
{
    enum { N = 10, OFFERS = 200000, ROW_MAX = 300 };
    static double keys[OFFERS];
    rescore_top *t = NULL;
    char row[ROW_MAX], id[32];
    uint64_t x = 88172645463325252ULL;
    size_t bytes_early = 0;
    ck_assert_int_eq(rescore_top_new(0, &t), LS_EINVAL);
    /* a top bigger than any store (--top 9223372036854775807) keeps every
     * row, allocated as they come: no "out of memory" */
    ck_assert_int_eq(rescore_top_new(SIZE_MAX, &t), LS_OK);
    ck_assert_int_eq(rescore_top_offer(t, 1.0, "a", 1, "row", 3), 1);
    ck_assert(rescore_top_bytes(t) < 4096);
    rescore_top_free(&t);
    ck_assert_int_eq(rescore_top_new(N, &t), LS_OK);
    for (int i = 0; i < OFFERS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys[i] = (double)(x % 1000003) / 7.0;
        if (i % 1000 == 7)
            keys[i] = NAN; /* never ranks */
        int idn = snprintf(id, sizeof id, "k%07d", i);
        size_t len = 20 + x % (ROW_MAX - 20);
        memset(row, 'r', len);
        int rc = rescore_top_offer(t, keys[i], id, (size_t)idn, row, len);
        ck_assert_int_ge(rc, 0);
        ck_assert_uint_le(rescore_top_count(t), N);
        if (i == 5000)
            bytes_early = rescore_top_bytes(t);
    }
    /* N slots (allocated 16 at a time) plus N rows of at most ROW_MAX + id */
    size_t bound = 1024 + 16 * 64 + N * (ROW_MAX + 32);
    ck_assert_uint_le(rescore_top_bytes(t), bound);
    ck_assert_uint_le(bytes_early, bound);
    ck_assert_uint_eq(rescore_top_count(t), N);
    /* the N best, best first (NaN last, so never among them) */
    static double sorted[OFFERS];
    int m = 0;
    for (int i = 0; i < OFFERS; i++)
        if (!isnan(keys[i]))
            sorted[m++] = keys[i];
    for (int i = 0; i < N; i++) /* partial selection sort of the top N */
        for (int j = i + 1; j < m; j++)
            if (sorted[j] > sorted[i]) {
                double tmp = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = tmp;
            }
    rescore_top_sort(t);
    for (size_t i = 0; i < N; i++) {
        double k;
        const char *r;
        size_t len;
        rescore_top_row(t, i, &k, &r, &len);
        ck_assert(k == sorted[i]);
        ck_assert(len >= 20 && len < ROW_MAX && r[0] == 'r');
    }
    rescore_top_free(&t);
    ck_assert_ptr_null(t);
    rescore_top_free(&t);

    /* equal keys: the smaller id wins, whatever the order of arrival */
    ck_assert_int_eq(rescore_top_new(2, &t), LS_OK);
    ck_assert_int_eq(rescore_top_offer(t, 1.0, "b", 1, "B", 1), 1);
    ck_assert_int_eq(rescore_top_offer(t, 1.0, "c", 1, "C", 1), 1);
    ck_assert_int_eq(rescore_top_offer(t, 1.0, "d", 1, "D", 1), 0);
    ck_assert_int_eq(rescore_top_offer(t, 1.0, "a", 1, "A", 1), 1);
    ck_assert_int_eq(rescore_top_offer(t, NAN, "0", 1, "N", 1), 0);
    ck_assert(!rescore_top_wants(t, 0.5, "a", 1));
    ck_assert(rescore_top_wants(t, 2.0, "z", 1));
    rescore_top_sort(t);
    double k;
    const char *r;
    size_t len;
    rescore_top_row(t, 0, &k, &r, &len);
    ck_assert(len == 1 && r[0] == 'A');
    rescore_top_row(t, 1, &k, &r, &len);
    ck_assert(len == 1 && r[0] == 'B');
    rescore_top_free(&t);
}
END_TEST

/* A whole rescore with --top 10 over many customers holds O(10) rows. */
START_TEST(test_rescore_top_memory_flat)
{
    enum { MANY = 200000 };
    for (unsigned i = NCUST; i < MANY; i += 50000)
        put_customers(S, i, i + 50000 > MANY ? MANY - i : 50000);
    rescore_options o;
    rescore_summary sum;
    opts(&o, RESCORE_CSV, 2);
    o.top = 10;
    o.by = RESCORE_BY_CLV;
    o.segments_detail = 1;
    char *text = run(&o, &sum);
    ck_assert_uint_eq(sum.customers, MANY);
    ck_assert_uint_eq(sum.rows, 10);
    /* two heaps of 10 rows (a row here is well under 2 KiB) */
    ck_assert_msg(sum.top_bytes < 2 * (1024 + 10 * 2048), "top-N heaps hold %zu bytes", sum.top_bytes);
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, 11);
    free(text);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

/* Files in d named like atomicfile's temporary files (".NAME.tmp-XXXXXX"). */
static int count_temp_files(const char *d)
{
    int n = 0;
    DIR *dp = opendir(d);
    struct dirent *e;
    while (dp && (e = readdir(dp)) != NULL)
        n += e->d_name[0] == '.' && strstr(e->d_name, ".tmp-") != NULL;
    if (dp)
        closedir(dp);
    return n;
}

/* A rescore stopped by SIGTERM while it writes --out FILE exits 1 at
 * once, leaving FILE as it was and no temporary file (before, the hidden
 * .FILE.tmp-XXXXXX stayed: every cron timeout left one more). */
START_TEST(test_cli_sigterm_leaves_no_temporary_file)
{
    char big[512], outdir[512], path[700];
    tu_tempdir(big, sizeof big);
    tu_tempdir(outdir, sizeof outdir);
    store *s = open_rw(big, model_decay(M), 1ULL << 30);
    for (unsigned i = 0; i < 200000; i += 20000) /* some seconds of scoring on one thread */
        put_customers(s, i, 20000);
    store_close(&s);
    snprintf(path, sizeof path, "%s/scores.csv", outdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("old\n", f);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(LEADSCORE_BIN, LEADSCORE_BIN, "rescore", "--data", big, "--model", model_path, "--out", path,
              "--threads", "1", "--quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 10000 && count_temp_files(outdir) == 0; i++) /* <= 10 s */
        usleep(1000);
    ck_assert_int_eq(count_temp_files(outdir), 1); /* the run is writing */
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "wait status %#x: exit 1 expected (0: the run ended before the signal; the signal's number: "
                  "killed by it, nothing removed)", status);
    ck_assert_int_eq(count_temp_files(outdir), 0);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[64] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "old\n");
    tu_rmtree(big);
    tu_rmtree(outdir);
}
END_TEST

START_TEST(test_cli)
{
    static char out[1 << 16];
    char path[700];
    snprintf(path, sizeof path, "%s/top.jsonl", dir);
    const char *help[] = {"rescore", "--help", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, help), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: leadscore rescore"));
    const char *badwhere[] = {"rescore", "--data", dir, "--where", "colour=red", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badwhere), 2);
    ck_assert_ptr_nonnull(strstr(out, "unknown field \"colour\""));
    const char *badtier[] = {"rescore", "--data", dir, "--where", "tier=lukewarm", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badtier), 2);
    const char *byonly[] = {"rescore", "--data", dir, "--by", "clv", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, byonly), 2);
    const char *badtop[] = {"rescore", "--data", dir, "--top", "0", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badtop), 2);
    const char *badfmt[] = {"rescore", "--data", dir, "--format", "xml", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, badfmt), 2);
    const char *nostore[] = {"rescore", "--data", "/nonexistent/leadscore-rescore", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, nostore), 1);
    ck_assert_ptr_nonnull(strstr(out, "no leadscore store"));

    const char *top[] = {"rescore", "--data", dir,   "--model", model_path, "--now",   "2026-05-28T20:26:40Z",
                         "--format", "jsonl", "--out", path,   "--top", "3",   "--by", "clv", "--where",
                         "tier=cold,warm,hot", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, top), 0);
    ck_assert_ptr_nonnull(strstr(out, "240 customers scored"));
    ck_assert_ptr_nonnull(strstr(out, "rows written   3"));
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    json_t *rows = parse_lines(text);
    ck_assert_uint_eq(json_array_size(rows), 3);
    double prev = INFINITY;
    for (size_t i = 0; i < 3; i++) {
        json_t *row = json_array_get(rows, i);
        double clv = json_number_value(json_object_get(row, "clv"));
        ck_assert(clv <= prev);
        prev = clv;
        check_json_row(row, json_string_value(json_object_get(row, "customer")));
    }
    json_decref(rows);

    /* a model whose half-lives are not the store's */
    char other[512];
    feature_decay d = *model_decay(M);
    d.long_ms *= 2;
    tu_tempdir(other, sizeof other);
    store *s = open_rw(other, &d, 16ULL << 20);
    store_close(&s);
    const char *mismatch[] = {"rescore", "--data", other, "--model", model_path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, mismatch), 1);
    ck_assert_ptr_nonnull(strstr(out, "half-lives"));
    /* ... fails before a row: the --out file of the earlier run keeps its
     * rows, and no temporary file is left beside it */
    const char *keep[] = {"rescore", "--data", other, "--model", model_path, "--out", path, NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, keep), 1);
    ck_assert_ptr_nonnull(strstr(out, "half-lives"));
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "a failed rescore removed the existing --out file");
    static char again[1 << 16];
    again[fread(again, 1, sizeof again - 1, f)] = '\0';
    fclose(f);
    ck_assert_str_eq(again, text);
    ck_assert_int_eq(count_temp_files(dir), 0);
    /* a device is written directly, not replaced */
    const char *devnull[] = {"rescore", "--data", dir, "--model", model_path, "--out", "/dev/null", "--quiet", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, devnull), 0);
    /* "-" is standard output (as audience export reads it), not a file named "-" */
    char dash[600];
    snprintf(dash, sizeof dash, "%s/-", dir);
    const char *to_stdout[] = {"rescore", "--data", dir, "--model", model_path, "--out", "-", "--quiet", NULL};
    ck_assert_int_eq(tu_run_cli(out, sizeof out, to_stdout), 0);
    ck_assert_ptr_nonnull(strstr(out, "customer,known,score"));
    ck_assert_int_ne(access("-", F_OK), 0);
    ck_assert_int_ne(access(dash, F_OK), 0);
    tu_rmtree(other);
}
END_TEST

/* Ids that sort awkwardly: prefixes of each other, NUL and 0xff bytes,
 * CSV and JSON specials, lengths from 1 to 300 bytes. */
static size_t awkward_id(unsigned i, char *id)
{
    static const char *const stems[] = {"x", "x\x00", "xa", "a,b", "q\"uote", "new\nline", "caf\xc3\xa9",
                                        "bad\xff", "\xff\xff", "\x01", "Z", "zz\\z"};
    size_t n = (size_t)snprintf(id, 64, "%s", stems[i % 12]);
    if (i % 12 == 1)
        n = 2; /* "x" NUL */
    n += (size_t)snprintf(id + n, 32, "%u", i / 12);
    if (i % 97 == 0) { /* a few long ones */
        memset(id + n, 'L', 300 - n);
        n = 300;
    }
    return n;
}

/* The same bytes with 1, 2, 3 and 8 threads and small ranges, for every
 * format, filter, --top and an as-of time in the past. */
START_TEST(test_threads_byte_identical)
{
    store_wtxn *w = NULL;
    ls_features f;
    char id[512];
    ck_assert_int_eq(store_write_begin(S, &w), LS_OK);
    for (unsigned i = 0; i < 3000; i++) {
        make_record(&f, i);
        size_t n = awkward_id(i, id);
        ck_assert_int_eq(store_wtxn_put(w, id, n, &f), LS_OK);
    }
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    static const int threads[] = {2, 3, 8};
    static const char *const wheres[] = {NULL, "tier=hot,warm", "action=abandoned_cart"};
    for (int fmt = 0; fmt < 3; fmt++)
        for (int wh = 0; wh < 3; wh++)
            for (int top = 0; top < 2; top++)
                for (int past = 0; past < 2; past++) {
                    rescore_options o;
                    rescore_summary one, sum;
                    opts(&o, fmt == 2 ? RESCORE_JSONL : RESCORE_CSV, 1);
                    o.segments_detail = fmt == 1;
                    if (wheres[wh]) {
                        ck_assert_int_eq(rescore_parse_where(wheres[wh], &o.where[0], err, sizeof err), LS_OK);
                        o.nwhere = 1;
                    }
                    o.top = top ? 50 : 0;
                    o.by = RESCORE_BY_CLV;
                    o.now_ms = past ? NOW - 40 * DAY : NOW;
                    char *want = run(&o, &one);
                    for (int t = 0; t < 3; t++) {
                        o.threads = threads[t];
                        o.range_customers = t == 1 ? 0 : 7; /* the default, and many small ranges */
                        char *got = run(&o, &sum);
                        ck_assert_msg(strcmp(got, want) == 0, "fmt %d where %d top %d past %d: %d threads differ", fmt,
                                      wh, top, past, threads[t]);
                        ck_assert_int_eq(sum.threads, threads[t]);
                        if (o.range_customers)
                            ck_assert_uint_gt(sum.ranges, 100);
                        ck_assert_uint_eq(sum.customers, one.customers);
                        ck_assert_uint_eq(sum.matched, one.matched);
                        ck_assert_uint_eq(sum.rows, one.rows);
                        ck_assert_uint_eq(sum.replayed, one.replayed);
                        ck_assert_uint_eq(sum.events_replayed, one.events_replayed);
                        free(got);
                    }
                    if (past)
                        ck_assert_uint_gt(one.replayed, 0); /* records later than the as-of time were replayed */
                    else
                        ck_assert_uint_eq(one.replayed, 0);
                    free(want);
                }
}
END_TEST

static Suite *rescore_suite(void)
{
    Suite *s = suite_create("rescore");
    TCase *tc = tcase_create("rescore");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_jsonl_rows_match_assess);
    tcase_add_test(tc, test_csv_rows_match_assess);
    tcase_add_test(tc, test_awkward_ids);
    tcase_add_test(tc, test_threads_byte_identical);
    tcase_add_test(tc, test_top_n_each_key);
    tcase_add_test(tc, test_where);
    tcase_add_test(tc, test_where_errors);
    tcase_add_test(tc, test_half_lives_must_match);
    tcase_add_test(tc, test_snapshot_while_writing);
    tcase_add_test(tc, test_cli_snapshot_while_writing);
    tcase_add_test(tc, test_top_heap_bounded);
    tcase_add_test(tc, test_rescore_top_memory_flat);
    tcase_add_test(tc, test_cli);
    tcase_add_test(tc, test_cli_sigterm_leaves_no_temporary_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(rescore_suite());
}
