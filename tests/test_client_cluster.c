/* test_client_cluster.c -- the C client library given a list of endpoints.
 *
 * Against single nodes (always run): a list is checked, asks for the map
 * once and then talks to the node that answered, and one endpoint never
 * asks for it.  Against a 3-node cluster (scripts/cluster.sh: three
 * nats-servers and three `leadscore serve --nats`): a client given every
 * node routes each read to the owner of the customer's partition and
 * splits track batches and batched scores by node, so the cluster answers
 * exactly as a single node fed the same events, without one read refused
 * by a node that "does not hold" the partition; the CLI's --connect takes
 * the list too; and a read whose owner is stopped is answered by the
 * standby.  A node given a batched score of customers of partitions it
 * holds and of others (a client of one endpoint) answers its own from its
 * store: they see a track it just took, and its standby being stopped does
 * not fail the batch.  A node that gives a partition up (`cluster move`)
 * erases its customers from its store, and rebuilds it from the log when
 * it takes it back.  With every nats-server stopped, tracks sent a second
 * apart are each answered `unavailable` about 15 s after their own send.
 *
 * The cluster part needs nats-server and a leadscore built with NATS;
 * without them the other tests still run and the program exits 77 (ctest:
 * SKIP_RETURN_CODE 77), saying why. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <stdatomic.h>
#include <zmq.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leadscore/client.h"
#include "partition.h"
#include "testutil.h"

#define CLUSTER_SH LS_SOURCE_DIR "/scripts/cluster.sh"
#define NODES 3
#define PARTS 8
#define CUSTOMERS 50
#define EVENTS 200
#define BATCH 40

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */


/* The value of requests[op] in a stats reply of client c. */
static int64_t requests_of(ls_client *c, const char *op)
{
    void *reply;
    size_t len;
    msgpack_unpacked up;
    ck_assert_int_eq(ls_client_call(c, "stats", NULL, 0, 0, &reply, &len), LS_OK);
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    int64_t n = tu_get_int(tu_get(&up.data, "requests"), op);
    msgpack_unpacked_destroy(&up);
    free(reply);
    return n;
}

/* ------------------------------------------------------------------ */
/* Endpoint lists against single nodes                                 */
/* ------------------------------------------------------------------ */

static tu_server single;

static void single_setup(void)
{
    tu_server_start(&single, NULL);
}

static void single_teardown(void)
{
    tu_server_stop(&single);
}

START_TEST(endpoint_lists_are_checked)
{
    static const char *const bad[] = {"", ",", "tcp://127.0.0.1:9,,tcp://127.0.0.1:10", "tcp://127.0.0.1:9,",
                                      ",tcp://127.0.0.1:9", " , ", "not-an-endpoint"};
    ls_client *c = (ls_client *)&c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(ls_client_connect(&c, bad[i], 100) == LS_EINVAL, "\"%s\" was taken", bad[i]);
        ck_assert_ptr_null(c);
    }
    ck_assert_int_eq(ls_client_connect(&c, NULL, 100), LS_EINVAL);
    /* nobody there: a call ends in time, naming how many were asked */
    ck_assert_int_eq(ls_client_connect(&c, " tcp://127.0.0.1:9 ,\ttcp://127.0.0.1:10", 300), LS_OK);
    int64_t t0 = tu_now_ms();
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_ETIMEOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 3000);
    ck_assert_ptr_nonnull(strstr(ls_client_last_error(c), "any of the 2 endpoints"));
    ls_client_close(&c);
}
END_TEST

START_TEST(one_endpoint_never_asks_for_the_map)
{
    ls_client *c;
    ls_score s;
    ls_client_event ev = {.customer = "solo", .type = "product_view", .category = "bags"};
    ck_assert_int_eq(ls_client_connect(&c, single.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &ev, 1, NULL), LS_OK);
    ck_assert_int_eq(ls_client_score(c, "solo", &s), LS_OK);
    ck_assert_int_eq(s.known, 1);
    ls_score_free(&s);
    ck_assert_int_eq(requests_of(c, "cluster"), 0);
    ck_assert_int_eq(requests_of(c, "ping"), 1);
    ls_client_close(&c);
}
END_TEST

