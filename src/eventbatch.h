/* eventbatch.h -- events copied out of an event-file reader (eventfile.h)
 * until they are written, and the one way such a batch goes into a store.
 *
 * The reader lends each event's strings only until its next row, so a
 * batch copies them into an arena of chunks that is reused batch after
 * batch.  eventbatch_store writes a batch the way the service's writer
 * writes a group: in one write transaction, each event added to its
 * customer's history (store_wtxn_add_event; an event id the history holds
 * is a duplicate), in customer order so that each customer's record is
 * held and written once per batch; a transaction that fills the map grows
 * it and is run again.  `import --data` and `train` (its temporary store)
 * both load files through it. */
#ifndef LS_EVENTBATCH_H
#define LS_EVENTBATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "store.h"

/* eventbatch_store's answer when *stop was set: nothing committed. */
#define EVENTBATCH_STOPPED 1

typedef struct eventbatch_chunk eventbatch_chunk;

typedef struct {
    eventbatch_chunk *head, *cur;
    ls_event *ev;             /* the events, strings in the arena */
    const ls_event **order;   /* ev[] in customer order (eventbatch_store) */
    size_t n, cap;
} eventbatch;

/* An empty batch of at most cap events.  0 or LS_ENOMEM. */
int eventbatch_init(eventbatch *b, size_t cap);
void eventbatch_free(eventbatch *b);
/* Empties the batch, keeping its memory. */
void eventbatch_reset(eventbatch *b);

/* Copies len bytes and a NUL into the arena; NULL when out of memory. */
char *eventbatch_copy(eventbatch *b, const char *s, size_t len);

/* Appends a copy of ev, its strings in the arena (the batch must have room:
 * n < cap).  *copy (may be NULL) points at the stored copy.  0 or LS_ENOMEM. */
int eventbatch_add(eventbatch *b, const ls_event *ev, const ls_event **copy);

/* Writes the batch into st (see the top of this file), growing the map up
 * to map_max.  held is the caller's store_held (store_held_init'ed), kept
 * for its buffers.  When *stop (may be NULL) is set before the commit the
 * transaction is aborted and EVENTBATCH_STOPPED returned.  On 0, *accepted
 * and *duplicates (may be NULL) count the batch's events.  Otherwise a
 * status, and nothing of the batch is stored.  The batch is not reset. */
int eventbatch_store(eventbatch *b, store *st, store_held *held, uint64_t map_max,
                     const volatile sig_atomic_t *stop, uint64_t *accepted, uint64_t *duplicates);

#endif
