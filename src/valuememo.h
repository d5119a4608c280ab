/* valuememo.h -- the values one write transaction wrote, by key.
 *
 * The writer writes a customer's value and, a moment later in the same
 * transaction, the marketing automation reads it back (to evaluate the
 * customer) and sometimes rewrites it (its state).  Each of those is a
 * B-tree descent over pages the group has scattered through the cache.
 * store.c notes every value it writes to the customers table here and
 * drops every key it deletes, so a read in the same transaction finds
 * the bytes without the descent.
 *
 * A memo is a hash map from key bytes to value bytes, with both copied
 * into one arena that grows up to a byte limit.  It never answers wrong:
 * when a value cannot be kept (too big, the arena full, no memory) the
 * key is forgotten, and a lookup that misses goes to LMDB as before.
 * Not thread-safe: one write transaction uses it at a time.  A value
 * given to valuememo_put must not point into the memo itself. */
#ifndef LS_VALUEMEMO_H
#define LS_VALUEMEMO_H

#include <stddef.h>
#include <stdint.h>

/* The largest value a memo keeps; bigger ones are read from LMDB. */
#define VALUEMEMO_MAX_VALUE (16u * 1024)
/* The default arena limit: a group of 50,000 events (some 40,000
 * customers, values of a few hundred bytes) fits; past it, reads go to
 * LMDB. */
#define VALUEMEMO_DEFAULT_BYTES (32u * 1024 * 1024)

typedef struct {
    uint64_t *slots;      /* 0 = empty, else the key's hash << 32 | 1 + its entry's offset */
    size_t nslots, used;  /* used: slots taken (live or forgotten keys) */
    uint8_t *arena;
    size_t len, cap, max_bytes;
    uint64_t hits, misses; /* lookups answered / not, since init */
} valuememo;

/* An empty memo whose arena stays within max_bytes (0: the default). */
void valuememo_init(valuememo *m, size_t max_bytes);
void valuememo_free(valuememo *m);

/* Forgets every key.  The arena is kept for the next transaction, and so
 * is the slot table unless it is far bigger than this one needed. */
void valuememo_clear(valuememo *m);

/* Key's value is now val: kept (both copied) or, when it cannot be,
 * the key forgotten.  Never fails. */
void valuememo_put(valuememo *m, const void *key, size_t klen, const void *val, size_t vlen);

/* Key's value is no longer known here (deleted, or written elsewhere). */
void valuememo_drop(valuememo *m, const void *key, size_t klen);

/* 1 with *val / *vlen (valid until the next put or clear) when key's
 * value is known, else 0. */
int valuememo_get(valuememo *m, const void *key, size_t klen, const void **val, size_t *vlen);

/* Hints for a loop that will get many keys, a few steps ahead: the slot
 * of key is fetched into the cache (valuememo_prefetch_slot), then, a
 * step or two later, its entry (valuememo_prefetch_entry, which reads
 * the slot).  Neither changes anything; a get does not need them. */
void valuememo_prefetch_slot(const valuememo *m, const void *key, size_t klen);
void valuememo_prefetch_entry(const valuememo *m, const void *key, size_t klen);

#endif
