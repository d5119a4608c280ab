/* store.h -- the LMDB environment that holds every customer's feature
 * record and the idempotency keys of recent events.
 *
 * Layout (named LMDB databases inside one environment directory):
 *   meta          "schema" -> u32 schema version, "decay" -> 2 x i64 half-lives
 *   customers     customer id -> the customer's running feature record
 *                 (feature.h), its event history (history.h) and its
 *                 automation state (automation.h), in one value: a write
 *                 touches one B-tree leaf, a read for "now" decodes the
 *                 record part alone
 *   event_ids     event id -> i64 receive time (ms) + customer id
 *   event_ids_by_time  be64 receive time + event id -> "" (for pruning)
 *   aliases       anonymous id -> customer id it was merged into
 *   alias_targets customer id + NUL + anonymous id -> "" (reverse index;
 *                 ids may hold NUL: `aliases` says which reading holds)
 *
 * The running vector in `customers` is, bit for bit, the canonical replay
 * of the customer's history (history.h): the writer keeps it so.  Reads
 * for "now" decode it alone (O(1)); reads as of an earlier time replay the
 * history up to that time.
 *
 * Schema versions: 1 had no alias tables, 2 no history, 3 no automation
 * state in the value and no automation tables.  Opening an older store for
 * writing creates the missing tables and records version 4 (an in-place
 * upgrade; an older binary must not read values in a format it does not
 * know, which is why the version moves).  A customer written by an
 * older version has a record and no history: its record counts as the
 * history's "before" aggregate (what happened before the upgrade), and new
 * events go to its history.
 *
 * Files in the directory: data.mdb and lock.mdb (LMDB's), and
 * leadscore.lock, the writer lock (storefile.h).  data.mdb's meta pages
 * are checked before it is mapped, so a truncated file or one with bad
 * meta pages is refused with a message, not met later as a SIGBUS; the
 * other pages are not checked (LMDB keeps no checksums): a damaged B-tree
 * page can still crash a reader inside LMDB, and a damaged customer value
 * is answered LS_EPARSE / LS_EVERSION when it is read.
 *
 * Threads: exactly one thread writes (the writer, see writer.h) through a
 * store_wtxn; any number of threads read, each through its own
 * store_reader, and readers never wait for the writer (LMDB MVCC).
 * The store never logs: every function returns a status from error.h;
 * store_open also explains a failure in words, for the person starting it. */
#ifndef LS_STORE_H
#define LS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "feature.h"
#include "history.h"

/* 2: alias tables.  3: histories inside customer values.  4: automation
 * state inside them.  5: feature records of version 4 (feature.h); a
 * leadscore of schema 4 cannot read them, so a store opened for writing
 * says 5 from then on and such a leadscore refuses it whole.  6: window
 * keys merged into event_ids lazily (windowkeys.h): event_ids_by_time
 * values hold the customer, and event_ids may lack the newest ids, which
 * a leadscore of schema 5 would neither see nor erase.  7: feature
 * records of version 5 (last_engaged), which a leadscore of schema 6
 * would take for unknown customers.  8: histories of version 2 (the
 * identities of events folded out of retention), which a leadscore of
 * schema 7 could not read.  9: feature records of version 7 (the first
 * visit), which a leadscore of schema 8 would take for damaged ones.
 * 10: feature records of version 8 (a visit without a session id counts
 * as a session), which a leadscore of schema 9 would take for damaged
 * ones.  11: histories of version 3 (the days and orders `before`
 * counted), which a leadscore of schema 10 would take for damaged ones. */
#define STORE_SCHEMA_VERSION 11

typedef struct store store;
typedef struct store_reader store_reader;
typedef struct store_wtxn store_wtxn;

/* Bytes in the store (valid until the txn's next write, or the snapshot's
 * end). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} store_bytes;

typedef struct {
    uint64_t map_size;      /* initial LMDB map size in bytes (virtual; 0 = default 1 GiB) */
    int no_sync;            /* 1: skip fsync on commit (NOT durable; bulk loads only) */
    int read_only;          /* 1: open for reading only (rescore, kpis) */
    unsigned max_readers;   /* 0 = default 126 */
    int history_days;       /* retention back from each customer's newest event; 0 = 730 */
    uint64_t id_filter_min_keys; /* the least keys a filter of merged ids is sized for; 0 = 1 Mi (tests go small) */
} store_options;

