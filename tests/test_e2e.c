/* test_e2e.c -- the service end to end over real ZeroMQ sockets on
 * loopback: every op, REQ and DEALER clients with many requests in flight,
 * big batches, idempotency, the PULL socket, bad requests of every kind,
 * and a drained stop. */
#define _GNU_SOURCE
#include <check.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "testutil.h"
#include "timefmt.h"

static tu_server srv;
static char data_dir[512], models_dir[512]; /* models_dir: where reload may read (model-dirs) */

static void setup(void)
{
    config cfg;
    tu_tempdir(data_dir, sizeof data_dir);
    tu_tempdir(models_dir, sizeof models_dir);
    tu_config(&cfg, data_dir);
    snprintf(cfg.model_dirs, sizeof cfg.model_dirs, "%s", models_dir);
    tu_server_start(&srv, &cfg);
}

static void teardown(void)
{
    tu_server_stop(&srv);
    tu_rmtree(data_dir);
    tu_rmtree(models_dir);
}

/* Packs {"op": op} plus nfields pairs the caller packs next. */
static void begin(msgpack_sbuffer *sb, msgpack_packer *pk, const char *op, uint32_t nfields)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(pk, nfields + 1);
    tu_pack_str(pk, "op");
    tu_pack_str(pk, op);
}

static void call(tu_conn *c, msgpack_sbuffer *sb, msgpack_unpacked *up)
{
    ck_assert_int_eq(tu_call_raw(c, sb->data, sb->size, up), 0);
    msgpack_sbuffer_destroy(sb);
}

static void profile_of(tu_conn *c, const char *customer, msgpack_unpacked *up)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, "profile", 1);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, customer);
    call(c, &sb, up);
    ck_assert(tu_get_bool(&up->data, "ok"));
}

static int64_t profile_feature(tu_conn *c, const char *customer, const char *feature)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    profile_of(c, customer, &up);
    double v = tu_get_double(tu_get(&up.data, "features"), feature);
    msgpack_unpacked_destroy(&up);
    return (int64_t)v;
}

/* One integer of the server's "stats" reply. */
static int64_t stats_int(tu_conn *c, const char *key)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    begin(&sb, &pk, "stats", 0);
    call(c, &sb, &up);
    int64_t n = tu_get_int(&up.data, key);
    msgpack_unpacked_destroy(&up);
    return n;
}

/* The server's events_queued once it has drained (polled for at most
 * 5 s): every job the writer took was counted out again, whatever its
 * outcome, so it must come back to exactly 0. */
static int64_t queued_after_drain(tu_conn *c)
{
    int64_t q = -1;
    for (int i = 0; i < 500 && q != 0; i++) {
        q = stats_int(c, "events_queued");
        if (q != 0)
            usleep(10000);
    }
    return q;
}

/* ------------------------------------------------------------------ */

START_TEST(ping_answers_with_version_and_echoes_id)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "ping", 1);
    tu_pack_str(&pk, "id");
    msgpack_pack_array(&pk, 2); /* any msgpack value comes back unchanged */
    msgpack_pack_int(&pk, 7);
    tu_pack_str(&pk, "x");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert(tu_get_bool(&up.data, "pong"));
    const msgpack_object *id = tu_get(&up.data, "id");
    ck_assert(id && id->type == MSGPACK_OBJECT_ARRAY && id->via.array.size == 2);
    ck_assert_int_eq(id->via.array.ptr[0].via.u64, 7);
    ck_assert(tu_get(&up.data, "version") != NULL);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(track_then_score_reflects_it)
{
    ls_client *c;
    ls_score before, after;
    ls_track_result tr;
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_score(c, "alice", &before), LS_OK);
    ck_assert_int_eq(before.known, 0);
    ck_assert_str_eq(before.model, "handset@0.1.0");
    ls_client_event evs[3] = {
        {.customer = "alice", .type = "product_view", .category = "shoes/running", .session = "s1"},
        {.customer = "alice", .type = "add_to_cart", .price = 40, .has = LS_HAS_PRICE, .session = "s1"},
        {.customer = "alice", .type = "checkout", .session = "s1"},
    };
    ck_assert_int_eq(ls_client_track(c, evs, 3, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 3);
    ck_assert_int_eq(tr.duplicates, 0);
    ck_assert_int_eq(tr.rejected, 0);
    ck_assert_int_eq(ls_client_score(c, "alice", &after), LS_OK);
    ck_assert_int_eq(after.known, 1);
    ck_assert_str_eq(after.customer, "alice");
    ck_assert(after.score > before.score);
    /* hand-computed with models/handset.json: all three events "now", so
     * each recent count is 1; sessions_recent 1; open cart 40:
     * logit = -3.6 + ln2*(0.8 + 1.0 + 0.35 + 0.3) + 0.12*ln(41) */
    double logit = -3.6 + log(2.0) * (0.8 + 1.0 + 0.35 + 0.3) + 0.12 * log(41.0);
    ck_assert_double_eq_tol(after.score, 1.0 / (1.0 + exp(-logit)), 1e-4);
    ck_assert_int_eq(after.score_100, (int)lround(100.0 / (1.0 + exp(-logit))));
    ck_assert_str_eq(after.tier, "warm");
    /* every other field of the reply: no order yet */
    ck_assert_str_eq(after.customer_type, "prospect");
    ck_assert_str_eq(after.phase, "prospect");
    ck_assert_double_eq(after.p_alive, 1.0);
    ck_assert(after.expected_purchases_30d > 0 && after.clv > 0);
    ck_assert_int_eq(after.loyalty_points, 0);
    ck_assert(after.loyalty_tier[0] != '\0');
    ck_assert_uint_eq(after.n_actions, 0);
    ck_assert_ptr_null(after.actions);
    ck_assert_uint_ge(after.n_segments, 1);
    for (size_t i = 0; i < after.n_segments; i++)
        ck_assert(after.segments[i].segment[0] && after.segments[i].reason[0] && after.segments[i].weight >= 0);
    ls_score_free(&before);
    ls_score_free(&after);
    ck_assert_ptr_null(after.segments);
    ls_score_free(&after); /* twice is harmless */

    /* a buyer has actions (no signup yet: account_invite) */
    ls_client_event buy = {.customer = "alice", .type = "purchase", .price = 40, .has = LS_HAS_PRICE, .order_id = "o1"};
    ck_assert_int_eq(ls_client_track(c, &buy, 1, &tr), LS_OK);
    ck_assert_int_eq(ls_client_score(c, "alice", &after), LS_OK);
    ck_assert_uint_ge(after.n_actions, 1);
    int invite = 0;
    for (size_t i = 0; i < after.n_actions; i++)
        invite |= strcmp(after.actions[i], "account_invite") == 0;
    ck_assert(invite);
    ck_assert_str_ne(after.customer_type, "prospect");
    ck_assert_str_eq(after.phase, "illusion");
    ls_score_free(&after);
    ls_client_close(&c);
}
END_TEST

/* A storefront whose clock runs ahead of the server's: a cart stamped
 * two minutes "later" is stored (events are taken up to a day ahead) and
 * the very next score sees it, as it sees a cart stamped at the server's
 * time; a read given `now` still sees only what happened by then. */
START_TEST(a_cart_stamped_ahead_of_the_servers_clock_counts_at_once)
{
    ls_client *c;
    ls_score ahead, level, asof;
    ls_track_result tr;
    int64_t now = timefmt_now_ms();
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    ls_client_event evs[2] = {
        {.customer = "ahead", .type = "add_to_cart", .price = 40, .has = LS_HAS_PRICE, .ts_ms = now + 120000},
        {.customer = "level", .type = "add_to_cart", .price = 40, .has = LS_HAS_PRICE, .ts_ms = now},
    };
    ck_assert_int_eq(ls_client_track(c, evs, 2, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 2);
    ck_assert_int_eq(ls_client_score(c, "ahead", &ahead), LS_OK);
    ck_assert_int_eq(ls_client_score(c, "level", &level), LS_OK);
    ck_assert_int_eq(ahead.known, 1);
    ck_assert_double_eq_tol(ahead.score, level.score, 1e-4); /* each read at its cart's time */
    ck_assert_int_eq(ls_client_score_at(c, "ahead", now + 1000, &asof), LS_OK);
    ck_assert_int_eq(asof.known, 0); /* as of a time before the cart */
    void *reply = NULL;
    size_t len = 0;
    msgpack_unpacked up;
    ck_assert_int_eq(ls_client_profile(c, "ahead", 0, &reply, &len), LS_OK);
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, reply, len, NULL) == MSGPACK_UNPACK_SUCCESS);
    ck_assert(tu_get_bool(&up.data, "known"));
    msgpack_unpacked_destroy(&up);
    free(reply);
    ls_score_free(&ahead);
    ls_score_free(&level);
    ls_score_free(&asof);
    ls_client_close(&c);
}
END_TEST

START_TEST(a_batch_of_ten_thousand_events_is_accepted)
{
    enum { N = 10000 };
    ls_client *c;
    ls_track_result tr;
    static ls_client_event evs[N];
    static char ids[N][16], custs[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "e%d", i);
        snprintf(custs[i], sizeof custs[i], "c%d", i % 100);
        evs[i] = (ls_client_event){.customer = custs[i], .type = "page_view", .event_id = ids[i]};
    }
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 30000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, evs, N, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, N);
    ck_assert_int_eq(tr.rejected, 0);
    ls_client_close(&c);
    tu_conn t;
    tu_connect(&t, srv.endpoint, ZMQ_DEALER);
    ck_assert_int_eq(profile_feature(&t, "c42", "page_view_count"), N / 100);
    tu_disconnect(&t);
}
END_TEST

START_TEST(repeated_event_ids_count_once)
{
    ls_client *c;
    ls_track_result tr;
    ls_client_event evs[3] = {
        {.customer = "bob", .type = "purchase", .event_id = "order-1", .value = 30, .has = LS_HAS_VALUE},
        {.customer = "bob", .type = "purchase", .event_id = "order-1", .value = 30, .has = LS_HAS_VALUE},
        {.customer = "bob", .type = "purchase", .event_id = "order-2", .value = 20, .has = LS_HAS_VALUE},
    };
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, evs, 3, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 2);
    ck_assert_int_eq(tr.duplicates, 1);
    ck_assert_int_eq(ls_client_track(c, evs, 3, &tr), LS_OK); /* a client retrying the batch */
    ck_assert_int_eq(tr.accepted, 0);
    ck_assert_int_eq(tr.duplicates, 3);
    ls_client_close(&c);
    tu_conn t;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&t, srv.endpoint, ZMQ_DEALER);
    profile_of(&t, "bob", &up);
    const msgpack_object *f = tu_get(&up.data, "features");
    ck_assert_int_eq((int)tu_get_double(f, "purchase_count"), 2);
    ck_assert_double_eq_tol(tu_get_double(f, "spend"), 50.0, 1e-9);
    ck_assert_int_eq(tu_get_int(f, "first_visit"), 0); /* orders only: no visit yet */
    ck_assert_int_gt(tu_get_int(f, "first_seen"), 0);
    ck_assert(tu_get_bool(&up.data, "known"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&t);
}
END_TEST

