/* server.c -- start-up, the server loop and the drained shutdown of one
 * leadscore service (see the picture in server.h).
 *
 * What one client can make the server hold is bounded: --client-hwm
 * replies queued per client (the ROUTER drops, and this file counts, the
 * ones past it: a client that does not read loses replies, others do not
 * wait), --max-envelope bytes of routing frames per request, and
 * --max-scans store scans in flight across all clients. */
#define _POSIX_C_SOURCE 200809L
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#include "automation.h"
#include "clusternode.h"
#include "codec.h"
#include "forward.h"
#include "leadscore/error.h"
#include "log.h"
#include "metrics.h"
#include "msgio.h"
#include "ops.h"
#include "readbatch.h"
#include "retrain.h"
#include "security.h"
#include "service.h"
#include "timefmt.h"
#include "worker.h"
#include "writer.h"

#define MAX_WORKERS 64
#define MAX_SCANNERS 16        /* the bound of --scan-threads */
#define BURST 256              /* messages taken from one socket per poll round */
#define CLIENT_RCVHWM 100      /* requests ZeroMQ holds per client before TCP back-pressure */
#define ROUTER_LINGER_MS 1000
#define MAX_PARKED 256         /* `triggers` requests held waiting for new triggers */
#define READ_BATCH 8           /* single-customer reads per batch handed to a worker */
#define READS_PER_WORKER 128   /* ... and at most this many handed to each, unanswered */
#define STOP_PULL_SHARE 2      /* a stop reads PULL for at most 1/this of --drain-timeout */

/* A `triggers` request with nothing to return yet, held (its frames
 * moved here) until the writer commits triggers or its wait ends. */
typedef struct {
    msgio_parts parts;
    int env_end;
    int64_t start_ns;
    int64_t deadline_ns;
} parked_request;

struct server {
    service svc;
    void *router, *pull, *work, *scan, *replies;
    void *pull_work;           /* PULL batches to the workers, who take requests first */
    void *reads_out_sock;      /* read batches to the workers (readbatch.h) */
    void *forward_sock;        /* cluster mode: reads for other nodes (forward.h) */
    int wake[2];               /* self-pipe: server_request_stop writes here */
    worker *workers[MAX_WORKERS];
    int nworkers;
    worker *scanners[MAX_SCANNERS];
    int nscanners;
    int scans_inflight;        /* forwarded to the scanners, not yet answered */
    writer *writer;
    security *sec;             /* NULL: no CurveZMQ */
    metrics *metrics;          /* NULL: no --metrics */
    retrain *retrain;          /* NULL: no --retrain-every */
    int64_t metrics_ns;        /* when the metrics text was last rendered */
    store_reader *reader;      /* the loop's own read handle */
    codec_writer reply;
    msgpack_zone zone;
    char endpoint[256], pull_endpoint[256], model_tag[160];
    int stopping, workers_done, writer_done;
    int64_t drain_deadline_ns;  /* set when stopping begins */
    parked_request parked[MAX_PARKED];
    int nparked;
    int triggers_committed;     /* the writer said so since the held requests last ran */
    readbatch reads;            /* reads being gathered for a worker (readbatch.h) */
    int reads_out;              /* reads handed to workers, not yet answered */
    int backlog;                /* the request being handled was already waiting */
};

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

static int same_decay(const feature_decay *a, const feature_decay *b)
{
    return a->short_ms == b->short_ms && a->long_ms == b->long_ms;
}

static int open_store(server *s, char *err, size_t errlen)
{
    store_options opt = {.map_size = s->svc.cfg.map_size, .no_sync = !s->svc.cfg.sync,
                         .history_days = s->svc.cfg.history_days};
    if (s->svc.cfg.map_max < s->svc.cfg.map_size) {
        LOG_WARN("map_max_raised", "map_size=%llu map_max=%llu note=\"--map-max is below --map-size: the store may "
                 "grow to --map-size and no further\"", (unsigned long long)s->svc.cfg.map_size,
                 (unsigned long long)s->svc.cfg.map_max);
        s->svc.cfg.map_max = s->svc.cfg.map_size;
    }
    const feature_decay *want = model_decay(s->svc.model);
    int rc = store_open(&s->svc.store, s->svc.cfg.data_dir, &opt, want, err, errlen);
    if (rc)
        return rc;
    const feature_decay *have = store_decay(s->svc.store);
    if (!same_decay(have, want)) {
        snprintf(err, errlen, "model %s keeps half-lives of %.4g and %.4g days but the store in %s was "
                 "created with %.4g and %.4g days: use a model with the store's half-lives or a new --data directory",
                 model_name(s->svc.model), want->short_ms / 864e5, want->long_ms / 864e5, s->svc.cfg.data_dir,
                 have->short_ms / 864e5, have->long_ms / 864e5);
        return LS_EINVAL;
    }
    return LS_OK;
}

/* A client-facing socket.  The PULL queue is short, so a flood backs up
 * into TCP and slows the sender.  The ROUTER queues at most --client-hwm
 * replies per client (and CLIENT_RCVHWM requests: more wait in TCP, the
 * client is slowed, nothing is lost), and with ZMQ_ROUTER_MANDATORY a send to a
 * full or vanished client fails at once (EAGAIN, EHOSTUNREACH) instead of
 * vanishing silently, so the loop can count it.  No frame may exceed
 * ZMQ_MAXMSGSIZE (a peer sending one is disconnected); it stays above
 * --max-frame so a somewhat larger request is answered too_large. */