typedef struct {
    uint64_t customers;     /* records in the customers database */
    uint64_t event_ids;     /* idempotency keys held */
    uint64_t event_ids_unmerged; /* ... of which held in the writer's memory, not yet in event_ids */
    uint64_t event_ids_filter_bytes;  /* the filter of merged ids (idfilter.h) answering claims; 0 while none */
    uint64_t event_id_lookups_skipped; /* claims of new ids that filter answered without event_ids */
    uint64_t used_bytes;    /* pages in use x page size */
    uint64_t map_bytes;     /* the map size */
    uint64_t readers;       /* LMDB reader slots taken, by any process (a dead one's too, until cleared) */
    uint64_t readers_active;/* ... of which hold a snapshot open (and so keep old pages from reuse) */
    uint64_t readers_max;   /* reader slots there are */
    uint64_t readers_stale_cleared; /* slots of dead processes cleared by this handle (store_reader_check) */
} store_stats;

/* LMDB's key limit (bytes); ids the store keys on must fit under it. */
#define STORE_MAX_KEY 511

/* Opens (creating if needed) the store in directory dir.  A new store
 * records decay as its half-lives; an existing one keeps its own (read them
 * with store_decay); with decay NULL the store must exist (LS_ENOTFOUND).  A store written by a newer schema is refused with
 * LS_EVERSION.  On failure *out is NULL and err (if not NULL) holds a
 * message for a person.
 *
 * Before LMDB maps data.mdb its meta pages are checked (storefile.h): a
 * truncated, empty or foreign file is refused with LS_EPARSE and a message
 * naming the problem and the recovery, instead of a SIGBUS later.  An
 * LMDB environment that holds data but no leadscore meta record (another
 * application's) is refused with LS_EPARSE, untouched; an empty one
 * becomes a new store.  A meta record without its schema version or
 * half-lives is refused with LS_EPARSE by writers and readers alike.  An open
 * for writing takes the directory's writer lock (DIR/leadscore.lock) for
 * the life of the handle: a second writer, in this process or another, is
 * refused with LS_EUNAVAIL naming the holder's pid; read-only opens take
 * no lock.  A writer also clears reader slots left by dead processes
 * (store_reader_check), and allocates lock.mdb's disk blocks before LMDB
 * maps it (storefile_reserve_locks).  A refused writer's open leaves the
 * directory as it found it: the lock file and LMDB's files it made are
 * removed, so a new store that a full disk refused (LS_EUNAVAIL, err
 * saying the disk is full) is created by the next try. */
int store_open(store **out, const char *dir, const store_options *opt,
               const feature_decay *decay, char *err, size_t errlen);

/* Closes the environment; every reader and write txn must be gone.  NULLs
 * *s; a NULL *s is harmless. */
void store_close(store **s);

/* The half-lives this store's records are kept with. */
const feature_decay *store_decay(const store *s);

/* From now on each write txn remembers the customer values it writes, in
 * at most max_bytes (valuememo.h; 0: it stops), so a read of one of them
 * later in the same txn (the automation evaluating the customers a group
 * changed) skips the B-tree.  The writer turns it on with the automation;
 * a txn's reads give the same answers either way.  Call it with no write
 * txn running. */
void store_memo_writes(store *s, size_t max_bytes);

/* A hint for a loop over many customers of the txn: customer id's value
 * will be read a few steps from now, so it is brought into the cache from
 * the memo in two stages, its slot first (STORE_PREFETCH_SLOT, further
 * ahead), then the value the slot points to (STORE_PREFETCH_VALUE, a step
 * or two ahead).  Changes nothing. */
enum { STORE_PREFETCH_SLOT, STORE_PREFETCH_VALUE };
void store_wtxn_prefetch(store_wtxn *w, const char *id, size_t len, int stage);

int store_stat(store *s, store_stats *out);

/* Doubles the map size, to at most max_bytes, while no snapshot is open
 * (readers wait for the moment it takes).  The writer calls it when a
 * transaction fails with LS_EFULL, then retries.  LS_EFULL when the map
 * is already at max_bytes. */
int store_grow(store *s, uint64_t max_bytes);

/* Sets the map size to bytes, or to the pages in use when they need more
 * (so it can shrink back after a temporary growth), while no snapshot is
 * open.  No write txn of this handle may be open.  0 or a status. */
