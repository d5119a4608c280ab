/* fuzz_check.h -- the properties the fuzz harnesses assert, shared by
 * fuzz_request.c and fuzz_event.c.
 *
 * A violated property is a bug even when nothing crashes, so CHECK() traps:
 * libFuzzer reports the trap as a crash and saves the input.  Header-only
 * (static functions) so each harness stays one .c file. */
#ifndef LS_FUZZ_CHECK_H
#define LS_FUZZ_CHECK_H

#include <math.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "leadscore/error.h"

#define CHECK(cond)                   \
    do {                              \
        if (!(cond))                  \
            __builtin_trap();         \
    } while (0)

/* The "server clock" the harnesses validate against: 2023-11-14. */
#define FUZZ_NOW_MS 1700000000000LL

/* 1 when s is empty or lies inside [base, base + size): decoded strings are
 * borrowed from the request buffer, never copied (codec.h). */
static inline int fuzz_str_inside(const ls_str *s, const void *base, size_t size)
{
    const char *b = base;
    return s->len == 0 || (s->ptr >= b && s->len <= size && s->ptr - b <= (ptrdiff_t)(size - s->len));
}

/* Every string of ev is borrowed from [base, base + size). */
static inline void fuzz_check_borrowed(const ls_event *ev, const void *base, size_t size)
{
    CHECK(fuzz_str_inside(&ev->customer, base, size));
    CHECK(fuzz_str_inside(&ev->event_id, base, size));
    CHECK(fuzz_str_inside(&ev->session, base, size));
    CHECK(fuzz_str_inside(&ev->product, base, size));
    CHECK(fuzz_str_inside(&ev->category, base, size));
    CHECK(fuzz_str_inside(&ev->order_id, base, size));
}

static inline int fuzz_valid_mmdd(int mmdd)
{
    static const int days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int mm = mmdd / 100, dd = mmdd % 100;
    return mm >= 1 && mm <= 12 && dd >= 1 && dd <= days[mm];
}

/* What event_validate() promises about an event it accepted (event.h and
 * README "Validation at the edge"): everything behind it trusts these. */
static inline void fuzz_check_valid_event(const ls_event *ev, int64_t now_ms, size_t max_str)
{
    size_t lim = max_str < EVENT_MAX_STR ? max_str : EVENT_MAX_STR;

    CHECK((int)ev->type >= 0 && ev->type < EV_TYPE_COUNT);
    CHECK(event_type_name(ev->type) != NULL);
    /* ts: present (filled in when absent) and within 2000-01-01 .. now + 1 day */
    CHECK(ev->has & EVF_TS);
    CHECK(ev->ts_ms >= EVENT_MIN_TS_MS);
    CHECK(ev->ts_ms <= now_ms + EVENT_MAX_FUTURE_MS);
    /* strings: a non-empty customer, everything within max_str */
    CHECK(ev->customer.len >= 1 && ev->customer.ptr != NULL);
    CHECK(ev->customer.len <= lim);
    CHECK(ev->event_id.len <= lim);
    CHECK(ev->session.len <= lim);
    CHECK(ev->product.len <= lim);
    CHECK(ev->category.len <= lim);
    CHECK(ev->order_id.len <= lim);
    /* money: finite and non-negative; an explicit one at most 1e12 */
    CHECK(isfinite(ev->price) && ev->price >= 0);
    CHECK(isfinite(ev->value) && ev->value >= 0);
    if (ev->has & EVF_PRICE)
        CHECK(ev->price <= 1e12);
    if (ev->has & EVF_VALUE)
        CHECK(ev->value <= 1e12);
    else
        CHECK(ev->value == ((ev->has & EVF_PRICE) ? ev->price * (double)ev->quantity : 0.0));
    /* quantity: 1 when absent, else 1 .. 1e6 */
    CHECK(ev->quantity >= 1 && ev->quantity <= 1000000);
    if (!(ev->has & EVF_QUANTITY))
        CHECK(ev->quantity == 1);
    /* rating: 1..5 when set, 0 when not (a review may come without one,
     * as v1 has it) */
    if (ev->has & EVF_RATING)
        CHECK(ev->rating >= 1 && ev->rating <= 5);
    else
        CHECK(ev->rating == 0);
    /* birthday: a real MM-DD when set, 0 when not */
    if (ev->has & EVF_BIRTHDAY)
        CHECK(fuzz_valid_mmdd(ev->birthday_mmdd));
    else
        CHECK(ev->birthday_mmdd == 0);
    CHECK(ev->discounted == 0 || ev->discounted == 1);
}

/* Field-by-field equality (not memcmp: padding bytes are not copied). */
static inline int fuzz_same_event(const ls_event *a, const ls_event *b)
{
#define SAME_STR(f) (a->f.len == b->f.len && a->f.ptr == b->f.ptr)
    return a->type == b->type && a->has == b->has && a->ts_ms == b->ts_ms && SAME_STR(customer) &&
           SAME_STR(event_id) && SAME_STR(session) && SAME_STR(product) && SAME_STR(category) &&
           SAME_STR(order_id) && memcmp(&a->price, &b->price, sizeof a->price) == 0 &&
           a->quantity == b->quantity && memcmp(&a->value, &b->value, sizeof a->value) == 0 &&
           a->discounted == b->discounted && a->rating == b->rating &&
           a->birthday_mmdd == b->birthday_mmdd;
#undef SAME_STR
}

/* Packs o into sb (emptied first); for comparing objects byte for byte,
 * which also works for NaN floats, unlike msgpack_object_equal(). */
static inline void fuzz_pack(msgpack_sbuffer *sb, const msgpack_object *o)
{
    msgpack_packer pk;
    sb->size = 0;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *o);
}

#endif
