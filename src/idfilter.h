/* idfilter.h -- a Bloom filter of the event ids merged into the store's
 * `event_ids` table, so that a claim of a new id skips the B-tree lookup.
 *
 * A claim of an id the writer's memory does not hold (windowkeys.h) asks
 * `event_ids`.  Random ids (a UUID per event) are almost always new, and
 * each lookup descends to a leaf of its own through pages the cache does
 * not hold: a tenth of the writer's time in a flood of them.  A filter
 * that says "not there" answers for the B-tree; "maybe there" sends the
 * claim to it as before, so a false positive costs only the lookup it
 * would have made anyway, and the filter never answers wrong as long as
 * every id merged into the table was added (store.c adds each one, and
 * builds a filter by a scan of the table, see its idfilter notes).
 *
 * Blocked: a key sets IDFILTER_BITS_PER_KEY bits in one 64-byte block,
 * chosen by its hash, so a lookup reads one cache line.  Sized at
 * IDFILTER_BITS_PER_KEY bits per key of the capacity asked for, rounded up
 * to a power of two blocks and capped at IDFILTER_MAX_BYTES: at its
 * capacity under 1 lookup in 100 is a false positive (0.8 % measured at
 * 10.5 bits a key; fewer the more the rounding up gave).  Keys cannot be
 * taken out: pruned or forgotten ids stay, and the owner builds a fresh
 * filter once more keys were added than it was sized for.  Not
 * thread-safe. */
#ifndef LS_IDFILTER_H
#define LS_IDFILTER_H

#include <stddef.h>
#include <stdint.h>

/* Bits of the filter per key of its capacity (before rounding up). */
#define IDFILTER_BITS_PER_KEY 10
/* Bits a key sets, all in its block. */
#define IDFILTER_PROBES 7
/* The largest filter: past it the false positives grow, answers stay right. */
#define IDFILTER_MAX_BYTES (256u << 20)

typedef struct {
    uint64_t *words;     /* nblocks * 8 words; NULL: no filter, which may hold any key */
    size_t nblocks;      /* a power of two, at most IDFILTER_MAX_BYTES / 64 */
    uint64_t added;      /* keys added since it was made */
    uint64_t capacity;   /* the keys it was sized for */
} idfilter;

/* No filter: it takes no memory, adds nothing, and may hold any key. */
void idfilter_init(idfilter *f);
/* An empty filter sized for `capacity` keys (at least one block).
 * LS_OK or LS_ENOMEM (then f is as idfilter_init leaves it). */
int idfilter_make(idfilter *f, uint64_t capacity);
void idfilter_free(idfilter *f);

void idfilter_add(idfilter *f, const void *key, size_t len);
/* 0 when key was certainly never added; 1 when it may have been. */
int idfilter_may_hold(const idfilter *f, const void *key, size_t len);
/* A hint for a loop that will ask about many keys: key's block is
 * fetched into the cache.  Changes nothing. */
void idfilter_prefetch(const idfilter *f, const void *key, size_t len);

/* The same by the key's hash, for a loop that fetches a key's block some
 * steps before it adds the key and hashes it once (the hash is the same
 * for every filter). */
uint64_t idfilter_hash(const void *key, size_t len);
void idfilter_add_hash(idfilter *f, uint64_t hash);
void idfilter_prefetch_hash(const idfilter *f, uint64_t hash);

/* The memory its bits take. */
size_t idfilter_bytes(const idfilter *f);
/* 1 when more keys were added than it was sized for. */
int idfilter_overfull(const idfilter *f);

#endif
