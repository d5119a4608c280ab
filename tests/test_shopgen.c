/* test_shopgen.c -- Check suite for the synthetic shop (shopgen.h).
 *
 * Small runs check the contract: configuration errors, determinism (same
 * seed, same bytes; another seed, other bytes), the JSON Lines schema
 * (every line parses with jansson and carries only PROTOCOL.md fields with
 * their types), the CSV shape, ordering, unique event ids, progress
 * reports and write errors.  One 5,000-customer, 90-day run, made once by
 * an unchecked fixture and parsed into a compact table, checks the
 * statistics within loose bounds (conversion, repeat buyers, sale hunters,
 * refunds, reviews) and that the ground truth agrees with the events.
 * Exits 1 on any failure. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "shopgen.h"

#define DAY_MS INT64_C(86400000)
#define CSV_COLUMNS 14

/* Seed of the big run; -DSHOPGEN_TEST_SEED=... to try the bounds on others. */
#ifndef SHOPGEN_TEST_SEED
#define SHOPGEN_TEST_SEED 20260101
#endif

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    char *data;
    size_t len;
} text;

static void text_free(text *t)
{
    free(t->data);
    t->data = NULL;
    t->len = 0;
}

/* Reads a stream from its start into a NUL-terminated buffer. */
static text slurp(FILE *f)
{
    text t = {NULL, 0};
    size_t cap = 1 << 16;

    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    t.data = malloc(cap);
    ck_assert_ptr_nonnull(t.data);
    for (;;) {
        if (cap - t.len < 4096) {
            cap *= 2;
            t.data = realloc(t.data, cap);
            ck_assert_ptr_nonnull(t.data);
        }
        size_t got = fread(t.data + t.len, 1, cap - t.len - 1, f);
        t.len += got;
        if (got == 0)
            break;
    }
    t.data[t.len] = '\0';
    return t;
}

/* Runs the generator into memory; truth is optional. */
static int run_text(const shopgen_config *c, text *events, text *truth, shopgen_summary *sum)
{
    FILE *ev = tmpfile(), *tr = truth ? tmpfile() : NULL;

    ck_assert_ptr_nonnull(ev);
    if (truth)
        ck_assert_ptr_nonnull(tr);
    int rc = shopgen_run(c, ev, tr, NULL, NULL, sum);
    *events = slurp(ev);
    fclose(ev);
    if (tr) {
        *truth = slurp(tr);
        fclose(tr);
    }
    return rc;
}

static void small_config(shopgen_config *c, int format)
{
    shopgen_defaults(c);
    c->customers = 400;
    c->days = 30;
    c->horizon_days = 10;
    c->format = format;
}

/* Next line of a buffer (modified in place: '\n' becomes '\0'). */
static char *next_line(char **cursor)
{
    char *s = *cursor, *nl;

    if (!s || !*s)
        return NULL;
    nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = NULL;
    }
    return s;
}

/* Splits one RFC 4180 record (no embedded newlines) into at most max
 * cells, unquoting in place.  Returns the number of cells. */
static int split_csv(char *line, char **cells, int max)
{
    int n = 0;
    char *r = line, *w;

    for (;;) {
        if (n == max)
            return max + 1;
        cells[n++] = w = r;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else if (*r == '\0') {
                    return -1;
                } else {
                    *w++ = *r++;
                }
            }
        } else {
            while (*r && *r != ',')
                *w++ = *r++;
        }
        if (*r == '\0') {
            *w = '\0';
            return n;
        }
        if (*r != ',')
            return -1;
        r++;
        *w = '\0';
    }
}

static const char *const event_types[] = {
    "page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout",
    "purchase", "refund", "review", "email_open", "email_click", "sms_click", "signup",
    "referral", "share", "support_ticket", "profile"};
#define NTYPES ((int)(sizeof event_types / sizeof event_types[0]))

static int type_index(const char *name)
{
    for (int i = 0; i < NTYPES; i++)
        if (!strcmp(name, event_types[i]))
            return i;
    return -1;
}

