/* metrics.c -- Prometheus text rendering and the libmicrohttpd endpoint
 * (see metrics.h).  libmicrohttpd does the HTTP; nothing here parses it. */
#define _GNU_SOURCE
#include "metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gitdescribe.h" /* LS_GIT_DESCRIBE, generated at build time (CMakeLists.txt) */
#include "leadscore/error.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif
#ifndef LS_GIT_COMMIT
#define LS_GIT_COMMIT "unknown"
#endif
#ifndef LS_GIT_DESCRIBE
#define LS_GIT_DESCRIBE LS_GIT_COMMIT
#endif

struct metrics {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    char *text;
    size_t len;
    int port;
};

/* ------------------------------------------------------------------ */
/* Rendering                                                           */
/* ------------------------------------------------------------------ */

static void help(FILE *f, const char *name, const char *type, const char *text)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void render_requests(FILE *f, const metrics_inputs *in)
{
    const stats *st = in->st;
    help(f, "leadscore_requests_total", "counter", "Requests answered, by op and result.");
    for (int i = 0; i < in->nops; i++) {
        fprintf(f, "leadscore_requests_total{op=\"%s\",result=\"ok\"} %llu\n", in->op_name(i),
                (unsigned long long)(st->requests[i] - st->errors[i]));
        fprintf(f, "leadscore_requests_total{op=\"%s\",result=\"error\"} %llu\n", in->op_name(i),
                (unsigned long long)st->errors[i]);
    }
    help(f, "leadscore_request_duration_seconds", "histogram", "Time from a request's arrival to its reply.");
    for (int i = 0; i < in->nops; i++) {
        uint64_t cum = 0;
        for (int b = 0; b < STATS_LATENCY_BUCKETS; b++) {
            cum += st->latency_buckets[i][b];
            fprintf(f, "leadscore_request_duration_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", in->op_name(i),
                    stats_latency_bounds[b], (unsigned long long)cum);
        }
        fprintf(f, "leadscore_request_duration_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", in->op_name(i),
                (unsigned long long)st->requests[i]);
        fprintf(f, "leadscore_request_duration_seconds_sum{op=\"%s\"} %.9f\n", in->op_name(i), st->latency_sum_s[i]);
        fprintf(f, "leadscore_request_duration_seconds_count{op=\"%s\"} %llu\n", in->op_name(i),
                (unsigned long long)st->requests[i]);
    }
}

static void render_atomic_histogram(FILE *f, const char *name, const atomic_uint_fast64_t *buckets,
                                    const double *bounds, int n, uint64_t total, double sum)
{
    uint64_t cum = 0;
    for (int b = 0; b < n; b++) {
        cum += atomic_load(&buckets[b]);
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[b], (unsigned long long)cum);
    }
    /* total was read first; a commit counted in a bucket since is in it too
     * (+Inf and _count never below a finite bucket) */
    if (cum > total)
        total = cum;
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name, (unsigned long long)total, name,
            sum, name, (unsigned long long)total);
}

static void render_limits(FILE *f, const stats *st)
{
    help(f, "leadscore_replies_dropped_total", "counter",
         "Replies dropped: the client had --client-hwm replies queued (not reading) or was gone.");
    fprintf(f, "leadscore_replies_dropped_total{reason=\"client_full\"} %llu\n", (unsigned long long)st->replies_dropped_full);
    fprintf(f, "leadscore_replies_dropped_total{reason=\"client_gone\"} %llu\n", (unsigned long long)st->replies_dropped_gone);
    help(f, "leadscore_requests_refused_total", "counter",
         "Requests refused by a server limit: envelope over --max-envelope, kpis over --max-scans.");
    fprintf(f, "leadscore_requests_refused_total{reason=\"max_envelope\"} %llu\n", (unsigned long long)st->envelopes_refused);
    fprintf(f, "leadscore_requests_refused_total{reason=\"max_scans\"} %llu\n", (unsigned long long)st->scans_refused);
}

