/* bench_components.c -- micro-benchmarks of the pieces a leadscore request
 * is made of: the physical floor `leadscore bench` is measured against.
 *
 *   features   feature_apply of one event
 *   model      model_score of a typical record; the full assessment
 *              (score, BG/NBD, journey, segments) that a score reply holds;
 *              next best actions with all eight reasons; a score result
 *              (assessment, next actions, segments) written to a writer
 *   record     feature_decode of the typical record
 *   codec      decoding a typical ~150-byte track request (parse + decode
 *              of its event); encoding a score reply with codec_writer
 *   LMDB       random store_reader_get of existing customers (100,000
 *              records in a temporary directory), in one snapshot and with
 *              a snapshot per read as a score request does; batched puts of
 *              1,000 random-key records per transaction, synced; and puts
 *              at the transaction size of the service's track benchmark
 *              (--batch events x --clients requests per group commit), raw
 *              and with everything the writer does per event (claim the
 *              event id, read, apply, write): the rate the service's track
 *              throughput is compared with ("at least 0.5 x the raw rate").
 *
 * Every CPU figure is the median ns/op of several repetitions; the LMDB
 * commit figures are medians over transactions.  --quick runs a fraction
 * of the work, for CI smoke tests.  Links leadscore_core only. */
#define _GNU_SOURCE
#include <ftw.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "assess.h"
#include "codec.h"
#include "feature.h"
#include "leadscore/error.h"
#include "model.h"
#include "nextaction.h"
#include "store.h"
#include "timefmt.h"

#define MAX_REPS 15
#define NIDS 65536
#define DAY_MS 86400000LL

typedef struct {
    int quick;
    int reps;
    uint64_t iters;          /* per repetition of a CPU benchmark */
    uint64_t records;        /* customers in the LMDB benchmarks */
    int batch, clients;      /* the track benchmark's group commit */
    int txns;                /* transactions per LMDB put benchmark */
    int cpu_only;            /* --cpu-only: no LMDB rows */
} options;

/* Shared inputs, built once. */
typedef struct {
    model *m;
    feature_decay decay;
    ls_features record;      /* a typical customer: browsing, carts, a purchase */
    ls_features browser;     /* one who never bought */
    ls_event events[64];     /* a mix of events to apply */
    char sess[64][24];
    int64_t now_ms;
    char track_req[512];
    size_t track_len;
    store *st;
    char dir[512];
    char (*ids)[24];         /* NIDS random existing ids */
    uint8_t *idlen;
} inputs;

static volatile double sink; /* keeps results alive */

/* ------------------------------------------------------------------ */
/* Timing                                                              */
/* ------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 2685821657736338717ULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef void (*bench_fn)(inputs *in, uint64_t iters);

/* Median ns per op of fn over reps repetitions of iters ops. */
static double time_per_op(bench_fn fn, inputs *in, uint64_t iters, int reps)
{
    double v[MAX_REPS];
    fn(in, iters / 10 + 1); /* warm caches */
    for (int r = 0; r < reps; r++) {
        int64_t t0 = timefmt_mono_ns();
        fn(in, iters);
        v[r] = (double)(timefmt_mono_ns() - t0) / (double)iters;
    }
    return median(v, reps);
}

static void row(const char *what, double value, const char *unit, const char *note)
{
    printf("%-50s %12.1f  %-9s %s\n", what, value, unit, note);
}

/* ------------------------------------------------------------------ */
/* Inputs                                                              */
/* ------------------------------------------------------------------ */

static ls_str s_of(const char *s)
{
    ls_str v = {s, strlen(s)};
    return v;
}

static void make_events(inputs *in)
{
    static const event_type types[] = {EV_PAGE_VIEW, EV_PRODUCT_VIEW, EV_PRODUCT_VIEW, EV_SEARCH, EV_ADD_TO_CART,
                                       EV_CHECKOUT, EV_PURCHASE, EV_EMAIL_OPEN};
    static const char *const cats[] = {"shoes/running", "apparel/jackets", "electronics/audio", "home/kitchen",
                                       "beauty/skin", "sports/cycling", "toys/lego", "books/fiction", "garden/tools",
                                       "shoes/casual"};
    for (int i = 0; i < 64; i++) {
        ls_event *ev = &in->events[i];
        event_init(ev);
        ev->type = types[i % 8];
        ev->customer = s_of("cust-4242");
        snprintf(in->sess[i], sizeof in->sess[i], "s-%016llx", (unsigned long long)(i / 4));
        ev->session = s_of(in->sess[i]);
        ev->category = s_of(cats[i % 10]);
        ev->product = s_of("sku-01234");
        ev->ts_ms = in->now_ms - (64 - i) * DAY_MS / 4;
        ev->has = EVF_TS;
        if (ev->type == EV_PRODUCT_VIEW || ev->type == EV_ADD_TO_CART || ev->type == EV_PURCHASE) {
            ev->price = 49.90;
            ev->value = 49.90;
            ev->has |= EVF_PRICE;
        }
    }
}

