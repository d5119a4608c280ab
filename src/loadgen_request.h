/* loadgen_request.h -- the bytes `leadscore bench` sends and reads
 * (loadgen_request.c): the customer each request names, the msgpack
 * request of every workload, error replies read for people, and the
 * one-off calls (probe, stats, audiences, triggers) made outside the
 * client threads.  Internal to the load generator; loadgen_scan_reply()
 * is in loadgen.h. */
#ifndef LS_LOADGEN_REQUEST_H
#define LS_LOADGEN_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>
#include <zmq.h>

#include "loadgen_client.h"

/* Chooses run's fixed permutation of n customers: a multiplier coprime
 * with n near n/phi, so the hot Zipf ranks land far apart. */
void lg_request_permutation(lg_run *run, uint64_t n);
/* Starts a request map in c->sb of nfields entries after "id" (left out
 * when id is 0) and "op". */
void lg_request_begin(lg_client *c, uint32_t nfields, uint64_t id, const char *op);
/* Builds the next request of the workload into c->sb; sets its kind
 * (LOADGEN_KIND_*) and the number of items it carries. */
void lg_request_build(lg_client *c, uint64_t id, int *kind, uint32_t *items);
/* The slow path for an error reply: "code: message" into out. */
void lg_request_describe_error(const void *buf, size_t len, char *out, size_t cap);

/* The first event id of a triggers-workload customer id, or -1 when id
 * is not one of run nonce's: *due_ns is when the request carrying its
 * event was due (monotonic ns of this process).  Customer ids of the
 * triggers workload are "bt-<nonce>-<client>-<seq>-<due_ns>", fresh for
 * every event, so that each event makes a new customer. */
int lg_request_trigger_due(uint32_t nonce, const char *id, size_t len, int64_t *due_ns);

/* ---- one-off calls: a REQ socket, one request and its reply ---- */

struct lg_conn {
    void *zmq, *sock;
    int timeout_ms;
};

/* Opens s to endpoint with replies awaited for timeout_ms; cfg (may be
 * NULL) gives the CurveZMQ keys.  0 or LS_EINTERNAL; lg_conn_close it,
 * also after a failure. */
int lg_conn_open(lg_conn *s, const loadgen_config *cfg, const char *endpoint, int timeout_ms);
void lg_conn_close(lg_conn *s);

/* A reply held for reading: msgpack-c points strings into the frame, so
 * the frame stays open until lg_reply_done. */
typedef struct {
    zmq_msg_t msg;
    msgpack_unpacked up;
} lg_reply;

/* Sends body on s and unpacks the reply map into r (release with
 * lg_reply_done, also after a failure).  0, LS_ETIMEOUT or LS_EPARSE. */
int lg_call(lg_conn *s, const void *body, size_t len, lg_reply *r);
void lg_reply_done(lg_reply *r);
/* 0 when r's "ok" is true; else the status of its error code (LS_EREMOTE
 * when it names none) with "code: message" in why. */
int lg_reply_check(const lg_reply *r, char *why, size_t cap);
/* The status of an error reply map's code, "code: message" in why. */
int lg_reply_status(const msgpack_object *reply, char *why, size_t cap);

/* The value at key in a map, or NULL. */
const msgpack_object *lg_map_get(const msgpack_object *map, const char *key);
/* An unsigned integer at key: 0, or LS_EPARSE when missing or another type. */
int lg_map_uint(const msgpack_object *map, const char *key, uint64_t *out);
/* 1 when the string at key equals s. */
int lg_map_str_is(const msgpack_object *map, const char *key, const char *s);

#endif
