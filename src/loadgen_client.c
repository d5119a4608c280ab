/* loadgen_client.c -- the client threads of `leadscore bench` (see
 * loadgen_client.h): each owns one socket and a window of `inflight`
 * slots, sends requests when they are due, matches replies to slots,
 * gives up on late ones and records latencies in its own histograms.
 *
 * Timing.  A slot holds one outstanding request: its generation number
 * (carried in the request "id" together with the slot index, so a late
 * reply to a request that timed out is recognised and dropped), the time
 * it was DUE.  Latency is reply time minus due time, and a request
 * whose reply has not come --timeout after its due time is a timeout.  In
 * a closed loop a request is due when a slot frees up; in an open loop at
 * fixed intervals, whether or not a slot is free: a client that falls
 * behind (every slot taken, or the server slower than --rate) sends its
 * backlog in order; a request still unsent when its timeout has run out
 * since its due time, or when the window has ended (END_GRACE_NS later),
 * is never sent but counted as not sent, so an overloaded run ends with
 * its window, and its last replies come within --timeout.  Clients
 * wait on their socket's ZMQ_FD with ppoll (nanosecond timeouts, 1 ns
 * timer slack), so an open-loop client wakes on time for its next request
 * without spinning.  The PULL workload uses a PUSH socket instead, fire
 * and forget, behind a gate that keeps the server's backlog bounded. */
#define _GNU_SOURCE
#include "loadgen_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <zmq.h>

#include "leadscore/error.h"
#include "loadgen_request.h"
#include "timefmt.h"

#define WAIT_SLICE_NS 20000000LL      /* longest single wait: 20 ms */
#define EXPIRE_EVERY_NS 20000000LL    /* how often slots are checked for timeouts */
#define END_GRACE_NS 20000000LL       /* open loop: how late after the window's end a
                                         request due in it may still be sent (a
                                         client that keeps up is never this late) */

/* Makes sock a CurveZMQ client when cfg has keys (before connect). */
void lg_client_curve(const loadgen_config *cfg, void *sock)
{
    const char *server = cfg->echo ? loadgen_echo_server_key(cfg->echo) : cfg->server_key;
    if (!server || !cfg->client_public || !cfg->client_secret)
        return;
    zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, cfg->client_public, 40);
    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, cfg->client_secret, 40);
}

/* ------------------------------------------------------------------ */
/* Client threads: common parts                                        */
/* ------------------------------------------------------------------ */

static void note_error(lg_client *c, const char *what)
{
    if (!c->first_error[0])
        snprintf(c->first_error, sizeof c->first_error, "%s", what);
    atomic_fetch_add_explicit(&c->live_errors, 1, memory_order_relaxed);
}

/* Waits until the socket may have something to read, for at most ns. */
static void wait_readable(lg_client *c, int64_t ns)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN))
        return;
    if (ns <= 0)
        return;
    struct pollfd p = {c->fd, POLLIN, 0};
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    ppoll(&p, 1, &ts, NULL);
}

