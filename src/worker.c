/* worker.c -- the worker and scanner thread loop (see worker.h). */
#define _POSIX_C_SOURCE 200809L
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <zmq.h>

#include "codec.h"
#include "leadscore/error.h"
#include "msgio.h"
#include "ops.h"
#include "readbatch.h"
#include "timefmt.h"
#include "writer.h"

#define ZONE_CHUNK 65536

struct worker {
    service *svc;
    pthread_t thread;
    void *in, *reads, *out, *to_writer; /* reads: the loop's read batches (workers only) */
    void *pull_in, *to_bulk;     /* PULL batches in, their jobs out (workers only; to_bulk NULL in cluster mode) */
    writer_job *pending;         /* a PULL job the writer's full queue has not taken yet */
    store_reader *reader;
    codec_writer reply, scratch;
    msgpack_zone zone;
    readbatch replies;           /* the replies to a read batch */
    uint8_t *envelope;
    size_t envelope_cap;
};

static int pack_envelope(worker *w, const msgio_parts *p, int from, int to, size_t *len)
{
    size_t need = msgio_envelope_size(p, from, to);
    if (need > w->envelope_cap) {
        uint8_t *e = realloc(w->envelope, need);
        if (!e)
            return LS_ENOMEM;
        w->envelope = e;
        w->envelope_cap = need;
    }
    *len = msgio_pack_envelope(p, from, to, w->envelope);
    return LS_OK;
}

/* Answers one forwarded request: parts = [meta, envelope..., body]. */
static void handle_request(worker *w, msgio_parts *p, const service_meta *meta)
{
    const char *why = NULL;
    codec_request req;
    zmq_msg_t *body = &p->frame[p->n - 1];
    ops_call c = {.svc = w->svc, .reader = w->reader, .w = &w->reply, .scratch = &w->scratch,
                  .req = &req, .op = meta->op, .now_ms = timefmt_now_ms(), .start_ns = meta->start_ns,
                  .writer_push = w->to_writer};
    int rc = codec_parse_request(zmq_msg_data(body), zmq_msg_size(body), &w->zone, &req, &why);
    if (rc == LS_OK)
        rc = pack_envelope(w, p, 1, p->n - 1, &c.envelope_len);
    c.envelope = w->envelope;
    if (rc == LS_OK)
        rc = ops_run(&c);
    else
        codec_error_reply(&w->reply, req.id, rc, why ? why : "out of memory");
    if (!c.async) {
        service_meta back = {META_REPLY, meta->op, rc == LS_OK, {0}, meta->start_ns};
        if (msgio_send_bytes(w->out, &back, sizeof back, 1) == 0 && msgio_send_frames(w->out, p, 1, p->n - 1, 1) == 0)
            msgio_send_bytes(w->out, w->reply.sb.data, w->reply.sb.size, 0);
    }
    msgpack_zone_clear(&w->zone);
}

/* Answers each read of a batch the loop handed over, and sends the
 * replies back together (readbatch.h) for the loop to route. */
static void handle_reads(worker *w, msgio_parts *p)
{
    zmq_msg_t *batch = &p->frame[1];
    const uint8_t *data = zmq_msg_data(batch);
    size_t len = zmq_msg_size(batch), off = 0;
    readbatch_entry e;
    int64_t n = 0;
    readbatch_clear(&w->replies);
    while (readbatch_next(data, len, &off, &e) == 1) {
        n++;
        codec_request req;
        ops_call c = {.svc = w->svc, .reader = w->reader, .w = &w->reply, .scratch = &w->scratch,
                      .op = e.op, .now_ms = timefmt_now_ms(), .start_ns = e.start_ns};
        int rc = ops_answer(&c, &req, e.body, e.body_len, &w->zone);
        if (readbatch_add_reply(&w->replies, e.op, rc == LS_OK, e.start_ns, e.env, e.env_len, w->reply.sb.data,
                                w->reply.sb.size) != LS_OK)
            readbatch_add_reply(&w->replies, e.op, 0, e.start_ns, e.env, e.env_len, NULL, 0); /* out of memory */
        msgpack_zone_clear(&w->zone);
    }
    /* the loop counts n reads answered, whether or not each reply fit */
    service_meta back = {META_READ_REPLIES, 0, 1, {0}, n};
    if (msgio_send_bytes(w->out, &back, sizeof back, 1) == 0)
        msgio_send_bytes(w->out, w->replies.buf, w->replies.len, 0);
}

