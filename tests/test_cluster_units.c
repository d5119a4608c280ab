/* test_cluster_units.c -- cluster mode's pure parts and the writer's log
 * positions, without NATS:
 *   - partition: fmix64(fnv1a64(id)) mod P against the published vectors
 *     (tests/data/partition_vectors.tsv, shared with the Python client's
 *     tests) and an implementation written here; in range, deterministic,
 *     spread evenly;
 *   - clustermap: init, move, which partitions share owner and standby
 *     (a forwarded batch's parts), the map's and the liveness record's JSON
 *     (round trips, exact text, every refusal, every truncation);
 *   - logmsg: a gateway's message decodes to the events it validated,
 *     field by field; invalid events are counted and skipped; damaged
 *     messages are LS_EPARSE, never a crash;
 *   - writer: log jobs apply exactly once per (partition, seq) across
 *     redeliveries, groups, aborted commits and restarts; jobs without a
 *     log_seq never touch positions. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermap.h"
#include "codec.h"
#include "event.h"
#include "leadscore/error.h"
#include "logmsg.h"
#include "partition.h"
#include "service.h"
#include "stats.h"
#include "store.h"
#include "testutil.h"
#include "writer.h"

#define DAY 86400000LL
#define T0 1700000000000LL

/* ------------------------------------------------------------------ */
/* partition                                                           */
/* ------------------------------------------------------------------ */

/* The hash from its published definitions (FNV-1a 64: offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3; MurmurHash3's fmix64), written
 * apart from src/partition.c. */
static uint64_t ref_hash(const void *data, size_t len)
{
    const unsigned char *b = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* FNV-1a 64's published check values pin the reference itself (fmix64
 * of them is what partition_hash must give). */
START_TEST(the_reference_hash_is_fnv1a64_then_fmix64)
{
    /* fnv1a64("") is the offset basis, fnv1a64("a") 0xaf63dc4c8601ec8c
     * (FNV's published check values); fmix64 of each (computed apart, in
     * Python, like the table): */
    ck_assert_uint_eq(ref_hash("", 0), 0xefd01f60ba992926ULL);
    ck_assert_uint_eq(ref_hash("a", 1), 0x82a2a958a9bece5bULL);
    ck_assert_uint_eq(partition_hash("", 0), 0xefd01f60ba992926ULL);
    ck_assert_uint_eq(partition_hash("a", 1), 0x82a2a958a9bece5bULL);
    ck_assert_str_eq(PARTITION_HASH_NAME, "fnv1a64-fmix64");
}
END_TEST

/* Every row of the published table: the hash and both partitions. */
START_TEST(partition_hash_and_partition_of_match_the_published_vectors)
{
    const char *path = LS_SOURCE_DIR "/tests/data/partition_vectors.tsv";
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[1024];
    int rows = 0, empty = 0, spaces = 0, utf8 = 0, longest = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        ck_assert_msg(n > 0 && line[n - 1] == '\n', "line %d of %s is not ended by a newline", rows + 1, path);
        line[--n] = '\0';
        if (line[0] == '#')
            continue;
        char *t1 = strchr(line, '\t');
        ck_assert_ptr_nonnull(t1);
        char *t2 = strchr(t1 + 1, '\t');
        ck_assert_ptr_nonnull(t2);
        char *t3 = strchr(t2 + 1, '\t');
        ck_assert_ptr_nonnull(t3);
        ck_assert_ptr_null(strchr(t3 + 1, '\t'));
        size_t idlen = (size_t)(t1 - line);
        ck_assert_int_eq((int)(t2 - t1 - 1), 16);
        char *end;
        uint64_t want = strtoull(t1 + 1, &end, 16);
        ck_assert_ptr_eq(end, t2);
        unsigned long p8 = strtoul(t2 + 1, &end, 10);
        ck_assert_ptr_eq(end, t3);
        unsigned long p128 = strtoul(t3 + 1, &end, 10);
        ck_assert_int_eq(*end, '\0');

        ck_assert_msg(ref_hash(line, idlen) == want, "row %d (%.*s): the table and the reference disagree", rows,
                      (int)idlen, line);
        ck_assert_msg(partition_hash(line, idlen) == want, "id \"%.*s\": hash %016llx, want %016llx", (int)idlen,
                      line, (unsigned long long)partition_hash(line, idlen), (unsigned long long)want);
        ck_assert_uint_eq(p8, want % 8);
        ck_assert_uint_eq(p128, want % 128);
        ck_assert_uint_eq(partition_of(line, idlen, 8), p8);
        ck_assert_uint_eq(partition_of(line, idlen, 128), p128);

        rows++;
        empty += idlen == 0;
        spaces += memchr(line, ' ', idlen) != NULL;
        for (size_t i = 0; i < idlen; i++)
            if ((unsigned char)line[i] >= 0x80) {
                utf8++;
                break;
            }
        longest = (int)idlen > longest ? (int)idlen : longest;
    }
    fclose(f);
    /* the table covers what it says it does */
    ck_assert_int_ge(rows, 20);
    ck_assert_int_eq(empty, 1);
    ck_assert_int_ge(spaces, 3);
    ck_assert_int_ge(utf8, 3);
    ck_assert_int_eq(longest, EVENT_MAX_STR);
}
END_TEST

/* Ids of the load generator's shape, and some that differ in one byte. */
static size_t some_id(char *buf, size_t cap, int i)
{
    switch (i % 4) {
    case 0: return (size_t)snprintf(buf, cap, "cust-%06d", i);
    case 1: return (size_t)snprintf(buf, cap, "user_%d@example.com", i);
    case 2: return (size_t)snprintf(buf, cap, "%d", i);
    default: return (size_t)snprintf(buf, cap, "anon %x", (unsigned)i);
    }
}

START_TEST(partition_of_is_in_range_deterministic_and_the_hash_mod_p)
{
    static const uint32_t parts[] = {1, 2, 3, 7, 8, 100, 128, 1000, PARTITION_MAX};
    char id[64];
    for (int i = 0; i < 10000; i++) {
        size_t n = some_id(id, sizeof id, i);
        uint64_t h = partition_hash(id, n);
        ck_assert_uint_eq(h, ref_hash(id, n));
        ck_assert_uint_eq(partition_hash(id, n), h); /* deterministic */
        for (size_t k = 0; k < sizeof parts / sizeof *parts; k++) {
            uint32_t p = partition_of(id, n, parts[k]);
            ck_assert_uint_lt(p, parts[k]);
            ck_assert_uint_eq(p, h % parts[k]);
            ck_assert_uint_eq(partition_of(id, n, parts[k]), p);
        }
        ck_assert_uint_eq(partition_of(id, n, 1), 0);
    }
    /* only the len bytes count: what follows them does not */
    ck_assert_uint_eq(partition_hash("alice-and-more", 5), partition_hash("alice", 5));
    ck_assert_uint_ne(partition_hash("alice", 5), partition_hash("alice", 4));
}
END_TEST

static void spread(uint32_t nparts, int nids, double tolerance)
{
    int count[PARTITION_MAX] = {0};
    char id[64];
    for (int i = 0; i < nids; i++) {
        size_t n = some_id(id, sizeof id, i);
        count[partition_of(id, n, nparts)]++;
    }
    double mean = (double)nids / nparts;
    for (uint32_t p = 0; p < nparts; p++)
        ck_assert_msg(count[p] >= mean * (1 - tolerance) && count[p] <= mean * (1 + tolerance),
                      "P=%u: partition %u has %d of %d ids (mean %.1f)", nparts, p, count[p], nids, mean);
}

START_TEST(partition_of_spreads_ids_evenly)
{
    spread(8, 10000, 0.15);
    spread(128, 128000, 0.15);
    spread(3, 9000, 0.15);
}
END_TEST

/* ------------------------------------------------------------------ */
/* clustermap                                                          */
/* ------------------------------------------------------------------ */

static const char *const NODES3[] = {"n1", "n2", "n3"};

static void map3(clustermap *m, uint32_t nparts)
{
    char err[256] = "";
    int rc = clustermap_init(m, "c1", nparts, T0, NODES3, 3, err, sizeof err);
    ck_assert_msg(rc == LS_OK, "clustermap_init: %d %s", rc, err);
}

static void assert_maps_equal(const clustermap *a, const clustermap *b)
{
    ck_assert_str_eq(a->cluster, b->cluster);
    ck_assert_uint_eq(a->epoch, b->epoch);
    ck_assert_uint_eq(a->nparts, b->nparts);
    ck_assert_int_eq(a->generation, b->generation);
    ck_assert_int_eq(a->nnodes, b->nnodes);
    for (int i = 0; i < a->nnodes; i++)
        ck_assert_str_eq(a->nodes[i], b->nodes[i]);
    for (uint32_t p = 0; p < a->nparts; p++) {
        ck_assert_msg(a->owner[p] == b->owner[p], "partition %u: owner %d, %d", p, a->owner[p], b->owner[p]);
        ck_assert_msg(a->standby[p] == b->standby[p], "partition %u: standby %d, %d", p, a->standby[p],
                      b->standby[p]);
    }
}

