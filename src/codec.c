/* codec.c -- msgpack request parsing, event decoding and reply writing
 * (see codec.h for the two-step parse and the patched-count writer). */
#include "codec.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

/* ------------------------------------------------------------------ */
/* Pre-scan: sizes and depth, before any allocation                    */
/* ------------------------------------------------------------------ */

static uint64_t be_uint(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* For the header byte b at p (with `left` bytes after b), sets *payload to
 * the bytes that follow the header and *children to the number of child
 * values (2 per map entry).  Returns the header's extra length, or -1 for
 * 0xc1 (never used) or a header cut short. */
static int describe(unsigned char b, const unsigned char *p, size_t left, uint64_t *payload,
                    uint64_t *children)
{
    static const signed char fixed_payload[32] = {
        /* c0 nil */ 0, -1, 0, 0, /* c4 bin8 */ -2, -2, -2, /* c7 ext8 */ -3, -3, -3,
        /* ca f32 */ 4, 8, /* cc u8 */ 1, 2, 4, 8, /* d0 i8 */ 1, 2, 4, 8,
        /* d4 fixext */ 2, 3, 5, 9, 17, /* d9 str8 */ -2, -2, -2, /* dc arr16 */ -4, -4, -5, -5};
    static const int len_bytes[32] = {[4] = 1, [5] = 2, [6] = 4, [7] = 1, [8] = 2, [9] = 4,
                                      [25] = 1, [26] = 2, [27] = 4, [28] = 2, [29] = 4,
                                      [30] = 2, [31] = 4};
    *payload = 0;
    *children = 0;
    if (b <= 0x7f || b >= 0xe0)
        return 0;
    if (b <= 0x8f) { *children = 2u * (b & 0x0f); return 0; }
    if (b <= 0x9f) { *children = b & 0x0f; return 0; }
    if (b <= 0xbf) { *payload = b & 0x1f; return 0; }
    int idx = b - 0xc0, kind = fixed_payload[idx];
    if (kind == -1)
        return -1;
    if (kind >= 0) {
        *payload = (uint64_t)kind;
        return 0;
    }
    int n = len_bytes[idx];
    if (left < (size_t)n)
        return -1;
    uint64_t v = be_uint(p, n);
    if (kind == -2) *payload = v;
    else if (kind == -3) *payload = v + 1; /* ext: type byte + data */
    else if (kind == -4) *children = v;
    else *children = 2 * v;
    return n;
}

int codec_prescan(const char *buf, size_t len, int max_depth, const char **why)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t pending[CODEC_MAX_DEPTH + 2];
    int depth = 0;
    size_t pos = 0;
    if (max_depth > CODEC_MAX_DEPTH)
        max_depth = CODEC_MAX_DEPTH;
    pending[0] = 1;
    for (;;) {
        if (pending[depth] == 0) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        pending[depth]--;
        if (pos >= len) {
            *why = "not msgpack: the frame ends inside a value";
            return LS_EBADREQ;
        }
        uint64_t payload, children;
        unsigned char b = p[pos++];
        int hdr = describe(b, p + pos, len - pos, &payload, &children);
        if (hdr < 0) {
            *why = "not msgpack: invalid or truncated header byte";
            return LS_EBADREQ;
        }
        pos += (size_t)hdr;
        if (payload > len - pos || children > len - pos) {
            *why = "not msgpack: a value declares more bytes than the frame holds";
            return LS_EBADREQ;
        }
        pos += (size_t)payload;
        if (children) {
            if (depth + 1 > max_depth) {
                *why = "request nests containers too deeply";
                return LS_EBADREQ;
            }
            pending[++depth] = children;
        }
    }
    if (pos != len) {
        *why = "not msgpack: trailing bytes after the request map";
        return LS_EBADREQ;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Requests and typed fields                                           */
/* ------------------------------------------------------------------ */

static int key_is(const msgpack_object *k, const char *key)
{
    size_t n = strlen(key);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0;
}

const msgpack_object *codec_map_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (key_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

const msgpack_object *codec_unknown_key(const msgpack_object *map, const char *const *allowed)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = key_is(k, *a);
        if (!ok)
            return k;
    }
    return NULL;
}

int codec_parse_request(const char *buf, size_t len, msgpack_zone *zone, codec_request *req,
                        const char **why)
{
    size_t off = 0;
    memset(req, 0, sizeof *req);
    int rc = codec_prescan(buf, len, CODEC_MAX_DEPTH, why);
    if (rc)
        return rc;
    if (msgpack_unpack(buf, len, &off, zone, &req->root) != MSGPACK_UNPACK_SUCCESS || off != len) {
        *why = "not msgpack";
        return LS_EBADREQ;
    }
    if (req->root.type != MSGPACK_OBJECT_MAP) {
        *why = "the request must be a msgpack map";
        return LS_EBADREQ;
    }
    req->id = codec_map_get(&req->root, "id"); /* first, so every error can echo it */
    for (uint32_t i = 0; i < req->root.via.map.size; i++) {
        if (req->root.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
            *why = "request map keys must be strings";
            return LS_EBADREQ;
        }
    }
    rc = codec_get_str(&req->root, "op", &req->op);
    if (rc) {
        *why = rc == LS_ENOTFOUND ? "missing \"op\"" : "\"op\" must be a string";
        return LS_EBADREQ;
    }
    return LS_OK;
}

int codec_get_str(const msgpack_object *map, const char *key, ls_str *out)
{
    const msgpack_object *v = codec_map_get(map, key);
    if (!v)
        return LS_ENOTFOUND;
    if (v->type != MSGPACK_OBJECT_STR)
        return LS_EBADREQ;
    out->ptr = v->via.str.ptr;
    out->len = v->via.str.size;
    return LS_OK;
}

static int obj_int(const msgpack_object *v, int64_t *out)
{
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v->via.u64 > (uint64_t)INT64_MAX)
            return LS_EBADREQ;
        *out = (int64_t)v->via.u64;
        return LS_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = v->via.i64;
        return LS_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* an integral float (JavaScript clients send those) is accepted */
        if (!isfinite(v->via.f64) || v->via.f64 != floor(v->via.f64) || fabs(v->via.f64) > 9.0e15)
            return LS_EBADREQ;
        *out = (int64_t)v->via.f64;
        return LS_OK;
    default:
        return LS_EBADREQ;
    }
}

