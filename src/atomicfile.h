/* atomicfile.h -- an output file written whole or not at all.  The bytes go
 * to a temporary file beside the target (".NAME.tmp-XXXXXX" in the same
 * directory), which is flushed, fsynced and renamed over the target only
 * when the writer says it is complete; on failure the temporary file is
 * removed and an existing target keeps its old contents.  A target that
 * exists and is not a regular file (/dev/null, a pipe) is written directly.
 * Used by the commands that write files (gen, train, rescore, audience
 * export, keygen). */
#ifndef LS_ATOMICFILE_H
#define LS_ATOMICFILE_H

#include <stddef.h>
#include <stdio.h>

#define ATOMICFILE_PATH_MAX 4096

typedef struct {
    FILE *f;                          /* where to write; NULL when not open */
    char path[ATOMICFILE_PATH_MAX];   /* the target */
    char tmp[ATOMICFILE_PATH_MAX];    /* the temporary file, or "" when writing the target directly */
} atomicfile;

/* Opens a writer for path.  0, or LS_EIO / LS_EINVAL with a message naming
 * the path and the reason in err.  The file replacing an existing one
 * keeps its mode (and its owner, where this process may give it); a new
 * one gets 0666 less the umask. */
int atomicfile_open(atomicfile *a, const char *path, char *err, size_t errlen);

/* The same, the file always of the given mode (a secret key's 0600). */
int atomicfile_open_mode(atomicfile *a, const char *path, unsigned mode, char *err, size_t errlen);

/* Completes the file: flush, fsync, close, rename over the target.  0, or
 * LS_EIO with the reason in err (the target is then left as it was). */
int atomicfile_commit(atomicfile *a, char *err, size_t errlen);

/* Gives up: closes and removes the temporary file (no-op when not open). */
void atomicfile_abort(atomicfile *a);

#endif
