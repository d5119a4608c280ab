/* writer.c -- the writer thread: group commit of track batches, replies
 * after the sync, and between groups the pruning of old idempotency keys,
 * the merge of new ones into event_ids and the build of the filter of
 * merged ones (see writer.h). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "automation.h"
#include "bytecur.h"
#include "codec.h"
#include "leadscore/error.h"
#include "log.h"
#include "msgio.h"
#include "partition.h"
#include "timefmt.h"
#include "valuememo.h"

#define PRUNE_EVERY_MS 1000
#define PRUNE_CHUNK 5000
#define IDLE_POLL_MS 200
#define READER_CHECK_MS 5000      /* how often dead readers are looked for */
#define MAX_GROWS 64              /* map doublings one group may wait for */
#define FORGET_RESERVE_MIN (1ULL << 20)
#define FORGET_RESERVE_MAX (1ULL << 30)
#define AUDIENCE_REPLY_WAIT_MS 5000 /* an audience_put waits this long for its first pass */
#define MAX_WAITING 256
/* Jobs each of the writer's sockets queues on its side, on top of each
 * producer's own SERVICE_WRITER_HWM: deep enough that a backlog of
 * fire-and-forget batches, however small each, is taken in groups of
 * commit-max-events (fewer, larger commits write each B-tree page once
 * for more events).  What bounds that backlog is its count of events:
 * a worker holds its PULL job while the writer holds twice
 * commit-max-events (worker.c), or while this queue is full, and takes no
 * more PULL batches until it went, so a flood backs up to the PULL
 * socket. */
#define WRITER_QUEUE_JOBS 65536
/* Keys of event_ids one step of the build of the filter of merged ids
 * scans between groups (store_build_id_filter): some 10 ms.  A step
 * that failed (no memory for the filter) is tried again after
 * ID_FILTER_RETRY_MS. */
#define ID_FILTER_STEP 50000
#define ID_FILTER_RETRY_MS 60000
/* A purge txn looks at this many customers and erases at most PURGE_ERASE
 * of them, so a group waits for one short txn at most. */
#define PURGE_VISIT 4096
#define PURGE_ERASE 256
/* How many events ahead a run's claims fetch their id's slot in the
 * window keys held in memory (store_wtxn_prefetch_event_id). */
#define CLAIM_PREFETCH 4
/* While acknowledged requests keep coming (one in the last ACKED_RECENT_NS),
 * a group takes at most --pull-max-events fire-and-forget events, so an
 * ack waits for a short group, not for a long PULL one. */
#define ACKED_RECENT_NS 1000000000LL

/* One event of a run of track jobs, in the order it is applied. */
typedef struct {
    uint64_t key[2];   /* the customer id's first 16 bytes, big-endian, zero-padded */
    const ls_event *ev;
    writer_job *job;
    size_t seq;        /* its place in arrival order */
} run_event;

/* What the writer reuses from group to group: the customer being
 * written, and the events of a run sorted by customer. */
typedef struct {
    store_held held;
    run_event *ev;
    size_t ev_cap;
    const ls_event **order; /* the same events in arrival order ... */
    uint8_t *accepted;      /* ... and which of them were stored */
    size_t order_cap;
    char damaged[STORE_MAX_KEY]; /* the customer whose stored value the last attempt could not decode */
    size_t damaged_len;
} group_scratch;

static void scratch_init(group_scratch *g)
{
    memset(g, 0, sizeof *g);
    store_held_init(&g->held);
}

static void scratch_free(group_scratch *g)
{
    store_held_free(&g->held);
    free(g->ev);
    free(g->order);
    free(g->accepted);
    g->ev = NULL;
    g->order = NULL;
    g->accepted = NULL;
    g->ev_cap = g->order_cap = 0;
}

