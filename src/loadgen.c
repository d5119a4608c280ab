/* loadgen.c -- the load generator behind `leadscore bench` (see loadgen.h):
 * the workload table and configuration; the controller that starts,
 * times, stops and sums up a run; the pull check (did every event sent
 * land on the server?); the probe and the server's event counters.
 *
 * The rest lives beside it: loadgen_customers.c (random numbers, the Zipf
 * sampler and the synthetic customer base), loadgen_request.c (request
 * bytes, reply scanning and one-off calls), loadgen_client.c (the client
 * threads), loadgen_triggers.c (audiences, automation and the trigger
 * consumer of the triggers workload) and loadgen_echo.c (the echo server
 * of --baseline). */
#include "loadgen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <msgpack.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "loadgen_client.h"
#include "loadgen_request.h"
#include "loadgen_triggers.h"
#include "threadcpu.h"
#include "timefmt.h"

#define PROGRESS_EVERY_NS 1000000000LL
#define CONTROL_TICK_NS 50000000LL
#define PULL_POLL_NS 50000000LL
#define START_DELAY_NS 20000000LL     /* lets the clients connect before t0 */

/* ------------------------------------------------------------------ */
/* Workloads and configuration                                         */
/* ------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *help;
} workloads[LOADGEN_WORKLOAD_COUNT] = {
#define LOADGEN_WORKLOAD_ROW(sym, name, what) {name, what},
    LOADGEN_WORKLOAD_MAP(LOADGEN_WORKLOAD_ROW)
#undef LOADGEN_WORKLOAD_ROW
};

const char *loadgen_workload_name(loadgen_workload w)
{
    return (int)w >= 0 && w < LOADGEN_WORKLOAD_COUNT ? workloads[w].name : NULL;
}

const char *loadgen_workload_help(loadgen_workload w)
{
    return (int)w >= 0 && w < LOADGEN_WORKLOAD_COUNT ? workloads[w].help : NULL;
}

int loadgen_workload_parse(const char *name, loadgen_workload *out)
{
    for (int i = 0; i < LOADGEN_WORKLOAD_COUNT; i++) {
        if (strcmp(name, workloads[i].name) == 0) {
            *out = (loadgen_workload)i;
            return LS_OK;
        }
    }
    return LS_EINVAL;
}

int loadgen_workload_batched(loadgen_workload w)
{
    return w == LOADGEN_SCORE_BATCH || w == LOADGEN_TRACK || w == LOADGEN_PULL || w == LOADGEN_MIXED ||
           w == LOADGEN_TRIGGERS;
}

void loadgen_config_defaults(loadgen_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workload = LOADGEN_SCORE;
    cfg->customers = 100000;
    cfg->clients = 1;
    cfg->inflight = 1;
    cfg->duration_s = 10;
    cfg->warmup_s = 1;
    cfg->batch = 100;
    cfg->mix_read_pct = 90;
    cfg->seed = 1;
    cfg->timeout_ms = 5000;
    cfg->pull_settle_s = 1;
    cfg->pull_max_wait_s = 60;
    cfg->pull_backlog = 200000;
    cfg->trigger_audience = LOADGEN_TRIGGER_AUDIENCE;
}

__attribute__((format(printf, 3, 4)))
static int invalid(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return LS_EINVAL;
}

int loadgen_config_check(const loadgen_config *cfg, char *why, size_t cap)
{
    if (!loadgen_workload_name(cfg->workload))
        return invalid(why, cap, "unknown workload");
    if (!cfg->endpoint || !*cfg->endpoint)
        return invalid(why, cap, "no endpoint to connect to");
    if (cfg->workload == LOADGEN_PULL && (!cfg->pull_endpoint || !*cfg->pull_endpoint))
        return invalid(why, cap, "the pull workload needs the server's PULL endpoint");
    if (cfg->workload == LOADGEN_TRIGGERS && cfg->echo)
        return invalid(why, cap, "the triggers workload needs a leadscore server, not the echo");
    if (cfg->workload == LOADGEN_TRIGGERS && (!cfg->trigger_audience || !*cfg->trigger_audience))
        return invalid(why, cap, "the triggers workload needs the name of its audience");
    if (cfg->customers < 1)
        return invalid(why, cap, "customers must be at least 1");
    if (!(cfg->zipf_s >= 0) || !isfinite(cfg->zipf_s))
        return invalid(why, cap, "the Zipf exponent must be a number > 0");
    if (cfg->clients < 1 || cfg->clients > LOADGEN_MAX_CLIENTS)
        return invalid(why, cap, "clients must be between 1 and %d", LOADGEN_MAX_CLIENTS);
    if (cfg->inflight < 1 || cfg->inflight > LOADGEN_MAX_INFLIGHT)
        return invalid(why, cap, "inflight must be between 1 and %d", LOADGEN_MAX_INFLIGHT);
    if (!(cfg->rate >= 0) || !isfinite(cfg->rate))
        return invalid(why, cap, "rate must be a number >= 0 (0: closed loop)");
    if (cfg->requests == 0 && !(cfg->duration_s > 0 && cfg->duration_s <= 86400 * 7))
        return invalid(why, cap, "duration must be between 0 and a week of seconds");
    if (!(cfg->warmup_s >= 0 && cfg->warmup_s <= 3600))
        return invalid(why, cap, "warmup must be between 0 and 3600 seconds");
    if (cfg->batch < 1 || cfg->batch > LOADGEN_MAX_BATCH)
        return invalid(why, cap, "batch must be between 1 and %d", LOADGEN_MAX_BATCH);
    if (cfg->mix_read_pct < 0 || cfg->mix_read_pct > 100)
        return invalid(why, cap, "mix must be a percentage, 0 to 100");
    if (cfg->timeout_ms < 1)
        return invalid(why, cap, "timeout must be at least 1 ms");
    if (!(cfg->pull_settle_s > 0) || !(cfg->pull_max_wait_s >= cfg->pull_settle_s))
        return invalid(why, cap, "the pull check needs settle > 0 and max wait >= settle");
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* The controller                                                      */
/* ------------------------------------------------------------------ */

