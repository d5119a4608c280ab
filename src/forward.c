/* forward.c -- reads forwarded to the node that holds their partition
 * (forward.h). */
#define _POSIX_C_SOURCE 200809L
#include "forward.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <zmq.h>

#include "clusternode.h"
#include "codec.h"
#include "leadscore/error.h"
#include "log.h"
#include "msgio.h"
#include "ops.h"
#include "timefmt.h"

#define MAX_PENDING 1024          /* requests waiting for answers */
#define MAX_PEERS 64              /* DEALERs kept, one per endpoint */
#define FORWARD_FAILOVER_MS 1000  /* then the standby is asked */
#define FORWARD_GIVE_UP_MS 3000   /* then the client gets `unavailable` */
#define POLL_MS 100
#define ENVELOPE_MAX 4096

typedef struct {
    char endpoint[CLUSTER_EP_MAX];
    void *sock;
} peer;

/* One part of a forwarded request: the whole of a single read, or the
 * customers of a batch whose partitions have one owner and one standby
 * (or that this node holds). */
typedef struct {
    uint64_t tag;                 /* 0: free */
    int parent;                   /* index of the request in reqs[] */
    uint32_t part;                /* its first customer's partition, whose owner and standby
                                   * hold all of its customers (for the endpoints) */
    int tried_standby;
    int local;                    /* sent to this node's own ROUTER: no standby */
    int64_t sent_ns;
    uint8_t *body;                /* what was sent, for a resend to the standby */
    size_t body_len;
    uint32_t *index;              /* batch: its customers' places in the request */
    uint32_t count;
} fwd_part;

/* A request from a client, waiting for its parts. */
typedef struct {
    int used;
    int op;
    int64_t start_ns;
    uint8_t env[ENVELOPE_MAX];
    size_t env_len;
    int batch;                    /* a batched score: results merged */
    uint32_t nresults;
    uint8_t **result;             /* each result's msgpack bytes */
    size_t *result_len;
    int parts_left;
    int failed;                   /* a part's error reply went to the client already */
    msgpack_object *id;           /* the request's id (in zone) */
    msgpack_zone zone;
} fwd_request;

struct forwarder {
    service *svc;
    pthread_t thread;
    atomic_int stop;
    void *in, *out;
    char identity[64];
    peer peers[MAX_PEERS];
    int npeers;
    fwd_part parts[MAX_PENDING];
    fwd_request reqs[MAX_PENDING];
    fwd_request busy;             /* where a request that finds no slot is answered from */
    uint64_t next_tag;
    codec_writer w;
};

/* ------------------------------------------------------------------ */
/* Peers                                                               */
/* ------------------------------------------------------------------ */

static void *peer_socket(forwarder *f, const char *endpoint)
{
    for (int i = 0; i < f->npeers; i++)
        if (strcmp(f->peers[i].endpoint, endpoint) == 0)
            return f->peers[i].sock;
    if (f->npeers == MAX_PEERS)
        return NULL;
    int zero = 0;
    void *s = zmq_socket(f->svc->zmq, ZMQ_DEALER);
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, f->identity, strlen(f->identity));
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    peer *p = &f->peers[f->npeers++];
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    p->sock = s;
    return s;
}

/* ------------------------------------------------------------------ */
/* Replies to the client                                               */
/* ------------------------------------------------------------------ */

