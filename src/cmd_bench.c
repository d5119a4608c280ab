/* cmd_bench.c -- `leadscore bench`: the load generator and report ops
 * teams run before they trust a leadscore deployment.
 *
 * It drives a running server (--connect EP) or, by default, starts one
 * in-process on a temporary store that it first preloads with a synthetic
 * customer base, straight through the store API in large no-sync
 * transactions.  The run itself is loadgen_run() (loadgen.h).  With
 * --baseline the same request pattern first goes to a bare ZeroMQ echo
 * server, and every figure is printed beside its echo counterpart with the
 * ratio leadscore/echo: on a noisy machine only the ratios are comparable.
 * --json writes every figure for machines, --plot a latency-percentile
 * chart through gnuplot.
 *
 * The figures are described once, in the `figures` table below; the text
 * table, the JSON and the ratios all read it. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_offline.h"
#include "cli.h"
#include "cliopts.h"
#include "config.h"
#include "leadscore/error.h"
#include "loadgen.h"
#include "model.h"
#include "security.h"
#include "server.h"
#include "store.h"
#include "timefmt.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif

#define PRELOAD_COMMIT_EVERY 100000
#define MAX_SETS 32

/* The one piece of process-wide state: set by SIGINT, read by the run. */
static volatile sig_atomic_t bench_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

typedef struct {
    loadgen_config lg;
    const char *connect;      /* NULL: spawn */
    const char *pull;         /* --pull EP (with --connect) */
    const char *data;         /* --spawn: keep the store here */
    const char *sets[MAX_SETS];
    int nsets;
    int batch_given;
    int baseline;
    int quiet;
    int spawn;
    const char *json_path;
    const char *plot_path;
    const char *server_key_path;  /* --server-key FILE */
    const char *key_prefix;       /* --key PREFIX */
    char pull_buf[256];
    char server_key[SECURITY_KEY_Z85], client_public[SECURITY_KEY_Z85], client_secret[SECURITY_KEY_Z85];
} bench_opts;

/* A server started in-process (--spawn). */
typedef struct {
    server *srv;
    pthread_t thread;
    int running;
    char dir[1024];
    int own_dir;
} spawned;

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void workload_list(FILE *out)
{
    for (int w = 0; w < LOADGEN_WORKLOAD_COUNT; w++)
        fprintf(out, "                       %-12s %s\n", loadgen_workload_name((loadgen_workload)w),
                loadgen_workload_help((loadgen_workload)w));
    fprintf(out, "                       %-12s %s\n                       %-12s %s\n", "import",
            "offline: generate --customers, time `leadscore import` of the CSV (rows/s)", "rescore",
            "offline: then time `leadscore rescore` of that store, warm (customers/s)");
}

static int parse_workload(const char *arg, void *dest, char *why, size_t cap)
{
    if (loadgen_workload_parse(arg, dest) == 0)
        return 0;
    snprintf(why, cap, "\"%s\" is not a workload (see --help)", arg);
    return -1;
}

/* A finite number > 0 (--zipf, --rate). */
static int parse_positive(const char *arg, void *dest, char *why, size_t cap)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end == arg || *end || errno || !isfinite(v) || !(v > 0)) {
        snprintf(why, cap, "\"%s\" is not a number > 0", arg);
        return -1;
    }
    *(double *)dest = v;
    return 0;
}

