/* cmd_train.c -- `leadscore train`: fits the readiness model and the
 * customer-base models (train.c) from the event histories of a store,
 * prints the hold-out report and writes a model file that `serve --model`
 * and `reload` accept.
 *
 * Two sources, one definition of the features:
 *   --data DIR   a store (opened read-only, read in one snapshot; it may
 *                be served at the same time);
 *   FILE...      event files (the same readers and --map/--types as
 *                `import`), loaded first into a temporary store exactly as
 *                `import --data` loads them (store_wtxn_add_event, in
 *                batches sorted by customer), which is removed at the end.
 * Either way train_from_store replays each customer's history, so the
 * model is fitted on the features the service scores. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cli.h"
#include "cliopts.h"
#include "eventbatch.h"
#include "eventfile.h"
#include "leadscore/error.h"
#include "model.h"
#include "store.h"
#include "timefmt.h"
#include "train.h"

#define MS_PER_DAY 86400000LL
#define LOAD_BATCH 50000
#define MAP_MAX_BYTES (256ULL << 30)
#define TEMP_HISTORY_DAYS 36500 /* the temporary store keeps every event */
#define SHOWN_BAD_ROWS 10

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

typedef struct {
    const char *out, *base, *name, *version, *data_dir;
    int64_t cutoff_ms;
    int has_cutoff, horizon_days, json, quiet;
    double lambda;
    int lambda_given, clv_only, force, allow_old;
    eventfile_options files;
} train_cli;

static int parse_lambda(const char *arg, void *dest, char *why, size_t cap)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= 0) || !isfinite(v)) {
        snprintf(why, cap, "must be a number >= 0, not \"%s\"", arg);
        return -1;
    }
    *(double *)dest = v;
    return 0;
}

static const char *const format_words[] = {"csv", "jsonl", NULL};
static const int format_values[] = {EVENTFILE_CSV, EVENTFILE_JSONL};

#define F(field) CLIOPT_FIELD(train_cli, field)
static const cliopt train_rows[] = {
    {.name = "out", .kind = CLIOPT_STRING, F(out), .arg = "FILE", .help = "the model file to write (required)"},
    {.name = "data", .kind = CLIOPT_STRING, F(data_dir), .arg = "DIR", .help = "train from this store instead of files"},
    {.name = "cutoff", .kind = CLIOPT_TIME, F(cutoff_ms), CLIOPT_GIVEN(train_cli, has_cutoff), .arg = "TIME",
     .help = "evaluation cutoff (default: the horizon before the last event)"},
    {.name = "horizon", .kind = CLIOPT_INT, F(horizon_days), .lo = 1, .hi = 3650, .want = "1 to 3650 days",
     .arg = "DAYS", .help = "label horizon (default: the base model's, 30)"},
    {.name = "lambda", .kind = CLIOPT_CUSTOM, F(lambda), CLIOPT_GIVEN(train_cli, lambda_given), .parse = parse_lambda,
     .arg = "L",
     .help = "fixed L2 penalty on the standardised coefficients (default: chosen by\n"
             "validation from 0.1, 1, ..., 10000)"},
    {.name = "force", .kind = CLIOPT_FLAG, F(force), .help = "write the model even when it loses to the RFM baseline"},
    {.name = "base", .kind = CLIOPT_STRING, F(base), .arg = "FILE",
     .help = "model file whose journey, segments, tiers and half-lives are kept\n"
             "(default: the built-in models/default.json); with --data its half-lives\n"
             "must be the store's"},
    {.name = "name", .kind = CLIOPT_STRING, F(name), .arg = "N", .help = "of the new model (default: trained)"},
    {.name = "version", .kind = CLIOPT_STRING, F(version), .arg = "V",
     .help = "of the new model (default: the time of training)"},
    {.name = "clv-only", .kind = CLIOPT_FLAG, F(clv_only),
     .help = "fit only BG/NBD and Gamma-Gamma (purchase-only data such as CDNOW)"},
    {.name = "json", .kind = CLIOPT_FLAG, F(json), .help = "print the report as JSON"},
    {.name = "quiet", .short_name = 'q', .kind = CLIOPT_FLAG, F(quiet), .help = "no progress on the terminal"},
    {.kind = CLIOPT_SECTION, .help = "Event FILEs, read as `leadscore import` reads them (see its --help):"},
    {.name = "map", .kind = CLIOPT_CUSTOM, F(files.map), .parse = cli_opt_map, .arg = "COLUMNS",
     .help = "source column of each event field"},
    {.name = "types", .kind = CLIOPT_CUSTOM, F(files.types), .parse = cli_opt_types, .arg = "VALUES",
     .help = "translate source type values"},
    {.name = "format", .kind = CLIOPT_ENUM, F(files.format), .choices = format_words, .values = format_values,
     .arg = "csv|jsonl", .help = "default: by the file name"},
    {.name = "ts-format", .kind = CLIOPT_CUSTOM, F(files.ts_format), .parse = cli_opt_ts_format,
     .arg = "F", .help = "auto (default), seconds, millis or iso"},
    {.name = "delimiter", .kind = CLIOPT_CUSTOM, F(files.delimiter), .parse = cli_opt_delimiter, .arg = "C",
     .help = "CSV field separator (default ','; 'tab' for tabs)"},
    {.name = "whitespace", .kind = CLIOPT_FLAG, F(files.whitespace), .help = "fields separated by runs of blanks"},
    {.name = "no-header", .kind = CLIOPT_FLAG, F(files.no_header), .help = "no header row: columns are named 1, 2, ..."},
    {.name = "allow-old", .kind = CLIOPT_FLAG, F(allow_old), .help = "accept event times before 2000-01-01"},
    CLIOPT_END};