/* A typical record: about twenty events of browsing, carts, a purchase. */
static void make_record(inputs *in)
{
    feature_init(&in->record);
    feature_init(&in->browser);
    for (int i = 40; i < 64; i++) {
        feature_apply(&in->record, &in->events[i], &in->decay);
        if (in->events[i].type != EV_PURCHASE && in->events[i].type != EV_CHECKOUT)
            feature_apply(&in->browser, &in->events[i], &in->decay);
    }
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* {"id": 1, "op": "track", "events": [{ one typical event }]}: about 150
 * bytes, the size of an event a storefront tracks. */
static void make_track_request(inputs *in)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_str(&pk, "id");
    msgpack_pack_fix_uint64(&pk, 1);
    pack_str(&pk, "op");
    pack_str(&pk, "track");
    pack_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "customer");
    pack_str(&pk, "cust-4242");
    pack_str(&pk, "type");
    pack_str(&pk, "add_to_cart");
    pack_str(&pk, "ts");
    msgpack_pack_int64(&pk, in->now_ms);
    pack_str(&pk, "event_id");
    pack_str(&pk, "evt-00000042");
    pack_str(&pk, "session");
    pack_str(&pk, "s-deadbeef");
    pack_str(&pk, "category");
    pack_str(&pk, "shoes/running");
    pack_str(&pk, "price");
    msgpack_pack_double(&pk, 89.90);
    in->track_len = sb.size < sizeof in->track_req ? sb.size : sizeof in->track_req;
    memcpy(in->track_req, sb.data, in->track_len);
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------------ */
/* CPU benchmarks                                                      */
/* ------------------------------------------------------------------ */

static void b_feature_apply(inputs *in, uint64_t iters)
{
    ls_features f = in->record;
    for (uint64_t i = 0; i < iters; i++)
        feature_apply(&f, &in->events[i & 63], &in->decay);
    sink = f.spend;
}

static void b_model_score(inputs *in, uint64_t iters)
{
    feature_ctx ctx = {in->now_ms, in->decay};
    model_result r;
    double acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        ctx.now_ms = in->now_ms + (int64_t)(i & 1023);
        model_score(in->m, &in->record, &ctx, 0, &r);
        acc += r.score;
    }
    sink = acc;
}

static void assess_loop(inputs *in, const ls_features *f, uint64_t iters, unsigned flags)
{
    feature_ctx ctx = {in->now_ms, in->decay};
    assess_result a;
    double acc = 0;
    for (uint64_t i = 0; i < iters; i++) {
        ctx.now_ms = in->now_ms + (int64_t)(i & 1023);
        assess_customer_ex(in->m, f, &ctx, 0, -1, flags, &a);
        acc += a.clv;
    }
    sink = acc;
}

static void b_assess_buyer(inputs *in, uint64_t iters)
{
    assess_loop(in, &in->record, iters, 0);
}

static void b_assess_buyer_no_reasons(inputs *in, uint64_t iters)
{
    assess_loop(in, &in->record, iters, ASSESS_NO_REASONS);
}

static void b_assess_browser(inputs *in, uint64_t iters)
{
    assess_loop(in, &in->browser, iters, 0);
}

static void b_assess_browser_no_reasons(inputs *in, uint64_t iters)
{
    assess_loop(in, &in->browser, iters, ASSESS_NO_REASONS);
}

/* The next best actions of the typical record with every action flagged:
 * eight reasons, the most a score reply writes. */
