/* clusternode.c -- a shard node's NATS side: map, liveness, gateway and
 * shard log (clusternode.h). */
#define _POSIX_C_SOURCE 200809L
#include "clusternode.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cluster_nats.h"
#include "clustermap.h"
#include "forward.h"
#include "gateway.h"
#include "leadscore/error.h"
#include "log.h"
#include "msgio.h"
#include "partition.h"
#include "shardlog.h"
#include "timefmt.h"
#include "writer.h"

#define CONTROL_EVERY_MS 1000
#define STOP_POLL_MS 100
#define CONNECT_WAIT_MS 30000
#define PURGE_ASK_AGAIN_MS 10000    /* a purge asked for and not marked by then is asked for again */

/* A partition on this node: not held; applied but still catching up with
 * its log (reads go to another holder); applied and answered here. */
enum { HELD_NONE, HELD_APPLYING, HELD_SERVING };

struct clusternode {
    service *svc;
    cnats nats;
    char node[CLUSTER_NAME_MAX];
    char endpoint[CLUSTER_EP_MAX], pull[CLUSTER_EP_MAX];
    pthread_mutex_t lock;           /* map, node_ep */
    clustermap map;
    char node_ep[CLUSTER_MAX_NODES][CLUSTER_EP_MAX];
    int node_down[CLUSTER_MAX_NODES];   /* its liveness record is older than CLUSTER_LIVE_TTL_MS */
    uint32_t nparts;                /* fixed at cluster init */
    atomic_uchar held[PARTITION_MAX];   /* HELD_* */
    uint64_t catch_up[PARTITION_MAX];   /* HELD_APPLYING: the log's length when it was taken on */
    int64_t purge_asked_ms[PARTITION_MAX]; /* when its purge was last asked for (monotonic ms) */
    gateway *gw;
    shardlog *sl;
    forwarder *fwd;
    pthread_t control;
    int control_running;
    int64_t last_error_ms;
};


/* Holds the partitions the map gives this node, releases the others. */
static void apply_map(clusternode *cn, const clustermap *m)
{
    int me = clustermap_node_index(m, cn->node);
    for (uint32_t p = 0; p < m->nparts; p++) {
        int mine = me >= 0 && (m->owner[p] == me || m->standby[p] == me);
        if (mine && !shardlog_holds(cn->sl, p)) {
            if (shardlog_hold(cn->sl, p) == LS_OK) {
                cn->catch_up[p] = UINT64_MAX; /* known at the next control pass */
                atomic_store(&cn->held[p], HELD_APPLYING);
            }
        } else if (!mine && shardlog_holds(cn->sl, p)) {
            atomic_store(&cn->held[p], HELD_NONE);
            shardlog_release(cn->sl, p);
        }
    }
}

/* A partition taken on (at start, after a move, after its store was
 * deleted) is answered here once the store has applied the log as it was
 * when it was taken on: reads never see it behind what another holder
 * already answered. */
static void check_catch_up(clusternode *cn)
{
    store_reader *r = NULL;
    char stream[128], err[256];
    uint32_t applying = 0;
    for (uint32_t p = 0; p < cn->nparts; p++)
        applying += atomic_load(&cn->held[p]) == HELD_APPLYING;
    if (applying == 0 || store_reader_open(cn->svc->store, &r) != LS_OK)
        return; /* the usual case: nothing to look at every STOP_POLL_MS */
    for (uint32_t p = 0; p < cn->nparts; p++) {
        if (atomic_load(&cn->held[p]) != HELD_APPLYING)
            continue;
        uint64_t at = 0, last = 0;
        if (cn->catch_up[p] == UINT64_MAX) {
            clustermap_stream_name(&cn->map, p, stream, sizeof stream);
            if (cnats_stream_state(&cn->nats, stream, &last, NULL, 0, err, sizeof err) != LS_OK)
                continue;
            cn->catch_up[p] = last;
        }
        int purging = 1;
        if (store_reader_begin(r) == LS_OK) {
            store_reader_log_position(r, p, &at);
            purging = store_reader_purge_pending(r, p);
            store_reader_end(r);
        }
        /* a purge asked for (the partition was given up) that the writer
         * has not begun yet -- no mark, the old position -- would erase
         * what is served: wait until the store shows the mark or the
         * position it resets to 0 */
        if (cn->purge_asked_ms[p] && (purging || at == 0))
            cn->purge_asked_ms[p] = 0;
        if (!purging && !cn->purge_asked_ms[p] && at >= cn->catch_up[p]) {
            atomic_store(&cn->held[p], HELD_SERVING);
            LOG_INFO("partition_serving", "partition=%u applied=%llu", p, (unsigned long long)at);
        }
    }
    store_reader_close(&r);
}

