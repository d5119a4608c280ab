/* bench_audiences.c -- `leadscore bench --audiences N` (see
 * bench_audiences.h): one write workload against three configurations
 * of the server, triggers off / on / on with N audiences, in rotated
 * rounds; medians and the ratios b/a and c/a.
 *
 * Each configuration has a store of its own, so that what one run leaves
 * behind (audience definitions, member indexes, trigger states) never
 * reaches another configuration.  Each run starts a server on its store,
 * waits until that server's automation has finished the sweep a starting
 * server makes over the whole store (a run begun earlier would share the
 * writer with it), runs the workload, reads how many triggers fired, and
 * stops the server.  The rounds rotate the order (a b c, b c a, c a b) so
 * that a drift of the machine or of the stores' size does not fall on
 * one configuration. */
#define _GNU_SOURCE
#include "bench_audiences.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "leadscore/error.h"
#include "median.h"
#include "writer.h"

#define NCONF 3

typedef struct {
    double rate;                /* the workload's throughput: items/s (pull: landed/s) */
    double p50_us, p99_us;
    uint64_t errors;
    double triggers_per_1k;     /* triggers fired per 1,000 events stored
                                   (mixed: per 1,000 items answered) */
    double writer_us;           /* pull: the server's writer CPU per event
                                   landed, in us; NAN when not measured */
    int ran;
} run_figures;

typedef struct {
    const char *tag;            /* "a", "b", "c" */
    const char *dirname;
    const char *extra[2];       /* serve options the bench sets */
    int triggers;
    int audiences;              /* how many built-in audiences it defines */
    char label[64];
    bench_spawned sp;
    int prepared, defined;
    run_figures runs[MEDIAN_MAX_RUNS];
} conf;

int bench_audiences_workload_ok(loadgen_workload w)
{
    return w == LOADGEN_TRACK || w == LOADGEN_MIXED || w == LOADGEN_PULL;
}

static const char *rate_name(loadgen_workload w)
{
    return w == LOADGEN_PULL ? "events landed/s" : w == LOADGEN_MIXED ? "items/s" : "events/s";
}

/* ------------------------------------------------------------------ */
/* One run                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    const char *label;
    int round, rounds;
} progress_ctx;

static void show_progress(void *arg, const loadgen_progress *p)
{
    const progress_ctx *ctx = arg;
    fprintf(stderr, "\r\033[K  round %d/%d  %-32s %5.1f/%.0f s  %s%9.0f req/s  %llu errors", ctx->round, ctx->rounds,
            ctx->label, p->elapsed_s, p->total_s, p->warming_up ? "warm-up " : "", p->rate,
            (unsigned long long)p->errors);
    fflush(stderr);
}

/* The wait for a starting server's sweep: a minute, plus a second per
 * 10,000 customers. */
static double settle_wait_s(const bench_audiences_opts *o)
{
    return 60 + (double)o->lg.customers / 10000;
}

/* Makes the store of c (once). */
static int prepare(const bench_audiences_opts *o, conf *c)
{
    char dir[1100];
    if (c->prepared)
        return CLI_OK;
    if (o->data) {
        if (mkdir(o->data, 0750) != 0 && errno != EEXIST)
            return cli_error("bench", CLI_FAIL, "cannot make %s: %s", o->data, strerror(errno));
        snprintf(dir, sizeof dir, "%s/%s", o->data, c->dirname);
    }
    int rc = bench_spawn_prepare(&c->sp, &o->spawn, o->data ? dir : NULL);
    c->prepared = rc == CLI_OK || c->sp.dir[0];
    return rc;
}

