/* stats.c -- set-up and recording for the counters in stats.h. */
#include "stats.h"

#include <string.h>

#include "leadscore/error.h"

/* Latencies are tracked from 1 us to 100 s with 3 significant digits. */
#define LATENCY_LOWEST_NS 1000ULL
#define LATENCY_HIGHEST_NS 100000000000ULL

/* From 10 us: a score from the page cache answers in tens of microseconds. */
const double stats_latency_bounds[STATS_LATENCY_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const double stats_commit_size_bounds[STATS_COMMIT_SIZE_BUCKETS] = {1, 10, 100, 1000, 10000, 100000, 1000000};
const double stats_commit_time_bounds[STATS_COMMIT_TIME_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};

/* Index of the first bound >= v, or n when v is above them all. */
static int bucket_of(const double *bounds, int n, double v)
{
    int i = 0;
    while (i < n && v > bounds[i])
        i++;
    return i;
}

int stats_init(stats *s, int nops, int64_t mono_ms)
{
    memset(s, 0, sizeof *s);
    s->started_mono_ms = mono_ms;
    for (int i = 0; i < nops && i < STATS_MAX_OPS; i++) {
        int rc = hist_init(&s->latency[i], LATENCY_LOWEST_NS, LATENCY_HIGHEST_NS, 3);
        if (rc) {
            stats_destroy(s);
            return rc;
        }
    }
    return LS_OK;
}

void stats_destroy(stats *s)
{
    for (int i = 0; i < STATS_MAX_OPS; i++)
        hist_destroy(&s->latency[i]);
}

void stats_request(stats *s, int op, int ok, uint64_t latency_ns)
{
    if (op < 0 || op >= STATS_MAX_OPS)
        return;
    s->requests[op]++;
    if (!ok)
        s->errors[op]++;
    if (s->latency[op])
        hist_record(s->latency[op], latency_ns < LATENCY_LOWEST_NS ? LATENCY_LOWEST_NS : latency_ns);
    double secs = (double)latency_ns / 1e9;
    int b = bucket_of(stats_latency_bounds, STATS_LATENCY_BUCKETS, secs);
    if (b < STATS_LATENCY_BUCKETS)
        s->latency_buckets[op][b]++;
    s->latency_sum_s[op] += secs;
}

void stats_commit(stats *s, uint64_t events, uint64_t ns)
{
    int b = bucket_of(stats_commit_size_bounds, STATS_COMMIT_SIZE_BUCKETS, (double)events);
    if (b < STATS_COMMIT_SIZE_BUCKETS)
        atomic_fetch_add(&s->commit_size_buckets[b], 1);
    b = bucket_of(stats_commit_time_bounds, STATS_COMMIT_TIME_BUCKETS, (double)ns / 1e9);
    if (b < STATS_COMMIT_TIME_BUCKETS)
        atomic_fetch_add(&s->commit_time_buckets[b], 1);
}

void stats_message_rejected(stats *s, int too_large)
{
    atomic_fetch_add(&s->events_rejected, 1);
    atomic_fetch_add(too_large ? &s->rejected_too_large : &s->rejected_bad_request, 1);
}

void stats_store_double(atomic_uint_fast64_t *slot, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    atomic_store(slot, bits);
}

double stats_load_double(const atomic_uint_fast64_t *slot)
{
    uint64_t bits = atomic_load(slot);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
