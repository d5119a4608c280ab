/* history.h -- a customer's event history: every event the store keeps
 * beside the running feature vector, so that any figure can be computed
 * as of any time.
 *
 * One history per customer (one LMDB value in the `history` table, see
 * store.h), kept in time order.  In memory it is an array of
 * history_event plus a per-customer string table (categories, products,
 * order ids; an event refers to a string by its 1-based index), and a
 * "before" aggregate: the feature record of the events that fell out of
 * retention (older than the customer's newest event minus history_days,
 * or beyond HISTORY_MAX_EVENTS), so lifetime counts stay right when the
 * folded events came in time order (see below).
 *
 * Canonical replay.  The features of a customer are DEFINED as the replay
 * of its history: start from `before`, apply every event in canonical
 * order (time, then content), rounding the record after each event exactly
 * as the store's encoding rounds it (feature_round).  The writer keeps the
 * running vector equal to that replay bit for bit (it applies new events
 * at the tail incrementally, and replays when an event lands in the
 * middle), so the vector read for "now" and a replay as of a later time
 * agree exactly, whatever order the events arrived in.  As of a time T the
 * replay stops at the last event with ts <= T.
 *
 * Retention folds whole orders: the lines of one order are folded
 * together or not at all, so a history may keep a few more events than
 * the limits say.  An event older than the retention boundary that
 * arrives late is folded into `before` after the events already there.
 * `before` keeps the sets of the days and orders it counted (fold_days,
 * fold_orders), so such an event -- or one replayed on top of `before`
 * out of time order, or another customer's `before` merged in by an
 * alias -- counts a day or an order only when the time order would: the
 * counts stay exact whatever the arrival order.  Its decayed weight still
 * depends on arrival order, in the last bits of a float (the record is
 * rounded after each event applied).
 * The identities of folded events are kept (at most HISTORY_MAX_FOLDED_IDS,
 * the numerically smallest let go first), so an event folded out of
 * retention is still a duplicate when it is sent again: a second import of
 * a file longer than retention changes nothing.
 *
 * Orders: purchase lines of one customer with the same order id are one
 * order (history_replay tells feature_apply_line which line continues an
 * order).  Duplicates: an event whose identity (a 64-bit hash of its event
 * id, see history_ident) is already held is not added again.
 *
 * Encoding (little-endian, version byte first):
 *   u8 version (1; 2 when bit 1 of flags is set; 3 when bit 2 is), u8
 *   flags (bit 0: has before, bit 1: has folded identities, bit 2: has
 *   before's day and order sets)
 *   [varint len, feature_encode bytes]         the before aggregate
 *   [varint n, n x u64 ascending]              the folded identities
 *   [varint n, n x varint ascending deltas     before's days
 *    varint m, m x u64 ascending]              before's order hashes
 *   varint nstrings, { varint len, bytes }     the string table
 *   varint nevents, then per event:
 *     varint ts delta (the first: ts itself), u8 type (high bit: a
 *     non-profile event with a birthday), u8 field bits, then the fields
 *     the bits say: value f64, quantity varint, identity u64, session
 *     hash u32, category/product/order varints; rating u8 on reviews,
 *     birthday varint on profile events and where the type's high bit says.
 * A page view with a session and a category costs about 11 bytes; with an
 * event id 19; a purchase line with a value and an order about 30. */
#ifndef LS_HISTORY_H
#define LS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "feature.h"

#define HISTORY_VERSION 3
/* Days and orders kept per customer in `before`'s sets (see below); past
 * this the sets are let go and `before` counts as it did before them. */
#define HISTORY_MAX_FOLD_SET 20000
/* Identities of folded events kept per customer (8 bytes each). */
#define HISTORY_MAX_FOLDED_IDS 20000
/* Default retention, in days back from the customer's newest event. */
#define HISTORY_DEFAULT_DAYS 730
/* Most events kept per customer; older ones are folded into `before`. */
#define HISTORY_MAX_EVENTS 20000

/* history_event.bits */
enum {
    HB_VALUE = 1 << 0,
    HB_QUANTITY = 1 << 1,     /* quantity != 1 */
    HB_IDENT = 1 << 2,
    HB_SESSION = 1 << 3,
    HB_CATEGORY = 1 << 4,
    HB_PRODUCT = 1 << 5,
    HB_ORDER = 1 << 6,
    HB_DISCOUNTED = 1 << 7
};