#define F(field) CLIOPT_FIELD(bench_opts, field)
static const cliopt bench_rows[] = {
    {.kind = CLIOPT_SECTION, .help = "target"},
    {.name = "connect", .kind = CLIOPT_STRING, F(connect), .arg = "EP",
     .help = "drive a running server (its ROUTER endpoint)"},
    {.name = "pull", .kind = CLIOPT_STRING, F(pull), .arg = "EP",
     .help = "with --connect: its PULL endpoint (default: EP's port + 1)"},
    {.name = "spawn", .kind = CLIOPT_FLAG, F(spawn),
     .help = "start a server in-process on a temporary store (the default)"},
    {.name = "customers", .kind = CLIOPT_COUNT, F(lg.customers), .lo = 1, .hi = LLONG_MAX, .want = "a count >= 1",
     .arg = "N", .help = "customer base cust-1..cust-N, preloaded by --spawn (default 100000;\nk/M suffixes: 10M)"},
    {.name = "data", .kind = CLIOPT_STRING, F(data), .arg = "DIR",
     .help = "--spawn: keep the store in DIR, and reuse it when it already\nholds N customers"},
    {.name = "set", .kind = CLIOPT_LIST, F(sets), CLIOPT_GIVEN(bench_opts, nsets), .hi = MAX_SETS, .arg = "NAME=VALUE",
     .help = "--spawn: a `serve` option for the server (repeatable),\ne.g. --set workers=4 --set sync=off"},
    {.name = "server-key", .kind = CLIOPT_STRING, F(server_key_path), .arg = "FILE",
     .help = "CurveZMQ: the server's public key file"},
    {.name = "key", .kind = CLIOPT_STRING, F(key_prefix), .arg = "PREFIX",
     .help = "CurveZMQ: this client's key pair (PREFIX.pub, PREFIX.key, see\n`leadscore keygen`); the pull check needs an admin key;\n"
             "--baseline then uses a CURVE echo"},
    {.kind = CLIOPT_SECTION, .help = "workload"},
    {.name = "workload", .kind = CLIOPT_CUSTOM, F(lg.workload), .parse = parse_workload, .arg = "W",
     .help = "one of:", .more_help = workload_list},
    {.name = "batch", .kind = CLIOPT_COUNT, F(lg.batch), CLIOPT_GIVEN(bench_opts, batch_given), .lo = 1,
     .hi = LOADGEN_MAX_BATCH, .want = "a batch size 1..10000", .arg = "B",
     .help = "customers or events per request (default 100; 1 for mixed)"},
    {.name = "mix", .kind = CLIOPT_COUNT, F(lg.mix_read_pct), .lo = 0, .hi = 100, .want = "a percentage", .arg = "P",
     .help = "mixed: P % scores, the rest track (default 90)"},
    {.name = "zipf", .kind = CLIOPT_CUSTOM, F(lg.zipf_s), .parse = parse_positive, .arg = "S",
     .help = "draw customers by a Zipf law with exponent S > 0 (default uniform)"},
    {.name = "seed", .kind = CLIOPT_COUNT, F(lg.seed), .lo = 0, .hi = LLONG_MAX, .want = "a whole number", .arg = "N",
     .help = "random seed (default 1): the same seed sends the same requests"},
    {.kind = CLIOPT_SECTION, .help = "load"},
    {.name = "clients", .kind = CLIOPT_COUNT, F(lg.clients), .lo = 1, .hi = LOADGEN_MAX_CLIENTS,
     .want = "a client count 1..1024", .arg = "C", .help = "client threads, one socket each (default 1)"},
    {.name = "inflight", .kind = CLIOPT_COUNT, F(lg.inflight), .lo = 1, .hi = LOADGEN_MAX_INFLIGHT,
     .want = "a depth 1..65536", .arg = "K",
     .help = "requests outstanding per client: 1 = REQ, one at a time;\nmore = DEALER, pipelined (default 1)"},
    {.name = "rate", .kind = CLIOPT_CUSTOM, F(lg.rate), .parse = parse_positive, .arg = "R",
     .help = "open loop: R requests/s in total, latency from each request's\n"
             "intended send time (default: closed loop, as fast as answered)"},
    {.name = "duration", .kind = CLIOPT_DURATION, F(lg.duration_s), .lo = 1, .hi = LLONG_MAX, .want = "a duration > 0",
     .arg = "SEC", .help = "measured time (default 10; 500ms, 2m also work)"},
    {.name = "requests", .kind = CLIOPT_COUNT, F(lg.requests), .lo = 1, .hi = LLONG_MAX, .want = "a count >= 1",
     .arg = "N", .help = "stop after N measured requests instead"},
    {.name = "warmup", .kind = CLIOPT_DURATION, F(lg.warmup_s), .lo = LLONG_MIN, .hi = LLONG_MAX, .want = "a duration",
     .arg = "SEC", .help = "unrecorded warm-up first (default 1)"},
    {.name = "timeout", .kind = CLIOPT_COUNT, F(lg.timeout_ms), .lo = 1, .hi = 3600000, .want = "milliseconds",
     .arg = "MS", .help = "a request unanswered this long is an error (default 5000)"},
    {.name = "pull-backlog", .kind = CLIOPT_COUNT, F(lg.pull_backlog), .lo = 0, .hi = LLONG_MAX,
     .want = "an event count", .arg = "N",
     .help = "pull: most events sent but not yet stored by the server; the\n"
             "clients wait for it to catch up, so events/s is what it\n"
             "sustains (default 200000; 0: no limit, a flood)"},
    {.name = "pull-wait", .kind = CLIOPT_DURATION, F(lg.pull_max_wait_s), .lo = 1000, .hi = LLONG_MAX,
     .want = "a duration >= 1 s", .arg = "SEC",
     .help = "pull: longest wait for the server's count to settle (default 60)"},
    {.kind = CLIOPT_SECTION, .help = "report"},
    {.name = "baseline", .kind = CLIOPT_FLAG, F(baseline),
     .help = "first run the same pattern against a bare ZeroMQ echo server"},
    {.name = "json", .kind = CLIOPT_STRING, F(json_path), .arg = "FILE",
     .help = "write every figure as JSON (- for stdout)"},
    {.name = "plot", .kind = CLIOPT_STRING, F(plot_path), .arg = "FILE.png",
     .help = "write a latency-percentile plot (needs gnuplot)"},
    {.name = "quiet", .kind = CLIOPT_FLAG, F(quiet), .help = "no progress line"},
    CLIOPT_END};
#undef F

static const cliopts_spec bench_spec = {
    .cmd = "bench",
    .usage = "leadscore bench [--connect EP | --spawn] [--workload W] [options]",
    .about = "Load generator and report: runs one workload against a leadscore server and\n"
             "prints latency percentiles, throughput and errors.  With --baseline the same\n"
             "requests first go to a bare ZeroMQ echo server, and every figure is shown\n"
             "beside it with the ratio leadscore/echo (on a noisy machine, compare ratios).",
    .epilog = "Ctrl-C stops the run early and still prints the figures.  Exit status: 0 when\n"
              "the run completed, 1 when no request succeeded or pull events were lost, 2 on a\n"
              "usage error.",
    .opts = bench_rows,
    .in_order = 1,
};

/* Derives tcp://host:(port+1) from tcp://host:port, as serve's defaults. */
static int derive_pull(const char *ep, char *out, size_t cap)
{
    const char *colon = strrchr(ep, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || colon[1] == '\0' || *end || port <= 0 || port >= 65535)
        return -1;
    snprintf(out, cap, "%.*s:%ld", (int)(colon - ep), ep, port + 1);
    return 0;
}

