/* test_writer.c -- the writer's group commit (writer_apply, without its
 * thread) in temporary directories: a group applies its track jobs sorted
 * by customer, and the outcome is the jobs' one event at a time -- the
 * same records, the same accepted and duplicate counts per job, the first
 * of two events with one id winning across customers and jobs, an alias
 * in the middle of a group seeing the events before it only. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"
#include "service.h"
#include "stats.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

#define DAY 86400000LL
#define T0 1700000000000LL

static const feature_decay DECAY = {3 * DAY, 30 * DAY};
static char dir_group[512], dir_one[512];

static void setup(void)
{
    tu_tempdir(dir_group, sizeof dir_group);
    tu_tempdir(dir_one, sizeof dir_one);
}

static void teardown(void)
{
    tu_rmtree(dir_group);
    tu_rmtree(dir_one);
}

/* One event as the tests write it: customer, event id (NULL: none), type,
 * time offset and price. */
typedef struct {
    const char *customer, *id;
    event_type type;
    int64_t dt;
    double price;
} ev_spec;

static writer_job *job_of(const ev_spec *spec, size_t n, int reply)
{
    ls_event evs[16];
    ck_assert_uint_le(n, 16);
    for (size_t i = 0; i < n; i++) {
        event_init(&evs[i]);
        evs[i].type = spec[i].type;
        evs[i].has = EVF_TS;
        evs[i].ts_ms = T0 + spec[i].dt;
        evs[i].customer = (ls_str){spec[i].customer, strlen(spec[i].customer)};
        if (spec[i].id)
            evs[i].event_id = (ls_str){spec[i].id, strlen(spec[i].id)};
        if (spec[i].price > 0) {
            evs[i].has |= EVF_PRICE;
            evs[i].price = spec[i].price;
        }
    }
    writer_job *job = writer_job_new(evs, n, NULL, 0, NULL, 0, NULL, 0, 0);
    ck_assert_ptr_nonnull(job);
    job->reply = reply;
    job->received_ms = T0;
    return job;
}

