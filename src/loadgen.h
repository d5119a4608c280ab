/* loadgen.h -- the load generator behind `leadscore bench`.
 *
 * What it does.  loadgen_run() drives a leadscore server (or the bare
 * ZeroMQ echo server of loadgen_echo_*, for a baseline) with one workload
 * from C client threads and returns every figure in a loadgen_result:
 * latency histograms (merged from one histogram per thread), throughput in
 * requests and items per second, and error counts.
 *
 *   closed loop  (rate 0)  each client keeps `inflight` requests
 *                outstanding: inflight 1 uses a REQ socket, one request at
 *                a time; more uses a DEALER socket and matches replies to
 *                requests by their "id";
 *   open loop    (rate R)  requests are due at fixed times, R per second
 *                in total, spread over the clients; latency is measured
 *                from the time a request was DUE, not from when it could be
 *                sent, so a stalled server is charged for the requests it
 *                held back (no coordinated omission); a request still
 *                unsent timeout_ms after its due time is given up and
 *                counted (not_sent), so an overloaded run ends at most
 *                timeout_ms after its window.
 *
 * The customer base.  Customer k (1 <= k <= customers) is "cust-<k>", the
 * same ids `leadscore gen` writes; loadgen_customer_record() makes the
 * synthetic record a benchmark preloads for it.  Requests pick customers
 * uniformly, or by a Zipf law over ranks (zipf_s > 0) whose hot ranks are
 * scattered over the ids by a fixed permutation.
 *
 * Requests.  Every request map starts with a fixed-width "id" (msgpack
 * uint64) so that the same seed produces requests of the same bytes for
 * the server and for the echo baseline.  Track events carry event_ids
 * made unique per run, so repeated runs against one store are not counted
 * as duplicates.
 *
 * Threads.  loadgen_run() runs its controller (timing, progress, the pull
 * check) on the calling thread and one thread per client; nothing here is
 * global.  The caller may stop a run early through cfg->stop (e.g. set
 * from a SIGINT handler); the figures gathered so far are still returned. */
#ifndef LS_LOADGEN_H
#define LS_LOADGEN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "feature.h"
#include "histogram.h"
#include "loadgen_customers.h" /* the customer base: rng, Zipf, ids, records */
#include "loadgen_echo.h"      /* the echo server of --baseline */

/* X(enum suffix, name on the command line, what it sends) */
#define LOADGEN_WORKLOAD_MAP(X)                                                   \
    X(SCORE, "score", "one \"score\" of one customer per request")              \
    X(SCORE_BATCH, "score-batch", "\"score\" of --batch customers per request") \
    X(TRACK, "track", "\"track\" of --batch events per request, durable acks")  \
    X(MIXED, "mixed", "--mix % single scores, the rest \"track\" requests")     \
    X(RECOMMEND, "recommend", "one \"recommend\" per request")                  \
    X(PULL, "pull", "fire-and-forget batches of --batch events to the PULL socket") \
    X(TRIGGERS, "triggers", "\"track\" of new customers; event -> trigger latency at a consumer")

typedef enum {
#define LOADGEN_WORKLOAD_ENUM(sym, name, what) LOADGEN_##sym,
    LOADGEN_WORKLOAD_MAP(LOADGEN_WORKLOAD_ENUM)
#undef LOADGEN_WORKLOAD_ENUM
    LOADGEN_WORKLOAD_COUNT
} loadgen_workload;

/* Request kinds, for the per-kind latency of the mixed workload. */
enum { LOADGEN_KIND_READ, LOADGEN_KIND_WRITE, LOADGEN_KINDS };

/* Latencies are recorded in ns, from 1 ns to 100 s, 3 significant digits. */
#define LOADGEN_HIST_LOWEST 1
#define LOADGEN_HIST_HIGHEST UINT64_C(100000000000)
#define LOADGEN_HIST_DIGITS 3

/* Most requests in flight per client, and most clients. */
#define LOADGEN_MAX_INFLIGHT 65536
#define LOADGEN_MAX_CLIENTS 1024
/* Most customers or events in one request (the server's default limits
 * are 1,000 customers per score and 10,000 events per batch). */
#define LOADGEN_MAX_BATCH 10000

/* The triggers workload times the enter triggers of this audience, whose
 * rule holds for every customer the store has: each new customer's first
 * event enters it.  The caller defines it (loadgen_audiences_put). */
#define LOADGEN_TRIGGER_AUDIENCE "bench-new-customers"
#define LOADGEN_TRIGGER_RULE "known"

/* What loadgen_run() calls about once a second from the controller. */
typedef struct {
    double elapsed_s;      /* since the start, warm-up included */
    double total_s;        /* planned length (0 when --requests decides) */
    int warming_up;        /* 1 during the warm-up */
    uint64_t requests;     /* answered so far (warm-up included) */
    uint64_t errors;
    double rate;           /* answered per second over the last interval */
} loadgen_progress;

typedef void (*loadgen_progress_fn)(void *arg, const loadgen_progress *p);

