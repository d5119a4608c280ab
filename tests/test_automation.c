/* test_automation.c -- live audiences and the trigger stream, end to end
 * over the wire: audience ops and their errors, live enter/exit, members
 * pages, the first pass (members without enter triggers), time-based
 * membership through the sweep, each moment firing once per occurrence
 * with its cool-down, carts bought within the delay firing nothing,
 * resume from a seq, retention, the long poll, forget, and no trigger lost
 * over kill -9. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bytecur.h"
#include "journey.h"
#include "leadscore/error.h"
#include "store.h"
#include "testutil.h"
#include "timefmt.h"
#include "trigger.h"

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- requests ---- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} req;

static void req_begin(req *r, const char *op, uint32_t nfields)
{
    msgpack_sbuffer_init(&r->sb);
    msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&r->pk, nfields + 1);
    tu_pack_str(&r->pk, "op");
    tu_pack_str(&r->pk, op);
}

static void kv_s(req *r, const char *k, const char *v)
{
    tu_pack_str(&r->pk, k);
    tu_pack_str(&r->pk, v);
}

static void kv_i(req *r, const char *k, int64_t v)
{
    tu_pack_str(&r->pk, k);
    msgpack_pack_int64(&r->pk, v);
}

static const msgpack_object *send_req(tu_conn *c, req *r, msgpack_unpacked *up)
{
    ck_assert_int_eq(tu_call_raw(c, r->sb.data, r->sb.size, up), 0);
    msgpack_sbuffer_destroy(&r->sb);
    return &up->data;
}

static void expect_ok(const msgpack_object *o)
{
    ck_assert_msg(tu_get_bool(o, "ok"), "reply not ok");
}

static void audience_put(tu_conn *c, const char *name, const char *rule)
{
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", name);
    kv_s(&r, "rule", rule);
    expect_ok(send_req(c, &r, &up));
    msgpack_unpacked_destroy(&up);
}

/* `alias` from -> to; returns the reply's "merged". */
static int alias(tu_conn *c, const char *from, const char *to)
{
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "alias", 2);
    kv_s(&r, "from", from);
    kv_s(&r, "to", to);
    int merged = tu_get_bool(send_req(c, &r, &up), "merged");
    msgpack_unpacked_destroy(&up);
    return merged;
}

/* Erases customer over the wire (it must have been known). */
static void forget_over_wire(tu_conn *c, const char *customer)
{
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "forget", 1);
    kv_s(&r, "customer", customer);
    ck_assert(tu_get_bool(send_req(c, &r, &up), "deleted"));
    msgpack_unpacked_destroy(&up);
}

/* One event {customer, type, ts, extra...}; price/value 0 means absent. */
typedef struct {
    const char *customer, *type, *order_id;
    int64_t ts;
    double price, value;
    const char *birthday; /* profile events: MM-DD */
} ev;

static void track(tu_conn *c, const ev *evs, size_t n)
{
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "track", 1);
    tu_pack_str(&r.pk, "events");
    msgpack_pack_array(&r.pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const ev *e = &evs[i];
        msgpack_pack_map(&r.pk, 3 + (e->price > 0) + (e->value > 0) + (e->order_id != NULL) + (e->birthday != NULL));
        kv_s(&r, "customer", e->customer);
        kv_s(&r, "type", e->type);
        kv_i(&r, "ts", e->ts);
        if (e->price > 0) {
            tu_pack_str(&r.pk, "price");
            msgpack_pack_double(&r.pk, e->price);
        }
        if (e->value > 0) {
            tu_pack_str(&r.pk, "value");
            msgpack_pack_double(&r.pk, e->value);
        }
        if (e->order_id)
            kv_s(&r, "order_id", e->order_id);
        if (e->birthday)
            kv_s(&r, "birthday", e->birthday);
    }
    const msgpack_object *o = send_req(c, &r, &up);
    expect_ok(o);
    ck_assert_int_eq(tu_get_int(o, "accepted"), (int64_t)n);
    msgpack_unpacked_destroy(&up);
}

static void track1(tu_conn *c, const char *customer, const char *type, int64_t ts, double price)
{
    ev e = {customer, type, NULL, ts, price, 0, NULL};
    track(c, &e, 1);
}

/* ---- reading triggers ---- */

typedef struct {
    char customer[64], kind[16], name[64], id[64];
    uint64_t seq;
    double value;
} trig;

static void str_of(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = tu_get(map, key);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, MSGPACK_OBJECT_STR);
    snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

/* Reads triggers with seq > from (one page of at most limit); fills
 * out (up to cap) and returns how many; *next, *first from the reply. */
static size_t read_page(tu_conn *c, uint64_t from, int64_t limit, int64_t wait_ms, trig *out, size_t cap,
                        uint64_t *next, uint64_t *first)
{
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "triggers", 2 + (wait_ms > 0));
    kv_i(&r, "from", (int64_t)from);
    kv_i(&r, "limit", limit);
    if (wait_ms > 0)
        kv_i(&r, "wait_ms", wait_ms);
    const msgpack_object *o = send_req(c, &r, &up);
    expect_ok(o);
    const msgpack_object *arr = tu_get(o, "triggers");
    ck_assert_int_eq(arr->type, MSGPACK_OBJECT_ARRAY);
    size_t n = 0;
    for (uint32_t i = 0; i < arr->via.array.size && n < cap; i++, n++) {
        const msgpack_object *t = &arr->via.array.ptr[i];
        str_of(t, "customer", out[n].customer, sizeof out[n].customer);
        str_of(t, "kind", out[n].kind, sizeof out[n].kind);
        str_of(t, "name", out[n].name, sizeof out[n].name);
        str_of(t, "id", out[n].id, sizeof out[n].id);
        out[n].seq = (uint64_t)tu_get_int(t, "seq");
        out[n].value = tu_get(t, "value") ? tu_get_double(t, "value") : 0;
        ck_assert(tu_get_int(t, "at") > 0);
    }
    if (next)
        *next = (uint64_t)tu_get_int(o, "next");
    if (first)
        *first = (uint64_t)tu_get_int(o, "first");
    msgpack_unpacked_destroy(&up);
    return n;
}

#define MAX_TRIGS 4096
static trig all[MAX_TRIGS];

/* Every trigger in the outbox, paging by `next`. */
static size_t read_all(tu_conn *c)
{
    size_t n = 0;
    uint64_t from = 0, next;
    for (;;) {
        size_t got = read_page(c, from, 1000, 0, all + n, MAX_TRIGS - n, &next, NULL);
        n += got;
        if (got == 0 || n == MAX_TRIGS)
            return n;
        from = next;
    }
}

static size_t count_of(size_t n, const char *customer, const char *kind, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if ((!customer || strcmp(all[i].customer, customer) == 0) && strcmp(all[i].kind, kind) == 0 &&
            strcmp(all[i].name, name) == 0)
            k++;
    return k;
}

/* Waits (<= ms) until the outbox holds `want` triggers (customer, kind,
 * name). */
static int wait_count(tu_conn *c, const char *customer, const char *kind, const char *name, size_t want, int ms)
{
    int64_t deadline = tu_now_ms() + ms;
    while (tu_now_ms() < deadline) {
        if (count_of(read_all(c), customer, kind, name) >= want)
            return 1;
        usleep(50000);
    }
    return 0;
}

static int wait_for(tu_conn *c, const char *customer, const char *kind, const char *name, int ms)
{
    return wait_count(c, customer, kind, name, 1, ms);
}

/* The members of an audience, all pages of `limit`; returns the count and
 * writes them (comma-joined) into out. */