static void render_reads(FILE *f, const stats *st)
{
    help(f, "leadscore_reads_by_workers_total", "counter",
         "Single-customer reads (score, profile, recommend) answered by a worker thread instead of the server loop, "
         "because requests were queuing up.");
    fprintf(f, "leadscore_reads_by_workers_total %llu\n", (unsigned long long)st->reads_by_workers);
    help(f, "leadscore_log_gaps_refused_total", "counter",
         "Cluster mode: log messages the writer would not apply because they lay past a hole in their partition's "
         "log (the node fetched again from its position); 0 on a single node.");
    fprintf(f, "leadscore_log_gaps_refused_total %llu\n", (unsigned long long)atomic_load(&st->log_gaps_refused));
}

/* A label value as the text format wants it: \\, \" and \n escaped (a
 * model's name comes from its file, and one bad line fails the scrape). */
static void put_label_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void render_events(FILE *f, const stats *st)
{
    help(f, "leadscore_events_total", "counter", "Events stored (accepted) or counted once before (duplicate: event_id seen); rejected ones are in leadscore_events_rejected_total.");
    fprintf(f, "leadscore_events_total{result=\"accepted\"} %llu\n", (unsigned long long)atomic_load(&st->events_accepted));
    fprintf(f, "leadscore_events_total{result=\"duplicate\"} %llu\n", (unsigned long long)atomic_load(&st->events_duplicate));
    help(f, "leadscore_events_rejected_total", "counter", "Events rejected at validation, by reason.");
    fprintf(f, "leadscore_events_rejected_total{reason=\"bad_request\"} %llu\n",
            (unsigned long long)atomic_load(&st->rejected_bad_request));
    fprintf(f, "leadscore_events_rejected_total{reason=\"too_large\"} %llu\n",
            (unsigned long long)atomic_load(&st->rejected_too_large));
    uint64_t commits = atomic_load(&st->commits);
    help(f, "leadscore_commit_events", "histogram", "Events per group commit (one LMDB transaction).");
    render_atomic_histogram(f, "leadscore_commit_events", st->commit_size_buckets, stats_commit_size_bounds,
                            STATS_COMMIT_SIZE_BUCKETS, commits, (double)atomic_load(&st->commit_events));
    help(f, "leadscore_commit_duration_seconds", "histogram", "Time to commit and sync one group.");
    render_atomic_histogram(f, "leadscore_commit_duration_seconds", st->commit_time_buckets, stats_commit_time_bounds,
                            STATS_COMMIT_TIME_BUCKETS, commits, (double)atomic_load(&st->commit_ns) / 1e9);
    help(f, "leadscore_commit_failures_total", "counter", "Group commits that failed (nothing of them stored).");
    fprintf(f, "leadscore_commit_failures_total %llu\n", (unsigned long long)atomic_load(&st->commit_failures));
}

static void render_retrain(FILE *f, const stats *st)
{
    help(f, "leadscore_retrain_runs_total", "counter", "Scheduled retrainings that trained and decided (--retrain-every).");
    fprintf(f, "leadscore_retrain_runs_total %llu\n", (unsigned long long)atomic_load(&st->retrain_runs));
    help(f, "leadscore_retrain_swaps_total", "counter", "Retrainings whose new model beat the serving one and replaced it.");
    fprintf(f, "leadscore_retrain_swaps_total %llu\n", (unsigned long long)atomic_load(&st->retrain_swaps));
    help(f, "leadscore_retrain_failures_total", "counter", "Retrainings that could not train (the serving model stayed).");
    fprintf(f, "leadscore_retrain_failures_total %llu\n", (unsigned long long)atomic_load(&st->retrain_failures));
    /* no AUC before a retraining has measured one (as `stats` leaves the
     * keys out): a 0 would read as a model that ranks backwards */
    if (atomic_load(&st->retrain_runs) == 0)
        return;
    help(f, "leadscore_retrain_holdout_auc", "gauge", "Hold-out AUC of the last retraining: the new and the serving model.");
    fprintf(f, "leadscore_retrain_holdout_auc{model=\"new\"} %.6f\n", stats_load_double(&st->retrain_auc_new));
    fprintf(f, "leadscore_retrain_holdout_auc{model=\"serving\"} %.6f\n", stats_load_double(&st->retrain_auc_serving));
}

/* Events the writer could not store, by reason, and jobs left out of
 * their group (writer.h). */
