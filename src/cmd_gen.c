/* cmd_gen.c -- `leadscore gen`: writes a synthetic shop's event stream
 * (JSON Lines or CSV) with its ground truth, for tests, demos, training
 * and benchmarks.  The simulation itself is shopgen.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cli.h"
#include "cliopts.h"
#include "leadscore/error.h"
#include "shopgen.h"
#include "timefmt.h"

typedef struct {
    int tty;
    int64_t started_ns;
} gen_progress;

static void show_progress(void *arg, uint64_t events, int done, int total)
{
    gen_progress *p = arg;
    if (!p->tty)
        return;
    double secs = (double)(timefmt_mono_ns() - p->started_ns) / 1e9;
    fprintf(stderr, "\rgen: day %d/%d  %" PRIu64 " events  %.0f events/s   ", done, total, events,
            secs > 0 ? (double)events / secs : 0.0);
    if (done == total)
        fputc('\n', stderr);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || *s == '-' || errno == ERANGE) /* past 2^64 - 1 is not clamped to it */
        return -1;
    *out = v;
    return 0;
}

#define DAY_MS INT64_C(86400000)

/* The start of the current UTC day, in ms. */
static int64_t today_ms(void)
{
    int64_t now = timefmt_now_ms();
    return now - now % DAY_MS;
}

/* Resolves the window from --start, --end and --days (has_* say which were
 * given): CLI_OK or CLI_USAGE (explained). */
static int resolve_window(shopgen_config *c, int has_start, int has_end, int has_days, int64_t end_ms)
{
    if (has_start && has_end) {
        if (end_ms <= c->start_ms || (end_ms - c->start_ms) % DAY_MS)
            return cli_error("gen", CLI_USAGE, "--end must come a whole number of days after --start");
        int64_t days = (end_ms - c->start_ms) / DAY_MS;
        if (has_days && days != c->days)
            return cli_error("gen", CLI_USAGE, "--start and --end span %lld days, --days says %d: give two of the three",
                             (long long)days, c->days);
        if (days > SHOPGEN_MAX_DAYS)
            return cli_error("gen", CLI_USAGE, "--start to --end is more than %d days", SHOPGEN_MAX_DAYS);
        c->days = (int)days;
    } else if (!has_start) {
        if (!has_end)
            end_ms = today_ms();
        c->start_ms = end_ms - (int64_t)c->days * DAY_MS;
        if (c->start_ms < 0)
            return cli_error("gen", CLI_USAGE, "the stream would start before 1970: a later --end or fewer --days");
    }
    return CLI_OK;
}

static int parse_seed(const char *arg, void *dest, char *why, size_t cap)
{
    if (parse_u64(arg, dest) == 0)
        return 0;
    snprintf(why, cap, "\"%s\" is not a whole number from 0 to 18446744073709551615", arg);
    return -1;
}

typedef struct {
    shopgen_config c;
    const char *out, *truth;
    int64_t end_ms;
    int has_start, has_end, has_days;
} gen_cli;

static const char *const format_words[] = {"csv", "jsonl", NULL};
static const int format_values[] = {SHOPGEN_CSV, SHOPGEN_JSONL};

