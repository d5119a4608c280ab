/* test_faults.c -- how the store and the writer fail, in temporary
 * directories: a job that fails inside the group commit fails alone (the
 * rest commit, nothing vanishes uncounted); over-long keys are refused
 * before the transaction; a full disk answers `unavailable` and writes
 * resume; a forget goes through on a full map; a damaged stored record
 * fails its customer's writes as `internal`, and a cluster partition's
 * purge erases it all the same; dead readers' slots are
 * cleared; damaged data.mdb files are refused before LMDB maps them; a
 * second writer is refused naming the first one's pid.
 *
 * Failures no real input reaches come from store.h's fault switches.
 * Forked children stand for other processes (a reader killed with -9, a
 * second writer); each is waited for within a bounded time. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "partition.h"
#include "service.h"
#include "stats.h"
#include "store.h"
#include "storefile.h"
#include "testutil.h"
#include "writer.h"

#define DAY 86400000LL
#define T0 1700000000000LL
#define MIB (1ULL << 20)

static const feature_decay DECAY = {3 * DAY, 30 * DAY};
static char dir[512];
static char err[1024];

static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
    err[0] = '\0';
}

static void teardown(void)
{
    store_fault_clear();
    tu_rmtree(dir);
}

static store *open_rw(uint64_t map_size)
{
    store_options opt = {.map_size = map_size, .no_sync = 1};
    store *s = NULL;
    int rc = store_open(&s, dir, &opt, &DECAY, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "store_open: %d %s", rc, err);
    return s;
}

/* Page views of id in a fresh snapshot, or -1 when the store has none. */
static int views(store *s, const char *id) { return tu_store_page_views(s, id, strlen(id)); }

static void put(store *s, const char *id)
{
    store_wtxn *w = NULL;
    ls_features f;
    feature_init(&f);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, id, strlen(id), &f), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
}

/* ------------------------------------------------------------------ */
/* The writer's group commit, without its thread                       */
/* ------------------------------------------------------------------ */

static void rig_open(service *svc, uint64_t map_size, uint64_t map_max)
{
    memset(svc, 0, sizeof *svc);
    config_defaults(&svc->cfg);
    snprintf(svc->cfg.data_dir, sizeof svc->cfg.data_dir, "%s", dir);
    svc->cfg.map_size = map_size;
    svc->cfg.map_max = map_max;
    ck_assert_int_eq(stats_init(&svc->stats, 0, 0), LS_OK);
    svc->store = open_rw(map_size);
}

static void rig_close(service *svc)
{
    store_close(&svc->store);
    stats_destroy(&svc->stats);
}

/* A track job: page views, event i of customers[i], with event ids
 * prefix-i (no ids when prefix is NULL).  reply 0 is a PULL batch. */
static writer_job *job_of(const char *const *customers, int n, const char *prefix, int reply)
{
    ls_event evs[64];
    char ids[64][320];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++) {
        event_init(&evs[i]);
        evs[i].type = EV_PAGE_VIEW;
        evs[i].has = EVF_TS;
        evs[i].ts_ms = T0 + i;
        evs[i].customer = (ls_str){customers[i], strlen(customers[i])};
        if (prefix) {
            snprintf(ids[i], sizeof ids[i], "%s-%d", prefix, i);
            evs[i].event_id = (ls_str){ids[i], strlen(ids[i])};
        }
    }
    writer_job *job = writer_job_new(evs, (size_t)n, NULL, 0, NULL, 0, NULL, 0, 0);
    ck_assert_ptr_nonnull(job);
    job->reply = reply;
    job->received_ms = T0;
    return job;
}

static writer_job *track(const char *customer, int n, const char *prefix, int reply)
{
    const char *c[64];
    for (int i = 0; i < n && i < 64; i++)
        c[i] = customer;
    return job_of(c, n, prefix, reply);
}

static writer_job *identity(int kind, const char *subject, const char *object)
{
    ls_str a = {subject, strlen(subject)}, b = {object ? object : "", object ? strlen(object) : 0};
    writer_job *job = writer_job_identity(kind, &a, object ? &b : NULL, NULL, 0, NULL, 0);
    ck_assert_ptr_nonnull(job);
    job->reply = 1;
    return job;
}

static void free_jobs(writer_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        writer_job_free(&jobs[i]);
}

static uint64_t counter(atomic_uint_fast64_t *c)
{
    return (uint64_t)atomic_load(c);
}

/* A group of a good track, a job whose write fails inside the
 * transaction, a PULL batch and an alias: the bad job fails alone. */