static int64_t seconds_ns(double s)
{
    return (int64_t)(s * 1e9);
}

static int setup_run(lg_run *run, const loadgen_config *cfg, loadgen_result *out)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->nclients = cfg->clients;
    run->use_zipf = cfg->zipf_s > 0;
    if (run->use_zipf)
        loadgen_zipf_init(&run->zipf, cfg->customers, cfg->zipf_s);
    lg_request_permutation(run, cfg->customers);
    uint64_t seed = (uint64_t)timefmt_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)timefmt_mono_ns();
    run->nonce = (uint32_t)sgr_splitmix64(&seed);
    run->zmq = zmq_ctx_new();
    run->clients = calloc((size_t)cfg->clients, sizeof *run->clients);
    if (!run->zmq || !run->clients) {
        snprintf(out->first_error, sizeof out->first_error, "out of memory");
        return LS_ENOMEM;
    }
    for (int i = 0; i < cfg->clients; i++) {
        int rc = lg_client_init(run, &run->clients[i], i);
        if (rc) {
            snprintf(out->first_error, sizeof out->first_error, "cannot set up client %d: %s", i,
                     rc == LS_ENOMEM ? "out of memory" : zmq_strerror(zmq_errno()));
            return rc;
        }
    }
    return LS_OK;
}

static int start_clients(lg_run *run, loadgen_result *out)
{
    for (int i = 0; i < run->nclients; i++) {
        if (pthread_create(&run->clients[i].thread, NULL, lg_client_main, &run->clients[i]) != 0) {
            snprintf(out->first_error, sizeof out->first_error, "cannot start client thread %d", i);
            return LS_EINTERNAL;
        }
        run->clients[i].thread_started = 1;
    }
    const loadgen_config *cfg = run->cfg;
    run->t0_ns = timefmt_mono_ns() + START_DELAY_NS;
    run->measure_ns = run->t0_ns + seconds_ns(cfg->warmup_s);
    run->end_ns = cfg->requests ? INT64_MAX : run->measure_ns + seconds_ns(cfg->duration_s);
    atomic_store(&run->go, 1); /* publishes the times above */
    return LS_OK;
}

