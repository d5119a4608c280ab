/* cmd_rescore.c -- `leadscore rescore`: the batch job that scores every
 * customer of a store from one consistent snapshot while the service keeps
 * running, and writes the results as CSV or JSON Lines (rescore.h does
 * the work; this file is options, files, progress and the summary). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cli.h"
#include "cliopts.h"
#include "error_internal.h"
#include "model.h"
#include "rescore.h"
#include "store.h"
#include "timefmt.h"

#define DEFAULT_DATA "./leadscore-data"

typedef struct {
    const char *data, *model_path, *out_path;
    const char *model_used; /* the file loaded, or NULL for the built-in copy */
    int quiet;
    int has_by;
    rescore_options ro;
} rescore_cli;

static int parse_by(const char *arg, void *dest, char *why, size_t cap)
{
    if (rescore_parse_by(arg, dest) == LS_OK)
        return 0;
    snprintf(why, cap, "takes score, clv or expected_purchases, not \"%s\"", arg);
    return -1;
}

/* --where: appended to the filters of the rescore_options at dest. */
static int parse_where(const char *arg, void *dest, char *why, size_t cap)
{
    rescore_options *ro = dest;
    if (ro->nwhere == RESCORE_MAX_WHERE) {
        snprintf(why, cap, "at most %d", RESCORE_MAX_WHERE);
        return -1;
    }
    if (rescore_parse_where(arg, &ro->where[ro->nwhere], why, cap) != LS_OK) {
        size_t named = strncmp(why, "--where: ", 9) == 0 ? 9 : strncmp(why, "--where ", 8) == 0 ? 8 : 0;
        memmove(why, why + named, strlen(why + named) + 1); /* cliopts puts the option's name in front */
        return -1;
    }
    ro->nwhere++;
    return 0;
}

static const char *const format_words[] = {"csv", "jsonl", NULL};
static const int format_values[] = {RESCORE_CSV, RESCORE_JSONL};

#define F(field) CLIOPT_FIELD(rescore_cli, field)
static const cliopt rescore_rows[] = {
    {.name = "data", .kind = CLIOPT_STRING, F(data), .arg = "DIR",
     .help = "the store (default " DEFAULT_DATA "); opened read-only"},
    {.name = "model", .kind = CLIOPT_STRING, F(model_path), .arg = "FILE",
     .help = "model file (default " MODEL_DEFAULT_PATH " if it exists, else the built-in copy);\n"
             "its half-lives must be the store's"},
    {.name = "now", .kind = CLIOPT_TIME, F(ro.now_ms), .arg = "TIME",
     .help = "score as of TIME (Unix seconds or ISO 8601; default: now)"},
    {.name = "format", .kind = CLIOPT_ENUM, F(ro.format), .choices = format_words, .values = format_values, .arg = "F",
     .help = "csv (default: header row; actions and segments joined with '|')\n"
             "or jsonl (one score result object per line, the wire reply's keys)"},
    {.name = "out", .kind = CLIOPT_STRING, F(out_path), .arg = "FILE",
     .help = "write there, whole or not at all (default, or -: standard output): a\n"
             "failed run leaves FILE as it was"},
    {.name = "top", .kind = CLIOPT_INT, F(ro.top), .lo = 1, .hi = LLONG_MAX, .arg = "N",
     .help = "only the N best rows, best first (memory O(N), not O(customers))"},
    {.name = "by", .kind = CLIOPT_CUSTOM, F(ro.by), CLIOPT_GIVEN(rescore_cli, has_by), .parse = parse_by, .arg = "KEY",
     .help = "what --top ranks by: score (default), clv or expected_purchases"},
    {.name = "where", .kind = CLIOPT_CUSTOM, F(ro), .parse = parse_where, .arg = "F=V",
     .help = "keep rows where F is V; repeatable (ANDed); V may list alternatives\n"
             "as V1,V2.  F: tier (hot, warm, cold), customer_type, phase, action\n"
             "(the customer has it), segment (among its segments), known (true)"},
    {.name = "segments-detail", .kind = CLIOPT_FLAG, F(ro.segments_detail),
     .help = "CSV: add a segments_detail column (JSON: segment, weight, reason)"},
    {.name = "threads", .kind = CLIOPT_INT, F(ro.threads), .lo = 1, .hi = RESCORE_MAX_THREADS, .arg = "N",
     .help = "scoring threads, each scanning its own key ranges of the one snapshot\n"
             "(default: one per online CPU, at most 8; 1: no threads); same output"},
    {.name = "quiet", .kind = CLIOPT_FLAG, F(quiet), .help = "no progress line and no summary on stderr"},
    CLIOPT_END};
#undef F