/* Sends n score requests without waiting, then matches every reply by id. */
static void pipelined(int type, int n)
{
    tu_conn c;
    char seen[256] = {0};
    tu_connect(&c, srv.endpoint, type);
    for (int i = 0; i < n; i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char cust[16];
        snprintf(cust, sizeof cust, "p%d", i);
        begin(&sb, &pk, "score", 2);
        tu_pack_str(&pk, "id");
        msgpack_pack_int(&pk, i);
        tu_pack_str(&pk, "customer");
        tu_pack_str(&pk, cust);
        if (type == ZMQ_DEALER) /* a REQ socket adds the delimiter itself */
            ck_assert_int_ge(zmq_send(c.sock, "", 0, ZMQ_SNDMORE), 0);
        ck_assert_int_ge(zmq_send(c.sock, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
        if (type == ZMQ_REQ)
            break; /* REQ allows one in flight: the loop below does the rest */
    }
    for (int i = 0; i < n; i++) {
        char buf[4096];
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        if (type == ZMQ_DEALER)
            ck_assert_int_ge(zmq_recv(c.sock, buf, sizeof buf, 0), 0);
        int len = zmq_recv(c.sock, buf, sizeof buf, 0);
        ck_assert_int_gt(len, 0);
        ck_assert(msgpack_unpack_next(&up, buf, (size_t)len, NULL) == MSGPACK_UNPACK_SUCCESS);
        int64_t id = tu_get_int(&up.data, "id");
        char want[16];
        snprintf(want, sizeof want, "p%d", (int)id);
        const msgpack_object *cust = tu_get(&up.data, "customer");
        ck_assert(id >= 0 && id < n && !seen[id]);
        ck_assert(cust && cust->via.str.size == strlen(want) && memcmp(cust->via.str.ptr, want, strlen(want)) == 0);
        seen[id] = 1;
        msgpack_unpacked_destroy(&up);
        if (type == ZMQ_REQ && i + 1 < n) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            char next[16];
            snprintf(next, sizeof next, "p%d", i + 1);
            begin(&sb, &pk, "score", 2);
            tu_pack_str(&pk, "id");
            msgpack_pack_int(&pk, i + 1);
            tu_pack_str(&pk, "customer");
            tu_pack_str(&pk, next);
            ck_assert_int_ge(zmq_send(c.sock, sb.data, sb.size, 0), 0);
            msgpack_sbuffer_destroy(&sb);
        }
    }
    tu_disconnect(&c);
}

START_TEST(dealer_with_one_hundred_in_flight_gets_every_reply)
{
    pipelined(ZMQ_DEALER, 100);
}
END_TEST

START_TEST(req_client_gets_every_reply)
{
    pipelined(ZMQ_REQ, 100);
}
END_TEST

/* Request i of the flood: score, profile or recommend of one of 40
 * customers at a fixed `now` (so every answer is reproducible), and every
 * 97th a score with a wrong type (an error answered by the same path). */
static void flood_request(int i, int64_t now, msgpack_sbuffer *sb)
{
    static const char *const ops[] = {"score", "profile", "recommend"};
    msgpack_packer pk;
    char cust[16];
    const char *op = ops[i % 3];
    snprintf(cust, sizeof cust, "fl%d", i % 40);
    begin(sb, &pk, op, strcmp(op, "recommend") == 0 ? 4 : 3);
    tu_pack_str(&pk, "id");
    msgpack_pack_int(&pk, i);
    tu_pack_str(&pk, "customer");
    if (i % 97 == 0)
        msgpack_pack_int(&pk, 5);
    else
        tu_pack_str(&pk, cust);
    tu_pack_str(&pk, "now");
    msgpack_pack_int64(&pk, now);
    if (strcmp(op, "recommend") == 0) {
        tu_pack_str(&pk, "k");
        msgpack_pack_int(&pk, 3);
    }
}

#define FLOOD 3000

/* Requests that queue up are answered on both cores: the loop hands
 * single-customer reads to the workers in batches.  Every reply must be
 * byte for byte the one the loop gives a lone request. */
START_TEST(reads_in_a_flood_answer_as_a_lone_request_does)
{
    ls_client *lc;
    tu_conn req, dealer;
    int64_t now = tu_now_ms() + 86400000;
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 10000), LS_OK);
    for (int i = 0; i < 40; i++) {
        char cust[16];
        snprintf(cust, sizeof cust, "fl%d", i);
        ls_client_event evs[2] = {
            {.customer = cust, .type = "product_view", .category = i % 2 ? "shoes/running" : "books", .session = "s"},
            {.customer = cust, .type = i % 3 ? "add_to_cart" : "purchase", .price = 10 + i, .has = LS_HAS_PRICE},
        };
        ck_assert_int_eq(ls_client_track(lc, evs, 2, NULL), LS_OK);
    }
    ls_client_close(&lc);
    /* the answers to lone requests, one at a time */
    char **want = calloc(FLOOD, sizeof *want);
    size_t *want_len = calloc(FLOOD, sizeof *want_len);
    tu_connect(&req, srv.endpoint, ZMQ_REQ);
    for (int i = 0; i < FLOOD; i++) {
        msgpack_sbuffer sb;
        char buf[8192];
        flood_request(i, now, &sb);
        ck_assert_int_ge(zmq_send(req.sock, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
        int len = zmq_recv(req.sock, buf, sizeof buf, 0);
        ck_assert_int_gt(len, 0);
        ck_assert_int_lt(len, (int)sizeof buf);
        want[i] = malloc((size_t)len);
        memcpy(want[i], buf, (size_t)len);
        want_len[i] = (size_t)len;
    }
    tu_disconnect(&req);
    /* the same requests all at once */
    tu_connect(&dealer, srv.endpoint, ZMQ_DEALER);
    for (int i = 0; i < FLOOD; i++) {
        msgpack_sbuffer sb;
        flood_request(i, now, &sb);
        ck_assert_int_ge(zmq_send(dealer.sock, "", 0, ZMQ_SNDMORE), 0);
        ck_assert_int_ge(zmq_send(dealer.sock, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    char *seen = calloc(FLOOD, 1);
    for (int n = 0; n < FLOOD; n++) {
        char buf[8192];
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        ck_assert_int_eq(zmq_recv(dealer.sock, buf, sizeof buf, 0), 0); /* the delimiter */
        int len = zmq_recv(dealer.sock, buf, sizeof buf, 0);
        ck_assert_int_gt(len, 0);
        ck_assert(msgpack_unpack_next(&up, buf, (size_t)len, NULL) == MSGPACK_UNPACK_SUCCESS);
        int64_t i = tu_get_int(&up.data, "id");
        ck_assert(i >= 0 && i < FLOOD && !seen[i]);
        seen[i] = 1;
        ck_assert_uint_eq((size_t)len, want_len[i]);
        ck_assert(memcmp(buf, want[i], (size_t)len) == 0);
        msgpack_unpacked_destroy(&up);
    }
    tu_disconnect(&dealer);
    /* and the workers did answer some of them */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&req, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "stats", 0);
    call(&req, &sb, &up);
    ck_assert_int_gt(tu_get_int(&up.data, "reads_by_workers"), 0);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&req);
    for (int i = 0; i < FLOOD; i++)
        free(want[i]);
    free(want);
    free(want_len);
    free(seen);
}
END_TEST

START_TEST(batched_score_keeps_order)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "score", 1);
    tu_pack_str(&pk, "customers");
    msgpack_pack_array(&pk, 3);
    tu_pack_str(&pk, "z");
    tu_pack_str(&pk, "a");
    tu_pack_str(&pk, "m");
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    const msgpack_object *r = tu_get(&up.data, "results");
    ck_assert(r && r->type == MSGPACK_OBJECT_ARRAY && r->via.array.size == 3);
    const char *want[3] = {"z", "a", "m"};
    for (int i = 0; i < 3; i++) {
        const msgpack_object *cu = tu_get(&r->via.array.ptr[i], "customer");
        ck_assert(cu->via.str.size == 1 && cu->via.str.ptr[0] == want[i][0]);
        ck_assert(!tu_get_bool(&r->via.array.ptr[i], "known"));
    }
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

static void assert_basis(const msgpack_object *reply, const char *want)
{
    const msgpack_object *b = tu_get(reply, "basis");
    ck_assert_msg(b && b->type == MSGPACK_OBJECT_STR && b->via.str.size == strlen(want) &&
                      memcmp(b->via.str.ptr, want, strlen(want)) == 0,
                  "explain's basis is not %s", want);
}

START_TEST(explain_contributions_sum_to_the_log_odds)
{
    ls_client *lc;
    ls_client_event ev = {.customer = "eve", .type = "add_to_cart", .price = 99, .has = LS_HAS_PRICE};
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(lc, &ev, 1, NULL), LS_OK);
    ls_client_close(&lc);
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "score", 2);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "eve");
    tu_pack_str(&pk, "explain");
    msgpack_pack_true(&pk);
    call(&c, &sb, &up);
    const msgpack_object *ex = tu_get(&up.data, "explain");
    ck_assert(ex && ex->type == MSGPACK_OBJECT_ARRAY && ex->via.array.size == 13);
    double sum = tu_get_double(&up.data, "intercept"), prev = INFINITY;
    for (uint32_t i = 0; i < ex->via.array.size; i++) {
        double ci = tu_get_double(&ex->via.array.ptr[i], "contribution");
        ck_assert(fabs(ci) <= prev + 1e-12); /* largest effect first */
        prev = fabs(ci);
        sum += ci;
    }
    double logit = tu_get_double(&up.data, "logit");
    ck_assert_double_eq_tol(sum, logit, 1e-9);
    ck_assert_double_eq_tol(tu_get_double(&up.data, "score"), 1.0 / (1.0 + exp(-logit)), 1e-12);
    assert_basis(&up.data, "logistic");
    msgpack_unpacked_destroy(&up);
    /* a customer known from orders alone, under a model without
     * orders_only_customers (handset): the logistic terms, as in v1
     * (test_model checks the repeat-purchase basis and its sum) */
    ls_client_event order = {.customer = "olga", .type = "purchase", .value = 40, .has = LS_HAS_VALUE};
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(lc, &order, 1, NULL), LS_OK);
    ls_client_close(&lc);
    begin(&sb, &pk, "score", 2);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "olga");
    tu_pack_str(&pk, "explain");
    msgpack_pack_true(&pk);
    call(&c, &sb, &up);
    assert_basis(&up.data, "logistic");
    ex = tu_get(&up.data, "explain");
    ck_assert(ex && ex->type == MSGPACK_OBJECT_ARRAY && ex->via.array.size >= 1);
    sum = tu_get_double(&up.data, "intercept");
    for (uint32_t i = 0; i < ex->via.array.size; i++)
        sum += tu_get_double(&ex->via.array.ptr[i], "contribution");
    logit = tu_get_double(&up.data, "logit");
    ck_assert_double_eq_tol(sum, logit, 1e-9);
    ck_assert_double_eq_tol(tu_get_double(&up.data, "score"), 1.0 / (1.0 + exp(-logit)), 1e-12);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(model_and_stats_ops_report)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "model", 0);
    call(&c, &sb, &up);
    const msgpack_object *name = tu_get(&up.data, "name");
    ck_assert(name && name->via.str.size == 7 && memcmp(name->via.str.ptr, "handset", 7) == 0);
    ck_assert_double_eq(tu_get_double(&up.data, "horizon_days"), 30);
    ck_assert(tu_get(&up.data, "features")->via.array.size == 13);
    const msgpack_object *oo = tu_get(&up.data, "orders_only_customers");
    ck_assert(oo && oo->type == MSGPACK_OBJECT_STR && oo->via.str.size == 8 && memcmp(oo->via.str.ptr, "logistic", 8) == 0);
    begin(&sb, &pk, "stats", 0);
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert_int_eq(tu_get_int(tu_get(&up.data, "requests"), "model"), 1);
    ck_assert(tu_get(tu_get(&up.data, "latency"), "model") != NULL);
    ck_assert_int_ge(tu_get_int(&up.data, "store_bytes"), 4096);
    ck_assert(tu_get_double(&up.data, "uptime_s") >= 0);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(rejected_events_are_listed_and_the_rest_stored)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "track", 1);
    tu_pack_str(&pk, "events");
    msgpack_pack_array(&pk, 4);
    msgpack_pack_map(&pk, 2); /* 0: fine */
    tu_pack_str(&pk, "customer"); tu_pack_str(&pk, "carl");
    tu_pack_str(&pk, "type"); tu_pack_str(&pk, "page_view");
    msgpack_pack_map(&pk, 2); /* 1: unknown type */
    tu_pack_str(&pk, "customer"); tu_pack_str(&pk, "carl");
    tu_pack_str(&pk, "type"); tu_pack_str(&pk, "teleport");
    msgpack_pack_map(&pk, 3); /* 2: price not a number */
    tu_pack_str(&pk, "customer"); tu_pack_str(&pk, "carl");
    tu_pack_str(&pk, "type"); tu_pack_str(&pk, "add_to_cart");
    tu_pack_str(&pk, "price"); tu_pack_str(&pk, "cheap");
    msgpack_pack_int(&pk, 5); /* 3: not a map */
    call(&c, &sb, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert_int_eq(tu_get_int(&up.data, "accepted"), 1);
    const msgpack_object *rej = tu_get(&up.data, "rejected");
    ck_assert(rej && rej->via.array.size == 3);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_int_eq(tu_get_int(&rej->via.array.ptr[i], "index"), i + 1);
        const msgpack_object *code = tu_get(&rej->via.array.ptr[i], "code");
        ck_assert(code->via.str.size == 11 && memcmp(code->via.str.ptr, "bad_request", 11) == 0);
    }
    msgpack_unpacked_destroy(&up);
    ck_assert_int_eq(profile_feature(&c, "carl", "page_view_count"), 1);
    ck_assert_int_eq(profile_feature(&c, "carl", "add_to_cart_count"), 0);
    ck_assert_int_eq(queued_after_drain(&c), 0);
    tu_disconnect(&c);
}
END_TEST