/* Sends the started clients home without running (set-up failed). */
static void abort_clients(lg_run *run)
{
    atomic_store(&run->go, -1);
    for (int i = 0; run->clients && i < run->nclients; i++)
        if (run->clients[i].thread_started)
            pthread_join(run->clients[i].thread, NULL);
}

static int all_finished(lg_run *run)
{
    for (int i = 0; i < run->nclients; i++)
        if (!atomic_load(&run->clients[i].finished))
            return 0;
    return 1;
}

static void report_progress(lg_run *run, int64_t now, uint64_t *last_done, int64_t *last_ns)
{
    const loadgen_config *cfg = run->cfg;
    loadgen_progress p = {0};
    for (int i = 0; i < run->nclients; i++) {
        p.requests += atomic_load_explicit(&run->clients[i].live_done, memory_order_relaxed);
        p.errors += atomic_load_explicit(&run->clients[i].live_errors, memory_order_relaxed);
    }
    p.elapsed_s = (double)(now - run->t0_ns) / 1e9;
    p.total_s = cfg->requests ? 0 : cfg->warmup_s + cfg->duration_s;
    p.warming_up = now < run->measure_ns;
    p.rate = now > *last_ns ? (double)(p.requests - *last_done) * 1e9 / (double)(now - *last_ns) : 0;
    *last_done = p.requests;
    *last_ns = now;
    cfg->progress(cfg->progress_arg, &p);
}

static int landed_now(const loadgen_config *cfg, lg_conn *s, uint64_t *landed, uint64_t *queued);

/* Opens the pull gate as far as the server has caught up. */
static void update_pull_gate(lg_run *run)
{
    uint64_t landed;
    if (!run->cfg->pull_backlog || landed_now(run->cfg, run->pull_stats, &landed, NULL) != LS_OK)
        return;
    atomic_store(&run->pull_allowed, landed - run->pull_before + run->cfg->pull_backlog);
}

/* Waits for the clients to finish, telling them to stop on an interrupt
 * or when they overrun the end by more than a timeout. */
static void supervise(lg_run *run, loadgen_result *out)
{
    const loadgen_config *cfg = run->cfg;
    int64_t next_progress = run->t0_ns + PROGRESS_EVERY_NS, last_ns = run->t0_ns;
    int64_t hard_end = run->end_ns == INT64_MAX ? INT64_MAX
                                                 : run->end_ns + (int64_t)cfg->timeout_ms * 1000000 + 1000000000;
    uint64_t last_done = 0;
    while (!all_finished(run)) {
        struct timespec tick = {0, CONTROL_TICK_NS};
        nanosleep(&tick, NULL);
        int64_t now = timefmt_mono_ns();
        if (cfg->stop && *cfg->stop && !out->interrupted) {
            out->interrupted = 1;
            atomic_store(&run->stop, 2);
        }
        if (now > hard_end)
            atomic_store(&run->stop, 2);
        if (run->cfg->workload == LOADGEN_PULL)
            update_pull_gate(run);
        if (cfg->progress && now >= next_progress) {
            report_progress(run, now, &last_done, &last_ns);
            next_progress += PROGRESS_EVERY_NS;
        }
    }
    for (int i = 0; i < run->nclients; i++)
        if (run->clients[i].thread_started)
            pthread_join(run->clients[i].thread, NULL);
}

/* ---- the pull check: did every event sent land on the server? ---- */

/* Asks for "stats" on s and reads the three event counters, and (when
 * queued is not NULL) the events the server holds and has not yet stored:
 * 0 from a server too old to say. */
