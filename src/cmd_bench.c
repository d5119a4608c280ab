/* cmd_bench.c -- `leadscore bench`: the load generator and report ops
 * teams run before they trust a leadscore deployment.
 *
 * It drives a running server (--connect EP) or, by default, starts one
 * in-process (bench_spawn.h) on a temporary store that it first preloads
 * with a synthetic customer base.  The run itself is loadgen_run()
 * (loadgen.h).  With --baseline the same request pattern first goes to a
 * bare ZeroMQ echo server, and every figure is printed beside its echo
 * counterpart with the ratio leadscore/echo: on a noisy machine only the
 * ratios are comparable.  --json writes every figure for machines, --plot
 * a latency-percentile chart through gnuplot.
 *
 * Marketing automation: the `triggers` workload defines an audience every
 * new customer enters and times each event's trigger at a consumer, with
 * the acknowledged track latency of the same run beside it as its
 * baseline; `--audiences N` on a write workload hands over to
 * bench_audiences.c, which compares three servers (triggers off, on, on
 * with N audiences); the offline workloads go to bench_offline.c.
 *
 * The figures are described once, in the `figures` table below; the text
 * table, the JSON and the ratios all read it. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_audiences.h"
#include "bench_offline.h"
#include "bench_spawn.h"
#include "cli.h"
#include "config.h"
#include "cliopts.h"
#include "leadscore/error.h"
#include "loadgen.h"
#include "median.h"
#include "security.h"
#include "writer.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif

#define MAX_SETS 32
#define DEFAULT_ROUNDS 3
#define TRIGGERS_HEADROOM (32ULL << 30)

/* The one piece of process-wide state: the signal (SIGINT, SIGTERM)
 * that stops the run, 0 until one comes; read by the run. */
static volatile sig_atomic_t bench_interrupted;

static void on_stop_signal(int sig)
{
    bench_interrupted = sig;
}

/* How the report names what stopped the run. */
static const char *stop_signal_name(void)
{
    return bench_interrupted == SIGTERM ? "SIGTERM" : "Ctrl-C (SIGINT)";
}

typedef struct {
    loadgen_config lg;
    const char *connect;      /* NULL: spawn */
    const char *pull;         /* --pull EP (with --connect) */
    const char *data;         /* --spawn: keep the store here */
    const char *sets[MAX_SETS];
    int nsets;
    int batch_given;
    int pull_backlog_given;
    int audiences;            /* --audiences N */
    int rounds, rounds_given; /* --rounds R */
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
            "offline: then time `leadscore rescore` of that store, warm (customers/s),\n"
            "                                    the median of --rounds runs (default 3), each beside\n"
            "                                    a raw LMDB cursor walk of the same values (the ratio\n"
            "                                    rescore / raw walk); with --data DIR the store is\n"
            "                                    kept there and reused");
}

/* --workload: an online workload; import or rescore are taken and left
 * for a later --workload to override (the last one counts: were one of
 * them last, bench_offline_wanted would have sent the run there). */
static int parse_workload(const char *arg, void *dest, char *why, size_t cap)
{
    if (loadgen_workload_parse(arg, dest) == 0 || bench_offline_workload(arg))
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

static const char *const event_id_words[] = {"sequential", "random", NULL};
static const int event_id_values[] = {LOADGEN_IDS_SEQUENTIAL, LOADGEN_IDS_RANDOM};

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
     .help = "--spawn: keep the store in DIR (a new or empty directory, or a\n"
             "store an earlier bench made there: it has a bench-store file),\n"
             "and reuse it when it already holds N customers; any other store\n"
             "is refused, as the bench writes synthetic data into it"},
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
     .help = "customers or events per request (default 100; 1 for mixed and\ntriggers)"},
    {.name = "event-ids", .kind = CLIOPT_ENUM, F(lg.event_ids), .choices = event_id_words,
     .values = event_id_values, .arg = "SHAPE",
     .help = "track, mixed, pull, triggers: the events' ids, sequential (default: each\n"
             "client counts up) or random (UUID-shaped, as a storefront that\n"
             "makes a UUID v4 per event sends: they spread over the whole of\n"
             "the server's idempotency-key table)"},
    {.name = "mix", .kind = CLIOPT_COUNT, F(lg.mix_read_pct), .lo = 0, .hi = 100, .want = "a percentage", .arg = "P",
     .help = "mixed: P % scores, the rest track (default 90)"},
    {.name = "audiences", .kind = CLIOPT_COUNT, F(audiences), .lo = 1, .hi = LOADGEN_AUDIENCES,
     .want = "a count 1..20", .arg = "N",
     .help = "what marketing automation costs (track, mixed, pull; --spawn):\n"
             "run against three servers, --triggers off, on, and on with N of\n"
             "20 built-in audiences (listed in the report), and print each\n"
             "one's median and the ratios b/a and c/a; triggers: define those\n"
             "N audiences on the server as well"},
    {.name = "rounds", .kind = CLIOPT_COUNT, F(rounds), CLIOPT_GIVEN(bench_opts, rounds_given), .lo = 1,
     .hi = MEDIAN_MAX_RUNS,
     .want = "a count 1..100", .arg = "R",
     .help = "repeat the run R times and report the median of each figure\n"
             "(with --baseline the echo and leadscore runs alternate, and the\n"
             "ratio is the median of the rounds' ratios); --audiences: runs per\n"
             "configuration, in rotated order, each on a freshly started server\n"
             "(default 3); rescore: timed runs (default 3); not for triggers"},
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
             "intended send time (default: closed loop, as fast as answered);\n"
             "a request due in the window that is still unsent when the\n"
             "window ends, or --timeout after its due time, is never sent:\n"
             "reported as \"not sent (overload)\" and counted among the\n"
             "errors (the warm-up's backlog is dropped when the window begins)"},
    {.name = "duration", .kind = CLIOPT_DURATION, F(lg.duration_s), .lo = 1, .hi = LLONG_MAX, .want = "a duration > 0",
     .arg = "SEC", .help = "measured time (default 10; 500ms, 2m also work)"},
    {.name = "requests", .kind = CLIOPT_COUNT, F(lg.requests), .lo = 1, .hi = LLONG_MAX, .want = "a count >= 1",
     .arg = "N", .help = "stop after N measured requests instead"},
    {.name = "warmup", .kind = CLIOPT_DURATION, F(lg.warmup_s), .lo = LLONG_MIN, .hi = LLONG_MAX, .want = "a duration",
     .arg = "SEC", .help = "unrecorded warm-up first (default 1)"},
    {.name = "timeout", .kind = CLIOPT_COUNT, F(lg.timeout_ms), .lo = 1, .hi = 3600000, .want = "milliseconds",
     .arg = "MS", .help = "a request unanswered this long after it was due is an error\n"
                          "(default 5000); open loop: one a client could not send by\n"
                          "then is given up and counted as not sent (overload)"},
    {.name = "pull-backlog", .kind = CLIOPT_COUNT, F(lg.pull_backlog), CLIOPT_GIVEN(bench_opts, pull_backlog_given),
     .lo = 0, .hi = LLONG_MAX, .want = "an event count", .arg = "N",
     .help = "pull: most events sent but not yet stored by the server; the\n"
             "clients wait for it to catch up, so events/s is what it\n"
             "sustains (default 200000, or three times a spawned server's\n"
             "--set commit-max-events when that is more, so its groups can\n"
             "fill; 0: no limit, a flood)"},
    {.name = "pull-wait", .kind = CLIOPT_DURATION, F(lg.pull_max_wait_s), .lo = 1000, .hi = LLONG_MAX,
     .want = "a duration >= 1 s", .arg = "SEC",
     .help = "pull: longest wait for the server's count to settle: unmoved\n"
             "for a second while its events_queued is 0 (default 60)"},
    {.kind = CLIOPT_SECTION, .help = "report"},
    {.name = "baseline", .kind = CLIOPT_FLAG, F(baseline),
     .help = "first run the same pattern against a bare ZeroMQ echo server\n(triggers and --audiences have baselines of their own)"},
    {.name = "json", .kind = CLIOPT_STRING, F(json_path), .arg = "FILE",
     .help = "write every figure as JSON (- for stdout)"},
    {.name = "plot", .kind = CLIOPT_STRING, F(plot_path), .arg = "FILE.png",
     .help = "write a latency-percentile plot (needs gnuplot)"},
    {.name = "quiet", .kind = CLIOPT_FLAG, F(quiet), .help = "no progress line, no line per round: the report alone"},
    CLIOPT_END};
