/* cmd_serve.c -- `leadscore serve`: reads the settings (defaults, then
 * --config FILE, then command-line options), starts the server, prints
 * where it listens, and stops it cleanly on SIGINT / SIGTERM.  Under
 * systemd (Type=notify) it reports READY=1 once the store is open and the
 * sockets are bound, and STOPPING=1 when the drain begins. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "automation.h"
#include "cliopts.h"
#include "config.h"
#include "leadscore/error.h"
#include "log.h"
#include "metrics.h"
#include "sdnotify.h"
#include "server.h"

#ifndef LS_VERSION
#define LS_VERSION "0.0.0-dev"
#endif

/* The one piece of process-wide state: where the signal handler asks the
 * running server to stop.  Set once before signals are installed, and
 * back to NULL before the server is freed (the handlers then do nothing). */
static server *volatile running;
static volatile sig_atomic_t signals_seen;

static void on_hangup(int sig)
{
    (void)sig;
    server_request_reload(running);
}

static volatile sig_atomic_t first_signal_s, first_signal_ms; /* monotonic: seconds, and ms within them */

/* STOPPING=1 is sent by a small thread, not by the signal handler itself
 * (sd_notify is not async-signal-safe): the handler writes 's' to this
 * pipe, cmd_serve writes 'q' when serving is over.  -1 when $NOTIFY_SOCKET
 * is unset. */
static int notify_pipe[2] = {-1, -1};

static void *notifier(void *arg)
{
    char c;
    int stopping_sent = 0;
    (void)arg;
    for (;;) {
        ssize_t r = read(notify_pipe[0], &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == 'q')
            break;
        if (c == 's' && !stopping_sent) {
            int e = sdnotify("STOPPING=1\nSTATUS=draining: committing pending batches");
            if (e < 0)
                LOG_WARN("sd_notify_failed", "state=STOPPING error=\"%s\"", strerror(-e));
            stopping_sent = 1;
        }
    }
    return NULL;
}

/* Starts the notifier thread with every signal blocked in it. */
static int notifier_start(pthread_t *t)
{
    const char *ns = getenv("NOTIFY_SOCKET");
    sigset_t all, old;
    if (!ns || !ns[0] || pipe2(notify_pipe, O_CLOEXEC) != 0)
        return 0;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, notifier, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        close(notify_pipe[0]);
        close(notify_pipe[1]);
        notify_pipe[0] = notify_pipe[1] = -1;
        return 0;
    }
    return 1;
}

static void notifier_post(char c)
{
    if (notify_pipe[1] >= 0) {
        ssize_t r = write(notify_pipe[1], &c, 1); /* async-signal-safe */
        (void)r;
    }
}

/* The first SIGINT/SIGTERM drains; another one at least a second later
 * (a person insisting, not one signal delivered twice to the process and
 * its group) exits at once. */
static void on_signal(int sig)
{
    struct timespec now;
    (void)sig;
    clock_gettime(CLOCK_MONOTONIC, &now); /* async-signal-safe */
    int ms = (int)(now.tv_nsec / 1000000);
    if (signals_seen > 0 && ((long long)now.tv_sec - first_signal_s) * 1000 + (ms - first_signal_ms) < 1000)
        return; /* within a second of the first, whole ms: not rounded to a second boundary */
    if (signals_seen == 0) {
        first_signal_s = (sig_atomic_t)now.tv_sec;
        first_signal_ms = ms;
    }
    if (signals_seen++ > 0) {
        static const char msg[] = "leadscore serve: second signal, exiting now (the store stays consistent)\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        _exit(1);
    }
    notifier_post('s');
    server_request_stop(running);
}

static void serve_help(FILE *out)
{
    fprintf(out, "usage: leadscore serve [--config FILE] [--data DIR] [--model FILE] [--bind EP] [--pull EP] [options]\n\n"
                 "Runs the scoring service.  Settings come from the defaults below, then the\n"
                 "config file (name = value lines), then the command line.\n\n"
                 "  --config FILE          read settings from FILE\n"
                 "  --sample-config        print a commented config file with every default\n");
    config_print_help(out);
}