/* v1 makes a review's rating optional: a star-less review is stored and
 * counted, outside the ratings; a rating out of 1-5 is still refused. */
START_TEST(a_review_without_a_rating_is_stored_outside_the_ratings)
{
    ls_client *c;
    ls_track_result tr;
    tu_conn t;
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    ls_client_event evs[3] = {
        {.customer = "rita", .type = "review", .category = "books"},
        {.customer = "rita", .type = "review", .rating = 5, .has = LS_HAS_RATING},
        {.customer = "rita", .type = "review", .rating = 9, .has = LS_HAS_RATING},
    };
    ck_assert_int_eq(ls_client_track(c, evs, 3, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 2);
    ck_assert_int_eq(tr.rejected, 1);
    /* a late event replays the history: the star-less review stays one */
    ls_client_event late = {.customer = "rita", .type = "page_view", .ts_ms = timefmt_now_ms() - 86400000};
    ck_assert_int_eq(ls_client_track(c, &late, 1, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 1);
    ls_client_close(&c);
    tu_connect(&t, srv.endpoint, ZMQ_DEALER);
    ck_assert_int_eq(profile_feature(&t, "rita", "review_count"), 2);
    ck_assert_int_eq(profile_feature(&t, "rita", "avg_rating"), 5);
    ck_assert_int_eq(profile_feature(&t, "rita", "good_reviews"), 1);
    ck_assert_int_eq(profile_feature(&t, "rita", "bad_reviews"), 0);
    tu_disconnect(&t);
}
END_TEST

/* Sends raw bytes and checks the error code of the reply. */
static void expect_error(tu_conn *c, const void *body, size_t len, const char *code)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(tu_call_raw(c, body, len, &up), 0);
    ck_assert_msg(tu_is_error(&up.data, code), "expected error %s", code);
    msgpack_unpacked_destroy(&up);
}

/* Sends raw bytes and checks the reply's error code and message. */
/* Fails the test unless reply's error message is exactly want. */
static void assert_error_message(const msgpack_object *reply, const char *want)
{
    const msgpack_object *why = tu_get(tu_get(reply, "error"), "message");
    ck_assert(why && why->type == MSGPACK_OBJECT_STR);
    ck_assert_msg(why->via.str.size == strlen(want) && memcmp(why->via.str.ptr, want, strlen(want)) == 0,
                  "got \"%.*s\", want \"%s\"", (int)why->via.str.size, why->via.str.ptr, want);
}

static void expect_message(tu_conn *c, const void *body, size_t len, const char *code, const char *want)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert_int_eq(tu_call_raw(c, body, len, &up), 0);
    ck_assert_msg(tu_is_error(&up.data, code), "expected error %s", code);
    assert_error_message(&up.data, want);
    msgpack_unpacked_destroy(&up);
}

