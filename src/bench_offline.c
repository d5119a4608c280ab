/* bench_offline.c -- the offline workloads of `leadscore bench`: `import`
 * (CSV rows/s into a fresh store) and `rescore` (customers/s from a warm
 * store).  A synthetic shop is generated with shopgen, then the real
 * `leadscore import` and `leadscore rescore` commands run as child
 * processes of this same binary, timed from outside, so the figures are
 * what an ops team's cron job would see.  The rescore workload then
 * scores the store again in-process as of the middle of the generated
 * stream, where most histories are replayed, and reports that as-of
 * rate (events replayed per second) on its own line.  With --data DIR the
 * rescore workload keeps the shop's store in DIR and, run again with the
 * same --customers, times it without generating and importing again.
 *
 * The rescore is timed --rounds times (medians are quoted), each run
 * beside its baseline: a raw LMDB cursor walk over the same values in
 * this process (store_reader_walk), the floor under any full scan, so
 * the report says how close to the storage's own speed the job runs.
 *
 * Ctrl-C or SIGTERM (cmd_bench.c catches them and hands the flag in)
 * stops the job at its next step: a child command is sent SIGTERM and
 * waited for, the temporary directory is removed, and no figure is
 * printed. */
#define _GNU_SOURCE
#include "bench_offline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_spawn.h"
#include "cli.h"
#include "cliopts.h"
#include "model.h"
#include "rescore.h"
#include "leadscore/error.h"
#include "loadgen.h"
#include "median.h"
#include "shopgen.h"
#include "store.h"
#include "timefmt.h"

typedef struct {
    const char *workload;     /* "import" or "rescore" */
    uint64_t customers;
    const char *json_path;
    const char *data;         /* rescore: keep the shop's store here, and reuse it */
    int quiet;
    int rounds;               /* rescore: timed runs (medians quoted) */
    int rounds_given;
    volatile sig_atomic_t *stop; /* set by a signal: stop */
} offline_opts;


/* The timed rescore runs, each with its raw walk. */
typedef struct {
    double rescore_s[MEDIAN_MAX_RUNS], walk_s[MEDIAN_MAX_RUNS];
    int n;
    uint64_t walked;          /* values the walk went over */
    double rescore_median, rescore_lo, rescore_hi, walk_median;
} rescore_rounds;

/* The file in a kept store's directory that says what shop it holds:
 * "customers first_ms last_ms". */
#define SPAN_FILE "bench-shop"

/* 1 when dir holds the store of a shop of `customers` made by this
 * workload (its event span in *first_ms, *last_ms). */
static int kept_shop(const char *dir, uint64_t customers, int64_t *first_ms, int64_t *last_ms)
{
    char path[700];
    unsigned long long n = 0;
    long long a = 0, b = 0;
    snprintf(path, sizeof path, "%s/" SPAN_FILE, dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fscanf(f, "%llu %lld %lld", &n, &a, &b) == 3 && n == customers;
    fclose(f);
    *first_ms = a;
    *last_ms = b;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    return ok && access(path, R_OK) == 0;
}

static int write_span(const char *dir, uint64_t customers, int64_t first_ms, int64_t last_ms)
{
    char path[700];
    snprintf(path, sizeof path, "%s/" SPAN_FILE, dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return LS_EIO;
    fprintf(f, "%llu %lld %lld\n", (unsigned long long)customers, (long long)first_ms, (long long)last_ms);
    return fclose(f) == 0 ? LS_OK : LS_EIO;
}

int bench_offline_workload(const char *name)
{
    return strcmp(name, "import") == 0 || strcmp(name, "rescore") == 0;
}

/* The value of argv's last --workload (--workload W or --workload=W), or
 * NULL; the scan stops at "--", as the option parser does. */
static const char *last_workload(int argc, char **argv)
{
    const char *w = NULL;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc)
            w = argv[++i];
        else if (strncmp(argv[i], "--workload=", 11) == 0)
            w = argv[i] + 11;
    }
    return w;
}

int bench_offline_wanted(int argc, char **argv)
{
    const char *w = last_workload(argc, argv);
    return w && bench_offline_workload(w);
}

/* Runs this binary with args; returns its exit status (or -1).  When
 * *stop is set meanwhile, the child is sent SIGTERM and waited for. */
