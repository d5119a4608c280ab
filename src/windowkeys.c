/* windowkeys.c -- the window idempotency keys not yet merged into
 * `event_ids` (see windowkeys.h). */
#include "windowkeys.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bytecur.h"
#include "leadscore/error.h"

#define SAMPLE_MAX 1024

/* LMDB's default key order: bytes, then the shorter first. */
static int keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int entry_cmp(const void *pa, const void *pb)
{
    const windowkeys_entry *a = *(windowkeys_entry *const *)pa, *b = *(windowkeys_entry *const *)pb;
    return keycmp(a->bytes, a->id_len, b->bytes, b->id_len);
}

void windowkeys_init(windowkeys *wk)
{
    memset(wk, 0, sizeof *wk);
    atomic_init(&wk->live, 0);
    wk->added_min = INT64_MAX;
}

static void end_sweep(windowkeys *wk)
{
    wk->sweeping = 0;
    wk->slice = 0;
}

void windowkeys_free(windowkeys *wk)
{
    for (size_t i = 0; i < wk->n; i++)
        free(wk->all[i]);
    free(wk->all);
    free(wk->slots);
    free(wk->undo);
    free(wk->sweep);
    windowkeys_init(wk);
}

static void slot_insert(windowkeys_entry **slots, size_t nslots, windowkeys_entry *e)
{
    size_t at = (size_t)e->hash & (nslots - 1);
    while (slots[at])
        at = (at + 1) & (nslots - 1);
    slots[at] = e;
}

/* A slot table for `want` entries (dead ones included: an abort may
 * revive them), filled from wk->all. */
static int rebuild_slots(windowkeys *wk, size_t want)
{
    size_t nslots = 1024;
    while (nslots < want * 2)
        nslots *= 2;
    windowkeys_entry **slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return LS_ENOMEM;
    for (size_t i = 0; i < wk->n; i++)
        slot_insert(slots, nslots, wk->all[i]);
    free(wk->slots);
    wk->slots = slots;
    wk->nslots = nslots;
    return LS_OK;
}

/* Frees the dead entries and rebuilds the table; only between txns. */
static void compact(windowkeys *wk)
{
    size_t kept = 0;
    for (size_t i = 0; i < wk->n; i++) {
        windowkeys_entry *e = wk->all[i];
        if (e->dead) {
            wk->bytes -= sizeof *e + e->id_len + e->customer_len;
            free(e);
        } else {
            wk->all[kept++] = e;
        }
    }
    wk->n = kept;
    if (rebuild_slots(wk, kept) != LS_OK) { /* keep the old table: clear its dead pointers */
        memset(wk->slots, 0, wk->nslots * sizeof *wk->slots);
        for (size_t i = 0; i < wk->n; i++)
            slot_insert(wk->slots, wk->nslots, wk->all[i]);
    }
}

windowkeys_entry *windowkeys_find(const windowkeys *wk, const void *id, size_t len)
{
    if (!wk->nslots)
        return NULL;
    uint32_t h = bytecur_fnv1a32(id, len);
    for (size_t at = (size_t)h & (wk->nslots - 1); wk->slots[at]; at = (at + 1) & (wk->nslots - 1)) {
        windowkeys_entry *e = wk->slots[at];
        if (e->hash == h && !e->dead && e->id_len == len && memcmp(e->bytes, id, len) == 0)
            return e;
    }
    return NULL;
}

void windowkeys_prefetch(const windowkeys *wk, const void *id, size_t len)
{
    if (wk->nslots)
        __builtin_prefetch(&wk->slots[(size_t)bytecur_fnv1a32(id, len) & (wk->nslots - 1)]);
}

