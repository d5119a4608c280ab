/* fuzz_request.c -- libFuzzer harness for a whole request frame: bytes ->
 * codec_parse_request -> (the fields every op reads, every event of an
 * "events" array) -> the reply the server would write.
 *
 * This is the path each frame from a client takes through the server loop
 * and a worker (server.c, ops.c sort_events), without the sockets and the
 * store.  Properties, besides "never crashes, leaks or reads out of bounds":
 *  - a refused frame gets a reason, and an error reply (codec_error_reply)
 *    that is one well-formed msgpack map {ok: false, id, error: {code,
 *    message}} echoing the request's id byte for byte when it had one;
 *  - a parsed request has a root map with string keys and a string op;
 *  - each event of "events" either decodes and validates (and then meets
 *    fuzz_check_valid_event) or is rejected with a reason, and the track
 *    reply built as ops.c builds it (rejected list in a scratch writer,
 *    spliced in with cw_raw) is well-formed with the right counts. */
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "event.h"
#include "fuzz_check.h"
#include "leadscore/error.h"

/* The request keys of every op (ops.c's table), for codec_unknown_key(). */
static const char *const known_keys[] = {"op", "id", "events", "customer", "customers", "explain",
                                         "now", "k", "path", "from", "to", NULL};

/* Checks that w holds one complete msgpack map and unpacks it into *out
 * (objects live in zone). */
static void unpack_reply(const codec_writer *w, msgpack_zone *zone, msgpack_object *out)
{
    const char *why = NULL;
    size_t off = 0;
    CHECK(w->depth == 0);
    CHECK(w->sb.size > 0);
    CHECK(codec_prescan(w->sb.data, w->sb.size, CODEC_MAX_DEPTH, &why) == LS_OK);
    CHECK(msgpack_unpack(w->sb.data, w->sb.size, &off, zone, out) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == w->sb.size);
    CHECK(out->type == MSGPACK_OBJECT_MAP);
}

static int str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && memcmp(o->via.str.ptr, s, n) == 0;
}