/* getopt's values of the options that are not settings: --help shares
 * -h's; --sample-config has no short form, so its value is no letter. */
#define OPT_HELP 'h'
#define OPT_SAMPLE 2
#define OPT_CONFIG 'c'

/* Builds the getopt table from the config table, plus --config, --help
 * and --sample-config. */
static struct option *long_options(void)
{
    const config_option *t = config_table();
    int n = 0;
    while (t[n].name)
        n++;
    struct option *o = calloc((size_t)n + 4, sizeof *o);
    if (!o)
        return NULL;
    for (int i = 0; i < n; i++)
        o[i] = (struct option){t[i].name, required_argument, NULL, 1000 + i};
    o[n] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    o[n + 1] = (struct option){"help", no_argument, NULL, OPT_HELP};
    o[n + 2] = (struct option){"sample-config", no_argument, NULL, OPT_SAMPLE};
    return o;
}

/* The message for getopt's '?': an unknown option, or --help or
 * --sample-config given "=value" (optopt their value, the word "--..."). */
static int refuse_option(char **argv)
{
    const char *word = argv[optind - 1];
    if ((optopt == OPT_HELP || optopt == OPT_SAMPLE) && strncmp(word, "--", 2) == 0)
        return cli_error("serve", CLI_USAGE, "--%s takes no value (see --help)",
                         optopt == OPT_HELP ? "help" : "sample-config");
    if (optopt)
        return cli_error("serve", CLI_USAGE, "unknown option -%c (see --help)", optopt);
    return cli_error("serve", CLI_USAGE, "unknown option \"%s\" (see --help)", word);
}

/* Two passes: the config file first, then every other option over it.
 * A word left over is reported after pass 1, so that a setting which took
 * the next option as its value (--sync --data x) is refused for that value,
 * not for the word the option leaves behind. */
static int read_settings(int argc, char **argv, config *cfg)
{
    struct option *opts = long_options();
    char err[600];
    int c, rc = CLI_OK;
    if (!opts)
        return cli_error("serve", CLI_FAIL, "out of memory");
    config_defaults(cfg);
    opterr = 0; /* our own message, in the `leadscore serve: ...` form of every command */
    for (int pass = 0; pass < 2 && rc == CLI_OK; pass++) {
        optind = 0;
        while (rc == CLI_OK && (c = cliopts_getopt(argc, argv, ":h", opts)) != -1) {
            if (c == OPT_HELP) {
                serve_help(stdout);
                rc = -1;
            } else if (c == OPT_SAMPLE) {
                config_print_sample(stdout);
                rc = -1;
            } else if (c == ':') {
                rc = cli_error("serve", CLI_USAGE, "--%s takes a value (see --help)",
                               optopt >= 1000 ? config_table()[optopt - 1000].name
                               : optopt == OPT_CONFIG ? "config" : "?");
            } else if (c == '?') {
                rc = refuse_option(argv);
            } else if (c == OPT_CONFIG && pass == 0) {
                if (config_load_file(cfg, optarg, err, sizeof err) != LS_OK)
                    rc = cli_error("serve", CLI_USAGE, "%s", err);
            } else if (c >= 1000 && pass == 1) {
                if (config_set(cfg, config_table()[c - 1000].name, optarg, err, sizeof err) != LS_OK)
                    rc = cli_error("serve", CLI_USAGE, "%s", err);
            }
        }
        if (rc == CLI_OK && pass == 1 && optind < argc)
            rc = cli_error("serve", CLI_USAGE, "unexpected argument \"%s\" (see --help)", argv[optind]);
    }
    free(opts);
    return rc;
}

