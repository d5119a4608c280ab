/* shardlog.c -- partition logs fetched from JetStream and handed to the
 * writer (shardlog.h). */
#define _POSIX_C_SOURCE 200809L
#include "shardlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "log.h"
#include "logmsg.h"
#include "msgio.h"
#include "timefmt.h"
#include "writer.h"

#define FETCH_BATCH 256
#define FETCH_WAIT_MS 500
#define RESUBSCRIBE_PAUSE_MS 250
#define QUEUE_MAX 1024              /* jobs between the fetchers and the hub */
#define ERROR_LOG_EVERY_MS 10000
#define PURGE_POLL_MS 100           /* a fetcher of a partition still being purged looks again after */

typedef struct {
    shardlog *sl;
    uint32_t part;
    uint64_t gaps_seen;             /* svc->stats.log_gaps_refused when it last fetched from the store's position */
    pthread_t thread;
    int running;
    atomic_int stop;
    uint64_t next;                  /* the sequence it waits for */
    int64_t last_error_ms;
    int64_t last_gap_log_ms;
    cnats conn;                     /* its own connection: fetches never share a lock with another partition's */
} fetcher;

struct shardlog {
    service *svc;
    clustermap map;
    pthread_t hub;
    int hub_running;
    void *to_writer;                /* the hub's */
    pthread_mutex_t lock;           /* the queue, and fetchers[] start/stop */
    pthread_cond_t nonempty, nonfull;
    writer_job *queue[QUEUE_MAX];
    size_t head, count;
    int stopping;                   /* the hub drains, then finishes */
    fetcher *fetchers[PARTITION_MAX];
};


/* Queues a job for the hub, waiting while the queue is full; frees it and
 * returns -1 when *stop is set meanwhile (stop NULL: waits for room). */
static int enqueue(shardlog *sl, const atomic_int *stop, writer_job *job)
{
    pthread_mutex_lock(&sl->lock);
    while (sl->count == QUEUE_MAX && !(stop && atomic_load(stop))) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&sl->nonfull, &sl->lock, &until);
    }
    if (sl->count == QUEUE_MAX) {
        pthread_mutex_unlock(&sl->lock);
        writer_job_free(&job);
        return -1;
    }
    sl->queue[(sl->head + sl->count) % QUEUE_MAX] = job;
    sl->count++;
    pthread_cond_signal(&sl->nonempty);
    pthread_mutex_unlock(&sl->lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A fetcher                                                           */
/* ------------------------------------------------------------------ */

static void log_error(fetcher *f, const char *what, natsStatus s)
{
    int64_t now = timefmt_now_ms();
    if (now - f->last_error_ms < ERROR_LOG_EVERY_MS)
        return;
    f->last_error_ms = now;
    LOG_WARN("log_fetch", "partition=%u next=%llu what=\"%s\" reason=\"%s\" note=\"retrying\"", f->part,
             (unsigned long long)f->next, what, natsStatus_GetText(s));
}

/* The store's position for the partition, plus one.  While the store
 * still purges the partition (this node gave it up and took it on again
 * before the writer erased it all) it waits: the position is 0 then, and
 * the partition is replayed from its log's start once the purge is done. */
static uint64_t first_unapplied(fetcher *f)
{
    store_reader *r = NULL;
    uint64_t seq = 0;
    int purging = 0, logged = 0;
    if (store_reader_open(f->sl->svc->store, &r) != LS_OK)
        return 1;
    do {
        if (purging) {
            if (!logged++)
                LOG_INFO("partition_purge_wait", "partition=%u note=\"taken on again while its purge runs: "
                         "replayed from the log once it is done\"", f->part);
            timefmt_sleep_ms(PURGE_POLL_MS);
        }
        if (store_reader_begin(r) != LS_OK)
            break;
        store_reader_log_position(r, f->part, &seq);
        purging = store_reader_purge_pending(r, f->part);
        store_reader_end(r);
    } while (purging && !atomic_load(&f->stop));
    store_reader_close(&r);
    return seq + 1;
}

static natsSubscription *subscribe(fetcher *f)
{
    shardlog *sl = f->sl;
    char stream[128], subject[128];
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    clustermap_stream_name(&sl->map, f->part, stream, sizeof stream);
    snprintf(subject, sizeof subject, "ls.%s.p.%u.>", sl->map.cluster, f->part);
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = f->next;
    so.Config.AckPolicy = js_AckNone;
    so.Config.InactiveThreshold = 30LL * 1000000000LL;
    so.Config.MemoryStorage = true;
    so.Config.Replicas = 1;
    natsStatus s = js_PullSubscribe(&sub, f->conn.js, subject, NULL, NULL, &so, &jerr);
    if (s != NATS_OK) {
        log_error(f, "subscribe", s);
        return NULL;
    }
    return sub;
}

/* Turns message seq into a writer job (an undecodable message still
 * moves the position: it is logged and passed, never retried for ever). */
static writer_job *job_of(fetcher *f, natsMsg *msg, uint64_t seq, msgpack_zone *zone)
{
    logmsg lm;
    char why[96];
    writer_job *job;
    int rc = logmsg_decode(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), zone, &lm, why, sizeof why);
    if (rc != LS_OK) {
        LOG_ERROR("log_message_unreadable", "partition=%u seq=%llu reason=\"%s\" note=\"passed over\"", f->part,
                  (unsigned long long)seq, why);
        lm.nevents = 0;
        lm.rcv_ms = 0;
    } else if (lm.invalid) {
        LOG_ERROR("log_events_invalid", "partition=%u seq=%llu events=%zu note=\"passed over\"", f->part,
                  (unsigned long long)seq, lm.invalid);
    }
    if (rc == LS_OK && lm.forget.len)
        job = writer_job_identity(JOB_FORGET, &lm.forget, NULL, NULL, 0, NULL, 0);
    else
        job = writer_job_new(lm.nevents ? lm.events : NULL, lm.nevents, NULL, 0, NULL, 0, NULL, 0, 0);
    if (job) {
        job->reply = 0;
        job->received_ms = lm.rcv_ms ? lm.rcv_ms : timefmt_now_ms();
        job->start_ns = timefmt_mono_ns();
        job->log_part = f->part;
        job->log_seq = seq;
    }
    return job;
}