/* Never blocks: after the loop has gone (shutdown) a reply is dropped. */
static void reply_raw(forwarder *f, fwd_request *r, int ok, const void *body, size_t len)
{
    service_meta meta = {META_REPLY, (uint8_t)r->op, (uint8_t)ok, {0}, r->start_ns};
    if (zmq_send(f->out, &meta, sizeof meta, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        msgio_route_packed(f->out, r->env, r->env_len, body, len);
}

static void free_request(fwd_request *r)
{
    for (uint32_t i = 0; r->result && i < r->nresults; i++)
        free(r->result[i]);
    free(r->result);
    free(r->result_len);
    msgpack_zone_destroy(&r->zone);
    memset(r, 0, sizeof *r);
}

static void reply_error(forwarder *f, fwd_request *r, int status, const char *why)
{
    codec_error_reply(&f->w, r->id, status, why);
    reply_raw(f, r, 0, f->w.sb.data, f->w.sb.size);
}

static void free_part(fwd_part *p)
{
    free(p->body);
    free(p->index);
    memset(p, 0, sizeof *p);
}

/* The merged reply of a batch, once every part answered. */
static void reply_batch(forwarder *f, fwd_request *r)
{
    codec_writer *w = &f->w;
    codec_writer_reset(w);
    cw_map(w);
    cw_key(w, "ok");
    cw_bool(w, 1);
    if (r->id) {
        cw_key(w, "id");
        cw_object(w, r->id);
    }
    cw_key(w, "results");
    cw_array(w);
    for (uint32_t i = 0; i < r->nresults; i++)
        cw_raw(w, r->result[i], r->result_len[i], 1);
    cw_end(w);
    cw_end(w);
    reply_raw(f, r, 1, w->sb.data, w->sb.size);
}

/* A part's answer: passed through (a single read, or any error), or its
 * results kept in their places (a batch). */
static void part_answered(forwarder *f, fwd_part *p, const uint8_t *body, size_t len)
{
    fwd_request *r = &f->reqs[p->parent];
    msgpack_zone zone;
    msgpack_object root;
    size_t off = 0;
    msgpack_zone_init(&zone, 4096);
    int parsed = msgpack_unpack((const char *)body, len, &off, &zone, &root) == MSGPACK_UNPACK_SUCCESS &&
                 root.type == MSGPACK_OBJECT_MAP;
    const msgpack_object *ok = parsed ? codec_map_get(&root, "ok") : NULL;
    int good = ok && ok->type == MSGPACK_OBJECT_BOOLEAN && ok->via.boolean;
    if (!r->batch || !good) {
        if (!r->failed)
            reply_raw(f, r, good, body, len);
        r->failed = !r->batch ? r->failed : 1;
    } else {
        const msgpack_object *res = codec_map_get(&root, "results");
        for (uint32_t i = 0; res && res->type == MSGPACK_OBJECT_ARRAY && i < p->count && i < res->via.array.size; i++) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, res->via.array.ptr[i]);
            r->result[p->index[i]] = (uint8_t *)sb.data; /* taken over */
            r->result_len[p->index[i]] = sb.size;
        }
    }
    msgpack_zone_destroy(&zone);
    free_part(p);
    if (--r->parts_left == 0) {
        if (r->batch && !r->failed)
            reply_batch(f, r);
        free_request(r);
    }
}

/* ------------------------------------------------------------------ */
/* Sending parts                                                       */
/* ------------------------------------------------------------------ */