static int note_undo(windowkeys *wk, windowkeys_entry *e, int killed)
{
    if (wk->nundo == wk->undo_cap) {
        size_t cap = wk->undo_cap ? wk->undo_cap * 2 : 256;
        struct windowkeys_undo *u = realloc(wk->undo, cap * sizeof *u);
        if (!u)
            return LS_ENOMEM;
        wk->undo = u;
        wk->undo_cap = cap;
    }
    wk->undo[wk->nundo++] = (struct windowkeys_undo){e, killed};
    return LS_OK;
}

int windowkeys_add(windowkeys *wk, const void *id, size_t len, int64_t key_ms, const void *customer,
                   size_t customer_len)
{
    if (len > UINT16_MAX || customer_len > UINT16_MAX)
        return LS_ETOOLARGE;
    if ((wk->n + 1) * 2 > wk->nslots && rebuild_slots(wk, 2 * wk->n + 1))
        return LS_ENOMEM;
    if (wk->n == wk->cap) {
        size_t cap = wk->cap ? wk->cap * 2 : 1024;
        windowkeys_entry **all = realloc(wk->all, cap * sizeof *all);
        if (!all)
            return LS_ENOMEM;
        wk->all = all;
        wk->cap = cap;
    }
    windowkeys_entry *e = malloc(sizeof *e + len + customer_len);
    if (!e)
        return LS_ENOMEM;
    if (note_undo(wk, e, 0) != LS_OK) {
        free(e);
        return LS_ENOMEM;
    }
    e->hash = bytecur_fnv1a32(id, len);
    e->key_ms = key_ms;
    e->id_len = (uint16_t)len;
    e->customer_len = (uint16_t)customer_len;
    e->dead = 0;
    memcpy(e->bytes, id, len);
    memcpy(e->bytes + len, customer, customer_len);
    wk->all[wk->n++] = e;
    slot_insert(wk->slots, wk->nslots, e);
    wk->bytes += sizeof *e + len + customer_len;
    if (key_ms < wk->added_min)
        wk->added_min = key_ms;
    atomic_fetch_add(&wk->live, 1);
    return LS_OK;
}

int windowkeys_kill(windowkeys *wk, windowkeys_entry *e)
{
    if (e->dead)
        return LS_OK;
    if (note_undo(wk, e, 1) != LS_OK)
        return LS_ENOMEM;
    e->dead = 1;
    atomic_fetch_sub(&wk->live, 1);
    return LS_OK;
}

size_t windowkeys_live(const windowkeys *wk)
{
    return atomic_load(&((windowkeys *)wk)->live);
}

size_t windowkeys_bytes(const windowkeys *wk)
{
    return wk->bytes;
}

void windowkeys_committed(windowkeys *wk)
{
    wk->nundo = 0;
    if (wk->slice_pending) {
        for (size_t i = wk->start[wk->slice]; i < wk->start[wk->slice + 1]; i++)
            if (!wk->sweep[i]->dead) {
                wk->sweep[i]->dead = 1;
                atomic_fetch_sub(&wk->live, 1);
            }
        wk->slice_pending = 0;
        if (++wk->slice == WINDOWKEYS_SLICES)
            end_sweep(wk);
    }
    /* the sweep's array points at entries: none is freed while it runs */
    size_t live = windowkeys_live(wk);
    if (!wk->sweeping && wk->n - live > live / 2 + 1024)
        compact(wk);
}

void windowkeys_aborted(windowkeys *wk)
{
    while (wk->nundo > 0) {
        struct windowkeys_undo u = wk->undo[--wk->nundo];
        if (u.killed) {
            u.e->dead = 0;
            atomic_fetch_add(&wk->live, 1);
        } else if (!u.e->dead) {
            u.e->dead = 1;
            atomic_fetch_sub(&wk->live, 1);
        }
    }
    wk->slice_pending = 0;
}

