/* client.c -- the C client library (include/leadscore/client.h): a DEALER
 * socket that speaks the REQ envelope, stamps every request with an id and
 * drops any late reply whose id is not the one it waits for. */
#include "leadscore/client.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct ls_client {
    void *ctx;
    void *sock;
    int timeout_ms;
    uint64_t next_id;
    msgpack_sbuffer req;
    char error[512];
};

static int local_error(ls_client *c, int status, const char *msg)
{
    snprintf(c->error, sizeof c->error, "%s", msg);
    return status;
}

static int connect_with(ls_client **out, const char *endpoint, int timeout_ms, const char *const keys[3]);

int ls_client_connect(ls_client **out, const char *endpoint, int timeout_ms)
{
    return connect_with(out, endpoint, timeout_ms, NULL);
}

int ls_client_connect_secure(ls_client **out, const char *endpoint, int timeout_ms, const char *server_public,
                             const char *client_public, const char *client_secret)
{
    const char *keys[3] = {server_public, client_public, client_secret};
    for (int i = 0; i < 3; i++)
        if (!keys[i] || strlen(keys[i]) != 40)
            return LS_EINVAL;
    return connect_with(out, endpoint, timeout_ms, keys);
}

/* Sets the CURVE client options (before connect). */
static int set_curve(void *sock, const char *const keys[3])
{
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, keys[0], 40) ||
           zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys[1], 40) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys[2], 40);
}

static int connect_with(ls_client **out, const char *endpoint, int timeout_ms, const char *const keys[3])
{
    int zero = 0;
    ls_client *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return LS_ENOMEM;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->next_id = 1;
    msgpack_sbuffer_init(&c->req);
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &c->timeout_ms, sizeof c->timeout_ms) != 0 ||
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms, sizeof c->timeout_ms) != 0 ||
        (keys && set_curve(c->sock, keys)) || zmq_connect(c->sock, endpoint) != 0) {
        ls_client_close(&c);
        return LS_EINVAL;
    }
    *out = c;
    return LS_OK;
}

void ls_client_close(ls_client **cp)
{
    if (!cp || !*cp)
        return;
    ls_client *c = *cp;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    msgpack_sbuffer_destroy(&c->req);
    free(c);
    *cp = NULL;
}

const char *ls_client_last_error(const ls_client *c)
{
    return c->error;
}

/* ------------------------------------------------------------------ */
/* Requests and replies                                                */
/* ------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int wire_status(const msgpack_object *code)
{
    static const struct { const char *code; int status; } map[] = {
        {"bad_request", LS_EBADREQ}, {"unknown_op", LS_EUNKNOWNOP}, {"too_large", LS_ETOOLARGE},
        {"unauthorized", LS_EUNAUTH}, {"unavailable", LS_EUNAVAIL}, {"internal", LS_EINTERNAL}};
    for (size_t i = 0; code && code->type == MSGPACK_OBJECT_STR && i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].code) == code->via.str.size && memcmp(map[i].code, code->via.str.ptr, code->via.str.size) == 0)
            return map[i].status;
    return LS_EREMOTE;
}

/* Reads the reply's ok / error into a status (and c->error). */
static int reply_status(ls_client *c, const msgpack_object *root)
{
    const msgpack_object *ok = map_get(root, "ok");
    if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN)
        return local_error(c, LS_EREMOTE, "malformed reply: no \"ok\"");
    if (ok->via.boolean)
        return LS_OK;
    const msgpack_object *err = map_get(root, "error");
    const msgpack_object *msg = err ? map_get(err, "message") : NULL;
    if (msg && msg->type == MSGPACK_OBJECT_STR)
        snprintf(c->error, sizeof c->error, "%.*s", (int)msg->via.str.size, msg->via.str.ptr);
    else
        snprintf(c->error, sizeof c->error, "the server answered with an error");
    return wire_status(err ? map_get(err, "code") : NULL);
}

/* Receives until the reply carrying id arrives; returns it in msg. */
static int await_reply(ls_client *c, uint64_t id, zmq_msg_t *msg)
{
    for (;;) {
        zmq_msg_t delim;
        zmq_msg_init(&delim);
        if (zmq_msg_recv(&delim, c->sock, 0) < 0) {
            zmq_msg_close(&delim);
            return local_error(c, LS_ETIMEOUT, "no reply from the server in time (is it running?)");
        }
        int more = zmq_msg_more(&delim);
        zmq_msg_close(&delim);
        if (!more)
            continue;
        zmq_msg_init(msg);
        if (zmq_msg_recv(msg, c->sock, 0) < 0) {
            zmq_msg_close(msg);
            return local_error(c, LS_ETIMEOUT, "no reply from the server in time");
        }
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        int mine = 0;
        if (msgpack_unpack_next(&up, zmq_msg_data(msg), zmq_msg_size(msg), NULL) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *rid = map_get(&up.data, "id");
            mine = !rid || (rid->type == MSGPACK_OBJECT_POSITIVE_INTEGER && rid->via.u64 == id);
        }
        msgpack_unpacked_destroy(&up);
        if (mine)
            return LS_OK;
        zmq_msg_close(msg); /* a late reply to an earlier, timed-out call */
    }
}

