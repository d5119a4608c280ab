/* gateway.c -- publishes track batches to the partition logs and answers
 * after JetStream's acks (gateway.h). */
#define _POSIX_C_SOURCE 200809L
#include "gateway.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "codec.h"
#include "leadscore/error.h"
#include "log.h"
#include "logmsg.h"
#include "msgio.h"
#include "partition.h"
#include "store.h"
#include "timefmt.h"
#include "writer.h"

#define MAX_JOBS 256              /* jobs taken per round */
#define MAX_EVENTS_PER_MSG 256    /* events in one log message */
#define ACK_WAIT_MS 3000          /* one publish waits this long for its ack */
#define RETRY_BUDGET_MS 15000     /* from the request's arrival; longer than a 4-9 s leader election */
#define RETRY_MIN_MS 1000         /* a request that waited that long in the queue still gets this */
#define RETRY_PAUSE_MS 50
#define IDLE_POLL_MS 200
#define GATEWAY_VISIBLE_WAIT_MS 200 /* then `ok` goes anyway: the events are in the log, visible a little later */
#define VISIBLE_POLL_MS 1

enum { MSG_PENDING, MSG_ACKED, MSG_FAILED };

/* One log message of a round. */
typedef struct {
    uint32_t part;
    char msgid[96];
    char *data;
    size_t len;
    int state;
    uint64_t seq;             /* its stream sequence, once acked */
    natsStatus err;
    uint32_t owed;            /* jobs not answered yet with an event (or their forget) in it: 0, not sent again */
    uint32_t last_job;        /* the last job counted in (or out of) owed, plus 1 */
} gw_msg;

/* Event e of job j goes to partition part: the round's events sorted by
 * partition, arrival order within one. */
typedef struct {
    uint32_t part;
    uint32_t job;
    uint32_t ev;
} gw_event;

struct gateway {
    service *svc;
    jsCtx *js;                /* async publishing, acks to on_ack */
    pthread_t thread;
    void *pull, *replies;
    int nproducers, finished;
    char node[CLUSTER_NAME_MAX];
    char boot[24];            /* this process's start, in every message id */
    uint32_t nparts;
    char (*subjects)[96];
    pthread_mutex_t lock;     /* guards msgs[].state/seq/err, inflight, base */
    pthread_cond_t acked;
    gw_msg *msgs;
    size_t nmsgs, msgs_cap;
    size_t inflight;
    uint64_t counter, base;   /* message ids are base + index within the round */
    writer_job *jobs[MAX_JOBS];
    size_t njobs;
    gw_event *events;
    uint32_t *event_msg;      /* by job, then event: the message it went into */
    size_t events_cap;
    size_t job_base[MAX_JOBS];/* where each job's events start in event_msg */
    int32_t *part_msg;        /* per partition: the newest message of the job being answered, or -1 */
    int32_t job_msg[MAX_JOBS];/* a forget job's message, or -1 */
    int64_t job_deadline[MAX_JOBS]; /* monotonic ns: answered `unavailable` then if not acked */
    uint8_t *job_failed;      /* per job: a message holding its events was not acked */
    codec_writer buf, reply;
    store_reader *reader;     /* for the duplicates count and the applied positions */
    gateway_holds_fn holds;
    void *holds_arg;
};

/* ------------------------------------------------------------------ */
/* Acks                                                                */
/* ------------------------------------------------------------------ */

/* Called by the NATS library for every publish: the ack, or the error
 * (including the MaxWait timeout).  Finds the message by its id. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    gateway *g = closure;
    const char *id = NULL;
    (void)js;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) {
        const char *colon = strrchr(id, ':');
        uint64_t n = colon ? strtoull(colon + 1, NULL, 10) : 0;
        pthread_mutex_lock(&g->lock);
        if (n >= g->base && n - g->base < g->nmsgs) {
            gw_msg *m = &g->msgs[n - g->base];
            if (m->state == MSG_PENDING) {
                if (pa) {
                    m->state = MSG_ACKED;
                    m->seq = pa->Sequence;
                } else {
                    m->state = MSG_FAILED;
                    m->err = pae ? pae->Err : NATS_ERR;
                }
                if (g->inflight)
                    g->inflight--;
                pthread_cond_broadcast(&g->acked);
            }
        }
        pthread_mutex_unlock(&g->lock);
    }
    natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------------ */
