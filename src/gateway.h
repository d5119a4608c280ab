/* gateway.h -- cluster mode's write path: track batches go to the log.
 *
 * In cluster mode the workers hand each validated track batch (a
 * writer_job, writer.h) to the gateway thread instead of the writer.  The
 * gateway takes every job waiting, splits their events by partition
 * (partition.h), writes one message per partition (logmsg.h) to the
 * partition's JetStream stream with a unique Nats-Msg-Id, and answers each
 * request only when JetStream has acknowledged every message holding its
 * events (stored on a quorum of the stream's replicas).  A message whose
 * ack fails or times out is sent again with the same id (JetStream drops
 * the copy) until the request's retry budget (15 s from its arrival, not
 * from the round's start: a request may have waited behind a round) runs
 * out: then it is answered `unavailable` at once, while the round goes on
 * for the others, and a resend with the same event ids is harmless (the
 * shards deduplicate by event id when they apply).  The shards
 * (shardlog.h) apply the log to LMDB; the gateway never writes the store,
 * but before it answers it waits (at most GATEWAY_VISIBLE_WAIT_MS) until
 * this node's store has applied the acked messages of the partitions it
 * holds, so a read sent to the same node after `ok` sees the events.
 *
 * Fire-and-forget (PULL) batches take the same path without a reply. */
#ifndef LS_GATEWAY_H
#define LS_GATEWAY_H

#include "cluster_nats.h"
#include "clustermap.h"
#include "service.h"

typedef struct gateway gateway;

/* Starts the thread; it binds SERVICE_EP_GATEWAY before this returns and
 * exits once nproducers producers (the workers) sent writer_finish and
 * every job taken is answered.  nats must outlive the gateway. */
/* Whether this node applies partition p (the gateway then answers only
 * once the node's store has the request's events: read-your-writes). */
typedef int (*gateway_holds_fn)(void *arg, uint32_t p);

int gateway_start(gateway **out, service *svc, cnats *nats, const clustermap *map, const char *node, int nproducers,
                  gateway_holds_fn holds, void *holds_arg, char *err, size_t errlen);
void gateway_join(gateway **g);

/* For a start-up that failed before the workers ran: sends the
 * gateway the finish tokens of its nproducers producers, so it exits. */
void gateway_abandon(gateway *g, int nproducers);

#endif
