/* cmd_store.c -- the store-maintenance commands: `leadscore keygen` (CurveZMQ key
 * pairs) and `leadscore compact`: rewrites a store keeping only its
 * live pages.  LMDB reuses freed pages but does not wipe them, so after
 * `forget` the old bytes can stay in the file until overwritten; a
 * compacted copy holds none of them.  In place it holds the store's
 * writer lock, so it cannot swap files under a running `serve`. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cliopts.h"
#include "error_internal.h"
#include "leadscore/error.h"
#include "model.h"
#include "security.h"
#include "store.h"
#include "storefile.h"

typedef struct {
    const char *dir, *out;
} compact_cli;

static const cliopt compact_rows[] = {
    {.name = "data", .kind = CLIOPT_STRING, CLIOPT_FIELD(compact_cli, dir), .arg = "DIR",
     .help = "the store (default ./leadscore-data)"},
    {.name = "out", .kind = CLIOPT_STRING, CLIOPT_FIELD(compact_cli, out), .arg = "DIR2",
     .help = "write the copy there (an empty or new directory) and leave DIR alone"},
    CLIOPT_END};

static const cliopts_spec compact_spec = {
    .cmd = "compact",
    .usage = "leadscore compact [--data DIR] [--out DIR2]",
    .about = "Writes a compacted copy of the store: only live data, none of the freed pages that may\n"
             "still hold erased customers' bytes.  Without --out the copy replaces DIR (stop\n"
             "`leadscore serve` first: while a writer holds DIR/leadscore.lock it is refused, and\n"
             "so it is while another process, such as a rescore job, has the store open).",
    .opts = compact_rows,
};

typedef struct {
    const char *prefix;
    int force;
} keygen_cli;

static const cliopt keygen_rows[] = {
    {.name = "out", .kind = CLIOPT_STRING, CLIOPT_FIELD(keygen_cli, prefix), .arg = "PREFIX",
     .help = "where to write the pair"},
    {.name = "force", .kind = CLIOPT_FLAG, CLIOPT_FIELD(keygen_cli, force),
     .help = "replace an existing PREFIX.key or PREFIX.pub (without it, an existing\n"
             "file is an error: a lost secret key cannot be recovered)"},
    CLIOPT_END};

static const cliopts_spec keygen_spec = {
    .cmd = "keygen",
    .usage = "leadscore keygen --out PREFIX [--force]",
    .about = "Writes a CurveZMQ key pair: PREFIX.key (the secret, mode 0600) and PREFIX.pub (the\n"
             "public key, Z85 text).  The server uses its .key with --curve-secret; client public\n"
             "keys go into the --allow or --admin list files, one per line.",
    .opts = keygen_rows,
};

/* Removes the copy in directory d (data.mdb, lock.mdb) and, when it was
 * made for it, d itself: what a failed or earlier interrupted compact left. */
static void remove_copy(const char *d, int remove_dir)
{
    char path[1200];
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", d, files[i]);
        unlink(path);
    }
    if (remove_dir)
        rmdir(d);
}

/* Takes LMDB's own lock on DIR/lock.mdb exclusively (byte 0, which every
 * process holds shared while it has the store open: see mdb.c,
 * mdb_env_excl_lock): *lfd holds it until closed. A process opening the
 * store meanwhile waits for it. LS_EUNAVAIL (err says who) when another
 * process has the store open. */