/* Brings c's server to rest and, the first time, defines its audiences. */
static int make_ready(const bench_audiences_opts *o, conf *c, const loadgen_config *lg)
{
    char why[512];
    if (!c->triggers)
        return CLI_OK;
    if (loadgen_automation_settle(lg, o->lg.customers, settle_wait_s(o), why, sizeof why) != LS_OK)
        return cli_error("bench", CLI_FAIL, "%s: %s", c->label, why);
    if (c->audiences && !c->defined) {
        if (!o->quiet)
            fprintf(stderr, "defining the %d audiences of (c); waiting for their first pass over the store\n",
                    c->audiences);
        if (loadgen_audiences_put(lg, loadgen_audiences, (size_t)c->audiences, settle_wait_s(o), why, sizeof why))
            return cli_error("bench", CLI_FAIL, "%s: %s", c->label, why);
        c->defined = 1;
    }
    return CLI_OK;
}

static uint64_t fired(const loadgen_automation_counters *k)
{
    return k->moments + k->enters + k->exits;
}

static void print_run(FILE *out, const bench_audiences_opts *o, const conf *c, int round, const run_figures *f)
{
    fprintf(out, "round %d  (%s) %-30s %10.0f %s  p50 %9.1f us  p99 %9.1f us  %llu errors", round, c->tag, c->label,
            f->rate, rate_name(o->lg.workload), f->p50_us, f->p99_us, (unsigned long long)f->errors);
    if (c->triggers)
        fprintf(out, "  %.1f triggers per 1000 %s", f->triggers_per_1k,
                o->lg.workload == LOADGEN_MIXED ? "items" : "events");
    if (!isnan(f->writer_us))
        fprintf(out, "  writer %.2f us/event", f->writer_us);
    fprintf(out, "\n");
    fflush(out);
}

static double us_at(const hist *h, double pct)
{
    return h && hist_count(h) ? (double)hist_percentile(h, pct) / 1e3 : 0;
}

