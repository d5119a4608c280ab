/* loadgen_triggers.c -- marketing automation in the load generator: the
 * built-in audiences of `bench --audiences N`, defining audiences on a
 * server and waiting until they are ready, waiting until a server's
 * automation is at rest, and the trigger consumer of the `triggers`
 * workload (see loadgen_triggers.h).
 *
 * The consumer.  One thread, one REQ socket: {"op": "triggers", "from":
 * next, "limit": 10000, "wait_ms": W}, where the server holds the request
 * until a trigger is committed or W passes.  Every trigger that is an
 * `enter` of the bench's audience for one of this run's customers counts;
 * its customer id carries the due time of the request that sent its event
 * (lg_request_trigger_due), so the latency is the reply's arrival time
 * minus that: the same origin as the acknowledged track latency, and
 * nothing to share with the client threads. */
#define _GNU_SOURCE
#include "loadgen_triggers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leadscore/error.h"
#include "loadgen_request.h"
#include "timefmt.h"

#define POLL_LIMIT 10000          /* triggers per reply (the server's most) */
#define POLL_WAIT_MS 500          /* long-poll wait during the run */
#define DRAIN_WAIT_MS 100         /* ... and while draining */
#define READY_POLL_NS 100000000LL /* audience_list / stats polls */
#define SETTLE_QUIET_NS 500000000LL

/* ------------------------------------------------------------------ */
/* The built-in audiences                                              */
/* ------------------------------------------------------------------ */

/* What a marketing team defines: lead temperature, customer types, the
 * buying cycle, carts, content segments, loyalty and engagement -- over
 * score fields (score, tier, clv, p_alive, customer_type, phase, actions,
 * segments, loyalty_tier) and features (counts, recency, spend, carts). */