static size_t members(tu_conn *c, const char *name, int64_t limit, char *out, size_t cap, int *pages)
{
    size_t n = 0;
    char cursor[128] = "";
    out[0] = '\0';
    *pages = 0;
    for (;;) {
        req r;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        req_begin(&r, "audience_members", 2 + (cursor[0] != 0));
        kv_s(&r, "name", name);
        kv_i(&r, "limit", limit);
        if (cursor[0])
            kv_s(&r, "cursor", cursor);
        const msgpack_object *o = send_req(c, &r, &up);
        expect_ok(o);
        (*pages)++;
        const msgpack_object *arr = tu_get(o, "members");
        for (uint32_t i = 0; i < arr->via.array.size; i++, n++) {
            size_t len = strlen(out);
            snprintf(out + len, cap - len, "%s%.*s", len ? "," : "", (int)arr->via.array.ptr[i].via.str.size,
                     arr->via.array.ptr[i].via.str.ptr);
        }
        const msgpack_object *cur = tu_get(o, "cursor");
        if (!cur || cur->type == MSGPACK_OBJECT_NIL) {
            msgpack_unpacked_destroy(&up);
            return n;
        }
        snprintf(cursor, sizeof cursor, "%.*s", (int)cur->via.str.size, cur->via.str.ptr);
        msgpack_unpacked_destroy(&up);
    }
}

/* ---- a server per test ---- */

static tu_server srv;
static char dir[512];
static tu_conn conn;

static int triggers_off; /* the next start() runs with --triggers off */

static void start(const char *cart_after, const char *cooldowns, const char *refresh, uint64_t trigger_max)
{
    config cfg;
    char err[256];
    tu_tempdir(dir, sizeof dir);
    tu_config(&cfg, dir);
    cfg.triggers = !triggers_off;
    triggers_off = 0;
    if (cart_after)
        ck_assert_int_eq(config_set(&cfg, "abandoned-cart-after", cart_after, err, sizeof err), 0);
    if (cooldowns)
        ck_assert_int_eq(config_set(&cfg, "trigger-cooldowns", cooldowns, err, sizeof err), 0);
    if (refresh)
        ck_assert_int_eq(config_set(&cfg, "audience-refresh", refresh, err, sizeof err), 0);
    if (trigger_max)
        cfg.trigger_max = trigger_max;
    tu_server_start(&srv, &cfg);
    tu_connect(&conn, srv.endpoint, ZMQ_DEALER);
}

static void stop(void)
{
    tu_disconnect(&conn);
    tu_server_stop(&srv);
    tu_rmtree(dir);
}

/* ------------------------------------------------------------------ */

START_TEST(bad_rules_and_names)
{
    static const struct {
        const char *name, *rule, *want;
    } cases[] = {
        {"a", "scor > 1", "unknown field"},
        {"a", "score >= ", "column"},
        {"a", "score >= 0.5 and", "column"},
        {"a", "tier == 3", "column"},
        {"bad name", "known", "audience name"},
        {"", "known", "audience name"},
    };
    start(NULL, NULL, NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req r;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        req_begin(&r, "audience_put", 2);
        kv_s(&r, "name", cases[i].name);
        kv_s(&r, "rule", cases[i].rule);
        const msgpack_object *o = send_req(&conn, &r, &up);
        ck_assert_msg(tu_is_error(o, "bad_request"), "case %zu accepted", i);
        char msg[256];
        str_of(tu_get(o, "error"), "message", msg, sizeof msg);
        ck_assert_msg(strstr(msg, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].want);
        msgpack_unpacked_destroy(&up);
    }
    /* unknown audience; unknown field; wrong types */
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    /* a NUL byte inside the rule: the parser would have stopped there and
     * kept "known", an audience of everyone */
    static const char nul_rule[] = "known\0 and false";
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", "nobody");
    tu_pack_str(&r.pk, "rule");
    msgpack_pack_str_with_body(&r.pk, nul_rule, sizeof nul_rule - 1);
    const msgpack_object *nul_reply = send_req(&conn, &r, &up);
    ck_assert(tu_is_error(nul_reply, "bad_request"));
    char nul_msg[256];
    str_of(tu_get(nul_reply, "error"), "message", nul_msg, sizeof nul_msg);
    ck_assert_str_eq(nul_msg, "bad rule: at column 6: a NUL byte");
    req_begin(&r, "audience_list", 0);
    ck_assert_int_eq(tu_get(send_req(&conn, &r, &up), "audiences")->via.array.size, 0);
    req_begin(&r, "audience_members", 1);
    kv_s(&r, "name", "nope");
    ck_assert(tu_is_error(send_req(&conn, &r, &up), "bad_request"));
    req_begin(&r, "triggers", 1);
    kv_s(&r, "from", "x");
    ck_assert(tu_is_error(send_req(&conn, &r, &up), "bad_request"));
    req_begin(&r, "triggers", 1);
    kv_i(&r, "limit", 0);
    ck_assert(tu_is_error(send_req(&conn, &r, &up), "bad_request"));
    req_begin(&r, "audience_list", 1);
    kv_s(&r, "extra", "1");
    ck_assert(tu_is_error(send_req(&conn, &r, &up), "bad_request"));
    msgpack_unpacked_destroy(&up);
    stop();
}
END_TEST

START_TEST(put_list_delete)
{
    start(NULL, NULL, NULL, 0);
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", "hot");
    kv_s(&r, "rule", "score>=0.6   and tier==\"hot\"");
    const msgpack_object *o = send_req(&conn, &r, &up);
    expect_ok(o);
    ck_assert(tu_get_bool(o, "created") && tu_get_bool(o, "changed"));
    /* the same rule in another spelling changes nothing */
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", "hot");
    kv_s(&r, "rule", "(score >= 0.6) and (tier == \"hot\")");
    o = send_req(&conn, &r, &up);
    ck_assert(!tu_get_bool(o, "created") && !tu_get_bool(o, "changed"));
    audience_put(&conn, "a.first", "known");
    req_begin(&r, "audience_list", 0);
    o = send_req(&conn, &r, &up);
    const msgpack_object *arr = tu_get(o, "audiences");
    ck_assert_int_eq(arr->via.array.size, 2);
    char name[64], rule[128];
    str_of(&arr->via.array.ptr[0], "name", name, sizeof name); /* name order */
    ck_assert_str_eq(name, "a.first");
    str_of(&arr->via.array.ptr[1], "rule", rule, sizeof rule);
    ck_assert_str_eq(rule, "score >= 0.6 and tier == \"hot\"");
    req_begin(&r, "audience_delete", 1);
    kv_s(&r, "name", "hot");
    ck_assert(tu_get_bool(send_req(&conn, &r, &up), "deleted"));
    req_begin(&r, "audience_delete", 1);
    kv_s(&r, "name", "hot");
    o = send_req(&conn, &r, &up);
    expect_ok(o);
    ck_assert(!tu_get_bool(o, "deleted"));
    req_begin(&r, "audience_list", 0);
    ck_assert_int_eq(tu_get(send_req(&conn, &r, &up), "audiences")->via.array.size, 1);
    msgpack_unpacked_destroy(&up);
    stop();
}
END_TEST

/* Enter on the event that makes the rule hold, exit on the one that ends
 * it; members follow. */
