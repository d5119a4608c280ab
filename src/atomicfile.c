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

int atomicfile_open(atomicfile *a, const char *path, char *err, size_t errlen)
{
    struct stat st;
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
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        int e = errno;
        a->tmp[0] = '\0';
        return ls_fail(err, errlen, LS_EIO, "cannot write %s: %s", path, strerror(e));
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || !(a->f = fdopen(fd, "w"))) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        a->tmp[0] = '\0';
        return ls_fail(err, errlen, LS_EIO, "cannot write %s: %s", path, strerror(e));
    }
    return LS_OK;
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
