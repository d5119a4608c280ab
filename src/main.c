/* main.c -- the `leadscore` binary: finds the subcommand and runs it.
 * Every subcommand lives in a cmd_*.c file and answers --help. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <msgpack.h>
#include <zlib.h>
#include <zmq.h>

#include "cli.h"
#include "clusternode.h"
#include "gitdescribe.h" /* LS_GIT_DESCRIBE, generated at build time (CMakeLists.txt) */
#include "leadscore/error.h"
#include "timefmt.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif
#ifndef LS_GIT_COMMIT
#define LS_GIT_COMMIT "unknown"
#endif
#ifndef LS_GIT_DESCRIBE
#define LS_GIT_DESCRIBE LS_GIT_COMMIT
#endif

static void print_version(void)
{
    int zmaj, zmin, zpat;
    zmq_version(&zmaj, &zmin, &zpat);
    /* `git describe --tags --always --dirty` of the tree it was built from,
     * e.g. "v0.1.0-42-gd28e18f-dirty"; the short commit without tags */
    printf("leadscore %s (git %s)\n", LS_VERSION, LS_GIT_DESCRIBE);
    const char *nats = clusternode_nats_version();
    printf("built with libzmq %d.%d.%d, msgpack-c %s, %s, jansson %s, zlib %s, libmicrohttpd %s, %s%s\n", zmaj,
           zmin, zpat, msgpack_version(), mdb_version(NULL, NULL, NULL), JANSSON_VERSION, zlibVersion(),
           MHD_get_version(), nats ? "libnats " : "no libnats (cluster mode off)", nats ? nats : "");
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the scoring service"},
    {"track", cmd_track, "send one event to a running service"},
    {"score", cmd_score, "score customers on a running service"},
    {"recommend", cmd_recommend, "rank the content segments for a customer"},
    {"profile", cmd_profile, "show a customer's raw features"},
    {"ping", cmd_ping, "check that a service answers"},
    {"stats", cmd_stats, "show a service's counters and latencies"},
    {"model", cmd_model, "show the model a service is using"},
    {"reload", cmd_reload, "load a model file into a running service"},
    {"alias", cmd_alias, "merge an anonymous visitor into a customer"},
    {"forget", cmd_forget, "erase a customer (right to erasure)"},
    {"compact", cmd_compact, "rewrite a store keeping only live data"},
    {"bench", cmd_bench, "load generator and latency report, against an echo baseline"},
    {"keygen", cmd_keygen, "write a CurveZMQ key pair"},
    {"import", cmd_import, "bulk-load events from CSV or JSON Lines files"},
    {"rescore", cmd_rescore, "score every customer from one snapshot, to CSV or JSON Lines"},
    {"kpis", cmd_kpis, "loyalty KPIs over a period"},
    {"audience", cmd_audience, "define, list, delete and export live audiences"},
    {"triggers", cmd_triggers, "print the trigger outbox as JSON lines (--follow: as they fire)"},
    {"train", cmd_train, "fit a model from event files, with a hold-out report"},
    {"cluster", cmd_cluster, "make, inspect and change a cluster of nodes on NATS JetStream"},
    {"gen", cmd_gen, "write a synthetic shop's event stream with ground truth"},
};

int cli_error(const char *cmd, int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "leadscore%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

int cli_parse_time(const char *s, int64_t *out_ms)
{
    int64_t ms;
    if (timefmt_parse(s, strlen(s), TIMEFMT_AUTO, &ms) != LS_OK)
        return LS_EPARSE;
    if (ms < 0)
        return LS_EINVAL;
    *out_ms = ms;
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "leadscore %s -- lead scoring for online shops\n\n"
                 "usage: leadscore COMMAND [options]   (leadscore COMMAND --help for its options)\n\ncommands:\n",
            LS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nThe wire protocol and files are described in PROTOCOL.md; README.md has a tour.\n");
}

int cli_output_status(const char *cmd, int status)
{
    errno = 0;
    int bad = fflush(stdout) != 0 || ferror(stdout);
    if (bad && status == CLI_OK)
        return cli_error(cmd, CLI_FAIL, "cannot write standard output: %s", strerror(errno ? errno : EIO));
    return status;
}

int cli_check_writable(const char *cmd, const char *opt, const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return CLI_OK;
    int existed = access(path, F_OK) == 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return cli_error(cmd, CLI_FAIL, "%s %s: cannot write it: %s", opt, path, strerror(errno));
    close(fd);
    if (!existed)
        unlink(path);
    return CLI_OK;
}

/* Runs the command argv[0] names with its arguments (argv[1] ...), or
 * says it is unknown: the exit status. */
static int run_command(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        int status = commands[i].run(argc, argv);
        return commands[i].run == cmd_serve ? status : cli_output_status(commands[i].name, status);
    }
    fprintf(stderr, "leadscore: unknown command \"%s\"\n\n", argv[0]);
    usage(stderr);
    return CLI_USAGE;
}

int main(int argc, char **argv)
{
    /* A closed pipe on standard output (`leadscore triggers | head -1`) is
     * a failed write like a full disk -- exit 1 with the reason on stderr --
     * not death by SIGPIPE (status 141), which no exit status here means. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    int asks_help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0;
    if (asks_help && argc == 2) {
        usage(stdout);
        return cli_output_status(NULL, CLI_OK);
    }
    if (asks_help && argc > 3)
        return cli_error(NULL, CLI_USAGE, "%s takes one COMMAND at most, not \"%s\"", argv[1], argv[3]);
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        if (argc > 2)
            return cli_error(NULL, CLI_USAGE, "%s takes no argument, not \"%s\"", argv[1], argv[2]);
        print_version();
        return cli_output_status(NULL, CLI_OK);
    }
    if (asks_help) { /* `leadscore help CMD` is `leadscore CMD --help` */
        char help[] = "--help", *help_argv[] = {argv[2], help, NULL};
        return run_command(2, help_argv);
    }
    return run_command(argc - 1, argv + 1);
}