static void announce(const server *s, const config *cfg)
{
    printf("leadscore %s serving\n", LS_VERSION);
    printf("  requests  %s   (REQ or DEALER clients, msgpack)\n", server_endpoint(s));
    if (strcmp(cfg->pull, "none") != 0)
        printf("  events    %s   (PUSH, fire-and-forget batches)\n", server_pull_endpoint(s));
    printf("  data      %s\n", cfg->data_dir);
    printf("  model     %s\n", server_model_tag(s));
    if (server_metrics_port(s))
        printf("  metrics   http://%.*s:%d/metrics\n", (int)strcspn(cfg->metrics, ":"), cfg->metrics,
               server_metrics_port(s));
    if (server_public_key(s))
        printf("  curve     on: server public key %s\n", server_public_key(s));
    /* under CurveZMQ a client needs the server's public key and a listed key pair */
    const char *keys = server_public_key(s) ? " --server-key SERVER.pub --key CLIENT" : "";
    printf("Try it from another terminal%s:\n"
           "  leadscore track --connect %s%s alice add_to_cart price=40 category=shoes/running\n"
           "  leadscore score --connect %s%s --explain alice\n"
           "Stop with Ctrl-C: pending events are committed before it exits.  SIGHUP reloads the model.\n",
           server_public_key(s) ? " (SERVER.pub: the public key above, in a file; CLIENT: a key pair on --allow)"
                                : "",
           server_endpoint(s), keys, server_endpoint(s), keys);
    fflush(stdout);
}

/* The values whose form the config table cannot check itself, checked
 * with the rest, so a typo is a usage error (exit 2) before anything is
 * opened rather than a failed start. */
static int check_settings(const config *cfg)
{
    char err[600];
    int64_t cooldowns[JA_COUNT];
    if ((cfg->node[0] || cfg->advertise[0]) && !cfg->nats[0]) /* else a single node, silently */
        return cli_error("serve", CLI_USAGE, "--%s is for cluster mode: give --nats URLS too (or leave it out for a "
                         "single node)", cfg->node[0] ? "node" : "advertise");
    if (automation_parse_cooldowns(cfg->trigger_cooldowns, cooldowns, err, sizeof err) != LS_OK)
        return cli_error("serve", CLI_USAGE, "%s", err);
    if (cfg->metrics[0] && metrics_check_endpoint(cfg->metrics, err, sizeof err) != LS_OK)
        return cli_error("serve", CLI_USAGE, "%s", err);
    return CLI_OK;
}

int cmd_serve(int argc, char **argv)
{
    config cfg;
    char err[1024] = "";
    int rc = read_settings(argc, argv, &cfg);
    if (rc != CLI_OK) /* -1 after --help or --sample-config: exit 0 only if it all got out */
        return rc < 0 ? cli_output_status("serve", CLI_OK) : rc;
    if ((rc = check_settings(&cfg)) != CLI_OK)
        return rc;
    server *s;
    if (server_start(&s, &cfg, err, sizeof err) != LS_OK)
        return cli_error("serve", CLI_FAIL, "%s", err[0] ? err : "cannot start");
    running = s;
    pthread_t notify_thread;
    int notifying = notifier_start(&notify_thread); /* before the handlers that post to it */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    announce(s, &cfg);
    if (notifying) {
        /* the store is open and the endpoints are bound (server_start): ready */
        char state[1024];
        snprintf(state, sizeof state, "READY=1\nSTATUS=serving requests on %s, events on %s", server_endpoint(s),
                 strcmp(cfg.pull, "none") != 0 ? server_pull_endpoint(s) : "(off)");
        int e = sdnotify(state);
        if (e < 0)
            LOG_WARN("sd_notify_failed", "state=READY error=\"%s\" socket=\"%s\"", strerror(-e),
                     getenv("NOTIFY_SOCKET"));
        else
            LOG_DEBUG("sd_notify", "state=READY via=%s", sdnotify_backend());
    }
    rc = server_run(s);
    if (rc == LS_ETIMEOUT)
        _exit(CLI_FAIL); /* threads may be stuck: leave without joining them */
    running = NULL; /* a SIGHUP from now on must not reach the server being freed */
    if (notifying) {
        notifier_post('q');
        pthread_join(notify_thread, NULL);
        close(notify_pipe[0]);
        close(notify_pipe[1]);
        notify_pipe[0] = notify_pipe[1] = -1;
    }
    server_destroy(&s);
    LOG_INFO("stopped", "clean=%d", rc == LS_OK);
    return rc == LS_OK ? CLI_OK : CLI_FAIL;
}