START_TEST(init_assigns_owner_p_mod_n_and_standby_the_next_node)
{
    clustermap m;
    char err[256] = "", name[128];
    map3(&m, 8);
    ck_assert_str_eq(m.cluster, "c1");
    ck_assert_uint_eq(m.epoch, 1);
    ck_assert_uint_eq(m.nparts, 8);
    ck_assert_int_eq(m.generation, T0);
    ck_assert_int_eq(m.nnodes, 3);
    for (uint32_t p = 0; p < 8; p++) {
        ck_assert_int_eq(m.owner[p], (int)(p % 3));
        ck_assert_int_eq(m.standby[p], (int)((p + 1) % 3));
    }
    ck_assert_int_eq(clustermap_node_index(&m, "n1"), 0);
    ck_assert_int_eq(clustermap_node_index(&m, "n3"), 2);
    ck_assert_int_eq(clustermap_node_index(&m, "n4"), -1);
    ck_assert_int_eq(clustermap_node_index(&m, "n"), -1);
    clustermap_stream_name(&m, 3, name, sizeof name);
    ck_assert_str_eq(name, "LS_c1_P003_G1700000000000");
    clustermap_stream_name(&m, 7, name, sizeof name);
    ck_assert_str_eq(name, "LS_c1_P007_G1700000000000");
    clustermap_subject(&m, 7, name, sizeof name);
    ck_assert_str_eq(name, "ls.c1.p.7.ev");

    /* one node: it owns everything, nobody stands by */
    static const char *const one[] = {"solo"};
    ck_assert_int_eq(clustermap_init(&m, "c1", 5, 0, one, 1, err, sizeof err), LS_OK);
    for (uint32_t p = 0; p < 5; p++) {
        ck_assert_int_eq(m.owner[p], 0);
        ck_assert_int_eq(m.standby[p], -1);
    }
    /* two nodes: standby is the other one */
    ck_assert_int_eq(clustermap_init(&m, "c1", 4, 0, NODES3, 2, err, sizeof err), LS_OK);
    for (uint32_t p = 0; p < 4; p++) {
        ck_assert_int_eq(m.owner[p], (int)(p % 2));
        ck_assert_int_eq(m.standby[p], (int)((p + 1) % 2));
    }
}
END_TEST

START_TEST(init_refuses_bad_names_and_counts)
{
    clustermap m;
    char err[256], n47[48], n48[49];
    memset(n47, 'a', 47);
    n47[47] = '\0';
    memset(n48, 'a', 48);
    n48[48] = '\0';
    static const char *const bad_names[] = {"", "a.b", "has space", "c*", "ä", "a/b", "a\tb", ">"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        err[0] = '\0';
        ck_assert_int_eq(clustermap_valid_name(bad_names[i]), 0);
        ck_assert_int_eq(clustermap_init(&m, bad_names[i], 8, 0, NODES3, 3, err, sizeof err), LS_EINVAL);
        ck_assert_str_ne(err, "");
        const char *nodes[] = {"n1", bad_names[i]};
        err[0] = '\0';
        ck_assert_int_eq(clustermap_init(&m, "c1", 8, 0, nodes, 2, err, sizeof err), LS_EINVAL);
        ck_assert_str_ne(err, "");
    }
    ck_assert_int_eq(clustermap_valid_name(n48), 0);
    ck_assert_int_eq(clustermap_init(&m, n48, 8, 0, NODES3, 3, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(clustermap_valid_name(n47), 1);
    ck_assert_int_eq(clustermap_valid_name("Az09_-"), 1);
    ck_assert_int_eq(clustermap_init(&m, n47, 8, 0, NODES3, 3, err, sizeof err), LS_OK);
    ck_assert_str_eq(m.cluster, n47);

    /* partition counts: 1 to PARTITION_MAX */
    err[0] = '\0';
    ck_assert_int_eq(clustermap_init(&m, "c1", 0, 0, NODES3, 3, err, sizeof err), LS_EINVAL);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(clustermap_init(&m, "c1", PARTITION_MAX + 1, 0, NODES3, 3, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(clustermap_init(&m, "c1", 1, 0, NODES3, 3, err, sizeof err), LS_OK);
    ck_assert_int_eq(clustermap_init(&m, "c1", PARTITION_MAX, 0, NODES3, 3, err, sizeof err), LS_OK);

    /* node counts: 1 to CLUSTER_MAX_NODES, each name once */
    static char names[CLUSTER_MAX_NODES + 1][16];
    const char *many[CLUSTER_MAX_NODES + 1];
    for (int i = 0; i <= CLUSTER_MAX_NODES; i++) {
        snprintf(names[i], sizeof names[i], "node-%d", i);
        many[i] = names[i];
    }
    ck_assert_int_eq(clustermap_init(&m, "c1", 8, 0, many, 0, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(clustermap_init(&m, "c1", 8, 0, many, CLUSTER_MAX_NODES + 1, err, sizeof err), LS_EINVAL);
    ck_assert_int_eq(clustermap_init(&m, "c1", 8, 0, many, CLUSTER_MAX_NODES, err, sizeof err), LS_OK);
    ck_assert_str_eq(m.nodes[CLUSTER_MAX_NODES - 1], "node-63");
    static const char *const twice[] = {"n1", "n2", "n1"};
    err[0] = '\0';
    ck_assert_int_eq(clustermap_init(&m, "c1", 8, 0, twice, 3, err, sizeof err), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "n1"));
}
END_TEST

START_TEST(move_raises_the_epoch_and_swaps_owner_and_standby)
{
    clustermap m, before;
    char err[256];
    map3(&m, 6);
    before = m;
    /* p0: owner n1, standby n2.  Its standby takes over: the two swap */
    ck_assert_int_eq(clustermap_move(&m, 0, "n2", err, sizeof err), LS_OK);
    ck_assert_int_eq(m.owner[0], 1);
    ck_assert_int_eq(m.standby[0], 0);
    ck_assert_uint_eq(m.epoch, 2);
    /* a third node takes over: the old owner becomes standby */
    ck_assert_int_eq(clustermap_move(&m, 0, "n3", err, sizeof err), LS_OK);
    ck_assert_int_eq(m.owner[0], 2);
    ck_assert_int_eq(m.standby[0], 1);
    ck_assert_uint_eq(m.epoch, 3);
    for (uint32_t p = 1; p < 6; p++) { /* the other partitions stay */
        ck_assert_int_eq(m.owner[p], before.owner[p]);
        ck_assert_int_eq(m.standby[p], before.standby[p]);
    }
    /* refusals change nothing */
    clustermap snap = m;
    err[0] = '\0';
    ck_assert_int_eq(clustermap_move(&m, 0, "n3", err, sizeof err), LS_EINVAL); /* already the owner */
    ck_assert_str_ne(err, "");
    err[0] = '\0';
    ck_assert_int_eq(clustermap_move(&m, 0, "n9", err, sizeof err), LS_EINVAL); /* not in the map */
    ck_assert_str_ne(err, "");
    err[0] = '\0';
    ck_assert_int_eq(clustermap_move(&m, 6, "n1", err, sizeof err), LS_EINVAL); /* no such partition */
    ck_assert_str_ne(err, "");
    assert_maps_equal(&m, &snap);
}
END_TEST

/* A forwarded batched score groups customers by the nodes that read
 * their partitions (forward.c): a part fails over to one standby, so the
 * partitions of one part must share it as well as the owner.  After a
 * move, partitions of one owner can have different standbys. */
START_TEST(same_holders_means_the_same_owner_and_the_same_standby)
{
    clustermap m;
    char err[256];
    map3(&m, 6);
    /* p0 and p3: owner n1, standby n2 */
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 3), 1);
    ck_assert_int_eq(clustermap_same_holders(&m, 3, 0), 1);
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 0), 1);
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 1), 0); /* owner n2 */
    /* p2 (owner n3, standby n1) moves to n1: owner n1, standby n3, so
     * the standby of p0 (n2) does not hold it */
    ck_assert_int_eq(clustermap_move(&m, 2, "n1", err, sizeof err), LS_OK);
    ck_assert_int_eq(m.owner[2], m.owner[0]);
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 2), 0);
    ck_assert_int_eq(clustermap_same_holders(&m, 2, 0), 0);
    ck_assert_int_eq(clustermap_same_holders(&m, 3, 2), 0);
    /* p1: owner n2, standby n3, as p2's standby: the owners differ */
    ck_assert_int_eq(m.standby[1], m.standby[2]);
    ck_assert_int_eq(clustermap_same_holders(&m, 1, 2), 0);
    /* outside the map: never */
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 6), 0);
    ck_assert_int_eq(clustermap_same_holders(&m, 6, 6), 0);
    /* one node: no standby anywhere, one owner: all alike */
    static const char *const one[] = {"solo"};
    ck_assert_int_eq(clustermap_init(&m, "c1", 4, 0, one, 1, err, sizeof err), LS_OK);
    ck_assert_int_eq(clustermap_same_holders(&m, 0, 3), 1);
}
END_TEST

