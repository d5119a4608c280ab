/* loadgen_client.h -- the client threads of `leadscore bench` and the run
 * state they share with the controller in loadgen.c (loadgen_client.c).
 * Internal to the load generator: callers use loadgen.h.
 *
 * One lg_run per loadgen_run(); one lg_client per client thread, each
 * with its own socket, random numbers, request buffer and histograms.  A
 * client's figures are read by the controller only after the join; the
 * live_* counters may be read at any time. */
#ifndef LS_LOADGEN_CLIENT_H
#define LS_LOADGEN_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <msgpack.h>

#include "histogram.h"
#include "loadgen.h"

#define SLOT_BITS 20                  /* request id = generation << SLOT_BITS | slot */
#define SLOT_MASK ((UINT64_C(1) << SLOT_BITS) - 1)

typedef struct {
    uint64_t gen;        /* 0: free */
    int64_t due_ns;      /* the timeout runs from here */
    uint32_t items;
    uint8_t kind;
    uint8_t measured;
} lg_slot;

typedef struct lg_run lg_run;
typedef struct lg_conn lg_conn;
typedef struct lg_consumer lg_consumer;

typedef struct {
    lg_run *run;
    int index;
    pthread_t thread;
    int thread_started;
    void *sock;
    int type;                 /* ZMQ_REQ, ZMQ_DEALER or ZMQ_PUSH */
    int fd;                   /* the socket's ZMQ_FD */
    loadgen_rng rng;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    lg_slot *slots;
    uint32_t *free_slots;
    int nfree, outstanding;
    uint64_t next_gen;
    uint64_t quota;           /* measured requests to send; 0: no limit */
    uint64_t sent_measured;
    int done_sending;
    int64_t next_due, interval_ns, last_expire_ns;
    uint64_t event_seq;
    int64_t due_ns;           /* when the request being built is due */
    uint64_t new_customers;   /* triggers: customers made so far */
    hist *lat, *kind_lat[LOADGEN_KINDS];
    /* figures, read by the controller after the join */
    uint64_t ok_measured, items, kind_n[LOADGEN_KINDS], warmup_ok;
    uint64_t error_replies, timeouts, send_failures, abandoned;
    uint64_t not_sent;        /* open loop: measured requests overdue by more
                                 than the timeout before they could be sent */
    uint64_t req_bytes, req_count, reply_bytes, reply_count;
    uint64_t pull_events_sent;
    uint64_t items_acked;     /* items of every ok reply, warm-up included */
    int64_t last_done_ns;
    char first_error[256];
    /* live counters for the progress line */
    _Alignas(64) atomic_uint_fast64_t live_done;
    atomic_uint_fast64_t live_errors;
    atomic_int finished;
} lg_client;

struct lg_run {
    const loadgen_config *cfg;
    void *zmq;
    int use_zipf;
    loadgen_zipf zipf;
    uint64_t perm_a, perm_b;  /* rank r -> customer 1 + ((r-1)*a + b) mod n */
    uint32_t nonce;           /* makes event ids unique per run */
    int64_t t0_ns, measure_ns, end_ns;
    atomic_int stop;          /* 1: send no more; 2: stop waiting too */
    lg_conn *pull_stats;      /* pull: where landed events are counted */
    uint64_t pull_before;     /* pull: the count before the run */
    atomic_uint_fast64_t pull_sent, pull_allowed; /* pull: the backlog gate */
    atomic_int go;            /* 0: wait; 1: run; -1: set-up failed, exit */
    lg_consumer *consumer;    /* triggers: the thread reading the outbox */
    lg_client *clients;
    int nclients;
};

/* Sets c up as client `index` of run: buffers, slots, histograms, its
 * share of the request quota and rate, and a connected socket.  0,
 * LS_ENOMEM or LS_EINTERNAL; free with lg_client_free also after a
 * failure. */
int lg_client_init(lg_run *run, lg_client *c, int index);
/* Closes the socket and frees what lg_client_init made. */
void lg_client_free(lg_client *c);
/* The thread body: waits for run->go, then runs the request/reply or the
 * PUSH loop to the end of the run and sets c->finished. */
void *lg_client_main(void *arg);
/* A latency histogram of the load generator's range (ns, 3 digits). */
int lg_client_new_hist(hist **h);
/* Makes sock a CurveZMQ client when cfg has keys (before connect). */
void lg_client_curve(const loadgen_config *cfg, void *sock);

#endif
