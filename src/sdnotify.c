/* sdnotify.c -- see sdnotify.h. */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef LS_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

int sdnotify_builtin(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    size_t n;
    if (!path || !path[0])
        return 0;
    if (!state)
        return -EINVAL;
    n = strlen(path);
    /* only AF_UNIX: a path or '@' + an abstract name (no vsock here) */
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof addr.sun_path)
        return -EAFNOSUPPORT;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, n);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/' ? 1 : 0));
    ssize_t r = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&addr, len);
    int e = r < 0 ? errno : 0;
    close(fd);
    if (r < 0)
        return -e;
    return (size_t)r == strlen(state) ? 1 : -EMSGSIZE;
}

int sdnotify(const char *state)
{
#ifdef LS_HAVE_LIBSYSTEMD
    int r = sd_notify(0, state);
    return r > 0 ? 1 : r;
#else
    return sdnotify_builtin(state);
#endif
}

const char *sdnotify_backend(void)
{
#ifdef LS_HAVE_LIBSYSTEMD
    return "libsystemd";
#else
    return "builtin";
#endif
}