START_TEST(malformed_requests_get_their_codes_and_the_server_carries_on)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    expect_error(&c, "\xc1\xff garbage", 10, "bad_request");          /* not msgpack */
    expect_error(&c, "\x93\x01\x02\x03", 4, "bad_request");           /* an array, not a map */
    expect_error(&c, "\xdd\xff\xff\xff\xff", 5, "bad_request");       /* claims 4 billion items */
    expect_error(&c, "\x81\xa2op", 4, "bad_request");                 /* truncated */
    begin(&sb, &pk, "fly", 0);
    expect_error(&c, sb.data, sb.size, "unknown_op");
    msgpack_sbuffer_destroy(&sb);
    /* an op name with a NUL inside is shown whole, the NUL as '?' (it once
     * read as "ping") */
    static const char nul_op[] = "\x81\xa2op\xa6ping\0x";
    msgpack_unpacked shown;
    msgpack_unpacked_init(&shown);
    ck_assert_int_eq(tu_call_raw(&c, nul_op, sizeof nul_op - 1, &shown), 0);
    ck_assert(tu_is_error(&shown.data, "unknown_op"));
    const msgpack_object *shown_why = tu_get(tu_get(&shown.data, "error"), "message");
    ck_assert(shown_why && shown_why->type == MSGPACK_OBJECT_STR && shown_why->via.str.size == 19 &&
              memcmp(shown_why->via.str.ptr, "unknown op \"ping?x\"", 19) == 0);
    msgpack_unpacked_destroy(&shown);
    begin(&sb, &pk, "score", 1); /* wrong type */
    tu_pack_str(&pk, "customer");
    msgpack_pack_int(&pk, 12);
    expect_error(&c, sb.data, sb.size, "bad_request");
    msgpack_sbuffer_destroy(&sb);
    /* a bad element of "customers" is named with its index */
    msgpack_unpacked named;
    msgpack_unpacked_init(&named);
    begin(&sb, &pk, "score", 1);
    tu_pack_str(&pk, "customers");
    msgpack_pack_array(&pk, 3);
    tu_pack_str(&pk, "b");
    msgpack_pack_int(&pk, 5);
    msgpack_pack_nil(&pk);
    ck_assert_int_eq(tu_call_raw(&c, sb.data, sb.size, &named), 0);
    ck_assert(tu_is_error(&named.data, "bad_request"));
    const msgpack_object *why = tu_get(tu_get(&named.data, "error"), "message");
    ck_assert(why && why->type == MSGPACK_OBJECT_STR);
    static const char want_why[] = "\"customers[1]\" must be a non-empty string";
    ck_assert_msg(why->via.str.size == sizeof want_why - 1 &&
                      memcmp(why->via.str.ptr, want_why, sizeof want_why - 1) == 0,
                  "%.*s", (int)why->via.str.size, why->via.str.ptr);
    msgpack_unpacked_destroy(&named);
    msgpack_sbuffer_destroy(&sb);
    /* "now" is an integer >= 0: a negative one is told so, as a string is */
    static const char *const now_ops[] = {"score", "recommend"};
    static const char now_why[] = "\"now\" must be a non-negative integer (Unix epoch milliseconds)";
    for (int i = 0; i < 4; i++) {
        begin(&sb, &pk, now_ops[i % 2], 2);
        tu_pack_str(&pk, "customer");
        tu_pack_str(&pk, "a");
        tu_pack_str(&pk, "now");
        if (i < 2)
            msgpack_pack_int(&pk, -1);
        else
            tu_pack_str(&pk, "yesterday");
        expect_message(&c, sb.data, sb.size, "bad_request", now_why);
        msgpack_sbuffer_destroy(&sb);
    }
    begin(&sb, &pk, "ping", 1); /* unknown field */
    tu_pack_str(&pk, "colour");
    tu_pack_str(&pk, "red");
    expect_error(&c, sb.data, sb.size, "bad_request");
    msgpack_sbuffer_destroy(&sb);
    char longid[300];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    begin(&sb, &pk, "score", 1); /* oversize string */
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, longid);
    expect_error(&c, sb.data, sb.size, "too_large");
    msgpack_sbuffer_destroy(&sb);
    begin(&sb, &pk, "track", 1); /* too many events */
    tu_pack_str(&pk, "events");
    msgpack_pack_array(&pk, 10001);
    for (int i = 0; i < 10001; i++)
        msgpack_pack_nil(&pk);
    expect_error(&c, sb.data, sb.size, "too_large");
    msgpack_sbuffer_destroy(&sb);
    size_t big = (1u << 20) + 10; /* frame over max-frame */
    char *huge = calloc(1, big);
    huge[0] = (char)0x80;
    expect_error(&c, huge, big, "too_large");
    free(huge);
    /* nesting bomb: 100 nested arrays */
    char bomb[120];
    bomb[0] = (char)0x81;
    bomb[1] = (char)0xa1;
    bomb[2] = 'x';
    memset(bomb + 3, 0x91, 100);
    bomb[103] = (char)0xc0;
    expect_error(&c, bomb, 104, "bad_request");
    /* a multi-frame request */
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    begin(&sb, &pk, "ping", 0);
    zmq_send(c.sock, "", 0, ZMQ_SNDMORE);
    zmq_send(c.sock, sb.data, sb.size, ZMQ_SNDMORE);
    zmq_send(c.sock, sb.data, sb.size, 0);
    char buf[4096];
    ck_assert_int_ge(zmq_recv(c.sock, buf, sizeof buf, 0), 0);
    int n = zmq_recv(c.sock, buf, sizeof buf, 0);
    ck_assert(n > 0 && msgpack_unpack_next(&up, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    /* and the server still answers */
    ck_assert_int_eq(tu_call_raw(&c, sb.data, sb.size, &up), 0);
    ck_assert(tu_get_bool(&up.data, "pong"));
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(pull_socket_batches_are_stored)
{
    void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 5000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(push, srv.pull_endpoint), 0);
    for (int b = 0; b < 20; b++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 50); /* a bare array of events */
        for (int i = 0; i < 50; i++) {
            msgpack_pack_map(&pk, 2);
            tu_pack_str(&pk, "customer");
            tu_pack_str(&pk, "puller");
            tu_pack_str(&pk, "type");
            tu_pack_str(&pk, "product_view");
        }
        ck_assert_int_ge(zmq_send(push, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    zmq_close(push);
    zmq_ctx_term(ctx);
    tu_conn c;
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    int64_t n = 0;
    for (int i = 0; i < 500 && n < 1000; i++) { /* <= 5 s */
        n = profile_feature(&c, "puller", "product_view_count");
        if (n < 1000)
            usleep(10000);
    }
    ck_assert_int_eq(n, 1000);
    ck_assert_int_eq(queued_after_drain(&c), 0);
    tu_disconnect(&c);
}
END_TEST

START_TEST(stop_drains_and_acknowledged_events_survive_a_restart)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    tu_server_start(&s2, &cfg);
    ls_client *c;
    ls_track_result tr;
    ck_assert_int_eq(ls_client_connect(&c, s2.endpoint, 10000), LS_OK);
    int acked = 0;
    for (int i = 0; i < 50; i++) {
        ls_client_event ev = {.customer = "dora", .type = "email_open"};
        if (ls_client_track(c, &ev, 1, &tr) == LS_OK)
            acked += (int)tr.accepted;
    }
    ls_client_close(&c);
    tu_server_stop(&s2);
    tu_server_start(&s2, &cfg);
    tu_conn t;
    tu_connect(&t, s2.endpoint, ZMQ_DEALER);
    ck_assert_int_eq(acked, 50);
    ck_assert_int_eq(profile_feature(&t, "dora", "email_open_count"), 50);
    tu_disconnect(&t);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST


START_TEST(old_history_resent_still_dedupes)
{
    /* event times from 2001: the dedupe window counts from when the server
     * received the key, not from the event's own time */
    ls_client *c;
    ls_track_result tr;
    ls_client_event evs[2] = {
        {.customer = "hist", .type = "purchase", .event_id = "h-1", .ts_ms = 978307200000LL, .value = 10, .has = LS_HAS_VALUE},
        {.customer = "hist", .type = "purchase", .event_id = "h-2", .ts_ms = 978393600000LL, .value = 15, .has = LS_HAS_VALUE},
    };
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, evs, 2, &tr), LS_OK);
    ck_assert_int_eq(tr.accepted, 2);
    ck_assert_int_eq(ls_client_track(c, evs, 2, &tr), LS_OK);
    ck_assert_int_eq(tr.duplicates, 2);
    ls_client_close(&c);
}
END_TEST

START_TEST(window_keys_pruned_history_keeps_ids)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.dedupe_window_ms = 300;
    tu_server_start(&s2, &cfg);
    ls_client *c;
    ls_track_result tr;
    ls_client_event ev = {.customer = "win", .type = "page_view", .event_id = "w-1"};
    ck_assert_int_eq(ls_client_connect(&c, s2.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &ev, 1, &tr), LS_OK);
    ck_assert_int_eq(ls_client_track(c, &ev, 1, &tr), LS_OK);
    ck_assert_int_eq(tr.duplicates, 1);
    /* the writer prunes about once a second; wait for it (bounded: 5 s) */
    int accepted_again = 0; /* set once the pruned key was checked */
    for (int i = 0; i < 50 && !accepted_again; i++) {
        usleep(100000);
        tu_conn t;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        tu_connect(&t, s2.endpoint, ZMQ_DEALER);
        begin(&sb, &pk, "stats", 0);
        call(&t, &sb, &up);
        int pruned = tu_get_int(&up.data, "event_ids_pruned") >= 1;
        msgpack_unpacked_destroy(&up);
        tu_disconnect(&t);
        if (pruned) {
            /* the window's key is gone, the customer's history still
             * knows the id: a duplicate for good */
            ck_assert_int_eq(ls_client_track(c, &ev, 1, &tr), LS_OK);
            ck_assert_int_eq(tr.accepted, 0);
            ck_assert_int_eq(tr.duplicates, 1);
            accepted_again = 1;
        }
    }
    ck_assert_msg(accepted_again, "the key was never pruned");
    ls_client_close(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

START_TEST(concurrent_batches_share_commits)
{
    enum { BATCHES = 200 };
    tu_conn c;
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    for (int b = 0; b < BATCHES; b++) { /* all in flight at once */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        begin(&sb, &pk, "track", 1);
        tu_pack_str(&pk, "events");
        msgpack_pack_array(&pk, 10);
        for (int i = 0; i < 10; i++) {
            msgpack_pack_map(&pk, 2);
            tu_pack_str(&pk, "customer");
            tu_pack_str(&pk, "grp");
            tu_pack_str(&pk, "type");
            tu_pack_str(&pk, "search");
        }
        ck_assert_int_ge(zmq_send(c.sock, "", 0, ZMQ_SNDMORE), 0);
        ck_assert_int_ge(zmq_send(c.sock, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    for (int b = 0; b < BATCHES; b++) {
        char buf[4096];
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        ck_assert_int_ge(zmq_recv(c.sock, buf, sizeof buf, 0), 0);
        int n = zmq_recv(c.sock, buf, sizeof buf, 0);
        ck_assert(n > 0 && msgpack_unpack_next(&up, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS);
        ck_assert(tu_get_bool(&up.data, "ok"));
        ck_assert_int_eq(tu_get_int(&up.data, "accepted"), 10);
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    begin(&sb, &pk, "stats", 0);
    call(&c, &sb, &up);
    ck_assert_int_eq(tu_get_int(&up.data, "events_accepted"), BATCHES * 10);
    ck_assert_int_lt(tu_get_int(&up.data, "commits"), BATCHES); /* grouped */
    ck_assert(tu_get_double(&up.data, "events_per_commit") > 10.0);
    msgpack_unpacked_destroy(&up);
    ck_assert_int_eq(profile_feature(&c, "grp", "search_count"), BATCHES * 10);
    tu_disconnect(&c);
}
END_TEST

/* Writes models/handset.json with its version replaced into dir/name. */
static void write_model_version(const char *dir, const char *name, const char *version, char *path, size_t cap)
{
    char src[1024], *text = NULL;
    size_t len = 0;
    snprintf(src, sizeof src, "%s/models/handset.json", LS_SOURCE_DIR);
    FILE *in = fopen(src, "r");
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(getdelim(&text, &len, '\0', in) > 0, 1);
    fclose(in);
    char *at = strstr(text, "\"version\": \"0.1.0\"");
    ck_assert_ptr_nonnull(at);
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *out = fopen(path, "w");
    fprintf(out, "%.*s\"version\": \"%s\"%s", (int)(at - text), text, version, at + strlen("\"version\": \"0.1.0\""));
    fclose(out);
    free(text);
}

static void reload(tu_conn *c, const char *path, msgpack_unpacked *up)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, "reload", 1);
    tu_pack_str(&pk, "path");
    tu_pack_str(&pk, path);
    call(c, &sb, up);
}

START_TEST(score_result_has_every_contract_field)
{
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "score", 1);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "nobody-yet");
    call(&c, &sb, &up);
    static const char *fields[] = {"customer", "known", "score", "score_100", "tier", "p_alive",
                                   "expected_purchases_30d", "clv", "customer_type", "phase", "loyalty_points",
                                   "loyalty_tier", "actions", "segments", "model"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        ck_assert_msg(tu_get(&up.data, fields[i]) != NULL, "no %s", fields[i]);
    const msgpack_object *t = tu_get(&up.data, "customer_type");
    ck_assert(t->via.str.size == 8 && memcmp(t->via.str.ptr, "prospect", 8) == 0);
    ck_assert(tu_get(&up.data, "explain") == NULL);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(recommend_ranks_segments_with_reasons)
{
    ls_client *lc;
    ls_client_event evs[3] = {
        {.customer = "rita", .type = "product_view", .category = "electronics/audio"},
        {.customer = "rita", .type = "product_view", .category = "electronics/audio"},
        {.customer = "rita", .type = "product_view", .category = "books"},
    };
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(lc, evs, 3, NULL), LS_OK);
    ls_client_close(&lc);
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "recommend", 2);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "rita");
    tu_pack_str(&pk, "k");
    msgpack_pack_int(&pk, 2);
    call(&c, &sb, &up);
    const msgpack_object *segs = tu_get(&up.data, "segments");
    ck_assert(segs && segs->via.array.size == 2);
    const msgpack_object *first = tu_get(&segs->via.array.ptr[0], "segment");
    const msgpack_object *why = tu_get(&segs->via.array.ptr[0], "reason");
    ck_assert(first->via.str.size == 5 && memcmp(first->via.str.ptr, "audio", 5) == 0);
    ck_assert(why->via.str.size > 0 && memmem(why->via.str.ptr, why->via.str.size, "electronics/audio 2 times", 25));
    begin(&sb, &pk, "recommend", 2);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "rita");
    tu_pack_str(&pk, "k");
    msgpack_pack_int(&pk, 0);
    call(&c, &sb, &up);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(reload_swaps_models_and_a_bad_file_keeps_the_old_one)
{
    char v2[700], bad[700];
    const char *dir = models_dir;
    write_model_version(dir, "v2.json", "2.0.0", v2, sizeof v2);
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    FILE *f = fopen(bad, "w");
    fputs("{ \"name\": \"broken\", ", f);
    fclose(f);
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    reload(&c, v2, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    const msgpack_object *v = tu_get(&up.data, "version");
    ck_assert(v->via.str.size == 5 && memcmp(v->via.str.ptr, "2.0.0", 5) == 0);
    reload(&c, bad, &up);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    const msgpack_object *msg = tu_get(tu_get(&up.data, "error"), "message");
    ck_assert(memmem(msg->via.str.ptr, msg->via.str.size, "old one stays", 13) != NULL);
    ls_client *lc;
    ls_score sc;
    ck_assert_int_eq(ls_client_connect(&lc, srv.endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_score(lc, "x", &sc), LS_OK);
    ck_assert_str_eq(sc.model, "handset@2.0.0");
    ls_score_free(&sc);
    ls_client_close(&lc);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

/* The --model file is read as a reload PATH is: a regular file only (a
 * FIFO once hung the start), at most model-max-bytes (it applied to
 * `reload PATH` alone), through a symbolic link (a deploy's "current"). */
START_TEST(the_model_file_is_read_within_its_limits)
{
    char dir[512], fifo[600], link[600], copy[600], err[512];
    config cfg;
    server *s = NULL;
    tu_tempdir(dir, sizeof dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.json", dir);
    snprintf(link, sizeof link, "%s/current.json", dir);
    snprintf(copy, sizeof copy, "%s/model.json", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(symlink(LS_SOURCE_DIR "/models/handset.json", link), 0);
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    tu_config(&cfg, data);
    snprintf(cfg.model_path, sizeof cfg.model_path, "%s", fifo);
    ck_assert_int_ne(server_start(&s, &cfg, err, sizeof err), LS_OK);
    ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
    snprintf(cfg.model_path, sizeof cfg.model_path, "%s", link);
    cfg.model_max_bytes = 1024;
    ck_assert_int_ne(server_start(&s, &cfg, err, sizeof err), LS_OK);
    ck_assert_msg(strstr(err, "larger than model-max-bytes (1024 bytes)"), "%s", err);
    /* within the limit, through the link: it starts; a plain reload of a
     * file grown past the limit keeps the old model */
    tu_server srv2;
    cfg.model_max_bytes = 1 << 20;
    FILE *in = fopen(LS_SOURCE_DIR "/models/handset.json", "r"), *out = fopen(copy, "w");
    int ch;
    while ((ch = fgetc(in)) != EOF)
        fputc(ch, out);
    fclose(in);
    fclose(out);
    snprintf(cfg.model_path, sizeof cfg.model_path, "%s", copy);
    tu_server_start(&srv2, &cfg);
    out = fopen(copy, "a");
    for (int i = 0; i < (1 << 20) / 64 + 1; i++)
        fputs("                                                               \n", out);
    fclose(out);
    tu_conn c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv2.endpoint, ZMQ_DEALER);
    begin(&sb, &pk, "reload", 0);
    call(&c, &sb, &up);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&srv2);
    tu_rmtree(dir);
}
END_TEST

typedef struct {
    const char *endpoint;
    int sent, ok, v1, v2;
} load_args;

/* Keeps 32 score requests in flight, 4000 in all, counting the model tags. */
static void *score_load(void *arg)
{
    load_args *a = arg;
    tu_conn c;
    tu_connect(&c, a->endpoint, ZMQ_DEALER);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, "score", 1);
    tu_pack_str(&pk, "customer");
    tu_pack_str(&pk, "load");
    int inflight = 0, received = 0;
    while (received < 4000) {
        while (inflight < 32 && a->sent < 4000) {
            zmq_send(c.sock, "", 0, ZMQ_SNDMORE);
            zmq_send(c.sock, sb.data, sb.size, 0);
            a->sent++;
            inflight++;
        }
        char buf[8192];
        if (zmq_recv(c.sock, buf, sizeof buf, 0) < 0)
            break;
        int n = zmq_recv(c.sock, buf, sizeof buf, 0);
        inflight--;
        received++;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        if (n > 0 && msgpack_unpack_next(&up, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *ok = tu_get(&up.data, "ok"), *m = tu_get(&up.data, "model");
            if (ok && ok->via.boolean && m) {
                a->ok++;
                a->v1 += memmem(m->via.str.ptr, m->via.str.size, "@1.0.0", 6) != NULL;
                a->v2 += memmem(m->via.str.ptr, m->via.str.size, "@2.0.0", 6) != NULL;
            }
        }
        msgpack_unpacked_destroy(&up);
    }
    msgpack_sbuffer_destroy(&sb);
    tu_disconnect(&c);
    return NULL;
}

START_TEST(reload_under_load_loses_no_request)
{
    char v1[700], v2[700];
    const char *dir = models_dir;
    write_model_version(dir, "v1.json", "1.0.0", v1, sizeof v1);
    write_model_version(dir, "v2.json", "2.0.0", v2, sizeof v2);
    load_args a = {srv.endpoint, 0, 0, 0, 0};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, score_load, &a), 0);
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    int reloads_ok = 0;
    for (int i = 0; i < 40; i++) {
        reload(&c, i % 2 ? v2 : v1, &up);
        reloads_ok += tu_get_bool(&up.data, "ok");
        usleep(2000);
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(reloads_ok, 40);
    ck_assert_int_eq(a.sent, 4000);
    ck_assert_int_eq(a.ok, 4000);
    ck_assert_int_gt(a.v1 + a.v2, 0);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

/* Sends one request with string fields (k1, v1[, k2, v2]) and returns the reply in up. */
static void call2(tu_conn *c, const char *op, const char *k1, const char *v1, const char *k2, const char *v2,
                  msgpack_unpacked *up)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, op, k2 ? 2 : 1);
    tu_pack_str(&pk, k1);
    tu_pack_str(&pk, v1);
    if (k2) {
        tu_pack_str(&pk, k2);
        tu_pack_str(&pk, v2);
    }
    call(c, &sb, up);
}

/* Tracks one event through the C client at endpoint (an ok reply);
 * returns the events it accepted. */
static int64_t track_at(const char *endpoint, const ls_client_event *ev)
{
    ls_client *lc;
    ls_track_result tr;
    ck_assert_int_eq(ls_client_connect(&lc, endpoint, 10000), LS_OK);
    ck_assert_int_eq(ls_client_track(lc, ev, 1, &tr), LS_OK);
    ls_client_close(&lc);
    return (int64_t)tr.accepted;
}

static void track_one(const char *customer, const char *type, const char *eid, int64_t ts)
{
    ls_client_event ev = {.customer = customer, .type = type, .event_id = eid, .ts_ms = ts,
                          .category = "shoes/running", .session = "s-stitch"};
    track_at(srv.endpoint, &ev);
}

START_TEST(alias_folds_an_anonymous_history_in_once)
{
    int64_t t0 = 1790000000000LL;
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    track_one("anon-1", "product_view", "a1", t0);
    track_one("anon-1", "add_to_cart", "a2", t0 + 1000);
    track_one("cust-1", "product_view", "c1", t0 + 2000);
    /* the same story told to one id from the start, for comparison */
    track_one("control", "product_view", "x1", t0);
    track_one("control", "add_to_cart", "x2", t0 + 1000);
    track_one("control", "product_view", "x3", t0 + 2000);
    call2(&c, "alias", "from", "anon-1", "to", "cust-1", &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert(tu_get_bool(&up.data, "merged"));
    call2(&c, "alias", "from", "anon-1", "to", "cust-1", &up); /* idempotent */
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert(!tu_get_bool(&up.data, "merged"));
    call2(&c, "alias", "from", "anon-1", "to", "someone-else", &up);
    ck_assert(tu_is_error(&up.data, "bad_request"));
    const msgpack_object *why = tu_get(tu_get(&up.data, "error"), "message");
    ck_assert(why && why->type == MSGPACK_OBJECT_STR);
    ck_assert_msg(strncmp(why->via.str.ptr, "\"from\" (the anonymous id) is already merged into another customer",
                          65) == 0, "%.*s", (int)why->via.str.size, why->via.str.ptr);
    /* late events to either id land on the one record, counted once */
    track_one("anon-1", "page_view", "a3", t0 - 5000);
    track_one("anon-1", "page_view", "a3", t0 - 5000);
    track_one("control", "page_view", "x4", t0 - 5000);
    ck_assert_int_eq(profile_feature(&c, "cust-1", "product_view_count"), 2);
    ck_assert_int_eq(profile_feature(&c, "cust-1", "add_to_cart_count"), 1);
    ck_assert_int_eq(profile_feature(&c, "cust-1", "page_view_count"), 1);
    ck_assert_int_eq(profile_feature(&c, "anon-1", "add_to_cart_count"), 1); /* the old id answers too */
    ck_assert_int_eq(profile_feature(&c, "cust-1", "sessions"), profile_feature(&c, "control", "sessions"));
    msgpack_unpacked a, b;
    msgpack_unpacked_init(&a);
    msgpack_unpacked_init(&b);
    profile_of(&c, "cust-1", &a);
    profile_of(&c, "control", &b);
    const msgpack_object *fa = tu_get(&a.data, "features"), *fb = tu_get(&b.data, "features");
    for (uint32_t i = 0; i < fa->via.map.size; i++) {
        const msgpack_object *k = &fa->via.map.ptr[i].key;
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)k->via.str.size, k->via.str.ptr);
        if (strstr(name, "days_since"))
            continue; /* measured against the wall clock */
        ck_assert_msg(fabs(tu_get_double(fa, name) - tu_get_double(fb, name)) <= 1e-4 * (1 + fabs(tu_get_double(fb, name))),
                      "%s differs after the merge", name);
    }
    msgpack_unpacked_destroy(&a);
    msgpack_unpacked_destroy(&b);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

START_TEST(forget_erases_a_customer_its_aliases_and_keys)
{
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    track_one("anon-9", "product_view", "f1", 0);
    track_one("cust-9", "purchase", "f2", 0);
    call2(&c, "alias", "from", "anon-9", "to", "cust-9", &up);
    ck_assert(tu_get_bool(&up.data, "merged"));
    call2(&c, "forget", "customer", "cust-9", NULL, NULL, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert(tu_get_bool(&up.data, "deleted"));
    profile_of(&c, "cust-9", &up);
    ck_assert(!tu_get_bool(&up.data, "known"));
    profile_of(&c, "anon-9", &up);
    ck_assert(!tu_get_bool(&up.data, "known"));
    /* its idempotency keys went too: the same event ids count as new */
    track_one("anon-9", "product_view", "f1", 0);
    ck_assert_int_eq(profile_feature(&c, "anon-9", "product_view_count"), 1);
    call2(&c, "forget", "customer", "never-seen", NULL, NULL, &up);
    ck_assert(tu_get_bool(&up.data, "ok"));
    ck_assert(!tu_get_bool(&up.data, "deleted"));
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
}
END_TEST

/* Tracks batches of new customers (long ids, so pages fill fast) until
 * the store answers unavailable; returns the batches acknowledged. */
static int fill_until_unavailable(tu_conn *c, const char *type, int *unavailable)
{
    int acked = 0;
    char id[300];
    *unavailable = 0;
    for (int b = 0; b < 2000 && !*unavailable; b++) { /* bounded */
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        begin(&sb, &pk, "track", 1);
        tu_pack_str(&pk, "events");
        msgpack_pack_array(&pk, 50);
        for (int i = 0; i < 50; i++) {
            snprintf(id, sizeof id, "%0200d-%d-%d", 0, b, i);
            msgpack_pack_map(&pk, 3);
            tu_pack_str(&pk, "customer");
            tu_pack_str(&pk, id);
            tu_pack_str(&pk, "type");
            tu_pack_str(&pk, type);
            tu_pack_str(&pk, "event_id");
            tu_pack_str(&pk, id);
        }
        call(c, &sb, &up);
        if (tu_get_bool(&up.data, "ok")) {
            ck_assert_int_eq(tu_get_int(&up.data, "accepted"), 50);
            acked++;
        } else {
            ck_assert(tu_is_error(&up.data, "unavailable"));
            *unavailable = 1;
        }
        msgpack_unpacked_destroy(&up);
    }
    return acked;
}

START_TEST(a_full_store_grows_then_refuses_writes_and_keeps_reading)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.map_size = 1 << 20;   /* 1 MiB to start */
    cfg.map_max = 8 << 20;    /* may grow to 8 MiB */
    tu_server_start(&s2, &cfg);
    tu_conn c;
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    int unavailable;
    int acked = fill_until_unavailable(&c, "page_view", &unavailable);
    ck_assert(unavailable);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    begin(&sb, &pk, "stats", 0);
    call(&c, &sb, &up);
    ck_assert_int_eq(tu_get_int(&up.data, "store_map_bytes"), 8 << 20); /* it grew */
    ck_assert_int_eq(tu_get_int(&up.data, "customers"), acked * 50);   /* every acknowledged batch, whole */
    ck_assert_int_gt(tu_get_int(&up.data, "store_bytes"), 1 << 20);     /* more than the first map held */
    msgpack_unpacked_destroy(&up);
    ck_assert_int_eq(profile_feature(&c, "nobody", "page_view_count"), 0); /* reads go on */
    char first[300];
    snprintf(first, sizeof first, "%0200d-%d-%d", 0, 0, 7);
    ck_assert_int_eq(profile_feature(&c, first, "page_view_count"), 1);
    ck_assert_int_eq(queued_after_drain(&c), 0); /* the refused batches were counted out too */
    tu_disconnect(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

/* A store filled to its map by a server with automation off, reopened
 * with it on and room to grow: the automation's first pass over the store
 * grows the map as events do, instead of failing on every retry (as it
 * did on a 10 M-customer store opened with the default --map-size). */
START_TEST(the_automation_pass_grows_a_full_map)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_conn c;
    int unavailable;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.map_size = cfg.map_max = 1 << 20; /* 1 MiB, no growth */
    cfg.triggers = 0;
    tu_server_start(&s2, &cfg);
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    int acked = fill_until_unavailable(&c, "add_to_cart", &unavailable); /* open carts: state to keep */
    ck_assert(unavailable);
    tu_disconnect(&c);
    tu_server_stop(&s2);
    cfg.map_max = 8 << 20;
    cfg.triggers = 1;
    tu_server_start(&s2, &cfg);
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    msgpack_unpacked_init(&up);
    int64_t evaluations = 0, failures = 0, sweeps = 0;
    for (int i = 0; i < 200 && evaluations < acked * 50; i++) { /* at most 20 s */
        begin(&sb, &pk, "stats", 0);
        call(&c, &sb, &up);
        evaluations = tu_get_int(&up.data, "automation_evaluations");
        failures = tu_get_int(&up.data, "automation_failures");
        sweeps = tu_get_int(&up.data, "automation_sweeps");
        usleep(100000);
    }
    ck_assert_int_ge(sweeps, 1);
    ck_assert_int_eq(evaluations, acked * 50); /* every customer, once */
    ck_assert_int_eq(failures, 0);
    begin(&sb, &pk, "stats", 0);
    call(&c, &sb, &up);
    ck_assert_int_gt(tu_get_int(&up.data, "store_map_bytes"), 1 << 20); /* it grew */
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

START_TEST(a_client_that_never_reads_does_not_stall_others)
{
    void *ctx = zmq_ctx_new(), *rude = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 10, zero = 0;
    zmq_setsockopt(rude, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(rude, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(rude, srv.endpoint), 0);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    begin(&sb, &pk, "ping", 0);
    for (int i = 0; i < 20000; i++) { /* and never reads a reply */
        zmq_send(rude, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_send(rude, sb.data, sb.size, ZMQ_DONTWAIT);
    }
    msgpack_sbuffer_destroy(&sb);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, srv.endpoint, 5000), LS_OK);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK);
    ls_client_close(&c);
    zmq_close(rude);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(review_regressions_alias_limits_many_aliases_and_frames)
{
    tu_conn c;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    tu_connect(&c, srv.endpoint, ZMQ_DEALER);
    /* two ids too long together for an alias: refused, nothing else hurt */
    char a[257], b[256];
    memset(a, 'a', 256);
    a[256] = '\0';
    memset(b, 'b', 255);
    b[255] = '\0';
    call2(&c, "alias", "from", a, "to", b, &up);
    ck_assert(tu_is_error(&up.data, "too_large"));
    track_one("after-alias", "page_view", NULL, 0);
    ck_assert_int_eq(profile_feature(&c, "after-alias", "page_view_count"), 1);
    /* forget a customer with 70 aliases: everything goes */
    char anon[32], eid[32];
    for (int i = 0; i < 70; i++) {
        snprintf(anon, sizeof anon, "anon-many-%d", i);
        snprintf(eid, sizeof eid, "many-%d", i);
        track_one(anon, "page_view", eid, 0);
        call2(&c, "alias", "from", anon, "to", "many", &up);
        ck_assert(tu_get_bool(&up.data, "merged"));
    }
    ck_assert_int_eq(profile_feature(&c, "many", "page_view_count"), 70);
    call2(&c, "forget", "customer", "many", NULL, NULL, &up);
    ck_assert(tu_get_bool(&up.data, "deleted"));
    profile_of(&c, "anon-many-69", &up);
    ck_assert(!tu_get_bool(&up.data, "known"));
    track_one("anon-many-3", "page_view", "many-3", 0); /* its key went too */
    ck_assert_int_eq(profile_feature(&c, "anon-many-3", "page_view_count"), 1);
    msgpack_unpacked_destroy(&up);
    tu_disconnect(&c);
    /* hops before the delimiter: 12 fit, and more get an error reply of the
     * same shape, routable: the hops the server kept, the delimiter, the
     * reply (14 hops once came back without the delimiter) */
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 5000, zero = 0;
    zmq_setsockopt(d, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(d, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(d, srv.endpoint), 0);
    for (int hops = 12; hops <= 17; hops++) {
        for (int i = 0; i < hops; i++)
            zmq_send(d, "hop", 3, ZMQ_SNDMORE);
        zmq_send(d, "", 0, ZMQ_SNDMORE);
        zmq_send(d, "\x81\xa2op\xa4ping", 9, 0);
        int frames = 0, more = 1, empty_at = -1, len = 0;
        char buf[4096];
        while (more) {
            len = zmq_recv(d, buf, sizeof buf, 0);
            ck_assert_int_ge(len, 0);
            if (len == 0 && empty_at < 0)
                empty_at = frames;
            size_t optlen = sizeof more;
            zmq_getsockopt(d, ZMQ_RCVMORE, &more, &optlen);
            frames++;
        }
        ck_assert_msg(frames >= 2 && empty_at == frames - 2, "%d hops: the delimiter is frame %d of %d", hops, empty_at,
                      frames);
        msgpack_unpacked_init(&up);
        ck_assert(msgpack_unpack_next(&up, buf, (size_t)len, NULL) == MSGPACK_UNPACK_SUCCESS);
        if (hops <= 12)
            ck_assert_msg(frames == hops + 2 && tu_get_bool(&up.data, "ok"), "%d hops: %d frames", hops, frames);
        else
        {
            ck_assert_msg(tu_is_error(&up.data, "bad_request"), "%d hops: not refused", hops);
            const msgpack_object *msg = tu_get(tu_get(&up.data, "error"), "message");
            ck_assert(msg && msg->type == MSGPACK_OBJECT_STR && msg->via.str.size == 23 &&
                      memcmp(msg->via.str.ptr, "too many routing frames", 23) == 0);
        }
        msgpack_unpacked_destroy(&up);
    }
    zmq_close(d);
    zmq_ctx_term(ctx);
}
END_TEST

/* A stand-in server (a ROUTER on an ephemeral port) for the client
 * library's own rules: the first request gets no answer until the client
 * has timed out, then a late error with no id (what the server sends for a
 * request it could not parse); while a second call waits, replies to other
 * ids trickle in every 40 ms for 3 s; a third request is answered. */
typedef struct {
    void *router;
    atomic_int late_sent, trickle_done;
} fake_server;

static void fake_reply(void *router, zmq_msg_t *who, const char *body, size_t len)
{
    zmq_msg_send(who, router, ZMQ_SNDMORE);
    zmq_send(router, "", 0, ZMQ_SNDMORE);
    zmq_send(router, body, len, 0);
}

/* Receives one request: its peer identity in *who, its id in *id. */
static int fake_take(void *router, zmq_msg_t *who, uint64_t *id)
{
    char buf[512];
    zmq_msg_init(who);
    if (zmq_msg_recv(who, router, 0) < 0 || zmq_recv(router, buf, sizeof buf, 0) < 0)
        return -1;
    int n = zmq_recv(router, buf, sizeof buf, 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int ok = n > 0 && msgpack_unpack_next(&up, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS;
    const msgpack_object *rid = ok ? tu_get(&up.data, "id") : NULL;
    *id = rid && rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? rid->via.u64 : 0;
    msgpack_unpacked_destroy(&up);
    return ok ? 0 : -1;
}

static void pong_for(uint64_t id, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    tu_pack_str(&pk, "ok");
    msgpack_pack_true(&pk);
    tu_pack_str(&pk, "id");
    msgpack_pack_uint64(&pk, id);
    tu_pack_str(&pk, "pong");
    msgpack_pack_true(&pk);
}

static void *fake_server_main(void *arg)
{
    fake_server *f = arg;
    static const char idless[] = "\x82\xa2ok\xc2\xa5" "error\x82\xa4" "code\xa9too_large\xa7message\xa4late";
    zmq_msg_t who;
    uint64_t id;
    msgpack_sbuffer sb;
    /* 1: silent past the client's 300 ms, then the late id-less error */
    if (fake_take(f->router, &who, &id) != 0)
        return NULL;
    usleep(500 * 1000);
    fake_reply(f->router, &who, idless, sizeof idless - 1);
    zmq_msg_close(&who);
    f->late_sent = 1;
    /* 2: replies to another id, every 40 ms for 3 s, never the one asked */
    if (fake_take(f->router, &who, &id) != 0)
        return NULL;
    pong_for(id + 1000, &sb);
    for (int i = 0; i < 75; i++) {
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, &who);
        fake_reply(f->router, &copy, sb.data, sb.size);
        zmq_msg_close(&copy);
        usleep(40 * 1000);
    }
    msgpack_sbuffer_destroy(&sb);
    zmq_msg_close(&who);
    f->trickle_done = 1;
    /* 3: answered */
    if (fake_take(f->router, &who, &id) != 0)
        return NULL;
    pong_for(id, &sb);
    fake_reply(f->router, &who, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    zmq_msg_close(&who);
    return NULL;
}

START_TEST(the_client_never_takes_a_late_reply_for_the_next_call)
{
    void *ctx = zmq_ctx_new();
    fake_server f = {zmq_socket(ctx, ZMQ_ROUTER), 0, 0};
    int zero = 0;
    char ep[128];
    size_t eplen = sizeof ep;
    zmq_setsockopt(f.router, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_bind(f.router, "tcp://127.0.0.1:*"), 0);
    ck_assert_int_eq(zmq_getsockopt(f.router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fake_server_main, &f), 0);
    ls_client *c;
    ck_assert_int_eq(ls_client_connect(&c, ep, 300), LS_OK);
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_ETIMEOUT);
    while (!f.late_sent)
        usleep(10 * 1000);
    usleep(100 * 1000); /* the late error has had time to arrive, were it routed to the client */
    /* the next call neither takes the late id-less error nor waits while
     * replies to other ids keep coming: it times out on its own clock */
    int64_t t0 = timefmt_mono_ns();
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_ETIMEOUT);
    ck_assert_msg(timefmt_mono_ns() - t0 < 2000000000LL, "a 300 ms call waited %lld ms",
                  (long long)((timefmt_mono_ns() - t0) / 1000000));
    while (!f.trickle_done)
        usleep(10 * 1000);
    ck_assert_int_eq(ls_client_ping(c, NULL, 0), LS_OK); /* the trickle is over: answered */
    pthread_join(t, NULL);
    ls_client_close(&c);
    zmq_close(f.router);
    zmq_ctx_term(ctx);
}
END_TEST

/* A stand-in server whose answers are wrong in ways a real server's never
 * are: the client turns them into values in range or an error, never
 * undefined values or a reply it says it did not keep. */
typedef void (*canned_reply)(uint64_t id, msgpack_packer *pk);

static void score_with_floats(uint64_t id, msgpack_packer *pk, double score_100, double points)
{
    msgpack_pack_map(pk, 6);
    tu_pack_str(pk, "ok");
    msgpack_pack_true(pk);
    tu_pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    tu_pack_str(pk, "customer");
    tu_pack_str(pk, "x");
    tu_pack_str(pk, "score");
    msgpack_pack_double(pk, 0.5);
    tu_pack_str(pk, "score_100");
    msgpack_pack_double(pk, score_100);
    tu_pack_str(pk, "loyalty_points");
    msgpack_pack_double(pk, points);
}

static void score_too_high(uint64_t id, msgpack_packer *pk) { score_with_floats(id, pk, 1e300, NAN); }
static void score_too_low(uint64_t id, msgpack_packer *pk) { score_with_floats(id, pk, -1e300, -1e300); }

static void ok_not_a_boolean(uint64_t id, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    tu_pack_str(pk, "ok");
    tu_pack_str(pk, "yes");
    tu_pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
}

static const canned_reply wrong_answers[] = {score_too_high, score_too_low, ok_not_a_boolean};

static void *wrong_server_main(void *arg)
{
    void *router = arg;
    for (size_t i = 0; i < sizeof wrong_answers / sizeof *wrong_answers; i++) {
        zmq_msg_t who;
        uint64_t id;
        msgpack_sbuffer sb;
        msgpack_packer pk;
        if (fake_take(router, &who, &id) != 0)
            return NULL;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        wrong_answers[i](id, &pk);
        fake_reply(router, &who, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        zmq_msg_close(&who);
    }
    return NULL;
}

START_TEST(the_client_keeps_a_wrong_answer_in_range)
{
    void *ctx = zmq_ctx_new(), *router = zmq_socket(ctx, ZMQ_ROUTER);
    int zero = 0;
    char ep[128];
    size_t eplen = sizeof ep;
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    ck_assert_int_eq(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, wrong_server_main, router), 0);
    ls_client *c;
    ls_score sc;
    ck_assert_int_eq(ls_client_connect(&c, ep, 5000), LS_OK);
    ck_assert_int_eq(ls_client_score(c, "x", &sc), LS_OK);
    ck_assert_int_eq(sc.score_100, INT_MAX);    /* 1e300 */
    ck_assert(sc.loyalty_points == 0);          /* NaN */
    ls_score_free(&sc);
    ck_assert_int_eq(ls_client_score(c, "x", &sc), LS_OK);
    ck_assert_int_eq(sc.score_100, INT_MIN);    /* -1e300 */
    ck_assert(sc.loyalty_points == INT64_MIN);  /* -1e300 */
    ls_score_free(&sc);
    void *reply = NULL;
    size_t len = 0;
    ck_assert_int_eq(ls_client_profile(c, "x", 0, &reply, &len), LS_EREMOTE);
    ck_assert_ptr_null(reply); /* no reply map: none to free (client.h) */
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(strstr(ls_client_last_error(c), "malformed reply"));
    pthread_join(t, NULL);
    ls_client_close(&c);
    zmq_close(router);
    zmq_ctx_term(ctx);
}
END_TEST

/* A NULL the header does not allow is LS_EINVAL with a message, at
 * once (nothing is sent, so no call waits for a timeout), never a crash. */
START_TEST(the_client_refuses_null_arguments)
{
    ls_client *c = NULL;
    ls_score sc;
    ls_track_result tr;
    void *reply = (void *)1;
    size_t len = 7;
    double v = 1;
    ck_assert_int_eq(ls_client_connect(NULL, "tcp://127.0.0.1:1", 300), LS_EINVAL);
    ck_assert_int_eq(ls_client_connect(&c, NULL, 300), LS_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(ls_client_connect_secure(NULL, "tcp://127.0.0.1:1", 300, NULL, NULL, NULL), LS_EINVAL);
    ck_assert_int_eq(ls_client_ping(NULL, NULL, 0), LS_EINVAL);
    ck_assert_int_eq(ls_client_score(NULL, "alice", &sc), LS_EINVAL);
    ck_assert_str_eq(ls_client_last_error(NULL), "no client (NULL)");
    ck_assert_int_eq(ls_client_connect(&c, "tcp://127.0.0.1:1", 300), LS_OK);
    int64_t t0 = timefmt_mono_ns();
    ck_assert_int_eq(ls_client_score(c, NULL, &sc), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ls_client_last_error(c), "customer and out are required"));
    ck_assert_int_eq(ls_client_score_at(c, "alice", 0, NULL), LS_EINVAL);
    ck_assert_int_eq(ls_client_profile(c, NULL, 0, &reply, &len), LS_EINVAL);
    ck_assert_ptr_null(reply);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(ls_client_profile(c, "alice", 0, NULL, &len), LS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ls_client_last_error(c), "ls_client_profile: customer, reply and reply_len"));
    ck_assert_int_eq(ls_client_recommend(c, "alice", 3, 0, &reply, NULL), LS_EINVAL);
    ck_assert_int_eq(ls_client_track(c, NULL, 2, &tr), LS_EINVAL);
    ck_assert_uint_eq(tr.accepted, 0);
    ck_assert_int_eq(ls_client_call(c, NULL, NULL, 0, 0, &reply, &len), LS_EINVAL);
    ck_assert_int_eq(ls_client_call(c, "ping", NULL, 4, 1, &reply, &len), LS_EINVAL);
    ck_assert_int_eq(ls_client_call(c, "ping", NULL, 0, 0, NULL, NULL), LS_EINVAL);
    ck_assert_int_eq(ls_client_profile_value(NULL, 0, "x", NULL), LS_EINVAL);
    ck_assert_int_eq(ls_client_profile_value(NULL, 0, NULL, &v), LS_EINVAL);
    ck_assert_msg(timefmt_mono_ns() - t0 < 250000000LL, "a refused call waited for the server");
    ls_client_close(&c);
    ls_client_close(&c); /* NULLed: a second close is a no-op */
    ls_client_close(NULL);
}
END_TEST

START_TEST(stop_during_a_pull_flood_drains_promptly)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    tu_server_start(&s2, &cfg);
    void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    ck_assert_int_eq(zmq_connect(push, s2.pull_endpoint), 0);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 10);
    for (int i = 0; i < 10; i++) {
        msgpack_pack_map(&pk, 2);
        tu_pack_str(&pk, "customer");
        tu_pack_str(&pk, "flood");
        tu_pack_str(&pk, "type");
        tu_pack_str(&pk, "page_view");
    }
    for (int b = 0; b < 20000; b++) /* bounded flood, faster than the store */
        zmq_send(push, sb.data, sb.size, ZMQ_DONTWAIT);
    msgpack_sbuffer_destroy(&sb);
    usleep(100000);
    int64_t t0 = tu_now_ms();
    tu_server_stop(&s2); /* must not hang with full queues */
    ck_assert_int_lt(tu_now_ms() - t0, 20000);
    zmq_close(push);
    zmq_ctx_term(ctx);
    tu_server_start(&s2, &cfg);
    tu_conn c;
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    int64_t n = profile_feature(&c, "flood", "page_view_count");
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(n % 10, 0); /* whole batches */
    tu_disconnect(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

static int64_t events_accepted(tu_conn *c)
{
    return stats_int(c, "events_accepted");
}

/* events_accepted once it reaches want, or after 60 s. */
static int64_t accepted_once(tu_conn *c, int64_t want)
{
    int64_t n = 0;
    for (int i = 0; i < 6000 && n < want; i++) {
        n = events_accepted(c);
        if (n < want)
            usleep(10000);
    }
    return n;
}

/* A sender that keeps sending 100-event batches to a PULL endpoint until
 * told to stop (or for FLOOD_MAX_MS at most). */
typedef struct {
    const char *endpoint;
    atomic_int stop;
    long sent;
} flooder;

#define FLOOD_MAX_MS 15000
#define FLOOD_CUSTOMERS 100

static void *flood_pull(void *arg)
{
    flooder *f = arg;
    void *ctx = zmq_ctx_new(), *push = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 0, hwm = 10000, timeout = 100;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_connect(push, f->endpoint);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char id[32];
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, FLOOD_CUSTOMERS);
    for (int i = 0; i < FLOOD_CUSTOMERS; i++) { /* one event for each customer: a batch is whole or absent */
        snprintf(id, sizeof id, "fl-%d", i);
        msgpack_pack_map(&pk, 2);
        tu_pack_str(&pk, "customer");
        tu_pack_str(&pk, id);
        tu_pack_str(&pk, "type");
        tu_pack_str(&pk, "page_view");
    }
    int64_t end = tu_now_ms() + FLOOD_MAX_MS;
    while (!atomic_load(&f->stop) && tu_now_ms() < end)
        if (zmq_send(push, sb.data, sb.size, 0) >= 0)
            f->sent++;
    msgpack_sbuffer_destroy(&sb);
    zmq_close(push);
    zmq_ctx_term(ctx);
    return NULL;
}

/* A stop takes what the PULL socket holds, not a stream that keeps
 * coming: with a sender flooding on, the stop ends within --drain-timeout
 * (plus a margin), and what it committed is whole batches. */
START_TEST(stop_during_an_endless_pull_flood_keeps_to_the_drain_timeout)
{
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.drain_timeout_ms = 2000;
    tu_server_start(&s2, &cfg);
    flooder f = {.endpoint = s2.pull_endpoint};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flood_pull, &f), 0);
    tu_conn c;
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    for (int i = 0; i < 1000 && events_accepted(&c) == 0; i++) /* <= 10 s: the flood is landing */
        usleep(10000);
    tu_disconnect(&c);
    usleep(500000); /* ... and backs up into the PULL socket's queue */
    int64_t t0 = tu_now_ms();
    tu_server_stop(&s2);
    int64_t took = tu_now_ms() - t0;
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    ck_assert_msg(took < cfg.drain_timeout_ms + 3000, "the stop took %lld ms with --drain-timeout %lld ms",
                  (long long)took, (long long)cfg.drain_timeout_ms);
    tu_server_start(&s2, &cfg);
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    int64_t first = profile_feature(&c, "fl-0", "page_view_count");
    ck_assert_int_gt(first, 0);
    ck_assert_int_eq(profile_feature(&c, "fl-99", "page_view_count"), first); /* whole batches */
    tu_disconnect(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

/* One reply to body on c; 1 when it is `unavailable` "the server is
 * shutting down", 0 when it is ok (the request came before the stop
 * began).  Fails the test when no reply comes (<= 10 s) or another one. */
static int refused_as_stopping(tu_conn *c, msgpack_sbuffer *sb)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert_msg(tu_call_raw(c, sb->data, sb->size, &up) == 0, "no reply to a request sent while the stop drains");
    int refused = tu_is_error(&up.data, "unavailable");
    if (refused)
        assert_error_message(&up.data, "the server is shutting down");
    else
        ck_assert(tu_get_bool(&up.data, "ok"));
    msgpack_unpacked_destroy(&up);
    return refused;
}

/* PROTOCOL 1.4: a request that comes after the stop began is answered
 * `unavailable` "the server is shutting down" at once, while the stop
 * drains a PULL flood -- not left to its client's timeout -- and a track
 * refused so stores nothing. */
START_TEST(a_request_during_the_drain_is_answered_shutting_down)
{
    config cfg;
    char dir[512];
    tu_server s2;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.drain_timeout_ms = 10000;
    tu_server_start(&s2, &cfg);
    flooder f = {.endpoint = s2.pull_endpoint};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, flood_pull, &f), 0);
    tu_conn c;
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    for (int i = 0; i < 1000 && events_accepted(&c) == 0; i++) /* <= 10 s: the flood is landing */
        usleep(10000);
    usleep(500000); /* ... and backs up into the PULL socket's queue */
    server_request_stop(s2.srv);
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) { /* the first pings may come before the stop began */
        begin(&sb, &pk, "ping", 0);
        int64_t t0 = tu_now_ms();
        refused = refused_as_stopping(&c, &sb);
        ck_assert_msg(tu_now_ms() - t0 < 5000, "the reply took %lld ms", (long long)(tu_now_ms() - t0));
        msgpack_sbuffer_destroy(&sb);
        if (!refused)
            usleep(5000);
    }
    ck_assert_msg(refused, "no ping was refused after the stop");
    begin(&sb, &pk, "track", 1);
    tu_pack_str(&pk, "events");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "customer"); tu_pack_str(&pk, "late-comer");
    tu_pack_str(&pk, "type"); tu_pack_str(&pk, "page_view");
    ck_assert_int_eq(refused_as_stopping(&c, &sb), 1);
    msgpack_sbuffer_destroy(&sb);
    tu_disconnect(&c);
    tu_server_stop(&s2);
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    tu_server_start(&s2, &cfg);
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    ck_assert_int_eq(profile_feature(&c, "late-comer", "page_view_count"), 0);
    int64_t first = profile_feature(&c, "fl-0", "page_view_count");
    ck_assert_int_gt(first, 0);
    ck_assert_int_eq(profile_feature(&c, "fl-99", "page_view_count"), first); /* whole batches */
    tu_disconnect(&c);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

