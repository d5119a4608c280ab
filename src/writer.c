/* writer.c -- the writer thread: group commit of track batches, replies
 * after the sync, and background pruning of old idempotency keys
 * (see writer.h). */
#define _POSIX_C_SOURCE 200809L
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "codec.h"
#include "leadscore/error.h"
#include "log.h"
#include "msgio.h"
#include "timefmt.h"

#define PRUNE_EVERY_MS 1000
#define PRUNE_CHUNK 5000
#define IDLE_POLL_MS 200

struct writer {
    service *svc;
    pthread_t thread;
    void *pull;        /* jobs in */
    void *replies;     /* replies out, to the server loop */
    int nproducers;
    int finished;      /* producers that said they are done */
    codec_writer reply;
    writer_job **group;
    size_t group_cap;
    int64_t last_prune_ms;
    store_held held;   /* the customer being written, reused across groups */
};

/* ------------------------------------------------------------------ */
/* Jobs                                                                */
/* ------------------------------------------------------------------ */

static uint8_t *copy_in(uint8_t **cursor, const void *src, size_t len)
{
    uint8_t *at = *cursor;
    if (len)
        memcpy(at, src, len);
    *cursor += len;
    return at;
}

static void copy_str(uint8_t **cursor, ls_str *s)
{
    if (s->len)
        s->ptr = (const char *)copy_in(cursor, s->ptr, s->len);
}

writer_job *writer_job_new(const ls_event *events, size_t n,
                           const void *envelope, size_t envelope_len,
                           const void *id, size_t id_len,
                           const void *rejected, size_t rejected_len, uint32_t nrejected)
{
    size_t strings = 0;
    for (size_t i = 0; i < n; i++) {
        const ls_event *e = &events[i];
        strings += e->customer.len + e->event_id.len + e->session.len + e->product.len +
                   e->category.len + e->order_id.len;
    }
    size_t total = sizeof(writer_job) + n * sizeof(ls_event) + strings + envelope_len + id_len + rejected_len;
    writer_job *job = malloc(total);
    if (!job)
        return NULL;
    memset(job, 0, sizeof *job);
    uint8_t *cur = (uint8_t *)(job + 1);
    job->nevents = n;
    job->events = (ls_event *)copy_in(&cur, events, n * sizeof(ls_event));
    for (size_t i = 0; i < n; i++) {
        ls_event *e = &job->events[i];
        copy_str(&cur, &e->customer);
        copy_str(&cur, &e->event_id);
        copy_str(&cur, &e->session);
        copy_str(&cur, &e->product);
        copy_str(&cur, &e->category);
        copy_str(&cur, &e->order_id);
    }
    job->envelope = copy_in(&cur, envelope, envelope_len);
    job->envelope_len = envelope_len;
    job->id = id_len ? copy_in(&cur, id, id_len) : NULL;
    job->id_len = id_len;
    job->rejected = copy_in(&cur, rejected, rejected_len);
    job->rejected_len = rejected_len;
    job->nrejected = nrejected;
    return job;
}

writer_job *writer_job_identity(int kind, const ls_str *subject, const ls_str *object,
                                const void *envelope, size_t envelope_len, const void *id, size_t id_len)
{
    ls_event pair[2];
    event_init(&pair[0]);
    event_init(&pair[1]);
    pair[0].customer = *subject;
    if (object)
        pair[1].customer = *object;
    /* the two strings travel as the customers of two placeholder events */
    writer_job *job = writer_job_new(pair, 2, envelope, envelope_len, id, id_len, NULL, 0, 0);
    if (!job)
        return NULL;
    job->kind = kind;
    job->subject = job->events[0].customer;
    job->object = job->events[1].customer;
    job->nevents = 0;
    return job;
}

void writer_job_free(writer_job **job)
{
    if (job) {
        free(*job);
        *job = NULL;
    }
}

