/* store.c -- LMDB behind the store.h interface: opening and versioning the
 * environment, per-thread read snapshots, and the writer's transactions. */
#define _GNU_SOURCE
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bytecur.h"
#include "error_internal.h"
#include "storefile.h"
#include "timefmt.h"
#include "idfilter.h"
#include "valuememo.h"
#include "windowkeys.h"

#define DEFAULT_MAP_SIZE (1ULL << 30)
#define DEFAULT_MAX_READERS 126

/* Window keys (windowkeys.h).  A sweep starts when the unmerged keys
 * reach an eighth of event_ids (at least WK_MIN_MERGE), or WK_MAX_BYTES of
 * memory, or when the writer is idle and the last sweep ended
 * WK_IDLE_SWEEP_MS ago. */
#define WK_MIN_MERGE 4096
#define WK_MAX_BYTES (64u << 20)
#define WK_IDLE_SWEEP_MS 600000
/* meta key, an i64 (ms): no event_ids_by_time key older than it has its
 * id missing from event_ids.  A claim lowers it to its own time, in its
 * txn; a merge raises it to the oldest key left unmerged. */
#define WK_MARK_KEY "window_merged_before"
/* The filter of merged ids is sized for twice the ids event_ids holds
 * (merged and about to be), and at least for this many. */
#define ID_FILTER_MIN_KEYS (1u << 20)
/* How many keys ahead a merge or a filter's scan fetches a key's block
 * of the filter (a miss in a big one). */
#define FILTER_AHEAD 8

struct store {
    MDB_env *env;
    MDB_dbi meta, customers, event_ids, event_ids_by_time, aliases, alias_targets;
    MDB_dbi tables[STORE_T_COUNT]; /* the automation tables (store_table) */
    int has_tables;    /* 0 for an older store opened read-only (they read as empty) */
    feature_decay decay;
    int64_t retention_ms;
    int read_only;
    int has_aliases;   /* 0 only for a version-1 store opened read-only */
    int lock_fd;       /* the writer lock (storefile.h); -1 when read-only */
    int lock_created;  /* this open made the lock file: a refused open removes it */
    unsigned new_files; /* LMDB's files this (writer's) open makes (storefile_missing): a refused one removes them */
    atomic_uint_fast64_t stale_cleared; /* reader slots of dead processes cleared */
    /* Snapshots hold it shared; store_grow holds it alone while LMDB
     * remaps (writer-preferring, so a steady read load cannot starve it). */
    pthread_rwlock_t map_lock;
    /* The customer values the running write txn wrote (valuememo.h):
     * the store's, reused from txn to txn, as one write txn runs at a
     * time; cleared when one begins.  Kept only when memo_on
     * (store_memo_writes). */
    valuememo memo;
    int memo_on;
    /* The window keys claimed and not yet merged into event_ids
     * (windowkeys.h): the writer's, like the memo. */
    windowkeys wk;
    int64_t wk_mark;         /* WK_MARK_KEY as the running txn leaves it */
    int64_t wk_swept_ms;     /* when the last sweep ended (merge's clock) */
    uint64_t wk_table_keys;  /* event_ids' entries, as of the last merge */
    uint64_t ids_min_keys;   /* store_options.id_filter_min_keys, or ID_FILTER_MIN_KEYS */
    /* The filter of the ids merged into event_ids (idfilter.h), the
     * writer's like the window keys, used only inside write txns.
     * `ids` answers claims once it is whole (its words then non-NULL);
     * `ids_next` is being built by a scan of event_ids
     * (store_build_id_filter), which resumes after the key ids_resume.
     * A merge adds each id to both, so an id merged behind the scan is
     * in the new filter too. */
    idfilter ids, ids_next;
    int ids_building, ids_resume_set;
    uint8_t ids_resume[STORE_MAX_KEY];
    size_t ids_resume_len;
    atomic_uint_fast64_t ids_bytes, ids_skipped; /* for store_stat, from any thread */
};

struct store_reader {
    store *s;
    MDB_txn *txn;
    int active;
    history h;         /* scratch for as-of reads */
};

enum { WC_CUSTOMERS, WC_EVENT_IDS, WC_EVENT_TIMES, WC_COUNT };

struct store_wtxn {
    store *s;
    MDB_txn *txn;
    /* One cursor per table the writer writes a row of per event or per
     * customer (wcursor): the customers of a run are held and written in
     * key order, and the event ids of one batch are mostly consecutive,
     * so a cursor finds the next key on the leaf it stands on without
     * descending the tree again.  Opened on first use; LMDB closes them
     * with the txn. */
    MDB_cursor *cur[WC_COUNT];
    uint64_t writes;   /* puts and deletes handed to LMDB (store_wtxn_writes) */
    int64_t wk_mark_before; /* s->wk_mark when the txn began: restored if it aborts */
    uint8_t *buf, *copy;  /* store_wtxn_put_state's encoding and copy buffers */
    size_t buf_cap, copy_cap;
    char damaged[STORE_MAX_KEY]; /* the first customer whose value could not be decoded (store_wtxn_damaged) */
    size_t damaged_len;
};

/* Maps an LMDB or errno code to a status. */
static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return LS_OK;
    case MDB_NOTFOUND: return LS_ENOTFOUND;
    case MDB_MAP_FULL: return LS_EFULL;
    case ENOSPC:       /* the disk is full: growing the map would not help */
    case EDQUOT:
    case EFBIG: return LS_EUNAVAIL;
    case ENOMEM: return LS_ENOMEM;
    case MDB_BAD_VALSIZE: return LS_ETOOLARGE; /* a key past LMDB's limit */
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return LS_EVERSION;
    default: return rc == EIO || rc == EACCES || rc == ENOENT || rc == EROFS ? LS_EIO : LS_EINTERNAL;
    }
}

/* LMDB reports a write that the disk cut short (it filled up during the
 * write) as EIO, not ENOSPC: an EIO while the store's file system has
 * (almost) no room left is taken for what it is, a full disk, so the
 * writer answers `unavailable` "disk is full" instead of an internal
 * error.  Any other code passes through. */