/* The reply echoes the request's id exactly (same bytes), or has none. */
static void check_id_echo(const msgpack_object *reply, const msgpack_object *id)
{
    const msgpack_object *got = codec_map_get(reply, "id");
    if (!id) {
        CHECK(got == NULL);
        return;
    }
    CHECK(got != NULL);
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    fuzz_pack(&a, id);
    fuzz_pack(&b, got);
    CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

/* Writes the error reply for (id, status, message) and checks its shape. */
static void check_error_reply(codec_writer *w, const msgpack_object *id, int status, const char *message)
{
    msgpack_zone zone;
    msgpack_object reply;
    CHECK(msgpack_zone_init(&zone, 1024));
    codec_error_reply(w, id, status, message);
    unpack_reply(w, &zone, &reply);
    const msgpack_object *ok = codec_map_get(&reply, "ok");
    CHECK(ok && ok->type == MSGPACK_OBJECT_BOOLEAN && !ok->via.boolean);
    check_id_echo(&reply, id);
    const msgpack_object *err = codec_map_get(&reply, "error");
    CHECK(err && err->type == MSGPACK_OBJECT_MAP && err->via.map.size == 2);
    CHECK(str_eq(codec_map_get(err, "code"), ls_wire_code(status)));
    CHECK(str_eq(codec_map_get(err, "message"), message ? message : ls_strerror(status)));
    CHECK(reply.via.map.size == (id ? 3u : 2u));
    msgpack_zone_destroy(&zone);
}

/* Every op reads some of these; none may misbehave whatever the value. */
static void read_fields(const codec_request *req)
{
    static const char *const str_keys[] = {"customer", "path", "from", "to"};
    static const char *const int_keys[] = {"now", "k", "from", "to"};
    ls_str s;
    int64_t i;
    int b;
    for (size_t k = 0; k < sizeof str_keys / sizeof str_keys[0]; k++) {
        int rc = codec_get_str(&req->root, str_keys[k], &s);
        CHECK(rc == LS_OK || rc == LS_ENOTFOUND || rc == LS_EBADREQ);
        if (rc == LS_OK)
            CHECK(codec_map_get(&req->root, str_keys[k])->type == MSGPACK_OBJECT_STR);
    }
    for (size_t k = 0; k < sizeof int_keys / sizeof int_keys[0]; k++) {
        int rc = codec_get_int(&req->root, int_keys[k], &i);
        CHECK(rc == LS_OK || rc == LS_ENOTFOUND || rc == LS_EBADREQ);
    }
    int rc = codec_get_bool(&req->root, "explain", &b);
    CHECK(rc == LS_ENOTFOUND || rc == LS_EBADREQ || (rc == LS_OK && (b == 0 || b == 1)));

    const msgpack_object *bad = codec_unknown_key(&req->root, known_keys);
    if (bad)
        CHECK(bad->type == MSGPACK_OBJECT_STR);
}

/* ops.c sort_events() + op_track()'s reply, with the default limits. */
static void track(const codec_request *req, codec_writer *w, codec_writer *scratch, const uint8_t *data,
                  size_t size)
{
    const msgpack_object *arr = codec_map_get(&req->root, "events");
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return;
    uint32_t nvalid = 0, nrej = 0;
    codec_writer_reset(scratch);
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        char why[160];
        const char *reason = why;
        ls_event ev;
        int rc = codec_decode_event(&arr->via.array.ptr[i], &ev, why, sizeof why);
        if (rc == LS_OK) {
            fuzz_check_borrowed(&ev, data, size);
            rc = event_validate(&ev, FUZZ_NOW_MS, EVENT_MAX_STR, &reason);
        }
        if (rc == LS_OK) {
            fuzz_check_valid_event(&ev, FUZZ_NOW_MS, EVENT_MAX_STR);
            nvalid++;
            continue;
        }
        CHECK(rc == LS_EBADREQ || rc == LS_ETOOLARGE);
        CHECK(reason != NULL && reason[0] != '\0');
        cw_map(scratch);
        cw_key(scratch, "index");
        cw_int(scratch, i);
        cw_key(scratch, "code");
        cw_str(scratch, ls_wire_code(rc));
        cw_key(scratch, "message");
        cw_str(scratch, reason);
        cw_end(scratch);
        nrej++;
    }
    CHECK(scratch->depth == 0);

    codec_writer_reset(w);
    cw_map(w);
    cw_key(w, "ok");
    cw_bool(w, 1);
    if (req->id) {
        cw_key(w, "id");
        cw_object(w, req->id);
    }
    cw_key(w, "accepted");
    cw_int(w, nvalid);
    cw_key(w, "rejected");
    cw_array(w);
    cw_raw(w, scratch->sb.data, scratch->sb.size, nrej);
    cw_end(w);
    cw_end(w);

    msgpack_zone zone;
    msgpack_object reply;
    CHECK(msgpack_zone_init(&zone, 1024));
    unpack_reply(w, &zone, &reply);
    check_id_echo(&reply, req->id);
    const msgpack_object *acc = codec_map_get(&reply, "accepted");
    CHECK(acc && acc->type == MSGPACK_OBJECT_POSITIVE_INTEGER && acc->via.u64 == nvalid);
    const msgpack_object *rej = codec_map_get(&reply, "rejected");
    CHECK(rej && rej->type == MSGPACK_OBJECT_ARRAY && rej->via.array.size == nrej);
    for (uint32_t k = 0; k < nrej; k++) {
        const msgpack_object *r = &rej->via.array.ptr[k];
        const msgpack_object *idx = codec_map_get(r, "index");
        CHECK(r->type == MSGPACK_OBJECT_MAP && r->via.map.size == 3);
        CHECK(idx && idx->type == MSGPACK_OBJECT_POSITIVE_INTEGER && idx->via.u64 < arr->via.array.size);
    }
    msgpack_zone_destroy(&zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static codec_writer w, scratch; /* reused like a worker's, reset per reply */
    static int ready;
    if (!ready) {
        codec_writer_init(&w);
        codec_writer_init(&scratch);
        ready = 1;
    }

    msgpack_zone zone;
    codec_request req;
    const char *why = NULL;
    CHECK(msgpack_zone_init(&zone, 4096));
    int rc = codec_parse_request((const char *)data, size, &zone, &req, &why);
    if (rc != LS_OK) {
        CHECK(rc == LS_EBADREQ);
        CHECK(why != NULL && why[0] != '\0');
        if (req.id)
            CHECK(req.root.type == MSGPACK_OBJECT_MAP);
        check_error_reply(&w, req.id, rc, why);
        msgpack_zone_destroy(&zone);
        return 0;
    }

    CHECK(req.root.type == MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < req.root.via.map.size; i++)
        CHECK(req.root.via.map.ptr[i].key.type == MSGPACK_OBJECT_STR);
    CHECK(fuzz_str_inside(&req.op, data, size));
    CHECK(req.id == codec_map_get(&req.root, "id"));

    read_fields(&req);
    track(&req, &w, &scratch, data, size);
    /* the replies an op that fails late would send: default and custom message */
    check_error_reply(&w, req.id, LS_EUNKNOWNOP, NULL);
    check_error_reply(&w, req.id, LS_ETOOLARGE, "too many events in one batch (max-batch)");

    msgpack_zone_destroy(&zone);
    return 0;
}