int store_set_map_size(store *s, uint64_t bytes);

/* Clears the reader slots of processes that died inside a read (a killed
 * `rescore`: its snapshot would keep every page freed since from reuse,
 * and the file would grow until a restart).  *cleared (may be NULL) says
 * how many went; they also add up in store_stats.readers_stale_cleared.
 * The writer runs it at store_open and every few seconds. */
int store_reader_check(store *s, int *cleared);

/* Key checks a writer can run before its transaction, so a request that
 * cannot be stored is refused alone (the same checks guard every write
 * inside the store): LS_OK, LS_EINVAL for an empty id, LS_ETOOLARGE when
 * a key would pass LMDB's limit.  A customer id; an event id (keyed with
 * an 8-byte time prefix, and held with its customer, so at most
 * EVENT_MAX_STR); an alias from -> to (the reverse index keys on
 * to NUL from; store_wtxn_alias also checks the ids already aliased to
 * from, which move over to to). */
int store_check_customer_id(size_t len);
int store_check_event(size_t customer_len, size_t event_id_len); /* event_id_len 0: none */
int store_check_alias(size_t from_len, size_t to_len);

/* ---- reading (one store_reader per thread) ---- */

int store_reader_open(store *s, store_reader **out);
void store_reader_close(store_reader **r);

/* Starts a snapshot; everything committed before this call is visible. */
int store_reader_begin(store_reader *r);
/* Ends the snapshot; pointers obtained inside it become invalid. */
void store_reader_end(store_reader *r);

/* Reads a customer's record inside the current snapshot, following an
 * alias (an anonymous id merged into a customer answers for it).
 * LS_ENOTFOUND when the store has none (out is then an empty record). */
int store_reader_get(store_reader *r, const char *id, size_t len, ls_features *out);

/* The record as of asof_ms: the running vector when the customer's newest
 * event is not later than asof_ms (O(1)), else the replay of its history
 * up to asof_ms.  LS_ENOTFOUND when the store has none, or the customer
 * was first seen after asof_ms (out is then an empty record). */
int store_reader_get_asof(store_reader *r, const char *id, size_t len, int64_t asof_ms, ls_features *out);

/* The history of a customer (following an alias).  A customer written by
 * an older version, or with no events in retention, has an empty one
 * (maybe with `before`).  LS_ENOTFOUND when the store has no such
 * customer. */
int store_reader_get_history(store_reader *r, const char *id, size_t len, history *out);

/* Calls fn for every customer in id order inside the current snapshot,
 * stopping early (and returning fn's value) when fn returns non-zero. */
typedef int (*store_visit_fn)(void *arg, const char *id, size_t len, const ls_features *f);
int store_reader_scan(store_reader *r, store_visit_fn fn, void *arg);

/* The same, with every record as of asof_ms (store_reader_get_asof):
 * customers first seen after asof_ms are skipped. */
int store_reader_scan_asof(store_reader *r, int64_t asof_ms, store_visit_fn fn, void *arg);

/* Calls fn for every customer with its running record and its history
 * (valid during the call only). */
typedef int (*store_history_fn)(void *arg, const char *id, size_t len, const ls_features *f, const history *h);
int store_reader_scan_history(store_reader *r, store_history_fn fn, void *arg);

/* Walks every customer's value in id order without decoding it (its
 * length and first byte are read): the floor under any full scan, which
 * `bench --workload rescore` measures beside `rescore`.  *records and
 * *bytes say how many values and bytes it went over. */
int store_reader_walk(store_reader *r, uint64_t *records, uint64_t *bytes);


/* 1 when the store holds the idempotency key of event id eid (an event
 * with that id was stored within the dedupe window). */
int store_reader_event_seen(store_reader *r, const char *eid, size_t len);

/* Cluster mode: the last stream sequence of log partition part applied
 * to this store (0: none), kept in `meta` in the same transaction as the
 * records it produced, so a restart resumes exactly after it. */
int store_reader_log_position(store_reader *r, uint32_t part, uint64_t *seq);

/* ---- writing (the writer thread only) ---- */

