/* loadgen_request.h -- the bytes `leadscore bench` sends and reads
 * (loadgen_request.c): the customer each request names, the msgpack
 * request of every workload, and error replies read for people.
 * Internal to the load generator; loadgen_scan_reply() is in loadgen.h. */
#ifndef LS_LOADGEN_REQUEST_H
#define LS_LOADGEN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "loadgen_client.h"

/* Chooses run's fixed permutation of n customers: a multiplier coprime
 * with n near n/phi, so the hot Zipf ranks land far apart. */
void lg_request_permutation(lg_run *run, uint64_t n);
/* Starts a request map in c->sb of nfields entries after "id" (left out
 * when id is 0) and "op". */
void lg_request_begin(lg_client *c, uint32_t nfields, uint64_t id, const char *op);
/* Builds the next request of the workload into c->sb; sets its kind
 * (LOADGEN_KIND_*) and the number of items it carries. */
void lg_request_build(lg_client *c, uint64_t id, int *kind, uint32_t *items);
/* The slow path for an error reply: "code: message" into out. */
void lg_request_describe_error(const void *buf, size_t len, char *out, size_t cap);

#endif
