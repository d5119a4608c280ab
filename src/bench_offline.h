/* bench_offline.h -- `leadscore bench --workload import|rescore`: the
 * offline jobs, timed on a generated shop (see bench_offline.c). */
#ifndef LS_BENCH_OFFLINE_H
#define LS_BENCH_OFFLINE_H

/* 1 when argv asks for an offline workload. */
int bench_offline_wanted(int argc, char **argv);

/* Runs it; an exit status (0, 1, 2). */
int bench_offline(int argc, char **argv);

#endif