START_TEST(the_map_json_is_the_documented_text_and_round_trips)
{
    clustermap m, back;
    char err[256] = "";
    static const char *const two[] = {"n1", "n2"};
    ck_assert_int_eq(clustermap_init(&m, "c1", 3, T0, two, 2, err, sizeof err), LS_OK);
    char *text = clustermap_to_json(&m);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "{\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"partitions\":3,\"generation\":1700000000000,"
                           "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\",\"n2\"],\"owner\":[0,1,0],"
                           "\"standby\":[1,0,1]}");
    ck_assert_int_eq(clustermap_from_json(&back, text, strlen(text), err, sizeof err), LS_OK);
    assert_maps_equal(&back, &m);
    free(text);

    /* after moves, and at the limits: 1024 partitions, 64 nodes */
    static char names[CLUSTER_MAX_NODES][CLUSTER_NAME_MAX];
    const char *many[CLUSTER_MAX_NODES];
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        snprintf(names[i], sizeof names[i], "node_%02d-%.36s", i, "abcdefghijklmnopqrstuvwxyz0123456789");
        many[i] = names[i];
    }
    ck_assert_int_eq(clustermap_init(&m, "Big-Cluster_1", PARTITION_MAX, INT64_MAX, many, CLUSTER_MAX_NODES, err,
                                     sizeof err),
                     LS_OK);
    for (uint32_t p = 0; p < PARTITION_MAX; p += 7)
        ck_assert_int_eq(clustermap_move(&m, p, many[(p * 13 + 5) % CLUSTER_MAX_NODES], err, sizeof err), LS_OK);
    ck_assert_uint_eq(m.epoch, 1 + (PARTITION_MAX + 6) / 7);
    text = clustermap_to_json(&m);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(clustermap_from_json(&back, text, strlen(text), err, sizeof err), LS_OK);
    assert_maps_equal(&back, &m);
    free(text);

    /* one node: standby -1 survives */
    ck_assert_int_eq(clustermap_init(&m, "c1", 2, 0, many, 1, err, sizeof err), LS_OK);
    text = clustermap_to_json(&m);
    ck_assert_ptr_nonnull(strstr(text, "\"standby\":[-1,-1]"));
    ck_assert_int_eq(clustermap_from_json(&back, text, strlen(text), err, sizeof err), LS_OK);
    assert_maps_equal(&back, &m);
    free(text);
}
END_TEST

/* The valid document the refusals below start from (3 nodes, 4 parts). */
static json_t *valid_map_json(void)
{
    clustermap m;
    map3(&m, 4);
    char *text = clustermap_to_json(&m);
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    free(text);
    ck_assert_ptr_nonnull(o);
    return o;
}

static void assert_map_refused(json_t *o, const char *what)
{
    char *text = json_dumps(o, JSON_COMPACT);
    clustermap m;
    char err[256] = "";
    int rc = clustermap_from_json(&m, text, strlen(text), err, sizeof err);
    ck_assert_msg(rc == LS_EPARSE, "%s: %s was read (%d)", what, text, rc);
    ck_assert_msg(err[0] != '\0', "%s: refused without a reason", what);
    free(text);
    json_decref(o);
}

static void assert_text_refused(const char *text, size_t len, const char *what)
{
    clustermap m;
    char err[256] = "";
    int rc = clustermap_from_json(&m, text, len, err, sizeof err);
    ck_assert_msg(rc == LS_EPARSE, "%s: %.*s was read (%d)", what, (int)len, text, rc);
    ck_assert_msg(err[0] != '\0', "%s: refused without a reason", what);
}

START_TEST(from_json_refuses_what_is_not_a_version_1_map)
{
    json_t *o;
    /* the starting point is read */
    o = valid_map_json();
    char *ok = json_dumps(o, JSON_COMPACT);
    clustermap m;
    char err[256];
    ck_assert_int_eq(clustermap_from_json(&m, ok, strlen(ok), err, sizeof err), LS_OK);
    free(ok);
    json_decref(o);

    assert_text_refused("", 0, "empty");
    assert_text_refused("not json", 8, "not JSON");
    assert_text_refused("[1,2]", 5, "an array");
    assert_text_refused("42", 2, "a number");
    assert_text_refused("\"map\"", 5, "a string");
    assert_text_refused("{}", 2, "an empty object");

    o = valid_map_json(), json_object_set_new(o, "v", json_integer(2)), assert_map_refused(o, "v 2");
    o = valid_map_json(), json_object_set_new(o, "v", json_string("1")), assert_map_refused(o, "v a string");
    o = valid_map_json(), json_object_del(o, "v"), assert_map_refused(o, "no v");
    o = valid_map_json(), json_object_set_new(o, "hash", json_string("murmur3")), assert_map_refused(o, "hash");
    o = valid_map_json(), json_object_set_new(o, "hash", json_string("fnv1a64")), assert_map_refused(o, "hash");
    o = valid_map_json(), json_object_del(o, "hash"), assert_map_refused(o, "no hash");
    o = valid_map_json(), json_object_set_new(o, "cluster", json_string("a.b")), assert_map_refused(o, "cluster");
    o = valid_map_json(), json_object_set_new(o, "cluster", json_integer(1)), assert_map_refused(o, "cluster");
    o = valid_map_json(), json_object_set_new(o, "epoch", json_integer(0)), assert_map_refused(o, "epoch 0");
    o = valid_map_json(), json_object_set_new(o, "epoch", json_real(2.5)), assert_map_refused(o, "epoch 2.5");
    o = valid_map_json(), json_object_set_new(o, "generation", json_integer(-1)),
    assert_map_refused(o, "generation -1");
    o = valid_map_json(), json_object_set_new(o, "partitions", json_integer(0)), assert_map_refused(o, "parts 0");
    o = valid_map_json(), json_object_set_new(o, "partitions", json_integer(PARTITION_MAX + 1)),
    assert_map_refused(o, "parts 1025");
    /* the partition count and the arrays disagree */
    o = valid_map_json(), json_object_set_new(o, "partitions", json_integer(5)), assert_map_refused(o, "parts 5");
    o = valid_map_json(), json_object_set_new(o, "partitions", json_integer(3)), assert_map_refused(o, "parts 3");
    o = valid_map_json(), json_array_remove(json_object_get(o, "owner"), 0), assert_map_refused(o, "owner short");
    o = valid_map_json(), json_array_append_new(json_object_get(o, "standby"), json_integer(0)),
    assert_map_refused(o, "standby long");
    o = valid_map_json(), json_object_set_new(o, "owner", json_string("0,1,2,0")), assert_map_refused(o, "owner");
    /* an index that names no node */
    o = valid_map_json(), json_array_set_new(json_object_get(o, "owner"), 2, json_integer(3)),
    assert_map_refused(o, "owner 3 of 3 nodes");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "owner"), 1, json_integer(-1)),
    assert_map_refused(o, "owner -1");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "owner"), 0, json_integer(70000)),
    assert_map_refused(o, "owner 70000");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "owner"), 0, json_string("n1")),
    assert_map_refused(o, "owner a name");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "standby"), 3, json_integer(3)),
    assert_map_refused(o, "standby 3");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "standby"), 3, json_integer(-2)),
    assert_map_refused(o, "standby -2");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "standby"), 0, json_null()),
    assert_map_refused(o, "standby null");
    /* nodes */
    o = valid_map_json(), json_array_set_new(json_object_get(o, "nodes"), 1, json_string("n 2")),
    assert_map_refused(o, "a bad node name");
    o = valid_map_json(), json_array_set_new(json_object_get(o, "nodes"), 1, json_integer(2)),
    assert_map_refused(o, "a node not a string");
    o = valid_map_json(), json_array_clear(json_object_get(o, "nodes")), assert_map_refused(o, "no nodes");
    o = valid_map_json();
    for (int i = 3; i <= CLUSTER_MAX_NODES; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        json_array_append_new(json_object_get(o, "nodes"), json_string(name));
    }
    assert_map_refused(o, "65 nodes");
}
END_TEST

START_TEST(from_json_refuses_duplicate_keys)
{
    static const char *const docs[] = {
        "{\"v\":1,\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"partitions\":1,\"generation\":0,"
        "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\"],\"owner\":[0],\"standby\":[-1]}",
        "{\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"partitions\":1,\"generation\":0,"
        "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\"],\"owner\":[0],\"standby\":[-1],\"owner\":[0]}",
        "{\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"epoch\":9,\"partitions\":1,\"generation\":0,"
        "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\"],\"owner\":[0],\"standby\":[-1]}",
    };
    /* without the duplicate, the first one is read */
    const char *good = "{\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"partitions\":1,\"generation\":0,"
                       "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\"],\"owner\":[0],\"standby\":[-1]}";
    clustermap m;
    char err[256];
    ck_assert_int_eq(clustermap_from_json(&m, good, strlen(good), err, sizeof err), LS_OK);
    ck_assert_int_eq(m.standby[0], -1);
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        assert_text_refused(docs[i], strlen(docs[i]), "a duplicate key");
}
END_TEST

/* Every prefix of a valid document is refused, cleanly (run under ASan:
 * nothing read past len). */
START_TEST(from_json_refuses_every_truncation_of_a_valid_map)
{
    clustermap m;
    map3(&m, 16);
    ck_assert_int_eq(clustermap_move(&m, 5, "n1", (char[64]){0}, 64), LS_OK);
    char *text = clustermap_to_json(&m);
    size_t len = strlen(text);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes: a read past them is caught by ASan */
        memcpy(copy, text, n);
        assert_text_refused(copy, n, "a truncated map");
        free(copy);
    }
    clustermap back;
    char err[256];
    ck_assert_int_eq(clustermap_from_json(&back, text, len, err, sizeof err), LS_OK);
    assert_maps_equal(&back, &m);
    free(text);
}
END_TEST