static writer_job *alias_job(const char *from, const char *to)
{
    ls_str a = {from, strlen(from)}, b = {to, strlen(to)};
    writer_job *job = writer_job_identity(JOB_ALIAS, &a, &b, NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(job);
    job->reply = 1;
    return job;
}

/* The customer's stored record, encoded (so two stores compare bit for
 * bit), and the length of its history; 0 bytes when it has none. */
static size_t record_of(store *s, const char *id, uint8_t *buf, size_t cap, size_t *hist_n)
{
    store_reader *r = NULL;
    ls_features f;
    history h;
    size_t n = 0;
    history_init(&h);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    int rc = store_reader_get(r, id, strlen(id), &f);
    if (rc == LS_OK) {
        ck_assert_int_eq(feature_encode(&f, buf, cap, &n), LS_OK);
        ck_assert_int_eq(store_reader_get_history(r, id, strlen(id), &h), LS_OK);
    } else {
        ck_assert_int_eq(rc, LS_ENOTFOUND);
    }
    *hist_n = h.n;
    store_reader_end(r);
    store_reader_close(&r);
    history_free(&h);
    return n;
}

/* Track jobs interleaving customers, an id repeated inside a job, across
 * jobs and across customers, events without ids, a PULL batch, and an
 * alias in the middle: applied as one group, and one event per group in
 * arrival order, they leave the same store and the same counts. */
START_TEST(a_group_applies_as_its_events_one_at_a_time)
{
    static const ev_spec j0[] = {{"carol", "e1", EV_PAGE_VIEW, 5, 0},
                                 {"alice", "e2", EV_ADD_TO_CART, 1, 20.5},
                                 {"carol", "e3", EV_PRODUCT_VIEW, 2, 9.0},
                                 {"bob", NULL, EV_PAGE_VIEW, 7, 0},
                                 {"alice", "e4", EV_PURCHASE, 3, 20.5}};
    static const ev_spec j1[] = {{"alice", "e5", EV_PAGE_VIEW, 0, 0},
                                 {"alice", "e2", EV_PAGE_VIEW, 9, 0},  /* e2 again: a duplicate */
                                 {"abe", "e1", EV_PAGE_VIEW, 4, 0},    /* carol's e1 (abe sorts first): a duplicate */
                                 {"anon", "e6", EV_ADD_TO_CART, 6, 12.0},
                                 {"bob", NULL, EV_PAGE_VIEW, 7, 0}};   /* no id: both count */
    static const ev_spec j2[] = {{"bob", "e7", EV_SEARCH, 1, 0},
                                 {"carol", "e8", EV_PAGE_VIEW, 8, 0},
                                 {"anon", "e9", EV_PAGE_VIEW, 2, 0},
                                 {"bob", "e7", EV_SEARCH, 1, 0}};      /* in one job twice */
    static const ev_spec j4[] = {{"anon", "e10", EV_PAGE_VIEW, 3, 0},  /* after the alias: lands on alice */
                                 {"alice", "e11", EV_CHECKOUT, 10, 0},
                                 {"carol", "e3", EV_PAGE_VIEW, 2, 0}}; /* an earlier job's id */
    const ev_spec *spec[] = {j0, j1, j2, NULL, j4};
    const size_t nspec[] = {5, 5, 4, 0, 3};
    const int reply[] = {1, 0, 1, 1, 0};
    enum { NJOBS = 5 };
    const unsigned want_accepted[NJOBS] = {5, 3, 3, 0, 2}, want_dups[NJOBS] = {0, 2, 1, 0, 1};

    service group, one;
    tu_writer_rig_open(&group, dir_group, &DECAY);
    tu_writer_rig_open(&one, dir_one, &DECAY);

    writer_job *jobs[NJOBS];
    for (int j = 0; j < NJOBS; j++)
        jobs[j] = spec[j] ? job_of(spec[j], nspec[j], reply[j]) : alias_job("anon", "alice");
    ck_assert_int_eq(writer_apply(&group, jobs, NJOBS), LS_OK);
    for (int j = 0; j < NJOBS; j++) {
        ck_assert_int_eq(jobs[j]->status, LS_OK);
        ck_assert_uint_eq(jobs[j]->accepted, want_accepted[j]);
        ck_assert_uint_eq(jobs[j]->duplicates, want_dups[j]);
        writer_job_free(&jobs[j]);
    }
    ck_assert_uint_eq((uint64_t)atomic_load(&group.stats.commits), 1);

    /* the same, one event per group: nothing to sort, nothing to merge */
    for (int j = 0; j < NJOBS; j++) {
        unsigned accepted = 0, dups = 0;
        for (size_t i = 0; i < (spec[j] ? nspec[j] : 1); i++) {
            writer_job *job = spec[j] ? job_of(&spec[j][i], 1, reply[j]) : alias_job("anon", "alice");
            ck_assert_int_eq(writer_apply(&one, &job, 1), LS_OK);
            ck_assert_int_eq(job->status, LS_OK);
            accepted += job->accepted;
            dups += job->duplicates;
            writer_job_free(&job);
        }
        ck_assert_uint_eq(accepted, want_accepted[j]);
        ck_assert_uint_eq(dups, want_dups[j]);
    }

    static const char *const customers[] = {"alice", "bob", "carol", "abe", "anon"};
    for (size_t c = 0; c < sizeof customers / sizeof *customers; c++) {
        uint8_t a[FEATURE_MAX_ENCODED], b[FEATURE_MAX_ENCODED];
        size_t ha, hb;
        size_t na = record_of(group.store, customers[c], a, sizeof a, &ha);
        size_t nb = record_of(one.store, customers[c], b, sizeof b, &hb);
        ck_assert_msg(na == nb && memcmp(a, b, na) == 0, "%s: the records differ", customers[c]);
        ck_assert_uint_eq(ha, hb);
    }
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t hn;
    ck_assert_uint_gt(record_of(group.store, "alice", buf, sizeof buf, &hn), 0);
    ck_assert_uint_eq(hn, 7); /* e2 e4 e5, anon's e6 e9 (merged), e10 e11 */
    ck_assert_uint_eq(record_of(group.store, "abe", buf, sizeof buf, &hn), 0); /* only a duplicate */
    tu_writer_rig_close(&group);
    tu_writer_rig_close(&one);
}
END_TEST

/* Many jobs of few customers in one group: each customer's record is
 * written once, with every event of the group. */
START_TEST(events_of_one_customer_spread_over_jobs_all_land)
{
    service svc;
    tu_writer_rig_open(&svc, dir_group, &DECAY);
    enum { NJOBS = 40 };
    writer_job *jobs[NJOBS];
    char ids[NJOBS][4][16];
    static const char *const who[] = {"w", "x", "y", "z"};
    for (int j = 0; j < NJOBS; j++) {
        ev_spec spec[4];
        for (int i = 0; i < 4; i++) {
            snprintf(ids[j][i], sizeof ids[j][i], "id-%d-%d", j, i);
            spec[i] = (ev_spec){who[(j + i) % 4], ids[j][i], EV_PAGE_VIEW, j * 4 + i, 0};
        }
        jobs[j] = job_of(spec, 4, j % 2);
    }
    ck_assert_int_eq(writer_apply(&svc, jobs, NJOBS), LS_OK);
    for (int j = 0; j < NJOBS; j++) {
        ck_assert_uint_eq(jobs[j]->accepted, 4);
        ck_assert_uint_eq(jobs[j]->duplicates, 0);
        writer_job_free(&jobs[j]);
    }
    for (int c = 0; c < 4; c++) {
        uint8_t buf[FEATURE_MAX_ENCODED];
        size_t hn;
        ck_assert_uint_gt(record_of(svc.store, who[c], buf, sizeof buf, &hn), 0);
        ck_assert_uint_eq(hn, NJOBS);
    }
    ck_assert_uint_eq((uint64_t)atomic_load(&svc.stats.events_accepted), NJOBS * 4);
    tu_writer_rig_close(&svc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("writer");
    TCase *tc = tcase_create("group");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_group_applies_as_its_events_one_at_a_time);
    tcase_add_test(tc, events_of_one_customer_spread_over_jobs_all_land);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