int store_write_begin(store *s, store_wtxn **out);
/* Commits (and, unless no_sync, syncs) the txn.  Frees it either way.
 * Any write in the txn, or the commit, answers LS_EFULL when the map is
 * full (store_grow, then retry) and LS_EUNAVAIL when the disk is full
 * (ENOSPC, EDQUOT: retry once space is freed; the map must not grow). */
int store_write_commit(store_wtxn **w);
void store_write_abort(store_wtxn **w);

int store_wtxn_get(store_wtxn *w, const char *id, size_t len, ls_features *out);
/* The same inside the write txn, and its update (cluster mode). */
int store_wtxn_log_position(store_wtxn *w, uint32_t part, uint64_t *seq);
int store_wtxn_set_log_position(store_wtxn *w, uint32_t part, uint64_t seq);

/* Cluster mode: a partition this node gave up is purged from its store.
 * store_wtxn_purge_mark records, in meta, that partition part (of nparts)
 * is to be purged and sets its log position to 0, in the same txn: the
 * mark survives a restart, and a node that takes the partition on again
 * replays its log from the start once the purge is done.  The writer
 * erases the partition's customers a chunk at a time (purge_next: the
 * lowest partition marked, LS_ENOTFOUND when none; purge_done: the mark
 * goes).  purge_pending: 1 while part's mark is there. */
int store_wtxn_purge_mark(store_wtxn *w, uint32_t part, uint32_t nparts);
int store_wtxn_purge_next(store_wtxn *w, uint32_t *part, uint32_t *nparts);
int store_wtxn_purge_done(store_wtxn *w, uint32_t part);
int store_wtxn_purge_pending(store_wtxn *w, uint32_t part);
int store_reader_purge_pending(store_reader *r, uint32_t part);


/* A customer's record and history held in memory while consecutive
 * events of one customer are added, written back when another customer
 * comes or on store_wtxn_put_back.  The writer and `import --data` both
 * use it.  store_held_init before the first use, store_held_free after the
 * last. */
typedef struct {
    int open;
    size_t len;
    char id[512];      /* the resolved id (an alias's target) */
    ls_features f;     /* the running vector */
    history h;
    size_t n_at_hold;  /* events f covers (the history's first n_at_hold) */
    uint8_t *state;    /* the customer's automation state, written back as it was */
    size_t state_len, state_cap;
    size_t first_new;  /* lowest index an event was added at */
    int changed;       /* events were added */
    uint8_t *buf;      /* encoding buffer */
    size_t buf_cap;
} store_held;

void store_held_init(store_held *h);
void store_held_free(store_held *h);

/* Makes h hold the record events of customer `id` land on (following an
 * alias; an empty record when there is none), writing back the record
 * held before.  0 or a status. */
int store_wtxn_hold(store_wtxn *w, store_held *h, const ls_str *id);

/* Adds a validated event to its customer's history (holding that
 * customer).  *dup is 1, and nothing changes, when the customer's history
 * already holds an event with the same event id.  0 or a status. */
int store_wtxn_add_event(store_wtxn *w, store_held *h, const ls_event *ev, int *dup);

/* Brings the held running vector up to date with the events added (the
 * canonical replay), folds what left retention into the history's
 * `before`, writes both back (if anything is held) and empties h. */
int store_wtxn_put_back(store_wtxn *w, store_held *h);

/* The id whose record `id` lands on: itself, or the customer an alias
 * points to.  *out points into the txn's memory (valid until the next
 * write in the txn: copy it) or at id itself. */
int store_wtxn_resolve(store_wtxn *w, const char *id, size_t len, const char **out, size_t *out_len);

/* How many puts and deletes the txn has handed to LMDB so far.  A call
 * that fails with the count unchanged left the txn as it was (a clean
 * refusal); one that fails after writing must be rolled back. */
uint64_t store_wtxn_writes(const store_wtxn *w);

/* 1 when a read of the txn met a customer value it could not decode (the
 * read answered LS_EPARSE, or LS_EVERSION for a record of an unknown
 * version): the stored record is damaged, no fault of the request.
 * *id / *len name the first such customer (valid while the txn lives). */
int store_wtxn_damaged(const store_wtxn *w, const char **id, size_t *len);

/* Merges anonymous id `from` into customer `to` (resolved through its own
 * alias): from's record is folded into to's (feature_merge) and deleted,
 * from (and every id aliased to from) then answers for to.  *merged is 0,
 * and nothing changes, when from already lands on to.  LS_EINVAL when from
 * is already merged into a different customer, or from and to are one id;
 * LS_ETOOLARGE when a reverse-index key would pass LMDB's limit; both
 * before anything is written. */