/* A map init would refuse (a node named twice) is not read either: with
 * it, node_index finds the first only, and the partitions of the second
 * have an owner nobody answers as. */
START_TEST(from_json_refuses_a_node_named_twice)
{
    const char *doc = "{\"v\":1,\"cluster\":\"c1\",\"epoch\":1,\"partitions\":2,\"generation\":0,"
                      "\"hash\":\"fnv1a64-fmix64\",\"nodes\":[\"n1\",\"n1\"],\"owner\":[0,1],\"standby\":[1,0]}";
    assert_text_refused(doc, strlen(doc), "a node named twice");
}
END_TEST

static void live_fill(cluster_live *l)
{
    memset(l, 0, sizeof *l);
    snprintf(l->endpoint, sizeof l->endpoint, "tcp://10.0.0.7:5555");
    snprintf(l->pull, sizeof l->pull, "tcp://10.0.0.7:5556");
    l->pid = 4242;
    l->ts_ms = T0 + 17;
    l->nheld = 4;
    l->part[0] = 0, l->applied[0] = 0;
    l->part[1] = 5, l->applied[1] = 12345;
    l->part[2] = 77, l->applied[2] = (uint64_t)INT64_MAX;
    l->part[3] = PARTITION_MAX - 1, l->applied[3] = 1;
}

START_TEST(the_live_record_round_trips)
{
    cluster_live l, back;
    live_fill(&l);
    char *text = cluster_live_to_json(&l);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, "{\"endpoint\":\"tcp://10.0.0.7:5555\",\"pull\":\"tcp://10.0.0.7:5556\",\"pid\":4242,"
                           "\"ts\":1700000000017,\"applied\":{\"0\":0,\"5\":12345,\"77\":9223372036854775807,"
                           "\"1023\":1}}");
    ck_assert_int_eq(cluster_live_from_json(&back, text, strlen(text)), LS_OK);
    free(text);
    ck_assert_str_eq(back.endpoint, l.endpoint);
    ck_assert_str_eq(back.pull, l.pull);
    ck_assert_int_eq(back.pid, l.pid);
    ck_assert_int_eq(back.ts_ms, l.ts_ms);
    ck_assert_uint_eq(back.nheld, l.nheld);
    for (uint32_t i = 0; i < l.nheld; i++) { /* as a set: JSON objects have no order */
        uint32_t j = 0;
        while (j < back.nheld && back.part[j] != l.part[i])
            j++;
        ck_assert_msg(j < back.nheld, "partition %u is lost", l.part[i]);
        ck_assert_uint_eq(back.applied[j], l.applied[i]);
    }
    /* nothing held */
    l.nheld = 0;
    text = cluster_live_to_json(&l);
    ck_assert_ptr_nonnull(strstr(text, "\"applied\":{}"));
    ck_assert_int_eq(cluster_live_from_json(&back, text, strlen(text)), LS_OK);
    ck_assert_uint_eq(back.nheld, 0);
    free(text);
}
END_TEST

static int live_reads(const char *applied)
{
    char text[512];
    cluster_live l;
    snprintf(text, sizeof text, "{\"endpoint\":\"tcp://a:1\",\"pull\":\"tcp://a:2\",\"pid\":1,\"ts\":5,\"applied\":%s}",
             applied);
    return cluster_live_from_json(&l, text, strlen(text));
}

START_TEST(the_live_record_refuses_bad_fields_and_applied_keys)
{
    ck_assert_int_eq(live_reads("{\"3\":7}"), LS_OK);
    static const char *const bad[] = {
        "{\"x\":1}", "{\"-1\":1}", "{\"1024\":1}", "{\"3a\":1}", "{\"3.0\":1}", "{\"99999999999999999999\":1}",
        "{\"3\":\"7\"}", "{\"3\":1.5}", "{\"3\":null}", "[]", "7", "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(live_reads(bad[i]) == LS_EPARSE, "applied %s was read", bad[i]);
    cluster_live l;
    static const char *const docs[] = {
        "", "not json", "[]", "{}",
        "{\"pull\":\"tcp://a:2\",\"pid\":1,\"ts\":5,\"applied\":{}}",
        "{\"endpoint\":1,\"pull\":\"tcp://a:2\",\"pid\":1,\"ts\":5,\"applied\":{}}",
        "{\"endpoint\":\"tcp://a:1\",\"pid\":1,\"ts\":5,\"applied\":{}}",
        "{\"endpoint\":\"tcp://a:1\",\"pull\":\"tcp://a:2\",\"pid\":\"1\",\"ts\":5,\"applied\":{}}",
        "{\"endpoint\":\"tcp://a:1\",\"pull\":\"tcp://a:2\",\"pid\":1,\"ts\":5.5,\"applied\":{}}",
        "{\"endpoint\":\"tcp://a:1\",\"pull\":\"tcp://a:2\",\"pid\":1,\"ts\":5}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        ck_assert_msg(cluster_live_from_json(&l, docs[i], strlen(docs[i])) == LS_EPARSE, "%s was read", docs[i]);
    /* every truncation */
    live_fill(&l);
    char *text = cluster_live_to_json(&l);
    size_t len = strlen(text);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, text, n);
        ck_assert_msg(cluster_live_from_json(&l, copy, n) == LS_EPARSE, "%.*s was read", (int)n, copy);
        free(copy);
    }
    free(text);
}
END_TEST

/* An applied key is a partition number in decimal and nothing else: not
 * empty (strtoul would read it as 0), no sign, no blank. */
START_TEST(the_live_record_refuses_applied_keys_strtoul_would_bend)
{
    static const char *const bad[] = {"{\"\":1}", "{\" 3\":1}", "{\"+3\":1}",
                                      "{\"3\":1,\"03\":9}"}; /* partition 3 twice */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(live_reads(bad[i]) == LS_EPARSE, "applied %s was read", bad[i]);
}
END_TEST

/* An applied seq is a stream sequence: never negative (it would read as
 * a seq near 2^64). */
START_TEST(the_live_record_refuses_a_negative_applied_seq)
{
    ck_assert_int_eq(live_reads("{\"3\":0}"), LS_OK);
    ck_assert_msg(live_reads("{\"3\":-5}") == LS_EPARSE, "applied {\"3\":-5} was read");
}
END_TEST

/* ------------------------------------------------------------------ */
/* logmsg                                                              */
/* ------------------------------------------------------------------ */

#define RCV (T0 + 1000)

/* Packs one event map from key/value pairs: values are "s:text",
 * "i:123", "d:1.5", "b:1" (typed by their prefix). */
static void pack_event(msgpack_packer *pk, const char *const *kv, size_t npairs)
{
    msgpack_pack_map(pk, npairs);
    for (size_t i = 0; i < npairs; i++) {
        const char *k = kv[2 * i], *v = kv[2 * i + 1];
        tu_pack_str(pk, k);
        switch (v[0]) {
        case 's': tu_pack_str(pk, v + 2); break;
        case 'i': msgpack_pack_int64(pk, strtoll(v + 2, NULL, 10)); break;
        case 'd': msgpack_pack_double(pk, strtod(v + 2, NULL)); break;
        case 'b':
            if (v[2] == '1')
                msgpack_pack_true(pk);
            else
                msgpack_pack_false(pk);
            break;
        default: ck_abort_msg("bad spec %s", v);
        }
    }
}

/* A gateway's originals: the msgpack maps a client sent, decoded and
 * validated at rcv.  Strings point into the unpacked objects (zone). */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_zone *zone;
    size_t n;
    ls_event ev[16];
} originals;

static char long_str[EVENT_MAX_STR + 1];