/* Parses argv into o.  Returns 0, -1 after --help, or an exit status. */
static int parse_args(int argc, char **argv, bench_opts *o)
{
    loadgen_config_defaults(&o->lg);
    int first = cliopts_parse(&bench_spec, argc, argv, o);
    if (first < 0)
        return first == CLIOPTS_HELP ? -1 : CLI_USAGE;
    for (int i = 0; i < o->nsets; i++)
        if (!strchr(o->sets[i], '='))
            return cli_error("bench", CLI_USAGE, "--set: \"%s\" is not NAME=VALUE", o->sets[i]);
    int spawn = o->spawn;
    if (first < argc)
        return cli_error("bench", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[first]);
    if (spawn && o->connect)
        return cli_error("bench", CLI_USAGE, "--connect and --spawn exclude each other");
    if (o->connect && (o->data || o->nsets))
        return cli_error("bench", CLI_USAGE, "--data and --set are for --spawn, not --connect");
    if (!o->server_key_path != !o->key_prefix)
        return cli_error("bench", CLI_USAGE, "--server-key and --key go together");
    if (!o->batch_given && o->lg.workload == LOADGEN_MIXED)
        o->lg.batch = 1;
    if (o->connect && o->lg.workload == LOADGEN_PULL && !o->pull) {
        if (derive_pull(o->connect, o->pull_buf, sizeof o->pull_buf))
            return cli_error("bench", CLI_USAGE, "give the server's PULL endpoint with --pull EP");
        o->pull = o->pull_buf;
    }
    return 0;
}

/* Reads the CurveZMQ keys named by --server-key and --key into o.
 * Returns an exit status. */
static int read_keys(bench_opts *o)
{
    char path[1100], err[600];
    if (!o->server_key_path)
        return CLI_OK;
    int rc = security_read_key(o->server_key_path, o->server_key, err, sizeof err);
    snprintf(path, sizeof path, "%s.pub", o->key_prefix);
    if (rc == LS_OK)
        rc = security_read_key(path, o->client_public, err, sizeof err);
    snprintf(path, sizeof path, "%s.key", o->key_prefix);
    if (rc == LS_OK)
        rc = security_read_key(path, o->client_secret, err, sizeof err);
    if (rc != LS_OK)
        return cli_error("bench", CLI_FAIL, "%s", err);
    o->lg.server_key = o->server_key;
    o->lg.client_public = o->client_public;
    o->lg.client_secret = o->client_secret;
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Progress on a terminal                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *target;
} progress_ctx;

static void show_progress(void *arg, const loadgen_progress *p)
{
    const progress_ctx *ctx = arg;
    char total[32] = "";
    if (p->total_s > 0)
        snprintf(total, sizeof total, "/%.0f", p->total_s);
    fprintf(stderr, "\r\033[K  %-9s %5.1f%s s  %s%10.0f req/s  %llu answered  %llu errors", ctx->target,
            p->elapsed_s, total, p->warming_up ? "warm-up " : "", p->rate, (unsigned long long)p->requests,
            (unsigned long long)p->errors);
    fflush(stderr);
}

static int progress_wanted(const bench_opts *o)
{
    return !o->quiet && isatty(2);
}

