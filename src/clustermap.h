/* clustermap.h -- the cluster map: which node owns and which stands by
 * for each log partition, as kept in the cluster's KV bucket (key `map`),
 * and each node's liveness record (key `live.<node>`).
 *
 * Pure data and its JSON form (jansson); no NATS here (cluster_nats.h
 * reads and writes the bucket).  The map changes only by compare-and-set
 * on its KV revision, and every change raises `epoch`.
 *
 * Map JSON: {"v":1,"cluster":NAME,"epoch":E,"partitions":P,"generation":G,
 *            "hash":"fnv1a64-fmix64","nodes":[names],"owner":[node index per
 *            partition],"standby":[node index or -1]}
 * Live JSON: {"endpoint":EP,"pull":EP,"pid":N,"ts":ms,"applied":{"p":seq}} */
#ifndef LS_CLUSTERMAP_H
#define LS_CLUSTERMAP_H

#include <stddef.h>
#include <stdint.h>

#include "partition.h"

#define CLUSTER_NAME_MAX 48     /* a cluster or node name, NUL included */
#define CLUSTER_MAX_NODES 64
#ifndef CLUSTER_EP_MAX
#define CLUSTER_EP_MAX 256
#endif

typedef struct {
    char cluster[CLUSTER_NAME_MAX];
    uint64_t epoch;
    uint32_t nparts;
    int64_t generation;         /* ms at `cluster init`: part of every stream name */
    int nnodes;
    char nodes[CLUSTER_MAX_NODES][CLUSTER_NAME_MAX];
    int16_t owner[PARTITION_MAX];   /* node index */
    int16_t standby[PARTITION_MAX]; /* node index, -1: none */
} clustermap;

typedef struct {
    char endpoint[CLUSTER_EP_MAX];
    char pull[CLUSTER_EP_MAX];
    long pid;
    int64_t ts_ms;              /* when the node last wrote it */
    uint32_t nheld;             /* partitions listed in applied */
    uint32_t part[PARTITION_MAX];
    uint64_t applied[PARTITION_MAX];
} cluster_live;

/* A live record older than this means the node is down. */
#define CLUSTER_LIVE_TTL_MS 5000

/* 1 when name is 1..47 of [A-Za-z0-9_-] (usable in stream names and KV keys). */
int clustermap_valid_name(const char *name);

/* A new map (epoch 1): partition p owned by nodes[p % n], standby
 * nodes[(p + 1) % n] (none with one node).  LS_EINVAL with a reason. */
int clustermap_init(clustermap *m, const char *cluster, uint32_t nparts, int64_t generation,
                    const char *const *nodes, int nnodes, char *err, size_t errlen);

/* Index of node name in the map, or -1. */
int clustermap_node_index(const clustermap *m, const char *name);

/* Partition p's stream name, LS_<cluster>_P<ppp>_G<generation>, and the
 * subject its events are published on, ls.<cluster>.p.<p>.ev. */
void clustermap_stream_name(const clustermap *m, uint32_t p, char *out, size_t cap);
void clustermap_subject(const clustermap *m, uint32_t p, char *out, size_t cap);

/* Makes node the owner of p; the old owner becomes standby (when node
 * was the standby, the two swap).  Raises the epoch. */
int clustermap_move(clustermap *m, uint32_t p, const char *node, char *err, size_t errlen);

/* 1 when reads of partitions a and b go to the same nodes: the same
 * owner and the same standby (or none for both); 0 when not, or when
 * either is not in the map.  A forwarded batched score (forward.c) puts
 * customers of a and b in one part only then, so that when the owner
 * does not answer, the part's one resend reaches a standby of all its
 * customers. */
int clustermap_same_holders(const clustermap *m, uint32_t a, uint32_t b);

/* JSON text (malloc'd, free it) and back.  Parsing checks every field. */
char *clustermap_to_json(const clustermap *m);
int clustermap_from_json(clustermap *m, const char *text, size_t len, char *err, size_t errlen);

char *cluster_live_to_json(const cluster_live *l);
int cluster_live_from_json(cluster_live *l, const char *text, size_t len);

#endif
