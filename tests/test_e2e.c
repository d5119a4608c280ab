/* test_e2e.c -- the service end to end over real ZeroMQ sockets on
 * loopback: every op, REQ and DEALER clients with many requests in flight,
 * big batches, idempotency, the PULL socket, bad requests of every kind,
 * and a drained stop. */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "leadscore/client.h"
#include "testutil.h"

static tu_server srv;

static void setup(void) { tu_server_start(&srv, NULL); }
static void teardown(void) { tu_server_stop(&srv); }

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

static int64_t feature_count(tu_conn *c, const char *customer, const char *feature)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    profile_of(c, customer, &up);
    double v = tu_get_double(tu_get(&up.data, "features"), feature);
    msgpack_unpacked_destroy(&up);
    return (int64_t)v;
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
    ck_assert_str_eq(before.model, "default@0.1.0");
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
    /* hand-computed with models/default.json: all three events "now", so
     * each recent count is 1; sessions_recent 1; open cart 40:
     * logit = -3.6 + ln2*(0.8 + 1.0 + 0.35 + 0.3) + 0.12*ln(41) */
    double logit = -3.6 + log(2.0) * (0.8 + 1.0 + 0.35 + 0.3) + 0.12 * log(41.0);
    ck_assert_double_eq_tol(after.score, 1.0 / (1.0 + exp(-logit)), 1e-4);
    ck_assert_int_eq(after.score_100, (int)lround(100.0 / (1.0 + exp(-logit))));
    ck_assert_str_eq(after.tier, "warm");
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
    ck_assert_int_eq(feature_count(&t, "c42", "page_view_count"), N / 100);
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
    ck_assert(name && name->via.str.size == 7 && memcmp(name->via.str.ptr, "default", 7) == 0);
    ck_assert_double_eq(tu_get_double(&up.data, "horizon_days"), 30);
    ck_assert(tu_get(&up.data, "features")->via.array.size == 13);
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
    ck_assert_int_eq(feature_count(&c, "carl", "page_view_count"), 1);
    ck_assert_int_eq(feature_count(&c, "carl", "add_to_cart_count"), 0);
    tu_disconnect(&c);
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
    begin(&sb, &pk, "score", 1); /* wrong type */
    tu_pack_str(&pk, "customer");
    msgpack_pack_int(&pk, 12);
    expect_error(&c, sb.data, sb.size, "bad_request");
    msgpack_sbuffer_destroy(&sb);
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
        n = feature_count(&c, "puller", "product_view_count");
        if (n < 1000)
            usleep(10000);
    }
    ck_assert_int_eq(n, 1000);
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
    ck_assert_int_eq(feature_count(&t, "dora", "email_open_count"), 50);
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

START_TEST(event_ids_are_forgotten_after_the_window)
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
    int accepted_again = 0;
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
            ck_assert_int_eq(ls_client_track(c, &ev, 1, &tr), LS_OK);
            accepted_again = tr.accepted == 1;
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
    ck_assert_int_eq(feature_count(&c, "grp", "search_count"), BATCHES * 10);
    tu_disconnect(&c);
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
    tcase_add_test(tc, a_batch_of_ten_thousand_events_is_accepted);
    tcase_add_test(tc, repeated_event_ids_count_once);
    tcase_add_test(tc, dealer_with_one_hundred_in_flight_gets_every_reply);
    tcase_add_test(tc, req_client_gets_every_reply);
    tcase_add_test(tc, batched_score_keeps_order);
    tcase_add_test(tc, explain_contributions_sum_to_the_log_odds);
    tcase_add_test(tc, model_and_stats_ops_report);
    tcase_add_test(tc, rejected_events_are_listed_and_the_rest_stored);
    tcase_add_test(tc, malformed_requests_get_their_codes_and_the_server_carries_on);
    tcase_add_test(tc, pull_socket_batches_are_stored);
    tcase_add_test(tc, old_history_resent_still_dedupes);
    tcase_add_test(tc, concurrent_batches_share_commits);
    suite_add_tcase(s, tc);
    TCase *restart = tcase_create("restart");
    tcase_set_timeout(restart, 120);
    tcase_add_test(restart, stop_drains_and_acknowledged_events_survive_a_restart);
    tcase_add_test(restart, event_ids_are_forgotten_after_the_window);
    suite_add_tcase(s, restart);
    return s;
}

int main(void)
{
    return tu_run_suite(suite());
}