static void *client_socket(server *s, int type, const char *ep, char *bound, char *err, size_t errlen)
{
    int sndhwm = type == ZMQ_PULL ? SERVICE_WORK_HWM : (int)s->svc.cfg.client_hwm;
    int rcvhwm = type == ZMQ_PULL ? SERVICE_WORK_HWM : CLIENT_RCVHWM, linger = ROUTER_LINGER_MS, one = 1;
    int64_t maxmsg = (int64_t)s->svc.cfg.max_frame * 4 + 65536;
    size_t len = 256;
    void *sock = zmq_socket(s->svc.zmq, type);
    if (!sock)
        return NULL;
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (s->sec && security_apply(s->sec, sock) != LS_OK) {
        snprintf(err, errlen, "cannot turn CurveZMQ on for %s", ep);
        zmq_close(sock);
        return NULL;
    }
    if (zmq_bind(sock, ep) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
        zmq_close(sock);
        return NULL;
    }
    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len);
    return sock;
}

static int is_loopback(const char *ep)
{
    static const char *const local[] = {"tcp://127.", "tcp://localhost:", "tcp://[::1]:", "ipc://", "inproc://"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strncmp(ep, local[i], strlen(local[i])) == 0)
            return 1;
    return 0;
}

static void warn_if_open(const server *s, const char *ep)
{
    if (!s->sec && !is_loopback(ep))
        LOG_WARN("insecure_bind", "endpoint=%s message=\"*** NOT loopback and CurveZMQ is off: anyone who can reach "
                 "it can read every score and write events; use --curve-secret with --allow/--admin ***\"", ep);
}

static int start_security(server *s, char *err, size_t errlen)
{
    const config *c = &s->svc.cfg;
    if (!c->curve_secret[0]) {
        if (c->allow[0] || c->admin[0]) {
            snprintf(err, errlen, "--allow and --admin need --curve-secret");
            return LS_EINVAL;
        }
        return LS_OK;
    }
    return security_start(&s->sec, s->svc.zmq, c->curve_secret, c->allow, c->admin, err, errlen);
}

static int open_sockets(server *s, char *err, size_t errlen)
{
    int rc = start_security(s, err, errlen);
    if (rc)
        return rc;
    warn_if_open(s, s->svc.cfg.bind);
    if (strcmp(s->svc.cfg.pull, "none") != 0)
        warn_if_open(s, s->svc.cfg.pull);
    s->router = client_socket(s, ZMQ_ROUTER, s->svc.cfg.bind, s->endpoint, err, errlen);
    if (!s->router)
        return LS_EIO;
    if (s->svc.cfg.nats[0] && zmq_bind(s->router, FORWARD_EP_SELF) != 0) { /* the forwarder's local parts */
        snprintf(err, errlen, "cannot bind %s: %s", FORWARD_EP_SELF, zmq_strerror(zmq_errno()));
        return LS_EINTERNAL;
    }
    if (strcmp(s->svc.cfg.pull, "none") != 0) {
        s->pull = client_socket(s, ZMQ_PULL, s->svc.cfg.pull, s->pull_endpoint, err, errlen);
        if (!s->pull)
            return LS_EIO;

    }
    s->work = msgio_inproc_socket(s->svc.zmq, ZMQ_PUSH, SERVICE_EP_WORK, 1, SERVICE_WORK_HWM);
    s->scan = msgio_inproc_socket(s->svc.zmq, ZMQ_PUSH, SERVICE_EP_SCAN, 1, s->svc.cfg.max_scans);
    s->replies = msgio_inproc_socket(s->svc.zmq, ZMQ_PULL, SERVICE_EP_REPLIES, 1, 0);
    s->reads_out_sock = msgio_inproc_socket(s->svc.zmq, ZMQ_PUSH, SERVICE_EP_READS, 1, SERVICE_WORK_HWM);
    s->pull_work = msgio_inproc_socket(s->svc.zmq, ZMQ_PUSH, SERVICE_EP_PULLWORK, 1, SERVICE_PULLWORK_HWM);
    if (s->svc.cfg.nats[0])
        s->forward_sock = msgio_inproc_socket(s->svc.zmq, ZMQ_PUSH, SERVICE_EP_FORWARD, 0, SERVICE_WORK_HWM);
    if (!s->work || !s->scan || !s->replies || !s->reads_out_sock || !s->pull_work ||
        (s->svc.cfg.nats[0] && !s->forward_sock)) {
        snprintf(err, errlen, "cannot set up internal sockets: %s", zmq_strerror(zmq_errno()));
        return LS_EINTERNAL;
    }
    return LS_OK;
}

static int spawn_threads(server *s, int n, char *err, size_t errlen);

/* The writer waits for a finish token from each worker on each of its
 * sockets; when some never started, the loop sends theirs so the writer
 * can still exit. */
static void finish_for_missing(server *s, int missing)
{
    static const char *const endpoints[] = {SERVICE_EP_WRITER, SERVICE_EP_WRITER_BULK};
    int zero = 0;
    for (int e = 0; e < 2; e++) {
        void *push = zmq_socket(s->svc.zmq, ZMQ_PUSH);
        if (!push)
            return;
        zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_connect(push, endpoints[e]) == 0)
            for (int i = 0; i < missing; i++)
                writer_finish(push);
        zmq_close(push);
    }
}