START_TEST(a_list_asks_once_and_then_talks_to_the_node_that_answered)
{
    char list[600];
    ls_client *c;
    ls_score s;
    ls_track_result tr;
    ls_client_event evs[2] = {{.customer = "ann", .type = "product_view", .category = "bags"},
                              {.customer = "ben", .type = "add_to_cart", .price = 12, .has = LS_HAS_PRICE}};
    /* the first endpoint has no server: the second answers the map request */
    snprintf(list, sizeof list, "tcp://127.0.0.1:9,%s", single.endpoint);
    ck_assert_int_eq(ls_client_connect(&c, list, 5000), LS_OK);
    int64_t t0 = tu_now_ms();
    ck_assert_int_eq(ls_client_track(c, evs, 2, &tr), LS_OK);
    ck_assert_int_lt(tu_now_ms() - t0, 2500); /* nobody waited for the missing one */
    ck_assert_int_eq(tr.accepted, 2);
    ck_assert_int_eq(ls_client_score(c, "ben", &s), LS_OK);
    ck_assert_int_eq(s.known, 1);
    ls_score_free(&s);
    void *reply;
    size_t len;
    ck_assert_int_eq(ls_client_profile(c, "ann", 0, &reply, &len), LS_OK);
    free(reply);
    ck_assert_int_eq(requests_of(c, "cluster"), 1);
    ck_assert_int_eq(requests_of(c, "track"), 1);
    ck_assert_int_eq(requests_of(c, "score"), 1);
    ls_client_close(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A 3-node cluster (unchecked fixture: up once, always down)          */
/* ------------------------------------------------------------------ */

static char cl_base[512], cl_dir[600], cl_ep[NODES][256], cl_list[NODES * 260];
static char up_failure[8192]; /* why cluster.sh up failed, or "" */

/* A stand-in cluster whose one node comes back under a new address at
 * every map (a rolling restart on a platform that gives each pod a new
 * IP): one ROUTER, bound to the two listed endpoints and, round by round,
 * to a fresh port the map names as the owner of the only partition. Each
 * score reply says the map moved on (map_epoch), so the client asks for
 * the map again before its next call. */
typedef struct {
    void *router;
    char node[128];         /* the endpoint the current map names */
    uint32_t epoch;
    atomic_int stop;
    atomic_int rounds;      /* scores answered */
} moving_node;

static void moving_rebind(moving_node *m)
{
    size_t len = sizeof m->node;
    if (m->node[0])
        ck_assert_int_eq(zmq_unbind(m->router, m->node), 0);
    ck_assert_int_eq(zmq_bind(m->router, "tcp://127.0.0.1:*"), 0);
    ck_assert_int_eq(zmq_getsockopt(m->router, ZMQ_LAST_ENDPOINT, m->node, &len), 0);
    m->epoch++;
}

static void moving_answer(moving_node *m, const char *op, uint64_t id, msgpack_packer *pk)
{
    int map = strcmp(op, "cluster") == 0;
    msgpack_pack_map(pk, map ? 8 : 5);
    tu_pack_str(pk, "ok");
    msgpack_pack_true(pk);
    tu_pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    if (map) {
        tu_pack_str(pk, "mode");
        tu_pack_str(pk, "cluster");
        tu_pack_str(pk, "hash");
        tu_pack_str(pk, PARTITION_HASH_NAME);
        tu_pack_str(pk, "partitions");
        msgpack_pack_uint32(pk, 1);
        tu_pack_str(pk, "epoch");
        msgpack_pack_uint32(pk, m->epoch);
        tu_pack_str(pk, "owners");
        msgpack_pack_array(pk, 1);
        tu_pack_str(pk, m->node);
        tu_pack_str(pk, "standbys");
        msgpack_pack_array(pk, 1);
        tu_pack_str(pk, "");
        return;
    }
    tu_pack_str(pk, "customer");
    tu_pack_str(pk, "x");
    tu_pack_str(pk, "score");
    msgpack_pack_double(pk, 0.5);
    tu_pack_str(pk, "map_epoch");
    msgpack_pack_uint32(pk, m->epoch + 1);
}

/* Answers `cluster` with the current map and `score` as the node it
 * names; after a score the node moves to a new port. */
static void *moving_node_main(void *arg)
{
    moving_node *m = arg;
    zmq_pollitem_t item = {.socket = m->router, .events = ZMQ_POLLIN};
    while (!m->stop) {
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        zmq_msg_t who;
        char empty[8], body[512], op[32] = "";
        zmq_msg_init(&who);
        zmq_msg_recv(&who, m->router, 0);
        zmq_recv(m->router, empty, sizeof empty, 0);
        int n = zmq_recv(m->router, body, sizeof body, 0);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        uint64_t id = 0;
        if (n > 0 && msgpack_unpack_next(&up, body, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *o = tu_get(&up.data, "op"), *rid = tu_get(&up.data, "id");
            if (o && o->type == MSGPACK_OBJECT_STR && o->via.str.size < sizeof op)
                memcpy(op, o->via.str.ptr, o->via.str.size);
            id = rid && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? rid->via.u64 : 0;
        }
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        moving_answer(m, op, id, &pk);
        zmq_msg_send(&who, m->router, ZMQ_SNDMORE);
        zmq_send(m->router, "", 0, ZMQ_SNDMORE);
        zmq_send(m->router, sb.data, sb.size, 0);
        msgpack_sbuffer_destroy(&sb);
        zmq_msg_close(&who);
        if (strcmp(op, "score") == 0) {
            m->rounds++;
            moving_rebind(m);
        }
    }
    return NULL;
}

/* How many file descriptors this process has open. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

START_TEST(a_client_keeps_working_while_its_nodes_change_address_for_ever)
{
    enum { ROUNDS = 300 }; /* past the 256 connections a client may hold at once */
    void *ctx = zmq_ctx_new();
    moving_node m = {.router = zmq_socket(ctx, ZMQ_ROUTER)};
    char listed[2][128], list[300];
    int zero = 0, fds_early = 0;
    zmq_setsockopt(m.router, ZMQ_LINGER, &zero, sizeof zero);
    for (int i = 0; i < 2; i++) {
        size_t len = sizeof listed[i];
        ck_assert_int_eq(zmq_bind(m.router, "tcp://127.0.0.1:*"), 0);
        ck_assert_int_eq(zmq_getsockopt(m.router, ZMQ_LAST_ENDPOINT, listed[i], &len), 0);
    }
    snprintf(list, sizeof list, "%s,%s", listed[0], listed[1]);
    moving_rebind(&m);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, moving_node_main, &m), 0);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, list, 3000), LS_OK);
    /* a call may time out on a loaded machine (the client then asks for
     * the map again and goes on); without the fix every call failed from
     * about the 254th map on */
    int failed = 0;
    for (int i = 0; i < ROUNDS + 5 && m.rounds < ROUNDS; i++) {
        ls_score sc;
        int rc = ls_client_score(c, "x", &sc);
        if (rc != LS_OK) {
            ck_assert_msg(++failed <= 3, "call %d: %s (%d calls failed)", i, ls_client_last_error(c), failed);
            continue;
        }
        ck_assert(sc.score == 0.5);
        ls_score_free(&sc);
        if (m.rounds == 10 && !fds_early)
            fds_early = open_fds();
    }
    /* each score went to the node's address of its round: a new one */
    ck_assert_int_eq(m.rounds, ROUNDS);
    /* the connections to the addresses given up were closed (a socket
     * holds at least one descriptor) */
    ck_assert_int_le(open_fds(), fds_early + 8);
    ls_client_close(&c);
    m.stop = 1;
    pthread_join(t, NULL);
    zmq_close(m.router);
    zmq_ctx_term(ctx);
}
END_TEST

static void read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f && fgets(buf, (int)cap, f))
        buf[strcspn(buf, "\r\n")] = '\0';
    if (f)
        fclose(f);
}

static void cluster_setup(void)
{
    static char out[16384], err[16384];
    char name[64];
    const char *tmp = getenv("TMPDIR");
    snprintf(cl_base, sizeof cl_base, "%s/leadscore-cc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(cl_base)) {
        snprintf(up_failure, sizeof up_failure, "mkdtemp failed");
        return;
    }
    snprintf(cl_dir, sizeof cl_dir, "%s/cluster", cl_base);
    snprintf(name, sizeof name, "cc%ld", (long)getpid());
    const char *argv[] = {"bash", CLUSTER_SH, "up", "--dir", cl_dir, "--nodes", "3", "--partitions", "8",
                          "--cluster", name, "--leadscore", LEADSCORE_BIN, "--timeout", "90", "--",
                          "--model", LS_SOURCE_DIR "/models/handset.json", NULL};
    if (tu_run_program_split(out, sizeof out, err, sizeof err, argv) != 0) {
        size_t n = strlen(out);
        snprintf(up_failure, sizeof up_failure, "scripts/cluster.sh up failed:\n%.3000s\n%.3000s",
                 out + (n > 3000 ? n - 3000 : 0), err);
        return;
    }
    cl_list[0] = '\0';
    for (int k = 0; k < NODES; k++) {
        char path[700];
        snprintf(path, sizeof path, "%s/node%d.ep", cl_dir, k + 1);
        read_line(path, cl_ep[k], sizeof cl_ep[k]);
        if (!cl_ep[k][0])
            snprintf(up_failure, sizeof up_failure, "no endpoint in %s", path);
        strcat(cl_list, k ? "," : "");
        strcat(cl_list, cl_ep[k]);
    }
}

