/* storefile.c -- the writer's lock file, the check of data.mdb's meta
 * pages before LMDB maps the file, and LMDB's files made and undone by a
 * writer's open (see storefile.h). */
#define _GNU_SOURCE
#include "storefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"

#define LMDB_DATA_NAME "data.mdb"
#define LMDB_LOCK_NAME "lock.mdb"
/* lock.mdb: LMDB 0.9's reader table is a header (two cache-line padded
 * blocks holding its mutexes: 128 to 256 bytes on the 64-bit platforms it
 * runs on) and one slot of a cache line (64 bytes) per reader, the first
 * of them counted in the header's struct. */
#define LOCK_SLOT_BYTES 64
#define LOCK_HEADER_MAX 512
#define STOREFILE_LOOKS 5 /* looks at the meta pages before a file is called damaged */
#define RECOVERY "restore the directory from a backup (or from a copy made with `mdb_copy` or " \
                 "`leadscore compact --out`), or move it away to start an empty store"

/* ------------------------------------------------------------------ */
/* The writer's lock                                                   */
/* ------------------------------------------------------------------ */

/* The pid written in the lock file, or 0 when it holds none. */
static long lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 0 ? pid : 0;
}

/* Whether the locked descriptor f is still the file at path: a refused
 * open removes a lock file it made (storefile_unlock_remove), and a
 * process that opened that file before the unlink would otherwise hold a
 * lock on a file no other writer sees. */
static int lock_is_current(int f, const char *path)
{
    struct stat held, named;
    return fstat(f, &held) == 0 && stat(path, &named) == 0 && held.st_dev == named.st_dev &&
           held.st_ino == named.st_ino;
}

/* A lock another open holds (or that cannot be taken): closes f and
 * says which. */
static int lock_refused(int f, const char *dir, const char *path, char *err, size_t errlen)
{
    int e = errno;
    long pid = e == EWOULDBLOCK ? lock_holder(f) : 0;
    close(f);
    if (e != EWOULDBLOCK)
        return ls_fail(err, errlen, LS_EIO, "cannot lock %s: %s", path, strerror(e));
    char who[48] = "another process";
    if (pid)
        snprintf(who, sizeof who, "process %ld", pid);
    return ls_fail(err, errlen, LS_EUNAVAIL,
                   "the store in %s is already open for writing by %s (lock %s): stop it first -- only one "
                   "`serve` or `import --data` may write a store; read-only commands (rescore, kpis, "
                   "train --data) may run beside it", dir, who, path);
}

int storefile_lock(const char *dir, int *fd, int *created, char *err, size_t errlen)
{
    char path[4200];
    int f = -1;
    *fd = -1;
    snprintf(path, sizeof path, "%s/%s", dir, STOREFILE_LOCK_NAME);
    for (int tries = 0; tries < 8 && f < 0; tries++) {
        f = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (created)
            *created = f >= 0;
        if (f < 0 && errno == EEXIST)
            f = open(path, O_RDWR | O_CLOEXEC);
        if (f < 0)
            return ls_fail(err, errlen, LS_EIO, "cannot open the store's lock file %s: %s", path, strerror(errno));
        if (flock(f, LOCK_EX | LOCK_NB) != 0)
            return lock_refused(f, dir, path, err, errlen);
        if (!lock_is_current(f, path)) { /* locked a file just removed: open the path again */
            close(f);
            f = -1;
        }
    }
    if (f < 0)
        return ls_fail(err, errlen, LS_EIO, "cannot lock %s: the file keeps being removed", path);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
        int e = errno;
        if (created && *created)
            (void)unlink(path); /* while still held; a full disk leaves nothing behind */
        close(f);
        return ls_fail(err, errlen, storefile_full_note(e)[0] ? LS_EUNAVAIL : LS_EIO, "cannot write %s: %s%s", path,
                       strerror(e), storefile_full_note(e));
    }
    *fd = f;
    return LS_OK;
}

void storefile_unlock(int *fd)
{
    if (!fd || *fd < 0)
        return;
    if (ftruncate(*fd, 0) != 0) {
        /* the pid stays behind; the lock itself goes with the close */
    }
    close(*fd);
    *fd = -1;
}

void storefile_unlock_remove(const char *dir, int *fd)
{
    char path[4200];
    if (!fd || *fd < 0)
        return;
    snprintf(path, sizeof path, "%s/%s", dir, STOREFILE_LOCK_NAME);
    (void)unlink(path); /* while still held: no other writer has it yet */
    storefile_unlock(fd);
}

/* ------------------------------------------------------------------ */
/* data.mdb's meta pages                                               */
/* ------------------------------------------------------------------ */