int writer_submit(void *push, writer_job *job)
{
    return zmq_send(push, &job, sizeof job, 0) < 0 ? LS_EINTERNAL : LS_OK;
}

int writer_finish(void *push)
{
    writer_job *none = NULL;
    return zmq_send(push, &none, sizeof none, 0) < 0 ? LS_EINTERNAL : LS_OK;
}

/* ------------------------------------------------------------------ */
/* Applying a group in one transaction                                 */
/* ------------------------------------------------------------------ */

/* Alias and forget change records directly: the open one is written
 * back first.  A refused alias is the job's own outcome, not the group's. */
static int apply_identity(store_wtxn *txn, writer_job *job, store_held *rec)
{
    int rc = store_wtxn_put_back(txn, rec);
    if (rc)
        return rc;
    if (job->kind == JOB_ALIAS)
        rc = store_wtxn_alias(txn, job->subject.ptr, job->subject.len, job->object.ptr, job->object.len, &job->result);
    else
        rc = store_wtxn_forget(txn, job->subject.ptr, job->subject.len, &job->result);
    if (job->kind == JOB_ALIAS && (rc == LS_EINVAL || rc == LS_ETOOLARGE)) {
        job->status = rc; /* refused before it changed anything */
        return LS_OK;
    }
    return rc;
}

static int apply_job(store_wtxn *txn, writer_job *job, store_held *rec)
{
    if (job->kind != JOB_EVENTS)
        return apply_identity(txn, job, rec);
    for (size_t i = 0; i < job->nevents; i++) {
        const ls_event *ev = &job->events[i];
        if (ev->event_id.len) {
            int seen = 0;
            int rc = store_wtxn_claim_event_id(txn, ev->event_id.ptr, ev->event_id.len,
                                               ev->customer.ptr, ev->customer.len, job->received_ms, &seen);
            if (rc)
                return rc;
            if (seen) {
                job->duplicates++;
                continue;
            }
        }
        int dup = 0, rc = store_wtxn_add_event(txn, rec, ev, &dup);
        if (rc)
            return rc;
        if (dup)
            job->duplicates++; /* its id is in the customer's history */
        else
            job->accepted++;
    }
    return LS_OK;
}

/* Clears what an aborted attempt wrote into the jobs. */
static void reset_jobs(writer *w, size_t njobs)
{
    for (size_t j = 0; j < njobs; j++) {
        w->group[j]->accepted = w->group[j]->duplicates = 0;
        w->group[j]->status = LS_OK;
        w->group[j]->result = 0;
    }
}

static int try_group(writer *w, size_t njobs)
{
    store_wtxn *txn = NULL;
    store_held *rec = &w->held;
    int rc = store_write_begin(w->svc->store, &txn);
    if (rc)
        goto done;
    rec->open = 0; /* nothing held yet */
    for (size_t j = 0; j < njobs && rc == LS_OK; j++)
        rc = apply_job(txn, w->group[j], rec);
    if (rc == LS_OK)
        rc = store_wtxn_put_back(txn, rec);
    if (rc == LS_OK) {
        int64_t t0 = timefmt_mono_ns();
        rc = store_write_commit(&txn);
        uint64_t ns = (uint64_t)(timefmt_mono_ns() - t0), events = 0;
        for (size_t j = 0; j < njobs; j++)
            events += w->group[j]->accepted;
        atomic_fetch_add(&w->svc->stats.commit_ns, ns);
        if (rc == LS_OK)
            stats_commit(&w->svc->stats, events, ns);
    }
done:
    store_write_abort(&txn);
    rec->open = 0;
    return rc;
}

/* Applies the group; when the map is full it grows it (up to map-max) and
 * tries again, so the batch is not lost. */