int store_wtxn_alias(store_wtxn *w, const char *from, size_t from_len, const char *to, size_t to_len,
                     int *merged);

/* Calls fn for every anonymous id aliased to customer target (collected
 * first: fn may write anything). */
typedef int (*store_alias_fn)(store_wtxn *w, const char *anon, size_t alen, void *arg);
int store_wtxn_each_alias(store_wtxn *w, const char *target, size_t tlen, store_alias_fn fn, void *arg);

/* Erases a customer: its record, every alias pointing to it and every
 * idempotency key of its events.  *deleted says whether anything was
 * there.  Freed LMDB pages keep their old bytes until reused: see
 * store_compact for a copy that holds only live data. */
int store_wtxn_forget(store_wtxn *w, const char *id, size_t len, int *deleted);

/* Many forgets in one txn (a cluster node erasing a partition it gave
 * up): store_wtxn_forget_record erases what store_wtxn_forget does but
 * the idempotency keys, and notes the ids in f; store_wtxn_forget_keys
 * then drops the keys of every id noted in one pass over them (one pass a
 * customer would cost the whole table each).  Both in the same txn. */
typedef struct store_forgotten store_forgotten;
store_forgotten *store_forgotten_new(void);
void store_forgotten_free(store_forgotten **f);
int store_wtxn_forget_record(store_wtxn *w, const char *id, size_t len, store_forgotten *f, int *deleted);
int store_wtxn_forget_keys(store_wtxn *w, store_forgotten *f);
int store_wtxn_put(store_wtxn *w, const char *id, size_t len, const ls_features *f);

/* Writes a customer's record and history as one value (the record must be
 * the replay of the history: see store_held), encoding into *buf (grown as
 * needed).  store_wtxn_put writes a record without a history, which then
 * counts as the history's `before` aggregate.  0 or a status. */
int store_wtxn_put_customer(store_wtxn *w, const char *id, size_t len, const ls_features *f, const history *h,
                            const uint8_t *state, size_t state_len, uint8_t **buf, size_t *buf_cap);

/* The automation state (automation.h) kept at the end of a customer's
 * value (schema 4), and with f non-NULL its running record, from one
 * lookup: state->len 0 when it has none (its bytes point into the txn).
 * LS_ENOTFOUND when there is no such customer. */
int store_wtxn_get_state(store_wtxn *w, const char *id, size_t len, ls_features *f, store_bytes *state);

/* The record of customer id as of asof_ms, inside the write txn: the
 * running record when its newest event is not later (O(1)), else the
 * replay of its history up to asof_ms.  *next_ms (when not NULL) gets the
 * time of its first event after asof_ms, 0 when it has none.  LS_ENOTFOUND
 * when there is no such customer, or all its events are later (out is
 * then an empty record). */
int store_wtxn_get_asof(store_wtxn *w, const char *id, size_t len, int64_t asof_ms, ls_features *out,
                        int64_t *next_ms);

/* Replaces that state (state_len 0: none), keeping record and history as
 * they are; the customer's leaf is usually dirty already, so this costs
 * no page of its own.  LS_ENOTFOUND when there is no such customer. */
int store_wtxn_put_state(store_wtxn *w, const char *id, size_t len, const void *state, size_t state_len);

/* Records event id `eid` as received at received_ms for customer id.
 * *seen is set to 1 (and nothing is written) when the id is already held,
 * including when it was recorded earlier in this same txn.  The id goes
 * to event_ids_by_time now and to event_ids at a later merge
 * (store_wtxn_merge_window_keys); until then it is held in memory. */
int store_wtxn_claim_event_id(store_wtxn *w, const char *eid, size_t eid_len,
                              const char *customer, size_t customer_len,
                              int64_t received_ms, int *seen);

/* A hint before claims of many ids: eid's lookup in the ids held in
 * memory is brought into the cache.  Changes nothing. */
void store_wtxn_prefetch_event_id(store_wtxn *w, const char *eid, size_t eid_len);

/* Deletes at most max idempotency keys received before cutoff_ms, oldest
 * first.  *pruned says how many went. */
int store_wtxn_prune_event_ids(store_wtxn *w, int64_t cutoff_ms, size_t max, size_t *pruned);