static void cluster_teardown(void)
{
    static char out[16384], err[16384];
    const char *argv[] = {"bash", CLUSTER_SH, "down", "--dir", cl_dir, NULL};
    if (cl_dir[0] && tu_run_program_split(out, sizeof out, err, sizeof err, argv) != 0)
        fprintf(stderr, "scripts/cluster.sh down failed:\n%s\n%s\n", out, err);
    if (cl_base[0])
        tu_rmtree(cl_base);
}

static void require_cluster(void)
{
    ck_assert_msg(up_failure[0] == '\0', "%s", up_failure);
}

/* 1 when `cluster status --json` shows every partition ready with lag 0. */
static int caught_up(void)
{
    static char out[65536], err[4096];
    const char *argv[] = {"bash", CLUSTER_SH, "status", "--dir", cl_dir, "--json", NULL};
    if (tu_run_program_split(out, sizeof out, err, sizeof err, argv) != 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr), *parts = json_object_get(root, "parts");
    int ok = json_is_true(json_object_get(root, "ready")) && json_array_size(parts) == PARTS;
    for (size_t i = 0; ok && i < json_array_size(parts); i++)
        ok = json_integer_value(json_object_get(json_array_get(parts, i), "lag")) == 0 &&
             json_is_integer(json_object_get(json_array_get(parts, i), "lag"));
    json_decref(root);
    return ok;
}

static void wait_caught_up(void)
{
    int64_t deadline = tu_now_ms() + 30000;
    while (!caught_up()) {
        ck_assert_msg(tu_now_ms() < deadline, "the cluster did not catch up (lag 0 everywhere) within 30 s");
        usleep(200000);
    }
}

/* ---- the events ---- */

static char names[CUSTOMERS][16], ids[EVENTS][16], orders[EVENTS][16];
static ls_client_event events[EVENTS];
static int64_t base_ms, now_ms;

/* 200 events of 50 customers, interleaved, a minute apart, ending a day
 * ago; reads are made as of an hour after the last. */
static void make_events(void)
{
    static const char *const cats[] = {"shoes/running", "bags", "garden", "books/crime"};
    base_ms = ((int64_t)time(NULL) - 2 * 86400) / 60 * 60 * 1000;
    now_ms = base_ms + EVENTS * 60000LL + 3600000LL;
    for (int i = 0; i < CUSTOMERS; i++)
        snprintf(names[i], sizeof names[i], "cust-%02d", i);
    for (int i = 0; i < EVENTS; i++) {
        ls_client_event *e = &events[i];
        snprintf(ids[i], sizeof ids[i], "ev-%03d", i);
        snprintf(orders[i], sizeof orders[i], "o-%03d", i);
        *e = (ls_client_event){.customer = names[(i * 7 + i / CUSTOMERS) % CUSTOMERS], .event_id = ids[i],
                               .ts_ms = base_ms + i * 60000LL, .category = cats[i % 4], .session = "s"};
        switch ((i * 13) % 8) {
        case 0: case 1: case 2: e->type = "product_view"; break;
        case 3: e->type = "add_to_cart"; e->price = 10 + i % 90; e->has = LS_HAS_PRICE; break;
        case 4: e->type = "checkout"; break;
        case 5: e->type = "purchase"; e->price = 20 + i % 50; e->quantity = 1 + i % 3;
                e->has = LS_HAS_PRICE | LS_HAS_QUANTITY; e->order_id = orders[i]; break;
        case 6: e->type = "email_open"; break;
        default: e->type = "search"; break;
        }
    }
}

static void track_all(ls_client *c)
{
    for (int i = 0; i < EVENTS; i += BATCH) {
        ls_track_result tr;
        int rc = ls_client_track(c, events + i, BATCH, &tr);
        ck_assert_msg(rc == LS_OK, "track: %s", ls_client_last_error(c));
        ck_assert_int_eq(tr.accepted + tr.duplicates, BATCH);
        ck_assert_int_eq(tr.rejected, 0);
    }
}

/* A track batch over many nodes with bad events at indexes 1, 4 and 8
 * (the valid ones are new events for the comparison too). */
static void pack_mixed_batch(msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    tu_pack_str(&pk, "events");
    msgpack_pack_array(&pk, 10);
    for (int i = 0; i < 10; i++) {
        char id[32];
        int bad = i == 1 || i == 4 || i == 8;
        snprintf(id, sizeof id, "mixed-%d", i);
        msgpack_pack_map(&pk, 4);
        tu_pack_str(&pk, "customer");
        tu_pack_str(&pk, names[(i * 11) % CUSTOMERS]);
        tu_pack_str(&pk, "type");
        tu_pack_str(&pk, bad ? "no_such_type" : "product_view");
        tu_pack_str(&pk, "event_id");
        tu_pack_str(&pk, id);
        tu_pack_str(&pk, "ts");
        msgpack_pack_int64(&pk, base_ms + (EVENTS + i) * 60000LL);
    }
}

/* Sends the mixed batch through c; the reply (parsed) in up, its
 * msgpack kept in *reply. */