static void originals_make(originals *o)
{
    memset(long_str, 'L', EVENT_MAX_STR);
    long_str[EVENT_MAX_STR] = '\0';
    static char lc[EVENT_MAX_STR + 3];
    snprintf(lc, sizeof lc, "s:%s", long_str);
    static const char *const e0[] = {"customer", "s:alice", "type", "s:purchase", "ts", "i:1700000000000",
                                     "event_id", "s:e-1", "session", "s:sess-1", "product", "s:sku-9",
                                     "category", "s:shoes", "order_id", "s:o-77", "price", "d:19.99",
                                     "quantity", "i:3", "value", "d:55.5", "discounted", "b:1",
                                     "birthday", "s:02-29"};
    static const char *const e1[] = {"customer", "s:bob \xc3\xbc", "type", "s:review", "rating", "i:4",
                                     "ts", "i:1700000000005", "product", "s:sku-1"};
    static const char *const e2[] = {"customer", "s:carol", "type", "s:page_view"}; /* no ts: rcv */
    static const char *const e3[] = {"customer", "s:dan", "type", "s:add_to_cart", "price", "d:0.1",
                                     "discounted", "b:0", "event_id", "s:e-3"}; /* value = price x 1 */
    const char *e4[] = {"customer", lc, "type", "s:profile", "birthday", "s:12-31", "session", lc,
                        "event_id", lc, "product", lc, "category", lc, "order_id", lc};
    static const char *const e5[] = {"customer", "s:erin", "type", "s:purchase", "price", "d:2.5",
                                     "quantity", "i:4", "ts", "i:1700000000999", "order_id", "s:o-1"};
    const char *const *specs[] = {e0, e1, e2, e3, e4, e5};
    const size_t npairs[] = {13, 5, 2, 5, 8, 6};
    o->n = sizeof specs / sizeof *specs;
    msgpack_sbuffer_init(&o->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o->sb, msgpack_sbuffer_write);
    for (size_t i = 0; i < o->n; i++)
        pack_event(&pk, specs[i], npairs[i]);
    o->zone = msgpack_zone_new(4096);
    size_t off = 0;
    for (size_t i = 0; i < o->n; i++) {
        msgpack_object obj;
        char why[200];
        const char *vwhy = "";
        ck_assert_int_eq(msgpack_unpack(o->sb.data, o->sb.size, &off, o->zone, &obj) >= 0, 1);
        int rc = codec_decode_event(&obj, &o->ev[i], why, sizeof why);
        ck_assert_msg(rc == LS_OK, "event %zu: %s", i, why);
        rc = event_validate(&o->ev[i], RCV, EVENT_MAX_STR, &vwhy);
        ck_assert_msg(rc == LS_OK, "event %zu: %s", i, vwhy);
    }
    ck_assert_uint_eq(off, o->sb.size);
    /* what the originals exercise */
    ck_assert_int_eq(o->ev[2].ts_ms, RCV);
    ck_assert_uint_eq(o->ev[2].has & EVF_TS, EVF_TS);
    ck_assert_uint_eq(o->ev[0].has & (EVF_PRICE | EVF_VALUE | EVF_QUANTITY | EVF_DISCOUNTED | EVF_BIRTHDAY),
                      EVF_PRICE | EVF_VALUE | EVF_QUANTITY | EVF_DISCOUNTED | EVF_BIRTHDAY);
    ck_assert_int_eq(o->ev[0].birthday_mmdd, 229);
    ck_assert_int_eq(o->ev[1].rating, 4);
    ck_assert(o->ev[3].value == 0.1 && !(o->ev[3].has & EVF_VALUE));
    ck_assert_uint_eq(o->ev[4].customer.len, EVENT_MAX_STR);
    ck_assert(o->ev[5].value == 10.0);
}

static void originals_free(originals *o)
{
    msgpack_zone_free(o->zone);
    msgpack_sbuffer_destroy(&o->sb);
}

static void assert_str_eq(ls_str a, ls_str b, const char *what, size_t i)
{
    ck_assert_msg(a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0),
                  "event %zu: %s \"%.*s\", want \"%.*s\"", i, what, (int)a.len, a.ptr ? a.ptr : "", (int)b.len,
                  b.ptr ? b.ptr : "");
}

static void assert_events_equal(const ls_event *got, const ls_event *want, size_t i)
{
    ck_assert_msg(got->type == want->type, "event %zu: type %d, want %d", i, got->type, want->type);
    ck_assert_msg(got->has == want->has, "event %zu: has %#x, want %#x", i, got->has, want->has);
    ck_assert_msg(got->ts_ms == want->ts_ms, "event %zu: ts", i);
    assert_str_eq(got->customer, want->customer, "customer", i);
    assert_str_eq(got->event_id, want->event_id, "event_id", i);
    assert_str_eq(got->session, want->session, "session", i);
    assert_str_eq(got->product, want->product, "product", i);
    assert_str_eq(got->category, want->category, "category", i);
    assert_str_eq(got->order_id, want->order_id, "order_id", i);
    ck_assert_msg(got->session_hash == want->session_hash, "event %zu: session_hash", i);
    ck_assert_msg(got->price == want->price, "event %zu: price %.17g, want %.17g", i, got->price, want->price);
    ck_assert_msg(got->quantity == want->quantity, "event %zu: quantity", i);
    ck_assert_msg(got->value == want->value, "event %zu: value %.17g, want %.17g", i, got->value, want->value);
    ck_assert_msg(got->discounted == want->discounted, "event %zu: discounted", i);
    ck_assert_msg(got->rating == want->rating, "event %zu: rating", i);
    ck_assert_msg(got->birthday_mmdd == want->birthday_mmdd, "event %zu: birthday", i);
}

static int decode(const char *buf, size_t len, logmsg *out, msgpack_zone **zone, char *why, size_t cap)
{
    *zone = msgpack_zone_new(2048);
    ck_assert_ptr_nonnull(*zone);
    why[0] = '\0';
    return logmsg_decode(buf, len, *zone, out, why, cap);
}

START_TEST(a_log_message_decodes_to_the_validated_events_field_by_field)
{
    originals o;
    originals_make(&o);
    codec_writer w;
    codec_writer_init(&w);
    logmsg_begin(&w, RCV, "gw-1");
    for (size_t i = 0; i < o.n; i++)
        logmsg_add(&w, &o.ev[i]);
    logmsg_finish(&w);
    ck_assert_int_eq(w.oom, 0);

    logmsg m;
    msgpack_zone *zone;
    char why[200];
    int rc = decode(w.sb.data, w.sb.size, &m, &zone, why, sizeof why);
    ck_assert_msg(rc == LS_OK, "logmsg_decode: %d %s", rc, why);
    ck_assert_int_eq(m.rcv_ms, RCV);
    ck_assert_uint_eq(m.gateway.len, 4);
    ck_assert_int_eq(memcmp(m.gateway.ptr, "gw-1", 4), 0);
    ck_assert_uint_eq(m.invalid, 0);
    ck_assert_uint_eq(m.nevents, o.n);
    for (size_t i = 0; i < o.n; i++)
        assert_events_equal(&m.events[i], &o.ev[i], i);

    /* a message of the decoded events is the same bytes (every replica,
     * every replay computes the same) */
    codec_writer w2;
    codec_writer_init(&w2);
    logmsg_begin(&w2, m.rcv_ms, "gw-1");
    for (size_t i = 0; i < m.nevents; i++)
        logmsg_add(&w2, &m.events[i]);
    logmsg_finish(&w2);
    ck_assert_uint_eq(w2.sb.size, w.sb.size);
    ck_assert_int_eq(memcmp(w2.sb.data, w.sb.data, w.sb.size), 0);

    /* begin resets: a second message in the same writer has none of the first */
    logmsg_begin(&w2, RCV + 1, "gw-2");
    logmsg_finish(&w2);
    msgpack_zone_free(zone);
    rc = decode(w2.sb.data, w2.sb.size, &m, &zone, why, sizeof why);
    ck_assert_int_eq(rc, LS_OK);
    ck_assert_int_eq(m.rcv_ms, RCV + 1);
    ck_assert_uint_eq(m.nevents, 0);
    ck_assert_uint_eq(m.invalid, 0);
    msgpack_zone_free(zone);
    codec_writer_destroy(&w2);
    codec_writer_destroy(&w);
    originals_free(&o);
}
END_TEST

/* The head of a message {"v":v,"rcv":rcv,"gw":gw,"ev":[ (nev events follow) */
static void pack_head(msgpack_packer *pk, int64_t v, int64_t rcv, const char *gw, uint32_t nev)
{
    msgpack_pack_map(pk, 4);
    tu_pack_str(pk, "v");
    msgpack_pack_int64(pk, v);
    tu_pack_str(pk, "rcv");
    msgpack_pack_int64(pk, rcv);
    tu_pack_str(pk, "gw");
    tu_pack_str(pk, gw);
    tu_pack_str(pk, "ev");
    msgpack_pack_array(pk, nev);
}

START_TEST(an_invalid_event_in_a_message_is_counted_and_skipped)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_head(&pk, 1, RCV, "gw-1", 8);
    static const char *const ok1[] = {"customer", "s:first", "type", "s:page_view", "ts", "i:1700000000000"};
    static const char *const no_customer[] = {"type", "s:page_view", "ts", "i:1700000000000"};
    static const char *const unknown_field[] = {"customer", "s:x", "type", "s:page_view", "colour", "s:red"};
    static const char *const future[] = {"customer", "s:x", "type", "s:page_view", "ts", "i:1700086401001"};
    static const char *const bad_type[] = {"customer", "s:x", "type", "s:teleport"};
    static const char *const review_rating_0[] = {"customer", "s:x", "type", "s:review", "rating", "i:0"};
    static const char *const ok2[] = {"customer", "s:second", "type", "s:search"}; /* no ts: rcv */
    pack_event(&pk, ok1, 3);
    pack_event(&pk, no_customer, 2);
    pack_event(&pk, unknown_field, 3);
    pack_event(&pk, future, 3); /* rcv + 1 day + 1 ms */
    pack_event(&pk, bad_type, 2);
    msgpack_pack_int(&pk, 7); /* not a map */
    pack_event(&pk, review_rating_0, 3);
    pack_event(&pk, ok2, 2);

    logmsg m;
    msgpack_zone *zone;
    char why[200];
    int rc = decode(sb.data, sb.size, &m, &zone, why, sizeof why);
    ck_assert_msg(rc == LS_OK, "logmsg_decode: %d %s", rc, why);
    ck_assert_uint_eq(m.nevents, 2);
    ck_assert_uint_eq(m.invalid, 6);
    ck_assert_uint_eq(m.events[0].customer.len, 5);
    ck_assert_int_eq(memcmp(m.events[0].customer.ptr, "first", 5), 0);
    ck_assert_int_eq(m.events[0].ts_ms, T0);
    ck_assert_uint_eq(m.events[1].customer.len, 6);
    ck_assert_int_eq(memcmp(m.events[1].customer.ptr, "second", 6), 0);
    ck_assert_int_eq(m.events[1].type, EV_SEARCH);
    ck_assert_int_eq(m.events[1].ts_ms, RCV); /* validated with the gateway's clock */
    msgpack_zone_free(zone);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