/* Applies one fetched list; returns -1 when the consumer must be made
 * again (a gap, or out of memory). */
static int take_list(fetcher *f, natsMsgList *list, msgpack_zone *zone)
{
    for (int i = 0; i < list->Count && !atomic_load(&f->stop); i++) {
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, list->Msgs[i]) != NATS_OK)
            continue; /* a status message, not a stream message */
        uint64_t seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
        if (seq < f->next)
            continue;
        if (seq > f->next) {
            int64_t now = timefmt_now_ms();
            if (now - f->last_gap_log_ms >= ERROR_LOG_EVERY_MS) { /* a log that lost its start repeats it */
                f->last_gap_log_ms = now;
                LOG_WARN("log_gap", "partition=%u expected=%llu got=%llu note=\"consumer made again from the missing "
                         "message; never applied past it\"", f->part, (unsigned long long)f->next,
                         (unsigned long long)seq);
            }
            return -1;
        }
        writer_job *job = job_of(f, list->Msgs[i], seq, zone);
        msgpack_zone_clear(zone);
        if (!job || enqueue(f->sl, &f->stop, job) != 0)
            return -1;
        f->next = seq + 1;
    }
    return 0;
}

/* Each fetcher has its own NATS connection: nats.c 3.4 serialises a
 * connection's subscriptions and deliveries on shared locks, and the
 * fetchers of a node must not wait on each other (or on the gateway). */
static int connect_fetcher(fetcher *f)
{
    char name[96], err[512];
    snprintf(name, sizeof name, "leadscore %s log %u", f->sl->svc->cfg.node, f->part);
    if (f->conn.nc)
        return LS_OK;
    int rc = cnats_connect(&f->conn, f->sl->svc->cfg.nats, name, 0, 2000, err, sizeof err);
    if (rc != LS_OK) {
        int64_t now = timefmt_now_ms();
        if (now - f->last_error_ms >= ERROR_LOG_EVERY_MS) {
            f->last_error_ms = now;
            LOG_WARN("log_fetch", "partition=%u what=\"connect\" reason=\"%s\" note=\"retrying\"", f->part, err);
        }
    }
    return rc;
}