static void render_unstored(FILE *f, const stats *st)
{
    help(f, "leadscore_events_unstored_total", "counter", "Events read off a socket that could not be stored, by reason.");
    fprintf(f, "leadscore_events_unstored_total{reason=\"store_full\"} %llu\n",
            (unsigned long long)atomic_load(&st->events_unstored_full));
    fprintf(f, "leadscore_events_unstored_total{reason=\"unavailable\"} %llu\n",
            (unsigned long long)atomic_load(&st->events_unstored_unavailable));
    fprintf(f, "leadscore_events_unstored_total{reason=\"job_failed\"} %llu\n",
            (unsigned long long)atomic_load(&st->events_unstored_failed));
    help(f, "leadscore_events_queued", "gauge",
         "Events received for storage (track and PULL) that the writer has not yet stored or given up on.");
    fprintf(f, "leadscore_events_queued %llu\n", (unsigned long long)atomic_load(&st->events_queued));
    help(f, "leadscore_jobs_failed_alone_total", "counter", "Jobs that failed inside a group commit and were left out of it.");
    fprintf(f, "leadscore_jobs_failed_alone_total %llu\n", (unsigned long long)atomic_load(&st->jobs_failed_alone));
    help(f, "leadscore_triggers_total", "counter", "Triggers written to the outbox, by kind.");
    fprintf(f, "leadscore_triggers_total{kind=\"moment\"} %llu\n", (unsigned long long)atomic_load(&st->triggers_moments));
    fprintf(f, "leadscore_triggers_total{kind=\"enter\"} %llu\n", (unsigned long long)atomic_load(&st->triggers_enters));
    fprintf(f, "leadscore_triggers_total{kind=\"exit\"} %llu\n", (unsigned long long)atomic_load(&st->triggers_exits));
    help(f, "leadscore_triggers_suppressed_total", "counter", "Moment occurrences inside their cool-down, recorded without a trigger.");
    fprintf(f, "leadscore_triggers_suppressed_total %llu\n", (unsigned long long)atomic_load(&st->triggers_suppressed));
    help(f, "leadscore_triggers_pruned_total", "counter", "Triggers that left the outbox by age or count.");
    fprintf(f, "leadscore_triggers_pruned_total %llu\n", (unsigned long long)atomic_load(&st->triggers_pruned));
    help(f, "leadscore_automation_evaluations_total", "counter", "Customers evaluated by automation (events, timers, sweeps).");
    fprintf(f, "leadscore_automation_evaluations_total %llu\n", (unsigned long long)atomic_load(&st->automation_evaluations));
    help(f, "leadscore_automation_failures_total", "counter", "Background automation transactions (timers, sweeps, pruning) that failed.");
    fprintf(f, "leadscore_automation_failures_total %llu\n", (unsigned long long)atomic_load(&st->automation_failures));
}

