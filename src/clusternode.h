/* clusternode.h -- what makes `serve --nats` a shard node of a cluster.
 *
 * A node connects to NATS, reads the cluster map (clustermap.h) and
 * starts the gateway (gateway.h: track goes to the partition logs) and
 * the shard log (shardlog.h: the partitions it owns or stands by for are
 * applied to its store).  A control thread re-reads the map every second
 * (a `cluster move` changes which partitions it applies), and writes the
 * node's liveness record: its endpoints and its position in each
 * partition's log, which `cluster status` and the `cluster` op read.
 *
 * The server loop asks clusternode_holds() before it answers a read: a
 * customer of a partition this node does not hold is not answered from
 * its store (docs/PROTOCOL.md, "Cluster mode"). */
#ifndef LS_CLUSTERNODE_H
#define LS_CLUSTERNODE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "service.h"

/* Longest endpoint a node publishes. */
#define CLUSTER_EP_MAX 256

typedef struct clusternode clusternode;

/* Connects, checks the map names this node, and starts the gateway (for
 * nworkers producers) and the shard log, the writer's one producer.
 * Call after the writer started (for one producer) and before the
 * workers.  endpoint and pull are the node's bound client endpoints,
 * published for other nodes and clients.  On failure everything it
 * started is stopped and the writer has its producer's finish token. */
int clusternode_start(clusternode **out, service *svc, int nworkers, const char *endpoint, const char *pull,
                      char *err, size_t errlen);

/* Waits for the node's threads (after the loop drained: svc->stopping
 * set, the gateway finished) and disconnects. */
void clusternode_join(clusternode **cn);

/* The libnats version this build runs cluster mode on, or NULL when it was
 * built without (for `leadscore --version`). */
const char *clusternode_nats_version(void);

/* The partition of a customer id, and whether this node applies it. */
uint32_t clusternode_partition(const clusternode *cn, const char *id, size_t len);
int clusternode_holds(const clusternode *cn, uint32_t p);

/* Writes, into w, the fields of the `cluster` reply after ok/id:
 * mode, cluster, node, epoch, partitions, hash, owners, standbys. */
void clusternode_describe(clusternode *cn, codec_writer *w);

/* Where to send a read of partition p: its owner, or with standby its
 * standby ("" when there is none or it is unknown). */
void clusternode_read_endpoint(clusternode *cn, uint32_t p, int standby, char *out, size_t cap);

/* 1 when partitions a and b have the same owner and the same standby in
 * the node's map (clustermap_same_holders). */
int clusternode_same_holders(clusternode *cn, uint32_t a, uint32_t b);

/* 1 when a request came through another node's forwarder (its routing
 * id, the ROUTER's first frame): it is answered here, never forwarded. */
int clusternode_forwarded(const void *identity, size_t len);

#endif