static int valid_birthday(const char *s)
{
    int m, d;
    char extra;

    if (strlen(s) != 5 || s[2] != '-' || sscanf(s, "%2d-%2d%c", &m, &d, &extra) != 2)
        return 0;
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* Checks one event object against PROTOCOL.md section 2.  Returns its
 * type index. */
static int check_event_schema(json_t *ev)
{
    const char *key;
    json_t *v;
    int type;

    ck_assert(json_is_object(ev));
    ck_assert(json_is_string(json_object_get(ev, "customer")));
    ck_assert(json_is_string(json_object_get(ev, "type")));
    ck_assert(json_is_integer(json_object_get(ev, "ts")));
    ck_assert(json_is_string(json_object_get(ev, "event_id")));
    type = type_index(json_string_value(json_object_get(ev, "type")));
    ck_assert_int_ge(type, 0);
    json_object_foreach(ev, key, v) {
        if (!strcmp(key, "customer") || !strcmp(key, "type") || !strcmp(key, "event_id") ||
            !strcmp(key, "session") || !strcmp(key, "product") || !strcmp(key, "category") ||
            !strcmp(key, "order_id")) {
            ck_assert_msg(json_is_string(v) && json_string_length(v) > 0 &&
                              json_string_length(v) <= 256, "bad %s", key);
        } else if (!strcmp(key, "ts")) {
            ck_assert(json_integer_value(v) > 0);
        } else if (!strcmp(key, "price") || !strcmp(key, "value")) {
            ck_assert_msg(json_is_real(v) && json_real_value(v) > 0.0, "bad %s", key);
        } else if (!strcmp(key, "quantity")) {
            ck_assert(json_is_integer(v) && json_integer_value(v) >= 1);
        } else if (!strcmp(key, "rating")) {
            ck_assert(json_is_integer(v) && json_integer_value(v) >= 1 &&
                      json_integer_value(v) <= 5);
        } else if (!strcmp(key, "discounted")) {
            ck_assert(json_is_boolean(v));
        } else if (!strcmp(key, "birthday")) {
            ck_assert(json_is_string(v) && valid_birthday(json_string_value(v)));
        } else {
            ck_abort_msg("field %s is not in PROTOCOL.md", key);
        }
    }
    if (!strcmp(event_types[type], "purchase") || !strcmp(event_types[type], "refund")) {
        ck_assert(json_is_real(json_object_get(ev, "value")));
        ck_assert(json_is_string(json_object_get(ev, "order_id")));
    }
    if (!strcmp(event_types[type], "review"))
        ck_assert(json_is_integer(json_object_get(ev, "rating")));
    if (!strcmp(event_types[type], "profile"))
        ck_assert(json_is_string(json_object_get(ev, "birthday")));
    return type;
}

static char *copy_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    ck_assert_ptr_nonnull(d);
    return memcpy(d, s, n);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ------------------------------------------------------------------ */
/* The shared 5,000-customer run                                       */
/* ------------------------------------------------------------------ */

/* One event of the big run, reduced to what the tests look at. */
typedef struct {
    int64_t ts;
    int64_t person;   /* customer index (aliases resolved), -1 anonymous */
    int type;
    int anon;         /* the event carried an anon id */
    int discounted;
    int rating;
    double value;
    char order[32];
} bev;

typedef struct {
    char id[32];
    int before, bought, in_horizon, alive;
    double lambda, p;
    char segment[16];
} btruth;

typedef struct {
    char anon[32];
    int64_t person;
} balias;

static struct {
    shopgen_config cfg;
    shopgen_summary sum;
    int rc;
    size_t bad_lines;
    bev *ev;
    size_t nev;
    btruth *truth;
    size_t ntruth;
    balias *alias;
    size_t nalias;
} big;

/* "cust-N" -> N - 1, otherwise -1. */
static int64_t cust_index(const char *id)
{
    if (strncmp(id, "cust-", 5) != 0)
        return -1;
    return strtoll(id + 5, NULL, 10) - 1;
}

static int64_t person_of(const char *id)
{
    int64_t idx = cust_index(id);

    for (size_t i = 0; idx < 0 && i < big.nalias; i++)
        if (!strcmp(big.alias[i].anon, id))
            idx = big.alias[i].person;
    return idx;
}

static void big_parse_truth(char *buf)
{
    char *cursor = buf, *line, *cells[9];

    next_line(&cursor); /* header */
    big.truth = calloc(big.cfg.customers, sizeof *big.truth);
    big.alias = calloc(big.cfg.customers, sizeof *big.alias);
    while ((line = next_line(&cursor))) {
        int n = split_csv(line, cells, 9);
        if (n == 3 && !strcmp(cells[0], "alias") && big.nalias < big.cfg.customers) {
            balias *a = &big.alias[big.nalias++];
            snprintf(a->anon, sizeof a->anon, "%s", cells[1]);
            a->person = cust_index(cells[2]);
        } else if (n == 8 && big.ntruth < big.cfg.customers) {
            btruth *t = &big.truth[big.ntruth++];
            snprintf(t->id, sizeof t->id, "%s", cells[0]);
            t->before = atoi(cells[1]);
            t->bought = atoi(cells[2]);
            t->in_horizon = atoi(cells[3]);
            t->alive = atoi(cells[4]);
            t->lambda = atof(cells[5]);
            t->p = atof(cells[6]);
            snprintf(t->segment, sizeof t->segment, "%s", cells[7]);
        } else {
            big.bad_lines++;
        }
    }
}

static void big_parse_events(char *buf)
{
    char *cursor = buf, *line;
    size_t cap = 1 << 16;

    big.ev = malloc(cap * sizeof *big.ev);
    while ((line = next_line(&cursor))) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        const char *cust = json_string_value(json_object_get(o, "customer"));
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *order = json_string_value(json_object_get(o, "order_id"));
        if (!o || !cust || !type) {
            big.bad_lines++;
            json_decref(o);
            continue;
        }
        if (big.nev == cap) {
            cap *= 2;
            big.ev = realloc(big.ev, cap * sizeof *big.ev);
        }
        bev *e = &big.ev[big.nev++];
        memset(e, 0, sizeof *e);
        e->ts = json_integer_value(json_object_get(o, "ts"));
        e->person = person_of(cust);
        e->anon = strncmp(cust, "anon-", 5) == 0;
        e->type = type_index(type);
        e->discounted = json_is_true(json_object_get(o, "discounted"));
        e->rating = (int)json_integer_value(json_object_get(o, "rating"));
        e->value = json_real_value(json_object_get(o, "value"));
        if (order)
            snprintf(e->order, sizeof e->order, "%s", order);
        json_decref(o);
    }
}