static void one_bad_job_in_a_group(int fault_err, int want_status)
{
    service svc;
    rig_open(&svc, 16 * MIB, 16 * MIB);
    store_fault_set(STORE_FAULT_KEY, "poison", fault_err, 0);
    /* bob is written back before poison fails: that must go too */
    const char *bad[] = {"bob", "bob", "poison"};
    writer_job *jobs[4] = {track("alice", 3, "a", 1), job_of(bad, 3, "b", 1), track("carol", 2, "c", 0),
                           identity(JOB_ALIAS, "anon", "alice")};
    ck_assert_int_eq(writer_apply(&svc, jobs, 4), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_OK);
    ck_assert_uint_eq(jobs[0]->accepted, 3);
    ck_assert_int_eq(jobs[1]->status, want_status);
    ck_assert_int_eq(jobs[1]->failed_alone, 1);
    ck_assert_uint_eq(jobs[1]->accepted, 0);
    ck_assert_int_eq(jobs[2]->status, LS_OK);
    ck_assert_uint_eq(jobs[2]->accepted, 2);
    ck_assert_int_eq(jobs[3]->status, LS_OK);
    ck_assert_int_eq(jobs[3]->result, 1);
    ck_assert_int_eq(views(svc.store, "alice"), 3);
    ck_assert_int_eq(views(svc.store, "anon"), 3);
    ck_assert_int_eq(views(svc.store, "carol"), 2); /* the PULL batch is stored */
    ck_assert_int_eq(views(svc.store, "bob"), -1);  /* the bad job left nothing */
    ck_assert_int_eq(views(svc.store, "poison"), -1);
    ck_assert_uint_eq(counter(&svc.stats.jobs_failed_alone), 1);
    ck_assert_uint_eq(counter(&svc.stats.events_unstored_failed), 3);
    ck_assert_uint_eq(counter(&svc.stats.events_accepted), 5);
    ck_assert_uint_eq(counter(&svc.stats.commit_failures), 0);
    free_jobs(jobs, 4);
    /* nothing of it was kept, not even its event ids: sent again, it counts */
    store_fault_clear();
    jobs[0] = job_of(bad, 3, "b", 1);
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_OK);
    ck_assert_uint_eq(jobs[0]->accepted, 3);
    ck_assert_uint_eq(jobs[0]->duplicates, 0);
    ck_assert_int_eq(views(svc.store, "bob"), 2);
    free_jobs(jobs, 1);
    rig_close(&svc);
}

START_TEST(a_job_failing_inside_the_transaction_fails_alone)
{
    one_bad_job_in_a_group(0, LS_ETOOLARGE);       /* as LMDB refuses an over-long key */
    tu_rmtree(dir);
    tu_tempdir(dir, sizeof dir);
    one_bad_job_in_a_group(MDB_CORRUPTED, LS_EINTERNAL); /* any other write error of one job */
}
END_TEST

START_TEST(over_long_keys_are_refused_before_the_transaction)
{
    service svc;
    rig_open(&svc, 16 * MIB, 16 * MIB);
    char longid[301], anon[251], target[301], from[257], to[256];
    memset(longid, 'l', 300);
    longid[300] = '\0';
    memset(anon, 'n', 250);
    anon[250] = '\0';
    memset(target, 't', 300);
    target[300] = '\0';
    memset(from, 'f', 256);
    from[256] = '\0';
    memset(to, 'o', 255);
    to[255] = '\0';
    const char *long_event_id[] = {"erin"};
    writer_job *jobs[6] = {track(longid, 2, "l", 1), track("dora", 1, "d", 1), job_of(long_event_id, 1, longid, 0),
                           identity(JOB_ALIAS, from, to), identity(JOB_ALIAS, anon, "x"), track("x", 1, "x", 1)};
    ck_assert_int_eq(writer_apply(&svc, jobs, 6), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_ETOOLARGE);
    ck_assert_int_eq(jobs[1]->status, LS_OK);
    ck_assert_int_eq(jobs[2]->status, LS_ETOOLARGE);
    ck_assert_int_eq(jobs[3]->status, LS_ETOOLARGE);
    ck_assert_int_eq(jobs[4]->status, LS_OK);
    ck_assert_int_eq(jobs[5]->status, LS_OK);
    ck_assert_uint_eq(counter(&svc.stats.events_unstored_failed), 3); /* counted, not lost silently */
    ck_assert_uint_eq(counter(&svc.stats.jobs_failed_alone), 0); /* refused before: none failed inside */
    free_jobs(jobs, 6);
    /* x -> target: fits alone, but anon (aliased to x) would not under target */
    jobs[0] = identity(JOB_ALIAS, "x", target);
    jobs[1] = track("dora", 1, "d2", 1);
    jobs[2] = identity(JOB_FORGET, longid, NULL);
    ck_assert_int_eq(writer_apply(&svc, jobs, 3), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_ETOOLARGE);
    ck_assert_int_eq(jobs[0]->failed_alone, 0); /* refused before it wrote: an answer */
    ck_assert_int_eq(jobs[1]->status, LS_OK);
    ck_assert_int_eq(jobs[2]->status, LS_OK); /* 300 bytes is a key LMDB takes */
    ck_assert_int_eq(views(svc.store, anon), 1); /* still lands on x */
    ck_assert_int_eq(views(svc.store, "dora"), 2);
    ck_assert_int_eq(views(svc.store, target), -1);
    ck_assert_uint_eq(counter(&svc.stats.jobs_failed_alone), 0);
    free_jobs(jobs, 3);
    rig_close(&svc);
}
END_TEST