/* A node keeps no customers of partitions it does not hold: for each one
 * its store has applied (a position above 0: it gave the partition up,
 * or was down while it moved away) it asks the writer to purge it
 * (shardlog_purge: its customers are erased, its position goes to 0), and
 * again after PURGE_ASK_AGAIN_MS while that has not happened.  A held
 * partition still being purged (given up and taken on again at once) is
 * not answered here until it has been replayed. */
static void purge_given_up(clusternode *cn)
{
    store_reader *r = NULL;
    uint32_t ask[PARTITION_MAX], nask = 0;
    int64_t now = timefmt_mono_ns() / 1000000;
    if (store_reader_open(cn->svc->store, &r) != LS_OK)
        return;
    if (store_reader_begin(r) == LS_OK) {
        for (uint32_t p = 0; p < cn->nparts; p++) {
            uint64_t at = 0;
            unsigned held = atomic_load(&cn->held[p]);
            int purging = store_reader_purge_pending(r, p);
            store_reader_log_position(r, p, &at);
            if (purging || at == 0)
                cn->purge_asked_ms[p] = 0; /* the writer has it (or it is done): nothing to wait for */
            if (held == HELD_NONE && at > 0 && !purging &&
                (cn->purge_asked_ms[p] == 0 || now - cn->purge_asked_ms[p] >= PURGE_ASK_AGAIN_MS))
                ask[nask++] = p;
            else if (held == HELD_SERVING && purging) {
                cn->catch_up[p] = UINT64_MAX;
                atomic_store(&cn->held[p], HELD_APPLYING);
            }
        }
        store_reader_end(r);
    }
    store_reader_close(&r);
    for (uint32_t i = 0; i < nask; i++)
        if (shardlog_purge(cn->sl, ask[i]) == LS_OK)
            cn->purge_asked_ms[ask[i]] = now;
}

/* Writes this node's liveness record with its position per held partition. */
static void put_live(clusternode *cn)
{
    cluster_live l;
    store_reader *r = NULL;
    memset(&l, 0, sizeof l);
    snprintf(l.endpoint, sizeof l.endpoint, "%s", cn->endpoint);
    snprintf(l.pull, sizeof l.pull, "%s", cn->pull);
    l.pid = (long)getpid();
    l.ts_ms = timefmt_now_ms();
    if (store_reader_open(cn->svc->store, &r) == LS_OK && store_reader_begin(r) == LS_OK) {
        for (uint32_t p = 0; p < cn->nparts; p++)
            if (atomic_load(&cn->held[p]) != HELD_NONE) {
                l.part[l.nheld] = p;
                store_reader_log_position(r, p, &l.applied[l.nheld]);
                l.nheld++;
            }
        store_reader_end(r);
    }
    store_reader_close(&r);
    if (cnats_live_put(&cn->nats, cn->node, &l) != LS_OK) {
        int64_t now = timefmt_now_ms();
        if (now - cn->last_error_ms > 10000) {
            cn->last_error_ms = now;
            LOG_WARN("cluster_live", "note=\"cannot write this node's liveness record to NATS; retrying\"");
        }
    }
}

/* Re-reads the map and the other nodes' endpoints. */
static void refresh(clusternode *cn)
{
    clustermap m;
    char err[256];
    cluster_live l;
    if (cnats_map_get(&cn->nats, &m, NULL, err, sizeof err) != LS_OK || m.nparts != cn->nparts)
        return; /* NATS did not answer (or a foreign map): keep what we knew */
    pthread_mutex_lock(&cn->lock);
    int changed = m.epoch != cn->map.epoch;
    cn->map = m;
    pthread_mutex_unlock(&cn->lock);
    if (changed) {
        LOG_INFO("cluster_map", "epoch=%llu", (unsigned long long)m.epoch);
        apply_map(cn, &m);
    }
    for (int i = 0; i < m.nnodes && i < CLUSTER_MAX_NODES; i++) {
        int rc = cnats_live_get(&cn->nats, m.nodes[i], &l);
        if (rc != LS_OK && rc != LS_ENOTFOUND)
            continue; /* NATS did not answer: keep what we knew */
        pthread_mutex_lock(&cn->lock);
        if (rc == LS_OK)
            snprintf(cn->node_ep[i], sizeof cn->node_ep[i], "%s", l.endpoint);
        cn->node_down[i] = rc != LS_OK || timefmt_now_ms() - l.ts_ms > CLUSTER_LIVE_TTL_MS || l.nheld == 0;
        pthread_mutex_unlock(&cn->lock);
    }
}

