/* feature.h -- the per-customer feature record and all of its maths.
 *
 * One ls_features per customer is what the store keeps (one LMDB value,
 * encoded by feature_encode).  The writer folds events into it with
 * feature_apply(); the scorer reads named values out of it with
 * feature_value(), decayed to the query time.
 *
 * Time decay.  Every decayed counter is kept as its value at the record's
 * anchor time (the latest event time seen, last_seen_ms):
 *     D(anchor) = sum over events i of 2^(-(anchor - ts_i) / half_life).
 * A newer event moves the anchor forward (D *= 2^(-dt/h), then D += 1); a
 * late event adds its own decayed share 2^(-(anchor - ts)/h).  Both paths
 * give the same sum, so the record does not depend on arrival order (up to
 * float rounding: decayed values are stored as 32-bit floats).  At query
 * time the value is decayed once more, from the anchor to `now`. */
#ifndef LS_FEATURE_H
#define LS_FEATURE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define FEATURE_MAX_CATEGORIES 8
#define FEATURE_SESSION_RING 4
#define FEATURE_CART_RING 6
/* Largest encoded record, in bytes (every string at its maximum). */
#define FEATURE_MAX_ENCODED 4096
/* Cap for "days since" features when the thing never happened. */
#define FEATURE_NEVER_DAYS 3650.0
/* 2: session times, cart ring, birthday time, first order value, last
 * review and negative times.  3: orders (count[EV_PURCHASE] counts
 * orders), purchase lines, purchase days and units.  4: the same fields,
 * sparse (see feature.c): what is zero takes a bit or a byte, counts are
 * varints and times deltas from last_seen (a browser's record is about a
 * quarter of its version 3).  5: version 4 plus last_engaged_ms, stored
 * only when it differs from last_seen_ms (the newest events were
 * complaints); a record of an older version takes last_seen_ms for it.
 * 6: version 5's encoding, built by the ninth pass's rules (the cart ring
 * merges its oldest slots, a removal takes out at most what the cart
 * holds, a new category displaces the least recent one): an older record
 * with a history is replayed once when its customer is next written.
 * 7: version 6's encoding plus first_visit_ms, stored only when it is
 * not what its stand-in gives (the first event for a record with a visit,
 * else none: feature.c, first_visit_stand_in), built by the twelfth
 * pass's rules (a checkout while the cart is empty puts its basket in the
 * cart): a version 6 record with a history is replayed once in the same
 * way; one without takes the stand-in.
 * 8: version 7's encoding, built by the thirteenth pass's rules (a visit
 * without a session id counts as a session of its half hour of the UTC
 * clock: feature.c, sliced_session_hash): a version 7 record with a
 * history is replayed once when its customer is next written.
 * Older records still decode. */
#define FEATURE_RECORD_VERSION 8
/* The first version that keeps last_engaged_ms. */
#define FEATURE_VERSION_LAST_ENGAGED 5

/* The two half-lives of every decayed counter, in ms.  "recent" uses the
 * short one (days: this week's intent), "decayed" the long one (weeks:
 * this season's engagement).  Fixed per store, see store.h. */
typedef struct {
    int64_t short_ms;
    int64_t long_ms;
} feature_decay;

typedef struct {
    uint16_t len;
    char name[EVENT_MAX_STR + 1];
    uint32_t count;       /* events in this category, ever */
    double recent;        /* interest decayed with the short half-life */
    double decayed;       /* interest decayed with the long half-life */
} feature_category;

typedef struct {
    int64_t first_seen_ms;      /* 0 while the record is empty */
    int64_t last_seen_ms;       /* the anchor of every decayed value */
    uint32_t count[EV_TYPE_COUNT];
    double recent[EV_TYPE_COUNT];
    double decayed[EV_TYPE_COUNT];
    uint32_t sessions;          /* distinct session ids (see feature.c) */
    struct {
        uint32_t hash;          /* 0 = empty slot */
        int64_t ts_ms;          /* the session's latest event */
    } session_ring[FEATURE_SESSION_RING];
    double sessions_recent;
    double sessions_decayed;
    double spend;               /* gross purchase value */
    double refunded;            /* refund value */
    double discounted_spend;    /* purchase value bought on sale */
    struct {
        int64_t ts_ms;          /* 0 = empty slot */
        float value;            /* + added, - removed */
        int16_t items;          /* + quantity added, - removed (a cart without prices counts too) */
    } cart[FEATURE_CART_RING];  /* the latest cart events by time */
    uint32_t purchase_lines;    /* purchase events (count[EV_PURCHASE] counts orders) */
    uint32_t purchase_days;     /* distinct UTC days with a purchase: BG/NBD transactions */
    uint32_t purchase_units;    /* quantities bought, summed */
    int64_t first_purchase_ms;  /* 0 = never */
    int64_t last_purchase_ms;
    int64_t last_cart_ms;       /* latest add_to_cart */
    int64_t last_checkout_ms;   /* latest checkout */
    int64_t last_share_ms;      /* latest share or referral */
    uint32_t share_days;        /* distinct UTC days with a share or referral */
    uint32_t review_days;       /* distinct UTC days with a review */
    double first_purchase_value; /* value bought on the first purchase day */
    int64_t last_review_ms;     /* latest review */
    int64_t last_negative_ms;   /* latest refund, bad review (<= 2) or support ticket */
    int64_t last_engaged_ms;    /* latest event that is neither one of those (a complaint) nor a profile update; 0 = none */
    int64_t first_visit_ms;     /* earliest storefront visit (feature_has_visit's types); 0 = none */
    uint32_t rating_sum;
    uint32_t rating_n;
    uint32_t bad_reviews;       /* rating <= 2 */
    uint32_t good_reviews;      /* rating >= 4 */
    uint16_t birthday_mmdd;     /* 0 = unknown */
    int64_t birthday_ts_ms;     /* time of the profile event that set it */
    uint8_t ncategories;
    feature_category categories[FEATURE_MAX_CATEGORIES];
} ls_features;

