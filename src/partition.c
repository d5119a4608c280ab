/* partition.c -- the customer id -> log partition function (partition.h). */
#include "partition.h"

static uint64_t fnv1a64(const char *id, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

uint64_t partition_hash(const char *id, size_t len)
{
    return fmix64(fnv1a64(id, len));
}

uint32_t partition_of(const char *id, size_t len, uint32_t nparts)
{
    return (uint32_t)(partition_hash(id, len) % (nparts ? nparts : 1));
}
