/* loadgen_echo.h -- a bare ZeroMQ echo server, the baseline `leadscore
 * bench --baseline` compares a leadscore server with (loadgen_echo.c).
 * A run against it measures the transport, the client threads and the
 * encryption, and nothing a server does. */
#ifndef LS_LOADGEN_ECHO_H
#define LS_LOADGEN_ECHO_H

#include <stdint.h>

typedef struct loadgen_echo loadgen_echo;

/* Starts a bare ZeroMQ echo server on its own thread: a ROUTER on
 * tcp://127.0.0.1:* that sends every message straight back, and a PULL
 * on tcp://127.0.0.1:* that counts what it receives.  With curve, both
 * are CurveZMQ servers with a fresh key pair (any client key is let in),
 * so an encrypted run is compared with an encrypted echo.  Returns 0 or
 * LS_EINTERNAL.  Stop it with loadgen_echo_stop. */
int loadgen_echo_start(loadgen_echo **out, int curve);
const char *loadgen_echo_endpoint(const loadgen_echo *e);
const char *loadgen_echo_pull_endpoint(const loadgen_echo *e);
/* The echo server's public key (Z85), or NULL without curve. */
const char *loadgen_echo_server_key(const loadgen_echo *e);
/* Messages the PULL socket has received so far (any thread). */
uint64_t loadgen_echo_pulled(const loadgen_echo *e);
/* Stops the thread, closes everything, NULLs *e; NULL is harmless. */
void loadgen_echo_stop(loadgen_echo **e);

#endif