struct writer {
    service *svc;
    pthread_t thread;
    void *pull;        /* jobs in: acknowledged requests, identity and audience jobs, the shard log */
    void *bulk;        /* fire-and-forget (PULL) jobs in, taken after those; NULL in cluster mode */
    void *replies;     /* replies out, to the server loop */
    int nproducers, nbulk;
    int finished, bulk_finished; /* producers that said they are done, on each socket */
    int64_t acked_ns;  /* when the last acknowledged job came (the bulk share) */
    codec_writer reply;
    writer_job **group;
    size_t group_cap;
    int64_t last_prune_ms;
    int64_t last_reader_check_ms;
    group_scratch scratch; /* the customer being written and the sorted events, reused across groups */
    automation *autom; /* NULL: --triggers off */
    uint64_t notified_seq;        /* the last seq told to the server loop */
    writer_job *waiting[MAX_WAITING]; /* audience_put replies held until the first pass */
    int nwaiting;
    int64_t last_auto_error_ms;   /* automation failures are logged at most every 10 s */
    int64_t last_merge_error_ms;  /* ... and so are window-key merge failures */
    int64_t id_filter_retry_ms;   /* no build step of the id filter before then */
    int64_t log_rcv_ms;           /* cluster mode: newest receive time of a log job applied */
    int purge_due;                /* a partition may be marked for purging: look */
    uint32_t purge_part;          /* the partition being purged (UINT32_MAX: none yet) ... */
    char purge_after[STORE_MAX_KEY];  /* ... and the last customer id looked at */
    size_t purge_after_len;
    uint64_t purged;              /* customers it erased so far */
    int64_t last_purge_error_ms;
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
        if (*job && (*job)->queued)
            atomic_fetch_sub((*job)->queued, (*job)->nevents);
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

/* A failure that is the store's or the disk's, not one job's: the whole
 * group waits (the map grows) or fails.  Any other failure inside a job
 * is that job's alone: it is left out and the group tried again. */
static int group_level(int rc)
{
    return rc == LS_EFULL || rc == LS_EUNAVAIL || rc == LS_ENOMEM || rc == LS_EIO;
}

/* A refusal of an identity request: its answer, not a failure. */
static int refusal(int rc)
{
    return rc == LS_EINVAL || rc == LS_ETOOLARGE;
}

/* A failure to decode a value the store holds (store_wtxn_damaged): no
 * request's fault, and no retry mends it. */
static int stored_damage(int rc)
{
    return rc == LS_EPARSE || rc == LS_EVERSION;
}

/* Every key a job would write, checked before the transaction (the store
 * checks them again on each write). */
static int check_job(const writer_job *job)
{
    if (job->kind == JOB_ALIAS)
        return store_check_alias(job->subject.len, job->object.len);
    if (job->kind == JOB_FORGET)
        return store_check_customer_id(job->subject.len);
    if (job->kind == JOB_AUDIENCE_PUT || job->kind == JOB_AUDIENCE_DELETE)
        return LS_OK; /* checked by the op; the txn refuses what it must */
    for (size_t i = 0; i < job->nevents; i++) {
        int rc = store_check_event(job->events[i].customer.len, job->events[i].event_id.len);
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* A forget erases the triggers of the ids merged into the customer too. */
static int forget_alias_triggers(store_wtxn *txn, const char *anon, size_t alen, void *arg)
{
    return automation_forget(arg, txn, anon, alen, 1, NULL, 0);
}

/* An alias's target (`to`, or the customer it is itself merged into)
 * keeps when each moment last fired for `from` (automation_inherit). */
static int inherit_fired(store_wtxn *txn, automation *a, const ls_str *to, const uint8_t *state, size_t state_len)
{
    const char *target;
    size_t tlen;
    int rc = store_wtxn_resolve(txn, to->ptr, to->len, &target, &tlen);
    if (rc || tlen > STORE_MAX_KEY)
        return rc;
    char id[STORE_MAX_KEY + 1];
    memcpy(id, target, tlen); /* copy before writing in the txn */
    return automation_inherit(a, txn, id, tlen, state, state_len);
}

/* Erases customer id as `forget` does: the record the id lands on, every
 * alias to it and its idempotency keys (store_wtxn_forget), and what
 * automation keeps of it: its audiences, its triggers and those of the
 * ids merged into it.  *deleted says whether there was a record.  With
 * later not NULL the keys are left for store_wtxn_forget_keys (a purge
 * drops those of all its customers in one pass). */
static int forget_customer(store_wtxn *txn, const char *id, size_t len, automation *a, store_forgotten *later,
                           int *deleted)
{
    static _Thread_local uint8_t state[AUTOMATION_STATE_MAX];
    const char *target;
    size_t tlen, state_len = 0;
    char subject[STORE_MAX_KEY + 1];
    int rc = store_wtxn_resolve(txn, id, len, &target, &tlen);
    if (rc != LS_OK)
        return rc;
    if (tlen >= sizeof subject)
        return later ? store_wtxn_forget_record(txn, id, len, later, deleted) : store_wtxn_forget(txn, id, len, deleted);
    memcpy(subject, target, tlen);
    rc = automation_state_read(txn, subject, tlen, state, sizeof state, &state_len);
    /* a value whose framing is damaged is erased too (the right to
     * erasure holds for it; what automation kept in it is unreadable, so
     * every audience and trigger of the id goes) */
    int damaged = stored_damage(rc);
    if (damaged)
        rc = LS_OK;
    /* triggers fired for ids merged into it name those ids: they go too
     * (also while the automation does not run: its tables stay) */
    if (rc == LS_OK)
        rc = store_wtxn_each_alias(txn, subject, tlen, forget_alias_triggers, a);
    if (rc == LS_OK)
        rc = later ? store_wtxn_forget_record(txn, id, len, later, deleted) : store_wtxn_forget(txn, id, len, deleted);
    if (rc == LS_OK && !a)
        rc = automation_forget_stopped(txn, subject, tlen, 1, damaged ? NULL : state, damaged ? 0 : state_len,
                                       timefmt_now_ms());
    else if (rc == LS_OK)
        rc = damaged ? automation_forget_damaged(a, txn, subject, tlen)
                     : automation_forget(a, txn, subject, tlen, 1, state, state_len);
    return rc;
}

/* Alias and forget change records directly.  A request refused before it
 * wrote anything (an alias whose from is merged elsewhere) is the job's
 * answer; a failure after it wrote is a failure, rolled back.  What
 * automation keeps of a customer lives in its value: it is read first,
 * then cleaned up after the value is gone. */
static int apply_identity(store_wtxn *txn, writer_job *job, automation *a)
{
    static _Thread_local uint8_t state[AUTOMATION_STATE_MAX];
    uint64_t writes = store_wtxn_writes(txn);
    size_t state_len = 0;
    int rc = LS_OK;
    if (job->kind == JOB_ALIAS) {
        static _Thread_local ls_features from_rec;
        int have_rec = 0;
        if (job->subject.len <= STORE_MAX_KEY)
            rc = automation_state_read(txn, job->subject.ptr, job->subject.len, state, sizeof state, &state_len);
        if (rc == LS_OK && a && state_len) /* what from was, for the exits it fires */
            have_rec = store_wtxn_get(txn, job->subject.ptr, job->subject.len, &from_rec) == LS_OK;
        if (rc == LS_OK)
            rc = store_wtxn_alias(txn, job->subject.ptr, job->subject.len, job->object.ptr, job->object.len,
                                  &job->result);
        if (rc == LS_OK && job->result && a && have_rec)
            rc = automation_alias_exits(a, txn, job->subject.ptr, job->subject.len, &from_rec, state, state_len);
        if (rc == LS_OK && job->result && !a) /* from's record is gone into to's */
            rc = automation_forget_stopped(txn, job->subject.ptr, job->subject.len, 0, state, state_len,
                                           timefmt_now_ms());
        else if (rc == LS_OK && job->result)
            rc = automation_forget(a, txn, job->subject.ptr, job->subject.len, 0, state, state_len);
        if (rc == LS_OK && job->result && a && state_len) /* what fired for from: on the record it joined */
            rc = inherit_fired(txn, a, &job->object, state, state_len);
        if (rc == LS_OK && job->result && a)
            rc = automation_touch_joined(a, job->object.ptr, job->object.len);
    } else {
        rc = forget_customer(txn, job->subject.ptr, job->subject.len, a, NULL, &job->result);
    }
    if (refusal(rc) && store_wtxn_writes(txn) == writes) {
        job->status = rc;
        return LS_OK;
    }
    return rc;
}

/* Defines or deletes an audience.  A refusal (a bad rule, too many
 * audiences) is the job's answer, written before anything is. */
static int apply_audience(store_wtxn *txn, writer_job *job, automation *a)
{
    uint64_t writes = store_wtxn_writes(txn);
    char rule[ARULE_MAX_TEXT + 1];
    int rc;
    if (!a) {
        job->status = LS_EUNAVAIL;
        snprintf(job->why, sizeof job->why, "audiences need marketing automation: the server runs with triggers off");
        return LS_OK;
    }
    if (job->kind == JOB_AUDIENCE_DELETE)
        return automation_audience_delete(a, txn, job->subject.ptr, job->subject.len, &job->result);
    if (job->object.len > ARULE_MAX_TEXT) {
        job->status = LS_ETOOLARGE;
        snprintf(job->why, sizeof job->why, "the rule is longer than %d bytes", ARULE_MAX_TEXT);
        return LS_OK;
    }
    memcpy(rule, job->object.ptr, job->object.len);
    rule[job->object.len] = '\0';
    rc = automation_audience_put(a, txn, job->subject.ptr, job->subject.len, rule, &job->result, &job->changed,
                                 job->why, sizeof job->why);
    if ((rc == LS_EPARSE || rc == LS_EBADREQ || rc == LS_ETOOLARGE) && store_wtxn_writes(txn) == writes) {
        job->status = rc == LS_EPARSE ? LS_EBADREQ : rc;
        return LS_OK;
    }
    return rc;
}

/* Applies one job.  The customer its events land on stays held for the
 * next job (consecutive jobs of one customer write it back once), unless
 * strict: then it is written back before the job ends, so every write a
 * job causes is made while that job is applied and a failure names it. */
static int apply_job(store_wtxn *txn, writer_job *job, store_held *rec, int strict, automation *a)
{
    int rc;
    if (job->log_skip)
        return LS_OK;
    if (job->kind == JOB_AUDIENCE_PUT || job->kind == JOB_AUDIENCE_DELETE)
        return apply_audience(txn, job, a);
    if (job->kind == JOB_PURGE)
        return (rc = store_wtxn_put_back(txn, rec)) ? rc : store_wtxn_purge_mark(txn, job->log_part, job->log_nparts);
    if (job->kind != JOB_EVENTS) /* changes records directly: the held one goes back first */
        return (rc = store_wtxn_put_back(txn, rec)) ? rc : apply_identity(txn, job, a);
    rc = LS_OK;
    for (size_t i = 0; i < job->nevents && rc == LS_OK; i++) {
        const ls_event *ev = &job->events[i];
        if (ev->event_id.len) {
            int seen = 0;
            rc = store_wtxn_claim_event_id(txn, ev->event_id.ptr, ev->event_id.len,
                                           ev->customer.ptr, ev->customer.len, job->received_ms, &seen);
            if (rc)
                break;
            if (seen) {
                job->duplicates++;
                continue;
            }
        }
        int dup = 0;
        rc = store_wtxn_add_event(txn, rec, ev, &dup);
        if (rc)
            break;
        if (dup) {
            job->duplicates++; /* its id is in the customer's history */
        } else {
            job->accepted++;
            if (a && (rc = automation_touch(a, ev->customer.ptr, ev->customer.len)))
                break;
        }
    }
    if (rc == LS_OK && strict)
        rc = store_wtxn_put_back(txn, rec);
    return rc;
}

/* The 8 bytes of id from byte at on, as a big-endian number, zero-padded:
 * numbers in this order are ids in memcmp order, up to ties. */
static uint64_t id_prefix(const ls_str *id, size_t at)
{
    uint8_t b[8] = {0};
    if (at < id->len)
        memcpy(b, id->ptr + at, id->len - at < 8 ? id->len - at : 8);
    return bytecur_load_be64(b);
}

/* Orders a run's events by customer id, arrival order within one.  The
 * prefixes kept in the run decide most pairs without reading the ids
 * (scattered over the jobs' buffers); a tie is settled as LMDB orders
 * keys, by the bytes and then the length. */
static int by_customer(const void *pa, const void *pb)
{
    const run_event *a = pa, *b = pb;
    if (a->key[0] != b->key[0])
        return a->key[0] < b->key[0] ? -1 : 1;
    if (a->key[1] != b->key[1])
        return a->key[1] < b->key[1] ? -1 : 1;
    size_t la = a->ev->customer.len, lb = b->ev->customer.len;
    int c = memcmp(a->ev->customer.ptr, b->ev->customer.ptr, la < lb ? la : lb);
    if (c == 0 && la != lb)
        c = la < lb ? -1 : 1;
    if (c == 0)
        c = a->seq < b->seq ? -1 : 1;
    return c;
}

static int reserve_run(group_scratch *g, size_t n)
{
    if (n > g->ev_cap) {
        run_event *e = realloc(g->ev, n * sizeof *e);
        if (!e)
            return LS_ENOMEM;
        g->ev = e;
        g->ev_cap = n;
    }
    if (n > g->order_cap) {
        const ls_event **o = realloc(g->order, n * sizeof *o);
        if (o)
            g->order = o;
        uint8_t *b = o ? realloc(g->accepted, n) : NULL;
        if (!b)
            return LS_ENOMEM;
        g->accepted = b;
        g->order_cap = n;
    }
    return LS_OK;
}

/* Claims the event ids of a run's events in arrival order (the first of
 * two events with one id wins, as one job after another would have it)
 * and lists the events not seen before in g->ev.  *n says how many. */
static int claim_run(store_wtxn *txn, writer_job **jobs, size_t count, group_scratch *g, size_t *n)
{
    *n = 0;
    for (size_t j = 0; j < count; j++) {
        writer_job *job = jobs[j];
        for (size_t i = 0; i < job->nevents && !job->failed_alone && !job->log_skip; i++) {
            const ls_event *ev = &job->events[i];
            if (i + CLAIM_PREFETCH < job->nevents && job->events[i + CLAIM_PREFETCH].event_id.len)
                store_wtxn_prefetch_event_id(txn, job->events[i + CLAIM_PREFETCH].event_id.ptr,
                                             job->events[i + CLAIM_PREFETCH].event_id.len);
            if (ev->event_id.len) {
                int seen = 0, rc = store_wtxn_claim_event_id(txn, ev->event_id.ptr, ev->event_id.len,
                                                             ev->customer.ptr, ev->customer.len, job->received_ms,
                                                             &seen);
                if (rc)
                    return rc;
                if (seen) {
                    job->duplicates++;
                    continue;
                }
            }
            g->accepted[*n] = 0;
            g->order[*n] = ev;
            g->ev[*n] = (run_event){{id_prefix(&ev->customer, 0), id_prefix(&ev->customer, 8)}, ev, job, *n};
            (*n)++;
        }
    }
    return LS_OK;
}

/* Sorted by customer, a run's events are read in an order unrelated to
 * where they lie (in the jobs' buffers, by arrival): the next ones are
 * brought into the cache a few steps ahead, the event first, then the
 * strings it points to. */
#define PREFETCH_EVENT_AHEAD 4
#define PREFETCH_STRINGS_AHEAD 2

static void prefetch_run(const group_scratch *g, size_t n, size_t i)
{
    if (i + PREFETCH_EVENT_AHEAD < n) {
        const char *e = (const char *)g->ev[i + PREFETCH_EVENT_AHEAD].ev;
        for (size_t off = 0; off < sizeof(ls_event); off += 64)
            __builtin_prefetch(e + off);
    }
    if (i + PREFETCH_STRINGS_AHEAD < n)
        __builtin_prefetch(g->ev[i + PREFETCH_STRINGS_AHEAD].ev->customer.ptr);
}

/* Applies consecutive track jobs as one run (not strict): their events
 * sorted by customer, so each customer's record is read, replayed and
 * written once for the run however its events were spread over the jobs,
 * and the B-tree is walked in key order.  The outcome is the jobs' one by
 * one: ids are claimed in arrival order, a customer's events are added in
 * arrival order, and the customers are touched for automation in the
 * order their first stored event arrived. */
static int apply_run(store_wtxn *txn, writer_job **jobs, size_t count, group_scratch *g, automation *a)
{
    size_t total = 0, n;
    for (size_t j = 0; j < count; j++)
        total += jobs[j]->failed_alone ? 0 : jobs[j]->nevents;
    int rc = reserve_run(g, total);
    if (rc == LS_ENOMEM) { /* no room to sort: the jobs one by one, as without runs */
        rc = LS_OK;
        for (size_t j = 0; j < count && rc == LS_OK; j++)
            if (!jobs[j]->failed_alone)
                rc = apply_job(txn, jobs[j], &g->held, 0, a);
        return rc;
    }
    if (rc == LS_OK)
        rc = claim_run(txn, jobs, count, g, &n);
    if (rc)
        return rc;
    if (n > 1)
        qsort(g->ev, n, sizeof *g->ev, by_customer);
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        prefetch_run(g, n, i);
        if ((rc = store_wtxn_add_event(txn, &g->held, g->ev[i].ev, &dup)) != LS_OK)
            return rc;
        if (dup) {
            g->ev[i].job->duplicates++; /* its id is in the customer's history */
        } else {
            g->ev[i].job->accepted++;
            g->accepted[g->ev[i].seq] = 1;
        }
    }
    if (!a)
        return LS_OK;
    for (size_t i = 0; i < n; i++) /* in arrival order */
        if (g->accepted[i] && (rc = automation_touch(a, g->order[i]->customer.ptr, g->order[i]->customer.len)))
            return rc;
    return LS_OK;
}

/* How many of jobs[0..n) are track jobs in a row (left-out jobs do not
 * break a run); they are applied as one run unless the group is strict. */
static size_t events_run(writer_job **jobs, size_t n)
{
    size_t k = 0;
    while (k < n && jobs[k]->kind == JOB_EVENTS)
        k++;
    return k;
}

/* Clears what an aborted attempt wrote into the jobs (not the outcome of
 * a job already left out). */
static void reset_jobs(writer_job **jobs, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        jobs[j]->accepted = jobs[j]->duplicates = 0;
        jobs[j]->log_skip = jobs[j]->log_gap = 0;
        jobs[j]->result = jobs[j]->changed = 0;
        if (!jobs[j]->failed_alone) { /* a job left out keeps its answer */
            jobs[j]->why[0] = '\0';
            jobs[j]->status = LS_OK;
        }
    }
}

/* Cluster mode: marks the log jobs already applied (log_seq not past the
 * store's position for their partition: a redelivery) and moves each
 * partition's position to its newest job, in the group's transaction.
 * A job past a hole (log_seq beyond position + 1), or of a partition
 * still being purged (fetched before the node gave it up and took it on
 * again), is never applied: it is skipped without moving the position and
 * counted after the commit, and the shard log fetches again from the
 * position once the purge is done (shardlog.h).  A job
 * left out on its own still moves the position: its message is passed,
 * not retried for ever. */
static int claim_log_positions(store_wtxn *txn, writer_job **jobs, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        writer_job *job = jobs[j];
        uint64_t at = 0;
        if (job->log_seq == 0)
            continue;
        int rc = store_wtxn_log_position(txn, job->log_part, &at);
        if (rc == LS_OK && store_wtxn_purge_pending(txn, job->log_part)) {
            job->log_skip = 1;
            job->log_gap = 1;
        } else if (rc == LS_OK && job->log_seq <= at) {
            job->log_skip = 1;
        } else if (rc == LS_OK && job->log_seq > at + 1) {
            job->log_skip = 1;
            job->log_gap = 1;
        } else if (rc == LS_OK) {
            rc = store_wtxn_set_log_position(txn, job->log_part, job->log_seq);
        }
        if (rc)
            return rc;
    }
    return LS_OK;
}

