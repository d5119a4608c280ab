/* shardlog.h -- cluster mode's apply path: a node's partitions, read
 * from their JetStream streams and applied to its LMDB store.
 *
 * One fetcher thread per partition the node holds (as owner or standby)
 * pulls its stream through an ephemeral pull consumer (no acks: the
 * position that counts is the store's, store_reader_log_position) from
 * the message after the store's position.  Each message becomes one
 * writer job (writer.h) carrying its partition and stream sequence; the
 * writer applies it only past the position and moves the position in
 * the same transaction, so every message is applied exactly once across
 * redeliveries, restarts and crashes.  Sequences within a partition are
 * contiguous: a fetcher that sees a hole re-creates its consumer from the
 * message it misses rather than apply past it.  One hub thread hands the
 * fetchers' jobs to the writer in the order they came. */
#ifndef LS_SHARDLOG_H
#define LS_SHARDLOG_H

#include <stdint.h>

#include "cluster_nats.h"
#include "clustermap.h"
#include "service.h"

typedef struct shardlog shardlog;

/* Starts the hub (one of the writer's producers).  svc must outlive it;
 * map is copied.  Each fetcher connects to svc->cfg.nats on its own. */
int shardlog_start(shardlog **out, service *svc, const clustermap *map, char *err, size_t errlen);

/* Starts applying partition p (no-op when it already is). */
int shardlog_hold(shardlog *sl, uint32_t p);
/* Stops applying partition p (no-op when it is not). */
void shardlog_release(shardlog *sl, uint32_t p);
/* After shardlog_release of a partition this node no longer holds (or
 * at start, for one its store still has data of): hands the writer a
 * JOB_PURGE behind every job fetched before, so the store marks p for
 * purging, sets its position to 0 and erases its customers between
 * groups (writer.h).  A fetcher of p started again waits for the purge
 * to end, then replays the log from its start.  LS_EINVAL while p is
 * applied here. */
int shardlog_purge(shardlog *sl, uint32_t p);
/* 1 while partition p is applied here. */
int shardlog_holds(const shardlog *sl, uint32_t p);

/* Stops every fetcher, hands what they fetched to the writer, tells the
 * writer this producer is done, and frees everything. */
void shardlog_stop(shardlog **sl);

#endif