static void track_mixed(ls_client *c, msgpack_unpacked *up, void **reply)
{
    msgpack_sbuffer sb;
    size_t len;
    pack_mixed_batch(&sb);
    int rc = ls_client_call(c, "track", sb.data, sb.size, 1, reply, &len);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_msg(rc == LS_OK, "track: %s", ls_client_last_error(c));
    ck_assert(msgpack_unpack_next(up, *reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
}

/* ---- comparing replies ---- */

/* Two reply maps are the same apart from "id". */
static int same_but_id(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != MSGPACK_OBJECT_MAP || b->type != MSGPACK_OBJECT_MAP || a->via.map.size != b->via.map.size)
        return 0;
    for (uint32_t i = 0; i < a->via.map.size; i++) {
        const msgpack_object_kv *x = &a->via.map.ptr[i], *y = &b->via.map.ptr[i];
        if (!msgpack_object_equal(x->key, y->key))
            return 0;
        int is_id = x->key.type == MSGPACK_OBJECT_STR && x->key.via.str.size == 2 && !memcmp(x->key.via.str.ptr, "id", 2);
        if (!is_id && !msgpack_object_equal(x->val, y->val))
            return 0;
    }
    return 1;
}

static void assert_same_score(const ls_score *a, const ls_score *b)
{
    ck_assert_str_eq(a->customer, b->customer);
    ck_assert_int_eq(a->known, b->known);
    ck_assert_msg(a->score == b->score, "%s: score %.17g in the cluster, %.17g on one node", a->customer, a->score,
                  b->score);
    ck_assert_int_eq(a->score_100, b->score_100);
    ck_assert_str_eq(a->tier, b->tier);
    ck_assert_str_eq(a->model, b->model);
    ck_assert(a->p_alive == b->p_alive);
    ck_assert(a->expected_purchases_30d == b->expected_purchases_30d);
    ck_assert(a->clv == b->clv);
    ck_assert_str_eq(a->customer_type, b->customer_type);
    ck_assert_str_eq(a->phase, b->phase);
    ck_assert_int_eq(a->loyalty_points, b->loyalty_points);
    ck_assert_int_eq(a->n_actions, b->n_actions);
    for (size_t i = 0; i < a->n_actions; i++)
        ck_assert_str_eq(a->actions[i], b->actions[i]);
    ck_assert_int_eq(a->n_segments, b->n_segments);
}

/* Calls read (profile or recommend) of every customer on both and
 * compares the replies. */
static void assert_same_reads(ls_client *cl, ls_client *one, int recommend)
{
    for (int i = 0; i < CUSTOMERS; i++) {
        void *r[2];
        size_t len[2];
        ls_client *c[2] = {cl, one};
        msgpack_unpacked up[2];
        for (int k = 0; k < 2; k++) {
            int rc = recommend ? ls_client_recommend(c[k], names[i], 0, now_ms, &r[k], &len[k])
                               : ls_client_profile(c[k], names[i], now_ms, &r[k], &len[k]);
            ck_assert_msg(rc == LS_OK, "%s %s: %s", recommend ? "recommend" : "profile", names[i],
                          ls_client_last_error(c[k]));
            msgpack_unpacked_init(&up[k]);
            ck_assert(msgpack_unpack_next(&up[k], r[k], len[k], NULL) == MSGPACK_UNPACK_SUCCESS);
        }
        ck_assert_msg(same_but_id(&up[0].data, &up[1].data), "%s of %s differs from one node's",
                      recommend ? "recommend" : "profile", names[i]);
        for (int k = 0; k < 2; k++) {
            msgpack_unpacked_destroy(&up[k]);
            free(r[k]);
        }
    }
}

/* score of every customer in one batch ("customers") on both: the same
 * results in the same order. */
static void assert_same_batch(ls_client *cl, ls_client *one)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tu_pack_str(&pk, "customers");
    msgpack_pack_array(&pk, CUSTOMERS + 1);
    for (int i = CUSTOMERS - 1; i >= 0; i--)
        tu_pack_str(&pk, names[i]);
    tu_pack_str(&pk, "nobody-at-all"); /* unknown: the cold-start score */
    tu_pack_str(&pk, "now");
    msgpack_pack_int64(&pk, now_ms);
    void *r[2];
    size_t len[2];
    msgpack_unpacked up[2];
    ls_client *c[2] = {cl, one};
    for (int k = 0; k < 2; k++) {
        int rc = ls_client_call(c[k], "score", sb.data, sb.size, 2, &r[k], &len[k]);
        ck_assert_msg(rc == LS_OK, "batched score: %s", ls_client_last_error(c[k]));
        msgpack_unpacked_init(&up[k]);
        ck_assert(msgpack_unpack_next(&up[k], r[k], len[k], NULL) == MSGPACK_UNPACK_SUCCESS);
    }
    const msgpack_object *res = tu_get(&up[0].data, "results");
    ck_assert(res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == CUSTOMERS + 1);
    ck_assert_msg(same_but_id(&up[0].data, &up[1].data), "the batched score differs from one node's");
    for (int k = 0; k < 2; k++) {
        msgpack_unpacked_destroy(&up[k]);
        free(r[k]);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* `leadscore score --connect LIST --json --now T` for two customers gives
 * one node's scores; the readable form and profile work too. */
static void assert_cli_takes_the_list(ls_client *one)
{
    static char out[65536], err[8192];
    char now_s[32];
    snprintf(now_s, sizeof now_s, "%lld", (long long)(now_ms / 1000));
    const char *json_args[] = {"score", "--connect", cl_list, "--json", "--now", now_s, names[7], names[31], NULL};
    int rc = tu_run_cli_split(out, sizeof out, err, sizeof err, json_args);
    ck_assert_msg(rc == 0, "leadscore score --connect %s: exit %d: %s", cl_list, rc, err);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr), *results = json_object_get(root, "results");
    ck_assert_msg(json_array_size(results) == 2, "unexpected output: %s", out);
    for (int i = 0; i < 2; i++) {
        ls_score s;
        const char *who = i ? names[31] : names[7];
        ck_assert_int_eq(ls_client_score_at(one, who, now_ms, &s), LS_OK);
        json_t *r = json_array_get(results, (size_t)i);
        ck_assert_str_eq(json_string_value(json_object_get(r, "customer")), who);
        ck_assert(json_real_value(json_object_get(r, "score")) == s.score);
        ls_score_free(&s);
    }
    json_decref(root);
    const char *plain[] = {"score", "--connect", cl_list, "--now", now_s, names[12], NULL};
    rc = tu_run_cli_split(out, sizeof out, err, sizeof err, plain);
    ck_assert_msg(rc == 0 && strstr(out, "score: "), "leadscore score: exit %d: %s%s", rc, out, err);
    const char *profile[] = {"profile", "--connect", cl_list, "--now", now_s, names[13], NULL};
    rc = tu_run_cli_split(out, sizeof out, err, sizeof err, profile);
    ck_assert_msg(rc == 0 && strstr(out, "features"), "leadscore profile: exit %d: %s%s", rc, out, err);
}

/* The partition map as node 1 tells it: owners[p] and standbys[p]. */
static void read_map(char owners[PARTS][256], char standbys[PARTS][256])
{
    ls_client *c;
    void *reply;
    size_t len;
    msgpack_unpacked up;
    ck_assert_int_eq(ls_client_connect(&c, cl_ep[0], 10000), LS_OK);
    ck_assert_int_eq(ls_client_call(c, "cluster", NULL, 0, 0, &reply, &len), LS_OK);
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    ck_assert_int_eq(tu_get_int(&up.data, "partitions"), PARTS);
    const msgpack_object *o = tu_get(&up.data, "owners"), *s = tu_get(&up.data, "standbys");
    ck_assert(o && s && o->via.array.size == PARTS && s->via.array.size == PARTS);
    for (int p = 0; p < PARTS; p++) {
        snprintf(owners[p], 256, "%.*s", (int)o->via.array.ptr[p].via.str.size, o->via.array.ptr[p].via.str.ptr);
        snprintf(standbys[p], 256, "%.*s", (int)s->via.array.ptr[p].via.str.size, s->via.array.ptr[p].via.str.ptr);
    }
    msgpack_unpacked_destroy(&up);
    free(reply);
    ls_client_close(&c);
}

/* The node (0..NODES-1) of an endpoint of the map, or -1. */
static int node_of(const char *endpoint)
{
    for (int k = 0; k < NODES; k++)
        if (strcmp(cl_ep[k], endpoint) == 0)
            return k;
    return -1;
}

/* requests[op] of every node (-1 for a node in stopped[]). */
static void node_requests(const char *op, int64_t counts[NODES], const int stopped[NODES])
{
    for (int k = 0; k < NODES; k++) {
        ls_client *c;
        counts[k] = -1;
        if (stopped && stopped[k])
            continue;
        ck_assert_int_eq(ls_client_connect(&c, cl_ep[k], 10000), LS_OK);
        counts[k] = requests_of(c, op);
        ls_client_close(&c);
    }
}

/* Each node got as many requests of op since before[] as expect[] says:
 * no read went to a node that then had to pass it on. */
static void assert_requests(const char *op, const int64_t before[NODES], const int expect[NODES], const int stopped[NODES])
{
    int64_t after[NODES];
    node_requests(op, after, stopped);
    for (int k = 0; k < NODES; k++)
        ck_assert_msg(after[k] - before[k] == expect[k], "node%d got %lld %s requests, not %d", k + 1,
                      (long long)(after[k] - before[k]), op, expect[k]);
}

/* Counts in tracks[k] the requests node k gets of a track batch of
 * events of custs[0, n): one when it owns any of them. */
static void count_batch(char owners[PARTS][256], const char *const *custs, int n, int tracks[NODES])
{
    int hit[NODES] = {0};
    for (int i = 0; i < n; i++)
        hit[node_of(owners[partition_of(custs[i], strlen(custs[i]), PARTS)])] = 1;
    for (int k = 0; k < NODES; k++)
        tracks[k] += hit[k];
}

START_TEST(a_cluster_scores_as_one_node_does)
{
    require_cluster();
    tu_server ctl;
    ls_client *cl, *one;
    char owners[PARTS][256], standbys[PARTS][256];
    int tracks[NODES] = {0};
    int64_t tracks_before[NODES];
    make_events();
    read_map(owners, standbys);
    /* a track batch is split by owner: each node gets one part per batch
     * holding its customers (the first batch is sent twice) */
    for (int i = 0; i <= EVENTS; i += BATCH) {
        const char *custs[BATCH];
        for (int j = 0; j < BATCH; j++)
            custs[j] = events[(i + j) % EVENTS].customer;
        count_batch(owners, custs, BATCH, tracks);
    }
    const char *mixed[10];
    for (int i = 0; i < 10; i++)
        mixed[i] = names[(i * 11) % CUSTOMERS];
    count_batch(owners, mixed, 10, tracks);
    node_requests("track", tracks_before, NULL);
    tu_server_start(&ctl, NULL);
    ck_assert_int_eq(ls_client_connect(&cl, cl_list, 10000), LS_OK);
    ck_assert_int_eq(ls_client_connect(&one, ctl.endpoint, 10000), LS_OK);
    track_all(cl);
    track_all(one);

    /* a batch over several nodes with bad events: the merged reply lists
     * them at their indexes in the request, as one node does */
    msgpack_unpacked up[2];
    void *r[2];
    ls_client *c[2] = {cl, one};
    for (int k = 0; k < 2; k++) {
        msgpack_unpacked_init(&up[k]);
        track_mixed(c[k], &up[k], &r[k]);
    }
    ck_assert_int_eq(tu_get_int(&up[0].data, "accepted"), 7);
    ck_assert_int_eq(tu_get_int(&up[1].data, "accepted"), 7);
    const msgpack_object *rej = tu_get(&up[0].data, "rejected");
    ck_assert(rej && rej->type == MSGPACK_OBJECT_ARRAY && rej->via.array.size == 3);
    ck_assert_int_eq(tu_get_int(&rej->via.array.ptr[1], "index"), 4);
    ck_assert(msgpack_object_equal(*rej, *tu_get(&up[1].data, "rejected")));
    const msgpack_object *log = tu_get(&up[0].data, "log");
    ck_assert(log && log->type == MSGPACK_OBJECT_MAP && log->via.map.size >= 2);
    for (int k = 0; k < 2; k++) {
        msgpack_unpacked_destroy(&up[k]);
        free(r[k]);
    }

    /* the first batch again: resent event ids never count twice */
    ls_track_result tr;
    ck_assert_int_eq(ls_client_track(cl, events, BATCH, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted + tr.duplicates, BATCH);
    assert_requests("track", tracks_before, tracks, NULL);

    wait_caught_up();
    /* every read goes straight to its partition's owner (the nodes would
     * forward a misrouted one, so count where they arrive) */
    static const char *const ops[] = {"score", "profile", "recommend"};
    int owned[NODES] = {0};
    int64_t before[3][NODES];
    for (int i = 0; i < CUSTOMERS; i++) {
        int k = node_of(owners[partition_of(names[i], strlen(names[i]), PARTS)]);
        ck_assert_int_ge(k, 0);
        owned[k]++;
    }
    for (int o = 0; o < 3; o++)
        node_requests(ops[o], before[o], NULL);
    for (int i = 0; i < CUSTOMERS; i++) {
        ls_score a, b;
        int rc = ls_client_score_at(cl, names[i], now_ms, &a);
        ck_assert_msg(rc == LS_OK, "score %s in the cluster: %s", names[i], ls_client_last_error(cl));
        ck_assert_int_eq(ls_client_score_at(one, names[i], now_ms, &b), LS_OK);
        ck_assert_int_eq(a.known, 1);
        assert_same_score(&a, &b);
        ls_score_free(&a);
        ls_score_free(&b);
    }
    assert_same_reads(cl, one, 0);
    assert_same_reads(cl, one, 1);
    for (int o = 0; o < 3; o++)
        assert_requests(ops[o], before[o], owned, NULL);
    assert_same_batch(cl, one);
    /* not even a read the client retried on a fresh map was refused */
    ck_assert_msg(!strstr(ls_client_last_error(cl), "does not hold"), "a node refused: %s",
                  ls_client_last_error(cl));
    assert_cli_takes_the_list(one);
    ls_client_close(&cl);
    ls_client_close(&one);
    tu_server_stop(&ctl);
}
END_TEST

/* score of who[0..2] as of at in one batch: each as expected[i]. */
static void assert_batch_scores(ls_client *c, char who[3][32], int64_t at, const ls_score expected[3])
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    void *reply;
    size_t len;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tu_pack_str(&pk, "customers");
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        tu_pack_str(&pk, who[i]);
    tu_pack_str(&pk, "now");
    msgpack_pack_int64(&pk, at);
    int rc = ls_client_call(c, "score", sb.data, sb.size, 2, &reply, &len);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_msg(rc == LS_OK, "batched score with the owner stopped: %s", ls_client_last_error(c));
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *res = tu_get(&up.data, "results");
    ck_assert(res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == 3);
    for (int i = 0; i < 3; i++) {
        const msgpack_object *cust = tu_get(&res->via.array.ptr[i], "customer");
        ck_assert(cust && cust->type == MSGPACK_OBJECT_STR && cust->via.str.size == strlen(who[i]) &&
                  !memcmp(cust->via.str.ptr, who[i], cust->via.str.size));
        ck_assert(tu_get_double(&res->via.array.ptr[i], "score") == expected[i].score);
    }
    msgpack_unpacked_destroy(&up);
    free(reply);
}

START_TEST(a_read_whose_owner_is_stopped_goes_to_the_standby)
{
    require_cluster();
    char owners[PARTS][256], standbys[PARTS][256], who[3][32];
    ls_client *c;
    ls_score before[3];
    int64_t at = ((int64_t)time(NULL) + 60) * 1000; /* reads as of one time */
    read_map(owners, standbys);
    /* three customers whose partitions node1 owns (each has a standby) */
    for (int i = 0, n = 0; n < 3; i++) {
        snprintf(who[n], sizeof who[n], "fo-%d", i);
        uint32_t p = partition_of(who[n], strlen(who[n]), PARTS);
        if (strcmp(owners[p], cl_ep[0]) == 0 && standbys[p][0])
            n++;
    }
    ck_assert_int_eq(ls_client_connect(&c, cl_list, 10000), LS_OK);
    for (int i = 0; i < 3; i++) {
        ls_client_event ev = {.customer = who[i], .type = "add_to_cart", .price = 30 + i, .has = LS_HAS_PRICE,
                              .event_id = who[i]};
        ck_assert_msg(ls_client_track(c, &ev, 1, NULL) == LS_OK, "track: %s", ls_client_last_error(c));
    }
    wait_caught_up();
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ls_client_score_at(c, who[i], at, &before[i]), LS_OK);
    ls_client_close(&c);

    static char out[8192], err[8192];
    int stopped[NODES] = {1, 0, 0}, expect[NODES] = {0};
    int64_t counts[NODES];
    for (int i = 0; i < 3; i++) {
        int k = node_of(standbys[partition_of(who[i], strlen(who[i]), PARTS)]);
        ck_assert_int_ge(k, 1);
        expect[k]++;
    }
    node_requests("score", counts, stopped);
    const char *stop[] = {"bash", CLUSTER_SH, "stop", "node1", "--dir", cl_dir, NULL};
    ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, stop) == 0, "cluster.sh stop: %s%s", out, err);

    /* node1 is listed first and owns them: the standby answers; the first
     * read after the owner's timeout, the next ones at once (the client
     * asks a node that let a call time out second for a while) */
    ck_assert_int_eq(ls_client_connect(&c, cl_list, 1500), LS_OK);
    for (int i = 0; i < 3; i++) {
        ls_score s;
        int64_t t0 = tu_now_ms();
        int rc = ls_client_score_at(c, who[i], at, &s);
        ck_assert_msg(rc == LS_OK, "score %s with its owner stopped: %s", who[i], ls_client_last_error(c));
        ck_assert_int_lt(tu_now_ms() - t0, (i ? 1000 : 4000));
        ck_assert_int_eq(s.known, 1);
        ck_assert(s.score == before[i].score);
        ls_score_free(&s);
    }
    /* and a batch of them: one request to each of their standbys */
    int batch_to[NODES] = {0};
    for (int i = 0; i < 3; i++)
        batch_to[node_of(standbys[partition_of(who[i], strlen(who[i]), PARTS)])] = 1;
    for (int k = 0; k < NODES; k++)
        expect[k] += batch_to[k];
    int64_t t0 = tu_now_ms();
    assert_batch_scores(c, who, at, before);
    ck_assert_int_lt(tu_now_ms() - t0, 1000);
    for (int i = 0; i < 3; i++)
        ls_score_free(&before[i]);
    assert_requests("score", counts, expect, stopped); /* the standbys, with no hop */
    ls_client_close(&c);
}
END_TEST