static void b_nextaction_all(inputs *in, uint64_t iters)
{
    feature_ctx ctx = {in->now_ms, in->decay};
    assess_result a;
    nextaction_item items[JA_COUNT];
    double acc = 0;
    assess_customer(in->m, &in->record, &ctx, 0, -1, &a);
    a.journey.actions = (1u << JA_COUNT) - 1;
    for (uint64_t i = 0; i < iters; i++)
        acc += items[nextaction_rank(in->m, &in->record, &a, in->now_ms, items) - 1].value;
    sink = acc;
}

/* feature_decode of the typical record, as the store hands it back. */
static void b_feature_decode(inputs *in, uint64_t iters)
{
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n = 0;
    ls_features f;
    double acc = 0;
    feature_encode(&in->record, buf, sizeof buf, &n);
    for (uint64_t i = 0; i < iters; i++) {
        feature_decode(&f, buf, n);
        acc += f.spend;
    }
    sink = acc;
}

/* What op_score does for one buyer after the store read: the assessment,
 * then every field of the result written (ops.c write_result, with
 * next_actions), into a reused writer. */
static void b_score_result(inputs *in, uint64_t iters)
{
    feature_ctx ctx = {in->now_ms, in->decay};
    codec_writer w;
    assess_result a;
    size_t acc = 0;
    codec_writer_init(&w);
    for (uint64_t i = 0; i < iters; i++) {
        codec_writer_reset(&w);
        assess_customer(in->m, &in->record, &ctx, 0, -1, &a);
        cw_map(&w);
        cw_key(&w, "score");
        cw_double(&w, a.logistic.score);
        cw_key(&w, "clv");
        cw_double(&w, a.clv);
        nextaction_emit(&w, in->m, &in->record, &a, in->now_ms);
        cw_key(&w, "segments");
        cw_array(&w);
        for (int s = 0; s < a.nsegments; s++) {
            cw_map(&w);
            cw_key(&w, "segment");
            cw_str(&w, a.segments[s].segment);
            cw_key(&w, "weight");
            cw_double(&w, a.segments[s].weight);
            cw_key(&w, "reason");
            cw_str(&w, a.segments[s].reason);
            cw_end(&w);
        }
        cw_end(&w);
        cw_end(&w);
        acc += w.sb.size;
    }
    codec_writer_destroy(&w);
    sink = (double)acc;
}

static void b_decode_track(inputs *in, uint64_t iters)
{
    msgpack_zone zone;
    codec_request req;
    ls_event ev;
    const char *why;
    char whybuf[160];
    int64_t acc = 0;
    msgpack_zone_init(&zone, 65536);
    for (uint64_t i = 0; i < iters; i++) {
        if (codec_parse_request(in->track_req, in->track_len, &zone, &req, &why) == LS_OK) {
            const msgpack_object *evs = codec_map_get(&req.root, "events");
            if (evs && evs->type == MSGPACK_OBJECT_ARRAY &&
                codec_decode_event(&evs->via.array.ptr[0], &ev, whybuf, sizeof whybuf) == LS_OK)
                acc += ev.ts_ms;
        }
        msgpack_zone_clear(&zone);
    }
    msgpack_zone_destroy(&zone);
    sink = (double)acc;
}

static void kv_double(codec_writer *w, const char *k, double v)
{
    cw_key(w, k);
    cw_double(w, v);
}

static void kv_str(codec_writer *w, const char *k, const char *v)
{
    cw_key(w, k);
    cw_str(w, v);
}

/* A score reply of the shape ops.c writes (PROTOCOL.md section 3). */
static void encode_score_reply(codec_writer *w, uint64_t i)
{
    codec_writer_reset(w);
    cw_map(w);
    cw_key(w, "ok");
    cw_bool(w, 1);
    cw_key(w, "id");
    cw_int(w, (int64_t)i);
    kv_str(w, "customer", "cust-4242");
    cw_key(w, "known");
    cw_bool(w, 1);
    kv_double(w, "score", 0.4213);
    cw_key(w, "score_100");
    cw_int(w, 42);
    kv_str(w, "tier", "hot");
    kv_double(w, "p_alive", 0.93);
    kv_double(w, "expected_purchases_30d", 0.71);
    kv_double(w, "clv", 312.5);
    kv_str(w, "customer_type", "regular");
    kv_str(w, "phase", "trust");
    cw_key(w, "loyalty_points");
    cw_int(w, 1250);
    kv_str(w, "loyalty_tier", "silver");
    cw_key(w, "actions");
    cw_array(w);
    cw_str(w, "abandoned_cart");
    cw_end(w);
    cw_key(w, "segments");
    cw_array(w);
    for (int s = 0; s < 3; s++) {
        cw_map(w);
        kv_str(w, "segment", "running-gear");
        kv_double(w, "weight", 0.5 - 0.1 * s);
        kv_str(w, "reason", "viewed shoes/running");
        cw_end(w);
    }
    cw_end(w);
    kv_str(w, "model", "default@1.0.0");
    cw_end(w);
}

