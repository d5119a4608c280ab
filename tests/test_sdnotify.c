/* test_sdnotify.c -- Check suite for sdnotify.c: the hand-written
 * $NOTIFY_SOCKET sender (used when libsystemd is not found at build time)
 * delivers one datagram to a path socket and to an abstract one, does
 * nothing without $NOTIFY_SOCKET, and refuses what it cannot reach; and
 * sdnotify() (libsystemd's sd_notify when linked) delivers the same.
 * `serve` itself is checked by tests/install_test.sh (READY=1, STOPPING=1). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "testutil.h"

/* A datagram socket bound to name ("@..." abstract, else a path). */
static int listen_at(const char *name)
{
    struct sockaddr_un a;
    struct timeval tv = {5, 0};
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    ck_assert_uint_lt(n, sizeof a.sun_path);
    memcpy(a.sun_path, name, n);
    if (name[0] == '@')
        a.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '@' ? 0 : 1));
    ck_assert_msg(bind(fd, (struct sockaddr *)&a, len) == 0, "bind %s: %s", name, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect(int fd, const char *want)
{
    char buf[512];
    ssize_t r = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_msg(r >= 0, "no datagram: %s", strerror(errno));
    buf[r] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(builtin_path_socket)
{
    char dir[512], path[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/notify", dir);
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sdnotify_builtin("READY=1\nSTATUS=serving"), 1);
    expect(fd, "READY=1\nSTATUS=serving");
    ck_assert_int_eq(sdnotify_builtin("STOPPING=1"), 1);
    expect(fd, "STOPPING=1");
    ck_assert_int_eq(sdnotify("READY=1"), 1); /* whichever backend was built */
    expect(fd, "READY=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    tu_rmtree(dir);
}
END_TEST

START_TEST(builtin_abstract_socket)
{
    char name[64];
    snprintf(name, sizeof name, "@leadscore-test-%ld", (long)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(sdnotify_builtin("READY=1"), 1);
    expect(fd, "READY=1");
    ck_assert_int_eq(sdnotify("STOPPING=1"), 1);
    expect(fd, "STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}
END_TEST

START_TEST(unset_or_unreachable)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(sdnotify_builtin("READY=1"), 0);
    ck_assert_int_eq(sdnotify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(sdnotify_builtin("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ck_assert_int_eq(sdnotify_builtin("READY=1"), -EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "/nonexistent-dir-for-leadscore/notify", 1);
    ck_assert_int_lt(sdnotify_builtin("READY=1"), 0);
    ck_assert_int_lt(sdnotify("READY=1"), 0);
    unsetenv("NOTIFY_SOCKET");
    ck_assert(strcmp(sdnotify_backend(), "libsystemd") == 0 || strcmp(sdnotify_backend(), "builtin") == 0);
}
END_TEST

static Suite *sdnotify_suite(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, builtin_path_socket);
    tcase_add_test(tc, builtin_abstract_socket);
    tcase_add_test(tc, unset_or_unreachable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sdnotify_suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
