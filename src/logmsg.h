/* logmsg.h -- the message a gateway writes to a partition's log stream
 * and a shard reads back (cluster mode).
 *
 * A message is a msgpack map {"v":1, "rcv":ms, "gw":node, "ev":[events]}:
 * the validated events of one or more track requests for one partition,
 * in arrival order, each as a v1 wire event map (docs/PROTOCOL.md 2.1)
 * with `ts` always set.  `rcv` is the gateway's receive time: the shard
 * dates idempotency keys with it and validates with it, never with its own
 * clock, so every replica and every replay computes the same bytes.
 *
 * A `forget` travels as {"v":1, "rcv":ms, "gw":node, "forget":customer}
 * in the customer's partition, ordered with its events. */
#ifndef LS_LOGMSG_H
#define LS_LOGMSG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "event.h"

#define LOGMSG_VERSION 1

/* Starts a message in w (reset first); then logmsg_add per event and
 * logmsg_finish.  w->oom tells whether memory ran out on the way. */
void logmsg_begin(codec_writer *w, int64_t rcv_ms, const char *gateway);
void logmsg_add(codec_writer *w, const ls_event *ev);
void logmsg_finish(codec_writer *w);

/* A whole `forget` message for customer (w reset first). */
void logmsg_forget(codec_writer *w, int64_t rcv_ms, const char *gateway, const ls_str *customer);

typedef struct {
    int64_t rcv_ms;
    ls_str gateway;
    size_t nevents;
    ls_event *events;     /* in zone; strings point into buf */
    size_t invalid;       /* events that no longer validate (skipped) */
    ls_str forget;        /* a forget message: the customer (len 0 otherwise; then no events) */
} logmsg;

/* Decodes buf (kept alive by the caller) into out, with memory from zone.
 * LS_EPARSE with a reason in why for a message that is not a version-1
 * log message. */
int logmsg_decode(const char *buf, size_t len, msgpack_zone *zone, logmsg *out, char *why, size_t why_cap);

#endif