#define F(field) CLIOPT_FIELD(gen_cli, field)
static const cliopt gen_rows[] = {
    {.name = "customers", .kind = CLIOPT_INT, F(c.customers), .lo = 1, .hi = SHOPGEN_MAX_CUSTOMERS,
     .want = "a count from 1 to 100000000", .arg = "N",
     .help = "people simulated (default 10000)"},
    {.name = "days", .kind = CLIOPT_INT, F(c.days), CLIOPT_GIVEN(gen_cli, has_days), .lo = 0, .hi = 100000,
     .want = "a day count", .arg = "D", .help = "length of the stream in days (default 90)"},
    {.name = "seed", .kind = CLIOPT_CUSTOM, F(c.seed), .parse = parse_seed, .arg = "S",
     .help = "random seed: the same seed gives the same bytes (default 1)"},
    {.name = "format", .kind = CLIOPT_ENUM, F(c.format), .choices = format_words, .values = format_values,
     .arg = "F", .help = "jsonl (default) or csv"},
    {.name = "out", .kind = CLIOPT_STRING, F(out), .arg = "FILE",
     .help = "events file (default, or -: standard output)"},
    {.name = "truth", .kind = CLIOPT_STRING, F(truth), .arg = "FILE",
     .help = "ground truth per customer: who buys in the horizon after the cutoff\n"
             "(- is standard output, with --out FILE)"},
    {.name = "end", .kind = CLIOPT_TIME, F(end_ms), CLIOPT_GIVEN(gen_cli, has_end), .arg = "TIME",
     .help = "end of the stream, excluded (default: today 00:00 UTC, so every event\n"
             "lies in the past); the stream is the --days days before it"},
    {.name = "start", .kind = CLIOPT_TIME, F(c.start_ms), CLIOPT_GIVEN(gen_cli, has_start), .arg = "TIME",
     .help = "time of the first day instead (the stream is the --days days from it);\n"
             "with --end too, the days between them (--days, if given, must agree)"},
    {.name = "cutoff", .kind = CLIOPT_TIME, F(c.cutoff_ms), .arg = "TIME",
     .help = "truth cutoff (default: the horizon before the end)"},
    {.name = "horizon", .kind = CLIOPT_INT, F(c.horizon_days), .lo = 1, .hi = SHOPGEN_MAX_DAYS,
     .want = "a day count from 1 to 36500",
     .arg = "DAYS", .help = "truth horizon (default 30)"},
    CLIOPT_END};
#undef F

static const cliopts_spec gen_spec = {
    .cmd = "gen",
    .usage = "leadscore gen [--customers N] [--days D] [--seed S] [--format csv|jsonl] [--out FILE]\n"
             "                     [--truth FILE] [--start TIME] [--end TIME] [--cutoff TIME] [--horizon DAYS]",
    .about = "Writes a deterministic synthetic shop event stream: customers with individual purchase\n"
             "rates and drop-out (the BG/NBD story), browsing funnels, category tastes, sale hunters,\n"
             "refunds, reviews, referrals, birthdays, anonymous visitors who sign in later.",
    .epilog = "The same --seed, --customers, --days and --start or --end give the same bytes; without\n"
              "--start and --end the stream moves with the calendar day.",
    .opts = gen_rows,
};

/* Parses the options into g (its config holding the defaults): CLI_OK,
 * CLI_USAGE (explained), or -1 after --help. */
static int parse_args(int argc, char **argv, gen_cli *g)
{
    shopgen_config *c = &g->c;
    int first = cliopts_parse(&gen_spec, argc, argv, g);
    if (first < 0)
        return first == CLIOPTS_HELP ? -1 : CLI_USAGE;
    if (first < argc)
        return cli_error("gen", CLI_USAGE, "unexpected argument \"%s\"", argv[first]);
    if (c->days < 1)
        return cli_error("gen", CLI_USAGE, "--days: at least 1");
    int rc = resolve_window(c, g->has_start, g->has_end, g->has_days, g->end_ms);
    if (rc != CLI_OK)
        return rc;
    int64_t end = c->start_ms + (int64_t)c->days * 86400000;
    if (c->cutoff_ms != SHOPGEN_CUTOFF_AUTO && (c->cutoff_ms <= c->start_ms || c->cutoff_ms >= end)) {
        char a[40], b[40];
        timefmt_format_iso(c->start_ms, a, sizeof a);
        timefmt_format_iso(end, b, sizeof b);
        return cli_error("gen", CLI_USAGE, "--cutoff must fall inside the stream, after %s and before %s (the "
                         "truth is who buys in the horizon after it)", a, b);
    }
    if (g->truth && c->cutoff_ms == SHOPGEN_CUTOFF_AUTO && c->days <= c->horizon_days)
        return cli_error("gen", CLI_USAGE, "--truth: the default cutoff is the horizon (%d days) before the end, "
                         "which a stream of %d days does not reach: give more --days, a shorter --horizon or a "
                         "--cutoff inside the stream", c->horizon_days, c->days);
    if (shopgen_validate(c) != LS_OK)
        return cli_error("gen", CLI_USAGE, "these settings are out of range (see --help)");
    return CLI_OK;
}

