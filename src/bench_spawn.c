/* bench_spawn.c -- the in-process server of `leadscore bench` (see
 * bench_spawn.h): the store directory, its preload with the synthetic
 * customer base (each customer's events into its history, then its
 * record, committed every PRELOAD_COMMIT_EVERY customers without sync,
 * in key order so LMDB appends), and a `serve` running in a thread.
 *
 * A store the bench made carries a marker file (BENCH_MARKER); --data
 * takes only such a store, or a new or empty directory: the bench writes
 * synthetic customers and events, and must never do so into a real one. */
#define _GNU_SOURCE
#include "bench_spawn.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "leadscore/error.h"
#include "loadgen.h"
#include "model.h"
#include "store.h"
#include "timefmt.h"

#define PRELOAD_COMMIT_EVERY 100000

/* The file in a store's directory that says the bench made it. */
#define BENCH_MARKER "bench-store"

/* ------------------------------------------------------------------ */
/* The preload                                                         */
/* ------------------------------------------------------------------ */

typedef struct {
    store *st;
    store_wtxn *txn;
    store_held held;
    const feature_decay *decay;
    uint64_t seed, done, total;
    int64_t now_ms, started_ns, shown_ns;
    int show;
    volatile sig_atomic_t *stop;
    int rc;
} preload_ctx;

static void preload_show(preload_ctx *p)
{
    int64_t now = timefmt_mono_ns();
    if (!p->show || (now - p->shown_ns < 1000000000 && p->done < p->total))
        return;
    p->shown_ns = now;
    double secs = (double)(now - p->started_ns) / 1e9, rate = secs > 0 ? (double)p->done / secs : 0;
    fprintf(stderr, "\r\033[K  preloading %llu / %llu customers (%.0f%%)  %.0f/s  ETA %.0f s",
            (unsigned long long)p->done, (unsigned long long)p->total, 100.0 * (double)p->done / (double)p->total,
            rate, rate > 0 ? (double)(p->total - p->done) / rate : 0);
    fflush(stderr);
}

/* Adds one event to its customer's history, as the writer does. */
static int preload_event(void *arg, const ls_event *ev)
{
    preload_ctx *p = arg;
    int dup;
    if (p->rc == LS_OK)
        p->rc = store_wtxn_add_event(p->txn, &p->held, ev, &dup);
    return p->rc;
}

/* Writes customer k's history and record; commits every
 * PRELOAD_COMMIT_EVERY. */
static int preload_one(void *arg, uint64_t k)
{
    preload_ctx *p = arg;
    if (p->stop && *p->stop)
        return p->rc = LS_ETIMEOUT;
    loadgen_customer_events(k, p->seed, p->now_ms, preload_event, p);
    if (p->rc == LS_OK)
        p->rc = store_wtxn_put_back(p->txn, &p->held);
    if (p->rc != LS_OK)
        return p->rc;
    if (++p->done % PRELOAD_COMMIT_EVERY == 0) {
        if ((p->rc = store_write_commit(&p->txn)) || (p->rc = store_write_begin(p->st, &p->txn)))
            return p->rc;
        preload_show(p);
    }
    return 0;
}

/* Loads the model the server will use, to learn the half-lives. */
static int load_decay(const config *cfg, feature_decay *out, char *err, size_t errlen)
{
    model *m = NULL;
    int rc = model_load_default(cfg->model_path, &m, NULL, err, errlen);
    if (rc)
        return rc;
    *out = *model_decay(m);
    model_unref(&m);
    return LS_OK;
}

/* Fills the store in cfg->data_dir with cust-1..cust-N, unless it holds
 * that many already.  Returns an exit status. */