/* Sends the request in c->req and waits for its reply. */
static int roundtrip(ls_client *c, uint64_t id, zmq_msg_t *reply)
{
    if (zmq_send(c->sock, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(c->sock, c->req.data, c->req.size, 0) < 0)
        return local_error(c, LS_ETIMEOUT, "cannot send the request to the server");
    return await_reply(c, id, reply);
}

static uint64_t begin_request(ls_client *c, msgpack_packer *pk, const char *op, uint32_t nfields)
{
    uint64_t id = c->next_id++;
    c->req.size = 0;
    msgpack_packer_init(pk, &c->req, msgpack_sbuffer_write);
    msgpack_pack_map(pk, nfields + 2);
    pack_str(pk, "op");
    pack_str(pk, op);
    pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    return id;
}

/* Sends the request begun with id and hands back the whole reply map as
 * msgpack (malloc'd into *reply) with the reply's status. */
static int call_reply(ls_client *c, uint64_t id, void **reply, size_t *reply_len)
{
    zmq_msg_t msg;
    *reply = NULL;
    *reply_len = 0;
    int rc = roundtrip(c, id, &msg);
    if (rc)
        return rc;
    *reply_len = zmq_msg_size(&msg);
    *reply = malloc(*reply_len ? *reply_len : 1);
    if (!*reply) {
        zmq_msg_close(&msg);
        return LS_ENOMEM;
    }
    memcpy(*reply, zmq_msg_data(&msg), *reply_len);
    zmq_msg_close(&msg);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    rc = msgpack_unpack_next(&up, *reply, *reply_len, NULL) == MSGPACK_UNPACK_SUCCESS
             ? reply_status(c, &up.data)
             : local_error(c, LS_EREMOTE, "the reply is not msgpack");
    msgpack_unpacked_destroy(&up);
    return rc;
}

int ls_client_call(ls_client *c, const char *op, const void *fields, size_t fields_len,
                   uint32_t nfields, void **reply, size_t *reply_len)
{
    msgpack_packer pk;
    uint64_t id = begin_request(c, &pk, op, nfields);
    if (fields_len)
        msgpack_sbuffer_write(&c->req, fields, fields_len);
    return call_reply(c, id, reply, reply_len);
}

/* Calls op and hands the parsed reply root to fn. */
static int call_parsed(ls_client *c, uint64_t id, int (*fn)(ls_client *, const msgpack_object *, void *), void *arg)
{
    zmq_msg_t msg;
    int rc = roundtrip(c, id, &msg);
    if (rc)
        return rc;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, zmq_msg_data(&msg), zmq_msg_size(&msg), NULL) != MSGPACK_UNPACK_SUCCESS)
        rc = local_error(c, LS_EREMOTE, "the reply is not msgpack");
    else if ((rc = reply_status(c, &up.data)) == LS_OK && fn)
        rc = fn(c, &up.data, arg);
    msgpack_unpacked_destroy(&up);
    zmq_msg_close(&msg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Typed calls                                                         */
/* ------------------------------------------------------------------ */

static uint32_t event_fields(const ls_client_event *e)
{
    const char *strs[] = {e->customer, e->type, e->event_id, e->session, e->product, e->category, e->order_id, e->birthday};
    uint32_t n = (e->ts_ms != 0) + (uint32_t)__builtin_popcount(e->has & 0x1f);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        n += strs[i] != NULL;
    return n;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    if (v) {
        pack_str(pk, k);
        pack_str(pk, v);
    }
}

static void pack_event(msgpack_packer *pk, const ls_client_event *e)
{
    msgpack_pack_map(pk, event_fields(e));
    pack_kv_str(pk, "customer", e->customer);
    pack_kv_str(pk, "type", e->type);
    pack_kv_str(pk, "event_id", e->event_id);
    pack_kv_str(pk, "session", e->session);
    pack_kv_str(pk, "product", e->product);
    pack_kv_str(pk, "category", e->category);
    pack_kv_str(pk, "order_id", e->order_id);
    pack_kv_str(pk, "birthday", e->birthday);
    if (e->ts_ms) { pack_str(pk, "ts"); msgpack_pack_int64(pk, e->ts_ms); }
    if (e->has & LS_HAS_PRICE) { pack_str(pk, "price"); msgpack_pack_double(pk, e->price); }
    if (e->has & LS_HAS_QUANTITY) { pack_str(pk, "quantity"); msgpack_pack_int64(pk, e->quantity); }
    if (e->has & LS_HAS_VALUE) { pack_str(pk, "value"); msgpack_pack_double(pk, e->value); }
    if (e->has & LS_HAS_DISCOUNTED) { pack_str(pk, "discounted"); e->discounted ? msgpack_pack_true(pk) : msgpack_pack_false(pk); }
    if (e->has & LS_HAS_RATING) { pack_str(pk, "rating"); msgpack_pack_int(pk, e->rating); }
}

static uint32_t get_u32(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (uint32_t)v->via.u64 : 0;
}

static int read_track(ls_client *c, const msgpack_object *root, void *arg)
{
    ls_track_result *out = arg;
    const msgpack_object *rej = map_get(root, "rejected");
    (void)c;
    out->accepted = get_u32(root, "accepted");
    out->duplicates = get_u32(root, "duplicates");
    out->rejected = rej && rej->type == MSGPACK_OBJECT_ARRAY ? rej->via.array.size : 0;
    return LS_OK;
}

int ls_client_track(ls_client *c, const ls_client_event *events, size_t n, ls_track_result *out)
{
    msgpack_packer pk;
    ls_track_result ignored;
    if (n > UINT32_MAX)
        return local_error(c, LS_ETOOLARGE, "too many events");
    uint64_t id = begin_request(c, &pk, "track", 1);
    pack_str(&pk, "events");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++)
        pack_event(&pk, &events[i]);
    return call_parsed(c, id, read_track, out ? out : &ignored);
}