static void big_setup(void)
{
    text events, truth;

    shopgen_defaults(&big.cfg);
    big.cfg.customers = 5000;
    big.cfg.days = 90;
    big.cfg.seed = SHOPGEN_TEST_SEED;
    big.rc = run_text(&big.cfg, &events, &truth, &big.sum);
    big_parse_truth(truth.data); /* first: events need the aliases */
    big_parse_events(events.data);
    text_free(&events);
    text_free(&truth);
}

static void big_teardown(void)
{
    free(big.ev);
    free(big.truth);
    free(big.alias);
    memset(&big, 0, sizeof big);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_defaults)
{
    shopgen_config c;

    shopgen_defaults(&c);
    ck_assert_int_eq(shopgen_validate(&c), LS_OK);
    ck_assert_int_eq(c.start_ms, INT64_C(1767225600000));
    ck_assert_int_eq(c.cutoff_ms, SHOPGEN_CUTOFF_AUTO);
    ck_assert_int_eq(c.horizon_days, 30);
    ck_assert_int_eq(c.format, SHOPGEN_JSONL);
    ck_assert_str_eq(shopgen_segment_name(SHOPGEN_SALE_HUNTER), "sale_hunter");
    ck_assert_str_eq(shopgen_segment_name(SHOPGEN_BROWSER), "browser");
    ck_assert_ptr_null(shopgen_segment_name(SHOPGEN_NSEGMENTS));
    ck_assert_ptr_null(shopgen_segment_name(-1));
}
END_TEST

