/* bytecur.h -- bounds-checked cursors over a byte buffer, for the store's
 * record and history encodings (feature.c, history.c).
 *
 * A write past the end, or a read past the end of the input, sets `bad`
 * and does nothing more (a read fills its destination with zeros), so an
 * encoder or decoder checks once, at the end, instead of after every
 * field.  Varints are LEB128 (7 bits a byte, low first).  Header-only:
 * these run for every field of every record read. */
#ifndef LS_BYTECUR_H
#define LS_BYTECUR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *p;
    size_t left;
    int bad;
} bytecur_w;

typedef struct {
    const uint8_t *p;
    size_t left;
    int bad;
} bytecur_r;

static inline void bytecur_put(bytecur_w *w, const void *src, size_t n)
{
    if (w->bad || w->left < n) {
        w->bad = 1;
        return;
    }
    if (n) /* src may be NULL when n is 0 */
        memcpy(w->p, src, n);
    w->p += n;
    w->left -= n;
}

static inline void bytecur_get(bytecur_r *r, void *dst, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
}

static inline void bytecur_put_varint(bytecur_w *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    bytecur_put(w, b, n);
}

static inline uint64_t bytecur_get_varint(bytecur_r *r)
{
    if (r->bad)
        return 0;
    if (r->left > 0 && r->p[0] < 0x80) { /* most varints: one byte */
        uint64_t v = r->p[0];
        r->p++;
        r->left--;
        return v;
    }
    uint64_t v = 0;
    for (size_t i = 0, shift = 0; shift < 64; i++, shift += 7) {
        if (i >= r->left)
            break;
        uint8_t b = r->p[i];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            r->p += i + 1;
            r->left -= i + 1;
            return v;
        }
    }
    r->bad = 1; /* cut short, or longer than 64 bits */
    return 0;
}

/* Bytes bytecur_put_varint writes for v. */
static inline size_t bytecur_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

/* Big-endian fixed-width integers (keys that must sort by number). */
static inline void bytecur_store_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void bytecur_store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint32_t bytecur_load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t bytecur_load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void bytecur_put_be32(bytecur_w *w, uint32_t v)
{
    uint8_t b[4];
    bytecur_store_be32(b, v);
    bytecur_put(w, b, 4);
}

static inline void bytecur_put_be64(bytecur_w *w, uint64_t v)
{
    uint8_t b[8];
    bytecur_store_be64(b, v);
    bytecur_put(w, b, 8);
}

static inline uint32_t bytecur_get_be32(bytecur_r *r)
{
    uint8_t b[4];
    bytecur_get(r, b, 4);
    return bytecur_load_be32(b);
}

static inline uint64_t bytecur_get_be64(bytecur_r *r)
{
    uint8_t b[8];
    bytecur_get(r, b, 8);
    return bytecur_load_be64(b);
}

/* FNV-1a, 32 bits: the hash of the in-memory tables keyed by byte
 * strings (session ids, a history's strings, the writer's touched ids). */
static inline uint32_t bytecur_fnv1a32(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

#endif