/* A round: messages built, published, acked                           */
/* ------------------------------------------------------------------ */

static int by_part(const void *pa, const void *pb)
{
    const gw_event *a = pa, *b = pb;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    if (a->job != b->job)
        return a->job < b->job ? -1 : 1;
    return a->ev < b->ev ? -1 : a->ev > b->ev;
}

/* Adds the message in g->buf, for partition part, holding events (or
 * the forget) of owed jobs. */
static int add_msg(gateway *g, uint32_t part, uint32_t owed)
{
    if (g->nmsgs == g->msgs_cap) {
        size_t cap = g->msgs_cap ? g->msgs_cap * 2 : 64;
        gw_msg *m = realloc(g->msgs, cap * sizeof *m);
        if (!m)
            return LS_ENOMEM;
        g->msgs = m;
        g->msgs_cap = cap;
    }
    char *data = malloc(g->buf.sb.size);
    if (!data)
        return LS_ENOMEM;
    memcpy(data, g->buf.sb.data, g->buf.sb.size);
    gw_msg *m = &g->msgs[g->nmsgs];
    memset(m, 0, sizeof *m);
    m->part = part;
    m->owed = owed;
    m->data = data;
    m->len = g->buf.sb.size;
    snprintf(m->msgid, sizeof m->msgid, "%s:%s:%" PRIu64, g->node, g->boot, g->base + g->nmsgs);
    g->nmsgs++;
    return LS_OK;
}

static void free_msgs(gateway *g)
{
    for (size_t i = 0; i < g->nmsgs; i++)
        free(g->msgs[i].data);
    g->nmsgs = 0;
}

/* Lists the round's events by partition. */
static int sort_events(gateway *g, size_t *total)
{
    size_t n = 0;
    for (size_t j = 0; j < g->njobs; j++) {
        g->job_base[j] = n;
        n += g->jobs[j]->nevents;
    }
    if (n > g->events_cap) {
        gw_event *e = realloc(g->events, n * sizeof *e);
        if (e)
            g->events = e;
        uint32_t *m = e ? realloc(g->event_msg, n * sizeof *m) : NULL;
        if (!m)
            return LS_ENOMEM;
        g->event_msg = m;
        g->events_cap = n;
    }
    n = 0;
    for (size_t j = 0; j < g->njobs; j++)
        for (size_t i = 0; i < g->jobs[j]->nevents; i++) {
            const ls_str *c = &g->jobs[j]->events[i].customer;
            g->events[n++] = (gw_event){partition_of(c->ptr, c->len, g->nparts), (uint32_t)j, (uint32_t)i};
        }
    qsort(g->events, n, sizeof *g->events, by_part);
    *total = n;
    return LS_OK;
}

/* Builds the round's messages: per partition, runs of at most
 * MAX_EVENTS_PER_MSG events in arrival order. */
static int build_msgs(gateway *g)
{
    size_t n, i = 0;
    int rc = sort_events(g, &n);
    int64_t rcv = timefmt_now_ms();
    g->base = g->counter;
    while (rc == LS_OK && i < n) {
        uint32_t part = g->events[i].part;
        size_t k = 0;
        logmsg_begin(&g->buf, rcv, g->node);
        uint32_t owed = 0;
        for (; i < n && g->events[i].part == part && k < MAX_EVENTS_PER_MSG; i++, k++) {
            const gw_event *e = &g->events[i];
            logmsg_add(&g->buf, &g->jobs[e->job]->events[e->ev]);
            g->event_msg[g->job_base[e->job] + e->ev] = (uint32_t)g->nmsgs;
            owed += k == 0 || g->events[i - 1].job != e->job; /* a job's events are adjacent */
        }
        logmsg_finish(&g->buf);
        rc = g->buf.oom ? LS_ENOMEM : add_msg(g, part, owed);
    }
    for (size_t j = 0; j < g->njobs; j++) { /* a forget ends its round: it follows the events */
        g->job_msg[j] = -1;
        if (rc != LS_OK || g->jobs[j]->kind != JOB_FORGET)
            continue;
        const ls_str *c = &g->jobs[j]->subject;
        logmsg_forget(&g->buf, rcv, g->node, c);
        g->job_msg[j] = (int32_t)g->nmsgs;
        rc = g->buf.oom ? LS_ENOMEM : add_msg(g, partition_of(c->ptr, c->len, g->nparts), 1);
    }
    g->counter += g->nmsgs;
    return rc;
}