#undef F

static const cliopts_spec train_spec = {
    .cmd = "train",
    .usage = "leadscore train --out FILE [--data DIR | FILE...] [--cutoff TIME] [--horizon DAYS] [--json]\n"
             "                       [--map COLUMNS] [--types VALUES] [options]",
    .about = "Fits a model from the event histories of a store (--data, read-only, one snapshot: it may be\n"
             "served at the same time) or of event files (CSV or JSON Lines, plain or .gz, read as `import`\n"
             "reads them into a temporary store).  Features are those the service scores: each customer's\n"
             "history replayed as of the cutoff; label = an order within the horizon after it (no later\n"
             "event is read).  Readiness is a calibrated probability: a logistic model fitted on rows pooled\n"
             "from four cutoffs (spaced by half the horizon, ending two horizons before the cutoff), its L2\n"
             "penalty chosen and its Platt calibration fitted one horizon before the cutoff, and evaluated at\n"
             "the cutoff (a hold-out by time) next to recency and RFM baselines.  A model that loses to the\n"
             "RFM baseline there (worse by more than two standard errors of the paired difference on\n"
             "log-loss or on AUC, and not better by as much on the other) is not written without --force.\n"
             "The repeat-purchase model (BG/NBD, or the\n"
             "NBD when BG/NBD degenerates) and Gamma-Gamma are fitted on the summary as of the cutoff\n"
             "(transactions = purchase days).",
    .opts = train_rows,
};

/* Parses the options into o (its defaults set); returns the index of the
 * first FILE, or a negative cliopts_parse status. */
static int parse_args(int argc, char **argv, train_cli *o)
{
    int first = cliopts_parse(&train_spec, argc, argv, o);
    if (first < 0)
        return first;
    if (o->allow_old)
        o->files.min_ts_ms = 0;
    if (!o->out)
        return cli_error("train", CLI_USAGE, "give --out FILE"), CLIOPTS_USAGE;
    if (o->data_dir && first < argc)
        return cli_error("train", CLI_USAGE, "--data and event FILEs exclude each other: a store or files"),
               CLIOPTS_USAGE;
    if (!o->data_dir && first >= argc)
        return cli_error("train", CLI_USAGE, "give --data DIR or at least one event FILE"), CLIOPTS_USAGE;
    /* what the model file may hold (model.c), checked before the training */
    if ((o->name && (!*o->name || strlen(o->name) >= MODEL_TEXT_MAX)) ||
        (o->version && (!*o->version || strlen(o->version) >= MODEL_TEXT_MAX)))
        return cli_error("train", CLI_USAGE, "--name and --version take 1 to %d bytes", MODEL_TEXT_MAX - 1),
               CLIOPTS_USAGE;
    return first;
}

/* ------------------------------------------------------------------ */
/* Progress on a terminal                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    int on;                   /* stderr is a terminal and not --quiet */
    int drawn;
    int fitting;              /* past the scan: stage lines, no counts */
    int64_t start_ns, drawn_ns;
    uint64_t total;           /* customers in the store, for the scan */
} progress;