/* One attempt at the jobs not left out, in one transaction.  0 when it
 * committed; else the status, and *culprit says whose failure it was: the
 * index of the job that failed on its own (strict only), n when it was
 * the group's, n + 1 when a job failed but which one is not known (a
 * held customer written back late): then try again strict. */
static int try_group(service *svc, automation *a, group_scratch *g, writer_job **jobs, size_t n, int strict,
                     size_t *culprit)
{
    store_held *rec = &g->held;
    store_wtxn *txn = NULL;
    model *m = NULL;
    *culprit = n;
    rec->open = 0; /* nothing held yet */
    g->damaged_len = 0;
    int rc = store_write_begin(svc->store, &txn);
    if (rc == LS_OK && a) {
        m = service_model_acquire(svc);
        rc = automation_begin(a, txn, m, timefmt_now_ms());
    }
    if (rc == LS_OK)
        rc = claim_log_positions(txn, jobs, n);
    for (size_t j = 0, run; j < n && rc == LS_OK; j += run) {
        run = strict ? 0 : events_run(jobs + j, n - j);
        if (run > 0)
            rc = apply_run(txn, jobs + j, run, g, a);
        else if (!jobs[j]->failed_alone)
            rc = apply_job(txn, jobs[j], rec, strict, a);
        run = run ? run : 1;
        if (rc != LS_OK && !group_level(rc))
            *culprit = strict ? j : n + 1;
    }
    if (rc == LS_OK && (rc = store_wtxn_put_back(txn, rec)) != LS_OK && !group_level(rc))
        *culprit = n + 1;
    if (rc == LS_OK && a) {
        rc = automation_finish(a, txn);
        if (rc == LS_OK && !strict) /* a running sweep pass rides along, sharing the fsync */
            rc = automation_sweep_along(a, txn);
        if (rc != LS_OK && rc != LS_EFULL)
            LOG_ERROR("automation_failed", "reason=\"%s\" note=\"the group is not committed\"", ls_strerror(rc));
    }
    if (rc == LS_OK) {
        int64_t t0 = timefmt_mono_ns();
        rc = store_write_commit(&txn);
        uint64_t ns = (uint64_t)(timefmt_mono_ns() - t0), events = 0;
        for (size_t j = 0; j < n; j++)
            events += jobs[j]->accepted;
        atomic_fetch_add(&svc->stats.commit_ns, ns);
        if (rc == LS_OK)
            stats_commit(&svc->stats, events, ns);
    }
    const char *damaged;
    if (txn && stored_damage(rc) && store_wtxn_damaged(txn, &damaged, &g->damaged_len))
        memcpy(g->damaged, damaged, g->damaged_len);
    store_write_abort(&txn);
    if (a && rc == LS_OK)
        automation_committed(a);
    else if (a)
        automation_aborted(a);
    model_unref(&m);
    rec->open = 0;
    return rc;
}

