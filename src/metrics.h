/* metrics.h -- the Prometheus endpoint: `serve --metrics HOST:PORT`
 * answers GET /metrics in the Prometheus text format, from libmicrohttpd's
 * own thread.
 *
 * The figures belong to other threads (the per-op counters and histograms
 * to the server loop), so the loop renders the text every 250 ms with
 * metrics_render and hands it over with metrics_publish; a scrape returns
 * the latest text.  Names follow Prometheus conventions:
 * leadscore_requests_total, leadscore_request_duration_seconds, … */
#ifndef LS_METRICS_H
#define LS_METRICS_H

#include <stddef.h>

#include "stats.h"
#include "store.h"

typedef struct metrics metrics;

typedef struct {
    const stats *st;
    int nops;
    const char *(*op_name)(int op);
    store_stats store;
    const char *model_name, *model_version;
    double uptime_s;
} metrics_inputs;

/* Renders every metric into a new malloc'd text (*out, *len); 0 or LS_ENOMEM. */
int metrics_render(const metrics_inputs *in, char **out, size_t *len);

/* LS_OK when hostport is what metrics_start takes, else LS_EINVAL with
 * the reason in err ("--metrics: ..."): serve checks it with its other
 * options, before it opens anything. */
int metrics_check_endpoint(const char *hostport, char *err, size_t errlen);

/* Listens on host:port (IPv4 address or "localhost"; port 0 = any free
 * one, see metrics_port).  On failure *out is NULL and err explains. */
int metrics_start(metrics **out, const char *hostport, char *err, size_t errlen);

/* Replaces the text scrapes return (takes ownership of text). */
void metrics_publish(metrics *m, char *text, size_t len);

int metrics_port(const metrics *m);

/* Stops the HTTP daemon and frees everything; NULLs *m. */
void metrics_stop(metrics **m);

#endif
