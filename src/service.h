/* service.h -- the state one running `leadscore serve` shares between its
 * threads, and the small internal message format they pass each other.
 *
 * Threads (see server.c for the picture):
 *   server loop  owns the client sockets, answers single-customer reads
 *                inline, forwards batch work to the workers;
 *   workers      decode and validate batches, answer batched reads;
 *   scanners     run whole-store scans (kpis), each with its own read
 *                snapshot, so a scan never holds up track or score;
 *   writer       owns every LMDB write and commits in groups.
 * Nothing here is global: server.c allocates one service and hands it to
 * each thread.  service.c keeps the model handle: the reference-counted
 * active model and its swaps; it calls nobody above it (server, ops,
 * workers, writer, retraining), so they all depend on it, never on each
 * other through it. */
#ifndef LS_SERVICE_H
#define LS_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "model.h"
#include "stats.h"
#include "store.h"

/* inproc endpoints between the threads */
#define SERVICE_EP_WORK "inproc://leadscore-work"
#define SERVICE_EP_READS "inproc://leadscore-reads" /* read batches: workers take these first */
#define SERVICE_EP_REPLIES "inproc://leadscore-replies"
#define SERVICE_EP_WRITER "inproc://leadscore-writer"
#define SERVICE_EP_WRITER_BULK "inproc://leadscore-writer-bulk" /* PULL batches: after acked jobs */
#define SERVICE_EP_PULLWORK "inproc://leadscore-pullwork" /* PULL batches to the workers: after requests */
#define SERVICE_EP_SCAN "inproc://leadscore-scan"
#define SERVICE_EP_GATEWAY "inproc://leadscore-gateway" /* cluster mode: track batches to the log (gateway.h) */

/* Queue bounds between the threads, in messages.  Bounded queues are what
 * turn a flood on the PULL socket into TCP back-pressure on the senders
 * instead of memory growth: the loop reads PULL only while the work queue
 * has room, and workers block when the writer is this far behind. */
#define SERVICE_WORK_HWM 1000
#define SERVICE_WRITER_HWM 64
/* PULL batches queued for the workers: a few each, so a flood waits in
 * ZeroMQ's and the kernel's buffers, not ahead of acknowledged requests */
#define SERVICE_PULLWORK_HWM 8

/* What the first frame of an internal message says. */
enum {
    META_REQUEST = 'R',     /* server loop -> worker or scanner: [meta, envelope..., body] */
    META_READS = 'B',       /* server loop -> worker: [meta, readbatch] (readbatch.h) */
    META_READ_REPLIES = 'a',/* worker -> loop: [meta, the replies' readbatch]; start_ns: reads answered */
    META_PULL = 'P',        /* server loop -> worker: [meta, body] */
    META_REPLY = 'A',       /* worker/scanner/writer -> loop: [meta, envelope..., body] */
    META_WORKER_DONE = 'W', /* worker or scanner -> loop: exited */
    META_WRITER_DONE = 'D', /* writer -> loop: exited after its last commit */
    META_TRIGGERS = 'T'     /* writer -> loop: triggers up to seq start_ns are committed */
};

typedef struct {
    uint8_t kind;
    uint8_t op;
    uint8_t ok;
    uint8_t pad[5];
    int64_t start_ns;       /* monotonic time the request arrived */
} service_meta;

struct clusternode;

typedef struct service {
    config cfg;
    void *zmq;                    /* the ZeroMQ context */
    store *store;
    pthread_mutex_t model_lock;   /* guards `model` swaps */
    model *model;
    stats stats;
    atomic_int stopping;          /* set by the loop; workers exit once their queue is empty */
    atomic_uint_fast64_t pull_events_held; /* events of the PULL jobs workers hold (worker.c): counted
                                            * in stats.events_queued, not yet the writer's */
    struct clusternode *cluster;  /* cluster mode (clusternode.h); NULL: a single node */
} service;

/* Loads the configured --model (the built-in copy when the default path
 * does not exist; a file under model-max-bytes, a regular one) as the
 * first active model, before the store is open: no half-life check.
 * Call once, before any thread starts. */
int service_load_model(service *svc, char *err, size_t errlen);

/* The active model with one reference for the caller (model_unref it). */
model *service_model_acquire(service *svc);

/* Makes m the active model (taking over the caller's reference); requests
 * already holding the old one finish with it. */
void service_model_swap(service *svc, model *m);

/* Compare-and-swap: makes m the active model (taking over the caller's
 * reference) and returns 1 only when the active model is still expected;
 * otherwise returns 0, changes nothing and m stays the caller's.  For a
 * swap decided against the model that served some time ago (retraining):
 * a reload meanwhile wins. */
int service_model_swap_if(service *svc, const model *expected, model *m);

/* Makes m the active model (taking over the caller's reference) when its
 * half-lives are the store's; otherwise drops m, keeps the old model and
 * explains in err (LS_EINVAL). */
int service_install_model(service *svc, model *m, char *err, size_t errlen);

/* Loads the configured --model again (under model-max-bytes, a regular
 * file only) and makes it active, or leaves the old one in place and
 * explains why in err: an unreadable, oversize or invalid file, or
 * half-lives other than the store's. */
int service_reload_model(service *svc, char *err, size_t errlen);

#endif