/* ---- batches a node splits itself ---- */

/* The node index (0..NODES-1) of "nodeK", or -1. */
static int node_index(const char *name)
{
    int k = name && strncmp(name, "node", 4) == 0 ? atoi(name + 4) : 0;
    return k >= 1 && k <= NODES ? k - 1 : -1;
}

/* Each partition's owner and standby as node indexes, from `cluster
 * status --json`: by name, so a stopped node is still named. */
static void read_roles(int owner[PARTS], int standby[PARTS])
{
    static char out[65536], err[4096];
    const char *argv[] = {"bash", CLUSTER_SH, "status", "--dir", cl_dir, "--json", NULL};
    ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, argv) == 0, "cluster.sh status: %s", err);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr), *parts = json_object_get(root, "parts");
    ck_assert_msg(json_array_size(parts) == PARTS, "cluster.sh status --json: %s", out);
    for (int i = 0; i < PARTS; i++) {
        json_t *part = json_array_get(parts, (size_t)i);
        int p = (int)json_integer_value(json_object_get(part, "p"));
        ck_assert(p >= 0 && p < PARTS);
        owner[p] = node_index(json_string_value(json_object_get(part, "owner")));
        standby[p] = node_index(json_string_value(json_object_get(part, "standby")));
        ck_assert(owner[p] >= 0 && standby[p] >= 0);
    }
    json_decref(root);
}