/* 1 when paths a and b name one regular file (or one that does not exist
 * yet): the two outputs would be written into each other.  /dev/null twice
 * is fine. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int ha = stat(a, &sa) == 0, hb = stat(b, &sb) == 0;
    if (ha && hb)
        return S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return !ha && !hb && strcmp(a, b) == 0;
}

int cmd_gen(int argc, char **argv)
{
    gen_cli g = {0};
    shopgen_summary sum;
    shopgen_defaults(&g.c);
    int rc = parse_args(argc, argv, &g);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    shopgen_config c = g.c;
    /* "-" is standard output for either file, and only one can have it */
    const char *out = g.out && strcmp(g.out, "-") ? g.out : NULL;
    const char *truth = g.truth && strcmp(g.truth, "-") ? g.truth : NULL;
    if (g.truth && !truth && !out)
        return cli_error("gen", CLI_USAGE, "--truth - and the events (%s) cannot both go to standard output: give "
                         "--out FILE", g.out ? "--out -" : "the default without --out");
    if (out && truth && same_file(out, truth))
        return cli_error("gen", CLI_USAGE, "--out and --truth name the same file (%s)", truth);
    /* each output is written whole or not at all: a failed run leaves
     * neither a partial file nor a changed old one */
    atomicfile evf = {0}, trf = {0};
    char err[ATOMICFILE_PATH_MAX + 200];
    if ((out && atomicfile_open(&evf, out, err, sizeof err) != LS_OK) ||
        (truth && atomicfile_open(&trf, truth, err, sizeof err) != LS_OK)) {
        rc = cli_error("gen", CLI_FAIL, "%s", err);
        goto done;
    }
    FILE *ev = out ? evf.f : stdout, *tr = truth ? trf.f : g.truth ? stdout : NULL;
    gen_progress p = {isatty(2) && ev != stdout, timefmt_mono_ns()};
    int st = shopgen_run(&c, ev, tr, show_progress, &p, &sum);
    if (st == LS_EIO) { /* which stream failed, and why (a full disk, a reader gone: "Broken pipe") */
        int why = errno ? errno : EIO;
        const char *what = tr && ferror(tr) ? (truth ? truth : "standard output") : out ? out : "standard output";
        rc = cli_error("gen", CLI_FAIL, "cannot write %s: %s", what, strerror(why));
        goto done;
    }
    if (st != LS_OK) {
        rc = cli_error("gen", CLI_FAIL, "%s", ls_strerror(st));
        goto done;
    }
    double secs = (double)(timefmt_mono_ns() - p.started_ns) / 1e9;
    char cut[32], from[32], to[32];
    timefmt_format_iso(sum.cutoff_ms, cut, sizeof cut);
    timefmt_format_iso(c.start_ms, from, sizeof from);
    timefmt_format_iso(c.start_ms + (int64_t)c.days * DAY_MS, to, sizeof to);
    fprintf(stderr, "gen: %" PRIu64 " events for %" PRIu64 " visitors (%" PRIu64 " buyers, %" PRIu64
                    " repeat) in %.2f s, %.0f events/s; %s to %s (excluded); truth cutoff %s\n",
            sum.events, sum.visitors, sum.buyers, sum.repeat_buyers, secs, secs > 0 ? (double)sum.events / secs : 0.0,
            from, to, cut);
    if ((out && atomicfile_commit(&evf, err, sizeof err) != LS_OK) ||
        (truth && atomicfile_commit(&trf, err, sizeof err) != LS_OK))
        rc = cli_error("gen", CLI_FAIL, "%s", err);
done:
    atomicfile_abort(&evf); /* what was not committed goes */
    atomicfile_abort(&trf);
    return rc;
}
