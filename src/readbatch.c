/* readbatch.c -- packing single-customer reads into one inproc frame for
 * a worker, and reading them back (see readbatch.h). */
#include "readbatch.h"

#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define HEADER (1 + 1 + 8 + 4)

static int reserve(readbatch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return LS_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->buf, cap);
    if (!p)
        return LS_ENOMEM;
    b->buf = p;
    b->cap = cap;
    return LS_OK;
}

/* Writes an entry's header; returns where its envelope goes. */
static uint8_t *put_header(uint8_t *o, int op, int ok, int64_t start_ns, size_t env_len)
{
    uint32_t n32 = (uint32_t)env_len;
    o[0] = (uint8_t)op;
    o[1] = (uint8_t)ok;
    memcpy(o + 2, &start_ns, 8);
    memcpy(o + 10, &n32, 4);
    return o + HEADER;
}

static void put_body(uint8_t *o, const void *body, size_t len)
{
    uint32_t n32 = (uint32_t)len;
    memcpy(o, &n32, 4);
    if (len)
        memcpy(o + 4, body, len);
}

int readbatch_add(readbatch *b, const msgio_parts *p, int env_end, int op, int64_t start_ns)
{
    zmq_msg_t *body = (zmq_msg_t *)&p->frame[env_end];
    size_t env_len = msgio_envelope_size(p, 0, env_end), body_len = zmq_msg_size(body);
    if (reserve(b, HEADER + env_len + 4 + body_len) != LS_OK)
        return LS_ENOMEM;
    uint8_t *o = put_header(b->buf + b->len, op, 1, start_ns, env_len);
    o += msgio_pack_envelope(p, 0, env_end, o);
    put_body(o, zmq_msg_data(body), body_len);
    b->len += HEADER + env_len + 4 + body_len;
    b->n++;
    return LS_OK;
}

int readbatch_add_reply(readbatch *b, int op, int ok, int64_t start_ns, const uint8_t *env, size_t env_len,
                        const void *body, size_t len)
{
    if (reserve(b, HEADER + env_len + 4 + len) != LS_OK)
        return LS_ENOMEM;
    uint8_t *o = put_header(b->buf + b->len, op, ok, start_ns, env_len);
    memcpy(o, env, env_len);
    put_body(o + env_len, body, len);
    b->len += HEADER + env_len + 4 + len;
    b->n++;
    return LS_OK;
}

void readbatch_clear(readbatch *b)
{
    b->len = 0;
    b->n = 0;
}

void readbatch_free(readbatch *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

int readbatch_next(const uint8_t *data, size_t len, size_t *off, readbatch_entry *e)
{
    size_t at = *off;
    uint32_t n32;
    if (at == len)
        return 0;
    if (len - at < HEADER)
        return -1;
    e->op = data[at];
    e->ok = data[at + 1];
    memcpy(&e->start_ns, data + at + 2, 8);
    memcpy(&n32, data + at + 10, 4);
    at += HEADER;
    if (len - at < 4 || len - at - 4 < n32) /* no overflow where size_t is 32 bits */
        return -1;
    e->env = data + at;
    e->env_len = n32;
    at += n32;
    memcpy(&n32, data + at, 4);
    at += 4;
    if (len - at < n32)
        return -1;
    e->body = (const char *)data + at;
    e->body_len = n32;
    *off = at + n32;
    return 1;
}
