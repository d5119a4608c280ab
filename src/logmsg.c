/* logmsg.c -- the log stream's message format (logmsg.h). */
#include "logmsg.h"

#include <stdio.h>
#include <string.h>

#include "leadscore/error.h"

/* Every message's map starts with v, rcv and gw (w reset first). */
static void begin_message(codec_writer *w, int64_t rcv_ms, const char *gateway)
{
    codec_writer_reset(w);
    cw_map(w);
    cw_key(w, "v");
    cw_int(w, LOGMSG_VERSION);
    cw_key(w, "rcv");
    cw_int(w, rcv_ms);
    cw_key(w, "gw");
    cw_str(w, gateway);
}

void logmsg_begin(codec_writer *w, int64_t rcv_ms, const char *gateway)
{
    begin_message(w, rcv_ms, gateway);
    cw_key(w, "ev");
    cw_array(w);
}

static void kv_strn(codec_writer *w, const char *k, const ls_str *s)
{
    if (!s->len)
        return;
    cw_key(w, k);
    cw_strn(w, s->ptr, s->len);
}

void logmsg_add(codec_writer *w, const ls_event *ev)
{
    char bday[8];
    cw_map(w);
    cw_key(w, "customer");
    cw_strn(w, ev->customer.ptr, ev->customer.len);
    cw_key(w, "type");
    cw_str(w, event_type_name(ev->type));
    cw_key(w, "ts");
    cw_int(w, ev->ts_ms);
    kv_strn(w, "event_id", &ev->event_id);
    kv_strn(w, "session", &ev->session);
    kv_strn(w, "product", &ev->product);
    kv_strn(w, "category", &ev->category);
    kv_strn(w, "order_id", &ev->order_id);
    if (ev->has & EVF_PRICE) {
        cw_key(w, "price");
        cw_double(w, ev->price);
    }
    if (ev->has & EVF_VALUE) {
        cw_key(w, "value");
        cw_double(w, ev->value);
    }
    if (ev->has & EVF_QUANTITY) {
        cw_key(w, "quantity");
        cw_int(w, ev->quantity);
    }
    if (ev->has & EVF_DISCOUNTED) {
        cw_key(w, "discounted");
        cw_bool(w, ev->discounted);
    }
    if (ev->has & EVF_RATING) {
        cw_key(w, "rating");
        cw_int(w, ev->rating);
    }
    if (ev->has & EVF_BIRTHDAY) {
        snprintf(bday, sizeof bday, "%02d-%02d", ev->birthday_mmdd / 100 % 100, ev->birthday_mmdd % 100);
        cw_key(w, "birthday");
        cw_str(w, bday);
    }
    cw_end(w);
}

void logmsg_finish(codec_writer *w)
{
    cw_end(w); /* ev */
    cw_end(w); /* the message */
}

void logmsg_forget(codec_writer *w, int64_t rcv_ms, const char *gateway, const ls_str *customer)
{
    begin_message(w, rcv_ms, gateway);
    cw_key(w, "forget");
    cw_strn(w, customer->ptr, customer->len);
    cw_end(w);
}

int logmsg_decode(const char *buf, size_t len, msgpack_zone *zone, logmsg *out, char *why, size_t why_cap)
{
    msgpack_object root;
    size_t off = 0;
    int64_t v;
    const char *bad;
    memset(out, 0, sizeof *out);
    if (codec_prescan(buf, len, CODEC_MAX_DEPTH, &bad) != LS_OK ||
        msgpack_unpack(buf, len, &off, zone, &root) != MSGPACK_UNPACK_SUCCESS || off != len ||
        root.type != MSGPACK_OBJECT_MAP) {
        snprintf(why, why_cap, "not a msgpack map");
        return LS_EPARSE;
    }
    const msgpack_object *ev = codec_map_get(&root, "ev"), *forget = codec_map_get(&root, "forget");
    if (codec_get_int(&root, "v", &v) != LS_OK || v != LOGMSG_VERSION ||
        codec_get_int(&root, "rcv", &out->rcv_ms) != LS_OK || codec_get_str(&root, "gw", &out->gateway) != LS_OK ||
        !!ev == !!forget || (ev && ev->type != MSGPACK_OBJECT_ARRAY) ||
        (forget && (forget->type != MSGPACK_OBJECT_STR || forget->via.str.size == 0 ||
                    forget->via.str.size > EVENT_MAX_STR))) {
        snprintf(why, why_cap, "not a version-%d log message", LOGMSG_VERSION);
        return LS_EPARSE;
    }
    if (forget) {
        out->forget = (ls_str){forget->via.str.ptr, forget->via.str.size};
        return LS_OK;
    }
    size_t n = ev->via.array.size;
    out->events = n ? msgpack_zone_malloc(zone, n * sizeof *out->events) : NULL;
    if (n && !out->events) {
        snprintf(why, why_cap, "out of memory");
        return LS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ls_event *e = &out->events[out->nevents];
        char ewhy[160];
        const char *vwhy;
        if (codec_decode_event(&ev->via.array.ptr[i], e, ewhy, sizeof ewhy) != LS_OK ||
            event_validate(e, out->rcv_ms, EVENT_MAX_STR, &vwhy) != LS_OK) {
            out->invalid++;
            continue;
        }
        out->nevents++;
    }
    return LS_OK;
}