static int run_self(const char *const *args, volatile sig_atomic_t *stop)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        const char *argv[32] = {"leadscore"};
        int n = 1;
        for (int i = 0; args[i] && n < 31; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1); /* the command's own summary: the bench reports */
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    /* polled, so a signal that came before the wait (right after the
     * fork, say) still reaches the child */
    int status, killed = 0;
    pid_t got;
    const struct timespec poll = {0, 20 * 1000000};
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 || (got < 0 && errno == EINTR)) {
        if (*stop && !killed++)
            kill(pid, SIGTERM);
        nanosleep(&poll, NULL);
    }
    if (got != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes a shop of `customers` to path: its event count in *rows and its
 * first and last event times in *first_ms, *last_ms. */
static int generate(const offline_opts *o, const char *path, uint64_t *rows, int64_t *first_ms, int64_t *last_ms)
{
    shopgen_config c;
    shopgen_summary sum = {0};
    shopgen_defaults(&c);
    c.customers = o->customers;
    c.stop = o->stop;
    c.format = SHOPGEN_CSV;
    FILE *f = fopen(path, "w");
    if (!f)
        return LS_EIO;
    int rc = shopgen_run(&c, f, NULL, NULL, NULL, &sum);
    if (fclose(f) != 0 && rc == LS_OK)
        rc = LS_EIO;
    *rows = sum.events;
    *first_ms = sum.first_ts;
    *last_ms = sum.last_ts;
    return rc;
}

static uint64_t customers_in(const char *dir)
{
    store *s;
    store_stats st = {0};
    store_options so = {.read_only = 1};
    char err[256];
    if (store_open(&s, dir, &so, NULL, err, sizeof err) == LS_OK) {
        store_stat(s, &st);
        store_close(&s);
    }
    return st.customers;
}

/* Rescores the store in dir as of asof_ms in this process (rows to
 * /dev/null): the summary, with the events replayed, in *sum. */
static int rescore_asof(const char *dir, int64_t asof_ms, rescore_summary *sum)
{
    store *s = NULL;
    model *m = NULL;
    const char *used;
    char err[600];
    store_options so = {.read_only = 1};
    FILE *null = fopen("/dev/null", "w");
    int rc = null ? LS_OK : LS_EIO;
    if (rc == LS_OK)
        rc = model_load_default(NULL, &m, &used, err, sizeof err);
    if (rc == LS_OK)
        rc = store_open(&s, dir, &so, NULL, err, sizeof err);
    if (rc == LS_OK) {
        rescore_options ro;
        rescore_options_init(&ro);
        ro.now_ms = asof_ms;
        ro.out = null;
        rc = rescore_run(s, m, &ro, sum, err, sizeof err);
    }
    store_close(&s);
    model_unref(&m);
    if (null)
        fclose(null);
    return rc;
}

/* The raw walk over dir's customers (store_reader_walk), in this
 * process, warm: *records and *secs. */
static int raw_walk(const char *dir, uint64_t *records, double *secs)
{
    store *s = NULL;
    store_reader *r = NULL;
    uint64_t bytes;
    char err[256];
    store_options so = {.read_only = 1};
    int rc = store_open(&s, dir, &so, NULL, err, sizeof err);
    if (rc == LS_OK)
        rc = store_reader_open(s, &r);
    if (rc == LS_OK)
        rc = store_reader_begin(r);
    if (rc == LS_OK) {
        int64_t t0 = timefmt_mono_ns();
        rc = store_reader_walk(r, records, &bytes);
        *secs = (double)(timefmt_mono_ns() - t0) / 1e9;
        store_reader_end(r);
    }
    store_reader_close(&r);
    store_close(&s);
    return rc;
}

/* Times o->rounds runs of `leadscore rescore` of dir (a child process,
 * timed from outside, after one untimed run that warms the page cache),
 * each followed by the raw walk, into *rr. */
static int time_rescore(const offline_opts *o, const char *dir, rescore_rounds *rr)
{
    const char *args[] = {"rescore", "--data", dir, "--quiet", "--out", "/dev/null", NULL};
    run_self(args, o->stop); /* warm the page cache, as a store in service is */
    rr->n = 0;
    for (int i = 0; i < o->rounds; i++) {
        int64_t t0 = timefmt_mono_ns();
        if (*o->stop)
            return CLI_FAIL;
        if (run_self(args, o->stop) != 0)
            return *o->stop ? CLI_FAIL : cli_error("bench", CLI_FAIL, "leadscore rescore failed");
        rr->rescore_s[i] = (double)(timefmt_mono_ns() - t0) / 1e9;
        if (raw_walk(dir, &rr->walked, &rr->walk_s[i]) != LS_OK)
            return cli_error("bench", CLI_FAIL, "cannot walk the store in %s", dir);
        rr->n++;
        if (!o->quiet && o->rounds > 1)
            fprintf(stderr, "bench: round %d of %d: rescore %.3f s, raw walk %.3f s\n", i + 1, o->rounds,
                    rr->rescore_s[i], rr->walk_s[i]);
    }
    double r[MEDIAN_MAX_RUNS], w[MEDIAN_MAX_RUNS];
    memcpy(r, rr->rescore_s, (size_t)rr->n * sizeof *r);
    memcpy(w, rr->walk_s, (size_t)rr->n * sizeof *w);
    rr->rescore_median = median_sort(r, (size_t)rr->n); /* r is sorted now */
    rr->rescore_lo = r[0];
    rr->rescore_hi = r[rr->n - 1];
    rr->walk_median = median_sort(w, (size_t)rr->n);
    return CLI_OK;
}

static double rate_of(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0;
}

/* The rounds' spread and the raw walk beside the rescore. */
static void report_rounds(const rescore_rounds *rr, uint64_t n)
{
    double rate = rate_of(n, rr->rescore_median), walk = rate_of(rr->walked, rr->walk_median);
    printf("%-22s %5.2f - %5.2f\n", "seconds min - max", rr->rescore_lo, rr->rescore_hi);
    printf("%-22s %12.0f  (LMDB cursor over the same values, 1 thread, in-process)\n", "raw walk records/s",
           walk);
    printf("%-22s %12.3f\n", "rescore / raw walk", walk > 0 ? rate / walk : 0);
}

/* Prints the rate of n items in secs (with rr, the median of its rounds
 * and the raw walk beside it; when asof is not NULL, the as-of run's
 * customers/s and events replayed/s), and writes them as one JSON object
 * to --json.  An exit status. */
static int report(const offline_opts *o, const char *item, uint64_t n, double secs, const rescore_rounds *rr,
                   int64_t asof_ms, const rescore_summary *asof)
{
    if (rr)
        secs = rr->rescore_median;
    double rate = rate_of(n, secs);
    printf("workload %s  customers generated %" PRIu64, o->workload, o->customers);
    if (rr)
        printf("  rounds %d (medians)", rr->n);
    printf("\n%-22s %12" PRIu64 "\n%-22s %12.2f\n%s/s%*s %12.0f\n", item, n, "seconds", secs, item,
           (int)(22 - strlen(item) - 2), "", rate);
    if (rr)
        report_rounds(rr, n);
    char when[TIMEFMT_ISO_BUFSZ] = "";
    double arate = 0, erate = 0;
    if (asof) {
        timefmt_format_iso(asof_ms, when, sizeof when);
        arate = asof->seconds > 0 ? (double)asof->customers / asof->seconds : 0;
        erate = asof->seconds > 0 ? (double)asof->events_replayed / asof->seconds : 0;
        printf("as of %s (mid-stream, in-process)\n%-22s %12" PRIu64 "\n%-22s %12" PRIu64 "\n"
               "%-22s %12.2f\n%-22s %12.0f\n%-22s %12.0f\n",
               when, "customers", asof->customers, "events replayed", asof->events_replayed, "seconds",
               asof->seconds, "customers/s", arate, "events replayed/s", erate);
    }
    if (o->json_path) {
        FILE *f = strcmp(o->json_path, "-") ? fopen(o->json_path, "w") : stdout;
        if (!f)
            return cli_error("bench", CLI_FAIL, "cannot write %s: %s", o->json_path, strerror(errno));
        {
            fprintf(f, "{\"workload\":\"%s\",\"customers_generated\":%" PRIu64 ",\"%s\":%" PRIu64
                       ",\"seconds\":%.3f,\"per_second\":%.0f", o->workload, o->customers, item, n, secs, rate);
            if (rr) {
                double walk = rate_of(rr->walked, rr->walk_median);
                fprintf(f, ",\"rounds\":%d,\"runs_seconds\":[", rr->n);
                for (int i = 0; i < rr->n; i++)
                    fprintf(f, "%s%.3f", i ? "," : "", rr->rescore_s[i]);
                fprintf(f, "],\"raw_walk\":{\"records\":%" PRIu64 ",\"seconds\":%.4f,\"per_second\":%.0f}"
                           ",\"ratio_to_raw_walk\":%.4f",
                        rr->walked, rr->walk_median, walk, walk > 0 ? rate / walk : 0);
            }
            if (asof)
                fprintf(f, ",\"asof\":{\"time\":\"%s\",\"customers\":%" PRIu64 ",\"events_replayed\":%" PRIu64
                           ",\"seconds\":%.3f,\"per_second\":%.0f,\"events_per_second\":%.0f}",
                        when, asof->customers, asof->events_replayed, asof->seconds, arate, erate);
            fputs("}\n", f);
            if (f != stdout && fclose(f) != 0)
                return cli_error("bench", CLI_FAIL, "cannot write %s: %s", o->json_path, strerror(errno));
        }
    }
    return CLI_OK;
}

/* --workload: import or rescore, or an online workload that a later
 * --workload overrides (the last one counts, and bench_offline_wanted
 * sent us here because it is offline); anything else is refused. */
static int parse_workload(const char *arg, void *dest, char *why, size_t cap)
{
    loadgen_workload online;
    if (!bench_offline_workload(arg) && loadgen_workload_parse(arg, &online) != LS_OK) {
        snprintf(why, cap, "\"%s\" is not a workload (see --help)", arg);
        return -1;
    }
    *(const char **)dest = arg;
    return 0;
}

#define F(field) CLIOPT_FIELD(offline_opts, field)
static const cliopt offline_rows[] = {
    {.name = "workload", .kind = CLIOPT_CUSTOM, F(workload), .parse = parse_workload, .arg = "W",
     .help = "import or rescore"},
    {.name = "customers", .kind = CLIOPT_COUNT, F(customers), .lo = 1, .hi = 100000000,
     .want = "a count from 1 to 100M", .arg = "N", .help = "customers of the generated shop (default 100000; k/M suffixes)"},
    {.name = "json", .kind = CLIOPT_STRING, F(json_path), .arg = "FILE", .help = "also write the report as JSON"},
    {.name = "quiet", .kind = CLIOPT_FLAG, F(quiet), .help = "no progress lines"},
    {.name = "data", .kind = CLIOPT_STRING, F(data), .arg = "DIR", .help = "rescore: keep the store in DIR and reuse it"},
    {.name = "rounds", .kind = CLIOPT_INT, F(rounds), CLIOPT_GIVEN(offline_opts, rounds_given), .lo = 1,
     .hi = MEDIAN_MAX_RUNS, .arg = "R", .help = "rescore: timed runs, medians quoted (default 3)"},
    CLIOPT_END};
#undef F

/* An option of the online workloads (--duration, --clients ...) given to
 * an offline one is said as such, not as an unknown option that
 * `bench --help` then lists. */
static int refuse_online_option(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--help") == 0)
            continue;
        size_t n = strcspn(a + 2, "=");
        const cliopt *row = offline_rows;
        while (row->name && !(strlen(row->name) >= n && strncmp(row->name, a + 2, n) == 0))
            row++;
        if (!row->name)
            return cli_error("bench", CLI_USAGE, "%.*s is an option of the online workloads: import and rescore take "
                             "--customers, --json, --quiet, --data and --rounds", (int)(n + 2), a);
        if (!strchr(a, '=') && row->kind != CLIOPT_FLAG)
            i++; /* its value */
    }
    return CLI_OK;
}