static int preload(const bench_spawn_opts *o, const config *cfg)
{
    char err[512] = "";
    feature_decay decay;
    store_options sopt = {.map_size = cfg->map_size, .no_sync = 1};
    store_stats ss;
    preload_ctx p = {.seed = o->seed, .total = o->customers, .now_ms = timefmt_now_ms(),
                     .started_ns = timefmt_mono_ns(), .show = o->show_progress, .decay = &decay, .stop = o->stop};
    if (load_decay(cfg, &decay, err, sizeof err) || store_open(&p.st, cfg->data_dir, &sopt, &decay, err, sizeof err))
        return cli_error("bench", CLI_FAIL, "%s", err);
    if (store_stat(p.st, &ss) == LS_OK && ss.customers >= o->customers) {
        if (!o->quiet)
            fprintf(stderr, "reusing the store in %s: %llu customers\n", cfg->data_dir,
                    (unsigned long long)ss.customers);
        store_close(&p.st);
        return CLI_OK;
    }
    decay = *store_decay(p.st);
    store_held_init(&p.held);
    p.rc = store_write_begin(p.st, &p.txn);
    if (p.rc == LS_OK)
        loadgen_customers_in_key_order(o->customers, preload_one, &p);
    if (p.rc == LS_OK)
        p.rc = store_write_commit(&p.txn);
    store_write_abort(&p.txn);
    store_held_free(&p.held);
    store_close(&p.st);
    if (p.show)
        fprintf(stderr, "\r\033[K");
    if (p.rc == LS_ETIMEOUT && o->stop && *o->stop)
        return cli_error("bench", CLI_FAIL, "interrupted while preloading");
    if (p.rc)
        return cli_error("bench", CLI_FAIL, "preloading the store in %s: %s", cfg->data_dir, ls_strerror(p.rc));
    if (!o->quiet)
        fprintf(stderr, "preloaded %llu customers in %.2f s\n", (unsigned long long)p.done,
                (double)(timefmt_mono_ns() - p.started_ns) / 1e9);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* The server                                                          */
/* ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int bench_remove_dir(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

static void *server_thread(void *arg)
{
    server_run(arg);
    return NULL;
}

/* Applies one NAME=VALUE serve option (what = "--set" for messages). */
static int apply_set(config *cfg, const char *set, const char *what)
{
    char name[64], err[512] = "";
    const char *eq = strchr(set, '=');
    if (!eq)
        return cli_error("bench", CLI_USAGE, "%s: \"%s\" is not NAME=VALUE", what, set);
    snprintf(name, sizeof name, "%.*s", (int)(eq - set), set);
    if (config_set(cfg, name, eq + 1, err, sizeof err) != LS_OK)
        return cli_error("bench", CLI_USAGE, "%s %s: %s", what, set, strcmp(err, "") ? err : "no such serve option");
    return CLI_OK;
}

/* The spawned server's settings: defaults, loopback ephemeral ports,
 * then the user's --set options and the bench's own, on dir. */
static int spawn_config(const bench_spawn_opts *o, const char *const *extra, const char *dir, config *cfg)
{
    char err[512];
    int rc = CLI_OK;
    config_defaults(cfg);
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:*");
    snprintf(cfg->pull, sizeof cfg->pull, "tcp://127.0.0.1:*");
    config_set(cfg, "log-level", "warn", err, sizeof err); /* keep the report readable */
    for (int i = 0; rc == CLI_OK && i < o->nsets; i++)
        rc = apply_set(cfg, o->sets[i], "--set");
    for (int i = 0; rc == CLI_OK && extra && extra[i]; i++)
        rc = apply_set(cfg, extra[i], "bench");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
    /* room for the customer base (records are 330-450 bytes) and the run;
       the map only reserves address space, the file grows as it is used */
    uint64_t need = o->customers * 1024 + (o->headroom ? o->headroom : 512ULL << 20);
    if (cfg->map_size < need)
        cfg->map_size = need;
    return rc;
}

/* ------------------------------------------------------------------ */
/* The store directory                                                 */
/* ------------------------------------------------------------------ */

/* 1 when dir is missing or holds nothing. */
static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;
    if (!d)
        return errno == ENOENT;
    while (empty && (e = readdir(d)))
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Takes dir (--data) as the bench's store: one it made before (its
 * marker is there), or a new or empty directory, made and marked here.
 * Anything else is refused.  Returns an exit status. */
static int claim_dir(const char *dir, const bench_spawn_opts *o)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/" BENCH_MARKER, dir);
    if (access(path, F_OK) == 0)
        return CLI_OK;
    if (!dir_is_empty(dir))
        return cli_error("bench", CLI_USAGE, "--data %s holds something other than a store `leadscore bench` made "
                         "(it has no %s file): the bench writes synthetic customers and events into its store, so "
                         "give a new or empty directory", dir, BENCH_MARKER);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return cli_error("bench", CLI_FAIL, "cannot make %s: %s", dir, strerror(errno));
    FILE *f = fopen(path, "w");
    if (!f)
        return cli_error("bench", CLI_FAIL, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "a store made by `leadscore bench`: synthetic customers cust-1..cust-%llu (seed %llu) and the "
               "events of its runs\n", (unsigned long long)o->customers, (unsigned long long)o->seed);
    if (fclose(f) != 0)
        return cli_error("bench", CLI_FAIL, "cannot write %s: %s", path, strerror(errno));
    return CLI_OK;
}

int bench_spawn_prepare(bench_spawned *sp, const bench_spawn_opts *o, const char *data)
{
    config cfg;
    memset(sp, 0, sizeof *sp);
    if (data) {
        snprintf(sp->dir, sizeof sp->dir, "%s", data);
        int rc = claim_dir(sp->dir, o);
        if (rc != CLI_OK)
            return rc;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(sp->dir, sizeof sp->dir, "%s/leadscore-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(sp->dir))
            return cli_error("bench", CLI_FAIL, "cannot make a temporary directory: %s", strerror(errno));
        sp->own_dir = 1;
    }
    int rc = spawn_config(o, NULL, sp->dir, &cfg);
    return rc == CLI_OK ? preload(o, &cfg) : rc;
}

int bench_spawn_start(bench_spawned *sp, const bench_spawn_opts *o, const char *const *extra)
{
    config cfg;
    char err[512] = "";
    int rc = spawn_config(o, extra, sp->dir, &cfg);
    if (rc != CLI_OK)
        return rc;
    if (server_start(&sp->srv, &cfg, err, sizeof err) != LS_OK)
        return cli_error("bench", CLI_FAIL, "cannot start the server: %s", err);
    if (pthread_create(&sp->thread, NULL, server_thread, sp->srv) != 0)
        return cli_error("bench", CLI_FAIL, "cannot start the server thread");
    sp->running = 1;
    sp->triggers = cfg.triggers;
    return CLI_OK;
}

void bench_spawn_halt(bench_spawned *sp)
{
    if (sp->running) {
        server_request_stop(sp->srv);
        pthread_join(sp->thread, NULL);
        sp->running = 0;
    }
    server_destroy(&sp->srv);
}

void bench_spawn_stop(bench_spawned *sp)
{
    bench_spawn_halt(sp);
    if (sp->own_dir && sp->dir[0])
        bench_remove_dir(sp->dir);
    sp->dir[0] = '\0';
}

const char *bench_spawn_endpoint(const bench_spawned *sp)
{
    return server_endpoint(sp->srv);
}

const char *bench_spawn_pull_endpoint(const bench_spawned *sp)
{
    return server_pull_endpoint(sp->srv);
}