START_TEST(a_full_disk_answers_unavailable_and_writes_resume)
{
    service svc;
    store_stats before, after;
    rig_open(&svc, 4 * MIB, 64 * MIB);
    writer_job *jobs[3] = {track("alice", 2, "a", 1)};
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_OK);
    free_jobs(jobs, 1);
    ck_assert_int_eq(store_stat(svc.store, &before), LS_OK);

    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, -1); /* the disk stays full */
    jobs[0] = track("bob", 2, "b", 1);
    jobs[1] = track("carol", 1, "c", 0);
    jobs[2] = identity(JOB_FORGET, "alice", NULL);
    ck_assert_int_eq(writer_apply(&svc, jobs, 3), LS_EUNAVAIL);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(jobs[i]->status, LS_EUNAVAIL);
        ck_assert_str_eq(ls_wire_code(jobs[i]->status), "unavailable");
    }
    ck_assert_uint_eq(counter(&svc.stats.events_unstored_unavailable), 3);
    ck_assert_int_eq(store_stat(svc.store, &after), LS_OK);
    ck_assert_uint_eq(after.map_bytes, before.map_bytes); /* a full disk does not grow the map */
    ck_assert_int_eq(views(svc.store, "alice"), 2);      /* reads go on */
    free_jobs(jobs, 3);

    /* one failed commit: the group fails, the forget then runs alone */
    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, 1);
    jobs[0] = track("dan", 1, "d", 1);
    jobs[1] = identity(JOB_FORGET, "alice", NULL);
    ck_assert_int_eq(writer_apply(&svc, jobs, 2), LS_EUNAVAIL);
    ck_assert_int_eq(jobs[0]->status, LS_EUNAVAIL);
    ck_assert_int_eq(jobs[1]->status, LS_OK);
    ck_assert_int_eq(jobs[1]->result, 1);
    ck_assert_int_eq(views(svc.store, "alice"), -1);
    ck_assert_int_eq(views(svc.store, "dan"), -1);
    free_jobs(jobs, 2);

    store_fault_clear(); /* space is back */
    jobs[0] = track("bob", 2, "b", 1);
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_OK);
    ck_assert_int_eq(views(svc.store, "bob"), 2);
    free_jobs(jobs, 1);
    rig_close(&svc);
}
END_TEST

/* ---- a request over the wire ---- */

static void pack_track(msgpack_sbuffer *sb, const char *customer)
{
    tu_pack_track(sb, customer, "page_view");
}

static void pack_forget(msgpack_sbuffer *sb, const char *customer)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "forget");
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, customer);
}

static void call(tu_conn *c, msgpack_sbuffer *sb, msgpack_unpacked *up)
{
    ck_assert_int_eq(tu_call_raw(c, sb->data, sb->size, up), 0);
    msgpack_sbuffer_destroy(sb);
}

START_TEST(the_server_answers_unavailable_with_a_reason_when_the_disk_is_full)
{
    config cfg;
    tu_server ts;
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    tu_config(&cfg, dir);
    tu_server_start(&ts, &cfg);
    tu_connect(&c, ts.endpoint, ZMQ_DEALER);
    msgpack_unpacked_init(&up);
    pack_track(&sb, "kim");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));

    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, -1);
    pack_track(&sb, "kim");
    call(&c, &sb, &up);
    ck_assert(tu_is_error(&up.data, "unavailable"));
    const msgpack_object *msg = tu_get(tu_get(&up.data, "error"), "message");
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(msg->type, MSGPACK_OBJECT_STR);
    char text[300];
    snprintf(text, sizeof text, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
    ck_assert_msg(strstr(text, "disk") && strstr(text, "full"), "message: %s", text);

    store_fault_clear();
    pack_track(&sb, "kim");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));

    /* the event the full disk refused is counted, by its reason */
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "stats");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert_int_eq(tu_get_int(&up.data, "events_unstored_unavailable"), 1);
    ck_assert_int_eq(tu_get_int(&up.data, "events_accepted"), 2);
    ck_assert_int_ge(tu_get_int(&up.data, "readers_max"), 1);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&ts);
}
END_TEST

/* The error message of reply up, NUL-terminated in text. */
static void error_message(const msgpack_unpacked *up, char *text, size_t cap)
{
    const msgpack_object *msg = tu_get(tu_get(&up->data, "error"), "message");
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(msg->type, MSGPACK_OBJECT_STR);
    snprintf(text, cap, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
}

/* Overwrites customer id's stored value with bytes, with LMDB directly
 * (no leadscore process has the store open). */
static void damage_value(const char *id, const void *bytes, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {strlen(id), (void *)id}, v = {len, (void *)bytes};
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_set_mapsize(env, 1ULL << 30), 0);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", 0, &dbi), 0);
    ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A stored record the writer cannot decode is the store's damage, not the
 * request's: a track of that customer is answered `internal` naming it (it
 * was bad_request "parse error", or unavailable "incompatible version",
 * which a client retries for ever), and the others go on. */
