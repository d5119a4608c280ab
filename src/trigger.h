/* trigger.h -- the trigger outbox: every moment that fires and every
 * audience enter/exit, as a numbered record in the store, written in the
 * same transaction as what caused it, read back in seq order by anyone
 * (the `triggers` op, `leadscore triggers --follow`).
 *
 * A trigger is stored as the msgpack map the wire carries (PROTOCOL.md
 * section 3.13): {seq, id, customer, kind, name, at, ...}.  seq starts at
 * 1 and grows by one per trigger, and is never given twice: after forget
 * or pruning erased the newest triggers, numbering goes on past the
 * highest seq ever written (kept in the store); id is "<store id>-<seq>"
 * in hex/decimal, the same on every redelivery.  Old triggers leave the outbox by age
 * and by count (trigger_prune); a reader asking from before the oldest
 * one kept is told where the outbox now begins.
 *
 * Also here: the timer queue (customers due for a re-evaluation at a
 * time) -- keys be64 due_ms + customer id in the trigger_timers table. */
#ifndef LS_TRIGGER_H
#define LS_TRIGGER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "store.h"

typedef enum { TRIGGER_MOMENT, TRIGGER_ENTER, TRIGGER_EXIT } trigger_kind;

/* What one trigger says; strings need not be NUL-terminated where a
 * length is given. */
typedef struct {
    trigger_kind kind;
    const char *name;           /* the moment, or the audience */
    const char *customer;
    size_t customer_len;
    int64_t at_ms;              /* when it fired (server time) */
    double score;
    const char *tier, *phase, *customer_type, *segment;
    double clv;
    double value;               /* abandoned_cart: the open cart's value; else 0 */
} trigger_record;

const char *trigger_kind_name(trigger_kind k);

/* The outbox's writer side: seq and the store id, read at the start of
 * each write txn (trigger_outbox_begin), since an aborted txn takes its
 * seqs back. */
typedef struct {
    uint64_t store_id;          /* random, made once per store */
    uint64_t next_seq;
    uint64_t appended;          /* triggers appended in the open txn */
    codec_writer cw;
} trigger_outbox;

void trigger_outbox_init(trigger_outbox *o);
void trigger_outbox_free(trigger_outbox *o);
int trigger_outbox_begin(trigger_outbox *o, store_wtxn *w);

/* Appends t as the next seq (returned in *seq, may be NULL). */
int trigger_append(trigger_outbox *o, store_wtxn *w, const trigger_record *t, uint64_t *seq);

/* Deletes triggers fired before before_ms, and the oldest beyond
 * keep_max, at most max per call; *pruned says how many went. */
int trigger_prune(store_wtxn *w, int64_t before_ms, uint64_t keep_max, size_t max, size_t *pruned);

/* Erases every trigger of customer id from the outbox (forget: the
 * outbox must not keep an erased customer's id).  *erased says how many. */
int trigger_forget(store_wtxn *w, const char *id, size_t len, size_t *erased);

/* Calls fn with the stored msgpack bytes of up to limit triggers with
 * seq > from, in seq order.  *first is the oldest seq the outbox holds
 * (0 when empty) and *last the newest ever written (it may have left). */
typedef int (*trigger_fn)(void *arg, uint64_t seq, const uint8_t *msgpack, size_t len);
int trigger_read(store_reader *r, uint64_t from, size_t limit, trigger_fn fn, void *arg, uint64_t *first,
                 uint64_t *last);

/* ---- the timer queue ---- */

/* Schedules customer id at due_ms (0: nothing) in place of old_due_ms
 * (0: none). */
int trigger_timer_move(store_wtxn *w, const char *id, size_t len, int64_t old_due_ms, int64_t due_ms);

/* Takes up to max customers due at or before now_ms off the queue: their
 * ids go to fn, in due order, after their keys are deleted.  *taken says
 * how many. */
typedef int (*trigger_due_fn)(void *arg, const char *id, size_t len, int64_t due_ms);
int trigger_timer_take(store_wtxn *w, int64_t now_ms, size_t max, trigger_due_fn fn, void *arg, size_t *taken);

/* The earliest due time queued, or 0. */
int64_t trigger_timer_first(store_wtxn *w);

#endif
