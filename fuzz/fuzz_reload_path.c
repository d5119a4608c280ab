/* fuzz_reload_path.c -- libFuzzer harness for the paths the `reload` op
 * takes from the wire: bytes -> a path -> modelpath_resolve -> (when it is
 * allowed) modelpath_read, the way ops.c's reload_from uses them.
 *
 * The first call builds a sandbox under $TMPDIR (or /tmp) and works from
 * it as the current directory:
 *     models/good.json   a small file          models/sub/   a directory
 *     models/fifo        a FIFO with no writer  models/big    over the limit
 *     models/out.json -> ../outside/secret.json   models/etc -> /etc
 *     outside/secret.json
 * with models/default.json as --model, so models/ is the only model
 * directory.  Properties, besides "never crashes, leaks or hangs":
 *  - an allowed path resolves to a file strictly inside models/, with no
 *    symlink or "." / ".." left in it (it is its own realpath);
 *  - anything resolving elsewhere (outside/, /etc, the directory itself)
 *    is refused;
 *  - modelpath_read never blocks (the FIFO is refused, not opened for a
 *    read that would wait) and accepts only regular files within the
 *    limit, returning exactly their bytes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leadscore/error.h"
#include "modelpath.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

#define LIMIT 4096

static char models_real[PATH_MAX], sandbox[PATH_MAX];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the sandbox when libFuzzer exits. */
static void remove_sandbox(void)
{
    if (sandbox[0])
        nftw(sandbox, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void build_sandbox(void)
{
    const char *tmp = getenv("TMPDIR");
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/ls-fuzz-reload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(root) != NULL);
    CHECK(chdir(root) == 0);
    memcpy(sandbox, root, sizeof sandbox);
    atexit(remove_sandbox);
    CHECK(mkdir("models", 0700) == 0 && mkdir("models/sub", 0700) == 0 && mkdir("outside", 0700) == 0);
    put("models/good.json", "{\"name\": \"good\"}");
    put("outside/secret.json", "secret");
    CHECK(mkfifo("models/fifo", 0600) == 0);
    int fd = open("models/big", O_WRONLY | O_CREAT, 0600);
    CHECK(fd >= 0 && ftruncate(fd, LIMIT + 1) == 0);
    close(fd);
    CHECK(symlink("../outside/secret.json", "models/out.json") == 0);
    CHECK(symlink("/etc", "models/etc") == 0);
    CHECK(realpath("models", models_real) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char path[1024], out[PATH_MAX], again[PATH_MAX], err[512];
    if (!ready) {
        build_sandbox();
        ready = 1;
    }
    if (size == 0 || size >= sizeof path || memchr(data, 0, size))
        return 0; /* the op refuses empty paths and NUL bytes before this */
    memcpy(path, data, size);
    path[size] = '\0';
    int rc = modelpath_resolve("models/default.json", NULL, path, out, sizeof out, err, sizeof err);
    CHECK(rc == LS_OK || rc == LS_ENOTFOUND || rc == LS_EUNAUTH || rc == LS_ETOOLARGE);
    CHECK(err[0] != '\0' || rc == LS_OK);
    if (rc != LS_OK)
        return 0;
    size_t n = strlen(models_real);
    CHECK(strncmp(out, models_real, n) == 0 && out[n] == '/' && out[n + 1] != '\0');
    CHECK(realpath(out, again) != NULL && strcmp(again, out) == 0);
    char *text = NULL;
    size_t len = 0;
    rc = modelpath_read(out, LIMIT, 0, &text, &len, err, sizeof err); /* as `reload PATH`: no link followed */
    struct stat st;
    CHECK(lstat(out, &st) == 0);
    if (rc == LS_OK) {
        CHECK(S_ISREG(st.st_mode) && (uint64_t)st.st_size <= LIMIT && len == (size_t)st.st_size);
        CHECK(text != NULL && text[len] == '\0');
    } else {
        CHECK(text == NULL);
        CHECK(!S_ISREG(st.st_mode) ? rc == LS_EINVAL : rc == LS_ETOOLARGE || rc == LS_EIO);
    }
    free(text);
    return 0;
}
