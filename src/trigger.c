/* trigger.c -- the trigger outbox and the timer queue in the store (see
 * trigger.h).
 *
 * trigger_outbox: be64 seq -> the trigger's msgpack map; the reserved key
 * of 8 zero bytes (seq 0, never a trigger) holds the store id, and the
 * reserved key of 8 zero bytes and a 1 (9 bytes: it sorts after the store
 * id and before seq 1, so no scan from seq 1 meets it) holds be64 the
 * highest seq ever written once triggers were erased (forget, pruning):
 * numbering goes on from there, so a seq and an id are never given twice
 * even when the newest triggers are gone.
 * trigger_timers: be64 due_ms + customer id -> "".
 * trigger_by_customer: be16 id length + customer id + be64 seq -> "" (an
 * index, so forget can erase a customer's triggers). */
#include "trigger.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bytecur.h"
#include "leadscore/error.h"

static const uint8_t STORE_ID_KEY[8] = {0};
static const uint8_t HIGH_SEQ_KEY[9] = {0, 0, 0, 0, 0, 0, 0, 0, 1};

/* The seq of a last key (0 when it is not a trigger's). */
static uint64_t key_seq(const store_bytes *k)
{
    return k->len == 8 ? bytecur_load_be64(k->ptr) : 0;
}

/* The highest seq written: the newest trigger held, or the high-water mark
 * left when newer ones were erased. */
static int highest_seq_w(store_wtxn *w, uint64_t *out)
{
    store_bytes k, v;
    *out = 0;
    int rc = store_wtxn_tlast(w, STORE_T_OUTBOX, &k);
    if (rc && rc != LS_ENOTFOUND)
        return rc;
    if (rc == LS_OK)
        *out = key_seq(&k);
    rc = store_wtxn_tget(w, STORE_T_OUTBOX, HIGH_SEQ_KEY, sizeof HIGH_SEQ_KEY, &v);
    if (rc && rc != LS_ENOTFOUND)
        return rc;
    if (rc == LS_OK && v.len == 8 && bytecur_load_be64(v.ptr) > *out)
        *out = bytecur_load_be64(v.ptr);
    return LS_OK;
}

/* Before triggers are erased: keeps the highest seq written, so the next
 * one is numbered after it (written only when it moved). */
static int keep_high_seq(store_wtxn *w)
{
    uint64_t high;
    uint8_t b[8];
    store_bytes v;
    int rc = highest_seq_w(w, &high);
    if (rc || high == 0)
        return rc;
    if (store_wtxn_tget(w, STORE_T_OUTBOX, HIGH_SEQ_KEY, sizeof HIGH_SEQ_KEY, &v) == LS_OK && v.len == 8 &&
        bytecur_load_be64(v.ptr) == high)
        return LS_OK;
    bytecur_store_be64(b, high);
    return store_wtxn_tput(w, STORE_T_OUTBOX, HIGH_SEQ_KEY, sizeof HIGH_SEQ_KEY, b, 8);
}

const char *trigger_kind_name(trigger_kind k)
{
    return k == TRIGGER_ENTER ? "enter" : k == TRIGGER_EXIT ? "exit" : "moment";
}

void trigger_outbox_init(trigger_outbox *o)
{
    memset(o, 0, sizeof *o);
    codec_writer_init(&o->cw);
}

void trigger_outbox_free(trigger_outbox *o)
{
    codec_writer_destroy(&o->cw);
}

static uint64_t fresh_store_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    return id ? id : 1;
}

int trigger_outbox_begin(trigger_outbox *o, store_wtxn *w)
{
    store_bytes v;
    o->appended = 0;
    int rc = store_wtxn_tget(w, STORE_T_OUTBOX, STORE_ID_KEY, 8, &v);
    if (rc == LS_OK && v.len == 8) {
        o->store_id = bytecur_load_be64(v.ptr);
    } else if (rc == LS_OK || rc == LS_ENOTFOUND) {
        uint8_t b[8];
        o->store_id = fresh_store_id();
        bytecur_store_be64(b, o->store_id);
        if ((rc = store_wtxn_tput(w, STORE_T_OUTBOX, STORE_ID_KEY, 8, b, 8)) != LS_OK)
            return rc;
    } else {
        return rc;
    }
    uint64_t high;
    if ((rc = highest_seq_w(w, &high)) != LS_OK)
        return rc;
    o->next_seq = high + 1;
    if (o->next_seq == 0)
        o->next_seq = 1;
    return LS_OK;
}