START_TEST(a_damaged_stored_record_fails_its_track_as_internal)
{
    static const uint8_t bad_length[] = {0xC3, 0xFF, 0xFF, 0xFF, 0x7F}; /* a record longer than the value */
    static const uint8_t bad_version[] = {0x7E, 0x01};                  /* a record version from the future */
    static const char *const names[] = {"kim", "lee", "max"};
    config cfg;
    tu_server ts;
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    char text[300];
    tu_config(&cfg, dir);
    tu_server_start(&ts, &cfg);
    tu_connect(&c, ts.endpoint, ZMQ_DEALER);
    msgpack_unpacked_init(&up);
    for (int i = 0; i < 3; i++) {
        pack_track(&sb, names[i]);
        call(&c, &sb, &up);
        ck_assert(tu_get_bool(&up.data, "ok"));
    }
    tu_disconnect(&c);
    tu_server_stop(&ts);

    damage_value("lee", bad_length, sizeof bad_length);
    damage_value("max", bad_version, sizeof bad_version);
    tu_server_start(&ts, &cfg);
    tu_connect(&c, ts.endpoint, ZMQ_DEALER);
    for (int i = 1; i < 3; i++) {
        pack_track(&sb, names[i]);
        call(&c, &sb, &up);
        ck_assert_msg(tu_is_error(&up.data, "internal"), "track of %s: not answered internal", names[i]);
        error_message(&up, text, sizeof text);
        char want[64];
        snprintf(want, sizeof want, "stored record of customer \"%s\" is damaged", names[i]);
        ck_assert_msg(strstr(text, want) != NULL, "message: %s", text);
    }
    pack_track(&sb, "kim");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    /* the right to erasure holds for a damaged record too: a forget
     * erases it (triggers on: what automation kept in it is unreadable),
     * and the id then starts a new customer */
    for (int i = 1; i < 3; i++) {
        pack_forget(&sb, names[i]);
        call(&c, &sb, &up);
        if (!tu_get_bool(&up.data, "ok")) {
            error_message(&up, text, sizeof text);
            ck_abort_msg("forget of damaged %s: %s", names[i], text);
        }
        ck_assert_msg(tu_get_bool(&up.data, "deleted"), "forget of damaged %s: not deleted", names[i]);
        pack_track(&sb, names[i]);
        call(&c, &sb, &up);
        ck_assert_msg(tu_get_bool(&up.data, "ok"), "track of %s after its forget: not ok", names[i]);
    }
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&ts);
}
END_TEST

/* The outcome of a track of customer (ok, or the error's code). */
static const char *track_outcome(tu_conn *c, const char *customer)
{
    msgpack_sbuffer sb;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    pack_track(&sb, customer);
    call(c, &sb, &up);
    const char *out = tu_get_bool(&up.data, "ok") ? "ok" : tu_is_error(&up.data, "internal") ? "internal" : "other";
    msgpack_unpacked_destroy(&up);
    return out;
}

#define PURGE_NPARTS 8
#define PURGE_CUSTOMERS 48

/* A cluster node's purge of a partition it gave up (the writer erases it
 * between groups; a purge marked in the store is done at start) erases
 * the customers whose value is damaged too -- the framing, or a record
 * version from the future -- and only those of the partition.  (Passed
 * by, they stayed, and every event of theirs replayed when the partition
 * came back failed as `internal`.) */
START_TEST(a_partition_purge_erases_its_damaged_customers)
{
    static const uint8_t bad_length[] = {0xC3, 0xFF, 0xFF, 0xFF, 0x7F};
    static const uint8_t bad_version[] = {0x7E, 0x01};
    config cfg;
    tu_server ts;
    tu_conn c;
    char name[PURGE_CUSTOMERS][16], mine[2][16] = {"", ""}, other[16] = "";
    uint32_t p = partition_of("c-0", 3, PURGE_NPARTS);
    tu_config(&cfg, dir);
    tu_server_start(&ts, &cfg);
    tu_connect(&c, ts.endpoint, ZMQ_DEALER);
    for (int i = 0; i < PURGE_CUSTOMERS; i++) {
        snprintf(name[i], sizeof name[i], "c-%d", i);
        ck_assert_str_eq(track_outcome(&c, name[i]), "ok");
        int in_p = partition_of(name[i], strlen(name[i]), PURGE_NPARTS) == p;
        if (in_p && i > 0 && !mine[0][0])
            memcpy(mine[0], name[i], sizeof name[i]);
        else if (in_p && i > 0 && !mine[1][0])
            memcpy(mine[1], name[i], sizeof name[i]);
        else if (!in_p && !other[0])
            memcpy(other, name[i], sizeof name[i]);
    }
    tu_disconnect(&c);
    tu_server_stop(&ts);
    ck_assert_msg(mine[1][0] && other[0], "the names do not spread over the partitions");

    store_options opt = {.map_size = 1ULL << 30, .no_sync = 1};
    store *s = NULL;
    store_wtxn *w = NULL;
    ck_assert_int_eq(store_open(&s, dir, &opt, NULL, err, sizeof err), LS_OK);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_purge_mark(w, p, PURGE_NPARTS), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_close(&s);
    damage_value(mine[0], bad_length, sizeof bad_length);
    damage_value(mine[1], bad_version, sizeof bad_version);
    damage_value(other, bad_length, sizeof bad_length);

    /* a track of a damaged customer fails until the purge erased it (then
     * it is a new customer), within 10 s */
    tu_server_start(&ts, &cfg);
    tu_connect(&c, ts.endpoint, ZMQ_DEALER);
    int erased = 0, ok[2] = {0, 0};
    for (int i = 0; i < 500 && erased < 2; i++) {
        for (int j = 0; j < 2; j++)
            if (!ok[j] && strcmp(track_outcome(&c, mine[j]), "ok") == 0)
                erased += ok[j] = 1;
        if (erased < 2)
            usleep(20000);
    }
    ck_assert_msg(erased == 2, "damaged customers of the purged partition still there: tracks of %s, %s not ok",
                  mine[0], mine[1]);
    ck_assert_str_eq(track_outcome(&c, other), "internal"); /* another partition's: left as it is */
    tu_disconnect(&c);
    tu_server_stop(&ts);

    ck_assert_int_eq(store_open(&s, dir, &opt, NULL, err, sizeof err), LS_OK);
    store_reader *r = NULL;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_purge_pending(r, p), 0);
    store_reader_end(r);
    store_reader_close(&r);
    for (int i = 0; i < PURGE_CUSTOMERS; i++) {
        int in_p = partition_of(name[i], strlen(name[i]), PURGE_NPARTS) == p;
        if (strcmp(name[i], other) == 0)
            continue;
        if (strcmp(name[i], mine[0]) == 0 || strcmp(name[i], mine[1]) == 0)
            ck_assert_int_eq(views(s, name[i]), 1); /* the new one's view only */
        else
            ck_assert_msg(views(s, name[i]) == (in_p ? -1 : 1), "%s (partition %u): %d views", name[i],
                          partition_of(name[i], strlen(name[i]), PURGE_NPARTS), views(s, name[i]));
    }
    store_close(&s);
}
END_TEST

