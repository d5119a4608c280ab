/* windowkeys.h -- the window idempotency keys claimed since they were last
 * merged into the store's `event_ids` table.
 *
 * A claim of an event id used to insert it into `event_ids`, a B-tree
 * keyed by the id.  Random ids (a UUID per event) land each on a leaf of
 * its own, so every claim copied and wrote a 4 KiB page at the commit.
 * store.c now keeps a claim here instead, in memory, with its durable
 * record in `event_ids_by_time` (appended at its right edge, cheap), and
 * merges the set into `event_ids` a slice of the key space at a time
 * (a sweep of WINDOWKEYS_SLICES slices): each page a merge writes then
 * carries many ids.  A claim asks this set, then `event_ids`.  A sweep
 * takes the keys held when it begins, put into their slices once (by
 * bounds from a sample); keys claimed during it wait for the next.
 *
 * The set belongs to the one write transaction running: changes made in
 * it (adds, kills) are undone when it aborts.  A sweep's slice is taken
 * out of the set only once the transaction that merged it committed.
 * Not thread-safe; the live count may be read from any thread. */
#ifndef LS_WINDOWKEYS_H
#define LS_WINDOWKEYS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Slices in one sweep over the key space. */
#define WINDOWKEYS_SLICES 8

/* One claimed id: the time its `event_ids_by_time` key carries, and the
 * customer it was claimed for. */
typedef struct {
    int64_t key_ms;
    uint32_t hash;         /* bytecur_fnv1a32 of the id */
    uint16_t id_len, customer_len;
    uint8_t dead;          /* merged, pruned, forgotten, or its txn aborted */
    char bytes[];          /* id, then customer */
} windowkeys_entry;

typedef struct {
    windowkeys_entry **all;   /* every entry, dead ones until the next compaction */
    size_t n, cap;
    windowkeys_entry **slots; /* open addressing by hash; NULL = empty */
    size_t nslots;
    atomic_size_t live;
    size_t bytes;             /* of the live and dead entries */
    /* the running transaction's changes, to undo on abort */
    struct windowkeys_undo { windowkeys_entry *e; int killed; } *undo;
    size_t nundo, undo_cap;
    /* the sweep under way: its keys, slice by slice (dead ones are
     * skipped; none is freed while it runs) */
    int sweeping, slice;      /* slice: the next to merge, 0..WINDOWKEYS_SLICES-1 */
    windowkeys_entry **sweep; /* slice i is sweep[start[i] .. start[i + 1]) */
    size_t start[WINDOWKEYS_SLICES + 1], sweep_cap;
    int64_t slice_min[WINDOWKEYS_SLICES + 1]; /* the oldest key_ms of slices i.. (INT64_MAX past the last) */
    int64_t added_min;        /* the oldest key_ms added since the sweep began */
    int slice_pending;        /* 1: the running txn merged slice `slice` */
} windowkeys;

void windowkeys_init(windowkeys *wk);
void windowkeys_free(windowkeys *wk);

/* The live entry for id, or NULL. */
windowkeys_entry *windowkeys_find(const windowkeys *wk, const void *id, size_t len);
/* A hint for a loop that will find many ids: the slot id's lookup starts
 * at is fetched into the cache.  Changes nothing. */
void windowkeys_prefetch(const windowkeys *wk, const void *id, size_t len);
/* Adds a claim (the caller checked it is not there).  LS_OK or LS_ENOMEM. */
int windowkeys_add(windowkeys *wk, const void *id, size_t len, int64_t key_ms, const void *customer,
                   size_t customer_len);
/* The entry is gone (pruned or forgotten); undone if the txn aborts.
 * LS_OK or LS_ENOMEM (then nothing changed). */
int windowkeys_kill(windowkeys *wk, windowkeys_entry *e);
size_t windowkeys_live(const windowkeys *wk);
size_t windowkeys_bytes(const windowkeys *wk);

/* The running write txn's outcome: commit keeps its changes (and drops a
 * slice it merged), abort undoes them. */
void windowkeys_committed(windowkeys *wk);
void windowkeys_aborted(windowkeys *wk);

/* Starts a sweep of the keys held now: each goes to its slice, by
 * boundaries from a sample of them.  LS_OK or LS_ENOMEM. */
int windowkeys_sweep_begin(windowkeys *wk, uint64_t seed);
/* The entries of the next slice, for the running txn to merge (*n may be
 * 0; skip the dead ones); *last is 1 when it is the sweep's last slice;
 * *oldest_left is at most the smallest key_ms of the keys held outside it
 * (INT64_MAX when none).  The slice leaves the set when that txn commits. */
void windowkeys_slice(windowkeys *wk, windowkeys_entry ***out, size_t *n, int *last, int64_t *oldest_left);

/* Calls fn for each live entry (stop by returning non-zero: returned). */
int windowkeys_each(windowkeys *wk, int (*fn)(void *arg, windowkeys_entry *e), void *arg);

static inline const char *windowkeys_id(const windowkeys_entry *e) { return e->bytes; }
static inline const char *windowkeys_customer(const windowkeys_entry *e) { return e->bytes + e->id_len; }

#endif