static void kv_str(codec_writer *w, const char *k, const char *v)
{
    cw_key(w, k);
    cw_str(w, v ? v : "");
}

static void encode(codec_writer *cw, const trigger_record *t, uint64_t store_id, uint64_t seq)
{
    char id[48];
    snprintf(id, sizeof id, "%016" PRIx64 "-%" PRIu64, store_id, seq);
    codec_writer_reset(cw);
    cw_map(cw);
    cw_key(cw, "seq");
    cw_int(cw, (int64_t)seq);
    kv_str(cw, "id", id);
    cw_key(cw, "customer");
    cw_strn(cw, t->customer, t->customer_len);
    kv_str(cw, "kind", trigger_kind_name(t->kind));
    kv_str(cw, "name", t->name);
    cw_key(cw, "at");
    cw_int(cw, t->at_ms);
    cw_key(cw, "score");
    cw_double(cw, t->score);
    kv_str(cw, "tier", t->tier);
    kv_str(cw, "phase", t->phase);
    kv_str(cw, "customer_type", t->customer_type);
    cw_key(cw, "clv");
    cw_double(cw, t->clv);
    kv_str(cw, "segment", t->segment);
    if (t->kind == TRIGGER_MOMENT && t->value > 0) {
        cw_key(cw, "value");
        cw_double(cw, t->value);
    }
    cw_end(cw);
}

/* The by-customer index key of (id, seq); seq UINT64_MAX is left out (a
 * prefix).  Returns its length, 0 when the id is too long to index. */
static size_t index_key(uint8_t *key, const char *id, size_t len, uint64_t seq, int with_seq)
{
    if (len > STORE_MAX_KEY - 10)
        return 0;
    key[0] = (uint8_t)(len >> 8);
    key[1] = (uint8_t)len;
    memcpy(key + 2, id, len);
    if (with_seq)
        bytecur_store_be64(key + 2 + len, seq);
    return 2 + len + (with_seq ? 8 : 0);
}