static int send_part(forwarder *f, fwd_part *p, int standby)
{
    char endpoint[CLUSTER_EP_MAX];
    if (p->local)
        snprintf(endpoint, sizeof endpoint, "%s", FORWARD_EP_SELF);
    else
        clusternode_read_endpoint(f->svc->cluster, p->part, standby, endpoint, sizeof endpoint);
    void *sock = endpoint[0] ? peer_socket(f, endpoint) : NULL;
    if (!sock)
        return -1;
    p->sent_ns = timefmt_mono_ns();
    if (zmq_send(sock, &p->tag, sizeof p->tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, p->body, p->body_len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

static fwd_part *new_part(forwarder *f, int parent, uint32_t part)
{
    for (int tries = 0; tries < MAX_PENDING; tries++) {
        uint64_t tag = ++f->next_tag;
        fwd_part *p = &f->parts[tag % MAX_PENDING];
        if (p->tag)
            continue;
        p->tag = tag;
        p->parent = parent;
        p->part = part;
        f->reqs[parent].parts_left++;
        return p;
    }
    return NULL;
}

static void part_failed(forwarder *f, fwd_part *p, const char *why)
{
    fwd_request *r = &f->reqs[p->parent];
    codec_error_reply(&f->w, r->id, LS_EUNAVAIL, why);
    char *copy = malloc(f->w.sb.size);
    if (copy) {
        size_t len = f->w.sb.size;
        memcpy(copy, f->w.sb.data, len);
        part_answered(f, p, (const uint8_t *)copy, len);
        free(copy);
        return;
    }
    free_part(p); /* no memory for a reply: the client times out */
    if (--r->parts_left == 0)
        free_request(r);
}

/* Copies of the original request's fields, with "customers" replaced by
 * the given ids (the "id" is left out: the merged reply carries it). */
static int sub_batch(forwarder *f, const msgpack_object *root, const msgpack_object *ids, const uint32_t *index,
                     uint32_t count, fwd_part *p)
{
    codec_writer *w = &f->w;
    codec_writer_reset(w);
    cw_map(w);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR &&
            ((kv->key.via.str.size == 9 && memcmp(kv->key.via.str.ptr, "customers", 9) == 0) ||
             (kv->key.via.str.size == 2 && memcmp(kv->key.via.str.ptr, "id", 2) == 0)))
            continue;
        cw_keyn(w, kv->key.via.str.ptr, kv->key.via.str.size);
        cw_object(w, &kv->val);
    }
    cw_key(w, "customers");
    cw_array(w);
    for (uint32_t i = 0; i < count; i++)
        cw_object(w, &ids->via.array.ptr[index[i]]);
    cw_end(w);
    cw_end(w);
    p->body = malloc(w->sb.size);
    p->index = malloc(count * sizeof *p->index);
    if (!p->body || !p->index || w->oom)
        return LS_ENOMEM;
    memcpy(p->body, w->sb.data, w->sb.size);
    p->body_len = w->sb.size;
    memcpy(p->index, index, count * sizeof *index);
    p->count = count;
    return LS_OK;
}

/* Whether a batch's customers of partition b go in the part of those of
 * partition a (local_a: this node holds a).  The partitions this node
 * holds make one part, sent to its own ROUTER (answered from its store,
 * as a single read is: it sees this node's writes and waits for no other
 * node).  The others are grouped by owner and standby together
 * (clustermap_same_holders): the part goes to the owner, or its standby
 * when the owner is down (clusternode_read_endpoint), and on a timeout
 * to a's standby, which must hold every partition of the part: a node
 * refuses a forwarded read of any partition it does not hold. */
static int same_part(forwarder *f, int local_a, uint32_t a, uint32_t b)
{
    if (clusternode_holds(f->svc->cluster, b))
        return local_a;
    return !local_a && clusternode_same_holders(f->svc->cluster, a, b);
}

/* Splits a batched score: one part per group of partitions (same_part). */
static int start_batch(forwarder *f, int slot, const msgpack_object *root, const msgpack_object *ids)
{
    fwd_request *r = &f->reqs[slot];
    uint32_t n = ids->via.array.size;
    uint32_t *part_of = malloc((n ? n : 1) * sizeof *part_of), *index = malloc((n ? n : 1) * sizeof *index);
    uint8_t *done = calloc(n ? n : 1, 1);
    int rc = part_of && index && done ? LS_OK : LS_ENOMEM;
    r->batch = 1;
    r->nresults = n;
    r->result = calloc(n ? n : 1, sizeof *r->result);
    r->result_len = calloc(n ? n : 1, sizeof *r->result_len);
    if (!r->result || !r->result_len)
        rc = LS_ENOMEM;
    for (uint32_t i = 0; rc == LS_OK && i < n; i++) {
        const msgpack_object *id = &ids->via.array.ptr[i];
        part_of[i] = clusternode_partition(f->svc->cluster, id->via.str.ptr, id->via.str.size);
    }
    for (uint32_t i = 0; rc == LS_OK && i < n; i++) {
        if (done[i])
            continue;
        uint32_t count = 0;
        int local = clusternode_holds(f->svc->cluster, part_of[i]);
        for (uint32_t k = i; k < n; k++)
            if (!done[k] && (k == i || same_part(f, local, part_of[i], part_of[k]))) {
                index[count++] = k;
                done[k] = 1;
            }
        fwd_part *p = new_part(f, slot, part_of[i]);
        if (!p || sub_batch(f, root, ids, index, count, p) != LS_OK) {
            rc = LS_ENOMEM;
            if (p)
                free_part(p), r->parts_left--;
            break;
        }
        p->local = local;
        if (send_part(f, p, 0) != 0)
            part_failed(f, p, "the node holding these customers cannot be reached: retry");
    }
    free(part_of);
    free(index);
    free(done);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Requests from the loop                                              */
/* ------------------------------------------------------------------ */

static int free_slot(forwarder *f)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (!f->reqs[i].used)
            return i;
    return -1;
}

static void take_request(forwarder *f, msgio_parts *m)
{
    service_meta meta;
    if (m->n < 3 || zmq_msg_size(&m->frame[0]) != sizeof meta)
        return;
    memcpy(&meta, zmq_msg_data(&m->frame[0]), sizeof meta);
    if (msgio_envelope_size(m, 1, m->n - 1) > ENVELOPE_MAX)
        return; /* the loop bounds envelopes far below this: cannot happen */
    int slot = free_slot(f);
    if (slot < 0) { /* MAX_PENDING forwarded reads wait already */
        fwd_request *busy = &f->busy;
        memset(busy, 0, sizeof *busy);
        busy->op = meta.op;
        busy->start_ns = meta.start_ns;
        busy->env_len = msgio_pack_envelope(m, 1, m->n - 1, busy->env);
        msgpack_zone_init(&busy->zone, 4096);
        codec_request req;
        const char *why = NULL;
        zmq_msg_t *b = &m->frame[m->n - 1];
        codec_parse_request(zmq_msg_data(b), zmq_msg_size(b), &busy->zone, &req, &why);
        codec_error_reply(&f->w, req.id, LS_EUNAVAIL, "server busy: retry");
        reply_raw(f, busy, 0, f->w.sb.data, f->w.sb.size);
        msgpack_zone_destroy(&busy->zone);
        return;
    }
    fwd_request *r = &f->reqs[slot];
    memset(r, 0, sizeof *r);
    r->used = 1;
    r->op = meta.op;
    r->start_ns = meta.start_ns;
    r->env_len = msgio_pack_envelope(m, 1, m->n - 1, r->env);
    msgpack_zone_init(&r->zone, 4096);
    zmq_msg_t *body = &m->frame[m->n - 1];
    codec_request req;
    const char *why = NULL;
    if (codec_parse_request(zmq_msg_data(body), zmq_msg_size(body), &r->zone, &req, &why) != LS_OK) {
        reply_error(f, r, LS_EBADREQ, why);
        free_request(r);
        return;
    }
    r->id = (msgpack_object *)req.id;
    const msgpack_object *one = codec_map_get(&req.root, "customer");
    const msgpack_object *many = codec_map_get(&req.root, "customers");
    int rc = LS_OK;
    if (!one && many && many->type == MSGPACK_OBJECT_ARRAY) {
        rc = start_batch(f, slot, &req.root, many);
    } else if (one && one->type == MSGPACK_OBJECT_STR) {
        fwd_part *p = new_part(f, slot, clusternode_partition(f->svc->cluster, one->via.str.ptr, one->via.str.size));
        if (p && (p->body = malloc(zmq_msg_size(body)))) {
            memcpy(p->body, zmq_msg_data(body), zmq_msg_size(body));
            p->body_len = zmq_msg_size(body);
            if (send_part(f, p, 0) != 0)
                part_failed(f, p, "the node holding this customer cannot be reached: retry");
        } else {
            if (p)
                free_part(p), r->parts_left--;
            rc = LS_ENOMEM;
        }
    } else {
        rc = LS_EBADREQ;
    }
    if (rc != LS_OK && r->used) {
        reply_error(f, r, rc == LS_ENOMEM ? LS_EINTERNAL : LS_EBADREQ,
                    rc == LS_ENOMEM ? "out of memory" : "this request names no customer to forward");
        for (int i = 0; i < MAX_PENDING; i++)
            if (f->parts[i].tag && f->parts[i].parent == slot)
                free_part(&f->parts[i]);
        free_request(r);
    }
}

/* A peer's answer: [tag][""][body]. */
static void take_answer(forwarder *f, void *sock)
{
    msgio_parts m;
    if (msgio_recv(sock, &m, ZMQ_DONTWAIT) != 0)
        return;
    uint64_t tag;
    if (m.n == 3 && zmq_msg_size(&m.frame[0]) == sizeof tag) {
        memcpy(&tag, zmq_msg_data(&m.frame[0]), sizeof tag);
        fwd_part *p = &f->parts[tag % MAX_PENDING];
        if (p->tag == tag)
            part_answered(f, p, zmq_msg_data(&m.frame[2]), zmq_msg_size(&m.frame[2]));
    }
    msgio_close(&m);
}

/* Parts without an answer: the standby after FORWARD_FAILOVER_MS (not
 * for a local part), an `unavailable` after FORWARD_GIVE_UP_MS. */
static void check_timeouts(forwarder *f)
{
    int64_t now = timefmt_mono_ns();
    for (int i = 0; i < MAX_PENDING; i++) {
        fwd_part *p = &f->parts[i];
        if (!p->tag)
            continue;
        int64_t waited_ms = (now - p->sent_ns) / 1000000;
        if (!p->tried_standby && !p->local && waited_ms >= FORWARD_FAILOVER_MS) {
            p->tried_standby = 1;
            if (send_part(f, p, 1) == 0)
                continue;
        }
        if (waited_ms >= FORWARD_GIVE_UP_MS)
            part_failed(f, p, "neither the owner nor the standby of this customer's partition answered: retry");
    }
}

static int pending(const forwarder *f)
{
    int n = 0;
    for (int i = 0; i < MAX_PENDING; i++)
        n += f->parts[i].tag != 0;
    return n;
}

static void *forward_main(void *arg)
{
    forwarder *f = arg;
    prctl(PR_SET_NAME, "ls-forward");
    while (!atomic_load(&f->stop)) {
        /* the stop flag is read before the socket: whatever the loop sent
         * before it said stop is read below first */
        if (atomic_load(&f->svc->stopping) && pending(f) == 0 && !msgio_ready(f->in, ZMQ_POLLIN)) {
            /* the loop drains: nothing more comes.  It waits for this,
             * sent after every answer, as for a worker's */
            service_meta done = {META_WORKER_DONE, 0, 1, {0}, 0};
            msgio_send_bytes(f->out, &done, sizeof done, 0);
            break;
        }
        zmq_pollitem_t items[1 + MAX_PEERS];
        int n = 0;
        items[n++] = (zmq_pollitem_t){f->in, 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < f->npeers; i++)
            items[n++] = (zmq_pollitem_t){f->peers[i].sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(items, n, POLL_MS) < 0)
            continue;
        if (items[0].revents & ZMQ_POLLIN) {
            msgio_parts m;
            if (msgio_recv(f->in, &m, ZMQ_DONTWAIT) == 0) {
                take_request(f, &m);
                msgio_close(&m);
            }
        }
        for (int i = 1; i < n; i++)
            if (items[i].revents & ZMQ_POLLIN)
                take_answer(f, items[i].socket);
        check_timeouts(f);
    }
    return NULL;
}

int forward_start(forwarder **out, service *svc, const char *node, char *err, size_t errlen)
{
    forwarder *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f)
        return LS_ENOMEM;
    f->svc = svc;
    snprintf(f->identity, sizeof f->identity, "%s%s", FORWARD_ID_PREFIX, node);
    codec_writer_init(&f->w);
    f->in = msgio_inproc_socket(svc->zmq, ZMQ_PULL, SERVICE_EP_FORWARD, 1, SERVICE_WORK_HWM);
    f->out = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_REPLIES, 0, 0);
    if (!f->in || !f->out || pthread_create(&f->thread, NULL, forward_main, f) != 0) {
        snprintf(err, errlen, "cannot start the forwarding thread");
        zmq_close(f->in);
        zmq_close(f->out);
        codec_writer_destroy(&f->w);
        free(f);
        return LS_EINTERNAL;
    }
    *out = f;
    return LS_OK;
}

void forward_stop(forwarder **fp)
{
    if (!fp || !*fp)
        return;
    forwarder *f = *fp;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    for (int i = 0; i < MAX_PENDING; i++)
        if (f->parts[i].tag)
            free_part(&f->parts[i]);
    for (int i = 0; i < MAX_PENDING; i++)
        if (f->reqs[i].used)
            free_request(&f->reqs[i]);
    for (int i = 0; i < f->npeers; i++)
        zmq_close(f->peers[i].sock);
    zmq_close(f->in);
    zmq_close(f->out);
    codec_writer_destroy(&f->w);
    free(f);
    *fp = NULL;
}