static void assert_eparse(const char *buf, size_t len, const char *what)
{
    logmsg m;
    msgpack_zone *zone;
    char why[200];
    char *copy = malloc(len ? len : 1); /* exactly len bytes, for ASan */
    memcpy(copy, buf, len);
    int rc = decode(copy, len, &m, &zone, why, sizeof why);
    ck_assert_msg(rc == LS_EPARSE, "%s (%zu bytes): %d, want LS_EPARSE", what, len, rc);
    ck_assert_msg(why[0] != '\0', "%s: no reason", what);
    msgpack_zone_free(zone);
    free(copy);
}

/* A forget message names its customer and carries no events; one that
 * has both "forget" and "ev", neither, or an empty or non-string customer
 * is not a log message. */
START_TEST(a_forget_message_round_trips_and_bad_ones_are_refused)
{
    codec_writer w;
    msgpack_zone zone;
    logmsg lm;
    char why[128];
    ls_str who = {"bob", 3};
    codec_writer_init(&w);
    msgpack_zone_init(&zone, 4096);
    logmsg_forget(&w, 1700000000123LL, "node7", &who);
    ck_assert_int_eq(logmsg_decode(w.sb.data, w.sb.size, &zone, &lm, why, sizeof why), LS_OK);
    ck_assert_uint_eq(lm.forget.len, 3);
    ck_assert(memcmp(lm.forget.ptr, "bob", 3) == 0);
    ck_assert_uint_eq(lm.nevents, 0);
    ck_assert_int_eq(lm.rcv_ms, 1700000000123LL);
    ck_assert(lm.gateway.len == 5 && memcmp(lm.gateway.ptr, "node7", 5) == 0);

    static const char *const bad[] = {
        "{\"v\":1,\"rcv\":1,\"gw\":\"n\",\"forget\":\"bob\",\"ev\":[]}",
        "{\"v\":1,\"rcv\":1,\"gw\":\"n\"}",
        "{\"v\":1,\"rcv\":1,\"gw\":\"n\",\"forget\":\"\"}",
        "{\"v\":1,\"rcv\":1,\"gw\":\"n\",\"forget\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t jerr;
        json_t *j = json_loads(bad[i], 0, &jerr);
        ck_assert_ptr_nonnull(j);
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        const char *key;
        json_t *v;
        msgpack_pack_map(&pk, json_object_size(j));
        json_object_foreach(j, key, v) {
            msgpack_pack_str(&pk, strlen(key));
            msgpack_pack_str_body(&pk, key, strlen(key));
            if (json_is_integer(v))
                msgpack_pack_int64(&pk, json_integer_value(v));
            else if (json_is_string(v)) {
                msgpack_pack_str(&pk, strlen(json_string_value(v)));
                msgpack_pack_str_body(&pk, json_string_value(v), strlen(json_string_value(v)));
            } else
                msgpack_pack_array(&pk, 0);
        }
        msgpack_zone_clear(&zone);
        ck_assert_msg(logmsg_decode(sb.data, sb.size, &zone, &lm, why, sizeof why) == LS_EPARSE, "accepted %s",
                      bad[i]);
        msgpack_sbuffer_destroy(&sb);
        json_decref(j);
    }
    msgpack_zone_destroy(&zone);
    codec_writer_destroy(&w);
}
END_TEST

START_TEST(a_damaged_log_message_is_a_parse_error)
{
    originals o;
    originals_make(&o);
    codec_writer w;
    codec_writer_init(&w);
    logmsg_begin(&w, RCV, "gw-1");
    for (size_t i = 0; i < o.n; i++)
        logmsg_add(&w, &o.ev[i]);
    logmsg_finish(&w);

    /* every truncation */
    for (size_t n = 0; n < w.sb.size; n++)
        assert_eparse(w.sb.data, n, "a truncated message");
    /* trailing bytes */
    char *more = malloc(w.sb.size + 1);
    memcpy(more, w.sb.data, w.sb.size);
    more[w.sb.size] = (char)0xc0;
    assert_eparse(more, w.sb.size + 1, "a message and a nil");
    free(more);

    /* garbage: never-used bytes, and bytes from a fixed generator */
    assert_eparse("\xc1", 1, "0xc1");
    assert_eparse("\xc1\xc1\xc1\xc1", 4, "0xc1 x4");
    assert_eparse("\xdd\xff\xff\xff\xff", 5, "an array of 4 billion in 5 bytes");
    assert_eparse("\xdf\xff\xff\xff\xff\x00", 6, "a map of 4 billion in 6 bytes");
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int t = 0; t < 2000; t++) {
        char buf[64];
        size_t len = 1 + (size_t)(t % 64);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (char)x;
        }
        assert_eparse(buf, len, "random bytes");
    }
    /* flipping each byte of a valid message never crashes (the outcome
     * may be a message: a flipped digit of a string is still one) */
    for (size_t i = 0; i < w.sb.size; i++) {
        char *copy = malloc(w.sb.size);
        memcpy(copy, w.sb.data, w.sb.size);
        copy[i] ^= 0x5a;
        logmsg m;
        msgpack_zone *zone;
        char why[200];
        int rc = decode(copy, w.sb.size, &m, &zone, why, sizeof why);
        ck_assert(rc == LS_OK || rc == LS_EPARSE);
        msgpack_zone_free(zone);
        free(copy);
    }

    /* well-formed msgpack that is not a version-1 message */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
#define CASE(what, packing)                          \
    do {                                             \
        msgpack_sbuffer_clear(&sb);                  \
        packing;                                     \
        assert_eparse(sb.data, sb.size, what);       \
    } while (0)
    CASE("version 2", pack_head(&pk, 2, RCV, "gw", 0));
    CASE("version 0", pack_head(&pk, 0, RCV, "gw", 0));
    CASE("an array", msgpack_pack_array(&pk, 0));
    CASE("an integer", msgpack_pack_int(&pk, 1));
    CASE("a string", tu_pack_str(&pk, "v"));
    CASE("nil", msgpack_pack_nil(&pk));
    CASE("an empty map", msgpack_pack_map(&pk, 0));
    CASE("v a string", (msgpack_pack_map(&pk, 4), tu_pack_str(&pk, "v"), tu_pack_str(&pk, "1"),
                        tu_pack_str(&pk, "rcv"), msgpack_pack_int64(&pk, RCV), tu_pack_str(&pk, "gw"),
                        tu_pack_str(&pk, "g"), tu_pack_str(&pk, "ev"), msgpack_pack_array(&pk, 0)));
    CASE("no v", (msgpack_pack_map(&pk, 3), tu_pack_str(&pk, "rcv"), msgpack_pack_int64(&pk, RCV),
                  tu_pack_str(&pk, "gw"), tu_pack_str(&pk, "g"), tu_pack_str(&pk, "ev"), msgpack_pack_array(&pk, 0)));
    CASE("no rcv", (msgpack_pack_map(&pk, 3), tu_pack_str(&pk, "v"), msgpack_pack_int(&pk, 1),
                    tu_pack_str(&pk, "gw"), tu_pack_str(&pk, "g"), tu_pack_str(&pk, "ev"), msgpack_pack_array(&pk, 0)));
    CASE("gw not a string", (msgpack_pack_map(&pk, 4), tu_pack_str(&pk, "v"), msgpack_pack_int(&pk, 1),
                             tu_pack_str(&pk, "rcv"), msgpack_pack_int64(&pk, RCV), tu_pack_str(&pk, "gw"),
                             msgpack_pack_int(&pk, 3), tu_pack_str(&pk, "ev"), msgpack_pack_array(&pk, 0)));
    CASE("ev a map", (msgpack_pack_map(&pk, 4), tu_pack_str(&pk, "v"), msgpack_pack_int(&pk, 1),
                      tu_pack_str(&pk, "rcv"), msgpack_pack_int64(&pk, RCV), tu_pack_str(&pk, "gw"),
                      tu_pack_str(&pk, "g"), tu_pack_str(&pk, "ev"), msgpack_pack_map(&pk, 0)));
    CASE("no ev", (msgpack_pack_map(&pk, 3), tu_pack_str(&pk, "v"), msgpack_pack_int(&pk, 1),
                   tu_pack_str(&pk, "rcv"), msgpack_pack_int64(&pk, RCV), tu_pack_str(&pk, "gw"),
                   tu_pack_str(&pk, "g")));
