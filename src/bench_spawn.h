/* bench_spawn.h -- the server `leadscore bench --spawn` runs in-process
 * (bench_spawn.c): a store preloaded with the synthetic customer base
 * cust-1..cust-N (loadgen_customers.h), straight through the store API in
 * large no-sync transactions, then `serve` on loopback ephemeral ports in
 * a thread of this process.  A store can serve several servers one after
 * the other (bench --audiences restarts one per run). */
#ifndef LS_BENCH_SPAWN_H
#define LS_BENCH_SPAWN_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "server.h"

typedef struct {
    uint64_t customers;           /* the base to preload */
    uint64_t seed;                /* ... made from this seed */
    const char *const *sets;      /* --set NAME=VALUE serve options */
    int nsets;
    uint64_t headroom;            /* map bytes beyond the customer base for
                                     what the run adds (0: 512 MiB) */
    int show_progress;            /* a preload progress line on stderr */
    int quiet;                    /* no notes on stderr */
    volatile sig_atomic_t *stop;  /* set (Ctrl-C): give up preloading */
} bench_spawn_opts;

/* Removes directory dir and everything in it, in this process (no shell:
 * $TMPDIR may hold any byte), without following symbolic links; 0 or -1. */
int bench_remove_dir(const char *dir);

/* One store and the server running on it (zero it before use). */
typedef struct {
    server *srv;
    pthread_t thread;
    int running;
    int triggers;                 /* the running server has automation on */
    char dir[1024];
    int own_dir;                  /* a temporary directory: removed at stop */
} bench_spawned;

/* Takes data or, when data is NULL, a new temporary directory as sp's
 * store, and preloads o->customers customers unless it holds that many
 * already.  data must be a store the bench made (it holds the marker file
 * "bench-store") or a new or empty directory (made when missing, and
 * marked); anything else is refused with CLI_USAGE, so no real store gets
 * synthetic customers.  Returns an exit status (CLI_*; the reason is
 * printed). */
int bench_spawn_prepare(bench_spawned *sp, const bench_spawn_opts *o, const char *data);

/* Starts a server on sp's store: serve's defaults, loopback ephemeral
 * ports, log level warn, then o->sets, then extra (NULL, or a
 * NULL-terminated list of NAME=VALUE applied last).  An exit status. */
int bench_spawn_start(bench_spawned *sp, const bench_spawn_opts *o, const char *const *extra);

/* Stops the server and waits for its drain; the store stays.  Harmless
 * when none runs. */
void bench_spawn_halt(bench_spawned *sp);

/* Halts, and removes the store when it was a temporary directory. */
void bench_spawn_stop(bench_spawned *sp);

/* The running server's ROUTER and PULL endpoints. */
const char *bench_spawn_endpoint(const bench_spawned *sp);
const char *bench_spawn_pull_endpoint(const bench_spawned *sp);

#endif