static int read_event_counters(lg_conn *s, uint64_t *accepted, uint64_t *duplicate, uint64_t *rejected,
                               uint64_t *queued)
{
    static const uint8_t req[] = {0x81, 0xa2, 'o', 'p', 0xa5, 's', 't', 'a', 't', 's'};
    lg_reply r;
    int rc = lg_call(s, req, sizeof req, &r);
    if (rc == LS_OK && (lg_map_uint(&r.up.data, "events_accepted", accepted) ||
                        lg_map_uint(&r.up.data, "events_duplicate", duplicate) ||
                        lg_map_uint(&r.up.data, "events_rejected", rejected)))
        rc = LS_EPARSE;
    if (rc == LS_OK && queued && lg_map_uint(&r.up.data, "events_queued", queued) != LS_OK)
        *queued = 0;
    lg_reply_done(&r);
    return rc;
}

/* accepted + duplicate + rejected, as the server counts them. */
static int stats_landed(lg_conn *s, uint64_t *landed, uint64_t *queued)
{
    uint64_t a, d, r;
    int rc = read_event_counters(s, &a, &d, &r, queued);
    if (rc == LS_OK)
        *landed = a + d + r;
    return rc;
}

int loadgen_server_events(const char *endpoint, int timeout_ms, uint64_t *accepted, uint64_t *duplicate,
                          uint64_t *rejected)
{
    lg_conn s = {0};
    int rc = lg_conn_open(&s, NULL, endpoint, timeout_ms);
    if (rc == LS_OK)
        rc = read_event_counters(&s, accepted, duplicate, rejected, NULL);
    lg_conn_close(&s);
    return rc;
}

/* Events landed so far on the target: the echo server's count of
 * batches times the batch size, or the server's counters. */
static int landed_now(const loadgen_config *cfg, lg_conn *s, uint64_t *landed, uint64_t *queued)
{
    if (cfg->echo) {
        *landed = loadgen_echo_pulled(cfg->echo) * (uint64_t)cfg->batch;
        if (queued)
            *queued = 0;
        return LS_OK;
    }
    return stats_landed(s, landed, queued);
}

/* Polls until every event sent has landed, or the count has not moved
 * for pull_settle_s while the server holds no event it has yet to store
 * (its "events_queued": a commit of a big group can take longer than
 * pull_settle_s, and the events in it have not landed yet, nor are they
 * lost), or pull_max_wait_s is over, or the user stops. */
static void pull_check(lg_run *run, lg_conn *s, uint64_t before, loadgen_result *out)
{
    const loadgen_config *cfg = run->cfg;
    int64_t sent_end = timefmt_mono_ns(), changed = sent_end, limit = sent_end + seconds_ns(cfg->pull_max_wait_s);
    uint64_t last = before, now_landed = before, queued = 0;
    for (;;) {
        if (landed_now(cfg, s, &now_landed, &queued) != LS_OK) {
            snprintf(out->first_error, sizeof out->first_error, "the pull check could not read the server's stats");
            return;
        }
        int64_t now = timefmt_mono_ns();
        if (now_landed != last) {
            last = now_landed;
            changed = now;
        }
        if (now_landed - before >= out->pull_events_sent ||
            (queued == 0 && now - changed >= seconds_ns(cfg->pull_settle_s))) {
            out->pull_checked = 1;
            break;
        }
        if (now > limit || (cfg->stop && *cfg->stop))
            break;
        struct timespec tick = {0, PULL_POLL_NS};
        nanosleep(&tick, NULL);
    }
    out->pull_events_landed = last - before;
    out->pull_events_lost = (int64_t)out->pull_events_sent - (int64_t)out->pull_events_landed;
    out->pull_settle_wait_s = (double)(changed - sent_end) / 1e9;
    double span = (double)(changed - run->t0_ns) / 1e9;
    out->pull_ingest_per_s = span > 0 ? (double)out->pull_events_landed / span : 0;
}

/* ---- summing up ---- */