/* What feature_value() needs besides the record. */
typedef struct {
    int64_t now_ms;
    feature_decay decay;
} feature_ctx;

/* An empty record: a customer with no events. */
void feature_init(ls_features *f);

/* 1 when the record has seen no event. */
int feature_empty(const ls_features *f);

/* Folds one validated event into the record.  Never fails.  Every
 * purchase is an order of its own here; see feature_apply_line. */
void feature_apply(ls_features *f, const ls_event *ev, const feature_decay *decay);

/* The same, for a purchase line that continues an order already counted
 * when continues_order is 1: its value, quantity and category count, but
 * it is not another order (count, recent and decayed purchase counts stay).
 * Purchase days are exact when events are applied in time order, as the
 * store always does (history.h). */
void feature_apply_line(ls_features *f, const ls_event *ev, const feature_decay *decay, int continues_order);

/* Rounds the values the encoding keeps as 32-bit floats, so that a record
 * in memory equals what the store gives back after feature_encode and
 * feature_decode.  The canonical replay rounds after every event. */
void feature_round(ls_features *f);

/* The session hash sessions are counted by (FNV-1a, never 0). */
uint32_t feature_session_hash(const char *s, size_t len);

/* Folds record src into dst as if dst had seen all of src's events (used
 * when an anonymous visitor is aliased to a customer).  Never fails. */
void feature_merge(ls_features *dst, const ls_features *src, const feature_decay *decay);

/* Serialises f into buf (capacity cap, at least FEATURE_MAX_ENCODED is
 * always enough).  Returns 0 and the length in *len, or LS_EINVAL. */
int feature_encode(const ls_features *f, uint8_t *buf, size_t cap, size_t *len);

/* Parses a stored record.  Returns 0, LS_EVERSION for a record written by a
 * newer format, or LS_EPARSE for a truncated or corrupt one (f then holds
 * what was read before the fault, the rest zero).  On success the category
 * slots past ncategories, and the bytes of a name past its terminating
 * NUL, are left as they were (nothing reads them: a slot is cleared when
 * a category takes it); every other field is set. */
int feature_decode(ls_features *f, const uint8_t *buf, size_t len);

/* ---- named feature values, as models and the profile op see them ---- */

/* Number of named features; ids run from 0 to feature_count() - 1. */
int feature_count(void);

/* Name of feature id ("add_to_cart_recent"), or NULL when out of range. */
const char *feature_name(int id);

/* Id of a named feature, or -1. */
int feature_lookup(const char *name);

/* Value of feature id for record f at ctx->now_ms. */
double feature_value(const ls_features *f, int id, const feature_ctx *ctx);

/* 1 when the record holds a storefront visit: a page or product view, a
 * search, a cart add or removal, or a checkout.  A buyer without one is
 * known from orders alone (an order feed, an imported order history):
 * model.c scores such a customer by its orders, train.c tells an order
 * feed by it. */
int feature_has_visit(const ls_features *f);

/* 1 for a buyer whose first order came before any storefront visit (an
 * order history imported, an order feed, then a storefront that began to
 * send visits): the logistic terms never saw how this customer shops. */
int feature_orders_before_visits(const ls_features *f);

/* The open cart: cart adds minus removes after the last purchase, among
 * the FEATURE_CART_RING latest cart events; 0 when that is not positive. */
double feature_open_cart(const ls_features *f);

/* 1 when a cart is open: items (or value) added after the last purchase
 * outnumber those removed, whether or not the events carried prices. */
int feature_cart_is_open(const ls_features *f);

/* Decay factor 2^(-dt/half_life) for dt >= 0 (1 for dt <= 0). */
double feature_decay_factor(int64_t dt_ms, int64_t half_life_ms);

#endif
