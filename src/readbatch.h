/* readbatch.h -- a batch of single-customer reads (score, profile,
 * recommend) that the server loop hands to a worker in one inproc message
 * when requests queue up faster than the loop alone answers them, and the
 * batch of their replies that comes back.
 *
 *   loop:   readbatch_add(request) x n ........ one frame --> worker
 *   worker: readbatch_next(), answers, readbatch_add_reply() x n
 *   loop:   <-- one frame ... readbatch_next(), routes each reply
 *
 * One frame for many requests keeps the hand-off cost per request far
 * below a message of its own.  The encoding is private to one process:
 * fixed-width host-order integers, no versioning.
 *
 *   entry := op u8 | ok u8 | start_ns i64 | env_len u32 | env | len u32 | body
 *
 * where env is msgio_pack_envelope's packing of the routing frames and
 * body the request (ok unused) or the reply. */
#ifndef LS_READBATCH_H
#define LS_READBATCH_H

#include <stddef.h>
#include <stdint.h>

#include "msgio.h"

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int n;           /* entries held */
} readbatch;

typedef struct {
    int op;
    int ok;
    int64_t start_ns;
    const uint8_t *env;
    size_t env_len;
    const char *body;
    size_t body_len;
} readbatch_entry;

/* Appends the request in p: routing frames [0, env_end), body frame
 * env_end.  LS_OK or LS_ENOMEM (the batch is then unchanged). */
int readbatch_add(readbatch *b, const msgio_parts *p, int env_end, int op, int64_t start_ns);

/* Appends a reply to a request of a batch: env/env_len its packed
 * routing frames, body/len the reply.  LS_OK or LS_ENOMEM. */
int readbatch_add_reply(readbatch *b, int op, int ok, int64_t start_ns, const uint8_t *env, size_t env_len,
                        const void *body, size_t len);

/* Empties the batch, keeping its buffer. */
void readbatch_clear(readbatch *b);

/* Frees the buffer. */
void readbatch_free(readbatch *b);

/* Reads the entry at *off of data/len into e and moves *off past it.
 * 1 when an entry was read, 0 at the end, -1 when the bytes are cut. */
int readbatch_next(const uint8_t *data, size_t len, size_t *off, readbatch_entry *e);

#endif