/* 1 while a node of the map has not published its endpoint yet (just
 * after a cluster starts): the map is then re-read every STOP_POLL_MS,
 * so the `cluster` op soon lists every owner. */
static int endpoints_unknown(clusternode *cn)
{
    int unknown = 0;
    pthread_mutex_lock(&cn->lock);
    for (int i = 0; i < cn->map.nnodes && !unknown; i++)
        unknown = cn->node_ep[i][0] == '\0';
    pthread_mutex_unlock(&cn->lock);
    return unknown;
}

static void *control_main(void *arg)
{
    clusternode *cn = arg;
    prctl(PR_SET_NAME, "ls-cluster");
    int64_t next = 0;
    while (!atomic_load(&cn->svc->stopping)) {
        int64_t now = timefmt_mono_ns();
        check_catch_up(cn);
        if (now >= next || endpoints_unknown(cn)) {
            put_live(cn);
            refresh(cn);
            purge_given_up(cn);
            next = now + CONTROL_EVERY_MS * 1000000LL;
        }
        timefmt_sleep_ms(STOP_POLL_MS);
    }
    /* The loop drains: the gateway answers what the workers hand it, then
     * the node stops applying and the hub tells the writer it is done. */
    gateway_join(&cn->gw);
    for (uint32_t p = 0; p < cn->nparts; p++)
        atomic_store(&cn->held[p], HELD_NONE);
    put_live(cn);
    shardlog_stop(&cn->sl);
    return NULL;
}

/* For the gateway: 1 while this node answers reads of partition p (a
 * partition still catching up is read elsewhere, so writes do not wait
 * for it). */
static int answers(void *arg, uint32_t p)
{
    return clusternode_holds(arg, p);
}

/* The writer waits for its producer's finish token: when the shard log
 * never started, this sends it. */
static void finish_writer_slot(service *svc)
{
    void *push = msgio_inproc_socket(svc->zmq, ZMQ_PUSH, SERVICE_EP_WRITER, 0, 1);
    if (push)
        writer_finish(push);
    zmq_close(push);
}

int clusternode_start(clusternode **out, service *svc, int nworkers, const char *endpoint, const char *pull,
                      char *err, size_t errlen)
{
    clusternode *cn = calloc(1, sizeof *cn);
    const config *cfg = &svc->cfg;
    int rc;
    *out = NULL;
    if (!cn)
        return LS_ENOMEM;
    cn->svc = svc;
    pthread_mutex_init(&cn->lock, NULL);
    snprintf(cn->node, sizeof cn->node, "%s", cfg->node);
    snprintf(cn->endpoint, sizeof cn->endpoint, "%s", cfg->advertise[0] ? cfg->advertise : endpoint);
    snprintf(cn->pull, sizeof cn->pull, "%s", pull ? pull : "");
    char conn_name[96];
    snprintf(conn_name, sizeof conn_name, "leadscore %s", cfg->node);
    if (!cfg->advertise[0] && (strstr(endpoint, "://0.0.0.0:") || strstr(endpoint, "://*:") || strstr(endpoint, "://[::]:"))) {
        snprintf(err, errlen, "--bind %s listens on every address: give --advertise with the address other nodes "
                 "and clients reach this one at (e.g. tcp://10.0.0.5:5555)", endpoint);
        rc = LS_EINVAL;
    } else if (!clustermap_valid_name(cfg->node)) {
        snprintf(err, errlen, "--node: give this node's name as in the cluster map (letters, digits, '-', '_')");
        rc = LS_EINVAL;
    } else if ((rc = cnats_connect(&cn->nats, cfg->nats, conn_name, 1, CONNECT_WAIT_MS, err, errlen)) == LS_OK &&
               (rc = cnats_open_kv(&cn->nats, cfg->cluster, 0, 0, CONNECT_WAIT_MS, err, errlen)) == LS_OK &&
               (rc = cnats_map_get(&cn->nats, &cn->map, NULL, err, errlen)) == LS_OK &&
               clustermap_node_index(&cn->map, cfg->node) < 0) {
        snprintf(err, errlen, "node \"%s\" is not in cluster \"%s\"'s map (its nodes were given to `cluster init`)",
                 cfg->node, cfg->cluster);
        rc = LS_EINVAL;
    }
    if (rc == LS_OK) {
        cn->nparts = cn->map.nparts;
        rc = shardlog_start(&cn->sl, svc, &cn->map, err, errlen);
    }
    if (rc == LS_OK)
        rc = gateway_start(&cn->gw, svc, &cn->nats, &cn->map, cn->node, nworkers, answers, cn, err, errlen);
    if (rc == LS_OK)
        rc = forward_start(&cn->fwd, svc, cn->node, err, errlen);
    if (rc == LS_OK) {
        apply_map(cn, &cn->map);
        put_live(cn);
        refresh(cn); /* the other nodes' endpoints, for the `cluster` op at once */
        if (pthread_create(&cn->control, NULL, control_main, cn) != 0) {
            snprintf(err, errlen, "cannot start the cluster control thread");
            rc = LS_EINTERNAL;
        } else {
            cn->control_running = 1;
        }
    }
    if (rc) {
        if (cn->gw && !cn->control_running)
            gateway_abandon(cn->gw, nworkers);
        if (!cn->sl)
            finish_writer_slot(svc);
        clusternode_join(&cn);
        return rc;
    }
    LOG_INFO("cluster_node", "node=%s cluster=%s partitions=%u epoch=%llu", cn->node, cfg->cluster, cn->nparts,
             (unsigned long long)cn->map.epoch);
    *out = cn;
    return LS_OK;
}