static void b_encode_score(inputs *in, uint64_t iters)
{
    codec_writer w;
    size_t acc = 0;
    (void)in;
    codec_writer_init(&w);
    for (uint64_t i = 0; i < iters; i++) {
        encode_score_reply(&w, i);
        acc += w.sb.size;
    }
    codec_writer_destroy(&w);
    sink = (double)acc;
}

static size_t score_reply_size(void)
{
    codec_writer w;
    codec_writer_init(&w);
    encode_score_reply(&w, 1);
    size_t n = w.sb.size;
    codec_writer_destroy(&w);
    return n;
}

/* ------------------------------------------------------------------ */
/* LMDB                                                                */
/* ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static size_t id_of(uint64_t k, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "cust-%llu", (unsigned long long)k);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Opens a synced store in a temporary directory with `records`
 * customers, and a table of random existing ids. */
static int store_setup(inputs *in, const options *o)
{
    char err[512] = "", id[24];
    const char *tmp = getenv("TMPDIR");
    store_options opt = {.map_size = 8ULL << 30};
    store_wtxn *txn = NULL;
    snprintf(in->dir, sizeof in->dir, "%s/leadscore-bench-components-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(in->dir) || store_open(&in->st, in->dir, &opt, &in->decay, err, sizeof err) != LS_OK) {
        fprintf(stderr, "bench_components: cannot open a store in %s: %s\n", in->dir, err);
        return -1;
    }
    int rc = store_write_begin(in->st, &txn);
    for (uint64_t k = 1; rc == LS_OK && k <= o->records; k++)
        rc = store_wtxn_put(txn, id, id_of(k, id, sizeof id), &in->record);
    if (rc == LS_OK)
        rc = store_write_commit(&txn);
    store_write_abort(&txn);
    in->ids = malloc(NIDS * sizeof *in->ids);
    in->idlen = malloc(NIDS);
    if (rc != LS_OK || !in->ids || !in->idlen) {
        fprintf(stderr, "bench_components: cannot fill the store: %s\n", ls_strerror(rc));
        return -1;
    }
    for (int i = 0; i < NIDS; i++)
        in->idlen[i] = (uint8_t)id_of(1 + rnd() % o->records, in->ids[i], sizeof in->ids[i]);
    return 0;
}

static void store_teardown(inputs *in)
{
    store_close(&in->st);
    if (in->dir[0])
        nftw(in->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(in->ids);
    free(in->idlen);
}

static void b_get_one_snapshot(inputs *in, uint64_t iters)
{
    store_reader *r;
    ls_features f;
    uint64_t found = 0;
    if (store_reader_open(in->st, &r) != LS_OK)
        return;
    store_reader_begin(r);
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t j = rnd() % NIDS;
        found += store_reader_get(r, in->ids[j], in->idlen[j], &f) == LS_OK;
    }
    store_reader_end(r);
    store_reader_close(&r);
    sink = (double)found;
}

static void b_get_own_snapshot(inputs *in, uint64_t iters)
{
    store_reader *r;
    ls_features f;
    uint64_t found = 0;
    if (store_reader_open(in->st, &r) != LS_OK)
        return;
    for (uint64_t i = 0; i < iters; i++) {
        uint64_t j = rnd() % NIDS;
        store_reader_begin(r);
        found += store_reader_get(r, in->ids[j], in->idlen[j], &f) == LS_OK;
        store_reader_end(r);
    }
    store_reader_close(&r);
    sink = (double)found;
}

typedef struct {
    double commit_ms;   /* median time inside store_write_commit */
    double txn_ms;      /* median time of the whole transaction */
    double per_s;       /* puts (or events) per second over all txns */
} txn_figures;

/* One put transaction of n random existing keys; with `writer` also what
 * the writer does per event (claim a fresh event id, read, apply). */
