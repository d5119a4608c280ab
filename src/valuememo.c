/* valuememo.c -- the values one write transaction wrote, by key (see
 * valuememo.h).  Open addressing; a slot holds the key's hash beside its
 * entry's arena offset, so a probe past other keys reads no entry.  An
 * entry is a header, the key and the value, 8-byte aligned.  A key
 * written again gets a new entry and its slot moves to it (the old bytes
 * stay until the clear); a forgotten key keeps its slot, its entry marked
 * dead, so the probe sequences of the keys after it stay whole. */
#include "valuememo.h"

#include <stdlib.h>
#include <string.h>

#include "bytecur.h"

#define FIRST_SLOTS 1024

typedef struct {
    uint32_t klen;
    uint32_t vlen;
    uint32_t dead;   /* 1: the key is forgotten */
} memo_entry;        /* then klen key bytes, then vlen value bytes */

void valuememo_init(valuememo *m, size_t max_bytes)
{
    memset(m, 0, sizeof *m);
    m->max_bytes = max_bytes ? max_bytes : VALUEMEMO_DEFAULT_BYTES;
    if (m->max_bytes > UINT32_MAX - 1)
        m->max_bytes = UINT32_MAX - 1; /* offsets are uint32 */
}

void valuememo_free(valuememo *m)
{
    free(m->slots);
    free(m->arena);
    m->slots = NULL;
    m->arena = NULL;
    m->nslots = m->used = m->len = m->cap = 0;
}

/* A table this much bigger than what the txn used is dropped rather than
 * zeroed: a one-event txn after a big group costs a small calloc, not a
 * memset of the big group's table. */
#define SHRINK_RATIO 64

void valuememo_clear(valuememo *m)
{
    if (m->slots && m->used * SHRINK_RATIO < m->nslots) {
        free(m->slots);
        m->slots = NULL;
        m->nslots = 0;
    } else if (m->slots && m->used) {
        memset(m->slots, 0, m->nslots * sizeof *m->slots);
    }
    m->used = 0;
    m->len = 0;
}

#define SLOT(hash, off) ((uint64_t)(hash) << 32 | ((uint64_t)(off) + 1))
#define SLOT_HASH(slot) ((uint32_t)((slot) >> 32))

static memo_entry *entry_at(const valuememo *m, uint64_t slot)
{
    return (memo_entry *)(void *)(m->arena + ((uint32_t)slot - 1));
}

/* The slot holding key, or the empty slot where it would go; SIZE_MAX
 * when there are no slots yet. */
static size_t find_slot(const valuememo *m, const void *key, size_t klen, uint32_t hash)
{
    if (!m->nslots)
        return SIZE_MAX;
    size_t s = hash & (m->nslots - 1);
    for (; m->slots[s]; s = (s + 1) & (m->nslots - 1)) {
        if (SLOT_HASH(m->slots[s]) != hash)
            continue;
        const memo_entry *e = entry_at(m, m->slots[s]);
        if (e->klen == klen && memcmp(e + 1, key, klen) == 0)
            break;
    }
    return s;
}

/* Doubles the slots (or makes the first ones), moving every live key;
 * the forgotten ones drop out. */
static int grow_slots(valuememo *m)
{
    size_t n = m->nslots ? m->nslots * 2 : FIRST_SLOTS;
    uint64_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        uint64_t at = m->slots[i];
        if (!at || entry_at(m, at)->dead)
            continue;
        size_t s = SLOT_HASH(at) & (n - 1);
        while (slots[s])
            s = (s + 1) & (n - 1);
        slots[s] = at;
        used++;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    m->used = used;
    return 0;
}

/* Room for need more arena bytes within the limit; 0 or -1. */
static int reserve_arena(valuememo *m, size_t need)
{
    if (need > m->max_bytes - m->len)
        return -1;
    if (m->len + need <= m->cap)
        return 0;
    size_t cap = m->cap ? m->cap : 65536;
    while (cap < m->len + need)
        cap *= 2;
    if (cap > m->max_bytes)
        cap = m->max_bytes;
    uint8_t *a = realloc(m->arena, cap);
    if (!a)
        return -1;
    m->arena = a;
    m->cap = cap;
    return 0;
}

static void forget_slot(valuememo *m, size_t s)
{
    if (s != SIZE_MAX && m->slots[s])
        entry_at(m, m->slots[s])->dead = 1;
}

void valuememo_put(valuememo *m, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint32_t hash = bytecur_fnv1a32(key, klen);
    size_t s = find_slot(m, key, klen, hash);
    size_t need = (sizeof(memo_entry) + klen + vlen + 7) & ~(size_t)7;
    if (vlen > VALUEMEMO_MAX_VALUE || reserve_arena(m, need) != 0) {
        forget_slot(m, s);
        return;
    }
    if (s == SIZE_MAX || !m->slots[s]) { /* a new key: its slot may need room */
        if ((m->used + 1) * 2 > m->nslots) {
            if (grow_slots(m) != 0)
                return; /* not kept; it was not known before either */
            s = find_slot(m, key, klen, hash);
        }
        m->used++;
    }
    memo_entry *e = (memo_entry *)(void *)(m->arena + m->len);
    *e = (memo_entry){(uint32_t)klen, (uint32_t)vlen, 0};
    memcpy(e + 1, key, klen);
    if (vlen)
        memcpy((uint8_t *)(e + 1) + klen, val, vlen);
    m->slots[s] = SLOT(hash, m->len);
    m->len += need;
}

void valuememo_drop(valuememo *m, const void *key, size_t klen)
{
    forget_slot(m, find_slot(m, key, klen, bytecur_fnv1a32(key, klen)));
}

int valuememo_get(valuememo *m, const void *key, size_t klen, const void **val, size_t *vlen)
{
    size_t s = find_slot(m, key, klen, bytecur_fnv1a32(key, klen));
    if (s == SIZE_MAX || !m->slots[s] || entry_at(m, m->slots[s])->dead) {
        m->misses++;
        return 0;
    }
    const memo_entry *e = entry_at(m, m->slots[s]);
    *val = (const uint8_t *)(e + 1) + e->klen;
    *vlen = e->vlen;
    m->hits++;
    return 1;
}

void valuememo_prefetch_slot(const valuememo *m, const void *key, size_t klen)
{
    if (m->nslots)
        __builtin_prefetch(&m->slots[bytecur_fnv1a32(key, klen) & (m->nslots - 1)]);
}

void valuememo_prefetch_entry(const valuememo *m, const void *key, size_t klen)
{
    if (!m->nslots)
        return;
    uint32_t hash = bytecur_fnv1a32(key, klen);
    uint64_t slot = m->slots[hash & (m->nslots - 1)];
    if (slot && SLOT_HASH(slot) == hash) { /* its value's first lines too: the decode reads them next */
        const uint8_t *e = (const uint8_t *)entry_at(m, slot);
        __builtin_prefetch(e);
        __builtin_prefetch(e + 64);
        __builtin_prefetch(e + 128);
    }
}
