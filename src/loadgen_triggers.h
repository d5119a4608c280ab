/* loadgen_triggers.h -- the trigger consumer of the `triggers` workload
 * (loadgen_triggers.c): a thread that long-polls the server's "triggers"
 * op through a run and times, for every enter trigger of the bench's
 * audience, the way from its event's due time to its arrival.  Internal to
 * the load generator: callers use loadgen.h (which also declares the
 * audience and automation helpers this file implements).
 *
 * The controller starts it before the clients (it first reads where the
 * outbox ends, so only this run's triggers are read) and, once the
 * clients are done, tells it how many events were acknowledged; it then
 * drains until every one has its trigger or cfg->timeout_ms passes
 * without a new one. */
#ifndef LS_LOADGEN_TRIGGERS_H
#define LS_LOADGEN_TRIGGERS_H

#include "loadgen_client.h"

/* Starts run's consumer into *out.  0, or a status with the reason in
 * why (no reply, or an error reply to the first "triggers" request). */
int lg_consumer_start(lg_run *run, lg_consumer **out, char *why, size_t cap);

/* Tells c that the clients are done and `expected` events were
 * acknowledged, waits for it to drain and stop, and puts its figures
 * into out (which takes the latency histogram). */
void lg_consumer_finish(lg_consumer *c, uint64_t expected, loadgen_result *out);

/* Stops c at once when it still runs (a failed set-up), frees it and
 * NULLs *c; NULL is harmless. */
void lg_consumer_free(lg_consumer **c);

#endif