static void render_state(FILE *f, const metrics_inputs *in)
{
    help(f, "leadscore_customers", "gauge", "Customer records in the store.");
    fprintf(f, "leadscore_customers %llu\n", (unsigned long long)in->store.customers);
    help(f, "leadscore_event_ids", "gauge", "Idempotency keys held (within the dedupe window).");
    fprintf(f, "leadscore_event_ids %llu\n", (unsigned long long)in->store.event_ids);
    help(f, "leadscore_event_ids_unmerged", "gauge",
         "Idempotency keys claimed and held in the writer's memory, not yet merged into the event_ids table.");
    fprintf(f, "leadscore_event_ids_unmerged %llu\n", (unsigned long long)in->store.event_ids_unmerged);
    help(f, "leadscore_event_ids_filter_bytes", "gauge",
         "Memory of the filter of merged idempotency keys that answers claims of new ones (0 until built).");
    fprintf(f, "leadscore_event_ids_filter_bytes %llu\n", (unsigned long long)in->store.event_ids_filter_bytes);
    help(f, "leadscore_event_id_lookups_skipped_total", "counter",
         "Claims of new idempotency keys the filter answered without a lookup in the event_ids table.");
    fprintf(f, "leadscore_event_id_lookups_skipped_total %llu\n",
            (unsigned long long)in->store.event_id_lookups_skipped);
    help(f, "leadscore_store_bytes", "gauge", "Bytes of the LMDB store in use.");
    fprintf(f, "leadscore_store_bytes %llu\n", (unsigned long long)in->store.used_bytes);
    help(f, "leadscore_store_map_bytes", "gauge", "The LMDB map size (the store grows up to --map-max).");
    fprintf(f, "leadscore_store_map_bytes %llu\n", (unsigned long long)in->store.map_bytes);
    help(f, "leadscore_store_readers", "gauge", "LMDB reader slots taken (by any process), and those holding a snapshot.");
    fprintf(f, "leadscore_store_readers{state=\"taken\"} %llu\n", (unsigned long long)in->store.readers);
    fprintf(f, "leadscore_store_readers{state=\"active\"} %llu\n", (unsigned long long)in->store.readers_active);
    help(f, "leadscore_store_readers_stale_cleared_total", "counter", "Reader slots of dead processes cleared.");
    fprintf(f, "leadscore_store_readers_stale_cleared_total %llu\n",
            (unsigned long long)in->store.readers_stale_cleared);
    help(f, "leadscore_model_info", "gauge", "The active model.");
    fputs("leadscore_model_info{name=\"", f);
    put_label_value(f, in->model_name);
    fputs("\",version=\"", f);
    put_label_value(f, in->model_version);
    fputs("\"} 1\n", f);
    help(f, "leadscore_uptime_seconds", "gauge", "Seconds since the service started.");
    fprintf(f, "leadscore_uptime_seconds %.3f\n", in->uptime_s);
    help(f, "leadscore_build_info", "gauge", "Version and git commit of this binary.");
    fprintf(f, "leadscore_build_info{version=\"%s\",commit=\"%s\"} 1\n", LS_VERSION, LS_GIT_DESCRIBE);
}

/* ------------------------------------------------------------------ */
/* process_* (the Prometheus client libraries' standard set)           */
/* ------------------------------------------------------------------ */

