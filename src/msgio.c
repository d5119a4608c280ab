/* msgio.c -- whole-message receive and envelope packing (see msgio.h). */
#include "msgio.h"

#include <string.h>

void *msgio_inproc_socket(void *ctx, int type, const char *endpoint, int bind, int hwm)
{
    int zero = 0;
    void *s = zmq_socket(ctx, type);
    if (!s)
        return NULL;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if ((bind ? zmq_bind(s, endpoint) : zmq_connect(s, endpoint)) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

int msgio_recv(void *sock, msgio_parts *p, int flags)
{
    p->n = 0;
    p->dropped = 0;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *m = p->n < MSGIO_MAX_FRAMES ? &p->frame[p->n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, p->n == 0 && p->dropped == 0 ? flags : 0) < 0) {
            zmq_msg_close(m);
            msgio_close(p);
            return -1;
        }
        int more = zmq_msg_more(m);
        if (m == &tmp) {
            zmq_msg_close(&tmp);
            p->dropped++;
        } else {
            p->n++;
        }
        if (!more)
            return 0;
    }
}

void msgio_close(msgio_parts *p)
{
    for (int i = 0; i < p->n; i++)
        zmq_msg_close(&p->frame[i]);
    p->n = 0;
}

int msgio_send_frames(void *sock, msgio_parts *p, int from, int to, int more)
{
    for (int i = from; i < to; i++) {
        int flag = (i + 1 < to || more) ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&p->frame[i], sock, flag) < 0)
            return -1;
    }
    return 0;
}

int msgio_route(void *router, msgio_parts *p, int from, int to, const void *body, size_t len)
{
    for (int i = from; i < to; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < to || body ? ZMQ_SNDMORE : 0);
        if (zmq_msg_send(&p->frame[i], router, flags) < 0)
            return -1;
    }
    if (body && zmq_send(router, body, len, ZMQ_DONTWAIT) < 0)
        return -1;
    return 0;
}

size_t msgio_frames_bytes(const msgio_parts *p, int from, int to)
{
    size_t n = 0;
    for (int i = from; i < to; i++)
        n += zmq_msg_size((zmq_msg_t *)&p->frame[i]);
    return n;
}

size_t msgio_envelope_size(const msgio_parts *p, int from, int to)
{
    size_t n = 0;
    for (int i = from; i < to; i++)
        n += 4 + zmq_msg_size((zmq_msg_t *)&p->frame[i]);
    return n;
}

size_t msgio_pack_envelope(const msgio_parts *p, int from, int to, uint8_t *out)
{
    uint8_t *o = out;
    for (int i = from; i < to; i++) {
        zmq_msg_t *m = (zmq_msg_t *)&p->frame[i];
        uint32_t len = (uint32_t)zmq_msg_size(m);
        memcpy(o, &len, 4);
        memcpy(o + 4, zmq_msg_data(m), len);
        o += 4 + len;
    }
    return (size_t)(o - out);
}

int msgio_send_envelope(void *sock, const uint8_t *env, size_t len)
{
    size_t off = 0;
    while (off + 4 <= len) {
        uint32_t n;
        memcpy(&n, env + off, 4);
        if (off + 4 + n > len)
            return -1;
        if (zmq_send(sock, env + off + 4, n, ZMQ_SNDMORE) < 0)
            return -1;
        off += 4 + n;
    }
    return 0;
}

int msgio_route_packed(void *router, const uint8_t *env, size_t env_len, const void *body, size_t len)
{
    size_t off = 0;
    while (off + 4 <= env_len) {
        uint32_t n;
        memcpy(&n, env + off, 4);
        if (off + 4 + n > env_len || zmq_send(router, env + off + 4, n, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            return -1;
        off += 4 + n;
    }
    return zmq_send(router, body, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

int msgio_send_bytes(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

int msgio_ready(void *sock, int which)
{
    int events = 0;
    size_t len = sizeof events;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 && (events & which) != 0;
}