static int put_txn(inputs *in, int n, int writer, uint64_t *eid_seq, double *commit_ms)
{
    store_wtxn *txn;
    ls_features f = in->record;
    char eid[40];
    int rc = store_write_begin(in->st, &txn);
    for (int i = 0; rc == LS_OK && i < n; i++) {
        uint64_t j = rnd() % NIDS;
        if (writer) {
            int seen = 0;
            int len = snprintf(eid, sizeof eid, "bench-%016llx", (unsigned long long)++*eid_seq);
            rc = store_wtxn_claim_event_id(txn, eid, (size_t)len, in->ids[j], in->idlen[j], in->now_ms, &seen);
            if (rc == LS_OK)
                rc = store_wtxn_get(txn, in->ids[j], in->idlen[j], &f);
            if (rc == LS_OK || rc == LS_ENOTFOUND)
                feature_apply(&f, &in->events[i & 63], &in->decay), rc = LS_OK;
        }
        if (rc == LS_OK)
            rc = store_wtxn_put(txn, in->ids[j], in->idlen[j], &f);
    }
    int64_t t0 = timefmt_mono_ns();
    if (rc == LS_OK)
        rc = store_write_commit(&txn);
    *commit_ms = (double)(timefmt_mono_ns() - t0) / 1e6;
    store_write_abort(&txn);
    return rc;
}

static int put_benchmark(inputs *in, int n, int txns, int writer, txn_figures *out)
{
    double commit[256], total[256];
    uint64_t eid_seq = (uint64_t)timefmt_now_ms() << 20;
    int64_t all0 = 0;
    if (txns > 256)
        txns = 256;
    for (int t = -2; t < txns; t++) { /* two warm-up transactions */
        if (t == 0)
            all0 = timefmt_mono_ns();
        int64_t t0 = timefmt_mono_ns();
        double c;
        int rc = put_txn(in, n, writer, &eid_seq, &c);
        if (rc != LS_OK) {
            fprintf(stderr, "bench_components: put transaction failed: %s\n", ls_strerror(rc));
            return -1;
        }
        if (t >= 0) {
            commit[t] = c;
            total[t] = (double)(timefmt_mono_ns() - t0) / 1e6;
        }
    }
    double secs = (double)(timefmt_mono_ns() - all0) / 1e9;
    out->commit_ms = median(commit, txns);
    out->txn_ms = median(total, txns);
    out->per_s = secs > 0 ? (double)n * txns / secs : 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option opts[] = {{"quick", no_argument, NULL, 'q'}, {"clients", required_argument, NULL, 'c'},
                                         {"cpu-only", no_argument, NULL, 'u'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"records", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    *o = (options){.reps = 7, .iters = 1000000, .records = 100000, .batch = 100, .clients = 4, .txns = 40};
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'q': o->quick = 1; break;
        case 'u': o->cpu_only = 1; break;
        case 'c': o->clients = atoi(optarg); break;
        case 'b': o->batch = atoi(optarg); break;
        case 'r': o->records = strtoull(optarg, NULL, 10); break;
        case 'h':
            printf("usage: bench_components [--quick] [--cpu-only] [--clients N] [--batch B] [--records N]\n\n"
                   "Median costs of the pieces of a leadscore request (see the top of\n"
                   "bench/bench_components.c).  --clients and --batch give the track benchmark's\n"
                   "group-commit size (default 4 x 100 events); --records the LMDB customer count\n"
                   "(default 100000); --quick a fraction of the work, for CI; --cpu-only skips the\n"
                   "LMDB rows (the CPU rows alone take a few seconds).\n");
            return 1;
        default: return 2;
        }
    }
    if (o->clients < 1 || o->batch < 1 || o->records < 1) {
        fprintf(stderr, "bench_components: --clients, --batch and --records must be >= 1\n");
        return 2;
    }
    if (o->quick) {
        o->reps = 3;
        o->iters = 50000;
        o->txns = 5;
        if (o->records > 10000)
            o->records = 10000;
    }
    return 0;
}