/* A customer id "<prefix>-<n>" (n from *n on) whose partition has the
 * given owner and standby (-1: any). */
static void pick_customer(char *out, size_t cap, const char *prefix, int *n, const int owner[PARTS],
                          const int standby[PARTS], int want_owner, int want_standby)
{
    for (int tries = 0; tries < 10000; tries++, (*n)++) {
        snprintf(out, cap, "%s-%d", prefix, *n);
        uint32_t p = partition_of(out, strlen(out), PARTS);
        if ((want_owner < 0 || owner[p] == want_owner) && (want_standby < 0 || standby[p] == want_standby)) {
            (*n)++;
            return;
        }
    }
    ck_abort_msg("no customer id of the partitions wanted");
}

/* A customer id whose partition node k neither owns nor stands by for. */
static void pick_elsewhere(char *out, size_t cap, const char *prefix, int k, const int owner[PARTS],
                           const int standby[PARTS])
{
    for (int n = 0; n < 10000; n++) {
        snprintf(out, cap, "%s-%d", prefix, n);
        uint32_t p = partition_of(out, strlen(out), PARTS);
        if (owner[p] != k && standby[p] != k)
            return;
    }
    ck_abort_msg("no customer id of a partition node%d does not hold", k + 1);
}

/* score of who[0..n) in one batch through c: ok, and known[i] of each. */
static void batch_known(ls_client *c, const char *const *who, int n, int known[])
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    void *reply;
    size_t len;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tu_pack_str(&pk, "customers");
    msgpack_pack_array(&pk, (uint32_t)n);
    for (int i = 0; i < n; i++)
        tu_pack_str(&pk, who[i]);
    int rc = ls_client_call(c, "score", sb.data, sb.size, 1, &reply, &len);
    msgpack_sbuffer_destroy(&sb);
    ck_assert_msg(rc == LS_OK, "batched score of %s, ...: %s", who[0], ls_client_last_error(c));
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *res = tu_get(&up.data, "results");
    ck_assert(res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == (uint32_t)n);
    for (int i = 0; i < n; i++) {
        const msgpack_object *cust = tu_get(&res->via.array.ptr[i], "customer");
        ck_assert(cust && cust->type == MSGPACK_OBJECT_STR && cust->via.str.size == strlen(who[i]) &&
                  !memcmp(cust->via.str.ptr, who[i], cust->via.str.size));
        known[i] = tu_get_bool(&res->via.array.ptr[i], "known");
    }
    msgpack_unpacked_destroy(&up);
    free(reply);
}

