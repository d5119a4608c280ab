/* event.c -- event type names and the validation every event passes once,
 * at the edge, before it reaches the writer (see event.h). */
#include "event.h"

#include <math.h>
#include <string.h>

#include "leadscore/error.h"

static const char *const type_names[EV_TYPE_COUNT] = {
#define EVENT_TYPE_NAME(sym, name) name,
    EVENT_TYPE_MAP(EVENT_TYPE_NAME)
#undef EVENT_TYPE_NAME
};

const char *event_type_name(event_type type)
{
    if ((int)type < 0 || type >= EV_TYPE_COUNT)
        return NULL;
    return type_names[type];
}

int event_type_parse(const char *name, size_t len, event_type *out)
{
    for (int i = 0; i < EV_TYPE_COUNT; i++) {
        if (strlen(type_names[i]) == len && memcmp(type_names[i], name, len) == 0) {
            *out = (event_type)i;
            return LS_OK;
        }
    }
    return LS_EBADREQ;
}

void event_init(ls_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = EV_TYPE_COUNT;
    ev->quantity = 1;
}

int event_parse_birthday(const char *s, size_t len, int *out_mmdd)
{
    static const int days_in_month[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 5 || s[2] != '-')
        return LS_EBADREQ;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return LS_EBADREQ;
    int mm = (s[0] - '0') * 10 + (s[1] - '0');
    int dd = (s[3] - '0') * 10 + (s[4] - '0');
    if (mm < 1 || mm > 12 || dd < 1 || dd > days_in_month[mm])
        return LS_EBADREQ;
    *out_mmdd = mm * 100 + dd;
    return LS_OK;
}

static int check_str(const ls_str *s, size_t max, const char **why, const char *what)
{
    if (s->len > max) {
        *why = what;
        return LS_ETOOLARGE;
    }
    return LS_OK;
}

static int check_strings(const ls_event *ev, size_t max, const char **why)
{
    int rc;
    if ((rc = check_str(&ev->customer, max, why, "customer is longer than the string limit (max-string)")) ||
        (rc = check_str(&ev->event_id, max, why, "event_id is longer than the string limit (max-string)")) ||
        (rc = check_str(&ev->session, max, why, "session is longer than the string limit (max-string)")) ||
        (rc = check_str(&ev->product, max, why, "product is longer than the string limit (max-string)")) ||
        (rc = check_str(&ev->category, max, why, "category is longer than the string limit (max-string)")) ||
        (rc = check_str(&ev->order_id, max, why, "order_id is longer than the string limit (max-string)")))
        return rc;
    if (ev->customer.len == 0) {
        *why = "customer is required and must be a non-empty string";
        return LS_EBADREQ;
    }
    return LS_OK;
}

static int check_numbers(const ls_event *ev, const char **why)
{
    if ((ev->has & EVF_PRICE) && (!isfinite(ev->price) || ev->price < 0 || ev->price > 1e12)) {
        *why = "price must be a finite number between 0 and 1e12";
        return LS_EBADREQ;
    }
    if ((ev->has & EVF_VALUE) && (!isfinite(ev->value) || ev->value < 0 || ev->value > 1e12)) {
        *why = "value must be a finite number between 0 and 1e12";
        return LS_EBADREQ;
    }
    if ((ev->has & EVF_QUANTITY) && (ev->quantity < 1 || ev->quantity > 1000000)) {
        *why = "quantity must be an integer between 1 and 1000000";
        return LS_EBADREQ;
    }
    /* a review may come without stars (v1: rating is optional) */
    if ((ev->has & EVF_RATING) && (ev->rating < 1 || ev->rating > 5)) {
        *why = "rating must be an integer from 1 to 5";
        return LS_EBADREQ;
    }
    return LS_OK;
}

static int check_time(const ls_event *ev, int64_t now_ms, const char **why)
{
    if (ev->ts_ms < EVENT_MIN_TS_MS) {
        *why = "ts is before 2000-01-01 (ts is Unix epoch milliseconds)";
        return LS_EBADREQ;
    }
    if (ev->ts_ms > now_ms + EVENT_MAX_FUTURE_MS) {
        *why = "ts is more than one day in the future (ts is Unix epoch milliseconds)";
        return LS_EBADREQ;
    }
    return LS_OK;
}

int event_validate(ls_event *ev, int64_t now_ms, size_t max_str, const char **why)
{
    int rc;
    if (ev->type >= EV_TYPE_COUNT) {
        *why = "type is required and must be a known event type";
        return LS_EBADREQ;
    }
    if (max_str > EVENT_MAX_STR)
        max_str = EVENT_MAX_STR;
    if ((rc = check_strings(ev, max_str, why)) || (rc = check_numbers(ev, why)))
        return rc;
    if (!(ev->has & EVF_TS)) {
        ev->ts_ms = now_ms;
        ev->has |= EVF_TS;
    }
    if ((rc = check_time(ev, now_ms, why)))
        return rc;
    if (!(ev->has & EVF_VALUE))
        ev->value = (ev->has & EVF_PRICE) ? ev->price * (double)ev->quantity : 0.0;
    if (ev->value > 1e12) { /* the same cap as an explicit value */
        *why = "price x quantity must not exceed 1e12";
        return LS_EBADREQ;
    }
    return LS_OK;
}