static void progress_clear(progress *p)
{
    if (p->drawn)
        fputs("\r\033[K", stderr);
    p->drawn = 0;
}

/* Draws one status line, at most five times a second. */
static void progress_draw(progress *p, const char *what, uint64_t done, uint64_t total)
{
    int64_t now = timefmt_mono_ns();
    if (!p->on || now - p->drawn_ns < 200000000 || now - p->start_ns < 300000000)
        return;
    p->drawn_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    if (total)
        fprintf(stderr, "\r\033[Ktrain: %s %" PRIu64 " of %" PRIu64 " (%.0f%%), %.0f s", what, done, total,
                done >= total ? 100.0 : 100.0 * (double)done / (double)total, secs);
    else
        fprintf(stderr, "\r\033[Ktrain: %s %" PRIu64 ", %.0f s", what, done, secs);
    fflush(stderr);
    p->drawn = 1;
}

/* train_from_store's stage hook: one line per long step after the scan. */
static void scan_stage(void *arg, const char *what)
{
    progress *p = arg;
    p->fitting = 1;
    if (!p->on)
        return;
    fprintf(stderr, "\r\033[Ktrain: %s, %.0f s", what, (double)(timefmt_mono_ns() - p->start_ns) / 1e9);
    fflush(stderr);
    p->drawn = 1;
}

/* train_from_store's progress hook, called during the scan and between
 * the fits: draws, and stops on Ctrl-C. */
static int scan_progress(void *arg, uint64_t done)
{
    progress *p = arg;
    if (!p->fitting)
        progress_draw(p, "customers replayed:", done, p->total);
    return interrupted != 0;
}

/* ------------------------------------------------------------------ */
/* Files into a temporary store, as `import --data` loads them          */
/* ------------------------------------------------------------------ */

/* Writes the batch into the temporary store and empties it. */
static int write_batch(store *st, store_held *held, eventbatch *b)
{
    int rc = eventbatch_store(b, st, held, MAP_MAX_BYTES, NULL, NULL, NULL);
    eventbatch_reset(b);
    return rc == LS_OK ? CLI_OK : cli_error("train", CLI_FAIL, "cannot write the temporary store: %s", ls_strerror(rc));
}

/* Reads one file into batches written to st; counts rows and bad rows. */
static int load_file(const train_cli *o, const char *path, store *st, store_held *held, eventbatch *b, progress *p,
                     uint64_t *rows, uint64_t *bad)
{
    char err[600];
    eventfile *f;
    ls_event ev;
    int rc, status = CLI_OK;
    if (eventfile_open(&f, path, &o->files, err, sizeof err) != LS_OK) {
        progress_clear(p);
        return cli_error("train", CLI_FAIL, "%s", err);
    }
    while (status == CLI_OK && (rc = eventfile_next(f, &ev)) != 0) {
        if (interrupted) {
            status = CLI_FAIL;
        } else if (rc == EVENTFILE_BAD_ROW) {
            if ((*bad)++ < SHOWN_BAD_ROWS) {
                progress_clear(p);
                fprintf(stderr, "leadscore train: %s\n", eventfile_error(f));
            }
        } else if (rc < 0) {
            progress_clear(p);
            status = cli_error("train", CLI_FAIL, "%s", eventfile_error(f));
        } else if (eventbatch_add(b, &ev, NULL) != LS_OK) {
            status = cli_error("train", CLI_FAIL, "out of memory");
        } else {
            if (b->n == LOAD_BATCH)
                status = write_batch(st, held, b);
            if ((++*rows & 4095) == 0)
                progress_draw(p, "events loaded:", *rows, 0);
        }
    }
    eventfile_close(&f);
    return status;
}

static int load_files(const train_cli *o, char **files, int n, store *st, progress *p, uint64_t *bad)
{
    store_held held;
    eventbatch b;
    uint64_t rows = 0;
    if (eventbatch_init(&b, LOAD_BATCH) != LS_OK)
        return cli_error("train", CLI_FAIL, "out of memory");
    int rc = CLI_OK;
    store_held_init(&held);
    for (int i = 0; i < n && rc == CLI_OK; i++)
        rc = load_file(o, files[i], st, &held, &b, p, &rows, bad);
    if (rc == CLI_OK && b.n)
        rc = write_batch(st, &held, &b);
    if (rc == CLI_OK && interrupted)
        rc = CLI_FAIL;
    store_held_free(&held);
    eventbatch_free(&b);
    return rc;
}