/* A claimed id is kept in memory and in event_ids_by_time, and reaches
 * event_ids later (windowkeys.h): this merges the next slice of a sweep
 * when one is under way or due (now_ms: the wall clock; idle: the writer
 * has nothing waiting, so a small set is merged after a while too).
 * *took is 1 when it took a slice, which leaves memory, and the sweep goes
 * on, once this txn commits (call it in a txn of its own); *merged says
 * how many keys it wrote to event_ids. */
int store_wtxn_merge_window_keys(store_wtxn *w, int64_t now_ms, int idle, int *took, size_t *merged);
/* 1 when store_wtxn_merge_window_keys would take a slice now: the writer
 * asks before it opens a txn for it. */
int store_window_keys_due(const store *s, int64_t now_ms, int idle);

/* The filter of merged ids (idfilter.h) that lets a claim of a new id
 * skip its event_ids lookup.  A writable store has none when it opens,
 * and builds one by a scan of event_ids, `budget` keys per call, in a
 * write txn of its own (call it between groups, outside any txn); it
 * answers claims once the scan has reached the end.  Once more ids were
 * merged into it than it was sized for (pruned ids stay in it), a fresh
 * one is built the same way while it goes on answering.  *done is 1
 * when the scan finished in this call.  LS_ENOMEM when the filter's
 * memory cannot be had (claims then go on asking event_ids). */
int store_build_id_filter(store *s, size_t budget, int *done);
/* 1 when store_build_id_filter has work: a filter to make or to finish. */
int store_id_filter_due(const store *s);

/* Writes a compacted copy of the store (live pages only) into the
 * directory out, which must exist and be empty.  0 or a status. */
int store_compact(store *s, const char *out);

/* ---- the automation tables (audience.h, trigger.h): raw bytes ----
 *   audiences         audience name -> its definition (audience.h)
 *   audience_members  be32 audience id + customer id -> be64 entered at (ms)
 *   trigger_outbox    be64 seq -> one trigger, msgpack (trigger.h)
 *   trigger_timers    be64 due (ms) + customer id -> ""
 *   trigger_by_customer  be16 id length + customer id + be64 seq -> ""
 *                     (so forget finds a customer's triggers)
 * Created by the first writer that knows them (no value format changes,
 * so the schema version stays 3); an older store opened read-only reads
 * them as empty.  Values returned point into the txn (valid until its next
 * write) or the snapshot. */
typedef enum { STORE_T_AUDIENCES, STORE_T_MEMBERS, STORE_T_OUTBOX, STORE_T_TIMERS, STORE_T_BY_CUSTOMER,
               STORE_T_COUNT } store_table;

/* Called for each key/value in order; non-zero stops the scan (and is
 * what the scan returns). */
typedef int (*store_kv_fn)(void *arg, const store_bytes *key, const store_bytes *val);

int store_wtxn_tget(store_wtxn *w, store_table t, const void *key, size_t klen, store_bytes *out);
int store_wtxn_tput(store_wtxn *w, store_table t, const void *key, size_t klen, const void *val, size_t vlen);
int store_wtxn_tdel(store_wtxn *w, store_table t, const void *key, size_t klen); /* LS_ENOTFOUND: absent */
int store_wtxn_tscan(store_wtxn *w, store_table t, const void *from, size_t fromlen, store_kv_fn fn, void *arg);
int store_wtxn_tlast(store_wtxn *w, store_table t, store_bytes *key);
/* How many keys t holds (LMDB keeps the count: no scan). */
int store_wtxn_tcount(store_wtxn *w, store_table t, size_t *n);
/* Deletes every key of t that starts with prefix; *deleted says how many. */
int store_wtxn_tdel_prefix(store_wtxn *w, store_table t, const void *prefix, size_t prefix_len, size_t *deleted);
int store_reader_tget(store_reader *r, store_table t, const void *key, size_t klen, store_bytes *out);
int store_reader_tscan(store_reader *r, store_table t, const void *from, size_t fromlen, store_kv_fn fn, void *arg);
int store_reader_tlast(store_reader *r, store_table t, store_bytes *key);

/* Visits the running records of customers with ids after `after` (NULL:
 * from the first), in id order, at most max of them, inside the write txn
 * (the automation sweep).  *visited counts them; *more is 1 when
 * customers remain. */
