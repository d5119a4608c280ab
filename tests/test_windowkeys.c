/* test_windowkeys.c -- Check suite for the unmerged window keys
 * (windowkeys.h).
 *
 * What store.c relies on: a key added is found until it is killed or
 * merged; what a txn did is undone when it aborts and kept when it
 * commits; a sweep's slices are ordered ranges of the key space, cover
 * every key held when it began exactly once, and report (at most) the
 * oldest key left outside them; and a long random sequence
 * of adds, kills, commits, aborts and sweeps agrees with a plain table.
 * Exits 1 on any failure. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "testutil.h"
#include "windowkeys.h"

static windowkeys_entry *find(windowkeys *wk, const char *id)
{
    return windowkeys_find(wk, id, strlen(id));
}

static void add(windowkeys *wk, const char *id, int64_t ms, const char *customer)
{
    ck_assert_int_eq(windowkeys_add(wk, id, strlen(id), ms, customer, strlen(customer)), LS_OK);
}

START_TEST(an_added_key_is_found_with_its_time_and_customer)
{
    windowkeys wk;
    windowkeys_init(&wk);
    ck_assert_ptr_null(find(&wk, "e-1")); /* nothing yet, no table yet */
    add(&wk, "e-1", 1000, "alice");
    add(&wk, "e-10", 2000, "bob");
    windowkeys_committed(&wk);
    windowkeys_entry *e = find(&wk, "e-1");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->key_ms, 1000);
    ck_assert_uint_eq(e->customer_len, 5);
    ck_assert_int_eq(memcmp(windowkeys_customer(e), "alice", 5), 0);
    ck_assert_int_eq(memcmp(windowkeys_id(e), "e-1", 3), 0);
    ck_assert_ptr_null(find(&wk, "e-"));   /* a prefix is another id */
    ck_assert_ptr_null(find(&wk, "e-100"));
    ck_assert_uint_eq(windowkeys_live(&wk), 2);
    ck_assert_int_eq(windowkeys_kill(&wk, e), LS_OK);
    ck_assert_ptr_null(find(&wk, "e-1"));
    ck_assert_uint_eq(windowkeys_live(&wk), 1);
    windowkeys_committed(&wk);
    add(&wk, "e-1", 3000, "carol"); /* claimed again after a prune */
    windowkeys_committed(&wk);
    ck_assert_int_eq(find(&wk, "e-1")->key_ms, 3000);
    windowkeys_free(&wk);
}
END_TEST

START_TEST(an_aborted_txn_is_undone_and_a_committed_one_kept)
{
    windowkeys wk;
    windowkeys_init(&wk);
    add(&wk, "kept", 1, "c");
    add(&wk, "killed", 2, "c");
    windowkeys_committed(&wk);
    add(&wk, "tentative", 3, "c");
    ck_assert_int_eq(windowkeys_kill(&wk, find(&wk, "killed")), LS_OK);
    ck_assert_int_eq(windowkeys_kill(&wk, find(&wk, "tentative")), LS_OK); /* added and killed in one txn */
    add(&wk, "tentative2", 4, "c");
    ck_assert_uint_eq(windowkeys_live(&wk), 2);
    windowkeys_aborted(&wk);
    ck_assert_ptr_nonnull(find(&wk, "kept"));
    ck_assert_ptr_nonnull(find(&wk, "killed")); /* revived */
    ck_assert_ptr_null(find(&wk, "tentative"));
    ck_assert_ptr_null(find(&wk, "tentative2"));
    ck_assert_uint_eq(windowkeys_live(&wk), 2);
    /* a sweep's slice merged by a txn that aborts stays */
    ck_assert_int_eq(windowkeys_sweep_begin(&wk, 1), LS_OK);
    windowkeys_entry **slice;
    size_t n;
    int last;
    int64_t oldest;
    windowkeys_slice(&wk, &slice, &n, &last, &oldest);
    ck_assert_uint_eq(n, 2); /* too few to sample: one slice of all */
    ck_assert_int_eq(last, 1);
    ck_assert_int_eq(oldest, INT64_MAX);
    windowkeys_aborted(&wk);
    ck_assert_uint_eq(windowkeys_live(&wk), 2);
    windowkeys_slice(&wk, &slice, &n, &last, &oldest);
    windowkeys_committed(&wk);
    ck_assert_uint_eq(windowkeys_live(&wk), 0);
    ck_assert_ptr_null(find(&wk, "kept"));
    ck_assert_int_eq(wk.sweeping, 0);
    windowkeys_free(&wk);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const windowkeys_entry *x = *(windowkeys_entry *const *)a, *y = *(windowkeys_entry *const *)b;
    int c = memcmp(x->bytes, y->bytes, x->id_len < y->id_len ? x->id_len : y->id_len);
    return c ? c : (int)x->id_len - (int)y->id_len;
}

/* 20,000 keys, a sweep: every key in exactly one slice, each slice's keys
 * above the last slice's, keys added during the sweep left for the next,
 * and each slice's oldest-left at most the smallest time of the keys held
 * outside it (and exactly that when none was added). */
