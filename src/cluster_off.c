/* cluster_off.c -- cluster mode in a build without libnats: `serve
 * --nats` and `cluster` say how to get it, and a single node runs as
 * always.  CMake compiles this file instead of the cluster modules when
 * libnats-dev is not installed. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "clusternode.h"
#include "leadscore/error.h"

#define NO_NATS "leadscore was built without NATS, so cluster mode is off: install libnats-dev " \
                "(scripts/deps.sh does) and build again"

int clusternode_start(clusternode **out, service *svc, int nworkers, const char *endpoint, const char *pull,
                      char *err, size_t errlen)
{
    (void)svc, (void)nworkers, (void)endpoint, (void)pull;
    *out = NULL;
    snprintf(err, errlen, "--nats: %s", NO_NATS);
    return LS_EUNAVAIL;
}

const char *clusternode_nats_version(void)
{
    return NULL;
}

void clusternode_join(clusternode **cn)
{
    (void)cn;
}

uint32_t clusternode_partition(const clusternode *cn, const char *id, size_t len)
{
    (void)cn, (void)id, (void)len;
    return 0;
}

int clusternode_holds(const clusternode *cn, uint32_t p)
{
    (void)cn, (void)p;
    return 1;
}

void clusternode_describe(clusternode *cn, codec_writer *w)
{
    (void)cn;
    cw_key(w, "mode");
    cw_str(w, "single");
}

void clusternode_read_endpoint(clusternode *cn, uint32_t p, int standby, char *out, size_t cap)
{
    (void)cn, (void)p, (void)standby;
    if (cap)
        out[0] = '\0';
}

int clusternode_same_holders(clusternode *cn, uint32_t a, uint32_t b)
{
    (void)cn;
    return a == b;
}

int clusternode_forwarded(const void *identity, size_t len)
{
    (void)identity, (void)len;
    return 0;
}

int cmd_cluster(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: leadscore cluster init|status|move ...\n\n%s.\n", NO_NATS);
        return CLI_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "init") && strcmp(argv[1], "status") && strcmp(argv[1], "move")))
        return cli_error("cluster", CLI_USAGE, "say init, status or move (see --help)");
    return cli_error("cluster", CLI_FAIL, "%s", NO_NATS);
}
