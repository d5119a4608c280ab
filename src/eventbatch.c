/* eventbatch.c -- a batch of events with their strings in an arena, and
 * writing it into a store (see eventbatch.h). */
#include "eventbatch.h"

#include <stdlib.h>
#include <string.h>

#include "leadscore/error.h"

#define ARENA_CHUNK (1u << 20)

struct eventbatch_chunk {
    eventbatch_chunk *next;
    size_t used, cap;
    char data[];
};

int eventbatch_init(eventbatch *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->ev = malloc((cap ? cap : 1) * sizeof *b->ev);
    b->order = malloc((cap ? cap : 1) * sizeof *b->order);
    if (!b->ev || !b->order) {
        eventbatch_free(b);
        return LS_ENOMEM;
    }
    b->cap = cap;
    return LS_OK;
}

void eventbatch_free(eventbatch *b)
{
    while (b->head) {
        eventbatch_chunk *next = b->head->next;
        free(b->head);
        b->head = next;
    }
    free(b->ev);
    free(b->order);
    memset(b, 0, sizeof *b);
}

void eventbatch_reset(eventbatch *b)
{
    for (eventbatch_chunk *c = b->head; c; c = c->next)
        c->used = 0;
    b->cur = b->head;
    b->n = 0;
}

char *eventbatch_copy(eventbatch *b, const char *s, size_t len)
{
    while (b->cur && b->cur->cap - b->cur->used < len + 1)
        b->cur = b->cur->next;
    if (!b->cur) {
        size_t cap = len + 1 > ARENA_CHUNK ? len + 1 : ARENA_CHUNK;
        eventbatch_chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = b->head; /* reused chunks are found from head on the next batch */
        b->head = c;
        b->cur = c;
    }
    char *at = b->cur->data + b->cur->used;
    if (len)
        memcpy(at, s, len);
    at[len] = '\0';
    b->cur->used += len + 1;
    return at;
}

static int copy_str(eventbatch *b, ls_str *s)
{
    if (!s->len)
        return LS_OK;
    const char *p = eventbatch_copy(b, s->ptr, s->len);
    if (!p)
        return LS_ENOMEM;
    s->ptr = p;
    return LS_OK;
}

int eventbatch_add(eventbatch *b, const ls_event *ev, const ls_event **copy)
{
    if (b->n >= b->cap)
        return LS_ENOMEM;
    ls_event e = *ev;
    int rc;
    if ((rc = copy_str(b, &e.customer)) || (rc = copy_str(b, &e.event_id)) || (rc = copy_str(b, &e.session)) ||
        (rc = copy_str(b, &e.product)) || (rc = copy_str(b, &e.category)) || (rc = copy_str(b, &e.order_id)))
        return rc;
    b->ev[b->n] = e;
    if (copy)
        *copy = &b->ev[b->n];
    b->n++;
    return LS_OK;
}

/* Customer order, then batch order. */
static int by_customer(const void *a, const void *b)
{
    const ls_event *x = *(const ls_event *const *)a, *y = *(const ls_event *const *)b;
    size_t n = x->customer.len < y->customer.len ? x->customer.len : y->customer.len;
    int c = memcmp(x->customer.ptr, y->customer.ptr, n);
    if (c)
        return c;
    if (x->customer.len != y->customer.len)
        return x->customer.len < y->customer.len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* One attempt in one write transaction. */
static int store_try(const eventbatch *b, store *st, store_held *held, const volatile sig_atomic_t *stop,
                     uint64_t *accepted, uint64_t *duplicates)
{
    store_wtxn *txn = NULL;
    int rc = store_write_begin(st, &txn);
    *accepted = *duplicates = 0;
    held->open = 0; /* nothing held yet */
    for (size_t i = 0; rc == LS_OK && i < b->n; i++) {
        int dup = 0;
        if ((rc = store_wtxn_add_event(txn, held, b->order[i], &dup)) == LS_OK)
            *(dup ? duplicates : accepted) += 1;
    }
    if (rc == LS_OK)
        rc = store_wtxn_put_back(txn, held);
    if (rc == LS_OK && stop && *stop)
        rc = EVENTBATCH_STOPPED; /* nothing of this batch is committed */
    if (rc == LS_OK)
        rc = store_write_commit(&txn);
    store_write_abort(&txn);
    held->open = 0;
    return rc;
}

int eventbatch_store(eventbatch *b, store *st, store_held *held, uint64_t map_max,
                     const volatile sig_atomic_t *stop, uint64_t *accepted, uint64_t *duplicates)
{
    uint64_t acc = 0, dups = 0;
    int rc;
    for (size_t i = 0; i < b->n; i++)
        b->order[i] = &b->ev[i];
    qsort(b->order, b->n, sizeof *b->order, by_customer);
    while ((rc = store_try(b, st, held, stop, &acc, &dups)) == LS_EFULL)
        if (store_grow(st, map_max) != LS_OK)
            break;
    if (rc == LS_OK) {
        if (accepted)
            *accepted = acc;
        if (duplicates)
            *duplicates = dups;
    }
    return rc;
}