static natsStatus publish(gateway *g, gw_msg *m)
{
    natsMsg *msg = NULL;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = m->msgid;
    po.MaxWait = ACK_WAIT_MS;
    natsStatus s = natsMsg_Create(&msg, g->subjects[m->part], NULL, m->data, (int)m->len);
    if (s == NATS_OK)
        s = js_PublishMsgAsync(g->js, &msg, &po);
    natsMsg_Destroy(msg); /* NULL when the library took it */
    return s;
}

/* Sends every message in state MSG_FAILED again (all of them the first
 * time, when they are all MSG_FAILED) but those no job waits for any more
 * (owed 0: every job with events in it was answered `unavailable`); one
 * that cannot even be handed to the library stays failed for the next
 * pass. */
static void send_failed(gateway *g)
{
    for (size_t i = 0; i < g->nmsgs; i++) {
        pthread_mutex_lock(&g->lock);
        int again = g->msgs[i].state == MSG_FAILED && g->msgs[i].owed > 0;
        if (again) {
            g->msgs[i].state = MSG_PENDING;
            g->inflight++;
        }
        pthread_mutex_unlock(&g->lock);
        if (!again)
            continue;
        natsStatus s = publish(g, &g->msgs[i]);
        if (s != NATS_OK) {
            pthread_mutex_lock(&g->lock);
            if (g->msgs[i].state == MSG_PENDING) {
                g->msgs[i].state = MSG_FAILED;
                g->msgs[i].err = s;
                g->inflight--;
            }
            pthread_mutex_unlock(&g->lock);
        }
    }
}


/* Each job's deadline: RETRY_BUDGET_MS after its request arrived (a
 * request that waited behind a stuck round has spent part of its budget
 * there), but at least RETRY_MIN_MS from now.  Returns the latest. */
static int64_t set_deadlines(gateway *g, int64_t now)
{
    int64_t latest = now;
    for (size_t j = 0; j < g->njobs; j++) {
        int64_t start = g->jobs[j]->start_ns > 0 && g->jobs[j]->start_ns <= now ? g->jobs[j]->start_ns : now;
        int64_t by = start + RETRY_BUDGET_MS * 1000000LL, min = now + RETRY_MIN_MS * 1000000LL;
        g->job_deadline[j] = by > min ? by : min;
        if (g->job_deadline[j] > latest)
            latest = g->job_deadline[j];
    }
    return latest;
}

/* Waits (g->lock held) until no publish is in flight or until (monotonic ns). */
static void wait_acks(gateway *g, int64_t until_ns)
{
    while (g->inflight > 0 && timefmt_mono_ns() < until_ns) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->acked, &g->lock, &until);
    }
}

static void answer_job(gateway *g, size_t j);
static int job_unacked(const gateway *g, size_t j, int built);

/* Job j is answered before the round's end: its messages owe it nothing
 * more, and one that owes no job is not sent again (send_failed), so an
 * `unavailable` is the last this gateway sends of the request.  (A copy
 * already handed to the NATS library -- in flight, or held in its buffer
 * while it reconnects -- may still reach the log.) */
static void release_msgs(gateway *g, size_t j)
{
    const writer_job *job = g->jobs[j];
    uint32_t mark = (uint32_t)j + 1;
    if (job->kind == JOB_FORGET && g->job_msg[j] >= 0)
        g->msgs[g->job_msg[j]].owed--;
    for (size_t k = 0; k < job->nevents; k++) {
        gw_msg *m = &g->msgs[g->event_msg[g->job_base[j] + k]];
        if (m->last_job != mark) { /* once per message */
            m->last_job = mark;
            m->owed--;
        }
    }
}

/* Answers `unavailable` every job still waiting whose deadline has passed
 * with a message holding its events (or its forget) not acked; a job whose
 * messages are all acked waits for the round's end (its reply carries the
 * log positions).  Sets *waiting to the number of jobs left with a message
 * not acked and returns the earliest deadline among them (INT64_MAX: none). */
static int64_t answer_expired(gateway *g, size_t *waiting)
{
    int64_t now = timefmt_mono_ns(), next = INT64_MAX;
    *waiting = 0;
    for (size_t j = 0; j < g->njobs; j++) {
        if (!g->jobs[j])
            continue;
        pthread_mutex_lock(&g->lock);
        int unacked = job_unacked(g, j, 1);
        pthread_mutex_unlock(&g->lock);
        if (!unacked)
            continue;
        if (g->job_deadline[j] > now) {
            (*waiting)++;
            if (g->job_deadline[j] < next)
                next = g->job_deadline[j];
            continue;
        }
        g->job_failed[j] = 1;
        release_msgs(g, j);
        answer_job(g, j);
    }
    return next;
}