/* Starts c's server, runs the workload once, stops the server. */
static int run_once(const bench_audiences_opts *o, conf *c, int round, volatile sig_atomic_t *stop, FILE *out)
{
    loadgen_config lg = o->lg;
    loadgen_result r;
    loadgen_automation_counters before = {0}, after = {0};
    progress_ctx pc = {c->label, round, o->rounds};
    int rc = prepare(o, c);
    if (rc == CLI_OK)
        rc = bench_spawn_start(&c->sp, &o->spawn, c->extra);
    if (rc != CLI_OK) {
        bench_spawn_halt(&c->sp);
        return rc;
    }
    lg.endpoint = bench_spawn_endpoint(&c->sp);
    lg.pull_endpoint = bench_spawn_pull_endpoint(&c->sp);
    lg.stop = stop;
    lg.cpu_thread = WRITER_THREAD_NAME; /* the spawned server's, in this process (pull) */
    if (o->progress) {
        lg.progress = show_progress;
        lg.progress_arg = &pc;
    }
    memset(&r, 0, sizeof r);
    rc = make_ready(o, c, &lg);
    if (rc == CLI_OK && c->triggers && loadgen_automation_read(&lg, &before) != LS_OK)
        rc = cli_error("bench", CLI_FAIL, "%s: cannot read the server's stats", c->label);
    if (rc == CLI_OK && loadgen_run(&lg, &r) != LS_OK)
        rc = cli_error("bench", CLI_FAIL, "%s run: %s", c->label, r.first_error[0] ? r.first_error : "failed");
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    if (rc == CLI_OK && c->triggers)
        loadgen_automation_read(&lg, &after);
    bench_spawn_halt(&c->sp);
    if (rc == CLI_OK && !r.interrupted) {
        run_figures *f = &c->runs[round - 1];
        uint64_t stored = lg.workload == LOADGEN_PULL ? r.pull_events_landed : r.items_acked;
        f->rate = lg.workload == LOADGEN_PULL ? r.pull_ingest_per_s : r.items_per_s;
        f->p50_us = us_at(r.latency, 50);
        f->p99_us = us_at(r.latency, 99);
        f->errors = r.errors + (r.pull_events_lost > 0 ? (uint64_t)r.pull_events_lost : 0);
        f->triggers_per_1k = stored ? 1000.0 * (double)(fired(&after) - fired(&before)) / (double)stored : 0;
        f->writer_us = lg.workload == LOADGEN_PULL ? r.pull_thread_cpu_us : NAN;
        f->ran = 1;
        print_run(out, o, c, round, f);
        if (r.errors && r.first_error[0])
            fprintf(out, "         first error: %s\n", r.first_error);
        if (r.requests == 0 && lg.workload != LOADGEN_PULL)
            rc = cli_error("bench", CLI_FAIL, "%s: no request was answered", c->label);
    }
    loadgen_result_free(&r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The summary                                                         */
/* ------------------------------------------------------------------ */

/* The median of figure `field` (an offset into run_figures) over c's
 * runs that have it (not NAN); 0 when none ran, NAN when none has it. */
static double median(const conf *c, int rounds, size_t field)
{
    double v[MEDIAN_MAX_RUNS];
    int n = 0, ran = 0;
    for (int i = 0; i < rounds; i++) {
        double x = *(const double *)((const char *)&c->runs[i] + field);
        ran += c->runs[i].ran;
        if (c->runs[i].ran && !isnan(x))
            v[n++] = x;
    }
    return ran && !n ? NAN : median_sort(v, (size_t)n);
}

static int runs_done(const conf *c, int rounds)
{
    int n = 0;
    for (int i = 0; i < rounds; i++)
        n += c->runs[i].ran;
    return n;
}

static void print_header(FILE *out, const bench_audiences_opts *o)
{
    const loadgen_config *lg = &o->lg;
    fprintf(out, "audience cost: workload %s  clients %d  inflight %d  customers %llu %s", loadgen_workload_name(lg->workload),
            lg->clients, lg->inflight, (unsigned long long)lg->customers, lg->zipf_s > 0 ? "zipf" : "uniform");
    if (loadgen_workload_batched(lg->workload))
        fprintf(out, "  batch %d", lg->batch);
    fprintf(out, "\n%s", lg->rate > 0 ? "open loop" : "closed loop");
    if (lg->rate > 0)
        fprintf(out, " at %g req/s", lg->rate);
    if (lg->requests)
        fprintf(out, "  %llu requests", (unsigned long long)lg->requests);
    else
        fprintf(out, "  %g s", lg->duration_s);
    fprintf(out, " after %g s warm-up per run  seed %llu  %d round%s, order rotated\n", lg->warmup_s,
            (unsigned long long)lg->seed, o->rounds, o->rounds == 1 ? "" : "s");
    fprintf(out, "a server started in-process for each run, on a store of its configuration; the run begins\n"
                 "once the server's automation has swept its store\n");
    fprintf(out, "the %d audiences of (c):\n", o->audiences);
    for (int i = 0; i < o->audiences; i++)
        fprintf(out, "  %-22s %s\n", loadgen_audiences[i].name, loadgen_audiences[i].rule);
}

/* pull: the medians of the writer's CPU per event, and their ratios to
 * (a)'s: what the automation costs the writer, unmoved by the machine's
 * other load as a rate is. */
static void print_writer_cpu(FILE *out, const bench_audiences_opts *o, conf *cs)
{
    double w[NCONF];
    for (int k = 0; k < NCONF; k++)
        w[k] = median(&cs[k], o->rounds, offsetof(run_figures, writer_us));
    if (o->lg.workload != LOADGEN_PULL || isnan(w[0]) || !(w[0] > 0))
        return;
    fprintf(out, "writer CPU per event landed (us):");
    for (int k = 0; k < NCONF; k++)
        if (!isnan(w[k]))
            fprintf(out, "  (%s) %.2f", cs[k].tag, w[k]);
    fprintf(out, "\n");
    for (int k = 1; k < NCONF; k++)
        if (!isnan(w[k]))
            fprintf(out, "writer ratio %s/a %.3f\n", cs[k].tag, w[k] / w[0]);
}

static void print_summary(FILE *out, const bench_audiences_opts *o, conf *cs)
{
    double base = median(&cs[0], o->rounds, offsetof(run_figures, rate));
    fprintf(out, "\n%-36s %15s %12s %12s %14s %8s\n", "median", rate_name(o->lg.workload), "p50 (us)", "p99 (us)",
            o->lg.workload == LOADGEN_MIXED ? "triggers/1k it" : "triggers/1k ev", "ratio");
    for (int k = 0; k < NCONF; k++) {
        conf *c = &cs[k];
        double rate = median(c, o->rounds, offsetof(run_figures, rate));
        char tag[80], trig[32] = "-", ratio[32] = "-";
        snprintf(tag, sizeof tag, "(%s) %s", c->tag, c->label);
        if (c->triggers)
            snprintf(trig, sizeof trig, "%.1f", median(c, o->rounds, offsetof(run_figures, triggers_per_1k)));
        if (base > 0 && runs_done(c, o->rounds))
            snprintf(ratio, sizeof ratio, "%.3f", rate / base);
        fprintf(out, "%-36s %15.0f %12.1f %12.1f %14s %8s\n", tag, rate,
                median(c, o->rounds, offsetof(run_figures, p50_us)), median(c, o->rounds, offsetof(run_figures, p99_us)),
                trig, ratio);
    }
    for (int k = 1; k < NCONF; k++) {
        double rate = median(&cs[k], o->rounds, offsetof(run_figures, rate));
        if (base > 0 && runs_done(&cs[k], o->rounds))
            fprintf(out, "ratio %s/a %.3f  (%s vs triggers off)\n", cs[k].tag, rate / base, cs[k].label);
    }
    print_writer_cpu(out, o, cs);
    fprintf(out, "(median of %d round%s per configuration; ratio = %s / (a)'s; on a noisy machine compare ratios)\n",
            o->rounds, o->rounds == 1 ? "" : "s", rate_name(o->lg.workload));
}

static json_t *figures_json(const run_figures *f)
{
    json_t *o = json_pack("{s:f, s:f, s:f, s:I, s:f}", "per_s", f->rate, "p50_us", f->p50_us, "p99_us", f->p99_us,
                          "errors", (json_int_t)f->errors, "triggers_per_1000_events", f->triggers_per_1k);
    if (!isnan(f->writer_us))
        json_object_set_new(o, "writer_cpu_us_per_event", json_real(f->writer_us));
    return o;
}

static int write_json(const bench_audiences_opts *o, conf *cs)
{
    const loadgen_config *lg = &o->lg;
    json_t *root = json_object(), *auds = json_array(), *confs = json_object(), *ratio = json_object();
    json_object_set_new(root, "config",
                        json_pack("{s:s, s:i, s:i, s:I, s:i, s:f, s:f, s:i, s:f, s:s, s:i}", "workload",
                                  loadgen_workload_name(lg->workload), "clients", lg->clients, "inflight", lg->inflight,
                                  "customers", (json_int_t)lg->customers, "batch", lg->batch, "duration_s",
                                  lg->duration_s, "warmup_s", lg->warmup_s, "rounds", o->rounds, "rate", lg->rate,
                                  "distribution", lg->zipf_s > 0 ? "zipf" : "uniform", "audiences", o->audiences));
    for (int i = 0; i < o->audiences; i++)
        json_array_append_new(auds, json_pack("{s:s, s:s}", "name", loadgen_audiences[i].name, "rule",
                                              loadgen_audiences[i].rule));
    json_object_set_new(root, "audiences", auds);
    double base = median(&cs[0], o->rounds, offsetof(run_figures, rate));
    double writer_base = median(&cs[0], o->rounds, offsetof(run_figures, writer_us));
    for (int k = 0; k < NCONF; k++) {
        conf *c = &cs[k];
        json_t *runs = json_array();
        run_figures med = {
            .rate = median(c, o->rounds, offsetof(run_figures, rate)),
            .p50_us = median(c, o->rounds, offsetof(run_figures, p50_us)),
            .p99_us = median(c, o->rounds, offsetof(run_figures, p99_us)),
            .triggers_per_1k = median(c, o->rounds, offsetof(run_figures, triggers_per_1k)),
            .writer_us = median(c, o->rounds, offsetof(run_figures, writer_us)),
        };
        for (int i = 0; i < o->rounds; i++)
            json_array_append_new(runs, c->runs[i].ran ? figures_json(&c->runs[i]) : json_null());
        json_object_set_new(confs, c->tag, json_pack("{s:s, s:b, s:i, s:o, s:o}", "label", c->label, "triggers",
                                                      c->triggers, "audiences", c->audiences, "runs", runs, "median",
                                                      figures_json(&med)));
        if (k > 0) {
            char key[16];
            snprintf(key, sizeof key, "%s_a", c->tag);
            json_object_set_new(ratio, key, base > 0 && runs_done(c, o->rounds) ? json_real(med.rate / base)
                                                                                : json_null());
            snprintf(key, sizeof key, "writer_%s_a", c->tag);
            if (writer_base > 0 && !isnan(med.writer_us)) /* pull: the writer's CPU per event, to (a)'s */
                json_object_set_new(ratio, key, json_real(med.writer_us / writer_base));
        }
    }
    json_object_set_new(root, "configurations", confs);
    json_object_set_new(root, "ratio", ratio);
    int to_stdout = strcmp(o->json_path, "-") == 0;
    errno = 0;
    int rc = to_stdout ? json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6))
                       : json_dump_file(root, o->json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (to_stdout)
        putchar('\n');
    json_decref(root);
    return rc ? cli_error("bench", CLI_FAIL, "cannot write %s: %s", o->json_path, strerror(errno ? errno : EIO))
              : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* The comparison                                                      */
/* ------------------------------------------------------------------ */

int bench_audiences_run(const bench_audiences_opts *o)
{
    static volatile sig_atomic_t no_stop;
    volatile sig_atomic_t *stop = o->lg.stop ? o->lg.stop : &no_stop;
    char dirname_c[32];
    conf *cs = calloc(NCONF, sizeof *cs);
    if (!cs)
        return cli_error("bench", CLI_FAIL, "out of memory");
    if (o->rounds < 1 || o->rounds > MEDIAN_MAX_RUNS || o->audiences < 1 || o->audiences > LOADGEN_AUDIENCES) {
        free(cs);
        return cli_error("bench", CLI_USAGE, "--rounds 1..%d and --audiences 1..%d", MEDIAN_MAX_RUNS, LOADGEN_AUDIENCES);
    }
    snprintf(dirname_c, sizeof dirname_c, "audiences-%d", o->audiences);
    cs[0] = (conf){.tag = "a", .dirname = "triggers-off", .extra = {"triggers=off", NULL}, .label = "triggers off"};
    cs[1] = (conf){.tag = "b", .dirname = "triggers-on", .extra = {"triggers=on", NULL}, .triggers = 1,
                   .label = "triggers on, no audience"};
    cs[2] = (conf){.tag = "c", .dirname = dirname_c, .extra = {"triggers=on", NULL}, .triggers = 1,
                   .audiences = o->audiences};
    snprintf(cs[2].label, sizeof cs[2].label, "triggers on, %d audience%s", o->audiences, o->audiences == 1 ? "" : "s");
    FILE *out = o->json_path && strcmp(o->json_path, "-") == 0 ? stderr : stdout;
    print_header(out, o);
    int rc = CLI_OK;
    for (int round = 1; round <= o->rounds && rc == CLI_OK && !*stop; round++)
        for (int i = 0; i < NCONF && rc == CLI_OK && !*stop; i++)
            rc = run_once(o, &cs[(round - 1 + i) % NCONF], round, stop, out);
    if (*stop)
        fprintf(out, "interrupted: the medians cover the runs that completed\n");
    print_summary(out, o, cs);
    if (o->json_path) {
        int jrc = write_json(o, cs);
        if (rc == CLI_OK)
            rc = jrc;
    }
    for (int k = 0; k < NCONF; k++)
        bench_spawn_stop(&cs[k].sp);
    free(cs);
    return rc;
}
