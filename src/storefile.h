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
 * back.  Like store.c, nothing here logs. */
#ifndef LS_STOREFILE_H
#define LS_STOREFILE_H

#include <stddef.h>

#define STOREFILE_LOCK_NAME "leadscore.lock"

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

#endif