typedef struct {
    loadgen_workload workload;
    const char *endpoint;        /* the ROUTER: requests, and stats for pull */
    const char *pull_endpoint;   /* the PULL socket, for the pull workload */
    const loadgen_echo *echo;    /* non-NULL: the target is this echo server */
    const char *server_key;      /* CurveZMQ: the server's public key, Z85 (40 */
    const char *client_public;   /* characters), and this client's key pair; */
    const char *client_secret;   /* all NULL: plain TCP.  An echo target uses
                                    its own server key with the client pair. */
    uint64_t customers;          /* ids cust-1 .. cust-<customers> */
    double zipf_s;               /* 0: uniform; > 0: Zipf exponent */
    int clients;                 /* client threads */
    int inflight;                /* requests outstanding per client */
    double rate;                 /* open loop: requests/s in total; 0: closed */
    double duration_s;           /* measured time, when requests is 0 */
    uint64_t requests;           /* > 0: stop after this many measured */
    double warmup_s;             /* before measuring (not recorded) */
    int batch;                   /* customers / events per request */
    int mix_read_pct;            /* mixed: % of requests that are scores */
    uint64_t seed;
    int timeout_ms;              /* a request unanswered this long after its
                                    due time is an error (open loop: one not
                                    sent by then is not sent at all) */
    double pull_settle_s;        /* pull: how long events_accepted must stay
                                    unchanged, with the server's events_queued
                                    at 0, before the check ends */
    double pull_max_wait_s;      /* pull: longest wait for the server to catch up */
    uint64_t pull_backlog;       /* pull: most events sent and not yet landed on
                                    the server (clients wait for it to catch up,
                                    so the rate is what it sustains); 0: no
                                    limit, a flood */
    int event_ids;               /* write workloads: the event ids' shape,
                                    LOADGEN_IDS_SEQUENTIAL (the default) or
                                    LOADGEN_IDS_RANDOM (loadgen_customers.h) */
    const char *cpu_thread;      /* pull: a thread of this process (a spawned
                                    server's "ls-writer") whose CPU time over
                                    the run is reported per event landed;
                                    NULL: none */
    const char *trigger_audience; /* triggers: whose enter triggers are timed
                                    (default LOADGEN_TRIGGER_AUDIENCE) */
    volatile sig_atomic_t *stop; /* non-NULL and set: stop early */
    loadgen_progress_fn progress;
    void *progress_arg;
} loadgen_config;

typedef struct {
    /* ns per answered, measured request; owned here (loadgen_result_free) */
    hist *latency;
    hist *kind_latency[LOADGEN_KINDS];
    uint64_t kind_requests[LOADGEN_KINDS];

    uint64_t requests;        /* measured requests answered ok */
    uint64_t items;           /* customers scored / events sent in them */
    uint64_t items_acked;     /* items of every ok reply, warm-up included
                                 (triggers: the triggers expected) */
    uint64_t warmup_requests; /* answered during the warm-up (not measured) */
    uint64_t errors;          /* error_replies + timeouts + send_failures
                                 + not_sent */
    uint64_t error_replies;   /* {"ok": false} (warm-up included) */
    uint64_t timeouts;        /* no reply within timeout_ms of the due time */
    uint64_t send_failures;
    uint64_t not_sent;        /* open loop: requests due in the measured window
                                 that were still unsent timeout_ms after their
                                 due time (more than the clients and the server
                                 could take): given up, never sent */
    uint64_t abandoned;       /* still unanswered when an interrupted run ended */
    char first_error[256];    /* the first error seen, for people */

    double elapsed_s;         /* measured window: its first due time to the last reply */
    double requests_per_s;
    double items_per_s;
    double request_bytes;     /* mean request body size */
    double reply_bytes;       /* mean reply body size */
    int interrupted;          /* cfg->stop ended the run early */

    /* pull only (latency is then the time zmq_send took from the due time) */
    uint64_t pull_events_sent;    /* every event sent, warm-up included */
    uint64_t pull_events_landed;  /* accepted + duplicate + rejected on the server */
    int64_t pull_events_lost;     /* sent - landed */
    double pull_ingest_per_s;     /* landed / (first send .. last change) */
    double pull_settle_wait_s;    /* from the last send until the count settled */
    int pull_checked;             /* 1: the count settled; 0: gave up or no stats */
    double pull_thread_cpu_us;    /* cfg->cpu_thread's CPU time per event landed,
                                     in microseconds; NAN when not measured */

    /* triggers only: a consumer thread long-polls the outbox during the
       run and, after it, until every event acknowledged has its trigger
       or timeout_ms passes without one */
    hist *trigger_latency;        /* ns from a measured event's due time to
                                     the arrival of its trigger; owned here */
    uint64_t triggers_received;   /* enter triggers of the audience for this
                                     run's customers (warm-up included) */
    uint64_t triggers_warmup;     /* ... of them for warm-up events */
    uint64_t triggers_other;      /* other triggers read meanwhile */
    int64_t triggers_missing;     /* items_acked - triggers_received */
    uint64_t trigger_polls;       /* "triggers" requests the consumer made */
    uint64_t trigger_poll_failures; /* ... that failed (no reply in time, an
                                     error reply); first_error says why */
    double trigger_drain_s;       /* clients' last reply to the last trigger */
} loadgen_result;

