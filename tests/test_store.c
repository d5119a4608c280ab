/* test_store.c -- the LMDB store, in temporary directories: creating and
 * reopening (half-lives and schema version kept in meta), records, the
 * event-id idempotency keys and their pruning, read snapshots, scans and
 * stats, and opening stores of schema 1 and 2 (read-only as they are,
 * upgraded in place for writing). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytecur.h"
#include "feature.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"
#include "timefmt.h"

#define DAY 86400000LL
#define T0 1700000000000LL
#define MAP_SIZE (64ULL << 20)

static const feature_decay DECAY = {3 * DAY, 30 * DAY};
static char dir[512];
static char err[512];

static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
    err[0] = '\0';
}

static void teardown(void)
{
    tu_rmtree(dir);
}

static store *open_store(const feature_decay *decay)
{
    store_options opt = {.map_size = MAP_SIZE, .no_sync = 1};
    store *s = NULL;
    int rc = store_open(&s, dir, &opt, decay, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "store_open: %d %s", rc, err);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* A record with n page_views, the last at T0 + n ms. */
static void record_with(ls_features *f, int n)
{
    feature_init(f);
    for (int i = 1; i <= n; i++) {
        ls_event ev;
        event_init(&ev);
        ev.type = EV_PAGE_VIEW;
        ev.customer = (ls_str){"x", 1};
        ev.ts_ms = T0 + i;
        ev.has = EVF_TS;
        feature_apply(f, &ev, &DECAY);
    }
}

static void put(store *s, const char *id, int n)
{
    store_wtxn *w = NULL;
    ls_features f;
    record_with(&f, n);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, id, strlen(id), &f), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_ptr_null(w);
}

/* Page views in the record a fresh snapshot holds for id, or -1. */
static int views_of(store *s, const char *id)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    int rc = store_reader_get(r, id, strlen(id), &f);
    store_reader_end(r);
    store_reader_close(&r);
    ck_assert_ptr_null(r);
    if (rc == LS_ENOTFOUND)
        return -1;
    ck_assert_int_eq(rc, LS_OK);
    return (int)f.count[EV_PAGE_VIEW];
}

static int claim(store_wtxn *w, const char *eid, int64_t received)
{
    int seen = -1;
    ck_assert_int_eq(store_wtxn_claim_event_id(w, eid, strlen(eid), "cust", 4, received, &seen), LS_OK);
    ck_assert(seen == 0 || seen == 1);
    return seen;
}

/* Whether the store holds event id eid (checked in a txn that is aborted). */
static int holds(store *s, const char *eid)
{
    store_wtxn *w = NULL;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    int seen = claim(w, eid, T0);
    store_write_abort(&w);
    ck_assert_ptr_null(w);
    return seen;
}

static store_stats stats_of(store *s)
{
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    return st;
}

static uint64_t event_ids_held(store *s) { return stats_of(s).event_ids; }

/* ... of which held in memory, not yet merged into event_ids. */
static uint64_t event_ids_unmerged(store *s) { return stats_of(s).event_ids_unmerged; }

/* ------------------------------------------------------------------ */

START_TEST(create_then_reopen_keeps_the_half_lives)
{
    store *s = open_store(&DECAY);
    ck_assert_int_eq(store_decay(s)->short_ms, 3 * DAY);
    ck_assert_int_eq(store_decay(s)->long_ms, 30 * DAY);
    put(s, "alice", 2);
    store_close(&s);
    ck_assert_ptr_null(s);
    store_close(&s); /* harmless */

    /* reopened with other half-lives: the store keeps its own */
    const feature_decay other = {1 * DAY, 7 * DAY};
    s = open_store(&other);
    ck_assert_int_eq(store_decay(s)->short_ms, 3 * DAY);
    ck_assert_int_eq(store_decay(s)->long_ms, 30 * DAY);
    ck_assert_int_eq(views_of(s, "alice"), 2);
    store_close(&s);
}
END_TEST

/* EXPECTS A FIX in src/store.c open_dbs() (line 152): with read_only the
 * txn that opened the named databases is aborted instead of committed, and
 * LMDB closes DBI handles opened in an aborted txn.  The store then opens
 * "successfully" but every read fails: store_reader_get gives LS_EINTERNAL
 * (EINVAL from LMDB) and store_stat reports 0 customers. */
START_TEST(read_only_open_reads_the_store)
{
    store *s = open_store(&DECAY);
    put(s, "alice", 2);
    put(s, "bruno", 1);
    store_close(&s);

    const feature_decay other = {1 * DAY, 7 * DAY};
    store_options ro = {.map_size = MAP_SIZE, .read_only = 1};
    ck_assert_int_eq(store_open(&s, dir, &ro, &other, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_decay(s)->short_ms, 3 * DAY);
    ck_assert_int_eq(store_decay(s)->long_ms, 30 * DAY);

    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "alice", 5, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 2);
    ck_assert_int_eq(store_reader_get(r, "nobody", 6, &f), LS_ENOTFOUND);
    store_reader_end(r);
    store_reader_close(&r);

    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 2);

    /* and it cannot be written */
    store_wtxn *w = NULL;
    ck_assert_int_ne(store_write_begin(s, &w), LS_OK);
    ck_assert_ptr_null(w);
    store_close(&s);
}
END_TEST

START_TEST(read_only_open_of_an_empty_directory_fails)
{
    store *s = (store *)&s; /* must be NULLed */
    store_options ro = {.map_size = MAP_SIZE, .read_only = 1};
    int rc = store_open(&s, dir, &ro, &DECAY, err, sizeof err);
    ck_assert_int_ne(rc, LS_OK);
    ck_assert_ptr_null(s);
    ck_assert_str_ne(err, "");
}
END_TEST

START_TEST(put_then_get)
{
    store *s = open_store(&DECAY);
    store_wtxn *w = NULL;
    ls_features f, g;
    uint8_t a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
    size_t na, nb;

    record_with(&f, 3);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, "bob", 3, &f), LS_OK);
    /* the writer sees its own uncommitted put */
    ck_assert_int_eq(store_wtxn_get(w, "bob", 3, &g), LS_OK);
    ck_assert_uint_eq(g.count[EV_PAGE_VIEW], 3);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);

    store_reader *r = NULL;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "bob", 3, &g), LS_OK);
    store_reader_end(r);
    /* the stored record is the encoded one, byte for byte */
    ck_assert_int_eq(feature_encode(&f, a, sizeof a, &na), LS_OK);
    ck_assert_int_eq(feature_encode(&g, b, sizeof b, &nb), LS_OK);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(a, b, na);
    ck_assert_int_eq(g.first_seen_ms, T0 + 1);
    ck_assert_int_eq(g.last_seen_ms, T0 + 3);

    /* a second put replaces the record */
    put(s, "bob", 5);
    ck_assert_int_eq(views_of(s, "bob"), 5);

    /* a put in an aborted txn is not kept */
    record_with(&f, 9);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, "bob", 3, &f), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, "carol", 5, &f), LS_OK);
    store_write_abort(&w);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(views_of(s, "bob"), 5);
    ck_assert_int_eq(views_of(s, "carol"), -1);

    /* ids are bytes: a prefix or a longer id is another customer */
    ck_assert_int_eq(views_of(s, "bo"), -1);
    ck_assert_int_eq(views_of(s, "bobby"), -1);
    store_reader_close(&r);
    store_close(&s);
}
END_TEST

START_TEST(unknown_ids_are_not_found)
{
    store *s = open_store(&DECAY);
    put(s, "known", 1);
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    memset(&f, 0x77, sizeof f);
    ck_assert_int_eq(store_reader_get(r, "unknown", 7, &f), LS_ENOTFOUND);
    ck_assert(feature_empty(&f)); /* out is an empty record */
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 0);
    ck_assert_int_eq(store_reader_get(r, "", 0, &f), LS_ENOTFOUND);
    static char huge[600];
    memset(huge, 'h', sizeof huge);
    ck_assert_int_eq(store_reader_get(r, huge, sizeof huge, &f), LS_ENOTFOUND);
    ck_assert_int_eq(store_reader_get(r, "known", 5, &f), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);

    store_wtxn *w = NULL;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    memset(&f, 0x77, sizeof f);
    ck_assert_int_eq(store_wtxn_get(w, "unknown", 7, &f), LS_ENOTFOUND);
    ck_assert(feature_empty(&f));
    store_write_abort(&w);
    store_close(&s);
}
END_TEST