const loadgen_audience loadgen_audiences[LOADGEN_AUDIENCES] = {
    {"hot-leads", "tier == \"hot\" and score >= 0.3"},
    {"warm-leads", "tier == \"warm\""},
    {"big-spenders", "customer_type == \"big_spender\""},
    {"regulars", "customer_type in (\"regular\", \"big_spender\")"},
    {"new-customers", "customer_type == \"new\""},
    {"sale-hunters", "customer_type == \"sale_hunter\" or discounted_share >= 0.6"},
    {"lapsing-buyers", "purchase_count >= 2 and days_since_last_purchase > 90"},
    {"repeat-buyers", "purchase_count >= 2"},
    {"cart-abandoners", "\"abandoned_cart\" in actions"},
    {"open-cart-100", "cart_open > 0 and open_cart_value >= 100"},
    {"runners", "segment == \"running\" or \"trail-running\" in segments"},
    {"audio-fans", "\"audio\" in segments or \"electronics\" in segments"},
    {"vip", "clv >= 1500 and p_alive >= 0.5"},
    {"loyalty-silver-gold", "loyalty_tier in (\"silver\", \"gold\")"},
    {"browsers-not-buyers", "purchase_count == 0 and product_view_recent >= 3"},
    {"email-engaged", "email_click_recent >= 1 or email_open_recent >= 2"},
    {"unhappy", "phase == \"disappointment\" or bad_reviews >= 1"},
    {"high-basket", "purchase_count >= 1 and avg_order_value >= 120"},
    {"win-back", "\"win_back\" in actions"},
    {"likely-buyers-30d", "expected_purchases_30d >= 0.2 and score_100 >= 20"},
};

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static void pack_lit(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/* Sends the request body on s and checks that the reply is ok; the reply
 * stays in r for the caller (lg_reply_done it).  0 or a status, why. */
static int call_ok(lg_conn *s, const void *body, size_t len, lg_reply *r, char *why, size_t cap)
{
    int rc = lg_call(s, body, len, r);
    if (rc == LS_ETIMEOUT)
        snprintf(why, cap, "no reply within %d ms", s->timeout_ms);
    else if (rc == LS_EPARSE)
        snprintf(why, cap, "a reply that is not a msgpack map");
    else
        rc = lg_reply_check(r, why, cap);
    return rc;
}

/* {"op": op, "name": name[, "rule": rule]} */
static int audience_call(lg_conn *s, const char *op, const char *name, const char *rule, char *why, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    lg_reply r;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, rule ? 3 : 2);
    pack_lit(&pk, "op");
    pack_lit(&pk, op);
    pack_lit(&pk, "name");
    pack_lit(&pk, name);
    if (rule) {
        pack_lit(&pk, "rule");
        pack_lit(&pk, rule);
    }
    int rc = call_ok(s, sb.data, sb.size, &r, why, cap);
    lg_reply_done(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Sets *ready to 1 when every audience of a[0..n) is listed ready. */
static int audiences_ready(lg_conn *s, const loadgen_audience *a, size_t n, int *ready, const char **waiting,
                           char *why, size_t cap)
{
    static const uint8_t req[] = {0x81, 0xa2, 'o', 'p', 0xad, 'a', 'u', 'd', 'i', 'e', 'n', 'c', 'e', '_', 'l', 'i', 's', 't'};
    lg_reply r;
    int rc = call_ok(s, req, sizeof req, &r, why, cap);
    const msgpack_object *list = rc == LS_OK ? lg_map_get(&r.up.data, "audiences") : NULL;
    if (rc == LS_OK && (!list || list->type != MSGPACK_OBJECT_ARRAY)) {
        snprintf(why, cap, "an audience_list reply without \"audiences\"");
        rc = LS_EPARSE;
    }
    *ready = rc == LS_OK;
    for (size_t i = 0; rc == LS_OK && i < n && *ready; i++) {
        int found = 0;
        for (uint32_t j = 0; j < list->via.array.size && !found; j++) {
            const msgpack_object *o = &list->via.array.ptr[j];
            const msgpack_object *rd = lg_map_get(o, "ready");
            if (lg_map_str_is(o, "name", a[i].name))
                found = rd && rd->type == MSGPACK_OBJECT_BOOLEAN && rd->via.boolean ? 1 : -1;
        }
        if (found != 1) {
            *ready = 0;
            *waiting = a[i].name;
        }
    }
    lg_reply_done(&r);
    return rc;
}

int loadgen_audiences_put(const loadgen_config *cfg, const loadgen_audience *a, size_t n, double wait_s, char *why,
                          size_t cap)
{
    lg_conn s = {0};
    char err[300] = "";
    int rc = lg_conn_open(&s, cfg, cfg->endpoint, cfg->timeout_ms);
    for (size_t i = 0; rc == LS_OK && i < n; i++)
        if ((rc = audience_call(&s, "audience_put", a[i].name, a[i].rule, err, sizeof err)) != LS_OK)
            snprintf(why, cap, "audience_put %s (%s): %s", a[i].name, a[i].rule, err);
    int64_t limit = timefmt_mono_ns() + (int64_t)(wait_s * 1e9);
    const char *waiting = NULL;
    for (int ready = 0; rc == LS_OK && !ready;) {
        if ((rc = audiences_ready(&s, a, n, &ready, &waiting, err, sizeof err)) != LS_OK)
            snprintf(why, cap, "audience_list: %s", err);
        else if (!ready && timefmt_mono_ns() > limit) {
            snprintf(why, cap, "audience %s was not ready after %.0f s (the server's first pass over its store)",
                     waiting ? waiting : "?", wait_s);
            rc = LS_ETIMEOUT;
        } else if (!ready) {
            sleep_ns(READY_POLL_NS);
        }
    }
    if (rc == LS_EINTERNAL || rc == LS_EINVAL)
        snprintf(why, cap, "cannot open a socket to %s", cfg->endpoint);
    lg_conn_close(&s);
    return rc;
}

int loadgen_audience_delete(const loadgen_config *cfg, const char *name, char *why, size_t cap)
{
    lg_conn s = {0};
    int rc = lg_conn_open(&s, cfg, cfg->endpoint, cfg->timeout_ms);
    if (rc == LS_OK)
        rc = audience_call(&s, "audience_delete", name, NULL, why, cap);
    else
        snprintf(why, cap, "cannot open a socket to %s", cfg->endpoint);
    lg_conn_close(&s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The server's automation counters                                    */
/* ------------------------------------------------------------------ */

static int read_counters(lg_conn *s, loadgen_automation_counters *out)
{
    static const uint8_t req[] = {0x81, 0xa2, 'o', 'p', 0xa5, 's', 't', 'a', 't', 's'};
    lg_reply r;
    int rc = lg_call(s, req, sizeof req, &r);
    const msgpack_object *d = &r.up.data;
    if (rc == LS_OK &&
        (lg_map_uint(d, "triggers_moments", &out->moments) || lg_map_uint(d, "triggers_enters", &out->enters) ||
         lg_map_uint(d, "triggers_exits", &out->exits) || lg_map_uint(d, "automation_evaluations", &out->evaluations) ||
         lg_map_uint(d, "automation_sweeps", &out->sweeps)))
        rc = LS_EPARSE;
    lg_reply_done(&r);
    return rc;
}

int loadgen_automation_read(const loadgen_config *cfg, loadgen_automation_counters *out)
{
    lg_conn s = {0};
    memset(out, 0, sizeof *out);
    int rc = lg_conn_open(&s, cfg, cfg->endpoint, cfg->timeout_ms);
    if (rc == LS_OK)
        rc = read_counters(&s, out);
    lg_conn_close(&s);
    return rc;
}

int loadgen_automation_settle(const loadgen_config *cfg, uint64_t min_evaluations, double wait_s, char *why,
                              size_t cap)
{
    lg_conn s = {0};
    loadgen_automation_counters c;
    uint64_t last = UINT64_MAX;
    int64_t start = timefmt_mono_ns(), moved = start, limit = start + (int64_t)(wait_s * 1e9);
    int rc = lg_conn_open(&s, cfg, cfg->endpoint, cfg->timeout_ms);
    while (rc == LS_OK) {
        if ((rc = read_counters(&s, &c)) != LS_OK)
            break;
        int64_t now = timefmt_mono_ns();
        if (c.evaluations != last) {
            last = c.evaluations;
            moved = now;
        }
        if (c.sweeps >= 1 && c.evaluations >= min_evaluations && now - moved >= SETTLE_QUIET_NS)
            break;
        if (now > limit) {
            snprintf(why, cap, "the server's automation was still busy after %.0f s (%llu customers evaluated, %llu "
                               "sweep passes)", wait_s, (unsigned long long)c.evaluations, (unsigned long long)c.sweeps);
            lg_conn_close(&s);
            return LS_ETIMEOUT;
        }
        sleep_ns(READY_POLL_NS);
    }
    if (rc != LS_OK)
        snprintf(why, cap, "cannot read the server's automation counters from \"stats\" (%s)", ls_strerror(rc));
    lg_conn_close(&s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The consumer                                                        */
/* ------------------------------------------------------------------ */

struct lg_consumer {
    lg_run *run;
    pthread_t thread;
    int started;
    lg_conn conn;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t from;                  /* the newest seq read */
    hist *lat;
    atomic_int done;                /* the clients finished: drain */
    atomic_uint_fast64_t expected;  /* set before done */
    /* figures, read after the join */
    uint64_t received, warmup, other, polls, failures;
    int64_t last_ns;                /* when the last of ours arrived */
    int64_t done_ns;                /* when the drain began */
    char first_error[256];
};

static void note(lg_consumer *c, const char *what)
{
    if (!c->first_error[0])
        snprintf(c->first_error, sizeof c->first_error, "the trigger consumer: %.200s", what);
}

/* {"op": "triggers", "from": from, "limit": limit, "wait_ms": wait} */
static void build_poll(lg_consumer *c, uint64_t limit, int wait_ms)
{
    c->sb.size = 0;
    msgpack_pack_map(&c->pk, wait_ms ? 4 : 3);
    pack_lit(&c->pk, "op");
    pack_lit(&c->pk, "triggers");
    pack_lit(&c->pk, "from");
    msgpack_pack_uint64(&c->pk, c->from);
    pack_lit(&c->pk, "limit");
    msgpack_pack_uint64(&c->pk, limit);
    if (wait_ms) {
        pack_lit(&c->pk, "wait_ms");
        msgpack_pack_int(&c->pk, wait_ms);
    }
}

/* Counts and times the triggers of one reply that arrived at now. */
static void take(lg_consumer *c, const msgpack_object *list, int64_t now)
{
    const loadgen_config *cfg = c->run->cfg;
    for (uint32_t i = 0; i < list->via.array.size; i++) {
        const msgpack_object *t = &list->via.array.ptr[i];
        const msgpack_object *who = lg_map_get(t, "customer");
        int64_t due;
        if (!who || who->type != MSGPACK_OBJECT_STR || !lg_map_str_is(t, "kind", "enter") ||
            !lg_map_str_is(t, "name", cfg->trigger_audience) ||
            lg_request_trigger_due(c->run->nonce, who->via.str.ptr, who->via.str.size, &due) != 0) {
            c->other++;
            continue;
        }
        c->received++;
        c->last_ns = now;
        if (due >= c->run->measure_ns)
            hist_record(c->lat, now > due ? (uint64_t)(now - due) : 0);
        else
            c->warmup++;
    }
}

/* One long poll.  0, or a status (counted as a failure). */
static int poll_once(lg_consumer *c, int wait_ms)
{
    lg_reply r;
    char why[300];
    build_poll(c, POLL_LIMIT, wait_ms);
    c->polls++;
    int rc = call_ok(&c->conn, c->sb.data, c->sb.size, &r, why, sizeof why);
    int64_t now = timefmt_mono_ns();
    const msgpack_object *list = rc == LS_OK ? lg_map_get(&r.up.data, "triggers") : NULL;
    uint64_t next = 0, first = 0;
    if (rc == LS_OK && (!list || list->type != MSGPACK_OBJECT_ARRAY || lg_map_uint(&r.up.data, "next", &next))) {
        snprintf(why, sizeof why, "a triggers reply without \"triggers\" and \"next\"");
        rc = LS_EPARSE;
    }
    if (rc == LS_OK) {
        if (lg_map_uint(&r.up.data, "first", &first) == LS_OK && first > c->from + 1)
            note(c, "the outbox dropped triggers before they were read (--set trigger-max)");
        take(c, list, now);
        if (next > c->from)
            c->from = next;
    } else {
        c->failures++;
        note(c, why);
    }
    lg_reply_done(&r);
    return rc;
}

static int should_stop(lg_consumer *c)
{
    const loadgen_config *cfg = c->run->cfg;
    if (atomic_load(&c->run->stop) >= 2 || (cfg->stop && *cfg->stop))
        return 1;
    if (!atomic_load(&c->done))
        return 0;
    int64_t since = c->last_ns > c->done_ns ? c->last_ns : c->done_ns;
    return c->received >= atomic_load(&c->expected) ||
           timefmt_mono_ns() - since > (int64_t)cfg->timeout_ms * 1000000;
}

static void *consumer_main(void *arg)
{
    lg_consumer *c = arg;
    int go;
    while ((go = atomic_load(&c->run->go)) == 0) /* the run's times are set with go */
        sleep_ns(100000);
    while (go > 0 && !should_stop(c)) {
        int draining = atomic_load(&c->done);
        if (draining && !c->done_ns)
            c->done_ns = timefmt_mono_ns();
        if (poll_once(c, draining ? DRAIN_WAIT_MS : POLL_WAIT_MS) != LS_OK)
            sleep_ns(10000000); /* a failure: do not spin */
    }
    return NULL;
}

int lg_consumer_start(lg_run *run, lg_consumer **out, char *why, size_t cap)
{
    const loadgen_config *cfg = run->cfg;
    lg_consumer *c = calloc(1, sizeof *c);
    lg_reply r;
    *out = c;
    if (!c)
        return LS_ENOMEM;
    c->run = run;
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    int rc = lg_client_new_hist(&c->lat);
    if (rc == LS_OK && (rc = lg_conn_open(&c->conn, cfg, cfg->endpoint, cfg->timeout_ms + POLL_WAIT_MS)) != LS_OK)
        snprintf(why, cap, "cannot open the trigger consumer's socket");
    if (rc == LS_OK) { /* where the outbox ends now: this run's triggers come after */
        build_poll(c, 1, 0);
        rc = call_ok(&c->conn, c->sb.data, c->sb.size, &r, why, cap);
        if (rc == LS_OK && lg_map_uint(&r.up.data, "last", &c->from) != LS_OK) {
            snprintf(why, cap, "a triggers reply without \"last\"");
            rc = LS_EPARSE;
        }
        lg_reply_done(&r);
    }
    if (rc == LS_OK && pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        snprintf(why, cap, "cannot start the trigger consumer thread");
        rc = LS_EINTERNAL;
    }
    c->started = rc == LS_OK;
    return rc;
}

void lg_consumer_finish(lg_consumer *c, uint64_t expected, loadgen_result *out)
{
    atomic_store(&c->expected, expected);
    atomic_store(&c->done, 1);
    if (c->started)
        pthread_join(c->thread, NULL);
    c->started = 0;
    out->trigger_latency = c->lat;
    c->lat = NULL;
    out->triggers_received = c->received;
    out->triggers_warmup = c->warmup;
    out->triggers_other = c->other;
    out->triggers_missing = (int64_t)expected - (int64_t)c->received;
    out->trigger_polls = c->polls;
    out->trigger_poll_failures = c->failures;
    int64_t clients_end = 0;
    for (int i = 0; i < c->run->nclients; i++)
        if (c->run->clients[i].last_done_ns > clients_end)
            clients_end = c->run->clients[i].last_done_ns;
    out->trigger_drain_s = c->last_ns > clients_end && clients_end ? (double)(c->last_ns - clients_end) / 1e9 : 0;
    if (c->first_error[0] && !out->first_error[0])
        snprintf(out->first_error, sizeof out->first_error, "%s", c->first_error);
}

void lg_consumer_free(lg_consumer **cp)
{
    if (!cp || !*cp)
        return;
    lg_consumer *c = *cp;
    if (c->started) {
        atomic_store(&c->expected, 0);
        atomic_store(&c->done, 1);
        pthread_join(c->thread, NULL);
    }
    lg_conn_close(&c->conn);
    msgpack_sbuffer_destroy(&c->sb);
    hist_destroy(&c->lat);
    free(c);
    *cp = NULL;
}