START_TEST(live_enter_exit)
{
    char list[1024];
    int pages;
    start("1h", NULL, NULL, 0);
    audience_put(&conn, "carts", "cart_open == 1");
    int64_t now = wall_ms();
    track1(&conn, "alice", "add_to_cart", now, 40);
    track1(&conn, "bob", "page_view", now, 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "alice", "enter", "carts"), 1);
    ck_assert_int_eq(count_of(n, "bob", "enter", "carts"), 0);
    ck_assert_int_eq(members(&conn, "carts", 100, list, sizeof list, &pages), 1);
    ck_assert_str_eq(list, "alice");
    ev buy = {"alice", "purchase", "o-1", now + 1, 0, 40, NULL};
    track(&conn, &buy, 1);
    n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "alice", "exit", "carts"), 1);
    ck_assert_int_eq(members(&conn, "carts", 100, list, sizeof list, &pages), 0);
    /* seqs are 1, 2, ... in order, ids distinct */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(all[i].seq, i + 1);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(all[i].id, all[j].id);
    }
    stop();
}
END_TEST

START_TEST(members_pages)
{
    char list[4096], want[4096] = "", id[32];
    int pages;
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "everyone", "known");
    ev evs[25];
    char ids[25][16];
    for (int i = 0; i < 25; i++) {
        snprintf(ids[i], sizeof ids[i], "c%02d", i);
        evs[i] = (ev){ids[i], "page_view", NULL, wall_ms(), 0, 0, NULL};
        snprintf(id, sizeof id, "%s%s", i ? "," : "", ids[i]);
        strcat(want, id);
    }
    track(&conn, evs, 25);
    ck_assert_int_eq(members(&conn, "everyone", 10, list, sizeof list, &pages), 25);
    ck_assert_str_eq(list, want);
    ck_assert_int_eq(pages, 3);
    ck_assert_int_eq(members(&conn, "everyone", 25, list, sizeof list, &pages), 25);
    ck_assert_int_eq(pages, 1);
    /* a changed rule starts over: the old members' index entries go */
    audience_put(&conn, "everyone", "purchase_count >= 1");
    ck_assert_int_eq(members(&conn, "everyone", 25, list, sizeof list, &pages), 0);
    audience_put(&conn, "everyone", "known");
    ck_assert_int_eq(members(&conn, "everyone", 25, list, sizeof list, &pages), 25);
    stop();
}
END_TEST

/* Customers already in the store when an audience is defined become its
 * members on the first pass, without enter triggers; later ones enter. */
START_TEST(first_pass_members_without_triggers)
{
    char list[1024];
    int pages;
    start(NULL, NULL, NULL, 0);
    int64_t now = wall_ms();
    track1(&conn, "old1", "page_view", now, 0);
    track1(&conn, "old2", "page_view", now, 0);
    /* the reply waits for the first pass: members are exact right after it */
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", "seen");
    kv_s(&r, "rule", "known");
    const msgpack_object *o = send_req(&conn, &r, &up);
    ck_assert(tu_get_bool(o, "created") && tu_get_bool(o, "ready"));
    msgpack_unpacked_destroy(&up);
    ck_assert_int_eq(members(&conn, "seen", 100, list, sizeof list, &pages), 2);
    ck_assert_str_eq(list, "old1,old2");
    track1(&conn, "new1", "page_view", now, 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, NULL, "enter", "seen"), 1);
    ck_assert_int_eq(count_of(n, "new1", "enter", "seen"), 1);
    stop();
}
END_TEST

/* Time alone moves a customer into an audience (the sweep). */
START_TEST(time_based_membership)
{
    start(NULL, NULL, "1s", 0);
    audience_put(&conn, "quiet", "days_since_last_seen > 0.00003"); /* ~2.6 s */
    track1(&conn, "q", "page_view", wall_ms(), 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "q", "enter", "quiet"), 0);
    ck_assert_msg(wait_for(&conn, "q", "enter", "quiet", 10000), "no enter after the customer went quiet");
    stop();
}
END_TEST

/* A customer the automation met live, with events of old times (a history
 * sent over the wire), gets `enter` when time alone brings it into an
 * audience: only customers it never met are recorded silently.  (The
 * sweep once took such a customer, with nothing under way, for one stored
 * before automation began.) */
START_TEST(a_live_customer_with_old_events_enters_with_a_trigger)
{
    start(NULL, NULL, "1s", 0);
    int64_t now = wall_ms();
    char rule[96];
    /* 30 days and 3 seconds: true about 3 s after the event below */
    snprintf(rule, sizeof rule, "days_since_last_seen > %.9f", 30.0 + 3.0 / 86400.0);
    audience_put(&conn, "quiet", rule);
    track1(&conn, "q", "page_view", now - 30 * 86400000LL, 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "q", "enter", "quiet"), 0);
    ck_assert_msg(wait_for(&conn, "q", "enter", "quiet", 12000), "no enter when q went quiet");
    stop();
}
END_TEST

/* An event stamped ahead of the clock (allowed up to a day ahead) counts
 * when its time comes, as it does for reads: no enter, no moment before,
 * and the enter right after, without another event. */
START_TEST(an_event_ahead_of_the_clock_counts_when_its_time_comes)
{
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "buyers", "purchase_count >= 1");
    int64_t now = wall_ms();
    ev later = {"carol", "purchase", "c-1", now + 3000, 0, 80, NULL};
    ev today = {"dave", "purchase", "d-1", now - 1000, 0, 80, NULL};
    track(&conn, &later, 1);
    track(&conn, &today, 1);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "dave", "enter", "buyers"), 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(all[i].customer, "carol") != 0, "carol: %s %s before her purchase was due", all[i].kind,
                      all[i].name);
    ck_assert_msg(wall_ms() < now + 3000, "the check above ran after carol's purchase was due: too slow a machine");
    ck_assert_msg(wait_for(&conn, "carol", "enter", "buyers", 10000), "no enter once carol's purchase was due");
    ck_assert_int_ge(wall_ms(), now + 3000);
    stop();
}
END_TEST

/* The scenario: exactly one abandoned-cart trigger per abandoned
 * cart, none for a cart bought within the delay, none per read. */
START_TEST(abandoned_cart_once)
{
    start("1s", NULL, NULL, 0);
    int64_t now = wall_ms();
    track1(&conn, "cart1", "add_to_cart", now, 84.5);
    track1(&conn, "cart2", "add_to_cart", now, 20);
    ev buy = {"cart2", "purchase", "o-2", now + 200, 0, 20, NULL};
    track(&conn, &buy, 1);
    ck_assert(wait_for(&conn, "cart1", "moment", "abandoned_cart", 8000));
    /* reads and time do not fire it again */
    for (int i = 0; i < 5; i++) {
        req r;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        req_begin(&r, "score", 1);
        kv_s(&r, "customer", "cart1");
        expect_ok(send_req(&conn, &r, &up));
        msgpack_unpacked_destroy(&up);
    }
    usleep(2500000);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "cart1", "moment", "abandoned_cart"), 1);
    ck_assert_int_eq(count_of(n, "cart2", "moment", "abandoned_cart"), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, "abandoned_cart") == 0)
            ck_assert_double_eq_tol(all[i].value, 84.5, 1e-9);
    /* the customer comes back without buying and leaves again: the same
     * cart, no second trigger */
    track1(&conn, "cart1", "page_view", wall_ms(), 0);
    usleep(2500000);
    n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "cart1", "moment", "abandoned_cart"), 1);
    stop();
}
END_TEST

/* A history streamed to the service (a backlog, `import --connect`): a
 * checkout and a cart stamped two days ago arrive now, the checkout's
 * order in the next request.  Silence counts from when the events were
 * heard, not from their time: the bought checkout fires nothing, and the
 * cart no order follows fires after the delay -- not at once.  (Both once
 * fired as soon as they landed, the order then following too late.) */