/* Leaves job out of its group because it failed inside the transaction
 * on its own (stats: jobs_failed_alone).  A job check_job refused before
 * the transaction is left out too, but it never ran: not counted. */
static void fail_alone(service *svc, writer_job *job)
{
    job->failed_alone = 1;
    atomic_fetch_add(&svc->stats.jobs_failed_alone, 1);
}

/* The room a forget may use past map-max when the map is full: erasure
 * is a legal duty, so it must not wait for an operator. */
static uint64_t forget_reserve(uint64_t map_max)
{
    uint64_t r = map_max / 16;
    return r < FORGET_RESERVE_MIN ? FORGET_RESERVE_MIN : r > FORGET_RESERVE_MAX ? FORGET_RESERVE_MAX : r;
}

/* After the group failed for want of room (map or disk), a forget runs
 * alone: deletes need few pages, and they may come from the freed pages
 * inside the file.  When the map has none, it lends the forget a reserve
 * past map-max and shrinks back after (to the pages then in use), so
 * tracks cannot take the reserve. */
static void forget_alone(service *svc, automation *a, group_scratch *g, writer_job *job)
{
    writer_job *one[1] = {job};
    size_t culprit;
    job->status = LS_OK;
    int rc = try_group(svc, a, g, one, 1, 1, &culprit);
    if (rc == LS_EFULL) {
        reset_jobs(one, 1);
        uint64_t max = svc->cfg.map_max;
        if (store_set_map_size(svc->store, max + forget_reserve(max)) == LS_OK)
            rc = try_group(svc, a, g, one, 1, 1, &culprit);
        store_set_map_size(svc->store, max); /* LMDB keeps what is in use */
    }
    if (rc != LS_OK) {
        reset_jobs(one, 1);
        job->status = rc;
        if (culprit == 0)
            fail_alone(svc, job);
    } else {
        atomic_fetch_add(&svc->stats.commits, 1);
        LOG_INFO("forget_alone", "note=\"the store was full; the forget ran alone\"");
    }
}