START_TEST(claim_event_id_reports_seen)
{
    store *s = open_store(&DECAY);
    store_wtxn *w = NULL;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(claim(w, "e1", T0), 0);
    ck_assert_int_eq(claim(w, "e1", T0 + 5), 1); /* again in the same txn */
    ck_assert_int_eq(claim(w, "e2", T0), 0);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), 2);

    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(claim(w, "e1", T0 + DAY), 1); /* in a later txn */
    ck_assert_int_eq(claim(w, "e2", T0 + DAY), 1);
    ck_assert_int_eq(claim(w, "e3", T0 + DAY), 0);
    store_write_abort(&w); /* e3's claim is dropped */

    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(claim(w, "e3", T0 + DAY), 0);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), 3);

    /* the same id survives a reopen */
    store_close(&s);
    s = open_store(&DECAY);
    ck_assert_int_eq(holds(s, "e1"), 1);
    ck_assert_int_eq(holds(s, "e4"), 0);

    /* bad sizes are refused, not stored */
    int seen = -1;
    static char big[EVENT_MAX_STR + 1];
    memset(big, 'b', sizeof big);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_claim_event_id(w, "", 0, "c", 1, T0, &seen), LS_EINVAL);
    ck_assert_int_eq(store_wtxn_claim_event_id(w, big, sizeof big, "c", 1, T0, &seen), LS_ETOOLARGE);
    ck_assert_int_eq(store_wtxn_claim_event_id(w, "e9", 2, big, sizeof big, T0, &seen), LS_ETOOLARGE);
    ck_assert_int_eq(store_wtxn_claim_event_id(w, big, EVENT_MAX_STR, big, EVENT_MAX_STR, T0, &seen), LS_OK);
    ck_assert_int_eq(seen, 0);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), 4);
    store_close(&s);
}
END_TEST

START_TEST(prune_removes_old_ids_oldest_first)
{
    store *s = open_store(&DECAY);
    store_wtxn *w = NULL;
    size_t pruned = 99;
    /* received at T0+1000 .. T0+4000, claimed out of order */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(claim(w, "e3", T0 + 3000), 0);
    ck_assert_int_eq(claim(w, "e1", T0 + 1000), 0);
    ck_assert_int_eq(claim(w, "e4", T0 + 4000), 0);
    ck_assert_int_eq(claim(w, "e2", T0 + 2000), 0);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);

    /* bounded by max: only the oldest goes */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 3000, 1, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 1);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(holds(s, "e1"), 0);
    ck_assert_int_eq(holds(s, "e2"), 1);
    ck_assert_uint_eq(event_ids_held(s), 3);

    /* max 0 prunes nothing */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 9999, 0, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 0);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), 3);

    /* everything before the cutoff, and only that: e3 at the cutoff stays */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 3000, 100, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 1);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(holds(s, "e2"), 0);
    ck_assert_int_eq(holds(s, "e3"), 1);
    ck_assert_int_eq(holds(s, "e4"), 1);
    ck_assert_uint_eq(event_ids_held(s), 2);

    /* nothing left before the cutoff */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 3000, 100, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 0);
    /* an aborted prune keeps the ids */
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 10000, 100, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 2);
    store_write_abort(&w);
    ck_assert_uint_eq(event_ids_held(s), 2);

    /* a pruned id may be used again */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(claim(w, "e1", T0 + 5000), 0);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 10000, 100, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 3);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), 0);

    /* an empty index prunes nothing, successfully */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 10000, 100, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 0);
    store_write_abort(&w);
    store_close(&s);
}
END_TEST

/* Claims of ids[lo..hi) for customer c<k % 50>, received at T0 + k. */
static void claim_range(store *s, char (*ids)[24], int lo, int hi)
{
    store_wtxn *w = NULL;
    char cust[8];
    int seen;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (int k = lo; k < hi; k++) {
        snprintf(cust, sizeof cust, "c%d", k % 50);
        ck_assert_int_eq(store_wtxn_claim_event_id(w, ids[k], strlen(ids[k]), cust, strlen(cust), T0 + k, &seen),
                         LS_OK);
        if (seen)
            ck_abort_msg("%s seen on its first claim", ids[k]);
    }
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
}

/* One merge txn (a slice, when a sweep is due); commit says whether it
 * commits.  How many keys it merged. */
static size_t merge_once(store *s, int commit)
{
    store_wtxn *w = NULL;
    size_t merged = 0;
    int took = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    /* idle, and long after the last sweep: due whenever keys wait */
    ck_assert_int_eq(store_wtxn_merge_window_keys(w, timefmt_now_ms() + 1000 * DAY, 1, &took, &merged), LS_OK);
    ck_assert(took || merged == 0);
    if (commit && took)
        ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_write_abort(&w);
    return merged;
}

/* Every id in [lo, hi) held (want 1) or not (0): asked as a claim would. */
static void assert_holds(store *s, char (*ids)[24], int lo, int hi, int want)
{
    for (int k = lo; k < hi; k++)
        if (holds(s, ids[k]) != want)
            ck_abort_msg("%s: held %d, want %d", ids[k], !want, want);
}

/* n random 16-hex-digit ids, from seed. */
static void random_ids(char (*ids)[24], int n, uint64_t seed)
{
    for (int k = 0; k < n; k++)
        snprintf(ids[k], sizeof ids[k], "%016llx", (unsigned long long)tu_rng_next(&seed));
}

/* The store's filter of merged ids (idfilter.h) and its figures. */
static uint64_t filter_bytes(store *s) { return stats_of(s).event_ids_filter_bytes; }
static uint64_t lookups_skipped(store *s) { return stats_of(s).event_id_lookups_skipped; }

/* Build steps of `budget` keys until the filter answers; how many. */
static int build_filter(store *s, size_t budget)
{
    int done = 0, steps = 0;
    while (!done) {
        ck_assert_int_eq(store_build_id_filter(s, budget, &done), LS_OK);
        ck_assert_int_lt(++steps, 1000);
    }
    ck_assert_int_eq(store_id_filter_due(s), 0);
    return steps;
}

/* A clock later than any sweep before ended on, so that one is due. */
static int64_t sweep_clock(void)
{
    static int64_t later = 2000;
    return timefmt_now_ms() + later++ * DAY;
}

/* Merges every key held in memory: a whole sweep. */
static void merge_all(store *s)
{
    int64_t now = sweep_clock();
    for (int i = 0; i < 10; i++) { /* a sweep is 8 slices (some maybe empty) */
        store_wtxn *w = NULL;
        size_t merged = 0;
        int took = 0;
        ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
        ck_assert_int_eq(store_wtxn_merge_window_keys(w, now, 1, &took, &merged), LS_OK);
        ck_assert_int_eq(store_write_commit(&w), LS_OK);
    }
    ck_assert_uint_eq(event_ids_unmerged(s), 0);
}

/* The first slice of a new sweep, merged in a txn that aborts; how many
 * keys it merged. */
static size_t merge_aborted(store *s)
{
    store_wtxn *w = NULL;
    size_t merged = 0;
    int took = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_merge_window_keys(w, sweep_clock(), 1, &took, &merged), LS_OK);
    store_write_abort(&w);
    return merged;
}

/* The filter of merged ids lets a claim of a new id skip event_ids, and
 * never hides an id that is there: ids merged before a build, during it
 * (the scan resumes after each step of 500 keys; random ids land behind
 * and ahead of it), after it, across the rebuild of an overfull filter
 * and across a reopen (no filter until built again) are all held. */