static const cliopts_spec rescore_spec = {
    .cmd = "rescore",
    .usage = "leadscore rescore [--data DIR] [--model FILE] [--now TIME] [--format csv|jsonl] [--out FILE]\n"
             "                         [--top N --by score|clv|expected_purchases] [--where FIELD=VALUE]...",
    .about = "Scores every customer in the store from one consistent snapshot (the service may keep\n"
             "running and writing) and writes one row per customer: the fields of a score result but\n"
             "`explain`, `logit`, `intercept` and `next_actions` (the actions themselves are in `actions`).",
    .epilog = "Without --top, rows come in customer-id order as they are scored.  A summary (customers,\n"
              "the model used and its file, tiers, types, time, customers/s) goes to stderr at the end.\n"
              "JSON Lines rows are written with jansson: doubles to 17 significant digits (they\n"
              "round-trip), invalid UTF-8 in ids as U+FFFD; CSV numbers have 10 significant digits.",
    .opts = rescore_rows,
};

/* Parses the options; CLI_OK, CLI_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, rescore_cli *c)
{
    c->data = DEFAULT_DATA;
    rescore_options_init(&c->ro);
    int first = cliopts_parse(&rescore_spec, argc, argv, c);
    if (first < 0)
        return first == CLIOPTS_HELP ? -1 : CLI_USAGE;
    if (first < argc)
        return cli_error("rescore", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[first]);
    if (c->has_by && !c->ro.top)
        return cli_error("rescore", CLI_USAGE, "--by goes with --top N");
    if (c->ro.segments_detail && c->ro.format != RESCORE_CSV)
        return cli_error("rescore", CLI_USAGE, "--segments-detail is for CSV (JSON Lines always has the details)");
    return CLI_OK;
}

/* The model `serve` would use with the same --model: the file given, else
 * the default path when a file is there, else the built-in copy of it. */
static int load_model(rescore_cli *c, model **m)
{
    char err[600];
    int rc = model_load_default(c->model_path, m, &c->model_used, err, sizeof err);
    return rc == LS_OK ? CLI_OK : cli_error("rescore", CLI_FAIL, "%s", err);
}

static int open_store(const char *dir, store **s)
{
    char err[600], path[1100];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || stat(path, &st) != 0)
        return cli_error("rescore", CLI_FAIL, "no leadscore store in %s (give --data DIR)", dir);
    store_options so = {.read_only = 1};
    if (store_open(s, dir, &so, NULL, err, sizeof err) != LS_OK)
        return cli_error("rescore", CLI_FAIL, "%s", err);
    return CLI_OK;
}

/* ---- progress on a terminal ---- */

typedef struct {
    int64_t start_ns, drawn_ns;
    uint64_t total; /* customers when we started (the store keeps growing) */
    int drawn;
} progress;

static void draw(void *arg, uint64_t scanned)
{
    progress *p = arg;
    int64_t now = timefmt_mono_ns();
    if (now - p->drawn_ns < 200000000 || now - p->start_ns < 300000000)
        return;
    p->drawn_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    if (p->total)
        fprintf(stderr, "\r\033[Krescore: %llu of ~%llu customers scored (%.0f%%), %.0f customers/s",
                (unsigned long long)scanned, (unsigned long long)p->total,
                scanned >= p->total ? 100.0 : 100.0 * (double)scanned / (double)p->total, (double)scanned / secs);
    else
        fprintf(stderr, "\r\033[Krescore: %llu customers scored, %.0f customers/s", (unsigned long long)scanned,
                (double)scanned / secs);
    fflush(stderr);
    p->drawn = 1;
}

static void summary(const rescore_cli *c, const model *m, const rescore_summary *s)
{
    char when[TIMEFMT_ISO_BUFSZ];
    timefmt_format_iso(c->ro.now_ms, when, sizeof when);
    fprintf(stderr, "rescore: %llu customers scored in %.2f s (%.0f customers/s, %d scoring thread%s)",
            (unsigned long long)s->customers, s->seconds, s->seconds > 0 ? (double)s->customers / s->seconds : 0.0,
            s->threads, s->threads == 1 ? "" : "s");
    /* as of the past: the histories replayed are the work, so their rate */
    if (s->replayed)
        fprintf(stderr, "; as-of replay: %llu events of %llu histories (%.0f events/s)",
                (unsigned long long)s->events_replayed, (unsigned long long)s->replayed,
                s->seconds > 0 ? (double)s->events_replayed / s->seconds : 0.0);
    fputc('\n', stderr);
    fprintf(stderr, "  as of          %s\n", when);
    if (c->model_used) {
        char *abs = realpath(c->model_used, NULL);
        fprintf(stderr, "  model          %s@%s from %s\n", model_name(m), model_version(m), abs ? abs : c->model_used);
        free(abs);
    } else {
        fprintf(stderr, "  model          %s@%s, the built-in copy (%s does not exist here)\n", model_name(m),
                model_version(m), MODEL_DEFAULT_PATH);
    }
    fprintf(stderr, "  rows written   %llu", (unsigned long long)s->rows);
    if (c->ro.nwhere || c->ro.top)
        fprintf(stderr, " (%llu matched%s)", (unsigned long long)s->matched, c->ro.nwhere ? " the filters" : "");
    fprintf(stderr, "\n  tiers          hot %llu  warm %llu  cold %llu\n  types         ", (unsigned long long)s->tiers[0],
            (unsigned long long)s->tiers[1], (unsigned long long)s->tiers[2]);
    for (int t = 0; t < JT_COUNT; t++)
        fprintf(stderr, " %s %llu", journey_type_name((journey_type)t), (unsigned long long)s->types[t]);
    fputc('\n', stderr);
}