#undef CASE
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 1, RCV, "gw", 1);
    for (int d = 0; d < 40; d++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    assert_eparse(sb.data, sb.size, "nested too deep");
    /* the same head with version 1 is read: the cases above fail for
     * what they change */
    msgpack_sbuffer_clear(&sb);
    pack_head(&pk, 1, RCV, "gw", 0);
    logmsg m;
    msgpack_zone *zone;
    char why[200];
    ck_assert_int_eq(decode(sb.data, sb.size, &m, &zone, why, sizeof why), LS_OK);
    msgpack_zone_free(zone);
    msgpack_sbuffer_destroy(&sb);
    codec_writer_destroy(&w);
    originals_free(&o);
}
END_TEST

/* ------------------------------------------------------------------ */
/* writer: log positions                                               */
/* ------------------------------------------------------------------ */

static const feature_decay DECAY = {3 * DAY, 30 * DAY};
static char dir[512];

static void setup(void)
{
    tu_tempdir(dir, sizeof dir);
}

static void teardown(void)
{
    store_fault_clear();
    tu_rmtree(dir);
}


/* A PULL-style job of one page view of customer (event id: NULL for
 * none) made from message seq of log partition part (seq 0: not a log
 * job). */
static writer_job *log_job(const char *customer, const char *event_id, uint32_t part, uint64_t seq, int64_t dt)
{
    ls_event ev;
    event_init(&ev);
    ev.type = EV_PAGE_VIEW;
    ev.has = EVF_TS;
    ev.ts_ms = T0 + dt;
    ev.customer = (ls_str){customer, strlen(customer)};
    if (event_id)
        ev.event_id = (ls_str){event_id, strlen(event_id)};
    writer_job *job = writer_job_new(&ev, 1, NULL, 0, NULL, 0, NULL, 0, 0);
    ck_assert_ptr_nonnull(job);
    job->reply = 0;
    job->received_ms = T0;
    job->log_part = part;
    job->log_seq = seq;
    return job;
}

static uint64_t position(store *s, uint32_t part)
{
    store_reader *r = NULL;
    uint64_t seq = 99;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(store_reader_log_position(r, part, &seq), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);
    return seq;
}

/* Page views of id and the length of its history; -1 when it has none. */
static int views(store *s, const char *id, size_t *hist_n)
{
    store_reader *r = NULL;
    ls_features f;
    history h;
    history_init(&h);
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    int rc = store_reader_get(r, id, strlen(id), &f);
    if (rc == LS_OK)
        ck_assert_int_eq(store_reader_get_history(r, id, strlen(id), &h), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);
    if (hist_n)
        *hist_n = h.n;
    history_free(&h);
    if (rc == LS_ENOTFOUND)
        return -1;
    ck_assert_int_eq(rc, LS_OK);
    return (int)f.count[EV_PAGE_VIEW];
}

static void apply_ok(service *svc, writer_job **jobs, size_t n)
{
    ck_assert_int_eq(writer_apply(svc, jobs, n), LS_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(jobs[i]->status, LS_OK);
}

static void free_jobs(writer_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        writer_job_free(&jobs[i]);
}

/* Seqs 1, 2, 3 of partition 3; then a group redelivering 2 and 3 with
 * 4, and seq 1 of partition 5: 4 events land, each partition's position
 * is its newest seq, the redelivered jobs are marked skipped. */
START_TEST(a_redelivered_log_message_is_applied_once)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    static const char *const ids[] = {NULL, "ev-1", "ev-2", "ev-3", "ev-4"};
    writer_job *jobs[4];
    for (uint64_t seq = 1; seq <= 3; seq++) {
        jobs[0] = log_job("alice", ids[seq], 3, seq, (int64_t)seq);
        apply_ok(&svc, jobs, 1);
        ck_assert_uint_eq(jobs[0]->accepted, 1);
        ck_assert_int_eq(jobs[0]->log_skip, 0);
        free_jobs(jobs, 1);
        ck_assert_uint_eq(position(svc.store, 3), seq);
    }
    ck_assert_uint_eq(position(svc.store, 5), 0);

    jobs[0] = log_job("alice", ids[2], 3, 2, 2);
    jobs[1] = log_job("alice", ids[3], 3, 3, 3);
    jobs[2] = log_job("alice", ids[4], 3, 4, 4);
    jobs[3] = log_job("bob", "ev-b1", 5, 1, 1);
    apply_ok(&svc, jobs, 4);
    ck_assert_int_eq(jobs[0]->log_skip, 1);
    ck_assert_int_eq(jobs[1]->log_skip, 1);
    ck_assert_int_eq(jobs[2]->log_skip, 0);
    ck_assert_int_eq(jobs[3]->log_skip, 0);
    ck_assert_uint_eq(jobs[0]->accepted, 0);
    ck_assert_uint_eq(jobs[1]->accepted, 0);
    ck_assert_uint_eq(jobs[2]->accepted, 1);
    ck_assert_uint_eq(jobs[3]->accepted, 1);
    free_jobs(jobs, 4);

    size_t hn;
    ck_assert_int_eq(views(svc.store, "alice", &hn), 4); /* not 6 */
    ck_assert_uint_eq(hn, 4);
    ck_assert_int_eq(views(svc.store, "bob", &hn), 1);
    ck_assert_uint_eq(position(svc.store, 3), 4);
    ck_assert_uint_eq(position(svc.store, 5), 1);
    ck_assert_uint_eq(position(svc.store, 4), 0);
    ck_assert_uint_eq(position(svc.store, 0), 0);
    ck_assert_uint_eq((uint64_t)atomic_load(&svc.stats.events_accepted), 5);
    tu_writer_rig_close(&svc);
}
END_TEST

/* Without event ids nothing but the position tells a redelivery: it is
 * skipped still, and a redelivered seq whose event changed (a new id) is
 * skipped by its seq, not looked at. */
START_TEST(a_redelivery_is_skipped_by_its_seq_not_by_event_ids)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[5];
    jobs[0] = log_job("carol", NULL, 3, 1, 1);
    jobs[1] = log_job("carol", NULL, 3, 2, 2);
    apply_ok(&svc, jobs, 2);
    free_jobs(jobs, 2);
    ck_assert_uint_eq(position(svc.store, 3), 2);

    jobs[0] = log_job("carol", NULL, 3, 1, 1);
    jobs[1] = log_job("carol", "new-id", 3, 2, 2);
    jobs[2] = log_job("carol", NULL, 3, 3, 3);
    jobs[3] = log_job("carol", NULL, 3, 3, 3); /* twice in one group */
    jobs[4] = log_job("carol", NULL, 3, 2, 2); /* behind the group's own newest */
    apply_ok(&svc, jobs, 5);
    const int want_skip[] = {1, 1, 0, 1, 1};
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(jobs[i]->log_skip == want_skip[i], "job %d: log_skip %d", i, jobs[i]->log_skip);
        ck_assert_uint_eq(jobs[i]->accepted, (unsigned)!want_skip[i]);
    }
    free_jobs(jobs, 5);
    ck_assert_int_eq(views(svc.store, "carol", NULL), 3);
    ck_assert_uint_eq(position(svc.store, 3), 3);
    tu_writer_rig_close(&svc);
}
END_TEST

/* The gap guard: a message past a hole (seq 4 when the store is at 2) is
 * never applied and does not move the position; it is counted, and once
 * the missing message comes, the two apply in order. */
START_TEST(a_log_message_past_a_hole_is_not_applied)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[3];
    jobs[0] = log_job("dave", "d-1", 2, 1, 1);
    jobs[1] = log_job("dave", "d-2", 2, 2, 2);
    apply_ok(&svc, jobs, 2);
    free_jobs(jobs, 2);

    jobs[0] = log_job("dave", "d-4", 2, 4, 4);
    apply_ok(&svc, jobs, 1);
    ck_assert_int_eq(jobs[0]->log_skip, 1);
    ck_assert_int_eq(jobs[0]->log_gap, 1);
    ck_assert_uint_eq(jobs[0]->accepted, 0);
    free_jobs(jobs, 1);
    ck_assert_uint_eq(position(svc.store, 2), 2);
    ck_assert_int_eq(views(svc.store, "dave", NULL), 2);
    ck_assert_uint_eq((uint64_t)atomic_load(&svc.stats.log_gaps_refused), 1);

    /* the hole inside one group: 3 then 5 (5 is past 4, still missing) */
    jobs[0] = log_job("dave", "d-3", 2, 3, 3);
    jobs[1] = log_job("dave", "d-5", 2, 5, 5);
    jobs[2] = log_job("dave", "d-4", 2, 4, 4);
    apply_ok(&svc, jobs, 3);
    ck_assert_int_eq(jobs[0]->log_skip, 0);
    ck_assert_int_eq(jobs[1]->log_gap, 1);
    ck_assert_int_eq(jobs[2]->log_skip, 0);
    free_jobs(jobs, 3);
    ck_assert_uint_eq(position(svc.store, 2), 4);
    ck_assert_int_eq(views(svc.store, "dave", NULL), 4);
    ck_assert_uint_eq((uint64_t)atomic_load(&svc.stats.log_gaps_refused), 2);
    tu_writer_rig_close(&svc);
}
END_TEST

/* A group whose commit fails leaves the position where it was, so the
 * same message applies when it comes again. */