/* Whether the writer holds as many events as it may: twice
 * --commit-max-events, queued or in the group it is committing.  So
 * while one group commits, the next group's worth waits, and a PULL
 * backlog is folded in groups as large as the option allows (fewer
 * commits, each B-tree page written once for more events); past that the
 * backlog stays in the PULL socket, where it costs its wire bytes instead
 * of its decoded copy.  The jobs workers hold are not the writer's: a
 * held job never holds back another (with two workers each holding a
 * batch larger than the bound, each would wait for the other for ever),
 * and a writer with room takes a job of any size. */
static int writer_backlog_full(const worker *w)
{
    uint64_t queued = atomic_load(&w->svc->stats.events_queued);
    uint64_t held = atomic_load(&w->svc->pull_events_held);
    uint64_t writers = queued > held ? queued - held : 0;
    return writers >= 2 * (uint64_t)w->svc->cfg.commit_max_events;
}

/* Makes job the worker's pending PULL job (none when NULL). */
static void hold_job(worker *w, writer_job *job)
{
    w->pending = job;
    if (job)
        atomic_fetch_add(&w->svc->pull_events_held, job->nevents);
}

/* n events the worker held are no longer its own: their job went to the
 * writer (which may have freed it already), or is about to be freed. */
static void unhold_events(worker *w, size_t n)
{
    atomic_fetch_sub(&w->svc->pull_events_held, n);
}

/* Hands the pending PULL job to the writer without waiting: 1 when it
 * went (or there was none); 0 while the writer's queue or its backlog is
 * full (it stays pending, and the worker goes on answering requests
 * meanwhile; *held says it was the backlog, which no socket event
 * announces the end of). */
static int hand_pending(worker *w, int *held)
{
    *held = 0;
    if (!w->pending)
        return 1;
    if (writer_backlog_full(w)) {
        *held = 1;
        return 0;
    }
    size_t nevents = w->pending->nevents; /* once sent, the job is the writer's: read nothing of it */
    if (zmq_send(w->to_bulk, &w->pending, sizeof w->pending, ZMQ_DONTWAIT) == (int)sizeof w->pending) {
        unhold_events(w, nevents);
        w->pending = NULL;
        return 1;
    }
    if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
        return 0;
    /* the context is closing: the batch was never acknowledged, count it */
    atomic_fetch_add(&w->svc->stats.events_unstored_unavailable, w->pending->nevents);
    unhold_events(w, nevents);
    writer_job_free(&w->pending);
    return 1;
}

/* Decodes a fire-and-forget batch.  Its job goes to the writer's bulk
 * socket without blocking: when the writer's queue is full the job waits
 * here (w->pending) and the worker takes no more batches until it went,
 * but still answers requests, so a PULL flood cannot hold up an
 * acknowledged track (next_message). */
static void handle_pull(worker *w, msgio_parts *p)
{
    writer_job *job = NULL;
    ops_call c = {.svc = w->svc, .reader = w->reader, .w = &w->reply, .scratch = &w->scratch,
                  .now_ms = timefmt_now_ms(), .start_ns = timefmt_mono_ns(), .writer_push = w->to_writer,
                  .handed = w->to_bulk ? &job : NULL};
    zmq_msg_t *body = &p->frame[p->n - 1];
    int rc = ops_pull_batch(&c, zmq_msg_data(body), zmq_msg_size(body), &w->zone);
    if (rc == LS_EBADREQ || rc == LS_ETOOLARGE) /* the message itself */
        stats_message_rejected(&w->svc->stats, rc == LS_ETOOLARGE);
    else if (rc != LS_OK)
        atomic_fetch_add(&w->svc->stats.events_rejected, 1);
    msgpack_zone_clear(&w->zone);
    hold_job(w, job);
    int held;
    hand_pending(w, &held);
}

#define STOP_CHECK_MS 50
#define BACKLOG_CHECK_MS 2 /* how often a job held back by the writer's backlog tries again */

/* Waits for the next message, read batches first (a read waiting behind
 * a batch of events would lose the microseconds it was handed over for),
 * then requests, then fire-and-forget batches (an acknowledged track does
 * not wait behind a PULL flood); 0 with one in p, 1 when it is time to
 * stop (the loop has said so and nothing is left to read). */