/* What a SIGINT or SIGTERM does while --out FILE is written: the
 * temporary file goes and the process exits 1 at once, FILE as it was
 * (a scan of millions of customers is not waited for).  The one piece of
 * process-wide state here: the handler can read nothing else. */
static char stop_unlink[ATOMICFILE_PATH_MAX];
static const char stop_msg[] = "leadscore rescore: interrupted: --out FILE left as it was, no temporary file\n";

static void on_stop(int sig)
{
    (void)sig;
    if (stop_unlink[0])
        unlink(stop_unlink);
    ssize_t r = write(STDERR_FILENO, stop_msg, sizeof stop_msg - 1);
    (void)r;
    _exit(CLI_FAIL);
}

/* From now on a stop signal removes tmp (a temporary file) and exits. */
static void remove_on_stop(const char *tmp)
{
    struct sigaction sa;
    snprintf(stop_unlink, sizeof stop_unlink, "%s", tmp);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Commits af with the stop signals held: an interrupt comes either before
 * (nothing written) or after (written).  0 or LS_EIO with err. */
static int commit_unstopped(atomicfile *af, char *err, size_t errlen)
{
    sigset_t stops, was;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigprocmask(SIG_BLOCK, &stops, &was);
    int rc = atomicfile_commit(af, err, errlen);
    stop_unlink[0] = '\0'; /* committed or removed: nothing left to remove */
    sigprocmask(SIG_SETMASK, &was, NULL);
    return rc;
}

int cmd_rescore(int argc, char **argv)
{
    rescore_cli c = {0};
    int rc = parse_args(argc, argv, &c);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    model *m = NULL;
    store *s = NULL;
    if (load_model(&c, &m) != CLI_OK)
        return CLI_FAIL;
    if (open_store(c.data, &s) != CLI_OK) {
        model_unref(&m);
        return CLI_FAIL;
    }
    FILE *out = stdout;
    char err[ATOMICFILE_PATH_MAX + 200];
    atomicfile af = {0}; /* --out FILE: a temporary file renamed over FILE only on success */
    if (c.out_path && strcmp(c.out_path, "-") == 0)
        c.out_path = NULL; /* "-": standard output, as audience export reads it */
    if (c.out_path) {
        /* the stop signals wait while the temporary file is made and its
         * removal armed: one that came in between left the file behind */
        sigset_t stops, was;
        sigemptyset(&stops);
        sigaddset(&stops, SIGINT);
        sigaddset(&stops, SIGTERM);
        sigprocmask(SIG_BLOCK, &stops, &was);
        int opened = atomicfile_open(&af, c.out_path, err, sizeof err);
        if (opened == LS_OK && af.tmp[0])
            remove_on_stop(af.tmp);
        sigprocmask(SIG_SETMASK, &was, NULL);
        if (opened != LS_OK) {
            rc = cli_error("rescore", CLI_FAIL, "%s", err);
            goto done;
        }
        out = af.f;
    }
    c.ro.out = out;
    progress p = {.start_ns = timefmt_mono_ns()};
    if (!c.quiet && isatty(STDERR_FILENO)) {
        store_stats ss;
        if (store_stat(s, &ss) == LS_OK)
            p.total = ss.customers;
        c.ro.progress = draw;
        c.ro.progress_arg = &p;
    }
    rescore_summary sum;
    int st = rescore_run(s, m, &c.ro, &sum, err, sizeof err);
    if (p.drawn)
        fputs("\r\033[K", stderr);
    if (st != LS_OK) {
        rc = cli_error("rescore", CLI_FAIL, "%s%s%s", st == LS_EIO && c.out_path ? c.out_path : "",
                       st == LS_EIO && c.out_path ? ": " : "", err); /* FILE: writing the rows failed: why */
    } else if (c.out_path && commit_unstopped(&af, err, sizeof err) != LS_OK) {
        rc = cli_error("rescore", CLI_FAIL, "%s", err);
    } else {
        rc = CLI_OK;
        if (!c.quiet)
            summary(&c, m, &sum);
    }
done:
    atomicfile_abort(&af); /* a failed run leaves an existing FILE as it was, and no temporary file */
    store_close(&s);
    model_unref(&m);
    return rc;
}