/* Sleeps until the monotonic time `until` (or for at most a slice). */
static void sleep_until(int64_t until)
{
    int64_t now = timefmt_mono_ns(), ns = until - now;
    if (ns <= 0)
        return;
    if (ns > WAIT_SLICE_NS)
        ns = WAIT_SLICE_NS;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

/* The next request's due time, or -1 when this client sends no more. */
static int64_t next_due(lg_client *c, int64_t now)
{
    lg_run *run = c->run;
    if (c->done_sending || atomic_load_explicit(&run->stop, memory_order_relaxed))
        return -1;
    int64_t due = c->interval_ns ? c->next_due : now;
    if (due >= run->end_ns || (c->quota && c->sent_measured >= c->quota && due >= run->measure_ns)) {
        c->done_sending = 1;
        return -1;
    }
    return due;
}

/* Moves the schedule past a request that was due at `due` (sent or
 * given up). */
static void advance(lg_client *c, int64_t due)
{
    if (due >= c->run->measure_ns)
        c->sent_measured++;
    if (c->interval_ns)
        c->next_due += c->interval_ns;
}

static int64_t timeout_ns(const lg_client *c)
{
    return (int64_t)c->run->cfg->timeout_ms * 1000000;
}

/* Open loop: gives up on the requests of the backlog that could not be
 * sent before their timeout ran out since they were due, or before the
 * window ended; the measured ones are counted as not sent (the clients or
 * the server could not keep up with the rate).  What is left of the
 * warm-up when the measured window begins goes too, uncounted, so the
 * window's requests are not held back behind it. */
static void skip_overdue(lg_client *c, int64_t now)
{
    int64_t due, end = c->run->end_ns, measure = c->run->measure_ns;
    while (c->interval_ns && (due = next_due(c, now)) >= 0 &&
           (now - due > timeout_ns(c) || now - END_GRACE_NS > end || (due < measure && now >= measure))) {
        if (due >= c->run->measure_ns) {
            c->not_sent++;
            if (!c->first_error[0])
                snprintf(c->first_error, sizeof c->first_error,
                         "not sent: the client was too far behind --rate (open loop overload)");
            atomic_fetch_add_explicit(&c->live_errors, 1, memory_order_relaxed);
        }
        advance(c, due);
    }
}

static void record(lg_client *c, int kind, int64_t latency_ns, uint32_t items, int64_t now)
{
    uint64_t v = latency_ns > 0 ? (uint64_t)latency_ns : 0;
    hist_record(c->lat, v);
    if (c->kind_lat[kind])
        hist_record(c->kind_lat[kind], v);
    c->kind_n[kind]++;
    c->ok_measured++;
    c->items += items;
    c->last_done_ns = now;
}

/* ------------------------------------------------------------------ */
/* Client threads: request / reply                                     */
/* ------------------------------------------------------------------ */

static void free_slot(lg_client *c, uint32_t idx)
{
    c->slots[idx].gen = 0;
    c->free_slots[c->nfree++] = idx;
    c->outstanding--;
}

/* Sends one request due at `due`.  Returns 0 when sent, 1 when the socket
 * cannot take it now (try again later), -1 on a failure (counted). */
static int send_request(lg_client *c, int64_t due)
{
    uint32_t idx = c->free_slots[c->nfree - 1];
    uint64_t gen = ++c->next_gen, id = gen << SLOT_BITS | idx;
    int kind;
    uint32_t items;
    c->due_ns = due;
    lg_request_build(c, id, &kind, &items);
    if (c->type == ZMQ_DEALER && zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        c->next_gen--;
        return zmq_errno() == EAGAIN ? 1 : -1;
    }
    if (zmq_send(c->sock, c->sb.data, c->sb.size, ZMQ_DONTWAIT) < 0) {
        if (zmq_errno() == EAGAIN && c->type == ZMQ_REQ) {
            c->next_gen--;
            return 1;
        }
        c->send_failures++;
        note_error(c, zmq_strerror(zmq_errno()));
        return -1;
    }
    c->nfree--;
    c->outstanding++;
    lg_slot *s = &c->slots[idx];
    s->gen = gen;
    s->due_ns = due;
    s->items = items;
    s->kind = (uint8_t)kind;
    s->measured = due >= c->run->measure_ns;
    c->req_bytes += c->sb.size;
    c->req_count++;
    return 0;
}

/* Sends every request that is due and has a free slot. */
static void send_due(lg_client *c)
{
    while (c->nfree > 0) {
        int64_t now = timefmt_mono_ns(), due;
        skip_overdue(c, now);
        due = next_due(c, now);
        if (due < 0 || due > now)
            return;
        int rc = send_request(c, due);
        if (rc > 0)
            return;
        advance(c, due);
        if (rc < 0)
            return;
    }
}

/* Finds the slot a reply belongs to; -1 for a late or unknown one. */
static int match_slot(lg_client *c, int has_id, uint64_t id)
{
    if (!has_id) /* a REQ socket has one slot, and only its reply can come */
        return c->type == ZMQ_REQ && c->slots[0].gen ? 0 : -1;
    uint64_t idx = id & SLOT_MASK;
    if (idx >= (uint64_t)c->run->cfg->inflight || c->slots[idx].gen != id >> SLOT_BITS || c->slots[idx].gen == 0)
        return -1;
    return (int)idx;
}

static void handle_reply(lg_client *c, const void *body, size_t len, int64_t now)
{
    int ok, has_id;
    uint64_t id = 0;
    c->reply_bytes += len;
    c->reply_count++;
    if (loadgen_scan_reply(body, len, &ok, &id, &has_id) != LS_OK) {
        c->error_replies++;
        note_error(c, "a reply that is not a msgpack map");
        return;
    }
    int idx = match_slot(c, has_id, id);
    if (idx < 0)
        return; /* the answer to a request that already timed out */
    lg_slot s = c->slots[idx];
    free_slot(c, (uint32_t)idx);
    if (now - s.due_ns > timeout_ns(c)) { /* answered after its timeout, before expire() saw it */
        c->timeouts++;
        note_error(c, "no reply within the timeout");
        return;
    }
    atomic_fetch_add_explicit(&c->live_done, 1, memory_order_relaxed);
    if (ok == 0 || (ok < 0 && !c->run->cfg->echo)) {
        char why[256];
        c->error_replies++;
        if (!c->first_error[0])
            lg_request_describe_error(body, len, why, sizeof why);
        note_error(c, why);
        return;
    }
    c->items_acked += s.items;
    if (s.measured)
        record(c, s.kind, now - s.due_ns, s.items, now);
    else
        c->warmup_ok++;
}

/* Receives one reply body (after the DEALER delimiter) if one is waiting.
 * Returns 1 when one was handled, 0 when none is there, -1 on ETERM. */
static int receive_one(lg_client *c)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&m);
        return err == EAGAIN || err == EFSM ? 0 : -1; /* EFSM: a REQ with nothing asked */
    }
    /* a DEALER reply is [empty delimiter, body]: step to the last frame */
    while (zmq_msg_more(&m)) {
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
    }
    handle_reply(c, zmq_msg_data(&m), zmq_msg_size(&m), timefmt_mono_ns());
    zmq_msg_close(&m);
    return 1;
}