static int apply_group(writer *w, size_t njobs)
{
    int rc;
    while ((rc = try_group(w, njobs)) == LS_EFULL) {
        reset_jobs(w, njobs);
        store_stats st;
        if (store_grow(w->svc->store, w->svc->cfg.map_max) != LS_OK) {
            LOG_ERROR("store_full", "map_max=%llu note=\"track answers unavailable; reads go on\"",
                      (unsigned long long)w->svc->cfg.map_max);
            break;
        }
        store_stat(w->svc->store, &st);
        LOG_INFO("store_grown", "map_bytes=%llu", (unsigned long long)st.map_bytes);
    }
    if (rc != LS_OK && rc != LS_EFULL)
        LOG_ERROR("commit_failed", "jobs=%zu reason=\"%s\"", njobs, ls_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------------ */
/* Replies and bookkeeping                                             */
/* ------------------------------------------------------------------ */

static const char *job_error(const writer_job *job, int status)
{
    if (job->status == LS_EINVAL)
        return "\"from\" is already merged into another customer, or \"from\" and \"to\" are the same id";
    if (job->status == LS_ETOOLARGE)
        return "\"from\" and \"to\" together are longer than 510 bytes: an alias cannot hold them";
    return status == LS_EFULL ? "the store is full: events were not stored, retry later"
                              : "the events could not be committed; nothing was stored, retry";
}

static void encode_reply(codec_writer *cw, const writer_job *job, int status)
{
    if (status == LS_OK && job->status != LS_OK)
        status = job->status;
    codec_writer_reset(cw);
    cw_map(cw);
    cw_key(cw, "ok");
    cw_bool(cw, status == LS_OK);
    if (job->id) {
        cw_key(cw, "id");
        cw_raw(cw, job->id, job->id_len, 1);
    }
    if (status == LS_OK && job->kind != JOB_EVENTS) {
        cw_key(cw, job->kind == JOB_ALIAS ? "merged" : "deleted");
        cw_bool(cw, job->result);
    } else if (status == LS_OK) {
        cw_key(cw, "accepted");
        cw_int(cw, job->accepted);
        cw_key(cw, "duplicates");
        cw_int(cw, job->duplicates);
        cw_key(cw, "rejected");
        cw_array(cw);
        cw_raw(cw, job->rejected, job->rejected_len, job->nrejected);
        cw_end(cw);
    } else {
        cw_key(cw, "error");
        cw_map(cw);
        cw_key(cw, "code");
        cw_str(cw, ls_wire_code(status));
        cw_key(cw, "message");
        cw_str(cw, job_error(job, status));
        cw_end(cw);
    }
    cw_end(cw);
}

static void send_reply(writer *w, writer_job *job, int status)
{
    service_meta meta = {META_REPLY, (uint8_t)job->op, status == LS_OK && job->status == LS_OK, {0}, job->start_ns};
    encode_reply(&w->reply, job, status);
    if (msgio_send_bytes(w->replies, &meta, sizeof meta, 1) == 0 &&
        msgio_send_envelope(w->replies, job->envelope, job->envelope_len) == 0)
        msgio_send_bytes(w->replies, w->reply.sb.data, w->reply.sb.size, 0);
}

static void finish_group(writer *w, size_t njobs, int status)
{
    stats *st = &w->svc->stats;
    uint64_t accepted = 0, dups = 0;
    for (size_t j = 0; j < njobs; j++) {
        writer_job *job = w->group[j];
        accepted += job->accepted;
        dups += job->duplicates;
        if (job->reply)
            send_reply(w, job, status);
        writer_job_free(&w->group[j]);
    }
    if (status == LS_OK) {
        atomic_fetch_add(&st->commits, 1);
        atomic_fetch_add(&st->commit_events, accepted);
        atomic_fetch_add(&st->events_accepted, accepted);
        atomic_fetch_add(&st->events_duplicate, dups);
    } else {
        atomic_fetch_add(&st->commit_failures, 1);
    }
}

static void prune_event_ids(writer *w)
{
    int64_t now = timefmt_now_ms();
    if (now - w->last_prune_ms < PRUNE_EVERY_MS)
        return;
    w->last_prune_ms = now;
    store_wtxn *txn;
    size_t pruned = 0;
    if (store_write_begin(w->svc->store, &txn) != LS_OK)
        return;
    if (store_wtxn_prune_event_ids(txn, now - w->svc->cfg.dedupe_window_ms, PRUNE_CHUNK, &pruned) == LS_OK &&
        pruned > 0 && store_write_commit(&txn) == LS_OK)
        atomic_fetch_add(&w->svc->stats.event_ids_pruned, pruned);
    store_write_abort(&txn);
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

static int grow_group(writer *w, size_t need)
{
    if (need <= w->group_cap)
        return LS_OK;
    size_t cap = w->group_cap ? w->group_cap * 2 : 256;
    writer_job **g = realloc(w->group, cap * sizeof *g);
    if (!g)
        return LS_ENOMEM;
    w->group = g;
    w->group_cap = cap;
    return LS_OK;
}

/* Receives one job pointer; returns 1 for a job, 0 for a producer's
 * finish token, -1 when nothing is there (EAGAIN) or on error. */
static int take(writer *w, int flags, writer_job **out)
{
    writer_job *job;
    int n = zmq_recv(w->pull, &job, sizeof job, flags);
    if (n != (int)sizeof job)
        return -1;
    if (!job) {
        w->finished++;
        return 0;
    }
    *out = job;
    return 1;
}

/* Collects jobs into w->group: blocks for at most `wait_ms` for the first,
 * then takes what is waiting within the count and time budget. */
static size_t collect(writer *w, int wait_ms)
{
    zmq_pollitem_t item = {w->pull, 0, ZMQ_POLLIN, 0};
    size_t n = 0, events = 0;
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return 0;
    int64_t deadline = timefmt_mono_ns() + w->svc->cfg.commit_window_ms * 1000000;
    int flags = 0;
    while (events < w->svc->cfg.commit_max_events && w->finished < w->nproducers) {
        writer_job *job;
        int got = take(w, flags, &job);
        flags = ZMQ_DONTWAIT;
        if (got < 0)
            break;
        if (got == 0)
            continue;
        if (grow_group(w, n + 1) != LS_OK) {
            send_reply(w, job, LS_ENOMEM);
            writer_job_free(&job);
            break;
        }
        w->group[n++] = job;
        events += job->nevents;
        if (timefmt_mono_ns() > deadline)
            break;
    }
    return n;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    while (w->finished < w->nproducers) {
        size_t n = collect(w, IDLE_POLL_MS);
        if (n > 0)
            finish_group(w, n, apply_group(w, n));
        if (w->svc->cfg.dedupe_window_ms > 0)
            prune_event_ids(w);
    }
    service_meta done = {META_WRITER_DONE, 0, 1, {0}, 0};
    msgio_send_bytes(w->replies, &done, sizeof done, 0);
    return NULL;
}

int writer_start(writer **out, service *svc, int nproducers)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return LS_ENOMEM;
    w->svc = svc;
    w->nproducers = nproducers;
    store_held_init(&w->held);
    codec_writer_init(&w->reply);
    w->pull = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_WRITER, 1, SERVICE_WRITER_HWM);
    w->replies = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_REPLIES, 0, 0);
    if (!w->pull || !w->replies)
        goto fail;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        goto fail;
    *out = w;
    return LS_OK;
fail:
    if (w->pull)
        zmq_close(w->pull);
    if (w->replies)
        zmq_close(w->replies);
    codec_writer_destroy(&w->reply);
    free(w);
    return LS_EINTERNAL;
}

void writer_join(writer **wp)
{
    if (!wp || !*wp)
        return;
    writer *w = *wp;
    pthread_join(w->thread, NULL);
    zmq_close(w->pull);
    zmq_close(w->replies);
    codec_writer_destroy(&w->reply);
    store_held_free(&w->held);
    free(w->group);
    free(w);
    *wp = NULL;
}