START_TEST(the_id_filter_never_hides_a_merged_id)
{
    enum { N = 12000 };
    static char ids[N][24];
    random_ids(ids, N, 11);
    store_options opt = {.map_size = MAP_SIZE, .no_sync = 1, .id_filter_min_keys = 1000};
    store *s = NULL;
    ck_assert_int_eq(store_open(&s, dir, &opt, &DECAY, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_id_filter_due(s), 1); /* none yet */
    claim_range(s, ids, 0, 4000);
    merge_all(s);
    int done = 1;
    ck_assert_int_eq(store_build_id_filter(s, 500, &done), LS_OK);
    ck_assert_int_eq(done, 0);
    ck_assert_uint_eq(filter_bytes(s), 0); /* not answering before the scan ends */
    claim_range(s, ids, 4000, 6000);
    merge_all(s);
    ck_assert_int_ge(build_filter(s, 500), 8); /* resumed: 4,000 keys scanned 500 at a time */
    ck_assert_uint_eq(filter_bytes(s), 16384); /* sized for 2 x 4,000 keys: 80,000 bits -> 16 KiB */
    assert_holds(s, ids, 0, 6000, 1);
    uint64_t skipped = lookups_skipped(s);
    assert_holds(s, ids, 6000, 8000, 0); /* never claimed: most answered by the filter alone */
    ck_assert_uint_ge(lookups_skipped(s) - skipped, 1950);
    /* 6,000 more merged: 12,000 > the 8,000 it was sized for, a fresh one is built */
    claim_range(s, ids, 6000, N);
    merge_all(s);
    ck_assert_int_eq(store_id_filter_due(s), 1);
    ck_assert_int_eq(store_build_id_filter(s, 500, &done), LS_OK);
    assert_holds(s, ids, 0, N, 1); /* the old one answers during the rebuild */
    build_filter(s, 500);
    ck_assert_uint_eq(filter_bytes(s), 32768); /* 2 x 12,000 keys */
    assert_holds(s, ids, 0, N, 1);
    ck_assert_int_eq(holds(s, "not-claimed"), 0);
    /* a merge that aborts put its ids in the filter, and they stay held
     * in memory; pruned ids stay in the filter, yet are new to a claim */
    static char more[2000][24];
    random_ids(more, 2000, 12);
    claim_range(s, more, 0, 2000);
    ck_assert_uint_gt(merge_aborted(s), 0);
    assert_holds(s, more, 0, 2000, 1);
    merge_all(s);
    assert_holds(s, more, 0, 2000, 1);
    store_wtxn *w = NULL;
    size_t pruned = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 1000, 2 * N, &pruned), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(pruned, 2000); /* ids[0..1000) and more[0..1000), received before T0 + 1000 */
    claim_range(s, ids, 0, 1000); /* asserts each is new */
    assert_holds(s, ids, 0, N, 1);
    store_close(&s);
    ck_assert_int_eq(store_open(&s, dir, &opt, &DECAY, err, sizeof err), LS_OK);
    ck_assert_uint_eq(filter_bytes(s), 0);
    assert_holds(s, ids, 0, 100, 1); /* before a build, from event_ids */
    build_filter(s, 5000);
    assert_holds(s, ids, 0, N, 1);
    store_close(&s);
}
END_TEST

/* Claimed ids reach event_ids lazily (windowkeys.h): whether merged,
 * half-merged or still in memory when the store is closed (as by a
 * crash), every one is held after a reopen; a merge that aborts keeps its
 * keys; pruning and forgetting take merged and unmerged keys alike. */
START_TEST(window_keys_are_held_merged_or_not_across_reopens)
{
    enum { N = 9000 };
    static char ids[N][24];
    random_ids(ids, N, 5);
    store *s = open_store(&DECAY);
    claim_range(s, ids, 0, 3000);
    claim_range(s, ids, 3000, 6000);
    ck_assert_uint_eq(event_ids_held(s), 6000);
    ck_assert_uint_eq(event_ids_unmerged(s), 6000);
    ck_assert_uint_gt(merge_once(s, 0), 0); /* a slice merged by a txn that aborts stays */
    ck_assert_uint_eq(event_ids_held(s), 6000);
    size_t merged = 0;
    for (int i = 0; i < 10; i++) /* a sweep is 8 slices (some maybe empty), then nothing is due */
        merged += merge_once(s, 1);
    ck_assert_uint_eq(merged, 6000);          /* a whole sweep: every key once */
    ck_assert_uint_eq(event_ids_held(s), 6000); /* held once, not twice */
    ck_assert_uint_eq(event_ids_unmerged(s), 0);
    assert_holds(s, ids, 0, 6000, 1);
    claim_range(s, ids, 6000, N); /* left in memory */
    store_close(&s);
    s = open_store(&DECAY); /* rebuilt from event_ids_by_time */
    ck_assert_uint_eq(event_ids_held(s), N);
    ck_assert_uint_eq(event_ids_unmerged(s), N - 6000); /* those alone: the merged ones are not read back */
    assert_holds(s, ids, 0, N, 1);
    char fresh[24];
    snprintf(fresh, sizeof fresh, "not-claimed");
    ck_assert_int_eq(holds(s, fresh), 0);
    ck_assert_uint_gt(merge_once(s, 1), 0); /* one slice of the 3,000, then a "crash" */
    store_close(&s);
    s = open_store(&DECAY);
    ck_assert_uint_eq(event_ids_held(s), N);
    assert_holds(s, ids, 0, N, 1);
    /* prune everything received before T0 + 7500: 0..7499, merged or not */
    store_wtxn *w = NULL;
    size_t pruned = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_prune_event_ids(w, T0 + 7500, N, &pruned), LS_OK);
    ck_assert_uint_eq(pruned, 7500);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_uint_eq(event_ids_held(s), N - 7500);
    assert_holds(s, ids, 0, 7500, 0);
    assert_holds(s, ids, 7500, N, 1);
    /* forget c7: its keys go, merged (after a sweep) or not */
    for (int i = 0; i < 10; i++)
        merge_once(s, 1);
    claim_range(s, ids, 0, 50); /* c0..c49 again, unmerged */
    int deleted = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_forget(w, "c7", 2, &deleted), LS_OK);
    ck_assert_int_eq(deleted, 1);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    for (int k = 0; k < N; k++) {
        int want = (k < 50 || k >= 7500) && k % 50 != 7;
        if (holds(s, ids[k]) != want)
            ck_abort_msg("after forget: %s (c%d) held %d, want %d", ids[k], k % 50, !want, want);
    }
    /* a purge's batch: thirty customers forgotten, the keys of all of them
     * dropped in one pass (a sorted set) */
    store_forgotten *batch = store_forgotten_new();
    ck_assert_ptr_nonnull(batch);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (int c = 10; c < 40; c++) {
        char id[8];
        snprintf(id, sizeof id, "c%d", c);
        ck_assert_int_eq(store_wtxn_forget_record(w, id, strlen(id), batch, &deleted), LS_OK);
    }
    ck_assert_int_eq(store_wtxn_forget_keys(w, batch), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_forgotten_free(&batch);
    for (int k = 0; k < N; k++) {
        int c = k % 50, want = (k < 50 || k >= 7500) && c != 7 && !(c >= 10 && c < 40);
        if (holds(s, ids[k]) != want)
            ck_abort_msg("after a batch forget: %s (c%d) held %d, want %d", ids[k], c, !want, want);
    }
    store_close(&s);
    s = open_store(&DECAY); /* and so after a reopen */
    ck_assert_int_eq(holds(s, ids[7]), 0);
    ck_assert_int_eq(holds(s, ids[7507]), 0); /* c7's, merged before the forget */
    ck_assert_int_eq(holds(s, ids[8]), 1);
    store_close(&s);
}
END_TEST

