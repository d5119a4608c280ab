/* stats.h -- the service's counters and latency histograms.
 *
 * Event and commit counters are atomics, bumped by the writer thread.
 * Request counters and the per-op latency histograms belong to the server
 * loop thread alone (every reply passes through it), so they need no lock;
 * the `stats` op runs on that thread too. */
#ifndef LS_STATS_H
#define LS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "histogram.h"

#define STATS_MAX_OPS 32
#define STATS_LATENCY_BUCKETS 19   /* Prometheus histogram buckets, seconds: 10 us .. 10 s */
#define STATS_COMMIT_SIZE_BUCKETS 7
#define STATS_COMMIT_TIME_BUCKETS 10

/* Upper bounds of the fixed buckets (the Prometheus "le" labels). */
extern const double stats_latency_bounds[STATS_LATENCY_BUCKETS];
extern const double stats_commit_size_bounds[STATS_COMMIT_SIZE_BUCKETS];
extern const double stats_commit_time_bounds[STATS_COMMIT_TIME_BUCKETS];

typedef struct {
    atomic_uint_fast64_t events_accepted;
    atomic_uint_fast64_t events_duplicate;
    atomic_uint_fast64_t events_rejected;
    atomic_uint_fast64_t commits;
    atomic_uint_fast64_t commit_events;
    atomic_uint_fast64_t commit_ns;        /* total time inside commit calls */
    atomic_uint_fast64_t commit_failures;
    atomic_uint_fast64_t pull_batches;
    atomic_uint_fast64_t event_ids_pruned;
    atomic_uint_fast64_t log_gaps_refused;  /* cluster mode: log messages past a hole the writer would not apply */
    atomic_uint_fast64_t rejected_bad_request;  /* events rejected, by reason */
    atomic_uint_fast64_t rejected_too_large;
    atomic_uint_fast64_t commit_size_buckets[STATS_COMMIT_SIZE_BUCKETS]; /* not cumulative */
    atomic_uint_fast64_t commit_time_buckets[STATS_COMMIT_TIME_BUCKETS];
    /* the retraining thread (retrain.h): */
    atomic_uint_fast64_t retrain_runs;         /* retrainings that trained and decided */
    atomic_uint_fast64_t retrain_swaps;        /* ... of which swapped the new model in */
    atomic_uint_fast64_t retrain_failures;     /* retrainings that could not train */
    atomic_uint_fast64_t retrain_auc_new;      /* last run's hold-out AUC: the new model (double bits) */
    atomic_uint_fast64_t retrain_auc_serving;  /* ... and the model serving then (double bits) */
    /* server loop thread only: */
    uint64_t requests[STATS_MAX_OPS];
    uint64_t errors[STATS_MAX_OPS];
    hist *latency[STATS_MAX_OPS];          /* nanoseconds */
    uint64_t latency_buckets[STATS_MAX_OPS][STATS_LATENCY_BUCKETS]; /* not cumulative */
    double latency_sum_s[STATS_MAX_OPS];
    uint64_t replies_dropped_full;         /* the client's queue was at --client-hwm */
    uint64_t replies_dropped_gone;         /* the client had disconnected */
    uint64_t envelopes_refused;            /* requests with an envelope over --max-envelope */
    uint64_t scans_refused;                /* kpis over --max-scans */
    uint64_t reads_by_workers;             /* single-customer reads a worker answered (server.c) */
    int64_t started_mono_ms;               /* the monotonic clock at start: uptime ignores clock steps */
    /* the writer thread (writer.h), appended: events it could not store,
     * by reason, whether or not a reply told a client (PULL has none) */
    atomic_uint_fast64_t events_unstored_full;        /* the map was at map-max */
    atomic_uint_fast64_t events_unstored_unavailable; /* the disk was full, the commit failed (cluster: the log did not confirm them) */
    atomic_uint_fast64_t events_unstored_failed;      /* their own job failed alone (bad key, write error) */
    atomic_uint_fast64_t jobs_failed_alone;           /* jobs left out of their group (bad key, write error) */
    /* automation (automation.h) */
    atomic_uint_fast64_t triggers_moments;       /* moments fired into the outbox */
    atomic_uint_fast64_t triggers_enters;        /* audience enters ... */
    atomic_uint_fast64_t triggers_exits;         /* ... and exits */
    atomic_uint_fast64_t triggers_suppressed;    /* occurrences inside a cool-down: not fired */
    atomic_uint_fast64_t triggers_pruned;        /* left the outbox by age or count */
    atomic_uint_fast64_t automation_evaluations; /* customers evaluated (events, timers, sweeps) */
    atomic_uint_fast64_t automation_timers;      /* timer re-evaluations */
    atomic_uint_fast64_t automation_sweeps;      /* sweep passes started */
    atomic_uint_fast64_t automation_state_writes; /* customer states written or deleted */
    atomic_uint_fast64_t automation_timer_moves;  /* timers set or moved */
    atomic_uint_fast64_t events_queued;          /* gauge: events handed towards the writer, not yet
                                                  * stored or dropped (each job's, until it is freed) */
    atomic_uint_fast64_t automation_failures;    /* background automation txns that failed */
} stats;

/* Prepares counters and one histogram per op; mono_ms is the monotonic
 * clock now (uptime counts from it).  0 or LS_ENOMEM. */
int stats_init(stats *s, int nops, int64_t mono_ms);
void stats_destroy(stats *s);

/* Server loop thread: counts a finished request of op with its latency. */
void stats_request(stats *s, int op, int ok, uint64_t latency_ns);

/* Writer thread: counts one commit of events events that took ns. */
void stats_commit(stats *s, uint64_t events, uint64_t ns);

/* A PULL message refused whole: one rejected event, counted as `stats`
 * shows it and under its reason for /metrics (too_large or bad_request). */
void stats_message_rejected(stats *s, int too_large);

/* A double kept in an atomic 64-bit counter (its bits), for gauges one
 * thread sets and another reads. */
void stats_store_double(atomic_uint_fast64_t *slot, double v);
double stats_load_double(const atomic_uint_fast64_t *slot);

#endif