START_TEST(a_sweep_merges_every_key_once_in_order)
{
    enum { N = 20000 };
    static char ids[N][24];
    static const char *sorted[N];
    static windowkeys_entry *got[N];
    windowkeys wk;
    uint64_t r = 7;
    windowkeys_init(&wk);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "%016llx", (unsigned long long)tu_rng_next(&r));
        add(&wk, ids[i], 1000 + (i * 7919) % N, "c");
        sorted[i] = ids[i];
    }
    windowkeys_committed(&wk);
    qsort(sorted, N, sizeof *sorted, cmp_str);
    ck_assert_int_eq(windowkeys_sweep_begin(&wk, 42), LS_OK);
    size_t at = 0;
    int last = 0, slices = 0;
    while (!last) {
        windowkeys_entry **slice;
        size_t n;
        int64_t oldest, want = slices >= 3 ? 5 : INT64_MAX;
        if (slices == 3) { /* a claim between two slices: not in this sweep, and oldest-left covers it */
            add(&wk, "added-late", 5, "c");
            windowkeys_committed(&wk);
        }
        windowkeys_slice(&wk, &slice, &n, &last, &oldest);
        ck_assert_uint_gt(n, N / WINDOWKEYS_SLICES / 4); /* sampled bounds: no slice near empty */
        memcpy(got + at, slice, n * sizeof *slice);
        qsort(got + at, n, sizeof *got, cmp_entry);
        for (size_t i = at; i < at + n; i++)
            if (strlen(sorted[i]) != got[i]->id_len || memcmp(sorted[i], got[i]->bytes, got[i]->id_len))
                ck_abort_msg("slice %d: key %zu in order is not %s", slices, i, sorted[i]);
        at += n;
        for (size_t k = at; k < N; k++) { /* the keys left after this slice */
            windowkeys_entry *e = find(&wk, sorted[k]);
            if (e->key_ms < want)
                want = e->key_ms;
        }
        ck_assert_int_eq(oldest, want);
        windowkeys_committed(&wk);
        slices++;
    }
    ck_assert_uint_eq(at, N);
    ck_assert_int_eq(slices, WINDOWKEYS_SLICES);
    ck_assert_uint_eq(windowkeys_live(&wk), 1);
    ck_assert_ptr_nonnull(find(&wk, "added-late"));
    windowkeys_free(&wk);
}
END_TEST

/* Random adds, kills, commits, aborts and sweep slices against a plain
 * table of committed and tentative state. */
START_TEST(random_operations_agree_with_a_plain_table)
{
    enum { KEYS = 3000, STEPS = 200000 };
    static signed char committed[KEYS], now[KEYS]; /* 1: held */
    static int64_t ms[KEYS];
    windowkeys wk;
    uint64_t r = 99;
    char id[16];
    int in_slice = 0;
    windowkeys_init(&wk);
    for (int step = 0; step < STEPS; step++) {
        uint64_t roll = tu_rng_next(&r) % 1000, k = tu_rng_next(&r) % KEYS;
        if (in_slice) { /* a merge txn does nothing else: it ends first */
            if (roll < 500) {
                windowkeys_committed(&wk);
                memcpy(committed, now, sizeof now);
            } else {
                windowkeys_aborted(&wk);
                memcpy(now, committed, sizeof now);
            }
            in_slice = 0;
            roll = tu_rng_next(&r) % 1000;
        }
        snprintf(id, sizeof id, "k%llu", (unsigned long long)k);
        windowkeys_entry *e = find(&wk, id);
        if ((e != NULL) != now[k])
            ck_abort_msg("step %d: %s found %d, held %d", step, id, e != NULL, now[k]);
        if (e && e->key_ms != ms[k])
            ck_abort_msg("step %d: %s time %lld, want %lld", step, id, (long long)e->key_ms, (long long)ms[k]);
        if (roll < 450) {
            if (!e) {
                ms[k] = step;
                add(&wk, id, step, "c");
                now[k] = 1;
            }
        } else if (roll < 700) {
            if (e) {
                ck_assert_int_eq(windowkeys_kill(&wk, e), LS_OK);
                now[k] = 0;
            }
        } else if (roll < 900) {
            windowkeys_committed(&wk);
            memcpy(committed, now, sizeof now);
        } else if (roll < 980) {
            windowkeys_aborted(&wk);
            memcpy(now, committed, sizeof now);
        } else {
            windowkeys_committed(&wk); /* merges run in a txn of their own */
            memcpy(committed, now, sizeof now);
            if (!wk.sweeping)
                ck_assert_int_eq(windowkeys_sweep_begin(&wk, (uint64_t)step), LS_OK);
            windowkeys_entry **slice;
            size_t n;
            int last;
            int64_t oldest;
            windowkeys_slice(&wk, &slice, &n, &last, &oldest);
            for (size_t i = 0; i < n; i++) {
                if (slice[i]->dead) /* killed since the sweep began: skipped */
                    continue;
                int key = atoi(windowkeys_id(slice[i]) + 1);
                if (!now[key])
                    ck_abort_msg("step %d: a slice holds k%d, not held", step, key);
                now[key] = 0; /* merged once the txn commits */
            }
            in_slice = 1;
        }
        size_t live = 0;
        if (step % 5000 == 0 && !in_slice) {
            for (int i = 0; i < KEYS; i++)
                live += now[i];
            if (live != windowkeys_live(&wk))
                ck_abort_msg("step %d: live %zu, want %zu", step, windowkeys_live(&wk), live);
        }
    }
    windowkeys_free(&wk);
}
END_TEST

static Suite *windowkeys_suite(void)
{
    Suite *s = suite_create("windowkeys");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, an_added_key_is_found_with_its_time_and_customer);
    tcase_add_test(tc, an_aborted_txn_is_undone_and_a_committed_one_kept);
    tcase_add_test(tc, a_sweep_merges_every_key_once_in_order);
    tcase_add_test(tc, random_operations_agree_with_a_plain_table);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(windowkeys_suite());
}