static int next_message(worker *w, msgio_parts *p)
{
    for (;;) {
        /* read before the sockets: the loop says stop only after its last
         * send, so whatever it sent before then is read below first (a
         * stop read after them could leave a batch sent meanwhile unread) */
        int stop = atomic_load(&w->svc->stopping);
        int held, free_hand = hand_pending(w, &held);
        if (w->reads && msgio_recv(w->reads, p, ZMQ_DONTWAIT) == 0)
            return 0;
        if (msgio_recv(w->in, p, ZMQ_DONTWAIT) == 0)
            return 0;
        if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
            return 1; /* the context is closing */
        if (free_hand && w->pull_in && msgio_recv(w->pull_in, p, ZMQ_DONTWAIT) == 0)
            return 0;
        if (stop && free_hand)
            return 1;
        zmq_pollitem_t items[4] = {{w->in, 0, ZMQ_POLLIN, 0},
                                   {w->reads, 0, ZMQ_POLLIN, 0},
                                   {w->pull_in, 0, free_hand ? ZMQ_POLLIN : 0, 0},
                                   {w->to_bulk, 0, free_hand || held ? 0 : ZMQ_POLLOUT, 0}};
        zmq_poll(items, !w->reads ? 1 : w->to_bulk ? 4 : 3, held ? BACKLOG_CHECK_MS : STOP_CHECK_MS);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    msgio_parts p;
    prctl(PR_SET_NAME, w->to_writer ? "ls-worker" : "ls-scanner"); /* what top -H and perf show */
    while (next_message(w, &p) == 0) {
        service_meta meta;
        if (p.n < 1 || zmq_msg_size(&p.frame[0]) != sizeof meta) {
            msgio_close(&p);
            continue;
        }
        memcpy(&meta, zmq_msg_data(&p.frame[0]), sizeof meta);
        if (meta.kind == META_REQUEST && p.n >= 3)
            handle_request(w, &p, &meta);
        else if (meta.kind == META_READS && p.n == 2)
            handle_reads(w, &p);
        else if (meta.kind == META_PULL && p.n >= 2)
            handle_pull(w, &p);
        msgio_close(&p);
    }
    if (w->to_bulk)
        writer_finish(w->to_bulk);
    if (w->to_writer)
        writer_finish(w->to_writer);
    service_meta done = {META_WORKER_DONE, 0, 1, {0}, 0};
    msgio_send_bytes(w->out, &done, sizeof done, 0);
    return NULL;
}

static void close_worker(worker *w)
{
    if (w->in) zmq_close(w->in);
    if (w->reads) zmq_close(w->reads);
    if (w->out) zmq_close(w->out);
    if (w->pending) { /* the context closed under it */
        atomic_fetch_add(&w->svc->stats.events_unstored_unavailable, w->pending->nevents);
        unhold_events(w, w->pending->nevents);
        writer_job_free(&w->pending);
    }
    if (w->to_writer) zmq_close(w->to_writer);
    if (w->pull_in) zmq_close(w->pull_in);
    if (w->to_bulk) zmq_close(w->to_bulk);
    store_reader_close(&w->reader);
    codec_writer_destroy(&w->reply);
    codec_writer_destroy(&w->scratch);
    msgpack_zone_destroy(&w->zone);
    readbatch_free(&w->replies);
    free(w->envelope);
    free(w);
}

/* Starts a thread reading endpoint (queue of hwm); writes: connect to the writer. */
static int start(worker **out, service *svc, const char *endpoint, int hwm, int writes)
{
    worker *w = calloc(1, sizeof *w);
    if (!w)
        return LS_ENOMEM;
    w->svc = svc;
    codec_writer_init(&w->reply);
    codec_writer_init(&w->scratch);
    msgpack_zone_init(&w->zone, ZONE_CHUNK);
    w->in = msgio_inproc_socket(svc->zmq, ZMQ_PULL, endpoint, 0, hwm);
    w->out = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_REPLIES, 0, 0);
    if (writes) {
        /* cluster mode: track batches go to the gateway (gateway.h) */
        w->to_writer = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, svc->cluster ? SERVICE_EP_GATEWAY : SERVICE_EP_WRITER,
                                           0, SERVICE_WRITER_HWM);
        w->reads = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_READS, 0, hwm);
        w->pull_in = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_PULLWORK, 0, SERVICE_PULLWORK_HWM);
        if (!svc->cluster)
            w->to_bulk = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_WRITER_BULK, 0, SERVICE_WRITER_HWM);
    }
    if (!w->in || !w->out || (writes && (!w->to_writer || !w->reads || !w->pull_in || (!svc->cluster && !w->to_bulk))) ||
        store_reader_open(svc->store, &w->reader) != LS_OK ||
        pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        close_worker(w);
        return LS_EINTERNAL;
    }
    *out = w;
    return LS_OK;
}

int worker_start(worker **out, service *svc)
{
    return start(out, svc, SERVICE_EP_WORK, SERVICE_WORK_HWM, 1);
}

int worker_start_scanner(worker **out, service *svc, int queue_max)
{
    return start(out, svc, SERVICE_EP_SCAN, queue_max, 0);
}

void worker_join(worker **wp)
{
    if (!wp || !*wp)
        return;
    pthread_join((*wp)->thread, NULL);
    close_worker(*wp);
    *wp = NULL;
}