static int obj_double(const msgpack_object *v, double *out)
{
    switch (v->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)v->via.u64; return LS_OK;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)v->via.i64; return LS_OK;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = v->via.f64; return LS_OK;
    default: return LS_EBADREQ;
    }
}

int codec_get_int(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *v = codec_map_get(map, key);
    return v ? obj_int(v, out) : LS_ENOTFOUND;
}

int codec_get_bool(const msgpack_object *map, const char *key, int *out)
{
    const msgpack_object *v = codec_map_get(map, key);
    if (!v)
        return LS_ENOTFOUND;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return LS_EBADREQ;
    *out = v->via.boolean;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Events                                                              */
/* ------------------------------------------------------------------ */

enum { K_STR, K_TYPE, K_TS, K_NUM, K_INT, K_BOOL, K_BIRTHDAY };

static const struct {
    const char *name;
    int kind;
    size_t off;
    unsigned flag;
    const char *want;
} event_fields[] = {
    {"customer", K_STR, offsetof(ls_event, customer), 0, "a string"},
    {"type", K_TYPE, 0, 0, "a string naming a known event type"},
    {"ts", K_TS, offsetof(ls_event, ts_ms), EVF_TS, "an integer (Unix epoch milliseconds)"},
    {"event_id", K_STR, offsetof(ls_event, event_id), 0, "a string"},
    {"session", K_STR, offsetof(ls_event, session), 0, "a string"},
    {"product", K_STR, offsetof(ls_event, product), 0, "a string"},
    {"category", K_STR, offsetof(ls_event, category), 0, "a string"},
    {"order_id", K_STR, offsetof(ls_event, order_id), 0, "a string"},
    {"price", K_NUM, offsetof(ls_event, price), EVF_PRICE, "a number"},
    {"value", K_NUM, offsetof(ls_event, value), EVF_VALUE, "a number"},
    {"quantity", K_INT, offsetof(ls_event, quantity), EVF_QUANTITY, "an integer"},
    {"discounted", K_BOOL, offsetof(ls_event, discounted), EVF_DISCOUNTED, "a boolean"},
    {"rating", K_INT, offsetof(ls_event, rating), EVF_RATING, "an integer from 1 to 5"},
    {"birthday", K_BIRTHDAY, offsetof(ls_event, birthday_mmdd), EVF_BIRTHDAY, "a string MM-DD"},
};
#define N_EVENT_FIELDS (sizeof event_fields / sizeof event_fields[0])

static int decode_field(ls_event *ev, size_t f, const msgpack_object *v)
{
    char *base = (char *)ev + event_fields[f].off;
    int64_t i;
    switch (event_fields[f].kind) {
    case K_STR:
        if (v->type != MSGPACK_OBJECT_STR)
            return LS_EBADREQ;
        ((ls_str *)base)->ptr = v->via.str.ptr;
        ((ls_str *)base)->len = v->via.str.size;
        return LS_OK;
    case K_TYPE:
        if (v->type != MSGPACK_OBJECT_STR)
            return LS_EBADREQ;
        return event_type_parse(v->via.str.ptr, v->via.str.size, &ev->type);
    case K_TS:
        return obj_int(v, (int64_t *)base);
    case K_NUM:
        return obj_double(v, (double *)base);
    case K_INT:
        if (obj_int(v, &i))
            return LS_EBADREQ;
        if (event_fields[f].off == offsetof(ls_event, rating))
            ev->rating = (i >= 1 && i <= 5) ? (int)i : 0;
        else
            ev->quantity = i;
        return (event_fields[f].off == offsetof(ls_event, rating) && ev->rating == 0) ? LS_EBADREQ : LS_OK;
    case K_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return LS_EBADREQ;
        ev->discounted = v->via.boolean;
        return LS_OK;
    case K_BIRTHDAY:
        if (v->type != MSGPACK_OBJECT_STR)
            return LS_EBADREQ;
        return event_parse_birthday(v->via.str.ptr, v->via.str.size, &ev->birthday_mmdd);
    }
    return LS_EBADREQ;
}

static int find_event_field(const msgpack_object *k)
{
    for (size_t f = 0; f < N_EVENT_FIELDS; f++)
        if (key_is(k, event_fields[f].name))
            return (int)f;
    return -1;
}

static void quote_key(char *out, size_t cap, const msgpack_object *k)
{
    if (k->type != MSGPACK_OBJECT_STR) {
        snprintf(out, cap, "(not a string)");
        return;
    }
    int n = k->via.str.size > 64 ? 64 : (int)k->via.str.size;
    snprintf(out, cap, "%.*s", n, k->via.str.ptr);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
}

int codec_decode_event(const msgpack_object *obj, ls_event *ev, char *why, size_t cap)
{
    uint32_t seen = 0;
    char name[80];
    event_init(ev);
    if (obj->type != MSGPACK_OBJECT_MAP) {
        snprintf(why, cap, "an event must be a msgpack map");
        return LS_EBADREQ;
    }
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *k = &obj->via.map.ptr[i].key;
        int f = find_event_field(k);
        quote_key(name, sizeof name, k);
        if (f < 0) {
            snprintf(why, cap, "unknown event field \"%s\"", name);
            return LS_EBADREQ;
        }
        if (seen & (1u << f)) {
            snprintf(why, cap, "event field \"%s\" appears twice", name);
            return LS_EBADREQ;
        }
        seen |= 1u << f;
        if (decode_field(ev, (size_t)f, &obj->via.map.ptr[i].val) != LS_OK) {
            snprintf(why, cap, "event field \"%s\" must be %s", name, event_fields[f].want);
            return LS_EBADREQ;
        }
        ev->has |= event_fields[f].flag;
    }
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Reply writer                                                        */
/* ------------------------------------------------------------------ */

void codec_writer_init(codec_writer *w)
{
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    w->depth = 0;
    w->oom = 0;
}

void codec_writer_destroy(codec_writer *w)
{
    msgpack_sbuffer_destroy(&w->sb);
    w->sb.data = NULL;
}

void codec_writer_reset(codec_writer *w)
{
    w->sb.size = 0;
    w->depth = 0;
    w->oom = 0;
}

/* Doubles the buffer (from MSGPACK_SBUFFER_INIT_SIZE, as sbuffer does)
 * until n more bytes fit.  0, or -1 with oom set. */
static int grow(codec_writer *w, size_t n)
{
    size_t need = w->sb.size + n, cap = w->sb.alloc ? w->sb.alloc : MSGPACK_SBUFFER_INIT_SIZE;
    if (w->oom || need < n)
        return w->oom = 1, -1;
    while (cap < need) {
        if (cap * 2 <= cap) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(w->sb.data, cap);
    if (!p)
        return w->oom = 1, -1;
    w->sb.data = p;
    w->sb.alloc = cap;
    return 0;
}

int codec_writer_reserve(codec_writer *w, size_t n)
{
    return w->sb.alloc - w->sb.size >= n ? 0 : grow(w, n);
}

/* Where the next n bytes go (the caller then calls done(w, used)), or
 * NULL when the buffer cannot grow. */
static inline unsigned char *room(codec_writer *w, size_t n)
{
    if (__builtin_expect(w->oom || w->sb.alloc - w->sb.size < n, 0) && grow(w, n) != 0)
        return NULL;
    return (unsigned char *)w->sb.data + w->sb.size;
}

static inline void done(codec_writer *w, size_t used) { w->sb.size += used; }

static inline void store_be16(unsigned char *p, uint16_t v) { v = __builtin_bswap16(v); memcpy(p, &v, 2); }
static inline void store_be32(unsigned char *p, uint32_t v) { v = __builtin_bswap32(v); memcpy(p, &v, 4); }
static inline void store_be64(unsigned char *p, uint64_t v) { v = __builtin_bswap64(v); memcpy(p, &v, 8); }

static inline void counted(codec_writer *w)
{
    if (w->depth > 0 && !w->stack[w->depth - 1].is_map)
        w->stack[w->depth - 1].count++;
}

static void open_container(codec_writer *w, int is_map)
{
    counted(w);
    if (w->depth >= CODEC_MAX_DEPTH)
        return; /* a programming error; the reply will be short but valid */
    unsigned char *p = room(w, 5);
    w->stack[w->depth++] = (codec_frame){w->sb.size, 0, is_map};
    if (!p)
        return;
    /* map16 / array32 with a zero count, patched by cw_end */
    memset(p, 0, 5);
    p[0] = is_map ? 0xde : 0xdd;
    done(w, is_map ? 3 : 5);
}

void cw_map(codec_writer *w) { open_container(w, 1); }
void cw_array(codec_writer *w) { open_container(w, 0); }

void cw_end(codec_writer *w)
{
    if (w->depth == 0)
        return;
    codec_frame *fr = &w->stack[--w->depth];
    if (w->oom && fr->offset + (fr->is_map ? 3 : 5) > w->sb.size)
        return; /* its header was dropped */
    unsigned char *p = (unsigned char *)w->sb.data + fr->offset + 1;
    if (fr->is_map)
        store_be16(p, (uint16_t)fr->count);
    else
        store_be32(p, fr->count);
}

/* A str header (msgpack_pack_str's choice of fixstr / str8 / str16 /
 * str32) and the bytes. */
static inline void put_str(codec_writer *w, const char *s, size_t len)
{
    unsigned char *p = room(w, len + 5);
    size_t h;
    if (!p)
        return;
    if (len < 32) {
        p[0] = (unsigned char)(0xa0 | len);
        h = 1;
    } else if (len < 256) {
        p[0] = 0xd9;
        p[1] = (unsigned char)len;
        h = 2;
    } else if (len < 65536) {
        p[0] = 0xda;
        store_be16(p + 1, (uint16_t)len);
        h = 3;
    } else {
        p[0] = 0xdb;
        store_be32(p + 1, (uint32_t)len);
        h = 5;
    }
    memcpy(p + h, s, len);
    done(w, h + len);
}

void cw_keyn(codec_writer *w, const char *key, size_t len)
{
    if (w->depth > 0)
        w->stack[w->depth - 1].count++;
    put_str(w, key, len);
}

void cw_key(codec_writer *w, const char *key) { cw_keyn(w, key, strlen(key)); }

void cw_strn(codec_writer *w, const char *s, size_t len)
{
    counted(w);
    put_str(w, s, len);
}

void cw_str(codec_writer *w, const char *s) { cw_strn(w, s, strlen(s)); }

/* msgpack_pack_int64's encoding: the smallest of fixint, int8..int64 for
 * negatives and fixint, uint8..uint64 for the rest. */
void cw_int(codec_writer *w, int64_t v)
{
    unsigned char *p = room(w, 9);
    size_t n;
    counted(w);
    if (!p)
        return;
    if (v < -(1LL << 5)) {
        if (v < -(1LL << 31)) {
            p[0] = 0xd3; store_be64(p + 1, (uint64_t)v); n = 9;
        } else if (v < -(1LL << 15)) {
            p[0] = 0xd2; store_be32(p + 1, (uint32_t)(int32_t)v); n = 5;
        } else if (v < -(1LL << 7)) {
            p[0] = 0xd1; store_be16(p + 1, (uint16_t)(int16_t)v); n = 3;
        } else {
            p[0] = 0xd0; p[1] = (unsigned char)v; n = 2;
        }
    } else if (v < (1LL << 7)) {
        p[0] = (unsigned char)v; n = 1;
    } else if (v < (1LL << 8)) {
        p[0] = 0xcc; p[1] = (unsigned char)v; n = 2;
    } else if (v < (1LL << 16)) {
        p[0] = 0xcd; store_be16(p + 1, (uint16_t)v); n = 3;
    } else if (v < (1LL << 32)) {
        p[0] = 0xce; store_be32(p + 1, (uint32_t)v); n = 5;
    } else {
        p[0] = 0xcf; store_be64(p + 1, (uint64_t)v); n = 9;
    }
    done(w, n);
}

/* float64, always (msgpack_pack_double). */
void cw_double(codec_writer *w, double v)
{
    unsigned char *p = room(w, 9);
    uint64_t bits;
    counted(w);
    if (!p)
        return;
    memcpy(&bits, &v, 8);
    p[0] = 0xcb;
    store_be64(p + 1, bits);
    done(w, 9);
}

static inline void put_byte(codec_writer *w, unsigned char b)
{
    unsigned char *p = room(w, 1);
    counted(w);
    if (!p)
        return;
    p[0] = b;
    done(w, 1);
}

void cw_nil(codec_writer *w) { put_byte(w, 0xc0); }
void cw_bool(codec_writer *w, int v) { put_byte(w, v ? 0xc3 : 0xc2); }

void cw_object(codec_writer *w, const msgpack_object *o)
{
    counted(w);
    if (!w->oom)
        msgpack_pack_object(&w->pk, *o);
}

void cw_raw(codec_writer *w, const void *bytes, size_t len, uint32_t nvalues)
{
    if (w->depth > 0 && !w->stack[w->depth - 1].is_map)
        w->stack[w->depth - 1].count += nvalues;
    unsigned char *p = room(w, len);
    if (!p || len == 0)
        return;
    memcpy(p, bytes, len);
    done(w, len);
}

void codec_error_reply(codec_writer *w, const msgpack_object *id, int status, const char *message)
{
    codec_writer_reset(w);
    cw_map(w);
    cw_key(w, "ok");
    cw_bool(w, 0);
    if (id) {
        cw_key(w, "id");
        cw_object(w, id);
    }
    cw_key(w, "error");
    cw_map(w);
    cw_key(w, "code");
    cw_str(w, ls_wire_code(status));
    cw_key(w, "message");
    cw_str(w, message ? message : ls_strerror(status));
    cw_end(w);
    cw_end(w);
}