const char *clusternode_nats_version(void)
{
    return nats_GetVersion();
}

void clusternode_join(clusternode **cnp)
{
    if (!cnp || !*cnp)
        return;
    clusternode *cn = *cnp;
    if (cn->control_running)
        pthread_join(cn->control, NULL);
    shardlog_stop(&cn->sl);
    gateway_join(&cn->gw);
    forward_stop(&cn->fwd);
    cnats_close(&cn->nats);
    pthread_mutex_destroy(&cn->lock);
    free(cn);
    *cnp = NULL;
}

uint32_t clusternode_partition(const clusternode *cn, const char *id, size_t len)
{
    return partition_of(id, len, cn->nparts);
}

int clusternode_holds(const clusternode *cn, uint32_t p)
{
    return p < cn->nparts && atomic_load(&((clusternode *)cn)->held[p]) == HELD_SERVING;
}

void clusternode_read_endpoint(clusternode *cn, uint32_t p, int standby, char *out, size_t cap)
{
    pthread_mutex_lock(&cn->lock);
    int n = p >= cn->map.nparts ? -1 : standby ? cn->map.standby[p] : cn->map.owner[p];
    if (n >= 0 && !standby && (strcmp(cn->map.nodes[n], cn->node) == 0 || cn->node_down[n]) &&
        cn->map.standby[p] >= 0)
        n = cn->map.standby[p]; /* the owner is this node, still catching up, or down: its standby answers */
    snprintf(out, cap, "%s", n >= 0 ? cn->node_ep[n] : "");
    pthread_mutex_unlock(&cn->lock);
}

int clusternode_same_holders(clusternode *cn, uint32_t a, uint32_t b)
{
    pthread_mutex_lock(&cn->lock);
    int same = clustermap_same_holders(&cn->map, a, b);
    pthread_mutex_unlock(&cn->lock);
    return same;
}

int clusternode_forwarded(const void *identity, size_t len)
{
    size_t n = strlen(FORWARD_ID_PREFIX);
    return len >= n && memcmp(identity, FORWARD_ID_PREFIX, n) == 0;
}

void clusternode_describe(clusternode *cn, codec_writer *w)
{
    pthread_mutex_lock(&cn->lock);
    const clustermap *m = &cn->map;
    cw_key(w, "mode");
    cw_str(w, "cluster");
    cw_key(w, "cluster");
    cw_str(w, m->cluster);
    cw_key(w, "node");
    cw_str(w, cn->node);
    cw_key(w, "epoch");
    cw_int(w, (int64_t)m->epoch);
    cw_key(w, "partitions");
    cw_int(w, m->nparts);
    cw_key(w, "hash");
    cw_str(w, PARTITION_HASH_NAME);
    /* a node that is down is listed as "": clients go to the other holder */
    cw_key(w, "owners");
    cw_array(w);
    for (uint32_t p = 0; p < m->nparts; p++)
        cw_str(w, cn->node_down[m->owner[p]] ? "" : cn->node_ep[m->owner[p]]);
    cw_end(w);
    cw_key(w, "standbys");
    cw_array(w);
    for (uint32_t p = 0; p < m->nparts; p++)
        cw_str(w, m->standby[p] >= 0 && !cn->node_down[m->standby[p]] ? cn->node_ep[m->standby[p]] : "");
    cw_end(w);
    pthread_mutex_unlock(&cn->lock);
}