#define DISK_FULL_BELOW (1u << 20) /* free bytes under which an EIO means "full" */
static int disk_full_as_such(const store *s, int rc)
{
    int fd;
    struct statvfs vfs;
    if (rc != EIO || mdb_env_get_fd(s->env, &fd) != 0 || fstatvfs(fd, &vfs) != 0)
        return rc;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < DISK_FULL_BELOW ? ENOSPC : rc;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static int fault_commit(void);

/* The files before LMDB maps them: a writer takes the directory's lock
 * first (so no other writer changes them under the check), then data.mdb
 * is checked. */
static int check_files(store *s, const char *dir, const store_options *opt, char *err, size_t errlen)
{
    int rc;
    if (!opt->read_only) {
        if (mkdir(dir, 0750) != 0 && errno != EEXIST)
            return ls_fail(err, errlen, LS_EIO, "cannot create data directory %s: %s", dir, strerror(errno));
        if ((rc = storefile_lock(dir, &s->lock_fd, &s->lock_created, err, errlen)))
            return rc;
        s->new_files = storefile_missing(dir);
    }
    return storefile_check(dir, err, errlen);
}

static int open_env(store *s, const char *dir, const store_options *opt, char *err, size_t errlen)
{
    unsigned max_readers = opt->max_readers ? opt->max_readers : DEFAULT_MAX_READERS;
    int rc = check_files(s, dir, opt, err, errlen);
    if (rc == LS_OK && !opt->read_only)
        rc = storefile_reserve_locks(dir, max_readers, err, errlen);
    if (rc)
        return rc;
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail;
    mdb_env_set_maxdbs(s->env, 16);
    mdb_env_set_maxreaders(s->env, max_readers);
    mdb_env_set_mapsize(s->env, opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE);
    unsigned flags = MDB_NOTLS;
    if (opt->no_sync)
        flags |= MDB_NOSYNC;
    if (opt->read_only)
        flags |= MDB_RDONLY;
    if ((rc = mdb_env_open(s->env, dir, flags, 0640)) != 0)
        goto fail;
    if (!opt->read_only)
        store_reader_check(s, NULL);
    return LS_OK;
fail:
    ls_fail(err, errlen, 0, "cannot open store in %s: %s%s", dir, mdb_strerror(rc), storefile_full_note(rc));
    return from_mdb(rc);
}

/* Reads or writes the schema version and half-lives in meta. */
static int check_meta(store *s, MDB_txn *txn, const feature_decay *decay, char *err, size_t errlen)
{
    MDB_val k = {6, "schema"}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) { /* an empty environment (check_env): a new store */
        if (s->read_only || !decay) {
            ls_fail(err, errlen, 0, "the data directory holds no leadscore store yet");
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
    if (version < STORE_SCHEMA_VERSION && !s->read_only) {
        /* upgrade in place: the tables a newer schema adds exist by now */
        uint32_t now = STORE_SCHEMA_VERSION;
        MDB_val nv = {sizeof now, &now};
        if ((rc = mdb_put(txn, s->meta, &k, &nv, 0)) != 0)
            return from_mdb(rc);
    }
    if (version > STORE_SCHEMA_VERSION) {
        ls_fail(err, errlen, 0, "this store has schema version %u but this leadscore only understands up to %u: "
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

/* The alias tables; a version-1 store opened read-only has none. */
static int open_alias_dbs(store *s, MDB_txn *txn, unsigned create)
{
    int rc = mdb_dbi_open(txn, "aliases", create, &s->aliases);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "alias_targets", create, &s->alias_targets);
    s->has_aliases = rc == 0;
    return rc == MDB_NOTFOUND && s->read_only ? 0 : rc;
}

/* The automation tables (store_table), created by the first writer of
 * this version: adding tables changes no value format, so the schema
 * version stays.  An older store opened read-only has none: they read as
 * empty. */
static const char *const table_names[STORE_T_COUNT] = {"audiences", "audience_members", "trigger_outbox",
                                                       "trigger_timers", "trigger_by_customer"};

static int open_tables(store *s, MDB_txn *txn, unsigned create)
{
    int rc = 0;
    for (int t = 0; t < STORE_T_COUNT && rc == 0; t++)
        rc = mdb_dbi_open(txn, table_names[t], create, &s->tables[t]);
    s->has_tables = rc == 0;
    return rc == MDB_NOTFOUND && s->read_only ? 0 : rc;
}

/* Rebuilds the unmerged window keys of a writable store: the
 * event_ids_by_time entries from the mark on whose id event_ids lacks (a
 * legacy entry, with no customer in its value, always has its id there).
 * A store without a mark (new, or written before window keys were merged
 * lazily) has every id in event_ids: it gets one. */
static int recover_window_keys(store *s, MDB_txn *txn)
{
    MDB_val mk = {sizeof WK_MARK_KEY - 1, WK_MARK_KEY}, mv, k, v, got;
    MDB_stat st;
    int64_t mark;
    int rc = mdb_get(txn, s->meta, &mk, &mv);
    if (rc == MDB_NOTFOUND) {
        mark = INT64_MAX; /* every id is in event_ids: the first claim lowers it */
        MDB_val nv = {sizeof mark, &mark};
        rc = mdb_put(txn, s->meta, &mk, &nv, 0);
    } else if (rc == 0 && mv.mv_size == sizeof mark) {
        memcpy(&mark, mv.mv_data, sizeof mark);
        uint8_t from[8];
        bytecur_store_be64(from, (uint64_t)mark);
        MDB_cursor *cur;
        if ((rc = mdb_cursor_open(txn, s->event_ids_by_time, &cur)) != 0)
            return from_mdb(rc);
        k = (MDB_val){sizeof from, from};
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            MDB_val id = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
            if (k.mv_size <= 8 || v.mv_size == 0 || mdb_get(txn, s->event_ids, &id, &got) == 0)
                continue;
            int st_add = windowkeys_add(&s->wk, id.mv_data, id.mv_size, (int64_t)bytecur_load_be64(k.mv_data),
                                        v.mv_data, v.mv_size);
            if (st_add) {
                mdb_cursor_close(cur);
                return st_add;
            }
        }
        mdb_cursor_close(cur);
        windowkeys_committed(&s->wk);
    } else if (rc == 0) {
        return LS_EPARSE;
    }
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    s->wk_mark = mark;
    s->wk_swept_ms = timefmt_now_ms();
    if (mdb_stat(txn, s->event_ids, &st) == 0)
        s->wk_table_keys = st.ms_entries;
    return LS_OK;
}

/* Whether the environment is (or may become) a leadscore store, looked
 * at before anything is created in it: *fresh is 1 when it is empty
 * (nothing in LMDB's main database, where named databases live too): a
 * new store.  LS_EPARSE, with a message naming dir, when it holds data
 * but no leadscore meta record ("schema" in the meta database): another
 * application's LMDB environment, to which no leadscore tables may be
 * added. */
static int check_env(MDB_txn *txn, const char *dir, int *fresh, char *err, size_t errlen)
{
    MDB_dbi main_db, meta;
    MDB_stat st;
    MDB_val k = {6, "schema"}, v;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (rc == 0)
        rc = mdb_stat(txn, main_db, &st);
    if (rc) {
        ls_fail(err, errlen, 0, "cannot read the LMDB environment in %s: %s", dir, mdb_strerror(rc));
        return from_mdb(rc);
    }
    *fresh = st.ms_entries == 0;
    if (*fresh)
        return LS_OK;
    rc = mdb_dbi_open(txn, "meta", 0, &meta);
    if (rc == 0)
        rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
        return ls_fail(err, errlen, LS_EPARSE, "%s holds an LMDB environment that is not a leadscore store (it has "
                       "data but no leadscore meta record): it is left as it is; give --data an empty or new "
                       "directory, or the directory of a leadscore store", dir);
    if (rc) {
        ls_fail(err, errlen, 0, "cannot read the store's meta record in %s: %s", dir, mdb_strerror(rc));
        return from_mdb(rc);
    }
    return LS_OK;
}

/* The meta table, checked (check_meta) before any other table is opened or
 * created, so a store with a damaged meta record is refused alike by
 * writers and readers. */
static int open_meta(store *s, MDB_txn *txn, const char *dir, const feature_decay *decay, char *err,
                     size_t errlen)
{
    int fresh = 0;
    int rc = check_env(txn, dir, &fresh, err, errlen);
    if (rc)
        return rc;
    if (fresh && (s->read_only || !decay)) /* no decay: the caller opens a store that must exist */
        return ls_fail(err, errlen, LS_ENOTFOUND, "the data directory holds no leadscore store yet");
    if ((rc = mdb_dbi_open(txn, "meta", s->read_only ? 0 : MDB_CREATE, &s->meta)) != 0) {
        ls_fail(err, errlen, 0, "cannot open the store's meta table: %s", mdb_strerror(rc));
        return from_mdb(rc);
    }
    rc = check_meta(s, txn, decay, err, errlen);
    if (rc == LS_EPARSE)
        ls_fail(err, errlen, 0, "the store's meta record is corrupt (its schema version or half-lives cannot be "
                "read)");
    return rc;
}

static int open_dbs(store *s, const char *dir, const feature_decay *decay, char *err, size_t errlen)
{
    MDB_txn *txn;
    unsigned create = s->read_only ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        ls_fail(err, errlen, 0, "cannot begin a transaction in the store in %s: %s", dir, mdb_strerror(rc));
        return from_mdb(rc);
    }
    int st = open_meta(s, txn, dir, decay, err, errlen);
    if (st) {
        mdb_txn_abort(txn);
        return st;
    }
    if ((rc = mdb_dbi_open(txn, "customers", create, &s->customers)) ||
        (rc = mdb_dbi_open(txn, "event_ids", create, &s->event_ids)) ||
        (rc = mdb_dbi_open(txn, "event_ids_by_time", create, &s->event_ids_by_time)) ||
        (rc = open_alias_dbs(s, txn, create)) || (rc = open_tables(s, txn, create))) {
        mdb_txn_abort(txn);
        ls_fail(err, errlen, 0, "cannot open the store's tables: %s", mdb_strerror(rc));
        return from_mdb(rc);
    }
    if (!s->read_only && (st = recover_window_keys(s, txn)) != LS_OK) {
        mdb_txn_abort(txn);
        ls_fail(err, errlen, 0, "cannot read the store's window keys: %s", ls_strerror(st));
        return st;
    }
    /* committing (even a read-only txn) keeps the table handles open;
     * a writer's commit creates a new store's tables */
    if ((rc = s->read_only ? 0 : fault_commit()) != 0)
        mdb_txn_abort(txn);
    else
        rc = disk_full_as_such(s, mdb_txn_commit(txn));
    if (rc) {
        ls_fail(err, errlen, 0, "cannot commit the store's tables in %s: %s%s", dir, mdb_strerror(rc),
                storefile_full_note(rc));
        return from_mdb(rc);
    }
    return LS_OK;
}

/* Leaves the directory a writer's open was refused in as the open found
 * it: closes the environment, then removes what the open made -- LMDB's
 * files (a new store that a full disk refused is created afresh by the
 * next try, not taken for one that lost its data) and the lock file,
 * each while the lock is still held. */
static void undo_open(store *s, const char *dir)
{
    if (!s->lock_created && !s->new_files)
        return;
    if (s->env)
        mdb_env_close(s->env);
    s->env = NULL;
    storefile_remove(dir, s->new_files);
    if (s->lock_created)
        storefile_unlock_remove(dir, &s->lock_fd);
}

int store_open(store **out, const char *dir, const store_options *opt,
               const feature_decay *decay, char *err, size_t errlen)
{
    static const store_options defaults = {0};
    *out = NULL;
    if (!opt)
        opt = &defaults;
    store *s = calloc(1, sizeof *s);
    pthread_rwlockattr_t attr;
    if (!s)
        return LS_ENOMEM;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    s->read_only = opt->read_only;
    s->lock_fd = -1;
    windowkeys_init(&s->wk);
    idfilter_init(&s->ids);
    s->ids_min_keys = opt->id_filter_min_keys ? opt->id_filter_min_keys : ID_FILTER_MIN_KEYS;
    idfilter_init(&s->ids_next);
    atomic_init(&s->ids_bytes, 0);
    atomic_init(&s->ids_skipped, 0);
    s->retention_ms = (int64_t)(opt->history_days > 0 ? opt->history_days : HISTORY_DEFAULT_DAYS) * 86400000LL;
    int rc = open_env(s, dir, opt, err, errlen);
    if (rc == LS_OK)
        rc = open_dbs(s, dir, decay, err, errlen);
    if (rc != LS_OK) {
        undo_open(s, dir);
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
    storefile_unlock(&(*sp)->lock_fd); /* after the env: no writer may start before it is shut */
    pthread_rwlock_destroy(&(*sp)->map_lock);
    valuememo_free(&(*sp)->memo);
    windowkeys_free(&(*sp)->wk);
    idfilter_free(&(*sp)->ids);
    idfilter_free(&(*sp)->ids_next);
    free(*sp);
    *sp = NULL;
}

void store_memo_writes(store *s, size_t max_bytes)
{
    valuememo_free(&s->memo);
    valuememo_init(&s->memo, max_bytes);
    s->memo_on = max_bytes > 0;
}

const feature_decay *store_decay(const store *s)
{
    return &s->decay;
}

/* Counts reader slots from LMDB's reader table listing: one line per
 * taken slot, "pid thread txnid" ("-" when no snapshot is open). */
typedef struct {
    uint64_t taken, active;
} reader_count;

static int count_reader_line(const char *msg, void *arg)
{
    reader_count *c = arg;
    int pid;
    char tid[40], txn[40];
    for (const char *line = msg; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (sscanf(line, "%d %39s %39s", &pid, tid, txn) == 3) {
            c->taken++;
            c->active += strcmp(txn, "-") != 0;
        }
    }
    return 0;
}

static void count_readers(store *s, uint64_t *taken, uint64_t *active)
{
    reader_count c = {0, 0};
    mdb_reader_list(s->env, count_reader_line, &c);
    *taken = c.taken;
    *active = c.active;
}

int store_stat(store *s, store_stats *out)
{
    MDB_txn *txn;
    MDB_stat st;
    MDB_envinfo info;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&s->map_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        pthread_rwlock_unlock(&s->map_lock);
        return from_mdb(rc);
    }
    if (mdb_stat(txn, s->customers, &st) == 0)
        out->customers = st.ms_entries;
    out->event_ids_unmerged = windowkeys_live(&s->wk);
    out->event_ids_filter_bytes = atomic_load(&s->ids_bytes);
    out->event_id_lookups_skipped = atomic_load(&s->ids_skipped);
    if (mdb_stat(txn, s->event_ids, &st) == 0)
        out->event_ids = st.ms_entries + out->event_ids_unmerged;
    mdb_txn_abort(txn);
    mdb_env_stat(s->env, &st);
    mdb_env_info(s->env, &info);
    pthread_rwlock_unlock(&s->map_lock);
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    out->map_bytes = info.me_mapsize;
    out->readers_max = info.me_maxreaders;
    count_readers(s, &out->readers, &out->readers_active);
    out->readers_stale_cleared = atomic_load(&s->stale_cleared);
    return LS_OK;
}

int store_set_map_size(store *s, uint64_t bytes)
{
    pthread_rwlock_wrlock(&s->map_lock);
    int rc = mdb_env_set_mapsize(s->env, bytes); /* LMDB keeps at least the pages in use */
    pthread_rwlock_unlock(&s->map_lock);
    return from_mdb(rc);
}

int store_reader_check(store *s, int *cleared)
{
    int dead = 0, rc = mdb_reader_check(s->env, &dead);
    if (rc == 0 && dead > 0)
        atomic_fetch_add(&s->stale_cleared, (uint64_t)dead);
    if (cleared)
        *cleared = rc == 0 ? dead : 0;
    return from_mdb(rc);
}

int store_grow(store *s, uint64_t max_bytes)
{
    MDB_envinfo info;
    pthread_rwlock_wrlock(&s->map_lock);
    mdb_env_info(s->env, &info);
    uint64_t now = info.me_mapsize, next = now * 2 > max_bytes ? max_bytes : now * 2;
    int rc = next > now ? mdb_env_set_mapsize(s->env, next) : MDB_MAP_FULL;
    pthread_rwlock_unlock(&s->map_lock);
    return rc == 0 ? LS_OK : LS_EFULL;
}

/* Another process grew the map: adopt its size (no snapshot is open). */
static void adopt_map_size(store *s)
{
    pthread_rwlock_wrlock(&s->map_lock);
    mdb_env_set_mapsize(s->env, 0);
    pthread_rwlock_unlock(&s->map_lock);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

int store_reader_open(store *s, store_reader **out)
{
    store_reader *r = calloc(1, sizeof *r);
    if (!r)
        return LS_ENOMEM;
    pthread_rwlock_rdlock(&s->map_lock);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    pthread_rwlock_unlock(&s->map_lock);
    if (rc) {
        free(r);
        return from_mdb(rc);
    }
    mdb_txn_reset(r->txn);
    r->s = s;
    history_init(&r->h);
    *out = r;
    return LS_OK;
}

void store_reader_close(store_reader **rp)
{
    if (!rp || !*rp)
        return;
    store_reader_end(*rp);
    mdb_txn_abort((*rp)->txn);
    history_free(&(*rp)->h);
    free(*rp);
    *rp = NULL;
}

int store_reader_begin(store_reader *r)
{
    store_reader_end(r);
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&r->s->map_lock);
        int rc = mdb_txn_renew(r->txn);
        if (rc == 0) {
            r->active = 1;
            return LS_OK;
        }
        pthread_rwlock_unlock(&r->s->map_lock);
        if (rc != MDB_MAP_RESIZED)
            return from_mdb(rc);
        adopt_map_size(r->s);
    }
    return LS_EINTERNAL;
}

void store_reader_end(store_reader *r)
{
    if (!r->active)
        return;
    mdb_txn_reset(r->txn);
    r->active = 0;
    pthread_rwlock_unlock(&r->s->map_lock);
}

/* A customer's value in `customers`: a plain feature record (written by
 * schema 2 or earlier, or by store_wtxn_put), or VALUE_MARK, a varint
 * record length, the record, then the encoded history (history.h).  One
 * value, so a write touches one B-tree leaf and a read for "now" decodes
 * the record alone. */
#define VALUE_MARK 0xC3
/* Schema 4: the same with the customer's automation state (automation.h)
 * between record and history, as a varint length and its bytes, so that
 * state lives in the leaf the customer's events already dirty. */
#define VALUE_MARK_STATE 0xC4
_Static_assert(FEATURE_RECORD_VERSION < VALUE_MARK, "a record version must not look like the value mark");

typedef struct {
    const uint8_t *rec, *hist, *state;
    size_t rec_len, hist_len;   /* hist_len 0: no history (a plain record) */
    size_t state_len;           /* 0: no automation state */
} value_parts;

static int split_value(const MDB_val *v, value_parts *out)
{
    const uint8_t *p = v->mv_data;
    memset(out, 0, sizeof *out);
    if (v->mv_size == 0 || (p[0] != VALUE_MARK && p[0] != VALUE_MARK_STATE)) {
        out->rec = p;
        out->rec_len = v->mv_size;
        return LS_OK;
    }
    bytecur_r r = {p + 1, v->mv_size - 1, 0};
    uint64_t len = bytecur_get_varint(&r);
    if (r.bad || len > r.left)
        return LS_EPARSE;
    out->rec = r.p;
    out->rec_len = (size_t)len;
    r.p += len;
    r.left -= (size_t)len;
    if (p[0] == VALUE_MARK_STATE) {
        uint64_t slen = bytecur_get_varint(&r);
        if (r.bad || slen > r.left)
            return LS_EPARSE;
        out->state = r.p;
        out->state_len = (size_t)slen;
        r.p += slen;
        r.left -= (size_t)slen;
    }
    out->hist = r.p;
    out->hist_len = r.left;
    return LS_OK;
}

/* A record with a history, written before records kept the last
 * engagement: feature_decode takes its last event for it. */
static int old_record_with_history(const value_parts *p)
{
    return p->rec_len && p->rec[0] < FEATURE_VERSION_LAST_ENGAGED && p->hist_len;
}

/* A record with a history, built by an older version's rules (feature.h):
 * the writer replays it once, when its customer is next written, so from
 * then on it is the replay this version defines. */
static int record_of_older_rules(const value_parts *p)
{
    return p->rec_len && p->rec[0] < FEATURE_RECORD_VERSION && p->hist_len;
}

/* That stand-in is exact unless the last event was a complaint or a
 * profile update; then the history gives the record as this version
 * defines it (its replay). */
static int old_record_inexact(const value_parts *p, const ls_features *f)
{
    return old_record_with_history(p) &&
           (f->last_negative_ms == f->last_seen_ms || (f->birthday_ts_ms && f->birthday_ts_ms == f->last_seen_ms));
}

static int replay_value(const value_parts *p, const feature_decay *d, ls_features *out)
{
    history h;
    history_init(&h);
    int rc = history_decode(&h, p->hist, p->hist_len);
    if (rc == LS_OK)
        rc = history_replay(&h, INT64_MAX, d, out);
    history_free(&h);
    return rc;
}

/* The running record of value v (d: the store's half-lives, for an old
 * record that must be replayed; see old_record_inexact). */
static int decode_value_record(const MDB_val *v, const feature_decay *d, ls_features *out)
{
    value_parts parts;
    int rc = split_value(v, &parts);
    if (rc) {
        feature_init(out);
        return rc;
    }
    rc = feature_decode(out, parts.rec, parts.rec_len);
    if (rc == LS_OK && old_record_inexact(&parts, out))
        rc = replay_value(&parts, d, out);
    return rc;
}

/* The history in a value; a plain record (no history) is its own
 * `before` aggregate, so its replay is the record. */
static int decode_value_history(const MDB_val *v, const ls_features *rec, history *h)
{
    value_parts parts;
    history_clear(h);
    int rc = split_value(v, &parts);
    if (rc)
        return rc;
    if (parts.hist_len)
        return history_decode(h, parts.hist, parts.hist_len);
    if (rec && !feature_empty(rec)) {
        h->before = *rec;
        h->has_before = 1;
    }
    return LS_OK;
}

static int get_record(MDB_txn *txn, MDB_dbi dbi, const feature_decay *d, const char *id, size_t len,
                      ls_features *out)
{
    MDB_val k = {len, (void *)id}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc) {
        feature_init(out);
        return from_mdb(rc);
    }
    return decode_value_record(&v, d, out);
}