/* The offline workloads' options, checked as every other command's
 * (cliopts.h), so --customers 1M means a million here too: CLI_OK,
 * CLI_USAGE, or CLIOPTS_HELP once --help is printed. */
static int parse(int argc, char **argv, offline_opts *o)
{
    static const cliopts_spec spec = {
        .cmd = "bench",
        .usage = "leadscore bench --workload import|rescore [--customers N] [--json FILE] [--quiet] [--data DIR] "
                 "[--rounds R]",
        .about = "The offline workloads generate a shop of N customers and time `leadscore import` of its\n"
                 "CSV (rows/s), or then `leadscore rescore` of that store (customers/s, beside a raw LMDB\n"
                 "walk); they take only the options below (the online ones are in `leadscore bench --help`).",
        .opts = offline_rows,
    };
    o->customers = 100000;
    o->rounds = 3;
    if (refuse_online_option(argc, argv) != CLI_OK)
        return CLI_USAGE;
    int first = cliopts_parse(&spec, argc, argv, o);
    if (first == CLIOPTS_HELP)
        return CLIOPTS_HELP;
    if (first < 0)
        return CLI_USAGE;
    if (first < argc)
        return cli_error("bench", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[first]);
    if (!o->workload || !bench_offline_workload(o->workload)) /* the parser's last --workload, not ours */
        return cli_error("bench", CLI_USAGE, "--workload: give import or rescore last (see --help)");
    if (o->rounds_given && strcmp(o->workload, "rescore") != 0)
        return cli_error("bench", CLI_USAGE, "--rounds goes with --workload rescore: import times one new store");
    if (o->data && strcmp(o->workload, "rescore") != 0)
        return cli_error("bench", CLI_USAGE, "--data goes with --workload rescore: import always times a new store");
    return CLI_OK;
}

