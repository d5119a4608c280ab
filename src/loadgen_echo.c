/* loadgen_echo.c -- the bare ZeroMQ echo server of `leadscore bench
 * --baseline` (see loadgen_echo.h): a ROUTER that sends every message
 * straight back and a PULL that counts what it receives, on one thread,
 * so a run against it measures the transport and nothing else. */
#include "loadgen_echo.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <zmq.h>

#include "leadscore/error.h"

struct loadgen_echo {
    void *zmq, *router, *pull;
    pthread_t thread;
    char endpoint[256], pull_endpoint[256];
    int curve;
    char public_key[41], secret_key[41];
    atomic_uint_fast64_t pulled;
};

/* Moves one whole message from `from` back out of `to` (frame by frame,
 * flags preserved).  Returns -1 when the context is shutting down. */
static int echo_one(void *from, void *to)
{
    zmq_msg_t m;
    for (;;) {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, from, ZMQ_DONTWAIT) < 0) {
            int err = zmq_errno();
            zmq_msg_close(&m);
            return err == EAGAIN ? 0 : -1;
        }
        int more = zmq_msg_more(&m);
        if (to)
            zmq_msg_send(&m, to, more ? ZMQ_SNDMORE : 0);
        zmq_msg_close(&m);
        if (!more)
            return 1;
    }
}

static void *echo_main(void *arg)
{
    loadgen_echo *e = arg;
    for (;;) {
        zmq_pollitem_t items[2] = {{e->router, 0, ZMQ_POLLIN, 0}, {e->pull, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0 && zmq_errno() != EINTR)
            break;
        int rc = 0;
        while (rc >= 0 && (rc = echo_one(e->router, e->router)) > 0)
            ;
        int pc = 0;
        while (pc >= 0 && (pc = echo_one(e->pull, NULL)) > 0)
            atomic_fetch_add(&e->pulled, 1);
        if (rc < 0 || pc < 0)
            break;
    }
    zmq_close(e->router);
    zmq_close(e->pull);
    return NULL;
}

static void *echo_socket(loadgen_echo *e, int type, char *bound)
{
    int hwm = 100000, zero = 0;
    size_t len = 256;
    void *s = zmq_socket(e->zmq, type);
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (e->curve) {
        int one = 1;
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, e->secret_key, 40);
    }
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0) {
        zmq_close(s);
        return NULL;
    }
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len);
    return s;
}

int loadgen_echo_start(loadgen_echo **out, int curve)
{
    loadgen_echo *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return LS_ENOMEM;
    e->curve = curve;
    e->zmq = zmq_ctx_new();
    if (curve && zmq_curve_keypair(e->public_key, e->secret_key) != 0) {
        zmq_ctx_term(e->zmq);
        free(e);
        return LS_EINTERNAL;
    }
    if (e->zmq) {
        e->router = echo_socket(e, ZMQ_ROUTER, e->endpoint);
        e->pull = echo_socket(e, ZMQ_PULL, e->pull_endpoint);
    }
    if (!e->router || !e->pull || pthread_create(&e->thread, NULL, echo_main, e) != 0) {
        if (e->router)
            zmq_close(e->router);
        if (e->pull)
            zmq_close(e->pull);
        if (e->zmq)
            zmq_ctx_term(e->zmq);
        free(e);
        return LS_EINTERNAL;
    }
    *out = e;
    return LS_OK;
}

const char *loadgen_echo_endpoint(const loadgen_echo *e) { return e->endpoint; }
const char *loadgen_echo_pull_endpoint(const loadgen_echo *e) { return e->pull_endpoint; }
const char *loadgen_echo_server_key(const loadgen_echo *e) { return e->curve ? e->public_key : NULL; }

uint64_t loadgen_echo_pulled(const loadgen_echo *e)
{
    return atomic_load(&((loadgen_echo *)e)->pulled);
}

void loadgen_echo_stop(loadgen_echo **ep)
{
    if (!ep || !*ep)
        return;
    loadgen_echo *e = *ep;
    zmq_ctx_shutdown(e->zmq); /* wakes the thread with ETERM */
    pthread_join(e->thread, NULL);
    zmq_ctx_term(e->zmq);
    free(e);
    *ep = NULL;
}