static void cpu_rows(inputs *in, const options *o)
{
    char note[96];
    row("feature_apply, one event", time_per_op(b_feature_apply, in, o->iters, o->reps), "ns/op", "");
    row("model_score, typical record", time_per_op(b_model_score, in, o->iters, o->reps), "ns/op", "");
    row("assess_customer, buyer (all a score reply says)", time_per_op(b_assess_buyer, in, o->iters / 20, o->reps),
        "ns/op", "score + BG/NBD + journey + segments");
    row("assess_customer, browser (never bought)", time_per_op(b_assess_browser, in, o->iters / 20, o->reps), "ns/op",
        "");
    row("assess_customer_ex, buyer, ASSESS_NO_REASONS", time_per_op(b_assess_buyer_no_reasons, in, o->iters / 20, o->reps),
        "ns/op", "segment names without reasons (CSV, train)");
    row("assess_customer_ex, browser, ASSESS_NO_REASONS",
        time_per_op(b_assess_browser_no_reasons, in, o->iters / 20, o->reps), "ns/op", "");
    row("nextaction_rank, all 8 actions (8 reasons)", time_per_op(b_nextaction_all, in, o->iters / 10, o->reps),
        "ns/op", "");
    row("feature_decode, typical record", time_per_op(b_feature_decode, in, o->iters, o->reps), "ns/op", "");
    row("score result, buyer (assess + next_actions + write)", time_per_op(b_score_result, in, o->iters / 20, o->reps),
        "ns/op", "what op_score adds to the store read");
    snprintf(note, sizeof note, "%zu-byte request", in->track_len);
    row("decode track request (parse + decode_event)", time_per_op(b_decode_track, in, o->iters, o->reps), "ns/op",
        note);
    snprintf(note, sizeof note, "%zu-byte reply", score_reply_size());
    row("encode score reply (codec_writer)", time_per_op(b_encode_score, in, o->iters, o->reps), "ns/op", note);
}

static int lmdb_rows(inputs *in, const options *o)
{
    char what[96], note[128];
    txn_figures tf;
    int group = o->batch * o->clients;
    snprintf(note, sizeof note, "%llu records", (unsigned long long)o->records);
    row("LMDB get, random customer, one snapshot", time_per_op(b_get_one_snapshot, in, o->iters, o->reps), "ns/op",
        note);
    row("LMDB get, own snapshot (begin + get + end)", time_per_op(b_get_own_snapshot, in, o->iters, o->reps),
        "ns/op", "what one score request does");
    if (put_benchmark(in, 1000, o->txns, 0, &tf))
        return -1;
    row("LMDB put, 1000 random keys/txn, synced: commit", tf.commit_ms, "ms", "median per commit");
    snprintf(note, sizeof note, "whole txn %.2f ms median", tf.txn_ms);
    row("LMDB put, 1000 random keys/txn, synced: rate", tf.per_s, "puts/s", note);
    if (put_benchmark(in, group, o->txns, 0, &tf))
        return -1;
    snprintf(what, sizeof what, "raw batched put, %d/txn (%d x %d), synced", group, o->batch, o->clients);
    snprintf(note, sizeof note, "commit %.2f ms, txn %.2f ms", tf.commit_ms, tf.txn_ms);
    row(what, tf.per_s, "puts/s", note);
    double raw = tf.per_s;
    if (put_benchmark(in, group, o->txns, 1, &tf))
        return -1;
    snprintf(what, sizeof what, "writer floor, %d events/txn, synced", group);
    snprintf(note, sizeof note, "claim id + get + apply + put; commit %.2f ms", tf.commit_ms);
    row(what, tf.per_s, "events/s", note);
    printf("\ntrack target: the service's track events/s at --batch %d --clients %d should reach\n"
           "0.5 x the raw batched put rate = %.0f events/s\n", o->batch, o->clients, 0.5 * raw);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    inputs in;
    char err[256] = "";
    int rc = parse_options(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    memset(&in, 0, sizeof in);
    if (model_load_builtin(&in.m, err, sizeof err) != LS_OK) {
        fprintf(stderr, "bench_components: builtin model: %s\n", err);
        return 1;
    }
    in.decay = *model_decay(in.m);
    in.now_ms = timefmt_now_ms();
    make_events(&in);
    make_record(&in);
    make_track_request(&in);
    printf("%-50s %12s  %-9s %s\n", "component", "median", "unit", "note");
    cpu_rows(&in, &o);
    rc = o.cpu_only ? 0 : store_setup(&in, &o) == 0 ? lmdb_rows(&in, &o) : -1;
    store_teardown(&in);
    model_unref(&in.m);
    return rc == 0 ? 0 : 1;
}
