/* event.h -- the shop event: its types, its fields and its validation.
 *
 * An event arrives as a msgpack map (PROTOCOL.md section 2).  codec.c turns
 * the map into an ls_event; event_validate() then checks it once, at the
 * edge, so that everything behind it (the writer, the feature maths) can
 * trust every field.  Strings in an ls_event are borrowed: they point into
 * memory owned by whoever built the event (the request buffer or a batch
 * arena, see batch.h). */
#ifndef LS_EVENT_H
#define LS_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* X(enum suffix, wire name).  The order is part of the store format: the
 * feature record keeps one counter per type in this order.  Append only. */
#define EVENT_TYPE_MAP(X)                 \
    X(PAGE_VIEW, "page_view")             \
    X(PRODUCT_VIEW, "product_view")       \
    X(SEARCH, "search")                   \
    X(ADD_TO_CART, "add_to_cart")         \
    X(REMOVE_FROM_CART, "remove_from_cart") \
    X(CHECKOUT, "checkout")               \
    X(PURCHASE, "purchase")               \
    X(REFUND, "refund")                   \
    X(REVIEW, "review")                   \
    X(EMAIL_OPEN, "email_open")           \
    X(EMAIL_CLICK, "email_click")         \
    X(SMS_CLICK, "sms_click")             \
    X(SIGNUP, "signup")                   \
    X(REFERRAL, "referral")               \
    X(SHARE, "share")                     \
    X(SUPPORT_TICKET, "support_ticket")   \
    X(PROFILE, "profile")

typedef enum {
#define EVENT_TYPE_ENUM(sym, name) EV_##sym,
    EVENT_TYPE_MAP(EVENT_TYPE_ENUM)
#undef EVENT_TYPE_ENUM
    EV_TYPE_COUNT
} event_type;

/* Longest customer id, event id or other string field, in bytes. */
#define EVENT_MAX_STR 256

/* Earliest accepted event time: 2000-01-01T00:00:00Z, in ms. */
#define EVENT_MIN_TS_MS 946684800000LL
/* How far in the future of the server clock an event may be: 1 day. */
#define EVENT_MAX_FUTURE_MS 86400000LL

typedef struct {
    const char *ptr;
    size_t len;
} ls_str;

/* Which optional fields an event carries (bit set in ls_event.has). */
enum {
    EVF_TS = 1 << 0,
    EVF_PRICE = 1 << 1,
    EVF_QUANTITY = 1 << 2,
    EVF_VALUE = 1 << 3,
    EVF_DISCOUNTED = 1 << 4,
    EVF_RATING = 1 << 5,
    EVF_BIRTHDAY = 1 << 6
};

typedef struct {
    event_type type;
    unsigned has;        /* EVF_* bits */
    int64_t ts_ms;       /* event time; set to receive time when absent */
    ls_str customer;     /* required */
    ls_str event_id;     /* optional: len 0 when absent */
    ls_str session;
    ls_str product;
    ls_str category;
    ls_str order_id;
    uint32_t session_hash; /* 0: hash `session` when needed (history replay sets it) */
    double price;
    int64_t quantity;    /* 1 when absent */
    double value;        /* order total; price * quantity when absent */
    int discounted;
    int rating;          /* 1..5 on reviews */
    int birthday_mmdd;   /* MM*100+DD, 0 when absent */
} ls_event;

/* Wire name of a type ("purchase"), or NULL for an out-of-range value. */
const char *event_type_name(event_type type);

/* Looks a wire name up.  Returns 0 and sets *out, or LS_EBADREQ. */
int event_type_parse(const char *name, size_t len, event_type *out);

/* Resets an event to "nothing set" (quantity 1). */
void event_init(ls_event *ev);

/* Checks an event decoded from the wire and fills the defaults: a missing
 * ts becomes now_ms, a missing value becomes price * quantity.  Strings may
 * be at most max_str bytes (and never more than EVENT_MAX_STR).  Returns 0,
 * or LS_EBADREQ / LS_ETOOLARGE with a static reason in *why. */
int event_validate(ls_event *ev, int64_t now_ms, size_t max_str, const char **why);

/* Parses "MM-DD" into MM*100+DD.  Returns 0 or LS_EBADREQ. */
int event_parse_birthday(const char *s, size_t len, int *out_mmdd);

#endif
