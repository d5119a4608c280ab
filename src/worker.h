/* worker.h -- the worker threads: batched reads, and decoding plus
 * validation of track batches before they go to the writer.
 *
 * A worker takes [meta, envelope..., body] messages from the server loop
 * (SERVICE_EP_WORK), answers through SERVICE_EP_REPLIES, and hands event
 * batches to the writer (SERVICE_EP_WRITER).  Once the loop sets service.stopping and
 * its queue is empty, it tells the writer it is finished, reports
 * META_WORKER_DONE and exits.  Scanners (worker_start_scanner) run the
 * same loop for whole-store scans, off the workers' queue. */
#ifndef LS_WORKER_H
#define LS_WORKER_H

#include "service.h"

typedef struct worker worker;

/* Starts one worker thread.  0, or LS_ENOMEM / LS_EINTERNAL. */
int worker_start(worker **out, service *svc);

/* Starts one scanner: the same loop, fed from SERVICE_EP_SCAN with at most
 * queue_max messages waiting, with its own read handle and no connection
 * to the writer (scans only read).  0, or LS_ENOMEM / LS_EINTERNAL. */
int worker_start_scanner(worker **out, service *svc, int queue_max);

/* Waits for the thread to exit and frees it; NULLs *w. */
void worker_join(worker **w);

#endif