START_TEST(test_invalid_config)
{
    shopgen_config c;
    FILE *f = tmpfile();

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(shopgen_validate(NULL), LS_EINVAL);
    ck_assert_int_eq(shopgen_run(NULL, f, NULL, NULL, NULL, NULL), LS_EINVAL);
    small_config(&c, SHOPGEN_JSONL);
    ck_assert_int_eq(shopgen_run(&c, NULL, NULL, NULL, NULL, NULL), LS_EINVAL);
#define BAD(field, val)                                                    \
    do {                                                                   \
        small_config(&c, SHOPGEN_JSONL);                                   \
        c.field = val;                                                     \
        ck_assert_int_eq(shopgen_validate(&c), LS_EINVAL);                 \
        ck_assert_int_eq(shopgen_run(&c, f, NULL, NULL, NULL, NULL), LS_EINVAL); \
    } while (0)
    BAD(customers, 0);
    BAD(customers, SHOPGEN_MAX_CUSTOMERS + 1);
    BAD(days, 0);
    BAD(days, SHOPGEN_MAX_DAYS + 1);
    BAD(horizon_days, 0);
    BAD(start_ms, -1);
    BAD(cutoff_ms, -5);
    BAD(format, 7);
    BAD(r, 0.0);
    BAD(alpha, -1.0);
    BAD(b, NAN);
    BAD(intent_days, 0.0);
    BAD(share_sale_hunter, 1.5);
    BAD(anon_share, -0.1);
#undef BAD
    small_config(&c, SHOPGEN_JSONL);
    c.share_occasional = 0.6;
    c.share_regular = 0.6; /* sum over 1 */
    ck_assert_int_eq(shopgen_validate(&c), LS_EINVAL);
    ck_assert_int_eq(ftell(f), 0); /* nothing written */
    fclose(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Determinism and format                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_deterministic)
{
    int format = _i ? SHOPGEN_CSV : SHOPGEN_JSONL;
    shopgen_config c;
    text e1, t1, e2, t2, e3, t3;
    shopgen_summary s1, s2, s3;

    small_config(&c, format);
    ck_assert_int_eq(run_text(&c, &e1, &t1, &s1), LS_OK);
    ck_assert_int_eq(run_text(&c, &e2, &t2, &s2), LS_OK);
    ck_assert_uint_gt(e1.len, 1000);
    ck_assert_uint_eq(e1.len, e2.len);
    ck_assert(memcmp(e1.data, e2.data, e1.len) == 0);
    ck_assert_uint_eq(t1.len, t2.len);
    ck_assert(memcmp(t1.data, t2.data, t1.len) == 0);
    ck_assert_uint_eq(s1.events, s2.events);

    c.seed++;
    ck_assert_int_eq(run_text(&c, &e3, &t3, &s3), LS_OK);
    ck_assert(e1.len != e3.len || memcmp(e1.data, e3.data, e1.len) != 0);
    ck_assert(t1.len != t3.len || memcmp(t1.data, t3.data, t1.len) != 0);
    text_free(&e1);
    text_free(&e2);
    text_free(&e3);
    text_free(&t1);
    text_free(&t2);
    text_free(&t3);
}
END_TEST

/* The event id prefix of a run (up to the '-'), from its first line. */
static void id_prefix(const shopgen_config *c, char *out, size_t cap)
{
    text ev;

    ck_assert_int_eq(run_text(c, &ev, NULL, NULL), LS_OK);
    const char *p = strstr(ev.data, "\"event_id\":\"");
    ck_assert_ptr_nonnull(p);
    p += strlen("\"event_id\":\"");
    size_t n = strcspn(p, "-");
    ck_assert_uint_lt(n, cap);
    memcpy(out, p, n);
    out[n] = '\0';
    text_free(&ev);
}

/* Different streams never share event ids (a store would drop one as
 * duplicates); settings that leave the events alone keep them. */
START_TEST(test_event_id_prefix)
{
    shopgen_config c;
    char base[32], other[32];

    small_config(&c, SHOPGEN_JSONL);
    id_prefix(&c, base, sizeof base);
    ck_assert_uint_eq(strlen(base), 8);
    c.customers++;
    id_prefix(&c, other, sizeof other);
    ck_assert_str_ne(base, other);
    small_config(&c, SHOPGEN_JSONL);
    c.refund_rate = 0.05;
    id_prefix(&c, other, sizeof other);
    ck_assert_str_ne(base, other);
    small_config(&c, SHOPGEN_JSONL);
    c.horizon_days = 3;
    c.cutoff_ms = c.start_ms;
    id_prefix(&c, other, sizeof other);
    ck_assert_str_eq(base, other);
}
END_TEST

START_TEST(test_jsonl_schema_order_ids)
{
    shopgen_config c;
    text ev;
    shopgen_summary sum;
    char *cursor, *line;
    uint64_t lines = 0, by_type[NTYPES] = {0};
    int64_t last_ts = 0;
    char **ids;

    small_config(&c, SHOPGEN_JSONL);
    c.start_ms = INT64_C(1700000000123); /* not midnight */
    ck_assert_int_eq(run_text(&c, &ev, NULL, &sum), LS_OK);
    ids = malloc(sum.events * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    cursor = ev.data;
    while ((line = next_line(&cursor))) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        ck_assert_msg(o != NULL, "line %llu: %s", (unsigned long long)lines + 1, err.text);
        int type = check_event_schema(o);
        int64_t ts = json_integer_value(json_object_get(o, "ts"));
        ck_assert_int_ge(ts, last_ts);
        ck_assert_int_ge(ts, c.start_ms);
        ck_assert_int_lt(ts, c.start_ms + c.days * DAY_MS);
        last_ts = ts;
        ck_assert_uint_lt(lines, sum.events);
        ids[lines] = copy_str(json_string_value(json_object_get(o, "event_id")));
        by_type[type]++;
        lines++;
        json_decref(o);
    }
    ck_assert_uint_eq(lines, sum.events);
    for (int t = 0; t < NTYPES; t++)
        ck_assert_uint_eq(by_type[t], sum.by_type[t]);
    ck_assert_uint_gt(by_type[type_index("purchase")], 0);
    ck_assert_int_eq(sum.first_ts >= c.start_ms, 1);
    ck_assert_int_eq(sum.last_ts, last_ts);
    qsort(ids, lines, sizeof *ids, cmp_str);
    for (uint64_t i = 1; i < lines; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
    for (uint64_t i = 0; i < lines; i++)
        free(ids[i]);
    free(ids);
    text_free(&ev);
}
END_TEST

START_TEST(test_csv_shape)
{
    static const char header[] = "event_id,customer,type,ts,session,product,category,price,"
                                 "quantity,value,discounted,rating,order_id,birthday";
    shopgen_config c;
    text csv, jsonl;
    shopgen_summary sum, jsum;
    char *cursor, *jcursor, *line, *cells[CSV_COLUMNS + 1];
    uint64_t rows = 0;
    int64_t last_ts = 0;

    small_config(&c, SHOPGEN_CSV);
    ck_assert_int_eq(run_text(&c, &csv, NULL, &sum), LS_OK);
    c.format = SHOPGEN_JSONL;
    ck_assert_int_eq(run_text(&c, &jsonl, NULL, &jsum), LS_OK);
    ck_assert_uint_eq(sum.events, jsum.events);
    cursor = csv.data;
    jcursor = jsonl.data;
    ck_assert_str_eq(next_line(&cursor), header);
    while ((line = next_line(&cursor))) {
        ck_assert_int_eq(split_csv(line, cells, CSV_COLUMNS), CSV_COLUMNS);
        int64_t ts = strtoll(cells[3], NULL, 10);
        ck_assert_int_ge(ts, last_ts);
        last_ts = ts;
        ck_assert_int_ge(type_index(cells[2]), 0);
        ck_assert(cells[10][0] == '\0' || !strcmp(cells[10], "true") ||
                  !strcmp(cells[10], "false"));
        ck_assert(cells[13][0] == '\0' || valid_birthday(cells[13]));
        /* The same event as the JSONL run, field by field. */
        json_error_t err;
        json_t *o = json_loads(next_line(&jcursor), 0, &err);
        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(cells[0], json_string_value(json_object_get(o, "event_id")));
        ck_assert_str_eq(cells[1], json_string_value(json_object_get(o, "customer")));
        ck_assert_str_eq(cells[2], json_string_value(json_object_get(o, "type")));
        ck_assert_int_eq(ts, json_integer_value(json_object_get(o, "ts")));
        json_t *cat = json_object_get(o, "category");
        ck_assert_str_eq(cells[6], cat ? json_string_value(cat) : "");
        json_t *price = json_object_get(o, "price");
        ck_assert(price ? atof(cells[7]) == json_real_value(price) : cells[7][0] == '\0');
        json_decref(o);
        rows++;
    }
    ck_assert_uint_eq(rows, sum.events);
    text_free(&csv);
    text_free(&jsonl);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Runs: progress, cutoff, errors                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    int calls;
    int last_day;
    uint64_t last_events;
    int monotone;
} progress_log;

static void on_progress(void *arg, uint64_t events, int days_done, int days_total)
{
    progress_log *p = arg;

    if (events < p->last_events || days_done != p->last_day + 1 || days_total != 30)
        p->monotone = 0;
    p->calls++;
    p->last_day = days_done;
    p->last_events = events;
}

START_TEST(test_progress)
{
    shopgen_config c;
    progress_log log = {0, 0, 0, 1};
    shopgen_summary sum;
    FILE *f = tmpfile();

    small_config(&c, SHOPGEN_JSONL);
    ck_assert_int_eq(shopgen_run(&c, f, NULL, on_progress, &log, &sum), LS_OK);
    ck_assert_int_eq(log.calls, 30);
    ck_assert_int_eq(log.last_day, 30);
    ck_assert(log.monotone);
    ck_assert_uint_eq(log.last_events, sum.events);
    ck_assert_int_eq(ftell(f) > 0, 1);
    fclose(f);
}
END_TEST

START_TEST(test_write_error)
{
    shopgen_config c;
    FILE *full = fopen("/dev/full", "w");
    FILE *ok = tmpfile();

    if (!full)
        return; /* not Linux: nothing to test */
    small_config(&c, SHOPGEN_JSONL);
    ck_assert_int_eq(shopgen_run(&c, full, NULL, NULL, NULL, NULL), LS_EIO);
    ck_assert_int_eq(shopgen_run(&c, ok, full, NULL, NULL, NULL), LS_EIO);
    fclose(full);
    fclose(ok);
}
END_TEST

START_TEST(test_cutoff_resolution)
{
    shopgen_config c;
    text ev, truth;
    shopgen_summary sum;

    small_config(&c, SHOPGEN_JSONL);
    ck_assert_int_eq(run_text(&c, &ev, NULL, &sum), LS_OK);
    ck_assert_int_eq(sum.cutoff_ms, c.start_ms + 20 * DAY_MS);
    text_free(&ev);

    c.days = 5; /* shorter than the horizon: the cutoff is the start */
    ck_assert_int_eq(run_text(&c, &ev, &truth, &sum), LS_OK);
    ck_assert_int_eq(sum.cutoff_ms, c.start_ms);
    char *cursor = truth.data, *line, *cells[9];
    ck_assert_str_eq(next_line(&cursor), "customer,purchases_before_cutoff,purchased_in_horizon,"
                                         "purchases_in_horizon,alive_at_cutoff,lambda_per_day,"
                                         "p_dropout,segment");
    while ((line = next_line(&cursor)) && split_csv(line, cells, 9) == 8) {
        ck_assert_str_eq(cells[1], "0"); /* nothing lies before the cutoff */
        ck_assert_str_eq(cells[4], "0"); /* nobody had arrived by then */
    }
    if (line) /* the alias rows follow */
        ck_assert_str_eq(cells[0], "alias");
    text_free(&ev);
    text_free(&truth);

    c.days = 30;
    c.cutoff_ms = c.start_ms + 7 * DAY_MS + 3600000;
    ck_assert_int_eq(run_text(&c, &ev, NULL, &sum), LS_OK);
    ck_assert_int_eq(sum.cutoff_ms, c.cutoff_ms);
    text_free(&ev);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The big run: statistics and ground truth                            */
/* ------------------------------------------------------------------ */

START_TEST(test_big_run_parses)
{
    ck_assert_int_eq(big.rc, LS_OK);
    ck_assert_uint_eq(big.bad_lines, 0);
    ck_assert_uint_eq(big.nev, big.sum.events);
    ck_assert_uint_eq(big.ntruth, big.cfg.customers);
    ck_assert_uint_eq(big.nalias, big.sum.aliases);
    ck_assert_uint_gt(big.nalias, 0);
    ck_assert_uint_eq(big.sum.customers, 5000);
    for (int t = 0; t < NTYPES; t++)
        ck_assert_msg(big.sum.by_type[t] > 0, "no %s events", event_types[t]);
}
END_TEST

START_TEST(test_conversion_and_repeat)
{
    unsigned char *seen = calloc(big.cfg.customers, 1);
    uint32_t *orders = calloc(big.cfg.customers, sizeof *orders);
    uint64_t visitors = 0, buyers = 0, repeat = 0, anon_visitors = 0;
    int64_t purchase = type_index("purchase");

    for (size_t i = 0; i < big.nev; i++) {
        const bev *e = &big.ev[i];
        if (e->person < 0) { /* a visitor who never signed up */
            ck_assert(e->type != purchase);
            continue;
        }
        ck_assert_int_lt(e->person, (int64_t)big.cfg.customers);
        seen[e->person] = 1;
        orders[e->person] += e->type == purchase;
    }
    for (size_t i = 0; i < big.ntruth; i++)
        anon_visitors += strncmp(big.truth[i].id, "anon-", 5) == 0;
    for (uint64_t i = 0; i < big.cfg.customers; i++) {
        visitors += seen[i];
        buyers += orders[i] >= 1;
        repeat += orders[i] >= 2;
    }
    /* Visitors who never signed up: one anon id each, all seen. */
    ck_assert_uint_eq(visitors + anon_visitors, big.sum.visitors);
    ck_assert_uint_eq(buyers, big.sum.buyers);
    ck_assert_uint_eq(repeat, big.sum.repeat_buyers);
    double conversion = (double)big.sum.buyers / (double)big.sum.visitors;
    double repeat_rate = (double)big.sum.repeat_buyers / (double)big.sum.buyers;
    ck_assert_msg(conversion >= 0.02 && conversion <= 0.05, "conversion %.4f", conversion);
    ck_assert_msg(repeat_rate >= 0.20 && repeat_rate <= 0.40, "repeat %.4f", repeat_rate);
    ck_assert_uint_ge(big.sum.visitors, big.cfg.customers * 9 / 10);
    free(seen);
    free(orders);
}
END_TEST

/* purchased_in_horizon is 1 exactly when a purchase lies in
 * [cutoff, cutoff + horizon); the counts agree too. */
START_TEST(test_truth_matches_events)
{
    int64_t cutoff = big.sum.cutoff_ms, end = cutoff + big.cfg.horizon_days * DAY_MS;
    uint32_t *before = calloc(big.cfg.customers, sizeof *before);
    uint32_t *in = calloc(big.cfg.customers, sizeof *in);
    int purchase = type_index("purchase");

    ck_assert_int_eq(cutoff, big.cfg.start_ms + 60 * DAY_MS);
    for (size_t i = 0; i < big.nev; i++) {
        const bev *e = &big.ev[i];
        if (e->type != purchase)
            continue;
        ck_assert_int_ge(e->person, 0);
        if (e->ts < cutoff)
            before[e->person]++;
        else if (e->ts < end)
            in[e->person]++;
    }
    for (size_t i = 0; i < big.ntruth; i++) {
        const btruth *t = &big.truth[i];
        int64_t p = person_of(t->id);
        ck_assert_int_eq(p >= 0 ? p : (int64_t)i, (int64_t)i); /* customer order */
        uint32_t b = p >= 0 ? before[p] : 0, h = p >= 0 ? in[p] : 0;
        ck_assert_int_eq(t->before, (int)b);
        ck_assert_int_eq(t->in_horizon, (int)h);
        ck_assert_int_eq(t->bought, h > 0);
        ck_assert(t->lambda >= 0.0 && t->p >= 0.0 && t->p < 1.0);
        ck_assert(t->alive == 0 || t->alive == 1);
        ck_assert_ptr_nonnull(strstr("browser occasional regular big_spender sale_hunter",
                                     t->segment));
    }
    free(before);
    free(in);
}
END_TEST

/* An aliased visitor: anonymous events first, then a signup under the
 * customer id, and nothing anonymous afterwards. */
START_TEST(test_aliases_in_time_order)
{
    int64_t *signup = malloc(big.cfg.customers * sizeof *signup);
    int64_t *last_anon = malloc(big.cfg.customers * sizeof *last_anon);
    int64_t *first_known = malloc(big.cfg.customers * sizeof *first_known);
    int signup_type = type_index("signup");

    for (uint64_t i = 0; i < big.cfg.customers; i++)
        signup[i] = last_anon[i] = first_known[i] = -1;
    for (size_t i = 0; i < big.nev; i++) {
        const bev *e = &big.ev[i];
        if (e->person < 0)
            continue;
        if (e->anon)
            last_anon[e->person] = e->ts;
        else if (first_known[e->person] < 0)
            first_known[e->person] = e->ts;
        if (e->type == signup_type && !e->anon && signup[e->person] < 0)
            signup[e->person] = e->ts;
    }
    for (size_t i = 0; i < big.nalias; i++) {
        int64_t p = big.alias[i].person;
        ck_assert_int_ge(p, 0);
        ck_assert_int_ge(last_anon[p], 0);
        ck_assert_int_ge(signup[p], 0);
        ck_assert_int_le(last_anon[p], signup[p]);
        ck_assert_int_eq(first_known[p], signup[p]);
    }
    free(signup);
    free(last_anon);
    free(first_known);
}
END_TEST

/* Sale hunters are about a tenth of the buying personas in the default
 * mix; purchases by other personas are seldom discounted. */
START_TEST(test_sale_hunter_share)
{
    uint64_t n = 0, disc = 0;
    int purchase = type_index("purchase");

    for (size_t i = 0; i < big.nev; i++) {
        const bev *e = &big.ev[i];
        if (e->type != purchase || !strcmp(big.truth[e->person].segment, "sale_hunter"))
            continue;
        n++;
        disc += e->discounted;
    }
    ck_assert_msg(disc * 10 <= n * 3, "others: %llu of %llu discounted",
                  (unsigned long long)disc, (unsigned long long)n);
    double share = (double)big.sum.by_segment[SHOPGEN_SALE_HUNTER] /
                   (double)(big.cfg.customers - big.sum.by_segment[SHOPGEN_BROWSER]);
    ck_assert_msg(share > 0.05 && share < 0.15, "sale hunter share %.3f", share);
}
END_TEST

/* A shop full of sale hunters, so that there are enough of their orders
 * to test: most of them are discounted, most other orders are not. */
START_TEST(test_sale_hunters_discounted)
{
    shopgen_config c;
    text ev, truth;
    char *cursor, *line, *cells[9];
    char *segment;
    uint64_t n[2] = {0, 0}, disc[2] = {0, 0};

    shopgen_defaults(&c);
    c.customers = 1500;
    c.days = 60;
    c.share_sale_hunter = 0.3;
    c.share_occasional = 0.3;
    c.alpha = 30.0; /* busier buyers: more orders per customer */
    ck_assert_int_eq(run_text(&c, &ev, &truth, NULL), LS_OK);
    segment = calloc(c.customers, 1);
    cursor = truth.data;
    next_line(&cursor);
    for (uint64_t i = 0; i < c.customers; i++) {
        ck_assert_int_eq(split_csv(next_line(&cursor), cells, 9), 8);
        segment[i] = !strcmp(cells[7], "sale_hunter");
    }
    cursor = ev.data;
    while ((line = next_line(&cursor))) {
        if (!strstr(line, "\"type\":\"purchase\""))
            continue;
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        int64_t p = cust_index(json_string_value(json_object_get(o, "customer")));
        ck_assert(p >= 0 && p < (int64_t)c.customers);
        n[(int)segment[p]]++;
        disc[(int)segment[p]] += json_is_true(json_object_get(o, "discounted"));
        json_decref(o);
    }
    ck_assert_uint_gt(n[1], 100);
    ck_assert_uint_gt(n[0], 100);
    ck_assert_msg(disc[1] * 10 >= n[1] * 8, "sale hunters: %llu of %llu discounted",
                  (unsigned long long)disc[1], (unsigned long long)n[1]);
    ck_assert_msg(disc[0] * 10 <= n[0] * 3, "others: %llu of %llu discounted",
                  (unsigned long long)disc[0], (unsigned long long)n[0]);
    free(segment);
    text_free(&ev);
    text_free(&truth);
}
END_TEST

/* Refunds name an earlier order of the same customer and give back at
 * most its value; reviews are mostly good; refunds are a few % of orders. */
START_TEST(test_refunds_and_reviews)
{
    int purchase = type_index("purchase"), refund = type_index("refund");
    int review = type_index("review");
    uint64_t refunds = 0, reviews = 0, good = 0;

    for (size_t i = 0; i < big.nev; i++) {
        const bev *e = &big.ev[i];
        if (e->type == review) {
            reviews++;
            good += e->rating >= 4;
        }
        if (e->type != refund)
            continue;
        refunds++;
        int found = 0;
        for (size_t j = 0; j < i && !found; j++) {
            const bev *o = &big.ev[j];
            if (o->type == purchase && !strcmp(o->order, e->order)) {
                found = 1;
                ck_assert_int_eq(o->person, e->person);
                ck_assert(e->value <= o->value + 1e-9);
                ck_assert_int_lt(o->ts, e->ts);
            }
        }
        ck_assert_msg(found, "refund of unknown order %s", e->order);
    }
    uint64_t orders = big.sum.by_type[purchase];
    ck_assert_uint_gt(refunds, 0);
    ck_assert_msg(refunds * 100 <= orders * 8, "%llu refunds for %llu orders",
                  (unsigned long long)refunds, (unsigned long long)orders);
    ck_assert_uint_gt(reviews, 10);
    ck_assert_msg(good * 2 >= reviews, "%llu of %llu reviews good",
                  (unsigned long long)good, (unsigned long long)reviews);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Suite                                                               */
/* ------------------------------------------------------------------ */

static Suite *shopgen_suite(void)
{
    Suite *s = suite_create("shopgen");
    TCase *basic = tcase_create("basic");
    TCase *stats = tcase_create("big_run");

    tcase_add_test(basic, test_defaults);
    tcase_add_test(basic, test_invalid_config);
    tcase_add_loop_test(basic, test_deterministic, 0, 2);
    tcase_add_test(basic, test_event_id_prefix);
    tcase_add_test(basic, test_jsonl_schema_order_ids);
    tcase_add_test(basic, test_csv_shape);
    tcase_add_test(basic, test_progress);
    tcase_add_test(basic, test_write_error);
    tcase_add_test(basic, test_cutoff_resolution);
    tcase_add_test(basic, test_sale_hunters_discounted);
    tcase_set_timeout(basic, 60);
    suite_add_tcase(s, basic);

    tcase_add_unchecked_fixture(stats, big_setup, big_teardown);
    tcase_add_test(stats, test_big_run_parses);
    tcase_add_test(stats, test_conversion_and_repeat);
    tcase_add_test(stats, test_truth_matches_events);
    tcase_add_test(stats, test_aliases_in_time_order);
    tcase_add_test(stats, test_sale_hunter_share);
    tcase_add_test(stats, test_refunds_and_reviews);
    tcase_set_timeout(stats, 60);
    suite_add_tcase(s, stats);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(shopgen_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