/* ---- another process's reader ---- */

/* Forks a child that opens the store read-only and holds a snapshot until
 * killed (or 60 s pass); returns once the snapshot is open. */
static pid_t pin_snapshot(void)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        store *s = NULL;
        store_reader *r = NULL;
        store_options ro = {.read_only = 1};
        /* a process of its own, as `rescore` is: none of the parent's files
         * (a forked child would share the parent's writer lock) */
        for (int fd = 3; fd < 1024; fd++)
            if (fd != p[1])
                close(fd);
        if (store_open(&s, dir, &ro, NULL, NULL, 0) || store_reader_open(s, &r) || store_reader_begin(r))
            _exit(1);
        if (write(p[1], "r", 1) != 1)
            _exit(1);
        for (int i = 0; i < 600; i++)
            usleep(100000);
        _exit(0);
    }
    close(p[1]);
    struct pollfd pf = {p[0], POLLIN, 0};
    char c = 0;
    ck_assert_int_eq(poll(&pf, 1, 20000), 1);
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void kill9(pid_t pid)
{
    int status = tu_kill_wait(pid, SIGKILL);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

START_TEST(a_forget_goes_through_when_the_map_is_full)
{
    service svc;
    store_stats st;
    rig_open(&svc, 1 * MIB, 1 * MIB);
    writer_job *jobs[2] = {track("victim", 20, "v", 1)};
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_OK);
    free_jobs(jobs, 1);
    /* an old snapshot elsewhere keeps every page freed from now on from reuse */
    pid_t reader = pin_snapshot();
    int rc = LS_OK, i;
    char name[32], prefix[32];
    for (i = 0; i < 5000 && rc == LS_OK; i++) {
        snprintf(name, sizeof name, "fill-%d", i);
        snprintf(prefix, sizeof prefix, "f%d", i);
        jobs[0] = track(name, 30, prefix, 1);
        rc = writer_apply(&svc, jobs, 1);
        free_jobs(jobs, 1);
    }
    ck_assert_int_eq(rc, LS_EFULL);
    for (i = 0, rc = LS_OK; i < 5000 && rc == LS_OK; i++) { /* to the last page */
        snprintf(name, sizeof name, "crumb-%d", i);
        jobs[0] = track(name, 1, name, 1);
        rc = writer_apply(&svc, jobs, 1);
        free_jobs(jobs, 1);
    }
    ck_assert_int_eq(rc, LS_EFULL);
    ck_assert_int_eq(store_stat(svc.store, &st), LS_OK);
    ck_assert_uint_eq(st.map_bytes, 1 * MIB);

    jobs[0] = track("late", 60, "late", 1); /* bigger than the job that did not fit */
    jobs[1] = identity(JOB_FORGET, "victim", NULL);
    ck_assert_int_eq(writer_apply(&svc, jobs, 2), LS_EFULL);
    ck_assert_int_eq(jobs[0]->status, LS_EFULL);
    ck_assert_str_eq(ls_wire_code(jobs[0]->status), "unavailable");
    ck_assert_int_eq(jobs[1]->status, LS_OK); /* erasure does not wait for room */
    ck_assert_int_eq(jobs[1]->result, 1);
    free_jobs(jobs, 2);
    ck_assert_int_eq(views(svc.store, "victim"), -1);
    ck_assert_int_eq(views(svc.store, "fill-0"), 30); /* reads go on */
    ck_assert_int_eq(store_stat(svc.store, &st), LS_OK);
    ck_assert_uint_ge(st.map_bytes, 1 * MIB);
    ck_assert_uint_gt(st.used_bytes, 1 * MIB); /* it needed the reserve: the map had no page left */
    ck_assert_uint_le(st.map_bytes, 2 * MIB); /* map-max plus at most the reserve */
    ck_assert_uint_eq(counter(&svc.stats.events_unstored_full), 30 + 1 + 60); /* the fills that did not fit, late */

    /* the reserve is not for tracks */
    jobs[0] = track("late", 60, "late", 1);
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_EFULL);
    free_jobs(jobs, 1);

    /* the old reader dies: once its slot is cleared, freed pages serve writes */
    kill9(reader);
    int cleared = 0;
    ck_assert_int_eq(store_reader_check(svc.store, &cleared), LS_OK);
    ck_assert_int_eq(cleared, 1);
    jobs[0] = track("late", 60, "late", 1);
    ck_assert_int_eq(writer_apply(&svc, jobs, 1), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_OK);
    free_jobs(jobs, 1);
    ck_assert_int_eq(views(svc.store, "late"), 60);
    rig_close(&svc);
}
END_TEST

