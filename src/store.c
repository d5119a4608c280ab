/* store.c -- LMDB behind the store.h interface: opening and versioning the
 * environment, per-thread read snapshots, and the writer's transactions. */
#define _POSIX_C_SOURCE 200809L
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "leadscore/error.h"

#define DEFAULT_MAP_SIZE (64ULL << 30)
#define DEFAULT_MAX_READERS 126

struct store {
    MDB_env *env;
    MDB_dbi meta, customers, event_ids, event_ids_by_time;
    feature_decay decay;
    int read_only;
};

struct store_reader {
    store *s;
    MDB_txn *txn;
    int active;
};

struct store_wtxn {
    store *s;
    MDB_txn *txn;
};

/* Maps an LMDB or errno code to a status. */
static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return LS_OK;
    case MDB_NOTFOUND: return LS_ENOTFOUND;
    case MDB_MAP_FULL: return LS_EFULL;
    case ENOSPC: return LS_EFULL;
    case ENOMEM: return LS_ENOMEM;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return LS_EVERSION;
    default: return rc == EIO || rc == EACCES || rc == ENOENT || rc == EROFS ? LS_EIO : LS_EINTERNAL;
    }
}

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static int open_env(store *s, const char *dir, const store_options *opt, char *err, size_t errlen)
{
    int rc;
    if (!opt->read_only && mkdir(dir, 0750) != 0 && errno != EEXIST) {
        say(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        return LS_EIO;
    }
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(s->env, 8);
    mdb_env_set_maxreaders(s->env, opt->max_readers ? opt->max_readers : DEFAULT_MAX_READERS);
    mdb_env_set_mapsize(s->env, opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE);
    unsigned flags = MDB_NOTLS;
    if (opt->no_sync)
        flags |= MDB_NOSYNC;
    if (opt->read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_open(s->env, dir, flags, 0640)) != 0)
        goto fail;
    return LS_OK;
fail:
    say(err, errlen, "cannot open store in %s: %s", dir, mdb_strerror(rc));
    return from_mdb(rc);
}

/* Reads or writes the schema version and half-lives in meta. */
static int check_meta(store *s, MDB_txn *txn, const feature_decay *decay, char *err, size_t errlen)
{
    MDB_val k = {6, "schema"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (s->read_only) {
            say(err, errlen, "the data directory holds no leadscore store yet");
            return LS_ENOTFOUND;
        }
        uint32_t version = STORE_SCHEMA_VERSION;
        int64_t hl[2] = {decay->short_ms, decay->long_ms};
        MDB_val vv = {sizeof version, &version}, dk = {5, "decay"}, dv = {sizeof hl, hl};
        if ((rc = mdb_put(txn, s->meta, &k, &vv, 0)) || (rc = mdb_put(txn, s->meta, &dk, &dv, 0)))
            return from_mdb(rc);
        s->decay = *decay;
        return LS_OK;
    }
    if (rc != 0 || v.mv_size != sizeof(uint32_t))
        return LS_EPARSE;
    uint32_t version;
    memcpy(&version, v.mv_data, sizeof version);
    if (version > STORE_SCHEMA_VERSION) {
        say(err, errlen, "this store has schema version %u but this leadscore only understands up to %u: "
            "run a newer leadscore on it", version, STORE_SCHEMA_VERSION);
        return LS_EVERSION;
    }
    MDB_val dk = {5, "decay"}, dv;
    if (mdb_get(txn, s->meta, &dk, &dv) != 0 || dv.mv_size != 2 * sizeof(int64_t))
        return LS_EPARSE;
    int64_t hl[2];
    memcpy(hl, dv.mv_data, sizeof hl);
    s->decay.short_ms = hl[0];
    s->decay.long_ms = hl[1];
    return LS_OK;
}

static int open_dbs(store *s, const feature_decay *decay, char *err, size_t errlen)
{
    MDB_txn *txn;
    unsigned create = s->read_only ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc)
        return from_mdb(rc);
    if ((rc = mdb_dbi_open(txn, "meta", create, &s->meta)) ||
        (rc = mdb_dbi_open(txn, "customers", create, &s->customers)) ||
        (rc = mdb_dbi_open(txn, "event_ids", create, &s->event_ids)) ||
        (rc = mdb_dbi_open(txn, "event_ids_by_time", create, &s->event_ids_by_time))) {
        mdb_txn_abort(txn);
        say(err, errlen, "%s: %s", rc == MDB_NOTFOUND ? "the data directory holds no leadscore store yet"
                                                      : "cannot open the store's tables", mdb_strerror(rc));
        return rc == MDB_NOTFOUND ? LS_ENOTFOUND : from_mdb(rc);
    }
    int st = check_meta(s, txn, decay, err, errlen);
    if (st) {
        mdb_txn_abort(txn);
        if (st == LS_EPARSE)
            say(err, errlen, "the store's meta record is corrupt");
        return st;
    }
    /* committing (even a read-only txn) keeps the table handles open */
    return from_mdb(mdb_txn_commit(txn));
}

int store_open(store **out, const char *dir, const store_options *opt,
               const feature_decay *decay, char *err, size_t errlen)
{
    static const store_options defaults = {0};
    *out = NULL;
    if (!opt)
        opt = &defaults;
    store *s = calloc(1, sizeof *s);
    if (!s)
        return LS_ENOMEM;
    s->read_only = opt->read_only;
    int rc = open_env(s, dir, opt, err, errlen);
    if (rc == LS_OK)
        rc = open_dbs(s, decay, err, errlen);
    if (rc != LS_OK) {
        store_close(&s);
        return rc;
    }
    *out = s;
    return LS_OK;
}

void store_close(store **sp)
{
    if (!sp || !*sp)
        return;
    if ((*sp)->env)
        mdb_env_close((*sp)->env);
    free(*sp);
    *sp = NULL;
}

