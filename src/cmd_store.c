/* cmd_store.c -- the store-maintenance commands: `leadscore keygen` (CurveZMQ key
 * pairs) and `leadscore compact`: rewrites a store keeping only its
 * live pages.  LMDB reuses freed pages but does not wipe them, so after
 * `forget` the old bytes can stay in the file until overwritten; a
 * compacted copy holds none of them.  In place it holds the store's
 * writer lock, so it cannot swap files under a running `serve`. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cliopts.h"
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
             "`leadscore serve` first: while a writer holds DIR/leadscore.lock it is refused).",
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

static int swap_in(const char *dir, const char *tmp)
{
    char from[1200], to[1200];
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", tmp, files[i]);
        snprintf(to, sizeof to, "%s/%s", dir, files[i]);
        if (i == 0 && rename(from, to) != 0)
            return cli_error("compact", CLI_FAIL, "cannot move %s to %s: %s", from, to, strerror(errno));
        if (i == 1)
            unlink(from);
    }
    rmdir(tmp);
    return CLI_OK;
}

int cmd_compact(int argc, char **argv)
{
    compact_cli o = {.dir = "./leadscore-data"};
    char tmp[1100], err[600];
    int first = cliopts_parse(&compact_spec, argc, argv, &o);
    if (first < 0)
        return cliopts_status(first);
    if (first < argc)
        return cli_error("compact", CLI_USAGE, "unexpected argument \"%s\"", argv[first]);
    const char *dir = o.dir, *out = o.out;
    store *s;
    store_options so = {.read_only = 1};
    int lock = -1; /* in place, the files are swapped: no writer may have them open */
    if (!out && storefile_lock(dir, &lock, NULL, err, sizeof err) != LS_OK)
        return cli_error("compact", CLI_FAIL, "%s", err);
    if (store_open(&s, dir, &so, NULL, err, sizeof err) != LS_OK) {
        storefile_unlock(&lock);
        return cli_error("compact", CLI_FAIL, "%s", err);
    }
    snprintf(tmp, sizeof tmp, "%s/compact.tmp", dir);
    const char *target = out ? out : tmp;
    char held[1200];
    struct stat st;
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
        store_close(&s);
        storefile_unlock(&lock);
        return cli_error("compact", CLI_FAIL, "cannot create %s: %s", target, strerror(errno));
    }
    store_stats before;
    store_stat(s, &before);
    int rc = store_compact(s, target);
    store_close(&s);
    if (rc != LS_OK) {
        remove_copy(target, made || !out); /* no partial copy left behind */
        storefile_unlock(&lock);
        return cli_error("compact", CLI_FAIL, "copy failed (%s); %s is unchanged",
                         rc == LS_EUNAVAIL ? "the disk is full" : ls_strerror(rc), dir);
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