START_TEST(a_cart_heard_late_waits_its_delay_from_when_it_was_heard)
{
    start("2s", NULL, NULL, 0);
    int64_t now = wall_ms(), then = now - 2 * 86400000LL;
    ev checkout = {"late-buyer", "checkout", NULL, then, 0, 40, NULL};
    track(&conn, &checkout, 1);
    track1(&conn, "late-cart", "add_to_cart", then, 25);
    usleep(500000); /* the order comes in a request of its own, after a commit */
    ev buy = {"late-buyer", "purchase", "o-late", then + 60000, 0, 40, NULL};
    track(&conn, &buy, 1);
    usleep(700000); /* 1.2 s after the events were heard: within the delay */
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "late-cart", "moment", "abandoned_cart"), 0);
    ck_assert_int_eq(count_of(n, "late-buyer", "moment", "abandoned_cart"), 0);
    ck_assert_msg(wall_ms() < now + 1900, "the check above ran after the delay: too slow a machine");
    ck_assert(wait_for(&conn, "late-cart", "moment", "abandoned_cart", 8000));
    ck_assert_int_ge(wall_ms(), now + 2000);
    usleep(1500000);
    ck_assert_int_eq(count_of(read_all(&conn), "late-buyer", "moment", "abandoned_cart"), 0);
    stop();
}
END_TEST

/* An alias folding an old visitor record into a customer with an open
 * cart is no event of the customer's: the cart's silence goes on from
 * when its events were heard, not from the alias.  (Before, the alias
 * restarted it: the cart fired a whole delay after the alias.) */
START_TEST(an_alias_does_not_restart_a_carts_silence)
{
    start("2s", NULL, NULL, 0);
    int64_t t0 = tu_now_ms(), then = wall_ms() - 2 * 86400000LL;
    track1(&conn, "old-visitor", "page_view", then - 60000, 0);
    track1(&conn, "cart-keeper", "add_to_cart", then, 25); /* heard late: its silence runs from now */
    usleep(1000000);
    ck_assert_int_eq(alias(&conn, "old-visitor", "cart-keeper"), 1);
    /* due 2 s after the cart was heard; after the alias it would be 3 s */
    int found = wait_for(&conn, "cart-keeper", "moment", "abandoned_cart", (int)(t0 + 2600 - tu_now_ms()));
    ck_assert_msg(found, "no abandoned_cart 2.6 s after the cart was heard (the alias 1 s in restarted its silence?)");
    ck_assert_int_ge(tu_now_ms() - t0, 2000);
    stop();
}
END_TEST

/* A new cart after a purchase is a new occurrence: it fires again once
 * the cool-down allows, and is recorded without a trigger inside it. */
START_TEST(cooldown)
{
    start("1s", "abandoned_cart=4s", NULL, 0);
    int64_t now = wall_ms();
    track1(&conn, "k", "add_to_cart", now, 10);
    ck_assert(wait_for(&conn, "k", "moment", "abandoned_cart", 8000));
    ev buy = {"k", "purchase", "o-k1", wall_ms(), 0, 10, NULL};
    track(&conn, &buy, 1);
    track1(&conn, "k", "add_to_cart", wall_ms() + 1, 11); /* a new cart, inside the 4 s cool-down */
    usleep(2500000);
    ck_assert_int_eq(count_of(read_all(&conn), "k", "moment", "abandoned_cart"), 1);
    usleep(2000000); /* the cool-down is over: the same occurrence still does not fire */
    ck_assert_int_eq(count_of(read_all(&conn), "k", "moment", "abandoned_cart"), 1);
    ev buy2 = {"k", "purchase", "o-k2", wall_ms(), 0, 11, NULL};
    track(&conn, &buy2, 1);
    track1(&conn, "k", "add_to_cart", wall_ms() + 1, 12); /* a third cart, after the cool-down */
    ck_assert(wait_count(&conn, "k", "moment", "abandoned_cart", 2, 8000));
    ck_assert_int_eq(count_of(read_all(&conn), "k", "moment", "abandoned_cart"), 2);
    stop();
}
END_TEST

/* Event-driven moments fire once per occurrence too. */
START_TEST(moments_once)
{
    start(NULL, NULL, NULL, 0);
    int64_t now = wall_ms();
    ev buy = {"m", "purchase", "o-m1", now, 0, 30, NULL};
    track(&conn, &buy, 1);
    track1(&conn, "m", "page_view", now + 1, 0);
    track1(&conn, "m", "page_view", now + 2, 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "m", "moment", "account_invite"), 1);
    track1(&conn, "m", "signup", now + 3, 0); /* the condition ends */
    n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "m", "moment", "account_invite"), 1);
    stop();
}
END_TEST

/* Every moment fires once for its occurrence, whatever follows: a
 * birthday this week, a lapsed buyer (win_back, and recovery: lapsed is
 * disappointment), a purchase 10 days ago without a review, a refund, a
 * big spender. */
START_TEST(each_moment_once)
{
    start(NULL, NULL, NULL, 0);
    int64_t now = wall_ms(), day = 86400000;
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    char mmdd[32];
    gmtime_r(&t, &tm);
    snprintf(mmdd, sizeof mmdd, "%02d-%02d", tm.tm_mon + 1, tm.tm_mday);
    ev evs[] = {
        {"bd", "profile", NULL, now, 0, 0, mmdd},
        {"wb", "purchase", "wb-1", now - 500 * day, 0, 80, NULL},
        {"wb", "purchase", "wb-2", now - 400 * day, 0, 80, NULL},
        {"rv", "purchase", "rv-1", now - 10 * day, 0, 50, NULL},
        {"rf", "purchase", "rf-1", now - 2 * day, 0, 60, NULL},
        {"rf", "refund", NULL, now - day, 0, 60, NULL},
        {"vip", "purchase", "vip-1", now - 120 * day, 0, 40000, NULL},
        {"vip", "purchase", "vip-2", now - 60 * day, 0, 40000, NULL},
        {"vip", "purchase", "vip-3", now - 3 * day, 0, 40000, NULL},
    };
    static const struct {
        const char *customer, *moment;
    } want[] = {{"bd", "birthday"},       {"wb", "win_back"}, {"wb", "recovery"},   {"rv", "review_request"},
                {"rf", "recovery"},       {"vip", "vip_reward"}, {"rv", "account_invite"}};
    track(&conn, evs, sizeof evs / sizeof evs[0]);
    size_t n = read_all(&conn);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(count_of(n, want[i].customer, "moment", want[i].moment) == 1, "%s: %s fired %zu times",
                      want[i].customer, want[i].moment, count_of(n, want[i].customer, "moment", want[i].moment));
    ck_assert_int_eq(count_of(n, "bd", "moment", "win_back"), 0); /* never bought */
    /* more events: nothing fires again */
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 5; i++) {
            const char *who[] = {"bd", "wb", "rv", "rf", "vip"};
            track1(&conn, who[i], "page_view", wall_ms(), 0);
        }
    n = read_all(&conn);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(count_of(n, want[i].customer, "moment", want[i].moment) == 1, "%s: %s fired again",
                      want[i].customer, want[i].moment);
    stop();
}
END_TEST

/* A birthday is one occurrence per year: changed to the next day and back
 * inside its window, with a cool-down shorter than the change, it fires
 * once (it fired for each date, the first one twice). */
