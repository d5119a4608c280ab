/* cmd_train.c -- `leadscore train`: reads event files (the same readers
 * and --map/--types as `import`), fits the readiness model and the
 * customer-base models (train.c), prints the hold-out report and writes a
 * model file that `serve --model` and `reload` accept. */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eventfile.h"
#include "leadscore/error.h"
#include "model.h"
#include "timefmt.h"
#include "train.h"

#define MS_PER_DAY 86400000LL

typedef struct {
    const char *out, *base, *name, *version;
    int64_t cutoff_ms;
    int has_cutoff, horizon_days, json;
    double lambda;
    int clv_only;
    eventfile_options files;
} train_cli;

static void train_help(void)
{
    printf("usage: leadscore train --out FILE [--map COLUMNS] [--types VALUES] [--cutoff TIME] [--horizon DAYS]\n"
           "                       [--json] [options] FILE...\n\n"
           "Fits a model from event files (CSV or JSON Lines, plain or .gz, read as `import` reads them):\n"
           "features as of the cutoff, label = a purchase within the horizon after it.  The readiness\n"
           "model is trained at cutoff - horizon and evaluated, against a plain recency baseline, at the\n"
           "cutoff (a hold-out by time); BG/NBD and Gamma-Gamma are fitted on the purchase history.\n\n"
           "  --out FILE        the model file to write (required)\n"
           "  --cutoff TIME     evaluation cutoff (default: the horizon before the last event)\n"
           "  --horizon DAYS    label horizon (default: the base model's, 30)\n"
           "  --lambda L        L2 penalty on the standardised coefficients (default 1)\n"
           "  --base FILE       model file whose journey, segments, tiers and half-lives are kept\n"
           "                    (default: the built-in models/default.json)\n"
           "  --name N, --version V  of the new model (default: trained, and the time of training)\n"
           "  --clv-only        fit only BG/NBD and Gamma-Gamma (purchase-only data such as CDNOW)\n"
           "  --json            print the report as JSON\n"
           "  --map, --types, --format csv|jsonl, --ts-format seconds|millis|iso, --delimiter C,\n"
           "  --whitespace, --no-header, --allow-old   as for `leadscore import`\n");
}

static int parse_args(int argc, char **argv, train_cli *o)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},      {"map", required_argument, NULL, 'm'},
        {"types", required_argument, NULL, 't'},    {"cutoff", required_argument, NULL, 'c'},
        {"horizon", required_argument, NULL, 'H'},  {"lambda", required_argument, NULL, 'l'},
        {"base", required_argument, NULL, 'b'},     {"name", required_argument, NULL, 'n'},
        {"version", required_argument, NULL, 'v'},  {"clv-only", no_argument, NULL, 'C'},
        {"json", no_argument, NULL, 'j'},           {"format", required_argument, NULL, 'f'},
        {"ts-format", required_argument, NULL, 'T'}, {"delimiter", required_argument, NULL, 'd'},
        {"whitespace", no_argument, NULL, 'w'},     {"no-header", no_argument, NULL, 'N'},
        {"allow-old", no_argument, NULL, 'a'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    char err[512];
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'm':
            if (eventfile_parse_map(optarg, &o->files.map, err, sizeof err) != LS_OK)
                return -cli_error("train", CLI_USAGE, "--map: %s", err);
            break;
        case 't':
            if (eventfile_parse_types(optarg, &o->files.types, err, sizeof err) != LS_OK)
                return -cli_error("train", CLI_USAGE, "--types: %s", err);
            break;
        case 'c':
            if (cli_parse_time(optarg, &o->cutoff_ms) != 0)
                return -cli_error("train", CLI_USAGE, "--cutoff: \"%s\" is not a time", optarg);
            o->has_cutoff = 1;
            break;
        case 'H':
            o->horizon_days = atoi(optarg);
            if (o->horizon_days < 1 || o->horizon_days > 3650)
                return -cli_error("train", CLI_USAGE, "--horizon takes 1 to 3650 days");
            break;
        case 'l':
            o->lambda = strtod(optarg, NULL);
            if (!(o->lambda >= 0))
                return -cli_error("train", CLI_USAGE, "--lambda must be >= 0");
            break;
        case 'b': o->base = optarg; break;
        case 'n': o->name = optarg; break;
        case 'v': o->version = optarg; break;
        case 'C': o->clv_only = 1; break;
        case 'j': o->json = 1; break;
        case 'f':
            if (strcmp(optarg, "csv") && strcmp(optarg, "jsonl"))
                return -cli_error("train", CLI_USAGE, "--format is csv or jsonl");
            o->files.format = strcmp(optarg, "csv") == 0 ? EVENTFILE_CSV : EVENTFILE_JSONL;
            break;
        case 'T':
            if (eventfile_parse_ts_format(optarg, &o->files.ts_format) != LS_OK)
                return -cli_error("train", CLI_USAGE, "--ts-format is seconds, millis or iso");
            break;
        case 'd': o->files.delimiter = optarg[0] == '\\' && optarg[1] == 't' ? '\t' : optarg[0]; break;
        case 'w': o->files.whitespace = 1; break;
        case 'N': o->files.no_header = 1; break;
        case 'a': o->files.min_ts_ms = 0; break;
        case 'h': train_help(); return -100;
        default: return -CLI_USAGE;
        }
    }
    if (!o->out)
        return -cli_error("train", CLI_USAGE, "give --out FILE");
    if (optind >= argc)
        return -cli_error("train", CLI_USAGE, "give at least one event FILE");
    return optind;
}

