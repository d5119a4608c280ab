/* bench_offline.c -- the offline workloads of `leadscore bench`: `import`
 * (CSV rows/s into a fresh store) and `rescore` (customers/s from a warm
 * store).  A synthetic shop is generated with shopgen, then the real
 * `leadscore import` and `leadscore rescore` commands run as child
 * processes of this same binary, timed from outside, so the figures are
 * what an ops team's cron job would see. */
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
#include "leadscore/error.h"
#include "shopgen.h"
#include "store.h"
#include "timefmt.h"

typedef struct {
    const char *workload;     /* "import" or "rescore" */
    uint64_t customers;
    const char *json_path;
    int quiet;
} offline_opts;

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

static int generate(const char *path, uint64_t customers, uint64_t *rows)
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

static void report(const offline_opts *o, const char *item, uint64_t n, double secs)
{
    double rate = secs > 0 ? (double)n / secs : 0;
    printf("workload %s  customers generated %" PRIu64 "\n", o->workload, o->customers);
    printf("%-22s %12" PRIu64 "\n%-22s %12.2f\n%s/s%*s %12.0f\n", item, n, "seconds", secs, item,
           (int)(22 - strlen(item) - 2), "", rate);
    if (o->json_path) {
        FILE *f = strcmp(o->json_path, "-") ? fopen(o->json_path, "w") : stdout;
        if (f) {
            fprintf(f, "{\"workload\":\"%s\",\"customers_generated\":%" PRIu64 ",\"%s\":%" PRIu64
                       ",\"seconds\":%.3f,\"per_second\":%.0f}\n", o->workload, o->customers, item, n, secs, rate);
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
                                         {NULL, 0, NULL, 0}};
    int c;
    o->customers = 100000;
    optind = 0;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'w') o->workload = optarg;
        else if (c == 'n') o->customers = strtoull(optarg, NULL, 10);
        else if (c == 'j') o->json_path = optarg;
        else if (c == 'q') o->quiet = 1;
        else return cli_error("bench", CLI_USAGE, "the import and rescore workloads take --customers, --json and --quiet");
    }
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
    snprintf(data, sizeof data, "%s/data", dir);
    if (!o.quiet)
        fprintf(stderr, "bench: generating a shop of %" PRIu64 " customers\n", o.customers);
    if (generate(csv, o.customers, &rows) != LS_OK) {
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
        report(&o, "rows", rows, import_s);
        goto done;
    }
    const char *warm[] = {"rescore", "--data", data, "--quiet", "--out", "/dev/null", NULL};
    run_self(warm); /* warm the page cache, as a store in service is */
    t0 = timefmt_mono_ns();
    if (run_self(warm) != 0) {
        rc = cli_error("bench", CLI_FAIL, "leadscore rescore failed");
        goto done;
    }
    report(&o, "customers", customers_in(data), (double)(timefmt_mono_ns() - t0) / 1e9);
done:;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0 && !o.quiet)
        fprintf(stderr, "bench: could not remove %s\n", dir);
    return rc;
}
