/* cmd_gen.c -- `leadscore gen`: writes a synthetic shop's event stream
 * (JSON Lines or CSV) with its ground truth, for tests, demos, training
 * and benchmarks.  The simulation itself is shopgen.c. */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
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

static void gen_help(void)
{
    printf("usage: leadscore gen [--customers N] [--days D] [--seed S] [--format csv|jsonl] [--out FILE]\n"
           "                     [--truth FILE] [--end TIME | --start TIME] [--cutoff TIME] [--horizon DAYS]\n\n"
           "Writes a deterministic synthetic shop event stream: customers with individual purchase\n"
           "rates and drop-out (the BG/NBD story), browsing funnels, category tastes, sale hunters,\n"
           "refunds, reviews, referrals, birthdays, anonymous visitors who sign in later.\n\n"
           "  --customers N   people simulated (default 10000)\n"
           "  --days D        length of the stream in days (default 90)\n"
           "  --seed S        random seed: the same seed gives the same bytes (default 1)\n"
           "  --format F      jsonl (default) or csv\n"
           "  --out FILE      events file (default: standard output)\n"
           "  --truth FILE    ground truth per customer: who buys in the horizon after the cutoff\n"
           "  --end TIME      end of the stream, excluded (default: today 00:00 UTC, so every event\n"
           "                  lies in the past); the stream is the --days days before it\n"
           "  --start TIME    time of the first day instead (the stream is the --days days from it);\n"
           "                  with --end too, the days between them (--days, if given, must agree)\n"
           "  --cutoff TIME   truth cutoff (default: the horizon before the end)\n"
           "  --horizon DAYS  truth horizon (default 30)\n\n"
           "The same --seed, --customers, --days and --start or --end give the same bytes; without\n"
           "--start and --end the stream moves with the calendar day.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || *s == '-')
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

static int parse_args(int argc, char **argv, shopgen_config *c, const char **out, const char **truth)
{
    static const struct option opts[] = {
        {"customers", required_argument, NULL, 'n'}, {"days", required_argument, NULL, 'd'},
        {"seed", required_argument, NULL, 's'},      {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},       {"truth", required_argument, NULL, 't'},
        {"start", required_argument, NULL, 'S'},     {"cutoff", required_argument, NULL, 'C'},
        {"horizon", required_argument, NULL, 'H'},   {"help", no_argument, NULL, 'h'},
        {"end", required_argument, NULL, 'E'},       {NULL, 0, NULL, 0}};
    uint64_t u;
    int64_t end_ms = 0;
    int has_start = 0, has_end = 0, has_days = 0;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': if (parse_u64(optarg, &c->customers)) return cli_error("gen", CLI_USAGE, "--customers: not a number"); break;
        case 'd': if (parse_u64(optarg, &u) || u > 100000) return cli_error("gen", CLI_USAGE, "--days: not a day count"); c->days = (int)u; has_days = 1; break;
        case 's': if (parse_u64(optarg, &c->seed)) return cli_error("gen", CLI_USAGE, "--seed: not a number"); break;
        case 'H': if (parse_u64(optarg, &u) || u > 100000) return cli_error("gen", CLI_USAGE, "--horizon: not a day count"); c->horizon_days = (int)u; break;
        case 'f':
            if (strcmp(optarg, "jsonl") && strcmp(optarg, "csv"))
                return cli_error("gen", CLI_USAGE, "--format is csv or jsonl");
            c->format = strcmp(optarg, "csv") == 0 ? SHOPGEN_CSV : SHOPGEN_JSONL;
            break;
        case 'o': *out = optarg; break;
        case 't': *truth = optarg; break;
        case 'S': if (cli_parse_time(optarg, &c->start_ms)) return cli_error("gen", CLI_USAGE, "--start: not a time"); has_start = 1; break;
        case 'E': if (cli_parse_time(optarg, &end_ms)) return cli_error("gen", CLI_USAGE, "--end: not a time"); has_end = 1; break;
        case 'C': if (cli_parse_time(optarg, &c->cutoff_ms)) return cli_error("gen", CLI_USAGE, "--cutoff: not a time"); break;
        case 'h': gen_help(); return -1;
        default: return CLI_USAGE;
        }
    }
    if (optind < argc)
        return cli_error("gen", CLI_USAGE, "unexpected argument \"%s\"", argv[optind]);
    if (c->days < 1)
        return cli_error("gen", CLI_USAGE, "--days: at least 1");
    int rc = resolve_window(c, has_start, has_end, has_days, end_ms);
    if (rc != CLI_OK)
        return rc;
    if (shopgen_validate(c) != LS_OK)
        return cli_error("gen", CLI_USAGE, "these settings are out of range (see --help)");
    return CLI_OK;
}

int cmd_gen(int argc, char **argv)
{
    shopgen_config c;
    shopgen_summary sum;
    const char *out = NULL, *truth = NULL;
    shopgen_defaults(&c);
    int rc = parse_args(argc, argv, &c, &out, &truth);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    FILE *ev = out && strcmp(out, "-") ? fopen(out, "w") : stdout;
    FILE *tr = truth ? fopen(truth, "w") : NULL;
    if (!ev || (truth && !tr)) {
        rc = cli_error("gen", CLI_FAIL, "cannot write %s", !ev ? out : truth);
        goto done;
    }
    gen_progress p = {isatty(2) && ev != stdout, timefmt_mono_ns()};
    int st = shopgen_run(&c, ev, tr, show_progress, &p, &sum);
    if (st != LS_OK) {
        rc = cli_error("gen", CLI_FAIL, "%s", st == LS_EIO ? "write failed (disk full?)" : ls_strerror(st));
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
done:
    if (ev && ev != stdout && fclose(ev) != 0 && rc == CLI_OK)
        rc = cli_error("gen", CLI_FAIL, "cannot finish writing %s", out);
    if (tr && fclose(tr) != 0 && rc == CLI_OK)
        rc = cli_error("gen", CLI_FAIL, "cannot finish writing %s", truth);
    return rc;
}