START_TEST(reader_snapshots_are_isolated)
{
    store *s = open_store(&DECAY);
    store_reader *before = NULL, *after = NULL;
    ls_features f;
    put(s, "dave", 1);

    ck_assert_int_eq(store_reader_open(s, &before), LS_OK);
    ck_assert_int_eq(store_reader_open(s, &after), LS_OK);
    ck_assert_int_eq(store_reader_begin(before), LS_OK);
    ck_assert_int_eq(store_reader_get(before, "erin", 4, &f), LS_ENOTFOUND);

    put(s, "erin", 1);  /* a new customer ... */
    put(s, "dave", 4);  /* ... and an update, committed after `before` began */

    ck_assert_int_eq(store_reader_get(before, "erin", 4, &f), LS_ENOTFOUND);
    ck_assert_int_eq(store_reader_get(before, "dave", 4, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 1);

    ck_assert_int_eq(store_reader_begin(after), LS_OK);
    ck_assert_int_eq(store_reader_get(after, "erin", 4, &f), LS_OK);
    ck_assert_int_eq(store_reader_get(after, "dave", 4, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 4);
    store_reader_end(after);

    /* a new snapshot on the old reader sees the commits */
    store_reader_end(before);
    ck_assert_int_eq(store_reader_begin(before), LS_OK);
    ck_assert_int_eq(store_reader_get(before, "erin", 4, &f), LS_OK);
    ck_assert_int_eq(store_reader_get(before, "dave", 4, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 4);
    /* begin twice in a row renews the snapshot */
    put(s, "frank", 1);
    ck_assert_int_eq(store_reader_begin(before), LS_OK);
    ck_assert_int_eq(store_reader_get(before, "frank", 5, &f), LS_OK);
    store_reader_end(before);
    store_reader_end(before); /* harmless */

    store_reader_close(&before);
    store_reader_close(&after);
    ck_assert_ptr_null(before);
    store_reader_close(&before); /* harmless */
    store_close(&s);
}
END_TEST

typedef struct {
    char ids[8][16];
    int views[8];
    int n;
    int stop_after;
} visit_log;

static int visit(void *arg, const char *id, size_t len, const ls_features *f)
{
    visit_log *log = arg;
    ck_assert_int_lt(log->n, 8);
    ck_assert_uint_lt(len, sizeof log->ids[0]);
    memcpy(log->ids[log->n], id, len);
    log->ids[log->n][len] = '\0';
    log->views[log->n] = (int)f->count[EV_PAGE_VIEW];
    log->n++;
    return log->n == log->stop_after ? 42 : 0;
}

START_TEST(scan_visits_customers_in_id_order)
{
    store *s = open_store(&DECAY);
    static const char *const put_order[] = {"c", "a", "b2", "aa", "b"};
    static const char *const id_order[] = {"a", "aa", "b", "b2", "c"};
    for (int i = 0; i < 5; i++)
        put(s, put_order[i], i + 1);
    store_reader *r = NULL;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);

    visit_log log = {.stop_after = -1};
    ck_assert_int_eq(store_reader_scan(r, visit, &log), LS_OK);
    ck_assert_int_eq(log.n, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(log.ids[i], id_order[i]);
        int put_at = 0;
        while (strcmp(put_order[put_at], id_order[i]) != 0)
            put_at++;
        ck_assert_int_eq(log.views[i], put_at + 1); /* the record read is that customer's */
    }

    /* the raw walk goes over the same five values, their bytes as
     * store_wtxn_put encoded them */
    uint64_t records = 0, bytes = 0, want = 0;
    for (int i = 0; i < 5; i++) {
        ls_features f;
        uint8_t buf[FEATURE_MAX_ENCODED];
        size_t n;
        record_with(&f, i + 1);
        ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &n), LS_OK);
        want += n;
    }
    ck_assert_int_eq(store_reader_walk(r, &records, &bytes), LS_OK);
    ck_assert_uint_eq(records, 5);
    ck_assert_uint_eq(bytes, want);

    /* a non-zero return stops the scan and is returned */
    visit_log early = {.stop_after = 2};
    ck_assert_int_eq(store_reader_scan(r, visit, &early), 42);
    ck_assert_int_eq(early.n, 2);
    ck_assert_str_eq(early.ids[0], "a");
    ck_assert_str_eq(early.ids[1], "aa");
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
}
END_TEST

START_TEST(scan_of_an_empty_store_visits_nothing)
{
    store *s = open_store(&DECAY);
    store_reader *r = NULL;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    visit_log log = {.stop_after = 1};
    ck_assert_int_eq(store_reader_scan(r, visit, &log), LS_OK);
    ck_assert_int_eq(log.n, 0);
    uint64_t records = 1, bytes = 1;
    ck_assert_int_eq(store_reader_walk(r, &records, &bytes), LS_OK);
    ck_assert_uint_eq(records, 0);
    ck_assert_uint_eq(bytes, 0);
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
}
END_TEST

START_TEST(newer_schema_is_refused)
{
    store *s = open_store(&DECAY);
    put(s, "gina", 1);
    store_close(&s);

    /* write meta "schema" = STORE_SCHEMA_VERSION + 1 with LMDB directly */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint32_t version = STORE_SCHEMA_VERSION + 1;
    MDB_val k = {6, "schema"}, v = {sizeof version, &version};
    ck_assert_int_eq(mdb_env_create(&env), 0);
    ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
    ck_assert_int_eq(mdb_env_set_mapsize(env, MAP_SIZE), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    store_options opt = {.map_size = MAP_SIZE};
    s = (store *)&s;
    int rc = store_open(&s, dir, &opt, &DECAY, err, sizeof err);
    ck_assert_int_eq(rc, LS_EVERSION);
    ck_assert_ptr_null(s);
    char want[64];
    snprintf(want, sizeof want, "schema version %u", STORE_SCHEMA_VERSION + 1);
    ck_assert_msg(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);

    /* read-only as well */
    store_options ro = {.map_size = MAP_SIZE, .read_only = 1};
    err[0] = '\0';
    ck_assert_int_eq(store_open(&s, dir, &ro, &DECAY, err, sizeof err), LS_EVERSION);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err, "schema version"));
}
END_TEST

static uint32_t schema_of(const char *path);

/* Another application's LMDB environment, or a store's meta table, made
 * with LMDB directly in path.  kind 0: a key in the main database and a
 * named database "accounts" (no leadscore meta); 1: "customers" as a plain
 * key of the main database; 2: a meta table holding the schema version
 * but no half-lives, and no other table; 3: nothing (an empty
 * environment). */
static void write_env(const char *path, int kind)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint32_t version = STORE_SCHEMA_VERSION;
    MDB_val k = {5, "hello"}, v = {5, "world"}, ak = {3, "bob"}, av = {4, "1000"};
    MDB_val ck = {9, "customers"}, sk = {6, "schema"}, sv = {sizeof version, &version};
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ck_assert_int_eq(mdb_env_set_mapsize(env, MAP_SIZE), 0);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    if (kind == 0) {
        ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
        ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
        ck_assert_int_eq(mdb_dbi_open(txn, "accounts", MDB_CREATE, &dbi), 0);
        ck_assert_int_eq(mdb_put(txn, dbi, &ak, &av, 0), 0);
    } else if (kind == 1) {
        ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
        ck_assert_int_eq(mdb_put(txn, dbi, &ck, &v, 0), 0);
    } else if (kind == 2) {
        ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &dbi), 0);
        ck_assert_int_eq(mdb_put(txn, dbi, &sk, &sv, 0), 0);
    }
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* The bytes of path/data.mdb (the caller frees them); *len its size. */
static uint8_t *data_file(const char *path, size_t *len)
{
    char file[600];
    snprintf(file, sizeof file, "%s/data.mdb", path);
    FILE *fp = fopen(file, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    ck_assert_int_gt(n, 0);
    rewind(fp);
    uint8_t *b = malloc((size_t)n);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

/* Opens path for writing (with half-lives) and read-only, asserting that
 * both are refused with status want and a message holding what, and that
 * data.mdb kept every byte. */
static void assert_refused_untouched(const char *path, int want, const char *what)
{
    size_t before_len, after_len;
    uint8_t *before = data_file(path, &before_len);
    store_options rw = {.map_size = MAP_SIZE}, ro = {.map_size = MAP_SIZE, .read_only = 1};
    const store_options *opts[] = {&rw, &ro};
    for (int i = 0; i < 2; i++) {
        store *s = (store *)&s; /* must be NULLed */
        err[0] = '\0';
        int rc = store_open(&s, path, opts[i], &DECAY, err, sizeof err);
        ck_assert_msg(rc == want, "%s open of %s: %d (%s), want %d", i ? "read-only" : "writing", path, rc, err,
                      want);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, what) != NULL, "%s open: \"%s\" lacks \"%s\"", i ? "read-only" : "writing", err,
                      what);
    }
    uint8_t *after = data_file(path, &after_len);
    ck_assert_msg(before_len == after_len && memcmp(before, after, before_len) == 0,
                  "data.mdb of %s changed (%zu -> %zu bytes)", path, before_len, after_len);
    free(before);
    free(after);
}

/* An LMDB environment with data but no leadscore meta record is another
 * application's: a writer once added the leadscore tables to it. */
START_TEST(a_foreign_lmdb_environment_is_refused_untouched)
{
    char path[600];
    for (int kind = 0; kind < 2; kind++) {
        snprintf(path, sizeof path, "%s/foreign%d", dir, kind);
        ck_assert_int_eq(mkdir(path, 0750), 0);
        write_env(path, kind);
        assert_refused_untouched(path, LS_EPARSE, "not a leadscore store");
        ck_assert_ptr_nonnull(strstr(err, path));
        /* nor is the writer's lock file left behind in it */
        char lock[700];
        snprintf(lock, sizeof lock, "%s/leadscore.lock", path);
        ck_assert_msg(access(lock, F_OK) != 0 && errno == ENOENT, "a refused open left %s", lock);
    }
    /* an empty environment is a new store */
    snprintf(path, sizeof path, "%s/empty", dir);
    ck_assert_int_eq(mkdir(path, 0750), 0);
    write_env(path, 3);
    store_options rw = {.map_size = MAP_SIZE};
    store *s = NULL;
    ck_assert_msg(store_open(&s, path, &rw, &DECAY, err, sizeof err) == LS_OK, "empty environment: %s", err);
    ck_assert_int_eq(store_decay(s)->long_ms, DECAY.long_ms);
    store_close(&s);
    ck_assert_uint_eq(schema_of(path), STORE_SCHEMA_VERSION);
}
END_TEST