int store_wtxn_scan_customers(store_wtxn *w, const char *after, size_t after_len, size_t max,
                              store_visit_fn fn, void *arg, size_t *visited, int *more);

/* The same over the ids only: no value is read, so a customer whose
 * value cannot be decoded (damage) is visited too, and fn sees every key
 * counted in *visited (the cluster purge, which erases such a customer as
 * well and goes on after the last id it saw).  fn returning non-zero
 * stops the scan, and is returned. */
typedef int (*store_id_fn)(void *arg, const char *id, size_t len);
int store_wtxn_scan_customer_ids(store_wtxn *w, const char *after, size_t after_len, size_t max, store_id_fn fn,
                                 void *arg, size_t *visited, int *more);

/* ---- parallel scans over key ranges (rescore) ----
 * Several threads read ONE snapshot, each through its own reader: the
 * readers are begun together on the calling thread with
 * store_reader_begin_same, which checks that every one of them sees the
 * same commit (LMDB's txn id: the same id is the same snapshot, the same
 * B-tree roots) and begins them again when a commit landed in between.
 * The store opens LMDB with MDB_NOTLS, so a read txn may then be handed to
 * another thread as long as one thread at a time uses it (LMDB's rule):
 * begin and end them on the calling thread, scan each on one worker. */

/* Rounds store_reader_begin_same tries before giving up. */
#define STORE_SAME_ATTEMPTS 1000

/* Begins rs[0..n-1] on one snapshot (ending any they held).  0; LS_EUNAVAIL
 * when commits kept landing between the begins STORE_SAME_ATTEMPTS times
 * (none is then active: fall back to one reader); or a store status. */
int store_reader_begin_same(store_reader *const *rs, int n);

/* Keys, in order: key i is bytes[off[i] .. off[i + 1]). */
typedef struct {
    size_t n;
    uint8_t *bytes;
    size_t *off;
    size_t bytes_cap, off_cap;
} store_split;

void store_split_free(store_split *sp);

/* Most ranges store_reader_split_keys makes. */
#define STORE_SPLIT_MAX 65536

/* Customer ids, in order, that cut the customers table of r's (active)
 * snapshot into about max(min_ranges, customers / per_range) ranges (at
 * most STORE_SPLIT_MAX, at most one per customer) of similar size: the
 * separator keys of the upper branch pages of its B-tree (read from the
 * map; no leaf is touched), evenly thinned.  When the pages cannot be
 * read that way, a cursor walk over the keys instead (*by_pages 0).
 * Empty when there are fewer than 2 customers.  out is the caller's
 * (store_split_free); a split key need not be a customer. */
int store_reader_split_keys(store_reader *r, size_t min_ranges, size_t per_range, store_split *out, int *by_pages);

/* What a scan replayed: customers whose record was later than the as-of
 * time, and the events of their histories replayed to get there. */
typedef struct {
    uint64_t replayed;
    uint64_t events_replayed;
} store_scan_stats;

/* store_reader_scan_asof over the customers with from <= id < to (from
 * NULL: from the first; to NULL: to the last), adding to *stats. */
int store_reader_scan_range_asof(store_reader *r, const void *from, size_t from_len, const void *to, size_t to_len,
                                 int64_t asof_ms, store_visit_fn fn, void *arg, store_scan_stats *stats);

/* ---- fault injection (for tests; compiled in, off by default) ----
 * Process-wide switches that make the write path fail as if LMDB had,
 * so tests can reach failure paths no real input reaches.  While off they
 * cost one atomic load per write.
 *   STORE_FAULT_KEY     every write of the key `key` (any table) fails as
 *                       LMDB fails an over-long key (MDB_BAD_VALSIZE:
 *                       LS_EINTERNAL), inside the transaction;
 *   STORE_FAULT_COMMIT  the next `count` commits of write txns (count < 0:
 *                       all, until cleared), a writer's store_open's too,
 *                       fail with errno `err` after the txn is aborted:
 *                       ENOSPC is a full disk (LS_EUNAVAIL).
 * store_fault_clear turns every fault off. */
enum { STORE_FAULT_KEY = 1, STORE_FAULT_COMMIT = 2 };
void store_fault_set(int kind, const char *key, int err, int count);
void store_fault_clear(void);

#endif