static void copy_str(char *dst, size_t cap, const msgpack_object *v)
{
    dst[0] = '\0';
    if (v && v->type == MSGPACK_OBJECT_STR) {
        size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(dst, v->via.str.ptr, n);
        dst[n] = '\0';
    }
}

static double get_double(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    if (!v)
        return 0.0;
    if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
        return v->via.f64;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)v->via.u64;
    return v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64 : 0.0;
}

static int get_bool(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static int64_t get_i64(const msgpack_object *root, const char *key)
{
    const msgpack_object *v = map_get(root, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return v->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return (int64_t)get_double(root, key);
}

/* A msgpack string's length, 0 for anything else. */
static size_t str_len(const msgpack_object *v)
{
    return v && v->type == MSGPACK_OBJECT_STR ? v->via.str.size : 0;
}

/* Copies a msgpack string (or "" for anything else) to *at, NUL-terminated,
 * and returns it; *at moves past it. */
static char *take_str(char **at, const msgpack_object *v)
{
    char *s = *at;
    size_t n = str_len(v);
    if (n)
        memcpy(s, v->via.str.ptr, n);
    s[n] = '\0';
    *at += n + 1;
    return s;
}

/* actions: one block holding the pointer array and the strings. */
static int read_actions(ls_client *c, const msgpack_object *arr, ls_score *out)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
        return LS_OK;
    size_t n = arr->via.array.size, bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += str_len(&arr->via.array.ptr[i]) + 1;
    char **list = malloc(bytes);
    if (!list)
        return local_error(c, LS_ENOMEM, "out of memory reading the score's actions");
    char *at = (char *)(list + n);
    for (size_t i = 0; i < n; i++)
        list[i] = take_str(&at, &arr->via.array.ptr[i]);
    out->actions = list;
    out->n_actions = n;
    return LS_OK;
}

/* segments: one block holding the ls_segment array and the strings. */
static int read_segments(ls_client *c, const msgpack_object *arr, ls_score *out)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size == 0)
        return LS_OK;
    size_t n = arr->via.array.size, bytes = n * sizeof(ls_segment);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        bytes += str_len(map_get(e, "segment")) + 1 + str_len(map_get(e, "reason")) + 1;
    }
    ls_segment *list = malloc(bytes);
    if (!list)
        return local_error(c, LS_ENOMEM, "out of memory reading the score's segments");
    char *at = (char *)(list + n);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *e = &arr->via.array.ptr[i];
        list[i].segment = take_str(&at, map_get(e, "segment"));
        list[i].weight = get_double(e, "weight");
        list[i].reason = take_str(&at, map_get(e, "reason"));
    }
    out->segments = list;
    out->n_segments = n;
    return LS_OK;
}