/* A meta record without its half-lives is the same damage to every
 * opener: read-only ones once said "no leadscore store yet: MDB_NOTFOUND"
 * when the other tables were missing too. */
START_TEST(a_meta_record_without_half_lives_is_corrupt_to_every_opener)
{
    char path[600];
    snprintf(path, sizeof path, "%s/meta-only", dir);
    ck_assert_int_eq(mkdir(path, 0750), 0);
    write_env(path, 2);
    assert_refused_untouched(path, LS_EPARSE, "meta record is corrupt");

    /* a whole store that lost its "decay" key */
    store *s = open_store(&DECAY);
    put(s, "hana", 2);
    store_close(&s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val dk = {5, "decay"};
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_set_mapsize(env, MAP_SIZE), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_del(txn, meta, &dk, NULL), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_refused_untouched(dir, LS_EPARSE, "meta record is corrupt");
}
END_TEST

START_TEST(stat_counts_customers)
{
    store *s = open_store(&DECAY);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 0);
    ck_assert_uint_eq(st.event_ids, 0);
    ck_assert_uint_eq(st.map_bytes, MAP_SIZE);
    ck_assert_uint_gt(st.used_bytes, 0);
    uint64_t used_empty = st.used_bytes;

    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "customer-%03d", i);
        put(s, id, 1 + i % 3);
    }
    put(s, "customer-000", 7); /* an update is not a new customer */
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 300);
    ck_assert_uint_gt(st.used_bytes, used_empty);
    ck_assert_uint_le(st.used_bytes, st.map_bytes);
    store_close(&s);
}
END_TEST

/* Writes a version-1 store by hand: the four tables of schema 1 only. */
static void write_v1_store(const char *path)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, cust, ids, byt;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", MDB_CREATE, &cust), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "event_ids", MDB_CREATE, &ids), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "event_ids_by_time", MDB_CREATE, &byt), 0);
    uint32_t one = 1;
    int64_t hl[2] = {3 * 86400000LL, 30 * 86400000LL};
    MDB_val k = {6, "schema"}, v = {4, &one}, dk = {5, "decay"}, dv = {16, hl};
    ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_put(txn, meta, &dk, &dv, 0), 0);
    ls_features f;
    ls_event e;
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t len;
    feature_init(&f);
    event_init(&e);
    e.type = EV_PURCHASE;
    e.ts_ms = 1700000000000LL;
    e.customer = (ls_str){"old", 3};
    e.value = 12;
    feature_decay d = {hl[0], hl[1]};
    feature_apply(&f, &e, &d);
    ck_assert_int_eq(feature_encode(&f, buf, sizeof buf, &len), LS_OK);
    MDB_val ck = {3, "old"}, cv = {len, buf};
    ck_assert_int_eq(mdb_put(txn, cust, &ck, &cv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static uint32_t schema_of(const char *path)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_val k = {6, "schema"}, v;
    uint32_t version = 0;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ck_assert_int_eq(mdb_env_open(env, path, MDB_RDONLY, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    ck_assert_int_eq(mdb_get(txn, meta, &k, &v), 0);
    memcpy(&version, v.mv_data, 4);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return version;
}

START_TEST(a_version_one_store_opens_and_is_upgraded)
{
    char v1dir[512], why[256];
    store *s;
    store_reader *r;
    ls_features f;
    feature_decay d = {3 * 86400000LL, 30 * 86400000LL};
    tu_tempdir(v1dir, sizeof v1dir);
    write_v1_store(v1dir);
    store_options ro = {.read_only = 1, .map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, v1dir, &ro, &d, why, sizeof why), LS_OK); /* read-only: no upgrade */
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "old", 3, &f), LS_OK);
    ck_assert_int_eq(f.count[EV_PURCHASE], 1);
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
    ck_assert_int_eq(schema_of(v1dir), 1);
    store_options rw = {.map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, v1dir, &rw, &d, why, sizeof why), LS_OK);
    ck_assert_int_eq(schema_of(v1dir), STORE_SCHEMA_VERSION);
    store_wtxn *w;
    int merged = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_alias(w, "anon", 4, "old", 3, &merged), LS_OK); /* the new tables work */
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(merged, 1);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "anon", 4, &f), LS_OK);
    ck_assert_int_eq(f.count[EV_PURCHASE], 1);
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
    tu_rmtree(v1dir);
}
END_TEST

/* A record as version 2 wrote it: the version-3 layout without
 * purchase_lines, purchase_days and purchase_units (3 x u32 after
 * good_reviews, before the categories). */
static size_t v2_record(const ls_features *f, uint8_t *buf)
{
    return tu_encode_v2_record(f, buf);
}

/* Writes a version-2 store by hand: schema 1's tables and the alias
 * tables, no history; customer "old" (two purchases on two days and a
 * product view, written by version 2) and the alias "anon2" -> "old". */
static void write_v2_store(const char *path, ls_features *old)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, cust, ids, byt, al, alt;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", MDB_CREATE, &cust), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "event_ids", MDB_CREATE, &ids), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "event_ids_by_time", MDB_CREATE, &byt), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "aliases", MDB_CREATE, &al), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "alias_targets", MDB_CREATE, &alt), 0);
    uint32_t two = 2;
    int64_t hl[2] = {DECAY.short_ms, DECAY.long_ms};
    MDB_val k = {6, "schema"}, v = {4, &two}, dk = {5, "decay"}, dv = {16, hl};
    ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_put(txn, meta, &dk, &dv, 0), 0);
    feature_init(old);
    for (int i = 0; i < 3; i++) {
        ls_event e;
        event_init(&e);
        e.type = i < 2 ? EV_PURCHASE : EV_PRODUCT_VIEW;
        e.ts_ms = T0 + i * DAY;
        e.customer = (ls_str){"old", 3};
        e.category = (ls_str){"books", 5};
        e.value = i < 2 ? 10 + i : 0;
        e.quantity = 3; /* version 2 kept no units: they read back as one a purchase */
        feature_apply(old, &e, &DECAY);
    }
    feature_round(old);
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t len = v2_record(old, buf);
    MDB_val ck = {3, "old"}, cv = {len, buf};
    ck_assert_int_eq(mdb_put(txn, cust, &ck, &cv, 0), 0);
    MDB_val ak = {5, "anon2"}, av = {3, "old"}, tk = {9, "old\0anon2"}, tv = {0, ""};
    ck_assert_int_eq(mdb_put(txn, al, &ak, &av, 0), 0);
    ck_assert_int_eq(mdb_put(txn, alt, &tk, &tv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    /* what a version-3 binary reads out of it */
    old->purchase_units = 2;
    /* and what this one reads: no first visit kept, the first event stands in */
    old->first_visit_ms = old->first_seen_ms;
}

/* The version byte of customer id's raw record. */
static int record_version_of(const char *path, const char *id)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi cust;
    MDB_val k = {strlen(id), (void *)id}, v;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 10);
    ck_assert_int_eq(mdb_env_open(env, path, MDB_RDONLY, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", 0, &cust), 0);
    ck_assert_int_eq(mdb_get(txn, cust, &k, &v), 0);
    const uint8_t *p = v.mv_data;
    size_t i = 0;
    if (p[0] == 0xC3) /* record and history in one value: mark, varint length, record */
        for (i = 1; i < v.mv_size && (p[i] & 0x80); i++)
            ;
    int version = p[i == 0 ? 0 : i + 1];
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return version;
}

static void assert_same_record(const ls_features *a, const ls_features *b, const char *what)
{
    uint8_t x[FEATURE_MAX_ENCODED], y[FEATURE_MAX_ENCODED];
    size_t nx = 0, ny = 0;
    ck_assert_int_eq(feature_encode(a, x, sizeof x, &nx), LS_OK);
    ck_assert_int_eq(feature_encode(b, y, sizeof y, &ny), LS_OK);
    ck_assert_msg(nx == ny && memcmp(x, y, nx) == 0, "%s: the records differ", what);
}

/* Reads of "old" in the version-2 store, whatever its schema by now. */
static void check_v2_reads(store *s, const ls_features *old)
{
    store_reader *r = NULL;
    ls_features f;
    history h;
    history_init(&h);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "old", 3, &f), LS_OK);
    assert_same_record(&f, old, "the version-2 record");
    ck_assert_uint_eq(f.count[EV_PURCHASE], 2);
    ck_assert_uint_eq(f.purchase_lines, 2); /* each old purchase is an order of one unit on a day of its own */
    ck_assert_uint_eq(f.purchase_days, 2);
    ck_assert_uint_eq(f.purchase_units, 2);
    ck_assert_int_eq(store_reader_get(r, "anon2", 5, &f), LS_OK); /* the old alias table */
    assert_same_record(&f, old, "through the alias");
    /* no history: the record is its `before` */
    ck_assert_int_eq(store_reader_get_history(r, "old", 3, &h), LS_OK);
    ck_assert_int_eq(h.has_before, 1);
    ck_assert_uint_eq(h.n, 0);
    assert_same_record(&h.before, old, "the record as before");
    /* as of any time from its first event on, the record; before that, nobody */
    ck_assert_int_eq(store_reader_get_asof(r, "old", 3, T0 + 9 * DAY, &f), LS_OK);
    assert_same_record(&f, old, "as of later");
    ck_assert_int_eq(store_reader_get_asof(r, "old", 3, T0 + DAY, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 2); /* `before` cannot be split */
    ck_assert_int_eq(store_reader_get_asof(r, "old", 3, T0 - 1, &f), LS_ENOTFOUND);
    ck_assert_int_eq(store_reader_get_asof(r, "anon2", 5, T0 - 1, &f), LS_ENOTFOUND);
    store_reader_end(r);
    store_reader_close(&r);
    history_free(&h);
}

