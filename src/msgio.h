/* msgio.h -- multipart ZeroMQ messages: receiving them whole, and carrying
 * a request's routing envelope (the frames up to the empty delimiter) from
 * thread to thread so a reply can find its way back to the client. */
#ifndef LS_MSGIO_H
#define LS_MSGIO_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define MSGIO_MAX_FRAMES 16

typedef struct {
    zmq_msg_t frame[MSGIO_MAX_FRAMES];
    int n;           /* frames held */
    int dropped;     /* frames past MSGIO_MAX_FRAMES, received and discarded */
} msgio_parts;

/* An inproc socket between the service's threads: no linger, a high-water
 * mark of hwm messages each way (0: unbounded), bound when bind is set,
 * else connected.  NULL on failure. */
void *msgio_inproc_socket(void *ctx, int type, const char *endpoint, int bind, int hwm);

/* Receives every frame of one message.  Returns 0, or -1 with errno (e.g.
 * EAGAIN with ZMQ_DONTWAIT, ETERM); on -1 nothing is held. */
int msgio_recv(void *sock, msgio_parts *p, int flags);

/* Closes every held frame. */
void msgio_close(msgio_parts *p);

/* Sends frames [from, to) of p, moving them (they are empty afterwards),
 * with SNDMORE on all of them when more is set, else on all but the last. */
int msgio_send_frames(void *sock, msgio_parts *p, int from, int to, int more);

/* Sends frames [from, to) of p, then body (when not NULL) as the last
 * frame, as one message on a ROUTER socket with ZMQ_ROUTER_MANDATORY,
 * never blocking (ZMQ_DONTWAIT on every frame): frame `from` names the
 * peer.  Returns 0, or -1 with zmq_errno() EAGAIN (the peer's queue is at
 * its high-water mark: it is not reading) or EHOSTUNREACH (no such peer,
 * e.g. it disconnected); then the message was not queued, and frames not
 * sent stay in p for msgio_close. */
int msgio_route(void *router, msgio_parts *p, int from, int to, const void *body, size_t len);

/* msgio_route for a packed envelope (msgio_pack_envelope): its frames,
 * then body, never blocking; 0 or -1 as msgio_route. */
int msgio_route_packed(void *router, const uint8_t *env, size_t env_len, const void *body, size_t len);

/* Bytes held in frames [from, to) (their payloads only). */
size_t msgio_frames_bytes(const msgio_parts *p, int from, int to);

/* Bytes needed to pack frames [from, to). */
size_t msgio_envelope_size(const msgio_parts *p, int from, int to);

/* Packs frames [from, to) into out as (u32 length, bytes) pairs; out must
 * hold msgio_envelope_size bytes.  Returns the bytes written. */
size_t msgio_pack_envelope(const msgio_parts *p, int from, int to, uint8_t *out);

/* Sends a packed envelope as separate frames, all with SNDMORE. */
int msgio_send_envelope(void *sock, const uint8_t *env, size_t len);

/* Sends len bytes as one frame (SNDMORE when more). */
int msgio_send_bytes(void *sock, const void *data, size_t len, int more);

/* Whether sock can do what `which` asks now, without waiting: ZMQ_POLLIN
 * (a message is there to read) or ZMQ_POLLOUT (a send would not block). */
int msgio_ready(void *sock, int which);

#endif