/* The temporary store's directory: its files, then itself. */
static void remove_temp_dir(const char *dir)
{
    char path[1200];
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int open_temp_store(char *dir, size_t cap, const model *base, store **st)
{
    char err[600];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/leadscore-train-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        return cli_error("train", CLI_FAIL, "cannot make a temporary directory for the store: %s", strerror(errno));
    }
    store_options so = {.no_sync = 1, .history_days = TEMP_HISTORY_DAYS};
    if (store_open(st, dir, &so, model_decay(base), err, sizeof err) != LS_OK)
        return cli_error("train", CLI_FAIL, "%s", err);
    return CLI_OK;
}

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

static int open_data_store(const train_cli *o, const model *base, store **st)
{
    char err[600], path[1100];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", o->data_dir);
    if (stat(path, &sb) != 0)
        return cli_error("train", CLI_FAIL, "no leadscore store in %s", o->data_dir);
    store_options so = {.read_only = 1};
    if (store_open(st, o->data_dir, &so, NULL, err, sizeof err) != LS_OK)
        return cli_error("train", CLI_FAIL, "%s", err);
    const feature_decay *have = store_decay(*st), *want = model_decay(base);
    if (!same_decay(have, want))
        return cli_error("train", CLI_FAIL, "the store in %s keeps half-lives of %.4g and %.4g days, the base model "
                         "%.4g and %.4g: give the store's model with --base", o->data_dir, have->short_ms / 864e5,
                         have->long_ms / 864e5, want->short_ms / 864e5, want->long_ms / 864e5);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

static void print_metrics(const char *label, const train_metrics *m)
{
    printf("  %-24s AUC %.4f  log-loss %.4f  Brier %.4f  lift@10%% %.2f  mean p %.4f vs observed %.4f  (%zu rows)\n",
           label, m->auc, m->logloss, m->brier, m->lift_top10, m->mean_predicted, m->base_rate, m->rows);
}

static void print_readiness(const train_report *r, const train_options *opt)
{
    char why[300];
    train_gate_verdict gate = train_gate(&r->model, &r->rfm, &r->vs_rfm);
    char c[40];
    timefmt_format_iso(r->eval_cutoff_ms, c, sizeof c);
    printf("readiness = calibrated P(order within %d days); hold-out: features at %s:\n", opt->horizon_days, c);
    print_metrics("model", &r->model);
    print_metrics("RFM baseline", &r->rfm);
    print_metrics("recency baseline", &r->baseline);
    if (r->compared)
        print_metrics("compared model", &r->compare);
    print_metrics("model, calibration rows", &r->calib);
    print_metrics("model, fit rows", &r->train);
    printf("  against the RFM baseline: %s (%s; loses = clearly worse, by %g standard errors, on one and not "
           "clearly better on the other)\n", gate == TRAIN_GATE_HOLDS ? "holds" : "LOSES",
           train_gate_describe(&r->model, &r->rfm, &r->vs_rfm, why, sizeof why), TRAIN_GATE_SES);
    printf("  reliability on the hold-out (10 bins by predicted probability):\n"
           "    bin   rows    predicted  observed\n");
    for (int i = 0; i < TRAIN_DECILES; i++)
        printf("    %3d  %6zu  %9.4f  %8.4f\n", i + 1, r->model.calib_count[i], r->model.calib_predicted[i],
               r->model.calib_observed[i]);
    if (r->short_history)
        printf("  SHORT HISTORY: under three horizons of data; fitted on the calibration rows, lambda %g, NOT "
               "calibrated\n", r->lambda);
    else
        printf("  lambda %g (%s); Platt calibration a %.4f b %+.4f\n", r->lambda,
               r->nlambdas ? "chosen by calibrated log-loss on the calibration rows" : "given", r->cal_a, r->cal_b);
    for (int i = 0; i < r->nlambdas; i++)
        printf("    lambda %-8g log-loss %.5f  AUC %.4f\n", r->grid_lambda[i], r->grid_logloss[i], r->grid_auc[i]);
    if (r->orders_by_repeat)
        printf("  orders-only customers: %zu hold-out buyers without a storefront visit are scored by the "
               "repeat-purchase model, P(an order within the horizon), as the model file says "
               "(\"orders_only_customers\"); %zu whose first order came before any visit by the larger of that "
               "and the logistic terms\n", r->orders_only_rows, r->orders_first_rows);
    if (r->orders_only)
        printf("  orders only: under 1%% of the customers fitted on had a storefront visit (a view, search, cart or "
               "checkout), so lifetime purchase days and net spend were candidates too\n");
    printf("  terms (%d; %d held at 0 by the sign constraints):\n", r->nterms, r->held_at_zero);
    for (int i = 0; i < r->nterms; i++)
        printf("    %-26s %-12s coef %+.4f\n", model_feature_name(r->term_feature[i]), train_term_transform(r, i),
               r->term_coef[i]);
    if (r->recs_measured && r->recs_customers == 0) {
        printf("recommendations: nothing to measure (no hold-out customer's next order maps to a catalogue "
               "segment)\n");
    } else if (r->recs_measured) {
        double n = r->recs_customers ? (double)r->recs_customers : 1;
        printf("recommendations (hold-out, %zu customers whose next order maps to a segment): hit rate@3 %.4f vs "
               "%.4f for the most bought [", r->recs_customers, (double)r->recs_hits / n,
               (double)r->recs_popular_hits / n);
        for (int i = 0; i < r->recs_npopular; i++)
            printf("%s%s", i ? ", " : "", r->recs_popular[i]);
        printf("]\n");
    }
}

static void print_report(const train_report *r, const train_options *opt)
{
    char c1[40], c2[40], c3[40];
    timefmt_format_iso(r->train_cutoff_ms, c1, sizeof c1);
    timefmt_format_iso(r->calib_cutoff_ms, c2, sizeof c2);
    timefmt_format_iso(r->eval_cutoff_ms, c3, sizeof c3);
    printf("data: %" PRIu64 " events, %" PRIu64 " customers; fit cutoffs up to %s, calibration cutoff %s, hold-out "
           "cutoff %s, horizon %d days\n", r->events, r->customers, c1, c2, c3, opt->horizon_days);
    if (r->nterms > 0)
        print_readiness(r, opt);
    const train_repeat_fit *f = &r->repeat;
    if (!f->fitted)
        printf("REPEAT-PURCHASE MODEL NOT FITTED (%zu buyers): %s\n", f->customers, f->reason);
    else if (f->model.kind == CLV_MODEL_NBD)
        printf("NBD (%zu buyers, time unit %g days): r %.4f  alpha %.4f  log-likelihood %.2f\n  (%s)\n", f->customers,
               opt->time_unit_days, f->model.nbd.r, f->model.nbd.alpha, f->loglik, f->reason);
    else
        printf("BG/NBD (%zu buyers, time unit %g days): r %.4f  alpha %.4f  a %.4f  b %.4f  log-likelihood %.2f\n",
               f->customers, opt->time_unit_days, f->model.bgnbd.r, f->model.bgnbd.alpha, f->model.bgnbd.a,
               f->model.bgnbd.b, f->loglik);
    printf("Gamma-Gamma (%zu repeat buyers)%s: p %.4f  q %.4f  gamma %.4f  log-likelihood %.2f\n", r->gg_customers,
           r->gg_ok ? "" : " NOT CONVERGED, base kept", r->gg.p, r->gg.q, r->gg.gamma, r->gg_loglik);
    printf("fitted in %.2f s\n", r->seconds);
}

/* The base model: its JSON (kept for journey, segments, tiers) and its
 * parsed form (half-lives, horizon, clv start values). */
static int load_base(const train_cli *o, json_t **root, model **m)
{
    char err[600];
    json_error_t jerr;
    size_t len;
    if (o->base) {
        if (model_load_file(o->base, m, err, sizeof err) != LS_OK)
            return cli_error("train", CLI_FAIL, "%s", err);
        *root = json_load_file(o->base, 0, &jerr);
    } else {
        const char *text = model_builtin_text(&len);
        if (model_load_builtin(m, err, sizeof err) != LS_OK)
            return cli_error("train", CLI_FAIL, "%s", err);
        *root = json_loadb(text, len, 0, &jerr);
    }
    return *root ? CLI_OK : cli_error("train", CLI_FAIL, "cannot read the base model: %s", jerr.text);
}

/* Writes the model file and the report; checks that serve will load it. */
static int write_model(const train_cli *o, const train_report *rep, const train_options *opt, json_t *base_json)
{
    char err[600], when[40], why[300];
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000, when, sizeof when);
    train_gate_verdict gate = rep->nterms > 0 ? train_gate(&rep->model, &rep->rfm, &rep->vs_rfm) : TRAIN_GATE_HOLDS;
    if (gate != TRAIN_GATE_HOLDS && !o->force) {
        if (o->json) {
            json_t *mj = train_model_json(rep, opt, base_json, "rejected", when);
            json_dumpf(json_object_get(mj, "metrics"), stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            putchar('\n');
            json_decref(mj);
        } else {
            print_report(rep, opt);
        }
        fflush(stdout);
        return cli_error("train", CLI_FAIL, "the model loses to the RFM baseline on the hold-out by %s (%s): %s not "
                         "written (--force writes it anyway)", gate == TRAIN_GATE_LOGLOSS ? "log-loss" :
                         gate == TRAIN_GATE_AUC ? "AUC" : gate == TRAIN_GATE_BOTH ? "log-loss and AUC" : "its figures",
                         train_gate_describe(&rep->model, &rep->rfm, &rep->vs_rfm, why, sizeof why), o->out);
    }
    json_t *m = train_model_json(rep, opt, base_json, o->name ? o->name : "trained", o->version ? o->version : when);
    /* written whole or not at all, and only once serve would load it: a
     * failed run leaves an existing model file as it was */
    atomicfile out;
    if (!m)
        return cli_error("train", CLI_FAIL, "out of memory");
    if (atomicfile_open(&out, o->out, err, sizeof err) != LS_OK) {
        json_decref(m);
        return cli_error("train", CLI_FAIL, "%s", err);
    }
    if (json_dumpf(m, out.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || fflush(out.f) != 0) {
        int e = errno;
        atomicfile_abort(&out);
        json_decref(m);
        return cli_error("train", CLI_FAIL, "cannot write %s: %s", o->out, strerror(e ? e : EIO));
    }
    model *check;
    if (model_load_file(out.tmp[0] ? out.tmp : o->out, &check, err, sizeof err) != LS_OK) { /* what serve will do */
        atomicfile_abort(&out);
        json_decref(m);
        return cli_error("train", CLI_FAIL, "the model would not load, so %s was not written: %s", o->out, err);
    }
    model_unref(&check);
    /* the signals wait while the file is committed or abandoned: an
     * interrupt is either before (nothing written) or after (written) */
    sigset_t stops, was;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, &was);
    int cancel = interrupted != 0;
    if (cancel) /* Ctrl-C during the last steps: nothing written, as promised */
        atomicfile_abort(&out);
    int committed = !cancel && atomicfile_commit(&out, err, sizeof err) == LS_OK;
    sigprocmask(SIG_SETMASK, &was, NULL);
    if (!committed) {
        json_decref(m);
        return cancel ? CLI_FAIL : cli_error("train", CLI_FAIL, "%s", err);
    }
    if (o->json) {
        json_dumpf(json_object_get(m, "metrics"), stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        print_report(rep, opt);
    }
    json_decref(m);
    return CLI_OK;
}

/* Why a --cutoff after the last event is refused, into err. */
static void cutoff_after_last(int64_t cutoff_ms, int64_t last_ms, int horizon_days, char *err, size_t errlen)
{
    char c[40], l[40], latest[40];
    timefmt_format_iso(cutoff_ms, c, sizeof c);
    timefmt_format_iso(last_ms, l, sizeof l);
    timefmt_format_iso(last_ms - (int64_t)horizon_days * MS_PER_DAY, latest, sizeof latest);
    snprintf(err, errlen, "--cutoff %s is after the last event (%s): its labels would be orders on days that have "
             "not happened; give a cutoff at least one horizon (%d days) before the last event, e.g. %s (the "
             "default)", c, l, horizon_days, latest);
}

/* Trains from one snapshot of st and writes the model. */
static int train_store(train_cli *o, store *st, json_t *base_json, const model *base, progress *p)
{
    const model_clv *clv = model_clv_params(base);
    train_options opt = {.horizon_days = o->horizon_days ? o->horizon_days : (int)model_horizon_days(base),
                         .lambda = o->lambda, .lambda_fixed = o->lambda_given, .decay = *store_decay(st),
                         .time_unit_days = clv->time_unit_days, .repeat_start = clv->repeat,
                         .gg_start = clv->gamma_gamma, .clv_only = o->clv_only, .base = base,
                         .progress = scan_progress, .stage = scan_stage, .progress_arg = p};
    store_reader *r = NULL;
    store_stats ss;
    train_report rep;
    char err[600];
    if (o->clv_only && o->horizon_days && o->horizon_days != (int)lround(model_horizon_days(base)))
        fprintf(stderr,
                "leadscore train: warning: --clv-only keeps the base model's readiness terms, fitted for its "
                "horizon of %d days: with --horizon %d the file's scores are no calibrated P(order within %d "
                "days); train without --clv-only to refit them for it\n",
                (int)lround(model_horizon_days(base)), o->horizon_days, o->horizon_days);
    int rc = store_reader_open(st, &r);
    if (rc == LS_OK)
        rc = store_reader_begin(r);
    if (rc != LS_OK) {
        store_reader_close(&r);
        return cli_error("train", CLI_FAIL, "cannot read the store: %s", ls_strerror(rc));
    }
    int64_t last = 0;
    if ((rc = train_last_event(r, &last)) == LS_OK && last == 0)
        rc = LS_ENOTFOUND;
    if (!o->has_cutoff)
        o->cutoff_ms = last - (int64_t)opt.horizon_days * MS_PER_DAY;
    opt.cutoff_ms = o->cutoff_ms;
    p->total = store_stat(st, &ss) == LS_OK ? ss.customers : 0;
    p->start_ns = timefmt_mono_ns();
    if (rc == LS_OK && o->has_cutoff && o->cutoff_ms <= last &&
        o->cutoff_ms > last - (int64_t)opt.horizon_days * MS_PER_DAY)
        fprintf(stderr,
                "leadscore train: warning: the cutoff is %.1f days before the last event, less than the horizon "
                "(%d days): hold-out customers who buy in the days not yet recorded count as not buying, so the "
                "hold-out figures understate the buy rate\n",
                (double)(last - o->cutoff_ms) / MS_PER_DAY, opt.horizon_days);
    if (rc == LS_OK && o->cutoff_ms > last)
        cutoff_after_last(o->cutoff_ms, last, opt.horizon_days, err, sizeof err);
    else if (rc == LS_OK)
        rc = train_from_store(r, &opt, &rep, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", rc == LS_ENOTFOUND ? "no event in the store" : ls_strerror(rc));
    if (rc == LS_OK && o->cutoff_ms > last)
        rc = LS_EINVAL;
    store_reader_end(r);
    store_reader_close(&r);
    progress_clear(p);
    if (rc != LS_OK)
        return interrupted ? CLI_FAIL : cli_error("train", CLI_FAIL, "%s", err);
    return write_model(o, &rep, &opt, base_json);
}

static int run(train_cli *o, char **files, int nfiles, json_t *base_json, const model *base)
{
    char dir[1024] = "";
    store *st = NULL;
    uint64_t bad = 0;
    progress p = {.on = !o->quiet && isatty(STDERR_FILENO), .start_ns = timefmt_mono_ns()};
    int rc = o->data_dir ? open_data_store(o, base, &st) : open_temp_store(dir, sizeof dir, base, &st);
    if (rc == CLI_OK && !o->data_dir)
        rc = load_files(o, files, nfiles, st, &p, &bad);
    progress_clear(&p);
    if (rc == CLI_OK)
        rc = train_store(o, st, base_json, base, &p);
    store_close(&st);
    if (dir[0])
        remove_temp_dir(dir);
    fflush(stdout); /* the report before the closing lines on stderr */
    if (interrupted && rc != CLI_OK) /* CLI_OK: the model was written before the interrupt */
        return cli_error("train", CLI_FAIL, "interrupted: nothing written");
    if (bad)
        fprintf(stderr, "leadscore train: %" PRIu64 " bad rows skipped\n", bad);
    if (rc == CLI_OK)
        fprintf(stderr, "leadscore train: wrote %s\n", o->out);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    train_cli o;
    memset(&o, 0, sizeof o);
    o.lambda = 1.0;
    eventfile_options_init(&o.files);
    int first = parse_args(argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    json_t *base_json = NULL;
    model *base = NULL;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process */
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int rc = load_base(&o, &base_json, &base);
    if (rc == CLI_OK)
        rc = run(&o, argv + first, argc - first, base_json, base);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    json_decref(base_json);
    model_unref(&base);
    return rc;
}