/* Publishes the round's messages and waits until each is acked, sending
 * the failed ones again; a job whose deadline (set_deadlines) passes first
 * is answered `unavailable` then, and the round ends once no job is left
 * waiting for an ack.  Returns how many retries it took. */
static unsigned publish_round(gateway *g)
{
    unsigned retries = 0;
    int64_t end = set_deadlines(g, timefmt_mono_ns());
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < g->nmsgs; i++)
        g->msgs[i].state = MSG_FAILED; /* "to send" */
    g->inflight = 0;
    pthread_mutex_unlock(&g->lock);
    for (;;) {
        size_t waiting;
        send_failed(g);
        int64_t next = answer_expired(g, &waiting);
        pthread_mutex_lock(&g->lock);
        wait_acks(g, next < end ? next : end);
        pthread_mutex_unlock(&g->lock);
        answer_expired(g, &waiting);
        if (waiting == 0 || timefmt_mono_ns() + RETRY_PAUSE_MS * 1000000LL >= end)
            break;
        size_t failed = 0;
        natsStatus first = NATS_OK;
        pthread_mutex_lock(&g->lock);
        for (size_t i = 0; i < g->nmsgs; i++) {
            failed += g->msgs[i].state != MSG_ACKED;
            if (first == NATS_OK && g->msgs[i].state == MSG_FAILED)
                first = g->msgs[i].err;
        }
        int pending = g->inflight > 0;
        pthread_mutex_unlock(&g->lock);
        if (pending)
            continue; /* woken for a deadline: keep waiting for the acks in flight */
        if (retries++ == 0)
            LOG_WARN("log_publish_retry", "messages=%zu reason=\"%s\" note=\"sending again with the same ids\"",
                     failed, natsStatus_GetText(first));
        timefmt_sleep_ms(RETRY_PAUSE_MS);
    }
    return retries;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

#define NOT_CONFIRMED "the event log did not confirm the write in time: it may or may not be stored; " \
                      "resend with the same event_ids (each event still counts once)"

/* The reply's "log": per partition, the sequence of the newest message
 * holding job j's events (one pass to find it, one to write and reset
 * part_msg). */
static void write_log_positions(gateway *g, const writer_job *job, size_t j)
{
    codec_writer *w = &g->reply;
    const uint32_t *msg_of = g->event_msg + g->job_base[j];
    cw_key(w, "log");
    cw_map(w);
    for (size_t k = 0; k < job->nevents; k++) {
        const gw_msg *m = &g->msgs[msg_of[k]];
        if (g->part_msg[m->part] < (int32_t)msg_of[k])
            g->part_msg[m->part] = (int32_t)msg_of[k];
    }
    for (size_t k = 0; k < job->nevents; k++) {
        uint32_t part = g->msgs[msg_of[k]].part;
        if (g->part_msg[part] < 0)
            continue;
        char key[16];
        snprintf(key, sizeof key, "%u", part);
        cw_key(w, key);
        cw_int(w, (int64_t)g->msgs[g->part_msg[part]].seq);
        g->part_msg[part] = -1;
    }
    cw_end(w);
}

/* Answers job j as the writer answers a single node's track or forget
 * (writer_reply_begin), plus "log" for a track. */
static void send_reply(gateway *g, writer_job *job, size_t j)
{
    int events = job->kind == JOB_EVENTS;
    if (g->job_failed[j]) {
        job->status = LS_EUNAVAIL;
        snprintf(job->why, sizeof job->why, "%s", NOT_CONFIRMED);
    } else if (events) {
        job->accepted = (uint32_t)(job->nevents - job->duplicates);
    }
    writer_reply_begin(&g->reply, job);
    if (job->status == LS_OK && events)
        write_log_positions(g, job, j);
    cw_end(&g->reply);
    writer_reply_send(g->replies, &g->reply, job);
}

/* Whether job j has an event (or its forget) in a message not acked (g->lock
 * held); every job has when built is 0 (its messages were not all made). */