/* LMDB 0.9's on-disk layout (lmdb/mdb.c): pages 0 and 1 are meta pages, a
 * page header (pgno, pad, flags, lower, upper) followed by MDB_meta
 * (magic, version, address, mapsize, the free and main MDB_db, the last
 * page used, the txn id).  The page size is kept in the free db's md_pad.
 * Offsets are computed from the word size, as the compiler lays it out. */
#define MDB_MAGIC_NUMBER 0xBEEFC0DEu
#define MDB_DATA_VERSION_EXPECTED 1u
#define P_META_FLAG 0x08u
#define WORD sizeof(size_t)
#define PAGE_HDR (WORD + 8)
#define DB_SIZE (8 + 5 * WORD)                  /* md_pad, md_flags, md_depth, 4 counts, md_root */
#define META_DBS (PAGE_HDR + 8 + sizeof(void *) + WORD)
#define META_LAST_PG (META_DBS + 2 * DB_SIZE)
#define META_TXNID (META_LAST_PG + WORD)
#define META_END (META_TXNID + WORD)
#define P_INVALID (~(uint64_t)0)

_Static_assert(sizeof(void *) == sizeof(size_t), "the meta layout assumes pointers as wide as size_t");

typedef struct {
    uint32_t magic, version, psize;
    uint16_t flags;
    uint64_t root[2];    /* free and main db roots */
    uint64_t last_pg, txnid;
} meta_page;

static uint64_t word_at(const uint8_t *p)
{
    if (WORD == 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    uint32_t v;
    memcpy(&v, p, 4);
    return v == UINT32_MAX ? P_INVALID : v;
}

static void parse_meta(const uint8_t *p, meta_page *m)
{
    memcpy(&m->flags, p + WORD + 2, 2);
    memcpy(&m->magic, p + PAGE_HDR, 4);
    memcpy(&m->version, p + PAGE_HDR + 4, 4);
    memcpy(&m->psize, p + META_DBS, 4);
    for (int i = 0; i < 2; i++)
        m->root[i] = word_at(p + META_DBS + (size_t)i * DB_SIZE + 8 + 4 * WORD);
    m->last_pg = word_at(p + META_LAST_PG);
    m->txnid = word_at(p + META_TXNID);
}

/* Why meta page i (already read) cannot be LMDB's, or NULL. */
static const char *meta_problem(const meta_page *m, char *why, size_t cap)
{
    if (m->magic != MDB_MAGIC_NUMBER)
        snprintf(why, cap, "not an LMDB data file (bad magic 0x%08x)", m->magic);
    else if (m->version != MDB_DATA_VERSION_EXPECTED)
        snprintf(why, cap, "LMDB data format version %u, this build reads %u", m->version, MDB_DATA_VERSION_EXPECTED);
    else if (!(m->flags & P_META_FLAG))
        snprintf(why, cap, "not marked as a meta page");
    else
        return NULL;
    return why;
}

/* 1 when dir holds nothing but data.mdb (and our lock file). */
static int otherwise_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int empty = 1;
    if (!d)
        return 0;
    while (empty && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "data.mdb") &&
            strcmp(e->d_name, STOREFILE_LOCK_NAME))
            empty = 0;
    }
    closedir(d);
    return empty;
}

/* Checks the meta pages against the file's size. */
static int check_metas(int fd, const char *path, uint64_t size, char *err, size_t errlen)
{
    uint8_t buf[META_END];
    meta_page m[2];
    char why[120];
    if (size < META_END || pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
        return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: only %llu bytes, too short for an LMDB store "
                       "(truncated?); %s", path, (unsigned long long)size, RECOVERY);
    parse_meta(buf, &m[0]);
    if (meta_problem(&m[0], why, sizeof why))
        return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: its first meta page is %s; %s", path, why, RECOVERY);
    uint32_t ps = m[0].psize;
    if (ps < 512 || ps > 65536 || (ps & (ps - 1)))
        return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: its meta page gives a page size of %u; %s", path, ps,
                       RECOVERY);
    if (size < 2ULL * ps || pread(fd, buf, sizeof buf, ps) != (ssize_t)sizeof buf)
        return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: %llu bytes cannot hold its two meta pages of %u "
                       "bytes (truncated?); %s", path, (unsigned long long)size, ps, RECOVERY);
    parse_meta(buf, &m[1]);
    if (meta_problem(&m[1], why, sizeof why))
        return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: its second meta page is %s; %s", path, why, RECOVERY);
    const meta_page *newer = m[1].txnid > m[0].txnid ? &m[1] : &m[0];
    uint64_t pages = size / ps;
    if (newer->last_pg >= pages)
        return ls_fail(err, errlen, LS_EPARSE, "%s is truncated: its newest commit (txn %llu) uses %llu pages of "
                       "%u bytes but the file holds only %llu bytes; %s", path, (unsigned long long)newer->txnid,
                       (unsigned long long)newer->last_pg + 1, ps, (unsigned long long)size, RECOVERY);
    for (int i = 0; i < 2; i++)
        if (newer->root[i] != P_INVALID && newer->root[i] > newer->last_pg)
            return ls_fail(err, errlen, LS_EPARSE, "%s is damaged: a tree root (page %llu) lies past the last "
                           "page used (%llu); %s", path, (unsigned long long)newer->root[i],
                           (unsigned long long)newer->last_pg, RECOVERY);
    return LS_OK;
}