START_TEST(a_dead_readers_slot_is_cleared)
{
    store *s = open_rw(16 * MIB);
    store_stats st;
    put(s, "alice");
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    uint64_t base = st.readers;
    ck_assert_uint_ge(st.readers_max, 100);
    pid_t pid = pin_snapshot();
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.readers, base + 1);
    ck_assert_uint_ge(st.readers_active, 1);
    kill9(pid);
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.readers, base + 1); /* the dead reader's slot stays ... */
    int cleared = -1;
    ck_assert_int_eq(store_reader_check(s, &cleared), LS_OK);
    ck_assert_int_eq(cleared, 1); /* ... until the check */
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.readers, base);
    ck_assert_uint_eq(st.readers_stale_cleared, 1);
    ck_assert_int_eq(store_reader_check(s, &cleared), LS_OK);
    ck_assert_int_eq(cleared, 0);

    /* opening for writing clears them too (while another process keeps
     * the store open: the first opener resets the reader table anyway) */
    pid_t alive = pin_snapshot();
    pid = pin_snapshot();
    kill9(pid);
    store_close(&s);
    s = open_rw(16 * MIB);
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.readers_stale_cleared, 1);
    ck_assert_uint_eq(st.readers, 1);
    kill9(alive);
    store_close(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Damaged store files                                                 */
/* ------------------------------------------------------------------ */

static char data_path[600];

/* A store with some pages of customers, closed. */
static void make_store(void)
{
    store *s = open_rw(16 * MIB);
    store_wtxn *w = NULL;
    ls_features f;
    char id[32];
    feature_init(&f);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "customer-%05d", i);
        ck_assert_int_eq(store_wtxn_put(w, id, strlen(id), &f), LS_OK);
    }
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_close(&s);
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
}

static off_t size_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

static void write_at(const char *path, off_t at, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0640);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, bytes, len, at), (ssize_t)len);
    close(fd);
}

/* Opening (for writing, then read-only) is refused with a message that
 * names the problem and the way back. */
static void expect_refused(const char *problem)
{
    for (int read_only = 0; read_only < 2; read_only++) {
        store_options opt = {.map_size = 16 * MIB, .read_only = read_only};
        store *s = (store *)&s;
        err[0] = '\0';
        ck_assert_int_eq(store_open(&s, dir, &opt, &DECAY, err, sizeof err), LS_EPARSE);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(err, problem), "wanted \"%s\" in: %s", problem, err);
        ck_assert_msg(strstr(err, "data.mdb") && strstr(err, "backup") && strstr(err, "mdb_copy"), "message: %s",
                      err);
    }
}

/* A store that a writer keeps growing is never taken for truncated by
 * the check an opening reader makes (it read the size, then the metas: a
 * commit in between once failed a rescore run beside a service). */
typedef struct {
    store *s;
    atomic_int stop;
    int commits;
} grower;

static void *grow_store(void *arg)
{
    grower *g = arg;
    ls_features f;
    char id[32];
    feature_init(&f);
    while (!g->stop) {
        store_wtxn *w = NULL;
        if (store_write_begin(g->s, &w) != LS_OK)
            break;
        for (int i = 0; i < 200; i++) { /* new pages at the end of the file */
            snprintf(id, sizeof id, "grow-%06d-%03d", g->commits, i);
            store_wtxn_put(w, id, strlen(id), &f);
        }
        if (store_write_commit(&w) != LS_OK)
            break;
        g->commits++;
    }
    return NULL;
}

START_TEST(a_growing_store_is_never_taken_for_truncated)
{
    grower g = {open_rw(256 * MIB), 0, 0};
    pthread_t t;
    char why[512];
    int checks = 0, refused = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, grow_store, &g), 0);
    int64_t end = tu_now_ms() + 1500;
    while (tu_now_ms() < end && checks < 200000) {
        why[0] = '\0';
        if (storefile_check(dir, why, sizeof why) != LS_OK && refused++ == 0)
            fprintf(stderr, "refused while growing: %s\n", why);
        checks++;
    }
    g.stop = 1;
    pthread_join(t, NULL);
    store_close(&g.s);
    ck_assert_msg(g.commits > 10, "only %d commits", g.commits);
    ck_assert_msg(refused == 0, "%d of %d checks took a growing store for damaged", refused, checks);
}
END_TEST

START_TEST(a_truncated_data_file_is_refused_not_a_sigbus)
{
    make_store();
    off_t size = size_of(data_path);
    ck_assert_int_gt(size, 16 * 4096);
    ck_assert_int_eq(truncate(data_path, size / 2), 0);
    expect_refused("truncated");
    /* and a command in its own process says so and exits, killed by nothing */
    char out[4096];
    const char *args[] = {"kpis", "--data", dir, NULL};
    int rc = tu_run_cli(out, sizeof out, args);
    ck_assert_msg(rc > 0, "kpis exited with %d: %s", rc, out);
    ck_assert_msg(strstr(out, "truncated"), "output: %s", out);
}
END_TEST

