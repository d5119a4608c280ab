/* atomicfile.c -- an output file written whole or not at all (see
 * atomicfile.h). */
#include "atomicfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"

/* The temporary name beside path: DIR/.BASE.tmp-XXXXXX (mkstemp's form). */
static int temp_name(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    int n = snprintf(out, cap, "%.*s.%s.tmp-XXXXXX", (int)dirlen, path, slash ? slash + 1 : path);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* The temporary file takes the mode of the file it replaces, and its
 * owner where this process may give it (a root cron job rewriting a
 * service user's export); a new file gets `mode`, or the umask's 0666
 * when mode is 0. An existing file's mode wins unless `force`. */
static int set_mode(int fd, const struct stat *old, mode_t mode, int force)
{
    if (old && !force) {
        if ((old->st_uid != geteuid() || old->st_gid != getegid()) && fchown(fd, old->st_uid, old->st_gid) != 0) {
            /* not ours to give: the new file is this user's */
        }
        return fchmod(fd, old->st_mode & 07777);
    }
    if (!mode) {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    return fchmod(fd, mode);
}

static int open_with(atomicfile *a, const char *path, mode_t mode, int force, char *err, size_t errlen)
{
    struct stat st, old;
    memset(a, 0, sizeof *a);
    if (!path || !*path || strlen(path) >= sizeof a->path)
        return ls_fail(err, errlen, LS_EINVAL, "cannot write \"%s\": not a usable file name", path ? path : "");
    memcpy(a->path, path, strlen(path) + 1);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return ls_fail(err, errlen, LS_EINVAL, "cannot write %s: it is a directory", path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) { /* a device or a pipe: no rename over it */
        if (!(a->f = fopen(path, "w")))
            return ls_fail(err, errlen, LS_EIO, "cannot write %s: %s", path, strerror(errno));
        return LS_OK;
    }
    if (path[strlen(path) - 1] == '/' || temp_name(path, a->tmp, sizeof a->tmp) != 0)
        return ls_fail(err, errlen, LS_EINVAL, "cannot write \"%s\": not a usable file name", path);
    int had = lstat(path, &old) == 0 && S_ISREG(old.st_mode);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        a->tmp[0] = '\0';
        return ls_fail(err, errlen, LS_EIO, "cannot write %s: %s", path, strerror(e));
    }
    if (set_mode(fd, had ? &old : NULL, mode, force) != 0 || !(a->f = fdopen(fd, "w"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return ls_fail(err, errlen, LS_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return LS_OK;
}

int atomicfile_open(atomicfile *a, const char *path, char *err, size_t errlen)
{
    return open_with(a, path, 0, 0, err, errlen);
}

int atomicfile_open_mode(atomicfile *a, const char *path, unsigned mode, char *err, size_t errlen)
{
    return open_with(a, path, (mode_t)mode, 1, err, errlen);
}

int atomicfile_commit(atomicfile *a, char *err, size_t errlen)
{
    if (!a->f)
        return ls_fail(err, errlen, LS_EINVAL, "%s was not open", a->path);
    int bad = fflush(a->f) != 0 || ferror(a->f) || (a->tmp[0] && fsync(fileno(a->f)) != 0);
    int e = errno;
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    a->f = NULL;
    if (!bad && a->tmp[0] && rename(a->tmp, a->path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        if (a->tmp[0])
            unlink(a->tmp);
        a->tmp[0] = '\0';
        return ls_fail(err, errlen, LS_EIO, "writing %s failed: %s", a->path, strerror(e ? e : EIO));
    }
    a->tmp[0] = '\0';
    return LS_OK;
}

void atomicfile_abort(atomicfile *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    if (a->tmp[0])
        unlink(a->tmp);
    a->tmp[0] = '\0';
}
