/* server.h -- one running leadscore service: the store, the model, the
 * sockets and the threads, from start to a clean, drained stop.
 *
 *   clients --ROUTER--> [server loop] --inproc--> [workers] --> [writer]
 *                         ^    |  single-customer reads          |
 *                         |    +-- answered inline               |
 *                         +------------ replies <----------------+
 *   trackers --PULL---> [server loop] --> [workers] --> [writer]
 *
 * The loop thread owns both client sockets and every reply passes through
 * it, so ZeroMQ sockets are never shared between threads. */
#ifndef LS_SERVER_H
#define LS_SERVER_H

#include <stddef.h>

#include "config.h"

typedef struct server server;

/* Opens the store, loads the model, binds the sockets and starts the
 * threads.  Endpoints may use port * for an ephemeral port (see
 * server_endpoint).  On failure *out is NULL and err explains. */
int server_start(server **out, const config *cfg, char *err, size_t errlen);

/* Serves until server_request_stop, then drains: stops reading requests,
 * lets workers finish, commits and acknowledges every pending batch.
 * Returns 0 after a clean drain, LS_ETIMEOUT when the drain outlasted
 * --drain-timeout (then do not call server_destroy: threads may still be
 * busy; exit the process, LMDB keeps the store consistent). */
int server_run(server *s);

/* Asks server_run to stop.  Async-signal-safe (one write to a pipe). */
void server_request_stop(server *s);

/* Asks the loop to reload the model from --model (SIGHUP).  Async-signal-
 * safe.  A bad file leaves the old model and is reported on stderr. */
void server_request_reload(server *s);

/* The bound request / pull endpoints, with the real port. */
const char *server_endpoint(const server *s);
const char *server_pull_endpoint(const server *s);

/* The server's CurveZMQ public key (Z85), or NULL when CURVE is off. */
const char *server_public_key(const server *s);

/* The port of the Prometheus endpoint, or 0 when --metrics is off. */
int server_metrics_port(const server *s);

/* Name and version of the model the server started with. */
const char *server_model_tag(const server *s);

/* Frees everything; call after server_run returned.  NULLs *s. */
void server_destroy(server **s);

#endif
