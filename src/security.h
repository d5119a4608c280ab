/* security.h -- who may connect: CurveZMQ keys and the ZAP handler.
 *
 * With --curve-secret, the server's sockets use CurveZMQ and a ZAP handler
 * (a thread answering on inproc://zeromq.zap.01) lets in only the client
 * public keys listed in --allow (role "client": track, score, recommend,
 * profile, alias, model, kpis, ping) or --admin (role "admin": everything,
 * including reload, forget and stats).  A client whose key is on neither
 * list is refused during the handshake: it gets no answer at all.  The role
 * reaches the server loop as the ZeroMQ "User-Id" of each message.
 * Key files hold one Z85 key (40 characters) per line; `#` starts a
 * comment. */
#ifndef LS_SECURITY_H
#define LS_SECURITY_H

#include <stddef.h>

#define SECURITY_KEY_Z85 41   /* 40 characters and a NUL */
/* The first line of the files `leadscore keygen` writes. */
#define SECURITY_SECRET_HEADER "# leadscore CurveZMQ secret key: keep it private"
#define SECURITY_PUBLIC_HEADER "# leadscore CurveZMQ public key"
#define SECURITY_ROLE_ADMIN "admin"
#define SECURITY_ROLE_CLIENT "client"

typedef struct security security;

/* Reads the first key of a key file into z85.  0, LS_EIO or LS_EPARSE
 * (with the reason in err). */
int security_read_key(const char *path, char z85[SECURITY_KEY_Z85], char *err, size_t errlen);

/* Writes a new key pair: PREFIX.key (the secret, mode 0600) and PREFIX.pub.
 * 0 or a status with the reason in err. */
int security_keygen(const char *prefix, char *err, size_t errlen);

/* Loads the server secret and the allow/admin lists (either list may be
 * empty: NULL path) and starts the ZAP handler in context zmq.  On failure
 * *out is NULL and err explains. */
int security_start(security **out, void *zmq, const char *secret_path, const char *allow_path,
                   const char *admin_path, char *err, size_t errlen);

/* Makes a socket a CURVE server with the loaded secret (before bind). */
int security_apply(const security *sec, void *socket);

/* The server's public key, Z85 (for clients). */
const char *security_public_key(const security *sec);

/* Stops the handler; call after zmq_ctx_shutdown/term has begun or with
 * the context still alive (it closes its own socket).  NULLs *sec. */
void security_stop(security **sec);

#endif