typedef struct {
    int64_t ts_ms;
    uint64_t ident;           /* identity hash of the event id; 0 = none */
    double value;             /* order total / cart value (HB_VALUE) */
    int64_t quantity;
    uint32_t session_hash;    /* feature_session_hash of the session id */
    uint32_t category;        /* 1-based string refs; 0 = none */
    uint32_t product;
    uint32_t order;
    uint16_t birthday_mmdd;   /* profile events; 0 = none */
    uint8_t type;             /* event_type */
    uint8_t rating;           /* review events; 0 = none */
    uint8_t bits;             /* HB_* */
} history_event;

/* A sorted set of 64-bit keys. */
typedef struct {
    uint64_t *v;
    size_t n, cap;
} history_set;

typedef struct {
    int has_before;
    ls_features before;       /* events folded out of retention */
    uint64_t *folded;         /* their identities, ascending (no 0) */
    size_t nfolded, folded_cap;
    /* What `before` counted, so an event folded or replayed out of time
     * order is counted as the time order would: the purchase, share and
     * review days (kind << 32 | UTC day) and the order ids (hashes) of the
     * events folded into it.  fold_sets_lost: `before` came without them
     * (a store written before them) or they outgrew HISTORY_MAX_FOLD_SET;
     * then counts go by `before` alone, as before. */
    history_set fold_days, fold_orders;
    int fold_sets_lost;
    history_event *ev;
    size_t n, cap;
    /* string table: string i (1-based) is str + off[i-1], len[i-1] bytes */
    char *str;
    size_t str_used, str_cap;
    uint32_t *off;
    uint16_t *len;
    size_t nstr, str_slots;
    /* a hash index over the string table once it is big (str_intern):
     * slots hold refs (0: empty); the first str_indexed strings are in */
    uint32_t *str_hash;
    size_t str_hash_slots, str_indexed;
} history;

void history_init(history *h);
void history_free(history *h);
/* Empties h (keeps its memory). */
void history_clear(history *h);

/* Replaces h's content with a stored history.  0, LS_EVERSION (newer
 * format), LS_EPARSE (corrupt) or LS_ENOMEM. */
int history_decode(history *h, const uint8_t *buf, size_t len);

/* Bytes history_encode will write. */
size_t history_encoded_size(const history *h);
/* Writes h into buf (at least history_encoded_size bytes); *len is set. */
int history_encode(const history *h, uint8_t *buf, size_t cap, size_t *len);

/* The identity of an event id: a 64-bit hash, never 0. */
uint64_t history_ident(const char *event_id, size_t len);

/* Adds a validated event, keeping time order.  When ident is not 0 and an
 * event with that identity is held, nothing changes and *dup is 1.
 * *at (may be NULL) is the index it landed at.  0 or LS_ENOMEM. */
int history_add(history *h, const ls_event *ev, uint64_t ident, int *dup, size_t *at);

/* Index of the first event with ts > asof_ms (h->n when none). */
size_t history_upto(const history *h, int64_t asof_ms);

/* The string of a 1-based ref ("" for 0). */
ls_str history_string(const history *h, uint32_t ref);

/* Event i as an ls_event (strings point into h; session hash set). */
void history_event_get(const history *h, size_t i, ls_event *out);

/* The features as of asof_ms (INT64_MAX: all): `before`, then events
 * [0, history_upto(asof)) in order.  0 or LS_ENOMEM. */
int history_replay(const history *h, int64_t asof_ms, const feature_decay *d, ls_features *out);

/* Applies events [from, to) onto f, which must be the replay of [0, from)
 * (the writer's incremental path).  0 or LS_ENOMEM. */
int history_apply_range(const history *h, size_t from, size_t to, const feature_decay *d, ls_features *f);

/* Folds into `before` the events older than (newest - retention_ms) and
 * the oldest ones beyond max_events.  The running features do not change.
 * *folded (may be NULL) counts them.  0 or LS_ENOMEM. */
int history_fold(history *h, int64_t retention_ms, size_t max_events, const feature_decay *d, size_t *folded);

/* Merges src into dst (an alias: both customers' events, one history;
 * befores merged with feature_merge).  0 or LS_ENOMEM. */
int history_merge(history *dst, const history *src, const feature_decay *d);

#endif
