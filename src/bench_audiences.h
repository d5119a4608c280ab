/* bench_audiences.h -- `leadscore bench --audiences N` for the write
 * workloads (bench_audiences.c): what marketing automation costs the write
 * path.  One workload runs against three in-process servers, each on a
 * store of its own preloaded alike:
 *   (a) --triggers off                 the baseline
 *   (b) triggers on, no audience       moments, per-customer state, timers
 *   (c) triggers on, N audiences       plus N live audiences (the first N
 *                                      of loadgen_audiences)
 * in R rounds, the order rotated each round, a server started for each run
 * and the run begun only once its automation is at rest (the sweep a
 * starting server makes over its store).  It prints every run, the median
 * of each configuration and the ratios b/a and c/a. */
#ifndef LS_BENCH_AUDIENCES_H
#define LS_BENCH_AUDIENCES_H

#include "bench_spawn.h"
#include "loadgen.h"

typedef struct {
    loadgen_config lg;          /* the workload (endpoints are set per run) */
    bench_spawn_opts spawn;     /* the stores and servers */
    const char *data;           /* NULL: temporary stores; else DIR, holding
                                   DIR/triggers-off, DIR/triggers-on and
                                   DIR/audiences-N (reused when they hold
                                   the customers) */
    int audiences;              /* N, 1..LOADGEN_AUDIENCES */
    int rounds;                 /* R >= 1 */
    const char *json_path;      /* NULL, a file, or "-" for stdout */
    int quiet;                  /* no notes or progress on stderr */
    int progress;               /* a live progress line on stderr */
} bench_audiences_opts;

/* 1 when workload w can be compared this way (it writes: track, mixed,
 * pull). */
int bench_audiences_workload_ok(loadgen_workload w);

/* Runs the comparison; an exit status (CLI_*): 1 when a run answered no
 * request, failed to start, or lost pull events. */
int bench_audiences_run(const bench_audiences_opts *o);

#endif