START_TEST(an_empty_data_file_beside_store_files_is_refused)
{
    make_store();
    ck_assert_int_eq(truncate(data_path, 0), 0); /* lock.mdb is still there */
    expect_refused("empty");
}
END_TEST

START_TEST(an_empty_data_file_alone_is_a_new_store)
{
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    int fd = open(data_path, O_WRONLY | O_CREAT, 0640);
    ck_assert_int_ge(fd, 0);
    close(fd);
    store *s = open_rw(16 * MIB);
    put(s, "alice");
    store_close(&s);
    s = open_rw(16 * MIB);
    ck_assert_int_eq(views(s, "alice"), 0);
    store_close(&s);
}
END_TEST

START_TEST(a_garbage_data_file_is_refused)
{
    unsigned char junk[65536];
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand_r(&seed);
    snprintf(data_path, sizeof data_path, "%s/data.mdb", dir);
    write_at(data_path, 0, junk, sizeof junk);
    expect_refused("bad magic");
    /* and one too short to hold a meta page */
    ck_assert_int_eq(truncate(data_path, 100), 0);
    expect_refused("too short");
}
END_TEST

START_TEST(a_bad_magic_in_either_meta_page_is_refused)
{
    const uint32_t zero = 0;
    const off_t magic_at = (off_t)sizeof(size_t) + 8; /* after the page header */
    make_store();
    write_at(data_path, magic_at, &zero, sizeof zero);
    expect_refused("first meta page");
    expect_refused("bad magic");
}
END_TEST

START_TEST(the_second_meta_page_is_checked_too)
{
    const uint32_t zero = 0;
    make_store();
    off_t page = sysconf(_SC_PAGESIZE);
    write_at(data_path, page + (off_t)sizeof(size_t) + 8, &zero, sizeof zero);
    expect_refused("second meta page");
}
END_TEST

START_TEST(whole_stores_pass_the_check)
{
    char copy[600];
    make_store();
    ck_assert_int_eq(storefile_check(dir, err, sizeof err), LS_OK);
    store *s = open_rw(16 * MIB);
    snprintf(copy, sizeof copy, "%s/copy", dir);
    ck_assert_int_eq(mkdir(copy, 0750), 0);
    ck_assert_int_eq(store_compact(s, copy), LS_OK);
    store_close(&s);
    ck_assert_int_eq(storefile_check(copy, err, sizeof err), LS_OK);
    store_options ro = {.read_only = 1};
    ck_assert_int_eq(store_open(&s, copy, &ro, NULL, err, sizeof err), LS_OK);
    store_stats st;
    ck_assert_int_eq(store_stat(s, &st), LS_OK);
    ck_assert_uint_eq(st.customers, 2000);
    store_close(&s);
    ck_assert_int_eq(storefile_check(dir, err, sizeof err), LS_OK); /* and the original after a reopen */
}
END_TEST

/* 1 when dir/name exists. */
static int file_exists(const char *d, const char *name)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", d, name);
    return access(path, F_OK) == 0;
}

/* A new store that a full disk refuses is not left half made: the commit
 * that creates its tables fails as a full disk, and says so naming the
 * directory (it once said nothing: "serve: cannot start"), and the files
 * the open made are removed, so that the next try, once there is room,
 * creates the store -- an empty data.mdb left beside lock.mdb was refused
 * as a store that lost its data.  A refused open of an existing store
 * removes none of its files. */
START_TEST(a_new_store_a_full_disk_refuses_is_not_left_half_made)
{
    static const char *const made[] = {"data.mdb", "lock.mdb", STOREFILE_LOCK_NAME};
    char path[600];
    snprintf(path, sizeof path, "%s/new", dir);
    store_options opt = {.map_size = 16 * MIB, .no_sync = 1};
    store *s = (store *)&s;
    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, 1);
    ck_assert_int_eq(store_open(&s, path, &opt, &DECAY, err, sizeof err), LS_EUNAVAIL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, path) && strstr(err, "disk holding the store is full"), "message: %s", err);
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++)
        ck_assert_msg(!file_exists(path, made[i]), "the refused open left %s/%s", path, made[i]);

    /* the next try creates it */
    ck_assert_msg(store_open(&s, path, &opt, &DECAY, err, sizeof err) == LS_OK, "retry: %s", err);
    ls_features f;
    feature_init(&f);
    store_wtxn *w = NULL;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(store_wtxn_put(w, "alice", 5, &f), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    store_close(&s);

    /* an existing store keeps its files when an open is refused */
    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, 1);
    ck_assert_int_eq(store_open(&s, path, &opt, &DECAY, err, sizeof err), LS_EUNAVAIL);
    for (size_t i = 0; i < 2; i++)
        ck_assert_msg(file_exists(path, made[i]), "a refused open removed %s/%s of a store", path, made[i]);
    ck_assert_msg(store_open(&s, path, &opt, &DECAY, err, sizeof err) == LS_OK, "reopen: %s", err);
    ck_assert_int_eq(views(s, "alice"), 0);
    store_close(&s);
}
END_TEST

