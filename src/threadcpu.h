/* threadcpu.h -- the CPU time of this process's threads by name, from
 * /proc/self/task (Linux).  `leadscore bench` with a spawned server reads
 * its `ls-writer` thread before and after a PULL run, so the writer's cost
 * per event is a figure of its own: the writer bounds fire-and-forget
 * ingestion, and its CPU time does not move with the machine's other load
 * as a rate does. */
#ifndef LS_THREADCPU_H
#define LS_THREADCPU_H

/* *seconds: user + system time of every thread of this process whose name
 * (`comm`, as prctl(PR_SET_NAME) set it) is name, summed; threads that
 * ended are not counted.  LS_OK, LS_ENOTFOUND (no such thread) or
 * LS_EUNAVAIL (no /proc). */
int threadcpu_seconds(const char *name, double *seconds);

#endif