/* Read-your-writes through the node that took the track holds for a
 * batch too: its customers of partitions that node holds (owned or stood
 * by for) are read from its own store, not forwarded with the rest to a
 * node that may not have applied the write yet. */
START_TEST(a_mixed_batch_reads_what_its_node_just_wrote)
{
    require_cluster();
    int owner[PARTS], standby[PARTS], n_own = 0, n_stood = 0, misses = 0;
    char own[32], stood[32], other[32];
    ls_client *c;
    read_roles(owner, standby);
    pick_elsewhere(other, sizeof other, "ryw-other", 0, owner, standby);
    ck_assert_int_eq(ls_client_connect(&c, cl_ep[0], 10000), LS_OK); /* node1 alone: it splits the batch */
    for (int i = 0; i < 40; i++) {
        pick_customer(own, sizeof own, "ryw-own", &n_own, owner, standby, 0, -1);
        pick_customer(stood, sizeof stood, "ryw-stood", &n_stood, owner, standby, -1, 0);
        ls_client_event ev[2] = {{.customer = own, .type = "purchase", .price = 10, .has = LS_HAS_PRICE},
                                 {.customer = stood, .type = "purchase", .price = 10, .has = LS_HAS_PRICE}};
        ck_assert_msg(ls_client_track(c, ev, 2, NULL) == LS_OK, "track: %s", ls_client_last_error(c));
        const char *who[3] = {own, other, stood};
        int known[3];
        batch_known(c, who, 3, known);
        misses += !known[0] + !known[2];
    }
    ck_assert_msg(misses == 0, "%d of 80 customers just tracked through node1 were unknown to a batched score "
                  "through node1", misses);
    ls_client_close(&c);
}
END_TEST

/* A batch through node3 of a customer of a partition it owns (its standby,
 * node1, is stopped) and one of node1's (answered by its standby, node2):
 * node3 answers its own customer itself, so the batch is answered. */
START_TEST(a_mixed_batch_is_answered_while_its_nodes_standby_is_stopped)
{
    require_cluster();
    static char out[8192], err[8192];
    int owner[PARTS], standby[PARTS], n = 0, m = 0, known[2];
    char mine[32], theirs[32];
    ls_client *c;
    read_roles(owner, standby);
    pick_customer(mine, sizeof mine, "sb-mine", &n, owner, standby, 2, 0);
    pick_customer(theirs, sizeof theirs, "sb-theirs", &m, owner, standby, 0, 1);
    const char *stop[] = {"bash", CLUSTER_SH, "stop", "node1", "--dir", cl_dir, NULL};
    ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, stop) == 0, "cluster.sh stop: %s%s", out, err);
    ck_assert_int_eq(ls_client_connect(&c, cl_ep[2], 8000), LS_OK); /* node3 alone: it splits the batch */
    ls_client_event ev = {.customer = mine, .type = "add_to_cart", .price = 5, .has = LS_HAS_PRICE};
    ck_assert_msg(ls_client_track(c, &ev, 1, NULL) == LS_OK, "track: %s", ls_client_last_error(c));
    const char *who[2] = {mine, theirs};
    int64_t t0 = tu_now_ms();
    batch_known(c, who, 2, known);
    ck_assert_int_lt(tu_now_ms() - t0, 2500); /* at most the wait for node1, then node2 answers */
    ck_assert_int_eq(known[0], 1);
    ls_client_close(&c);
}
END_TEST

/* ---- a partition given up ---- */

/* `leadscore cluster move P NODE` against the test cluster. */
static void cluster_move(int p, const char *node)
{
    static char out[8192], err[8192];
    char urls[1024], name[256], path[700], part[16];
    snprintf(path, sizeof path, "%s/nats.urls", cl_dir);
    read_line(path, urls, sizeof urls);
    snprintf(path, sizeof path, "%s/cluster.name", cl_dir);
    read_line(path, name, sizeof name);
    snprintf(part, sizeof part, "%d", p);
    const char *argv[] = {LEADSCORE_BIN, "cluster", "move", "--nats", urls, "--cluster", name, part, node, NULL};
    ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, argv) == 0, "cluster move %d %s: %s%s", p,
                  node, out, err);
}

/* The `rescore` rows (CSV, as of one time) of node k's store whose
 * customer is of partition p, in id order, into rows; returns how many. */
static int rows_of_partition(int k, int p, char *rows, size_t cap)
{
    static char out[4096], err[8192], line[8192];
    char data[700], file[700];
    snprintf(data, sizeof data, "%s/node%d", cl_dir, k + 1);
    snprintf(file, sizeof file, "%s/rescore-node%d.csv", cl_base, k + 1);
    const char *argv[] = {LEADSCORE_BIN, "rescore", "--data", data, "--model", LS_SOURCE_DIR "/models/handset.json",
                          "--now", "2100-01-01T00:00:00Z", "--quiet", "--out", file, NULL};
    ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, argv) == 0, "rescore --data %s: %s", data,
                  err);
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    rows[0] = '\0';
    for (int first = 1; fgets(line, sizeof line, f); first = 0) {
        size_t id_len = strcspn(line, ",");
        if (first || partition_of(line, id_len, PARTS) != (uint32_t)p)
            continue;
        ck_assert_int_lt(strlen(rows) + strlen(line), cap);
        strcat(rows, line);
        n++;
    }
    fclose(f);
    return n;
}

/* Waits (at most 30 s) until node k's store has `want` customers of
 * partition p, -1: as many, with the same rows, as node `like`'s.  Returns
 * how many it has at the end. */
static int wait_rows(int k, int p, int want, int like)
{
    static char rows[1 << 18], other[1 << 18];
    int64_t deadline = tu_now_ms() + 30000;
    for (;;) {
        int n = rows_of_partition(k, p, rows, sizeof rows);
        if (want >= 0 ? n == want : rows_of_partition(like, p, other, sizeof other) == n && !strcmp(rows, other))
            return n;
        if (tu_now_ms() > deadline)
            return n;
        usleep(300000);
    }
}

/* node2 owns a partition, node3 stands by; it moves to node1, so node3
 * gives it up and must erase its customers (a forgotten customer would
 * otherwise stay in a store that no longer applies the forget).  Moved on
 * to node3 it is rebuilt there from the log, row for row as node1 has
 * it, and node2, which gave it up in turn, erases it too. */