/* Open descriptors: the entries of /proc/self/fd (the one opendir uses
 * excluded); -1 when it cannot be read. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

/* The system's boot time (Unix seconds) from /proc/stat's btime; 0 when unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    long long bt = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static int metrics_render_process(FILE *f)
{
    char buf[1024];
    FILE *st = fopen("/proc/self/stat", "r");
    if (!st)
        return LS_EIO;
    size_t n = fread(buf, 1, sizeof buf - 1, st);
    fclose(st);
    buf[n] = '\0';
    /* fields after the command name (which may hold spaces and parentheses) */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
                     &utime, &stime, &start, &vsize, &rss) != 5)
        return LS_EIO;
    double ticks = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0)
        ticks = 100;
    help(f, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    fprintf(f, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / ticks);
    help(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    fprintf(f, "process_resident_memory_bytes %lld\n", rss * (long long)page);
    help(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    fprintf(f, "process_virtual_memory_bytes %llu\n", vsize);
    long long bt = boot_time();
    if (bt > 0) {
        help(f, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
        fprintf(f, "process_start_time_seconds %.2f\n", (double)bt + (double)start / ticks);
    }
    long fds = open_fds();
    if (fds >= 0) {
        help(f, "process_open_fds", "gauge", "Number of open file descriptors.");
        fprintf(f, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        help(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (rl.rlim_cur == RLIM_INFINITY)
            fprintf(f, "process_max_fds +Inf\n");
        else
            fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    return LS_OK;
}

int metrics_render(const metrics_inputs *in, char **out, size_t *len)
{
    FILE *f = open_memstream(out, len);
    if (!f)
        return LS_ENOMEM;
    render_requests(f, in);
    render_limits(f, in->st);
    render_reads(f, in->st);
    render_events(f, in->st);
    render_retrain(f, in->st);
    render_unstored(f, in->st);
    render_state(f, in);
    return fclose(f) == 0 ? LS_OK : LS_ENOMEM;
}

/* ------------------------------------------------------------------ */
/* The HTTP endpoint                                                   */
/* ------------------------------------------------------------------ */

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_len, void **state)
{
    metrics *m = cls;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)state;
    struct MHD_Response *r;
    unsigned status = MHD_HTTP_OK;
    /* HEAD is answered as GET: libmicrohttpd sends the headers (with the
     * body's Content-Length) and leaves the body out */
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!get || strcmp(url, "/metrics") != 0) {
        static const char nf[] = "leadscore: metrics are at GET /metrics\n";
        status = get ? MHD_HTTP_NOT_FOUND : MHD_HTTP_METHOD_NOT_ALLOWED;
        r = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
        if (r && !get)
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    } else {
        /* the service's text (renewed by the server loop), then process_*
         * read now from /proc/self */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (f) {
            pthread_mutex_lock(&m->lock);
            if (m->text)
                fwrite(m->text, 1, m->len, f);
            pthread_mutex_unlock(&m->lock);
            metrics_render_process(f);
            if (fclose(f) != 0) {
                free(text);
                text = NULL;
            }
        }
        r = text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!r)
            free(text);
        if (r)
            MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    }
    if (!r)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static int parse_hostport(const char *hp, struct sockaddr_in *addr)
{
    const char *colon = strrchr(hp, ':');
    char host[64];
    char *end;
    if (!colon || (size_t)(colon - hp) >= sizeof host)
        return -1;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 0 || port > 65535)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

/* Concurrent connections served (more wait in the listen backlog), at most
 * half of them from one address: one client that opens many and sends
 * nothing (each waits out the 10 s idle timeout) cannot take them all. */
#define METRICS_MAX_CONNECTIONS 64
#define METRICS_MAX_PER_ADDRESS 32

/* libmicrohttpd's own thread waits with epoll (Linux) or poll: never with
 * select, which cannot watch a descriptor numbered past FD_SETSIZE (1024),
 * so the endpoint kept working only while the process had few files open. */
static unsigned polling_mode(void)
{
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        return MHD_USE_EPOLL_INTERNAL_THREAD;
    return MHD_USE_POLL_INTERNAL_THREAD;
}

/* ... woken by its own channel at a stop: with every connection slot
 * taken the listen socket leaves its wait set, and without it the stop
 * waited for the 10 s idle timeout. */
static unsigned daemon_flags(void)
{
    return polling_mode() | MHD_USE_ITC;
}

/* hostport as an address, or LS_EINVAL with the reason in err. */
static int endpoint_address(const char *hostport, struct sockaddr_in *addr, char *err, size_t errlen)
{
    if (parse_hostport(hostport, addr) == 0)
        return LS_OK;
    snprintf(err, errlen, "--metrics: \"%s\" is not IPV4-ADDRESS:PORT (e.g. 127.0.0.1:9464)", hostport);
    return LS_EINVAL;
}

int metrics_check_endpoint(const char *hostport, char *err, size_t errlen)
{
    struct sockaddr_in addr;
    return endpoint_address(hostport, &addr, err, errlen);
}

int metrics_start(metrics **out, const char *hostport, char *err, size_t errlen)
{
    struct sockaddr_in addr;
    *out = NULL;
    if (endpoint_address(hostport, &addr, err, errlen) != LS_OK)
        return LS_EINVAL;
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return LS_ENOMEM;
    pthread_mutex_init(&m->lock, NULL);
    m->daemon = MHD_start_daemon(daemon_flags(), 0, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)METRICS_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                 (unsigned)METRICS_MAX_PER_ADDRESS, MHD_OPTION_END);
    if (!m->daemon) {
        snprintf(err, errlen, "--metrics: cannot listen on %s (in use?)", hostport);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return LS_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    m->port = info ? info->port : ntohs(addr.sin_port);
    *out = m;
    return LS_OK;
}

void metrics_publish(metrics *m, char *text, size_t len)
{
    pthread_mutex_lock(&m->lock);
    char *old = m->text;
    m->text = text;
    m->len = len;
    pthread_mutex_unlock(&m->lock);
    free(old);
}

int metrics_port(const metrics *m)
{
    return m->port;
}

void metrics_stop(metrics **mp)
{
    if (!mp || !*mp)
        return;
    metrics *m = *mp;
    MHD_stop_daemon(m->daemon);
    pthread_mutex_destroy(&m->lock);
    free(m->text);
    free(m);
    *mp = NULL;
}