START_TEST(a_version_two_store_opens_and_is_upgraded)
{
    char v2dir[512], why[256];
    store *s = NULL;
    ls_features old, f;
    tu_tempdir(v2dir, sizeof v2dir);
    write_v2_store(v2dir, &old);

    /* read-only: readable, not upgraded, not writable */
    store_options ro = {.read_only = 1, .map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, v2dir, &ro, &DECAY, why, sizeof why), LS_OK);
    check_v2_reads(s, &old);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 1);
    ck_assert_uint_eq(tu_customers_with_history(s), 0);
    store_wtxn *w = NULL;
    ck_assert_int_ne(store_write_begin(s, &w), LS_OK);
    store_close(&s);
    ck_assert_int_eq(schema_of(v2dir), 2);

    /* read-write: upgraded to the current schema (11), the old record still reads */
    store_options rw = {.map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, v2dir, &rw, &DECAY, why, sizeof why), LS_OK);
    ck_assert_int_eq(schema_of(v2dir), STORE_SCHEMA_VERSION);
    ck_assert_int_eq(STORE_SCHEMA_VERSION, 11);
    check_v2_reads(s, &old);

    /* new events add to it: an order of two lines, through the alias too */
    store_held held;
    store_held_init(&held);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (int i = 0; i < 3; i++) {
        ls_event e;
        int dup = -1;
        event_init(&e);
        e.type = i < 2 ? EV_PURCHASE : EV_PAGE_VIEW;
        e.ts_ms = T0 + 10 * DAY + i;
        e.customer = i == 1 ? (ls_str){"anon2", 5} : (ls_str){"old", 3};
        e.order_id = (ls_str){"n1", 2};
        e.value = 4;
        e.quantity = 2;
        e.has = EVF_TS | EVF_VALUE | EVF_QUANTITY;
        ck_assert_int_eq(store_wtxn_add_event(w, &held, &e, &dup), LS_OK);
        ck_assert_int_eq(dup, 0);
    }
    ck_assert_int_eq(store_wtxn_put_back(w, &held), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_held_free(&held);

    store_reader *r = NULL;
    history h;
    ls_features replay;
    history_init(&h);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "old", 3, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(f.purchase_lines, 4);
    ck_assert_uint_eq(f.purchase_days, 3);
    ck_assert_uint_eq(f.purchase_units, 2 + 4);
    ck_assert_uint_eq(f.count[EV_PAGE_VIEW], 1);
    ck_assert_uint_eq(f.count[EV_PRODUCT_VIEW], 1);
    ck_assert_double_eq(f.spend, 10 + 11 + 8);
    ck_assert_int_eq(f.first_seen_ms, T0);
    ck_assert_int_eq(f.last_seen_ms, T0 + 10 * DAY + 2);
    ck_assert_int_eq(store_reader_get_history(r, "old", 3, &h), LS_OK);
    ck_assert_int_eq(h.has_before, 1);
    ck_assert_uint_eq(h.n, 3);
    assert_same_record(&h.before, &old, "before after the upgrade");
    ck_assert_int_eq(history_replay(&h, INT64_MAX, &DECAY, &replay), LS_OK);
    assert_same_record(&f, &replay, "running vs replay");
    /* as of a time before the new events: the old record, bit for bit */
    ck_assert_int_eq(store_reader_get_asof(r, "old", 3, T0 + 10 * DAY - 1, &f), LS_OK);
    assert_same_record(&f, &old, "as of before the new events");
    ck_assert_int_eq(store_reader_get_asof(r, "anon2", 5, T0 + 10 * DAY, &f), LS_OK);
    ck_assert_uint_eq(f.count[EV_PURCHASE], 3);
    ck_assert_uint_eq(f.purchase_lines, 3); /* the first line only */
    store_reader_end(r);
    store_reader_close(&r);
    history_free(&h);
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(tu_customers_with_history(s), 1);
    store_close(&s);
    ck_assert_int_eq(record_version_of(v2dir, "old"), FEATURE_RECORD_VERSION);

    /* and the upgraded store opens read-only */
    ck_assert_int_eq(store_open(&s, v2dir, &ro, &DECAY, why, sizeof why), LS_OK);
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(tu_customers_with_history(s), 1);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get_asof(r, "old", 3, T0 + 10 * DAY - 1, &f), LS_OK);
    assert_same_record(&f, &old, "as of before the new events, read-only");
    store_reader_end(r);
    store_reader_close(&r);
    store_close(&s);
    tu_rmtree(v2dir);
}
END_TEST

/* What get_state reads in a write txn, against LMDB's own answer in the
 * same txn (store_wtxn_get) and the state bytes last written. */
static void check_state(store_wtxn *w, const char *id, int views, const char *state)
{
    ls_features f, direct;
    store_bytes st;
    int rc = store_wtxn_get_state(w, id, strlen(id), &f, &st);
    int direct_rc = store_wtxn_get(w, id, strlen(id), &direct);
    ck_assert_int_eq(rc, direct_rc);
    if (views < 0) {
        ck_assert_int_eq(rc, LS_ENOTFOUND);
        return;
    }
    ck_assert_int_eq(rc, LS_OK);
    ck_assert_int_eq(f.count[EV_PAGE_VIEW], (uint32_t)views);
    ck_assert_int_eq(direct.count[EV_PAGE_VIEW], (uint32_t)views);
    ck_assert_uint_eq(st.len, strlen(state));
    ck_assert(st.len == 0 || memcmp(st.ptr, state, st.len) == 0);
}

/* The automation reads back, in the same txn, the values the group just
 * wrote (store.c answers those reads from the txn's memo of them, when
 * store_memo_writes turned it on; here off, on, and too small): every
 * write, state change, delete and merge is seen at once, a value written
 * twice reads as the second, and a new txn reads the committed values. */
static const size_t MEMO_BYTES[] = {0, 1u << 20, 150}; /* off, on, too small for most values */

