/* ops.h -- the operations of the wire protocol (PROTOCOL.md section 3):
 * one table row per op, and the handlers that answer them.
 *
 * A handler reads the parsed request in an ops_call and writes its reply
 * into call->w.  Handlers run either on the server loop thread (cheap
 * single-customer reads, answered without a thread hop) or on a worker
 * (batches), or on a scanner (whole-store scans); ops_inline() and
 * ops_scan() say which.  `track` replies asynchronously: the
 * handler hands the batch to the writer, which answers after the commit. */
#ifndef LS_OPS_H
#define LS_OPS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "service.h"
#include "store.h"
#include "writer.h"

typedef struct {
    service *svc;
    store_reader *reader;      /* this thread's read snapshot handle */
    codec_writer *w;           /* the reply is written here */
    codec_writer *scratch;     /* workers: rejected-event list under construction */
    const codec_request *req;
    int op;
    int64_t now_ms;            /* the request's `now`, else the server clock */
    int now_given;             /* the request gave `now` (reads are as of it) */
    int64_t start_ns;
    void *writer_push;         /* workers: PUSH socket to the writer */
    writer_job **handed;       /* non-NULL: a job is left here for the caller to hand over (PULL) */
    const uint8_t *envelope;   /* workers: the request's packed routing frames */
    size_t envelope_len;
    int async;                 /* set by a handler whose reply the writer sends */
    int may_park;              /* the loop can hold this request until triggers come */
    int park;                  /* set by `triggers`: nothing yet, hold it (call->w is empty) */
    int64_t park_ms;           /* ... for at most this long */
    char why[256];             /* error message for the reply */
} ops_call;

/* Rows in the op table, plus one pseudo-op "invalid" for requests that
 * could not be parsed or named no known op (so stats can count them). */
int ops_count(void);
const char *ops_name(int op);

/* Index of the op called name, or ops_invalid() when there is none. */
int ops_lookup(const ls_str *name);
int ops_invalid(void);

/* 1 when only admin keys may call op (when CurveZMQ is on). */
int ops_admin_only(int op);

/* 1 when op scans the whole store: the loop hands it to a scanner thread,
 * never to the workers, and bounds how many run (--max-scans). */
int ops_scan(int op);

/* 1 when the server loop should answer this request itself. */
int ops_inline(int op, const codec_request *req);

/* For a request ops_inline() gave to the loop: 1 when it reads one
 * customer and nothing the loop owns, so a worker may answer it as well
 * (score of one customer, profile, recommend). */
int ops_any_thread(int op);

/* 1 for the ops cluster mode does not offer yet (alias, audience_put,
 * audience_delete): the loop refuses them there. */
int ops_cluster_unsupported(int op);

/* 1 for the ops about one customer (or a list) that a cluster node
 * answers only for the partitions it holds, forwarding the rest: the
 * reads of ops_any_thread() and forget. */
int ops_by_customer(int op);

/* Parses the request in body/len (into req and zone) and answers it as
 * ops_run does; a request that does not parse gets its error reply in
 * call->w.  call->req is set to req.  Returns the reply's status. */
int ops_answer(ops_call *call, codec_request *req, const char *body, size_t len, msgpack_zone *zone);

/* Checks the request in call as far as it can without the store: the op
 * is known, every field is one of the op's and, for an op that checks its
 * values up front (kpis), they are valid.  0, or the error's status with
 * its reply written in call->w.  The loop checks a scan so before it
 * counts the scan slots: a request that can never succeed is answered
 * bad_request, never unavailable.  ops_run makes the same checks. */
int ops_check(ops_call *call);

/* Answers the request in call.  On return either call->w holds the reply
 * (success or error) or call->async is set.  Returns the status the reply
 * carries (0 for ok). */
int ops_run(ops_call *call);

/* Decodes a fire-and-forget batch from the PULL socket (a track request
 * map, or a bare array of events) and submits its valid events to the
 * writer -- or, with call->handed set, leaves their job there for the
 * caller to submit (NULL when none was valid).  Returns 0 or the status
 * that made the whole batch unusable. */
int ops_pull_batch(ops_call *call, const char *body, size_t len, msgpack_zone *zone);

#endif