static int job_unacked(const gateway *g, size_t j, int built)
{
    const writer_job *job = g->jobs[j];
    if (!built)
        return 1;
    if (job->kind == JOB_FORGET && (g->job_msg[j] < 0 || g->msgs[g->job_msg[j]].state != MSG_ACKED))
        return 1;
    for (size_t k = 0; k < job->nevents; k++)
        if (g->msgs[g->event_msg[g->job_base[j] + k]].state != MSG_ACKED)
            return 1;
    return 0;
}

/* Marks the jobs not answered yet with an event in a message that was not acked. */
static void mark_failed(gateway *g, int built)
{
    memset(g->job_failed, 0, MAX_JOBS);
    for (size_t j = 0; j < g->njobs; j++)
        if (g->jobs[j])
            g->job_failed[j] = (uint8_t)job_unacked(g, j, built);
}

/* Read-your-writes: waits until this node's store has applied, for
 * every partition it holds, the newest message of the round that was
 * acked; at most GATEWAY_VISIBLE_WAIT_MS. */
static void wait_visible(gateway *g)
{
    int64_t deadline = timefmt_mono_ns() + GATEWAY_VISIBLE_WAIT_MS * 1000000LL;
    for (;;) {
        int behind = 0;
        if (store_reader_begin(g->reader) != LS_OK)
            return;
        for (size_t i = 0; i < g->nmsgs && !behind; i++) {
            uint64_t at = 0;
            const gw_msg *m = &g->msgs[i];
            if (m->state != MSG_ACKED || !g->holds(g->holds_arg, m->part))
                continue;
            behind = store_reader_log_position(g->reader, m->part, &at) == LS_OK && at < m->seq;
        }
        store_reader_end(g->reader);
        if (!behind || timefmt_mono_ns() >= deadline)
            return;
        timefmt_sleep_ms(VISIBLE_POLL_MS);
    }
}

/* Answers job j (after job_failed[j] is set) and frees it: a reply, or
 * for a PULL batch that failed, its events counted as unstored. */
static void answer_job(gateway *g, size_t j)
{
    writer_job *job = g->jobs[j];
    if (job->reply)
        send_reply(g, job, j);
    else if (g->job_failed[j])
        atomic_fetch_add(&g->svc->stats.events_unstored_unavailable, job->nevents);
    writer_job_free(&g->jobs[j]);
}

/* Answers the round's jobs not answered yet; built says its messages were all made (else
 * every job with events failed: out of memory). */
