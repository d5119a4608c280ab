/* storefile.h -- the files of a store directory, looked at before LMDB
 * maps them: the writer's lock file and a sanity check of data.mdb.
 *
 * Lock: a process that writes a store (serve, import --data, compact in
 * place) holds an exclusive flock(2) on DIR/leadscore.lock for as long as
 * it has the store open, and writes its pid into the file, so a second
 * writer is refused with a message naming the first.  flock locks belong
 * to the open file description: a second open in the same process is
 * refused too, and the lock goes away with the process (even kill -9).
 * Read-only openers take no lock.
 *
 * Check: LMDB maps data.mdb and trusts its meta pages; a file truncated
 * under them makes the first read past the end kill the process with
 * SIGBUS, and an empty file is silently initialised as a new store.
 * storefile_check reads the two meta pages with pread and refuses a file
 * that cannot be a whole LMDB store, explaining the problem and the way
 * back.
 *
 * LMDB's files: lock.mdb holds LMDB's reader table, which every process
 * using the store writes through a shared mapping.  LMDB makes the file
 * with ftruncate, so its blocks are holes, and a write into a hole of a
 * mapping on a full disk kills the process with SIGBUS.
 * storefile_reserve_locks allocates them first, so a full disk is an
 * ENOSPC with a message instead.  A writer's open that LMDB's files were
 * missing for (a new store) and that is then refused removes the files
 * it made (storefile_missing, storefile_remove), so that a store which
 * could not be created on a full disk is created by the next try.  Like
 * store.c, nothing here logs. */
#ifndef LS_STOREFILE_H
#define LS_STOREFILE_H

#include <stddef.h>

#define STOREFILE_LOCK_NAME "leadscore.lock"

/* LMDB's files in a store directory, as bits of a set. */
enum { STOREFILE_DATA = 1, STOREFILE_LOCKS = 2 }; /* data.mdb, lock.mdb */

/* Takes the writer lock of directory dir (which must exist).  On success
 * *fd is the lock's descriptor (close it with storefile_unlock) and
 * *created (when not NULL) says whether this call made the lock file;
 * when another open holds it, LS_EUNAVAIL and err names its pid; LS_EIO
 * when the lock file cannot be opened. */
int storefile_lock(const char *dir, int *fd, int *created, char *err, size_t errlen);

/* Removes the lock file of dir, then releases the lock: for an open that
 * made the file and then refused the directory, so that a refused
 * directory is left as it was found. */
void storefile_unlock_remove(const char *dir, int *fd);

/* Releases the lock (empties the pid) and sets *fd to -1; -1 is harmless. */
void storefile_unlock(int *fd);

/* Checks dir/data.mdb before it is mapped.  LS_OK when it is missing
 * (LMDB creates it), when it looks whole, or when it is empty in an
 * otherwise empty directory (a creation cut short: LMDB initialises it).
 * LS_EPARSE, with err naming the file, the problem and the recovery, when
 * it is empty beside other files, shorter than its two meta pages, has a
 * bad magic, version or page size, or ends before the last page its newer
 * meta page uses.  LS_EIO when it cannot be read. */
int storefile_check(const char *dir, char *err, size_t errlen);

/* The set of LMDB's files dir lacks.  A writer asks under its lock,
 * before LMDB opens the environment: they are the files its open makes. */
unsigned storefile_missing(const char *dir);

/* Removes the files of the set `files` from dir: for a writer's open that
 * made them (storefile_missing) and was then refused, once it has closed
 * the environment and while it still holds the lock. */
void storefile_remove(const char *dir, unsigned files);

/* Allocates the disk blocks of dir/lock.mdb for a writer, before LMDB
 * maps it: a new or empty file gets room for max_readers reader slots and
 * the table's header (a little more than LMDB truncates it to, as LMDB's
 * header size varies by platform; LMDB takes a bigger file as is, with a
 * few more slots), an existing one the size it has (another process may
 * have it mapped at that size).  LS_OK, also where the file system cannot
 * allocate ahead; LS_EUNAVAIL when the disk (or quota) is full, LS_EIO on
 * another error, err naming the file and the reason. */
int storefile_reserve_locks(const char *dir, unsigned max_readers, char *err, size_t errlen);

/* The note that ends a message about a failed write when the errno e
 * says the disk (or quota) is full, or "". */
const char *storefile_full_note(int e);

#endif
