/* modelpath.h -- which model files the `reload` op may read, and reading
 * one without trusting it.
 *
 * `reload` takes a path from the wire.  Only files inside the model
 * directories are eligible: the directory of --model and those listed in
 * --model-dirs.  The path is resolved (symlinks, "..") before the check, so
 * a link inside pointing outside is refused.  The file is then opened
 * without blocking (a FIFO cannot hang the caller) and checked with fstat
 * before a byte is read: regular files only, at most a size limit.
 *
 * Errors come back as status codes with a reason in err for the server
 * log: the reasons name paths the caller gave, never file content. */
#ifndef LS_MODELPATH_H
#define LS_MODELPATH_H

#include <stddef.h>
#include <stdint.h>

/* Resolves path (absolute, or relative to the working directory) into out
 * (cap bytes) when it names a file strictly inside the directory of
 * model_path or inside one of dirs (':'-separated; NULL or "" for none).
 * Returns 0; LS_ENOTFOUND when path cannot be resolved (missing, or a
 * component is not a directory); LS_EUNAUTH when it resolves outside every
 * model directory; LS_ETOOLARGE when out is too small. */
int modelpath_resolve(const char *model_path, const char *dirs, const char *path, char *out, size_t cap, char *err,
                      size_t errlen);

/* Reads the whole file at path into *text (malloc'd, NUL-terminated, the
 * caller frees) and its length into *len.  Opens with O_NONBLOCK (and
 * O_NOFOLLOW unless follow_links: a path a client named must not lead out
 * of the model directories; the operator's --model may be a link);
 * refuses, before reading, anything but a regular file (LS_EINVAL: a
 * FIFO would block the reader) and a file over max_bytes (LS_ETOOLARGE).
 * LS_EIO when it cannot be opened or read, LS_ENOMEM.  On failure *text
 * is NULL. */
int modelpath_read(const char *path, uint64_t max_bytes, int follow_links, char **text, size_t *len, char *err,
                   size_t errlen);

#endif