/* Gives up on requests unanswered longer than the timeout since they
 * were due (in a closed loop, when they were sent). */
static void expire(lg_client *c, int64_t now)
{
    int64_t limit = timeout_ns(c);
    if (now - c->last_expire_ns < EXPIRE_EVERY_NS || c->outstanding == 0)
        return;
    c->last_expire_ns = now;
    for (uint32_t i = 0; i < (uint32_t)c->run->cfg->inflight; i++) {
        if (c->slots[i].gen && now - c->slots[i].due_ns > limit) {
            free_slot(c, i);
            c->timeouts++;
            note_error(c, "no reply within the timeout");
        }
    }
}

/* How long to wait for a reply before the next thing to do. */
static int64_t wait_budget(lg_client *c, int64_t now)
{
    if (c->nfree > 0) {
        int64_t due = next_due(c, now);
        if (due >= 0)
            return due - now < WAIT_SLICE_NS ? due - now : WAIT_SLICE_NS;
    }
    return WAIT_SLICE_NS;
}

static void request_loop(lg_client *c)
{
    for (;;) {
        int stop = atomic_load_explicit(&c->run->stop, memory_order_relaxed);
        if (stop >= 2)
            break;
        send_due(c);
        int got = 0;
        while (c->outstanding > 0 && (got = receive_one(c)) > 0)
            ;
        if (got < 0)
            break;
        int64_t now = timefmt_mono_ns();
        expire(c, now);
        skip_overdue(c, now);
        if (c->outstanding == 0 && next_due(c, now) < 0)
            break;
        wait_readable(c, wait_budget(c, now));
    }
    c->abandoned += (uint64_t)c->outstanding;
}

/* ------------------------------------------------------------------ */
/* Client threads: fire-and-forget PUSH                                */
/* ------------------------------------------------------------------ */

/* Waits until the server has caught up enough to take n more events
 * (cfg->pull_backlog).  Returns 0 when it may send, -1 when the run ends
 * first. */
