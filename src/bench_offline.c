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
 * same --customers, times it without generating and importing again. */
#define _GNU_SOURCE
#include "bench_offline.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "rescore.h"
#include "leadscore/error.h"
#include "shopgen.h"
#include "store.h"
#include "timefmt.h"

typedef struct {
    const char *workload;     /* "import" or "rescore" */
    uint64_t customers;
    const char *json_path;
    const char *data;         /* rescore: keep the shop's store here, and reuse it */
    int quiet;
} offline_opts;

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

int bench_offline_wanted(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--workload") == 0 && (!strcmp(argv[i + 1], "import") || !strcmp(argv[i + 1], "rescore")))
            return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--workload=import") || !strcmp(argv[i], "--workload=rescore"))
            return 1;
    return 0;
}

/* Runs this binary with args; returns its exit status (or -1). */
static int run_self(const char *const *args)
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
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes a shop of `customers` to path: its event count in *rows and its
 * first and last event times in *first_ms, *last_ms. */
static int generate(const char *path, uint64_t customers, uint64_t *rows, int64_t *first_ms, int64_t *last_ms)
{
    shopgen_config c;
    shopgen_summary sum;
    shopgen_defaults(&c);
    c.customers = customers;
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

/* Prints the rate of n items in secs (and, when asof is not NULL, the
 * as-of run's customers/s and events replayed/s), and writes them as one
 * JSON object to --json. */
static void report(const offline_opts *o, const char *item, uint64_t n, double secs, int64_t asof_ms,
                   const rescore_summary *asof)
{
    double rate = secs > 0 ? (double)n / secs : 0;
    printf("workload %s  customers generated %" PRIu64 "\n", o->workload, o->customers);
    printf("%-22s %12" PRIu64 "\n%-22s %12.2f\n%s/s%*s %12.0f\n", item, n, "seconds", secs, item,
           (int)(22 - strlen(item) - 2), "", rate);
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
        if (f) {
            fprintf(f, "{\"workload\":\"%s\",\"customers_generated\":%" PRIu64 ",\"%s\":%" PRIu64
                       ",\"seconds\":%.3f,\"per_second\":%.0f", o->workload, o->customers, item, n, secs, rate);
            if (asof)
                fprintf(f, ",\"asof\":{\"time\":\"%s\",\"customers\":%" PRIu64 ",\"events_replayed\":%" PRIu64
                           ",\"seconds\":%.3f,\"per_second\":%.0f,\"events_per_second\":%.0f}",
                        when, asof->customers, asof->events_replayed, asof->seconds, arate, erate);
            fputs("}\n", f);
            if (f != stdout)
                fclose(f);
        }
    }
}

static int parse(int argc, char **argv, offline_opts *o)
{
    static const struct option opts[] = {{"workload", required_argument, NULL, 'w'},
                                         {"customers", required_argument, NULL, 'n'},
                                         {"json", required_argument, NULL, 'j'}, {"quiet", no_argument, NULL, 'q'},
                                         {"data", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    int c;
    o->customers = 100000;
    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'w') o->workload = optarg;
        else if (c == 'n') o->customers = strtoull(optarg, NULL, 10);
        else if (c == 'j') o->json_path = optarg;
        else if (c == 'q') o->quiet = 1;
        else if (c == 'd') o->data = optarg;
        else return cli_error("bench", CLI_USAGE, "the import and rescore workloads take --customers, --json and --quiet "
                                                  "(and rescore --data DIR)");
    }
    if (o->data && strcmp(o->workload, "rescore") != 0)
        return cli_error("bench", CLI_USAGE, "--data goes with --workload rescore: import always times a new store");
    if (o->customers < 1 || o->customers > 100000000)
        return cli_error("bench", CLI_USAGE, "--customers takes 1 to 100000000");
    return CLI_OK;
}

int bench_offline(int argc, char **argv)
{
    offline_opts o = {0};
    char dir[] = "/tmp/leadscore-bench-XXXXXX", csv[600], data[600];
    uint64_t rows = 0;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    if (!mkdtemp(dir))
        return cli_error("bench", CLI_FAIL, "cannot make a temporary directory");
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
    if (generate(csv, o.customers, &rows, &first_ms, &last_ms) != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "cannot write %s", csv);
        goto done;
    }
    const char *imp[] = {"import", "--data", data, "--quiet", csv, NULL};
    int64_t t0 = timefmt_mono_ns();
    if (run_self(imp) != 0) {
        rc = cli_error("bench", CLI_FAIL, "leadscore import failed");
        goto done;
    }
    double import_s = (double)(timefmt_mono_ns() - t0) / 1e9;
    if (strcmp(o.workload, "import") == 0) {
        report(&o, "rows", rows, import_s, 0, NULL);
        goto done;
    }
    if (o.data && write_span(data, o.customers, first_ms, last_ms) != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "cannot write %s/" SPAN_FILE, data);
        goto done;
    }
rescore:;
    const char *warm[] = {"rescore", "--data", data, "--quiet", "--out", "/dev/null", NULL};
    run_self(warm); /* warm the page cache, as a store in service is */
    t0 = timefmt_mono_ns();
    if (run_self(warm) != 0) {
        rc = cli_error("bench", CLI_FAIL, "leadscore rescore failed");
        goto done;
    }
    double rescore_s = (double)(timefmt_mono_ns() - t0) / 1e9;
    int64_t asof_ms = first_ms + (last_ms - first_ms) / 2;
    rescore_summary asof;
    if (rescore_asof(data, asof_ms, &asof) != LS_OK) {
        rc = cli_error("bench", CLI_FAIL, "rescore as of %" PRId64 " failed", asof_ms);
        goto done;
    }
    report(&o, "customers", customers_in(data), rescore_s, asof_ms, &asof);
done:;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 && !o.quiet)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    return rc;
}