START_TEST(a_birthday_changed_back_and_forth_fires_once_a_year)
{
    start(NULL, "birthday=1s", NULL, 0);
    int64_t now = wall_ms(), day = 86400000;
    char d0[16], d1[16];
    for (int k = 0; k < 2; k++) {
        time_t t = (time_t)((now + k * day) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        snprintf(k ? d1 : d0, sizeof d0, "%02d-%02d", tm.tm_mon + 1, tm.tm_mday);
    }
    const char *dates[] = {d0, d1, d0};
    for (int i = 0; i < 3; i++) {
        ev e = {"bday", "profile", NULL, wall_ms(), 0, 0, dates[i]};
        track(&conn, &e, 1);
        usleep(1500000); /* past the cool-down */
    }
    ck_assert_int_eq(count_of(read_all(&conn), "bday", "moment", "birthday"), 1);
    stop();
}
END_TEST

/* Rewrites customer id's stored birthday occurrence key as a build before
 * calendar-year keys wrote it: the date's day number (days since 1970). */
static void make_birthday_key_legacy(const char *path, const char *id, int64_t day)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi cust;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ck_assert_int_eq(mdb_env_open(env, path, 0, 0640), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "customers", 0, &cust), 0);
    MDB_val k = {strlen(id), (void *)id}, v;
    ck_assert_int_eq(mdb_get(txn, cust, &k, &v), 0);
    uint8_t copy[8192];
    ck_assert_uint_le(v.mv_size, sizeof copy);
    memcpy(copy, v.mv_data, v.mv_size);
    ck_assert_uint_eq(copy[0], 0xC4); /* a value with an automation state */
    bytecur_r r = {copy + 1, v.mv_size - 1, 0};
    uint64_t rec_len = bytecur_get_varint(&r);
    r.p += rec_len, r.left -= rec_len;
    (void)bytecur_get_varint(&r);       /* the state's length */
    uint8_t *st = (uint8_t *)r.p, n = st[9]; /* version, be64 timer, u8 moments */
    int patched = 0;
    for (uint8_t i = 0; i < n; i++) {
        uint8_t *m = st + 10 + i * 18;  /* u8 moment, u8 occ, be64 key, be64 fired */
        if (m[0] != JA_BIRTHDAY)
            continue;
        for (int b = 0; b < 8; b++)
            m[2 + b] = (uint8_t)((uint64_t)day >> (56 - 8 * b));
        patched = 1;
    }
    ck_assert_msg(patched, "no birthday moment in the state");
    MDB_val nv = {v.mv_size, copy};
    ck_assert_int_eq(mdb_put(txn, cust, &k, &nv, 0), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A store written before birthday keys were calendar years holds the
 * date's day number: the same occurrence, so restarting on it fires no
 * birthday again (the sweep re-evaluates everyone; each birthday in its
 * window would have fired once more, cool-down allowing). */
START_TEST(an_older_states_birthday_is_the_same_occurrence)
{
    start(NULL, "birthday=1s", "1s", 0);
    int64_t now = wall_ms(), today = now / 86400000;
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    char mmdd[16];
    gmtime_r(&t, &tm);
    snprintf(mmdd, sizeof mmdd, "%02d-%02d", tm.tm_mon + 1, tm.tm_mday);
    ev e = {"bd-old", "profile", NULL, now, 0, 0, mmdd};
    track(&conn, &e, 1);
    ck_assert(wait_for(&conn, "bd-old", "moment", "birthday", 8000));
    tu_disconnect(&conn);
    tu_server_stop(&srv); /* the store stays */
    make_birthday_key_legacy(dir, "bd-old", today);
    config cfg;
    char err[256];
    tu_config(&cfg, dir);
    ck_assert_int_eq(config_set(&cfg, "trigger-cooldowns", "birthday=1s", err, sizeof err), 0);
    ck_assert_int_eq(config_set(&cfg, "audience-refresh", "1s", err, sizeof err), 0);
    usleep(1200000); /* past the cool-down */
    tu_server_start(&srv, &cfg);
    tu_connect(&conn, srv.endpoint, ZMQ_DEALER);
    usleep(3000000); /* a sweep or two */
    ck_assert_int_eq(count_of(read_all(&conn), "bd-old", "moment", "birthday"), 1);
    stop();
}
END_TEST

/* An alias merges `from` away: it leaves its audiences with an `exit`
 * each (assessed as it was), so a consumer that keeps member lists from
 * the stream lets it go; the customer it joined fires no second enter. */
START_TEST(an_alias_fires_the_exits_of_from)
{
    char list[256];
    int pages;
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "all", "known");
    track1(&conn, "anon-7", "page_view", wall_ms(), 0);
    track1(&conn, "dave", "page_view", wall_ms(), 0);
    ck_assert(wait_for(&conn, "anon-7", "enter", "all", 8000));
    ck_assert(wait_for(&conn, "dave", "enter", "all", 8000));
    ck_assert(alias(&conn, "anon-7", "dave"));
    ck_assert(wait_for(&conn, "anon-7", "exit", "all", 8000));
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "anon-7", "exit", "all"), 1);
    ck_assert_int_eq(count_of(n, "dave", "enter", "all"), 1);
    ck_assert_int_eq(count_of(n, "dave", "exit", "all"), 0);
    ck_assert_int_eq(members(&conn, "all", 100, list, sizeof list, &pages), 1);
    ck_assert_str_eq(list, "dave");
    stop();
}
END_TEST

/* A forget while the server runs with --triggers off still erases the
 * customer's member rows and triggers (the automation's tables stay in the
 * store): when the automation runs again the id is in no list, and the
 * same id coming back anew is counted once, as a member only when its new
 * events make it one. */
static void restart_same_store(int triggers)
{
    config cfg;
    char err[256];
    tu_disconnect(&conn);
    tu_server_stop(&srv); /* the store stays */
    tu_config(&cfg, dir);
    cfg.triggers = triggers;
    ck_assert_int_eq(config_set(&cfg, "audience-refresh", "1s", err, sizeof err), 0);
    tu_server_start(&srv, &cfg);
    tu_connect(&conn, srv.endpoint, ZMQ_DEALER);
}

START_TEST(a_forget_with_triggers_off_erases_memberships_and_triggers)
{
    char list[256];
    int pages;
    start(NULL, NULL, "1s", 0);
    audience_put(&conn, "buyers", "purchase_count >= 1");
    ev buy = {"alice", "purchase", "o1", wall_ms(), 0, 10, NULL};
    track(&conn, &buy, 1);
    ck_assert(wait_for(&conn, "alice", "enter", "buyers", 8000));
    ck_assert_int_eq(members(&conn, "buyers", 100, list, sizeof list, &pages), 1);
    restart_same_store(0);
    forget_over_wire(&conn, "alice");
    restart_same_store(1);
    list[0] = '\0';
    ck_assert_int_eq(members(&conn, "buyers", 100, list, sizeof list, &pages), 0);
    ck_assert_int_eq(count_of(read_all(&conn), "alice", "enter", "buyers"), 0);
    track1(&conn, "alice", "page_view", wall_ms(), 0); /* the id again, no buyer now */
    ev other = {"bob", "purchase", "o2", wall_ms(), 0, 10, NULL};
    track(&conn, &other, 1);
    ck_assert(wait_for(&conn, "bob", "enter", "buyers", 8000));
    usleep(1500000); /* a sweep */
    list[0] = '\0';
    ck_assert_int_eq(members(&conn, "buyers", 100, list, sizeof list, &pages), 1);
    ck_assert_str_eq(list, "bob");
    stop();
}
END_TEST

/* Pages by `next` give every trigger once, in order; `from` is exclusive;
 * ids are the same on every read. */