static int start_threads(server *s, char *err, size_t errlen)
{
    int n = s->svc.cfg.workers;
    sigset_t all, old;
    int rc = LS_OK;
    /* signals belong to the thread that installed the handlers */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = spawn_threads(s, n, err, errlen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static int spawn_threads(server *s, int n, char *err, size_t errlen)
{
    /* Cluster mode: the workers hand track batches to the gateway, and the
     * writer's one producer is the shard log (clusternode.h), which starts
     * after the writer is listening. */
    int cluster = s->svc.cfg.nats[0] != '\0';
    if (writer_start(&s->writer, &s->svc, cluster ? 1 : n, cluster ? 0 : n) != LS_OK) {
        snprintf(err, errlen, "cannot start the writer thread");
        return LS_EINTERNAL;
    }
    if (cluster &&
        clusternode_start(&s->svc.cluster, &s->svc, n, s->endpoint, s->pull ? s->pull_endpoint : "", err, errlen))
        return LS_EUNAVAIL; /* it finished its writer slot: the writer exits with the workers' drain */
    for (int i = 0; i < n && i < MAX_WORKERS; i++) {
        if (worker_start(&s->workers[i], &s->svc) != LS_OK) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            if (!s->svc.cluster)
                finish_for_missing(s, n - i);
            return LS_EINTERNAL;
        }
        s->nworkers++;
    }
    for (int i = 0; i < s->svc.cfg.scan_threads && i < MAX_SCANNERS; i++) {
        if (worker_start_scanner(&s->scanners[i], &s->svc, s->svc.cfg.max_scans) != LS_OK) {
            snprintf(err, errlen, "cannot start scan thread %d", i);
            return LS_EINTERNAL;
        }
        s->nscanners++;
    }
    return LS_OK;
}

/* Raises the soft limit on open files to the hard one: each client
 * connection and each /metrics scrape holds a descriptor. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            LOG_WARN("fd_limit", "soft=%llu hard=%llu note=\"cannot raise the soft limit: %s\"", (unsigned long long)was,
                     (unsigned long long)rl.rlim_max, strerror(errno));
            return;
        }
    }
    LOG_INFO("fd_limit", "soft=%llu hard=%llu was=%llu", (unsigned long long)rl.rlim_cur,
             (unsigned long long)rl.rlim_max, (unsigned long long)was);
}

static int set_up(server *s, char *err, size_t errlen)
{
    int rc;
    log_level level;
    if (log_parse_level(s->svc.cfg.log_level, &level) != LS_OK) {
        snprintf(err, errlen, "--log-level: \"%s\" is not error, warn, info or debug", s->svc.cfg.log_level);
        return LS_EINVAL;
    }
    log_set_level(level);
    int64_t cooldowns[JA_COUNT];
    if (automation_parse_cooldowns(s->svc.cfg.trigger_cooldowns, cooldowns, err, errlen) != LS_OK)
        return LS_EINVAL;
    raise_fd_limit();
    if (s->svc.cfg.nats[0] && s->svc.cfg.triggers) {
        LOG_INFO("cluster_triggers", "note=\"live audiences and triggers are off in cluster mode (not yet supported)\"");
        s->svc.cfg.triggers = 0;
    }
    if ((rc = service_load_model(&s->svc, err, errlen)) || (rc = open_store(s, err, errlen)))
        return rc;
    snprintf(s->model_tag, sizeof s->model_tag, "%s@%s", model_name(s->svc.model), model_version(s->svc.model));
    if ((rc = stats_init(&s->svc.stats, ops_count(), timefmt_mono_ns() / 1000000)) ||
        (rc = store_reader_open(s->svc.store, &s->reader)))
        return rc;
    if (pipe(s->wake) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return LS_EIO;
    }
    fcntl(s->wake[0], F_SETFL, O_NONBLOCK);
    fcntl(s->wake[1], F_SETFL, O_NONBLOCK);
    s->svc.zmq = zmq_ctx_new();
    if (!s->svc.zmq)
        return LS_EINTERNAL;
    if ((rc = open_sockets(s, err, errlen)))
        return rc;
    if (s->svc.cfg.metrics[0] && (rc = metrics_start(&s->metrics, s->svc.cfg.metrics, err, errlen)))
        return rc;
    if ((rc = start_threads(s, err, errlen)))
        return rc;
    if (s->svc.cfg.retrain_every_ms > 0 && (rc = retrain_start(&s->retrain, &s->svc, s->svc.cfg.retrain_every_ms)))
        snprintf(err, errlen, "cannot start the retraining thread");
    return rc;
}

int server_start(server **out, const config *cfg, char *err, size_t errlen)
{
    server *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return LS_ENOMEM;
    s->svc.cfg = *cfg;
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->svc.model_lock, NULL);
    codec_writer_init(&s->reply);
    msgpack_zone_init(&s->zone, 65536);
    int rc = set_up(s, err, errlen);
    if (rc) {
        if (s->writer || s->nworkers || s->nscanners) {
            /* threads are up: stop them the normal way */
            server_request_stop(s);
            server_run(s);
        }
        server_destroy(&s);
        return rc;
    }
    *out = s;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

/* Counts a finished request, and logs it when slower than --slow-ms. */
static void finished(server *s, int op, int ok, int64_t start_ns)
{
    uint64_t ns = (uint64_t)(timefmt_mono_ns() - start_ns);
    stats_request(&s->svc.stats, op, ok, ns);
    if (s->svc.cfg.slow_ms > 0 && ns > (uint64_t)s->svc.cfg.slow_ms * 1000000u)
        LOG_WARN("slow_request", "op=%s ok=%d latency_ms=%.3f", ops_name(op), ok, (double)ns / 1e6);
}

/* Counts a reply the ROUTER would not queue (msgio_route failed): the
 * client is at --client-hwm, not reading, or it is gone.  It is dropped. */
static void count_drop(server *s)
{
    if (zmq_errno() == EAGAIN)
        s->svc.stats.replies_dropped_full++;
    else
        s->svc.stats.replies_dropped_gone++;
}

static void send_reply(server *s, msgio_parts *p, int env_end, int op, int ok, int64_t start_ns)
{
    if (msgio_route(s->router, p, 0, env_end, s->reply.sb.data, s->reply.sb.size) != 0)
        count_drop(s);
    finished(s, op, ok, start_ns);
}