int storefile_check(const char *dir, char *err, size_t errlen)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LS_OK
                               : ls_fail(err, errlen, LS_EIO, "cannot read %s: %s", path, strerror(errno));
    int rc = LS_OK, metas_bad = 1;
    /* A writer in another process may commit while we look: between the
     * size and the meta pages read (a newest commit bigger than the size
     * read), or during the read of a meta page (half of it new: a root past
     * its last page).  LMDB's own readers never see that (they take the
     * meta under its lock protocol); this check reads the file.  So what the
     * meta pages say wrong is looked at again, a few times a millisecond
     * apart, before the file is called damaged: a damaged file stays so. */
    for (int look = 0; look < STOREFILE_LOOKS && metas_bad; look++) {
        if (look > 0)
            usleep(1000);
        metas_bad = 0;
        if (fstat(fd, &st) != 0)
            rc = ls_fail(err, errlen, LS_EIO, "cannot stat %s: %s", path, strerror(errno));
        else if (!S_ISREG(st.st_mode))
            rc = ls_fail(err, errlen, LS_EPARSE, "%s is not a regular file; %s", path, RECOVERY);
        else if (st.st_size == 0 && !otherwise_empty(dir))
            rc = ls_fail(err, errlen, LS_EPARSE, "%s is empty but the directory holds other store files: the "
                         "store lost its data (an empty file is taken as a new store only in an otherwise empty "
                         "directory); %s", path, RECOVERY);
        else if (st.st_size > 0)
            metas_bad = (rc = check_metas(fd, path, (uint64_t)st.st_size, err, errlen)) == LS_EPARSE;
    }
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------ */
/* LMDB's files, made and undone by a writer's open                    */
/* ------------------------------------------------------------------ */

const char *storefile_full_note(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG
               ? " (the disk holding the store is full: free space, then start again)"
               : "";
}

unsigned storefile_missing(const char *dir)
{
    static const struct { unsigned bit; const char *name; } files[] = {
        {STOREFILE_DATA, LMDB_DATA_NAME}, {STOREFILE_LOCKS, LMDB_LOCK_NAME}};
    char path[4200];
    struct stat st;
    unsigned missing = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (stat(path, &st) != 0 && errno == ENOENT)
            missing |= files[i].bit;
    }
    return missing;
}

void storefile_remove(const char *dir, unsigned files)
{
    char path[4200];
    if (files & STOREFILE_DATA) {
        snprintf(path, sizeof path, "%s/%s", dir, LMDB_DATA_NAME);
        (void)unlink(path);
    }
    if (files & STOREFILE_LOCKS) {
        snprintf(path, sizeof path, "%s/%s", dir, LMDB_LOCK_NAME);
        (void)unlink(path);
    }
}

int storefile_reserve_locks(const char *dir, unsigned max_readers, char *err, size_t errlen)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, LMDB_LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ls_fail(err, errlen, storefile_full_note(e)[0] ? LS_EUNAVAIL : LS_EIO, "cannot open %s: %s%s", path,
                       strerror(e), storefile_full_note(e));
    }
    off_t len = st.st_size > 0 ? st.st_size : (off_t)max_readers * LOCK_SLOT_BYTES + LOCK_HEADER_MAX;
    int e = fallocate(fd, 0, 0, len) == 0 ? 0 : errno;
    close(fd);
    if (e == 0 || e == EOPNOTSUPP || e == ENOSYS) /* a file system that cannot allocate ahead */
        return LS_OK;
    return ls_fail(err, errlen, storefile_full_note(e)[0] ? LS_EUNAVAIL : LS_EIO,
                   "cannot allocate %lld bytes for %s: %s%s", (long long)len, path, strerror(e),
                   storefile_full_note(e));
}