START_TEST(resume_from_seq)
{
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "all", "known");
    ev evs[30];
    char ids[30][16];
    for (int i = 0; i < 30; i++) {
        snprintf(ids[i], sizeof ids[i], "r%02d", i);
        evs[i] = (ev){ids[i], "page_view", NULL, wall_ms(), 0, 0, NULL};
    }
    track(&conn, evs, 30);
    trig page[8], first_read[30];
    uint64_t from = 0, next;
    size_t total = 0;
    for (int round = 0; round < 10; round++) {
        size_t got = read_page(&conn, from, 7, 0, page, 8, &next, NULL);
        for (size_t i = 0; i < got; i++) {
            ck_assert_int_eq(page[i].seq, from + 1 + i);
            first_read[total++] = page[i];
        }
        if (got == 0) {
            ck_assert_int_eq(next, from);
            break;
        }
        from = next;
    }
    ck_assert_int_eq(total, 30);
    /* from = 0 reads everything; from = 29 only seq 30; again the same ids */
    ck_assert_int_eq(read_page(&conn, 29, 100, 0, page, 8, &next, NULL), 1);
    ck_assert_int_eq(page[0].seq, 30);
    ck_assert_str_eq(page[0].id, first_read[29].id);
    ck_assert_int_eq(read_page(&conn, 30, 100, 0, page, 8, &next, NULL), 0);
    stop();
}
END_TEST

/* The outbox keeps the newest trigger-max triggers; a reader from before
 * them starts at the first kept and is told where that is. */
START_TEST(retention)
{
    start(NULL, NULL, NULL, 1000);
    audience_put(&conn, "all", "known");
    static ev evs[500];
    static char ids[1500][16];
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 500; i++) {
            snprintf(ids[b * 500 + i], sizeof ids[0], "t%04d", b * 500 + i);
            evs[i] = (ev){ids[b * 500 + i], "page_view", NULL, wall_ms(), 0, 0, NULL};
        }
        track(&conn, evs, 500);
    }
    trig page[4];
    uint64_t next, first = 0;
    int64_t deadline = tu_now_ms() + 10000;
    while (tu_now_ms() < deadline) {
        read_page(&conn, 0, 1, 0, page, 4, &next, &first);
        if (first == 501)
            break;
        usleep(100000);
    }
    ck_assert_int_eq(first, 501);
    ck_assert_int_eq(read_page(&conn, 0, 1, 0, page, 4, &next, &first), 1);
    ck_assert_int_eq(page[0].seq, 501);
    ck_assert_str_eq(page[0].customer, "t0500");
    stop();
}
END_TEST

/* A burst of triggers far past trigger-max is pruned to the bound in a
 * few seconds, not at 1,000 a second (20,000 triggers and a bound of
 * 1,000 took 19 s before). */
START_TEST(a_burst_past_the_count_bound_is_pruned_at_once)
{
    enum { BATCH = 500, BATCHES = 40 };
    start(NULL, NULL, NULL, 1000);
    audience_put(&conn, "all", "known");
    static ev evs[BATCH];
    static char ids[BATCH][16];
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof ids[0], "b%05d", b * BATCH + i);
            evs[i] = (ev){ids[i], "page_view", NULL, wall_ms(), 0, 0, NULL};
        }
        track(&conn, evs, BATCH);
    }
    trig page[4];
    uint64_t next, first = 0;
    int64_t t0 = tu_now_ms(), deadline = t0 + 10000;
    while (tu_now_ms() < deadline) {
        read_page(&conn, 0, 1, 0, page, 4, &next, &first);
        if (first == BATCH * BATCHES - 1000 + 1)
            break;
        usleep(50000);
    }
    ck_assert_msg(first == BATCH * BATCHES - 1000 + 1, "after %lld ms the outbox begins at %llu",
                  (long long)(tu_now_ms() - t0), (unsigned long long)first);
    stop();
}
END_TEST

typedef struct {
    const char *endpoint;
    int delay_ms;
} later_arg;

static void *track_later(void *arg)
{
    later_arg *a = arg;
    tu_conn c;
    usleep((useconds_t)a->delay_ms * 1000);
    tu_connect(&c, a->endpoint, ZMQ_DEALER);
    track1(&c, "late", "page_view", wall_ms(), 0);
    tu_disconnect(&c);
    return NULL;
}

/* A waiting `triggers` answers as soon as a trigger is committed, and
 * with nothing when its wait ends. */
START_TEST(long_poll)
{
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "all", "known");
    trig page[4];
    uint64_t next;
    int64_t t0 = tu_now_ms();
    ck_assert_int_eq(read_page(&conn, 0, 10, 300, page, 4, &next, NULL), 0);
    int64_t waited = tu_now_ms() - t0;
    ck_assert_msg(waited >= 250 && waited < 3000, "an empty wait of 300 ms took %lld ms", (long long)waited);
    pthread_t th;
    later_arg a = {srv.endpoint, 300};
    ck_assert_int_eq(pthread_create(&th, NULL, track_later, &a), 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(read_page(&conn, 0, 10, 8000, page, 4, &next, NULL), 1);
    waited = tu_now_ms() - t0;
    pthread_join(th, NULL);
    ck_assert_str_eq(page[0].customer, "late");
    ck_assert_msg(waited < 5000, "the trigger came after %lld ms", (long long)waited);
    stop();
}
END_TEST

/* forget takes the customer out of every audience (no trigger), drops
 * its timer and erases its triggers from the outbox. */
START_TEST(forget_leaves_audiences)
{
    char list[256];
    int pages;
    start(NULL, NULL, NULL, 0);
    audience_put(&conn, "all", "known");
    track1(&conn, "gone", "add_to_cart", wall_ms(), 5);
    track1(&conn, "stays", "add_to_cart", wall_ms(), 5);
    track1(&conn, "anon-1", "page_view", wall_ms(), 0);
    ck_assert_int_eq(members(&conn, "all", 10, list, sizeof list, &pages), 3);
    ck_assert_int_eq(count_of(read_all(&conn), "gone", "enter", "all"), 1);
    ck_assert_int_eq(count_of(read_all(&conn), "anon-1", "enter", "all"), 1);
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    /* the visitor logs in: merged into "gone", out of the audience as itself */
    req_begin(&r, "alias", 2);
    kv_s(&r, "from", "anon-1");
    kv_s(&r, "to", "gone");
    ck_assert(tu_get_bool(send_req(&conn, &r, &up), "merged"));
    ck_assert_int_eq(members(&conn, "all", 10, list, sizeof list, &pages), 2);
    ck_assert_str_eq(list, "gone,stays");
    req_begin(&r, "forget", 1);
    kv_s(&r, "customer", "gone");
    ck_assert(tu_get_bool(send_req(&conn, &r, &up), "deleted"));
    msgpack_unpacked_destroy(&up);
    ck_assert_int_eq(members(&conn, "all", 10, list, sizeof list, &pages), 1);
    ck_assert_str_eq(list, "stays");
    /* erasure: no trigger of the customer is left in the outbox, others are */
    size_t n = read_all(&conn);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_ne(all[i].customer, "gone");
        ck_assert_str_ne(all[i].customer, "anon-1"); /* merged into it: its triggers go too */
    }
    ck_assert_int_eq(count_of(n, "stays", "enter", "all"), 1);
    stop();
}
END_TEST

/* A visitor abandons a cart, the trigger fires, then the visitor logs in:
 * the customer it is merged into now holds the same open cart, and fires
 * nothing more for it inside the moment's cool-down (one email per cart,
 * not one per identity); a cart of the customer's own still fires. */
START_TEST(an_alias_does_not_fire_the_visitors_cart_again)
{
    start("1s", NULL, NULL, 0);
    int64_t now = wall_ms();
    track1(&conn, "shopper", "page_view", now - 60000, 0);
    track1(&conn, "visitor-7", "add_to_cart", now, 42);
    ck_assert(wait_for(&conn, "visitor-7", "moment", "abandoned_cart", 8000));
    ck_assert(alias(&conn, "visitor-7", "shopper"));
    usleep(2500000); /* the merged cart is silent for longer than the delay */
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, "shopper", "moment", "abandoned_cart"), 0);
    ck_assert_int_eq(count_of(n, "visitor-7", "moment", "abandoned_cart"), 1); /* what fired stays */
    /* an alias of a visitor whose cart never fired changes nothing: the
     * customer's merged cart fires once, as its own would */
    track1(&conn, "visitor-8", "add_to_cart", wall_ms(), 9);
    ck_assert(alias(&conn, "visitor-8", "buyer-8"));
    ck_assert(wait_for(&conn, "buyer-8", "moment", "abandoned_cart", 8000));
    ck_assert_int_eq(count_of(read_all(&conn), "visitor-8", "moment", "abandoned_cart"), 0);
    stop();
}
END_TEST