static void *fetcher_main(void *arg)
{
    fetcher *f = arg;
    char name[16];
    msgpack_zone zone;
    natsSubscription *sub = NULL;
    snprintf(name, sizeof name, "ls-log-%u", f->part);
    prctl(PR_SET_NAME, name);
    msgpack_zone_init(&zone, 65536);
    f->gaps_seen = atomic_load(&f->sl->svc->stats.log_gaps_refused);
    f->next = first_unapplied(f);
    while (!atomic_load(&f->stop)) {
        if (!cnats_usable(&f->conn)) { /* lost (or never made): a new connection and consumer */
            if (sub) {
                natsSubscription_Destroy(sub);
                sub = NULL;
            }
            cnats_close(&f->conn);
            if (connect_fetcher(f) != LS_OK) {
                timefmt_sleep_ms(RESUBSCRIBE_PAUSE_MS);
                continue;
            }
        }
        uint64_t gaps = atomic_load(&f->sl->svc->stats.log_gaps_refused);
        if (gaps != f->gaps_seen) { /* the writer refused a message past a hole: start again from the store */
            f->gaps_seen = gaps;
            f->next = first_unapplied(f);
            if (sub) {
                natsSubscription_Unsubscribe(sub);
                natsSubscription_Destroy(sub);
                sub = NULL;
            }
        }
        if (!sub && !(sub = subscribe(f))) {
            timefmt_sleep_ms(RESUBSCRIBE_PAUSE_MS);
            continue;
        }
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, FETCH_WAIT_MS, &jerr);
        if (s == NATS_TIMEOUT)
            s = NATS_OK; /* nothing new yet (or what came before the time ran out) */
        int again = s != NATS_OK;
        if (s != NATS_OK)
            log_error(f, "fetch", s);
        else if (list.Count > 0)
            again = take_list(f, &list, &zone) != 0;
        natsMsgList_Destroy(&list);
        if (again) {
            natsSubscription_Unsubscribe(sub);
            natsSubscription_Destroy(sub);
            sub = NULL;
            timefmt_sleep_ms(s != NATS_OK ? RESUBSCRIBE_PAUSE_MS : 10);
        }
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    cnats_close(&f->conn);
    msgpack_zone_destroy(&zone);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The hub                                                             */
/* ------------------------------------------------------------------ */

static void *hub_main(void *arg)
{
    shardlog *sl = arg;
    prctl(PR_SET_NAME, "ls-log-hub");
    pthread_mutex_lock(&sl->lock);
    for (;;) {
        while (sl->count == 0 && !sl->stopping)
            pthread_cond_wait(&sl->nonempty, &sl->lock);
        if (sl->count == 0 && sl->stopping)
            break;
        writer_job *job = sl->queue[sl->head];
        sl->head = (sl->head + 1) % QUEUE_MAX;
        sl->count--;
        pthread_cond_signal(&sl->nonfull);
        pthread_mutex_unlock(&sl->lock);
        if (writer_submit(sl->to_writer, job) != LS_OK)
            writer_job_free(&job);
        pthread_mutex_lock(&sl->lock);
    }
    pthread_mutex_unlock(&sl->lock);
    writer_finish(sl->to_writer);
    return NULL;
}

int shardlog_start(shardlog **out, service *svc, const clustermap *map, char *err, size_t errlen)
{
    shardlog *sl = calloc(1, sizeof *sl);
    *out = NULL;
    if (!sl)
        return LS_ENOMEM;
    sl->svc = svc;
    sl->map = *map;
    pthread_mutex_init(&sl->lock, NULL);
    pthread_cond_init(&sl->nonempty, NULL);
    pthread_cond_init(&sl->nonfull, NULL);
    sl->to_writer = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_WRITER, 0, SERVICE_WRITER_HWM);
    if (!sl->to_writer || pthread_create(&sl->hub, NULL, hub_main, sl) != 0) {
        snprintf(err, errlen, "cannot start the log hub thread");
        zmq_close(sl->to_writer);
        free(sl);
        return LS_EINTERNAL;
    }
    sl->hub_running = 1;
    *out = sl;
    return LS_OK;
}

int shardlog_hold(shardlog *sl, uint32_t p)
{
    if (p >= sl->map.nparts || sl->fetchers[p])
        return LS_OK;
    fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return LS_ENOMEM;
    f->sl = sl;
    f->part = p;
    if (pthread_create(&f->thread, NULL, fetcher_main, f) != 0) {
        free(f);
        return LS_EINTERNAL;
    }
    f->running = 1;
    sl->fetchers[p] = f;
    LOG_INFO("partition_held", "partition=%u", p);
    return LS_OK;
}

void shardlog_release(shardlog *sl, uint32_t p)
{
    if (p >= sl->map.nparts || !sl->fetchers[p])
        return;
    fetcher *f = sl->fetchers[p];
    atomic_store(&f->stop, 1);
    pthread_mutex_lock(&sl->lock);
    pthread_cond_broadcast(&sl->nonfull);
    pthread_mutex_unlock(&sl->lock);
    pthread_join(f->thread, NULL);
    free(f);
    sl->fetchers[p] = NULL;
    LOG_INFO("partition_released", "partition=%u", p);
}

int shardlog_purge(shardlog *sl, uint32_t p)
{
    if (p >= sl->map.nparts || sl->fetchers[p])
        return LS_EINVAL;
    writer_job *job = writer_job_new(NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0);
    if (!job)
        return LS_ENOMEM;
    job->kind = JOB_PURGE;
    job->reply = 0;
    job->received_ms = timefmt_now_ms();
    job->start_ns = timefmt_mono_ns();
    job->log_part = p;
    job->log_nparts = sl->map.nparts;
    enqueue(sl, NULL, job);
    LOG_INFO("partition_purge", "partition=%u note=\"given up: its customers are erased from this store\"", p);
    return LS_OK;
}

int shardlog_holds(const shardlog *sl, uint32_t p)
{
    return p < sl->map.nparts && sl->fetchers[p] != NULL;
}

void shardlog_stop(shardlog **slp)
{
    if (!slp || !*slp)
        return;
    shardlog *sl = *slp;
    for (uint32_t p = 0; p < sl->map.nparts; p++)
        if (sl->fetchers[p])
            atomic_store(&sl->fetchers[p]->stop, 1);
    for (uint32_t p = 0; p < sl->map.nparts; p++)
        shardlog_release(sl, p);
    pthread_mutex_lock(&sl->lock);
    sl->stopping = 1;
    pthread_cond_broadcast(&sl->nonempty);
    pthread_mutex_unlock(&sl->lock);
    if (sl->hub_running)
        pthread_join(sl->hub, NULL);
    zmq_close(sl->to_writer);
    pthread_cond_destroy(&sl->nonempty);
    pthread_cond_destroy(&sl->nonfull);
    pthread_mutex_destroy(&sl->lock);
    free(sl);
    *slp = NULL;
}