/* Adds events (type, day offset from T0) to customer "c" in one txn. */
static void add_c_events(store *s, const event_type *types, const int *days, int n)
{
    store_wtxn *w = NULL;
    store_held held;
    store_held_init(&held);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (int i = 0; i < n; i++) {
        ls_event e;
        int dup = -1;
        event_init(&e);
        e.type = types[i];
        e.ts_ms = T0 + days[i] * DAY;
        e.customer = (ls_str){"c", 1};
        e.value = 50;
        e.has = EVF_TS | EVF_VALUE;
        ck_assert_int_eq(store_wtxn_add_event(w, &held, &e, &dup), LS_OK);
    }
    ck_assert_int_eq(store_wtxn_put_back(w, &held), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_held_free(&held);
}

/* Rewrites customer "c"'s record as one of an older version, as an older
 * binary left it: `change` makes the record what that binary kept, the
 * version byte says `version`, the history stays as it was. */
static void rewrite_c_record(const char *path, uint8_t version, void (*change)(ls_features *f))
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi cust;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 1 << 26);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", 0, &cust), 0);
    MDB_val k = {1, "c"}, v;
    ck_assert_int_eq(mdb_get(txn, cust, &k, &v), 0);
    const uint8_t *p = v.mv_data;
    ck_assert_uint_eq(p[0], 0xC3); /* a value with a history, no state */
    bytecur_r r = {p + 1, v.mv_size - 1, 0};
    size_t rec_len = (size_t)bytecur_get_varint(&r);
    ls_features f;
    ck_assert_int_eq(feature_decode(&f, r.p, rec_len), LS_OK);
    change(&f);
    uint8_t rec[FEATURE_MAX_ENCODED], out[8192];
    size_t n;
    ck_assert_int_eq(feature_encode(&f, rec, sizeof rec, &n), LS_OK);
    rec[0] = version;
    bytecur_w w = {out, sizeof out, 0};
    uint8_t mark = 0xC3;
    bytecur_put(&w, &mark, 1);
    bytecur_put_varint(&w, n);
    bytecur_put(&w, rec, n);
    bytecur_put(&w, r.p + rec_len, r.left - rec_len); /* the history as it was */
    MDB_val nv = {(size_t)(w.p - out), out};
    ck_assert_int_eq(mdb_put(txn, cust, &k, &nv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Version 4: no last engagement (last_seen stands in). */
static void without_last_engaged(ls_features *f)
{
    f->last_engaged_ms = f->last_seen_ms;
}

/* Version 5, built by the old cart rule: the ring's oldest slot dropped
 * when a seventh cart event came (here: its oldest add gone). */
static void old_cart_rule(ls_features *f)
{
    int oldest = -1;
    for (int i = 0; i < FEATURE_CART_RING; i++)
        if (f->cart[i].ts_ms && f->cart[i].items > 0 && (oldest < 0 || f->cart[i].ts_ms < f->cart[oldest].ts_ms))
            oldest = i;
    ck_assert_int_ge(oldest, 0);
    f->cart[oldest].items -= 1; /* the merged-in add, lost as the old rule lost it */
    f->cart[oldest].value -= 50;
}

static double c_open_cart(store *s)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get_asof(r, "c", 1, INT64_MAX, &f), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);
    return feature_open_cart(&f);
}

/* Customer "c"'s record as stored. */
static ls_features c_record(store *s)
{
    store_reader *r = NULL;
    ls_features f;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_get(r, "c", 1, &f), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);
    return f;
}

static int64_t c_last_engaged(store *s) { return c_record(s).last_engaged_ms; }

/* A record written before version 5 has no last engagement.  Where its
 * last event was a complaint, reads replay its history for it (the
 * stand-in, its last event, would make the refund a visit), and the next
 * write keeps the replay, not the stand-in, even when that write only
 * appends a complaint at the tail. */
START_TEST(a_version_4_record_gets_its_last_engagement_from_its_history)
{
    char why[256];
    store *s = NULL;
    store_options rw = {.map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, dir, &rw, &DECAY, why, sizeof why), LS_OK);
    const event_type first[] = {EV_PURCHASE, EV_REFUND};
    const int first_days[] = {0, 15};
    add_c_events(s, first, first_days, 2);
    ck_assert_int_eq(c_last_engaged(s), T0);
    store_close(&s);

    rewrite_c_record(dir, 4, without_last_engaged); /* as the old binary left it */
    ck_assert_int_eq(store_open(&s, dir, &rw, &DECAY, why, sizeof why), LS_OK);
    ck_assert_int_eq(c_last_engaged(s), T0); /* the history's answer, not the refund's time */
    const event_type ticket[] = {EV_SUPPORT_TICKET};
    const int ticket_day[] = {20};
    add_c_events(s, ticket, ticket_day, 1); /* in order, at the tail: no replay of its own */
    ck_assert_int_eq(c_last_engaged(s), T0);
    const event_type view[] = {EV_PAGE_VIEW};
    const int view_day[] = {21};
    add_c_events(s, view, view_day, 1);
    ck_assert_int_eq(c_last_engaged(s), T0 + 21 * DAY);
    store_close(&s);
}
END_TEST

/* Customer "c" gets events types/days (`measure` of it then `before`),
 * is rewritten as a record of `version` built by an older `rule`
 * (`stale`), reads so until written, and once a page view is added at the
 * tail is what this version's rules make of its history again (`after`). */
typedef struct {
    double (*measure)(store *s);
    double before, stale, after;
} rebuilt_check;

static void assert_rebuilt_when_written(const event_type *types, const int *days, int n, uint8_t version,
                                        void (*rule)(ls_features *f), rebuilt_check want)
{
    char why[256];
    store *s = NULL;
    store_options rw = {.map_size = 1 << 26};
    ck_assert_int_eq(store_open(&s, dir, &rw, &DECAY, why, sizeof why), LS_OK);
    add_c_events(s, types, days, n);
    ck_assert_double_eq_tol(want.measure(s), want.before, 1e-9);
    store_close(&s);

    rewrite_c_record(dir, version, rule); /* as the older binary left it */
    ck_assert_int_eq(store_open(&s, dir, &rw, &DECAY, why, sizeof why), LS_OK);
    ck_assert_double_eq_tol(want.measure(s), want.stale, 1e-9); /* read as stored until written */
    const event_type view[] = {EV_PAGE_VIEW};
    const int view_day[] = {days[n - 1] + 1};
    add_c_events(s, view, view_day, 1); /* in order, at the tail */
    ck_assert_double_eq_tol(want.measure(s), want.after, 1e-9);
    store_close(&s);
}

/* A record of version 5 was built by the old cart rule (the eighth
 * pass's): the writer replays it when its customer is next written, so
 * from then on it is what this version's rules make of the history (four
 * adds and three removes leave an item). */
START_TEST(a_version_5_record_is_rebuilt_by_this_versions_rules_when_written)
{
    const event_type cart[] = {EV_ADD_TO_CART, EV_ADD_TO_CART,      EV_ADD_TO_CART,     EV_ADD_TO_CART,
                               EV_REMOVE_FROM_CART, EV_REMOVE_FROM_CART, EV_REMOVE_FROM_CART};
    const int cart_days[] = {0, 1, 2, 3, 4, 5, 6};
    assert_rebuilt_when_written(cart, cart_days, 7, 5, old_cart_rule, (rebuilt_check){c_open_cart, 50.0, 0.0, 50.0});
}
END_TEST

/* Version 6, built before a checkout filled an empty cart: the cart
 * stays empty after a checkout that no add_to_cart came before. */
static void old_checkout_rule(ls_features *f)
{
    memset(f->cart, 0, sizeof f->cart);
    f->last_cart_ms = 0;
}

/* A record of version 6 was built by the rule before a checkout filled an
 * empty cart (the eleventh pass's): replayed when its customer is next
 * written, the checkout's basket (50) is in the cart from then on. */
START_TEST(a_version_6_record_gets_its_checkout_basket_when_written)
{
    const event_type checkout[] = {EV_PAGE_VIEW, EV_CHECKOUT};
    const int checkout_days[] = {0, 1};
    assert_rebuilt_when_written(checkout, checkout_days, 2, 6, old_checkout_rule,
                                (rebuilt_check){c_open_cart, 50.0, 0.0, 50.0});
}
END_TEST

/* Version 7, built before a visit without a session id counted as a
 * session of its half hour: no session at all. */
static void old_session_rule(ls_features *f)
{
    f->sessions = 0;
    f->sessions_recent = f->sessions_decayed = 0;
    memset(f->session_ring, 0, sizeof f->session_ring);
}

static double c_sessions(store *s) { return c_record(s).sessions; }

/* A record of version 7 counted no session for visits sent without a
 * session id (the twelfth pass's rule): replayed when its customer is
 * next written, its three days of views are three sessions, and the view
 * that wrote it a fourth. */
START_TEST(a_version_7_record_gets_the_sessions_of_its_visits_when_written)
{
    const event_type views[] = {EV_PAGE_VIEW, EV_PRODUCT_VIEW, EV_PAGE_VIEW};
    const int view_days[] = {0, 1, 2};
    assert_rebuilt_when_written(views, view_days, 3, 7, old_session_rule, (rebuilt_check){c_sessions, 3, 0, 4});
}
END_TEST