/* --triggers off: no automation work, audience writes refused with a
 * reason, the outbox stays empty, events are stored as always. */
START_TEST(triggers_off_does_nothing)
{
    triggers_off = 1;
    start(NULL, NULL, NULL, 0);
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "audience_put", 2);
    kv_s(&r, "name", "all");
    kv_s(&r, "rule", "known");
    const msgpack_object *o = send_req(&conn, &r, &up);
    ck_assert(tu_is_error(o, "unavailable"));
    char msg[256];
    str_of(tu_get(o, "error"), "message", msg, sizeof msg);
    ck_assert_msg(strstr(msg, "triggers off") != NULL, "%s", msg);
    ev buy = {"x", "purchase", "o-x", wall_ms(), 0, 10, NULL};
    track(&conn, &buy, 1);
    ck_assert_int_eq(read_all(&conn), 0);
    req_begin(&r, "stats", 0);
    o = send_req(&conn, &r, &up);
    ck_assert_int_eq(tu_get_int(o, "automation_evaluations"), 0);
    msgpack_unpacked_destroy(&up);
    stop();
}
END_TEST

/* The trigger counters of `stats` count what the outbox holds: a group
 * whose commit fails (a full disk, once) counts nothing, and the track
 * sent again counts its trigger once (before, the failed group's enter
 * was counted too).  A background txn may take the failed commit instead:
 * then another customer is tried (at most 5). */
START_TEST(trigger_counters_count_what_the_outbox_holds)
{
    start("1h", NULL, NULL, 0);
    audience_put(&conn, "carts", "cart_open == 1");
    int failed = 0;
    for (int i = 0; i < 5 && !failed; i++) {
        char customer[32];
        snprintf(customer, sizeof customer, "c%d", i);
        store_fault_set(STORE_FAULT_COMMIT, NULL, ENOSPC, 1);
        req r;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        req_begin(&r, "track", 1);
        tu_pack_str(&r.pk, "events");
        msgpack_pack_array(&r.pk, 1);
        msgpack_pack_map(&r.pk, 4);
        kv_s(&r, "customer", customer);
        kv_s(&r, "type", "add_to_cart");
        kv_i(&r, "ts", wall_ms());
        tu_pack_str(&r.pk, "price");
        msgpack_pack_double(&r.pk, 40);
        failed = tu_is_error(send_req(&conn, &r, &up), "unavailable");
        msgpack_unpacked_destroy(&up);
        store_fault_clear();
        if (failed) /* sent again, as a client does after `unavailable` */
            track1(&conn, customer, "add_to_cart", wall_ms(), 40);
    }
    ck_assert_msg(failed, "no track met the failed commit in 5 tries");
    size_t n = read_all(&conn), enters = 0;
    for (size_t i = 0; i < n; i++)
        enters += strcmp(all[i].kind, "enter") == 0;
    req r;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    req_begin(&r, "stats", 0);
    const msgpack_object *o = send_req(&conn, &r, &up);
    ck_assert_int_eq(tu_get_int(o, "triggers_enters"), (int64_t)enters);
    msgpack_unpacked_destroy(&up);
    stop();
}
END_TEST

/* kill -9 right after acknowledged events: every trigger those events
 * caused is in the outbox after the restart.  Bounded: 4 rounds. */
START_TEST(kill9_loses_no_trigger)
{
    char ddir[512], ep[256];
    tu_tempdir(ddir, sizeof ddir);
    const char *extra[] = {"--abandoned-cart-after", "1h", NULL};
    int sent = 0;
    for (int round = 0; round < 4; round++) {
        pid_t pid = tu_spawn_serve(ddir, ep, sizeof ep, extra);
        tu_connect(&conn, ep, ZMQ_DEALER);
        if (round == 0)
            audience_put(&conn, "all", "known");
        /* acknowledged: committed with their triggers */
        for (int i = 0; i < 50; i++, sent++) {
            char id[32];
            snprintf(id, sizeof id, "k%04d", sent);
            track1(&conn, id, "page_view", wall_ms(), 0);
        }
        tu_disconnect(&conn);
        tu_kill_wait(pid, SIGKILL);
    }
    pid_t pid = tu_spawn_serve(ddir, ep, sizeof ep, extra);
    tu_connect(&conn, ep, ZMQ_DEALER);
    size_t n = read_all(&conn);
    ck_assert_int_eq(count_of(n, NULL, "enter", "all"), (size_t)sent);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(all[i].seq, i + 1); /* no gap, no repeat */
    tu_disconnect(&conn);
    tu_kill_wait(pid, SIGTERM);
    tu_rmtree(ddir);
}
END_TEST

/* A seq, and so an id, is never given twice: forget erasing the newest
 * triggers once let the next trigger take the erased one's seq and id, so
 * a consumer that had handled it never saw the new one. */

START_TEST(seqs_are_never_given_twice_after_forget)
{
    char ddir[512], ep[256], erased_id[64];
    tu_tempdir(ddir, sizeof ddir);
    const char *extra[] = {NULL};
    pid_t pid = tu_spawn_serve(ddir, ep, sizeof ep, extra);
    tu_connect(&conn, ep, ZMQ_DEALER);
    audience_put(&conn, "all", "known");
    track1(&conn, "u1", "page_view", wall_ms(), 0);
    track1(&conn, "u2", "page_view", wall_ms(), 0);
    track1(&conn, "u3", "page_view", wall_ms(), 0);
    size_t n = read_all(&conn);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(all[2].customer, "u3");
    snprintf(erased_id, sizeof erased_id, "%s", all[2].id);
    forget_over_wire(&conn, "u3"); /* the newest trigger goes */
    track1(&conn, "u4", "page_view", wall_ms(), 0);
    trig page[4];
    uint64_t next;
    ck_assert_int_eq(read_page(&conn, 3, 10, 0, page, 4, &next, NULL), 1); /* a reader that handled seq 3 */
    ck_assert_int_eq(page[0].seq, 4);
    ck_assert_str_eq(page[0].customer, "u4");
    ck_assert_str_ne(page[0].id, erased_id);
    /* the same across a restart, with the newest erased again */
    forget_over_wire(&conn, "u4");
    tu_disconnect(&conn);
    ck_assert_int_eq(tu_kill_wait(pid, SIGTERM), 0);
    pid = tu_spawn_serve(ddir, ep, sizeof ep, extra);
    tu_connect(&conn, ep, ZMQ_DEALER);
    track1(&conn, "u5", "page_view", wall_ms(), 0);
    ck_assert_int_eq(read_page(&conn, 4, 10, 0, page, 4, &next, NULL), 1);
    ck_assert_int_eq(page[0].seq, 5);
    ck_assert_str_eq(page[0].customer, "u5");
    tu_disconnect(&conn);
    tu_kill_wait(pid, SIGTERM);
    tu_rmtree(ddir);
}
END_TEST

/* The same at the store when pruning empties the outbox: the reader is
 * told where numbering stands (last), the next trigger goes on from it,
 * and `leadscore triggers` warns a reader parked before the gap, once. */