START_TEST(a_partition_given_up_is_erased_and_rebuilt_when_taken_back)
{
    require_cluster();
    static char rows[1 << 18];
    int owner[PARTS], standby[PARTS], n = 0;
    char who[6][32];
    ls_client *c;
    read_roles(owner, standby);
    pick_customer(who[0], sizeof who[0], "gone", &n, owner, standby, 1, 2);
    int p = (int)partition_of(who[0], strlen(who[0]), PARTS);
    for (int i = 1; i < 6; i++)
        do /* more of the same partition */
            pick_customer(who[i], sizeof who[i], "gone", &n, owner, standby, 1, 2);
        while (partition_of(who[i], strlen(who[i]), PARTS) != (uint32_t)p);
    ck_assert_int_eq(ls_client_connect(&c, cl_list, 10000), LS_OK);
    for (int i = 0; i < 6; i++) {
        ls_client_event ev[2] = {{.customer = who[i], .type = "add_to_cart", .price = 20 + i, .has = LS_HAS_PRICE},
                                 {.customer = who[i], .type = "page_view"}};
        ck_assert_msg(ls_client_track(c, ev, 2, NULL) == LS_OK, "track: %s", ls_client_last_error(c));
    }
    ls_client_close(&c);
    wait_caught_up();
    int before = rows_of_partition(2, p, rows, sizeof rows);
    ck_assert_int_ge(before, 6);

    cluster_move(p, "node1"); /* node1 owns it, node2 stands by: node3 gives it up */
    int left = wait_rows(2, p, 0, -1);
    ck_assert_msg(left == 0, "node3 gave partition %d up but its store still has %d of its customers (of %d)", p,
                  left, before);
    wait_caught_up();

    cluster_move(p, "node3"); /* node3 owns it again, node1 stands by: node2 gives it up */
    wait_caught_up();
    int back = wait_rows(2, p, -1, 0);
    ck_assert_msg(back == before, "node3 took partition %d back and has %d of its %d customers", p, back, before);
    ck_assert_int_eq(wait_rows(1, p, 0, -1), 0);
    ck_assert_int_eq(rows_of_partition(0, p, rows, sizeof rows), before);
}
END_TEST

/* ---- NATS down ---- */

typedef struct {
    int delay_ms;
    int rc;
    int64_t took_ms;
    char customer[32];
} late_track;

static void *send_late_track(void *arg)
{
    late_track *t = arg;
    ls_client *c = NULL;
    usleep((useconds_t)t->delay_ms * 1000);
    if (ls_client_connect(&c, cl_ep[2], 60000) != LS_OK) {
        t->rc = LS_EINTERNAL;
        return NULL;
    }
    ls_client_event ev = {.customer = t->customer, .type = "search"};
    int64_t t0 = tu_now_ms();
    t->rc = ls_client_track(c, &ev, 1, NULL);
    t->took_ms = tu_now_ms() - t0;
    ls_client_close(&c);
    return NULL;
}

/* The gateway resends a write for 15 s, counted from when the request
 * came: one that waited behind another's resends is not given 15 s more
 * (it was answered after up to 30 s). */
START_TEST(tracks_are_answered_unavailable_15_s_after_their_own_send_while_nats_is_down)
{
    require_cluster();
    static char out[8192], err[8192];
    late_track t[4];
    pthread_t th[4];
    for (int i = 1; i <= 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "nats-%d", i);
        const char *stop[] = {"bash", CLUSTER_SH, "stop", name, "--dir", cl_dir, NULL};
        ck_assert_msg(tu_run_program_split(out, sizeof out, err, sizeof err, stop) == 0, "cluster.sh stop %s: %s%s",
                      name, out, err);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = (late_track){.delay_ms = 1000 * i, .rc = 1};
        snprintf(t[i].customer, sizeof t[i].customer, "natsdown-%d", i);
        ck_assert_int_eq(pthread_create(&th[i], NULL, send_late_track, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(t[i].rc == LS_EUNAVAIL, "track %d with NATS down: %d", i, t[i].rc);
        ck_assert_msg(t[i].took_ms < 17500, "track %d sent %d s after the first was answered after %.1f s (15 s "
                      "budget)", i, i, (double)t[i].took_ms / 1000);
    }
}
END_TEST

/* ------------------------------------------------------------------ */

/* Why the cluster tests cannot run here, or NULL. */
static const char *cluster_unavailable(void)
{
    static char out[8192], err[8192];
    static const char *const places[] = {"/usr/sbin/nats-server", "/usr/local/sbin/nats-server",
                                         "/usr/local/bin/nats-server", "/usr/bin/nats-server"};
    const char *env = getenv("NATS_SERVER");
    int found = env && *env && access(env, X_OK) == 0;
    for (size_t i = 0; !found && i < sizeof places / sizeof places[0]; i++)
        found = access(places[i], X_OK) == 0;
    const char *which[] = {"sh", "-c", "command -v nats-server", NULL};
    if (!found && tu_run_program_split(out, sizeof out, err, sizeof err, which) != 0)
        return "nats-server is not installed (scripts/deps.sh installs it)";
    const char *help[] = {LEADSCORE_BIN, "cluster", "--help", NULL};
    if (tu_run_program_split(out, sizeof out, err, sizeof err, help) != 0 || strstr(out, "without NATS") ||
        strstr(err, "without NATS"))
        return "`leadscore cluster --help` failed: a build without NATS (libnats-dev)?";
    return NULL;
}

static Suite *suite(const char *no_cluster)
{
    Suite *s = suite_create("client_cluster");
    TCase *lists = tcase_create("lists");
    tcase_add_checked_fixture(lists, single_setup, single_teardown);
    tcase_set_timeout(lists, 60);
    tcase_add_test(lists, endpoint_lists_are_checked);
    tcase_add_test(lists, one_endpoint_never_asks_for_the_map);
    tcase_add_test(lists, a_list_asks_once_and_then_talks_to_the_node_that_answered);
    suite_add_tcase(s, lists);
    TCase *moving = tcase_create("moving");
    tcase_set_timeout(moving, 60);
    tcase_add_test(moving, a_client_keeps_working_while_its_nodes_change_address_for_ever);
    suite_add_tcase(s, moving);
    if (!no_cluster) {
        TCase *cl = tcase_create("cluster");
        tcase_add_unchecked_fixture(cl, cluster_setup, cluster_teardown);
        tcase_set_timeout(cl, 180);
        tcase_add_test(cl, a_cluster_scores_as_one_node_does);
        tcase_add_test(cl, a_mixed_batch_reads_what_its_node_just_wrote);
        tcase_add_test(cl, a_partition_given_up_is_erased_and_rebuilt_when_taken_back);
        /* last: these stop node1, then NATS */
        tcase_add_test(cl, a_read_whose_owner_is_stopped_goes_to_the_standby);
        tcase_add_test(cl, a_mixed_batch_is_answered_while_its_nodes_standby_is_stopped);
        tcase_add_test(cl, tracks_are_answered_unavailable_15_s_after_their_own_send_while_nats_is_down);
        suite_add_tcase(s, cl);
    }
    return s;
}

int main(void)
{
    const char *why = cluster_unavailable();
    int rc = tu_run_suite(suite(why));
    if (rc == EXIT_SUCCESS && why) {
        printf("skipped: the cluster tests (%s)\n", why);
        return 77;
    }
    return rc;
}