/* Sends `batches` PULL batches of `per_batch` page views, customers
 * PREFIX-0 .. PREFIX-4999 in turn, on a new PUSH socket (returned, with
 * its context in *ctx, for the caller to close once they have landed). */
static void *send_page_view_flood(void **ctx, const char *endpoint, int batches, int per_batch, const char *prefix)
{
    void *push;
    int linger = 10000, hwm = batches;
    *ctx = zmq_ctx_new();
    push = zmq_socket(*ctx, ZMQ_PUSH);
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    ck_assert_int_eq(zmq_connect(push, endpoint), 0);
    for (int b = 0; b < batches; b++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        char id[32];
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, per_batch);
        for (int i = 0; i < per_batch; i++) {
            snprintf(id, sizeof id, "%s-%d", prefix, (b * per_batch + i) % 5000);
            msgpack_pack_map(&pk, 2);
            tu_pack_str(&pk, "customer");
            tu_pack_str(&pk, id);
            tu_pack_str(&pk, "type");
            tu_pack_str(&pk, "page_view");
        }
        ck_assert_int_ge(zmq_send(push, sb.data, sb.size, 0), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    return push;
}

/* A storefront's acknowledged track must not wait behind a fire-and-forget
 * flood: PULL batches queue for the workers and the writer apart from
 * requests, and while acks come a group takes only --pull-max-events of
 * them.  So when the ack comes, most of a flood sent
 * before it has not landed yet (queued in order, it would have), and in
 * the end every event has. */
START_TEST(an_acked_track_goes_ahead_of_a_pull_flood)
{
    enum { BATCHES = 1000, PER_BATCH = 100 };
    config cfg;
    char dir[512];
    tu_server s2;
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.commit_max_events = 10000; /* groups of 10,000 PULL events; of 1,000 while acks come */
    cfg.pull_max_events = 1000;
    tu_server_start(&s2, &cfg);
    void *ctx = NULL, *push = send_page_view_flood(&ctx, s2.pull_endpoint, BATCHES, PER_BATCH, "flood");
    tu_conn c;
    tu_connect(&c, s2.endpoint, ZMQ_DEALER);
    for (int i = 0; i < 3000 && events_accepted(&c) == 0; i++) /* <= 30 s: the flood is landing */
        usleep(10000);
    ls_client_event ack = {.customer = "storefront", .type = "add_to_cart"};
    ck_assert_int_eq(track_at(s2.endpoint, &ack), 1);
    int64_t at_ack = events_accepted(&c);
    ck_assert_msg(at_ack < BATCHES * PER_BATCH / 2, "%lld events of %d landed before the ack", (long long)at_ack,
                  BATCHES * PER_BATCH);
    int64_t n = accepted_once(&c, BATCHES * PER_BATCH + 1);
    ck_assert_int_eq(n, BATCHES * PER_BATCH + 1); /* nothing lost */
    tu_disconnect(&c);
    zmq_close(push);
    zmq_ctx_term(ctx);
    tu_server_stop(&s2);
    tu_rmtree(dir);
}
END_TEST

/* A child process that takes the LMDB write lock of the store in dir
 * when told to: the writer of a server on it then waits until the child
 * lets go.  It is forked before the server starts, while this process
 * has one thread: a child forked from a process with threads may find a
 * lock of the allocator held for ever (AddressSanitizer's has no fork
 * handler), and would never take the store's. */
typedef struct {
    pid_t pid;
    int cmd; /* the parent's end: a byte takes the lock, the next lets go (a close: exit) */
    int ready; /* the child's answer: a byte once it holds the lock */
} lock_holder;

/* Takes the lock for slice_ms, lets it go for 1 ms (time for the waiting
 * writer to take a turn), and again, until a byte (or a close) comes on
 * cmd. */
static void flap_lock(MDB_env *env, MDB_txn **txn, int cmd, int slice_ms)
{
    for (int i = 0; i < 10 * 60 * 1000 / slice_ms; i++) { /* <= 10 min */
        struct pollfd p = {cmd, POLLIN, 0};
        if (poll(&p, 1, slice_ms) != 0)
            return;
        mdb_txn_abort(*txn);
        *txn = NULL;
        usleep(1000);
        if (mdb_txn_begin(env, NULL, 0, txn))
            _exit(1);
    }
}

static void lock_child(const char *dir, int cmd, int ready)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    char byte = 0;
    if (read(cmd, &byte, 1) != 1)
        _exit(0); /* never asked */
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 16) || mdb_env_open(env, dir, 0, 0640) ||
        mdb_txn_begin(env, NULL, 0, &txn))
        _exit(1);
    if (write(ready, &byte, 1) != 1)
        _exit(1);
    if (read(cmd, &byte, 1) < 0)
        _exit(1);
    if (byte == 'f')
        flap_lock(env, &txn, cmd, 100);
    if (txn)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    _exit(0);
}