static int take_store_alone(const char *dir, int *lfd, char *err, size_t errlen)
{
    char path[1200];
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    *lfd = open(path, O_RDWR | O_CLOEXEC);
    if (*lfd < 0)
        return errno == ENOENT ? LS_OK : ls_fail(err, errlen, LS_EIO, "cannot open %s: %s", path, strerror(errno));
    if (fcntl(*lfd, F_SETLK, &fl) == 0)
        return LS_OK;
    int e = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
    char pid[48] = "another process";
    if (fcntl(*lfd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
        snprintf(pid, sizeof pid, "process %ld", (long)who.l_pid);
    close(*lfd);
    *lfd = -1;
    if (e != EACCES && e != EAGAIN)
        return ls_fail(err, errlen, LS_EIO, "cannot lock %s: %s", path, strerror(e));
    return ls_fail(err, errlen, LS_EUNAVAIL,
                   "the store in %s is open in %s (a rescore, kpis, train, triggers or audience job reading "
                   "it?): in place, compact needs it to itself -- wait for that job or stop it, or write a "
                   "copy with --out DIR2",
                   dir, pid);
}

/* Gives the copy the owner and mode of the file it replaces (a compact
 * run by root must not leave the service's own user a store it cannot
 * open); a warning when the owner cannot be kept. */
static void keep_owner(const char *copy, const struct stat *old)
{
    struct stat now;
    if (chmod(copy, old->st_mode & 07777) != 0 || stat(copy, &now) != 0)
        return;
    if ((now.st_uid != old->st_uid || now.st_gid != old->st_gid) && chown(copy, old->st_uid, old->st_gid) != 0)
        fprintf(stderr,
                "leadscore compact: warning: the compacted data.mdb belongs to uid %ld gid %ld, not to uid %ld "
                "gid %ld as before (%s): give it back (chown) before the service opens it\n",
                (long)now.st_uid, (long)now.st_gid, (long)old->st_uid, (long)old->st_gid, strerror(errno));
}

/* Puts the copy in tmp in place of DIR's store. Another process may have
 * opened the store while it was copied: then nothing is swapped. While
 * the swap holds LMDB's lock, the new data.mdb goes in first, then the
 * old lock.mdb goes (it carries the old store's transaction count, which
 * would point a later opener at the wrong meta page of the new file): a
 * process opening the store meanwhile waits, and the next first opener
 * makes lock.mdb anew. */
static int swap_in(const char *dir, const char *tmp)
{
    char from[1200], to[1200], lockpath[1200], err[1400];
    struct stat old;
    int lfd;
    snprintf(from, sizeof from, "%s/data.mdb", tmp);
    snprintf(to, sizeof to, "%s/data.mdb", dir);
    snprintf(lockpath, sizeof lockpath, "%s/lock.mdb", dir);
    if (take_store_alone(dir, &lfd, err, sizeof err) != LS_OK) {
        remove_copy(tmp, 1);
        return cli_error("compact", CLI_FAIL, "%s; %s is unchanged", err, dir);
    }
    if (stat(to, &old) == 0)
        keep_owner(from, &old);
    int rc = rename(from, to) != 0 ? errno : 0;
    if (rc == 0)
        unlink(lockpath);
    if (lfd >= 0)
        close(lfd);
    if (rc != 0) {
        remove_copy(tmp, 1);
        return cli_error("compact", CLI_FAIL, "cannot move %s to %s: %s", from, to, strerror(rc));
    }
    remove_copy(tmp, 1);
    return CLI_OK;
}

/* Ends a compact that failed: the writer lock goes, with the lock file
 * when this run made it. */
static int compact_failed(const char *dir, int *lock, int lock_made, const char *msg)
{
    if (lock_made)
        storefile_unlock_remove(dir, lock);
    else
        storefile_unlock(lock);
    return cli_error("compact", CLI_FAIL, "%s", msg);
}

int cmd_compact(int argc, char **argv)
{
    compact_cli o = {.dir = "./leadscore-data"};
    char tmp[1100], err[1400], held[1200];
    int first = cliopts_parse(&compact_spec, argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    if (first < argc)
        return cli_error("compact", CLI_USAGE, "unexpected argument \"%s\"", argv[first]);
    const char *dir = o.dir, *out = o.out;
    store *s;
    store_options so = {.read_only = 1};
    struct stat st;
    int lock = -1, lock_made = 0, probe = -1; /* in place, the files are swapped: no writer may have them open */
    snprintf(held, sizeof held, "%s/data.mdb", dir);
    if (stat(held, &st) != 0)
        return cli_error("compact", CLI_FAIL, "%s holds no leadscore store (no data.mdb: %s)", dir, strerror(errno));
    if (!out && storefile_lock(dir, &lock, &lock_made, err, sizeof err) != LS_OK)
        return cli_error("compact", CLI_FAIL, "%s", err);
    if (!out && take_store_alone(dir, &probe, err, sizeof err) != LS_OK) /* say so before copying */
        return compact_failed(dir, &lock, lock_made, err);
    if (probe >= 0)
        close(probe); /* before LMDB opens lock.mdb: closing it later would drop LMDB's lock */
    if (store_open(&s, dir, &so, NULL, err, sizeof err) != LS_OK)
        return compact_failed(dir, &lock, lock_made, err);
    snprintf(tmp, sizeof tmp, "%s/compact.tmp", dir);
    const char *target = out ? out : tmp;
    if (!out)
        remove_copy(tmp, 1); /* left by an interrupted compact: we hold the writer lock */
    snprintf(held, sizeof held, "%s/data.mdb", target);
    if (out && stat(held, &st) == 0) {
        store_close(&s);
        return cli_error("compact", CLI_FAIL, "%s already holds a store (data.mdb): give an empty or new directory",
                         out);
    }
    int made = mkdir(target, 0750) == 0;
    if (!made && errno == EEXIST && (stat(target, &st) != 0 || !S_ISDIR(st.st_mode)))
        errno = ENOTDIR;
    if (!made && errno != EEXIST) {
        snprintf(err, sizeof err, "cannot create %s: %s", target, strerror(errno));
        store_close(&s);
        return compact_failed(dir, &lock, lock_made, err);
    }
    store_stats before;
    store_stat(s, &before);
    int rc = store_compact(s, target);
    store_close(&s);
    if (rc != LS_OK) {
        remove_copy(target, made || !out); /* no partial copy left behind */
        snprintf(err, sizeof err, "copy failed (%s); %s is unchanged",
                 rc == LS_EUNAVAIL ? "the disk is full" : ls_strerror(rc), dir);
        return compact_failed(dir, &lock, lock_made, err);
    }
    if (!out)
        rc = swap_in(dir, tmp);
    storefile_unlock(&lock);
    if (rc != CLI_OK)
        return rc;
    printf("compacted %s: %llu customers, %llu bytes in use before\n", out ? out : dir,
           (unsigned long long)before.customers, (unsigned long long)before.used_bytes);
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */
/* ------------------------------------------------------------------ */

int cmd_keygen(int argc, char **argv)
{
    keygen_cli o = {0};
    char err[600], path[1100];
    int first = cliopts_parse(&keygen_spec, argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    const char *prefix = o.prefix;
    int force = o.force;
    if (!prefix || !*prefix || first < argc)
        return cli_error("keygen", CLI_USAGE, "give --out PREFIX (and nothing else)");
    if (!force) {
        static const char *const ext[] = {".key", ".pub"};
        for (int i = 0; i < 2; i++) {
            struct stat st;
            snprintf(path, sizeof path, "%s%s", prefix, ext[i]);
            if (lstat(path, &st) == 0)
                return cli_error("keygen", CLI_FAIL, "%s exists: not overwritten (--force replaces the key pair)",
                                 path);
        }
    }
    if (security_keygen(prefix, err, sizeof err) != LS_OK)
        return cli_error("keygen", CLI_FAIL, "%s", err);
    printf("wrote %s.key (secret, mode 0600) and %s.pub\n", prefix, prefix);
    return CLI_OK;
}