#undef F

static const cliopts_spec bench_spec = {
    .cmd = "bench",
    .usage = "leadscore bench [--connect EP | --spawn] [--workload W] [options]",
    .about = "Load generator and report: runs one workload against a leadscore server and\n"
             "prints latency percentiles, throughput and errors.  With --baseline the same\n"
             "requests first go to a bare ZeroMQ echo server, and every figure is shown\n"
             "beside it with the ratio leadscore/echo (on a noisy machine, compare ratios).\n"
             "\n"
             "Marketing automation: --workload triggers defines the audience\n"
             "bench-new-customers (rule `known`) that every new customer enters, sends each\n"
             "event as a new customer's first, and times every enter trigger from the event\n"
             "to a consumer long-polling the \"triggers\" op, beside the acknowledged track\n"
             "latency of the same run; it deletes the audience when it ends (Ctrl-C and\n"
             "SIGTERM too; after a SIGKILL: `leadscore audience rm bench-new-customers\n"
             "--connect EP`, or every new customer keeps firing an enter trigger);\n"
             "--audiences N with track, mixed or pull runs the workload against three\n"
             "spawned servers (triggers off / on / on with N audiences) for --rounds R\n"
             "and prints the medians and the ratios b/a and c/a.  A spawned server with\n"
             "triggers on first sweeps its store; runs begin after that sweep.",
    .epilog = "Ctrl-C or SIGTERM stops the run early and still prints the figures (the\n"
              "offline workloads print none); a spawned server's temporary store and the\n"
              "offline workloads' files are removed.  Exit status: 0 when the run completed,\n"
              "1 when it was interrupted (Ctrl-C, SIGTERM), no request succeeded, pull events\n"
              "were lost or triggers were missing, 2 on a usage error.",
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

/* The default --pull-backlog of a spawned server given --set
 * commit-max-events=N: three times N when that is more than the usual
 * default, since its writer may hold twice N events (a group committing,
 * the next one's worth waiting) and the clients must keep that much in
 * flight for its groups to fill.  0 when the default stands. */
static uint64_t pull_backlog_for_sets(const bench_opts *o)
{
    config cfg;
    char err[256];
    config_defaults(&cfg);
    for (int i = 0; i < o->nsets; i++)
        if (strncmp(o->sets[i], "commit-max-events=", 18) == 0 &&
            config_set(&cfg, "commit-max-events", o->sets[i] + 18, err, sizeof err) != LS_OK)
            return 0; /* the spawn refuses it, with its message */
    uint64_t three = 3 * (uint64_t)cfg.commit_max_events;
    return three > o->lg.pull_backlog ? three : 0;
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
    if (o->pull && !o->connect)
        return cli_error("bench", CLI_USAGE, "--pull goes with --connect: a spawned server's PULL endpoint is its "
                                             "own");
    if (!o->server_key_path != !o->key_prefix)
        return cli_error("bench", CLI_USAGE, "--server-key and --key go together");
    if (!o->batch_given && (o->lg.workload == LOADGEN_MIXED || o->lg.workload == LOADGEN_TRIGGERS))
        o->lg.batch = 1;
    if (o->rounds_given && o->lg.workload == LOADGEN_TRIGGERS) /* its customers must be new */
        return cli_error("bench", CLI_USAGE, "--rounds does not apply to the triggers workload (every event there "
                                             "is a new customer's first)");
    if (!o->rounds_given)
        o->rounds = o->audiences && o->lg.workload != LOADGEN_TRIGGERS ? DEFAULT_ROUNDS : 1;
    if (o->lg.workload == LOADGEN_TRIGGERS && o->baseline)
        return cli_error("bench", CLI_USAGE, "the triggers workload has its own baseline (the acknowledged track "
                                             "latency of the same run): --baseline does not apply");
    if (o->audiences && o->lg.workload != LOADGEN_TRIGGERS) {
        if (!bench_audiences_workload_ok(o->lg.workload))
            return cli_error("bench", CLI_USAGE, "--audiences measures the write path: use it with the track, "
                                                 "mixed, pull or triggers workload");
        if (o->connect)
            return cli_error("bench", CLI_USAGE, "--audiences starts its own servers (--spawn), not --connect");
        if (o->baseline || o->plot_path)
            return cli_error("bench", CLI_USAGE, "--audiences compares against its own baseline (--triggers off): "
                                                 "--baseline and --plot do not apply");
        for (int i = 0; i < o->nsets; i++)
            if (strncmp(o->sets[i], "triggers=", 9) == 0)
                return cli_error("bench", CLI_USAGE, "--audiences sets --triggers itself: leave out --set %s",
                                 o->sets[i]);
    }
    if (o->audiences && o->lg.workload == LOADGEN_TRIGGERS && o->connect)
        return cli_error("bench", CLI_USAGE, "--audiences defines audiences that stay: with --connect, define them "
                                             "with `leadscore audience` instead");
    uint64_t backlog = o->connect || o->pull_backlog_given ? 0 : pull_backlog_for_sets(o);
    if (backlog)
        o->lg.pull_backlog = backlog;
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
/* The figures                                                         */
/* ------------------------------------------------------------------ */

enum { SHOW_REQUESTS = 1, SHOW_PULL = 2, SHOW_BATCHED = 4, SHOW_MIXED = 8, SHOW_TRIGGERS = 16, SHOW_OPEN = 32 };
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
static double f_not_sent(const loadgen_result *r) { return (double)r->not_sent; }
static double f_req_bytes(const loadgen_result *r) { return r->request_bytes; }
static double f_reply_bytes(const loadgen_result *r) { return r->reply_bytes; }
static double f_sent(const loadgen_result *r) { return (double)r->pull_events_sent; }
static double f_landed_ps(const loadgen_result *r) { return r->pull_ingest_per_s; }
static double f_lost(const loadgen_result *r) { return (double)r->pull_events_lost; }
static double f_settle(const loadgen_result *r) { return r->pull_settle_wait_s; }
static double f_writer_cpu(const loadgen_result *r) { return r->pull_thread_cpu_us; }
static double f_trig_p50(const loadgen_result *r) { return us(r->trigger_latency, 50); }
static double f_trig_p90(const loadgen_result *r) { return us(r->trigger_latency, 90); }
static double f_trig_p99(const loadgen_result *r) { return us(r->trigger_latency, 99); }
static double f_trig_p999(const loadgen_result *r) { return us(r->trigger_latency, 99.9); }
static double f_trig_max(const loadgen_result *r) { return us(r->trigger_latency, 100); }
static double f_trig_mean(const loadgen_result *r) { return r->trigger_latency ? hist_mean(r->trigger_latency) / 1e3 : 0; }
static double f_acked(const loadgen_result *r) { return (double)r->items_acked; }
static double f_trig_received(const loadgen_result *r) { return (double)r->triggers_received; }
static double f_trig_missing(const loadgen_result *r) { return (double)r->triggers_missing; }
static double f_trig_other(const loadgen_result *r) { return (double)r->triggers_other; }
static double f_trig_drain(const loadgen_result *r) { return r->trigger_drain_s; }
static double f_trig_polls(const loadgen_result *r) { return (double)r->trigger_polls; }
static double f_trig_poll_failures(const loadgen_result *r) { return (double)r->trigger_poll_failures; }

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
    /* spawned server only (NAN otherwise: "-", no JSON key) */
    {"writer CPU/ev (us)", "writer_cpu_us_per_event", FMT_US, SHOW_PULL, 0, f_writer_cpu},
    {"request bytes", "request_bytes", FMT_BYTES, SHOW_REQUESTS | SHOW_PULL, 0, f_req_bytes},
    {"reply bytes", "reply_bytes", FMT_BYTES, SHOW_REQUESTS, 0, f_reply_bytes},
    {"errors", "errors", FMT_COUNT, SHOW_REQUESTS | SHOW_PULL, 0, f_errors},
    /* open loop (--rate) with replies: counted among the errors */
    {"not sent (overload)", "not_sent", FMT_COUNT, SHOW_OPEN, 0, f_not_sent},
    /* the triggers workload: printed in their own section */
    {"p50 (us)", "trigger_p50_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_p50},
    {"p90 (us)", "trigger_p90_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_p90},
    {"p99 (us)", "trigger_p99_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_p99},
    {"p99.9 (us)", "trigger_p999_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_p999},
    {"max (us)", "trigger_max_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_max},
    {"mean (us)", "trigger_mean_us", FMT_US, SHOW_TRIGGERS, 0, f_trig_mean},
    {"events acked", "events_acked", FMT_COUNT, SHOW_TRIGGERS, 0, f_acked},
    {"triggers received", "triggers_received", FMT_COUNT, SHOW_TRIGGERS, 0, f_trig_received},
    {"triggers missing", "triggers_missing", FMT_COUNT, SHOW_TRIGGERS, 0, f_trig_missing},
    {"other triggers", "triggers_other", FMT_COUNT, SHOW_TRIGGERS, 0, f_trig_other},
    {"drain (s)", "trigger_drain_s", FMT_SECONDS, SHOW_TRIGGERS, 0, f_trig_drain},
    {"trigger polls", "trigger_polls", FMT_COUNT, SHOW_TRIGGERS, 0, f_trig_polls},
    {"failed polls", "trigger_poll_failures", FMT_COUNT, SHOW_TRIGGERS, 0, f_trig_poll_failures},
};
#define N_FIGURES (sizeof figures / sizeof figures[0])

/* Which rows apply to a run of cfg. */
static int shown_for(const loadgen_config *cfg)
{
    loadgen_workload w = cfg->workload;
    if (w == LOADGEN_PULL)
        return SHOW_PULL;
    int show = SHOW_REQUESTS | (cfg->rate > 0 ? SHOW_OPEN : 0);
    if (w == LOADGEN_SCORE_BATCH || w == LOADGEN_TRACK || w == LOADGEN_MIXED || w == LOADGEN_TRIGGERS)
        show |= SHOW_BATCHED;
    if (w == LOADGEN_MIXED)
        show |= SHOW_MIXED;
    if (w == LOADGEN_TRIGGERS)
        show |= SHOW_TRIGGERS;
    return show;
}

static const char *item_name(loadgen_workload w)
{
    return w == LOADGEN_SCORE_BATCH ? "customers" : w == LOADGEN_MIXED ? "items" : "events";
}

static void format_value(char *buf, size_t cap, int fmt, double v)
{
    if (isnan(v)) { /* not measured for this target */
        snprintf(buf, cap, "-");
        return;
    }
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

/* 1 for the workloads whose events carry an event_id (--event-ids). */
static int sends_event_ids(loadgen_workload w)
{
    return w == LOADGEN_TRACK || w == LOADGEN_MIXED || w == LOADGEN_PULL || w == LOADGEN_TRIGGERS;
}

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
    if (sends_event_ids(lg->workload))
        fprintf(out, "  event ids %s", event_id_words[lg->event_ids]);
    if (lg->workload == LOADGEN_PULL)
        fprintf(out, "  backlog %llu", (unsigned long long)lg->pull_backlog);
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
    if (lg->workload == LOADGEN_TRIGGERS) {
        fprintf(out, "every event is a new customer's first: it enters audience %s (rule `%s`)\n", lg->trigger_audience,
                LOADGEN_TRIGGER_RULE);
        if (o->audiences)
            fprintf(out, "%d built-in audience%s defined as well:\n", o->audiences, o->audiences == 1 ? "" : "s");
        for (int i = 0; i < o->audiences; i++)
            fprintf(out, "  %-22s %s\n", loadgen_audiences[i].name, loadgen_audiences[i].rule);
    }
}

/* The pull workload sends batches, not requests, and times the send. */
static void pull_label(const figure *f, char *label, size_t cap)
{
    if (f->fmt == FMT_US && f->get != f_writer_cpu)
        snprintf(label, cap, "send %s", f->label);
    else if (f->get == f_requests)
        snprintf(label, cap, "batches sent");
    else if (f->get == f_rps)
        snprintf(label, cap, "batches/s");
    else if (f->get == f_ips)
        snprintf(label, cap, "events sent/s");
}

/* --rounds R: every figure of every round, and their medians. */
typedef struct {
    int n;                                   /* rounds recorded */
    double ls[MEDIAN_MAX_RUNS][N_FIGURES], echo[MEDIAN_MAX_RUNS][N_FIGURES];
    double med_ls[N_FIGURES], med_echo[N_FIGURES], med_ratio[N_FIGURES]; /* ratio: < 0 when none */
} bench_rounds;

/* Keeps the figures of one round (echo may be NULL). */
static void rounds_record(bench_rounds *br, const loadgen_result *ls, const loadgen_result *echo)
{
    if (br->n >= MEDIAN_MAX_RUNS)
        return;
    for (size_t i = 0; i < N_FIGURES; i++) {
        br->ls[br->n][i] = figures[i].get(ls);
        br->echo[br->n][i] = echo ? figures[i].get(echo) : 0;
    }
    br->n++;
}

/* The medians over the rounds; a ratio is the median of the rounds'
 * ratios (each against the echo of its own round). */
static void rounds_finish(bench_rounds *br, int with_echo)
{
    double v[MEDIAN_MAX_RUNS], e[MEDIAN_MAX_RUNS], r[MEDIAN_MAX_RUNS];
    for (size_t i = 0; i < N_FIGURES; i++) {
        size_t nr = 0;
        for (int k = 0; k < br->n; k++) {
            v[k] = br->ls[k][i];
            e[k] = br->echo[k][i];
            if (with_echo && figures[i].ratio && br->echo[k][i] > 0)
                r[nr++] = br->ls[k][i] / br->echo[k][i];
        }
        br->med_ls[i] = median_sort(v, (size_t)br->n);
        br->med_echo[i] = median_sort(e, (size_t)br->n);
        br->med_ratio[i] = nr ? median_sort(r, nr) : -1;
    }
}

/* The row of the figure read by get. */
static size_t figure_at(double (*get)(const loadgen_result *r))
{
    size_t i = 0;
    while (i < N_FIGURES - 1 && figures[i].get != get)
        i++;
    return i;
}

/* One line per round on stderr: the throughput and p50 of each run. */
static void print_round(const bench_opts *o, const bench_rounds *br, int with_echo)
{
    int k = br->n - 1, pull = o->lg.workload == LOADGEN_PULL;
    size_t rate = figure_at(pull ? f_landed_ps : f_rps), p50 = figure_at(f_p50);
    if (o->quiet)
        return;
    fprintf(stderr, "round %d of %d: leadscore %.0f %s, p50 %.1f us", k + 1, o->rounds, br->ls[k][rate],
            pull ? "events landed/s" : "req/s", br->ls[k][p50]);
    if (with_echo && br->echo[k][rate] > 0)
        fprintf(stderr, "; echo %.0f, p50 %.1f us; ratios %.2f, %.2f", br->echo[k][rate], br->echo[k][p50],
                br->ls[k][rate] / br->echo[k][rate], br->echo[k][p50] > 0 ? br->ls[k][p50] / br->echo[k][p50] : 0);
    fputc('\n', stderr);
}

/* Prints one row per figure: the leadscore column, the echo column and
 * their ratio, for whichever of the two runs happened (ls or echo may be
 * NULL); with br, the medians of its rounds instead. */
static void print_table(FILE *out, const bench_opts *o, const loadgen_result *ls, const loadgen_result *echo,
                        const bench_rounds *br)
{
    int show = shown_for(&o->lg);
    char label[64], v[32];
    fprintf(out, "%-19s", "");
    if (ls)
        fprintf(out, " %12s", "leadscore");
    if (echo)
        fprintf(out, " %12s", "echo");
    fprintf(out, "%s\n", ls && echo ? "     ratio" : "");
    for (size_t i = 0; i < N_FIGURES; i++) {
        const figure *f = &figures[i];
        if (!(f->show & show) || f->show == SHOW_TRIGGERS)
            continue;
        if (f->label)
            snprintf(label, sizeof label, "%s", f->label);
        else
            snprintf(label, sizeof label, "%s/s", item_name(o->lg.workload));
        if (o->lg.workload == LOADGEN_PULL)
            pull_label(f, label, sizeof label);
        fprintf(out, "%-19s", label);
        for (int col = 0; col < 2; col++) {
            const loadgen_result *r = col == 0 ? ls : echo;
            if (r) {
                format_value(v, sizeof v, f->fmt, br ? (col == 0 ? br->med_ls[i] : br->med_echo[i]) : f->get(r));
                fprintf(out, " %12s", v);
            }
        }
        if (ls && echo) {
            double e = f->get(echo), ratio = br ? br->med_ratio[i] : f->ratio && e > 0 ? f->get(ls) / e : -1;
            if (f->ratio && ratio >= 0)
                fprintf(out, " %9.2f", ratio);
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
                 " server's ingest rate, from the first send until its count stopped moving;\n"
                 " a store after a long stream of events ingests slower: bench/aged.sh)\n");
}

/* The triggers workload: each latency percentile of the acknowledged
 * track requests beside the same percentile of event -> trigger, and the
 * counts (every event acknowledged must have its trigger). */
static void print_trigger_section(FILE *out, const loadgen_result *ls)
{
    static const struct {
        double (*ack)(const loadgen_result *r);
        double (*trig)(const loadgen_result *r);
        const char *label;
    } rows[] = {{f_p50, f_trig_p50, "p50 (us)"},     {f_p90, f_trig_p90, "p90 (us)"},
                {f_p99, f_trig_p99, "p99 (us)"},     {f_p999, f_trig_p999, "p99.9 (us)"},
                {f_max, f_trig_max, "max (us)"},     {f_mean, f_trig_mean, "mean (us)"}};
    fprintf(out, "\n%-18s %12s %12s %12s\n", "event -> trigger", "track ack", "trigger", "trigger/ack");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double a = rows[i].ack(ls), t = rows[i].trig(ls);
        fprintf(out, "%-18s %12.1f %12.1f", rows[i].label, a, t);
        if (a > 0)
            fprintf(out, " %12.2f\n", t / a);
        else
            fprintf(out, " %12s\n", "-");
    }
    fprintf(out, "%-18s %12llu  (warm-up included: the triggers expected)\n", "events acked",
            (unsigned long long)ls->items_acked);
    fprintf(out, "%-18s %12llu  (%llu timed, %llu of warm-up events)\n", "triggers received",
            (unsigned long long)ls->triggers_received,
            (unsigned long long)(ls->triggers_received - ls->triggers_warmup), (unsigned long long)ls->triggers_warmup);
    fprintf(out, "%-18s %12lld\n", "triggers missing", (long long)ls->triggers_missing);
    fprintf(out, "%-18s %12llu  (moments and other audiences' triggers read meanwhile)\n", "other triggers",
            (unsigned long long)ls->triggers_other);
    fprintf(out, "%-18s %12.2f  (from the last acknowledgement to the last trigger)\n", "drain (s)",
            ls->trigger_drain_s);
    fprintf(out, "%-18s %12llu  (long polls of the consumer", "trigger polls", (unsigned long long)ls->trigger_polls);
    if (ls->trigger_poll_failures)
        fprintf(out, "; %llu failed, first: %s", (unsigned long long)ls->trigger_poll_failures, ls->first_error);
    fprintf(out, ")\n");
    fprintf(out, "(both latencies run from the time each track request was due; a trigger is\n"
                 " committed with its event, so it cannot come before the acknowledgement's commit)\n");
}

static void print_notes(FILE *out, const bench_opts *o, const loadgen_result *ls, const loadgen_result *echo)
{
    if (!ls) {
        fprintf(out, "interrupted during the echo baseline: the leadscore run did not happen\n");
        return;
    }
    if (ls->errors)
        fprintf(out, "errors: %llu error replies, %llu timeouts, %llu send failures, %llu not sent (overload); "
                     "first: %s\n", (unsigned long long)ls->error_replies, (unsigned long long)ls->timeouts,
                (unsigned long long)ls->send_failures, (unsigned long long)ls->not_sent, ls->first_error);
    if (ls->not_sent)
        fprintf(out, "overload: %llu requests due in the measured window were never sent (still unsent "
                     "%d ms after their due time, or when the window ended): the clients and the server took "
                     "fewer than --rate %g req/s; the latencies are of the requests sent (try more --clients or "
                     "--inflight, or a lower --rate)\n",
                (unsigned long long)ls->not_sent, o->lg.timeout_ms, o->lg.rate);
    if (ls->abandoned)
        fprintf(out, "%llu requests were still unanswered when the run was stopped (not counted)\n",
                (unsigned long long)ls->abandoned);
    if (o->lg.workload == LOADGEN_PULL)
        print_pull_notes(out, ls);
    if (o->lg.workload == LOADGEN_TRIGGERS) {
        print_trigger_section(out, ls);
        if (ls->triggers_missing > 0 && !ls->interrupted)
            fprintf(out, "%lld of %llu events acknowledged had no trigger after %d ms\n",
                    (long long)ls->triggers_missing, (unsigned long long)ls->items_acked, o->lg.timeout_ms);
    }
    if (ls->interrupted || (echo && echo->interrupted))
        fprintf(out, "interrupted by %s: the figures cover the time until then\n", stop_signal_name());
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
        if ((figures[i].show & show) && !isnan(figures[i].get(r)))
            json_object_set_new(o, figures[i].key, json_real(figures[i].get(r)));
    json_object_set_new(o, "items", json_integer((json_int_t)r->items));
    json_object_set_new(o, "warmup_requests", json_integer((json_int_t)r->warmup_requests));
    json_object_set_new(o, "error_replies", json_integer((json_int_t)r->error_replies));
    json_object_set_new(o, "timeouts", json_integer((json_int_t)r->timeouts));
    json_object_set_new(o, "send_failures", json_integer((json_int_t)r->send_failures));
    json_object_set_new(o, "abandoned", json_integer((json_int_t)r->abandoned));
    json_object_set_new(o, "not_sent", json_integer((json_int_t)r->not_sent));
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
    json_t *c = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:s, s:f, s:f, s:f, s:I, s:f, s:i, s:i, s:I, s:i, s:b}",
                          "leadscore_version", LS_VERSION, "workload", loadgen_workload_name(lg->workload), "server",
                          target, "clients", lg->clients, "inflight", lg->inflight, "customers",
                          (json_int_t)lg->customers, "distribution", lg->zipf_s > 0 ? "zipf" : "uniform", "zipf_s",
                          lg->zipf_s, "rate", lg->rate, "duration_s", lg->requests ? 0.0 : lg->duration_s, "requests",
                          (json_int_t)lg->requests, "warmup_s", lg->warmup_s, "batch", lg->batch, "mix_score_pct",
                          lg->mix_read_pct, "seed", (json_int_t)lg->seed, "timeout_ms", lg->timeout_ms, "baseline",
                          o->baseline);
    if (lg->workload == LOADGEN_TRIGGERS) {
        json_t *auds = json_array();
        json_array_append_new(auds,
                              json_pack("{s:s, s:s}", "name", lg->trigger_audience, "rule", LOADGEN_TRIGGER_RULE));
        for (int i = 0; i < o->audiences; i++)
            json_array_append_new(auds, json_pack("{s:s, s:s}", "name", loadgen_audiences[i].name, "rule",
                                                  loadgen_audiences[i].rule));
        json_object_set_new(c, "audiences", auds);
    }
    if (sends_event_ids(lg->workload))
        json_object_set_new(c, "event_ids", json_string(event_id_words[lg->event_ids]));
    if (lg->workload == LOADGEN_PULL)
        json_object_set_new(c, "pull_backlog", json_integer((json_int_t)lg->pull_backlog));
    return c;
}

/* {key: value} of the figures shown, from row[] (a round's or the
 * medians); ratio rows below 0 (none) are left out. */
static json_t *figures_json(const double *row, int show, int ratios_only)
{
    json_t *o = json_object();
    for (size_t i = 0; i < N_FIGURES; i++)
        if ((figures[i].show & show) && (!ratios_only || figures[i].ratio) && row[i] >= 0)
            json_object_set_new(o, figures[i].key, json_real(row[i]));
    return o;
}

/* --rounds: every round's figures and the medians. */
static void rounds_json(json_t *root, const bench_rounds *br, int show, int with_echo)
{
    json_t *runs = json_array();
    for (int k = 0; k < br->n; k++)
        json_array_append_new(runs, json_pack("{s:o, s:o}", "leadscore", figures_json(br->ls[k], show, 0), "echo",
                                              with_echo ? figures_json(br->echo[k], show, 0) : json_null()));
    json_object_set_new(root, "rounds", json_integer(br->n));
    json_object_set_new(root, "runs", runs);
    json_object_set_new(root, "median",
                        json_pack("{s:o, s:o, s:o}", "leadscore", figures_json(br->med_ls, show, 0), "echo",
                                  with_echo ? figures_json(br->med_echo, show, 0) : json_null(), "ratio",
                                  with_echo ? figures_json(br->med_ratio, show, 1) : json_null()));
}

static int write_json(const bench_opts *o, const char *target, const loadgen_result *ls, const loadgen_result *echo,
                      const bench_rounds *br)
{
    int show = shown_for(&o->lg);
    json_t *root = json_object();
    json_object_set_new(root, "config", config_json(o, target));
    json_object_set_new(root, "leadscore", ls ? result_json(ls, show) : json_null());
    json_object_set_new(root, "echo", echo ? result_json(echo, show) : json_null());
    json_object_set_new(root, "ratio", ls && echo ? ratio_json(ls, echo, show) : json_null());
    if (br)
        rounds_json(root, br, show, echo != NULL);
    errno = 0;
    int rc = strcmp(o->json_path, "-") == 0 ? json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6))
                                            : json_dump_file(root, o->json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (strcmp(o->json_path, "-") == 0)
        putchar('\n');
    json_decref(root);
    return rc ? cli_error("bench", CLI_FAIL, "cannot write %s: %s", o->json_path, strerror(errno ? errno : EIO))
              : CLI_OK;
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

/* Plots the latency curves h1 (title t1) and h2 (t2); either may be
 * NULL. */
static int write_plot(const bench_opts *o, const hist *h1, const char *t1, const hist *h2, const char *t2)
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
    plot_data(gp, "a", h1);
    plot_data(gp, "b", h2);
    fprintf(gp, "plot ");
    if (h1)
        fprintf(gp, "$a using 1:2 with lines lw 2 title '%s'%s", t1, h2 ? ", " : "");
    if (h2)
        fprintf(gp, "$b using 1:2 with lines lw 2 title '%s'", t2);
    fprintf(gp, "\n");
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
    if (!echo && !o->connect)
        cfg.cpu_thread = WRITER_THREAD_NAME; /* the spawned server's, in this process */
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

/* The op loadgen_probe asks about for workload w. */
static const char *probe_op(loadgen_workload w)
{
    switch (w) {
    case LOADGEN_RECOMMEND: return "recommend";
    case LOADGEN_TRIGGERS: return "triggers";
    case LOADGEN_PULL: return "ping";
    case LOADGEN_TRACK: return "track";
    default: return "score";
    }
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
                        "workload\n", ep, probe_op(o->lg.workload), why, loadgen_workload_name(o->lg.workload));
        return -1;
    }
    if (rc == LS_EINVAL)
        return cli_error("bench", CLI_USAGE, "--connect %s: %s", ep, why);
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

/* Prints, writes JSON and the plot; returns the exit status.  With br
 * (--rounds), the table holds the medians of its rounds, and ls and echo
 * are the last round's runs (notes, the JSON's full results, the plot). */
static int report(const bench_opts *o, const char *target, const loadgen_result *ls, const loadgen_result *echo,
                  const bench_rounds *br)
{
    int to_stdout = o->json_path && strcmp(o->json_path, "-") == 0;
    FILE *out = to_stdout ? stderr : stdout;
    print_header(out, o, target);
    if (br)
        fprintf(out, "medians of %d rounds on one server%s (notes: the last round)\n", br->n,
                echo ? ", echo and leadscore alternating; a ratio is the median of the rounds' ratios" : "");
    print_table(out, o, ls, echo, br);
    print_notes(out, o, ls, echo);
    int rc = CLI_OK;
    if (o->json_path)
        rc = write_json(o, target, ls, echo, br);
    if (o->plot_path && rc == CLI_OK)
        rc = o->lg.workload == LOADGEN_TRIGGERS
                 ? write_plot(o, ls ? ls->latency : NULL, "track, acknowledged", ls ? ls->trigger_latency : NULL,
                              "event -> trigger at the consumer")
                 : write_plot(o, ls ? ls->latency : NULL, "leadscore", echo ? echo->latency : NULL, "zmq echo");
    if (rc == CLI_OK && ls && (ls->requests == 0 || ls->pull_events_lost > 0 || ls->triggers_missing > 0) &&
        !ls->interrupted)
        rc = CLI_FAIL;
    return rc;
}

/* SIGINT or SIGTERM stops the run (figures are still printed, temporary
 * stores removed, the triggers workload's audience deleted); a second
 * one of the same, with the default action restored by SA_RESETHAND,
 * ends the process.  No SA_RESTART: a wait for a child returns. */
static void catch_signals(struct sigaction old[2])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    bench_interrupted = 0;
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
}

static void restore_signals(const struct sigaction old[2])
{
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}

/* An interrupted run exits 1 (after its figures), as documented. */
static int interrupted_status(int rc)
{
    if (!bench_interrupted || rc == CLI_USAGE)
        return rc;
    fflush(stdout); /* after the figures */
    if (rc == CLI_OK)
        fprintf(stderr, "leadscore bench: interrupted by %s\n", stop_signal_name());
    return CLI_FAIL;
}

/* What bench_spawn needs of o. */
static bench_spawn_opts spawn_opts(const bench_opts *o)
{
    bench_spawn_opts so = {.customers = o->lg.customers, .seed = o->lg.seed, .sets = o->sets, .nsets = o->nsets,
                           .show_progress = progress_wanted(o), .quiet = o->quiet, .stop = &bench_interrupted};
    if (o->lg.workload == LOADGEN_TRIGGERS) /* every event a new customer, about 2 KB with its automation */
        so.headroom = TRIGGERS_HEADROOM;
    return so;
}

/* How long to wait for a server's automation (a sweep, an audience's
 * first pass): a minute, plus a second per 10,000 customers. */
static double automation_wait_s(const bench_opts *o)
{
    return 60 + (double)o->lg.customers / 10000;
}

/* A spawned server with triggers on sweeps its whole store when it
 * starts; the run waits for that, or it would share the writer with it. */
static int settle_spawned(const bench_opts *o, const bench_spawned *sp, const char *ep)
{
    loadgen_config cfg = o->lg;
    char why[512];
    if (!sp->triggers)
        return CLI_OK;
    cfg.endpoint = ep;
    if (!o->quiet)
        fprintf(stderr, "waiting for the spawned server's automation to sweep its store once\n");
    if (loadgen_automation_settle(&cfg, o->lg.customers, automation_wait_s(o), why, sizeof why) != LS_OK)
        return cli_error("bench", CLI_FAIL, "%s", why);
    return CLI_OK;
}

/* Finds the server to drive: --connect's, or one spawned in-process.
 * Sets the endpoints and a description for the report; an exit status. */
static int open_target(const bench_opts *o, bench_spawned *sp, const char **ep, const char **pull_ep, char *target,
                       size_t cap)
{
    bench_spawn_opts so = spawn_opts(o);
    *ep = o->connect;
    *pull_ep = o->pull;
    if (o->connect) {
        snprintf(target, cap, "%s", o->connect);
        return CLI_OK;
    }
    int rc = bench_spawn_prepare(sp, &so, o->data);
    if (rc == CLI_OK)
        rc = bench_spawn_start(sp, &so, NULL);
    if (rc == CLI_OK) {
        *ep = bench_spawn_endpoint(sp);
        *pull_ep = bench_spawn_pull_endpoint(sp);
        snprintf(target, cap, "spawned at %s (store %s)", *ep, sp->dir);
        rc = settle_spawned(o, sp, *ep);
    }
    return rc;
}

/* The triggers workload: defines its audience (and --audiences N of the
 * built-in ones) and waits until they are ready.  An exit status. */
static int define_audiences(const bench_opts *o, const char *ep)
{
    loadgen_audience list[1 + LOADGEN_AUDIENCES] = {{o->lg.trigger_audience, LOADGEN_TRIGGER_RULE}};
    loadgen_config cfg = o->lg;
    char why[600];
    for (int i = 0; i < o->audiences; i++)
        list[1 + i] = loadgen_audiences[i];
    cfg.endpoint = ep;
    if (!o->quiet)
        fprintf(stderr, "defining audience %s (`%s`)%s; waiting for the server's first pass over its store\n",
                o->lg.trigger_audience, LOADGEN_TRIGGER_RULE, o->audiences ? " and the built-in ones" : "");
    int rc = loadgen_audiences_put(&cfg, list, 1 + (size_t)o->audiences, automation_wait_s(o), why, sizeof why);
    if (rc == LS_EUNAUTH)
        return cli_error("bench", CLI_FAIL, "%s (audience_put is an admin op: --key needs an admin key)", why);
    return rc == LS_OK ? CLI_OK : cli_error("bench", CLI_FAIL, "%s", why);
}

/* After a triggers run against --connect: the bench's audience goes. */
static void undefine_audience(const bench_opts *o, const char *ep)
{
    loadgen_config cfg = o->lg;
    char why[300];
    cfg.endpoint = ep;
    if (loadgen_audience_delete(&cfg, o->lg.trigger_audience, why, sizeof why) != LS_OK)
        fprintf(stderr, "leadscore bench: could not delete audience %s: %s\n", o->lg.trigger_audience, why);
}

/* --audiences N on a write workload: bench_audiences.c. */
static int run_audience_cost(const bench_opts *o)
{
    bench_audiences_opts ao = {.lg = o->lg, .spawn = spawn_opts(o), .data = o->data, .audiences = o->audiences,
                               .rounds = o->rounds, .json_path = o->json_path, .quiet = o->quiet,
                               .progress = progress_wanted(o)};
    ao.lg.stop = &bench_interrupted;
    return bench_audiences_run(&ao);
}

int cmd_bench(int argc, char **argv)
{
    struct sigaction old[2];
    if (bench_offline_wanted(argc, argv)) {
        catch_signals(old);
        int rc = interrupted_status(bench_offline(argc, argv, &bench_interrupted));
        restore_signals(old);
        return rc;
    }
    bench_opts o;
    bench_spawned sp;
    loadgen_result ls, echo;
    const char *ep = NULL, *pull_ep = NULL;
    char target[1400] = "";
    memset(&o, 0, sizeof o);
    memset(&sp, 0, sizeof sp);
    memset(&ls, 0, sizeof ls);
    memset(&echo, 0, sizeof echo);
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = read_keys(&o)) != CLI_OK || (rc = cli_check_writable("bench", "--json", o.json_path)) != CLI_OK ||
        (rc = cli_check_writable("bench", "--plot", o.plot_path)) != CLI_OK)
        return rc;
    catch_signals(old);
    if (o.audiences && o.lg.workload != LOADGEN_TRIGGERS) {
        rc = interrupted_status(run_audience_cost(&o));
        restore_signals(old);
        return rc;
    }
    rc = open_target(&o, &sp, &ep, &pull_ep, target, sizeof target);
    if (rc == CLI_OK)
        rc = check_target(&o, ep);
    int defined = rc == CLI_OK && o.lg.workload == LOADGEN_TRIGGERS;
    if (defined)
        rc = define_audiences(&o, ep);
    bench_rounds *br = o.rounds > 1 ? calloc(1, sizeof *br) : NULL;
    if (o.rounds > 1 && !br)
        rc = cli_error("bench", CLI_FAIL, "out of memory");
    int ran = 0, failed = 0;
    for (int round = 0; round < o.rounds && rc == CLI_OK && !bench_interrupted; round++) {
        if (round > 0) { /* the last round's runs are the ones reported in full */
            loadgen_result_free(&ls);
            loadgen_result_free(&echo);
            memset(&ls, 0, sizeof ls);
            memset(&echo, 0, sizeof echo);
        }
        if (o.baseline)
            rc = run_baseline(&o, &echo);
        ran = rc == CLI_OK && !bench_interrupted;
        if (ran)
            rc = run_against(&o, "leadscore", NULL, ep, pull_ep, &ls);
        if (ran && rc == CLI_OK && br && !ls.interrupted) {
            failed |= ls.requests == 0 || ls.pull_events_lost > 0;
            rounds_record(br, &ls, o.baseline ? &echo : NULL);
            print_round(&o, br, o.baseline);
        }
    }
    if (br && br->n > 0)
        rounds_finish(br, o.baseline);
    if (defined && o.connect)
        undefine_audience(&o, ep);
    if (rc == CLI_OK)
        rc = report(&o, target, ran ? &ls : NULL, o.baseline ? &echo : NULL, br && br->n > 1 ? br : NULL);
    else if (rc < 0)
        rc = CLI_OK; /* a skipped workload */
    if (rc == CLI_OK && failed)
        rc = CLI_FAIL; /* an earlier round had no answer or lost events */
    free(br);
    rc = interrupted_status(rc);
    restore_signals(old); /* from here Ctrl-C quits at once */
    if (sp.running && ran && ls.pull_events_lost > 0 && !o.quiet)
        fprintf(stderr, "waiting for the spawned server to store the %lld events still queued before it stops "
                        "(Ctrl-C quits now)\n", (long long)ls.pull_events_lost);
    bench_spawn_stop(&sp);
    loadgen_result_free(&ls);
    loadgen_result_free(&echo);
    return rc;
}
