/* forward.h -- cluster mode: any node answers any read.
 *
 * The server loop hands the forwarder thread each read that names a
 * customer of a partition this node does not hold (server.c).  The
 * forwarder sends it over a DEALER to the partition's owner (the
 * owner's endpoint comes from the cluster map, clusternode.h), and
 * when the owner does not answer within FORWARD_FAILOVER_MS, to its
 * standby; the answer goes back through the loop to the client, as a
 * worker's would.  A batched score is split: the customers of partitions
 * this node holds go to its own ROUTER (FORWARD_EP_SELF), so they are
 * answered from its store as a single read is; the others are split by
 * owner and standby, so a part that fails over reaches a node holding
 * all of its customers.  Each part is sent, and the results merged in
 * request order.
 *
 * At a stop, once no answer is awaited, the thread tells the loop it is
 * done, after its last answer, as a worker does: the loop does not exit
 * with a forwarded read unanswered.
 *
 * Forwarded requests come from a DEALER whose routing id starts with
 * FORWARD_ID_PREFIX: the node receiving one answers from its own store or
 * refuses, and never forwards it again (no loops while maps disagree). */
#ifndef LS_FORWARD_H
#define LS_FORWARD_H

#include "service.h"

#define FORWARD_ID_PREFIX "lsfwd:"
#define SERVICE_EP_FORWARD "inproc://leadscore-forward"
/* The server binds its ROUTER here too in cluster mode (server.c). */
#define FORWARD_EP_SELF "inproc://leadscore-self"

typedef struct forwarder forwarder;

/* Starts the thread; it binds SERVICE_EP_FORWARD before this returns. */
int forward_start(forwarder **out, service *svc, const char *node, char *err, size_t errlen);

/* Stops the thread (answering what waits with `unavailable`) and frees it. */
void forward_stop(forwarder **f);

#endif