static void clear_progress(const bench_opts *o)
{
    if (progress_wanted(o))
        fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------------ */
/* Preload and the spawned server                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    store *st;
    store_wtxn *txn;
    store_held held;
    const feature_decay *decay;
    uint64_t seed, done, total;
    int64_t now_ms, started_ns, shown_ns;
    int show;
    int rc;
} preload_ctx;

static void preload_show(preload_ctx *p)
{
    int64_t now = timefmt_mono_ns();
    if (!p->show || (now - p->shown_ns < 1000000000 && p->done < p->total))
        return;
    p->shown_ns = now;
    double secs = (double)(now - p->started_ns) / 1e9, rate = secs > 0 ? (double)p->done / secs : 0;
    fprintf(stderr, "\r\033[K  preloading %llu / %llu customers (%.0f%%)  %.0f/s  ETA %.0f s",
            (unsigned long long)p->done, (unsigned long long)p->total, 100.0 * (double)p->done / (double)p->total,
            rate, rate > 0 ? (double)(p->total - p->done) / rate : 0);
    fflush(stderr);
}

/* Adds one event to its customer's history, as the writer does. */
static int preload_event(void *arg, const ls_event *ev)
{
    preload_ctx *p = arg;
    int dup;
    if (p->rc == LS_OK)
        p->rc = store_wtxn_add_event(p->txn, &p->held, ev, &dup);
    return p->rc;
}

/* Writes customer k's history and record; commits every
 * PRELOAD_COMMIT_EVERY. */
static int preload_one(void *arg, uint64_t k)
{
    preload_ctx *p = arg;
    if (bench_interrupted)
        return p->rc = LS_ETIMEOUT;
    loadgen_customer_events(k, p->seed, p->now_ms, preload_event, p);
    if (p->rc == LS_OK)
        p->rc = store_wtxn_put_back(p->txn, &p->held);
    if (p->rc != LS_OK)
        return p->rc;
    if (++p->done % PRELOAD_COMMIT_EVERY == 0) {
        if ((p->rc = store_write_commit(&p->txn)) || (p->rc = store_write_begin(p->st, &p->txn)))
            return p->rc;
        preload_show(p);
    }
    return 0;
}

/* Loads the model the server will use, to learn the half-lives. */
static int load_decay(const config *cfg, feature_decay *out, char *err, size_t errlen)
{
    model *m = NULL;
    struct stat st;
    int rc = strcmp(cfg->model_path, "models/default.json") == 0 && stat(cfg->model_path, &st) != 0
                 ? model_load_builtin(&m, err, errlen)
                 : model_load_file(cfg->model_path, &m, err, errlen);
    if (rc)
        return rc;
    *out = *model_decay(m);
    model_unref(&m);
    return LS_OK;
}

/* Fills the store in cfg->data_dir with cust-1..cust-N, unless it holds
 * that many already.  Returns an exit status. */
static int preload(const bench_opts *o, const config *cfg)
{
    char err[512] = "";
    feature_decay decay;
    store_options sopt = {.map_size = cfg->map_size, .no_sync = 1};
    store_stats ss;
    preload_ctx p = {.seed = o->lg.seed, .total = o->lg.customers, .now_ms = timefmt_now_ms(),
                     .started_ns = timefmt_mono_ns(), .show = progress_wanted(o), .decay = &decay};
    if (load_decay(cfg, &decay, err, sizeof err) || store_open(&p.st, cfg->data_dir, &sopt, &decay, err, sizeof err))
        return cli_error("bench", CLI_FAIL, "%s", err);
    if (store_stat(p.st, &ss) == LS_OK && ss.customers >= o->lg.customers) {
        if (!o->quiet)
            fprintf(stderr, "reusing the store in %s: %llu customers\n", cfg->data_dir,
                    (unsigned long long)ss.customers);
        store_close(&p.st);
        return CLI_OK;
    }
    decay = *store_decay(p.st);
    store_held_init(&p.held);
    p.rc = store_write_begin(p.st, &p.txn);
    if (p.rc == LS_OK)
        loadgen_customers_in_key_order(o->lg.customers, preload_one, &p);
    if (p.rc == LS_OK)
        p.rc = store_write_commit(&p.txn);
    store_write_abort(&p.txn);
    store_held_free(&p.held);
    store_close(&p.st);
    clear_progress(o);
    if (p.rc == LS_ETIMEOUT && bench_interrupted)
        return cli_error("bench", CLI_FAIL, "interrupted while preloading");
    if (p.rc)
        return cli_error("bench", CLI_FAIL, "preloading the store in %s: %s", cfg->data_dir, ls_strerror(p.rc));
    if (!o->quiet)
        fprintf(stderr, "preloaded %llu customers in %.2f s\n", (unsigned long long)p.done,
                (double)(timefmt_mono_ns() - p.started_ns) / 1e9);
    return CLI_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void *server_thread(void *arg)
{
    server_run(arg);
    return NULL;
}

/* The spawned server's settings: defaults, loopback ephemeral ports,
 * then the user's --set options, on our data directory. */
static int spawn_config(const bench_opts *o, const char *dir, config *cfg)
{
    char err[512];
    config_defaults(cfg);
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:*");
    snprintf(cfg->pull, sizeof cfg->pull, "tcp://127.0.0.1:*");
    config_set(cfg, "log-level", "warn", err, sizeof err); /* keep the report readable */
    for (int i = 0; i < o->nsets; i++) {
        char name[64];
        const char *eq = strchr(o->sets[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
        if (config_set(cfg, name, eq + 1, err, sizeof err) != LS_OK)
            return cli_error("bench", CLI_USAGE, "--set %s: %s", o->sets[i],
                             strcmp(err, "") ? err : "no such serve option");
    }
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
    /* room for the customer base (records are 330-450 bytes) and the run */
    uint64_t need = o->lg.customers * 1024 + (512ULL << 20);
    if (cfg->map_size < need)
        cfg->map_size = need;
    return CLI_OK;
}

static void spawn_stop(spawned *sp)
{
    if (sp->running) {
        server_request_stop(sp->srv);
        pthread_join(sp->thread, NULL);
        sp->running = 0;
    }
    server_destroy(&sp->srv);
    if (sp->own_dir && sp->dir[0])
        nftw(sp->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    sp->dir[0] = '\0';
}

/* Makes the store directory, preloads it and starts the server. */
static int spawn_start(const bench_opts *o, spawned *sp)
{
    config cfg;
    char err[512] = "";
    memset(sp, 0, sizeof *sp);
    if (o->data) {
        snprintf(sp->dir, sizeof sp->dir, "%s", o->data);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(sp->dir, sizeof sp->dir, "%s/leadscore-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(sp->dir))
            return cli_error("bench", CLI_FAIL, "cannot make a temporary directory: %s", strerror(errno));
        sp->own_dir = 1;
    }
    int rc = spawn_config(o, sp->dir, &cfg);
    if (rc == CLI_OK)
        rc = preload(o, &cfg);
    if (rc != CLI_OK)
        return rc;
    if (server_start(&sp->srv, &cfg, err, sizeof err) != LS_OK)
        return cli_error("bench", CLI_FAIL, "cannot start the server: %s", err);
    if (pthread_create(&sp->thread, NULL, server_thread, sp->srv) != 0)
        return cli_error("bench", CLI_FAIL, "cannot start the server thread");
    sp->running = 1;
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* The figures                                                         */
/* ------------------------------------------------------------------ */

enum { SHOW_REQUESTS = 1, SHOW_PULL = 2, SHOW_BATCHED = 4, SHOW_MIXED = 8 };
enum { FMT_COUNT, FMT_RATE, FMT_US, FMT_SECONDS, FMT_BYTES };

static double us(const hist *h, double pct)
{
    return h && hist_count(h) ? (double)hist_percentile(h, pct) / 1e3 : 0;
}

static double f_requests(const loadgen_result *r) { return (double)r->requests; }
static double f_rps(const loadgen_result *r) { return r->requests_per_s; }
static double f_ips(const loadgen_result *r) { return r->items_per_s; }
static double f_p50(const loadgen_result *r) { return us(r->latency, 50); }
static double f_p90(const loadgen_result *r) { return us(r->latency, 90); }
static double f_p99(const loadgen_result *r) { return us(r->latency, 99); }
static double f_p999(const loadgen_result *r) { return us(r->latency, 99.9); }
static double f_max(const loadgen_result *r) { return us(r->latency, 100); }
static double f_mean(const loadgen_result *r) { return r->latency ? hist_mean(r->latency) / 1e3 : 0; }
static double f_read_p50(const loadgen_result *r) { return us(r->kind_latency[LOADGEN_KIND_READ], 50); }
static double f_read_p99(const loadgen_result *r) { return us(r->kind_latency[LOADGEN_KIND_READ], 99); }
static double f_write_p50(const loadgen_result *r) { return us(r->kind_latency[LOADGEN_KIND_WRITE], 50); }
static double f_write_p99(const loadgen_result *r) { return us(r->kind_latency[LOADGEN_KIND_WRITE], 99); }
static double f_errors(const loadgen_result *r) { return (double)r->errors; }
static double f_req_bytes(const loadgen_result *r) { return r->request_bytes; }
static double f_reply_bytes(const loadgen_result *r) { return r->reply_bytes; }
static double f_sent(const loadgen_result *r) { return (double)r->pull_events_sent; }
static double f_landed_ps(const loadgen_result *r) { return r->pull_ingest_per_s; }
static double f_lost(const loadgen_result *r) { return (double)r->pull_events_lost; }
static double f_settle(const loadgen_result *r) { return r->pull_settle_wait_s; }

typedef struct {
    const char *label;   /* the text table's row; NULL: "<items>/s" */
    const char *key;     /* the JSON key */
    int fmt;
    int show;            /* SHOW_* flags: which workloads have it */
    int ratio;           /* 1: a ratio leadscore/echo is meaningful */
    double (*get)(const loadgen_result *r);
} figure;

static const figure figures[] = {
    {"requests", "requests", FMT_COUNT, SHOW_REQUESTS | SHOW_PULL, 1, f_requests},
    {"req/s", "requests_per_s", FMT_RATE, SHOW_REQUESTS | SHOW_PULL, 1, f_rps},
    {NULL, "items_per_s", FMT_RATE, SHOW_BATCHED | SHOW_PULL, 1, f_ips},
    {"p50 (us)", "p50_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_p50},
    {"p90 (us)", "p90_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_p90},
    {"p99 (us)", "p99_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_p99},
    {"p99.9 (us)", "p999_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_p999},
    {"max (us)", "max_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_max},
    {"mean (us)", "mean_us", FMT_US, SHOW_REQUESTS | SHOW_PULL, 1, f_mean},
    {"score p50 (us)", "score_p50_us", FMT_US, SHOW_MIXED, 1, f_read_p50},
    {"score p99 (us)", "score_p99_us", FMT_US, SHOW_MIXED, 1, f_read_p99},
    {"track p50 (us)", "track_p50_us", FMT_US, SHOW_MIXED, 1, f_write_p50},
    {"track p99 (us)", "track_p99_us", FMT_US, SHOW_MIXED, 1, f_write_p99},
    {"events sent", "events_sent", FMT_COUNT, SHOW_PULL, 0, f_sent},
    {"events landed/s", "events_landed_per_s", FMT_RATE, SHOW_PULL, 1, f_landed_ps},
    {"events missing", "events_missing", FMT_COUNT, SHOW_PULL, 0, f_lost},
    {"settle wait (s)", "settle_wait_s", FMT_SECONDS, SHOW_PULL, 0, f_settle},
    {"request bytes", "request_bytes", FMT_BYTES, SHOW_REQUESTS | SHOW_PULL, 0, f_req_bytes},
    {"reply bytes", "reply_bytes", FMT_BYTES, SHOW_REQUESTS, 0, f_reply_bytes},
    {"errors", "errors", FMT_COUNT, SHOW_REQUESTS | SHOW_PULL, 0, f_errors},
};
#define N_FIGURES (sizeof figures / sizeof figures[0])

/* Which rows apply to a workload. */
static int shown_for(loadgen_workload w)
{
    if (w == LOADGEN_PULL)
        return SHOW_PULL;
    int show = SHOW_REQUESTS;
    if (w == LOADGEN_SCORE_BATCH || w == LOADGEN_TRACK || w == LOADGEN_MIXED)
        show |= SHOW_BATCHED;
    if (w == LOADGEN_MIXED)
        show |= SHOW_MIXED;
    return show;
}

static const char *item_name(loadgen_workload w)
{
    return w == LOADGEN_SCORE_BATCH ? "customers" : w == LOADGEN_MIXED ? "items" : "events";
}

static void format_value(char *buf, size_t cap, int fmt, double v)
{
    switch (fmt) {
    case FMT_COUNT: snprintf(buf, cap, "%.0f", v); break;
    case FMT_RATE: snprintf(buf, cap, v >= 100 ? "%.0f" : "%.1f", v); break;
    case FMT_SECONDS: snprintf(buf, cap, "%.2f", v); break;
    case FMT_BYTES: snprintf(buf, cap, "%.0f", v); break;
    default: snprintf(buf, cap, "%.1f", v); break;
    }
}

/* ------------------------------------------------------------------ */
/* The text report                                                     */
/* ------------------------------------------------------------------ */

static void print_header(FILE *out, const bench_opts *o, const char *target)
{
    const loadgen_config *lg = &o->lg;
    fprintf(out, "workload %s  clients %d  inflight %d  customers %llu ", loadgen_workload_name(lg->workload),
            lg->clients, lg->inflight, (unsigned long long)lg->customers);
    if (lg->zipf_s > 0)
        fprintf(out, "zipf %g", lg->zipf_s);
    else
        fprintf(out, "uniform");
    if (loadgen_workload_batched(lg->workload))
        fprintf(out, "  batch %d", lg->batch);
    if (lg->workload == LOADGEN_MIXED)
        fprintf(out, "  mix %d%% score", lg->mix_read_pct);
    fprintf(out, "\n");
    if (lg->rate > 0)
        fprintf(out, "open loop at %g req/s", lg->rate);
    else
        fprintf(out, "closed loop");
    if (lg->requests)
        fprintf(out, "  %llu requests", (unsigned long long)lg->requests);
    else
        fprintf(out, "  %g s", lg->duration_s);
    fprintf(out, " after %g s warm-up  seed %llu  server %s\n", lg->warmup_s, (unsigned long long)lg->seed, target);
}

/* The pull workload sends batches, not requests, and times the send. */
static void pull_label(const figure *f, char *label, size_t cap)
{
    if (f->fmt == FMT_US)
        snprintf(label, cap, "send %s", f->label);
    else if (f->get == f_requests)
        snprintf(label, cap, "batches sent");
    else if (f->get == f_rps)
        snprintf(label, cap, "batches/s");
    else if (f->get == f_ips)
        snprintf(label, cap, "events sent/s");
}

/* Prints one row per figure: the leadscore column, the echo column and
 * their ratio, for whichever of the two runs happened (ls or echo may be
 * NULL). */
static void print_table(FILE *out, const bench_opts *o, const loadgen_result *ls, const loadgen_result *echo)
{
    int show = shown_for(o->lg.workload);
    char label[64], v[32];
    fprintf(out, "%-18s", "");
    if (ls)
        fprintf(out, " %12s", "leadscore");
    if (echo)
        fprintf(out, " %12s", "echo");
    fprintf(out, "%s\n", ls && echo ? "     ratio" : "");
    for (size_t i = 0; i < N_FIGURES; i++) {
        const figure *f = &figures[i];
        if (!(f->show & show))
            continue;
        if (f->label)
            snprintf(label, sizeof label, "%s", f->label);
        else
            snprintf(label, sizeof label, "%s/s", item_name(o->lg.workload));
        if (o->lg.workload == LOADGEN_PULL)
            pull_label(f, label, sizeof label);
        fprintf(out, "%-18s", label);
        for (int col = 0; col < 2; col++) {
            const loadgen_result *r = col == 0 ? ls : echo;
            if (r) {
                format_value(v, sizeof v, f->fmt, f->get(r));
                fprintf(out, " %12s", v);
            }
        }
        if (ls && echo) {
            double e = f->get(echo);
            if (f->ratio && e > 0)
                fprintf(out, " %9.2f", f->get(ls) / e);
            else
                fprintf(out, " %9s", "-");
        }
        fprintf(out, "\n");
    }
}

static void print_pull_notes(FILE *out, const loadgen_result *ls)
{
    if (!ls->pull_checked)
        fprintf(out, "pull check: the server's event count was still moving after %.0f s: %lld events had not "
                     "landed yet (queued, not necessarily lost)%s%s\n",
                ls->pull_settle_wait_s, (long long)ls->pull_events_lost, ls->first_error[0] ? "; " : "",
                ls->first_error);
    else if (ls->pull_events_lost > 0)
        fprintf(out, "pull check: %lld of %llu events sent never landed on the server\n",
                (long long)ls->pull_events_lost, (unsigned long long)ls->pull_events_sent);
    else
        fprintf(out, "pull check: all %llu events sent landed on the server\n",
                (unsigned long long)ls->pull_events_sent);
    fprintf(out, "(pull: latency is the time to hand a batch to ZeroMQ; events landed/s is the\n"
                 " server's ingest rate, from the first send until its count stopped moving)\n");
}

static void print_notes(FILE *out, const bench_opts *o, const loadgen_result *ls, const loadgen_result *echo)
{
    if (!ls) {
        fprintf(out, "interrupted during the echo baseline: the leadscore run did not happen\n");
        return;
    }
    if (ls->errors)
        fprintf(out, "errors: %llu error replies, %llu timeouts, %llu send failures; first: %s\n",
                (unsigned long long)ls->error_replies, (unsigned long long)ls->timeouts,
                (unsigned long long)ls->send_failures, ls->first_error);
    if (ls->abandoned)
        fprintf(out, "%llu requests were still unanswered when the run was stopped (not counted)\n",
                (unsigned long long)ls->abandoned);
    if (o->lg.workload == LOADGEN_PULL)
        print_pull_notes(out, ls);
    if (ls->interrupted || (echo && echo->interrupted))
        fprintf(out, "interrupted: the figures cover the time until Ctrl-C\n");
    if (echo)
        fprintf(out, "ratio = leadscore / echo; on a noisy machine only the ratios are comparable\n");
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* The latency spectrum: percentiles 1 - 10^(-i/20) until the samples
 * run out, plus 100.  Each row is [percentile, microseconds]. */
static json_t *spectrum(const hist *h)
{
    json_t *arr = json_array();
    uint64_t n = h ? hist_count(h) : 0;
    for (int i = 0; n && i <= 120; i++) {
        double tail = pow(10, -i / 20.0);
        if (tail * (double)n < 1)
            break;
        json_array_append_new(arr, json_pack("[f,f]", 100 * (1 - tail), us(h, 100 * (1 - tail))));
    }
    if (n)
        json_array_append_new(arr, json_pack("[f,f]", 100.0, us(h, 100)));
    return arr;
}

static json_t *result_json(const loadgen_result *r, int show)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_FIGURES; i++)
        if (figures[i].show & show)
            json_object_set_new(o, figures[i].key, json_real(figures[i].get(r)));
    json_object_set_new(o, "items", json_integer((json_int_t)r->items));
    json_object_set_new(o, "warmup_requests", json_integer((json_int_t)r->warmup_requests));
    json_object_set_new(o, "error_replies", json_integer((json_int_t)r->error_replies));
    json_object_set_new(o, "timeouts", json_integer((json_int_t)r->timeouts));
    json_object_set_new(o, "send_failures", json_integer((json_int_t)r->send_failures));
    json_object_set_new(o, "abandoned", json_integer((json_int_t)r->abandoned));
    json_object_set_new(o, "first_error", r->first_error[0] ? json_string(r->first_error) : json_null());
    json_object_set_new(o, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(o, "interrupted", json_boolean(r->interrupted));
    json_object_set_new(o, "min_us", json_real(us(r->latency, 0)));
    json_object_set_new(o, "percentiles_us", spectrum(r->latency));
    if (show & SHOW_PULL) {
        json_object_set_new(o, "events_landed", json_integer((json_int_t)r->pull_events_landed));
        json_object_set_new(o, "pull_checked", json_boolean(r->pull_checked));
    }
    return o;
}

static json_t *ratio_json(const loadgen_result *ls, const loadgen_result *echo, int show)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_FIGURES; i++) {
        const figure *f = &figures[i];
        double e = f->get(echo);
        if ((f->show & show) && f->ratio)
            json_object_set_new(o, f->key, e > 0 ? json_real(f->get(ls) / e) : json_null());
    }
    return o;
}

static json_t *config_json(const bench_opts *o, const char *target)
{
    const loadgen_config *lg = &o->lg;
    return json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:s, s:f, s:f, s:f, s:I, s:f, s:i, s:i, s:I, s:i, s:b}",
                     "leadscore_version", LS_VERSION, "workload", loadgen_workload_name(lg->workload), "server",
                     target, "clients", lg->clients, "inflight", lg->inflight, "customers", (json_int_t)lg->customers,
                     "distribution", lg->zipf_s > 0 ? "zipf" : "uniform", "zipf_s", lg->zipf_s, "rate", lg->rate,
                     "duration_s", lg->requests ? 0.0 : lg->duration_s, "requests", (json_int_t)lg->requests,
                     "warmup_s", lg->warmup_s, "batch", lg->batch, "mix_score_pct", lg->mix_read_pct, "seed",
                     (json_int_t)lg->seed, "timeout_ms", lg->timeout_ms, "baseline", o->baseline);
}

static int write_json(const bench_opts *o, const char *target, const loadgen_result *ls, const loadgen_result *echo)
{
    int show = shown_for(o->lg.workload);
    json_t *root = json_object();
    json_object_set_new(root, "config", config_json(o, target));
    json_object_set_new(root, "leadscore", ls ? result_json(ls, show) : json_null());
    json_object_set_new(root, "echo", echo ? result_json(echo, show) : json_null());
    json_object_set_new(root, "ratio", ls && echo ? ratio_json(ls, echo, show) : json_null());
    int rc = strcmp(o->json_path, "-") == 0 ? json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6))
                                            : json_dump_file(root, o->json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (strcmp(o->json_path, "-") == 0)
        putchar('\n');
    json_decref(root);
    return rc ? cli_error("bench", CLI_FAIL, "cannot write %s", o->json_path) : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* The plot                                                            */
/* ------------------------------------------------------------------ */

/* One inline gnuplot data block: x = 1/(1-p), y = microseconds. */
static void plot_data(FILE *gp, const char *name, const hist *h)
{
    uint64_t n = h ? hist_count(h) : 0;
    fprintf(gp, "$%s << EOD\n", name);
    for (int i = 0; n && i <= 240; i++) {
        double tail = pow(10, -i / 40.0);
        if (tail * (double)n < 1)
            break;
        fprintf(gp, "%.6g %.6g\n", 1 / tail, us(h, 100 * (1 - tail)));
    }
    fprintf(gp, "EOD\n");
}

static int write_plot(const bench_opts *o, const loadgen_result *ls, const loadgen_result *echo)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "leadscore bench: --plot needs gnuplot, which is not installed: "
                        "apt-get install gnuplot-nox (carrying on without the plot)\n");
        return CLI_OK;
    }
    FILE *gp = popen("gnuplot", "w");
    if (!gp)
        return cli_error("bench", CLI_FAIL, "cannot run gnuplot: %s", strerror(errno));
    fprintf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 960,600 } "
                "else { set terminal png size 960,600 }\n"
                "set output '%s'\n"
                "set title 'leadscore bench: %s, %d clients x %d in flight' noenhanced\n"
                "set logscale x\nset logscale y\nset grid\nset key top left\n"
                "set xlabel 'percentile'\nset ylabel 'latency (us)'\n"
                "set xtics ('0%%%%' 1, '50%%%%' 2, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, '99.99%%%%' 10000, '99.999%%%%' 100000)\n",
            o->plot_path, loadgen_workload_name(o->lg.workload), o->lg.clients, o->lg.inflight);
    plot_data(gp, "ls", ls ? ls->latency : NULL);
    plot_data(gp, "echo", echo ? echo->latency : NULL);
    fprintf(gp, "plot %s%s%s\n", ls ? "$ls using 1:2 with lines lw 2 title 'leadscore'" : "", ls && echo ? ", " : "",
            echo ? "$echo using 1:2 with lines lw 2 title 'zmq echo'" : "");
    int rc = pclose(gp);
    if (rc != 0)
        return cli_error("bench", CLI_FAIL, "gnuplot failed writing %s", o->plot_path);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

/* Runs o's workload against one target; an exit status. */
static int run_against(const bench_opts *o, const char *name, const loadgen_echo *echo, const char *ep,
                       const char *pull_ep, loadgen_result *out)
{
    loadgen_config cfg = o->lg;
    progress_ctx pc = {name};
    cfg.endpoint = ep;
    cfg.pull_endpoint = pull_ep;
    cfg.echo = echo;
    cfg.stop = &bench_interrupted;
    if (progress_wanted(o)) {
        cfg.progress = show_progress;
        cfg.progress_arg = &pc;
    }
    int rc = loadgen_run(&cfg, out);
    clear_progress(o);
    if (rc != LS_OK)
        return cli_error("bench", CLI_FAIL, "%s run: %s", name, out->first_error[0] ? out->first_error : ls_strerror(rc));
    return CLI_OK;
}

/* Asks the server once before the run.  Returns CLI_OK, CLI_FAIL, or -1
 * when the workload's op is unknown there (skip). */
static int check_target(const bench_opts *o, const char *ep)
{
    loadgen_config cfg = o->lg;
    char why[300];
    cfg.endpoint = ep;
    int rc = loadgen_probe(&cfg, why, sizeof why);
    if (rc == LS_OK)
        return CLI_OK;
    if (rc == LS_EUNKNOWNOP) {
        fprintf(stderr, "leadscore bench: the server at %s does not know the \"%s\" op (%s): skipping the %s "
                        "workload\n", ep, o->lg.workload == LOADGEN_RECOMMEND ? "recommend" : "score", why,
                loadgen_workload_name(o->lg.workload));
        return -1;
    }
    if (rc == LS_ETIMEOUT)
        return cli_error("bench", CLI_FAIL,
                         "no reply from %s within %d ms: is `leadscore serve` running there? (a CurveZMQ "
                         "server answers only known keys: --server-key and --key)", ep, o->lg.timeout_ms);
    return cli_error("bench", CLI_FAIL, "the server at %s refused a %s request: %s", ep,
                     loadgen_workload_name(o->lg.workload), why);
}

/* The echo baseline: starts the echo server, runs, stops it. */
static int run_baseline(const bench_opts *o, loadgen_result *out)
{
    loadgen_echo *echo;
    if (loadgen_echo_start(&echo, o->lg.client_public != NULL) != LS_OK)
        return cli_error("bench", CLI_FAIL, "cannot start the echo server");
    int rc = run_against(o, "echo", echo, loadgen_echo_endpoint(echo), loadgen_echo_pull_endpoint(echo), out);
    loadgen_echo_stop(&echo);
    return rc;
}

/* Prints, writes JSON and the plot; returns the exit status. */
static int report(const bench_opts *o, const char *target, const loadgen_result *ls, const loadgen_result *echo)
{
    int to_stdout = o->json_path && strcmp(o->json_path, "-") == 0;
    FILE *out = to_stdout ? stderr : stdout;
    print_header(out, o, target);
    print_table(out, o, ls, echo);
    print_notes(out, o, ls, echo);
    int rc = CLI_OK;
    if (o->json_path)
        rc = write_json(o, target, ls, echo);
    if (o->plot_path && rc == CLI_OK)
        rc = write_plot(o, ls, echo);
    if (rc == CLI_OK && ls && (ls->requests == 0 || ls->pull_events_lost > 0) && !ls->interrupted)
        rc = CLI_FAIL;
    return rc;
}

/* SIGINT stops the run (figures are still printed); a second one, with
 * the default action restored by SA_RESETHAND, ends the process. */
static void catch_sigint(struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    bench_interrupted = 0;
    sigaction(SIGINT, &sa, old);
}

/* Finds the server to drive: --connect's, or one spawned in-process.
 * Sets the endpoints and a description for the report; an exit status. */
static int open_target(const bench_opts *o, spawned *sp, const char **ep, const char **pull_ep, char *target,
                       size_t cap)
{
    *ep = o->connect;
    *pull_ep = o->pull;
    if (o->connect) {
        snprintf(target, cap, "%s", o->connect);
        return CLI_OK;
    }
    int rc = spawn_start(o, sp);
    if (rc == CLI_OK) {
        *ep = server_endpoint(sp->srv);
        *pull_ep = server_pull_endpoint(sp->srv);
        snprintf(target, cap, "spawned at %s (store %s)", *ep, sp->dir);
    }
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    if (bench_offline_wanted(argc, argv))
        return bench_offline(argc, argv);
    bench_opts o;
    spawned sp;
    loadgen_result ls, echo;
    struct sigaction old_int;
    const char *ep = NULL, *pull_ep = NULL;
    char target[1400] = "";
    memset(&o, 0, sizeof o);
    memset(&sp, 0, sizeof sp);
    memset(&ls, 0, sizeof ls);
    memset(&echo, 0, sizeof echo);
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = read_keys(&o)) != CLI_OK)
        return rc;
    catch_sigint(&old_int);
    rc = open_target(&o, &sp, &ep, &pull_ep, target, sizeof target);
    if (rc == CLI_OK)
        rc = check_target(&o, ep);
    if (rc == CLI_OK && o.baseline)
        rc = run_baseline(&o, &echo);
    int ran = rc == CLI_OK && !bench_interrupted;
    if (ran)
        rc = run_against(&o, "leadscore", NULL, ep, pull_ep, &ls);
    if (rc == CLI_OK)
        rc = report(&o, target, ran ? &ls : NULL, o.baseline ? &echo : NULL);
    else if (rc < 0)
        rc = CLI_OK; /* a skipped workload */
    sigaction(SIGINT, &old_int, NULL); /* from here Ctrl-C quits at once */
    if (sp.running && ran && ls.pull_events_lost > 0 && !o.quiet)
        fprintf(stderr, "waiting for the spawned server to store the %lld events still queued before it stops "
                        "(Ctrl-C quits now)\n", (long long)ls.pull_events_lost);
    spawn_stop(&sp);
    loadgen_result_free(&ls);
    loadgen_result_free(&echo);
    return rc;
}
