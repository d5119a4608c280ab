/* partition.h -- which log partition a customer belongs to in cluster
 * mode: p = fmix64(fnv1a64(id)) mod P.
 *
 * FNV-1a spreads short ids cheaply; MurmurHash3's 64-bit finaliser
 * (fmix64) mixes the high bits into the low ones the modulo keeps.  The
 * function is part of the protocol (docs/PROTOCOL.md, "Cluster mode"):
 * the Python client computes it too, and both are tested on the same
 * vectors. */
#ifndef LS_PARTITION_H
#define LS_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* The name clients see in the `cluster` reply's `hash` field. */
#define PARTITION_HASH_NAME "fnv1a64-fmix64"

/* Most partitions a cluster may have. */
#define PARTITION_MAX 1024

uint64_t partition_hash(const char *id, size_t len);

/* partition_hash(id) mod nparts; nparts >= 1. */
uint32_t partition_of(const char *id, size_t len, uint32_t nparts);

#endif