/* Answers the connection itself (its identity frame, the delimiter and
 * s->reply) without the rest of the request's envelope: for requests whose
 * envelope is missing or too big to echo. */
static void reply_to_identity(server *s, msgio_parts *p)
{
    if (zmq_msg_send(&p->frame[0], s->router, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(s->router, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(s->router, s->reply.sb.data, s->reply.sb.size, ZMQ_DONTWAIT) < 0)
        count_drop(s);
    stats_request(&s->svc.stats, ops_invalid(), 0, 0);
}

/* Replies with an error to a request that could not be parsed. */
static void reject(server *s, msgio_parts *p, int env_end, const msgpack_object *id, int status,
                   const char *why, int64_t start_ns)
{
    codec_error_reply(&s->reply, id, status, why);
    send_reply(s, p, env_end, ops_invalid(), 0, start_ns);
}

/* Finds the empty delimiter frame; returns its index or -1. */
static int find_delimiter(const msgio_parts *p)
{
    for (int i = 1; i < p->n; i++)
        if (zmq_msg_size((zmq_msg_t *)&p->frame[i]) == 0)
            return i;
    return -1;
}

/* Hands the whole request to the threads reading sock (workers or
 * scanners).  0, or -1 when their queue is full (nothing was sent). */
static int forward(void *sock, msgio_parts *p, int op, int64_t start_ns)
{
    service_meta meta = {META_REQUEST, (uint8_t)op, 1, {0}, start_ns};
    if (zmq_send(sock, &meta, sizeof meta, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    msgio_send_frames(sock, p, 0, p->n, 0);
    return 0;
}

static void forward_to_worker(server *s, msgio_parts *p, int op, int env_end, const msgpack_object *id,
                              int64_t start_ns)
{
    if (forward(s->work, p, op, start_ns) != 0)
        reject(s, p, env_end, id, LS_EUNAVAIL, "server busy: retry", start_ns);
}

/* Scans go to the scanners, at most --max-scans at a time: the others are
 * answered unavailable at once rather than queued without bound.  A scan
 * whose request is malformed is answered so first (ops_check), whatever
 * the load: it takes no slot and is never told to retry. */
static void forward_to_scanner(server *s, msgio_parts *p, const codec_request *req, int op, int env_end,
                               int64_t start_ns)
{
    char why[160];
    ops_call c = {.svc = &s->svc, .w = &s->reply, .req = req, .op = op, .now_ms = timefmt_now_ms(),
                  .start_ns = start_ns};
    if (ops_check(&c) != LS_OK) {
        send_reply(s, p, env_end, op, 0, start_ns);
        return;
    }
    if (s->scans_inflight >= s->svc.cfg.max_scans || forward(s->scan, p, op, start_ns) != 0) {
        s->svc.stats.scans_refused++;
        snprintf(why, sizeof why, "too many store scans at once (max-scans %d): retry later", s->svc.cfg.max_scans);
        codec_error_reply(&s->reply, req->id, LS_EUNAVAIL, why);
        send_reply(s, p, env_end, op, 0, start_ns);
        return;
    }
    s->scans_inflight++;
}

/* Holds p (its frames move into the slot) until triggers come or
 * wait_ms passes; 0, or -1 when every slot is taken. */
static int park(server *s, msgio_parts *p, int env_end, int64_t start_ns, int64_t wait_ms)
{
    if (s->nparked == MAX_PARKED)
        return -1;
    parked_request *q = &s->parked[s->nparked++];
    q->parts.n = p->n;
    q->parts.dropped = p->dropped;
    for (int i = 0; i < p->n; i++) {
        zmq_msg_init(&q->parts.frame[i]);
        zmq_msg_move(&q->parts.frame[i], &p->frame[i]);
    }
    q->env_end = env_end;
    q->start_ns = start_ns;
    q->deadline_ns = timefmt_mono_ns() + wait_ms * 1000000;
    return 0;
}

/* Answers a request the loop runs itself; a `triggers` request with
 * nothing to return yet is held when may_park (and room is left). */
static void run_inline(server *s, msgio_parts *p, int env_end, const codec_request *req, int op, int64_t start_ns,
                       int may_park)
{
    ops_call c = {.svc = &s->svc, .reader = s->reader, .w = &s->reply, .req = req, .op = op,
                  .now_ms = timefmt_now_ms(), .start_ns = start_ns,
                  .may_park = may_park && !s->stopping && s->nparked < MAX_PARKED};
    int rc = ops_run(&c);
    if (c.park && park(s, p, env_end, start_ns, c.park_ms) == 0)
        return;
    send_reply(s, p, env_end, op, rc == LS_OK, start_ns);
}

/* Runs the held requests again: each answers now when triggers came for
 * it, its wait is over, or the server stops (all), else stays held. */
static void wake_parked(server *s, int all)
{
    int64_t now = timefmt_mono_ns();
    int kept = 0, n = s->nparked;
    s->nparked = 0; /* run_inline may park again: into the slots from 0 */
    for (int i = 0; i < n; i++) {
        parked_request q = s->parked[i];
        codec_request req;
        const char *why = NULL;
        zmq_msg_t *body = &q.parts.frame[q.env_end];
        int expired = all || now >= q.deadline_ns;
        if (codec_parse_request(zmq_msg_data(body), zmq_msg_size(body), &s->zone, &req, &why) == LS_OK) {
            int before = s->nparked;
            run_inline(s, &q.parts, q.env_end, &req, ops_lookup(&req.op), q.start_ns, !expired);
            if (s->nparked > before) { /* held again: keep its first deadline */
                s->parked[s->nparked - 1].deadline_ns = q.deadline_ns;
                kept++;
                msgpack_zone_clear(&s->zone);
                continue;
            }
        }
        msgio_close(&q.parts);
        msgpack_zone_clear(&s->zone);
    }
    (void)kept;
}

/* The loop's poll timeout so the first held request's wait ends on time. */
static int parked_wait_ms(const server *s, int wait)
{
    int64_t now = timefmt_mono_ns();
    for (int i = 0; i < s->nparked; i++) {
        int64_t left = (s->parked[i].deadline_ns - now) / 1000000 + 1;
        if (left < 0)
            left = 0;
        if (wait < 0 || left < wait)
            wait = (int)left;
    }
    return wait;
}

/* Answers the gathered reads on the loop after all (the workers' read
 * queue would not take them): exactly what the loop gives a lone read. */
static void answer_reads_here(server *s)
{
    size_t off = 0;
    readbatch_entry e;
    while (readbatch_next(s->reads.buf, s->reads.len, &off, &e) == 1) {
        codec_request req;
        ops_call c = {.svc = &s->svc, .reader = s->reader, .w = &s->reply, .op = e.op,
                      .now_ms = timefmt_now_ms(), .start_ns = e.start_ns};
        int rc = ops_answer(&c, &req, e.body, e.body_len, &s->zone);
        if (msgio_route_packed(s->router, e.env, e.env_len, s->reply.sb.data, s->reply.sb.size) != 0)
            count_drop(s);
        finished(s, e.op, rc == LS_OK, e.start_ns);
        msgpack_zone_clear(&s->zone);
    }
}

/* Hands the gathered reads to a worker in one message (ZeroMQ checks the
 * queue's bound on a message's first frame only: the second follows). */
static void flush_reads(server *s)
{
    if (s->reads.n == 0)
        return;
    service_meta meta = {META_READS, 0, 1, {0}, 0};
    if (zmq_send(s->reads_out_sock, &meta, sizeof meta, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
        zmq_send(s->reads_out_sock, s->reads.buf, s->reads.len, ZMQ_DONTWAIT) >= 0) {
        s->reads_out += s->reads.n;
        s->svc.stats.reads_by_workers += (uint64_t)s->reads.n;
    } else {
        answer_reads_here(s);
    }
    readbatch_clear(&s->reads);
}

/* Reads use both cores: while requests wait behind the one being handled,
 * single-customer reads go to the workers in batches of READ_BATCH, as
 * many as keep each worker busy, and the loop answers the rest itself.
 * A lone request (no backlog) is always answered inline, without a thread
 * hop.  0 when p joined the batch (its reply will come from a worker). */
static int offload_read(server *s, msgio_parts *p, int env_end, int op, int64_t start_ns)
{
    if (!s->backlog || s->reads_out + s->reads.n >= s->nworkers * READS_PER_WORKER)
        return -1;
    if (readbatch_add(&s->reads, p, env_end, op, start_ns) != LS_OK)
        return -1;
    if (s->reads.n == READ_BATCH)
        flush_reads(s);
    return 0;
}

/* The customer ids a read names: "customer", or each of "customers". */
static int read_ids(const codec_request *req, const msgpack_object **one, const msgpack_object **many)
{
    *one = codec_map_get(&req->root, "customer");
    *many = codec_map_get(&req->root, "customers");
    return *one || *many;
}

/* Cluster mode: a read or forget of a customer whose partition this node
 * does not hold goes to the forwarder (forward.h), which asks the owner
 * (so `forget`'s `deleted` is the owner's answer); one that
 * another node forwarded here is refused instead (maps disagree for a
 * moment during a move).  The identity and audience ops are not
 * available in cluster mode yet.  1 when the request was dealt with. */
static int cluster_route(server *s, msgio_parts *p, int env_end, const codec_request *req, int op, int64_t start_ns)
{
    char why[512], owner[CLUSTER_EP_MAX];
    const msgpack_object *one, *many;
    if (ops_cluster_unsupported(op)) {
        snprintf(why, sizeof why, "%s is not available in cluster mode yet", ops_name(op));
        reject(s, p, env_end, req->id, LS_EBADREQ, why, start_ns);
        return 1;
    }
    if (!ops_by_customer(op) || !read_ids(req, &one, &many))
        return 0;
    for (uint32_t i = 0, n = one ? 1 : (many->type == MSGPACK_OBJECT_ARRAY ? many->via.array.size : 0); i < n; i++) {
        const msgpack_object *id = one ? one : &many->via.array.ptr[i];
        if (id->type != MSGPACK_OBJECT_STR)
            return 0; /* the op's own checks answer it */
        uint32_t part = clusternode_partition(s->svc.cluster, id->via.str.ptr, id->via.str.size);
        if (clusternode_holds(s->svc.cluster, part))
            continue;
        if (!clusternode_forwarded(zmq_msg_data(&p->frame[0]), zmq_msg_size(&p->frame[0]))) {
            if (forward(s->forward_sock, p, op, start_ns) != 0)
                reject(s, p, env_end, req->id, LS_EUNAVAIL, "server busy: retry", start_ns);
            return 1;
        }
        clusternode_read_endpoint(s->svc.cluster, part, 0, owner, sizeof owner);
        snprintf(why, sizeof why, "customer \"%.*s\" is in partition %u, which this node does not hold: ask its "
                 "owner%s%s (the `cluster` op lists every partition's owner)",
                 (int)(id->via.str.size > 64 ? 64 : id->via.str.size), id->via.str.ptr, part,
                 owner[0] ? " at " : "", owner);
        reject(s, p, env_end, req->id, LS_EUNAVAIL, why, start_ns);
        return 1;
    }
    return 0;
}

static void handle_request(server *s, msgio_parts *p)
{
    int64_t start_ns = timefmt_mono_ns();
    int delim = find_delimiter(p);
    codec_request req;
    const char *why = NULL;
    if (delim < 0) {
        /* no delimiter (or none among the frames kept): answer the identity
         * frame anyway, REQ-style */
        codec_error_reply(&s->reply, NULL, LS_EBADREQ,
                          p->dropped ? "too many routing frames"
                                     : "missing the empty delimiter frame before the request");
        reply_to_identity(s, p);
        return;
    }
    if (msgio_frames_bytes(p, 0, delim) > s->svc.cfg.max_envelope) {
        /* echoing it would make each queued reply as big as the envelope */
        s->svc.stats.envelopes_refused++;
        codec_error_reply(&s->reply, NULL, LS_ETOOLARGE, "routing envelope larger than the limit (max-envelope)");
        reply_to_identity(s, p);
        return;
    }
    int env_end = delim + 1;
    if (p->n >= MSGIO_MAX_FRAMES) { /* the meta frame must still fit when forwarded */
        reject(s, p, env_end, NULL, LS_EBADREQ, "too many routing frames", start_ns); /* the delimiter is kept */
        return;
    }
    if (p->n != env_end + 1 || p->dropped) {
        reject(s, p, env_end, NULL, LS_EBADREQ, "a request is exactly one frame after the delimiter", start_ns);
        return;
    }
    zmq_msg_t *body = &p->frame[env_end];
    if (zmq_msg_size(body) > s->svc.cfg.max_frame) {
        reject(s, p, env_end, NULL, LS_ETOOLARGE, "request frame larger than the limit (max-frame)", start_ns);
        return;
    }
    int rc = codec_parse_request(zmq_msg_data(body), zmq_msg_size(body), &s->zone, &req, &why);
    if (rc) {
        reject(s, p, env_end, req.id, rc, why, start_ns);
        return;
    }
    int op = ops_lookup(&req.op);
    if (s->sec && ops_admin_only(op)) {
        const char *user = zmq_msg_gets(body, "User-Id");
        if (!user || strcmp(user, SECURITY_ROLE_ADMIN) != 0) {
            reject(s, p, env_end, req.id, LS_EUNAUTH, "this op needs an admin key", start_ns);
            return;
        }
    }
    if (s->stopping) {
        reject(s, p, env_end, req.id, LS_EUNAVAIL, "the server is shutting down", start_ns);
        return;
    }
    if (s->svc.cluster && cluster_route(s, p, env_end, &req, op, start_ns))
        return;
    if (ops_scan(op)) {
        forward_to_scanner(s, p, &req, op, env_end, start_ns);
        return;
    }
    if (!ops_inline(op, &req)) {
        forward_to_worker(s, p, op, env_end, req.id, start_ns);
        return;
    }
    if (ops_any_thread(op) && offload_read(s, p, env_end, op, start_ns) == 0)
        return;
    run_inline(s, p, env_end, &req, op, start_ns, 1);
}
/* Routes each reply of a worker's read batch to its client.  An empty
 * body is a reply the worker had no memory for: the client's request
 * times out, as any lost reply does. */
static void route_read_replies(server *s, zmq_msg_t *batch, int64_t answered)
{
    const uint8_t *data = zmq_msg_data(batch);
    size_t len = zmq_msg_size(batch), off = 0;
    readbatch_entry e;
    s->reads_out = answered < s->reads_out ? s->reads_out - (int)answered : 0;
    while (readbatch_next(data, len, &off, &e) == 1) {
        if (e.body_len && msgio_route_packed(s->router, e.env, e.env_len, e.body, e.body_len) != 0)
            count_drop(s);
        finished(s, e.op, e.ok, e.start_ns);
    }
}

static void handle_reply(server *s, msgio_parts *p)
{
    service_meta meta;
    if (p->n < 1 || zmq_msg_size(&p->frame[0]) != sizeof meta)
        return;
    memcpy(&meta, zmq_msg_data(&p->frame[0]), sizeof meta);
    if (meta.kind == META_WORKER_DONE) {
        s->workers_done++;
    } else if (meta.kind == META_WRITER_DONE) {
        s->writer_done = 1;
    } else if (meta.kind == META_TRIGGERS) {
        s->triggers_committed = 1;
    } else if (meta.kind == META_READ_REPLIES && p->n == 2) {
        route_read_replies(s, &p->frame[1], meta.start_ns);
    } else if (meta.kind == META_REPLY && p->n >= 2) {
        if (ops_scan(meta.op) && s->scans_inflight > 0)
            s->scans_inflight--;
        if (msgio_route(s->router, p, 1, p->n, NULL, 0) != 0)
            count_drop(s);
        finished(s, meta.op, meta.ok, meta.start_ns);
    }
}

static void forward_pull(server *s, msgio_parts *p)
{
    service_meta meta = {META_PULL, 0, 1, {0}, timefmt_mono_ns()};
    if (p->n != 1 || p->dropped || zmq_msg_size(&p->frame[0]) > s->svc.cfg.max_frame) {
        stats_message_rejected(&s->svc.stats, p->n == 1 && !p->dropped);
        return;
    }
    /* blocking: its callers read only while the queue has room */
    if (zmq_send(s->pull_work, &meta, sizeof meta, ZMQ_SNDMORE) >= 0)
        msgio_send_frames(s->pull_work, p, 0, 1, 0);
}

static int pull_queue_has_room(server *s)
{
    return msgio_ready(s->pull_work, ZMQ_POLLOUT);
}

/* Reads fire-and-forget batches only while their queue to the workers
 * (a few batches deep, taken after requests) has room; otherwise they
 * wait in ZeroMQ's and the kernel's buffers, and a fast tracker is slowed
 * down instead of events being dropped -- and an acknowledged request
 * never queues behind them. */
static void drain_pull(server *s)
{
    msgio_parts p;
    for (int i = 0; i < BURST && pull_queue_has_room(s); i++) {
        if (msgio_recv(s->pull, &p, ZMQ_DONTWAIT) != 0)
            return;
        forward_pull(s, &p);
        msgio_close(&p);
    }
}

/* Takes up to BURST messages from sock and hands each to fn. */
static void drain(server *s, void *sock, void (*fn)(server *, msgio_parts *))
{
    msgio_parts p;
    for (int i = 0; i < BURST; i++) {
        if (msgio_recv(sock, &p, ZMQ_DONTWAIT) != 0)
            return;
        fn(s, &p);
        msgio_close(&p);
        msgpack_zone_clear(&s->zone);
    }
}

/* Takes up to BURST requests; each one after the first was waiting, so
 * reads among them may go to the workers (offload_read), whose replies
 * are routed every READ_BATCH requests to keep them fed. */
static void drain_requests(server *s)
{
    msgio_parts p;
    for (int i = 0; i < BURST; i++) {
        if (msgio_recv(s->router, &p, ZMQ_DONTWAIT) != 0)
            break;
        s->backlog = i > 0;
        handle_request(s, &p);
        msgio_close(&p);
        msgpack_zone_clear(&s->zone);
        if (s->reads_out > 0 && i % READ_BATCH == READ_BATCH - 1)
            drain(s, s->replies, handle_reply);
    }
    flush_reads(s);
    s->backlog = 0;
}

static void begin_stop(server *s);

/* Reads the wake pipe: 'h' asks for a model reload, anything else to stop. */
static void on_wake(server *s)
{
    char buf[64], err[512];
    ssize_t n;
    int stop = 0, reload = 0;
    while ((n = read(s->wake[0], buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            buf[i] == 'h' ? (reload = 1) : (stop = 1);
    if (reload) {
        if (service_reload_model(&s->svc, err, sizeof err) == LS_OK)
            LOG_INFO("model_reloaded", "path=\"%s\"", s->svc.cfg.model_path);
        else
            LOG_ERROR("model_reload_failed", "path=\"%s\" reason=\"%s\" note=\"the old model stays\"",
                      s->svc.cfg.model_path, err);
    }
    if (stop)
        begin_stop(s);
}

/* Waits (until deadline_ns at the latest) for room in the workers' PULL
 * queue, sending the replies the workers and the writer finish meanwhile
 * (an acknowledged track committed now is not held back until the stop
 * has read PULL) and answering the requests that come (the stop has
 * begun: `unavailable`, see handle_request); 1 when there is room, 0 when
 * the time is up. */
static int wait_pull_room(server *s, int64_t deadline_ns)
{
    while (!pull_queue_has_room(s)) {
        int64_t left_ms = (deadline_ns - timefmt_mono_ns()) / 1000000;
        if (left_ms <= 0)
            return 0;
        zmq_pollitem_t items[3] = {{s->pull_work, 0, ZMQ_POLLOUT, 0},
                                   {s->router, 0, ZMQ_POLLIN, 0},
                                   {s->replies, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 3, (long)left_ms) < 0 && zmq_errno() != EINTR)
            return 0;
        if (items[2].revents & ZMQ_POLLIN)
            drain(s, s->replies, handle_reply);
        if (items[1].revents & ZMQ_POLLIN)
            drain_requests(s);
    }
    return 1;
}

/* At a stop, the PULL batches ZeroMQ already holds count as received: up
 * to its receive queue's worth (the socket's RCVHWM, SERVICE_WORK_HWM
 * batches) go to the workers, for at most 1/STOP_PULL_SHARE of
 * --drain-timeout (the rest is the workers' and the writer's to commit
 * them).  Without both bounds a sender that keeps sending would keep the
 * stop reading: libzmq refills the queue from TCP as it is read.  Then
 * the socket is closed (linger 0: a PULL socket has nothing to send), so
 * nothing more is read; what a sender has not written to the connection
 * yet stays in its own queue. */
static void drain_pull_for_stop(server *s)
{
    if (!s->pull)
        return;
    int64_t until = timefmt_mono_ns() + s->svc.cfg.drain_timeout_ms * 1000000 / STOP_PULL_SHARE;
    int taken = 0, zero = 0;
    msgio_parts p;
    /* with no worker (a start that failed half-way) nothing makes room */
    while (s->nworkers > 0 && taken < SERVICE_WORK_HWM && msgio_ready(s->pull, ZMQ_POLLIN) &&
           wait_pull_room(s, until) && msgio_recv(s->pull, &p, ZMQ_DONTWAIT) == 0) {
        forward_pull(s, &p); /* there is room: it does not block */
        msgio_close(&p);
        taken++;
    }
    zmq_setsockopt(s->pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(s->pull);
    s->pull = NULL;
    LOG_INFO("pull_closed", "batches_taken=%d note=\"the PULL socket reads no more\"", taken);
}

static void begin_stop(server *s)
{
    if (s->stopping)
        return;
    LOG_INFO("stopping", "note=\"draining: pending batches are committed and acknowledged\"");
    s->drain_deadline_ns = timefmt_mono_ns() + s->svc.cfg.drain_timeout_ms * 1000000;
    s->stopping = 1;
    retrain_request_stop(s->retrain);
    if (s->nparked)
        wake_parked(s, 1); /* held long-polls are answered now, not after the PULL backlog is read */
    drain_pull_for_stop(s);
    atomic_store(&s->svc.stopping, 1); /* each worker exits once its queue is empty */
}

#define METRICS_EVERY_NS 250000000LL

/* Renders the Prometheus text from the loop's own figures (every 250 ms). */
static void publish_metrics(server *s)
{
    int64_t now = timefmt_mono_ns();
    if (!s->metrics || now - s->metrics_ns < METRICS_EVERY_NS)
        return;
    s->metrics_ns = now;
    model *m = service_model_acquire(&s->svc);
    metrics_inputs in = {&s->svc.stats, ops_count(), ops_name, {0}, model_name(m), model_version(m),
                         (double)(timefmt_mono_ns() / 1000000 - s->svc.stats.started_mono_ms) / 1e3};
    store_stat(s->svc.store, &in.store);
    char *text;
    size_t len;
    if (metrics_render(&in, &text, &len) == LS_OK)
        metrics_publish(s->metrics, text, len);
    model_unref(&m);
}

int server_run(server *s)
{
    LOG_INFO("serving", "requests=%s events=%s data=\"%s\" model=%s curve=%s workers=%d scanners=%d client_hwm=%llu",
             s->endpoint, s->pull ? s->pull_endpoint : "off", s->svc.cfg.data_dir, s->model_tag, s->sec ? "on" : "off",
             s->nworkers, s->nscanners, (unsigned long long)s->svc.cfg.client_hwm);
    /* the workers, the scanners and, in cluster mode, the forwarder each
     * say when they are done (forward.h) */
    int threads = s->nworkers + s->nscanners + (s->svc.cluster ? 1 : 0);
    while (!(s->stopping && s->writer_done && s->workers_done >= threads)) {
        if (s->stopping && timefmt_mono_ns() > s->drain_deadline_ns) {
            LOG_ERROR("drain_timeout", "timeout_ms=%lld note=\"exiting with batches pending; the store stays consistent\"",
                      (long long)s->svc.cfg.drain_timeout_ms);
            return LS_ETIMEOUT;
        }
        /* the ROUTER is read while draining too: a request that comes
         * after the stop began is answered `unavailable` (handle_request)
         * instead of waiting for its client's timeout */
        zmq_pollitem_t items[4] = {
            {s->replies, 0, ZMQ_POLLIN, 0},
            {NULL, s->wake[0], ZMQ_POLLIN, 0},
            {s->router, 0, ZMQ_POLLIN, 0},
            {s->pull, 0, s->stopping || !pull_queue_has_room(s) ? 0 : ZMQ_POLLIN, 0},
        };
        int n = s->pull ? 4 : 3;
        publish_metrics(s);
        /* with PULL held back, wake up soon to see whether the workers caught up */
        int wait = s->pull && !(items[3].events & ZMQ_POLLIN) && !s->stopping ? 5 : -1;
        if (s->stopping)
            wait = 100; /* watch the drain deadline */
        if (s->metrics && (wait < 0 || wait > 250))
            wait = 250;
        wait = parked_wait_ms(s, wait);
        if (zmq_poll(items, n, wait) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            on_wake(s);
        if (items[0].revents & ZMQ_POLLIN)
            drain(s, s->replies, handle_reply);
        if (items[2].revents & ZMQ_POLLIN)
            drain_requests(s);
        if (n == 4 && (items[3].revents & ZMQ_POLLIN))
            drain_pull(s);
        if (s->nparked && (s->triggers_committed || s->stopping || parked_wait_ms(s, -1) == 0))
            wake_parked(s, s->stopping);
        s->triggers_committed = 0;
    }
    return LS_OK;
}

void server_request_stop(server *s)
{
    if (s && s->wake[1] >= 0) {
        ssize_t r = write(s->wake[1], "x", 1);
        (void)r;
    }
}

void server_request_reload(server *s)
{
    if (s && s->wake[1] >= 0) {
        ssize_t r = write(s->wake[1], "h", 1);
        (void)r;
    }
}

const char *server_endpoint(const server *s) { return s->endpoint; }
const char *server_pull_endpoint(const server *s) { return s->pull_endpoint; }
const char *server_model_tag(const server *s) { return s->model_tag; }
const char *server_public_key(const server *s) { return s->sec ? security_public_key(s->sec) : NULL; }
int server_metrics_port(const server *s) { return s->metrics ? metrics_port(s->metrics) : 0; }

void server_destroy(server **sp)
{
    if (!sp || !*sp)
        return;
    server *s = *sp;
    metrics_stop(&s->metrics);
    retrain_join(&s->retrain);
    for (int i = 0; i < s->nworkers; i++)
        worker_join(&s->workers[i]);
    for (int i = 0; i < s->nscanners; i++)
        worker_join(&s->scanners[i]);
    writer_join(&s->writer);
    clusternode_join(&s->svc.cluster);
    void *socks[] = {s->router, s->pull, s->work, s->scan, s->replies, s->reads_out_sock, s->forward_sock,
                     s->pull_work};
    for (size_t i = 0; i < sizeof socks / sizeof socks[0]; i++)
        if (socks[i])
            zmq_close(socks[i]);
    if (s->svc.zmq)
        zmq_ctx_term(s->svc.zmq); /* ends the ZAP handler's wait too */
    security_stop(&s->sec);
    store_reader_close(&s->reader);
    store_close(&s->svc.store);
    model_unref(&s->svc.model);
    stats_destroy(&s->svc.stats);
    codec_writer_destroy(&s->reply);
    msgpack_zone_destroy(&s->zone);
    readbatch_free(&s->reads);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    pthread_mutex_destroy(&s->svc.model_lock);
    free(s);
    *sp = NULL;
}