/* Follows an alias: *id / *len become the target when there is one. */
static void follow_alias(MDB_txn *txn, const store *s, const char **id, size_t *len)
{
    MDB_val k = {*len, (void *)*id}, v;
    if (s->has_aliases && mdb_get(txn, s->aliases, &k, &v) == 0) {
        *id = v.mv_data;
        *len = v.mv_size;
    }
}

int store_reader_get(store_reader *r, const char *id, size_t len, ls_features *out)
{
    if (len == 0 || len > 511) {
        feature_init(out);
        return LS_ENOTFOUND;
    }
    follow_alias(r->txn, r->s, &id, &len);
    return get_record(r->txn, r->s->customers, &r->s->decay, id, len, out);
}

/* The record, history and automation state (may be NULL) in value v. */
static int decode_customer_state(const MDB_val *v, const feature_decay *d, ls_features *rec, history *h,
                                 store_bytes *state)
{
    value_parts parts;
    int rc = split_value(v, &parts);
    if (rc == LS_OK)
        rc = feature_decode(rec, parts.rec, parts.rec_len);
    if (rc == LS_OK)
        rc = decode_value_history(v, rec, h);
    /* an old record about to be written back: the replay of its history
     * is the record this version keeps (its last engagement, no session of
     * a complaint or a profile update, this version's cart and category
     * rules) */
    if (rc == LS_OK && record_of_older_rules(&parts))
        rc = history_replay(h, INT64_MAX, d, rec);
    if (rc == LS_OK && state) {
        state->ptr = parts.state;
        state->len = parts.state_len;
    }
    return rc;
}

/* A customer's record, history and automation state (state may be NULL;
 * its bytes point into the txn) from ONE lookup (id already resolved).
 * LS_ENOTFOUND, with an empty record and history, when there is none. */
static int read_customer_state(MDB_txn *txn, const store *s, const char *id, size_t len, ls_features *rec,
                               history *h, store_bytes *state)
{
    MDB_val k = {len, (void *)id}, v;
    feature_init(rec);
    history_clear(h);
    int rc = mdb_get(txn, s->customers, &k, &v);
    return rc ? from_mdb(rc) : decode_customer_state(&v, &s->decay, rec, h, state);
}

static int read_customer(MDB_txn *txn, const store *s, const char *id, size_t len, ls_features *rec, history *h)
{
    return read_customer_state(txn, s, id, len, rec, h, NULL);
}

/* rec, the running record stored in value v, made the record as of
 * asof_ms: unchanged when nothing in it is later, else its history
 * replayed up to asof_ms. */
/* Record rec of value v as of asof_ms: itself when its newest event is
 * not later (O(1)), else the replay of the history (decoded into h) up to
 * asof_ms; LS_ENOTFOUND when nothing is that old.  *next_ms (when not
 * NULL) gets the time of the first event after asof_ms, 0 when none. */
static int value_asof(const MDB_val *v, const feature_decay *d, history *h, int64_t asof_ms, ls_features *rec,
                      int64_t *next_ms)
{
    if (next_ms)
        *next_ms = 0;
    if (rec->last_seen_ms <= asof_ms)
        return LS_OK;
    int rc = decode_value_history(v, rec, h);
    if (rc == LS_OK && next_ms) {
        size_t upto = history_upto(h, asof_ms);
        *next_ms = upto < h->n ? h->ev[upto].ts_ms : 0;
    }
    if (rc == LS_OK)
        rc = history_replay(h, asof_ms, d, rec);
    if (rc == LS_OK && feature_empty(rec))
        rc = LS_ENOTFOUND;
    return rc;
}

static int record_asof(store_reader *r, const MDB_val *v, int64_t asof_ms, ls_features *rec)
{
    return value_asof(v, &r->s->decay, &r->h, asof_ms, rec, NULL);
}

int store_reader_get_asof(store_reader *r, const char *id, size_t len, int64_t asof_ms, ls_features *out)
{
    if (len == 0 || len > 511) {
        feature_init(out);
        return LS_ENOTFOUND;
    }
    follow_alias(r->txn, r->s, &id, &len);
    MDB_val k = {len, (void *)id}, v;
    int rc = from_mdb(mdb_get(r->txn, r->s->customers, &k, &v));
    if (rc == LS_OK && (rc = decode_value_record(&v, &r->s->decay, out)) == LS_OK)
        rc = record_asof(r, &v, asof_ms, out);
    if (rc != LS_OK)
        feature_init(out);
    return rc;
}

int store_reader_get_history(store_reader *r, const char *id, size_t len, history *out)
{
    ls_features f;
    history_clear(out);
    if (len == 0 || len > 511)
        return LS_ENOTFOUND;
    follow_alias(r->txn, r->s, &id, &len);
    return read_customer(r->txn, r->s, id, len, &f, out);
}

/* One pass over the customers; each record is given as of asof_ms
 * (INT64_MAX: as stored) and, when want_history, with its history. */
typedef struct {
    int64_t asof_ms;
    store_visit_fn visit;
    store_history_fn visit_history;
    void *arg;
} scan_plan;

static int scan_one(store_reader *r, const MDB_val *k, const MDB_val *v, ls_features *f, const scan_plan *p)
{
    if (p->visit_history) {
        int rc = decode_value_history(v, f, &r->h);
        return rc == LS_OK ? p->visit_history(p->arg, k->mv_data, k->mv_size, f, &r->h) : LS_OK;
    }
    if (f->last_seen_ms > p->asof_ms) {
        if (decode_value_history(v, f, &r->h) != LS_OK ||
            history_replay(&r->h, p->asof_ms, &r->s->decay, f) != LS_OK || feature_empty(f))
            return LS_OK; /* not a customer yet at asof, or unreadable: skipped */
    }
    return p->visit(p->arg, k->mv_data, k->mv_size, f);
}

static int scan(store_reader *r, const scan_plan *p)
{
    MDB_cursor *cur;
    MDB_val k, v;
    ls_features f;
    int rc = mdb_cursor_open(r->txn, r->s->customers, &cur);
    if (rc)
        return from_mdb(rc);
    int st = LS_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (decode_value_record(&v, &r->s->decay, &f) != LS_OK)
            continue; /* a record this binary cannot read is skipped, not fatal */
        if ((st = scan_one(r, &k, &v, &f, p)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != MDB_NOTFOUND && rc != 0)
        st = from_mdb(rc);
    return st;
}

int store_reader_scan(store_reader *r, store_visit_fn fn, void *arg)
{
    scan_plan p = {INT64_MAX, fn, NULL, arg};
    return scan(r, &p);
}

int store_reader_scan_asof(store_reader *r, int64_t asof_ms, store_visit_fn fn, void *arg)
{
    scan_plan p = {asof_ms, fn, NULL, arg};
    return scan(r, &p);
}

int store_reader_scan_history(store_reader *r, store_history_fn fn, void *arg)
{
    scan_plan p = {INT64_MAX, NULL, fn, arg};
    return scan(r, &p);
}

/* ------------------------------------------------------------------ */
/* Fault injection (see store.h)                                       */
/* ------------------------------------------------------------------ */

static atomic_int fault_on;   /* STORE_FAULT_* bits armed */
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char key[STORE_MAX_KEY];
    size_t key_len;
    int key_err;
    int commit_err, commit_count;
} fault;

void store_fault_set(int kind, const char *key, int err, int count)
{
    pthread_mutex_lock(&fault_lock);
    if (kind == STORE_FAULT_KEY && key) {
        fault.key_len = strlen(key) < sizeof fault.key ? strlen(key) : sizeof fault.key;
        memcpy(fault.key, key, fault.key_len);
        fault.key_err = err ? err : MDB_BAD_VALSIZE;
        atomic_fetch_or(&fault_on, STORE_FAULT_KEY);
    } else if (kind == STORE_FAULT_COMMIT) {
        fault.commit_err = err ? err : EIO;
        fault.commit_count = count;
        atomic_fetch_or(&fault_on, STORE_FAULT_COMMIT);
    }
    pthread_mutex_unlock(&fault_lock);
}

void store_fault_clear(void)
{
    pthread_mutex_lock(&fault_lock);
    atomic_store(&fault_on, 0);
    memset(&fault, 0, sizeof fault);
    pthread_mutex_unlock(&fault_lock);
}

/* The LMDB code an armed key fault gives a write of k, or 0. */
static int fault_key(const MDB_val *k)
{
    if (!(atomic_load(&fault_on) & STORE_FAULT_KEY))
        return 0;
    pthread_mutex_lock(&fault_lock);
    int rc = fault.key_len == k->mv_size && memcmp(fault.key, k->mv_data, k->mv_size) == 0 ? fault.key_err : 0;
    pthread_mutex_unlock(&fault_lock);
    return rc;
}