const feature_decay *store_decay(const store *s)
{
    return &s->decay;
}

int store_stat(store *s, store_stats *out)
{
    MDB_txn *txn;
    MDB_stat st;
    MDB_envinfo info;
    memset(out, 0, sizeof *out);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return from_mdb(rc);
    if (mdb_stat(txn, s->customers, &st) == 0)
        out->customers = st.ms_entries;
    if (mdb_stat(txn, s->event_ids, &st) == 0)
        out->event_ids = st.ms_entries;
    mdb_txn_abort(txn);
    mdb_env_stat(s->env, &st);
    mdb_env_info(s->env, &info);
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    out->map_bytes = info.me_mapsize;
    return LS_OK;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

int store_reader_open(store *s, store_reader **out)
{
    store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return LS_ENOMEM;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        free(r);
        return from_mdb(rc);
    }
    mdb_txn_reset(r->txn);
    r->s = s;
    *out = r;
    return LS_OK;
}

void store_reader_close(store_reader **rp)
{
    if (!rp || !*rp)
        return;
    mdb_txn_abort((*rp)->txn);
    free(*rp);
    *rp = NULL;
}

int store_reader_begin(store_reader *r)
{
    if (r->active)
        mdb_txn_reset(r->txn);
    int rc = mdb_txn_renew(r->txn);
    r->active = rc == 0;
    return from_mdb(rc);
}

void store_reader_end(store_reader *r)
{
    if (r->active)
        mdb_txn_reset(r->txn);
    r->active = 0;
}

static int get_record(MDB_txn *txn, MDB_dbi dbi, const char *id, size_t len, ls_features *out)
{
    MDB_val k = {len, (void *)id}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) {
        feature_init(out);
        return from_mdb(rc);
    }
    return feature_decode(out, v.mv_data, v.mv_size);
}

int store_reader_get(store_reader *r, const char *id, size_t len, ls_features *out)
{
    if (len == 0 || len > 511) {
        feature_init(out);
        return LS_ENOTFOUND;
    }
    return get_record(r->txn, r->s->customers, id, len, out);
}

int store_reader_scan(store_reader *r, store_visit_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k, v;
    ls_features f;
    int rc = mdb_cursor_open(r->txn, r->s->customers, &cur);
    if (rc)
        return from_mdb(rc);
    int st = LS_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (feature_decode(&f, v.mv_data, v.mv_size) != LS_OK)
            continue; /* a record this binary cannot read is skipped, not fatal */
        if ((st = fn(arg, k.mv_data, k.mv_size, &f)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != MDB_NOTFOUND && rc != 0)
        st = from_mdb(rc);
    return st;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

int store_write_begin(store *s, store_wtxn **out)
{
    store_wtxn *w = calloc(1, sizeof *w);
    if (!w)
        return LS_ENOMEM;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    if (rc) {
        free(w);
        return from_mdb(rc);
    }
    w->s = s;
    *out = w;
    return LS_OK;
}

int store_write_commit(store_wtxn **wp)
{
    int rc = mdb_txn_commit((*wp)->txn);
    free(*wp);
    *wp = NULL;
    return from_mdb(rc);
}

void store_write_abort(store_wtxn **wp)
{
    if (!wp || !*wp)
        return;
    mdb_txn_abort((*wp)->txn);
    free(*wp);
    *wp = NULL;
}

int store_wtxn_get(store_wtxn *w, const char *id, size_t len, ls_features *out)
{
    return get_record(w->txn, w->s->customers, id, len, out);
}

int store_wtxn_put(store_wtxn *w, const char *id, size_t len, const ls_features *f)
{
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n;
    int rc = feature_encode(f, buf, sizeof buf, &n);
    if (rc)
        return rc;
    MDB_val k = {len, (void *)id}, v = {n, buf};
    return from_mdb(mdb_put(w->txn, w->s->customers, &k, &v, 0));
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t read_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int store_wtxn_claim_event_id(store_wtxn *w, const char *eid, size_t eid_len,
                              const char *customer, size_t customer_len,
                              int64_t received_ms, int *seen)
{
    uint8_t val[8 + EVENT_MAX_STR], tkey[8 + EVENT_MAX_STR];
    if (eid_len == 0 || eid_len > EVENT_MAX_STR || customer_len > EVENT_MAX_STR)
        return LS_EINVAL;
    MDB_val k = {eid_len, (void *)eid};
    memcpy(val, &received_ms, 8);
    memcpy(val + 8, customer, customer_len);
    MDB_val v = {8 + customer_len, val};
    int rc = mdb_put(w->txn, w->s->event_ids, &k, &v, MDB_NOOVERWRITE);
    *seen = rc == MDB_KEYEXIST;
    if (rc == MDB_KEYEXIST)
        return LS_OK;
    if (rc)
        return from_mdb(rc);
    be64(tkey, (uint64_t)received_ms);
    memcpy(tkey + 8, eid, eid_len);
    MDB_val tk = {8 + eid_len, tkey}, tv = {0, ""};
    return from_mdb(mdb_put(w->txn, w->s->event_ids_by_time, &tk, &tv, 0));
}

int store_wtxn_prune_event_ids(store_wtxn *w, int64_t cutoff_ms, size_t max, size_t *pruned)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    int rc = mdb_cursor_open(w->txn, w->s->event_ids_by_time, &cur);
    if (rc)
        return from_mdb(rc);
    while (n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size < 8 || (int64_t)read_be64(k.mv_data) >= cutoff_ms)
            break;
        MDB_val ek = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
        rc = mdb_del(w->txn, w->s->event_ids, &ek, NULL);
        if (rc && rc != MDB_NOTFOUND)
            break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    *pruned = n;
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}