/* ---- configuration ---- */

/* Fills cfg with the defaults: score, 100,000 uniform customers, 1 client,
 * 1 in flight, closed loop, 10 s after a 1 s warm-up, batch 100, mix 90,
 * seed 1, timeout 5000 ms, pull settle 1 s / max wait 60 s / backlog
 * 200,000 events. */
void loadgen_config_defaults(loadgen_config *cfg);

/* Checks cfg.  Returns 0, or LS_EINVAL with a reason for people in why. */
int loadgen_config_check(const loadgen_config *cfg, char *why, size_t cap);

/* Name on the command line of a workload, or NULL when out of range. */
const char *loadgen_workload_name(loadgen_workload w);
/* One-line description of a workload, for --help. */
const char *loadgen_workload_help(loadgen_workload w);
/* Looks a workload name up: 0 and *out, or LS_EINVAL. */
int loadgen_workload_parse(const char *name, loadgen_workload *out);
/* 1 when a request of w carries --batch customers or events. */
int loadgen_workload_batched(loadgen_workload w);

/* ---- running ---- */

/* Runs cfg's workload to its end (duration, request count or cfg->stop)
 * and fills out (which the caller frees with loadgen_result_free, also
 * after a failure).  Returns 0 when the run happened, even with request
 * errors (see out->errors); LS_EINVAL for a bad cfg, LS_ENOMEM, or
 * LS_EINTERNAL when sockets or threads cannot be set up, with a reason in
 * out->first_error. */
int loadgen_run(const loadgen_config *cfg, loadgen_result *out);

/* Frees the histograms of r; r may then be reused.  Harmless twice. */
void loadgen_result_free(loadgen_result *r);

/* Sends one request of cfg's workload (for pull: a "ping") to
 * cfg->endpoint and waits for the reply, to find out before a run whether
 * the server is there and knows the op.  Returns 0 when the reply is ok,
 * LS_ETIMEOUT when none came within cfg->timeout_ms, or the status of the
 * error reply (LS_EUNKNOWNOP for an op the server does not know), with
 * the server's words in why. */
int loadgen_probe(const loadgen_config *cfg, char *why, size_t cap);

/* Asks the server at endpoint for its "stats" and reads the event
 * counters.  0, LS_ETIMEOUT or LS_EPARSE. */
int loadgen_server_events(const char *endpoint, int timeout_ms, uint64_t *accepted,
                          uint64_t *duplicate, uint64_t *rejected);

/* ---- marketing automation (loadgen_triggers.c) ---- */

typedef struct {
    const char *name;
    const char *rule;
} loadgen_audience;

/* A realistic mix of audiences over score fields and features (hot leads,
 * lapsing buyers, open carts, segments, ...); `bench --audiences N`
 * defines the first N. */
#define LOADGEN_AUDIENCES 20
extern const loadgen_audience loadgen_audiences[LOADGEN_AUDIENCES];

/* Defines the n audiences of a (audience_put, an admin op) on the server
 * at cfg->endpoint, then waits up to wait_s for every one to be ready
 * (the server's first pass over its store).  Returns 0, LS_ETIMEOUT, or
 * the status of an error reply, with the reason for people in why. */
int loadgen_audiences_put(const loadgen_config *cfg, const loadgen_audience *a, size_t n, double wait_s, char *why,
                          size_t cap);

/* Deletes audience name there (audience_delete); 0 also when it did not
 * exist. */
int loadgen_audience_delete(const loadgen_config *cfg, const char *name, char *why, size_t cap);

/* The server's automation counters (from "stats", an admin op). */
typedef struct {
    uint64_t moments, enters, exits;  /* triggers fired */
    uint64_t evaluations, sweeps;     /* customers evaluated; sweep passes begun */
} loadgen_automation_counters;

int loadgen_automation_read(const loadgen_config *cfg, loadgen_automation_counters *out);

/* Waits up to wait_s until the server's automation is at rest: a sweep
 * pass has begun, at least min_evaluations customers were evaluated (a
 * freshly started server sweeps its whole store once), and the count has
 * not moved for half a second.  A run started before would share the
 * writer with the sweep.  0, LS_ETIMEOUT (reason in why) or a status. */
int loadgen_automation_settle(const loadgen_config *cfg, uint64_t min_evaluations, double wait_s, char *why,
                              size_t cap);

/* ---- replies ---- */

/* Reads the top-level "ok" and "id" of a reply map without unpacking it.
 * *ok is -1 when the map has no "ok" (an echoed request), *has_id 0 when
 * it has no unsigned integer "id".  Returns 0, or LS_EPARSE for bytes
 * that are not a well-formed map. */
int loadgen_scan_reply(const void *buf, size_t len, int *ok, uint64_t *id, int *has_id);

#endif