/* The errno an armed commit fault gives this commit, or 0. */
static int fault_commit(void)
{
    if (!(atomic_load(&fault_on) & STORE_FAULT_COMMIT))
        return 0;
    int rc = 0;
    pthread_mutex_lock(&fault_lock);
    if (fault.commit_count != 0) {
        rc = fault.commit_err;
        if (fault.commit_count > 0)
            fault.commit_count--;
    }
    pthread_mutex_unlock(&fault_lock);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

int store_check_customer_id(size_t len)
{
    return len == 0 ? LS_EINVAL : len > STORE_MAX_KEY ? LS_ETOOLARGE : LS_OK;
}

int store_check_event(size_t customer_len, size_t event_id_len)
{
    if (customer_len == 0)
        return LS_EINVAL;
    /* the customer id also travels in the event id's value (claim_event_id) */
    if (customer_len > EVENT_MAX_STR || event_id_len > EVENT_MAX_STR)
        return LS_ETOOLARGE;
    return LS_OK;
}

int store_check_alias(size_t from_len, size_t to_len)
{
    if (from_len == 0 || to_len == 0)
        return LS_EINVAL;
    return from_len + 1 + to_len > STORE_MAX_KEY ? LS_ETOOLARGE : LS_OK;
}

/* Every write of the writer goes through here, by key or (cur non-NULL)
 * through a cursor on dbi: a key LMDB would refuse (MDB_BAD_VALSIZE,
 * LS_ETOOLARGE) is refused before LMDB sees it, and an armed fault
 * answers for LMDB.  An LMDB code. */
static int wput_at(store_wtxn *w, MDB_dbi dbi, MDB_cursor *cur, MDB_val *k, MDB_val *v, unsigned flags)
{
    if (k->mv_size == 0 || k->mv_size > STORE_MAX_KEY)
        return MDB_BAD_VALSIZE;
    int rc = fault_key(k);
    w->writes++;
    if (rc)
        return rc;
    return cur ? mdb_cursor_put(cur, k, v, flags) : mdb_put(w->txn, dbi, k, v, flags);
}

static int wput(store_wtxn *w, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
    return wput_at(w, dbi, NULL, k, v, flags);
}

static MDB_dbi wcursor_dbi(const store_wtxn *w, int which)
{
    const store *s = w->s;
    return which == WC_CUSTOMERS ? s->customers : which == WC_EVENT_IDS ? s->event_ids : s->event_ids_by_time;
}

/* The txn's cursor on table `which`, opened on first use.  An LMDB code. */
static int wcursor(store_wtxn *w, int which, MDB_cursor **out)
{
    int rc = w->cur[which] ? MDB_SUCCESS : mdb_cursor_open(w->txn, wcursor_dbi(w, which), &w->cur[which]);
    *out = w->cur[which];
    return rc;
}

/* Closes the txn's cursor on table dbi, if any: before a delete (rare:
 * forget, alias, pruning), so that the next use starts from a fresh
 * descent rather than from a position LMDB had to move off a deleted
 * node. */
static void wcursor_drop(store_wtxn *w, MDB_dbi dbi)
{
    for (int i = 0; i < WC_COUNT; i++)
        if (w->cur[i] && wcursor_dbi(w, i) == dbi) {
            mdb_cursor_close(w->cur[i]);
            w->cur[i] = NULL;
        }
}

/* Every delete by key goes through here (cursor deletes count
 * themselves).  An LMDB code. */
static int wdel(store_wtxn *w, MDB_dbi dbi, MDB_val *k)
{
    w->writes++;
    wcursor_drop(w, dbi);
    return mdb_del(w->txn, dbi, k, NULL);
}

/* The customers table in a write txn: every put and delete goes through
 * cput / cdel, which keep the memo (valuememo.h) equal to what the txn
 * holds; the puts and the holds (hold_read) go through the txn's cursor.
 * cget asks the memo first: the reads that follow a write of the same
 * customer use it (the automation's); a read that seldom finds the
 * customer written (a hold) asks LMDB alone, as the answer is the same.
 * LMDB codes; a value from cget is valid until the next write, as LMDB's. */
static int cput(store_wtxn *w, MDB_val *k, MDB_val *v)
{
    MDB_cursor *cur;
    int rc = wcursor(w, WC_CUSTOMERS, &cur);
    if (rc == MDB_SUCCESS)
        rc = wput_at(w, w->s->customers, cur, k, v, 0);
    if (!w->s->memo_on)
        return rc;
    if (rc == 0)
        valuememo_put(&w->s->memo, k->mv_data, k->mv_size, v->mv_data, v->mv_size);
    else
        valuememo_drop(&w->s->memo, k->mv_data, k->mv_size);
    return rc;
}

static int cdel(store_wtxn *w, MDB_val *k)
{
    if (w->s->memo_on)
        valuememo_drop(&w->s->memo, k->mv_data, k->mv_size);
    return wdel(w, w->s->customers, k);
}

static int cget(store_wtxn *w, MDB_val *k, MDB_val *v)
{
    const void *p;
    size_t n;
    if (w->s->memo_on && valuememo_get(&w->s->memo, k->mv_data, k->mv_size, &p, &n)) {
        v->mv_data = (void *)p;
        v->mv_size = n;
        return MDB_SUCCESS;
    }
    return mdb_get(w->txn, w->s->customers, k, v);
}

void store_wtxn_prefetch(store_wtxn *w, const char *id, size_t len, int stage)
{
    if (!w->s->memo_on)
        return;
    if (stage == STORE_PREFETCH_SLOT)
        valuememo_prefetch_slot(&w->s->memo, id, len);
    else
        valuememo_prefetch_entry(&w->s->memo, id, len);
}

/* A customer value the txn read and could not decode (LS_EPARSE, or
 * LS_EVERSION for a record of an unknown version: the stored record is
 * damaged): the first such id is kept for store_wtxn_damaged.  Returns
 * rc. */
static int note_damage(store_wtxn *w, const char *id, size_t len, int rc)
{
    if ((rc == LS_EPARSE || rc == LS_EVERSION) && w->damaged_len == 0 && len > 0 && len <= sizeof w->damaged) {
        memcpy(w->damaged, id, len);
        w->damaged_len = len;
    }
    return rc;
}

int store_wtxn_damaged(const store_wtxn *w, const char **id, size_t *len)
{
    *id = w->damaged;
    *len = w->damaged_len;
    return w->damaged_len > 0;
}

/* read_customer_state through the cursor: for the holds, in key order. */
static int hold_read(store_wtxn *w, const char *id, size_t len, ls_features *rec, history *h, store_bytes *state)
{
    MDB_val k = {len, (void *)id}, v;
    feature_init(rec);
    history_clear(h);
    MDB_cursor *cur;
    int rc = wcursor(w, WC_CUSTOMERS, &cur);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    return note_damage(w, id, len, rc ? from_mdb(rc) : decode_customer_state(&v, &w->s->decay, rec, h, state));
}

uint64_t store_wtxn_writes(const store_wtxn *w)
{
    return w->writes;
}

int store_write_begin(store *s, store_wtxn **out)
{
    store_wtxn *w = calloc(1, sizeof *w);
    if (!w)
        return LS_ENOMEM;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    if (rc == MDB_MAP_RESIZED) {
        adopt_map_size(s);
        rc = mdb_txn_begin(s->env, NULL, 0, &w->txn);
    }
    if (rc) {
        free(w);
        return from_mdb(rc);
    }
    w->s = s;
    w->wk_mark_before = s->wk_mark;
    valuememo_clear(&s->memo); /* the txn's own, now that it holds the writer lock */
    *out = w;
    return LS_OK;
}

int store_write_commit(store_wtxn **wp)
{
    int rc = fault_commit();
    if (rc)
        mdb_txn_abort((*wp)->txn); /* as a commit that failed writing */
    else
        rc = disk_full_as_such((*wp)->s, mdb_txn_commit((*wp)->txn));
    if (rc == 0) {
        windowkeys_committed(&(*wp)->s->wk);
    } else {
        windowkeys_aborted(&(*wp)->s->wk);
        (*wp)->s->wk_mark = (*wp)->wk_mark_before;
    }
    free((*wp)->buf);
    free((*wp)->copy);
    free(*wp);
    *wp = NULL;
    return from_mdb(rc);
}

void store_write_abort(store_wtxn **wp)
{
    if (!wp || !*wp)
        return;
    mdb_txn_abort((*wp)->txn);
    windowkeys_aborted(&(*wp)->s->wk);
    (*wp)->s->wk_mark = (*wp)->wk_mark_before;
    free((*wp)->buf);
    free((*wp)->copy);
    free(*wp);
    *wp = NULL;
}

/* ---- log positions (cluster mode) ---- */

/* meta key of partition part's log position: "log." + 4 bytes big-endian. */
static void log_key(uint32_t part, uint8_t key[8], MDB_val *k)
{
    memcpy(key, "log.", 4);
    bytecur_store_be32(key + 4, part);
    k->mv_size = 8;
    k->mv_data = key;
}

static int get_log_position(MDB_txn *txn, MDB_dbi meta, uint32_t part, uint64_t *seq)
{
    uint8_t key[8];
    MDB_val k, v;
    log_key(part, key, &k);
    *seq = 0;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return LS_OK;
    if (rc)
        return from_mdb(rc);
    if (v.mv_size != sizeof *seq)
        return LS_EPARSE;
    memcpy(seq, v.mv_data, sizeof *seq);
    return LS_OK;
}

int store_reader_event_seen(store_reader *r, const char *eid, size_t len)
{
    if (len == 0 || len > EVENT_MAX_STR)
        return 0;
    MDB_val k = {len, (void *)eid}, v;
    return mdb_get(r->txn, r->s->event_ids, &k, &v) == 0;
}

int store_reader_log_position(store_reader *r, uint32_t part, uint64_t *seq)
{
    return get_log_position(r->txn, r->s->meta, part, seq);
}

int store_wtxn_log_position(store_wtxn *w, uint32_t part, uint64_t *seq)
{
    return get_log_position(w->txn, w->s->meta, part, seq);
}

int store_wtxn_set_log_position(store_wtxn *w, uint32_t part, uint64_t seq)
{
    uint8_t key[8];
    MDB_val k, v = {sizeof seq, &seq};
    log_key(part, key, &k);
    return from_mdb(wput(w, w->s->meta, &k, &v, 0));
}

/* ---- partitions to purge (cluster mode) ---- */

/* meta key of a purge of partition part: "prg." + 4 bytes big-endian; its
 * value is the partition count (be32), so the writer can tell the
 * partition's customers without the map. */
static void purge_key(uint32_t part, uint8_t key[8], MDB_val *k)
{
    memcpy(key, "prg.", 4);
    bytecur_store_be32(key + 4, part);
    k->mv_size = 8;
    k->mv_data = key;
}

static int purge_pending(MDB_txn *txn, MDB_dbi meta, uint32_t part)
{
    uint8_t key[8];
    MDB_val k, v;
    purge_key(part, key, &k);
    return mdb_get(txn, meta, &k, &v) == 0;
}

int store_reader_purge_pending(store_reader *r, uint32_t part)
{
    return purge_pending(r->txn, r->s->meta, part);
}

int store_wtxn_purge_pending(store_wtxn *w, uint32_t part)
{
    return purge_pending(w->txn, w->s->meta, part);
}

int store_wtxn_purge_mark(store_wtxn *w, uint32_t part, uint32_t nparts)
{
    uint8_t key[8], val[4];
    MDB_val k, v = {sizeof val, val};
    if (nparts == 0 || part >= nparts)
        return LS_EINVAL;
    purge_key(part, key, &k);
    bytecur_store_be32(val, nparts);
    int rc = from_mdb(wput(w, w->s->meta, &k, &v, 0));
    return rc ? rc : store_wtxn_set_log_position(w, part, 0);
}

int store_wtxn_purge_next(store_wtxn *w, uint32_t *part, uint32_t *nparts)
{
    MDB_cursor *cur;
    MDB_val k = {4, (void *)"prg."}, v;
    int rc = mdb_cursor_open(w->txn, w->s->meta, &cur);
    if (rc)
        return from_mdb(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int found = rc == 0 && k.mv_size == 8 && memcmp(k.mv_data, "prg.", 4) == 0 && v.mv_size == 4;
    if (found) {
        *part = bytecur_load_be32((const uint8_t *)k.mv_data + 4);
        *nparts = bytecur_load_be32(v.mv_data);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    return found ? LS_OK : LS_ENOTFOUND;
}

int store_wtxn_purge_done(store_wtxn *w, uint32_t part)
{
    uint8_t key[8];
    MDB_val k;
    purge_key(part, key, &k);
    int rc = wdel(w, w->s->meta, &k);
    return rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

int store_wtxn_get(store_wtxn *w, const char *id, size_t len, ls_features *out)
{
    return note_damage(w, id, len, get_record(w->txn, w->s->customers, &w->s->decay, id, len, out));
}

int store_wtxn_resolve(store_wtxn *w, const char *id, size_t len, const char **out, size_t *out_len)
{
    int rc = store_check_customer_id(len);
    if (rc)
        return rc;
    follow_alias(w->txn, w->s, &id, &len);
    *out = id;
    *out_len = len;
    return LS_OK;
}

int store_wtxn_put(store_wtxn *w, const char *id, size_t len, const ls_features *f)
{
    uint8_t buf[FEATURE_MAX_ENCODED];
    size_t n;
    int rc = feature_encode(f, buf, sizeof buf, &n);
    if (rc)
        return rc;
    MDB_val k = {len, (void *)id}, v = {n, buf};
    return from_mdb(cput(w, &k, &v));
}

void store_held_init(store_held *h)
{
    memset(h, 0, sizeof *h);
    history_init(&h->h);
}

void store_held_free(store_held *h)
{
    history_free(&h->h);
    free(h->buf);
    free(h->state);
    h->buf = h->state = NULL;
    h->buf_cap = h->state_cap = h->state_len = 0;
    h->open = 0;
}

/* Copies the automation state bytes of the customer being held (they
 * point into the txn) so put_back writes them back unchanged. */
static int held_keep_state(store_held *h, const store_bytes *state)
{
    if (state->len > h->state_cap) {
        uint8_t *b = realloc(h->state, state->len);
        if (!b)
            return LS_ENOMEM;
        h->state = b;
        h->state_cap = state->len;
    }
    if (state->len)
        memcpy(h->state, state->ptr, state->len);
    h->state_len = state->len;
    return LS_OK;
}

/* The value -- mark, record, state, history (from h, or as the bytes
 * hist) -- encoded into buf; LS_ETOOLARGE when cap is short. */
static int encode_value(uint8_t *buf, size_t cap, const uint8_t *rec, size_t rec_len, const history *h,
                        const uint8_t *hist, size_t hist_len, const uint8_t *state, size_t state_len, size_t *out)
{
    uint8_t mark = state_len ? VALUE_MARK_STATE : VALUE_MARK;
    bytecur_w c = {buf, cap, 0};
    bytecur_put(&c, &mark, 1);
    bytecur_put_varint(&c, rec_len);
    bytecur_put(&c, rec, rec_len);
    if (state_len) {
        bytecur_put_varint(&c, state_len);
        bytecur_put(&c, state, state_len);
    }
    if (h && !c.bad) {
        size_t written;
        if (history_encode(h, c.p, c.left, &written) != LS_OK)
            return LS_ETOOLARGE; /* short, or not encodable: put_value tells which */
        c.p += written;
        c.left -= written;
    } else if (!h) {
        bytecur_put(&c, hist, hist_len);
    }
    if (c.bad)
        return LS_ETOOLARGE;
    *out = (size_t)(c.p - buf);
    return LS_OK;
}

static int reserve_buf(uint8_t **buf, size_t *buf_cap, size_t need)
{
    if (need <= *buf_cap)
        return LS_OK;
    uint8_t *b = realloc(*buf, need);
    if (!b)
        return LS_ENOMEM;
    *buf = b;
    *buf_cap = need;
    return LS_OK;
}

/* Encodes a value -- record, history (h NULL or hist bytes: as given),
 * state -- into *buf and writes it.  The history goes in as encoded bytes
 * when hist is given (put_state keeps it unread), else from h: first into
 * the room the buffer has (a held customer's buffer is sized by the values
 * written before); only when that is short is its size worked out and the
 * buffer grown. */
static int put_value(store_wtxn *w, const char *id, size_t len, const uint8_t *rec, size_t rec_len, const history *h,
                     const uint8_t *hist, size_t hist_len, const uint8_t *state, size_t state_len, uint8_t **buf,
                     size_t *buf_cap)
{
    if (!h && !hist_len && !state_len) { /* a plain record: no history, no state */
        MDB_val k = {len, (void *)id}, v = {rec_len, (void *)rec};
        return from_mdb(cput(w, &k, &v));
    }
    size_t fixed = 1 + 10 + rec_len + 10 + state_len, n = 0;
    int rc = reserve_buf(buf, buf_cap, fixed + (h ? 0 : hist_len));
    if (rc == LS_OK)
        rc = encode_value(*buf, *buf_cap, rec, rec_len, h, hist, hist_len, state, state_len, &n);
    if (rc == LS_ETOOLARGE && h && (rc = reserve_buf(buf, buf_cap, fixed + history_encoded_size(h))) == LS_OK)
        rc = encode_value(*buf, *buf_cap, rec, rec_len, h, hist, hist_len, state, state_len, &n);
    if (rc)
        return rc == LS_ETOOLARGE ? LS_EINVAL : rc; /* it had the room it needs: not encodable */
    MDB_val k = {len, (void *)id}, v = {n, *buf};
    return from_mdb(cput(w, &k, &v));
}

int store_wtxn_put_customer(store_wtxn *w, const char *id, size_t len, const ls_features *f, const history *h,
                            const uint8_t *state, size_t state_len, uint8_t **buf, size_t *buf_cap)
{
    uint8_t rec[FEATURE_MAX_ENCODED];
    size_t rec_len;
    int rc = feature_encode(f, rec, sizeof rec, &rec_len);
    return rc ? rc : put_value(w, id, len, rec, rec_len, h, NULL, 0, state, state_len, buf, buf_cap);
}

int store_wtxn_get_state(store_wtxn *w, const char *id, size_t len, ls_features *f, store_bytes *state)
{
    MDB_val k = {len, (void *)id}, v;
    value_parts parts;
    state->ptr = NULL;
    state->len = 0;
    if (f)
        feature_init(f);
    int rc = cget(w, &k, &v);
    if (rc)
        return from_mdb(rc);
    if ((rc = split_value(&v, &parts)) != LS_OK)
        return note_damage(w, id, len, rc);
    state->ptr = parts.state;
    state->len = parts.state_len;
    return note_damage(w, id, len, f ? feature_decode(f, parts.rec, parts.rec_len) : LS_OK);
}

int store_wtxn_get_asof(store_wtxn *w, const char *id, size_t len, int64_t asof_ms, ls_features *out,
                        int64_t *next_ms)
{
    MDB_val k = {len, (void *)id}, v;
    if (next_ms)
        *next_ms = 0;
    int rc = from_mdb(cget(w, &k, &v));
    if (rc == LS_OK)
        rc = decode_value_record(&v, &w->s->decay, out);
    if (rc != LS_OK || out->last_seen_ms <= asof_ms)
        return note_damage(w, id, len, rc);
    history h; /* rare (events ahead of the clock): a history of its own */
    history_init(&h);
    rc = value_asof(&v, &w->s->decay, &h, asof_ms, out, next_ms);
    history_free(&h);
    return note_damage(w, id, len, rc);
}

int store_wtxn_put_state(store_wtxn *w, const char *id, size_t len, const void *state, size_t state_len)
{
    MDB_val k = {len, (void *)id}, v;
    value_parts parts;
    int rc = cget(w, &k, &v);
    if (rc)
        return from_mdb(rc);
    if ((rc = split_value(&v, &parts)) != LS_OK)
        return note_damage(w, id, len, rc);
    if (parts.state_len == state_len && (state_len == 0 || memcmp(parts.state, state, state_len) == 0))
        return LS_OK;
    /* the value's bytes live in the map: copy what is kept before writing */
    size_t keep = parts.rec_len + parts.hist_len;
    if (keep > w->copy_cap) {
        uint8_t *b = realloc(w->copy, keep);
        if (!b)
            return LS_ENOMEM;
        w->copy = b;
        w->copy_cap = keep;
    }
    memcpy(w->copy, parts.rec, parts.rec_len);
    if (parts.hist_len) /* a plain record has none (hist NULL) */
        memcpy(w->copy + parts.rec_len, parts.hist, parts.hist_len);
    return put_value(w, id, len, w->copy, parts.rec_len, NULL, w->copy + parts.rec_len, parts.hist_len, state,
                     state_len, &w->buf, &w->buf_cap);
}

int store_wtxn_put_back(store_wtxn *w, store_held *h)
{
    int rc = LS_OK;
    if (h->open && h->changed) {
        if (h->first_new >= h->n_at_hold) /* new events at the tail only */
            rc = history_apply_range(&h->h, h->n_at_hold, h->h.n, &w->s->decay, &h->f);
        else
            rc = history_replay(&h->h, INT64_MAX, &w->s->decay, &h->f);
        if (rc == LS_OK)
            rc = history_fold(&h->h, w->s->retention_ms, HISTORY_MAX_EVENTS, &w->s->decay, NULL);
        if (rc == LS_OK)
            rc = store_wtxn_put_customer(w, h->id, h->len, &h->f, &h->h, h->state, h->state_len, &h->buf,
                                         &h->buf_cap);
    }
    h->open = 0;
    return rc;
}

int store_wtxn_hold(store_wtxn *w, store_held *h, const ls_str *id)
{
    const char *target;
    size_t len;
    int rc = store_wtxn_resolve(w, id->ptr, id->len, &target, &len);
    if (rc)
        return rc;
    if (len >= sizeof h->id)
        return LS_ETOOLARGE;
    if (h->open && h->len == len && memcmp(h->id, target, len) == 0)
        return LS_OK;
    char copy[sizeof h->id];
    memcpy(copy, target, len); /* txn memory: copy before the next write */
    if ((rc = store_wtxn_put_back(w, h)))
        return rc;
    store_bytes state = {NULL, 0};
    rc = hold_read(w, copy, len, &h->f, &h->h, &state);
    if (rc != LS_OK && rc != LS_ENOTFOUND)
        return rc;
    if ((rc = held_keep_state(h, &state)) != LS_OK)
        return rc;
    memcpy(h->id, copy, len);
    h->len = len;
    h->open = 1;
    h->changed = 0;
    h->n_at_hold = h->first_new = h->h.n;
    return LS_OK;
}

int store_wtxn_add_event(store_wtxn *w, store_held *h, const ls_event *ev, int *dup)
{
    size_t at;
    int rc = store_wtxn_hold(w, h, &ev->customer);
    if (rc)
        return rc;
    uint64_t ident = ev->event_id.len ? history_ident(ev->event_id.ptr, ev->event_id.len) : 0;
    if ((rc = history_add(&h->h, ev, ident, dup, &at)) || *dup)
        return rc;
    h->changed = 1;
    if (at < h->first_new)
        h->first_new = at;
    return LS_OK;
}


/* Writes the window mark (WK_MARK_KEY) in w's txn. */
static int put_window_mark(store_wtxn *w, int64_t mark)
{
    MDB_val mk = {sizeof WK_MARK_KEY - 1, WK_MARK_KEY}, mv = {sizeof mark, &mark};
    int rc = mdb_put(w->txn, w->s->meta, &mk, &mv, 0);
    if (rc == 0)
        w->s->wk_mark = mark;
    return rc;
}

int store_wtxn_claim_event_id(store_wtxn *w, const char *eid, size_t eid_len,
                              const char *customer, size_t customer_len,
                              int64_t received_ms, int *seen)
{
    uint8_t tkey[8 + EVENT_MAX_STR];
    *seen = 0;
    if (eid_len == 0)
        return LS_EINVAL;
    if (eid_len > EVENT_MAX_STR || customer_len > EVENT_MAX_STR)
        return LS_ETOOLARGE;
    if (windowkeys_find(&w->s->wk, eid, eid_len)) {
        *seen = 1;
        return LS_OK;
    }
    MDB_val k = {eid_len, (void *)eid}, got;
    MDB_cursor *ids = NULL, *times = NULL;
    int rc = wcursor(w, WC_EVENT_IDS, &ids);
    if (rc == MDB_SUCCESS)
        rc = wcursor(w, WC_EVENT_TIMES, &times);
    if (rc == MDB_SUCCESS && !idfilter_may_hold(&w->s->ids, eid, eid_len)) {
        rc = MDB_NOTFOUND; /* never merged: the filter answers for event_ids */
        atomic_fetch_add_explicit(&w->s->ids_skipped, 1, memory_order_relaxed);
    } else if (rc == MDB_SUCCESS) {
        rc = mdb_cursor_get(ids, &k, &got, MDB_SET);
    }
    *seen = rc == MDB_SUCCESS;
    if (rc != MDB_NOTFOUND)
        return from_mdb(rc);
    /* new: its durable record is the by_time entry (the customer in its
     * value); event_ids gets it at the next merge (windowkeys.h) */
    int64_t key_ms = received_ms;
    if (key_ms < w->s->wk_mark && (rc = put_window_mark(w, key_ms)) != 0)
        return from_mdb(rc);
    bytecur_store_be64(tkey, (uint64_t)key_ms);
    memcpy(tkey + 8, eid, eid_len);
    MDB_val tk = {8 + eid_len, tkey}, tv = {customer_len, (void *)customer};
    if ((rc = wput_at(w, w->s->event_ids_by_time, times, &tk, &tv, 0)) != 0)
        return from_mdb(rc);
    return windowkeys_add(&w->s->wk, eid, eid_len, key_ms, customer, customer_len);
}

void store_wtxn_prefetch_event_id(store_wtxn *w, const char *eid, size_t eid_len)
{
    windowkeys_prefetch(&w->s->wk, eid, eid_len);
    idfilter_prefetch(&w->s->ids, eid, eid_len);
}

/* The event_ids value of a merged key: i64 by_time key time + customer. */
static int merge_one(store_wtxn *w, MDB_cursor *ids, const windowkeys_entry *e, uint64_t hash)
{
    uint8_t val[8 + EVENT_MAX_STR];
    memcpy(val, &e->key_ms, 8);
    memcpy(val + 8, windowkeys_customer(e), e->customer_len);
    MDB_val k = {e->id_len, (void *)windowkeys_id(e)}, v = {8 + (size_t)e->customer_len, val};
    /* into the filters first: one that holds an id whose merge then
     * fails or aborts only sends a claim to event_ids for nothing */
    idfilter_add_hash(&w->s->ids, hash);
    idfilter_add_hash(&w->s->ids_next, hash);
    int rc = wput_at(w, w->s->event_ids, ids, &k, &v, MDB_NOOVERWRITE);
    return rc == MDB_KEYEXIST ? 0 : rc; /* there already: nothing to merge */
}

/* 1 when a sweep should begin now. */
static int sweep_due(const store *s, int64_t now_ms, int idle)
{
    size_t live = windowkeys_live(&s->wk);
    uint64_t eighth = s->wk_table_keys / 8;
    if (live == 0)
        return 0;
    return live >= (eighth > WK_MIN_MERGE ? eighth : WK_MIN_MERGE) || windowkeys_bytes(&s->wk) >= WK_MAX_BYTES ||
           (idle && now_ms - s->wk_swept_ms >= WK_IDLE_SWEEP_MS);
}

int store_window_keys_due(const store *s, int64_t now_ms, int idle)
{
    return s->wk.sweeping || sweep_due(s, now_ms, idle);
}

/* The filter hash of a key to merge, its blocks fetched into the cache. */
static uint64_t hash_ahead(store *s, const windowkeys_entry *e)
{
    uint64_t hash = idfilter_hash(windowkeys_id(e), e->id_len);
    idfilter_prefetch_hash(&s->ids, hash);
    idfilter_prefetch_hash(&s->ids_next, hash);
    return hash;
}

int store_wtxn_merge_window_keys(store_wtxn *w, int64_t now_ms, int idle, int *took, size_t *merged)
{
    store *s = w->s;
    windowkeys_entry **slice;
    size_t n;
    int last, rc;
    MDB_stat st;
    *merged = 0;
    *took = 0;
    if (!s->wk.sweeping) {
        if (!sweep_due(s, now_ms, idle))
            return LS_OK;
        if ((rc = windowkeys_sweep_begin(&s->wk, (uint64_t)now_ms)) != LS_OK)
            return rc;
    }
    int64_t oldest_left;
    windowkeys_slice(&s->wk, &slice, &n, &last, &oldest_left);
    *took = 1;
    MDB_cursor *ids;
    rc = wcursor(w, WC_EVENT_IDS, &ids);
    uint64_t ahead[FILTER_AHEAD];
    for (size_t i = 0; i < n && i < FILTER_AHEAD; i++)
        ahead[i] = hash_ahead(s, slice[i]);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t hash = ahead[i % FILTER_AHEAD];
        if (i + FILTER_AHEAD < n)
            ahead[i % FILTER_AHEAD] = hash_ahead(s, slice[i + FILTER_AHEAD]);
        if (!slice[i]->dead) { /* else pruned or forgotten since the sweep began */
            rc = merge_one(w, ids, slice[i], hash);
            ++*merged;
        }
    }
    if (rc == 0 && oldest_left != s->wk_mark)
        rc = put_window_mark(w, oldest_left);
    if (rc == 0 && last)
        s->wk_swept_ms = now_ms;
    if (rc == 0 && mdb_stat(w->txn, s->event_ids, &st) == 0)
        s->wk_table_keys = st.ms_entries;
    return from_mdb(rc);
}

/* ---- the filter of merged ids ---- */

int store_id_filter_due(const store *s)
{
    return !s->read_only && (s->ids_building || !s->ids.words || idfilter_overfull(&s->ids));
}

/* A new filter for ids_next, sized by what event_ids holds and will. */
static int start_id_filter(store *s)
{
    uint64_t keys = 2 * (s->wk_table_keys + windowkeys_live(&s->wk));
    int rc = idfilter_make(&s->ids_next, keys > s->ids_min_keys ? keys : s->ids_min_keys);
    if (rc != LS_OK)
        return rc;
    s->ids_building = 1;
    s->ids_resume_set = 0;
    return LS_OK;
}

/* The whole table has been scanned into ids_next: it answers now. */
static void finish_id_filter(store *s)
{
    idfilter_free(&s->ids);
    s->ids = s->ids_next;
    /* what it holds is the table: ids merged ahead of the scan were added
     * twice, and a merge tried again after an abort adds its ids again */
    s->ids.added = s->wk_table_keys;
    idfilter_init(&s->ids_next);
    s->ids_building = 0;
    atomic_store(&s->ids_bytes, idfilter_bytes(&s->ids));
}

/* Adds up to budget keys of event_ids after the resume key to ids_next;
 * *end is 1 when it reached the end of the table. */
static int scan_id_filter(store *s, MDB_txn *txn, size_t budget, int *end)
{
    MDB_cursor *cur;
    MDB_val k = {s->ids_resume_len, s->ids_resume}, v;
    int rc = mdb_cursor_open(txn, s->event_ids, &cur);
    if (rc)
        return from_mdb(rc);
    rc = mdb_cursor_get(cur, &k, &v, s->ids_resume_set ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == 0 && s->ids_resume_set && k.mv_size == s->ids_resume_len &&
        memcmp(k.mv_data, s->ids_resume, k.mv_size) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* added by the last call */
    uint64_t ahead[FILTER_AHEAD]; /* the keys' hashes, added FILTER_AHEAD keys later */
    MDB_val last = {0, NULL};
    size_t n = 0;
    for (; rc == 0 && n < budget; n++) {
        uint64_t hash = idfilter_hash(k.mv_data, k.mv_size);
        idfilter_prefetch_hash(&s->ids_next, hash);
        if (n >= FILTER_AHEAD)
            idfilter_add_hash(&s->ids_next, ahead[n % FILTER_AHEAD]);
        ahead[n % FILTER_AHEAD] = hash;
        last = k;
        if (n + 1 < budget)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    for (size_t i = n > FILTER_AHEAD ? n - FILTER_AHEAD : 0; i < n; i++)
        idfilter_add_hash(&s->ids_next, ahead[i % FILTER_AHEAD]);
    if (last.mv_data && last.mv_size <= sizeof s->ids_resume) { /* LMDB keys fit */
        memcpy(s->ids_resume, last.mv_data, last.mv_size);
        s->ids_resume_len = last.mv_size;
        s->ids_resume_set = 1;
    }
    mdb_cursor_close(cur);
    *end = rc == MDB_NOTFOUND;
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

int store_build_id_filter(store *s, size_t budget, int *done)
{
    store_wtxn *w;
    int end = 0, rc;
    *done = 0;
    if (!store_id_filter_due(s))
        return LS_OK;
    if (!s->ids_building && (rc = start_id_filter(s)) != LS_OK)
        return rc;
    /* a write txn: no merge runs beside the scan, and it sees them all */
    if ((rc = store_write_begin(s, &w)) != LS_OK)
        return rc;
    rc = scan_id_filter(s, w->txn, budget ? budget : 1, &end);
    store_write_abort(&w);
    if (rc == LS_OK && end) {
        finish_id_filter(s);
        *done = 1;
    }
    return rc;
}

int store_wtxn_prune_event_ids(store_wtxn *w, int64_t cutoff_ms, size_t max, size_t *pruned)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    wcursor_drop(w, w->s->event_ids_by_time); /* it deletes through a cursor of its own */
    int rc = mdb_cursor_open(w->txn, w->s->event_ids_by_time, &cur);
    if (rc)
        return from_mdb(rc);
    while (n < max && (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size < 8 || (int64_t)bytecur_load_be64(k.mv_data) >= cutoff_ms)
            break;
        MDB_val ek = {k.mv_size - 8, (uint8_t *)k.mv_data + 8};
        windowkeys_entry *e = windowkeys_find(&w->s->wk, ek.mv_data, ek.mv_size);
        if (e && windowkeys_kill(&w->s->wk, e) != LS_OK) {
            mdb_cursor_close(cur);
            return LS_ENOMEM;
        }
        rc = e ? 0 : wdel(w, w->s->event_ids, &ek);
        if (rc && rc != MDB_NOTFOUND)
            break;
        w->writes++;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        n++;
    }
    mdb_cursor_close(cur);
    *pruned = n;
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

/* ------------------------------------------------------------------ */
/* Aliases and erasure                                                 */
/* ------------------------------------------------------------------ */

#define ID_MAX 512

/* Key of the reverse index: target NUL anonymous.  Ids may hold NUL
 * bytes, so one key reads several ways ("t\0x\0y" is both y aliased to
 * "t\0x" and "x\0y" aliased to "t"): the forward record (aliases) says
 * which readings hold -- alias_points_at, drop_reverse. */
static size_t target_key(uint8_t *buf, const char *target, size_t tlen, const char *anon, size_t alen)
{
    memcpy(buf, target, tlen);
    buf[tlen] = 0;
    memcpy(buf + tlen + 1, anon, alen);
    return tlen + 1 + alen;
}

static int put_alias(store_wtxn *w, const char *anon, size_t alen, const char *target, size_t tlen)
{
    uint8_t key[2 * ID_MAX + 1];
    MDB_val k = {alen, (void *)anon}, v = {tlen, (void *)target}, empty = {0, ""};
    int rc = wput(w, w->s->aliases, &k, &v, 0);
    if (rc)
        return from_mdb(rc);
    MDB_val rk = {target_key(key, target, tlen, anon, alen), key};
    return from_mdb(wput(w, w->s->alias_targets, &rk, &empty, 0));
}

/* Whether anon's forward record points at exactly target. */
static int alias_points_at(store_wtxn *w, const void *anon, size_t alen, const void *target, size_t tlen)
{
    MDB_val k = {alen, (void *)anon}, v;
    return mdb_get(w->txn, w->s->aliases, &k, &v) == 0 && v.mv_size == tlen && memcmp(v.mv_data, target, tlen) == 0;
}

/* Deletes reverse key `key` once the forward record of the alias it was
 * written for has changed -- unless another reading of the key is still
 * a live alias (target_key).  A status. */
static int drop_reverse(store_wtxn *w, uint8_t *key, size_t klen)
{
    for (size_t i = 1; i + 1 < klen; i++)
        if (key[i] == 0 && alias_points_at(w, key + i + 1, klen - i - 1, key, i))
            return LS_OK;
    MDB_val rk = {klen, key};
    int rc = wdel(w, w->s->alias_targets, &rk);
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

/* Calls fn for every anonymous id aliased to target (collected first, so
 * fn may write): the keys the prefix scan for `target NUL` finds whose
 * anonymous id's forward record points at exactly target.  The others
 * belong to a longer target that begins with `target NUL`. */
static int each_alias_of(store_wtxn *w, const char *target, size_t tlen, store_alias_fn fn, void *arg)
{
    uint8_t prefix[ID_MAX + 1];
    MDB_cursor *cur;
    MDB_val k, v;
    char *ids = NULL; /* the ids, each as u16 length + bytes: collected first, fn may write */
    size_t used = 0, cap = 0;
    memcpy(prefix, target, tlen);
    prefix[tlen] = 0;
    int rc = mdb_cursor_open(w->txn, w->s->alias_targets, &cur), st = LS_OK;
    if (rc)
        return from_mdb(rc);
    k = (MDB_val){tlen + 1, prefix};
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= tlen + 1 || memcmp(k.mv_data, prefix, tlen + 1) != 0)
            break;
        const uint8_t *anon = (const uint8_t *)k.mv_data + tlen + 1;
        size_t alen = k.mv_size - tlen - 1;
        if (!alias_points_at(w, anon, alen, target, tlen))
            continue;
        if (used + 2 + alen > cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            while (ncap < used + 2 + alen)
                ncap *= 2;
            char *more = realloc(ids, ncap);
            if (!more) {
                st = LS_ENOMEM;
                break;
            }
            ids = more;
            cap = ncap;
        }
        ids[used] = (char)(alen >> 8);
        ids[used + 1] = (char)alen;
        memcpy(ids + used + 2, anon, alen);
        used += 2 + alen;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != 0 && rc != MDB_NOTFOUND)
        st = from_mdb(rc);
    for (size_t at = 0; st == LS_OK && at < used;) {
        size_t alen = (size_t)(uint8_t)ids[at] << 8 | (uint8_t)ids[at + 1];
        st = fn(w, ids + at + 2, alen, arg);
        at += 2 + alen;
    }
    free(ids);
    return st;
}

/* An alias of `old` that would not fit next to a target of *arg bytes. */
static int alias_fits(store_wtxn *w, const char *anon, size_t alen, void *arg)
{
    (void)w;
    (void)anon;
    return store_check_alias(alen, *(const size_t *)arg);
}

/* LS_ETOOLARGE when an anonymous id aliased to `old` would not fit the
 * reverse index once moved to a target of tlen bytes: checked before an
 * alias writes anything, so a refusal leaves the txn as it was. */
static int aliases_fit(store_wtxn *w, const char *old, size_t olen, size_t tlen)
{
    return each_alias_of(w, old, olen, alias_fits, &tlen);
}

typedef struct {
    const char *target;
    size_t tlen;
    const char *old;
    size_t olen;
} repoint;

/* Moves one alias of `old` over to the new target. */
static int repoint_alias(store_wtxn *w, const char *anon, size_t alen, void *arg)
{
    repoint *rp = arg;
    uint8_t key[2 * ID_MAX + 1];
    int rc = put_alias(w, anon, alen, rp->target, rp->tlen);
    return rc ? rc : drop_reverse(w, key, target_key(key, rp->old, rp->olen, anon, alen));
}

/* Folds customer from's history into to's, replays the merged history
 * into to's record, and deletes from's record and history. */
static int merge_histories(store_wtxn *w, const char *from, size_t from_len, const char *to, size_t tlen)
{
    store_held held;
    ls_features a, b;
    history src;
    store_bytes state = {NULL, 0};
    store_held_init(&held);
    history_init(&src);
    int rc = note_damage(w, to, tlen, read_customer_state(w->txn, w->s, to, tlen, &b, &held.h, &state));
    if (rc == LS_OK || rc == LS_ENOTFOUND)
        rc = held_keep_state(&held, &state); /* to's automation state stays */
    if (rc == LS_OK)
        rc = note_damage(w, from, from_len, read_customer(w->txn, w->s, from, from_len, &a, &src));
    if (rc == LS_OK)
        rc = history_merge(&held.h, &src, &w->s->decay);
    if (rc == LS_OK)
        rc = history_replay(&held.h, INT64_MAX, &w->s->decay, &b);
    if (rc == LS_OK)
        rc = store_wtxn_put_customer(w, to, tlen, &b, &held.h, held.state, held.state_len, &held.buf,
                                     &held.buf_cap);
    MDB_val k = {from_len, (void *)from};
    if (rc == LS_OK)
        rc = from_mdb(cdel(w, &k));
    history_free(&src);
    store_held_free(&held);
    return rc;
}

int store_wtxn_alias(store_wtxn *w, const char *from, size_t from_len, const char *to_in, size_t to_len_in,
                     int *merged)
{
    char to[ID_MAX];
    const char *t, *cur;
    size_t tlen, clen;
    ls_features a;
    *merged = 0;
    int rc = store_check_alias(from_len, to_len_in);
    if (rc)
        return rc;
    if ((rc = store_wtxn_resolve(w, to_in, to_len_in, &t, &tlen)))
        return rc;
    if ((rc = store_check_alias(from_len, tlen))) /* the target the reverse index keys on */
        return rc;
    memcpy(to, t, tlen); /* copy before writing in the txn */
    if ((rc = store_wtxn_resolve(w, from, from_len, &cur, &clen)))
        return rc;
    if (clen == tlen && memcmp(cur, to, tlen) == 0)
        return LS_OK; /* already lands there: idempotent */
    if (clen != from_len || memcmp(cur, from, from_len) != 0)
        return LS_EINVAL; /* merged into someone else already */
    if ((rc = aliases_fit(w, from, from_len, tlen)))
        return rc;
    int have_from = store_wtxn_get(w, from, from_len, &a) == LS_OK;
    if (have_from && (rc = merge_histories(w, from, from_len, to, tlen)))
        return rc;
    repoint rp = {to, tlen, from, from_len};
    if ((rc = each_alias_of(w, from, from_len, repoint_alias, &rp)) || (rc = put_alias(w, from, from_len, to, tlen)))
        return rc;
    *merged = 1;
    return LS_OK;
}

/* The ids whose events count for a customer being forgotten: the
 * customer and every alias, however many. */
typedef struct {
    const char *p;
    size_t len;
} id_ref;

typedef struct {
    size_t n, cap;
    size_t *len;
    char (*id)[ID_MAX];
    int failed;      /* out of memory */
    id_ref *sorted;  /* with nsorted == n: the ids in order (id_set_sort) */
    size_t nsorted;
} id_set;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int id_set_has(const id_set *set, const void *id, size_t len)
{
    if (set->sorted && set->nsorted == set->n) {
        id_ref key = {id, len};
        return bsearch(&key, set->sorted, set->n, sizeof key, id_ref_cmp) != NULL;
    }
    for (size_t i = 0; i < set->n; i++)
        if (set->len[i] == len && memcmp(set->id[i], id, len) == 0)
            return 1;
    return 0;
}

/* Sorts a big set (a purge's customers) for id_set_has; added to after,
 * it is searched in full again.  Without memory the linear search stays:
 * slower, never wrong. */
static void id_set_sort(id_set *set)
{
    if (set->n < 16)
        return;
    id_ref *refs = realloc(set->sorted, set->n * sizeof *refs);
    if (!refs)
        return;
    set->sorted = refs;
    for (size_t i = 0; i < set->n; i++)
        refs[i] = (id_ref){set->id[i], set->len[i]};
    qsort(refs, set->n, sizeof *refs, id_ref_cmp);
    set->nsorted = set->n;
}

static void id_set_free(id_set *set)
{
    free(set->len);
    free(set->id);
    free(set->sorted);
    memset(set, 0, sizeof *set);
}

static void id_set_add(id_set *set, const char *id, size_t len)
{
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        size_t *l = realloc(set->len, cap * sizeof *l);
        if (l)
            set->len = l;
        char(*ids)[ID_MAX] = l ? realloc(set->id, cap * sizeof *ids) : NULL;
        if (!ids) {
            set->failed = 1;
            return;
        }
        set->id = ids;
        set->cap = cap;
    }
    memcpy(set->id[set->n], id, len);
    set->len[set->n++] = len;
}

/* Drops one alias of the customer being forgotten, remembering its id. */
static int drop_alias(store_wtxn *w, const char *anon, size_t alen, void *arg)
{
    id_set *set = arg;
    uint8_t key[2 * ID_MAX + 1];
    MDB_val k = {alen, (void *)anon};
    int rc = wdel(w, w->s->aliases, &k);
    id_set_add(set, anon, alen);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    return drop_reverse(w, key, target_key(key, set->id[0], set->len[0], anon, alen));
}

typedef struct {
    store_wtxn *w;
    const id_set *set;
    int *deleted;
} drop_unmerged_ctx;

/* An unmerged key of one of the set's ids: its by_time entry goes, and
 * it leaves the window keys (undone if the txn aborts). */
static int drop_unmerged(void *arg, windowkeys_entry *e)
{
    drop_unmerged_ctx *c = arg;
    uint8_t tkey[8 + EVENT_MAX_STR];
    if (!id_set_has(c->set, windowkeys_customer(e), e->customer_len) || e->id_len > EVENT_MAX_STR)
        return 0;
    bytecur_store_be64(tkey, (uint64_t)e->key_ms);
    memcpy(tkey + 8, windowkeys_id(e), e->id_len);
    MDB_val tk = {8 + (size_t)e->id_len, tkey};
    int rc = wdel(c->w, c->w->s->event_ids_by_time, &tk);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    *c->deleted = 1;
    return windowkeys_kill(&c->w->s->wk, e);
}

/* Deletes every idempotency key recorded for one of the ids in set.  A
 * full scan of the keys: erasure is rare, and the keys are bounded by the
 * dedupe window. */
static int drop_event_ids(store_wtxn *w, const id_set *set, int *deleted)
{
    drop_unmerged_ctx c = {w, set, deleted};
    int st = windowkeys_each(&w->s->wk, drop_unmerged, &c);
    if (st)
        return st;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t tkey[8 + EVENT_MAX_STR];
    wcursor_drop(w, w->s->event_ids); /* it deletes through a cursor of its own */
    int rc = mdb_cursor_open(w->txn, w->s->event_ids, &cur);
    if (rc)
        return from_mdb(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size < 8 || !id_set_has(set, (uint8_t *)v.mv_data + 8, v.mv_size - 8) || k.mv_size > EVENT_MAX_STR)
            continue;
        int64_t received;
        memcpy(&received, v.mv_data, 8);
        bytecur_store_be64(tkey, (uint64_t)received);
        memcpy(tkey + 8, k.mv_data, k.mv_size);
        MDB_val tk = {8 + k.mv_size, tkey};
        int d = wdel(w, w->s->event_ids_by_time, &tk);
        if (d && d != MDB_NOTFOUND)
            break;
        w->writes++;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        *deleted = 1;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

/* The record, the aliases: all store_wtxn_forget erases but the keys;
 * set gets the customer and every alias. */
static int forget_record_in(store_wtxn *w, const char *id_in, size_t len_in, id_set *set, int *deleted)
{
    const char *id;
    size_t len;
    int rc = store_wtxn_resolve(w, id_in, len_in, &id, &len);
    if (rc)
        return rc;
    id_set_add(set, id, len); /* set->id[0] is the customer itself */
    if (len != len_in || memcmp(id, id_in, len) != 0)
        id_set_add(set, id_in, len_in);
    MDB_val k = {len, set->id[0]};
    rc = cdel(w, &k);
    if (rc && rc != MDB_NOTFOUND)
        return from_mdb(rc);
    *deleted = rc == 0;
    size_t before = set->n;
    if ((rc = each_alias_of(w, set->id[0], set->len[0], drop_alias, set)))
        return rc;
    *deleted |= set->n > before;
    return set->failed ? LS_ENOMEM : LS_OK; /* the whole group's transaction is aborted: nothing half-erased */
}

int store_wtxn_forget(store_wtxn *w, const char *id, size_t len, int *deleted)
{
    id_set set = {0};
    *deleted = 0;
    int rc = forget_record_in(w, id, len, &set, deleted);
    if (rc == LS_OK)
        rc = drop_event_ids(w, &set, deleted);
    id_set_free(&set);
    return rc;
}

struct store_forgotten {
    id_set all;
};

store_forgotten *store_forgotten_new(void)
{
    return calloc(1, sizeof(store_forgotten));
}

void store_forgotten_free(store_forgotten **f)
{
    if (!*f)
        return;
    id_set_free(&(*f)->all);
    free(*f);
    *f = NULL;
}

int store_wtxn_forget_record(store_wtxn *w, const char *id, size_t len, store_forgotten *f, int *deleted)
{
    id_set one = {0}; /* drop_alias reads the customer as its first id */
    *deleted = 0;
    int rc = forget_record_in(w, id, len, &one, deleted);
    for (size_t i = 0; rc == LS_OK && i < one.n; i++)
        id_set_add(&f->all, one.id[i], one.len[i]);
    if (rc == LS_OK && f->all.failed)
        rc = LS_ENOMEM;
    id_set_free(&one);
    return rc;
}

int store_wtxn_forget_keys(store_wtxn *w, store_forgotten *f)
{
    int deleted = 0;
    if (f->all.n == 0)
        return LS_OK;
    id_set_sort(&f->all);
    int rc = drop_event_ids(w, &f->all, &deleted);
    id_set_free(&f->all);
    return rc;
}

int store_compact(store *s, const char *out)
{
    /* the file made here, with the store's own mode (LMDB's copy would
     * make it 0644 by the umask: a store readable by everyone) */
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", out);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return from_mdb(errno);
    int rc = disk_full_as_such(s, mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    return from_mdb(rc);
}

/* ------------------------------------------------------------------ */
/* The automation tables: raw keys and values                          */
/* ------------------------------------------------------------------ */

static int table_get(MDB_txn *txn, const store *s, store_table t, const void *key, size_t klen, store_bytes *out)
{
    if (!s->has_tables)
        return LS_ENOTFOUND;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn, s->tables[t], &k, &v);
    if (rc == 0) {
        out->ptr = v.mv_data;
        out->len = v.mv_size;
    }
    return from_mdb(rc);
}

/* Visits keys >= from (from NULL: all) in order until fn returns non-zero
 * (that value is returned) or the table ends. */
static int table_scan(MDB_txn *txn, const store *s, store_table t, const void *from, size_t fromlen,
                      store_kv_fn fn, void *arg)
{
    if (!s->has_tables)
        return LS_OK;
    MDB_cursor *cur;
    MDB_val k = {fromlen, (void *)from}, v;
    int rc = mdb_cursor_open(txn, s->tables[t], &cur);
    if (rc)
        return from_mdb(rc);
    int st = LS_OK;
    rc = mdb_cursor_get(cur, &k, &v, from && fromlen ? MDB_SET_RANGE : MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        store_bytes kb = {k.mv_data, k.mv_size}, vb = {v.mv_data, v.mv_size};
        if ((st = fn(arg, &kb, &vb)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != MDB_NOTFOUND && rc != 0)
        st = from_mdb(rc);
    return st;
}

static int table_last(MDB_txn *txn, const store *s, store_table t, store_bytes *key)
{
    if (!s->has_tables)
        return LS_ENOTFOUND;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->tables[t], &cur);
    if (rc)
        return from_mdb(rc);
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0) {
        key->ptr = k.mv_data;
        key->len = k.mv_size;
    }
    mdb_cursor_close(cur);
    return from_mdb(rc);
}

int store_wtxn_tcount(store_wtxn *w, store_table t, size_t *n)
{
    MDB_stat st;
    *n = 0;
    if (!w->s->has_tables)
        return LS_OK;
    int rc = mdb_stat(w->txn, w->s->tables[t], &st);
    if (rc == 0)
        *n = st.ms_entries;
    return from_mdb(rc);
}

int store_wtxn_tget(store_wtxn *w, store_table t, const void *key, size_t klen, store_bytes *out)
{
    return table_get(w->txn, w->s, t, key, klen, out);
}

int store_wtxn_tput(store_wtxn *w, store_table t, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    return from_mdb(wput(w, w->s->tables[t], &k, &v, 0));
}

int store_wtxn_tdel(store_wtxn *w, store_table t, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    return from_mdb(wdel(w, w->s->tables[t], &k));
}

int store_wtxn_tscan(store_wtxn *w, store_table t, const void *from, size_t fromlen, store_kv_fn fn, void *arg)
{
    return table_scan(w->txn, w->s, t, from, fromlen, fn, arg);
}

int store_wtxn_tdel_prefix(store_wtxn *w, store_table t, const void *prefix, size_t prefix_len, size_t *deleted)
{
    MDB_cursor *cur;
    MDB_val k = {prefix_len, (void *)prefix}, v;
    *deleted = 0;
    if (!w->s->has_tables)
        return LS_OK;
    int rc = mdb_cursor_open(w->txn, w->s->tables[t], &cur);
    if (rc)
        return from_mdb(rc);
    /* seek the prefix again after each delete, as the other pruners do */
    while ((k = (MDB_val){prefix_len, (void *)prefix}, rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0) {
        if (k.mv_size < prefix_len || memcmp(k.mv_data, prefix, prefix_len) != 0)
            break;
        w->writes++;
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        (*deleted)++;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

int store_wtxn_tlast(store_wtxn *w, store_table t, store_bytes *key)
{
    return table_last(w->txn, w->s, t, key);
}

int store_reader_tget(store_reader *r, store_table t, const void *key, size_t klen, store_bytes *out)
{
    return table_get(r->txn, r->s, t, key, klen, out);
}

int store_reader_tscan(store_reader *r, store_table t, const void *from, size_t fromlen, store_kv_fn fn, void *arg)
{
    return table_scan(r->txn, r->s, t, from, fromlen, fn, arg);
}

int store_reader_tlast(store_reader *r, store_table t, store_bytes *key)
{
    return table_last(r->txn, r->s, t, key);
}

/* Walks the customers table from the first key > after (after NULL or
 * empty: from the first) in id order, at most max keys, calling each with
 * every key and value until it returns non-zero (its value is returned).
 * *visited counts the keys; *more is 0 when the table ended. */
typedef int (*customer_kv_fn)(store_wtxn *w, const MDB_val *k, const MDB_val *v, void *arg);

static int walk_customers(store_wtxn *w, const char *after, size_t after_len, size_t max, customer_kv_fn each,
                          void *arg, size_t *visited, int *more)
{
    MDB_cursor *cur;
    MDB_val k = {after_len, (void *)after}, v;
    *visited = 0;
    *more = 0;
    int rc = mdb_cursor_open(w->txn, w->s->customers, &cur);
    if (rc)
        return from_mdb(rc);
    rc = mdb_cursor_get(cur, &k, &v, after && after_len ? MDB_SET_RANGE : MDB_FIRST);
    if (rc == 0 && after && after_len && k.mv_size == after_len && memcmp(k.mv_data, after, after_len) == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    int st = LS_OK;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (*visited >= max) {
            *more = 1;
            break;
        }
        (*visited)++;
        if ((st = each(w, &k, &v, arg)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != MDB_NOTFOUND && rc != 0)
        st = from_mdb(rc);
    return st;
}

typedef struct {
    store_visit_fn fn;
    void *arg;
} visit_records;

/* A value that cannot be decoded is passed by. */
static int each_record(store_wtxn *w, const MDB_val *k, const MDB_val *v, void *arg)
{
    visit_records *vr = arg;
    ls_features f;
    if (decode_value_record(v, &w->s->decay, &f) != LS_OK)
        return 0;
    return vr->fn(vr->arg, k->mv_data, k->mv_size, &f);
}

int store_wtxn_scan_customers(store_wtxn *w, const char *after, size_t after_len, size_t max,
                              store_visit_fn fn, void *arg, size_t *visited, int *more)
{
    visit_records vr = {fn, arg};
    return walk_customers(w, after, after_len, max, each_record, &vr, visited, more);
}

typedef struct {
    store_id_fn fn;
    void *arg;
} visit_ids;

static int each_id(store_wtxn *w, const MDB_val *k, const MDB_val *v, void *arg)
{
    visit_ids *vi = arg;
    (void)w;
    (void)v;
    return vi->fn(vi->arg, k->mv_data, k->mv_size);
}

int store_wtxn_scan_customer_ids(store_wtxn *w, const char *after, size_t after_len, size_t max, store_id_fn fn,
                                 void *arg, size_t *visited, int *more)
{
    visit_ids vi = {fn, arg};
    return walk_customers(w, after, after_len, max, each_id, &vi, visited, more);
}

int store_wtxn_each_alias(store_wtxn *w, const char *target, size_t tlen, store_alias_fn fn, void *arg)
{
    if (!w->s->has_aliases || tlen > ID_MAX)
        return LS_OK;
    return each_alias_of(w, target, tlen, fn, arg);
}

/* ------------------------------------------------------------------ */
/* Parallel scans: one snapshot, split keys, key ranges (store.h)      */
/* ------------------------------------------------------------------ */

#include <sched.h>

int store_reader_begin_same(store_reader *const *rs, int n)
{
    if (n < 1)
        return LS_EINVAL;
    for (int attempt = 0; attempt < STORE_SAME_ATTEMPTS; attempt++) {
        int rc = store_reader_begin(rs[0]); /* adopts a grown map with no other snapshot open */
        if (rc != LS_OK)
            return rc;
        size_t id = mdb_txn_id(rs[0]->txn);
        int i = 1, again = 0;
        for (; i < n && !again; i++) {
            store_reader *r = rs[i];
            store_reader_end(r);
            /* a second shared hold by this thread: only try it, so a
             * waiting store_grow (writer-preferring lock) cannot deadlock us */
            if (pthread_rwlock_tryrdlock(&r->s->map_lock) != 0) {
                again = 1;
                break;
            }
            rc = mdb_txn_renew(r->txn);
            if (rc != 0) {
                pthread_rwlock_unlock(&r->s->map_lock);
                if (rc != MDB_MAP_RESIZED) {
                    for (int j = 0; j < i; j++)
                        store_reader_end(rs[j]);
                    return from_mdb(rc);
                }
                again = 1; /* the next round's first begin adopts the new size */
                break;
            }
            r->active = 1;
            again = mdb_txn_id(r->txn) != id; /* a commit landed in between */
        }
        if (!again)
            return LS_OK;
        for (int j = 0; j < n; j++)
            store_reader_end(rs[j]);
        sched_yield();
    }
    return LS_EUNAVAIL;
}

void store_split_free(store_split *sp)
{
    free(sp->bytes);
    free(sp->off);
    memset(sp, 0, sizeof *sp);
}

static int split_push(store_split *sp, const void *key, size_t len)
{
    if (sp->n + 2 > sp->off_cap) {
        size_t cap = sp->off_cap ? sp->off_cap * 2 : 256;
        size_t *off = realloc(sp->off, cap * sizeof *off);
        if (!off)
            return LS_ENOMEM;
        sp->off = off;
        sp->off_cap = cap;
        if (sp->n == 0)
            sp->off[0] = 0;
    }
    size_t used = sp->off[sp->n];
    if (used + len > sp->bytes_cap) {
        size_t cap = sp->bytes_cap ? sp->bytes_cap * 2 : 4096;
        while (cap < used + len)
            cap *= 2;
        uint8_t *b = realloc(sp->bytes, cap);
        if (!b)
            return LS_ENOMEM;
        sp->bytes = b;
        sp->bytes_cap = cap;
    }
    memcpy(sp->bytes + used, key, len);
    sp->off[++sp->n] = used + len;
    return LS_OK;
}

/* The page-level sampler reads the separator keys of the customers
 * B-tree's upper branch pages straight from the map, in LMDB's on-disk
 * page format (0.9, 64-bit: 16-byte page header - pgno, pad, flags,
 * lower, upper - then u16 node offsets; a branch node is u16 lo, hi,
 * flags (the child pgno's three parts), u16 key size, key).  Everything
 * is checked against the page bounds; any surprise makes it give up and
 * the caller falls back to a cursor walk.  Split keys only balance the
 * work: a wrong one would cost speed, never a row. */
typedef struct {
    const uint8_t *base;
    size_t psize;
    uint64_t npages;
    store_split *out;   /* NULL: count only */
    uint64_t count;
    int bad;
} page_walk;

static uint16_t rd16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Emits, in key order, the separators of branch page pgno (at level lvl,
 * the root being 1) and of its branch descendants down to level deepest. */
static void walk_branch(page_walk *w, uint64_t pgno, int lvl, int deepest)
{
    if (w->bad || pgno >= w->npages) {
        w->bad = 1;
        return;
    }
    const uint8_t *p = w->base + pgno * w->psize;
    uint16_t flags = rd16(p + 10), lower = rd16(p + 12), upper = rd16(p + 14);
    if (rd64(p) != pgno || !(flags & 0x01) || lower < 16 || lower > upper || upper > w->psize) {
        w->bad = 1;
        return;
    }
    int n = (lower - 16) / 2;
    for (int i = 0; i < n && !w->bad; i++) {
        size_t off = rd16(p + 16 + 2 * i);
        if (off < upper || off + 8 > w->psize || off + 8 + rd16(p + off + 6) > w->psize) {
            w->bad = 1;
            return;
        }
        const uint8_t *node = p + off;
        if (i > 0) { /* a branch page's first key is empty: it is the parent's */
            w->count++;
            if (w->out && split_push(w->out, node + 8, rd16(node + 6)) != LS_OK)
                w->bad = 1;
        }
        if (lvl < deepest)
            walk_branch(w, (uint64_t)rd16(node) | (uint64_t)rd16(node + 2) << 16 | (uint64_t)rd16(node + 4) << 32,
                        lvl + 1, deepest);
    }
}

/* The customers tree's upper separators, about `want` of them, through
 * the pages; LS_EINTERNAL when the pages are not what the walk expects. */
static int split_by_pages(store_reader *r, const MDB_stat *st, size_t want, store_split *raw)
{
    MDB_dbi main_dbi;
    MDB_val k = {9, "customers"}, v;
    MDB_envinfo info;
    if (sizeof(void *) != 8 || st->ms_depth < 2 || mdb_dbi_open(r->txn, NULL, 0, &main_dbi) != 0 ||
        mdb_get(r->txn, main_dbi, &k, &v) != 0 || v.mv_size < 48 || mdb_env_info(r->s->env, &info) != 0)
        return LS_EINTERNAL;
    uint64_t root = rd64((const uint8_t *)v.mv_data + 40); /* MDB_db.md_root */
    /* the map's base, from the page that holds the table's record: pages
     * are psize-aligned in a page-aligned map and start with their pgno */
    uintptr_t at = (uintptr_t)v.mv_data & ~(uintptr_t)(st->ms_psize - 1);
    uint64_t pgno = rd64((const uint8_t *)at);
    if (pgno > info.me_last_pgno || pgno * st->ms_psize > at)
        return LS_EINTERNAL;
    page_walk w = {(const uint8_t *)(at - pgno * st->ms_psize), st->ms_psize, (uint64_t)info.me_last_pgno + 1, NULL,
                   0, 0};
    int deepest = 1;
    for (; deepest < (int)st->ms_depth - 1; deepest++) { /* the shallowest level with enough keys */
        w.count = 0;
        walk_branch(&w, root, 1, deepest);
        if (w.bad)
            return LS_EINTERNAL;
        if (w.count >= want)
            break;
        if (w.count > ((uint64_t)1 << 20) / 256) /* the next level would be too many keys to copy */
            break;
    }
    w.out = raw;
    w.count = 0;
    walk_branch(&w, root, 1, deepest);
    return w.bad ? LS_EINTERNAL : LS_OK;
}

/* The public fallback: every (entries / want)-th key by a cursor walk. */
static int split_by_walk(store_reader *r, const MDB_stat *st, size_t want, store_split *raw)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t every = st->ms_entries / want, i = 0;
    if (every == 0)
        every = 1;
    int rc = mdb_cursor_open(r->txn, r->s->customers, &cur), st2 = LS_OK;
    if (rc)
        return from_mdb(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (i++ % every == 0 && i > 1 && (st2 = split_push(raw, k.mv_data, k.mv_size)) != LS_OK)
            break;
    mdb_cursor_close(cur);
    return st2;
}

int store_reader_split_keys(store_reader *r, size_t min_ranges, size_t per_range, store_split *out, int *by_pages)
{
    MDB_stat st;
    store_split raw = {0};
    memset(out, 0, sizeof *out);
    *by_pages = 0;
    if (!r->active)
        return LS_EINVAL;
    int rc = from_mdb(mdb_stat(r->txn, r->s->customers, &st));
    if (rc != LS_OK || st.ms_entries < 2)
        return rc;
    size_t want = st.ms_entries / (per_range ? per_range : 1);
    if (want < min_ranges)
        want = min_ranges;
    if (want > STORE_SPLIT_MAX)
        want = STORE_SPLIT_MAX;
    if (want < 2)
        return LS_OK;
    if (want > st.ms_entries)
        want = st.ms_entries;
    if (split_by_pages(r, &st, want - 1, &raw) == LS_OK) {
        *by_pages = 1;
    } else {
        store_split_free(&raw);
        if ((rc = split_by_walk(r, &st, want, &raw)) != LS_OK) {
            store_split_free(&raw);
            return rc;
        }
    }
    /* thin to at most want - 1 keys, evenly */
    for (size_t i = 0; i < raw.n && rc == LS_OK; i++) {
        if (raw.n >= want && (i + 1) * (want - 1) / raw.n == i * (want - 1) / raw.n)
            continue;
        rc = split_push(out, raw.bytes + raw.off[i], raw.off[i + 1] - raw.off[i]);
    }
    store_split_free(&raw);
    if (rc != LS_OK)
        store_split_free(out);
    return rc;
}

/* Asks the CPU to bring a record's bytes into cache while the one
 * before it is scored: a scan meets each leaf page cold. */
static void prefetch_value(const MDB_val *v)
{
    const char *p = v->mv_data;
    size_t n = v->mv_size < 1024 ? v->mv_size : 1024;
    for (size_t i = 0; i < n; i += 64)
        __builtin_prefetch(p + i);
}

/* One record of a range scan, as of asof_ms, counting replays. */
static int range_one(store_reader *r, const MDB_val *k, const MDB_val *v, int64_t asof_ms, store_visit_fn fn,
                     void *arg, store_scan_stats *stats)
{
    ls_features f;
    if (decode_value_record(v, &r->s->decay, &f) != LS_OK)
        return LS_OK; /* as scan(): unreadable records are skipped */
    if (f.last_seen_ms > asof_ms) {
        if (decode_value_history(v, &f, &r->h) != LS_OK)
            return LS_OK;
        stats->replayed++;
        stats->events_replayed += history_upto(&r->h, asof_ms);
        if (history_replay(&r->h, asof_ms, &r->s->decay, &f) != LS_OK || feature_empty(&f))
            return LS_OK;
    }
    return fn(arg, k->mv_data, k->mv_size, &f);
}

int store_reader_walk(store_reader *r, uint64_t *records, uint64_t *bytes)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t n = 0, sum = 0;
    int rc = mdb_cursor_open(r->txn, r->s->customers, &cur);
    if (rc)
        return from_mdb(rc);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        n++;
        sum += v.mv_size;
        if (v.mv_size) /* a volatile load: the value's page is read, as a decode would */
            (void)*(const volatile uint8_t *)v.mv_data;
    }
    mdb_cursor_close(cur);
    *records = n;
    *bytes = sum;
    return rc == MDB_NOTFOUND ? LS_OK : from_mdb(rc);
}

int store_reader_scan_range_asof(store_reader *r, const void *from, size_t from_len, const void *to, size_t to_len,
                                 int64_t asof_ms, store_visit_fn fn, void *arg, store_scan_stats *stats)
{
    MDB_cursor *cur;
    MDB_val k = {from_len, (void *)from}, v, end = {to_len, (void *)to};
    int rc = mdb_cursor_open(r->txn, r->s->customers, &cur), st = LS_OK;
    if (rc)
        return from_mdb(rc);
    rc = mdb_cursor_get(cur, &k, &v, from ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0) {
        if (to && mdb_cmp(r->txn, r->s->customers, &k, &end) >= 0)
            break;
        /* one record ahead: its bytes come into cache while this one is scored */
        MDB_val next_k, next_v;
        rc = mdb_cursor_get(cur, &next_k, &next_v, MDB_NEXT);
        if (rc == 0)
            prefetch_value(&next_v);
        if ((st = range_one(r, &k, &v, asof_ms, fn, arg, stats)) != 0)
            break;
        k = next_k;
        v = next_v;
    }
    mdb_cursor_close(cur);
    if (st == LS_OK && rc != MDB_NOTFOUND && rc != 0)
        st = from_mdb(rc);
    return st;
}
