/* bench_offline.h -- `leadscore bench --workload import|rescore`: the
 * offline jobs, timed on a generated shop (see bench_offline.c). */
#ifndef LS_BENCH_OFFLINE_H
#define LS_BENCH_OFFLINE_H

#include <signal.h>

/* 1 when name is an offline workload: "import" or "rescore". */
int bench_offline_workload(const char *name);

/* 1 when argv's last --workload (the one that counts) is an offline
 * workload. */
int bench_offline_wanted(int argc, char **argv);

/* Runs it; an exit status (0, 1, 2).  When *stop is set meanwhile (a
 * signal), the job stops at its next step, removes its temporary files
 * and returns 1 without figures. */
int bench_offline(int argc, char **argv, volatile sig_atomic_t *stop);

#endif
