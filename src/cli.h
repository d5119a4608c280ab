/* cli.h -- the `leadscore` command line: one function per subcommand
 * (each returns the process exit status: 0 ok, 1 failure, 2 usage) and the
 * few helpers they share. */
#ifndef LS_CLI_H
#define LS_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "leadscore/client.h"

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

#define CLI_DEFAULT_CONNECT "tcp://127.0.0.1:5555"

int cmd_serve(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_alias(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_rescore(int argc, char **argv);
int cmd_kpis(int argc, char **argv);
int cmd_audience(int argc, char **argv);
int cmd_triggers(int argc, char **argv);
int cmd_cluster(int argc, char **argv);

/* Prints "leadscore <cmd>: <message>" on stderr ("leadscore: <message>"
 * when cmd is NULL) and returns status. */
int cli_error(const char *cmd, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Flushes standard output and returns status, or CLI_FAIL after "leadscore
 * <cmd>: cannot write standard output: <reason>" when status is CLI_OK but
 * what was printed did not all get there (a full disk, a closed pipe): a
 * report, an answer or a --help lost must not look like success.  main()
 * passes every command's status through it but serve's (a service that
 * stopped cleanly exits 0 even if its banner was lost); serve's --help and
 * --sample-config call it themselves. */
int cli_output_status(const char *cmd, int status);

/* Finds out before a long job whether the file an option names (opt,
 * e.g. "--json") can be written, so the job does not run for nothing: an
 * existing file is left as it is, a new one is not left behind; "-" and
 * NULL pass.  CLI_OK, or CLI_FAIL after "leadscore <cmd>: <opt> <path>:
 * cannot write it: <reason>". */
int cli_check_writable(const char *cmd, const char *opt, const char *path);

/* What a command-line time that parses but lies before the Unix epoch is
 * called in a usage error ("--now: \"-5\" is " CLI_TIME_EARLY). */
#define CLI_TIME_EARLY "before 1970-01-01T00:00:00Z (times run from 1970 to 9999)"

/* Parses a command-line time (Unix seconds, ms, or ISO 8601) into ms.
 * Returns 0; LS_EPARSE when s is not a time; LS_EINVAL when it is one
 * before 1970-01-01T00:00:00Z (a negative epoch: no request, store or
 * report takes one, so it is refused here as a usage error rather than
 * sent to the service).  *out_ms is set only on 0. */
int cli_parse_time(const char *s, int64_t *out_ms);

/* Where a command that talks to a running service sends its requests
 * (--connect, --timeout, --server-key, --key). */
typedef struct {
    const char *endpoint;
    int timeout_ms;           /* how long to wait for a reply */
    const char *server_key;   /* CurveZMQ: file with the server's public key, or NULL */
    const char *key_prefix;   /* CurveZMQ: PREFIX.pub / PREFIX.key of this client, or NULL */
} cli_service;

/* Connects *c to svc->endpoint, over CurveZMQ when svc has keys, waiting
 * at most timeout_ms for each reply.  CLI_OK, or CLI_FAIL after
 * "leadscore CMD: ..." on stderr (a bad key file, a bad endpoint); close
 * *c with ls_client_close. */
int cli_connect(const char *cmd, const cli_service *svc, int timeout_ms, ls_client **c);

/* The event-file options `import` and `train` share, as cliopts.h
 * custom parsers (defined in cmd_import.c): --map into an eventfile_map,
 * --types into an eventfile_types, --ts-format into an int (timefmt_hint),
 * --delimiter into a char ("tab" for a tab). */
int cli_opt_map(const char *arg, void *dest, char *why, size_t cap);
int cli_opt_types(const char *arg, void *dest, char *why, size_t cap);
int cli_opt_ts_format(const char *arg, void *dest, char *why, size_t cap);
int cli_opt_delimiter(const char *arg, void *dest, char *why, size_t cap);

#endif