static void spawn_lock_holder(lock_holder *h, const char *dir)
{
    int cmd[2], ready[2];
    ck_assert_int_eq(pipe(cmd), 0);
    ck_assert_int_eq(pipe(ready), 0);
    h->pid = fork();
    ck_assert_int_ge(h->pid, 0);
    if (h->pid == 0) { /* the child opens its own environment, never the parent's */
        close(cmd[1]);
        close(ready[0]);
        lock_child(dir, cmd[0], ready[1]);
    }
    close(cmd[0]);
    close(ready[1]);
    h->cmd = cmd[1];
    h->ready = ready[0];
}

static void hold_write_lock(lock_holder *h)
{
    char byte = 0;
    ck_assert_int_eq(write(h->cmd, &byte, 1), 1);
    ck_assert_int_eq(read(h->ready, &byte, 1), 1); /* it holds the lock */
}

/* From now on the writer has the lock for a turn every 100 ms, until
 * release_write_lock: a slow store. */
static void flap_write_lock(lock_holder *h)
{
    char byte = 'f';
    ck_assert_int_eq(write(h->cmd, &byte, 1), 1);
}

static void release_write_lock(lock_holder *h)
{
    int status = 0;
    char byte = 1;
    ck_assert_int_eq(write(h->cmd, &byte, 1), 1);
    close(h->cmd);
    close(h->ready);
    ck_assert_int_eq(waitpid(h->pid, &status, 0), h->pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The server's events_queued once it has not changed for still_ms (the
 * workers have handed all they may; <= 30 s). */
static int64_t queued_once_still(tu_conn *c, int still_ms)
{
    int64_t queued = 0, last = -1, still_since = tu_now_ms();
    for (int i = 0; i < 3000 && tu_now_ms() - still_since < still_ms; i++) {
        queued = stats_int(c, "events_queued");
        if (queued != last)
            still_since = tu_now_ms();
        last = queued;
        usleep(10000);
    }
    return queued;
}

/* A server on a fresh store whose LMDB write lock a child holds (forked
 * before the server's threads, see lock_holder), a connection to it, and
 * a PULL flood sent while the writer waits. */
typedef struct {
    char dir[512];
    tu_server srv;
    lock_holder lock;
    tu_conn c;
    void *flood_ctx, *flood;
} locked_flood;

/* The store's directory, and cfg for it (the caller then sets options). */
static void locked_flood_config(locked_flood *t, config *cfg)
{
    tu_tempdir(t->dir, sizeof t->dir);
    tu_config(cfg, t->dir);
}

static void locked_flood_start(locked_flood *t, const config *cfg, int batches, int per_batch, const char *prefix)
{
    spawn_lock_holder(&t->lock, t->dir);
    tu_server_start(&t->srv, cfg);
    tu_connect(&t->c, t->srv.endpoint, ZMQ_DEALER);
    hold_write_lock(&t->lock);
    t->flood = send_page_view_flood(&t->flood_ctx, t->srv.pull_endpoint, batches, per_batch, prefix);
}

static void locked_flood_stop(locked_flood *t)
{
    int zero = 0; /* what a stop left unread stays unsent */
    tu_disconnect(&t->c);
    zmq_setsockopt(t->flood, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(t->flood);
    zmq_ctx_term(t->flood_ctx);
    tu_server_stop(&t->srv);
    tu_rmtree(t->dir);
}

/* While the writer cannot commit, a PULL backlog waits for it up to twice
 * --commit-max-events events, however many batches that is (so it can
 * fold a backlog in groups as large as the option allows), and no more:
 * the rest stays in the PULL socket.  Before, the writer's queue held 512
 * batches per worker whatever the option said: here at most some 12,000
 * events of 10-event batches besides its group.  Once the writer can
 * commit again, every event lands. */
START_TEST(a_pull_backlog_waits_for_the_writer_up_to_twice_commit_max_events)
{
    enum { BATCHES = 6000, PER_BATCH = 10, MAX = 20000 };
    locked_flood t;
    config cfg;
    locked_flood_config(&t, &cfg);
    cfg.commit_max_events = MAX;
    locked_flood_start(&t, &cfg, BATCHES, PER_BATCH, "bk");
    int64_t queued = queued_once_still(&t.c, 1000);
    ck_assert_int_eq(events_accepted(&t.c), 0); /* nothing committed meanwhile */
    /* the bound, give or take a batch each of the two workers may hand in
     * the moment the other does, and the batch each then holds */
    ck_assert_msg(queued >= 2 * MAX && queued <= 2 * MAX + 4 * PER_BATCH,
                  "%lld events wait for the writer with --commit-max-events %d", (long long)queued, MAX);
    release_write_lock(&t.lock);
    ck_assert_int_eq(accepted_once(&t.c, BATCHES * PER_BATCH), BATCHES * PER_BATCH); /* nothing lost */
    ck_assert_int_eq(queued_after_drain(&t.c), 0);
    locked_flood_stop(&t);
}
END_TEST

/* PULL batches larger than twice --commit-max-events still land, while
 * both workers hold one: a job a worker holds back is not the writer's
 * backlog, so it never holds back the other worker's.  (Before, each
 * worker counted the other's held batch as the writer's, and both waited
 * for each other for ever once the writer's group was committed.) */
START_TEST(pull_batches_larger_than_the_backlog_bound_still_land)
{
    enum { BATCHES = 20, PER_BATCH = 1000, MAX = 100 };
    locked_flood t;
    config cfg;
    locked_flood_config(&t, &cfg);
    cfg.commit_max_events = MAX;
    locked_flood_start(&t, &cfg, BATCHES, PER_BATCH, "big"); /* both workers are left holding a batch */
    ck_assert_int_ge(queued_once_still(&t.c, 500), 3 * PER_BATCH); /* the writer's batch and two held */
    release_write_lock(&t.lock);
    ck_assert_int_eq(accepted_once(&t.c, BATCHES * PER_BATCH), BATCHES * PER_BATCH);
    ck_assert_int_eq(queued_after_drain(&t.c), 0);
    locked_flood_stop(&t);
}
END_TEST

/* Sends the request packed in sb on c's DEALER without waiting. */
static void send_request(tu_conn *c, msgpack_sbuffer *sb)
{
    ck_assert_int_ge(zmq_send(c->sock, "", 0, ZMQ_SNDMORE), 0);
    ck_assert_int_ge(zmq_send(c->sock, sb->data, sb->size, 0), 0);
    msgpack_sbuffer_destroy(sb);
}

/* Waits up to wait_ms for a reply on c's DEALER: its ok flag, and in
 * *waited how long it took. */
static int reply_ok_within(tu_conn *c, int wait_ms, int64_t *waited)
{
    int64_t t0 = tu_now_ms();
    zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
    ck_assert_msg(zmq_poll(&item, 1, wait_ms) == 1, "no reply in %d ms", wait_ms);
    *waited = tu_now_ms() - t0;
    char frame[4096];
    ck_assert_int_eq(zmq_recv(c->sock, frame, sizeof frame, 0), 0); /* the delimiter */
    int n = zmq_recv(c->sock, frame, sizeof frame, 0);
    ck_assert_int_gt(n, 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    ck_assert(msgpack_unpack_next(&up, frame, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS);
    int ok = tu_get_bool(&up.data, "ok");
    msgpack_unpacked_destroy(&up);
    return ok;
}

/* While a stop is still reading the PULL backlog (for up to half of
 * --drain-timeout, while a slow store takes a batch at a time), a held
 * `triggers` long poll is answered at once, and so is an acknowledged
 * track the writer commits meanwhile, not after that reading: their
 * clients (5 s timeout by default) would take a stored track for a
 * failed one.  Here the store first lets the writer in not at all, then
 * for a turn every 100 ms (a few groups of one batch each), so reading
 * the 200 waiting batches takes the stop the 10 s it may (the build
 * before answered both then). */
START_TEST(a_stop_reading_pull_answers_acks_and_long_polls_at_once)
{
    enum { BATCHES = 200, PER_BATCH = 100, MAX = 100 };
    locked_flood t;
    config cfg;
    locked_flood_config(&t, &cfg);
    cfg.commit_max_events = MAX; /* a group takes one batch */
    cfg.drain_timeout_ms = 20000;
    locked_flood_start(&t, &cfg, BATCHES, PER_BATCH, "slow");
    ck_assert_int_ge(queued_once_still(&t.c, 500), 2 * MAX);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tu_pack_track(&sb, "acked", "add_to_cart");
    send_request(&t.c, &sb); /* it waits for the writer */
    tu_conn poll_conn;
    tu_connect(&poll_conn, t.srv.endpoint, ZMQ_DEALER);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    tu_pack_str(&pk, "op");
    tu_pack_str(&pk, "triggers");
    tu_pack_str(&pk, "wait_ms");
    msgpack_pack_int(&pk, 20000);
    send_request(&poll_conn, &sb); /* nothing fires: it is held */
    usleep(200000);
    server_request_stop(t.srv.srv);
    usleep(200000); /* the stop reads PULL, waiting for room */
    int64_t waited = 0;
    ck_assert(reply_ok_within(&poll_conn, 15000, &waited));
    ck_assert_msg(waited < 3000, "the held long poll was answered %lld ms into the stop", (long long)waited + 200);
    flap_write_lock(&t.lock);
    ck_assert(reply_ok_within(&t.c, 15000, &waited));
    release_write_lock(&t.lock);
    ck_assert_msg(waited < 3000, "the ack came %lld ms after the writer could commit", (long long)waited);
    tu_disconnect(&poll_conn);
    locked_flood_stop(&t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("service");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ping_answers_with_version_and_echoes_id);
    tcase_add_test(tc, track_then_score_reflects_it);
    tcase_add_test(tc, a_cart_stamped_ahead_of_the_servers_clock_counts_at_once);
    tcase_add_test(tc, a_batch_of_ten_thousand_events_is_accepted);
    tcase_add_test(tc, repeated_event_ids_count_once);
    tcase_add_test(tc, dealer_with_one_hundred_in_flight_gets_every_reply);
    tcase_add_test(tc, req_client_gets_every_reply);
    tcase_add_test(tc, reads_in_a_flood_answer_as_a_lone_request_does);
    tcase_add_test(tc, batched_score_keeps_order);
    tcase_add_test(tc, explain_contributions_sum_to_the_log_odds);
    tcase_add_test(tc, model_and_stats_ops_report);
    tcase_add_test(tc, rejected_events_are_listed_and_the_rest_stored);
    tcase_add_test(tc, a_review_without_a_rating_is_stored_outside_the_ratings);
    tcase_add_test(tc, malformed_requests_get_their_codes_and_the_server_carries_on);
    tcase_add_test(tc, pull_socket_batches_are_stored);
    tcase_add_test(tc, old_history_resent_still_dedupes);
    tcase_add_test(tc, concurrent_batches_share_commits);
    tcase_add_test(tc, score_result_has_every_contract_field);
    tcase_add_test(tc, recommend_ranks_segments_with_reasons);
    tcase_add_test(tc, reload_swaps_models_and_a_bad_file_keeps_the_old_one);
    tcase_add_test(tc, the_model_file_is_read_within_its_limits);
    tcase_add_test(tc, reload_under_load_loses_no_request);
    tcase_add_test(tc, alias_folds_an_anonymous_history_in_once);
    tcase_add_test(tc, forget_erases_a_customer_its_aliases_and_keys);
    tcase_add_test(tc, a_client_that_never_reads_does_not_stall_others);
    tcase_add_test(tc, review_regressions_alias_limits_many_aliases_and_frames);
    tcase_add_test(tc, the_client_never_takes_a_late_reply_for_the_next_call);
    tcase_add_test(tc, the_client_refuses_null_arguments);
    tcase_add_test(tc, the_client_keeps_a_wrong_answer_in_range);
    suite_add_tcase(s, tc);
    TCase *restart = tcase_create("restart");
    tcase_set_timeout(restart, 120);
    tcase_add_test(restart, stop_drains_and_acknowledged_events_survive_a_restart);
    tcase_add_test(restart, window_keys_pruned_history_keeps_ids);
    tcase_add_test(restart, a_full_store_grows_then_refuses_writes_and_keeps_reading);
    tcase_add_test(restart, the_automation_pass_grows_a_full_map);
    tcase_add_test(restart, stop_during_a_pull_flood_drains_promptly);
    tcase_add_test(restart, stop_during_an_endless_pull_flood_keeps_to_the_drain_timeout);
    tcase_add_test(restart, an_acked_track_goes_ahead_of_a_pull_flood);
    tcase_add_test(restart, a_pull_backlog_waits_for_the_writer_up_to_twice_commit_max_events);
    tcase_add_test(restart, pull_batches_larger_than_the_backlog_bound_still_land);
    tcase_add_test(restart, a_stop_reading_pull_answers_acks_and_long_polls_at_once);
    tcase_add_test(restart, a_request_during_the_drain_is_answered_shutting_down);
    suite_add_tcase(s, restart);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