/* lock.mdb, LMDB's reader table written through a mapping, has its disk
 * blocks before LMDB maps it: LMDB made it with ftruncate, all holes, and
 * on a full disk the first write into the mapping killed serve with
 * SIGBUS. */
START_TEST(lock_mdb_is_allocated_before_lmdb_maps_it)
{
    char path[700];
    struct stat st;
    store *s = open_rw(16 * MIB);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_gt(st.st_size, 126 * 64); /* a slot of 64 bytes for each of the 126 readers, and a header */
    ck_assert_msg((off_t)st.st_blocks * 512 >= st.st_size, "lock.mdb: %lld bytes, %lld of them allocated",
                  (long long)st.st_size, (long long)st.st_blocks * 512);
    store_stats ss;
    ck_assert_int_eq(store_stat(s, &ss), LS_OK);
    ck_assert_uint_ge(ss.readers_max, 126);
    store_close(&s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* One writer per store                                                */
/* ------------------------------------------------------------------ */

/* Runs fn in a forked child; its exit status (bounded: 20 s). */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn());
    int status = -1;
    for (int i = 0; i < 2000; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return 101;
}

static char parent_pid[32];

/* A second writer in another process: refused, naming the holder's pid. */
static int child_opens_for_writing(void)
{
    store *s = NULL;
    store_options opt = {.map_size = 16 * MIB};
    char msg[1024] = "";
    int rc = store_open(&s, dir, &opt, &DECAY, msg, sizeof msg);
    if (rc == LS_OK)
        return 1;
    if (rc != LS_EUNAVAIL || !strstr(msg, parent_pid) || !strstr(msg, "already open for writing"))
        return 2;
    return 0;
}

/* A reader in another process, beside the writer. */
static int child_reads(void)
{
    store *s = NULL;
    store_reader *r = NULL;
    store_options ro = {.read_only = 1};
    ls_features f;
    if (store_open(&s, dir, &ro, NULL, NULL, 0) != LS_OK || store_reader_open(s, &r) != LS_OK ||
        store_reader_begin(r) != LS_OK)
        return 1;
    return store_reader_get(r, "alice", 5, &f) == LS_OK ? 0 : 2;
}

START_TEST(a_second_writer_is_refused_naming_the_first)
{
    store *a = open_rw(16 * MIB), *b = (store *)&b;
    put(a, "alice");
    snprintf(parent_pid, sizeof parent_pid, "%ld", (long)getpid());
    store_options opt = {.map_size = 16 * MIB};
    ck_assert_int_eq(store_open(&b, dir, &opt, &DECAY, err, sizeof err), LS_EUNAVAIL);
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(err, parent_pid) && strstr(err, STOREFILE_LOCK_NAME), "message: %s", err);
    ck_assert_int_eq(in_child(child_opens_for_writing), 0);
    ck_assert_int_eq(in_child(child_reads), 0);
    /* the lock file names the holder while it is held */
    char path[700], text[32] = "";
    snprintf(path, sizeof path, "%s/%s", dir, STOREFILE_LOCK_NAME);
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_ptr_nonnull(fgets(text, sizeof text, fp));
    fclose(fp);
    ck_assert_int_eq(atol(text), (long)getpid());
    store_close(&a);
    b = open_rw(16 * MIB); /* free again */
    ck_assert_int_eq(views(b, "alice"), 0);
    store_close(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("faults");
    TCase *wtc = tcase_create("writer");
    tcase_add_checked_fixture(wtc, setup, teardown);
    tcase_set_timeout(wtc, 120);
    tcase_add_test(wtc, a_job_failing_inside_the_transaction_fails_alone);
    tcase_add_test(wtc, over_long_keys_are_refused_before_the_transaction);
    tcase_add_test(wtc, a_full_disk_answers_unavailable_and_writes_resume);
    tcase_add_test(wtc, the_server_answers_unavailable_with_a_reason_when_the_disk_is_full);
    tcase_add_test(wtc, a_forget_goes_through_when_the_map_is_full);
    tcase_add_test(wtc, a_damaged_stored_record_fails_its_track_as_internal);
    tcase_add_test(wtc, a_partition_purge_erases_its_damaged_customers);
    suite_add_tcase(s, wtc);
    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_set_timeout(files, 60);
    tcase_add_test(files, a_dead_readers_slot_is_cleared);
    tcase_add_test(files, a_truncated_data_file_is_refused_not_a_sigbus);
    tcase_add_test(files, a_growing_store_is_never_taken_for_truncated);
    tcase_add_test(files, an_empty_data_file_beside_store_files_is_refused);
    tcase_add_test(files, an_empty_data_file_alone_is_a_new_store);
    tcase_add_test(files, a_garbage_data_file_is_refused);
    tcase_add_test(files, a_bad_magic_in_either_meta_page_is_refused);
    tcase_add_test(files, the_second_meta_page_is_checked_too);
    tcase_add_test(files, whole_stores_pass_the_check);
    tcase_add_test(files, a_new_store_a_full_disk_refuses_is_not_left_half_made);
    tcase_add_test(files, lock_mdb_is_allocated_before_lmdb_maps_it);
    tcase_add_test(files, a_second_writer_is_refused_naming_the_first);
    suite_add_tcase(s, files);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