/* Calls fn for every event of every file; counts bad rows. */
typedef int (*event_fn)(void *arg, const ls_event *ev);

static int each_event(const train_cli *o, char **files, int n, event_fn fn, void *arg, uint64_t *bad)
{
    char err[600];
    int tty = isatty(2);
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        eventfile *f;
        ls_event ev;
        int rc;
        if (eventfile_open(&f, files[i], &o->files, err, sizeof err) != LS_OK)
            return cli_error("train", CLI_FAIL, "%s", err);
        while ((rc = eventfile_next(f, &ev)) != 0) {
            if (rc == EVENTFILE_BAD_ROW) {
                if ((*bad)++ < 10)
                    fprintf(stderr, "leadscore train: %s\n", eventfile_error(f));
                continue;
            }
            if (rc < 0) {
                cli_error("train", CLI_FAIL, "%s", eventfile_error(f));
                eventfile_close(&f);
                return CLI_FAIL;
            }
            if (fn(arg, &ev) != LS_OK) {
                eventfile_close(&f);
                return cli_error("train", CLI_FAIL, "out of memory");
            }
            if (tty && ++total % 500000 == 0)
                fprintf(stderr, "\rtrain: %" PRIu64 " events read", total);
        }
        eventfile_close(&f);
    }
    if (tty && total >= 500000)
        fputc('\n', stderr);
    return CLI_OK;
}

static int note_last(void *arg, const ls_event *ev)
{
    int64_t *last = arg;
    if (ev->ts_ms > *last)
        *last = ev->ts_ms;
    return LS_OK;
}

static int feed(void *arg, const ls_event *ev)
{
    return train_add(arg, ev);
}

static void print_metrics(const char *label, const train_metrics *m)
{
    printf("  %-22s AUC %.4f  log-loss %.4f  Brier %.4f  lift@10%% %.2f  (%zu rows, %zu buyers, %.2f%%)\n", label,
           m->auc, m->logloss, m->brier, m->lift_top10, m->rows, m->positives, 100.0 * m->base_rate);
}