static int pull_gate(lg_client *c, uint64_t n)
{
    lg_run *run = c->run;
    while (run->cfg->pull_backlog &&
           atomic_load_explicit(&run->pull_sent, memory_order_relaxed) + n >
               atomic_load_explicit(&run->pull_allowed, memory_order_relaxed)) {
        if (atomic_load_explicit(&run->stop, memory_order_relaxed) || timefmt_mono_ns() >= run->end_ns)
            return -1;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Open loop, the run over: every request of the schedule still unsent
 * is given up, the measured ones counted as not sent (skip_overdue's
 * rule), so a server that held the sender back shows as overload. */
static void give_up_backlog(lg_client *c)
{
    skip_overdue(c, c->run->end_ns + END_GRACE_NS + timeout_ns(c) + 1);
}

static void push_loop(lg_client *c)
{
    for (;;) {
        int64_t now = timefmt_mono_ns();
        skip_overdue(c, now);
        int64_t due = next_due(c, now);
        if (due < 0)
            break;
        if (due > now) {
            sleep_until(due);
            continue;
        }
        if (pull_gate(c, (uint64_t)c->run->cfg->batch) != 0) {
            give_up_backlog(c); /* the run ended while the server was catching up */
            break;
        }
        if (!c->interval_ns)
            due = timefmt_mono_ns(); /* closed loop: due once the gate opened */
        c->due_ns = due;
        int kind;
        uint32_t items;
        lg_request_build(c, 0, &kind, &items);
        int rc;
        while ((rc = zmq_send(c->sock, c->sb.data, c->sb.size, 0)) < 0 && zmq_errno() == EAGAIN &&
               !atomic_load_explicit(&c->run->stop, memory_order_relaxed))
            ; /* blocked by the high-water mark: SNDTIMEO lets us look at stop */
        now = timefmt_mono_ns();
        advance(c, due);
        if (rc < 0) {
            if (zmq_errno() == EAGAIN) {
                c->abandoned++;
                give_up_backlog(c); /* stopped while the high-water mark held it */
                break;
            }
            c->send_failures++;
            note_error(c, zmq_strerror(zmq_errno()));
            continue;
        }
        c->pull_events_sent += items;
        atomic_fetch_add_explicit(&c->run->pull_sent, items, memory_order_relaxed);
        c->req_bytes += c->sb.size;
        c->req_count++;
        atomic_fetch_add_explicit(&c->live_done, 1, memory_order_relaxed);
        if (due >= c->run->measure_ns)
            record(c, kind, now - due, items, now);
        else
            c->warmup_ok++;
    }
}

void *lg_client_main(void *arg)
{
    lg_client *c = arg;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    int go;
    while ((go = atomic_load(&c->run->go)) == 0) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    if (go < 0) {
        atomic_store(&c->finished, 1);
        return NULL;
    }
    while (timefmt_mono_ns() < c->run->t0_ns)
        sleep_until(c->run->t0_ns);
    c->next_due = c->run->t0_ns + (c->interval_ns ? c->interval_ns * c->index / c->run->nclients : 0);
    if (c->type == ZMQ_PUSH)
        push_loop(c);
    else
        request_loop(c);
    atomic_store(&c->finished, 1);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Setting clients up and down                                         */
/* ------------------------------------------------------------------ */

static int open_client_socket(lg_client *c)
{
    const loadgen_config *cfg = c->run->cfg;
    int pull = cfg->workload == LOADGEN_PULL;
    int hwm = cfg->inflight * 2 > 1000 ? cfg->inflight * 2 : 1000, zero = 0, one = 1;
    int linger = pull ? (int)(cfg->pull_max_wait_s * 1000) : 0, sndtimeo = 100;
    size_t len = sizeof c->fd;
    c->type = pull ? ZMQ_PUSH : cfg->inflight == 1 ? ZMQ_REQ : ZMQ_DEALER;
    c->sock = zmq_socket(c->run->zmq, c->type);
    if (!c->sock)
        return LS_EINTERNAL;
    zmq_setsockopt(c->sock, ZMQ_LINGER, pull ? &linger : &zero, sizeof(int));
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (c->type == ZMQ_REQ)
        zmq_setsockopt(c->sock, ZMQ_REQ_RELAXED, &one, sizeof one);
    if (pull)
        zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    lg_client_curve(cfg, c->sock);
    const char *ep = pull ? cfg->pull_endpoint : cfg->endpoint;
    if (cfg->echo)
        ep = pull ? loadgen_echo_pull_endpoint(cfg->echo) : loadgen_echo_endpoint(cfg->echo);
    if (zmq_connect(c->sock, ep) != 0 || zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &len) != 0)
        return LS_EINTERNAL;
    return LS_OK;
}

int lg_client_new_hist(hist **h)
{
    return hist_init(h, LOADGEN_HIST_LOWEST, LOADGEN_HIST_HIGHEST, LOADGEN_HIST_DIGITS);
}

int lg_client_init(lg_run *run, lg_client *c, int index)
{
    const loadgen_config *cfg = run->cfg;
    c->run = run;
    c->index = index;
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    sgr_rng_seed(&c->rng, cfg->seed * 1000003 + (uint64_t)index);
    c->slots = calloc((size_t)cfg->inflight, sizeof *c->slots);
    c->free_slots = malloc((size_t)cfg->inflight * sizeof *c->free_slots);
    if (!c->slots || !c->free_slots || lg_client_new_hist(&c->lat))
        return LS_ENOMEM;
    if (cfg->workload == LOADGEN_MIXED)
        for (int k = 0; k < LOADGEN_KINDS; k++)
            if (lg_client_new_hist(&c->kind_lat[k]))
                return LS_ENOMEM;
    for (int i = cfg->inflight - 1; i >= 0; i--)
        c->free_slots[c->nfree++] = (uint32_t)i;
    if (cfg->requests)
        c->quota = cfg->requests / (uint64_t)cfg->clients + ((uint64_t)index < cfg->requests % (uint64_t)cfg->clients);
    if (cfg->rate > 0)
        c->interval_ns = (int64_t)(1e9 * cfg->clients / cfg->rate);
    if (cfg->rate > 0 && c->interval_ns < 1)
        c->interval_ns = 1;
    return open_client_socket(c);
}

void lg_client_free(lg_client *c)
{
    int zero = 0;
    if (c->sock) {
        /* the pull check has already waited for what was queued */
        zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(c->sock);
    }
    msgpack_sbuffer_destroy(&c->sb);
    free(c->slots);
    free(c->free_slots);
    hist_destroy(&c->lat);
    for (int k = 0; k < LOADGEN_KINDS; k++)
        hist_destroy(&c->kind_lat[k]);
}