static int read_score(ls_client *c, const msgpack_object *root, void *arg)
{
    ls_score *out = arg;
    copy_str(out->customer, sizeof out->customer, map_get(root, "customer"));
    out->known = get_bool(root, "known");
    out->score = get_double(root, "score");
    out->score_100 = (int)get_i64(root, "score_100");
    copy_str(out->tier, sizeof out->tier, map_get(root, "tier"));
    copy_str(out->model, sizeof out->model, map_get(root, "model"));
    out->p_alive = get_double(root, "p_alive");
    out->expected_purchases_30d = get_double(root, "expected_purchases_30d");
    out->clv = get_double(root, "clv");
    copy_str(out->customer_type, sizeof out->customer_type, map_get(root, "customer_type"));
    copy_str(out->phase, sizeof out->phase, map_get(root, "phase"));
    out->loyalty_points = get_i64(root, "loyalty_points");
    copy_str(out->loyalty_tier, sizeof out->loyalty_tier, map_get(root, "loyalty_tier"));
    int rc = read_actions(c, map_get(root, "actions"), out);
    if (rc == LS_OK)
        rc = read_segments(c, map_get(root, "segments"), out);
    if (rc != LS_OK)
        ls_score_free(out);
    return rc;
}

void ls_score_free(ls_score *s)
{
    if (!s)
        return;
    free(s->actions);
    free(s->segments);
    memset(s, 0, sizeof *s);
}

/* Begins a read request {"op", "id", "customer", ["now"], [extra]}:
 * nextra more fields are packed by the caller. */
static uint64_t begin_read(ls_client *c, msgpack_packer *pk, const char *op, const char *customer, int64_t now_ms,
                           uint32_t nextra)
{
    uint64_t id = begin_request(c, pk, op, 1 + (now_ms > 0) + nextra);
    pack_str(pk, "customer");
    pack_str(pk, customer);
    if (now_ms > 0) {
        pack_str(pk, "now");
        msgpack_pack_int64(pk, now_ms);
    }
    return id;
}

int ls_client_score(ls_client *c, const char *customer, ls_score *out)
{
    return ls_client_score_at(c, customer, 0, out);
}

int ls_client_score_at(ls_client *c, const char *customer, int64_t now_ms, ls_score *out)
{
    msgpack_packer pk;
    memset(out, 0, sizeof *out);
    uint64_t id = begin_read(c, &pk, "score", customer, now_ms, 0);
    return call_parsed(c, id, read_score, out);
}

int ls_client_profile(ls_client *c, const char *customer, int64_t now_ms, void **reply, size_t *reply_len)
{
    msgpack_packer pk;
    uint64_t id = begin_read(c, &pk, "profile", customer, now_ms, 0);
    return call_reply(c, id, reply, reply_len);
}

int ls_client_recommend(ls_client *c, const char *customer, int k, int64_t now_ms, void **reply,
                        size_t *reply_len)
{
    msgpack_packer pk;
    uint64_t id = begin_read(c, &pk, "recommend", customer, now_ms, k > 0);
    if (k > 0) {
        pack_str(&pk, "k");
        msgpack_pack_int(&pk, k);
    }
    return call_reply(c, id, reply, reply_len);
}

int ls_client_profile_value(const void *reply, size_t reply_len, const char *name, double *value)
{
    msgpack_unpacked up;
    int rc = LS_EPARSE;
    *value = 0.0;
    msgpack_unpacked_init(&up);
    if (reply && msgpack_unpack_next(&up, reply, reply_len, NULL) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *features = map_get(&up.data, "features");
        const msgpack_object *v = features ? map_get(features, name) : NULL;
        if (!features || features->type != MSGPACK_OBJECT_MAP)
            rc = LS_EPARSE;
        else if (!v || (v->type != MSGPACK_OBJECT_FLOAT64 && v->type != MSGPACK_OBJECT_FLOAT32 &&
                        v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
            rc = LS_ENOTFOUND;
        else {
            *value = get_double(features, name);
            rc = LS_OK;
        }
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

typedef struct {
    char *buf;
    size_t cap;
} version_out;

static int read_version(ls_client *c, const msgpack_object *root, void *arg)
{
    version_out *v = arg;
    (void)c;
    if (v->buf && v->cap)
        copy_str(v->buf, v->cap, map_get(root, "version"));
    return LS_OK;
}

int ls_client_ping(ls_client *c, char *version, size_t cap)
{
    msgpack_packer pk;
    version_out v = {version, cap};
    uint64_t id = begin_request(c, &pk, "ping", 0);
    return call_parsed(c, id, read_version, &v);
}