static void finish_round(gateway *g, int built)
{
    pthread_mutex_lock(&g->lock);
    mark_failed(g, built);
    pthread_mutex_unlock(&g->lock);
    for (size_t j = 0; j < g->njobs; j++)
        if (g->jobs[j])
            answer_job(g, j);
    pthread_mutex_lock(&g->lock);
    free_msgs(g);
    g->base = g->counter;
    pthread_mutex_unlock(&g->lock);
    g->njobs = 0;
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

/* The `duplicates` of each job: its event ids this node's store already
 * holds (a lower bound: the shards decide when they apply, and an id of a
 * partition held elsewhere is not seen here).  All events still go to the
 * log; applying one twice is harmless. */
static void count_known(gateway *g)
{
    if (!g->reader || store_reader_begin(g->reader) != LS_OK)
        return;
    for (size_t j = 0; j < g->njobs; j++) {
        writer_job *job = g->jobs[j];
        if (job->kind == JOB_FORGET) { /* `deleted`: whether this node's store has the customer */
            ls_features f;
            job->result = store_reader_get(g->reader, job->subject.ptr, job->subject.len, &f) == LS_OK;
            continue;
        }
        job->duplicates = 0;
        for (size_t i = 0; i < job->nevents; i++)
            if (job->events[i].event_id.len &&
                store_reader_event_seen(g->reader, job->events[i].event_id.ptr, job->events[i].event_id.len))
                job->duplicates++;
    }
    store_reader_end(g->reader);
}

/* Takes the jobs waiting (blocking up to wait_ms for the first). */
static void collect(gateway *g, int wait_ms)
{
    zmq_pollitem_t item = {g->pull, 0, ZMQ_POLLIN, 0};
    size_t events = 0;
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return;
    while (g->njobs < MAX_JOBS && events < g->svc->cfg.commit_max_events && g->finished < g->nproducers) {
        writer_job *job;
        int n = zmq_recv(g->pull, &job, sizeof job, ZMQ_DONTWAIT);
        if (n != (int)sizeof job)
            break;
        if (!job) {
            g->finished++;
            continue;
        }
        g->jobs[g->njobs++] = job; /* one with no events (all rejected) is answered at once */
        events += job->nevents;
        if (job->kind == JOB_FORGET)
            break; /* it ends the round, so it follows what came before it */
    }
}

static void *gateway_main(void *arg)
{
    gateway *g = arg;
    prctl(PR_SET_NAME, "ls-gateway");
    while (g->finished < g->nproducers || g->njobs) {
        collect(g, IDLE_POLL_MS);
        if (!g->njobs)
            continue;
        count_known(g);
        int built = build_msgs(g) == LS_OK;
        if (!built) {
            LOG_ERROR("log_publish_failed", "reason=\"out of memory\" jobs=%zu", g->njobs);
        } else if (g->nmsgs) {
            publish_round(g);
            if (g->holds && g->reader)
                wait_visible(g);
        }
        finish_round(g, built);
    }
    return NULL;
}

static void close_gateway(gateway *g)
{
    if (g->js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 1000;
        js_PublishAsyncComplete(g->js, &po);
        jsCtx_Destroy(g->js);
    }
    store_reader_close(&g->reader);
    zmq_close(g->pull);
    zmq_close(g->replies);
    free_msgs(g);
    free(g->msgs);
    free(g->events);
    free(g->event_msg);
    free(g->part_msg);
    free(g->subjects);
    free(g->job_failed);
    codec_writer_destroy(&g->buf);
    codec_writer_destroy(&g->reply);
    pthread_cond_destroy(&g->acked);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int gateway_start(gateway **out, service *svc, cnats *nats, const clustermap *map, const char *node, int nproducers,
                  gateway_holds_fn holds, void *holds_arg, char *err, size_t errlen)
{
    gateway *g = calloc(1, sizeof *g);
    *out = NULL;
    if (!g)
        return LS_ENOMEM;
    g->svc = svc;
    g->nproducers = nproducers;
    g->holds = holds;
    g->holds_arg = holds_arg;
    g->nparts = map->nparts;
    snprintf(g->node, sizeof g->node, "%s", node);
    snprintf(g->boot, sizeof g->boot, "%lld", (long long)timefmt_now_ms());
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->acked, NULL);
    codec_writer_init(&g->buf);
    codec_writer_init(&g->reply);
    g->subjects = calloc(map->nparts, sizeof *g->subjects);
    g->job_failed = calloc(MAX_JOBS, 1);
    g->part_msg = malloc(map->nparts * sizeof *g->part_msg);
    if (!g->subjects || !g->job_failed || !g->part_msg) {
        close_gateway(g);
        return LS_ENOMEM;
    }
    for (uint32_t p = 0; p < map->nparts; p++) {
        clustermap_subject(map, p, g->subjects[p], sizeof g->subjects[p]);
        g->part_msg[p] = -1;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = CNATS_API_WAIT_MS;
    jo.PublishAsync.MaxPending = 8192;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = g;
    jo.PublishAsync.StallWait = 1000;
    int rc = cnats_js(nats, &jo, &g->js, err, errlen);
    g->pull = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_GATEWAY, 1, 512);
    g->replies = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_REPLIES, 0, 0);
    if (rc == LS_OK && (!g->pull || !g->replies || store_reader_open(svc->store, &g->reader) != LS_OK)) {
        snprintf(err, errlen, "cannot set up the gateway's sockets");
        rc = LS_EINTERNAL;
    }
    if (rc == LS_OK && pthread_create(&g->thread, NULL, gateway_main, g) != 0) {
        snprintf(err, errlen, "cannot start the gateway thread");
        rc = LS_EINTERNAL;
    }
    if (rc) {
        close_gateway(g);
        return rc;
    }
    *out = g;
    return LS_OK;
}

void gateway_join(gateway **gp)
{
    if (!gp || !*gp)
        return;
    pthread_join((*gp)->thread, NULL);
    close_gateway(*gp);
    *gp = NULL;
}

void gateway_abandon(gateway *g, int nproducers)
{
    void *push = msgio_inproc_socket(g->svc->zmq, ZMQ_PUSH, SERVICE_EP_GATEWAY, 0, nproducers + 1);
    for (int i = 0; push && i < nproducers; i++)
        writer_finish(push);
    zmq_close(push);
}