int trigger_append(trigger_outbox *o, store_wtxn *w, const trigger_record *t, uint64_t *seq)
{
    uint8_t key[8], ikey[STORE_MAX_KEY];
    size_t ilen = index_key(ikey, t->customer, t->customer_len, o->next_seq, 1);
    if (ilen == 0)
        return LS_ETOOLARGE;
    encode(&o->cw, t, o->store_id, o->next_seq);
    bytecur_store_be64(key, o->next_seq);
    int rc = store_wtxn_tput(w, STORE_T_OUTBOX, key, 8, o->cw.sb.data, o->cw.sb.size);
    if (rc == LS_OK)
        rc = store_wtxn_tput(w, STORE_T_BY_CUSTOMER, ikey, ilen, "", 0);
    if (rc)
        return rc;
    if (seq)
        *seq = o->next_seq;
    o->next_seq++;
    o->appended++;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Pruning                                                             */
/* ------------------------------------------------------------------ */

/* The "at" and "customer" of a stored trigger (customer copied into
 * cust, at most cap bytes; *cust_len 0 when absent).  *at is INT64_MIN
 * when unreadable. */
static void stored_fields(const uint8_t *p, size_t len, int64_t *at, char *cust, size_t cap, size_t *cust_len)
{
    msgpack_zone zone;
    msgpack_object o;
    size_t off = 0;
    *at = INT64_MIN;
    *cust_len = 0;
    msgpack_zone_init(&zone, 512);
    if (msgpack_unpack(len ? (const char *)p : "", len, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS &&
        o.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o.via.map.size; i++) {
            const msgpack_object_kv *kv = &o.via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            if (kv->key.via.str.size == 2 && memcmp(kv->key.via.str.ptr, "at", 2) == 0) {
                if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                    *at = (int64_t)kv->val.via.u64;
                else if (kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                    *at = kv->val.via.i64;
            } else if (kv->key.via.str.size == 8 && memcmp(kv->key.via.str.ptr, "customer", 8) == 0 &&
                       kv->val.type == MSGPACK_OBJECT_STR && kv->val.via.str.size <= cap) {
                memcpy(cust, kv->val.via.str.ptr, kv->val.via.str.size);
                *cust_len = kv->val.via.str.size;
            }
        }
    }
    msgpack_zone_destroy(&zone);
}

/* Deletes trigger seq from the outbox and its index entry. */
static int delete_trigger(store_wtxn *w, uint64_t seq, const char *customer, size_t len)
{
    uint8_t key[8], ikey[STORE_MAX_KEY];
    bytecur_store_be64(key, seq);
    int rc = store_wtxn_tdel(w, STORE_T_OUTBOX, key, 8);
    if (rc && rc != LS_ENOTFOUND)
        return rc;
    size_t ilen = index_key(ikey, customer, len, seq, 1);
    if (ilen && (rc = store_wtxn_tdel(w, STORE_T_BY_CUSTOMER, ikey, ilen)) && rc != LS_ENOTFOUND)
        return rc;
    return LS_OK;
}

typedef struct {
    int64_t before_ms;
    size_t over;           /* the oldest this many go whatever their age */
    size_t max, n;
    uint64_t seqs[1024];
    uint16_t cust_len[1024];
    char (*cust)[STORE_MAX_KEY];
} prune_ctx;

static int prune_pick(void *arg, const store_bytes *key, const store_bytes *val)
{
    prune_ctx *pc = arg;
    if (key->len != 8)
        return 1;
    uint64_t seq = bytecur_load_be64(key->ptr);
    if (seq == 0)
        return 0; /* the store id */
    if (pc->n == pc->max || pc->n == sizeof pc->seqs / sizeof pc->seqs[0])
        return 1;
    int64_t at;
    size_t clen;
    stored_fields(val->ptr, val->len, &at, pc->cust[pc->n], STORE_MAX_KEY, &clen);
    if (pc->n >= pc->over && at >= pc->before_ms)
        return 1; /* the oldest left is young enough, and within the count */
    pc->cust_len[pc->n] = (uint16_t)clen;
    pc->seqs[pc->n++] = seq;
    return 0;
}

/* How many triggers the outbox holds: its keys but the reserved ones. */
static int outbox_count(store_wtxn *w, size_t *n)
{
    static const store_bytes reserved[] = {{STORE_ID_KEY, sizeof STORE_ID_KEY},
                                           {HIGH_SEQ_KEY, sizeof HIGH_SEQ_KEY}};
    int rc = store_wtxn_tcount(w, STORE_T_OUTBOX, n);
    for (size_t i = 0; rc == LS_OK && i < sizeof reserved / sizeof *reserved; i++) {
        store_bytes v;
        rc = store_wtxn_tget(w, STORE_T_OUTBOX, reserved[i].ptr, reserved[i].len, &v);
        if (rc == LS_OK && *n > 0)
            (*n)--;
        rc = rc == LS_ENOTFOUND ? LS_OK : rc;
    }
    return rc;
}

int trigger_prune(store_wtxn *w, int64_t before_ms, uint64_t keep_max, size_t max, size_t *pruned)
{
    size_t held;
    prune_ctx pc = {before_ms, 0, max, 0, {0}, {0}, NULL};
    *pruned = 0;
    int rc = outbox_count(w, &held);
    if (rc || held == 0)
        return rc;
    char (*cust)[STORE_MAX_KEY] = malloc(sizeof(*cust) * 1024);
    if (!cust)
        return LS_ENOMEM;
    pc.cust = cust;
    pc.over = held > keep_max ? held - keep_max : 0;
    uint8_t from[8];
    bytecur_store_be64(from, 1);
    rc = store_wtxn_tscan(w, STORE_T_OUTBOX, from, 8, prune_pick, &pc);
    if (rc == 1)
        rc = LS_OK;
    if (rc == LS_OK && pc.n > 0) /* only when something goes: no write on a quiet tick */
        rc = keep_high_seq(w);
    for (size_t i = 0; i < pc.n && rc == LS_OK; i++)
        rc = delete_trigger(w, pc.seqs[i], pc.cust[i], pc.cust_len[i]);
    free(cust);
    if (rc == LS_OK)
        *pruned = pc.n;
    return rc;
}

typedef struct {
    const uint8_t *prefix;
    size_t prefix_len;
    uint64_t seqs[512];
    size_t n;
} forget_ctx;

static int forget_pick(void *arg, const store_bytes *key, const store_bytes *val)
{
    forget_ctx *fc = arg;
    (void)val;
    if (key->len != fc->prefix_len + 8 || memcmp(key->ptr, fc->prefix, fc->prefix_len) != 0 ||
        fc->n == sizeof fc->seqs / sizeof fc->seqs[0])
        return 1;
    fc->seqs[fc->n++] = bytecur_load_be64(key->ptr + fc->prefix_len);
    return 0;
}

int trigger_forget(store_wtxn *w, const char *id, size_t len, size_t *erased)
{
    uint8_t prefix[STORE_MAX_KEY];
    size_t plen = index_key(prefix, id, len, 0, 0);
    *erased = 0;
    if (plen == 0)
        return LS_OK;
    int rc;
    for (int first = 1;; first = 0) {
        forget_ctx fc = {prefix, plen, {0}, 0};
        rc = store_wtxn_tscan(w, STORE_T_BY_CUSTOMER, prefix, plen, forget_pick, &fc);
        if (rc != LS_OK && rc != 1)
            return rc;
        if (fc.n == 0)
            return LS_OK;
        if (first && (rc = keep_high_seq(w)) != LS_OK)
            return rc;
        for (size_t i = 0; i < fc.n; i++)
            if ((rc = delete_trigger(w, fc.seqs[i], id, len)) != LS_OK)
                return rc;
        *erased += fc.n;
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

typedef struct {
    size_t limit, n;
    trigger_fn fn;
    void *arg;
    uint64_t first;
} read_ctx;

static int read_one(void *arg, const store_bytes *key, const store_bytes *val)
{
    read_ctx *rc = arg;
    if (key->len != 8)
        return 1;
    uint64_t seq = bytecur_load_be64(key->ptr);
    if (seq == 0)
        return 0;
    if (!rc->first)
        rc->first = seq;
    if (rc->n == rc->limit)
        return 1;
    rc->n++;
    int st = rc->fn(rc->arg, seq, val->ptr, val->len);
    return st ? st : 0;
}

typedef struct {
    uint64_t first;
} first_ctx;

static int first_one(void *arg, const store_bytes *key, const store_bytes *val)
{
    first_ctx *fc = arg;
    (void)val;
    if (key->len == 8 && bytecur_load_be64(key->ptr) != 0) {
        fc->first = bytecur_load_be64(key->ptr);
        return 1;
    }
    return 0;
}

int trigger_read(store_reader *r, uint64_t from, size_t limit, trigger_fn fn, void *arg, uint64_t *first,
                 uint64_t *last)
{
    store_bytes k, v;
    uint8_t start[8];
    *first = *last = 0;
    int rc = store_reader_tlast(r, STORE_T_OUTBOX, &k);
    if (rc == LS_ENOTFOUND)
        return LS_OK;
    if (rc)
        return rc;
    *last = key_seq(&k);
    /* triggers erased past the newest held: the numbering's high-water mark */
    rc = store_reader_tget(r, STORE_T_OUTBOX, HIGH_SEQ_KEY, sizeof HIGH_SEQ_KEY, &v);
    if (rc && rc != LS_ENOTFOUND)
        return rc;
    if (rc == LS_OK && v.len == 8 && bytecur_load_be64(v.ptr) > *last)
        *last = bytecur_load_be64(v.ptr);
    first_ctx fc = {0};
    bytecur_store_be64(start, 1);
    if ((rc = store_reader_tscan(r, STORE_T_OUTBOX, start, 8, first_one, &fc)) != LS_OK && rc != 1)
        return rc;
    *first = fc.first;
    if (from == UINT64_MAX || from >= *last || limit == 0)
        return LS_OK;
    read_ctx rcx = {limit, 0, fn, arg, 0};
    bytecur_store_be64(start, from + 1);
    rc = store_reader_tscan(r, STORE_T_OUTBOX, start, 8, read_one, &rcx);
    return rc == 1 ? LS_OK : rc;
}

/* ------------------------------------------------------------------ */
/* The timer queue                                                     */
/* ------------------------------------------------------------------ */

static size_t timer_key(uint8_t *key, int64_t due_ms, const char *id, size_t len)
{
    bytecur_store_be64(key, (uint64_t)due_ms);
    memcpy(key + 8, id, len);
    return 8 + len;
}

int trigger_timer_move(store_wtxn *w, const char *id, size_t len, int64_t old_due_ms, int64_t due_ms)
{
    uint8_t key[8 + STORE_MAX_KEY];
    int rc;
    if (len > STORE_MAX_KEY - 8)
        return LS_ETOOLARGE;
    if (old_due_ms == due_ms)
        return LS_OK;
    if (old_due_ms > 0) {
        rc = store_wtxn_tdel(w, STORE_T_TIMERS, key, timer_key(key, old_due_ms, id, len));
        if (rc && rc != LS_ENOTFOUND)
            return rc;
    }
    if (due_ms > 0 && (rc = store_wtxn_tput(w, STORE_T_TIMERS, key, timer_key(key, due_ms, id, len), "", 0)))
        return rc;
    return LS_OK;
}

typedef struct {
    int64_t now_ms;
    size_t max, n;
    uint8_t *buf;          /* keys, each as u16 length + bytes */
    size_t used, cap;
} due_ctx;

static int due_pick(void *arg, const store_bytes *key, const store_bytes *val)
{
    due_ctx *dc = arg;
    (void)val;
    if (key->len <= 8 || (int64_t)bytecur_load_be64(key->ptr) > dc->now_ms || dc->n == dc->max ||
        dc->used + 2 + key->len > dc->cap)
        return 1;
    dc->buf[dc->used] = (uint8_t)(key->len >> 8);
    dc->buf[dc->used + 1] = (uint8_t)key->len;
    memcpy(dc->buf + dc->used + 2, key->ptr, key->len);
    dc->used += 2 + key->len;
    dc->n++;
    return 0;
}

int trigger_timer_take(store_wtxn *w, int64_t now_ms, size_t max, trigger_due_fn fn, void *arg, size_t *taken)
{
    enum { CAP = 1 << 18 };
    due_ctx dc = {now_ms, max, 0, malloc(CAP), 0, CAP};
    *taken = 0;
    if (!dc.buf)
        return LS_ENOMEM;
    int rc = store_wtxn_tscan(w, STORE_T_TIMERS, NULL, 0, due_pick, &dc);
    if (rc == 1)
        rc = LS_OK;
    for (size_t at = 0; rc == LS_OK && at < dc.used;) {
        size_t len = (size_t)dc.buf[at] << 8 | dc.buf[at + 1];
        const uint8_t *key = dc.buf + at + 2;
        rc = store_wtxn_tdel(w, STORE_T_TIMERS, key, len);
        if (rc == LS_OK)
            rc = fn(arg, (const char *)key + 8, len - 8, (int64_t)bytecur_load_be64(key));
        at += 2 + len;
    }
    *taken = dc.n;
    free(dc.buf);
    return rc;
}

static int first_due(void *arg, const store_bytes *key, const store_bytes *val)
{
    (void)val;
    *(int64_t *)arg = key->len > 8 ? (int64_t)bytecur_load_be64(key->ptr) : 0;
    return 1;
}

int64_t trigger_timer_first(store_wtxn *w)
{
    int64_t due = 0;
    store_wtxn_tscan(w, STORE_T_TIMERS, NULL, 0, first_due, &due);
    return due;
}