/* The slice of key (len bytes) among bounds b[0..nb) (sorted). */
static int slice_of(const windowkeys_entry *const *b, int nb, const char *key, size_t len)
{
    int lo = 0, hi = nb; /* the first bound above key */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (keycmp(key, len, b[mid]->bytes, b[mid]->id_len) < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int windowkeys_sweep_begin(windowkeys *wk, uint64_t seed)
{
    windowkeys_entry *sample[SAMPLE_MAX];
    const windowkeys_entry *bound[WINDOWKEYS_SLICES - 1];
    size_t n = 0, live = windowkeys_live(wk), count[WINDOWKEYS_SLICES] = {0};
    int nb = 0;
    if (live > wk->sweep_cap) {
        windowkeys_entry **a = realloc(wk->sweep, live * sizeof *a);
        if (!a)
            return LS_ENOMEM;
        wk->sweep = a;
        wk->sweep_cap = live;
    }
    if (live >= SAMPLE_MAX) { /* fewer: one slice of all (a merge each costs a sync) */
        for (size_t i = 0; i < wk->n && n < SAMPLE_MAX; i++) {
            /* about SAMPLE_MAX / 2 of them spread over the whole set */
            seed = seed * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
            if (!wk->all[i]->dead && (seed >> 33) % (2 * live) < SAMPLE_MAX)
                sample[n++] = wk->all[i];
        }
        qsort(sample, n, sizeof *sample, entry_cmp);
        for (; nb < WINDOWKEYS_SLICES - 1 && n > 0; nb++)
            bound[nb] = sample[(size_t)(nb + 1) * n / WINDOWKEYS_SLICES];
    }
    /* count, then place: each live entry once into its slice */
    for (size_t i = 0; i < wk->n; i++)
        if (!wk->all[i]->dead)
            count[slice_of(bound, nb, wk->all[i]->bytes, wk->all[i]->id_len) + WINDOWKEYS_SLICES - 1 - nb]++;
    wk->start[0] = 0;
    for (int i = 0; i < WINDOWKEYS_SLICES; i++) {
        wk->start[i + 1] = wk->start[i] + count[i];
        wk->slice_min[i] = INT64_MAX;
    }
    wk->slice_min[WINDOWKEYS_SLICES] = INT64_MAX;
    size_t at[WINDOWKEYS_SLICES];
    memcpy(at, wk->start, sizeof at);
    for (size_t i = 0; i < wk->n; i++) {
        windowkeys_entry *e = wk->all[i];
        if (e->dead)
            continue;
        int sl = slice_of(bound, nb, e->bytes, e->id_len) + WINDOWKEYS_SLICES - 1 - nb;
        wk->sweep[at[sl]++] = e;
        if (e->key_ms < wk->slice_min[sl])
            wk->slice_min[sl] = e->key_ms;
    }
    for (int i = WINDOWKEYS_SLICES - 1; i >= 0; i--) /* slice_min[i]: of slices i.. */
        if (wk->slice_min[i + 1] < wk->slice_min[i])
            wk->slice_min[i] = wk->slice_min[i + 1];
    wk->added_min = INT64_MAX;
    wk->sweeping = 1;
    wk->slice = nb ? 0 : WINDOWKEYS_SLICES - 1; /* one slice: it is the last */
    return LS_OK;
}

void windowkeys_slice(windowkeys *wk, windowkeys_entry ***out, size_t *n, int *last, int64_t *oldest_left)
{
    int i = wk->slice;
    *out = wk->sweep + wk->start[i];
    *n = wk->start[i + 1] - wk->start[i];
    *last = i == WINDOWKEYS_SLICES - 1;
    *oldest_left = wk->slice_min[i + 1] < wk->added_min ? wk->slice_min[i + 1] : wk->added_min;
    wk->slice_pending = 1;
}

int windowkeys_each(windowkeys *wk, int (*fn)(void *arg, windowkeys_entry *e), void *arg)
{
    for (size_t i = 0; i < wk->n; i++)
        if (!wk->all[i]->dead) {
            int rc = fn(arg, wk->all[i]);
            if (rc)
                return rc;
        }
    return 0;
}