START_TEST(a_write_txn_reads_back_what_it_wrote)
{
    store *s = open_store(&DECAY);
    store_memo_writes(s, MEMO_BYTES[_i]);
    store_wtxn *w = NULL;
    ls_features f;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int deleted = 0, merged = 0;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    check_state(w, "a", -1, "");
    record_with(&f, 1);
    ck_assert_int_eq(store_wtxn_put(w, "a", 1, &f), LS_OK);
    check_state(w, "a", 1, "");
    ck_assert_int_eq(store_wtxn_put_state(w, "a", 1, "S1", 2), LS_OK);
    check_state(w, "a", 1, "S1");
    record_with(&f, 2);
    ck_assert_int_eq(store_wtxn_put_customer(w, "a", 1, &f, NULL, (const uint8_t *)"S22", 3, &buf, &cap), LS_OK);
    check_state(w, "a", 2, "S22");
    ck_assert_int_eq(store_wtxn_put_state(w, "a", 1, NULL, 0), LS_OK);
    check_state(w, "a", 2, "");
    record_with(&f, 3);
    ck_assert_int_eq(store_wtxn_put(w, "b", 1, &f), LS_OK);
    ck_assert_int_eq(store_wtxn_put_state(w, "b", 1, "T", 1), LS_OK);
    check_state(w, "b", 3, "T");
    ck_assert_int_eq(store_wtxn_alias(w, "a", 1, "b", 1, &merged), LS_OK); /* a's views fold into b */
    ck_assert_int_eq(merged, 1);
    check_state(w, "a", -1, "");
    check_state(w, "b", 5, "T");
    ck_assert_int_eq(store_wtxn_forget(w, "b", 1, &deleted), LS_OK);
    ck_assert_int_eq(deleted, 1);
    check_state(w, "b", -1, "");
    record_with(&f, 4);
    ck_assert_int_eq(store_wtxn_put(w, "c", 1, &f), LS_OK);
    ck_assert_int_eq(store_wtxn_put_state(w, "c", 1, "U", 1), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);

    ck_assert_int_eq(store_write_begin(s, &w), LS_OK); /* a new txn: LMDB's values */
    check_state(w, "c", 4, "U");
    check_state(w, "a", -1, "");
    record_with(&f, 6);
    ck_assert_int_eq(store_wtxn_put(w, "c", 1, &f), LS_OK);
    check_state(w, "c", 6, "");
    store_write_abort(&w); /* an aborted txn leaves nothing behind, in LMDB or the memo */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    check_state(w, "c", 4, "U");
    store_write_abort(&w);
    free(buf);
    store_close(&s);
}
END_TEST

/* An id literal with its length: the ids below hold NUL bytes. */
#define NID(lit) lit, sizeof lit - 1

/* Whether id lands on want (itself when want is id). */
static int lands_on(store_wtxn *w, const char *id, size_t len, const char *want, size_t want_len)
{
    const char *t;
    size_t tlen;
    ck_assert_int_eq(store_wtxn_resolve(w, id, len, &t, &tlen), LS_OK);
    return tlen == want_len && memcmp(t, want, tlen) == 0;
}

static void put_n(store_wtxn *w, const char *id, size_t len, int views)
{
    ls_features f;
    record_with(&f, views);
    ck_assert_int_eq(store_wtxn_put(w, id, len, &f), LS_OK);
}

/* Ids are opaque bytes, NUL too, and the reverse alias index is keyed
 * target NUL anonymous: the aliases of "t\0x" must not pass for those of
 * "t" (nor the other way round) in an alias's repointing, its size check,
 * a forget, or the walk a forget's automation makes. */
START_TEST(aliases_of_ids_holding_nul_stay_apart)
{
    store *s = open_store(&DECAY);
    store_wtxn *w = NULL;
    int merged = 0, deleted = 0;
    char longid[300];
    memset(longid, 'L', sizeof longid);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    put_n(w, NID("t\0x"), 1);
    put_n(w, NID("y"), 2);
    put_n(w, NID("t"), 3);
    put_n(w, NID("z"), 4);
    ck_assert_int_eq(store_wtxn_alias(w, NID("y"), NID("t\0x"), &merged), LS_OK);
    ck_assert_int_eq(store_wtxn_alias(w, NID("t"), NID("z"), &merged), LS_OK); /* t has no alias of its own */
    ck_assert(lands_on(w, NID("x\0y"), NID("x\0y")));                       /* never aliased */
    ck_assert(lands_on(w, NID("y"), NID("t\0x")));
    /* an alias of "u\0" + 300 bytes is no alias of "u" (it would not fit a 300-byte target) */
    put_n(w, NID("u"), 1);
    put_n(w, longid, sizeof longid, 1);
    char ulong[2 + sizeof longid] = "u";
    memcpy(ulong + 2, longid, sizeof longid);
    put_n(w, ulong, sizeof ulong, 1);
    ck_assert_int_eq(store_wtxn_alias(w, NID("a"), ulong, sizeof ulong, &merged), LS_OK);
    ck_assert_int_eq(store_wtxn_alias(w, NID("u"), longid, sizeof longid, &merged), LS_OK);
    ck_assert(lands_on(w, NID("a"), ulong, sizeof ulong));
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(tu_store_page_views(s, NID("x\0y")), -1);
    ck_assert_int_eq(tu_store_page_views(s, NID("y")), 3);
    ck_assert_int_eq(tu_store_page_views(s, NID("z")), 7);

    /* forgetting "t\0x" erases its alias y: a new y is a customer of its own */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_forget(w, NID("t\0x"), &deleted), LS_OK);
    ck_assert(lands_on(w, NID("y"), NID("y")));
    put_n(w, NID("y"), 1);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(tu_store_page_views(s, NID("t\0x")), -1);
    ck_assert_int_eq(tu_store_page_views(s, NID("y")), 1);

    /* forgetting "p" leaves the alias q -> "p\0r", which a forget of "p\0r" then erases */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    put_n(w, NID("p"), 1);
    put_n(w, NID("p\0r"), 1);
    ck_assert_int_eq(store_wtxn_alias(w, NID("q"), NID("p\0r"), &merged), LS_OK);
    ck_assert_int_eq(store_wtxn_forget(w, NID("p"), &deleted), LS_OK);
    ck_assert(lands_on(w, NID("q"), NID("p\0r")));
    ck_assert_int_eq(store_wtxn_forget(w, NID("p\0r"), &deleted), LS_OK);
    ck_assert(lands_on(w, NID("q"), NID("q")));
    ck_assert_int_eq(store_write_commit(&w), LS_OK);

    /* "e\0f" -> "d" and "f" -> "d\0e" share one reverse key, "d\0e\0f":
     * erasing one alias keeps the other's entry */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    put_n(w, NID("d"), 1);
    put_n(w, NID("d\0e"), 1);
    ck_assert_int_eq(store_wtxn_alias(w, NID("e\0f"), NID("d"), &merged), LS_OK);
    ck_assert_int_eq(store_wtxn_alias(w, NID("f"), NID("d\0e"), &merged), LS_OK);
    ck_assert_int_eq(store_wtxn_forget(w, NID("d"), &deleted), LS_OK);
    ck_assert(lands_on(w, NID("e\0f"), NID("e\0f")));
    ck_assert(lands_on(w, NID("f"), NID("d\0e")));
    ck_assert_int_eq(store_wtxn_forget(w, NID("d\0e"), &deleted), LS_OK);
    ck_assert(lands_on(w, NID("f"), NID("f")));
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_close(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, create_then_reopen_keeps_the_half_lives);
    tcase_add_test(tc, read_only_open_reads_the_store); /* expects a fix */
    tcase_add_test(tc, read_only_open_of_an_empty_directory_fails);
    tcase_add_test(tc, put_then_get);
    tcase_add_test(tc, unknown_ids_are_not_found);
    tcase_add_test(tc, claim_event_id_reports_seen);
    tcase_add_test(tc, window_keys_are_held_merged_or_not_across_reopens);
    tcase_add_test(tc, the_id_filter_never_hides_a_merged_id);
    tcase_add_test(tc, prune_removes_old_ids_oldest_first);
    tcase_add_test(tc, reader_snapshots_are_isolated);
    tcase_add_test(tc, scan_visits_customers_in_id_order);
    tcase_add_test(tc, scan_of_an_empty_store_visits_nothing);
    tcase_add_test(tc, newer_schema_is_refused);
    tcase_add_test(tc, a_foreign_lmdb_environment_is_refused_untouched);
    tcase_add_test(tc, a_meta_record_without_half_lives_is_corrupt_to_every_opener);
    tcase_add_test(tc, a_version_one_store_opens_and_is_upgraded);
    tcase_add_test(tc, a_version_two_store_opens_and_is_upgraded);
    tcase_add_test(tc, a_version_4_record_gets_its_last_engagement_from_its_history);
    tcase_add_test(tc, a_version_5_record_is_rebuilt_by_this_versions_rules_when_written);
    tcase_add_test(tc, a_version_6_record_gets_its_checkout_basket_when_written);
    tcase_add_test(tc, a_version_7_record_gets_the_sessions_of_its_visits_when_written);
    tcase_add_test(tc, stat_counts_customers);
    tcase_add_test(tc, aliases_of_ids_holding_nul_stay_apart);
    tcase_add_loop_test(tc, a_write_txn_reads_back_what_it_wrote, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(suite()); }