static int merge_into(hist **dst, const hist *src)
{
    if (!src)
        return LS_OK;
    if (!*dst && lg_client_new_hist(dst))
        return LS_ENOMEM;
    return hist_merge(*dst, src);
}

static int sum_up(lg_run *run, loadgen_result *out)
{
    int64_t last = 0;
    uint64_t req_bytes = 0, req_count = 0, reply_bytes = 0, reply_count = 0;
    for (int i = 0; i < run->nclients; i++) {
        lg_client *c = &run->clients[i];
        if (merge_into(&out->latency, c->lat))
            return LS_ENOMEM;
        for (int k = 0; k < LOADGEN_KINDS; k++) {
            if (merge_into(&out->kind_latency[k], c->kind_lat[k]))
                return LS_ENOMEM;
            out->kind_requests[k] += c->kind_n[k];
        }
        out->requests += c->ok_measured;
        out->items += c->items;
        out->warmup_requests += c->warmup_ok;
        out->error_replies += c->error_replies;
        out->timeouts += c->timeouts;
        out->send_failures += c->send_failures;
        out->abandoned += c->abandoned;
        out->not_sent += c->not_sent;
        out->pull_events_sent += c->pull_events_sent;
        out->items_acked += c->items_acked;
        req_bytes += c->req_bytes;
        req_count += c->req_count;
        reply_bytes += c->reply_bytes;
        reply_count += c->reply_count;
        if (c->last_done_ns > last)
            last = c->last_done_ns;
        if (!out->first_error[0] && c->first_error[0])
            snprintf(out->first_error, sizeof out->first_error, "%s", c->first_error);
    }
    out->errors = out->error_replies + out->timeouts + out->send_failures + out->not_sent;
    out->elapsed_s = last > run->measure_ns ? (double)(last - run->measure_ns) / 1e9 : 0;
    out->requests_per_s = out->elapsed_s > 0 ? (double)out->requests / out->elapsed_s : 0;
    out->items_per_s = out->elapsed_s > 0 ? (double)out->items / out->elapsed_s : 0;
    out->request_bytes = req_count ? (double)req_bytes / (double)req_count : 0;
    out->reply_bytes = reply_count ? (double)reply_bytes / (double)reply_count : 0;
    return LS_OK;
}

static void teardown_run(lg_run *run)
{
    for (int i = 0; run->clients && i < run->nclients; i++)
        lg_client_free(&run->clients[i]);
    free(run->clients);
    if (run->zmq)
        zmq_ctx_term(run->zmq);
}

int loadgen_run(const loadgen_config *cfg, loadgen_result *out)
{
    lg_run run;
    lg_conn sc = {0};
    uint64_t before = 0;
    memset(out, 0, sizeof *out);
    if (loadgen_config_check(cfg, out->first_error, sizeof out->first_error))
        return LS_EINVAL;
    int pull = cfg->workload == LOADGEN_PULL;
    if (pull && !cfg->echo && lg_conn_open(&sc, cfg, cfg->endpoint, cfg->timeout_ms) != LS_OK) {
        snprintf(out->first_error, sizeof out->first_error, "cannot open a socket for the server's stats");
        return LS_EINTERNAL;
    }
    if (pull && landed_now(cfg, &sc, &before, NULL) != LS_OK) {
        snprintf(out->first_error, sizeof out->first_error,
                 "the pull workload reads the server's \"stats\" op (an admin key under CurveZMQ), "
                 "and it did not answer at %s", cfg->endpoint);
        lg_conn_close(&sc);
        return LS_ETIMEOUT;
    }
    out->pull_thread_cpu_us = NAN;
    double cpu_before = 0;
    int cpu = pull && cfg->cpu_thread && threadcpu_seconds(cfg->cpu_thread, &cpu_before) == LS_OK;
    int rc = setup_run(&run, cfg, out);
    run.pull_stats = &sc;
    run.pull_before = before;
    atomic_store(&run.pull_allowed, cfg->pull_backlog);
    if (rc == LS_OK && cfg->workload == LOADGEN_TRIGGERS)
        rc = lg_consumer_start(&run, &run.consumer, out->first_error, sizeof out->first_error);
    if (rc == LS_OK)
        rc = start_clients(&run, out);
    if (rc != LS_OK) {
        abort_clients(&run);
    } else {
        supervise(&run, out);
        rc = sum_up(&run, out);
        if (pull)
            pull_check(&run, &sc, before, out);
        double cpu_after;
        if (cpu && out->pull_events_landed > 0 && threadcpu_seconds(cfg->cpu_thread, &cpu_after) == LS_OK)
            out->pull_thread_cpu_us = (cpu_after - cpu_before) * 1e6 / (double)out->pull_events_landed;
        if (run.consumer)
            lg_consumer_finish(run.consumer, out->items_acked, out);
    }
    lg_consumer_free(&run.consumer);
    teardown_run(&run);
    lg_conn_close(&sc);
    return rc;
}

