/* modelpath.c -- the model directories `reload` may read from, and the
 * careful read of one model file (see modelpath.h). */
#define _GNU_SOURCE
#include "modelpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"

/* 1 when the resolved path lies strictly below the resolved directory dir. */
static int below(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/' && path[1] != '\0';
    return strncmp(path, dir, n) == 0 && path[n] == '/' && path[n + 1] != '\0';
}

/* 1 when path (resolved) lies below the directory named by the n bytes at dir. */
static int below_dir(const char *dir, size_t n, const char *path)
{
    char name[PATH_MAX], real[PATH_MAX];
    if (n == 0 || n >= sizeof name)
        return 0;
    memcpy(name, dir, n);
    name[n] = '\0';
    return realpath(name, real) != NULL && below(real, path);
}

/* 1 when path lies below the directory holding the file model_path. */
static int below_model_dir(const char *model_path, const char *path)
{
    const char *slash = strrchr(model_path, '/');
    if (!slash)
        return below_dir(".", 1, path);
    return below_dir(model_path, slash == model_path ? 1 : (size_t)(slash - model_path), path);
}

int modelpath_resolve(const char *model_path, const char *dirs, const char *path, char *out, size_t cap, char *err,
                      size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(path, real))
        return ls_fail(err, errlen, LS_ENOTFOUND, "cannot resolve %s: %s", path, strerror(errno));
    int ok = below_model_dir(model_path, real);
    for (const char *d = dirs; !ok && d && *d;) {
        size_t n = strcspn(d, ":");
        ok = below_dir(d, n, real);
        d += n;
        if (*d == ':')
            d++;
    }
    if (!ok)
        return ls_fail(err, errlen, LS_EUNAUTH, "%s resolves to %s, outside the model directories", path, real);
    if (strlen(real) >= cap)
        return ls_fail(err, errlen, LS_ETOOLARGE, "%s: path too long", real);
    memcpy(out, real, strlen(real) + 1);
    return LS_OK;
}

/* Reads exactly up to want bytes from fd into buf; returns the count or -1. */
static ssize_t read_all(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int modelpath_read(const char *path, uint64_t max_bytes, int follow_links, char **text, size_t *len, char *err,
                   size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    int rc = LS_OK;
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | (follow_links ? 0 : O_NOFOLLOW) | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return ls_fail(err, errlen, LS_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = ls_fail(err, errlen, LS_EIO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = ls_fail(err, errlen, LS_EINVAL, "%s is not a regular file", path);
    } else if ((uint64_t)st.st_size > max_bytes) {
        rc = ls_fail(err, errlen, LS_ETOOLARGE, "%s holds %lld bytes, more than the limit of %llu", path,
                     (long long)st.st_size, (unsigned long long)max_bytes);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = LS_ENOMEM;
    } else {
        /* a file that grew since fstat is read only up to its size then */
        ssize_t n = read_all(fd, buf, (size_t)st.st_size);
        if (n < 0) {
            rc = ls_fail(err, errlen, LS_EIO, "cannot read %s: %s", path, strerror(errno));
        } else {
            buf[n] = '\0';
            *text = buf;
            *len = (size_t)n;
            buf = NULL;
        }
    }
    free(buf);
    close(fd);
    return rc;
}