/* Adds the outcome of the group's jobs to the counters. */
static void count_jobs(service *svc, writer_job **jobs, size_t n, int rc)
{
    stats *st = &svc->stats;
    uint64_t accepted = 0, dups = 0;
    for (size_t j = 0; j < n; j++) {
        const writer_job *job = jobs[j];
        if (job->status == LS_OK) {
            accepted += job->accepted;
            dups += job->duplicates;
        } else if (job->nevents == 0) {
            continue;
        } else if (job->failed_alone) {
            atomic_fetch_add(&st->events_unstored_failed, job->nevents);
        } else if (job->status == LS_EFULL) {
            atomic_fetch_add(&st->events_unstored_full, job->nevents);
        } else {
            atomic_fetch_add(&st->events_unstored_unavailable, job->nevents);
        }
    }
    if (rc == LS_OK) {
        atomic_fetch_add(&st->commits, 1);
        atomic_fetch_add(&st->commit_events, accepted);
    } else {
        atomic_fetch_add(&st->commit_failures, 1);
    }
    atomic_fetch_add(&st->events_accepted, accepted);
    atomic_fetch_add(&st->events_duplicate, dups);
}

static void log_failure(const service *svc, int rc, size_t njobs)
{
    if (rc == LS_EFULL)
        LOG_ERROR("store_full", "map_max=%llu note=\"writes answer unavailable; reads go on; raise map-max\"",
                  (unsigned long long)svc->cfg.map_max);
    else if (rc == LS_EUNAVAIL)
        LOG_ERROR("disk_full", "dir=%s note=\"writes answer unavailable until space is freed; reads go on\"",
                  svc->cfg.data_dir);
    else
        LOG_ERROR("commit_failed", "jobs=%zu reason=\"%s\"", njobs, ls_strerror(rc));
}

/* A job (or a group: jobs[0..n)) that failed because a stored value
 * could not be decoded (stored_damage): the record is damaged, so the
 * answer is `internal`, not bad_request or unavailable (a client would
 * retry for ever), with a reason naming the customer, and the operator is
 * told.  Returns the status to answer with. */
#define DAMAGED_ID_SHOWN 64 /* bytes of the id a reply quotes (the log has all of it) */
static int damaged_record(const group_scratch *g, writer_job **jobs, size_t n, int rc)
{
    int shown = g->damaged_len > DAMAGED_ID_SHOWN ? DAMAGED_ID_SHOWN : (int)g->damaged_len;
    if (g->damaged_len)
        LOG_ERROR("stored_record_damaged", "customer=\"%.*s\" reason=\"%s\" note=\"the stored record cannot be "
                  "read; writes to this customer fail until the store is restored from a backup\"",
                  (int)g->damaged_len, g->damaged, ls_strerror(rc));
    else
        LOG_ERROR("stored_record_damaged", "reason=\"%s\" note=\"a stored record cannot be read; restore the "
                  "store from a backup\"", ls_strerror(rc));
    for (size_t j = 0; j < n; j++) {
        if (jobs[j]->failed_alone)
            continue; /* answered already */
        if (g->damaged_len)
            snprintf(jobs[j]->why, sizeof jobs[j]->why, "the stored record of customer \"%.*s\"%s is damaged "
                     "(%s): nothing of this request was stored", shown, g->damaged,
                     shown < (int)g->damaged_len ? "..." : "", ls_strerror(rc));
        else
            snprintf(jobs[j]->why, sizeof jobs[j]->why, "a stored customer record this request needs is damaged "
                     "(%s): nothing of this request was stored", ls_strerror(rc));
    }
    return LS_EINTERNAL;
}

/* The group commit (see writer.h): when the map is full it grows it (up
 * to map-max) and tries again, so the batch is not lost; a job that fails
 * on its own is found (a strict attempt), left out and the rest tried
 * again, so one bad request cannot sink the others.  Bounded: each retry
 * turns strict once, leaves a job out, or grows the map. */
static int apply_group(service *svc, automation *a, group_scratch *g, writer_job **jobs, size_t n)
{
    int rc = LS_OK;
    for (size_t j = 0; j < n; j++) {
        writer_job *job = jobs[j];
        job->failed_alone = 0;
        job->status = check_job(job);
        job->failed_alone = job->status != LS_OK;
    }
    int strict = 0;
    for (size_t attempt = 0; attempt < n + MAX_GROWS + 1; attempt++) {
        size_t culprit;
        rc = try_group(svc, a, g, jobs, n, strict, &culprit);
        if (rc == LS_OK)
            break;
        reset_jobs(jobs, n);
        if (culprit == n + 1 && !strict) {
            strict = 1; /* a job failed: find which */
            continue;
        }
        if (culprit < n) {
            jobs[culprit]->status = stored_damage(rc) ? damaged_record(g, jobs + culprit, 1, rc) : rc;
            fail_alone(svc, jobs[culprit]);
            LOG_WARN("job_failed", "kind=%d reason=\"%s\" note=\"rolled back alone; the rest of its group goes on\"",
                     jobs[culprit]->kind, ls_strerror(rc));
            continue;
        }
        if (rc != LS_EFULL || store_grow(svc->store, svc->cfg.map_max) != LS_OK)
            break;
        store_stats st;
        store_stat(svc->store, &st);
        LOG_INFO("store_grown", "map_bytes=%llu", (unsigned long long)st.map_bytes);
    }
    if (rc != LS_OK) {
        log_failure(svc, rc, n);
        if (stored_damage(rc)) /* a read of the group's own (the automation's) */
            rc = damaged_record(g, jobs, n, rc);
        for (size_t j = 0; j < n; j++)
            if (!jobs[j]->failed_alone)
                jobs[j]->status = rc;
        for (size_t j = 0; j < n && (rc == LS_EFULL || rc == LS_EUNAVAIL); j++)
            if (jobs[j]->kind == JOB_FORGET && !jobs[j]->failed_alone)
                forget_alone(svc, a, g, jobs[j]);
    }
    for (size_t j = 0; j < n && rc == LS_OK; j++)
        if (jobs[j]->log_gap) {
            atomic_fetch_add(&svc->stats.log_gaps_refused, 1);
            LOG_ERROR("log_gap_refused", "partition=%u seq=%llu note=\"not applied: past a hole; fetched again\"",
                      jobs[j]->log_part, (unsigned long long)jobs[j]->log_seq);
        }
    count_jobs(svc, jobs, n, rc);
    return rc;
}