static void print_report(const train_report *r, const train_options *opt)
{
    char c1[40], c2[40];
    timefmt_format_iso(r->train_cutoff_ms, c1, sizeof c1);
    timefmt_format_iso(r->eval_cutoff_ms, c2, sizeof c2);
    printf("data: %" PRIu64 " events, %" PRIu64 " customers; train cutoff %s, hold-out cutoff %s, horizon %d days\n",
           r->events, r->customers, c1, c2, opt->horizon_days);
    if (r->nterms > 0) {
        printf("readiness (hold-out: features at %s, purchases in the %d days after):\n", c2, opt->horizon_days);
        print_metrics("model", &r->model);
        print_metrics("recency baseline", &r->baseline);
        print_metrics("model on training data", &r->train);
        printf("  calibration by decile of predicted score (hold-out):\n    decile  rows    predicted  observed\n");
        for (int i = 0; i < TRAIN_DECILES; i++)
            printf("    %6d  %6zu  %9.4f  %8.4f\n", i + 1, r->model.calib_count[i], r->model.calib_predicted[i],
                   r->model.calib_observed[i]);
        printf("  terms (%d; %d dropped by the sign constraints):\n", r->nterms, r->dropped);
        for (int i = 0; i < r->nterms; i++)
            printf("    %-24s %-6s coef %+.4f\n", feature_name(r->term_feature[i]), r->term_log1p[i] ? "log1p" : "none",
                   r->term_coef[i]);
    }
    printf("BG/NBD (%zu customers, time unit %g days)%s: r %.4f  alpha %.4f  a %.4f  b %.4f  log-likelihood %.2f\n",
           r->bgnbd_customers, opt->time_unit_days, r->bgnbd_ok ? "" : " NOT CONVERGED, base kept", r->bgnbd.r,
           r->bgnbd.alpha, r->bgnbd.a, r->bgnbd.b, r->bgnbd_loglik);
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

static int train_and_write(train_cli *o, char **files, int nfiles, json_t *base_json, const model *base)
{
    train_options opt = {.horizon_days = o->horizon_days ? o->horizon_days : (int)model_horizon_days(base),
                         .lambda = o->lambda, .decay = *model_decay(base),
                         .time_unit_days = model_clv_params(base)->time_unit_days,
                         .bgnbd_start = model_clv_params(base)->bgnbd, .gg_start = model_clv_params(base)->gamma_gamma,
                         .clv_only = o->clv_only};
    uint64_t bad = 0;
    char err[600], when[40];
    int rc;
    if (!o->has_cutoff) {
        int64_t last = 0;
        if ((rc = each_event(o, files, nfiles, note_last, &last, &bad)) != CLI_OK)
            return rc;
        if (last == 0)
            return cli_error("train", CLI_FAIL, "no valid event in the files");
        o->cutoff_ms = last - (int64_t)opt.horizon_days * MS_PER_DAY;
        bad = 0;
    }
    opt.cutoff_ms = o->cutoff_ms;
    trainer *t;
    if (train_new(&t, &opt) != LS_OK)
        return cli_error("train", CLI_FAIL, "out of memory");
    rc = each_event(o, files, nfiles, feed, t, &bad);
    train_report rep;
    if (rc == CLI_OK && train_fit(t, &rep, err, sizeof err) != LS_OK)
        rc = cli_error("train", CLI_FAIL, "%s", err);
    train_free(&t);
    if (rc != CLI_OK)
        return rc;
    timefmt_format_iso(timefmt_now_ms() / 1000 * 1000, when, sizeof when);
    json_t *m = train_model_json(&rep, &opt, base_json, o->name ? o->name : "trained", o->version ? o->version : when);
    if (!m || json_dump_file(m, o->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        json_decref(m);
        return cli_error("train", CLI_FAIL, "cannot write %s", o->out);
    }
    json_t *metrics = json_object_get(m, "metrics");
    if (o->json) {
        json_dumpf(metrics, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
    } else {
        print_report(&rep, &opt);
    }
    json_decref(m);
    model *check;
    if (model_load_file(o->out, &check, err, sizeof err) != LS_OK) /* what serve will do with it */
        return cli_error("train", CLI_FAIL, "the written model does not load: %s", err);
    model_unref(&check);
    if (bad)
        fprintf(stderr, "leadscore train: %" PRIu64 " bad rows skipped\n", bad);
    fprintf(stderr, "leadscore train: wrote %s\n", o->out);
    return CLI_OK;
}

int cmd_train(int argc, char **argv)
{
    train_cli o;
    memset(&o, 0, sizeof o);
    o.lambda = 1.0;
    eventfile_options_init(&o.files);
    int first = parse_args(argc, argv, &o);
    if (first < 0)
        return first == -100 ? CLI_OK : -first;
    json_t *base_json = NULL;
    model *base = NULL;
    int rc = load_base(&o, &base_json, &base);
    if (rc == CLI_OK)
        rc = train_and_write(&o, argv + first, argc - first, base_json, base);
    json_decref(base_json);
    model_unref(&base);
    return rc;
}