START_TEST(an_aborted_group_leaves_the_position_unchanged)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[2];
    jobs[0] = log_job("dave", "d-1", 3, 1, 1);
    apply_ok(&svc, jobs, 1);
    free_jobs(jobs, 1);

    store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, -1); /* the disk is full */
    jobs[0] = log_job("dave", "d-2", 3, 2, 2);
    jobs[1] = log_job("erin", "e-1", 5, 1, 1);
    ck_assert_int_eq(writer_apply(&svc, jobs, 2), LS_EUNAVAIL);
    ck_assert_int_eq(jobs[0]->status, LS_EUNAVAIL);
    ck_assert_int_eq(jobs[1]->status, LS_EUNAVAIL);
    free_jobs(jobs, 2);
    ck_assert_uint_eq(position(svc.store, 3), 1);
    ck_assert_uint_eq(position(svc.store, 5), 0);
    ck_assert_int_eq(views(svc.store, "dave", NULL), 1);
    ck_assert_int_eq(views(svc.store, "erin", NULL), -1);

    store_fault_clear(); /* space is back: the same messages again */
    jobs[0] = log_job("dave", "d-2", 3, 2, 2);
    jobs[1] = log_job("erin", "e-1", 5, 1, 1);
    apply_ok(&svc, jobs, 2);
    ck_assert_int_eq(jobs[0]->log_skip, 0);
    ck_assert_int_eq(jobs[1]->log_skip, 0);
    ck_assert_uint_eq(jobs[0]->accepted, 1);
    ck_assert_uint_eq(jobs[1]->accepted, 1);
    free_jobs(jobs, 2);
    ck_assert_uint_eq(position(svc.store, 3), 2);
    ck_assert_uint_eq(position(svc.store, 5), 1);
    ck_assert_int_eq(views(svc.store, "dave", NULL), 2);
    ck_assert_int_eq(views(svc.store, "erin", NULL), 1);
    tu_writer_rig_close(&svc);
}
END_TEST

/* A log job that fails on its own is left out, and its message passed
 * (writer.c: not retried forever); the rest of the group lands. */
START_TEST(a_log_job_failing_alone_is_passed_and_the_rest_land)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    store_fault_set(STORE_FAULT_KEY, "poison", 0, 0);
    writer_job *jobs[3];
    jobs[0] = log_job("frank", "f-1", 3, 1, 1);
    jobs[1] = log_job("poison", "p-1", 3, 2, 2);
    jobs[2] = log_job("frank", "f-2", 3, 3, 3);
    ck_assert_int_eq(writer_apply(&svc, jobs, 3), LS_OK);
    ck_assert_int_eq(jobs[0]->status, LS_OK);
    ck_assert_int_ne(jobs[1]->status, LS_OK);
    ck_assert_int_eq(jobs[1]->failed_alone, 1);
    ck_assert_int_eq(jobs[2]->status, LS_OK);
    free_jobs(jobs, 3);
    ck_assert_uint_eq(position(svc.store, 3), 3);
    ck_assert_int_eq(views(svc.store, "frank", NULL), 2);
    ck_assert_int_eq(views(svc.store, "poison", NULL), -1);
    tu_writer_rig_close(&svc);
}
END_TEST

/* A message the shard could not read becomes a log job of no events
 * (shardlog.c): it moves the position, so it is passed, and a
 * redelivery of it is skipped like any other. */
START_TEST(a_log_job_of_no_events_moves_the_position)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[2];
    jobs[0] = writer_job_new(NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0);
    ck_assert_ptr_nonnull(jobs[0]);
    jobs[0]->received_ms = T0;
    jobs[0]->log_part = 2;
    jobs[0]->log_seq = 1;
    jobs[1] = log_job("ivy", NULL, 2, 1, 1); /* seq 1 again, now with an event */
    apply_ok(&svc, jobs, 2);
    ck_assert_uint_eq(jobs[0]->accepted, 0);
    ck_assert_int_eq(jobs[0]->log_skip, 0);
    ck_assert_int_eq(jobs[1]->log_skip, 1);
    free_jobs(jobs, 2);
    ck_assert_uint_eq(position(svc.store, 2), 1);
    ck_assert_int_eq(views(svc.store, "ivy", NULL), -1);
    tu_writer_rig_close(&svc);
}
END_TEST

/* The position is in the store: after a restart a redelivery is still
 * skipped and the next seq applies. */
START_TEST(the_position_survives_a_restart)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[2];
    jobs[0] = log_job("gina", NULL, 9, 1, 1);
    apply_ok(&svc, jobs, 1);
    free_jobs(jobs, 1);
    tu_writer_rig_close(&svc);

    tu_writer_rig_open(&svc, dir, &DECAY);
    ck_assert_uint_eq(position(svc.store, 9), 1);
    jobs[0] = log_job("gina", NULL, 9, 1, 1);
    jobs[1] = log_job("gina", NULL, 9, 2, 2);
    apply_ok(&svc, jobs, 2);
    ck_assert_int_eq(jobs[0]->log_skip, 1);
    ck_assert_int_eq(jobs[1]->log_skip, 0);
    free_jobs(jobs, 2);
    ck_assert_int_eq(views(svc.store, "gina", NULL), 2);
    ck_assert_uint_eq(position(svc.store, 9), 2);
    tu_writer_rig_close(&svc);
}
END_TEST

/* Single-node tracks (log_seq 0) never read or move a position, even
 * with log_part set, and apply however far a partition's position is. */
START_TEST(jobs_without_a_log_seq_never_touch_positions)
{
    service svc;
    tu_writer_rig_open(&svc, dir, &DECAY);
    writer_job *jobs[3];
    jobs[0] = log_job("hal", NULL, 0, 0, 1);
    jobs[1] = log_job("hal", NULL, 3, 0, 2);
    apply_ok(&svc, jobs, 2);
    free_jobs(jobs, 2);
    for (uint32_t p = 0; p < 8; p++)
        ck_assert_uint_eq(position(svc.store, p), 0);

    jobs[0] = log_job("hal", NULL, 3, 1, 3);
    apply_ok(&svc, jobs, 1);
    free_jobs(jobs, 1);
    jobs[0] = log_job("hal", NULL, 3, 0, 4);
    jobs[1] = log_job("hal", NULL, 0, 0, 5);
    jobs[2] = log_job("hal", NULL, 3, 0, 6);
    apply_ok(&svc, jobs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(jobs[i]->log_skip, 0);
        ck_assert_uint_eq(jobs[i]->accepted, 1);
    }
    free_jobs(jobs, 3);
    ck_assert_uint_eq(position(svc.store, 3), 1);
    ck_assert_uint_eq(position(svc.store, 0), 0);
    ck_assert_int_eq(views(svc.store, "hal", NULL), 6);
    tu_writer_rig_close(&svc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster_units");
    TCase *tc = tcase_create("partition");
    tcase_add_test(tc, the_reference_hash_is_fnv1a64_then_fmix64);
    tcase_add_test(tc, partition_hash_and_partition_of_match_the_published_vectors);
    tcase_add_test(tc, partition_of_is_in_range_deterministic_and_the_hash_mod_p);
    tcase_add_test(tc, partition_of_spreads_ids_evenly);
    suite_add_tcase(s, tc);

    tc = tcase_create("clustermap");
    tcase_add_test(tc, init_assigns_owner_p_mod_n_and_standby_the_next_node);
    tcase_add_test(tc, init_refuses_bad_names_and_counts);
    tcase_add_test(tc, move_raises_the_epoch_and_swaps_owner_and_standby);
    tcase_add_test(tc, same_holders_means_the_same_owner_and_the_same_standby);
    tcase_add_test(tc, the_map_json_is_the_documented_text_and_round_trips);
    tcase_add_test(tc, from_json_refuses_what_is_not_a_version_1_map);
    tcase_add_test(tc, from_json_refuses_duplicate_keys);
    tcase_add_test(tc, from_json_refuses_every_truncation_of_a_valid_map);
    tcase_add_test(tc, from_json_refuses_a_node_named_twice);
    tcase_add_test(tc, the_live_record_round_trips);
    tcase_add_test(tc, the_live_record_refuses_bad_fields_and_applied_keys);
    tcase_add_test(tc, the_live_record_refuses_applied_keys_strtoul_would_bend);
    tcase_add_test(tc, the_live_record_refuses_a_negative_applied_seq);
    suite_add_tcase(s, tc);

    tc = tcase_create("logmsg");
    tcase_add_test(tc, a_log_message_decodes_to_the_validated_events_field_by_field);
    tcase_add_test(tc, an_invalid_event_in_a_message_is_counted_and_skipped);
    tcase_add_test(tc, a_damaged_log_message_is_a_parse_error);
    tcase_add_test(tc, a_forget_message_round_trips_and_bad_ones_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("log_positions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_redelivered_log_message_is_applied_once);
    tcase_add_test(tc, a_redelivery_is_skipped_by_its_seq_not_by_event_ids);
    tcase_add_test(tc, a_log_message_past_a_hole_is_not_applied);
    tcase_add_test(tc, an_aborted_group_leaves_the_position_unchanged);
    tcase_add_test(tc, a_log_job_failing_alone_is_passed_and_the_rest_land);
    tcase_add_test(tc, a_log_job_of_no_events_moves_the_position);
    tcase_add_test(tc, the_position_survives_a_restart);
    tcase_add_test(tc, jobs_without_a_log_seq_never_touch_positions);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