static int count_seen(void *arg, uint64_t seq, const uint8_t *bytes, size_t len)
{
    (void)seq;
    (void)bytes;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void append_one(store *s, const char *customer, uint64_t *seq)
{
    trigger_outbox o;
    store_wtxn *w;
    trigger_record t = {TRIGGER_ENTER, "all", customer, strlen(customer), wall_ms(), 0.5, "warm", "prospect",
                        "prospect", "", 1.0, 0};
    trigger_outbox_init(&o);
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(trigger_outbox_begin(&o, w), LS_OK);
    ck_assert_int_eq(trigger_append(&o, w, &t, seq), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    trigger_outbox_free(&o);
}

static void read_bounds(store *s, uint64_t from, uint64_t *first, uint64_t *last, int *seen)
{
    store_reader *r;
    *seen = 0;
    ck_assert_int_eq(store_reader_open(s, &r), LS_OK);
    ck_assert_int_eq(store_reader_begin(r), LS_OK);
    ck_assert_int_eq(trigger_read(r, from, 100, count_seen, seen, first, last), LS_OK);
    store_reader_end(r);
    store_reader_close(&r);
}

START_TEST(seqs_go_on_when_pruning_empties_the_outbox)
{
    char sdir[512], err[256], out[4096], errtext[4096];
    store *s;
    store_options so = {0};
    feature_decay decay = {3 * 86400000LL, 30 * 86400000LL};
    uint64_t seq, first, last;
    int seen;
    size_t pruned;
    tu_tempdir(sdir, sizeof sdir);
    ck_assert_int_eq(store_open(&s, sdir, &so, &decay, err, sizeof err), LS_OK);
    for (int i = 1; i <= 3; i++) {
        append_one(s, "p", &seq);
        ck_assert_int_eq(seq, (uint64_t)i);
    }
    store_wtxn *w;
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(trigger_prune(w, INT64_MAX, 1000, 100, &pruned), LS_OK); /* every one is too old */
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(pruned, 3);
    read_bounds(s, 0, &first, &last, &seen);
    ck_assert_int_eq(first, 0); /* empty */
    ck_assert_int_eq(last, 3);  /* but 3 were written */
    ck_assert_int_eq(seen, 0);
    store_close(&s);
    /* a reader parked at 1 is told that 2 and 3 left, once */
    const char *cli[] = {"triggers", "--data", sdir, "--from", "1", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, errtext, sizeof errtext, cli), 0);
    ck_assert_msg(strstr(errtext, "triggers 2 to 3 left the outbox"), "%s", errtext);
    ck_assert_ptr_null(strstr(strstr(errtext, "left the outbox") + 1, "left the outbox"));
    /* from the oldest held (the default), nothing is missed: no warning */
    const char *oldest[] = {"triggers", "--data", sdir, NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, errtext, sizeof errtext, oldest), 0);
    ck_assert_msg(!strstr(errtext, "warning"), "%s", errtext);
    /* a resume point past every trigger ever written is said, once */
    const char *ahead[] = {"triggers", "--data", sdir, "--from", "99", NULL};
    ck_assert_int_eq(tu_run_cli_split(out, sizeof out, errtext, sizeof errtext, ahead), 0);
    ck_assert_msg(strstr(errtext, "--from 99 is past the newest trigger this outbox has written (3)"), "%s", errtext);
    /* and the next trigger is 4, also after a reopen */
    ck_assert_int_eq(store_open(&s, sdir, &so, &decay, err, sizeof err), LS_OK);
    append_one(s, "q", &seq);
    ck_assert_int_eq(seq, 4);
    read_bounds(s, 0, &first, &last, &seen);
    ck_assert_int_eq(first, 4);
    ck_assert_int_eq(last, 4);
    ck_assert_int_eq(seen, 1);
    store_close(&s);
    tu_rmtree(sdir);
}
END_TEST

/* The count bound keeps the newest --trigger-max triggers the outbox
 * holds, whatever gaps `forget` left among them. */
START_TEST(the_count_bound_counts_what_the_outbox_holds)
{
    char sdir[512], err[256], who[8];
    store *s;
    store_options so = {0};
    feature_decay decay = {3 * 86400000LL, 30 * 86400000LL};
    uint64_t seq, first, last;
    int seen;
    size_t pruned, erased;
    store_wtxn *w;
    tu_tempdir(sdir, sizeof sdir);
    ck_assert_int_eq(store_open(&s, sdir, &so, &decay, err, sizeof err), LS_OK);
    for (int i = 1; i <= 10; i++) {
        snprintf(who, sizeof who, "c%d", i);
        append_one(s, who, &seq);
        ck_assert_int_eq(seq, (uint64_t)i);
    }
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(trigger_forget(w, "c8", 2, &erased), LS_OK);
    ck_assert_int_eq(erased, 1);
    ck_assert_int_eq(trigger_forget(w, "c9", 2, &erased), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    /* 8 held (1-7, 10), none too old, at most 5 kept: 1, 2 and 3 go */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(trigger_prune(w, INT64_MIN, 5, 100, &pruned), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(pruned, 3);
    read_bounds(s, 0, &first, &last, &seen);
    ck_assert_int_eq(seen, 5);
    ck_assert_int_eq(first, 4);
    ck_assert_int_eq(last, 10);
    /* within the bound: nothing more goes */
    ck_assert_int_eq(store_write_begin(s, &w), LS_OK);
    ck_assert_int_eq(trigger_prune(w, INT64_MIN, 5, 100, &pruned), LS_OK);
    ck_assert_int_eq(store_write_commit(&w), LS_OK);
    ck_assert_int_eq(pruned, 0);
    store_close(&s);
    tu_rmtree(sdir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("automation");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bad_rules_and_names);
    tcase_add_test(tc, put_list_delete);
    tcase_add_test(tc, live_enter_exit);
    tcase_add_test(tc, trigger_counters_count_what_the_outbox_holds);
    tcase_add_test(tc, members_pages);
    tcase_add_test(tc, first_pass_members_without_triggers);
    tcase_add_test(tc, time_based_membership);
    tcase_add_test(tc, an_event_ahead_of_the_clock_counts_when_its_time_comes);
    tcase_add_test(tc, a_live_customer_with_old_events_enters_with_a_trigger);
    tcase_add_test(tc, abandoned_cart_once);
    tcase_add_test(tc, a_cart_heard_late_waits_its_delay_from_when_it_was_heard);
    tcase_add_test(tc, an_alias_does_not_fire_the_visitors_cart_again);
    tcase_add_test(tc, an_alias_does_not_restart_a_carts_silence);
    tcase_add_test(tc, a_birthday_changed_back_and_forth_fires_once_a_year);
    tcase_add_test(tc, an_older_states_birthday_is_the_same_occurrence);
    tcase_add_test(tc, cooldown);
    tcase_add_test(tc, moments_once);
    tcase_add_test(tc, each_moment_once);
    tcase_add_test(tc, resume_from_seq);
    tcase_add_test(tc, retention);
    tcase_add_test(tc, an_alias_fires_the_exits_of_from);
    tcase_add_test(tc, a_forget_with_triggers_off_erases_memberships_and_triggers);
    tcase_add_test(tc, a_burst_past_the_count_bound_is_pruned_at_once);
    tcase_add_test(tc, long_poll);
    tcase_add_test(tc, forget_leaves_audiences);
    tcase_add_test(tc, triggers_off_does_nothing);
    tcase_add_test(tc, kill9_loses_no_trigger);
    tcase_add_test(tc, seqs_are_never_given_twice_after_forget);
    tcase_add_test(tc, seqs_go_on_when_pruning_empties_the_outbox);
    tcase_add_test(tc, the_count_bound_counts_what_the_outbox_holds);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