/* Says that a signal stopped the job during `what`; an exit status. */
static int interrupted(const char *what, const char *dir)
{
    return cli_error("bench", CLI_FAIL, "interrupted while %s: no figures (%s removed)", what, dir);
}

int bench_offline(int argc, char **argv, volatile sig_atomic_t *stop)
{
    offline_opts o = {.stop = stop};
    char dir[512], csv[600], data[600];
    const char *tmp = getenv("TMPDIR");
    uint64_t rows = 0;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == CLIOPTS_HELP ? CLI_OK : rc;
    if ((rc = cli_check_writable("bench", "--json", o.json_path)) != CLI_OK)
        return rc;
    snprintf(dir, sizeof dir, "%s/leadscore-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return cli_error("bench", CLI_FAIL, "cannot make a temporary directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
                         strerror(errno));
    snprintf(csv, sizeof csv, "%s/shop.csv", dir);
    snprintf(data, sizeof data, "%s", o.data ? o.data : dir);
    if (!o.data)
        strncat(data, "/data", sizeof data - strlen(data) - 1);
    int64_t first_ms = 0, last_ms = 0;
    if (o.data && kept_shop(data, o.customers, &first_ms, &last_ms)) {
        if (!o.quiet)
            fprintf(stderr, "bench: reusing the shop of %" PRIu64 " customers in %s\n", o.customers, data);
        goto rescore;
    }
    if (o.data && rmdir(data) != 0 && access(data, F_OK) == 0) {
        rc = cli_error("bench", CLI_USAGE, "--data %s holds something other than this workload's shop of %" PRIu64
                       " customers: give a new or empty directory", data, o.customers);
        goto done;
    }
    if (!o.quiet)
        fprintf(stderr, "bench: generating a shop of %" PRIu64 " customers\n", o.customers);
    rc = generate(&o, csv, &rows, &first_ms, &last_ms);
    if (*stop) {
        rc = interrupted("generating the shop", dir);
        goto done;
    }
    if (rc != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "cannot write %s", csv);
        goto done;
    }
    const char *imp[] = {"import", "--data", data, "--quiet", csv, NULL};
    int64_t t0 = timefmt_mono_ns();
    rc = run_self(imp, stop);
    if (*stop) {
        rc = interrupted("importing", dir);
        goto done;
    }
    if (rc != 0) {
        rc = cli_error("bench", CLI_FAIL, "leadscore import failed");
        goto done;
    }
    double import_s = (double)(timefmt_mono_ns() - t0) / 1e9;
    if (strcmp(o.workload, "import") == 0) {
        rc = report(&o, "rows", rows, import_s, NULL, 0, NULL);
        goto done;
    }
    if (o.data && write_span(data, o.customers, first_ms, last_ms) != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "cannot write %s/" SPAN_FILE, data);
        goto done;
    }
rescore:;
    rescore_rounds rr;
    rc = time_rescore(&o, data, &rr);
    if (*stop) {
        rc = interrupted("timing rescore", dir);
        goto done;
    }
    if (rc != CLI_OK)
        goto done;
    int64_t asof_ms = first_ms + (last_ms - first_ms) / 2;
    rescore_summary asof;
    rc = rescore_asof(data, asof_ms, &asof);
    if (*stop) {
        rc = interrupted("rescoring as of mid-stream", dir);
        goto done;
    }
    if (rc != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "rescore as of %" PRId64 " failed", asof_ms);
        goto done;
    }
    rc = report(&o, "customers", customers_in(data), 0, &rr, asof_ms, &asof);
done:
    if (bench_remove_dir(dir) != 0 && !o.quiet)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    return rc;
}
