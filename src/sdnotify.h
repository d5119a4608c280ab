/* sdnotify.h -- the systemd notification protocol (sd_notify(3)) for
 * `leadscore serve` under Type=notify: READY=1 once the store is open and
 * the sockets are bound, STOPPING=1 when the drain begins.
 *
 * With libsystemd at build time (CMake found libsystemd.pc) sdnotify()
 * calls its sd_notify(); without it, sdnotify_builtin() sends the same
 * datagram itself.  Both do nothing, successfully, when $NOTIFY_SOCKET is
 * unset (not started by systemd with Type=notify). */
#ifndef LS_SDNOTIFY_H
#define LS_SDNOTIFY_H

/* Sends state ("READY=1", "STOPPING=1\nSTATUS=...") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when $NOTIFY_SOCKET is unset, a negative errno
 * value on failure.  Not async-signal-safe. */
int sdnotify(const char *state);

/* The hand-written sender sdnotify() uses without libsystemd: one
 * SOCK_DGRAM datagram to the AF_UNIX path in $NOTIFY_SOCKET ('@' first
 * means the abstract namespace).  Same return values. */
int sdnotify_builtin(const char *state);

/* "libsystemd" or "builtin": which one sdnotify() uses. */
const char *sdnotify_backend(void);

#endif
