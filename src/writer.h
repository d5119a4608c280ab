/* writer.h -- the single writer thread and its group commit.
 *
 * Workers turn each accepted track batch into a writer_job and hand the
 * pointer over an inproc socket.  The writer takes every job waiting (up to
 * commit-max-events, for at most commit-window), applies them all in ONE
 * LMDB write transaction, commits and syncs it, and only then sends each
 * job's reply back through the server loop.  So an `ok:true` always means
 * the events are on disk, and one fsync is shared by many requests.
 * Consecutive track jobs of a group are applied as one run, their events
 * sorted by customer (ids claimed and customers handed to automation in
 * arrival order), so a customer's record is read and written once per
 * run; the outcome is the same as applying them one by one.  The writer's
 * queue is deep enough that a backlog of PULL batches makes groups of
 * commit-max-events: a page written by a commit carries more events.
 *
 * Failures: every key a job would write is checked before the
 * transaction; a job that still fails inside it (a write LMDB refuses) is
 * left out and the group applied again without it, so it fails alone.  A
 * full map grows (to map-max) and the group is retried; at map-max, or on
 * a full disk, the group fails with LS_EFULL / LS_EUNAVAIL ("unavailable"
 * on the wire) and reads go on, and each forget in it runs alone, past
 * map-max by a small reserve if it must (erasure may not wait).  A job
 * without a reply (PULL) that is not stored is counted in stats by reason
 * (events_unstored_*). */
#ifndef LS_WRITER_H
#define LS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "event.h"
#include "service.h"

/* The writer thread's name (top -H, perf; `bench` reads its CPU time). */
#define WRITER_THREAD_NAME "ls-writer"

/* What a job asks of the writer. */
enum { JOB_EVENTS, JOB_ALIAS, JOB_FORGET, JOB_AUDIENCE_PUT, JOB_AUDIENCE_DELETE, JOB_PURGE };

typedef struct {
    int kind;                /* JOB_EVENTS, JOB_ALIAS (subject -> object), JOB_FORGET (subject) */
    ls_str subject, object;  /* alias: from, to; forget: the customer; audience: name, rule */
    int result;              /* alias: merged; forget, audience delete: deleted; audience put: created */
    int changed;             /* audience put: the rule changed (members are rebuilt) */
    int ready;               /* audience put: its first pass was done when the reply went */
    int64_t reply_by_ms;     /* audience put: reply at the latest then, ready or not */
    char why[200];           /* a refusal's reason, for the reply */
    int status;              /* this job's outcome, set by the writer: 0 stored, else why not */
    int failed_alone;        /* the job was left out of its group (its own failure) */
    int reply;               /* 0 for fire-and-forget (PULL) batches */
    int op;
    int64_t start_ns;
    int64_t received_ms;     /* idempotency keys are dated from this */
    size_t nevents;
    ls_event *events;        /* strings point into this job's own memory */
    atomic_uint_fast64_t *queued; /* a gauge its nevents count in until the job is freed, or NULL */
    uint32_t accepted;       /* filled by the writer */
    uint32_t duplicates;
    uint32_t nrejected;      /* rejected at validation, already encoded: */
    const uint8_t *rejected; /* msgpack values, rejected_len bytes */
    size_t rejected_len;
    const uint8_t *id;       /* the request's msgpack "id", or NULL */
    size_t id_len;
    const uint8_t *envelope; /* routing frames, each as u32 length + bytes */
    size_t envelope_len;
    /* Cluster mode: a job made from message log_seq (> 0) of log
     * partition log_part.  The writer applies it only when log_seq is past
     * the store's position for that partition, and moves the position in
     * the same transaction (exactly once across redeliveries and
     * restarts); log_skip says it was already applied, or (log_gap) that
     * it lies past a hole and was not applied (stats: log_gaps_refused). */
    uint32_t log_part;
    uint64_t log_seq;
    int log_skip;
    int log_gap;             /* ... because log_seq is past a hole: not applied */
    /* JOB_PURGE (log_seq 0): this node gave up partition log_part of
     * log_nparts; the writer marks it for purging (store_wtxn_purge_mark)
     * and erases its customers between groups, a chunk at a time. */
    uint32_t log_nparts;
} writer_job;

/* Builds a job owning copies of everything it points at (one allocation).
 * Returns NULL when out of memory.  Free with writer_job_free. */
writer_job *writer_job_new(const ls_event *events, size_t n,
                           const void *envelope, size_t envelope_len,
                           const void *id, size_t id_len,
                           const void *rejected, size_t rejected_len, uint32_t nrejected);
void writer_job_free(writer_job **job);

/* A JOB_ALIAS, JOB_FORGET, JOB_AUDIENCE_PUT or JOB_AUDIENCE_DELETE job
 * (object is ignored for forget and audience delete). */
writer_job *writer_job_identity(int kind, const ls_str *subject, const ls_str *object,
                                const void *envelope, size_t envelope_len, const void *id, size_t id_len);

typedef struct writer writer;

/* Applies jobs[0..n) as one group commit, as the writer thread does for
 * each group, without replying: sets each job's status (and accepted,
 * duplicates, result), adds to svc->stats and returns the group's status
 * (0 when the transaction committed).  Uses svc->store, svc->cfg.map_max
 * and svc->cfg.data_dir only.  For the writer thread, and for tests. */
int writer_apply(service *svc, writer_job **jobs, size_t n);

/* Starts the writer thread; it binds SERVICE_EP_WRITER (and, with nbulk
 * > 0, SERVICE_EP_WRITER_BULK) before this returns, and exits after
 * nproducers producers have sent writer_finish on the first and nbulk on
 * the second.  Fire-and-forget (PULL) jobs go to the second: each group
 * takes the jobs waiting on the first, then the second's, and while
 * acknowledged jobs keep coming only pull-max-events events of those, so
 * an ack does not wait behind a PULL backlog.
 * Between groups it also erases, a chunk at a time, the customers of
 * partitions marked for purging (cluster mode: JOB_PURGE, or a purge a
 * restart interrupted), each as a forget erases it.
 * With svc->cfg.triggers on it also runs marketing automation
 * (automation.h): every group is evaluated before its commit, and timers,
 * sweeps and outbox pruning run between groups; after a commit that
 * appended triggers it sends META_TRIGGERS (the newest seq in start_ns)
 * to the server loop, which wakes waiting `triggers` requests. */
int writer_start(writer **out, service *svc, int nproducers, int nbulk);

/* Waits for the thread to exit (it sends META_WRITER_DONE first). */
void writer_join(writer **w);

/* Writes the reply to job's request into cw (reset first) as the writer
 * answers it from job's outcome: {ok, id, ...} with accepted, duplicates
 * and rejected (track), merged or deleted (alias, forget), created...
 * (audience), or the error of job->status (job->why when set).  The map is
 * left open for more keys: close it with cw_end. */
void writer_reply_begin(codec_writer *cw, const writer_job *job);

/* Sends the reply in cw to job's client through the server loop
 * (replies: a PUSH socket connected to SERVICE_EP_REPLIES). */
void writer_reply_send(void *replies, const codec_writer *cw, const writer_job *job);

/* Producer side, on the producer's own PUSH socket connected to
 * SERVICE_EP_WRITER (or SERVICE_EP_WRITER_BULK): hand a job over (the
 * writer then owns it), or say that this producer will send no more. */
int writer_submit(void *push, writer_job *job);
int writer_finish(void *push);

#endif
