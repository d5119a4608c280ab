/* stats.c -- set-up and recording for the counters in stats.h. */
#include "stats.h"

#include <string.h>

#include "leadscore/error.h"

/* Latencies are tracked from 1 us to 100 s with 3 significant digits. */
#define LATENCY_LOWEST_NS 1000ULL
#define LATENCY_HIGHEST_NS 100000000000ULL

int stats_init(stats *s, int nops, int64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->started_ms = now_ms;
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
}