int writer_apply(service *svc, writer_job **jobs, size_t n)
{
    group_scratch g;
    scratch_init(&g);
    int rc = apply_group(svc, NULL, &g, jobs, n);
    scratch_free(&g);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Replies and bookkeeping                                             */
/* ------------------------------------------------------------------ */

static const char *job_error(const writer_job *job, int status, char *buf, size_t cap)
{
    if (job->why[0])
        return job->why;
    if (job->kind == JOB_ALIAS && status == LS_EINVAL)
        return "\"from\" (the anonymous id) is already merged into another customer: an id is merged only once";
    if (job->kind == JOB_ALIAS && status == LS_ETOOLARGE)
        return "\"from\" and \"to\" (or an id already merged into \"from\") are longer than 510 bytes together: "
               "an alias cannot hold them";
    if (status == LS_ETOOLARGE)
        return "an id in this request is longer than the store can key: nothing of it was stored";
    if (job->failed_alone) {
        snprintf(buf, cap, "this request could not be written (%s): nothing of it was stored; other requests "
                 "were not affected", ls_strerror(status));
        return buf;
    }
    if (status == LS_EFULL)
        return "the store is full (its map reached map-max): nothing was stored; reads go on; retry after the "
               "operator raises map-max or erases data";
    if (status == LS_EUNAVAIL)
        return "the disk holding the store is full: nothing was stored; reads go on; retry when space is freed";
    return "the events could not be committed; nothing was stored, retry";
}

void writer_reply_begin(codec_writer *cw, const writer_job *job)
{
    int status = job->status;
    char buf[200];
    codec_writer_reset(cw);
    cw_map(cw);
    cw_key(cw, "ok");
    cw_bool(cw, status == LS_OK);
    if (job->id) {
        cw_key(cw, "id");
        cw_raw(cw, job->id, job->id_len, 1);
    }
    if (status == LS_OK && job->kind == JOB_AUDIENCE_PUT) {
        cw_key(cw, "created");
        cw_bool(cw, job->result);
        cw_key(cw, "changed");
        cw_bool(cw, job->changed);
        cw_key(cw, "ready");
        cw_bool(cw, job->ready);
    } else if (status == LS_OK && job->kind != JOB_EVENTS) {
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
        cw_str(cw, job_error(job, status, buf, sizeof buf));
        cw_end(cw);
    }
}

void writer_reply_send(void *replies, const codec_writer *cw, const writer_job *job)
{
    service_meta meta = {META_REPLY, (uint8_t)job->op, job->status == LS_OK, {0}, job->start_ns};
    if (msgio_send_bytes(replies, &meta, sizeof meta, 1) == 0 &&
        msgio_send_envelope(replies, job->envelope, job->envelope_len) == 0)
        msgio_send_bytes(replies, cw->sb.data, cw->sb.size, 0);
}

static void send_reply(writer *w, writer_job *job)
{
    writer_reply_begin(&w->reply, job);
    cw_end(&w->reply);
    writer_reply_send(w->replies, &w->reply, job);
}

/* A new or changed audience is answered once its first pass is done
 * (members then exact), or after AUDIENCE_REPLY_WAIT_MS with ready false,
 * so a client can read members right after the reply. */
static int hold_reply(writer *w, writer_job *job)
{
    if (job->kind != JOB_AUDIENCE_PUT || job->status != LS_OK || !w->autom || !job->reply ||
        w->nwaiting == MAX_WAITING)
        return 0;
    job->ready = !job->changed && automation_audiences_ready(w->autom);
    if (!job->changed)
        return 0;
    job->reply_by_ms = timefmt_now_ms() + AUDIENCE_REPLY_WAIT_MS;
    w->waiting[w->nwaiting++] = job;
    return 1;
}

/* Answers the held audience_put replies whose audience is ready, or whose
 * wait is over (all of them when `all`). */
static void release_waiting(writer *w, int all)
{
    int ready = w->autom && automation_audiences_ready(w->autom), kept = 0;
    int64_t now = timefmt_now_ms();
    for (int i = 0; i < w->nwaiting; i++) {
        writer_job *job = w->waiting[i];
        if (!all && !ready && now < job->reply_by_ms) {
            w->waiting[kept++] = job;
            continue;
        }
        job->ready = ready;
        send_reply(w, job);
        writer_job_free(&job);
    }
    w->nwaiting = kept;
}

/* Replies (after the commit) and frees the group's jobs. */
static void finish_group(writer *w, size_t njobs)
{
    for (size_t j = 0; j < njobs; j++) {
        if (hold_reply(w, w->group[j]))
            continue;
        if (w->group[j]->reply)
            send_reply(w, w->group[j]);
        writer_job_free(&w->group[j]);
    }
}

/* Clears the reader slots of dead processes every few seconds. */
static void check_readers(writer *w)
{
    int64_t now = timefmt_now_ms();
    int cleared = 0;
    if (now - w->last_reader_check_ms < READER_CHECK_MS)
        return;
    w->last_reader_check_ms = now;
    if (store_reader_check(w->svc->store, &cleared) == LS_OK && cleared > 0) /* counted in store_stats */
        LOG_WARN("stale_readers_cleared", "count=%d note=\"a process died inside a read (kill -9?)\"", cleared);
}

/* Forgets idempotency keys older than the dedupe window.  In cluster
 * mode the window is counted on the log's own clock (the newest receive
 * time applied), not the wall clock, so a replay of an old log (a
 * rebuild) deduplicates exactly as the first pass did. */
static void prune_event_ids(writer *w)
{
    int64_t now = timefmt_now_ms();
    if (now - w->last_prune_ms < PRUNE_EVERY_MS)
        return;
    w->last_prune_ms = now;
    if (w->svc->cluster) {
        if (w->log_rcv_ms == 0)
            return;
        now = w->log_rcv_ms;
    }
    store_wtxn *txn;
    size_t pruned = 0;
    if (store_write_begin(w->svc->store, &txn) != LS_OK)
        return;
    if (store_wtxn_prune_event_ids(txn, now - w->svc->cfg.dedupe_window_ms, PRUNE_CHUNK, &pruned) == LS_OK &&
        pruned > 0 && store_write_commit(&txn) == LS_OK)
        atomic_fetch_add(&w->svc->stats.event_ids_pruned, pruned);
    store_write_abort(&txn);
}

/* Merges the next slice of claimed window keys into event_ids when a
 * sweep is under way or due (store_wtxn_merge_window_keys), in a txn of
 * its own between groups.  A map too small for it grows (to map-max) and
 * the slice waits for the next round; any other failure is logged and
 * the keys wait in memory (their durable record is event_ids_by_time). */
static void merge_window_keys(writer *w, int idle)
{
    store_wtxn *txn;
    size_t merged = 0;
    int took = 0;
    int64_t now = timefmt_now_ms();
    if (!store_window_keys_due(w->svc->store, now, idle) || store_write_begin(w->svc->store, &txn) != LS_OK)
        return;
    int rc = store_wtxn_merge_window_keys(txn, now, idle, &took, &merged);
    if (rc == LS_OK && took)
        rc = store_write_commit(&txn);
    store_write_abort(&txn);
    if (rc == LS_EFULL && store_grow(w->svc->store, w->svc->cfg.map_max) == LS_OK)
        return;
    if (rc != LS_OK && now - w->last_merge_error_ms > 10000) {
        w->last_merge_error_ms = now;
        LOG_WARN("window_keys_merge_failed", "reason=\"%s\" note=\"the keys are kept and merged later\"",
                 ls_strerror(rc));
    }
}

/* Builds the filter of merged event ids a step at a time between groups
 * (store_build_id_filter); 1 while a build goes on, so that the loop
 * comes back to it without waiting for jobs. */
static int build_id_filter(writer *w)
{
    int done = 0;
    store_stats st;
    if (!store_id_filter_due(w->svc->store))
        return 0;
    int64_t now = timefmt_now_ms();
    if (now < w->id_filter_retry_ms)
        return 0;
    int rc = store_build_id_filter(w->svc->store, ID_FILTER_STEP, &done);
    if (rc != LS_OK) {
        w->id_filter_retry_ms = now + ID_FILTER_RETRY_MS;
        LOG_WARN("id_filter_failed", "reason=\"%s\" note=\"claims of new event ids ask event_ids meanwhile; "
                 "retried in a minute\"", ls_strerror(rc));
        return 0;
    }
    if (done) {
        store_stat(w->svc->store, &st);
        LOG_INFO("id_filter_ready", "bytes=%llu event_ids=%llu", (unsigned long long)st.event_ids_filter_bytes,
                 (unsigned long long)st.event_ids);
    }
    return !done;
}

/* ------------------------------------------------------------------ */
/* Purging the partitions this node gave up (cluster mode)             */
/* ------------------------------------------------------------------ */

/* One purge txn's customers: those of partition part among the ones
 * looked at, as u16 length + bytes (copied: the txn then writes). */
typedef struct {
    uint32_t part, nparts;
    uint8_t *ids;
    size_t used, n;
    char last[STORE_MAX_KEY];   /* the last id looked at */
    size_t last_len;
} purge_chunk;

/* Sees every id of the chunk (store_wtxn_scan_customer_ids: a damaged
 * value too), so the next chunk starts after the last one looked at. */
static int purge_visit(void *arg, const char *id, size_t len)
{
    purge_chunk *pc = arg;
    if (len > sizeof pc->last)
        return 0;
    memcpy(pc->last, id, len);
    pc->last_len = len;
    if (partition_of(id, len, pc->nparts) != pc->part)
        return 0;
    uint16_t n16 = (uint16_t)len;
    memcpy(pc->ids + pc->used, &n16, 2);
    memcpy(pc->ids + pc->used + 2, id, len);
    pc->used += 2 + len;
    return ++pc->n == PURGE_ERASE; /* 1: full, the scan stops here */
}

/* Erases the customers collected, as forgets (automation state and
 * triggers with them); *erased counts the records that were there. */
static int purge_erase(store_wtxn *txn, automation *a, const purge_chunk *pc, uint64_t *erased)
{
    store_forgotten *keys = store_forgotten_new();
    int rc = keys ? LS_OK : LS_ENOMEM;
    for (size_t at = 0; at < pc->used && rc == LS_OK;) {
        uint16_t len;
        memcpy(&len, pc->ids + at, 2);
        int deleted = 0;
        rc = forget_customer(txn, (const char *)pc->ids + at + 2, len, a, keys, &deleted);
        *erased += (uint64_t)deleted;
        at += 2 + len;
    }
    if (rc == LS_OK)
        rc = store_wtxn_forget_keys(txn, keys); /* one pass over the keys for the whole chunk */
    store_forgotten_free(&keys);
    return rc;
}

/* One purge txn of the lowest partition marked (store_wtxn_purge_mark):
 * the next PURGE_VISIT customers from where the last one stopped, those
 * of the partition erased, and at the end of the table the mark taken
 * away.  The mark is in the store, so a purge a restart interrupted goes
 * on (from the first customer).  Returns 1 while there is more to do. */
static int purge_step(writer *w)
{
    store_wtxn *txn = NULL;
    model *m = NULL;
    automation *a = w->autom;
    purge_chunk pc;
    size_t visited = 0;
    uint64_t erased = 0;
    int more = 0;
    if (!w->purge_due)
        return 0;
    memset(&pc, 0, sizeof pc);
    int rc = store_write_begin(w->svc->store, &txn);
    if (rc == LS_OK && (rc = store_wtxn_purge_next(txn, &pc.part, &pc.nparts)) == LS_ENOTFOUND) {
        store_write_abort(&txn);
        w->purge_due = 0;
        return 0;
    }
    if (rc == LS_OK && pc.part != w->purge_part) {
        w->purge_part = pc.part;
        w->purge_after_len = 0;
        w->purged = 0;
    }
    if (rc == LS_OK && a) {
        m = service_model_acquire(w->svc);
        rc = automation_begin(a, txn, m, timefmt_now_ms());
    }
    if (rc == LS_OK && !(pc.ids = malloc(PURGE_ERASE * (2 + STORE_MAX_KEY))))
        rc = LS_ENOMEM;
    if (rc == LS_OK)
        rc = store_wtxn_scan_customer_ids(txn, w->purge_after, w->purge_after_len, PURGE_VISIT, purge_visit, &pc,
                                          &visited, &more);
    if (rc == 1) { /* stopped with PURGE_ERASE collected */
        rc = LS_OK;
        more = 1;
    }
    if (rc == LS_OK)
        rc = purge_erase(txn, a, &pc, &erased);
    if (rc == LS_OK && !more)
        rc = store_wtxn_purge_done(txn, pc.part);
    if (rc == LS_OK && a)
        rc = automation_finish(a, txn);
    if (rc == LS_OK)
        rc = store_write_commit(&txn);
    store_write_abort(&txn);
    if (a && rc == LS_OK)
        automation_committed(a);
    else if (a)
        automation_aborted(a);
    model_unref(&m);
    free(pc.ids);
    if (rc != LS_OK) {
        int64_t now = timefmt_now_ms();
        if (rc == LS_EFULL && store_grow(w->svc->store, w->svc->cfg.map_max) == LS_OK)
            return 1;
        if (now - w->last_purge_error_ms > 10000) {
            w->last_purge_error_ms = now;
            LOG_WARN("partition_purge_failed", "partition=%u reason=\"%s\" note=\"retried; the partition stays "
                     "marked in the store\"", pc.part, ls_strerror(rc));
        }
        return 0; /* tried again after the next wait */
    }
    memcpy(w->purge_after, pc.last, pc.last_len);
    w->purge_after_len = pc.last_len;
    w->purged += erased;
    if (!more) {
        LOG_INFO("partition_purged", "partition=%u customers=%llu note=\"given up: its customers are erased from "
                 "this store\"", pc.part, (unsigned long long)w->purged);
        w->purge_part = UINT32_MAX;
        w->purge_after_len = 0;
        w->purged = 0;
    }
    return 1; /* more of it, or another partition marked */
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

/* Receives one job pointer from sock without waiting; returns 1 for a
 * job, 0 for a producer's finish token (counted in *finished), -1 when
 * nothing is there (EAGAIN) or on error. */
static int take(void *sock, int *finished, writer_job **out)
{
    writer_job *job;
    int n = zmq_recv(sock, &job, sizeof job, ZMQ_DONTWAIT);
    if (n != (int)sizeof job)
        return -1;
    if (!job) {
        (*finished)++;
        return 0;
    }
    *out = job;
    return 1;
}

/* Appends the jobs waiting on sock to w->group (*n of them) while the
 * group holds fewer than `limit` events (*events) and the deadline has
 * not passed; 1 when one of them asks for a reply. */
static int take_waiting(writer *w, void *sock, int *finished, size_t limit, int64_t deadline, size_t *n,
                        size_t *events)
{
    int acked = 0;
    while (*events < limit) {
        writer_job *job;
        int got = take(sock, finished, &job);
        if (got < 0)
            break;
        if (got == 0)
            continue;
        if (grow_group(w, *n + 1) != LS_OK) {
            job->status = LS_ENOMEM;
            if (job->reply)
                send_reply(w, job);
            else
                atomic_fetch_add(&w->svc->stats.events_unstored_unavailable, job->nevents);
            writer_job_free(&job);
            break;
        }
        acked |= job->reply;
        w->group[(*n)++] = job;
        *events += job->nevents;
        if (timefmt_mono_ns() > deadline)
            break;
    }
    return acked;
}

/* Collects jobs into w->group: blocks for at most `wait_ms` for the first,
 * then takes what is waiting within the count and time budget: first the
 * acknowledged requests (and identity, audience and log jobs), then the
 * fire-and-forget batches, of which a group takes only --pull-max-events
 * while acknowledged requests keep coming (ACKED_RECENT_NS): under a PULL
 * flood an ack waits for short groups, and without acks PULL groups stay
 * big. */
static size_t collect(writer *w, int wait_ms)
{
    zmq_pollitem_t items[2] = {{w->pull, 0, ZMQ_POLLIN, 0}, {w->bulk, 0, ZMQ_POLLIN, 0}};
    size_t n = 0, events = 0, max = w->svc->cfg.commit_max_events;
    if (zmq_poll(items, w->bulk ? 2 : 1, wait_ms) <= 0)
        return 0;
    int64_t now = timefmt_mono_ns(), deadline = now + w->svc->cfg.commit_window_ms * 1000000;
    if (take_waiting(w, w->pull, &w->finished, max, deadline, &n, &events))
        w->acked_ns = now;
    if (w->bulk && events < max) {
        size_t limit = max;
        if (w->acked_ns && now - w->acked_ns < ACKED_RECENT_NS)
            limit = events + w->svc->cfg.pull_max_events;
        take_waiting(w, w->bulk, &w->bulk_finished, limit < max ? limit : max, deadline, &n, &events);
    }
    return n;
}

/* Tells the server loop the newest committed trigger seq (it wakes the
 * `triggers` requests waiting for more). */
static void notify_triggers(writer *w)
{
    uint64_t seq = automation_last_seq(w->autom);
    if (seq == 0 || seq == w->notified_seq)
        return;
    w->notified_seq = seq;
    service_meta meta = {META_TRIGGERS, 0, 1, {0}, (int64_t)seq};
    msgio_send_bytes(w->replies, &meta, sizeof meta, 0);
}

/* Timers, a sweep chunk and pruning between groups; returns how long the
 * next wait for jobs may be, in ms. */
static int automation_between_groups(writer *w)
{
    int busy = 0;
    int64_t wake = 0, now = timefmt_now_ms();
    uint64_t appended = 0;
    model *m = service_model_acquire(w->svc);
    int rc = automation_tick(w->autom, w->svc->store, m, now, &busy, &wake, &appended);
    model_unref(&m);
    if (rc == LS_EFULL && store_grow(w->svc->store, w->svc->cfg.map_max) == LS_OK)
        return 0; /* the map grew (up to --map-max, as for events): go on at once */
    if (rc != LS_OK) {
        atomic_fetch_add(&w->svc->stats.automation_failures, 1);
        if (now - w->last_auto_error_ms > 10000) {
            w->last_auto_error_ms = now;
            LOG_ERROR("automation_failed", "reason=\"%s\" note=\"timers and sweeps retry; events are stored\"",
                      ls_strerror(rc));
        }
        return IDLE_POLL_MS;
    }
    notify_triggers(w);
    if (busy)
        return 0;
    if (wake > 0 && wake - now < IDLE_POLL_MS)
        return wake <= now ? 0 : (int)(wake - now);
    return IDLE_POLL_MS;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    int wait_ms = IDLE_POLL_MS;
    while (w->finished < w->nproducers || w->bulk_finished < w->nbulk) {
        size_t n = collect(w, wait_ms);
        if (n > 0) {
            int rc = apply_group(w->svc, w->autom, &w->scratch, w->group, n);
            for (size_t j = 0; j < n && rc == LS_OK; j++)
                if (w->group[j]->log_seq && w->group[j]->received_ms > w->log_rcv_ms)
                    w->log_rcv_ms = w->group[j]->received_ms;
            if (rc == LS_OK && w->autom)
                notify_triggers(w);
            for (size_t j = 0; j < n; j++)
                w->purge_due |= w->group[j]->kind == JOB_PURGE && w->group[j]->status == LS_OK;
            finish_group(w, n);
        }
        if (w->svc->cfg.dedupe_window_ms > 0)
            prune_event_ids(w);
        merge_window_keys(w, n == 0);
        int building = build_id_filter(w);
        int purging = purge_step(w);
        check_readers(w);
        wait_ms = w->autom ? automation_between_groups(w) : IDLE_POLL_MS;
        if (building || purging)
            wait_ms = 0;
        if (w->nwaiting) {
            release_waiting(w, 0);
            if (w->nwaiting && wait_ms > 50)
                wait_ms = 50; /* look again soon: a held reply has a deadline */
        }
    }
    release_waiting(w, 1);
    service_meta done = {META_WRITER_DONE, 0, 1, {0}, 0};
    msgio_send_bytes(w->replies, &done, sizeof done, 0);
    return NULL;
}

/* 1 when a job waits on the writer's socket (the sweep yields to it). */
static int jobs_waiting(void *arg)
{
    writer *w = arg;
    zmq_pollitem_t items[2] = {{w->pull, 0, ZMQ_POLLIN, 0}, {w->bulk, 0, ZMQ_POLLIN, 0}};
    return zmq_poll(items, w->bulk ? 2 : 1, 0) > 0;
}

static int open_automation(writer *w)
{
    const config *cfg = &w->svc->cfg;
    automation_config ac;
    char err[200];
    automation_config_defaults(&ac);
    ac.abandoned_cart_after_ms = cfg->abandoned_cart_after_ms;
    ac.retention_ms = cfg->trigger_retention_ms;
    ac.outbox_max = cfg->trigger_max;
    ac.refresh_ms = cfg->audience_refresh_ms;
    ac.decay = *store_decay(w->svc->store);
    if (automation_parse_cooldowns(cfg->trigger_cooldowns, ac.cooldown_ms, err, sizeof err) != LS_OK) {
        LOG_ERROR("bad_config", "reason=\"%s\"", err);
        return LS_EINVAL;
    }
    int rc = automation_open(&w->autom, &ac, &w->svc->stats);
    if (rc == LS_OK) {
        automation_set_yield(w->autom, jobs_waiting, w);
        store_memo_writes(w->svc->store, VALUEMEMO_DEFAULT_BYTES); /* it reads back what each group wrote */
    }
    return rc;
}

int writer_start(writer **out, service *svc, int nproducers, int nbulk)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return LS_ENOMEM;
    w->svc = svc;
    w->nproducers = nproducers;
    w->nbulk = nbulk;
    w->purge_due = 1; /* a purge a restart interrupted goes on */
    w->purge_part = UINT32_MAX;
    scratch_init(&w->scratch);
    if (svc->cfg.triggers && open_automation(w) != LS_OK) {
        free(w);
        return LS_EINVAL;
    }
    codec_writer_init(&w->reply);
    w->pull = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_WRITER, 1, WRITER_QUEUE_JOBS);
    w->replies = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_REPLIES, 0, 0);
    if (nbulk > 0)
        w->bulk = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_WRITER_BULK, 1, WRITER_QUEUE_JOBS);
    if (!w->pull || !w->replies || (nbulk > 0 && !w->bulk))
        goto fail;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        goto fail;
    /* named before this returns, not when the thread first runs: the
     * bench reads the writer's CPU time by its name from the start */
    pthread_setname_np(w->thread, WRITER_THREAD_NAME);
    *out = w;
    return LS_OK;
fail:
    if (w->pull)
        zmq_close(w->pull);
    if (w->bulk)
        zmq_close(w->bulk);
    if (w->replies)
        zmq_close(w->replies);
    codec_writer_destroy(&w->reply);
    automation_close(&w->autom);
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
    if (w->bulk)
        zmq_close(w->bulk);
    zmq_close(w->replies);
    codec_writer_destroy(&w->reply);
    scratch_free(&w->scratch);
    automation_close(&w->autom);
    free(w->group);
    free(w);
    *wp = NULL;
}
