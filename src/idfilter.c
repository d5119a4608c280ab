/* idfilter.c -- a blocked Bloom filter of merged event ids (see
 * idfilter.h). */
#define _POSIX_C_SOURCE 200809L
#include "idfilter.h"

#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define WORDS_PER_BLOCK 8 /* 512 bits: one cache line */
#define BLOCK_BYTES (WORDS_PER_BLOCK * sizeof(uint64_t))

/* A 64-bit hash of the key bytes, eight at a time, then a finaliser
 * (the filter lives in memory only: its value need not be portable). */
uint64_t idfilter_hash(const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    w = 0;
    if (len)
        memcpy(&w, p, len);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
}

/* The block of hash h: from its top 24 bits (the cap keeps nblocks at
 * 2^22 or fewer). */
static uint64_t *block_of(const idfilter *f, uint64_t h)
{
    return f->words + ((h >> 40) & (f->nblocks - 1)) * WORDS_PER_BLOCK;
}

/* The probes' bit positions in a block, 9 bits each, come from a second
 * mix of the hash, independent of the top bits that chose the block. */
static uint64_t probe_bits(uint64_t h)
{
    return (h * 0x9e3779b97f4a7c15ULL) ^ (h >> 17);
}

void idfilter_init(idfilter *f)
{
    memset(f, 0, sizeof *f);
}

int idfilter_make(idfilter *f, uint64_t capacity)
{
    idfilter_init(f);
    uint64_t want = capacity * IDFILTER_BITS_PER_KEY / 8, max_blocks = IDFILTER_MAX_BYTES / BLOCK_BYTES;
    size_t nblocks = 1;
    while (nblocks < max_blocks && (uint64_t)nblocks * BLOCK_BYTES < want)
        nblocks *= 2;
    void *words = NULL;
    if (posix_memalign(&words, BLOCK_BYTES, nblocks * BLOCK_BYTES) != 0)
        return LS_ENOMEM;
    memset(words, 0, nblocks * BLOCK_BYTES);
    f->words = words;
    f->nblocks = nblocks;
    f->capacity = capacity;
    return LS_OK;
}

void idfilter_free(idfilter *f)
{
    free(f->words);
    idfilter_init(f);
}

void idfilter_add_hash(idfilter *f, uint64_t h)
{
    if (!f->words)
        return;
    uint64_t bits = probe_bits(h), *b = block_of(f, h);
    for (int i = 0; i < IDFILTER_PROBES; i++, bits >>= 9)
        b[(bits >> 6) & 7] |= 1ULL << (bits & 63);
    f->added++;
}

void idfilter_add(idfilter *f, const void *key, size_t len)
{
    if (f->words)
        idfilter_add_hash(f, idfilter_hash(key, len));
}

int idfilter_may_hold(const idfilter *f, const void *key, size_t len)
{
    if (!f->words)
        return 1; /* no filter knows nothing */
    uint64_t h = idfilter_hash(key, len), bits = probe_bits(h);
    const uint64_t *b = block_of(f, h);
    for (int i = 0; i < IDFILTER_PROBES; i++, bits >>= 9)
        if (!(b[(bits >> 6) & 7] & (1ULL << (bits & 63))))
            return 0;
    return 1;
}

void idfilter_prefetch_hash(const idfilter *f, uint64_t h)
{
    if (f->words)
        __builtin_prefetch(block_of(f, h));
}

void idfilter_prefetch(const idfilter *f, const void *key, size_t len)
{
    if (f->words)
        idfilter_prefetch_hash(f, idfilter_hash(key, len));
}

size_t idfilter_bytes(const idfilter *f)
{
    return f->words ? f->nblocks * BLOCK_BYTES : 0;
}

int idfilter_overfull(const idfilter *f)
{
    return f->words && f->added > f->capacity;
}