void loadgen_result_free(loadgen_result *r)
{
    hist_destroy(&r->latency);
    hist_destroy(&r->trigger_latency);
    for (int k = 0; k < LOADGEN_KINDS; k++)
        hist_destroy(&r->kind_latency[k]);
}

/* ------------------------------------------------------------------ */
/* The probe                                                           */
/* ------------------------------------------------------------------ */

int loadgen_probe(const loadgen_config *cfg, char *why, size_t cap)
{
    lg_run run;
    lg_client c;
    lg_conn s = {0};
    lg_reply r;
    int kind;
    uint32_t items;
    memset(&run, 0, sizeof run);
    memset(&c, 0, sizeof c);
    run.cfg = cfg;
    lg_request_permutation(&run, cfg->customers ? cfg->customers : 1);
    c.run = &run;
    msgpack_sbuffer_init(&c.sb);
    msgpack_packer_init(&c.pk, &c.sb, msgpack_sbuffer_write);
    sgr_rng_seed(&c.rng, cfg->seed);
    if (cfg->workload == LOADGEN_PULL) {
        lg_request_begin(&c, 0, 1, "ping");
    } else if (cfg->workload == LOADGEN_TRIGGERS) {
        lg_request_begin(&c, 2, 1, "triggers"); /* does the server know the op? */
        msgpack_pack_str(&c.pk, 4);
        msgpack_pack_str_body(&c.pk, "from", 4);
        msgpack_pack_uint64(&c.pk, 0);
        msgpack_pack_str(&c.pk, 5);
        msgpack_pack_str_body(&c.pk, "limit", 5);
        msgpack_pack_uint64(&c.pk, 1);
    } else {
        lg_request_build(&c, 1, &kind, &items);
    }
    int rc = lg_conn_open(&s, cfg, cfg->echo ? loadgen_echo_endpoint(cfg->echo) : cfg->endpoint, cfg->timeout_ms);
    if (rc != LS_OK)
        snprintf(why, cap, "%s", rc == LS_EINVAL ? "not an endpoint ZeroMQ can connect to (e.g. tcp://127.0.0.1:5555)"
                                                 : "cannot open a socket");
    if (rc == LS_OK) {
        rc = lg_call(&s, c.sb.data, c.sb.size, &r);
        snprintf(why, cap, "%s", rc == LS_ETIMEOUT ? "no reply" : rc ? "a reply that is not a msgpack map" : "");
        const msgpack_object *ok = rc == LS_OK ? lg_map_get(&r.up.data, "ok") : NULL;
        if (ok && ok->type == MSGPACK_OBJECT_BOOLEAN && !ok->via.boolean)
            rc = lg_reply_status(&r.up.data, why, cap);
        else if (rc == LS_OK && !ok && !cfg->echo) {
            snprintf(why, cap, "a reply without \"ok\": is this a leadscore server?");
            rc = LS_EPARSE;
        }
        lg_reply_done(&r);
    }
    msgpack_sbuffer_destroy(&c.sb);
    lg_conn_close(&s);
    return rc;
}
